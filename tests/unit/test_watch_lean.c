/*
 * amlops_watch_lean_start(): with the local target OpenSSL's error
 * strings never load, even after git_libgit2_init() and
 * curl_global_init(), the two inits that used to load them; with Azure
 * they still do. OpenSSL's init is once per process, so each case runs
 * in a child of its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <git2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "amlops/watch.h"

/*
 * In a child: lean start, then the libraries' own inits, then the words
 * of EVP's "bad decrypt". Writes them (or "(none)") to the pipe.
 */
static void
reason_after_inits(int tls_unused, char *out, size_t cap)
{
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *r;

		close(fds[0]);
		amlops_watch_lean_start(tls_unused);
		git_libgit2_init();
		curl_global_init(CURL_GLOBAL_DEFAULT);
		/* a thread's first error state is what loaded them */
		ERR_clear_error();
		r = ERR_reason_error_string(
		    ERR_PACK(ERR_LIB_EVP, 0, EVP_R_BAD_DECRYPT));
		r = r ? r : "(none)";
		if (write(fds[1], r, strlen(r)) < 0)
			_exit(2);
		_exit(0);
	}
	close(fds[1]);
	n = read(fds[0], out, cap - 1);
	close(fds[0]);
	assert_true(n > 0);
	out[n] = '\0';
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
lean__local_target_loads_no_error_strings(void **state)
{
	char r[128];

	(void)state;
	reason_after_inits(1, r, sizeof(r));
	assert_string_equal(r, "(none)");
}

static void
lean__azure_keeps_error_strings(void **state)
{
	char r[128];

	(void)state;
	reason_after_inits(0, r, sizeof(r));
	assert_string_equal(r, "bad decrypt");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(lean__local_target_loads_no_error_strings),
	    cmocka_unit_test(lean__azure_keeps_error_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
