/*
 * amlops reconcile --once: one pass of the GitOps loop (amlops/watch.h)
 * for cron, systemd timers and CI: fetch, apply the branch head when it
 * is not applied yet, note the commits it superseded, push with --push.
 * Also the setup it shares with amlops watch (cli/reconcile.h).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amlops/backend.h"
#include "amlops/err.h"
#include "amlops/hostinfo.h"
#include "amlops/log.h"
#include "amlops/source.h"
#include "amlops/util.h"
#include "amlops/watch.h"
#include "cli/cli.h"
#include "cli/reconcile.h"
#include "cli/target.h"

volatile sig_atomic_t cli_loop_stop;
volatile sig_atomic_t cli_loop_reload;

static const char reconcile_usage[] =
    "usage: amlops reconcile [--once] [--repo PATH|URL] [--branch B] "
    "[--push]\n"
    "                        [--state-dir DIR] [--log-format text|json]\n"
    "\n"
    "Applies the branch head when it is not what\n"
    "refs/amlops/applied/TARGET names yet, planning from that commit (or\n"
    "from nothing) straight to the head; the commits in between get a\n"
    "note saying which commit superseded them. Exit codes: 0 applied or\n"
    "nothing to do (also after SIGTERM, once the step in flight ended),\n"
    "1 failed, 3 another run holds the lock, 64 usage.\n"
    "\n"
    "  --once                 one pass, then exit (the only mode; use\n"
    "                         amlops watch for a loop)\n" CLI_LOOP_USAGE
        CLI_TARGET_USAGE;

int
cli_loop_duration(const char *s, int64_t *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v <= 0)
		return -1;
	if (!strcmp(end, "") || !strcmp(end, "s"))
		v *= 1000;
	else if (!strcmp(end, "ms"))
		;
	else if (!strcmp(end, "m"))
		v *= 60000;
	else if (!strcmp(end, "h"))
		v *= 3600000;
	else
		return -1;
	if (v < 1 || v > 7 * 24 * 3600000.0)
		return -1;
	*out = (int64_t)v;
	return 0;
}

int
cli_loop_opt(struct cli_loop *l, int ch, const char *arg, const char *cmd,
    const char *usage)
{
	char *end;

	if (cli_target_opt(&l->t, ch, arg))
		return 1;
	switch (ch) {
	case CLI_LOOP_OPT_REPO:
		l->repo = arg;
		return 1;
	case CLI_LOOP_OPT_BRANCH:
		l->branch = arg;
		return 1;
	case CLI_LOOP_OPT_PUSH:
		l->push = 1;
		return 1;
	case CLI_LOOP_OPT_STATE_DIR:
		l->state_dir = arg;
		return 1;
	case CLI_LOOP_OPT_LOG_FORMAT:
		if (!strcmp(arg, "json"))
			l->json = 1;
		else if (!strcmp(arg, "text"))
			l->json = 0;
		else
			return cli_usage_error(usage,
			    "%s: unknown log format '%s' (expected 'text' or "
			    "'json')",
			    cmd, arg);
		return 1;
	case CLI_LOOP_OPT_JOBS:
		errno = 0;
		l->jobs = strtol(arg, &end, 10);
		if (errno || end == arg || *end || l->jobs < 1 || l->jobs > 64)
			return cli_usage_error(usage,
			    "%s: --jobs '%s' is not a number from 1 to 64", cmd,
			    arg);
		return 1;
	case CLI_LOOP_OPT_TIMEOUT:
		if (cli_loop_duration(arg, &l->timeout_ms) < 0)
			return cli_usage_error(usage,
			    "%s: --timeout '%s' is not a duration (e.g. 90s, "
			    "20m, 1h)",
			    cmd, arg);
		return 1;
	default:
		return 0;
	}
}

static void
on_signal(int sig)
{
	static const char again[] =
	    "amlops: second signal: exiting now, the step in flight is "
	    "left to the next run\n";

	if (sig == SIGHUP) {
		cli_loop_reload = 1;
		return;
	}
	if (cli_loop_stop) {
		if (write(STDERR_FILENO, again, sizeof(again) - 1) < 0) {
			/* nothing more to do about it */
		}
		/* watch: the pass's child goes with it */
		if (amlops_watch_child_pid > 0)
			kill((pid_t)amlops_watch_child_pid, SIGKILL);
		_exit(128 + sig);
	}
	cli_loop_stop = 1;
}

static int
open_backend(void *arg, struct amlops_backend **out)
{
	struct cli_loop *l = arg;

	return cli_target_open(out, l->ctx, &l->t);
}

/* Logging, the signal handlers, the lock. */
static int
loop_begin(struct cli_loop *l, struct cli_ctx *ctx)
{
	struct sigaction sa;
	int error;

	l->ctx = ctx;
	if (l->repo)
		ctx->repo = l->repo;
	amlops_log_init("amlops", ctx->verbose,
	    l->json ? AMLOPS_LOG_JSON : AMLOPS_LOG_TIMESTAMPS);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: waits end at once */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	if (!l->state_dir) {
		if (amlops_hostinfo_default_dir(&l->state_owned) < 0)
			return cli_error("%s", amlops_err_last());
		l->state_dir = l->state_owned;
	}
	error = amlops_watch_lock_take(&l->lock, l->state_dir);
	if (error == AMLOPS_ELOCKED) {
		cli_error("%s", amlops_err_last());
		return EXIT_LOCKED;
	}
	if (error < 0)
		return cli_error("%s", amlops_err_last());
	l->is_url = strstr(ctx->repo, "://") != NULL ||
	            (strchr(ctx->repo, '@') && strchr(ctx->repo, ':') &&
	                (!strchr(ctx->repo, '/') ||
	                    strchr(ctx->repo, ':') < strchr(ctx->repo, '/')));
	return EXIT_OK;
}

/* The local host, started when none runs. */
static int
loop_host(struct cli_loop *l)
{
	int error;

	if (strcmp(l->ctx->target, "azure") == 0)
		return EXIT_OK;
	/* as apply does: a host in the background when none runs */
	if ((error = cli_target_ensure_local_host(
	         &l->host_owned, l->t.host_dir)) < 0)
		return cli_error("%s", amlops_err_last());
	if (error == 1)
		log_info("event=host_started state_dir=%s log=%s/host.log",
		    l->host_owned, l->host_owned);
	l->t.host_dir = l->host_owned;
	return EXIT_OK;
}

/* l->pass, from the flags and the local host's address. */
static void
loop_fill(struct cli_loop *l)
{
	struct cli_ctx *ctx = l->ctx;

	if (strcmp(ctx->target, "azure") != 0 &&
	    amlops_hostinfo_read(&l->info, l->t.host_dir) == 0)
		l->pass.target_url = l->info->url;
	amlops_err_clear();
	l->pass.target = ctx->target;
	l->pass.branch = l->branch;
	l->pass.push = l->push;
	l->pass.jobs = (unsigned)l->jobs;
	l->pass.step_timeout_ms = l->timeout_ms;
	l->pass.open_backend = open_backend;
	l->pass.backend_ctx = l;
	l->pass.stop = &cli_loop_stop;
}

int
cli_loop_open(struct cli_loop *l, struct cli_ctx *ctx)
{
	int rc;

	if ((rc = loop_begin(l, ctx)) != EXIT_OK)
		return rc;
	if (amlops_source_open(&l->src, ctx->repo, NULL) < 0)
		return cli_error("%s", amlops_err_last());
	if ((rc = loop_host(l)) != EXIT_OK)
		return rc;
	if (open_backend(l, &l->b) < 0)
		return cli_error(
		    "target '%s': %s", ctx->target, amlops_err_last());
	loop_fill(l);
	return EXIT_OK;
}

int
cli_loop_prepare(struct cli_loop *l, struct cli_ctx *ctx)
{
	int rc;

	if ((rc = loop_begin(l, ctx)) != EXIT_OK)
		return rc;
	if ((rc = loop_host(l)) != EXIT_OK)
		return rc;
	loop_fill(l);
	return EXIT_OK;
}

int
cli_loop_connect(
    void *arg, struct amlops_source **src, struct amlops_backend **b)
{
	struct cli_loop *l = arg;
	int error;

	*src = NULL;
	*b = NULL;
	amlops_watch_lean_start(strcmp(l->ctx->target, "azure") != 0);
	if ((error = amlops_source_open(src, l->ctx->repo, NULL)) < 0)
		return error;
	if ((error = open_backend(l, b)) < 0)
		return amlops_err_prefix(error, "target '%s'", l->ctx->target);
	return 0;
}

void
cli_loop_disconnect(
    void *arg, struct amlops_source *src, struct amlops_backend *b)
{
	(void)arg;
	amlops_backend_free(b);
	amlops_source_free(src);
}

void
cli_loop_close(struct cli_loop *l)
{
	amlops_backend_free(l->b);
	amlops_hostinfo_free(l->info);
	amlops_source_free(l->src);
	amlops_watch_lock_free(l->lock);
	free(l->state_owned);
	free(l->host_owned);
}

int
cmd_reconcile(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
	    {"once", no_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    CLI_LOOP_LONGOPTS,
	    CLI_TARGET_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	struct cli_loop l = CLI_LOOP_INIT;
	struct amlops_watch_pass pass;
	int ch, rc, taken;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			break;
		case 'h':
			fputs(reconcile_usage, stdout);
			return EXIT_OK;
		default:
			taken = cli_loop_opt(
			    &l, ch, optarg, "reconcile", reconcile_usage);
			if (taken == 1)
				break;
			if (taken == EXIT_USAGE)
				return EXIT_USAGE;
			fputs(reconcile_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(reconcile_usage,
		    "reconcile: unexpected argument '%s'", argv[optind]);
	if ((rc = cli_loop_open(&l, ctx)) != EXIT_OK)
		goto done;
	/* amlops_source_open() fetched a URL already */
	l.pass.fetch = 0;
	if (amlops_watch_reconcile(&pass, l.src, l.b, &l.pass) < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	switch (pass.result) {
	case AMLOPS_WATCH_UP_TO_DATE:
		log_info("event=up_to_date commit=%.12s", pass.head);
		rc = EXIT_OK;
		break;
	case AMLOPS_WATCH_NO_CHANGES:
	case AMLOPS_WATCH_SUCCEEDED:
	case AMLOPS_WATCH_INTERRUPTED:
		rc = EXIT_OK;
		break;
	case AMLOPS_WATCH_FAILED:
		rc = cli_error("%s", amlops_err_last());
		break;
	}
done:
	cli_loop_close(&l);
	return rc;
}
