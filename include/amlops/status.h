/*
 * The note: what amlops did with a commit, as one JSON object in a git
 * note on that commit (refs/notes/amlops unless configured). apply
 * rewrites it in place after every step, so a crash loses at most the
 * step in flight. `amlops status` renders it; `git notes --ref amlops
 * show REV` shows it raw.
 *
 * Format (version 1; keys are only ever added):
 *
 *   {"version": 1,
 *    "commit": "40 hex digits",
 *    "target": {"name": "local", "url": s|null, "subscription": s|null,
 *               "resource_group": s|null, "workspace": s|null},
 *    "started": "RFC 3339", "finished": "RFC 3339"|null,
 *    "result": "running"|"succeeded"|"failed"|"superseded"|"no-changes",
 *    "plan": {the `amlops plan --format json` object}|null,
 *    "steps": [{"index": 1, "endpoint": s, "deployment": s|null,
 *               "action": s, "aspect": s,
 *               "status": "pending"|"running"|"succeeded"|"failed"|
 *                         "skipped",
 *               "started": "RFC 3339"|null, "ms": N|null,
 *               "request_id": s|null,
 *               "error": {"code": s, "message": s}|null}],
 *    "endpoints": [{"name": s, "provisioning_state": s|null,
 *                   "scoring_uri": s|null, "traffic": {"blue": 100}}],
 *    "attempts": [earlier interrupted attempts: objects of this shape
 *                 without "attempts"]}
 *
 * No secret ever goes in: amlops_note_format() runs amlops_note_scrub()
 * over the whole object before it is written.
 */
#ifndef AMLOPS_STATUS_H
#define AMLOPS_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "amlops/util.h"

struct amlops_source;

#define AMLOPS_NOTE_VERSION 1

enum amlops_note_result {
	AMLOPS_NOTE_RUNNING = 0,
	AMLOPS_NOTE_SUCCEEDED,
	AMLOPS_NOTE_FAILED,
	AMLOPS_NOTE_SUPERSEDED,
	AMLOPS_NOTE_NO_CHANGES,
};

enum amlops_note_step_status {
	AMLOPS_STEP_PENDING = 0,
	AMLOPS_STEP_RUNNING,
	AMLOPS_STEP_SUCCEEDED,
	AMLOPS_STEP_FAILED,
	AMLOPS_STEP_SKIPPED,
};

struct amlops_note_target {
	char *name;
	char *url;
	char *subscription;
	char *resource_group;
	char *workspace;
};

struct amlops_note_step {
	int index; /* 1-based */
	char *endpoint;
	char *deployment; /* or NULL */
	char *action;     /* "create", "update", "delete" */
	char *aspect;     /* "traffic", "scale", ... */
	enum amlops_note_step_status status;
	char *started;    /* RFC 3339, or NULL */
	int64_t ms;       /* duration; -1: unknown */
	char *request_id; /* or NULL */
	char *error_code; /* both NULL when no error */
	char *error_message;
};

struct amlops_note_endpoint {
	char *name;
	char *provisioning_state;
	char *scoring_uri;
	cJSON *traffic; /* object of numbers, never NULL */
};

struct amlops_note {
	int version;
	char *commit;
	struct amlops_note_target target;
	char *started;
	char *finished; /* NULL while running */
	enum amlops_note_result result;
	cJSON *plan; /* owned; or NULL */
	struct amlops_note_step *steps;
	size_t nsteps;
	struct amlops_note_endpoint *endpoints;
	size_t nendpoints;
	cJSON *attempts; /* owned array, never NULL */
};

/*
 * A new note for `commit` on `target`, started now, result running. The
 * caller frees it with amlops_note_free().
 */
struct amlops_note *amlops_note_new(const char *commit, const char *target);
void amlops_note_free(struct amlops_note *note);

/*
 * Appends a pending step and returns it (borrowed; valid until the next
 * add). `deployment` may be NULL.
 */
struct amlops_note_step *amlops_note_add_step(struct amlops_note *note,
    const char *endpoint, const char *deployment, const char *action,
    const char *aspect);

/* Appends an endpoint's final state; `traffic` is copied (NULL: {}). */
struct amlops_note_endpoint *amlops_note_add_endpoint(struct amlops_note *note,
    const char *name, const char *provisioning_state, const char *scoring_uri,
    const cJSON *traffic);

/*
 * Moves the current run (steps, times, result, plan) into `attempts` and
 * starts again: used when apply resumes a commit whose note says it was
 * interrupted.
 */
void amlops_note_restart(struct amlops_note *note);

/* Names, and back (-1 when unknown). */
const char *amlops_note_result_name(enum amlops_note_result r);
int amlops_note_result_parse(const char *s);
const char *amlops_note_step_status_name(enum amlops_note_step_status s);
int amlops_note_step_status_parse(const char *s);

/* The note as JSON (not scrubbed); the caller owns it. */
cJSON *amlops_note_to_json(const struct amlops_note *note);

/*
 * The note as the text that is stored: scrubbed, pretty-printed, ending
 * in a newline. The caller frees it.
 */
char *amlops_note_format(const struct amlops_note *note);

/*
 * Parses a stored note. AMLOPS_EINVALID with a message naming the key
 * ("note: 'steps[2].status': unknown status 'done'") on anything that is
 * not the format above; the caller frees `*out` with amlops_note_free().
 */
int amlops_note_parse(struct amlops_note **out, const char *text);

/*
 * Replaces, in place, every value that may be a secret with
 * "[redacted]": values of keys named like a secret (key, keys,
 * primaryKey, secret, password, token, accessToken, credential(s),
 * authorization, connection_string, sas, sig, client_secret, ...), and
 * strings that look like one (a "Bearer ..." header value, a JWT, a
 * connection string with AccountKey= or SharedAccessSignature=, a URL
 * whose query carries sig= or a token: the query is dropped). Returns
 * how many values it replaced.
 */
size_t amlops_note_scrub(cJSON *json);

/*
 * Reads and writes the note of `commit` (the note's own commit for
 * writes) under `ref` (AMLOPS_NOTES_REF when NULL). _read gives
 * AMLOPS_ENOTFOUND with "no note for commit X" when there is none.
 * _write rewrites the note in place and touches no other note or ref.
 */
int amlops_status_note_read(struct amlops_note **out, struct amlops_source *src,
    const char *ref, const char *commit);
int amlops_status_note_write(
    struct amlops_source *src, const char *ref, const struct amlops_note *note);

/*
 * Renders a note for people: the commit and its summary line (may be
 * NULL), target, result, times, each step with its outcome and duration
 * (and error), each endpoint's final state.
 */
int amlops_note_render_text(struct amlops_buf *out,
    const struct amlops_note *note, const char *summary);

#endif
