#!/bin/bash
# amlops watch on a URL (a bare "remote" through file://): it polls with
# --interval, applies each pushed commit, pushes the notes and the
# applied ref back with --push, and a restarted watcher resumes from the
# remote's applied ref (nothing applied twice).
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

export XDG_CACHE_HOME=$T/cache
REMOTE=$T/remote.git
W=$T/work
ST=$T/st
WPID=

start_watch() {
	: >"$T/watch.err"
	"$AMLOPS" --repo "file://$REMOTE" watch --state-dir "$ST" "$@" \
	    >"$T/watch.out" 2>"$T/watch.err" &
	WPID=$!
	BG_PIDS+=("$WPID")
}

wait_log() { # wait_log PATTERN SECONDS
	local i
	for i in $(seq $(($2 * 20))); do
		grep -q -- "$1" "$T/watch.err" && return 0
		kill -0 "$WPID" 2>/dev/null || { tail -n 30 "$T/watch.err" >&2; fail "watch exited"; }
		sleep 0.05
	done
	tail -n 30 "$T/watch.err" >&2
	fail "no line matching '$1' within $2 s"
}

stop_watch() {
	local rc=0
	kill -TERM "$WPID"
	for _ in $(seq 200); do
		kill -0 "$WPID" 2>/dev/null || break
		sleep 0.05
	done
	wait "$WPID" || rc=$?
	[ "$rc" = 0 ] || fail "watch exited $rc"
	grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$T/watch.err" &&
	    fail "sanitizer report"
	return 0
}

start_host
git init -q --bare -b main "$REMOTE"
git_init "$W"
fixture_common "$W"
split_endpoint "$W" remote-ep blue=100
split_deployment "$W" remote-ep blue 1
commit "$W" "1 create"
C1=$(git -C "$W" rev-parse HEAD)
git -C "$W" push -q "$REMOTE" main

start_watch --interval 1s --push
wait_log "event=watch_start mode=poll interval_ms=1000" 10
wait_log "event=reconcile_done commit=${C1:0:12} result=succeeded" 60
wait_log "event=pushed notes_ref=refs/notes/amlops applied_ref=yes" 10
[ "$(git -C "$REMOTE" rev-parse refs/amlops/applied/local)" = "$C1" ] ||
    fail "applied ref not pushed"
ok "watch on a URL applies the head and pushes the note back"

split_deployment "$W" remote-ep blue 2
commit "$W" "2 scale"
C2=$(git -C "$W" rev-parse HEAD)
T0=$(date +%s%3N)
git -C "$W" push -q "$REMOTE" main
wait_log "event=reconcile_start commit=${C2:0:12}" 10
T1=$(sed -n "s/.*event=reconcile_start commit=${C2:0:12} .*wall_ms=\([0-9]*\).*/\1/p" "$T/watch.err")
echo "# push to reconcile start: $((T1 - T0)) ms (polling every 1 s, 10% jitter)"
[ $((T1 - T0)) -lt 3000 ] || fail "picked up after $((T1 - T0)) ms with a 1 s interval"
wait_log "event=reconcile_done commit=${C2:0:12} result=succeeded" 60
for _ in $(seq 100); do
	[ "$(git -C "$REMOTE" rev-parse refs/amlops/applied/local)" = "$C2" ] && break
	sleep 0.05
done
[ "$(git -C "$REMOTE" rev-parse refs/amlops/applied/local)" = "$C2" ] ||
    fail "applied ref of C2 not pushed"
git -C "$REMOTE" notes --ref amlops show "$C2" >"$T/note.json"
[ "$(jf "$T/note.json" "d['result']")" = succeeded ] || fail "C2 note in the remote"
# polling: several passes found nothing new, and said nothing about it
sleep 2.5
[ "$(grep -c "event=reconcile_start" "$T/watch.err")" = 2 ] ||
    fail "passes started on no new commit"
stop_watch
ok "a pushed commit is picked up within one interval ($((T1 - T0)) ms)"

# a new watcher (fresh cache) resumes from the remote's applied ref
rm -rf "$XDG_CACHE_HOME"
start_watch --interval 1s --push
wait_log "event=watch_start" 10
sleep 2.5
grep -q "event=reconcile_start" "$T/watch.err" && fail "the new watcher applied again"
stop_watch
ok "a restarted watcher with a fresh clone applies nothing twice"

echo "PASS: watch_remote"
