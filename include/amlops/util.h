/*
 * Small shared helpers: growable buffers, allocation that cannot fail,
 * files, time and ids.
 */
#ifndef AMLOPS_UTIL_H
#define AMLOPS_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AMLOPS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Allocation. Running out of memory prints one line and aborts: there is
 * no useful way for a reconciler to go on without it.
 */
void *amlops_xmalloc(size_t n);
void *amlops_xcalloc(size_t nmemb, size_t size);
void *amlops_xrealloc(void *p, size_t n);
char *amlops_xstrdup(const char *s); /* NULL gives NULL */
char *amlops_xstrndup(const char *s, size_t n);
char *amlops_xasprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * A growable byte buffer, always NUL-terminated once anything was added.
 * `max` caps its length (0: no cap); an add past the cap fails with
 * AMLOPS_EINVALID and leaves the buffer as it was. Every buffer filled
 * from the network or a file has a cap.
 */
struct amlops_buf {
	char *ptr;
	size_t len;
	size_t cap;
	size_t max;
};

#define AMLOPS_BUF_INIT                                                        \
	{                                                                      \
		NULL, 0, 0, 0                                                  \
	}

void amlops_buf_init(struct amlops_buf *b, size_t max);
int amlops_buf_add(struct amlops_buf *b, const void *data, size_t len);
int amlops_buf_puts(struct amlops_buf *b, const char *s);
int amlops_buf_putc(struct amlops_buf *b, char c);
int amlops_buf_printf(struct amlops_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int amlops_buf_vprintf(struct amlops_buf *b, const char *fmt, va_list ap);
/* The contents ("" when empty); borrowed. */
const char *amlops_buf_cstr(const struct amlops_buf *b);
void amlops_buf_reset(struct amlops_buf *b);
/* Hands the string to the caller (free() it); the buffer is empty after. */
char *amlops_buf_detach(struct amlops_buf *b);
void amlops_buf_release(struct amlops_buf *b);

/*
 * Reads a whole file into `out` (which is reset first). A file longer than
 * `max` bytes fails with AMLOPS_EINVALID.
 */
int amlops_file_read(struct amlops_buf *out, const char *path, size_t max);

/*
 * Writes `len` bytes to `path` atomically: a temporary file in the same
 * folder, fsync, rename, fsync of the folder.
 */
int amlops_file_write_atomic(
    const char *path, const void *data, size_t len, mode_t mode);

/* mkdir -p with `mode` for the folders it creates. */
int amlops_mkdir_p(const char *path, mode_t mode);

/* Milliseconds on the monotonic clock, and since the epoch. */
int64_t amlops_now_ms(void);
int64_t amlops_wall_ms(void);
/* Writes an RFC 3339 UTC time ("2026-11-25T18:54:33Z") into out[32]. */
void amlops_time_rfc3339(char out[32], int64_t wall_ms);

/*
 * `d` as an integer within [lo, hi]: clamped there, NaN gives `lo`. For
 * numbers read from JSON, whose casts to integers are undefined out of
 * range.
 */
int64_t amlops_clamp_i64(double d, int64_t lo, int64_t hi);

/*
 * Whether `rel` is a clean relative path, safe to join under a folder:
 * not empty, not absolute, no empty, "." or ".." part, no trailing '/'.
 */
int amlops_relpath_ok(const char *rel);

/* Fills `out` with `len` bytes from the kernel's random source. */
int amlops_random(void *out, size_t len);
/* A random (v4) UUID, 36 characters and NUL. */
int amlops_uuid(char out[37]);

/* Compares two NUL-terminated strings in time independent of their bytes. */
int amlops_consttime_streq(const char *a, const char *b);

/* Edit distance, capped: returns cap+1 once the distance exceeds `cap`. */
unsigned amlops_levenshtein(const char *a, const char *b, unsigned cap);

#endif
