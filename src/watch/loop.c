/*
 * The watch loop: waits for a ref change (inotify) or the next tick
 * (polling), runs a reconcile pass, retries a failed head with
 * exponential backoff, checks drift now and then, and reloads on SIGHUP.
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

static void
run_mask(const struct amlops_watch_opts *o, int running)
{
	if (running && o->runmask)
		pthread_sigmask(SIG_SETMASK, o->runmask, NULL);
	else if (!running && o->waitmask) {
		sigset_t all;

		sigemptyset(&all);
		sigaddset(&all, SIGTERM);
		sigaddset(&all, SIGINT);
		sigaddset(&all, SIGHUP);
		pthread_sigmask(SIG_BLOCK, &all, NULL);
	}
}

/* SIGHUP: .amlops.yml at the head again, and the backend it names. */
static void
reload(struct amlops_source *src, struct amlops_backend **b,
    const struct amlops_watch_opts *o)
{
	struct amlops_source_config *cfg = NULL;
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	struct amlops_backend *nb = NULL;
	char head[41];
	int error;

	log_info("event=reload");
	if (o->is_url && amlops_source_fetch(src) < 0)
		log_warnx("event=reload_fetch_failed error=\"%s\"",
		    amlops_err_last());
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
	if (o->reopen) {
		if (o->reopen(o->reopen_ctx, &nb) < 0) {
			log_error("event=reload_failed error=\"%s\"",
			    amlops_err_last());
			goto done;
		}
		amlops_backend_free(*b);
		*b = nb;
	}
done:
	amlops_err_clear();
	amlops_diags_release(&diags);
	amlops_source_config_free(cfg);
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
amlops_watch_run(struct amlops_source *src, struct amlops_backend **b,
    const struct amlops_watch_opts *o)
{
	struct amlops_watch_trigger *trig = NULL;
	struct amlops_watch_pass_opts po = o->pass;
	struct amlops_watch_pass pass;
	const char *target = o->pass.target ? o->pass.target : "local";
	int64_t interval = o->interval_ms > 0 ? o->interval_ms : 30000;
	int64_t debounce = o->debounce_ms > 0 ? o->debounce_ms : 20;
	int64_t backoff0 = o->backoff_ms > 0 ? o->backoff_ms : 10000;
	int64_t backoff_max =
	    o->backoff_max_ms > 0 ? o->backoff_max_ms : 600000;
	int64_t next_tick = 0, next_drift = -1, retry_at = -1, backoff = 0;
	char failed[41] = "", done[41] = "", applied[41];
	int use_inotify = !o->is_url && !o->poll, force = 1, worked = 0, error;

	if (use_inotify && (error = amlops_watch_trigger_new(
	                        &trig, amlops_source_gitdir(src))) < 0)
		return error;
	if (amlops_source_applied_get(applied, src, target) == 0)
		amlops_watch_metrics_applied(o->pass.metrics, applied);
	amlops_err_clear();
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
			run_mask(o, 1);
			reload(src, b, o);
			run_mask(o, 0);
			worked = 1;
			force = 1;
			continue;
		}
		now = amlops_now_ms();
		if (retry_at >= 0 && now >= retry_at) {
			log_info("event=retry commit=%.12s", failed);
			retry_at = -1;
			force = 1;
		}
		if (force || (!use_inotify && now >= next_tick)) {
			force = 0;
			if (!use_inotify)
				next_tick = now + jitter(interval);
			po.fetch = o->is_url;
			po.done = done[0] ? done : NULL;
			po.held = retry_at >= 0 ? failed : NULL;
			run_mask(o, 1);
			error = amlops_watch_reconcile(&pass, src, *b, &po);
			run_mask(o, 0);
			worked = 1;
			(void)error;
			amlops_err_clear();
			switch (pass.result) {
			case AMLOPS_WATCH_FAILED:
				if (!pass.head[0])
					break; /* fetch: the next tick tries */
				backoff = strcmp(failed, pass.head)
				              ? backoff0
				              : (backoff * 2 > backoff_max
				                        ? backoff_max
				                        : backoff * 2);
				memcpy(failed, pass.head, sizeof(failed));
				retry_at = amlops_now_ms() + backoff;
				log_info("event=retry_scheduled commit=%.12s "
				         "in_ms=%lld",
				    failed, (long long)backoff);
				break;
			case AMLOPS_WATCH_SUCCEEDED:
			case AMLOPS_WATCH_NO_CHANGES:
				failed[0] = '\0';
				retry_at = -1;
				backoff = 0;
				if (o->is_url && !o->pass.push)
					memcpy(done, pass.head, sizeof(done));
				break;
			case AMLOPS_WATCH_UP_TO_DATE:
			case AMLOPS_WATCH_INTERRUPTED:
				break;
			}
			continue;
		}
		if (next_drift >= 0 && now >= next_drift) {
			size_t drifted;

			run_mask(o, 1);
			po.done = done[0] ? done : NULL;
			po.held = NULL;
			amlops_watch_drift(
			    &drifted, src, *b, &po, o->self_heal);
			run_mask(o, 0);
			worked = 1;
			amlops_err_clear();
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
		n = amlops_watch_trigger_wait(
		    trig, timeout, debounce, o->waitmask);
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
