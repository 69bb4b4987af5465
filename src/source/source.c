/*
 * The git source: repositories, revisions, trees, diffs, notes and refs,
 * on libgit2. Every libgit2 error is converted here (git_fail()).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/source.h"
#include "amlops/util.h"
#include "source/source_int.h"

/* Turns the last libgit2 error into an amlops one with context `what`. */
int
amlops_source_git_fail(int code, const char *what)
{
	const git_error *e = git_error_last();

	return amlops_err_set(code, "%s: %s", what,
	    e && e->message ? e->message : "unknown libgit2 error");
}

static int
is_url(const char *s)
{
	const char *colon, *slash;

	if (strstr(s, "://"))
		return 1;
	/* scp-like "user@host:path" */
	colon = strchr(s, ':');
	slash = strchr(s, '/');
	return strchr(s, '@') && colon && (!slash || colon < slash);
}

/* git_clone()'s remote, without insteadOf (see remote_open()). */
static int
clone_remote_cb(git_remote **out, git_repository *repo, const char *name,
    const char *url, void *payload)
{
	git_remote_create_options ropts;

	(void)payload;
	git_remote_create_options_init(
	    &ropts, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ropts.repository = repo;
	ropts.name = name;
	ropts.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
	return git_remote_create_with_opts(out, url, &ropts);
}

/*
 * libgit2 re-hashes every object it reads and caches no tree above 4 KiB:
 * a folder of 10,000 endpoints (400 KiB) would be read and parsed again
 * for every path looked up under it. Objects come from our own
 * repository, so trust them, and cache trees of any size.
 */
static void
tune_libgit2(void)
{
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
	git_libgit2_opts(
	    GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE, (size_t)64 << 20);
}

static char *
default_cache_dir(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");

	if (xdg && *xdg == '/')
		return amlops_xasprintf("%s/amlops/repos", xdg);
	if (home && *home)
		return amlops_xasprintf("%s/.cache/amlops/repos", home);
	return amlops_xstrdup("/tmp/amlops-cache/repos");
}

int
amlops_source_open(
    struct amlops_source **out, const char *where, const char *cache_dir)
{
	struct amlops_source *src = NULL;
	git_clone_options copts;
	char *cache = NULL, *dir = NULL;
	git_oid h;
	char hex[GIT_OID_HEXSZ + 1];
	struct stat st;
	int error;

	*out = NULL;
	if (git_libgit2_init() == 1)
		tune_libgit2();
	git_clone_options_init(&copts, GIT_CLONE_OPTIONS_VERSION);
	src = amlops_xcalloc(1, sizeof(*src));
	if (!is_url(where)) {
		if (git_repository_open_ext(&src->repo, where, 0, NULL) < 0) {
			error = amlops_source_git_fail(
			    AMLOPS_ENOTFOUND, "cannot open repository");
			amlops_err_prefix(error, "'%s'", where);
			goto done;
		}
		goto opened;
	}

	src->url = amlops_xstrdup(where);
	cache = cache_dir ? amlops_xstrdup(cache_dir) : default_cache_dir();
	if ((error = amlops_mkdir_p(cache, 0700)) < 0)
		goto done;
	git_odb_hash(&h, where, strlen(where), GIT_OBJECT_BLOB);
	git_oid_tostr(hex, sizeof(hex), &h);
	dir = amlops_xasprintf("%s/%.16s.git", cache, hex);
	if (stat(dir, &st) == 0) {
		if (git_repository_open_bare(&src->repo, dir) < 0) {
			error = amlops_source_git_fail(
			    AMLOPS_ERROR, "cannot open cached clone");
			amlops_err_prefix(error, "'%s'", dir);
			goto done;
		}
		if ((error = amlops_source_fetch(src)) < 0)
			goto done;
		goto opened;
	}
	copts.bare = 1;
	copts.remote_cb = clone_remote_cb;
	log_debug("%s: cloning url=%s dir=%s", __func__, where, dir);
	if (git_clone(&src->repo, where, dir, &copts) < 0) {
		error = amlops_source_git_fail(AMLOPS_ERROR, "cannot clone");
		amlops_err_prefix(error, "'%s'", where);
		goto done;
	}
	/* the branches, notes and applied refs, mirrored */
	if ((error = amlops_source_fetch(src)) < 0)
		goto done;
opened:
	src->gitdir = amlops_xstrdup(git_repository_path(src->repo));
	*out = src;
	src = NULL;
	error = 0;
done:
	amlops_source_free(src);
	free(cache);
	free(dir);
	return error;
}

void
amlops_source_free(struct amlops_source *src)
{
	if (!src)
		return;
	git_repository_free(src->repo);
	free(src->url);
	free(src->gitdir);
	free(src);
	git_libgit2_shutdown();
}

/*
 * The remote `name` as an anonymous remote on its configured URL.
 * (git_remote_lookup() and insteadOf rewriting in libgit2 1.5 leak the
 * pcre2 match data of the config regexes they run, ~20 KiB a call: too
 * much for a watcher. insteadOf is therefore not applied.)
 */
static int
remote_open(git_remote **out, git_repository *repo, const char *name)
{
	git_remote_create_options ropts;
	git_config *cfg = NULL;
	git_buf url = GIT_BUF_INIT;
	char *key = amlops_xasprintf("remote.%s.url", name);
	int error = 0;

	*out = NULL;
	if (git_repository_config_snapshot(&cfg, repo) < 0) {
		error = amlops_source_git_fail(
		    AMLOPS_ERROR, "cannot read the repository config");
		goto done;
	}
	if (git_config_get_string_buf(&url, cfg, key) < 0) {
		git_error_clear();
		error =
		    amlops_err_set(AMLOPS_ENOTFOUND, "no remote '%s'", name);
		goto done;
	}
	git_remote_create_options_init(
	    &ropts, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ropts.repository = repo;
	/* url.*.insteadOf is looked up with a regex as well */
	ropts.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF |
	              GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	if (git_remote_create_with_opts(out, url.ptr, &ropts) < 0)
		error =
		    amlops_source_git_fail(AMLOPS_ERROR, "cannot use remote");
done:
	git_buf_dispose(&url);
	git_config_free(cfg);
	free(key);
	return error;
}

int
amlops_source_fetch(struct amlops_source *src)
{
	static char *specs[] = {
	    "+refs/heads/*:refs/heads/*",
	    "+refs/heads/*:refs/remotes/origin/*",
	    "+refs/tags/*:refs/tags/*",
	    "+refs/notes/*:refs/notes/*",
	    "+refs/amlops/*:refs/amlops/*",
	};
	git_strarray refspecs = {specs, AMLOPS_ARRAY_SIZE(specs)};
	git_fetch_options fopts;
	git_remote *remote = NULL;
	int error = 0;

	if (!src->url)
		return 0;
	git_fetch_options_init(&fopts, GIT_FETCH_OPTIONS_VERSION);
	if ((error = remote_open(&remote, src->repo, "origin")) < 0)
		goto done;
	fopts.update_fetchhead = 0;
	if (git_remote_fetch(remote, &refspecs, &fopts, "amlops fetch") < 0) {
		error = amlops_source_git_fail(AMLOPS_ERROR, "cannot fetch");
		amlops_err_prefix(error, "'%s'", src->url);
		goto done;
	}
done:
	git_remote_free(remote);
	return error;
}

const char *
amlops_source_gitdir(const struct amlops_source *src)
{
	return src->gitdir;
}

git_repository *
amlops_source_repo(struct amlops_source *src)
{
	return src->repo;
}

int
amlops_source_lookup_commit(
    git_commit **out, struct amlops_source *src, const char *hex)
{
	git_oid oid;

	if (git_oid_fromstr(&oid, hex) < 0)
		return amlops_err_set(
		    AMLOPS_EINVALID, "'%s' is not a commit id", hex);
	if (git_commit_lookup(out, src->repo, &oid) < 0)
		return amlops_source_git_fail(
		    AMLOPS_ENOTFOUND, "cannot read commit");
	return 0;
}

int
amlops_source_lookup_tree(
    git_tree **out, struct amlops_source *src, const char *hex)
{
	git_commit *c = NULL;
	int error;

	*out = NULL;
	if (!hex)
		return 0;
	if ((error = amlops_source_lookup_commit(&c, src, hex)) < 0)
		return error;
	if (git_commit_tree(out, c) < 0)
		error = amlops_source_git_fail(
		    AMLOPS_ERROR, "cannot read commit tree");
	git_commit_free(c);
	return error;
}

int
amlops_source_resolve(char out[41], struct amlops_source *src, const char *rev)
{
	git_object *obj = NULL, *peeled = NULL;
	int error = 0, rc;

	if (!rev || !*rev)
		return amlops_err_set(AMLOPS_EINVALID, "empty revision");
	rc = git_revparse_single(&obj, src->repo, rev);
	if (rc == GIT_ENOTFOUND) {
		error = amlops_err_set(
		    AMLOPS_ENOTFOUND, "unknown revision '%s'", rev);
		goto done;
	}
	if (rc == GIT_EAMBIGUOUS) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "ambiguous revision '%s': give more digits", rev);
		goto done;
	}
	if (rc < 0) {
		error = amlops_source_git_fail(
		    AMLOPS_ENOTFOUND, "cannot resolve revision");
		amlops_err_prefix(error, "'%s'", rev);
		goto done;
	}
	if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "revision '%s' is a %s, not a commit", rev,
		    git_object_type2string(git_object_type(obj)));
		goto done;
	}
	git_oid_tostr(out, 41, git_object_id(peeled));
done:
	git_object_free(peeled);
	git_object_free(obj);
	return error;
}

int
amlops_source_parent(
    char out[41], struct amlops_source *src, const char *commit)
{
	git_commit *c = NULL;
	int error;

	if ((error = amlops_source_lookup_commit(&c, src, commit)) < 0)
		return error;
	if (git_commit_parentcount(c) == 0)
		error = amlops_err_set(
		    AMLOPS_ENOTFOUND, "commit %.12s has no parent", commit);
	else
		git_oid_tostr(out, 41, git_commit_parent_id(c, 0));
	git_commit_free(c);
	return error;
}

int
amlops_source_summary(char **out, struct amlops_source *src, const char *commit)
{
	git_commit *c = NULL;
	const char *s;
	int error;

	if ((error = amlops_source_lookup_commit(&c, src, commit)) < 0)
		return error;
	s = git_commit_summary(c);
	*out = amlops_xstrdup(s ? s : "");
	git_commit_free(c);
	return 0;
}

int
amlops_source_content_id(char out[41], struct amlops_source *src,
    const char *commit, const char *path)
{
	git_tree *tree = NULL;
	int error;

	if ((error = amlops_source_lookup_tree(&tree, src, commit)) < 0)
		return error;
	error = amlops_source_tree_id(out, tree, path);
	git_tree_free(tree);
	return error;
}

int
amlops_source_tree_id(char out[41], git_tree *tree, const char *path)
{
	git_tree_entry *e = NULL;

	if (!path || !*path) {
		git_oid_tostr(out, 41, git_tree_id(tree));
		return 0;
	}
	if (git_tree_entry_bypath(&e, tree, path) < 0)
		return amlops_err_set(
		    AMLOPS_ENOTFOUND, "no path '%s' in the commit", path);
	git_oid_tostr(out, 41, git_tree_entry_id(e));
	git_tree_entry_free(e);
	return 0;
}

void
amlops_source_paths_free(char **paths, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
amlops_source_paths_sort_uniq(char **v, size_t *n)
{
	size_t i, j;

	if (*n == 0)
		return;
	qsort(v, *n, sizeof(*v), cmp_str);
	for (i = 1, j = 1; i < *n; i++) {
		if (!strcmp(v[i], v[j - 1]))
			free(v[i]);
		else
			v[j++] = v[i];
	}
	*n = j;
}

void
amlops_source_paths_push(char ***v, size_t *n, size_t *cap, char *s)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = amlops_xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = s;
}

struct diff_ctx {
	git_repository *repo;
	char **v;
	size_t n, cap;
	int error;
};

static void diff_add(
    struct diff_ctx *d, const char *prefix, const git_tree_entry *e);

/* Adds every file under `e` (a file: itself). */
static void
diff_add(struct diff_ctx *d, const char *prefix, const git_tree_entry *e)
{
	char *path = amlops_xasprintf("%s%s", prefix, git_tree_entry_name(e));
	git_tree *t = NULL;
	size_t i, cnt;

	if (git_tree_entry_type(e) != GIT_OBJECT_TREE) {
		amlops_source_paths_push(&d->v, &d->n, &d->cap, path);
		return;
	}
	if (git_tree_lookup(&t, d->repo, git_tree_entry_id(e)) < 0) {
		d->error =
		    amlops_source_git_fail(AMLOPS_ERROR, "cannot read tree");
		free(path);
		return;
	}
	cnt = git_tree_entrycount(t);
	{
		char *sub = amlops_xasprintf("%s/", path);

		for (i = 0; i < cnt && !d->error; i++)
			diff_add(d, sub, git_tree_entry_byindex(t, i));
		free(sub);
	}
	free(path);
	git_tree_free(t);
}

/* git's order of tree entries: by name, a folder as if it were "name/". */
static int
entry_cmp(const git_tree_entry *a, const git_tree_entry *b)
{
	const unsigned char *x = (const unsigned char *)git_tree_entry_name(a);
	const unsigned char *y = (const unsigned char *)git_tree_entry_name(b);
	unsigned cx, cy;

	while (*x && *x == *y) {
		x++;
		y++;
	}
	cx = *x ? *x : git_tree_entry_type(a) == GIT_OBJECT_TREE ? '/' : 0;
	cy = *y ? *y : git_tree_entry_type(b) == GIT_OBJECT_TREE ? '/' : 0;
	if (cx != cy)
		return cx < cy ? -1 : 1;
	/* same name: a file and a folder of that name compare by kind */
	return 0;
}

/*
 * Merges two sorted trees, descending only into subtrees whose ids
 * differ: the cost is the size of the change (and of the folders on its
 * path), not of the repository. `a` or `b` may be NULL (empty).
 */
static void
diff_trees(struct diff_ctx *d, const char *prefix, git_tree *a, git_tree *b)
{
	size_t na = a ? git_tree_entrycount(a) : 0;
	size_t nb = b ? git_tree_entrycount(b) : 0;
	size_t i = 0, j = 0;

	while ((i < na || j < nb) && !d->error) {
		const git_tree_entry *ea =
		    i < na ? git_tree_entry_byindex(a, i) : NULL;
		const git_tree_entry *eb =
		    j < nb ? git_tree_entry_byindex(b, j) : NULL;
		int c = !ea ? 1 : !eb ? -1 : entry_cmp(ea, eb);

		if (c < 0) {
			diff_add(d, prefix, ea);
			i++;
			continue;
		}
		if (c > 0) {
			diff_add(d, prefix, eb);
			j++;
			continue;
		}
		i++;
		j++;
		if (git_oid_equal(
		        git_tree_entry_id(ea), git_tree_entry_id(eb)) &&
		    git_tree_entry_filemode(ea) == git_tree_entry_filemode(eb))
			continue;
		if (git_tree_entry_type(ea) == GIT_OBJECT_TREE &&
		    git_tree_entry_type(eb) == GIT_OBJECT_TREE) {
			git_tree *ta = NULL, *tb = NULL;
			char *sub;

			if (git_tree_lookup(
			        &ta, d->repo, git_tree_entry_id(ea)) < 0 ||
			    git_tree_lookup(
			        &tb, d->repo, git_tree_entry_id(eb)) < 0) {
				d->error = amlops_source_git_fail(
				    AMLOPS_ERROR, "cannot read tree");
				git_tree_free(ta);
				break;
			}
			sub = amlops_xasprintf(
			    "%s%s/", prefix, git_tree_entry_name(ea));
			diff_trees(d, sub, ta, tb);
			free(sub);
			git_tree_free(ta);
			git_tree_free(tb);
			continue;
		}
		/* changed file, or a file that became a folder */
		diff_add(d, prefix, ea);
		diff_add(d, prefix, eb);
	}
}

int
amlops_source_diff_paths(char ***out, size_t *n, struct amlops_source *src,
    const char *base, const char *head)
{
	struct diff_ctx d = {src->repo, NULL, 0, 0, 0};
	git_tree *bt = NULL, *ht = NULL;
	int error;

	*out = NULL;
	*n = 0;
	if ((error = amlops_source_lookup_tree(&bt, src, base)) < 0)
		goto done;
	if ((error = amlops_source_lookup_tree(&ht, src, head)) < 0)
		goto done;
	diff_trees(&d, "", bt, ht);
	if ((error = d.error) < 0)
		goto done;
	amlops_source_paths_sort_uniq(d.v, &d.n);
	*out = d.v;
	*n = d.n;
	d.v = NULL;
	d.n = 0;
done:
	amlops_source_paths_free(d.v, d.n);
	git_tree_free(bt);
	git_tree_free(ht);
	return error;
}

int
amlops_source_note_get(
    char **out, struct amlops_source *src, const char *ref, const char *commit)
{
	git_note *note = NULL;
	git_oid oid;
	int rc;

	*out = NULL;
	if (git_oid_fromstr(&oid, commit) < 0)
		return amlops_err_set(
		    AMLOPS_EINVALID, "'%s' is not a commit id", commit);
	rc =
	    git_note_read(&note, src->repo, ref ? ref : AMLOPS_NOTES_REF, &oid);
	if (rc == GIT_ENOTFOUND)
		return amlops_err_set(
		    AMLOPS_ENOTFOUND, "no note for commit %.12s", commit);
	if (rc < 0)
		return amlops_source_git_fail(AMLOPS_ERROR, "cannot read note");
	*out = amlops_xstrdup(git_note_message(note));
	git_note_free(note);
	return 0;
}

static int
signature(git_signature **out, git_repository *repo)
{
	if (git_signature_default(out, repo) == 0)
		return 0;
	if (git_signature_now(out, "amlops", "amlops@localhost") < 0)
		return amlops_source_git_fail(
		    AMLOPS_ERROR, "cannot make a signature");
	return 0;
}

/*
 * Every amlops write of a notes ref or an applied ref holds an flock(2)
 * on GITDIR/amlops-refs.lock, which the kernel drops when the process
 * dies, and records "PID REF" in it until the write is done. A record
 * found there by the next writer (holding the flock) is a writer that
 * was killed mid-write (kill -9 of apply lands there): the REF.lock
 * libgit2 left for it is removed, or no later run could write that ref
 * until someone deleted it. A REF.lock without such a record is another
 * writer's (git itself) and stays. Returns the fd to pass to
 * ref_guard_drop(), or -1 (the write goes on unguarded).
 */
static int
ref_guard_take(struct amlops_source *src, const char *ref)
{
	size_t n = strlen(src->gitdir);
	char *path, *rec, buf[512], dead[256];
	ssize_t len;
	long pid;
	int fd;

	while (n > 1 && src->gitdir[n - 1] == '/')
		n--; /* libgit2's path ends with a slash */
	path = amlops_xasprintf("%.*s/amlops-refs.lock", (int)n, src->gitdir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	free(path);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	len = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[len > 0 ? len : 0] = '\0';
	if (sscanf(buf, "%ld %255s", &pid, dead) == 2 &&
	    !strncmp(dead, "refs/", 5) && !strstr(dead, "..")) {
		path =
		    amlops_xasprintf("%.*s/%s.lock", (int)n, src->gitdir, dead);
		if (unlink(path) == 0)
			log_warnx(
			    "lock=%s result=removed reason=\"left by "
			    "amlops pid %ld, which died writing the ref\"",
			    path, pid);
		free(path);
	}
	rec = amlops_xasprintf("%ld %s\n", (long)getpid(), ref);
	if (ftruncate(fd, 0) < 0 ||
	    pwrite(fd, rec, strlen(rec), 0) != (ssize_t)strlen(rec))
		log_debug("%s: cannot record the write: %s", __func__,
		    strerror(errno));
	free(rec);
	return fd;
}

/* The write is done (or failed cleanly): no record, no flock. */
static void
ref_guard_drop(int fd)
{
	if (fd < 0)
		return;
	if (ftruncate(fd, 0) < 0)
		log_debug("%s: %s", __func__, strerror(errno));
	close(fd); /* releases the flock */
}

int
amlops_source_note_set(struct amlops_source *src, const char *ref,
    const char *commit, const char *text)
{
	git_signature *sig = NULL;
	git_oid oid, note_oid;
	int error, guard;

	if (git_oid_fromstr(&oid, commit) < 0)
		return amlops_err_set(
		    AMLOPS_EINVALID, "'%s' is not a commit id", commit);
	if ((error = signature(&sig, src->repo)) < 0)
		return error;
	guard = ref_guard_take(src, ref ? ref : AMLOPS_NOTES_REF);
	if (git_note_create(&note_oid, src->repo, ref ? ref : AMLOPS_NOTES_REF,
	        sig, sig, &oid, text, 1) < 0)
		error =
		    amlops_source_git_fail(AMLOPS_ERROR, "cannot write note");
	ref_guard_drop(guard);
	git_signature_free(sig);
	return error;
}

static int
applied_ref(char **out, const char *target)
{
	char *name;

	if (!target || !*target)
		return amlops_err_set(AMLOPS_EINVALID, "empty target name");
	name = amlops_xasprintf(AMLOPS_APPLIED_PREFIX "%s", target);
	if (!git_reference_is_valid_name(name)) {
		free(name);
		return amlops_err_set(AMLOPS_EINVALID,
		    "target name '%s' cannot be a ref name", target);
	}
	*out = name;
	return 0;
}

int
amlops_source_applied_get(
    char out[41], struct amlops_source *src, const char *target)
{
	git_oid oid;
	char *name = NULL;
	int error, rc;

	if ((error = applied_ref(&name, target)) < 0)
		return error;
	rc = git_reference_name_to_id(&oid, src->repo, name);
	if (rc == GIT_ENOTFOUND)
		error = amlops_err_set(AMLOPS_ENOTFOUND,
		    "nothing applied to target '%s' yet", target);
	else if (rc < 0)
		error = amlops_source_git_fail(
		    AMLOPS_ERROR, "cannot read applied ref");
	else
		git_oid_tostr(out, 41, &oid);
	free(name);
	return error;
}

int
amlops_source_applied_set(
    struct amlops_source *src, const char *target, const char *commit)
{
	git_reference *ref = NULL;
	git_commit *c = NULL;
	char *name = NULL, *msg = NULL;
	int error, guard;

	if ((error = applied_ref(&name, target)) < 0)
		goto done;
	if ((error = amlops_source_lookup_commit(&c, src, commit)) < 0)
		goto done;
	msg = amlops_xasprintf("amlops: applied to %s", target);
	guard = ref_guard_take(src, name);
	if (git_reference_create(
	        &ref, src->repo, name, git_commit_id(c), 1, msg) < 0)
		error = amlops_source_git_fail(
		    AMLOPS_ERROR, "cannot update applied ref");
	ref_guard_drop(guard);
done:
	git_reference_free(ref);
	git_commit_free(c);
	free(name);
	free(msg);
	return error;
}

int
amlops_source_push(struct amlops_source *src, const char *remote_name,
    const char *const *refspecs, size_t nrefspecs)
{
	git_push_options popts;
	git_remote *remote = NULL;
	git_strarray arr;
	int error = 0;

	git_push_options_init(&popts, GIT_PUSH_OPTIONS_VERSION);
	arr.strings = (char **)refspecs;
	arr.count = nrefspecs;
	if (!remote_name)
		remote_name = "origin";
	if ((error = remote_open(&remote, src->repo, remote_name)) < 0)
		goto done;
	if (git_remote_push(remote, &arr, &popts) < 0) {
		error = amlops_source_git_fail(AMLOPS_ERROR, "cannot push");
		amlops_err_prefix(error, "remote '%s'", remote_name);
		goto done;
	}
done:
	git_remote_free(remote);
	return error;
}

int
amlops_source_is_yaml(const char *path)
{
	const char *dot = strrchr(path, '.');

	return dot && (!strcmp(dot, ".yml") || !strcmp(dot, ".yaml") ||
	                  !strcmp(dot, ".YAML") || !strcmp(dot, ".YML"));
}

int
amlops_source_config_selects(
    const struct amlops_source_config *cfg, const char *path)
{
	size_t i, len;

	if (!amlops_source_is_yaml(path) ||
	    !strcmp(path, AMLOPS_SOURCE_CONFIG_FILE))
		return 0;
	if (!cfg || cfg->npaths == 0)
		return 1;
	for (i = 0; i < cfg->npaths; i++) {
		const char *p = cfg->paths[i];

		len = strlen(p);
		while (len > 0 && p[len - 1] == '/')
			len--;
		if (len == 0 || (len == 1 && p[0] == '.'))
			return 1;
		if (!strncmp(path, p, len) &&
		    (path[len] == '\0' || path[len] == '/'))
			return 1;
		if (strpbrk(p, "*?[") && fnmatch(p, path, 0) == 0)
			return 1;
	}
	return 0;
}
