/*
 * From a commit to the endpoint model: the manifests of a tree, the
 * path callback the spec loader checks local paths with, content ids and
 * automatic versions, touched endpoints, and the narrowed two-commit load
 * an offline plan uses.
 */
#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/source.h"
#include "amlops/util.h"
#include "source/source_int.h"

/* Folders with more manifests than this are not read for a neighbour. */
#define SIBLINGS_MAX 64
/*
 * Above this many changed paths a narrowed load saves nothing: reading
 * every manifest costs about the same as finding the neighbours.
 */
#define NARROW_MAX 512
/* Symlinks followed inside the repository before giving up. */
#define LINKS_MAX 8

struct walk_ctx {
	const struct amlops_source_config *cfg;
	char **v;
	size_t n, cap;
};

static int
walk_cb(const char *root, const git_tree_entry *e, void *payload)
{
	struct walk_ctx *w = payload;
	const char *name = git_tree_entry_name(e);
	char *path;

	if (git_tree_entry_type(e) != GIT_OBJECT_BLOB ||
	    git_tree_entry_filemode(e) == GIT_FILEMODE_LINK ||
	    !amlops_source_is_yaml(name))
		return 0;
	path = amlops_xasprintf("%s%s", root, name);
	if (amlops_source_config_selects(w->cfg, path))
		amlops_source_paths_push(&w->v, &w->n, &w->cap, path);
	else
		free(path);
	return 0;
}

static int
tree_manifests(char ***out, size_t *n, git_tree *tree,
    const struct amlops_source_config *cfg)
{
	struct walk_ctx w = {cfg, NULL, 0, 0};

	*out = NULL;
	*n = 0;
	if (!tree)
		return 0;
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, walk_cb, &w) < 0) {
		amlops_source_paths_free(w.v, w.n);
		return amlops_source_git_fail(
		    AMLOPS_ERROR, "cannot list the commit tree");
	}
	amlops_source_paths_sort_uniq(w.v, &w.n);
	*out = w.v;
	*n = w.n;
	return 0;
}

int
amlops_source_manifests(char ***out, size_t *n, struct amlops_source *src,
    const char *commit, const struct amlops_source_config *cfg)
{
	git_tree *tree = NULL;
	int error;

	*out = NULL;
	*n = 0;
	if ((error = amlops_source_lookup_tree(&tree, src, commit)) < 0)
		return error;
	error = tree_manifests(out, n, tree, cfg);
	git_tree_free(tree);
	return error;
}

/*
 * Normalises "a/./b/../c" into "a/c"; NULL when it climbs out of the
 * root.
 */
static char *
normalize(const char *path)
{
	char *copy = amlops_xstrdup(path), *out, *tok, *save = NULL;
	size_t len = 0;

	out = amlops_xcalloc(1, strlen(path) + 2);
	for (tok = strtok_r(copy, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, "..")) {
			if (len == 0) {
				free(copy);
				free(out);
				return NULL;
			}
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
			out[len] = '\0';
			continue;
		}
		if (len > 0)
			out[len++] = '/';
		memcpy(out + len, tok, strlen(tok));
		len += strlen(tok);
		out[len] = '\0';
	}
	free(copy);
	return out;
}

/*
 * What the spec loader asks of a tree: the kind of a path. Many
 * deployments name the same model, code folder and conda file, so the
 * answers for the loader's questions are kept by path (open addressing
 * on an FNV-1a hash) for the life of the context.
 */
struct kind_ctx {
	git_repository *repo;
	git_tree *root;
	char **keys;
	unsigned char *kinds;
	size_t cap, n;
};

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static enum amlops_path_kind kind_at(
    struct kind_ctx *k, const char *path, int depth);

/* The entry `link` at `dir`/... is a symlink: follow it, then `rest`. */
static enum amlops_path_kind
follow_link(struct kind_ctx *k, const git_tree_entry *link, const char *dir,
    const char *rest, int depth)
{
	git_blob *blob = NULL;
	enum amlops_path_kind kind = AMLOPS_PATH_MISSING;
	char *target = NULL, *joined = NULL, *norm = NULL;

	if (depth >= LINKS_MAX)
		return AMLOPS_PATH_MISSING;
	if (git_blob_lookup(&blob, k->repo, git_tree_entry_id(link)) < 0)
		return AMLOPS_PATH_MISSING;
	target = amlops_xstrndup(
	    git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
	git_blob_free(blob);
	if (target[0] == '/') {
		kind = AMLOPS_PATH_SYMLINK_OUT;
		goto done;
	}
	joined = amlops_xasprintf(
	    "%s%s%s%s%s", dir, *dir ? "/" : "", target, *rest ? "/" : "", rest);
	if (!(norm = normalize(joined))) {
		kind = AMLOPS_PATH_SYMLINK_OUT;
		goto done;
	}
	kind = kind_at(k, norm, depth + 1);
done:
	free(target);
	free(joined);
	free(norm);
	return kind;
}

static enum amlops_path_kind
kind_at(struct kind_ctx *k, const char *path, int depth)
{
	enum amlops_path_kind kind = AMLOPS_PATH_MISSING;
	git_tree *cur = k->root, *next = NULL;
	char *copy = amlops_xstrdup(path), *p = copy, *slash;
	const git_tree_entry *e;

	if (!*path) {
		free(copy);
		return AMLOPS_PATH_DIR;
	}
	for (;;) {
		if ((slash = strchr(p, '/')))
			*slash = '\0';
		if (!(e = git_tree_entry_byname(cur, p)))
			break;
		if (git_tree_entry_filemode(e) == GIT_FILEMODE_LINK) {
			/* the folder so far is copy[0 .. p-1] */
			if (p > copy)
				p[-1] = '\0';
			kind = follow_link(k, e, p > copy ? copy : "",
			    slash ? slash + 1 : "", depth);
			break;
		}
		if (!slash) {
			if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
				kind = AMLOPS_PATH_DIR;
			else if (git_tree_entry_type(e) == GIT_OBJECT_BLOB)
				kind = AMLOPS_PATH_FILE;
			break;
		}
		if (git_tree_entry_type(e) != GIT_OBJECT_TREE)
			break;
		if (git_tree_lookup(&next, k->repo, git_tree_entry_id(e)) < 0)
			break;
		if (cur != k->root)
			git_tree_free(cur);
		cur = next;
		next = NULL;
		*slash = '/';
		p = slash + 1;
	}
	if (cur != k->root)
		git_tree_free(cur);
	free(copy);
	return kind;
}

static void
kinds_put(struct kind_ctx *k, char *key, enum amlops_path_kind kind)
{
	size_t i;

	if ((k->n + 1) * 2 > k->cap) {
		struct kind_ctx old = *k;

		k->cap = old.cap ? old.cap * 2 : 64;
		k->keys = amlops_xcalloc(k->cap, sizeof(*k->keys));
		k->kinds = amlops_xcalloc(k->cap, sizeof(*k->kinds));
		k->n = 0;
		for (i = 0; i < old.cap; i++)
			if (old.keys[i])
				kinds_put(k, old.keys[i],
				    (enum amlops_path_kind)old.kinds[i]);
		free(old.keys);
		free(old.kinds);
	}
	for (i = fnv1a(key) & (k->cap - 1); k->keys[i];
	     i = (i + 1) & (k->cap - 1))
		;
	k->keys[i] = key;
	k->kinds[i] = (unsigned char)kind;
	k->n++;
}

static enum amlops_path_kind
tree_path_kind(void *ctx, const char *path)
{
	struct kind_ctx *k = ctx;
	enum amlops_path_kind kind;
	size_t i;

	for (i = k->cap ? fnv1a(path) & (k->cap - 1) : 0; k->cap && k->keys[i];
	     i = (i + 1) & (k->cap - 1))
		if (!strcmp(k->keys[i], path))
			return (enum amlops_path_kind)k->kinds[i];
	kind = kind_at(k, path, 0);
	kinds_put(k, amlops_xstrdup(path), kind);
	return kind;
}

static void
kind_ctx_release(struct kind_ctx *k)
{
	size_t i;

	for (i = 0; i < k->cap; i++)
		free(k->keys[i]);
	free(k->keys);
	free(k->kinds);
	k->keys = NULL;
	k->kinds = NULL;
	k->cap = k->n = 0;
}

enum amlops_path_kind
amlops_source_path_kind(
    struct amlops_source *src, const char *commit, const char *path)
{
	struct kind_ctx k = {src->repo, NULL, NULL, NULL, 0, 0};
	enum amlops_path_kind kind;

	if (amlops_source_lookup_tree(&k.root, src, commit) < 0 || !k.root)
		return AMLOPS_PATH_MISSING;
	kind = kind_at(&k, path, 0);
	git_tree_free(k.root);
	return kind;
}

static void
auto_version(struct amlops_asset *a)
{
	if (!a->version && a->content_id[0]) {
		a->version = amlops_xstrndup(a->content_id, 12);
		a->version_auto = 1;
	}
}

/*
 * Content ids by path for one load: many deployments share a model, code
 * folder or conda file, and each lookup walks the tree from its root.
 * Open addressing on an FNV-1a hash; an empty id means "not there".
 */
struct idcache {
	char **keys;
	char (*ids)[41];
	size_t cap, n;
	git_tree *tree;
};

static void idcache_put(struct idcache *c, char *key, const char *id);

static void
idcache_grow(struct idcache *c)
{
	struct idcache old = *c;
	size_t i;

	c->cap = old.cap ? old.cap * 2 : 64;
	c->keys = amlops_xcalloc(c->cap, sizeof(*c->keys));
	c->ids = amlops_xcalloc(c->cap, sizeof(*c->ids));
	c->n = 0;
	for (i = 0; i < old.cap; i++)
		if (old.keys[i])
			idcache_put(c, old.keys[i], old.ids[i]);
	free(old.keys);
	free(old.ids);
}

/* Takes ownership of `key`. */
static void
idcache_put(struct idcache *c, char *key, const char *id)
{
	size_t i;

	if ((c->n + 1) * 2 > c->cap)
		idcache_grow(c);
	for (i = fnv1a(key) & (c->cap - 1); c->keys[i];
	     i = (i + 1) & (c->cap - 1))
		;
	c->keys[i] = key;
	memcpy(c->ids[i], id, 41);
	c->n++;
}

static const char *
idcache_get(const struct idcache *c, const char *key)
{
	size_t i;

	if (!c->cap)
		return NULL;
	for (i = fnv1a(key) & (c->cap - 1); c->keys[i];
	     i = (i + 1) & (c->cap - 1))
		if (!strcmp(c->keys[i], key))
			return c->ids[i];
	return NULL;
}

static void
idcache_release(struct idcache *c)
{
	size_t i;

	for (i = 0; i < c->cap; i++)
		free(c->keys[i]);
	free(c->keys);
	free(c->ids);
	memset(c, 0, sizeof(*c));
}

/* The id of `path` at the tree, or "" when it is not there. */
static const char *
path_id(struct idcache *c, const char *path)
{
	const char *hit = idcache_get(c, path);
	char id[41];

	if (hit)
		return hit;
	if (amlops_source_tree_id(id, c->tree, path) < 0) {
		/* the loader reported the missing path */
		id[0] = '\0';
		amlops_err_clear();
	}
	idcache_put(c, amlops_xstrdup(path), id);
	return idcache_get(c, path);
}

static void
fill_asset(struct amlops_asset *a, struct idcache *c)
{
	if (a->kind != AMLOPS_ASSET_INLINE || !a->path)
		return;
	memcpy(a->content_id, path_id(c, a->path), 41);
	auto_version(a);
}

static void
fill_environment(struct amlops_environment *env, struct idcache *c)
{
	char conda[41] = "", build[41] = "", *text;
	const char *hit;
	git_oid oid;

	if (env->asset.kind != AMLOPS_ASSET_INLINE)
		return;
	if (env->conda_file)
		memcpy(conda, path_id(c, env->conda_file), 41);
	if (env->build_path)
		memcpy(build, path_id(c, env->build_path), 41);
	text = amlops_xasprintf("amlops-environment\n%s\n%s\n%s\n",
	    env->image ? env->image : "", conda, build);
	/* the recipe text never names a path: it cannot collide with one */
	if ((hit = idcache_get(c, text))) {
		memcpy(env->asset.content_id, hit, 41);
		free(text);
	} else {
		git_odb_hash(&oid, text, strlen(text), GIT_OBJECT_BLOB);
		git_oid_tostr(env->asset.content_id, 41, &oid);
		idcache_put(c, text, env->asset.content_id);
	}
	auto_version(&env->asset);
}

static void
fill_spec(struct amlops_spec *spec, git_tree *tree)
{
	struct idcache c = {NULL, NULL, 0, 0, tree};
	size_t i, j;

	if (!tree)
		return;
	for (i = 0; i < spec->nendpoints; i++) {
		struct amlops_endpoint *ep = spec->endpoints[i];

		for (j = 0; j < ep->ndeployments; j++) {
			struct amlops_deployment *d = ep->deployments[j];

			fill_asset(&d->model, &c);
			fill_asset(&d->code, &c);
			fill_environment(&d->environment, &c);
		}
	}
	idcache_release(&c);
}

/* Keeps the paths of `only` that are blobs in `tree`. */
static void
existing_blobs(char ***out, size_t *n, git_tree *tree, const char *const *only,
    size_t nonly)
{
	char **v = NULL;
	size_t nv = 0, cap = 0, i;
	git_tree_entry *e;

	for (i = 0; tree && i < nonly; i++) {
		if (git_tree_entry_bypath(&e, tree, only[i]) < 0)
			continue;
		if (git_tree_entry_type(e) == GIT_OBJECT_BLOB &&
		    git_tree_entry_filemode(e) != GIT_FILEMODE_LINK)
			amlops_source_paths_push(
			    &v, &nv, &cap, amlops_xstrdup(only[i]));
		git_tree_entry_free(e);
	}
	git_error_clear();
	amlops_source_paths_sort_uniq(v, &nv);
	*out = v;
	*n = nv;
}

/* Reads the manifests paths[from .. to) not read yet into `files`. */
static int
read_blobs(struct amlops_spec_file *files, git_blob **blobs,
    git_repository *repo, git_tree *tree, char *const *paths, size_t from,
    size_t to)
{
	git_tree_entry *e = NULL;
	size_t i;

	for (i = from; i < to; i++) {
		if (blobs[i])
			continue;
		if (git_tree_entry_bypath(&e, tree, paths[i]) < 0 ||
		    git_blob_lookup(&blobs[i], repo, git_tree_entry_id(e)) <
		        0) {
			int error = amlops_source_git_fail(
			    AMLOPS_ERROR, "cannot read manifest");

			git_tree_entry_free(e);
			amlops_err_prefix(error, "'%s'", paths[i]);
			return error;
		}
		git_tree_entry_free(e);
		e = NULL;
		files[i].path = paths[i];
		files[i].data = git_blob_rawcontent(blobs[i]);
		files[i].len = (size_t)git_blob_rawsize(blobs[i]);
	}
	return 0;
}

/*
 * Loading in two halves on two threads. The manifests are split between
 * folders (a folder's files stay together, as split-shape endpoints
 * usually do); each half reads its blobs, is loaded and has its content
 * ids filled on its own thread, and the halves are merged. libgit2 lets
 * one thread at a time use a repository, so the second half opens the
 * repository again for itself. When either half fails or has any
 * diagnostic (say, a deployment naming an endpoint in the other half) or
 * the merge finds one endpoint name in both, the caller loads everything
 * at once instead, so results and messages are exactly those of a
 * single load.
 */
#define PARALLEL_MIN 2048

struct half {
	char *const *paths;
	struct amlops_spec_file *files;
	git_blob **blobs;
	size_t n;
	struct amlops_spec_opts opts;
	struct kind_ctx *kind; /* the caller's, or NULL: open our own */
	const char *gitdir;
	const git_oid *tree_id;
	struct amlops_spec *spec;
	struct amlops_diags diags;
	int error;
};

static void *
half_run(void *arg)
{
	struct half *h = arg;
	struct kind_ctx own = {NULL, NULL, NULL, NULL, 0, 0}, *k = h->kind;
	size_t i;

	if (!k) {
		k = &own;
		if (git_repository_open(&own.repo, h->gitdir) < 0 ||
		    git_tree_lookup(&own.root, own.repo, h->tree_id) < 0) {
			h->error = AMLOPS_ERROR;
			goto done;
		}
	}
	if ((h->error = read_blobs(
	         h->files, h->blobs, k->repo, k->root, h->paths, 0, h->n)) < 0)
		goto done;
	h->opts.path_kind = tree_path_kind;
	h->opts.ctx = k;
	h->error =
	    amlops_spec_load(&h->spec, &h->diags, h->files, h->n, &h->opts);
	if (h->error == 0 && h->diags.n == 0 && h->spec)
		fill_spec(h->spec, k->root);
done:
	if (k == &own) {
		/* the loaded model holds copies: the blobs can go */
		for (i = 0; i < h->n; i++) {
			git_blob_free(h->blobs[i]);
			h->blobs[i] = NULL;
		}
		kind_ctx_release(&own);
		git_tree_free(own.root);
		git_repository_free(own.repo);
	}
	return NULL;
}

static size_t
dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? (size_t)(slash - path) : 0;
}

/* Moves both halves into one spec; NULL when a name is in both. */
static struct amlops_spec *
merge_halves(struct amlops_spec *a, struct amlops_spec *b)
{
	struct amlops_spec *m = amlops_xcalloc(1, sizeof(*m));
	size_t i = 0, j = 0, k;

	m->endpoints = amlops_xcalloc(
	    a->nendpoints + b->nendpoints + 1, sizeof(*m->endpoints));
	while (i < a->nendpoints || j < b->nendpoints) {
		int c = i == a->nendpoints   ? 1
		        : j == b->nendpoints ? -1
		                             : strcmp(a->endpoints[i]->name,
		                                   b->endpoints[j]->name);

		if (c == 0) {
			free(m->endpoints);
			free(m);
			return NULL;
		}
		m->endpoints[m->nendpoints++] =
		    c < 0 ? a->endpoints[i++] : b->endpoints[j++];
	}
	m->files = amlops_xcalloc(a->nfiles + b->nfiles + 1, sizeof(*m->files));
	for (k = 0; k < a->nfiles; k++)
		m->files[m->nfiles++] = a->files[k];
	for (k = 0; k < b->nfiles; k++)
		m->files[m->nfiles++] = b->files[k];
	m->skipped =
	    amlops_xcalloc(a->nskipped + b->nskipped + 1, sizeof(*m->skipped));
	m->skipped_why = amlops_xcalloc(
	    a->nskipped + b->nskipped + 1, sizeof(*m->skipped_why));
	for (k = 0; k < a->nskipped; k++, m->nskipped++) {
		m->skipped[m->nskipped] = a->skipped[k];
		m->skipped_why[m->nskipped] = a->skipped_why[k];
	}
	for (k = 0; k < b->nskipped; k++, m->nskipped++) {
		m->skipped[m->nskipped] = b->skipped[k];
		m->skipped_why[m->nskipped] = b->skipped_why[k];
	}
	/* the halves' containers only: their contents moved */
	for (k = 0; k < 2; k++) {
		struct amlops_spec *h = k ? b : a;

		free(h->endpoints);
		free(h->files);
		free(h->skipped);
		free(h->skipped_why);
		free(h);
	}
	return m;
}

/*
 * Tries the two-thread load; 0 with *out set on success, 1 when the
 * caller must load everything at once (the blobs read so far are kept
 * in `files` and `blobs`).
 */
static int
load_parallel(struct amlops_spec **out, struct amlops_spec_file *files,
    git_blob **blobs, char *const *paths, size_t n,
    const struct amlops_spec_opts *opts, struct kind_ctx *kctx)
{
	struct half h[2];
	pthread_t th;
	size_t mid = n / 2, k;
	int ok;

	while (mid < n && dir_len(paths[mid]) == dir_len(paths[mid - 1]) &&
	       !strncmp(paths[mid], paths[mid - 1], dir_len(paths[mid])))
		mid++;
	if (mid == n)
		return 1;
	memset(h, 0, sizeof(h));
	for (k = 0; k < 2; k++) {
		size_t from = k ? mid : 0;

		h[k].paths = paths + from;
		h[k].files = files + from;
		h[k].blobs = blobs + from;
		h[k].n = k ? n - mid : mid;
		h[k].opts = *opts;
	}
	h[0].kind = kctx;
	h[1].gitdir = git_repository_path(kctx->repo);
	h[1].tree_id = git_tree_id(kctx->root);
	if (pthread_create(&th, NULL, half_run, &h[1]) != 0)
		return 1;
	half_run(&h[0]);
	pthread_join(th, NULL);
	ok = h[0].error == 0 && h[1].error == 0 && h[0].diags.n == 0 &&
	     h[1].diags.n == 0 && h[0].spec && h[1].spec;
	if (ok && (*out = merge_halves(h[0].spec, h[1].spec))) {
		amlops_diags_release(&h[0].diags);
		amlops_diags_release(&h[1].diags);
		return 0;
	}
	for (k = 0; k < 2; k++) {
		amlops_spec_free(h[k].spec);
		amlops_diags_release(&h[k].diags);
	}
	amlops_err_clear();
	return 1;
}

static int
load_tree(struct amlops_spec **out, struct amlops_diags *diags,
    git_repository *repo, git_tree *tree,
    const struct amlops_source_config *cfg, const char *const *only,
    size_t nonly, size_t *nloaded)
{
	struct amlops_spec_opts opts = {0, NULL, NULL};
	struct amlops_spec_file *files = NULL;
	struct kind_ctx kctx = {repo, tree, NULL, NULL, 0, 0};
	git_blob **blobs = NULL;
	char **paths = NULL;
	size_t npaths = 0, i;
	int error;

	*out = NULL;
	if (only)
		existing_blobs(&paths, &npaths, tree, only, nonly);
	else if ((error = tree_manifests(&paths, &npaths, tree, cfg)) < 0)
		goto done;
	files = amlops_xcalloc(npaths + 1, sizeof(*files));
	blobs = amlops_xcalloc(npaths + 1, sizeof(*blobs));
	if (npaths >= PARALLEL_MIN && tree &&
	    load_parallel(out, files, blobs, paths, npaths, &opts, &kctx) ==
	        0) {
		error = 0;
		goto loaded;
	}
	if ((error = read_blobs(files, blobs, repo, tree, paths, 0, npaths)) <
	    0)
		goto done;
	if (tree) {
		opts.path_kind = tree_path_kind;
		opts.ctx = &kctx;
	}
	error = amlops_spec_load(out, diags, files, npaths, &opts);
	if (error < 0 && error != AMLOPS_EINVALID)
		goto done;
	if (*out)
		fill_spec(*out, tree);
loaded:
	if (nloaded)
		*nloaded = npaths;
done:
	for (i = 0; blobs && i < npaths; i++)
		git_blob_free(blobs[i]);
	free(blobs);
	free(files);
	kind_ctx_release(&kctx);
	amlops_source_paths_free(paths, npaths);
	return error;
}

int
amlops_source_load_spec(struct amlops_spec **out, struct amlops_diags *diags,
    struct amlops_source *src, const char *commit,
    const struct amlops_source_config *cfg, const char *const *only,
    size_t nonly)
{
	git_tree *tree = NULL;
	int error;

	*out = NULL;
	if ((error = amlops_source_lookup_tree(&tree, src, commit)) < 0)
		return error;
	error = load_tree(out, diags, src->repo, tree, cfg, only, nonly, NULL);
	git_tree_free(tree);
	return error;
}

static int
cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
has_path(char *const *paths, size_t n, const char *p)
{
	return p && bsearch(&p, paths, n, sizeof(*paths), cmp_cstr) != NULL;
}

/* Whether a path of sorted `paths` equals `dir` or lies under it. */
static int
has_under(char *const *paths, size_t n, const char *dir)
{
	size_t lo = 0, hi = n, len;
	char *key;

	if (!dir)
		return 0;
	if (!*dir)
		return n > 0;
	if (has_path(paths, n, dir))
		return 1;
	key = amlops_xasprintf("%s/", dir);
	len = strlen(key);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(paths[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	free(key);
	return lo < n && !strncmp(paths[lo], dir, len - 1) &&
	       paths[lo][len - 1] == '/';
}

static int
asset_touched(const struct amlops_asset *a, char *const *paths, size_t n)
{
	return a->kind == AMLOPS_ASSET_INLINE && has_under(paths, n, a->path);
}

static int
endpoint_touched(const struct amlops_endpoint *ep, char *const *paths, size_t n)
{
	size_t i;

	if (has_path(paths, n, ep->file) || has_path(paths, n, ep->loc.file))
		return 1;
	for (i = 0; i < ep->ndeployments; i++) {
		const struct amlops_deployment *d = ep->deployments[i];
		const struct amlops_environment *env = &d->environment;

		if (has_path(paths, n, d->loc.file) ||
		    asset_touched(&d->model, paths, n) ||
		    asset_touched(&d->code, paths, n))
			return 1;
		if (env->asset.kind == AMLOPS_ASSET_INLINE &&
		    (has_under(paths, n, env->conda_file) ||
		        has_under(paths, n, env->build_path)))
			return 1;
	}
	return 0;
}

int
amlops_source_touched(char ***out, size_t *n, const struct amlops_spec *base,
    const struct amlops_spec *head, char *const *paths, size_t npaths)
{
	const struct amlops_spec *sides[2] = {base, head};
	char **sorted, **v = NULL;
	size_t nv = 0, cap = 0, i, s;

	sorted = amlops_xcalloc(npaths + 1, sizeof(*sorted));
	if (npaths)
		memcpy(sorted, paths, npaths * sizeof(*paths));
	qsort(sorted, npaths, sizeof(*sorted), cmp_cstr);
	for (s = 0; s < 2; s++) {
		if (!sides[s])
			continue;
		for (i = 0; i < sides[s]->nendpoints; i++) {
			const struct amlops_endpoint *ep =
			    sides[s]->endpoints[i];

			if (endpoint_touched(ep, sorted, npaths))
				amlops_source_paths_push(
				    &v, &nv, &cap, amlops_xstrdup(ep->name));
		}
	}
	free(sorted);
	amlops_source_paths_sort_uniq(v, &nv);
	*out = v;
	*n = nv;
	return 0;
}

/* Drops the diagnostics added after the first `n`. */
static void
diags_truncate(struct amlops_diags *d, size_t n)
{
	while (d->n > n) {
		d->n--;
		free(d->v[d->n].file);
		free(d->v[d->n].msg);
	}
}

/* Adds the selected manifests of folder `dir` in `tree` to `v`. */
static void
add_siblings(char ***v, size_t *n, size_t *cap, git_tree *root, const char *dir,
    const struct amlops_source_config *cfg)
{
	git_tree_entry *e = NULL;
	git_tree *t = NULL;
	size_t i, cnt, nyaml = 0;

	if (!root)
		return;
	if (!*dir) {
		t = root;
	} else {
		if (git_tree_entry_bypath(&e, root, dir) < 0 ||
		    git_tree_entry_type(e) != GIT_OBJECT_TREE ||
		    git_tree_lookup(
		        &t, git_tree_owner(root), git_tree_entry_id(e)) < 0)
			goto done;
	}
	cnt = git_tree_entrycount(t);
	for (i = 0; i < cnt; i++)
		if (amlops_source_is_yaml(
		        git_tree_entry_name(git_tree_entry_byindex(t, i))))
			nyaml++;
	if (nyaml > SIBLINGS_MAX)
		goto done;
	for (i = 0; i < cnt; i++) {
		const git_tree_entry *c = git_tree_entry_byindex(t, i);
		char *path;

		if (git_tree_entry_type(c) != GIT_OBJECT_BLOB)
			continue;
		path = amlops_xasprintf(
		    "%s%s%s", dir, *dir ? "/" : "", git_tree_entry_name(c));
		if (amlops_source_config_selects(cfg, path))
			amlops_source_paths_push(v, n, cap, path);
		else
			free(path);
	}
done:
	git_error_clear();
	git_tree_entry_free(e);
	if (t != root)
		git_tree_free(t);
}

static int
in_skipped(const struct amlops_spec *spec, const char *path)
{
	size_t i;

	for (i = 0; spec && i < spec->nskipped; i++)
		if (!strcmp(spec->skipped[i], path))
			return 1;
	return 0;
}

/* Whether the change can be planned from the changed folders alone. */
static int
narrowable(const struct amlops_source_pair *p, const char *base,
    const struct amlops_source_config *cfg)
{
	size_t i;

	if (!base || p->nchanged > NARROW_MAX)
		return 0;
	for (i = 0; i < p->nchanged; i++)
		if (!amlops_source_config_selects(cfg, p->changed[i]))
			return 0;
	return 1;
}

static void
narrow_files(char ***out, size_t *n, const struct amlops_source_pair *p,
    git_tree *bt, git_tree *ht, const struct amlops_source_config *cfg)
{
	char **v = NULL, *dir, *slash;
	const char *prev = NULL;
	size_t nv = 0, cap = 0, i;

	for (i = 0; i < p->nchanged; i++) {
		amlops_source_paths_push(
		    &v, &nv, &cap, amlops_xstrdup(p->changed[i]));
		dir = amlops_xstrdup(p->changed[i]);
		if ((slash = strrchr(dir, '/')))
			*slash = '\0';
		else
			dir[0] = '\0';
		/* changed paths are sorted: a folder's files are adjacent */
		if (!prev || strcmp(prev, dir)) {
			add_siblings(&v, &nv, &cap, bt, dir, cfg);
			add_siblings(&v, &nv, &cap, ht, dir, cfg);
		}
		free((char *)prev);
		prev = dir;
	}
	free((char *)prev);
	amlops_source_paths_sort_uniq(v, &nv);
	*out = v;
	*n = nv;
}

static int
any_changed_skipped(const struct amlops_source_pair *p)
{
	size_t i;

	for (i = 0; i < p->nchanged; i++)
		if (in_skipped(p->base, p->changed[i]) ||
		    in_skipped(p->head, p->changed[i]))
			return 1;
	return 0;
}

/*
 * Whether an endpoint of `base` is missing from `head`. A narrowed load
 * cannot tell a deleted endpoint from one whose deployment files, left
 * in another folder, now name nothing: only a full load can refuse that.
 */
static int
any_endpoint_gone(
    const struct amlops_spec *base, const struct amlops_spec *head)
{
	size_t i, j = 0;

	for (i = 0; i < base->nendpoints; i++) {
		while (
		    j < head->nendpoints && strcmp(head->endpoints[j]->name,
		                                base->endpoints[i]->name) < 0)
			j++;
		if (j == head->nendpoints ||
		    strcmp(head->endpoints[j]->name, base->endpoints[i]->name))
			return 1;
	}
	return 0;
}

int
amlops_source_load_pair(struct amlops_source_pair *out,
    struct amlops_diags *diags, struct amlops_source *src, const char *base,
    const char *head, const struct amlops_source_config *cfg)
{
	struct amlops_source_pair p = AMLOPS_SOURCE_PAIR_INIT;
	git_tree *bt = NULL, *ht = NULL;
	char **files = NULL;
	size_t nfiles = 0, n0 = diags->n;
	int error, e1, e2;

	if ((error = amlops_source_lookup_tree(&bt, src, base)) < 0 ||
	    (error = amlops_source_lookup_tree(&ht, src, head)) < 0)
		goto done;
	if ((error = amlops_source_diff_paths(
	         &p.changed, &p.nchanged, src, base, head)) < 0)
		goto done;
	if (narrowable(&p, base, cfg)) {
		narrow_files(&files, &nfiles, &p, bt, ht, cfg);
		e1 = load_tree(&p.base, diags, src->repo, bt, cfg,
		    (const char *const *)files, nfiles, NULL);
		e2 = load_tree(&p.head, diags, src->repo, ht, cfg,
		    (const char *const *)files, nfiles, &p.nloaded);
		if (e1 == 0 && e2 == 0 && !any_changed_skipped(&p) &&
		    !any_endpoint_gone(p.base, p.head)) {
			p.narrowed = 1;
			goto loaded;
		}
		if ((e1 < 0 && e1 != AMLOPS_EINVALID) ||
		    (e2 < 0 && e2 != AMLOPS_EINVALID)) {
			error = e1 < 0 && e1 != AMLOPS_EINVALID ? e1 : e2;
			goto done;
		}
		log_debug(
		    "%s: narrowed load not enough, loading all", __func__);
		diags_truncate(diags, n0);
		amlops_spec_free(p.base);
		amlops_spec_free(p.head);
		p.base = p.head = NULL;
	}
	e1 = load_tree(&p.base, diags, src->repo, bt, cfg, NULL, 0, NULL);
	if (e1 < 0 && e1 != AMLOPS_EINVALID) {
		error = e1;
		goto done;
	}
	if (base && e1 == AMLOPS_EINVALID) {
		/* the base's own errors are not the head's */
		diags_truncate(diags, n0);
	}
	e2 = load_tree(&p.head, diags, src->repo, ht, cfg, NULL, 0, &p.nloaded);
	if (e2 < 0 && e2 != AMLOPS_EINVALID) {
		error = e2;
		goto done;
	}
loaded:
	amlops_source_touched(
	    &p.touched, &p.ntouched, p.base, p.head, p.changed, p.nchanged);
	amlops_source_check_versions(diags, p.base, p.head);
	error = diags->n > n0 ? AMLOPS_EINVALID : 0;
	log_debug("%s: changed=%zu loaded=%zu narrowed=%d touched=%zu",
	    __func__, p.nchanged, p.nloaded, p.narrowed, p.ntouched);
	*out = p;
	memset(&p, 0, sizeof(p));
done:
	amlops_source_pair_release(&p);
	amlops_source_paths_free(files, nfiles);
	git_tree_free(bt);
	git_tree_free(ht);
	return error;
}

void
amlops_source_pair_release(struct amlops_source_pair *p)
{
	amlops_spec_free(p->base);
	amlops_spec_free(p->head);
	amlops_source_paths_free(p->changed, p->nchanged);
	amlops_source_paths_free(p->touched, p->ntouched);
	memset(p, 0, sizeof(*p));
}

int
amlops_source_diff_touched(char ***out, size_t *n, struct amlops_diags *diags,
    struct amlops_source *src, const char *base, const char *head,
    const struct amlops_source_config *cfg)
{
	struct amlops_source_pair p = AMLOPS_SOURCE_PAIR_INIT;
	int error;

	*out = NULL;
	*n = 0;
	error = amlops_source_load_pair(&p, diags, src, base, head, cfg);
	if (error < 0 && error != AMLOPS_EINVALID)
		return error;
	*out = p.touched;
	*n = p.ntouched;
	p.touched = NULL;
	p.ntouched = 0;
	amlops_source_pair_release(&p);
	return error;
}
