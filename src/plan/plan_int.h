/*
 * What the planner's files share and nobody else needs.
 */
#ifndef AMLOPS_PLAN_INT_H
#define AMLOPS_PLAN_INT_H

#include <cjson/cJSON.h>

#include "amlops/util.h"

/*
 * cJSON returns NULL when malloc fails; like the x-allocators, the planner
 * treats that as fatal rather than threading an error through every value
 * it builds.
 */
cJSON *amlops_plan_jnn(cJSON *j);

/* The same for the cJSON calls that return a boolean. */
#define AMLOPS_PLAN_JOK(x)                                                     \
	do {                                                                   \
		if (!(x))                                                      \
			amlops_plan_jnn(NULL);                                 \
	} while (0)

/*
 * A value as a short human string, appended to `b`: numbers and strings
 * as they are, null as "(none)", a traffic map as "blue=90, green=10"
 * (empty: "(none)"), any other object or array as compact JSON.
 */
int amlops_plan_value_text(struct amlops_buf *b, const cJSON *v, int traffic);

#endif
