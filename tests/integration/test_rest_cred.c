/*
 * Credential flows against the harness's token server (a real HTTP
 * server on 127.0.0.1 that answers as Azure AD, IMDS and the App Service
 * identity endpoint do): each flow, the cache and its renewal, each
 * failure's exact message, and that no secret or token ever reaches
 * stderr, the logs or a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "amlops/cred.h"
#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/rest.h"
#include "amlops/util.h"

#include "rest_harness.h"

#define TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define CLIENT "5e2a7c1d-0000-4000-8000-00000000c11e"
#define SECRET "Sup3r~Secr3t.Value_Q8x"
#define ASSERTION "eyJhbGciOiJSUzI1NiJ9.federated-assertion-body.sig"
#define IDHEADER "identity-header-5f0c2a"
#define SCOPE "https://management.azure.com/.default"

struct server {
	pid_t pid;
	int port;
	char url[64];
};

static char *tmp;
static char *errlog;
static struct server srv, short_srv;
static struct amlops_buf messages = AMLOPS_BUF_INIT;

static const char *const cred_env[] = {"AZURE_TENANT_ID", "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER", "AMLOPS_IMDS_ENDPOINT", "AZURE_ACCESS_TOKEN",
    "AZURE_AUTHORITY_HOST", "MSI_ENDPOINT", "MSI_SECRET"};

static void
clear_env(void)
{
	for (size_t i = 0; i < AMLOPS_ARRAY_SIZE(cred_env); i++)
		unsetenv(cred_env[i]);
}

static int
start_server(struct server *s, const char *tag, const char *expires)
{
	char *portfile = amlops_xasprintf("%s/%s.port", tmp, tag);
	char *logfile = amlops_xasprintf("%s/%s.log", tmp, tag);
	char *script = amlops_xasprintf(
	    "%s/tests/integration/token_server.py", harness_src());
	char *argv[] = {"/usr/bin/python3", script, "--port-file", portfile,
	    "--tenant", TENANT, "--client-id", CLIENT, "--secret", SECRET,
	    "--assertion", ASSERTION, "--identity-header", IDHEADER,
	    "--expires-in", (char *)expires, NULL};
	char *port;

	s->pid = harness_spawn(argv, logfile);
	port = harness_wait_file(portfile, "\n", 15000, s->pid);
	if (port)
		s->port = atoi(port);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
	free(port);
	free(portfile);
	free(logfile);
	free(script);
	return s->port > 0 ? 0 : -1;
}

static int
setup(void **state)
{
	(void)state;
	if (access("/usr/bin/python3", X_OK) != 0) {
		printf("SKIP: /usr/bin/python3 is missing\n");
		exit(0);
	}
	alarm(300); /* never hang */
	tmp = harness_tmpdir("cred");
	errlog = amlops_xasprintf("%s/stderr.log", tmp);
	if (start_server(&srv, "aad", "3600") < 0 ||
	    start_server(&short_srv, "aad-short", "120") < 0)
		return -1;
	amlops_buf_init(&messages, 0);
	/* Everything amlops writes, debug lines included, is kept. */
	harness_stderr_capture(errlog);
	amlops_log_init("test_rest_cred", 1, 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	harness_stderr_restore();
	harness_show_failures(errlog, "test_rest_cred: ");
	harness_kill(srv.pid);
	harness_kill(short_srv.pid);
	if (!getenv("KEEP"))
		harness_rmrf(tmp);
	free(tmp);
	free(errlog);
	amlops_buf_release(&messages);
	return 0;
}

static int
each_setup(void **state)
{
	(void)state;
	clear_env();
	amlops_err_clear();
	return 0;
}

/* Keeps every message a test saw, for the final grep. */
static const char *
msg(void)
{
	amlops_buf_printf(&messages, "%s\n", amlops_err_last());
	return amlops_err_last();
}

/* The JSON the token server recorded. */
static cJSON *
seen(const struct server *s)
{
	struct amlops_http *h;
	struct amlops_http_resp r = AMLOPS_HTTP_RESP_INIT;
	struct amlops_http_req req = {0};
	char *url = amlops_xasprintf("%s/_seen", s->url);
	cJSON *j;

	assert_int_equal(amlops_http_new(&h, NULL), 0);
	req.method = "GET";
	req.url = url;
	assert_int_equal(amlops_http_do(h, &req, &r), 0);
	assert_int_equal(r.status, 200);
	j = cJSON_Parse(r.body.ptr);
	assert_non_null(j);
	amlops_http_resp_release(&r);
	amlops_http_free(h);
	free(url);
	return j;
}

static const cJSON *
last_seen(const cJSON *j)
{
	const cJSON *a = cJSON_GetObjectItem(j, "seen");
	int n = cJSON_GetArraySize(a);

	assert_true(n > 0);
	return cJSON_GetArrayItem(a, n - 1);
}

static const char *
field(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static void
set_secret_env(const struct server *s, const char *secret)
{
	setenv("AZURE_TENANT_ID", TENANT, 1);
	setenv("AZURE_CLIENT_ID", CLIENT, 1);
	setenv("AZURE_CLIENT_SECRET", secret, 1);
	setenv("AZURE_AUTHORITY_HOST", s->url, 1);
}

static void
cred__client_secret_gets_and_caches_a_token(void **state)
{
	struct amlops_cred *c = NULL;
	char *tok = NULL, *tok2 = NULL;
	int64_t exp = 0;
	cJSON *j;
	const cJSON *e;

	(void)state;
	set_secret_env(&srv, SECRET);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(amlops_cred_kind(c), AMLOPS_CRED_SECRET);
	assert_int_equal(amlops_cred_token(&tok, &exp, c, SCOPE), 0);
	assert_true(strncmp(tok, "tok-secret-", 11) == 0);
	/* expires_in 3600 s from now, within a few seconds of slack. */
	assert_true(exp - amlops_wall_ms() > 3590 * 1000);
	assert_true(exp - amlops_wall_ms() <= 3600 * 1000);
	assert_int_equal(amlops_cred_token(&tok2, NULL, c, SCOPE), 0);
	assert_string_equal(tok, tok2);
	assert_int_equal(amlops_cred_fetches(c), 1);

	j = seen(&srv);
	e = last_seen(j);
	assert_string_equal(field(e, "what"), "token");
	assert_string_equal(field(e, "tenant"), TENANT);
	assert_string_equal(field(e, "flow"), "secret");
	assert_string_equal(field(e, "grant_type"), "client_credentials");
	assert_string_equal(field(e, "client_id"), CLIENT);
	assert_string_equal(field(e, "scope"), SCOPE);
	assert_string_equal(
	    field(e, "content_type"), "application/x-www-form-urlencoded");
	assert_int_equal(strlen(field(e, "request_id")), 36);
	cJSON_Delete(j);

	/* A second scope is a second token. */
	amlops_cred_token_free(tok2);
	assert_int_equal(amlops_cred_token(&tok2, NULL, c,
	                     "https://storage.azure.com/.default"),
	    0);
	assert_string_not_equal(tok, tok2);
	assert_int_equal(amlops_cred_fetches(c), 2);
	amlops_cred_token_free(tok);
	amlops_cred_token_free(tok2);
	amlops_cred_free(c);
}

static void
cred__token_near_expiry_is_renewed(void **state)
{
	struct amlops_cred *c = NULL;
	char *a = NULL, *b = NULL;

	(void)state;
	/* 120 s left is inside the 5 minute margin: renewed every time. */
	set_secret_env(&short_srv, SECRET);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(amlops_cred_token(&a, NULL, c, SCOPE), 0);
	assert_int_equal(amlops_cred_token(&b, NULL, c, SCOPE), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(amlops_cred_fetches(c), 2);
	amlops_cred_token_free(a);
	amlops_cred_token_free(b);
	amlops_cred_free(c);
}

static void
cred__wrong_secret_gives_aadsts7000215(void **state)
{
	struct amlops_cred *c = NULL;
	char *tok = NULL, *want;
	cJSON *j;

	(void)state;
	set_secret_env(&srv, "wrong-" SECRET);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(
	    amlops_cred_token(&tok, NULL, c, SCOPE), AMLOPS_EINVALID);
	assert_null(tok);
	j = seen(&srv);
	want = amlops_xasprintf("client secret: token request to '%s': 401 "
	                        "Unauthorized (request id %s): invalid_client: "
	                        "AADSTS7000215: Invalid client secret "
	                        "provided. Ensure the secret being sent in the "
	                        "request is the client secret value, not the "
	                        "client secret ID, for a secret added to app "
	                        "'%s'.",
	    srv.url, field(last_seen(j), "request_id"), CLIENT);
	assert_string_equal(msg(), want);
	free(want);
	cJSON_Delete(j);
	amlops_cred_free(c);
}

static void
cred__unknown_tenant_gives_aadsts90002(void **state)
{
	struct amlops_cred *c = NULL;
	char *tok = NULL, *want;
	cJSON *j;

	(void)state;
	set_secret_env(&srv, SECRET);
	setenv("AZURE_TENANT_ID", "not-a-tenant", 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(
	    amlops_cred_token(&tok, NULL, c, SCOPE), AMLOPS_EINVALID);
	j = seen(&srv);
	want = amlops_xasprintf("client secret: token request to '%s': 400 "
	                        "Bad Request (request id %s): invalid_request: "
	                        "AADSTS90002: Tenant 'not-a-tenant' not found. "
	                        "Check to make sure you have the correct "
	                        "tenant ID and are signing into the correct "
	                        "cloud.",
	    srv.url, field(last_seen(j), "request_id"));
	assert_string_equal(msg(), want);
	free(want);
	cJSON_Delete(j);
	amlops_cred_free(c);
}

static char *
write_assertion(const char *text)
{
	char *path = amlops_xasprintf("%s/federated-token", tmp);

	assert_int_equal(
	    amlops_file_write_atomic(path, text, strlen(text), 0600), 0);
	return path;
}

static void
cred__workload_identity_sends_the_assertion(void **state)
{
	struct amlops_cred *c = NULL;
	char *tok = NULL, *path = write_assertion(ASSERTION "\n");
	cJSON *j;
	const cJSON *e;

	(void)state;
	setenv("AZURE_TENANT_ID", TENANT, 1);
	setenv("AZURE_CLIENT_ID", CLIENT, 1);
	setenv("AZURE_FEDERATED_TOKEN_FILE", path, 1);
	setenv("AZURE_AUTHORITY_HOST", srv.url, 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(amlops_cred_kind(c), AMLOPS_CRED_WORKLOAD);
	assert_int_equal(amlops_cred_token(&tok, NULL, c, SCOPE), 0);
	assert_true(strncmp(tok, "tok-assertion-", 14) == 0);
	j = seen(&srv);
	e = last_seen(j);
	assert_string_equal(field(e, "flow"), "assertion");
	assert_string_equal(field(e, "assertion_type"),
	    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
	cJSON_Delete(j);
	amlops_cred_token_free(tok);
	amlops_cred_free(c);
	free(path);
}

static void
cred__workload_identity_failures(void **state)
{
	struct amlops_cred *c = NULL;
	char *tok = NULL, *path = write_assertion("eyJ.stale.assertion");
	char *want;
	cJSON *j;

	(void)state;
	setenv("AZURE_TENANT_ID", TENANT, 1);
	setenv("AZURE_CLIENT_ID", CLIENT, 1);
	setenv("AZURE_FEDERATED_TOKEN_FILE", path, 1);
	setenv("AZURE_AUTHORITY_HOST", srv.url, 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(
	    amlops_cred_token(&tok, NULL, c, SCOPE), AMLOPS_EINVALID);
	j = seen(&srv);
	want = amlops_xasprintf("workload identity: token request to '%s': "
	                        "400 Bad Request (request id %s): "
	                        "invalid_client: AADSTS700213: No matching "
	                        "federated identity record found for presented "
	                        "assertion subject.",
	    srv.url, field(last_seen(j), "request_id"));
	assert_string_equal(msg(), want);
	free(want);
	cJSON_Delete(j);

	/* The file is read for every request: a missing one says so. */
	unlink(path);
	assert_int_equal(
	    amlops_cred_token(&tok, NULL, c, SCOPE), AMLOPS_ENOTFOUND);
	want = amlops_xasprintf("workload identity: "
	                        "AZURE_FEDERATED_TOKEN_FILE: cannot open '%s': "
	                        "No such file or directory",
	    path);
	assert_string_equal(msg(), want);
	free(want);
	amlops_cred_free(c);
	free(path);
}

static void
cred__identity_endpoint_with_header(void **state)
{
	struct amlops_cred *c = NULL;
	char *tok = NULL, *ep = amlops_xasprintf("%s/msi/token", srv.url);
	char *want;
	cJSON *j;
	const cJSON *e;

	(void)state;
	setenv("IDENTITY_ENDPOINT", ep, 1);
	setenv("IDENTITY_HEADER", IDHEADER, 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(amlops_cred_kind(c), AMLOPS_CRED_MANAGED);
	assert_int_equal(amlops_cred_token(&tok, NULL, c, SCOPE), 0);
	assert_true(strncmp(tok, "tok-msi-", 8) == 0);
	j = seen(&srv);
	e = last_seen(j);
	assert_string_equal(field(e, "what"), "identity_endpoint");
	assert_string_equal(
	    field(e, "resource"), "https://management.azure.com");
	assert_string_equal(field(e, "api_version"), "2019-08-01");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(e, "header_ok")));
	cJSON_Delete(j);
	amlops_cred_token_free(tok);
	amlops_cred_free(c);

	setenv("IDENTITY_HEADER", "wrong-header-value", 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(
	    amlops_cred_token(&tok, NULL, c, SCOPE), AMLOPS_EINVALID);
	j = seen(&srv);
	want = amlops_xasprintf("managed identity: token request to "
	                        "'IDENTITY_ENDPOINT': 401 Unauthorized "
	                        "(request id %s): Unauthorized request, please "
	                        "check the X-IDENTITY-HEADER",
	    field(last_seen(j), "request_id"));
	assert_string_equal(msg(), want);
	free(want);
	cJSON_Delete(j);
	amlops_cred_free(c);
	free(ep);
}

static void
cred__imds_sends_metadata_header(void **state)
{
	struct amlops_cred *c = NULL;
	char *tok = NULL;
	char *ep =
	    amlops_xasprintf("%s/metadata/identity/oauth2/token", srv.url);
	cJSON *j;
	const cJSON *e;

	(void)state;
	setenv("AMLOPS_IMDS_ENDPOINT", ep, 1);
	setenv("AZURE_CLIENT_ID", CLIENT, 1); /* a user-assigned identity */
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(amlops_cred_kind(c), AMLOPS_CRED_MANAGED);
	assert_int_equal(amlops_cred_token(&tok, NULL, c, SCOPE), 0);
	assert_true(strncmp(tok, "tok-imds-", 9) == 0);
	j = seen(&srv);
	e = last_seen(j);
	assert_string_equal(field(e, "what"), "imds");
	assert_string_equal(field(e, "metadata"), "true");
	assert_string_equal(field(e, "client_id"), CLIENT);
	assert_string_equal(field(e, "api_version"), "2018-02-01");
	cJSON_Delete(j);
	amlops_cred_token_free(tok);
	amlops_cred_free(c);
	free(ep);
}

static void
cred__access_token_from_env(void **state)
{
	struct amlops_cred *c = NULL;
	char *tok = NULL;

	(void)state;
	setenv("AZURE_ACCESS_TOKEN", "ci-token-7f3a9b", 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(amlops_cred_kind(c), AMLOPS_CRED_ACCESS_TOKEN);
	assert_int_equal(amlops_cred_token(&tok, NULL, c, SCOPE), 0);
	assert_string_equal(tok, "ci-token-7f3a9b");
	assert_int_equal(amlops_cred_fetches(c), 0);
	amlops_cred_token_free(tok);
	amlops_cred_free(c);
}

static void
cred__order_follows_default_azure_credential(void **state)
{
	struct amlops_cred *c = NULL;
	char *path = write_assertion(ASSERTION);

	(void)state;
	/* All set: the client secret wins, then the federated token... */
	set_secret_env(&srv, SECRET);
	setenv("AZURE_FEDERATED_TOKEN_FILE", path, 1);
	setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi", 1);
	setenv("IDENTITY_HEADER", IDHEADER, 1);
	setenv("AZURE_ACCESS_TOKEN", "ci-token", 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(amlops_cred_kind(c), AMLOPS_CRED_SECRET);
	amlops_cred_free(c);
	unsetenv("AZURE_CLIENT_SECRET");
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(amlops_cred_kind(c), AMLOPS_CRED_WORKLOAD);
	amlops_cred_free(c);
	unsetenv("AZURE_FEDERATED_TOKEN_FILE");
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(amlops_cred_kind(c), AMLOPS_CRED_MANAGED);
	amlops_cred_free(c);
	unsetenv("IDENTITY_ENDPOINT");
	unsetenv("IDENTITY_HEADER");
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(amlops_cred_kind(c), AMLOPS_CRED_ACCESS_TOKEN);
	amlops_cred_free(c);
	free(path);
}

static void
cred__configuration_errors(void **state)
{
	struct amlops_cred *c = NULL;

	(void)state;
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), AMLOPS_ENOTFOUND);
	assert_null(c);
	assert_string_equal(msg(),
	    "no Azure credentials: set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
	    "AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE), run with a "
	    "managed identity (IDENTITY_ENDPOINT), or set AZURE_ACCESS_TOKEN");

	setenv("AZURE_CLIENT_SECRET", SECRET, 1);
	setenv("AZURE_CLIENT_ID", CLIENT, 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), AMLOPS_EINVALID);
	assert_string_equal(
	    msg(), "AZURE_CLIENT_SECRET is set but AZURE_TENANT_ID is not");

	clear_env();
	setenv("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent", 1);
	setenv("AZURE_TENANT_ID", TENANT, 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), AMLOPS_EINVALID);
	assert_string_equal(msg(),
	    "AZURE_FEDERATED_TOKEN_FILE is set but AZURE_CLIENT_ID is not");

	clear_env();
	setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi", 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), AMLOPS_EINVALID);
	assert_string_equal(
	    msg(), "IDENTITY_ENDPOINT is set but IDENTITY_HEADER is not");

	/* Tokens never travel over plain http off this machine. */
	clear_env();
	set_secret_env(&srv, SECRET);
	setenv("AZURE_AUTHORITY_HOST", "http://login.example.com", 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), AMLOPS_EINVALID);
	assert_string_equal(msg(),
	    "AZURE_AUTHORITY_HOST: 'http://login.example.com': plain http is "
	    "accepted only for loopback addresses; use https");
	assert_null(c);
}

static void
cred__token_server_down_is_retried_then_reported(void **state)
{
	struct amlops_cred *c = NULL;
	struct amlops_http *h = NULL;
	struct amlops_retry fast = {.max_attempts = 3, .base_ms = 10};
	char *tok = NULL;
	const char *m;

	(void)state;
	set_secret_env(&srv, SECRET);
	/* Port 1 on loopback: nothing listens there. */
	setenv("AZURE_AUTHORITY_HOST", "http://127.0.0.1:1", 1);
	assert_int_equal(amlops_http_new(&h, &fast), 0);
	assert_int_equal(amlops_cred_from_env(&c, h, 0), 0);
	assert_int_equal(
	    amlops_cred_token(&tok, NULL, c, SCOPE), AMLOPS_EBACKEND);
	m = msg();
	assert_true(strncmp(m,
	                "client secret: token request to "
	                "'http://127.0.0.1:1': Failed to connect to 127.0.0.1 "
	                "port 1",
	                strlen("client secret: token request to "
	                       "'http://127.0.0.1:1': Failed to connect to "
	                       "127.0.0.1 port 1")) == 0);
	assert_non_null(strstr(m, " after 3 attempts (request id "));
	amlops_cred_free(c);
	amlops_http_free(h);
}

static void
cred__arm_client_sends_the_token_only_to_its_own_service(void **state)
{
	struct amlops_cred *c = NULL;
	struct amlops_rest *r = NULL;
	struct amlops_rest_cfg rc = {0};
	struct amlops_rest_resp resp = AMLOPS_REST_RESP_INIT;
	char *other;

	(void)state;
	set_secret_env(&srv, SECRET);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	rc.base_url = srv.url;
	rc.cred = c;
	rc.scope = SCOPE;
	assert_int_equal(amlops_rest_new(&r, &rc), 0);
	assert_int_equal(
	    amlops_rest_call(r, "GET", "/_whoami", NULL, &resp), 0);
	assert_true(
	    cJSON_IsTrue(cJSON_GetObjectItem(resp.json, "issued_here")));
	amlops_rest_resp_release(&resp);
	/* From the cache the second time. */
	assert_int_equal(
	    amlops_rest_call(r, "GET", "/_whoami", NULL, &resp), 0);
	assert_true(
	    cJSON_IsTrue(cJSON_GetObjectItem(resp.json, "issued_here")));
	assert_int_equal(amlops_cred_fetches(c), 1);
	amlops_rest_resp_release(&resp);
	/* A URL on another service (a Location, say) gets no token. */
	other = amlops_xasprintf("%s/_whoami", short_srv.url);
	assert_int_equal(amlops_rest_call(r, "GET", other, NULL, &resp), 0);
	assert_false(
	    cJSON_IsTrue(cJSON_GetObjectItem(resp.json, "authorization")));
	amlops_rest_resp_release(&resp);
	free(other);
	amlops_rest_free(r);
	amlops_cred_free(c);
}

/* Last: everything printed and every message, grepped for secrets. */
static void
cred__no_secret_or_token_in_any_output(void **state)
{
	char *out;
	cJSON *j;
	const cJSON *t;

	(void)state;
	fflush(stderr);
	out = harness_read(errlog);
	assert_non_null(out);
	/* The debug log was on: the flows did write lines. */
	assert_non_null(strstr(out, "credential="));
	j = seen(&srv);
	cJSON_ArrayForEach(t, cJSON_GetObjectItem(j, "tokens"))
	{
		assert_null(strstr(out, t->valuestring));
		assert_null(strstr(amlops_buf_cstr(&messages), t->valuestring));
	}
	cJSON_Delete(j);
	j = seen(&short_srv);
	cJSON_ArrayForEach(t, cJSON_GetObjectItem(j, "tokens"))
	    assert_null(strstr(out, t->valuestring));
	cJSON_Delete(j);
	const char *secrets[] = {SECRET, ASSERTION, IDHEADER,
	    "eyJ.stale.assertion", "ci-token-7f3a9b"};
	for (size_t i = 0; i < AMLOPS_ARRAY_SIZE(secrets); i++) {
		assert_null(strstr(out, secrets[i]));
		assert_null(strstr(amlops_buf_cstr(&messages), secrets[i]));
	}
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup(f, each_setup)
	    T(cred__client_secret_gets_and_caches_a_token),
	    T(cred__token_near_expiry_is_renewed),
	    T(cred__wrong_secret_gives_aadsts7000215),
	    T(cred__unknown_tenant_gives_aadsts90002),
	    T(cred__workload_identity_sends_the_assertion),
	    T(cred__workload_identity_failures),
	    T(cred__identity_endpoint_with_header),
	    T(cred__imds_sends_metadata_header),
	    T(cred__access_token_from_env),
	    T(cred__order_follows_default_azure_credential),
	    T(cred__configuration_errors),
	    T(cred__token_server_down_is_retried_then_reported),
	    T(cred__arm_client_sends_the_token_only_to_its_own_service),
	    T(cred__no_secret_or_token_in_any_output),
#undef T
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
