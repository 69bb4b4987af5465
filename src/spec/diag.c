/*
 * Validation diagnostics: "FILE:LINE:COL: msg".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amlops/spec.h"
#include "amlops/util.h"

void
amlops_diags_add(struct amlops_diags *d, const char *file, unsigned line,
    unsigned col, const char *fmt, ...)
{
	struct amlops_diag *x;
	struct amlops_buf b = AMLOPS_BUF_INIT;
	va_list ap;

	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->v = amlops_xrealloc(d->v, d->cap * sizeof(*d->v));
	}
	va_start(ap, fmt);
	amlops_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	x = &d->v[d->n++];
	x->file = amlops_xstrdup(file ? file : "");
	x->line = line;
	x->col = col;
	x->msg = amlops_buf_detach(&b);
	if (!x->msg)
		x->msg = amlops_xstrdup("");
}

static int
diag_cmp(const struct amlops_diag *a, const struct amlops_diag *b)
{
	int c = strcmp(a->file, b->file);

	if (c)
		return c;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return 0;
}

struct sorted {
	struct amlops_diag d;
	size_t i;
};

static int
sorted_cmp(const void *a, const void *b)
{
	const struct sorted *x = a, *y = b;
	int c = diag_cmp(&x->d, &y->d);

	if (c)
		return c;
	return x->i < y->i ? -1 : x->i > y->i;
}

void
amlops_diags_sort(struct amlops_diags *d)
{
	struct sorted *s;
	size_t i;

	if (d->n < 2)
		return;
	/* qsort is not stable: the original index breaks ties */
	s = amlops_xmalloc(d->n * sizeof(*s));
	for (i = 0; i < d->n; i++) {
		s[i].d = d->v[i];
		s[i].i = i;
	}
	qsort(s, d->n, sizeof(*s), sorted_cmp);
	for (i = 0; i < d->n; i++)
		d->v[i] = s[i].d;
	free(s);
}

void
amlops_diags_release(struct amlops_diags *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}

char *
amlops_diag_format(const struct amlops_diag *d)
{
	return amlops_xasprintf(
	    "%s:%u:%u: %s", d->file, d->line, d->col, d->msg);
}
