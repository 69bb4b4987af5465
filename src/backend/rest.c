/*
 * HTTP with retries, and the ARM JSON client with long-running
 * operations. See amlops/rest.h.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "amlops/cred.h"
#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/rest.h"
#include "amlops/util.h"

#define HTTP_DEFAULT_MAX_RESPONSE (32u << 20)
#define HTTP_CONNECT_TIMEOUT_MS 10000L
#define HTTP_REQUEST_TIMEOUT_MS 60000L
#define REQID_HDR "x-ms-client-request-id:"

struct amlops_http {
	CURL *curl;
	struct amlops_retry policy;
	char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static uint64_t retries; /* __atomic: amlops_http_retries() */

static void
curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void
policy_defaults(struct amlops_retry *p)
{
	if (p->max_attempts == 0)
		p->max_attempts = 6;
	if (p->max_total_ms == 0)
		p->max_total_ms = 120000;
	if (p->base_ms == 0)
		p->base_ms = 500;
	if (p->max_delay_ms == 0)
		p->max_delay_ms = 30000;
}

int
amlops_http_new(struct amlops_http **out, const struct amlops_retry *policy)
{
	struct amlops_http *h;

	pthread_once(&curl_once, curl_init_once);
	h = amlops_xcalloc(1, sizeof(*h));
	if (policy)
		h->policy = *policy;
	policy_defaults(&h->policy);
	if ((h->curl = curl_easy_init()) == NULL) {
		free(h);
		return amlops_err_set(AMLOPS_ERROR, "cannot start libcurl");
	}
	*out = h;
	return 0;
}

void
amlops_http_free(struct amlops_http *h)
{
	if (h == NULL)
		return;
	curl_easy_cleanup(h->curl);
	free(h);
}

void
amlops_http_resp_release(struct amlops_http_resp *resp)
{
	amlops_buf_release(&resp->body);
	free(resp->location);
	free(resp->async_op);
	free(resp->etag);
	free(resp->content_md5);
	free(resp->content_type);
	memset(resp, 0, sizeof(*resp));
	resp->content_length = -1;
	resp->retry_after_ms = -1;
}

const char *
amlops_http_reason(long status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Entity";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "";
	}
}

/* Host part of a URL, lower-cased, brackets kept for IPv6. */
static int
url_host(char **scheme, char **host, const char *url)
{
	CURLU *u = curl_url();
	char *s = NULL, *h = NULL;
	int error = 0;

	if (u == NULL)
		return amlops_err_set(AMLOPS_ERROR, "cannot parse URLs");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &s, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK) {
		error =
		    amlops_err_set(AMLOPS_EINVALID, "'%s' is not a URL", url);
		goto done;
	}
	*scheme = amlops_xstrdup(s);
	*host = amlops_xstrdup(h);
	for (char *p = *host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
done:
	curl_free(s);
	curl_free(h);
	curl_url_cleanup(u);
	return error;
}

static int
host_is_loopback(const char *h)
{
	if (strcmp(h, "localhost") == 0 || strcmp(h, "[::1]") == 0)
		return 1;
	if (strncmp(h, "127.", 4) == 0) {
		unsigned a, b, c, d;
		char extra;

		return sscanf(h, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) ==
		           4 &&
		       a == 127 && b < 256 && c < 256 && d < 256;
	}
	return 0;
}

int
amlops_http_url_ok(const char *url, unsigned flags)
{
	char *scheme = NULL, *host = NULL;
	int error;

	if ((error = url_host(&scheme, &host, url)) < 0)
		return error;
	if (strcmp(scheme, "https") == 0)
		error = 0;
	else if (strcmp(scheme, "http") != 0)
		error = amlops_err_set(AMLOPS_EINVALID,
		    "'%s': only http and https URLs are accepted", host);
	else if (host_is_loopback(host))
		error = 0;
	else if ((flags & AMLOPS_HTTP_IMDS) &&
	         strcmp(host, "169.254.169.254") == 0)
		error = 0;
	else
		error = amlops_err_set(AMLOPS_EINVALID,
		    "'http://%s': plain http is accepted only for loopback "
		    "addresses; use https",
		    host);
	free(scheme);
	free(host);
	return error;
}

int64_t
amlops_http_parse_retry_after(const char *v, int64_t now_wall_ms)
{
	char *end;
	long long secs;
	time_t t;

	while (*v == ' ' || *v == '\t')
		v++;
	if (*v == '\0')
		return -1;
	if (isdigit((unsigned char)*v)) {
		errno = 0;
		secs = strtoll(v, &end, 10);
		while (
		    *end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (errno || *end != '\0' || secs < 0 || secs > 86400)
			return -1;
		return secs * 1000;
	}
	if ((t = curl_getdate(v, NULL)) < 0)
		return -1;
	if ((int64_t)t * 1000 <= now_wall_ms)
		return 0;
	return (int64_t)t * 1000 - now_wall_ms;
}

uint64_t
amlops_http_retries(void)
{
	return __atomic_load_n(&retries, __ATOMIC_RELAXED);
}

int64_t
amlops_http_backoff_ms(const struct amlops_retry *policy, unsigned attempt)
{
	struct amlops_retry p = *policy;
	int64_t d;
	uint32_t r = 0;

	policy_defaults(&p);
	d = p.base_ms;
	for (unsigned i = 1; i < attempt && d < p.max_delay_ms; i++)
		d *= 2;
	if (d > p.max_delay_ms)
		d = p.max_delay_ms;
	/* Full jitter in [d/2, d]: spreads clients that failed together. */
	if (amlops_random(&r, sizeof(r)) < 0)
		r = 0;
	return d / 2 + (int64_t)(r % (uint32_t)(d / 2 + 1));
}

struct header_ctx {
	struct amlops_http_resp *resp;
};

static char *
header_value(const char *v, size_t n)
{
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' ||
	                    v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	return amlops_xstrndup(v, n);
}

static void
set_str(char **dst, char *v)
{
	free(*dst);
	*dst = v;
}

static size_t
on_header(char *data, size_t size, size_t nitems, void *arg)
{
	struct amlops_http_resp *resp = arg;
	size_t n = size * nitems;
	const char *colon = memchr(data, ':', n);
	size_t klen;
	const char *v;
	char *val;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new response (after a 100 Continue, a redirect): reset. */
		set_str(&resp->location, NULL);
		set_str(&resp->async_op, NULL);
		resp->retry_after_ms = -1;
		return n;
	}
	if (colon == NULL)
		return n;
	klen = (size_t)(colon - data);
	v = colon + 1;
	val = header_value(v, n - klen - 1);
#define IS(name) (klen == strlen(name) && strncasecmp(data, name, klen) == 0)
	if (IS("location"))
		set_str(&resp->location, val);
	else if (IS("azure-asyncoperation"))
		set_str(&resp->async_op, val);
	else if (IS("etag"))
		set_str(&resp->etag, val);
	else if (IS("content-md5"))
		set_str(&resp->content_md5, val);
	else if (IS("content-type"))
		set_str(&resp->content_type, val);
	else if (IS("content-length")) {
		resp->content_length = strtoll(val, NULL, 10);
		free(val);
	} else if (IS("x-ms-retry-after-ms")) {
		char *end;
		long long ms = strtoll(val, &end, 10);

		if (end != val && *end == '\0' && ms >= 0 && ms <= 86400000)
			resp->retry_after_ms = ms;
		free(val);
	} else if (IS("retry-after")) {
		/* x-ms-retry-after-ms, when both came, is the precise one. */
		if (resp->retry_after_ms < 0)
			resp->retry_after_ms = amlops_http_parse_retry_after(
			    val, amlops_wall_ms());
		free(val);
	} else
		free(val);
#undef IS
	return n;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct amlops_buf *b = arg;
	size_t n = size * nmemb;

	if (amlops_buf_add(b, data, n) < 0)
		return 0; /* past the cap: curl fails the transfer */
	return n;
}

static int
status_retryable(long status)
{
	return status == 408 || status == 429 || status >= 500;
}

static int
curl_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return 1;
	default:
		return 0;
	}
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* "GET path" without the query (a SAS must not reach a message). */
static char *
default_what(const char *method, const char *url)
{
	CURLU *u = curl_url();
	char *path = NULL, *s;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK)
		s = amlops_xasprintf("%s %s", method, path);
	else
		s = amlops_xasprintf("%s (bad URL)", method);
	curl_free(path);
	curl_url_cleanup(u);
	return s;
}

static int
send_once(struct amlops_http *h, const struct amlops_http_req *req,
    struct curl_slist *hdrs, struct amlops_http_resp *resp, CURLcode *rcp)
{
	CURL *c = h->curl;
	size_t max =
	    req->max_response ? req->max_response : HTTP_DEFAULT_MAX_RESPONSE;
	CURLcode rc;

	amlops_buf_release(&resp->body);
	amlops_buf_init(&resp->body, max);
	amlops_buf_add(&resp->body, "", 0);
	set_str(&resp->location, NULL);
	set_str(&resp->async_op, NULL);
	set_str(&resp->etag, NULL);
	set_str(&resp->content_md5, NULL);
	set_str(&resp->content_type, NULL);
	resp->content_length = -1;
	resp->retry_after_ms = -1;
	resp->status = 0;

	curl_easy_reset(c);
	h->errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "amlops/" AMLOPS_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp->body);
	if (strcmp(req->method, "HEAD") == 0 || (req->flags & AMLOPS_HTTP_HEAD))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(req->method, "GET") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	if (req->body || (strcmp(req->method, "PUT") == 0 ||
	                     strcmp(req->method, "POST") == 0 ||
	                     strcmp(req->method, "PATCH") == 0)) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS,
		    req->body ? (const char *)req->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)(req->body ? req->body_len : 0));
	}
	rc = curl_easy_perform(c);
	*rcp = rc;
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	return rc == CURLE_OK ? 0 : -1;
}

int
amlops_http_do(struct amlops_http *h, const struct amlops_http_req *req,
    struct amlops_http_resp *resp)
{
	struct curl_slist *hdrs = NULL;
	char *what = NULL, *idh = NULL;
	int64_t start = amlops_now_ms();
	CURLcode rc = CURLE_OK;
	unsigned attempt;
	int error = 0;

	amlops_http_resp_release(resp);
	if ((error = amlops_http_url_ok(req->url, req->flags)) < 0)
		return error;
	what = req->what ? amlops_xstrdup(req->what)
	                 : default_what(req->method, req->url);
	/* A caller that signs its headers (Shared Key) sends its own id. */
	for (const char *const *p = req->headers; p && *p; p++)
		if (strncasecmp(*p, REQID_HDR, strlen(REQID_HDR)) == 0) {
			const char *v = *p + strlen(REQID_HDR);

			v += strspn(v, " ");
			snprintf(resp->request_id, sizeof(resp->request_id),
			    "%s", v);
		}
	if (resp->request_id[0] == '\0') {
		if ((error = amlops_uuid(resp->request_id)) < 0)
			goto done;
		idh = amlops_xasprintf(REQID_HDR " %s", resp->request_id);
		hdrs = curl_slist_append(hdrs, idh);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	for (const char *const *p = req->headers; p && *p; p++)
		hdrs = curl_slist_append(hdrs, *p);

	for (attempt = 1;; attempt++) {
		int64_t delay, elapsed;
		int sent;

		resp->attempts = attempt;
		sent = send_once(h, req, hdrs, resp, &rc);
		if (sent == 0 && !status_retryable(resp->status))
			break;
		if (sent < 0 && rc == CURLE_WRITE_ERROR) {
			error = amlops_err_set(AMLOPS_EINVALID,
			    "%s: response larger than %zu bytes (request id "
			    "%s)",
			    what, resp->body.max, resp->request_id);
			goto done;
		}
		if (sent < 0 && !curl_retryable(rc)) {
			error = amlops_err_set(AMLOPS_EBACKEND,
			    "%s: %s (request id %s)", what,
			    h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc),
			    resp->request_id);
			goto done;
		}
		if (req->flags & AMLOPS_HTTP_NO_RETRY)
			break;
		delay = resp->retry_after_ms >= 0
		            ? resp->retry_after_ms
		            : amlops_http_backoff_ms(&h->policy, attempt);
		elapsed = amlops_now_ms() - start;
		if (attempt >= h->policy.max_attempts ||
		    elapsed + delay > h->policy.max_total_ms) {
			if (sent == 0)
				break; /* the caller reads the last status */
			error = amlops_err_set(AMLOPS_EBACKEND,
			    "%s: %s after %u attempts (request id %s)", what,
			    h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc),
			    attempt, resp->request_id);
			goto done;
		}
		if (sent == 0)
			log_debug("%s: what=\"%s\" status=%ld attempt=%u "
			          "retry_in_ms=%lld request_id=%s",
			    __func__, what, resp->status, attempt,
			    (long long)delay, resp->request_id);
		else
			log_debug("%s: what=\"%s\" error=\"%s\" attempt=%u "
			          "retry_in_ms=%lld request_id=%s",
			    __func__, what,
			    h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc),
			    attempt, (long long)delay, resp->request_id);
		__atomic_add_fetch(&retries, 1, __ATOMIC_RELAXED);
		sleep_ms(delay);
		resp->waited_ms += delay;
	}
done:
	curl_slist_free_all(hdrs);
	free(idh);
	free(what);
	return error;
}

/* ------------------------------------------------------------------ */
/* ARM JSON client */

struct amlops_rest {
	struct amlops_http *http;
	char *base_url;
	char *api_version;
	char *bearer;
	struct amlops_cred *cred;
	char *scope;
	int64_t lro_timeout_ms;
	int64_t lro_min_interval_ms;
};

int
amlops_rest_new(struct amlops_rest **out, const struct amlops_rest_cfg *cfg)
{
	struct amlops_rest *r;
	size_t n;
	int error;

	if (cfg->base_url == NULL || *cfg->base_url == '\0')
		return amlops_err_set(AMLOPS_EINVALID, "no base URL");
	if ((error = amlops_http_url_ok(cfg->base_url, 0)) < 0)
		return error;
	r = amlops_xcalloc(1, sizeof(*r));
	if ((error = amlops_http_new(&r->http, &cfg->retry)) < 0) {
		free(r);
		return error;
	}
	r->base_url = amlops_xstrdup(cfg->base_url);
	n = strlen(r->base_url);
	while (n > 0 && r->base_url[n - 1] == '/')
		r->base_url[--n] = '\0';
	r->api_version = amlops_xstrdup(cfg->api_version);
	r->bearer = amlops_xstrdup(cfg->bearer);
	r->cred = cfg->cred;
	r->scope = amlops_xstrdup(cfg->scope);
	r->lro_timeout_ms =
	    cfg->lro_timeout_ms ? cfg->lro_timeout_ms : 30 * 60 * 1000;
	r->lro_min_interval_ms =
	    cfg->lro_min_interval_ms ? cfg->lro_min_interval_ms : 1000;
	*out = r;
	return 0;
}

void
amlops_rest_free(struct amlops_rest *r)
{
	if (r == NULL)
		return;
	amlops_http_free(r->http);
	free(r->base_url);
	free(r->api_version);
	if (r->bearer) {
		explicit_bzero(r->bearer, strlen(r->bearer));
		free(r->bearer);
	}
	free(r->scope);
	free(r);
}

struct amlops_http *
amlops_rest_http(struct amlops_rest *r)
{
	return r->http;
}

void
amlops_rest_resp_release(struct amlops_rest_resp *resp)
{
	cJSON_Delete(resp->json);
	free(resp->location);
	free(resp->async_op);
	memset(resp, 0, sizeof(*resp));
	resp->retry_after_ms = -1;
}

char *
amlops_rest_short_path(const char *path)
{
	const char *p = path, *q;
	size_t n;

	if ((q = strstr(p, "://")) != NULL && (q = strchr(q + 3, '/')) != NULL)
		p = q;
	if ((q = strstr(p, "/workspaces/")) != NULL &&
	    (q = strchr(q + strlen("/workspaces/"), '/')) != NULL)
		p = q + 1;
	else if (*p == '/')
		p++;
	n = strcspn(p, "?");
	return amlops_xstrndup(p, n);
}

static void
one_line(char *s)
{
	char *w = s;
	int space = 0;

	for (char *r = s; *r; r++) {
		if (*r == '\n' || *r == '\r' || *r == '\t' || *r == ' ') {
			space = 1;
			continue;
		}
		if (space && w != s)
			*w++ = ' ';
		space = 0;
		*w++ = *r;
	}
	*w = '\0';
}

char *
amlops_rest_error_text(const char *body, size_t len)
{
	cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
	const cJSON *e, *code, *msg;
	char *s;

	e = cJSON_GetObjectItemCaseSensitive(j, "error");
	if (!cJSON_IsObject(e))
		e = j; /* some services send {code, message} bare */
	code = cJSON_GetObjectItemCaseSensitive(e, "code");
	msg = cJSON_GetObjectItemCaseSensitive(e, "message");
	if (cJSON_IsString(code) && cJSON_IsString(msg))
		s = amlops_xasprintf(
		    "%s: %s", code->valuestring, msg->valuestring);
	else if (cJSON_IsString(msg))
		s = amlops_xstrdup(msg->valuestring);
	else if (cJSON_IsString(code))
		s = amlops_xstrdup(code->valuestring);
	else if (body && len)
		s = amlops_xstrndup(body, len > 300 ? 300 : len);
	else
		s = amlops_xstrdup("no error body");
	cJSON_Delete(j);
	one_line(s);
	return s;
}

static char *
full_url(struct amlops_rest *r, const char *path)
{
	const char *sep;
	char *url;

	if (strstr(path, "://"))
		url = amlops_xstrdup(path);
	else
		url = amlops_xasprintf(
		    "%s%s%s", r->base_url, *path == '/' ? "" : "/", path);
	if (r->api_version && strstr(url, "api-version=") == NULL) {
		char *u2;

		sep = strchr(url, '?') ? "&" : "?";
		u2 = amlops_xasprintf(
		    "%s%sapi-version=%s", url, sep, r->api_version);
		free(url);
		url = u2;
	}
	return url;
}

/* Only URLs on the client's own service get the token. */
static int
same_origin(struct amlops_rest *r, const char *url)
{
	size_t n = strlen(r->base_url);

	return strncmp(url, r->base_url, n) == 0 &&
	       (url[n] == '/' || url[n] == '\0' || url[n] == '?');
}

static int
auth_header(char **out, struct amlops_rest *r)
{
	char *tok = NULL;
	int error;

	*out = NULL;
	if (r->cred) {
		if ((error = amlops_cred_token(&tok, NULL, r->cred, r->scope)) <
		    0)
			return error;
		*out = amlops_xasprintf("Authorization: Bearer %s", tok);
		amlops_cred_token_free(tok);
	} else if (r->bearer && *r->bearer)
		*out = amlops_xasprintf("Authorization: Bearer %s", r->bearer);
	return 0;
}

static void
wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static int
status_error(long status)
{
	if (status == 404)
		return AMLOPS_ENOTFOUND;
	if (status == 409)
		return AMLOPS_ECONFLICT;
	if (status >= 400 && status < 500 && status != 408 && status != 429)
		return AMLOPS_EINVALID;
	return AMLOPS_EBACKEND;
}

static int
rest_send(struct amlops_rest *r, const char *method, const char *url,
    const char *what, const cJSON *body, struct amlops_rest_resp *out)
{
	struct amlops_http_resp hr = AMLOPS_HTTP_RESP_INIT;
	struct amlops_http_req req = {0};
	const char *hdrs[4];
	char *auth = NULL, *text = NULL;
	size_t nh = 0;
	int error;

	amlops_rest_resp_release(out);
	if (same_origin(r, url) && (error = auth_header(&auth, r)) < 0) {
		amlops_err_prefix(error, "%s", what);
		goto done;
	}
	if (auth)
		hdrs[nh++] = auth;
	hdrs[nh++] = "Accept: application/json";
	if (body) {
		text = cJSON_PrintUnformatted(body);
		hdrs[nh++] = "Content-Type: application/json";
	}
	hdrs[nh] = NULL;
	req.method = method;
	req.url = url;
	req.headers = hdrs;
	req.body = text;
	req.body_len = text ? strlen(text) : 0;
	req.what = what;
	error = amlops_http_do(r->http, &req, &hr);
	memcpy(out->request_id, hr.request_id, sizeof(out->request_id));
	out->attempts = hr.attempts;
	if (error < 0)
		goto done;
	out->status = hr.status;
	out->location = hr.location;
	hr.location = NULL;
	out->async_op = hr.async_op;
	hr.async_op = NULL;
	out->retry_after_ms = hr.retry_after_ms;
	if (hr.body.len)
		out->json = cJSON_ParseWithLength(hr.body.ptr, hr.body.len);
	log_debug("%s: what=\"%s\" status=%ld attempts=%u request_id=%s",
	    __func__, what, hr.status, hr.attempts, hr.request_id);
	if (hr.status < 200 || hr.status >= 300) {
		char *etext = amlops_rest_error_text(hr.body.ptr, hr.body.len);
		const char *reason = amlops_http_reason(hr.status);

		error = amlops_err_set(status_error(hr.status),
		    "%s: %ld%s%s (request id %s): %s", what, hr.status,
		    *reason ? " " : "", reason, hr.request_id, etext);
		free(etext);
	}
done:
	wipe_free(auth);
	free(text);
	amlops_http_resp_release(&hr);
	return error;
}

static amlops_rest_body_hook body_hook;
static void *body_hook_ctx;

void
amlops_rest_set_body_hook(amlops_rest_body_hook fn, void *ctx)
{
	body_hook = fn;
	body_hook_ctx = ctx;
}

int
amlops_rest_call(struct amlops_rest *r, const char *method, const char *path,
    const cJSON *body, struct amlops_rest_resp *resp)
{
	char *url = full_url(r, path);
	char *sp = amlops_rest_short_path(path);
	char *what = amlops_xasprintf("%s %s", method, sp);
	int error;

	if (body_hook && body)
		body_hook(body_hook_ctx, method, path, body);
	error = rest_send(r, method, url, what, body, resp);
	free(what);
	free(sp);
	free(url);
	return error;
}

/* ------------------------------------------------------------------ */
/* Long-running operations */

const char *
amlops_op_state_name(enum amlops_op_state s)
{
	switch (s) {
	case AMLOPS_OP_RUNNING:
		return "Running";
	case AMLOPS_OP_SUCCEEDED:
		return "Succeeded";
	case AMLOPS_OP_FAILED:
		return "Failed";
	case AMLOPS_OP_CANCELED:
		return "Canceled";
	}
	return "?";
}

static enum amlops_op_state
state_of(const char *s)
{
	if (s == NULL)
		return AMLOPS_OP_RUNNING;
	if (strcasecmp(s, "Succeeded") == 0)
		return AMLOPS_OP_SUCCEEDED;
	if (strcasecmp(s, "Failed") == 0)
		return AMLOPS_OP_FAILED;
	if (strcasecmp(s, "Canceled") == 0 || strcasecmp(s, "Cancelled") == 0)
		return AMLOPS_OP_CANCELED;
	return AMLOPS_OP_RUNNING;
}

void
amlops_rest_op_free(struct amlops_rest_op *op)
{
	if (op == NULL)
		return;
	free(op->what);
	free(op->resource);
	free(op->poll_url);
	free(op->status);
	free(op->error_code);
	free(op->error_message);
	free(op);
}

static const char *
json_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *
provisioning_state(const cJSON *res)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(res, "properties");

	return json_str(p, "provisioningState");
}

static void
op_set_status(struct amlops_rest_op *op, const char *status, const cJSON *error)
{
	op->state = state_of(status);
	if (status)
		set_str(&op->status, amlops_xstrdup(status));
	if (op->state == AMLOPS_OP_FAILED || op->state == AMLOPS_OP_CANCELED) {
		const cJSON *e = error;

		if (cJSON_IsObject(
		        cJSON_GetObjectItemCaseSensitive(e, "error")))
			e = cJSON_GetObjectItemCaseSensitive(e, "error");
		set_str(&op->error_code, amlops_xstrdup(json_str(e, "code")));
		set_str(
		    &op->error_message, amlops_xstrdup(json_str(e, "message")));
	}
}

static void
op_schedule(
    struct amlops_rest *r, struct amlops_rest_op *op, int64_t retry_after_ms)
{
	int64_t d =
	    retry_after_ms >= 0 ? retry_after_ms : r->lro_min_interval_ms;

	/* The service's interval, but never a busy loop. */
	if (d < 50)
		d = 50;
	op->next_poll_ms = amlops_now_ms() + d;
}

static int
op_result(struct amlops_rest_op *op)
{
	if (op->state == AMLOPS_OP_SUCCEEDED)
		return 0;
	if (op->state == AMLOPS_OP_RUNNING)
		return 1;
	return amlops_err_set(AMLOPS_EBACKEND,
	    "%s: operation %s (request id %s): %s%s%s", op->what,
	    amlops_op_state_name(op->state), op->request_id,
	    op->error_code ? op->error_code : "",
	    op->error_code && op->error_message ? ": " : "",
	    op->error_message ? op->error_message
	                      : (op->error_code ? "" : "no error details"));
}

int
amlops_rest_op_begin(struct amlops_rest_op **out, struct amlops_rest *r,
    const char *method, const char *path, const cJSON *body)
{
	struct amlops_rest_resp resp = AMLOPS_REST_RESP_INIT;
	struct amlops_rest_op *op;
	char *sp;
	int error;

	op = amlops_xcalloc(1, sizeof(*op));
	sp = amlops_rest_short_path(path);
	op->what = amlops_xasprintf("%s %s", method, sp);
	free(sp);
	op->resource = amlops_xstrdup(path);
	op->is_delete = strcmp(method, "DELETE") == 0;
	op->started_ms = amlops_now_ms();
	op->deadline_ms = op->started_ms + r->lro_timeout_ms;

	error = amlops_rest_call(r, method, path, body, &resp);
	memcpy(op->request_id, resp.request_id, sizeof(op->request_id));
	if (error == AMLOPS_ENOTFOUND && op->is_delete) {
		/* Already gone: what a DELETE wanted. */
		amlops_err_clear();
		op_set_status(op, "Succeeded", NULL);
		error = 0;
		goto ok;
	}
	if (error < 0)
		goto fail;
	if (resp.async_op) {
		op->poll_kind = 0;
		op->poll_url = resp.async_op;
		resp.async_op = NULL;
	} else if (resp.location && (resp.status == 202 || op->is_delete)) {
		op->poll_kind = 1;
		op->poll_url = resp.location;
		resp.location = NULL;
	} else
		op->poll_kind = 2;

	if (resp.status == 204 ||
	    (op->is_delete && resp.status == 200 && op->poll_kind == 2)) {
		op_set_status(op, "Succeeded", NULL);
	} else if (op->poll_kind == 2 && resp.status != 202) {
		const char *ps = provisioning_state(resp.json);

		/* No state in the body: the PUT/PATCH was synchronous. */
		op_set_status(op, ps ? ps : "Succeeded", NULL);
		if (op->state == AMLOPS_OP_FAILED)
			op_set_status(op, ps, NULL);
	} else
		op_set_status(op, "InProgress", NULL);
	op_schedule(r, op, resp.retry_after_ms);
ok:
	*out = op;
	op = NULL;
	log_debug("%s: what=\"%s\" status=%ld poll=%s request_id=%s", __func__,
	    (*out)->what, resp.status,
	    (*out)->poll_kind == 0
	        ? "async"
	        : ((*out)->poll_kind == 1 ? "location" : "state"),
	    (*out)->request_id);
fail:
	amlops_rest_op_free(op);
	amlops_rest_resp_release(&resp);
	return error;
}

int
amlops_rest_op_poll(struct amlops_rest *r, struct amlops_rest_op *op)
{
	struct amlops_rest_resp resp = AMLOPS_REST_RESP_INIT;
	int error;

	if (op->state != AMLOPS_OP_RUNNING)
		return op_result(op);
	if (amlops_now_ms() < op->next_poll_ms)
		return 1;
	if (amlops_now_ms() > op->deadline_ms)
		return amlops_err_set(AMLOPS_ETIMEOUT,
		    "%s: operation still %s after %lld s (request id %s)",
		    op->what, op->status ? op->status : "running",
		    (long long)((amlops_now_ms() - op->started_ms) / 1000),
		    op->request_id);
	op->polls++;
	if (op->poll_kind == 0) {
		char *what =
		    amlops_xasprintf("%s (operation status)", op->what);
		char *url = strstr(op->poll_url, "://")
		                ? amlops_xstrdup(op->poll_url)
		                : full_url(r, op->poll_url);

		error = rest_send(r, "GET", url, what, NULL, &resp);
		free(url);
		free(what);
		if (error < 0)
			goto done;
		op_set_status(op, json_str(resp.json, "status"), resp.json);
	} else if (op->poll_kind == 1) {
		char *what =
		    amlops_xasprintf("%s (operation location)", op->what);
		char *url = strstr(op->poll_url, "://")
		                ? amlops_xstrdup(op->poll_url)
		                : full_url(r, op->poll_url);

		error = rest_send(r, "GET", url, what, NULL, &resp);
		free(url);
		free(what);
		if (error == AMLOPS_ENOTFOUND && op->is_delete) {
			amlops_err_clear();
			op_set_status(op, "Succeeded", NULL);
			error = 0;
		} else if (error < 0)
			goto done;
		else if (resp.status == 202)
			op_set_status(op, "InProgress", NULL);
		else {
			const char *ps = provisioning_state(resp.json);

			if (ps == NULL)
				ps = json_str(resp.json, "status");
			op_set_status(op, ps ? ps : "Succeeded", resp.json);
		}
	} else {
		error = amlops_rest_call(r, "GET", op->resource, NULL, &resp);
		if (error == AMLOPS_ENOTFOUND && op->is_delete) {
			amlops_err_clear();
			op_set_status(op, "Succeeded", NULL);
			error = 0;
		} else if (error < 0)
			goto done;
		else {
			const char *ps = provisioning_state(resp.json);

			op_set_status(op, ps ? ps : "Succeeded", NULL);
			if (op->state == AMLOPS_OP_FAILED && !op->error_code)
				set_str(&op->error_message,
				    amlops_xstrdup("the resource's "
				                   "provisioningState is "
				                   "Failed"));
		}
	}
	op_schedule(r, op, resp.retry_after_ms);
	log_debug("%s: what=\"%s\" status=%s polls=%u", __func__, op->what,
	    op->status ? op->status : "?", op->polls);
	error = op_result(op);
done:
	amlops_rest_resp_release(&resp);
	return error;
}

int
amlops_rest_op_wait(struct amlops_rest *r, struct amlops_rest_op *op)
{
	int error;

	while ((error = amlops_rest_op_poll(r, op)) == 1) {
		int64_t d = op->next_poll_ms - amlops_now_ms();

		if (op->next_poll_ms > op->deadline_ms)
			d = op->deadline_ms - amlops_now_ms() + 1;
		sleep_ms(d);
	}
	return error;
}
