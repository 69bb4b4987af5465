/*
 * Unit tests of the host's pieces that need no HTTP: ISO 8601 durations,
 * the content digest of the store, host.json for clients, and
 * amlops_host_handle() on a real (in-process) host for the requests that
 * never reach a worker: auth, api-version, state corruption, the lock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "amlops/err.h"
#include "amlops/hostinfo.h"
#include "amlops/util.h"
#include "local/host.h"

#define WS                                                                     \
	"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"  \
	"local/providers/Microsoft.MachineLearningServices/workspaces/local"

static char *
tmpdir(void)
{
	char tmpl[] = "/tmp/amlops-test-host.XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	return amlops_xstrdup(tmpl);
}

static void
rm_rf(const char *path)
{
	char *cmd = amlops_xasprintf("rm -rf '%s'", path);

	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	assert_int_equal(
	    amlops_file_write_atomic(path, text, strlen(text), mode), 0);
}

static void
host__durations_parse_as_azure_writes_them(void **state)
{
	int64_t ms = -1;

	assert_int_equal(host_parse_duration_ms(&ms, "PT5S"), 0);
	assert_int_equal(ms, 5000);
	assert_int_equal(host_parse_duration_ms(&ms, "PT0.5S"), 0);
	assert_int_equal(ms, 500);
	assert_int_equal(host_parse_duration_ms(&ms, "PT1M30S"), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(host_parse_duration_ms(&ms, "PT5M"), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(host_parse_duration_ms(&ms, "P1DT2H"), 0);
	assert_int_equal(ms, 93600000);
}

static void
host__bad_durations_are_refused_with_the_input(void **state)
{
	const char *bad[] = {"5S", "PT", "P", "PTS", "PT5X", "P5S", "PT5", "",
	    "PT1S2", "PTT5S", "PT-5S"};
	int64_t ms;
	size_t i;
	char want[200];

	for (i = 0; i < AMLOPS_ARRAY_SIZE(bad); i++) {
		assert_int_equal(
		    host_parse_duration_ms(&ms, bad[i]), AMLOPS_EINVALID);
		snprintf(want, sizeof(want),
		    "'%s' is not an ISO 8601 duration (expected, for example, "
		    "'PT5S' or 'PT0.5S')",
		    bad[i]);
		assert_string_equal(amlops_err_last(), want);
	}
}

static void
host__tree_digest_covers_names_bits_and_bytes(void **state)
{
	char *d = tmpdir(), *a, *b, *p;
	char da[65], db[65], dc[65];

	a = amlops_xasprintf("%s/one/code", d);
	b = amlops_xasprintf("%s/two/code", d);
	assert_int_equal(amlops_mkdir_p(a, 0700), 0);
	assert_int_equal(amlops_mkdir_p(b, 0700), 0);
	p = amlops_xasprintf("%s/score.py", a);
	write_file(p, "def run(x): return x\n", 0600);
	free(p);
	p = amlops_xasprintf("%s/score.py", b);
	write_file(p, "def run(x): return x\n", 0600);

	/* the same tree under the same name: the same digest */
	assert_int_equal(host_tree_digest(da, a), 0);
	assert_int_equal(host_tree_digest(db, b), 0);
	assert_int_equal(strlen(da), 64);
	assert_string_equal(da, db);

	/* one more byte, or an executable bit, changes it */
	write_file(p, "def run(x): return x \n", 0600);
	assert_int_equal(host_tree_digest(dc, b), 0);
	assert_string_not_equal(da, dc);
	write_file(p, "def run(x): return x\n", 0700);
	assert_int_equal(host_tree_digest(dc, b), 0);
	assert_string_not_equal(da, dc);
	free(p);

	/* a copy has the digest of its source */
	free(b);
	b = amlops_xasprintf("%s/three/code", d);
	assert_int_equal(amlops_mkdir_p(b, 0700), 0);
	assert_int_equal(host_copy_tree(a, b), 0);
	assert_int_equal(host_tree_digest(db, b), 0);
	assert_string_equal(da, db);

	p = amlops_xasprintf("%s/missing", d);
	assert_int_equal(host_tree_digest(dc, p), AMLOPS_ENOTFOUND);
	free(p);
	rm_rf(d);
	free(a);
	free(b);
	free(d);
}

static void
host__hostinfo_reads_host_json_and_checks_the_pid(void **state)
{
	struct amlops_hostinfo *info = NULL;
	char *d = tmpdir(), *p = amlops_xasprintf("%s/host.json", d);
	char *want, *text;

	assert_int_equal(amlops_hostinfo_read(&info, d), AMLOPS_ENOTFOUND);
	want = amlops_xasprintf("no amlops host is running on state dir '%s' "
	                        "(start one with 'amlops host --state-dir %s')",
	    d, d);
	assert_string_equal(amlops_err_last(), want);
	free(want);

	write_file(p, "[1]", 0600);
	assert_int_equal(amlops_hostinfo_read(&info, d), AMLOPS_EINVALID);
	want = amlops_xasprintf("'%s' is not a JSON object", p);
	assert_string_equal(amlops_err_last(), want);
	free(want);

	write_file(p, "{\"url\":\"http://127.0.0.1:1\"}", 0600);
	assert_int_equal(amlops_hostinfo_read(&info, d), AMLOPS_EINVALID);
	want = amlops_xasprintf("'%s' lacks 'url', 'token' or 'pid'", p);
	assert_string_equal(amlops_err_last(), want);
	free(want);

	/* pid 2^22+1 is above Linux's pid_max */
	write_file(p,
	    "{\"url\":\"http://127.0.0.1:1\",\"token\":\"t\",\"pid\":4194305}",
	    0600);
	assert_int_equal(amlops_hostinfo_read(&info, d), AMLOPS_ENOTFOUND);
	want = amlops_xasprintf("the amlops host of state dir '%s' (pid "
	                        "4194305) is not running",
	    d);
	assert_string_equal(amlops_err_last(), want);
	free(want);

	text = amlops_xasprintf("{\"url\":\"http://127.0.0.1:1\",\"token\":"
	                        "\"tok\",\"pid\":%ld,\"workspace\":\"local\"}",
	    (long)getpid());
	write_file(p, text, 0600);
	free(text);
	assert_int_equal(amlops_hostinfo_read(&info, d), 0);
	assert_string_equal(info->url, "http://127.0.0.1:1");
	assert_string_equal(info->token, "tok");
	assert_string_equal(info->workspace, "local");
	assert_int_equal(info->pid, getpid());
	amlops_hostinfo_free(info);
	rm_rf(d);
	free(p);
	free(d);
}

static void
host__default_dir_follows_xdg(void **state)
{
	char *dir = NULL, *old = getenv("XDG_STATE_HOME");

	old = old ? amlops_xstrdup(old) : NULL;
	setenv("XDG_STATE_HOME", "/x/state", 1);
	assert_int_equal(amlops_hostinfo_default_dir(&dir), 0);
	assert_string_equal(dir, "/x/state/amlops");
	free(dir);
	unsetenv("XDG_STATE_HOME");
	setenv("HOME", "/home/u", 1);
	assert_int_equal(amlops_hostinfo_default_dir(&dir), 0);
	assert_string_equal(dir, "/home/u/.local/state/amlops");
	free(dir);
	if (old)
		setenv("XDG_STATE_HOME", old, 1);
	free(old);
}

/* A host on a fresh state dir; runs the real runtime, no workers. */
static struct amlops_host *
start(const char *dir)
{
	struct amlops_host_opts o = {0};
	struct amlops_host *h = NULL;

	o.state_dir = dir;
	o.retry_after = -1;
	o.faults = 1;
	assert_int_equal(amlops_host_start(&h, &o), 0);
	return h;
}

static void
handle(struct amlops_host *h, const char *method, const char *url,
    const char *api, const char *auth, const char *body, struct host_resp *r)
{
	memset(r, 0, sizeof(*r));
	amlops_host_handle(
	    h, method, url, api, auth, body, body ? strlen(body) : 0, r);
}

static void
assert_error(const struct host_resp *r, int status, const char *code,
    const char *message)
{
	const cJSON *err = cJSON_GetObjectItem(r->json, "error");

	assert_int_equal(r->status, status);
	assert_string_equal(host_json_str(err, "code"), code);
	assert_string_equal(host_json_str(err, "message"), message);
}

static void
host__handle_checks_token_and_api_version_first(void **state)
{
	char *d = tmpdir(), *auth;
	struct amlops_host *h = start(d);
	struct host_resp r;

	auth = amlops_xasprintf("Bearer %s", h->token);
	handle(h, "GET", WS, "2024-04-01", NULL, NULL, &r);
	assert_error(&r, 401, "AuthenticationFailed",
	    "authentication failed: the 'Authorization' header is missing "
	    "or is not a bearer token");
	host_resp_release(&r);
	handle(h, "GET", WS, "2024-04-01", "Basic dTpw", NULL, &r);
	assert_int_equal(r.status, 401);
	host_resp_release(&r);
	handle(h, "GET", WS, "2024-04-01", "Bearer nope", NULL, &r);
	assert_error(&r, 401, "InvalidAuthenticationToken",
	    "the access token is invalid");
	host_resp_release(&r);

	handle(h, "GET", WS, NULL, auth, NULL, &r);
	assert_error(&r, 400, "MissingApiVersionParameter",
	    "the api-version query parameter (?api-version=) is required "
	    "for all requests");
	host_resp_release(&r);
	handle(h, "GET", WS, "2024-04-01", auth, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(host_json_str(r.json, "location"), "local");
	host_resp_release(&r);

	/* bad fault bodies */
	handle(h, "POST", "/_amlops/faults", NULL, auth, "{", &r);
	assert_error(&r, 400, "InvalidRequestContent",
	    "the fault body is not a JSON object");
	host_resp_release(&r);
	handle(h, "PUT", "/_amlops/faults", NULL, auth, "{}", &r);
	assert_error(&r, 405, "MethodNotAllowed",
	    "method 'PUT' is not allowed on '/_amlops/faults'");
	host_resp_release(&r);

	/* a GET of an unknown workspace does not add it to the state */
	handle(h, "GET",
	    "/subscriptions/s/resourceGroups/r/providers/"
	    "Microsoft.MachineLearningServices/workspaces/elsewhere/"
	    "onlineEndpoints",
	    "2024-04-01", auth, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_null(host_state_ws(h, "s", "r", "elsewhere", 0));
	host_resp_release(&r);

	amlops_host_free(h);
	rm_rf(d);
	free(auth);
	free(d);
}

static void
host__faults_are_off_by_default(void **state)
{
	struct amlops_host_opts o = {0};
	struct amlops_host *h = NULL;
	char *d = tmpdir(), *auth;
	struct host_resp r;

	o.state_dir = d;
	o.retry_after = -1;
	assert_int_equal(amlops_host_start(&h, &o), 0);
	auth = amlops_xasprintf("Bearer %s", h->token);
	handle(h, "POST", "/_amlops/faults", "2024-04-01", auth,
	    "{\"count\":1,\"status\":500}", &r);
	assert_error(&r, 404, "NotFound",
	    "the path '/_amlops/faults' is not part of the Azure ML REST API "
	    "this host serves");
	host_resp_release(&r);
	amlops_host_free(h);
	rm_rf(d);
	free(auth);
	free(d);
}

static void
host__corrupt_state_and_a_second_host_are_refused(void **state)
{
	struct amlops_host_opts o = {0};
	struct amlops_host *h, *h2 = NULL;
	char *d = tmpdir(), *p, *want;

	h = start(d);
	o.state_dir = d;
	o.retry_after = -1;
	assert_int_equal(amlops_host_start(&h2, &o), AMLOPS_ELOCKED);
	assert_null(h2);
	want = amlops_xasprintf("another amlops host (pid %ld) is running on "
	                        "state dir '%s'",
	    (long)getpid(), d);
	assert_string_equal(amlops_err_last(), want);
	free(want);
	amlops_host_free(h);

	p = amlops_xasprintf("%s/state.json", d);
	write_file(p, "{\"version\":1,", 0600);
	assert_int_equal(amlops_host_start(&h2, &o), AMLOPS_EINVALID);
	want = amlops_xasprintf(
	    "'%s' is not a JSON object; the state is corrupt", p);
	assert_string_equal(amlops_err_last(), want);
	free(want);
	free(p);
	rm_rf(d);
	free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(host__durations_parse_as_azure_writes_them),
	    cmocka_unit_test(host__bad_durations_are_refused_with_the_input),
	    cmocka_unit_test(host__tree_digest_covers_names_bits_and_bytes),
	    cmocka_unit_test(host__hostinfo_reads_host_json_and_checks_the_pid),
	    cmocka_unit_test(host__default_dir_follows_xdg),
	    cmocka_unit_test(host__handle_checks_token_and_api_version_first),
	    cmocka_unit_test(host__faults_are_off_by_default),
	    cmocka_unit_test(host__corrupt_state_and_a_second_host_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
