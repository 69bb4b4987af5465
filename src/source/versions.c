/*
 * Written asset versions against content: a version that stays while its
 * content changes would make Azure ML keep serving the old content (an
 * asset version is immutable), so the plan refuses it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amlops/err.h"
#include "amlops/source.h"
#include "amlops/util.h"

struct vasset {
	const char *kind; /* "model", "code", "environment" */
	const char *name; /* the name, else the path */
	const char *version;
	const char *path;      /* for messages */
	const char *last_path; /* of the last entry like this one (dedup()) */
	const struct amlops_asset *a;
	const char *file; /* where it was written */
};

struct vlist {
	struct vasset *v;
	size_t n, cap;
};

static void
vpush(struct vlist *l, const char *kind, const struct amlops_asset *a,
    const char *path, const char *file)
{
	struct vasset *x;

	if (a->kind != AMLOPS_ASSET_INLINE || a->version_auto || !a->version ||
	    !a->content_id[0])
		return;
	if (!a->name && !path)
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = amlops_xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	x = &l->v[l->n++];
	x->kind = kind;
	x->name = a->name ? a->name : path;
	x->version = a->version;
	x->path = path ? path : "";
	x->last_path = x->path;
	x->a = a;
	x->file = a->loc.file ? a->loc.file : file;
}

static int
vcmp(const void *pa, const void *pb)
{
	const struct vasset *a = pa, *b = pb;
	int c;

	/* kinds are the three literals of collect(): equal when the same */
	if (a->kind != b->kind && (c = strcmp(a->kind, b->kind)))
		return c;
	if ((c = strcmp(a->name, b->name)))
		return c;
	if ((c = strcmp(a->version, b->version)))
		return c;
	return strcmp(a->a->content_id, b->a->content_id);
}

static int
vkey_eq(const struct vasset *a, const struct vasset *b)
{
	return !strcmp(a->kind, b->kind) && !strcmp(a->name, b->name) &&
	       !strcmp(a->version, b->version);
}

static uint64_t
fnv1a(uint64_t h, const char *s)
{
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return (h ^ 0xff) * 1099511628211ull; /* the end, so "a"+"b" != "ab" */
}

static int
vsame(const struct vasset *a, const struct vasset *b)
{
	return vkey_eq(a, b) && !strcmp(a->a->content_id, b->a->content_id);
}

/*
 * Keeps the first of the entries with one kind, name, version and
 * content, in order, and notes the path of the last of them. That is all
 * the checks below read of such a run (they report at its first entry,
 * and name the last entry's path when the next content clashes), and a
 * repository of 10,000 endpoints that share two models would otherwise
 * sort 40,000 entries.
 */
static void
dedup(struct vlist *l)
{
	size_t cap = 64, i, j, n = 0, *slot;

	while (cap < 2 * l->n)
		cap *= 2;
	slot = amlops_xcalloc(cap, sizeof(*slot)); /* index + 1; 0: empty */
	for (i = 0; i < l->n; i++) {
		const struct vasset *x = &l->v[i];
		uint64_t h = 1469598103934665603ull;

		h = fnv1a(h, x->kind);
		h = fnv1a(h, x->name);
		h = fnv1a(h, x->version);
		h = fnv1a(h, x->a->content_id);
		for (j = h & (cap - 1); slot[j]; j = (j + 1) & (cap - 1))
			if (vsame(&l->v[slot[j] - 1], x))
				break;
		if (slot[j]) {
			l->v[slot[j] - 1].last_path = x->path;
			continue;
		}
		l->v[n] = *x;
		slot[j] = ++n;
	}
	l->n = n;
	free(slot);
}

static void
collect(struct vlist *l, const struct amlops_spec *spec)
{
	size_t i, j;

	for (i = 0; spec && i < spec->nendpoints; i++) {
		const struct amlops_endpoint *ep = spec->endpoints[i];

		for (j = 0; j < ep->ndeployments; j++) {
			const struct amlops_deployment *d = ep->deployments[j];
			const struct amlops_environment *env = &d->environment;
			const char *file = d->loc.file ? d->loc.file : ep->file;

			vpush(l, "model", &d->model, d->model.path, file);
			vpush(l, "code", &d->code, d->code.path, file);
			vpush(l, "environment", &env->asset,
			    env->conda_file   ? env->conda_file
			    : env->build_path ? env->build_path
			                      : env->image,
			    file);
		}
	}
	dedup(l);
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), vcmp);
}

/* The first entry of `l` with the key of `x`, or NULL. */
static const struct vasset *
find_key(const struct vlist *l, const struct vasset *x)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct vasset *m = &l->v[mid];
		int c = strcmp(m->kind, x->kind);

		if (!c)
			c = strcmp(m->name, x->name);
		if (!c)
			c = strcmp(m->version, x->version);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->n && vkey_eq(&l->v[lo], x) ? &l->v[lo] : NULL;
}

int
amlops_source_check_versions(struct amlops_diags *diags,
    const struct amlops_spec *base, const struct amlops_spec *head)
{
	struct vlist b = {NULL, 0, 0}, h = {NULL, 0, 0};
	size_t i, n0 = diags->n;

	collect(&b, base);
	collect(&h, head);
	for (i = 0; i < h.n; i++) {
		const struct vasset *x = &h.v[i], *old;
		const struct amlops_loc *loc = &x->a->loc;
		int first = i == 0 || !vkey_eq(&h.v[i - 1], x);

		/* within head: one key, two contents (sorted by content) */
		if (!first &&
		    strcmp(h.v[i - 1].a->content_id, x->a->content_id)) {
			amlops_diags_add(diags, x->file, loc->line, loc->col,
			    "'%s': version '%s' of %s '%s' is already used "
			    "for other content (%.12s at '%s', here %.12s); "
			    "give each content its own version",
			    x->path, x->version, x->kind, x->name,
			    h.v[i - 1].a->content_id, h.v[i - 1].last_path,
			    x->a->content_id);
			continue;
		}
		if (!first)
			continue;
		if (!(old = find_key(&b, x)))
			continue;
		if (!strcmp(old->a->content_id, x->a->content_id))
			continue;
		/* any base entry with the same content is fine */
		{
			const struct vasset *o = old;
			int same = 0;

			while (o < b.v + b.n && vkey_eq(o, x)) {
				if (!strcmp(o->a->content_id, x->a->content_id))
					same = 1;
				o++;
			}
			if (same)
				continue;
		}
		amlops_diags_add(diags, x->file, loc->line, loc->col,
		    "'%s': version '%s' of %s '%s' is unchanged but its "
		    "content changed (%.12s -> %.12s); bump the version or "
		    "drop it to let amlops version it",
		    x->path, x->version, x->kind, x->name, old->a->content_id,
		    x->a->content_id);
	}
	free(b.v);
	free(h.v);
	return diags->n > n0 ? AMLOPS_EINVALID : 0;
}
