/*
 * The planner as a table of (desired, live) -> expected steps, plus the
 * executor's invariants checked on every row, determinism, and the exact
 * output of the renderers.
 *
 * Endpoints are written in a small line format so that a row reads like
 * the YAML it stands for (the spec loader is another module's; these
 * fixtures fill struct amlops_endpoint directly):
 *
 *   ep NAME [auth=key|aml_token|aad_token] [compute=managed|kubernetes]
 *      [computename=C] [desc=D] [tags=k:v,k:v] [traffic=blue:90,green:10]
 *      [mirror=green:10] [pna=enabled|disabled] [identity=TYPE[:ID]]
 *   dep NAME [model=A] [code=A] [script=S] [env=A] [type=T] [count=N]
 *       [compute=kubernetes] [settings=JSON] [desc=D] [tags=k:v]
 *
 * A line "@file PATH" gives what follows locations (PATH, the line's
 * number in the fixture, the column of the value).
 *
 * An asset A is "-" (none), "name:version", "name@label" (references), or
 * "~path,name,version,content_id" (inline; version "*" means taken from
 * the content id). "_" in desc stands for a space.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "amlops/err.h"
#include "amlops/plan.h"
#include "amlops/spec.h"
#include "amlops/util.h"

/* Fixtures ------------------------------------------------------------ */

static void
fx_asset_release(struct amlops_asset *a)
{
	free(a->name);
	free(a->version);
	free(a->label);
	free(a->ref);
	free(a->path);
	memset(a, 0, sizeof(*a));
}

static void
fx_dep_free(struct amlops_deployment *d)
{
	free(d->name);
	free(d->endpoint_name);
	free(d->description);
	cJSON_Delete(d->tags);
	fx_asset_release(&d->model);
	fx_asset_release(&d->code);
	free(d->scoring_script);
	fx_asset_release(&d->environment.asset);
	free(d->instance_type);
	cJSON_Delete(d->settings);
	free(d);
}

static void
fx_ep_free(struct amlops_endpoint *ep)
{
	size_t i;

	free(ep->name);
	free(ep->compute_name);
	free(ep->description);
	cJSON_Delete(ep->tags);
	for (i = 0; i < ep->ntraffic; i++)
		free(ep->traffic[i].deployment);
	free(ep->traffic);
	for (i = 0; i < ep->nmirror; i++)
		free(ep->mirror[i].deployment);
	free(ep->mirror);
	cJSON_Delete(ep->identity);
	free(ep->public_network_access);
	for (i = 0; i < ep->ndeployments; i++)
		fx_dep_free(ep->deployments[i]);
	free(ep->deployments);
	free(ep);
}

static void
fx_free(struct amlops_spec *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->nendpoints; i++)
		fx_ep_free(s->endpoints[i]);
	free(s->endpoints);
	for (i = 0; i < s->nfiles; i++)
		free(s->files[i]);
	free(s->files);
	free(s);
}

static char *
fx_split(char **p, int sep)
{
	char *s = *p, *e;

	if (!s)
		return NULL;
	e = strchr(s, sep);
	if (e) {
		*e = '\0';
		*p = e + 1;
	} else {
		*p = NULL;
	}
	return s;
}

static void
fx_asset(struct amlops_asset *a, const char *v)
{
	char *copy = amlops_xstrdup(v), *p = copy, *f;

	fx_asset_release(a);
	if (strcmp(v, "-") == 0) {
		free(copy);
		return;
	}
	if (v[0] == '~') {
		p++;
		a->kind = AMLOPS_ASSET_INLINE;
		a->path = amlops_xstrdup(fx_split(&p, ','));
		f = fx_split(&p, ',');
		a->name = f && *f ? amlops_xstrdup(f) : NULL;
		f = fx_split(&p, ',');
		f = f ? f : "";
		snprintf(
		    a->content_id, sizeof(a->content_id), "%s", p ? p : "");
		if (strcmp(f, "*") == 0) {
			a->version = amlops_xstrndup(a->content_id, 12);
			a->version_auto = 1;
		} else if (*f) {
			a->version = amlops_xstrdup(f);
		}
	} else {
		a->kind = AMLOPS_ASSET_REF;
		a->ref = amlops_xstrdup(v);
		if ((f = strchr(copy, '@'))) {
			*f = '\0';
			a->name = amlops_xstrdup(copy);
			a->label = amlops_xstrdup(f + 1);
		} else if ((f = strchr(copy, ':'))) {
			*f = '\0';
			a->name = amlops_xstrdup(copy);
			a->version = amlops_xstrdup(f + 1);
		}
	}
	free(copy);
}

static void
fx_map(struct amlops_traffic **v, size_t *n, const char *text)
{
	char *copy = amlops_xstrdup(text), *p = copy, *item;

	while ((item = fx_split(&p, ',')) != NULL) {
		char *colon = strchr(item, ':');

		assert_non_null(colon);
		*colon = '\0';
		*v = amlops_xrealloc(*v, (*n + 1) * sizeof(**v));
		memset(&(*v)[*n], 0, sizeof(**v));
		(*v)[*n].deployment = amlops_xstrdup(item);
		(*v)[*n].percent = atoi(colon + 1);
		(*n)++;
	}
	free(copy);
}

static cJSON *
fx_tags(const char *text)
{
	cJSON *o = cJSON_CreateObject();
	char *copy = amlops_xstrdup(text), *p = copy, *item;

	while ((item = fx_split(&p, ',')) != NULL) {
		char *colon = strchr(item, ':');

		assert_non_null(colon);
		*colon = '\0';
		cJSON_AddStringToObject(o, item, colon + 1);
	}
	free(copy);
	return o;
}

static char *
fx_text(const char *v)
{
	char *s = amlops_xstrdup(v), *c;

	for (c = s; *c; c++)
		if (*c == '_')
			*c = ' ';
	return s;
}

static void
fx_ep_key(struct amlops_endpoint *ep, const char *k, const char *v)
{
	if (strcmp(k, "auth") == 0) {
		ep->auth_mode = strcmp(v, "key") == 0 ? AMLOPS_AUTH_KEY
		                : strcmp(v, "aml_token") == 0
		                    ? AMLOPS_AUTH_AML_TOKEN
		                    : AMLOPS_AUTH_AAD_TOKEN;
	} else if (strcmp(k, "compute") == 0) {
		ep->compute = strcmp(v, "kubernetes") == 0
		                  ? AMLOPS_COMPUTE_KUBERNETES
		                  : AMLOPS_COMPUTE_MANAGED;
	} else if (strcmp(k, "computename") == 0) {
		ep->compute_name = amlops_xstrdup(v);
	} else if (strcmp(k, "desc") == 0) {
		ep->description = fx_text(v);
	} else if (strcmp(k, "tags") == 0) {
		cJSON_Delete(ep->tags);
		ep->tags = fx_tags(v);
	} else if (strcmp(k, "traffic") == 0) {
		fx_map(&ep->traffic, &ep->ntraffic, v);
	} else if (strcmp(k, "mirror") == 0) {
		fx_map(&ep->mirror, &ep->nmirror, v);
	} else if (strcmp(k, "pna") == 0) {
		ep->public_network_access = amlops_xstrdup(v);
	} else if (strcmp(k, "identity") == 0) {
		const char *colon = strchr(v, ':');
		char *type = colon ? amlops_xstrndup(v, (size_t)(colon - v))
		                   : amlops_xstrdup(v);

		ep->identity = cJSON_CreateObject();
		cJSON_AddStringToObject(ep->identity, "type", type);
		if (colon)
			cJSON_AddObjectToObject(
			    cJSON_AddObjectToObject(
			        ep->identity, "userAssignedIdentities"),
			    colon + 1);
		free(type);
	} else {
		fail_msg("fixture: unknown endpoint key '%s'", k);
	}
}

static void
fx_dep_key(struct amlops_deployment *d, const char *k, const char *v)
{
	if (strcmp(k, "model") == 0) {
		fx_asset(&d->model, v);
	} else if (strcmp(k, "code") == 0) {
		fx_asset(&d->code, v);
	} else if (strcmp(k, "script") == 0) {
		d->scoring_script = amlops_xstrdup(v);
	} else if (strcmp(k, "env") == 0) {
		fx_asset(&d->environment.asset, v);
	} else if (strcmp(k, "type") == 0) {
		d->instance_type = amlops_xstrdup(v);
	} else if (strcmp(k, "count") == 0) {
		d->instance_count = atoi(v);
	} else if (strcmp(k, "compute") == 0) {
		d->compute = strcmp(v, "kubernetes") == 0
		                 ? AMLOPS_COMPUTE_KUBERNETES
		                 : AMLOPS_COMPUTE_MANAGED;
	} else if (strcmp(k, "settings") == 0) {
		cJSON_Delete(d->settings);
		d->settings = cJSON_Parse(v);
		assert_non_null(d->settings);
	} else if (strcmp(k, "desc") == 0) {
		d->description = fx_text(v);
	} else if (strcmp(k, "tags") == 0) {
		cJSON_Delete(d->tags);
		d->tags = fx_tags(v);
	} else {
		fail_msg("fixture: unknown deployment key '%s'", k);
	}
}

/*
 * After an "@file PATH" line, values get locations: the fixture's line
 * number and the column where the value starts in it.
 */
static void
fx_loc(struct amlops_loc *loc, const char *file, unsigned lineno,
    const char *line, const char *at)
{
	if (!file)
		return;
	loc->file = file;
	loc->line = lineno;
	loc->col = (unsigned)(at - line) + 1;
}

static void
fx_map_locs(struct amlops_traffic *t, size_t n, const char *file,
    unsigned lineno, const char *line, const char *value)
{
	const char *at = value;
	size_t i;

	for (i = 0; i < n; i++) {
		fx_loc(&t[i].loc, file, lineno, line, at);
		at = strchr(at, ',');
		at = at ? at + 1 : value;
	}
}

/* The line format above, into a spec the caller frees with fx_free(). */
static struct amlops_spec *
fx_parse(const char *text)
{
	struct amlops_spec *s = amlops_xcalloc(1, sizeof(*s));
	char *copy = amlops_xstrdup(text ? text : ""), *p = copy, *line;
	struct amlops_endpoint *ep = NULL;

	const char *file = NULL;
	unsigned lineno = 0;

	while ((line = fx_split(&p, '\n')) != NULL) {
		char *q = line, *kind, *name, *kv;
		struct amlops_deployment *d = NULL;
		struct amlops_loc *loc;

		lineno++;
		kind = fx_split(&q, ' ');
		if (!kind || !*kind)
			continue;
		name = fx_split(&q, ' ');
		assert_non_null(name);
		if (strcmp(kind, "@file") == 0) {
			s->files = amlops_xrealloc(
			    s->files, (s->nfiles + 1) * sizeof(*s->files));
			file = s->files[s->nfiles++] = amlops_xstrdup(name);
			continue;
		}
		if (strcmp(kind, "ep") == 0) {
			ep = amlops_xcalloc(1, sizeof(*ep));
			ep->name = amlops_xstrdup(name);
			ep->tags = cJSON_CreateObject();
			s->endpoints = amlops_xrealloc(s->endpoints,
			    (s->nendpoints + 1) * sizeof(*s->endpoints));
			s->endpoints[s->nendpoints++] = ep;
		} else {
			assert_string_equal(kind, "dep");
			assert_non_null(ep);
			d = amlops_xcalloc(1, sizeof(*d));
			d->name = amlops_xstrdup(name);
			d->endpoint_name = amlops_xstrdup(ep->name);
			d->tags = cJSON_CreateObject();
			d->settings = cJSON_CreateObject();
			d->instance_count = 1;
			ep->deployments = amlops_xrealloc(ep->deployments,
			    (ep->ndeployments + 1) * sizeof(*ep->deployments));
			ep->deployments[ep->ndeployments++] = d;
		}
		loc = d ? &d->loc : &ep->loc;
		fx_loc(loc, file, lineno, line, name);
		while ((kv = fx_split(&q, ' ')) != NULL) {
			char *eq = strchr(kv, '=');
			size_t nt = ep->ntraffic, nm = ep->nmirror;

			if (!*kv)
				continue;
			assert_non_null(eq);
			*eq = '\0';
			if (d)
				fx_dep_key(d, kv, eq + 1);
			else
				fx_ep_key(ep, kv, eq + 1);
			/* Each entry's column, from the value as written. */
			fx_map_locs(ep->traffic + nt, ep->ntraffic - nt, file,
			    lineno, line, eq + 1);
			fx_map_locs(ep->mirror + nm, ep->nmirror - nm, file,
			    lineno, line, eq + 1);
			if (d && strcmp(kv, "model") == 0)
				fx_loc(
				    &d->model.loc, file, lineno, line, eq + 1);
			if (d && strcmp(kv, "code") == 0)
				fx_loc(
				    &d->code.loc, file, lineno, line, eq + 1);
			if (d && strcmp(kv, "env") == 0)
				fx_loc(&d->environment.asset.loc, file, lineno,
				    line, eq + 1);
		}
	}
	free(copy);
	return s;
}

/* One line per step: "ep dep action aspect BEFORE -> AFTER # reason". */
static char *
steps_text(const struct amlops_plan *plan)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	size_t i;

	amlops_buf_puts(&b, "");
	for (i = 0; i < plan->nsteps; i++) {
		const struct amlops_step *s = &plan->steps[i];
		char *before = cJSON_PrintUnformatted(s->before);
		char *after = cJSON_PrintUnformatted(s->after);

		amlops_buf_printf(&b, "%s %s %s %s %s -> %s # %s\n",
		    s->endpoint, s->deployment ? s->deployment : "-",
		    amlops_plan_action_name(s->action),
		    amlops_plan_aspect_name(s->aspect), before, after,
		    s->reason);
		cJSON_free(before);
		cJSON_free(after);
	}
	for (i = 0; i < plan->nrefusals; i++) {
		const struct amlops_plan_msg *m = &plan->refusals[i];

		amlops_buf_printf(&b, "REFUSED %s %s: ", m->endpoint,
		    m->deployment ? m->deployment : "-");
		if (m->file)
			amlops_buf_printf(
			    &b, "%s:%u:%u: ", m->file, m->line, m->col);
		amlops_buf_printf(&b, "%s\n", m->msg);
	}
	for (i = 0; i < plan->nnotes; i++)
		amlops_buf_printf(&b, "NOTE %s: %s\n", plan->notes[i].endpoint,
		    plan->notes[i].msg);
	return amlops_buf_detach(&b);
}

/* Invariants ---------------------------------------------------------- */

struct sim_ep {
	char name[64];
	char deps[16][64];
	int exists[16];
	int traffic[16];
	int mirror[16];
	size_t ndeps;
	int alive;
};

static int
sim_dep(struct sim_ep *e, const char *name, int add)
{
	size_t i;

	for (i = 0; i < e->ndeps; i++)
		if (strcmp(e->deps[i], name) == 0)
			return (int)i;
	if (!add)
		return -1;
	assert_true(e->ndeps < 16);
	snprintf(e->deps[e->ndeps], sizeof(e->deps[0]), "%s", name);
	return (int)e->ndeps++;
}

static void
sim_load(struct sim_ep *e, const struct amlops_endpoint *ep)
{
	size_t i;

	memset(e, 0, sizeof(*e));
	if (!ep)
		return;
	snprintf(e->name, sizeof(e->name), "%s", ep->name);
	e->alive = 1;
	for (i = 0; i < ep->ndeployments; i++)
		e->exists[sim_dep(e, ep->deployments[i]->name, 1)] = 1;
	for (i = 0; i < ep->ntraffic; i++)
		e->traffic[sim_dep(e, ep->traffic[i].deployment, 1)] =
		    ep->traffic[i].percent;
	for (i = 0; i < ep->nmirror; i++)
		e->mirror[sim_dep(e, ep->mirror[i].deployment, 1)] =
		    ep->mirror[i].percent;
}

static void
sim_set_map(struct sim_ep *e, int *map, const cJSON *after, int is_mirror)
{
	const cJSON *x;
	size_t i;
	int sum = 0;

	for (i = 0; i < 16; i++)
		map[i] = 0;
	cJSON_ArrayForEach(x, after)
	{
		int k = sim_dep(e, x->string, 0);

		/* Traffic goes only to a deployment that exists by now. */
		assert_true(k >= 0);
		assert_true(e->exists[k]);
		map[k] = x->valueint;
		sum += x->valueint;
		/* Never live and mirror traffic on one deployment. */
		if (x->valueint > 0)
			assert_int_equal(
			    is_mirror ? e->traffic[k] : e->mirror[k], 0);
	}
	if (!is_mirror)
		assert_true(sum == 0 || sum == 100);
}

/*
 * Runs the plan of one endpoint over a model of its live state and checks
 * what the executor relies on; at the end the state is the desired one.
 */
static void
check_invariants(const struct amlops_plan *plan, const struct amlops_spec *d,
    const struct amlops_spec *l)
{
	size_t i, j, k;

	for (i = 0; i < plan->nsteps; i++) {
		const struct amlops_step *s = &plan->steps[i];
		const struct amlops_endpoint *de = NULL, *le = NULL;
		struct sim_ep e;
		int done_ep = 0;

		/* Each endpoint's steps come together. */
		if (i > 0 && strcmp(plan->steps[i - 1].endpoint, s->endpoint))
			for (j = 0; j + 1 < i; j++)
				assert_string_not_equal(
				    plan->steps[j].endpoint, s->endpoint);
		if (i > 0 &&
		    strcmp(plan->steps[i - 1].endpoint, s->endpoint) == 0)
			continue;
		for (j = 0; d && j < d->nendpoints; j++)
			if (strcmp(d->endpoints[j]->name, s->endpoint) == 0)
				de = d->endpoints[j];
		for (j = 0; l && j < l->nendpoints; j++)
			if (strcmp(l->endpoints[j]->name, s->endpoint) == 0)
				le = l->endpoints[j];
		sim_load(&e, le);
		for (j = i; j < plan->nsteps &&
		            strcmp(plan->steps[j].endpoint, s->endpoint) == 0;
		     j++) {
			const struct amlops_step *t = &plan->steps[j];
			int x;

			assert_false(done_ep);
			/* Every step names exactly one aspect and has a reason.
			 */
			assert_non_null(t->before);
			assert_non_null(t->after);
			assert_true(t->reason && *t->reason);
			if (!t->deployment) {
				if (t->aspect == AMLOPS_ASPECT_TRAFFIC)
					sim_set_map(&e, e.traffic, t->after, 0);
				else if (t->aspect ==
				         AMLOPS_ASPECT_MIRROR_TRAFFIC)
					sim_set_map(&e, e.mirror, t->after, 1);
				else if (t->action == AMLOPS_PLAN_CREATE) {
					assert_false(e.alive);
					e.alive = 1;
				} else if (t->action == AMLOPS_PLAN_DELETE) {
					assert_true(e.alive);
					done_ep = 1;
				}
				continue;
			}
			assert_true(e.alive);
			x = sim_dep(&e, t->deployment, 1);
			if (t->action == AMLOPS_PLAN_CREATE) {
				assert_false(e.exists[x]);
				/* Created with no traffic. */
				assert_int_equal(e.traffic[x], 0);
				e.exists[x] = 1;
			} else if (t->action == AMLOPS_PLAN_DELETE) {
				assert_true(e.exists[x]);
				/* Never deleted while it carries traffic. */
				assert_int_equal(e.traffic[x], 0);
				assert_int_equal(e.mirror[x], 0);
				e.exists[x] = 0;
			} else {
				assert_true(e.exists[x]);
			}
		}
		/* The end state is the desired one. */
		if (!de) {
			assert_true(done_ep);
			continue;
		}
		for (j = 0; j < de->ndeployments; j++) {
			int x = sim_dep(&e, de->deployments[j]->name, 0);

			assert_true(x >= 0);
			assert_true(e.exists[x]);
		}
		for (k = 0; k < e.ndeps; k++) {
			int want = 0, tr = 0, mi = 0;

			for (j = 0; j < de->ndeployments; j++)
				if (!strcmp(
				        de->deployments[j]->name, e.deps[k]))
					want = 1;
			for (j = 0; j < de->ntraffic; j++)
				if (!strcmp(
				        de->traffic[j].deployment, e.deps[k]))
					tr = de->traffic[j].percent;
			for (j = 0; j < de->nmirror; j++)
				if (!strcmp(
				        de->mirror[j].deployment, e.deps[k]))
					mi = de->mirror[j].percent;
			assert_int_equal(e.exists[k], want);
			assert_int_equal(e.traffic[k], tr);
			assert_int_equal(e.mirror[k], mi);
		}
	}
}

/* The table ------------------------------------------------------------ */

struct row {
	const char *name;
	const char *desired;
	const char *live;
	unsigned flags;
	const char *scope; /* comma-separated, or NULL */
	int rc;
	const char *expect;
	const char *err; /* amlops_err_last() when rc != 0 */
};

#define BLUE1                                                                  \
	"dep blue model=model-1:1 "                                            \
	"code=~model-1/onlinescoring,my-endpoint-blue-code,*,"                 \
	"1111111111111111111111111111111111111111 script=score.py "            \
	"env=env-model1:1 type=Standard_F2s_v2"
#define BLUE2 BLUE1 " count=2"
#define GREEN2                                                                 \
	"dep green model=model-2:1 "                                           \
	"code=~model-2/onlinescoring,my-endpoint-green-code,*,"                \
	"2222222222222222222222222222222222222222 script=score.py "            \
	"env=env-model2:1 type=Standard_F2s_v2 count=2"

/* The 2021 canary-declarative-flow, files 1 to 6. */
#define CANARY1 "ep my-endpoint auth=key traffic=blue:100\n" BLUE1
#define CANARY2 "ep my-endpoint auth=key traffic=blue:100\n" BLUE2
#define CANARY3                                                                \
	"ep my-endpoint auth=key traffic=blue:100,green:0\n" BLUE2 "\n" GREEN2
#define CANARY4                                                                \
	"ep my-endpoint auth=key traffic=blue:90,green:10\n" BLUE2 "\n" GREEN2
#define CANARY5                                                                \
	"ep my-endpoint auth=key traffic=blue:0,green:100\n" BLUE2 "\n" GREEN2
#define CANARY6 "ep my-endpoint auth=key traffic=green:100\n" GREEN2

#define OWNED "tags=managed-by:amlops"

/*
 * Row flags. Rows plan offline (every live endpoint is amlops' own)
 * unless LIVE; OTHER_TAG makes the ownership tag owner=gitops.
 */
#define LIVE 0x1
#define OTHER_TAG 0x2

static const struct row rows[] = {
    {"plan__nothing_gives_no_steps", NULL, NULL, 0, NULL, 0, "", NULL},
    {"plan__unchanged_endpoint_gives_no_steps", CANARY4, CANARY4, 0, NULL, 0,
        "", NULL},
    {"plan__canary_1_creates_endpoint_deployment_then_traffic", CANARY1, NULL,
        0, NULL, 0,
        "my-endpoint - create endpoint null -> "
        "{\"auth_mode\":\"key\",\"compute\":\"managed\"} "
        "# endpoint 'my-endpoint' is new\n"
        "my-endpoint blue create deployment null -> "
        "{\"model\":\"model-1:1\",\"code\":\"my-endpoint-blue-code:"
        "111111111111\",\"environment\":\"env-model1:1\","
        "\"instance_type\":\"Standard_F2s_v2\",\"instance_count\":1} "
        "# deployment 'blue' is new: model 'model-1:1', 1 x Standard_F2s_v2\n"
        "my-endpoint - update traffic {} -> {\"blue\":100} "
        "# traffic (none) -> blue=100\n",
        NULL},
    {"plan__canary_2_scales_blue_up", CANARY2, CANARY1, 0, NULL, 0,
        "my-endpoint blue update scale 1 -> 2 # instance_count 1 -> 2\n", NULL},
    {"plan__canary_3_new_deployment_gets_no_traffic", CANARY3, CANARY2, 0, NULL,
        0,
        "my-endpoint green create deployment null -> "
        "{\"model\":\"model-2:1\",\"code\":\"my-endpoint-green-code:"
        "222222222222\",\"environment\":\"env-model2:1\","
        "\"instance_type\":\"Standard_F2s_v2\",\"instance_count\":2} "
        "# deployment 'green' is new: model 'model-2:1', 2 x Standard_F2s_v2\n",
        NULL},
    {"plan__canary_4_flights_green", CANARY4, CANARY3, 0, NULL, 0,
        "my-endpoint - update traffic {\"blue\":100} -> "
        "{\"blue\":90,\"green\":10} "
        "# traffic blue=100 -> blue=90, green=10\n",
        NULL},
    {"plan__canary_5_moves_all_traffic", CANARY5, CANARY4, 0, NULL, 0,
        "my-endpoint - update traffic {\"blue\":90,\"green\":10} -> "
        "{\"green\":100} # traffic blue=90, green=10 -> green=100\n",
        NULL},
    {"plan__canary_6_deletes_blue", CANARY6, CANARY5, 0, NULL, 0,
        "my-endpoint blue delete deployment {\"model\":\"model-1:1\","
        "\"code\":\"my-endpoint-blue-code:111111111111\","
        "\"environment\":\"env-model1:1\",\"instance_type\":"
        "\"Standard_F2s_v2\",\"instance_count\":2} -> null "
        "# deployment 'blue' left the repository\n",
        NULL},
    {"plan__traffic_ignores_zero_entries",
        "ep e traffic=a:100,b:0\ndep a\ndep b",
        "ep e traffic=a:100\ndep a\ndep b", 0, NULL, 0, "", NULL},
    {"plan__deleted_deployment_loses_traffic_first",
        "ep e traffic=b:100\ndep b", "ep e traffic=a:50,b:50\ndep a\ndep b", 0,
        NULL, 0,
        "e - update traffic {\"a\":50,\"b\":50} -> {\"b\":100} "
        "# traffic a=50, b=50 -> b=100\n"
        "e a delete deployment {\"model\":null,\"code\":null,"
        "\"environment\":null,\"instance_type\":\"Standard_F4s_v2\","
        "\"instance_count\":1} -> null # deployment 'a' left the repository\n",
        NULL},
    {"plan__slots_come_in_design_order",
        "ep e desc=new traffic=blue:50,green:50\n"
        "dep blue model=m:2 count=1\n"
        "dep green env=env:2 count=3\n"
        "dep red",
        "ep e desc=old traffic=blue:100\n"
        "dep blue model=m:1 count=3\n"
        "dep green env=env:1 count=1\n"
        "dep old",
        0, NULL, 0,
        "e red create deployment null -> {\"model\":null,\"code\":null,"
        "\"environment\":null,\"instance_type\":\"Standard_F4s_v2\","
        "\"instance_count\":1} # deployment 'red' is new: 1 x Standard_F4s_v2\n"
        "e green update scale 1 -> 3 # instance_count 1 -> 3\n"
        "e blue update model \"m:1\" -> \"m:2\" # model 'm:1' -> 'm:2'\n"
        "e green update environment \"env:1\" -> \"env:2\" "
        "# environment 'env:1' -> 'env:2'\n"
        "e - update traffic {\"blue\":100} -> {\"blue\":50,\"green\":50} "
        "# traffic blue=100 -> blue=50, green=50\n"
        "e blue update scale 3 -> 1 # instance_count 3 -> 1\n"
        "e old delete deployment {\"model\":null,\"code\":null,"
        "\"environment\":null,\"instance_type\":\"Standard_F4s_v2\","
        "\"instance_count\":1} -> null # deployment 'old' left the repository\n"
        "e - update metadata {\"description\":\"old\",\"tags\":{}} -> "
        "{\"description\":\"new\",\"tags\":{}} # description changed\n",
        NULL},
    {"plan__aspects_of_one_deployment_in_order",
        "ep e\ndep d model=m:2 code=c:2 script=score.py env=env:2 "
        "settings={\"requestSettings\":{\"maxConcurrentRequestsPerInstance\":2}"
        "}"
        " desc=now tags=team:ml",
        "ep e\ndep d model=m:1 code=c:1 script=score.py env=env:1", 0, NULL, 0,
        "e d update environment \"env:1\" -> \"env:2\" "
        "# environment 'env:1' -> 'env:2'\n"
        "e d update code \"c:1\" -> \"c:2\" # code 'c:1' -> 'c:2'\n"
        "e d update model \"m:1\" -> \"m:2\" # model 'm:1' -> 'm:2'\n"
        "e d update settings {} -> {\"requestSettings\":"
        "{\"maxConcurrentRequestsPerInstance\":2}} "
        "# settings changed: requestSettings\n"
        "e d update metadata {\"description\":null,\"tags\":{}} -> "
        "{\"description\":\"now\",\"tags\":{\"team\":\"ml\"}} "
        "# description and tags changed\n",
        NULL},
    {"plan__scoring_script_change_is_a_code_step",
        "ep e\ndep d code=c:1 script=score2.py",
        "ep e\ndep d code=c:1 script=score.py", 0, NULL, 0,
        "e d update code \"c:1 (scoring_script score.py)\" -> "
        "\"c:1 (scoring_script score2.py)\" "
        "# code 'c:1 (scoring_script score.py)' -> "
        "'c:1 (scoring_script score2.py)'\n",
        NULL},
    {"plan__settings_name_every_changed_key",
        "ep e\ndep d settings={\"appInsightsEnabled\":true,"
        "\"livenessProbe\":{\"periodSeconds\":5}}",
        "ep e\ndep d settings={\"livenessProbe\":{\"periodSeconds\":10},"
        "\"environmentVariables\":{\"A\":\"1\"}}",
        0, NULL, 0,
        "e d update settings {\"livenessProbe\":{\"periodSeconds\":10},"
        "\"environmentVariables\":{\"A\":\"1\"}} -> "
        "{\"appInsightsEnabled\":true,"
        "\"livenessProbe\":{\"periodSeconds\":5}} "
        "# settings changed: appInsightsEnabled livenessProbe "
        "environmentVariables\n",
        NULL},
    {"plan__live_plan_ignores_service_defaults",
        "ep e\ndep d settings={\"requestSettings\":"
        "{\"maxConcurrentRequestsPerInstance\":2}}",
        "ep e " OWNED "\ndep d settings={\"requestSettings\":"
        "{\"maxConcurrentRequestsPerInstance\":2,\"requestTimeout\":\"PT5S\"},"
        "\"scaleSettings\":{\"scaleType\":\"Default\"}}",
        LIVE, NULL, 0, "", NULL},
    {"plan__live_plan_compares_the_settings_written",
        "ep e\ndep d settings={\"requestSettings\":"
        "{\"maxConcurrentRequestsPerInstance\":4},\"appInsightsEnabled\":true}",
        "ep e " OWNED "\ndep d settings={\"requestSettings\":"
        "{\"maxConcurrentRequestsPerInstance\":2,\"requestTimeout\":\"PT5S\"},"
        "\"scaleSettings\":{\"scaleType\":\"Default\"}}",
        LIVE, NULL, 0,
        "e d update settings {\"requestSettings\":"
        "{\"maxConcurrentRequestsPerInstance\":2}} -> {\"requestSettings\":"
        "{\"maxConcurrentRequestsPerInstance\":4},\"appInsightsEnabled\":true} "
        "# settings changed: requestSettings appInsightsEnabled\n",
        NULL},
    {"plan__offline_plan_compares_settings_exactly",
        "ep e\ndep d settings={\"requestSettings\":"
        "{\"maxConcurrentRequestsPerInstance\":2}}",
        "ep e\ndep d settings={\"requestSettings\":"
        "{\"maxConcurrentRequestsPerInstance\":2,\"requestTimeout\":\"PT5S\"}}",
        0, NULL, 0,
        "e d update settings {\"requestSettings\":"
        "{\"maxConcurrentRequestsPerInstance\":2,\"requestTimeout\":\"PT5S\"}} "
        "-> {\"requestSettings\":{\"maxConcurrentRequestsPerInstance\":2}} "
        "# settings changed: requestSettings\n",
        NULL},
    {"plan__settings_key_order_does_not_matter",
        "ep e\ndep d settings={\"a\":1,\"b\":{\"c\":2,\"d\":3}}",
        "ep e\ndep d settings={\"b\":{\"d\":3,\"c\":2},\"a\":1}", 0, NULL, 0,
        "", NULL},
    {"plan__instance_type_under_traffic_is_refused",
        "ep e traffic=blue:100\ndep blue type=Standard_F4s_v2\n"
        "ep other desc=x",
        "ep e traffic=blue:100\ndep blue type=Standard_F2s_v2\nep other", 0,
        NULL, AMLOPS_EINVALID,
        "other - update metadata {\"description\":null,\"tags\":{}} -> "
        "{\"description\":\"x\",\"tags\":{}} # description changed\n"
        "REFUSED e blue: deployment 'blue': instance_type cannot change in "
        "place ('Standard_F2s_v2' -> 'Standard_F4s_v2') and it carries "
        "traffic; way out: add a deployment with a new name and instance_type "
        "'Standard_F4s_v2', move the traffic to it, then remove 'blue'\n",
        "endpoint 'e': deployment 'blue': instance_type cannot change in place "
        "('Standard_F2s_v2' -> 'Standard_F4s_v2') and it carries traffic; way "
        "out: add a deployment with a new name and instance_type "
        "'Standard_F4s_v2', move the traffic to it, then remove 'blue'"},
    {"plan__refusal_drops_all_steps_of_the_endpoint",
        "ep e traffic=blue:100 desc=new\ndep blue type=B count=3\ndep green",
        "ep e traffic=blue:100\ndep blue type=A", 0, NULL, AMLOPS_EINVALID,
        "REFUSED e blue: deployment 'blue': instance_type cannot change in "
        "place ('A' -> 'B') and it carries traffic; way out: add a deployment "
        "with a new name and instance_type 'B', move the traffic to it, then "
        "remove 'blue'\n",
        NULL},
    {"plan__mirror_traffic_blocks_immutable_change_too",
        "ep e traffic=a:100\ndep a\ndep s type=B",
        "ep e traffic=a:100 mirror=s:10\ndep a\ndep s type=A", 0, NULL,
        AMLOPS_EINVALID,
        "REFUSED e s: deployment 's': instance_type cannot change in place "
        "('A' -> 'B') and it carries traffic; way out: add a deployment with "
        "a new name and instance_type 'B', move the traffic to it, then "
        "remove 's'\n",
        NULL},
    {"plan__instance_type_without_traffic_is_delete_and_create",
        "ep e traffic=a:50,b:50\ndep a\ndep b type=B count=2",
        "ep e traffic=a:100\ndep a\ndep b type=A", 0, NULL, 0,
        "e b delete deployment {\"model\":null,\"code\":null,"
        "\"environment\":null,\"instance_type\":\"A\",\"instance_count\":1} -> "
        "null # instance_type cannot change in place ('A' -> 'B') and 'b' "
        "carries no traffic: delete it, then create it again\n"
        "e b create deployment null -> {\"model\":null,\"code\":null,"
        "\"environment\":null,\"instance_type\":\"B\",\"instance_count\":2} "
        "# deployment 'b' created again with instance_type 'B'\n"
        "e - update traffic {\"a\":100} -> {\"a\":50,\"b\":50} "
        "# traffic a=100 -> a=50, b=50\n",
        NULL},
    {"plan__deployment_compute_is_immutable", "ep e\ndep d compute=kubernetes",
        "ep e\ndep d", 0, NULL, 0,
        "e d delete deployment {\"model\":null,\"code\":null,"
        "\"environment\":null,\"instance_type\":\"Standard_F4s_v2\","
        "\"instance_count\":1} -> null # compute cannot change in place "
        "('managed' -> 'kubernetes') and 'd' carries no traffic: delete it, "
        "then create it again\n"
        "e d create deployment null -> {\"model\":null,\"code\":null,"
        "\"environment\":null,\"instance_type\":\"defaultinstancetype\","
        "\"instance_count\":1} # deployment 'd' created again with compute "
        "'kubernetes'\n",
        NULL},
    {"plan__deployment_compute_under_traffic_is_refused",
        "ep e traffic=d:100\ndep d compute=kubernetes",
        "ep e traffic=d:100\ndep d", 0, NULL, AMLOPS_EINVALID,
        "REFUSED e d: deployment 'd': compute cannot change in place "
        "('managed' -> 'kubernetes') and it carries traffic; way out: add a "
        "deployment with a new name and compute 'kubernetes', move the "
        "traffic to it, then remove 'd'\n",
        NULL},
    {"plan__default_instance_type_matches_the_service_default",
        "ep e\ndep d\ndep k compute=kubernetes",
        "ep e\ndep d type=standard_f4s_v2\ndep k compute=kubernetes "
        "type=defaultinstancetype",
        0, NULL, 0, "", NULL},
    {"plan__endpoint_compute_change_is_refused",
        "ep e compute=kubernetes "
        "computename=k8s",
        "ep e", 0, NULL, AMLOPS_EINVALID,
        "REFUSED e -: compute cannot change in place ('managed' -> "
        "'kubernetes'); way out: create an endpoint with a new name, move "
        "clients to it, then remove 'e' from the repository\n",
        "endpoint 'e': compute cannot change in place ('managed' -> "
        "'kubernetes'); way out: create an endpoint with a new name, move "
        "clients to it, then remove 'e' from the repository"},
    {"plan__kubernetes_compute_target_is_immutable",
        "ep e compute=kubernetes computename=k2",
        "ep e compute=kubernetes computename=k1", 0, NULL, AMLOPS_EINVALID,
        "REFUSED e -: compute cannot change in place ('k1' -> 'k2'); way out: "
        "create an endpoint with a new name on 'k2', move clients to it, then "
        "remove 'e' from the repository\n",
        NULL},
    {"plan__auth_mode_updates_in_place_first", "ep e auth=aml_token desc=d",
        "ep e auth=key", 0, NULL, 0,
        "e - update endpoint {\"auth_mode\":\"key\"} -> "
        "{\"auth_mode\":\"aml_token\"} # auth_mode 'key' -> 'aml_token'\n"
        "e - update metadata {\"description\":null,\"tags\":{}} -> "
        "{\"description\":\"d\",\"tags\":{}} # description changed\n",
        NULL},
    {"plan__network_access_and_identity_update_together",
        "ep e pna=disabled identity=UserAssigned:/ids/a",
        "ep e pna=Enabled "
        "identity="
        "SystemAssigned",
        0, NULL, 0,
        "e - update endpoint {\"public_network_access\":\"Enabled\","
        "\"identity\":{\"type\":\"SystemAssigned\"}} -> "
        "{\"public_network_access\":\"disabled\",\"identity\":{\"type\":"
        "\"UserAssigned\",\"userAssignedIdentities\":{\"/ids/a\":{}}}} "
        "# public_network_access 'Enabled' -> 'disabled'; identity changed\n",
        NULL},
    {"plan__unset_network_access_and_identity_are_no_change", "ep e",
        "ep e pna=enabled identity=SystemAssigned", 0, NULL, 0, "", NULL},
    {"plan__mirror_added_after_traffic",
        "ep e traffic=a:100 mirror=b:10\ndep a\ndep b",
        "ep e traffic=a:50,b:50\ndep a\ndep b", 0, NULL, 0,
        "e - update traffic {\"a\":50,\"b\":50} -> {\"a\":100} "
        "# traffic a=50, b=50 -> a=100\n"
        "e - update mirror_traffic {} -> {\"b\":10} "
        "# mirror traffic (none) -> b=10\n",
        NULL},
    {"plan__mirror_removed_before_it_gets_traffic",
        "ep e traffic=a:90,b:10\ndep a\ndep b",
        "ep e traffic=a:100 mirror=b:20\ndep a\ndep b", 0, NULL, 0,
        "e - update mirror_traffic {\"b\":20} -> {} "
        "# mirror traffic b=20 -> (none)\n"
        "e - update traffic {\"a\":100} -> {\"a\":90,\"b\":10} "
        "# traffic a=100 -> a=90, b=10\n",
        NULL},
    {"plan__mirrored_deployment_leaves_after_mirror_stops",
        "ep e traffic=a:100\ndep a",
        "ep e traffic=a:100 mirror=s:10\ndep a\ndep s", 0, NULL, 0,
        "e - update mirror_traffic {\"s\":10} -> {} "
        "# mirror traffic s=10 -> (none)\n"
        "e s delete deployment {\"model\":null,\"code\":null,"
        "\"environment\":null,\"instance_type\":\"Standard_F4s_v2\","
        "\"instance_count\":1} -> null # deployment 's' left the repository\n",
        NULL},
    {"plan__mirror_and_traffic_swap_roles_in_three_steps",
        "ep e traffic=a:80,c:20 mirror=b:10\ndep a\ndep b\ndep c",
        "ep e traffic=a:80,b:20 mirror=c:10\ndep a\ndep b\ndep c", 0, NULL, 0,
        "e - update mirror_traffic {\"c\":10} -> {} "
        "# mirror traffic c=10 -> (none)\n"
        "e - update traffic {\"a\":80,\"b\":20} -> {\"a\":80,\"c\":20} "
        "# traffic a=80, b=20 -> a=80, c=20\n"
        "e - update mirror_traffic {} -> {\"b\":10} "
        "# mirror traffic (none) -> b=10\n",
        NULL},
    {"plan__new_endpoint_with_mirror",
        "ep e traffic=a:100 mirror=b:10\ndep a\ndep b", NULL, 0, NULL, 0,
        "e - create endpoint null -> {\"auth_mode\":\"key\","
        "\"compute\":\"managed\"} # endpoint 'e' is new\n"
        "e a create deployment null -> {\"model\":null,\"code\":null,"
        "\"environment\":null,\"instance_type\":\"Standard_F4s_v2\","
        "\"instance_count\":1} # deployment 'a' is new: 1 x Standard_F4s_v2\n"
        "e b create deployment null -> {\"model\":null,\"code\":null,"
        "\"environment\":null,\"instance_type\":\"Standard_F4s_v2\","
        "\"instance_count\":1} # deployment 'b' is new: 1 x Standard_F4s_v2\n"
        "e - update traffic {} -> {\"a\":100} # traffic (none) -> a=100\n"
        "e - update mirror_traffic {} -> {\"b\":10} "
        "# mirror traffic (none) -> b=10\n",
        NULL},
    {"plan__owned_endpoint_that_left_is_deleted", NULL,
        "ep gone " OWNED "\ndep b\ndep a", LIVE, NULL, 0,
        "gone - delete endpoint {\"deployments\":[\"a\",\"b\"]} -> null "
        "# endpoint 'gone' left the repository\n",
        NULL},
    {"plan__unowned_endpoint_is_left_alone", NULL,
        "ep theirs tags=managed-by:someone-else", LIVE, NULL, 0,
        "NOTE theirs: endpoint 'theirs' is not managed by amlops (no tag "
        "managed-by=amlops), left alone\n",
        NULL},
    {"plan__offline_plan_owns_every_base_endpoint", NULL, "ep old", 0, NULL, 0,
        "old - delete endpoint {\"deployments\":[]} -> null "
        "# endpoint 'old' left the repository\n",
        NULL},
    {"plan__owner_tag_is_an_option", NULL,
        "ep a tags=owner:gitops\nep b " OWNED, LIVE | OTHER_TAG, NULL, 0,
        "a - delete endpoint {\"deployments\":[]} -> null "
        "# endpoint 'a' left the repository\n"
        "NOTE b: endpoint 'b' is not managed by amlops (no tag owner=gitops), "
        "left alone\n",
        NULL},
    {"plan__owner_tag_is_not_a_metadata_change", "ep e tags=team:ml",
        "ep e tags=managed-by:amlops,team:ml", LIVE, NULL, 0, "", NULL},
    {"plan__offline_plan_ignores_the_owner_tag", "ep e tags=team:ml",
        "ep e tags=managed-by:amlops,team:ml", 0, NULL, 0, "", NULL},
    {"plan__live_plan_adopts_an_untagged_endpoint", "ep e tags=team:ml",
        "ep e tags=team:ml", LIVE, NULL, 0,
        "e - update metadata {\"description\":null,\"tags\":{\"team\":\"ml\"}} "
        "-> {\"description\":null,\"tags\":{\"team\":\"ml\","
        "\"managed-by\":\"amlops\"}} # tags changed: the target's endpoint "
        "has no tag managed-by=amlops, amlops adopts it\n",
        NULL},
    {"plan__deployment_tags_ignore_the_owner_tag",
        "ep e " OWNED "\ndep d tags=a:b",
        "ep e " OWNED "\ndep d "
        "tags=a:b,managed-by:amlops",
        LIVE, NULL, 0, "", NULL},
    {"plan__tags_change_is_metadata", "ep e tags=team:ml,stage:prod",
        "ep e tags=managed-by:amlops,team:ml", LIVE, NULL, 0,
        "e - update metadata {\"description\":null,\"tags\":"
        "{\"managed-by\":\"amlops\",\"team\":\"ml\"}} -> "
        "{\"description\":null,\"tags\":{\"team\":\"ml\",\"stage\":\"prod\","
        "\"managed-by\":\"amlops\"}} # tags changed\n",
        NULL},
    {"plan__scope_limits_the_endpoints", "ep a desc=x\nep b desc=y\nep c",
        "ep a\nep b\nep d " OWNED, 0, "b,d", 0,
        "b - update metadata {\"description\":null,\"tags\":{}} -> "
        "{\"description\":\"y\",\"tags\":{}} # description changed\n"
        "d - delete endpoint {\"deployments\":[]} -> null "
        "# endpoint 'd' left the repository\n",
        NULL},
    {"plan__empty_scope_plans_nothing", "ep a", NULL, 0, "", 0, "", NULL},
    {"plan__endpoints_in_name_order", "ep zeta\nep alpha\nep mid", NULL, 0,
        NULL, 0,
        "alpha - create endpoint null -> {\"auth_mode\":\"key\","
        "\"compute\":\"managed\"} # endpoint 'alpha' is new\n"
        "mid - create endpoint null -> {\"auth_mode\":\"key\","
        "\"compute\":\"managed\"} # endpoint 'mid' is new\n"
        "zeta - create endpoint null -> {\"auth_mode\":\"key\","
        "\"compute\":\"managed\"} # endpoint 'zeta' is new\n",
        NULL},
    {"plan__refusal_points_at_the_deployment",
        "@file endpoints/e.yml\nep e traffic=blue:100\ndep blue type=B",
        "ep e traffic=blue:100\ndep blue type=A", 0, NULL, AMLOPS_EINVALID,
        "REFUSED e blue: endpoints/e.yml:3:5: deployment 'blue': "
        "instance_type cannot change in place ('A' -> 'B') and it carries "
        "traffic; way out: add a deployment with a new name and "
        "instance_type 'B', move the traffic to it, then remove 'blue'\n",
        "endpoints/e.yml:3:5: endpoint 'e': deployment 'blue': instance_type "
        "cannot change in place ('A' -> 'B') and it carries traffic; way out: "
        "add a deployment with a new name and instance_type 'B', move the "
        "traffic to it, then remove 'blue'"},
    {"plan__traffic_refusals_point_at_the_entry",
        "@file e.yml\nep e traffic=a:60,ghost:30\ndep a", NULL, 0, NULL,
        AMLOPS_EINVALID,
        "REFUSED e ghost: e.yml:2:19: traffic names deployment 'ghost', "
        "which the endpoint does not have\n"
        "REFUSED e -: e.yml:2:14: traffic sums to 90%, expected 100 (or 0 "
        "for none)\n",
        "e.yml:2:19: endpoint 'e': traffic names deployment 'ghost', which "
        "the endpoint does not have (and 1 more refusals)"},
    {"plan__second_mirror_is_pointed_at",
        "@file e.yml\nep e traffic=a:100 mirror=b:10,c:10\ndep a\ndep b\ndep c",
        NULL, 0, NULL, AMLOPS_EINVALID,
        "REFUSED e -: e.yml:2:32: mirror traffic names 2 deployments, "
        "expected at most one\n",
        NULL},
    {"plan__content_refusal_points_at_the_asset",
        "@file d.yml\nep e\ndep d model=~models/m,m,3,"
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "ep e\ndep d model=~models/m,m,3,"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        0, NULL, AMLOPS_EINVALID,
        "REFUSED e d: d.yml:3:13: deployment 'd': model 'm:3' at 'models/m' "
        "changed (aaaaaaaaaaaa -> bbbbbbbbbbbb) but its version '3' did not; "
        "way out: give it a new version, or remove 'version' so that the "
        "content id is the version\n",
        NULL},
    {"plan__endpoint_refusal_points_at_the_endpoint",
        "@file ep.yml\nep e compute=kubernetes", "ep e", 0, NULL,
        AMLOPS_EINVALID,
        "REFUSED e -: ep.yml:2:4: compute cannot change in place ('managed' "
        "-> 'kubernetes'); way out: create an endpoint with a new name, move "
        "clients to it, then remove 'e' from the repository\n",
        NULL},
    {"plan__traffic_must_sum_to_100",
        "ep e traffic=a:60,b:30\ndep a\ndep b\n"
        "ep f desc=ok",
        "ep e\nep f", 0, NULL, AMLOPS_EINVALID,
        "f - update metadata {\"description\":null,\"tags\":{}} -> "
        "{\"description\":\"ok\",\"tags\":{}} # description changed\n"
        "REFUSED e -: traffic sums to 90%, expected 100 (or 0 for none)\n",
        "endpoint 'e': traffic sums to 90%, expected 100 (or 0 for none)"},
    {"plan__traffic_to_unknown_deployment_is_refused",
        "ep e traffic=ghost:100\ndep a", NULL, 0, NULL, AMLOPS_EINVALID,
        "REFUSED e ghost: traffic names deployment 'ghost', which the endpoint "
        "does not have\n",
        NULL},
    {"plan__traffic_out_of_range_is_refused",
        "ep e traffic=a:150,b:-50\ndep a\ndep b", NULL, 0, NULL,
        AMLOPS_EINVALID,
        "REFUSED e a: traffic to deployment 'a' is 150%, expected 0 to 100\n"
        "REFUSED e b: traffic to deployment 'b' is -50%, expected 0 to 100\n",
        "endpoint 'e': traffic to deployment 'a' is 150%, expected 0 to 100 "
        "(and 1 more refusals)"},
    {"plan__traffic_naming_a_deployment_twice_is_refused",
        "ep e traffic=a:50,a:50\ndep a", NULL, 0, NULL, AMLOPS_EINVALID,
        "REFUSED e a: traffic names deployment 'a' twice\n", NULL},
    {"plan__mirror_and_traffic_on_one_deployment_is_refused",
        "ep e traffic=a:100 mirror=a:10\ndep a", NULL, 0, NULL, AMLOPS_EINVALID,
        "REFUSED e a: deployment 'a' cannot get both traffic (100%) and "
        "mirror traffic (10%)\n",
        NULL},
    {"plan__two_mirrors_are_refused",
        "ep e traffic=a:100 mirror=b:10,c:10\ndep a\ndep b\ndep c", NULL, 0,
        NULL, AMLOPS_EINVALID,
        "REFUSED e -: mirror traffic names 2 deployments, expected at most "
        "one\n",
        NULL},
    {"plan__mirror_to_unknown_deployment_is_refused",
        "ep e mirror=x:200\ndep a", NULL, 0, NULL, AMLOPS_EINVALID,
        "REFUSED e x: mirror traffic to deployment 'x' is 200%, expected 0 to "
        "100\n"
        "REFUSED e x: mirror traffic names deployment 'x', which the endpoint "
        "does not have\n",
        NULL},
    {"plan__duplicate_deployment_is_refused", "ep e\ndep a\ndep a", NULL, 0,
        NULL, AMLOPS_EINVALID, "REFUSED e a: deployment 'a' is defined twice\n",
        NULL},
    {"plan__duplicate_live_deployment_is_refused", "ep e\ndep a",
        "ep e\ndep a\ndep a", 0, NULL, AMLOPS_EINVALID,
        "REFUSED e a: the target lists deployment 'a' twice\n", NULL},
    {"plan__duplicate_endpoint_is_refused", "ep e\nep e", NULL, 0, NULL,
        AMLOPS_EINVALID, "REFUSED e -: endpoint 'e' is defined 2 times\n",
        NULL},
    {"plan__duplicate_live_endpoint_is_refused", "ep e", "ep e\nep e", 0, NULL,
        AMLOPS_EINVALID, "REFUSED e -: the target lists endpoint 'e' 2 times\n",
        NULL},
    {"plan__label_compares_by_name_and_label", "ep e\ndep d env=env@latest",
        "ep e\ndep d env=env@latest", 0, NULL, 0, "", NULL},
    {"plan__live_label_matches_the_version_it_resolved_to",
        "ep e\ndep d env=env@latest", "ep e " OWNED "\ndep d env=env:33", LIVE,
        NULL, 0, "", NULL},
    {"plan__live_label_of_another_asset_is_a_change",
        "ep e\ndep d env=other@latest", "ep e " OWNED "\ndep d env=env:33",
        LIVE, NULL, 0,
        "e d update environment \"env:33\" -> \"other@latest\" "
        "# environment 'env:33' -> 'other@latest'\n",
        NULL},
    {"plan__offline_label_against_version_is_a_change",
        "ep e\ndep d env=env@latest", "ep e\ndep d env=env:33", 0, NULL, 0,
        "e d update environment \"env:33\" -> \"env@latest\" "
        "# environment 'env:33' -> 'env@latest'\n",
        NULL},
    {"plan__label_to_version_is_a_change", "ep e\ndep d env=env:3",
        "ep e\ndep d env=env@latest", 0, NULL, 0,
        "e d update environment \"env@latest\" -> \"env:3\" "
        "# environment 'env@latest' -> 'env:3'\n",
        NULL},
    {"plan__inline_asset_equals_its_registered_reference",
        "ep e\ndep d model=~models/m,e-d-model,*,"
        "abcdef0123456789abcdef0123456789abcdef01",
        "ep e\ndep d model=e-d-model:abcdef012345", 0, NULL, 0, "", NULL},
    {"plan__new_content_gives_a_new_version",
        "ep e\ndep d model=~models/m,e-d-model,*,"
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "ep e\ndep d model=~models/m,e-d-model,*,"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        0, NULL, 0,
        "e d update model \"e-d-model:aaaaaaaaaaaa\" -> "
        "\"e-d-model:bbbbbbbbbbbb\" "
        "# model 'e-d-model:aaaaaaaaaaaa' -> 'e-d-model:bbbbbbbbbbbb'\n",
        NULL},
    {"plan__content_change_under_a_written_version_is_refused",
        "ep e\ndep d model=~models/m,m,3,"
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "ep e\ndep d model=~models/m,m,3,"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        0, NULL, AMLOPS_EINVALID,
        "REFUSED e d: deployment 'd': model 'm:3' at 'models/m' changed "
        "(aaaaaaaaaaaa -> bbbbbbbbbbbb) but its version '3' did not; way out: "
        "give it a new version, or remove 'version' so that the content id is "
        "the version\n",
        NULL},
    {"plan__asset_removed_is_a_change_to_none", "ep e\ndep d",
        "ep e\ndep d code=c:1", 0, NULL, 0,
        "e d update code \"c:1\" -> null # code 'c:1' -> (none)\n", NULL},
    {"plan__deployment_metadata_ignores_empty_description",
        "ep e\ndep d desc=", "ep e\ndep d", 0, NULL, 0, "", NULL},
    {"plan__endpoint_with_no_deployments_and_traffic_emptied", "ep e",
        "ep e traffic=a:100\ndep a", 0, NULL, 0,
        "e - update traffic {\"a\":100} -> {} # traffic a=100 -> (none)\n"
        "e a delete deployment {\"model\":null,\"code\":null,"
        "\"environment\":null,\"instance_type\":\"Standard_F4s_v2\","
        "\"instance_count\":1} -> null # deployment 'a' left the repository\n",
        NULL},
};

static void
row_opts(
    struct amlops_plan_opts *opts, const struct row *r, const char ***scope)
{
	char *copy, *p, *item;
	size_t n = 0;

	*opts = (struct amlops_plan_opts)AMLOPS_PLAN_OPTS_INIT;
	*scope = NULL;
	if (!(r->flags & LIVE))
		opts->flags |= AMLOPS_PLAN_ALL_OWNED;
	if (r->flags & OTHER_TAG) {
		opts->owner_tag = "owner";
		opts->owner_value = "gitops";
	}
	if (!r->scope)
		return;
	*scope = amlops_xcalloc(8, sizeof(**scope));
	copy = amlops_xstrdup(r->scope);
	p = copy;
	while ((item = fx_split(&p, ',')) != NULL)
		if (*item)
			(*scope)[n++] = amlops_xstrdup(item);
	free(copy);
	opts->scope = *scope;
	opts->nscope = n;
}

static void
scope_free(const char **scope)
{
	size_t i;

	if (!scope)
		return;
	for (i = 0; scope[i]; i++)
		free((char *)scope[i]);
	free(scope);
}

static void
run_row(void **state)
{
	const struct row *r = *state;
	struct amlops_spec *d = fx_parse(r->desired);
	struct amlops_spec *l = fx_parse(r->live);
	struct amlops_plan *plan = NULL;
	struct amlops_plan_opts opts;
	const char **scope;
	char *got;
	int rc;

	row_opts(&opts, r, &scope);
	amlops_err_clear();
	rc = amlops_plan_build(
	    &plan, r->desired ? d : NULL, r->live ? l : NULL, &opts);
	assert_non_null(plan);
	got = steps_text(plan);
	assert_string_equal(got, r->expect);
	assert_int_equal(rc, r->rc);
	if (r->err)
		assert_string_equal(amlops_err_last(), r->err);
	if (rc == 0)
		assert_string_equal(amlops_err_last(), "");
	/* The executor's invariants hold on every row that plans. */
	check_invariants(plan, d, l);
	free(got);
	amlops_plan_free(plan);
	scope_free(scope);
	fx_free(d);
	fx_free(l);
}

static const struct amlops_plan_opts offline = {
    AMLOPS_PLAN_ALL_OWNED, NULL, NULL, NULL, 0};

/* Determinism ---------------------------------------------------------- */

static char *
plan_json(const struct amlops_spec *d, const struct amlops_spec *l)
{
	struct amlops_plan *plan = NULL;
	struct amlops_buf b = AMLOPS_BUF_INIT;

	amlops_plan_build(&plan, d, l, &offline);
	assert_int_equal(amlops_plan_render_json(&b, plan, "a", "b"), 0);
	amlops_plan_free(plan);
	return amlops_buf_detach(&b);
}

static void
reverse_spec(struct amlops_spec *s)
{
	size_t i, j;

	for (i = 0, j = s->nendpoints; i + 1 < j; i++, j--) {
		struct amlops_endpoint *t = s->endpoints[i];

		s->endpoints[i] = s->endpoints[j - 1];
		s->endpoints[j - 1] = t;
	}
	for (i = 0; i < s->nendpoints; i++) {
		struct amlops_endpoint *ep = s->endpoints[i];
		size_t a, b;

		for (a = 0, b = ep->ndeployments; a + 1 < b; a++, b--) {
			struct amlops_deployment *t = ep->deployments[a];

			ep->deployments[a] = ep->deployments[b - 1];
			ep->deployments[b - 1] = t;
		}
	}
}

static void
plan__same_input_any_order_same_plan(void **state)
{
	static const char *desired =
	    "ep b traffic=x:30,y:70\ndep x model=m:2\ndep y count=3\ndep z\n"
	    "ep a desc=hello\ndep p\ndep q\n"
	    "ep c traffic=k:100\ndep k";
	static const char *live = "ep a\ndep q\ndep old\n"
	                          "ep b traffic=x:100\ndep x model=m:1\ndep y\n"
	                          "ep gone " OWNED "\ndep g";
	struct amlops_spec *d = fx_parse(desired), *l = fx_parse(live);
	char *first = plan_json(d, l), *again = plan_json(d, l), *rev;

	assert_string_equal(first, again);
	reverse_spec(d);
	reverse_spec(l);
	rev = plan_json(d, l);
	assert_string_equal(first, rev);
	/* And it is not trivially empty. */
	assert_non_null(strstr(first, "\"create\":\t4,"));
	free(first);
	free(again);
	free(rev);
	fx_free(d);
	fx_free(l);
}

static void
plan__steps_borrow_the_desired_and_live_objects(void **state)
{
	struct amlops_spec *d = fx_parse("ep e traffic=a:100\ndep a count=2\n"
	                                 "dep n");
	struct amlops_spec *l = fx_parse("ep e traffic=a:100\ndep a\ndep old");
	struct amlops_plan *plan = NULL;

	assert_int_equal(amlops_plan_build(&plan, d, l, &offline), 0);
	assert_int_equal(plan->nsteps, 3);
	/* create n */
	assert_ptr_equal(plan->steps[0].desired_endpoint, d->endpoints[0]);
	assert_ptr_equal(plan->steps[0].live_endpoint, l->endpoints[0]);
	assert_ptr_equal(
	    plan->steps[0].desired_deployment, d->endpoints[0]->deployments[1]);
	assert_null(plan->steps[0].live_deployment);
	/* scale a */
	assert_ptr_equal(
	    plan->steps[1].desired_deployment, d->endpoints[0]->deployments[0]);
	assert_ptr_equal(
	    plan->steps[1].live_deployment, l->endpoints[0]->deployments[0]);
	/* delete old */
	assert_int_equal(plan->steps[2].action, AMLOPS_PLAN_DELETE);
	assert_null(plan->steps[2].desired_deployment);
	assert_ptr_equal(
	    plan->steps[2].live_deployment, l->endpoints[0]->deployments[1]);
	amlops_plan_free(plan);
	fx_free(d);
	fx_free(l);
}

/* The real loader on the 2021 corpus ----------------------------------- */

static const char *const canary_files[] = {
    "1-create-endpoint-with-blue.yml",
    "2-scale-blue.yml",
    "3-create-green.yml",
    "4-flight-green.yml",
    "5-full-green.yml",
    "6-delete-blue.yml",
};

#define CANARY_DIR "cli/endpoints/online/managed/canary-declarative-flow"

static struct amlops_spec *
load_corpus(const char *shared, const char *file)
{
	struct amlops_buf data = AMLOPS_BUF_INIT;
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	struct amlops_spec_opts opts = {0, NULL, NULL};
	struct amlops_spec_file f;
	struct amlops_spec *spec = NULL;
	char *disk = amlops_xasprintf(
	    "%s/corpus/azureml-examples-2021/" CANARY_DIR "/%s", shared, file);
	char *repo = amlops_xasprintf(CANARY_DIR "/%s", file);
	size_t i;
	int rc;

	assert_int_equal(amlops_file_read(&data, disk, 1 << 20), 0);
	f.path = repo;
	f.data = data.ptr;
	f.len = data.len;
	rc = amlops_spec_load(&spec, &diags, &f, 1, &opts);
	for (i = 0; i < diags.n; i++) {
		char *m = amlops_diag_format(&diags.v[i]);

		print_error("%s\n", m);
		free(m);
	}
	assert_int_equal(rc, 0);
	assert_non_null(spec);
	amlops_diags_release(&diags);
	amlops_buf_release(&data);
	free(disk);
	free(repo);
	return spec;
}

static void
plan__canary_corpus_through_the_real_loader(void **state)
{
	static const char *const want[] = {
	    "create endpoint -\ncreate deployment blue\n"
	    "update traffic - {\"blue\":100}\n",
	    "update scale blue 2\n",
	    "create deployment green\n",
	    "update traffic - {\"blue\":90,\"green\":10}\n",
	    "update traffic - {\"green\":100}\n",
	    "delete deployment blue\n",
	};
	const char *shared = getenv("AMLOPS_SHARED");
	struct amlops_spec *prev = NULL;
	struct amlops_buf probe = AMLOPS_BUF_INIT;
	char *first;
	size_t i, k;

	if (!shared) {
		print_message("SKIP: AMLOPS_SHARED is not set\n");
		skip();
	}
	first = amlops_xasprintf("%s/corpus/azureml-examples-2021/" CANARY_DIR
	                         "/%s",
	    shared, canary_files[0]);
	if (amlops_file_read(&probe, first, 1 << 20) < 0) {
		print_message("SKIP: %s is absent\n", first);
		free(first);
		skip();
	}
	free(first);
	amlops_buf_release(&probe);
	for (i = 0; i < AMLOPS_ARRAY_SIZE(canary_files); i++) {
		struct amlops_spec *cur = load_corpus(shared, canary_files[i]);
		struct amlops_plan *plan = NULL;
		struct amlops_buf got = AMLOPS_BUF_INIT;

		assert_int_equal(
		    amlops_plan_build(&plan, cur, prev, &offline), 0);
		for (k = 0; k < plan->nsteps; k++) {
			const struct amlops_step *st = &plan->steps[k];
			char *after = cJSON_PrintUnformatted(st->after);

			assert_string_equal(st->endpoint, "my-endpoint");
			amlops_buf_printf(&got, "%s %s %s",
			    amlops_plan_action_name(st->action),
			    amlops_plan_aspect_name(st->aspect),
			    st->deployment ? st->deployment : "-");
			if (st->aspect == AMLOPS_ASPECT_TRAFFIC ||
			    st->aspect == AMLOPS_ASPECT_SCALE)
				amlops_buf_printf(&got, " %s", after);
			amlops_buf_putc(&got, '\n');
			cJSON_free(after);
		}
		assert_string_equal(amlops_buf_cstr(&got), want[i]);
		check_invariants(plan, cur, prev);
		amlops_buf_release(&got);
		amlops_plan_free(plan);
		if (prev)
			amlops_spec_free(prev);
		prev = cur;
	}
	amlops_spec_free(prev);
}

/* Random scenarios ------------------------------------------------------ */

static uint32_t rnd_state;

static unsigned
rnd(unsigned n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 16) % n;
}

/*
 * One endpoint "e" as fixture text, valid as the loader or a target would
 * give it: traffic sums to 100 or is empty, at most one mirror, and never
 * to a deployment with live traffic.
 */
static void
rnd_endpoint(struct amlops_buf *b)
{
	static const char *const names[] = {"a", "b", "c", "d"};
	int have[4], pct[4] = {0, 0, 0, 0};
	unsigned i, n = 0, left = 100, last = 0;

	for (i = 0; i < 4; i++)
		if ((have[i] = rnd(10) < 6))
			n++;
	amlops_buf_puts(b, "ep e");
	if (n > 0 && rnd(5) > 0) {
		for (i = 0; i < 4; i++)
			if (have[i] && rnd(2))
				last = i + 1;
		if (last == 0)
			for (i = 0; i < 4; i++)
				if (have[i])
					last = i + 1;
		for (i = 0; i < 4; i++) {
			if (!have[i] || i + 1 > last)
				continue;
			pct[i] = i + 1 == last ? (int)left : (int)rnd(left + 1);
			left -= (unsigned)pct[i];
		}
		amlops_buf_puts(b, " traffic=");
		for (i = 0, n = 0; i < 4; i++)
			if (have[i] && (pct[i] > 0 || rnd(3) == 0))
				amlops_buf_printf(b, "%s%s:%d", n++ ? "," : "",
				    names[i], pct[i]);
		if (n == 0)
			amlops_buf_printf(b, "%s:0", names[last - 1]);
	}
	if (rnd(2) == 0) {
		unsigned start = rnd(4);

		for (i = 0; i < 4; i++) {
			unsigned k = (start + i) % 4;

			if (have[k] && pct[k] == 0) {
				amlops_buf_printf(
				    b, " mirror=%s:%u", names[k], 1 + rnd(50));
				break;
			}
		}
	}
	amlops_buf_putc(b, '\n');
	for (i = 0; i < 4; i++)
		if (have[i])
			amlops_buf_printf(b,
			    "dep %s type=%s count=%u model=m:%u\n", names[i],
			    rnd(4) ? "A" : "B", 1 + rnd(3), 1 + rnd(2));
}

static void
plan__random_scenarios_keep_the_invariants(void **state)
{
	unsigned round, planned = 0, refused = 0;

	rnd_state = 20261125;
	for (round = 0; round < 3000; round++) {
		struct amlops_buf db = AMLOPS_BUF_INIT, lb = AMLOPS_BUF_INIT;
		struct amlops_spec *d, *l;
		struct amlops_plan *plan = NULL;
		size_t i;
		int rc;

		rnd_endpoint(&db);
		rnd_endpoint(&lb);
		d = fx_parse(amlops_buf_cstr(&db));
		l = fx_parse(amlops_buf_cstr(&lb));
		rc = amlops_plan_build(&plan, d, l, &offline);
		if (rc == 0) {
			planned++;
			check_invariants(plan, d, l);
		} else {
			int only_immutable = 1;

			for (i = 0; i < plan->nrefusals; i++)
				if (!strstr(plan->refusals[i].msg,
				        "instance_type cannot change in "
				        "place") &&
				    !strstr(plan->refusals[i].msg,
				        "which the endpoint does not have"))
					only_immutable = 0;
			if (!only_immutable)
				print_error("desired:\n%slive:\n%s",
				    amlops_buf_cstr(&db), amlops_buf_cstr(&lb));
			assert_true(only_immutable);
			assert_int_equal(rc, AMLOPS_EINVALID);
			assert_int_equal(plan->nsteps, 0);
			refused++;
		}
		amlops_plan_free(plan);
		fx_free(d);
		fx_free(l);
		amlops_buf_release(&db);
		amlops_buf_release(&lb);
	}
	/* Both kinds of outcome were exercised. */
	print_message("%u planned, %u refused\n", planned, refused);
	assert_true(planned > 1000);
	assert_true(refused > 100);
}

static void
plan__many_endpoints_merge_by_name(void **state)
{
	struct amlops_buf db = AMLOPS_BUF_INIT, lb = AMLOPS_BUF_INIT;
	struct amlops_spec *d, *l;
	struct amlops_plan *plan = NULL;
	struct amlops_plan_summary n;
	const char *scope[] = {"ep-04996", "ep-00003", "ep-00006", "nope"};
	struct amlops_plan_opts opts = {
	    AMLOPS_PLAN_OFFLINE, NULL, NULL, scope, 4};
	unsigned i;

	/* Desired: every even number; live: every multiple of 3, shuffled. */
	for (i = 0; i < 5000; i += 2)
		amlops_buf_printf(&db, "ep ep-%05u\n", (i * 7919u) % 5000u);
	for (i = 0; i < 5000; i += 3)
		amlops_buf_printf(&lb, "ep ep-%05u\n", i);
	d = fx_parse(amlops_buf_cstr(&db));
	l = fx_parse(amlops_buf_cstr(&lb));
	assert_int_equal(amlops_plan_build(&plan, d, l, &offline), 0);
	amlops_plan_summary(&n, plan);
	/* 2500 even, 1667 multiples of 3, 834 of 6 in both. */
	assert_int_equal(n.create, 2500 - 834);
	assert_int_equal(n.delete, 1667 - 834);
	assert_int_equal(n.update, 0);
	for (i = 1; i < plan->nsteps; i++)
		assert_true(strcmp(plan->steps[i - 1].endpoint,
		                plan->steps[i].endpoint) < 0);
	amlops_plan_free(plan);
	/*
	 * A scope, unsorted, with an endpoint on both sides and unchanged
	 * (6) and one on neither side.
	 */
	assert_int_equal(amlops_plan_build(&plan, d, l, &opts), 0);
	assert_int_equal(plan->nsteps, 2);
	assert_string_equal(plan->steps[0].endpoint, "ep-00003");
	assert_int_equal(plan->steps[0].action, AMLOPS_PLAN_DELETE);
	assert_string_equal(plan->steps[1].endpoint, "ep-04996");
	assert_int_equal(plan->steps[1].action, AMLOPS_PLAN_CREATE);
	amlops_plan_free(plan);
	fx_free(d);
	fx_free(l);
	amlops_buf_release(&db);
	amlops_buf_release(&lb);
}

/* Helpers --------------------------------------------------------------- */

static void
plan__asset_identity_strings(void **state)
{
	struct amlops_asset a;
	char *s;

	memset(&a, 0, sizeof(a));
	assert_null(amlops_plan_asset_id(&a));
	assert_null(amlops_plan_asset_id(NULL));
	fx_asset(&a, "m:1");
	assert_string_equal((s = amlops_plan_asset_id(&a)), "m:1");
	free(s);
	fx_asset(&a, "m@latest");
	assert_string_equal((s = amlops_plan_asset_id(&a)), "m@latest");
	free(s);
	fx_asset(&a, "azureml://registries/r/models/m");
	assert_string_equal(
	    (s = amlops_plan_asset_id(&a)), "azureml://registries/r/models/m");
	free(s);
	fx_asset(&a, "~models/m,,,0123456789abcdef0123456789abcdef01234567");
	assert_string_equal(
	    (s = amlops_plan_asset_id(&a)), "models/m@0123456789ab");
	free(s);
	fx_asset(&a, "~models/m,,7,");
	assert_string_equal((s = amlops_plan_asset_id(&a)), "models/m:7");
	free(s);
	fx_asset_release(&a);
}

static void
plan__names_of_actions_and_aspects(void **state)
{
	static const char *const aspects[] = {"endpoint", "deployment",
	    "traffic", "mirror_traffic", "scale", "code", "model",
	    "environment", "settings", "metadata"};
	size_t i;

	for (i = 0; i < AMLOPS_ARRAY_SIZE(aspects); i++)
		assert_string_equal(
		    amlops_plan_aspect_name((enum amlops_plan_aspect)i),
		    aspects[i]);
	assert_string_equal(
	    amlops_plan_action_name(AMLOPS_PLAN_CREATE), "create");
	assert_string_equal(
	    amlops_plan_action_name(AMLOPS_PLAN_UPDATE), "update");
	assert_string_equal(
	    amlops_plan_action_name(AMLOPS_PLAN_DELETE), "delete");
}

/* Renderers ------------------------------------------------------------- */

/* A small plan with every kind of line: create, update, delete, refusal. */
static struct amlops_plan *
small_plan(struct amlops_spec **d, struct amlops_spec **l)
{
	struct amlops_plan *plan = NULL;

	*d = fx_parse(
	    "ep my-endpoint traffic=blue:90,green:10\n" BLUE2 "\n" GREEN2 "\n"
	    "ep stuck traffic=a:100\ndep a type=B");
	*l = fx_parse(
	    "ep my-endpoint " OWNED " traffic=blue:100\n" BLUE1 "\ndep old\n"
	    "ep stuck " OWNED " traffic=a:100\ndep a type=A\n"
	    "ep theirs");
	assert_int_equal(
	    amlops_plan_build(&plan, *d, *l, NULL), AMLOPS_EINVALID);
	return plan;
}

static const char small_text[] =
    "my-endpoint\n"
    "  + deployment green: deployment 'green' is new: model 'model-2:1', "
    "2 x Standard_F2s_v2\n"
    "  ~ deployment blue scale: 1 -> 2\n"
    "  ~ endpoint my-endpoint traffic: blue=100 -> blue=90, green=10\n"
    "  - deployment old: deployment 'old' left the repository\n"
    "\n"
    "stuck\n"
    "  ! refused: deployment 'a': instance_type cannot change in place "
    "('A' -> 'B') and it carries traffic; way out: add a deployment with a "
    "new name and instance_type 'B', move the traffic to it, then remove "
    "'a'\n"
    "\n"
    "theirs\n"
    "  note: endpoint 'theirs' is not managed by amlops (no tag "
    "managed-by=amlops), left alone\n"
    "\n"
    "Plan: 1 to create, 2 to update, 1 to delete.\n"
    "Refused: 1 endpoint left as it is (see '!' above).\n";

static void
plan__text_renderer_exact(void **state)
{
	struct amlops_spec *d, *l;
	struct amlops_plan *plan = small_plan(&d, &l);
	struct amlops_buf b = AMLOPS_BUF_INIT;

	assert_int_equal(amlops_plan_render_text(&b, plan, 0), 0);
	assert_string_equal(amlops_buf_cstr(&b), small_text);
	amlops_buf_release(&b);
	amlops_plan_free(plan);
	fx_free(d);
	fx_free(l);
}

static void
plan__text_renderer_colours_only_the_marks(void **state)
{
	struct amlops_spec *d, *l;
	struct amlops_plan *plan = small_plan(&d, &l);
	struct amlops_buf b = AMLOPS_BUF_INIT;
	const char *s;

	assert_int_equal(
	    amlops_plan_render_text(&b, plan, AMLOPS_PLAN_COLOR), 0);
	s = amlops_buf_cstr(&b);
	assert_non_null(strstr(s, "  \033[32m+\033[0m deployment green: "));
	assert_non_null(strstr(s, "  \033[33m~\033[0m deployment blue scale: "
	                          "1 -> 2\n"));
	assert_non_null(strstr(s, "  \033[31m-\033[0m deployment old: "));
	assert_non_null(strstr(s, "  \033[1;31m!\033[0m refused: "));
	assert_non_null(strstr(s, "\nPlan: 1 to create, 2 to update, 1 to "
	                          "delete.\n"));
	amlops_buf_release(&b);
	amlops_plan_free(plan);
	fx_free(d);
	fx_free(l);
}

static void
plan__text_no_changes(void **state)
{
	struct amlops_spec *d = fx_parse(CANARY1), *l = fx_parse(CANARY1);
	struct amlops_plan *plan = NULL;
	struct amlops_buf b = AMLOPS_BUF_INIT;

	assert_int_equal(amlops_plan_build(&plan, d, l, &offline), 0);
	assert_int_equal(amlops_plan_render_text(&b, plan, 0), 0);
	assert_string_equal(amlops_buf_cstr(&b), "No changes.\n");
	amlops_buf_reset(&b);
	assert_int_equal(amlops_plan_render_markdown(&b, plan, NULL, NULL), 0);
	assert_string_equal(amlops_buf_cstr(&b),
	    "### amlops plan\n\n"
	    "**No changes.**\n\n"
	    "<details>\n<summary>Plan as JSON</summary>\n\n"
	    "```json\n"
	    "{\n"
	    "\t\"base\":\tnull,\n"
	    "\t\"head\":\tnull,\n"
	    "\t\"steps\":\t[],\n"
	    "\t\"summary\":\t{\n"
	    "\t\t\"create\":\t0,\n"
	    "\t\t\"update\":\t0,\n"
	    "\t\t\"delete\":\t0\n"
	    "\t},\n"
	    "\t\"refused\":\t[],\n"
	    "\t\"notes\":\t[]\n"
	    "}\n"
	    "```\n\n</details>\n");
	amlops_buf_release(&b);
	amlops_plan_free(plan);
	fx_free(d);
	fx_free(l);
}

static void
plan__text_settings_and_metadata_show_each_key(void **state)
{
	struct amlops_spec *d =
	    fx_parse("ep e desc=new\ndep d settings={\"a\":1,\"b\":2}");
	struct amlops_spec *l =
	    fx_parse("ep e\ndep d settings={\"b\":3,\"c\":{\"x\":true}}");
	struct amlops_plan *plan = NULL;
	struct amlops_buf b = AMLOPS_BUF_INIT;

	assert_int_equal(amlops_plan_build(&plan, d, l, &offline), 0);
	assert_int_equal(amlops_plan_render_text(&b, plan, 0), 0);
	assert_string_equal(amlops_buf_cstr(&b),
	    "e\n"
	    "  ~ deployment d settings: a (none) -> 1; b 3 -> 2; "
	    "c {\"x\":true} -> (none)\n"
	    "  ~ endpoint e metadata: description (none) -> new\n"
	    "\n"
	    "Plan: 0 to create, 2 to update, 0 to delete.\n");
	amlops_buf_release(&b);
	amlops_plan_free(plan);
	fx_free(d);
	fx_free(l);
}

static void
plan__json_renderer_is_the_stable_format(void **state)
{
	struct amlops_spec *d = fx_parse(CANARY2), *l = fx_parse(CANARY1);
	struct amlops_plan *plan = NULL;
	struct amlops_buf b = AMLOPS_BUF_INIT;
	cJSON *j, *step;

	assert_int_equal(amlops_plan_build(&plan, d, l, &offline), 0);
	assert_int_equal(amlops_plan_render_json(&b, plan, "abc123", NULL), 0);
	assert_string_equal(amlops_buf_cstr(&b),
	    "{\n"
	    "\t\"base\":\t\"abc123\",\n"
	    "\t\"head\":\tnull,\n"
	    "\t\"steps\":\t[{\n"
	    "\t\t\t\"endpoint\":\t\"my-endpoint\",\n"
	    "\t\t\t\"deployment\":\t\"blue\",\n"
	    "\t\t\t\"action\":\t\"update\",\n"
	    "\t\t\t\"aspect\":\t\"scale\",\n"
	    "\t\t\t\"before\":\t1,\n"
	    "\t\t\t\"after\":\t2,\n"
	    "\t\t\t\"reason\":\t\"instance_count 1 -> 2\"\n"
	    "\t\t}],\n"
	    "\t\"summary\":\t{\n"
	    "\t\t\"create\":\t0,\n"
	    "\t\t\"update\":\t1,\n"
	    "\t\t\"delete\":\t0\n"
	    "\t},\n"
	    "\t\"refused\":\t[],\n"
	    "\t\"notes\":\t[]\n"
	    "}\n");
	/* One step's JSON is what the note embeds. */
	step = amlops_plan_step_to_json(&plan->steps[0]);
	j = cJSON_Parse(amlops_buf_cstr(&b));
	assert_true(cJSON_Compare(
	    step, cJSON_GetArrayItem(cJSON_GetObjectItem(j, "steps"), 0), 1));
	cJSON_Delete(step);
	cJSON_Delete(j);
	amlops_buf_release(&b);
	amlops_plan_free(plan);
	fx_free(d);
	fx_free(l);
}

static void
plan__json_carries_refusals_and_notes(void **state)
{
	struct amlops_spec *d, *l;
	struct amlops_plan *plan = small_plan(&d, &l);
	cJSON *j = amlops_plan_to_json(plan, NULL, "h");
	cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "refused"), 0);
	cJSON *n = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "notes"), 0);
	cJSON *sum = cJSON_GetObjectItem(j, "summary");

	assert_string_equal(
	    cJSON_GetObjectItem(r, "endpoint")->valuestring, "stuck");
	assert_string_equal(
	    cJSON_GetObjectItem(r, "deployment")->valuestring, "a");
	assert_non_null(strstr(cJSON_GetObjectItem(r, "message")->valuestring,
	    "way out: add a deployment with a new name"));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(r, "location")));
	assert_string_equal(
	    cJSON_GetObjectItem(n, "endpoint")->valuestring, "theirs");
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(n, "deployment")));
	assert_int_equal(cJSON_GetObjectItem(sum, "create")->valueint, 1);
	assert_int_equal(cJSON_GetObjectItem(sum, "update")->valueint, 2);
	assert_int_equal(cJSON_GetObjectItem(sum, "delete")->valueint, 1);
	assert_int_equal(
	    cJSON_GetArraySize(cJSON_GetObjectItem(j, "steps")), 4);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "base")));
	assert_string_equal(cJSON_GetObjectItem(j, "head")->valuestring, "h");
	cJSON_Delete(j);
	amlops_plan_free(plan);
	fx_free(d);
	fx_free(l);
}

static void
plan__markdown_is_a_ready_comment(void **state)
{
	struct amlops_spec *d, *l;
	struct amlops_plan *plan = small_plan(&d, &l);
	struct amlops_buf b = AMLOPS_BUF_INIT, json = AMLOPS_BUF_INIT;
	const char *s, *details;

	assert_int_equal(
	    amlops_plan_render_markdown(&b, plan, "1111111", "2222222"), 0);
	s = amlops_buf_cstr(&b);
	details = strstr(s, "<details>");
	assert_non_null(details);
	assert_memory_equal(s,
	    "### amlops plan\n\n"
	    "Base 1111111, head 2222222.\n\n"
	    "**Plan: 1 to create, 2 to update, 1 to delete.**\n\n"
	    "| # | endpoint | deployment | action | aspect | change |\n"
	    "|---|---|---|---|---|---|\n"
	    "| 1 | my-endpoint | green | + create | deployment | deployment "
	    "'green' is new: model 'model-2:1', 2 x Standard\\_F2s\\_v2 |\n"
	    "| 2 | my-endpoint | blue | ~ update | scale | 1 -&gt; 2 |\n"
	    "| 3 | my-endpoint |  | ~ update | traffic | blue=100 -&gt; "
	    "blue=90, green=10 |\n"
	    "| 4 | my-endpoint | old | - delete | deployment | deployment "
	    "'old' left the repository |\n"
	    "\n"
	    "**Refused** (these endpoints are left as they are):\n\n"
	    "- stuck: deployment 'a': instance\\_type cannot change in place "
	    "('A' -&gt; 'B') and it carries traffic; way out: add a deployment "
	    "with a new name and instance\\_type 'B', move the traffic to it, "
	    "then remove 'a'\n"
	    "\n"
	    "- Note: endpoint 'theirs' is not managed by amlops (no tag "
	    "managed-by=amlops), left alone\n"
	    "\n",
	    (size_t)(details - s));
	/* The details hold the JSON plan, fenced, and close. */
	assert_int_equal(
	    amlops_plan_render_json(&json, plan, "1111111", "2222222"), 0);
	assert_non_null(strstr(details, amlops_buf_cstr(&json)));
	assert_non_null(strstr(details,
	    "<details>\n<summary>Plan as JSON</summary>\n\n```json\n{"));
	assert_string_equal(s + b.len - strlen("}\n```\n\n</details>\n"),
	    "}\n```\n\n</details>\n");
	amlops_buf_release(&json);
	amlops_buf_release(&b);
	amlops_plan_free(plan);
	fx_free(d);
	fx_free(l);
}

static void
plan__markdown_escapes_user_text(void **state)
{
	struct amlops_spec *d =
	    fx_parse("ep e\ndep d settings={\"x\":\"a|b<script>```\"}");
	struct amlops_spec *l = fx_parse("ep e\ndep d");
	struct amlops_plan *plan = NULL;
	struct amlops_buf b = AMLOPS_BUF_INIT;
	const char *s;

	assert_int_equal(amlops_plan_build(&plan, d, l, &offline), 0);
	assert_int_equal(amlops_plan_render_markdown(&b, plan, NULL, "<b>"), 0);
	s = amlops_buf_cstr(&b);
	assert_non_null(strstr(s, "Base (none), head &lt;b&gt;.\n"));
	assert_non_null(strstr(
	    s, "| settings | x (none) -&gt; a\\|b&lt;script&gt;\\`\\`\\` |\n"));
	/* Raw markup only inside the fenced JSON, where it is shown as is. */
	assert_true(strstr(s, "<script>") > strstr(s, "````json\n"));
	/* The JSON holds ``` so its fence is longer. */
	assert_non_null(strstr(s, "\n````json\n{"));
	assert_non_null(strstr(s, "}\n````\n\n</details>\n"));
	amlops_buf_release(&b);
	amlops_plan_free(plan);
	fx_free(d);
	fx_free(l);
}

static void
plan__renderers_show_where_a_refusal_comes_from(void **state)
{
	struct amlops_spec *d = fx_parse(
	    "@file endpoints/e.yml\nep e traffic=a:60,b:30\ndep a\ndep b");
	struct amlops_plan *plan = NULL;
	struct amlops_buf b = AMLOPS_BUF_INIT;
	cJSON *j, *r;
	char *m;

	assert_int_equal(
	    amlops_plan_build(&plan, d, NULL, &offline), AMLOPS_EINVALID);
	assert_int_equal(amlops_plan_render_text(&b, plan, 0), 0);
	assert_string_equal(amlops_buf_cstr(&b),
	    "e\n"
	    "  ! refused: endpoints/e.yml:2:14: traffic sums to 90%, expected "
	    "100 (or 0 for none)\n"
	    "\n"
	    "No changes.\n"
	    "Refused: 1 endpoint left as it is (see '!' above).\n");
	amlops_buf_reset(&b);
	assert_int_equal(amlops_plan_render_markdown(&b, plan, NULL, NULL), 0);
	assert_non_null(strstr(amlops_buf_cstr(&b),
	    "- e: endpoints/e.yml:2:14: traffic sums to 90%, expected 100 (or "
	    "0 for none)\n"));
	j = amlops_plan_to_json(plan, NULL, NULL);
	r = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "refused"), 0);
	assert_string_equal(cJSON_GetObjectItem(r, "location")->valuestring,
	    "endpoints/e.yml:2:14");
	m = amlops_plan_msg_format(&plan->refusals[0]);
	assert_string_equal(m, "endpoints/e.yml:2:14: endpoint 'e': traffic "
	                       "sums to 90%, expected 100 (or 0 for none)");
	free(m);
	cJSON_Delete(j);
	amlops_buf_release(&b);
	amlops_plan_free(plan);
	fx_free(d);
}

static void
plan__renderers_stop_at_the_buffer_cap(void **state)
{
	struct amlops_spec *d, *l;
	struct amlops_plan *plan = small_plan(&d, &l);
	struct amlops_buf b;

	amlops_buf_init(&b, 64);
	assert_int_equal(amlops_plan_render_text(&b, plan, 0), AMLOPS_EINVALID);
	assert_true(b.len <= 64);
	amlops_buf_reset(&b);
	assert_int_equal(
	    amlops_plan_render_json(&b, plan, NULL, NULL), AMLOPS_EINVALID);
	amlops_buf_reset(&b);
	assert_int_equal(
	    amlops_plan_render_markdown(&b, plan, NULL, NULL), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(), "more than 64 bytes");
	amlops_buf_release(&b);
	amlops_plan_free(plan);
	fx_free(d);
	fx_free(l);
}

/*
 * The json renderer writes the text itself; it must stay byte for byte
 * cJSON_Print() of amlops_plan_to_json() (what the note stores), for
 * every kind of value a step can carry.
 */
static void
plan__json_renderer_matches_cjson_print(void **state)
{
	static const char *const values[] = {
	    "{}",
	    "[]",
	    "{\"a\": {}, \"b\": [], \"c\": [{}, []]}",
	    "{\"n\": [0, -0.0, 1, -1, 90, 0.1, 2.5, 1e-7, 1e20, -3e300, "
	    "2147483647, 2147483648, -2147483649, 123456789.123456789, "
	    "0.30000000000000004]}",
	    "{\"s\": \"q\\\" b\\\\ /\\b\\f\\n\\r\\t \\u0001\\u001f \\u00e9 "
	    "\\u2603\"}",
	    "{\"t\": true, \"f\": false, \"z\": null}",
	    "[1, \"x\", [2, [3, {\"deep\": {\"deeper\": [null]}}]]]",
	    "\"only a string\"",
	    "42",
	    "null",
	};
	struct amlops_plan *plan = amlops_xcalloc(1, sizeof(*plan));
	struct amlops_buf b = AMLOPS_BUF_INIT;
	cJSON *j;
	char *want;
	size_t i, n = AMLOPS_ARRAY_SIZE(values);

	(void)state;
	plan->steps = amlops_xcalloc(n + 1, sizeof(*plan->steps));
	for (i = 0; i < n + 1; i++) {
		struct amlops_step *s = &plan->steps[plan->nsteps++];

		s->endpoint = amlops_xstrdup("ep \"1\"\n");
		s->deployment = i % 2 ? amlops_xstrdup("blue") : NULL;
		s->action = (enum amlops_plan_action)(i % 3);
		s->aspect = AMLOPS_ASPECT_DEPLOYMENT;
		s->reason = i == n ? NULL : amlops_xasprintf("reason %zu", i);
		if (i < n) {
			s->after = cJSON_Parse(values[i]);
			assert_non_null(s->after);
			s->before =
			    i % 2 ? cJSON_Parse(values[n - 1 - i]) : NULL;
		}
	}
	/* a raw value and a NaN, which no parse gives */
	cJSON_AddItemToObject(
	    plan->steps[0].after, "raw", cJSON_CreateRaw("[7]"));
	cJSON_AddNumberToObject(plan->steps[0].after, "nan", NAN);
	plan->refusals = amlops_xcalloc(2, sizeof(*plan->refusals));
	plan->refusals[0].endpoint = amlops_xstrdup("r");
	plan->refusals[0].msg = amlops_xstrdup("no \"way\"");
	plan->refusals[0].file = amlops_xstrdup("e/r.yml");
	plan->refusals[0].line = 3;
	plan->refusals[0].col = 12;
	plan->refusals[1].endpoint = amlops_xstrdup("r2");
	plan->refusals[1].deployment = amlops_xstrdup("green");
	plan->refusals[1].msg = amlops_xstrdup("no");
	plan->nrefusals = 2;
	plan->notes = amlops_xcalloc(1, sizeof(*plan->notes));
	plan->notes[0].endpoint = amlops_xstrdup("x");
	plan->notes[0].msg = amlops_xstrdup("left alone");
	plan->nnotes = 1;

	j = amlops_plan_to_json(plan, "1111111", NULL);
	want = cJSON_Print(j);
	assert_int_equal(amlops_plan_render_json(&b, plan, "1111111", NULL), 0);
	assert_int_equal(b.len, strlen(want) + 1);
	assert_memory_equal(b.ptr, want, strlen(want));
	assert_int_equal(b.ptr[b.len - 1], '\n');
	cJSON_free(want);
	cJSON_Delete(j);

	/* and the empty plan */
	amlops_buf_reset(&b);
	for (i = 0; i < plan->nsteps; i++) {
		cJSON_Delete(plan->steps[i].before);
		cJSON_Delete(plan->steps[i].after);
		free(plan->steps[i].endpoint);
		free(plan->steps[i].deployment);
		free(plan->steps[i].reason);
		memset(&plan->steps[i], 0, sizeof(plan->steps[i]));
	}
	plan->nsteps = 0;
	j = amlops_plan_to_json(plan, NULL, NULL);
	want = cJSON_Print(j);
	assert_int_equal(amlops_plan_render_json(&b, plan, NULL, NULL), 0);
	assert_int_equal(b.len, strlen(want) + 1);
	assert_memory_equal(b.ptr, want, strlen(want));
	cJSON_free(want);
	cJSON_Delete(j);
	amlops_buf_release(&b);
	amlops_plan_free(plan);
}

static void
plan__summary_counts_and_free_accepts_null(void **state)
{
	struct amlops_spec *d, *l;
	struct amlops_plan *plan = small_plan(&d, &l);
	struct amlops_plan_summary n;

	amlops_plan_summary(&n, plan);
	assert_int_equal(n.create, 1);
	assert_int_equal(n.update, 2);
	assert_int_equal(n.delete, 1);
	amlops_plan_summary(&n, NULL);
	assert_int_equal(n.create + n.update + n.delete, 0);
	amlops_plan_free(NULL);
	amlops_plan_free(plan);
	fx_free(d);
	fx_free(l);
}

int
main(void)
{
	struct CMUnitTest tests[AMLOPS_ARRAY_SIZE(rows) + 32];
	size_t i, n = 0;

	for (i = 0; i < AMLOPS_ARRAY_SIZE(rows); i++) {
		struct CMUnitTest t = {
		    rows[i].name, run_row, NULL, NULL, (void *)&rows[i]};

		tests[n++] = t;
	}
#define ADD(f)                                                                 \
	do {                                                                   \
		struct CMUnitTest t = cmocka_unit_test(f);                     \
		tests[n++] = t;                                                \
	} while (0)
	ADD(plan__same_input_any_order_same_plan);
	ADD(plan__steps_borrow_the_desired_and_live_objects);
	ADD(plan__canary_corpus_through_the_real_loader);
	ADD(plan__random_scenarios_keep_the_invariants);
	ADD(plan__many_endpoints_merge_by_name);
	ADD(plan__asset_identity_strings);
	ADD(plan__names_of_actions_and_aspects);
	ADD(plan__text_renderer_exact);
	ADD(plan__text_renderer_colours_only_the_marks);
	ADD(plan__text_no_changes);
	ADD(plan__text_settings_and_metadata_show_each_key);
	ADD(plan__json_renderer_is_the_stable_format);
	ADD(plan__json_carries_refusals_and_notes);
	ADD(plan__markdown_is_a_ready_comment);
	ADD(plan__markdown_escapes_user_text);
	ADD(plan__renderers_show_where_a_refusal_comes_from);
	ADD(plan__renderers_stop_at_the_buffer_cap);
	ADD(plan__json_renderer_matches_cjson_print);
	ADD(plan__summary_counts_and_free_accepts_null);
#undef ADD
	return _cmocka_run_group_tests("plan", tests, n, NULL, NULL);
}
