/*
 * A struct amlops_files over a real git commit (libgit2), for the tests
 * that upload assets: files come from the commit, never the work tree.
 * Header-only, shared by the rest integration tests.
 */
#ifndef AMLOPS_TESTS_REST_GIT_H
#define AMLOPS_TESTS_REST_GIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "amlops/backend.h"
#include "amlops/err.h"
#include "amlops/util.h"

struct git_files {
	git_repository *repo;
	git_tree *tree;
	struct amlops_files files;
};

struct walk_acc {
	const char *prefix; /* the root of the walk, "" or "dir/" */
	char **v;
	size_t n;
};

static inline int
git_files_walk_cb(const char *root, const git_tree_entry *e, void *arg)
{
	struct walk_acc *w = arg;

	if (git_tree_entry_type(e) != GIT_OBJECT_BLOB)
		return 0;
	w->v = amlops_xrealloc(w->v, (w->n + 1) * sizeof(*w->v));
	w->v[w->n++] = amlops_xasprintf("%s%s", root, git_tree_entry_name(e));
	return 0;
}

static inline int
git_files_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline int
git_files_list(void *ctx, const char *path, char ***names, size_t *n)
{
	struct git_files *g = ctx;
	git_tree_entry *e = NULL;
	git_tree *sub = NULL;
	struct walk_acc w = {0};

	if (git_tree_entry_bypath(&e, g->tree, path) < 0)
		return amlops_err_set(
		    AMLOPS_ENOTFOUND, "'%s' is not in the commit", path);
	if (git_tree_entry_type(e) == GIT_OBJECT_BLOB) {
		*names = amlops_xcalloc(1, sizeof(**names));
		(*names)[0] = amlops_xstrdup("");
		*n = 1;
		git_tree_entry_free(e);
		return 0;
	}
	git_tree_lookup(&sub, g->repo, git_tree_entry_id(e));
	git_tree_walk(sub, GIT_TREEWALK_PRE, git_files_walk_cb, &w);
	qsort(w.v, w.n, sizeof(*w.v), git_files_cmp);
	*names = w.v;
	*n = w.n;
	git_tree_free(sub);
	git_tree_entry_free(e);
	return 0;
}

static inline int
git_files_read(void *ctx, const char *path, struct amlops_buf *out)
{
	struct git_files *g = ctx;
	git_tree_entry *e = NULL;
	git_blob *b = NULL;
	int error;

	if (git_tree_entry_bypath(&e, g->tree, path) < 0)
		return amlops_err_set(
		    AMLOPS_ENOTFOUND, "'%s' is not in the commit", path);
	git_blob_lookup(&b, g->repo, git_tree_entry_id(e));
	amlops_buf_reset(out);
	error = amlops_buf_add(
	    out, git_blob_rawcontent(b), (size_t)git_blob_rawsize(b));
	git_blob_free(b);
	git_tree_entry_free(e);
	return error;
}

/* Opens `repo_dir` at HEAD. */
static inline int
git_files_open(struct git_files *g, const char *repo_dir)
{
	git_object *obj = NULL;
	int error;

	memset(g, 0, sizeof(*g));
	git_libgit2_init();
	if ((error = git_repository_open(&g->repo, repo_dir)) < 0)
		return error;
	if ((error = git_revparse_single(&obj, g->repo, "HEAD^{tree}")) < 0)
		return error;
	g->tree = (git_tree *)obj;
	g->files.list = git_files_list;
	g->files.read = git_files_read;
	g->files.ctx = g;
	return 0;
}

/* The object id of `path` at HEAD (the content id), 40 hex digits. */
static inline void
git_files_id(char out[41], struct git_files *g, const char *path)
{
	git_tree_entry *e = NULL;

	out[0] = '\0';
	if (git_tree_entry_bypath(&e, g->tree, path) == 0)
		git_oid_tostr(out, 41, git_tree_entry_id(e));
	git_tree_entry_free(e);
}

static inline void
git_files_close(struct git_files *g)
{
	git_tree_free(g->tree);
	git_repository_free(g->repo);
	git_libgit2_shutdown();
}

/* Runs a shell command in `dir`; 0 when it exits 0. */
static inline int
git_sh(const char *dir, const char *cmd)
{
	char *full =
	    amlops_xasprintf("cd '%s' && %s >/dev/null 2>&1", dir, cmd);
	int rc = system(full);

	free(full);
	return rc;
}

#endif
