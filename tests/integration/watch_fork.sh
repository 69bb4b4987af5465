#!/bin/bash
# amlops watch runs each pass in a forked child, so that the waiting
# process never starts libgit2, libcurl or OpenSSL (what keeps an idle
# watch above 10 MB, tests/bench/watch_memory.md). Checked with a
# preloaded shim that logs every call of git_libgit2_init,
# curl_global_init, OPENSSL_init_crypto and OPENSSL_init_ssl with the
# caller's pid: none comes from the watch process, all from its
# children. Then: a child killed by a signal is logged and counted as a
# failed reconcile with the signal named, and retried; and a child left
# running when its parent dies does not keep the /metrics port open;
# --poll on a local repository forks no pass while no ref moves.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

W=$T/work
ST=$T/st
WPID=

command -v cc >/dev/null || { echo "SKIP: no C compiler for the preload shim"; exit 0; }

cat >"$T/shim.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
note(const char *what)
{
	const char *path = getenv("AMLOPS_INIT_LOG");
	char line[128];
	int fd, n;

	if (!path || (fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600)) < 0)
		return;
	n = snprintf(line, sizeof(line), "%s %ld\n", what, (long)getpid());
	if (write(fd, line, (size_t)n) < 0) {
	}
	close(fd);
}

int git_libgit2_init(void)
{
	int (*real)(void) = (int (*)(void))dlsym(RTLD_NEXT, "git_libgit2_init");
	note("git_libgit2_init");
	return real();
}

int curl_global_init(long flags)
{
	int (*real)(long) = (int (*)(long))dlsym(RTLD_NEXT, "curl_global_init");
	note("curl_global_init");
	return real(flags);
}

int OPENSSL_init_crypto(uint64_t opts, const void *settings)
{
	int (*real)(uint64_t, const void *) = (int (*)(uint64_t, const void *))
	    dlsym(RTLD_NEXT, "OPENSSL_init_crypto");
	note("OPENSSL_init_crypto");
	return real(opts, settings);
}

int OPENSSL_init_ssl(uint64_t opts, const void *settings)
{
	int (*real)(uint64_t, const void *) = (int (*)(uint64_t, const void *))
	    dlsym(RTLD_NEXT, "OPENSSL_init_ssl");
	note("OPENSSL_init_ssl");
	return real(opts, settings);
}
EOF
cc -shared -fPIC -O1 -o "$T/shim.so" "$T/shim.c" -ldl || fail "cannot build the shim"

start_watch() {
	: >"$T/watch.err"
	: >"$T/inits"
	# the sanitizer runtime need not come first when a shim is preloaded
	AMLOPS_INIT_LOG=$T/inits LD_PRELOAD=$T/shim.so \
	    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	    "$AMLOPS" --repo "$W" watch --state-dir "$ST" --listen 127.0.0.1:0 "$@" \
	    >"$T/watch.out" 2>"$T/watch.err" &
	WPID=$!
	BG_PIDS+=("$WPID")
	wait_log "event=watch_start" 1 30
	PORT=$(sed -n 's/.*event=listening.*port=\([0-9]*\).*/\1/p' "$T/watch.err" | head -n 1)
	[ -n "$PORT" ] || fail "no port"
}

wait_log() { # wait_log PATTERN COUNT SECONDS
	local i
	for i in $(seq $(($3 * 20))); do
		[ "$(grep -c -- "$1" "$T/watch.err" || true)" -ge "$2" ] && return 0
		kill -0 "$WPID" 2>/dev/null || { tail -n 30 "$T/watch.err" >&2; fail "watch exited"; }
		sleep 0.05
	done
	tail -n 30 "$T/watch.err" >&2
	fail "no $2 line(s) matching '$1' within $3 s"
}

stop_watch() {
	local rc=0
	kill -TERM "$WPID"
	for _ in $(seq 200); do
		kill -0 "$WPID" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$WPID" 2>/dev/null && fail "watch still running 10 s after SIGTERM"
	wait "$WPID" || rc=$?
	[ "$rc" = 0 ] || fail "watch exited $rc"
	grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$T/watch.err" &&
	    fail "sanitizer report"
	return 0
}

metric() {
	curl -sS --max-time 10 "http://127.0.0.1:$PORT/metrics" |
	    awk -v k="$1" '$1 == k {print $2}'
}

# child_of PID: the one child process of PID (waits up to 10 s)
child_of() {
	local c
	for _ in $(seq 200); do
		c=$(ps -o pid= --ppid "$1" | tr -d ' ' | head -n 1)
		[ -n "$c" ] && { echo "$c"; return 0; }
		sleep 0.05
	done
	fail "no child of $1"
}

start_host --op-delay-ms 1000
git_init "$W"
fixture_common "$W"
split_endpoint "$W" fork-ep blue=100
split_deployment "$W" fork-ep blue 1
commit "$W" "1 create"
C1=$(git -C "$W" rev-parse HEAD)

start_watch --backoff 1s
wait_log "event=reconcile_done commit=${C1:0:12} result=succeeded" 1 90
# a drift-free idle moment, then a scrape: still no init in the parent
[ "$(metric 'amlops_reconciles_total{result="succeeded"}')" = 1 ] || fail "succeeded != 1"
grep -q " $WPID\$" "$T/inits" && { cat "$T/inits" >&2; fail "the watch process itself started a library"; }
grep -q "^git_libgit2_init " "$T/inits" || fail "no child started libgit2 (is the shim working?)"
grep -q "^curl_global_init " "$T/inits" || fail "no child started libcurl"
N=$(awk '{print $2}' "$T/inits" | sort -u | wc -l)
[ "$N" -ge 2 ] || fail "expected the probe and the pass in two children, saw $N pid(s)"
NT=$(ls /proc/"$WPID"/task | wc -l)
[ "$NT" = 1 ] || fail "the watch process has $NT threads (forks need one)"
echo "# parent VmRSS: $(awk '/^VmRSS/ {print $2, $3}' /proc/"$WPID"/status) (sanitizer build)"
ok "the watch process (one thread) starts no libgit2, libcurl or OpenSSL; its $N children do"

# a child killed in the middle of a step: failed, the signal named, retried
split_deployment "$W" fork-ep blue 2
commit "$W" "2 scale"
C2=$(git -C "$W" rev-parse HEAD)
wait_log "event=step_start endpoint=fork-ep deployment=blue step=1/1" 1 30
CPID=$(child_of "$WPID")
kill -KILL "$CPID"
wait_log 'event=reconcile_done commit=none result=failed error="pass child killed by signal SIGKILL"' 1 10
wait_log "event=retry_scheduled commit=unknown in_ms=1000" 1 10
[ "$(metric 'amlops_reconciles_total{result="failed"}')" = 1 ] || fail "the killed pass is not counted failed"
# (no_changes when the host had finished the scale, succeeded when the
# retry found it still Updating, waited and saw it live)
wait_log "event=reconcile_done commit=${C2:0:12} result=\(succeeded\|no_changes\)" 1 60
[ "$(metric amlops_reconcile_failing)" = 0 ] || fail "still failing after the retry"
[ "$(git -C "$W" rev-parse refs/amlops/applied/local)" = "$C2" ] || fail "C2 not applied"
ok "a child killed by SIGKILL: logged and counted failed with the signal named, retried after 1 s"
stop_watch
grep -q " $WPID\$" "$T/inits" && fail "the watch process started a library"
ok "SIGTERM while idle: exit 0, still no library started by the watch process"

# --poll on a local repository: a child only when a ref moved
start_watch --poll --interval 200ms
sleep 2
P0=$(awk '{print $2}' "$T/inits" | sort -u | wc -l)
[ "$P0" = 2 ] || { cat "$T/inits" >&2; fail "$P0 children in 2 s of polling an unchanged repository (expected the probe and the first pass)"; }
git -C "$W" notes --ref amlops-other add -m x HEAD # not a ref watched
split_deployment "$W" fork-ep blue 1
commit "$W" "3 scale down"
C3=$(git -C "$W" rev-parse HEAD)
wait_log "event=reconcile_done commit=${C3:0:12} result=succeeded" 1 60
sleep 1
P1=$(awk '{print $2}' "$T/inits" | sort -u | wc -l)
[ "$P1" = 3 ] || fail "$P1 children after one commit (expected 3)"
stop_watch
ok "--poll on a local repository forks a pass only when a ref moved ($P0 children idle, $P1 after a commit)"

# the parent dies (SIGKILL: no chance to clean up) while a child applies:
# the port goes with the parent, not with the child
start_watch
split_deployment "$W" fork-ep blue 2
commit "$W" "4 scale up"
wait_log "event=step_start endpoint=fork-ep deployment=blue step=1/1" 1 30
CPID=$(child_of "$WPID")
BG_PIDS+=("$CPID")
curl -sS --max-time 5 -o /dev/null "http://127.0.0.1:$PORT/healthz" || fail "no /healthz before"
kill -KILL "$WPID"
wait "$WPID" 2>/dev/null || true
kill -0 "$CPID" 2>/dev/null || fail "the child ended with its parent (test needs it alive)"
if curl -sS --max-time 5 -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then
	fail "the port is still open with only the child left"
fi
ok "a child left running does not keep the /metrics port open"
stop_pid "$CPID" TERM

echo "PASS: watch_fork"
