/*
 * The spec loader: both YAML shapes, the model they normalise to, and
 * every validation rule with its exact message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "amlops/err.h"
#include "amlops/spec.h"
#include "amlops/util.h"

struct fx {
	const char *path;
	const char *yaml;
};

/* A repository tree for the path callback: path -> kind. */
struct tree {
	const char *path;
	enum amlops_path_kind kind;
};

static const struct tree sample_tree[] = {
    {"", AMLOPS_PATH_DIR},
    {"endpoints", AMLOPS_PATH_DIR},
    {"endpoints/my-ep", AMLOPS_PATH_DIR},
    {"model-1", AMLOPS_PATH_DIR},
    {"model-1/model", AMLOPS_PATH_DIR},
    {"model-1/model/sklearn_regression_model.pkl", AMLOPS_PATH_FILE},
    {"model-1/onlinescoring", AMLOPS_PATH_DIR},
    {"model-1/onlinescoring/score.py", AMLOPS_PATH_FILE},
    {"model-1/environment", AMLOPS_PATH_DIR},
    {"model-1/environment/conda.yml", AMLOPS_PATH_FILE},
    {"docker", AMLOPS_PATH_DIR},
    {"docker/Dockerfile", AMLOPS_PATH_FILE},
    {"evil", AMLOPS_PATH_SYMLINK_OUT},
    {NULL, AMLOPS_PATH_MISSING},
};

static enum amlops_path_kind
tree_kind(void *ctx, const char *path)
{
	const struct tree *t;

	for (t = ctx; t->path; t++)
		if (!strcmp(t->path, path))
			return t->kind;
	return AMLOPS_PATH_MISSING;
}

static int
load_fx(struct amlops_spec **spec, struct amlops_diags *d, const struct fx *fx,
    size_t n, unsigned flags)
{
	struct amlops_spec_file files[8];
	struct amlops_spec_opts opts = {flags, tree_kind, (void *)sample_tree};
	size_t i;

	assert_true(n <= 8);
	for (i = 0; i < n; i++) {
		files[i].path = fx[i].path;
		files[i].data = fx[i].yaml;
		files[i].len = strlen(fx[i].yaml);
	}
	return amlops_spec_load(spec, d, files, n, &opts);
}

/* Loads and checks that the only diagnostic is `want`. */
static void
expect_one(const struct fx *fx, size_t n, unsigned flags, const char *want)
{
	struct amlops_spec *spec = NULL;
	struct amlops_diags d = AMLOPS_DIAGS_INIT;
	size_t i;

	assert_int_equal(load_fx(&spec, &d, fx, n, flags), AMLOPS_EINVALID);
	amlops_diags_sort(&d);
	for (i = 0; i < d.n; i++) {
		char *s = amlops_diag_format(&d.v[i]);

		if (d.n != 1 || strcmp(s, want))
			print_message("got: %s\n", s);
		free(s);
	}
	assert_int_equal(d.n, 1);
	{
		char *s = amlops_diag_format(&d.v[0]);

		assert_string_equal(s, want);
		free(s);
	}
	amlops_spec_free(spec);
	amlops_diags_release(&d);
}

/* Loads and checks that `want` is among the diagnostics. */
static void
expect_some(const struct fx *fx, size_t n, unsigned flags, const char *want)
{
	struct amlops_spec *spec = NULL;
	struct amlops_diags d = AMLOPS_DIAGS_INIT;
	size_t i;
	int found = 0;

	assert_int_equal(load_fx(&spec, &d, fx, n, flags), AMLOPS_EINVALID);
	for (i = 0; i < d.n; i++) {
		char *s = amlops_diag_format(&d.v[i]);

		if (!strcmp(s, want))
			found = 1;
		else
			print_message("also: %s\n", s);
		free(s);
	}
	assert_true(found);
	amlops_spec_free(spec);
	amlops_diags_release(&d);
}

static struct amlops_spec *
load_ok(const struct fx *fx, size_t n, unsigned flags)
{
	struct amlops_spec *spec = NULL;
	struct amlops_diags d = AMLOPS_DIAGS_INIT;
	size_t i;
	int rc = load_fx(&spec, &d, fx, n, flags);

	for (i = 0; i < d.n; i++) {
		char *s = amlops_diag_format(&d.v[i]);

		print_message("unexpected: %s\n", s);
		free(s);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(d.n, 0);
	amlops_diags_release(&d);
	return spec;
}

#define ONE(path, yaml, flags, want)                                           \
	do {                                                                   \
		const struct fx f_[] = {{path, yaml}};                         \
		expect_one(f_, 1, flags, want);                                \
	} while (0)

static const char ga_endpoint[] =
    "$schema: https://azuremlschemas.azureedge.net/latest/"
    "managedOnlineEndpoint.schema.json\n"
    "name: my-ep\n"
    "auth_mode: key\n"
    "traffic:\n"
    "  blue: 100\n";

static const char ga_blue[] =
    "$schema: https://azuremlschemas.azureedge.net/latest/"
    "managedOnlineDeployment.schema.json\n"
    "name: blue\n"
    "endpoint_name: my-ep\n"
    "model:\n"
    "  name: model-1\n"
    "  version: 1\n"
    "  path: ../../model-1/model/sklearn_regression_model.pkl\n"
    "code_configuration:\n"
    "  code: ../../model-1/onlinescoring/\n"
    "  scoring_script: score.py\n"
    "environment:\n"
    "  name: env-model1\n"
    "  version: 1\n"
    "  conda_file: ../../model-1/environment/conda.yml\n"
    "  image: mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04\n"
    "instance_type: Standard_F2s_v2\n"
    "instance_count: 2\n"
    "scale_settings:\n"
    "  type: default\n";

static const char preview_2021[] =
    "$schema: https://azuremlschemas.azureedge.net/latest/"
    "managedOnlineEndpoint.schema.json\n"
    "name: my-ep\n"
    "type: online\n"
    "auth_mode: key\n"
    "traffic:\n"
    "  blue: 100\n"
    "\n"
    "deployments:\n"
    "  - name: blue\n"
    "    model:\n"
    "      name: model-1\n"
    "      version: 1\n"
    "      local_path: "
    "../../model-1/model/sklearn_regression_model.pkl\n"
    "    code_configuration:\n"
    "      code:\n"
    "        local_path: ../../model-1/onlinescoring/\n"
    "      scoring_script: score.py\n"
    "    environment:\n"
    "      name: env-model1\n"
    "      version: 1\n"
    "      path: ../../model-1\n"
    "      conda_file: file:environment/conda.yml\n"
    "      docker:\n"
    "        image: mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04\n"
    "    instance_type: Standard_F2s_v2\n"
    "    scale_settings:\n"
    "      scale_type: manual\n"
    "      instance_count: 2\n"
    "      min_instances: 1\n"
    "      max_instances: 2\n";

static void
spec__ga_shape_loads_into_the_model(void **state)
{
	const struct fx fx[] = {
	    {"endpoints/my-ep/endpoint.yml", ga_endpoint},
	    {"endpoints/my-ep/blue.yml", ga_blue},
	};
	struct amlops_spec *spec = load_ok(fx, 2, 0);
	struct amlops_endpoint *ep;
	struct amlops_deployment *dep;

	assert_int_equal(spec->nendpoints, 1);
	ep = amlops_spec_endpoint(spec, "my-ep");
	assert_non_null(ep);
	assert_string_equal(ep->file, "endpoints/my-ep/endpoint.yml");
	assert_int_equal(ep->loc.line, 2);
	assert_int_equal(ep->loc.col, 7);
	assert_int_equal(ep->auth_mode, AMLOPS_AUTH_KEY);
	assert_int_equal(ep->compute, AMLOPS_COMPUTE_MANAGED);
	assert_int_equal(ep->ntraffic, 1);
	assert_string_equal(ep->traffic[0].deployment, "blue");
	assert_int_equal(ep->traffic[0].percent, 100);
	dep = amlops_endpoint_deployment(ep, "blue");
	assert_non_null(dep);
	assert_string_equal(dep->endpoint_name, "my-ep");
	assert_int_equal(dep->instance_count, 2);
	assert_string_equal(dep->instance_type, "Standard_F2s_v2");
	assert_int_equal(dep->model.kind, AMLOPS_ASSET_INLINE);
	assert_string_equal(dep->model.name, "model-1");
	assert_string_equal(dep->model.version, "1");
	assert_string_equal(
	    dep->model.path, "model-1/model/sklearn_regression_model.pkl");
	assert_int_equal(dep->code.kind, AMLOPS_ASSET_INLINE);
	assert_string_equal(dep->code.path, "model-1/onlinescoring");
	assert_string_equal(dep->code.name, "my-ep-blue-code");
	assert_null(dep->code.version);
	assert_string_equal(dep->scoring_script, "score.py");
	assert_int_equal(dep->environment.asset.kind, AMLOPS_ASSET_INLINE);
	assert_string_equal(dep->environment.image,
	    "mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04");
	assert_string_equal(
	    dep->environment.conda_file, "model-1/environment/conda.yml");
	assert_string_equal(dep->environment.asset.name, "env-model1");
	amlops_spec_free(spec);
}

static void
spec__both_shapes_normalise_to_equal_models(void **state)
{
	const struct fx ga[] = {
	    {"endpoints/my-ep/endpoint.yml", ga_endpoint},
	    {"endpoints/my-ep/blue.yml", ga_blue},
	};
	const struct fx old[] = {
	    {"endpoints/my-ep/endpoint.yml", preview_2021},
	};
	struct amlops_spec *a = load_ok(ga, 2, 0), *b = load_ok(old, 1, 0);
	struct amlops_deployment *x, *y;

	x = a->endpoints[0]->deployments[0];
	y = b->endpoints[0]->deployments[0];
	assert_string_equal(a->endpoints[0]->name, b->endpoints[0]->name);
	assert_int_equal(
	    a->endpoints[0]->auth_mode, b->endpoints[0]->auth_mode);
	assert_int_equal(a->endpoints[0]->ntraffic, b->endpoints[0]->ntraffic);
	assert_string_equal(x->name, y->name);
	assert_string_equal(x->endpoint_name, y->endpoint_name);
	assert_int_equal(x->instance_count, y->instance_count);
	assert_string_equal(x->instance_type, y->instance_type);
	assert_string_equal(x->model.path, y->model.path);
	assert_string_equal(x->model.name, y->model.name);
	assert_string_equal(x->model.version, y->model.version);
	assert_string_equal(x->code.path, y->code.path);
	assert_string_equal(x->code.name, y->code.name);
	assert_string_equal(x->scoring_script, y->scoring_script);
	assert_string_equal(x->environment.image, y->environment.image);
	assert_string_equal(
	    x->environment.conda_file, y->environment.conda_file);
	assert_string_equal(
	    x->environment.asset.version, y->environment.asset.version);
	assert_true(cJSON_Compare(x->settings, y->settings, 1));
	assert_true(cJSON_Compare(x->tags, y->tags, 1));
	amlops_spec_free(a);
	amlops_spec_free(b);
}

static void
spec__references_are_parsed(void **state)
{
	static const char dep[] =
	    "name: blue\n"
	    "endpoint_name: my-ep\n"
	    "model: azureml:my-model:3\n"
	    "code_configuration:\n"
	    "  code: azureml:my-code@latest\n"
	    "  scoring_script: score.py\n"
	    "environment: azureml://registries/azureml/environments/"
	    "sklearn-1.5/labels/latest\n";
	static const char dep2[] =
	    "name: green\n"
	    "endpoint_name: my-ep\n"
	    "model: /subscriptions/0000/resourceGroups/rg/providers/"
	    "Microsoft.MachineLearningServices/workspaces/ws/models/m2/"
	    "versions/7\n"
	    "environment: azureml:my-env:1\n";
	const struct fx fx[] = {
	    {"endpoint.yml", "name: my-ep\nauth_mode: aml_token\n"},
	    {"blue.yml", dep},
	    {"green.yml", dep2},
	};
	struct amlops_spec *spec = load_ok(fx, 3, 0);
	struct amlops_endpoint *ep = spec->endpoints[0];
	struct amlops_deployment *b = amlops_endpoint_deployment(ep, "blue"),
	                         *g = amlops_endpoint_deployment(ep, "green");

	assert_int_equal(ep->auth_mode, AMLOPS_AUTH_AML_TOKEN);
	assert_int_equal(b->model.kind, AMLOPS_ASSET_REF);
	assert_string_equal(b->model.name, "my-model");
	assert_string_equal(b->model.version, "3");
	assert_string_equal(b->model.ref, "azureml:my-model:3");
	assert_int_equal(b->code.kind, AMLOPS_ASSET_REF);
	assert_string_equal(b->code.name, "my-code");
	assert_string_equal(b->code.label, "latest");
	assert_null(b->code.version);
	assert_int_equal(b->environment.asset.kind, AMLOPS_ASSET_REF);
	assert_string_equal(b->environment.asset.name, "sklearn-1.5");
	assert_string_equal(b->environment.asset.label, "latest");
	assert_int_equal(g->model.kind, AMLOPS_ASSET_REF);
	assert_string_equal(g->model.name, "m2");
	assert_string_equal(g->model.version, "7");
	assert_string_equal(g->environment.asset.name, "my-env");
	assert_string_equal(g->environment.asset.version, "1");
	assert_int_equal(g->code.kind, AMLOPS_ASSET_NONE);
	amlops_spec_free(spec);
}

static void
spec__reference_without_version_is_refused(void **state)
{
	ONE("d.yml",
	    "name: blue\nendpoint_name: my-ep\nmodel: azureml:my-model\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:3:8: 'model' reference 'azureml:my-model' needs a version "
	    "('azureml:my-model:1') or a label ('azureml:my-model@latest')");
}

static void
spec__defaults_and_inline_names(void **state)
{
	static const char dep[] = "name: blue\n"
	                          "endpoint_name: my-ep\n"
	                          "model:\n"
	                          "  path: model-1/model\n"
	                          "environment:\n"
	                          "  image: python:3.11\n";
	const struct fx fx[] = {
	    {"endpoint.yml", "name: my-ep\nauth_mode: key\n"},
	    {"blue.yml", dep},
	};
	struct amlops_spec *spec = load_ok(fx, 2, 0);
	struct amlops_endpoint *ep = spec->endpoints[0];
	struct amlops_deployment *d = ep->deployments[0];

	assert_int_equal(ep->ntraffic, 0);
	assert_null(ep->description);
	assert_non_null(ep->tags);
	assert_int_equal(cJSON_GetArraySize(ep->tags), 0);
	assert_int_equal(d->instance_count, 1);
	assert_null(d->instance_type);
	assert_string_equal(d->model.name, "my-ep-blue-model");
	assert_null(d->model.version);
	assert_string_equal(d->model.content_id, "");
	assert_string_equal(d->environment.asset.name, "my-ep-blue-env");
	assert_null(d->environment.conda_file);
	assert_int_equal(cJSON_GetArraySize(d->settings), 0);
	amlops_spec_free(spec);
}

static void
spec__settings_take_the_rest_shape(void **state)
{
	static const char dep[] = "name: blue\n"
	                          "endpoint_name: my-ep\n"
	                          "model: azureml:m:1\n"
	                          "request_settings:\n"
	                          "  request_timeout_ms: 3500\n"
	                          "  max_concurrent_requests_per_instance: 2\n"
	                          "  max_queue_wait_ms: 500\n"
	                          "liveness_probe:\n"
	                          "  initial_delay: 10\n"
	                          "  failure_threshold: 3\n"
	                          "environment_variables:\n"
	                          "  A: 1\n"
	                          "  B: x\n"
	                          "app_insights_enabled: true\n"
	                          "egress_public_network_access: disabled\n"
	                          "model_mount_path: /models\n"
	                          "data_collector:\n"
	                          "  sampling_rate: 0.5\n"
	                          "  rolling_rate: hour\n"
	                          "  collections:\n"
	                          "    model_inputs:\n"
	                          "      enabled: 'True'\n"
	                          "    model_outputs:\n"
	                          "      enabled: false\n"
	                          "scale_settings:\n"
	                          "  type: target_utilization\n"
	                          "  min_instances: 1\n"
	                          "  max_instances: 3\n"
	                          "  polling_interval: 10\n"
	                          "  target_utilization_percentage: 70\n";
	static const char want[] =
	    "{\"requestSettings\":{\"requestTimeout\":\"PT3.5S\","
	    "\"maxConcurrentRequestsPerInstance\":2,"
	    "\"maxQueueWait\":\"PT0.5S\"},"
	    "\"livenessProbe\":{\"initialDelay\":\"PT10S\","
	    "\"failureThreshold\":3},"
	    "\"environmentVariables\":{\"A\":\"1\",\"B\":\"x\"},"
	    "\"appInsightsEnabled\":true,"
	    "\"egressPublicNetworkAccess\":\"Disabled\","
	    "\"modelMountPath\":\"/models\","
	    "\"dataCollector\":{\"rollingRate\":\"Hour\",\"collections\":{"
	    "\"model_inputs\":{\"dataCollectionMode\":\"Enabled\","
	    "\"samplingRate\":0.5},"
	    "\"model_outputs\":{\"dataCollectionMode\":\"Disabled\","
	    "\"samplingRate\":0.5}}},"
	    "\"scaleSettings\":{\"scaleType\":\"TargetUtilization\","
	    "\"minInstances\":1,\"maxInstances\":3,"
	    "\"pollingInterval\":\"PT10S\","
	    "\"targetUtilizationPercentage\":70}}";
	const struct fx fx[] = {{"d.yml", dep}};
	struct amlops_spec *spec = load_ok(fx, 1, AMLOPS_SPEC_ALONE);
	cJSON *w = cJSON_Parse(want);
	struct amlops_deployment *d;

	assert_non_null(w);
	assert_int_equal(spec->nendpoints, 1);
	assert_null(spec->endpoints[0]->file);
	d = spec->endpoints[0]->deployments[0];
	if (!cJSON_Compare(d->settings, w, 1)) {
		char *s = cJSON_PrintUnformatted(d->settings);

		print_message("got %s\n", s);
		free(s);
	}
	assert_true(cJSON_Compare(d->settings, w, 1));
	cJSON_Delete(w);
	amlops_spec_free(spec);
}

static void
spec__kubernetes_loads_in_both_shapes(void **state)
{
	static const char ep[] =
	    "$schema: https://azuremlschemas.azureedge.net/latest/"
	    "kubernetesOnlineEndpoint.schema.json\n"
	    "name: k8s-ep\n"
	    "compute: azureml:inferencecompute\n"
	    "auth_mode: Key\n";
	static const char dep[] = "name: blue\n"
	                          "type: kubernetes\n"
	                          "endpoint_name: k8s-ep\n"
	                          "model: azureml:m:1\n"
	                          "resources:\n"
	                          "  requests:\n"
	                          "    cpu: \"1.5\"\n"
	                          "    memory: 1Gi\n";
	static const char old[] =
	    "$schema: https://azuremlschemas.azureedge.net/latest/"
	    "k8sOnlineEndpoint.schema.json\n"
	    "name: k8s-ep\n"
	    "type: online\n"
	    "target: azureml:inferencecompute\n"
	    "auth_mode: key\n"
	    "deployments:\n"
	    "  - name: blue\n"
	    "    model: azureml:m:1\n"
	    "    resource_requirements:\n"
	    "      cpu: 1.5\n"
	    "      memory_in_gb: 1\n";
	const struct fx ga[] = {{"ep.yml", ep}, {"blue.yml", dep}};
	const struct fx pre[] = {{"ep.yml", old}};
	struct amlops_spec *a = load_ok(ga, 2, 0), *b = load_ok(pre, 1, 0);
	struct amlops_deployment *x = a->endpoints[0]->deployments[0],
	                         *y = b->endpoints[0]->deployments[0];

	assert_int_equal(a->endpoints[0]->compute, AMLOPS_COMPUTE_KUBERNETES);
	assert_string_equal(a->endpoints[0]->compute_name, "inferencecompute");
	assert_string_equal(b->endpoints[0]->compute_name, "inferencecompute");
	assert_int_equal(x->compute, AMLOPS_COMPUTE_KUBERNETES);
	assert_int_equal(y->compute, AMLOPS_COMPUTE_KUBERNETES);
	assert_true(cJSON_Compare(x->settings, y->settings, 1));
	amlops_spec_free(a);
	amlops_spec_free(b);
}

static void
spec__kubernetes_deployment_needs_a_kubernetes_endpoint(void **state)
{
	const struct fx fx[] = {
	    {"ep.yml", "name: my-ep\nauth_mode: key\n"},
	    {"blue.yml", "name: blue\ntype: kubernetes\nendpoint_name: "
	                 "my-ep\nmodel: azureml:m:1\n"},
	};

	expect_one(fx, 2, 0,
	    "blue.yml:1:7: deployment 'blue' is of type 'kubernetes' but "
	    "endpoint 'my-ep' is managed (it names no 'compute')");
	ONE("d.yml",
	    "name: blue\nendpoint_name: my-ep\nresources:\n  requests:\n"
	    "    cpu: '1'\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:3:1: 'resources' applies to kubernetes deployments only; "
	    "add 'type: kubernetes' or remove it");
}

static void
spec__yaml_syntax_error_has_the_parsers_position(void **state)
{
	ONE("e.yml", "name: my-ep\nauth_mode: [key\n", 0,
	    "e.yml:3:1: invalid YAML: did not find expected ',' or ']' while "
	    "parsing a flow sequence (started on line 2)");
}

static void
spec__tabs_get_a_human_message(void **state)
{
	ONE("e.yml", "name: my-ep\ntraffic:\n\tblue: 100\n", 0,
	    "e.yml:3:1: invalid YAML: a tab character where YAML expects "
	    "spaces; indent with spaces only");
}

static void
spec__duplicate_keys_name_the_first(void **state)
{
	ONE("e.yml", "name: my-ep\nauth_mode: key\nname: other\n", 0,
	    "e.yml:3:1: duplicate key 'name' (first given on line 1)");
}

static void
spec__unknown_keys_suggest_a_close_one(void **state)
{
	ONE("d.yml",
	    "name: blue\nendpoint_name: my-ep\ninstanse_type: Standard_F2\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:3:1: unknown key 'instanse_type' (did you mean "
	    "'instance_type'?)");
	ONE("d.yml",
	    "name: blue\nendpoint_name: my-ep\nrequest_settings:\n"
	    "  timeout: 5\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:4:3: unknown key 'timeout' in 'request_settings'");
}

static void
spec__wrong_types_say_what_was_expected(void **state)
{
	ONE("d.yml", "name: blue\nendpoint_name: my-ep\ninstance_count: two\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:3:17: 'instance_count' must be an integer from 1 to 50 "
	    "(the service's limit), not 'two'");
	ONE("d.yml",
	    "name: blue\nendpoint_name: my-ep\napp_insights_enabled: maybe\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:3:23: 'app_insights_enabled' must be true or false, not "
	    "'maybe'");
	ONE("d.yml", "name: blue\nendpoint_name: my-ep\ntags: [a, b]\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:3:7: 'tags' must be a mapping, not a list");
}

static void
spec__values_outside_their_set(void **state)
{
	ONE("e.yml", "name: my-ep\nauth_mode: password\n", 0,
	    "e.yml:2:12: 'auth_mode' must be one of 'key', 'aml_token', "
	    "'aad_token', not 'password'");
	ONE("d.yml",
	    "name: blue\nendpoint_name: my-ep\n"
	    "egress_public_network_access: open\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:3:31: 'egress_public_network_access' must be one of "
	    "'enabled', 'disabled', not 'open'");
}

static void
spec__instance_count_limits_are_the_services(void **state)
{
	ONE("d.yml", "name: blue\nendpoint_name: my-ep\ninstance_count: 51\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:3:17: 'instance_count' must be an integer from 1 to 50 "
	    "(the service's limit), not '51'");
	ONE("d.yml", "name: blue\nendpoint_name: my-ep\ninstance_count: 0\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:3:17: 'instance_count' must be an integer from 1 to 50 "
	    "(the service's limit), not '0'");
}

static void
spec__names_follow_azures_rules(void **state)
{
	ONE("endpoints/x.yml", "name: my_endpoint\nauth_mode: key\n", 0,
	    "endpoints/x.yml:1:7: endpoint name 'my_endpoint' breaks Azure's "
	    "naming rules: only letters, digits and '-' are allowed");
	ONE("e.yml", "name: my-ep-\nauth_mode: key\n", 0,
	    "e.yml:1:7: endpoint name 'my-ep-' breaks Azure's naming rules: "
	    "it must not end with '-'");
	ONE("e.yml", "name: 1ep\nauth_mode: key\n", 0,
	    "e.yml:1:7: endpoint name '1ep' breaks Azure's naming rules: it "
	    "must start with a letter");
	ONE("e.yml",
	    "name: a-very-long-endpoint-name-of-33-c\nauth_mode: key\n", 0,
	    "e.yml:1:7: endpoint name 'a-very-long-endpoint-name-of-33-c' "
	    "breaks Azure's naming rules: it must be 3 to 32 characters long, "
	    "not 33");
	ONE("d.yml", "name: bl\nendpoint_name: my-ep\n", AMLOPS_SPEC_ALONE,
	    "d.yml:1:7: deployment name 'bl' breaks Azure's naming rules: it "
	    "must be 3 to 32 characters long, not 2");
	ONE("d.yml", "name: blue\nendpoint_name: my_endpoint\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:2:16: endpoint name 'my_endpoint' breaks Azure's naming "
	    "rules: only letters, digits and '-' are allowed");
}

static void
spec__name_checks_are_public(void **state)
{
	char why[128];

	assert_true(amlops_spec_endpoint_name_ok("my-ep", why, sizeof(why)));
	assert_false(amlops_spec_endpoint_name_ok("ab", why, sizeof(why)));
	assert_string_equal(why, "it must be 3 to 32 characters long, not 2");
	assert_true(amlops_spec_deployment_name_ok("blue-", why, sizeof(why)));
	assert_false(amlops_spec_endpoint_name_ok("blue-", why, sizeof(why)));
	assert_int_equal(
	    amlops_auth_mode_parse("AMLToken"), AMLOPS_AUTH_AML_TOKEN);
	assert_int_equal(amlops_auth_mode_parse("password"), -1);
	assert_string_equal(
	    amlops_auth_mode_name(AMLOPS_AUTH_AAD_TOKEN), "aad_token");
}

static const char two_deps_ep[] = "name: my-ep\n"
                                  "auth_mode: key\n"
                                  "traffic:\n"
                                  "  blue: 90\n"
                                  "  gren: 10\n";

static void
spec__traffic_names_deployments_that_exist(void **state)
{
	const struct fx fx[] = {
	    {"ep.yml", two_deps_ep},
	    {"blue.yml", "name: blue\nendpoint_name: my-ep\n"},
	    {"green.yml", "name: green\nendpoint_name: my-ep\n"},
	};
	struct amlops_spec *spec;

	expect_one(fx, 3, 0,
	    "ep.yml:5:3: traffic names deployment 'gren', which does not "
	    "exist (did you mean 'green'?)");
	/* alone, other files' deployments are not known */
	spec = load_ok(fx, 1, AMLOPS_SPEC_ALONE);
	amlops_spec_free(spec);
}

static void
spec__traffic_values_and_sum(void **state)
{
	const struct fx empty[] = {
	    {"e.yml", "name: my-ep\nauth_mode: key\ntraffic: {}\n"}};
	struct amlops_spec *spec;

	ONE("e.yml", "name: my-ep\ntraffic:\n  blue: 90\n", AMLOPS_SPEC_ALONE,
	    "e.yml:3:3: traffic must add up to 100, not 90");
	ONE("e.yml", "name: my-ep\ntraffic:\n  blue: 120\n", AMLOPS_SPEC_ALONE,
	    "e.yml:3:9: traffic for 'blue' must be an integer from 0 to 100, "
	    "not '120'");
	spec = load_ok(empty, 1, 0);
	assert_int_equal(spec->endpoints[0]->ntraffic, 0);
	amlops_spec_free(spec);
	{
		const struct fx null[] = {{"e.yml",
		    "name: my-ep\nauth_mode: key\ntraffic:\ntags:\n"}};

		spec = load_ok(null, 1, 0);
		assert_int_equal(spec->endpoints[0]->ntraffic, 0);
		assert_int_equal(
		    cJSON_GetArraySize(spec->endpoints[0]->tags), 0);
		amlops_spec_free(spec);
	}
}

static void
spec__mirror_traffic_follows_azures_rules(void **state)
{
	ONE("e.yml",
	    "name: my-ep\ntraffic:\n  blue: 100\nmirror_traffic:\n"
	    "  green: 10\n  red: 10\n",
	    AMLOPS_SPEC_ALONE,
	    "e.yml:5:3: mirror_traffic may name one deployment, not 2 (the "
	    "service's rule)");
	ONE("e.yml",
	    "name: my-ep\ntraffic:\n  blue: 100\nmirror_traffic:\n"
	    "  green: 60\n",
	    AMLOPS_SPEC_ALONE,
	    "e.yml:5:3: mirror_traffic for 'green' must be at most 50 percent "
	    "(the service's limit), not 60");
	ONE("e.yml",
	    "name: my-ep\ntraffic:\n  blue: 100\nmirror_traffic:\n"
	    "  blue: 10\n",
	    AMLOPS_SPEC_ALONE,
	    "e.yml:5:3: deployment 'blue' takes live traffic, so it cannot "
	    "also take mirrored traffic (the service's rule)");
}

static void
spec__inline_deployments_are_checked_even_alone(void **state)
{
	static const char ep[] = "name: my-ep\n"
	                         "auth_mode: key\n"
	                         "traffic:\n"
	                         "  gren: 100\n"
	                         "mirror_traffic:\n"
	                         "  blu: 10\n"
	                         "deployments:\n"
	                         "  - name: green\n"
	                         "  - name: blue\n"
	                         "  - name: green\n";
	const struct fx fx[] = {{"e.yml", ep}};

	expect_some(fx, 1, AMLOPS_SPEC_ALONE,
	    "e.yml:4:3: traffic names deployment 'gren', which does not exist "
	    "(did you mean 'green'?)");
	expect_some(fx, 1, AMLOPS_SPEC_ALONE,
	    "e.yml:6:3: mirror_traffic names deployment 'blu', which does "
	    "not exist (did you mean 'blue'?)");
	expect_some(fx, 1, AMLOPS_SPEC_ALONE,
	    "e.yml:10:11: deployment 'green' of endpoint 'my-ep' is defined "
	    "twice; first at e.yml:8:11");
}

static void
spec__2021_and_today_spellings_do_not_mix(void **state)
{
	ONE("e.yml",
	    "name: my-ep\nauth_mode: key\ndeployments:\n  - name: blue\n"
	    "    instance_count: 1\n    scale_settings:\n"
	    "      scale_type: manual\n      instance_count: 2\n",
	    AMLOPS_SPEC_ALONE,
	    "e.yml:8:23: 'instance_count' is given twice: at the top level and "
	    "in 'scale_settings'");
	ONE("d.yml",
	    "name: blue\nendpoint_name: my-ep\nscale_settings:\n"
	    "  type: default\n  instance_count: 2\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:5:19: 'scale_settings.instance_count' is the 2021 spelling; "
	    "with 'type' write 'instance_count' at the deployment's top "
	    "level");
	ONE("d.yml",
	    "name: blue\nendpoint_name: my-ep\nmodel:\n  path: a\n"
	    "  local_path: b\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:5:15: give 'model' one path: 'path' or the 2021 "
	    "'local_path', not both");
	ONE("d.yml",
	    "name: blue\nendpoint_name: my-ep\nscale_settings:\n"
	    "  type: default\n  max_instances: 2\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:5:18: 'max_instances' applies only to scale type "
	    "'target_utilization'");
}

static void
spec__more_than_20_deployments_is_the_services_limit(void **state)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	int i;

	amlops_buf_puts(&b, "name: my-ep\nauth_mode: key\ndeployments:\n");
	for (i = 0; i < 21; i++)
		amlops_buf_printf(&b, "  - name: dep%02d\n", i);
	{
		const struct fx fx[] = {{"e.yml", amlops_buf_cstr(&b)}};

		expect_one(fx, 1, 0,
		    "e.yml:1:7: endpoint 'my-ep' has 21 deployments; the "
		    "service allows at most 20");
	}
	amlops_buf_release(&b);
}

static void
spec__names_are_unique(void **state)
{
	const struct fx deps[] = {
	    {"ep.yml", "name: my-ep\nauth_mode: key\n"},
	    {"a.yml", "name: blue\nendpoint_name: my-ep\n"},
	    {"b.yml", "name: blue\nendpoint_name: my-ep\n"},
	};
	const struct fx eps[] = {
	    {"a.yml", "name: my-ep\nauth_mode: key\n"},
	    {"b.yml", "name: my-ep\nauth_mode: key\n"},
	};
	const struct fx orphan[] = {
	    {"ep.yml", "name: my-ep\nauth_mode: key\n"},
	    {"a.yml", "name: blue\nendpoint_name: my-epp\n"},
	};

	expect_one(deps, 3, 0,
	    "b.yml:1:7: deployment 'blue' of endpoint 'my-ep' is defined "
	    "twice; first at a.yml:1:7");
	expect_one(eps, 2, 0,
	    "b.yml:1:7: endpoint 'my-ep' is defined twice; first at "
	    "a.yml:1:7");
	expect_one(orphan, 2, 0,
	    "a.yml:2:16: deployment 'blue' names endpoint 'my-epp', which no "
	    "file defines (did you mean 'my-ep'?)");
}

static void
spec__billion_laughs_fails_fast(void **state)
{
	static const char bomb[] =
	    "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\","
	    "\"lol\",\"lol\"]\n"
	    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
	    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
	    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
	    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
	    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
	    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
	    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
	    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
	int64_t t0 = amlops_now_ms();

	ONE("bomb.yml", bomb, 0,
	    "bomb.yml:6:4: this list expands to more than 100000 nodes "
	    "(aliases counted in full); manifests are far smaller");
	assert_true(amlops_now_ms() - t0 < 100);
}

static void
spec__deep_nesting_is_refused_where_it_gets_too_deep(void **state)
{
	size_t n = 5000, i;
	char *s = amlops_xmalloc(2 * n + 16);

	memcpy(s, "a: ", 3);
	for (i = 0; i < n; i++)
		s[3 + i] = '[';
	for (i = 0; i < n; i++)
		s[3 + n + i] = ']';
	s[3 + 2 * n] = '\n';
	s[4 + 2 * n] = '\0';
	ONE("deep.yml", s, 0,
	    "deep.yml:1:67: nesting is deeper than 64 levels; manifests need "
	    "a few");
	free(s);
}

static void
spec__huge_binary_and_empty_files_are_refused(void **state)
{
	struct amlops_spec *spec = NULL;
	struct amlops_diags d = AMLOPS_DIAGS_INIT;
	struct amlops_spec_file f = {"big.yml", "", AMLOPS_SPEC_MAX_FILE + 1};
	char *msg;

	/* the size alone is enough: the bytes are never read */
	assert_int_equal(
	    amlops_spec_load(&spec, &d, &f, 1, NULL), AMLOPS_EINVALID);
	assert_int_equal(d.n, 1);
	msg = amlops_diag_format(&d.v[0]);
	assert_string_equal(msg, "big.yml:1:1: file is 1048577 bytes, larger "
	                         "than the 1048576 bytes (1 MiB) a manifest "
	                         "may have");
	free(msg);
	amlops_spec_free(spec);
	amlops_diags_release(&d);

	{
		static const char bin[] = "name: my-ep\nauth\001mode: key\n";
		struct amlops_spec_file b = {"bin.yml", bin, sizeof(bin) - 1};

		spec = NULL;
		assert_int_equal(
		    amlops_spec_load(&spec, &d, &b, 1, NULL), AMLOPS_EINVALID);
		assert_int_equal(d.n, 1);
		msg = amlops_diag_format(&d.v[0]);
		assert_string_equal(msg, "bin.yml:2:5: binary byte 0x01 in a "
		                         "YAML file; expected text");
		free(msg);
		amlops_spec_free(spec);
		amlops_diags_release(&d);
	}
	{
		static const char nul[] = "name: my-ep\n\0\0\0";
		struct amlops_spec_file b = {"nul.yml", nul, sizeof(nul) - 1};

		spec = NULL;
		assert_int_equal(
		    amlops_spec_load(&spec, &d, &b, 1, NULL), AMLOPS_EINVALID);
		msg = amlops_diag_format(&d.v[0]);
		assert_string_equal(msg, "nul.yml:2:1: binary byte 0x00 in a "
		                         "YAML file; expected text");
		free(msg);
		amlops_spec_free(spec);
		amlops_diags_release(&d);
	}
	ONE("empty.yml", "", 0,
	    "empty.yml:1:1: file is empty; expected an endpoint or a "
	    "deployment");
	ONE("comments.yml", "# nothing here\n", 0,
	    "comments.yml:1:1: file is empty; expected an endpoint or a "
	    "deployment");
}

static void
spec__a_file_says_at_most_100_problems(void **state)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	struct amlops_spec *spec = NULL;
	struct amlops_diags d = AMLOPS_DIAGS_INIT;
	struct amlops_spec_file f;
	char *s;
	int i;

	amlops_buf_puts(&b, "name: my-ep\nauth_mode: key\n");
	for (i = 0; i < 5000; i++)
		amlops_buf_printf(&b, "k%d: x\n", i);
	f.path = "many.yml";
	f.data = amlops_buf_cstr(&b);
	f.len = b.len;
	assert_int_equal(
	    amlops_spec_load(&spec, &d, &f, 1, NULL), AMLOPS_EINVALID);
	assert_int_equal(d.n, 101);
	s = amlops_diag_format(&d.v[100]);
	assert_string_equal(s, "many.yml:102:1: 4900 more problems in this "
	                       "file not shown; fix these first");
	free(s);
	amlops_spec_free(spec);
	amlops_diags_release(&d);
	amlops_buf_release(&b);
}

static void
spec__too_many_anchors_are_refused(void **state)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	int i;

	amlops_buf_puts(&b, "name: my-ep\n");
	for (i = 0; i < 1025; i++)
		amlops_buf_printf(&b, "k%d: &a%d x\n", i, i);
	{
		const struct fx fx[] = {{"a.yml", amlops_buf_cstr(&b)}};

		expect_one(fx, 1, 0,
		    "a.yml:1026:8: more than 1024 anchors in one file; "
		    "manifests need none");
	}
	amlops_buf_release(&b);
}

static void
spec__invalid_utf8_is_located(void **state)
{
	ONE("u.yml", "name: my-ep\ndescription: caf\xe9\n", 0,
	    "u.yml:2:17: invalid YAML: incomplete UTF-8 octet sequence; "
	    "expected UTF-8 text");
	ONE("u.yml", "name: my-ep\ndescription: caf\xff\n", 0,
	    "u.yml:2:17: invalid YAML: invalid leading UTF-8 octet (byte "
	    "0xff); expected UTF-8 text");
}

static void
spec__second_document_is_refused(void **state)
{
	ONE("two.yml", "name: my-ep\nauth_mode: key\n---\nname: other\n", 0,
	    "two.yml:3:1: a second YAML document in one file; put each "
	    "endpoint or deployment in a file of its own");
}

static void
spec__aliases_to_open_nodes_are_refused(void **state)
{
	ONE("a.yml", "name: my-ep\ntags: &t\n  a: *t\n", 0,
	    "a.yml:3:6: alias '*t' names no anchor that is complete before "
	    "it");
}

static void
spec__other_yaml_files_are_skipped_with_a_reason(void **state)
{
	const struct fx fx[] = {
	    {"env/conda.yml",
	        "name: env\nchannels: [conda-forge]\ndependencies:\n"
	        "  - python=3.11\n"},
	    {"model.yml",
	        "$schema: https://azuremlschemas.azureedge.net/latest/"
	        "model.schema.json\nname: m\npath: model\n"},
	    {"2-create-blue.yml",
	        "$schema: https://azuremlschemas.azureedge.net/latest/"
	        "managedOnlineEndpoint.schema.json\nname: blue\n"
	        "model:\n  local_path: m.pkl\ninstance_type: x\n"},
	    {"list.yml", "- a\n- b\n"},
	    {"dup.yml", "x: 1\nx: 2\n"},
	    {"flow.yml", "{}"},
	};
	struct amlops_spec *spec = load_ok(fx, 6, 0);

	assert_int_equal(spec->nskipped, 6);
	assert_int_equal(spec->nendpoints, 0);
	assert_string_equal(spec->skipped[0], "env/conda.yml");
	assert_string_equal(spec->skipped_why[0], "a conda environment file");
	assert_string_equal(spec->skipped_why[1],
	    "its $schema names 'model', not an online endpoint or deployment");
	assert_string_equal(spec->skipped_why[2],
	    "a deployment without 'endpoint_name' (in 2021 its endpoint came "
	    "from the command line), so amlops cannot tell which endpoint it "
	    "belongs to");
	assert_string_equal(
	    spec->skipped_why[3], "its top level is a list, not a mapping");
	assert_string_equal(spec->skipped_why[4],
	    "no key marks an endpoint ('auth_mode', 'traffic', "
	    "'deployments') or a deployment ('endpoint_name', 'model', "
	    "'code_configuration')");
	amlops_spec_free(spec);
}

static void
spec__a_misspelt_endpoint_name_is_not_skipped(void **state)
{
	const struct fx fx[] = {
	    {"d.yml", "$schema: https://azuremlschemas.azureedge.net/latest/"
	              "managedOnlineDeployment.schema.json\n"
	              "name: blue\nendpoint_nme: my-ep\nmodel: azureml:m:1\n"}};

	expect_some(fx, 1, 0,
	    "d.yml:3:1: unknown key 'endpoint_nme' (did you mean "
	    "'endpoint_name'?)");
	expect_some(fx, 1, 0,
	    "d.yml:1:1: a deployment needs 'endpoint_name' (the endpoint it "
	    "belongs to)");
}

static void
spec__local_paths_stay_inside_and_exist(void **state)
{
	ONE("endpoints/d.yml",
	    "name: blue\nendpoint_name: my-ep\nmodel:\n  path: ../../x\n",
	    AMLOPS_SPEC_ALONE,
	    "endpoints/d.yml:4:9: 'model' path '../../x' leaves the "
	    "repository; local paths must stay inside it");
	ONE("d.yml",
	    "name: blue\nendpoint_name: my-ep\nmodel:\n  path: /etc/passwd\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:4:9: 'model' is the absolute path '/etc/passwd'; give a "
	    "path relative to the YAML file, inside the repository");
	{
		const struct fx fx[] = {
		    {"ep.yml", "name: my-ep\nauth_mode: key\n"},
		    {"endpoints/d.yml",
		        "name: blue\nendpoint_name: my-ep\nmodel:\n"
		        "  path: ../model-2/model\n"},
		};

		expect_one(fx, 2, 0,
		    "endpoints/d.yml:4:9: 'model' path '../model-2/model' "
		    "does not exist (looked for 'model-2/model' in the "
		    "repository)");
	}
	{
		const struct fx fx[] = {
		    {"ep.yml", "name: my-ep\nauth_mode: key\n"},
		    {"d.yml", "name: blue\nendpoint_name: my-ep\nmodel:\n"
		              "  path: ./evil\n"},
		};

		expect_one(fx, 2, 0,
		    "d.yml:4:9: 'model' path './evil' is a symlink that "
		    "leaves the repository");
	}
	{
		const struct fx fx[] = {
		    {"ep.yml", "name: my-ep\nauth_mode: key\n"},
		    {"d.yml", "name: blue\nendpoint_name: my-ep\n"
		              "code_configuration:\n"
		              "  code: model-1/onlinescoring/score.py\n"
		              "  scoring_script: score.py\n"},
		};

		expect_some(fx, 2, 0,
		    "d.yml:4:9: 'code' must be a folder, but "
		    "'model-1/onlinescoring/score.py' is a file");
	}
	{
		const struct fx fx[] = {
		    {"ep.yml", "name: my-ep\nauth_mode: key\n"},
		    {"d.yml", "name: blue\nendpoint_name: my-ep\n"
		              "code_configuration:\n"
		              "  code: model-1/onlinescoring\n"
		              "  scoring_script: main.py\n"
		              "environment: azureml:env:1\n"},
		};

		expect_one(fx, 2, 0,
		    "d.yml:5:19: 'scoring_script' path 'main.py' does not "
		    "exist (looked for 'model-1/onlinescoring/main.py' in "
		    "the repository)");
	}
	{
		const struct fx fx[] = {
		    {"ep.yml", "name: my-ep\nauth_mode: key\n"},
		    {"d.yml", "name: blue\nendpoint_name: my-ep\n"
		              "environment:\n"
		              "  image: x\n"
		              "  conda_file: model-1/environment\n"},
		};

		expect_one(fx, 2, 0,
		    "d.yml:5:15: 'conda_file' must be a file, but "
		    "'model-1/environment' is a folder");
	}
}

static void
spec__code_needs_an_environment(void **state)
{
	ONE("d.yml",
	    "name: blue\nendpoint_name: my-ep\nmodel: azureml:m:1\n"
	    "code_configuration:\n  code: azureml:c:1\n"
	    "  scoring_script: score.py\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:4:1: 'code_configuration' needs an 'environment' to run "
	    "the scoring script in");
}

static void
spec__anchors_within_limits_are_fine(void **state)
{
	static const char ep[] = "name: my-ep\n"
	                         "auth_mode: key\n"
	                         "tags: &t\n"
	                         "  team: ml\n"
	                         "deployments:\n"
	                         "  - name: blue\n"
	                         "    tags: *t\n"
	                         "    model: &m azureml:m:1\n"
	                         "  - name: green\n"
	                         "    tags: *t\n"
	                         "    model: *m\n"
	                         "identity:\n"
	                         "  type: user_assigned\n"
	                         "  user_assigned_identities:\n"
	                         "    - resource_id: /subscriptions/s/id1\n";
	const struct fx fx[] = {{"e.yml", ep}};
	struct amlops_spec *spec = load_ok(fx, 1, 0);
	struct amlops_endpoint *e = spec->endpoints[0];
	cJSON *want = cJSON_Parse("{\"type\":\"UserAssigned\","
	                          "\"userAssignedIdentities\":"
	                          "{\"/subscriptions/s/id1\":{}}}");

	assert_int_equal(e->ndeployments, 2);
	assert_string_equal(
	    cJSON_GetObjectItem(e->deployments[1]->tags, "team")->valuestring,
	    "ml");
	assert_string_equal(e->deployments[1]->model.ref, "azureml:m:1");
	assert_true(cJSON_Compare(e->identity, want, 1));
	cJSON_Delete(want);
	amlops_spec_free(spec);
}

/*
 * One row per message: the file, its YAML, and a diagnostic it must get
 * (alone, so that only the file's own rules apply).
 */
static const struct {
	const char *path;
	const char *yaml;
	const char *want;
} message_rows[] = {
    {"d.yml",
        "name: blue\nendpoint_name: my-ep\nmodel:\n  version: {a: 1}\n  name: "
        "m\n",
        "d.yml:4:12: 'version' must be a string, not a mapping"},
    {"d.yml", "name: blue\nendpoint_name: my-ep\ninstance_type: \"\"\n",
        "d.yml:3:16: 'instance_type' must not be empty"},
    {"d.yml", "name: blue\nendpoint_name: my-ep\ninstance_count: [1]\n",
        "d.yml:3:17: 'instance_count' must be an integer from 1 to 50 (the "
        "service's limit), not a list"},
    {"d.yml", "name: blue\nendpoint_name: my-ep\napp_insights_enabled: {}\n",
        "d.yml:3:23: 'app_insights_enabled' must be true or false, not a "
        "mapping"},
    {"d.yml",
        "name: blue\nendpoint_name: my-ep\ndata_collector:\n  sampling_rate: "
        "2\n  collections: {}\n",
        "d.yml:4:18: 'sampling_rate' must be a number from 0 to 1, not '2'"},
    {"d.yml",
        "name: blue\nendpoint_name: my-ep\nenvironment_variables:\n  A: {b: "
        "1}\n",
        "d.yml:4:6: 'environment_variables.A' must be a string, not a mapping"},
    {"d.yml", "name: blue\nendpoint_name: my-ep\nmodel: azureml:a:b:c\n",
        "d.yml:3:8: 'model' reference 'azureml:a:b:c' is not "
        "'azureml:NAME:VERSION' or 'azureml:NAME@LABEL'"},
    {"d.yml", "name: blue\nendpoint_name: my-ep\nmodel: ./model\n",
        "d.yml:3:8: 'model' must be a reference like 'azureml:NAME:VERSION' or "
        "a mapping with 'path', not './model'"},
    {"d.yml", "name: blue\nendpoint_name: my-ep\nmodel:\n  name: m\n",
        "d.yml:4:3: 'model' needs 'path' (a local file or folder) or a "
        "reference like 'azureml:NAME:VERSION'"},
    {"d.yml",
        "name: blue\nendpoint_name: my-ep\nenvironment: "
        "azureml:e:1\ncode_configuration:\n  scoring_script: score.py\n",
        "d.yml:5:3: 'code_configuration' needs 'code' (the folder of the "
        "scoring script)"},
    {"d.yml",
        "name: blue\nendpoint_name: my-ep\nenvironment: "
        "azureml:e:1\ncode_configuration:\n  code: azureml:c:1\n",
        "d.yml:5:3: 'code_configuration' needs 'scoring_script' (for example "
        "'score.py')"},
    {"d.yml",
        "name: blue\nendpoint_name: my-ep\nenvironment:\n  image: x\n  "
        "inference_config:\n    liveness_route: {path: /, port: 1}\n    "
        "readiness_route: {path: /, port: 1}\n",
        "d.yml:6:5: 'inference_config' needs 'scoring_route' (with 'path' and "
        "'port')"},
    {"d.yml",
        "name: blue\nendpoint_name: my-ep\nenvironment:\n  image: x\n  "
        "inference_config:\n    liveness_route: {path: /}\n    "
        "readiness_route: {path: /, port: 1}\n    scoring_route: {path: /, "
        "port: 1}\n",
        "d.yml:6:21: 'liveness_route' needs 'path' and 'port'"},
    {"d.yml", "name: blue\nendpoint_name: my-ep\nenvironment: python:3.11\n",
        "d.yml:3:14: 'environment' must be a reference like "
        "'azureml:NAME:VERSION' or a mapping with 'image', not 'python:3.11'"},
    {"d.yml",
        "name: blue\nendpoint_name: my-ep\nenvironment:\n  build:\n    "
        "dockerfile_path: Dockerfile\n",
        "d.yml:5:5: 'build' needs 'path' (the Docker build context)"},
    {"d.yml",
        "name: blue\nendpoint_name: my-ep\nenvironment:\n  conda_file: c.yml\n",
        "d.yml:4:3: 'environment' needs 'image' (or 'build' with a Docker "
        "context), or a reference like 'azureml:NAME:VERSION'"},
    {"d.yml",
        "name: blue\nendpoint_name: my-ep\nscale_settings:\n  type: default\n  "
        "scale_type: manual\n",
        "d.yml:5:15: give 'type' or the 2021 'scale_type', not both"},
    {"d.yml",
        "name: blue\nendpoint_name: my-ep\nscale_settings:\n  min_instances: "
        "1\n",
        "d.yml:4:3: 'scale_settings' needs 'type' ('default' or "
        "'target_utilization')"},
    {"d.yml",
        "name: blue\nendpoint_name: my-ep\ndata_collector:\n  rolling_rate: "
        "hour\n",
        "d.yml:4:3: 'data_collector' needs 'collections' (for example "
        "'model_inputs' and 'model_outputs')"},
    {"d.yml",
        "name: blue\ntype: kubernetes\nendpoint_name: my-ep\nresources: "
        "{}\nresource_requirements: {}\n",
        "d.yml:5:1: give 'resources' or the 2021 'resource_requirements', not "
        "both"},
    {"d.yml", "endpoint_name: my-ep\nmodel: azureml:m:1\n",
        "d.yml:1:1: a deployment needs 'name'"},
    {"d.yml",
        "name: blue\nendpoint_name: my-ep\nrequest_settings:\n  "
        "request_timeout_ms: 200000\n",
        "d.yml:4:23: 'request_timeout_ms' must be an integer from 1 to 180000 "
        "(the service's limit), not '200000'"},
    {"d.yml",
        "name: blue\nendpoint_name: my-ep\nliveness_probe:\n  period: 0\n",
        "d.yml:4:11: 'period' must be an integer from 1 to 3600, not '0'"},
    {"e.yml",
        "name: my-ep\nauth_mode: key\ndeployments:\n  - name: blue\n    "
        "endpoint_name: other\n",
        "e.yml:5:5: a deployment inside an endpoint file belongs to that "
        "endpoint; remove 'endpoint_name'"},
    {"e.yml",
        "name: my-ep\nauth_mode: key\nidentity:\n  user_assigned_identities: "
        "[]\n",
        "e.yml:4:3: 'identity' needs 'type' ('system_assigned' or "
        "'user_assigned')"},
    {"e.yml",
        "name: my-ep\nauth_mode: key\nidentity:\n  type: system_assigned\n  "
        "user_assigned_identities: []\n",
        "e.yml:5:29: 'user_assigned_identities' needs identity type "
        "'user_assigned'"},
    {"e.yml",
        "name: my-ep\nauth_mode: key\nidentity:\n  type: user_assigned\n  "
        "user_assigned_identities:\n    - id: x\n",
        "e.yml:6:7: a user-assigned identity needs 'resource_id'"},
    {"e.yml", "auth_mode: key\n", "e.yml:1:1: an endpoint needs 'name'"},
    {"e.yml",
        "name: my-ep\nauth_mode: key\ncompute: azureml:c\ntarget: azureml:c\n",
        "e.yml:4:1: give 'compute' or the 2021 'target', not both"},
    {"e.yml", "name: my-ep\ntraffic: {blue: {}}\n",
        "e.yml:2:17: traffic for 'blue' must be an integer from 0 to 100, not "
        "a mapping"},
    {"e.yml", "name: my-ep\ntraffic: {blue: 100}\n? [a]\n: b\n",
        "e.yml:3:3: a key must be a plain value, not a list (is a '{{...}}' "
        "template placeholder left unquoted?)"},
    {"d.yml",
        "base: &b {instance_count: 1}\nname: blue\nendpoint_name: my-ep\n<<: "
        "*b\n",
        "d.yml:1:1: unknown key 'base' in a deployment"},
    {"d.yml", "name: blue\nendpoint_name: my-ep\n<<: {instance_count: 1}\n",
        "d.yml:3:1: merge keys ('<<') are not supported; write the keys out"},
};

static void
spec__every_message_is_located_and_exact(void **state)
{
	size_t i;

	for (i = 0; i < AMLOPS_ARRAY_SIZE(message_rows); i++) {
		const struct fx fx[] = {
		    {message_rows[i].path, message_rows[i].yaml}};

		print_message("row %zu\n", i);
		expect_some(fx, 1, AMLOPS_SPEC_ALONE, message_rows[i].want);
	}
}

static void
spec__cross_file_messages_without_a_hint(void **state)
{
	const struct fx fx[] = {
	    {"e.yml", "name: my-ep\nauth_mode: key\ncompute: azureml:k\n"},
	    {"d.yml", "name: blue\nendpoint_name: my-ep\nmodel: azureml:m:1\n"},
	    {"g.yml", "name: green\nendpoint_name: zzzzzz\n"},
	};

	expect_some(fx, 3, 0,
	    "d.yml:1:7: deployment 'blue' is managed but endpoint 'my-ep' runs "
	    "on kubernetes; add 'type: kubernetes'");
	expect_some(fx, 3, 0,
	    "g.yml:2:16: deployment 'green' names endpoint 'zzzzzz', which no "
	    "file defines");
}

static void
spec__environment_build_context(void **state)
{
	const struct fx fx[] = {
	    {"ep.yml", "name: my-ep\nauth_mode: key\n"},
	    {"d.yml", "name: blue\nendpoint_name: my-ep\n"
	              "environment:\n"
	              "  build:\n"
	              "    path: ./docker\n"
	              "    dockerfile_path: Dockerfile\n"
	              "  inference_config:\n"
	              "    liveness_route: {path: /live, port: 8000}\n"
	              "    readiness_route: {path: /ready, port: 8000}\n"
	              "    scoring_route: {path: /score, port: 8000}\n"},
	};
	struct amlops_spec *spec = load_ok(fx, 2, 0);
	struct amlops_environment *env =
	    &spec->endpoints[0]->deployments[0]->environment;
	cJSON *port;

	assert_int_equal(env->asset.kind, AMLOPS_ASSET_INLINE);
	assert_null(env->image);
	assert_string_equal(env->build_path, "docker");
	assert_string_equal(env->dockerfile_path, "Dockerfile");
	port = cJSON_GetObjectItem(
	    cJSON_GetObjectItem(env->inference_config, "scoringRoute"), "port");
	assert_non_null(port);
	assert_int_equal(port->valueint, 8000);
	amlops_spec_free(spec);
	ONE("d.yml",
	    "name: blue\nendpoint_name: my-ep\nenvironment:\n"
	    "  image: a\n  docker:\n    image: b\n",
	    AMLOPS_SPEC_ALONE,
	    "d.yml:6:12: the image is given twice: use 'image' or the 2021 "
	    "'docker.image', not both");
}

static void
spec__diagnostics_sort_in_reading_order(void **state)
{
	struct amlops_diags d = AMLOPS_DIAGS_INIT;
	char *s;

	amlops_diags_add(&d, "b.yml", 1, 1, "third");
	amlops_diags_add(&d, "a.yml", 9, 2, "second");
	amlops_diags_add(&d, "a.yml", 3, 5, "first %d", 1);
	amlops_diags_add(&d, "a.yml", 9, 2, "second again");
	amlops_diags_sort(&d);
	s = amlops_diag_format(&d.v[0]);
	assert_string_equal(s, "a.yml:3:5: first 1");
	free(s);
	assert_string_equal(d.v[1].msg, "second");
	assert_string_equal(d.v[2].msg, "second again");
	assert_string_equal(d.v[3].msg, "third");
	amlops_diags_release(&d);
}

static void
spec__endpoint_and_deployment_copies_free_cleanly(void **state)
{
	struct amlops_endpoint *ep = amlops_endpoint_new("my-ep");
	struct amlops_deployment *d = amlops_deployment_new("blue");

	assert_string_equal(ep->name, "my-ep");
	assert_int_equal(d->instance_count, 1);
	assert_non_null(d->settings);
	assert_non_null(d->tags);
	ep->deployments = amlops_xcalloc(1, sizeof(*ep->deployments));
	ep->deployments[0] = d;
	ep->ndeployments = 1;
	assert_ptr_equal(amlops_endpoint_deployment(ep, "blue"), d);
	assert_null(amlops_endpoint_deployment(ep, "green"));
	amlops_endpoint_free(ep);
	amlops_endpoint_free(NULL);
	amlops_spec_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(spec__ga_shape_loads_into_the_model),
	    cmocka_unit_test(spec__both_shapes_normalise_to_equal_models),
	    cmocka_unit_test(spec__references_are_parsed),
	    cmocka_unit_test(spec__reference_without_version_is_refused),
	    cmocka_unit_test(spec__defaults_and_inline_names),
	    cmocka_unit_test(spec__settings_take_the_rest_shape),
	    cmocka_unit_test(spec__kubernetes_loads_in_both_shapes),
	    cmocka_unit_test(
	        spec__kubernetes_deployment_needs_a_kubernetes_endpoint),
	    cmocka_unit_test(spec__yaml_syntax_error_has_the_parsers_position),
	    cmocka_unit_test(spec__tabs_get_a_human_message),
	    cmocka_unit_test(spec__duplicate_keys_name_the_first),
	    cmocka_unit_test(spec__unknown_keys_suggest_a_close_one),
	    cmocka_unit_test(spec__wrong_types_say_what_was_expected),
	    cmocka_unit_test(spec__values_outside_their_set),
	    cmocka_unit_test(spec__instance_count_limits_are_the_services),
	    cmocka_unit_test(spec__names_follow_azures_rules),
	    cmocka_unit_test(spec__name_checks_are_public),
	    cmocka_unit_test(spec__traffic_names_deployments_that_exist),
	    cmocka_unit_test(spec__traffic_values_and_sum),
	    cmocka_unit_test(spec__mirror_traffic_follows_azures_rules),
	    cmocka_unit_test(
	        spec__more_than_20_deployments_is_the_services_limit),
	    cmocka_unit_test(spec__names_are_unique),
	    cmocka_unit_test(spec__inline_deployments_are_checked_even_alone),
	    cmocka_unit_test(spec__2021_and_today_spellings_do_not_mix),
	    cmocka_unit_test(spec__billion_laughs_fails_fast),
	    cmocka_unit_test(
	        spec__deep_nesting_is_refused_where_it_gets_too_deep),
	    cmocka_unit_test(spec__huge_binary_and_empty_files_are_refused),
	    cmocka_unit_test(spec__a_file_says_at_most_100_problems),
	    cmocka_unit_test(spec__too_many_anchors_are_refused),
	    cmocka_unit_test(spec__invalid_utf8_is_located),
	    cmocka_unit_test(spec__second_document_is_refused),
	    cmocka_unit_test(spec__aliases_to_open_nodes_are_refused),
	    cmocka_unit_test(spec__other_yaml_files_are_skipped_with_a_reason),
	    cmocka_unit_test(spec__a_misspelt_endpoint_name_is_not_skipped),
	    cmocka_unit_test(spec__local_paths_stay_inside_and_exist),
	    cmocka_unit_test(spec__environment_build_context),
	    cmocka_unit_test(spec__every_message_is_located_and_exact),
	    cmocka_unit_test(spec__cross_file_messages_without_a_hint),
	    cmocka_unit_test(spec__code_needs_an_environment),
	    cmocka_unit_test(spec__anchors_within_limits_are_fine),
	    cmocka_unit_test(spec__diagnostics_sort_in_reading_order),
	    cmocka_unit_test(spec__endpoint_and_deployment_copies_free_cleanly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
