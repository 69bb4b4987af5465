#!/bin/bash
# The canary flow applied commit by commit with the real `amlops apply`
# against a real `amlops host` running real Python workers, scoring the
# endpoint after each commit: blue answers, then blue and green about
# 90/10 over 1,000 requests, then only green, and blue is gone at the
# end. In today's split shape and in the 2021 shape (fixtures written
# here), then --jobs 4 over 8 endpoints. After each part the host's record
# of operations is checked against the executor's invariants, and
# re-running a finished apply must send no mutating request.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

start_host

# 1. Today's shape.
R1=$T/split
git_init "$R1"
canary_split "$R1" 2
flow "$R1" my-endpoint split blue green
invariants --created-once
ok "split: invariants hold ($(cat "$T/inv.out"))"

# plan --live prepares as apply does: after the apply, no changes
RC=0
"$AMLOPS" --repo "$R1" plan --live --detailed-exitcode >"$T/plan.out" 2>"$T/plan.err" || RC=$?
[ "$RC" = 0 ] || fail "plan --live after apply exited $RC: $(cat "$T/plan.out" "$T/plan.err")"
ok "plan --live after the apply: no changes"

# The note is the record a person reads.
"$AMLOPS" --repo "$R1" status "$(git -C "$R1" rev-parse HEAD~3)" >"$T/status.out" ||
    fail "amlops status exited $?"
grep -q "traffic" "$T/status.out" || fail "status does not show the traffic step"
ok "amlops status renders the note of an applied commit"

# 2. The 2021 shape, another endpoint on the same host.
R2=$T/preview
git_init "$R2"
canary_preview "$R2" canary-2021
flow "$R2" canary-2021 preview blue green
invariants --created-once
ok "preview: invariants hold"

# 3. --jobs 4 over 8 endpoints, one instance each.
R3=$T/jobs
git_init "$R3"
EPS=()
for i in 1 2 3 4 5 6 7 8; do EPS+=("fleet-$i"); done
canary_split "$R3" 1 "${EPS[@]}"
commits "$R3"
for i in 0 1 2 3 4 5; do
	t0=$(date +%s.%N)
	apply_ok "$R3" --rev "${COMMITS[$i]}" --jobs 4
	t1=$(date +%s.%N)
	ok "jobs: commit $((i + 1)) on 8 endpoints in $(printf '%.1f' "$(echo "$t1 - $t0" | bc)")s"
done
for ep in "${EPS[@]}"; do
	out=$(score_count "$ep" 5)
	[ "$out" = "green=5" ] || fail "jobs: $ep answers $out"
	[ "$(deployments "$ep")" = green ] || fail "jobs: $ep has $(deployments "$ep")"
done
ok "jobs: every endpoint answers from green only"
invariants --created-once
n=$(sed -n 's/.*at most \([0-9]*\) endpoints at once.*/\1/p' "$T/inv.out")
[ "${n:-0}" -ge 2 ] && [ "${n:-0}" -le 4 ] ||
    fail "jobs: at most ${n:-?} endpoints changed at once, expected 2 to 4"
ok "jobs: invariants hold, up to $n endpoints changed at once"

echo "PASS: apply_canary"
