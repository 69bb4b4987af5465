/*
 * What `amlops reconcile` and `amlops watch` share: their common flags,
 * and the setup both run before a pass (log format, the lock, the
 * source, the target's backend, the signal handlers).
 */
#ifndef AMLOPS_CLI_RECONCILE_H
#define AMLOPS_CLI_RECONCILE_H

#include <signal.h>

#include "amlops/backend.h"
#include "amlops/hostinfo.h"
#include "amlops/source.h"
#include "amlops/watch.h"
#include "cli/cli.h"
#include "cli/target.h"

struct cli_loop {
	struct cli_target t;
	const char *repo;      /* --repo after the command, else global */
	const char *state_dir; /* --state-dir */
	const char *branch;    /* --branch */
	int push;              /* --push */
	int json;              /* --log-format json */
	long jobs;             /* --jobs */
	int64_t timeout_ms;    /* --timeout, per step */

	/* set by cli_loop_open(), freed by cli_loop_close() */
	char *state_owned;
	char *host_owned; /* the local host's state dir, once ensured */
	struct amlops_watch_lock *lock;
	struct amlops_source *src;
	struct amlops_backend *b;
	struct amlops_hostinfo *info;
	int is_url;
	struct cli_ctx *ctx;
	struct amlops_watch_pass_opts pass;
};

/* The flags both take; getopt_long values above any character. */
enum {
	CLI_LOOP_OPT_REPO = 0x2000,
	CLI_LOOP_OPT_BRANCH,
	CLI_LOOP_OPT_PUSH,
	CLI_LOOP_OPT_STATE_DIR,
	CLI_LOOP_OPT_LOG_FORMAT,
	CLI_LOOP_OPT_JOBS,
	CLI_LOOP_OPT_TIMEOUT,
};

/* clang-format off */
#define CLI_LOOP_LONGOPTS						\
	{"repo", required_argument, NULL, CLI_LOOP_OPT_REPO},		\
	{"branch", required_argument, NULL, CLI_LOOP_OPT_BRANCH},	\
	{"push", no_argument, NULL, CLI_LOOP_OPT_PUSH},			\
	{"state-dir", required_argument, NULL, CLI_LOOP_OPT_STATE_DIR},	\
	{"log-format", required_argument, NULL, CLI_LOOP_OPT_LOG_FORMAT},	\
	{"jobs", required_argument, NULL, CLI_LOOP_OPT_JOBS},		\
	{"timeout", required_argument, NULL, CLI_LOOP_OPT_TIMEOUT}
/* clang-format on */

#define CLI_LOOP_USAGE                                                         \
	"  --repo PATH|URL        the repository (default: the global\n"       \
	"                         --repo, else .); a URL is cloned into the\n" \
	"                         cache and fetched\n"                         \
	"  --branch B             the branch to apply (default: HEAD)\n"       \
	"  --push                 push the notes and the applied ref to\n"     \
	"                         origin after each apply\n"                   \
	"  --state-dir DIR        where the lock is (default:\n"               \
	"                         $XDG_STATE_HOME/amlops, else\n"              \
	"                         ~/.local/state/amlops)\n"                    \
	"  --log-format text|json one line per event (default text)\n"         \
	"  --jobs N               apply up to N endpoints at once\n"           \
	"  --timeout DURATION     per step, e.g. 90s, 20m (default 30m)\n"

/* 0: nothing stops; 1 after the first SIGTERM/SIGINT. */
extern volatile sig_atomic_t cli_loop_stop;
extern volatile sig_atomic_t cli_loop_reload;

#define CLI_LOOP_INIT                                                          \
	{                                                                      \
		.t = CLI_TARGET_INIT, .jobs = 1                                \
	}

/*
 * Takes option `ch` if it is one of CLI_LOOP_LONGOPTS or a target flag:
 * 1 when taken, 0 when not, EXIT_USAGE (after the message) when its
 * value is bad. `cmd` names the command in messages.
 */
int cli_loop_opt(struct cli_loop *l, int ch, const char *arg, const char *cmd,
    const char *usage);

/* "90s", "20m", "1h", "500ms", "45" (seconds) into milliseconds. */
int cli_loop_duration(const char *s, int64_t *out);

/*
 * Sets up logging, the signal handlers, the lock, the source and the
 * backend, and fills l->pass. Returns EXIT_OK, or the exit code after
 * the message (EXIT_LOCKED when another run holds the lock).
 */
int cli_loop_open(struct cli_loop *l, struct cli_ctx *ctx);
void cli_loop_close(struct cli_loop *l);

/*
 * For amlops watch, whose long-running process never opens the source
 * or the backend (it would start libgit2 and libcurl): as
 * cli_loop_open() without them. Each pass's child opens and frees them
 * with cli_loop_connect() and cli_loop_disconnect() (`arg` is the
 * cli_loop), the messages set as cli_loop_open() prints them.
 */
int cli_loop_prepare(struct cli_loop *l, struct cli_ctx *ctx);
int cli_loop_connect(
    void *arg, struct amlops_source **src, struct amlops_backend **b);
void cli_loop_disconnect(
    void *arg, struct amlops_source *src, struct amlops_backend *b);

#endif
