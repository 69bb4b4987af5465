/*
 * Azure Blob Storage over REST: Shared Key, SAS or bearer auth; block
 * blobs. See amlops/blob.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "amlops/blob.h"
#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/rest.h"
#include "amlops/util.h"

#define BLOB_API_VERSION "2021-08-06"
#define BLOB_DEFAULT_BLOCK (4u << 20)
#define BLOB_MAX_BLOCK (100u << 20)
#define BLOB_LIST_MAX (8u << 20)

struct amlops_blob_client {
	char *endpoint;      /* no trailing slash */
	char *endpoint_path; /* its path: "/devstoreaccount1" or "" */
	char *account;
	unsigned char *key; /* decoded */
	size_t keylen;
	char *sas;
	char *bearer;
	size_t block_size;
	struct amlops_http *http;
	struct amlops_blob_stats stats;
};

static void
wipe_free(void *p, size_t n)
{
	if (p) {
		explicit_bzero(p, n);
		free(p);
	}
}

static void
wipe_free_str(char *s)
{
	if (s)
		wipe_free(s, strlen(s));
}

static char *
b64_encode(const unsigned char *in, size_t n)
{
	char *out = amlops_xmalloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return out;
}

/* Decodes base64; NULL when it is not base64. */
static unsigned char *
b64_decode(size_t *outlen, const char *in)
{
	size_t n = strlen(in), pad = 0;
	unsigned char *out;
	int got;

	if (n == 0 || n % 4 != 0)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		        (c >= '0' && c <= '9') || c == '+' || c == '/' ||
		        (c == '=' && i >= n - 2)))
			return NULL;
	}
	if (in[n - 1] == '=')
		pad++;
	if (in[n - 2] == '=')
		pad++;
	out = amlops_xmalloc(n / 4 * 3 + 1);
	got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (got < 0) {
		free(out);
		return NULL;
	}
	*outlen = (size_t)got - pad;
	return out;
}

int
amlops_blob_sign(char out[64], const char *key_b64, const char *string)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	unsigned char *key;
	size_t keylen;
	char *s;

	if ((key = b64_decode(&keylen, key_b64)) == NULL)
		return amlops_err_set(
		    AMLOPS_EINVALID, "the storage account key is not base64");
	HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)string,
	    strlen(string), mac, &maclen);
	wipe_free(key, keylen);
	s = b64_encode(mac, maclen);
	snprintf(out, 64, "%s", s);
	free(s);
	return 0;
}

static char *
sign_raw(const struct amlops_blob_client *c, const char *string)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	HMAC(EVP_sha256(), c->key, (int)c->keylen,
	    (const unsigned char *)string, strlen(string), mac, &maclen);
	return b64_encode(mac, maclen);
}

static char *
md5_b64(const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL);
	return b64_encode(md, mdlen);
}

int
amlops_blob_client_new(
    struct amlops_blob_client **out, const struct amlops_blob_cfg *cfg)
{
	struct amlops_blob_client *c;
	const char *p;
	size_t n;
	int error;

	if (cfg->endpoint == NULL || *cfg->endpoint == '\0')
		return amlops_err_set(
		    AMLOPS_EINVALID, "no blob service endpoint");
	if ((error = amlops_http_url_ok(cfg->endpoint, 0)) < 0)
		return error;
	if (cfg->key && (cfg->account == NULL || *cfg->account == '\0'))
		return amlops_err_set(AMLOPS_EINVALID,
		    "a storage account key needs the account name");
	if (cfg->block_size > BLOB_MAX_BLOCK)
		return amlops_err_set(AMLOPS_EINVALID,
		    "block size %zu is over the service's limit of %u bytes",
		    cfg->block_size, BLOB_MAX_BLOCK);
	c = amlops_xcalloc(1, sizeof(*c));
	if (cfg->key && (c->key = b64_decode(&c->keylen, cfg->key)) == NULL) {
		free(c);
		return amlops_err_set(
		    AMLOPS_EINVALID, "the storage account key is not base64");
	}
	c->endpoint = amlops_xstrdup(cfg->endpoint);
	n = strlen(c->endpoint);
	while (n > 0 && c->endpoint[n - 1] == '/')
		c->endpoint[--n] = '\0';
	p = strstr(c->endpoint, "://") + 3;
	p += strcspn(p, "/");
	c->endpoint_path = amlops_xstrdup(p);
	c->account = amlops_xstrdup(cfg->account);
	if (cfg->sas)
		c->sas = amlops_xstrdup(
		    cfg->sas[0] == '?' ? cfg->sas + 1 : cfg->sas);
	c->bearer = amlops_xstrdup(cfg->bearer);
	c->block_size = cfg->block_size ? cfg->block_size : BLOB_DEFAULT_BLOCK;
	if ((error = amlops_http_new(&c->http, NULL)) < 0) {
		amlops_blob_client_free(c);
		return error;
	}
	*out = c;
	return 0;
}

void
amlops_blob_client_free(struct amlops_blob_client *c)
{
	if (c == NULL)
		return;
	free(c->endpoint);
	free(c->endpoint_path);
	free(c->account);
	wipe_free(c->key, c->keylen);
	wipe_free_str(c->sas);
	wipe_free_str(c->bearer);
	amlops_http_free(c->http);
	free(c);
}

const struct amlops_blob_stats *
amlops_blob_client_stats(const struct amlops_blob_client *c)
{
	return &c->stats;
}

/* Percent-encodes a blob path, keeping '/'. */
static void
path_escape(struct amlops_buf *b, const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~' || (keep_slash && *p == '/'))
			amlops_buf_putc(b, (char)*p);
		else
			amlops_buf_printf(
			    b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
	}
}

struct qparam {
	const char *name;
	const char *value; /* raw (decoded) */
};

static int
qparam_cmp(const void *a, const void *b)
{
	return strcmp(
	    ((const struct qparam *)a)->name, ((const struct qparam *)b)->name);
}

struct blob_req {
	const char *method;
	const char *container;
	const char *name; /* NULL: the container itself */
	struct qparam q[6];
	size_t nq;
	const char *content_md5;  /* or NULL */
	const char *content_type; /* or NULL */
	const char *xms[4];       /* extra "x-ms-name:value" */
	size_t nxms;
	const void *body;
	size_t len;
	size_t max_response;
	const char *what;
};

static int
blob_send(struct amlops_blob_client *c, const struct blob_req *br,
    struct amlops_http_resp *resp)
{
	struct amlops_buf url = AMLOPS_BUF_INIT, path = AMLOPS_BUF_INIT;
	struct amlops_buf sts = AMLOPS_BUF_INIT;
	struct qparam q[6];
	const char *hdrs[16];
	char *owned[16];
	size_t nh = 0, no = 0;
	char date[64], reqid[37], *what = NULL;
	struct amlops_http_req req = {0};
	time_t now = time(NULL);
	struct tm tm;
	const char *xms[8];
	size_t nx = 0;
	int error;

	memcpy(q, br->q, sizeof(q));
	qsort(q, br->nq, sizeof(q[0]), qparam_cmp);

	/* The URL path (escaped) as the service sees it. */
	amlops_buf_puts(&path, c->endpoint_path);
	amlops_buf_putc(&path, '/');
	path_escape(&path, br->container, 0);
	if (br->name) {
		amlops_buf_putc(&path, '/');
		path_escape(&path, br->name, 1);
	}
	amlops_buf_printf(&url, "%.*s%s",
	    (int)(strlen(c->endpoint) - strlen(c->endpoint_path)), c->endpoint,
	    amlops_buf_cstr(&path));
	for (size_t i = 0; i < br->nq; i++) {
		amlops_buf_putc(&url, i == 0 ? '?' : '&');
		amlops_buf_printf(&url, "%s=", q[i].name);
		path_escape(&url, q[i].value, 0);
	}
	if (c->sas)
		amlops_buf_printf(&url, "%s%s", br->nq ? "&" : "?", c->sas);

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if ((error = amlops_uuid(reqid)) < 0)
		goto done;
	xms[nx++] = amlops_xasprintf("x-ms-client-request-id:%s", reqid);
	xms[nx++] = amlops_xasprintf("x-ms-date:%s", date);
	xms[nx++] = amlops_xstrdup("x-ms-version:" BLOB_API_VERSION);
	for (size_t i = 0; i < br->nxms; i++)
		xms[nx++] = amlops_xstrdup(br->xms[i]);
	/* Canonicalized headers are sorted by name. */
	for (size_t i = 1; i < nx; i++)
		for (size_t j = i; j > 0 && strcmp(xms[j - 1], xms[j]) > 0;
		     j--) {
			const char *t = xms[j];

			xms[j] = xms[j - 1];
			xms[j - 1] = t;
		}
	for (size_t i = 0; i < nx; i++) {
		const char *colon = strchr(xms[i], ':');

		owned[no] = amlops_xasprintf(
		    "%.*s: %s", (int)(colon - xms[i]), xms[i], colon + 1);
		hdrs[nh++] = owned[no++];
	}
	if (br->content_md5) {
		owned[no] =
		    amlops_xasprintf("Content-MD5: %s", br->content_md5);
		hdrs[nh++] = owned[no++];
	}
	if (br->content_type) {
		owned[no] =
		    amlops_xasprintf("Content-Type: %s", br->content_type);
		hdrs[nh++] = owned[no++];
	} else
		hdrs[nh++] =
		    "Content-Type:"; /* no curl default: it is signed */
	if (c->key) {
		char *sig;

		/* Shared Key, version 2015-02-21 and later. */
		amlops_buf_printf(&sts, "%s\n\n\n", br->method);
		if (br->len)
			amlops_buf_printf(&sts, "%zu", br->len);
		amlops_buf_printf(&sts, "\n%s\n%s\n\n\n\n\n\n\n",
		    br->content_md5 ? br->content_md5 : "",
		    br->content_type ? br->content_type : "");
		for (size_t i = 0; i < nx; i++)
			amlops_buf_printf(&sts, "%s\n", xms[i]);
		/* The path as sent (escaped), after the account name. */
		amlops_buf_printf(
		    &sts, "/%s%s", c->account, amlops_buf_cstr(&path));
		for (size_t i = 0; i < br->nq; i++)
			amlops_buf_printf(
			    &sts, "\n%s:%s", q[i].name, q[i].value);
		sig = sign_raw(c, amlops_buf_cstr(&sts));
		owned[no] = amlops_xasprintf(
		    "Authorization: SharedKey %s:%s", c->account, sig);
		hdrs[nh++] = owned[no++];
		free(sig);
	} else if (c->bearer) {
		owned[no] =
		    amlops_xasprintf("Authorization: Bearer %s", c->bearer);
		hdrs[nh++] = owned[no++];
	}
	if (strcmp(br->method, "PUT") == 0 && br->len == 0)
		hdrs[nh++] = "Content-Length: 0";
	hdrs[nh] = NULL;

	what = amlops_xasprintf(
	    "%s %s", br->what, br->name ? br->name : br->container);
	req.method = br->method;
	req.url = amlops_buf_cstr(&url);
	req.headers = hdrs;
	req.body = br->body;
	req.body_len = br->len;
	req.max_response = br->max_response ? br->max_response : (1u << 20);
	req.what = what;
	if (strcmp(br->method, "HEAD") == 0)
		req.flags |= AMLOPS_HTTP_HEAD;
	error = amlops_http_do(c->http, &req, resp);
done:
	for (size_t i = 0; i < nx; i++)
		free((char *)xms[i]);
	for (size_t i = 0; i < no; i++)
		wipe_free_str(owned[i]);
	free(what);
	amlops_buf_release(&sts);
	amlops_buf_release(&path);
	/* The URL may hold a SAS. */
	if (url.ptr)
		explicit_bzero(url.ptr, url.len);
	amlops_buf_release(&url);
	return error;
}

/* <Code>X</Code><Message>Y</Message> of a storage error, one line. */
static char *
storage_error(const struct amlops_http_resp *r)
{
	const char *b = amlops_buf_cstr(&r->body);
	const char *code = strstr(b, "<Code>"), *msg = strstr(b, "<Message>");
	size_t cn = 0, mn = 0;
	char *s;

	if (code) {
		code += 6;
		cn = strcspn(code, "<");
	}
	if (msg) {
		msg += 9;
		mn = strcspn(msg, "<\r\n");
	}
	if (code && msg)
		s = amlops_xasprintf("%.*s: %.*s", (int)cn, code, (int)mn, msg);
	else if (code)
		s = amlops_xstrndup(code, cn);
	else
		s = amlops_xstrdup("no error body");
	return s;
}

static int
blob_status_error(const struct blob_req *br, const struct amlops_http_resp *r)
{
	char *e = storage_error(r);
	const char *reason = amlops_http_reason(r->status);
	int code = r->status == 404                        ? AMLOPS_ENOTFOUND
	           : r->status == 409                      ? AMLOPS_ECONFLICT
	           : (r->status >= 400 && r->status < 500) ? AMLOPS_EINVALID
	                                                   : AMLOPS_EBACKEND;
	int error;

	error = amlops_err_set(code, "%s '%s%s%s': %ld%s%s (request id %s): %s",
	    br->what, br->container, br->name ? "/" : "",
	    br->name ? br->name : "", r->status, *reason ? " " : "", reason,
	    r->request_id, e);
	free(e);
	return error;
}

int
amlops_blob_container_create(
    struct amlops_blob_client *c, const char *container)
{
	struct amlops_http_resp r = AMLOPS_HTTP_RESP_INIT;
	struct blob_req br = {.method = "PUT",
	    .container = container,
	    .q = {{"restype", "container"}},
	    .nq = 1,
	    .what = "create container"};
	int error;

	if ((error = blob_send(c, &br, &r)) < 0)
		goto done;
	if (r.status == 409 &&
	    strstr(amlops_buf_cstr(&r.body), "ContainerAlreadyExists"))
		error = 0;
	else if (r.status != 201)
		error = blob_status_error(&br, &r);
done:
	amlops_http_resp_release(&r);
	return error;
}

static int
name_ok(const char *container, const char *name)
{
	if (container == NULL || *container == '\0')
		return amlops_err_set(AMLOPS_EINVALID, "no container name");
	if (name == NULL || *name == '\0' || strlen(name) > 1024)
		return amlops_err_set(AMLOPS_EINVALID,
		    "blob name must have 1 to 1024 characters");
	return 0;
}

static int
put_single(struct amlops_blob_client *c, const char *container,
    const char *name, const void *data, size_t len, const char *md5)
{
	struct amlops_http_resp r = AMLOPS_HTTP_RESP_INIT;
	struct blob_req br = {.method = "PUT",
	    .container = container,
	    .name = name,
	    .content_md5 = md5,
	    .content_type = "application/octet-stream",
	    .xms = {"x-ms-blob-type:BlockBlob"},
	    .nxms = 1,
	    .body = data,
	    .len = len,
	    .what = "put blob"};
	int error;

	if ((error = blob_send(c, &br, &r)) < 0)
		goto done;
	c->stats.puts++;
	c->stats.bytes_up += len;
	if (r.status != 201)
		error = blob_status_error(&br, &r);
done:
	amlops_http_resp_release(&r);
	return error;
}

static int
put_blocks(struct amlops_blob_client *c, const char *container,
    const char *name, const unsigned char *data, size_t len, const char *md5)
{
	struct amlops_http_resp r = AMLOPS_HTTP_RESP_INIT;
	struct amlops_buf list = AMLOPS_BUF_INIT;
	size_t nblocks = (len + c->block_size - 1) / c->block_size;
	char *xmd5 = NULL;
	int error = 0;

	if (nblocks > 50000)
		return amlops_err_set(AMLOPS_EINVALID,
		    "blob '%s' needs %zu blocks; the service allows 50000",
		    name, nblocks);
	amlops_buf_puts(
	    &list, "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
	for (size_t i = 0; i < nblocks; i++) {
		size_t off = i * c->block_size;
		size_t n =
		    len - off < c->block_size ? len - off : c->block_size;
		char raw[16], *id, *bmd5;
		struct blob_req br = {.method = "PUT",
		    .container = container,
		    .name = name,
		    .nq = 2,
		    .body = data + off,
		    .len = n,
		    .what = "put block"};

		/* Block ids of one blob must all have the same length. */
		snprintf(raw, sizeof(raw), "blk-%08zu", i);
		id = b64_encode((const unsigned char *)raw, strlen(raw));
		bmd5 = md5_b64(data + off, n);
		br.q[0] = (struct qparam){"comp", "block"};
		br.q[1] = (struct qparam){"blockid", id};
		br.content_md5 = bmd5;
		error = blob_send(c, &br, &r);
		if (error == 0) {
			c->stats.puts++;
			c->stats.bytes_up += n;
			if (r.status != 201)
				error = blob_status_error(&br, &r);
		}
		amlops_buf_printf(&list, "<Latest>%s</Latest>", id);
		free(id);
		free(bmd5);
		amlops_http_resp_release(&r);
		if (error < 0)
			goto done;
	}
	amlops_buf_puts(&list, "</BlockList>");
	{
		struct blob_req br = {.method = "PUT",
		    .container = container,
		    .name = name,
		    .q = {{"comp", "blocklist"}},
		    .nq = 1,
		    .content_type = "application/xml",
		    .nxms = 2,
		    .body = list.ptr,
		    .len = list.len,
		    .what = "put block list"};

		/* The whole blob's MD5, for HEAD to report later. */
		xmd5 = amlops_xasprintf("x-ms-blob-content-md5:%s", md5);
		br.xms[0] = xmd5;
		br.xms[1] = "x-ms-blob-content-type:application/octet-stream";
		if ((error = blob_send(c, &br, &r)) < 0)
			goto done;
		c->stats.block_lists++;
		if (r.status != 201)
			error = blob_status_error(&br, &r);
	}
done:
	free(xmd5);
	amlops_http_resp_release(&r);
	amlops_buf_release(&list);
	return error;
}

int
amlops_blob_put(struct amlops_blob_client *c, const char *container,
    const char *name, const void *data, size_t len)
{
	char *md5;
	int error;

	if ((error = name_ok(container, name)) < 0)
		return error;
	md5 = md5_b64(data ? data : "", len);
	if (len <= c->block_size)
		error = put_single(c, container, name, data, len, md5);
	else
		error = put_blocks(c, container, name, data, len, md5);
	if (error == 0)
		log_debug("%s: container=%s blob=%s bytes=%zu", __func__,
		    container, name, len);
	free(md5);
	return error;
}

int
amlops_blob_head(struct amlops_blob_client *c, const char *container,
    const char *name, struct amlops_blob_props *out)
{
	struct amlops_http_resp r = AMLOPS_HTTP_RESP_INIT;
	struct blob_req br = {.method = "HEAD",
	    .container = container,
	    .name = name,
	    .what = "get blob properties"};
	int error;

	if ((error = name_ok(container, name)) < 0)
		return error;
	if ((error = blob_send(c, &br, &r)) < 0)
		goto done;
	c->stats.heads++;
	if (r.status == 404) {
		error = amlops_err_set(AMLOPS_ENOTFOUND,
		    "blob '%s/%s' does not exist", container, name);
		goto done;
	}
	if (r.status != 200) {
		error = blob_status_error(&br, &r);
		goto done;
	}
	if (out) {
		memset(out, 0, sizeof(*out));
		out->size =
		    r.content_length > 0 ? (uint64_t)r.content_length : 0;
		if (r.content_md5)
			snprintf(out->content_md5, sizeof(out->content_md5),
			    "%s", r.content_md5);
		if (r.etag)
			snprintf(out->etag, sizeof(out->etag), "%s", r.etag);
	}
done:
	amlops_http_resp_release(&r);
	return error;
}

int
amlops_blob_get(struct amlops_blob_client *c, const char *container,
    const char *name, struct amlops_buf *out)
{
	struct amlops_http_resp r = AMLOPS_HTTP_RESP_INIT;
	struct blob_req br = {.method = "GET",
	    .container = container,
	    .name = name,
	    .max_response = out->max ? out->max : (256u << 20),
	    .what = "get blob"};
	int error;

	if ((error = name_ok(container, name)) < 0)
		return error;
	amlops_buf_reset(out);
	if ((error = blob_send(c, &br, &r)) < 0)
		goto done;
	c->stats.gets++;
	if (r.status == 404) {
		error = amlops_err_set(AMLOPS_ENOTFOUND,
		    "blob '%s/%s' does not exist", container, name);
		goto done;
	}
	if (r.status != 200) {
		error = blob_status_error(&br, &r);
		goto done;
	}
	c->stats.bytes_down += r.body.len;
	error = amlops_buf_add(out, r.body.ptr ? r.body.ptr : "", r.body.len);
done:
	amlops_http_resp_release(&r);
	return error;
}

/* The text of <tag>...</tag> from `p`, XML entities decoded. */
static char *
xml_text(const char *start, const char *end)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;

	amlops_buf_add(&b, "", 0);
	for (const char *p = start; p < end; p++) {
		static const struct {
			const char *e;
			char c;
		} ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'},
		    {"&quot;", '"'}, {"&apos;", '\''}};
		size_t i;

		if (*p != '&') {
			amlops_buf_putc(&b, *p);
			continue;
		}
		for (i = 0; i < AMLOPS_ARRAY_SIZE(ents); i++)
			if ((size_t)(end - p) >= strlen(ents[i].e) &&
			    strncmp(p, ents[i].e, strlen(ents[i].e)) == 0)
				break;
		if (i < AMLOPS_ARRAY_SIZE(ents)) {
			amlops_buf_putc(&b, ents[i].c);
			p += strlen(ents[i].e) - 1;
		} else
			amlops_buf_putc(&b, *p);
	}
	return amlops_buf_detach(&b);
}

static const char *
xml_find(const char *p, const char *tag, const char **end)
{
	char open[64], close[64];
	const char *s, *e;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	if ((s = strstr(p, open)) == NULL)
		return NULL;
	s += strlen(open);
	if ((e = strstr(s, close)) == NULL)
		return NULL;
	*end = e;
	return s;
}

void
amlops_blob_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int
amlops_blob_list(char ***out, size_t *n, struct amlops_blob_client *c,
    const char *container, const char *prefix)
{
	struct amlops_http_resp r = AMLOPS_HTTP_RESP_INIT;
	char **names = NULL, *marker = NULL;
	size_t count = 0;
	int error = 0;

	do {
		struct blob_req br = {.method = "GET",
		    .container = container,
		    .max_response = BLOB_LIST_MAX,
		    .what = "list blobs"};
		const char *p, *s, *e;

		br.q[br.nq++] = (struct qparam){"restype", "container"};
		br.q[br.nq++] = (struct qparam){"comp", "list"};
		if (prefix && *prefix)
			br.q[br.nq++] = (struct qparam){"prefix", prefix};
		if (marker)
			br.q[br.nq++] = (struct qparam){"marker", marker};
		if ((error = blob_send(c, &br, &r)) < 0)
			goto done;
		if (r.status != 200) {
			error = blob_status_error(&br, &r);
			goto done;
		}
		p = amlops_buf_cstr(&r.body);
		while ((p = strstr(p, "<Blob>")) != NULL) {
			if ((s = xml_find(p, "Name", &e)) == NULL)
				break;
			names = amlops_xrealloc(
			    names, (count + 1) * sizeof(*names));
			names[count++] = xml_text(s, e);
			p = e;
		}
		free(marker);
		marker = NULL;
		s = xml_find(amlops_buf_cstr(&r.body), "NextMarker", &e);
		if (s && e > s)
			marker = xml_text(s, e);
		amlops_http_resp_release(&r);
	} while (marker);
	*out = names;
	*n = count;
	names = NULL;
	count = 0;
done:
	free(marker);
	amlops_blob_names_free(names, count);
	amlops_http_resp_release(&r);
	return error;
}

/* Decodes %XX in a URL path. */
static char *
url_unescape(const char *s, size_t n)
{
	char *out = amlops_xmalloc(n + 1), *w = out;

	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (s[i] == '%' && i + 2 < n &&
		    sscanf(s + i + 1, "%2x", &v) == 1) {
			*w++ = (char)v;
			i += 2;
		} else
			*w++ = s[i];
	}
	*w = '\0';
	return out;
}

int
amlops_blob_url_split(char **container, char **path,
    const struct amlops_blob_client *c, const char *url)
{
	size_t n = strlen(c->endpoint);
	const char *p, *slash;
	size_t plen;

	if (strncmp(url, c->endpoint, n) != 0 || url[n] != '/')
		return amlops_err_set(AMLOPS_EINVALID,
		    "blob URL is not on the storage service '%s'", c->endpoint);
	p = url + n + 1;
	plen = strcspn(p, "?#");
	slash = memchr(p, '/', plen);
	if (slash == NULL) {
		*container = url_unescape(p, plen);
		*path = amlops_xstrdup("");
	} else {
		*container = url_unescape(p, (size_t)(slash - p));
		*path = url_unescape(slash + 1, plen - (size_t)(slash - p) - 1);
	}
	if (**container == '\0') {
		free(*container);
		free(*path);
		return amlops_err_set(
		    AMLOPS_EINVALID, "blob URL names no container");
	}
	return 0;
}

static int
save(struct amlops_blob_client *c, const char *container, const char *name,
    const char *dest, const char *rel, uint64_t *total, uint64_t max_bytes)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	char *file = NULL, *dir = NULL, *slash;
	int error;

	if (!amlops_relpath_ok(rel))
		return amlops_err_set(AMLOPS_EINVALID,
		    "blob '%s/%s': refusing to write outside '%s'", container,
		    name, dest);
	amlops_buf_init(&b, max_bytes - *total + 1);
	if ((error = amlops_blob_get(c, container, name, &b)) < 0) {
		if (error == AMLOPS_EINVALID && b.len == 0)
			error = amlops_err_set(AMLOPS_EINVALID,
			    "blobs under '%s' are larger than %llu bytes", name,
			    (unsigned long long)max_bytes);
		goto done;
	}
	*total += b.len;
	if (*total > max_bytes) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "blobs under '%s' are larger than %llu bytes", name,
		    (unsigned long long)max_bytes);
		goto done;
	}
	file = amlops_xasprintf("%s/%s", dest, rel);
	dir = amlops_xstrdup(file);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		if ((error = amlops_mkdir_p(dir, 0755)) < 0)
			goto done;
	}
	error = amlops_file_write_atomic(file, b.ptr ? b.ptr : "", b.len, 0644);
done:
	free(file);
	free(dir);
	amlops_buf_release(&b);
	return error;
}

int
amlops_blob_download_url(struct amlops_blob_client *c, const char *url,
    const char *dest, uint64_t max_bytes)
{
	char *container = NULL, *path = NULL, *prefix = NULL;
	char **names = NULL;
	size_t n = 0, plen;
	uint64_t total = 0;
	int error, single = 0;

	if ((error = amlops_blob_url_split(&container, &path, c, url)) < 0)
		return error;
	plen = strlen(path);
	while (plen > 0 && path[plen - 1] == '/')
		path[--plen] = '\0';
	if ((error = amlops_mkdir_p(dest, 0755)) < 0)
		goto done;
	if (plen && (error = amlops_blob_head(c, container, path, NULL)) == 0)
		single = 1;
	else if (error < 0 && error != AMLOPS_ENOTFOUND)
		goto done;
	amlops_err_clear();
	if (single) {
		const char *base = strrchr(path, '/');

		error = save(c, container, path, dest, base ? base + 1 : path,
		    &total, max_bytes);
		goto done;
	}
	prefix = plen ? amlops_xasprintf("%s/", path) : amlops_xstrdup("");
	if ((error = amlops_blob_list(&names, &n, c, container, prefix)) < 0)
		goto done;
	if (n == 0) {
		error = amlops_err_set(AMLOPS_ENOTFOUND,
		    "no blobs under '%s/%s'", container, path);
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		if ((error = save(c, container, names[i], dest,
		         names[i] + strlen(prefix), &total, max_bytes)) < 0)
			goto done;
	log_debug("%s: container=%s prefix=%s blobs=%zu bytes=%llu", __func__,
	    container, path, n, (unsigned long long)total);
done:
	amlops_blob_names_free(names, n);
	free(container);
	free(path);
	free(prefix);
	return error;
}
