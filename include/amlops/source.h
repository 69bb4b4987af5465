/*
 * The git source: reads commits with libgit2. It opens a local
 * repository or clones a URL into a cache, resolves revisions, loads the
 * endpoint model of a commit (never from the working tree), gives the
 * object id of any path (the content id of an asset), diffs two commits
 * into the endpoints they touch, and reads and writes notes and refs.
 *
 * Commits are passed around as 40 hex digits (char[41]), so that callers
 * need no libgit2 header. libgit2 errors are converted here: callers get
 * an amlops code and a message from amlops_err_last().
 *
 * Content ids. A model's or code's content id is the git object id of
 * its path at the commit (a blob id for a file, a tree id for a folder).
 * An environment's content id is the git blob id (as `git hash-object`
 * computes it) of the text
 *
 *	"amlops-environment\n" IMAGE "\n" CONDA "\n" BUILD "\n"
 *
 * where IMAGE is the image name (or empty), CONDA the object id of the
 * conda file (or empty) and BUILD the object id of the build context
 * (or empty). An inline asset written without `version` gets the first
 * 12 hex digits of its content id as its version.
 */
#ifndef AMLOPS_SOURCE_H
#define AMLOPS_SOURCE_H

#include <stddef.h>

#include "amlops/spec.h"

struct amlops_source;

/* The notes ref amlops uses unless told otherwise. */
#define AMLOPS_NOTES_REF "refs/notes/amlops"
/* The applied ref of a target: AMLOPS_APPLIED_PREFIX "local". */
#define AMLOPS_APPLIED_PREFIX "refs/amlops/applied/"

/*
 * Opens `where`: a path inside a local repository (its working tree or
 * its .git), or a URL (file://, https://, http://, ssh://, git://, or
 * user@host:path). A URL is cloned bare into `cache_dir` (NULL:
 * $XDG_CACHE_HOME/amlops/repos, else ~/.cache/amlops/repos) under a
 * folder named by a hash of the URL, or fetched when that clone exists.
 * In such a clone branches follow the remote: "main" and "origin/main"
 * both name the fetched branch. The caller frees `*out` with
 * amlops_source_free().
 */
int amlops_source_open(
    struct amlops_source **out, const char *where, const char *cache_dir);
void amlops_source_free(struct amlops_source *src);

/* Fetches branches, notes and amlops refs again (URL sources only). */
int amlops_source_fetch(struct amlops_source *src);

/* The repository's git folder; borrowed. */
const char *amlops_source_gitdir(const struct amlops_source *src);

/*
 * Resolves a revision (HEAD, a branch, origin/main, a tag, a short or
 * full id, "HEAD~2") to the commit it names. AMLOPS_ENOTFOUND when it
 * names nothing, AMLOPS_EINVALID when it names something that is not a
 * commit.
 */
int amlops_source_resolve(
    char out[41], struct amlops_source *src, const char *rev);

/* The first parent of `commit`; AMLOPS_ENOTFOUND for a root commit. */
int amlops_source_parent(
    char out[41], struct amlops_source *src, const char *commit);

/* The first line of a commit's message, malloc'd. */
int amlops_source_summary(
    char **out, struct amlops_source *src, const char *commit);

/*
 * `.amlops.yml` at the repository root, all fields optional:
 *
 *	paths: [endpoints/, "team-*"]	# where manifests are; default: all
 *	notes_ref: refs/notes/amlops
 *	target: local			# or azure
 *	azure:
 *	  subscription_id: ...
 *	  resource_group: ...
 *	  workspace: ...
 *	  arm_url: https://management.azure.com
 *
 * A `paths` entry names a folder or file (everything under it) or is an
 * fnmatch(3) pattern matched against the whole path.
 */
struct amlops_source_config {
	char **paths;
	size_t npaths;
	char *notes_ref;
	char *target;
	char *subscription_id;
	char *resource_group;
	char *workspace;
	char *arm_url;
};

#define AMLOPS_SOURCE_CONFIG_FILE ".amlops.yml"

/*
 * Parses a `.amlops.yml` text; `file` names it in diagnostics. Problems
 * (unknown keys, wrong types) go to `diags` with file:line:col and make
 * the return AMLOPS_EINVALID. The caller frees `*out` (set on success)
 * with amlops_source_config_free().
 */
int amlops_source_config_parse(struct amlops_source_config **out,
    struct amlops_diags *diags, const char *file, const char *data, size_t len);

/*
 * Reads `.amlops.yml` at `commit`; an empty config when there is none.
 */
int amlops_source_config_load(struct amlops_source_config **out,
    struct amlops_diags *diags, struct amlops_source *src, const char *commit);
void amlops_source_config_free(struct amlops_source_config *cfg);

/* Whether `path` is one of the manifests `cfg` selects (YAML, in paths). */
int amlops_source_config_selects(
    const struct amlops_source_config *cfg, const char *path);

/*
 * Lists the manifest files of `commit`: every *.yml, *.yaml and *.YAML
 * blob of its tree that `cfg` selects (all when `cfg` is NULL), except
 * `.amlops.yml`, sorted by path. The caller frees the array and its
 * strings with amlops_source_paths_free().
 */
int amlops_source_manifests(char ***out, size_t *n, struct amlops_source *src,
    const char *commit, const struct amlops_source_config *cfg);
void amlops_source_paths_free(char **paths, size_t n);

/*
 * Loads the endpoint model of `commit`: the manifests `cfg` selects, or,
 * when `only` is not NULL, just the `nonly` paths it lists (those absent
 * at the commit are left out), fed to amlops_spec_load() with a path
 * callback that looks paths up in the same commit tree. Then fills each
 * inline asset's content_id and, where no version was written, its
 * version (version_auto = 1). Returns as amlops_spec_load() does:
 * AMLOPS_EINVALID with `*out` set when `diags` has entries.
 */
int amlops_source_load_spec(struct amlops_spec **out,
    struct amlops_diags *diags, struct amlops_source *src, const char *commit,
    const struct amlops_source_config *cfg, const char *const *only,
    size_t nonly);

/*
 * The git object id of `path` at `commit` ("" is the root tree).
 * AMLOPS_ENOTFOUND when the commit has no such path.
 */
int amlops_source_content_id(char out[41], struct amlops_source *src,
    const char *commit, const char *path);

/*
 * What `path` (repository-relative) is at `commit`, as the spec loader's
 * path callback sees it: symlinks inside the repository are followed, a
 * symlink that leads out of it is AMLOPS_PATH_SYMLINK_OUT.
 */
enum amlops_path_kind amlops_source_path_kind(
    struct amlops_source *src, const char *commit, const char *path);

/*
 * The paths that differ between two commits (added, deleted, modified;
 * a rename is its old and its new path), sorted. `base` may be NULL: the
 * empty tree. The caller frees them with amlops_source_paths_free().
 */
int amlops_source_diff_paths(char ***out, size_t *n, struct amlops_source *src,
    const char *base, const char *head);

/*
 * The endpoints touched by the changed `paths`: an endpoint of `base` or
 * `head` (either may be NULL) is touched when one of its YAML files (its
 * own, or one of its deployments') is in `paths`, or a path in `paths`
 * lies under a path its model, code or environment (conda file, build
 * context) points to. Names are sorted and unique; the caller frees them
 * with amlops_source_paths_free().
 */
int amlops_source_touched(char ***out, size_t *n,
    const struct amlops_spec *base, const struct amlops_spec *head,
    char *const *paths, size_t npaths);

/*
 * Diffs two commits into the set of endpoints they touch: the two
 * amlops_source_diff_paths() and amlops_source_touched() above, with the
 * specs of both commits loaded fully (`base` NULL: nothing).
 */
int amlops_source_diff_touched(char ***out, size_t *n,
    struct amlops_diags *diags, struct amlops_source *src, const char *base,
    const char *head, const struct amlops_source_config *cfg);

/*
 * Checks that no inline asset kept its written version while its
 * content changed between `base` and `head` (same kind, name and
 * version, different content_id). Each offence is a diag at the asset in
 * `head`: "'PATH': version 'V' of model 'NAME' is unchanged but its
 * content changed (OLD -> NEW); bump the version or drop it to let amlops
 * version it" (ids shortened to 12 digits). Also checks `head` on its
 * own: two inline assets with the same kind, name and version but
 * different content. Returns AMLOPS_EINVALID when it added any.
 */
int amlops_source_check_versions(struct amlops_diags *diags,
    const struct amlops_spec *base, const struct amlops_spec *head);

/*
 * The two sides of an offline plan. amlops_source_load_pair() diffs
 * `base` (NULL: the empty tree) and `head`, then loads the specs of
 * both. When only manifests changed, it loads just those and the
 * manifests in the same folders (`narrowed`), so that a one-file commit
 * costs the same in a repository of ten or ten thousand endpoints; it
 * falls back to loading everything when that is not enough (a change
 * outside the manifests, which may be an asset's content; `.amlops.yml`;
 * a manifest that does not load on its own). Then it computes the
 * touched endpoints and runs amlops_source_check_versions(). Returns
 * AMLOPS_EINVALID, with both specs set, when `diags` has entries.
 */
struct amlops_source_pair {
	struct amlops_spec *base; /* never NULL on success */
	struct amlops_spec *head;
	char **changed; /* every changed path, sorted */
	size_t nchanged;
	char **touched; /* endpoint names, sorted */
	size_t ntouched;
	int narrowed;
	size_t nloaded; /* manifests read at head */
};

#define AMLOPS_SOURCE_PAIR_INIT                                                \
	{                                                                      \
		NULL, NULL, NULL, 0, NULL, 0, 0, 0                             \
	}

int amlops_source_load_pair(struct amlops_source_pair *out,
    struct amlops_diags *diags, struct amlops_source *src, const char *base,
    const char *head, const struct amlops_source_config *cfg);
void amlops_source_pair_release(struct amlops_source_pair *p);

/*
 * Notes: the raw text of the note on `commit` under `ref`
 * (AMLOPS_NOTES_REF when NULL). _note_get gives AMLOPS_ENOTFOUND when
 * there is none; _note_set creates or rewrites it in place, touching no
 * other note and no other ref.
 */
int amlops_source_note_get(
    char **out, struct amlops_source *src, const char *ref, const char *commit);
int amlops_source_note_set(struct amlops_source *src, const char *ref,
    const char *commit, const char *text);

/*
 * The last commit applied in full to `target`, kept in
 * refs/amlops/applied/TARGET. _applied_get gives AMLOPS_ENOTFOUND when
 * the ref does not exist.
 */
int amlops_source_applied_get(
    char out[41], struct amlops_source *src, const char *target);
int amlops_source_applied_set(
    struct amlops_source *src, const char *target, const char *commit);

/*
 * Pushes `refspecs` (e.g. "refs/notes/amlops:refs/notes/amlops") to the
 * remote `remote` ("origin" when NULL).
 */
int amlops_source_push(struct amlops_source *src, const char *remote,
    const char *const *refspecs, size_t nrefspecs);

#endif
