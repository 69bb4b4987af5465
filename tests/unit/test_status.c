/*
 * The note: model <-> JSON round trips, strict parsing with exact
 * messages, scrubbing, the human rendering, and reading and writing notes
 * in real temporary git repositories (other notes and refs untouched).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "amlops/err.h"
#include "amlops/source.h"
#include "amlops/status.h"
#include "amlops/util.h"

#include "testrepo.h"

static int
repo_setup(void **state)
{
	struct repo *r = calloc(1, sizeof(*r));

	strcpy(r->dir, "/tmp/amlops-test-status-XXXXXX");
	if (!mkdtemp(r->dir))
		return -1;
	sh("cd %s && git init -q -b main . && git config user.name t && "
	   "git config user.email t@example.com && echo a > a.txt && "
	   "git add a.txt && git commit -q -m first && echo b > b.txt && "
	   "git add b.txt && git commit -q -m second",
	    r->dir);
	*state = r;
	return 0;
}

static int
repo_teardown(void **state)
{
	struct repo *r = *state;

	sh("rm -rf %s", r->dir);
	free(r);
	return 0;
}

static struct amlops_note *
sample_note(const char *commit)
{
	struct amlops_note *n = amlops_note_new(commit, "local");
	struct amlops_note_step *s;
	cJSON *traffic = cJSON_CreateObject();

	n->target.url = strdup("http://127.0.0.1:8321");
	n->plan = cJSON_Parse("{\"steps\":[],\"summary\":{\"create\":2}}");
	s = amlops_note_add_step(n, "my-endpoint", NULL, "create", "endpoint");
	s->status = AMLOPS_STEP_SUCCEEDED;
	s->started = strdup("2026-11-25T18:00:00Z");
	s->ms = 412;
	s->request_id = strdup("0f8fad5b-d9cb-469f-a165-70867728950e");
	s = amlops_note_add_step(
	    n, "my-endpoint", "blue", "create", "deployment");
	s->status = AMLOPS_STEP_FAILED;
	s->ms = 61500;
	s->error_code = strdup("ScoringScriptFailed");
	s->error_message = strdup("NameError: name 'jobs' is not defined");
	s = amlops_note_add_step(n, "my-endpoint", NULL, "update", "traffic");
	s->status = AMLOPS_STEP_SKIPPED;
	cJSON_AddNumberToObject(traffic, "blue", 100);
	amlops_note_add_endpoint(n, "my-endpoint", "Succeeded",
	    "http://127.0.0.1:8322/endpoints/my-endpoint/score", traffic);
	cJSON_Delete(traffic);
	n->result = AMLOPS_NOTE_FAILED;
	n->finished = strdup("2026-11-25T18:01:02Z");
	return n;
}

static void
note__round_trip_keeps_every_field(void **state)
{
	struct amlops_note *n = sample_note(
	                       "0123456789abcdef0123456789abcdef01234567"),
	                   *back = NULL;
	char *text = amlops_note_format(n), *again;
	cJSON *a, *b;

	(void)state;
	assert_int_equal(amlops_note_parse(&back, text), 0);
	assert_string_equal(back->commit, n->commit);
	assert_string_equal(back->target.name, "local");
	assert_string_equal(back->target.url, "http://127.0.0.1:8321");
	assert_null(back->target.workspace);
	assert_int_equal(back->result, AMLOPS_NOTE_FAILED);
	assert_int_equal(back->nsteps, 3);
	assert_int_equal(back->steps[0].index, 1);
	assert_int_equal(back->steps[0].ms, 412);
	assert_string_equal(
	    back->steps[0].request_id, "0f8fad5b-d9cb-469f-a165-70867728950e");
	assert_null(back->steps[0].deployment);
	assert_string_equal(back->steps[1].deployment, "blue");
	assert_int_equal(back->steps[1].status, AMLOPS_STEP_FAILED);
	assert_string_equal(back->steps[1].error_code, "ScoringScriptFailed");
	assert_int_equal(back->steps[2].ms, -1);
	assert_int_equal(back->steps[2].status, AMLOPS_STEP_SKIPPED);
	assert_int_equal(back->nendpoints, 1);
	assert_int_equal(
	    cJSON_GetObjectItem(back->endpoints[0].traffic, "blue")->valueint,
	    100);
	assert_non_null(back->plan);
	/* the whole JSON is the same, and formatting is stable */
	a = amlops_note_to_json(n);
	b = amlops_note_to_json(back);
	assert_true(cJSON_Compare(a, b, 1));
	again = amlops_note_format(back);
	assert_string_equal(text, again);
	assert_int_equal(text[strlen(text) - 1], '\n');
	cJSON_Delete(a);
	cJSON_Delete(b);
	free(again);
	free(text);
	amlops_note_free(back);
	amlops_note_free(n);
}

static void
note__restart_keeps_the_interrupted_attempt(void **state)
{
	struct amlops_note *n = sample_note("abc"), *back = NULL;
	cJSON *att;
	char *text;

	(void)state;
	amlops_note_restart(n);
	assert_int_equal(n->nsteps, 0);
	assert_int_equal(n->result, AMLOPS_NOTE_RUNNING);
	assert_null(n->finished);
	assert_int_equal(cJSON_GetArraySize(n->attempts), 1);
	att = cJSON_GetArrayItem(n->attempts, 0);
	assert_string_equal(
	    cJSON_GetObjectItem(att, "result")->valuestring, "failed");
	assert_int_equal(
	    cJSON_GetArraySize(cJSON_GetObjectItem(att, "steps")), 3);
	assert_null(cJSON_GetObjectItem(att, "attempts"));
	text = amlops_note_format(n);
	assert_int_equal(amlops_note_parse(&back, text), 0);
	assert_int_equal(cJSON_GetArraySize(back->attempts), 1);
	free(text);
	amlops_note_free(back);
	amlops_note_free(n);
}

static void
note__bad_notes_say_which_key(void **state)
{
	static const struct {
		const char *text;
		const char *msg;
	} cases[] = {
	    {"not json", "note: not JSON (at byte 0)"},
	    {"[1]", "note: expected a JSON object"},
	    {"{}", "note: 'version': missing"},
	    {"{\"version\":2}",
	        "note: 'version': version 2 is not supported (expected 1)"},
	    {"{\"version\":1}", "note: 'commit': missing"},
	    {"{\"version\":1,\"commit\":\"c\"}",
	        "note: 'target': expected an object"},
	    {"{\"version\":1,\"commit\":\"c\",\"target\":{}}",
	        "note: 'target.name': missing"},
	    {"{\"version\":1,\"commit\":\"c\",\"target\":{\"name\":1}}",
	        "note: 'target.name': expected a string"},
	    {"{\"version\":1,\"commit\":\"c\",\"target\":{\"name\":\"l\"}}",
	        "note: 'result': missing"},
	    {"{\"version\":1,\"commit\":\"c\",\"target\":{\"name\":\"l\"},"
	     "\"result\":\"done\"}",
	        "note: 'result': unknown result 'done'"},
	    {"{\"version\":1,\"commit\":\"c\",\"target\":{\"name\":\"l\"},"
	     "\"result\":\"failed\",\"steps\":{}}",
	        "note: 'steps': expected an array"},
	    {"{\"version\":1,\"commit\":\"c\",\"target\":{\"name\":\"l\"},"
	     "\"result\":\"failed\",\"steps\":[{\"endpoint\":\"e\","
	     "\"action\":\"create\",\"aspect\":\"endpoint\","
	     "\"status\":\"ok\"}]}",
	        "note: 'steps[0].status': unknown status 'ok'"},
	    {"{\"version\":1,\"commit\":\"c\",\"target\":{\"name\":\"l\"},"
	     "\"result\":\"failed\",\"steps\":[{\"endpoint\":\"e\","
	     "\"aspect\":\"endpoint\",\"status\":\"ok\"}]}",
	        "note: 'steps[0].action': missing"},
	    {"{\"version\":1,\"commit\":\"c\",\"target\":{\"name\":\"l\"},"
	     "\"result\":\"failed\",\"steps\":[{\"endpoint\":\"e\","
	     "\"action\":\"create\",\"aspect\":\"endpoint\","
	     "\"status\":\"failed\",\"ms\":\"5\"}]}",
	        "note: 'steps[0].ms': expected a number"},
	    {"{\"version\":1,\"commit\":\"c\",\"target\":{\"name\":\"l\"},"
	     "\"result\":\"failed\",\"steps\":[{\"endpoint\":\"e\","
	     "\"action\":\"create\",\"aspect\":\"endpoint\","
	     "\"status\":\"failed\",\"error\":{\"code\":7}}]}",
	        "note: 'steps[0].error.code': expected a string"},
	    {"{\"version\":1,\"commit\":\"c\",\"target\":{\"name\":\"l\"},"
	     "\"result\":\"failed\",\"endpoints\":[{\"name\":\"e\","
	     "\"traffic\":[]}]}",
	        "note: 'endpoints[0].traffic': expected an object"},
	    {"{\"version\":1,\"commit\":\"c\",\"target\":{\"name\":\"l\"},"
	     "\"result\":\"failed\",\"plan\":3}",
	        "note: 'plan': expected an object"},
	    {"{\"version\":1,\"commit\":\"c\",\"target\":{\"name\":\"l\"},"
	     "\"result\":\"failed\",\"attempts\":{}}",
	        "note: 'attempts': expected an array"},
	};
	struct amlops_note *n = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < AMLOPS_ARRAY_SIZE(cases); i++) {
		assert_int_equal(
		    amlops_note_parse(&n, cases[i].text), AMLOPS_EINVALID);
		assert_null(n);
		assert_string_equal(amlops_err_last(), cases[i].msg);
	}
}

static void
note__scrub_removes_secrets(void **state)
{
	struct amlops_note *n = sample_note("abc");
	const char *secrets[] = {
	    "s3cr3t-primary",
	    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4eXoifQ.c2lnbmF0dXJl",
	    "sv=2021&sig=AbCdEf%2B",
	    "QWNjb3VudEtleQ==",
	    "hunter2",
	    "zzz-cred",
	};
	cJSON *j;
	char *text;
	size_t i;

	(void)state;
	free(n->steps[1].error_message);
	n->steps[1].error_message = strdup(
	    "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4eXoifQ.c2lnbmF0dXJl");
	free(n->endpoints[0].scoring_uri);
	n->endpoints[0].scoring_uri = strdup(
	    "https://acct.blob.core.windows.net/c/m.pkl?sv=2021&sig=AbCdEf%2B");
	cJSON_Delete(n->plan);
	n->plan = cJSON_Parse(
	    "{\"steps\":[{\"after\":{\"primaryKey\":\"s3cr3t-primary\","
	    "\"env\":{\"CONN\":\"DefaultEndpointsProtocol=https;AccountKey="
	    "QWNjb3VudEtleQ==\"},\"password\":\"hunter2\","
	    "\"keys\":null,\"credentials\":{\"a\":\"zzz-cred\"}}}]}");
	text = amlops_note_format(n);
	for (i = 0; i < AMLOPS_ARRAY_SIZE(secrets); i++)
		assert_null(strstr(text, secrets[i]));
	/* the harmless part of a URL stays, the key name stays */
	assert_non_null(strstr(
	    text, "\"https://acct.blob.core.windows.net/c/m.pkl?[redacted]\""));
	assert_non_null(strstr(text, "\"primaryKey\":\t\"[redacted]\""));
	assert_non_null(strstr(text, "\"keys\":\tnull"));
	/* ordinary values are left alone */
	assert_non_null(strstr(text, "ScoringScriptFailed"));
	assert_non_null(strstr(text, "0f8fad5b-d9cb-469f-a165-70867728950e"));
	/* counting: scrubbing is idempotent */
	j = cJSON_Parse(text);
	assert_int_equal(amlops_note_scrub(j), 0);
	cJSON_Delete(j);
	free(text);
	amlops_note_free(n);
}

static void
note__render_text_for_people(void **state)
{
	struct amlops_note *n =
	    sample_note("0123456789abcdef0123456789abcdef01234567");
	struct amlops_buf b = AMLOPS_BUF_INIT;

	(void)state;
	n->started = (free(n->started), strdup("2026-11-25T18:00:00Z"));
	assert_int_equal(amlops_note_render_text(&b, n, "scale blue"), 0);
	assert_string_equal(amlops_buf_cstr(&b),
	    "commit   0123456789abcdef0123456789abcdef01234567  scale blue\n"
	    "target   local (http://127.0.0.1:8321)\n"
	    "result   failed (1 of 3 steps succeeded)\n"
	    "started  2026-11-25T18:00:00Z\n"
	    "finished 2026-11-25T18:01:02Z\n"
	    "\n"
	    "steps:\n"
	    "   1. succeeded  my-endpoint: create endpoint  412ms  request "
	    "0f8fad5b-d9cb-469f-a165-70867728950e\n"
	    "   2. failed     my-endpoint/blue: create deployment  1m01s\n"
	    "      error ScoringScriptFailed: NameError: name 'jobs' is not "
	    "defined\n"
	    "   3. skipped    my-endpoint: update traffic  -\n"
	    "\n"
	    "endpoints:\n"
	    "  my-endpoint  Succeeded  "
	    "http://127.0.0.1:8322/endpoints/my-endpoint/score  traffic "
	    "blue=100\n");
	amlops_buf_release(&b);
	amlops_note_free(n);
}

static void
note__write_read_rewrite_in_git(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src = NULL;
	struct amlops_note *n, *back = NULL;
	char head[41], *shown, *count;

	assert_int_equal(amlops_source_open(&src, r->dir, NULL), 0);
	assert_int_equal(amlops_source_resolve(head, src, "HEAD"), 0);

	/* none yet */
	assert_int_equal(
	    amlops_status_note_read(&back, src, NULL, head), AMLOPS_ENOTFOUND);
	{
		char want[64];

		snprintf(want, sizeof(want), "no note for commit %.12s", head);
		assert_string_equal(amlops_err_last(), want);
	}

	n = sample_note(head);
	assert_int_equal(amlops_status_note_write(src, NULL, n), 0);
	assert_int_equal(amlops_status_note_read(&back, src, NULL, head), 0);
	assert_int_equal(back->nsteps, 3);
	amlops_note_free(back);
	back = NULL;

	/* rewritten in place: one note, the new content */
	n->result = AMLOPS_NOTE_SUCCEEDED;
	n->steps[1].status = AMLOPS_STEP_SUCCEEDED;
	assert_int_equal(amlops_status_note_write(src, NULL, n), 0);
	count = sh_out("cd %s && git notes --ref amlops list | wc -l", r->dir);
	assert_string_equal(count, "1");
	shown = sh_out("cd %s && git notes --ref amlops show HEAD | "
	               "grep '\"result\"'",
	    r->dir);
	assert_string_equal(shown, "\t\"result\":\t\"succeeded\",");
	assert_int_equal(amlops_status_note_read(&back, src, NULL, head), 0);
	assert_int_equal(back->result, AMLOPS_NOTE_SUCCEEDED);

	free(count);
	free(shown);
	amlops_note_free(back);
	amlops_note_free(n);
	amlops_source_free(src);
}

static void
note__other_notes_and_refs_untouched(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src = NULL;
	struct amlops_note *n;
	char head[41], parent[41];
	char *commits_before, *other_before, *parent_note_before, *after;

	sh("cd %s && git notes add -m 'a human note' HEAD && "
	   "git notes --ref other add -m 'other tool' HEAD && "
	   "git notes --ref amlops add -m '{\"parent\":1}' HEAD~1",
	    r->dir);
	commits_before =
	    sh_out("cd %s && git rev-parse refs/notes/commits", r->dir);
	other_before =
	    sh_out("cd %s && git rev-parse refs/notes/other", r->dir);
	parent_note_before = sh_out("cd %s && git notes --ref amlops show "
	                            "HEAD~1",
	    r->dir);

	assert_int_equal(amlops_source_open(&src, r->dir, NULL), 0);
	assert_int_equal(amlops_source_resolve(head, src, "HEAD"), 0);
	assert_int_equal(amlops_source_parent(parent, src, head), 0);
	n = sample_note(head);
	assert_int_equal(amlops_status_note_write(src, NULL, n), 0);
	/* and a custom ref */
	assert_int_equal(
	    amlops_status_note_write(src, "refs/notes/amlops-staging", n), 0);

	after = sh_out("cd %s && git rev-parse refs/notes/commits", r->dir);
	assert_string_equal(after, commits_before);
	free(after);
	after = sh_out("cd %s && git rev-parse refs/notes/other", r->dir);
	assert_string_equal(after, other_before);
	free(after);
	after = sh_out("cd %s && git notes --ref amlops show HEAD~1", r->dir);
	assert_string_equal(after, parent_note_before);
	assert_string_equal(after, "{\"parent\":1}");
	free(after);
	after = sh_out("cd %s && git notes show HEAD", r->dir);
	assert_string_equal(after, "a human note");
	free(after);
	after = sh_out(
	    "cd %s && git notes --ref amlops-staging list | wc -l", r->dir);
	assert_string_equal(after, "1");
	free(after);

	free(commits_before);
	free(other_before);
	free(parent_note_before);
	amlops_note_free(n);
	amlops_source_free(src);
}

static void
note__unparseable_note_names_the_commit(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src = NULL;
	struct amlops_note *n = NULL;
	char head[41], want[128];

	sh("cd %s && git notes --ref amlops add -f -m 'garbage' HEAD", r->dir);
	assert_int_equal(amlops_source_open(&src, r->dir, NULL), 0);
	assert_int_equal(amlops_source_resolve(head, src, "HEAD"), 0);
	assert_int_equal(
	    amlops_status_note_read(&n, src, NULL, head), AMLOPS_EINVALID);
	snprintf(want, sizeof(want), "commit %.12s: note: not JSON (at byte 0)",
	    head);
	assert_string_equal(amlops_err_last(), want);
	amlops_source_free(src);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(note__round_trip_keeps_every_field),
	    cmocka_unit_test(note__restart_keeps_the_interrupted_attempt),
	    cmocka_unit_test(note__bad_notes_say_which_key),
	    cmocka_unit_test(note__scrub_removes_secrets),
	    cmocka_unit_test(note__render_text_for_people),
	    cmocka_unit_test_setup_teardown(
	        note__write_read_rewrite_in_git, repo_setup, repo_teardown),
	    cmocka_unit_test_setup_teardown(
	        note__other_notes_and_refs_untouched, repo_setup,
	        repo_teardown),
	    cmocka_unit_test_setup_teardown(
	        note__unparseable_note_names_the_commit, repo_setup,
	        repo_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
