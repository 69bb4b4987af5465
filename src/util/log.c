#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

/*
 * For JSON lines: adds each key=value pair of an event line (key=word,
 * or key="text" with \" and \\ inside) as a string field of its own, so
 * that a collector can index them. A message that is not all pairs adds
 * none; "msg" always carries the whole text.
 */
static void
json_fields(struct amlops_buf *b, const char *s)
{
	struct amlops_buf f = AMLOPS_BUF_INIT;
	const char *p = s;

	while (*p) {
		const char *k = p;
		size_t klen;

		while (*p == '_' || (*p >= 'a' && *p <= 'z') ||
		       (*p >= '0' && *p <= '9' && p > k))
			p++;
		klen = (size_t)(p - k);
		if (klen == 0 || *p != '=')
			goto out;
		amlops_buf_printf(&f, ",\"%.*s\":\"", (int)klen, k);
		if ((klen == 4 && !strncmp(k, "time", 4)) ||
		    (klen == 5 && !strncmp(k, "level", 5)) ||
		    (klen == 3 && !strncmp(k, "msg", 3)))
			goto out;
		p++;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				char one[2] = {*p, '\0'};

				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					one[0] = *++p;
				json_escape(&f, one);
			}
			if (*p != '"')
				goto out;
			p++;
		} else {
			const char *v = p;
			char *w;

			while (*p && *p != ' ')
				p++;
			w = amlops_xstrndup(v, (size_t)(p - v));
			json_escape(&f, w);
			free(w);
		}
		amlops_buf_putc(&f, '"');
		if (*p == ' ')
			p++;
		else if (*p)
			goto out;
	}
	amlops_buf_puts(b, amlops_buf_cstr(&f));
out:
	amlops_buf_release(&f);
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
		amlops_buf_putc(&line, '"');
		json_fields(&line, amlops_buf_cstr(&msg));
		amlops_buf_puts(&line, "}\n");
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
