#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amlops/err.h"
#include "amlops/util.h"

int
amlops_file_read(struct amlops_buf *out, const char *path, size_t max)
{
	char chunk[65536];
	ssize_t n;
	int fd, error = 0;

	amlops_buf_reset(out);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return amlops_err_sys(
		    errno == ENOENT ? AMLOPS_ENOTFOUND : AMLOPS_ERROR,
		    "cannot open '%s'", path);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error = amlops_err_sys(
			    AMLOPS_ERROR, "cannot read '%s'", path);
			break;
		}
		if (n == 0)
			break;
		if (max && out->len + (size_t)n > max) {
			error = amlops_err_set(AMLOPS_EINVALID,
			    "'%s' is larger than %zu bytes", path, max);
			break;
		}
		if ((error = amlops_buf_add(out, chunk, (size_t)n)) < 0)
			break;
	}
	close(fd);
	if (!error && !out->ptr)
		amlops_buf_add(out, "", 0);
	return error;
}

static int
fsync_dir_of(const char *path)
{
	char *copy = amlops_xstrdup(path);
	int fd, error = 0;

	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd) < 0 && errno != EINVAL)
			error = amlops_err_sys(AMLOPS_ERROR,
			    "cannot sync the folder of '%s'", path);
		close(fd);
	}
	free(copy);
	return error;
}

int
amlops_file_write_atomic(
    const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = amlops_xasprintf("%s.tmp.%ld", path, (long)getpid());
	const char *p = data;
	int fd, error = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		error = amlops_err_sys(AMLOPS_ERROR, "cannot create '%s'", tmp);
		goto done;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error = amlops_err_sys(
			    AMLOPS_ERROR, "cannot write '%s'", tmp);
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (!error && fchmod(fd, mode) < 0)
		error = amlops_err_sys(AMLOPS_ERROR, "cannot chmod '%s'", tmp);
	if (!error && fsync(fd) < 0)
		error = amlops_err_sys(AMLOPS_ERROR, "cannot sync '%s'", tmp);
	if (close(fd) < 0 && !error)
		error = amlops_err_sys(AMLOPS_ERROR, "cannot close '%s'", tmp);
	if (!error && rename(tmp, path) < 0)
		error = amlops_err_sys(AMLOPS_ERROR, "cannot rename '%s'", tmp);
	if (error)
		unlink(tmp);
	else
		error = fsync_dir_of(path);
done:
	free(tmp);
	return error;
}

int
amlops_mkdir_p(const char *path, mode_t mode)
{
	char *copy = amlops_xstrdup(path);
	char *p;
	int error = 0;

	for (p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			error = amlops_err_sys(
			    AMLOPS_ERROR, "cannot create folder '%s'", copy);
			break;
		}
		*p = saved;
		if (!saved)
			break;
	}
	free(copy);
	return error;
}
