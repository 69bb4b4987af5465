/*
 * `amlops host`: the HTTP side of the control plane. Starts and stops the
 * host, checks the bearer token and the api-version of every request,
 * applies test-only faults, and hands the rest to host_api_route().
 *
 * Fault injection (only with --faults or AMLOPS_HOST_FAULTS=1; otherwise
 * the path answers 404 like any unknown path). With the bearer token:
 *   POST /_amlops/faults {"count":N, "status":429|500|503|...,
 *        "retry_after":S, "path_contains":"deployments", "method":"PUT"}
 *        the next N matching requests get that status (429 and 503 carry
 *        Retry-After: S) and an ARM error body;
 *   POST /_amlops/faults {"count":N, "drop":true, ...}
 *        the next N matching requests have their connection closed
 *        without an answer;
 *   POST /_amlops/faults {"fail_next_operation":true, "message":"..."}
 *        the next long-running operation ends Failed with that message;
 *   DELETE /_amlops/faults   forgets every pending fault.
 * Requests under /_amlops are never themselves faulted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "amlops/blob.h"
#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/util.h"
#include "local/host.h"

struct host_fault {
	int count;
	int status;
	int retry_after;
	int drop;
	char *path_contains;
	char *method;
	struct host_fault *next;
};

/* The api-versions the reference covers, and the ones between them. */
static const char *const api_versions[] = {
    "2022-10-01",
    "2023-04-01",
    "2023-10-01",
    "2024-04-01",
    "2024-10-01",
    "2025-01-01-preview",
    "2025-06-01",
    "2025-09-01",
    "2025-12-01",
    "2026-07-01",
    "2024-10-01-preview",
    "2025-07-01-preview",
    "2025-10-01-preview",
};

void
host_resp_release(struct host_resp *r)
{
	size_t i;

	cJSON_Delete(r->json);
	free(r->text);
	for (i = 0; i < r->nhdr; i++) {
		free(r->hdr_name[i]);
		free(r->hdr_value[i]);
	}
	memset(r, 0, sizeof(*r));
}

void
host_resp_json(struct host_resp *r, int status, cJSON *body)
{
	cJSON_Delete(r->json);
	r->status = status;
	r->json = body;
}

void
host_resp_header(struct host_resp *r, const char *name, const char *fmt, ...)
{
	va_list ap;
	struct amlops_buf b = AMLOPS_BUF_INIT;

	if (r->nhdr >= AMLOPS_ARRAY_SIZE(r->hdr_name))
		return;
	va_start(ap, fmt);
	amlops_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	r->hdr_name[r->nhdr] = amlops_xstrdup(name);
	r->hdr_value[r->nhdr] = amlops_buf_detach(&b);
	r->nhdr++;
}

void
host_resp_error(struct host_resp *r, int status, const char *code,
    const char *target, const char *fmt, ...)
{
	struct amlops_buf msg = AMLOPS_BUF_INIT;
	cJSON *body, *err;
	va_list ap;

	va_start(ap, fmt);
	amlops_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	body = cJSON_CreateObject();
	err = cJSON_AddObjectToObject(body, "error");
	cJSON_AddStringToObject(err, "code", code);
	cJSON_AddStringToObject(err, "message", amlops_buf_cstr(&msg));
	if (target)
		cJSON_AddStringToObject(err, "target", target);
	cJSON_AddArrayToObject(err, "details");
	amlops_buf_release(&msg);
	host_resp_json(r, status, body);
}

static void
fault_free(struct host_fault *f)
{
	if (!f)
		return;
	free(f->path_contains);
	free(f->method);
	free(f);
}

static void
faults_clear(struct amlops_host *h)
{
	struct host_fault *f, *next;

	for (f = h->faults; f; f = next) {
		next = f->next;
		fault_free(f);
	}
	h->faults = NULL;
	h->fail_next_op = 0;
	free(h->fail_next_msg);
	h->fail_next_msg = NULL;
}

/* POST/DELETE /_amlops/faults. Holds h->mu. */
static void
faults_control(struct amlops_host *h, const char *method, const char *body,
    struct host_resp *r)
{
	struct host_fault *f, **tail;
	cJSON *j = NULL, *v;

	if (!strcmp(method, "DELETE")) {
		faults_clear(h);
		r->status = 204;
		return;
	}
	if (strcmp(method, "POST")) {
		host_resp_error(r, 405, "MethodNotAllowed", NULL,
		    "method '%s' is not allowed on '/_amlops/faults'", method);
		return;
	}
	if (!(j = cJSON_Parse(body)) || !cJSON_IsObject(j)) {
		host_resp_error(r, 400, "InvalidRequestContent", NULL,
		    "the fault body is not a JSON object");
		goto done;
	}
	if (cJSON_IsTrue(cJSON_GetObjectItem(j, "fail_next_operation"))) {
		h->fail_next_op = 1;
		free(h->fail_next_msg);
		h->fail_next_msg = amlops_xstrdup(
		    host_json_str(j, "message") ? host_json_str(j, "message")
		                                : "injected operation failure");
		log_info("fault=fail_next_operation");
		r->status = 204;
		goto done;
	}
	f = amlops_xcalloc(1, sizeof(*f));
	v = cJSON_GetObjectItem(j, "count");
	f->count = cJSON_IsNumber(v) ? v->valueint : 1;
	v = cJSON_GetObjectItem(j, "status");
	f->status = cJSON_IsNumber(v) ? v->valueint : 0;
	v = cJSON_GetObjectItem(j, "retry_after");
	f->retry_after = cJSON_IsNumber(v) ? v->valueint : 1;
	f->drop = cJSON_IsTrue(cJSON_GetObjectItem(j, "drop"));
	f->path_contains = amlops_xstrdup(host_json_str(j, "path_contains"));
	f->method = amlops_xstrdup(host_json_str(j, "method"));
	if (f->count < 1 ||
	    (!f->drop && (f->status < 400 || f->status > 599))) {
		fault_free(f);
		host_resp_error(r, 400, "InvalidRequestContent", NULL,
		    "a fault needs 'count' >= 1 and either 'drop':true or a "
		    "'status' from 400 to 599");
		goto done;
	}
	for (tail = &h->faults; *tail; tail = &(*tail)->next)
		;
	*tail = f;
	log_info("fault=added count=%d status=%d drop=%d", f->count, f->status,
	    f->drop);
	r->status = 204;
done:
	cJSON_Delete(j);
}

/* Applies the first matching fault, if any. Holds h->mu. */
static int
faults_apply(struct amlops_host *h, const char *method, const char *path,
    struct host_resp *r)
{
	struct host_fault *f, **pp;

	for (pp = &h->faults; (f = *pp); pp = &f->next) {
		if (f->method && strcasecmp(f->method, method))
			continue;
		if (f->path_contains && !strstr(path, f->path_contains))
			continue;
		if (f->drop)
			r->drop = 1;
		else if (f->status == 429)
			host_resp_error(r, 429, "TooManyRequests", NULL,
			    "injected fault: too many requests");
		else
			host_resp_error(r, f->status,
			    f->status == 503 ? "ServiceUnavailable"
			                     : "InternalServerError",
			    NULL, "injected fault: status %d", f->status);
		if (!f->drop && (f->status == 429 || f->status == 503))
			host_resp_header(
			    r, "Retry-After", "%d", f->retry_after);
		if (--f->count <= 0) {
			*pp = f->next;
			fault_free(f);
		}
		return 1;
	}
	return 0;
}

static int
api_version_ok(const char *v)
{
	size_t i;

	for (i = 0; i < AMLOPS_ARRAY_SIZE(api_versions); i++)
		if (!strcmp(v, api_versions[i]))
			return 1;
	return 0;
}

static char *
api_versions_list(void)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	size_t i;

	for (i = 0; i < AMLOPS_ARRAY_SIZE(api_versions); i++)
		amlops_buf_printf(&b, "%s%s", i ? ", " : "", api_versions[i]);
	return amlops_buf_detach(&b);
}

static void
split_path(struct host_req *req, char *copy)
{
	char *p, *save = NULL;
	size_t cap = 0;

	for (p = strtok_r(copy, "/", &save); p;
	     p = strtok_r(NULL, "/", &save)) {
		if (req->nseg == cap) {
			cap = cap ? cap * 2 : 16;
			req->seg =
			    amlops_xrealloc(req->seg, cap * sizeof(char *));
		}
		req->seg[req->nseg++] = p;
	}
}

void
amlops_host_handle(struct amlops_host *h, const char *method, const char *url,
    const char *api_version, const char *authorization, const char *body,
    size_t body_len, struct host_resp *r)
{
	struct host_req req = {0};
	char *copy = NULL, *list = NULL;

	if (!authorization || strncasecmp(authorization, "Bearer ", 7)) {
		host_resp_error(r, 401, "AuthenticationFailed", NULL,
		    "authentication failed: the 'Authorization' header is "
		    "missing or is not a bearer token");
		host_resp_header(r, "WWW-Authenticate", "Bearer");
		return;
	}
	if (!amlops_consttime_streq(authorization + 7, h->token)) {
		host_resp_error(r, 401, "InvalidAuthenticationToken", NULL,
		    "the access token is invalid");
		host_resp_header(r, "WWW-Authenticate", "Bearer");
		return;
	}
	pthread_mutex_lock(&h->mu);
	if (!strcmp(url, "/_amlops/faults") && h->faults_enabled) {
		faults_control(h, method, body, r);
		goto done;
	}
	if (faults_apply(h, method, url, r))
		goto done;
	if (!api_version) {
		host_resp_error(r, 400, "MissingApiVersionParameter", NULL,
		    "the api-version query parameter (?api-version=) is "
		    "required for all requests");
		goto done;
	}
	if (!api_version_ok(api_version)) {
		list = api_versions_list();
		host_resp_error(r, 400, "InvalidApiVersionParameter", NULL,
		    "the api-version '%s' is not supported; the supported "
		    "versions are '%s'",
		    api_version, list);
		goto done;
	}
	req.method = method;
	req.path = url;
	req.api_version = api_version;
	req.body = body ? body : "";
	req.body_len = body ? body_len : 0;
	copy = amlops_xstrdup(url);
	split_path(&req, copy);
	host_api_route(h, &req, r);
done:
	pthread_mutex_unlock(&h->mu);
	free(req.seg);
	free(copy);
	free(list);
}

/* The HTTP daemon. */

struct conn {
	struct amlops_buf body;
	int too_large;
	int64_t start;
};

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct conn *cc = *con_cls;

	if (!cc)
		return;
	amlops_buf_release(&cc->body);
	free(cc);
	*con_cls = NULL;
}

static enum MHD_Result
send_resp(struct MHD_Connection *c, struct host_resp *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text = NULL, rid[37];
	size_t i;

	if (r->json)
		text = cJSON_PrintUnformatted(r->json);
	else if (r->text)
		text = amlops_xstrdup(r->text);
	resp = MHD_create_response_from_buffer(text ? strlen(text) : 0,
	    text ? text : (void *)"", MHD_RESPMEM_MUST_COPY);
	free(text);
	if (!resp)
		return MHD_NO;
	if (r->json)
		MHD_add_response_header(
		    resp, "Content-Type", "application/json; charset=utf-8");
	else if (r->text)
		MHD_add_response_header(
		    resp, "Content-Type", "text/plain; charset=utf-8");
	if (amlops_uuid(rid) == 0)
		MHD_add_response_header(resp, "x-ms-request-id", rid);
	for (i = 0; i < r->nhdr; i++)
		MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
	ret = MHD_queue_response(c, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct amlops_host *h = cls;
	struct host_resp r = {0};
	struct conn *cc = *con_cls;
	const char *cl;
	enum MHD_Result ret;

	if (!cc) {
		cc = amlops_xcalloc(1, sizeof(*cc));
		amlops_buf_init(&cc->body, AMLOPS_HOST_MAX_BODY);
		cc->start = amlops_now_ms();
		*con_cls = cc;
		cl = MHD_lookup_connection_value(
		    c, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > AMLOPS_HOST_MAX_BODY) {
			cc->too_large = 1;
			goto answer;
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!cc->too_large && amlops_buf_add(&cc->body, upload_data,
		                          *upload_data_size) < 0) {
			cc->too_large = 1;
			amlops_buf_release(&cc->body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
answer:
	if (cc->too_large)
		host_resp_error(&r, 413, "RequestEntityTooLarge", NULL,
		    "the request body is larger than %u bytes",
		    AMLOPS_HOST_MAX_BODY);
	else
		amlops_host_handle(h, method, url,
		    MHD_lookup_connection_value(
		        c, MHD_GET_ARGUMENT_KIND, "api-version"),
		    MHD_lookup_connection_value(
		        c, MHD_HEADER_KIND, "Authorization"),
		    amlops_buf_cstr(&cc->body), cc->body.len, &r);
	if (r.drop) {
		log_debug("%s: method=%s path=%s result=dropped", __func__,
		    method, url);
		host_resp_release(&r);
		return MHD_NO;
	}
	if (!r.status)
		r.status = 500;
	log_debug("%s: method=%s path=%s status=%d ms=%lld", __func__, method,
	    url, r.status, (long long)(amlops_now_ms() - cc->start));
	ret = send_resp(c, &r);
	host_resp_release(&r);
	return ret;
}

/* Startup and shutdown. */

static int
take_lock(struct amlops_host *h)
{
	char *path = amlops_xasprintf("%s/host.lock", h->dir);
	char pidbuf[32];
	ssize_t n;
	int fd, error = 0;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		error = amlops_err_sys(AMLOPS_ERROR, "cannot open '%s'", path);
		goto done;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		n = pread(fd, pidbuf, sizeof(pidbuf) - 1, 0);
		pidbuf[n > 0 ? n : 0] = '\0';
		pidbuf[strcspn(pidbuf, "\n")] = '\0';
		error = amlops_err_set(AMLOPS_ELOCKED,
		    "another amlops host (pid %s) is running on state dir '%s'",
		    *pidbuf ? pidbuf : "?", h->dir);
		close(fd);
		goto done;
	}
	n = snprintf(pidbuf, sizeof(pidbuf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pidbuf, (size_t)n, 0) != n) {
		error = amlops_err_sys(AMLOPS_ERROR, "cannot write '%s'", path);
		close(fd);
		goto done;
	}
	h->lockfd = fd;
done:
	free(path);
	return error;
}

static int
write_info(struct amlops_host *h)
{
	char *path = amlops_xasprintf("%s/host.json", h->dir);
	cJSON *j = cJSON_CreateObject();
	char *text;
	int error;

	cJSON_AddStringToObject(j, "url", h->url);
	cJSON_AddNumberToObject(j, "pid", (double)getpid());
	cJSON_AddStringToObject(j, "token", h->token);
	cJSON_AddStringToObject(
	    j, "scoring_url", amlops_runtime_base_url(h->rt));
	cJSON_AddStringToObject(j, "state_dir", h->dir);
	cJSON_AddStringToObject(j, "subscription", AMLOPS_HOST_LOCAL_SUB);
	cJSON_AddStringToObject(j, "resource_group", AMLOPS_HOST_LOCAL_RG);
	cJSON_AddStringToObject(j, "workspace", AMLOPS_HOST_LOCAL_WS);
	text = cJSON_Print(j);
	error = amlops_file_write_atomic(path, text, strlen(text), 0600);
	free(text);
	cJSON_Delete(j);
	free(path);
	return error;
}

static int
start_daemon(struct amlops_host *h, int port)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, h->bind, &sa.sin_addr) != 1)
		return amlops_err_set(AMLOPS_EINVALID,
		    "bad bind address '%s' (expected an IPv4 address)",
		    h->bind);
	h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	                              MHD_USE_THREAD_PER_CONNECTION |
	                              MHD_USE_ERROR_LOG,
	    (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
	    h, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_END);
	if (!h->mhd)
		return amlops_err_sys(
		    AMLOPS_ERROR, "cannot listen on %s:%d", h->bind, port);
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port)
		return amlops_err_set(
		    AMLOPS_ERROR, "cannot learn the control plane's port");
	h->url =
	    amlops_xasprintf("http://%s:%u", h->bind, (unsigned)info->port);
	return 0;
}

/* Brings every endpoint and deployment of the loaded state back up. */
static void
restore(struct amlops_host *h)
{
	cJSON *ws, *ep, *dep;
	const char *ps;

	cJSON_ArrayForEach(ws, cJSON_GetObjectItem(h->state, "workspaces"))
	{
		cJSON_ArrayForEach(ep, cJSON_GetObjectItem(ws, "endpoints"))
		{
			if (host_push_endpoint(h, ep) < 0)
				log_warnx("endpoint=%s restore=failed "
				          "error=\"%s\"",
				    ep->string, amlops_err_last());
			cJSON_ArrayForEach(
			    dep, cJSON_GetObjectItem(ep, "deployments"))
			{
				ps = host_json_str(
				    host_json_obj(
				        host_json_obj(dep, "resource"),
				        "properties"),
				    "provisioningState");
				if (ps && (!strcmp(ps, "Deleting") ||
				              !strcmp(ps, "Failed")))
					continue;
				if (host_push_deployment(h, ep, dep) < 0)
					log_warnx("endpoint=%s deployment=%s "
					          "restore=failed error=\"%s\"",
					    ep->string, dep->string,
					    amlops_err_last());
				else
					log_info("endpoint=%s deployment=%s "
					         "restore=started",
					    ep->string, dep->string);
			}
		}
	}
}

int
amlops_host_start(struct amlops_host **out, const struct amlops_host_opts *opts)
{
	struct amlops_runtime_opts ropts = {0};
	struct amlops_host *h;
	unsigned char raw[32];
	char hex[65];
	size_t i;
	int error;

	h = amlops_xcalloc(1, sizeof(*h));
	h->lockfd = -1;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cond, NULL);
	h->dir = amlops_xstrdup(opts->state_dir);
	h->bind = amlops_xstrdup(opts->bind ? opts->bind : "127.0.0.1");
	h->retry_after = opts->retry_after >= 0 ? opts->retry_after : 1;
	h->op_delay_ms = opts->op_delay_ms >= 0 ? opts->op_delay_ms : 0;
	h->faults_enabled = opts->faults;
	h->blob_endpoint = amlops_xstrdup(opts->blob_endpoint);
	h->blob_container = amlops_xstrdup(opts->blob_container);
	h->blob_account = amlops_xstrdup(opts->blob_account);
	h->blob_key = amlops_xstrdup(opts->blob_key);

	{
		struct in_addr a;

		if (inet_pton(AF_INET, h->bind, &a) != 1) {
			error = amlops_err_set(AMLOPS_EINVALID,
			    "bad bind address '%s' (expected an IPv4 address)",
			    h->bind);
			goto done;
		}
	}
	if ((error = amlops_mkdir_p(h->dir, 0700)) < 0)
		goto done;
	if (chmod(h->dir, 0700) < 0) {
		error =
		    amlops_err_sys(AMLOPS_ERROR, "cannot chmod '%s'", h->dir);
		goto done;
	}
	if ((error = take_lock(h)) < 0)
		goto done;
	if ((error = amlops_random(raw, sizeof(raw))) < 0)
		goto done;
	for (i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	h->token = amlops_xstrdup(hex);
	if ((error = host_state_load(h)) < 0)
		goto done;
	host_store_clean(h);
	if (h->blob_endpoint) {
		struct amlops_blob_cfg bc = {0};

		bc.endpoint = h->blob_endpoint;
		bc.account = h->blob_account;
		bc.key = h->blob_key;
		if ((error = amlops_blob_client_new(&h->blob, &bc)) < 0) {
			amlops_err_prefix(error, "--blob-endpoint");
			goto done;
		}
	}

	ropts.python = opts->python;
	ropts.bind = h->bind;
	ropts.port = opts->scoring_port;
	if ((error = amlops_runtime_new(&h->rt, &ropts)) < 0)
		goto done;
	pthread_mutex_lock(&h->mu);
	restore(h);
	error = host_state_save(h);
	pthread_mutex_unlock(&h->mu);
	if (error < 0)
		goto done;
	if ((error = host_ticker_start(h)) < 0)
		goto done;
	if ((error = start_daemon(h, opts->port)) < 0)
		goto done;
	if ((error = write_info(h)) < 0)
		goto done;
	log_info("host=started url=%s scoring_url=%s state_dir=%s faults=%s",
	    h->url, amlops_runtime_base_url(h->rt), h->dir,
	    h->faults_enabled ? "on" : "off");
	*out = h;
	h = NULL;
done:
	amlops_host_free(h);
	return error;
}

void
amlops_host_free(struct amlops_host *h)
{
	char *path;

	if (!h)
		return;
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	host_ticker_stop(h);
	amlops_runtime_free(h->rt);
	if (h->state) {
		pthread_mutex_lock(&h->mu);
		if (host_state_save(h) < 0)
			log_warnx("state=save-failed error=\"%s\"",
			    amlops_err_last());
		pthread_mutex_unlock(&h->mu);
	}
	if (h->url) {
		path = amlops_xasprintf("%s/host.json", h->dir);
		unlink(path);
		free(path);
	}
	if (h->lockfd >= 0)
		close(h->lockfd);
	faults_clear(h);
	amlops_blob_client_free(h->blob);
	cJSON_Delete(h->state);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cond);
	free(h->dir);
	free(h->bind);
	free(h->token);
	free(h->url);
	free(h->blob_endpoint);
	free(h->blob_container);
	free(h->blob_account);
	free(h->blob_key);
	free(h);
}
