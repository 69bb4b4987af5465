#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amlops/util.h"

static void
oom(size_t n)
{
	fprintf(stderr, "amlops: out of memory allocating %zu bytes\n", n);
	abort();
}

void *
amlops_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

void *
amlops_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		oom(nmemb * size);
	return p;
}

void *
amlops_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		oom(n);
	return q;
}

char *
amlops_xstrdup(const char *s)
{
	return s ? amlops_xstrndup(s, strlen(s)) : NULL;
}

char *
amlops_xstrndup(const char *s, size_t n)
{
	char *p;
	size_t len = strnlen(s, n);

	p = amlops_xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
amlops_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	p = amlops_xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}
