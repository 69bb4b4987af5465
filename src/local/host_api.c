/*
 * The REST handlers of `amlops host`: the workspace, online endpoints and
 * deployments, keys, tokens, logs, skus and the default datastore, with the
 * paths and JSON shapes of the Azure ML REST API
 * (../shared/reference/azure-ml-rest/). Every handler runs with h->mu held.
 *
 * Differences from Azure, on purpose:
 *  - endpoint names are unique across all workspaces of one host, as they
 *    are across an Azure region (the scoring URI has only the name);
 *  - only Managed deployments; instance types are recorded, not enforced;
 *  - PATCH of an endpoint also accepts properties.traffic, mirrorTraffic
 *    and description next to tags and identity.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/util.h"
#include "local/host.h"

#define MMLS "Microsoft.MachineLearningServices"
#define LOG_MAX (8u << 20)

static int
seg_is(const struct host_req *req, size_t i, const char *s)
{
	return i < req->nseg && !strcasecmp(req->seg[i], s);
}

static void
not_allowed(const struct host_req *req, struct host_resp *r)
{
	host_resp_error(r, 405, "MethodNotAllowed", NULL,
	    "method '%s' is not allowed on '%s'", req->method, req->path);
}

static void
no_route(const struct host_req *req, struct host_resp *r)
{
	host_resp_error(r, 404, "NotFound", NULL,
	    "the path '%s' is not part of the Azure ML REST API this host "
	    "serves",
	    req->path);
}

static int
is_method(const struct host_req *req, const char *m)
{
	return !strcmp(req->method, m);
}

/* Parses the body as a JSON object; sets a 400 and returns NULL if not. */
static cJSON *
parse_body(const struct host_req *req, struct host_resp *r)
{
	const char *end = NULL;
	cJSON *j;

	if (!req->body_len) {
		host_resp_error(r, 400, "InvalidRequestContent", NULL,
		    "the request content is empty; a JSON object is required");
		return NULL;
	}
	j = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, 0);
	if (!j) {
		host_resp_error(r, 400, "InvalidRequestContent", NULL,
		    "the request content is not valid JSON (at byte %zu)",
		    end ? (size_t)(end - req->body) : (size_t)0);
		return NULL;
	}
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		host_resp_error(r, 400, "InvalidRequestContent", NULL,
		    "the request content must be a JSON object");
		return NULL;
	}
	return j;
}

/* Azure's rule for endpoint and deployment names. */
static int
name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 3 || n > 32 || !isalpha((unsigned char)s[0]) || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return 0;
	return 1;
}

static cJSON *
system_data(const cJSON *old)
{
	cJSON *sd = cJSON_CreateObject();
	char now[32];

	amlops_time_rfc3339(now, amlops_wall_ms());
	cJSON_AddStringToObject(
	    sd, "createdAt", host_json_strd(old, "createdAt", now));
	cJSON_AddStringToObject(sd, "createdBy", "amlops host");
	cJSON_AddStringToObject(sd, "createdByType", "Application");
	cJSON_AddStringToObject(sd, "lastModifiedAt", now);
	cJSON_AddStringToObject(sd, "lastModifiedBy", "amlops host");
	cJSON_AddStringToObject(sd, "lastModifiedByType", "Application");
	return sd;
}

static cJSON *
props_of(cJSON *entry)
{
	return host_json_obj(host_json_obj(entry, "resource"), "properties");
}

static const char *
state_of(cJSON *entry)
{
	return host_json_strd(props_of(entry), "provisioningState", "");
}

cJSON *
host_render(struct amlops_host *h, cJSON *ws, cJSON *ep, cJSON *dep)
{
	cJSON *out, *props;
	const char *base;
	char *u, *s;

	if (dep)
		return cJSON_Duplicate(cJSON_GetObjectItem(dep, "resource"), 1);
	out = cJSON_Duplicate(cJSON_GetObjectItem(ep, "resource"), 1);
	props = host_json_obj(out, "properties");
	base = amlops_runtime_base_url(h->rt);
	u = amlops_xasprintf("%s/endpoints/%s/score", base, ep->string);
	s = amlops_xasprintf("%s/endpoints/%s/swagger.json", base, ep->string);
	host_json_set_str(props, "scoringUri", u);
	host_json_set_str(props, "swaggerUri", s);
	free(u);
	free(s);
	return out;
}

static cJSON *
find_ep(cJSON *ws, const char *name)
{
	return cJSON_GetObjectItem(cJSON_GetObjectItem(ws, "endpoints"), name);
}

static void
ep_not_found(cJSON *ws, const char *name, struct host_resp *r)
{
	host_resp_error(r, 404, "ResourceNotFound", NULL,
	    "online endpoint '%s' not found in workspace '%s'", name,
	    host_json_str(ws, "workspace"));
}

/* 409 when an operation on the endpoint or its deployments is running. */
static int
ep_busy(cJSON *ep, struct host_resp *r)
{
	const char *busy = host_json_str(ep, "busy");

	if (busy) {
		host_resp_error(r, 409, "Conflict", NULL,
		    "online endpoint '%s' has an operation in progress "
		    "(operation '%s'); retry when it ends",
		    ep->string, busy);
		return 1;
	}
	if (!strcmp(state_of(ep), "Deleting")) {
		host_resp_error(r, 409, "Conflict", NULL,
		    "online endpoint '%s' is being deleted", ep->string);
		return 1;
	}
	return 0;
}

static int
random_hex(char *out, size_t nbytes)
{
	unsigned char raw[64];
	size_t i;

	if (nbytes > sizeof(raw) || amlops_random(raw, nbytes) < 0)
		return -1;
	for (i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

static void
new_key(cJSON *keys, const char *which, const char *value)
{
	char hex[65];

	if (!value) {
		if (random_hex(hex, 32) < 0)
			abort();
		value = hex;
	}
	host_json_set_str(keys, which, value);
}

/*
 * Checks a traffic map: integers 0..max to deployments of `ep` that are
 * Succeeded, summing to `sum` (or 0). `what` is "traffic" or
 * "mirrorTraffic".
 */
static int
check_traffic(cJSON *ep, const char *ep_name, const cJSON *map,
    const char *what, int max_sum, int exact, struct host_resp *r)
{
	cJSON *deps = ep ? cJSON_GetObjectItem(ep, "deployments") : NULL;
	const cJSON *v;
	cJSON *dep;
	char target[160];
	int sum = 0;

	if (!map || cJSON_IsNull(map))
		return 0;
	if (!cJSON_IsObject(map)) {
		snprintf(target, sizeof(target), "properties.%s", what);
		host_resp_error(r, 400, "BadArgument", target,
		    "'%s' must be an object of deployment names to percents",
		    target);
		return -1;
	}
	cJSON_ArrayForEach(v, map)
	{
		snprintf(target, sizeof(target), "properties.%s.%s", what,
		    v->string);
		if (!cJSON_IsNumber(v) ||
		    v->valuedouble != (double)v->valueint || v->valueint < 0 ||
		    v->valueint > 100) {
			host_resp_error(r, 400, "BadArgument", target,
			    "'%s' must be an integer from 0 to 100", target);
			return -1;
		}
		sum += v->valueint;
		if (!(dep = cJSON_GetObjectItem(deps, v->string))) {
			host_resp_error(r, 400, "BadArgument", target,
			    "%s refers to deployment '%s', which does not "
			    "exist in endpoint '%s'",
			    what, v->string, ep_name);
			return -1;
		}
		if (v->valueint > 0 && strcmp(state_of(dep), "Succeeded")) {
			host_resp_error(r, 400, "BadArgument", target,
			    "cannot send %s to deployment '%s': its "
			    "provisioningState is '%s', not 'Succeeded'",
			    what, dep->string, state_of(dep));
			return -1;
		}
	}
	snprintf(target, sizeof(target), "properties.%s", what);
	if (exact && sum != 0 && sum != max_sum) {
		host_resp_error(r, 400, "BadArgument", target,
		    "traffic values must sum to 100 (or all be 0), not %d",
		    sum);
		return -1;
	}
	if (!exact && sum > max_sum) {
		host_resp_error(r, 400, "BadArgument", target,
		    "mirrorTraffic values must sum to at most %d, not %d",
		    max_sum, sum);
		return -1;
	}
	return 0;
}

static int
check_string_map(const cJSON *map, const char *target, struct host_resp *r)
{
	const cJSON *v;

	if (!map || cJSON_IsNull(map))
		return 0;
	if (!cJSON_IsObject(map)) {
		host_resp_error(r, 400, "BadArgument", target,
		    "'%s' must be an object of strings", target);
		return -1;
	}
	cJSON_ArrayForEach(v, map)
	{
		if (!cJSON_IsString(v)) {
			host_resp_error(r, 400, "BadArgument", target,
			    "'%s.%s' must be a string", target, v->string);
			return -1;
		}
	}
	return 0;
}

static const char *
auth_mode(const char *s)
{
	if (!s)
		return NULL;
	if (!strcasecmp(s, "Key"))
		return "Key";
	if (!strcasecmp(s, "AMLToken"))
		return "AMLToken";
	if (!strcasecmp(s, "AADToken"))
		return "AADToken";
	return NULL;
}

static void
log_request(struct amlops_host *h, const struct host_req *req,
    struct host_resp *r, const char *ep_name, const char *dep_name)
{
	char *res = dep_name ? amlops_xasprintf("endpoint/%s/deployment/%s",
	                           ep_name, dep_name)
	                     : amlops_xasprintf("endpoint/%s", ep_name);
	cJSON *ep = host_state_find_endpoint(h, ep_name, NULL);

	host_oplog(h, "request", req->method, req->path, res, r->status,
	    r->op_id[0] ? r->op_id : NULL, NULL,
	    r->status >= 400 && r->json
	        ? host_json_str(
	              cJSON_GetObjectItem(r->json, "error"), "message")
	        : NULL,
	    ep);
	free(res);
}

static int
save(struct amlops_host *h, struct host_resp *r)
{
	if (host_state_save(h) < 0) {
		host_resp_error(r, 500, "InternalServerError", NULL,
		    "cannot save the state: %s", amlops_err_last());
		return -1;
	}
	return 0;
}

static void
start_op(struct amlops_host *h, const struct host_req *req, cJSON *ws,
    cJSON *ep, const char *dep, const char *kind, const char *action,
    int wait_runtime, struct host_resp *r, int with_async)
{
	struct host_op_spec spec = {0};
	const char *id;

	spec.kind = kind;
	spec.action = action;
	spec.wskey = ws->string;
	spec.endpoint = ep->string;
	spec.deployment = dep;
	spec.resource_path = req->path;
	spec.api_version = req->api_version;
	spec.wait_runtime = wait_runtime;
	id = host_op_create(h, &spec);
	snprintf(r->op_id, sizeof(r->op_id), "%s", id);
	host_op_headers(h, r, id, req->api_version, with_async);
}

/* Endpoints */

static int
apply_endpoint_body(cJSON *ep, const char *name, cJSON *res, cJSON *body,
    int patch, struct host_resp *r)
{
	cJSON *bprops = cJSON_GetObjectItem(body, "properties");
	cJSON *props = host_json_obj(res, "properties"), *v;
	const char *mode;

	if (!patch && !cJSON_IsString(cJSON_GetObjectItem(body, "location"))) {
		host_resp_error(r, 400, "LocationRequired", "location",
		    "the 'location' property is required");
		return -1;
	}
	if (!patch && !cJSON_IsObject(bprops)) {
		host_resp_error(r, 400, "BadArgument", "properties",
		    "the 'properties' object is required");
		return -1;
	}
	if (patch && bprops && !cJSON_IsObject(bprops)) {
		host_resp_error(r, 400, "BadArgument", "properties",
		    "'properties' must be an object");
		return -1;
	}
	if (check_string_map(cJSON_GetObjectItem(body, "tags"), "tags", r) < 0)
		return -1;
	v = cJSON_GetObjectItem(bprops, "authMode");
	if (!patch || v) {
		if (!v) {
			host_resp_error(r, 400, "BadArgument",
			    "properties.authMode",
			    "'properties.authMode' is required ('Key', "
			    "'AMLToken' or 'AADToken')");
			return -1;
		}
		if (!(mode = auth_mode(cJSON_GetStringValue(v)))) {
			host_resp_error(r, 400, "BadArgument",
			    "properties.authMode",
			    "'properties.authMode' must be 'Key', 'AMLToken' "
			    "or 'AADToken'");
			return -1;
		}
		host_json_set_str(props, "authMode", mode);
	}
	v = cJSON_GetObjectItem(bprops, "description");
	if (v && !cJSON_IsString(v) && !cJSON_IsNull(v)) {
		host_resp_error(r, 400, "BadArgument", "properties.description",
		    "'properties.description' must be a string");
		return -1;
	}
	if (check_string_map(cJSON_GetObjectItem(bprops, "properties"),
	        "properties.properties", r) < 0)
		return -1;
	if (check_traffic(ep, name, cJSON_GetObjectItem(bprops, "traffic"),
	        "traffic", 100, 1, r) < 0)
		return -1;
	if (check_traffic(ep, name,
	        cJSON_GetObjectItem(bprops, "mirrorTraffic"), "mirrorTraffic",
	        50, 0, r) < 0)
		return -1;
	cJSON_ArrayForEach(v, cJSON_GetObjectItem(bprops, "mirrorTraffic"))
	{
		cJSON *live_map = cJSON_GetObjectItem(bprops, "traffic");
		cJSON *live;

		if (!live_map)
			live_map = cJSON_GetObjectItem(props, "traffic");
		live = cJSON_GetObjectItem(live_map, v->string);
		if (v->valueint > 0 && live && live->valueint > 0) {
			host_resp_error(r, 400, "BadArgument",
			    "properties.mirrorTraffic",
			    "deployment '%s' cannot get both live and "
			    "mirrored traffic",
			    v->string);
			return -1;
		}
	}

	/* valid: copy it over */
	if ((v = cJSON_GetObjectItem(body, "location")) && !patch)
		host_json_set_str(res, "location", v->valuestring);
	if ((v = cJSON_GetObjectItem(body, "tags")))
		host_json_set(res, "tags", cJSON_Duplicate(v, 1));
	else if (!patch)
		host_json_set(res, "tags", cJSON_CreateObject());
	if ((v = cJSON_GetObjectItem(body, "kind")) && cJSON_IsString(v))
		host_json_set_str(res, "kind", v->valuestring);
	else if (!cJSON_GetObjectItem(res, "kind"))
		host_json_set_str(res, "kind", "Managed");
	if ((v = cJSON_GetObjectItem(body, "sku")))
		host_json_set(res, "sku", cJSON_Duplicate(v, 1));
	if ((v = cJSON_GetObjectItem(body, "identity")) && cJSON_IsObject(v))
		host_json_set(res, "identity", cJSON_Duplicate(v, 1));
	if (!cJSON_GetObjectItem(res, "identity")) {
		cJSON *id = cJSON_CreateObject();
		char uuid[37];
		if (amlops_uuid(uuid) < 0)
			abort();
		cJSON_AddStringToObject(id, "type", "SystemAssigned");
		cJSON_AddStringToObject(id, "principalId", uuid);
		cJSON_AddStringToObject(id, "tenantId", AMLOPS_HOST_LOCAL_SUB);
		host_json_set(res, "identity", id);
	}
	if ((v = cJSON_GetObjectItem(bprops, "description")))
		host_json_set(props, "description", cJSON_Duplicate(v, 1));
	if ((v = cJSON_GetObjectItem(bprops, "properties")))
		host_json_set(props, "properties", cJSON_Duplicate(v, 1));
	else if (!cJSON_GetObjectItem(props, "properties"))
		host_json_set(props, "properties", cJSON_CreateObject());
	/*
	 * A body without traffic (or with null) keeps the endpoint's
	 * traffic: a metadata update must never zero it by omission.
	 */
	if ((v = cJSON_GetObjectItem(bprops, "traffic")) && !cJSON_IsNull(v))
		host_json_set(props, "traffic", cJSON_Duplicate(v, 1));
	else if (!cJSON_GetObjectItem(props, "traffic"))
		host_json_set(props, "traffic", cJSON_CreateObject());
	if ((v = cJSON_GetObjectItem(bprops, "mirrorTraffic")) &&
	    !cJSON_IsNull(v))
		host_json_set(props, "mirrorTraffic", cJSON_Duplicate(v, 1));
	else if (!cJSON_GetObjectItem(props, "mirrorTraffic"))
		host_json_set(props, "mirrorTraffic", cJSON_CreateObject());
	host_json_set_str(props, "publicNetworkAccess", "Enabled");
	host_json_set(res, "systemData",
	    system_data(cJSON_GetObjectItem(res, "systemData")));
	return 0;
}

static void
endpoint_put(struct amlops_host *h, const struct host_req *req, cJSON *ws,
    const char *name, struct host_resp *r)
{
	cJSON *body = NULL, *ep, *other_ws = NULL, *res = NULL, *keys;
	char *wsid = NULL;
	int created = 0;

	if (!name_ok(name)) {
		host_resp_error(r, 400, "BadArgument", "name",
		    "'%s' is not a valid endpoint name: 3 to 32 letters, "
		    "digits and '-', starting with a letter and not ending "
		    "with '-'",
		    name);
		return;
	}
	ep = host_state_find_endpoint(h, name, &other_ws);
	if (ep && other_ws != ws) {
		host_resp_error(r, 409, "Conflict", "name",
		    "an online endpoint named '%s' already exists in "
		    "workspace '%s'; endpoint names are unique on a host, as "
		    "in an Azure region",
		    name, host_json_str(other_ws, "workspace"));
		return;
	}
	if (ep && ep_busy(ep, r))
		return;
	if (!(body = parse_body(req, r)))
		return;
	res = ep ? cJSON_Duplicate(cJSON_GetObjectItem(ep, "resource"), 1)
	         : cJSON_CreateObject();
	if (apply_endpoint_body(ep, name, res, body, 0, r) < 0)
		goto done;
	if (!ep) {
		created = 1;
		ep = cJSON_CreateObject();
		cJSON_AddItemToObject(host_json_obj(ws, "endpoints"), name, ep);
		keys = cJSON_AddObjectToObject(ep, "keys");
		new_key(keys, "primaryKey", NULL);
		new_key(keys, "secondaryKey", NULL);
		cJSON_AddObjectToObject(ep, "deployments");
		cJSON_AddArrayToObject(ep, "tokens");
		cJSON_AddNullToObject(ep, "busy");
	}
	wsid = host_ws_id(ws);
	{
		char *id =
		    amlops_xasprintf("%s/onlineEndpoints/%s", wsid, ep->string);
		host_json_set_str(res, "id", id);
		free(id);
	}
	host_json_set_str(res, "name", ep->string);
	host_json_set_str(res, "type", MMLS "/workspaces/onlineEndpoints");
	host_json_set_str(host_json_obj(res, "properties"), "provisioningState",
	    created ? "Creating" : "Updating");
	host_json_set(ep, "resource", res);
	res = NULL;
	if (host_push_endpoint(h, ep) < 0) {
		host_resp_error(r, 500, "InternalServerError", NULL,
		    "cannot configure the scoring front: %s",
		    amlops_err_last());
		if (created)
			cJSON_DeleteItemFromObject(
			    host_json_obj(ws, "endpoints"), name);
		goto done;
	}
	host_resp_json(r, created ? 201 : 200, host_render(h, ws, ep, NULL));
	start_op(h, req, ws, ep, NULL, "endpoint",
	    created ? "create" : "update", 0, r, 1);
	save(h, r);
done:
	cJSON_Delete(res);
	cJSON_Delete(body);
	free(wsid);
}

static void
endpoint_patch(struct amlops_host *h, const struct host_req *req, cJSON *ws,
    cJSON *ep, struct host_resp *r)
{
	cJSON *body, *res = NULL;

	if (ep_busy(ep, r))
		return;
	if (!(body = parse_body(req, r)))
		return;
	res = cJSON_Duplicate(cJSON_GetObjectItem(ep, "resource"), 1);
	if (apply_endpoint_body(ep, ep->string, res, body, 1, r) < 0)
		goto done;
	host_json_set_str(
	    host_json_obj(res, "properties"), "provisioningState", "Updating");
	host_json_set(ep, "resource", res);
	res = NULL;
	if (host_push_endpoint(h, ep) < 0) {
		host_resp_error(r, 500, "InternalServerError", NULL,
		    "cannot configure the scoring front: %s",
		    amlops_err_last());
		goto done;
	}
	r->status = 202;
	start_op(h, req, ws, ep, NULL, "endpoint", "update", 0, r, 1);
	save(h, r);
done:
	cJSON_Delete(res);
	cJSON_Delete(body);
}

static void
endpoint_delete(struct amlops_host *h, const struct host_req *req, cJSON *ws,
    cJSON *ep, struct host_resp *r)
{
	cJSON *dep;

	if (ep_busy(ep, r))
		return;
	host_json_set_str(props_of(ep), "provisioningState", "Deleting");
	cJSON_ArrayForEach(dep, cJSON_GetObjectItem(ep, "deployments"))
	    host_json_set_str(props_of(dep), "provisioningState", "Deleting");
	r->status = 202;
	start_op(h, req, ws, ep, NULL, "endpoint", "delete", 0, r, 1);
	save(h, r);
}

static void
endpoint_keys(struct amlops_host *h, const struct host_req *req, cJSON *ws,
    cJSON *ep, const char *what, struct host_resp *r)
{
	const char *mode = host_json_strd(props_of(ep), "authMode", "");
	cJSON *body = NULL, *keys = host_json_obj(ep, "keys"), *out, *v;
	const char *type, *value;

	if (strcmp(mode, "Key")) {
		host_resp_error(r, 400, "BadArgument", NULL,
		    "keys are only available for endpoints with authMode "
		    "'Key'; endpoint '%s' uses '%s'",
		    ep->string, mode);
		return;
	}
	if (!strcmp(what, "listKeys")) {
		out = cJSON_CreateObject();
		cJSON_AddStringToObject(
		    out, "primaryKey", host_json_str(keys, "primaryKey"));
		cJSON_AddStringToObject(
		    out, "secondaryKey", host_json_str(keys, "secondaryKey"));
		host_resp_json(r, 200, out);
		return;
	}
	if (ep_busy(ep, r))
		return;
	if (!(body = parse_body(req, r)))
		return;
	type = host_json_str(body, "keyType");
	if (!type ||
	    (strcasecmp(type, "Primary") && strcasecmp(type, "Secondary"))) {
		host_resp_error(r, 400, "BadArgument", "keyType",
		    "'keyType' must be 'Primary' or 'Secondary'");
		goto done;
	}
	v = cJSON_GetObjectItem(body, "keyValue");
	value = cJSON_IsString(v) ? v->valuestring : NULL;
	if (v && !cJSON_IsNull(v) &&
	    (!value || strlen(value) < 16 || strlen(value) > 128)) {
		host_resp_error(r, 400, "BadArgument", "keyValue",
		    "'keyValue' must be a string of 16 to 128 characters");
		goto done;
	}
	new_key(keys,
	    strcasecmp(type, "Primary") ? "secondaryKey" : "primaryKey", value);
	if (host_push_endpoint(h, ep) < 0) {
		host_resp_error(r, 500, "InternalServerError", NULL,
		    "cannot configure the scoring front: %s",
		    amlops_err_last());
		goto done;
	}
	r->status = 202;
	start_op(h, req, ws, ep, NULL, "keys", "update", 0, r, 1);
	save(h, r);
done:
	cJSON_Delete(body);
}

static void
endpoint_token(struct amlops_host *h, cJSON *ep, struct host_resp *r)
{
	const char *mode = host_json_strd(props_of(ep), "authMode", "");
	cJSON *tokens, *t, *next, *out;
	int64_t now = amlops_wall_ms(), exp = now + 3600 * 1000;
	char tok[129];

	if (strcmp(mode, "AMLToken")) {
		host_resp_error(r, 400, "BadArgument", NULL,
		    "tokens are only issued for endpoints with authMode "
		    "'AMLToken'; endpoint '%s' uses '%s'",
		    ep->string, mode);
		return;
	}
	if (random_hex(tok, 48) < 0) {
		host_resp_error(
		    r, 500, "InternalServerError", NULL, "cannot make a token");
		return;
	}
	tokens = cJSON_GetObjectItem(ep, "tokens");
	if (!cJSON_IsArray(tokens)) {
		tokens = cJSON_CreateArray();
		host_json_set(ep, "tokens", tokens);
	}
	for (t = tokens->child; t; t = next) {
		next = t->next;
		if (cJSON_GetNumberValue(
		        cJSON_GetObjectItem(t, "expires_ms")) <= (double)now)
			cJSON_Delete(cJSON_DetachItemViaPointer(tokens, t));
	}
	t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "token", tok);
	cJSON_AddNumberToObject(t, "expires_ms", (double)exp);
	cJSON_AddItemToArray(tokens, t);
	if (amlops_runtime_add_token(h->rt, ep->string, tok, exp) < 0) {
		host_resp_error(r, 500, "InternalServerError", NULL,
		    "cannot hand the token to the scoring front: %s",
		    amlops_err_last());
		return;
	}
	if (save(h, r) < 0)
		return;
	out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "accessToken", tok);
	cJSON_AddNumberToObject(out, "expiryTimeUtc", (double)(exp / 1000));
	cJSON_AddNumberToObject(
	    out, "refreshAfterTimeUtc", (double)((now + 1800 * 1000) / 1000));
	cJSON_AddStringToObject(out, "tokenType", "Bearer");
	host_resp_json(r, 200, out);
}

/* Deployments */

static int
get_duration(const cJSON *obj, const char *key, const char *target, int64_t def,
    int64_t *out, struct host_resp *r)
{
	const cJSON *v = cJSON_GetObjectItem(obj, key);

	*out = def;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) ||
	    host_parse_duration_ms(out, v->valuestring) < 0 || *out <= 0) {
		host_resp_error(r, 400, "BadArgument", target,
		    "'%s' must be a positive ISO 8601 duration such as 'PT5S', "
		    "not %s",
		    target,
		    cJSON_IsString(v) ? v->valuestring : "a non-string");
		return -1;
	}
	return 0;
}

/*
 * A probe as ProbeSettings describes it: ISO 8601 durations and positive
 * thresholds. The local runtime does not probe; the values are kept.
 */
static int
check_probe(const cJSON *props, const char *name, struct host_resp *r)
{
	static const char *const durations[] = {
	    "initialDelay", "period", "timeout"};
	static const char *const counts[] = {
	    "failureThreshold", "successThreshold"};
	const cJSON *probe = cJSON_GetObjectItem(props, name), *v;
	char target[96];
	int64_t ms;
	size_t i;

	if (!probe || cJSON_IsNull(probe))
		return 0;
	snprintf(target, sizeof(target), "properties.%s", name);
	if (!cJSON_IsObject(probe)) {
		host_resp_error(r, 400, "BadArgument", target,
		    "'%s' must be an object", target);
		return -1;
	}
	for (i = 0; i < AMLOPS_ARRAY_SIZE(durations); i++) {
		snprintf(target, sizeof(target), "properties.%s.%s", name,
		    durations[i]);
		if (get_duration(probe, durations[i], target, 0, &ms, r) < 0)
			return -1;
	}
	for (i = 0; i < AMLOPS_ARRAY_SIZE(counts); i++) {
		v = cJSON_GetObjectItem(probe, counts[i]);
		snprintf(target, sizeof(target), "properties.%s.%s", name,
		    counts[i]);
		if (v && (!cJSON_IsNumber(v) || v->valueint < 1 ||
		             v->valuedouble != (double)v->valueint)) {
			host_resp_error(r, 400, "BadArgument", target,
			    "'%s' must be a positive integer", target);
			return -1;
		}
	}
	return 0;
}

/* Rejects absolute paths and any ".." component. */
static int
rel_path_ok(const char *p)
{
	const char *s = p;
	size_t n;

	if (!*p || *p == '/')
		return 0;
	while (*s) {
		n = strcspn(s, "/");
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return 0;
		s += n;
		if (*s == '/')
			s++;
	}
	return 1;
}

static int
rm_rf_link(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0 && unlink(path) < 0)
		return amlops_err_sys(AMLOPS_ERROR, "cannot remove '%s'", path);
	return 0;
}

/*
 * Lays out the deployment's folder as Azure does and records the runtime
 * settings in dep["runtime"]. Writes the storage-initializer log.
 */
static int
materialise(struct amlops_host *h, cJSON *ep, cJSON *dep, cJSON *code,
    const char *script, cJSON *model, cJSON *env, const cJSON *props,
    int instances, int64_t timeout_ms, int64_t queue_ms, int concurrency)
{
	char *base = amlops_xasprintf(
	    "%s/deployments/%s/%s", h->dir, ep->string, dep->string);
	char *logs = amlops_xasprintf("%s/logs", base);
	char *model_dir = NULL, *link = NULL, *slog = NULL;
	const cJSON *envvars;
	struct amlops_buf b = AMLOPS_BUF_INIT;
	cJSON *rt = cJSON_CreateObject(), *mres;
	const char *mpath, *mname, *mver, *envv;
	char now[32];
	int error;

	amlops_time_rfc3339(now, amlops_wall_ms());
	if ((error = amlops_mkdir_p(logs, 0700)) < 0)
		goto done;
	amlops_buf_printf(&b, "%s storage-initializer: deployment %s/%s\n", now,
	    ep->string, dep->string);
	amlops_buf_printf(&b, "%s code: %s version %s from %s, stored at %s\n",
	    now, host_json_str(code, "asset_name"),
	    host_json_str(code, "asset_version"), host_json_str(code, "source"),
	    host_json_str(code, "path"));
	if (model) {
		mpath = host_json_str(model, "path");
		mname = host_json_str(model, "asset_name");
		mver = host_json_str(model, "asset_version");
		model_dir = amlops_xasprintf(
		    "%s/azureml-models/%s/%s", base, mname, mver);
		if ((error = amlops_mkdir_p(model_dir, 0700)) < 0)
			goto done;
		link = amlops_xasprintf(
		    "%s/%s", model_dir, strrchr(mpath, '/') + 1);
		if ((error = rm_rf_link(link)) < 0)
			goto done;
		if (symlink(mpath, link) < 0) {
			error = amlops_err_sys(
			    AMLOPS_ERROR, "cannot link '%s'", link);
			goto done;
		}
		amlops_buf_printf(&b,
		    "%s model: %s version %s from %s, stored at %s, mounted "
		    "at %s (AZUREML_MODEL_DIR)\n",
		    now, mname, mver, host_json_str(model, "source"), mpath,
		    model_dir);
	} else {
		model_dir = amlops_xasprintf("%s/azureml-models", base);
		if ((error = amlops_mkdir_p(model_dir, 0700)) < 0)
			goto done;
		amlops_buf_printf(&b, "%s model: none\n", now);
	}
	if (env) {
		mres =
		    host_json_obj(host_json_obj(env, "resource"), "properties");
		envv = host_json_str(mres, "image");
		amlops_buf_printf(&b,
		    "%s environment: %s version %s; image '%s' ignored: the "
		    "local host runs /usr/bin/python3 with the packages "
		    "installed on this machine\n",
		    now, host_json_str(env, "asset_name"),
		    host_json_str(env, "asset_version"), envv ? envv : "");
	}
	amlops_buf_printf(&b, "%s instances: %d\n", now, instances);
	slog = amlops_xasprintf("%s/storage-initializer.log", base);
	if ((error = amlops_file_write_atomic(slog, b.ptr, b.len, 0600)) < 0)
		goto done;

	cJSON_AddStringToObject(rt, "code_dir", host_json_str(code, "path"));
	cJSON_AddStringToObject(rt, "scoring_script", script);
	cJSON_AddStringToObject(rt, "model_dir", model_dir);
	cJSON_AddNumberToObject(rt, "instance_count", instances);
	envvars = cJSON_GetObjectItem(props, "environmentVariables");
	cJSON_AddItemToObject(rt, "env",
	    cJSON_IsObject(envvars) ? cJSON_Duplicate(envvars, 1)
	                            : cJSON_CreateObject());
	cJSON_AddNumberToObject(rt, "request_timeout_ms", (double)timeout_ms);
	cJSON_AddNumberToObject(rt, "max_queue_wait_ms", (double)queue_ms);
	cJSON_AddNumberToObject(rt, "max_concurrent_per_instance", concurrency);
	cJSON_AddStringToObject(rt, "log_dir", logs);
	cJSON_AddStringToObject(rt, "storage_log", slog);
	host_json_set(dep, "runtime", rt);
	rt = NULL;
done:
	cJSON_Delete(rt);
	amlops_buf_release(&b);
	free(base);
	free(logs);
	free(model_dir);
	free(link);
	free(slog);
	return error;
}

/*
 * The instance count a deployment body's `sku.capacity` asks for into
 * `*capacity` (left as it is when absent); -1 with a 400 answered when it
 * is not an integer from 1 to 20.
 */
static int
sku_capacity(const cJSON *body, int *capacity, struct host_resp *r)
{
	const cJSON *sku = cJSON_GetObjectItem(body, "sku"), *v;

	if (!sku || cJSON_IsNull(sku))
		return 0;
	v = cJSON_GetObjectItem(sku, "capacity");
	if (!cJSON_IsObject(sku) ||
	    (v &&
	        (!cJSON_IsNumber(v) || v->valueint < 1 || v->valueint > 20))) {
		host_resp_error(r, 400, "BadArgument", "sku.capacity",
		    "'sku.capacity' (the instance count) must be an integer "
		    "from 1 to 20");
		return -1;
	}
	if (v)
		*capacity = v->valueint;
	return 0;
}

static void
deployment_put(struct amlops_host *h, const struct host_req *req, cJSON *ws,
    cJSON *ep, const char *name, struct host_resp *r)
{
	cJSON *body = NULL, *bprops, *dep, *res = NULL, *v, *cc, *code,
	      *model = NULL, *env = NULL, *sku, *old_rt = NULL;
	const char *ct, *script, *it, *old_it;
	int64_t timeout_ms, queue_ms;
	int created = 0, capacity = 1, concurrency = 1;
	char *script_path = NULL, *wsid = NULL, *id = NULL;
	struct stat st;

	if (!name_ok(name)) {
		host_resp_error(r, 400, "BadArgument", "name",
		    "'%s' is not a valid deployment name: 3 to 32 letters, "
		    "digits and '-', starting with a letter and not ending "
		    "with '-'",
		    name);
		return;
	}
	if (ep_busy(ep, r))
		return;
	if (!(body = parse_body(req, r)))
		return;
	dep = cJSON_GetObjectItem(host_json_obj(ep, "deployments"), name);
	bprops = cJSON_GetObjectItem(body, "properties");
	if (!cJSON_IsString(cJSON_GetObjectItem(body, "location"))) {
		host_resp_error(r, 400, "LocationRequired", "location",
		    "the 'location' property is required");
		goto done;
	}
	if (!cJSON_IsObject(bprops)) {
		host_resp_error(r, 400, "BadArgument", "properties",
		    "the 'properties' object is required");
		goto done;
	}
	if (check_string_map(cJSON_GetObjectItem(body, "tags"), "tags", r) < 0)
		goto done;
	ct = host_json_str(bprops, "endpointComputeType");
	if (!ct) {
		host_resp_error(r, 400, "BadArgument",
		    "properties.endpointComputeType",
		    "'properties.endpointComputeType' is required "
		    "('Managed')");
		goto done;
	}
	if (strcasecmp(ct, "Managed")) {
		host_resp_error(r, 400, "BadArgument",
		    "properties.endpointComputeType",
		    "endpointComputeType '%s' is not supported: the local "
		    "host runs only 'Managed' deployments",
		    ct);
		goto done;
	}
	if (sku_capacity(body, &capacity, r) < 0)
		goto done;
	cc = cJSON_GetObjectItem(bprops, "codeConfiguration");
	if (!cJSON_IsObject(cc) ||
	    !cJSON_IsString(cJSON_GetObjectItem(cc, "codeId")) ||
	    !cJSON_IsString(cJSON_GetObjectItem(cc, "scoringScript"))) {
		host_resp_error(r, 400, "BadArgument",
		    "properties.codeConfiguration",
		    "'properties.codeConfiguration' with 'codeId' and "
		    "'scoringScript' is required: the local host has no "
		    "no-code (MLflow) deployments");
		goto done;
	}
	if (!(code = host_asset_resolve(h, ws, "codes",
	          host_json_str(cc, "codeId"),
	          "properties.codeConfiguration.codeId", r)))
		goto done;
	script = host_json_str(cc, "scoringScript");
	script_path =
	    amlops_xasprintf("%s/%s", host_json_str(code, "path"), script);
	if (!rel_path_ok(script) || stat(script_path, &st) < 0 ||
	    !S_ISREG(st.st_mode)) {
		host_resp_error(r, 400, "BadArgument",
		    "properties.codeConfiguration.scoringScript",
		    "scoring script '%s' not found in code '%s' version '%s'",
		    script, host_json_str(code, "asset_name"),
		    host_json_str(code, "asset_version"));
		goto done;
	}
	if ((v = cJSON_GetObjectItem(bprops, "model")) && !cJSON_IsNull(v)) {
		if (!cJSON_IsString(v)) {
			host_resp_error(r, 400, "BadArgument",
			    "properties.model",
			    "'properties.model' must be a model id");
			goto done;
		}
		if (!(model = host_asset_resolve(h, ws, "models",
		          v->valuestring, "properties.model", r)))
			goto done;
	}
	if ((v = cJSON_GetObjectItem(bprops, "environmentId")) &&
	    !cJSON_IsNull(v)) {
		if (!cJSON_IsString(v)) {
			host_resp_error(r, 400, "BadArgument",
			    "properties.environmentId",
			    "'properties.environmentId' must be an "
			    "environment id");
			goto done;
		}
		if (!(env = host_asset_resolve(h, ws, "environments",
		          v->valuestring, "properties.environmentId", r)))
			goto done;
	}
	if (check_string_map(
	        cJSON_GetObjectItem(bprops, "environmentVariables"),
	        "properties.environmentVariables", r) < 0)
		goto done;
	v = cJSON_GetObjectItem(bprops, "requestSettings");
	if (v && !cJSON_IsNull(v) && !cJSON_IsObject(v)) {
		host_resp_error(r, 400, "BadArgument",
		    "properties.requestSettings",
		    "'properties.requestSettings' must be an object");
		goto done;
	}
	if (get_duration(v, "requestTimeout",
	        "properties.requestSettings.requestTimeout", 5000, &timeout_ms,
	        r) < 0 ||
	    get_duration(v, "maxQueueWait",
	        "properties.requestSettings.maxQueueWait", 500, &queue_ms,
	        r) < 0)
		goto done;
	if (timeout_ms > 180000) {
		host_resp_error(r, 400, "BadArgument",
		    "properties.requestSettings.requestTimeout",
		    "'properties.requestSettings.requestTimeout' must be at "
		    "most PT180S");
		goto done;
	}
	if ((v = cJSON_GetObjectItem(v, "maxConcurrentRequestsPerInstance"))) {
		if (!cJSON_IsNumber(v) || v->valueint < 1 ||
		    v->valueint > 1000) {
			host_resp_error(r, 400, "BadArgument",
			    "properties.requestSettings."
			    "maxConcurrentRequestsPerInstance",
			    "'maxConcurrentRequestsPerInstance' must be an "
			    "integer from 1 to 1000");
			goto done;
		}
		concurrency = v->valueint;
	}
	if (check_probe(bprops, "livenessProbe", r) < 0 ||
	    check_probe(bprops, "readinessProbe", r) < 0 ||
	    check_probe(bprops, "startupProbe", r) < 0)
		goto done;
	it = host_json_str(bprops, "instanceType");
	old_it = dep ? host_json_str(props_of(dep), "instanceType") : NULL;
	if (dep && old_it && (!it || strcasecmp(it, old_it))) {
		host_resp_error(r, 400, "BadArgument",
		    "properties.instanceType",
		    "'instanceType' cannot be changed in place (from '%s' to "
		    "'%s'); create a new deployment and move the traffic",
		    old_it, it ? it : "");
		goto done;
	}

	/* valid: build the resource */
	if (!dep) {
		created = 1;
		dep = cJSON_CreateObject();
		cJSON_AddItemToObject(
		    host_json_obj(ep, "deployments"), name, dep);
	} else {
		old_rt =
		    cJSON_Duplicate(cJSON_GetObjectItem(dep, "runtime"), 1);
	}
	res = cJSON_CreateObject();
	wsid = host_ws_id(ws);
	id = amlops_xasprintf("%s/onlineEndpoints/%s/deployments/%s", wsid,
	    ep->string, dep->string);
	cJSON_AddStringToObject(res, "id", id);
	cJSON_AddStringToObject(res, "name", dep->string);
	cJSON_AddStringToObject(
	    res, "type", MMLS "/workspaces/onlineEndpoints/deployments");
	cJSON_AddItemToObject(res, "properties", cJSON_Duplicate(bprops, 1));
	v = cJSON_GetObjectItem(res, "properties");
	host_json_set_str(v, "endpointComputeType", "Managed");
	host_json_set_str(
	    v, "provisioningState", created ? "Creating" : "Updating");
	if (!cJSON_GetObjectItem(v, "scaleSettings")) {
		cJSON *ss = cJSON_AddObjectToObject(v, "scaleSettings");
		cJSON_AddStringToObject(ss, "scaleType", "Default");
	}
	{
		cJSON *rs = host_json_obj(v, "requestSettings");
		if (!cJSON_GetObjectItem(
		        rs, "maxConcurrentRequestsPerInstance"))
			cJSON_AddNumberToObject(rs,
			    "maxConcurrentRequestsPerInstance", concurrency);
		if (!cJSON_GetObjectItem(rs, "requestTimeout"))
			cJSON_AddStringToObject(rs, "requestTimeout", "PT5S");
		if (!cJSON_GetObjectItem(rs, "maxQueueWait"))
			cJSON_AddStringToObject(rs, "maxQueueWait", "PT0.5S");
	}
	cJSON_AddItemToObject(res, "systemData",
	    system_data(cJSON_GetObjectItem(
	        cJSON_GetObjectItem(dep, "resource"), "systemData")));
	cJSON_AddItemToObject(res, "tags",
	    cJSON_GetObjectItem(body, "tags")
	        ? cJSON_Duplicate(cJSON_GetObjectItem(body, "tags"), 1)
	        : cJSON_CreateObject());
	cJSON_AddStringToObject(
	    res, "location", host_json_str(body, "location"));
	cJSON_AddStringToObject(
	    res, "kind", host_json_strd(body, "kind", "Managed"));
	if (cJSON_IsObject(cJSON_GetObjectItem(body, "identity")))
		cJSON_AddItemToObject(res, "identity",
		    cJSON_Duplicate(cJSON_GetObjectItem(body, "identity"), 1));
	sku = cJSON_AddObjectToObject(res, "sku");
	cJSON_AddStringToObject(sku, "name",
	    host_json_strd(
	        cJSON_GetObjectItem(body, "sku"), "name", "Default"));
	cJSON_AddNumberToObject(sku, "capacity", capacity);

	if (materialise(h, ep, dep, code, script, model, env, bprops, capacity,
	        timeout_ms, queue_ms, concurrency) < 0 ||
	    host_push_deployment(h, ep, dep) < 0) {
		host_resp_error(r, 500, "InternalServerError", NULL,
		    "cannot start deployment '%s': %s", name,
		    amlops_err_last());
		if (created)
			cJSON_DeleteItemFromObject(
			    host_json_obj(ep, "deployments"), name);
		else if (old_rt) {
			host_json_set(dep, "runtime", old_rt);
			old_rt = NULL;
		}
		goto done;
	}
	host_json_set(dep, "resource", res);
	res = NULL;
	host_resp_json(r, created ? 201 : 200, host_render(h, ws, ep, dep));
	start_op(h, req, ws, ep, dep->string, "deployment",
	    created ? "create" : "update", 1, r, 1);
	save(h, r);
done:
	cJSON_Delete(old_rt);
	cJSON_Delete(res);
	cJSON_Delete(body);
	free(script_path);
	free(wsid);
	free(id);
}

static void
deployment_patch(struct amlops_host *h, const struct host_req *req, cJSON *ws,
    cJSON *ep, cJSON *dep, struct host_resp *r)
{
	cJSON *body, *v, *res;
	int capacity = -1;

	if (ep_busy(ep, r))
		return;
	if (!(body = parse_body(req, r)))
		return;
	if (check_string_map(cJSON_GetObjectItem(body, "tags"), "tags", r) < 0)
		goto done;
	if (sku_capacity(body, &capacity, r) < 0)
		goto done;
	res = host_json_obj(dep, "resource");
	if ((v = cJSON_GetObjectItem(body, "tags")))
		host_json_set(res, "tags", cJSON_Duplicate(v, 1));
	if (capacity > 0) {
		host_json_set(host_json_obj(res, "sku"), "capacity",
		    cJSON_CreateNumber(capacity));
		host_json_set(host_json_obj(dep, "runtime"), "instance_count",
		    cJSON_CreateNumber(capacity));
		if (host_push_deployment(h, ep, dep) < 0) {
			host_resp_error(r, 500, "InternalServerError", NULL,
			    "cannot scale deployment '%s': %s", dep->string,
			    amlops_err_last());
			goto done;
		}
	}
	host_json_set(res, "systemData",
	    system_data(cJSON_GetObjectItem(res, "systemData")));
	host_json_set_str(props_of(dep), "provisioningState", "Updating");
	r->status = 202;
	start_op(h, req, ws, ep, dep->string, "deployment", "update", 1, r, 1);
	save(h, r);
done:
	cJSON_Delete(body);
}

static void
deployment_delete(struct amlops_host *h, const struct host_req *req, cJSON *ws,
    cJSON *ep, cJSON *dep, struct host_resp *r)
{
	cJSON *t = cJSON_GetObjectItem(
	    cJSON_GetObjectItem(props_of(ep), "traffic"), dep->string);
	cJSON *m = cJSON_GetObjectItem(
	    cJSON_GetObjectItem(props_of(ep), "mirrorTraffic"), dep->string);

	if (ep_busy(ep, r))
		return;
	if ((t && t->valueint > 0) || (m && m->valueint > 0)) {
		host_resp_error(r, 400, "BadArgument", NULL,
		    "cannot delete deployment '%s': it receives %d%% of "
		    "endpoint '%s''s %s; set it to 0 first",
		    dep->string,
		    t && t->valueint > 0 ? t->valueint : m->valueint,
		    ep->string,
		    t && t->valueint > 0 ? "traffic" : "mirror traffic");
		return;
	}
	host_json_set_str(props_of(dep), "provisioningState", "Deleting");
	r->status = 202;
	start_op(h, req, ws, ep, dep->string, "deployment", "delete", 0, r, 1);
	save(h, r);
}

static void
deployment_logs(struct amlops_host *h, const struct host_req *req, cJSON *ep,
    cJSON *dep, struct host_resp *r)
{
	struct amlops_buf b = AMLOPS_BUF_INIT, file = AMLOPS_BUF_INIT;
	const char *ct = "InferenceServer", *p;
	cJSON *body = NULL, *v, *out;
	int tail = 0, lines = 0;

	if (req->body_len) {
		if (!(body = parse_body(req, r)))
			return;
		if ((v = cJSON_GetObjectItem(body, "containerType")) &&
		    !cJSON_IsNull(v))
			ct = cJSON_IsString(v) ? v->valuestring : "";
		if ((v = cJSON_GetObjectItem(body, "tail")) &&
		    !cJSON_IsNull(v)) {
			if (!cJSON_IsNumber(v) || v->valueint < 0) {
				host_resp_error(r, 400, "BadArgument", "tail",
				    "'tail' must be a non-negative integer");
				goto done;
			}
			tail = v->valueint;
		}
	}
	amlops_buf_init(&b, LOG_MAX);
	if (!strcasecmp(ct, "InferenceServer")) {
		if (amlops_runtime_logs(
		        h->rt, ep->string, dep->string, tail, &b) < 0) {
			host_resp_error(r, 500, "InternalServerError", NULL,
			    "cannot read the logs: %s", amlops_err_last());
			goto done;
		}
	} else if (!strcasecmp(ct, "StorageInitializer")) {
		if (amlops_file_read(&file,
		        host_json_strd(host_json_obj(dep, "runtime"),
		            "storage_log", "/nonexistent"),
		        LOG_MAX) < 0) {
			amlops_err_clear();
			amlops_buf_puts(&file, "");
		}
		/* the last `tail` lines */
		p = file.ptr ? file.ptr + file.len : NULL;
		if (p && tail > 0) {
			if (p > file.ptr && p[-1] == '\n')
				p--;
			while (p > file.ptr) {
				if (p[-1] == '\n' && ++lines == tail)
					break;
				p--;
			}
			amlops_buf_puts(&b, p);
		} else {
			amlops_buf_puts(&b, amlops_buf_cstr(&file));
		}
	} else {
		host_resp_error(r, 400, "BadArgument", "containerType",
		    "'containerType' must be 'InferenceServer' or "
		    "'StorageInitializer', not '%s'",
		    ct);
		goto done;
	}
	out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "content", amlops_buf_cstr(&b));
	host_resp_json(r, 200, out);
done:
	amlops_buf_release(&b);
	amlops_buf_release(&file);
	cJSON_Delete(body);
}

static void
deployment_skus(struct amlops_host *h, struct host_resp *r)
{
	cJSON *out = cJSON_CreateObject(), *list, *s, *sku, *cap;

	list = cJSON_AddArrayToObject(out, "value");
	s = cJSON_CreateObject();
	cJSON_AddStringToObject(s, "resourceType",
	    "Microsoft.MachineLearning.Services/endpoints/deployments");
	sku = cJSON_AddObjectToObject(s, "sku");
	cJSON_AddStringToObject(sku, "name", "Default");
	cJSON_AddStringToObject(sku, "tier", "Standard");
	cap = cJSON_AddObjectToObject(s, "capacity");
	cJSON_AddNumberToObject(cap, "minimum", 1);
	cJSON_AddNumberToObject(cap, "maximum", 20);
	cJSON_AddNumberToObject(cap, "default", 1);
	cJSON_AddStringToObject(cap, "scaleType", "Manual");
	cJSON_AddItemToArray(list, s);
	host_resp_json(r, 200, out);
}

/* Workspace and datastore */

static void
workspace_get(struct amlops_host *h, cJSON *ws, struct host_resp *r)
{
	cJSON *out = cJSON_CreateObject(), *props, *sku, *id;
	char *wsid = host_ws_id(ws);
	char *disc = amlops_xasprintf("%s/discovery", h->url);

	cJSON_AddStringToObject(out, "id", wsid);
	cJSON_AddStringToObject(out, "name", host_json_str(ws, "workspace"));
	cJSON_AddStringToObject(out, "type", MMLS "/workspaces");
	cJSON_AddStringToObject(out, "location", AMLOPS_HOST_LOCATION);
	cJSON_AddStringToObject(out, "kind", "Default");
	cJSON_AddObjectToObject(out, "tags");
	id = cJSON_AddObjectToObject(out, "identity");
	cJSON_AddStringToObject(id, "type", "SystemAssigned");
	sku = cJSON_AddObjectToObject(out, "sku");
	cJSON_AddStringToObject(sku, "name", "Basic");
	cJSON_AddStringToObject(sku, "tier", "Basic");
	props = cJSON_AddObjectToObject(out, "properties");
	cJSON_AddStringToObject(
	    props, "friendlyName", host_json_str(ws, "workspace"));
	cJSON_AddStringToObject(
	    props, "description", "the local workspace of amlops host");
	cJSON_AddStringToObject(props, "provisioningState", "Succeeded");
	cJSON_AddStringToObject(props, "discoveryUrl", disc);
	cJSON_AddStringToObject(props, "publicNetworkAccess", "Enabled");
	cJSON_AddItemToObject(out, "systemData", system_data(NULL));
	host_resp_json(r, 200, out);
	free(wsid);
	free(disc);
}

static void
datastore(struct amlops_host *h, const struct host_req *req, cJSON *ws,
    int secrets, struct host_resp *r)
{
	cJSON *out = cJSON_CreateObject(), *props, *cred, *sec;
	char *wsid = host_ws_id(ws), *id, *store;
	int blob = h->blob_endpoint != NULL;

	if (secrets) {
		cJSON_AddStringToObject(out, "secretsType", "AccountKey");
		cJSON_AddStringToObject(out, "key", blob ? h->blob_key : "");
		host_resp_json(r, 200, out);
		free(wsid);
		return;
	}
	id = amlops_xasprintf("%s/datastores/workspaceblobstore", wsid);
	store = amlops_xasprintf("file://%s/store", h->dir);
	cJSON_AddStringToObject(out, "id", id);
	cJSON_AddStringToObject(out, "name", "workspaceblobstore");
	cJSON_AddStringToObject(out, "type", MMLS "/workspaces/datastores");
	props = cJSON_AddObjectToObject(out, "properties");
	cJSON_AddStringToObject(props, "description",
	    blob ? "the blob container the host was started with"
	         : "the host's own folder store: register content with "
	           "file:// URIs");
	cJSON_AddObjectToObject(props, "tags");
	cJSON_AddBoolToObject(props, "isDefault", 1);
	if (blob) {
		cJSON_AddNullToObject(props, "properties");
	} else {
		cJSON *p = cJSON_AddObjectToObject(props, "properties");
		cJSON_AddStringToObject(p, "amlops.folderStore", store);
	}
	cred = cJSON_AddObjectToObject(props, "credentials");
	cJSON_AddStringToObject(
	    cred, "credentialsType", blob ? "AccountKey" : "None");
	if (blob) {
		sec = cJSON_AddObjectToObject(cred, "secrets");
		cJSON_AddStringToObject(sec, "secretsType", "AccountKey");
	}
	cJSON_AddStringToObject(props, "datastoreType", "AzureBlob");
	cJSON_AddStringToObject(
	    props, "accountName", blob ? h->blob_account : "amlopslocal");
	cJSON_AddStringToObject(props, "containerName",
	    blob ? h->blob_container : "workspaceblobstore");
	cJSON_AddStringToObject(
	    props, "endpoint", blob ? h->blob_endpoint : store);
	cJSON_AddStringToObject(props, "protocol",
	    blob ? (strncmp(h->blob_endpoint, "https:", 6) ? "http" : "https")
	         : "file");
	cJSON_AddItemToObject(out, "systemData", system_data(NULL));
	host_resp_json(r, 200, out);
	free(wsid);
	free(id);
	free(store);
}

static void
list_endpoints(struct amlops_host *h, cJSON *ws, struct host_resp *r)
{
	cJSON *out = cJSON_CreateObject(), *list, *ep;

	list = cJSON_AddArrayToObject(out, "value");
	cJSON_ArrayForEach(ep, cJSON_GetObjectItem(ws, "endpoints"))
	    cJSON_AddItemToArray(list, host_render(h, ws, ep, NULL));
	host_resp_json(r, 200, out);
}

static void
list_deployments(
    struct amlops_host *h, cJSON *ws, cJSON *ep, struct host_resp *r)
{
	cJSON *out = cJSON_CreateObject(), *list, *dep;

	list = cJSON_AddArrayToObject(out, "value");
	cJSON_ArrayForEach(dep, cJSON_GetObjectItem(ep, "deployments"))
	    cJSON_AddItemToArray(list, host_render(h, ws, ep, dep));
	host_resp_json(r, 200, out);
}

/* .../onlineEndpoints[/NAME[/...]] */
static void
route_endpoints(struct amlops_host *h, const struct host_req *req, cJSON *ws,
    struct host_resp *r)
{
	const char *name = req->nseg > 9 ? req->seg[9] : NULL;
	const char *dname = req->nseg > 11 ? req->seg[11] : NULL;
	const char *verb = req->nseg == 11 ? req->seg[10] : "";
	cJSON *ep = name ? find_ep(ws, name) : NULL, *dep = NULL;
	int mutation = 0;

	if (req->nseg == 9) {
		if (is_method(req, "GET"))
			list_endpoints(h, ws, r);
		else
			not_allowed(req, r);
	} else if (req->nseg == 10) {
		mutation = !is_method(req, "GET");
		if (is_method(req, "PUT"))
			endpoint_put(h, req, ws, name, r);
		else if (!is_method(req, "GET") && !is_method(req, "PATCH") &&
		         !is_method(req, "DELETE"))
			not_allowed(req, r);
		else if (!ep && is_method(req, "DELETE"))
			r->status = 204;
		else if (!ep)
			ep_not_found(ws, name, r);
		else if (is_method(req, "GET"))
			host_resp_json(r, 200, host_render(h, ws, ep, NULL));
		else if (is_method(req, "PATCH"))
			endpoint_patch(h, req, ws, ep, r);
		else
			endpoint_delete(h, req, ws, ep, r);
	} else if (req->nseg == 11 && !strcasecmp(verb, "deployments")) {
		if (!is_method(req, "GET"))
			not_allowed(req, r);
		else if (!ep)
			ep_not_found(ws, name, r);
		else
			list_deployments(h, ws, ep, r);
	} else if (req->nseg == 11 && (!strcasecmp(verb, "listKeys") ||
	                                  !strcasecmp(verb, "regenerateKeys") ||
	                                  !strcasecmp(verb, "token"))) {
		mutation = !strcasecmp(verb, "regenerateKeys");
		if (!is_method(req, "POST"))
			not_allowed(req, r);
		else if (!ep)
			ep_not_found(ws, name, r);
		else if (!strcasecmp(verb, "token"))
			endpoint_token(h, ep, r);
		else
			endpoint_keys(h, req, ws, ep,
			    mutation ? "regenerateKeys" : "listKeys", r);
	} else if (req->nseg < 12 || req->nseg > 13 ||
	           !seg_is(req, 10, "deployments") ||
	           (req->nseg == 13 && !seg_is(req, 12, "getLogs") &&
	               !seg_is(req, 12, "skus"))) {
		no_route(req, r);
	} else if (!ep) {
		ep_not_found(ws, name, r);
	} else {
		dep = cJSON_GetObjectItem(
		    host_json_obj(ep, "deployments"), dname);
		if (req->nseg == 12)
			mutation = !is_method(req, "GET");
		if (req->nseg == 12 && is_method(req, "PUT"))
			deployment_put(h, req, ws, ep, dname, r);
		else if (req->nseg == 12 && !is_method(req, "GET") &&
		         !is_method(req, "PATCH") && !is_method(req, "DELETE"))
			not_allowed(req, r);
		else if (req->nseg == 13 &&
		         !is_method(
		             req, seg_is(req, 12, "getLogs") ? "POST" : "GET"))
			not_allowed(req, r);
		else if (!dep && is_method(req, "DELETE"))
			r->status = 204;
		else if (!dep)
			host_resp_error(r, 404, "ResourceNotFound", NULL,
			    "online deployment '%s' not found in endpoint '%s'",
			    dname, ep->string);
		else if (req->nseg == 13 && seg_is(req, 12, "getLogs"))
			deployment_logs(h, req, ep, dep, r);
		else if (req->nseg == 13)
			deployment_skus(h, r);
		else if (is_method(req, "GET"))
			host_resp_json(r, 200, host_render(h, ws, ep, dep));
		else if (is_method(req, "PATCH"))
			deployment_patch(h, req, ws, ep, dep, r);
		else
			deployment_delete(h, req, ws, ep, dep, r);
	}
	if (mutation)
		log_request(h, req, r, name, req->nseg >= 12 ? dname : NULL);
}

static const char *
asset_type(const char *kind)
{
	if (!strcasecmp(kind, "codes"))
		return "codes";
	if (!strcasecmp(kind, "models"))
		return "models";
	if (!strcasecmp(kind, "environments"))
		return "environments";
	return NULL;
}

/* Everything under .../workspaces/WS. */
static void
route_workspace(struct amlops_host *h, const struct host_req *req, cJSON *ws,
    struct host_resp *r)
{
	const char *kind = req->nseg > 8 ? req->seg[8] : "";
	const char *type = asset_type(kind);
	int secrets = req->nseg == 11;

	if (req->nseg == 8) {
		if (is_method(req, "GET"))
			workspace_get(h, ws, r);
		else
			not_allowed(req, r);
	} else if (!strcasecmp(kind, "onlineEndpoints")) {
		route_endpoints(h, req, ws, r);
	} else if (!strcasecmp(kind, "datastores")) {
		if (req->nseg < 10 || req->nseg > 11 ||
		    strcasecmp(req->seg[9], "workspaceblobstore") ||
		    (secrets && !seg_is(req, 10, "listSecrets")))
			no_route(req, r);
		else if (!is_method(req, secrets ? "POST" : "GET"))
			not_allowed(req, r);
		else
			datastore(h, req, ws, secrets, r);
	} else if (!type || req->nseg < 11 || req->nseg > 12 ||
	           !seg_is(req, 10, "versions")) {
		no_route(req, r);
	} else if (req->nseg == 11) {
		if (is_method(req, "GET"))
			host_asset_get(h, req, ws, type, req->seg[9], NULL, r);
		else
			not_allowed(req, r);
	} else if (is_method(req, "PUT")) {
		host_asset_put(h, req, ws, type, req->seg[9], req->seg[11], r);
	} else if (is_method(req, "GET")) {
		host_asset_get(h, req, ws, type, req->seg[9], req->seg[11], r);
	} else {
		not_allowed(req, r);
	}
}

void
host_api_route(
    struct amlops_host *h, const struct host_req *req, struct host_resp *r)
{
	cJSON *ws, *transient = NULL;

	if (!seg_is(req, 0, "subscriptions") || req->nseg < 2) {
		no_route(req, r);
	} else if (req->nseg == 8 && seg_is(req, 2, "providers") &&
	           seg_is(req, 3, MMLS) && seg_is(req, 4, "locations") &&
	           (seg_is(req, 6, "mfeOperationsStatus") ||
	               seg_is(req, 6, "mfeOperationResults"))) {
		/* /subscriptions/S/providers/MMLS/locations/L/mfeOp.../ID */
		if (is_method(req, "GET"))
			host_op_get(h, req,
			    seg_is(req, 6, "mfeOperationResults"), req->seg[7],
			    r);
		else
			not_allowed(req, r);
	} else if (req->nseg < 8 || !seg_is(req, 2, "resourceGroups") ||
	           !seg_is(req, 4, "providers") || !seg_is(req, 5, MMLS) ||
	           !seg_is(req, 6, "workspaces")) {
		no_route(req, r);
	} else {
		/*
		 * Only a PUT adds a workspace to the state; other requests
		 * see an unknown workspace as an empty one.
		 */
		ws = host_state_ws(h, req->seg[1], req->seg[3], req->seg[7],
		    is_method(req, "PUT"));
		if (!ws)
			ws = transient = host_state_ws_new(
			    req->seg[1], req->seg[3], req->seg[7]);
		route_workspace(h, req, ws, r);
		cJSON_Delete(transient);
	}
}
