/*
 * A pass in a child process. The watch loop never starts libgit2,
 * libcurl or OpenSSL itself (they keep about 4 MB resident once
 * started, see tests/bench/watch_memory.md): each pass runs in a child
 * made with fork() when needed, which reports its outcome back through
 * a pipe as one message, then _exit()s.
 *
 * The message is text, at most AMLOPS_WATCH_MSG_MAX bytes, one field a
 * line, "KEY VALUE", in this order:
 *
 *	amlops-outcome 1		always, first
 *	kind K				probe, reconcile, drift or reload
 *	result R			up_to_date, no_changes, succeeded,
 *					failed or interrupted
 *	head HEX40			optional: the branch head
 *	applied HEX40			optional: the applied commit before
 *	ms N				the pass's duration
 *	retries N			HTTP requests sent again
 *	step ASPECT RESULT N		0 to AMLOPS_WATCH_MSG_STEPS lines
 *	drift RESULT N			optional: ok, drift, healed or failed,
 *					and the endpoints that drifted
 *	gitdir PATH			optional: the repository's git folder
 *	error TEXT			optional: to the end of the line
 *	end				always, last
 *
 * Control characters in PATH and TEXT are written as spaces.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/util.h"
#include "amlops/watch.h"

volatile sig_atomic_t amlops_watch_child_pid;

static const char *const kinds[] = {"probe", "reconcile", "drift", "reload"};
static const char *const drift_results[] = {"ok", "drift", "healed", "failed"};

const char *
amlops_watch_kind_name(enum amlops_watch_kind k)
{
	return (size_t)k < AMLOPS_ARRAY_SIZE(kinds) ? kinds[k] : "unknown";
}

/* `s` with control characters as spaces. */
static void
put_text(struct amlops_buf *b, const char *s)
{
	for (; *s; s++)
		amlops_buf_putc(
		    b, (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
}

int
amlops_watch_outcome_format(
    struct amlops_buf *out, const struct amlops_watch_outcome *o)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	int error;

	amlops_buf_printf(&b, "amlops-outcome 1\nkind %s\nresult %s\n",
	    amlops_watch_kind_name(o->kind),
	    amlops_watch_result_name(o->result));
	if (o->head[0])
		amlops_buf_printf(&b, "head %s\n", o->head);
	if (o->applied[0])
		amlops_buf_printf(&b, "applied %s\n", o->applied);
	amlops_buf_printf(&b, "ms %" PRId64 "\nretries %" PRIu64 "\n",
	    o->ms < 0 ? 0 : o->ms, o->retries);
	for (size_t i = 0; i < o->nsteps && i < AMLOPS_WATCH_MSG_STEPS; i++)
		amlops_buf_printf(&b, "step %s %s %" PRIu64 "\n",
		    o->steps[i].aspect, o->steps[i].result, o->steps[i].n);
	if (o->drift[0])
		amlops_buf_printf(
		    &b, "drift %s %" PRIu64 "\n", o->drift, o->drifted);
	if (o->gitdir[0]) {
		amlops_buf_puts(&b, "gitdir ");
		put_text(&b, o->gitdir);
		amlops_buf_putc(&b, '\n');
	}
	if (o->error[0]) {
		amlops_buf_puts(&b, "error ");
		put_text(&b, o->error);
		amlops_buf_putc(&b, '\n');
	}
	amlops_buf_puts(&b, "end\n");
	if (b.len > AMLOPS_WATCH_MSG_MAX)
		error = amlops_err_set(AMLOPS_EINVALID,
		    "outcome of %zu bytes, more than %d", b.len,
		    AMLOPS_WATCH_MSG_MAX);
	else
		error = amlops_buf_add(out, b.ptr, b.len);
	amlops_buf_release(&b);
	return error;
}

static int
index_of(const char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return (int)i;
	return -1;
}

static int
parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end || *out > INT64_MAX ? -1 : 0;
}

static int
parse_hex40(const char *s, char out[41])
{
	if (strlen(s) != 40 || strspn(s, "0123456789abcdef") != 40)
		return -1;
	memcpy(out, s, 41);
	return 0;
}

/* A word of at most `cap - 1` characters from [a-z0-9_-]. */
static int
parse_word(const char *s, size_t n, char *out, size_t cap)
{
	if (n == 0 || n >= cap)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_-", s[i]) ||
		    !s[i])
			return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static int
parse_line(struct amlops_watch_outcome *o, const char *key, const char *v,
    unsigned *seen)
{
	static const char *const keys[] = {"kind", "result", "head", "applied",
	    "ms", "retries", "drift", "gitdir", "error"};
	int k = index_of(keys, AMLOPS_ARRAY_SIZE(keys), key), r;
	const char *sp;
	uint64_t u;

	if (!strcmp(key, "step")) {
		struct amlops_watch_outcome_step *s = &o->steps[o->nsteps];
		const char *sp2;

		if (o->nsteps == AMLOPS_WATCH_MSG_STEPS)
			return amlops_err_set(AMLOPS_EINVALID,
			    "more than %d step lines", AMLOPS_WATCH_MSG_STEPS);
		if ((sp = strchr(v, ' ')) == NULL ||
		    (sp2 = strchr(sp + 1, ' ')) == NULL ||
		    parse_word(v, (size_t)(sp - v), s->aspect,
		        sizeof(s->aspect)) < 0 ||
		    parse_word(sp + 1, (size_t)(sp2 - sp - 1), s->result,
		        sizeof(s->result)) < 0 ||
		    parse_u64(sp2 + 1, &s->n) < 0)
			return amlops_err_set(
			    AMLOPS_EINVALID, "bad step '%.64s'", v);
		o->nsteps++;
		return 0;
	}
	if (k < 0)
		return amlops_err_set(
		    AMLOPS_EINVALID, "unknown field '%.32s'", key);
	if (*seen & (1u << k))
		return amlops_err_set(
		    AMLOPS_EINVALID, "field '%s' given twice", key);
	*seen |= 1u << k;
	switch (k) {
	case 0:
		if ((r = index_of(kinds, AMLOPS_ARRAY_SIZE(kinds), v)) < 0)
			break;
		o->kind = (enum amlops_watch_kind)r;
		return 0;
	case 1:
		for (r = 0; r <= AMLOPS_WATCH_INTERRUPTED; r++)
			if (!strcmp(v, amlops_watch_result_name(
			                   (enum amlops_watch_result)r))) {
				o->result = (enum amlops_watch_result)r;
				return 0;
			}
		break;
	case 2:
		if (parse_hex40(v, o->head) == 0)
			return 0;
		break;
	case 3:
		if (parse_hex40(v, o->applied) == 0)
			return 0;
		break;
	case 4:
		if (parse_u64(v, &u) < 0)
			break;
		o->ms = (int64_t)u;
		return 0;
	case 5:
		if (parse_u64(v, &o->retries) < 0)
			break;
		return 0;
	case 6:
		if ((sp = strchr(v, ' ')) == NULL ||
		    parse_word(
		        v, (size_t)(sp - v), o->drift, sizeof(o->drift)) < 0 ||
		    index_of(drift_results, AMLOPS_ARRAY_SIZE(drift_results),
		        o->drift) < 0 ||
		    parse_u64(sp + 1, &o->drifted) < 0)
			break;
		return 0;
	case 7:
	case 8: {
		char *dst = k == 7 ? o->gitdir : o->error;
		size_t cap = k == 7 ? sizeof(o->gitdir) : sizeof(o->error);

		if (strlen(v) >= cap)
			return amlops_err_set(AMLOPS_EINVALID,
			    "field '%s' longer than %zu bytes", key, cap - 1);
		memcpy(dst, v, strlen(v) + 1);
		return 0;
	}
	}
	return amlops_err_set(AMLOPS_EINVALID, "bad %s '%.64s'", key, v);
}

int
amlops_watch_outcome_parse(
    struct amlops_watch_outcome *o, const char *msg, size_t len)
{
	const char *p = msg, *end = msg + len;
	char line[AMLOPS_WATCH_MSG_MAX + 1];
	unsigned seen = 0, lineno = 0;
	int error = 0, ended = 0;

	memset(o, 0, sizeof(*o));
	o->result = AMLOPS_WATCH_FAILED;
	if (len > AMLOPS_WATCH_MSG_MAX)
		return amlops_err_set(AMLOPS_EINVALID,
		    "pass child message: more than %d bytes",
		    AMLOPS_WATCH_MSG_MAX);
	if (len == 0)
		return amlops_err_set(
		    AMLOPS_EINVALID, "pass child message: empty");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n;
		char *sp;

		lineno++;
		if (nl == NULL) {
			error = amlops_err_set(
			    AMLOPS_EINVALID, "no newline at the end");
			goto fail;
		}
		n = (size_t)(nl - p);
		if (memchr(p, '\0', n)) {
			error = amlops_err_set(AMLOPS_EINVALID, "a NUL byte");
			goto fail;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl + 1;
		if (ended) {
			error =
			    amlops_err_set(AMLOPS_EINVALID, "text after 'end'");
			goto fail;
		}
		if (lineno == 1) {
			if (strcmp(line, "amlops-outcome 1") != 0) {
				error = amlops_err_set(AMLOPS_EINVALID,
				    "not an outcome: '%.32s'", line);
				goto fail;
			}
			continue;
		}
		if (!strcmp(line, "end")) {
			ended = 1;
			continue;
		}
		if ((sp = strchr(line, ' ')) == NULL) {
			error = amlops_err_set(
			    AMLOPS_EINVALID, "no value in '%.32s'", line);
			goto fail;
		}
		*sp = '\0';
		if ((error = parse_line(o, line, sp + 1, &seen)) < 0)
			goto fail;
	}
	if (!ended) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "pass child message: no 'end' line (cut short?)");
		goto reset;
	}
	if ((seen & 3u) != 3u) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "pass child message: no kind or no result");
		goto reset;
	}
	return 0;
fail:
	amlops_err_prefix(error, "pass child message: line %u", lineno);
reset:
	memset(o, 0, sizeof(*o));
	o->result = AMLOPS_WATCH_FAILED;
	return error;
}

/* ------------------------------------------------------------------ */
/* The child */

static volatile sig_atomic_t *child_stop;

/* In the child: every SIGTERM or SIGINT only asks the pass to stop. */
static void
child_on_signal(int sig)
{
	(void)sig;
	if (child_stop)
		*child_stop = 1;
}

/*
 * Closes the sockets the child inherited (the /metrics listener and its
 * connections), so that the port closes with the parent even while a
 * child runs on.
 */
static void
close_sockets(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(d) || fd < 3)
			continue;
		if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
			close(fd);
	}
	closedir(d);
}

static void
child_main(int fd, void (*fn)(void *ctx, int fd), void *ctx,
    const struct amlops_watch_child_opts *o, const sigset_t *mask)
{
	struct sigaction sa;

	amlops_watch_child_pid = 0;
	child_stop = o->stop;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = child_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL); /* the parent reloads */
	close_sockets();
	/* a stop forwarded before the handlers were in place comes now */
	pthread_sigmask(SIG_SETMASK, o->runmask ? o->runmask : mask, NULL);
	fn(ctx, fd);
	close(fd);
	/*
	 * _exit: no atexit handler of the parent's (nor its stdio
	 * buffers) runs twice; fn freed what it allocated.
	 */
	_exit(0);
}

/* ------------------------------------------------------------------ */
/* The parent */

static void
forward_stop(pid_t pid, const struct amlops_watch_child_opts *o, int *sent)
{
	if (!*sent && o->stop && *o->stop) {
		log_info("event=stop_forwarded pid=%ld", (long)pid);
		kill(pid, SIGTERM);
		*sent = 1;
	}
}

int
amlops_watch_child_write(int fd, const struct amlops_watch_outcome *o)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	size_t off = 0;
	int error;

	if ((error = amlops_watch_outcome_format(&b, o)) < 0)
		goto done;
	while (off < b.len) {
		ssize_t n = write(fd, b.ptr + off, b.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error = amlops_err_sys(AMLOPS_ERROR, "write outcome");
			goto done;
		}
		off += (size_t)n;
	}
done:
	amlops_buf_release(&b);
	return error;
}

int
amlops_watch_child_run(struct amlops_watch_outcome *out,
    enum amlops_watch_kind kind, void (*fn)(void *ctx, int fd), void *ctx,
    const struct amlops_watch_child_opts *o)
{
	char *buf = amlops_xmalloc(AMLOPS_WATCH_MSG_MAX + 1);
	size_t len = 0;
	int fds[2], status = 0, sent = 0, over = 0, error;
	sigset_t old, blocked, before;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	if (pipe2(fds, O_CLOEXEC) < 0) {
		error = amlops_err_sys(AMLOPS_ERROR, "pipe");
		goto fail;
	}
	fflush(NULL);
	/* the child takes no signal before its handlers are set */
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGTERM);
	sigaddset(&blocked, SIGINT);
	sigaddset(&blocked, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &blocked, &before);
	if ((pid = fork()) < 0) {
		error = amlops_err_sys(AMLOPS_ERROR, "fork");
		pthread_sigmask(SIG_SETMASK, &before, NULL);
		close(fds[0]);
		close(fds[1]);
		goto fail;
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(fds[1], fn, ctx, o, &before);
	}
	amlops_watch_child_pid = pid;
	pthread_sigmask(SIG_SETMASK, &before, NULL);
	close(fds[1]);
	log_debug("%s: kind=%s pid=%ld", __func__, amlops_watch_kind_name(kind),
	    (long)pid);
	/* the message, to EOF; signals are taken only inside ppoll */
	for (;;) {
		struct pollfd pfd[2] = {{fds[0], POLLIN, 0}, {-1, POLLIN, 0}};
		char *dst = over ? NULL : buf + len;
		char sink[512];
		ssize_t n;

		forward_stop(pid, o, &sent);
		if (o->serve)
			pfd[1].fd = o->serve->fd; /* /metrics meanwhile */
		if (ppoll(pfd, 2, NULL, o->waitmask) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			o->serve->run(o->serve->ctx);
		if (!pfd[0].revents)
			continue;
		if (dst)
			n = read(fds[0], dst, AMLOPS_WATCH_MSG_MAX + 1 - len);
		else
			n = read(fds[0], sink, sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (dst && (len += (size_t)n) > AMLOPS_WATCH_MSG_MAX)
			over = 1;
	}
	close(fds[0]);
	pthread_sigmask(SIG_SETMASK, o->waitmask, &old);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 0;
			break;
		}
		forward_stop(pid, o, &sent);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	amlops_watch_child_pid = 0;

	if (WIFSIGNALED(status)) {
		const char *abbrev = sigabbrev_np(WTERMSIG(status));

		if (abbrev)
			error = amlops_err_set(AMLOPS_ERROR,
			    "pass child killed by signal SIG%s", abbrev);
		else
			error = amlops_err_set(AMLOPS_ERROR,
			    "pass child killed by signal %d", WTERMSIG(status));
		goto fail;
	}
	if (len == 0) {
		error = amlops_err_set(AMLOPS_ERROR,
		    "pass child exited %d without a result",
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		goto fail;
	}
	if ((error = amlops_watch_outcome_parse(
	         out, buf, over ? AMLOPS_WATCH_MSG_MAX + 1 : len)) < 0)
		goto fail;
	if (out->kind != kind) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "pass child message: kind %s, expected %s",
		    amlops_watch_kind_name(out->kind),
		    amlops_watch_kind_name(kind));
		goto fail;
	}
	free(buf);
	return 0;
fail:
	free(buf);
	memset(out, 0, sizeof(*out));
	out->kind = kind;
	out->result = AMLOPS_WATCH_FAILED;
	if (kind == AMLOPS_WATCH_KIND_DRIFT)
		snprintf(out->drift, sizeof(out->drift), "failed");
	snprintf(out->error, sizeof(out->error), "%s", amlops_err_last());
	return error;
}
