/*
 * Azure AD credentials (DefaultAzureCredential's order) with a per-scope
 * token cache. See amlops/cred.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "amlops/cred.h"
#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/rest.h"
#include "amlops/util.h"

#define CRED_RENEW_MARGIN_MS (5 * 60 * 1000)
#define CRED_MAX_RESPONSE (1u << 20)
#define CRED_MAX_ASSERTION (64u << 10)
#define IMDS_DEFAULT "http://169.254.169.254/metadata/identity/oauth2/token"
#define AUTHORITY_DEFAULT "https://login.microsoftonline.com"

struct cached_token {
	char *scope;
	char *token;
	int64_t expires_wall_ms;
};

struct amlops_cred {
	enum amlops_cred_kind kind;
	char *tenant;
	char *client_id;
	char *secret;       /* client secret */
	char *token_file;   /* workload identity */
	char *authority;    /* https://login.microsoftonline.com */
	char *mi_endpoint;  /* IDENTITY_ENDPOINT or IMDS */
	char *mi_header;    /* IDENTITY_HEADER, or NULL for IMDS */
	char *static_token; /* AZURE_ACCESS_TOKEN */
	struct amlops_http *http;
	int own_http;
	struct cached_token *cache;
	size_t ncache;
	unsigned fetches;
};

/* Seconds from a token answer as milliseconds, within reason. */
static int64_t
secs_to_ms(double secs)
{
	return amlops_clamp_i64(secs, 0, 10000000000) * 1000;
}

static void
wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void
amlops_cred_token_free(char *token)
{
	wipe_free(token);
}

void
amlops_cred_free(struct amlops_cred *c)
{
	if (c == NULL)
		return;
	free(c->tenant);
	free(c->client_id);
	wipe_free(c->secret);
	free(c->token_file);
	free(c->authority);
	free(c->mi_endpoint);
	wipe_free(c->mi_header);
	wipe_free(c->static_token);
	for (size_t i = 0; i < c->ncache; i++) {
		free(c->cache[i].scope);
		wipe_free(c->cache[i].token);
	}
	free(c->cache);
	if (c->own_http)
		amlops_http_free(c->http);
	free(c);
}

enum amlops_cred_kind
amlops_cred_kind(const struct amlops_cred *c)
{
	return c->kind;
}

const char *
amlops_cred_kind_name(enum amlops_cred_kind k)
{
	switch (k) {
	case AMLOPS_CRED_SECRET:
		return "client secret";
	case AMLOPS_CRED_WORKLOAD:
		return "workload identity";
	case AMLOPS_CRED_MANAGED:
		return "managed identity";
	case AMLOPS_CRED_ACCESS_TOKEN:
		return "access token";
	}
	return "?";
}

unsigned
amlops_cred_fetches(const struct amlops_cred *c)
{
	return c->fetches;
}

char *
amlops_cred_arm_scope(const char *arm_url)
{
	size_t n = strlen(arm_url);

	while (n > 0 && arm_url[n - 1] == '/')
		n--;
	return amlops_xasprintf("%.*s/.default", (int)n, arm_url);
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static int
use_http(struct amlops_cred *c, struct amlops_http *http)
{
	int error;

	if (http) {
		c->http = http;
		return 0;
	}
	if ((error = amlops_http_new(&c->http, NULL)) < 0)
		return error;
	c->own_http = 1;
	return 0;
}

int
amlops_cred_static(struct amlops_cred **out, const char *token)
{
	struct amlops_cred *c;

	if (token == NULL || *token == '\0')
		return amlops_err_set(AMLOPS_EINVALID, "empty access token");
	c = amlops_xcalloc(1, sizeof(*c));
	c->kind = AMLOPS_CRED_ACCESS_TOKEN;
	c->static_token = amlops_xstrdup(token);
	*out = c;
	return 0;
}

static int
authority_from_env(struct amlops_cred *c)
{
	const char *a = env("AZURE_AUTHORITY_HOST");
	size_t n;
	int error;

	if (a == NULL)
		a = AUTHORITY_DEFAULT;
	if ((error = amlops_http_url_ok(a, 0)) < 0)
		return amlops_err_prefix(error, "AZURE_AUTHORITY_HOST");
	c->authority = amlops_xstrdup(a);
	n = strlen(c->authority);
	while (n > 0 && c->authority[n - 1] == '/')
		c->authority[--n] = '\0';
	return 0;
}

int
amlops_cred_from_env(
    struct amlops_cred **out, struct amlops_http *http, int try_imds)
{
	struct amlops_cred *c = amlops_xcalloc(1, sizeof(*c));
	const char *tenant = env("AZURE_TENANT_ID");
	const char *client = env("AZURE_CLIENT_ID");
	const char *secret = env("AZURE_CLIENT_SECRET");
	const char *tfile = env("AZURE_FEDERATED_TOKEN_FILE");
	const char *ide = env("IDENTITY_ENDPOINT");
	const char *idh = env("IDENTITY_HEADER");
	const char *imds = env("AMLOPS_IMDS_ENDPOINT");
	const char *tok = env("AZURE_ACCESS_TOKEN");
	int error = 0;

	if (secret) {
		if (!tenant || !client) {
			error = amlops_err_set(AMLOPS_EINVALID,
			    "AZURE_CLIENT_SECRET is set but %s is not",
			    !tenant ? "AZURE_TENANT_ID" : "AZURE_CLIENT_ID");
			goto done;
		}
		c->kind = AMLOPS_CRED_SECRET;
		c->secret = amlops_xstrdup(secret);
	} else if (tfile) {
		if (!tenant || !client) {
			error = amlops_err_set(AMLOPS_EINVALID,
			    "AZURE_FEDERATED_TOKEN_FILE is set but %s is not",
			    !tenant ? "AZURE_TENANT_ID" : "AZURE_CLIENT_ID");
			goto done;
		}
		c->kind = AMLOPS_CRED_WORKLOAD;
		c->token_file = amlops_xstrdup(tfile);
	} else if (ide || imds || try_imds) {
		c->kind = AMLOPS_CRED_MANAGED;
		if (ide) {
			if (!idh) {
				error = amlops_err_set(AMLOPS_EINVALID,
				    "IDENTITY_ENDPOINT is set but "
				    "IDENTITY_HEADER is not");
				goto done;
			}
			c->mi_endpoint = amlops_xstrdup(ide);
			c->mi_header = amlops_xstrdup(idh);
		} else
			c->mi_endpoint =
			    amlops_xstrdup(imds ? imds : IMDS_DEFAULT);
		if ((error = amlops_http_url_ok(
		         c->mi_endpoint, AMLOPS_HTTP_IMDS)) < 0) {
			amlops_err_prefix(error, "%s",
			    ide ? "IDENTITY_ENDPOINT" : "AMLOPS_IMDS_ENDPOINT");
			goto done;
		}
	} else if (tok) {
		c->kind = AMLOPS_CRED_ACCESS_TOKEN;
		c->static_token = amlops_xstrdup(tok);
	} else {
		error = amlops_err_set(AMLOPS_ENOTFOUND,
		    "no Azure credentials: set AZURE_TENANT_ID, "
		    "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or "
		    "AZURE_FEDERATED_TOKEN_FILE), run with a managed "
		    "identity (IDENTITY_ENDPOINT), or set AZURE_ACCESS_TOKEN");
		goto done;
	}
	if (c->kind == AMLOPS_CRED_SECRET || c->kind == AMLOPS_CRED_WORKLOAD) {
		c->tenant = amlops_xstrdup(tenant);
		c->client_id = amlops_xstrdup(client);
		if ((error = authority_from_env(c)) < 0)
			goto done;
	} else if (c->kind == AMLOPS_CRED_MANAGED)
		c->client_id = amlops_xstrdup(client);
	if (c->kind != AMLOPS_CRED_ACCESS_TOKEN &&
	    (error = use_http(c, http)) < 0)
		goto done;
	log_debug(
	    "%s: credential=\"%s\"", __func__, amlops_cred_kind_name(c->kind));
	*out = c;
	c = NULL;
done:
	amlops_cred_free(c);
	return error;
}

/* application/x-www-form-urlencoded value. */
static void
form_add(struct amlops_buf *b, const char *key, const char *val)
{
	static const char hex[] = "0123456789ABCDEF";

	if (b->len)
		amlops_buf_putc(b, '&');
	amlops_buf_printf(b, "%s=", key);
	for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~')
			amlops_buf_putc(b, (char)*p);
		else {
			amlops_buf_putc(b, '%');
			amlops_buf_putc(b, hex[*p >> 4]);
			amlops_buf_putc(b, hex[*p & 15]);
		}
	}
}

/* Replaces each occurrence of `secret` in `s` with "***". */
static void
redact(char *s, const char *secret)
{
	size_t n;
	char *p;

	if (s == NULL || secret == NULL || (n = strlen(secret)) < 4)
		return;
	while ((p = strstr(s, secret)) != NULL) {
		memcpy(p, "***", 3);
		memmove(p + 3, p + n, strlen(p + n) + 1);
	}
}

static char *
resource_of(const char *scope)
{
	size_t n = strlen(scope);
	const char *sfx = "/.default";

	if (n > strlen(sfx) && strcmp(scope + n - strlen(sfx), sfx) == 0)
		n -= strlen(sfx);
	return amlops_xstrndup(scope, n);
}

/* The error a token service sent, as one line without secrets. */
static char *
token_error(const struct amlops_http_resp *hr, const struct amlops_cred *c)
{
	cJSON *j = cJSON_ParseWithLength(hr->body.ptr, hr->body.len);
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *d =
	    cJSON_GetObjectItemCaseSensitive(j, "error_description");
	char *s;

	if (cJSON_IsString(e) && cJSON_IsString(d))
		s = amlops_xasprintf("%s: %s", e->valuestring, d->valuestring);
	else if (cJSON_IsString(e))
		s = amlops_xstrdup(e->valuestring);
	else
		s = amlops_rest_error_text(hr->body.ptr, hr->body.len);
	cJSON_Delete(j);
	/* AAD descriptions run over lines with trace ids: keep line one. */
	s[strcspn(s, "\r\n")] = '\0';
	redact(s, c->secret);
	redact(s, c->mi_header);
	return s;
}

static int
fetch(struct amlops_cred *c, const char *scope, char **tok, int64_t *exp)
{
	struct amlops_http_resp hr = AMLOPS_HTTP_RESP_INIT;
	struct amlops_http_req req = {0};
	struct amlops_buf form = AMLOPS_BUF_INIT, assertion = AMLOPS_BUF_INIT;
	const char *hdrs[4] = {NULL};
	char *url = NULL, *hdr = NULL, *resource = NULL, *what = NULL;
	const char *kind = amlops_cred_kind_name(c->kind);
	cJSON *j = NULL;
	const cJSON *at, *ei, *eo;
	int64_t now = amlops_wall_ms();
	int error;

	req.max_response = CRED_MAX_RESPONSE;
	if (c->kind == AMLOPS_CRED_SECRET || c->kind == AMLOPS_CRED_WORKLOAD) {
		url = amlops_xasprintf(
		    "%s/%s/oauth2/v2.0/token", c->authority, c->tenant);
		form_add(&form, "grant_type", "client_credentials");
		form_add(&form, "client_id", c->client_id);
		form_add(&form, "scope", scope);
		if (c->kind == AMLOPS_CRED_SECRET)
			form_add(&form, "client_secret", c->secret);
		else {
			/* The file rotates: read it for every request. */
			if ((error = amlops_file_read(&assertion, c->token_file,
			         CRED_MAX_ASSERTION)) < 0) {
				amlops_err_prefix(error,
				    "workload identity: "
				    "AZURE_FEDERATED_TOKEN_FILE");
				goto done;
			}
			while (assertion.len &&
			       (assertion.ptr[assertion.len - 1] == '\n' ||
			           assertion.ptr[assertion.len - 1] == '\r'))
				assertion.ptr[--assertion.len] = '\0';
			if (assertion.len == 0) {
				error = amlops_err_set(AMLOPS_EINVALID,
				    "workload identity: '%s' is empty",
				    c->token_file);
				goto done;
			}
			form_add(&form, "client_assertion_type",
			    "urn:ietf:params:oauth:client-assertion-type:"
			    "jwt-bearer");
			form_add(&form, "client_assertion", assertion.ptr);
		}
		hdrs[0] = "Content-Type: application/x-www-form-urlencoded";
		hdrs[1] = "Accept: application/json";
		req.method = "POST";
		req.body = form.ptr;
		req.body_len = form.len;
		what = amlops_xasprintf(
		    "%s: token request to '%s'", kind, c->authority);
	} else {
		struct amlops_buf q = AMLOPS_BUF_INIT;

		resource = resource_of(scope);
		if (c->mi_header) {
			form_add(&q, "api-version", "2019-08-01");
			hdr = amlops_xasprintf(
			    "X-IDENTITY-HEADER: %s", c->mi_header);
			hdrs[0] = hdr;
		} else {
			form_add(&q, "api-version", "2018-02-01");
			hdrs[0] = "Metadata: true";
		}
		form_add(&q, "resource", resource);
		if (c->client_id)
			form_add(&q, "client_id", c->client_id);
		url = amlops_xasprintf("%s%s%s", c->mi_endpoint,
		    strchr(c->mi_endpoint, '?') ? "&" : "?",
		    amlops_buf_cstr(&q));
		amlops_buf_release(&q);
		req.method = "GET";
		req.flags = AMLOPS_HTTP_IMDS;
		what = amlops_xasprintf("%s: token request to '%s'", kind,
		    c->mi_header ? "IDENTITY_ENDPOINT" : "IMDS");
	}
	req.url = url;
	req.headers = hdrs;
	req.what = what;
	c->fetches++;
	if ((error = amlops_http_do(c->http, &req, &hr)) < 0)
		goto done;
	if (hr.status != 200) {
		char *e = token_error(&hr, c);
		const char *reason = amlops_http_reason(hr.status);

		error = amlops_err_set(hr.status == 400 || hr.status == 401
		                           ? AMLOPS_EINVALID
		                           : AMLOPS_EBACKEND,
		    "%s: %ld%s%s (request id %s): %s", what, hr.status,
		    *reason ? " " : "", reason, hr.request_id, e);
		free(e);
		goto done;
	}
	j = cJSON_ParseWithLength(hr.body.ptr, hr.body.len);
	at = cJSON_GetObjectItemCaseSensitive(j, "access_token");
	if (!cJSON_IsString(at) || *at->valuestring == '\0') {
		error = amlops_err_set(AMLOPS_EBACKEND,
		    "%s: the answer has no access_token (request id %s)", what,
		    hr.request_id);
		goto done;
	}
	ei = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
	eo = cJSON_GetObjectItemCaseSensitive(j, "expires_on");
	/* Both come as numbers or as strings of digits. */
	if (cJSON_IsNumber(ei))
		*exp = now + secs_to_ms(ei->valuedouble);
	else if (cJSON_IsString(ei))
		*exp = now + secs_to_ms(strtod(ei->valuestring, NULL));
	else if (cJSON_IsNumber(eo))
		*exp = secs_to_ms(eo->valuedouble);
	else if (cJSON_IsString(eo))
		*exp = secs_to_ms(strtod(eo->valuestring, NULL));
	else
		*exp = now + 60 * 60 * 1000;
	*tok = amlops_xstrdup(at->valuestring);
	log_debug("%s: credential=\"%s\" scope=%s expires_in_s=%lld "
	          "request_id=%s",
	    __func__, kind, scope, (long long)((*exp - now) / 1000),
	    hr.request_id);
done:
	if (j) {
		/* The token's text sits in the parsed tree and the body. */
		at = cJSON_GetObjectItemCaseSensitive(j, "access_token");
		if (cJSON_IsString(at))
			explicit_bzero(
			    at->valuestring, strlen(at->valuestring));
		cJSON_Delete(j);
	}
	if (hr.body.ptr)
		explicit_bzero(hr.body.ptr, hr.body.len);
	amlops_http_resp_release(&hr);
	if (form.ptr)
		explicit_bzero(form.ptr, form.len);
	amlops_buf_release(&form);
	if (assertion.ptr)
		explicit_bzero(assertion.ptr, assertion.len);
	amlops_buf_release(&assertion);
	wipe_free(hdr);
	free(url);
	free(resource);
	free(what);
	return error;
}

int
amlops_cred_token(char **out, int64_t *expires_wall_ms, struct amlops_cred *c,
    const char *scope)
{
	struct cached_token *ct = NULL;
	char *tok = NULL;
	int64_t exp = 0;
	int error;

	if (c->kind == AMLOPS_CRED_ACCESS_TOKEN) {
		*out = amlops_xstrdup(c->static_token);
		if (expires_wall_ms)
			*expires_wall_ms = 0;
		return 0;
	}
	if (scope == NULL || *scope == '\0')
		return amlops_err_set(AMLOPS_EINVALID, "%s: no token scope",
		    amlops_cred_kind_name(c->kind));
	for (size_t i = 0; i < c->ncache; i++)
		if (strcmp(c->cache[i].scope, scope) == 0)
			ct = &c->cache[i];
	if (ct && ct->expires_wall_ms - amlops_wall_ms() > CRED_RENEW_MARGIN_MS)
		goto hit;
	if ((error = fetch(c, scope, &tok, &exp)) < 0)
		return error;
	if (ct == NULL) {
		c->cache = amlops_xrealloc(
		    c->cache, (c->ncache + 1) * sizeof(*c->cache));
		ct = &c->cache[c->ncache++];
		ct->scope = amlops_xstrdup(scope);
	} else
		wipe_free(ct->token);
	ct->token = tok;
	ct->expires_wall_ms = exp;
hit:
	*out = amlops_xstrdup(ct->token);
	if (expires_wall_ms)
		*expires_wall_ms = ct->expires_wall_ms;
	return 0;
}
