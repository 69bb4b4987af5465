/*
 * The target's backend for a command that talks to one: the global
 * --target picks `amlops host` (local) or Azure; the command's own
 * target flags (below) and, for Azure, `.amlops.yml` at the HEAD of
 * --repo and the environment fill in where it is.
 *
 * A command adds CLI_TARGET_LONGOPTS to its getopt_long table, passes
 * each option it does not know to cli_target_opt(), and opens the
 * backend with cli_target_open():
 *
 *	struct cli_target t = CLI_TARGET_INIT;
 *	...
 *	default:
 *		if (cli_target_opt(&t, ch, optarg))
 *			break;
 *	...
 *	if (cli_target_open(&b, ctx, &t) < 0)
 *		return cli_error("%s", amlops_err_last());
 */
#ifndef AMLOPS_CLI_TARGET_H
#define AMLOPS_CLI_TARGET_H

#include "amlops/backend.h"
#include "cli/cli.h"

struct cli_target {
	const char *host_dir;        /* --host-dir; NULL: AMLOPS_HOST_DIR */
	const char *subscription_id; /* --subscription */
	const char *resource_group;  /* --resource-group */
	const char *workspace;       /* --workspace */
	const char *arm_url;         /* --arm-url */
};

#define CLI_TARGET_INIT                                                        \
	{                                                                      \
		NULL, NULL, NULL, NULL, NULL                                   \
	}

/* getopt_long values of the target flags; above any character. */
enum {
	CLI_TARGET_OPT_HOST_DIR = 0x1000,
	CLI_TARGET_OPT_SUBSCRIPTION,
	CLI_TARGET_OPT_RESOURCE_GROUP,
	CLI_TARGET_OPT_WORKSPACE,
	CLI_TARGET_OPT_ARM_URL,
};

/* clang-format off */
#define CLI_TARGET_LONGOPTS						\
	{"host-dir", required_argument, NULL, CLI_TARGET_OPT_HOST_DIR},	\
	{"subscription", required_argument, NULL,			\
	    CLI_TARGET_OPT_SUBSCRIPTION},					\
	{"resource-group", required_argument, NULL,			\
	    CLI_TARGET_OPT_RESOURCE_GROUP},					\
	{"workspace", required_argument, NULL, CLI_TARGET_OPT_WORKSPACE},	\
	{"arm-url", required_argument, NULL, CLI_TARGET_OPT_ARM_URL}
/* clang-format on */

/* The usage lines of those flags, to append to a command's usage. */
#define CLI_TARGET_USAGE                                                       \
	"target (with the global --target local|azure):\n"                     \
	"  --host-dir DIR         local: the host's state dir (default:\n"     \
	"                         $AMLOPS_HOST_DIR, else "                     \
	"~/.local/state/amlops)\n"                                             \
	"  --subscription ID      azure: default azure.subscription_id in\n"   \
	"                         .amlops.yml, else $AZURE_SUBSCRIPTION_ID\n"  \
	"  --resource-group NAME  azure: else $AZURE_RESOURCE_GROUP\n"         \
	"  --workspace NAME       azure: else $AZUREML_WORKSPACE\n"            \
	"  --arm-url URL          azure: else $AMLOPS_ARM_URL, else the\n"     \
	"                         public cloud\n"

/*
 * Takes option `ch` (with `arg`) if it is a target flag: returns 1 when
 * it was one, 0 when not.
 */
int cli_target_opt(struct cli_target *t, int ch, const char *arg);

/*
 * Opens the backend `ctx->target` names. For azure, each coordinate
 * comes from the flag, else from `.amlops.yml` at HEAD of `ctx->repo`
 * (when that is a git repository; a broken file is an error with its
 * file:line:column), else from the environment. The caller frees `*out`
 * with amlops_backend_free(). The message says what is missing or which
 * host is not running.
 */
int cli_target_open(struct amlops_backend **out, const struct cli_ctx *ctx,
    const struct cli_target *t);

/*
 * For the local target: makes sure an `amlops host` runs in the state
 * dir `host_dir` (NULL: $AMLOPS_HOST_DIR, else the default dir), and
 * starts one there in the background (`amlops host --detach`) when none
 * does. Sets `*dir` to the state dir used; the caller frees it. Returns
 * 1 when it started a host (the caller says so, with `*dir` and
 * `*dir`/host.log), 0 when one was running, or an error with the
 * message set. apply, reconcile and watch call it before
 * cli_target_open() or amlops_local_new().
 */
int cli_target_ensure_local_host(char **dir, const char *host_dir);

#endif
