#!/bin/bash
# The canary flow of the 2021 Azure ML examples, as six commits of one
# endpoint.yml, and the same flow in today's split shape (endpoint.yml and
# one file per deployment): `amlops plan` of each consecutive pair must be
# the documented steps, exactly, through the real binary and real git
# repositories.
set -euo pipefail

AMLOPS=${AMLOPS:?AMLOPS must name the amlops binary}
SHARED=${AMLOPS_SHARED:-$(dirname "$0")/../../../shared}
FLOW=$SHARED/corpus/azureml-examples-2021/cli/endpoints/online
PY=/usr/bin/python3

if [ ! -d "$FLOW/managed/canary-declarative-flow" ]; then
	echo "SKIP: $FLOW/managed/canary-declarative-flow is absent (needs ../shared/corpus)"
	exit 0
fi

TMP=$(mktemp -d /tmp/amlops-plan-canary.XXXXXX)
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }

git_init() {
	git init -q -b main "$1"
	git -C "$1" config user.name amlops-test
	git -C "$1" config user.email test@example.com
	git -C "$1" config commit.gpgsign false
}

commit() { git -C "$1" add -A . && git -C "$1" commit -q -m "$2"; }

# plan REPO BASE HEAD -> json on stdout; checks --detailed-exitcode is 2
plan_json() {
	local rc=0
	timeout 60 "$AMLOPS" --repo "$1" plan --base "$2" --head "$3" \
	    --format json --detailed-exitcode >"$TMP/plan.json" 2>"$TMP/plan.err" || rc=$?
	[ "$rc" = 2 ] || { cat "$TMP/plan.err" >&2; fail "plan $2..$3 exited $rc, expected 2"; }
	cat "$TMP/plan.json"
}

# check NAME EXPECTED-STEPS-AS-JSON < plan.json
# Each expected step is [endpoint, deployment, action, aspect] or, with
# two more entries, [.., before, after] compared exactly.
check() {
	"$PY" -c '
import json, sys
name, want = sys.argv[1], json.loads(sys.argv[2])
plan = json.load(sys.stdin)
got = [[s["endpoint"], s["deployment"], s["action"], s["aspect"]]
       + ([s["before"], s["after"]] if len(w) == 6 else [])
       for s, w in zip(plan["steps"], want + [[]] * len(plan["steps"]))]
if len(plan["steps"]) != len(want) or got != want:
    print("FAIL: %s: steps\n  got  %s\n  want %s" % (name, json.dumps(got), json.dumps(want)), file=sys.stderr)
    sys.exit(1)
print("ok - %s: %d step(s)" % (name, len(want)))
' "$1" "$2"
}

# The expected plans of the six transitions (the first from nothing).
EXPECT=(
'[["my-endpoint",null,"create","endpoint"],["my-endpoint","blue","create","deployment"],["my-endpoint",null,"update","traffic",{},{"blue":100}]]'
'[["my-endpoint","blue","update","scale",1,2]]'
'[["my-endpoint","green","create","deployment"]]'
'[["my-endpoint",null,"update","traffic",{"blue":100},{"blue":90,"green":10}]]'
'[["my-endpoint",null,"update","traffic",{"blue":90,"green":10},{"green":100}]]'
'[["my-endpoint","blue","delete","deployment"]]'
)
NAMES=(create-endpoint-with-blue scale-blue create-green flight-green full-green delete-blue)

run_flow() {
	local repo=$1 shape=$2 i base head
	local -a commits
	mapfile -t commits < <(git -C "$repo" rev-list --reverse HEAD)
	[ "${#commits[@]}" = 6 ] || fail "$shape: expected 6 commits"
	for i in 0 1 2 3 4 5; do
		head=${commits[$i]}
		if [ "$i" = 0 ]; then
			# the root commit: nothing before it
			timeout 60 "$AMLOPS" --repo "$repo" plan --head "$head" \
			    --format json >"$TMP/p.json" || fail "$shape: plan of the root commit"
			check "$shape $((i + 1))-${NAMES[$i]}" "${EXPECT[$i]}" <"$TMP/p.json"
			continue
		fi
		base=${commits[$((i - 1))]}
		plan_json "$repo" "$base" "$head" >"$TMP/p.json"
		check "$shape $((i + 1))-${NAMES[$i]}" "${EXPECT[$i]}" <"$TMP/p.json"
		# the default base is the parent of head
		timeout 60 "$AMLOPS" --repo "$repo" plan --head "$head" --format json >"$TMP/d.json" \
		    || fail "$shape: plan with the default base"
		cmp -s <("$PY" -c 'import json,sys; print(json.load(sys.stdin)["steps"])' <"$TMP/p.json") \
		    <("$PY" -c 'import json,sys; print(json.load(sys.stdin)["steps"])' <"$TMP/d.json") \
		    || fail "$shape: default base differs from --base HEAD~1"
	done
}

# 1. The 2021 preview shape: the corpus files, verbatim.
R1=$TMP/preview
git_init "$R1"
EP=$R1/cli/endpoints/online/managed/canary-declarative-flow
mkdir -p "$EP"
cp -r "$FLOW/model-1" "$FLOW/model-2" "$R1/cli/endpoints/online/"
for f in 1-create-endpoint-with-blue 2-scale-blue 3-create-green \
    4-flight-green 5-full-green 6-delete-blue; do
	cp "$FLOW/managed/canary-declarative-flow/$f.yml" "$EP/endpoint.yml"
	commit "$R1" "$f"
done
run_flow "$R1" preview

# 2. Today's shape, written here: endpoint.yml plus blue.yml/green.yml.
R2=$TMP/split
git_init "$R2"
cp -r "$FLOW/model-1" "$FLOW/model-2" "$R2/"
mkdir -p "$R2/endpoints/my-endpoint"
endpoint() {
	cat >"$R2/endpoints/my-endpoint/endpoint.yml" <<EOF
\$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json
name: my-endpoint
auth_mode: key
traffic:
$(for t in "$@"; do echo "  ${t%=*}: ${t#*=}"; done)
EOF
}
deployment() { # NAME MODEL-N COUNT
	cat >"$R2/endpoints/my-endpoint/$1.yml" <<EOF
\$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
name: $1
endpoint_name: my-endpoint
model:
  name: model-$2
  version: 1
  path: ../../model-$2/model/sklearn_regression_model.pkl
code_configuration:
  code: ../../model-$2/onlinescoring/
  scoring_script: score.py
environment:
  name: env-model$2
  version: 1
  conda_file: ../../model-$2/environment/conda.yml
  image: mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04:20210301.v1
instance_type: Standard_F2s_v2
instance_count: $3
EOF
}
endpoint blue=100; deployment blue 1 1; commit "$R2" 1
deployment blue 1 2; commit "$R2" 2
endpoint blue=100 green=0; deployment green 2 2; commit "$R2" 3
endpoint blue=90 green=10; commit "$R2" 4
endpoint blue=0 green=100; commit "$R2" 5
endpoint green=100; rm "$R2/endpoints/my-endpoint/blue.yml"; commit "$R2" 6
run_flow "$R2" split

# 3. No change: exit 0 with --detailed-exitcode, and the text says so.
out=$(timeout 60 "$AMLOPS" --repo "$R2" plan --base HEAD --head HEAD --detailed-exitcode) \
    || fail "no-change plan exited $?"
[ "$out" = "No changes." ] || fail "no-change plan printed: $out"
echo "ok - no changes: exit 0"

echo "PASS: plan_canary"
