#!/bin/bash
# The invariants checker (invariants.py) must catch what it claims to:
# each invariant broken on its own in a hand-written operations.log gives
# exactly one violation line and exit 1; a clean log gives exit 0.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

E='"resource":"endpoint/e"'
B='"resource":"endpoint/e/deployment/blue"'

# check NAME EXPECTED-OUTPUT [ARGS]: runs the checker on $T/log.
check() {
	local name=$1 want=$2 rc=0
	shift 2
	"$PY" "$INVARIANTS" "$@" "$T/log" >"$T/out" 2>&1 || rc=$?
	if [ -z "$want" ]; then
		[ "$rc" = 0 ] || fail "$name: exit $rc: $(cat "$T/out")"
	else
		[ "$rc" = 1 ] || fail "$name: exit $rc, expected 1: $(cat "$T/out")"
		[ "$(cat "$T/out")" = "$want" ] ||
		    fail "$name: said '$(cat "$T/out")', expected '$want'"
	fi
	ok "$name"
}

# A clean flow: create, deployment, traffic, delete after traffic moved.
cat >"$T/log" <<EOF
{"event":"request","method":"PUT",$E,"result":201,"operation":"1","traffic":{},"deployments":{}}
{"event":"operation","operation":"1","status":"Succeeded",$E,"traffic":{},"deployments":{}}
{"event":"request","method":"PUT",$B,"result":201,"operation":"2","traffic":{},"deployments":{"blue":"Creating"}}
{"event":"operation","operation":"2","status":"Succeeded",$B,"traffic":{},"deployments":{"blue":"Succeeded"}}
{"event":"request","method":"PUT",$E,"result":200,"operation":"3","traffic":{"blue":100},"deployments":{"blue":"Succeeded"}}
{"event":"operation","operation":"3","status":"Succeeded",$E,"traffic":{"blue":100},"deployments":{"blue":"Succeeded"}}
{"event":"request","method":"PUT",$E,"result":200,"operation":"4","traffic":{"blue":0},"deployments":{"blue":"Succeeded"}}
{"event":"operation","operation":"4","status":"Succeeded",$E,"traffic":{"blue":0},"deployments":{"blue":"Succeeded"}}
{"event":"request","method":"DELETE",$B,"result":202,"operation":"5","traffic":{"blue":0},"deployments":{"blue":"Deleting"}}
{"event":"operation","operation":"5","status":"Succeeded",$B,"traffic":{},"deployments":{}}
{"event":"request","method":"PUT",$B,"result":201,"operation":"6","traffic":{},"deployments":{"blue":"Creating"}}
{"event":"operation","operation":"6","status":"Succeeded",$B,"traffic":{},"deployments":{"blue":"Succeeded"}}
EOF
check "a clean log passes, a deployment created again after its deletion included" "" --created-once

cat >"$T/log" <<EOF
{"event":"request","method":"PUT",$E,"result":200,"operation":"1","traffic":{"blue":90,"green":20},"deployments":{"blue":"Succeeded","green":"Succeeded"}}
{"event":"operation","operation":"1","status":"Succeeded",$E,"traffic":{"blue":90,"green":20},"deployments":{"blue":"Succeeded","green":"Succeeded"}}
EOF
check "traffic that sums to 110" "violation: line 1 (request PUT endpoint/e): traffic-sum: {\"blue\": 90, \"green\": 20} sums to 110
violation: line 2 (operation Succeeded endpoint/e): traffic-sum: {\"blue\": 90, \"green\": 20} sums to 110"

cat >"$T/log" <<EOF
{"event":"request","method":"PUT",$E,"result":200,"operation":"1","traffic":{"blue":100},"deployments":{"blue":"Creating"}}
{"event":"operation","operation":"1","status":"Succeeded",$E,"traffic":{"blue":100},"deployments":{"blue":"Creating"}}
EOF
check "traffic to a deployment still Creating" "violation: line 1 (request PUT endpoint/e): traffic-ready: 100% to 'blue' while it is Creating"

cat >"$T/log" <<EOF
{"event":"request","method":"PUT",$E,"result":200,"operation":"1","traffic":{"blue":100},"deployments":{"blue":"Succeeded"}}
{"event":"operation","operation":"1","status":"Succeeded",$E,"traffic":{"blue":100},"deployments":{"blue":"Succeeded"}}
{"event":"request","method":"DELETE",$B,"result":202,"operation":"2","traffic":{"blue":100},"deployments":{"blue":"Deleting"}}
{"event":"operation","operation":"2","status":"Succeeded",$B,"traffic":{},"deployments":{}}
EOF
check "a deployment deleted under traffic" "violation: line 3 (request DELETE endpoint/e/deployment/blue): delete-traffic: 'blue' deleted with 100% of the traffic"

cat >"$T/log" <<EOF
{"event":"request","method":"PUT",$B,"result":201,"operation":"1","traffic":{},"deployments":{"blue":"Creating"}}
{"event":"request","method":"PUT",$E,"result":200,"operation":"2","traffic":{},"deployments":{"blue":"Creating"}}
{"event":"operation","operation":"1","status":"Succeeded",$B,"traffic":{},"deployments":{"blue":"Succeeded"}}
{"event":"operation","operation":"2","status":"Succeeded",$E,"traffic":{},"deployments":{"blue":"Succeeded"}}
EOF
check "two mutations in flight on one endpoint" "violation: line 2 (request PUT endpoint/e): one-at-a-time: operation 1 on endpoint 'e' was still in flight"

cat >"$T/log" <<EOF
{"event":"request","method":"PUT",$B,"result":201,"operation":"1","traffic":{},"deployments":{"blue":"Creating"}}
{"event":"operation","operation":"1","status":"Succeeded",$B,"traffic":{},"deployments":{"blue":"Succeeded"}}
{"event":"request","method":"PUT",$B,"result":201,"operation":"2","traffic":{},"deployments":{"blue":"Creating"}}
{"event":"operation","operation":"2","status":"Succeeded",$B,"traffic":{},"deployments":{"blue":"Succeeded"}}
EOF
check "a deployment created twice" "violation: line 3 (request PUT endpoint/e/deployment/blue): created-once: 'endpoint/e/deployment/blue' created again" --created-once
check "created twice is not checked without --created-once" ""

echo "PASS: apply_invariants"
