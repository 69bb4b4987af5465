/*
 * The blob client and the asset upload against a real Azurite (the npm
 * package `azurite`, installed by `scripts/setup.sh --tests`): Shared Key
 * auth, put/head/get/list, large files in blocks, a model folder and a
 * code folder uploaded from a git commit and read back byte for byte, a
 * second upload of the same content sending no blob, download of a
 * folder URL, and the failures' messages. The account key (public, but
 * still a key) must not appear in any output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "amlops/backend.h"
#include "amlops/blob.h"
#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/util.h"

#include "rest_git.h"
#include "rest_harness.h"

/* Azurite's well-known development account (documented by Microsoft). */
#define ACCOUNT "devstoreaccount1"
#define KEY                                                                    \
	"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"      \
	"K1SZFPTOtr/KBHBeksoGMGw=="

static char *tmp, *errlog, *endpoint;
static pid_t azurite_pid;
static struct amlops_blob_client *client;
static struct amlops_buf leaks = AMLOPS_BUF_INIT; /* secrets to grep for */

static int
setup(void **state)
{
	char *bin, *logf, *loc, *log, *p;

	(void)state;
	bin = amlops_xasprintf(
	    "%s/node_modules/.bin/azurite-blob", harness_src());
	if (access(bin, X_OK) != 0) {
		printf("SKIP: azurite is not installed (run scripts/setup.sh "
		       "--tests, or npm ci at the repository root)\n");
		free(bin);
		exit(0);
	}
	alarm(300);
	tmp = harness_tmpdir("blob");
	errlog = amlops_xasprintf("%s/stderr.log", tmp);
	logf = amlops_xasprintf("%s/azurite.log", tmp);
	loc = amlops_xasprintf("%s/azurite", tmp);
	amlops_mkdir_p(loc, 0700);
	{
		char *argv[] = {bin, "--blobHost", "127.0.0.1", "--blobPort",
		    "0", "--location", loc, "--skipApiVersionCheck",
		    "--disableTelemetry", NULL};

		azurite_pid = harness_spawn(argv, logf);
	}
	log = harness_wait_file(
	    logf, "listens on http://127.0.0.1:", 60000, azurite_pid);
	free(bin);
	free(logf);
	free(loc);
	if (log == NULL) {
		fprintf(stderr, "azurite did not start\n");
		return -1;
	}
	p = strstr(log, "listens on ") + strlen("listens on ");
	p[strcspn(p, "\r\n")] = '\0';
	endpoint = amlops_xasprintf("%s/%s", p, ACCOUNT);
	free(log);
	{
		struct amlops_blob_cfg cfg = {.endpoint = endpoint,
		    .account = ACCOUNT,
		    .key = KEY,
		    .block_size = 64 * 1024};

		if (amlops_blob_client_new(&client, &cfg) < 0)
			return -1;
	}
	harness_stderr_capture(errlog);
	amlops_log_init("test_rest_blob", 1, 0);
	if (amlops_blob_container_create(client, "azureml") < 0) {
		fprintf(stderr, "%s\n", amlops_err_last());
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	harness_stderr_restore();
	harness_show_failures(errlog, "test_rest_blob: ");
	amlops_blob_client_free(client);
	harness_kill(azurite_pid);
	harness_rmrf(tmp);
	free(tmp);
	free(errlog);
	free(endpoint);
	return 0;
}

static void
blob__put_head_get_list_round_trip(void **state)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	struct amlops_blob_props props;
	char **names = NULL;
	size_t n = 0;

	(void)state;
	/* A container that exists is fine. */
	assert_int_equal(amlops_blob_container_create(client, "azureml"), 0);
	assert_int_equal(
	    amlops_blob_put(client, "azureml", "rt/a b+c.txt", "hello", 5), 0);
	assert_int_equal(
	    amlops_blob_put(client, "azureml", "rt/empty", "", 0), 0);
	assert_int_equal(amlops_blob_put(client, "azureml",
	                     "rt/d\xc3\xa9j\xc3\xa0/x", "u", 1),
	    0);
	assert_int_equal(
	    amlops_blob_head(client, "azureml", "rt/a b+c.txt", &props), 0);
	assert_int_equal(props.size, 5);
	/* MD5("hello") */
	assert_string_equal(props.content_md5, "XUFAKrxLKna5cZ2REBfFkg==");
	amlops_buf_init(&b, 1 << 20);
	assert_int_equal(
	    amlops_blob_get(client, "azureml", "rt/a b+c.txt", &b), 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.ptr, "hello", 5);
	assert_int_equal(amlops_blob_get(client, "azureml", "rt/empty", &b), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(
	    amlops_blob_list(&names, &n, client, "azureml", "rt/"), 0);
	assert_int_equal(n, 3);
	assert_string_equal(names[0], "rt/a b+c.txt");
	assert_string_equal(names[1], "rt/d\xc3\xa9j\xc3\xa0/x");
	assert_string_equal(names[2], "rt/empty");
	amlops_blob_names_free(names, n);
	amlops_buf_release(&b);
}

static void
blob__large_file_goes_up_in_blocks(void **state)
{
	const struct amlops_blob_stats *st = amlops_blob_client_stats(client);
	size_t len = 300 * 1000 + 7;
	unsigned char *data = amlops_xmalloc(len);
	struct amlops_buf b = AMLOPS_BUF_INIT;
	struct amlops_blob_props props;
	unsigned puts, lists;

	(void)state;
	assert_int_equal(amlops_random(data, len), 0);
	puts = st->puts;
	lists = st->block_lists;
	assert_int_equal(
	    amlops_blob_put(client, "azureml", "big/blob.bin", data, len), 0);
	/* 64 KiB blocks: five Put Block and one Put Block List. */
	assert_int_equal(st->puts - puts, 5);
	assert_int_equal(st->block_lists - lists, 1);
	amlops_buf_init(&b, 1 << 20);
	assert_int_equal(
	    amlops_blob_get(client, "azureml", "big/blob.bin", &b), 0);
	assert_int_equal(b.len, len);
	assert_memory_equal(b.ptr, data, len);
	/* The whole blob's MD5 was set for later uploads to compare. */
	assert_int_equal(
	    amlops_blob_head(client, "azureml", "big/blob.bin", &props), 0);
	assert_int_equal(props.size, len);
	assert_int_equal(strlen(props.content_md5), 24);
	amlops_buf_release(&b);
	free(data);
}

static void
blob__failures_say_what_and_why(void **state)
{
	struct amlops_blob_client *bad = NULL;
	struct amlops_blob_cfg cfg = {.endpoint = endpoint,
	    .account = ACCOUNT,
	    .key = "d3Jvbmcta2V5LXdyb25nLWtleQ=="};
	struct amlops_buf b = AMLOPS_BUF_INIT;
	const char *m;

	(void)state;
	assert_int_equal(amlops_blob_head(client, "azureml", "no/such", NULL),
	    AMLOPS_ENOTFOUND);
	assert_string_equal(
	    amlops_err_last(), "blob 'azureml/no/such' does not exist");
	amlops_buf_init(&b, 1 << 20);
	assert_int_equal(amlops_blob_get(client, "azureml", "no/such", &b),
	    AMLOPS_ENOTFOUND);
	assert_string_equal(
	    amlops_err_last(), "blob 'azureml/no/such' does not exist");
	amlops_buf_release(&b);

	/* A wrong key: the service's 403, said once, never retried. */
	assert_int_equal(amlops_blob_client_new(&bad, &cfg), 0);
	assert_int_equal(
	    amlops_blob_put(bad, "azureml", "x", "y", 1), AMLOPS_EINVALID);
	m = amlops_err_last();
	assert_true(
	    strncmp(m, "put blob 'azureml/x': 403 Forbidden (request id ",
	        strlen("put blob 'azureml/x': 403 Forbidden (request "
	               "id ")) == 0);
	assert_non_null(strstr(m, "): AuthorizationFailure: Server failed to "
	                          "authenticate the request."));
	amlops_blob_client_free(bad);

	/* Configuration mistakes. */
	cfg.key = "not base64!";
	assert_int_equal(amlops_blob_client_new(&bad, &cfg), AMLOPS_EINVALID);
	assert_string_equal(
	    amlops_err_last(), "the storage account key is not base64");
	cfg.key = KEY;
	cfg.endpoint = "http://storage.example.com/acct";
	assert_int_equal(amlops_blob_client_new(&bad, &cfg), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "'http://storage.example.com': plain http is accepted only for "
	    "loopback addresses; use https");
	cfg.endpoint = endpoint;
	cfg.account = NULL;
	assert_int_equal(amlops_blob_client_new(&bad, &cfg), AMLOPS_EINVALID);
	assert_string_equal(
	    amlops_err_last(), "a storage account key needs the account name");
	assert_int_equal(
	    amlops_blob_put(client, "azureml", "", "y", 1), AMLOPS_EINVALID);
	assert_string_equal(
	    amlops_err_last(), "blob name must have 1 to 1024 characters");
}

/* Percent-encodes a query value. */
static char *
qesc(const char *s)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;

	for (; *s; s++) {
		if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' ||
		    *s == '_' || *s == '~')
			amlops_buf_putc(&b, *s);
		else
			amlops_buf_printf(&b, "%%%02X", (unsigned char)*s);
	}
	return amlops_buf_detach(&b);
}

/*
 * A service SAS for a container, signed as Azure documents it (version
 * 2020-12-06 and later), the way a user would get one from the portal.
 */
static char *
container_sas(const char *container, const char *perms)
{
	const char *se = "2035-01-01T00:00:00Z", *sv = "2021-08-06";
	char *sts, *sig_q, *se_q, *out;
	char sig[64];

	sts =
	    amlops_xasprintf("%s\n\n%s\n/blob/%s/%s\n\n\n\n%s\nc\n\n\n\n\n\n\n",
	        perms, se, ACCOUNT, container, sv);
	assert_int_equal(amlops_blob_sign(sig, KEY, sts), 0);
	sig_q = qesc(sig);
	se_q = qesc(se);
	out = amlops_xasprintf(
	    "sv=%s&sr=c&sp=%s&se=%s&sig=%s", sv, perms, se_q, sig_q);
	free(sts);
	free(sig_q);
	free(se_q);
	return out;
}

static void
blob__sas_token_authorises_instead_of_the_key(void **state)
{
	struct amlops_blob_client *c = NULL;
	struct amlops_blob_cfg cfg = {.endpoint = endpoint};
	struct amlops_buf b = AMLOPS_BUF_INIT;
	char *sas = container_sas("azureml", "rcwl"), *bad;
	const char *m;

	(void)state;
	cfg.sas = sas;
	assert_int_equal(amlops_blob_client_new(&c, &cfg), 0);
	if (amlops_blob_put(c, "azureml", "sas/one.txt", "via sas", 7) < 0)
		fail_msg("%s", amlops_err_last());
	amlops_buf_init(&b, 1 << 20);
	assert_int_equal(amlops_blob_get(c, "azureml", "sas/one.txt", &b), 0);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.ptr, "via sas", 7);
	amlops_buf_release(&b);
	amlops_blob_client_free(c);

	/* A SAS signed with another key is refused, and never shown. */
	bad = amlops_xstrdup(sas);
	memcpy(strstr(bad, "sig=") + 4, "AAAA", 4);
	cfg.sas = bad;
	assert_int_equal(amlops_blob_client_new(&c, &cfg), 0);
	assert_int_equal(amlops_blob_put(c, "azureml", "sas/two.txt", "x", 1),
	    AMLOPS_EINVALID);
	m = amlops_err_last();
	assert_true(strncmp(m, "put blob 'azureml/sas/two.txt': 403 Forbidden",
	                strlen("put blob 'azureml/sas/two.txt': 403 "
	                       "Forbidden")) == 0);
	assert_null(strstr(m, "sig="));
	amlops_buf_printf(&leaks, "%s\n%s\n", sas, bad);
	amlops_blob_client_free(c);
	free(sas);
	free(bad);
}

static char *
make_repo(unsigned char *weights, size_t wlen)
{
	char *repo = amlops_xasprintf("%s/repo", tmp), *f;

	assert_int_equal(amlops_mkdir_p(repo, 0755), 0);
	assert_int_equal(git_sh(repo, "git init -q -b main . && mkdir -p "
	                              "models/reg/sub src"),
	    0);
	f = amlops_xasprintf("%s/models/reg/weights.bin", repo);
	assert_int_equal(amlops_file_write_atomic(f, weights, wlen, 0644), 0);
	free(f);
	f = amlops_xasprintf("%s/models/reg/sub/meta.json", repo);
	assert_int_equal(
	    amlops_file_write_atomic(f, "{\"v\":1}\n", 8, 0644), 0);
	free(f);
	f = amlops_xasprintf("%s/src/score.py", repo);
	assert_int_equal(
	    amlops_file_write_atomic(f, "def init():\n    pass\n", 21, 0644),
	    0);
	free(f);
	assert_int_equal(git_sh(repo, "git add -A && git -c user.name=t -c "
	                              "user.email=t@example.com commit -qm m"),
	    0);
	/* Edits after the commit must not be uploaded. */
	f = amlops_xasprintf("%s/src/score.py", repo);
	assert_int_equal(
	    amlops_file_write_atomic(f, "uncommitted\n", 12, 0644), 0);
	free(f);
	return repo;
}

/* Every blob under prefix/base equals the file at the commit. */
static void
assert_blobs_equal_commit(struct git_files *g, const char *prefix,
    const char *path, size_t want_files)
{
	char **names = NULL, **files = NULL;
	size_t n = 0, nf = 0;
	struct amlops_buf blob = AMLOPS_BUF_INIT, file = AMLOPS_BUF_INIT;
	const char *base = strrchr(path, '/');
	char *p = amlops_xasprintf("%s/%s/", prefix, base ? base + 1 : path);

	assert_int_equal(amlops_blob_list(&names, &n, client, "azureml", p), 0);
	assert_int_equal(git_files_list(g, path, &files, &nf), 0);
	assert_int_equal(n, want_files);
	assert_int_equal(nf, want_files);
	for (size_t i = 0; i < n; i++) {
		char *full = amlops_xasprintf("%s/%s", path, files[i]);

		assert_string_equal(names[i] + strlen(p), files[i]);
		amlops_buf_init(&blob, 1 << 22);
		amlops_buf_init(&file, 1 << 22);
		assert_int_equal(
		    amlops_blob_get(client, "azureml", names[i], &blob), 0);
		assert_int_equal(git_files_read(g, full, &file), 0);
		assert_int_equal(blob.len, file.len);
		assert_memory_equal(blob.ptr ? blob.ptr : "",
		    file.ptr ? file.ptr : "", file.len);
		amlops_buf_release(&blob);
		amlops_buf_release(&file);
		free(full);
	}
	amlops_blob_names_free(names, n);
	amlops_blob_names_free(files, nf);
	free(p);
}

static void
upload__model_and_code_from_a_commit_then_nothing_twice(void **state)
{
	size_t wlen = 200 * 1000 + 3;
	unsigned char *weights = amlops_xmalloc(wlen);
	const struct amlops_blob_stats *bs = amlops_blob_client_stats(client);
	struct amlops_upload_stats st;
	struct git_files g;
	char *repo, mid[41], cid[41], *mprefix, *cprefix;
	unsigned puts;

	(void)state;
	assert_int_equal(amlops_random(weights, wlen), 0);
	repo = make_repo(weights, wlen);
	assert_int_equal(git_files_open(&g, repo), 0);
	git_files_id(mid, &g, "models/reg");
	git_files_id(cid, &g, "src");
	mprefix = amlops_xasprintf("LocalUpload/amlops/models/%s", mid);
	cprefix = amlops_xasprintf("LocalUpload/amlops/codes/%s", cid);

	assert_int_equal(amlops_azure_upload(&st, client, "azureml", mprefix,
	                     &g.files, "models/reg"),
	    0);
	assert_int_equal(st.files, 2);
	assert_int_equal(st.uploaded, 2);
	assert_int_equal(st.skipped, 0);
	assert_int_equal(st.bytes, wlen + 8);
	assert_int_equal(amlops_azure_upload(
	                     &st, client, "azureml", cprefix, &g.files, "src"),
	    0);
	assert_int_equal(st.uploaded, 1);
	assert_blobs_equal_commit(&g, mprefix, "models/reg", 2);
	assert_blobs_equal_commit(&g, cprefix, "src", 1);

	/* Same content again: HEADs only, not one blob sent. */
	puts = bs->puts + bs->block_lists;
	assert_int_equal(amlops_azure_upload(&st, client, "azureml", mprefix,
	                     &g.files, "models/reg"),
	    0);
	assert_int_equal(st.uploaded, 0);
	assert_int_equal(st.skipped, 2);
	assert_int_equal(amlops_azure_upload(
	                     &st, client, "azureml", cprefix, &g.files, "src"),
	    0);
	assert_int_equal(st.uploaded, 0);
	assert_int_equal(st.skipped, 1);
	assert_int_equal(bs->puts + bs->block_lists, puts);

	/* A changed blob under the same name is sent again. */
	assert_int_equal(
	    amlops_blob_put(client, "azureml",
	        "LocalUpload/amlops/codes/x/src/score.py", "old", 3),
	    0);
	assert_int_equal(amlops_azure_upload(&st, client, "azureml",
	                     "LocalUpload/amlops/codes/x", &g.files, "src"),
	    0);
	assert_int_equal(st.uploaded, 1);

	git_files_close(&g);
	free(weights);
	free(repo);
	free(mprefix);
	free(cprefix);
}

static void
download__folder_url_lands_in_a_directory(void **state)
{
	char *url = amlops_xasprintf("%s/azureml/big", endpoint);
	char *dest = amlops_xasprintf("%s/dl", tmp), *f, *one;
	struct amlops_buf got = AMLOPS_BUF_INIT, want = AMLOPS_BUF_INIT;
	struct amlops_blob_props props;

	(void)state;
	assert_int_equal(
	    amlops_blob_download_url(client, url, dest, 1 << 22), 0);
	f = amlops_xasprintf("%s/blob.bin", dest);
	assert_int_equal(amlops_file_read(&got, f, 1 << 22), 0);
	amlops_buf_init(&want, 1 << 22);
	assert_int_equal(
	    amlops_blob_get(client, "azureml", "big/blob.bin", &want), 0);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.ptr, want.ptr, want.len);
	assert_int_equal(
	    amlops_blob_head(client, "azureml", "big/blob.bin", &props), 0);
	/* One blob by its URL: saved under its base name. */
	one = amlops_xasprintf("%s/azureml/rt/a%%20b%%2Bc.txt", endpoint);
	assert_int_equal(
	    amlops_blob_download_url(client, one, dest, 1 << 22), 0);
	free(f);
	f = amlops_xasprintf("%s/a b+c.txt", dest);
	assert_int_equal(amlops_file_read(&got, f, 100), 0);
	assert_int_equal(got.len, 5);
	/* Past the cap. */
	assert_int_equal(
	    amlops_blob_download_url(client, url, dest, 1000), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "blobs under 'big/blob.bin' are larger than 1000 bytes");
	/* Another service's URL. */
	assert_int_equal(
	    amlops_blob_download_url(
	        client, "https://other.blob.core.windows.net/c/x", dest, 1000),
	    AMLOPS_EINVALID);
	amlops_buf_release(&got);
	amlops_buf_release(&want);
	free(url);
	free(one);
	free(dest);
	free(f);
}

static void
secrets__account_key_never_printed(void **state)
{
	char *out;

	(void)state;
	fflush(stderr);
	out = harness_read(errlog);
	assert_non_null(out);
	assert_non_null(strstr(out, "amlops_blob_put"));
	assert_null(strstr(out, KEY));
	assert_null(strstr(out, "SharedKey"));
	/* The SAS signatures: their sig= values. */
	for (const char *p = amlops_buf_cstr(&leaks);
	     (p = strstr(p, "sig=")) != NULL; p += 4) {
		char *sig = amlops_xstrndup(p + 4, strcspn(p + 4, "&\n"));

		assert_null(strstr(out, sig));
		free(sig);
	}
	amlops_buf_release(&leaks);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(blob__put_head_get_list_round_trip),
	    cmocka_unit_test(blob__large_file_goes_up_in_blocks),
	    cmocka_unit_test(blob__failures_say_what_and_why),
	    cmocka_unit_test(blob__sas_token_authorises_instead_of_the_key),
	    cmocka_unit_test(
	        upload__model_and_code_from_a_commit_then_nothing_twice),
	    cmocka_unit_test(download__folder_url_lands_in_a_directory),
	    cmocka_unit_test(secrets__account_key_never_printed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
