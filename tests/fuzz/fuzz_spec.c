/*
 * libFuzzer harness for the spec loader: the input is one YAML file or,
 * split at a line "---8<---", two (an endpoint and a deployment file), so
 * that cross-file checks run too. No path callback: the loader must not
 * touch the disk. Everything it returns is freed, so leaks show.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amlops/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char cut[] = "\n---8<---\n";
	struct amlops_spec_file files[2];
	struct amlops_spec_opts opts = {0, NULL, NULL};
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	struct amlops_spec *spec = NULL;
	const char *p = (const char *)data;
	const char *mid = memmem(p, size, cut, sizeof(cut) - 1);
	size_t n = 1, i;

	files[0].path = "endpoints/ep/endpoint.yml";
	files[0].data = p;
	files[0].len = size;
	if (mid) {
		files[0].len = (size_t)(mid - p);
		files[1].path = "endpoints/ep/blue.yml";
		files[1].data = mid + sizeof(cut) - 1;
		files[1].len = size - files[0].len - (sizeof(cut) - 1);
		n = 2;
	}
	/* the first byte picks the mode, so both are explored */
	if (size > 0 && (data[0] & 1))
		opts.flags = AMLOPS_SPEC_ALONE;
	amlops_spec_load(&spec, &diags, files, n, &opts);
	amlops_diags_sort(&diags);
	for (i = 0; i < diags.n; i++)
		free(amlops_diag_format(&diags.v[i]));
	amlops_spec_free(spec);
	amlops_diags_release(&diags);
	return 0;
}
