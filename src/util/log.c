#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "amlops/log.h"
#include "amlops/util.h"

static const char *prog = "amlops";
static int verbosity;
static unsigned logflags;

void
amlops_log_init(const char *progname, int verbose, unsigned flags)
{
	if (progname)
		prog = progname;
	verbosity = verbose;
	logflags = flags;
}

int
amlops_log_verbose(void)
{
	return verbosity;
}

static void
json_escape(struct amlops_buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			amlops_buf_printf(b, "\\%c", c);
		else if (c < 0x20)
			amlops_buf_printf(b, "\\u%04x", c);
		else
			amlops_buf_putc(b, (char)c);
	}
}

void
amlops_log(enum amlops_log_level level, int with_errno, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	struct amlops_buf msg = AMLOPS_BUF_INIT, line = AMLOPS_BUF_INIT;
	int saved = errno;
	char ts[32];
	va_list ap;

	if (level == AMLOPS_LOG_DEBUG && !verbosity)
		return;
	va_start(ap, fmt);
	amlops_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	if (with_errno)
		amlops_buf_printf(&msg, ": %s", strerror(saved));

	amlops_time_rfc3339(ts, amlops_wall_ms());
	if (logflags & AMLOPS_LOG_JSON) {
		amlops_buf_printf(&line,
		    "{\"time\":\"%s\",\"level\":\"%s\","
		    "\"msg\":\"",
		    ts, names[level]);
		json_escape(&line, amlops_buf_cstr(&msg));
		amlops_buf_puts(&line, "\"}\n");
	} else if (logflags & AMLOPS_LOG_TIMESTAMPS) {
		amlops_buf_printf(&line, "%s level=%s %s\n", ts, names[level],
		    amlops_buf_cstr(&msg));
	} else {
		amlops_buf_printf(&line, "%s: %s%s\n", prog,
		    level >= AMLOPS_LOG_WARN
		        ? (level == AMLOPS_LOG_ERROR ? "error: " : "warning: ")
		        : "",
		    amlops_buf_cstr(&msg));
	}
	fputs(amlops_buf_cstr(&line), stderr);
	amlops_buf_release(&msg);
	amlops_buf_release(&line);
	errno = saved;
}
