#!/bin/bash
# The canary flow under the host's fault injection, at every step: 429
# storms with Retry-After, 500s, dropped connections, and operations that
# end Failed; then a storm longer than the retry budget. After each
# scenario the host's record of operations must show that the executor's
# invariants held, the endpoint must end in the desired state, and where
# a step failed the note and the summary must name the failure.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

start_host
MS=()

# scenario NAME FAULT-JSON: the flow on endpoint NAME with FAULT injected
# before each commit's apply; every apply must still succeed.
scenario() {
	local name=$1 f=$2 r=$T/$1 i t0 t1
	git_init "$r"
	canary_split "$r" 2 "$name"
	commits "$r"
	for i in 0 1 2 3 4 5; do
		fault "$f"
		t0=$(date +%s%N)
		apply_ok "$r" --rev "${COMMITS[$i]}"
		t1=$(date +%s%N)
		clear_faults
		MS[$i]=$(((t1 - t0) / 1000000))
	done
	[ "$(score_count "$name" 10)" = "green=10" ] ||
	    fail "$name: the endpoint does not answer from green only"
	[ "$(deployments "$name")" = green ] || fail "$name: blue is still there"
	invariants --created-once
}

scenario storm429 '{"count":2,"status":429,"retry_after":1,"method":"PUT"}'
# two 429s with Retry-After: 1 on the first commit's PUTs: 2 s at least
[ "${MS[0]}" -ge 2000 ] || fail "storm429: Retry-After not honoured (${MS[0]} ms)"
ok "429 storms with Retry-After at every step: flow completes, invariants hold"

scenario err500 '{"count":2,"status":500}'
ok "500s on reads and writes at every step: flow completes, invariants hold"

scenario dropped '{"count":2,"drop":true}'
ok "dropped connections at every step: flow completes, invariants hold"

# Operations that end Failed: the first operation of each commit fails;
# the apply stops that endpoint, exits 1, and the note and the summary
# name the failure; the rerun finishes the work.
R=$T/opfail
git_init "$R"
canary_split "$R" 2 opfail
commits "$R"
for i in 0 1 2 3 4 5; do
	fault '{"fail_next_operation":true,"message":"injected: the node ran out of disk"}'
	apply_fail "$R" --rev "${COMMITS[$i]}"
	c=${COMMITS[$i]}
	[ "$(note_get "$R" "$c" "d['result']")" = failed ] ||
	    fail "opfail $((i + 1)): note result is not failed"
	msg=$(note_get "$R" "$c" "[s['error']['message'] for s in d['steps'] if s['status'] == 'failed'][0]")
	case $msg in
	*"injected: the node ran out of disk"*) ;;
	*) fail "opfail $((i + 1)): the note's error is '$msg'" ;;
	esac
	[ "$(note_get "$R" "$c" "[s['request_id'] is not None for s in d['steps'] if s['status'] == 'failed'][0]")" = True ] ||
	    fail "opfail $((i + 1)): the failed step has no request id"
	skipped=$(note_get "$R" "$c" "sum(s['status'] == 'skipped' for s in d['steps'])")
	nsteps=$(note_get "$R" "$c" "len(d['steps'])")
	[ "$skipped" = $((nsteps - 1)) ] ||
	    fail "opfail $((i + 1)): $skipped of $nsteps steps skipped, expected $((nsteps - 1))"
	grep -q "^  failed: step 1 .*injected: the node ran out of disk" "$T/apply.out" ||
	    fail "opfail $((i + 1)): the summary does not name the failure"
	grep -q "^amlops: error: 1 of $nsteps steps\? failed: endpoint 'opfail' step 1" "$T/apply.err" ||
	    fail "opfail $((i + 1)): stderr: $(cat "$T/apply.err")"
	[ "$(git -C "$R" rev-parse -q --verify refs/amlops/applied/local || true)" != "$c" ] ||
	    fail "opfail $((i + 1)): the applied ref moved after a failure"
	apply_ok "$R" --rev "$c"
	[ "$(note_get "$R" "$c" "d['result']")" = succeeded ] ||
	    fail "opfail $((i + 1)): rerun: note result is not succeeded"
	[ "$(note_get "$R" "$c" "d['attempts'][-1]['result']")" = failed ] ||
	    fail "opfail $((i + 1)): the note lost the failed attempt"
done
[ "$(score_count opfail 10)" = "green=10" ] || fail "opfail: not green at the end"
invariants --created-once
ok "operations that end Failed at every step: named in note and summary, rerun completes"

# With --jobs, a failed operation stops its own endpoint only.
R=$T/jobsfail
git_init "$R"
canary_split "$R" 1 jf-1 jf-2 jf-3 jf-4
commits "$R"
fault '{"fail_next_operation":true,"message":"injected: one endpoint fails"}'
apply_fail "$R" --rev "${COMMITS[0]}" --jobs 4
c=${COMMITS[0]}
[ "$(note_get "$R" "$c" "len(set(s['endpoint'] for s in d['steps'] if s['status'] == 'failed'))")" = 1 ] ||
    fail "jobs: not exactly one endpoint failed: $(note_get "$R" "$c" "[(s['endpoint'], s['status']) for s in d['steps']]")"
[ "$(note_get "$R" "$c" "sum(s['status'] == 'succeeded' for s in d['steps'])")" = 9 ] ||
    fail "jobs: the other three endpoints did not finish their 9 steps"
[ "$(note_get "$R" "$c" "len(d['endpoints'])")" = 4 ] || fail "jobs: final states"
apply_ok "$R" --rev "$c" --jobs 4
for ep in jf-1 jf-2 jf-3 jf-4; do
	[ "$(score_count $ep 3)" = "blue=3" ] || fail "jobs: $ep after the rerun"
done
invariants --created-once
ok "with --jobs 4 a failed operation stops its endpoint only; the rerun finishes it"

# A storm longer than the retry budget: the step fails with the service's
# error and the request id; nothing after it runs.
R=$T/budget
git_init "$R"
canary_split "$R" 2 budget
commits "$R"
for i in 0 1 2; do apply_ok "$R" --rev "${COMMITS[$i]}"; done
fault '{"count":100,"status":503,"retry_after":0,"method":"PUT"}'
apply_fail "$R" --rev "${COMMITS[3]}"
clear_faults
code=$(note_get "$R" "${COMMITS[3]}" "d['steps'][0]['error']['code']")
[ "$code" = ServiceUnavailable ] || fail "budget: error code '$code'"
rid=$(note_get "$R" "${COMMITS[3]}" "d['steps'][0]['request_id']")
[ ${#rid} = 36 ] || fail "budget: request id '$rid'"
grep -q "ServiceUnavailable: .*503 Service Unavailable (request id $rid)" "$T/apply.out" ||
    fail "budget: the summary does not carry the error and request id"
[ "$(score_count budget 10)" = "blue=10" ] || fail "budget: traffic changed after a failed step"
apply_ok "$R" --rev "${COMMITS[3]}"
ok "a storm past the retry budget fails the step with the service's error and request id"
invariants --created-once
ok "invariants hold over the whole run ($(cat "$T/inv.out"))"

echo "PASS: apply_faults"
