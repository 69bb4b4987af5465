#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "amlops/err.h"
#include "amlops/util.h"

int64_t
amlops_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
amlops_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
amlops_time_rfc3339(char out[32], int64_t wall_ms)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int
amlops_relpath_ok(const char *rel)
{
	const char *p = rel;

	if (*rel == '\0' || *rel == '/')
		return 0;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 2 && strncmp(p, "..", 2) == 0) ||
		    (n == 1 && *p == '.'))
			return 0;
		p += n;
		if (*p == '/')
			p++;
		if (*p == '\0' && p[-1] == '/')
			return 0;
	}
	return 1;
}

int64_t
amlops_clamp_i64(double d, int64_t lo, int64_t hi)
{
	if (!(d >= (double)lo)) /* NaN too */
		return lo;
	if (d >= (double)hi)
		return hi;
	return (int64_t)d;
}

int
amlops_random(void *out, size_t len)
{
	unsigned char *p = out;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return amlops_err_sys(
			    AMLOPS_ERROR, "cannot read random bytes");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
amlops_uuid(char out[37])
{
	unsigned char b[16];
	int error;

	if ((error = amlops_random(b, sizeof(b))) < 0)
		return error;
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
	    b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

int
amlops_consttime_streq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char diff = la != lb;

	for (i = 0; i < lb; i++)
		diff |=
		    (unsigned char)a[i % (la ? la : 1)] ^ (unsigned char)b[i];
	return diff == 0;
}

unsigned
amlops_levenshtein(const char *a, const char *b, unsigned cap)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	unsigned row[64], prev, tmp, best;

	if (lb >= AMLOPS_ARRAY_SIZE(row) || la >= 64)
		return cap + 1;
	for (j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = (unsigned)i;
		best = row[0];
		for (j = 1; j <= lb; j++) {
			tmp = row[j];
			unsigned sub = prev + (a[i - 1] != b[j - 1]);
			unsigned del = row[j] + 1, ins = row[j - 1] + 1;

			row[j] = sub < del ? (sub < ins ? sub : ins)
			                   : (del < ins ? del : ins);
			if (row[j] < best)
				best = row[j];
			prev = tmp;
		}
		if (best > cap)
			return cap + 1;
	}
	return row[lb] > cap ? cap + 1 : row[lb];
}
