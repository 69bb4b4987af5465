/*
 * A watch pass in a child process (src/watch/child.c): the outcome
 * message round-trips, every malformed message is refused with the
 * exact reason, and amlops_watch_child_run() with real forked children:
 * a good outcome, garbage, an oversized message, nothing written, a
 * child killed by a signal, a stop forwarded as SIGTERM (SIGHUP left to
 * the parent), and the
 * sockets the child must not keep open. Then a child's outcome merged
 * into the metrics, and the refs' stamp that lets a local --poll skip
 * the fork when no ref moved.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "amlops/err.h"
#include "amlops/util.h"
#include "amlops/watch.h"

#define H1 "0123456789abcdef0123456789abcdef01234567"
#define H2 "89abcdef0123456789abcdef0123456789abcdef"

static void
full_outcome(struct amlops_watch_outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = AMLOPS_WATCH_KIND_RECONCILE;
	o->result = AMLOPS_WATCH_FAILED;
	snprintf(o->head, sizeof(o->head), "%s", H1);
	snprintf(o->applied, sizeof(o->applied), "%s", H2);
	o->ms = 1234;
	o->retries = 3;
	snprintf(o->steps[0].aspect, sizeof(o->steps[0].aspect), "traffic");
	snprintf(o->steps[0].result, sizeof(o->steps[0].result), "succeeded");
	o->steps[0].n = 2;
	snprintf(o->steps[1].aspect, sizeof(o->steps[1].aspect), "scale");
	snprintf(o->steps[1].result, sizeof(o->steps[1].result), "failed");
	o->steps[1].n = 1;
	o->nsteps = 2;
	snprintf(o->drift, sizeof(o->drift), "drift");
	o->drifted = 4;
	snprintf(o->gitdir, sizeof(o->gitdir), "/r/a b/.git/");
	snprintf(o->error, sizeof(o->error), "two\nlines\tand a tab");
}

static void
child__outcome_round_trip(void **state)
{
	struct amlops_watch_outcome o, p;
	struct amlops_buf b = AMLOPS_BUF_INIT;

	(void)state;
	full_outcome(&o);
	assert_int_equal(amlops_watch_outcome_format(&b, &o), 0);
	assert_string_equal(amlops_buf_cstr(&b), "amlops-outcome 1\n"
	                                         "kind reconcile\n"
	                                         "result failed\n"
	                                         "head " H1 "\n"
	                                         "applied " H2 "\n"
	                                         "ms 1234\n"
	                                         "retries 3\n"
	                                         "step traffic succeeded 2\n"
	                                         "step scale failed 1\n"
	                                         "drift drift 4\n"
	                                         "gitdir /r/a b/.git/\n"
	                                         "error two lines and a tab\n"
	                                         "end\n");
	assert_int_equal(amlops_watch_outcome_parse(&p, b.ptr, b.len), 0);
	assert_int_equal(p.kind, AMLOPS_WATCH_KIND_RECONCILE);
	assert_int_equal(p.result, AMLOPS_WATCH_FAILED);
	assert_string_equal(p.head, H1);
	assert_string_equal(p.applied, H2);
	assert_int_equal(p.ms, 1234);
	assert_int_equal(p.retries, 3);
	assert_int_equal(p.nsteps, 2);
	assert_string_equal(p.steps[1].aspect, "scale");
	assert_string_equal(p.steps[1].result, "failed");
	assert_int_equal(p.steps[1].n, 1);
	assert_string_equal(p.drift, "drift");
	assert_int_equal(p.drifted, 4);
	assert_string_equal(p.gitdir, "/r/a b/.git/");
	assert_string_equal(p.error, "two lines and a tab");
	amlops_buf_release(&b);

	/* the least a message says */
	{
		const char *least = "amlops-outcome 1\nkind probe\n"
		                    "result up_to_date\nend\n";

		assert_int_equal(
		    amlops_watch_outcome_parse(&p, least, strlen(least)), 0);
	}
	assert_int_equal(p.kind, AMLOPS_WATCH_KIND_PROBE);
	assert_int_equal(p.result, AMLOPS_WATCH_UP_TO_DATE);
	assert_string_equal(p.head, "");
}

static void
child__bad_messages(void **state)
{
	static const struct {
		const char *msg, *err;
	} cases[] = {
	    {"", "pass child message: empty"},
	    {"hello\n", "pass child message: line 1: not an outcome: 'hello'"},
	    {"amlops-outcome 2\nend\n",
	        "pass child message: line 1: not an outcome: "
	        "'amlops-outcome 2'"},
	    {"amlops-outcome 1\nkind reconcile\nresult failed\n",
	        "pass child message: no 'end' line (cut short?)"},
	    {"amlops-outcome 1\nkind reconcile\nresult failed\nend",
	        "pass child message: line 4: no newline at the end"},
	    {"amlops-outcome 1\nkind reconcile\nend\n",
	        "pass child message: no kind or no result"},
	    {"amlops-outcome 1\nkind nap\nresult failed\nend\n",
	        "pass child message: line 2: bad kind 'nap'"},
	    {"amlops-outcome 1\nkind drift\nresult maybe\nend\n",
	        "pass child message: line 3: bad result 'maybe'"},
	    {"amlops-outcome 1\nkind drift\nkind drift\nend\n",
	        "pass child message: line 3: field 'kind' given twice"},
	    {"amlops-outcome 1\nkind drift\nresult failed\nhead abc\nend\n",
	        "pass child message: line 4: bad head 'abc'"},
	    {"amlops-outcome 1\nkind drift\nresult failed\nms -5\nend\n",
	        "pass child message: line 4: bad ms '-5'"},
	    {"amlops-outcome 1\nkind drift\nresult failed\nretries "
	     "99999999999999999999\nend\n",
	        "pass child message: line 4: bad retries "
	        "'99999999999999999999'"},
	    {"amlops-outcome 1\nkind drift\nresult failed\nstep a b\nend\n",
	        "pass child message: line 4: bad step 'a b'"},
	    {"amlops-outcome 1\nkind drift\nresult failed\nstep A ok 1\nend\n",
	        "pass child message: line 4: bad step 'A ok 1'"},
	    {"amlops-outcome 1\nkind drift\nresult failed\ndrift sunny "
	     "1\nend\n",
	        "pass child message: line 4: bad drift 'sunny 1'"},
	    {"amlops-outcome 1\nkind drift\nresult failed\nweather "
	     "fine\nend\n",
	        "pass child message: line 4: unknown field 'weather'"},
	    {"amlops-outcome 1\nkind drift\nresult failed\nnovalue\nend\n",
	        "pass child message: line 4: no value in 'novalue'"},
	    {"amlops-outcome 1\nkind drift\nresult failed\nend\nkind x\n",
	        "pass child message: line 5: text after 'end'"},
	};
	struct amlops_watch_outcome o;

	(void)state;
	for (size_t i = 0; i < AMLOPS_ARRAY_SIZE(cases); i++) {
		int rc = amlops_watch_outcome_parse(
		    &o, cases[i].msg, strlen(cases[i].msg));

		if (rc != AMLOPS_EINVALID ||
		    strcmp(amlops_err_last(), cases[i].err) != 0)
			fail_msg("case %zu: rc %d, '%s', expected '%s'", i, rc,
			    amlops_err_last(), cases[i].err);
		assert_int_equal(o.result, AMLOPS_WATCH_FAILED);
		assert_string_equal(o.head, "");
		amlops_err_clear();
	}
	/* a NUL byte inside a line */
	assert_int_equal(amlops_watch_outcome_parse(
	                     &o, "amlops-outcome 1\nkind d\0x\nend\n", 28),
	    AMLOPS_EINVALID);
	assert_string_equal(
	    amlops_err_last(), "pass child message: line 2: a NUL byte");
}

static void
child__too_many_steps_and_long_fields(void **state)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	struct amlops_watch_outcome o;
	char big[1100];

	(void)state;
	amlops_buf_puts(&b, "amlops-outcome 1\nkind drift\nresult failed\n");
	for (int i = 0; i <= AMLOPS_WATCH_MSG_STEPS; i++)
		amlops_buf_printf(&b, "step a%d ok 1\n", i);
	amlops_buf_puts(&b, "end\n");
	assert_int_equal(
	    amlops_watch_outcome_parse(&o, b.ptr, b.len), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "pass child message: line 52: more than 48 step lines");
	amlops_buf_release(&b);

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	amlops_buf_printf(&b,
	    "amlops-outcome 1\nkind drift\nresult failed\nerror %s\nend\n",
	    big);
	assert_int_equal(
	    amlops_watch_outcome_parse(&o, b.ptr, b.len), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "pass child message: line 4: field 'error' longer than 1023 "
	    "bytes");
	amlops_buf_release(&b);
	amlops_err_clear();
}

/* ------------------------------------------------------------------ */
/* Real children */

static void
fn_good(void *ctx, int fd)
{
	struct amlops_watch_outcome o;

	(void)ctx;
	full_outcome(&o);
	o.result = AMLOPS_WATCH_SUCCEEDED;
	o.error[0] = '\0';
	if (amlops_watch_child_write(fd, &o) < 0)
		_exit(5);
}

static void
fn_garbage(void *ctx, int fd)
{
	(void)ctx;
	if (write(fd, "hello\n", 6) < 0)
		_exit(5);
}

static void
fn_oversized(void *ctx, int fd)
{
	char line[100];

	(void)ctx;
	memset(line, 'y', sizeof(line));
	for (int i = 0; i < 300; i++) /* 30000 bytes */
		if (write(fd, line, sizeof(line)) < 0)
			_exit(5);
}

static void
fn_silent(void *ctx, int fd)
{
	(void)fd;
	if (ctx)
		_exit(3);
}

static void
fn_killed(void *ctx, int fd)
{
	(void)ctx;
	(void)fd;
	kill(getpid(), SIGKILL);
	pause();
}

static void
fn_wrong_kind(void *ctx, int fd)
{
	struct amlops_watch_outcome o;

	(void)ctx;
	memset(&o, 0, sizeof(o));
	o.kind = AMLOPS_WATCH_KIND_RELOAD;
	o.result = AMLOPS_WATCH_SUCCEEDED;
	amlops_watch_child_write(fd, &o);
}

static void
run_expect_fail(void (*fn)(void *, int), void *ctx, const char *err)
{
	struct amlops_watch_child_opts co = {NULL, NULL, NULL, NULL};
	struct amlops_watch_outcome o;

	assert_true(amlops_watch_child_run(
	                &o, AMLOPS_WATCH_KIND_DRIFT, fn, ctx, &co) < 0);
	assert_string_equal(amlops_err_last(), err);
	assert_int_equal(o.kind, AMLOPS_WATCH_KIND_DRIFT);
	assert_int_equal(o.result, AMLOPS_WATCH_FAILED);
	assert_string_equal(o.drift, "failed");
	assert_string_equal(o.error, err);
	assert_int_equal(amlops_watch_child_pid, 0);
	amlops_err_clear();
}

static void
child__run_good_and_bad_children(void **state)
{
	struct amlops_watch_child_opts co = {NULL, NULL, NULL, NULL};
	struct amlops_watch_outcome o;
	int dummy = 1;

	(void)state;
	assert_int_equal(amlops_watch_child_run(&o, AMLOPS_WATCH_KIND_RECONCILE,
	                     fn_good, NULL, &co),
	    0);
	assert_int_equal(o.result, AMLOPS_WATCH_SUCCEEDED);
	assert_string_equal(o.head, H1);
	assert_int_equal(o.nsteps, 2);
	assert_int_equal(amlops_watch_child_pid, 0);

	run_expect_fail(fn_garbage, NULL,
	    "pass child message: line 1: not an outcome: 'hello'");
	run_expect_fail(
	    fn_oversized, NULL, "pass child message: more than 8192 bytes");
	run_expect_fail(
	    fn_silent, NULL, "pass child exited 0 without a result");
	run_expect_fail(
	    fn_silent, &dummy, "pass child exited 3 without a result");
	run_expect_fail(fn_killed, NULL, "pass child killed by signal SIGKILL");
	run_expect_fail(fn_wrong_kind, NULL,
	    "pass child message: kind reload, expected drift");
}

/* The child waits (5 s at most) for the stop its parent forwards. */
static volatile sig_atomic_t stop_flag;

static void
on_alarm(int sig)
{
	(void)sig;
	stop_flag = 1; /* as the parent's SIGTERM handler does */
}

static void
fn_wait_stop(void *ctx, int fd)
{
	struct amlops_watch_outcome o;

	(void)ctx;
	/* the parent reloads: a SIGHUP does not end the child */
	kill(getpid(), SIGHUP);
	memset(&o, 0, sizeof(o));
	o.kind = AMLOPS_WATCH_KIND_RECONCILE;
	o.result = AMLOPS_WATCH_SUCCEEDED;
	for (int i = 0; i < 500 && !stop_flag; i++)
		usleep(10000);
	if (stop_flag)
		o.result = AMLOPS_WATCH_INTERRUPTED;
	amlops_watch_child_write(fd, &o);
}

static void
child__stop_is_forwarded_and_sighup_ignored(void **state)
{
	struct amlops_watch_child_opts co = {&stop_flag, NULL, NULL, NULL};
	struct amlops_watch_outcome o;
	struct sigaction sa;
	int64_t t0 = amlops_now_ms();

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
	stop_flag = 0;
	/* the parent's flag goes up 100 ms into the pass */
	ualarm(100000, 0);
	assert_int_equal(amlops_watch_child_run(&o, AMLOPS_WATCH_KIND_RECONCILE,
	                     fn_wait_stop, NULL, &co),
	    0);
	assert_int_equal(o.result, AMLOPS_WATCH_INTERRUPTED);
	assert_true(amlops_now_ms() - t0 < 4000);
	stop_flag = 0;
	signal(SIGALRM, SIG_DFL);
}

/* Reports in `error` whether the fd given in ctx is still open. */
static void
fn_fd_state(void *ctx, int fd)
{
	struct amlops_watch_outcome o;
	int *fds = ctx;

	memset(&o, 0, sizeof(o));
	o.kind = AMLOPS_WATCH_KIND_PROBE;
	o.result = AMLOPS_WATCH_SUCCEEDED;
	snprintf(o.error, sizeof(o.error), "socket %s, file %s",
	    fcntl(fds[0], F_GETFD) < 0 ? "closed" : "open",
	    fcntl(fds[1], F_GETFD) < 0 ? "closed" : "open");
	amlops_watch_child_write(fd, &o);
}

static void
child__closes_inherited_sockets_only(void **state)
{
	struct amlops_watch_child_opts co = {NULL, NULL, NULL, NULL};
	struct amlops_watch_outcome o;
	int fds[2];

	(void)state;
	fds[0] = socket(AF_INET, SOCK_STREAM, 0);
	fds[1] = open("/dev/null", O_RDONLY);
	assert_true(fds[0] >= 0 && fds[1] >= 0);
	assert_int_equal(amlops_watch_child_run(&o, AMLOPS_WATCH_KIND_PROBE,
	                     fn_fd_state, fds, &co),
	    0);
	assert_string_equal(o.error, "socket closed, file open");
	/* the parent's own are untouched */
	assert_true(fcntl(fds[0], F_GETFD) >= 0);
	close(fds[0]);
	close(fds[1]);
}

static void
child__outcome_merged_into_metrics(void **state)
{
	struct amlops_watch_metrics *m = amlops_watch_metrics_new("local");
	struct amlops_watch_outcome o;
	struct amlops_buf b = AMLOPS_BUF_INIT;
	char why[256];

	(void)state;
	full_outcome(&o);
	snprintf(o.error, sizeof(o.error),
	    "pass child killed by signal "
	    "SIGKILL");
	amlops_watch_metrics_merge(m, &o);
	assert_int_equal(amlops_watch_metrics_render(&b, m), 0);
	assert_non_null(strstr(amlops_buf_cstr(&b),
	    "amlops_reconciles_total{result=\"failed\"} 1\n"));
	assert_non_null(strstr(amlops_buf_cstr(&b),
	    "amlops_steps_total{aspect=\"traffic\",result=\"succeeded\"} "
	    "2\n"));
	assert_non_null(strstr(amlops_buf_cstr(&b),
	    "amlops_steps_total{aspect=\"scale\",result=\"failed\"} 1\n"));
	assert_non_null(
	    strstr(amlops_buf_cstr(&b), "amlops_http_retries_total 3\n"));
	assert_non_null(strstr(amlops_buf_cstr(&b),
	    "amlops_drift_checks_total{result=\"drift\"} 1\n"));
	assert_non_null(
	    strstr(amlops_buf_cstr(&b), "amlops_drifted_endpoints 4\n"));
	assert_non_null(
	    strstr(amlops_buf_cstr(&b), "amlops_reconcile_failing 1\n"));
	assert_int_equal(
	    amlops_watch_metrics_healthy(m, 0, why, sizeof(why)), 0);
	assert_string_equal(why, "reconcile failing for 0s: pass child "
	                         "killed by signal SIGKILL");
	amlops_buf_release(&b);

	/* a probe sets the applied commit; an up-to-date pass counts none */
	memset(&o, 0, sizeof(o));
	o.kind = AMLOPS_WATCH_KIND_PROBE;
	snprintf(o.applied, sizeof(o.applied), "%s", H2);
	amlops_watch_metrics_merge(m, &o);
	o.kind = AMLOPS_WATCH_KIND_RECONCILE;
	o.result = AMLOPS_WATCH_UP_TO_DATE;
	amlops_watch_metrics_merge(m, &o);
	assert_int_equal(amlops_watch_metrics_render(&b, m), 0);
	assert_non_null(strstr(amlops_buf_cstr(&b),
	    "amlops_applied_info{target=\"local\",commit=\"" H2 "\"} 1\n"));
	assert_non_null(strstr(amlops_buf_cstr(&b),
	    "amlops_reconcile_duration_seconds_count 1\n"));
	amlops_buf_release(&b);
	amlops_watch_metrics_free(m);
	assert_string_equal(amlops_err_last(), "");
}

/* ------------------------------------------------------------------ */
/* The refs' stamp a local --poll compares before forking a pass */

static void
put(const char *dir, const char *name, const char *text)
{
	char *path = amlops_xasprintf("%s/%s", dir, name);
	char *tmp = amlops_xasprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	/* as git does: a new file renamed over the old one */
	assert_int_equal(rename(tmp, path), 0);
	free(path);
	free(tmp);
}

static void
child__refs_stamp_changes_with_a_ref_only(void **state)
{
	char dir[] = "/tmp/amlops-test-stamp.XXXXXX", cmd[96];
	uint64_t s0, s1;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(
	    cmd, sizeof(cmd), "mkdir -p %s/refs/heads %s/refs/notes", dir, dir);
	assert_int_equal(system(cmd), 0);
	put(dir, "HEAD", "ref: refs/heads/main\n");
	put(dir, "refs/heads/main", H1 "\n");
	s0 = amlops_watch_refs_stamp(dir);
	assert_true(s0 == amlops_watch_refs_stamp(dir));
	/* lock files, notes and amlops' applied refs do not count */
	put(dir, "refs/heads/main.lock", H2 "\n");
	put(dir, "refs/notes/amlops", H2 "\n");
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/refs/amlops/applied", dir);
	assert_int_equal(system(cmd), 0);
	put(dir, "refs/amlops/applied/local", H2 "\n");
	assert_true(s0 == amlops_watch_refs_stamp(dir));
	/* a branch moves */
	put(dir, "refs/heads/main", H2 "\n");
	s1 = amlops_watch_refs_stamp(dir);
	assert_true(s1 != s0);
	/* a tag, packed refs, HEAD */
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/refs/tags", dir);
	assert_int_equal(system(cmd), 0);
	put(dir, "refs/tags/v1", H1 "\n");
	assert_true(amlops_watch_refs_stamp(dir) != s1);
	s1 = amlops_watch_refs_stamp(dir);
	put(dir, "packed-refs", H1 " refs/heads/old\n");
	assert_true(amlops_watch_refs_stamp(dir) != s1);
	s1 = amlops_watch_refs_stamp(dir);
	put(dir, "HEAD", "ref: refs/heads/other\n");
	assert_true(amlops_watch_refs_stamp(dir) != s1);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(child__outcome_round_trip),
	    cmocka_unit_test(child__bad_messages),
	    cmocka_unit_test(child__too_many_steps_and_long_fields),
	    cmocka_unit_test(child__run_good_and_bad_children),
	    cmocka_unit_test(child__stop_is_forwarded_and_sighup_ignored),
	    cmocka_unit_test(child__closes_inherited_sockets_only),
	    cmocka_unit_test(child__outcome_merged_into_metrics),
	    cmocka_unit_test(child__refs_stamp_changes_with_a_ref_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
