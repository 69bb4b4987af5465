/*
 * One deployment: today's deployment file, or an entry of a 2021
 * endpoint's `deployments:` list. Both land in struct amlops_deployment;
 * everything the planner compares as a whole goes into `settings` in the
 * REST API's camelCase shape.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "amlops/util.h"
#include "spec/load.h"

static void
jadd(cJSON *o, const char *key, cJSON *v)
{
	if (!v || !cJSON_AddItemToObject(o, key, v))
		abort();
}

static cJSON *
jobj(void)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		abort();
	return o;
}

static cJSON *
jstr(const char *s)
{
	cJSON *o = cJSON_CreateString(s);

	if (!o)
		abort();
	return o;
}

/* An ISO-8601 duration from milliseconds: 3000 -> "PT3S", 500 -> "PT0.5S" */
static cJSON *
jduration_ms(long ms)
{
	char buf[48];
	long frac = ms % 1000;

	if (frac == 0)
		snprintf(buf, sizeof(buf), "PT%ldS", ms / 1000);
	else {
		int n =
		    snprintf(buf, sizeof(buf), "PT%ld.%03ld", ms / 1000, frac);

		while (n > 0 && buf[n - 1] == '0')
			buf[--n] = '\0';
		snprintf(buf + n, sizeof(buf) - (size_t)n, "S");
	}
	return jstr(buf);
}

/* The version as written: `version: 1` and `version: "1"` are both "1". */
static char *
version_str(struct spec_ctx *c, const struct ynode *v)
{
	const char *s;

	if (spec_get_str(c, v, "version", &s) < 0)
		return NULL;
	return amlops_xstrdup(s);
}

/*
 * A reference: azureml:name:version, azureml:name@label,
 * azureml://registries/r/models/name/versions/v (or /labels/l), or an ARM
 * id /subscriptions/.../models/name/versions/v.
 */
static int
parse_ref(struct spec_ctx *c, const struct ynode *at, const char *key,
    const char *s, struct amlops_asset *a)
{
	const char *p;

	a->kind = AMLOPS_ASSET_REF;
	a->ref = amlops_xstrdup(s);
	a->loc.file = c->file;
	a->loc.line = at->line;
	a->loc.col = at->col;
	if (!strncmp(s, "azureml:", 8) && strncmp(s, "azureml://", 10)) {
		const char *rest = s + 8, *at_sign = strchr(rest, '@'),
		           *colon = strchr(rest, ':');

		if (at_sign && (!colon || at_sign < colon) && at_sign > rest &&
		    at_sign[1]) {
			a->name =
			    amlops_xstrndup(rest, (size_t)(at_sign - rest));
			a->label = amlops_xstrdup(at_sign + 1);
			return 0;
		}
		if (colon && colon > rest && colon[1] &&
		    !strchr(colon + 1, ':')) {
			a->name = amlops_xstrndup(rest, (size_t)(colon - rest));
			a->version = amlops_xstrdup(colon + 1);
			return 0;
		}
		if (*rest && !colon && !at_sign) {
			spec_err(c, at,
			    "'%s' reference '%s' needs a version "
			    "('azureml:%s:1') or a label "
			    "('azureml:%s@latest')",
			    key, s, rest, rest);
			return -1;
		}
		spec_err(c, at,
		    "'%s' reference '%s' is not 'azureml:NAME:VERSION' "
		    "or 'azureml:NAME@LABEL'",
		    key, s);
		return -1;
	}
	/* .../NAME/versions/V or .../NAME/labels/L */
	if ((p = strstr(s, "/versions/")) || (p = strstr(s, "/labels/"))) {
		const char *q = p, *v = strchr(p + 1, '/') + 1;

		while (q > s && q[-1] != '/')
			q--;
		if (q < p && *v && !strchr(v, '/')) {
			a->name = amlops_xstrndup(q, (size_t)(p - q));
			if (p[1] == 'v')
				a->version = amlops_xstrdup(v);
			else
				a->label = amlops_xstrdup(v);
		}
	}
	return 0;
}

static int
is_ref(const char *s)
{
	return !strncmp(s, "azureml:", 8) || !strncmp(s, "/subscriptions/", 15);
}

static int
is_remote(const char *s)
{
	return !strncmp(s, "azureml://", 10) || !strncmp(s, "https://", 8) ||
	       !strncmp(s, "http://", 7) || !strncmp(s, "wasbs://", 8) ||
	       !strncmp(s, "abfss://", 8);
}

static void
default_name(
    struct amlops_asset *a, const char *ep, const char *dep, const char *suffix)
{
	size_t le, ld, ls;

	if (a->name || !ep || !dep)
		return;
	/* "<endpoint>-<deployment>-<suffix>", without printf's cost */
	le = strlen(ep);
	ld = strlen(dep);
	ls = strlen(suffix);
	a->name = amlops_xmalloc(le + ld + ls + 3);
	memcpy(a->name, ep, le);
	a->name[le] = '-';
	memcpy(a->name + le + 1, dep, ld);
	a->name[le + 1 + ld] = '-';
	memcpy(a->name + le + ld + 2, suffix, ls + 1);
}

enum {
	M_SCHEMA,
	M_NAME,
	M_VERSION,
	M_PATH,
	M_LOCAL_PATH,
	M_TYPE,
	M_DESCRIPTION,
	M_TAGS,
	M_PROPERTIES,
	M_STAGE,
	M__N
};

static const char *const model_keys[M__N] = {
    [M_SCHEMA] = "$schema",
    [M_NAME] = "name",
    [M_VERSION] = "version",
    [M_PATH] = "path",
    [M_LOCAL_PATH] = "local_path",
    [M_TYPE] = "type",
    [M_DESCRIPTION] = "description",
    [M_TAGS] = "tags",
    [M_PROPERTIES] = "properties",
    [M_STAGE] = "stage",
};

static const char *const model_types[] = {
    "custom_model", "mlflow_model", "triton_model"};

/*
 * A model, or a code asset (`code` is set): a reference string, a local
 * path (code only), or a mapping with `path` (`local_path` in 2021).
 */
static int
parse_asset(struct spec_ctx *c, const struct ynode *v, const char *key,
    int code, struct amlops_asset *a)
{
	const struct ynode *f[M__N], *pathv;
	const char *s;
	int t;

	a->loc.file = c->file;
	a->loc.line = v->line;
	a->loc.col = v->col;
	if (v->type == YN_SCALAR) {
		if (spec_get_str(c, v, key, &s) < 0)
			return -1;
		if (is_ref(s))
			return parse_ref(c, v, key, s, a);
		if (!code) {
			spec_err(c, v,
			    "'%s' must be a reference like "
			    "'azureml:NAME:VERSION' or a mapping with "
			    "'path', not '%s'",
			    key, s);
			return -1;
		}
		if (!(a->path =
		            spec_resolve(c, v, key, c->dir, s, SPEC_WANT_DIR)))
			return -1;
		a->kind = AMLOPS_ASSET_INLINE;
		return 0;
	}
	if (spec_expect(c, v, key, YN_MAP) < 0)
		return -1;
	spec_fields(
	    c, v, code ? "'code'" : "'model'", model_keys, M__N, f, NULL);
	if (f[M_PATH] && f[M_LOCAL_PATH]) {
		spec_err(c, f[M_LOCAL_PATH],
		    "give '%s' one path: 'path' or the "
		    "2021 'local_path', not both",
		    key);
		return -1;
	}
	if (f[M_NAME] && spec_get_str(c, f[M_NAME], "name", &s) == 0)
		a->name = amlops_xstrdup(s);
	if (f[M_VERSION])
		a->version = version_str(c, f[M_VERSION]);
	if (f[M_TYPE])
		spec_get_enum(c, f[M_TYPE], "type", model_types,
		    AMLOPS_ARRAY_SIZE(model_types), &t);
	if (f[M_TAGS]) {
		cJSON *tags = NULL;

		if (spec_get_strmap(c, f[M_TAGS], "tags", &tags) == 0)
			cJSON_Delete(tags);
	}
	if (f[M_DESCRIPTION])
		spec_get_str(c, f[M_DESCRIPTION], "description", &s);
	pathv = f[M_PATH] ? f[M_PATH] : f[M_LOCAL_PATH];
	if (!pathv) {
		if (a->name && a->version) {
			a->kind = AMLOPS_ASSET_REF;
			a->ref = amlops_xasprintf(
			    "azureml:%s:%s", a->name, a->version);
			return 0;
		}
		spec_err(c, v,
		    "'%s' needs 'path' (a local %s) or a reference "
		    "like 'azureml:NAME:VERSION'",
		    key, code ? "folder" : "file or folder");
		return -1;
	}
	if (spec_get_str(c, pathv, f[M_PATH] ? "path" : "local_path", &s) < 0)
		return -1;
	if (is_remote(s)) {
		a->kind = AMLOPS_ASSET_REF;
		a->ref = amlops_xstrdup(s);
		return 0;
	}
	if (!(a->path = spec_resolve(c, pathv, key, c->dir, s,
	          code ? SPEC_WANT_DIR : SPEC_WANT_ANY)))
		return -1;
	a->kind = AMLOPS_ASSET_INLINE;
	return 0;
}

enum { CC_CODE, CC_SCORING_SCRIPT, CC__N };

static const char *const cc_keys[CC__N] = {
    [CC_CODE] = "code",
    [CC_SCORING_SCRIPT] = "scoring_script",
};

static int
parse_code_configuration(
    struct spec_ctx *c, const struct ynode *v, struct amlops_deployment *dep)
{
	const struct ynode *f[CC__N];
	const char *s;

	if (spec_expect(c, v, "code_configuration", YN_MAP) < 0)
		return -1;
	spec_fields(c, v, "'code_configuration'", cc_keys, CC__N, f, NULL);
	if (!f[CC_CODE]) {
		spec_err(c, v,
		    "'code_configuration' needs 'code' (the folder of "
		    "the scoring script)");
		return -1;
	}
	if (parse_asset(c, f[CC_CODE], "code", 1, &dep->code) < 0)
		return -1;
	if (!f[CC_SCORING_SCRIPT]) {
		spec_err(c, v,
		    "'code_configuration' needs 'scoring_script' (for "
		    "example 'score.py')");
		return -1;
	}
	if (spec_get_str(c, f[CC_SCORING_SCRIPT], "scoring_script", &s) < 0)
		return -1;
	dep->scoring_script = amlops_xstrdup(s);
	if (dep->code.kind == AMLOPS_ASSET_INLINE &&
	    !(c->opts->flags & AMLOPS_SPEC_ALONE) && c->opts->path_kind) {
		char *p = spec_resolve(c, f[CC_SCORING_SCRIPT],
		    "scoring_script", dep->code.path, s, SPEC_WANT_FILE);

		if (!p)
			return -1;
		if (strncmp(p, dep->code.path, strlen(dep->code.path))) {
			spec_err(c, f[CC_SCORING_SCRIPT],
			    "'scoring_script' '%s' must be inside the code "
			    "folder '%s'",
			    s, dep->code.path);
			free(p);
			return -1;
		}
		free(p);
	}
	return 0;
}

/* inference_config: {liveness_route: {path, port}, ...} */
static cJSON *
parse_inference_config(struct spec_ctx *c, const struct ynode *v)
{
	static const char *const keys[] = {
	    "liveness_route", "readiness_route", "scoring_route"};
	static const char *const rest[] = {
	    "livenessRoute", "readinessRoute", "scoringRoute"};
	static const char *const route_keys[] = {"path", "port"};
	const struct ynode *f[3], *r[2];
	cJSON *o;
	size_t i;
	const char *s;
	long port;

	if (spec_expect(c, v, "inference_config", YN_MAP) < 0)
		return NULL;
	spec_fields(c, v, "'inference_config'", keys, 3, f, NULL);
	o = jobj();
	for (i = 0; i < 3; i++) {
		cJSON *route;

		if (!f[i]) {
			spec_err(c, v,
			    "'inference_config' needs '%s' (with "
			    "'path' and 'port')",
			    keys[i]);
			continue;
		}
		if (spec_expect(c, f[i], keys[i], YN_MAP) < 0)
			continue;
		spec_fields(c, f[i], keys[i], route_keys, 2, r, NULL);
		if (!r[0] || !r[1]) {
			spec_err(
			    c, f[i], "'%s' needs 'path' and 'port'", keys[i]);
			continue;
		}
		if (spec_get_str(c, r[0], "path", &s) < 0 ||
		    spec_get_int(c, r[1], "port", 1, 65535, NULL, &port) < 0)
			continue;
		route = jobj();
		jadd(route, "path", jstr(s));
		jadd(route, "port", cJSON_CreateNumber((double)port));
		jadd(o, rest[i], route);
	}
	return o;
}

enum {
	E_SCHEMA,
	E_NAME,
	E_VERSION,
	E_DESCRIPTION,
	E_TAGS,
	E_PROPERTIES,
	E_IMAGE,
	E_CONDA_FILE,
	E_BUILD,
	E_INFERENCE_CONFIG,
	E_OS_TYPE,
	E_PATH,
	E_DOCKER,
	E__N
};

static const char *const env_keys[E__N] = {
    [E_SCHEMA] = "$schema",
    [E_NAME] = "name",
    [E_VERSION] = "version",
    [E_DESCRIPTION] = "description",
    [E_TAGS] = "tags",
    [E_PROPERTIES] = "properties",
    [E_IMAGE] = "image",
    [E_CONDA_FILE] = "conda_file",
    [E_BUILD] = "build",
    [E_INFERENCE_CONFIG] = "inference_config",
    [E_OS_TYPE] = "os_type",
    [E_PATH] = "path",
    [E_DOCKER] = "docker",
};

static int
parse_environment(
    struct spec_ctx *c, const struct ynode *v, struct amlops_environment *env)
{
	static const char *const os_types[] = {"linux", "windows"};
	const struct ynode *f[E__N], *imagev = NULL;
	const char *s, *base = c->dir;
	char *basebuf = NULL;
	int t, rc = -1;

	env->asset.loc.file = c->file;
	env->asset.loc.line = v->line;
	env->asset.loc.col = v->col;
	if (v->type == YN_SCALAR) {
		if (spec_get_str(c, v, "environment", &s) < 0)
			return -1;
		if (!is_ref(s)) {
			spec_err(c, v,
			    "'environment' must be a reference like "
			    "'azureml:NAME:VERSION' or a mapping with "
			    "'image', not '%s'",
			    s);
			return -1;
		}
		return parse_ref(c, v, "environment", s, &env->asset);
	}
	if (spec_expect(c, v, "environment", YN_MAP) < 0)
		return -1;
	spec_fields(c, v, "'environment'", env_keys, E__N, f, NULL);
	if (f[E_NAME] && spec_get_str(c, f[E_NAME], "name", &s) == 0)
		env->asset.name = amlops_xstrdup(s);
	if (f[E_VERSION])
		env->asset.version = version_str(c, f[E_VERSION]);
	if (f[E_DESCRIPTION])
		spec_get_str(c, f[E_DESCRIPTION], "description", &s);
	if (f[E_OS_TYPE])
		spec_get_enum(c, f[E_OS_TYPE], "os_type", os_types, 2, &t);
	if (f[E_TAGS]) {
		cJSON *tags = NULL;

		if (spec_get_strmap(c, f[E_TAGS], "tags", &tags) == 0)
			cJSON_Delete(tags);
	}
	/* 2021: `path` is the folder `conda_file` is relative to */
	if (f[E_PATH]) {
		if (spec_get_str(c, f[E_PATH], "path", &s) < 0)
			goto done;
		if (!(basebuf = spec_resolve(
		          c, f[E_PATH], "path", c->dir, s, SPEC_WANT_DIR)))
			goto done;
		base = basebuf;
	}
	if (f[E_DOCKER]) {
		static const char *const docker_keys[] = {"image"};
		const struct ynode *d[1];

		if (spec_expect(c, f[E_DOCKER], "docker", YN_MAP) < 0)
			goto done;
		spec_fields(
		    c, f[E_DOCKER], "'docker'", docker_keys, 1, d, NULL);
		imagev = d[0];
		if (f[E_IMAGE] && imagev) {
			spec_err(c, imagev,
			    "the image is given twice: use "
			    "'image' or the 2021 'docker.image', "
			    "not both");
			goto done;
		}
	}
	if (f[E_IMAGE])
		imagev = f[E_IMAGE];
	if (imagev) {
		if (spec_get_str(c, imagev, "image", &s) < 0)
			goto done;
		env->image = amlops_xstrdup(s);
	}
	if (f[E_CONDA_FILE]) {
		if (spec_get_str(c, f[E_CONDA_FILE], "conda_file", &s) < 0)
			goto done;
		if (!strncmp(s, "file:", 5))
			s += 5;
		if (!(env->conda_file = spec_resolve(c, f[E_CONDA_FILE],
		          "conda_file", base, s, SPEC_WANT_FILE)))
			goto done;
	}
	if (f[E_BUILD]) {
		static const char *const build_keys[] = {
		    "path", "dockerfile_path"};
		const struct ynode *b[2];

		if (spec_expect(c, f[E_BUILD], "build", YN_MAP) < 0)
			goto done;
		spec_fields(c, f[E_BUILD], "'build'", build_keys, 2, b, NULL);
		if (!b[0]) {
			spec_err(c, f[E_BUILD],
			    "'build' needs 'path' (the Docker "
			    "build context)");
			goto done;
		}
		if (spec_get_str(c, b[0], "path", &s) < 0)
			goto done;
		if (!(env->build_path = spec_resolve(
		          c, b[0], "build.path", c->dir, s, SPEC_WANT_DIR)))
			goto done;
		if (b[1]) {
			char *p;

			if (spec_get_str(c, b[1], "dockerfile_path", &s) < 0)
				goto done;
			if (!(p = spec_resolve(c, b[1], "dockerfile_path",
			          env->build_path, s, SPEC_WANT_FILE)))
				goto done;
			free(p);
			env->dockerfile_path = amlops_xstrdup(s);
		}
	}
	if (f[E_INFERENCE_CONFIG] &&
	    !(env->inference_config =
	            parse_inference_config(c, f[E_INFERENCE_CONFIG])))
		goto done;
	if (!env->image && !env->build_path) {
		if (env->asset.name && env->asset.version && !env->conda_file) {
			env->asset.kind = AMLOPS_ASSET_REF;
			env->asset.ref = amlops_xasprintf("azureml:%s:%s",
			    env->asset.name, env->asset.version);
			rc = 0;
			goto done;
		}
		spec_err(c, v,
		    "'environment' needs 'image' (or 'build' with a "
		    "Docker context), or a reference like "
		    "'azureml:NAME:VERSION'");
		goto done;
	}
	env->asset.kind = AMLOPS_ASSET_INLINE;
	rc = 0;
done:
	free(basebuf);
	return rc;
}

/* request_settings -> requestSettings */
static void
parse_request_settings(struct spec_ctx *c, const struct ynode *v, cJSON *set)
{
	static const char *const keys[] = {"request_timeout_ms",
	    "max_concurrent_requests_per_instance", "max_queue_wait_ms"};
	const struct ynode *f[3];
	cJSON *o;
	long x;

	if (spec_expect(c, v, "request_settings", YN_MAP) < 0)
		return;
	spec_fields(c, v, "'request_settings'", keys, 3, f, NULL);
	o = jobj();
	if (f[0] && spec_get_int(c, f[0], "request_timeout_ms", 1, 180000,
	                " (the service's limit)", &x) == 0)
		jadd(o, "requestTimeout", jduration_ms(x));
	if (f[1] &&
	    spec_get_int(c, f[1], "max_concurrent_requests_per_instance", 1,
	        1000, NULL, &x) == 0)
		jadd(o, "maxConcurrentRequestsPerInstance",
		    cJSON_CreateNumber((double)x));
	if (f[2] && spec_get_int(c, f[2], "max_queue_wait_ms", 0, 3600000, NULL,
	                &x) == 0)
		jadd(o, "maxQueueWait", jduration_ms(x));
	jadd(set, "requestSettings", o);
}

/* liveness_probe, readiness_probe, startup_probe; times in seconds */
static void
parse_probe(struct spec_ctx *c, const struct ynode *v, const char *key,
    const char *rest, cJSON *set)
{
	static const char *const keys[] = {"initial_delay", "period", "timeout",
	    "success_threshold", "failure_threshold"};
	static const char *const rkeys[] = {"initialDelay", "period", "timeout",
	    "successThreshold", "failureThreshold"};
	const struct ynode *f[5];
	cJSON *o;
	size_t i;
	long x;

	if (spec_expect(c, v, key, YN_MAP) < 0)
		return;
	spec_fields(c, v, key, keys, 5, f, NULL);
	o = jobj();
	for (i = 0; i < 5; i++) {
		if (!f[i] || spec_get_int(c, f[i], keys[i], i == 0 ? 0 : 1,
		                 3600, NULL, &x) < 0)
			continue;
		if (i < 3)
			jadd(o, rkeys[i], jduration_ms(x * 1000));
		else
			jadd(o, rkeys[i], cJSON_CreateNumber((double)x));
	}
	jadd(set, rest, o);
}

/*
 * scale_settings: today's {type: default|target_utilization, ...} or the
 * 2021 {scale_type: manual|auto, instance_count, min/max_instances}.
 */
static void
parse_scale_settings(struct spec_ctx *c, const struct ynode *v,
    struct amlops_deployment *dep, const struct ynode *top_count)
{
	enum {
		S_TYPE,
		S_SCALE_TYPE,
		S_INSTANCE_COUNT,
		S_MIN,
		S_MAX,
		S_POLLING,
		S_TARGET,
		S__N
	};
	static const char *const keys[S__N] = {"type", "scale_type",
	    "instance_count", "min_instances", "max_instances",
	    "polling_interval", "target_utilization_percentage"};
	static const char *const types[] = {"default", "target_utilization"};
	static const char *const types2021[] = {"manual", "auto"};
	const struct ynode *f[S__N];
	cJSON *o;
	int t = -1, target;
	long x;
	size_t i;

	if (spec_expect(c, v, "scale_settings", YN_MAP) < 0)
		return;
	spec_fields(c, v, "'scale_settings'", keys, S__N, f, NULL);
	if (f[S_TYPE] && f[S_SCALE_TYPE]) {
		spec_err(c, f[S_SCALE_TYPE],
		    "give 'type' or the 2021 "
		    "'scale_type', not both");
		return;
	}
	if (f[S_TYPE]) {
		if (spec_get_enum(c, f[S_TYPE], "type", types, 2, &t) < 0)
			return;
		target = t == 1;
	} else if (f[S_SCALE_TYPE]) {
		if (spec_get_enum(
		        c, f[S_SCALE_TYPE], "scale_type", types2021, 2, &t) < 0)
			return;
		target = t == 1;
	} else {
		spec_err(c, v,
		    "'scale_settings' needs 'type' ('default' or "
		    "'target_utilization')");
		return;
	}
	if (f[S_INSTANCE_COUNT]) {
		if (!f[S_SCALE_TYPE]) {
			spec_err(c, f[S_INSTANCE_COUNT],
			    "'scale_settings.instance_count' is the 2021 "
			    "spelling; with 'type' write 'instance_count' "
			    "at the deployment's top level");
		} else if (top_count) {
			spec_err(c, f[S_INSTANCE_COUNT],
			    "'instance_count' is given twice: at the top "
			    "level and in 'scale_settings'");
		} else if (spec_get_int(c, f[S_INSTANCE_COUNT],
		               "instance_count", 1, 50,
		               " (the service's limit)", &x) == 0)
			dep->instance_count = (int)x;
	}
	o = jobj();
	jadd(o, "scaleType", jstr(target ? "TargetUtilization" : "Default"));
	for (i = S_MIN; i < S__N; i++) {
		static const char *const rest[S__N] = {[S_MIN] = "minInstances",
		    [S_MAX] = "maxInstances",
		    [S_POLLING] = "pollingInterval",
		    [S_TARGET] = "targetUtilizationPercentage"};

		if (!f[i])
			continue;
		if (!target) {
			/* 2021 manual scaling wrote min/max and ignored them */
			if (f[S_SCALE_TYPE] && (i == S_MIN || i == S_MAX))
				continue;
			spec_err(c, f[i],
			    "'%s' applies only to scale type "
			    "'target_utilization'",
			    keys[i]);
			continue;
		}
		if (spec_get_int(c, f[i], keys[i], i == S_MIN ? 0 : 1,
		        i == S_TARGET    ? 100
		        : i == S_POLLING ? 3600
		                         : 50,
		        i == S_MIN || i == S_MAX ? " (the service's limit)"
		                                 : NULL,
		        &x) < 0)
			continue;
		if (i == S_POLLING)
			jadd(o, rest[i], jduration_ms(x * 1000));
		else
			jadd(o, rest[i], cJSON_CreateNumber((double)x));
	}
	jadd(dep->settings, "scaleSettings", o);
}

/* data_collector -> dataCollector */
static void
parse_data_collector(struct spec_ctx *c, const struct ynode *v, cJSON *set)
{
	static const char *const keys[] = {
	    "collections", "sampling_rate", "rolling_rate", "request_logging"};
	static const char *const rates[] = {
	    "year", "month", "day", "hour", "minute"};
	static const char *const rrates[] = {
	    "Year", "Month", "Day", "Hour", "Minute"};
	static const char *const ckeys[] = {
	    "enabled", "data", "client_id", "sampling_rate"};
	static const char *const dkeys[] = {"name", "path", "version"};
	const struct ynode *f[4];
	cJSON *o, *cols;
	double rate = -1, x;
	size_t i, j;
	int r;

	if (spec_expect(c, v, "data_collector", YN_MAP) < 0)
		return;
	spec_fields(c, v, "'data_collector'", keys, 4, f, NULL);
	o = jobj();
	if (f[1] && spec_get_num(c, f[1], "sampling_rate", 0, 1, &x) == 0)
		rate = x;
	if (f[2] && spec_get_enum(c, f[2], "rolling_rate", rates, 5, &r) == 0)
		jadd(o, "rollingRate", jstr(rrates[r]));
	if (f[3] && spec_expect(c, f[3], "request_logging", YN_MAP) == 0) {
		static const char *const lkeys[] = {"capture_headers"};
		const struct ynode *l[1];
		cJSON *rl = jobj(), *h;

		spec_fields(c, f[3], "'request_logging'", lkeys, 1, l, NULL);
		if (l[0] &&
		    spec_expect(c, l[0], "capture_headers", YN_SEQ) == 0) {
			h = cJSON_CreateArray();
			for (i = 0; i < l[0]->n; i++) {
				const char *s;

				if (spec_get_str(c, l[0]->u.kids[i],
				        "capture_headers", &s) == 0)
					cJSON_AddItemToArray(h, jstr(s));
			}
			jadd(rl, "captureHeaders", h);
		}
		jadd(o, "requestLogging", rl);
	}
	if (!f[0]) {
		spec_err(c, v,
		    "'data_collector' needs 'collections' (for "
		    "example 'model_inputs' and 'model_outputs')");
		cJSON_Delete(o);
		return;
	}
	if (spec_expect(c, f[0], "collections", YN_MAP) < 0) {
		cJSON_Delete(o);
		return;
	}
	cols = jobj();
	for (i = 0; i < f[0]->n; i++) {
		const struct ynode *k = f[0]->u.kids[2 * i],
		                   *cv = f[0]->u.kids[2 * i + 1], *cf[4];
		cJSON *col;
		int on = 1;

		if (k->type != YN_SCALAR ||
		    spec_expect(c, cv, k->u.s.str, YN_MAP) < 0)
			continue;
		spec_fields(c, cv, "a collection", ckeys, 4, cf, NULL);
		col = jobj();
		if (cf[0]) {
			/* a bool, or the string 'True' the examples use */
			const struct ynode *e = cf[0];

			if (e->type == YN_SCALAR && !e->plain &&
			    (!strcasecmp(e->u.s.str, "true") ||
			        !strcasecmp(e->u.s.str, "false")))
				on = !strcasecmp(e->u.s.str, "true");
			else if (spec_get_bool(c, e, "enabled", &on) < 0)
				on = 1;
		}
		jadd(col, "dataCollectionMode",
		    jstr(on ? "Enabled" : "Disabled"));
		if (cf[2]) {
			const char *s;

			if (spec_get_str(c, cf[2], "client_id", &s) == 0)
				jadd(col, "clientId", jstr(s));
		}
		x = rate;
		if (cf[3] &&
		    spec_get_num(c, cf[3], "sampling_rate", 0, 1, &x) < 0)
			x = rate;
		if (x >= 0)
			jadd(col, "samplingRate", cJSON_CreateNumber(x));
		if (cf[1] && spec_expect(c, cf[1], "data", YN_MAP) == 0) {
			const struct ynode *d[3];
			cJSON *data = jobj();

			spec_fields(c, cf[1], "'data'", dkeys, 3, d, NULL);
			for (j = 0; j < 3; j++) {
				const char *s;

				if (d[j] &&
				    spec_get_str(c, d[j], dkeys[j], &s) == 0)
					jadd(data, dkeys[j], jstr(s));
			}
			jadd(col, "data", data);
		}
		jadd(cols, k->u.s.str, col);
	}
	jadd(o, "collections", cols);
	jadd(set, "dataCollector", o);
}

/* Kubernetes requests/limits: today's `resources`, 2021's
 * `resource_requirements` {cpu, memory_in_gb, gpu}. */
static void
parse_resources(struct spec_ctx *c, const struct ynode *v, cJSON *set)
{
	static const char *const keys[] = {"requests", "limits"};
	static const char *const rkeys[] = {"cpu", "memory", "nvidia.com/gpu"};
	static const char *const jkeys[] = {"cpu", "memory", "gpu"};
	const struct ynode *f[2], *r[3];
	cJSON *o;
	size_t i, j;

	if (spec_expect(c, v, "resources", YN_MAP) < 0)
		return;
	spec_fields(c, v, "'resources'", keys, 2, f, NULL);
	o = jobj();
	for (i = 0; i < 2; i++) {
		cJSON *x;

		if (!f[i] || spec_expect(c, f[i], keys[i], YN_MAP) < 0)
			continue;
		spec_fields(c, f[i], keys[i], rkeys, 3, r, NULL);
		x = jobj();
		for (j = 0; j < 3; j++) {
			const char *s;

			if (r[j] && spec_get_str(c, r[j], rkeys[j], &s) == 0)
				jadd(x, jkeys[j], jstr(s));
		}
		jadd(o,
		    i == 0 ? "containerResourceRequests"
		           : "containerResourceLimits",
		    x);
	}
	jadd(set, "containerResourceRequirements", o);
}

static void
parse_resource_requirements(
    struct spec_ctx *c, const struct ynode *v, cJSON *set)
{
	static const char *const keys[] = {"cpu", "memory_in_gb", "gpu"};
	const struct ynode *f[3];
	cJSON *o, *req;
	char buf[64];
	double x;

	if (spec_expect(c, v, "resource_requirements", YN_MAP) < 0)
		return;
	spec_fields(c, v, "'resource_requirements'", keys, 3, f, NULL);
	o = jobj();
	req = jobj();
	if (f[0] && spec_get_num(c, f[0], "cpu", 0, 1024, &x) == 0) {
		snprintf(buf, sizeof(buf), "%g", x);
		jadd(req, "cpu", jstr(buf));
	}
	if (f[1] && spec_get_num(c, f[1], "memory_in_gb", 0, 4096, &x) == 0) {
		snprintf(buf, sizeof(buf), "%gGi", x);
		jadd(req, "memory", jstr(buf));
	}
	if (f[2] && spec_get_num(c, f[2], "gpu", 0, 64, &x) == 0) {
		snprintf(buf, sizeof(buf), "%g", x);
		jadd(req, "gpu", jstr(buf));
	}
	jadd(o, "containerResourceRequests", req);
	jadd(set, "containerResourceRequirements", o);
}

enum {
	D_SCHEMA,
	D_NAME,
	D_ENDPOINT_NAME,
	D_TYPE,
	D_DESCRIPTION,
	D_TAGS,
	D_PROPERTIES,
	D_MODEL,
	D_CODE_CONFIGURATION,
	D_ENVIRONMENT,
	D_INSTANCE_TYPE,
	D_INSTANCE_COUNT,
	D_SCALE_SETTINGS,
	D_REQUEST_SETTINGS,
	D_LIVENESS_PROBE,
	D_READINESS_PROBE,
	D_STARTUP_PROBE,
	D_ENVIRONMENT_VARIABLES,
	D_APP_INSIGHTS_ENABLED,
	D_EGRESS,
	D_DATA_COLLECTOR,
	D_MODEL_MOUNT_PATH,
	D_RESOURCES,
	D_RESOURCE_REQUIREMENTS,
	D__N
};

static const char *const dep_keys[D__N] = {
    [D_SCHEMA] = "$schema",
    [D_NAME] = "name",
    [D_ENDPOINT_NAME] = "endpoint_name",
    [D_TYPE] = "type",
    [D_DESCRIPTION] = "description",
    [D_TAGS] = "tags",
    [D_PROPERTIES] = "properties",
    [D_MODEL] = "model",
    [D_CODE_CONFIGURATION] = "code_configuration",
    [D_ENVIRONMENT] = "environment",
    [D_INSTANCE_TYPE] = "instance_type",
    [D_INSTANCE_COUNT] = "instance_count",
    [D_SCALE_SETTINGS] = "scale_settings",
    [D_REQUEST_SETTINGS] = "request_settings",
    [D_LIVENESS_PROBE] = "liveness_probe",
    [D_READINESS_PROBE] = "readiness_probe",
    [D_STARTUP_PROBE] = "startup_probe",
    [D_ENVIRONMENT_VARIABLES] = "environment_variables",
    [D_APP_INSIGHTS_ENABLED] = "app_insights_enabled",
    [D_EGRESS] = "egress_public_network_access",
    [D_DATA_COLLECTOR] = "data_collector",
    [D_MODEL_MOUNT_PATH] = "model_mount_path",
    [D_RESOURCES] = "resources",
    [D_RESOURCE_REQUIREMENTS] = "resource_requirements",
};

struct amlops_deployment *
spec_parse_deployment(struct spec_ctx *c, const struct ynode *m,
    const char *endpoint, int inline_2021, int kubernetes,
    const struct ynode **endpoint_name_at)
{
	static const char *const dep_types[] = {"managed", "kubernetes"};
	static const char *const egress[] = {"enabled", "disabled"};
	const struct ynode *f[D__N], *k[D__N];
	struct amlops_deployment *dep;
	const char *name, *s;
	char why[160];
	long x;
	int t;

	spec_fields(c, m, inline_2021 ? "an inline deployment" : "a deployment",
	    dep_keys, D__N, f, k);
	if (!f[D_NAME]) {
		spec_err(c, m, "a deployment needs 'name'");
		return NULL;
	}
	if (spec_get_str(c, f[D_NAME], "name", &name) < 0)
		return NULL;
	if (!amlops_spec_deployment_name_ok(name, why, sizeof(why)))
		spec_err(c, f[D_NAME],
		    "deployment name '%s' breaks Azure's naming "
		    "rules: %s",
		    name, why);
	dep = amlops_deployment_new(name);
	dep->loc.file = c->file;
	dep->loc.line = f[D_NAME]->line;
	dep->loc.col = f[D_NAME]->col;
	dep->compute =
	    kubernetes ? AMLOPS_COMPUTE_KUBERNETES : AMLOPS_COMPUTE_MANAGED;

	if (inline_2021) {
		if (f[D_ENDPOINT_NAME])
			spec_err(c, k[D_ENDPOINT_NAME],
			    "a deployment inside an endpoint file belongs to "
			    "that endpoint; remove 'endpoint_name'");
		dep->endpoint_name = amlops_xstrdup(endpoint);
	} else if (f[D_ENDPOINT_NAME]) {
		if (spec_get_str(c, f[D_ENDPOINT_NAME], "endpoint_name", &s) ==
		    0) {
			if (!amlops_spec_endpoint_name_ok(s, why, sizeof(why)))
				spec_err(c, f[D_ENDPOINT_NAME],
				    "endpoint name '%s' breaks Azure's naming "
				    "rules: %s",
				    s, why);
			dep->endpoint_name = amlops_xstrdup(s);
			if (endpoint_name_at)
				*endpoint_name_at = f[D_ENDPOINT_NAME];
		}
	} else
		spec_err(c, m,
		    "a deployment needs 'endpoint_name' (the endpoint "
		    "it belongs to)");

	if (f[D_TYPE] &&
	    spec_get_enum(c, f[D_TYPE], "type", dep_types, 2, &t) == 0)
		dep->compute =
		    t ? AMLOPS_COMPUTE_KUBERNETES : AMLOPS_COMPUTE_MANAGED;
	if (f[D_DESCRIPTION] &&
	    spec_get_str(c, f[D_DESCRIPTION], "description", &s) == 0)
		dep->description = amlops_xstrdup(s);
	if (f[D_TAGS]) {
		cJSON *tags = NULL;

		if (spec_get_strmap(c, f[D_TAGS], "tags", &tags) == 0) {
			cJSON_Delete(dep->tags);
			dep->tags = tags;
		}
	}
	if (f[D_PROPERTIES]) {
		cJSON *p = NULL;

		if (spec_get_strmap(c, f[D_PROPERTIES], "properties", &p) == 0)
			jadd(dep->settings, "properties", p);
	}
	if (f[D_MODEL] &&
	    parse_asset(c, f[D_MODEL], "model", 0, &dep->model) == 0 &&
	    dep->model.kind == AMLOPS_ASSET_INLINE)
		default_name(&dep->model, dep->endpoint_name, name, "model");
	if (f[D_CODE_CONFIGURATION] && !f[D_ENVIRONMENT])
		spec_err(c, k[D_CODE_CONFIGURATION],
		    "'code_configuration' needs an 'environment' to run the "
		    "scoring script in");
	if (f[D_CODE_CONFIGURATION] &&
	    parse_code_configuration(c, f[D_CODE_CONFIGURATION], dep) == 0 &&
	    dep->code.kind == AMLOPS_ASSET_INLINE)
		default_name(&dep->code, dep->endpoint_name, name, "code");
	if (f[D_ENVIRONMENT] &&
	    parse_environment(c, f[D_ENVIRONMENT], &dep->environment) == 0 &&
	    dep->environment.asset.kind == AMLOPS_ASSET_INLINE)
		default_name(
		    &dep->environment.asset, dep->endpoint_name, name, "env");
	if (f[D_INSTANCE_TYPE] &&
	    spec_get_str(c, f[D_INSTANCE_TYPE], "instance_type", &s) == 0)
		dep->instance_type = amlops_xstrdup(s);
	if (f[D_INSTANCE_COUNT] &&
	    spec_get_int(c, f[D_INSTANCE_COUNT], "instance_count", 1, 50,
	        " (the service's limit)", &x) == 0)
		dep->instance_count = (int)x;
	if (f[D_SCALE_SETTINGS])
		parse_scale_settings(
		    c, f[D_SCALE_SETTINGS], dep, f[D_INSTANCE_COUNT]);
	if (f[D_REQUEST_SETTINGS])
		parse_request_settings(c, f[D_REQUEST_SETTINGS], dep->settings);
	if (f[D_LIVENESS_PROBE])
		parse_probe(c, f[D_LIVENESS_PROBE], "liveness_probe",
		    "livenessProbe", dep->settings);
	if (f[D_READINESS_PROBE])
		parse_probe(c, f[D_READINESS_PROBE], "readiness_probe",
		    "readinessProbe", dep->settings);
	if (f[D_STARTUP_PROBE])
		parse_probe(c, f[D_STARTUP_PROBE], "startup_probe",
		    "startupProbe", dep->settings);
	if (f[D_ENVIRONMENT_VARIABLES]) {
		cJSON *ev = NULL;

		if (spec_get_strmap(c, f[D_ENVIRONMENT_VARIABLES],
		        "environment_variables", &ev) == 0)
			jadd(dep->settings, "environmentVariables", ev);
	}
	if (f[D_APP_INSIGHTS_ENABLED] &&
	    spec_get_bool(
	        c, f[D_APP_INSIGHTS_ENABLED], "app_insights_enabled", &t) == 0)
		jadd(dep->settings, "appInsightsEnabled", cJSON_CreateBool(t));
	if (f[D_EGRESS] &&
	    spec_get_enum(c, f[D_EGRESS], "egress_public_network_access",
	        egress, 2, &t) == 0)
		jadd(dep->settings, "egressPublicNetworkAccess",
		    jstr(t ? "Disabled" : "Enabled"));
	if (f[D_DATA_COLLECTOR])
		parse_data_collector(c, f[D_DATA_COLLECTOR], dep->settings);
	if (f[D_MODEL_MOUNT_PATH] &&
	    spec_get_str(c, f[D_MODEL_MOUNT_PATH], "model_mount_path", &s) == 0)
		jadd(dep->settings, "modelMountPath", jstr(s));
	if (f[D_RESOURCES] && f[D_RESOURCE_REQUIREMENTS])
		spec_err(c, k[D_RESOURCE_REQUIREMENTS],
		    "give 'resources' or the 2021 'resource_requirements', "
		    "not both");
	else if (f[D_RESOURCES] || f[D_RESOURCE_REQUIREMENTS]) {
		const struct ynode *kk = f[D_RESOURCES]
		                             ? k[D_RESOURCES]
		                             : k[D_RESOURCE_REQUIREMENTS];

		if (dep->compute != AMLOPS_COMPUTE_KUBERNETES)
			spec_err(c, kk,
			    "'%s' applies to kubernetes deployments "
			    "only; add 'type: kubernetes' or remove it",
			    kk->u.s.str);
		else if (f[D_RESOURCES])
			parse_resources(c, f[D_RESOURCES], dep->settings);
		else
			parse_resource_requirements(
			    c, f[D_RESOURCE_REQUIREMENTS], dep->settings);
	}
	return dep;
}
