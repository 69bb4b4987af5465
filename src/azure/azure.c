/*
 * The azure backend: the ARM backend on Azure Resource Manager with Azure
 * AD credentials. Inline assets are uploaded from the commit to the
 * workspace's default blob datastore under a content-addressed path and
 * registered pointing at it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "amlops/backend.h"
#include "amlops/blob.h"
#include "amlops/cred.h"
#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/util.h"
#include "backend/arm_int.h"

struct azure_impl {
	struct amlops_blob_client *blob; /* made on first upload */
	char *container;
	char *blob_endpoint;
};

/* ------------------------------------------------------------------ */
/* Upload */

struct upload_ctx {
	struct amlops_blob_client *c;
	const char *container;
	const char *prefix; /* "LocalUpload/amlops/<id>/<base>" */
	struct amlops_upload_stats *st;
};

static void
md5_b64(char out[32], const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(data, len, md, &n, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, (int)n);
}

static int
upload_one(void *arg, const char *rel, const struct amlops_buf *data)
{
	struct upload_ctx *u = arg;
	struct amlops_blob_props props;
	char *name, md5[32];
	int error;

	name = *rel ? amlops_xasprintf("%s/%s", u->prefix, rel)
	            : amlops_xstrdup(u->prefix);
	u->st->files++;
	md5_b64(md5, data->ptr ? data->ptr : "", data->len);
	error = amlops_blob_head(u->c, u->container, name, &props);
	if (error == 0 && props.size == data->len &&
	    strcmp(props.content_md5, md5) == 0) {
		u->st->skipped++;
		log_debug("%s: blob=%s skipped=same-md5", __func__, name);
		goto done;
	}
	if (error < 0 && error != AMLOPS_ENOTFOUND)
		goto done;
	amlops_err_clear();
	if ((error = amlops_blob_put(u->c, u->container, name,
	         data->ptr ? data->ptr : "", data->len)) < 0)
		goto done;
	u->st->uploaded++;
	u->st->bytes += data->len;
done:
	free(name);
	return error;
}

int
amlops_azure_upload(struct amlops_upload_stats *st,
    struct amlops_blob_client *c, const char *container, const char *prefix,
    const struct amlops_files *files, const char *path)
{
	struct amlops_upload_stats local = {0};
	const char *base = strrchr(path, '/');
	struct upload_ctx u;
	char *full;
	int error;

	base = base ? base + 1 : (*path ? path : "root");
	full = amlops_xasprintf("%s/%s", prefix, base);
	u.c = c;
	u.container = container;
	u.prefix = full;
	u.st = st ? st : &local;
	memset(u.st, 0, sizeof(*u.st));
	error = arm_walk_files(files, path, upload_one, &u);
	if (error == 0)
		log_info("upload=%s container=%s files=%u uploaded=%u "
		         "skipped=%u bytes=%llu",
		    path, container, u.st->files, u.st->uploaded, u.st->skipped,
		    (unsigned long long)u.st->bytes);
	free(full);
	return error;
}

/* ------------------------------------------------------------------ */
/* The default datastore */

static const char *
jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int
datastore_client(struct arm_backend *ab)
{
	struct azure_impl *az = ab->impl;
	struct amlops_rest_resp r = AMLOPS_REST_RESP_INIT;
	struct amlops_rest_resp s = AMLOPS_REST_RESP_INIT;
	struct amlops_blob_cfg bc = {0};
	char *path =
	    amlops_xasprintf("%s/datastores/workspaceblobstore", ab->ws_path);
	char *spath = amlops_xasprintf("%s/listSecrets", path);
	const cJSON *p;
	const char *acct, *cont, *ep, *proto, *stype;
	int error;

	if (az->blob)
		goto out;
	if ((error = amlops_rest_call(ab->rest, "GET", path, NULL, &r)) < 0)
		goto done;
	p = cJSON_GetObjectItemCaseSensitive(r.json, "properties");
	acct = jstr(p, "accountName");
	cont = jstr(p, "containerName");
	ep = jstr(p, "endpoint");
	proto = jstr(p, "protocol");
	if (!acct || !cont || !ep) {
		error = amlops_err_set(AMLOPS_EBACKEND,
		    "the default datastore 'workspaceblobstore' is not a blob "
		    "container (no accountName, containerName or endpoint)");
		goto done;
	}
	if (strstr(ep, "://"))
		az->blob_endpoint = amlops_xstrdup(ep);
	else
		az->blob_endpoint = amlops_xasprintf(
		    "%s://%s.blob.%s", proto ? proto : "https", acct, ep);
	az->container = amlops_xstrdup(cont);
	if ((error = amlops_rest_call(ab->rest, "POST", spath, NULL, &s)) < 0)
		goto done;
	stype = jstr(s.json, "secretsType");
	bc.endpoint = az->blob_endpoint;
	bc.account = acct;
	if (stype && strcmp(stype, "AccountKey") == 0)
		bc.key = jstr(s.json, "key");
	else if (stype && strcmp(stype, "Sas") == 0)
		bc.sas = jstr(s.json, "sasToken");
	if (!bc.key && !bc.sas) {
		error = amlops_err_set(AMLOPS_ENOTSUPP,
		    "the default datastore's credentials ('%s') are neither "
		    "an account key nor a SAS token",
		    stype ? stype : "none");
		goto done;
	}
	error = amlops_blob_client_new(&az->blob, &bc);
done:
	/* The answer held the account key: wipe it. */
	if (s.json) {
		cJSON *k = cJSON_GetObjectItemCaseSensitive(s.json, "key");

		if (cJSON_IsString(k))
			explicit_bzero(k->valuestring, strlen(k->valuestring));
		k = cJSON_GetObjectItemCaseSensitive(s.json, "sasToken");
		if (cJSON_IsString(k))
			explicit_bzero(k->valuestring, strlen(k->valuestring));
	}
	amlops_rest_resp_release(&r);
	amlops_rest_resp_release(&s);
	free(path);
	free(spath);
	return error;
out:
	free(path);
	free(spath);
	return 0;
}

static int
azure_stage(struct arm_backend *ab, const char *kind,
    const struct amlops_asset *a, const struct amlops_files *files, char **uri)
{
	struct azure_impl *az = ab->impl;
	const char *cid = a->content_id[0] ? a->content_id : a->version;
	const char *base = strrchr(a->path, '/');
	char *prefix = NULL;
	int error;

	if ((error = datastore_client(ab)) < 0)
		return error;
	base = base ? base + 1 : (*a->path ? a->path : "root");
	prefix = amlops_xasprintf("LocalUpload/amlops/%s/%s", kind, cid);
	if ((error = amlops_azure_upload(
	         NULL, az->blob, az->container, prefix, files, a->path)) < 0)
		goto done;
	/* NEEDSWORK: models could use an azureml:// datastore URI. */
	*uri = amlops_xasprintf(
	    "%s/%s/%s/%s", az->blob_endpoint, az->container, prefix, base);
done:
	free(prefix);
	return error;
}

static void
azure_release(struct arm_backend *ab)
{
	struct azure_impl *az = ab->impl;

	if (az == NULL)
		return;
	amlops_blob_client_free(az->blob);
	free(az->container);
	free(az->blob_endpoint);
	free(az);
}

static const char *
pick(const char *given, const char *env)
{
	const char *v;

	if (given && *given)
		return given;
	v = getenv(env);
	return v && *v ? v : NULL;
}

int
amlops_azure_new(
    struct amlops_backend **out, const struct amlops_azure_cfg *cfg)
{
	const char *sub = pick(cfg->subscription_id, "AZURE_SUBSCRIPTION_ID");
	const char *rg = pick(cfg->resource_group, "AZURE_RESOURCE_GROUP");
	const char *ws = pick(cfg->workspace, "AZUREML_WORKSPACE");
	const char *arm_url = pick(cfg->arm_url, "AMLOPS_ARM_URL");
	struct amlops_rest_cfg rc = {0};
	struct arm_backend *ab = NULL;
	char *scope = NULL;
	int error;

	if (!sub || !rg || !ws)
		return amlops_err_set(AMLOPS_EINVALID,
		    "the azure target needs %s: give it in .amlops.yml "
		    "(azure.%s), as a flag, or in %s",
		    !sub  ? "a subscription"
		    : !rg ? "a resource group"
		          : "a workspace",
		    !sub  ? "subscription_id"
		    : !rg ? "resource_group"
		          : "workspace",
		    !sub  ? "AZURE_SUBSCRIPTION_ID"
		    : !rg ? "AZURE_RESOURCE_GROUP"
		          : "AZUREML_WORKSPACE");
	if (!arm_url)
		arm_url = AMLOPS_ARM_PUBLIC_URL;
	if ((error = amlops_http_url_ok(arm_url, 0)) < 0)
		return amlops_err_prefix(error, "Resource Manager URL");
	ab = amlops_xcalloc(1, sizeof(*ab));
	ab->impl = amlops_xcalloc(1, sizeof(struct azure_impl));
	ab->release = azure_release;
	ab->stage = azure_stage;
	ab->base.ops = &arm_azure_ops;
	if (cfg->cred)
		ab->cred = cfg->cred;
	else {
		if ((error = amlops_cred_from_env(&ab->cred, NULL, 0)) < 0)
			goto done;
		ab->own_cred = 1;
	}
	scope = amlops_cred_arm_scope(arm_url);
	rc.base_url = arm_url;
	rc.api_version =
	    cfg->api_version ? cfg->api_version : AMLOPS_ARM_API_VERSION;
	rc.cred = ab->cred;
	rc.scope = scope;
	rc.retry = cfg->retry;
	rc.lro_timeout_ms = cfg->lro_timeout_ms;
	if ((error = arm_backend_init(ab, &arm_azure_ops, &rc, sub, rg, ws)) <
	    0)
		goto done;
	log_debug("%s: arm_url=%s credential=\"%s\"", __func__, arm_url,
	    amlops_cred_kind_name(amlops_cred_kind(ab->cred)));
	*out = &ab->base;
	ab = NULL;
done:
	if (ab)
		arm_azure_ops.free(&ab->base);
	free(scope);
	return error;
}
