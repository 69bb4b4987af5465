/*
 * The ARM backend both targets share: request bodies from the endpoint
 * model, live state back into it, the operations of a step, and asset
 * registration. See amlops/backend.h and arm_int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "amlops/backend.h"
#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/plan.h"
#include "amlops/rest.h"
#include "amlops/util.h"
#include "backend/arm_int.h"

#define MMLS "Microsoft.MachineLearningServices"
#define AMLOPS_ML_SCOPE "https://ml.azure.com/.default"

/* ------------------------------------------------------------------ */
/* Paths and asset ids */

char *
amlops_arm_workspace_path(
    const char *sub, const char *rg, const char *ws, const char *suffix)
{
	return amlops_xasprintf("/subscriptions/%s/resourceGroups/%s/providers/"
	                        "%s/workspaces/%s%s",
	    sub, rg, MMLS, ws, suffix ? suffix : "");
}

char *
amlops_arm_asset_id(const char *ws_path, const char *kind, const char *name,
    const char *version)
{
	return amlops_xasprintf(
	    "%s/%s/%s/versions/%s", ws_path, kind, name, version);
}

int
amlops_arm_asset_parse(char **name, char **version, const char *id)
{
	const char *p, *v;

	*name = *version = NULL;
	if (strncmp(id, "azureml:", 8) == 0) {
		p = id + 8;
		if ((v = strrchr(p, ':')) == NULL || v == p || v[1] == '\0')
			return amlops_err_set(AMLOPS_EINVALID,
			    "'%s' is not azureml:NAME:VERSION", id);
		*name = amlops_xstrndup(p, (size_t)(v - p));
		*version = amlops_xstrdup(v + 1);
		return 0;
	}
	/* .../{models|codes|environments}/NAME/versions/VERSION */
	if ((v = strstr(id, "/versions/")) != NULL && v[10] != '\0' &&
	    strchr(v + 10, '/') == NULL) {
		for (p = v; p > id && p[-1] != '/'; p--)
			;
		if (p > id && p < v) {
			*name = amlops_xstrndup(p, (size_t)(v - p));
			*version = amlops_xstrdup(v + 10);
			return 0;
		}
	}
	return amlops_err_set(
	    AMLOPS_EINVALID, "'%s' is not an asset version id", id);
}

char *
amlops_arm_asset_name(const struct amlops_deployment *dep,
    const struct amlops_asset *a, const char *suffix)
{
	if (a->name && *a->name)
		return amlops_xstrdup(a->name);
	return amlops_xasprintf(
	    "%s-%s-%s", dep->endpoint_name, dep->name, suffix);
}

/* The id an asset is referred to by in a deployment; NULL for none. */
static char *
asset_ref_id(const char *ws_path, const struct amlops_deployment *dep,
    const struct amlops_asset *a, const char *kind, const char *suffix)
{
	char *name, *id;

	if (a->kind == AMLOPS_ASSET_NONE)
		return NULL;
	/* ARM ids and registry URIs (azureml://registries/...) as written. */
	if (a->kind == AMLOPS_ASSET_REF && a->ref &&
	    (a->ref[0] == '/' || strstr(a->ref, "://")))
		return amlops_xstrdup(a->ref);
	if (a->kind == AMLOPS_ASSET_REF && !a->version && !a->label && a->ref &&
	    strncmp(a->ref, "azureml:", 8) != 0)
		return amlops_xstrdup(a->ref);
	name = amlops_arm_asset_name(dep, a, suffix);
	if (a->version)
		id = amlops_arm_asset_id(ws_path, kind, name, a->version);
	else if (a->label)
		id = amlops_xasprintf(
		    "%s/%s/%s/versions/@%s", ws_path, kind, name, a->label);
	else
		id = amlops_xasprintf("%s/%s/%s", ws_path, kind, name);
	free(name);
	return id;
}

/* ------------------------------------------------------------------ */
/* Bodies */

static const char *
auth_mode_rest(enum amlops_auth_mode m)
{
	switch (m) {
	case AMLOPS_AUTH_KEY:
		return "Key";
	case AMLOPS_AUTH_AML_TOKEN:
		return "AMLToken";
	case AMLOPS_AUTH_AAD_TOKEN:
		return "AADToken";
	}
	return "Key";
}

static cJSON *
traffic_json(const struct amlops_traffic *t, size_t n)
{
	cJSON *o = cJSON_CreateObject();

	for (size_t i = 0; i < n; i++)
		cJSON_AddNumberToObject(o, t[i].deployment, t[i].percent);
	return o;
}

static void
add_dup(cJSON *o, const char *k, const cJSON *v)
{
	cJSON_AddItemToObject(o, k, cJSON_Duplicate(v, 1));
}

static char *
compute_id(const char *ws_path, const char *name)
{
	if (name[0] == '/')
		return amlops_xstrdup(name);
	return amlops_xasprintf("%s/computes/%s", ws_path, name);
}

/* ws_path is needed for a kubernetes compute's id. */
static cJSON *
endpoint_body(const char *ws_path, const struct amlops_endpoint *ep,
    unsigned parts, const char *location)
{
	cJSON *b = cJSON_CreateObject(), *p;

	if (location)
		cJSON_AddStringToObject(b, "location", location);
	add_dup(b, "tags", ep->tags);
	if (ep->identity)
		add_dup(b, "identity", ep->identity);
	p = cJSON_AddObjectToObject(b, "properties");
	if (ep->description)
		cJSON_AddStringToObject(p, "description", ep->description);
	cJSON_AddStringToObject(p, "authMode", auth_mode_rest(ep->auth_mode));
	if (ep->compute == AMLOPS_COMPUTE_KUBERNETES && ep->compute_name) {
		char *id = ws_path ? compute_id(ws_path, ep->compute_name)
		                   : amlops_xstrdup(ep->compute_name);

		cJSON_AddStringToObject(p, "compute", id);
		free(id);
	}
	if (ep->public_network_access)
		cJSON_AddStringToObject(p, "publicNetworkAccess",
		    strcasecmp(ep->public_network_access, "disabled") == 0
		        ? "Disabled"
		        : "Enabled");
	if (parts & AMLOPS_EP_TRAFFIC) {
		cJSON_AddItemToObject(
		    p, "traffic", traffic_json(ep->traffic, ep->ntraffic));
		cJSON_AddItemToObject(
		    p, "mirrorTraffic", traffic_json(ep->mirror, ep->nmirror));
	}
	return b;
}

cJSON *
amlops_arm_endpoint_body(
    const struct amlops_endpoint *ep, unsigned parts, const char *location)
{
	return endpoint_body(NULL, ep, parts, location);
}

cJSON *
amlops_arm_deployment_body(const char *ws_path,
    const struct amlops_endpoint *ep, const struct amlops_deployment *dep,
    const char *location)
{
	cJSON *b = cJSON_CreateObject(), *p, *sku, *cc;
	const cJSON *s;
	char *id;

	(void)ep;
	if (location)
		cJSON_AddStringToObject(b, "location", location);
	add_dup(b, "tags", dep->tags);
	sku = cJSON_AddObjectToObject(b, "sku");
	cJSON_AddStringToObject(sku, "name", "Default");
	cJSON_AddNumberToObject(sku, "capacity", dep->instance_count);
	p = cJSON_AddObjectToObject(b, "properties");
	if (dep->description)
		cJSON_AddStringToObject(p, "description", dep->description);
	cJSON_AddStringToObject(p, "endpointComputeType",
	    dep->compute == AMLOPS_COMPUTE_KUBERNETES ? "Kubernetes"
	                                              : "Managed");
	if ((id = asset_ref_id(ws_path, dep, &dep->model, "models", "model")) !=
	    NULL) {
		cJSON_AddStringToObject(p, "model", id);
		free(id);
	}
	if ((id = asset_ref_id(ws_path, dep, &dep->code, "codes", "code")) !=
	    NULL) {
		cc = cJSON_AddObjectToObject(p, "codeConfiguration");
		cJSON_AddStringToObject(cc, "codeId", id);
		if (dep->scoring_script)
			cJSON_AddStringToObject(
			    cc, "scoringScript", dep->scoring_script);
		free(id);
	}
	if ((id = asset_ref_id(ws_path, dep, &dep->environment.asset,
	         "environments", "env")) != NULL) {
		cJSON_AddStringToObject(p, "environmentId", id);
		free(id);
	}
	if (dep->instance_type)
		cJSON_AddStringToObject(p, "instanceType", dep->instance_type);
	/* The settings are already in the REST shape. */
	cJSON_ArrayForEach(s, dep->settings)
	{
		if (s->string &&
		    !cJSON_GetObjectItemCaseSensitive(p, s->string))
			add_dup(p, s->string, s);
	}
	return b;
}

/* ------------------------------------------------------------------ */
/* Live state */

static const char *
jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int
traffic_cmp(const void *a, const void *b)
{
	return strcmp(((const struct amlops_traffic *)a)->deployment,
	    ((const struct amlops_traffic *)b)->deployment);
}

static void
traffic_from(struct amlops_traffic **out, size_t *n, const cJSON *o)
{
	const cJSON *t;

	*out = NULL;
	*n = 0;
	cJSON_ArrayForEach(t, o)
	{
		if (!t->string || !cJSON_IsNumber(t))
			continue;
		*out = amlops_xrealloc(*out, (*n + 1) * sizeof(**out));
		memset(&(*out)[*n], 0, sizeof(**out));
		(*out)[*n].deployment = amlops_xstrdup(t->string);
		(*out)[*n].percent = t->valueint;
		(*n)++;
	}
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), traffic_cmp);
}

static void
asset_from_id(struct amlops_asset *a, const char *id)
{
	char *name = NULL, *version = NULL;

	if (id == NULL || *id == '\0')
		return;
	a->kind = AMLOPS_ASSET_REF;
	if (amlops_arm_asset_parse(&name, &version, id) == 0) {
		a->name = name;
		a->version = version;
		a->ref = amlops_xasprintf("azureml:%s:%s", name, version);
	} else {
		amlops_err_clear();
		a->ref = amlops_xstrdup(id);
	}
}

static const char *
last_segment(const char *s)
{
	const char *p = strrchr(s, '/');

	return p ? p + 1 : s;
}

/*
 * Values the service fills in when none were given (Azure's documented
 * defaults, which `amlops host` follows too): a deployment that never set
 * them must not look changed. Whole keys, then keys inside objects.
 */
static const char *const default_keys[][2] = {
    {"appInsightsEnabled", "false"},
    {"egressPublicNetworkAccess", "\"Enabled\""},
    {"scaleSettings", "{\"scaleType\":\"Default\"}"},
    {"environmentVariables", "{}"},
    {"properties", "{}"},
};

static const char *const default_subkeys[][3] = {
    {"requestSettings", "maxConcurrentRequestsPerInstance", "1"},
    {"requestSettings", "requestTimeout", "\"PT5S\""},
    {"requestSettings", "maxQueueWait", "\"PT0.5S\""},
    {"livenessProbe", "initialDelay", "\"PT10S\""},
    {"livenessProbe", "period", "\"PT10S\""},
    {"livenessProbe", "timeout", "\"PT2S\""},
    {"livenessProbe", "failureThreshold", "30"},
    {"livenessProbe", "successThreshold", "1"},
    {"readinessProbe", "initialDelay", "\"PT10S\""},
    {"readinessProbe", "period", "\"PT10S\""},
    {"readinessProbe", "timeout", "\"PT2S\""},
    {"readinessProbe", "failureThreshold", "30"},
    {"readinessProbe", "successThreshold", "1"},
};

static const char *const settings_keys[] = {"requestSettings", "livenessProbe",
    "readinessProbe", "startupProbe", "environmentVariables",
    "appInsightsEnabled", "egressPublicNetworkAccess", "dataCollector",
    "modelMountPath", "scaleSettings", "containerResourceRequirements",
    "properties"};

static int
equals_text(const cJSON *v, const char *text)
{
	cJSON *d = cJSON_Parse(text);
	int eq = cJSON_Compare(d, v, 1);

	cJSON_Delete(d);
	return eq;
}

void
amlops_arm_settings_normalize(cJSON *settings)
{
	for (size_t i = 0; i < AMLOPS_ARRAY_SIZE(default_subkeys); i++) {
		cJSON *o = cJSON_GetObjectItemCaseSensitive(
		    settings, default_subkeys[i][0]);
		cJSON *v =
		    cJSON_GetObjectItemCaseSensitive(o, default_subkeys[i][1]);

		if (v && equals_text(v, default_subkeys[i][2]))
			cJSON_DeleteItemFromObjectCaseSensitive(
			    o, default_subkeys[i][1]);
	}
	for (size_t i = 0; i < AMLOPS_ARRAY_SIZE(default_subkeys); i++) {
		cJSON *o = cJSON_GetObjectItemCaseSensitive(
		    settings, default_subkeys[i][0]);

		if (cJSON_IsObject(o) && cJSON_GetArraySize(o) == 0)
			cJSON_DeleteItemFromObjectCaseSensitive(
			    settings, default_subkeys[i][0]);
	}
	for (size_t i = 0; i < AMLOPS_ARRAY_SIZE(default_keys); i++) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(
		    settings, default_keys[i][0]);

		if (v &&
		    (cJSON_IsNull(v) || equals_text(v, default_keys[i][1])))
			cJSON_DeleteItemFromObjectCaseSensitive(
			    settings, default_keys[i][0]);
	}
}

static struct amlops_deployment *
deployment_from_json(const char *endpoint, const cJSON *j)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "properties");
	const cJSON *sku = cJSON_GetObjectItemCaseSensitive(j, "sku");
	const cJSON *cc, *v, *tags;
	struct amlops_deployment *dep;
	const char *s;

	dep = amlops_deployment_new(jstr(j, "name") ? jstr(j, "name") : "");
	dep->endpoint_name = amlops_xstrdup(endpoint);
	s = jstr(p, "endpointComputeType");
	dep->compute = s && strcasecmp(s, "Kubernetes") == 0
	                   ? AMLOPS_COMPUTE_KUBERNETES
	                   : AMLOPS_COMPUTE_MANAGED;
	if ((s = jstr(p, "description")) && *s)
		dep->description = amlops_xstrdup(s);
	tags = cJSON_GetObjectItemCaseSensitive(j, "tags");
	if (cJSON_IsObject(tags)) {
		cJSON_Delete(dep->tags);
		dep->tags = cJSON_Duplicate(tags, 1);
	}
	asset_from_id(&dep->model, jstr(p, "model"));
	cc = cJSON_GetObjectItemCaseSensitive(p, "codeConfiguration");
	asset_from_id(&dep->code, jstr(cc, "codeId"));
	if ((s = jstr(cc, "scoringScript")))
		dep->scoring_script = amlops_xstrdup(s);
	asset_from_id(&dep->environment.asset, jstr(p, "environmentId"));
	if ((s = jstr(p, "instanceType")))
		dep->instance_type = amlops_xstrdup(s);
	v = cJSON_GetObjectItemCaseSensitive(sku, "capacity");
	if (cJSON_IsNumber(v))
		dep->instance_count = v->valueint;
	for (size_t i = 0; i < AMLOPS_ARRAY_SIZE(settings_keys); i++) {
		v = cJSON_GetObjectItemCaseSensitive(p, settings_keys[i]);
		if (v && !cJSON_IsNull(v))
			add_dup(dep->settings, settings_keys[i], v);
	}
	amlops_arm_settings_normalize(dep->settings);
	return dep;
}

static int
dep_cmp(const void *a, const void *b)
{
	return strcmp((*(struct amlops_deployment *const *)a)->name,
	    (*(struct amlops_deployment *const *)b)->name);
}

static int
live_dep_cmp(const void *a, const void *b)
{
	return strcmp(((const struct amlops_live_deployment *)a)->name,
	    ((const struct amlops_live_deployment *)b)->name);
}

int
amlops_arm_endpoint_from_json(struct amlops_endpoint **out,
    struct amlops_live *live, const cJSON *j, const cJSON *deployments)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "properties");
	const cJSON *tags, *id, *d;
	struct amlops_endpoint *ep;
	const char *s, *name = jstr(j, "name");

	if (!cJSON_IsObject(p) || name == NULL)
		return amlops_err_set(AMLOPS_EBACKEND,
		    "the service sent an endpoint without name or properties");
	ep = amlops_endpoint_new(name);
	s = jstr(p, "authMode");
	ep->auth_mode =
	    s && strcasecmp(s, "AMLToken") == 0   ? AMLOPS_AUTH_AML_TOKEN
	    : s && strcasecmp(s, "AADToken") == 0 ? AMLOPS_AUTH_AAD_TOKEN
	                                          : AMLOPS_AUTH_KEY;
	if ((s = jstr(p, "compute")) && *s) {
		ep->compute = AMLOPS_COMPUTE_KUBERNETES;
		ep->compute_name = amlops_xstrdup(last_segment(s));
	}
	if ((s = jstr(p, "description")) && *s)
		ep->description = amlops_xstrdup(s);
	tags = cJSON_GetObjectItemCaseSensitive(j, "tags");
	if (cJSON_IsObject(tags)) {
		cJSON_Delete(ep->tags);
		ep->tags = cJSON_Duplicate(tags, 1);
	}
	traffic_from(&ep->traffic, &ep->ntraffic,
	    cJSON_GetObjectItemCaseSensitive(p, "traffic"));
	traffic_from(&ep->mirror, &ep->nmirror,
	    cJSON_GetObjectItemCaseSensitive(p, "mirrorTraffic"));
	id = cJSON_GetObjectItemCaseSensitive(j, "identity");
	if (cJSON_IsObject(id) && jstr(id, "type")) {
		const cJSON *uai = cJSON_GetObjectItemCaseSensitive(
		    id, "userAssignedIdentities");
		const cJSON *u;

		/* Only what the model holds: type and the identity ids. */
		ep->identity = cJSON_CreateObject();
		cJSON_AddStringToObject(ep->identity, "type", jstr(id, "type"));
		if (cJSON_IsObject(uai) && cJSON_GetArraySize(uai) > 0) {
			cJSON *o = cJSON_AddObjectToObject(
			    ep->identity, "userAssignedIdentities");

			cJSON_ArrayForEach(u, uai)
			    cJSON_AddObjectToObject(o, u->string);
		}
	}
	if ((s = jstr(p, "publicNetworkAccess")))
		ep->public_network_access = amlops_xstrdup(
		    strcasecmp(s, "Disabled") == 0 ? "disabled" : "enabled");
	if (live) {
		memset(live, 0, sizeof(*live));
		live->provisioning_state =
		    amlops_xstrdup(jstr(p, "provisioningState"));
		live->scoring_uri = amlops_xstrdup(jstr(p, "scoringUri"));
		live->id = amlops_xstrdup(jstr(j, "id"));
	}
	cJSON_ArrayForEach(d, deployments)
	{
		struct amlops_deployment *dep = deployment_from_json(name, d);
		const cJSON *dp =
		    cJSON_GetObjectItemCaseSensitive(d, "properties");

		ep->deployments = amlops_xrealloc(ep->deployments,
		    (ep->ndeployments + 1) * sizeof(*ep->deployments));
		ep->deployments[ep->ndeployments++] = dep;
		if (live) {
			struct amlops_live_deployment *ld;

			live->deployments = amlops_xrealloc(
			    live->deployments, (live->ndeployments + 1) *
			                           sizeof(*live->deployments));
			ld = &live->deployments[live->ndeployments++];
			ld->name = amlops_xstrdup(dep->name);
			ld->provisioning_state =
			    amlops_xstrdup(jstr(dp, "provisioningState"));
			ld->id = amlops_xstrdup(jstr(d, "id"));
		}
	}
	if (ep->ndeployments > 1)
		qsort(ep->deployments, ep->ndeployments,
		    sizeof(*ep->deployments), dep_cmp);
	if (live && live->ndeployments > 1)
		qsort(live->deployments, live->ndeployments,
		    sizeof(*live->deployments), live_dep_cmp);
	*out = ep;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Operations */

static struct arm_backend *
arm(struct amlops_backend *b)
{
	return (struct arm_backend *)b;
}

static char *
ep_path(struct arm_backend *ab, const char *name)
{
	return amlops_xasprintf("%s/onlineEndpoints/%s", ab->ws_path, name);
}

static char *
dep_path(struct arm_backend *ab, const char *ep, const char *dep)
{
	if (dep)
		return amlops_xasprintf("%s/onlineEndpoints/%s/deployments/%s",
		    ab->ws_path, ep, dep);
	return amlops_xasprintf(
	    "%s/onlineEndpoints/%s/deployments", ab->ws_path, ep);
}

/* GETs every page of a list into one array (value + nextLink). */
static int
get_all(cJSON **out, struct arm_backend *ab, const char *path)
{
	struct amlops_rest_resp r = AMLOPS_REST_RESP_INIT;
	cJSON *all = cJSON_CreateArray();
	char *next = amlops_xstrdup(path);
	int error = 0, pages = 0;

	while (next) {
		const cJSON *v, *x;
		const char *nl;

		if (++pages > 1000) {
			error = amlops_err_set(AMLOPS_EBACKEND,
			    "GET %s: more than 1000 pages", path);
			goto done;
		}
		if ((error = amlops_rest_call(
		         ab->rest, "GET", next, NULL, &r)) < 0)
			goto done;
		v = cJSON_GetObjectItemCaseSensitive(r.json, "value");
		cJSON_ArrayForEach(x, v)
		    cJSON_AddItemToArray(all, cJSON_Duplicate(x, 1));
		nl = jstr(r.json, "nextLink");
		free(next);
		next = nl && *nl ? amlops_xstrdup(nl) : NULL;
		amlops_rest_resp_release(&r);
	}
	*out = all;
	all = NULL;
done:
	free(next);
	cJSON_Delete(all);
	amlops_rest_resp_release(&r);
	return error;
}

void
amlops_live_deployments_free(struct amlops_live_deployment *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].provisioning_state);
		free(v[i].id);
	}
	free(v);
}

void
amlops_live_free(struct amlops_live *live)
{
	if (live == NULL)
		return;
	free(live->provisioning_state);
	free(live->scoring_uri);
	free(live->id);
	amlops_live_deployments_free(live->deployments, live->ndeployments);
	free(live);
}

const char *
amlops_live_deployment_state(const struct amlops_live *live, const char *name)
{
	for (size_t i = 0; live && i < live->ndeployments; i++)
		if (strcmp(live->deployments[i].name, name) == 0)
			return live->deployments[i].provisioning_state;
	return NULL;
}

static int
arm_get_endpoint(struct amlops_backend *b, const char *name,
    struct amlops_endpoint **out, struct amlops_live **live)
{
	struct arm_backend *ab = arm(b);
	struct amlops_rest_resp r = AMLOPS_REST_RESP_INIT;
	struct amlops_live *l = NULL;
	cJSON *deps = NULL;
	char *path = ep_path(ab, name), *dpath = dep_path(ab, name, NULL);
	int error;

	if ((error = amlops_rest_call(ab->rest, "GET", path, NULL, &r)) < 0)
		goto done;
	if ((error = get_all(&deps, ab, dpath)) < 0)
		goto done;
	if (live)
		l = amlops_xcalloc(1, sizeof(*l));
	if ((error = amlops_arm_endpoint_from_json(out, l, r.json, deps)) < 0)
		goto done;
	if (live) {
		*live = l;
		l = NULL;
	}
done:
	amlops_live_free(l);
	cJSON_Delete(deps);
	amlops_rest_resp_release(&r);
	free(path);
	free(dpath);
	return error;
}

/* The endpoint alone: one GET, no deployments. */
static int
arm_get_endpoint_only(struct amlops_backend *b, const char *name,
    struct amlops_endpoint **out, struct amlops_live **live)
{
	struct arm_backend *ab = arm(b);
	struct amlops_rest_resp r = AMLOPS_REST_RESP_INIT;
	struct amlops_live *l = NULL;
	char *path = ep_path(ab, name);
	int error;

	if ((error = amlops_rest_call(ab->rest, "GET", path, NULL, &r)) < 0)
		goto done;
	if (live)
		l = amlops_xcalloc(1, sizeof(*l));
	if ((error = amlops_arm_endpoint_from_json(out, l, r.json, NULL)) < 0)
		goto done;
	if (live) {
		*live = l;
		l = NULL;
	}
done:
	amlops_live_free(l);
	amlops_rest_resp_release(&r);
	free(path);
	return error;
}

/* The deployments' live state alone: the list GET, sorted by name. */
static int
arm_get_deployment_states(struct amlops_backend *b, const char *endpoint,
    struct amlops_live_deployment **out, size_t *n)
{
	struct arm_backend *ab = arm(b);
	struct amlops_live_deployment *v = NULL;
	cJSON *deps = NULL;
	const cJSON *d;
	char *dpath = dep_path(ab, endpoint, NULL);
	size_t k = 0;
	int error;

	*out = NULL;
	*n = 0;
	if ((error = get_all(&deps, ab, dpath)) < 0)
		goto done;
	v = amlops_xcalloc((size_t)cJSON_GetArraySize(deps) + 1, sizeof(*v));
	cJSON_ArrayForEach(d, deps)
	{
		const cJSON *dp =
		    cJSON_GetObjectItemCaseSensitive(d, "properties");

		if (jstr(d, "name") == NULL)
			continue;
		v[k].name = amlops_xstrdup(jstr(d, "name"));
		v[k].provisioning_state =
		    amlops_xstrdup(jstr(dp, "provisioningState"));
		v[k].id = amlops_xstrdup(jstr(d, "id"));
		k++;
	}
	if (k > 1)
		qsort(v, k, sizeof(*v), live_dep_cmp);
	*out = v;
	*n = k;
	v = NULL;
done:
	free(v);
	cJSON_Delete(deps);
	free(dpath);
	return error;
}

static int
arm_list_endpoints(struct amlops_backend *b, char ***names, size_t *n)
{
	struct arm_backend *ab = arm(b);
	char *path = amlops_xasprintf("%s/onlineEndpoints", ab->ws_path);
	cJSON *all = NULL;
	const cJSON *e;
	char **v = NULL;
	size_t count = 0;
	int error;

	if ((error = get_all(&all, ab, path)) < 0)
		goto done;
	cJSON_ArrayForEach(e, all)
	{
		if (!jstr(e, "name"))
			continue;
		v = amlops_xrealloc(v, (count + 1) * sizeof(*v));
		v[count++] = amlops_xstrdup(jstr(e, "name"));
	}
	*names = v;
	*n = count;
done:
	cJSON_Delete(all);
	free(path);
	return error;
}

void
amlops_op_free(struct amlops_op *op)
{
	if (op == NULL)
		return;
	amlops_rest_op_free(op->rest);
	free(op->what);
	free(op);
}

static int
begin(struct amlops_op **out, struct arm_backend *ab, const char *method,
    const char *path, const cJSON *body)
{
	struct amlops_rest_op *rop = NULL;
	struct amlops_op *op;
	int error;

	if ((error = amlops_rest_op_begin(&rop, ab->rest, method, path, body)) <
	    0)
		return error;
	op = amlops_xcalloc(1, sizeof(*op));
	op->rest = rop;
	op->state = rop->state;
	memcpy(op->request_id, rop->request_id, sizeof(op->request_id));
	op->what = amlops_xstrdup(rop->what);
	*out = op;
	return 0;
}

/* The workspace's region, asked once: every tracked resource needs it. */
static int
arm_location(struct arm_backend *ab)
{
	struct amlops_rest_resp r = AMLOPS_REST_RESP_INIT;
	int error;

	if (ab->location)
		return 0;
	if ((error = amlops_rest_call(ab->rest, "GET", ab->ws_path, NULL, &r)) <
	    0)
		goto done;
	if (!jstr(r.json, "location")) {
		error = amlops_err_set(AMLOPS_EBACKEND,
		    "GET workspace: no location in the answer (request id %s)",
		    r.request_id);
		goto done;
	}
	ab->location = amlops_xstrdup(jstr(r.json, "location"));
done:
	amlops_rest_resp_release(&r);
	return error;
}

static int
arm_put_endpoint(struct amlops_backend *b, const struct amlops_endpoint *ep,
    unsigned parts, struct amlops_op **out)
{
	struct arm_backend *ab = arm(b);
	cJSON *body;
	char *path;
	int error;

	if ((error = arm_location(ab)) < 0)
		return error;
	body = endpoint_body(ab->ws_path, ep, parts, ab->location);
	path = ep_path(ab, ep->name);
	error = begin(out, ab, "PUT", path, body);
	cJSON_Delete(body);
	free(path);
	return error;
}

/*
 * Asset references with a label (name@latest) become the newest version
 * the workspace has; `tmp` holds the copy.
 */
static int
resolve_label(struct arm_backend *ab, const struct amlops_deployment *dep,
    struct amlops_asset *tmp, const struct amlops_asset *a, const char *kind,
    const char *suffix)
{
	char *name, *path;
	cJSON *all = NULL;
	const cJSON *v, *best = NULL;
	int error;

	*tmp = *a;
	if (a->kind != AMLOPS_ASSET_REF || a->version || !a->label)
		return 0;
	name = amlops_arm_asset_name(dep, a, suffix);
	path = amlops_xasprintf("%s/%s/%s/versions", ab->ws_path, kind, name);
	if ((error = get_all(&all, ab, path)) < 0)
		goto done;
	cJSON_ArrayForEach(v, all)
	{
		const cJSON *sd =
		    cJSON_GetObjectItemCaseSensitive(v, "systemData");
		const char *c = jstr(sd, "createdAt");
		const cJSON *bsd =
		    best ? cJSON_GetObjectItemCaseSensitive(best, "systemData")
		         : NULL;
		const char *bc = jstr(bsd, "createdAt");

		if (!best || (c && (!bc || strcmp(c, bc) >= 0)))
			best = v;
	}
	if (!best || !jstr(best, "name")) {
		error = amlops_err_set(AMLOPS_ENOTFOUND,
		    "%s '%s@%s': the workspace has no version of it", suffix,
		    name, a->label);
		goto done;
	}
	tmp->version = amlops_xstrdup(jstr(best, "name"));
	tmp->label = NULL;
done:
	cJSON_Delete(all);
	free(path);
	free(name);
	return error;
}

static int
arm_put_deployment(struct amlops_backend *b, const struct amlops_endpoint *ep,
    const struct amlops_deployment *dep, struct amlops_op **out)
{
	struct arm_backend *ab = arm(b);
	struct amlops_deployment d = *dep;
	struct amlops_asset m, c, e;
	cJSON *body = NULL;
	char *path = dep_path(ab, ep->name, dep->name);
	int error;

	memset(&m, 0, sizeof(m));
	memset(&c, 0, sizeof(c));
	memset(&e, 0, sizeof(e));
	if ((error = arm_location(ab)) < 0)
		goto done;
	if (d.endpoint_name == NULL)
		d.endpoint_name = ep->name;
	if ((error = resolve_label(
	         ab, &d, &m, &dep->model, "models", "model")) < 0 ||
	    (error = resolve_label(ab, &d, &c, &dep->code, "codes", "code")) <
	        0 ||
	    (error = resolve_label(ab, &d, &e, &dep->environment.asset,
	         "environments", "env")) < 0)
		goto done;
	d.model = m;
	d.code = c;
	d.environment.asset = e;
	body = amlops_arm_deployment_body(ab->ws_path, ep, &d, ab->location);
	error = begin(out, ab, "PUT", path, body);
done:
	if (m.version != dep->model.version)
		free(m.version);
	if (c.version != dep->code.version)
		free(c.version);
	if (e.version != dep->environment.asset.version)
		free(e.version);
	cJSON_Delete(body);
	free(path);
	return error;
}

static int
arm_delete_endpoint(
    struct amlops_backend *b, const char *name, struct amlops_op **out)
{
	struct arm_backend *ab = arm(b);
	char *path = ep_path(ab, name);
	int error = begin(out, ab, "DELETE", path, NULL);

	free(path);
	return error;
}

static int
arm_delete_deployment(struct amlops_backend *b, const char *endpoint,
    const char *name, struct amlops_op **out)
{
	struct arm_backend *ab = arm(b);
	char *path = dep_path(ab, endpoint, name);
	int error = begin(out, ab, "DELETE", path, NULL);

	free(path);
	return error;
}

static int
arm_poll_op(struct amlops_backend *b, struct amlops_op *op)
{
	int error;

	if (op->rest == NULL)
		return op->state == AMLOPS_OP_SUCCEEDED ? 0 : 1;
	error = amlops_rest_op_poll(arm(b)->rest, op->rest);
	op->state = op->rest->state;
	return error;
}

/* ------------------------------------------------------------------ */
/* Assets */

int
arm_walk_files(const struct amlops_files *files, const char *path,
    int (*fn)(void *ctx, const char *rel, const struct amlops_buf *data),
    void *ctx)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	char **names = NULL;
	size_t n = 0;
	int error;

	if (files == NULL || files->list == NULL || files->read == NULL)
		return amlops_err_set(AMLOPS_EINVALID,
		    "'%s': no commit to read the asset's files from", path);
	if ((error = files->list(files->ctx, path, &names, &n)) < 0)
		return error;
	if (n == 0) {
		error = amlops_err_set(
		    AMLOPS_ENOTFOUND, "'%s': no files at the commit", path);
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		char *full = *names[i] ? amlops_xasprintf("%s%s%s", path,
		                             *path ? "/" : "", names[i])
		                       : amlops_xstrdup(path);

		amlops_buf_init(&b, AMLOPS_ASSET_MAX_FILE);
		error = files->read(files->ctx, full, &b);
		free(full);
		if (error == 0)
			error = fn(ctx, names[i], &b);
		amlops_buf_release(&b);
		if (error < 0)
			goto done;
	}
done:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return error;
}

static const char *
kind_word(const char *kind)
{
	return strcmp(kind, "models") == 0  ? "model"
	       : strcmp(kind, "codes") == 0 ? "code"
	                                    : "environment";
}

/* 0 when the version exists, AMLOPS_ENOTFOUND (message set) when not. */
static int
version_exists(struct arm_backend *ab, const char *path, const char *what)
{
	struct amlops_rest_resp r = AMLOPS_REST_RESP_INIT;
	int error = amlops_rest_call(ab->rest, "GET", path, NULL, &r);

	if (error == AMLOPS_ENOTFOUND)
		error = amlops_err_set(AMLOPS_ENOTFOUND,
		    "%s does not exist in the workspace (request id %s)", what,
		    r.request_id);
	amlops_rest_resp_release(&r);
	return error;
}

static int
register_version(struct arm_backend *ab, const char *path, cJSON *body)
{
	struct amlops_rest_op *op = NULL;
	int error;

	if ((error = amlops_rest_op_begin(&op, ab->rest, "PUT", path, body)) <
	    0)
		return error;
	error = amlops_rest_op_wait(ab->rest, op);
	amlops_rest_op_free(op);
	return error;
}

static cJSON *
asset_body_base(const struct amlops_asset *a)
{
	cJSON *b = cJSON_CreateObject();
	cJSON *p = cJSON_AddObjectToObject(b, "properties");
	cJSON *pp;

	cJSON_AddStringToObject(
	    p, "description", "registered by amlops from the repository");
	cJSON_AddObjectToObject(p, "tags");
	pp = cJSON_AddObjectToObject(p, "properties");
	if (a->content_id[0])
		cJSON_AddStringToObject(pp, "amlops.contentId", a->content_id);
	if (a->path)
		cJSON_AddStringToObject(pp, "amlops.path", a->path);
	cJSON_AddBoolToObject(p, "isAnonymous", 0);
	return b;
}

static int
ensure_inline(struct arm_backend *ab, const struct amlops_deployment *dep,
    const struct amlops_asset *a, const char *kind, const char *suffix,
    const struct amlops_files *files)
{
	char *name = amlops_arm_asset_name(dep, a, suffix);
	char *path = NULL, *uri = NULL, *what = NULL;
	cJSON *body = NULL;
	int error;

	if (a->version == NULL) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "%s '%s' at '%s' has no version (its content id was not "
		    "filled from the commit)",
		    kind_word(kind), name, a->path ? a->path : "");
		goto done;
	}
	path = amlops_arm_asset_id(ab->ws_path, kind, name, a->version);
	what = amlops_xasprintf(
	    "%s 'azureml:%s:%s'", kind_word(kind), name, a->version);
	if ((error = version_exists(ab, path, what)) == 0) {
		/* Versions are immutable and named by content: done. */
		log_debug("%s: %s exists", __func__, what);
		goto done;
	}
	if (error != AMLOPS_ENOTFOUND)
		goto done;
	amlops_err_clear();
	if ((error = ab->stage(ab, kind, a, files, &uri)) < 0) {
		amlops_err_prefix(error, "%s", what);
		goto done;
	}
	body = asset_body_base(a);
	if (strcmp(kind, "codes") == 0)
		cJSON_AddStringToObject(
		    cJSON_GetObjectItem(body, "properties"), "codeUri", uri);
	else {
		cJSON_AddStringToObject(cJSON_GetObjectItem(body, "properties"),
		    "modelType", "CustomModel");
		cJSON_AddStringToObject(
		    cJSON_GetObjectItem(body, "properties"), "modelUri", uri);
	}
	if ((error = register_version(ab, path, body)) < 0)
		goto done;
	log_info("asset=%s name=%s version=%s result=registered",
	    kind_word(kind), name, a->version);
done:
	cJSON_Delete(body);
	free(name);
	free(path);
	free(uri);
	free(what);
	return error;
}

static int
ensure_environment(struct arm_backend *ab, const struct amlops_deployment *dep,
    const struct amlops_files *files)
{
	const struct amlops_environment *env = &dep->environment;
	const struct amlops_asset *a = &env->asset;
	struct amlops_buf conda = AMLOPS_BUF_INIT;
	char *name = amlops_arm_asset_name(dep, a, "env");
	char *path = NULL, *what = NULL, *uri = NULL;
	cJSON *body = NULL, *p;
	int error;

	if (a->version == NULL) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "environment '%s' has no version (its content id was not "
		    "filled from the commit)",
		    name);
		goto done;
	}
	path =
	    amlops_arm_asset_id(ab->ws_path, "environments", name, a->version);
	what =
	    amlops_xasprintf("environment 'azureml:%s:%s'", name, a->version);
	if ((error = version_exists(ab, path, what)) == 0)
		goto done;
	if (error != AMLOPS_ENOTFOUND)
		goto done;
	amlops_err_clear();
	body = asset_body_base(a);
	p = cJSON_GetObjectItem(body, "properties");
	if (env->image)
		cJSON_AddStringToObject(p, "image", env->image);
	if (env->conda_file) {
		if (files == NULL || files->read == NULL) {
			error = amlops_err_set(AMLOPS_EINVALID,
			    "%s: no commit to read '%s' from", what,
			    env->conda_file);
			goto done;
		}
		amlops_buf_init(&conda, 1u << 20);
		if ((error = files->read(files->ctx, env->conda_file, &conda)) <
		    0) {
			amlops_err_prefix(error, "%s", what);
			goto done;
		}
		cJSON_AddStringToObject(
		    p, "condaFile", amlops_buf_cstr(&conda));
	}
	if (env->build_path) {
		struct amlops_asset ctx = *a;
		cJSON *bo;

		ctx.path = env->build_path;
		if ((error = ab->stage(ab, "environments", &ctx, files, &uri)) <
		    0) {
			amlops_err_prefix(error, "%s", what);
			goto done;
		}
		bo = cJSON_AddObjectToObject(p, "build");
		cJSON_AddStringToObject(bo, "contextUri", uri);
		if (env->dockerfile_path)
			cJSON_AddStringToObject(
			    bo, "dockerfilePath", env->dockerfile_path);
	}
	if (env->inference_config)
		add_dup(p, "inferenceConfig", env->inference_config);
	if ((error = register_version(ab, path, body)) < 0)
		goto done;
	log_info("asset=environment name=%s version=%s result=registered", name,
	    a->version);
done:
	amlops_buf_release(&conda);
	cJSON_Delete(body);
	free(name);
	free(path);
	free(what);
	free(uri);
	return error;
}

static int
check_ref(struct arm_backend *ab, const struct amlops_deployment *dep,
    const struct amlops_asset *a, const char *kind, const char *suffix)
{
	struct amlops_asset tmp;
	char *id = NULL, *what = NULL;
	int error;

	if ((error = resolve_label(ab, dep, &tmp, a, kind, suffix)) < 0)
		return error;
	id = asset_ref_id(ab->ws_path, dep, &tmp, kind, suffix);
	what =
	    amlops_xasprintf("%s '%s'", kind_word(kind), a->ref ? a->ref : id);
	if (id[0] == '/')
		error = version_exists(ab, id, what);
	else
		error = 0; /* a registry or URL reference: not ours */
	if (tmp.version != a->version)
		free(tmp.version);
	free(id);
	free(what);
	return error;
}

static int
arm_check_refs(struct amlops_backend *b, const struct amlops_deployment *dep)
{
	struct arm_backend *ab = arm(b);
	const struct {
		const struct amlops_asset *a;
		const char *kind, *suffix;
	} assets[] = {
	    {&dep->model, "models", "model"},
	    {&dep->code, "codes", "code"},
	    {&dep->environment.asset, "environments", "env"},
	};
	int error;

	for (size_t i = 0; i < AMLOPS_ARRAY_SIZE(assets); i++)
		if (assets[i].a->kind == AMLOPS_ASSET_REF &&
		    (error = check_ref(ab, dep, assets[i].a, assets[i].kind,
		         assets[i].suffix)) < 0)
			return error;
	return 0;
}

static int
arm_ensure_assets(struct amlops_backend *b, const struct amlops_deployment *dep,
    const struct amlops_files *files)
{
	struct arm_backend *ab = arm(b);
	int error;

	/*
	 * References first: nothing is uploaded for a deployment that
	 * names a version the workspace lacks.
	 */
	if ((error = arm_check_refs(b, dep)) < 0)
		return error;
	if (dep->model.kind == AMLOPS_ASSET_INLINE &&
	    (error = ensure_inline(
	         ab, dep, &dep->model, "models", "model", files)) < 0)
		return error;
	if (dep->code.kind == AMLOPS_ASSET_INLINE &&
	    (error = ensure_inline(
	         ab, dep, &dep->code, "codes", "code", files)) < 0)
		return error;
	if (dep->environment.asset.kind == AMLOPS_ASSET_INLINE ||
	    (dep->environment.asset.kind == AMLOPS_ASSET_NONE &&
	        (dep->environment.image || dep->environment.conda_file)))
		error = ensure_environment(ab, dep, files);
	return error;
}

/* ------------------------------------------------------------------ */
/* Keys, tokens, logs, invoke */

static int
post_json(
    cJSON **out, struct arm_backend *ab, const char *path, const cJSON *body)
{
	struct amlops_rest_resp r = AMLOPS_REST_RESP_INIT;
	int error;

	if ((error = amlops_rest_call(ab->rest, "POST", path, body, &r)) < 0)
		goto done;
	if (r.json == NULL) {
		error = amlops_err_set(AMLOPS_EBACKEND,
		    "POST %s: the answer is not JSON (request id %s)",
		    last_segment(path), r.request_id);
		goto done;
	}
	*out = r.json;
	r.json = NULL;
done:
	amlops_rest_resp_release(&r);
	return error;
}

static int
arm_keys(struct amlops_backend *b, const char *endpoint, char **primary,
    char **secondary)
{
	struct arm_backend *ab = arm(b);
	char *path = amlops_xasprintf(
	    "%s/onlineEndpoints/%s/listKeys", ab->ws_path, endpoint);
	cJSON *j = NULL;
	int error;

	if ((error = post_json(&j, ab, path, NULL)) < 0)
		goto done;
	if (primary)
		*primary = amlops_xstrdup(jstr(j, "primaryKey"));
	if (secondary)
		*secondary = amlops_xstrdup(jstr(j, "secondaryKey"));
done:
	cJSON_Delete(j);
	free(path);
	return error;
}

static int
arm_token(struct amlops_backend *b, const char *endpoint, char **token,
    int64_t *expiry_ms)
{
	struct arm_backend *ab = arm(b);
	char *path = amlops_xasprintf(
	    "%s/onlineEndpoints/%s/token", ab->ws_path, endpoint);
	cJSON *j = NULL;
	const cJSON *e;
	int error;

	if ((error = post_json(&j, ab, path, NULL)) < 0)
		goto done;
	if (!jstr(j, "accessToken")) {
		error = amlops_err_set(AMLOPS_EBACKEND,
		    "POST onlineEndpoints/%s/token: no accessToken in the "
		    "answer",
		    endpoint);
		goto done;
	}
	*token = amlops_xstrdup(jstr(j, "accessToken"));
	e = cJSON_GetObjectItemCaseSensitive(j, "expiryTimeUtc");
	if (expiry_ms)
		*expiry_ms =
		    cJSON_IsNumber(e)
		        ? amlops_clamp_i64(e->valuedouble, 0, 10000000000) *
		              1000
		        : 0;
done:
	cJSON_Delete(j);
	free(path);
	return error;
}

static int
arm_logs(struct amlops_backend *b, const char *endpoint, const char *deployment,
    int tail, char **out)
{
	struct arm_backend *ab = arm(b);
	char *path = amlops_xasprintf("%s/onlineEndpoints/%s/deployments/%s/"
	                              "getLogs",
	    ab->ws_path, endpoint, deployment);
	cJSON *req = cJSON_CreateObject(), *j = NULL;
	int error;

	cJSON_AddStringToObject(req, "containerType", "InferenceServer");
	cJSON_AddNumberToObject(req, "tail", tail);
	if ((error = post_json(&j, ab, path, req)) < 0)
		goto done;
	*out = amlops_xstrdup(jstr(j, "content") ? jstr(j, "content") : "");
done:
	cJSON_Delete(req);
	cJSON_Delete(j);
	free(path);
	return error;
}

static int
arm_invoke(struct amlops_backend *b, const char *endpoint,
    const char *deployment, const char *body, size_t len,
    struct amlops_buf *out, long *status)
{
	struct arm_backend *ab = arm(b);
	struct amlops_endpoint *ep = NULL;
	struct amlops_live *live = NULL;
	struct amlops_http_resp r = AMLOPS_HTTP_RESP_INIT;
	struct amlops_http_req req = {0};
	char *key = NULL, *auth = NULL, *dep = NULL, *what = NULL;
	const char *hdrs[5];
	size_t nh = 0;
	int error;

	if ((error = arm_get_endpoint(b, endpoint, &ep, &live)) < 0)
		goto done;
	if (!live->scoring_uri || !*live->scoring_uri) {
		error = amlops_err_set(AMLOPS_EBACKEND,
		    "endpoint '%s' has no scoring URI yet (state %s)", endpoint,
		    live->provisioning_state ? live->provisioning_state : "?");
		goto done;
	}
	if (ep->auth_mode == AMLOPS_AUTH_KEY)
		error = arm_keys(b, endpoint, &key, NULL);
	else if (ep->auth_mode == AMLOPS_AUTH_AAD_TOKEN && ab->cred)
		/* An Azure AD token for Azure ML's data plane. */
		error =
		    amlops_cred_token(&key, NULL, ab->cred, AMLOPS_ML_SCOPE);
	else
		error = arm_token(b, endpoint, &key, NULL);
	if (error < 0)
		goto done;
	auth = amlops_xasprintf("Authorization: Bearer %s", key ? key : "");
	hdrs[nh++] = auth;
	hdrs[nh++] = "Content-Type: application/json";
	if (deployment) {
		dep = amlops_xasprintf(
		    "azureml-model-deployment: %s", deployment);
		hdrs[nh++] = dep;
	}
	hdrs[nh] = NULL;
	what = amlops_xasprintf("POST endpoints/%s/score", endpoint);
	req.method = "POST";
	req.url = live->scoring_uri;
	req.headers = hdrs;
	req.body = body;
	req.body_len = len;
	req.what = what;
	/* A scoring call is the user's request: not retried. */
	req.flags = AMLOPS_HTTP_NO_RETRY;
	req.max_response = out->max ? out->max : (16u << 20);
	if ((error = amlops_http_do(amlops_rest_http(ab->rest), &req, &r)) < 0)
		goto done;
	*status = r.status;
	amlops_buf_reset(out);
	error = amlops_buf_add(out, r.body.ptr ? r.body.ptr : "", r.body.len);
done:
	if (key) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	free(dep);
	free(what);
	amlops_http_resp_release(&r);
	amlops_endpoint_free(ep);
	amlops_live_free(live);
	return error;
}

/* ------------------------------------------------------------------ */
/* Steps */

static int
has_owner_tag(const cJSON *tags)
{
	const cJSON *v =
	    cJSON_GetObjectItemCaseSensitive(tags, AMLOPS_PLAN_OWNER_TAG);

	return cJSON_IsString(v) &&
	       strcmp(v->valuestring, AMLOPS_PLAN_OWNER_VALUE) == 0;
}

/*
 * The endpoint a step PUTs: the desired one, with the traffic maps it
 * does not change taken from the live one.
 */
static int
step_endpoint(
    struct arm_backend *ab, const struct amlops_step *s, struct amlops_op **out)
{
	const struct amlops_endpoint *want = s->desired_endpoint;
	const struct amlops_endpoint *live = s->live_endpoint;
	struct amlops_endpoint tmp;
	cJSON *tags = NULL;
	unsigned parts = AMLOPS_EP_TRAFFIC;
	int error;

	if (want == NULL)
		return amlops_err_set(AMLOPS_EINVALID,
		    "step on endpoint '%s' has no desired endpoint",
		    s->endpoint);
	tmp = *want;
	if (s->action == AMLOPS_PLAN_CREATE) {
		/* Created without traffic; marked as amlops' own. */
		parts = 0;
		if (!has_owner_tag(want->tags)) {
			tags = cJSON_Duplicate(want->tags, 1);
			cJSON_AddStringToObject(tags, AMLOPS_PLAN_OWNER_TAG,
			    AMLOPS_PLAN_OWNER_VALUE);
			tmp.tags = tags;
		}
	} else {
		if (s->aspect != AMLOPS_ASPECT_TRAFFIC) {
			tmp.traffic = live ? live->traffic : NULL;
			tmp.ntraffic = live ? live->ntraffic : 0;
		}
		if (s->aspect != AMLOPS_ASPECT_MIRROR_TRAFFIC) {
			tmp.mirror = live ? live->mirror : NULL;
			tmp.nmirror = live ? live->nmirror : 0;
		}
		/* Keep the ownership tag the endpoint was created with. */
		if (live && has_owner_tag(live->tags) &&
		    !has_owner_tag(want->tags)) {
			tags = cJSON_Duplicate(want->tags, 1);
			cJSON_AddStringToObject(tags, AMLOPS_PLAN_OWNER_TAG,
			    AMLOPS_PLAN_OWNER_VALUE);
			tmp.tags = tags;
		}
	}
	error = arm_put_endpoint(&ab->base, &tmp, parts, out);
	cJSON_Delete(tags);
	return error;
}

/*
 * The deployment a one-aspect update PUTs: the live deployment with the
 * step's aspect taken from the desired one.
 */
static int
step_deployment_update(
    struct arm_backend *ab, const struct amlops_step *s, struct amlops_op **out)
{
	const struct amlops_deployment *want = s->desired_deployment;
	const struct amlops_deployment *live = s->live_deployment;
	const struct amlops_endpoint *ep =
	    s->desired_endpoint ? s->desired_endpoint : s->live_endpoint;
	struct amlops_deployment tmp;
	int error;

	if (want == NULL || ep == NULL)
		return amlops_err_set(AMLOPS_EINVALID,
		    "step on deployment '%s/%s' has no desired deployment",
		    s->endpoint, s->deployment);
	if (live == NULL)
		return arm_put_deployment(&ab->base, ep, want, out);
	tmp = *live;
	switch (s->aspect) {
	case AMLOPS_ASPECT_SCALE:
		tmp.instance_count = want->instance_count;
		break;
	case AMLOPS_ASPECT_CODE:
		tmp.code = want->code;
		tmp.scoring_script = want->scoring_script;
		break;
	case AMLOPS_ASPECT_MODEL:
		tmp.model = want->model;
		break;
	case AMLOPS_ASPECT_ENVIRONMENT:
		tmp.environment = want->environment;
		break;
	case AMLOPS_ASPECT_SETTINGS:
		tmp.settings = want->settings;
		break;
	case AMLOPS_ASPECT_METADATA:
		tmp.description = want->description;
		tmp.tags = want->tags;
		break;
	default:
		tmp = *want;
		break;
	}
	/* Inline assets are named by the desired deployment's rule. */
	tmp.endpoint_name =
	    want->endpoint_name ? want->endpoint_name : (char *)s->endpoint;
	tmp.name = want->name;
	if ((error = arm_ensure_assets(&ab->base, &tmp, ab->base.files)) < 0)
		return error;
	return arm_put_deployment(&ab->base, ep, &tmp, out);
}

static int
arm_apply_step(struct amlops_backend *b, const struct amlops_step *s,
    struct amlops_op **out)
{
	struct arm_backend *ab = arm(b);

	*out = NULL;
	if (s->deployment == NULL) {
		if (s->action == AMLOPS_PLAN_DELETE)
			return arm_delete_endpoint(b, s->endpoint, out);
		return step_endpoint(ab, s, out);
	}
	if (s->action == AMLOPS_PLAN_DELETE &&
	    s->aspect == AMLOPS_ASPECT_DEPLOYMENT)
		return arm_delete_deployment(
		    b, s->endpoint, s->deployment, out);
	if (s->aspect == AMLOPS_ASPECT_TRAFFIC ||
	    s->aspect == AMLOPS_ASPECT_MIRROR_TRAFFIC)
		return step_endpoint(ab, s, out);
	if (s->action == AMLOPS_PLAN_CREATE ||
	    s->aspect == AMLOPS_ASPECT_DEPLOYMENT) {
		const struct amlops_deployment *want = s->desired_deployment;
		int error;

		if (want == NULL || s->desired_endpoint == NULL)
			return amlops_err_set(AMLOPS_EINVALID,
			    "step on deployment '%s/%s' has no desired "
			    "deployment",
			    s->endpoint, s->deployment);
		if ((error = arm_ensure_assets(b, want, b->files)) < 0)
			return error;
		return arm_put_deployment(b, s->desired_endpoint, want, out);
	}
	return step_deployment_update(ab, s, out);
}

static void
arm_free(struct amlops_backend *b)
{
	struct arm_backend *ab = arm(b);

	if (ab->release)
		ab->release(ab);
	amlops_rest_free(ab->rest);
	if (ab->own_cred)
		amlops_cred_free(ab->cred);
	free(ab->ws_path);
	free(ab->location);
	free(ab);
}

#define ARM_OPS(n)                                                             \
	{                                                                      \
		.name = n, .get_endpoint = arm_get_endpoint,                   \
		.get_endpoint_only = arm_get_endpoint_only,                    \
		.get_deployment_states = arm_get_deployment_states,            \
		.list_endpoints = arm_list_endpoints,                          \
		.apply_step = arm_apply_step,                                  \
		.put_endpoint = arm_put_endpoint,                              \
		.put_deployment = arm_put_deployment,                          \
		.delete_endpoint = arm_delete_endpoint,                        \
		.delete_deployment = arm_delete_deployment,                    \
		.ensure_assets = arm_ensure_assets,                            \
		.check_refs = arm_check_refs, .poll_op = arm_poll_op,          \
		.keys = arm_keys, .token = arm_token, .logs = arm_logs,        \
		.invoke = arm_invoke, .free = arm_free,                        \
	}

const struct amlops_backend_ops arm_azure_ops = ARM_OPS("azure");
const struct amlops_backend_ops arm_local_ops = ARM_OPS("local");

int
arm_backend_init(struct arm_backend *ab, const struct amlops_backend_ops *ops,
    const struct amlops_rest_cfg *rc, const char *sub, const char *rg,
    const char *ws)
{
	int error;

	ab->base.ops = ops;
	if ((error = amlops_rest_new(&ab->rest, rc)) < 0)
		return error;
	ab->ws_path = amlops_arm_workspace_path(sub, rg, ws, NULL);
	return 0;
}
