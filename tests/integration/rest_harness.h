/*
 * Helpers shared by the rest/cred/blob integration tests: temporary
 * folders, child processes (token server, Azurite, amlops host) that are
 * always killed, waits that always time out, and capturing stderr so that
 * a test can grep everything amlops printed for secrets.
 *
 * Header-only (static functions) so that each test binary stays one file.
 */
#ifndef AMLOPS_TESTS_REST_HARNESS_H
#define AMLOPS_TESTS_REST_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "amlops/util.h"

#define HARNESS_MAX_CHILDREN 8

static pid_t harness_children[HARNESS_MAX_CHILDREN];
static int harness_saved_stderr = -1;

static inline void
harness_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Kills a child (TERM, then KILL after 3 s) and reaps it. */
static inline void
harness_kill(pid_t pid)
{
	int status;

	if (pid <= 0)
		return;
	kill(-pid, SIGTERM);
	kill(pid, SIGTERM);
	for (int i = 0; i < 60; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			goto reaped;
		harness_sleep_ms(50);
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
reaped:
	for (int i = 0; i < HARNESS_MAX_CHILDREN; i++)
		if (harness_children[i] == pid)
			harness_children[i] = 0;
}

static inline void
harness_kill_all(void)
{
	for (int i = 0; i < HARNESS_MAX_CHILDREN; i++)
		if (harness_children[i] > 0)
			harness_kill(harness_children[i]);
}

static inline void
harness_on_signal(int sig)
{
	harness_kill_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Starts argv[0] with argv in its own process group, stdout and stderr
 * to `logfile` (or inherited when NULL). Returns its pid, or -1.
 */
static inline pid_t
harness_spawn(char *const argv[], const char *logfile)
{
	pid_t pid;
	int slot = -1;

	for (int i = 0; i < HARNESS_MAX_CHILDREN; i++)
		if (harness_children[i] == 0) {
			slot = i;
			break;
		}
	if (slot < 0)
		return -1;
	static int hooked;
	if (!hooked) {
		atexit(harness_kill_all);
		signal(SIGINT, harness_on_signal);
		signal(SIGTERM, harness_on_signal);
		signal(SIGALRM, harness_on_signal);
		hooked = 1;
	}
	fflush(NULL);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		setpgid(0, 0);
		if (logfile) {
			int fd =
			    open(logfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);

			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
				close(fd);
			}
		} else if (harness_saved_stderr >= 0)
			dup2(harness_saved_stderr, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);
	harness_children[slot] = pid;
	return pid;
}

/* Reads a small file; NULL when absent. */
static inline char *
harness_read(const char *path)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;

	if (amlops_file_read(&b, path, 64u << 20) < 0) {
		amlops_buf_release(&b);
		return NULL;
	}
	amlops_buf_add(&b, "", 0);
	return amlops_buf_detach(&b);
}

/*
 * Waits up to `ms` for `path` to exist and to contain `needle` (NULL:
 * anything); returns its content or NULL. Gives up early when `pid`
 * exited.
 */
static inline char *
harness_wait_file(const char *path, const char *needle, long ms, pid_t pid)
{
	for (long waited = 0; waited <= ms; waited += 50) {
		char *s = harness_read(path);
		int status;

		if (s && (needle == NULL || strstr(s, needle)))
			return s;
		free(s);
		if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid)
			return NULL;
		harness_sleep_ms(50);
	}
	return NULL;
}

static inline char *
harness_tmpdir(const char *tag)
{
	char *t = amlops_xasprintf("/tmp/amlops-%s-XXXXXX", tag);

	if (mkdtemp(t) == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

static inline void
harness_rmrf(const char *dir)
{
	pid_t pid;
	int status;

	if (dir == NULL || strncmp(dir, "/tmp/amlops-", 12) != 0)
		return;
	if ((pid = fork()) == 0) {
		execl("/bin/rm", "rm", "-rf", dir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
}

/* Sends stderr to `path` until harness_stderr_restore(). */
static inline void
harness_stderr_capture(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);

	fflush(stderr);
	if (harness_saved_stderr < 0)
		harness_saved_stderr = dup(2);
	if (fd >= 0) {
		dup2(fd, 2);
		close(fd);
	}
}

static inline void
harness_stderr_restore(void)
{
	fflush(stderr);
	if (harness_saved_stderr >= 0) {
		dup2(harness_saved_stderr, 2);
		close(harness_saved_stderr);
		harness_saved_stderr = -1;
	}
}

/*
 * Prints what a captured stderr holds besides amlops' own log lines
 * (those start with `prefix`): cmocka's failure reports.
 */
static inline void
harness_show_failures(const char *path, const char *prefix)
{
	char *s = harness_read(path), *line, *save = NULL;

	if (s == NULL)
		return;
	for (line = strtok_r(s, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, prefix, strlen(prefix)) != 0)
			fprintf(stderr, "%s\n", line);
	free(s);
}

/* The source dir: $AMLOPS_SRC, else the folder above tests/. */
static inline const char *
harness_src(void)
{
	const char *s = getenv("AMLOPS_SRC");

	return s && *s ? s : "/work/main";
}

#endif
