/*
 * amlops plan: the steps that would take the target from the base
 * commit's state to the head commit's. Offline by default: the desired
 * state at the base stands for the live state (the pull-request dry
 * run), so it needs no credentials.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amlops/apply.h"
#include "amlops/backend.h"
#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/plan.h"
#include "amlops/source.h"
#include "amlops/util.h"
#include "cli/cli.h"

static const char plan_usage[] =
    "usage: amlops plan [--base REV] [--head REV] [--live]\n"
    "                   [--format text|json|markdown] [--detailed-exitcode]\n"
    "                   [--target local|azure] [--color]\n"
    "\n"
    "  --base REV           the state to plan from (default: the commit in\n"
    "                       refs/amlops/applied/TARGET, else head's "
    "parent)\n"
    "  --head REV           the state to plan to (default: HEAD)\n"
    "  --live               plan against the target's live state\n"
    "  --format F           text (default), json or markdown\n"
    "  --detailed-exitcode  exit 0 when there are no changes, 2 when there\n"
    "                       are, 1 on error\n";

enum plan_format {
	FORMAT_TEXT,
	FORMAT_JSON,
	FORMAT_MARKDOWN,
};

/* Prints the diagnostics as FILE:LINE:COL: msg lines, in reading order. */
static void
print_diags(struct amlops_diags *diags)
{
	size_t i;

	amlops_diags_sort(diags);
	for (i = 0; i < diags->n; i++) {
		char *line = amlops_diag_format(&diags->v[i]);

		fprintf(stderr, "%s\n", line);
		free(line);
	}
}

/* Resolves the base: flag, applied ref, parent, or none (root). */
static int
resolve_base(char out[41], int *have, struct amlops_source *src,
    const char *flag, const char *target, const char *head)
{
	int error;

	*have = 0;
	if (flag) {
		if ((error = amlops_source_resolve(out, src, flag)) < 0)
			return error;
		*have = 1;
		return 0;
	}
	error = amlops_source_applied_get(out, src, target);
	if (error == 0) {
		*have = 1;
		return 0;
	}
	if (error != AMLOPS_ENOTFOUND)
		return error;
	error = amlops_source_parent(out, src, head);
	if (error == 0) {
		*have = 1;
		return 0;
	}
	amlops_err_clear();
	return error == AMLOPS_ENOTFOUND ? 0 : error;
}

static int
sorted_by_name(const struct amlops_spec *s)
{
	size_t i;

	for (i = 1; s && i < s->nendpoints; i++)
		if (strcmp(s->endpoints[i - 1]->name, s->endpoints[i]->name) >
		    0)
			return 0;
	return 1;
}

/* Moves `p`'s steps and messages to the end of `all`, frees `p`. */
static void
plan_append(struct amlops_plan *all, size_t cap[3], struct amlops_plan *p)
{
#define APPEND(v, n, c)                                                        \
	do {                                                                   \
		if (all->n + p->n > (c)) {                                     \
			while (all->n + p->n > (c))                            \
				(c) = (c) ? 2 * (c) : 64;                      \
			all->v =                                               \
			    amlops_xrealloc(all->v, (c) * sizeof(*all->v));    \
		}                                                              \
		if (p->n)                                                      \
			memcpy(all->v + all->n, p->v, p->n * sizeof(*p->v));   \
		all->n += p->n;                                                \
		p->n = 0;                                                      \
	} while (0)
	APPEND(steps, nsteps, cap[0]);
	APPEND(refusals, nrefusals, cap[1]);
	APPEND(notes, nnotes, cap[2]);
#undef APPEND
	amlops_plan_free(p);
}

/*
 * Plans the touched endpoints one at a time, each against a one-endpoint
 * slice of both sides, so that the cost follows the size of the change
 * whatever the planner does with many endpoints. Both specs are sorted
 * by name (spec.h), as are `names`; the steps come out in the same order
 * a single amlops_plan_build() would give.
 */
static int
plan_touched(struct amlops_plan **out, const struct amlops_spec *head,
    const struct amlops_spec *base, char *const *names, size_t nnames,
    const struct amlops_plan_opts *opts)
{
	struct amlops_plan *all = amlops_xcalloc(1, sizeof(*all)), *p;
	size_t cap[3] = {0, 0, 0}, i, hi = 0, bi = 0;
	int error = 0, e;

	for (i = 0; i < nnames; i++) {
		struct amlops_spec hs = {0}, bs = {0};

		while (hi < head->nendpoints &&
		       strcmp(head->endpoints[hi]->name, names[i]) < 0)
			hi++;
		hs.endpoints = head->endpoints + hi;
		while (hi < head->nendpoints &&
		       !strcmp(head->endpoints[hi]->name, names[i]))
			hi++, hs.nendpoints++;
		while (base && bi < base->nendpoints &&
		       strcmp(base->endpoints[bi]->name, names[i]) < 0)
			bi++;
		bs.endpoints = base ? base->endpoints + bi : NULL;
		while (base && bi < base->nendpoints &&
		       !strcmp(base->endpoints[bi]->name, names[i]))
			bi++, bs.nendpoints++;
		p = NULL;
		e = amlops_plan_build(&p, &hs, &bs, opts);
		if (e < 0 && e != AMLOPS_EINVALID) {
			amlops_plan_free(p);
			amlops_plan_free(all);
			return e;
		}
		if (e == AMLOPS_EINVALID && error == 0)
			error = e;
		plan_append(all, cap, p);
	}
	*out = all;
	return error;
}

/*
 * From this many touched endpoints up (a full plan) the planning is
 * split in two at an endpoint boundary and the second half planned on
 * another thread; the halves are appended in order, so the steps are
 * those of one plan_touched() call.
 */
#define PLAN_PARALLEL_MIN 2048

struct plan_half {
	const struct amlops_spec *head, *base;
	char *const *names;
	size_t n;
	const struct amlops_plan_opts *opts;
	struct amlops_plan *plan;
	int error;
	char *msg; /* the error's message: it is thread-local */
};

static void *
plan_half_run(void *arg)
{
	struct plan_half *h = arg;

	h->error =
	    plan_touched(&h->plan, h->head, h->base, h->names, h->n, h->opts);
	if (h->error < 0 && h->error != AMLOPS_EINVALID)
		h->msg = amlops_xstrdup(amlops_err_last());
	return NULL;
}

static int
plan_touched_parallel(struct amlops_plan **out, const struct amlops_spec *head,
    const struct amlops_spec *base, char *const *names, size_t nnames,
    const struct amlops_plan_opts *opts)
{
	struct plan_half h = {head, base, names + nnames / 2,
	    nnames - nnames / 2, opts, NULL, 0, NULL};
	size_t cap[3];
	pthread_t th;
	int error;

	*out = NULL;
	if (nnames < PLAN_PARALLEL_MIN ||
	    pthread_create(&th, NULL, plan_half_run, &h) != 0)
		return plan_touched(out, head, base, names, nnames, opts);
	error = plan_touched(out, head, base, names, nnames / 2, opts);
	pthread_join(th, NULL);
	if (error < 0 && error != AMLOPS_EINVALID) {
		/* the first half's failure, as a single pass would stop at */
		amlops_plan_free(h.plan);
		free(h.msg);
		return error;
	}
	if (h.error < 0 && h.error != AMLOPS_EINVALID) {
		amlops_plan_free(*out);
		*out = NULL;
		error = amlops_err_set(h.error, "%s", h.msg);
		free(h.msg);
		return error;
	}
	cap[0] = (*out)->nsteps;
	cap[1] = (*out)->nrefusals;
	cap[2] = (*out)->nnotes;
	plan_append(*out, cap, h.plan);
	return error < 0 ? error : h.error;
}

/*
 * Releases the loaded pair on another thread while the plan is rendered
 * and written: at 10,000 endpoints freeing the two specs takes as long
 * as rendering. The plan owns copies of everything it shows (plan.h),
 * so the renderers never read the pair.
 */
static void *
pair_release_run(void *arg)
{
	amlops_source_pair_release(arg);
	return NULL;
}

/* The target's backend: `amlops host` (local) or Azure. */
static int
open_backend(struct amlops_backend **out, const char *target,
    const struct amlops_source_config *cfg)
{
	struct amlops_azure_cfg ac;

	if (strcmp(target, "azure"))
		return amlops_local_new(out, NULL, NULL);
	memset(&ac, 0, sizeof(ac));
	ac.subscription_id = cfg->subscription_id;
	ac.resource_group = cfg->resource_group;
	ac.workspace = cfg->workspace;
	ac.arm_url = cfg->arm_url;
	return amlops_azure_new(out, &ac);
}

int
cmd_plan(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
	    {"base", required_argument, NULL, 'b'},
	    {"head", required_argument, NULL, 'H'},
	    {"live", no_argument, NULL, 'l'},
	    {"format", required_argument, NULL, 'f'},
	    {"detailed-exitcode", no_argument, NULL, 'd'},
	    {"target", required_argument, NULL, 't'},
	    {"color", no_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct amlops_source *src = NULL;
	struct amlops_source_config *cfg = NULL;
	struct amlops_source_pair pair = AMLOPS_SOURCE_PAIR_INIT;
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	struct amlops_plan *plan = NULL;
	struct amlops_plan_opts popts = AMLOPS_PLAN_OPTS_INIT;
	struct amlops_backend *backend = NULL;
	struct amlops_apply *prepared = NULL;
	struct amlops_apply_opts aopts = AMLOPS_APPLY_OPTS_INIT;
	struct amlops_buf out = AMLOPS_BUF_INIT;
	enum plan_format format = FORMAT_TEXT;
	const char *base_rev = NULL, *head_rev = "HEAD", *target = ctx->target;
	char head[41], base[41];
	int ch, live = 0, detailed = 0, color = 0, have_base = 0,
	        rc = EXIT_ERROR;
	int error, perr, releasing = 0;
	pthread_t releaser;
	int64_t t0 = amlops_now_ms();

	while ((ch = getopt_long(argc, argv, "b:H:f:t:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'b':
			base_rev = optarg;
			break;
		case 'H':
			head_rev = optarg;
			break;
		case 'l':
			live = 1;
			break;
		case 'f':
			if (!strcmp(optarg, "text"))
				format = FORMAT_TEXT;
			else if (!strcmp(optarg, "json"))
				format = FORMAT_JSON;
			else if (!strcmp(optarg, "markdown"))
				format = FORMAT_MARKDOWN;
			else
				return cli_usage_error(plan_usage,
				    "plan: unknown format '%s' (expected "
				    "'text', 'json' or 'markdown')",
				    optarg);
			break;
		case 'd':
			detailed = 1;
			break;
		case 't':
			if (strcmp(optarg, "local") && strcmp(optarg, "azure"))
				return cli_usage_error(plan_usage,
				    "plan: unknown target '%s' (expected "
				    "'local' or 'azure')",
				    optarg);
			target = optarg;
			break;
		case 'c':
			color = 1;
			break;
		case 'h':
			fputs(plan_usage, stdout);
			return EXIT_OK;
		default:
			fputs(plan_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(
		    plan_usage, "plan: unexpected argument '%s'", argv[optind]);
	if (live && base_rev)
		return cli_usage_error(plan_usage,
		    "plan: --live plans against the target; it takes no "
		    "--base");

	if ((error = amlops_source_open(&src, ctx->repo, NULL)) < 0 ||
	    (error = amlops_source_resolve(head, src, head_rev)) < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	error = amlops_source_config_load(&cfg, &diags, src, head);
	if (error == AMLOPS_EINVALID && diags.n) {
		print_diags(&diags);
		fprintf(stderr, "amlops: error: %zu problem%s in %.12s\n",
		    diags.n, diags.n == 1 ? "" : "s", head);
		goto done;
	}
	if (error < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	if (live) {
		if ((error = open_backend(&backend, target, cfg)) < 0) {
			rc = cli_error(
			    "target '%s': %s", target, amlops_err_last());
			goto done;
		}
		/*
		 * The same preparation as apply's: the desired state as apply
		 * sends it (settings normalised, ownership tags), the whole
		 * target, and steps that repair what it reports Failed.
		 */
		aopts.flags = AMLOPS_APPLY_ALL | AMLOPS_APPLY_NO_WAIT;
		aopts.target = target;
		aopts.repository = amlops_source_gitdir(src);
		error =
		    amlops_apply_prepare(&prepared, src, head, backend, &aopts);
		if (error == AMLOPS_EINVALID && prepared && prepared->diags.n) {
			print_diags(&prepared->diags);
			fprintf(stderr,
			    "amlops: error: %zu problem%s in %.12s\n",
			    prepared->diags.n,
			    prepared->diags.n == 1 ? "" : "s", head);
			goto done;
		}
		if (error < 0 && (!prepared || !prepared->plan)) {
			rc = cli_error("%s", amlops_err_last());
			goto done;
		}
		perr = error;
		plan = prepared->plan;
		prepared->plan = NULL;
		goto render;
	}
	if ((error = resolve_base(
	         base, &have_base, src, base_rev, target, head)) < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	error = amlops_source_load_pair(
	    &pair, &diags, src, have_base ? base : NULL, head, cfg);
	if (error == AMLOPS_EINVALID) {
		print_diags(&diags);
		fprintf(stderr, "amlops: error: %zu problem%s in %.12s\n",
		    diags.n, diags.n == 1 ? "" : "s", head);
		goto done;
	}
	if (error < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	log_debug("%s: base=%s head=%s changed=%zu loaded=%zu narrowed=%d "
	          "touched=%zu ms=%lld",
	    __func__, have_base ? base : "-", head, pair.nchanged, pair.nloaded,
	    pair.narrowed, pair.ntouched, (long long)(amlops_now_ms() - t0));

	popts.flags = AMLOPS_PLAN_ALL_OWNED;
	if (sorted_by_name(pair.head) && sorted_by_name(pair.base)) {
		perr = plan_touched_parallel(&plan, pair.head, pair.base,
		    pair.touched, pair.ntouched, &popts);
	} else {
		popts.scope = (const char *const *)pair.touched;
		popts.nscope = pair.ntouched;
		perr =
		    pair.ntouched
		        ? amlops_plan_build(&plan, pair.head, pair.base, &popts)
		        : amlops_plan_build(&plan, NULL, NULL, &popts);
	}
	if (perr < 0 && perr != AMLOPS_EINVALID) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}

render:
	if (pair.nloaded >= PLAN_PARALLEL_MIN &&
	    pthread_create(&releaser, NULL, pair_release_run, &pair) == 0)
		releasing = 1;
	switch (format) {
	case FORMAT_TEXT:
		error = amlops_plan_render_text(&out, plan,
		    color || (isatty(STDOUT_FILENO) && getenv("TERM") &&
		                 strcmp(getenv("TERM"), "dumb") &&
		                 !getenv("NO_COLOR"))
		        ? AMLOPS_PLAN_COLOR
		        : 0);
		break;
	case FORMAT_JSON:
		error = amlops_plan_render_json(
		    &out, plan, have_base ? base : NULL, head);
		break;
	case FORMAT_MARKDOWN:
		error = amlops_plan_render_markdown(
		    &out, plan, have_base ? base : NULL, head);
		break;
	}
	if (error < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	fwrite(amlops_buf_cstr(&out), 1, out.len, stdout);
	if (perr == AMLOPS_EINVALID) {
		/* refusals: the plan is shown, but it cannot be applied */
		size_t i;

		for (i = 0; i < plan->nrefusals; i++)
			fprintf(stderr, "amlops: error: endpoint '%s': %s\n",
			    plan->refusals[i].endpoint, plan->refusals[i].msg);
		rc = EXIT_ERROR;
		goto done;
	}
	rc = detailed && plan->nsteps > 0 ? EXIT_CHANGES : EXIT_OK;
done:
	amlops_buf_release(&out);
	amlops_plan_free(plan);
	if (releasing)
		pthread_join(releaser, NULL);
	amlops_apply_free(prepared);
	amlops_backend_free(backend);
	amlops_source_pair_release(&pair);
	amlops_diags_release(&diags);
	amlops_source_config_free(cfg);
	amlops_source_free(src);
	return rc;
}
