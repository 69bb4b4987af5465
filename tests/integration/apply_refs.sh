#!/bin/bash
# Registered references (azureml:NAME:VERSION) are checked before any step
# runs: a deployment that names a version the workspace lacks fails the
# apply with the deployment, the reference and where it is written, and no
# mutating request reaches the host; the note records why nothing ran. A
# reference that exists lets the apply through.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

start_host
R=$T/repo
git_init "$R"
fixture_common "$R"
mkdir -p "$R/endpoints/refs"
cat >"$R/endpoints/refs/endpoint.yml" <<'EOF'
name: refs
auth_mode: key
traffic:
  blue: 100
  green: 0
EOF
# ref_deployment NAME MODEL: a deployment whose model is a reference
ref_deployment() {
	cat >"$R/endpoints/refs/$1.yml" <<EOF
name: $1
endpoint_name: refs
model: $2
code_configuration:
  code: ../../code
  scoring_script: score.py
environment:
  image: mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest
instance_type: Standard_DS2_v2
instance_count: 1
EOF
}
split_deployment "$R" refs blue 1
ref_deployment green azureml:no-such-model:1
commit "$R" "green names a model the workspace lacks"
C1=$(git -C "$R" rev-parse HEAD)

apply_fail "$R"
sed 's/(request id [^)]*)/(request id X)/' "$T/apply.err" >"$T/err.norm"
want="amlops: error: endpoints/refs/green.yml:3:8: deployment 'refs/green': model 'azureml:no-such-model:1' does not exist in the workspace (request id X)"
grep -qxF "$want" "$T/err.norm" ||
    fail "stderr lacks the line '$want'"
ok "a missing reference fails the apply, saying which and where"

# the host records every mutating request in operations.log
if [ -e "$T/state/operations.log" ]; then
	[ "$(count_requests)" = 0 ] ||
	    fail "$(count_requests) mutating request(s) were sent: $(grep '"event":"request"' "$T/state/operations.log")"
fi
grep -q 'method=GET path=.*/models/no-such-model/versions/1 status=404' "$T/host.err" ||
    fail "the host was not asked for the model"
ok "no mutating request reached the host"

[ "$(note_get "$R" "$C1" "d['result']")" = failed ] ||
    fail "the note's result is not failed"
[ "$(note_get "$R" "$C1" "sorted(set(s['status'] for s in d['steps']))")" = '["skipped"]' ] ||
    fail "the note's steps are not all skipped: $(cat "$T/note.json")"
[ "$(note_get "$R" "$C1" "sorted(set(s['error']['code'] for s in d['steps']))")" = '["ReferenceNotFound"]' ] ||
    fail "the note's steps lack the code ReferenceNotFound: $(cat "$T/note.json")"
note_get "$R" "$C1" "d['steps'][0]['error']['message']" |
    sed 's/(request id [^)]*)/(request id X)/' >"$T/msg"
[ "$(cat "$T/msg")" = "${want#amlops: error: }" ] ||
    fail "the note's message is '$(cat "$T/msg")'"
git -C "$R" rev-parse -q --verify refs/amlops/applied/local >/dev/null &&
    fail "refs/amlops/applied/local moved"
ok "the note records the missing reference; the applied ref did not move"

# the same name and version, registered: the apply goes through
curl -sS -o /dev/null --max-time 10 -X PUT -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' \
    --data-binary "{\"properties\":{\"modelUri\":\"file://$R/models/green\"}}" \
    "$URL/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.MachineLearningServices/workspaces/local/models/no-such-model/versions/1?api-version=2024-04-01" ||
    fail "cannot register the model"
apply_ok "$R"
[ "$(note_get "$R" "$C1" "d['result']")" = succeeded ] ||
    fail "the note's result is not succeeded after the model was registered"
[ "$(deployments refs)" = "blue green" ] ||
    fail "deployments after the apply: $(deployments refs)"
ok "once the reference exists the same commit applies"
