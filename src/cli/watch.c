/*
 * amlops watch: the GitOps loop (amlops/watch.h) in the foreground.
 * A local repository is watched with inotify on its refs; a URL (or
 * --poll) is fetched every --interval. SIGTERM or SIGINT ends the step
 * in flight, writes the note and exits 0; a second one exits at once;
 * SIGHUP reloads .amlops.yml. --listen serves /healthz and /metrics.
 * This process only waits, serves and counts; each pass runs in a child
 * (amlops_watch_run), which opens the repository and the target.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/watch.h"
#include "cli/cli.h"
#include "cli/reconcile.h"
#include "cli/target.h"

static const char watch_usage[] =
    "usage: amlops watch [--interval DURATION] [--poll] [--listen ADDR]\n"
    "                    [--drift-interval DURATION [--self-heal]]\n"
    "                    [--repo PATH|URL] [--branch B] [--push]\n"
    "                    [--state-dir DIR] [--log-format text|json]\n"
    "\n"
    "Applies each new commit of the branch as amlops reconcile does, in a\n"
    "loop, until SIGTERM or SIGINT (the step in flight ends and its note\n"
    "is written; a second signal exits at once). SIGHUP reloads\n"
    ".amlops.yml.\n"
    "\n"
    "  --interval DURATION    between fetches of a URL repository (or of\n"
    "                         a local one with --poll), with 10% jitter\n"
    "                         (default 30s)\n"
    "  --poll                 poll a local repository instead of watching\n"
    "                         its refs with inotify\n"
    "  --debounce DURATION    quiet time after a ref change (default 20ms)\n"
    "  --backoff DURATION     first retry of a failed commit (default 10s,\n"
    "                         doubled up to 10m)\n"
    "  --drift-interval DURATION\n"
    "                         compare every endpoint's live state with the\n"
    "                         applied commit this often (default: never)\n"
    "  --self-heal            correct the drift found (default: report it)\n"
    "  --listen ADDR          serve /healthz and /metrics on ADDR, e.g.\n"
    "                         127.0.0.1:9464 (default: none)\n"
    "  --unhealthy-after DURATION\n"
    "                         /healthz answers 503 once reconciles have\n"
    "                         failed this long (default 15m)\n" CLI_LOOP_USAGE
        CLI_TARGET_USAGE;

enum {
	OPT_INTERVAL = 0x3000,
	OPT_POLL,
	OPT_DEBOUNCE,
	OPT_BACKOFF,
	OPT_DRIFT,
	OPT_SELF_HEAL,
	OPT_LISTEN,
	OPT_UNHEALTHY,
};

int
cmd_watch(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
	    {"interval", required_argument, NULL, OPT_INTERVAL},
	    {"poll", no_argument, NULL, OPT_POLL},
	    {"debounce", required_argument, NULL, OPT_DEBOUNCE},
	    {"backoff", required_argument, NULL, OPT_BACKOFF},
	    {"drift-interval", required_argument, NULL, OPT_DRIFT},
	    {"self-heal", no_argument, NULL, OPT_SELF_HEAL},
	    {"listen", required_argument, NULL, OPT_LISTEN},
	    {"unhealthy-after", required_argument, NULL, OPT_UNHEALTHY},
	    {"help", no_argument, NULL, 'h'},
	    CLI_LOOP_LONGOPTS,
	    CLI_TARGET_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	static const struct {
		int opt;
		const char *name;
	} durations[] = {
	    {OPT_INTERVAL, "--interval"},
	    {OPT_DEBOUNCE, "--debounce"},
	    {OPT_BACKOFF, "--backoff"},
	    {OPT_DRIFT, "--drift-interval"},
	    {OPT_UNHEALTHY, "--unhealthy-after"},
	};
	struct cli_loop l = CLI_LOOP_INIT;
	struct amlops_watch_opts wo;
	struct amlops_watch_metrics *metrics = NULL;
	struct amlops_watch_server *server = NULL;
	struct amlops_watch_serve serve;
	const char *listen = NULL;
	int64_t unhealthy_ms = 15 * 60 * 1000, v;
	sigset_t block, waitmask, runmask;
	int ch, rc, taken;

	memset(&wo, 0, sizeof(wo));
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		for (size_t i = 0; i < sizeof(durations) / sizeof(*durations);
		     i++)
			if (durations[i].opt == ch &&
			    cli_loop_duration(optarg, &v) < 0)
				return cli_usage_error(watch_usage,
				    "watch: %s '%s' is not a duration (e.g. "
				    "500ms, 30s, 10m)",
				    durations[i].name, optarg);
		switch (ch) {
		case OPT_INTERVAL:
			wo.interval_ms = v;
			break;
		case OPT_POLL:
			wo.poll = 1;
			break;
		case OPT_DEBOUNCE:
			wo.debounce_ms = v;
			break;
		case OPT_BACKOFF:
			wo.backoff_ms = v;
			break;
		case OPT_DRIFT:
			wo.drift_interval_ms = v;
			break;
		case OPT_SELF_HEAL:
			wo.self_heal = 1;
			break;
		case OPT_LISTEN:
			listen = optarg;
			break;
		case OPT_UNHEALTHY:
			unhealthy_ms = v;
			break;
		case 'h':
			fputs(watch_usage, stdout);
			return EXIT_OK;
		default:
			taken =
			    cli_loop_opt(&l, ch, optarg, "watch", watch_usage);
			if (taken == 1)
				break;
			if (taken == EXIT_USAGE)
				return EXIT_USAGE;
			fputs(watch_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(watch_usage,
		    "watch: unexpected argument '%s'", argv[optind]);
	if (wo.self_heal && !wo.drift_interval_ms)
		return cli_usage_error(
		    watch_usage, "watch: --self-heal needs --drift-interval");

	/*
	 * Signals stay blocked but inside the waits and the passes, so
	 * that one that comes between a check of the flag and the wait
	 * still ends the wait. The server has no thread: it is served in
	 * those waits, so that the process can fork a pass safely.
	 */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &runmask);
	waitmask = runmask;
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGHUP);
	runmask = waitmask;

	/* the source and the target open in each pass's child */
	if ((rc = cli_loop_prepare(&l, ctx)) != EXIT_OK)
		goto done;
	metrics = amlops_watch_metrics_new(ctx->target);
	l.pass.metrics = metrics;
	if (listen) {
		if (amlops_watch_server_start_polled(
		        &server, listen, metrics, unhealthy_ms) < 0) {
			rc = cli_error("%s", amlops_err_last());
			goto done;
		}
		log_info("event=listening addr=%s port=%d", listen,
		    amlops_watch_server_port(server));
	}
	if (l.is_url && !l.push)
		log_warnx("event=no_push repo=%s note=\"without --push the "
		          "notes and the applied ref stay in the cache clone "
		          "(a fetch replaces them with the remote's, when it "
		          "has some)\"",
		    ctx->repo);
	wo.pass = l.pass;
	wo.is_url = l.is_url;
	wo.reload = &cli_loop_reload;
	wo.waitmask = &waitmask;
	wo.runmask = &runmask;
	if (server) {
		serve.fd = amlops_watch_server_fd(server);
		serve.run = amlops_watch_server_run;
		serve.ctx = server;
		wo.serve = &serve;
	}
	wo.open = cli_loop_connect;
	wo.close = cli_loop_disconnect;
	wo.open_ctx = &l;
	if (amlops_watch_run(&wo) < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	rc = EXIT_OK;
done:
	amlops_watch_server_stop(server);
	amlops_watch_metrics_free(metrics);
	cli_loop_close(&l);
	return rc;
}
