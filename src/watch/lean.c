/*
 * What a long-running `amlops watch` keeps resident between passes: the
 * process-wide library set-up it does not need, and the heap a pass
 * leaves free. See amlops/watch.h (amlops_watch_lean_start,
 * amlops_watch_lean_idle); tests/bench/watch_memory.md has the figures and
 * what else was tried.
 */
#include <malloc.h>
#include <openssl/crypto.h>

#include "amlops/watch.h"

void
amlops_watch_lean_start(int tls_unused)
{
	/*
	 * The first error state OpenSSL 3 makes for a thread (libssh2's
	 * init, run by git_libgit2_init(), makes one) loads the tables of
	 * its error reason strings, which costs about 0.65 MB resident
	 * (see the bench). They only turn an OpenSSL error into words,
	 * and with the local target no OpenSSL error can reach a message:
	 * the host is plain http on loopback, libgit2 speaks https through
	 * mbedtls and libssh2 words its own errors (libssl's strings load
	 * only when asked for, and libcurl does not ask). Saying "no
	 * strings" first makes every later request for them a no-op. With
	 * Azure a TLS failure keeps its words.
	 */
	if (tls_unused)
		OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, NULL);
}

void
amlops_watch_lean_idle(void)
{
	/*
	 * glibc gives back only the top of the heap by itself; a pass
	 * frees its plan, its YAML and libgit2's buffers below blocks
	 * that live on (the libgit2 cache, the curl handle), and those
	 * pages would stay resident through the whole wait.
	 */
	malloc_trim(0);
}
