/*
 * libFuzzer harness for the note parser: any bytes either fail with a
 * message or give a note whose stored form is stable (format, parse,
 * format gives the same text) and carries no secret-looking value the
 * scrubber would still change.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "amlops/err.h"
#include "amlops/status.h"
#include "amlops/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct amlops_note *n = NULL, *again = NULL;
	char *text, *one, *two;
	cJSON *j;

	text = amlops_xstrndup((const char *)data, size);
	if (amlops_note_parse(&n, text) < 0) {
		if (!*amlops_err_last())
			abort();
		free(text);
		return 0;
	}
	one = amlops_note_format(n);
	if (amlops_note_parse(&again, one) < 0)
		abort();
	two = amlops_note_format(again);
	if (strcmp(one, two))
		abort();
	j = cJSON_Parse(one);
	if (!j || amlops_note_scrub(j) != 0)
		abort();
	cJSON_Delete(j);
	free(one);
	free(two);
	amlops_note_free(again);
	amlops_note_free(n);
	free(text);
	return 0;
}
