/*
 * The endpoint model's constructors, destructors, lookups and Azure's
 * naming rules.
 */
#include <ctype.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amlops/spec.h"
#include "amlops/util.h"

struct amlops_endpoint *
amlops_endpoint_new(const char *name)
{
	struct amlops_endpoint *ep = amlops_xcalloc(1, sizeof(*ep));

	ep->name = amlops_xstrdup(name);
	ep->tags = cJSON_CreateObject();
	if (!ep->tags)
		abort();
	return ep;
}

struct amlops_deployment *
amlops_deployment_new(const char *name)
{
	struct amlops_deployment *dep = amlops_xcalloc(1, sizeof(*dep));

	dep->name = amlops_xstrdup(name);
	dep->tags = cJSON_CreateObject();
	dep->settings = cJSON_CreateObject();
	if (!dep->tags || !dep->settings)
		abort();
	dep->instance_count = 1;
	return dep;
}

void
amlops_asset_release(struct amlops_asset *a)
{
	if (!a)
		return;
	free(a->name);
	free(a->version);
	free(a->label);
	free(a->ref);
	free(a->path);
	memset(a, 0, sizeof(*a));
}

void
amlops_deployment_free(struct amlops_deployment *dep)
{
	if (!dep)
		return;
	free(dep->name);
	free(dep->endpoint_name);
	free(dep->description);
	cJSON_Delete(dep->tags);
	amlops_asset_release(&dep->model);
	amlops_asset_release(&dep->code);
	free(dep->scoring_script);
	amlops_asset_release(&dep->environment.asset);
	free(dep->environment.image);
	free(dep->environment.conda_file);
	free(dep->environment.build_path);
	free(dep->environment.dockerfile_path);
	cJSON_Delete(dep->environment.inference_config);
	free(dep->instance_type);
	cJSON_Delete(dep->settings);
	free(dep);
}

static void
traffic_free(struct amlops_traffic *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(t[i].deployment);
	free(t);
}

void
amlops_endpoint_free(struct amlops_endpoint *ep)
{
	size_t i;

	if (!ep)
		return;
	free(ep->name);
	free(ep->compute_name);
	free(ep->description);
	cJSON_Delete(ep->tags);
	traffic_free(ep->traffic, ep->ntraffic);
	traffic_free(ep->mirror, ep->nmirror);
	cJSON_Delete(ep->identity);
	free(ep->public_network_access);
	for (i = 0; i < ep->ndeployments; i++)
		amlops_deployment_free(ep->deployments[i]);
	free(ep->deployments);
	free(ep->file);
	free(ep);
}

void
amlops_spec_free(struct amlops_spec *spec)
{
	size_t i;

	if (!spec)
		return;
	for (i = 0; i < spec->nendpoints; i++)
		amlops_endpoint_free(spec->endpoints[i]);
	free(spec->endpoints);
	for (i = 0; i < spec->nfiles; i++)
		free(spec->files[i]);
	free(spec->files);
	for (i = 0; i < spec->nskipped; i++) {
		free(spec->skipped[i]);
		free(spec->skipped_why[i]);
	}
	free(spec->skipped);
	free(spec->skipped_why);
	free(spec);
}

struct amlops_endpoint *
amlops_spec_endpoint(const struct amlops_spec *spec, const char *name)
{
	size_t i;

	for (i = 0; spec && i < spec->nendpoints; i++)
		if (!strcmp(spec->endpoints[i]->name, name))
			return spec->endpoints[i];
	return NULL;
}

struct amlops_deployment *
amlops_endpoint_deployment(const struct amlops_endpoint *ep, const char *name)
{
	size_t i;

	for (i = 0; ep && i < ep->ndeployments; i++)
		if (!strcmp(ep->deployments[i]->name, name))
			return ep->deployments[i];
	return NULL;
}

static const char *const auth_modes[] = {
    [AMLOPS_AUTH_KEY] = "key",
    [AMLOPS_AUTH_AML_TOKEN] = "aml_token",
    [AMLOPS_AUTH_AAD_TOKEN] = "aad_token",
};

const char *
amlops_auth_mode_name(enum amlops_auth_mode m)
{
	if ((size_t)m >= AMLOPS_ARRAY_SIZE(auth_modes))
		return "key";
	return auth_modes[m];
}

int
amlops_auth_mode_parse(const char *s)
{
	size_t i;

	for (i = 0; i < AMLOPS_ARRAY_SIZE(auth_modes); i++)
		if (!strcasecmp(s, auth_modes[i]))
			return (int)i;
	/* the REST API's spellings */
	if (!strcasecmp(s, "amltoken"))
		return AMLOPS_AUTH_AML_TOKEN;
	if (!strcasecmp(s, "aadtoken"))
		return AMLOPS_AUTH_AAD_TOKEN;
	return -1;
}

/*
 * The rules both names share; `what` is "endpoint" or "deployment".
 */
static int
name_ok(const char *name, int dash_end_ok, char *why, size_t whylen)
{
	size_t len = strlen(name), i;

	if (len < 3 || len > 32) {
		snprintf(why, whylen,
		    "it must be 3 to 32 characters long, not %zu", len);
		return 0;
	}
	if (!isalpha((unsigned char)name[0])) {
		snprintf(why, whylen, "it must start with a letter");
		return 0;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!(c < 0x80 && (isalnum(c) || c == '-'))) {
			snprintf(why, whylen,
			    "only letters, digits and '-' are allowed");
			return 0;
		}
	}
	if (!dash_end_ok && name[len - 1] == '-') {
		snprintf(why, whylen, "it must not end with '-'");
		return 0;
	}
	return 1;
}

int
amlops_spec_endpoint_name_ok(const char *name, char *why, size_t whylen)
{
	return name_ok(name, 0, why, whylen);
}

int
amlops_spec_deployment_name_ok(const char *name, char *why, size_t whylen)
{
	return name_ok(name, 1, why, whylen);
}
