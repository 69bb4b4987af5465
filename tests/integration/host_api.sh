#!/bin/bash
# `amlops host` over HTTP, as Azure's clients drive it: the workspace and
# datastore, code and model versions, an endpoint and a deployment that
# really runs score.py, the long-running-operation protocol, keys and
# tokens, logs, every bad request's status and ARM error body, and the
# test-only faults.
set -euo pipefail
. "$(dirname "$0")/host_lib.bash"

start_host
EP=$WS/onlineEndpoints/blue-ep

# -- authentication, api-version, unknown paths
TOKEN_SAVE=$TOKEN
TOKEN=
req GET "$(a "$WS")"
expect_error 401 AuthenticationFailed "authentication failed: the 'Authorization' header is missing or is not a bearer token"
TOKEN=wrong-token
req GET "$(a "$WS")"
expect_error 401 InvalidAuthenticationToken "the access token is invalid"
TOKEN=$TOKEN_SAVE
ok "missing and wrong tokens get 401"

req GET "$WS"
expect_error 400 MissingApiVersionParameter "the api-version query parameter (?api-version=) is required for all requests"
req GET "$WS?api-version=2019-01-01"
expect 400
[ "$(jb "d['error']['code']")" = InvalidApiVersionParameter ] || fail "api-version code"
jb "d['error']['message']" | grep >/dev/null "^the api-version '2019-01-01' is not supported; the supported versions are '.*2024-04-01.*2026-07-01" ||
    fail "the api-version message does not name the version: $(jb "d['error']['message']")"
for v in 2024-04-01 2024-10-01 2025-06-01 2025-09-01 2026-07-01; do
	req GET "$WS?api-version=$v"
	expect 200 "api-version $v"
done
ok "api-version: missing and unknown get 400, 2024-04-01..2026-07-01 accepted"

req GET "$(a /subscriptions/$SUB/nothing/here)"
expect_error 404 NotFound "the path '/subscriptions/$SUB/nothing/here' is not part of the Azure ML REST API this host serves"
req GET "$(a "$WS/onlineEndpoints/blue-ep/bogus/x/y")"
expect 404
req GET "$(a "$EP")"
expect_error 404 ResourceNotFound "online endpoint 'blue-ep' not found in workspace 'local'"
req POST "$(a "$WS/onlineEndpoints")" '{}'
expect_error 405 MethodNotAllowed "method 'POST' is not allowed on '$WS/onlineEndpoints'"
ok "unknown paths 404, unknown resources 404, wrong methods 405"

# -- workspace and datastore
req GET "$(a "$WS")"
expect 200
[ "$(jb "d['location']")" = local ] || fail "workspace location"
[ "$(jb "d['id']")" = "$WS" ] || fail "workspace id"
req GET "$(a "$WS/datastores/workspaceblobstore")"
expect 200
[ "$(jb "d['properties']['datastoreType']")" = AzureBlob ] || fail "datastore type"
[ "$(jb "d['properties']['isDefault']")" = True ] || fail "datastore default"
req POST "$(a "$WS/datastores/workspaceblobstore/listSecrets")"
expect 200
[ "$(jb "d['secretsType']")" = AccountKey ] || fail "listSecrets"
ok "workspace and default datastore"

# -- code and model versions: copied into the store, immutable
make_code "$T/src/onlinescoring" 2
make_model "$T/models" w1
req PUT "$(a "$WS/codes/echo/versions/1")" "$(code_body "$T/src/onlinescoring")"
expect 201 "code PUT"
[ "$(jb "d['name']")" = 1 ] || fail "code version name"
[ "$(jb "d['properties']['codeUri']")" = "file://$T/src/onlinescoring" ] || fail "codeUri"
req PUT "$(a "$WS/codes/echo/versions/1")" "$(code_body "$T/src/onlinescoring")"
expect 200 "same code again"
echo "# changed" >>"$T/src/onlinescoring/score.py"
req PUT "$(a "$WS/codes/echo/versions/1")" "$(code_body "$T/src/onlinescoring")"
expect_error 409 Conflict "code 'echo' version '1' already exists with other content; versions cannot change, register a new version"
req PUT "$(a "$WS/codes/echo/versions/2")" '{"properties":{"codeUri":"file:///nonexistent/x"}}'
expect 400
[ "$(jb "d['error']['target']")" = properties.codeUri ] || fail "missing code target"
req PUT "$(a "$WS/codes/echo/versions/2")" '{"properties":{"codeUri":"https://example.com/x"}}'
expect_error 400 BadArgument "'https://example.com/x' is not a file:/// URI; this host registers local files and folders only (start it with --blob-endpoint for blob URLs)" properties.codeUri
req PUT "$(a "$WS/codes/echo/versions/2")" '{"properties":{}}'
expect_error 400 BadArgument "'properties.codeUri' is required" properties.codeUri
req GET "$(a "$WS/codes/echo/versions/9")"
expect_error 404 ResourceNotFound "code 'echo' version '9' not found in workspace 'local'"
req PUT "$(a "$WS/models/m/versions/1")" "$(model_body "$T/models/model")"
expect 201 "model PUT"
[ "$(jb "d['properties']['modelType']")" = CustomModel ] || fail "modelType"
req GET "$(a "$WS/models/m/versions/1")"
expect 200
req PUT "$(a "$WS/environments/env/versions/1")" '{"properties":{"image":"mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest","condaFile":"dependencies: [python=3.9]"}}'
expect 201 "environment PUT"
req PUT "$(a "$WS/environments/env/versions/2")" '{"properties":{"condaFile":"x"}}'
expect_error 400 BadArgument "an environment needs 'properties.image' or 'properties.build'" properties.image
ok "code, model and environment versions; 409 on changed content; 400/404"

# the source changed after registration: the stored copy did not
stored=$(find "$T/state/store" -name score.py | head -n 1)
[ -n "$stored" ] || fail "no stored score.py"
grep -q "# changed" "$stored" && fail "the store changed with its source"
sed -i '$ d' "$T/src/onlinescoring/score.py"
ok "registered content is copied into the content-addressed store"

# -- endpoint bad bodies
req PUT "$(a "$EP")" 'not json'
expect_error 400 InvalidRequestContent "the request content is not valid JSON (at byte 0)"
req PUT "$(a "$EP")" '[1,2]'
expect_error 400 InvalidRequestContent "the request content must be a JSON object"
req PUT "$(a "$EP")" '{"properties":{"authMode":"Key"}}'
expect_error 400 LocationRequired "the 'location' property is required" location
req PUT "$(a "$EP")" '{"location":"local"}'
expect_error 400 BadArgument "the 'properties' object is required" properties
req PUT "$(a "$EP")" '{"location":"local","properties":{}}'
expect_error 400 BadArgument "'properties.authMode' is required ('Key', 'AMLToken' or 'AADToken')" properties.authMode
req PUT "$(a "$EP")" '{"location":"local","properties":{"authMode":"Password"}}'
expect_error 400 BadArgument "'properties.authMode' must be 'Key', 'AMLToken' or 'AADToken'" properties.authMode
req PUT "$(a "$EP")" "$(ep_body Key '{"blue":100}')"
expect_error 400 BadArgument "traffic refers to deployment 'blue', which does not exist in endpoint 'blue-ep'" properties.traffic.blue
req PUT "$(a "$EP")" '{"location":"local","properties":{"authMode":"Key"},"tags":{"a":1}}'
expect_error 400 BadArgument "'tags.a' must be a string" tags
req PUT "$(a "$WS/onlineEndpoints/9bad")" "$(ep_body Key)"
expect_error 400 BadArgument "'9bad' is not a valid endpoint name: 3 to 32 letters, digits and '-', starting with a letter and not ending with '-'" name
ok "bad endpoint bodies get 400 with code, message and target"

# -- create the endpoint: 201, Creating, the LRO headers, then Succeeded
req PUT "$(a "$EP")" "$(ep_body Key)"
expect 201 "endpoint create"
[ "$(jb "d['properties']['provisioningState']")" = Creating ] || fail "not Creating"
[ "$(jb "d['properties']['authMode']")" = Key ] || fail "authMode"
[ "$(jb "d['id']")" = "$WS/onlineEndpoints/blue-ep" ] || fail "endpoint id"
[ "$(jb "d['type']")" = Microsoft.MachineLearningServices/workspaces/onlineEndpoints ] || fail "type"
[ "$(jb "d['properties']['scoringUri']")" = "$SCORING/endpoints/blue-ep/score" ] || fail "scoringUri"
for k in id name type location tags identity kind systemData; do
	[ "$(jb "'$k' in d")" = True ] || fail "endpoint body lacks $k"
done
hdr Azure-AsyncOperation | grep >/dev/null "^$URL/subscriptions/$SUB/providers/Microsoft.MachineLearningServices/locations/local/mfeOperationsStatus/.*?api-version=$API$" ||
    fail "Azure-AsyncOperation: $(hdr Azure-AsyncOperation)"
[ "$(hdr Retry-After)" = 0 ] || fail "Retry-After: $(hdr Retry-After)"
loc=$(hdr Location)
wait_op
[ "$OPSTATUS" = Succeeded ] || fail "endpoint create ended $OPSTATUS"
curl -sS --max-time 10 -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$loc" >"$T/st"
[ "$(cat "$T/st")" = 200 ] || fail "Location answered $(cat "$T/st")"
[ "$(jb "d['name']")" = blue-ep ] || fail "Location body"
req GET "$(a "$EP")"
expect 200
[ "$(jb "d['properties']['provisioningState']")" = Succeeded ] || fail "not Succeeded"
req GET "$(a "$WS/onlineEndpoints")"
expect 200
[ "$(jb "[e['name'] for e in d['value']]")" = '["blue-ep"]' ] || fail "list"
ok "endpoint create: 201 Creating, Azure-AsyncOperation, Location, then Succeeded"

# another workspace is kept apart, and endpoint names stay unique
OTHER=/subscriptions/11111111-0000-0000-0000-000000000000/resourceGroups/rg2/providers/Microsoft.MachineLearningServices/workspaces/ws2
req GET "$(a "$OTHER/onlineEndpoints")"
expect 200
[ "$(jb "len(d['value'])")" = 0 ] || fail "workspaces not kept apart"
req PUT "$(a "$OTHER/onlineEndpoints/blue-ep")" "$(ep_body Key)"
expect_error 409 Conflict "an online endpoint named 'blue-ep' already exists in workspace 'local'; endpoint names are unique on a host, as in an Azure region" name
ok "workspaces are kept apart; endpoint names are unique on the host"

# -- deployment bad bodies
D=$EP/deployments/blue
req PUT "$(a "$D")" '{"location":"local","properties":{"codeConfiguration":{"codeId":"x","scoringScript":"score.py"}}}'
expect_error 400 BadArgument "'properties.endpointComputeType' is required ('Managed')" properties.endpointComputeType
req PUT "$(a "$D")" "$(dep_body 7 1)"
expect_error 404 ResourceNotFound "code 'echo' version '7' not found" properties.codeConfiguration.codeId
req PUT "$(a "$D")" "$(dep_body 1 7)"
expect_error 404 ResourceNotFound "model 'm' version '7' not found" properties.model
req PUT "$(a "$D")" "$(dep_body 1 1 0)"
expect_error 400 BadArgument "'sku.capacity' (the instance count) must be an integer from 1 to 20" sku.capacity
req PUT "$(a "$D")" "$(dep_body 1 1 | sed 's/"score.py"/"..\/etc\/passwd"/')"
expect_error 400 BadArgument "scoring script '../etc/passwd' not found in code 'echo' version '1'" properties.codeConfiguration.scoringScript
req PUT "$(a "$D")" "$(dep_body 1 1 | sed 's/"PT5S"/"5 seconds"/')"
expect_error 400 BadArgument "'properties.requestSettings.requestTimeout' must be a positive ISO 8601 duration such as 'PT5S', not 5 seconds" properties.requestSettings.requestTimeout
req PUT "$(a "$D")" "$(dep_body 1 1 | sed 's/"environmentVariables"/"livenessProbe":{"period":"10s"},&/')"
expect_error 400 BadArgument "'properties.livenessProbe.period' must be a positive ISO 8601 duration such as 'PT5S', not 10s" properties.livenessProbe.period
req PUT "$(a "$D")" "$(dep_body 1 1 | sed 's/"environmentVariables"/"readinessProbe":{"failureThreshold":0},&/')"
expect_error 400 BadArgument "'properties.readinessProbe.failureThreshold' must be a positive integer" properties.readinessProbe.failureThreshold
req PUT "$(a "$D")" "$(dep_body 1 1 | sed 's/"azureml:m:1"/"m-1"/')"
expect_error 400 BadArgument "'m-1' is not a model id (expected '/subscriptions/.../models/NAME/versions/VERSION' or 'azureml:NAME:VERSION')" properties.model
req PUT "$(a "$EP/deployments/x")" "$(dep_body 1 1)"
expect_error 400 BadArgument "'x' is not a valid deployment name: 3 to 32 letters, digits and '-', starting with a letter and not ending with '-'" name
req PUT "$(a "$WS/onlineEndpoints/nope-ep/deployments/blue")" "$(dep_body 1 1)"
expect_error 404 ResourceNotFound "online endpoint 'nope-ep' not found in workspace 'local'"
req PUT "$(a "$D")" "$(dep_body 1 1 | sed 's/"Managed"/"Kubernetes"/')"
expect_error 400 BadArgument "endpointComputeType 'Kubernetes' is not supported: the local host runs only 'Managed' deployments" properties.endpointComputeType
req PUT "$(a "$D")" '{"location":"local","properties":{"endpointComputeType":"Managed"}}'
expect_error 400 BadArgument "'properties.codeConfiguration' with 'codeId' and 'scoringScript' is required: the local host has no no-code (MLflow) deployments" properties.codeConfiguration
req PUT "$(a "$D")" "$(dep_body 1 1 | sed 's/"azureml:m:1"/5/')"
expect_error 400 BadArgument "'properties.model' must be a model id" properties.model
req PUT "$(a "$D")" "$(dep_body 1 1 | sed 's#"azureml:m:1"#"azureml://registries/r/models/m/versions/1"#')"
expect_error 400 BadArgument "'azureml://registries/r/models/m/versions/1': registry and datastore URIs are not available on the local host; use a workspace asset id" properties.model
req PUT "$(a "$D")" "$(dep_body 1 1 | sed 's/"GREETING":"hi"/"GREETING":1/')"
expect_error 400 BadArgument "'properties.environmentVariables.GREETING' must be a string" properties.environmentVariables
req PUT "$(a "$D")" "$(dep_body 1 1 | sed 's/"PT5S"/"PT181S"/')"
expect_error 400 BadArgument "'properties.requestSettings.requestTimeout' must be at most PT180S" properties.requestSettings.requestTimeout
req PUT "$(a "$D")" "$(dep_body 1 1 | sed 's/"maxConcurrentRequestsPerInstance":1/"maxConcurrentRequestsPerInstance":0/')"
expect_error 400 BadArgument "'maxConcurrentRequestsPerInstance' must be an integer from 1 to 1000" properties.requestSettings.maxConcurrentRequestsPerInstance
req PUT "$(a "$WS/codes/echo/versions/3")" '{"properties":{"codeUri":"file:///tmp/%zz"}}'
expect_error 400 BadArgument "'file:///tmp/%zz' has a bad %-escape" properties.codeUri
req PUT "$(a "$WS/environments/env/versions/3")" '{"properties":{"image":"x","condaFile":{"a":1}}}'
expect_error 400 BadArgument "'properties.condaFile' must be a string (the conda YAML)" properties.condaFile
ok "bad deployment bodies get 400/404 with code, message and target"

# -- create the deployment; a second mutation meanwhile gets 409
req PUT "$(a "$D")" "$(DEP_ENV=$WS/environments/env/versions/9 dep_body 1 1)"
expect_error 404 ResourceNotFound "environment 'env' version '9' not found" properties.environmentId
req PUT "$(a "$D")" "$(DEP_ENV=$WS/environments/env/versions/1 dep_body 1 1)"
expect 201 "deployment create"
[ "$(jb "d['properties']['provisioningState']")" = Creating ] || fail "deployment not Creating"
[ "$(jb "d['sku']['capacity']")" = 1 ] || fail "capacity"
cp "$T/headers" "$T/dep-headers"
req PUT "$(a "$EP")" "$(ep_body Key)"
expect 409 "endpoint PUT while the deployment is created"
[ "$(jb "d['error']['code']")" = Conflict ] || fail "409 code"
req PUT "$(a "$EP/deployments/green")" "$(dep_body 1 1)"
expect 409 "second deployment while one is created"
cp "$T/dep-headers" "$T/headers"
wait_op
[ "$OPSTATUS" = Succeeded ] || fail "deployment ended $OPSTATUS: $(cat "$T/op")"
req GET "$(a "$D")"
expect 200
[ "$(jb "d['properties']['provisioningState']")" = Succeeded ] || fail "deployment not Succeeded"
[ "$(jb "d['properties']['codeConfiguration']['scoringScript']")" = score.py ] || fail "echo of codeConfiguration"
req GET "$(a "$EP/deployments")"
expect 200
[ "$(jb "[x['name'] for x in d['value']]")" = '["blue"]' ] || fail "deployment list"
ok "deployment: 201 Creating, 409 for concurrent mutations, Succeeded when workers are ready"

# -- traffic, keys, scoring
req PUT "$(a "$EP")" "$(ep_body Key '{"blue":50}')"
expect_error 400 BadArgument "traffic values must sum to 100 (or all be 0), not 50" properties.traffic
req PUT "$(a "$EP")" '{"location":"local","properties":{"authMode":"Key","traffic":{"blue":0},"mirrorTraffic":{"blue":60}}}'
expect_error 400 BadArgument "mirrorTraffic values must sum to at most 50, not 60" properties.mirrorTraffic
req PUT "$(a "$EP")" '{"location":"local","properties":{"authMode":"Key","traffic":{"blue":100},"mirrorTraffic":{"blue":10}}}'
expect_error 400 BadArgument "deployment 'blue' cannot get both live and mirrored traffic" properties.mirrorTraffic
req PUT "$(a "$EP")" "$(ep_body Key '{"blue":100}')"
expect 200 "traffic update"
[ "$(jb "d['properties']['provisioningState']")" = Updating ] || fail "not Updating"
wait_op
[ "$OPSTATUS" = Succeeded ] || fail "traffic update $OPSTATUS"
req PUT "$(a "$EP")" '{"location":"local","properties":{"authMode":"Key","description":"metadata only"}}'
expect 200 "a PUT without traffic"
[ "$(jb "d['properties']['traffic']")" = '{"blue": 100}' ] || fail "a PUT without traffic changed it: $(jb "d['properties']['traffic']")"
[ "$(jb "d['properties']['description']")" = "metadata only" ] || fail "description"
wait_op
req POST "$(a "$EP/listKeys")"
expect 200
K1=$(jb "d['primaryKey']")
K2=$(jb "d['secondaryKey']")
[ ${#K1} -ge 32 ] && [ "$K1" != "$K2" ] || fail "keys"
score blue-ep "$K1" '{"data":[1,2]}'
[ "$SSTATUS" = 200 ] || fail "score: $SSTATUS $(cat "$T/score")"
[ "$(jf "$T/score" "d['echo']")" = '{"data": [1, 2]}' ] || fail "echo: $(cat "$T/score")"
[ "$(jf "$T/score" "d['model']")" = w1 ] || fail "AZUREML_MODEL_DIR layout: $(cat "$T/score")"
score blue-ep "$K2" '{"data":1}'
[ "$SSTATUS" = 200 ] || fail "secondary key: $SSTATUS"
score blue-ep "not-a-key" '{"data":1}'
[ "$SSTATUS" = 401 ] || fail "bad key scored: $SSTATUS"
ok "traffic set; listKeys; scoring runs score.py with AZUREML_MODEL_DIR as Azure lays it out"

req POST "$(a "$EP/regenerateKeys")" '{"keyType":"Tertiary"}'
expect_error 400 BadArgument "'keyType' must be 'Primary' or 'Secondary'" keyType
req POST "$(a "$EP/regenerateKeys")" '{"keyType":"Primary"}'
expect 202 "regenerateKeys"
wait_op
[ "$OPSTATUS" = Succeeded ] || fail "regenerate $OPSTATUS"
req POST "$(a "$EP/listKeys")"
K1B=$(jb "d['primaryKey']")
[ "$K1B" != "$K1" ] && [ "$(jb "d['secondaryKey']")" = "$K2" ] || fail "regenerate changed the wrong key"
score blue-ep "$K1" '{"data":1}'
[ "$SSTATUS" = 401 ] || fail "the old key still scores: $SSTATUS"
score blue-ep "$K1B" '{"data":1}'
[ "$SSTATUS" = 200 ] || fail "the new key does not score: $SSTATUS"
req POST "$(a "$EP/token")"
expect_error 400 BadArgument "tokens are only issued for endpoints with authMode 'AMLToken'; endpoint 'blue-ep' uses 'Key'"
ok "regenerateKeys: the old key is refused, the new one works"

# -- logs
req POST "$(a "$D/getLogs")" '{"containerType":"InferenceServer","tail":50}'
expect 200
jb "d['content']" | grep >/dev/null "score.py init done, model=w1" || fail "inference log: $(jb "d['content']")"
req POST "$(a "$D/getLogs")" '{"containerType":"StorageInitializer","tail":0}'
expect 200
jb "d['content']" | grep >/dev/null "model: m version 1 from file://$T/models/model" || fail "storage log: $(jb "d['content']")"
jb "d['content']" | grep >/dev/null "code: echo version 1" || fail "storage log code"
jb "d['content']" | grep >/dev/null "environment: env version 1; image 'mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest' ignored: the local host runs /usr/bin/python3" ||
    fail "storage log environment"
req POST "$(a "$D/getLogs")" '{"containerType":"StorageInitializer","tail":1}'
[ "$(jb "d['content'].count(chr(10))")" = 1 ] || fail "tail 1: $(jb "d['content']")"
req POST "$(a "$D/getLogs")" '{"containerType":"Sidecar"}'
expect_error 400 BadArgument "'containerType' must be 'InferenceServer' or 'StorageInitializer', not 'Sidecar'" containerType
req GET "$(a "$D/skus")"
expect 200
[ "$(jb "d['value'][0]['capacity']['maximum']")" = 20 ] || fail "skus"
req POST "$(a "$D/getLogs")" '{"tail":-1}'
expect_error 400 BadArgument "'tail' must be a non-negative integer" tail
req PUT "$(a "$D")" "$(dep_body 1 1 | sed 's/Standard_DS3_v2/Standard_F2s_v2/')"
expect_error 400 BadArgument "'instanceType' cannot be changed in place (from 'Standard_DS3_v2' to 'Standard_F2s_v2'); create a new deployment and move the traffic" properties.instanceType
req PATCH "$(a "$D")" '{"sku":{"capacity":99}}'
expect_error 400 BadArgument "'sku.capacity' (the instance count) must be an integer from 1 to 20" sku.capacity
req PATCH "$(a "$EP")" '{"properties":5}'
expect_error 400 BadArgument "'properties' must be an object" properties
req POST "$(a "$EP/regenerateKeys")" '{"keyType":"Primary","keyValue":"short"}'
expect_error 400 BadArgument "'keyValue' must be a string of 16 to 128 characters" keyValue
ok "getLogs (InferenceServer, StorageInitializer, tail) and skus; bad update bodies"

# -- deleting a deployment that takes traffic is refused, as in Azure
req DELETE "$(a "$D")"
expect_error 400 BadArgument "cannot delete deployment 'blue': it receives 100% of endpoint 'blue-ep''s traffic; set it to 0 first"
ok "a deployment with traffic cannot be deleted"

# -- a deployment whose init() raises ends Failed with the traceback's line
mkdir -p "$T/bad"
printf 'def init():\n    raise ValueError("no model here")\n\ndef run(d):\n    return d\n' >"$T/bad/score.py"
req PUT "$(a "$WS/codes/bad/versions/1")" "$(code_body "$T/bad")"
expect 201
req PUT "$(a "$EP/deployments/broken")" "$(dep_body 1 1 | sed 's#codes/echo/versions/1#codes/bad/versions/1#')"
expect 201
wait_op
[ "$OPSTATUS" = Failed ] || fail "broken deployment ended $OPSTATUS"
jf "$T/op" "d['error']['message']" | grep >/dev/null "ValueError: no model here" || fail "op error: $(cat "$T/op")"
STATUS=$(curl -sS --max-time 30 -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$(hdr Location)")
[ "$(jb "d['error']['code']")" = ResourceNotReady ] && [ "$STATUS" = 400 ] ||
    fail "the Location of a failed operation answered $STATUS $(cat "$T/body")"
req GET "$(a "$EP/deployments/broken")"
[ "$(jb "d['properties']['provisioningState']")" = Failed ] || fail "broken not Failed"
req PUT "$(a "$EP")" "$(ep_body Key '{"blue":50,"broken":50}')"
expect_error 400 BadArgument "cannot send traffic to deployment 'broken': its provisioningState is 'Failed', not 'Succeeded'" properties.traffic.broken
req DELETE "$(a "$EP/deployments/broken")"
expect 202
wait_op
[ "$OPSTATUS" = Succeeded ] || fail "delete broken $OPSTATUS"
req GET "$(a "$EP/deployments/broken")"
expect 404
ok "init() failure: operation Failed with the error line; no traffic to a Failed deployment; delete"

# -- oversized bodies
head -c $((5 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$T/big"
STATUS=$(curl -sS -o "$T/body" -w '%{http_code}' --max-time 30 -X PUT \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary @"$T/big" "$URL$(a "$EP")") || STATUS=000
expect_error 413 RequestEntityTooLarge "the request body is larger than 4194304 bytes"
STATUS=$(curl -sS -o "$T/body" -w '%{http_code}' --max-time 30 -X PUT \
    -H "Authorization: Bearer $TOKEN" -H 'Transfer-Encoding: chunked' \
    --data-binary @"$T/big" "$URL$(a "$EP")") || STATUS=000
expect_error 413 RequestEntityTooLarge "the request body is larger than 4194304 bytes"
ok "oversized bodies (with and without Content-Length) get 413"

# -- AMLToken endpoint: token with expiry
TE=$WS/onlineEndpoints/tok-ep
req PUT "$(a "$TE")" "$(ep_body AMLToken)"
expect 201
wait_op
req POST "$(a "$TE/token")"
expect 200
now=$(date +%s)
exp=$(jb "d['expiryTimeUtc']")
[ "$exp" -gt "$now" ] && [ "$exp" -le $((now + 3700)) ] || fail "expiry $exp"
[ "$(jb "d['tokenType']")" = Bearer ] || fail "tokenType"
TOK=$(jb "d['accessToken']")
score tok-ep "$TOK" '{"x":1}'
[ "$SSTATUS" != 401 ] || fail "the scoring front refused a fresh token"
score tok-ep "$K1B" '{"x":1}'
[ "$SSTATUS" = 401 ] || fail "an AMLToken endpoint took a key: $SSTATUS"
req POST "$(a "$TE/listKeys")"
expect_error 400 BadArgument "keys are only available for endpoints with authMode 'Key'; endpoint 'tok-ep' uses 'AMLToken'"
ok "AMLToken endpoint: token with expiryTimeUtc"

# -- faults
req POST /_amlops/faults '{"count":2,"status":429,"retry_after":3,"path_contains":"onlineEndpoints","method":"GET"}'
expect 204 "add fault"
req GET "$(a "$EP")"
expect_error 429 TooManyRequests "injected fault: too many requests"
[ "$(hdr Retry-After)" = 3 ] || fail "fault Retry-After"
req GET "$(a "$WS")"
expect 200 "a fault for another path"
req GET "$(a "$EP")"
expect 429
req GET "$(a "$EP")"
expect 200 "after the faults"
req POST /_amlops/faults '{"count":1,"status":503}'
req GET "$(a "$WS")"
expect_error 503 ServiceUnavailable "injected fault: status 503"
req POST /_amlops/faults '{"count":1,"drop":true}'
EXPECT_DROP=1 req GET "$(a "$WS")"
[ "$STATUS" = 000 ] || fail "drop answered $STATUS"
grep >/dev/null "Empty reply from server" "$T/curl.err" || fail "drop: $(cat "$T/curl.err")"
req GET "$(a "$WS")"
expect 200
req POST /_amlops/faults '{"fail_next_operation":true,"message":"injected: disk full"}'
req PUT "$(a "$TE")" "$(ep_body AMLToken)"
expect 200
wait_op
[ "$OPSTATUS" = Failed ] || fail "faulted op $OPSTATUS"
[ "$(jf "$T/op" "d['error']['message']")" = "injected: disk full" ] || fail "faulted op error"
req GET "$(a "$TE")"
[ "$(jb "d['properties']['provisioningState']")" = Failed ] || fail "faulted endpoint state"
req POST /_amlops/faults '{"count":0,"status":200}'
expect_error 400 InvalidRequestContent "a fault needs 'count' >= 1 and either 'drop':true or a 'status' from 400 to 599"
req DELETE /_amlops/faults
expect 204
ok "faults: 429 with Retry-After, 503, dropped connection, failed operation"

# -- scale through PATCH, then traffic 0 and deletes
req PATCH "$(a "$D")" '{"sku":{"capacity":2}}'
expect 202
wait_op
[ "$OPSTATUS" = Succeeded ] || fail "scale $OPSTATUS"
req GET "$(a "$D")"
[ "$(jb "d['sku']['capacity']")" = 2 ] || fail "capacity after PATCH"
req PATCH "$(a "$EP")" '{"tags":{"stage":"test"},"properties":{"traffic":{"blue":0}}}'
expect 202
wait_op
req GET "$(a "$EP")"
[ "$(jb "d['tags']")" = '{"stage": "test"}' ] || fail "PATCH tags"
[ "$(jb "d['properties']['traffic']")" = '{"blue": 0}' ] || fail "PATCH traffic"
req DELETE "$(a "$D")"
expect 202
[ -n "$(hdr Location)" ] || fail "delete Location"
wait_op
[ "$OPSTATUS" = Succeeded ] || fail "delete $OPSTATUS"
req GET "$(a "$D")"
expect_error 404 ResourceNotFound "online deployment 'blue' not found in endpoint 'blue-ep'"
[ -e "$T/state/deployments/blue-ep/blue" ] && fail "the deleted deployment's folder is left"
req DELETE "$(a "$EP")"
expect 202
wait_op
req GET "$(a "$EP")"
expect 404
[ -e "$T/state/deployments/blue-ep" ] && fail "the deleted endpoint's folder is left"
req DELETE "$(a "$EP")"
expect 204 "deleting what is gone"
ok "PATCH scale and tags; deployment and endpoint deletes"

# -- operations.log: JSON lines; every mutation with the endpoint's state
"$PY" - "$T/state/operations.log" <<'EOF' || fail "operations.log"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
reqs = [l for l in lines if l["event"] == "request"]
ops = [l for l in lines if l["event"] == "operation"]
assert reqs and ops, "no requests or operations logged"
for l in reqs:
    for k in ("time", "method", "path", "resource", "result"):
        assert k in l, (k, l)
for l in lines:
    t = l.get("traffic", {})
    assert sum(t.values()) in (0, 100), l
    for d, p in t.items():
        # traffic never went to a deployment that was not Succeeded
        if p > 0:
            assert l["deployments"].get(d) in ("Succeeded", "Updating"), l
assert any(l.get("status") == "Failed" for l in ops)
assert any(l["result"] == 409 for l in reqs)
EOF
ok "operations.log has one JSON line per mutation and per finished operation"

# -- secrets stay where they belong
for f in "$T/host.err" "$T/host.out" "$T/state/operations.log"; do
	for s in "$TOKEN" "$K1" "$K1B" "$K2"; do
		grep -qF "$s" "$f" && fail "a secret leaked into $f"
	done
done
[ "$(stat -c %a "$T/state")" = 700 ] || fail "state dir mode"
for f in state.json host.json operations.log; do
	[ "$(stat -c %a "$T/state/$f")" = 600 ] || fail "$f mode"
done
ok "no token or key in logs; state dir 0700, files 0600"

stop_clean
ok "SIGTERM: exit 0, host.json removed, no sanitizer report"
echo "PASS: host_api"
