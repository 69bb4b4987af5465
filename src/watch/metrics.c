/*
 * The loop's counters and their Prometheus text rendering. One mutex
 * guards everything: the loop writes a few times per reconcile, the
 * HTTP server reads on each scrape.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amlops/err.h"
#include "amlops/rest.h"
#include "amlops/util.h"
#include "amlops/watch.h"

static const char *const reconcile_results[] = {
    "succeeded", "no_changes", "failed", "interrupted"};
static const char *const drift_results[] = {"ok", "drift", "healed", "failed"};
/* seconds */
static const double buckets[] = {
    0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};

#define NRES AMLOPS_ARRAY_SIZE(reconcile_results)
#define NBUCKETS AMLOPS_ARRAY_SIZE(buckets)
#define NDRIFT AMLOPS_ARRAY_SIZE(drift_results)

struct step_count {
	char *aspect;
	char *result;
	uint64_t n;
};

struct amlops_watch_metrics {
	pthread_mutex_t mu;
	char *target;
	uint64_t reconciles[NRES];
	uint64_t bucket[NBUCKETS]; /* not cumulative; summed on render */
	uint64_t count;
	double sum;
	struct step_count *steps;
	size_t nsteps;
	uint64_t drift_checks[NDRIFT];
	size_t drifted;
	int64_t last_success_wall_ms; /* 0: never */
	int64_t failing_since_ms;     /* monotonic; 0: not failing */
	char *failing_reason;
	char commit[41];
	int64_t started_wall_ms;
	uint64_t retries; /* the children's; the process's own added */
};

struct amlops_watch_metrics *
amlops_watch_metrics_new(const char *target)
{
	struct amlops_watch_metrics *m = amlops_xcalloc(1, sizeof(*m));

	pthread_mutex_init(&m->mu, NULL);
	m->target = amlops_xstrdup(target ? target : "local");
	m->started_wall_ms = amlops_wall_ms();
	return m;
}

void
amlops_watch_metrics_free(struct amlops_watch_metrics *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nsteps; i++) {
		free(m->steps[i].aspect);
		free(m->steps[i].result);
	}
	free(m->steps);
	free(m->failing_reason);
	free(m->target);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static size_t
index_of(const char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return i;
	return n;
}

void
amlops_watch_metrics_reconcile(struct amlops_watch_metrics *m,
    const char *result, int64_t ms, const char *commit)
{
	size_t r = index_of(reconcile_results, NRES, result);
	double sec = (double)ms / 1000.0;

	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	if (r < NRES)
		m->reconciles[r]++;
	for (size_t i = 0; i < NBUCKETS; i++)
		if (sec <= buckets[i]) {
			m->bucket[i]++;
			break;
		}
	m->count++;
	m->sum += sec;
	if (commit)
		snprintf(m->commit, sizeof(m->commit), "%s", commit);
	if (!strcmp(result, "succeeded") || !strcmp(result, "no_changes")) {
		m->last_success_wall_ms = amlops_wall_ms();
		m->failing_since_ms = 0;
		free(m->failing_reason);
		m->failing_reason = NULL;
	} else if (!strcmp(result, "failed")) {
		if (m->failing_since_ms == 0)
			m->failing_since_ms = amlops_now_ms();
		free(m->failing_reason);
		m->failing_reason = amlops_xstrdup(amlops_err_last());
	}
	pthread_mutex_unlock(&m->mu);
}

void
amlops_watch_metrics_applied(struct amlops_watch_metrics *m, const char *commit)
{
	if (m == NULL || commit == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	snprintf(m->commit, sizeof(m->commit), "%s", commit);
	pthread_mutex_unlock(&m->mu);
}

static void
step_add(struct amlops_watch_metrics *m, const char *aspect, const char *result,
    uint64_t n)
{
	size_t i;

	for (i = 0; i < m->nsteps; i++)
		if (!strcmp(m->steps[i].aspect, aspect) &&
		    !strcmp(m->steps[i].result, result))
			break;
	if (i == m->nsteps) {
		m->steps = amlops_xrealloc(
		    m->steps, (m->nsteps + 1) * sizeof(*m->steps));
		m->steps[i].aspect = amlops_xstrdup(aspect);
		m->steps[i].result = amlops_xstrdup(result);
		m->steps[i].n = 0;
		m->nsteps++;
	}
	m->steps[i].n += n;
}

void
amlops_watch_metrics_step(
    struct amlops_watch_metrics *m, const char *aspect, const char *result)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	step_add(m, aspect, result, 1);
	pthread_mutex_unlock(&m->mu);
}

void
amlops_watch_metrics_export(
    struct amlops_watch_metrics *m, struct amlops_watch_outcome *o)
{
	pthread_mutex_lock(&m->mu);
	o->nsteps = 0;
	for (size_t i = 0; i < m->nsteps && o->nsteps < AMLOPS_WATCH_MSG_STEPS;
	     i++) {
		struct amlops_watch_outcome_step *s = &o->steps[o->nsteps];

		if (strlen(m->steps[i].aspect) >= sizeof(s->aspect) ||
		    strlen(m->steps[i].result) >= sizeof(s->result))
			continue;
		snprintf(
		    s->aspect, sizeof(s->aspect), "%s", m->steps[i].aspect);
		snprintf(
		    s->result, sizeof(s->result), "%s", m->steps[i].result);
		s->n = m->steps[i].n;
		o->nsteps++;
	}
	for (size_t i = 0; i < NDRIFT; i++)
		if (m->drift_checks[i]) {
			snprintf(
			    o->drift, sizeof(o->drift), "%s", drift_results[i]);
			o->drifted = m->drifted;
		}
	pthread_mutex_unlock(&m->mu);
}

void
amlops_watch_metrics_merge(
    struct amlops_watch_metrics *m, const struct amlops_watch_outcome *o)
{
	if (m == NULL)
		return;
	if (o->kind == AMLOPS_WATCH_KIND_PROBE && o->applied[0])
		amlops_watch_metrics_applied(m, o->applied);
	if (o->kind == AMLOPS_WATCH_KIND_RECONCILE &&
	    o->result != AMLOPS_WATCH_UP_TO_DATE) {
		int ok = o->result == AMLOPS_WATCH_SUCCEEDED ||
		         o->result == AMLOPS_WATCH_NO_CHANGES;

		/* the failing reason is the current message */
		amlops_err_set(AMLOPS_ERROR, "%s", o->error);
		amlops_watch_metrics_reconcile(m,
		    amlops_watch_result_name(o->result), o->ms,
		    ok && o->head[0] ? o->head : NULL);
		amlops_err_clear();
	}
	if (o->drift[0])
		amlops_watch_metrics_drift(m, (size_t)o->drifted, o->drift);
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < o->nsteps && i < AMLOPS_WATCH_MSG_STEPS; i++)
		step_add(
		    m, o->steps[i].aspect, o->steps[i].result, o->steps[i].n);
	m->retries += o->retries;
	pthread_mutex_unlock(&m->mu);
}

void
amlops_watch_metrics_drift(
    struct amlops_watch_metrics *m, size_t drifted, const char *result)
{
	size_t r = index_of(drift_results, NDRIFT, result);

	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	if (r < NDRIFT)
		m->drift_checks[r]++;
	if (strcmp(result, "failed") != 0)
		m->drifted = drifted;
	pthread_mutex_unlock(&m->mu);
}

int
amlops_watch_metrics_healthy(
    struct amlops_watch_metrics *m, int64_t threshold_ms, char *why, size_t len)
{
	int ok = 1;

	pthread_mutex_lock(&m->mu);
	if (m->failing_since_ms &&
	    amlops_now_ms() - m->failing_since_ms >= threshold_ms) {
		ok = 0;
		snprintf(why, len, "reconcile failing for %llds: %s",
		    (long long)((amlops_now_ms() - m->failing_since_ms) / 1000),
		    m->failing_reason ? m->failing_reason : "");
	}
	pthread_mutex_unlock(&m->mu);
	return ok;
}

/* A label value: backslash, quote and newline escaped. */
static void
label(struct amlops_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			amlops_buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			amlops_buf_puts(b, "\\n");
		else
			amlops_buf_putc(b, *s);
	}
}

int
amlops_watch_metrics_render(
    struct amlops_buf *out, struct amlops_watch_metrics *m)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	uint64_t cum = 0;
	int error;

	pthread_mutex_lock(&m->mu);
	amlops_buf_puts(&b,
	    "# HELP amlops_reconciles_total Reconciles that applied a commit, "
	    "by result.\n"
	    "# TYPE amlops_reconciles_total counter\n");
	for (size_t i = 0; i < NRES; i++)
		amlops_buf_printf(&b,
		    "amlops_reconciles_total{result=\"%s\"} %llu\n",
		    reconcile_results[i], (unsigned long long)m->reconciles[i]);
	amlops_buf_puts(&b,
	    "# HELP amlops_reconcile_duration_seconds Time from the start of "
	    "a reconcile to its end.\n"
	    "# TYPE amlops_reconcile_duration_seconds histogram\n");
	for (size_t i = 0; i < NBUCKETS; i++) {
		cum += m->bucket[i];
		amlops_buf_printf(&b,
		    "amlops_reconcile_duration_seconds_bucket{le=\"%g\"} "
		    "%llu\n",
		    buckets[i], (unsigned long long)cum);
	}
	amlops_buf_printf(&b,
	    "amlops_reconcile_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "amlops_reconcile_duration_seconds_sum %.3f\n"
	    "amlops_reconcile_duration_seconds_count %llu\n",
	    (unsigned long long)m->count, m->sum, (unsigned long long)m->count);
	amlops_buf_puts(&b, "# HELP amlops_steps_total Steps run, by aspect "
	                    "and result.\n"
	                    "# TYPE amlops_steps_total counter\n");
	for (size_t i = 0; i < m->nsteps; i++) {
		amlops_buf_puts(&b, "amlops_steps_total{aspect=\"");
		label(&b, m->steps[i].aspect);
		amlops_buf_puts(&b, "\",result=\"");
		label(&b, m->steps[i].result);
		amlops_buf_printf(
		    &b, "\"} %llu\n", (unsigned long long)m->steps[i].n);
	}
	amlops_buf_printf(&b,
	    "# HELP amlops_http_retries_total HTTP requests sent again after "
	    "a 408, 429, 5xx or connection error.\n"
	    "# TYPE amlops_http_retries_total counter\n"
	    "amlops_http_retries_total %llu\n",
	    (unsigned long long)(m->retries + amlops_http_retries()));
	amlops_buf_puts(&b, "# HELP amlops_drift_checks_total Drift checks, by "
	                    "result.\n"
	                    "# TYPE amlops_drift_checks_total counter\n");
	for (size_t i = 0; i < NDRIFT; i++)
		amlops_buf_printf(&b,
		    "amlops_drift_checks_total{result=\"%s\"} %llu\n",
		    drift_results[i], (unsigned long long)m->drift_checks[i]);
	amlops_buf_printf(&b,
	    "# HELP amlops_drifted_endpoints Endpoints whose live state "
	    "differed from the repository at the last drift check.\n"
	    "# TYPE amlops_drifted_endpoints gauge\n"
	    "amlops_drifted_endpoints %zu\n",
	    m->drifted);
	amlops_buf_printf(&b,
	    "# HELP amlops_last_success_timestamp_seconds When a reconcile "
	    "last succeeded (0: never).\n"
	    "# TYPE amlops_last_success_timestamp_seconds gauge\n"
	    "amlops_last_success_timestamp_seconds %.3f\n",
	    (double)m->last_success_wall_ms / 1000.0);
	amlops_buf_printf(&b,
	    "# HELP amlops_reconcile_failing 1 while the last reconcile "
	    "failed.\n"
	    "# TYPE amlops_reconcile_failing gauge\n"
	    "amlops_reconcile_failing %d\n",
	    m->failing_since_ms != 0);
	amlops_buf_puts(&b, "# HELP amlops_applied_info The commit applied in "
	                    "full to the target.\n"
	                    "# TYPE amlops_applied_info gauge\n");
	if (m->commit[0]) {
		amlops_buf_puts(&b, "amlops_applied_info{target=\"");
		label(&b, m->target);
		amlops_buf_printf(&b, "\",commit=\"%s\"} 1\n", m->commit);
	}
	amlops_buf_printf(&b,
	    "# HELP amlops_start_timestamp_seconds When this process "
	    "started.\n"
	    "# TYPE amlops_start_timestamp_seconds gauge\n"
	    "amlops_start_timestamp_seconds %.3f\n",
	    (double)m->started_wall_ms / 1000.0);
	pthread_mutex_unlock(&m->mu);
	error = amlops_buf_add(out, b.ptr ? b.ptr : "", b.len);
	amlops_buf_release(&b);
	return error;
}
