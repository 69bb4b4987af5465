#!/bin/bash
# Signals in the middle of an apply, against a host whose operations take
# 1.5 s: SIGTERM lets the step in flight finish, records the others as
# skipped ("Interrupted"), leaves a complete note (finished, result
# failed, no step pending or running) and exits 0 without moving the
# applied ref; the next watch resumes the commit and keeps the
# interrupted run in the note's attempts. A second signal exits at once.
# SIGTERM stops amlops reconcile --once the same way.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

W=$T/work
ST=$T/st
WPID=

start_watch() {
	: >"$T/watch.err"
	"$AMLOPS" --repo "$W" watch --state-dir "$ST" "$@" \
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

# wait_exit SECONDS: sets WRC and WMS (ms from now to the exit)
wait_exit() {
	local i t0
	t0=$(date +%s%3N)
	for i in $(seq $(($1 * 100))); do
		kill -0 "$WPID" 2>/dev/null || break
		sleep 0.01
	done
	kill -0 "$WPID" 2>/dev/null && fail "still running $1 s after the signal"
	WMS=$(($(date +%s%3N) - t0))
	WRC=0
	wait "$WPID" || WRC=$?
	if grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$T/watch.err"; then
		fail "sanitizer report"
	fi
	return 0
}

start_host --op-delay-ms 1500
git_init "$W"
fixture_common "$W"
split_endpoint "$W" sig-ep blue=100
split_deployment "$W" sig-ep blue 1
commit "$W" "1 create: three steps"
C1=$(git -C "$W" rev-parse HEAD)

start_watch
wait_log "event=step_start endpoint=sig-ep deployment=- step=1/3" 30
kill -TERM "$WPID"
wait_exit 30
[ "$WRC" = 0 ] || fail "watch exited $WRC after SIGTERM"
note_get "$W" "$C1" "d['result']" >/dev/null
[ "$(note_get "$W" "$C1" "d['result']")" = failed ] || fail "note result $(note_get "$W" "$C1" "d['result']")"
[ "$(note_get "$W" "$C1" "d['finished'] is not None")" = True ] || fail "note not finished"
[ "$(note_get "$W" "$C1" "[s['status'] for s in d['steps']]")" = '["succeeded", "skipped", "skipped"]' ] ||
    fail "steps: $(note_get "$W" "$C1" "[s['status'] for s in d['steps']]")"
[ "$(note_get "$W" "$C1" "[s['error'] and s['error']['code'] for s in d['steps']]")" = '[null, "Interrupted", "Interrupted"]' ] ||
    fail "errors: $(note_get "$W" "$C1" "d['steps']")"
[ "$(note_get "$W" "$C1" "d['steps'][1]['error']['message']")" = "amlops was stopped before this step started" ] ||
    fail "interrupted message"
git -C "$W" rev-parse -q --verify refs/amlops/applied/local >/dev/null &&
    fail "the applied ref moved on an interrupted apply"
grep -q "event=reconcile_done commit=${C1:0:12} result=interrupted" "$T/watch.err" ||
    fail "no interrupted line"
grep -q "event=watch_stop" "$T/watch.err" || fail "no watch_stop line"
ok "SIGTERM mid-apply: step 1 finished, 2 and 3 Interrupted, note complete, exit 0"

# the next watch resumes
start_watch
wait_log "event=reconcile_done commit=${C1:0:12} result=succeeded" 60
[ "$(note_get "$W" "$C1" "d['result']")" = succeeded ] || fail "resumed note not succeeded"
[ "$(note_get "$W" "$C1" "len(d['attempts'])")" = 1 ] || fail "the interrupted run is not in attempts"
[ "$(note_get "$W" "$C1" "d['attempts'][0]['result']")" = failed ] || fail "attempt result"
[ "$(git -C "$W" rev-parse refs/amlops/applied/local)" = "$C1" ] || fail "applied ref not moved"
invariants
ok "the next watch resumes the commit; the interrupted run is in attempts"

# a second signal exits at once, while a 1.5 s operation is in flight
split_deployment "$W" sig-ep blue 2
commit "$W" "2 scale"
wait_log "event=step_start endpoint=sig-ep deployment=blue step=1/1" 30
sleep 0.2
kill -TERM "$WPID"
sleep 0.1
kill -INT "$WPID"
wait_exit 5
[ "$WRC" = 130 ] || fail "second signal: exit $WRC, expected 130 (128 + SIGINT)"
[ "$WMS" -lt 1000 ] || fail "second signal: exited after $WMS ms"
grep -q "second signal: exiting now" "$T/watch.err" || fail "no second-signal message"
ok "a second signal exits at once ($WMS ms, exit 130)"

# the run the second signal cut short stays in the note's attempts
C2=$(git -C "$W" rev-parse HEAD)
timeout 120 "$AMLOPS" --repo "$W" reconcile --once --state-dir "$ST" \
    >"$T/rec.out" 2>"$T/rec.err" || fail "reconcile after the cut: $(cat "$T/rec.err")"
# (no-changes when the host had finished the scale, succeeded when the
# step found it still Updating, waited and saw it live)
case "$(note_get "$W" "$C2" "d['result']")" in
succeeded | no-changes) ;;
*) fail "C2 note $(note_get "$W" "$C2" "d['result']")" ;;
esac
[ "$(note_get "$W" "$C2" "[a['result'] for a in d['attempts']]")" = '["running"]' ] ||
    fail "C2 attempts: $(note_get "$W" "$C2" "d['attempts']")"
ok "after the cut: the next run completes; the cut run is in attempts"

# reconcile --once under SIGTERM: the step in flight (the last) finishes
split_deployment "$W" sig-ep blue 1
commit "$W" "3 scale down"
C3=$(git -C "$W" rev-parse HEAD)
"$AMLOPS" --repo "$W" reconcile --once --state-dir "$ST" >"$T/rec.out" 2>"$T/watch.err" &
WPID=$!
BG_PIDS+=("$WPID")
wait_log "event=step_start endpoint=sig-ep deployment=blue step=1/1" 30
kill -TERM "$WPID"
wait_exit 30
[ "$WRC" = 0 ] || fail "reconcile exited $WRC after SIGTERM"
[ "$(note_get "$W" "$C3" "d['result']")" = succeeded ] || fail "C3 note $(note_get "$W" "$C3" "d['result']")"
[ "$(git -C "$W" rev-parse refs/amlops/applied/local)" = "$C3" ] || fail "C3 not applied"
invariants
ok "reconcile --once: SIGTERM during the last step lets it finish, exit 0"

echo "PASS: watch_signals"
