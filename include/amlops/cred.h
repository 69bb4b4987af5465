/*
 * Azure AD credentials, in the order of the Azure SDK's
 * DefaultAzureCredential:
 *
 *   1. a client secret: AZURE_TENANT_ID, AZURE_CLIENT_ID,
 *      AZURE_CLIENT_SECRET;
 *   2. workload identity: AZURE_TENANT_ID, AZURE_CLIENT_ID,
 *      AZURE_FEDERATED_TOKEN_FILE (the Kubernetes projected token);
 *   3. managed identity: IDENTITY_ENDPOINT + IDENTITY_HEADER (App
 *      Service, Arc), else IMDS (AMLOPS_IMDS_ENDPOINT overrides its
 *      address, for tests), AZURE_CLIENT_ID choosing a user-assigned one;
 *   4. a ready token in AZURE_ACCESS_TOKEN (CI).
 *
 * AZURE_AUTHORITY_HOST overrides https://login.microsoftonline.com.
 * Tokens are cached per scope and renewed five minutes before they
 * expire. No secret or token is ever put in a message or a log.
 */
#ifndef AMLOPS_CRED_H
#define AMLOPS_CRED_H

#include <stdint.h>

struct amlops_http;

enum amlops_cred_kind {
	AMLOPS_CRED_SECRET = 1,
	AMLOPS_CRED_WORKLOAD,
	AMLOPS_CRED_MANAGED,
	AMLOPS_CRED_ACCESS_TOKEN,
};

struct amlops_cred;

/*
 * Chooses a credential from the environment (as above). Nothing is
 * fetched yet. AMLOPS_ENOTFOUND when nothing is set, with a message that
 * names the variables to set; AMLOPS_EINVALID for a half-set group
 * ("AZURE_CLIENT_SECRET is set but AZURE_TENANT_ID is not"). Managed
 * identity is chosen only when IDENTITY_ENDPOINT or AMLOPS_IMDS_ENDPOINT
 * is set, or with `try_imds`. `http` (borrowed, may be NULL) is used for
 * the token requests. Free with amlops_cred_free().
 */
int amlops_cred_from_env(
    struct amlops_cred **out, struct amlops_http *http, int try_imds);

/* A credential holding one fixed token (the local host; tests). */
int amlops_cred_static(struct amlops_cred **out, const char *token);

void amlops_cred_free(struct amlops_cred *c);

enum amlops_cred_kind amlops_cred_kind(const struct amlops_cred *c);
/* "client secret", "workload identity", "managed identity", ... */
const char *amlops_cred_kind_name(enum amlops_cred_kind k);

/*
 * A token for `scope` ("https://management.azure.com/.default"), from
 * the cache while it has more than five minutes left. `*out` is a
 * malloc'd copy the caller frees (amlops_cred_token_free() wipes it);
 * `expires_wall_ms` may be NULL. Failures name the flow and carry the
 * service's error code (AADSTS...) and description, never the secret.
 */
int amlops_cred_token(char **out, int64_t *expires_wall_ms,
    struct amlops_cred *c, const char *scope);
void amlops_cred_token_free(char *token);

/* Requests made to the token service so far (tests check the cache). */
unsigned amlops_cred_fetches(const struct amlops_cred *c);

/*
 * The scope for a Resource Manager URL: "https://management.azure.com"
 * gives "https://management.azure.com/.default". malloc'd.
 */
char *amlops_cred_arm_scope(const char *arm_url);

#endif
