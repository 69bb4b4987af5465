/*
 * Temporary git repositories driven by the git command, for the unit
 * tests of the modules that read git (test_source.c, test_status.c).
 * Include after <cmocka.h>.
 */
#ifndef AMLOPS_TESTREPO_H
#define AMLOPS_TESTREPO_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct repo {
	char dir[64];
};

/* Runs a shell command; a failure fails the test. */
static inline void
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

/* The first line of a command's output, malloc'd. */
static inline char *
sh_out(const char *fmt, ...)
{
	char cmd[4096], line[4096] = "";
	va_list ap;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (!(p = popen(cmd, "r")))
		fail_msg("popen: %s", cmd);
	if (!fgets(line, sizeof(line), p))
		line[0] = '\0';
	pclose(p);
	line[strcspn(line, "\n")] = '\0';
	return strdup(line);
}

#endif
