/*
 * The backend: where endpoints live. One interface, two implementations
 * on the same ARM REST client (amlops/rest.h):
 *
 * - "azure": Azure Resource Manager, Azure AD credentials, assets
 *   uploaded to the workspace's default blob datastore;
 * - "local": `amlops host` on 127.0.0.1 (base URL and token from the
 *   host's DIR/host.json), assets written into a content-addressed folder
 *   and registered with a file:// URI.
 *
 * The executor calls: amlops_backend_get_endpoint() (live state for the
 * planner), then for each step the calls below (each returns an
 * operation to wait on), re-reading the endpoint before deletions and
 * the deployments before traffic (get_deployment_states(), one request,
 * when the planning read is fresh). Request bodies follow the examples in
 * shared/reference/azure-ml-rest/examples; live state comes back as the
 * same struct amlops_endpoint the loader builds, with the live-only facts
 * in struct amlops_live.
 */
#ifndef AMLOPS_BACKEND_H
#define AMLOPS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "amlops/rest.h"
#include "amlops/spec.h"

struct amlops_step; /* amlops/plan.h */
struct amlops_backend;

/*
 * Files at the commit being applied: assets are read from here, never
 * from the working tree. `list` gives the files under `path` (a folder:
 * paths relative to it, '/'-separated, sorted; a file: one entry "")
 * as a malloc'd array of malloc'd strings; `read` gives one file's bytes
 * (repository-relative path) into `out`, which has a cap.
 */
struct amlops_files {
	int (*list)(void *ctx, const char *path, char ***names, size_t *n);
	int (*read)(void *ctx, const char *path, struct amlops_buf *out);
	void *ctx;
};

/* A running (or finished) operation of one step. */
struct amlops_op {
	struct amlops_rest_op *rest; /* NULL when nothing had to run */
	enum amlops_op_state state;
	char request_id[37]; /* of the request that started it, or "" */
	char *what;          /* "PUT onlineEndpoints/blue" */
};

void amlops_op_free(struct amlops_op *op);

/* Live-only facts of one deployment and one endpoint. */
struct amlops_live_deployment {
	char *name;
	char *provisioning_state; /* "Succeeded", "Updating", ... */
	char *id;                 /* ARM id */
};

struct amlops_live {
	char *provisioning_state;
	char *scoring_uri;
	char *id;
	struct amlops_live_deployment *deployments; /* sorted by name */
	size_t ndeployments;
};

void amlops_live_free(struct amlops_live *live);
void amlops_live_deployments_free(struct amlops_live_deployment *v, size_t n);
/* The state of deployment `name`, or NULL; borrowed. */
const char *amlops_live_deployment_state(
    const struct amlops_live *live, const char *name);

/* Which parts of an endpoint a PUT/PATCH carries. */
enum amlops_endpoint_parts {
	AMLOPS_EP_TRAFFIC = 1 << 0,  /* traffic and mirrorTraffic */
	AMLOPS_EP_METADATA = 1 << 1, /* description and tags */
};

struct amlops_backend_ops {
	const char *name; /* "azure", "local" */
	/*
	 * The endpoint with its deployments; AMLOPS_ENOTFOUND when it does
	 * not exist. `live` may be NULL.
	 */
	int (*get_endpoint)(struct amlops_backend *, const char *name,
	    struct amlops_endpoint **out, struct amlops_live **live);
	/*
	 * The two halves of get_endpoint, one request each, for a caller
	 * that needs only one: the endpoint without its deployments (`out`
	 * has none, `live` none; AMLOPS_ENOTFOUND when it does not exist),
	 * and the live state of its deployments (sorted by name, malloc'd
	 * array of `*n`, freed with amlops_live_deployments_free()). NULL
	 * slots: the caller uses get_endpoint.
	 */
	int (*get_endpoint_only)(struct amlops_backend *, const char *name,
	    struct amlops_endpoint **out, struct amlops_live **live);
	int (*get_deployment_states)(struct amlops_backend *,
	    const char *endpoint, struct amlops_live_deployment **out,
	    size_t *n);
	int (*list_endpoints)(
	    struct amlops_backend *, char ***names, size_t *n);
	/* Via plan.h's step; NULL until the planner's header exists. */
	int (*apply_step)(struct amlops_backend *, const struct amlops_step *,
	    struct amlops_op **out);
	int (*put_endpoint)(struct amlops_backend *,
	    const struct amlops_endpoint *, unsigned parts,
	    struct amlops_op **out);
	int (*put_deployment)(struct amlops_backend *,
	    const struct amlops_endpoint *, const struct amlops_deployment *,
	    struct amlops_op **out);
	int (*delete_endpoint)(
	    struct amlops_backend *, const char *name, struct amlops_op **out);
	int (*delete_deployment)(struct amlops_backend *, const char *endpoint,
	    const char *name, struct amlops_op **out);
	/* Registers the deployment's inline assets, checks its references. */
	int (*ensure_assets)(struct amlops_backend *,
	    const struct amlops_deployment *, const struct amlops_files *);
	/*
	 * Checks that the deployment's references (azureml:NAME:VERSION,
	 * NAME@latest, ARM ids) exist, registering nothing: the executor
	 * calls it for every desired deployment before the first step.
	 */
	int (*check_refs)(
	    struct amlops_backend *, const struct amlops_deployment *);
	int (*poll_op)(struct amlops_backend *, struct amlops_op *);
	int (*keys)(struct amlops_backend *, const char *endpoint,
	    char **primary, char **secondary);
	int (*token)(struct amlops_backend *, const char *endpoint,
	    char **token, int64_t *expiry_ms);
	int (*logs)(struct amlops_backend *, const char *endpoint,
	    const char *deployment, int tail, char **out);
	/*
	 * POSTs `body` to the scoring URI; `deployment` (or NULL) goes in
	 * the azureml-model-deployment header.
	 */
	int (*invoke)(struct amlops_backend *, const char *endpoint,
	    const char *deployment, const char *body, size_t len,
	    struct amlops_buf *out, long *status);
	void (*free)(struct amlops_backend *); /* required */
};

struct amlops_backend {
	const struct amlops_backend_ops *ops;
	/*
	 * Where apply_step reads inline assets from (the commit being
	 * applied); borrowed, set by the executor, may be NULL when no step
	 * needs files.
	 */
	const struct amlops_files *files;
};

/*
 * The calls. Each returns AMLOPS_ENOTSUPP (with a message naming the
 * backend) for a NULL slot. An operation returned in `*out` is freed
 * with amlops_op_free(); the _wait forms wait for it and free it.
 */
int amlops_backend_get_endpoint(struct amlops_backend *b, const char *name,
    struct amlops_endpoint **out, struct amlops_live **live);
int amlops_backend_get_endpoint_only(struct amlops_backend *b, const char *name,
    struct amlops_endpoint **out, struct amlops_live **live);
int amlops_backend_get_deployment_states(struct amlops_backend *b,
    const char *endpoint, struct amlops_live_deployment **out, size_t *n);
int amlops_backend_list_endpoints(
    struct amlops_backend *b, char ***names, size_t *n);
int amlops_backend_apply_step(struct amlops_backend *b,
    const struct amlops_step *s, struct amlops_op **out);
int amlops_backend_put_endpoint(struct amlops_backend *b,
    const struct amlops_endpoint *ep, unsigned parts, struct amlops_op **out);
int amlops_backend_put_deployment(struct amlops_backend *b,
    const struct amlops_endpoint *ep, const struct amlops_deployment *dep,
    struct amlops_op **out);
int amlops_backend_delete_endpoint(
    struct amlops_backend *b, const char *name, struct amlops_op **out);
int amlops_backend_delete_deployment(struct amlops_backend *b,
    const char *endpoint, const char *name, struct amlops_op **out);
int amlops_backend_ensure_assets(struct amlops_backend *b,
    const struct amlops_deployment *dep, const struct amlops_files *files);
int amlops_backend_check_refs(
    struct amlops_backend *b, const struct amlops_deployment *dep);
/* 1 while running, 0 done, < 0 failed (message set). */
int amlops_backend_poll_op(struct amlops_backend *b, struct amlops_op *op);
/* Polls until done; the operation stays the caller's. */
int amlops_backend_wait_op(struct amlops_backend *b, struct amlops_op *op);
int amlops_backend_keys(struct amlops_backend *b, const char *endpoint,
    char **primary, char **secondary);
int amlops_backend_token(struct amlops_backend *b, const char *endpoint,
    char **token, int64_t *expiry_ms);
int amlops_backend_logs(struct amlops_backend *b, const char *endpoint,
    const char *deployment, int tail, char **out);
int amlops_backend_invoke(struct amlops_backend *b, const char *endpoint,
    const char *deployment, const char *body, size_t len,
    struct amlops_buf *out, long *status);
void amlops_backend_free(struct amlops_backend *b);

/* Target configuration, from flags, .amlops.yml and the environment. */
struct amlops_azure_cfg {
	const char *subscription_id;
	const char *resource_group;
	const char *workspace;
	const char *arm_url;      /* NULL: AMLOPS_ARM_URL, else public cloud */
	const char *api_version;  /* NULL: AMLOPS_ARM_API_VERSION */
	struct amlops_cred *cred; /* NULL: from the environment */
	struct amlops_retry retry;
	int64_t lro_timeout_ms;
};

#define AMLOPS_ARM_API_VERSION "2024-04-01"
#define AMLOPS_ARM_PUBLIC_URL "https://management.azure.com"

/*
 * The azure backend. Empty fields of `cfg` are taken from
 * AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE and
 * AMLOPS_ARM_URL; AMLOPS_EINVALID names what is missing. A `cred` given
 * is borrowed; else one is made from the environment and owned.
 */
int amlops_azure_new(
    struct amlops_backend **out, const struct amlops_azure_cfg *cfg);

/*
 * The local backend: `host_dir` is the host's state directory (NULL:
 * AMLOPS_HOST_DIR, else ~/.local/state/amlops/host); its host.json gives
 * the URL and token. `retry` may be NULL.
 */
int amlops_local_new(struct amlops_backend **out, const char *host_dir,
    const struct amlops_retry *retry);

struct amlops_blob_client;

struct amlops_upload_stats {
	unsigned files;    /* files under the path */
	unsigned uploaded; /* sent as blobs */
	unsigned skipped;  /* already there with the same MD5 */
	uint64_t bytes;    /* bytes sent */
};

/*
 * Uploads the files of `path` at the commit to `container` under
 * PREFIX/BASENAME/... (block blobs, large files in blocks), skipping each
 * blob that already holds the same bytes (same size and Content-MD5).
 * `st` may be NULL. The azure backend names PREFIX by content id.
 */
int amlops_azure_upload(struct amlops_upload_stats *st,
    struct amlops_blob_client *c, const char *container, const char *prefix,
    const struct amlops_files *files, const char *path);

/*
 * The ARM path of a workspace resource, for both backends:
 * "/subscriptions/S/resourceGroups/G/providers/
 *  Microsoft.MachineLearningServices/workspaces/W" + suffix. malloc'd.
 */
char *amlops_arm_workspace_path(
    const char *sub, const char *rg, const char *ws, const char *suffix);

/*
 * Request bodies and live state, exposed for tests and for the host:
 * an endpoint PUT body (`parts` as above, all with ~0u), a deployment
 * PUT body (asset ids under `ws_path`), and a GET response back into the
 * model. The caller frees what it gets.
 */
cJSON *amlops_arm_endpoint_body(
    const struct amlops_endpoint *ep, unsigned parts, const char *location);
cJSON *amlops_arm_deployment_body(const char *ws_path,
    const struct amlops_endpoint *ep, const struct amlops_deployment *dep,
    const char *location);
int amlops_arm_endpoint_from_json(struct amlops_endpoint **out,
    struct amlops_live *live, const cJSON *endpoint, const cJSON *deployments);

/*
 * Removes from REST-shaped deployment settings the values that equal the
 * service's documented defaults (requestSettings' 1 / PT5S / PT0.5S,
 * the probes' PT10S / PT10S / PT2S / 30 / 1, scaleSettings Default,
 * appInsightsEnabled false, ...), and objects left empty. Live state
 * comes back normalised (the service fills defaults in); the planner
 * should normalise the desired settings the same way before comparing.
 */
void amlops_arm_settings_normalize(cJSON *settings);

/*
 * An asset's version id under a workspace:
 * WS/models/NAME/versions/VERSION (kind "models", "codes",
 * "environments"), and back. The parse fills name and version (malloc'd)
 * from an id or from "azureml:NAME:VERSION".
 */
char *amlops_arm_asset_id(const char *ws_path, const char *kind,
    const char *name, const char *version);
int amlops_arm_asset_parse(char **name, char **version, const char *id);

/*
 * The name an inline asset is registered under: its own name, else
 * "<endpoint>-<deployment>-model|code|env". malloc'd.
 */
char *amlops_arm_asset_name(const struct amlops_deployment *dep,
    const struct amlops_asset *a, const char *suffix);

#endif
