#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "amlops/err.h"
#include "amlops/util.h"

static void
util__buf_grows_and_stays_terminated(void **state)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	int i;

	for (i = 0; i < 1000; i++)
		assert_int_equal(amlops_buf_printf(&b, "%d,", i % 10), 0);
	assert_int_equal(b.len, 2000);
	assert_int_equal(b.ptr[b.len], '\0');
	assert_memory_equal(b.ptr, "0,1,2,", 6);
	amlops_buf_release(&b);
}

static void
util__buf_cap_refuses_and_keeps_contents(void **state)
{
	struct amlops_buf b;

	amlops_buf_init(&b, 8);
	assert_int_equal(amlops_buf_puts(&b, "12345"), 0);
	assert_int_equal(amlops_buf_puts(&b, "6789"), AMLOPS_EINVALID);
	assert_string_equal(amlops_buf_cstr(&b), "12345");
	assert_string_equal(amlops_err_last(), "more than 8 bytes");
	amlops_buf_release(&b);
}

static void
util__err_prefix_keeps_the_lower_message(void **state)
{
	amlops_err_set(AMLOPS_ENOTFOUND, "no endpoint '%s'", "blue");
	assert_int_equal(
	    amlops_err_prefix(AMLOPS_ENOTFOUND, "step %d/%d", 2, 5),
	    AMLOPS_ENOTFOUND);
	assert_string_equal(amlops_err_last(), "step 2/5: no endpoint 'blue'");
}

static void
util__levenshtein_is_capped(void **state)
{
	assert_int_equal(
	    amlops_levenshtein("instanse_type", "instance_type", 3), 1);
	assert_int_equal(amlops_levenshtein("abc", "abc", 3), 0);
	assert_int_equal(amlops_levenshtein("abcdefgh", "zzzzzzzz", 3), 4);
}

static void
util__uuid_has_v4_shape(void **state)
{
	char a[37], b[37];

	assert_int_equal(amlops_uuid(a), 0);
	assert_int_equal(amlops_uuid(b), 0);
	assert_int_equal(strlen(a), 36);
	assert_int_equal(a[14], '4');
	assert_string_not_equal(a, b);
}

static void
util__atomic_write_replaces_whole_file(void **state)
{
	char dir[] = "/tmp/amlops-test-XXXXXX";
	struct amlops_buf b = AMLOPS_BUF_INIT;
	char *sub, *path, *rm;

	assert_non_null(mkdtemp(dir));
	sub = amlops_xasprintf("%s/sub/dir", dir);
	path = amlops_xasprintf("%s/state.json", sub);
	assert_int_equal(amlops_mkdir_p(sub, 0700), 0);
	assert_int_equal(amlops_file_write_atomic(path, "old", 3, 0600), 0);
	assert_int_equal(amlops_file_write_atomic(path, "new!", 4, 0600), 0);
	assert_int_equal(amlops_file_read(&b, path, 100), 0);
	assert_string_equal(amlops_buf_cstr(&b), "new!");
	assert_int_equal(amlops_file_read(&b, path, 2), AMLOPS_EINVALID);
	rm = amlops_xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(rm), 0);
	amlops_buf_release(&b);
	free(rm);
	free(path);
	free(sub);
}

static void
util__consttime_streq(void **state)
{
	assert_true(amlops_consttime_streq("secret", "secret"));
	assert_false(amlops_consttime_streq("secret", "secreT"));
	assert_false(amlops_consttime_streq("secret", "secret2"));
	assert_false(amlops_consttime_streq("", "x"));
}

static void
util__relpath_ok_refuses_escapes(void **state)
{
	assert_true(amlops_relpath_ok("model.pkl"));
	assert_true(amlops_relpath_ok("model/sub/model.pkl"));
	assert_true(amlops_relpath_ok("a..b/.hidden"));
	assert_false(amlops_relpath_ok(""));
	assert_false(amlops_relpath_ok("/etc/passwd"));
	assert_false(amlops_relpath_ok("../x"));
	assert_false(amlops_relpath_ok("a/../../x"));
	assert_false(amlops_relpath_ok("a/./b"));
	assert_false(amlops_relpath_ok("a//b"));
	assert_false(amlops_relpath_ok("a/"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(util__buf_grows_and_stays_terminated),
	    cmocka_unit_test(util__buf_cap_refuses_and_keeps_contents),
	    cmocka_unit_test(util__err_prefix_keeps_the_lower_message),
	    cmocka_unit_test(util__levenshtein_is_capped),
	    cmocka_unit_test(util__uuid_has_v4_shape),
	    cmocka_unit_test(util__atomic_write_replaces_whole_file),
	    cmocka_unit_test(util__consttime_streq),
	    cmocka_unit_test(util__relpath_ok_refuses_escapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
