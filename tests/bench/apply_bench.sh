#!/bin/bash
# Requests per step and the executor's own overhead per step, measured
# against `amlops host` with operations that complete at once
# (--retry-after 0, no operation delay), next to a named peer measured in
# the same run: a plain curl script that does the same traffic steps
# (PUT the endpoint, poll its Azure-AsyncOperation until it ends) with no
# safety read, no note and no git.
#
# Scenario A: an endpoint with blue and green is set up with amlops
# apply, then N commits each shift 10% of the traffic (one traffic step
# each); amlops applies them one by one, and the peer replays the same N
# shifts. Scenario B: the six commits of the canary flow (8 steps: create,
# deployments, scale, traffic, delete), where deployment operations wait
# for Python workers to start.
#
# Reproduce:
#   cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release && cmake --build build/bench
#   AMLOPS=build/bench/amlops tests/bench/apply_bench.sh [N]
set -euo pipefail

N=${1:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
AMLOPS=${AMLOPS:-$HERE/../../build/bench/amlops}
[ -x "$AMLOPS" ] || { echo "build amlops first (AMLOPS=$AMLOPS)" >&2; exit 1; }
AMLOPS=$(cd "$(dirname "$AMLOPS")" && pwd)/$(basename "$AMLOPS")
. "$HERE/../integration/apply_lib.bash"

start_host
R=$T/repo
git_init "$R"
fixture_common "$R"
split_endpoint "$R" bench blue=100 green=0
split_deployment "$R" bench blue 1
split_deployment "$R" bench green 1
commit "$R" setup
apply_ok "$R"

# the N traffic shifts: green 10, 20, ... 100, 90, ... and back
shares=()
g=0
d=10
for i in $(seq "$N"); do
	g=$((g + d))
	if [ "$g" -ge 100 ]; then g=100; d=-10; fi
	if [ "$g" -le 0 ]; then g=0; d=10; fi
	shares+=("$g")
	split_endpoint "$R" bench blue=$((100 - g)) green=$g
	commit "$R" "green $g"
done
mapfile -t C < <(git -C "$R" rev-list --reverse HEAD | tail -n "$N")

reqs() { grep -c "on_request: " "$T/host.err" | tr -d ' ' || true; }
# client_split: from a -v apply log, the requests sent while planning (and
# the one-off workspace GET) and those sent by the steps, into FIXED/STEPR
client_split() {
	local plan ws total
	plan=$(sed -n '1,/amlops_apply_prepare: /p' "$T/apply.err" | grep -c 'rest_send: ' || true)
	ws=$(grep -c 'rest_send: what="GET subscriptions/' "$T/apply.err" || true)
	total=$(grep -c 'rest_send: ' "$T/apply.err" || true)
	FIXED=$((FIXED + plan + ws))
	STEPR=$((STEPR + total - plan - ws))
}
ops_reqs() { grep "on_request: " "$T/host.err" | grep -vc "/_amlops" | tr -d ' ' || true; }

# amlops apply, commit by commit
FIXED=0
STEPR=0
r0=$(ops_reqs)
run_ms=0
service_ms=0
steps=0
t0=$(date +%s%N)
for c in "${C[@]}"; do
	"$AMLOPS" -v --repo "$R" apply --yes --rev "$c" >"$T/apply.out" 2>"$T/apply.err" ||
	    fail "apply $c"
	client_split
	line=$(grep "cmd_apply: steps=" "$T/apply.err")
	s=$(echo "$line" | sed -n 's/.*steps=\([0-9]*\).*/\1/p')
	rm_=$(echo "$line" | sed -n 's/.*run_ms=\([0-9]*\).*/\1/p')
	sm=$(echo "$line" | sed -n 's/.*service_ms=\([0-9]*\).*/\1/p')
	steps=$((steps + s))
	run_ms=$((run_ms + rm_))
	service_ms=$((service_ms + sm))
done
t1=$(date +%s%N)
r1=$(ops_reqs)
[ "$steps" = "$N" ] || fail "expected $N steps, ran $steps"
a_wall=$(((t1 - t0) / 1000000))
a_reqs=$((r1 - r0))
a_fixed=$FIXED
a_step=$STEPR

# the peer: curl PUT + poll, the same shifts
SUB=00000000-0000-0000-0000-000000000000
EPURL="$URL/subscriptions/$SUB/resourceGroups/local/providers/Microsoft.MachineLearningServices/workspaces/local/onlineEndpoints/bench?api-version=2024-04-01"
r0=$(ops_reqs)
t0=$(date +%s%N)
for g in "${shares[@]}"; do
	body="{\"location\":\"local\",\"tags\":{\"managed-by\":\"amlops\"},\"properties\":{\"authMode\":\"Key\",\"traffic\":{\"blue\":$((100 - g)),\"green\":$g}}}"
	curl -sS --max-time 30 -X PUT -H "Authorization: Bearer $TOKEN" \
	    -H 'Content-Type: application/json' --data-binary "$body" \
	    -D "$T/h" -o /dev/null "$EPURL"
	op=$(grep -i '^azure-asyncoperation:' "$T/h" | cut -d' ' -f2- | tr -d '\r')
	for _ in $(seq 600); do
		st=$(curl -sS --max-time 10 -H "Authorization: Bearer $TOKEN" "$op" |
		    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["status"])')
		[ "$st" = InProgress ] || break
		sleep 0.05
	done
	[ "$st" = Succeeded ] || fail "peer: operation $st"
done
t1=$(date +%s%N)
r1=$(ops_reqs)
p_wall=$(((t1 - t0) / 1000000))
p_reqs=$((r1 - r0))

# Scenario C: N commits of three endpoint steps each (auth mode, traffic,
# description), all operations that end at once: the cost of a step that
# follows another on the same endpoint, next to the fixed cost of a run.
R3=$T/three
git_init "$R3"
fixture_common "$R3"
split_endpoint "$R3" bench3 blue=100 green=0
split_deployment "$R3" bench3 blue 1
split_deployment "$R3" bench3 green 1
commit "$R3" setup
apply_ok "$R3"
for i in $(seq "$N"); do
	if [ $((i % 2)) = 1 ]; then mode=aml_token; g=10; else mode=key; g=0; fi
	split_endpoint "$R3" bench3 blue=$((100 - g)) green=$g
	sed -i "s/^auth_mode: .*/auth_mode: $mode/" "$R3/endpoints/bench3/endpoint.yml"
	echo "description: round $i" >>"$R3/endpoints/bench3/endpoint.yml"
	commit "$R3" "round $i"
done
mapfile -t C3 < <(git -C "$R3" rev-list --reverse HEAD | tail -n "$N")
r0=$(ops_reqs)
c_steps=0
FIXED=0
STEPR=0
for c in "${C3[@]}"; do
	"$AMLOPS" -v --repo "$R3" apply --yes --rev "$c" >"$T/apply.out" 2>"$T/apply.err" ||
	    fail "three-step apply $c"
	client_split
	c_steps=$((c_steps + $(grep "cmd_apply: steps=" "$T/apply.err" | sed -n 's/.*steps=\([0-9]*\).*/\1/p')))
done
r1=$(ops_reqs)
c_reqs=$((r1 - r0))
c_fixed=$FIXED
c_step=$STEPR
[ "$c_steps" = $((3 * N)) ] || fail "expected $((3 * N)) steps, ran $c_steps"

# Scenario B: the canary flow, requests per step over its 8 steps
R2=$T/canary
git_init "$R2"
canary_split "$R2" 2 bench-canary
commits "$R2"
r0=$(ops_reqs)
b_steps=0
b_run=0
b_svc=0
for c in "${COMMITS[@]}"; do
	"$AMLOPS" -v --repo "$R2" apply --yes --rev "$c" >"$T/apply.out" 2>"$T/apply.err" ||
	    fail "canary apply $c"
	line=$(grep "cmd_apply: steps=" "$T/apply.err")
	b_steps=$((b_steps + $(echo "$line" | sed -n 's/.*steps=\([0-9]*\).*/\1/p')))
	b_run=$((b_run + $(echo "$line" | sed -n 's/.*run_ms=\([0-9]*\).*/\1/p')))
	b_svc=$((b_svc + $(echo "$line" | sed -n 's/.*service_ms=\([0-9]*\).*/\1/p')))
done
r1=$(ops_reqs)
b_reqs=$((r1 - r0))

"$PY" - "$N" "$a_reqs" "$a_wall" "$run_ms" "$service_ms" "$p_reqs" "$p_wall" \
    "$b_steps" "$b_reqs" "$b_run" "$b_svc" "$c_steps" "$c_reqs" "$a_fixed" "$a_step" "$c_fixed" "$c_step" <<'EOF'
import sys
(n, ar, aw, run, svc, pr, pw, bs, br, brun, bsvc, cs, cr,
 afx, ast, cfx, cst) = map(int, sys.argv[1:])
print("apply_bench: %d traffic steps, one per commit, operations complete at once" % n)
print("  amlops apply  requests/step %.2f (all requests of each run, planning"
      " and final read included)" % (ar / n))
print("                wall/step %.1f ms (process start, git, plan, note)" % (aw / n))
print("                executor overhead/step %.1f ms (run time %.1f ms minus"
      " time in the service %.1f ms)" % ((run - svc) / n, run / n, svc / n))
print("  curl peer     requests/step %.2f (PUT, then poll until it ends)" % (pr / n))
print("                wall/step %.1f ms (curl and python processes)" % (pw / n))
print("  ratio amlops/peer: requests %.2fx, wall %.2fx" % (ar / pr, aw / pw))
print("                of which planning (and the workspace GET) %.2f, the"
      " step itself %.2f" % (afx / n, ast / n))
print("apply_bench: %d commits of 3 endpoint steps each (auth mode, traffic,"
      " description)" % n)
print("  amlops apply  requests/step %.2f; planning %.2f per run, the steps"
      " %.2f per step" % (cr / cs, cfx / n, cst / cs))
print("apply_bench: the canary flow, %d steps in 6 commits (asset registration"
      " included)" % bs)
print("  amlops apply  requests/step %.2f, executor overhead/step %.1f ms"
      " (run %.1f ms - service %.1f ms)" %
      (br / bs, (brun - bsvc) / bs, brun / bs, bsvc / bs))
EOF
