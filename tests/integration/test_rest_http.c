/*
 * Protocol corners `amlops host` does not produce, against a small real
 * HTTP server written for this test (Python's http.server on 127.0.0.1):
 * x-ms-retry-after-ms winning over Retry-After, the cap on total retry
 * time, long-running operations followed through Location, through
 * provisioningState alone, to Canceled, past their deadline, and a
 * response over the size cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/rest.h"
#include "amlops/util.h"

#include "rest_harness.h"

static const char server_py[] =
    "import json, sys, os, threading\n"
    "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n"
    "hits = {}\n"
    "lock = threading.Lock()\n"
    "def hit(p):\n"
    "    with lock:\n"
    "        hits[p] = hits.get(p, 0) + 1\n"
    "        return hits[p]\n"
    "class H(BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a): pass\n"
    "    def send(self, code, body=None, headers=()):\n"
    "        data = json.dumps(body).encode() if body is not None else b''\n"
    "        self.send_response(code)\n"
    "        for k, v in headers: self.send_header(k, v)\n"
    "        self.send_header('Content-Type', 'application/json')\n"
    "        self.send_header('Content-Length', str(len(data)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(data)\n"
    "    def body(self):\n"
    "        n = int(self.headers.get('Content-Length') or 0)\n"
    "        return self.rfile.read(n)\n"
    "    def do_GET(self):\n"
    "        p = self.path.split('?')[0]\n"
    "        n = hit('GET ' + p)\n"
    "        if p == '/retry-ms':\n"
    "            if n <= 2:\n"
    "                return self.send(503, {'error': {'code': 'Busy', "
    "'message': 'busy'}}, [('Retry-After', '10'), "
    "('x-ms-retry-after-ms', '300')])\n"
    "            return self.send(200, {'ok': True})\n"
    "        if p == '/always503':\n"
    "            return self.send(503, {'error': {'code': 'Down', "
    "'message': 'down for maintenance'}}, [('Retry-After', '1')])\n"
    "        if p == '/op/loc':\n"
    "            if n <= 2:\n"
    "                return self.send(202, None, [('Location', "
    "'/op/loc'), ('Retry-After', '0')])\n"
    "            return self.send(200, {'properties': "
    "{'provisioningState': 'Succeeded'}})\n"
    "        if p == '/op/forever':\n"
    "            return self.send(202, None, [('Location', '/op/forever'), "
    "('Retry-After', '0')])\n"
    "        if p == '/async/cancel':\n"
    "            return self.send(200, {'status': 'Canceled', 'error': "
    "{'code': 'OperationCanceled', 'message': 'a newer update "
    "replaced this one'}})\n"
    "        if p == '/state':\n"
    "            ps = 'Creating' if n <= 2 else 'Succeeded'\n"
    "            return self.send(200, {'properties': "
    "{'provisioningState': ps}})\n"
    "        if p == '/op/del':\n"
    "            return self.send(204 if n > 1 else 202, None, "
    "[('Location', '/op/del'), ('Retry-After', '0')] if n <= 1 else [])\n"
    "        if p == '/big':\n"
    "            return self.send(200, {'x': 'y' * (3 << 20)})\n"
    "        if p == '/_hits':\n"
    "            with lock:\n"
    "                return self.send(200, hits)\n"
    "        return self.send(404, {'error': {'code': 'NotFound', "
    "'message': 'no ' + p}})\n"
    "    def do_PUT(self):\n"
    "        p = self.path.split('?')[0]\n"
    "        self.body()\n"
    "        hit('PUT ' + p)\n"
    "        if p == '/loc':\n"
    "            return self.send(202, None, [('Location', '/op/loc'), "
    "('Retry-After', '0')])\n"
    "        if p == '/forever':\n"
    "            return self.send(202, None, [('Location', '/op/forever'), "
    "('Retry-After', '0')])\n"
    "        if p == '/cancel':\n"
    "            return self.send(201, {'properties': "
    "{'provisioningState': 'Updating'}}, [('Azure-AsyncOperation', "
    "'/async/cancel'), ('Retry-After', '0')])\n"
    "        if p == '/state':\n"
    "            return self.send(201, {'properties': "
    "{'provisioningState': 'Creating'}})\n"
    "        return self.send(404, None)\n"
    "    def do_DELETE(self):\n"
    "        p = self.path.split('?')[0]\n"
    "        hit('DELETE ' + p)\n"
    "        if p == '/del':\n"
    "            return self.send(202, None, [('Location', '/op/del'), "
    "('Retry-After', '0')])\n"
    "        return self.send(404, None)\n"
    "s = ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
    "with open(sys.argv[1] + '.tmp', 'w') as f: f.write('%d\\n' % "
    "s.server_address[1])\n"
    "os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
    "s.serve_forever()\n";

static char *tmp, *base;
static pid_t srv_pid;

static int
setup(void **state)
{
	char *script, *portfile, *logf, *port;

	(void)state;
	if (access("/usr/bin/python3", X_OK) != 0) {
		printf("SKIP: /usr/bin/python3 is missing\n");
		exit(0);
	}
	alarm(200);
	tmp = harness_tmpdir("resthttp");
	script = amlops_xasprintf("%s/server.py", tmp);
	portfile = amlops_xasprintf("%s/port", tmp);
	logf = amlops_xasprintf("%s/server.log", tmp);
	amlops_file_write_atomic(script, server_py, strlen(server_py), 0600);
	{
		char *argv[] = {"/usr/bin/python3", script, portfile, NULL};

		srv_pid = harness_spawn(argv, logf);
	}
	port = harness_wait_file(portfile, "\n", 15000, srv_pid);
	free(script);
	free(portfile);
	free(logf);
	if (port == NULL)
		return -1;
	base = amlops_xasprintf("http://127.0.0.1:%d", atoi(port));
	free(port);
	amlops_log_init("test_rest_http", 0, 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	harness_kill(srv_pid);
	harness_rmrf(tmp);
	free(tmp);
	free(base);
	return 0;
}

static struct amlops_rest *
client(const struct amlops_retry *retry, int64_t lro_timeout_ms)
{
	struct amlops_rest_cfg rc = {0};
	struct amlops_rest *r = NULL;

	rc.base_url = base;
	rc.api_version = "2024-04-01";
	rc.bearer = "test-bearer";
	if (retry)
		rc.retry = *retry;
	rc.lro_timeout_ms = lro_timeout_ms;
	rc.lro_min_interval_ms = 20;
	assert_int_equal(amlops_rest_new(&r, &rc), 0);
	return r;
}

static void
http__x_ms_retry_after_ms_wins_over_retry_after(void **state)
{
	struct amlops_rest *r = client(NULL, 0);
	struct amlops_rest_resp resp = AMLOPS_REST_RESP_INIT;
	int64_t t0 = amlops_now_ms(), ms;

	(void)state;
	assert_int_equal(
	    amlops_rest_call(r, "GET", "/retry-ms", NULL, &resp), 0);
	ms = amlops_now_ms() - t0;
	assert_int_equal(resp.attempts, 3);
	/* 2 x 300 ms, not 2 x 10 s. */
	assert_true(ms >= 600);
	assert_true(ms < 3000);
	amlops_rest_resp_release(&resp);
	amlops_rest_free(r);
}

static void
http__total_retry_time_is_capped(void **state)
{
	struct amlops_retry p = {.max_attempts = 50, .max_total_ms = 2500};
	struct amlops_rest *r = client(&p, 0);
	struct amlops_rest_resp resp = AMLOPS_REST_RESP_INIT;
	int64_t t0 = amlops_now_ms(), ms;
	char *want;

	(void)state;
	assert_int_equal(amlops_rest_call(r, "GET", "/always503", NULL, &resp),
	    AMLOPS_EBACKEND);
	ms = amlops_now_ms() - t0;
	/*
	 * Retry-After: 1 each time; a third wait would pass 2.5 s (and
	 * end past 3 s).
	 */
	assert_int_equal(resp.attempts, 3);
	assert_true(ms >= 2000 && ms < 2900);
	want = amlops_xasprintf("GET always503: 503 Service Unavailable "
	                        "(request id %s): Down: down for maintenance",
	    resp.request_id);
	assert_string_equal(amlops_err_last(), want);
	free(want);
	amlops_rest_resp_release(&resp);
	amlops_rest_free(r);
}

static void
lro__followed_through_location(void **state)
{
	struct amlops_rest *r = client(NULL, 0);
	struct amlops_rest_op *op = NULL;
	cJSON *body = cJSON_Parse("{\"properties\":{}}");

	(void)state;
	assert_int_equal(amlops_rest_op_begin(&op, r, "PUT", "/loc", body), 0);
	assert_int_equal(op->poll_kind, 1);
	assert_int_equal(op->state, AMLOPS_OP_RUNNING);
	assert_int_equal(amlops_rest_op_wait(r, op), 0);
	assert_int_equal(op->state, AMLOPS_OP_SUCCEEDED);
	assert_int_equal(op->polls, 3);
	amlops_rest_op_free(op);
	cJSON_Delete(body);
	amlops_rest_free(r);
}

static void
lro__followed_through_provisioning_state(void **state)
{
	struct amlops_rest *r = client(NULL, 0);
	struct amlops_rest_op *op = NULL;
	cJSON *body = cJSON_Parse("{}");

	(void)state;
	assert_int_equal(
	    amlops_rest_op_begin(&op, r, "PUT", "/state", body), 0);
	assert_int_equal(op->poll_kind, 2);
	assert_string_equal(op->status, "Creating");
	assert_int_equal(amlops_rest_op_wait(r, op), 0);
	assert_string_equal(op->status, "Succeeded");
	amlops_rest_op_free(op);
	cJSON_Delete(body);
	amlops_rest_free(r);
}

static void
lro__canceled_carries_the_reason(void **state)
{
	struct amlops_rest *r = client(NULL, 0);
	struct amlops_rest_op *op = NULL;
	cJSON *body = cJSON_Parse("{}");
	char *want;

	(void)state;
	assert_int_equal(
	    amlops_rest_op_begin(&op, r, "PUT", "/cancel", body), 0);
	assert_int_equal(op->poll_kind, 0);
	assert_int_equal(amlops_rest_op_wait(r, op), AMLOPS_EBACKEND);
	assert_int_equal(op->state, AMLOPS_OP_CANCELED);
	want = amlops_xasprintf("PUT cancel: operation Canceled (request id "
	                        "%s): OperationCanceled: a newer update "
	                        "replaced this one",
	    op->request_id);
	assert_string_equal(amlops_err_last(), want);
	free(want);
	amlops_rest_op_free(op);
	cJSON_Delete(body);
	amlops_rest_free(r);
}

static void
lro__delete_through_location_ends_on_204(void **state)
{
	struct amlops_rest *r = client(NULL, 0);
	struct amlops_rest_op *op = NULL;

	(void)state;
	assert_int_equal(
	    amlops_rest_op_begin(&op, r, "DELETE", "/del", NULL), 0);
	assert_int_equal(op->poll_kind, 1);
	assert_int_equal(amlops_rest_op_wait(r, op), 0);
	assert_int_equal(op->state, AMLOPS_OP_SUCCEEDED);
	amlops_rest_op_free(op);
	amlops_rest_free(r);
}

static void
lro__deadline_gives_etimeout(void **state)
{
	struct amlops_rest *r = client(NULL, 400);
	struct amlops_rest_op *op = NULL;
	cJSON *body = cJSON_Parse("{}");
	int64_t t0 = amlops_now_ms();
	const char *m;

	(void)state;
	assert_int_equal(
	    amlops_rest_op_begin(&op, r, "PUT", "/forever", body), 0);
	assert_int_equal(amlops_rest_op_wait(r, op), AMLOPS_ETIMEOUT);
	assert_true(amlops_now_ms() - t0 < 3000);
	m = amlops_err_last();
	assert_true(strncmp(m, "PUT forever: operation still InProgress after ",
	                strlen("PUT forever: operation still InProgress "
	                       "after ")) == 0);
	assert_non_null(strstr(m, op->request_id));
	amlops_rest_op_free(op);
	cJSON_Delete(body);
	amlops_rest_free(r);
}

static void
http__response_over_the_cap_is_refused(void **state)
{
	struct amlops_http *h = NULL;
	struct amlops_http_resp resp = AMLOPS_HTTP_RESP_INIT;
	struct amlops_http_req req = {0};
	char *url = amlops_xasprintf("%s/big", base), *want;

	(void)state;
	assert_int_equal(amlops_http_new(&h, NULL), 0);
	req.method = "GET";
	req.url = url;
	req.max_response = 1 << 20;
	assert_int_equal(amlops_http_do(h, &req, &resp), AMLOPS_EINVALID);
	want = amlops_xasprintf("GET /big: response larger than 1048576 bytes "
	                        "(request id %s)",
	    resp.request_id);
	assert_string_equal(amlops_err_last(), want);
	free(want);
	amlops_http_resp_release(&resp);
	amlops_http_free(h);
	free(url);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(http__x_ms_retry_after_ms_wins_over_retry_after),
	    cmocka_unit_test(http__total_retry_time_is_capped),
	    cmocka_unit_test(lro__followed_through_location),
	    cmocka_unit_test(lro__followed_through_provisioning_state),
	    cmocka_unit_test(lro__canceled_carries_the_reason),
	    cmocka_unit_test(lro__delete_through_location_ends_on_204),
	    cmocka_unit_test(lro__deadline_gives_etimeout),
	    cmocka_unit_test(http__response_over_the_cap_is_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
