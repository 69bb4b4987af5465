#!/bin/bash
# `amlops host --blob-endpoint ...` against a real Azurite: the default
# datastore describes the blob container (listSecrets hands out its key),
# and code/model versions registered with blob URLs (http://... and
# azureml://datastores/workspaceblobstore/paths/...) are downloaded into the
# host's store and really run.
set -euo pipefail
. "$(dirname "$0")/host_lib.bash"

AZURITE=${AMLOPS_SRC:-$(dirname "$0")/../..}/node_modules/.bin/azurite-blob
if [ ! -x "$AZURITE" ] || ! command -v node >/dev/null; then
	echo "SKIP: Azurite is not installed (run 'npm ci' in the source dir)"
	exit 0
fi
# Azurite's documented development account (public, not a secret).
ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/azurite"
"$AZURITE" --blobHost 127.0.0.1 --blobPort "$PORT" --location "$T/azurite" \
    --silent --skipApiVersionCheck >"$T/azurite.log" 2>&1 &
EXTRA_PIDS+=($!)
BLOB=http://127.0.0.1:$PORT/$ACCOUNT
for i in $(seq 300); do
	curl -s --max-time 2 -o /dev/null "$BLOB?comp=list" && break
	sleep 0.1
done
curl -s --max-time 2 -o /dev/null "$BLOB?comp=list" || fail "Azurite did not start within 30s"

# put_blob CONTAINER NAME FILE | put_blob CONTAINER: Shared Key requests.
put_blob() {
	"$PY" - "$BLOB" "$ACCOUNT" "$KEY" "$@" <<'EOF'
import base64, hashlib, hmac, sys, time, urllib.request
from email.utils import formatdate
blob, account, key, container = sys.argv[1:5]
name = sys.argv[5] if len(sys.argv) > 5 else None
data = open(sys.argv[6], "rb").read() if name else b""
path = "/" + account + "/" + container + ("/" + name if name else "")
query = {} if name else {"restype": "container"}
hdrs = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
if name:
    hdrs["x-ms-blob-type"] = "BlockBlob"
ctype = "application/octet-stream"  # urllib would add a form type
sts = "PUT\n\n\n%s\n\n%s\n\n\n\n\n\n\n" % (len(data) or "", ctype)
sts += "".join("%s:%s\n" % (k, hdrs[k]) for k in sorted(hdrs))
sts += "/" + account + path
sts += "".join("\n%s:%s" % (k, query[k]) for k in sorted(query))
sig = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest()).decode()
hdrs["Authorization"] = "SharedKey %s:%s" % (account, sig)
if ctype:
    hdrs["Content-Type"] = ctype
url = blob + "/" + container + ("/" + name if name else "") + ("?restype=container" if not name else "")
req = urllib.request.Request(url, data=data, method="PUT", headers=hdrs)
try:
    urllib.request.urlopen(req, timeout=10)
except urllib.error.HTTPError as e:
    if not (e.code == 409 and not name):
        sys.exit("PUT %s: %d %s" % (url, e.code, e.read()[:300]))
EOF
}

make_code "$T/code/onlinescoring" 0
make_model "$T/m" w-from-blob
put_blob azureml || fail "cannot create the container"
put_blob azureml LocalUpload/abc/onlinescoring/score.py "$T/code/onlinescoring/score.py" || fail "upload score.py"
put_blob azureml LocalUpload/def/model/weights.txt "$T/m/model/weights.txt" || fail "upload weights"
put_blob azureml single/weights.txt "$T/m/model/weights.txt" || fail "upload a single blob"
ok "Azurite runs with a container holding code and a model"

start_host --blob-endpoint "$BLOB" --blob-container azureml \
    --blob-account "$ACCOUNT" --blob-key "$KEY"
req GET "$(a "$WS/datastores/workspaceblobstore")"
expect 200
[ "$(jb "d['properties']['accountName']")" = "$ACCOUNT" ] || fail "accountName"
[ "$(jb "d['properties']['containerName']")" = azureml ] || fail "containerName"
[ "$(jb "d['properties']['endpoint']")" = "$BLOB" ] || fail "endpoint"
[ "$(jb "d['properties']['credentials']['credentialsType']")" = AccountKey ] || fail "credentialsType"
grep -qF "$KEY" "$T/body" && fail "the datastore GET shows the key"
req POST "$(a "$WS/datastores/workspaceblobstore/listSecrets")"
expect 200
[ "$(jb "d['key']")" = "$KEY" ] || fail "listSecrets key"
ok "the default datastore describes the Azurite container; only listSecrets has the key"

req PUT "$(a "$WS/codes/echo/versions/1")" "{\"properties\":{\"codeUri\":\"$BLOB/azureml/LocalUpload/abc/onlinescoring\"}}"
expect 201 "code from a blob folder"
req PUT "$(a "$WS/models/m/versions/1")" '{"properties":{"modelUri":"azureml://datastores/workspaceblobstore/paths/LocalUpload/def/model"}}'
expect 201 "model from a datastore path"
req PUT "$(a "$WS/models/single/versions/1")" "{\"properties\":{\"modelUri\":\"$BLOB/azureml/single/weights.txt\"}}"
expect 201 "model from a single blob"
[ -f "$(find "$T/state/store" -path '*/weights.txt' -size -100c | head -n 1)" ] || fail "no stored weights"
req PUT "$(a "$WS/models/nope/versions/1")" "{\"properties\":{\"modelUri\":\"$BLOB/azureml/no/such/thing\"}}"
expect_error 400 BadArgument "cannot register model 'nope' version '1': no blobs under 'azureml/no/such/thing'" properties.modelUri
req PUT "$(a "$WS/models/other/versions/1")" '{"properties":{"modelUri":"http://127.0.0.2:1/other/c/x"}}'
expect_error 400 BadArgument "cannot register model 'other' version '1': blob URL is not on the storage service '$BLOB'" properties.modelUri
ls "$T/state/store" | grep >/dev/null '^\.tmp' && fail "download leftovers in the store"
ok "code and model versions from blob URLs are downloaded into the store; bad URLs get 400"

EP=$WS/onlineEndpoints/blob-ep
req PUT "$(a "$EP")" "$(ep_body Key)"
expect 201
wait_op
req PUT "$(a "$EP/deployments/blue")" "$(dep_body 1 1)"
expect 201
wait_op
[ "$OPSTATUS" = Succeeded ] || fail "deployment from blobs: $OPSTATUS $(cat "$T/op")"
req PUT "$(a "$EP")" "$(ep_body Key '{"blue":100}')"
expect 200
wait_op
req POST "$(a "$EP/listKeys")"
K1=$(jb "d['primaryKey']")
score blob-ep "$K1" '{"x":1}'
[ "$SSTATUS" = 200 ] || fail "score: $SSTATUS $(cat "$T/score")"
[ "$(jf "$T/score" "d['model']")" = w-from-blob ] || fail "model: $(cat "$T/score")"
ok "a deployment of blob-registered code and model scores"

for f in "$T/host.err" "$T/state/state.json" "$T/state/operations.log"; do
	grep -qF "$KEY" "$f" && fail "the storage key leaked into $f"
done
stop_clean
ok "the storage key is in no log or state file"
echo "PASS: host_blob"
