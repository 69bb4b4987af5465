/*
 * One reconcile pass and one drift check, on the executor
 * (amlops/apply.h). Every event is one log line, key=value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "amlops/apply.h"
#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/plan.h"
#include "amlops/source.h"
#include "amlops/status.h"
#include "amlops/util.h"
#include "amlops/watch.h"

/* How far back the first-parent walk looks for the applied commit. */
#define MAX_SUPERSEDED 1000

const char *
amlops_watch_result_name(enum amlops_watch_result r)
{
	static const char *const names[] = {
	    "up_to_date", "no_changes", "succeeded", "failed", "interrupted"};

	return (size_t)r < AMLOPS_ARRAY_SIZE(names) ? names[r] : "unknown";
}

static void
log_diags(struct amlops_diags *d)
{
	amlops_diags_sort(d);
	for (size_t i = 0; i < d->n; i++) {
		char *line = amlops_diag_format(&d->v[i]);

		log_error("event=invalid problem=\"%s\"", line);
		free(line);
	}
}

static void
log_refusals(const struct amlops_plan *p)
{
	for (size_t i = 0; p && i < p->nrefusals; i++) {
		char *m = amlops_plan_msg_format(&p->refusals[i]);

		log_error("event=refused reason=\"%s\"", m);
		free(m);
	}
}

static void
on_progress(void *ctx, const struct amlops_apply_event *ev)
{
	const struct amlops_note_step *s = ev->step;

	(void)ctx;
	if (ev->kind == AMLOPS_APPLY_STEP_START)
		log_info("event=step_start endpoint=%s deployment=%s "
		         "step=%d/%zu action=%s aspect=%s",
		    s->endpoint, s->deployment ? s->deployment : "-", s->index,
		    ev->total, s->action, s->aspect);
	else if (ev->kind == AMLOPS_APPLY_STEP_DONE &&
	         s->status == AMLOPS_STEP_SUCCEEDED)
		log_info("event=step_done endpoint=%s deployment=%s "
		         "step=%d/%zu aspect=%s result=ok ms=%lld%s",
		    s->endpoint, s->deployment ? s->deployment : "-", s->index,
		    ev->total, s->aspect, (long long)ev->elapsed_ms,
		    ev->detail ? " detail=already-live" : "");
}

static void
fill_apply_opts(
    struct amlops_apply_opts *a, const struct amlops_watch_pass_opts *o)
{
	a->target = o->target ? o->target : "local";
	a->target_url = o->target_url;
	a->jobs = o->jobs ? o->jobs : 1;
	a->step_timeout_ms = o->step_timeout_ms;
	a->open_backend = o->open_backend;
	a->backend_ctx = o->backend_ctx;
	a->progress = on_progress;
	a->stop = o->stop;
}

/*
 * The note of a commit the pass skipped: result superseded, and which
 * commit superseded it. An existing note is left alone (0 returned, 1
 * when written).
 */
static int
write_superseded(struct amlops_source *src, const char *ref, const char *target,
    const char *commit, const char *head)
{
	struct amlops_note *n = NULL;
	cJSON *j = NULL;
	char *text = NULL, *old = NULL, *line = NULL;
	int error;

	error = amlops_source_note_get(&old, src, ref, commit);
	if (error == 0) {
		free(old);
		return 0;
	}
	if (error != AMLOPS_ENOTFOUND)
		return error;
	amlops_err_clear();
	n = amlops_note_new(commit, target);
	n->result = AMLOPS_NOTE_SUPERSEDED;
	n->finished = amlops_xstrdup(n->started);
	j = amlops_note_to_json(n);
	cJSON_AddStringToObject(j, "superseded_by", head);
	amlops_note_scrub(j);
	text = cJSON_Print(j);
	line = amlops_xasprintf("%s\n", text);
	if ((error = amlops_source_note_set(src, ref, commit, line)) == 0)
		error = 1;
	cJSON_free(text);
	free(line);
	cJSON_Delete(j);
	amlops_note_free(n);
	return error;
}

/* Notes on the commits strictly between `applied` and `head`. */
static int
supersede(size_t *count, struct amlops_source *src, const char *ref,
    const char *target, const char *applied, const char *head)
{
	char(*chain)[41] = NULL;
	char cur[41];
	size_t n = 0;
	int error = 0, found = 0;

	*count = 0;
	if (!applied[0])
		return 0;
	chain = amlops_xcalloc(MAX_SUPERSEDED, sizeof(*chain));
	memcpy(cur, head, sizeof(cur));
	while (n < MAX_SUPERSEDED) {
		error = amlops_source_parent(cur, src, cur);
		if (error == AMLOPS_ENOTFOUND) {
			amlops_err_clear();
			error = 0;
			break;
		}
		if (error < 0)
			goto done;
		if (!strcmp(cur, applied)) {
			found = 1;
			break;
		}
		memcpy(chain[n++], cur, sizeof(cur));
	}
	if (!found) {
		/* a rewritten branch: nothing in between to speak of */
		log_debug("%s: applied=%.12s is not a first-parent ancestor "
		          "of head=%.12s",
		    __func__, applied, head);
		goto done;
	}
	/* oldest first, as they were pushed */
	while (n-- > 0) {
		if ((error = write_superseded(
		         src, ref, target, chain[n], head)) < 0)
			goto done;
		if (error == 1) {
			log_info("event=superseded commit=%.12s by=%.12s",
			    chain[n], head);
			(*count)++;
		}
		error = 0;
	}
done:
	free(chain);
	return error;
}

static int
push(struct amlops_source *src, const char *notes_ref, const char *target,
    int applied)
{
	char *notes = amlops_xasprintf("%s:%s", notes_ref, notes_ref);
	char *ref = amlops_xasprintf("%s%s:%s%s", AMLOPS_APPLIED_PREFIX, target,
	    AMLOPS_APPLIED_PREFIX, target);
	const char *specs[2] = {notes, ref};
	int error;

	error = amlops_source_push(src, NULL, specs, applied ? 2 : 1);
	if (error < 0)
		amlops_err_prefix(error, "push");
	else
		log_info("event=pushed notes_ref=%s applied_ref=%s", notes_ref,
		    applied ? "yes" : "no");
	free(notes);
	free(ref);
	return error;
}

int
amlops_watch_reconcile(struct amlops_watch_pass *out, struct amlops_source *src,
    struct amlops_backend *b, const struct amlops_watch_pass_opts *o)
{
	struct amlops_apply_opts aopts = AMLOPS_APPLY_OPTS_INIT;
	struct amlops_apply *a = NULL;
	const char *target = o->target ? o->target : "local";
	const char *notes_ref = AMLOPS_NOTES_REF;
	char *msg = NULL;
	int64_t t0 = amlops_now_ms();
	int error, ran = 0;

	memset(out, 0, sizeof(*out));
	out->result = AMLOPS_WATCH_FAILED;
	if (o->fetch && (error = amlops_source_fetch(src)) < 0)
		goto done;
	if ((error = amlops_source_resolve(
	         out->head, src, o->branch ? o->branch : "HEAD")) < 0)
		goto done;
	error = amlops_source_applied_get(out->applied, src, target);
	if (error == AMLOPS_ENOTFOUND) {
		amlops_err_clear();
		out->applied[0] = '\0';
	} else if (error < 0) {
		goto done;
	}
	if (!strcmp(out->applied, out->head) ||
	    (o->done && !strcmp(o->done, out->head)) ||
	    (o->held && !strcmp(o->held, out->head))) {
		out->result = AMLOPS_WATCH_UP_TO_DATE;
		error = 0;
		goto done;
	}
	log_info("event=reconcile_start commit=%.12s applied=%.12s "
	         "wall_ms=%lld",
	    out->head, out->applied[0] ? out->applied : "none",
	    (long long)amlops_wall_ms());

	fill_apply_opts(&aopts, o);
	error = amlops_apply_prepare(&a, src, out->head, b, &aopts);
	if (error == AMLOPS_EINVALID && a && a->diags.n) {
		msg = amlops_xstrdup(amlops_err_last());
		log_diags(&a->diags);
		amlops_err_set(error, "%s", msg);
		goto done;
	}
	if (error == AMLOPS_EINVALID && a && a->plan) {
		msg = amlops_xstrdup(amlops_err_last());
		log_refusals(a->plan);
		amlops_err_set(error,
		    "nothing applied: the plan refuses %zu "
		    "endpoint%s: %s",
		    a->plan->nrefusals, a->plan->nrefusals == 1 ? "" : "s",
		    msg);
		goto done;
	}
	if (error < 0)
		goto done;
	if (a->cfg && a->cfg->notes_ref)
		notes_ref = a->cfg->notes_ref;
	if ((error = supersede(&out->superseded, src, notes_ref, target,
	         out->applied, out->head)) < 0)
		goto done;
	out->steps = a->plan->nsteps;
	log_info("event=apply_start commit=%.12s steps=%zu superseded=%zu "
	         "wall_ms=%lld",
	    out->head, out->steps, out->superseded,
	    (long long)amlops_wall_ms());
	error = amlops_apply_run(a, src, b, &aopts);
	ran = 1;
	if (a->note)
		for (size_t i = 0; i < a->note->nsteps; i++) {
			const struct amlops_note_step *s = &a->note->steps[i];

			if (s->status == AMLOPS_STEP_PENDING ||
			    s->status == AMLOPS_STEP_RUNNING)
				continue;
			amlops_watch_metrics_step(o->metrics, s->aspect,
			    amlops_note_step_status_name(s->status));
		}
	out->failed = a->failed;
	out->interrupted = a->interrupted;
	if (a->interrupted)
		out->result = AMLOPS_WATCH_INTERRUPTED;
	else if (error < 0)
		out->result = AMLOPS_WATCH_FAILED;
	else if (a->plan->nsteps == 0)
		out->result = AMLOPS_WATCH_NO_CHANGES;
	else
		out->result = AMLOPS_WATCH_SUCCEEDED;
	if (o->push && a->note) {
		int applied = error == 0;
		char *saved =
		    error < 0 ? amlops_xstrdup(amlops_err_last()) : NULL;
		int perr = push(src, notes_ref, target, applied);

		if (perr < 0 && error == 0) {
			error = perr;
			out->result = AMLOPS_WATCH_FAILED;
		} else if (saved) {
			if (perr < 0)
				log_warnx("event=push_failed error=\"%s\"",
				    amlops_err_last());
			amlops_err_set(error, "%s", saved);
		}
		free(saved);
	}
done:
	out->ms = amlops_now_ms() - t0;
	if (out->result != AMLOPS_WATCH_UP_TO_DATE) {
		int ok = out->result == AMLOPS_WATCH_SUCCEEDED ||
		         out->result == AMLOPS_WATCH_NO_CHANGES;

		if (error < 0 && !ok)
			log_error("event=reconcile_done commit=%.12s result=%s "
			          "steps=%zu failed=%zu interrupted=%zu "
			          "ms=%lld error=\"%s\"",
			    out->head[0] ? out->head : "none",
			    amlops_watch_result_name(out->result), out->steps,
			    out->failed, out->interrupted, (long long)out->ms,
			    amlops_err_last());
		else
			log_info("event=reconcile_done commit=%.12s result=%s "
			         "steps=%zu ms=%lld",
			    out->head, amlops_watch_result_name(out->result),
			    out->steps, (long long)out->ms);
		amlops_watch_metrics_reconcile(o->metrics,
		    amlops_watch_result_name(out->result), out->ms,
		    ok ? out->head : NULL);
	}
	amlops_apply_free(a);
	free(msg);
	/* a pass that started reports its outcome in out->result */
	if (ran || out->result == AMLOPS_WATCH_UP_TO_DATE)
		return 0;
	return error < 0 ? error : AMLOPS_ERROR;
}

int
amlops_watch_drift(size_t *drifted, struct amlops_source *src,
    struct amlops_backend *b, const struct amlops_watch_pass_opts *o, int heal)
{
	struct amlops_apply_opts aopts = AMLOPS_APPLY_OPTS_INIT;
	struct amlops_apply *a = NULL;
	const char *target = o->target ? o->target : "local";
	const char *result = "failed";
	char applied[41];
	int error;

	*drifted = 0;
	/* the loop's own record wins over a ref a fetch may have replaced */
	if (o->done) {
		snprintf(applied, sizeof(applied), "%s", o->done);
		error = 0;
	} else {
		error = amlops_source_applied_get(applied, src, target);
	}
	if (error == AMLOPS_ENOTFOUND) {
		amlops_err_clear();
		log_debug("%s: nothing applied to '%s' yet", __func__, target);
		return 0;
	}
	if (error < 0)
		goto done;
	fill_apply_opts(&aopts, o);
	aopts.flags |= AMLOPS_APPLY_ALL;
	error = amlops_apply_prepare(&a, src, applied, b, &aopts);
	if (error == AMLOPS_EINVALID && a && a->plan)
		log_refusals(a->plan);
	if (error < 0)
		goto done;
	for (size_t i = 0; i < a->plan->nsteps;) {
		const char *ep = a->plan->steps[i].endpoint;
		struct amlops_buf aspects = AMLOPS_BUF_INIT;
		size_t k = i;

		for (; k < a->plan->nsteps &&
		       !strcmp(a->plan->steps[k].endpoint, ep);
		     k++)
			amlops_buf_printf(&aspects, "%s%s", k > i ? "," : "",
			    amlops_plan_aspect_name(a->plan->steps[k].aspect));
		log_warnx("event=drift endpoint=%s steps=%zu aspects=%s "
		          "commit=%.12s action=%s",
		    ep, k - i, amlops_buf_cstr(&aspects), applied,
		    heal ? "heal" : "report");
		amlops_buf_release(&aspects);
		(*drifted)++;
		i = k;
	}
	result = *drifted ? "drift" : "ok";
	if (*drifted == 0)
		log_debug("%s: no drift commit=%.12s", __func__, applied);
	if (heal && *drifted) {
		error = amlops_apply_run(a, src, b, &aopts);
		for (size_t i = 0; a->note && i < a->note->nsteps; i++) {
			const struct amlops_note_step *s = &a->note->steps[i];

			if (s->status != AMLOPS_STEP_PENDING &&
			    s->status != AMLOPS_STEP_RUNNING)
				amlops_watch_metrics_step(o->metrics, s->aspect,
				    amlops_note_step_status_name(s->status));
		}
		if (error < 0)
			goto done;
		result = "healed";
		log_info("event=healed endpoints=%zu steps=%zu commit=%.12s",
		    *drifted, a->plan->nsteps, applied);
	}
done:
	if (error < 0) {
		result = "failed";
		log_error("event=drift_check result=failed error=\"%s\"",
		    amlops_err_last());
	}
	amlops_watch_metrics_drift(o->metrics, *drifted, result);
	amlops_apply_free(a);
	return error;
}
