#!/bin/bash
# amlops plan through the real binary: every bad input with its exact
# message and exit code, the default base (applied ref, else parent), the
# markdown format, and --live against a real `amlops host` with
# endpoints of its own (one owned by amlops, one not).
set -euo pipefail

AMLOPS=${AMLOPS:?AMLOPS must name the amlops binary}
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/amlops-plan-cli.XXXXXX)
# never the user's default state dir or host: tests run in parallel
export XDG_STATE_HOME=$TMP/xdg XDG_CACHE_HOME=$TMP/cache
unset AMLOPS_HOST_DIR
HOSTPID=
cleanup() {
	if [ -n "$HOSTPID" ] && kill -0 "$HOSTPID" 2>/dev/null; then
		kill "$HOSTPID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$HOSTPID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$HOSTPID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

R=$TMP/repo
run() { timeout 60 "$AMLOPS" --repo "$R" "$@"; }

# expect RC STDERR-FILE-CONTENT -- ARGS...: exit code and exact stderr
expect() {
	local want_rc=$1 want_err=$2 rc=0
	shift 3
	run "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" = "$want_rc" ] || { cat "$TMP/err" >&2; fail "'$*' exited $rc, expected $want_rc"; }
	[ "$(cat "$TMP/err")" = "$want_err" ] || fail "'$*' said:
$(cat "$TMP/err")
expected:
$want_err"
}

git init -q -b main "$R"
git -C "$R" config user.name amlops-test
git -C "$R" config user.email test@example.com
mkdir -p "$R/ep" "$R/m"
cat >"$R/ep/endpoint.yml" <<'EOF'
name: churn
auth_mode: key
traffic:
  blue: 100
EOF
cat >"$R/ep/blue.yml" <<'EOF'
name: blue
endpoint_name: churn
model:
  name: churn-model
  version: 3
  path: ../m/model.pkl
code_configuration:
  code: ../m/src
  scoring_script: score.py
environment:
  image: mcr.microsoft.com/azureml/base:1
instance_type: Standard_DS3_v2
instance_count: 1
EOF
echo v1 >"$R/m/model.pkl"
mkdir -p "$R/m/src" && echo 'def init(): pass' >"$R/m/src/score.py"
git -C "$R" add -A && git -C "$R" commit -q -m one
C1=$(git -C "$R" rev-parse HEAD)

# 1. content changed under a kept version
echo v2 >"$R/m/model.pkl"
git -C "$R" commit -q -a -m "retrain"
C2=$(git -C "$R" rev-parse HEAD)
OLD=$(git -C "$R" rev-parse "$C1:m/model.pkl"); NEW=$(git -C "$R" rev-parse "$C2:m/model.pkl")
expect 1 "ep/blue.yml:4:3: 'm/model.pkl': version '3' of model 'churn-model' is unchanged but its content changed (${OLD:0:12} -> ${NEW:0:12}); bump the version or drop it to let amlops version it
amlops: error: 1 problem in ${C2:0:12}" -- plan --detailed-exitcode
echo "ok - a kept version with changed content is refused"

# 2. bumping it plans a model update
sed -i 's/version: 3/version: 4/' "$R/ep/blue.yml"
git -C "$R" commit -q -a -m "bump"
run plan --base "$C1" --format json --detailed-exitcode >"$TMP/p.json" && rc=0 || rc=$?
[ "$rc" = 2 ] || fail "model bump exited $rc"
"$PY" -c '
import json, sys
s = json.load(open(sys.argv[1]))["steps"]
assert [(x["deployment"], x["aspect"], x["before"], x["after"]) for x in s] == \
    [("blue", "model", "churn-model:3", "churn-model:4")], s
' "$TMP/p.json" || fail "model bump steps"
echo "ok - a bumped version is a model update"

# 3. YAML errors come out as FILE:LINE:COL lines
sed -i 's/instance_count: 1/instanse_count: 1/' "$R/ep/blue.yml"
git -C "$R" commit -q -a -m typo
C4=$(git -C "$R" rev-parse HEAD)
expect 1 "ep/blue.yml:13:1: unknown key 'instanse_count' (did you mean 'instance_count'?)
amlops: error: 1 problem in ${C4:0:12}" -- plan
sed -i 's/instanse_count: 1/instance_count: 1/' "$R/ep/blue.yml"

# 4. .amlops.yml errors too
printf 'paths: [ep]\ncolour: red\n' >"$R/.amlops.yml"
git -C "$R" add -A && git -C "$R" commit -q -m config
C5=$(git -C "$R" rev-parse HEAD)
expect 1 ".amlops.yml:2:1: unknown key 'colour'
amlops: error: 1 problem in ${C5:0:12}" -- plan
printf 'paths: [ep]\n' >"$R/.amlops.yml"
git -C "$R" add -A && git -C "$R" commit -q -m "config fixed"
echo "ok - YAML and .amlops.yml errors carry FILE:LINE:COL"

# 5. revisions and usage
expect 1 "amlops: error: unknown revision 'nope'" -- plan --base nope
expect 1 "amlops: error: unknown revision 'nope'" -- plan --head nope
expect 64 "amlops: plan: unknown format 'xml' (expected 'text', 'json' or 'markdown')
$(run plan --help)" -- plan --format xml
expect 64 "amlops: plan: --live plans against the target; it takes no --base
$(run plan --help)" -- plan --live --base HEAD
expect 64 "amlops: plan: unexpected argument 'extra'
$(run plan --help)" -- plan extra
expect 1 "amlops: error: 'no/such/repo': cannot open repository: failed to resolve path 'no/such/repo': No such file or directory" -- \
    --repo no/such/repo plan
echo "ok - revision and usage errors"

# 6. the default base: the applied ref wins over the parent
run plan --format json >"$TMP/p.json"
[ "$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["steps"]))' "$TMP/p.json")" = 0 ] \
    || fail "HEAD against its parent should be empty"
git -C "$R" update-ref refs/amlops/applied/local "$C1"
run plan --format json >"$TMP/p.json"
"$PY" -c '
import json, sys
p = json.load(open(sys.argv[1]))
assert p["base"] == sys.argv[2], p["base"]
assert [(x["aspect"]) for x in p["steps"]] == ["model"], p["steps"]
' "$TMP/p.json" "$C1" || fail "default base is not the applied ref"
run --target azure plan --format json >"$TMP/p.json"
[ "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["base"])' "$TMP/p.json")" != "$C1" ] \
    || fail "the applied ref of another target was used"
echo "ok - default base: refs/amlops/applied/TARGET, else the parent"

# 7. markdown
run plan --base "$C1" --format markdown >"$TMP/p.md"
grep -q "churn" "$TMP/p.md" && grep -q "model" "$TMP/p.md" || fail "markdown: $(cat "$TMP/p.md")"
echo "ok - markdown"

# 8. --live against a real host
AMLOPS_HOST_DIR=$TMP/nohost expect 1 "amlops: error: target 'local': no amlops host is running on state dir '$TMP/nohost' (start one with 'amlops host --state-dir $TMP/nohost')" -- plan --live
export AMLOPS_HOST_DIR=$TMP/host
timeout 30 "$AMLOPS" host --state-dir "$AMLOPS_HOST_DIR" --detach >/dev/null
for _ in $(seq 100); do [ -s "$AMLOPS_HOST_DIR/host.json" ] && break; sleep 0.1; done
read -r URL TOKEN HOSTPID < <("$PY" -c '
import json, sys
h = json.load(open(sys.argv[1]))
print(h["url"], h["token"], h["pid"])' "$AMLOPS_HOST_DIR/host.json")
WS=/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.MachineLearningServices/workspaces/local
put_endpoint() {
	curl -sf -m 10 -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
	    "$URL$WS/onlineEndpoints/$1?api-version=2024-04-01" \
	    -d '{"location":"local","tags":'"$2"',"properties":{"authMode":"Key"}}' >/dev/null \
	    || fail "PUT endpoint $1"
}
put_endpoint churn '{"managed-by":"amlops"}'
put_endpoint orphan '{"managed-by":"amlops"}'
put_endpoint foreign '{}'
run plan --live --format json >"$TMP/p.json" || fail "plan --live exited $?"
"$PY" -c '
import json, sys
p = json.load(open(sys.argv[1]))
got = [(x["endpoint"], x["deployment"], x["action"], x["aspect"]) for x in p["steps"]]
want = [("churn", "blue", "create", "deployment"), ("churn", None, "update", "traffic"),
        ("orphan", None, "delete", "endpoint")]
assert got == want, got
assert p["base"] is None, p["base"]
assert [n["endpoint"] for n in p["notes"]] == ["foreign"], p["notes"]
' "$TMP/p.json" || fail "plan --live steps"
echo "ok - --live: existing endpoint kept, owned orphan deleted, foreign left alone"
echo "PASS: plan_cli"
