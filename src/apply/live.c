/*
 * The live side of a plan: endpoints as the target reports them. Shared
 * by apply and `amlops plan --live`. See amlops/apply.h.
 */
#include <stdlib.h>
#include <string.h>

#include "amlops/apply.h"
#include "amlops/err.h"
#include "amlops/util.h"

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
cmp_ep(const void *a, const void *b)
{
	const struct amlops_endpoint *x = *(struct amlops_endpoint *const *)a;
	const struct amlops_endpoint *y = *(struct amlops_endpoint *const *)b;

	return strcmp(x->name, y->name);
}

void
amlops_apply_live_release(struct amlops_spec *live, struct amlops_live **lives)
{
	size_t i;

	for (i = 0; i < live->nendpoints; i++) {
		amlops_endpoint_free(live->endpoints[i]);
		if (lives)
			amlops_live_free(lives[i]);
	}
	free(lives);
	free(live->endpoints);
	memset(live, 0, sizeof(*live));
}

/* Sorts endpoints by name, keeping `lives` (may be NULL) beside them. */
static void
sort_live(struct amlops_spec *s, struct amlops_live **lives)
{
	for (size_t i = 1; i < s->nendpoints; i++)
		for (size_t j = i; j > 0 && cmp_ep(&s->endpoints[j - 1],
		                                &s->endpoints[j]) > 0;
		     j--) {
			struct amlops_endpoint *e = s->endpoints[j];

			s->endpoints[j] = s->endpoints[j - 1];
			s->endpoints[j - 1] = e;
			if (lives) {
				struct amlops_live *l = lives[j];

				lives[j] = lives[j - 1];
				lives[j - 1] = l;
			}
		}
}

int
amlops_apply_read_live(struct amlops_spec *out, struct amlops_live ***lives,
    struct amlops_backend *b, char *const *want, size_t nwant, int list_all)
{
	struct amlops_live **lv = NULL;
	char **names = NULL;
	size_t n = 0, i;
	int error = 0;

	memset(out, 0, sizeof(*out));
	if (list_all) {
		error = amlops_backend_list_endpoints(b, &names, &n);
		if (error == AMLOPS_ENOTSUPP) {
			amlops_err_clear();
			names = NULL;
			n = 0;
		} else if (error < 0) {
			return error;
		}
	}
	names = amlops_xrealloc(names, (n + nwant + 1) * sizeof(*names));
	for (i = 0; i < nwant; i++)
		names[n++] = amlops_xstrdup(want[i]);
	if (n)
		qsort(names, n, sizeof(*names), cmp_name);
	out->endpoints = amlops_xcalloc(n + 1, sizeof(*out->endpoints));
	if (lives)
		lv = amlops_xcalloc(n + 1, sizeof(*lv));
	error = 0;
	for (i = 0; i < n; i++) {
		struct amlops_endpoint *ep = NULL;
		struct amlops_live *l = NULL;
		int e;

		if (i > 0 && !strcmp(names[i], names[i - 1]))
			continue;
		e = amlops_backend_get_endpoint(
		    b, names[i], &ep, lives ? &l : NULL);
		if (e == AMLOPS_ENOTFOUND) {
			amlops_err_clear();
			continue;
		}
		if (e < 0) {
			error = e;
			break;
		}
		if (lv)
			lv[out->nendpoints] = l;
		out->endpoints[out->nendpoints++] = ep;
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (error < 0) {
		amlops_apply_live_release(out, lv);
		return error;
	}
	/* names were sorted: this only fixes what a target renamed */
	sort_live(out, lv);
	if (lives)
		*lives = lv;
	return 0;
}
