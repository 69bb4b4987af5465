/*
 * Private to src/spec: what the loader's files share.
 */
#ifndef AMLOPS_SPEC_LOAD_H
#define AMLOPS_SPEC_LOAD_H

#include <stdarg.h>

#include "amlops/spec.h"
#include "spec/yaml.h"

/* Where the loader is: the file, its folder, what it may check. */
struct lctx {
	struct amlops_diags *diags;
	const struct amlops_spec_opts *opts;
	const char *file; /* repository-relative, borrowed */
	char *dir;        /* the file's folder, "" at the root */
	size_t errors;    /* diagnostics this file added */
};

void lerr(struct lctx *c, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Matches the keys of map `m` against `keys`: vals[i] (and keyn[i], when
 * not NULL) get the value (key) node of keys[i], or NULL. Unknown keys are
 * reported, with a "did you mean" when one is close; `what` names the
 * mapping for the message ("a deployment", "'request_settings'").
 */
void lfields(struct lctx *c, const struct ynode *m, const char *what,
    const char *const *keys, size_t nkeys, const struct ynode **vals,
    const struct ynode **keyn);

/* The closest of `cands` to `s`, or NULL when none is close. */
const char *lclosest(const char *s, const char *const *cands, size_t n);

/* Value getters: each reports a wrong value and returns -1. */
int lget_str(
    struct lctx *c, const struct ynode *v, const char *key, const char **out);
int lget_int(struct lctx *c, const struct ynode *v, const char *key, long lo,
    long hi, const char *why, long *out);
int lget_bool(struct lctx *c, const struct ynode *v, const char *key, int *out);
int lget_num(struct lctx *c, const struct ynode *v, const char *key, double lo,
    double hi, double *out);
int lget_enum(struct lctx *c, const struct ynode *v, const char *key,
    const char *const *vals, size_t n, int *out);
/* A mapping of scalars, as a cJSON object of strings. */
int lget_strmap(
    struct lctx *c, const struct ynode *v, const char *key, cJSON **out);
int lexpect(struct lctx *c, const struct ynode *v, const char *key, int type);

enum lwant {
	LWANT_ANY,
	LWANT_FILE,
	LWANT_DIR,
};

/*
 * Resolves `rel` (written in the YAML at `at`, relative to `base`, a
 * repository folder) into a normalised repository path; checks it stays
 * inside the repository and, unless the load is ALONE, that it exists as
 * `want`. NULL (reported) on failure.
 */
char *lresolve(struct lctx *c, const struct ynode *at, const char *key,
    const char *base, const char *rel, enum lwant want);

/* Deployment and endpoint parsing (deploy.c). */
struct amlops_deployment *spec_parse_deployment(struct lctx *c,
    const struct ynode *m, const char *endpoint, int inline_2021,
    int kubernetes, const struct ynode **endpoint_name_at);

#endif
