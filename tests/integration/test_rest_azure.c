/*
 * The azure backend end to end on this machine: `amlops host` stands in
 * for Resource Manager (AMLOPS_ARM_URL), AZURE_ACCESS_TOKEN carries its
 * token (the CI credential flow), and its default datastore is a real
 * Azurite container. Checks the constructor's messages, an endpoint's
 * lifecycle through the azure backend, and that inline assets from a git
 * commit land in the datastore byte for byte (datastore lookup,
 * listSecrets, the upload) and are registered by their blob URL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "amlops/backend.h"
#include "amlops/blob.h"
#include "amlops/err.h"
#include "amlops/hostinfo.h"
#include "amlops/log.h"
#include "amlops/util.h"

#include "rest_git.h"
#include "rest_harness.h"

#define ACCOUNT "devstoreaccount1"
#define KEY                                                                    \
	"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"      \
	"K1SZFPTOtr/KBHBeksoGMGw=="

static char *tmp, *errlog, *blob_endpoint, *hostdir;
static pid_t azurite_pid, host_pid;
static struct amlops_hostinfo *info;
static struct amlops_blob_client *blob;

static int
start_azurite(void)
{
	char *bin = amlops_xasprintf(
	    "%s/node_modules/.bin/azurite-blob", harness_src());
	char *logf = amlops_xasprintf("%s/azurite.log", tmp);
	char *loc = amlops_xasprintf("%s/azurite", tmp);
	char *log, *p;
	char *argv[] = {bin, "--blobHost", "127.0.0.1", "--blobPort", "0",
	    "--location", loc, "--skipApiVersionCheck", "--disableTelemetry",
	    NULL};

	amlops_mkdir_p(loc, 0700);
	azurite_pid = harness_spawn(argv, logf);
	log = harness_wait_file(
	    logf, "listens on http://127.0.0.1:", 60000, azurite_pid);
	free(bin);
	free(logf);
	free(loc);
	if (log == NULL)
		return -1;
	p = strstr(log, "listens on ") + strlen("listens on ");
	p[strcspn(p, "\r\n")] = '\0';
	blob_endpoint = amlops_xasprintf("%s/%s", p, ACCOUNT);
	free(log);
	return 0;
}

static int
setup(void **state)
{
	const char *amlops = getenv("AMLOPS");
	char *bin, *logf, *hj, *json;

	(void)state;
	bin = amlops_xasprintf(
	    "%s/node_modules/.bin/azurite-blob", harness_src());
	if (access(bin, X_OK) != 0 || !amlops || access(amlops, X_OK) != 0) {
		printf("SKIP: needs azurite (scripts/setup.sh --tests) and "
		       "AMLOPS\n");
		free(bin);
		exit(0);
	}
	free(bin);
	alarm(400);
	tmp = harness_tmpdir("azure");
	errlog = amlops_xasprintf("%s/stderr.log", tmp);
	if (start_azurite() < 0)
		return -1;
	{
		struct amlops_blob_cfg cfg = {
		    .endpoint = blob_endpoint, .account = ACCOUNT, .key = KEY};

		if (amlops_blob_client_new(&blob, &cfg) < 0 ||
		    amlops_blob_container_create(blob, "azureml-blobstore") < 0)
			return -1;
	}
	hostdir = amlops_xasprintf("%s/host", tmp);
	logf = amlops_xasprintf("%s/host.log", tmp);
	hj = amlops_xasprintf("%s/host.json", hostdir);
	{
		char *argv[] = {(char *)amlops, "host", "--state-dir", hostdir,
		    "--op-delay-ms", "100", "--blob-endpoint", blob_endpoint,
		    "--blob-container", "azureml-blobstore", "--blob-account",
		    ACCOUNT, "--blob-key", KEY, NULL};

		host_pid = harness_spawn(argv, logf);
	}
	json = harness_wait_file(hj, "\"token\"", 30000, host_pid);
	free(logf);
	free(hj);
	if (json == NULL)
		return -1;
	free(json);
	if (amlops_hostinfo_read(&info, hostdir) < 0)
		return -1;
	harness_stderr_capture(errlog);
	amlops_log_init("test_rest_azure", 1, 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	harness_stderr_restore();
	harness_show_failures(errlog, "test_rest_azure: ");
	amlops_blob_client_free(blob);
	amlops_hostinfo_free(info);
	harness_kill(host_pid);
	harness_kill(azurite_pid);
	harness_rmrf(tmp);
	free(tmp);
	free(errlog);
	free(blob_endpoint);
	free(hostdir);
	return 0;
}

/* The environment of a CI job pointed at this host. */
static void
azure_env(void)
{
	setenv("AZURE_SUBSCRIPTION_ID", info->subscription, 1);
	setenv("AZURE_RESOURCE_GROUP", info->resource_group, 1);
	setenv("AZUREML_WORKSPACE", info->workspace, 1);
	setenv("AMLOPS_ARM_URL", info->url, 1);
	setenv("AZURE_ACCESS_TOKEN", info->token, 1);
	unsetenv("AZURE_CLIENT_SECRET");
	unsetenv("AZURE_FEDERATED_TOKEN_FILE");
	unsetenv("IDENTITY_ENDPOINT");
}

static void
azure__constructor_names_what_is_missing(void **state)
{
	struct amlops_azure_cfg cfg = {0};
	struct amlops_backend *b = NULL;

	(void)state;
	azure_env();
	unsetenv("AZURE_RESOURCE_GROUP");
	assert_int_equal(amlops_azure_new(&b, &cfg), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "the azure target needs a resource group: give it in .amlops.yml "
	    "(azure.resource_group), as a flag, or in AZURE_RESOURCE_GROUP");
	azure_env();
	cfg.arm_url = "http://arm.example.com";
	assert_int_equal(amlops_azure_new(&b, &cfg), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "Resource Manager URL: 'http://arm.example.com': plain http is "
	    "accepted only for loopback addresses; use https");
	azure_env();
	unsetenv("AZURE_ACCESS_TOKEN");
	cfg.arm_url = NULL;
	assert_int_equal(amlops_azure_new(&b, &cfg), AMLOPS_ENOTFOUND);
	assert_true(
	    strncmp(amlops_err_last(), "no Azure credentials: ", 22) == 0);
	assert_null(b);
}

static void
azure__endpoint_lifecycle(void **state)
{
	struct amlops_azure_cfg cfg = {0};
	struct amlops_backend *b = NULL;
	struct amlops_endpoint *ep, *got = NULL;
	struct amlops_op *op = NULL;

	(void)state;
	azure_env();
	assert_int_equal(amlops_azure_new(&b, &cfg), 0);
	assert_string_equal(b->ops->name, "azure");
	ep = amlops_endpoint_new("az-ep");
	ep->auth_mode = AMLOPS_AUTH_AML_TOKEN;
	assert_int_equal(amlops_backend_put_endpoint(b, ep, 0, &op), 0);
	assert_int_equal(amlops_backend_wait_op(b, op), 0);
	amlops_op_free(op);
	assert_int_equal(
	    amlops_backend_get_endpoint(b, "az-ep", &got, NULL), 0);
	assert_int_equal(got->auth_mode, AMLOPS_AUTH_AML_TOKEN);
	amlops_endpoint_free(got);
	assert_int_equal(amlops_backend_delete_endpoint(b, "az-ep", &op), 0);
	assert_int_equal(amlops_backend_wait_op(b, op), 0);
	amlops_op_free(op);
	amlops_endpoint_free(ep);
	amlops_backend_free(b);
}

static void
azure__inline_assets_go_to_the_datastore(void **state)
{
	struct amlops_azure_cfg cfg = {0};
	struct amlops_backend *b = NULL;
	struct amlops_deployment *dep = amlops_deployment_new("blue");
	char *repo = amlops_xasprintf("%s/repo", tmp), *f, *name;
	struct amlops_buf got = AMLOPS_BUF_INIT;
	struct git_files g;

	(void)state;
	assert_int_equal(amlops_mkdir_p(repo, 0755), 0);
	assert_int_equal(
	    git_sh(repo, "git init -q -b main . && mkdir model"), 0);
	f = amlops_xasprintf("%s/model/w.txt", repo);
	assert_int_equal(
	    amlops_file_write_atomic(f, "weights-v1\n", 11, 0644), 0);
	free(f);
	assert_int_equal(git_sh(repo, "git add -A && git -c user.name=t -c "
	                              "user.email=t@example.com commit -qm m"),
	    0);
	assert_int_equal(git_files_open(&g, repo), 0);
	dep->endpoint_name = amlops_xstrdup("az-ep");
	dep->model.kind = AMLOPS_ASSET_INLINE;
	dep->model.path = amlops_xstrdup("model");
	git_files_id(dep->model.content_id, &g, "model");
	dep->model.version = amlops_xstrndup(dep->model.content_id, 12);

	azure_env();
	assert_int_equal(amlops_azure_new(&b, &cfg), 0);
	/*
	 * Uploaded to the datastore, then registered with its blob URL
	 * (the host fetches it from Azurite as Azure ML would).
	 */
	if (amlops_backend_ensure_assets(b, dep, &g.files) < 0)
		fail_msg("%s", amlops_err_last());

	name = amlops_xasprintf(
	    "LocalUpload/amlops/models/%s/model/w.txt", dep->model.content_id);
	amlops_buf_init(&got, 1 << 20);
	assert_int_equal(
	    amlops_blob_get(blob, "azureml-blobstore", name, &got), 0);
	assert_int_equal(got.len, 11);
	assert_memory_equal(got.ptr, "weights-v1\n", 11);
	free(name);
	amlops_buf_release(&got);
	/* Registered now: a second call finds the version. */
	if (amlops_backend_ensure_assets(b, dep, &g.files) < 0)
		fail_msg("%s", amlops_err_last());
	amlops_backend_free(b);
	amlops_deployment_free(dep);
	git_files_close(&g);
	free(repo);
}

static void
secrets__no_token_or_key_in_output(void **state)
{
	char *out;

	(void)state;
	fflush(stderr);
	out = harness_read(errlog);
	assert_non_null(out);
	assert_null(strstr(out, info->token));
	assert_null(strstr(out, KEY));
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(azure__constructor_names_what_is_missing),
	    cmocka_unit_test(azure__endpoint_lifecycle),
	    cmocka_unit_test(azure__inline_assets_go_to_the_datastore),
	    cmocka_unit_test(secrets__no_token_or_key_in_output),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
