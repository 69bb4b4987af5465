/*
 * Unit tests of the credential chain's choices that need no network:
 * which flow the environment selects, the messages of half-set groups,
 * the static token and the ARM scope. The token flows themselves run in
 * tests/integration/test_rest_cred.c against the harness's token server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "amlops/cred.h"
#include "amlops/err.h"

static const char *const vars[] = {"AZURE_TENANT_ID", "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER", "AMLOPS_IMDS_ENDPOINT", "AZURE_ACCESS_TOKEN",
    "AZURE_AUTHORITY_HOST"};

static int
clean_env(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	return 0;
}

static void
cred__static_token_is_returned_as_is(void **state)
{
	struct amlops_cred *c = NULL;
	char *tok = NULL;
	int64_t exp = -1;

	(void)state;
	assert_int_equal(amlops_cred_static(&c, "host-token"), 0);
	assert_int_equal(amlops_cred_kind(c), AMLOPS_CRED_ACCESS_TOKEN);
	assert_int_equal(amlops_cred_token(&tok, &exp, c, "any"), 0);
	assert_string_equal(tok, "host-token");
	assert_int_equal(exp, 0);
	assert_int_equal(amlops_cred_fetches(c), 0);
	amlops_cred_token_free(tok);
	amlops_cred_free(c);
	assert_int_equal(amlops_cred_static(&c, ""), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(), "empty access token");
}

static void
cred__arm_scope_from_url(void **state)
{
	char *s;

	(void)state;
	s = amlops_cred_arm_scope("https://management.azure.com");
	assert_string_equal(s, "https://management.azure.com/.default");
	free(s);
	s = amlops_cred_arm_scope("https://management.chinacloudapi.cn/");
	assert_string_equal(s, "https://management.chinacloudapi.cn/.default");
	free(s);
}

static void
cred__environment_selects_the_flow(void **state)
{
	struct amlops_cred *c = NULL;

	(void)state;
	/* IMDS is only tried when asked: it would hang off Azure. */
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), AMLOPS_ENOTFOUND);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 1), 0);
	assert_int_equal(amlops_cred_kind(c), AMLOPS_CRED_MANAGED);
	amlops_cred_free(c);

	setenv("AZURE_ACCESS_TOKEN", "t", 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(amlops_cred_kind(c), AMLOPS_CRED_ACCESS_TOKEN);
	assert_string_equal(
	    amlops_cred_kind_name(amlops_cred_kind(c)), "access token");
	amlops_cred_free(c);

	setenv("AZURE_TENANT_ID", "t", 1);
	setenv("AZURE_CLIENT_ID", "c", 1);
	setenv("AZURE_CLIENT_SECRET", "s", 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
	assert_int_equal(amlops_cred_kind(c), AMLOPS_CRED_SECRET);
	assert_string_equal(
	    amlops_cred_kind_name(amlops_cred_kind(c)), "client secret");
	amlops_cred_free(c);

	/* A scope is needed for every flow that asks a service. */
	{
		char *tok = NULL;

		assert_int_equal(amlops_cred_from_env(&c, NULL, 0), 0);
		assert_int_equal(
		    amlops_cred_token(&tok, NULL, c, ""), AMLOPS_EINVALID);
		assert_string_equal(
		    amlops_err_last(), "client secret: no token scope");
		amlops_cred_free(c);
	}
}

static void
cred__half_set_groups_name_the_missing_variable(void **state)
{
	struct amlops_cred *c = NULL;

	(void)state;
	setenv("AZURE_CLIENT_SECRET", "s", 1);
	setenv("AZURE_TENANT_ID", "t", 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "AZURE_CLIENT_SECRET is set but AZURE_CLIENT_ID is not");
	clean_env(NULL);
	setenv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token", 1);
	setenv("AZURE_CLIENT_ID", "c", 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "AZURE_FEDERATED_TOKEN_FILE is set but AZURE_TENANT_ID is not");
	clean_env(NULL);
	setenv("IDENTITY_ENDPOINT", "http://10.0.0.1/msi/token", 1);
	setenv("IDENTITY_HEADER", "h", 1);
	assert_int_equal(amlops_cred_from_env(&c, NULL, 0), AMLOPS_EINVALID);
	assert_string_equal(amlops_err_last(),
	    "IDENTITY_ENDPOINT: 'http://10.0.0.1': plain http is accepted "
	    "only for loopback addresses; use https");
	assert_null(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(
	        cred__static_token_is_returned_as_is, clean_env),
	    cmocka_unit_test_setup(cred__arm_scope_from_url, clean_env),
	    cmocka_unit_test_setup(
	        cred__environment_selects_the_flow, clean_env),
	    cmocka_unit_test_setup(
	        cred__half_set_groups_name_the_missing_variable, clean_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
