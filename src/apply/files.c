/*
 * The files of the commit being applied, read with libgit2 from the
 * commit's tree: what the backend uploads as inline assets. See
 * amlops/apply.h.
 */
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "amlops/apply.h"
#include "amlops/err.h"
#include "amlops/util.h"

struct amlops_apply_files {
	git_repository *repo;
	git_tree *tree;
	struct amlops_files files;
};

struct walk_acc {
	char **v;
	size_t n;
};

static int
git_fail(int code, const char *what)
{
	const git_error *e = git_error_last();

	return amlops_err_set(
	    code, "%s: %s", what, e && e->message ? e->message : "git error");
}

static int
walk_cb(const char *root, const git_tree_entry *e, void *arg)
{
	struct walk_acc *w = arg;

	if (git_tree_entry_type(e) != GIT_OBJECT_BLOB)
		return 0;
	w->v = amlops_xrealloc(w->v, (w->n + 1) * sizeof(*w->v));
	w->v[w->n++] = amlops_xasprintf("%s%s", root, git_tree_entry_name(e));
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
files_list(void *ctx, const char *path, char ***names, size_t *n)
{
	struct amlops_apply_files *f = ctx;
	git_tree_entry *e = NULL;
	git_tree *sub = NULL;
	struct walk_acc w = {NULL, 0};
	int error = 0;

	if (git_tree_entry_bypath(&e, f->tree, path) < 0)
		return amlops_err_set(
		    AMLOPS_ENOTFOUND, "'%s' is not in the commit", path);
	if (git_tree_entry_type(e) == GIT_OBJECT_BLOB) {
		*names = amlops_xcalloc(1, sizeof(**names));
		(*names)[0] = amlops_xstrdup("");
		*n = 1;
		goto done;
	}
	if (git_tree_lookup(&sub, f->repo, git_tree_entry_id(e)) < 0 ||
	    git_tree_walk(sub, GIT_TREEWALK_PRE, walk_cb, &w) < 0) {
		error = git_fail(AMLOPS_ERROR, path);
		for (size_t i = 0; i < w.n; i++)
			free(w.v[i]);
		free(w.v);
		goto done;
	}
	if (w.n)
		qsort(w.v, w.n, sizeof(*w.v), cmp_str);
	*names = w.v;
	*n = w.n;
done:
	git_tree_free(sub);
	git_tree_entry_free(e);
	return error;
}

static int
files_read(void *ctx, const char *path, struct amlops_buf *out)
{
	struct amlops_apply_files *f = ctx;
	git_tree_entry *e = NULL;
	git_blob *b = NULL;
	int error;

	if (git_tree_entry_bypath(&e, f->tree, path) < 0)
		return amlops_err_set(
		    AMLOPS_ENOTFOUND, "'%s' is not in the commit", path);
	if (git_blob_lookup(&b, f->repo, git_tree_entry_id(e)) < 0) {
		error = git_fail(AMLOPS_EINVALID, path);
		goto done;
	}
	amlops_buf_reset(out);
	error = amlops_buf_add(
	    out, git_blob_rawcontent(b), (size_t)git_blob_rawsize(b));
	if (error < 0)
		amlops_err_set(error, "'%s': %zu bytes is more than the cap",
		    path, (size_t)git_blob_rawsize(b));
done:
	git_blob_free(b);
	git_tree_entry_free(e);
	return error;
}

int
amlops_apply_files_open(
    struct amlops_apply_files **out, const char *gitdir, const char *commit)
{
	struct amlops_apply_files *f = amlops_xcalloc(1, sizeof(*f));
	git_commit *c = NULL;
	git_oid oid;
	int error = 0;

	git_libgit2_init();
	if (git_repository_open(&f->repo, gitdir) < 0) {
		error = git_fail(AMLOPS_ERROR, gitdir);
		goto done;
	}
	if (git_oid_fromstr(&oid, commit) < 0 ||
	    git_commit_lookup(&c, f->repo, &oid) < 0 ||
	    git_commit_tree(&f->tree, c) < 0) {
		error = git_fail(AMLOPS_ENOTFOUND, commit);
		goto done;
	}
	f->files.list = files_list;
	f->files.read = files_read;
	f->files.ctx = f;
	*out = f;
	f = NULL;
done:
	git_commit_free(c);
	amlops_apply_files_free(f);
	return error;
}

const struct amlops_files *
amlops_apply_files_get(const struct amlops_apply_files *f)
{
	return &f->files;
}

void
amlops_apply_files_free(struct amlops_apply_files *f)
{
	if (f == NULL)
		return;
	git_tree_free(f->tree);
	git_repository_free(f->repo);
	free(f);
	git_libgit2_shutdown();
}
