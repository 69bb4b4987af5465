/*
 * The executor: applies one commit to a target. It plans the commit
 * against the target's live state, then runs the steps one at a time per
 * endpoint, waiting for each long-running operation, and rewrites the
 * commit's note (amlops/status.h) when the apply starts and after every
 * step. Nothing here prints: progress goes to a callback, the outcome to
 * the note and the return value.
 *
 * Planning. The desired state is the commit's endpoints touched since
 * refs/amlops/applied/TARGET and since the commit's parent (every
 * endpoint with AMLOPS_APPLY_ALL); the live state is read again while any
 * of it is busy, so that a plan is never made from an operation in
 * flight (one an interrupted apply left running). The planner compares
 * specs only: the executor adds a step that applies again an endpoint or
 * deployment the target reports Failed (amlops_apply_add_repairs()).
 *
 * References. Before the first step the executor asks the target
 * whether every registered asset (`azureml:name:version`, name@latest)
 * the desired deployments in scope name exists
 * (amlops_backend_check_refs()); a missing one fails the run with no
 * request sent: "FILE:LINE:COL: deployment 'e/d': model '...' does not
 * exist in the workspace", every step "skipped" with that message and
 * the error code "ReferenceNotFound" in the note.
 *
 * Safety (DESIGN.md section 3). Before each step the executor reads the
 * endpoint again (the read that saw the previous step's operation end
 * stands for it, as does the planning read when the run follows it
 * within a second, except before deletions, which always read the
 * endpoint and its deployments again, and before traffic, which always
 * reads the deployments again: right after planning, that list alone,
 * one request, with the endpoint from the planning read) and
 *
 *   - waits while the endpoint, the step's deployment or a deployment a
 *     traffic step routes to is Creating, Updating, Scaling or Deleting
 *     (the service answers 409 otherwise), up to the step's timeout;
 *   - plans the endpoint again against what it just read: when the step
 *     is no longer in that plan its effect is already live, and the step
 *     succeeds without a request (this is what makes a rerun after a
 *     crash finish the work without applying a step twice). Otherwise the
 *     fresh step (with the live state just read) is what runs;
 *   - refuses a traffic or mirror step unless every deployment it gives a
 *     share to is Succeeded, and a deployment delete while the endpoint
 *     still routes traffic or mirror traffic to it.
 *
 * On the local target an operation is waited for by reading the
 * endpoint until the resource the step changed leaves its busy state
 * (the operation itself is asked only for a failure's code and message),
 * so that a step that follows another on the same endpoint costs its
 * request and one read; the last step of an endpoint on the endpoint
 * itself reads the endpoint alone (one request, no deployment list), and
 * that read is the final state the note records. On Azure, whose reads
 * may lag a write, the operation is polled, the next step reads, and
 * the final state is one read of the endpoint alone.
 *
 * A step ends succeeded, or failed with an error code and message: the
 * service's code for an operation that ended Failed, "timeout" past the
 * step timeout, "NotReady" / "UnderTraffic" for the refusals above,
 * "Refused" when the fresh plan refuses the endpoint, and for a request
 * that failed the HTTP reason ("Conflict", "TooManyRequests", ...) or
 * "ConnectionError". A failed step skips the rest of its endpoint; other
 * endpoints go on.
 *
 * Endpoints run one after the other, or with `jobs` > 1 up to that many
 * at once, each on its own backend (opts->open_backend) and its own view
 * of the commit's files; steps of one endpoint never overlap.
 *
 * Crash safety. The note is written before the first request and after
 * every step; a rerun of the same commit keeps the earlier, unfinished
 * run in the note's "attempts" and, through the checks above, finishes
 * the work. amlops writes the notes ref and the applied ref holding an
 * flock on GITDIR/amlops-refs.lock (dropped by the kernel when the
 * process dies) and recording "PID REF" in it until the write is done;
 * a record found there names a writer killed mid-write, whose REF.lock
 * is removed at once. Any other lock on those refs stops the run (it is
 * another writer's) unless it is older than a minute, when it is
 * removed before the run starts.
 */
#ifndef AMLOPS_APPLY_H
#define AMLOPS_APPLY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "amlops/backend.h"
#include "amlops/plan.h"
#include "amlops/source.h"
#include "amlops/spec.h"
#include "amlops/status.h"

enum amlops_apply_flags {
	/*
	 * Plan every endpoint of the repository and of the target, not
	 * only those the commit touched (relative to the target's applied
	 * ref, else to the commit's parent).
	 */
	AMLOPS_APPLY_ALL = 1 << 0,
	/*
	 * Plan from the live state as it is, without waiting for a busy
	 * target to settle (`amlops plan --live`; nothing will run).
	 */
	AMLOPS_APPLY_NO_WAIT = 1 << 1,
};

/* Default step timeout: a first Azure ML deployment takes 15-20 min. */
#define AMLOPS_APPLY_STEP_TIMEOUT_MS (30 * 60 * 1000)

/* The tags amlops puts on the endpoints it creates, besides managed-by. */
#define AMLOPS_APPLY_TAG_REPO "amlops-repository"
#define AMLOPS_APPLY_TAG_COMMIT "amlops-commit"

enum amlops_apply_event_kind {
	AMLOPS_APPLY_STEP_START = 0,
	AMLOPS_APPLY_STEP_WAIT, /* about once a second while it waits */
	AMLOPS_APPLY_STEP_DONE,
};

struct amlops_apply_event {
	enum amlops_apply_event_kind kind;
	const struct amlops_note_step *step; /* borrowed: the note's */
	size_t total;                        /* steps in the plan */
	int64_t elapsed_ms;                  /* since the step started */
	/*
	 * WAIT: what it waits for ("endpoint 'e' is Updating", "PUT
	 * onlineEndpoints/e: InProgress"); DONE: "already live" when the
	 * step needed no request. Otherwise NULL.
	 */
	const char *detail;
};

struct amlops_apply_opts {
	unsigned flags;     /* enum amlops_apply_flags */
	const char *target; /* "local" or "azure": the note and applied ref */
	const char *target_url; /* for the note, or NULL */
	/* NULL: the repository's .amlops.yml, else AMLOPS_NOTES_REF. */
	const char *notes_ref;
	/* The value of the amlops-repository tag (a URL or a path); NULL. */
	const char *repository;
	unsigned jobs;           /* 0 or 1: one endpoint at a time */
	int64_t step_timeout_ms; /* 0: AMLOPS_APPLY_STEP_TIMEOUT_MS */
	int64_t busy_poll_ms; /* 0: 1000; how often a busy resource is read */
	/*
	 * Opens one more backend to the same target, for jobs > 1 (a
	 * backend is not shared between threads). NULL: jobs is 1.
	 */
	int (*open_backend)(void *ctx, struct amlops_backend **out);
	void *backend_ctx;
	/* Called from any worker, one call at a time. May be NULL. */
	void (*progress)(void *ctx, const struct amlops_apply_event *ev);
	void *progress_ctx;
	/*
	 * Read before each step; once it is non-zero (a signal handler sets
	 * it) no further step starts: the step in flight ends, the rest are
	 * "skipped" with error code "Interrupted", the note is finished as
	 * "failed" and amlops_apply_run() returns AMLOPS_ERROR with
	 * a->interrupted set. May be NULL.
	 */
	volatile sig_atomic_t *stop;
};

#define AMLOPS_APPLY_OPTS_INIT                                                 \
	{                                                                      \
		0, "local", NULL, NULL, NULL, 1, 0, 0, NULL, NULL, NULL, NULL, \
		    NULL                                                       \
	}

/* A prepared apply: the plan, then (after amlops_apply_run) the note. */
struct amlops_apply {
	char commit[41];
	char base[41]; /* what "touched" is relative to; "" for none */
	struct amlops_source_config *cfg;
	struct amlops_diags diags; /* problems in the YAML, file:line:col */
	struct amlops_spec *desired;
	struct amlops_spec live;    /* the endpoints read from the target */
	struct amlops_live **lives; /* beside live.endpoints */
	int64_t live_ms;            /* when live was read (monotonic) */
	char **scope;               /* endpoint names planned; NULL with ALL */
	size_t nscope;
	struct amlops_plan *plan;
	struct amlops_note *note; /* set by amlops_apply_run() */
	/* Counters of the run, for the summary and the benchmark. */
	size_t succeeded, failed, skipped, already_live;
	size_t interrupted; /* steps not started because of opts->stop */
	int64_t service_ms; /* time spent waiting on the service */
	int64_t run_ms;     /* wall time of amlops_apply_run() */
};

/*
 * Loads the desired state at `commit`, reads the live state of the
 * endpoints in scope from `b`, and plans. On 0 the plan is in
 * (*out)->plan. AMLOPS_EINVALID with *out set: the YAML has problems
 * (in (*out)->diags) or the plan refuses an endpoint ((*out)->plan's
 * refusals; the message is the first refusal). Other errors leave *out
 * NULL. Free with amlops_apply_free().
 */
int amlops_apply_prepare(struct amlops_apply **out, struct amlops_source *src,
    const char *commit, struct amlops_backend *b,
    const struct amlops_apply_opts *opts);

/*
 * Runs the plan of `a` on `b` and writes the note (started now; an
 * earlier note of the same commit that is not "succeeded" is kept in
 * its "attempts"). Moves refs/amlops/applied/TARGET to the commit when
 * every step succeeded. Returns 0 then; AMLOPS_EBACKEND when a step
 * failed ("2 of 5 steps failed: endpoint 'e' step 3 (traffic): ...");
 * another code when the note cannot be written. a->note is set in every
 * case the run started.
 */
int amlops_apply_run(struct amlops_apply *a, struct amlops_source *src,
    struct amlops_backend *b, const struct amlops_apply_opts *opts);

void amlops_apply_free(struct amlops_apply *a);

/*
 * The live state of the endpoints `names` (those the target lacks are
 * left out) and, with `list_all`, of every endpoint the target lists,
 * as a spec sorted by name; with `lives` not NULL, also each endpoint's
 * live-only facts (provisioning states), an array beside
 * out->endpoints. Release both with amlops_apply_live_release() (`lives`
 * may be NULL).
 */
int amlops_apply_read_live(struct amlops_spec *out, struct amlops_live ***lives,
    struct amlops_backend *b, char *const *names, size_t n, int list_all);
void amlops_apply_live_release(
    struct amlops_spec *live, struct amlops_live **lives);

/*
 * Adds to `plan` a step that applies again what the target reports
 * Failed: "update endpoint" for a Failed endpoint, "update deployment"
 * (the whole desired deployment) for a Failed deployment the repository
 * still has, when the plan has no step for it already; placed before
 * the endpoint's traffic steps. `lives` is beside live->endpoints;
 * `scope` (may be NULL) limits the endpoints looked at.
 */
void amlops_apply_add_repairs(struct amlops_plan *plan,
    const struct amlops_spec *desired, const struct amlops_spec *live,
    struct amlops_live *const *lives, char *const *scope, size_t nscope);

/*
 * The files of `commit` for the backend's asset uploads (never the work
 * tree), on a repository handle of their own so that each worker thread
 * has one. Free with amlops_apply_files_free().
 */
struct amlops_apply_files;
int amlops_apply_files_open(
    struct amlops_apply_files **out, const char *gitdir, const char *commit);
const struct amlops_files *amlops_apply_files_get(
    const struct amlops_apply_files *f);
void amlops_apply_files_free(struct amlops_apply_files *f);

#endif
