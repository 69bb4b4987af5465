#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "amlops/err.h"

#define ERR_MAX 2048

static _Thread_local char errbuf[ERR_MAX];

int
amlops_err_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return code;
}

int
amlops_err_sys(int code, const char *fmt, ...)
{
	int saved = errno;
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	len = strlen(errbuf);
	snprintf(errbuf + len, sizeof(errbuf) - len, ": %s", strerror(saved));
	errno = saved;
	return code;
}

int
amlops_err_prefix(int code, const char *fmt, ...)
{
	char prefix[512], old[ERR_MAX];
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, errbuf, sizeof(old));
	len = strlen(prefix);
	memcpy(errbuf, prefix, len + 1);
	if (old[0] && len + 2 < sizeof(errbuf)) {
		memcpy(errbuf + len, ": ", 3);
		strncat(errbuf, old, sizeof(errbuf) - len - 3);
	}
	return code;
}

const char *
amlops_err_last(void)
{
	return errbuf;
}

void
amlops_err_clear(void)
{
	errbuf[0] = '\0';
}
