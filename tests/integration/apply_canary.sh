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

# flow REPO EP LABEL: applies the six commits one by one, scoring EP.
flow() {
	local r=$1 ep=$2 label=$3 i out n before
	commits "$r"
	[ ${#COMMITS[@]} = 6 ] || fail "$label: expected 6 commits"
	for i in 0 1 2 3 4 5; do
		apply_ok "$r" --rev "${COMMITS[$i]}"
		grep -q "^Apply complete: " "$T/apply.out" ||
		    fail "$label: commit $((i + 1)): no summary line"
		[ "$(note_get "$r" "${COMMITS[$i]}" "d['result']")" = succeeded ] ||
		    fail "$label: commit $((i + 1)): note result is not succeeded"
		[ "$(git -C "$r" rev-parse refs/amlops/applied/local)" = "${COMMITS[$i]}" ] ||
		    fail "$label: commit $((i + 1)): refs/amlops/applied/local did not move"
		case $i in
		0 | 1 | 2)
			out=$(score_count "$ep" 20)
			[ "$out" = "blue=20" ] ||
			    fail "$label: commit $((i + 1)): answers $out, expected blue=20"
			;;
		3)
			out=$(score_count "$ep" 1000)
			n=$(echo "$out" | sed -n 's/.*green=\([0-9]*\).*/\1/p')
			echo "$out" | grep -q "^blue=[0-9]* green=[0-9]*$" ||
			    fail "$label: 90/10: answers $out"
			[ "${n:-0}" -ge 60 ] && [ "${n:-0}" -le 140 ] ||
			    fail "$label: 90/10: $out (green outside 60..140 of 1000)"
			;;
		4 | 5)
			out=$(score_count "$ep" 20)
			[ "$out" = "green=20" ] ||
			    fail "$label: commit $((i + 1)): answers $out, expected green=20"
			;;
		esac
		ok "$label: commit $((i + 1)) applied, answers $out"
	done
	[ "$(deployments "$ep")" = green ] ||
	    fail "$label: deployments left: $(deployments "$ep")"
	ok "$label: blue is gone"
	[ "$(jf "$T/state/state.json" "any(e.get('resource', {}).get('tags', {}).get('managed-by') == 'amlops' for w in d['workspaces'].values() for n, e in w['endpoints'].items() if n == '$ep')")" = True ] ||
	    fail "$label: the endpoint does not carry managed-by=amlops"

	# again: no mutating request, "No changes."
	before=$(count_requests)
	apply_ok "$r"
	grep -qx "No changes." "$T/apply.out" ||
	    fail "$label: a second apply printed: $(cat "$T/apply.out")"
	[ "$(count_requests)" = "$before" ] ||
	    fail "$label: a second apply sent $(($(count_requests) - before)) mutating request(s)"
	ok "$label: applying again changes nothing"
}

# 1. Today's shape.
R1=$T/split
git_init "$R1"
canary_split "$R1" 2
flow "$R1" my-endpoint split
invariants --created-once
ok "split: invariants hold ($(cat "$T/inv.out"))"

# The note is the record a person reads.
"$AMLOPS" --repo "$R1" status "$(git -C "$R1" rev-parse HEAD~3)" >"$T/status.out" ||
    fail "amlops status exited $?"
grep -q "traffic" "$T/status.out" || fail "status does not show the traffic step"
ok "amlops status renders the note of an applied commit"

# 2. The 2021 shape, another endpoint on the same host.
R2=$T/preview
git_init "$R2"
canary_preview "$R2" canary-2021
flow "$R2" canary-2021 preview
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
