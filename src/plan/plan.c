/*
 * The planner: desired against live endpoints, to ordered steps. The rules
 * and their reasons are in include/amlops/plan.h; this file only follows
 * them. No I/O: every input comes in through the arguments and the only
 * output is the plan.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "amlops/err.h"
#include "amlops/plan.h"
#include "amlops/util.h"
#include "plan/plan_int.h"

/*
 * What the service uses when instance_type is not given: the REST spec's
 * default for managed deployments, and the instance type Azure ML creates
 * in every attached Kubernetes cluster.
 */
#define DEFAULT_MANAGED_INSTANCE_TYPE "Standard_F4s_v2"
#define DEFAULT_K8S_INSTANCE_TYPE "defaultinstancetype"

/* The rule slots of DESIGN.md section 3, in the order steps come out. */
enum slot {
	SLOT_ENDPOINT = 0, /* 1: create the endpoint, or update it */
	SLOT_CREATE,       /* 2: new deployments (and re-creations) */
	SLOT_SCALE_UP,     /* 3 */
	SLOT_UPDATE,       /* 4: environment, code, model, settings */
	SLOT_TRAFFIC,      /* 5: traffic and mirror traffic */
	SLOT_SCALE_DOWN,   /* 6 */
	SLOT_DELETE,       /* 7: deployments that left */
	SLOT_METADATA,     /* 8: metadata; endpoints that left */
	NSLOTS
};

struct steps {
	struct amlops_step *v;
	size_t n;
	size_t cap;
};

struct msgs {
	struct amlops_plan_msg *v;
	size_t n;
	size_t cap;
};

/* One endpoint being planned. */
struct epctx {
	const char *name;
	const struct amlops_endpoint *d; /* desired, or NULL */
	const struct amlops_endpoint *l; /* live, or NULL */
	const char *owner_tag;
	const char *owner_value;
	int live_mode; /* not AMLOPS_PLAN_ALL_OWNED */
	struct steps slot[NSLOTS];
	struct msgs refusals;
};

cJSON *
amlops_plan_jnn(cJSON *j)
{
	if (!j) {
		fputs("amlops: out of memory building JSON\n", stderr);
		abort();
	}
	return j;
}

#define J amlops_plan_jnn
#define JOK AMLOPS_PLAN_JOK

const char *
amlops_plan_action_name(enum amlops_plan_action a)
{
	switch (a) {
	case AMLOPS_PLAN_CREATE:
		return "create";
	case AMLOPS_PLAN_UPDATE:
		return "update";
	case AMLOPS_PLAN_DELETE:
		return "delete";
	}
	return "unknown";
}

const char *
amlops_plan_aspect_name(enum amlops_plan_aspect a)
{
	switch (a) {
	case AMLOPS_ASPECT_ENDPOINT:
		return "endpoint";
	case AMLOPS_ASPECT_DEPLOYMENT:
		return "deployment";
	case AMLOPS_ASPECT_TRAFFIC:
		return "traffic";
	case AMLOPS_ASPECT_MIRROR_TRAFFIC:
		return "mirror_traffic";
	case AMLOPS_ASPECT_SCALE:
		return "scale";
	case AMLOPS_ASPECT_CODE:
		return "code";
	case AMLOPS_ASPECT_MODEL:
		return "model";
	case AMLOPS_ASPECT_ENVIRONMENT:
		return "environment";
	case AMLOPS_ASPECT_SETTINGS:
		return "settings";
	case AMLOPS_ASPECT_METADATA:
		return "metadata";
	}
	return "unknown";
}

/* spec.h has amlops_auth_mode_name(); the planner keeps to its own names. */
static const char *
auth_name(enum amlops_auth_mode m)
{
	switch (m) {
	case AMLOPS_AUTH_KEY:
		return "key";
	case AMLOPS_AUTH_AML_TOKEN:
		return "aml_token";
	case AMLOPS_AUTH_AAD_TOKEN:
		return "aad_token";
	}
	return "unknown";
}

static const char *
compute_name(enum amlops_compute c)
{
	return c == AMLOPS_COMPUTE_KUBERNETES ? "kubernetes" : "managed";
}

/*
 * "a" `sep` "b" (at most `max` bytes of it): what "%s:%s" gives, without
 * printf (the full plan of 10,000 endpoints names 80,000 assets).
 */
static char *
join(const char *a, char sep, const char *b, size_t max)
{
	size_t alen = strlen(a), blen = strnlen(b, max);
	char *p = amlops_xmalloc(alen + blen + 2);

	memcpy(p, a, alen);
	p[alen] = sep;
	memcpy(p + alen + 1, b, blen);
	p[alen + 1 + blen] = '\0';
	return p;
}

char *
amlops_plan_asset_id(const struct amlops_asset *a)
{
	const char *name;

	if (!a || a->kind == AMLOPS_ASSET_NONE)
		return NULL;
	name = a->name;
	if (!name && a->kind == AMLOPS_ASSET_INLINE)
		name = a->path;
	if (name && a->version)
		return join(name, ':', a->version, SIZE_MAX);
	if (name && a->label)
		return join(name, '@', a->label, SIZE_MAX);
	if (a->kind == AMLOPS_ASSET_REF && a->ref)
		return amlops_xstrdup(a->ref);
	if (name && a->content_id[0])
		return join(name, '@', a->content_id, 12);
	if (name)
		return amlops_xstrdup(name);
	return amlops_xstrdup("(unnamed)");
}

static int
str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* NULL and "" are the same description. */
static int
text_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static int
cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
cmp_dep(const void *a, const void *b)
{
	const struct amlops_deployment *x =
	    *(const struct amlops_deployment *const *)a;
	const struct amlops_deployment *y =
	    *(const struct amlops_deployment *const *)b;

	return strcmp(x->name, y->name);
}

static int
cmp_traffic(const void *a, const void *b)
{
	const struct amlops_traffic *x =
	    *(const struct amlops_traffic *const *)a;
	const struct amlops_traffic *y =
	    *(const struct amlops_traffic *const *)b;

	return strcmp(x->deployment ? x->deployment : "",
	    y->deployment ? y->deployment : "");
}

/* Takes ownership of `msg`; `loc` (or NULL) is copied. */
static void
msgs_add(struct msgs *m, const struct amlops_loc *loc, const char *endpoint,
    const char *deployment, char *msg)
{
	struct amlops_plan_msg *p;

	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 4;
		m->v = amlops_xrealloc(m->v, m->cap * sizeof(*m->v));
	}
	p = &m->v[m->n++];
	memset(p, 0, sizeof(*p));
	p->endpoint = amlops_xstrdup(endpoint);
	p->deployment = amlops_xstrdup(deployment);
	p->msg = msg;
	if (loc && loc->file && *loc->file) {
		p->file = amlops_xstrdup(loc->file);
		p->line = loc->line;
		p->col = loc->col;
	}
}

static void
msg_release(struct amlops_plan_msg *m)
{
	free(m->file);
	free(m->endpoint);
	free(m->deployment);
	free(m->msg);
}

static void
step_release(struct amlops_step *s)
{
	free(s->endpoint);
	free(s->deployment);
	cJSON_Delete(s->before);
	cJSON_Delete(s->after);
	free(s->reason);
}

static void refuse(struct epctx *c, const struct amlops_loc *loc,
    const char *deployment, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
refuse(struct epctx *c, const struct amlops_loc *loc, const char *deployment,
    const char *fmt, ...)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	amlops_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	msgs_add(&c->refusals, loc, c->name, deployment, amlops_buf_detach(&b));
}

/*
 * Adds a step to a slot. Takes ownership of `before` and `after` (NULL
 * stands for a JSON null) and of `reason`.
 */
static struct amlops_step *
step_add(struct epctx *c, enum slot slot, enum amlops_plan_action action,
    enum amlops_plan_aspect aspect, const struct amlops_deployment *dd,
    const struct amlops_deployment *ld, cJSON *before, cJSON *after,
    char *reason)
{
	struct steps *s = &c->slot[slot];
	struct amlops_step *st;
	const char *dep = dd ? dd->name : ld ? ld->name : NULL;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4;
		s->v = amlops_xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	st = &s->v[s->n++];
	memset(st, 0, sizeof(*st));
	st->endpoint = amlops_xstrdup(c->name);
	st->deployment = amlops_xstrdup(dep);
	st->action = action;
	st->aspect = aspect;
	st->before = before ? before : J(cJSON_CreateNull());
	st->after = after ? after : J(cJSON_CreateNull());
	st->reason = reason;
	st->desired_endpoint = c->d;
	st->live_endpoint = c->l;
	st->desired_deployment = dd;
	st->live_deployment = ld;
	return st;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *
fmt(const char *f, ...)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	va_list ap;

	va_start(ap, f);
	amlops_buf_vprintf(&b, f, ap);
	va_end(ap);
	return amlops_buf_detach(&b);
}

/* Sum of the percentages a map gives `name` (0 when absent). */
static int
traffic_get(const struct amlops_traffic *t, size_t n, const char *name)
{
	int sum = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (str_eq(t[i].deployment, name))
			sum += t[i].percent;
	return sum;
}

/* The map as {"name": percent}, without 0 entries, sorted by name. */
static cJSON *
traffic_json(const struct amlops_traffic *t, size_t n)
{
	const struct amlops_traffic **v;
	cJSON *o = J(cJSON_CreateObject());
	size_t i;

	if (n == 0)
		return o;
	v = amlops_xcalloc(n, sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = &t[i];
	qsort(v, n, sizeof(*v), cmp_traffic);
	for (i = 0; i < n; i++)
		if (v[i]->percent != 0 && v[i]->deployment)
			J(cJSON_AddNumberToObject(
			    o, v[i]->deployment, v[i]->percent));
	free(v);
	return o;
}

/* Tags without the ownership tag, as a new object. */
static cJSON *
tags_plain(const cJSON *tags, const char *owner_tag)
{
	cJSON *o;

	if (!tags || !cJSON_IsObject(tags))
		return J(cJSON_CreateObject());
	o = J(cJSON_Duplicate(tags, 1));
	cJSON_DeleteItemFromObject(o, owner_tag);
	return o;
}

static int
owned(const struct amlops_endpoint *l, const struct amlops_plan_opts *opts,
    const char *tag, const char *value)
{
	const cJSON *v;

	if (opts && (opts->flags & AMLOPS_PLAN_ALL_OWNED))
		return 1;
	v = l->tags ? cJSON_GetObjectItem(l->tags, tag) : NULL;
	return cJSON_IsString(v) && strcmp(v->valuestring, value) == 0;
}

static const char *
instance_type(const struct amlops_deployment *d)
{
	if (d->instance_type)
		return d->instance_type;
	return d->compute == AMLOPS_COMPUTE_KUBERNETES
	           ? DEFAULT_K8S_INSTANCE_TYPE
	           : DEFAULT_MANAGED_INSTANCE_TYPE;
}

static const struct amlops_deployment *
find_dep(const struct amlops_endpoint *ep, const char *name)
{
	size_t i;

	if (!ep)
		return NULL;
	for (i = 0; i < ep->ndeployments; i++)
		if (ep->deployments[i] &&
		    str_eq(ep->deployments[i]->name, name))
			return ep->deployments[i];
	return NULL;
}

static int
carries_traffic(const struct amlops_endpoint *l, const char *name)
{
	return traffic_get(l->traffic, l->ntraffic, name) > 0 ||
	       traffic_get(l->mirror, l->nmirror, name) > 0;
}

/* A deployment's summary, the before of a delete and the after of a create. */
static cJSON *
dep_summary(const struct amlops_deployment *d)
{
	cJSON *o = J(cJSON_CreateObject());
	const struct amlops_asset *as[3];
	static const char *const keys[3] = {"model", "code", "environment"};
	size_t i;

	as[0] = &d->model;
	as[1] = &d->code;
	as[2] = &d->environment.asset;
	for (i = 0; i < 3; i++) {
		char *id = amlops_plan_asset_id(as[i]);

		if (id)
			J(cJSON_AddStringToObject(o, keys[i], id));
		else
			J(cJSON_AddNullToObject(o, keys[i]));
		free(id);
	}
	J(cJSON_AddStringToObject(o, "instance_type", instance_type(d)));
	J(cJSON_AddNumberToObject(o, "instance_count", d->instance_count));
	return o;
}

static cJSON *
str_or_null(const char *s)
{
	return s ? J(cJSON_CreateString(s)) : J(cJSON_CreateNull());
}

static void
quoted_or_none(struct amlops_buf *b, const char *s)
{
	if (s)
		amlops_buf_printf(b, "'%s'", s);
	else
		amlops_buf_puts(b, "(none)");
}

/*
 * Checks what the executor's invariants need from the desired endpoint:
 * unique deployments, traffic that sums to 100 or 0 and names only its
 * own deployments, at most one mirror that gets no live traffic.
 */
static void
check_desired(struct epctx *c)
{
	const struct amlops_endpoint *d = c->d;
	size_t i, j;
	int sum = 0;

	for (i = 0; i < d->ndeployments; i++)
		for (j = 0; j < i; j++)
			if (str_eq(d->deployments[i]->name,
			        d->deployments[j]->name))
				refuse(c, &d->deployments[i]->loc,
				    d->deployments[i]->name,
				    "deployment '%s' is defined twice",
				    d->deployments[i]->name);
	for (i = 0; i < d->ntraffic; i++) {
		const struct amlops_traffic *t = &d->traffic[i];

		for (j = 0; j < i; j++)
			if (str_eq(t->deployment, d->traffic[j].deployment))
				refuse(c, &t->loc, t->deployment,
				    "traffic names deployment '%s' twice",
				    t->deployment);
		if (t->percent < 0 || t->percent > 100)
			refuse(c, &t->loc, t->deployment,
			    "traffic to deployment '%s' is %d%%, expected 0 "
			    "to 100",
			    t->deployment, t->percent);
		if (!find_dep(d, t->deployment))
			refuse(c, &t->loc, t->deployment,
			    "traffic names deployment '%s', which the endpoint "
			    "does not have",
			    t->deployment);
		sum += t->percent;
	}
	if (sum != 0 && sum != 100)
		refuse(c, &d->traffic[0].loc, NULL,
		    "traffic sums to %d%%, expected 100 (or 0 for none)", sum);
	if (d->nmirror > 1)
		refuse(c, &d->mirror[1].loc, NULL,
		    "mirror traffic names %zu deployments, expected at most "
		    "one",
		    d->nmirror);
	for (i = 0; i < d->nmirror; i++) {
		const struct amlops_traffic *t = &d->mirror[i];
		int live;

		if (t->percent < 0 || t->percent > 100)
			refuse(c, &t->loc, t->deployment,
			    "mirror traffic to deployment '%s' is %d%%, "
			    "expected 0 to 100",
			    t->deployment, t->percent);
		if (!find_dep(d, t->deployment))
			refuse(c, &t->loc, t->deployment,
			    "mirror traffic names deployment '%s', which the "
			    "endpoint does not have",
			    t->deployment);
		live = traffic_get(d->traffic, d->ntraffic, t->deployment);
		if (t->percent > 0 && live > 0)
			refuse(c, &t->loc, t->deployment,
			    "deployment '%s' cannot get both traffic (%d%%) "
			    "and mirror traffic (%d%%)",
			    t->deployment, live, t->percent);
	}
}

static void
check_live(struct epctx *c)
{
	const struct amlops_endpoint *l = c->l;
	size_t i, j;

	for (i = 0; i < l->ndeployments; i++)
		for (j = 0; j < i; j++)
			if (str_eq(l->deployments[i]->name,
			        l->deployments[j]->name))
				refuse(c, NULL, l->deployments[i]->name,
				    "the target lists deployment '%s' twice",
				    l->deployments[i]->name);
}

/* Slot 1 for an endpoint that exists: compute is fixed, the rest updates. */
static void
plan_endpoint_update(struct epctx *c)
{
	const struct amlops_endpoint *d = c->d, *l = c->l;
	cJSON *before, *after;
	struct amlops_buf why = AMLOPS_BUF_INIT;
	const char *dpna, *lpna;

	if (d->compute != l->compute) {
		refuse(c, &d->loc, NULL,
		    "compute cannot change in place ('%s' -> '%s'); way out: "
		    "create an endpoint with a new name, move clients to it, "
		    "then remove '%s' from the repository",
		    compute_name(l->compute), compute_name(d->compute),
		    d->name);
		return;
	}
	if (d->compute == AMLOPS_COMPUTE_KUBERNETES &&
	    !str_eq(d->compute_name, l->compute_name)) {
		refuse(c, &d->loc, NULL,
		    "compute cannot change in place ('%s' -> '%s'); way out: "
		    "create an endpoint with a new name on '%s', move clients "
		    "to it, then remove '%s' from the repository",
		    l->compute_name ? l->compute_name : "(none)",
		    d->compute_name ? d->compute_name : "(none)",
		    d->compute_name ? d->compute_name : "(none)", d->name);
		return;
	}

	before = J(cJSON_CreateObject());
	after = J(cJSON_CreateObject());
	if (d->auth_mode != l->auth_mode) {
		J(cJSON_AddStringToObject(
		    before, "auth_mode", auth_name(l->auth_mode)));
		J(cJSON_AddStringToObject(
		    after, "auth_mode", auth_name(d->auth_mode)));
		amlops_buf_printf(&why, "auth_mode '%s' -> '%s'",
		    auth_name(l->auth_mode), auth_name(d->auth_mode));
	}
	/* Not given means the service's default, "enabled". */
	dpna = d->public_network_access ? d->public_network_access : "enabled";
	lpna = l->public_network_access ? l->public_network_access : "enabled";
	if (strcasecmp(dpna, lpna) != 0) {
		J(cJSON_AddStringToObject(
		    before, "public_network_access", lpna));
		J(cJSON_AddStringToObject(
		    after, "public_network_access", dpna));
		amlops_buf_printf(&why, "%spublic_network_access '%s' -> '%s'",
		    why.len ? "; " : "", lpna, dpna);
	}
	/*
	 * Identity: not given means no opinion (the service chose one at
	 * creation). When given, its type and the set of user-assigned
	 * identities count; principalId and the like are the service's.
	 */
	if (d->identity) {
		const cJSON *dt = cJSON_GetObjectItem(d->identity, "type");
		const cJSON *lt = l->identity
		                      ? cJSON_GetObjectItem(l->identity, "type")
		                      : NULL;
		const cJSON *du =
		    cJSON_GetObjectItem(d->identity, "userAssignedIdentities");
		const cJSON *lu = l->identity ? cJSON_GetObjectItem(l->identity,
		                                    "userAssignedIdentities")
		                              : NULL;
		const cJSON *e;
		int same = 1;

		if (!cJSON_IsString(dt) || !cJSON_IsString(lt) ||
		    strcasecmp(dt->valuestring, lt->valuestring) != 0)
			same = dt == lt;
		if (cJSON_GetArraySize(du) != cJSON_GetArraySize(lu))
			same = 0;
		cJSON_ArrayForEach(e, du)
		{
			if (!cJSON_GetObjectItem(lu, e->string))
				same = 0;
		}
		if (!same) {
			JOK(cJSON_AddItemToObject(before, "identity",
			    l->identity ? J(cJSON_Duplicate(l->identity, 1))
			                : J(cJSON_CreateNull())));
			JOK(cJSON_AddItemToObject(after, "identity",
			    J(cJSON_Duplicate(d->identity, 1))));
			amlops_buf_printf(
			    &why, "%sidentity changed", why.len ? "; " : "");
		}
	}
	if (why.len == 0) {
		cJSON_Delete(before);
		cJSON_Delete(after);
		return;
	}
	step_add(c, SLOT_ENDPOINT, AMLOPS_PLAN_UPDATE, AMLOPS_ASPECT_ENDPOINT,
	    NULL, NULL, before, after, amlops_buf_detach(&why));
}

/* Takes ownership of `why` (NULL: "deployment 'x' is new ..."). */
static void
plan_dep_create(struct epctx *c, const struct amlops_deployment *dd, char *why)
{
	char *model = amlops_plan_asset_id(&dd->model);
	char *reason;

	if (why)
		reason = why;
	else if (model)
		reason = fmt("deployment '%s' is new: model '%s', %d x %s",
		    dd->name, model, dd->instance_count, instance_type(dd));
	else
		reason = fmt("deployment '%s' is new: %d x %s", dd->name,
		    dd->instance_count, instance_type(dd));
	free(model);
	step_add(c, SLOT_CREATE, AMLOPS_PLAN_CREATE, AMLOPS_ASPECT_DEPLOYMENT,
	    dd, NULL, NULL, dep_summary(dd), reason);
}

/*
 * A version written by hand names content: the same name and version with
 * other content means someone forgot to bump the version, and the service
 * would keep serving the old bytes.
 */
static int
check_content(struct epctx *c, const struct amlops_deployment *dd,
    const char *what, const struct amlops_asset *da,
    const struct amlops_asset *la, const char *id)
{
	if (da->kind != AMLOPS_ASSET_INLINE || la->kind != AMLOPS_ASSET_INLINE)
		return 0;
	if (da->version_auto || !da->content_id[0] || !la->content_id[0])
		return 0;
	if (strcmp(da->content_id, la->content_id) == 0)
		return 0;
	refuse(c, &da->loc, dd->name,
	    "deployment '%s': %s '%s' at '%s' changed (%.12s -> %.12s) but "
	    "its version '%s' did not; way out: give it a new version, or "
	    "remove 'version' so that the content id is the version",
	    dd->name, what, id, da->path ? da->path : "", la->content_id,
	    da->content_id, da->version ? da->version : "");
	return -1;
}

static void
plan_asset(struct epctx *c, const struct amlops_deployment *dd,
    const struct amlops_deployment *ld, enum amlops_plan_aspect aspect,
    const char *what, const struct amlops_asset *da,
    const struct amlops_asset *la, const char *dscript, const char *lscript)
{
	char *did = amlops_plan_asset_id(da);
	char *lid = amlops_plan_asset_id(la);
	struct amlops_buf why = AMLOPS_BUF_INIT;
	char *dv = NULL, *lv = NULL;

	if (str_eq(did, lid) && str_eq(dscript, lscript)) {
		if (did)
			check_content(c, dd, what, da, la, did);
		goto done;
	}
	/*
	 * A target reports the version a label resolved to when the
	 * deployment was made ("env@latest" came back as "env:33"). Whether
	 * the label now names another version is not knowable without I/O,
	 * so a live plan takes the same name as the same asset; an offline
	 * plan compares the labels as written.
	 */
	if (c->live_mode && da->label && !la->label && da->name && la->name &&
	    strcmp(da->name, la->name) == 0 && str_eq(dscript, lscript))
		goto done;
	if (str_eq(dscript, lscript)) {
		dv = amlops_xstrdup(did);
		lv = amlops_xstrdup(lid);
	} else {
		dv = fmt("%s (scoring_script %s)", did ? did : "(none)",
		    dscript ? dscript : "(none)");
		lv = fmt("%s (scoring_script %s)", lid ? lid : "(none)",
		    lscript ? lscript : "(none)");
	}
	amlops_buf_printf(&why, "%s ", what);
	quoted_or_none(&why, lv);
	amlops_buf_puts(&why, " -> ");
	quoted_or_none(&why, dv);
	step_add(c, SLOT_UPDATE, AMLOPS_PLAN_UPDATE, aspect, dd, ld,
	    str_or_null(lv), str_or_null(dv), amlops_buf_detach(&why));
done:
	free(did);
	free(lid);
	free(dv);
	free(lv);
}

/*
 * `have` cut down to the shape of `want`: the keys of each object that
 * `want` also has, recursively; anything else as it is. A live plan
 * compares this with the desired settings, since the service fills in a
 * default for every key the YAML leaves out (requestSettings, probes,
 * scaleSettings), and an absent key means "the service's default".
 * NEEDSWORK: so a key removed from the YAML is not reset in a live plan
 * (an offline plan sees it); that needs the service's defaults.
 */
static cJSON *
project(const cJSON *want, const cJSON *have)
{
	const cJSON *e;
	cJSON *o;

	if (!cJSON_IsObject(want) || !cJSON_IsObject(have))
		return J(cJSON_Duplicate(have, 1));
	o = J(cJSON_CreateObject());
	cJSON_ArrayForEach(e, want)
	{
		const cJSON *h =
		    cJSON_GetObjectItemCaseSensitive(have, e->string);

		if (h)
			JOK(cJSON_AddItemToObject(o, e->string, project(e, h)));
	}
	return o;
}

static void
plan_settings(struct epctx *c, const struct amlops_deployment *dd,
    const struct amlops_deployment *ld)
{
	cJSON *ds = dd->settings ? J(cJSON_Duplicate(dd->settings, 1))
	                         : J(cJSON_CreateObject());
	cJSON *ls = ld->settings ? J(cJSON_Duplicate(ld->settings, 1))
	                         : J(cJSON_CreateObject());
	struct amlops_buf why = AMLOPS_BUF_INIT;
	const cJSON *e;

	if (c->live_mode) {
		cJSON *p = project(ds, ls);

		cJSON_Delete(ls);
		ls = p;
	}

	if (cJSON_Compare(ds, ls, 1)) {
		cJSON_Delete(ds);
		cJSON_Delete(ls);
		return;
	}
	amlops_buf_puts(&why, "settings changed:");
	cJSON_ArrayForEach(e, ds)
	{
		const cJSON *o =
		    cJSON_GetObjectItemCaseSensitive(ls, e->string);

		if (!o || !cJSON_Compare(e, o, 1))
			amlops_buf_printf(&why, " %s", e->string);
	}
	cJSON_ArrayForEach(e, ls)
	{
		if (!cJSON_GetObjectItemCaseSensitive(ds, e->string))
			amlops_buf_printf(&why, " %s", e->string);
	}
	step_add(c, SLOT_UPDATE, AMLOPS_PLAN_UPDATE, AMLOPS_ASPECT_SETTINGS, dd,
	    ld, ls, ds, amlops_buf_detach(&why));
}

static cJSON *
metadata_json(const char *description, const cJSON *tags, const char *owner_tag)
{
	cJSON *o = J(cJSON_CreateObject());

	JOK(cJSON_AddItemToObject(o, "description", str_or_null(description)));
	JOK(cJSON_AddItemToObject(o, "tags", tags_plain(tags, owner_tag)));
	return o;
}

/*
 * Metadata of a deployment (dd, ld) or, when both are NULL, the endpoint.
 * In a live plan the endpoint's tags are compared as they are on the
 * target, and the desired ones gain the ownership tag: an endpoint that
 * amlops did not create is adopted by one metadata step that adds it.
 */
static void
plan_metadata(struct epctx *c, const struct amlops_deployment *dd,
    const struct amlops_deployment *ld, enum slot slot)
{
	const char *ddesc = dd ? dd->description : c->d->description;
	const char *ldesc = ld ? ld->description : c->l->description;
	cJSON *before =
	    metadata_json(ldesc, ld ? ld->tags : c->l->tags, c->owner_tag);
	cJSON *after =
	    metadata_json(ddesc, dd ? dd->tags : c->d->tags, c->owner_tag);
	int desc_same = text_eq(ddesc, ldesc);
	int tags_same = cJSON_Compare(cJSON_GetObjectItem(before, "tags"),
	    cJSON_GetObjectItem(after, "tags"), 1);
	int adopt = 0;
	const char *why;

	if (!dd && !ld && c->live_mode) {
		cJSON *lt = cJSON_IsObject(c->l->tags)
		                ? J(cJSON_Duplicate(c->l->tags, 1))
		                : J(cJSON_CreateObject());
		cJSON *at = cJSON_GetObjectItem(after, "tags");

		JOK(cJSON_ReplaceItemInObject(before, "tags", lt));
		J(cJSON_AddStringToObject(at, c->owner_tag, c->owner_value));
		adopt = tags_same;
		tags_same = cJSON_Compare(lt, at, 1);
	}
	if (desc_same && tags_same) {
		cJSON_Delete(before);
		cJSON_Delete(after);
		return;
	}
	if (!desc_same && !tags_same)
		why = "description and tags changed";
	else if (!desc_same)
		why = "description changed";
	else
		why = "tags changed";
	step_add(c, slot, AMLOPS_PLAN_UPDATE, AMLOPS_ASPECT_METADATA, dd, ld,
	    before, after,
	    adopt ? fmt("%s: the target's endpoint has no tag %s=%s, amlops "
	                "adopts it",
	                why, c->owner_tag, c->owner_value)
	          : amlops_xstrdup(why));
}

static void
plan_dep_update(struct epctx *c, const struct amlops_deployment *dd,
    const struct amlops_deployment *ld)
{
	const char *dit = instance_type(dd), *lit = instance_type(ld);
	int compute_changed = dd->compute != ld->compute;
	int type_changed = strcasecmp(dit, lit) != 0;

	if (compute_changed || type_changed) {
		const char *field =
		    compute_changed ? "compute" : "instance_type";
		const char *from =
		    compute_changed ? compute_name(ld->compute) : lit;
		const char *to =
		    compute_changed ? compute_name(dd->compute) : dit;

		if (carries_traffic(c->l, ld->name)) {
			refuse(c, &dd->loc, dd->name,
			    "deployment '%s': %s cannot change in place "
			    "('%s' -> '%s') and it carries traffic; way out: "
			    "add a deployment with a new name and %s '%s', "
			    "move the traffic to it, then remove '%s'",
			    dd->name, field, from, to, field, to, dd->name);
			return;
		}
		step_add(c, SLOT_CREATE, AMLOPS_PLAN_DELETE,
		    AMLOPS_ASPECT_DEPLOYMENT, NULL, ld, dep_summary(ld), NULL,
		    fmt("%s cannot change in place ('%s' -> '%s') and "
		        "'%s' carries no traffic: delete it, then create it "
		        "again",
		        field, from, to, dd->name));
		plan_dep_create(c, dd,
		    fmt("deployment '%s' created again with %s '%s'", dd->name,
		        field, to));
		return;
	}
	if (dd->instance_count != ld->instance_count)
		step_add(c,
		    dd->instance_count > ld->instance_count ? SLOT_SCALE_UP
		                                            : SLOT_SCALE_DOWN,
		    AMLOPS_PLAN_UPDATE, AMLOPS_ASPECT_SCALE, dd, ld,
		    J(cJSON_CreateNumber(ld->instance_count)),
		    J(cJSON_CreateNumber(dd->instance_count)),
		    fmt("instance_count %d -> %d", ld->instance_count,
		        dd->instance_count));
	plan_asset(c, dd, ld, AMLOPS_ASPECT_ENVIRONMENT, "environment",
	    &dd->environment.asset, &ld->environment.asset, NULL, NULL);
	plan_asset(c, dd, ld, AMLOPS_ASPECT_CODE, "code", &dd->code, &ld->code,
	    dd->scoring_script, ld->scoring_script);
	plan_asset(c, dd, ld, AMLOPS_ASPECT_MODEL, "model", &dd->model,
	    &ld->model, NULL, NULL);
	plan_settings(c, dd, ld);
	plan_metadata(c, dd, ld, SLOT_UPDATE);
}

static char *
map_change(const char *what, const cJSON *before, const cJSON *after)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;

	amlops_buf_printf(&b, "%s ", what);
	amlops_plan_value_text(&b, before, 1);
	amlops_buf_puts(&b, " -> ");
	amlops_plan_value_text(&b, after, 1);
	return amlops_buf_detach(&b);
}

static void
plan_traffic(struct epctx *c)
{
	const struct amlops_endpoint *d = c->d, *l = c->l;
	cJSON *dt = traffic_json(d->traffic, d->ntraffic);
	cJSON *lt =
	    l ? traffic_json(l->traffic, l->ntraffic) : J(cJSON_CreateObject());
	cJSON *dm = traffic_json(d->mirror, d->nmirror);
	cJSON *lm =
	    l ? traffic_json(l->mirror, l->nmirror) : J(cJSON_CreateObject());
	int clear_first = 0, blocked = 0;
	const cJSON *e;

	/*
	 * Azure refuses a deployment with both live and mirror traffic. A
	 * deployment mirrored now that gets live traffic must stop being
	 * mirrored before the traffic step; a deployment that is to be
	 * mirrored but has live traffic now can be mirrored only after it.
	 * When both hold (the two swap roles), the mirror is cleared first
	 * and set after: two mirror steps around the traffic step.
	 */
	cJSON_ArrayForEach(e, lm)
	{
		if (traffic_get(d->traffic, d->ntraffic, e->string) > 0)
			clear_first = 1;
	}
	cJSON_ArrayForEach(e, dm)
	{
		if (cJSON_GetObjectItemCaseSensitive(lt, e->string))
			blocked = 1;
	}
	if (clear_first && !cJSON_Compare(dm, lm, 1)) {
		cJSON *to = blocked ? J(cJSON_CreateObject())
		                    : J(cJSON_Duplicate(dm, 1));

		step_add(c, SLOT_TRAFFIC, AMLOPS_PLAN_UPDATE,
		    AMLOPS_ASPECT_MIRROR_TRAFFIC, NULL, NULL,
		    J(cJSON_Duplicate(lm, 1)), to,
		    map_change("mirror traffic", lm, to));
		cJSON_Delete(lm);
		lm = J(cJSON_Duplicate(to, 1));
	}
	if (!cJSON_Compare(dt, lt, 1)) {
		char *why = map_change("traffic", lt, dt);

		step_add(c, SLOT_TRAFFIC, AMLOPS_PLAN_UPDATE,
		    AMLOPS_ASPECT_TRAFFIC, NULL, NULL, lt, dt, why);
		lt = dt = NULL;
	}
	if (!cJSON_Compare(dm, lm, 1)) {
		char *why = map_change("mirror traffic", lm, dm);

		step_add(c, SLOT_TRAFFIC, AMLOPS_PLAN_UPDATE,
		    AMLOPS_ASPECT_MIRROR_TRAFFIC, NULL, NULL, lm, dm, why);
		lm = dm = NULL;
	}
	cJSON_Delete(dt);
	cJSON_Delete(lt);
	cJSON_Delete(dm);
	cJSON_Delete(lm);
}

/* Live deployments, sorted; a NULL entry is skipped. */
static const struct amlops_deployment **
sorted_deps(const struct amlops_endpoint *ep, size_t *n)
{
	const struct amlops_deployment **v;
	size_t i;

	*n = 0;
	if (!ep || ep->ndeployments == 0)
		return NULL;
	v = amlops_xcalloc(ep->ndeployments, sizeof(*v));
	for (i = 0; i < ep->ndeployments; i++)
		if (ep->deployments[i] && ep->deployments[i]->name)
			v[(*n)++] = ep->deployments[i];
	qsort(v, *n, sizeof(*v), cmp_dep);
	return v;
}

static void
plan_endpoint(struct epctx *c)
{
	const struct amlops_deployment **ds, **ls;
	size_t nd, nl, i;

	check_desired(c);
	if (c->l)
		check_live(c);
	if (c->refusals.n)
		return;

	if (!c->l) {
		cJSON *after = J(cJSON_CreateObject());

		J(cJSON_AddStringToObject(
		    after, "auth_mode", auth_name(c->d->auth_mode)));
		J(cJSON_AddStringToObject(
		    after, "compute", compute_name(c->d->compute)));
		step_add(c, SLOT_ENDPOINT, AMLOPS_PLAN_CREATE,
		    AMLOPS_ASPECT_ENDPOINT, NULL, NULL, NULL, after,
		    fmt("endpoint '%s' is new", c->name));
	} else {
		plan_endpoint_update(c);
		if (c->refusals.n)
			return;
	}

	ds = sorted_deps(c->d, &nd);
	ls = sorted_deps(c->l, &nl);
	for (i = 0; i < nd; i++) {
		const struct amlops_deployment *ld =
		    find_dep(c->l, ds[i]->name);

		if (!ld)
			plan_dep_create(c, ds[i], NULL);
		else
			plan_dep_update(c, ds[i], ld);
	}
	plan_traffic(c);
	for (i = 0; i < nl; i++)
		if (!find_dep(c->d, ls[i]->name))
			step_add(c, SLOT_DELETE, AMLOPS_PLAN_DELETE,
			    AMLOPS_ASPECT_DEPLOYMENT, NULL, ls[i],
			    dep_summary(ls[i]), NULL,
			    fmt("deployment '%s' left the repository",
			        ls[i]->name));
	if (c->l)
		plan_metadata(c, NULL, NULL, SLOT_METADATA);
	free(ds);
	free(ls);
}

static void
plan_endpoint_delete(struct epctx *c)
{
	const struct amlops_deployment **ls;
	cJSON *before = J(cJSON_CreateObject());
	cJSON *names = J(cJSON_AddArrayToObject(before, "deployments"));
	size_t nl, i;

	ls = sorted_deps(c->l, &nl);
	for (i = 0; i < nl; i++)
		JOK(cJSON_AddItemToArray(
		    names, J(cJSON_CreateString(ls[i]->name))));
	free(ls);
	step_add(c, SLOT_METADATA, AMLOPS_PLAN_DELETE, AMLOPS_ASPECT_ENDPOINT,
	    NULL, NULL, before, NULL,
	    fmt("endpoint '%s' left the repository", c->name));
}

/* One side's endpoints in scope, sorted by name. */
struct side {
	const struct amlops_endpoint **v;
	size_t n;
};

static int
cmp_ep(const void *a, const void *b)
{
	const struct amlops_endpoint *x =
	    *(const struct amlops_endpoint *const *)a;
	const struct amlops_endpoint *y =
	    *(const struct amlops_endpoint *const *)b;

	return strcmp(x->name, y->name);
}

/*
 * `scope` is sorted (or NULL: everything), so that planning a few touched
 * endpoints of a large repository costs O(n log n), not O(n * touched).
 */
static void
side_init(struct side *sd, const struct amlops_spec *s,
    const char *const *scope, size_t nscope, int scoped)
{
	size_t i;

	sd->v = NULL;
	sd->n = 0;
	if (!s || s->nendpoints == 0)
		return;
	sd->v = amlops_xcalloc(s->nendpoints, sizeof(*sd->v));
	for (i = 0; i < s->nendpoints; i++) {
		const struct amlops_endpoint *ep = s->endpoints[i];

		if (!ep || !ep->name)
			continue;
		if (scoped && (nscope == 0 || !bsearch(&ep->name, scope, nscope,
		                                  sizeof(*scope), cmp_strp)))
			continue;
		sd->v[sd->n++] = ep;
	}
	qsort(sd->v, sd->n, sizeof(*sd->v), cmp_ep);
}

/* Takes the run of endpoints called `name` at *pos; *count says how many. */
static const struct amlops_endpoint *
side_take(const struct side *sd, size_t *pos, const char *name, int *count)
{
	const struct amlops_endpoint *first = NULL;

	*count = 0;
	while (*pos < sd->n && strcmp(sd->v[*pos]->name, name) == 0) {
		if (!first)
			first = sd->v[*pos];
		(*count)++;
		(*pos)++;
	}
	return first;
}

static void
plan_add_steps(struct amlops_plan *plan, size_t *cap, struct steps *s)
{
	if (s->n == 0)
		return;
	if (plan->nsteps + s->n > *cap) {
		while (plan->nsteps + s->n > *cap)
			*cap = *cap ? 2 * *cap : 16;
		plan->steps =
		    amlops_xrealloc(plan->steps, *cap * sizeof(*plan->steps));
	}
	memcpy(plan->steps + plan->nsteps, s->v, s->n * sizeof(*s->v));
	plan->nsteps += s->n;
	s->n = 0;
}

int
amlops_plan_build(struct amlops_plan **out, const struct amlops_spec *desired,
    const struct amlops_spec *live, const struct amlops_plan_opts *opts)
{
	struct amlops_plan *plan = amlops_xcalloc(1, sizeof(*plan));
	struct msgs refusals = {NULL, 0, 0}, notes = {NULL, 0, 0};
	const char *tag =
	    opts && opts->owner_tag ? opts->owner_tag : AMLOPS_PLAN_OWNER_TAG;
	const char *value = opts && opts->owner_value ? opts->owner_value
	                                              : AMLOPS_PLAN_OWNER_VALUE;
	const char **scope = NULL;
	size_t nscope = 0, stepcap = 0, di = 0, li = 0, i, k;
	char *msg;
	int scoped = opts && opts->scope;
	struct side ds, ls;

	if (scoped && opts->nscope > 0) {
		scope = amlops_xcalloc(opts->nscope, sizeof(*scope));
		for (i = 0; i < opts->nscope; i++)
			if (opts->scope[i])
				scope[nscope++] = opts->scope[i];
		qsort(scope, nscope, sizeof(*scope), cmp_strp);
	}
	side_init(&ds, desired, scope, nscope, scoped);
	side_init(&ls, live, scope, nscope, scoped);
	free(scope);

	while (di < ds.n || li < ls.n) {
		struct epctx c;
		int nd, nl;

		memset(&c, 0, sizeof(c));
		if (di < ds.n &&
		    (li >= ls.n || strcmp(ds.v[di]->name, ls.v[li]->name) <= 0))
			c.name = ds.v[di]->name;
		else
			c.name = ls.v[li]->name;
		c.owner_tag = tag;
		c.owner_value = value;
		c.live_mode = !(opts && (opts->flags & AMLOPS_PLAN_ALL_OWNED));
		c.d = side_take(&ds, &di, c.name, &nd);
		c.l = side_take(&ls, &li, c.name, &nl);
		if (nd > 1)
			refuse(&c, &c.d->loc, NULL,
			    "endpoint '%s' is defined %d times", c.name, nd);
		else if (nl > 1)
			refuse(&c, NULL, NULL,
			    "the target lists endpoint '%s' %d times", c.name,
			    nl);
		else if (c.d)
			plan_endpoint(&c);
		else if (owned(c.l, opts, tag, value))
			plan_endpoint_delete(&c);
		else
			msgs_add(&notes, NULL, c.name, NULL,
			    fmt("endpoint '%s' is not managed by amlops (no "
			        "tag %s=%s), left alone",
			        c.name, tag, value));

		for (k = 0; k < NSLOTS; k++) {
			if (c.refusals.n == 0)
				plan_add_steps(plan, &stepcap, &c.slot[k]);
			while (c.slot[k].n > 0)
				step_release(&c.slot[k].v[--c.slot[k].n]);
			free(c.slot[k].v);
		}
		/* The messages move to the plan. */
		for (k = 0; k < c.refusals.n; k++) {
			if (refusals.n == refusals.cap) {
				refusals.cap =
				    refusals.cap ? 2 * refusals.cap : 4;
				refusals.v = amlops_xrealloc(refusals.v,
				    refusals.cap * sizeof(*refusals.v));
			}
			refusals.v[refusals.n++] = c.refusals.v[k];
		}
		free(c.refusals.v);
	}
	free(ds.v);
	free(ls.v);

	plan->refusals = refusals.v;
	plan->nrefusals = refusals.n;
	plan->notes = notes.v;
	plan->nnotes = notes.n;
	*out = plan;
	if (plan->nrefusals == 0)
		return 0;
	msg = amlops_plan_msg_format(&plan->refusals[0]);
	if (plan->nrefusals == 1)
		amlops_err_set(AMLOPS_EINVALID, "%s", msg);
	else
		amlops_err_set(AMLOPS_EINVALID, "%s (and %zu more refusals)",
		    msg, plan->nrefusals - 1);
	free(msg);
	return AMLOPS_EINVALID;
}

char *
amlops_plan_msg_format(const struct amlops_plan_msg *m)
{
	if (m->file)
		return amlops_xasprintf("%s:%u:%u: endpoint '%s': %s", m->file,
		    m->line, m->col, m->endpoint, m->msg);
	return amlops_xasprintf("endpoint '%s': %s", m->endpoint, m->msg);
}

void
amlops_plan_free(struct amlops_plan *plan)
{
	size_t i;

	if (!plan)
		return;
	for (i = 0; i < plan->nsteps; i++)
		step_release(&plan->steps[i]);
	for (i = 0; i < plan->nrefusals; i++)
		msg_release(&plan->refusals[i]);
	for (i = 0; i < plan->nnotes; i++)
		msg_release(&plan->notes[i]);
	free(plan->steps);
	free(plan->refusals);
	free(plan->notes);
	free(plan);
}

void
amlops_plan_summary(
    struct amlops_plan_summary *out, const struct amlops_plan *plan)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!plan)
		return;
	for (i = 0; i < plan->nsteps; i++) {
		switch (plan->steps[i].action) {
		case AMLOPS_PLAN_CREATE:
			out->create++;
			break;
		case AMLOPS_PLAN_UPDATE:
			out->update++;
			break;
		case AMLOPS_PLAN_DELETE:
			out->delete ++;
			break;
		}
	}
}
