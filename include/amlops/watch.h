/*
 * The GitOps loops behind `amlops reconcile` and `amlops watch`.
 *
 * One pass (amlops_watch_reconcile) fetches a URL source, resolves the
 * branch head, and applies it with the executor (amlops/apply.h) when it
 * is not what refs/amlops/applied/TARGET already names: the plan runs
 * from the applied commit (or from nothing) straight to the head. The
 * commits between the two on the head's first-parent chain get a note of
 * their own, result "superseded", with a "superseded_by" key naming the
 * head (an existing note is never replaced). With `push`, the notes ref
 * and, after a full success, the applied ref go back to origin.
 *
 * The loop (amlops_watch_run) repeats passes, each in a child process
 * so that the waiting parent never starts libgit2, libcurl or OpenSSL: on a
 * change of the refs of a local repository (inotify on its loose refs and
 * packed-refs, with a short debounce), or every `interval` (with jitter) for a
 * URL or with `poll`. A failed pass of a head is retried with exponential
 * backoff, not every tick; a new head is tried at once. With `drift_interval`,
 * the live state of every endpoint is compared now and then with the
 * applied commit and drift is logged and counted, or corrected with
 * `self_heal`.
 *
 * The lock (amlops_watch_lock_take) keeps two runs on one state dir from
 * overlapping; the metrics and the HTTP server give /healthz and
 * /metrics in the Prometheus text format.
 *
 * Nothing here prints: events go to the log (amlops/log.h), one line
 * each, key=value.
 */
#ifndef AMLOPS_WATCH_H
#define AMLOPS_WATCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "amlops/backend.h"
#include "amlops/source.h"
#include "amlops/util.h"

/* ------------------------------------------------------------------ */
/* The lock */

#define AMLOPS_WATCH_LOCK_FILE "reconcile.lock"

struct amlops_watch_lock;

/*
 * Takes an exclusive flock(2) on STATE_DIR/reconcile.lock (creating the
 * folder), and writes this process's pid and start time into it.
 * AMLOPS_ELOCKED when another process holds it: "locked by pid N since
 * T (PATH)". The lock is released by amlops_watch_lock_free() or when the
 * process ends.
 */
int amlops_watch_lock_take(
    struct amlops_watch_lock **out, const char *state_dir);
void amlops_watch_lock_free(struct amlops_watch_lock *l);

/* ------------------------------------------------------------------ */
/* Metrics */

struct amlops_watch_metrics;

/* Free with amlops_watch_metrics_free(); every call is thread-safe. */
struct amlops_watch_metrics *amlops_watch_metrics_new(const char *target);
void amlops_watch_metrics_free(struct amlops_watch_metrics *m);

/*
 * A finished reconcile: `result` is "succeeded", "no_changes", "failed"
 * or "interrupted"; `commit` is the commit now applied in full (NULL:
 * unchanged). Success clears the failing state, failure starts it.
 */
void amlops_watch_metrics_reconcile(struct amlops_watch_metrics *m,
    const char *result, int64_t ms, const char *commit);
/* The commit applied in full, known at start (no reconcile counted). */
void amlops_watch_metrics_applied(
    struct amlops_watch_metrics *m, const char *commit);
/* A finished step: aspect ("traffic", ...) and status ("succeeded", ...). */
void amlops_watch_metrics_step(
    struct amlops_watch_metrics *m, const char *aspect, const char *result);
/* A drift check: endpoints that drifted, and "ok", "drift", "healed" or
 * "failed". */
void amlops_watch_metrics_drift(
    struct amlops_watch_metrics *m, size_t drifted, const char *result);

/*
 * 1 when healthy: no reconcile failed, or the last one succeeded, or the
 * failures began less than `threshold_ms` ago. 0 otherwise, with the
 * reason in `why`.
 */
int amlops_watch_metrics_healthy(struct amlops_watch_metrics *m,
    int64_t threshold_ms, char *why, size_t len);

/* The metrics in the Prometheus text format (version 0.0.4). */
int amlops_watch_metrics_render(
    struct amlops_buf *out, struct amlops_watch_metrics *m);

/* ------------------------------------------------------------------ */
/* /healthz and /metrics */

struct amlops_watch_server;

/*
 * Serves GET /healthz (200 "ok", or 503 with the reason once failures
 * last longer than `unhealthy_after_ms`) and GET /metrics on `listen`:
 * "HOST:PORT", "[V6]:PORT" or ":PORT" (every address). PORT 0 picks a
 * free port (amlops_watch_server_port()). `m` is borrowed and must
 * outlive the server. Free with amlops_watch_server_stop().
 */
int amlops_watch_server_start(struct amlops_watch_server **out,
    const char *listen, struct amlops_watch_metrics *m,
    int64_t unhealthy_after_ms);
int amlops_watch_server_port(const struct amlops_watch_server *s);

/*
 * As amlops_watch_server_start(), but with no thread of its own: the
 * caller waits on amlops_watch_server_fd() (readable when a request
 * needs work) and then calls amlops_watch_server_run(). amlops watch
 * uses it so that its process has one thread and forks safely.
 */
int amlops_watch_server_start_polled(struct amlops_watch_server **out,
    const char *listen, struct amlops_watch_metrics *m,
    int64_t unhealthy_after_ms);
int amlops_watch_server_fd(const struct amlops_watch_server *s);
void amlops_watch_server_run(void *s); /* a struct amlops_watch_server */

/* A descriptor served while the loop waits: `run` when it is readable. */
struct amlops_watch_serve {
	int fd;
	void (*run)(void *ctx);
	void *ctx;
};
void amlops_watch_server_stop(struct amlops_watch_server *s);

/* ------------------------------------------------------------------ */
/* One pass */

enum amlops_watch_result {
	AMLOPS_WATCH_UP_TO_DATE = 0, /* the head is the applied commit */
	AMLOPS_WATCH_NO_CHANGES,     /* applied; the plan had no step */
	AMLOPS_WATCH_SUCCEEDED,
	AMLOPS_WATCH_FAILED,
	AMLOPS_WATCH_INTERRUPTED, /* *stop was set between steps */
};

/* "up_to_date", "no_changes", "succeeded", "failed", "interrupted". */
const char *amlops_watch_result_name(enum amlops_watch_result r);

struct amlops_watch_pass_opts {
	const char *target;      /* "local" or "azure" */
	const char *target_url;  /* for the note; may be NULL */
	const char *branch;      /* NULL: HEAD */
	int fetch;               /* fetch first (URL sources) */
	int push;                /* push the notes and the applied ref */
	unsigned jobs;           /* endpoints at once; 0 or 1: one */
	int64_t step_timeout_ms; /* 0: the executor's default */
	/* See amlops_apply_opts; needed for jobs > 1. */
	int (*open_backend)(void *ctx, struct amlops_backend **out);
	void *backend_ctx;
	volatile sig_atomic_t *stop;          /* may be NULL */
	struct amlops_watch_metrics *metrics; /* may be NULL */
	/*
	 * Heads to leave alone this pass, as if applied (result
	 * UP_TO_DATE): `done`, one the loop applied already (a URL source
	 * without push, whose fetch replaces the local applied ref), and
	 * `held`, one that failed and waits for its retry. Either may be
	 * NULL.
	 */
	const char *done;
	const char *held;
};

struct amlops_watch_pass {
	enum amlops_watch_result result;
	char head[41];
	char applied[41];  /* before the pass; "" when nothing was */
	size_t superseded; /* notes written on skipped commits */
	size_t steps, failed, interrupted;
	int64_t ms;
};

/*
 * One reconcile. Returns 0 with out->result set (FAILED and INTERRUPTED
 * included, the message in amlops_err_last()), or a negative code when
 * the pass could not start (fetch, resolve, the YAML: the diagnostics
 * are logged one a line with file:line:column).
 */
int amlops_watch_reconcile(struct amlops_watch_pass *out,
    struct amlops_source *src, struct amlops_backend *b,
    const struct amlops_watch_pass_opts *o);

/*
 * Compares the live state of every endpoint with the applied commit
 * (o->done when set, else the applied ref).
 * Logs one line per drifted endpoint; with `heal`, applies the plan
 * (which rewrites the applied commit's note, the earlier run kept in its
 * attempts). *drifted is the number of endpoints that differed. 0 also
 * when nothing was applied yet (nothing to compare).
 */
int amlops_watch_drift(size_t *drifted, struct amlops_source *src,
    struct amlops_backend *b, const struct amlops_watch_pass_opts *o, int heal);

/* ------------------------------------------------------------------ */
/* Change detection */

struct amlops_watch_trigger;

/*
 * Watches the refs of the repository at `gitdir` with inotify: HEAD,
 * packed-refs and every folder under refs/heads (new folders are added
 * as they appear; for a linked worktree, those of the folder its
 * `commondir` names). Notes and refs/amlops are not watched, so amlops'
 * own writes do not wake it. Free with amlops_watch_trigger_free().
 */
int amlops_watch_trigger_new(
    struct amlops_watch_trigger **out, const char *gitdir);
void amlops_watch_trigger_free(struct amlops_watch_trigger *t);

/*
 * A stamp of the refs of the repository at `gitdir` (HEAD, packed-refs,
 * refs/ but notes and refs/amlops, and a linked worktree's common
 * folder's) from stat(2) alone: it changes when a ref does. --poll on a
 * local repository forks a pass only when it changed.
 */
uint64_t amlops_watch_refs_stamp(const char *gitdir);

/*
 * Waits up to `timeout_ms` (-1: for ever) for a ref change (t may be
 * NULL: just sleeps), then `debounce_ms` more until the refs are quiet
 * (at most 4 * debounce_ms in all). ppoll(2) runs with `sigmask` (NULL:
 * the current mask), so that a signal blocked elsewhere ends the wait.
 * Returns 1 on a change, 0 on timeout or signal, a negative code on
 * error.
 */
int amlops_watch_trigger_wait(struct amlops_watch_trigger *t,
    int64_t timeout_ms, int64_t debounce_ms, const sigset_t *sigmask);
/* The same, serving `sv` (may be NULL) meanwhile. */
int amlops_watch_trigger_wait_serving(struct amlops_watch_trigger *t,
    int64_t timeout_ms, int64_t debounce_ms, const sigset_t *sigmask,
    const struct amlops_watch_serve *sv);

/* ------------------------------------------------------------------ */
/* The loop */

struct amlops_watch_opts {
	struct amlops_watch_pass_opts pass;
	int64_t interval_ms;       /* URL or poll: between fetches; 0: 30 s */
	int poll;                  /* poll a local repository too */
	int64_t debounce_ms;       /* 0: 20 ms */
	int64_t backoff_ms;        /* first retry of a failed head; 0: 10 s */
	int64_t backoff_max_ms;    /* 0: 10 min */
	int64_t drift_interval_ms; /* 0: no drift checks */
	int self_heal;
	int is_url;                    /* the source is a URL */
	volatile sig_atomic_t *reload; /* SIGHUP; may be NULL */
	/* The mask to wait with (signals blocked outside the waits). */
	const sigset_t *waitmask;
	/* The mask during a pass (signals unblocked); may be NULL. */
	const sigset_t *runmask;
	/* Served in every wait, a pass's included; may be NULL. */
	const struct amlops_watch_serve *serve;
	/*
	 * Run in each child: open the source (a URL is fetched) and the
	 * target's backend, and free them. A failed open sets the message
	 * the user sees.
	 */
	int (*open)(
	    void *ctx, struct amlops_source **src, struct amlops_backend **b);
	void (*close)(
	    void *ctx, struct amlops_source *src, struct amlops_backend *b);
	void *open_ctx;
};

/*
 * Runs the loop until *opts->pass.stop is set; returns 0 then. The loop
 * itself never opens the repository or the target: every pass, drift
 * check and reload runs in a child (amlops_watch_child_run), and a first
 * child checks that both open. A negative code when the loop cannot run
 * at all (that first open, inotify), with the message.
 */
int amlops_watch_run(const struct amlops_watch_opts *opts);

/* ------------------------------------------------------------------ */
/* A pass in a child process (src/watch/child.c has the message format) */

enum amlops_watch_kind {
	AMLOPS_WATCH_KIND_PROBE = 0, /* open the source and the target */
	AMLOPS_WATCH_KIND_RECONCILE,
	AMLOPS_WATCH_KIND_DRIFT,
	AMLOPS_WATCH_KIND_RELOAD,
};

/* "probe", "reconcile", "drift", "reload". */
const char *amlops_watch_kind_name(enum amlops_watch_kind k);

#define AMLOPS_WATCH_MSG_MAX 8192 /* bytes of one outcome message */
#define AMLOPS_WATCH_MSG_STEPS 48 /* aspect/result pairs in one */

struct amlops_watch_outcome_step {
	char aspect[32];
	char result[24];
	uint64_t n;
};

/* What a child reports. */
struct amlops_watch_outcome {
	enum amlops_watch_kind kind;
	enum amlops_watch_result result; /* FAILED: see error */
	char head[41];                   /* "" when unknown */
	char applied[41];                /* before the pass; "" when none */
	int64_t ms;
	uint64_t retries; /* HTTP requests sent again by the child */
	struct amlops_watch_outcome_step steps[AMLOPS_WATCH_MSG_STEPS];
	size_t nsteps;
	char drift[16]; /* a drift check's result; "" for the others */
	uint64_t drifted;
	char gitdir[1024]; /* a probe's */
	char error[1024];
};

/* The message of `o` appended to `out`; AMLOPS_EINVALID when too big. */
int amlops_watch_outcome_format(
    struct amlops_buf *out, const struct amlops_watch_outcome *o);

/*
 * Parses a message; AMLOPS_EINVALID with "pass child message: ..." (the
 * line and what is wrong with it) when it is not one, `o` then zeroed
 * with result FAILED.
 */
int amlops_watch_outcome_parse(
    struct amlops_watch_outcome *o, const char *msg, size_t len);

/* Formats `o` and writes it to `fd` (in the child). */
int amlops_watch_child_write(int fd, const struct amlops_watch_outcome *o);

struct amlops_watch_child_opts {
	/* Set by the first SIGTERM/SIGINT: forwarded to the child as
	 * SIGTERM (in the child, the same flag stops the apply). */
	volatile sig_atomic_t *stop;
	const sigset_t *waitmask; /* the parent's, while it waits */
	const sigset_t *runmask;  /* the child's; NULL: inherited */
	const struct amlops_watch_serve *serve; /* meanwhile; may be NULL */
};

/*
 * Forks; the child closes the sockets it inherited, takes SIGTERM and
 * SIGINT as "stop" only, ignores SIGHUP, calls fn(ctx, fd) (which
 * writes its outcome to fd with amlops_watch_child_write()) and
 * _exit()s. The parent reads the message (at most AMLOPS_WATCH_MSG_MAX
 * bytes) and reaps the child. Returns 0 with *out parsed, or a negative
 * code when the child died by a signal ("pass child killed by signal
 * SIGKILL"), wrote nothing or a bad message: *out then has result
 * FAILED (drift "failed" for a drift check) and the message in error.
 */
int amlops_watch_child_run(struct amlops_watch_outcome *out,
    enum amlops_watch_kind kind, void (*fn)(void *ctx, int fd), void *ctx,
    const struct amlops_watch_child_opts *o);

/* The running child's pid, 0 when none: a second signal SIGKILLs it. */
extern volatile sig_atomic_t amlops_watch_child_pid;

/* In a child: the steps and the drift check counted in `m`, into `o`. */
void amlops_watch_metrics_export(
    struct amlops_watch_metrics *m, struct amlops_watch_outcome *o);
/*
 * In the parent: a child's outcome into `m`: a probe's applied commit,
 * a reconcile (unless up to date, its error as the failing reason), a
 * drift check, steps and HTTP retries.
 */
void amlops_watch_metrics_merge(
    struct amlops_watch_metrics *m, const struct amlops_watch_outcome *o);

/* ------------------------------------------------------------------ */
/* What an idle loop keeps resident */

/*
 * Process-wide set-up a long run does without; call it first, before
 * anything starts libgit2, libcurl or OpenSSL. `tls_unused`: no TLS
 * connection through OpenSSL can happen (the local target), so its
 * error strings are never loaded.
 */
void amlops_watch_lean_start(int tls_unused);

/* Before a long wait: returns the heap a pass freed to the system. */
void amlops_watch_lean_idle(void);

#endif
