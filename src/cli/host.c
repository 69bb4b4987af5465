/*
 * `amlops host`: runs the local control plane and model server in the
 * foreground (or, with --detach, in the background) until SIGTERM/SIGINT.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amlops/err.h"
#include "amlops/hostinfo.h"
#include "amlops/log.h"
#include "amlops/util.h"
#include "cli/cli.h"
#include "local/host.h"

static const char host_usage[] =
    "usage: amlops host [--state-dir DIR] [--port N] [--bind ADDR]\n"
    "                   [--scoring-port N] [--python PATH] [--detach]\n"
    "                   [--faults] [--retry-after S] [--op-delay-ms MS]\n"
    "                   [--blob-endpoint URL --blob-container NAME\n"
    "                    --blob-account NAME --blob-key KEY]\n"
    "\n"
    "Serves the Azure ML REST API for online endpoints on ADDR:N\n"
    "(default 127.0.0.1, a free port) and runs each deployment's scoring\n"
    "script. DIR/host.json tells clients the URL and the bearer token.\n"
    "  --state-dir DIR   default $AMLOPS_HOST_DIR, else\n"
    "                    $XDG_STATE_HOME/amlops, else\n"
    "                    ~/.local/state/amlops\n"
    "  --detach          run in the background, log to DIR/host.log\n"
    "  --faults          enable test-only fault injection (POST\n"
    "                    /_amlops/faults); also AMLOPS_HOST_FAULTS=1\n"
    "  --retry-after S   the Retry-After of operations (default 1)\n"
    "  --op-delay-ms MS  how long quick operations stay InProgress\n";

static int
parse_int(const char *s, int min, int max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

/* Parent side of --detach: waits for the child's first line. */
static int
detach_wait(int fd, pid_t child)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char line[1024];
	size_t len = 0;
	ssize_t n;
	int64_t deadline = amlops_now_ms() + 60000;

	while (len < sizeof(line) - 1) {
		int left = (int)(deadline - amlops_now_ms());
		if (left <= 0 || poll(&p, 1, left) <= 0) {
			kill(child, SIGTERM);
			return cli_error("the detached host did not start "
			                 "within 60s");
		}
		n = read(fd, line + len, sizeof(line) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(line, '\n', len))
			break;
	}
	line[len] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (!strncmp(line, "ok ", 3)) {
		printf("%s\n", line + 3);
		return EXIT_OK;
	}
	if (!strncmp(line, "locked ", 7)) {
		fprintf(stderr, "amlops: error: %s\n", line + 7);
		return EXIT_LOCKED;
	}
	return cli_error("%s", *line
	                           ? line + (strncmp(line, "error ", 6) ? 0 : 6)
	                           : "the detached host exited at start");
}

int
cmd_host(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"port", required_argument, NULL, 'p'},
	    {"bind", required_argument, NULL, 'b'},
	    {"scoring-port", required_argument, NULL, 's'},
	    {"python", required_argument, NULL, 'P'},
	    {"detach", no_argument, NULL, 'D'},
	    {"faults", no_argument, NULL, 'F'},
	    {"retry-after", required_argument, NULL, 'r'},
	    {"op-delay-ms", required_argument, NULL, 'o'},
	    {"blob-endpoint", required_argument, NULL, 'E'},
	    {"blob-container", required_argument, NULL, 'C'},
	    {"blob-account", required_argument, NULL, 'A'},
	    {"blob-key", required_argument, NULL, 'K'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct amlops_host_opts o = {0};
	struct amlops_host *h = NULL;
	char *defdir = NULL, *logpath = NULL;
	const char *env;
	int ch, detach = 0, pfd[2] = {-1, -1}, fd, sig, rc = EXIT_ERROR;
	int nblob, error;
	sigset_t set;
	pid_t pid;

	o.retry_after = -1;
	o.bind = "127.0.0.1";
	env = getenv("AMLOPS_HOST_FAULTS");
	o.faults = env && !strcmp(env, "1");
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			o.state_dir = optarg;
			break;
		case 'p':
			if (parse_int(optarg, 0, 65535, &o.port) < 0)
				return cli_usage_error(host_usage,
				    "host: bad --port '%s' (expected 0 to "
				    "65535)",
				    optarg);
			break;
		case 's':
			if (parse_int(optarg, 0, 65535, &o.scoring_port) < 0)
				return cli_usage_error(host_usage,
				    "host: bad --scoring-port '%s' (expected "
				    "0 to 65535)",
				    optarg);
			break;
		case 'b':
			o.bind = optarg;
			break;
		case 'P':
			o.python = optarg;
			break;
		case 'D':
			detach = 1;
			break;
		case 'F':
			o.faults = 1;
			break;
		case 'r':
			if (parse_int(optarg, 0, 3600, &o.retry_after) < 0)
				return cli_usage_error(host_usage,
				    "host: bad --retry-after '%s' (expected "
				    "0 to 3600 seconds)",
				    optarg);
			break;
		case 'o':
			if (parse_int(optarg, 0, 600000, &o.op_delay_ms) < 0)
				return cli_usage_error(host_usage,
				    "host: bad --op-delay-ms '%s' (expected "
				    "0 to 600000)",
				    optarg);
			break;
		case 'E':
			o.blob_endpoint = optarg;
			break;
		case 'C':
			o.blob_container = optarg;
			break;
		case 'A':
			o.blob_account = optarg;
			break;
		case 'K':
			o.blob_key = optarg;
			break;
		case 'h':
			fputs(host_usage, stdout);
			return EXIT_OK;
		default:
			fputs(host_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(
		    host_usage, "host: unexpected argument '%s'", argv[optind]);
	nblob = !!o.blob_endpoint + !!o.blob_container + !!o.blob_account +
	        !!o.blob_key;
	if (nblob && nblob != 4)
		return cli_usage_error(host_usage,
		    "host: --blob-endpoint, --blob-container, --blob-account "
		    "and --blob-key go together");
	if (!o.state_dir && getenv("AMLOPS_HOST_DIR") &&
	    *getenv("AMLOPS_HOST_DIR"))
		o.state_dir = getenv("AMLOPS_HOST_DIR");
	if (!o.state_dir) {
		if (amlops_hostinfo_default_dir(&defdir) < 0)
			return cli_error("%s", amlops_err_last());
		o.state_dir = defdir;
	}

	if (detach) {
		if (amlops_mkdir_p(o.state_dir, 0700) < 0) {
			rc = cli_error("%s", amlops_err_last());
			goto done;
		}
		if (pipe(pfd) < 0) {
			rc = cli_error(
			    "cannot make a pipe: %s", strerror(errno));
			goto done;
		}
		fflush(NULL);
		if ((pid = fork()) < 0) {
			rc = cli_error("cannot fork: %s", strerror(errno));
			goto done;
		}
		if (pid > 0) {
			close(pfd[1]);
			pfd[1] = -1;
			rc = detach_wait(pfd[0], pid);
			goto done;
		}
		close(pfd[0]);
		pfd[0] = -1;
		setsid();
		logpath = amlops_xasprintf("%s/host.log", o.state_dir);
		fd = open(
		    logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		if ((fd = open("/dev/null", O_RDONLY)) >= 0) {
			dup2(fd, STDIN_FILENO);
			close(fd);
		}
		amlops_log_init("amlops", ctx->verbose, AMLOPS_LOG_TIMESTAMPS);
	}

	/* the HTTP threads inherit this mask; only sigwait() sees them */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if ((error = amlops_host_start(&h, &o)) < 0) {
		int locked = error == AMLOPS_ELOCKED;
		if (pfd[1] >= 0) {
			dprintf(pfd[1], "%s %s\n", locked ? "locked" : "error",
			    amlops_err_last());
			_exit(locked ? EXIT_LOCKED : EXIT_ERROR);
		}
		if (locked) {
			fprintf(
			    stderr, "amlops: error: %s\n", amlops_err_last());
			rc = EXIT_LOCKED;
		} else {
			rc = cli_error("%s", amlops_err_last());
		}
		goto done;
	}
	if (pfd[1] >= 0) {
		dprintf(pfd[1], "ok %s\n", h->url);
		close(pfd[1]);
		pfd[1] = -1;
	} else {
		printf("%s\n", h->url);
		fflush(stdout);
	}
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
	}
	log_info("host=stopping signal=%s", sig == SIGTERM ? "TERM" : "INT");
	amlops_host_free(h);
	h = NULL;
	rc = EXIT_OK;
done:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	free(defdir);
	free(logpath);
	return rc;
}
