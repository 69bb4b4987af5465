#!/bin/bash
# amlops plan on a repository large enough (2,100 endpoint files) that the
# manifests load in two halves on two threads and the touched endpoints
# are planned in two halves on two threads: the full plan has every
# endpoint's steps, in name order, each exactly those of a one-endpoint
# repository; refusals from both halves come out in name order with
# their exact messages; and a change to every endpoint plans one update
# each.
set -euo pipefail

AMLOPS=${AMLOPS:?AMLOPS must name the amlops binary}
SRC=${AMLOPS_SRC:?AMLOPS_SRC must name the source tree}
PY=/usr/bin/python3
N=2100
TMP=$(mktemp -d /tmp/amlops-plan-large.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

R=$TMP/big
run() { timeout 300 "$AMLOPS" --repo "$1" "${@:2}"; }

$PY "$SRC/tests/bench/gen_plan_repo.py" "$R" "$N"
$PY "$SRC/tests/bench/gen_plan_repo.py" "$TMP/one" 1

# 1. the full plan: N times the one-endpoint plan, in name order
run "$R" plan --base root --head full --format json >"$TMP/full.json"
run "$TMP/one" plan --base root --head full --format json >"$TMP/one.json"
$PY - "$TMP/full.json" "$TMP/one.json" "$N" <<'EOF' || fail "full plan"
import json, sys
full = json.load(open(sys.argv[1]))
one = json.load(open(sys.argv[2]))
n = int(sys.argv[3])
per = len(one["steps"])
assert per == 4, per
assert len(full["steps"]) == n * per, len(full["steps"])
for i in range(n):
    name = "ep-%05d" % i
    got = json.dumps(full["steps"][i * per:(i + 1) * per], sort_keys=True)
    want = json.dumps(one["steps"], sort_keys=True).replace("ep-00000", name)
    assert got == want, (name, got, want)
assert full["summary"] == {"create": n * per - n, "update": n, "delete": 0}, full["summary"]
assert full["refused"] == [] and full["notes"] == []
EOF
echo "ok - the full plan of $N endpoints is $N one-endpoint plans in order"

# 2. every endpoint's blue scaled to 5 (from 2; from 3 for the one the
# generator's last commit scaled), two refused: one in each half
# (sed -i takes each file on its own: the first count of each file)
sed -i '0,/instance_count: [0-9]*/s//instance_count: 5/' \
    "$R"/endpoints/*/endpoint.yml
for e in ep-00007 ep-02093; do
	sed -i 's/^auth_mode: key/auth_mode: key\ncompute: azureml:k8s-1/' \
	    "$R/endpoints/$e/endpoint.yml"
done
git -C "$R" commit -q -a -m "scale all, move two"
rc=0
run "$R" plan --base one --head HEAD --format json >"$TMP/p.json" \
    2>"$TMP/err" || rc=$?
[ "$rc" = 1 ] || fail "refusals exited $rc"
want=""
for e in ep-00007 ep-02093; do
	want="${want}amlops: error: endpoint '$e': compute cannot change in place ('managed' -> 'kubernetes'); way out: create an endpoint with a new name, move clients to it, then remove '$e' from the repository
"
done
[ "$(cat "$TMP/err")" = "${want%$'\n'}" ] || fail "refusals said:
$(cat "$TMP/err")"
$PY - "$TMP/p.json" "$N" <<'EOF' || fail "scale plan"
import json, sys
p = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
names = ["ep-%05d" % i for i in range(n) if i not in (7, 2093)]
assert [s["endpoint"] for s in p["steps"]] == names, "steps"
for s in p["steps"]:
    assert (s["deployment"], s["action"], s["aspect"]) == ("blue", "update", "scale"), s
    before = 3 if s["endpoint"] == "ep-%05d" % (n // 2) else 2
    assert (s["before"], s["after"]) == (before, 5), s
assert [r["endpoint"] for r in p["refused"]] == ["ep-00007", "ep-02093"], p["refused"]
assert [r["location"] for r in p["refused"]] == [
    "endpoints/ep-00007/endpoint.yml:2:7", "endpoints/ep-02093/endpoint.yml:2:7"]
EOF
echo "ok - refusals from both halves, in name order, and $((N - 2)) scale steps"
