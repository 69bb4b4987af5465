/*
 * What src/main.c hands each command, and the commands themselves. Only
 * main.c and the files in src/cli print to stdout or call exit().
 */
#ifndef AMLOPS_CLI_H
#define AMLOPS_CLI_H

#include <stdio.h>

/* Exit codes. */
enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,
	EXIT_CHANGES = 2, /* plan --detailed-exitcode: changes pending */
	EXIT_LOCKED = 3,  /* another run holds the lock */
	EXIT_USAGE = 64,
};

enum cli_output {
	CLI_OUTPUT_TABLE = 0,
	CLI_OUTPUT_JSON,
};

struct cli_ctx {
	const char *progname;
	const char *repo;       /* --repo, default "." */
	const char *target;     /* --target, default "local" */
	enum cli_output output; /* --output */
	int verbose;            /* -v, repeatable */
};

enum cmd_flags {
	CMD_NEEDS_REPO = 1 << 0,
	CMD_NEEDS_TARGET = 1 << 1,
};

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv, struct cli_ctx *ctx);
	unsigned flags;
	const char *summary;
};

/*
 * Each takes argv with argv[0] the command's name, and returns an exit
 * code. Usage errors print the command's usage to stderr and return
 * EXIT_USAGE.
 */
int cmd_validate(int argc, char **argv, struct cli_ctx *ctx);
int cmd_plan(int argc, char **argv, struct cli_ctx *ctx);
int cmd_apply(int argc, char **argv, struct cli_ctx *ctx);
int cmd_status(int argc, char **argv, struct cli_ctx *ctx);
int cmd_host(int argc, char **argv, struct cli_ctx *ctx);
int cmd_endpoint(int argc, char **argv, struct cli_ctx *ctx);
int cmd_reconcile(int argc, char **argv, struct cli_ctx *ctx);
int cmd_watch(int argc, char **argv, struct cli_ctx *ctx);

/* Prints "amlops: error: msg" to stderr; returns EXIT_ERROR. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "amlops CMD: msg" and the usage; returns EXIT_USAGE. */
int cli_usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
