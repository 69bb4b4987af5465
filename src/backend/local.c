/*
 * The local backend: the ARM backend pointed at `amlops host` (its URL
 * and token from DIR/host.json). Inline assets are written from the
 * commit into DIR/uploads/<kind>/<content id>/ and registered with a
 * file:// URI; the host copies them into its store.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amlops/backend.h"
#include "amlops/err.h"
#include "amlops/hostinfo.h"
#include "amlops/log.h"
#include "amlops/util.h"
#include "backend/arm_int.h"

struct local_impl {
	char *dir; /* the host's state dir */
};

struct write_ctx {
	const char *root;
	const char *base; /* the asset's base name */
	unsigned files;
};

static int
write_one(void *arg, const char *rel, const struct amlops_buf *data)
{
	struct write_ctx *w = arg;
	char *file, *dir, *slash;
	int error;

	if (*rel && !amlops_relpath_ok(rel))
		return amlops_err_set(AMLOPS_EINVALID,
		    "'%s': refusing a path that leaves the asset", rel);
	file = *rel ? amlops_xasprintf("%s/%s/%s", w->root, w->base, rel)
	            : amlops_xasprintf("%s/%s", w->root, w->base);
	dir = amlops_xstrdup(file);
	slash = strrchr(dir, '/');
	*slash = '\0';
	if ((error = amlops_mkdir_p(dir, 0755)) == 0)
		error = amlops_file_write_atomic(
		    file, data->ptr ? data->ptr : "", data->len, 0644);
	free(file);
	free(dir);
	w->files++;
	return error;
}

static const char *
base_name(const char *path)
{
	const char *p = strrchr(path, '/');

	return p ? p + 1 : path;
}

static char *
file_uri(const char *path)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	static const char hex[] = "0123456789ABCDEF";

	amlops_buf_puts(&b, "file://");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p))
			amlops_buf_putc(&b, (char)*p);
		else
			amlops_buf_printf(
			    &b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
	}
	return amlops_buf_detach(&b);
}

static void
rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		char *cmd[] = {"rm", "-rf", (char *)path, NULL};
		pid_t pid = fork();
		int status;

		if (pid == 0) {
			execv("/bin/rm", cmd);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, &status, 0);
	} else
		unlink(path);
}

static int
local_stage(struct arm_backend *ab, const char *kind,
    const struct amlops_asset *a, const struct amlops_files *files, char **uri)
{
	struct local_impl *li = ab->impl;
	const char *cid = a->content_id[0] ? a->content_id : a->version;
	const char *base = *a->path ? base_name(a->path) : "root";
	char *final = NULL, *tmp = NULL, *target = NULL;
	char id[37];
	struct stat st;
	struct write_ctx w = {0};
	int error;

	if (cid == NULL || *cid == '\0')
		return amlops_err_set(
		    AMLOPS_EINVALID, "'%s' has no content id", a->path);
	final = amlops_xasprintf("%s/uploads/%s/%s", li->dir, kind, cid);
	target = amlops_xasprintf("%s/%s", final, base);
	if (stat(target, &st) == 0) {
		/* Content-addressed: the same id is the same bytes. */
		log_debug(
		    "%s: path=%s content=%s reused", __func__, a->path, cid);
		goto ok;
	}
	if ((error = amlops_uuid(id)) < 0)
		goto done;
	tmp = amlops_xasprintf("%s/uploads/.tmp-%s", li->dir, id);
	if ((error = amlops_mkdir_p(tmp, 0700)) < 0)
		goto done;
	w.root = tmp;
	w.base = base;
	if ((error = arm_walk_files(files, a->path, write_one, &w)) < 0)
		goto done;
	{
		char *parent = amlops_xasprintf("%s/uploads/%s", li->dir, kind);

		error = amlops_mkdir_p(parent, 0755);
		free(parent);
		if (error < 0)
			goto done;
	}
	if (rename(tmp, final) < 0 && errno != EEXIST && errno != ENOTEMPTY) {
		error = amlops_err_sys(AMLOPS_ERROR, "cannot rename '%s'", tmp);
		goto done;
	}
	log_debug(
	    "%s: path=%s content=%s files=%u", __func__, a->path, cid, w.files);
ok:
	*uri = file_uri(target);
	error = 0;
done:
	if (tmp)
		rm_rf(tmp);
	free(tmp);
	free(final);
	free(target);
	return error;
}

static void
local_release(struct arm_backend *ab)
{
	struct local_impl *li = ab->impl;

	if (li) {
		free(li->dir);
		free(li);
	}
}

int
amlops_local_new(struct amlops_backend **out, const char *host_dir,
    const struct amlops_retry *retry)
{
	struct amlops_hostinfo *info = NULL;
	struct amlops_rest_cfg rc = {0};
	struct arm_backend *ab = NULL;
	struct local_impl *li;
	const char *env = getenv("AMLOPS_HOST_DIR");
	int error;

	if (host_dir == NULL && env && *env)
		host_dir = env;
	if ((error = amlops_hostinfo_read(&info, host_dir)) < 0)
		return error;
	rc.base_url = info->url;
	rc.api_version = AMLOPS_ARM_API_VERSION;
	rc.bearer = info->token;
	if (retry)
		rc.retry = *retry;
	ab = amlops_xcalloc(1, sizeof(*ab));
	li = amlops_xcalloc(1, sizeof(*li));
	if (info->state_dir)
		li->dir = amlops_xstrdup(info->state_dir);
	else if (host_dir)
		li->dir = amlops_xstrdup(host_dir);
	else if ((error = amlops_hostinfo_default_dir(&li->dir)) < 0)
		goto done;
	ab->impl = li;
	ab->release = local_release;
	ab->stage = local_stage;
	if ((error = arm_backend_init(ab, &arm_local_ops, &rc,
	         info->subscription ? info->subscription
	                            : "00000000-0000-0000-0000-000000000000",
	         info->resource_group ? info->resource_group : "local",
	         info->workspace ? info->workspace : "local")) < 0)
		goto done;
	*out = &ab->base;
	ab = NULL;
done:
	if (ab)
		arm_local_ops.free(&ab->base);
	amlops_hostinfo_free(info);
	return error;
}
