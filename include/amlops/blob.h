/*
 * A small Azure Blob Storage client: block blobs over the Storage REST
 * API, authorised with a Shared Key (HMAC-SHA256 of the canonical
 * request), a SAS token, or an Azure AD bearer token. It talks to Azure
 * and to Azurite (the storage emulator the tests run on 127.0.0.1).
 *
 * Blob names are '/'-separated paths inside a container. The account key,
 * the SAS and the bearer token are secrets: they never appear in a message
 * or a log, and a URL with a SAS is logged without its query.
 */
#ifndef AMLOPS_BLOB_H
#define AMLOPS_BLOB_H

#include <stddef.h>
#include <stdint.h>

struct amlops_buf;

struct amlops_blob_cfg {
	/*
	 * The blob service URL, account included when the service is
	 * path-style: "https://ACCOUNT.blob.core.windows.net" or
	 * "http://127.0.0.1:10000/devstoreaccount1" (Azurite). http is
	 * accepted only for loopback hosts.
	 */
	const char *endpoint;
	const char *account; /* needed with `key` */
	const char *key;     /* base64 account key, or NULL */
	const char *sas;     /* SAS query ("sv=...&sig=..."), or NULL */
	const char *bearer;  /* Azure AD token for storage, or NULL */
	/* Blobs larger than this go up in blocks; 0: 4 MiB. */
	size_t block_size;
};

/* Properties from Get Blob Properties (HEAD). */
struct amlops_blob_props {
	uint64_t size;
	char content_md5[32]; /* base64 as the service sent it, or "" */
	char etag[80];
};

/* What the client did, for tests and logs. */
struct amlops_blob_stats {
	unsigned puts;        /* Put Blob and Put Block requests */
	unsigned block_lists; /* Put Block List requests */
	unsigned heads;
	unsigned gets;
	uint64_t bytes_up;
	uint64_t bytes_down;
};

struct amlops_blob_client;

/*
 * Makes a client; the strings in `cfg` are copied. The caller frees it
 * with amlops_blob_client_free(). Fails with AMLOPS_EINVALID on a bad
 * endpoint (http to a non-loopback host, no host) or a key that is not
 * base64.
 */
int amlops_blob_client_new(
    struct amlops_blob_client **out, const struct amlops_blob_cfg *cfg);
void amlops_blob_client_free(struct amlops_blob_client *c);

/* The counters since the client was made; borrowed. */
const struct amlops_blob_stats *amlops_blob_client_stats(
    const struct amlops_blob_client *c);

/* Creates `container`; one that already exists is not an error. */
int amlops_blob_container_create(
    struct amlops_blob_client *c, const char *container);

/*
 * Uploads `len` bytes as a block blob: one Put Blob when it fits in a
 * block, else Put Block for each block and Put Block List. Sets
 * Content-MD5 so that a later HEAD can tell whether the content is there.
 */
int amlops_blob_put(struct amlops_blob_client *c, const char *container,
    const char *name, const void *data, size_t len);

/*
 * Get Blob Properties. AMLOPS_ENOTFOUND (with a message) when the blob
 * does not exist; `out` may be NULL.
 */
int amlops_blob_head(struct amlops_blob_client *c, const char *container,
    const char *name, struct amlops_blob_props *out);

/*
 * Downloads a blob into `out` (reset first); the buffer's cap bounds the
 * size. AMLOPS_ENOTFOUND when it does not exist.
 */
int amlops_blob_get(struct amlops_blob_client *c, const char *container,
    const char *name, struct amlops_buf *out);

/*
 * Lists the names of the blobs under `prefix` (all when NULL or ""),
 * in the service's (lexical) order, following continuation markers.
 * `*out` is a malloc'd array of malloc'd strings the caller frees with
 * amlops_blob_names_free().
 */
int amlops_blob_list(char ***out, size_t *n, struct amlops_blob_client *c,
    const char *container, const char *prefix);
void amlops_blob_names_free(char **names, size_t n);

/*
 * Splits a blob URL that lies under the client's endpoint into its
 * container and blob path ("" for a container URL); both malloc'd.
 * AMLOPS_EINVALID when the URL is on another service.
 */
int amlops_blob_url_split(char **container, char **path,
    const struct amlops_blob_client *c, const char *url);

/*
 * Downloads every blob under `url` (a blob, or a "folder" prefix) into
 * the directory `dest`, keeping the relative paths; a single blob lands
 * in `dest` under its base name. Refuses names with "..", absolute
 * names and empty path segments. `max_bytes` caps the total.
 */
int amlops_blob_download_url(struct amlops_blob_client *c, const char *url,
    const char *dest, uint64_t max_bytes);

/*
 * The Shared Key signature of a canonical string: base64 of
 * HMAC-SHA256(base64-decoded key, string). Written into out[64]. Exposed
 * for the unit tests (Microsoft documents test vectors).
 */
int amlops_blob_sign(char out[64], const char *key_b64, const char *string);

#endif
