#!/bin/bash
# kill -9 of `amlops apply` at every point of the canary flow: each
# attempt is killed one event of the host's record later than the one
# before, so the kills land in the middle of every step (its operation in
# flight: the host holds each operation 300 ms) and at every step
# boundary (just after an operation ended). A rerun that is not killed
# must finish the work: the final state is the desired one, the host's
# record shows no resource created twice and the invariants held, and
# the note keeps the interrupted attempts.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

start_host --op-delay-ms 300

R=$T/repo
git_init "$R"
canary_split "$R" 2 crash
commits "$R"
LOG=$T/state/operations.log
lines() { if [ -f "$LOG" ]; then wc -l <"$LOG"; else echo 0; fi; }

KILLS=0
MID=0
BOUNDARY=0
for i in 0 1 2 3 4 5; do
	c=${COMMITS[$i]}
	base=$(lines)
	k=1
	while :; do
		[ "$k" -le 40 ] || fail "commit $((i + 1)): still not done after 40 attempts"
		# not under timeout(1): kill -9 must reach amlops itself
		"$AMLOPS" --repo "$R" apply --yes --rev "$c" \
		    >"$T/apply.out" 2>"$T/apply.err" &
		pid=$!
		BG_PIDS+=("$pid")
		# wait for the k-th event of this commit, or the end of the run
		for _ in $(seq 1000); do
			[ "$(lines)" -ge $((base + k)) ] && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.01
		done
		if kill -0 "$pid" 2>/dev/null && [ "$(lines)" -ge $((base + k)) ]; then
			kill -KILL "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			ev=$(sed -n "$((base + k))p" "$LOG" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["event"])')
			if [ "$ev" = request ]; then MID=$((MID + 1)); else BOUNDARY=$((BOUNDARY + 1)); fi
			KILLS=$((KILLS + 1))
			k=$((k + 1))
			continue
		fi
		for _ in $(seq 1200); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && fail "commit $((i + 1)): apply still running after 120s"
		rc=0
		wait "$pid" || rc=$?
		[ "$rc" = 0 ] || fail "commit $((i + 1)): the run after $((k - 1)) kill(s) exited $rc"
		break
	done
	[ "$(note_get "$R" "$c" "d['result']")" = succeeded ] ||
	    fail "commit $((i + 1)): note result $(note_get "$R" "$c" "d['result']")"
	if [ "$k" -gt 1 ]; then
		n=$(note_get "$R" "$c" "len(d['attempts'])")
		[ "$n" -ge 1 ] || { cat "$T/note.json" >&2; fail "commit $((i + 1)): the note kept no interrupted attempt"; }
	fi
	[ "$(git -C "$R" rev-parse refs/amlops/applied/local)" = "$c" ] ||
	    fail "commit $((i + 1)): applied ref not moved"
	# the desired state is live: applying again changes nothing
	before=$(lines)
	apply_ok "$R" --rev "$c"
	grep -qx "No changes." "$T/apply.out" ||
	    fail "commit $((i + 1)): after the kills, apply again printed $(cat "$T/apply.out")"
	[ "$(lines)" = "$before" ] || { tail -n 4 "$LOG" >&2; fail "commit $((i + 1)): apply again sent mutations ($before -> $(lines))"; }
	invariants --created-once
	ok "commit $((i + 1)): finished after $((k - 1)) kill -9(s); state as desired, invariants hold"
done

[ "$MID" -ge 6 ] || fail "only $MID kills in the middle of a step"
[ "$BOUNDARY" -ge 6 ] || fail "only $BOUNDARY kills at a step boundary"
out=$(score_count crash 20)
[ "$out" = "green=20" ] || fail "the endpoint answers $out"
[ "$(deployments crash)" = green ] || fail "deployments left: $(deployments crash)"
ok "$KILLS kill -9s ($MID mid-step, $BOUNDARY at a boundary): the endpoint answers from green only"

echo "PASS: apply_crash"
