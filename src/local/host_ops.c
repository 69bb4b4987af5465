/*
 * Long-running operations as Azure runs them: a mutation answers 201/202
 * with Azure-AsyncOperation, Location and Retry-After; the operation stays
 * InProgress until the ticker thread sees it done (the runtime says the
 * deployment's workers are READY, or a quick operation's delay passed) and
 * then moves to Succeeded, Failed or Canceled.
 *
 * An operation in state.json:
 *   {"id","kind","action","ws","endpoint","deployment","resource_path",
 *    "api","status","startTime","endTime","not_before_ms","wait_runtime",
 *    "fail_msg","error":{"code","message"}}
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/util.h"
#include "local/host.h"

#define OPS_KEEP 1000

static void
gc_ops(struct amlops_host *h)
{
	cJSON *ops = host_json_obj(h->state, "operations"), *op, *next;
	int n = cJSON_GetArraySize(ops);

	for (op = ops->child; op && n > OPS_KEEP; op = next) {
		next = op->next;
		if (strcmp(host_json_strd(op, "status", ""), "InProgress")) {
			cJSON_Delete(cJSON_DetachItemViaPointer(ops, op));
			n--;
		}
	}
}

const char *
host_op_create(struct amlops_host *h, const struct host_op_spec *spec)
{
	cJSON *ops = host_json_obj(h->state, "operations"), *op, *ep;
	char id[37], now[32];

	gc_ops(h);
	if (amlops_uuid(id) < 0)
		snprintf(id, sizeof(id), "%lld", (long long)amlops_wall_ms());
	amlops_time_rfc3339(now, amlops_wall_ms());
	op = cJSON_CreateObject();
	cJSON_AddStringToObject(op, "id", id);
	cJSON_AddStringToObject(op, "kind", spec->kind);
	cJSON_AddStringToObject(op, "action", spec->action);
	cJSON_AddStringToObject(op, "ws", spec->wskey);
	cJSON_AddStringToObject(op, "endpoint", spec->endpoint);
	if (spec->deployment)
		cJSON_AddStringToObject(op, "deployment", spec->deployment);
	cJSON_AddStringToObject(op, "resource_path", spec->resource_path);
	cJSON_AddStringToObject(op, "api", spec->api_version);
	cJSON_AddStringToObject(op, "status", "InProgress");
	cJSON_AddStringToObject(op, "startTime", now);
	cJSON_AddNumberToObject(
	    op, "not_before_ms", (double)(amlops_wall_ms() + h->op_delay_ms));
	cJSON_AddBoolToObject(op, "wait_runtime", spec->wait_runtime);
	if (h->fail_next_op) {
		cJSON_AddStringToObject(op, "fail_msg", h->fail_next_msg);
		h->fail_next_op = 0;
		free(h->fail_next_msg);
		h->fail_next_msg = NULL;
	}
	cJSON_AddItemToObject(ops, id, op);
	ep = cJSON_GetObjectItem(
	    cJSON_GetObjectItem(
	        cJSON_GetObjectItem(
	            cJSON_GetObjectItem(h->state, "workspaces"), spec->wskey),
	        "endpoints"),
	    spec->endpoint);
	if (ep)
		host_json_set_str(ep, "busy", id);
	return host_json_str(op, "id");
}

void
host_op_headers(struct amlops_host *h, struct host_resp *r, const char *op_id,
    const char *api_version, int with_async)
{
	cJSON *op =
	    cJSON_GetObjectItem(host_json_obj(h->state, "operations"), op_id);
	cJSON *ws =
	    cJSON_GetObjectItem(cJSON_GetObjectItem(h->state, "workspaces"),
	        host_json_str(op, "ws"));
	const char *sub = host_json_str(ws, "subscription");

	if (with_async)
		host_resp_header(r, "Azure-AsyncOperation",
		    "%s/subscriptions/%s/providers/"
		    "Microsoft.MachineLearningServices/locations/%s/"
		    "mfeOperationsStatus/%s?api-version=%s",
		    h->url, sub, AMLOPS_HOST_LOCATION, op_id, api_version);
	host_resp_header(r, "Location",
	    "%s/subscriptions/%s/providers/Microsoft.MachineLearningServices/"
	    "locations/%s/mfeOperationResults/%s?api-version=%s",
	    h->url, sub, AMLOPS_HOST_LOCATION, op_id, api_version);
	host_resp_header(r, "Retry-After", "%d", h->retry_after);
	host_resp_header(r, "x-ms-async-operation-timeout", "PT1H");
}

static cJSON *
op_endpoint(struct amlops_host *h, cJSON *op, cJSON **ws_out)
{
	cJSON *ws =
	    cJSON_GetObjectItem(cJSON_GetObjectItem(h->state, "workspaces"),
	        host_json_str(op, "ws"));

	if (ws_out)
		*ws_out = ws;
	return cJSON_GetObjectItem(cJSON_GetObjectItem(ws, "endpoints"),
	    host_json_str(op, "endpoint"));
}

void
host_op_get(struct amlops_host *h, const struct host_req *req, int results,
    const char *id, struct host_resp *r)
{
	cJSON *op = cJSON_GetObjectItemCaseSensitive(
	    host_json_obj(h->state, "operations"), id);
	cJSON *body, *ep, *dep = NULL, *ws;
	const char *status, *dname;

	if (!op) {
		host_resp_error(r, 404, "ResourceNotFound", NULL,
		    "operation '%s' not found", id);
		return;
	}
	status = host_json_str(op, "status");
	if (!results) {
		body = cJSON_CreateObject();
		cJSON_AddStringToObject(body, "id", req->path);
		cJSON_AddStringToObject(body, "name", id);
		cJSON_AddStringToObject(body, "status", status);
		cJSON_AddStringToObject(
		    body, "startTime", host_json_str(op, "startTime"));
		if (host_json_str(op, "endTime"))
			cJSON_AddStringToObject(
			    body, "endTime", host_json_str(op, "endTime"));
		if (cJSON_GetObjectItem(op, "error"))
			cJSON_AddItemToObject(body, "error",
			    cJSON_Duplicate(
			        cJSON_GetObjectItem(op, "error"), 1));
		host_resp_json(r, 200, body);
		if (!strcmp(status, "InProgress"))
			host_resp_header(
			    r, "Retry-After", "%d", h->retry_after);
		return;
	}
	if (!strcmp(status, "InProgress")) {
		r->status = 202;
		host_op_headers(h, r, id, req->api_version, 0);
		return;
	}
	if (strcmp(status, "Succeeded")) {
		cJSON *err = cJSON_GetObjectItem(op, "error");
		host_resp_error(r, 400,
		    host_json_strd(err, "code", "OperationFailed"), NULL, "%s",
		    host_json_strd(err, "message", "the operation failed"));
		return;
	}
	if (!strcmp(host_json_str(op, "action"), "delete") ||
	    !strcmp(host_json_str(op, "kind"), "keys")) {
		r->status = 204;
		return;
	}
	ep = op_endpoint(h, op, &ws);
	if ((dname = host_json_str(op, "deployment")))
		dep = cJSON_GetObjectItem(
		    cJSON_GetObjectItem(ep, "deployments"), dname);
	if (!ep || (dname && !dep)) {
		r->status = 204;
		return;
	}
	host_resp_json(r, 200, host_render(h, ws, ep, dep));
}

static void
op_finish(struct amlops_host *h, cJSON *op, cJSON *ep, const char *status,
    const char *code, const char *msg)
{
	char now[32];
	cJSON *err;
	const char *dname = host_json_str(op, "deployment");
	char *resource;

	amlops_time_rfc3339(now, amlops_wall_ms());
	host_json_set_str(op, "status", status);
	host_json_set_str(op, "endTime", now);
	if (code) {
		err = cJSON_CreateObject();
		cJSON_AddStringToObject(err, "code", code);
		cJSON_AddStringToObject(err, "message", msg);
		host_json_set(op, "error", err);
	}
	if (ep &&
	    !strcmp(host_json_strd(ep, "busy", ""), host_json_str(op, "id")))
		host_json_set(ep, "busy", cJSON_CreateNull());
	resource = dname ? amlops_xasprintf("endpoint/%s/deployment/%s",
	                       host_json_str(op, "endpoint"), dname)
	                 : amlops_xasprintf(
	                       "endpoint/%s", host_json_str(op, "endpoint"));
	log_info("operation=%s kind=%s action=%s resource=%s status=%s",
	    host_json_str(op, "id"), host_json_str(op, "kind"),
	    host_json_str(op, "action"), resource, status);
	if (host_state_save(h) < 0)
		log_warnx("state=save-failed error=\"%s\"", amlops_err_last());
	host_oplog(h, "operation", NULL, NULL, resource, 0,
	    host_json_str(op, "id"), status, code ? msg : NULL, ep);
	free(resource);
}

static void
set_state(cJSON *res, const char *state)
{
	host_json_set_str(
	    host_json_obj(host_json_obj(res, "resource"), "properties"),
	    "provisioningState", state);
}

/* DIR/deployments/EP[/DEP]: logs and model links of what was deleted. */
static void
remove_folder(struct amlops_host *h, const char *ep, const char *dep)
{
	char *path =
	    dep ? amlops_xasprintf("%s/deployments/%s/%s", h->dir, ep, dep)
	        : amlops_xasprintf("%s/deployments/%s", h->dir, ep);

	if (host_rm_tree(path) < 0 && errno != ENOENT)
		log_warn("cannot remove '%s'", path);
	free(path);
}

static void
tick_one(struct amlops_host *h, cJSON *op)
{
	cJSON *ws, *ep = op_endpoint(h, op, &ws), *deps, *dep = NULL;
	const char *kind = host_json_str(op, "kind");
	const char *action = host_json_str(op, "action");
	const char *dname = host_json_str(op, "deployment");
	const char *fail = host_json_str(op, "fail_msg");
	enum amlops_runtime_state st;
	char *why = NULL;

	if (!ep) {
		op_finish(h, op, NULL, "Canceled", "Canceled",
		    "the endpoint was deleted while the operation ran");
		return;
	}
	deps = host_json_obj(ep, "deployments");
	if (dname && !(dep = cJSON_GetObjectItem(deps, dname))) {
		op_finish(h, op, ep, "Canceled", "Canceled",
		    "the deployment was deleted while the operation ran");
		return;
	}
	if (amlops_wall_ms() < (int64_t)cJSON_GetNumberValue(
	                           cJSON_GetObjectItem(op, "not_before_ms")))
		return;
	if (fail) {
		if (dep && strcmp(action, "delete"))
			amlops_runtime_remove(h->rt, ep->string, dep->string);
		if (strcmp(kind, "keys"))
			set_state(dep ? dep : ep, "Failed");
		op_finish(h, op, ep, "Failed", "InternalServerError", fail);
		return;
	}
	if (!strcmp(kind, "deployment") && !strcmp(action, "delete")) {
		amlops_runtime_remove(h->rt, ep->string, dep->string);
		remove_folder(h, ep->string, dep->string);
		cJSON_Delete(cJSON_DetachItemViaPointer(deps, dep));
		op_finish(h, op, ep, "Succeeded", NULL, NULL);
		return;
	}
	if (!strcmp(kind, "endpoint") && !strcmp(action, "delete")) {
		amlops_runtime_remove_endpoint(h->rt, ep->string);
		remove_folder(h, ep->string, NULL);
		cJSON_Delete(cJSON_DetachItemViaPointer(
		    cJSON_GetObjectItem(ws, "endpoints"), ep));
		op_finish(h, op, NULL, "Succeeded", NULL, NULL);
		return;
	}
	if (!strcmp(kind, "deployment")) {
		st = amlops_runtime_status(
		    h->rt, ep->string, dep->string, &why, NULL);
		if (st == AMLOPS_RUNTIME_STARTING)
			return;
		if (st == AMLOPS_RUNTIME_READY) {
			set_state(dep, "Succeeded");
			op_finish(h, op, ep, "Succeeded", NULL, NULL);
		} else {
			set_state(dep, "Failed");
			op_finish(h, op, ep, "Failed", "ResourceNotReady",
			    why ? why
			        : "the runtime does not know the deployment");
		}
		free(why);
		return;
	}
	if (!strcmp(kind, "endpoint"))
		set_state(ep, "Succeeded");
	op_finish(h, op, ep, "Succeeded", NULL, NULL);
}

static void *
ticker(void *arg)
{
	struct amlops_host *h = arg;
	struct timespec ts;
	cJSON *op, *next;

	pthread_mutex_lock(&h->mu);
	while (!h->stopping) {
		for (op = host_json_obj(h->state, "operations")->child; op;
		     op = next) {
			next = op->next;
			if (!strcmp(
			        host_json_strd(op, "status", ""), "InProgress"))
				tick_one(h, op);
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&h->cond, &h->mu, &ts);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

int
host_ticker_start(struct amlops_host *h)
{
	int rc;

	if ((rc = pthread_create(&h->ticker, NULL, ticker, h)) != 0) {
		errno = rc;
		return amlops_err_sys(
		    AMLOPS_ERROR, "cannot start the operations thread");
	}
	h->ticker_started = 1;
	return 0;
}

void
host_ticker_stop(struct amlops_host *h)
{
	if (!h->ticker_started)
		return;
	pthread_mutex_lock(&h->mu);
	h->stopping = 1;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->ticker, NULL);
	h->ticker_started = 0;
}

static size_t
routes(struct amlops_runtime_route **out, cJSON *map)
{
	struct amlops_runtime_route *r;
	cJSON *v;
	size_t n = 0;

	r = amlops_xcalloc((size_t)cJSON_GetArraySize(map) + 1, sizeof(*r));
	cJSON_ArrayForEach(v, map)
	{
		r[n].deployment = v->string;
		r[n].percent = v->valueint;
		n++;
	}
	*out = r;
	return n;
}

int
host_push_endpoint(struct amlops_host *h, cJSON *ep)
{
	struct amlops_runtime_endpoint re = {0};
	struct amlops_runtime_route *traffic = NULL, *mirror = NULL;
	cJSON *props =
	          host_json_obj(host_json_obj(ep, "resource"), "properties"),
	      *keys = host_json_obj(ep, "keys"), *t;
	const char *mode = host_json_str(props, "authMode");
	int error;

	re.name = ep->string;
	re.auth = mode && !strcmp(mode, "Key") ? AMLOPS_RUNTIME_AUTH_KEY
	                                       : AMLOPS_RUNTIME_AUTH_TOKEN;
	re.primary_key = host_json_str(keys, "primaryKey");
	re.secondary_key = host_json_str(keys, "secondaryKey");
	re.ntraffic = routes(&traffic, host_json_obj(props, "traffic"));
	re.traffic = traffic;
	re.nmirror = routes(&mirror, host_json_obj(props, "mirrorTraffic"));
	re.mirror = mirror;
	if ((error = amlops_runtime_set_endpoint(h->rt, &re)) < 0)
		goto done;
	cJSON_ArrayForEach(t, cJSON_GetObjectItem(ep, "tokens"))
	{
		int64_t exp = (int64_t)cJSON_GetNumberValue(
		    cJSON_GetObjectItem(t, "expires_ms"));
		if (exp > amlops_wall_ms() &&
		    (error = amlops_runtime_add_token(h->rt, ep->string,
		         host_json_str(t, "token"), exp)) < 0)
			goto done;
	}
done:
	free(traffic);
	free(mirror);
	return error;
}

int
host_push_deployment(struct amlops_host *h, cJSON *ep, cJSON *dep)
{
	struct amlops_runtime_deployment d = {0};
	cJSON *rt = host_json_obj(dep, "runtime");

	d.endpoint = ep->string;
	d.name = dep->string;
	d.code_dir = host_json_str(rt, "code_dir");
	d.scoring_script = host_json_str(rt, "scoring_script");
	d.model_dir = host_json_str(rt, "model_dir");
	d.instance_count =
	    cJSON_GetObjectItem(rt, "instance_count")
	        ? cJSON_GetObjectItem(rt, "instance_count")->valueint
	        : 1;
	d.env = cJSON_GetObjectItem(rt, "env");
	d.request_timeout_ms = (int)cJSON_GetNumberValue(
	    cJSON_GetObjectItem(rt, "request_timeout_ms"));
	d.max_concurrent_per_instance = (int)cJSON_GetNumberValue(
	    cJSON_GetObjectItem(rt, "max_concurrent_per_instance"));
	d.max_queue_wait_ms = (int)cJSON_GetNumberValue(
	    cJSON_GetObjectItem(rt, "max_queue_wait_ms"));
	d.log_dir = host_json_str(rt, "log_dir");
	if (!d.code_dir || !d.scoring_script || !d.log_dir)
		return amlops_err_set(AMLOPS_EINVALID,
		    "deployment '%s' has no recorded code or log folder",
		    dep->string);
	if (amlops_mkdir_p(d.log_dir, 0700) < 0)
		return AMLOPS_ERROR;
	return amlops_runtime_deploy(h->rt, &d);
}
