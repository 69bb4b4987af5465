/*
 * The scoring front of `amlops host`: libmicrohttpd with a thread per
 * connection (each request thread hands its body to a worker and waits for
 * the answer, see rt_dispatch()), endpoints and their auth, the traffic
 * split and mirror, and /metrics. Unknown endpoint, or no deployment to
 * route to: 404; bad or missing key or token: 401, saying no more; body
 * over the limit: 413; the rest of the codes come from rt_dispatch().
 *
 *   POST /endpoints/NAME/score   score (Authorization: Bearer KEY|TOKEN)
 *   GET  /metrics                Prometheus text
 *
 * Traffic is split by smooth weighted round robin, so a 50/50 split is
 * exact over any even number of requests; the azureml-model-deployment
 * header sends a request to that deployment even when it has 0% (as
 * Azure). Mirror traffic copies its percentage of the traffic-routed
 * requests to the mirror deployment on a background thread and discards
 * the answers (at most RT_MIRROR_QUEUE wait; more are dropped).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/util.h"
#include "local/runtime_int.h"

#define RT_MIRROR_QUEUE 256

struct req_ctx {
	struct amlops_buf body;
	int too_large;
	int64_t t0;
};

void
rt_ep_free(struct rt_ep *ep)
{
	size_t i;

	if (!ep)
		return;
	free(ep->name);
	free(ep->key1);
	free(ep->key2);
	for (i = 0; i < ep->ntraffic; i++)
		free(ep->traffic[i].deployment);
	free(ep->traffic);
	for (i = 0; i < ep->nmirror; i++)
		free(ep->mirror[i].deployment);
	free(ep->mirror);
	for (i = 0; i < ep->ntokens; i++)
		free(ep->tokens[i].token);
	free(ep->tokens);
	free(ep);
}

static struct rt_ep *
ep_find(struct amlops_runtime *rt, const char *name)
{
	struct rt_ep *ep;

	for (ep = rt->eps; ep; ep = ep->next)
		if (strcmp(ep->name, name) == 0)
			return ep;
	return NULL;
}

static int
copy_routes(struct rt_route **out, size_t *nout,
    const struct amlops_runtime_route *in, size_t n, const char *what)
{
	size_t i, total = 0;

	*out = NULL;
	*nout = 0;
	for (i = 0; i < n; i++) {
		if (!in[i].deployment || !*in[i].deployment ||
		    in[i].percent < 0 || in[i].percent > 100)
			return amlops_err_set(AMLOPS_EINVALID,
			    "%s entry %zu: needs a deployment and a percent "
			    "in 0..100",
			    what, i + 1);
		total += (size_t)in[i].percent;
	}
	if (total > 100)
		return amlops_err_set(AMLOPS_EINVALID,
		    "%s adds up to %zu, more than 100", what, total);
	if (n == 0)
		return 0;
	*out = amlops_xcalloc(n, sizeof(**out));
	for (i = 0; i < n; i++) {
		(*out)[i].deployment = amlops_xstrdup(in[i].deployment);
		(*out)[i].percent = in[i].percent;
	}
	*nout = n;
	return 0;
}

int
amlops_runtime_set_endpoint(
    struct amlops_runtime *rt, const struct amlops_runtime_endpoint *def)
{
	struct rt_ep *ep, *old;
	int error;

	if (!def->name || !*def->name)
		return amlops_err_set(AMLOPS_EINVALID, "endpoint needs a name");
	if (def->auth == AMLOPS_RUNTIME_AUTH_KEY &&
	    (!def->primary_key || !*def->primary_key))
		return amlops_err_set(AMLOPS_EINVALID,
		    "endpoint '%s': key auth needs a primary key", def->name);
	ep = amlops_xcalloc(1, sizeof(*ep));
	ep->name = amlops_xstrdup(def->name);
	ep->auth = def->auth;
	if (def->primary_key && *def->primary_key)
		ep->key1 = amlops_xstrdup(def->primary_key);
	if (def->secondary_key && *def->secondary_key)
		ep->key2 = amlops_xstrdup(def->secondary_key);
	if ((error = copy_routes(&ep->traffic, &ep->ntraffic, def->traffic,
	         def->ntraffic, "traffic")) < 0 ||
	    (error = copy_routes(&ep->mirror, &ep->nmirror, def->mirror,
	         def->nmirror, "mirror traffic")) < 0) {
		rt_ep_free(ep);
		return amlops_err_prefix(error, "endpoint '%s'", def->name);
	}

	pthread_mutex_lock(&rt->mu);
	if ((old = ep_find(rt, def->name))) {
		/* Tokens and counters outlive a change of routing. */
		ep->tokens = old->tokens;
		ep->ntokens = old->ntokens;
		old->tokens = NULL;
		old->ntokens = 0;
		pthread_mutex_lock(&rt->stats_mu);
		ep->stats = old->stats;
		pthread_mutex_unlock(&rt->stats_mu);
		ep->next = old->next;
		if (rt->eps == old) {
			rt->eps = ep;
		} else {
			struct rt_ep *p;

			for (p = rt->eps; p->next != old; p = p->next)
				;
			p->next = ep;
		}
		rt_ep_free(old);
	} else {
		ep->next = rt->eps;
		rt->eps = ep;
	}
	pthread_mutex_unlock(&rt->mu);
	return 0;
}

int
amlops_runtime_remove_endpoint(struct amlops_runtime *rt, const char *name)
{
	struct rt_ep **pp, *ep;

	pthread_mutex_lock(&rt->mu);
	for (pp = &rt->eps; (ep = *pp); pp = &ep->next)
		if (strcmp(ep->name, name) == 0)
			break;
	if (!ep) {
		pthread_mutex_unlock(&rt->mu);
		return amlops_err_set(
		    AMLOPS_ENOTFOUND, "no endpoint '%s'", name);
	}
	*pp = ep->next;
	rt_remove_endpoint_deps(rt, name);
	pthread_mutex_unlock(&rt->mu);
	rt_ep_free(ep);
	return 0;
}

int
amlops_runtime_add_token(struct amlops_runtime *rt, const char *endpoint,
    const char *token, int64_t expires_wall_ms)
{
	struct rt_ep *ep;
	int64_t now = amlops_wall_ms();
	size_t i, j;

	if (!token || !*token)
		return amlops_err_set(AMLOPS_EINVALID, "empty token");
	pthread_mutex_lock(&rt->mu);
	if (!(ep = ep_find(rt, endpoint))) {
		pthread_mutex_unlock(&rt->mu);
		return amlops_err_set(
		    AMLOPS_ENOTFOUND, "no endpoint '%s'", endpoint);
	}
	/* Forget expired tokens while here. */
	for (i = j = 0; i < ep->ntokens; i++) {
		if (ep->tokens[i].expires_wall_ms <= now)
			free(ep->tokens[i].token);
		else
			ep->tokens[j++] = ep->tokens[i];
	}
	ep->tokens = amlops_xrealloc(ep->tokens, (j + 1) * sizeof(*ep->tokens));
	ep->tokens[j].token = amlops_xstrdup(token);
	ep->tokens[j].expires_wall_ms = expires_wall_ms;
	ep->ntokens = j + 1;
	pthread_mutex_unlock(&rt->mu);
	return 0;
}

/* Whether the Authorization header lets the caller in; rt->mu held. */
static int
authorized(struct rt_ep *ep, const char *header)
{
	const char *cred;
	int64_t now;
	size_t i;
	int ok = 0;

	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return 0;
	cred = header + 7;
	while (*cred == ' ')
		cred++;
	if (!*cred)
		return 0;
	if (ep->auth == AMLOPS_RUNTIME_AUTH_KEY) {
		/* Both compared, always, so timing says nothing. */
		ok |= ep->key1 && amlops_consttime_streq(cred, ep->key1);
		ok |= ep->key2 && amlops_consttime_streq(cred, ep->key2);
		return ok;
	}
	now = amlops_wall_ms();
	for (i = 0; i < ep->ntokens; i++)
		ok |= amlops_consttime_streq(cred, ep->tokens[i].token) &&
		      ep->tokens[i].expires_wall_ms > now;
	return ok;
}

/* Smooth weighted round robin over the routes with weight; rt->mu held. */
static const char *
pick_route(struct rt_ep *ep)
{
	struct rt_route *best = NULL;
	size_t i;
	int total = 0;

	for (i = 0; i < ep->ntraffic; i++) {
		if (ep->traffic[i].percent <= 0)
			continue;
		ep->traffic[i].current += ep->traffic[i].percent;
		total += ep->traffic[i].percent;
		if (!best || ep->traffic[i].current > best->current)
			best = &ep->traffic[i];
	}
	if (!best)
		return NULL;
	best->current -= total;
	return best->deployment;
}

static void
mirror_enqueue(struct amlops_runtime *rt, const char *endpoint,
    const char *deployment, const char *ctype, const char *body, size_t len)
{
	struct rt_mirror_job *job;

	pthread_mutex_lock(&rt->mirror_mu);
	if (rt->mirror_len >= RT_MIRROR_QUEUE || rt->mirror_stop) {
		pthread_mutex_unlock(&rt->mirror_mu);
		return;
	}
	job = amlops_xcalloc(1, sizeof(*job));
	job->endpoint = amlops_xstrdup(endpoint);
	job->deployment = amlops_xstrdup(deployment);
	job->ctype = amlops_xstrdup(ctype);
	job->body = amlops_xmalloc(len + 1);
	memcpy(job->body, body, len);
	job->len = len;
	if (rt->mirror_tail)
		rt->mirror_tail->next = job;
	else
		rt->mirror_head = job;
	rt->mirror_tail = job;
	rt->mirror_len++;
	pthread_cond_signal(&rt->mirror_cv);
	pthread_mutex_unlock(&rt->mirror_mu);
}

/* Whether this request is one of the mirror's share; rt->mu held. */
static int
mirror_take(struct rt_route *m)
{
	uint64_t n = m->seen++;

	return (n + 1) * (uint64_t)m->percent / 100 >
	       n * (uint64_t)m->percent / 100;
}

static enum MHD_Result
reply(struct MHD_Connection *con, int status, const char *ctype, char *body,
    size_t len, const char *deployment, int model_status)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char num[16];

	/* Takes ownership of `body`. */
	r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	if (ctype)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (deployment)
		MHD_add_response_header(
		    r, "azureml-model-deployment", deployment);
	if (model_status) {
		snprintf(num, sizeof(num), "%d", model_status);
		MHD_add_response_header(
		    r, "ms-azureml-model-error-statuscode", num);
		MHD_add_response_header(
		    r, "ms-azureml-model-error-reason", "model_error");
	}
	ret = MHD_queue_response(con, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
reply_msg(struct MHD_Connection *con, int status, const char *msg)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	size_t len;

	amlops_buf_printf(&b, "{\"message\": \"%s\"}", msg);
	len = b.len;
	return reply(con, status, "application/json", amlops_buf_detach(&b),
	    len, NULL, 0);
}

static enum MHD_Result
serve_metrics(struct amlops_runtime *rt, struct MHD_Connection *con)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	size_t len;

	if (amlops_runtime_metrics(rt, &b) < 0) {
		amlops_buf_release(&b);
		return reply_msg(con, 500, "cannot render metrics");
	}
	len = b.len;
	return reply(con, 200, "text/plain; version=0.0.4",
	    amlops_buf_detach(&b), len, NULL, 0);
}

/* "/endpoints/NAME/score" -> NAME into out[256]; 0 when it is not. */
static int
score_path(const char *url, char *out, size_t outlen)
{
	const char *p, *slash;

	if (strncmp(url, "/endpoints/", 11) != 0)
		return 0;
	p = url + 11;
	if (!(slash = strchr(p, '/')) || slash == p ||
	    (size_t)(slash - p) >= outlen || strcmp(slash, "/score") != 0)
		return 0;
	memcpy(out, p, (size_t)(slash - p));
	out[slash - p] = '\0';
	return 1;
}

static enum MHD_Result
score(struct amlops_runtime *rt, struct MHD_Connection *con, const char *name,
    struct req_ctx *ctx)
{
	struct rt_result res;
	struct rt_ep *ep;
	struct rt_dep *d = NULL;
	const char *auth, *want, *ctype, *chosen = NULL;
	char depname[256] = "";
	enum MHD_Result ret;
	int64_t t0 = ctx->t0;
	int status;
	size_t i;

	auth = MHD_lookup_connection_value(
	    con, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	want = MHD_lookup_connection_value(
	    con, MHD_HEADER_KIND, "azureml-model-deployment");
	ctype = MHD_lookup_connection_value(
	    con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!ctype)
		ctype = "";

	pthread_mutex_lock(&rt->mu);
	if (!(ep = ep_find(rt, name))) {
		pthread_mutex_unlock(&rt->mu);
		return reply_msg(con, 404, "endpoint not found");
	}
	if (!authorized(ep, auth)) {
		status = 401;
		goto unrouted;
	}
	if (ctx->too_large) {
		status = 413;
		goto unrouted;
	}
	if (want && *want) {
		chosen = want;
	} else if (!(chosen = pick_route(ep))) {
		status = 404;
		goto unrouted;
	}
	snprintf(depname, sizeof(depname), "%s", chosen);
	if (!(d = rt_dep_find(rt, name, depname))) {
		status = want && *want ? 404 : 503;
		goto unrouted;
	}
	if (!(want && *want)) {
		for (i = 0; i < ep->nmirror; i++)
			if (ep->mirror[i].percent > 0 &&
			    mirror_take(&ep->mirror[i]))
				mirror_enqueue(rt, name,
				    ep->mirror[i].deployment, ctype,
				    ctx->body.ptr ? ctx->body.ptr : "",
				    ctx->body.len);
	}
	pthread_mutex_unlock(&rt->mu);

	rt_dispatch(d, ctype, ctx->body.ptr ? ctx->body.ptr : "", ctx->body.len,
	    t0, &res);
	rt_dep_unref(d);
	ret = reply(con, res.status, res.ctype, res.body, res.len, depname,
	    res.model_status);
	res.body = NULL;
	rt_result_release(&res);
	return ret;

unrouted:
	rt_stats_record(rt, &ep->stats, status, amlops_now_ms() - t0, -1);
	pthread_mutex_unlock(&rt->mu);
	switch (status) {
	case 401:
		return reply_msg(con, 401, "unauthorized");
	case 413:
		return reply_msg(con, 413, "request body too large");
	case 503:
		return reply_msg(con, 503,
		    "the deployment named by the traffic is not running");
	default:
		break;
	}
	if (want && *want)
		return reply_msg(
		    con, 404, "no deployment with that name in this endpoint");
	return reply_msg(con, 404,
	    "no valid deployments to route to: give a deployment positive "
	    "traffic or name one with the azureml-model-deployment header");
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *con, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_size, void **con_cls)
{
	struct amlops_runtime *rt = cls;
	struct req_ctx *ctx = *con_cls;
	const char *cl;
	char name[256];
	unsigned long long n;

	if (!ctx) {
		ctx = amlops_xcalloc(1, sizeof(*ctx));
		amlops_buf_init(&ctx->body, rt->max_body);
		ctx->t0 = amlops_now_ms();
		cl = MHD_lookup_connection_value(
		    con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		*con_cls = ctx;
		/* Said too large up front: answer before reading it. */
		if (cl && sscanf(cl, "%llu", &n) == 1 && n > rt->max_body)
			return reply_msg(con, 413, "request body too large");
		return MHD_YES;
	}
	if (*upload_size) {
		if (!ctx->too_large &&
		    amlops_buf_add(&ctx->body, upload_data, *upload_size) < 0) {
			ctx->too_large = 1;
			amlops_buf_release(&ctx->body);
			amlops_err_clear();
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/metrics") == 0) {
		if (strcmp(method, "GET") != 0)
			return reply_msg(con, 405, "method not allowed");
		return serve_metrics(rt, con);
	}
	if (!score_path(url, name, sizeof(name)))
		return reply_msg(con, 404, "not found");
	if (strcmp(method, "POST") != 0)
		return reply_msg(con, 405, "method not allowed");
	return score(rt, con, name, ctx);
}

static void
on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req_ctx *ctx = *con_cls;

	if (!ctx)
		return;
	amlops_buf_release(&ctx->body);
	free(ctx);
	*con_cls = NULL;
}

int
rt_front_start(
    struct amlops_runtime *rt, const struct amlops_runtime_opts *opts)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)opts->port);
	if (opts->port < 0 || opts->port > 65535)
		return amlops_err_set(
		    AMLOPS_EINVALID, "bad port %d", opts->port);
	if (inet_pton(AF_INET, rt->bind, &sa.sin_addr) != 1)
		return amlops_err_set(AMLOPS_EINVALID,
		    "bad bind address '%s' (want an IPv4 address)", rt->bind);
	rt->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
	                               MHD_USE_INTERNAL_POLLING_THREAD |
	                               MHD_USE_POLL | MHD_USE_ITC,
	    0, NULL, NULL, on_request, rt, MHD_OPTION_SOCK_ADDR, &sa,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, rt,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
	if (!rt->mhd)
		return amlops_err_sys(AMLOPS_ERROR,
		    "cannot start the scoring front on %s:%d", rt->bind,
		    opts->port);
	info = MHD_get_daemon_info(rt->mhd, MHD_DAEMON_INFO_BIND_PORT);
	rt->port = info ? info->port : opts->port;
	snprintf(rt->base_url, sizeof(rt->base_url), "http://%s:%d", rt->bind,
	    rt->port);
	log_info("event=scoring_front url=%s", rt->base_url);
	return 0;
}

void
rt_front_stop(struct amlops_runtime *rt)
{
	if (rt->mhd)
		MHD_stop_daemon(rt->mhd);
	rt->mhd = NULL;
}

const char *
amlops_runtime_base_url(const struct amlops_runtime *rt)
{
	return rt->base_url;
}

int
amlops_runtime_port(const struct amlops_runtime *rt)
{
	return rt->port;
}

static void
print_hist(struct amlops_buf *out, const char *metric, const char *labels,
    const struct rt_hist *h)
{
	uint64_t cum = 0;
	size_t i;

	for (i = 0; i < RT_NBUCKETS; i++) {
		cum += h->bucket[i];
		amlops_buf_printf(out, "%s_bucket{%s,le=\"%g\"} %llu\n", metric,
		    labels, rt_buckets[i], (unsigned long long)cum);
	}
	amlops_buf_printf(out, "%s_bucket{%s,le=\"+Inf\"} %llu\n", metric,
	    labels, (unsigned long long)h->count);
	amlops_buf_printf(out, "%s_sum{%s} %.6f\n", metric, labels, h->sum);
	amlops_buf_printf(out, "%s_count{%s} %llu\n", metric, labels,
	    (unsigned long long)h->count);
}

enum { M_REQUESTS, M_LATENCY, M_QUEUE };

int
rt_stats_print(struct amlops_buf *out, const struct rt_stats *s,
    const char *endpoint, const char *deployment, int which)
{
	char labels[600];
	int i;

	/* Names follow Azure's rules (letters, digits, '-'): no escaping. */
	snprintf(labels, sizeof(labels), "endpoint=\"%s\",deployment=\"%s\"",
	    endpoint, deployment);
	switch (which) {
	case M_REQUESTS:
		for (i = 0; i < s->ncodes; i++)
			amlops_buf_printf(out,
			    "amlops_requests_total{%s,code=\"%d\"} %llu\n",
			    labels, s->code[i],
			    (unsigned long long)s->count[i]);
		break;
	case M_LATENCY:
		if (s->latency.count)
			print_hist(out, "amlops_request_duration_seconds",
			    labels, &s->latency);
		break;
	case M_QUEUE:
		if (s->queue.count)
			print_hist(out, "amlops_queue_wait_seconds", labels,
			    &s->queue);
		break;
	}
	return 0;
}

int
amlops_runtime_metrics(struct amlops_runtime *rt, struct amlops_buf *out)
{
	static const char *const help[] = {
	    "# HELP amlops_requests_total Scoring requests by endpoint, "
	    "deployment and status code (deployment \"\": not routed).\n"
	    "# TYPE amlops_requests_total counter\n",
	    "# HELP amlops_request_duration_seconds Time from the request to "
	    "the answer (Azure Monitor: request latency).\n"
	    "# TYPE amlops_request_duration_seconds histogram\n",
	    "# HELP amlops_queue_wait_seconds Time a request waited for a "
	    "free worker.\n"
	    "# TYPE amlops_queue_wait_seconds histogram\n",
	};
	struct rt_ep *ep;
	struct rt_dep *d;
	struct rt_worker *w;
	size_t i;
	int which, ready, total;

	pthread_mutex_lock(&rt->mu);
	for (which = M_REQUESTS; which <= M_QUEUE; which++) {
		amlops_buf_puts(out, help[which]);
		pthread_mutex_lock(&rt->stats_mu);
		for (ep = rt->eps; ep; ep = ep->next)
			rt_stats_print(out, &ep->stats, ep->name, "", which);
		pthread_mutex_unlock(&rt->stats_mu);
		for (d = rt->deps; d; d = d->next) {
			pthread_mutex_lock(&d->mu);
			rt_stats_print(
			    out, &d->stats, d->endpoint, d->name, which);
			pthread_mutex_unlock(&d->mu);
		}
	}
	amlops_buf_puts(out,
	    "# HELP amlops_workers_ready Workers that finished init() and "
	    "take requests.\n"
	    "# TYPE amlops_workers_ready gauge\n");
	for (d = rt->deps; d; d = d->next) {
		pthread_mutex_lock(&d->mu);
		for (i = 0, ready = 0; i < d->nw; i++) {
			w = d->w[i];
			if (w->gen == d->gen && !w->retiring && !w->killed &&
			    w->state == RT_W_READY)
				ready++;
		}
		pthread_mutex_unlock(&d->mu);
		amlops_buf_printf(out,
		    "amlops_workers_ready{endpoint=\"%s\",deployment=\"%s\"} "
		    "%d\n",
		    d->endpoint, d->name, ready);
	}
	amlops_buf_puts(out,
	    "# HELP amlops_workers_desired Workers the deployment asks for "
	    "(instance_count).\n"
	    "# TYPE amlops_workers_desired gauge\n");
	for (d = rt->deps; d; d = d->next) {
		pthread_mutex_lock(&d->mu);
		total = d->instances;
		pthread_mutex_unlock(&d->mu);
		amlops_buf_printf(out,
		    "amlops_workers_desired{endpoint=\"%s\",deployment=\"%s\"} "
		    "%d\n",
		    d->endpoint, d->name, total);
	}
	amlops_buf_puts(out,
	    "# HELP amlops_worker_restarts_total Workers that died and were "
	    "started again.\n"
	    "# TYPE amlops_worker_restarts_total counter\n");
	for (d = rt->deps; d; d = d->next) {
		pthread_mutex_lock(&d->mu);
		amlops_buf_printf(out,
		    "amlops_worker_restarts_total{endpoint=\"%s\","
		    "deployment=\"%s\"} %llu\n",
		    d->endpoint, d->name, (unsigned long long)d->restarts);
		pthread_mutex_unlock(&d->mu);
	}
	pthread_mutex_unlock(&rt->mu);
	return 0;
}
