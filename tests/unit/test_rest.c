/*
 * Unit tests of the REST client's pure parts and of the ARM mapping:
 * URL policy, Retry-After, backoff, error lines, asset ids, request
 * bodies, live state from the reference's GET responses, settings
 * normalisation, and the Shared Key signature. The network parts run in
 * tests/integration/test_rest_*.c against real servers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "amlops/backend.h"
#include "amlops/blob.h"
#include "amlops/err.h"
#include "amlops/rest.h"
#include "amlops/util.h"

static void
rest__url_policy(void **state)
{
	(void)state;
	assert_int_equal(
	    amlops_http_url_ok("https://management.azure.com", 0), 0);
	assert_int_equal(amlops_http_url_ok("http://127.0.0.1:8080/x", 0), 0);
	assert_int_equal(amlops_http_url_ok("http://127.3.4.5/x", 0), 0);
	assert_int_equal(amlops_http_url_ok("http://localhost:1/", 0), 0);
	assert_int_equal(amlops_http_url_ok("http://[::1]:9/", 0), 0);
	assert_int_equal(
	    amlops_http_url_ok("http://example.com/", 0), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "'http://example.com': plain http is accepted only for loopback "
	    "addresses; use https");
	/* Not fooled by a name that starts like a loopback address. */
	assert_int_equal(amlops_http_url_ok("http://127.0.0.1.evil.com/", 0),
	    AMLOPS_EINVALID);
	assert_int_equal(
	    amlops_http_url_ok("http://128.0.0.1/", 0), AMLOPS_EINVALID);
	assert_int_equal(
	    amlops_http_url_ok("ftp://127.0.0.1/", 0), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "'127.0.0.1': only http and https URLs are accepted");
	assert_int_equal(amlops_http_url_ok("not a url", 0), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(), "'not a url' is not a URL");
	/* IMDS speaks plain http on a link-local address, by design. */
	assert_int_equal(
	    amlops_http_url_ok("http://169.254.169.254/metadata", 0),
	    AMLOPS_EINVALID);
	assert_int_equal(amlops_http_url_ok("http://169.254.169.254/metadata",
	                     AMLOPS_HTTP_IMDS),
	    0);
}

static void
rest__retry_after_forms(void **state)
{
	int64_t now = 1764000000000LL; /* 2025-11-24T16:00:00Z */

	(void)state;
	assert_int_equal(amlops_http_parse_retry_after("7", now), 7000);
	assert_int_equal(amlops_http_parse_retry_after(" 0 ", now), 0);
	assert_int_equal(
	    amlops_http_parse_retry_after("Mon, 24 Nov 2025 16:00:10 GMT", now),
	    10000);
	/* A date in the past means now. */
	assert_int_equal(
	    amlops_http_parse_retry_after("Mon, 24 Nov 2025 15:00:00 GMT", now),
	    0);
	assert_int_equal(amlops_http_parse_retry_after("soon", now), -1);
	assert_int_equal(amlops_http_parse_retry_after("5s", now), -1);
	assert_int_equal(amlops_http_parse_retry_after("-3", now), -1);
	assert_int_equal(amlops_http_parse_retry_after("", now), -1);
	assert_int_equal(amlops_http_parse_retry_after("999999", now), -1);
}

static void
rest__backoff_doubles_with_jitter_and_a_cap(void **state)
{
	struct amlops_retry p = {.base_ms = 100, .max_delay_ms = 1000};

	(void)state;
	for (int i = 0; i < 200; i++) {
		int64_t d1 = amlops_http_backoff_ms(&p, 1);
		int64_t d3 = amlops_http_backoff_ms(&p, 3);
		int64_t d9 = amlops_http_backoff_ms(&p, 9);

		assert_true(d1 >= 50 && d1 <= 100);
		assert_true(d3 >= 200 && d3 <= 400);
		assert_true(d9 >= 500 && d9 <= 1000);
	}
}

static void
rest__short_path_and_reason(void **state)
{
	char *s;

	(void)state;
	s = amlops_rest_short_path(
	    "/subscriptions/0/resourceGroups/g/providers/"
	    "Microsoft.MachineLearningServices/workspaces/ws/onlineEndpoints/"
	    "my-endpoint?api-version=2024-04-01");
	assert_string_equal(s, "onlineEndpoints/my-endpoint");
	free(s);
	s = amlops_rest_short_path("https://management.azure.com/"
	                           "subscriptions/0/resourceGroups/g/providers/"
	                           "M/workspaces/ws/onlineEndpoints/e/"
	                           "deployments/blue");
	assert_string_equal(s, "onlineEndpoints/e/deployments/blue");
	free(s);
	s = amlops_rest_short_path("/_amlops/faults");
	assert_string_equal(s, "_amlops/faults");
	free(s);
	assert_string_equal(amlops_http_reason(409), "Conflict");
	assert_string_equal(amlops_http_reason(429), "Too Many Requests");
	assert_string_equal(amlops_http_reason(299), "");
}

static void
rest__arm_error_bodies_become_one_line(void **state)
{
	const char *arm = "{\"error\":{\"code\":\"Conflict\",\"message\":"
	                  "\"endpoint 'e' is busy:\\n  an operation is in "
	                  "progress\",\"details\":[]}}";
	const char *bare = "{\"code\":\"BadArgument\",\"message\":\"no\"}";
	char *s;

	(void)state;
	s = amlops_rest_error_text(arm, strlen(arm));
	assert_string_equal(s, "Conflict: endpoint 'e' is busy: an operation "
	                       "is in progress");
	free(s);
	s = amlops_rest_error_text(bare, strlen(bare));
	assert_string_equal(s, "BadArgument: no");
	free(s);
	s = amlops_rest_error_text("<html>\n<b>Bad gateway</b>\n</html>", 33);
	assert_string_equal(s, "<html> <b>Bad gateway</b> </html>");
	free(s);
	s = amlops_rest_error_text(NULL, 0);
	assert_string_equal(s, "no error body");
	free(s);
}

static void
arm__asset_ids_both_ways(void **state)
{
	char *ws = amlops_arm_workspace_path("sub", "rg", "ws", NULL);
	char *id, *name, *version;
	struct amlops_deployment *dep = amlops_deployment_new("blue");

	(void)state;
	assert_string_equal(ws, "/subscriptions/sub/resourceGroups/rg/"
	                        "providers/Microsoft.MachineLearningServices/"
	                        "workspaces/ws");
	id = amlops_arm_asset_id(ws, "models", "m", "3");
	assert_string_equal(id + strlen(ws), "/models/m/versions/3");
	assert_int_equal(amlops_arm_asset_parse(&name, &version, id), 0);
	assert_string_equal(name, "m");
	assert_string_equal(version, "3");
	free(name);
	free(version);
	free(id);
	assert_int_equal(amlops_arm_asset_parse(
	                     &name, &version, "azureml:sk-model:0a1b2c3d4e5f"),
	    0);
	assert_string_equal(name, "sk-model");
	assert_string_equal(version, "0a1b2c3d4e5f");
	free(name);
	free(version);
	assert_int_equal(amlops_arm_asset_parse(&name, &version, "azureml:x"),
	    AMLOPS_EINVALID);
	assert_string_equal(
	    amlops_err_last(), "'azureml:x' is not azureml:NAME:VERSION");
	assert_int_equal(amlops_arm_asset_parse(
	                     &name, &version, "/subscriptions/s/models/m"),
	    AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "'/subscriptions/s/models/m' is not an asset version id");

	dep->endpoint_name = amlops_xstrdup("ep");
	name = amlops_arm_asset_name(dep, &dep->model, "model");
	assert_string_equal(name, "ep-blue-model");
	free(name);
	dep->model.name = amlops_xstrdup("given");
	name = amlops_arm_asset_name(dep, &dep->model, "model");
	assert_string_equal(name, "given");
	free(name);
	amlops_deployment_free(dep);
	free(ws);
}

static struct amlops_endpoint *
sample_endpoint(void)
{
	struct amlops_endpoint *ep = amlops_endpoint_new("my-endpoint");

	ep->auth_mode = AMLOPS_AUTH_AML_TOKEN;
	ep->description = amlops_xstrdup("d");
	ep->compute = AMLOPS_COMPUTE_KUBERNETES;
	ep->compute_name = amlops_xstrdup("k8s-compute");
	ep->public_network_access = amlops_xstrdup("disabled");
	ep->traffic = amlops_xcalloc(2, sizeof(*ep->traffic));
	ep->traffic[0].deployment = amlops_xstrdup("blue");
	ep->traffic[0].percent = 90;
	ep->traffic[1].deployment = amlops_xstrdup("green");
	ep->traffic[1].percent = 10;
	ep->ntraffic = 2;
	cJSON_AddStringToObject(ep->tags, "team", "ml");
	return ep;
}

static void
arm__endpoint_body(void **state)
{
	struct amlops_endpoint *ep = sample_endpoint();
	cJSON *b;
	char *s;

	(void)state;
	b = amlops_arm_endpoint_body(ep, AMLOPS_EP_TRAFFIC, "westeurope");
	s = cJSON_PrintUnformatted(b);
	assert_string_equal(s,
	    "{\"location\":\"westeurope\",\"tags\":{\"team\":\"ml\"},"
	    "\"properties\":{\"description\":\"d\",\"authMode\":\"AMLToken\","
	    "\"compute\":\"k8s-compute\",\"publicNetworkAccess\":\"Disabled\","
	    "\"traffic\":{\"blue\":90,\"green\":10},\"mirrorTraffic\":{}}}");
	free(s);
	cJSON_Delete(b);
	/* Created without traffic. */
	b = amlops_arm_endpoint_body(ep, 0, NULL);
	assert_null(cJSON_GetObjectItem(
	    cJSON_GetObjectItem(b, "properties"), "traffic"));
	cJSON_Delete(b);
	amlops_endpoint_free(ep);
}

static void
arm__deployment_body(void **state)
{
	struct amlops_deployment *dep = amlops_deployment_new("blue");
	char *ws = amlops_arm_workspace_path("s", "g", "w", NULL), *s, *want;
	cJSON *b;

	(void)state;
	dep->endpoint_name = amlops_xstrdup("ep");
	dep->model.kind = AMLOPS_ASSET_INLINE;
	dep->model.path = amlops_xstrdup("model");
	dep->model.version = amlops_xstrdup("0123456789ab");
	dep->code.kind = AMLOPS_ASSET_REF;
	dep->code.name = amlops_xstrdup("c");
	dep->code.version = amlops_xstrdup("2");
	dep->code.ref = amlops_xstrdup("azureml:c:2");
	dep->scoring_script = amlops_xstrdup("score.py");
	dep->environment.asset.kind = AMLOPS_ASSET_REF;
	dep->environment.asset.ref = amlops_xstrdup(
	    "azureml://registries/azureml/environments/sklearn/versions/1");
	dep->instance_type = amlops_xstrdup("Standard_DS3_v2");
	dep->instance_count = 2;
	cJSON_AddItemToObject(dep->settings, "requestSettings",
	    cJSON_Parse("{\"requestTimeout\":\"PT10S\"}"));
	b = amlops_arm_deployment_body(ws, NULL, dep, "westeurope");
	s = cJSON_PrintUnformatted(b);
	want = amlops_xasprintf(
	    "{\"location\":\"westeurope\",\"tags\":{},\"sku\":{\"name\":"
	    "\"Default\",\"capacity\":2},\"properties\":{"
	    "\"endpointComputeType\":\"Managed\",\"model\":\"%s/models/"
	    "ep-blue-model/versions/0123456789ab\",\"codeConfiguration\":{"
	    "\"codeId\":\"%s/codes/c/versions/2\",\"scoringScript\":"
	    "\"score.py\"},\"environmentId\":\"azureml://registries/azureml/"
	    "environments/sklearn/versions/1\",\"instanceType\":"
	    "\"Standard_DS3_v2\",\"requestSettings\":{\"requestTimeout\":"
	    "\"PT10S\"}}}",
	    ws, ws);
	assert_string_equal(s, want);
	free(s);
	free(want);
	cJSON_Delete(b);
	amlops_deployment_free(dep);
	free(ws);
}

static cJSON *
example(const char *rel)
{
	const char *shared = getenv("AMLOPS_SHARED");
	struct amlops_buf b = AMLOPS_BUF_INIT;
	char *path;
	cJSON *j = NULL;

	if (!shared)
		return NULL;
	path = amlops_xasprintf(
	    "%s/reference/azure-ml-rest/examples/%s", shared, rel);
	if (amlops_file_read(&b, path, 1 << 20) == 0)
		j = cJSON_ParseWithLength(b.ptr, b.len);
	amlops_buf_release(&b);
	free(path);
	return j;
}

static void
arm__live_state_from_reference_responses(void **state)
{
	cJSON *ep = example("preview-2025-07-01-preview/Workspace/"
	                    "OnlineEndpoint/get.json");
	cJSON *deps = example("stable-2023-10-01/OnlineDeployment/list.json");
	const cJSON *eb, *db;
	struct amlops_endpoint *got = NULL;
	struct amlops_live live;
	const struct amlops_deployment *d;

	(void)state;
	if (!ep || !deps) {
		printf("SKIP: ../shared/reference is absent\n");
		cJSON_Delete(ep);
		cJSON_Delete(deps);
		return;
	}
	eb = cJSON_GetObjectItem(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(ep, "responses"), "200"),
	    "body");
	db = cJSON_GetObjectItem(
	    cJSON_GetObjectItem(
	        cJSON_GetObjectItem(
	            cJSON_GetObjectItem(deps, "responses"), "200"),
	        "body"),
	    "value");
	assert_int_equal(amlops_arm_endpoint_from_json(&got, &live, eb, db), 0);
	assert_string_equal(got->name, "string");
	assert_int_equal(got->auth_mode, AMLOPS_AUTH_AML_TOKEN);
	assert_int_equal(got->compute, AMLOPS_COMPUTE_KUBERNETES);
	assert_int_equal(got->ntraffic, 1);
	assert_int_equal(got->traffic[0].percent, 1);
	/* Only the identity's type and ids: no principal or tenant ids. */
	assert_string_equal(
	    cJSON_GetObjectItem(got->identity, "type")->valuestring,
	    "SystemAssigned");
	assert_null(cJSON_GetObjectItem(got->identity, "principalId"));
	assert_non_null(cJSON_GetObjectItem(
	    cJSON_GetObjectItem(got->identity, "userAssignedIdentities"),
	    "string"));
	assert_string_equal(live.provisioning_state, "Creating");
	assert_string_equal(
	    live.scoring_uri, "https://www.contoso.com/example");
	assert_int_equal(got->ndeployments, 1);
	d = got->deployments[0];
	assert_int_equal(d->compute, AMLOPS_COMPUTE_KUBERNETES);
	assert_int_equal(d->instance_count, 1);
	assert_string_equal(d->scoring_script, "string");
	assert_string_equal(
	    amlops_live_deployment_state(&live, "string"), "Creating");
	/* Non-default settings stay; the defaults went. */
	assert_non_null(cJSON_GetObjectItem(d->settings, "requestSettings"));
	assert_non_null(
	    cJSON_GetObjectItem(d->settings, "containerResourceRequirements"));
	assert_null(cJSON_GetObjectItem(d->settings, "scaleSettings"));
	assert_null(cJSON_GetObjectItem(d->settings, "appInsightsEnabled"));
	amlops_endpoint_free(got);
	free(live.provisioning_state);
	free(live.scoring_uri);
	free(live.id);
	for (size_t i = 0; i < live.ndeployments; i++) {
		free(live.deployments[i].name);
		free(live.deployments[i].provisioning_state);
		free(live.deployments[i].id);
	}
	free(live.deployments);
	cJSON_Delete(ep);
	cJSON_Delete(deps);
}

static void
arm__settings_normalise_to_service_defaults(void **state)
{
	cJSON *s = cJSON_Parse(
	    "{\"requestSettings\":{\"maxConcurrentRequestsPerInstance\":1,"
	    "\"requestTimeout\":\"PT5S\",\"maxQueueWait\":\"PT0.5S\"},"
	    "\"livenessProbe\":{\"period\":\"PT10S\",\"failureThreshold\":5},"
	    "\"scaleSettings\":{\"scaleType\":\"Default\"},"
	    "\"appInsightsEnabled\":true,\"environmentVariables\":{}}");
	char *out;

	(void)state;
	amlops_arm_settings_normalize(s);
	out = cJSON_PrintUnformatted(s);
	assert_string_equal(out, "{\"livenessProbe\":{\"failureThreshold\":5},"
	                         "\"appInsightsEnabled\":true}");
	free(out);
	cJSON_Delete(s);
}

static void
blob__shared_key_signature(void **state)
{
	char sig[64];

	(void)state;
	/* HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") */
	assert_int_equal(amlops_blob_sign(sig, "a2V5",
	                     "The quick brown fox jumps over the lazy dog"),
	    0);
	assert_string_equal(
	    sig, "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=");
	assert_int_equal(amlops_blob_sign(sig, "!!", "x"), AMLOPS_EINVALID);
	assert_string_equal(
	    amlops_err_last(), "the storage account key is not base64");
}

static void
backend__null_slot_is_enotsupp(void **state)
{
	static const struct amlops_backend_ops ops = {.name = "memory"};
	struct amlops_backend b = {.ops = &ops};
	struct amlops_op *op = NULL;

	(void)state;
	assert_int_equal(
	    amlops_backend_apply_step(&b, NULL, &op), AMLOPS_ENOTSUPP);
	assert_string_equal(
	    amlops_err_last(), "the memory backend cannot apply steps");
	assert_int_equal(
	    amlops_backend_logs(&b, "e", "d", 10, NULL), AMLOPS_ENOTSUPP);
	assert_string_equal(
	    amlops_err_last(), "the memory backend cannot read logs");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rest__url_policy),
	    cmocka_unit_test(rest__retry_after_forms),
	    cmocka_unit_test(rest__backoff_doubles_with_jitter_and_a_cap),
	    cmocka_unit_test(rest__short_path_and_reason),
	    cmocka_unit_test(rest__arm_error_bodies_become_one_line),
	    cmocka_unit_test(arm__asset_ids_both_ways),
	    cmocka_unit_test(arm__endpoint_body),
	    cmocka_unit_test(arm__deployment_body),
	    cmocka_unit_test(arm__live_state_from_reference_responses),
	    cmocka_unit_test(arm__settings_normalise_to_service_defaults),
	    cmocka_unit_test(blob__shared_key_signature),
	    cmocka_unit_test(backend__null_slot_is_enotsupp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
