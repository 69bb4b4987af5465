/*
 * The loader's small checks: keys against a table, typed values, local
 * paths. Each reports what is wrong and what was expected at the node
 * that is wrong.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "amlops/util.h"
#include "spec/load.h"

void
spec_err(struct spec_ctx *c, const struct ynode *at, const char *fmt, ...)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	amlops_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	amlops_diags_add(c->diags, c->file, at ? at->line : 1, at ? at->col : 1,
	    "%s", amlops_buf_cstr(&b));
	amlops_buf_release(&b);
	c->errors++;
}

const char *
spec_closest(const char *s, const char *const *cands, size_t n)
{
	size_t i, len = strlen(s);
	unsigned best = UINT_MAX, cap, d;
	const char *pick = NULL;

	cap = len <= 4 ? 1 : len <= 8 ? 2 : 3;
	for (i = 0; i < n; i++) {
		if (!cands[i])
			continue;
		d = amlops_levenshtein(s, cands[i], cap);
		if (d <= cap && d < best) {
			best = d;
			pick = cands[i];
		}
	}
	return pick;
}

void
spec_fields(struct spec_ctx *c, const struct ynode *m, const char *what,
    const char *const *keys, size_t nkeys, const struct ynode **vals,
    const struct ynode **keyn)
{
	size_t i, j;

	for (j = 0; j < nkeys; j++) {
		vals[j] = NULL;
		if (keyn)
			keyn[j] = NULL;
	}
	for (i = 0; i < m->n; i++) {
		const struct ynode *k = m->u.kids[2 * i];
		const char *hint;

		if (k->type != YN_SCALAR)
			continue; /* the parser reported it */
		for (j = 0; j < nkeys; j++)
			if (keys[j] && keys[j][0] == k->u.s.str[0] &&
			    !strcmp(keys[j], k->u.s.str))
				break;
		if (j < nkeys) {
			if (!vals[j]) {
				vals[j] = m->u.kids[2 * i + 1];
				if (keyn)
					keyn[j] = k;
			}
			continue;
		}
		if (!strcmp(k->u.s.str, "<<") && k->plain)
			spec_err(c, k,
			    "merge keys ('<<') are not supported; "
			    "write the keys out");
		else if ((hint = spec_closest(k->u.s.str, keys, nkeys)))
			spec_err(c, k, "unknown key '%s' (did you mean '%s'?)",
			    k->u.s.str, hint);
		else
			spec_err(
			    c, k, "unknown key '%s' in %s", k->u.s.str, what);
	}
}

int
spec_expect(
    struct spec_ctx *c, const struct ynode *v, const char *key, int type)
{
	if (v->type == type)
		return 0;
	spec_err(c, v, "'%s' must be %s, not %s", key,
	    type == YN_MAP   ? "a mapping"
	    : type == YN_SEQ ? "a list"
	                     : "a string",
	    spec_ynode_kind(v));
	return -1;
}

int
spec_get_str(struct spec_ctx *c, const struct ynode *v, const char *key,
    const char **out)
{
	if (v->type != YN_SCALAR) {
		spec_err(c, v, "'%s' must be a string, not %s", key,
		    spec_ynode_kind(v));
		return -1;
	}
	if (spec_ynode_is_null(v) || v->u.s.len == 0) {
		spec_err(c, v, "'%s' must not be empty", key);
		return -1;
	}
	*out = v->u.s.str;
	return 0;
}

static int
parse_long(const char *s, long *out)
{
	char *end;
	long x;

	if (!*s || strchr(" \t", *s))
		return -1;
	errno = 0;
	x = strtol(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = x;
	return 0;
}

int
spec_get_int(struct spec_ctx *c, const struct ynode *v, const char *key,
    long lo, long hi, const char *why, long *out)
{
	long x;
	char range[96];

	if (hi == LONG_MAX)
		snprintf(range, sizeof(range), "%s%ld or more", "", lo);
	else
		snprintf(range, sizeof(range), "from %ld to %ld", lo, hi);
	if (v->type != YN_SCALAR) {
		spec_err(c, v, "'%s' must be an integer %s%s, not %s", key,
		    range, why ? why : "", spec_ynode_kind(v));
		return -1;
	}
	if (parse_long(v->u.s.str, &x) < 0 || x < lo || x > hi) {
		spec_err(c, v, "'%s' must be an integer %s%s, not '%s'", key,
		    range, why ? why : "", v->u.s.str);
		return -1;
	}
	*out = x;
	return 0;
}

int
spec_get_bool(
    struct spec_ctx *c, const struct ynode *v, const char *key, int *out)
{
	static const char *const yes[] = {"true", "True", "TRUE"};
	static const char *const no[] = {"false", "False", "FALSE"};
	size_t i;

	if (v->type == YN_SCALAR && v->plain) {
		for (i = 0; i < AMLOPS_ARRAY_SIZE(yes); i++) {
			if (!strcmp(v->u.s.str, yes[i])) {
				*out = 1;
				return 0;
			}
			if (!strcmp(v->u.s.str, no[i])) {
				*out = 0;
				return 0;
			}
		}
	}
	if (v->type != YN_SCALAR)
		spec_err(c, v, "'%s' must be true or false, not %s", key,
		    spec_ynode_kind(v));
	else
		spec_err(c, v, "'%s' must be true or false, not '%s'", key,
		    v->u.s.str);
	return -1;
}

int
spec_get_num(struct spec_ctx *c, const struct ynode *v, const char *key,
    double lo, double hi, double *out)
{
	char *end;
	double x;

	if (v->type != YN_SCALAR) {
		spec_err(c, v, "'%s' must be a number from %g to %g, not %s",
		    key, lo, hi, spec_ynode_kind(v));
		return -1;
	}
	errno = 0;
	x = strtod(v->u.s.str, &end);
	if (!v->u.s.len || errno || *end || isnan(x) || x < lo || x > hi) {
		spec_err(c, v, "'%s' must be a number from %g to %g, not '%s'",
		    key, lo, hi, v->u.s.str);
		return -1;
	}
	*out = x;
	return 0;
}

int
spec_get_enum(struct spec_ctx *c, const struct ynode *v, const char *key,
    const char *const *vals, size_t n, int *out)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	size_t i;

	if (v->type == YN_SCALAR) {
		for (i = 0; i < n; i++)
			if (!strcasecmp(v->u.s.str, vals[i])) {
				*out = (int)i;
				return 0;
			}
	}
	for (i = 0; i < n; i++)
		amlops_buf_printf(&b, "%s'%s'", i ? ", " : "", vals[i]);
	if (v->type == YN_SCALAR)
		spec_err(c, v, "'%s' must be one of %s, not '%s'", key,
		    amlops_buf_cstr(&b), v->u.s.str);
	else
		spec_err(c, v, "'%s' must be one of %s, not %s", key,
		    amlops_buf_cstr(&b), spec_ynode_kind(v));
	amlops_buf_release(&b);
	return -1;
}

int
spec_get_strmap(
    struct spec_ctx *c, const struct ynode *v, const char *key, cJSON **out)
{
	cJSON *o;
	size_t i;
	int bad = 0;

	if (!(o = cJSON_CreateObject()))
		abort();
	/* `tags:` with nothing after it is an empty map */
	if (spec_ynode_is_null(v)) {
		*out = o;
		return 0;
	}
	if (spec_expect(c, v, key, YN_MAP) < 0) {
		cJSON_Delete(o);
		return -1;
	}
	for (i = 0; i < v->n; i++) {
		const struct ynode *k = v->u.kids[2 * i];
		const struct ynode *x = v->u.kids[2 * i + 1];

		if (k->type != YN_SCALAR)
			continue;
		if (x->type != YN_SCALAR) {
			spec_err(c, x, "'%s.%s' must be a string, not %s", key,
			    k->u.s.str, spec_ynode_kind(x));
			bad = 1;
			continue;
		}
		if (cJSON_GetObjectItemCaseSensitive(o, k->u.s.str))
			continue; /* a duplicate, reported already */
		if (!cJSON_AddStringToObject(
		        o, k->u.s.str, spec_ynode_is_null(x) ? "" : x->u.s.str))
			abort();
	}
	if (bad) {
		cJSON_Delete(o);
		return -1;
	}
	*out = o;
	return 0;
}

/*
 * Joins `base` and `rel` and normalises the result in place: no ".", no
 * empty parts, ".." removes the part before it. Returns NULL when ".."
 * climbs above the root.
 */
static char *
join_normal(const char *base, const char *rel)
{
	size_t bl = strlen(base), rl = strlen(rel);
	char *out = amlops_xmalloc(bl + rl + 2), *w = out;
	const char *p, *end;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		p = pass ? rel : base;
		end = p + (pass ? rl : bl);
		while (p < end) {
			const char *q = memchr(p, '/', (size_t)(end - p));
			size_t n;

			if (!q)
				q = end;
			n = (size_t)(q - p);
			if (n == 0 || (n == 1 && p[0] == '.')) {
				/* nothing */
			} else if (n == 2 && p[0] == '.' && p[1] == '.') {
				if (w == out) {
					free(out);
					return NULL;
				}
				while (w > out && w[-1] != '/')
					w--;
				if (w > out)
					w--; /* the '/' before it */
			} else {
				if (w > out)
					*w++ = '/';
				memcpy(w, p, n);
				w += n;
			}
			p = q + (q < end);
		}
	}
	*w = '\0';
	return out;
}

char *
spec_resolve(struct spec_ctx *c, const struct ynode *at, const char *key,
    const char *base, const char *rel, enum spec_want want)
{
	enum amlops_path_kind kind;
	char *path;

	if (rel[0] == '/') {
		spec_err(c, at,
		    "'%s' is the absolute path '%s'; give a path "
		    "relative to the YAML file, inside the repository",
		    key, rel);
		return NULL;
	}
	if (!(path = join_normal(base, rel))) {
		spec_err(c, at,
		    "'%s' path '%s' leaves the repository; local paths "
		    "must stay inside it",
		    key, rel);
		return NULL;
	}

	if ((c->opts->flags & AMLOPS_SPEC_ALONE) || !c->opts->path_kind)
		return path;
	kind = c->opts->path_kind(c->opts->ctx, path);
	switch (kind) {
	case AMLOPS_PATH_MISSING:
		spec_err(c, at,
		    "'%s' path '%s' does not exist (looked for '%s' "
		    "in the repository)",
		    key, rel, *path ? path : ".");
		break;
	case AMLOPS_PATH_SYMLINK_OUT:
		spec_err(c, at,
		    "'%s' path '%s' is a symlink that leaves the "
		    "repository",
		    key, rel);
		break;
	case AMLOPS_PATH_FILE:
		if (want != SPEC_WANT_DIR)
			return path;
		spec_err(c, at, "'%s' must be a folder, but '%s' is a file",
		    key, rel);
		break;
	case AMLOPS_PATH_DIR:
		if (want != SPEC_WANT_FILE)
			return path;
		spec_err(c, at, "'%s' must be a file, but '%s' is a folder",
		    key, rel);
		break;
	}
	free(path);
	return NULL;
}
