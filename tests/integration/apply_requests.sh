#!/bin/bash
# The requests one traffic step sends to the real host when its operation
# ends at once (bench: tests/bench/apply_bench.sh): after planning's two
# reads, the step re-reads the deployments it routes to (one GET of the
# deployment list; the endpoint itself comes from planning's read, made
# milliseconds before with nothing of ours in between), PUTs the
# endpoint, and reads the endpoint alone until its operation has ended,
# which read is also the final state the note records. Three requests.
# Deletions still re-read the whole endpoint before their DELETE.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

start_host
R=$T/repo
git_init "$R"
fixture_common "$R"
split_endpoint "$R" reqs blue=100 green=0
split_deployment "$R" reqs blue 1
split_deployment "$R" reqs green 1
commit "$R" setup
apply_ok "$R"
ok "setup applied"

# on_requests FROM: the host's requests after line FROM of its log, as
# "METHOD suffix" with the workspace path left out
on_requests() {
	tail -n +"$(($1 + 1))" "$T/host.err" | grep "on_request: " |
	    grep -v "path=/_amlops" |
	    sed -n 's/.*method=\([A-Z]*\) path=\([^ ]*\).*/\1 \2/p' |
	    sed 's#/subscriptions/[^ ]*/workspaces/local\(/onlineEndpoints\)\{0,1\}#:#'
}

split_endpoint "$R" reqs blue=90 green=10
commit "$R" "green 10"
from=$(wc -l <"$T/host.err")
apply_ok "$R"
got=$(on_requests "$from" | tr '\n' ',')
# planning: the endpoint and its deployments; the step's re-read; the
# workspace (its region, asked once per process for the PUT body); the
# PUT and the read that sees its operation end
want="GET :/reqs,GET :/reqs/deployments,GET :/reqs/deployments,GET :,PUT :/reqs,GET :/reqs,"
[ "$got" = "$want" ] || fail "traffic step: requests
  got  $got
  want $want"
ok "a traffic step sends 3 requests: GET deployments, PUT, GET endpoint"

c=$(git -C "$R" rev-parse HEAD)
[ "$(note_get "$R" "$c" "d['result']")" = succeeded ] || fail "note result"
[ "$(note_get "$R" "$c" "d['endpoints'][0]['traffic']")" = '{"blue": 90, "green": 10}' ] ||
    fail "note traffic: $(note_get "$R" "$c" "d['endpoints'][0]['traffic']")"
[ "$(note_get "$R" "$c" "d['endpoints'][0]['provisioning_state']")" = Succeeded ] ||
    fail "note state: $(note_get "$R" "$c" "d['endpoints'][0]['provisioning_state']")"
ok "the note's final state comes from the endpoint-alone read"

# a deletion: green's traffic goes to 0 first (its own commit), then green
# leaves the repository; the DELETE follows a full re-read
split_endpoint "$R" reqs blue=100 green=0
commit "$R" "green 0"
apply_ok "$R"
split_endpoint "$R" reqs blue=100
rm -f "$R/endpoints/reqs/green.yml"
commit "$R" "drop green"
from=$(wc -l <"$T/host.err")
apply_ok "$R"
got=$(on_requests "$from" | tr '\n' ',')
want="GET :/reqs,GET :/reqs/deployments,GET :/reqs,GET :/reqs/deployments,DELETE :/reqs/deployments/green,"
case $got in
"$want"*) ;;
*) fail "deletion: requests
  got  $got
  want $want..." ;;
esac
ok "a deletion re-reads the endpoint and its deployments before its DELETE"

invariants
ok "invariants hold over the host's operations log"
echo "PASS: apply_requests"
