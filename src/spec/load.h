/*
 * Private to src/spec: what the loader's files share.
 */
#ifndef AMLOPS_SPEC_LOAD_H
#define AMLOPS_SPEC_LOAD_H

#include <stdarg.h>

#include "amlops/spec.h"
#include "spec/yaml.h"

/* Where the loader is: the file, its folder, what it may check. */
struct spec_ctx {
	struct amlops_diags *diags;
	const struct amlops_spec_opts *opts;
	const char *file; /* repository-relative, borrowed */
	char *dir;        /* the file's folder, "" at the root */
	size_t errors;    /* diagnostics this file added */
};

void spec_err(struct spec_ctx *c, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Matches the keys of map `m` against `keys`: vals[i] (and keyn[i], when
 * not NULL) get the value (key) node of keys[i], or NULL. Unknown keys are
 * reported, with a "did you mean" when one is close; `what` names the
 * mapping for the message ("a deployment", "'request_settings'").
 */
void spec_fields(struct spec_ctx *c, const struct ynode *m, const char *what,
    const char *const *keys, size_t nkeys, const struct ynode **vals,
    const struct ynode **keyn);

/* The closest of `cands` to `s`, or NULL when none is close. */
const char *spec_closest(const char *s, const char *const *cands, size_t n);

/*
 * Value getters: each reports a wrong value and returns -1. A string is
 * borrowed from the tree (it lives as long as the file's ydoc).
 */
int spec_get_str(struct spec_ctx *c, const struct ynode *v, const char *key,
    const char **out);
int spec_get_int(struct spec_ctx *c, const struct ynode *v, const char *key,
    long lo, long hi, const char *why, long *out);
int spec_get_bool(
    struct spec_ctx *c, const struct ynode *v, const char *key, int *out);
int spec_get_num(struct spec_ctx *c, const struct ynode *v, const char *key,
    double lo, double hi, double *out);
int spec_get_enum(struct spec_ctx *c, const struct ynode *v, const char *key,
    const char *const *vals, size_t n, int *out);
/*
 * A mapping of scalars, as a cJSON object of strings; the caller owns
 * `*out` and frees it with cJSON_Delete(). A null value gives an empty
 * object.
 */
int spec_get_strmap(
    struct spec_ctx *c, const struct ynode *v, const char *key, cJSON **out);
/* 0 when `v` is of `type` (YN_MAP, YN_SEQ, YN_SCALAR), else reported. */
int spec_expect(
    struct spec_ctx *c, const struct ynode *v, const char *key, int type);

enum spec_want {
	SPEC_WANT_ANY,
	SPEC_WANT_FILE,
	SPEC_WANT_DIR,
};

/*
 * Resolves `rel` (written in the YAML at `at`, relative to `base`, a
 * repository folder) into a normalised repository path; checks it stays
 * inside the repository and, unless the load is ALONE, that it exists as
 * `want`. The caller frees the result; NULL (reported) on failure.
 */
char *spec_resolve(struct spec_ctx *c, const struct ynode *at, const char *key,
    const char *base, const char *rel, enum spec_want want);

/*
 * A deployment from map `m`: today's file (`endpoint` NULL, its
 * endpoint_name value node into *endpoint_name_at) or a 2021 inline entry
 * of `endpoint`. The caller frees it with amlops_deployment_free(); NULL
 * (reported) when it has no usable name.
 */
struct amlops_deployment *spec_parse_deployment(struct spec_ctx *c,
    const struct ynode *m, const char *endpoint, int inline_2021,
    int kubernetes, const struct ynode **endpoint_name_at);

#endif
