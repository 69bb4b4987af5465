/*
 * Logging to stderr, one event per line, key=value fields:
 *   endpoint=blue step=3/7 aspect=traffic result=ok ms=412
 * log_debug() prints only with -v. Never log a secret.
 */
#ifndef AMLOPS_LOG_H
#define AMLOPS_LOG_H

enum amlops_log_level {
	AMLOPS_LOG_DEBUG,
	AMLOPS_LOG_INFO,
	AMLOPS_LOG_WARN,
	AMLOPS_LOG_ERROR,
};

enum amlops_log_flags {
	AMLOPS_LOG_JSON = 1 << 0,       /* one JSON object a line */
	AMLOPS_LOG_TIMESTAMPS = 1 << 1, /* prefix each line with its time */
};

void amlops_log_init(const char *progname, int verbose, unsigned flags);
int amlops_log_verbose(void);

void amlops_log(enum amlops_log_level level, int with_errno, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

#define log_debug(...) amlops_log(AMLOPS_LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) amlops_log(AMLOPS_LOG_INFO, 0, __VA_ARGS__)
#define log_warn(...) amlops_log(AMLOPS_LOG_WARN, 1, __VA_ARGS__)
#define log_warnx(...) amlops_log(AMLOPS_LOG_WARN, 0, __VA_ARGS__)
#define log_error(...) amlops_log(AMLOPS_LOG_ERROR, 0, __VA_ARGS__)

#endif
