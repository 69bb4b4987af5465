/*
 * The watch loop: waits for a ref change (inotify) or the next tick
 * (polling), runs a reconcile pass, retries a failed head with
 * exponential backoff, checks drift now and then, and reloads on SIGHUP.
 * Every pass, drift check and reload runs in a child (child.c) that
 * opens the repository and the target itself, so this process never
 * starts libgit2, libcurl or OpenSSL and idles small.
 * Signals are blocked outside the waits and the passes (opts->waitmask
 * and opts->runmask say what to unblock), so that a SIGTERM that comes
 * between two checks of the flag still ends the wait at once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/rest.h"
#include "amlops/source.h"
#include "amlops/spec.h"
#include "amlops/util.h"
#include "amlops/watch.h"

/* `ms` give or take 10%. */
static int64_t
jitter(int64_t ms)
{
	uint32_t r = 0;
	int64_t spread = ms / 10;

	if (spread <= 0 || amlops_random(&r, sizeof(r)) < 0)
		return ms;
	return ms - spread + (int64_t)(r % (uint32_t)(2 * spread + 1));
}

static int
stopped(const struct amlops_watch_opts *o)
{
	return o->pass.stop && *o->pass.stop;
}

/* SIGHUP, in a child: .amlops.yml at the head again, checked and logged. */
static int
reload(struct amlops_source *src, const struct amlops_watch_opts *o)
{
	struct amlops_source_config *cfg = NULL;
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	char head[41];
	int error;

	if ((error = amlops_source_resolve(
	         head, src, o->pass.branch ? o->pass.branch : "HEAD")) < 0) {
		log_error(
		    "event=reload_failed error=\"%s\"", amlops_err_last());
		goto done;
	}
	error = amlops_source_config_load(&cfg, &diags, src, head);
	if (error < 0) {
		amlops_diags_sort(&diags);
		for (size_t i = 0; i < diags.n; i++) {
			char *line = amlops_diag_format(&diags.v[i]);

			log_error("event=invalid problem=\"%s\"", line);
			free(line);
		}
		log_error("event=reload_failed commit=%.12s error=\"%s\"", head,
		    amlops_err_last());
		goto done;
	}
	log_info("event=config_reloaded commit=%.12s notes_ref=%s paths=%zu "
	         "workspace=%s",
	    head, cfg->notes_ref ? cfg->notes_ref : AMLOPS_NOTES_REF,
	    cfg->npaths, cfg->workspace ? cfg->workspace : "-");
done:
	amlops_diags_release(&diags);
	amlops_source_config_free(cfg);
	return error;
}

/* What a child does; `po` is the pass's own copy. */
struct job {
	const struct amlops_watch_opts *o;
	struct amlops_watch_pass_opts po;
};

/* In the child: open, run the pass, write the outcome. */
static void
job_run(void *arg, int fd, enum amlops_watch_kind kind)
{
	struct job *j = arg;
	struct amlops_watch_outcome out;
	struct amlops_source *src = NULL;
	struct amlops_backend *b = NULL;
	struct amlops_watch_metrics *m;
	struct amlops_watch_pass pass;
	uint64_t retries0 = amlops_http_retries();
	size_t drifted;
	int error;

	memset(&out, 0, sizeof(out));
	out.kind = kind;
	out.result = AMLOPS_WATCH_FAILED;
	m = amlops_watch_metrics_new(j->po.target);
	j->po.metrics = m;
	if ((error = j->o->open(j->o->open_ctx, &src, &b)) < 0)
		goto done;
	/* opening a URL fetched it */
	j->po.fetch = 0;
	switch (kind) {
	case AMLOPS_WATCH_KIND_PROBE:
		snprintf(out.gitdir, sizeof(out.gitdir), "%s",
		    amlops_source_gitdir(src));
		if (amlops_source_applied_get(out.applied, src,
		        j->po.target ? j->po.target : "local") < 0)
			out.applied[0] = '\0';
		amlops_err_clear();
		out.result = AMLOPS_WATCH_SUCCEEDED;
		break;
	case AMLOPS_WATCH_KIND_RECONCILE:
		error = amlops_watch_reconcile(&pass, src, b, &j->po);
		out.result = pass.result;
		memcpy(out.head, pass.head, sizeof(out.head));
		memcpy(out.applied, pass.applied, sizeof(out.applied));
		out.ms = pass.ms;
		if (out.result == AMLOPS_WATCH_FAILED)
			error = error < 0 ? error : AMLOPS_ERROR;
		break;
	case AMLOPS_WATCH_KIND_DRIFT:
		error = amlops_watch_drift(
		    &drifted, src, b, &j->po, j->o->self_heal);
		out.result =
		    error < 0 ? AMLOPS_WATCH_FAILED : AMLOPS_WATCH_SUCCEEDED;
		break;
	case AMLOPS_WATCH_KIND_RELOAD:
		error = reload(src, j->o);
		out.result =
		    error < 0 ? AMLOPS_WATCH_FAILED : AMLOPS_WATCH_SUCCEEDED;
		break;
	}
done:
	if (out.result == AMLOPS_WATCH_FAILED)
		snprintf(out.error, sizeof(out.error), "%s",
		    error < 0 ? amlops_err_last() : "failed");
	amlops_watch_metrics_export(m, &out);
	out.retries = amlops_http_retries() - retries0;
	if (amlops_watch_child_write(fd, &out) < 0)
		log_error(
		    "event=child_write_failed error=\"%s\"", amlops_err_last());
	if (j->o->close)
		j->o->close(j->o->open_ctx, src, b);
	amlops_watch_metrics_free(m);
}

static void
job_probe(void *arg, int fd)
{
	job_run(arg, fd, AMLOPS_WATCH_KIND_PROBE);
}

static void
job_reconcile(void *arg, int fd)
{
	job_run(arg, fd, AMLOPS_WATCH_KIND_RECONCILE);
}

static void
job_drift(void *arg, int fd)
{
	job_run(arg, fd, AMLOPS_WATCH_KIND_DRIFT);
}

static void
job_reload(void *arg, int fd)
{
	job_run(arg, fd, AMLOPS_WATCH_KIND_RELOAD);
}

/*
 * Runs `kind` in a child and merges its outcome into the metrics. A
 * child that died or spoke nonsense is logged here (it could not log
 * its own end) and counted as failed. Returns the child's status.
 */
static int
in_child(struct amlops_watch_outcome *out, const struct amlops_watch_opts *o,
    const struct amlops_watch_pass_opts *po, enum amlops_watch_kind kind)
{
	static void (*const fns[])(void *, int) = {
	    job_probe, job_reconcile, job_drift, job_reload};
	struct amlops_watch_child_opts co = {
	    o->pass.stop, o->waitmask, o->runmask, o->serve};
	struct job j;
	int error;

	j.o = o;
	j.po = *po;
	error = amlops_watch_child_run(out, kind, fns[kind], &j, &co);
	if (error < 0) {
		switch (kind) {
		case AMLOPS_WATCH_KIND_PROBE:
			return error;
		case AMLOPS_WATCH_KIND_RECONCILE:
			log_error("event=reconcile_done commit=none "
			          "result=failed error=\"%s\"",
			    out->error);
			break;
		case AMLOPS_WATCH_KIND_DRIFT:
			log_error("event=drift_check result=failed "
			          "error=\"%s\"",
			    out->error);
			break;
		case AMLOPS_WATCH_KIND_RELOAD:
			log_error(
			    "event=reload_failed error=\"%s\"", out->error);
			break;
		}
	}
	amlops_watch_metrics_merge(o->pass.metrics, out);
	amlops_err_clear();
	return error;
}

static int64_t
min_wait(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

int
amlops_watch_run(const struct amlops_watch_opts *o)
{
	struct amlops_watch_trigger *trig = NULL;
	struct amlops_watch_pass_opts po = o->pass;
	struct amlops_watch_outcome out;
	const char *target = o->pass.target ? o->pass.target : "local";
	int64_t interval = o->interval_ms > 0 ? o->interval_ms : 30000;
	int64_t debounce = o->debounce_ms > 0 ? o->debounce_ms : 20;
	int64_t backoff0 = o->backoff_ms > 0 ? o->backoff_ms : 10000;
	int64_t backoff_max =
	    o->backoff_max_ms > 0 ? o->backoff_max_ms : 600000;
	int64_t next_tick = 0, next_drift = -1, retry_at = -1, backoff = 0;
	char failed[41] = "", done[41] = "", gitdir[sizeof(out.gitdir)];
	uint64_t stamp = 0;
	int stamped = 0;
	int use_inotify = !o->is_url && !o->poll, force = 1, worked = 0, error;

	/* the repository and the target open (a URL is cloned) */
	po.done = po.held = NULL;
	if ((error = in_child(&out, o, &po, AMLOPS_WATCH_KIND_PROBE)) < 0)
		return error;
	if (out.result == AMLOPS_WATCH_FAILED)
		return amlops_err_set(AMLOPS_ERROR, "%s", out.error);
	memcpy(gitdir, out.gitdir, sizeof(gitdir));
	if (use_inotify &&
	    (error = amlops_watch_trigger_new(&trig, out.gitdir)) < 0)
		return error;
	if (o->drift_interval_ms > 0)
		next_drift = amlops_now_ms() + o->drift_interval_ms;
	log_info("event=watch_start mode=%s interval_ms=%lld "
	         "drift_interval_ms=%lld self_heal=%s target=%s",
	    use_inotify ? "inotify" : "poll",
	    use_inotify ? 0LL : (long long)interval,
	    (long long)o->drift_interval_ms, o->self_heal ? "yes" : "no",
	    target);

	while (!stopped(o)) {
		int64_t now, timeout = -1;
		int n;

		if (o->reload && *o->reload) {
			*o->reload = 0;
			log_info("event=reload");
			po.done = po.held = NULL;
			in_child(&out, o, &po, AMLOPS_WATCH_KIND_RELOAD);
			worked = 1;
			force = 1;
			continue;
		}
		now = amlops_now_ms();
		if (retry_at >= 0 && now >= retry_at) {
			log_info("event=retry commit=%.12s",
			    failed[0] ? failed : "unknown");
			retry_at = -1;
			force = 1;
		}
		if (force || (!use_inotify && now >= next_tick)) {
			/* a local repository polled: a child only on a change
			 */
			int local_poll = !o->is_url && !use_inotify;
			uint64_t st =
			    local_poll ? amlops_watch_refs_stamp(gitdir) : 0;

			if (!use_inotify)
				next_tick = now + jitter(interval);
			if (!force && local_poll && stamped && st == stamp)
				continue;
			force = 0;
			stamp = st;
			stamped = local_poll;
			po.done = done[0] ? done : NULL;
			po.held = retry_at >= 0 ? failed : NULL;
			error =
			    in_child(&out, o, &po, AMLOPS_WATCH_KIND_RECONCILE);
			worked = 1;
			switch (out.result) {
			case AMLOPS_WATCH_FAILED:
				/*
				 * no head: a fetch the next tick tries
				 * again, or a broken repository the next
				 * ref change; a child that died is retried
				 */
				if (!out.head[0] && error == 0)
					break;
				backoff =
				    backoff == 0 || strcmp(failed, out.head)
				        ? backoff0
				        : (backoff * 2 > backoff_max
				                  ? backoff_max
				                  : backoff * 2);
				memcpy(failed, out.head, sizeof(failed));
				retry_at = amlops_now_ms() + backoff;
				log_info("event=retry_scheduled commit=%.12s "
				         "in_ms=%lld",
				    failed[0] ? failed : "unknown",
				    (long long)backoff);
				break;
			case AMLOPS_WATCH_SUCCEEDED:
			case AMLOPS_WATCH_NO_CHANGES:
				failed[0] = '\0';
				retry_at = -1;
				backoff = 0;
				if (o->is_url && !o->pass.push)
					memcpy(done, out.head, sizeof(done));
				break;
			case AMLOPS_WATCH_UP_TO_DATE:
			case AMLOPS_WATCH_INTERRUPTED:
				break;
			}
			continue;
		}
		if (next_drift >= 0 && now >= next_drift) {
			po.done = done[0] ? done : NULL;
			po.held = NULL;
			in_child(&out, o, &po, AMLOPS_WATCH_KIND_DRIFT);
			worked = 1;
			next_drift = amlops_now_ms() + o->drift_interval_ms;
			continue;
		}
		if (!use_inotify)
			timeout = next_tick - now;
		if (retry_at >= 0)
			timeout = min_wait(timeout, retry_at - now);
		if (next_drift >= 0)
			timeout = min_wait(timeout, next_drift - now);
		if (timeout < 0 && timeout != -1)
			timeout = 0;
		if (worked) {
			amlops_watch_lean_idle();
			worked = 0;
		}
		n = amlops_watch_trigger_wait_serving(
		    trig, timeout, debounce, o->waitmask, o->serve);
		if (n < 0) {
			log_error("event=wait_failed error=\"%s\"",
			    amlops_err_last());
			amlops_err_clear();
			/* do not spin: fall back to polling every interval */
			amlops_watch_trigger_free(trig);
			trig = NULL;
			use_inotify = 0;
			next_tick = amlops_now_ms() + interval;
		} else if (n == 1) {
			log_debug("%s: refs changed", __func__);
			force = 1;
		}
	}
	log_info("event=watch_stop");
	amlops_watch_trigger_free(trig);
	return 0;
}
