/*
 * libFuzzer harness for the host's request handling: the first line of
 * the input is "METHOD PATH[?api-version=V]", the rest is the body. One
 * real host (state in a temp dir, faults on) answers every input through
 * amlops_host_handle(), as its HTTP daemon would, with the right token.
 * Inputs that name file: URIs are skipped: registering a path copies it
 * into the store, which would let the fuzzer copy the machine's files.
 */
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "amlops/err.h"
#include "amlops/util.h"
#include "local/host.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct amlops_host *host;
static char *auth;
static char dir[] = "/tmp/amlops-fuzz-host.XXXXXX";

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* libFuzzer ends with exit(): stop the host, remove its state dir. */
static void
cleanup(void)
{
	amlops_host_free(host);
	host = NULL;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct amlops_host_opts o = {0};

	if (!mkdtemp(dir))
		abort();
	o.state_dir = dir;
	o.retry_after = -1;
	o.faults = 1;
	if (amlops_host_start(&host, &o) < 0) {
		fprintf(stderr, "fuzz_host: %s\n", amlops_err_last());
		abort();
	}
	auth = amlops_xasprintf("Bearer %s", host->token);
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct host_resp r = {0};
	char *text = amlops_xstrndup((const char *)data, size);
	char *nl, *sp, *q, *api = NULL;
	const char *body = "";

	if (strlen(text) != size || strstr(text, "file:"))
		goto done;
	if ((nl = strchr(text, '\n'))) {
		*nl = '\0';
		body = nl + 1;
	}
	if (!(sp = strchr(text, ' ')))
		goto done;
	*sp = '\0';
	if ((q = strstr(sp + 1, "?api-version="))) {
		api = q + 13;
		*q = '\0';
	}
	amlops_host_handle(
	    host, text, sp + 1, api, auth, body, strlen(body), &r);
	if (r.json) {
		/* every answer must print */
		char *s = cJSON_PrintUnformatted(r.json);
		if (!s)
			abort();
		free(s);
	}
	host_resp_release(&r);
done:
	free(text);
	return 0;
}
