/*
 * The git source, on real temporary repositories made with the git
 * command: revisions, content ids, the path callback, manifests and
 * .amlops.yml, diffs, applied refs, clone/fetch/push, and loading the
 * model of a commit (never the working tree) with automatic versions,
 * the version/content check and touched endpoints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "amlops/err.h"
#include "amlops/source.h"
#include "amlops/spec.h"
#include "amlops/util.h"

#include "testrepo.h"

/* Writes `text` to DIR/path, making folders. */
static void
put(const struct repo *r, const char *path, const char *text)
{
	char *full = amlops_xasprintf("%s/%s", r->dir, path), *slash;
	FILE *f;

	slash = strrchr(full, '/');
	*slash = '\0';
	assert_int_equal(amlops_mkdir_p(full, 0755), 0);
	*slash = '/';
	assert_non_null(f = fopen(full, "w"));
	fputs(text, f);
	fclose(f);
	free(full);
}

static void
commit(const struct repo *r, const char *msg)
{
	sh("cd %s && git add -A . && git commit -q --allow-empty -m '%s'",
	    r->dir, msg);
}

static int
repo_setup(void **state)
{
	struct repo *r = calloc(1, sizeof(*r));

	strcpy(r->dir, "/tmp/amlops-test-source-XXXXXX");
	if (!mkdtemp(r->dir))
		return -1;
	sh("cd %s && git init -q -b main . && git config user.name t && "
	   "git config user.email t@example.com",
	    r->dir);
	*state = r;
	return 0;
}

static int
repo_teardown(void **state)
{
	struct repo *r = *state;

	sh("rm -rf %s %s-*", r->dir, r->dir);
	free(r);
	return 0;
}

static struct amlops_source *
open_repo(const struct repo *r)
{
	struct amlops_source *src = NULL;

	if (amlops_source_open(&src, r->dir, NULL) < 0)
		fail_msg("open: %s", amlops_err_last());
	return src;
}

static void
resolve(char out[41], struct amlops_source *src, const char *rev)
{
	if (amlops_source_resolve(out, src, rev) < 0)
		fail_msg("resolve %s: %s", rev, amlops_err_last());
}

/* A split-shape endpoint with one deployment, as today's CLI writes. */
static const char endpoint_yml[] = "name: churn\n"
                                   "auth_mode: key\n"
                                   "traffic:\n"
                                   "  blue: 100\n";

static const char blue_yml[] = "name: blue\n"
                               "endpoint_name: churn\n"
                               "model:\n"
                               "  path: ../../models/churn/model.pkl\n"
                               "code_configuration:\n"
                               "  code: ../../models/churn/src\n"
                               "  scoring_script: score.py\n"
                               "environment:\n"
                               "  conda_file: ../../env/conda.yml\n"
                               "  image: mcr.microsoft.com/azureml/base:1\n"
                               "instance_type: Standard_DS3_v2\n"
                               "instance_count: 1\n";

static void
churn_repo(const struct repo *r)
{
	put(r, "endpoints/churn/endpoint.yml", endpoint_yml);
	put(r, "endpoints/churn/blue.yml", blue_yml);
	put(r, "models/churn/model.pkl", "model bytes v1\n");
	put(r, "models/churn/src/score.py", "def init():\n    pass\n");
	put(r, "env/conda.yml", "dependencies:\n  - python=3.10\n");
	put(r, "README.md", "a repo\n");
	commit(r, "churn");
}

static void
source__resolve_revisions(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src;
	char a[41], b[41], c[41], *want;

	put(r, "a.txt", "a\n");
	commit(r, "one");
	put(r, "a.txt", "b\n");
	commit(r, "two");
	sh("cd %s && git branch feature HEAD~1 && git tag v1 HEAD~1", r->dir);
	src = open_repo(r);

	resolve(a, src, "HEAD");
	want = sh_out("cd %s && git rev-parse HEAD", r->dir);
	assert_string_equal(a, want);
	free(want);
	resolve(b, src, "feature");
	resolve(c, src, "v1");
	assert_string_equal(b, c);
	resolve(c, src, "HEAD~1");
	assert_string_equal(b, c);
	{
		char shortid[8];

		memcpy(shortid, a, 7);
		shortid[7] = '\0';
		resolve(c, src, shortid);
		assert_string_equal(a, c);
	}
	assert_int_equal(amlops_source_parent(c, src, a), 0);
	assert_string_equal(b, c);
	assert_int_equal(amlops_source_parent(c, src, b), AMLOPS_ENOTFOUND);
	{
		char msg[64];

		snprintf(msg, sizeof(msg), "commit %.12s has no parent", b);
		assert_string_equal(amlops_err_last(), msg);
	}

	assert_int_equal(
	    amlops_source_resolve(c, src, "nope"), AMLOPS_ENOTFOUND);
	assert_string_equal(amlops_err_last(), "unknown revision 'nope'");
	assert_int_equal(
	    amlops_source_resolve(c, src, "HEAD:a.txt"), AMLOPS_EINVALID);
	assert_string_equal(
	    amlops_err_last(), "revision 'HEAD:a.txt' is a blob, not a commit");
	assert_int_equal(amlops_source_resolve(c, src, ""), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(), "empty revision");
	amlops_source_free(src);
}

static void
source__open_errors(void **state)
{
	struct amlops_source *src = NULL;

	(void)state;
	assert_int_equal(amlops_source_open(&src, "/nonexistent/amlops", NULL),
	    AMLOPS_ENOTFOUND);
	assert_null(src);
	assert_non_null(strstr(amlops_err_last(),
	    "'/nonexistent/amlops': cannot open repository: "));
}

static void
source__content_id_is_the_git_object_id(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src;
	char head[41], id[41], *want;
	static const char *const paths[] = {
	    "models/churn/model.pkl", "models/churn/src", "models/churn", ""};
	size_t i;

	churn_repo(r);
	src = open_repo(r);
	resolve(head, src, "HEAD");
	for (i = 0; i < AMLOPS_ARRAY_SIZE(paths); i++) {
		assert_int_equal(
		    amlops_source_content_id(id, src, head, paths[i]), 0);
		want = sh_out(
		    "cd %s && git rev-parse 'HEAD:%s'", r->dir, paths[i]);
		assert_string_equal(id, want);
		free(want);
	}
	assert_int_equal(amlops_source_content_id(id, src, head, "no/such"),
	    AMLOPS_ENOTFOUND);
	assert_string_equal(
	    amlops_err_last(), "no path 'no/such' in the commit");
	amlops_source_free(src);
}

static void
source__path_kind_reads_the_commit_tree(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src;
	char head[41];

	churn_repo(r);
	sh("cd %s && ln -s models/churn inside && ln -s /etc/passwd abs && "
	   "ln -s ../../outside models/up && ln -s inside chain && "
	   "git add -A && git commit -q -m links",
	    r->dir);
	/* only in the working tree: invisible at the commit */
	put(r, "models/churn/untracked.pkl", "x\n");
	src = open_repo(r);
	resolve(head, src, "HEAD");
	assert_int_equal(
	    amlops_source_path_kind(src, head, ""), AMLOPS_PATH_DIR);
	assert_int_equal(amlops_source_path_kind(src, head, "models/churn"),
	    AMLOPS_PATH_DIR);
	assert_int_equal(
	    amlops_source_path_kind(src, head, "models/churn/model.pkl"),
	    AMLOPS_PATH_FILE);
	assert_int_equal(
	    amlops_source_path_kind(src, head, "models/churn/untracked.pkl"),
	    AMLOPS_PATH_MISSING);
	assert_int_equal(amlops_source_path_kind(src, head, "models/nope"),
	    AMLOPS_PATH_MISSING);
	assert_int_equal(
	    amlops_source_path_kind(src, head, "inside"), AMLOPS_PATH_DIR);
	assert_int_equal(amlops_source_path_kind(src, head, "inside/model.pkl"),
	    AMLOPS_PATH_FILE);
	assert_int_equal(
	    amlops_source_path_kind(src, head, "chain/src"), AMLOPS_PATH_DIR);
	assert_int_equal(
	    amlops_source_path_kind(src, head, "abs"), AMLOPS_PATH_SYMLINK_OUT);
	assert_int_equal(amlops_source_path_kind(src, head, "models/up"),
	    AMLOPS_PATH_SYMLINK_OUT);
	assert_int_equal(amlops_source_path_kind(src, head, "models/up/x"),
	    AMLOPS_PATH_SYMLINK_OUT);
	amlops_source_free(src);
}

static void
source__manifests_follow_amlops_yml_paths(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src;
	struct amlops_source_config *cfg = NULL;
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	char head[41], **paths = NULL;
	size_t n = 0;

	churn_repo(r);
	put(r, "other/x.YAML", "a: 1\n");
	put(r, "team-a/e.yaml", "a: 1\n");
	put(r, ".amlops.yml",
	    "paths: [endpoints/, 'team-*/*.yaml']\n"
	    "notes_ref: refs/notes/ml\n"
	    "target: azure\n"
	    "azure:\n"
	    "  subscription_id: 00000000-0000-0000-0000-0\n"
	    "  resource_group: rg\n"
	    "  workspace: ws\n");
	commit(r, "config");
	src = open_repo(r);
	resolve(head, src, "HEAD");

	/* everything YAML without a config, never .amlops.yml */
	assert_int_equal(
	    amlops_source_manifests(&paths, &n, src, head, NULL), 0);
	assert_int_equal(n, 5);
	assert_string_equal(paths[0], "endpoints/churn/blue.yml");
	assert_string_equal(paths[1], "endpoints/churn/endpoint.yml");
	assert_string_equal(paths[2], "env/conda.yml");
	assert_string_equal(paths[3], "other/x.YAML");
	assert_string_equal(paths[4], "team-a/e.yaml");
	amlops_source_paths_free(paths, n);

	assert_int_equal(amlops_source_config_load(&cfg, &diags, src, head), 0);
	assert_int_equal(cfg->npaths, 2);
	assert_string_equal(cfg->notes_ref, "refs/notes/ml");
	assert_string_equal(cfg->target, "azure");
	assert_string_equal(cfg->resource_group, "rg");
	assert_string_equal(cfg->workspace, "ws");
	assert_null(cfg->arm_url);
	assert_int_equal(
	    amlops_source_manifests(&paths, &n, src, head, cfg), 0);
	assert_int_equal(n, 3);
	assert_string_equal(paths[0], "endpoints/churn/blue.yml");
	assert_string_equal(paths[1], "endpoints/churn/endpoint.yml");
	assert_string_equal(paths[2], "team-a/e.yaml");
	amlops_source_paths_free(paths, n);
	assert_int_equal(diags.n, 0);
	amlops_source_config_free(cfg);
	amlops_source_free(src);
}

static void
source__amlops_yml_errors_carry_locations(void **state)
{
	static const struct {
		const char *text;
		const char *diag;
	} cases[] = {
	    {"path: [a]\n",
	        ".amlops.yml:1:1: unknown key 'path' (did you mean 'paths'?)"},
	    {"paths: [a]\nazure:\n  workspaces: w\n",
	        ".amlops.yml:3:3: unknown key 'workspaces' (did you mean "
	        "'workspace'?)"},
	    {"colour: red\n", ".amlops.yml:1:1: unknown key 'colour'"},
	    {"paths: {a: 1}\n",
	        ".amlops.yml:1:8: 'paths' must be a list of paths"},
	    {"paths:\n  - a\n  - [b]\n",
	        ".amlops.yml:3:5: 'paths' entries must be paths"},
	    {"target: aws\n",
	        ".amlops.yml:1:9: unknown target 'aws' (expected 'local' or "
	        "'azure')"},
	    {"notes_ref: refs/heads/main\n",
	        ".amlops.yml:1:12: 'notes_ref' must be a ref under "
	        "refs/notes/, not 'refs/heads/main'"},
	    {"azure: [1]\n", ".amlops.yml:1:8: 'azure' must be a mapping"},
	    {"azure:\n  workspace: [w]\n",
	        ".amlops.yml:2:14: 'workspace' must be a string"},
	    {"- a\n", ".amlops.yml:1:1: '.amlops.yml' must be a mapping of "
	              "settings"},
	    {"paths: [a\n", ".amlops.yml:2:1: did not find expected ',' or "
	                    "']'"},
	};
	struct amlops_source_config *cfg = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < AMLOPS_ARRAY_SIZE(cases); i++) {
		struct amlops_diags diags = AMLOPS_DIAGS_INIT;
		char *got;

		assert_int_equal(
		    amlops_source_config_parse(&cfg, &diags, ".amlops.yml",
		        cases[i].text, strlen(cases[i].text)),
		    AMLOPS_EINVALID);
		assert_null(cfg);
		assert_int_equal(diags.n, 1);
		got = amlops_diag_format(&diags.v[0]);
		assert_string_equal(got, cases[i].diag);
		free(got);
		amlops_diags_release(&diags);
	}
	{
		struct amlops_diags diags = AMLOPS_DIAGS_INIT;

		/* an empty file is all defaults */
		assert_int_equal(amlops_source_config_parse(
		                     &cfg, &diags, ".amlops.yml", "", 0),
		    0);
		assert_int_equal(cfg->npaths, 0);
		assert_true(amlops_source_config_selects(cfg, "a/b.yml"));
		assert_false(amlops_source_config_selects(cfg, "a/b.json"));
		assert_false(amlops_source_config_selects(cfg, ".amlops.yml"));
		amlops_source_config_free(cfg);
	}
}

static void
source__diff_paths_lists_changes(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src;
	char a[41], b[41], **v = NULL;
	size_t n = 0;

	churn_repo(r);
	put(r, "models/churn/model.pkl", "model bytes v2\n");
	sh("cd %s && git rm -q README.md", r->dir);
	put(r, "new/file.txt", "n\n");
	commit(r, "change");
	src = open_repo(r);
	resolve(a, src, "HEAD~1");
	resolve(b, src, "HEAD");
	assert_int_equal(amlops_source_diff_paths(&v, &n, src, a, b), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0], "README.md");
	assert_string_equal(v[1], "models/churn/model.pkl");
	assert_string_equal(v[2], "new/file.txt");
	amlops_source_paths_free(v, n);
	/* from nothing: every file */
	assert_int_equal(amlops_source_diff_paths(&v, &n, src, NULL, a), 0);
	assert_int_equal(n, 6);
	amlops_source_paths_free(v, n);
	assert_int_equal(amlops_source_diff_paths(&v, &n, src, b, b), 0);
	assert_int_equal(n, 0);
	amlops_source_paths_free(v, n);
	amlops_source_free(src);
}

static void
source__diff_paths_match_git(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src;
	char a[41], b[41], **v = NULL, *want, *got;
	struct amlops_buf buf = AMLOPS_BUF_INIT;
	size_t n = 0, i;

	/* names that sort differently as files and as folders */
	put(r, "a", "file a\n");
	put(r, "a.txt", "x\n");
	put(r, "b/c.yml", "c\n");
	put(r, "b.d/e", "e\n");
	put(r, "z/deep/er/f", "f\n");
	put(r, "same/g", "g\n");
	commit(r, "one");
	sh("cd %s && git rm -q a b/c.yml && mkdir a && echo in > a/in && "
	   "echo b > b && echo e2 > b.d/e && echo f2 > z/deep/er/f && "
	   "ln -s same link && git add -A && git commit -q -m two",
	    r->dir);
	src = open_repo(r);
	resolve(a, src, "HEAD~1");
	resolve(b, src, "HEAD");
	assert_int_equal(amlops_source_diff_paths(&v, &n, src, a, b), 0);
	for (i = 0; i < n; i++)
		amlops_buf_printf(&buf, "%s%s", i ? " " : "", v[i]);
	got = amlops_buf_detach(&buf);
	want = sh_out("cd %s && git diff --name-only --no-renames HEAD~1 HEAD "
	              "| LC_ALL=C sort | tr '\\n' ' ' | sed 's/ $//'",
	    r->dir);
	assert_string_equal(got, want);
	assert_string_equal(got, "a a/in b b.d/e b/c.yml link z/deep/er/f");
	free(got);
	free(want);
	amlops_source_paths_free(v, n);
	amlops_source_free(src);
}

static void
source__applied_ref_round_trip(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src;
	char head[41], got[41], *want;

	churn_repo(r);
	src = open_repo(r);
	resolve(head, src, "HEAD");
	assert_int_equal(
	    amlops_source_applied_get(got, src, "local"), AMLOPS_ENOTFOUND);
	assert_string_equal(
	    amlops_err_last(), "nothing applied to target 'local' yet");
	assert_int_equal(amlops_source_applied_set(src, "local", head), 0);
	assert_int_equal(amlops_source_applied_get(got, src, "local"), 0);
	assert_string_equal(got, head);
	want =
	    sh_out("cd %s && git rev-parse refs/amlops/applied/local", r->dir);
	assert_string_equal(want, head);
	free(want);
	assert_int_equal(
	    amlops_source_applied_set(src, "a..b", head), AMLOPS_EINVALID);
	assert_string_equal(
	    amlops_err_last(), "target name 'a..b' cannot be a ref name");
	amlops_source_free(src);
}

static void
source__clone_url_into_cache_and_fetch(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src = NULL;
	char *url, *cache, first[41], second[41], got[41], *note = NULL;
	char *want;

	churn_repo(r);
	/* libgit2 pushes over file:// only to bare repositories */
	sh("git clone -q --bare %s %s-up.git", r->dir, r->dir);
	url = amlops_xasprintf("file://%s-up.git", r->dir);
	cache = amlops_xasprintf("%s-cache", r->dir);
	resolve(first, (src = open_repo(r)), "HEAD");
	amlops_source_free(src);

	assert_int_equal(amlops_source_open(&src, url, cache), 0);
	resolve(got, src, "main");
	assert_string_equal(got, first);
	resolve(got, src, "origin/main");
	assert_string_equal(got, first);
	/* a bare clone in the cache, never the user's repository */
	assert_non_null(strstr(amlops_source_gitdir(src), cache));
	amlops_source_free(src);

	/* upstream moves on, with a note: reopening fetches both */
	put(r, "README.md", "changed\n");
	commit(r, "second");
	sh("cd %s && git notes --ref amlops add -m '{}' HEAD && "
	   "git push -q %s-up.git main refs/notes/amlops",
	    r->dir, r->dir);
	want = sh_out("cd %s && git rev-parse HEAD", r->dir);
	memcpy(second, want, 41);
	free(want);
	assert_int_equal(amlops_source_open(&src, url, cache), 0);
	resolve(got, src, "main");
	assert_string_equal(got, second);
	resolve(got, src, "origin/main");
	assert_string_equal(got, second);
	resolve(got, src, "HEAD");
	assert_string_equal(got, second);
	assert_int_equal(amlops_source_note_get(&note, src, NULL, second), 0);
	assert_string_equal(note, "{}\n");
	free(note);

	/* and pushes refs back */
	assert_int_equal(amlops_source_applied_set(src, "local", second), 0);
	{
		const char *specs[] = {
		    "refs/amlops/applied/local:refs/amlops/applied/local"};

		if (amlops_source_push(src, NULL, specs, 1) < 0)
			fail_msg("push: %s", amlops_err_last());
	}
	want = sh_out("cd %s-up.git && git rev-parse "
	              "refs/amlops/applied/local",
	    r->dir);
	assert_string_equal(want, second);
	free(want);
	amlops_source_free(src);

	src = NULL;
	assert_int_equal(
	    amlops_source_open(&src, "file:///nonexistent/x.git", cache),
	    AMLOPS_ERROR);
	assert_non_null(strstr(
	    amlops_err_last(), "'file:///nonexistent/x.git': cannot clone: "));
	free(url);
	free(cache);
}

static void
source__raw_notes_under_a_ref(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src;
	char head[41], *text = NULL, *other;

	churn_repo(r);
	sh("cd %s && git notes add -m human HEAD", r->dir);
	src = open_repo(r);
	resolve(head, src, "HEAD");
	assert_int_equal(
	    amlops_source_note_get(&text, src, NULL, head), AMLOPS_ENOTFOUND);
	assert_int_equal(amlops_source_note_set(src, NULL, head, "one"), 0);
	assert_int_equal(amlops_source_note_set(src, NULL, head, "two"), 0);
	assert_int_equal(amlops_source_note_get(&text, src, NULL, head), 0);
	assert_string_equal(text, "two");
	free(text);
	other = sh_out("cd %s && git notes show HEAD", r->dir);
	assert_string_equal(other, "human");
	free(other);
	amlops_source_free(src);
}

/* Loading needs the spec loader; these run once it is linked. */

static struct amlops_spec *
load(struct amlops_source *src, const char *rev, struct amlops_diags *diags)
{
	struct amlops_spec *spec = NULL;
	char c[41];
	int error;

	resolve(c, src, rev);
	error = amlops_source_load_spec(&spec, diags, src, c, NULL, NULL, 0);
	if (error < 0 && error != AMLOPS_EINVALID)
		fail_msg("load: %s", amlops_err_last());
	return spec;
}

static void
source__load_reads_the_commit_not_the_worktree(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src;
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	struct amlops_spec *spec;
	struct amlops_endpoint *ep;
	struct amlops_deployment *d;

	churn_repo(r);
	/* uncommitted edits must not be seen */
	put(r, "endpoints/churn/blue.yml", "name: blue\nbroken: [\n");
	put(r, "endpoints/churn/green.yml", "name: green\n");
	src = open_repo(r);
	spec = load(src, "HEAD", &diags);
	if (diags.n)
		fail_msg("%s", amlops_diag_format(&diags.v[0]));
	assert_int_equal(spec->nendpoints, 1);
	ep = spec->endpoints[0];
	assert_string_equal(ep->name, "churn");
	assert_int_equal(ep->ndeployments, 1);
	d = ep->deployments[0];
	assert_string_equal(d->name, "blue");
	assert_string_equal(d->model.path, "models/churn/model.pkl");
	amlops_spec_free(spec);
	amlops_source_free(src);
}

static void
source__inline_assets_get_content_versions(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src;
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	struct amlops_spec *spec;
	struct amlops_deployment *d;
	char *want, *conda;

	churn_repo(r);
	src = open_repo(r);
	spec = load(src, "HEAD", &diags);
	assert_int_equal(diags.n, 0);
	d = spec->endpoints[0]->deployments[0];

	want = sh_out(
	    "cd %s && git rev-parse HEAD:models/churn/model.pkl", r->dir);
	assert_string_equal(d->model.content_id, want);
	assert_int_equal(d->model.version_auto, 1);
	assert_int_equal(strlen(d->model.version), 12);
	assert_memory_equal(d->model.version, want, 12);
	free(want);
	want = sh_out("cd %s && git rev-parse HEAD:models/churn/src", r->dir);
	assert_string_equal(d->code.content_id, want);
	assert_memory_equal(d->code.version, want, 12);
	free(want);

	/* the environment's recipe, as documented in source.h */
	conda = sh_out("cd %s && git rev-parse HEAD:env/conda.yml", r->dir);
	want = sh_out("printf 'amlops-environment\\n%s\\n%s\\n\\n' | "
	              "git hash-object --stdin",
	    "mcr.microsoft.com/azureml/base:1", conda);
	assert_string_equal(d->environment.asset.content_id, want);
	assert_memory_equal(d->environment.asset.version, want, 12);
	assert_int_equal(d->environment.asset.version_auto, 1);
	free(want);
	free(conda);
	amlops_spec_free(spec);
	amlops_source_free(src);
}

static const char blue_versioned_yml[] =
    "name: blue\n"
    "endpoint_name: churn\n"
    "model:\n"
    "  name: churn-model\n"
    "  version: 3\n"
    "  path: ../../models/churn/model.pkl\n"
    "code_configuration:\n"
    "  code: ../../models/churn/src\n"
    "  scoring_script: score.py\n"
    "environment:\n"
    "  conda_file: ../../env/conda.yml\n"
    "  image: mcr.microsoft.com/azureml/base:1\n"
    "instance_type: Standard_DS3_v2\n"
    "instance_count: 1\n";

static void
source__version_kept_while_content_changed_is_an_error(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src;
	struct amlops_source_pair pair = AMLOPS_SOURCE_PAIR_INIT;
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	char a[41], b[41], *ida, *idb, *want, *got;
	struct amlops_deployment *d;

	churn_repo(r);
	put(r, "endpoints/churn/blue.yml", blue_versioned_yml);
	commit(r, "version 3");
	put(r, "models/churn/model.pkl", "model bytes v2\n");
	commit(r, "retrain, forget the version");
	ida = sh_out(
	    "cd %s && git rev-parse HEAD~1:models/churn/model.pkl", r->dir);
	idb = sh_out(
	    "cd %s && git rev-parse HEAD:models/churn/model.pkl", r->dir);
	src = open_repo(r);
	resolve(a, src, "HEAD~1");
	resolve(b, src, "HEAD");
	assert_int_equal(
	    amlops_source_load_pair(&pair, &diags, src, a, b, NULL),
	    AMLOPS_EINVALID);
	assert_int_equal(diags.n, 1);
	d = pair.head->endpoints[0]->deployments[0];
	assert_string_equal(d->model.version, "3");
	assert_int_equal(d->model.version_auto, 0);
	got = amlops_diag_format(&diags.v[0]);
	want = amlops_xasprintf(
	    "endpoints/churn/blue.yml:%u:%u: 'models/churn/model.pkl': "
	    "version '3' of model 'churn-model' is unchanged but its content "
	    "changed (%.12s -> %.12s); bump the version or drop it to let "
	    "amlops version it",
	    d->model.loc.line, d->model.loc.col, ida, idb);
	assert_string_equal(got, want);
	assert_true(d->model.loc.line >= 3 && d->model.loc.line <= 6);
	/* the endpoint is touched through its model's path */
	assert_int_equal(pair.ntouched, 1);
	assert_string_equal(pair.touched[0], "churn");
	assert_int_equal(pair.narrowed, 0);
	free(got);
	free(want);
	free(ida);
	free(idb);
	amlops_diags_release(&diags);
	amlops_source_pair_release(&pair);

	/* bumping the version is fine */
	put(r, "endpoints/churn/blue.yml", blue_versioned_yml);
	sh("cd %s && sed -i 's/version: 3/version: 4/' "
	   "endpoints/churn/blue.yml && git commit -qam bump",
	    r->dir);
	resolve(a, src, "HEAD~2");
	resolve(b, src, "HEAD");
	assert_int_equal(
	    amlops_source_load_pair(&pair, &diags, src, a, b, NULL), 0);
	assert_int_equal(diags.n, 0);
	amlops_source_pair_release(&pair);
	amlops_source_free(src);
}

static void
source__touched_endpoints_and_narrowed_loads(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src;
	struct amlops_source_pair pair = AMLOPS_SOURCE_PAIR_INIT;
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	char a[41], b[41], c[41], d[41], **names = NULL;
	size_t n = 0;

	churn_repo(r);
	put(r, "endpoints/fraud/endpoint.yml",
	    "name: fraud\nauth_mode: key\ntraffic:\n  blue: 100\n");
	put(r, "endpoints/fraud/blue.yml",
	    "name: blue\nendpoint_name: fraud\n"
	    "model:\n  path: ../../models/fraud.pkl\n"
	    "code_configuration:\n  code: ../../models/churn/src\n"
	    "  scoring_script: score.py\n"
	    "environment:\n  image: mcr.microsoft.com/azureml/base:1\n"
	    "instance_type: Standard_DS3_v2\ninstance_count: 1\n");
	put(r, "models/fraud.pkl", "fraud\n");
	commit(r, "fraud");
	sh("cd %s && sed -i 's/instance_count: 1/instance_count: 2/' "
	   "endpoints/fraud/blue.yml && git commit -qam scale",
	    r->dir);
	put(r, "models/churn/src/score.py", "def init():\n    return 1\n");
	commit(r, "shared code");
	put(r, "README.md", "docs\n");
	commit(r, "docs");
	src = open_repo(r);
	resolve(a, src, "HEAD~3");
	resolve(b, src, "HEAD~2");
	resolve(c, src, "HEAD~1");
	resolve(d, src, "HEAD");

	/* a manifest change: only that folder is read */
	assert_int_equal(
	    amlops_source_load_pair(&pair, &diags, src, a, b, NULL), 0);
	assert_int_equal(pair.narrowed, 1);
	assert_int_equal(pair.nloaded, 2);
	assert_int_equal(pair.ntouched, 1);
	assert_string_equal(pair.touched[0], "fraud");
	assert_non_null(amlops_spec_endpoint(pair.head, "fraud"));
	assert_null(amlops_spec_endpoint(pair.head, "churn"));
	assert_int_equal(amlops_spec_endpoint(pair.head, "fraud")
	                     ->deployments[0]
	                     ->instance_count,
	    2);
	amlops_source_pair_release(&pair);

	/* shared code: both endpoints, everything read */
	assert_int_equal(
	    amlops_source_diff_touched(&names, &n, &diags, src, b, c, NULL), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "churn");
	assert_string_equal(names[1], "fraud");
	amlops_source_paths_free(names, n);

	/* nothing an endpoint points to */
	assert_int_equal(
	    amlops_source_diff_touched(&names, &n, &diags, src, c, d, NULL), 0);
	assert_int_equal(n, 0);
	amlops_source_paths_free(names, n);

	/* no change at all */
	assert_int_equal(
	    amlops_source_diff_touched(&names, &n, &diags, src, d, d, NULL), 0);
	assert_int_equal(n, 0);
	amlops_source_paths_free(names, n);

	/* from nothing: everything is new */
	assert_int_equal(
	    amlops_source_load_pair(&pair, &diags, src, NULL, d, NULL), 0);
	assert_int_equal(pair.narrowed, 0);
	assert_int_equal(pair.base->nendpoints, 0);
	assert_int_equal(pair.head->nendpoints, 2);
	assert_int_equal(pair.ntouched, 2);
	amlops_source_pair_release(&pair);
	assert_int_equal(diags.n, 0);
	amlops_source_free(src);
}

static void
source__deployments_in_another_folder_load_fully(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src;
	struct amlops_source_pair pair = AMLOPS_SOURCE_PAIR_INIT;
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	char a[41], b[41], c[41], *msg;
	const struct amlops_endpoint *ep;

	churn_repo(r);
	sh("cd %s && mkdir deployments && "
	   "sed 's|../../models|../models|; s|../../env|../env|' "
	   "endpoints/churn/blue.yml > deployments/churn-blue.yml && "
	   "git rm -q endpoints/churn/blue.yml && git add -A && "
	   "git commit -q -m split && "
	   "sed -i 's/instance_count: 1/instance_count: 2/' "
	   "deployments/churn-blue.yml && git commit -qam scale && "
	   "git rm -q endpoints/churn/endpoint.yml && "
	   "git commit -q -m 'drop the endpoint, forget its deployment'",
	    r->dir);
	src = open_repo(r);
	resolve(a, src, "HEAD~2");
	resolve(b, src, "HEAD~1");
	resolve(c, src, "HEAD");

	/* the deployment's folder alone cannot be loaded: all of it is */
	assert_int_equal(
	    amlops_source_load_pair(&pair, &diags, src, a, b, NULL), 0);
	assert_int_equal(diags.n, 0);
	assert_int_equal(pair.narrowed, 0);
	assert_non_null(ep = amlops_spec_endpoint(pair.head, "churn"));
	assert_int_equal(ep->ndeployments, 1);
	assert_int_equal(ep->deployments[0]->instance_count, 2);
	assert_int_equal(pair.ntouched, 1);
	assert_string_equal(pair.touched[0], "churn");
	amlops_source_pair_release(&pair);

	/*
	 * The endpoint went, its deployment stayed: not a silent delete of
	 * the endpoint but the loader's error about the deployment.
	 */
	assert_int_equal(
	    amlops_source_load_pair(&pair, &diags, src, b, c, NULL),
	    AMLOPS_EINVALID);
	assert_int_equal(pair.narrowed, 0);
	assert_true(diags.n >= 1);
	assert_string_equal(diags.v[0].file, "deployments/churn-blue.yml");
	msg = amlops_diag_format(&diags.v[0]);
	assert_non_null(strstr(msg, "churn"));
	free(msg);
	amlops_diags_release(&diags);
	amlops_source_pair_release(&pair);
	amlops_source_free(src);
}

static void
source__large_loads_match_a_single_load(void **state)
{
	struct repo *r = *state;
	struct amlops_source *src;
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	struct amlops_spec *spec;
	char head[41], *want;
	size_t i;

	/* 1100 split-shape endpoints: 2200 manifests, two threads */
	churn_repo(r);
	sh("cd %s && /usr/bin/python3 -c '\n"
	   "for i in range(1100):\n"
	   "    d = \"fleet/e%%04d\" %% i\n"
	   "    import os; os.makedirs(d)\n"
	   "    open(d + \"/endpoint.yml\", \"w\").write(\"name: e%%04d\\n"
	   "auth_mode: key\\ntraffic:\\n  blue: 100\\n\" %% i)\n"
	   "    open(d + \"/blue.yml\", \"w\").write(open(\"endpoints/churn/"
	   "blue.yml\").read().replace(\"churn\\n\", \"e%%04d\\n\" %% i)"
	   ".replace(\"instance_count: 1\", \"instance_count: %%d\" %% "
	   "(i %% 3 + 1)))\n' && git add -A && git commit -q -m fleet",
	    r->dir);
	src = open_repo(r);
	resolve(head, src, "HEAD");
	assert_int_equal(
	    amlops_source_load_spec(&spec, &diags, src, head, NULL, NULL, 0),
	    0);
	assert_int_equal(diags.n, 0);
	assert_int_equal(spec->nendpoints, 1101);
	want = sh_out(
	    "cd %s && git rev-parse HEAD:models/churn/model.pkl", r->dir);
	for (i = 0; i < spec->nendpoints; i++) {
		const struct amlops_endpoint *ep = spec->endpoints[i];

		if (i > 0)
			assert_true(
			    strcmp(spec->endpoints[i - 1]->name, ep->name) < 0);
		assert_int_equal(ep->ndeployments, 1);
		assert_string_equal(ep->deployments[0]->model.content_id, want);
		if (ep->name[0] == 'e')
			assert_int_equal(ep->deployments[0]->instance_count,
			    atoi(ep->name + 1) % 3 + 1);
	}
	free(want);
	amlops_spec_free(spec);

	/* one name in both halves: the single load's own error */
	sh("cd %s && sed -i 's/name: e1099/name: e0000/' "
	   "fleet/e1099/endpoint.yml && sed -i 's/endpoint_name: e1099/"
	   "endpoint_name: e0000/' fleet/e1099/blue.yml && git commit -qam dup",
	    r->dir);
	resolve(head, src, "HEAD");
	assert_int_equal(
	    amlops_source_load_spec(&spec, &diags, src, head, NULL, NULL, 0),
	    AMLOPS_EINVALID);
	assert_true(diags.n >= 1);
	{
		char *m = amlops_diag_format(&diags.v[0]);

		assert_non_null(strstr(m, "e0000"));
		free(m);
	}
	amlops_diags_release(&diags);
	amlops_spec_free(spec);
	amlops_source_free(src);
}

/* A spec of endpoints e0..en-1 with one deployment whose model is given. */
static struct amlops_spec *
model_spec(size_t n, const char *const *paths, const char *const *ids)
{
	struct amlops_spec *spec = amlops_xcalloc(1, sizeof(*spec));
	size_t i;

	spec->endpoints = amlops_xcalloc(n + 1, sizeof(*spec->endpoints));
	for (i = 0; i < n; i++) {
		char name[32];
		struct amlops_endpoint *ep;
		struct amlops_deployment *d;

		snprintf(name, sizeof(name), "e%zu", i);
		ep = amlops_endpoint_new(name);
		ep->file = amlops_xasprintf("ep/%s.yml", name);
		d = amlops_deployment_new("blue");
		d->model.kind = AMLOPS_ASSET_INLINE;
		d->model.name = amlops_xstrdup("m");
		d->model.version = amlops_xstrdup("1");
		d->model.path = amlops_xstrdup(paths[i]);
		snprintf(d->model.content_id, sizeof(d->model.content_id), "%s",
		    ids[i]);
		d->model.loc.line = (unsigned)i + 1;
		d->model.loc.col = 3;
		ep->deployments = amlops_xcalloc(2, sizeof(*ep->deployments));
		ep->deployments[ep->ndeployments++] = d;
		spec->endpoints[spec->nendpoints++] = ep;
	}
	return spec;
}

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "cccccccccccccccccccccccccccccccccccccccc"

/*
 * Many deployments naming one model version, some repeating an earlier
 * one: a clash is reported once, at the first asset that brings the
 * other content, naming the path of the last asset of the content
 * before it; against a base, once, at the first asset written.
 */
static void
source__check_versions_with_many_repeats(void **state)
{
	static const char *const paths[] = {"m/a.pkl", "m/a.pkl", "m/b.pkl",
	    "m/b.pkl", "m/a.pkl", "m/c.pkl", "m/b.pkl"};
	static const char *const ids[] = {
	    ID_A, ID_A, ID_A, ID_B, ID_A, ID_B, ID_B};
	static const char *const base_paths[] = {"m/a.pkl", "m/a.pkl"};
	static const char *const base_ids[] = {ID_C, ID_C};
	struct amlops_spec *head = model_spec(7, paths, ids);
	struct amlops_spec *base = model_spec(2, base_paths, base_ids);
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	char *m;

	(void)state;
	assert_int_equal(
	    amlops_source_check_versions(&diags, NULL, head), AMLOPS_EINVALID);
	assert_int_equal(diags.n, 1);
	m = amlops_diag_format(&diags.v[0]);
	/* e4 is the last 'm/a.pkl' of content a before e3 in sorted order */
	assert_string_equal(m,
	    "ep/e3.yml:4:3: 'm/b.pkl': version '1' of model 'm' is already "
	    "used for other content (aaaaaaaaaaaa at 'm/a.pkl', here "
	    "bbbbbbbbbbbb); give each content its own version");
	free(m);
	amlops_diags_release(&diags);

	/* against a base: once per distinct head entry, first one written */
	assert_int_equal(
	    amlops_source_check_versions(&diags, base, head), AMLOPS_EINVALID);
	assert_int_equal(diags.n, 2);
	amlops_diags_sort(&diags);
	m = amlops_diag_format(&diags.v[0]);
	assert_string_equal(m,
	    "ep/e0.yml:1:3: 'm/a.pkl': version '1' of model 'm' is unchanged "
	    "but its content changed (cccccccccccc -> aaaaaaaaaaaa); bump the "
	    "version or drop it to let amlops version it");
	free(m);
	m = amlops_diag_format(&diags.v[1]);
	assert_string_equal(m,
	    "ep/e3.yml:4:3: 'm/b.pkl': version '1' of model 'm' is already "
	    "used for other content (aaaaaaaaaaaa at 'm/a.pkl', here "
	    "bbbbbbbbbbbb); give each content its own version");
	free(m);
	amlops_diags_release(&diags);
	amlops_spec_free(head);
	amlops_spec_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, repo_setup, repo_teardown)
	    T(source__resolve_revisions),
	    cmocka_unit_test(source__open_errors),
	    T(source__content_id_is_the_git_object_id),
	    T(source__path_kind_reads_the_commit_tree),
	    T(source__manifests_follow_amlops_yml_paths),
	    cmocka_unit_test(source__amlops_yml_errors_carry_locations),
	    T(source__diff_paths_lists_changes),
	    T(source__diff_paths_match_git),
	    T(source__applied_ref_round_trip),
	    T(source__clone_url_into_cache_and_fetch),
	    T(source__raw_notes_under_a_ref),
	    T(source__load_reads_the_commit_not_the_worktree),
	    T(source__inline_assets_get_content_versions),
	    T(source__version_kept_while_content_changed_is_an_error),
	    T(source__touched_endpoints_and_narrowed_loads),
	    T(source__deployments_in_another_folder_load_fully),
	    T(source__large_loads_match_a_single_load),
	    cmocka_unit_test(source__check_versions_with_many_repeats),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
