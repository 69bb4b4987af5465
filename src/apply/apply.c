/*
 * The executor: plan a commit against the live target, then run the
 * steps, one at a time per endpoint, rewriting the commit's note after
 * each. See amlops/apply.h for the rules it keeps.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "amlops/apply.h"
#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/util.h"

/* ------------------------------------------------------------------ */
/* Preparing: desired state, scope, live state, plan */

static int
contains(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return 1;
	return 0;
}

static const char *
tag_str(const cJSON *tags, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(tags, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void
tag_set(cJSON *tags, const char *key, const char *value)
{
	cJSON_DeleteItemFromObjectCaseSensitive(tags, key);
	cJSON_AddStringToObject(tags, key, value);
}

/*
 * The repository and commit tags go on the endpoints amlops creates. An
 * endpoint that exists keeps the ones it has (so that a later commit is
 * no metadata change) and gets none it lacks (an endpoint amlops adopts
 * gets only the ownership tag, from the planner).
 */
static void
mark_owned(struct amlops_apply *a, const struct amlops_apply_opts *opts)
{
	for (size_t i = 0; i < a->desired->nendpoints; i++) {
		struct amlops_endpoint *ep = a->desired->endpoints[i];
		const struct amlops_endpoint *live =
		    amlops_spec_endpoint(&a->live, ep->name);

		if (a->scope && !contains(a->scope, a->nscope, ep->name))
			continue;
		if (live) {
			const char *c =
			    tag_str(live->tags, AMLOPS_APPLY_TAG_COMMIT);
			const char *r =
			    tag_str(live->tags, AMLOPS_APPLY_TAG_REPO);

			if (c)
				tag_set(ep->tags, AMLOPS_APPLY_TAG_COMMIT, c);
			if (r)
				tag_set(ep->tags, AMLOPS_APPLY_TAG_REPO, r);
			continue;
		}
		tag_set(ep->tags, AMLOPS_APPLY_TAG_COMMIT, a->commit);
		if (opts->repository)
			tag_set(
			    ep->tags, AMLOPS_APPLY_TAG_REPO, opts->repository);
	}
}

static int
busy_state(const char *state)
{
	static const char *const busy[] = {
	    "Creating", "Updating", "Scaling", "Deleting", "Provisioning"};

	if (state == NULL)
		return 0;
	for (size_t i = 0; i < AMLOPS_ARRAY_SIZE(busy); i++)
		if (!strcmp(state, busy[i]))
			return 1;
	return 0;
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The first busy thing of the live state, into `why`; 0 when none. */
static int
live_busy(const struct amlops_apply *a, char *why, size_t len)
{
	for (size_t i = 0; i < a->live.nendpoints; i++) {
		const struct amlops_live *l = a->lives[i];

		if (l == NULL)
			continue;
		if (busy_state(l->provisioning_state)) {
			snprintf(why, len, "endpoint '%s' is %s",
			    a->live.endpoints[i]->name, l->provisioning_state);
			return 1;
		}
		for (size_t k = 0; k < l->ndeployments; k++)
			if (busy_state(l->deployments[k].provisioning_state)) {
				snprintf(why, len, "deployment '%s/%s' is %s",
				    a->live.endpoints[i]->name,
				    l->deployments[k].name,
				    l->deployments[k].provisioning_state);
				return 1;
			}
	}
	return 0;
}

/*
 * Reads the live state of the endpoints in scope, again while any of it
 * is busy (an operation left running, e.g. by an apply that was killed):
 * a plan made from a state in flight could call a step done whose
 * operation then fails. Bounded by the step timeout.
 */
static int
read_live_settled(struct amlops_apply *a, struct amlops_backend *b,
    const struct amlops_apply_opts *opts)
{
	int all = opts->flags & AMLOPS_APPLY_ALL;
	int64_t timeout = opts->step_timeout_ms > 0
	                      ? opts->step_timeout_ms
	                      : AMLOPS_APPLY_STEP_TIMEOUT_MS;
	int64_t deadline = amlops_now_ms() + timeout;
	int64_t poll = opts->busy_poll_ms > 0 ? opts->busy_poll_ms : 1000;
	char why[256];
	int error;

	for (;;) {
		if (all) {
			char **names = amlops_xcalloc(
			    a->desired->nendpoints + 1, sizeof(*names));

			for (size_t i = 0; i < a->desired->nendpoints; i++)
				names[i] = a->desired->endpoints[i]->name;
			error = amlops_apply_read_live(&a->live, &a->lives, b,
			    names, a->desired->nendpoints, 1);
			free(names);
		} else {
			error = amlops_apply_read_live(
			    &a->live, &a->lives, b, a->scope, a->nscope, 0);
		}
		if (error < 0)
			return error;
		if ((opts->flags & AMLOPS_APPLY_NO_WAIT) ||
		    !live_busy(a, why, sizeof(why))) {
			a->live_ms = amlops_now_ms();
			return 0;
		}
		amlops_apply_live_release(&a->live, a->lives);
		a->lives = NULL;
		if (amlops_now_ms() >= deadline)
			return amlops_err_set(AMLOPS_ETIMEOUT,
			    "timed out before planning: %s", why);
		log_info("apply=waiting reason=\"%s\"", why);
		sleep_ms(deadline - amlops_now_ms() < poll
		             ? deadline - amlops_now_ms()
		             : poll);
	}
}

/*
 * What "touched" is relative to: the applied ref (the last commit applied
 * in full), and the commit's parent when that differs. The parent counts
 * too because a failed apply of an earlier commit may have left live what
 * the repository has since dropped again (a deployment added in one
 * commit, its apply failed, removed in the next: applied..commit shows no
 * change, yet the target has it). `parent` is "" when it is the same as
 * `a->base` or there is none.
 */
static int
pick_bases(struct amlops_apply *a, char parent[41], struct amlops_source *src,
    const char *target)
{
	char out[41];
	int error;

	a->base[0] = parent[0] = '\0';
	error = amlops_source_applied_get(out, src, target);
	if (error == 0 && strcmp(out, a->commit) != 0)
		memcpy(a->base, out, sizeof(out));
	else if (error < 0 && error != AMLOPS_ENOTFOUND)
		return error;
	amlops_err_clear();
	error = amlops_source_parent(out, src, a->commit);
	if (error == AMLOPS_ENOTFOUND) {
		amlops_err_clear();
		return 0;
	}
	if (error < 0)
		return error;
	if (a->base[0] == '\0')
		memcpy(a->base, out, sizeof(out));
	else if (strcmp(a->base, out) != 0)
		memcpy(parent, out, 41);
	return 0;
}

/* Adds `more` to the sorted, unique names of `a->scope`. */
static void
scope_merge(struct amlops_apply *a, char **more, size_t nmore)
{
	for (size_t i = 0; i < nmore; i++) {
		if (contains(a->scope, a->nscope, more[i]))
			continue;
		a->scope =
		    amlops_xrealloc(a->scope, (a->nscope + 1) * sizeof(char *));
		a->scope[a->nscope++] = amlops_xstrdup(more[i]);
	}
	for (size_t i = 1; i < a->nscope; i++)
		for (size_t j = i;
		     j > 0 && strcmp(a->scope[j - 1], a->scope[j]) > 0; j--) {
			char *t = a->scope[j];

			a->scope[j] = a->scope[j - 1];
			a->scope[j - 1] = t;
		}
}

/*
 * The desired state and the scope, relative to both bases. The second
 * base means loading every manifest of the commit: a narrowed load from
 * the first may lack an endpoint only the second touched.
 */
static int
load_touched(
    struct amlops_apply *a, struct amlops_source *src, const char *target)
{
	struct amlops_source_pair pair = AMLOPS_SOURCE_PAIR_INIT;
	struct amlops_source_pair pair2 = AMLOPS_SOURCE_PAIR_INIT;
	struct amlops_diags d2 = AMLOPS_DIAGS_INIT;
	char parent[41];
	int error;

	if ((error = pick_bases(a, parent, src, target)) < 0)
		return error;
	error = amlops_source_load_pair(&pair, &a->diags, src,
	    a->base[0] ? a->base : NULL, a->commit, a->cfg);
	if (error < 0)
		goto done;
	a->scope = pair.touched;
	a->nscope = pair.ntouched;
	pair.touched = NULL;
	pair.ntouched = 0;
	if (parent[0] == '\0') {
		a->desired = pair.head;
		pair.head = NULL;
		goto done;
	}
	error = amlops_source_load_pair(
	    &pair2, &d2, src, parent, a->commit, a->cfg);
	if (error == AMLOPS_EINVALID && d2.n) {
		/* the same problems, seen from the parent */
		amlops_diags_release(&a->diags);
		a->diags = d2;
		memset(&d2, 0, sizeof(d2));
		goto done;
	}
	if (error < 0)
		goto done;
	scope_merge(a, pair2.touched, pair2.ntouched);
	if (pair.narrowed || pair2.narrowed) {
		error = amlops_source_load_spec(
		    &a->desired, &a->diags, src, a->commit, a->cfg, NULL, 0);
	} else {
		a->desired = pair.head;
		pair.head = NULL;
	}
done:
	amlops_diags_release(&d2);
	amlops_source_pair_release(&pair2);
	amlops_source_pair_release(&pair);
	return error;
}

int
amlops_apply_prepare(struct amlops_apply **out, struct amlops_source *src,
    const char *commit, struct amlops_backend *b,
    const struct amlops_apply_opts *opts)
{
	struct amlops_apply *a = amlops_xcalloc(1, sizeof(*a));
	struct amlops_plan_opts popts = AMLOPS_PLAN_OPTS_INIT;
	int error, all = opts->flags & AMLOPS_APPLY_ALL;

	*out = NULL;
	snprintf(a->commit, sizeof(a->commit), "%s", commit);
	error = amlops_source_config_load(&a->cfg, &a->diags, src, commit);
	if (error == AMLOPS_EINVALID && a->diags.n)
		goto invalid;
	if (error < 0)
		goto fail;
	if (all) {
		error = amlops_source_load_spec(
		    &a->desired, &a->diags, src, commit, a->cfg, NULL, 0);
		if (error == 0)
			error = amlops_source_check_versions(
			    &a->diags, NULL, a->desired);
	} else {
		error = load_touched(a, src, opts->target);
	}
	if (error == AMLOPS_EINVALID && a->diags.n)
		goto invalid;
	if (error < 0)
		goto fail;
	if ((error = read_live_settled(a, b, opts)) < 0)
		goto fail;
	mark_owned(a, opts);
	/*
	 * The target answers with its defaults left out; compare the
	 * desired settings in the same form (amlops/backend.h).
	 */
	for (size_t i = 0; i < a->desired->nendpoints; i++)
		for (size_t k = 0; k < a->desired->endpoints[i]->ndeployments;
		     k++)
			amlops_arm_settings_normalize(
			    a->desired->endpoints[i]->deployments[k]->settings);
	if (!all) {
		popts.scope = (const char *const *)a->scope;
		popts.nscope = a->nscope;
	}
	if (!all && a->nscope == 0)
		error = amlops_plan_build(&a->plan, NULL, NULL, &popts);
	else
		error =
		    amlops_plan_build(&a->plan, a->desired, &a->live, &popts);
	if (error < 0 && error != AMLOPS_EINVALID)
		goto fail;
	amlops_apply_add_repairs(
	    a->plan, a->desired, &a->live, a->lives, a->scope, a->nscope);
	log_debug("%s: commit=%.12s base=%.12s scope=%zu live=%zu steps=%zu "
	          "refused=%zu",
	    __func__, a->commit, a->base[0] ? a->base : "-",
	    all ? a->desired->nendpoints : a->nscope, a->live.nendpoints,
	    a->plan->nsteps, a->plan->nrefusals);
	*out = a;
	return error;
invalid:
	*out = a;
	return amlops_err_set(AMLOPS_EINVALID, "%zu problem%s in %.12s",
	    a->diags.n, a->diags.n == 1 ? "" : "s", commit);
fail:
	amlops_apply_free(a);
	return error;
}

void
amlops_apply_free(struct amlops_apply *a)
{
	if (a == NULL)
		return;
	amlops_plan_free(a->plan);
	amlops_apply_live_release(&a->live, a->lives);
	amlops_spec_free(a->desired);
	amlops_source_paths_free(a->scope, a->nscope);
	amlops_diags_release(&a->diags);
	amlops_source_config_free(a->cfg);
	amlops_note_free(a->note);
	free(a);
}

/* ------------------------------------------------------------------ */
/* Running */

struct job {
	size_t first; /* index of the endpoint's first step */
	size_t count;
};

struct run {
	struct amlops_apply *a;
	struct amlops_source *src;
	const struct amlops_apply_opts *opts;
	const char *notes_ref;
	int64_t timeout_ms;
	int64_t busy_poll_ms;
	pthread_mutex_t mu; /* the note, the counters, progress, next */
	struct job *jobs;
	size_t njobs;
	size_t next;
	int note_error; /* the first failure to write the note */
	char *note_msg;
	char *first_failure;
};

/*
 * The last read of one endpoint, standing for the next step's read: the
 * read that saw a step's operation end (nothing ran on the endpoint
 * since), or the prepared apply's read when the run starts right after
 * it. A read of the endpoint `alone` (no deployments: the job's last
 * step saw its operation end with it) stands only for the final state.
 */
struct cache {
	char *name;
	struct amlops_endpoint *ep; /* NULL: the endpoint does not exist */
	struct amlops_live *live;
	int borrowed; /* the prepared apply's: not freed here */
	int alone;    /* the endpoint without its deployments */
	int valid;
};

/* Which of a read's halves the holder frees (read_free()). */
#define OWN_EP 1
#define OWN_LIVE 2
#define OWN_BOTH (OWN_EP | OWN_LIVE)

struct worker {
	struct run *run;
	struct amlops_backend *b;
	struct amlops_apply_files *files;
	int64_t service_ms;
	struct cache cache;
};

/* A read of the prepared apply younger than this stands for a step's. */
#define PREPARED_READ_MAX_AGE_MS 1000

static void
cache_drop(struct cache *c)
{
	if (c->valid && !c->borrowed) {
		amlops_endpoint_free(c->ep);
		amlops_live_free(c->live);
	}
	free(c->name);
	memset(c, 0, sizeof(*c));
}

/* Takes ownership of `ep` and `live` unless `borrowed`. */
static void
cache_put(struct cache *c, const char *name, struct amlops_endpoint *ep,
    struct amlops_live *live, int borrowed)
{
	cache_drop(c);
	c->name = amlops_xstrdup(name);
	c->ep = ep;
	c->live = live;
	c->borrowed = borrowed;
	c->valid = 1;
}

/* Hands the cached read of `name` to the caller: 1, or 0 when none. */
static int
cache_take(struct cache *c, const char *name, struct amlops_endpoint **ep,
    struct amlops_live **live, int *own)
{
	if (!c->valid || strcmp(c->name, name) != 0)
		return 0;
	*ep = c->ep;
	*live = c->live;
	*own = c->borrowed ? 0 : OWN_BOTH;
	free(c->name);
	memset(c, 0, sizeof(*c));
	return 1;
}

static void
read_free(struct amlops_endpoint *ep, struct amlops_live *live, int own)
{
	if (own & OWN_EP)
		amlops_endpoint_free(ep);
	if (own & OWN_LIVE)
		amlops_live_free(live);
}

/*
 * `base` (the prepared read) with the deployments' state read again, in
 * one request, into *out (owned); -1 when that read fails or the backend
 * cannot read the deployments alone (the caller then reads it all).
 */
static int
fresh_deployments(struct worker *w, const char *name,
    const struct amlops_live *base, struct amlops_live **out)
{
	struct amlops_live *l;
	int64_t c0 = amlops_now_ms();
	int error;

	if (w->b->ops->get_deployment_states == NULL)
		return -1;
	l = amlops_xcalloc(1, sizeof(*l));
	error = amlops_backend_get_deployment_states(
	    w->b, name, &l->deployments, &l->ndeployments);
	w->service_ms += amlops_now_ms() - c0;
	if (error < 0) {
		log_debug("%s: endpoint=%s error=\"%s\"", __func__, name,
		    amlops_err_last());
		amlops_err_clear();
		amlops_live_free(l);
		return -1;
	}
	l->provisioning_state = amlops_xstrdup(base->provisioning_state);
	l->scoring_uri = amlops_xstrdup(base->scoring_uri);
	l->id = amlops_xstrdup(base->id);
	*out = l;
	return 0;
}

/* Writes the note; holds run->mu. */
static void
note_save(struct run *r)
{
	int error = amlops_status_note_write(r->src, r->notes_ref, r->a->note);

	if (error < 0 && r->note_error == 0) {
		r->note_error = error;
		r->note_msg = amlops_xstrdup(amlops_err_last());
		log_warnx("note=%.12s result=not-written error=\"%s\"",
		    r->a->commit, r->note_msg);
	}
}

static void
emit(struct run *r, enum amlops_apply_event_kind kind,
    const struct amlops_note_step *ns, int64_t t0, const char *detail)
{
	struct amlops_apply_event ev;

	if (r->opts->progress == NULL)
		return;
	ev.kind = kind;
	ev.step = ns;
	ev.total = r->a->plan->nsteps;
	ev.elapsed_ms = amlops_now_ms() - t0;
	ev.detail = detail;
	r->opts->progress(r->opts->progress_ctx, &ev);
}

static int
percent_of(const struct amlops_traffic *t, size_t n, const char *dep)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].deployment, dep))
			return t[i].percent;
	return 0;
}

/*
 * The request id in a message ("(request id X)"), copied into `out`;
 * "" when there is none.
 */
static void
request_id_of(char out[37], const char *msg)
{
	const char *p = strstr(msg, "(request id ");

	out[0] = '\0';
	if (p == NULL)
		return;
	p += strlen("(request id ");
	snprintf(out, 37, "%.*s", (int)strcspn(p, ")"), p);
}

/*
 * The error code of a failure: the service's for a failed operation, the
 * HTTP reason of a refused request ("PUT x: 409 Conflict (request ..."
 * gives "Conflict"), else one for the class of error.
 */
static char *
error_code_of(int error, const char *msg, const struct amlops_op *op)
{
	const char *p;

	if (error == AMLOPS_ETIMEOUT)
		return amlops_xstrdup("timeout");
	if (op && op->rest && op->rest->error_code && *op->rest->error_code)
		return amlops_xstrdup(op->rest->error_code);
	if (op && op->state == AMLOPS_OP_FAILED)
		return amlops_xstrdup("OperationFailed");
	if (op && op->state == AMLOPS_OP_CANCELED)
		return amlops_xstrdup("OperationCanceled");
	for (p = strstr(msg, ": "); p; p = strstr(p + 1, ": ")) {
		const char *s = p + 2, *e;
		struct amlops_buf b = AMLOPS_BUF_INIT;

		if (!(s[0] >= '1' && s[0] <= '5' && s[1] >= '0' &&
		        s[1] <= '9' && s[2] >= '0' && s[2] <= '9' &&
		        s[3] == ' '))
			continue;
		s += 4;
		e = strstr(s, " (");
		if (e == NULL)
			e = s + strlen(s);
		for (; s < e; s++)
			if (*s != ' ' && *s != '-')
				amlops_buf_putc(&b, *s);
		if (b.len)
			return amlops_buf_detach(&b);
		amlops_buf_release(&b);
	}
	switch (error) {
	case AMLOPS_ENOTFOUND:
		return amlops_xstrdup("NotFound");
	case AMLOPS_ECONFLICT:
		return amlops_xstrdup("Conflict");
	case AMLOPS_EINVALID:
		return amlops_xstrdup("BadRequest");
	case AMLOPS_EBACKEND:
		return amlops_xstrdup("ServiceError");
	case AMLOPS_ENOTSUPP:
		return amlops_xstrdup("NotSupported");
	default:
		return amlops_xstrdup("ConnectionError");
	}
}

/* Records a step's end; holds run->mu. `code` NULL: it succeeded. */
static void
step_end(struct run *r, struct amlops_note_step *ns, int64_t t0,
    const char *request_id, char *code, const char *msg)
{
	ns->ms = amlops_now_ms() - t0;
	if (request_id && *request_id) {
		free(ns->request_id);
		ns->request_id = amlops_xstrdup(request_id);
	}
	if (code) {
		ns->status = AMLOPS_STEP_FAILED;
		ns->error_code = code;
		ns->error_message = amlops_xstrdup(msg);
		r->a->failed++;
		if (r->first_failure == NULL)
			r->first_failure = amlops_xasprintf(
			    "endpoint '%s' step %d (%s %s%s%s): %s",
			    ns->endpoint, ns->index, ns->action, ns->aspect,
			    ns->deployment ? " " : "",
			    ns->deployment ? ns->deployment : "", msg);
	} else {
		ns->status = AMLOPS_STEP_SUCCEEDED;
		r->a->succeeded++;
	}
	note_save(r);
}

static int
same_step(const struct amlops_step *x, const struct amlops_step *y)
{
	if (x->action != y->action || x->aspect != y->aspect)
		return 0;
	if (!x->deployment || !y->deployment)
		return x->deployment == y->deployment;
	return !strcmp(x->deployment, y->deployment);
}

/*
 * Reads the endpoint until nothing the step touches is busy or the
 * deadline passes. 0 with *ep / *live set (*ep NULL when the endpoint
 * does not exist), or an error with the message set.
 */
static int
read_settled(struct worker *w, const struct amlops_step *s,
    struct amlops_note_step *ns, int64_t t0, int64_t deadline,
    struct amlops_endpoint **ep, struct amlops_live **live, int *own)
{
	struct run *r = w->run;
	int64_t last_event = 0;
	int traffic = s->aspect == AMLOPS_ASPECT_TRAFFIC ||
	              s->aspect == AMLOPS_ASPECT_MIRROR_TRAFFIC;
	int cached;

	/* The endpoint alone has no deployments: no step's read. */
	if (w->cache.valid && w->cache.alone)
		cache_drop(&w->cache);
	cached = cache_take(&w->cache, s->endpoint, ep, live, own);

	/*
	 * Traffic and deletions re-read what they route to or remove: the
	 * read the plan was made from does not stand in for that. A traffic
	 * step right after planning re-reads the deployments it routes to
	 * (one request) and takes the endpoint from the prepared read, as
	 * every other first step does; a deletion re-reads it all.
	 */
	if (cached && !*own && traffic && *ep != NULL && *live != NULL &&
	    fresh_deployments(w, s->endpoint, *live, live) == 0)
		*own = OWN_LIVE; /* the endpoint stays the prepared apply's */
	else if (cached && !*own &&
	         (traffic || s->action == AMLOPS_PLAN_DELETE))
		cached = 0;

	for (;;) {
		char why[256];
		int64_t c0 = amlops_now_ms();
		int error = 0;

		if (!cached) {
			*own = OWN_BOTH;
			error = amlops_backend_get_endpoint(
			    w->b, s->endpoint, ep, live);
			w->service_ms += amlops_now_ms() - c0;
		}
		cached = 0;
		why[0] = '\0';
		if (error == AMLOPS_ENOTFOUND) {
			amlops_err_clear();
			*ep = NULL;
			*live = NULL;
			return 0;
		}
		if (error < 0)
			return error;
		if (*ep == NULL)
			return 0;
		if (busy_state((*live)->provisioning_state))
			snprintf(why, sizeof(why), "endpoint '%s' is %s",
			    s->endpoint, (*live)->provisioning_state);
		else if (s->deployment &&
		         busy_state(amlops_live_deployment_state(
		             *live, s->deployment)))
			snprintf(why, sizeof(why), "deployment '%s' is %s",
			    s->deployment,
			    amlops_live_deployment_state(*live, s->deployment));
		else if (s->aspect == AMLOPS_ASPECT_TRAFFIC ||
		         s->aspect == AMLOPS_ASPECT_MIRROR_TRAFFIC) {
			const cJSON *t;

			cJSON_ArrayForEach(t, s->after)
			{
				const char *st = amlops_live_deployment_state(
				    *live, t->string);

				if (busy_state(st)) {
					snprintf(why, sizeof(why),
					    "deployment '%s' is %s", t->string,
					    st);
					break;
				}
			}
		}
		if (why[0] == '\0')
			return 0;
		read_free(*ep, *live, *own);
		*ep = NULL;
		*live = NULL;
		*own = OWN_BOTH;
		if (amlops_now_ms() >= deadline)
			return amlops_err_set(AMLOPS_ETIMEOUT,
			    "step timed out after %lld s: %s",
			    (long long)((amlops_now_ms() - t0) / 1000), why);
		log_debug("%s: endpoint=%s step=%d wait=\"%s\"", __func__,
		    s->endpoint, ns->index, why);
		if (amlops_now_ms() - last_event >= 1000) {
			pthread_mutex_lock(&r->mu);
			emit(r, AMLOPS_APPLY_STEP_WAIT, ns, t0, why);
			pthread_mutex_unlock(&r->mu);
			last_event = amlops_now_ms();
		}
		c0 = amlops_now_ms();
		sleep_ms(r->busy_poll_ms < deadline - amlops_now_ms()
		             ? r->busy_poll_ms
		             : deadline - amlops_now_ms());
		w->service_ms += amlops_now_ms() - c0;
	}
}

/* Sleeps until the operation's next poll (at least 10 ms), not past
 * `deadline`. */
static void
wait_poll(struct worker *w, const struct amlops_op *op, int64_t deadline)
{
	int64_t d = op->rest ? op->rest->next_poll_ms - amlops_now_ms() : 50;
	int64_t c0 = amlops_now_ms();

	if (d < 10)
		d = 10;
	if (d > deadline - amlops_now_ms())
		d = deadline - amlops_now_ms();
	sleep_ms(d);
	w->service_ms += amlops_now_ms() - c0;
}

static int
op_timeout(const struct amlops_op *op, int64_t t0, const char *rid)
{
	return amlops_err_set(AMLOPS_ETIMEOUT,
	    "step timed out after %lld s: %s still %s (request id %s)",
	    (long long)((amlops_now_ms() - t0) / 1000),
	    op->what ? op->what : "the operation",
	    op->rest && op->rest->status ? op->rest->status : "running", rid);
}

/* Polls the operation itself until it ends: its outcome and error. */
static int
wait_op(struct worker *w, struct amlops_op *op, int64_t t0, int64_t deadline,
    const char *rid)
{
	for (;;) {
		int64_t c0 = amlops_now_ms();
		int error = amlops_backend_poll_op(w->b, op);

		w->service_ms += amlops_now_ms() - c0;
		if (error != 1)
			return error;
		if (amlops_now_ms() >= deadline)
			return op_timeout(op, t0, rid);
		wait_poll(w, op, deadline);
	}
}

/*
 * Waits for a step's operation by reading the endpoint: once the
 * resource the step changed has left its busy state (and the endpoint
 * too), the operation has ended. Succeeded (or gone, for a delete) is
 * the end; anything else asks the operation for its outcome and error.
 * The last read is kept for the next step: it is the read before that
 * step's write, so a step costs its request, one read and no poll when
 * operations end at once.
 */
static int
wait_done(struct worker *w, const struct amlops_step *s,
    struct amlops_note_step *ns, struct amlops_op *op, int64_t t0,
    int64_t deadline, const char *rid, int last)
{
	struct run *r = w->run;
	int64_t last_event = amlops_now_ms();
	int dep_level = s->deployment != NULL &&
	                s->aspect != AMLOPS_ASPECT_TRAFFIC &&
	                s->aspect != AMLOPS_ASPECT_MIRROR_TRAFFIC;
	/*
	 * The job's last step on the endpoint itself: its state says when
	 * the operation ended, and no later step needs the deployments, so
	 * the endpoint alone is read (one request, not two).
	 */
	int alone = last && !dep_level && w->b->ops->get_endpoint_only != NULL;
	int is_delete = s->action == AMLOPS_PLAN_DELETE &&
	                (dep_level || s->aspect == AMLOPS_ASPECT_ENDPOINT);
	char msg[512];

	/*
	 * Only the local host's reads are known to follow its writes at
	 * once; ARM may answer a read from before the PUT, so on Azure the
	 * operation itself says when it ended (and the next step reads).
	 */
	if (op->state != AMLOPS_OP_RUNNING ||
	    strcmp(w->b->ops->name, "local") != 0)
		return wait_op(w, op, t0, deadline, rid);
	for (;;) {
		struct amlops_endpoint *ep = NULL;
		struct amlops_live *live = NULL;
		const char *st;
		int64_t c0;
		int error;

		wait_poll(w, op, deadline);
		if (amlops_now_ms() >= deadline)
			return op_timeout(op, t0, rid);
		c0 = amlops_now_ms();
		error = alone ? amlops_backend_get_endpoint_only(
		                    w->b, s->endpoint, &ep, &live)
		              : amlops_backend_get_endpoint(
		                    w->b, s->endpoint, &ep, &live);
		w->service_ms += amlops_now_ms() - c0;
		if (error == AMLOPS_ENOTFOUND) {
			amlops_err_clear();
			ep = NULL;
			live = NULL;
		} else if (error < 0) {
			return error;
		}
		if (ep == NULL)
			st = NULL;
		else if (dep_level)
			st = amlops_live_deployment_state(live, s->deployment);
		else
			st = live->provisioning_state;
		if ((st && busy_state(st)) ||
		    (ep && busy_state(live->provisioning_state))) {
			if (amlops_now_ms() - last_event >= 1000) {
				snprintf(msg, sizeof(msg), "%s: %s is %s",
				    op->what ? op->what : "operation",
				    dep_level ? "the deployment"
				              : "the endpoint",
				    st ? st : live->provisioning_state);
				pthread_mutex_lock(&r->mu);
				emit(r, AMLOPS_APPLY_STEP_WAIT, ns, t0, msg);
				pthread_mutex_unlock(&r->mu);
				last_event = amlops_now_ms();
			}
			read_free(ep, live, OWN_BOTH);
			continue;
		}
		if ((is_delete && st == NULL) ||
		    (!is_delete && st && !strcmp(st, "Succeeded"))) {
			cache_put(&w->cache, s->endpoint, ep, live, 0);
			w->cache.alone = alone;
			return 0;
		}
		/* Failed, Canceled, or not what the step made: ask it. */
		read_free(ep, live, OWN_BOTH);
		return wait_op(w, op, t0, deadline, rid);
	}
}

/* The refusals before traffic and deletions; 0 or a code (`msg` set). */
static const char *
safety_check(const struct amlops_step *s, const struct amlops_endpoint *ep,
    const struct amlops_live *live, char *msg, size_t len)
{
	if (s->aspect == AMLOPS_ASPECT_TRAFFIC ||
	    s->aspect == AMLOPS_ASPECT_MIRROR_TRAFFIC) {
		const cJSON *t;

		cJSON_ArrayForEach(t, s->after)
		{
			const char *st;

			if (!cJSON_IsNumber(t) || t->valuedouble <= 0)
				continue;
			st = amlops_live_deployment_state(live, t->string);
			if (st == NULL || strcmp(st, "Succeeded") != 0) {
				snprintf(msg, len,
				    "refusing to route %s to deployment '%s': "
				    "it is %s, not Succeeded",
				    s->aspect == AMLOPS_ASPECT_TRAFFIC
				        ? "traffic"
				        : "mirror traffic",
				    t->string, st ? st : "missing");
				return "NotReady";
			}
		}
	}
	if (s->action == AMLOPS_PLAN_DELETE &&
	    s->aspect == AMLOPS_ASPECT_DEPLOYMENT && ep) {
		int p = percent_of(ep->traffic, ep->ntraffic, s->deployment);
		int m = percent_of(ep->mirror, ep->nmirror, s->deployment);

		if (p > 0 || m > 0) {
			snprintf(msg, len,
			    "refusing to delete deployment '%s': it carries "
			    "%d%% of the traffic and %d%% of the mirror "
			    "traffic",
			    s->deployment, p, m);
			return "UnderTraffic";
		}
	}
	return NULL;
}

/*
 * Runs one step to its end; 0 when it succeeded. `last`: the job's last
 * step (what it reads after its write is for the final state only).
 */
static int
run_step(struct worker *w, size_t i, int last)
{
	struct run *r = w->run;
	struct amlops_apply *a = r->a;
	const struct amlops_step *s = &a->plan->steps[i];
	struct amlops_note_step *ns = &a->note->steps[i];
	struct amlops_endpoint *ep = NULL;
	struct amlops_live *live = NULL;
	struct amlops_plan *fresh = NULL;
	struct amlops_plan_opts popts = AMLOPS_PLAN_OPTS_INIT;
	struct amlops_spec ds = {0}, ls = {0};
	struct amlops_endpoint *dv[1], *lv[1];
	const struct amlops_step *fs = NULL;
	struct amlops_op *op = NULL;
	const char *scope[1] = {s->endpoint}, *code;
	int64_t t0 = amlops_now_ms(), deadline = t0 + r->timeout_ms, c0;
	char now[32], msg[512], rid[37] = "";
	int error, own = OWN_BOTH;

	amlops_time_rfc3339(now, amlops_wall_ms());
	pthread_mutex_lock(&r->mu);
	ns->status = AMLOPS_STEP_RUNNING;
	free(ns->started);
	ns->started = amlops_xstrdup(now);
	note_save(r);
	emit(r, AMLOPS_APPLY_STEP_START, ns, t0, NULL);
	pthread_mutex_unlock(&r->mu);

	if ((error = read_settled(w, s, ns, t0, deadline, &ep, &live, &own)) <
	    0)
		goto failed;

	/* Plan the endpoint again against what was just read. */
	dv[0] = amlops_spec_endpoint(a->desired, s->endpoint);
	ds.endpoints = dv;
	ds.nendpoints = dv[0] ? 1 : 0;
	lv[0] = ep;
	ls.endpoints = lv;
	ls.nendpoints = ep ? 1 : 0;
	popts.scope = scope;
	popts.nscope = 1;
	error = amlops_plan_build(&fresh, &ds, &ls, &popts);
	if (error >= 0)
		amlops_apply_add_repairs(fresh, &ds, &ls, &live, NULL, 0);
	if (error == AMLOPS_EINVALID) {
		char *m = amlops_plan_msg_format(&fresh->refusals[0]);

		pthread_mutex_lock(&r->mu);
		step_end(r, ns, t0, NULL, amlops_xstrdup("Refused"), m);
		emit(r, AMLOPS_APPLY_STEP_DONE, ns, t0, NULL);
		pthread_mutex_unlock(&r->mu);
		free(m);
		error = -1;
		goto done;
	}
	if (error < 0)
		goto failed;
	for (size_t k = 0; k < fresh->nsteps; k++)
		if (same_step(&fresh->steps[k], s)) {
			fs = &fresh->steps[k];
			break;
		}
	if (fs == NULL) {
		/* Its effect is live already (a rerun after a crash). */
		log_info(
		    "endpoint=%s step=%d/%zu aspect=%s result=already-live",
		    s->endpoint, ns->index, a->plan->nsteps, ns->aspect);
		pthread_mutex_lock(&r->mu);
		a->already_live++;
		step_end(r, ns, t0, NULL, NULL, NULL);
		emit(r, AMLOPS_APPLY_STEP_DONE, ns, t0, "already live");
		pthread_mutex_unlock(&r->mu);
		error = 0;
		goto done;
	}
	if ((code = safety_check(fs, ep, live, msg, sizeof(msg))) != NULL) {
		log_warnx("endpoint=%s step=%d/%zu aspect=%s result=refused "
		          "error=\"%s\"",
		    s->endpoint, ns->index, a->plan->nsteps, ns->aspect, msg);
		pthread_mutex_lock(&r->mu);
		step_end(r, ns, t0, NULL, amlops_xstrdup(code), msg);
		emit(r, AMLOPS_APPLY_STEP_DONE, ns, t0, NULL);
		pthread_mutex_unlock(&r->mu);
		error = -1;
		goto done;
	}

	w->b->files = w->files ? amlops_apply_files_get(w->files) : NULL;
	c0 = amlops_now_ms();
	error = amlops_backend_apply_step(w->b, fs, &op);
	w->service_ms += amlops_now_ms() - c0;
	if (error < 0)
		goto failed;
	snprintf(rid, sizeof(rid), "%s", op->request_id);
	pthread_mutex_lock(&r->mu);
	free(ns->request_id);
	ns->request_id = rid[0] ? amlops_xstrdup(rid) : NULL;
	note_save(r);
	pthread_mutex_unlock(&r->mu);
	error = wait_done(w, fs, ns, op, t0, deadline, rid, last);
	if (error < 0)
		goto failed;
	log_debug("endpoint=%s step=%d/%zu aspect=%s result=ok ms=%lld "
	          "request_id=%s",
	    s->endpoint, ns->index, a->plan->nsteps, ns->aspect,
	    (long long)(amlops_now_ms() - t0), rid);
	pthread_mutex_lock(&r->mu);
	step_end(r, ns, t0, rid, NULL, NULL);
	emit(r, AMLOPS_APPLY_STEP_DONE, ns, t0, NULL);
	pthread_mutex_unlock(&r->mu);
	error = 0;
	goto done;

failed : {
	const char *m = amlops_err_last();
	char *c = error_code_of(error, m, op);

	if (rid[0] == '\0')
		request_id_of(rid, m);
	log_warnx("endpoint=%s step=%d/%zu aspect=%s result=failed code=%s "
	          "error=\"%s\"",
	    s->endpoint, ns->index, a->plan->nsteps, ns->aspect, c, m);
	pthread_mutex_lock(&r->mu);
	step_end(r, ns, t0, rid, c, *m ? m : "failed");
	emit(r, AMLOPS_APPLY_STEP_DONE, ns, t0, NULL);
	pthread_mutex_unlock(&r->mu);
	error = error < 0 ? error : -1;
}
done:
	amlops_op_free(op);
	amlops_plan_free(fresh);
	read_free(ep, live, own);
	return error;
}

/*
 * An endpoint's final state into the note: the read that saw its last
 * operation end, else a new one of the endpoint alone (the note holds no
 * deployment). Nothing for an endpoint that is gone.
 */
static void
final_state(struct worker *w, const char *name)
{
	struct run *r = w->run;
	struct amlops_endpoint *ep = NULL;
	struct amlops_live *live = NULL;
	int own = OWN_BOTH;
	cJSON *t;

	if (!cache_take(&w->cache, name, &ep, &live, &own) || !own) {
		int64_t c0 = amlops_now_ms();
		int error =
		    w->b->ops->get_endpoint_only
		        ? amlops_backend_get_endpoint_only(
		              w->b, name, &ep, &live)
		        : amlops_backend_get_endpoint(w->b, name, &ep, &live);

		w->service_ms += amlops_now_ms() - c0;
		own = OWN_BOTH;
		if (error < 0) {
			if (error != AMLOPS_ENOTFOUND)
				log_debug("%s: endpoint=%s error=\"%s\"",
				    __func__, name, amlops_err_last());
			amlops_err_clear();
			return;
		}
	}
	if (ep == NULL)
		return;
	t = cJSON_CreateObject();
	for (size_t k = 0; k < ep->ntraffic; k++)
		cJSON_AddNumberToObject(
		    t, ep->traffic[k].deployment, ep->traffic[k].percent);
	pthread_mutex_lock(&r->mu);
	amlops_note_add_endpoint(r->a->note, ep->name, live->provisioning_state,
	    live->scoring_uri, t);
	pthread_mutex_unlock(&r->mu);
	cJSON_Delete(t);
	read_free(ep, live, own);
}

static int
cmp_note_endpoint(const void *x, const void *y)
{
	return strcmp(((const struct amlops_note_endpoint *)x)->name,
	    ((const struct amlops_note_endpoint *)y)->name);
}

static void
run_job(struct worker *w, const struct job *j)
{
	struct run *r = w->run;
	struct amlops_apply *a = r->a;
	const char *name = a->plan->steps[j->first].endpoint;
	int failed = 0;

	/* The prepared read, when the run follows it at once (--yes). */
	cache_drop(&w->cache);
	if (amlops_now_ms() - a->live_ms <= PREPARED_READ_MAX_AGE_MS) {
		size_t k;

		for (k = 0; k < a->live.nendpoints; k++)
			if (!strcmp(a->live.endpoints[k]->name, name))
				break;
		if (k < a->live.nendpoints && a->lives)
			cache_put(&w->cache, name, a->live.endpoints[k],
			    a->lives[k], 1);
		else if (k == a->live.nendpoints)
			cache_put(&w->cache, name, NULL, NULL, 1);
	}

	for (size_t i = j->first; i < j->first + j->count; i++) {
		if (r->opts->stop && *r->opts->stop) {
			struct amlops_note_step *ns = &r->a->note->steps[i];

			pthread_mutex_lock(&r->mu);
			ns->status = AMLOPS_STEP_SKIPPED;
			free(ns->error_code);
			free(ns->error_message);
			ns->error_code = amlops_xstrdup("Interrupted");
			ns->error_message = amlops_xstrdup(
			    "amlops was stopped before this step started");
			r->a->interrupted++;
			note_save(r);
			pthread_mutex_unlock(&r->mu);
			continue;
		}
		if (failed) {
			pthread_mutex_lock(&r->mu);
			r->a->note->steps[i].status = AMLOPS_STEP_SKIPPED;
			r->a->skipped++;
			note_save(r);
			pthread_mutex_unlock(&r->mu);
			continue;
		}
		if (run_step(w, i, i + 1 == j->first + j->count) < 0)
			failed = 1;
	}
	final_state(w, name);
	cache_drop(&w->cache);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->run;

	for (;;) {
		size_t j;

		pthread_mutex_lock(&r->mu);
		j = r->next++;
		pthread_mutex_unlock(&r->mu);
		if (j >= r->njobs)
			break;
		run_job(w, &r->jobs[j]);
	}
	return NULL;
}

/* A ref lock older than this was left by a process that died. */
#define STALE_LOCK_MS (60 * 1000)

/*
 * Removes `ref`'s lock file when it is older than STALE_LOCK_MS: apply
 * holds it for milliseconds, so an old one was left by a kill -9 in the
 * middle of a write, and would fail every later note write (git does not
 * clear it itself).
 */
static void
clear_stale_lock(struct amlops_source *src, const char *ref)
{
	const char *dir = amlops_source_gitdir(src);
	size_t n = strlen(dir);
	struct stat st;
	char *path;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	path = amlops_xasprintf("%.*s/%s.lock", (int)n, dir, ref);

	if (stat(path, &st) == 0 &&
	    amlops_wall_ms() - (int64_t)st.st_mtime * 1000 > STALE_LOCK_MS) {
		if (unlink(path) == 0)
			log_warnx("lock=%s result=removed reason=\"older than "
			          "%d s: left by a process that died\"",
			    path, STALE_LOCK_MS / 1000);
	}
	free(path);
}

/*
 * 0 when every registered asset (`azureml:name:version`, name@latest)
 * the desired deployments in scope name exists on the target, else the
 * first that does not, as "FILE:LINE:COL: deployment 'e/d': ..." with
 * where the reference was written. A backend that cannot check is not
 * asked: the step's request would find out.
 */
static int
check_refs(struct amlops_apply *a, struct amlops_backend *b)
{
	const struct amlops_spec *d = a->desired;
	int error;

	for (size_t i = 0; d && i < d->nendpoints; i++) {
		const struct amlops_endpoint *ep = d->endpoints[i];

		if (a->scope && !contains(a->scope, a->nscope, ep->name))
			continue;
		for (size_t k = 0; k < ep->ndeployments; k++) {
			const struct amlops_deployment *dep =
			    ep->deployments[k];
			const struct amlops_asset *assets[] = {
			    &dep->model,
			    &dep->code,
			    &dep->environment.asset,
			};

			/* one asset at a time, to say where it is written */
			for (size_t n = 0; n < AMLOPS_ARRAY_SIZE(assets); n++) {
				struct amlops_deployment one = *dep;
				const struct amlops_loc *loc = &assets[n]->loc;

				if (assets[n]->kind != AMLOPS_ASSET_REF)
					continue;
				if (n != 0)
					one.model.kind = AMLOPS_ASSET_NONE;
				if (n != 1)
					one.code.kind = AMLOPS_ASSET_NONE;
				if (n != 2)
					one.environment.asset.kind =
					    AMLOPS_ASSET_NONE;
				error = amlops_backend_check_refs(b, &one);
				if (error == AMLOPS_ENOTSUPP) {
					amlops_err_clear();
					return 0;
				}
				if (error == 0)
					continue;
				if (loc->file)
					amlops_err_prefix(error,
					    "%s:%u:%u: deployment '%s/%s'",
					    loc->file, loc->line, loc->col,
					    ep->name, dep->name);
				else
					amlops_err_prefix(error,
					    "deployment '%s/%s'", ep->name,
					    dep->name);
				return error;
			}
		}
	}
	return 0;
}

static void
finish(struct run *r)
{
	char now[32];

	amlops_time_rfc3339(now, amlops_wall_ms());
	free(r->a->note->finished);
	r->a->note->finished = amlops_xstrdup(now);
}

int
amlops_apply_run(struct amlops_apply *a, struct amlops_source *src,
    struct amlops_backend *b, const struct amlops_apply_opts *opts)
{
	struct run r;
	struct worker *workers = NULL;
	pthread_t *threads = NULL;
	struct amlops_note *old = NULL;
	unsigned nworkers = 1, started = 0;
	int error = 0, resumed = 0;
	int64_t t0 = amlops_now_ms();

	memset(&r, 0, sizeof(r));
	r.a = a;
	r.src = src;
	r.opts = opts;
	r.notes_ref = opts->notes_ref               ? opts->notes_ref
	              : a->cfg && a->cfg->notes_ref ? a->cfg->notes_ref
	                                            : AMLOPS_NOTES_REF;
	r.timeout_ms = opts->step_timeout_ms > 0 ? opts->step_timeout_ms
	                                         : AMLOPS_APPLY_STEP_TIMEOUT_MS;
	r.busy_poll_ms = opts->busy_poll_ms > 0 ? opts->busy_poll_ms : 1000;
	pthread_mutex_init(&r.mu, NULL);

	amlops_note_free(a->note);
	a->note = NULL;
	clear_stale_lock(src, r.notes_ref);
	{
		char *applied = amlops_xasprintf(
		    "%s%s", AMLOPS_APPLIED_PREFIX, opts->target);

		clear_stale_lock(src, applied);
		free(applied);
	}
	error = amlops_status_note_read(&old, src, r.notes_ref, a->commit);
	if (error == AMLOPS_ENOTFOUND) {
		amlops_err_clear();
		old = NULL;
	} else if (error < 0) {
		/* An unreadable note is not lost: it goes into attempts. */
		log_warnx("note=%.12s result=unreadable error=\"%s\"",
		    a->commit, amlops_err_last());
		amlops_err_clear();
		old = NULL;
	}
	error = 0;
	if (old && a->plan->nsteps == 0 &&
	    (old->result == AMLOPS_NOTE_SUCCEEDED ||
	        old->result == AMLOPS_NOTE_NO_CHANGES)) {
		/* A finished apply, run again: nothing to do or to record. */
		a->note = old;
		error = amlops_source_applied_set(src, opts->target, a->commit);
		goto out;
	}
	if (old) {
		resumed = 1;
		amlops_note_restart(old);
		a->note = old;
		free(a->note->target.name);
		a->note->target.name = amlops_xstrdup(opts->target);
	} else {
		a->note = amlops_note_new(a->commit, opts->target);
	}
	free(a->note->target.url);
	a->note->target.url = amlops_xstrdup(opts->target_url);
	a->note->plan = amlops_plan_to_json(
	    a->plan, a->base[0] ? a->base : NULL, a->commit);
	for (size_t i = 0; i < a->plan->nsteps; i++) {
		const struct amlops_step *s = &a->plan->steps[i];
		struct amlops_note_step *ns =
		    amlops_note_add_step(a->note, s->endpoint, s->deployment,
		        amlops_plan_action_name(s->action),
		        amlops_plan_aspect_name(s->aspect));

		ns->index = (int)i + 1;
		ns->ms = -1;
	}
	note_save(&r);
	if (r.note_error) {
		error = amlops_err_set(r.note_error, "%s", r.note_msg);
		goto out;
	}
	if (a->plan->nsteps == 0) {
		/*
		 * Resuming an attempt that did all its work before it was
		 * interrupted: the commit is applied, the attempts say how.
		 */
		a->note->result =
		    resumed ? AMLOPS_NOTE_SUCCEEDED : AMLOPS_NOTE_NO_CHANGES;
		finish(&r);
		note_save(&r);
		error = amlops_source_applied_set(src, opts->target, a->commit);
		goto out;
	}

	/*
	 * Registered references before any step: a deployment that names
	 * a version the target lacks fails the apply with no request sent.
	 */
	if ((error = check_refs(a, b)) < 0) {
		char *m = amlops_xstrdup(amlops_err_last());

		for (size_t i = 0; i < a->note->nsteps; i++) {
			struct amlops_note_step *ns = &a->note->steps[i];

			ns->status = AMLOPS_STEP_SKIPPED;
			free(ns->error_code);
			free(ns->error_message);
			ns->error_code =
			    error == AMLOPS_ENOTFOUND
			        ? amlops_xstrdup("ReferenceNotFound")
			        : error_code_of(error, m, NULL);
			ns->error_message = amlops_xstrdup(m);
		}
		a->note->result = AMLOPS_NOTE_FAILED;
		finish(&r);
		note_save(&r);
		error = amlops_err_set(error, "%s", m);
		free(m);
		goto out;
	}

	/* One job per endpoint: its steps are consecutive in the plan. */
	r.jobs = amlops_xcalloc(a->plan->nsteps, sizeof(*r.jobs));
	for (size_t i = 0; i < a->plan->nsteps; i++) {
		if (r.njobs == 0 ||
		    strcmp(a->plan->steps[i].endpoint,
		        a->plan->steps[r.jobs[r.njobs - 1].first].endpoint)) {
			r.jobs[r.njobs].first = i;
			r.njobs++;
		}
		r.jobs[r.njobs - 1].count++;
	}
	if (opts->jobs > 1 && opts->open_backend)
		nworkers = opts->jobs;
	if (nworkers > r.njobs)
		nworkers = (unsigned)r.njobs;
	workers = amlops_xcalloc(nworkers, sizeof(*workers));
	threads = amlops_xcalloc(nworkers, sizeof(*threads));
	for (unsigned k = 0; k < nworkers; k++) {
		workers[k].run = &r;
		if (k == 0)
			workers[k].b = b;
		else if ((error = opts->open_backend(
		              opts->backend_ctx, &workers[k].b)) < 0)
			goto join;
		if ((error = amlops_apply_files_open(&workers[k].files,
		         amlops_source_gitdir(src), a->commit)) < 0)
			goto join;
	}
	if (nworkers == 1) {
		worker_main(&workers[0]);
	} else {
		for (started = 0; started < nworkers; started++)
			if (pthread_create(&threads[started], NULL, worker_main,
			        &workers[started]) != 0) {
				error = amlops_err_sys(
				    AMLOPS_ERROR, "cannot start a worker");
				break;
			}
		/* The workers already started take over every job. */
		if (started == 0)
			goto join;
		error = 0;
	}
join:
	for (unsigned k = 0; k < started; k++)
		pthread_join(threads[k], NULL);
	for (unsigned k = 0; k < nworkers; k++) {
		cache_drop(&workers[k].cache);
		a->service_ms += workers[k].service_ms;
		amlops_apply_files_free(workers[k].files);
		if (k > 0 && workers[k].b)
			amlops_backend_free(workers[k].b);
	}
	if (error < 0) {
		/* Nothing ran: say so in the note. */
		char *m = amlops_xstrdup(amlops_err_last());

		a->note->result = AMLOPS_NOTE_FAILED;
		finish(&r);
		note_save(&r);
		error = amlops_err_set(error, "%s", m);
		free(m);
		goto out;
	}
	if (a->note->nendpoints > 1)
		qsort(a->note->endpoints, a->note->nendpoints,
		    sizeof(*a->note->endpoints), cmp_note_endpoint);
	a->note->result = a->failed || a->interrupted ? AMLOPS_NOTE_FAILED
	                                              : AMLOPS_NOTE_SUCCEEDED;
	finish(&r);
	note_save(&r);
	if (a->interrupted && !a->failed) {
		error = amlops_err_set(AMLOPS_ERROR,
		    "interrupted: %zu of %zu step%s not started",
		    a->interrupted, a->plan->nsteps,
		    a->plan->nsteps == 1 ? "" : "s");
		goto out;
	}
	if (a->failed) {
		error = amlops_err_set(AMLOPS_EBACKEND,
		    "%zu of %zu step%s failed: %s", a->failed, a->plan->nsteps,
		    a->plan->nsteps == 1 ? "" : "s", r.first_failure);
		goto out;
	}
	if (r.note_error) {
		error = amlops_err_set(r.note_error, "%s", r.note_msg);
		goto out;
	}
	error = amlops_source_applied_set(src, opts->target, a->commit);
out:
	a->run_ms = amlops_now_ms() - t0;
	free(workers);
	free(threads);
	free(r.jobs);
	free(r.note_msg);
	free(r.first_failure);
	pthread_mutex_destroy(&r.mu);
	return error;
}
