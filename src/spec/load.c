/*
 * amlops_spec_load(): files -> endpoints. Each file is parsed, recognised
 * (endpoint, deployment, or something to skip), checked on its own, and
 * then, unless the load is ALONE, the files are checked as a whole:
 * deployments join the endpoint they name, traffic names deployments that
 * exist, names are unique.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "amlops/err.h"
#include "amlops/util.h"
#include "spec/load.h"

#define MAX_DEPLOYMENTS 20 /* per endpoint: the service's limit */
#define MAX_FILE_DIAGS 100 /* shown per file */

struct loose {
	struct amlops_deployment *dep;
	unsigned line; /* of its endpoint_name value */
	unsigned col;
};

/* What one pass of linking sees: every file, or one file when ALONE. */
struct unit {
	struct amlops_endpoint **eps;
	unsigned char *has_inline; /* per endpoint: 2021 deployments: */
	size_t neps;
	size_t capeps;
	struct loose *loose;
	size_t nloose;
	size_t caploose;
};

static void
unit_add_ep(struct unit *u, struct amlops_endpoint *ep, int has_inline)
{
	if (u->neps == u->capeps) {
		u->capeps = u->capeps ? u->capeps * 2 : 8;
		u->eps = amlops_xrealloc(u->eps, u->capeps * sizeof(*u->eps));
		u->has_inline = amlops_xrealloc(u->has_inline, u->capeps);
	}
	u->has_inline[u->neps] = (unsigned char)has_inline;
	u->eps[u->neps++] = ep;
}

static void
unit_add_loose(
    struct unit *u, struct amlops_deployment *dep, const struct ynode *at)
{
	if (u->nloose == u->caploose) {
		u->caploose = u->caploose ? u->caploose * 2 : 8;
		u->loose =
		    amlops_xrealloc(u->loose, u->caploose * sizeof(*u->loose));
	}
	u->loose[u->nloose].dep = dep;
	u->loose[u->nloose].line = at ? at->line : dep->loc.line;
	u->loose[u->nloose].col = at ? at->col : dep->loc.col;
	u->nloose++;
}

static void
ep_add_dep(struct amlops_endpoint *ep, struct amlops_deployment *dep)
{
	ep->deployments = amlops_xrealloc(
	    ep->deployments, (ep->ndeployments + 1) * sizeof(*ep->deployments));
	ep->deployments[ep->ndeployments++] = dep;
}

static int
traffic_cmp(const void *a, const void *b)
{
	const struct amlops_traffic *x = a, *y = b;

	return strcmp(x->deployment, y->deployment);
}

static int
parse_percent(const char *s, long *out)
{
	char *end;
	long x;

	if (!*s)
		return -1;
	x = strtol(s, &end, 10);
	if (*end || x < 0 || x > 100)
		return -1;
	*out = x;
	return 0;
}

/* traffic / mirror_traffic: {deployment: percent} */
static int
parse_traffic(struct spec_ctx *c, const struct ynode *v, const char *key,
    struct amlops_traffic **out, size_t *nout)
{
	struct amlops_traffic *t;
	size_t i, n = 0;

	/* `traffic:` with nothing after it is an empty map */
	if (spec_ynode_is_null(v)) {
		*out = NULL;
		*nout = 0;
		return 0;
	}
	if (spec_expect(c, v, key, YN_MAP) < 0)
		return -1;
	t = amlops_xcalloc(v->n ? v->n : 1, sizeof(*t));
	for (i = 0; i < v->n; i++) {
		const struct ynode *k = v->u.kids[2 * i],
		                   *x = v->u.kids[2 * i + 1];
		long pct;
		size_t j;

		if (k->type != YN_SCALAR)
			continue;
		for (j = 0; j < n; j++)
			if (!strcmp(t[j].deployment, k->u.s.str))
				break;
		if (j < n)
			continue; /* a duplicate key, reported */
		if (x->type != YN_SCALAR || !x->plain ||
		    parse_percent(x->u.s.str, &pct) < 0) {
			spec_err(c, x,
			    "%s for '%s' must be an integer from 0 to "
			    "100, not %s%s%s",
			    key, k->u.s.str, x->type == YN_SCALAR ? "'" : "",
			    x->type == YN_SCALAR ? x->u.s.str
			                         : spec_ynode_kind(x),
			    x->type == YN_SCALAR ? "'" : "");
			continue;
		}
		t[n].deployment = amlops_xstrdup(k->u.s.str);
		t[n].percent = (int)pct;
		t[n].loc.file = c->file;
		t[n].loc.line = k->line;
		t[n].loc.col = k->col;
		n++;
	}
	qsort(t, n, sizeof(*t), traffic_cmp);
	*out = t;
	*nout = n;
	return 0;
}

static void
parse_identity(
    struct spec_ctx *c, const struct ynode *v, struct amlops_endpoint *ep)
{
	static const char *const keys[] = {"type", "user_assigned_identities"};
	static const char *const types[] = {"system_assigned", "user_assigned",
	    "system_assigned,user_assigned", "none"};
	static const char *const rtypes[] = {"SystemAssigned", "UserAssigned",
	    "SystemAssigned,UserAssigned", "None"};
	const struct ynode *f[2];
	cJSON *o, *uai;
	size_t i;
	int t;

	if (spec_expect(c, v, "identity", YN_MAP) < 0)
		return;
	spec_fields(c, v, "'identity'", keys, 2, f, NULL);
	if (!f[0]) {
		spec_err(c, v,
		    "'identity' needs 'type' ('system_assigned' or "
		    "'user_assigned')");
		return;
	}
	if (spec_get_enum(c, f[0], "type", types, 4, &t) < 0)
		return;
	if (!(o = cJSON_CreateObject()))
		abort();
	cJSON_AddStringToObject(o, "type", rtypes[t]);
	if (f[1]) {
		if (t != 1 && t != 2) {
			spec_err(c, f[1],
			    "'user_assigned_identities' needs "
			    "identity type 'user_assigned'");
			cJSON_Delete(o);
			return;
		}
		if (spec_expect(c, f[1], "user_assigned_identities", YN_SEQ) <
		    0) {
			cJSON_Delete(o);
			return;
		}
		uai = cJSON_AddObjectToObject(o, "userAssignedIdentities");
		for (i = 0; i < f[1]->n; i++) {
			static const char *const ukeys[] = {"resource_id"};
			const struct ynode *x = f[1]->u.kids[i], *r[1];
			const char *s;

			if (spec_expect(
			        c, x, "user_assigned_identities", YN_MAP) < 0)
				continue;
			spec_fields(c, x, "a user-assigned identity", ukeys, 1,
			    r, NULL);
			if (!r[0]) {
				spec_err(c, x,
				    "a user-assigned identity needs "
				    "'resource_id'");
				continue;
			}
			if (spec_get_str(c, r[0], "resource_id", &s) == 0 &&
			    !cJSON_GetObjectItemCaseSensitive(uai, s))
				cJSON_AddObjectToObject(uai, s);
		}
	}
	ep->identity = o;
}

/* "azureml:name" or "name" -> "name" */
static const char *
compute_name(const char *s)
{
	return strncmp(s, "azureml:", 8) ? s : s + 8;
}

enum {
	P_SCHEMA,
	P_NAME,
	P_TYPE,
	P_DESCRIPTION,
	P_TAGS,
	P_PROPERTIES,
	P_AUTH_MODE,
	P_TRAFFIC,
	P_MIRROR_TRAFFIC,
	P_IDENTITY,
	P_PUBLIC_NETWORK_ACCESS,
	P_COMPUTE,
	P_TARGET,
	P_DEPLOYMENTS,
	P__N
};

static const char *const ep_keys[P__N] = {
    [P_SCHEMA] = "$schema",
    [P_NAME] = "name",
    [P_TYPE] = "type",
    [P_DESCRIPTION] = "description",
    [P_TAGS] = "tags",
    [P_PROPERTIES] = "properties",
    [P_AUTH_MODE] = "auth_mode",
    [P_TRAFFIC] = "traffic",
    [P_MIRROR_TRAFFIC] = "mirror_traffic",
    [P_IDENTITY] = "identity",
    [P_PUBLIC_NETWORK_ACCESS] = "public_network_access",
    [P_COMPUTE] = "compute",
    [P_TARGET] = "target",
    [P_DEPLOYMENTS] = "deployments",
};

static void
check_traffic_sums(struct spec_ctx *c, struct amlops_endpoint *ep,
    const struct ynode *tv, const struct ynode *mv)
{
	size_t i, j;
	int sum = 0;

	for (i = 0; i < ep->ntraffic; i++)
		sum += ep->traffic[i].percent;
	if (ep->ntraffic > 0 && sum != 100)
		spec_err(c, tv, "traffic must add up to 100, not %d", sum);
	if (!ep->nmirror)
		return;
	if (ep->nmirror > 1) {
		spec_err(c, mv,
		    "mirror_traffic may name one deployment, not %zu "
		    "(the service's rule)",
		    ep->nmirror);
		return;
	}
	if (ep->mirror[0].percent > 50) {
		const struct amlops_loc *l = &ep->mirror[0].loc;

		amlops_diags_add(c->diags, c->file, l->line, l->col,
		    "mirror_traffic for '%s' must be at most 50 percent "
		    "(the service's limit), not %d",
		    ep->mirror[0].deployment, ep->mirror[0].percent);
		c->errors++;
	}
	for (j = 0; j < ep->ntraffic; j++)
		if (!strcmp(
		        ep->traffic[j].deployment, ep->mirror[0].deployment) &&
		    ep->traffic[j].percent > 0) {
			const struct amlops_loc *l = &ep->mirror[0].loc;

			amlops_diags_add(c->diags, c->file, l->line, l->col,
			    "deployment '%s' takes live traffic, so it "
			    "cannot also take mirrored traffic (the "
			    "service's rule)",
			    ep->mirror[0].deployment);
			c->errors++;
		}
}

static void
parse_endpoint(
    struct spec_ctx *c, const struct ynode *m, int k8s_schema, struct unit *u)
{
	static const char *const ep_types[] = {"online"};
	static const char *const pna[] = {"enabled", "disabled"};
	const struct ynode *f[P__N], *k[P__N];
	struct amlops_endpoint *ep;
	const char *name, *s;
	char why[160];
	size_t i;
	int t, has_inline = 0;

	spec_fields(c, m, "an endpoint", ep_keys, P__N, f, k);
	if (!f[P_NAME]) {
		spec_err(c, m, "an endpoint needs 'name'");
		return;
	}
	if (spec_get_str(c, f[P_NAME], "name", &name) < 0)
		return;
	if (!amlops_spec_endpoint_name_ok(name, why, sizeof(why)))
		spec_err(c, f[P_NAME],
		    "endpoint name '%s' breaks Azure's naming "
		    "rules: %s",
		    name, why);
	ep = amlops_endpoint_new(name);
	ep->file = amlops_xstrdup(c->file);
	ep->loc.file = c->file;
	ep->loc.line = f[P_NAME]->line;
	ep->loc.col = f[P_NAME]->col;
	if (k8s_schema)
		ep->compute = AMLOPS_COMPUTE_KUBERNETES;

	if (f[P_TYPE])
		spec_get_enum(c, f[P_TYPE], "type", ep_types, 1, &t);
	if (f[P_DESCRIPTION] &&
	    spec_get_str(c, f[P_DESCRIPTION], "description", &s) == 0)
		ep->description = amlops_xstrdup(s);
	if (f[P_TAGS]) {
		cJSON *tags = NULL;

		if (spec_get_strmap(c, f[P_TAGS], "tags", &tags) == 0) {
			cJSON_Delete(ep->tags);
			ep->tags = tags;
		}
	}
	if (f[P_PROPERTIES]) {
		cJSON *p = NULL;

		if (spec_get_strmap(c, f[P_PROPERTIES], "properties", &p) == 0)
			cJSON_Delete(p);
	}
	if (f[P_AUTH_MODE]) {
		static const char *const modes[] = {
		    "key", "aml_token", "aad_token"};

		if (f[P_AUTH_MODE]->type == YN_SCALAR &&
		    (t = amlops_auth_mode_parse(f[P_AUTH_MODE]->u.s.str)) >= 0)
			ep->auth_mode = (enum amlops_auth_mode)t;
		else
			spec_get_enum(
			    c, f[P_AUTH_MODE], "auth_mode", modes, 3, &t);
	}
	if (f[P_PUBLIC_NETWORK_ACCESS] &&
	    spec_get_enum(c, f[P_PUBLIC_NETWORK_ACCESS],
	        "public_network_access", pna, 2, &t) == 0)
		ep->public_network_access = amlops_xstrdup(pna[t]);
	if (f[P_COMPUTE] && f[P_TARGET])
		spec_err(c, k[P_TARGET],
		    "give 'compute' or the 2021 'target', "
		    "not both");
	else if (f[P_COMPUTE] || f[P_TARGET]) {
		const struct ynode *cv =
		    f[P_COMPUTE] ? f[P_COMPUTE] : f[P_TARGET];

		if (spec_get_str(
		        c, cv, f[P_COMPUTE] ? "compute" : "target", &s) == 0) {
			ep->compute = AMLOPS_COMPUTE_KUBERNETES;
			ep->compute_name = amlops_xstrdup(compute_name(s));
		}
	}
	if (f[P_IDENTITY])
		parse_identity(c, f[P_IDENTITY], ep);
	if (f[P_TRAFFIC])
		parse_traffic(
		    c, f[P_TRAFFIC], "traffic", &ep->traffic, &ep->ntraffic);
	if (f[P_MIRROR_TRAFFIC])
		parse_traffic(c, f[P_MIRROR_TRAFFIC], "mirror_traffic",
		    &ep->mirror, &ep->nmirror);
	check_traffic_sums(c, ep, f[P_TRAFFIC], f[P_MIRROR_TRAFFIC]);
	if (f[P_DEPLOYMENTS] &&
	    spec_expect(c, f[P_DEPLOYMENTS], "deployments", YN_SEQ) == 0) {
		has_inline = 1;
		for (i = 0; i < f[P_DEPLOYMENTS]->n; i++) {
			const struct ynode *d = f[P_DEPLOYMENTS]->u.kids[i];
			struct amlops_deployment *dep;

			if (spec_expect(c, d, "deployments", YN_MAP) < 0)
				continue;
			dep = spec_parse_deployment(c, d, ep->name, 1,
			    ep->compute == AMLOPS_COMPUTE_KUBERNETES, NULL);
			if (dep)
				ep_add_dep(ep, dep);
		}
	}
	unit_add_ep(u, ep, has_inline);
}

enum fkind {
	F_SKIP,
	F_ENDPOINT,
	F_DEPLOYMENT,
};

static int
has_key(const struct ynode *m, const char *key)
{
	return spec_ynode_get(m, key, NULL) != NULL;
}

/* What the $schema URL names: ".../managedOnlineEndpoint.schema.json" */
static char *
schema_kind(const char *url)
{
	const char *slash = strrchr(url, '/'), *b = slash ? slash + 1 : url;
	const char *dot = strchr(b, '.');

	return amlops_xstrndup(b, dot ? (size_t)(dot - b) : strlen(b));
}

/*
 * Endpoint, deployment, or neither (with the reason in *why). `k8s` is
 * set for a Kubernetes endpoint schema.
 */
static enum fkind
classify(const struct ynode *root, char **why, int *k8s)
{
	const struct ynode *schema = spec_ynode_get(root, "$schema", NULL);
	int ep_keys_seen, dep_keys_seen;

	*why = NULL;
	*k8s = 0;
	ep_keys_seen = has_key(root, "deployments") ||
	               has_key(root, "traffic") || has_key(root, "auth_mode") ||
	               has_key(root, "mirror_traffic");
	dep_keys_seen =
	    has_key(root, "model") || has_key(root, "code_configuration") ||
	    has_key(root, "instance_type") || has_key(root, "instance_count") ||
	    has_key(root, "scale_settings") || has_key(root, "endpoint_name");
	if (schema && schema->type == YN_SCALAR && schema->u.s.len) {
		char *kind = schema_kind(schema->u.s.str);
		enum fkind r = F_SKIP;

		if (strcasestr(kind, "OnlineDeployment"))
			r = F_DEPLOYMENT;
		else if (strcasestr(kind, "OnlineEndpoint")) {
			/* 2021 standalone deployments carried this schema */
			r = dep_keys_seen && !ep_keys_seen ? F_DEPLOYMENT
			                                   : F_ENDPOINT;
			*k8s = !strncasecmp(kind, "k8s", 3) ||
			       !strncasecmp(kind, "kubernetes", 10);
		} else
			*why = amlops_xasprintf("its $schema names '%s', not "
			                        "an online endpoint or "
			                        "deployment",
			    kind);
		free(kind);
		return r;
	}
	if (ep_keys_seen)
		return F_ENDPOINT;
	if (has_key(root, "endpoint_name"))
		return F_DEPLOYMENT;
	{
		const struct ynode *t = spec_ynode_get(root, "type", NULL);

		if (t && t->type == YN_SCALAR && !strcmp(t->u.s.str, "online"))
			return F_ENDPOINT;
	}
	if (has_key(root, "dependencies") || has_key(root, "channels")) {
		*why = amlops_xstrdup("a conda environment file");
		return F_SKIP;
	}
	if (dep_keys_seen &&
	    (has_key(root, "model") || has_key(root, "code_configuration")))
		return F_DEPLOYMENT;
	*why = amlops_xstrdup("no key marks an endpoint ('auth_mode', "
	                      "'traffic', 'deployments') or a deployment "
	                      "('endpoint_name', 'model', "
	                      "'code_configuration')");
	return F_SKIP;
}

/* A top-level key that may be a misspelt endpoint_name. */
static int
near_endpoint_name(const struct ynode *root)
{
	size_t i;

	for (i = 0; i < root->n; i++) {
		const struct ynode *k = root->u.kids[2 * i];

		if (k->type == YN_SCALAR &&
		    amlops_levenshtein(k->u.s.str, "endpoint_name", 3) <= 3)
			return 1;
	}
	return 0;
}

static void
add_skipped(struct amlops_spec *spec, const char *file, char *why)
{
	spec->skipped = amlops_xrealloc(
	    spec->skipped, (spec->nskipped + 1) * sizeof(*spec->skipped));
	spec->skipped_why = amlops_xrealloc(spec->skipped_why,
	    (spec->nskipped + 1) * sizeof(*spec->skipped_why));
	spec->skipped[spec->nskipped] = amlops_xstrdup(file);
	spec->skipped_why[spec->nskipped] = why;
	spec->nskipped++;
}

static void
load_file(struct amlops_spec *spec, struct amlops_diags *diags,
    const struct amlops_spec_opts *opts, const char *path,
    const struct amlops_spec_file *f, struct unit *u)
{
	struct spec_ctx c = {diags, opts, path, NULL, 0};
	struct amlops_diags soft = AMLOPS_DIAGS_INIT;
	struct ydoc doc;
	enum fkind kind = F_ENDPOINT;
	size_t i;
	const struct ynode *root;
	const char *slash;
	char *why = NULL;
	int k8s;

	if (spec_yaml_parse(&doc, diags, &soft, path, f->data, f->len) < 0)
		goto done;
	root = doc.root;
	if (!root || spec_ynode_is_null(root)) {
		amlops_diags_add(diags, path, 1, 1,
		    "file is empty; expected an endpoint or a deployment");
		goto done;
	}
	if (root->type != YN_MAP) {
		kind = F_SKIP;
		add_skipped(spec, path,
		    amlops_xasprintf("its top level is %s, not a mapping",
		        spec_ynode_kind(root)));
		goto done;
	}
	slash = strrchr(path, '/');
	c.dir = slash ? amlops_xstrndup(path, (size_t)(slash - path))
	              : amlops_xstrdup("");
	kind = classify(root, &why, &k8s);
	switch (kind) {
	case F_SKIP:
		add_skipped(spec, path, why);
		break;
	case F_ENDPOINT:
		parse_endpoint(&c, root, k8s, u);
		break;
	case F_DEPLOYMENT: {
		const struct ynode *at = NULL;
		struct amlops_deployment *dep;

		if (!has_key(root, "endpoint_name") &&
		    !near_endpoint_name(root)) {
			add_skipped(spec, path,
			    amlops_xstrdup("a deployment without "
			                   "'endpoint_name' (in 2021 its "
			                   "endpoint came from the command "
			                   "line), so amlops cannot tell "
			                   "which endpoint it belongs to"));
			break;
		}
		dep = spec_parse_deployment(&c, root, NULL, 0, 0, &at);
		if (dep && dep->endpoint_name)
			unit_add_loose(u, dep, at);
		else
			amlops_deployment_free(dep);
		break;
	}
	}
done:
	/* a skipped file's duplicate keys are not ours to judge */
	for (i = 0; i < soft.n && kind != F_SKIP; i++)
		amlops_diags_add(diags, soft.v[i].file, soft.v[i].line,
		    soft.v[i].col, "%s", soft.v[i].msg);
	amlops_diags_release(&soft);
	free(c.dir);
	spec_ydoc_release(&doc);
}

struct epidx {
	struct amlops_endpoint *ep;
	unsigned char has_inline;
	size_t i;
};

static int
epidx_cmp(const void *a, const void *b)
{
	const struct epidx *x = a, *y = b;
	int c = strcmp(x->ep->name, y->ep->name);

	if (c)
		return c;
	return x->i < y->i ? -1 : x->i > y->i;
}

static void
sort_eps(struct unit *u)
{
	struct epidx *v;
	size_t i;

	if (u->neps < 2)
		return;
	v = amlops_xmalloc(u->neps * sizeof(*v));
	for (i = 0; i < u->neps; i++) {
		v[i].ep = u->eps[i];
		v[i].has_inline = u->has_inline[i];
		v[i].i = i;
	}
	qsort(v, u->neps, sizeof(*v), epidx_cmp);
	for (i = 0; i < u->neps; i++) {
		u->eps[i] = v[i].ep;
		u->has_inline[i] = v[i].has_inline;
	}
	free(v);
}

static struct amlops_endpoint *
find_ep(struct unit *u, const char *name, size_t *at)
{
	size_t lo = 0, hi = u->neps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(u->eps[mid]->name, name);

		if (c == 0) {
			*at = mid;
			return u->eps[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

struct depidx {
	struct amlops_deployment *dep;
	size_t i;
};

static int
depidx_cmp(const void *a, const void *b)
{
	const struct depidx *x = a, *y = b;
	int c = strcmp(x->dep->name, y->dep->name);

	if (c)
		return c;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* Sorts an endpoint's deployments; reports and drops a repeated name. */
static void
sort_deps(struct amlops_diags *diags, struct amlops_endpoint *ep)
{
	struct depidx *v;
	size_t i, n = 0;

	if (ep->ndeployments < 2)
		return;
	v = amlops_xmalloc(ep->ndeployments * sizeof(*v));
	for (i = 0; i < ep->ndeployments; i++) {
		v[i].dep = ep->deployments[i];
		v[i].i = i;
	}
	qsort(v, ep->ndeployments, sizeof(*v), depidx_cmp);
	for (i = 0; i < ep->ndeployments; i++) {
		struct amlops_deployment *d = v[i].dep, *prev;

		prev = n ? ep->deployments[n - 1] : NULL;
		if (prev && !strcmp(prev->name, d->name)) {
			amlops_diags_add(diags, d->loc.file, d->loc.line,
			    d->loc.col,
			    "deployment '%s' of endpoint '%s' is defined "
			    "twice; first at %s:%u:%u",
			    d->name, ep->name, prev->loc.file, prev->loc.line,
			    prev->loc.col);
			amlops_deployment_free(d);
			continue;
		}
		ep->deployments[n++] = d;
	}
	ep->ndeployments = n;
	free(v);
}

static const char *
closest_dep(const struct amlops_endpoint *ep, const char *name)
{
	const char **names;
	const char *r;
	size_t i;

	if (!ep->ndeployments)
		return NULL;
	names = amlops_xmalloc(ep->ndeployments * sizeof(*names));
	for (i = 0; i < ep->ndeployments; i++)
		names[i] = ep->deployments[i]->name;
	r = spec_closest(name, names, ep->ndeployments);
	free(names);
	return r;
}

static void
check_traffic_names(struct amlops_diags *diags,
    const struct amlops_endpoint *ep, const struct amlops_traffic *t, size_t n,
    const char *what)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const char *hint;

		if (amlops_endpoint_deployment(ep, t[i].deployment))
			continue;
		if ((hint = closest_dep(ep, t[i].deployment)))
			amlops_diags_add(diags, t[i].loc.file, t[i].loc.line,
			    t[i].loc.col,
			    "%s names deployment '%s', which does not exist "
			    "(did you mean '%s'?)",
			    what, t[i].deployment, hint);
		else
			amlops_diags_add(diags, t[i].loc.file, t[i].loc.line,
			    t[i].loc.col,
			    "%s names deployment '%s', which does not exist",
			    what, t[i].deployment);
	}
}

static void
link_unit(struct amlops_diags *diags, struct unit *u, int alone)
{
	size_t i, n = 0, at;

	/* one endpoint, one file */
	sort_eps(u);
	for (i = 0; i < u->neps; i++) {
		struct amlops_endpoint *ep = u->eps[i];

		if (n && !strcmp(u->eps[n - 1]->name, ep->name)) {
			const struct amlops_endpoint *first = u->eps[n - 1];

			amlops_diags_add(diags, ep->loc.file, ep->loc.line,
			    ep->loc.col,
			    "endpoint '%s' is defined twice; first at "
			    "%s:%u:%u",
			    ep->name, first->loc.file, first->loc.line,
			    first->loc.col);
			amlops_endpoint_free(ep);
			continue;
		}
		u->has_inline[n] = u->has_inline[i];
		u->eps[n++] = ep;
	}
	u->neps = n;

	/* deployment files join the endpoint they name */
	for (i = 0; i < u->nloose; i++) {
		struct loose *l = &u->loose[i];
		struct amlops_deployment *dep = l->dep;
		struct amlops_endpoint *ep =
		    find_ep(u, dep->endpoint_name, &at);

		if (!ep && alone) {
			ep = amlops_endpoint_new(dep->endpoint_name);
			ep->loc = dep->loc;
			unit_add_ep(u, ep, 0);
			sort_eps(u);
		}
		if (!ep) {
			const char **names =
			    amlops_xmalloc((u->neps + 1) * sizeof(*names));
			const char *hint;
			size_t j;

			for (j = 0; j < u->neps; j++)
				names[j] = u->eps[j]->name;
			hint = spec_closest(dep->endpoint_name, names, u->neps);
			if (hint)
				amlops_diags_add(diags, dep->loc.file, l->line,
				    l->col,
				    "deployment '%s' names endpoint '%s', "
				    "which no file defines (did you mean "
				    "'%s'?)",
				    dep->name, dep->endpoint_name, hint);
			else
				amlops_diags_add(diags, dep->loc.file, l->line,
				    l->col,
				    "deployment '%s' names endpoint '%s', "
				    "which no file defines",
				    dep->name, dep->endpoint_name);
			free(names);
			amlops_deployment_free(dep);
			continue;
		}
		ep_add_dep(ep, dep);
	}
	u->nloose = 0;

	for (i = 0; i < u->neps; i++) {
		struct amlops_endpoint *ep = u->eps[i];
		size_t j;

		sort_deps(diags, ep);
		if (!ep->file)
			continue; /* ALONE: a deployment's endpoint */
		for (j = 0; j < ep->ndeployments; j++) {
			const struct amlops_deployment *d = ep->deployments[j];

			if (d->compute == AMLOPS_COMPUTE_KUBERNETES &&
			    ep->compute == AMLOPS_COMPUTE_MANAGED)
				amlops_diags_add(diags, d->loc.file,
				    d->loc.line, d->loc.col,
				    "deployment '%s' is of type 'kubernetes' "
				    "but endpoint '%s' is managed (it names "
				    "no 'compute')",
				    d->name, ep->name);
			else if (d->compute == AMLOPS_COMPUTE_MANAGED &&
			         ep->compute == AMLOPS_COMPUTE_KUBERNETES)
				amlops_diags_add(diags, d->loc.file,
				    d->loc.line, d->loc.col,
				    "deployment '%s' is managed but endpoint "
				    "'%s' runs on kubernetes; add 'type: "
				    "kubernetes'",
				    d->name, ep->name);
		}
		if (ep->ndeployments > MAX_DEPLOYMENTS)
			amlops_diags_add(diags, ep->loc.file, ep->loc.line,
			    ep->loc.col,
			    "endpoint '%s' has %zu deployments; the service "
			    "allows at most %d",
			    ep->name, ep->ndeployments, MAX_DEPLOYMENTS);
		if (alone && !u->has_inline[i])
			continue;
		check_traffic_names(
		    diags, ep, ep->traffic, ep->ntraffic, "traffic");
		check_traffic_names(
		    diags, ep, ep->mirror, ep->nmirror, "mirror_traffic");
	}
}

static void
unit_move(struct amlops_spec *spec, struct unit *u)
{
	if (!u->neps)
		return;
	spec->endpoints = amlops_xrealloc(spec->endpoints,
	    (spec->nendpoints + u->neps + 1) * sizeof(*spec->endpoints));
	memcpy(spec->endpoints + spec->nendpoints, u->eps,
	    u->neps * sizeof(*u->eps));
	spec->nendpoints += u->neps;
	u->neps = 0;
}

static void
unit_release(struct unit *u)
{
	size_t i;

	for (i = 0; i < u->neps; i++)
		amlops_endpoint_free(u->eps[i]);
	for (i = 0; i < u->nloose; i++)
		amlops_deployment_free(u->loose[i].dep);
	free(u->eps);
	free(u->has_inline);
	free(u->loose);
	memset(u, 0, sizeof(*u));
}

static int
spec_ep_cmp(const void *a, const void *b)
{
	const struct amlops_endpoint *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/*
 * A file that breaks a rule thousands of times (a machine-made key list,
 * say) says so once after the first MAX_FILE_DIAGS.
 */
static void
cap_diags(struct amlops_diags *d, size_t from, const char *file)
{
	size_t i, n = d->n - from;

	if (n <= MAX_FILE_DIAGS)
		return;
	for (i = from + MAX_FILE_DIAGS; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	d->n = from + MAX_FILE_DIAGS;
	amlops_diags_add(d, file, d->v[d->n - 1].line, d->v[d->n - 1].col,
	    "%zu more problems in this file not shown; fix these first",
	    n - MAX_FILE_DIAGS);
}

int
amlops_spec_load(struct amlops_spec **out, struct amlops_diags *diags,
    const struct amlops_spec_file *files, size_t nfiles,
    const struct amlops_spec_opts *opts)
{
	static const struct amlops_spec_opts none = {0, NULL, NULL};
	struct amlops_spec *spec = amlops_xcalloc(1, sizeof(*spec));
	struct unit u;
	size_t i, before = diags->n;
	int alone;

	if (!opts)
		opts = &none;
	alone = !!(opts->flags & AMLOPS_SPEC_ALONE);
	memset(&u, 0, sizeof(u));
	spec->files = amlops_xcalloc(nfiles ? nfiles : 1, sizeof(*spec->files));
	for (i = 0; i < nfiles; i++) {
		spec->files[i] = amlops_xstrdup(files[i].path);
		spec->nfiles++;
		size_t at = diags->n;

		load_file(spec, diags, opts, spec->files[i], &files[i], &u);
		cap_diags(diags, at, spec->files[i]);
		if (alone) {
			link_unit(diags, &u, 1);
			unit_move(spec, &u);
		}
	}
	if (!alone) {
		link_unit(diags, &u, 0);
		unit_move(spec, &u);
	}
	unit_release(&u);
	/* stable enough: names are unique unless ALONE */
	if (spec->nendpoints > 1)
		qsort(spec->endpoints, spec->nendpoints,
		    sizeof(*spec->endpoints), spec_ep_cmp);
	*out = spec;
	if (diags->n > before)
		return amlops_err_set(AMLOPS_EINVALID,
		    "%zu problem%s in the manifests", diags->n - before,
		    diags->n - before == 1 ? "" : "s");
	return 0;
}
