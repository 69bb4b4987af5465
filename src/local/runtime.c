/*
 * The runtime of `amlops host`: worker processes, their supervisor, the
 * dispatch of requests to them, and their logs. The HTTP side lives in
 * runtime_front.c.
 *
 * Each worker is `python -c <worker.py>` with a stream socketpair for
 * frames (layout at the top of worker.py) and a pipe for its stdout and
 * stderr. A reader thread per worker reads its frames until it is ready
 * and its log bytes into the deployment's inference log for as long as it
 * lives. Requests are pipelined to a worker (max_concurrent_requests_per_
 * instance at a time); one of the requests in flight on it (the leader)
 * reads the answers and hands out those of the others.
 * The supervisor thread reaps workers, restarts those that die with
 * exponential backoff (100 ms doubling to 10 s), and marks a deployment
 * FAILED when RT_DEATHS_FAILED deaths happen within a minute.
 *
 * A deploy() that changes the code, the scoring script, the model, the
 * environment variables or the log folder starts a new generation of
 * workers and stops the old one as soon as it is idle (a simple restart:
 * requests arriving before the new workers are ready wait in the queue).
 * Request settings and instance_count change in place.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/util.h"
#include "local/runtime_int.h"

extern const unsigned char amlops_embed_local_worker_py[];
extern const size_t amlops_embed_local_worker_py_len;
extern char **environ;

/* Parent variables a worker inherits; everything else (credentials) not. */
static const char *const inherit_env[] = {"PATH", "HOME", "LANG", "LC_ALL",
    "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH", "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", NULL};

static void
cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

/* Waits on `cv` until the monotonic time `deadline_ms`; 0 on a wakeup. */
static int
cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
	struct timespec ts;

	ts.tv_sec = deadline_ms / 1000;
	ts.tv_nsec = (deadline_ms % 1000) * 1000000;
	return pthread_cond_timedwait(cv, mu, &ts);
}

void
rt_result_release(struct rt_result *res)
{
	free(res->ctype);
	free(res->body);
	res->ctype = NULL;
	res->body = NULL;
	res->len = 0;
}

static void result_set(struct rt_result *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
result_set(struct rt_result *res, int status, const char *fmt, ...)
{
	struct amlops_buf b = AMLOPS_BUF_INIT, msg = AMLOPS_BUF_INIT;
	const char *s;
	va_list ap;

	va_start(ap, fmt);
	amlops_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	amlops_buf_puts(&b, "{\"message\": \"");
	for (s = amlops_buf_cstr(&msg); *s; s++) {
		if (*s == '"' || *s == '\\')
			amlops_buf_putc(&b, '\\');
		if ((unsigned char)*s < 0x20)
			amlops_buf_printf(&b, "\\u%04x", (unsigned char)*s);
		else
			amlops_buf_putc(&b, *s);
	}
	amlops_buf_puts(&b, "\"}");
	amlops_buf_release(&msg);
	rt_result_release(res);
	res->status = status;
	res->ctype = amlops_xstrdup("application/json");
	res->len = b.len;
	res->body = amlops_buf_detach(&b);
}

/*
 * Logs. The host's own lines about a worker go into the same file, with
 * a timestamp and "amlops:", so that getLogs tells the whole story.
 */
static void
log_open(struct rt_dep *d)
{
	struct stat st;

	if (d->logfd >= 0)
		close(d->logfd);
	free(d->logpath);
	d->logpath = amlops_xasprintf("%s/inference.log", d->log_dir);
	d->logfd =
	    open(d->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (d->logfd < 0) {
		log_warn("endpoint=%s deployment=%s cannot open '%s'",
		    d->endpoint, d->name, d->logpath);
		d->logsize = 0;
		return;
	}
	d->logsize = fstat(d->logfd, &st) == 0 ? st.st_size : 0;
}

static void
log_write(struct rt_dep *d, const char *data, size_t len)
{
	struct amlops_runtime *rt = d->rt;
	char *old;
	ssize_t n;

	pthread_mutex_lock(&d->logmu);
	if (d->logfd >= 0 && d->logsize > 0 &&
	    (size_t)d->logsize + len > rt->log_cap) {
		old = amlops_xasprintf("%s.1", d->logpath);
		if (rename(d->logpath, old) < 0)
			log_warn("cannot rotate '%s'", d->logpath);
		free(old);
		close(d->logfd);
		d->logfd = open(d->logpath,
		    O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0600);
		d->logsize = 0;
	}
	while (d->logfd >= 0 && len > 0) {
		n = write(d->logfd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		d->logsize += n;
		data += n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&d->logmu);
}

static void log_event(struct rt_dep *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
log_event(struct rt_dep *d, const char *fmt, ...)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	char ts[32];
	va_list ap;

	amlops_time_rfc3339(ts, amlops_wall_ms());
	amlops_buf_printf(&b, "%s amlops: ", ts);
	va_start(ap, fmt);
	amlops_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	amlops_buf_putc(&b, '\n');
	log_write(d, b.ptr, b.len);
	amlops_buf_release(&b);
}

/* Reads what the worker's pipe holds now; returns 0 at EOF or error. */
static int
drain_log(struct rt_worker *w)
{
	char buf[65536];
	ssize_t n;

	for (;;) {
		n = read(w->logfd, buf, sizeof(buf));
		if (n > 0) {
			log_write(w->dep, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		return 0;
	}
}

static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void
put_u32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = (v >> 24) & 0xff;
}

static void
kill_worker(struct rt_worker *w, int sig, const char *why)
{
	if (w->pid <= 0 || w->reaped)
		return;
	if (!w->killed)
		w->killed_ms = amlops_now_ms();
	w->killed = 1;
	kill(w->pid, sig);
	if (why)
		log_event(w->dep, "worker=%d pid=%d event=killed reason=\"%s\"",
		    w->index, (int)w->pid, why);
}

/* Unlinks `p` from its worker; dep->mu held. */
static void
pending_unlink(struct rt_worker *w, struct rt_pending *p)
{
	struct rt_pending **pp;

	for (pp = &w->pending; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			w->inflight--;
			w->dep->inflight--;
			pthread_cond_signal(&w->dep->cv);
			return;
		}
	}
}

/*
 * A frame the reader thread sees before the worker is ready: READY or
 * INIT_FAILED. Returns -1 for anything else (the worker gets killed).
 */
static int
handle_init_frame(
    struct rt_worker *w, uint32_t type, const unsigned char *p, uint32_t len)
{
	struct rt_dep *d = w->dep;

	switch (type) {
	case RT_FRAME_READY:
		pthread_mutex_lock(&d->mu);
		if (w->state == RT_W_STARTING)
			w->state = RT_W_READY;
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->mu);
		log_event(
		    d, "worker=%d pid=%d event=ready", w->index, (int)w->pid);
		return 0;
	case RT_FRAME_INIT_FAILED:
		drain_log(w);
		pthread_mutex_lock(&d->mu);
		w->init_failed = 1;
		if (w->gen == d->gen && !d->init_error)
			d->init_error = amlops_xstrndup((const char *)p, len);
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->mu);
		log_event(d, "worker=%d pid=%d event=init_failed", w->index,
		    (int)w->pid);
		return 0;
	default:
		return -1;
	}
}

/*
 * Reads the worker's frames until it is ready (or failed), then only its
 * stdout/stderr into the log, until the pipe closes. After READY the
 * socket belongs to the requests in flight on the worker: one of them at
 * a time (the leader, w->reading) reads answers and hands them out, so
 * that a request usually reads its own answer without a thread hop.
 */
static void *
reader_main(void *arg)
{
	struct rt_worker *w = arg;
	struct rt_dep *d = w->dep;
	struct pollfd fds[2];
	unsigned char buf[4096];
	size_t len = 0;
	uint32_t type, flen;
	ssize_t n;
	int init = 1, bad = 0, reaped, r;
	int64_t reaped_ms = 0;

	for (;;) {
		fds[0].fd = init ? w->sock : -1;
		fds[0].events = POLLIN;
		fds[1].fd = w->logfd;
		fds[1].events = POLLIN;
		fds[0].revents = fds[1].revents = 0;
		r = poll(fds, 2, 250);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0 && fds[1].revents && !drain_log(w))
			break;
		if (r == 0) {
			/* A child of the worker may hold the pipe: not forever.
			 */
			pthread_mutex_lock(&d->mu);
			reaped = w->reaped;
			pthread_mutex_unlock(&d->mu);
			if (reaped && !reaped_ms)
				reaped_ms = amlops_now_ms();
			if (reaped && amlops_now_ms() - reaped_ms > 2000)
				break;
		}
		if (r <= 0 || !init || !fds[0].revents)
			continue;
		n = read(w->sock, buf + len, sizeof(buf) - len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			init = 0; /* died in init: the supervisor sees it */
			continue;
		}
		len += (size_t)n;
		if (len < RT_HDR_LEN)
			continue;
		type = get_u32(buf);
		flen = get_u32(buf + 8);
		if (RT_HDR_LEN + (size_t)flen > sizeof(buf)) {
			bad = 1;
		} else if (len >= RT_HDR_LEN + flen) {
			/* Nothing may follow READY before a request. */
			bad = len > RT_HDR_LEN + flen ||
			      handle_init_frame(
			          w, type, buf + RT_HDR_LEN, flen) < 0;
			init = 0;
		}
		if (bad) {
			pthread_mutex_lock(&d->mu);
			kill_worker(w, SIGKILL, "bad frame from worker");
			w->state = RT_W_DEAD;
			pthread_mutex_unlock(&d->mu);
			log_warnx("endpoint=%s deployment=%s worker=%d "
			          "bad frame: killed",
			    d->endpoint, d->name, w->index);
			bad = 0;
			init = 0;
		}
	}

	pthread_mutex_lock(&d->mu);
	w->reader_done = 1;
	/*
	 * No rt->mu here: the supervisor joins this thread holding it. The
	 * signal may be missed; the supervisor looks again within 50 ms.
	 */
	pthread_cond_signal(&d->rt->sup_cv);
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

static void
env_add(char ***envp, size_t *n, char *s)
{
	*envp = amlops_xrealloc(*envp, (*n + 2) * sizeof(char *));
	(*envp)[(*n)++] = s;
	(*envp)[*n] = NULL;
}

static char **
worker_env(struct rt_dep *d)
{
	char **envp = NULL;
	size_t n = 0, i, len;
	const cJSON *v;
	const char *val;

	for (i = 0; inherit_env[i]; i++)
		if ((val = getenv(inherit_env[i])))
			env_add(&envp, &n,
			    amlops_xasprintf("%s=%s", inherit_env[i], val));
	env_add(&envp, &n, amlops_xstrdup("PYTHONUNBUFFERED=1"));
	env_add(&envp, &n, amlops_xstrdup("PYTHONDONTWRITEBYTECODE=1"));
	env_add(&envp, &n, amlops_xstrdup("AMLOPS_WORKER_FD=3"));
	env_add(&envp, &n,
	    amlops_xasprintf("AMLOPS_WORKER_SRC=%s",
	        (const char *)amlops_embed_local_worker_py));
	env_add(&envp, &n,
	    amlops_xasprintf(
	        "AMLOPS_WORKER_MAX_FRAME=%zu", d->rt->max_body + 4096));
	env_add(
	    &envp, &n, amlops_xasprintf("AZUREML_MODEL_DIR=%s", d->model_dir));
	env_add(
	    &envp, &n, amlops_xasprintf("AZUREML_ENTRY_SCRIPT=%s", d->script));
	env_add(&envp, &n, amlops_xasprintf("AML_APP_ROOT=%s", d->code_dir));
	cJSON_ArrayForEach(v, d->env)
	{
		if (!v->string || !*v->string || strchr(v->string, '='))
			continue;
		if (cJSON_IsString(v))
			env_add(&envp, &n,
			    amlops_xasprintf(
			        "%s=%s", v->string, v->valuestring));
		else if (cJSON_IsNumber(v))
			env_add(&envp, &n,
			    amlops_xasprintf(
			        "%s=%.17g", v->string, v->valuedouble));
		else if (cJSON_IsBool(v))
			env_add(&envp, &n,
			    amlops_xasprintf("%s=%s", v->string,
			        cJSON_IsTrue(v) ? "true" : "false"));
	}
	/* Later entries win, as with `env`: drop earlier duplicates. */
	for (i = 0; i < n; i++) {
		len = strcspn(envp[i], "=");
		for (size_t j = i + 1; j < n; j++) {
			if (strncmp(envp[i], envp[j], len + 1) == 0) {
				free(envp[i]);
				memmove(&envp[i], &envp[i + 1],
				    (n - i) * sizeof(char *));
				n--;
				i--;
				break;
			}
		}
	}
	return envp;
}

static void
env_free(char **envp)
{
	size_t i;

	for (i = 0; envp && envp[i]; i++)
		free(envp[i]);
	free(envp);
}

/* Starts one worker of the current generation; dep->mu held. */
static int
spawn_worker(struct rt_dep *d)
{
	struct amlops_runtime *rt = d->rt;
	struct rt_worker *w = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char *argv[5], *label = NULL;
	char **envp = NULL;
	int sv[2] = {-1, -1}, lp[2] = {-1, -1};
	pid_t pid;
	int error = 0, rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return amlops_err_sys(AMLOPS_ERROR, "socketpair");
	if (pipe2(lp, O_CLOEXEC) < 0) {
		error = amlops_err_sys(AMLOPS_ERROR, "pipe");
		goto done;
	}
	/* The child's ends must not sit on 0..3, which dup2 targets. */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, lp[1], 1);
	posix_spawn_file_actions_adddup2(&fa, lp[1], 2);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	posix_spawn_file_actions_addchdir_np(&fa, d->code_dir);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	                                    POSIX_SPAWN_SETSIGDEF |
	                                    POSIX_SPAWN_SETPGROUP);
	/*
	 * The worker's source travels in the environment and a one-line
	 * bootstrap runs it, so that ps shows which deployment a worker
	 * serves rather than a page of Python.
	 */
	argv[0] = rt->python;
	argv[1] = "-c";
	argv[2] =
	    "import os; exec(compile(os.environ.pop('AMLOPS_WORKER_SRC'), "
	    "'amlops-worker', 'exec'))";
	argv[3] = label = amlops_xasprintf("%s/%s", d->endpoint, d->name);
	argv[4] = NULL;
	envp = worker_env(d);
	rc = posix_spawnp(&pid, rt->python, &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		errno = rc;
		error = amlops_err_sys(AMLOPS_ERROR,
		    "cannot start worker '%s' in '%s'", rt->python,
		    d->code_dir);
		goto done;
	}
	close(sv[1]);
	close(lp[1]);
	sv[1] = lp[1] = -1;
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	fcntl(lp[0], F_SETFL, fcntl(lp[0], F_GETFL) | O_NONBLOCK);

	w = amlops_xcalloc(1, sizeof(*w));
	w->dep = d;
	w->index = d->next_index++;
	w->gen = d->gen;
	w->pid = pid;
	w->sock = sv[0];
	w->logfd = lp[0];
	sv[0] = lp[0] = -1;
	pthread_mutex_init(&w->wmu, NULL);
	if (d->nw == d->capw) {
		d->capw = d->capw ? d->capw * 2 : 8;
		d->w = amlops_xrealloc(d->w, d->capw * sizeof(*d->w));
	}
	d->w[d->nw++] = w;
	log_event(d, "worker=%d pid=%d event=started", w->index, (int)pid);
	if ((rc = pthread_create(&w->reader, NULL, reader_main, w)) != 0) {
		/* Without a reader nobody would see it: let it go. */
		kill(pid, SIGKILL);
		w->killed = 1;
		w->state = RT_W_DEAD;
		w->reader_done = 2;
		errno = rc;
		error = amlops_err_sys(AMLOPS_ERROR, "pthread_create");
	}
done:
	env_free(envp);
	free(label);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (lp[0] >= 0)
		close(lp[0]);
	if (lp[1] >= 0)
		close(lp[1]);
	return error;
}

static void
worker_free(struct rt_worker *w)
{
	if (w->reader_done == 1)
		pthread_join(w->reader, NULL);
	close(w->sock);
	close(w->logfd);
	pthread_mutex_destroy(&w->wmu);
	free(w->rbuf);
	free(w);
}

static void
describe_status(char *out, size_t len, int st)
{
	if (WIFEXITED(st))
		snprintf(out, len, "exit code %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(out, len, "signal %d (%s)", WTERMSIG(st),
		    strsignal(WTERMSIG(st)));
	else
		snprintf(out, len, "status %d", st);
}

static int
live_worker(const struct rt_dep *d, const struct rt_worker *w)
{
	return w->gen == d->gen && !w->retiring && !w->killed &&
	       w->state != RT_W_DEAD && !w->reaped && !w->init_failed;
}

/* One supervisor pass over a deployment; dep->mu held. */
static void
tend(struct rt_dep *d, int removed, int64_t now)
{
	struct rt_worker *w;
	char how[96];
	size_t i, live = 0, ready = 0, recent = 0;
	int st;
	pid_t r;

	for (i = 0; i < d->nw; i++) {
		w = d->w[i];
		if (!w->reaped && w->pid > 0) {
			r = waitpid(w->pid, &st, WNOHANG);
			if (r == w->pid || (r < 0 && errno == ECHILD)) {
				w->reaped = 1;
				w->state = RT_W_DEAD;
				pthread_cond_broadcast(&d->cv);
				describe_status(how, sizeof(how), st);
				if (r < 0)
					snprintf(how, sizeof(how), "unknown");
				log_event(d,
				    "worker=%d pid=%d event=exited "
				    "status=\"%s\"",
				    w->index, (int)w->pid, how);
				if (!w->killed && !removed && !w->init_failed &&
				    w->gen == d->gen && !w->retiring) {
					log_warnx("endpoint=%s deployment=%s "
					          "worker=%d died: %s",
					    d->endpoint, d->name, w->index,
					    how);
					memmove(&d->deaths[1], &d->deaths[0],
					    (RT_DEATHS_FAILED - 1) *
					        sizeof(d->deaths[0]));
					d->deaths[0] = now;
					if (d->ndeaths < RT_DEATHS_FAILED)
						d->ndeaths++;
					if (d->ndeaths >= 2 &&
					    now - d->deaths[1] <
					        RT_DEATH_WINDOW_MS)
						d->backoff_ms =
						    d->backoff_ms
						        ? d->backoff_ms * 2
						        : RT_BACKOFF_MIN_MS;
					else
						d->backoff_ms =
						    RT_BACKOFF_MIN_MS;
					if (d->backoff_ms > RT_BACKOFF_MAX_MS)
						d->backoff_ms =
						    RT_BACKOFF_MAX_MS;
					d->next_spawn_ms = now + d->backoff_ms;
					d->restarts++;
					if (d->ndeaths == RT_DEATHS_FAILED &&
					    now - d->deaths[RT_DEATHS_FAILED -
					                    1] <
					        RT_DEATH_WINDOW_MS) {
						free(d->crash_error);
						d->crash_error =
						    amlops_xasprintf(
						        "workers keep dying: "
						        "%d "
						        "deaths in %d s, the "
						        "last "
						        "with %s",
						        RT_DEATHS_FAILED,
						        RT_DEATH_WINDOW_MS /
						            1000,
						        how);
					}
				}
			}
		}
		if (!w->killed && !w->reaped &&
		    (removed || w->gen != d->gen || w->retiring) &&
		    (removed || w->inflight == 0))
			kill_worker(w, SIGTERM, NULL);
		if (w->killed && !w->reaped && now - w->killed_ms > 2000)
			kill(w->pid, SIGKILL);
		/* Its socket broke but it lives on: end it (a death). */
		if (w->state == RT_W_DEAD && !w->reaped && !w->killed &&
		    w->dead_ms && now - w->dead_ms > 1000)
			kill(w->pid, SIGKILL);
		if (w->reaped && w->reader_done && w->refs == 0) {
			worker_free(w);
			memmove(&d->w[i], &d->w[i + 1],
			    (d->nw - i - 1) * sizeof(*d->w));
			d->nw--;
			i--;
			continue;
		}
		if (live_worker(d, w)) {
			live++;
			if (w->state == RT_W_READY)
				ready++;
		}
	}
	if (removed)
		return;

	/* Scale down: retire the newest, starting ones first. */
	for (i = d->nw; i-- > 0 && live > (size_t)d->instances;) {
		w = d->w[i];
		if (live_worker(d, w) && w->state == RT_W_STARTING) {
			w->retiring = 1;
			live--;
		}
	}
	for (i = d->nw; i-- > 0 && live > (size_t)d->instances;) {
		w = d->w[i];
		if (live_worker(d, w)) {
			if (w->state == RT_W_READY)
				ready--;
			w->retiring = 1;
			live--;
			pthread_cond_broadcast(&d->cv);
		}
	}
	if (live == (size_t)d->instances && ready == live)
		d->was_ready = 1;
	for (i = 0; i < d->ndeaths; i++)
		if (now - d->deaths[i] < RT_DEATH_WINDOW_MS)
			recent++;
	if (d->crash_error && recent == 0 && ready == (size_t)d->instances) {
		free(d->crash_error);
		d->crash_error = NULL;
	}
	if (d->init_error || now < d->next_spawn_ms)
		return;
	while (live < (size_t)d->instances) {
		if (spawn_worker(d) < 0) {
			if (!d->init_error)
				d->init_error =
				    amlops_xstrdup(amlops_err_last());
			log_event(d, "event=spawn_failed error=\"%s\"",
			    amlops_err_last());
			return;
		}
		live++;
	}
}

static void
dep_free(struct rt_dep *d)
{
	if (!d)
		return;
	while (d->nw > 0)
		worker_free(d->w[--d->nw]);
	free(d->w);
	free(d->endpoint);
	free(d->name);
	free(d->code_dir);
	free(d->script);
	free(d->model_dir);
	free(d->log_dir);
	cJSON_Delete(d->env);
	free(d->init_error);
	free(d->crash_error);
	if (d->logfd >= 0)
		close(d->logfd);
	free(d->logpath);
	pthread_mutex_destroy(&d->mu);
	pthread_mutex_destroy(&d->logmu);
	pthread_cond_destroy(&d->cv);
	free(d);
}

static void *
supervisor_main(void *arg)
{
	struct amlops_runtime *rt = arg;
	struct rt_dep *d, **pp;
	int64_t now;

	pthread_mutex_lock(&rt->mu);
	while (!rt->stop) {
		now = amlops_now_ms();
		for (d = rt->deps; d; d = d->next) {
			pthread_mutex_lock(&d->mu);
			tend(d, 0, now);
			pthread_mutex_unlock(&d->mu);
		}
		for (pp = &rt->graveyard; (d = *pp);) {
			pthread_mutex_lock(&d->mu);
			tend(d, 1, now);
			pthread_mutex_unlock(&d->mu);
			if (d->nw == 0 &&
			    __atomic_load_n(&d->refs, __ATOMIC_ACQUIRE) == 0) {
				*pp = d->next;
				dep_free(d);
				continue;
			}
			pp = &d->next;
		}
		cond_wait_until(&rt->sup_cv, &rt->mu, amlops_now_ms() + 50);
	}
	pthread_mutex_unlock(&rt->mu);
	return NULL;
}

struct rt_dep *
rt_dep_find(struct amlops_runtime *rt, const char *endpoint, const char *name)
{
	struct rt_dep *d;

	for (d = rt->deps; d; d = d->next) {
		if (strcmp(d->endpoint, endpoint) == 0 &&
		    strcmp(d->name, name) == 0) {
			__atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
			return d;
		}
	}
	return NULL;
}

void
rt_dep_unref(struct rt_dep *d)
{
	/* Lock-free: a buried deployment is freed once this reaches 0. */
	__atomic_sub_fetch(&d->refs, 1, __ATOMIC_RELEASE);
}

/* The least busy ready worker with room; dep->mu held. */
static struct rt_worker *
pick_worker(struct rt_dep *d, int *any_ready, int *any_starting)
{
	struct rt_worker *w, *best = NULL;
	size_t i;

	*any_ready = *any_starting = 0;
	for (i = 0; i < d->nw; i++) {
		w = d->w[i];
		if (!live_worker(d, w))
			continue;
		if (w->state == RT_W_STARTING) {
			*any_starting = 1;
			continue;
		}
		*any_ready = 1;
		if (w->inflight < d->maxconc &&
		    (!best || w->inflight < best->inflight))
			best = w;
	}
	return best;
}

enum {
	XC_OK = 0,
	XC_DEAD = -1,    /* the worker went away */
	XC_TIMEOUT = -2, /* past the reader's deadline */
	XC_BAD = -3,     /* it broke the protocol */
};

static int
send_all(struct rt_worker *w, struct iovec *iov, int niov, int64_t deadline_ms)
{
	struct msghdr mh;
	struct pollfd pfd;
	ssize_t n;
	int64_t left;

	while (niov > 0) {
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)niov;
		n = sendmsg(w->sock, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return XC_DEAD;
			left = deadline_ms - amlops_now_ms();
			if (left <= 0)
				return XC_TIMEOUT;
			pfd.fd = w->sock;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
				return XC_DEAD;
			continue;
		}
		while (niov > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			niov--;
		}
		if (niov > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return XC_OK;
}

/* The leader reads until w->rbuf holds `want` bytes; no lock held. */
static int
recv_until(struct rt_worker *w, size_t want, int64_t deadline_ms)
{
	struct pollfd pfd;
	int64_t left;
	ssize_t n;

	if (w->rcap < want || w->rcap < 65536) {
		w->rcap = want > 65536 ? want : 65536;
		w->rbuf = amlops_xrealloc(w->rbuf, w->rcap);
	}
	while (w->rlen < want) {
		n = read(w->sock, w->rbuf + w->rlen, w->rcap - w->rlen);
		if (n > 0) {
			w->rlen += (size_t)n;
			continue;
		}
		if (n == 0)
			return XC_DEAD;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return XC_DEAD;
		left = deadline_ms - amlops_now_ms();
		if (left <= 0)
			return XC_TIMEOUT;
		pfd.fd = w->sock;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return XC_DEAD;
	}
	return XC_OK;
}

/*
 * The leader reads one answer and hands it to the request it belongs to
 * (answers to requests that gave up are dropped). Takes and returns with
 * dep->mu held; reads without it.
 */
static int
lead_one(struct rt_worker *w, int64_t deadline)
{
	struct rt_dep *d = w->dep;
	struct rt_pending *q;
	uint32_t type, id, flen, status = 0, ctlen = 0;
	const unsigned char *p;
	size_t whole;
	int rc;

	pthread_mutex_unlock(&d->mu);
	rc = recv_until(w, RT_HDR_LEN, deadline);
	if (rc == XC_OK) {
		type = get_u32(w->rbuf);
		flen = get_u32(w->rbuf + 8);
		if (flen > RT_MAX_RESPONSE ||
		    (type != RT_FRAME_RESPONSE && type != RT_FRAME_ERROR))
			rc = XC_BAD;
		else
			rc = recv_until(w, RT_HDR_LEN + (size_t)flen, deadline);
	}
	pthread_mutex_lock(&d->mu);
	if (rc != XC_OK)
		return rc;

	id = get_u32(w->rbuf + 4);
	p = w->rbuf + RT_HDR_LEN;
	whole = RT_HDR_LEN + (size_t)flen;
	if (type == RT_FRAME_RESPONSE) {
		if (flen < 8)
			return XC_BAD;
		status = get_u32(p);
		ctlen = get_u32(p + 4);
		if (ctlen > flen - 8 || status < 100 || status > 599)
			return XC_BAD;
	}
	for (q = w->pending; q && q->id != id; q = q->next)
		;
	if (q) {
		pending_unlink(w, q);
		if (type == RT_FRAME_ERROR) {
			q->error = 1;
			q->status = 500;
			q->ctype = amlops_xstrdup("text/plain");
			q->body = amlops_xstrndup((const char *)p, flen);
			q->len = strlen(q->body);
		} else {
			q->status = (int)status;
			q->ctype = amlops_xstrndup((const char *)p + 8, ctlen);
			q->len = flen - 8 - ctlen;
			q->body = amlops_xmalloc(q->len + 1);
			memcpy(q->body, p + 8 + ctlen, q->len);
			q->body[q->len] = '\0';
		}
		q->done = 1;
		pthread_cond_signal(&q->cv);
	}
	memmove(w->rbuf, w->rbuf + whole, w->rlen - whole);
	w->rlen -= whole;
	if (w->rlen == 0 && w->rcap > (1u << 20)) {
		/* A large answer went by: do not keep its room. */
		free(w->rbuf);
		w->rbuf = NULL;
		w->rcap = 0;
	}
	return XC_OK;
}

/* The worker is unusable: every request on it fails; dep->mu held. */
static void
fail_pending(struct rt_worker *w)
{
	struct rt_pending *q;

	if (w->state != RT_W_DEAD) {
		w->state = RT_W_DEAD;
		w->dead_ms = amlops_now_ms();
	}
	while ((q = w->pending)) {
		pending_unlink(w, q);
		q->done = 1;
		q->status = 0;
		pthread_cond_signal(&q->cv);
	}
	pthread_cond_broadcast(&w->dep->cv);
}

const double rt_buckets[RT_NBUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

static void
hist_add(struct rt_hist *h, double v)
{
	size_t i;

	for (i = 0; i < RT_NBUCKETS; i++) {
		if (v <= rt_buckets[i]) {
			h->bucket[i]++;
			break;
		}
	}
	h->count++;
	h->sum += v;
}

/* Counts one request into `s`; the lock that guards `s` is held. */
static void
stats_add(struct rt_stats *s, int code, int64_t total_ms, int64_t queue_ms)
{
	int i;

	for (i = 0; i < s->ncodes && s->code[i] != code; i++)
		;
	if (i == s->ncodes && s->ncodes < RT_NCODES)
		s->code[s->ncodes++] = code;
	if (i < s->ncodes)
		s->count[i]++;
	hist_add(&s->latency, (double)total_ms / 1000.0);
	if (queue_ms >= 0)
		hist_add(&s->queue, (double)queue_ms / 1000.0);
}

/*
 * Status codes, as Azure ML managed online endpoints give them:
 *   429  more requests than 2 * max_concurrent_requests_per_instance *
 *        instance_count are in flight or queued, or a request waited in
 *        the queue longer than max_queue_wait_ms ("too many pending
 *        requests");
 *   503  the deployment has no ready worker (none started, or all failed);
 *   408  run() took longer than request_timeout_ms (the worker, which
 *        cannot be interrupted, is killed and replaced);
 *   424  run() raised (or answered with a status other than 200): the
 *        model's own status is in ms-azureml-model-error-statuscode and
 *        its message in the body ("model error");
 *   502  the worker died while handling the request.
 */
void
rt_dispatch(struct rt_dep *d, const char *ctype, const char *body, size_t len,
    int64_t t_request, struct rt_result *res)
{
	struct rt_pending p;
	struct rt_worker *w = NULL;
	struct iovec iov[3];
	unsigned char hdr[RT_HDR_LEN + 4];
	int64_t t0 = amlops_now_ms(), deadline;
	int any_ready, any_starting, rc, timed_out = 0, limit;
	size_t ctlen = ctype ? strlen(ctype) : 0;

	memset(&p, 0, sizeof(p));
	memset(res, 0, sizeof(*res));
	cond_init_mono(&p.cv);

	pthread_mutex_lock(&d->mu);
	deadline = t0 + d->queue_ms;
	limit = 2 * d->maxconc * d->instances;
	if (d->inflight + d->waiting >= limit) {
		result_set(res, 429,
		    "too many pending requests for deployment '%s'", d->name);
		goto unlock;
	}
	for (;;) {
		w = pick_worker(d, &any_ready, &any_starting);
		if (w)
			break;
		if (!any_ready && !any_starting && d->init_error) {
			result_set(res, 503, "deployment '%s' is not ready: %s",
			    d->name, d->init_error);
			goto unlock;
		}
		if (amlops_now_ms() >= deadline) {
			if (any_ready)
				result_set(res, 429,
				    "too many pending requests for "
				    "deployment '%s'",
				    d->name);
			else
				result_set(res, 503,
				    "deployment '%s' has no ready worker",
				    d->name);
			goto unlock;
		}
		d->waiting++;
		cond_wait_until(&d->cv, &d->mu, deadline);
		d->waiting--;
	}
	w->inflight++;
	w->refs++;
	d->inflight++;
	p.id = ++w->next_id;
	p.next = w->pending;
	w->pending = &p;
	res->queue_ms = amlops_now_ms() - t0;
	deadline = amlops_now_ms() + d->timeout_ms;
	pthread_mutex_unlock(&d->mu);

	put_u32(hdr, RT_FRAME_REQUEST);
	put_u32(hdr + 4, p.id);
	put_u32(hdr + 8, (uint32_t)(4 + ctlen + len));
	put_u32(hdr + 12, (uint32_t)ctlen);
	iov[0].iov_base = hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = (void *)(ctype ? ctype : "");
	iov[1].iov_len = ctlen;
	iov[2].iov_base = (void *)body;
	iov[2].iov_len = len;
	pthread_mutex_lock(&w->wmu);
	rc = send_all(w, iov, 3, deadline);
	pthread_mutex_unlock(&w->wmu);
	/* XC_DEAD: it may have answered others before it went. */

	pthread_mutex_lock(&d->mu);
	if (rc == XC_TIMEOUT)
		timed_out = 1;
	else if (rc != XC_OK && !p.done)
		fail_pending(w);
	while (!p.done && !timed_out) {
		if (!w->reading) {
			/* Lead: read answers until ours is in. */
			w->reading = 1;
			rc = lead_one(w, deadline);
			w->reading = 0;
			if (rc == XC_TIMEOUT) {
				timed_out = 1;
			} else if (rc == XC_BAD) {
				kill_worker(
				    w, SIGKILL, "bad frame from worker");
				log_warnx("endpoint=%s deployment=%s worker=%d "
				          "bad frame: killed",
				    d->endpoint, d->name, w->index);
				fail_pending(w);
			} else if (rc != XC_OK) {
				fail_pending(w);
			}
			continue;
		}
		if (cond_wait_until(&p.cv, &d->mu, deadline) == ETIMEDOUT &&
		    !p.done)
			timed_out = 1;
	}
	if (!p.done)
		pending_unlink(w, &p);
	/* Another request on this worker takes over reading. */
	if (w->pending && !w->reading)
		pthread_cond_signal(&w->pending->cv);
	if (timed_out && !p.done) {
		kill_worker(w, SIGKILL, "request timed out");
		result_set(res, 408,
		    "request timed out after %d ms (request_timeout_ms)",
		    d->timeout_ms);
	} else if (!p.done || p.status == 0) {
		result_set(res, 502,
		    "the worker of deployment '%s' exited "
		    "while handling the request",
		    d->name);
	} else if (p.error || p.status != 200) {
		res->status = 424;
		res->model_status = p.status;
		res->ctype = p.ctype;
		res->body = p.body;
		res->len = p.len;
		p.ctype = p.body = NULL;
	} else {
		res->status = 200;
		res->ctype = p.ctype;
		res->body = p.body;
		res->len = p.len;
		p.ctype = p.body = NULL;
	}
	w->refs--;
unlock:
	if (!w)
		res->queue_ms = amlops_now_ms() - t0;
	stats_add(
	    &d->stats, res->status, amlops_now_ms() - t_request, res->queue_ms);
	pthread_mutex_unlock(&d->mu);
	free(p.ctype);
	free(p.body);
	pthread_cond_destroy(&p.cv);
}

void
rt_stats_record(struct amlops_runtime *rt, struct rt_stats *s, int code,
    int64_t total_ms, int64_t queue_ms)
{
	pthread_mutex_lock(&rt->stats_mu);
	stats_add(s, code, total_ms, queue_ms);
	pthread_mutex_unlock(&rt->stats_mu);
}

/* Checks and copies a deployment's settings into `d`; dep->mu held. */
static int
check_deployment(const struct amlops_runtime_deployment *dep)
{
	if (!dep->endpoint || !*dep->endpoint || !dep->name || !*dep->name)
		return amlops_err_set(
		    AMLOPS_EINVALID, "deployment needs an endpoint and a name");
	if (!dep->code_dir || dep->code_dir[0] != '/')
		return amlops_err_set(AMLOPS_EINVALID,
		    "deployment '%s': code_dir must be an absolute path",
		    dep->name);
	if (!dep->model_dir || dep->model_dir[0] != '/')
		return amlops_err_set(AMLOPS_EINVALID,
		    "deployment '%s': model_dir must be an absolute path",
		    dep->name);
	if (!dep->scoring_script || !*dep->scoring_script ||
	    dep->scoring_script[0] == '/')
		return amlops_err_set(AMLOPS_EINVALID,
		    "deployment '%s': scoring_script must be a path relative "
		    "to the code folder",
		    dep->name);
	if (!dep->log_dir || !*dep->log_dir)
		return amlops_err_set(AMLOPS_EINVALID,
		    "deployment '%s': log_dir is required", dep->name);
	if (dep->instance_count < 1 || dep->instance_count > 64)
		return amlops_err_set(AMLOPS_EINVALID,
		    "deployment '%s': instance_count %d is not in 1..64",
		    dep->name, dep->instance_count);
	if (dep->request_timeout_ms < 0 ||
	    dep->max_concurrent_per_instance < 0 || dep->max_queue_wait_ms < 0)
		return amlops_err_set(AMLOPS_EINVALID,
		    "deployment '%s': request settings must not be negative",
		    dep->name);
	return 0;
}

static int
streq_null(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int
amlops_runtime_deploy(
    struct amlops_runtime *rt, const struct amlops_runtime_deployment *dep)
{
	struct rt_dep *d;
	cJSON *env;
	int error, restart, relog;

	if ((error = check_deployment(dep)) < 0)
		return error;
	env = dep->env ? cJSON_Duplicate(dep->env, 1) : cJSON_CreateObject();
	if (!env)
		return amlops_err_set(AMLOPS_ERROR, "out of memory");

	pthread_mutex_lock(&rt->mu);
	for (d = rt->deps; d; d = d->next)
		if (strcmp(d->endpoint, dep->endpoint) == 0 &&
		    strcmp(d->name, dep->name) == 0)
			break;
	if (!d) {
		d = amlops_xcalloc(1, sizeof(*d));
		d->rt = rt;
		d->endpoint = amlops_xstrdup(dep->endpoint);
		d->name = amlops_xstrdup(dep->name);
		pthread_mutex_init(&d->mu, NULL);
		pthread_mutex_init(&d->logmu, NULL);
		cond_init_mono(&d->cv);
		d->logfd = -1;
		d->next = rt->deps;
		rt->deps = d;
	}
	pthread_mutex_lock(&d->mu);
	restart = !streq_null(d->code_dir, dep->code_dir) ||
	          !streq_null(d->script, dep->scoring_script) ||
	          !streq_null(d->model_dir, dep->model_dir) || !d->env ||
	          !cJSON_Compare(d->env, env, 1) ||
	          /* deploying a failed deployment again retries it */
	          d->init_error || d->crash_error;
	relog = !streq_null(d->log_dir, dep->log_dir);
	if (restart) {
		free(d->code_dir);
		free(d->script);
		free(d->model_dir);
		cJSON_Delete(d->env);
		d->code_dir = amlops_xstrdup(dep->code_dir);
		d->script = amlops_xstrdup(dep->scoring_script);
		d->model_dir = amlops_xstrdup(dep->model_dir);
		d->env = env;
		env = NULL;
		d->gen++;
		free(d->init_error);
		free(d->crash_error);
		d->init_error = d->crash_error = NULL;
		d->ndeaths = 0;
		d->backoff_ms = 0;
		d->next_spawn_ms = 0;
	}
	if (relog) {
		free(d->log_dir);
		d->log_dir = amlops_xstrdup(dep->log_dir);
		pthread_mutex_lock(&d->logmu);
		log_open(d);
		pthread_mutex_unlock(&d->logmu);
	}
	if (d->instances != dep->instance_count)
		d->was_ready = 0;
	if (restart)
		d->was_ready = 0;
	d->instances = dep->instance_count;
	d->timeout_ms =
	    dep->request_timeout_ms > 0 ? dep->request_timeout_ms : 5000;
	d->maxconc = dep->max_concurrent_per_instance > 0
	                 ? dep->max_concurrent_per_instance
	                 : 1;
	d->queue_ms = dep->max_queue_wait_ms > 0 ? dep->max_queue_wait_ms : 500;
	log_event(d, "event=deploy generation=%u instances=%d restart=%s",
	    d->gen, d->instances, restart ? "yes" : "no");
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_cond_signal(&rt->sup_cv);
	pthread_mutex_unlock(&rt->mu);
	cJSON_Delete(env);
	log_info("endpoint=%s deployment=%s instances=%d event=deploy",
	    dep->endpoint, dep->name, dep->instance_count);
	return 0;
}

/* Moves `d` to the graveyard; rt->mu held. */
static void
bury(struct amlops_runtime *rt, struct rt_dep *d)
{
	struct rt_dep **pp;

	for (pp = &rt->deps; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	}
	d->removed = 1;
	d->next = rt->graveyard;
	rt->graveyard = d;
	pthread_mutex_lock(&d->mu);
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_cond_signal(&rt->sup_cv);
}

int
amlops_runtime_remove(
    struct amlops_runtime *rt, const char *endpoint, const char *deployment)
{
	struct rt_dep *d;

	pthread_mutex_lock(&rt->mu);
	for (d = rt->deps; d; d = d->next)
		if (strcmp(d->endpoint, endpoint) == 0 &&
		    strcmp(d->name, deployment) == 0)
			break;
	if (!d) {
		pthread_mutex_unlock(&rt->mu);
		return amlops_err_set(AMLOPS_ENOTFOUND,
		    "no deployment '%s' in endpoint '%s'", deployment,
		    endpoint);
	}
	bury(rt, d);
	pthread_mutex_unlock(&rt->mu);
	return 0;
}

void
rt_remove_endpoint_deps(struct amlops_runtime *rt, const char *endpoint)
{
	struct rt_dep *d, *next;

	for (d = rt->deps; d; d = next) {
		next = d->next;
		if (strcmp(d->endpoint, endpoint) == 0)
			bury(rt, d);
	}
}

enum amlops_runtime_state
amlops_runtime_status(struct amlops_runtime *rt, const char *endpoint,
    const char *deployment, char **why, int *ready)
{
	enum amlops_runtime_state state;
	struct rt_dep *d;
	struct rt_worker *w;
	size_t i;
	int n = 0;

	if (why)
		*why = NULL;
	if (ready)
		*ready = 0;
	pthread_mutex_lock(&rt->mu);
	if (!(d = rt_dep_find(rt, endpoint, deployment))) {
		pthread_mutex_unlock(&rt->mu);
		return AMLOPS_RUNTIME_UNKNOWN;
	}
	/* rt->mu stays held: d cannot go away */
	__atomic_sub_fetch(&d->refs, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&d->mu);
	for (i = 0; i < d->nw; i++) {
		w = d->w[i];
		if (live_worker(d, w) && w->state == RT_W_READY)
			n++;
	}
	if (d->init_error) {
		state = AMLOPS_RUNTIME_FAILED;
		if (why)
			*why = amlops_xstrdup(d->init_error);
	} else if (d->crash_error) {
		state = AMLOPS_RUNTIME_FAILED;
		if (why)
			*why = amlops_xstrdup(d->crash_error);
	} else if (d->was_ready || n >= d->instances) {
		state = AMLOPS_RUNTIME_READY;
	} else {
		state = AMLOPS_RUNTIME_STARTING;
	}
	pthread_mutex_unlock(&d->mu);
	pthread_mutex_unlock(&rt->mu);
	if (ready)
		*ready = n;
	return state;
}

/* Appends the last `tail` lines of `data` to `out`. */
static int
add_tail(struct amlops_buf *out, const char *data, size_t len, int tail)
{
	size_t i = len;
	int lines = 0;

	if (tail > 0) {
		if (i > 0 && data[i - 1] == '\n')
			i--;
		while (i > 0) {
			if (data[i - 1] == '\n' && ++lines == tail)
				break;
			i--;
		}
	} else {
		i = 0;
	}
	return amlops_buf_add(out, data + i, len - i);
}

int
amlops_runtime_logs(struct amlops_runtime *rt, const char *endpoint,
    const char *deployment, int tail, struct amlops_buf *out)
{
	struct amlops_buf all = AMLOPS_BUF_INIT, part = AMLOPS_BUF_INIT;
	struct rt_dep *d;
	char *path = NULL, *old = NULL;
	int error = 0;

	pthread_mutex_lock(&rt->mu);
	d = rt_dep_find(rt, endpoint, deployment);
	pthread_mutex_unlock(&rt->mu);
	if (!d)
		return amlops_err_set(AMLOPS_ENOTFOUND,
		    "no deployment '%s' in endpoint '%s'", deployment,
		    endpoint);
	pthread_mutex_lock(&d->logmu);
	path = amlops_xstrdup(d->logpath);
	old = amlops_xasprintf("%s.1", d->logpath);
	if (amlops_file_read(&part, old, rt->log_cap * 2) == 0)
		amlops_buf_add(&all, part.ptr, part.len);
	error = amlops_file_read(&part, path, rt->log_cap * 2);
	pthread_mutex_unlock(&d->logmu);
	rt_dep_unref(d);
	if (error == AMLOPS_ENOTFOUND) {
		amlops_err_clear();
		error = 0;
	} else if (error == 0) {
		amlops_buf_add(&all, part.ptr, part.len);
	}
	if (error == 0 && all.len)
		error = add_tail(out, all.ptr, all.len, tail);
	amlops_buf_release(&all);
	amlops_buf_release(&part);
	free(path);
	free(old);
	return error;
}

static void *
mirror_main(void *arg)
{
	struct amlops_runtime *rt = arg;
	struct rt_mirror_job *job;
	struct rt_result res;
	struct rt_dep *d;

	pthread_mutex_lock(&rt->mirror_mu);
	for (;;) {
		while (!rt->mirror_head && !rt->mirror_stop)
			pthread_cond_wait(&rt->mirror_cv, &rt->mirror_mu);
		if (!(job = rt->mirror_head))
			break;
		rt->mirror_head = job->next;
		if (!rt->mirror_head)
			rt->mirror_tail = NULL;
		rt->mirror_len--;
		pthread_mutex_unlock(&rt->mirror_mu);

		pthread_mutex_lock(&rt->mu);
		d = rt_dep_find(rt, job->endpoint, job->deployment);
		pthread_mutex_unlock(&rt->mu);
		if (d) {
			rt_dispatch(d, job->ctype, job->body, job->len,
			    amlops_now_ms(), &res);
			rt_result_release(&res);
			rt_dep_unref(d);
		}
		free(job->endpoint);
		free(job->deployment);
		free(job->ctype);
		free(job->body);
		free(job);
		pthread_mutex_lock(&rt->mirror_mu);
	}
	pthread_mutex_unlock(&rt->mirror_mu);
	return NULL;
}

int
amlops_runtime_new(
    struct amlops_runtime **out, const struct amlops_runtime_opts *opts)
{
	static const struct amlops_runtime_opts defaults = {0};
	struct amlops_runtime *rt;
	int error, rc;

	if (!opts)
		opts = &defaults;
	rt = amlops_xcalloc(1, sizeof(*rt));
	rt->python =
	    amlops_xstrdup(opts->python ? opts->python : "/usr/bin/python3");
	rt->bind = amlops_xstrdup(opts->bind ? opts->bind : "127.0.0.1");
	rt->max_body = opts->max_body ? opts->max_body : 8u << 20;
	rt->log_cap = opts->log_cap ? opts->log_cap : 8u << 20;
	pthread_mutex_init(&rt->mu, NULL);
	pthread_mutex_init(&rt->stats_mu, NULL);
	pthread_mutex_init(&rt->mirror_mu, NULL);
	cond_init_mono(&rt->sup_cv);
	pthread_cond_init(&rt->mirror_cv, NULL);

	if ((rc = pthread_create(&rt->sup, NULL, supervisor_main, rt)) != 0) {
		errno = rc;
		error = amlops_err_sys(AMLOPS_ERROR, "pthread_create");
		goto fail;
	}
	rt->sup_started = 1;
	if ((rc = pthread_create(&rt->mirror_thread, NULL, mirror_main, rt)) !=
	    0) {
		errno = rc;
		error = amlops_err_sys(AMLOPS_ERROR, "pthread_create");
		goto fail;
	}
	rt->mirror_started = 1;
	if ((error = rt_front_start(rt, opts)) < 0)
		goto fail;
	*out = rt;
	return 0;
fail:
	amlops_runtime_free(rt);
	return error;
}

void
amlops_runtime_free(struct amlops_runtime *rt)
{
	struct rt_dep *d;
	struct rt_ep *ep;
	struct rt_mirror_job *job;
	int64_t deadline;
	int left;

	if (!rt)
		return;
	rt_front_stop(rt);
	if (rt->mirror_started) {
		pthread_mutex_lock(&rt->mirror_mu);
		rt->mirror_stop = 1;
		pthread_cond_signal(&rt->mirror_cv);
		pthread_mutex_unlock(&rt->mirror_mu);
		pthread_join(rt->mirror_thread, NULL);
	}
	while ((job = rt->mirror_head)) {
		rt->mirror_head = job->next;
		free(job->endpoint);
		free(job->deployment);
		free(job->ctype);
		free(job->body);
		free(job);
	}
	if (rt->sup_started) {
		pthread_mutex_lock(&rt->mu);
		rt->stop = 1;
		pthread_cond_signal(&rt->sup_cv);
		pthread_mutex_unlock(&rt->mu);
		pthread_join(rt->sup, NULL);
	}
	/* Nothing else runs now but the readers: stop every worker. */
	while ((d = rt->deps))
		bury(rt, d);
	deadline = amlops_now_ms() + 5000;
	do {
		left = 0;
		for (d = rt->graveyard; d; d = d->next) {
			pthread_mutex_lock(&d->mu);
			tend(d, 1, amlops_now_ms());
			left += d->nw > 0;
			pthread_mutex_unlock(&d->mu);
		}
		if (left)
			usleep(10000);
	} while (left && amlops_now_ms() < deadline);
	while ((d = rt->graveyard)) {
		rt->graveyard = d->next;
		dep_free(d);
	}
	while ((ep = rt->eps)) {
		rt->eps = ep->next;
		rt_ep_free(ep);
	}
	pthread_mutex_destroy(&rt->mu);
	pthread_mutex_destroy(&rt->stats_mu);
	pthread_mutex_destroy(&rt->mirror_mu);
	pthread_cond_destroy(&rt->sup_cv);
	pthread_cond_destroy(&rt->mirror_cv);
	free(rt->python);
	free(rt->bind);
	free(rt);
}
