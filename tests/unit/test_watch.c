/*
 * The watch module's parts on their own: the lock (the holder named in
 * the message), the metrics' exact Prometheus text and health, the
 * /healthz and /metrics server over a real socket and its listen address
 * errors, and the inotify trigger on a real folder laid out like a git
 * folder (loose refs, new branch folders, packed-refs; lock files and
 * notes ignored) and on a linked worktree's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/util.h"
#include "amlops/watch.h"

static char tmpdir[64];

static int
setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/amlops-test-watch.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

static int
teardown_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* ------------------------------------------------------------------ */

static void
watch__lock_names_its_holder(void **state)
{
	struct amlops_watch_lock *a = NULL, *b = NULL;
	struct amlops_buf text = AMLOPS_BUF_INIT;
	char *st = amlops_xasprintf("%s/state/sub", tmpdir);
	char *path = amlops_xasprintf("%s/reconcile.lock", st);
	char want[256], since[40];
	long pid;

	(void)state;
	assert_int_equal(amlops_watch_lock_take(&a, st), 0);
	assert_int_equal(amlops_file_read(&text, path, 1024), 0);
	assert_int_equal(
	    sscanf(amlops_buf_cstr(&text), "pid %ld since %39s", &pid, since),
	    2);
	assert_int_equal(pid, (long)getpid());
	/* another open file description: flock says no, even in-process */
	assert_int_equal(amlops_watch_lock_take(&b, st), AMLOPS_ELOCKED);
	assert_null(b);
	snprintf(want, sizeof(want), "locked by pid %ld since %s (%s)",
	    (long)getpid(), since, path);
	assert_string_equal(amlops_err_last(), want);
	amlops_watch_lock_free(a);
	/* released: the next one takes it */
	assert_int_equal(amlops_watch_lock_take(&b, st), 0);
	amlops_watch_lock_free(b);
	amlops_buf_release(&text);
	free(path);
	free(st);
}

static void
watch__lock_in_an_unwritable_place(void **state)
{
	struct amlops_watch_lock *l = NULL;
	char *file = amlops_xasprintf("%s/a-file", tmpdir);
	char *st = amlops_xasprintf("%s/a-file/state", tmpdir);

	(void)state;
	write_file(file, "x");
	assert_true(amlops_watch_lock_take(&l, st) < 0);
	assert_null(l);
	assert_non_null(strstr(amlops_err_last(), "a-file"));
	free(file);
	free(st);
}

/* ------------------------------------------------------------------ */

/* The value of a sample line `key` in `text`, or -1. */
static double
sample(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (!strncmp(p, key, n) && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	}
	return -1;
}

static void
watch__metrics_text(void **state)
{
	struct amlops_watch_metrics *m = amlops_watch_metrics_new("local");
	struct amlops_buf b = AMLOPS_BUF_INIT;
	const char *t;
	char why[256];

	(void)state;
	amlops_watch_metrics_applied(
	    m, "1111111111111111111111111111111111111111");
	amlops_watch_metrics_reconcile(
	    m, "succeeded", 300, "2222222222222222222222222222222222222222");
	amlops_watch_metrics_reconcile(m, "no_changes", 20, NULL);
	amlops_err_set(AMLOPS_EBACKEND, "step 1 failed");
	amlops_watch_metrics_reconcile(m, "failed", 4000, NULL);
	amlops_watch_metrics_step(m, "traffic", "succeeded");
	amlops_watch_metrics_step(m, "traffic", "succeeded");
	amlops_watch_metrics_step(m, "scale", "failed");
	amlops_watch_metrics_step(m, "a\"b", "x\\y");
	amlops_watch_metrics_drift(m, 2, "drift");
	assert_int_equal(amlops_watch_metrics_render(&b, m), 0);
	t = amlops_buf_cstr(&b);

	assert_true(
	    sample(t, "amlops_reconciles_total{result=\"succeeded\"}") == 1);
	assert_true(
	    sample(t, "amlops_reconciles_total{result=\"no_changes\"}") == 1);
	assert_true(
	    sample(t, "amlops_reconciles_total{result=\"failed\"}") == 1);
	assert_true(
	    sample(t, "amlops_reconciles_total{result=\"interrupted\"}") == 0);
	/* 0.02 and 0.3 under 0.5; 4 under 5 only */
	assert_true(
	    sample(t, "amlops_reconcile_duration_seconds_bucket{le=\"0.1\"}") ==
	    1);
	assert_true(
	    sample(t, "amlops_reconcile_duration_seconds_bucket{le=\"0.5\"}") ==
	    2);
	assert_true(
	    sample(t, "amlops_reconcile_duration_seconds_bucket{le=\"2.5\"}") ==
	    2);
	assert_true(
	    sample(t, "amlops_reconcile_duration_seconds_bucket{le=\"5\"}") ==
	    3);
	assert_true(
	    sample(t,
	        "amlops_reconcile_duration_seconds_bucket{le=\"+Inf\"}") == 3);
	assert_true(sample(t, "amlops_reconcile_duration_seconds_count") == 3);
	assert_true(sample(t, "amlops_reconcile_duration_seconds_sum") == 4.32);
	assert_true(sample(t, "amlops_steps_total{aspect=\"traffic\",result="
	                      "\"succeeded\"}") == 2);
	assert_true(
	    sample(t,
	        "amlops_steps_total{aspect=\"scale\",result=\"failed\"}") == 1);
	/* label values are escaped */
	assert_true(
	    sample(
	        t, "amlops_steps_total{aspect=\"a\\\"b\",result=\"x\\\\y\"}") ==
	    1);
	assert_true(
	    sample(t, "amlops_drift_checks_total{result=\"drift\"}") == 1);
	assert_true(sample(t, "amlops_drifted_endpoints") == 2);
	assert_true(sample(t, "amlops_reconcile_failing") == 1);
	assert_true(sample(t, "amlops_http_retries_total") >= 0);
	/* the commit of the last success, not the one known at start */
	assert_true(
	    sample(t, "amlops_applied_info{target=\"local\",commit="
	              "\"2222222222222222222222222222222222222222\"}") == 1);
	assert_null(strstr(t, "1111111111"));
	assert_non_null(
	    strstr(t, "# TYPE amlops_reconcile_duration_seconds histogram\n"));

	/* failing for >= 0 ms: unhealthy with the reason; a long threshold: ok
	 */
	assert_int_equal(
	    amlops_watch_metrics_healthy(m, 0, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "reconcile failing for 0s: step 1 failed"));
	assert_int_equal(
	    amlops_watch_metrics_healthy(m, 60000, why, sizeof(why)), 1);
	amlops_watch_metrics_reconcile(m, "succeeded", 10, NULL);
	assert_int_equal(
	    amlops_watch_metrics_healthy(m, 0, why, sizeof(why)), 1);
	amlops_buf_release(&b);
	amlops_watch_metrics_free(m);
	amlops_err_clear();
}

/* ------------------------------------------------------------------ */

/* GET `path` from 127.0.0.1:port; the whole response, malloc'd. */
static char *
http_get(int port, const char *method, const char *path)
{
	struct sockaddr_in sa;
	struct amlops_buf b = AMLOPS_BUF_INIT;
	char req[256], buf[4096];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n;

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(req, sizeof(req),
	    "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", method,
	    path);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		amlops_buf_add(&b, buf, (size_t)n);
	close(fd);
	return amlops_buf_detach(&b);
}

static void
watch__server_answers_healthz_and_metrics(void **state)
{
	struct amlops_watch_metrics *m = amlops_watch_metrics_new("azure");
	struct amlops_watch_server *s = NULL;
	char *r;
	int port;

	(void)state;
	assert_int_equal(amlops_watch_server_start(&s, "127.0.0.1:0", m, 0), 0);
	port = amlops_watch_server_port(s);
	assert_true(port > 0);

	r = http_get(port, "GET", "/healthz");
	assert_non_null(strstr(r, "HTTP/1.1 200"));
	assert_non_null(strstr(r, "\r\n\r\nok\n"));
	free(r);
	r = http_get(port, "GET", "/metrics");
	assert_non_null(strstr(r, "HTTP/1.1 200"));
	assert_non_null(strstr(r, "text/plain; version=0.0.4"));
	assert_non_null(
	    strstr(r, "amlops_reconciles_total{result=\"failed\"} 0\n"));
	free(r);
	amlops_err_set(AMLOPS_EBACKEND, "the service said no");
	amlops_watch_metrics_reconcile(m, "failed", 5, NULL);
	r = http_get(port, "GET", "/healthz");
	assert_non_null(strstr(r, "HTTP/1.1 503"));
	assert_non_null(strstr(r, "unhealthy: reconcile failing for 0s: the "
	                          "service said no\n"));
	free(r);
	r = http_get(port, "GET", "/other");
	assert_non_null(strstr(r, "HTTP/1.1 404"));
	free(r);
	r = http_get(port, "DELETE", "/metrics");
	assert_non_null(strstr(r, "HTTP/1.1 405"));
	free(r);
	amlops_watch_server_stop(s);
	amlops_watch_metrics_free(m);
	amlops_err_clear();
}

static void
watch__server_bad_listen_addresses(void **state)
{
	static const char *const bad[] = {"nowhere", "127.0.0.1",
	    "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "1.2.3:80",
	    "[::1:80", "[nothing]:80", "example.com:80", "127.0.0.1:80x"};
	struct amlops_watch_metrics *m = amlops_watch_metrics_new("local");
	struct amlops_watch_server *s = NULL;
	char want[256];

	(void)state;
	for (size_t i = 0; i < AMLOPS_ARRAY_SIZE(bad); i++) {
		assert_int_equal(amlops_watch_server_start(&s, bad[i], m, 0),
		    AMLOPS_EINVALID);
		assert_null(s);
		snprintf(want, sizeof(want),
		    "bad listen address '%s' (expected HOST:PORT, "
		    "[IPV6]:PORT or :PORT, e.g. 127.0.0.1:9464)",
		    bad[i]);
		assert_string_equal(amlops_err_last(), want);
	}
	/* every address, and IPv6 loopback */
	assert_int_equal(amlops_watch_server_start(&s, ":0", m, 0), 0);
	amlops_watch_server_stop(s);
	if (amlops_watch_server_start(&s, "[::1]:0", m, 0) == 0)
		amlops_watch_server_stop(s);
	amlops_watch_metrics_free(m);
	amlops_err_clear();
}

/* ------------------------------------------------------------------ */

/* Writes `path` the way git does: NAME.lock, then a rename. */
static void
git_write(const char *path)
{
	char *lock = amlops_xasprintf("%s.lock", path);

	write_file(lock, "0123456789012345678901234567890123456789\n");
	assert_int_equal(rename(lock, path), 0);
	free(lock);
}

static void
watch__trigger_sees_refs_not_notes(void **state)
{
	struct amlops_watch_trigger *t = NULL;
	char *heads = amlops_xasprintf("%s/refs/heads", tmpdir);
	char *notes = amlops_xasprintf("%s/refs/notes", tmpdir);
	char *p;
	int64_t t0;

	(void)state;
	assert_int_equal(amlops_mkdir_p(heads, 0755), 0);
	assert_int_equal(amlops_mkdir_p(notes, 0755), 0);
	assert_int_equal(amlops_watch_trigger_new(&t, tmpdir), 0);

	/* nothing: a timeout */
	t0 = amlops_now_ms();
	assert_int_equal(amlops_watch_trigger_wait(t, 50, 5, NULL), 0);
	assert_true(amlops_now_ms() - t0 >= 45);

	/* a loose ref, written as git writes it */
	p = amlops_xasprintf("%s/main", heads);
	git_write(p);
	free(p);
	t0 = amlops_now_ms();
	assert_int_equal(amlops_watch_trigger_wait(t, 5000, 5, NULL), 1);
	assert_true(amlops_now_ms() - t0 < 1000);

	/* a lock file alone, and a note: nothing */
	p = amlops_xasprintf("%s/other.lock", heads);
	write_file(p, "x");
	free(p);
	p = amlops_xasprintf("%s/amlops", notes);
	git_write(p);
	free(p);
	assert_int_equal(amlops_watch_trigger_wait(t, 100, 5, NULL), 0);

	/* a branch in a new folder: the folder is watched as it appears */
	p = amlops_xasprintf("%s/feature", heads);
	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
	assert_int_equal(amlops_watch_trigger_wait(t, 1000, 5, NULL), 1);
	p = amlops_xasprintf("%s/feature/x", heads);
	git_write(p);
	free(p);
	assert_int_equal(amlops_watch_trigger_wait(t, 5000, 5, NULL), 1);

	/* packed-refs (git pack-refs, a fetch) */
	p = amlops_xasprintf("%s/packed-refs", tmpdir);
	git_write(p);
	free(p);
	assert_int_equal(amlops_watch_trigger_wait(t, 5000, 5, NULL), 1);

	/* a burst is one change */
	for (int i = 0; i < 20; i++) {
		p = amlops_xasprintf("%s/b%d", heads, i);
		git_write(p);
		free(p);
	}
	assert_int_equal(amlops_watch_trigger_wait(t, 5000, 20, NULL), 1);
	assert_int_equal(amlops_watch_trigger_wait(t, 50, 5, NULL), 0);

	amlops_watch_trigger_free(t);
	free(heads);
	free(notes);
}

static void
watch__trigger_on_a_linked_worktree(void **state)
{
	struct amlops_watch_trigger *t = NULL;
	char *wt = amlops_xasprintf("%s/main/.git/worktrees/wt", tmpdir);
	char *heads = amlops_xasprintf("%s/main/.git/refs/heads", tmpdir);
	char *p;
	struct stat st;

	(void)state;
	assert_int_equal(amlops_mkdir_p(wt, 0755), 0);
	assert_int_equal(amlops_mkdir_p(heads, 0755), 0);
	p = amlops_xasprintf("%s/commondir", wt);
	write_file(p, "../..\n");
	free(p);
	assert_int_equal(amlops_watch_trigger_new(&t, wt), 0);
	/* nothing is created in the worktree's own folder */
	p = amlops_xasprintf("%s/refs", wt);
	assert_int_equal(stat(p, &st), -1);
	free(p);

	/* a branch of the shared repository */
	p = amlops_xasprintf("%s/main", heads);
	git_write(p);
	free(p);
	assert_int_equal(amlops_watch_trigger_wait(t, 5000, 5, NULL), 1);
	/* the shared packed-refs */
	p = amlops_xasprintf("%s/main/.git/packed-refs", tmpdir);
	git_write(p);
	free(p);
	assert_int_equal(amlops_watch_trigger_wait(t, 5000, 5, NULL), 1);
	/* the worktree's detached HEAD */
	p = amlops_xasprintf("%s/HEAD", wt);
	git_write(p);
	free(p);
	assert_int_equal(amlops_watch_trigger_wait(t, 5000, 5, NULL), 1);
	amlops_watch_trigger_free(t);
	free(wt);
	free(heads);
}

static void
watch__trigger_on_a_missing_folder(void **state)
{
	struct amlops_watch_trigger *t = NULL;
	char *gone = amlops_xasprintf("%s/not-there", tmpdir);
	char *want = amlops_xasprintf("cannot watch '%s': No such file or "
	                              "directory",
	    gone);

	(void)state;
	assert_int_equal(amlops_watch_trigger_new(&t, gone), AMLOPS_ERROR);
	assert_null(t);
	assert_string_equal(amlops_err_last(), want);
	free(gone);
	free(want);
	amlops_err_clear();
}

/* Logs `fmt` with `flags` and returns what went to stderr, malloc'd. */
static char *
logged(unsigned flags, const char *line)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	char *path = amlops_xasprintf("%s/stderr", tmpdir);
	int saved = dup(STDERR_FILENO), fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	close(fd);
	amlops_log_init("amlops", 0, flags);
	log_info("%s", line);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	amlops_log_init("amlops", 0, 0);
	assert_int_equal(amlops_file_read(&b, path, 4096), 0);
	free(path);
	return amlops_buf_detach(&b);
}

static void
watch__json_log_lines_carry_fields(void **state)
{
	char *s;

	(void)state;
	s = logged(AMLOPS_LOG_JSON,
	    "event=reconcile_done commit=abc result=failed "
	    "error=\"say \\\"no\\\" now\"");
	assert_non_null(strstr(s, "\"level\":\"info\",\"msg\":\"event="
	                          "reconcile_done commit=abc result=failed "
	                          "error=\\\"say \\\\\\\"no\\\\\\\" now\\\"\","
	                          "\"event\":\"reconcile_done\",\"commit\":"
	                          "\"abc\",\"result\":\"failed\",\"error\":"
	                          "\"say \\\"no\\\" now\"}\n"));
	free(s);
	/* free text: the message only */
	s = logged(AMLOPS_LOG_JSON, "started a host in /tmp/x");
	assert_non_null(strstr(s, "\"msg\":\"started a host in /tmp/x\"}\n"));
	free(s);
	/* a key that would clash with the line's own is not lifted */
	s = logged(AMLOPS_LOG_JSON, "level=9 x=1");
	assert_non_null(strstr(s, "\"msg\":\"level=9 x=1\"}\n"));
	free(s);
	/* text lines: a timestamp, the level, the pairs */
	s = logged(AMLOPS_LOG_TIMESTAMPS, "event=x a=1");
	assert_int_equal(strlen(s), strlen("2026-01-01T00:00:00Z level=info "
	                                   "event=x a=1\n"));
	assert_non_null(strstr(s, "Z level=info event=x a=1\n"));
	free(s);
}

static void
watch__result_names(void **state)
{
	(void)state;
	assert_string_equal(
	    amlops_watch_result_name(AMLOPS_WATCH_UP_TO_DATE), "up_to_date");
	assert_string_equal(
	    amlops_watch_result_name(AMLOPS_WATCH_NO_CHANGES), "no_changes");
	assert_string_equal(
	    amlops_watch_result_name(AMLOPS_WATCH_SUCCEEDED), "succeeded");
	assert_string_equal(
	    amlops_watch_result_name(AMLOPS_WATCH_FAILED), "failed");
	assert_string_equal(
	    amlops_watch_result_name(AMLOPS_WATCH_INTERRUPTED), "interrupted");
	assert_string_equal(amlops_watch_result_name(99), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        watch__lock_names_its_holder, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(
	        watch__lock_in_an_unwritable_place, setup_dir, teardown_dir),
	    cmocka_unit_test(watch__metrics_text),
	    cmocka_unit_test(watch__server_answers_healthz_and_metrics),
	    cmocka_unit_test(watch__server_bad_listen_addresses),
	    cmocka_unit_test_setup_teardown(
	        watch__trigger_sees_refs_not_notes, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(
	        watch__trigger_on_a_linked_worktree, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(
	        watch__trigger_on_a_missing_folder, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(
	        watch__json_log_lines_carry_fields, setup_dir, teardown_dir),
	    cmocka_unit_test(watch__result_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
