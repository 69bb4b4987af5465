/*
 * amlops apply: applies one commit to the target. Prints the plan, asks
 * on a terminal (unless --yes), runs the executor (amlops/apply.h) with a
 * progress line per step, and ends with a summary; the exit code is 1
 * when any step failed.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amlops/apply.h"
#include "amlops/backend.h"
#include "amlops/err.h"
#include "amlops/hostinfo.h"
#include "amlops/log.h"
#include "amlops/plan.h"
#include "amlops/source.h"
#include "amlops/status.h"
#include "amlops/util.h"
#include "cli/cli.h"
#include "cli/reconcile.h"
#include "cli/target.h"

static const char apply_usage[] =
    "usage: amlops apply [--rev REV] [--target local|azure] [--yes]\n"
    "                    [--jobs N] [--all] [--timeout DURATION] [--push]\n"
    "                    [--host-dir DIR]\n"
    "\n"
    "  --rev REV           the commit to apply (default: HEAD)\n"
    "  --yes, -y           do not ask for confirmation on a terminal\n"
    "  --jobs N            apply up to N endpoints at once (default 1)\n"
    "  --all               plan every endpoint of the repository and the\n"
    "                      target, not only those the commit touched\n"
    "  --timeout DURATION  per step, e.g. 90s, 20m, 1h (default 30m)\n"
    "  --push              push the notes ref and refs/amlops/applied/TARGET\n"
    "                      to origin afterwards\n"
    "  --host-dir DIR      the local host's state dir (default: "
    "$AMLOPS_HOST_DIR,\n"
    "                      else the default state dir); a host is started\n"
    "                      there in the background when none runs\n"
    "\n"
    "On SIGINT or SIGTERM the step in flight finishes, no other starts,\n"
    "and the rest are recorded as not started; apply again to finish.\n";

struct backend_ctx {
	const char *target;
	const char *host_dir;
	const struct amlops_source_config *cfg;
};

static int
open_backend(void *arg, struct amlops_backend **out)
{
	struct backend_ctx *c = arg;
	struct amlops_azure_cfg ac;

	if (strcmp(c->target, "azure"))
		return amlops_local_new(out, c->host_dir, NULL);
	memset(&ac, 0, sizeof(ac));
	if (c->cfg) {
		ac.subscription_id = c->cfg->subscription_id;
		ac.resource_group = c->cfg->resource_group;
		ac.workspace = c->cfg->workspace;
		ac.arm_url = c->cfg->arm_url;
	}
	return amlops_azure_new(out, &ac);
}

/* Set by SIGINT/SIGTERM while steps run: the step in flight ends first. */
static volatile sig_atomic_t stop_requested;

static void
on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct progress {
	int tty;
	size_t width; /* of the last line drawn on the terminal */
};

static void
step_label(char *out, size_t len, const struct amlops_note_step *s)
{
	snprintf(out, len, "%s%s%s: %s %s", s->endpoint,
	    s->deployment ? "/" : "", s->deployment ? s->deployment : "",
	    s->action, s->aspect);
}

static void
on_progress(void *arg, const struct amlops_apply_event *ev)
{
	struct progress *p = arg;
	const struct amlops_note_step *s = ev->step;
	char label[256];
	double sec = (double)ev->elapsed_ms / 1000.0;

	step_label(label, sizeof(label), s);
	if (p->tty) {
		char line[512];
		int n;

		switch (ev->kind) {
		case AMLOPS_APPLY_STEP_START:
		case AMLOPS_APPLY_STEP_WAIT:
			n = snprintf(line, sizeof(line),
			    "[%d/%zu] %s ... %.0fs%s%s", s->index, ev->total,
			    label, sec, ev->detail ? " (" : "",
			    ev->detail ? ev->detail : "");
			if (ev->detail && n > 0 && (size_t)n < sizeof(line) - 1)
				strcat(line, ")");
			fprintf(stdout, "\r%-*s", (int)p->width, line);
			p->width = strlen(line);
			fflush(stdout);
			return;
		case AMLOPS_APPLY_STEP_DONE:
			break;
		}
		fprintf(stdout, "\r%-*s\r", (int)p->width, "");
		p->width = 0;
	} else if (ev->kind != AMLOPS_APPLY_STEP_DONE) {
		/* a line as it happens, for logs read while apply runs */
		if (ev->kind == AMLOPS_APPLY_STEP_START) {
			printf("[%d/%zu] %s: started\n", s->index, ev->total,
			    label);
			fflush(stdout);
		}
		return;
	}
	if (s->status == AMLOPS_STEP_SUCCEEDED)
		printf("[%d/%zu] %s: %s (%.1fs)\n", s->index, ev->total, label,
		    ev->detail ? ev->detail : "done", sec);
	else
		printf("[%d/%zu] %s: FAILED (%.1fs): %s: %s\n", s->index,
		    ev->total, label, sec, s->error_code ? s->error_code : "",
		    s->error_message ? s->error_message : "");
	fflush(stdout);
}

static void
print_diags(struct amlops_diags *diags)
{
	amlops_diags_sort(diags);
	for (size_t i = 0; i < diags->n; i++) {
		char *line = amlops_diag_format(&diags->v[i]);

		fprintf(stderr, "%s\n", line);
		free(line);
	}
}

/* y/yes on the terminal: 1; anything else: 0. */
static int
confirm(size_t nsteps, const char *target)
{
	char answer[16];
	size_t i;

	printf("\nApply %zu step%s to target '%s'? [y/N] ", nsteps,
	    nsteps == 1 ? "" : "s", target);
	fflush(stdout);
	if (!fgets(answer, sizeof(answer), stdin))
		return 0;
	for (i = 0; answer[i]; i++)
		answer[i] = (char)tolower((unsigned char)answer[i]);
	answer[strcspn(answer, "\r\n")] = '\0';
	return !strcmp(answer, "y") || !strcmp(answer, "yes");
}

static void
summary(const struct amlops_apply *a)
{
	const struct amlops_note *n = a->note;
	size_t i;
	int show_rid;

	if (n == NULL)
		return;
	printf("\n%s: %zu step%s succeeded",
	    a->failed        ? "Apply failed"
	    : a->interrupted ? "Apply interrupted"
	                     : "Apply complete",
	    a->succeeded, a->succeeded == 1 ? "" : "s");
	if (a->already_live)
		printf(" (%zu already live)", a->already_live);
	if (a->failed)
		printf(", %zu failed", a->failed);
	if (a->skipped)
		printf(", %zu skipped", a->skipped);
	if (a->interrupted)
		printf(", %zu not started (interrupted)", a->interrupted);
	printf(" in %.1fs.\n", (double)a->run_ms / 1000.0);
	for (i = 0; i < n->nsteps; i++) {
		const struct amlops_note_step *s = &n->steps[i];
		char label[256];

		if (s->status != AMLOPS_STEP_FAILED)
			continue;
		step_label(label, sizeof(label), s);
		/* the request id, unless the message already says it */
		show_rid = s->request_id &&
		           (!s->error_message ||
		               !strstr(s->error_message, s->request_id));
		printf("  failed: step %d %s: %s: %s", s->index, label,
		    s->error_code ? s->error_code : "error",
		    s->error_message ? s->error_message : "");
		if (show_rid)
			printf(" (request id %s)", s->request_id);
		printf("\n");
	}
	for (i = 0; i < n->nendpoints; i++) {
		const struct amlops_note_endpoint *e = &n->endpoints[i];
		char *t = cJSON_PrintUnformatted(e->traffic);

		printf("  endpoint %s: %s, traffic %s%s%s\n", e->name,
		    e->provisioning_state ? e->provisioning_state : "unknown",
		    t ? t : "{}", e->scoring_uri ? ", " : "",
		    e->scoring_uri ? e->scoring_uri : "");
		cJSON_free(t);
	}
}

int
cmd_apply(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
	    {"rev", required_argument, NULL, 'r'},
	    {"target", required_argument, NULL, 't'},
	    {"yes", no_argument, NULL, 'y'},
	    {"jobs", required_argument, NULL, 'j'},
	    {"all", no_argument, NULL, 'a'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"push", no_argument, NULL, 'p'},
	    {"host-dir", required_argument, NULL, 'D'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct amlops_apply_opts aopts = AMLOPS_APPLY_OPTS_INIT;
	struct amlops_source *src = NULL;
	struct amlops_source_config *cfg = NULL;
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	struct amlops_backend *backend = NULL;
	struct amlops_apply *a = NULL;
	struct amlops_hostinfo *info = NULL;
	struct amlops_buf out = AMLOPS_BUF_INIT;
	struct backend_ctx bctx;
	struct progress prog = {0, 0};
	const char *rev = "HEAD", *target = ctx->target, *host_dir = NULL;
	char commit[41], *defdir = NULL, *applied_ref = NULL;
	int ch, yes = 0, push = 0, rc = EXIT_ERROR, error;
	long jobs = 1;
	char *end;

	while ((ch = getopt_long(argc, argv, "r:t:yj:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			rev = optarg;
			break;
		case 't':
			if (strcmp(optarg, "local") && strcmp(optarg, "azure"))
				return cli_usage_error(apply_usage,
				    "apply: unknown target '%s' (expected "
				    "'local' or 'azure')",
				    optarg);
			target = optarg;
			break;
		case 'y':
			yes = 1;
			break;
		case 'j':
			errno = 0;
			jobs = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || jobs < 1 ||
			    jobs > 64)
				return cli_usage_error(apply_usage,
				    "apply: --jobs '%s' is not a number from 1 "
				    "to 64",
				    optarg);
			break;
		case 'a':
			aopts.flags |= AMLOPS_APPLY_ALL;
			break;
		case 'T':
			if (cli_loop_duration(optarg, &aopts.step_timeout_ms) <
			    0)
				return cli_usage_error(apply_usage,
				    "apply: --timeout '%s' is not a duration "
				    "(e.g. 90s, 20m, 1h)",
				    optarg);
			break;
		case 'p':
			push = 1;
			break;
		case 'D':
			host_dir = optarg;
			break;
		case 'h':
			fputs(apply_usage, stdout);
			return EXIT_OK;
		default:
			fputs(apply_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(apply_usage,
		    "apply: unexpected argument '%s'", argv[optind]);

	if ((error = amlops_source_open(&src, ctx->repo, NULL)) < 0 ||
	    (error = amlops_source_resolve(commit, src, rev)) < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	error = amlops_source_config_load(&cfg, &diags, src, commit);
	if (error == AMLOPS_EINVALID && diags.n) {
		print_diags(&diags);
		goto done;
	}
	if (error < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}

	bctx.target = target;
	bctx.host_dir = host_dir;
	bctx.cfg = cfg;
	if (!strcmp(target, "local")) {
		/* a host is started in the background when none runs */
		if ((error = cli_target_ensure_local_host(&defdir, host_dir)) <
		    0) {
			rc = cli_error("%s", amlops_err_last());
			goto done;
		}
		if (error == 1)
			fprintf(stderr,
			    "amlops: started a local host in the background; "
			    "its state is in %s and its log in %s/host.log\n",
			    defdir, defdir);
		host_dir = bctx.host_dir = defdir;
	}
	error = open_backend(&bctx, &backend);
	if (error < 0) {
		rc = cli_error("target '%s': %s", target, amlops_err_last());
		goto done;
	}
	if (!strcmp(target, "local") &&
	    amlops_hostinfo_read(&info, host_dir) == 0)
		aopts.target_url = info->url;
	amlops_err_clear();

	aopts.target = target;
	aopts.jobs = (unsigned)jobs;
	aopts.open_backend = open_backend;
	aopts.backend_ctx = &bctx;
	aopts.repository = amlops_source_gitdir(src);
	error = amlops_apply_prepare(&a, src, commit, backend, &aopts);
	if (error == AMLOPS_EINVALID && a && a->diags.n) {
		print_diags(&a->diags);
		fprintf(stderr, "amlops: error: %zu problem%s in %.12s\n",
		    a->diags.n, a->diags.n == 1 ? "" : "s", commit);
		goto done;
	}
	if (error < 0 && (!a || !a->plan)) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	if (amlops_plan_render_text(&out, a->plan, 0) == 0)
		fwrite(amlops_buf_cstr(&out), 1, out.len, stdout);
	if (error == AMLOPS_EINVALID) {
		for (size_t i = 0; i < a->plan->nrefusals; i++) {
			char *m = amlops_plan_msg_format(&a->plan->refusals[i]);

			fprintf(stderr, "amlops: error: %s\n", m);
			free(m);
		}
		fprintf(stderr,
		    "amlops: error: nothing applied: the plan "
		    "refuses %zu endpoint%s\n",
		    a->plan->nrefusals, a->plan->nrefusals == 1 ? "" : "s");
		goto done;
	}
	if (a->plan->nsteps > 0 && !yes && isatty(STDIN_FILENO) &&
	    !confirm(a->plan->nsteps, target)) {
		printf("Apply cancelled.\n");
		rc = EXIT_ERROR;
		goto done;
	}
	if (a->plan->nsteps > 0)
		printf("\n");
	fflush(stdout);
	prog.tty = isatty(STDOUT_FILENO);
	aopts.progress = on_progress;
	aopts.progress_ctx = &prog;
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_stop;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		aopts.stop = &stop_requested;
	}
	error = amlops_apply_run(a, src, backend, &aopts);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	/* no summary when nothing could start (e.g. the note is locked) */
	if (a->plan->nsteps > 0 &&
	    a->succeeded + a->failed + a->skipped + a->interrupted > 0)
		summary(a);
	if (error < 0) {
		rc = cli_error("%s", amlops_err_last());
		if (!a->failed)
			goto done;
	} else {
		rc = EXIT_OK;
	}
	log_debug("%s: steps=%zu run_ms=%lld service_ms=%lld", __func__,
	    a->plan->nsteps, (long long)a->run_ms, (long long)a->service_ms);
	if (push) {
		const char *ref = a->cfg && a->cfg->notes_ref
		                      ? a->cfg->notes_ref
		                      : AMLOPS_NOTES_REF;
		char *notes = amlops_xasprintf("%s:%s", ref, ref);
		const char *specs[2];
		size_t n = 1;

		specs[0] = notes;
		if (a->failed == 0) {
			applied_ref =
			    amlops_xasprintf("%s%s:%s%s", AMLOPS_APPLIED_PREFIX,
			        target, AMLOPS_APPLIED_PREFIX, target);
			specs[n++] = applied_ref;
		}
		if (amlops_source_push(src, NULL, specs, n) < 0) {
			rc = cli_error("push: %s", amlops_err_last());
		} else {
			printf("Pushed %s%s to origin.\n", ref,
			    n > 1 ? " and the applied ref" : "");
		}
		free(notes);
	}
done:
	amlops_buf_release(&out);
	amlops_apply_free(a);
	amlops_hostinfo_free(info);
	amlops_backend_free(backend);
	amlops_diags_release(&diags);
	amlops_source_config_free(cfg);
	amlops_source_free(src);
	free(defdir);
	free(applied_ref);
	return rc;
}
