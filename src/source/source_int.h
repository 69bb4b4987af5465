/*
 * What the files of src/source share; not for other modules.
 */
#ifndef AMLOPS_SOURCE_INT_H
#define AMLOPS_SOURCE_INT_H

#include <git2.h>

#include "amlops/source.h"

struct amlops_source {
	git_repository *repo;
	char *url; /* NULL for a local repository */
	char *gitdir;
};

/* Sets the amlops error from git_error_last() and returns `code`. */
int amlops_source_git_fail(int code, const char *what);

git_repository *amlops_source_repo(struct amlops_source *src);
int amlops_source_lookup_commit(
    git_commit **out, struct amlops_source *src, const char *hex);
/* `hex` NULL gives a NULL tree (the empty tree for diffs). */
int amlops_source_lookup_tree(
    git_tree **out, struct amlops_source *src, const char *hex);
int amlops_source_tree_id(char out[41], git_tree *tree, const char *path);

int amlops_source_is_yaml(const char *path);
void amlops_source_paths_push(char ***v, size_t *n, size_t *cap, char *s);
void amlops_source_paths_sort_uniq(char **v, size_t *n);

#endif
