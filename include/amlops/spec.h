/*
 * The endpoint model: what a repository says an Azure ML online endpoint
 * and its deployments should be.
 *
 * The loader takes a set of (path, bytes) pairs, parses the YAML of both
 * shapes the Azure ML CLI has known (the 2021 preview file with inline
 * `deployments:`, and today's endpoint.yml plus deployment files naming
 * `endpoint_name`), validates them and normalises them into one model.
 * It does no I/O of its own: the caller gives the bytes, and a callback
 * that says what a repository path is (so the same code checks files on
 * disk and trees in a git commit).
 *
 * Paths in the model are repository-relative, normalised ("a/b", never
 * "./a/../b", no trailing slash); the repository root is "".
 */
#ifndef AMLOPS_SPEC_H
#define AMLOPS_SPEC_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Where a value was written: 1-based line and column. */
struct amlops_loc {
	const char *file; /* borrowed from the spec's file table */
	unsigned line;
	unsigned col;
};

/*
 * One validation error. `msg` is what is wrong and what was expected,
 * lower case, no full stop; amlops_diag_format() adds the location.
 */
struct amlops_diag {
	char *file;
	unsigned line;
	unsigned col;
	char *msg;
};

struct amlops_diags {
	struct amlops_diag *v;
	size_t n;
	size_t cap;
};

#define AMLOPS_DIAGS_INIT                                                      \
	{                                                                      \
		NULL, 0, 0                                                     \
	}

void amlops_diags_add(struct amlops_diags *d, const char *file, unsigned line,
    unsigned col, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Sorts by file, line, column (stable), for output in reading order. */
void amlops_diags_sort(struct amlops_diags *d);
void amlops_diags_release(struct amlops_diags *d);
/* "FILE:LINE:COL: msg", newly allocated. */
char *amlops_diag_format(const struct amlops_diag *d);

enum amlops_asset_kind {
	AMLOPS_ASSET_NONE = 0, /* not given */
	AMLOPS_ASSET_INLINE,   /* content at a repository path */
	AMLOPS_ASSET_REF,      /* azureml:name:version, @label, or ARM id */
};

/*
 * A model, a code folder or an environment. For INLINE assets the loader
 * fills `path`; the git source later fills `content_id` (40 hex digits of
 * the object id at the commit) and, when `version` was not written, sets
 * `version` to its first 12 digits and `version_auto`.
 */
struct amlops_asset {
	enum amlops_asset_kind kind;
	char *name;            /* may be NULL for an inline asset */
	char *version;         /* as written, or NULL */
	char *label;           /* "latest" for name@latest, or NULL */
	char *ref;             /* REF: the reference exactly as written */
	char *path;            /* INLINE: repository-relative path */
	char content_id[41];   /* INLINE: "" until the source fills it */
	int version_auto;      /* version came from content_id */
	struct amlops_loc loc; /* where the asset was written */
};

/*
 * An environment: an image, a conda file's content and, when given, a
 * Docker build context. Its content id is a hash over the image name and
 * the ids of the conda file and the build context.
 */
struct amlops_environment {
	struct amlops_asset asset; /* name, version, ref; path unused */
	char *image;               /* or NULL */
	char *conda_file;          /* repository-relative, or NULL */
	char *build_path;          /* repository-relative, or NULL */
	char *dockerfile_path;     /* within build_path, or NULL */
	cJSON *inference_config;   /* REST shape, or NULL */
};

enum amlops_compute {
	AMLOPS_COMPUTE_MANAGED = 0,
	AMLOPS_COMPUTE_KUBERNETES,
};

enum amlops_auth_mode {
	AMLOPS_AUTH_KEY = 0,
	AMLOPS_AUTH_AML_TOKEN,
	AMLOPS_AUTH_AAD_TOKEN,
};

struct amlops_traffic {
	char *deployment;
	int percent; /* 0..100 */
	struct amlops_loc loc;
};

struct amlops_deployment {
	char *name;
	char *endpoint_name;
	enum amlops_compute compute;
	char *description;
	cJSON *tags; /* object of strings, never NULL */
	struct amlops_asset model;
	struct amlops_asset code;
	char *scoring_script; /* relative to the code folder */
	struct amlops_environment environment;
	char *instance_type; /* NULL: the service's default */
	int instance_count;  /* default 1 */
	/*
	 * Everything else, in the REST API's camelCase shape, so that the
	 * planner compares it as a whole and the backend sends it as is:
	 * requestSettings, livenessProbe, readinessProbe,
	 * environmentVariables, appInsightsEnabled,
	 * egressPublicNetworkAccess, dataCollector, modelMountPath,
	 * scaleSettings, startupProbe, properties, and for kubernetes
	 * containerResourceRequirements (from `resources`, or the 2021
	 * `resource_requirements`). Never NULL; an absent key means the
	 * service's default.
	 */
	cJSON *settings;
	struct amlops_loc loc; /* the deployment's `name` */
};

struct amlops_endpoint {
	char *name;
	enum amlops_auth_mode auth_mode;
	enum amlops_compute compute;
	char *compute_name; /* kubernetes: the attached compute */
	char *description;
	cJSON *tags;                    /* object of strings, never NULL */
	struct amlops_traffic *traffic; /* sorted by deployment name */
	size_t ntraffic;
	struct amlops_traffic *mirror; /* at most one entry */
	size_t nmirror;
	cJSON *identity;             /* REST shape, or NULL */
	char *public_network_access; /* "enabled"/"disabled", or NULL */
	struct amlops_deployment **deployments; /* sorted by name */
	size_t ndeployments;
	char *file;            /* the endpoint's own YAML file */
	struct amlops_loc loc; /* the endpoint's `name` */
};

/* Every endpoint of a repository (or of a set of files), sorted by name. */
struct amlops_spec {
	struct amlops_endpoint **endpoints;
	size_t nendpoints;
	/* Files the loader read; amlops_loc.file points into these. */
	char **files;
	size_t nfiles;
	/* Files that are not endpoints or deployments, with the reason. */
	char **skipped;
	char **skipped_why;
	size_t nskipped;
};

struct amlops_spec_file {
	const char *path; /* repository-relative */
	const char *data;
	size_t len;
};

/* What a repository path is, for the path callback. */
enum amlops_path_kind {
	AMLOPS_PATH_MISSING = 0,
	AMLOPS_PATH_FILE,
	AMLOPS_PATH_DIR,
	AMLOPS_PATH_SYMLINK_OUT, /* a symlink that leaves the repository */
};

enum amlops_spec_flags {
	/*
	 * Check each file on its own: rules within a file apply; those
	 * across files (endpoint_name, traffic naming another file's
	 * deployment) and the existence of local paths do not. A
	 * deployment file's deployment then hangs under an endpoint of
	 * the name it gives, with `file` NULL.
	 */
	AMLOPS_SPEC_ALONE = 1 << 0,
};

struct amlops_spec_opts {
	unsigned flags;
	/* Says what `path` (repository-relative) is; NULL: not checked. */
	enum amlops_path_kind (*path_kind)(void *ctx, const char *path);
	void *ctx;
};

/* Inputs larger than this are refused before parsing. */
#define AMLOPS_SPEC_MAX_FILE (1u << 20)

/*
 * Loads and validates `files`. Every problem found is added to `diags`;
 * the return is AMLOPS_EINVALID when there is any, 0 otherwise. `*out` is
 * set in both cases (what loaded cleanly) unless the return is another
 * error; the caller frees it with amlops_spec_free().
 */
int amlops_spec_load(struct amlops_spec **out, struct amlops_diags *diags,
    const struct amlops_spec_file *files, size_t nfiles,
    const struct amlops_spec_opts *opts);

void amlops_spec_free(struct amlops_spec *spec);

/* Lookups; borrowed pointers, NULL when absent. */
struct amlops_endpoint *amlops_spec_endpoint(
    const struct amlops_spec *spec, const char *name);
struct amlops_deployment *amlops_endpoint_deployment(
    const struct amlops_endpoint *ep, const char *name);

/*
 * Deep copies and frees, for the planner and backends that build
 * endpoints of their own (live state).
 */
struct amlops_endpoint *amlops_endpoint_new(const char *name);
void amlops_endpoint_free(struct amlops_endpoint *ep);
struct amlops_deployment *amlops_deployment_new(const char *name);
void amlops_deployment_free(struct amlops_deployment *dep);
void amlops_asset_release(struct amlops_asset *a);

/* "key", "aml_token", "aad_token"; and back (-1 when unknown). */
const char *amlops_auth_mode_name(enum amlops_auth_mode m);
int amlops_auth_mode_parse(const char *s);

/*
 * Azure's naming rules: an endpoint name is 3 to 32 characters, starts
 * with a letter, letters, digits and '-', and does not end with '-'; a
 * deployment name is 3 to 32 characters of the same set. On failure the
 * reason is written into `why` (at least 128 bytes).
 */
int amlops_spec_endpoint_name_ok(const char *name, char *why, size_t whylen);
int amlops_spec_deployment_name_ok(const char *name, char *why, size_t whylen);

#endif
