#!/bin/bash
# `amlops endpoint list|show|invoke|logs|credentials|delete` through the
# real binary against a real `amlops host` running a score.py written
# here: both outputs, wrong endpoint and deployment names, a missing
# request file, scoring errors, the traffic guard on delete, and the keys
# and tokens appearing only where they were asked for.
set -euo pipefail
. "$(dirname "$0")/host_lib.bash"

NRUN=0
RID='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'

# am RC ARGS...: runs amlops against the host (ARGS may instead start
# with `env ...` and name the binary); stdout in $T/out, stderr in $T/err,
# each also kept as $T/runs/N.{out,err} for the secret check (runs that
# were asked for secrets are moved to $T/asked/ by `asked`).
am() {
	local want=$1 rc=0
	shift
	NRUN=$((NRUN + 1))
	[ "$1" = env ] || set -- "$AMLOPS" "$@"
	AMLOPS_HOST_DIR=$T/state timeout 60 "$@" \
	    >"$T/out" 2>"$T/err" </dev/null || rc=$?
	mkdir -p "$T/runs"
	cp "$T/out" "$T/runs/$NRUN.out"
	cp "$T/err" "$T/runs/$NRUN.err"
	if [ "$rc" != "$want" ]; then
		echo "--- amlops $*: stdout:" >&2
		cat "$T/out" >&2
		echo "--- stderr:" >&2
		cat "$T/err" >&2
		fail "amlops $* exited $rc, expected $want"
	fi
	if grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$T/err"; then
		fail "sanitizer report from amlops $*"
	fi
	return 0
}

# asked: the last run printed secrets on purpose.
asked() {
	mkdir -p "$T/asked"
	mv "$T/runs/$NRUN.out" "$T/runs/$NRUN.err" "$T/asked/"
}

# tty CMD [INPUT]: runs a shell command line under a pseudo-terminal,
# typing INPUT; what the terminal shows (both streams) in $T/tty.
tty() {
	local rc=0
	NRUN=$((NRUN + 1))
	printf '%s' "${2-}" | AMLOPS_HOST_DIR=$T/state timeout 60 \
	    script -qec "$1" /dev/null >"$T/tty" 2>&1 || rc=$?
	mkdir -p "$T/runs"
	cp "$T/tty" "$T/runs/$NRUN.out"
	TTY_RC=$rc
}

err_is() {
	[ "$(cat "$T/err")" = "$1" ] ||
	    fail "stderr: '$(cat "$T/err")', expected '$1'"
}

err_like() {
	grep -Eqx -- "$1" "$T/err" ||
	    fail "stderr: '$(cat "$T/err")', expected a line like '$1'"
}

out_has() {
	grep -Fq -- "$1" "$T/out" || fail "stdout lacks '$1': $(cat "$T/out")"
}

j() { # EXPR over the JSON on stdout
	jf "$T/out" "$1"
}

# -- a score.py of our own: sums a list, names the deployment that ran,
# raises when asked to, and says when init() ran
mkdir -p "$T/code" "$T/models/model"
cat >"$T/code/score.py" <<'EOF'
import json, os

def init():
    print("endpoint-test init " + os.environ["WHO"], flush=True)

def run(raw):
    d = json.loads(raw)
    if d.get("fail"):
        raise ValueError("asked to fail")
    print("endpoint-test scored %d items" % len(d["data"]), flush=True)
    return {"sum": sum(d["data"]), "who": os.environ["WHO"]}
EOF
echo weights >"$T/models/model/weights.txt"

start_host --op-delay-ms 700
req PUT "$(a "$WS/codes/sum/versions/1")" "{\"properties\":{\"codeUri\":\"file://$T/code\"}}"
expect 201 "code PUT"
req PUT "$(a "$WS/models/m/versions/1")" "$(model_body "$T/models/model")"
expect 201 "model PUT"

mkdep() { # ENDPOINT NAME
	req PUT "$(a "$WS/onlineEndpoints/$1/deployments/$2")" "$(cat <<EOF
{"location":"local","sku":{"name":"Default","capacity":1},
 "properties":{"endpointComputeType":"Managed","instanceType":"Standard_DS3_v2",
  "codeConfiguration":{"codeId":"$WS/codes/sum/versions/1","scoringScript":"score.py"},
  "model":"azureml:m:1","environmentVariables":{"WHO":"$2"}}}
EOF
)"
	expect 201 "deployment $1/$2"
	wait_op
	[ "$OPSTATUS" = Succeeded ] || fail "deployment $1/$2 ended $OPSTATUS: $(cat "$T/op")"
}

mkep() { # NAME AUTHMODE [TRAFFIC]
	req PUT "$(a "$WS/onlineEndpoints/$1")" "$(ep_body "$2" "${3-}")"
	case $STATUS in 200 | 201) ;; *) fail "endpoint $1: $STATUS" ;; esac
	wait_op
	[ "$OPSTATUS" = Succeeded ] || fail "endpoint $1 ended $OPSTATUS"
}

mkep blue-ep Key
mkdep blue-ep blue
mkdep blue-ep green
mkep blue-ep Key '{"blue":100,"green":0}'
mkep tok-ep AMLToken
mkdep tok-ep solo
mkep tok-ep AMLToken '{"solo":100}'
mkep aad-ep AADToken
req POST "$(a "$WS/onlineEndpoints/blue-ep/listKeys")"
expect 200
K1=$(jb "d['primaryKey']")
K2=$(jb "d['secondaryKey']")
[ ${#K1} -ge 16 ] && [ ${#K2} -ge 16 ] || fail "listKeys gave no keys"
: >"$T/body" # fail() shows the last body: not this one
ok "host with blue-ep (key; blue 100%, green 0%), tok-ep (AMLToken) and aad-ep (AADToken)"

# -- list
am 0 endpoint list
head -n 1 "$T/out" | grep -Eq '^NAME +AUTH +STATE +TRAFFIC +SCORING URI$' ||
    fail "list header: $(head -n 1 "$T/out")"
grep -Eq "^blue-ep +key +Succeeded +blue=100 green=0 +$SCORING/endpoints/blue-ep/score$" "$T/out" ||
    fail "list row of blue-ep: $(cat "$T/out")"
grep -Eq "^tok-ep +aml_token +Succeeded +solo=100 +$SCORING/endpoints/tok-ep/score$" "$T/out" ||
    fail "list row of tok-ep: $(cat "$T/out")"
grep -Eq "^aad-ep +aad_token +Succeeded +- +$SCORING/endpoints/aad-ep/score$" "$T/out" ||
    fail "list row of aad-ep: $(cat "$T/out")"
[ "$(wc -l <"$T/out")" = 4 ] || fail "list: $(cat "$T/out")"
am 0 --output json endpoint list
[ "$(j "[e['name'] for e in d]")" = '["aad-ep", "blue-ep", "tok-ep"]' ] || fail "list json names"
[ "$(j "d[1]['traffic']")" = '{"blue": 100, "green": 0}' ] || fail "list json traffic"
[ "$(j "d[2]['authMode']")" = aml_token ] || fail "list json auth"
[ "$(j "d[1]['scoringUri']")" = "$SCORING/endpoints/blue-ep/score" ] || fail "list json uri"
ok "list: a table and JSON with auth mode, state, traffic and scoring URI"

# the bash completion asks the same list for endpoint names
COMPLETION=${AMLOPS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}/contrib/completion/amlops.bash
comp() { # EXPECTED WORDS...: completes the last word, as bash would
	local want=$1 got
	shift
	got=$(AMLOPS_HOST_DIR=$T/state bash -c '. "$1"; shift; COMP_WORDS=("$@");
		COMP_CWORD=$(($# - 1)); _amlops; echo "${COMPREPLY[*]}"' _ "$COMPLETION" "$@")
	[ "$got" = "$want" ] || fail "completing '$*': got '$got', expected '$want'"
}
comp "blue-ep" "$AMLOPS" endpoint show b
comp "aad-ep blue-ep tok-ep" "$AMLOPS" endpoint invoke --deployment blue ""
comp "tok-ep" "$AMLOPS" --target local endpoint logs --host-dir "$T/state" t
comp "" "$AMLOPS" endpoint show blue-ep ""
comp "" "$AMLOPS" endpoint logs --host-dir "$T/nohost" ""
ok "completion: endpoint names from the target, only where NAME goes"

# -- show
am 0 endpoint show blue-ep
out_has "provisioning state: Succeeded"
out_has "scoring uri:        $SCORING/endpoints/blue-ep/score"
out_has "traffic:            blue=100 green=0"
out_has "mirror traffic:     -"
out_has "auth mode:          key"
out_has "tags:               owner=amlops"
grep -Eq '^  NAME +STATE +TRAFFIC +INSTANCES +INSTANCE TYPE +MODEL +CODE +ENVIRONMENT$' "$T/out" ||
    fail "show: deployments header: $(cat "$T/out")"
grep -Eq '^  blue +Succeeded +100% +1 +Standard_DS3_v2 +azureml:m:1 +azureml:sum:1 +-$' "$T/out" ||
    fail "show: blue row: $(cat "$T/out")"
grep -Eq '^  green +Succeeded +0% +1 +Standard_DS3_v2 +azureml:m:1 +azureml:sum:1 +-$' "$T/out" ||
    fail "show: green row: $(cat "$T/out")"
am 0 endpoint show blue-ep --output json
[ "$(j "d['provisioningState']")" = Succeeded ] || fail "show json state"
[ "$(j "d['scoringUri']")" = "$SCORING/endpoints/blue-ep/score" ] || fail "show json uri"
[ "$(j "d['traffic']")" = '{"blue": 100, "green": 0}' ] || fail "show json traffic"
[ "$(j "d['mirrorTraffic']")" = '{}' ] || fail "show json mirror"
[ "$(j "[(x['name'], x['provisioningState'], x['traffic']) for x in d['deployments']]")" = \
    '[["blue", "Succeeded", 100], ["green", "Succeeded", 0]]' ] || fail "show json deployments: $(cat "$T/out")"
[ "$(j "d['id']")" = "$WS/onlineEndpoints/blue-ep" ] || fail "show json id"
ok "show: provisioning state, scoring URI, traffic and deployments, table and JSON"

# wrong names: the service's message with its request id, and a hint
am 1 endpoint show blue-eq
err_like "amlops: error: GET onlineEndpoints/blue-eq: 404 Not Found \(request id $RID\): ResourceNotFound: online endpoint 'blue-eq' not found in workspace 'local' \(did you mean 'blue-ep'\?\)"
[ ! -s "$T/out" ] || fail "show of a wrong name printed: $(cat "$T/out")"
am 1 endpoint show nothing-like-it
err_like "amlops: error: GET onlineEndpoints/nothing-like-it: 404 Not Found \(request id $RID\): ResourceNotFound: online endpoint 'nothing-like-it' not found in workspace 'local'"
am 64 endpoint show 9-bad
grep -Fqx "amlops: endpoint show: endpoint name '9-bad' breaks Azure's naming rules: it must start with a letter" "$T/err" ||
    fail "bad name: $(cat "$T/err")"
am 64 endpoint show
grep -Fqx "amlops: endpoint show: the endpoint's NAME is missing" "$T/err" || fail "no name: $(cat "$T/err")"
am 64 endpoint show blue-ep extra
grep -Fqx "amlops: endpoint show: unexpected argument 'extra'" "$T/err" || fail "extra: $(cat "$T/err")"
am 64 endpoint lst
grep -Fqx "amlops: endpoint: unknown subcommand 'lst' (expected list, show, invoke, logs, credentials or delete)" "$T/err" ||
    fail "unknown subcommand: $(cat "$T/err")"
am 64 endpoint list --yes
grep -Fqx "amlops: endpoint list: --yes is not a flag of 'list'" "$T/err" || fail "--yes on list: $(cat "$T/err")"
am 64 endpoint show blue-ep --bogus
grep -Fqx "amlops: endpoint show: unknown flag '--bogus'" "$T/err" || fail "unknown flag: $(cat "$T/err")"
am 64 endpoint show blue-ep --output yaml
grep -Fqx "amlops: endpoint show: unknown output 'yaml' (expected 'table' or 'json')" "$T/err" || fail "output: $(cat "$T/err")"
am 64 endpoint logs blue-ep --deployment
grep -Fqx "amlops: endpoint logs: '--deployment' needs a value" "$T/err" || fail "no value: $(cat "$T/err")"
am 64 endpoint logs blue-ep --deployment x
grep -Fqx "amlops: endpoint logs: deployment name 'x' breaks Azure's naming rules: it must be 3 to 32 characters long, not 1" "$T/err" ||
    fail "bad deployment name: $(cat "$T/err")"
am 64 endpoint logs blue-ep -d blue --tail many
grep -Fqx "amlops: endpoint logs: --tail 'many' is not a number from 1 to 100000" "$T/err" || fail "tail: $(cat "$T/err")"
am 64 endpoint
[ "$(head -n 1 "$T/err")" = "usage: amlops endpoint list" ] && grep -Fqx "Run 'amlops endpoint --help' for the flags." "$T/err" ||
    fail "no subcommand: $(cat "$T/err")"
am 0 endpoint --help
for sub in list show invoke logs credentials delete; do
	grep -q "^  $sub  " "$T/out" || fail "--help does not explain '$sub'"
done
ok "wrong names: the service's 404 with request id and a did-you-mean; usage errors exit 64"

# no host: says how to start one
AMLOPS_HOST_DIR=$T/nohost timeout 30 "$AMLOPS" endpoint list >"$T/out" 2>"$T/err" && fail "list without a host succeeded"
err_is "amlops: error: no amlops host is running on state dir '$T/nohost' (start one with 'amlops host --state-dir $T/nohost')"
am 1 endpoint list --host-dir "$T/other"
err_is "amlops: error: no amlops host is running on state dir '$T/other' (start one with 'amlops host --state-dir $T/other')"
am 0 endpoint list --host-dir "$T/state"
ok "--host-dir and AMLOPS_HOST_DIR find the host; a missing one is named"

# -- invoke
echo '{"data": [1, 2, 3]}' >"$T/req.json"
am 0 -v endpoint invoke blue-ep --request-file "$T/req.json"
[ "$(j "d")" = '{"sum": 6, "who": "blue"}' ] || fail "invoke: $(cat "$T/out")"
am 0 -o json endpoint invoke blue-ep -f "$T/req.json" --deployment green
[ "$(j "d")" = '{"sum": 6, "who": "green"}' ] || fail "invoke green: $(cat "$T/out")"
am 0 -v endpoint invoke tok-ep --request-file "$T/req.json"
[ "$(j "d['who']")" = solo ] || fail "invoke with a token: $(cat "$T/out")"
ok "invoke: scores with the key (AMLToken: a token), --deployment picks one"

am 1 endpoint invoke blue-ep --request-file "$T/nope.json"
err_is "amlops: error: request file: cannot open '$T/nope.json': No such file or directory"
[ ! -s "$T/out" ] || fail "missing file printed: $(cat "$T/out")"
# nothing is sent: the file is read before any host is looked for
am 1 endpoint invoke blue-ep --request-file "$T/nope.json" --host-dir "$T/nohost"
err_is "amlops: error: request file: cannot open '$T/nope.json': No such file or directory"
am 64 endpoint invoke blue-ep
grep -Fqx "amlops: endpoint invoke: --request-file FILE is required" "$T/err" || fail "no file: $(cat "$T/err")"
truncate -s 65M "$T/big.json"
am 1 endpoint invoke blue-ep --request-file "$T/big.json"
err_is "amlops: error: request file: '$T/big.json' is larger than 67108864 bytes"
am 1 endpoint invoke blue-ep --request-file "$T/code"
err_is "amlops: error: request file: cannot read '$T/code': Is a directory"
rm -f "$T/big.json"
ok "invoke: a missing, too large or unreadable request file is named, exit 1, nothing sent"

echo '{"fail": true}' >"$T/fail.json"
am 1 endpoint invoke blue-ep --request-file "$T/fail.json"
# the host answers 424 as Azure does when the user's run() raises
err_is "amlops: error: invoke 'blue-ep': the scoring URI answered 424: ValueError: asked to fail"
am 1 endpoint invoke blue-ep --request-file "$T/req.json" --deployment nope-dep
err_is "amlops: error: invoke 'blue-ep' (deployment 'nope-dep'): the scoring URI answered 404 Not Found: no deployment with that name in this endpoint"
am 1 endpoint invoke blue-eq --request-file "$T/req.json"
err_like "amlops: error: GET onlineEndpoints/blue-eq: 404 Not Found \(request id $RID\): ResourceNotFound: online endpoint 'blue-eq' not found in workspace 'local' \(did you mean 'blue-ep'\?\)"
ok "invoke: a status that is not 2xx is an error with status and body"

# -- logs
am 0 endpoint logs blue-ep --deployment blue
out_has "endpoint-test init blue"
out_has "endpoint-test scored 3 items"
am 0 endpoint logs blue-ep --deployment blue --tail 1
[ "$(wc -l <"$T/out")" = 1 ] || fail "--tail 1: $(cat "$T/out")"
am 0 endpoint logs blue-ep -d green -o json
[ "$(j "d['deployment']")" = green ] || fail "logs json"
grep -q "endpoint-test init green" <<<"$(j "d['content']")" || fail "logs json content: $(cat "$T/out")"
am 1 endpoint logs blue-ep --deployment greem
err_like "amlops: error: POST onlineEndpoints/blue-ep/deployments/greem/getLogs: 404 Not Found \(request id $RID\): ResourceNotFound: online deployment 'greem' not found in endpoint 'blue-ep' \(did you mean 'green'\?\)"
am 1 endpoint logs blue-eq --deployment blue
err_like "amlops: error: POST onlineEndpoints/blue-eq/deployments/blue/getLogs: 404 Not Found \(request id $RID\): ResourceNotFound: online endpoint 'blue-eq' not found in workspace 'local' \(did you mean 'blue-ep'\?\)"
am 64 endpoint logs blue-ep
grep -Fqx "amlops: endpoint logs: --deployment D is required" "$T/err" || fail "logs without D: $(cat "$T/err")"
am 64 endpoint logs blue-ep -d blue --tail 0
grep -Fqx "amlops: endpoint logs: --tail '0' is not a number from 1 to 100000" "$T/err" || fail "tail 0: $(cat "$T/err")"
ok "logs: the worker's output, --tail, JSON; wrong names are the service's 404"

# -- credentials
am 0 endpoint credentials blue-ep
[ "$(cat "$T/out")" = "endpoint 'blue-ep' uses key authentication; its keys are printed on a terminal or with 'amlops endpoint credentials blue-ep --show-secrets'" ] ||
    fail "credentials without a terminal: $(cat "$T/out")"
am 0 -o json endpoint credentials blue-ep
[ "$(j "d")" = '{"name": "blue-ep", "authMode": "key", "secretsShown": false}' ] || fail "credentials json: $(cat "$T/out")"
am 0 endpoint credentials tok-ep
[ "$(cat "$T/out")" = "endpoint 'tok-ep' uses aml_token authentication; its token is printed on a terminal or with 'amlops endpoint credentials tok-ep --show-secrets'" ] ||
    fail "token without a terminal: $(cat "$T/out")"
am 0 -v endpoint credentials blue-ep --show-secrets
asked
out_has "primary key:        $K1"
out_has "secondary key:      $K2"
grep -Fq "$K1" "$T/err" && fail "a key on stderr with -v"
am 0 endpoint credentials blue-ep --show-secrets -o json
asked
[ "$(j "d['primaryKey']")" = "$K1" ] && [ "$(j "d['secondaryKey']")" = "$K2" ] || fail "credentials json keys"
am 0 endpoint credentials tok-ep --show-secrets -o json
asked
TOK=$(j "d['accessToken']")
[ ${#TOK} -ge 16 ] || fail "token: $(cat "$T/out")"
grep -Eq '^20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]T' <<<"$(j "d['expiryTimeUtc']")" || fail "token expiry: $(cat "$T/out")"
score tok-ep "$TOK" '{"data": [5]}'
[ "$SSTATUS" = 200 ] || fail "the printed token does not score: $SSTATUS"
tty "'$AMLOPS' endpoint credentials blue-ep"
[ "$TTY_RC" = 0 ] || fail "credentials on a terminal exited $TTY_RC: $(cat "$T/tty")"
mv "$T/runs/$NRUN.out" "$T/asked/"
grep -Fq "primary key:        $K1" "$T/tty" || fail "no keys on a terminal: $(cat "$T/tty")"
tty "'$AMLOPS' -o json endpoint credentials blue-ep"
grep -Eq '"secretsShown":[[:space:]]*false' "$T/tty" ||
    fail "JSON on a terminal without the flag: $(cat "$T/tty")"
am 0 endpoint credentials aad-ep --show-secrets
[ "$(cat "$T/out")" = "endpoint 'aad-ep' takes Microsoft Entra (Azure AD) tokens, not keys: get one with 'az account get-access-token --resource https://ml.azure.com'" ] ||
    fail "AADToken credentials: $(cat "$T/out")"
am 1 endpoint credentials blue-eq
err_like "amlops: error: GET onlineEndpoints/blue-eq: 404 Not Found \(request id $RID\): ResourceNotFound: online endpoint 'blue-eq' not found in workspace 'local' \(did you mean 'blue-ep'\?\)"
ok "credentials: keys or token only on a terminal or with --show-secrets; JSON only with the flag"

# -- the azure target: the same commands through the Azure backend, with
# the host standing in for Resource Manager (AMLOPS_ARM_URL) and its
# bearer token as a static Azure credential (AZURE_ACCESS_TOKEN)
az() { # RC ARGS...: amlops --target azure with a clean Azure environment
	local want=$1
	shift
	am "$want" env -u AZURE_SUBSCRIPTION_ID -u AZURE_RESOURCE_GROUP \
	    -u AZUREML_WORKSPACE -u AZURE_TENANT_ID -u AZURE_CLIENT_ID \
	    -u AZURE_CLIENT_SECRET -u AZURE_FEDERATED_TOKEN_FILE \
	    -u IDENTITY_ENDPOINT ${AZ_ENV-} AMLOPS_ARM_URL="$URL" \
	    AZURE_ACCESS_TOKEN="$TOKEN" "$AMLOPS" --target azure "$@"
}
mkdir -p "$T/norepo"
cd "$T/norepo"
az 1 endpoint list
err_is "amlops: error: the azure target needs a subscription: give it in .amlops.yml (azure.subscription_id), as a flag, or in AZURE_SUBSCRIPTION_ID"
az 1 endpoint list --subscription "$SUB"
err_is "amlops: error: the azure target needs a resource group: give it in .amlops.yml (azure.resource_group), as a flag, or in AZURE_RESOURCE_GROUP"
az 0 endpoint list --subscription "$SUB" --resource-group local --workspace local
grep -Eq "^blue-ep +key +Succeeded +blue=100 green=0 +$SCORING/endpoints/blue-ep/score$" "$T/out" ||
    fail "azure list: $(cat "$T/out")"
AZ_ENV="AZURE_SUBSCRIPTION_ID=$SUB AZURE_RESOURCE_GROUP=local AZUREML_WORKSPACE=local" \
    az 0 -o json endpoint invoke blue-ep --request-file "$T/req.json"
[ "$(j "d")" = '{"sum": 6, "who": "blue"}' ] || fail "azure invoke: $(cat "$T/out")"
AZ_ENV="AZURE_SUBSCRIPTION_ID=$SUB AZURE_RESOURCE_GROUP=local AZUREML_WORKSPACE=other" \
    az 1 endpoint show blue-ep
err_like "amlops: error: GET onlineEndpoints/blue-ep: 404 Not Found \(request id $RID\): ResourceNotFound: online endpoint 'blue-ep' not found in workspace 'other'"
# coordinates from .amlops.yml at HEAD of --repo
git init -q "$T/gitops"
printf 'azure:\n  subscription_id: "%s"\n  resource_group: local\n  workspace: local\n' "$SUB" >"$T/gitops/.amlops.yml"
git -C "$T/gitops" add .amlops.yml
git -C "$T/gitops" -c user.name=t -c user.email=t@example.com commit -qm config
az 0 --repo "$T/gitops" endpoint show blue-ep
out_has "provisioning state: Succeeded"
out_has "traffic:            blue=100 green=0"
az 0 --repo "$T/gitops" endpoint logs blue-ep --deployment blue --tail 5
out_has "endpoint-test scored"
printf 'azure:\n  subscription: x\n' >"$T/gitops/.amlops.yml"
git -C "$T/gitops" -c user.name=t -c user.email=t@example.com commit -qam broken
az 1 --repo "$T/gitops" endpoint list
grep -Eq "^amlops: error: \.amlops\.yml:2:3: .*'subscription'" "$T/err" ||
    fail "a broken .amlops.yml: $(cat "$T/err")"
cd - >/dev/null
ok "the azure target: coordinates from flags, environment and .amlops.yml; the same answers"

# -- delete
am 1 endpoint delete blue-ep --deployment blue --yes
err_is "amlops: error: deployment 'blue' receives 100% of endpoint 'blue-ep''s traffic; move it to another deployment first; nothing deleted"
am 1 endpoint delete blue-ep --deployment greem --yes
err_is "amlops: error: endpoint 'blue-ep' has no deployment 'greem' (it has 'blue', 'green') (did you mean 'green'?); nothing deleted"
am 1 endpoint delete blue-eq --yes
err_like "amlops: error: GET onlineEndpoints/blue-eq: 404 Not Found \(request id $RID\): ResourceNotFound: online endpoint 'blue-eq' not found in workspace 'local' \(did you mean 'blue-ep'\?\)"
am 1 endpoint delete blue-ep --deployment green
err_is "amlops: error: refusing to delete deployment 'green' of endpoint 'blue-ep' without confirmation: stdin is not a terminal (pass --yes)"
tty "'$AMLOPS' endpoint delete blue-ep --deployment green" "n
"
[ "$TTY_RC" = 1 ] || fail "delete answered n exited $TTY_RC: $(cat "$T/tty")"
grep -Fq "delete deployment 'green' of endpoint 'blue-ep'? [y/N]" "$T/tty" || fail "no question: $(cat "$T/tty")"
grep -Fq "amlops: error: nothing deleted" "$T/tty" || fail "answer n: $(cat "$T/tty")"
req GET "$(a "$WS/onlineEndpoints/blue-ep/deployments/green")"
expect 200 "green after 'n'"
ok "delete: refuses a deployment with traffic, wrong names, and without confirmation"

# mirror traffic counts too, and show says so
req PUT "$(a "$WS/onlineEndpoints/blue-ep")" '{"location":"local","properties":{"authMode":"Key","traffic":{"blue":100,"green":0},"mirrorTraffic":{"green":10}},"tags":{"owner":"amlops"}}'
expect 200 "mirror traffic"
wait_op
am 0 endpoint show blue-ep
out_has "mirror traffic:     green=10"
grep -Eq '^  green +Succeeded +0% \(mirror 10%\) +1 ' "$T/out" || fail "show: mirror: $(cat "$T/out")"
am 1 endpoint delete blue-ep --deployment green --yes
err_is "amlops: error: deployment 'green' receives 10% of endpoint 'blue-ep''s mirror traffic; move it to another deployment first; nothing deleted"
req PUT "$(a "$WS/onlineEndpoints/blue-ep")" '{"location":"local","properties":{"authMode":"Key","traffic":{"blue":100,"green":0},"mirrorTraffic":{}},"tags":{"owner":"amlops"}}'
expect 200 "no mirror traffic"
wait_op
ok "delete: mirror traffic refuses too; show gives mirror traffic per deployment"

# the service's own refusal, with its request id: a mutation in flight
# (the host keeps each operation InProgress for --op-delay-ms)
req PUT "$(a "$WS/onlineEndpoints/blue-ep")" "$(ep_body Key '{"blue":100,"green":0}')"
expect 200 "endpoint update"
cp "$T/headers" "$T/busy-headers"
am 1 endpoint delete blue-ep --deployment green --yes
err_like "amlops: error: DELETE onlineEndpoints/blue-ep/deployments/green: 409 Conflict \(request id $RID\): Conflict: .*"
cp "$T/busy-headers" "$T/headers"
wait_op
ok "delete: the service's refusal is shown with its request id"

tty "'$AMLOPS' endpoint delete blue-ep --deployment green" "y
"
[ "$TTY_RC" = 0 ] || fail "delete answered y exited $TTY_RC: $(cat "$T/tty")"
grep -Fq "deleted deployment 'green' of endpoint 'blue-ep'" "$T/tty" || fail "delete y: $(cat "$T/tty")"
req GET "$(a "$WS/onlineEndpoints/blue-ep/deployments/green")"
expect 404 "green after delete"
am 0 -o json endpoint delete tok-ep --yes
[ "$(j "d['deleted']")" = True ] && [ "$(j "d['endpoint']")" = tok-ep ] || fail "delete json: $(cat "$T/out")"
grep -Eqx "$RID" <<<"$(j "d['requestId']")" || fail "delete json request id"
am 0 endpoint list
grep -q '^tok-ep' "$T/out" && fail "tok-ep still listed"
grep -Eq "^blue-ep +key +Succeeded +blue=100 +" "$T/out" || fail "list after delete: $(cat "$T/out")"
am 0 endpoint delete aad-ep --yes
[ "$(cat "$T/out")" = "deleted endpoint 'aad-ep'" ] || fail "delete aad-ep: $(cat "$T/out")"
am 0 endpoint delete blue-ep --yes
[ "$(cat "$T/out")" = "deleted endpoint 'blue-ep' and its 1 deployment" ] || fail "delete blue-ep: $(cat "$T/out")"
am 0 endpoint list
[ "$(cat "$T/out")" = "no endpoints on target 'local'" ] || fail "empty list: $(cat "$T/out")"
am 0 endpoint list -o json
[ "$(j "d")" = "[]" ] || fail "empty list json: $(cat "$T/out")"
ok "delete: a deployment after 'y' on a terminal, endpoints with --yes, with or without traffic"

# -- secrets: only where they were asked for
for f in "$T"/runs/*; do
	for s in "$K1" "$K2" "$TOK" "$TOKEN"; do
		if grep -Fq -- "$s" "$f"; then
			fail "a secret in $(basename "$f"), which did not ask for it: $(cat "$f")"
		fi
	done
done
n=$(ls "$T/runs" | wc -l)
[ "$n" -gt 60 ] || fail "only $n outputs were checked"
ok "keys, tokens and the host's token appear in none of the $n other outputs"

stop_clean
ok "the host stops cleanly"
