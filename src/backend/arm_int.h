/*
 * The ARM backend both targets share (src/backend/arm.c): endpoints,
 * deployments and asset versions over the REST client. A target differs
 * in its base URL and credentials (given to arm_backend_init) and in how
 * an inline asset's files reach the service (`stage`).
 *
 * Private to src/backend and src/azure.
 */
#ifndef AMLOPS_BACKEND_ARM_INT_H
#define AMLOPS_BACKEND_ARM_INT_H

#include "amlops/backend.h"
#include "amlops/cred.h"
#include "amlops/rest.h"

struct arm_backend;

/*
 * Puts the files of an inline asset (`path` at the commit, read through
 * `files`) where the service can read them, under a content-addressed
 * name built from `content_id`, and returns in `*uri` (malloc'd) the URI
 * to register (codeUri / modelUri).
 */
typedef int (*arm_stage_fn)(struct arm_backend *ab, const char *kind,
    const struct amlops_asset *a, const struct amlops_files *files, char **uri);

struct arm_backend {
	struct amlops_backend base;
	struct amlops_rest *rest;
	char *ws_path;  /* /subscriptions/.../workspaces/W */
	char *location; /* the workspace's region */
	struct amlops_cred *cred;
	int own_cred;
	arm_stage_fn stage;
	void (*release)(struct arm_backend *ab); /* may be NULL */
	void *impl;                              /* the target's own state */
};

extern const struct amlops_backend_ops arm_azure_ops;
extern const struct amlops_backend_ops arm_local_ops;

/* Fills `ab` (the caller allocated it) and makes its REST client. */
int arm_backend_init(struct arm_backend *ab,
    const struct amlops_backend_ops *ops, const struct amlops_rest_cfg *rc,
    const char *sub, const char *rg, const char *ws);

/*
 * Walks the files of `path` at the commit: calls `fn` with each file's
 * path relative to `path` ("" when `path` is a file: then `base` is its
 * base name) and its bytes. Sizes are capped at AMLOPS_ASSET_MAX_FILE.
 */
#define AMLOPS_ASSET_MAX_FILE (512u << 20)
int arm_walk_files(const struct amlops_files *files, const char *path,
    int (*fn)(void *ctx, const char *rel, const struct amlops_buf *data),
    void *ctx);

#endif
