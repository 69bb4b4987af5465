/*
 * HTTP and the Azure Resource Manager REST client that both targets use.
 *
 * Two layers:
 *
 * - amlops_http: one libcurl handle (kept alive between requests) that
 *   sends a request and retries it on 408, 429, 5xx and connection errors
 *   with exponential backoff and jitter, honouring `Retry-After` and
 *   `x-ms-retry-after-ms`, with a cap on attempts and on total time. It
 *   never retries another 4xx. TLS verification is always on; plain http
 *   is accepted only for loopback hosts (127.0.0.0/8, localhost, [::1]).
 *   The credential and blob modules use it too.
 *
 * - amlops_rest: JSON requests to a base URL with an api-version and a
 *   bearer token, ARM error bodies turned into one line, and long-running
 *   operations (Azure-AsyncOperation, else Location, else the resource's
 *   provisioningState).
 *
 * Every request carries a fresh `x-ms-client-request-id`; it is in every
 * error message ("(request id ...)") and in the response, so that the
 * note can record it. Tokens never appear in a message or a log.
 */
#ifndef AMLOPS_REST_H
#define AMLOPS_REST_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "amlops/util.h"

struct amlops_cred;

/* Retry policy; zero fields take the defaults shown. */
struct amlops_retry {
	unsigned max_attempts; /* 6 (the first try included) */
	int64_t max_total_ms;  /* 120000: no new attempt after this */
	int64_t base_ms;       /* 500: first backoff, doubled each time */
	int64_t max_delay_ms;  /* 30000: cap of one backoff */
};

enum amlops_http_flags {
	AMLOPS_HTTP_NO_RETRY = 1 << 0,
	/* Also accept http to 169.254.169.254 (the IMDS address). */
	AMLOPS_HTTP_IMDS = 1 << 1,
	/* HEAD: no body expected. */
	AMLOPS_HTTP_HEAD = 1 << 2,
};

struct amlops_http_req {
	const char *method; /* "GET", "PUT", ... */
	const char *url;
	const char *const *headers; /* "Name: value", NULL-terminated */
	const void *body;           /* or NULL */
	size_t body_len;
	size_t max_response; /* 0: 32 MiB */
	unsigned flags;      /* enum amlops_http_flags */
	/*
	 * What the request is, for messages: "PUT onlineEndpoints/blue".
	 * NULL: the method and the URL's path (without its query).
	 */
	const char *what;
};

struct amlops_http_resp {
	long status;
	struct amlops_buf body;
	char request_id[37]; /* the x-ms-client-request-id sent */
	char *location;      /* Location, or NULL */
	char *async_op;      /* Azure-AsyncOperation, or NULL */
	char *etag;
	char *content_md5;
	char *content_type;
	int64_t content_length; /* -1 when not sent */
	int64_t retry_after_ms; /* -1 when not sent */
	unsigned attempts;      /* requests sent, retries included */
	int64_t waited_ms;      /* time spent in backoff */
};

#define AMLOPS_HTTP_RESP_INIT                                                  \
	{                                                                      \
		0, AMLOPS_BUF_INIT, "", NULL, NULL, NULL, NULL, NULL, -1, -1,  \
		    0, 0                                                       \
	}

void amlops_http_resp_release(struct amlops_http_resp *resp);

struct amlops_http;

/* `policy` may be NULL (defaults). Free with amlops_http_free(). */
int amlops_http_new(
    struct amlops_http **out, const struct amlops_retry *policy);
void amlops_http_free(struct amlops_http *h);

/*
 * Sends `req`, with retries. Returns 0 once a response was received
 * (whatever its status: the caller reads resp->status), or a negative
 * code when no response came (connection refused after the retries,
 * timeout, a URL that is not allowed). `resp` is released and filled.
 */
int amlops_http_do(struct amlops_http *h, const struct amlops_http_req *req,
    struct amlops_http_resp *resp);

/*
 * Checks a URL: https, or http to a loopback host (and to the IMDS
 * address with AMLOPS_HTTP_IMDS). AMLOPS_EINVALID with the reason.
 */
int amlops_http_url_ok(const char *url, unsigned flags);

/* "Conflict" for 409 and so on; "" when unknown. */
const char *amlops_http_reason(long status);

/*
 * Parses a Retry-After value (seconds, or an HTTP date) into
 * milliseconds from `now_wall_ms`; -1 when it cannot be read.
 */
int64_t amlops_http_parse_retry_after(const char *v, int64_t now_wall_ms);

/*
 * Retries amlops_http_do() has made in this process, over every handle
 * and thread (for amlops watch's /metrics).
 */
uint64_t amlops_http_retries(void);

/* The delay before retry `attempt` (1-based) when the server named none. */
int64_t amlops_http_backoff_ms(
    const struct amlops_retry *policy, unsigned attempt);

struct amlops_rest_cfg {
	/* "https://management.azure.com" or "http://127.0.0.1:PORT" */
	const char *base_url;
	const char *api_version; /* "2024-04-01" */
	/* The token: a fixed one, or one asked of `cred` for `scope`. */
	const char *bearer;
	struct amlops_cred *cred; /* borrowed; outlives the client */
	const char *scope;        /* "https://management.azure.com/.default" */
	struct amlops_retry retry;
	int64_t lro_timeout_ms;      /* 0: 30 minutes */
	int64_t lro_min_interval_ms; /* 0: 1000; the floor of polling */
};

struct amlops_rest;

int amlops_rest_new(
    struct amlops_rest **out, const struct amlops_rest_cfg *cfg);
void amlops_rest_free(struct amlops_rest *r);

/* The client's HTTP layer, borrowed (the blob client may share it). */
struct amlops_http *amlops_rest_http(struct amlops_rest *r);

struct amlops_rest_resp {
	long status;
	cJSON *json; /* the body when it was JSON, or NULL */
	char request_id[37];
	char *location;
	char *async_op;
	int64_t retry_after_ms;
	unsigned attempts;
};

#define AMLOPS_REST_RESP_INIT                                                  \
	{                                                                      \
		0, NULL, "", NULL, NULL, -1, 0                                 \
	}

void amlops_rest_resp_release(struct amlops_rest_resp *resp);

/*
 * Sends one JSON request. `path` is relative to the base URL (or a full
 * URL under it); api-version is added unless present. 2xx returns 0; any
 * other status sets the message
 *   "PUT onlineEndpoints/my-endpoint: 409 Conflict (request id ...): msg"
 * and returns AMLOPS_ENOTFOUND (404), AMLOPS_ECONFLICT (409),
 * AMLOPS_EINVALID (other 4xx) or AMLOPS_EBACKEND. `resp` is filled in
 * every case where a response came; `body` may be NULL.
 */
int amlops_rest_call(struct amlops_rest *r, const char *method,
    const char *path, const cJSON *body, struct amlops_rest_resp *resp);

/*
 * A test hook: when set, called with every JSON body amlops_rest_call()
 * sends (method, path without the base URL, body). Process-wide; NULL
 * removes it.
 */
typedef void (*amlops_rest_body_hook)(
    void *ctx, const char *method, const char *path, const cJSON *body);
void amlops_rest_set_body_hook(amlops_rest_body_hook fn, void *ctx);

/* The short form of a path for messages: "onlineEndpoints/blue". */
char *amlops_rest_short_path(const char *path);

/*
 * The ARM error body {"error":{"code","message"}} as "Code: message", or
 * the raw body trimmed to one line; malloc'd.
 */
char *amlops_rest_error_text(const char *body, size_t len);

/* A long-running operation. */
enum amlops_op_state {
	AMLOPS_OP_RUNNING = 0,
	AMLOPS_OP_SUCCEEDED,
	AMLOPS_OP_FAILED,
	AMLOPS_OP_CANCELED,
};

struct amlops_rest_op {
	char *what;     /* "PUT onlineEndpoints/blue" */
	char *resource; /* path of the resource, for the final GET */
	char *poll_url; /* Azure-AsyncOperation or Location */
	int poll_kind;  /* 0 async-operation, 1 location, 2 state */
	enum amlops_op_state state;
	char *status;     /* the service's word: "Succeeded", ... */
	char *error_code; /* Failed: the service's code, or NULL */
	char *error_message;
	char request_id[37]; /* of the request that started it */
	int64_t started_ms;
	int64_t deadline_ms;
	int64_t next_poll_ms;
	unsigned polls;
	int is_delete;
};

/*
 * Sends `method` to `path` and sets up the operation it started. An
 * answer of 200/201 with a terminal provisioningState, or 204, or a 404
 * to a DELETE, is done at once. Free with amlops_rest_op_free().
 */
int amlops_rest_op_begin(struct amlops_rest_op **out, struct amlops_rest *r,
    const char *method, const char *path, const cJSON *body);

/*
 * Polls once if it is time (else returns at once). Returns 1 while it
 * runs, 0 when it Succeeded, and for Failed/Canceled AMLOPS_EBACKEND
 * with "PUT onlineEndpoints/blue: operation Failed (request id ...):
 * Code: message"; AMLOPS_ETIMEOUT past the deadline.
 */
int amlops_rest_op_poll(struct amlops_rest *r, struct amlops_rest_op *op);

/* Polls, sleeping as the service asks, until done. 0 or as above. */
int amlops_rest_op_wait(struct amlops_rest *r, struct amlops_rest_op *op);

void amlops_rest_op_free(struct amlops_rest_op *op);

const char *amlops_op_state_name(enum amlops_op_state s);

#endif
