/*
 * Error codes and the thread-local message that goes with them.
 *
 * Functions return 0 on success or one of the negative codes below; the
 * message that explains a failure is set with amlops_err_set() by the
 * function that saw it first and read with amlops_err_last().
 */
#ifndef AMLOPS_ERR_H
#define AMLOPS_ERR_H

enum amlops_err {
	AMLOPS_OK = 0,
	AMLOPS_ERROR = -1,     /* anything else */
	AMLOPS_ENOTFOUND = -2, /* no such resource, file, revision */
	AMLOPS_EINVALID = -3,  /* bad input: YAML, flags, bodies */
	AMLOPS_ECONFLICT = -4, /* the resource is busy or already exists */
	AMLOPS_ENOTSUPP = -5,  /* not offered by this backend */
	AMLOPS_EBACKEND = -6,  /* the service answered with an error */
	AMLOPS_ETIMEOUT = -7,  /* ran past its deadline */
	AMLOPS_ELOCKED = -8,   /* another process holds the lock */
};

/*
 * Sets the message and returns `code`, so that a failure reads
 * `return amlops_err_set(AMLOPS_EINVALID, "bad '%s'", s);`.
 */
int amlops_err_set(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* As amlops_err_set(), with ": strerror(errno)" appended. */
int amlops_err_sys(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Puts "prefix: " before the current message; callers use it to add
 * context the callee lacked. Returns `code`.
 */
int amlops_err_prefix(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The current message; "" when none. Borrowed, valid until the next set. */
const char *amlops_err_last(void);

void amlops_err_clear(void);

#endif
