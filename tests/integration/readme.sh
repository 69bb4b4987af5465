#!/bin/bash
# Every command README.md shows is run or checked:
#
#   * the blocks marked <!-- runnable --> run in order, as one bash script
#     (set -euo pipefail) in a temp copy of the repository's manifests/,
#     with the built binary first on PATH as `amlops`, a git identity,
#     and HOME and XDG_CACHE_HOME in the temp dir (the host the first
#     `amlops apply` starts in the default state dir, ~/.local/state/amlops,
#     lives there; the README's own kill stops it);
#   * where a runnable block is followed by an <!-- output --> block, the
#     output shown must be what the block prints (ids, ports and times
#     masked);
#   * the predictions the walkthrough shows are the sample models' own;
#   * in every other sh block, each amlops command must exist and each
#     flag it uses must be in its --help, and every scripts/ or contrib/
#     path named must exist.
set -euo pipefail

: "${AMLOPS:?AMLOPS must name the amlops binary (ctest sets it)}"
AMLOPS=$(cd "$(dirname "$AMLOPS")" && pwd)/$(basename "$AMLOPS") # cd-proof
SRC=${AMLOPS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
README=$SRC/README.md
[ -f "$README" ] || { echo "FAIL: no README.md in $SRC" >&2; exit 1; }
$PY -c 'import sklearn' 2>/dev/null || {
	echo "SKIP: /usr/bin/python3 has no scikit-learn (python3-sklearn)"
	exit 0
}

T=$(mktemp -d /tmp/amlops-readme-test.XXXXXX)
HS=$T/home/.local/state/amlops # the walkthrough's host: the default state dir
STEP=0
WALK_PID=

host_pids() { # the hosts the README's commands started, from host.json
	local f
	for f in "$T/home/.local/state/amlops/host.json" "$T/xdg/amlops/host.json" "$T/fhost/host.json"; do
		[ -f "$f" ] && $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$f" 2>/dev/null
	done
	return 0
}

stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 150); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local p
	[ -n "$WALK_PID" ] && stop_pid "$WALK_PID"
	for p in $(host_pids); do
		stop_pid "$p"
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
ok() {
	STEP=$((STEP + 1))
	echo "ok $STEP - $*"
}

# 1. the commands of blocks that are not run: commands and flags exist
$PY "$HERE/readme_blocks.py" flags "$README" "$AMLOPS" >"$T/flags.out" 2>"$T/flags.err" ||
    fail "README commands: $(cat "$T/flags.err")"
ok "$(wc -l <"$T/flags.out") amlops command lines in README.md: each command and flag is in its --help"
$PY "$HERE/readme_blocks.py" paths "$README" "$SRC" >"$T/paths.out" 2>"$T/paths.err" ||
    fail "README paths: $(cat "$T/paths.err")"
ok "$(wc -l <"$T/paths.out") scripts/ and contrib/ paths named in README.md exist"

# the table of commands: each exists, and each exits 64 on an unknown
# flag as README.md says
cmds=$(sed -n 's/^| `\([a-z]*\) .*/\1/p' "$README")
[ "$(echo $cmds)" = "validate plan apply status endpoint reconcile watch host" ] ||
    fail "the commands table lists: $(echo $cmds)"
grep -qx 'Every command exits 64 on a usage error (an unknown flag, a missing' "$README" ||
    fail "README.md no longer says the usage exit code"
for c in $cmds; do
	rc=0
	(cd "$T" && timeout 30 "$AMLOPS" "$c" --no-such-flag) >/dev/null 2>"$T/usage.err" || rc=$?
	[ "$rc" = 64 ] || fail "amlops $c --no-such-flag exited $rc: $(cat "$T/usage.err")"
	grep -q "^usage: amlops $c" "$T/usage.err" || fail "amlops $c --no-such-flag: no usage: $(cat "$T/usage.err")"
done
ok "the commands table lists every command, and each exits 64 with its usage on an unknown flag"

# the walkthrough says every command block of it is run: each sh block
# between its heading and the next ## heading must be marked runnable
$PY - "$README" <<'PYEOF' || fail "README.md's walkthrough has a command block that is not run"
import re, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
start = next(i for i, l in enumerate(lines) if l.startswith("## Walkthrough"))
end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
bad = [i + 1 for i in range(start, end)
       if lines[i] == "```sh" and lines[i - 1] != "<!-- runnable -->"]
for n in bad:
    print("README.md:%d: a walkthrough sh block not marked <!-- runnable -->" % n, file=sys.stderr)
sys.exit(1 if bad else 0)
PYEOF
ok "every command block of the walkthrough is marked runnable"

# 2. the walkthrough, block by block
mkdir -p "$T/bin" "$T/home" "$T/clone" "$T/out"
ln -s "$AMLOPS" "$T/bin/amlops"
cp -r "$SRC/manifests" "$T/clone/"
$PY "$HERE/readme_blocks.py" script "$README" >"$T/walk.sh" || fail "cannot extract the runnable blocks"
nblocks=$(grep -c '^__readme_block ' "$T/walk.sh")
cat >"$T/run.sh" <<'EOF'
__readme_line=0
__readme_block() {
	__readme_line=$1
	echo "### README.md:$1"
}
set -euo pipefail
trap 'echo "FAIL: README.md block at line $__readme_line: \"$BASH_COMMAND\" exited $?" >&2' ERR
. "$1"
echo "### README walkthrough done"
EOF
(
	cd "$T/clone"
	export PATH=$T/bin:$PATH HOME=$T/home XDG_CACHE_HOME=$T/cache \
	    __readme_out=$T/out \
	    GIT_AUTHOR_NAME="README test" GIT_AUTHOR_EMAIL=readme@example.com \
	    GIT_COMMITTER_NAME="README test" GIT_COMMITTER_EMAIL=readme@example.com \
	    GIT_CONFIG_NOSYSTEM=1
	unset XDG_STATE_HOME AMLOPS_HOST_DIR AZURE_SUBSCRIPTION_ID AZURE_RESOURCE_GROUP AZUREML_WORKSPACE \
	    AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_ACCESS_TOKEN
	exec timeout 300 bash "$T/run.sh" "$T/walk.sh" </dev/null
) >"$T/walk.out" 2>"$T/walk.err" &
WALK_PID=$!
rc=0
wait "$WALK_PID" || rc=$?
WALK_PID=
if [ "$rc" != 0 ] || ! grep -qx "### README walkthrough done" "$T/walk.out"; then
	echo "--- stdout (tail):" >&2
	tail -n 40 "$T/walk.out" >&2
	echo "--- stderr (tail):" >&2
	tail -n 40 "$T/walk.err" >&2
	[ -f "$HS/host.log" ] && { echo "--- host.log (tail):" >&2; tail -n 20 "$HS/host.log" >&2; }
	fail "the README's runnable blocks exited $rc"
fi
ran=$(grep -c '^### README.md:' "$T/walk.out")
[ "$ran" = "$nblocks" ] || fail "$ran of $nblocks runnable blocks ran"
ok "the $nblocks runnable blocks of README.md ran in order and exited 0"

# what step 5 says apply prints on stderr, with ~ for $T/home; the
# README's last block stopped that host
for i in $(seq 100); do
	[ -e "$HS/host.json" ] || break
	sleep 0.1
done
[ -e "$HS/host.json" ] && fail "the README's kill did not stop the host within 10 s"
grep -qxF "amlops: started a local host in the background; its state is in $HS and its log in $HS/host.log" "$T/walk.err" ||
    fail "apply did not say it started a host: $(grep -m 3 started "$T/walk.err")"
grep -qF 'said so on stderr: `amlops: started a local host in the background; its
state is in ~/.local/state/amlops and its log in
~/.local/state/amlops/host.log`' "$README" || fail "README.md no longer quotes the host start message"
ok "the first apply started a host in the default state dir and said so, as README.md quotes; the README's kill stops it"

# 3. what the walkthrough shows is what it prints
README_HOME=$T/home $PY "$HERE/readme_blocks.py" compare "$README" "$T/out" >"$T/cmp.out" 2>"$T/cmp.err" ||
    fail "README outputs: $(cat "$T/cmp.err")"
ok "$(wc -l <"$T/cmp.out") outputs shown in README.md are what their blocks print"

grep -qx '\[204.0827, 65.7242\]' "$T/walk.out" || fail "no prediction of regression-1 (blue) in the walkthrough"
grep -qx '\[187.7424, 82.0493\]' "$T/walk.out" || fail "no prediction of regression-2 (green) in the walkthrough"
ok "the walkthrough scores both sample models: blue [204.0827, 65.7242], green [187.7424, 82.0493]"

if grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$T/walk.err" "$HS/host.log" 2>/dev/null; then
	fail "a sanitizer report in the walkthrough"
fi
ok "no sanitizer report from the commands or the host"

# the YAML reference's examples: the 2021 preview shape of the sample
# validates and plans the same three steps; the .amlops.yml example loads
mkdir -p "$T/yaml"
$PY "$HERE/readme_blocks.py" yaml "$README" "$T/yaml" >"$T/yaml.list" || fail "no yaml block in README.md"
pre=$(grep -l '^deployments:' $(cat "$T/yaml.list") | head -n 1)
cfg=$(grep -l '^paths:' $(cat "$T/yaml.list") | head -n 1)
[ -n "$pre" ] && [ -n "$cfg" ] || fail "README.md lost its preview-shape or .amlops.yml example"
Y=$T/shape
git init -q -b main "$Y"
cp -r "$SRC/manifests/." "$Y/"
rm "$Y/endpoints/sklearn-regression/blue.yml"
cp "$pre" "$Y/endpoints/sklearn-regression/endpoint.yml"
git -C "$Y" add -A
git -C "$Y" -c user.name=readme -c user.email=readme@example.com commit -q -m "preview shape"
(cd "$Y" && timeout 60 "$AMLOPS" validate) >"$T/y.out" 2>&1 || fail "the preview-shape example: $(cat "$T/y.out")"
grep -qx "2 files: 1 endpoint, 1 deployment, 1 skipped, no errors" "$T/y.out" || fail "validate: $(cat "$T/y.out")"
(cd "$Y" && timeout 60 "$AMLOPS" plan) >"$T/y.out" 2>&1 || fail "plan of the preview-shape example: $(cat "$T/y.out")"
grep -qx "  + deployment blue: deployment 'blue' is new: model 'regression-model:1', 1 x Standard_DS3_v2" "$T/y.out" &&
    grep -qx "Plan: 2 to create, 1 to update, 0 to delete." "$T/y.out" || fail "plan: $(cat "$T/y.out")"
grep -qF "(\`model 'regression-model:1'\`)" "$README" || fail "README.md no longer says what the preview shape plans"
cp "$cfg" "$Y/.amlops.yml"
git -C "$Y" add -A
git -C "$Y" -c user.name=readme -c user.email=readme@example.com commit -q -m ".amlops.yml"
(cd "$Y" && timeout 60 "$AMLOPS" plan) >"$T/y.out" 2>&1 || fail "plan with the .amlops.yml example: $(cat "$T/y.out")"
ok "the YAML reference's examples: the preview shape validates and plans, .amlops.yml loads"

# the JSON formats shown parse, and the plan example has the keys that
# amlops plan --format json prints
(cd "$Y" && timeout 60 "$AMLOPS" plan --head HEAD~1 --format json) >"$T/plan.json" 2>"$T/plan.err" ||
    fail "plan --format json: $(cat "$T/plan.err")"
$PY - "$README" "$T/plan.json" <<'PYEOF' || fail "the JSON examples of README.md"
import json, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
blocks = re.findall(r"^```json\n(.*?)^```$", text, re.M | re.S)
assert len(blocks) >= 2, "fewer than two json blocks"
shown = [json.loads(b) for b in blocks]
real = json.load(open(sys.argv[2]))
plans = [b for b in shown if "steps" in b and "summary" in b]
assert plans, "no plan example"
for p in plans:
    assert set(p) == set(real), "plan keys %s, amlops prints %s" % (sorted(p), sorted(real))
    for st in p["steps"]:
        assert set(st) == set(real["steps"][0]), "step keys %s" % sorted(st)
notes = [b for b in shown if "version" in b and "attempts" in b]
assert notes, "no note example"
PYEOF
ok "the note and plan JSON examples parse; the plan example has the keys amlops prints"

# 4. the messages Troubleshooting quotes are the ones users get: each
# case provoked in a repository of its own (state under $T/xdg, shown in
# README.md as ~/.local/state, i.e. /home/me/.local/state)
TS=$T/ts
HOSTS_STARTED=
quote() { # quote LINE...: README.md must quote each (masked)
	printf '%s\n' "$@" | sed "s#$T/xdg[0-9]*#/home/me/.local/state#g" |
	    $PY "$HERE/readme_blocks.py" quoted "$README" >>"$T/quoted.out" 2>"$T/quoted.err" ||
	    fail "$(cat "$T/quoted.err")"
}
am() { # amlops in $TS with the test's environment; output in $T/am.out
	(cd "$TS" && env -u AMLOPS_HOST_DIR HOME="$T/home" XDG_STATE_HOME="$T/xdg" \
	    XDG_CACHE_HOME="$T/cache" timeout 120 "$AMLOPS" "$@") >"$T/am.out" 2>&1
}
gts() { git -C "$TS" -c user.name=readme -c user.email=readme@example.com "$@"; }
mkdir -p "$TS"
git init -q -b main "$TS"
cp -r "$SRC/manifests/." "$TS/"
sed -e 's/^name: blue$/name: green/' -e 's/regression-1/regression-2/g' \
    "$TS/endpoints/sklearn-regression/blue.yml" >"$TS/endpoints/sklearn-regression/green.yml"
sed -i 's/^  blue: 100$/  green: 100/' "$TS/endpoints/sklearn-regression/endpoint.yml"
gts add -A && gts commit -q -m "green takes all traffic"
am apply --yes || { cat "$T/am.out" >&2; fail "troubleshooting: the first apply failed"; }

# a misspelt key (the example of step 3)
sed -i 's/^instance_type:/instanse_type:/' "$TS/endpoints/sklearn-regression/blue.yml"
rc=0; am validate || rc=$?
[ "$rc" = 1 ] || fail "validate of a misspelt key exited $rc"
quote "$(head -n 1 "$T/am.out")"
gts checkout -q -- .

# traffic that does not add up
sed -i 's/^  green: 100$/  green: 90/' "$TS/endpoints/sklearn-regression/endpoint.yml"
rc=0; am validate || rc=$?
[ "$rc" = 1 ] || fail "validate of traffic 90 exited $rc"
quote "$(head -n 1 "$T/am.out")"
gts checkout -q -- .

# an immutable field on a deployment with traffic
sed -i 's/^instance_type: Standard_DS3_v2$/instance_type: Standard_DS4_v2/' \
    "$TS/endpoints/sklearn-regression/green.yml"
gts commit -q -am "green on a bigger VM"
rc=0; am plan || rc=$?
[ "$rc" = 1 ] || fail "plan of an instance_type change exited $rc"
quote "$(grep -- '! refused:' "$T/am.out")"
gts reset -q --hard HEAD~1

# init() fails: green's score.py looks for a file that is not there
sed -i 's/"sklearn_regression_model.pkl"/"missing.pkl"/' "$TS/models/regression-2/onlinescoring/score.py"
gts commit -q -am "broken init"
rc=0; am apply --yes || rc=$?
[ "$rc" = 1 ] || fail "apply of a failing init() exited $rc"
quote "$(grep -- ': update code: FAILED' "$T/am.out")"

# no host running for amlops endpoint
rc=0
(cd "$TS" && env -u AMLOPS_HOST_DIR HOME="$T/home" XDG_STATE_HOME="$T/xdg2" \
    timeout 60 "$AMLOPS" endpoint list) >"$T/am.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "endpoint list without a host exited $rc"
quote "$(cat "$T/am.out")"

# throttling past the retry budget, from the host's test-only faults
"$AMLOPS" host --state-dir "$T/fhost" --faults >"$T/fhost.log" 2>&1 &
FHOST=$!
for i in $(seq 300); do
	[ -s "$T/fhost/host.json" ] && break
	kill -0 "$FHOST" 2>/dev/null || fail "the --faults host exited: $(cat "$T/fhost.log")"
	sleep 0.1
done
[ -s "$T/fhost/host.json" ] || fail "the --faults host did not start within 30 s"
furl=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$T/fhost/host.json")
ftok=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$T/fhost/host.json")
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $ftok" \
    -H 'Content-Type: application/json' \
    --data-binary '{"count":100,"status":429,"retry_after":0,"method":"PUT"}' "$furl/_amlops/faults") || code=000
[ "$code" = 200 ] || [ "$code" = 201 ] || [ "$code" = 204 ] || fail "POST /_amlops/faults answered $code"
# the sample alone, as a new user's first apply
TS=$T/ts2
mkdir -p "$TS"
git init -q -b main "$TS"
cp -r "$SRC/manifests/." "$TS/"
gts add -A && gts commit -q -m "the sample"
rc=0; am apply --yes --host-dir "$T/fhost" || rc=$?
stop_pid "$FHOST"
[ "$rc" = 1 ] || fail "apply against a throttling host exited $rc"
quote "$(grep -- ': create endpoint: FAILED' "$T/am.out")"
ok "the $(wc -l <"$T/quoted.out") messages Troubleshooting quotes are what amlops prints"

echo "PASS: readme"
