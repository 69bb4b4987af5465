/*
 * Code, model and environment versions of `amlops host`. A PUT with a
 * file:// URI copies the file or folder into DIR/store/<sha256>/<name>,
 * where <sha256> covers the names, executable bits and bytes of the whole
 * tree, so a registered version never changes when its source does.
 * Versions are immutable, as in Azure: a second PUT with other content
 * answers 409.
 *
 * State entry, under ws["assets"]["<type>/<name>/<version>"]:
 *   {"resource":{ARM body},"asset_name","asset_version","digest",
 *    "source":"file:///...","path":"DIR/store/<sha256>/<name>"}
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "amlops/blob.h"
#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/util.h"
#include "local/host.h"

#define MMLS "Microsoft.MachineLearningServices"
#define TREE_DEPTH 32
#define BLOB_MAX ((uint64_t)2 << 30)

/* SHA-256, through libcrypto. */

struct sha256 {
	EVP_MD_CTX *ctx;
};

static void
sha256_init(struct sha256 *s)
{
	if (!(s->ctx = EVP_MD_CTX_new()) ||
	    EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1)
		abort();
}

static void
sha256_add(struct sha256 *s, const void *data, size_t len)
{
	if (EVP_DigestUpdate(s->ctx, data, len) != 1)
		abort();
}

/* Writes the hex digest and frees the context. */
static void
sha256_hex(struct sha256 *s, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0, i;

	if (EVP_DigestFinal_ex(s->ctx, md, &n) != 1 || n != 32)
		abort();
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	EVP_MD_CTX_free(s->ctx);
	s->ctx = NULL;
}

static void
sha256_abandon(struct sha256 *s)
{
	EVP_MD_CTX_free(s->ctx);
	s->ctx = NULL;
}

/* Trees */

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in a folder, without "." and "..". */
static int
list_dir(char ***out, size_t *n_out, const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0;

	if (!d)
		return amlops_err_sys(AMLOPS_ERROR, "cannot open '%s'", path);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		names = amlops_xrealloc(names, (n + 1) * sizeof(char *));
		names[n++] = amlops_xstrdup(e->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(char *), cmp_names);
	*out = names;
	*n_out = n;
	return 0;
}

static void
free_names(char **names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int
digest_file(struct sha256 *s, const char *path)
{
	char chunk[65536];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return amlops_err_sys(AMLOPS_ERROR, "cannot open '%s'", path);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return amlops_err_sys(
			    AMLOPS_ERROR, "cannot read '%s'", path);
		}
		sha256_add(s, chunk, (size_t)n);
	}
	close(fd);
	return 0;
}

static int
digest_tree(struct sha256 *s, const char *path, const char *rel, int depth)
{
	struct stat st;
	char **names = NULL, *child, *crel, hdr[64];
	size_t n = 0, i;
	int error = 0;

	if (depth > TREE_DEPTH)
		return amlops_err_set(AMLOPS_EINVALID,
		    "'%s' is nested more than %d folders deep", path,
		    TREE_DEPTH);
	if (stat(path, &st) < 0)
		return amlops_err_sys(
		    errno == ENOENT ? AMLOPS_ENOTFOUND : AMLOPS_ERROR,
		    "cannot read '%s'", path);
	if (S_ISREG(st.st_mode)) {
		snprintf(hdr, sizeof(hdr), "%c %lld",
		    (st.st_mode & 0111) ? 'x' : 'f', (long long)st.st_size);
		sha256_add(s, hdr, strlen(hdr) + 1);
		sha256_add(s, rel, strlen(rel) + 1);
		return digest_file(s, path);
	}
	if (!S_ISDIR(st.st_mode))
		return amlops_err_set(AMLOPS_EINVALID,
		    "'%s' is neither a file nor a folder", path);
	sha256_add(s, "d", 2);
	sha256_add(s, rel, strlen(rel) + 1);
	if ((error = list_dir(&names, &n, path)) < 0)
		return error;
	for (i = 0; i < n && !error; i++) {
		child = amlops_xasprintf("%s/%s", path, names[i]);
		crel = amlops_xasprintf("%s/%s", rel, names[i]);
		error = digest_tree(s, child, crel, depth + 1);
		free(child);
		free(crel);
	}
	free_names(names, n);
	return error;
}

int
host_tree_digest(char out[65], const char *path)
{
	const char *base = strrchr(path, '/');
	struct sha256 s;
	int error;

	sha256_init(&s);
	if ((error = digest_tree(&s, path, base ? base + 1 : path, 0)) < 0) {
		sha256_abandon(&s);
		return error;
	}
	sha256_hex(&s, out);
	return 0;
}

static int
copy_file(const char *src, const char *dst, mode_t mode)
{
	char chunk[65536];
	ssize_t n, w, off;
	int in, out, error = 0;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return amlops_err_sys(AMLOPS_ERROR, "cannot open '%s'", src);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    (mode & 0111) ? 0700 : 0600);
	if (out < 0) {
		close(in);
		return amlops_err_sys(AMLOPS_ERROR, "cannot create '%s'", dst);
	}
	while ((n = read(in, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error = amlops_err_sys(
			    AMLOPS_ERROR, "cannot read '%s'", src);
			break;
		}
		for (off = 0; off < n; off += w) {
			w = write(out, chunk + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR) {
				w = 0;
				continue;
			}
			if (w < 0) {
				error = amlops_err_sys(
				    AMLOPS_ERROR, "cannot write '%s'", dst);
				goto done;
			}
		}
	}
done:
	if (close(out) < 0 && !error)
		error = amlops_err_sys(AMLOPS_ERROR, "cannot write '%s'", dst);
	close(in);
	return error;
}

static int
copy_tree(const char *src, const char *dst, int depth)
{
	struct stat st;
	char **names = NULL, *s, *d;
	size_t n = 0, i;
	int error = 0;

	if (depth > TREE_DEPTH)
		return amlops_err_set(AMLOPS_EINVALID,
		    "'%s' is nested more than %d folders deep", src,
		    TREE_DEPTH);
	if (stat(src, &st) < 0)
		return amlops_err_sys(AMLOPS_ERROR, "cannot read '%s'", src);
	if (S_ISREG(st.st_mode))
		return copy_file(src, dst, st.st_mode);
	if (!S_ISDIR(st.st_mode))
		return amlops_err_set(AMLOPS_EINVALID,
		    "'%s' is neither a file nor a folder", src);
	if (mkdir(dst, 0700) < 0 && errno != EEXIST)
		return amlops_err_sys(AMLOPS_ERROR, "cannot create '%s'", dst);
	if ((error = list_dir(&names, &n, src)) < 0)
		return error;
	for (i = 0; i < n && !error; i++) {
		s = amlops_xasprintf("%s/%s", src, names[i]);
		d = amlops_xasprintf("%s/%s", dst, names[i]);
		error = copy_tree(s, d, depth + 1);
		free(s);
		free(d);
	}
	free_names(names, n);
	return error;
}

int
host_copy_tree(const char *src, const char *dst)
{
	return copy_tree(src, dst, 0);
}

int
host_rm_tree(const char *path)
{
	struct stat st;
	char **names = NULL, *c;
	size_t n = 0, i;

	if (lstat(path, &st) < 0)
		return 0;
	if (S_ISDIR(st.st_mode) && list_dir(&names, &n, path) == 0) {
		for (i = 0; i < n; i++) {
			c = amlops_xasprintf("%s/%s", path, names[i]);
			host_rm_tree(c);
			free(c);
		}
		free_names(names, n);
		return rmdir(path);
	}
	return unlink(path);
}

void
host_store_clean(struct amlops_host *h)
{
	char *store = amlops_xasprintf("%s/store", h->dir), *p;
	char **names = NULL;
	size_t n = 0, i;
	glob_t g;

	memset(&g, 0, sizeof(g));
	if (access(store, F_OK) == 0 && list_dir(&names, &n, store) == 0) {
		for (i = 0; i < n; i++) {
			if (strncmp(names[i], ".tmp-", 5))
				continue;
			p = amlops_xasprintf("%s/%s", store, names[i]);
			host_rm_tree(p);
			free(p);
		}
		free_names(names, n);
	}
	p = amlops_xasprintf("%s/state.json.tmp.*", h->dir);
	if (glob(p, 0, NULL, &g) == 0)
		for (i = 0; i < g.gl_pathc; i++)
			unlink(g.gl_pathv[i]);
	globfree(&g);
	free(p);
	amlops_err_clear();
	free(store);
}

/*
 * Moves `tmp`/<base>, already complete, to DIR/store/<digest>/<base> and
 * sets `*path_out` to that path. Content that is there already stays
 * (another request may have stored the same bytes first).
 */
static int
store_commit(struct amlops_host *h, const char *tmp, const char *base,
    char digest[65], char **path_out)
{
	char *content = amlops_xasprintf("%s/%s", tmp, base);
	char *dir = NULL;
	struct stat st;
	int error;

	if ((error = host_tree_digest(digest, content)) < 0)
		goto done;
	dir = amlops_xasprintf("%s/store/%s", h->dir, digest);
	if (stat(dir, &st) < 0 && rename(tmp, dir) < 0 && errno != EEXIST &&
	    errno != ENOTEMPTY) {
		error = amlops_err_sys(AMLOPS_ERROR, "cannot rename '%s'", tmp);
		goto done;
	}
	*path_out = amlops_xasprintf("%s/%s", dir, base);
done:
	host_rm_tree(tmp);
	free(content);
	free(dir);
	return error;
}

/*
 * Copies a local file or folder into the store: first into a private
 * temporary folder, then the digest of that copy names it, so the stored
 * bytes are exactly the ones the digest covers even when the source
 * changes meanwhile. Runs without h->mu.
 */
static int
store_local(
    struct amlops_host *h, const char *src, char digest[65], char **path_out)
{
	const char *base = strrchr(src, '/') + 1;
	char *tmp = NULL, *dst = NULL;
	char id[37];
	int error;

	if ((error = amlops_uuid(id)) < 0)
		return error;
	tmp = amlops_xasprintf("%s/store/.tmp-%s", h->dir, id);
	dst = amlops_xasprintf("%s/%s", tmp, base);
	if ((error = amlops_mkdir_p(tmp, 0700)) < 0 ||
	    (error = host_copy_tree(src, dst)) < 0) {
		host_rm_tree(tmp);
		goto done;
	}
	error = store_commit(h, tmp, base, digest, path_out);
done:
	free(tmp);
	free(dst);
	return error;
}

static const char *
type_singular(const char *type)
{
	return !strcmp(type, "codes")    ? "code"
	       : !strcmp(type, "models") ? "model"
	                                 : "environment";
}

static char *
asset_key(const char *type, const char *name, const char *version)
{
	return amlops_xasprintf("%s/%s/%s", type, name, version);
}

/* Decodes %XX in a file:// path; returns NULL on a bad escape. */
static char *
uri_path(const char *uri)
{
	const char *p = uri + strlen("file://");
	char *out = amlops_xmalloc(strlen(p) + 1), *o = out;
	unsigned v;

	while (*p) {
		if (*p == '%') {
			if (sscanf(p + 1, "%2x", &v) != 1 || !v) {
				free(out);
				return NULL;
			}
			*o++ = (char)v;
			p += 3;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	/* no trailing slash: the last component names the content */
	while (o > out + 1 && o[-1] == '/')
		*--o = '\0';
	return out;
}

/*
 * Downloads a blob URL (a blob or a folder prefix) of the host's blob
 * endpoint into the store, like store_local(). Uses a client of its own:
 * it runs without h->mu, maybe next to another download.
 */
static int
store_blob(
    struct amlops_host *h, const char *uri, char digest[65], char **path_out)
{
	struct amlops_blob_client *c = NULL;
	struct amlops_blob_cfg cfg = {0};
	char *url = NULL, *container = NULL, *bpath = NULL, *tmp = NULL;
	char *dest = NULL, *base;
	char id[37];
	size_t len;
	int error, single;

	cfg.endpoint = h->blob_endpoint;
	cfg.account = h->blob_account;
	cfg.key = h->blob_key;
	if ((error = amlops_blob_client_new(&c, &cfg)) < 0)
		goto done;
	if (!strncmp(uri, "azureml://datastores/workspaceblobstore/paths/", 46))
		url = amlops_xasprintf(
		    "%s/%s/%s", h->blob_endpoint, h->blob_container, uri + 46);
	else
		url = amlops_xstrdup(uri);
	if ((error = amlops_blob_url_split(&container, &bpath, c, url)) < 0)
		goto done;
	len = strlen(bpath);
	while (len && bpath[len - 1] == '/')
		bpath[--len] = '\0';
	if (!len) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "'%s' names a whole container; register a blob or a folder "
		    "in it",
		    uri);
		goto done;
	}
	base = strrchr(bpath, '/') ? strrchr(bpath, '/') + 1 : bpath;
	error = amlops_blob_head(c, container, bpath, NULL);
	if (error < 0 && error != AMLOPS_ENOTFOUND)
		goto done;
	single = error == 0;
	amlops_err_clear();
	if ((error = amlops_uuid(id)) < 0)
		goto done;
	tmp = amlops_xasprintf("%s/store/.tmp-%s", h->dir, id);
	dest =
	    single ? amlops_xstrdup(tmp) : amlops_xasprintf("%s/%s", tmp, base);
	if ((error = amlops_blob_download_url(c, url, dest, BLOB_MAX)) < 0) {
		host_rm_tree(tmp);
		goto done;
	}
	error = store_commit(h, tmp, base, digest, path_out);
done:
	amlops_blob_client_free(c);
	free(url);
	free(container);
	free(bpath);
	free(tmp);
	free(dest);
	return error;
}

static void
env_digest(char out[65], const cJSON *props)
{
	struct sha256 s;
	const char *keys[] = {
	    "image", "condaFile", "build", "inferenceConfig", "osType"};
	cJSON *v;
	char *text;
	size_t i;

	sha256_init(&s);
	for (i = 0; i < AMLOPS_ARRAY_SIZE(keys); i++) {
		v = cJSON_GetObjectItem(props, keys[i]);
		text = v ? cJSON_PrintUnformatted(v) : amlops_xstrdup("null");
		sha256_add(&s, keys[i], strlen(keys[i]) + 1);
		sha256_add(&s, text, strlen(text) + 1);
		free(text);
	}
	sha256_hex(&s, out);
}

void
host_asset_put(struct amlops_host *h, const struct host_req *req, cJSON *ws,
    const char *type, const char *name, const char *version,
    struct host_resp *r)
{
	const char *what = type_singular(type);
	const char *uri_key = !strcmp(type, "codes") ? "codeUri" : "modelUri";
	cJSON *body = NULL, *props, *assets, *old, *entry = NULL, *res, *v;
	char *key = asset_key(type, name, version), *path = NULL;
	char *stored = NULL, *wsid = NULL, *id = NULL;
	char target[32];
	int blob = 0, existed = 0;
	const char *uri = NULL, *end = NULL;
	char digest[65];
	int error;

	body = req->body_len ? cJSON_ParseWithLengthOpts(
	                           req->body, req->body_len, &end, 0)
	                     : NULL;
	if (!cJSON_IsObject(body)) {
		host_resp_error(r, 400, "InvalidRequestContent", NULL,
		    "the request content must be a JSON object");
		goto done;
	}
	props = cJSON_GetObjectItem(body, "properties");
	if (!cJSON_IsObject(props)) {
		host_resp_error(r, 400, "BadArgument", "properties",
		    "the 'properties' object is required");
		goto done;
	}
	snprintf(target, sizeof(target), "properties.%s", uri_key);
	if (strcmp(type, "environments")) {
		uri = host_json_str(props, uri_key);
		if (!uri) {
			host_resp_error(r, 400, "BadArgument", target,
			    "'%s' is required", target);
			goto done;
		}
		blob = h->blob && strncmp(uri, "file:///", 8);
		if (!blob && strncmp(uri, "file:///", 8)) {
			host_resp_error(r, 400, "BadArgument", target,
			    "'%s' is not a file:/// URI; this host registers "
			    "local files and folders only (start it with "
			    "--blob-endpoint for blob URLs)",
			    uri);
			goto done;
		}
		if (!blob && !(path = uri_path(uri))) {
			host_resp_error(r, 400, "BadArgument", target,
			    "'%s' has a bad %%-escape", uri);
			goto done;
		}
		/*
		 * Reading and copying content may take long: other requests
		 * go on meanwhile. A version that exists is only compared.
		 */
		existed = cJSON_GetObjectItem(
		              host_json_obj(ws, "assets"), key) != NULL;
		pthread_mutex_unlock(&h->mu);
		if (blob)
			error = store_blob(h, uri, digest, &stored);
		else if (existed)
			error = host_tree_digest(digest, path);
		else
			error = store_local(h, path, digest, &stored);
		pthread_mutex_lock(&h->mu);
		if (error < 0) {
			host_resp_error(r, 400, "BadArgument", target,
			    "cannot register %s '%s' version '%s': %s", what,
			    name, version, amlops_err_last());
			goto done;
		}
	} else {
		v = cJSON_GetObjectItem(props, "image");
		if (!cJSON_IsString(v) &&
		    !cJSON_IsObject(cJSON_GetObjectItem(props, "build"))) {
			host_resp_error(r, 400, "BadArgument",
			    "properties.image",
			    "an environment needs 'properties.image' or "
			    "'properties.build'");
			goto done;
		}
		v = cJSON_GetObjectItem(props, "condaFile");
		if (v && !cJSON_IsString(v) && !cJSON_IsNull(v)) {
			host_resp_error(r, 400, "BadArgument",
			    "properties.condaFile",
			    "'properties.condaFile' must be a string (the "
			    "conda YAML)");
			goto done;
		}
		env_digest(digest, props);
	}
	assets = host_json_obj(ws, "assets");
	if ((old = cJSON_GetObjectItem(assets, key))) {
		if (strcmp(host_json_strd(old, "digest", ""), digest)) {
			host_resp_error(r, 409, "Conflict", NULL,
			    "%s '%s' version '%s' already exists with other "
			    "content; versions cannot change, register a new "
			    "version",
			    what, name, version);
			goto done;
		}
		host_resp_json(r, 200,
		    cJSON_Duplicate(cJSON_GetObjectItem(old, "resource"), 1));
		goto done;
	}
	if (uri && !stored) {
		/* versions are never deleted; this cannot happen */
		host_resp_error(r, 500, "InternalServerError", NULL,
		    "%s '%s' version '%s' vanished while it was stored", what,
		    name, version);
		goto done;
	}
	wsid = host_ws_id(ws);
	id =
	    amlops_xasprintf("%s/%s/%s/versions/%s", wsid, type, name, version);
	entry = cJSON_CreateObject();
	res = cJSON_AddObjectToObject(entry, "resource");
	cJSON_AddStringToObject(res, "id", id);
	cJSON_AddStringToObject(res, "name", version);
	{
		char *t =
		    amlops_xasprintf("%s/workspaces/%s/versions", MMLS, type);
		cJSON_AddStringToObject(res, "type", t);
		free(t);
	}
	v = cJSON_Duplicate(props, 1);
	host_json_set_str(v, "provisioningState", "Succeeded");
	if (!cJSON_GetObjectItem(v, "isAnonymous"))
		cJSON_AddBoolToObject(v, "isAnonymous", 0);
	if (!strcmp(type, "models") && !cJSON_GetObjectItem(v, "modelType"))
		cJSON_AddStringToObject(v, "modelType", "CustomModel");
	cJSON_AddItemToObject(res, "properties", v);
	{
		cJSON *sd = cJSON_AddObjectToObject(res, "systemData");
		char now[32];
		amlops_time_rfc3339(now, amlops_wall_ms());
		cJSON_AddStringToObject(sd, "createdAt", now);
		cJSON_AddStringToObject(sd, "createdBy", "amlops host");
		cJSON_AddStringToObject(sd, "createdByType", "Application");
		cJSON_AddStringToObject(sd, "lastModifiedAt", now);
		cJSON_AddStringToObject(sd, "lastModifiedBy", "amlops host");
		cJSON_AddStringToObject(
		    sd, "lastModifiedByType", "Application");
	}
	cJSON_AddStringToObject(entry, "asset_name", name);
	cJSON_AddStringToObject(entry, "asset_version", version);
	cJSON_AddStringToObject(entry, "digest", digest);
	if (uri)
		cJSON_AddStringToObject(entry, "source", uri);
	if (stored)
		cJSON_AddStringToObject(entry, "path", stored);
	cJSON_AddItemToObject(assets, key, entry);
	if (host_state_save(h) < 0) {
		cJSON_DeleteItemFromObject(assets, key);
		host_resp_error(r, 500, "InternalServerError", NULL,
		    "cannot save the state: %s", amlops_err_last());
		goto done;
	}
	log_info("asset=%s name=%s version=%s digest=%.12s", what, name,
	    version, digest);
	host_resp_json(r, 201, cJSON_Duplicate(res, 1));
done:
	cJSON_Delete(body);
	free(key);
	free(path);
	free(stored);
	free(wsid);
	free(id);
}

void
host_asset_get(struct amlops_host *h, const struct host_req *req, cJSON *ws,
    const char *type, const char *name, const char *version,
    struct host_resp *r)
{
	cJSON *assets = host_json_obj(ws, "assets"), *e, *out, *list;
	char *key, *prefix;
	size_t n;

	if (!version) {
		prefix = amlops_xasprintf("%s/%s/", type, name);
		n = strlen(prefix);
		out = cJSON_CreateObject();
		list = cJSON_AddArrayToObject(out, "value");
		cJSON_ArrayForEach(e, assets)
		{
			if (!strncasecmp(e->string, prefix, n))
				cJSON_AddItemToArray(list,
				    cJSON_Duplicate(
				        cJSON_GetObjectItem(e, "resource"), 1));
		}
		free(prefix);
		host_resp_json(r, 200, out);
		return;
	}
	key = asset_key(type, name, version);
	e = cJSON_GetObjectItem(assets, key);
	free(key);
	if (!e) {
		host_resp_error(r, 404, "ResourceNotFound", NULL,
		    "%s '%s' version '%s' not found in workspace '%s'",
		    type_singular(type), name, version,
		    host_json_str(ws, "workspace"));
		return;
	}
	host_resp_json(
	    r, 200, cJSON_Duplicate(cJSON_GetObjectItem(e, "resource"), 1));
}

cJSON *
host_asset_resolve(struct amlops_host *h, cJSON *ws, const char *type,
    const char *ref, const char *target, struct host_resp *r)
{
	char *copy = NULL, *seg[16], *p, *save = NULL, *name = NULL,
	     *version = NULL, *key = NULL;
	const char *s = ref;
	cJSON *in_ws = ws, *e = NULL;
	size_t n = 0;

	if (!strncmp(s, "azureml://", 10)) {
		host_resp_error(r, 400, "BadArgument", target,
		    "'%s': registry and datastore URIs are not available on "
		    "the local host; use a workspace asset id",
		    ref);
		return NULL;
	}
	if (!strncmp(s, "azureml:", 8))
		s += 8;
	copy = amlops_xstrdup(s);
	if (*s == '/') {
		for (p = strtok_r(copy, "/", &save); p && n < 16;
		     p = strtok_r(NULL, "/", &save))
			seg[n++] = p;
		if (n == 12 && !strcasecmp(seg[0], "subscriptions") &&
		    !strcasecmp(seg[2], "resourceGroups") &&
		    !strcasecmp(seg[4], "providers") &&
		    !strcasecmp(seg[5], MMLS) &&
		    !strcasecmp(seg[6], "workspaces") &&
		    !strcasecmp(seg[8], type) &&
		    !strcasecmp(seg[10], "versions")) {
			in_ws = host_state_ws(h, seg[1], seg[3], seg[7], 0);
			name = seg[9];
			version = seg[11];
		}
	} else if ((p = strchr(copy, ':')) && !strchr(p + 1, ':') &&
	           p != copy && p[1]) {
		*p = '\0';
		name = copy;
		version = p + 1;
	}
	if (!name) {
		host_resp_error(r, 400, "BadArgument", target,
		    "'%s' is not a %s id (expected '/subscriptions/.../%s/"
		    "NAME/versions/VERSION' or 'azureml:NAME:VERSION')",
		    ref, type_singular(type), type);
		goto done;
	}
	key = asset_key(type, name, version);
	if (!in_ws ||
	    !(e = cJSON_GetObjectItem(host_json_obj(in_ws, "assets"), key))) {
		host_resp_error(r, 404, "ResourceNotFound", target,
		    "%s '%s' version '%s' not found", type_singular(type), name,
		    version);
		goto done;
	}
done:
	free(copy);
	free(key);
	return e;
}
