/*
 * amlops: keeps Azure ML online endpoints in the state a git repository
 * describes. This file parses the global flags and runs one command.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amlops/log.h"
#include "cli/cli.h"

#ifndef AMLOPS_VERSION
#define AMLOPS_VERSION "0.0.0"
#endif

static const struct cmd cmds[] = {
    {"validate", cmd_validate, 0, "check endpoint YAML"},
    {"plan", cmd_plan, CMD_NEEDS_REPO, "show the steps to a commit"},
    {"apply", cmd_apply, CMD_NEEDS_REPO | CMD_NEEDS_TARGET,
        "apply one commit to the target"},
    {"status", cmd_status, CMD_NEEDS_REPO, "show a commit's note"},
    {"host", cmd_host, 0, "run the local control plane and model server"},
    {"endpoint", cmd_endpoint, CMD_NEEDS_TARGET,
        "list, show, invoke, read logs of, delete endpoints"},
    {"reconcile", cmd_reconcile, CMD_NEEDS_REPO | CMD_NEEDS_TARGET,
        "apply the branch head if it is new, once"},
    {"watch", cmd_watch, CMD_NEEDS_REPO | CMD_NEEDS_TARGET,
        "apply each new commit, in a loop"},
    {NULL, NULL, 0, NULL},
};

static void
usage(FILE *f)
{
	const struct cmd *c;

	fprintf(f,
	    "usage: amlops [--repo PATH] [--target local|azure] "
	    "[--output table|json] [-v] COMMAND [ARGS]\n"
	    "\n"
	    "Keeps Azure ML online endpoints in the state a git repository "
	    "describes.\n\ncommands:\n");
	for (c = cmds; c->name; c++)
		fprintf(f, "  %-12s %s\n", c->name, c->summary);
	fprintf(f, "\nRun 'amlops COMMAND --help' for a command's flags.\n");
}

int
cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("amlops: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_ERROR;
}

int
cli_usage_error(const char *usage_text, const char *fmt, ...)
{
	va_list ap;

	fputs("amlops: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", usage_text);
	return EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"repo", required_argument, NULL, 'C'},
	    {"target", required_argument, NULL, 't'},
	    {"output", required_argument, NULL, 'o'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct cli_ctx ctx = {
	    .progname = "amlops",
	    .repo = NULL,
	    .target = NULL,
	    .output = CLI_OUTPUT_TABLE,
	};
	const struct cmd *c;
	int ch, rc;

	signal(SIGPIPE, SIG_IGN);
	/* "+": stop at the first non-option, the command's name */
	while ((ch = getopt_long(argc, argv, "+C:t:o:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'C':
			ctx.repo = optarg;
			break;
		case 't':
			if (strcmp(optarg, "local") &&
			    strcmp(optarg, "azure")) {
				fprintf(stderr,
				    "amlops: unknown target '%s' "
				    "(expected 'local' or 'azure')\n",
				    optarg);
				return EXIT_USAGE;
			}
			ctx.target = optarg;
			break;
		case 'o':
			if (!strcmp(optarg, "json"))
				ctx.output = CLI_OUTPUT_JSON;
			else if (!strcmp(optarg, "table"))
				ctx.output = CLI_OUTPUT_TABLE;
			else {
				fprintf(stderr,
				    "amlops: unknown output '%s' "
				    "(expected 'table' or 'json')\n",
				    optarg);
				return EXIT_USAGE;
			}
			break;
		case 'v':
			ctx.verbose++;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("amlops %s\n", AMLOPS_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (c = cmds; c->name; c++)
		if (!strcmp(c->name, argv[optind]))
			break;
	if (!c->name) {
		fprintf(
		    stderr, "amlops: unknown command '%s'\n\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!ctx.repo)
		ctx.repo = ".";
	if (!ctx.target)
		ctx.target =
		    getenv("AMLOPS_TARGET") ? getenv("AMLOPS_TARGET") : "local";
	amlops_log_init("amlops", ctx.verbose, 0);

	/* each command parses its own flags from its own argv[0] */
	argc -= optind;
	argv += optind;
	optind = 0;
	rc = c->fn(argc, argv, &ctx);

	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (errno != EPIPE)
			fprintf(stderr,
			    "amlops: error: cannot write output: "
			    "%s\n",
			    strerror(errno));
		return rc ? rc : EXIT_ERROR;
	}
	return rc;
}
