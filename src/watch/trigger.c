/*
 * Change detection for a local repository: inotify on HEAD, packed-refs
 * and the folders under refs/heads. git writes a ref as NAME.lock and
 * renames it over NAME, so a commit shows as IN_MOVED_TO here; a direct
 * write shows as IN_CLOSE_WRITE. Names ending in ".lock" are ignored.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/util.h"
#include "amlops/watch.h"

#define REF_EVENTS                                                             \
	(IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM)

struct amlops_watch_trigger {
	int fd;
	int root_wd;   /* the git folder: HEAD, packed-refs */
	int common_wd; /* a worktree's common folder: packed-refs; or -1 */
	char *gitdir;
	/* watch descriptor -> folder, for adding new subfolders */
	struct {
		int wd;
		char *path;
	} * dirs;
	size_t ndirs;
};

static int
add_dir(struct amlops_watch_trigger *t, const char *path)
{
	DIR *d;
	struct dirent *e;
	int wd;

	wd = inotify_add_watch(t->fd, path, REF_EVENTS | IN_ONLYDIR);
	if (wd < 0)
		return amlops_err_sys(AMLOPS_ERROR, "cannot watch '%s'", path);
	t->dirs = amlops_xrealloc(t->dirs, (t->ndirs + 1) * sizeof(*t->dirs));
	t->dirs[t->ndirs].wd = wd;
	t->dirs[t->ndirs].path = amlops_xstrdup(path);
	t->ndirs++;
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char *sub;
		struct stat st;
		int error = 0;

		if (e->d_name[0] == '.')
			continue;
		sub = amlops_xasprintf("%s/%s", path, e->d_name);
		if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			error = add_dir(t, sub);
		free(sub);
		if (error < 0) {
			closedir(d);
			return error;
		}
	}
	closedir(d);
	return 0;
}

/*
 * The folder that holds the shared refs: `gitdir` itself, or for a
 * linked worktree (git worktree, git-sync) the one its `commondir` file
 * names. Malloc'd.
 */
static char *
common_dir(const char *gitdir)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	char *file = amlops_xasprintf("%s/commondir", gitdir), *out;
	const char *s;
	size_t n;

	if (amlops_file_read(&b, file, 4096) < 0) {
		amlops_err_clear();
		free(file);
		amlops_buf_release(&b);
		return amlops_xstrdup(gitdir);
	}
	free(file);
	s = amlops_buf_cstr(&b);
	n = strcspn(s, "\r\n");
	if (s[0] == '/')
		out = amlops_xstrndup(s, n);
	else
		out = amlops_xasprintf("%s/%.*s", gitdir, (int)n, s);
	amlops_buf_release(&b);
	return out;
}

int
amlops_watch_trigger_new(struct amlops_watch_trigger **out, const char *gitdir)
{
	struct amlops_watch_trigger *t = amlops_xcalloc(1, sizeof(*t));
	char *common = common_dir(gitdir);
	char *heads = amlops_xasprintf("%s/refs/heads", common);
	struct stat st;
	int error;

	*out = NULL;
	t->gitdir = amlops_xstrdup(gitdir);
	t->common_wd = -1;
	t->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (t->fd < 0) {
		error = amlops_err_sys(AMLOPS_ERROR, "inotify_init1");
		goto fail;
	}
	t->root_wd = inotify_add_watch(
	    t->fd, gitdir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR);
	if (t->root_wd < 0) {
		error =
		    amlops_err_sys(AMLOPS_ERROR, "cannot watch '%s'", gitdir);
		goto fail;
	}
	if (strcmp(common, gitdir) != 0) {
		/* the packed-refs of a linked worktree's repository */
		t->common_wd = inotify_add_watch(
		    t->fd, common, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR);
		if (t->common_wd < 0) {
			error = amlops_err_sys(
			    AMLOPS_ERROR, "cannot watch '%s'", common);
			goto fail;
		}
	}
	/* a repository with no branch yet may lack it; never made here */
	if (stat(heads, &st) == 0 && (error = add_dir(t, heads)) < 0)
		goto fail;
	free(heads);
	free(common);
	*out = t;
	return 0;
fail:
	free(heads);
	free(common);
	amlops_watch_trigger_free(t);
	return error;
}

void
amlops_watch_trigger_free(struct amlops_watch_trigger *t)
{
	if (t == NULL)
		return;
	if (t->fd >= 0)
		close(t->fd);
	for (size_t i = 0; i < t->ndirs; i++)
		free(t->dirs[i].path);
	free(t->dirs);
	free(t->gitdir);
	free(t);
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* FNV-1a over `n` bytes, from `h`. */
static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211ULL;
	return h;
}

/*
 * A stamp of `path` from lstat(2): a file's inode, size, mode and
 * mtime; a folder's, the sum of its entries' stamps (so the order readdir
 * gives does not count). Lock files are left out.
 */
static uint64_t
stamp_of(const char *path, int depth)
{
	uint64_t h = fnv(14695981039346656037ULL, path, strlen(path));
	struct stat st;
	struct dirent *e;
	DIR *d;

	if (lstat(path, &st) < 0)
		return fnv(h, "-", 1);
	if (!S_ISDIR(st.st_mode)) {
		h = fnv(h, &st.st_ino, sizeof(st.st_ino));
		h = fnv(h, &st.st_size, sizeof(st.st_size));
		h = fnv(h, &st.st_mode, sizeof(st.st_mode));
		h = fnv(h, &st.st_mtim.tv_sec, sizeof(st.st_mtim.tv_sec));
		return fnv(h, &st.st_mtim.tv_nsec, sizeof(st.st_mtim.tv_nsec));
	}
	/* a folder's own times change with the lock files in it */
	if (depth > 32 || (d = opendir(path)) == NULL)
		return h;
	while ((e = readdir(d)) != NULL) {
		char *sub;

		if (e->d_name[0] == '.' || ends_with(e->d_name, ".lock"))
			continue;
		/* amlops' own writes: notes and the applied refs */
		if (depth == 0 && (!strcmp(e->d_name, "notes") ||
		                      !strcmp(e->d_name, "amlops")))
			continue;
		sub = amlops_xasprintf("%s/%s", path, e->d_name);
		h += stamp_of(sub, depth + 1);
		free(sub);
	}
	closedir(d);
	return h;
}

uint64_t
amlops_watch_refs_stamp(const char *gitdir)
{
	char *common = common_dir(gitdir);
	const char *dirs[2] = {gitdir, common};
	uint64_t h = 0;

	for (size_t i = 0; i < 2; i++) {
		char *head = amlops_xasprintf("%s/HEAD", dirs[i]);
		char *packed = amlops_xasprintf("%s/packed-refs", dirs[i]);
		char *refs = amlops_xasprintf("%s/refs", dirs[i]);

		h = fnv(h, &i, sizeof(i));
		h +=
		    stamp_of(head, 1) + stamp_of(packed, 1) + stamp_of(refs, 0);
		free(head);
		free(packed);
		free(refs);
		if (!strcmp(common, gitdir))
			break;
	}
	free(common);
	return h;
}

/* Reads the queued events; 1 when one of them is a ref change. */
static int
drain(struct amlops_watch_trigger *t)
{
	char buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	int changed = 0;

	for (;;) {
		ssize_t n = read(t->fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			const char *name = ev->len ? ev->name : "";

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				changed = 1;
				continue;
			}
			if (ends_with(name, ".lock"))
				continue;
			if (ev->wd == t->root_wd || ev->wd == t->common_wd) {
				if (!strcmp(name, "HEAD") ||
				    !strcmp(name, "packed-refs"))
					changed = 1;
				continue;
			}
			if ((ev->mask & (IN_CREATE | IN_ISDIR)) ==
			    (IN_CREATE | IN_ISDIR)) {
				for (size_t i = 0; i < t->ndirs; i++)
					if (t->dirs[i].wd == ev->wd) {
						char *sub =
						    amlops_xasprintf("%s/%s",
						        t->dirs[i].path, name);

						if (add_dir(t, sub) < 0) {
							log_warnx("watch: %s",
							    amlops_err_last());
							amlops_err_clear();
						}
						free(sub);
						break;
					}
			}
			changed = 1;
		}
	}
	return changed;
}

/*
 * Waits for `fd` (-1: none) up to `timeout_ms` (-1: for ever), serving
 * `sv` meanwhile: 1 when fd is readable, 0 on timeout or signal.
 */
static int
wait_fd(int fd, int64_t timeout_ms, const sigset_t *sigmask,
    const struct amlops_watch_serve *sv)
{
	int64_t deadline = timeout_ms >= 0 ? amlops_now_ms() + timeout_ms : -1;

	for (;;) {
		struct pollfd pfd[2];
		struct timespec ts, *tsp = NULL;
		nfds_t n = 0;
		int fdi = -1, svi = -1, r;

		if (fd >= 0) {
			pfd[n] = (struct pollfd){fd, POLLIN, 0};
			fdi = (int)n++;
		}
		if (sv && sv->fd >= 0) {
			pfd[n] = (struct pollfd){sv->fd, POLLIN, 0};
			svi = (int)n++;
		}
		if (deadline >= 0) {
			int64_t left = deadline - amlops_now_ms();

			if (left < 0)
				left = 0;
			ts.tv_sec = left / 1000;
			ts.tv_nsec = (left % 1000) * 1000000;
			tsp = &ts;
		}
		r = ppoll(n ? pfd : NULL, n, tsp, sigmask);
		if (r < 0 && errno == EINTR)
			return 0;
		if (r < 0)
			return amlops_err_sys(AMLOPS_ERROR, "ppoll");
		if (r == 0)
			return 0;
		if (svi >= 0 && pfd[svi].revents)
			sv->run(sv->ctx);
		if (fdi >= 0 && pfd[fdi].revents)
			return 1;
	}
}

int
amlops_watch_trigger_wait_serving(struct amlops_watch_trigger *t,
    int64_t timeout_ms, int64_t debounce_ms, const sigset_t *sigmask,
    const struct amlops_watch_serve *sv)
{
	int64_t first;
	int n;

	if (t == NULL)
		return wait_fd(-1, timeout_ms, sigmask, sv) < 0 ? -1 : 0;
	if (drain(t))
		n = 1;
	else if ((n = wait_fd(t->fd, timeout_ms, sigmask, sv)) <= 0)
		return n;
	else if (!drain(t))
		return 0;
	/* a burst (a push of several refs, a rebase): wait for quiet */
	first = amlops_now_ms();
	while (amlops_now_ms() - first < 4 * debounce_ms) {
		if ((n = wait_fd(t->fd, debounce_ms, sigmask, sv)) < 0)
			return n;
		if (n == 0)
			break;
		drain(t);
	}
	return 1;
}

int
amlops_watch_trigger_wait(struct amlops_watch_trigger *t, int64_t timeout_ms,
    int64_t debounce_ms, const sigset_t *sigmask)
{
	return amlops_watch_trigger_wait_serving(
	    t, timeout_ms, debounce_ms, sigmask, NULL);
}
