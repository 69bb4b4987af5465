/*
 * The backend calls: each checks its slot and says which backend lacks
 * it. See amlops/backend.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "amlops/backend.h"
#include "amlops/err.h"

#define SLOT(b, f, what)                                                       \
	do {                                                                   \
		if ((b)->ops->f == NULL)                                       \
			return amlops_err_set(AMLOPS_ENOTSUPP,                 \
			    "the %s backend cannot %s", (b)->ops->name, what); \
	} while (0)

int
amlops_backend_get_endpoint(struct amlops_backend *b, const char *name,
    struct amlops_endpoint **out, struct amlops_live **live)
{
	SLOT(b, get_endpoint, "read endpoints");
	return b->ops->get_endpoint(b, name, out, live);
}

int
amlops_backend_get_endpoint_only(struct amlops_backend *b, const char *name,
    struct amlops_endpoint **out, struct amlops_live **live)
{
	SLOT(b, get_endpoint_only, "read an endpoint alone");
	return b->ops->get_endpoint_only(b, name, out, live);
}

int
amlops_backend_get_deployment_states(struct amlops_backend *b,
    const char *endpoint, struct amlops_live_deployment **out, size_t *n)
{
	SLOT(b, get_deployment_states, "read deployment states alone");
	return b->ops->get_deployment_states(b, endpoint, out, n);
}

int
amlops_backend_list_endpoints(
    struct amlops_backend *b, char ***names, size_t *n)
{
	SLOT(b, list_endpoints, "list endpoints");
	return b->ops->list_endpoints(b, names, n);
}

int
amlops_backend_apply_step(struct amlops_backend *b, const struct amlops_step *s,
    struct amlops_op **out)
{
	SLOT(b, apply_step, "apply steps");
	return b->ops->apply_step(b, s, out);
}

int
amlops_backend_put_endpoint(struct amlops_backend *b,
    const struct amlops_endpoint *ep, unsigned parts, struct amlops_op **out)
{
	SLOT(b, put_endpoint, "create or update endpoints");
	return b->ops->put_endpoint(b, ep, parts, out);
}

int
amlops_backend_put_deployment(struct amlops_backend *b,
    const struct amlops_endpoint *ep, const struct amlops_deployment *dep,
    struct amlops_op **out)
{
	SLOT(b, put_deployment, "create or update deployments");
	return b->ops->put_deployment(b, ep, dep, out);
}

int
amlops_backend_delete_endpoint(
    struct amlops_backend *b, const char *name, struct amlops_op **out)
{
	SLOT(b, delete_endpoint, "delete endpoints");
	return b->ops->delete_endpoint(b, name, out);
}

int
amlops_backend_delete_deployment(struct amlops_backend *b, const char *endpoint,
    const char *name, struct amlops_op **out)
{
	SLOT(b, delete_deployment, "delete deployments");
	return b->ops->delete_deployment(b, endpoint, name, out);
}

int
amlops_backend_ensure_assets(struct amlops_backend *b,
    const struct amlops_deployment *dep, const struct amlops_files *files)
{
	SLOT(b, ensure_assets, "register assets");
	return b->ops->ensure_assets(b, dep, files);
}

int
amlops_backend_check_refs(
    struct amlops_backend *b, const struct amlops_deployment *dep)
{
	SLOT(b, check_refs, "check asset references");
	return b->ops->check_refs(b, dep);
}

int
amlops_backend_poll_op(struct amlops_backend *b, struct amlops_op *op)
{
	SLOT(b, poll_op, "follow operations");
	return b->ops->poll_op(b, op);
}

int
amlops_backend_wait_op(struct amlops_backend *b, struct amlops_op *op)
{
	int error;

	while ((error = amlops_backend_poll_op(b, op)) == 1) {
		int64_t d = 100;
		struct timespec ts;

		if (op->rest) {
			d = op->rest->next_poll_ms - amlops_now_ms();
			if (op->rest->next_poll_ms > op->rest->deadline_ms)
				d = op->rest->deadline_ms - amlops_now_ms() + 1;
		}
		if (d <= 0)
			continue;
		ts.tv_sec = (time_t)(d / 1000);
		ts.tv_nsec = (long)(d % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return error;
}

int
amlops_backend_keys(struct amlops_backend *b, const char *endpoint,
    char **primary, char **secondary)
{
	SLOT(b, keys, "list keys");
	return b->ops->keys(b, endpoint, primary, secondary);
}

int
amlops_backend_token(struct amlops_backend *b, const char *endpoint,
    char **token, int64_t *expiry_ms)
{
	SLOT(b, token, "get endpoint tokens");
	return b->ops->token(b, endpoint, token, expiry_ms);
}

int
amlops_backend_logs(struct amlops_backend *b, const char *endpoint,
    const char *deployment, int tail, char **out)
{
	SLOT(b, logs, "read logs");
	return b->ops->logs(b, endpoint, deployment, tail, out);
}

int
amlops_backend_invoke(struct amlops_backend *b, const char *endpoint,
    const char *deployment, const char *body, size_t len,
    struct amlops_buf *out, long *status)
{
	SLOT(b, invoke, "invoke endpoints");
	return b->ops->invoke(b, endpoint, deployment, body, len, out, status);
}

void
amlops_backend_free(struct amlops_backend *b)
{
	if (b)
		b->ops->free(b);
}
