/*
 * The planner: desired endpoints (from the repository) against live ones
 * (from a target, or from the base commit in an offline plan) give an
 * ordered list of steps, each changing exactly one aspect of one endpoint
 * or deployment. It is a pure function: no I/O, no clock, and the same
 * inputs always give the same plan, whatever order the endpoints come in.
 *
 * Order of the steps of one endpoint (DESIGN.md section 3):
 *
 *   1. create the endpoint (no traffic) if missing, or update its
 *      properties that the service changes in place (auth_mode,
 *      public_network_access, identity: aspect `endpoint`, action update;
 *      first, because a new deployment may need the new identity);
 *   2. create new deployments (no traffic); a deployment whose immutable
 *      field changed while it carries no traffic is deleted and created
 *      again here;
 *   3. scale up (instance_count grows);
 *   4. per deployment, in name order, one step per changed aspect:
 *      environment, code (asset and scoring_script), model, settings
 *      (the REST-shaped deployment->settings object, compared as a
 *      whole), then metadata (the deployment's description and tags:
 *      they do not change how it serves, so they have their own aspect);
 *   5. traffic, once, to the desired map; mirror traffic, once. Azure
 *      refuses a deployment that has both live and mirror traffic, so the
 *      mirror step goes first when the deployment mirrored now is given
 *      live traffic, and after the traffic step otherwise; when both hold
 *      (live and mirrored deployments swap roles) the mirror is cleared
 *      before the traffic step and set after it;
 *   6. scale down (instance_count shrinks);
 *   7. delete deployments that left the repository (their traffic and
 *      mirror traffic are already 0 after step 5);
 *   8. endpoint metadata (description, tags); endpoints that left the
 *      repository are deleted, only when they carry the ownership tag.
 *
 * Endpoints come in name order, each endpoint's steps together.
 *
 * Immutable fields. The REST spec marks a deployment's `instanceType`
 * "x-ms-mutability: read, create", and `endpointComputeType` is the
 * discriminator of the deployment's type, so neither changes in place:
 * on a deployment that carries live or mirror traffic the plan refuses
 * and says the way out (a new deployment name and a traffic shift); on a
 * deployment with no traffic it becomes delete + create. An endpoint's
 * compute (managed or kubernetes, and the kubernetes compute it is
 * attached to) is also fixed at creation; that is always refused (the
 * way out is a new endpoint: deleting one loses its scoring URI and
 * keys). `authMode` carries no mutability restriction in the spec and
 * the service updates it in place, so it is an ordinary `endpoint`
 * update.
 *
 * Refusals. A refused endpoint contributes no steps at all (a partial
 * plan for one endpoint could leave it half moved), and its reason is
 * in plan->refusals; other endpoints are planned as usual.
 * amlops_plan_build() then returns AMLOPS_EINVALID with the first
 * refusal as the message, and *out still holds the plan. Besides
 * immutable fields, the plan refuses inputs that break an invariant
 * (the loader catches these first; the planner does not trust its
 * input): traffic that does not sum to 100 (or 0), names a deployment
 * the endpoint does not have, or names one twice; more than one mirror,
 * or a mirror that also gets live traffic; a duplicate endpoint or
 * deployment on either side. And, per DESIGN.md section 3, an inline
 * asset whose content changed under a version written by hand (the
 * message names the path and both content ids).
 *
 * Comparisons. Assets are the same when their identity is (see
 * amlops_plan_asset_id()); in a live plan a desired "name@label" also
 * matches the target's "name:version" (the version the label resolved
 * to when it was deployed). Traffic maps compare without their 0 entries.
 * Settings compare with cJSON_Compare (case sensitive); in a live plan
 * only the keys the desired settings have (see AMLOPS_PLAN_OFFLINE).
 *
 * Ownership tag. Deployment tags always compare without it. Endpoint
 * tags: in an offline plan (AMLOPS_PLAN_ALL_OWNED) without it; in a live
 * plan `before` is the target's tags as they are and `after` the desired
 * tags plus the ownership tag, so that an endpoint amlops did not create
 * but the repository describes is adopted by one metadata step that adds
 * the tag. The backend writes the ownership tag on every endpoint PUT
 * that carries tags (creation and metadata).
 */
#ifndef AMLOPS_PLAN_H
#define AMLOPS_PLAN_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "amlops/spec.h"
#include "amlops/util.h"

enum amlops_plan_action {
	AMLOPS_PLAN_CREATE = 0,
	AMLOPS_PLAN_UPDATE,
	AMLOPS_PLAN_DELETE,
};

enum amlops_plan_aspect {
	AMLOPS_ASPECT_ENDPOINT = 0,
	AMLOPS_ASPECT_DEPLOYMENT,
	AMLOPS_ASPECT_TRAFFIC,
	AMLOPS_ASPECT_MIRROR_TRAFFIC,
	AMLOPS_ASPECT_SCALE,
	AMLOPS_ASPECT_CODE,
	AMLOPS_ASPECT_MODEL,
	AMLOPS_ASPECT_ENVIRONMENT,
	AMLOPS_ASPECT_SETTINGS,
	AMLOPS_ASPECT_METADATA,
};

/*
 * One step. `before` and `after` are what the step changes, never NULL
 * (a cJSON null where there is nothing, e.g. `before` of a create):
 *
 *   endpoint create      after {"auth_mode", "compute"}
 *   endpoint update      {"auth_mode", "public_network_access",
 *                        "identity"}: only the fields that differ
 *   endpoint delete      before {"deployments": [names]}
 *   deployment create    after {"model", "code", "environment",
 *   / delete (before)    "instance_type", "instance_count"}
 *   traffic, mirror      {"blue": 90, "green": 10}, no 0 entries
 *   scale                instance counts (numbers)
 *   code, model, env     asset identity strings, or null; code adds
 *                        " (scoring_script X)" when the script changed
 *   settings             the settings objects (a live plan's before:
 *                        the target's, cut down to the desired keys)
 *   metadata             {"description": s|null, "tags": {...}}
 *
 * `reason` is one line: "instance_count 1 -> 2", "deployment 'green' is
 * new", "deployment 'blue' left the repository".
 *
 * The desired and live pointers are borrowed from the inputs of
 * amlops_plan_build() (the executor needs the whole desired object to
 * build a request) and are valid as long as those are; each is NULL when
 * it does not apply: live_endpoint of an endpoint create,
 * live_deployment of a deployment create, desired_deployment of a
 * delete, desired_endpoint of an endpoint delete, *_deployment of an
 * endpoint step. The delete half of a delete + create (immutable field, no
 * traffic) has only live_deployment, its create half only
 * desired_deployment.
 */
struct amlops_step {
	char *endpoint;
	char *deployment; /* NULL for endpoint-level steps */
	enum amlops_plan_action action;
	enum amlops_plan_aspect aspect;
	cJSON *before;
	cJSON *after;
	char *reason;
	const struct amlops_endpoint *desired_endpoint;
	const struct amlops_deployment *desired_deployment;
	const struct amlops_endpoint *live_endpoint;
	const struct amlops_deployment *live_deployment;
};

/*
 * A refusal (an endpoint left out of the plan, with the reason and the
 * way out) or a note (e.g. "endpoint 'x' is not managed by amlops, left
 * alone").
 */
struct amlops_plan_msg {
	char *endpoint;
	char *deployment; /* or NULL */
	char *msg;        /* lower case, no full stop */
	/*
	 * Where in the YAML the refused value was written (the traffic
	 * entry, the asset, the deployment's or endpoint's `name`); NULL
	 * when the input carried no location (a target's live state).
	 */
	char *file;
	unsigned line;
	unsigned col;
};

/*
 * "FILE:LINE:COL: endpoint 'e': msg" (without the location when there is
 * none), newly allocated: the form for stderr and for amlops_err_last().
 */
char *amlops_plan_msg_format(const struct amlops_plan_msg *m);

struct amlops_plan {
	struct amlops_step *steps;
	size_t nsteps;
	struct amlops_plan_msg *refusals;
	size_t nrefusals;
	struct amlops_plan_msg *notes;
	size_t nnotes;
};

enum amlops_plan_flags {
	/*
	 * An offline plan: the "live" side is the base commit's YAML, not a
	 * target. Every live endpoint counts as managed by amlops (they are
	 * the repository's own), endpoint tags compare without the ownership
	 * tag, and settings compare exactly. Without it (a live plan), the
	 * target fills in a default for every setting the YAML leaves out,
	 * so only the settings the YAML writes are compared.
	 */
	AMLOPS_PLAN_ALL_OWNED = 1 << 0,
	AMLOPS_PLAN_OFFLINE = AMLOPS_PLAN_ALL_OWNED,
};

#define AMLOPS_PLAN_OWNER_TAG "managed-by"
#define AMLOPS_PLAN_OWNER_VALUE "amlops"

struct amlops_plan_opts {
	unsigned flags; /* enum amlops_plan_flags */
	/* The ownership tag; NULL: AMLOPS_PLAN_OWNER_TAG / _VALUE. */
	const char *owner_tag;
	const char *owner_value;
	/*
	 * Plan only these endpoints (e.g. those a commit touched); NULL:
	 * every endpoint on either side.
	 */
	const char *const *scope;
	size_t nscope;
};

#define AMLOPS_PLAN_OPTS_INIT                                                  \
	{                                                                      \
		0, NULL, NULL, NULL, 0                                         \
	}

/*
 * Plans `desired` against `live`. Only `endpoints`/`nendpoints` of the
 * two are read, in any order, so a caller with live endpoints from a
 * backend can wrap them in a struct amlops_spec on the stack; either may
 * be NULL (nothing). `opts` may be NULL (defaults).
 *
 * On 0 or AMLOPS_EINVALID (refusals, see above), *out is set and the
 * caller frees it with amlops_plan_free(). Endpoint and deployment names
 * are expected unique within each side (the loader checks); a duplicate
 * is refused too.
 */
int amlops_plan_build(struct amlops_plan **out,
    const struct amlops_spec *desired, const struct amlops_spec *live,
    const struct amlops_plan_opts *opts);

void amlops_plan_free(struct amlops_plan *plan);

struct amlops_plan_summary {
	size_t create;
	size_t update;
	size_t delete;
};

void amlops_plan_summary(
    struct amlops_plan_summary *out, const struct amlops_plan *plan);

/* "create", "update", "delete"; "endpoint", "deployment", "traffic", ... */
const char *amlops_plan_action_name(enum amlops_plan_action a);
const char *amlops_plan_aspect_name(enum amlops_plan_aspect a);

/*
 * An asset's identity, newly allocated: "name:version", "name@label",
 * for a REF without a parsed name the reference as written, for an
 * INLINE asset without a name "path:version" (or "path@content_id");
 * NULL for AMLOPS_ASSET_NONE.
 */
char *amlops_plan_asset_id(const struct amlops_asset *a);

/*
 * One step as JSON, the shape the json renderer and the note use:
 * {"endpoint", "deployment" (or null), "action", "aspect", "before",
 * "after", "reason"}. The caller owns it (cJSON_Delete()).
 */
cJSON *amlops_plan_step_to_json(const struct amlops_step *s);

/*
 * The whole plan, the stable `--format json` shape:
 *
 *   {"base": s|null, "head": s|null,
 *    "steps": [step...],
 *    "summary": {"create": N, "update": N, "delete": N},
 *    "refused": [{"endpoint", "deployment", "message",
 *                 "location": "FILE:LINE:COL"|null}...],
 *    "notes": [{"endpoint", "deployment", "message", "location"}...]}
 *
 * `base` and `head` are the caller's (commit ids), may be NULL. Keys are
 * only ever added to this format, never renamed or removed.
 */
cJSON *amlops_plan_to_json(
    const struct amlops_plan *plan, const char *base, const char *head);

enum amlops_plan_render_flags {
	AMLOPS_PLAN_COLOR = 1 << 0, /* ANSI colours (text only) */
};

/*
 * Renderers append to `out`; they fail only when `out` reaches its cap
 * (AMLOPS_EINVALID).
 *
 * text: per endpoint, "+" create, "~" update, "-" delete, "!" refused,
 * then "Plan: N to create, N to update, N to delete." or "No changes."
 *
 * json: amlops_plan_to_json(), pretty-printed, ending in a newline.
 *
 * markdown: a pull-request comment ready to post: heading, summary, a
 * table (endpoint | deployment | action | aspect | change), refusals,
 * and the JSON plan in a collapsed <details> block.
 */
int amlops_plan_render_text(
    struct amlops_buf *out, const struct amlops_plan *plan, unsigned flags);
int amlops_plan_render_json(struct amlops_buf *out,
    const struct amlops_plan *plan, const char *base, const char *head);
int amlops_plan_render_markdown(struct amlops_buf *out,
    const struct amlops_plan *plan, const char *base, const char *head);

#endif
