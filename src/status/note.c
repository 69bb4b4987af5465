/*
 * The note model, its JSON form, the secret scrubber, and reading and
 * writing notes through the git source.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "amlops/err.h"
#include "amlops/source.h"
#include "amlops/status.h"
#include "amlops/util.h"

/* Notes larger than this are refused when read. */
#define NOTE_MAX (8u << 20)

static const char *const result_names[] = {
    "running", "succeeded", "failed", "superseded", "no-changes"};
static const char *const status_names[] = {
    "pending", "running", "succeeded", "failed", "skipped"};

const char *
amlops_note_result_name(enum amlops_note_result r)
{
	return (size_t)r < AMLOPS_ARRAY_SIZE(result_names) ? result_names[r]
	                                                   : "unknown";
}

int
amlops_note_result_parse(const char *s)
{
	size_t i;

	for (i = 0; s && i < AMLOPS_ARRAY_SIZE(result_names); i++)
		if (!strcmp(s, result_names[i]))
			return (int)i;
	return -1;
}

const char *
amlops_note_step_status_name(enum amlops_note_step_status s)
{
	return (size_t)s < AMLOPS_ARRAY_SIZE(status_names) ? status_names[s]
	                                                   : "unknown";
}

int
amlops_note_step_status_parse(const char *s)
{
	size_t i;

	for (i = 0; s && i < AMLOPS_ARRAY_SIZE(status_names); i++)
		if (!strcmp(s, status_names[i]))
			return (int)i;
	return -1;
}

struct amlops_note *
amlops_note_new(const char *commit, const char *target)
{
	struct amlops_note *n = amlops_xcalloc(1, sizeof(*n));
	char now[32];

	amlops_time_rfc3339(now, amlops_wall_ms());
	n->version = AMLOPS_NOTE_VERSION;
	n->commit = amlops_xstrdup(commit);
	n->target.name = amlops_xstrdup(target);
	n->started = amlops_xstrdup(now);
	n->result = AMLOPS_NOTE_RUNNING;
	n->attempts = cJSON_CreateArray();
	return n;
}

static void
step_release(struct amlops_note_step *s)
{
	free(s->endpoint);
	free(s->deployment);
	free(s->action);
	free(s->aspect);
	free(s->started);
	free(s->request_id);
	free(s->error_code);
	free(s->error_message);
}

static void
run_release(struct amlops_note *n)
{
	size_t i;

	for (i = 0; i < n->nsteps; i++)
		step_release(&n->steps[i]);
	free(n->steps);
	n->steps = NULL;
	n->nsteps = 0;
	for (i = 0; i < n->nendpoints; i++) {
		free(n->endpoints[i].name);
		free(n->endpoints[i].provisioning_state);
		free(n->endpoints[i].scoring_uri);
		cJSON_Delete(n->endpoints[i].traffic);
	}
	free(n->endpoints);
	n->endpoints = NULL;
	n->nendpoints = 0;
	cJSON_Delete(n->plan);
	n->plan = NULL;
	free(n->started);
	free(n->finished);
	n->started = n->finished = NULL;
}

void
amlops_note_free(struct amlops_note *n)
{
	if (!n)
		return;
	run_release(n);
	free(n->commit);
	free(n->target.name);
	free(n->target.url);
	free(n->target.subscription);
	free(n->target.resource_group);
	free(n->target.workspace);
	cJSON_Delete(n->attempts);
	free(n);
}

struct amlops_note_step *
amlops_note_add_step(struct amlops_note *n, const char *endpoint,
    const char *deployment, const char *action, const char *aspect)
{
	struct amlops_note_step *s;

	n->steps =
	    amlops_xrealloc(n->steps, (n->nsteps + 1) * sizeof(*n->steps));
	s = &n->steps[n->nsteps++];
	memset(s, 0, sizeof(*s));
	s->index = (int)n->nsteps;
	s->endpoint = amlops_xstrdup(endpoint);
	s->deployment = amlops_xstrdup(deployment);
	s->action = amlops_xstrdup(action);
	s->aspect = amlops_xstrdup(aspect);
	s->status = AMLOPS_STEP_PENDING;
	s->ms = -1;
	return s;
}

struct amlops_note_endpoint *
amlops_note_add_endpoint(struct amlops_note *n, const char *name,
    const char *provisioning_state, const char *scoring_uri,
    const cJSON *traffic)
{
	struct amlops_note_endpoint *e;

	n->endpoints = amlops_xrealloc(
	    n->endpoints, (n->nendpoints + 1) * sizeof(*n->endpoints));
	e = &n->endpoints[n->nendpoints++];
	e->name = amlops_xstrdup(name);
	e->provisioning_state = amlops_xstrdup(provisioning_state);
	e->scoring_uri = amlops_xstrdup(scoring_uri);
	e->traffic =
	    traffic ? cJSON_Duplicate(traffic, 1) : cJSON_CreateObject();
	return e;
}

static void
add_str(cJSON *o, const char *k, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, k, v);
	else
		cJSON_AddNullToObject(o, k);
}

/* The run (everything but version, commit, target and attempts). */
static void
run_to_json(cJSON *o, const struct amlops_note *n)
{
	cJSON *steps, *eps;
	size_t i;

	add_str(o, "started", n->started);
	add_str(o, "finished", n->finished);
	cJSON_AddStringToObject(
	    o, "result", amlops_note_result_name(n->result));
	if (n->plan)
		cJSON_AddItemToObject(o, "plan", cJSON_Duplicate(n->plan, 1));
	else
		cJSON_AddNullToObject(o, "plan");
	steps = cJSON_AddArrayToObject(o, "steps");
	for (i = 0; i < n->nsteps; i++) {
		const struct amlops_note_step *s = &n->steps[i];
		cJSON *j = cJSON_CreateObject(), *err;

		cJSON_AddNumberToObject(j, "index", s->index);
		add_str(j, "endpoint", s->endpoint);
		add_str(j, "deployment", s->deployment);
		add_str(j, "action", s->action);
		add_str(j, "aspect", s->aspect);
		cJSON_AddStringToObject(
		    j, "status", amlops_note_step_status_name(s->status));
		add_str(j, "started", s->started);
		if (s->ms >= 0)
			cJSON_AddNumberToObject(j, "ms", (double)s->ms);
		else
			cJSON_AddNullToObject(j, "ms");
		add_str(j, "request_id", s->request_id);
		if (s->error_code || s->error_message) {
			err = cJSON_AddObjectToObject(j, "error");
			add_str(err, "code", s->error_code);
			add_str(err, "message", s->error_message);
		} else {
			cJSON_AddNullToObject(j, "error");
		}
		cJSON_AddItemToArray(steps, j);
	}
	eps = cJSON_AddArrayToObject(o, "endpoints");
	for (i = 0; i < n->nendpoints; i++) {
		const struct amlops_note_endpoint *e = &n->endpoints[i];
		cJSON *j = cJSON_CreateObject();

		add_str(j, "name", e->name);
		add_str(j, "provisioning_state", e->provisioning_state);
		add_str(j, "scoring_uri", e->scoring_uri);
		cJSON_AddItemToObject(j, "traffic",
		    e->traffic ? cJSON_Duplicate(e->traffic, 1)
		               : cJSON_CreateObject());
		cJSON_AddItemToArray(eps, j);
	}
}

static cJSON *
head_to_json(const struct amlops_note *n)
{
	cJSON *o = cJSON_CreateObject(), *t;

	cJSON_AddNumberToObject(o, "version", n->version);
	add_str(o, "commit", n->commit);
	t = cJSON_AddObjectToObject(o, "target");
	add_str(t, "name", n->target.name);
	add_str(t, "url", n->target.url);
	add_str(t, "subscription", n->target.subscription);
	add_str(t, "resource_group", n->target.resource_group);
	add_str(t, "workspace", n->target.workspace);
	return o;
}

cJSON *
amlops_note_to_json(const struct amlops_note *n)
{
	cJSON *o = head_to_json(n);

	run_to_json(o, n);
	cJSON_AddItemToObject(o, "attempts",
	    n->attempts ? cJSON_Duplicate(n->attempts, 1)
	                : cJSON_CreateArray());
	return o;
}

void
amlops_note_restart(struct amlops_note *n)
{
	cJSON *old = head_to_json(n);
	char now[32];

	run_to_json(old, n);
	cJSON_AddItemToArray(n->attempts, old);
	run_release(n);
	amlops_time_rfc3339(now, amlops_wall_ms());
	n->started = amlops_xstrdup(now);
	n->result = AMLOPS_NOTE_RUNNING;
}

char *
amlops_note_format(const struct amlops_note *n)
{
	cJSON *j = amlops_note_to_json(n);
	char *text, *out;

	amlops_note_scrub(j);
	text = cJSON_Print(j);
	cJSON_Delete(j);
	if (!text)
		abort();
	out = amlops_xasprintf("%s\n", text);
	cJSON_free(text);
	return out;
}

/* Scrubbing. */

static const char *const secret_keys[] = {"key", "keys", "primarykey",
    "secondarykey", "primary_key", "secondary_key", "secret", "client_secret",
    "clientsecret", "password", "passwd", "token", "accesstoken",
    "access_token", "refresh_token", "id_token", "credential", "credentials",
    "authorization", "connection_string", "connectionstring", "sas",
    "sas_token", "sig", "accountkey", "account_key", "api_key", "apikey"};

static int
secret_key(const char *k)
{
	size_t i;

	if (!k)
		return 0;
	for (i = 0; i < AMLOPS_ARRAY_SIZE(secret_keys); i++)
		if (!strcasecmp(k, secret_keys[i]))
			return 1;
	return 0;
}

static int
looks_jwt(const char *s)
{
	const char *d1, *d2;

	if (strncmp(s, "eyJ", 3))
		return 0;
	if (!(d1 = strchr(s, '.')) || !(d2 = strchr(d1 + 1, '.')))
		return 0;
	return d1 - s > 8 && d2 - d1 > 8;
}

/*
 * Whether `s` is, or carries, a secret. *keep is set to the length of a
 * harmless prefix (a URL without its query) or 0.
 */
static int
looks_secret(const char *s, size_t *keep)
{
	const char *q;

	*keep = 0;
	if (!strncasecmp(s, "bearer ", 7) || !strncasecmp(s, "basic ", 6) ||
	    looks_jwt(s))
		return 1;
	if (strcasestr(s, "accountkey=") ||
	    strcasestr(s, "sharedaccesssignature=") ||
	    strcasestr(s, "sharedaccesskey="))
		return 1;
	if ((q = strchr(s, '?')) &&
	    (strcasestr(q, "sig=") || strcasestr(q, "token=") ||
	        strcasestr(q, "code=") || strcasestr(q, "key="))) {
		if (strstr(s, "://"))
			*keep = (size_t)(q - s);
		return 1;
	}
	return 0;
}

/* Turns `c` into the string "[redacted]" in place, keeping its key. */
static void
redact(cJSON *c)
{
	if (cJSON_IsString(c)) {
		cJSON_SetValuestring(c, "[redacted]");
		return;
	}
	cJSON_Delete(c->child);
	c->child = NULL;
	c->type = cJSON_String;
	c->valueint = 0;
	c->valuedouble = 0;
	c->valuestring = cJSON_malloc(sizeof("[redacted]"));
	memcpy(c->valuestring, "[redacted]", sizeof("[redacted]"));
}

static size_t
scrub(cJSON *j)
{
	cJSON *c;
	size_t n = 0, keep;

	for (c = j ? j->child : NULL; c; c = c->next) {
		if (c->string && secret_key(c->string) && !cJSON_IsNull(c) &&
		    !(cJSON_IsString(c) &&
		        !strcmp(c->valuestring, "[redacted]"))) {
			redact(c);
			n++;
			continue;
		}
		if (cJSON_IsString(c) && c->valuestring &&
		    looks_secret(c->valuestring, &keep)) {
			char *v = keep ? amlops_xasprintf("%.*s?[redacted]",
			                     (int)keep, c->valuestring)
			               : amlops_xstrdup("[redacted]");

			cJSON_SetValuestring(c, v);
			free(v);
			n++;
			continue;
		}
		if (cJSON_IsObject(c) || cJSON_IsArray(c))
			n += scrub(c);
	}
	return n;
}

size_t
amlops_note_scrub(cJSON *json)
{
	size_t keep;

	if (cJSON_IsString(json) && json->valuestring &&
	    looks_secret(json->valuestring, &keep)) {
		cJSON_SetValuestring(json, "[redacted]");
		return 1;
	}
	return scrub(json);
}

/* Parsing. */

static int
bad(const char *path, const char *what)
{
	return amlops_err_set(AMLOPS_EINVALID, "note: '%s': %s", path, what);
}

/* An optional string: absent and null give NULL. */
static int
opt_str(char **out, const cJSON *o, const char *key, const char *path)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	char p[160];

	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v)) {
		snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", key);
		return bad(p, "expected a string");
	}
	*out = amlops_xstrdup(v->valuestring);
	return 0;
}

static int
req_str(char **out, const cJSON *o, const char *key, const char *path)
{
	char p[160];
	int error;

	if ((error = opt_str(out, o, key, path)) < 0)
		return error;
	if (!*out) {
		snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", key);
		return bad(p, "missing");
	}
	return 0;
}

static int
parse_step(struct amlops_note_step *s, const cJSON *j, size_t i)
{
	const cJSON *v;
	char path[64], *status = NULL;
	int error, st;

	snprintf(path, sizeof(path), "steps[%zu]", i);
	memset(s, 0, sizeof(*s));
	s->ms = -1;
	if (!cJSON_IsObject(j))
		return bad(path, "expected an object");
	v = cJSON_GetObjectItemCaseSensitive(j, "index");
	s->index = cJSON_IsNumber(v) ? v->valueint : (int)i + 1;
	if ((error = req_str(&s->endpoint, j, "endpoint", path)) < 0 ||
	    (error = opt_str(&s->deployment, j, "deployment", path)) < 0 ||
	    (error = req_str(&s->action, j, "action", path)) < 0 ||
	    (error = req_str(&s->aspect, j, "aspect", path)) < 0 ||
	    (error = req_str(&status, j, "status", path)) < 0 ||
	    (error = opt_str(&s->started, j, "started", path)) < 0 ||
	    (error = opt_str(&s->request_id, j, "request_id", path)) < 0)
		goto done;
	if ((st = amlops_note_step_status_parse(status)) < 0) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "note: '%s.status': unknown status '%s'", path, status);
		goto done;
	}
	s->status = st;
	v = cJSON_GetObjectItemCaseSensitive(j, "ms");
	if (cJSON_IsNumber(v))
		s->ms = amlops_clamp_i64(v->valuedouble, 0, INT64_MAX);
	else if (v && !cJSON_IsNull(v)) {
		error = amlops_err_set(
		    AMLOPS_EINVALID, "note: '%s.ms': expected a number", path);
		goto done;
	}
	v = cJSON_GetObjectItemCaseSensitive(j, "error");
	if (cJSON_IsObject(v)) {
		strncat(path, ".error", sizeof(path) - strlen(path) - 1);
		if ((error = opt_str(&s->error_code, v, "code", path)) < 0 ||
		    (error = opt_str(&s->error_message, v, "message", path)) <
		        0)
			goto done;
	} else if (v && !cJSON_IsNull(v)) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "note: '%s.error': expected an object", path);
		goto done;
	}
done:
	free(status);
	return error;
}

static int
parse_endpoint(struct amlops_note_endpoint *e, const cJSON *j, size_t i)
{
	const cJSON *t;
	char path[64];
	int error;

	snprintf(path, sizeof(path), "endpoints[%zu]", i);
	memset(e, 0, sizeof(*e));
	if (!cJSON_IsObject(j))
		return bad(path, "expected an object");
	if ((error = req_str(&e->name, j, "name", path)) < 0 ||
	    (error = opt_str(
	         &e->provisioning_state, j, "provisioning_state", path)) < 0 ||
	    (error = opt_str(&e->scoring_uri, j, "scoring_uri", path)) < 0)
		return error;
	t = cJSON_GetObjectItemCaseSensitive(j, "traffic");
	if (t && !cJSON_IsNull(t) && !cJSON_IsObject(t)) {
		strncat(path, ".traffic", sizeof(path) - strlen(path) - 1);
		return bad(path, "expected an object");
	}
	e->traffic =
	    cJSON_IsObject(t) ? cJSON_Duplicate(t, 1) : cJSON_CreateObject();
	return 0;
}

int
amlops_note_parse(struct amlops_note **out, const char *text)
{
	struct amlops_note *n = NULL;
	cJSON *j = NULL;
	const cJSON *v, *t, *arr, *it;
	char *result = NULL;
	size_t i;
	int error = 0, r;

	*out = NULL;
	if (!(j = cJSON_Parse(text))) {
		const char *at = cJSON_GetErrorPtr();

		error = amlops_err_set(AMLOPS_EINVALID,
		    "note: not JSON (at byte %td)",
		    at && at >= text ? at - text : (ptrdiff_t)0);
		goto done;
	}
	if (!cJSON_IsObject(j)) {
		error = amlops_err_set(
		    AMLOPS_EINVALID, "note: expected a JSON object");
		goto done;
	}
	n = amlops_xcalloc(1, sizeof(*n));
	v = cJSON_GetObjectItemCaseSensitive(j, "version");
	if (!cJSON_IsNumber(v)) {
		error = bad("version", "missing");
		goto done;
	}
	if (v->valueint != AMLOPS_NOTE_VERSION) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "note: 'version': version %d is not supported (expected "
		    "%d)",
		    v->valueint, AMLOPS_NOTE_VERSION);
		goto done;
	}
	n->version = v->valueint;
	if ((error = req_str(&n->commit, j, "commit", "")) < 0)
		goto done;
	t = cJSON_GetObjectItemCaseSensitive(j, "target");
	if (!cJSON_IsObject(t)) {
		error = bad("target", "expected an object");
		goto done;
	}
	if ((error = req_str(&n->target.name, t, "name", "target")) < 0 ||
	    (error = opt_str(&n->target.url, t, "url", "target")) < 0 ||
	    (error = opt_str(
	         &n->target.subscription, t, "subscription", "target")) < 0 ||
	    (error = opt_str(&n->target.resource_group, t, "resource_group",
	         "target")) < 0 ||
	    (error = opt_str(&n->target.workspace, t, "workspace", "target")) <
	        0 ||
	    (error = opt_str(&n->started, j, "started", "")) < 0 ||
	    (error = opt_str(&n->finished, j, "finished", "")) < 0 ||
	    (error = req_str(&result, j, "result", "")) < 0)
		goto done;
	if ((r = amlops_note_result_parse(result)) < 0) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "note: 'result': unknown result '%s'", result);
		goto done;
	}
	n->result = r;
	v = cJSON_GetObjectItemCaseSensitive(j, "plan");
	if (cJSON_IsObject(v))
		n->plan = cJSON_Duplicate(v, 1);
	else if (v && !cJSON_IsNull(v)) {
		error = bad("plan", "expected an object");
		goto done;
	}
	arr = cJSON_GetObjectItemCaseSensitive(j, "steps");
	if (arr && !cJSON_IsArray(arr)) {
		error = bad("steps", "expected an array");
		goto done;
	}
	n->steps = amlops_xcalloc(
	    (size_t)cJSON_GetArraySize(arr) + 1, sizeof(*n->steps));
	i = 0;
	cJSON_ArrayForEach(it, arr)
	{
		n->nsteps++;
		if ((error = parse_step(&n->steps[i], it, i)) < 0)
			goto done;
		i++;
	}
	arr = cJSON_GetObjectItemCaseSensitive(j, "endpoints");
	if (arr && !cJSON_IsArray(arr)) {
		error = bad("endpoints", "expected an array");
		goto done;
	}
	n->endpoints = amlops_xcalloc(
	    (size_t)cJSON_GetArraySize(arr) + 1, sizeof(*n->endpoints));
	i = 0;
	cJSON_ArrayForEach(it, arr)
	{
		n->nendpoints++;
		if ((error = parse_endpoint(&n->endpoints[i], it, i)) < 0)
			goto done;
		i++;
	}
	v = cJSON_GetObjectItemCaseSensitive(j, "attempts");
	if (v && !cJSON_IsNull(v) && !cJSON_IsArray(v)) {
		error = bad("attempts", "expected an array");
		goto done;
	}
	n->attempts =
	    cJSON_IsArray(v) ? cJSON_Duplicate(v, 1) : cJSON_CreateArray();
	*out = n;
	n = NULL;
done:
	free(result);
	amlops_note_free(n);
	cJSON_Delete(j);
	return error;
}

int
amlops_status_note_read(struct amlops_note **out, struct amlops_source *src,
    const char *ref, const char *commit)
{
	char *text = NULL;
	int error;

	*out = NULL;
	if ((error = amlops_source_note_get(&text, src, ref, commit)) < 0)
		return error;
	if (strlen(text) > NOTE_MAX) {
		free(text);
		return amlops_err_set(AMLOPS_EINVALID,
		    "note of commit %.12s is larger than %u bytes", commit,
		    NOTE_MAX);
	}
	error = amlops_note_parse(out, text);
	if (error < 0)
		amlops_err_prefix(error, "commit %.12s", commit);
	free(text);
	return error;
}

int
amlops_status_note_write(
    struct amlops_source *src, const char *ref, const struct amlops_note *note)
{
	char *text;
	int error;

	if (!note->commit)
		return amlops_err_set(AMLOPS_EINVALID, "note has no commit");
	text = amlops_note_format(note);
	error = amlops_source_note_set(src, ref, note->commit, text);
	free(text);
	return error;
}
