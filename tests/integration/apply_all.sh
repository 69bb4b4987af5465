#!/bin/bash
# Scope and ownership: a plain apply plans only the endpoints its commit
# touched; --all plans every endpoint of the repository and the target,
# repairs drift, deletes an endpoint that carries the managed-by=amlops
# mark but is in no file, and leaves one without the mark alone. An
# endpoint whose files leave the repository is deleted.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

start_host
WSP=/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.MachineLearningServices/workspaces/local
# rest METHOD ENDPOINT [BODY]: a request to the host's control plane.
rest() {
	local code
	code=$(curl -sS -o "$T/body" -w '%{http_code}' --max-time 30 -X "$1" \
	    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
	    ${3:+--data-binary "$3"} "$URL$WSP/onlineEndpoints/$2?api-version=2024-04-01") || code=000
	case $code in 2*) ;; *) fail "$1 $2: $code $(cat "$T/body")" ;; esac
}
# exists EP: 0 when the host has the endpoint
exists() {
	curl -sf -o /dev/null --max-time 10 -H "Authorization: Bearer $TOKEN" \
	    "$URL$WSP/onlineEndpoints/$1?api-version=2024-04-01"
}
wait_gone() {
	local i
	for i in $(seq 100); do exists "$1" || return 0; sleep 0.1; done
	fail "$1 still exists"
}

R=$T/repo
git_init "$R"
fixture_common "$R"
for ep in ep-a ep-b ep-c; do
	split_endpoint "$R" $ep blue=100
	split_deployment "$R" $ep blue 1
done
commit "$R" three
apply_ok "$R"
ok "three endpoints applied"

# drift: ep-b deleted behind amlops' back; an owned orphan and a foreign
# endpoint appear on the target
rest DELETE ep-b
wait_gone ep-b
rest PUT orphan-ep '{"location":"local","tags":{"managed-by":"amlops"},"properties":{"authMode":"Key"}}'
rest PUT foreign-ep '{"location":"local","tags":{"owner":"someone"},"properties":{"authMode":"Key"}}'

# a commit that touches ep-a only: ep-b's drift is out of its scope
split_deployment "$R" ep-a blue 2
commit "$R" scale-a
apply_ok "$R"
grep -q "ep-b\|orphan-ep\|foreign-ep" "$T/apply.out" &&
    fail "a plain apply planned endpoints its commit did not touch: $(cat "$T/apply.out")"
exists ep-b && fail "ep-b came back without --all"
ok "a plain apply plans only what its commit touched"

apply_ok "$R" --all
grep -q "+ endpoint ep-b" "$T/apply.out" || fail "--all did not recreate ep-b: $(cat "$T/apply.out")"
grep -q "\- endpoint orphan-ep" "$T/apply.out" || fail "--all did not delete the owned orphan"
exists ep-b || fail "ep-b is not back"
[ "$(score_count ep-b 5)" = "blue=5" ] || fail "ep-b does not answer"
wait_gone orphan-ep
exists foreign-ep || fail "--all deleted an endpoint without the managed-by mark"
grep -q "foreign-ep" "$T/apply.out" || fail "the plan does not say it leaves foreign-ep alone"
ok "--all repairs drift, deletes the owned orphan, leaves the foreign endpoint alone"

# ep-c's files leave the repository: it is deleted
git -C "$R" rm -q -r endpoints/ep-c
commit "$R" drop-c
apply_ok "$R"
grep -q "\- endpoint ep-c" "$T/apply.out" || fail "ep-c not deleted: $(cat "$T/apply.out")"
wait_gone ep-c
ok "an endpoint whose files left the repository is deleted"

apply_ok "$R" --all
grep -qx "No changes." "$T/apply.out" || fail "--all again: $(cat "$T/apply.out")"
exists foreign-ep || fail "foreign-ep gone"
ok "--all again: no changes; the foreign endpoint is still there"

invariants --created-once
ok "invariants hold"
echo "PASS: apply_all"
