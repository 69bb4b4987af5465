#!/bin/bash
# scripts/demo.sh end to end with the built binary (AMLOPS_BIN: no setup,
# no build): its output carries the prediction of the sample model, both
# deployments' answers after the blue/green commit and the final note; it
# stops everything it started and removes its temp dir; no key of the
# endpoint shows in its output. Then a stage that fails: the demo exits 1
# naming the failing command with its log, and still cleans up.
set -euo pipefail

: "${AMLOPS:?AMLOPS must name the amlops binary (ctest sets it)}"
AMLOPS=$(cd "$(dirname "$AMLOPS")" && pwd)/$(basename "$AMLOPS") # cd-proof
SRC=${AMLOPS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -x "$SRC/scripts/demo.sh" ] || { echo "FAIL: no scripts/demo.sh in $SRC" >&2; exit 1; }
/usr/bin/python3 -c 'import sklearn' 2>/dev/null || {
	echo "SKIP: /usr/bin/python3 has no scikit-learn (python3-sklearn)"
	exit 0
}

T=$(mktemp -d /tmp/amlops-demo-test.XXXXXX)
STEP=0
cleanup() {
	local p
	# the demo's own processes, should it have left any: their
	# arguments name its temp dir, which is inside $T
	for p in $(pgrep -f -- "--state-dir $T/" 2>/dev/null || true); do
		kill -KILL "$p" 2>/dev/null || true
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "FAIL: $*" >&2
	[ -f "$T/out" ] && { echo "--- demo output:" >&2; cat "$T/out" >&2; }
	exit 1
}
ok() {
	STEP=$((STEP + 1))
	echo "ok $STEP - $*"
}
has() { # has LINE-REGEX: the demo's output has a matching line
	grep -qE -- "$1" "$T/out" || fail "no line matching '$1'"
}
# no process may be left whose arguments name the demo's temp dir
no_leftovers() {
	local left
	left=$(pgrep -af -- "--state-dir $T/" || true)
	[ -z "$left" ] || fail "processes left running: $left"
	[ -z "$(ls -A "$T/tmp")" ] || fail "left in TMPDIR: $(ls -A "$T/tmp")"
	[ -z "$(ls -A "$T/xdg" 2>/dev/null)" ] || fail "wrote to the default state dir: $(ls -A "$T/xdg")"
}

mkdir -p "$T/tmp"
export XDG_STATE_HOME=$T/xdg
rc=0
start=$(date +%s)
AMLOPS_BIN=$AMLOPS TMPDIR=$T/tmp timeout 240 "$SRC/scripts/demo.sh" >"$T/out" 2>&1 || rc=$?
secs=$(($(date +%s) - start))
[ "$rc" = 0 ] || fail "scripts/demo.sh exited $rc"
ok "scripts/demo.sh exits 0 (${secs}s)"

has '^\[1/9\] repository: '"$T"'/tmp/amlops-demo\.[^/]+/repo, commit [0-9a-f]{12} with models/ and environment/ from manifests/$'
has '^\[2/9\] host: amlops host serves the Azure ML REST API on http://127\.0\.0\.1:[0-9]+ '
has '^\[3/9\] watch: amlops watch applies each new commit of .* \(inotify\)$'
has '^\[5/9\] note on [0-9a-f]{12}: succeeded \(3 of 3 steps succeeded\)$'
ok "each stage printed its line; the note of the sample's commit says succeeded"

has '^\[6/9\] prediction: amlops endpoint invoke sklearn-regression --request-file models/sample-request.json -> \[204\.0827, 65\.7242\]$'
ok "the prediction of the sample model (regression-1) is printed"

has "^        \+ deployment green: deployment 'green' is new"
has '^        ~ endpoint sklearn-regression traffic: blue=100 -> blue=90, green=10$'
has '^\[8/9\] note on [0-9a-f]{12}: succeeded \(2 of 2 steps succeeded\)$'
has '^\[9/9\] answers: blue \[204\.0827, 65\.7242\], green \[187\.7424, 82\.0493\]; of 20 requests to sklearn-regression, [0-9]+ went to blue and [0-9]+ to green$'
ok "the blue/green commit: its plan, its apply and both deployments' answers"

# the final note, as amlops status prints it, is the last thing before cleanup
sed -n '/^== amlops status /,$p' "$T/out" >"$T/final"
grep -qx 'result   succeeded (2 of 2 steps succeeded)' "$T/final" || fail "final status: $(cat "$T/final")"
grep -qE '^  sklearn-regression  Succeeded  http://127\.0\.0\.1:[0-9]+/endpoints/sklearn-regression/score  traffic blue=90 green=10$' "$T/final" ||
    fail "final status endpoints: $(cat "$T/final")"
tail -n 1 "$T/out" | grep -qE "^== cleanup: stopped amlops watch and amlops host, removed $T/tmp/amlops-demo\.[^/]+$" ||
    fail "last line: $(tail -n 1 "$T/out")"
ok "amlops status shows the final note; cleanup is the last line"

no_leftovers
ok "no process and no temp file left behind"

# README.md shows a run of the demo: it must be this one, line by line
# (ids, ports and times masked; the temp dir and the random split of the
# 20 requests as README shows them)
if [ -f "$SRC/README.md" ]; then
	grep -v -e '^== amlops: ' -e '^$' "$T/out" |
	    sed -e "s#$T/tmp/amlops-demo\.[A-Za-z0-9]*#/tmp/amlops-demo.x1Qw2E#g" \
	        -e 's/ [0-9]* went to blue and [0-9]* to green$/ 18 went to blue and 2 to green/' |
	    /usr/bin/python3 "$(dirname "$0")/readme_blocks.py" quoted "$SRC/README.md" >"$T/quoted" 2>"$T/quoted.err" ||
	    fail "README.md's demo output is stale: $(cat "$T/quoted.err")"
	ok "README.md shows the demo's output as it is ($(wc -l <"$T/quoted") lines)"
fi

# no key: the keys live in the host's state, kept this time
rc=0
AMLOPS_BIN=$AMLOPS AMLOPS_DEMO_KEEP=1 TMPDIR=$T/tmp timeout 240 "$SRC/scripts/demo.sh" >"$T/out" 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "scripts/demo.sh (AMLOPS_DEMO_KEEP=1) exited $rc"
kept=$(sed -n 's/^== cleanup: stopped amlops watch and amlops host; kept //p' "$T/out")
[ -d "$kept/host" ] || fail "AMLOPS_DEMO_KEEP=1 did not keep the temp dir"
/usr/bin/python3 - "$kept/host" >"$T/keys" <<'EOF'
import json, os, re, sys
# every string under a key named like a secret in the host's state files
def walk(v, k=""):
    if isinstance(v, dict):
        for kk, vv in v.items():
            yield from walk(vv, kk)
    elif isinstance(v, list):
        for vv in v:
            yield from walk(vv, k)
    elif isinstance(v, str) and re.search(r"(?i)key|token", k) and len(v) >= 16:
        yield v
for f in ("state.json", "host.json"):
    p = os.path.join(sys.argv[1], f)
    if os.path.exists(p):
        for s in walk(json.load(open(p))):
            print(s)
EOF
[ -s "$T/keys" ] || fail "found no key in the host's state to look for"
while read -r k; do
	grep -qF -- "$k" "$T/out" && fail "a key or token of the host is in the demo's output"
done <"$T/keys"
rm -rf "$kept"
no_leftovers
ok "no key or token of the host appears in the demo's output ($(wc -l <"$T/keys") checked)"

# a stage that fails: this amlops cannot score
cat >"$T/amlops-broken" <<EOF
#!/bin/sh
case " \$* " in
*" invoke "*) echo "amlops: error: scoring is broken in this test" >&2; exit 1 ;;
esac
exec "$AMLOPS" "\$@"
EOF
chmod +x "$T/amlops-broken"
rc=0
AMLOPS_BIN=$T/amlops-broken TMPDIR=$T/tmp timeout 240 "$SRC/scripts/demo.sh" >"$T/out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "a failing stage: the demo exited $rc, not 1"
has "^demo: FAILED: '$T/amlops-broken endpoint invoke sklearn-regression --request-file $T/tmp/amlops-demo\.[^/]+/repo/models/sample-request\.json --host-dir $T/tmp/amlops-demo\.[^/]+/host' exited 1$"
has '^--- invoke\.out \(last 40 lines\):$'
has '^amlops: error: scoring is broken in this test$'
has '^--- host\.log \(last 40 lines\):$'
has '^--- watch\.log \(last 40 lines\):$'
grep -q '^\[6/9\]' "$T/out" && fail "the demo went on after the failing stage"
tail -n 1 "$T/out" | grep -qE "^== cleanup: stopped amlops watch and amlops host, removed " ||
    fail "last line: $(tail -n 1 "$T/out")"
no_leftovers
ok "a failing stage: exit 1, the command, its log and the services' logs; still cleaned up"

# a note that says failed: the demo stops there and shows the note
cat >"$T/amlops-failed" <<WRAP
#!/bin/sh
case " \$* " in
*" status "*) echo "result   failed (0 of 3 steps succeeded)"; exit 0 ;;
esac
exec "$AMLOPS" "\$@"
WRAP
chmod +x "$T/amlops-failed"
rc=0
AMLOPS_BIN=$T/amlops-failed TMPDIR=$T/tmp timeout 240 "$SRC/scripts/demo.sh" >"$T/out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "a failed note: the demo exited $rc, not 1"
has '^demo: FAILED: the note of [0-9a-f]{12} says: failed \(0 of 3 steps succeeded\)$'
has '^--- status\.out \(last 40 lines\):$'
grep -q '^\[5/9\]' "$T/out" && fail "the demo went on after a failed note"
tail -n 1 "$T/out" | grep -qE "^== cleanup: stopped amlops watch and amlops host, removed " ||
    fail "last line: $(tail -n 1 "$T/out")"
[ "$(grep -c '^== cleanup' "$T/out")" = 1 ] || fail "cleanup ran more than once"
no_leftovers
ok "a note that says failed: exit 1 with the note and the logs; cleaned up once"

echo "PASS: demo"
