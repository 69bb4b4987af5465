#!/bin/bash
# The sample repository in manifests/ deploys to the local target with
# one `amlops apply`, which starts a host in the background itself (none
# runs) and says where its state and log are; the endpoint then answers
# the sample scoring request with a prediction from the scikit-learn
# model. The endpoint's key never shows in apply's output or the note.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

SRC=${AMLOPS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -d "$SRC/manifests/endpoints" ] || fail "no manifests/ in $SRC"
/usr/bin/python3 -c 'import sklearn' 2>/dev/null || {
	echo "SKIP: /usr/bin/python3 has no scikit-learn (python3-sklearn)"
	exit 0
}

# no host: apply must start one in the default state dir ($XDG_STATE_HOME)
unset AMLOPS_HOST_DIR
R=$T/repo
git_init "$R"
cp -r "$SRC/manifests/." "$R/"
commit "$R" "the sample"

apply_ok "$R"
grep -q "^amlops: started a local host in the background; its state is in $T/xdg/amlops and its log in $T/xdg/amlops/host.log$" "$T/apply.err" ||
    fail "apply did not say where the host it started keeps its state: $(cat "$T/apply.err")"
grep -q "^Apply complete: 3 steps succeeded" "$T/apply.out" ||
    fail "summary: $(grep Apply "$T/apply.out")"
ok "one amlops apply deploys the sample, starting a local host"

HJ=$T/xdg/amlops/host.json
[ -s "$HJ" ] || fail "no host.json in the default state dir"
URL=$(jf "$HJ" "d['url']")
TOKEN=$(jf "$HJ" "d['token']")
SCORING=$(jf "$HJ" "d['scoring_url']")
KEY=$(key sklearn-regression)
code=$(curl -sS -o "$T/score" -w '%{http_code}' --max-time 30 \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    --data-binary @"$R/models/sample-request.json" \
    "$SCORING/endpoints/sklearn-regression/score") || code=000
[ "$code" = 200 ] || fail "scoring answered $code: $(head -c 500 "$T/score")"
"$PY" -c '
import json, sys
v = json.load(open(sys.argv[1]))
if isinstance(v, str):
    v = json.loads(v)
assert isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v), v
' "$T/score" || fail "not two predictions: $(head -c 500 "$T/score")"
ok "the endpoint answers the sample request: $(head -c 100 "$T/score")"

# a second apply finds the host running and changes nothing
apply_ok "$R"
grep -qx "No changes." "$T/apply.out" || fail "second apply: $(cat "$T/apply.out")"
grep -q "started a local host" "$T/apply.err" && fail "a second host was started"
ok "a second apply uses the running host and changes nothing"

# the key is a secret: not in the output, the log or the note
git -C "$R" notes --ref amlops show HEAD >"$T/note.json"
for f in "$T/apply.out" "$T/apply.err" "$T/note.json"; do
	grep -qF "$KEY" "$f" && fail "the endpoint key is in $(basename "$f")"
done
grep -qF "$TOKEN" "$T/note.json" && fail "the host token is in the note"
ok "the endpoint key and the host token appear in no output and no note"

echo "PASS: apply_manifests"
