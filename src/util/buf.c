#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amlops/err.h"
#include "amlops/util.h"

void
amlops_buf_init(struct amlops_buf *b, size_t max)
{
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

static int
grow(struct amlops_buf *b, size_t extra)
{
	size_t want;

	if (extra > SIZE_MAX / 2 - b->len ||
	    (b->max && b->len + extra > b->max))
		return amlops_err_set(
		    AMLOPS_EINVALID, "more than %zu bytes", b->max);
	want = b->len + extra + 1;
	if (want <= b->cap)
		return 0;
	if (want < b->cap * 2)
		want = b->cap * 2;
	if (want < 64)
		want = 64;
	b->ptr = amlops_xrealloc(b->ptr, want);
	b->cap = want;
	return 0;
}

int
amlops_buf_add(struct amlops_buf *b, const void *data, size_t len)
{
	int error;

	if ((error = grow(b, len)) < 0)
		return error;
	if (len)
		memcpy(b->ptr + b->len, data, len);
	b->len += len;
	b->ptr[b->len] = '\0';
	return 0;
}

int
amlops_buf_puts(struct amlops_buf *b, const char *s)
{
	return amlops_buf_add(b, s, strlen(s));
}

int
amlops_buf_putc(struct amlops_buf *b, char c)
{
	return amlops_buf_add(b, &c, 1);
}

int
amlops_buf_vprintf(struct amlops_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n, error;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return amlops_err_set(AMLOPS_ERROR, "bad format '%s'", fmt);
	if ((error = grow(b, (size_t)n)) < 0)
		return error;
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
amlops_buf_printf(struct amlops_buf *b, const char *fmt, ...)
{
	va_list ap;
	int error;

	va_start(ap, fmt);
	error = amlops_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return error;
}

const char *
amlops_buf_cstr(const struct amlops_buf *b)
{
	return b->ptr ? b->ptr : "";
}

void
amlops_buf_reset(struct amlops_buf *b)
{
	b->len = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

char *
amlops_buf_detach(struct amlops_buf *b)
{
	char *p = b->ptr ? b->ptr : amlops_xstrdup("");

	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

void
amlops_buf_release(struct amlops_buf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
}
