# Helpers for the tests/integration/host_*.sh scripts; sourced, never run
# (the .bash suffix keeps it out of ctest's *.sh glob).
#
# Each script gets a temp dir $T (removed on exit), starts the real
# `amlops host` with start_host, and talks to it with curl through req.
# Every wait has a deadline; the EXIT trap stops every process started here.

: "${AMLOPS:?AMLOPS must name the amlops binary (ctest sets it)}"
PY=/usr/bin/python3
T=$(mktemp -d /tmp/amlops-host-test.XXXXXX)
HOST_PID=
EXTRA_PIDS=()
SUB=00000000-0000-0000-0000-000000000000
API=2024-04-01
WS=/subscriptions/$SUB/resourceGroups/local/providers/Microsoft.MachineLearningServices/workspaces/local
STEP=0
# nothing a test runs reaches the user's default state dir or cache, or
# a host the user's AMLOPS_HOST_DIR names: tests run in parallel
export XDG_STATE_HOME=$T/xdg
export XDG_CACHE_HOME=$T/cache
unset AMLOPS_HOST_DIR

fail() {
	echo "FAIL: $*" >&2
	if [ -f "$T/body" ]; then
		echo "--- last response body:" >&2
		head -c 2000 "$T/body" >&2
		echo >&2
	fi
	if [ -f "$T/host.err" ]; then
		echo "--- host log (tail):" >&2
		tail -n 40 "$T/host.err" >&2
	fi
	exit 1
}

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stop_host() {
	[ -n "$HOST_PID" ] || return 0
	stop_pid "$HOST_PID" "${1:-TERM}"
	HOST_PID=
}

cleanup() {
	local p
	for p in "${EXTRA_PIDS[@]}"; do
		stop_pid "$p" TERM
	done
	stop_host
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# stop_clean: SIGTERM, then the exit status must be 0 and the sanitizers
# must have nothing to say.
stop_clean() {
	local pid=$HOST_PID rc=0 i
	kill -TERM "$pid"
	for i in $(seq 150); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && fail "the host did not stop within 15s of SIGTERM"
	wait "$pid" || rc=$?
	HOST_PID=
	[ "$rc" = 0 ] || fail "the host exited $rc on SIGTERM"
	grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$T/host.err" &&
	    fail "sanitizer report in the host's log"
	[ -e "$T/state/host.json" ] && fail "host.json left behind"
	return 0
}

# jf FILE EXPR: evaluates a Python expression over the JSON in FILE (as d).
jf() {
	"$PY" -c 'import json,sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1" "$2"
}

# jb EXPR: the same over the last response body.
jb() {
	jf "$T/body" "$1"
}

# start_host [ARGS...]: starts the host on a free port, waits for host.json.
start_host() {
	local i
	rm -f "$T/state/host.json"
	"$AMLOPS" -v host --state-dir "$T/state" --port 0 --faults \
	    --retry-after 0 "$@" >>"$T/host.out" 2>>"$T/host.err" &
	HOST_PID=$!
	for i in $(seq 300); do
		if [ -s "$T/state/host.json" ] &&
		    [ "$(jf "$T/state/host.json" "d['pid']")" = "$HOST_PID" ]; then
			break
		fi
		kill -0 "$HOST_PID" 2>/dev/null || fail "the host exited at start"
		sleep 0.1
	done
	[ -s "$T/state/host.json" ] || fail "host.json not written within 30s"
	URL=$(jf "$T/state/host.json" "d['url']")
	TOKEN=$(jf "$T/state/host.json" "d['token']")
	SCORING=$(jf "$T/state/host.json" "d['scoring_url']")
}

# req METHOD PATH [BODY [CURL ARGS...]]: sets STATUS; body in $T/body,
# headers in $T/headers. PATH is appended to $URL as given.
req() {
	local m=$1 p=$2 body=${3-}
	local args=(-sS -X "$m" -o "$T/body" -D "$T/headers" -w '%{http_code}'
	    --max-time 60)
	[ -n "${TOKEN-}" ] && args+=(-H "Authorization: Bearer $TOKEN")
	shift 2
	[ $# -gt 0 ] && shift
	if [ -n "$body" ]; then
		args+=(-H 'Content-Type: application/json' --data-binary "$body")
	fi
	: >"$T/body"
	STATUS=$(curl "${args[@]}" "$@" "$URL$p" 2>"$T/curl.err") || STATUS=000
	if [ "$STATUS" = 000 ] && [ -z "${EXPECT_DROP-}" ]; then
		fail "$m $p: no answer: $(cat "$T/curl.err")"
	fi
}

# a PATH: PATH with the api-version query.
a() {
	echo "$1?api-version=$API"
}

expect() {
	[ "$STATUS" = "$1" ] || fail "${2:-request}: status $STATUS, expected $1"
}

# expect_error STATUS CODE MESSAGE [TARGET]: the ARM error body, exactly.
expect_error() {
	expect "$1" "error $2"
	[ "$(jb "d['error']['code']")" = "$2" ] ||
	    fail "error code $(jb "d['error']['code']"), expected $2"
	[ "$(jb "d['error']['message']")" = "$3" ] ||
	    fail "error message '$(jb "d['error']['message']")', expected '$3'"
	if [ $# -ge 4 ]; then
		[ "$(jb "d['error'].get('target')")" = "$4" ] ||
		    fail "error target '$(jb "d['error'].get('target')")', expected '$4'"
	fi
}

# hdr NAME: a header of the last response.
hdr() {
	grep -i "^$1:" "$T/headers" | head -n 1 | cut -d' ' -f2- | tr -d '\r'
}

# wait_op: polls the last response's Azure-AsyncOperation until it ends;
# sets OPSTATUS and leaves the operation in $T/op.
wait_op() {
	local op i
	op=$(hdr Azure-AsyncOperation)
	[ -n "$op" ] || fail "no Azure-AsyncOperation header"
	for i in $(seq 600); do
		# a poll that fails (a loaded machine) is retried, as clients do
		if curl -sS --max-time 30 -H "Authorization: Bearer $TOKEN" \
		    -o "$T/op" "$op" 2>"$T/curl.err"; then
			OPSTATUS=$(jf "$T/op" "d['status']")
			[ "$OPSTATUS" != InProgress ] && return 0
		fi
		sleep 0.1
	done
	fail "operation still InProgress after 600 polls: $op ($(cat "$T/curl.err"))"
}

# score ENDPOINT KEY BODY [CURL ARGS]: sets SSTATUS, body in $T/score.
score() {
	local ep=$1 key=$2 body=$3
	shift 3
	SSTATUS=$(curl -sS -o "$T/score" -w '%{http_code}' --max-time 30 \
	    -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
	    --data-binary "$body" "$@" "$SCORING/endpoints/$ep/score" \
	    2>"$T/curl.err") || SSTATUS=000
}

# The scoring code used by the tests: init() records AZUREML_MODEL_DIR,
# run() echoes the body with the model's content.
make_code() {
	local dir=$1 init_sleep=${2:-0}
	mkdir -p "$dir"
	cat >"$dir/score.py" <<EOF
import json, os, time

model = None

def init():
    global model
    time.sleep($init_sleep)
    path = os.path.join(os.getenv("AZUREML_MODEL_DIR", ""), "model/weights.txt")
    with open(path) as f:
        model = f.read().strip()
    print("score.py init done, model=" + model, flush=True)

def run(raw_data):
    return {"echo": json.loads(raw_data), "model": model}
EOF
}

make_model() {
	mkdir -p "$1/model"
	echo "${2:-w1}" >"$1/model/weights.txt"
}

code_body() {
	echo "{\"properties\":{\"codeUri\":\"file://$1\",\"description\":\"test code\"}}"
}

model_body() {
	echo "{\"properties\":{\"modelUri\":\"file://$1\"}}"
}

ep_body() { # AUTHMODE [TRAFFIC-JSON]
	echo "{\"location\":\"local\",\"properties\":{\"authMode\":\"$1\",\"traffic\":${2:-{\}}},\"tags\":{\"owner\":\"amlops\"}}"
}

dep_body() { # CODE-VERSION MODEL-VERSION [CAPACITY]; $DEP_ENV: an env id
	local env=
	[ -n "${DEP_ENV-}" ] && env="\"environmentId\":\"$DEP_ENV\","
	cat <<EOF
{"location":"local","sku":{"name":"Default","capacity":${3:-1}},
 "properties":{"endpointComputeType":"Managed","instanceType":"Standard_DS3_v2",
  "codeConfiguration":{"codeId":"$WS/codes/echo/versions/$1","scoringScript":"score.py"},
  "model":"azureml:m:$2",$env
  "environmentVariables":{"GREETING":"hi"},
  "requestSettings":{"requestTimeout":"PT5S","maxQueueWait":"PT0.5S","maxConcurrentRequestsPerInstance":1}}}
EOF
}
