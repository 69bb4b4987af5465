/*
 * The REST client and the local backend against a real `amlops host`
 * (with --faults): retries and their timing (429 with Retry-After is
 * measured), 5xx retried, 400 not, dropped connections, long-running
 * operations to Succeeded and to Failed, live state read back, asset
 * references checked, a deployment whose model and code come from a git
 * commit serving real requests through a Python worker, and the shape of
 * every request body the client sent against the reference examples.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "amlops/backend.h"
#include "amlops/err.h"
#include "amlops/hostinfo.h"
#include "amlops/log.h"
#include "amlops/plan.h"
#include "amlops/rest.h"
#include "amlops/util.h"

#include "rest_git.h"
#include "rest_harness.h"

#define CONDA                                                                  \
	"name: scoring\ndependencies:\n  - python=3.11\n  - pip:\n"            \
	"    - azureml-inference-server-http\n"

static char *tmp, *hostdir, *errlog;
static pid_t host_pid;
static struct amlops_hostinfo *info;
static struct amlops_rest *rest;
static struct amlops_backend *backend;
static cJSON *sent; /* every body the client sent: [method, path, body] */

static void
record_body(void *ctx, const char *method, const char *path, const cJSON *body)
{
	cJSON *e = cJSON_CreateArray();

	(void)ctx;
	cJSON_AddItemToArray(e, cJSON_CreateString(method));
	cJSON_AddItemToArray(e, cJSON_CreateString(path));
	cJSON_AddItemToArray(e, cJSON_Duplicate(body, 1));
	cJSON_AddItemToArray(sent, e);
}

static int
setup(void **state)
{
	const char *amlops = getenv("AMLOPS");
	struct amlops_rest_cfg rc = {0};
	struct amlops_retry fast = {.max_attempts = 4, .base_ms = 20};
	char *json, *logf, *hj;

	(void)state;
	if (amlops == NULL || access(amlops, X_OK) != 0) {
		printf("SKIP: AMLOPS (the amlops binary) is not set\n");
		exit(0);
	}
	alarm(500);
	tmp = harness_tmpdir("resthost");
	hostdir = amlops_xasprintf("%s/host", tmp);
	errlog = amlops_xasprintf("%s/stderr.log", tmp);
	logf = amlops_xasprintf("%s/host.log", tmp);
	hj = amlops_xasprintf("%s/host.json", hostdir);
	{
		char *argv[] = {(char *)amlops, "host", "--state-dir", hostdir,
		    "--faults", "--retry-after", "1", "--op-delay-ms", "300",
		    NULL};

		host_pid = harness_spawn(argv, logf);
	}
	json = harness_wait_file(hj, "\"token\"", 30000, host_pid);
	free(logf);
	free(hj);
	if (json == NULL) {
		fprintf(stderr, "the host did not start\n");
		return -1;
	}
	free(json);
	if (amlops_hostinfo_read(&info, hostdir) < 0)
		return -1;
	rc.base_url = info->url;
	rc.api_version = AMLOPS_ARM_API_VERSION;
	rc.bearer = info->token;
	rc.retry = fast;
	rc.lro_min_interval_ms = 100;
	if (amlops_rest_new(&rest, &rc) < 0)
		return -1;
	if (amlops_local_new(&backend, hostdir, &fast) < 0) {
		fprintf(stderr, "%s\n", amlops_err_last());
		return -1;
	}
	sent = cJSON_CreateArray();
	amlops_rest_set_body_hook(record_body, NULL);
	harness_stderr_capture(errlog);
	amlops_log_init("test_rest_host", 1, 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	harness_stderr_restore();
	harness_show_failures(errlog, "test_rest_host: ");
	amlops_rest_set_body_hook(NULL, NULL);
	amlops_backend_free(backend);
	amlops_rest_free(rest);
	amlops_hostinfo_free(info);
	harness_kill(host_pid);
	if (!getenv("KEEP"))
		harness_rmrf(tmp);
	free(tmp);
	free(hostdir);
	free(errlog);
	cJSON_Delete(sent);
	return 0;
}

static char *
ws(const char *suffix)
{
	return amlops_arm_workspace_path(
	    info->subscription, info->resource_group, info->workspace, suffix);
}

/* POSTs a fault to the host (never faulted itself). */
static void
fault(const char *json)
{
	struct amlops_rest_resp r = AMLOPS_REST_RESP_INIT;
	cJSON *b = cJSON_Parse(json);

	assert_non_null(b);
	assert_int_equal(
	    amlops_rest_call(rest, "POST", "/_amlops/faults", b, &r), 0);
	cJSON_Delete(b);
	amlops_rest_resp_release(&r);
}

static void
rest__429_with_retry_after_is_honoured(void **state)
{
	struct amlops_rest_resp r = AMLOPS_REST_RESP_INIT;
	char *path = ws("/onlineEndpoints");
	int64_t t0, ms;

	(void)state;
	fault("{\"count\":2,\"status\":429,\"retry_after\":1,"
	      "\"path_contains\":\"onlineEndpoints\",\"method\":\"GET\"}");
	t0 = amlops_now_ms();
	assert_int_equal(amlops_rest_call(rest, "GET", path, NULL, &r), 0);
	ms = amlops_now_ms() - t0;
	assert_int_equal(r.status, 200);
	assert_int_equal(r.attempts, 3);
	/* Two waits of Retry-After: 1 s; the backoff alone is 20-40 ms. */
	assert_true(ms >= 2000);
	assert_true(ms < 6000);
	amlops_rest_resp_release(&r);
	free(path);
}

static void
rest__5xx_is_retried(void **state)
{
	struct amlops_rest_resp r = AMLOPS_REST_RESP_INIT;
	char *path = ws("/onlineEndpoints");
	int64_t t0, ms;

	(void)state;
	fault("{\"count\":2,\"status\":500,\"path_contains\":"
	      "\"onlineEndpoints\"}");
	t0 = amlops_now_ms();
	assert_int_equal(amlops_rest_call(rest, "GET", path, NULL, &r), 0);
	ms = amlops_now_ms() - t0;
	assert_int_equal(r.status, 200);
	assert_int_equal(r.attempts, 3);
	/* No Retry-After on a 500: exponential backoff, 10-20 then 20-40. */
	assert_true(ms >= 30);
	assert_true(ms < 2000);
	amlops_rest_resp_release(&r);
	free(path);
}

static void
rest__400_is_not_retried(void **state)
{
	struct amlops_rest_resp r = AMLOPS_REST_RESP_INIT;
	char *path = ws("/onlineEndpoints"), *want;

	(void)state;
	fault("{\"count\":2,\"status\":400,\"path_contains\":"
	      "\"onlineEndpoints\"}");
	assert_int_equal(
	    amlops_rest_call(rest, "GET", path, NULL, &r), AMLOPS_EINVALID);
	assert_int_equal(r.status, 400);
	assert_int_equal(r.attempts, 1);
	want = amlops_xasprintf("GET onlineEndpoints: 400 Bad Request "
	                        "(request id %s): InternalServerError: "
	                        "injected fault: status 400",
	    r.request_id);
	assert_string_equal(amlops_err_last(), want);
	free(want);
	amlops_rest_resp_release(&r);
	/* One fault is left: the client sent exactly one request. */
	assert_int_equal(
	    amlops_rest_call(rest, "GET", path, NULL, &r), AMLOPS_EINVALID);
	assert_int_equal(r.attempts, 1);
	amlops_rest_resp_release(&r);
	assert_int_equal(amlops_rest_call(rest, "GET", path, NULL, &r), 0);
	amlops_rest_resp_release(&r);
	free(path);
}

static void
rest__retries_stop_at_the_cap(void **state)
{
	struct amlops_rest_resp r = AMLOPS_REST_RESP_INIT;
	struct amlops_rest *capped = NULL;
	struct amlops_rest_cfg rc = {0};
	char *path = ws("/onlineEndpoints"), *want;

	(void)state;
	rc.base_url = info->url;
	rc.api_version = AMLOPS_ARM_API_VERSION;
	rc.bearer = info->token;
	rc.retry.max_attempts = 3;
	rc.retry.base_ms = 10;
	assert_int_equal(amlops_rest_new(&capped, &rc), 0);
	fault("{\"count\":5,\"status\":503,\"retry_after\":0,"
	      "\"path_contains\":\"onlineEndpoints\"}");
	assert_int_equal(
	    amlops_rest_call(capped, "GET", path, NULL, &r), AMLOPS_EBACKEND);
	assert_int_equal(r.attempts, 3);
	want = amlops_xasprintf("GET onlineEndpoints: 503 Service Unavailable "
	                        "(request id %s): ServiceUnavailable: injected "
	                        "fault: status 503",
	    r.request_id);
	assert_string_equal(amlops_err_last(), want);
	free(want);
	amlops_rest_resp_release(&r);
	/* Clear the two faults left. */
	assert_int_equal(
	    amlops_rest_call(rest, "DELETE", "/_amlops/faults", NULL, &r), 0);
	amlops_rest_resp_release(&r);
	amlops_rest_free(capped);
	free(path);
}

static void
rest__dropped_connection_is_retried(void **state)
{
	struct amlops_rest_resp r = AMLOPS_REST_RESP_INIT;
	char *path = ws("/onlineEndpoints");

	(void)state;
	/*
	 * libcurl itself retries once when a kept-alive connection turns
	 * out dead, so three drops make sure ours retried too.
	 */
	fault("{\"count\":3,\"drop\":true,\"path_contains\":"
	      "\"onlineEndpoints\"}");
	assert_int_equal(amlops_rest_call(rest, "GET", path, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_true(r.attempts >= 2);
	amlops_rest_resp_release(&r);
	free(path);
}

static void
rest__wrong_token_is_401_not_retried(void **state)
{
	struct amlops_rest_resp r = AMLOPS_REST_RESP_INIT;
	struct amlops_rest *bad = NULL;
	struct amlops_rest_cfg rc = {0};
	char *path = ws("/onlineEndpoints");
	const char *m;

	(void)state;
	rc.base_url = info->url;
	rc.api_version = AMLOPS_ARM_API_VERSION;
	rc.bearer = "not-the-host-token";
	assert_int_equal(amlops_rest_new(&bad, &rc), 0);
	assert_int_equal(
	    amlops_rest_call(bad, "GET", path, NULL, &r), AMLOPS_EINVALID);
	assert_int_equal(r.status, 401);
	assert_int_equal(r.attempts, 1);
	m = amlops_err_last();
	assert_true(
	    strncmp(m, "GET onlineEndpoints: 401 Unauthorized (request id ",
	        strlen("GET onlineEndpoints: 401 Unauthorized (request "
	               "id ")) == 0);
	assert_non_null(strstr(m, r.request_id));
	assert_null(strstr(m, "not-the-host-token"));
	amlops_rest_resp_release(&r);
	amlops_rest_free(bad);
	free(path);
}

static struct amlops_endpoint *
make_endpoint(const char *name)
{
	struct amlops_endpoint *ep = amlops_endpoint_new(name);

	ep->auth_mode = AMLOPS_AUTH_KEY;
	ep->description = amlops_xstrdup("made by test_rest_host");
	cJSON_AddStringToObject(ep->tags, "team", "ml");
	return ep;
}

static void
lro__endpoint_create_runs_to_succeeded(void **state)
{
	struct amlops_endpoint *ep = make_endpoint("lro-ok"), *got = NULL;
	struct amlops_live *live = NULL;
	struct amlops_op *op = NULL;
	char **names = NULL;
	size_t n = 0, i;
	int found = 0;

	(void)state;
	assert_int_equal(amlops_backend_put_endpoint(backend, ep, 0, &op), 0);
	assert_int_equal(strlen(op->request_id), 36);
	assert_string_equal(op->what, "PUT onlineEndpoints/lro-ok");
	assert_int_equal(amlops_backend_wait_op(backend, op), 0);
	assert_int_equal(op->state, AMLOPS_OP_SUCCEEDED);
	/* --op-delay-ms 300: it was polled while InProgress. */
	assert_true(op->rest->polls >= 1);
	amlops_op_free(op);

	assert_int_equal(
	    amlops_backend_get_endpoint(backend, "lro-ok", &got, &live), 0);
	assert_string_equal(got->name, "lro-ok");
	assert_int_equal(got->auth_mode, AMLOPS_AUTH_KEY);
	assert_string_equal(got->description, "made by test_rest_host");
	assert_string_equal(
	    cJSON_GetObjectItem(got->tags, "team")->valuestring, "ml");
	assert_string_equal(live->provisioning_state, "Succeeded");
	assert_int_equal(got->ndeployments, 0);
	amlops_endpoint_free(got);
	amlops_live_free(live);

	assert_int_equal(amlops_backend_list_endpoints(backend, &names, &n), 0);
	for (i = 0; i < n; i++) {
		found |= strcmp(names[i], "lro-ok") == 0;
		free(names[i]);
	}
	free(names);
	assert_true(found);
	amlops_endpoint_free(ep);
}

static void
lro__failed_operation_carries_the_service_error(void **state)
{
	struct amlops_endpoint *ep = make_endpoint("lro-fail");
	struct amlops_op *op = NULL;
	char *want;

	(void)state;
	fault("{\"fail_next_operation\":true,\"message\":\"the quota for "
	      "Standard_DS3_v2 is exhausted\"}");
	assert_int_equal(amlops_backend_put_endpoint(backend, ep, 0, &op), 0);
	assert_int_equal(amlops_backend_wait_op(backend, op), AMLOPS_EBACKEND);
	assert_int_equal(op->state, AMLOPS_OP_FAILED);
	want = amlops_xasprintf("PUT onlineEndpoints/lro-fail: operation "
	                        "Failed (request id %s): InternalServerError: "
	                        "the quota for Standard_DS3_v2 is exhausted",
	    op->request_id);
	assert_string_equal(amlops_err_last(), want);
	assert_string_equal(op->rest->error_code, "InternalServerError");
	free(want);
	amlops_op_free(op);
	amlops_endpoint_free(ep);
}

static void
lro__delete_endpoint_then_it_is_gone(void **state)
{
	struct amlops_endpoint *got = NULL;
	struct amlops_op *op = NULL;

	(void)state;
	assert_int_equal(
	    amlops_backend_delete_endpoint(backend, "lro-ok", &op), 0);
	assert_int_equal(amlops_backend_wait_op(backend, op), 0);
	amlops_op_free(op);
	assert_int_equal(
	    amlops_backend_get_endpoint(backend, "lro-ok", &got, NULL),
	    AMLOPS_ENOTFOUND);
	assert_null(got);
	assert_true(strncmp(amlops_err_last(),
	                "GET onlineEndpoints/lro-ok: 404 Not Found (request "
	                "id ",
	                strlen("GET onlineEndpoints/lro-ok: 404 Not Found "
	                       "(request id ")) == 0);
	/* Deleting what is gone is done at once. */
	assert_int_equal(
	    amlops_backend_delete_endpoint(backend, "lro-ok", &op), 0);
	assert_int_equal(op->state, AMLOPS_OP_SUCCEEDED);
	amlops_op_free(op);
}

static void
assets__missing_reference_is_reported_before_any_step(void **state)
{
	struct amlops_deployment *dep = amlops_deployment_new("blue");
	char *want;
	const char *m;

	(void)state;
	dep->endpoint_name = amlops_xstrdup("refs");
	dep->model.kind = AMLOPS_ASSET_REF;
	dep->model.name = amlops_xstrdup("no-such-model");
	dep->model.version = amlops_xstrdup("7");
	dep->model.ref = amlops_xstrdup("azureml:no-such-model:7");
	assert_int_equal(
	    amlops_backend_ensure_assets(backend, dep, NULL), AMLOPS_ENOTFOUND);
	m = amlops_err_last();
	want = amlops_xstrdup("model 'azureml:no-such-model:7' does not exist "
	                      "in the workspace (request id ");
	assert_true(strncmp(m, want, strlen(want)) == 0);
	/* The check alone, as the executor runs it before any step. */
	assert_int_equal(
	    amlops_backend_check_refs(backend, dep), AMLOPS_ENOTFOUND);
	assert_true(strncmp(amlops_err_last(), want, strlen(want)) == 0);
	free(want);
	/* A registry reference is not the workspace's to check. */
	free(dep->model.ref);
	free(dep->model.name);
	free(dep->model.version);
	dep->model.name = dep->model.version = NULL;
	dep->model.ref = amlops_xstrdup(
	    "azureml://registries/azureml/models/sklearn-model/versions/1");
	assert_int_equal(amlops_backend_check_refs(backend, dep), 0);
	amlops_deployment_free(dep);
}

/* A repository with a model folder and a code folder, committed. */
static char *
make_repo(void)
{
	char *repo = amlops_xasprintf("%s/repo", tmp), *f;
	const char *score =
	    "import json, os\n"
	    "\n"
	    "def init():\n"
	    "    global scale\n"
	    "    root = os.environ['AZUREML_MODEL_DIR']\n"
	    "    for d, _, files in os.walk(root, followlinks=True):\n"
	    "        if 'weights.json' in files:\n"
	    "            with open(os.path.join(d, 'weights.json')) as f:\n"
	    "                scale = json.load(f)['scale']\n"
	    "            return\n"
	    "    raise RuntimeError('no weights.json under ' + root)\n"
	    "\n"
	    "def run(raw):\n"
	    "    return [scale * x for x in json.loads(raw)['data']]\n";

	assert_int_equal(amlops_mkdir_p(repo, 0755), 0);
	assert_int_equal(git_sh(repo, "git init -q -b main ."), 0);
	assert_int_equal(git_sh(repo, "mkdir -p model/sub src env"), 0);
	f = amlops_xasprintf("%s/model/weights.json", repo);
	assert_int_equal(
	    amlops_file_write_atomic(f, "{\"scale\": 3}\n", 13, 0644), 0);
	free(f);
	f = amlops_xasprintf("%s/model/sub/notes.txt", repo);
	assert_int_equal(amlops_file_write_atomic(f, "v1\n", 3, 0644), 0);
	free(f);
	f = amlops_xasprintf("%s/env/conda.yml", repo);
	assert_int_equal(
	    amlops_file_write_atomic(f, CONDA, strlen(CONDA), 0644), 0);
	free(f);
	f = amlops_xasprintf("%s/src/score.py", repo);
	assert_int_equal(
	    amlops_file_write_atomic(f, score, strlen(score), 0644), 0);
	free(f);
	assert_int_equal(git_sh(repo, "git add -A && git -c user.name=t -c "
	                              "user.email=t@example.com commit -qm "
	                              "assets"),
	    0);
	/* The work tree now differs from the commit: the commit wins. */
	f = amlops_xasprintf("%s/model/weights.json", repo);
	assert_int_equal(
	    amlops_file_write_atomic(f, "{\"scale\": 99}\n", 14, 0644), 0);
	free(f);
	return repo;
}

static void
inline_asset(struct amlops_asset *a, struct git_files *g, const char *path)
{
	a->kind = AMLOPS_ASSET_INLINE;
	a->path = amlops_xstrdup(path);
	git_files_id(a->content_id, g, path);
	assert_int_equal(strlen(a->content_id), 40);
	a->version = amlops_xstrndup(a->content_id, 12);
	a->version_auto = 1;
}

static int
wait_deployment(const char *ep, const char *dep, const char *want)
{
	for (int i = 0; i < 600; i++) {
		struct amlops_endpoint *got = NULL;
		struct amlops_live *live = NULL;
		const char *st;
		int done = 0;

		if (amlops_backend_get_endpoint(backend, ep, &got, &live) ==
		    0) {
			st = amlops_live_deployment_state(live, dep);
			done = st && strcmp(st, want) == 0;
		}
		amlops_endpoint_free(got);
		amlops_live_free(live);
		if (done)
			return 0;
		harness_sleep_ms(100);
	}
	return -1;
}

static void
backend__deployment_from_a_git_commit_serves_requests(void **state)
{
	char *repo = make_repo();
	struct git_files g;
	struct amlops_endpoint *ep = make_endpoint("gitops");
	struct amlops_deployment *dep = amlops_deployment_new("blue");
	struct amlops_endpoint *got = NULL;
	struct amlops_live *live = NULL;
	struct amlops_op *op = NULL;
	struct amlops_buf out = AMLOPS_BUF_INIT;
	struct amlops_step step;
	long status = 0;
	char *logs = NULL;

	(void)state;
	assert_int_equal(git_files_open(&g, repo), 0);
	dep->endpoint_name = amlops_xstrdup("gitops");
	inline_asset(&dep->model, &g, "model");
	inline_asset(&dep->code, &g, "src");
	/* An environment: an image and a conda file's content. */
	dep->environment.asset.kind = AMLOPS_ASSET_INLINE;
	git_files_id(dep->environment.asset.content_id, &g, "env/conda.yml");
	dep->environment.asset.version =
	    amlops_xstrndup(dep->environment.asset.content_id, 12);
	dep->environment.image = amlops_xstrdup(
	    "mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference");
	dep->environment.conda_file = amlops_xstrdup("env/conda.yml");
	dep->scoring_script = amlops_xstrdup("score.py");
	dep->instance_type = amlops_xstrdup("Standard_DS2_v2");
	cJSON_AddItemToObject(dep->settings, "requestSettings",
	    cJSON_Parse("{\"requestTimeout\":\"PT10S\","
	                "\"maxConcurrentRequestsPerInstance\":1}"));
	ep->deployments = amlops_xcalloc(1, sizeof(*ep->deployments));
	ep->deployments[0] = dep;
	ep->ndeployments = 1;

	/* The planner's steps, as the executor will pass them. */
	memset(&step, 0, sizeof(step));
	step.endpoint = "gitops";
	step.action = AMLOPS_PLAN_CREATE;
	step.aspect = AMLOPS_ASPECT_ENDPOINT;
	step.desired_endpoint = ep;
	backend->files = &g.files;
	assert_int_equal(amlops_backend_apply_step(backend, &step, &op), 0);
	assert_int_equal(amlops_backend_wait_op(backend, op), 0);
	amlops_op_free(op);

	step.deployment = "blue";
	step.aspect = AMLOPS_ASPECT_DEPLOYMENT;
	step.desired_deployment = dep;
	if (amlops_backend_apply_step(backend, &step, &op) < 0)
		fail_msg("%s", amlops_err_last());
	if (amlops_backend_wait_op(backend, op) < 0)
		fail_msg("%s", amlops_err_last());
	amlops_op_free(op);

	/* Traffic, after the deployment is Succeeded. */
	assert_int_equal(wait_deployment("gitops", "blue", "Succeeded"), 0);
	assert_int_equal(
	    amlops_backend_get_endpoint(backend, "gitops", &got, &live), 0);
	ep->traffic = amlops_xcalloc(1, sizeof(*ep->traffic));
	ep->traffic[0].deployment = amlops_xstrdup("blue");
	ep->traffic[0].percent = 100;
	ep->ntraffic = 1;
	step.deployment = NULL;
	step.action = AMLOPS_PLAN_UPDATE;
	step.aspect = AMLOPS_ASPECT_TRAFFIC;
	step.live_endpoint = got;
	assert_int_equal(amlops_backend_apply_step(backend, &step, &op), 0);
	assert_int_equal(amlops_backend_wait_op(backend, op), 0);
	amlops_op_free(op);
	amlops_endpoint_free(got);
	amlops_live_free(live);

	/* Live state reads back as the model the planner compares. */
	assert_int_equal(
	    amlops_backend_get_endpoint(backend, "gitops", &got, &live), 0);
	assert_int_equal(got->ntraffic, 1);
	assert_string_equal(got->traffic[0].deployment, "blue");
	assert_int_equal(got->traffic[0].percent, 100);
	assert_string_equal(
	    cJSON_GetObjectItem(got->tags, AMLOPS_PLAN_OWNER_TAG)->valuestring,
	    AMLOPS_PLAN_OWNER_VALUE);
	assert_int_equal(got->ndeployments, 1);
	assert_int_equal(got->deployments[0]->model.kind, AMLOPS_ASSET_REF);
	assert_string_equal(
	    got->deployments[0]->model.name, "gitops-blue-model");
	assert_string_equal(
	    got->deployments[0]->model.version, dep->model.version);
	assert_string_equal(got->deployments[0]->code.name, "gitops-blue-code");
	assert_string_equal(
	    got->deployments[0]->environment.asset.name, "gitops-blue-env");
	assert_string_equal(got->deployments[0]->environment.asset.version,
	    dep->environment.asset.version);
	assert_string_equal(got->deployments[0]->scoring_script, "score.py");
	assert_string_equal(
	    got->deployments[0]->instance_type, "Standard_DS2_v2");
	/* The host filled in its defaults; normalised, both sides agree. */
	amlops_arm_settings_normalize(dep->settings);
	assert_non_null(cJSON_GetObjectItem(dep->settings, "requestSettings"));
	assert_true(
	    cJSON_Compare(cJSON_GetObjectItem(
	                      got->deployments[0]->settings, "requestSettings"),
	        cJSON_GetObjectItem(dep->settings, "requestSettings"), 1));
	assert_non_null(live->scoring_uri);

	/* The weights came from the commit (3), not the work tree (99). */
	amlops_buf_init(&out, 1 << 20);
	if (amlops_backend_invoke(backend, "gitops", NULL, "{\"data\":[1,2]}",
	        14, &out, &status) < 0)
		fail_msg("%s", amlops_err_last());
	assert_int_equal(status, 200);
	assert_non_null(strstr(amlops_buf_cstr(&out), "3"));
	assert_non_null(strstr(amlops_buf_cstr(&out), "6"));
	assert_null(strstr(amlops_buf_cstr(&out), "99"));

	/* Registering again finds the versions and stages nothing. */
	assert_int_equal(
	    amlops_backend_ensure_assets(backend, dep, &g.files), 0);
	assert_int_equal(
	    amlops_backend_logs(backend, "gitops", "blue", 50, &logs), 0);
	free(logs);
	amlops_buf_release(&out);
	amlops_endpoint_free(got);
	amlops_live_free(live);
	backend->files = NULL;
	amlops_endpoint_free(ep);
	git_files_close(&g);
	free(repo);
}

/* ------------------------------------------------------------------ */
/* Request shapes against ../shared/reference/azure-ml-rest/examples */

static cJSON *
load_json(const char *path)
{
	char *s = harness_read(path);
	cJSON *j = s ? cJSON_Parse(s) : NULL;

	free(s);
	return j;
}

/* Property names the spec allows beyond the example (definitions). */
static int
spec_allows(const cJSON *spec, const char *const *defs, const char *key)
{
	const cJSON *d = cJSON_GetObjectItem(spec, "definitions");

	for (; *defs; defs++) {
		const cJSON *props = cJSON_GetObjectItem(
		    cJSON_GetObjectItem(d, *defs), "properties");
		const cJSON *p = cJSON_GetObjectItem(props, key);

		if (p && !cJSON_IsTrue(cJSON_GetObjectItem(p, "readOnly")))
			return 1;
	}
	return 0;
}

static int
same_type(const cJSON *a, const cJSON *b)
{
	return (cJSON_IsString(a) && cJSON_IsString(b)) ||
	       (cJSON_IsNumber(a) && cJSON_IsNumber(b)) ||
	       (cJSON_IsBool(a) && cJSON_IsBool(b)) ||
	       (cJSON_IsObject(a) && cJSON_IsObject(b)) ||
	       (cJSON_IsArray(a) && cJSON_IsArray(b));
}

/*
 * Every key `got` has exists at the same place in `want`, with the same
 * JSON type. An example object whose only key is "string" (or that is
 * empty, like "tags": {}) is a map: any key, values shaped like its one.
 */
static void
check_shape(const cJSON *got, const cJSON *want, const char *where,
    const cJSON *spec, const char *const *extra_defs, struct amlops_buf *bad)
{
	const cJSON *k;
	int is_map = cJSON_GetArraySize(want) == 0 ||
	             (cJSON_GetArraySize(want) == 1 &&
	                 cJSON_GetObjectItem(want, "string"));

	cJSON_ArrayForEach(k, got)
	{
		const cJSON *w =
		    is_map ? (cJSON_GetArraySize(want)
		                     ? cJSON_GetObjectItem(want, "string")
		                     : NULL)
		           : cJSON_GetObjectItem(want, k->string);
		char *sub = amlops_xasprintf("%s.%s", where, k->string);

		if (w == NULL && is_map && cJSON_GetArraySize(want) == 0) {
			free(sub);
			continue; /* tags: {} takes any strings */
		}
		if (w == NULL) {
			if (!(extra_defs &&
			        spec_allows(spec, extra_defs, k->string)))
				amlops_buf_printf(bad,
				    "%s: not in the example "
				    "or the spec\n",
				    sub);
		} else if (!same_type(k, w))
			amlops_buf_printf(bad, "%s: type differs\n", sub);
		else if (cJSON_IsObject(k))
			check_shape(k, w, sub, spec, extra_defs, bad);
		free(sub);
	}
}

static void
shapes__every_body_sent_matches_the_reference(void **state)
{
	const char *shared = getenv("AMLOPS_SHARED");
	char *root, *specp;
	cJSON *spec;
	const cJSON *e;
	struct amlops_buf bad = AMLOPS_BUF_INIT;
	unsigned checked = 0, kinds = 0;
	static const char *const ep_defs[] = {"OnlineEndpointProperties",
	    "EndpointPropertiesBase", "OnlineEndpoint", NULL};
	static const char *const dep_defs[] = {"OnlineDeploymentProperties",
	    "EndpointDeploymentPropertiesBase", "KubernetesOnlineDeployment",
	    NULL};
	static const struct {
		const char *method, *pattern, *example;
		const char *const *defs;
	} map[] = {
	    {"PUT", "/deployments/",
	        "typespec-2025-10-01-preview/OnlineDeployment/"
	        "ManagedOnlineDeployment/createOrUpdate.json",
	        dep_defs},
	    {"PUT", "/onlineEndpoints/",
	        "stable-2022-10-01/OnlineEndpoint/createOrUpdate.json",
	        ep_defs},
	    {"PUT", "/codes/",
	        "preview-2024-10-01-preview/Workspace/CodeVersion/"
	        "createOrUpdate.json",
	        NULL},
	    {"PUT", "/models/",
	        "stable-2025-06-01/Workspace/ModelVersion/createOrUpdate.json",
	        NULL},
	    {"PUT", "/environments/",
	        "stable-2024-04-01/Workspace/EnvironmentVersion/"
	        "createOrUpdate.json",
	        NULL},
	    {"POST", "/getLogs",
	        "stable-2024-04-01/OnlineDeployment/getLogs.json", NULL},
	};
	unsigned seen_kind[AMLOPS_ARRAY_SIZE(map)] = {0};

	(void)state;
	if (shared == NULL || access(shared, R_OK) != 0) {
		printf("SKIP: ../shared (AMLOPS_SHARED) is absent; request "
		       "shapes not checked\n");
		return;
	}
	root = amlops_xasprintf("%s/reference/azure-ml-rest/examples", shared);
	specp = amlops_xasprintf("%s/reference/azure-ml-rest/spec/"
	                         "openapi-2026-07-01.online-endpoints-"
	                         "subset.json",
	    shared);
	spec = load_json(specp);
	assert_non_null(spec);
	amlops_buf_init(&bad, 0);
	cJSON_ArrayForEach(e, sent)
	{
		const char *method = cJSON_GetArrayItem(e, 0)->valuestring;
		const char *path = cJSON_GetArrayItem(e, 1)->valuestring;
		const cJSON *body = cJSON_GetArrayItem(e, 2);
		size_t i;

		if (strncmp(path, "/_amlops/", 9) == 0)
			continue; /* the test's own fault requests */
		if (strstr(path, "/environments/")) {
			/* The conda file's content, not its path. */
			const cJSON *p =
			    cJSON_GetObjectItem(body, "properties");

			assert_string_equal(
			    cJSON_GetObjectItem(p, "condaFile")->valuestring,
			    CONDA);
			assert_non_null(cJSON_GetObjectItem(p, "image"));
		}
		for (i = 0; i < AMLOPS_ARRAY_SIZE(map); i++)
			if (strcmp(method, map[i].method) == 0 &&
			    strstr(path, map[i].pattern))
				break;
		if (i == AMLOPS_ARRAY_SIZE(map)) {
			amlops_buf_printf(&bad,
			    "%s %s: no example to check "
			    "against\n",
			    method, path);
			continue;
		}
		{
			char *ex =
			    amlops_xasprintf("%s/%s", root, map[i].example);
			cJSON *j = load_json(ex);
			const cJSON *want = cJSON_GetObjectItem(
			    cJSON_GetObjectItem(j, "parameters"), "body");
			char *where =
			    amlops_xasprintf("%s %s", method, map[i].pattern);

			assert_non_null(want);
			check_shape(body, want, where, spec, map[i].defs, &bad);
			if (!seen_kind[i]++)
				kinds++;
			checked++;
			free(where);
			free(ex);
			cJSON_Delete(j);
		}
	}
	if (bad.len)
		fail_msg("request bodies that differ from the reference:\n%s",
		    amlops_buf_cstr(&bad));
	/*
	 * Endpoint, deployment, code, model, environment and getLogs
	 * bodies were sent.
	 */
	assert_true(checked >= 7);
	assert_true(kinds >= 6);
	amlops_buf_release(&bad);
	cJSON_Delete(spec);
	free(root);
	free(specp);
}

static void
secrets__host_token_never_printed(void **state)
{
	char *out;

	(void)state;
	fflush(stderr);
	out = harness_read(errlog);
	assert_non_null(out);
	assert_non_null(strstr(out, "request_id="));
	assert_null(strstr(out, info->token));
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rest__429_with_retry_after_is_honoured),
	    cmocka_unit_test(rest__5xx_is_retried),
	    cmocka_unit_test(rest__400_is_not_retried),
	    cmocka_unit_test(rest__retries_stop_at_the_cap),
	    cmocka_unit_test(rest__dropped_connection_is_retried),
	    cmocka_unit_test(rest__wrong_token_is_401_not_retried),
	    cmocka_unit_test(lro__endpoint_create_runs_to_succeeded),
	    cmocka_unit_test(lro__failed_operation_carries_the_service_error),
	    cmocka_unit_test(lro__delete_endpoint_then_it_is_gone),
	    cmocka_unit_test(
	        assets__missing_reference_is_reported_before_any_step),
	    cmocka_unit_test(
	        backend__deployment_from_a_git_commit_serves_requests),
	    cmocka_unit_test(shapes__every_body_sent_matches_the_reference),
	    cmocka_unit_test(secrets__host_token_never_printed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
