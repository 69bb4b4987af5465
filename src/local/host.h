/*
 * `amlops host`: the control plane of the local target. It answers the
 * Azure ML REST API for online endpoints, deployments, assets and the
 * default datastore on 127.0.0.1, keeps its state in a state dir, and
 * tells the runtime (runtime.h) what should run.
 *
 * Files in the state dir (0700; every file 0600):
 *   host.json        url, pid, token, scoring_url, workspace coordinates;
 *                    written once the host answers, removed on clean exit
 *   host.lock        flock()ed by the running host (one host per dir)
 *   state.json       endpoints, deployments, keys, tokens, assets,
 *                    operations; rewritten atomically after each change
 *   operations.log   append-only JSON lines, see host_oplog_* below
 *   store/<sha256>/  registered code and model content (immutable)
 *   deployments/<endpoint>/<deployment>/  logs, storage-initializer.log
 *                    and the azureml-models/<name>/<version> layout
 *   host.log         the log of a --detach'ed host
 *
 * Private to src/local/host*.c and src/cli/host.c.
 */
#ifndef AMLOPS_LOCAL_HOST_H
#define AMLOPS_LOCAL_HOST_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "amlops/util.h"
#include "local/runtime.h"

#define AMLOPS_HOST_MAX_BODY (4u << 20)
#define AMLOPS_HOST_LOCAL_SUB "00000000-0000-0000-0000-000000000000"
#define AMLOPS_HOST_LOCAL_RG "local"
#define AMLOPS_HOST_LOCAL_WS "local"
#define AMLOPS_HOST_LOCATION "local"

struct amlops_host_opts {
	const char *state_dir; /* required */
	const char *bind;      /* default "127.0.0.1" */
	int port;              /* control plane; 0 picks a free one */
	int scoring_port;      /* the runtime's scoring front; 0 free */
	const char *python;    /* default "/usr/bin/python3" */
	int faults;            /* enable POST /_amlops/faults */
	int retry_after;       /* Retry-After seconds; -1: the default, 1 */
	int op_delay_ms;       /* how long quick operations stay InProgress */
	const char *blob_endpoint; /* all four, or none */
	const char *blob_container;
	const char *blob_account;
	const char *blob_key;
};

struct host_fault;
struct MHD_Daemon;
struct amlops_blob_client;

struct amlops_host {
	char *dir;
	char *bind;
	char *token; /* the bearer token; never logged */
	char *url;   /* "http://127.0.0.1:PORT" */
	char *blob_endpoint, *blob_container, *blob_account, *blob_key;
	int retry_after;
	int op_delay_ms;
	int faults_enabled;
	int lockfd;

	struct MHD_Daemon *mhd;
	struct amlops_runtime *rt;
	struct amlops_blob_client *blob; /* with --blob-endpoint, or NULL */

	pthread_mutex_t mu; /* guards everything below */
	cJSON *state;       /* see host_state.c */
	struct host_fault *faults;
	int fail_next_op;
	char *fail_next_msg;

	pthread_t ticker;
	int ticker_started;
	int stopping;
	pthread_cond_t cond;
};

/* A parsed request, as the handlers see it. */
struct host_req {
	const char *method;
	const char *path;
	const char *api_version; /* NULL when absent */
	char **seg;              /* path segments, not decoded */
	size_t nseg;
	const char *body; /* NUL-terminated; "" when none */
	size_t body_len;
};

/* The answer; owned by the dispatcher, which frees body and headers. */
struct host_resp {
	int status;
	cJSON *json; /* body, or NULL */
	char *text;  /* body when json is NULL, or NULL */
	char *hdr_name[6];
	char *hdr_value[6];
	size_t nhdr;
	int drop;       /* close the connection without answering */
	char op_id[40]; /* the operation a mutation started */
};

/*
 * Starts the host: takes the state dir's lock, loads the state, starts the
 * runtime and the HTTP daemon, brings every deployment back up and writes
 * host.json. Free with amlops_host_free(), which stops all of it.
 */
int amlops_host_start(
    struct amlops_host **out, const struct amlops_host_opts *opts);
void amlops_host_free(struct amlops_host *h);

/*
 * Answers one request (used by the HTTP daemon, and by the fuzz harness).
 * `resp` must be zeroed; release it with host_resp_release().
 */
void amlops_host_handle(struct amlops_host *h, const char *method,
    const char *url, const char *api_version, const char *authorization,
    const char *body, size_t body_len, struct host_resp *resp);
void host_resp_release(struct host_resp *resp);

/* Responses (host.c). */
void host_resp_error(struct host_resp *r, int status, const char *code,
    const char *target, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void host_resp_json(struct host_resp *r, int status, cJSON *body);
void host_resp_header(struct host_resp *r, const char *name, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* JSON helpers (host_state.c). */
void host_json_set(cJSON *obj, const char *key, cJSON *val);
void host_json_set_str(cJSON *obj, const char *key, const char *val);
const char *host_json_str(const cJSON *obj, const char *key);
/* As host_json_str(), with `def` when the key is missing or no string. */
const char *host_json_strd(const cJSON *obj, const char *key, const char *def);
cJSON *host_json_obj(cJSON *obj, const char *key); /* get or add {} */

/*
 * State (host_state.c). The state is one cJSON tree:
 *   {"version":1,
 *    "workspaces":{"<sub>/<rg>/<ws>" lower-cased:
 *        {"subscription","resourceGroup","workspace",
 *         "endpoints":{NAME:{"resource":{ARM body},"keys":{...},
 *             "tokens":[{"token","expires_ms"}],"busy":OPID|null,
 *             "deployments":{NAME:{"resource":{ARM body},
 *                 "runtime":{"code_dir","scoring_script","model_dir",...}}}}},
 *         "assets":{"codes/NAME/VERSION":{"resource":{...},"digest","path"}}}},
 *    "operations":{ID:{...}}}
 * Callers hold h->mu.
 */
int host_state_load(struct amlops_host *h);
int host_state_save(struct amlops_host *h);
/* A workspace entry not (yet) in the state; the caller owns it. */
cJSON *host_state_ws_new(const char *sub, const char *rg, const char *ws);
/* The workspace's entry; with `create`, one is added when missing. */
cJSON *host_state_ws(struct amlops_host *h, const char *sub, const char *rg,
    const char *ws, int create);
/* The endpoint named `name` in any workspace, and its workspace. */
cJSON *host_state_find_endpoint(
    struct amlops_host *h, const char *name, cJSON **ws_out);

/*
 * operations.log (host_state.c): one JSON object a line, appended after
 * every mutating request on an endpoint or deployment (PUT, PATCH, DELETE,
 * regenerateKeys; refused ones too) and every operation that ends:
 *   {"time":"RFC3339","event":"request","method":"PUT","path":"/subs...",
 *    "resource":"endpoint/NAME[/deployment/NAME]","result":201,
 *    "operation":"ID" (when one started),
 *    "error":"message" (when result >= 400),
 *    "traffic":{"blue":100},"deployments":{"blue":"Succeeded"}}
 *   {"time":...,"event":"operation","operation":"ID",
 *    "status":"Succeeded|Failed|Canceled","resource":...,
 *    "error":"message" (unless Succeeded),"traffic":{...},
 *    "deployments":{...}}
 * traffic and deployments are the endpoint's state right after the event
 * (absent once the endpoint is gone). Asset registrations are not logged.
 */
void host_oplog(struct amlops_host *h, const char *event, const char *method,
    const char *path, const char *resource, int result, const char *op_id,
    const char *status, const char *error, const cJSON *endpoint);

/* Operations (host_ops.c). */
struct host_op_spec {
	const char *kind;   /* "endpoint", "deployment", "keys" */
	const char *action; /* "create", "update", "delete" */
	const char *wskey;
	const char *endpoint;
	const char *deployment;    /* or NULL */
	const char *resource_path; /* ARM path of the resource */
	const char *api_version;
	int wait_runtime; /* completes when the runtime says READY */
};
/* Creates an InProgress operation; returns its id (borrowed from state). */
const char *host_op_create(
    struct amlops_host *h, const struct host_op_spec *spec);
/* Adds Azure-AsyncOperation, Location and Retry-After for `op_id`. */
void host_op_headers(struct amlops_host *h, struct host_resp *r,
    const char *op_id, const char *api_version, int with_async);
void host_op_get(struct amlops_host *h, const struct host_req *req, int results,
    const char *id, struct host_resp *r);
int host_ticker_start(struct amlops_host *h);
void host_ticker_stop(struct amlops_host *h);
/* Pushes an endpoint's keys, tokens and traffic to the runtime. */
int host_push_endpoint(struct amlops_host *h, cJSON *ep);
/* (Re)starts a deployment's workers from its recorded runtime settings. */
int host_push_deployment(struct amlops_host *h, cJSON *ep, cJSON *dep);

/* Handlers (host_api.c). */
void host_api_route(
    struct amlops_host *h, const struct host_req *req, struct host_resp *r);
/*
 * The ARM body of an endpoint (dep NULL) or one of its deployments, as GET
 * answers it. The caller owns the result.
 */
cJSON *host_render(struct amlops_host *h, cJSON *ws, cJSON *ep, cJSON *dep);

/* Assets (host_assets.c). */
void host_asset_put(struct amlops_host *h, const struct host_req *req,
    cJSON *ws, const char *type, const char *name, const char *version,
    struct host_resp *r);
void host_asset_get(struct amlops_host *h, const struct host_req *req,
    cJSON *ws, const char *type, const char *name, const char *version,
    struct host_resp *r);
/*
 * Resolves an asset reference from a deployment body (an ARM id or
 * "azureml:NAME:VERSION") to its state entry. Sets a 400/404 on `r`
 * and returns NULL when it does not resolve.
 */
cJSON *host_asset_resolve(struct amlops_host *h, cJSON *ws, const char *type,
    const char *ref, const char *target, struct host_resp *r);
/* Removes what a killed host left half-written: store copies, state. */
void host_store_clean(struct amlops_host *h);
/* rm -rf, not following symbolic links: 0, or -1 with errno. */
int host_rm_tree(const char *path);
/* Copies a file or folder tree; used for the store. */
int host_copy_tree(const char *src, const char *dst);
/* SHA-256 of a file or folder tree (names, modes and content), as hex. */
int host_tree_digest(char out[65], const char *path);

/* ISO-8601 durations: "PT5S", "PT0.5S", "PT1M30S", "P1DT2H". */
int host_parse_duration_ms(int64_t *out, const char *s);

/* The ARM id of a workspace-level path prefix. */
char *host_ws_id(const cJSON *ws);

#endif
