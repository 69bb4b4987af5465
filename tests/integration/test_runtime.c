/*
 * The runtime of `amlops host` end to end: real Python workers running a
 * real score.py, real HTTP through libcurl to the scoring front.
 *
 * With AMLOPS_RUNTIME_SERVE=CODE_DIR in the environment the binary does not
 * test but serves that code (for tests/bench/score_bench.sh): see serve().
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/util.h"
#include "local/runtime.h"

#define PY "/usr/bin/python3"
#define WAIT_MS 30000

static const char score_py[] =
    "import json, os, sys, time\n"
    "MODEL = None\n"
    "def init():\n"
    "    global MODEL\n"
    "    if os.environ.get('EXIT_INIT'):\n"
    "        os._exit(3)\n"
    "    if os.environ.get('FAIL_INIT'):\n"
    "        raise RuntimeError('model file missing: /nope')\n"
    "    p = os.path.join(os.environ['AZUREML_MODEL_DIR'], 'model.txt')\n"
    "    with open(p) as f:\n"
    "        MODEL = f.read().strip()\n"
    "def run(raw):\n"
    "    if isinstance(raw, bytes):\n"
    "        return raw[::-1]\n"
    "    req = json.loads(raw)\n"
    "    if 'sleep' in req:\n"
    "        time.sleep(req['sleep'])\n"
    "    if 'raise' in req:\n"
    "        raise ValueError(req['raise'])\n"
    "    if 'print' in req:\n"
    "        print(req['print'])\n"
    "    if 'spam' in req:\n"
    "        sys.stderr.write('x' * req['spam'] + '\\n')\n"
    "    if 'env' in req:\n"
    "        return os.environ.get(req['env'])\n"
    "    if 'badframe' in req:\n"
    "        import struct\n"
    "        t, n = (99, 0) if req['badframe'] == 'type' else (4, 1 << 30)\n"
    "        os.write(3, struct.pack('<III', t, 1, n))\n"
    "        time.sleep(10)\n"
    "    if 'big' in req:\n"
    "        return 'y' * req['big']\n"
    "    if 'pid' in req:\n"
    "        return os.getpid()\n"
    "    return {'model': MODEL, 'dep': os.environ.get('DEP'),\n"
    "            'data': req.get('data')}\n";

/* A script in Azure's raw HTTP style. */
static const char raw_py[] =
    "import json\n"
    "from azureml.contrib.services.aml_request import AMLRequest, rawhttp\n"
    "from azureml.contrib.services.aml_response import AMLResponse\n"
    "def init():\n"
    "    pass\n"
    "@rawhttp\n"
    "def run(request):\n"
    "    if request.headers['Content-Type'] == 'application/json':\n"
    "        got = request.get_json()\n"
    "        if 'teapot' in got:\n"
    "            return AMLResponse('short and stout', 418)\n"
    "        return AMLResponse(json.dumps({'method': request.method,\n"
    "                                       'got': got}), 200, json_str=True)\n"
    "    return AMLResponse(request.get_data()[::-1], 200,\n"
    "                       content_type='image/x-test')\n";

static struct amlops_runtime *rt;
static int chunked; /* post() sends its body chunked */
static int log_has(const char *ep, const char *dep, const char *needle, int ms);
static int count_in_logs(
    const char *endpoint, const char *dep, const char *what);
static char tmp[256];
static char code_dir[300];
static char model_dir[300];

struct resp {
	long status;
	struct amlops_buf body;
	char dep[64];
	char model_status[16];
	char ctype[128];
};

static void
write_file(const char *path, const char *data)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(data, f);
	assert_int_equal(fclose(f), 0);
}

static void
rm_rf(const char *path)
{
	char *cmd = amlops_xasprintf("rm -rf '%s'", path);

	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", path);
	free(cmd);
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;

	if (amlops_buf_add(&r->body, p, size * n) < 0)
		return 0;
	return size * n;
}

static void
header_value(
    char *out, size_t outlen, const char *line, size_t len, const char *name)
{
	size_t nl = strlen(name), vl;

	if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 ||
	    line[nl] != ':')
		return;
	line += nl + 1;
	len -= nl + 1;
	while (len && *line == ' ') {
		line++;
		len--;
	}
	vl = len;
	while (vl && (line[vl - 1] == '\r' || line[vl - 1] == '\n'))
		vl--;
	if (vl >= outlen)
		vl = outlen - 1;
	memcpy(out, line, vl);
	out[vl] = '\0';
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;

	header_value(
	    r->dep, sizeof(r->dep), p, size * n, "azureml-model-deployment");
	header_value(r->model_status, sizeof(r->model_status), p, size * n,
	    "ms-azureml-model-error-statuscode");
	header_value(r->ctype, sizeof(r->ctype), p, size * n, "content-type");
	return size * n;
}

/*
 * POSTs `body` to the endpoint's scoring URI. `key` NULL: no Authorization;
 * `dep` names a deployment in the header. `curl` may be reused (keep-alive)
 * or NULL.
 */
static void
post(CURL *curl, const char *endpoint, const char *key, const char *dep,
    const char *ctype, const void *body, size_t len, struct resp *r)
{
	struct curl_slist *h = NULL;
	char *url, *s;
	int own = !curl;
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	amlops_buf_init(&r->body, 16 << 20);
	if (own)
		curl = curl_easy_init();
	assert_non_null(curl);
	url = amlops_xasprintf(
	    "%s/endpoints/%s/score", amlops_runtime_base_url(rt), endpoint);
	if (key) {
		s = amlops_xasprintf("Authorization: Bearer %s", key);
		h = curl_slist_append(h, s);
		free(s);
	}
	if (dep) {
		s = amlops_xasprintf("azureml-model-deployment: %s", dep);
		h = curl_slist_append(h, s);
		free(s);
	}
	s = amlops_xasprintf("Content-Type: %s", ctype);
	h = curl_slist_append(h, s);
	free(s);
	h = curl_slist_append(h, "Expect:");
	if (chunked)
		h = curl_slist_append(h, "Transfer-Encoding: chunked");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 20000L);
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK)
		fail_msg("POST %s: %s", url, curl_easy_strerror(rc));
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	free(url);
	if (own)
		curl_easy_cleanup(curl);
}

static void
post_json(const char *endpoint, const char *key, const char *dep,
    const char *json, struct resp *r)
{
	post(NULL, endpoint, key, dep, "application/json", json, strlen(json),
	    r);
}

static void
resp_release(struct resp *r)
{
	amlops_buf_release(&r->body);
}

static void
get_metrics(struct amlops_buf *out)
{
	amlops_buf_init(out, 0);
	assert_int_equal(amlops_runtime_metrics(rt, out), 0);
}

/* The value of one metric line `prefix` ("name{labels}"), or -1. */
static long long
metric(const char *prefix)
{
	struct amlops_buf m;
	const char *p;
	long long v = -1;
	size_t n = strlen(prefix);

	get_metrics(&m);
	for (p = amlops_buf_cstr(&m); p && *p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, prefix, n) == 0 && p[n] == ' ') {
			v = atoll(p + n + 1);
			break;
		}
	}
	amlops_buf_release(&m);
	return v;
}

static void
deploy_full(const char *endpoint, const char *name, int instances,
    const char *envjson, int timeout_ms, int maxconc, int queue_ms)
{
	struct amlops_runtime_deployment dep = {0};
	char *logdir = amlops_xasprintf("%s/logs/%s/%s", tmp, endpoint, name);
	cJSON *env = envjson ? cJSON_Parse(envjson) : NULL;

	assert_int_equal(amlops_mkdir_p(logdir, 0700), 0);
	dep.endpoint = endpoint;
	dep.name = name;
	dep.code_dir = code_dir;
	dep.scoring_script = "score.py";
	dep.model_dir = model_dir;
	dep.instance_count = instances;
	dep.env = env;
	dep.request_timeout_ms = timeout_ms;
	dep.max_concurrent_per_instance = maxconc;
	dep.max_queue_wait_ms = queue_ms;
	dep.log_dir = logdir;
	if (amlops_runtime_deploy(rt, &dep) < 0)
		fail_msg("deploy: %s", amlops_err_last());
	cJSON_Delete(env);
	free(logdir);
}

static void
deploy(const char *endpoint, const char *name, int instances)
{
	char *env = amlops_xasprintf("{\"DEP\": \"%s\"}", name);

	deploy_full(endpoint, name, instances, env, 0, 0, 0);
	free(env);
}

static enum amlops_runtime_state
wait_state(const char *endpoint, const char *name, int want_ready, char **why)
{
	enum amlops_runtime_state st = AMLOPS_RUNTIME_UNKNOWN;
	int64_t until = amlops_now_ms() + WAIT_MS;
	int ready = 0;

	if (why)
		*why = NULL; /* the caller freed what it had */
	while (amlops_now_ms() < until) {
		free(why ? *why : NULL);
		st = amlops_runtime_status(rt, endpoint, name, why, &ready);
		if (st == AMLOPS_RUNTIME_FAILED ||
		    (st == AMLOPS_RUNTIME_READY && ready >= want_ready))
			return st;
		usleep(20000);
	}
	fail_msg("deployment %s/%s not ready after %d ms (state %d, ready %d)",
	    endpoint, name, WAIT_MS, (int)st, ready);
	return st;
}

static void
endpoint_key(const char *name, const struct amlops_runtime_route *traffic,
    size_t ntraffic, const struct amlops_runtime_route *mirror, size_t nmirror)
{
	struct amlops_runtime_endpoint ep = {0};

	ep.name = name;
	ep.auth = AMLOPS_RUNTIME_AUTH_KEY;
	ep.primary_key = "key-one-0123456789";
	ep.secondary_key = "key-two-0123456789";
	ep.traffic = traffic;
	ep.ntraffic = ntraffic;
	ep.mirror = mirror;
	ep.nmirror = nmirror;
	if (amlops_runtime_set_endpoint(rt, &ep) < 0)
		fail_msg("set_endpoint: %s", amlops_err_last());
}

#define KEY "key-one-0123456789"

static int
setup(void **state)
{
	struct amlops_runtime_opts opts = {0};
	char *p;

	snprintf(tmp, sizeof(tmp), "/tmp/amlops-runtime-XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	snprintf(code_dir, sizeof(code_dir), "%s/code", tmp);
	snprintf(model_dir, sizeof(model_dir), "%s/model", tmp);
	if (amlops_mkdir_p(code_dir, 0700) < 0 ||
	    amlops_mkdir_p(model_dir, 0700) < 0)
		return -1;
	p = amlops_xasprintf("%s/score.py", code_dir);
	write_file(p, score_py);
	free(p);
	p = amlops_xasprintf("%s/raw.py", code_dir);
	write_file(p, raw_py);
	free(p);
	p = amlops_xasprintf("%s/model.txt", model_dir);
	write_file(p, "linear-v1\n");
	free(p);
	/* A credential in the host's environment must not reach workers. */
	setenv("AZURE_CLIENT_SECRET", "do-not-leak-0000", 1);

	opts.python = PY;
	opts.max_body = 64 << 10;
	opts.log_cap = 64 << 10;
	if (amlops_runtime_new(&rt, &opts) < 0) {
		fprintf(stderr, "runtime: %s\n", amlops_err_last());
		return -1;
	}
	return 0;
}

static int
count_children(void)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	char path[300], buf[512], *p;
	FILE *f;
	int n = 0, ppid;

	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
		    sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == getpid())
			n++;
		fclose(f);
	}
	closedir(dir);
	return n;
}

static int
teardown(void **state)
{
	amlops_runtime_free(rt);
	rt = NULL;
	rm_rf(tmp);
	return 0;
}

static void
runtime__score_json_round_trip(void **state)
{
	struct amlops_runtime_route t[] = {{"blue", 100}};
	struct resp r;

	endpoint_key("e-json", t, 1, NULL, 0);
	deploy("e-json", "blue", 1);
	assert_int_equal(
	    wait_state("e-json", "blue", 1, NULL), AMLOPS_RUNTIME_READY);
	post_json("e-json", KEY, NULL, "{\"data\": [1, 2.5]}", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(amlops_buf_cstr(&r.body),
	    "{\"model\": \"linear-v1\", \"dep\": \"blue\", \"data\": [1, "
	    "2.5]}");
	assert_string_equal(r.dep, "blue");
	assert_string_equal(r.ctype, "application/json");
	resp_release(&r);

	/* A str that run() returns is JSON-encoded, as Azure's server does. */
	post_json("e-json", KEY, NULL, "{\"env\": \"DEP\"}", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(amlops_buf_cstr(&r.body), "\"blue\"");
	resp_release(&r);
}

static void
runtime__score_binary_body(void **state)
{
	static const unsigned char in[] = {0x00, 0xff, 0x10, 'a', 0x00, 0x80};
	unsigned char want[sizeof(in)];
	struct resp r;
	size_t i;

	for (i = 0; i < sizeof(in); i++)
		want[i] = in[sizeof(in) - 1 - i];
	post(NULL, "e-json", KEY, NULL, "application/octet-stream", in,
	    sizeof(in), &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "application/octet-stream");
	assert_int_equal(r.body.len, sizeof(in));
	assert_memory_equal(r.body.ptr, want, sizeof(in));
	resp_release(&r);
}

/* A 3 MB answer arrives whole, twice (the read buffer is given back). */
static void
runtime__large_answer(void **state)
{
	struct resp r;
	size_t i, n = 3u << 20;
	int round;

	for (round = 0; round < 2; round++) {
		post_json("e-json", KEY, NULL, "{\"big\": 3145728}", &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.body.len, n + 2);
		assert_int_equal(r.body.ptr[0], '"');
		for (i = 1; i <= n && r.body.ptr[i] == 'y'; i++)
			;
		assert_int_equal(i, n + 1);
		resp_release(&r);
	}
	post_json("e-json", KEY, NULL, "{\"env\": \"DEP\"}", &r);
	assert_string_equal(amlops_buf_cstr(&r.body), "\"blue\"");
	resp_release(&r);
}

static void
runtime__key_auth(void **state)
{
	struct resp r;

	post_json("e-json", NULL, NULL, "{}", &r);
	assert_int_equal(r.status, 401);
	assert_string_equal(
	    amlops_buf_cstr(&r.body), "{\"message\": \"unauthorized\"}");
	resp_release(&r);
	post_json("e-json", "key-one-0123456788", NULL, "{}", &r);
	assert_int_equal(r.status, 401);
	assert_string_equal(
	    amlops_buf_cstr(&r.body), "{\"message\": \"unauthorized\"}");
	resp_release(&r);
	post_json(
	    "e-json", "key-two-0123456789", NULL, "{\"env\": \"DEP\"}", &r);
	assert_int_equal(r.status, 200);
	resp_release(&r);
	assert_int_equal(metric("amlops_requests_total{endpoint=\"e-json\","
	                        "deployment=\"\",code=\"401\"}"),
	    2);
}

static void
runtime__token_auth_and_expiry(void **state)
{
	struct amlops_runtime_endpoint ep = {0};
	struct amlops_runtime_route t[] = {{"blue", 100}};
	struct resp r;

	ep.name = "e-token";
	ep.auth = AMLOPS_RUNTIME_AUTH_TOKEN;
	ep.traffic = t;
	ep.ntraffic = 1;
	assert_int_equal(amlops_runtime_set_endpoint(rt, &ep), 0);
	deploy("e-token", "blue", 1);
	assert_int_equal(amlops_runtime_add_token(rt, "e-token", "tok-live",
	                     amlops_wall_ms() + 60000),
	    0);
	assert_int_equal(amlops_runtime_add_token(rt, "e-token", "tok-short",
	                     amlops_wall_ms() + 1200),
	    0);
	assert_int_equal(
	    wait_state("e-token", "blue", 1, NULL), AMLOPS_RUNTIME_READY);
	post_json("e-token", "tok-live", NULL, "{\"env\": \"DEP\"}", &r);
	assert_int_equal(r.status, 200);
	resp_release(&r);
	post_json("e-token", "tok-short", NULL, "{\"env\": \"DEP\"}", &r);
	assert_int_equal(r.status, 200);
	resp_release(&r);
	post_json("e-token", "tok-wrong", NULL, "{}", &r);
	assert_int_equal(r.status, 401);
	resp_release(&r);
	usleep(1400 * 1000);
	post_json("e-token", "tok-short", NULL, "{}", &r);
	assert_int_equal(r.status, 401);
	assert_string_equal(
	    amlops_buf_cstr(&r.body), "{\"message\": \"unauthorized\"}");
	resp_release(&r);
	post_json("e-token", "tok-live", NULL, "{}", &r);
	assert_int_equal(r.status, 200);
	resp_release(&r);
	/* A key endpoint's keys mean nothing to a token endpoint. */
	assert_int_equal(
	    amlops_runtime_add_token(rt, "e-nope", "x", 1), AMLOPS_ENOTFOUND);
	assert_string_equal(amlops_err_last(), "no endpoint 'e-nope'");
}

static void
runtime__traffic_50_50_and_header(void **state)
{
	struct amlops_runtime_route t[] = {{"blue", 50}, {"green", 50}};
	struct amlops_runtime_route t2[] = {{"blue", 100}, {"green", 0}};
	CURL *curl = curl_easy_init();
	struct resp r;
	int i, blue = 0, green = 0;

	endpoint_key("e-split", t, 2, NULL, 0);
	deploy("e-split", "blue", 1);
	deploy("e-split", "green", 1);
	assert_int_equal(
	    wait_state("e-split", "blue", 1, NULL), AMLOPS_RUNTIME_READY);
	assert_int_equal(
	    wait_state("e-split", "green", 1, NULL), AMLOPS_RUNTIME_READY);
	for (i = 0; i < 1000; i++) {
		post(curl, "e-split", KEY, NULL, "application/json",
		    "{\"env\": \"DEP\"}", 14, &r);
		assert_int_equal(r.status, 200);
		/* The header and the answering worker agree. */
		if (strcmp(r.dep, "blue") == 0) {
			assert_string_equal(
			    amlops_buf_cstr(&r.body), "\"blue\"");
			blue++;
		} else {
			assert_string_equal(
			    amlops_buf_cstr(&r.body), "\"green\"");
			green++;
		}
		resp_release(&r);
	}
	assert_true(blue >= 450 && blue <= 550);
	assert_true(green >= 450 && green <= 550);
	assert_int_equal(blue + green, 1000);

	/* The header wins, even for a deployment with 0% traffic. */
	endpoint_key("e-split", t2, 2, NULL, 0);
	for (i = 0; i < 20; i++) {
		post(curl, "e-split", KEY, "green", "application/json",
		    "{\"env\": \"DEP\"}", 14, &r);
		assert_int_equal(r.status, 200);
		assert_string_equal(amlops_buf_cstr(&r.body), "\"green\"");
		resp_release(&r);
		post(curl, "e-split", KEY, NULL, "application/json",
		    "{\"env\": \"DEP\"}", 14, &r);
		assert_string_equal(amlops_buf_cstr(&r.body), "\"blue\"");
		resp_release(&r);
	}
	post(curl, "e-split", KEY, "purple", "application/json", "{}", 2, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(amlops_buf_cstr(&r.body),
	    "{\"message\": \"no deployment with that name in this "
	    "endpoint\"}");
	resp_release(&r);
	curl_easy_cleanup(curl);
}

static void
runtime__mirror_gets_its_share(void **state)
{
	struct amlops_runtime_route t[] = {{"blue", 100}};
	struct amlops_runtime_route m[] = {{"shadow", 20}};
	const char *mk = "amlops_requests_total{endpoint=\"e-mirror\","
	                 "deployment=\"shadow\",code=\"200\"}";
	CURL *curl = curl_easy_init();
	int64_t until;
	struct resp r;
	int i;

	endpoint_key("e-mirror", t, 1, m, 1);
	deploy("e-mirror", "blue", 1);
	deploy("e-mirror", "shadow", 1);
	assert_int_equal(
	    wait_state("e-mirror", "blue", 1, NULL), AMLOPS_RUNTIME_READY);
	assert_int_equal(
	    wait_state("e-mirror", "shadow", 1, NULL), AMLOPS_RUNTIME_READY);
	for (i = 0; i < 200; i++) {
		post(curl, "e-mirror", KEY, NULL, "application/json",
		    "{\"env\": \"DEP\"}", 14, &r);
		assert_int_equal(r.status, 200);
		/* The client only ever sees the live deployment's answer. */
		assert_string_equal(amlops_buf_cstr(&r.body), "\"blue\"");
		resp_release(&r);
	}
	until = amlops_now_ms() + WAIT_MS;
	while (metric(mk) < 40 && amlops_now_ms() < until)
		usleep(20000);
	assert_int_equal(metric(mk), 40);
	assert_int_equal(metric("amlops_requests_total{endpoint=\"e-mirror\","
	                        "deployment=\"blue\",code=\"200\"}"),
	    200);
	curl_easy_cleanup(curl);
}

static void
runtime__init_raising_gives_failed(void **state)
{
	struct amlops_runtime_route t[] = {{"bad", 100}};
	char *why = NULL;
	struct resp r;

	endpoint_key("e-fail", t, 1, NULL, 0);
	deploy_full("e-fail", "bad", 2, "{\"FAIL_INIT\": \"1\"}", 0, 0, 0);
	assert_int_equal(
	    wait_state("e-fail", "bad", 2, &why), AMLOPS_RUNTIME_FAILED);
	assert_string_equal(why, "RuntimeError: model file missing: /nope");
	free(why);
	assert_true(log_has(
	    "e-fail", "bad", "Traceback (most recent call last):", 5000));
	assert_true(log_has(
	    "e-fail", "bad", "RuntimeError: model file missing: /nope", 5000));
	post_json("e-fail", KEY, NULL, "{}", &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(amlops_buf_cstr(&r.body),
	    "{\"message\": \"deployment 'bad' is not ready: RuntimeError: "
	    "model file missing: /nope\"}");
	resp_release(&r);

	/* The same deploy again retries: two more workers, FAILED again. */
	deploy_full("e-fail", "bad", 2, "{\"FAIL_INIT\": \"1\"}", 0, 0, 0);
	assert_int_equal(
	    wait_state("e-fail", "bad", 2, &why), AMLOPS_RUNTIME_FAILED);
	assert_string_equal(why, "RuntimeError: model file missing: /nope");
	free(why);
	assert_int_equal(count_in_logs("e-fail", "bad", "event=started"), 4);

	/* A fixed deploy recovers. */
	deploy("e-fail", "bad", 1);
	assert_int_equal(
	    wait_state("e-fail", "bad", 1, NULL), AMLOPS_RUNTIME_READY);
	post_json("e-fail", KEY, NULL, "{\"env\": \"DEP\"}", &r);
	assert_int_equal(r.status, 200);
	resp_release(&r);
}

static void
runtime__workers_that_keep_dying_fail(void **state)
{
	char *why = NULL;

	deploy_full("e-fail", "crashy", 1, "{\"EXIT_INIT\": \"1\"}", 0, 0, 0);
	assert_int_equal(
	    wait_state("e-fail", "crashy", 1, &why), AMLOPS_RUNTIME_FAILED);
	assert_string_equal(why,
	    "workers keep dying: 5 deaths in 60 s, the last with exit code 3");
	free(why);
	assert_int_equal(amlops_runtime_remove(rt, "e-fail", "crashy"), 0);
	assert_int_equal(
	    amlops_runtime_status(rt, "e-fail", "crashy", NULL, NULL),
	    AMLOPS_RUNTIME_UNKNOWN);
}

static long
worker_pid(const char *endpoint)
{
	struct resp r;
	long pid;

	post_json(endpoint, KEY, NULL, "{\"pid\": 1}", &r);
	assert_int_equal(r.status, 200);
	pid = atol(amlops_buf_cstr(&r.body));
	resp_release(&r);
	assert_true(pid > 1);
	return pid;
}

static void
runtime__killed_worker_is_replaced(void **state)
{
	struct amlops_runtime_route t[] = {{"blue", 100}};
	const char *rk = "amlops_worker_restarts_total{endpoint=\"e-kill\","
	                 "deployment=\"blue\"}";
	struct amlops_buf logs = AMLOPS_BUF_INIT;
	int64_t until;
	struct resp r;
	long pid, pid2;
	int i, ready = 0;

	endpoint_key("e-kill", t, 1, NULL, 0);
	deploy("e-kill", "blue", 1);
	assert_int_equal(
	    wait_state("e-kill", "blue", 1, NULL), AMLOPS_RUNTIME_READY);
	pid = worker_pid("e-kill");
	assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
	until = amlops_now_ms() + WAIT_MS;
	while (metric(rk) < 1 && amlops_now_ms() < until)
		usleep(20000);
	assert_int_equal(metric(rk), 1);
	/* Requests arriving during the restart wait for the new worker. */
	for (i = 0; i < 20; i++) {
		post_json("e-kill", KEY, NULL, "{\"env\": \"DEP\"}", &r);
		if (r.status != 200)
			fail_msg("request %d: %ld %s", i, r.status,
			    amlops_buf_cstr(&r.body));
		resp_release(&r);
	}
	pid2 = worker_pid("e-kill");
	assert_true(pid2 != pid);
	assert_int_equal(
	    amlops_runtime_status(rt, "e-kill", "blue", NULL, &ready),
	    AMLOPS_RUNTIME_READY);
	assert_int_equal(ready, 1);
	assert_int_equal(
	    amlops_runtime_logs(rt, "e-kill", "blue", 0, &logs), 0);
	assert_non_null(strstr(amlops_buf_cstr(&logs),
	    "event=exited status=\"signal 9 (Killed)\""));
	amlops_buf_release(&logs);
}

/* A code folder or scoring script that is not there: FAILED, saying so. */
static void
runtime__missing_code_fails(void **state)
{
	struct amlops_runtime_deployment dep = {0};
	char *logdir = amlops_xasprintf("%s/logs/e-missing", tmp);
	char *nodir = amlops_xasprintf("%s/no-such-code", tmp);
	char *want;
	char *why = NULL;

	assert_int_equal(amlops_mkdir_p(logdir, 0700), 0);
	dep.endpoint = "e-missing";
	dep.name = "nocode";
	dep.code_dir = nodir;
	dep.scoring_script = "score.py";
	dep.model_dir = model_dir;
	dep.instance_count = 1;
	dep.log_dir = logdir;
	assert_int_equal(amlops_runtime_deploy(rt, &dep), 0);
	assert_int_equal(
	    wait_state("e-missing", "nocode", 1, &why), AMLOPS_RUNTIME_FAILED);
	want = amlops_xasprintf("cannot start worker '%s' in '%s': No such "
	                        "file or directory",
	    PY, nodir);
	assert_string_equal(why, want);
	free(want);
	free(why);

	dep.name = "noscript";
	dep.code_dir = code_dir;
	dep.scoring_script = "missing.py";
	assert_int_equal(amlops_runtime_deploy(rt, &dep), 0);
	assert_int_equal(wait_state("e-missing", "noscript", 1, &why),
	    AMLOPS_RUNTIME_FAILED);
	want = amlops_xasprintf("FileNotFoundError: [Errno 2] No such file or "
	                        "directory: '%s/missing.py'",
	    code_dir);
	assert_string_equal(why, want);
	free(want);
	free(why);
	free(nodir);
	free(logdir);
}

/* @rawhttp scripts get the request object and answer an AMLResponse. */
static void
runtime__rawhttp_scripts(void **state)
{
	struct amlops_runtime_deployment dep = {0};
	struct amlops_runtime_route t[] = {{"raw", 100}};
	static const unsigned char img[] = {0x89, 'P', 'N', 'G', 0x00, 0x01};
	char *logdir = amlops_xasprintf("%s/logs/e-raw", tmp);
	struct resp r;

	assert_int_equal(amlops_mkdir_p(logdir, 0700), 0);
	endpoint_key("e-raw", t, 1, NULL, 0);
	dep.endpoint = "e-raw";
	dep.name = "raw";
	dep.code_dir = code_dir;
	dep.scoring_script = "raw.py";
	dep.model_dir = model_dir;
	dep.instance_count = 1;
	dep.log_dir = logdir;
	assert_int_equal(amlops_runtime_deploy(rt, &dep), 0);
	free(logdir);
	assert_int_equal(
	    wait_state("e-raw", "raw", 1, NULL), AMLOPS_RUNTIME_READY);

	post_json("e-raw", KEY, NULL, "{\"x\": [1, 2]}", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "application/json");
	assert_string_equal(amlops_buf_cstr(&r.body),
	    "{\"method\": \"POST\", \"got\": {\"x\": [1, 2]}}");
	resp_release(&r);

	post(NULL, "e-raw", KEY, NULL, "image/png", img, sizeof(img), &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "image/x-test");
	assert_int_equal(r.body.len, sizeof(img));
	assert_memory_equal(r.body.ptr, "\x01\x00GNP\x89", sizeof(img));
	resp_release(&r);

	/* A status other than 200 from the model: 424, as Azure. */
	post_json("e-raw", KEY, NULL, "{\"teapot\": 1}", &r);
	assert_int_equal(r.status, 424);
	assert_string_equal(r.model_status, "418");
	assert_string_equal(amlops_buf_cstr(&r.body), "short and stout");
	resp_release(&r);
}

struct pipe_arg {
	int thread;
	int ok;
};

static void *
pipe_client(void *arg)
{
	struct pipe_arg *a = arg;
	CURL *curl = curl_easy_init();
	char body[64], want[160];
	struct resp r;
	int i;

	for (i = 0; i < 100; i++) {
		snprintf(
		    body, sizeof(body), "{\"data\": \"t%d-%d\"}", a->thread, i);
		snprintf(want, sizeof(want),
		    "{\"model\": \"linear-v1\", \"dep\": \"blue\", \"data\": "
		    "\"t%d-%d\"}",
		    a->thread, i);
		post(curl, "e-pipe", KEY, NULL, "application/json", body,
		    strlen(body), &r);
		if (r.status == 200 &&
		    strcmp(amlops_buf_cstr(&r.body), want) == 0)
			a->ok++;
		else
			fprintf(stderr, "pipe t%d-%d: %ld %s\n", a->thread, i,
			    r.status, amlops_buf_cstr(&r.body));
		resp_release(&r);
	}
	curl_easy_cleanup(curl);
	return NULL;
}

/*
 * Requests pipelined to one worker (max_concurrent_requests_per_instance
 * 4, 4 clients): every client gets the answer to its own request.
 */
static void
runtime__pipelined_answers_reach_their_request(void **state)
{
	struct amlops_runtime_route t[] = {{"blue", 100}};
	struct pipe_arg args[4];
	pthread_t th[4];
	int i;

	endpoint_key("e-pipe", t, 1, NULL, 0);
	deploy_full("e-pipe", "blue", 1, "{\"DEP\": \"blue\"}", 10000, 4, 2000);
	assert_int_equal(
	    wait_state("e-pipe", "blue", 1, NULL), AMLOPS_RUNTIME_READY);
	for (i = 0; i < 4; i++) {
		args[i].thread = i;
		args[i].ok = 0;
		assert_int_equal(
		    pthread_create(&th[i], NULL, pipe_client, &args[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].ok, 100);
	}
	assert_int_equal(metric("amlops_requests_total{endpoint=\"e-pipe\","
	                        "deployment=\"blue\",code=\"200\"}"),
	    400);
}

/* A worker that breaks the protocol is killed and replaced. */
static void
runtime__bad_frame_kills_worker(void **state)
{
	static const char *const kinds[] = {"type", "size"};
	struct amlops_runtime_route t[] = {{"blue", 100}};
	int64_t until;
	struct resp r;
	char body[64];
	size_t i;

	endpoint_key("e-frame", t, 1, NULL, 0);
	deploy("e-frame", "blue", 1);
	for (i = 0; i < AMLOPS_ARRAY_SIZE(kinds); i++) {
		assert_int_equal(wait_state("e-frame", "blue", 1, NULL),
		    AMLOPS_RUNTIME_READY);
		snprintf(
		    body, sizeof(body), "{\"badframe\": \"%s\"}", kinds[i]);
		post_json("e-frame", KEY, NULL, body, &r);
		assert_int_equal(r.status, 502);
		assert_string_equal(amlops_buf_cstr(&r.body),
		    "{\"message\": \"the worker of deployment 'blue' exited "
		    "while handling the request\"}");
		resp_release(&r);
		assert_int_equal(count_in_logs("e-frame", "blue",
		                     "event=killed reason=\"bad frame from "
		                     "worker\""),
		    (int)i + 1);
		/* A replacement serves; killing it was no crash. */
		until = amlops_now_ms() + WAIT_MS;
		do {
			post_json(
			    "e-frame", KEY, NULL, "{\"env\": \"DEP\"}", &r);
			if (r.status == 200)
				break;
			resp_release(&r);
			usleep(50000);
		} while (amlops_now_ms() < until);
		assert_int_equal(r.status, 200);
		resp_release(&r);
	}
	assert_int_equal(metric("amlops_worker_restarts_total{endpoint="
	                        "\"e-frame\",deployment=\"blue\"}"),
	    0);
}

struct slow_arg {
	const char *endpoint;
	const char *body;
	long status;
};

static void *
slow_post(void *arg)
{
	struct slow_arg *a = arg;
	struct resp r;

	post_json(a->endpoint, KEY, NULL, a->body, &r);
	a->status = r.status;
	resp_release(&r);
	return NULL;
}

static void
runtime__request_timeout_is_408(void **state)
{
	struct amlops_runtime_route t[] = {{"blue", 100}};
	int64_t until;
	struct resp r;

	endpoint_key("e-slow", t, 1, NULL, 0);
	deploy_full("e-slow", "blue", 1, "{\"DEP\": \"blue\"}", 300, 1, 2000);
	assert_int_equal(
	    wait_state("e-slow", "blue", 1, NULL), AMLOPS_RUNTIME_READY);
	post_json("e-slow", KEY, NULL, "{\"sleep\": 3}", &r);
	assert_int_equal(r.status, 408);
	assert_string_equal(amlops_buf_cstr(&r.body),
	    "{\"message\": \"request timed out after 300 ms "
	    "(request_timeout_ms)\"}");
	resp_release(&r);
	/* The stuck worker was recycled: the next request is served. */
	until = amlops_now_ms() + WAIT_MS;
	do {
		post_json("e-slow", KEY, NULL, "{\"env\": \"DEP\"}", &r);
		if (r.status == 200)
			break;
		resp_release(&r);
		usleep(50000);
	} while (amlops_now_ms() < until);
	assert_int_equal(r.status, 200);
	resp_release(&r);
}

static void
runtime__queue_full_is_429(void **state)
{
	struct amlops_runtime_route t[] = {{"blue", 100}};
	struct slow_arg a = {"e-queue", "{\"sleep\": 1.5}", 0};
	pthread_t th;
	struct resp r;
	int64_t t0;

	endpoint_key("e-queue", t, 1, NULL, 0);
	deploy_full("e-queue", "blue", 1, "{\"DEP\": \"blue\"}", 5000, 1, 200);
	assert_int_equal(
	    wait_state("e-queue", "blue", 1, NULL), AMLOPS_RUNTIME_READY);
	assert_int_equal(pthread_create(&th, NULL, slow_post, &a), 0);
	usleep(300 * 1000);
	t0 = amlops_now_ms();
	post_json("e-queue", KEY, NULL, "{\"env\": \"DEP\"}", &r);
	assert_int_equal(r.status, 429);
	assert_string_equal(amlops_buf_cstr(&r.body),
	    "{\"message\": \"too many pending requests for deployment "
	    "'blue'\"}");
	/* It waited max_queue_wait_ms in the queue first. */
	assert_true(amlops_now_ms() - t0 >= 190);
	resp_release(&r);
	pthread_join(th, NULL);
	assert_int_equal(a.status, 200);
	assert_true(metric("amlops_queue_wait_seconds_count{endpoint="
	                   "\"e-queue\",deployment=\"blue\"}") >= 1);
}

/* Whether the deployment's log shows `needle` within `ms`. */
static int
log_has(const char *ep, const char *dep, const char *needle, int ms)
{
	struct amlops_buf logs = AMLOPS_BUF_INIT;
	int64_t end = amlops_now_ms() + ms;
	int found = 0;

	do {
		if (amlops_runtime_logs(rt, ep, dep, 0, &logs) == 0 &&
		    strstr(amlops_buf_cstr(&logs), needle)) {
			found = 1;
			break;
		}
		usleep(20 * 1000);
	} while (amlops_now_ms() < end);
	amlops_buf_release(&logs);
	return found;
}

static void
runtime__model_error_is_424(void **state)
{
	struct resp r;

	post_json("e-json", KEY, NULL, "{\"raise\": \"bad input shape\"}", &r);
	assert_int_equal(r.status, 424);
	assert_string_equal(r.model_status, "500");
	assert_string_equal(
	    amlops_buf_cstr(&r.body), "ValueError: bad input shape");
	resp_release(&r);
	/*
	 * The worker prints the traceback before it answers, but the log
	 * reader drains the worker's pipe on its own thread: give it time.
	 */
	assert_true(
	    log_has("e-json", "blue", "raise ValueError(req['raise'])", 5000));
	/* The worker lives on. */
	post_json("e-json", KEY, NULL, "{\"env\": \"DEP\"}", &r);
	assert_int_equal(r.status, 200);
	resp_release(&r);
}

static void
runtime__body_limit_and_unknown_routes(void **state)
{
	struct amlops_runtime_route none[] = {{"blue", 0}};
	size_t big = (64 << 10) + 1;
	char *body = amlops_xmalloc(big);
	struct resp r;

	memset(body, ' ', big);
	post(NULL, "e-json", KEY, NULL, "application/json", body, big, &r);
	assert_int_equal(r.status, 413);
	assert_string_equal(amlops_buf_cstr(&r.body),
	    "{\"message\": \"request body too large\"}");
	resp_release(&r);
	/* Chunked, so no Content-Length says so up front. */
	chunked = 1;
	post(NULL, "e-json", KEY, NULL, "application/json", body, big, &r);
	chunked = 0;
	assert_int_equal(r.status, 413);
	assert_string_equal(amlops_buf_cstr(&r.body),
	    "{\"message\": \"request body too large\"}");
	resp_release(&r);
	free(body);

	post_json("e-nowhere", KEY, NULL, "{}", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(
	    amlops_buf_cstr(&r.body), "{\"message\": \"endpoint not found\"}");
	resp_release(&r);

	endpoint_key("e-empty", none, 1, NULL, 0);
	post_json("e-empty", KEY, NULL, "{}", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(amlops_buf_cstr(&r.body),
	    "{\"message\": \"no valid deployments to route to: give a "
	    "deployment positive traffic or name one with the "
	    "azureml-model-deployment header\"}");
	resp_release(&r);
	assert_int_equal(amlops_runtime_remove_endpoint(rt, "e-empty"), 0);
	assert_int_equal(
	    amlops_runtime_remove_endpoint(rt, "e-empty"), AMLOPS_ENOTFOUND);
	assert_string_equal(amlops_err_last(), "no endpoint 'e-empty'");
}

static void
runtime__logs_tail_and_rotation(void **state)
{
	struct amlops_buf logs = AMLOPS_BUF_INIT;
	struct resp r;
	struct stat st;
	char *path;
	const char *s;
	int i, lines = 0;

	post_json("e-json", KEY, NULL, "{\"print\": \"hello from run\"}", &r);
	assert_int_equal(r.status, 200);
	resp_release(&r);
	assert_int_equal(
	    amlops_runtime_logs(rt, "e-json", "blue", 1, &logs), 0);
	assert_string_equal(amlops_buf_cstr(&logs), "hello from run\n");
	amlops_buf_reset(&logs);
	assert_int_equal(
	    amlops_runtime_logs(rt, "e-json", "blue", 3, &logs), 0);
	for (s = amlops_buf_cstr(&logs); *s; s++)
		lines += *s == '\n';
	assert_int_equal(lines, 3);
	amlops_buf_release(&logs);

	/* 10 x 10 KiB through a 64 KiB cap: one rotation, nothing over. */
	for (i = 0; i < 10; i++) {
		post_json("e-json", KEY, NULL, "{\"spam\": 10000}", &r);
		assert_int_equal(r.status, 200);
		resp_release(&r);
	}
	path = amlops_xasprintf("%s/logs/e-json/blue/inference.log.1", tmp);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size <= 64 << 10);
	path[strlen(path) - 2] = '\0';
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size <= 64 << 10);
	assert_int_equal(st.st_mode & 0777, 0600);
	free(path);
	assert_int_equal(amlops_runtime_logs(rt, "e-nope", "blue", 0, &logs),
	    AMLOPS_ENOTFOUND);
	assert_string_equal(
	    amlops_err_last(), "no deployment 'blue' in endpoint 'e-nope'");
}

static void
runtime__metrics_text(void **state)
{
	struct amlops_buf m;
	struct resp r;
	CURL *curl = curl_easy_init();
	char *url;
	long code = 0;

	get_metrics(&m);
	assert_non_null(strstr(m.ptr, "# TYPE amlops_requests_total counter"));
	assert_non_null(
	    strstr(m.ptr, "# TYPE amlops_request_duration_seconds histogram"));
	assert_non_null(
	    strstr(m.ptr, "# TYPE amlops_queue_wait_seconds histogram"));
	assert_non_null(strstr(m.ptr,
	    "amlops_workers_ready{endpoint=\"e-json\",deployment=\"blue\"} "
	    "1\n"));
	assert_non_null(strstr(m.ptr,
	    "amlops_request_duration_seconds_bucket{endpoint=\"e-json\","
	    "deployment=\"blue\",le=\"+Inf\"}"));
	amlops_buf_release(&m);
	assert_true(metric("amlops_requests_total{endpoint=\"e-json\","
	                   "deployment=\"blue\",code=\"200\"}") >= 5);
	assert_int_equal(metric("amlops_requests_total{endpoint=\"e-json\","
	                        "deployment=\"blue\",code=\"424\"}"),
	    1);

	/* The same text over HTTP on the front. */
	memset(&r, 0, sizeof(r));
	amlops_buf_init(&r.body, 1 << 20);
	url = amlops_xasprintf("%s/metrics", amlops_runtime_base_url(rt));
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
	assert_int_equal(curl_easy_perform(curl), CURLE_OK);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	assert_int_equal(code, 200);
	assert_non_null(strstr(amlops_buf_cstr(&r.body),
	    "amlops_workers_ready{endpoint=\"e-json\",deployment=\"blue\"}"));
	resp_release(&r);
	free(url);
	curl_easy_cleanup(curl);
}

static int
count_in_logs(const char *endpoint, const char *dep, const char *what)
{
	struct amlops_buf logs = AMLOPS_BUF_INIT;
	const char *p;
	int n = 0;

	assert_int_equal(amlops_runtime_logs(rt, endpoint, dep, 0, &logs), 0);
	for (p = amlops_buf_cstr(&logs); (p = strstr(p, what)); p++)
		n++;
	amlops_buf_release(&logs);
	return n;
}

static void
runtime__scale_in_place(void **state)
{
	struct amlops_runtime_route t[] = {{"blue", 100}};
	int64_t until;
	int ready = 0;

	endpoint_key("e-scale", t, 1, NULL, 0);
	deploy("e-scale", "blue", 1);
	assert_int_equal(
	    wait_state("e-scale", "blue", 1, NULL), AMLOPS_RUNTIME_READY);
	deploy("e-scale", "blue", 3);
	assert_int_equal(
	    wait_state("e-scale", "blue", 3, NULL), AMLOPS_RUNTIME_READY);
	/* The first worker kept running: three starts in all, no exit. */
	assert_int_equal(count_in_logs("e-scale", "blue", "event=started"), 3);
	assert_int_equal(count_in_logs("e-scale", "blue", "event=exited"), 0);
	deploy("e-scale", "blue", 1);
	until = amlops_now_ms() + WAIT_MS;
	while (count_in_logs("e-scale", "blue", "event=exited") < 2 &&
	       amlops_now_ms() < until)
		usleep(20000);
	assert_int_equal(count_in_logs("e-scale", "blue", "event=exited"), 2);
	assert_int_equal(
	    amlops_runtime_status(rt, "e-scale", "blue", NULL, &ready),
	    AMLOPS_RUNTIME_READY);
	assert_int_equal(ready, 1);
	assert_int_equal(count_in_logs("e-scale", "blue", "event=started"), 3);
}

static void
runtime__worker_environment(void **state)
{
	struct amlops_runtime_route t[] = {{"blue", 100}};
	struct resp r;

	endpoint_key("e-env", t, 1, NULL, 0);
	deploy_full("e-env", "blue", 1,
	    "{\"DEP\": \"blue\", \"GREETING\": \"hi there\", \"N\": 3}", 0, 0,
	    0);
	assert_int_equal(
	    wait_state("e-env", "blue", 1, NULL), AMLOPS_RUNTIME_READY);
	post_json("e-env", KEY, NULL, "{\"env\": \"GREETING\"}", &r);
	assert_string_equal(amlops_buf_cstr(&r.body), "\"hi there\"");
	resp_release(&r);
	post_json("e-env", KEY, NULL, "{\"env\": \"N\"}", &r);
	assert_string_equal(amlops_buf_cstr(&r.body), "\"3\"");
	resp_release(&r);
	post_json("e-env", KEY, NULL, "{\"env\": \"AZUREML_MODEL_DIR\"}", &r);
	assert_non_null(strstr(amlops_buf_cstr(&r.body), model_dir));
	resp_release(&r);
	post_json("e-env", KEY, NULL, "{\"env\": \"AZURE_CLIENT_SECRET\"}", &r);
	assert_string_equal(amlops_buf_cstr(&r.body), "null");
	resp_release(&r);
	post_json("e-env", KEY, NULL, "{\"env\": \"AMLOPS_WORKER_FD\"}", &r);
	assert_string_equal(amlops_buf_cstr(&r.body), "null");
	resp_release(&r);
}

static void
runtime__bad_deploy_input(void **state)
{
	struct amlops_runtime_deployment d = {0};
	struct amlops_runtime_endpoint ep = {0};
	struct amlops_runtime_route over[] = {{"a", 60}, {"b", 50}};

	d.endpoint = "e-json";
	d.name = "x";
	d.code_dir = "relative/code";
	d.scoring_script = "score.py";
	d.model_dir = model_dir;
	d.log_dir = tmp;
	d.instance_count = 1;
	assert_int_equal(amlops_runtime_deploy(rt, &d), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "deployment 'x': code_dir must be an absolute path");
	d.code_dir = code_dir;
	d.instance_count = 0;
	assert_int_equal(amlops_runtime_deploy(rt, &d), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "deployment 'x': instance_count 0 is not in 1..64");
	d.instance_count = 1;
	d.scoring_script = "/abs/score.py";
	assert_int_equal(amlops_runtime_deploy(rt, &d), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "deployment 'x': scoring_script must be a path relative to the "
	    "code folder");

	ep.name = "e-bad";
	ep.auth = AMLOPS_RUNTIME_AUTH_KEY;
	assert_int_equal(amlops_runtime_set_endpoint(rt, &ep), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "endpoint 'e-bad': key auth needs a primary key");
	ep.primary_key = "k";
	ep.traffic = over;
	ep.ntraffic = 2;
	assert_int_equal(amlops_runtime_set_endpoint(rt, &ep), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "endpoint 'e-bad': traffic adds up to 110, more than 100");
	assert_int_equal(
	    amlops_runtime_remove(rt, "e-json", "x"), AMLOPS_ENOTFOUND);
	assert_string_equal(
	    amlops_err_last(), "no deployment 'x' in endpoint 'e-json'");
}

static void
runtime__free_leaves_no_process(void **state)
{
	struct amlops_runtime_opts opts = {0};
	struct amlops_runtime_route t[] = {{"blue", 100}};
	int st;

	assert_true(count_children() > 0);
	amlops_runtime_free(rt);
	rt = NULL;
	assert_int_equal(count_children(), 0);
	errno = 0;
	assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);

	/* A new runtime with a missing interpreter: FAILED, with why. */
	opts.python = "/nonexistent/python3";
	assert_int_equal(amlops_runtime_new(&rt, &opts), 0);
	endpoint_key("e-py", t, 1, NULL, 0);
	deploy("e-py", "blue", 1);
	{
		char *why = NULL;

		assert_int_equal(
		    wait_state("e-py", "blue", 1, &why), AMLOPS_RUNTIME_FAILED);
		assert_non_null(strstr(why, "cannot start worker "
		                            "'/nonexistent/python3'"));
		free(why);
	}
}

/*
 * The scikit-learn sample of manifests/ serves the predictions its model
 * makes when called directly.
 */
static void
runtime__sample_model_predicts(void **state)
{
	struct amlops_runtime_deployment dep = {0};
	struct amlops_runtime_route t[] = {{"blue", 100}};
	struct amlops_buf body = AMLOPS_BUF_INIT, want = AMLOPS_BUF_INIT;
	const char *src = getenv("AMLOPS_SRC");
	char *code, *model, *req, *cmd, *logdir;
	char line[4096];
	struct resp r;
	FILE *p;

	if (!src) {
		printf("SKIP: AMLOPS_SRC is not set: no manifests/ to serve\n");
		skip();
	}
	code = amlops_xasprintf(
	    "%s/manifests/models/regression-1/onlinescoring", src);
	model = amlops_xasprintf("%s/manifests/models/regression-1", src);
	req = amlops_xasprintf("%s/manifests/models/sample-request.json", src);
	if (access(req, R_OK) != 0) {
		printf("SKIP: no %s\n", req);
		free(code);
		free(model);
		free(req);
		skip();
	}
	assert_int_equal(amlops_file_read(&body, req, 1 << 20), 0);
	logdir = amlops_xasprintf("%s/logs/e-sample", tmp);
	assert_int_equal(amlops_mkdir_p(logdir, 0700), 0);
	endpoint_key("e-sample", t, 1, NULL, 0);
	dep.endpoint = "e-sample";
	dep.name = "blue";
	dep.code_dir = code;
	dep.scoring_script = "score.py";
	dep.model_dir = model;
	dep.instance_count = 1;
	dep.log_dir = logdir;
	assert_int_equal(amlops_runtime_deploy(rt, &dep), 0);
	free(logdir);
	assert_int_equal(
	    wait_state("e-sample", "blue", 1, NULL), AMLOPS_RUNTIME_READY);
	post_json("e-sample", KEY, NULL, amlops_buf_cstr(&body), &r);
	assert_int_equal(r.status, 200);

	/* What the model says when score.py is called in-process. */
	cmd = amlops_xasprintf("cd '%s' && AZUREML_MODEL_DIR='%s' " PY
	                       " -c 'import json, sys, score; score.init(); "
	                       "print(json.dumps(score.run(open(sys.argv[1])."
	                       "read())))' '%s'",
	    code, model, req);
	assert_non_null(p = popen(cmd, "r"));
	while (fgets(line, sizeof(line), p))
		amlops_buf_puts(&want, line);
	assert_int_equal(pclose(p), 0);
	free(cmd);
	if (want.len && want.ptr[want.len - 1] == '\n')
		want.ptr[--want.len] = '\0';
	assert_true(want.len > 2);
	assert_string_equal(amlops_buf_cstr(&r.body), amlops_buf_cstr(&want));
	resp_release(&r);
	/* init()'s logging.info() lines reach the log, as on Azure. */
	amlops_buf_reset(&want);
	assert_int_equal(
	    amlops_runtime_logs(rt, "e-sample", "blue", 0, &want), 0);
	assert_non_null(strstr(amlops_buf_cstr(&want), " INFO root: "));
	assert_int_equal(amlops_runtime_remove_endpoint(rt, "e-sample"), 0);
	amlops_buf_release(&body);
	amlops_buf_release(&want);
	free(code);
	free(model);
	free(req);
}

/*
 * Serves CODE_DIR (env AMLOPS_RUNTIME_SERVE) for benchmarks: one endpoint
 * "bench" with key "bench-key", deployment "d" of AMLOPS_RUNTIME_INSTANCES
 * workers (default 1) with the model at AMLOPS_RUNTIME_MODEL, on
 * AMLOPS_RUNTIME_PORT. Prints the base URL once ready; runs until stdin
 * closes.
 */
static int
serve(const char *code)
{
	struct amlops_runtime_opts opts = {0};
	struct amlops_runtime_deployment dep = {0};
	struct amlops_runtime_endpoint ep = {0};
	struct amlops_runtime_route t[] = {{"d", 100}};
	const char *s;
	char logdir[] = "/tmp/amlops-serve-XXXXXX", buf[64];
	enum amlops_runtime_state st;
	int64_t until;
	char *why = NULL;

	if (!mkdtemp(logdir))
		return 1;
	opts.python = getenv("AMLOPS_RUNTIME_PYTHON");
	opts.port = (s = getenv("AMLOPS_RUNTIME_PORT")) ? atoi(s) : 0;
	if (amlops_runtime_new(&rt, &opts) < 0) {
		fprintf(stderr, "serve: %s\n", amlops_err_last());
		return 1;
	}
	ep.name = "bench";
	ep.primary_key = "bench-key";
	ep.traffic = t;
	ep.ntraffic = 1;
	dep.endpoint = "bench";
	dep.name = "d";
	dep.code_dir = code;
	dep.scoring_script =
	    (s = getenv("AMLOPS_RUNTIME_SCRIPT")) ? s : "score.py";
	dep.model_dir = (s = getenv("AMLOPS_RUNTIME_MODEL")) ? s : code;
	dep.instance_count =
	    (s = getenv("AMLOPS_RUNTIME_INSTANCES")) ? atoi(s) : 1;
	dep.max_concurrent_per_instance =
	    (s = getenv("AMLOPS_RUNTIME_MAXCONC")) ? atoi(s) : 1;
	dep.max_queue_wait_ms = 5000;
	dep.request_timeout_ms = 30000;
	dep.log_dir = logdir;
	if (amlops_runtime_set_endpoint(rt, &ep) < 0 ||
	    amlops_runtime_deploy(rt, &dep) < 0) {
		fprintf(stderr, "serve: %s\n", amlops_err_last());
		goto done;
	}
	until = amlops_now_ms() + 60000;
	while ((st = amlops_runtime_status(rt, "bench", "d", &why, NULL)) ==
	           AMLOPS_RUNTIME_STARTING &&
	       amlops_now_ms() < until)
		usleep(20000);
	if (st != AMLOPS_RUNTIME_READY) {
		fprintf(stderr, "serve: not ready: %s\n", why ? why : "");
		goto done;
	}
	printf("%s\n", amlops_runtime_base_url(rt));
	fflush(stdout);
	while (fgets(buf, sizeof(buf), stdin))
		;
done:
	free(why);
	amlops_runtime_free(rt);
	rm_rf(logdir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(runtime__score_json_round_trip),
	    cmocka_unit_test(runtime__score_binary_body),
	    cmocka_unit_test(runtime__large_answer),
	    cmocka_unit_test(runtime__key_auth),
	    cmocka_unit_test(runtime__token_auth_and_expiry),
	    cmocka_unit_test(runtime__traffic_50_50_and_header),
	    cmocka_unit_test(runtime__mirror_gets_its_share),
	    cmocka_unit_test(runtime__init_raising_gives_failed),
	    cmocka_unit_test(runtime__workers_that_keep_dying_fail),
	    cmocka_unit_test(runtime__killed_worker_is_replaced),
	    cmocka_unit_test(runtime__missing_code_fails),
	    cmocka_unit_test(runtime__rawhttp_scripts),
	    cmocka_unit_test(runtime__pipelined_answers_reach_their_request),
	    cmocka_unit_test(runtime__bad_frame_kills_worker),
	    cmocka_unit_test(runtime__request_timeout_is_408),
	    cmocka_unit_test(runtime__queue_full_is_429),
	    cmocka_unit_test(runtime__model_error_is_424),
	    cmocka_unit_test(runtime__body_limit_and_unknown_routes),
	    cmocka_unit_test(runtime__logs_tail_and_rotation),
	    cmocka_unit_test(runtime__metrics_text),
	    cmocka_unit_test(runtime__scale_in_place),
	    cmocka_unit_test(runtime__worker_environment),
	    cmocka_unit_test(runtime__bad_deploy_input),
	    cmocka_unit_test(runtime__sample_model_predicts),
	    cmocka_unit_test(runtime__free_leaves_no_process),
	};
	const char *serve_dir = getenv("AMLOPS_RUNTIME_SERVE");
	int rc;

	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	amlops_log_init("test_runtime", 0, 0);
	if (serve_dir)
		rc = serve(serve_dir);
	else
		rc = cmocka_run_group_tests(tests, setup, teardown);
	curl_global_cleanup();
	return rc;
}
