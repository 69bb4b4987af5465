/*
 * The reconcile lock: flock(2) on STATE_DIR/reconcile.lock, with the
 * holder's pid and start time written inside so that a second run can
 * say who holds it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amlops/err.h"
#include "amlops/util.h"
#include "amlops/watch.h"

struct amlops_watch_lock {
	int fd;
	char *path;
};

/* "pid N since T" from the file's text; "an unknown process" if empty. */
static void
holder(char *out, size_t len, int fd)
{
	char buf[128];
	long pid = 0;
	char since[40] = "";
	ssize_t n;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0) {
		snprintf(out, len, "an unknown process");
		return;
	}
	buf[n] = '\0';
	if (sscanf(buf, "pid %ld since %39s", &pid, since) == 2 && pid > 0)
		snprintf(out, len, "pid %ld since %s", pid, since);
	else
		snprintf(out, len, "an unknown process");
}

int
amlops_watch_lock_take(struct amlops_watch_lock **out, const char *state_dir)
{
	struct amlops_watch_lock *l = NULL;
	char *path = NULL, who[96], line[96], now[32];
	int fd = -1, error, n;

	*out = NULL;
	if ((error = amlops_mkdir_p(state_dir, 0700)) < 0)
		return error;
	path = amlops_xasprintf("%s/%s", state_dir, AMLOPS_WATCH_LOCK_FILE);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		error = amlops_err_sys(AMLOPS_ERROR, "cannot open '%s'", path);
		goto done;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK) {
			holder(who, sizeof(who), fd);
			error = amlops_err_set(
			    AMLOPS_ELOCKED, "locked by %s (%s)", who, path);
		} else {
			error = amlops_err_sys(
			    AMLOPS_ERROR, "cannot lock '%s'", path);
		}
		goto done;
	}
	amlops_time_rfc3339(now, amlops_wall_ms());
	n = snprintf(
	    line, sizeof(line), "pid %ld since %s\n", (long)getpid(), now);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, line, (size_t)n, 0) != n) {
		error = amlops_err_sys(AMLOPS_ERROR, "cannot write '%s'", path);
		goto done;
	}
	l = amlops_xcalloc(1, sizeof(*l));
	l->fd = fd;
	l->path = path;
	fd = -1;
	path = NULL;
	*out = l;
	error = 0;
done:
	if (fd >= 0)
		close(fd);
	free(path);
	return error;
}

void
amlops_watch_lock_free(struct amlops_watch_lock *l)
{
	if (l == NULL)
		return;
	/* emptied first: a reader that races the unlock sees no stale pid */
	if (ftruncate(l->fd, 0) < 0) {
		/* the pid left inside is harmless: nobody holds the lock */
	}
	close(l->fd);
	free(l->path);
	free(l);
}
