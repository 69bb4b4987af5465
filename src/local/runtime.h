/*
 * The runtime of `amlops host`: Python worker processes per deployment,
 * their supervisor, and the scoring front that routes requests to them.
 *
 * The control plane (src/local/host*.c) owns the REST API and the state;
 * it tells the runtime what should run with the calls below and asks it how
 * deployments are doing. The runtime never reads or writes the state dir's
 * JSON files; it owns only the log folders it is given.
 *
 * All calls are thread-safe (the control plane calls them from its HTTP
 * threads). Nothing here blocks on a worker: deploy() returns at once and
 * status() tells when the workers finished init().
 */
#ifndef AMLOPS_LOCAL_RUNTIME_H
#define AMLOPS_LOCAL_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "amlops/util.h"

struct amlops_runtime;

struct amlops_runtime_opts {
	const char *python; /* interpreter, default "/usr/bin/python3" */
	const char *bind;   /* scoring front address, default "127.0.0.1" */
	int port;           /* scoring front port; 0 picks a free one */
	size_t max_body;    /* request body limit, default 8 MiB */
	size_t log_cap;     /* inference log size before it rotates to
	                       inference.log.1, default 8 MiB */
};

/* Starts the scoring front and the supervisor. Free with _free(). */
int amlops_runtime_new(
    struct amlops_runtime **out, const struct amlops_runtime_opts *opts);
/* Stops every worker (SIGTERM, then SIGKILL) and the front; accepts NULL. */
void amlops_runtime_free(struct amlops_runtime *rt);

/* "http://127.0.0.1:PORT"; borrowed. Scoring URI: BASE/endpoints/NAME/score */
const char *amlops_runtime_base_url(const struct amlops_runtime *rt);
int amlops_runtime_port(const struct amlops_runtime *rt);

enum amlops_runtime_auth {
	AMLOPS_RUNTIME_AUTH_KEY = 0,
	AMLOPS_RUNTIME_AUTH_TOKEN, /* aml_token / aad_token */
};

struct amlops_runtime_route {
	const char *deployment;
	int percent;
};

/*
 * Creates or replaces an endpoint's routing: who may call it and where
 * requests go. Keys are compared in constant time. `traffic` and `mirror`
 * are copied; an empty traffic map means every request gets 404 ("no valid
 * deployments to route to") unless it names a deployment with the
 * azureml-model-deployment header (as Azure).
 */
struct amlops_runtime_endpoint {
	const char *name;
	enum amlops_runtime_auth auth;
	const char *primary_key; /* key auth */
	const char *secondary_key;
	const struct amlops_runtime_route *traffic;
	size_t ntraffic;
	const struct amlops_runtime_route *mirror;
	size_t nmirror;
};

int amlops_runtime_set_endpoint(
    struct amlops_runtime *rt, const struct amlops_runtime_endpoint *ep);
/* Stops the endpoint's deployments and forgets it. */
int amlops_runtime_remove_endpoint(struct amlops_runtime *rt, const char *name);

/*
 * Token auth: the control plane issues tokens (POST .../token) and hands
 * each to the runtime with its expiry; the front accepts it until then.
 */
int amlops_runtime_add_token(struct amlops_runtime *rt, const char *endpoint,
    const char *token, int64_t expires_wall_ms);

struct amlops_runtime_deployment {
	const char *endpoint;
	const char *name;
	const char *code_dir;            /* absolute: the materialised code */
	const char *scoring_script;      /* relative to code_dir */
	const char *model_dir;           /* absolute: AZUREML_MODEL_DIR */
	int instance_count;              /* worker processes, >= 1 */
	const cJSON *env;                /* environmentVariables, or NULL */
	int request_timeout_ms;          /* default 5000 */
	int max_concurrent_per_instance; /* default 1 */
	int max_queue_wait_ms;           /* default 500 */
	const char *log_dir;             /* where inference logs go; exists */
};

/*
 * Starts (or restarts with the new settings) a deployment's workers.
 * Returns at once; the workers run init() in the background. A deployment
 * whose code, model or settings are unchanged keeps its workers when only
 * instance_count changes (scale up or down in place).
 */
int amlops_runtime_deploy(
    struct amlops_runtime *rt, const struct amlops_runtime_deployment *dep);
/* Stops a deployment's workers. */
int amlops_runtime_remove(
    struct amlops_runtime *rt, const char *endpoint, const char *deployment);

enum amlops_runtime_state {
	AMLOPS_RUNTIME_STARTING = 0, /* some worker has not finished init() */
	AMLOPS_RUNTIME_READY,        /* every worker finished init() */
	AMLOPS_RUNTIME_FAILED,       /* init() raised, or workers keep dying */
	AMLOPS_RUNTIME_UNKNOWN,      /* no such deployment */
};

/*
 * How a deployment is doing. On FAILED, `*why` (when not NULL) gets a
 * newly allocated line: the last line of the traceback, or why workers
 * keep dying. `ready` (when not NULL) gets the count of ready workers.
 */
enum amlops_runtime_state amlops_runtime_status(struct amlops_runtime *rt,
    const char *endpoint, const char *deployment, char **why, int *ready);

/*
 * The last `tail` lines (0: all that is kept) of a deployment's
 * inference-server log into `out`.
 */
int amlops_runtime_logs(struct amlops_runtime *rt, const char *endpoint,
    const char *deployment, int tail, struct amlops_buf *out);

/*
 * Appends the Prometheus text of the scoring side (requests by code,
 * latency histogram, queue wait, workers ready) to `out`.
 */
int amlops_runtime_metrics(struct amlops_runtime *rt, struct amlops_buf *out);

#endif
