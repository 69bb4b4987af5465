#!/bin/bash
# `amlops host` keeps its state: a restarted host serves the same endpoints,
# keys and deployments (and brings the workers back up); a host killed with
# SIGKILL in the middle of PUTs leaves a state dir that loads; a second
# host on the same dir is refused; --detach daemonises.
set -euo pipefail
. "$(dirname "$0")/host_lib.bash"

# wait_score EP KEY: scoring answers 200 within 60s.
wait_score() {
	local i
	for i in $(seq 300); do
		score "$1" "$2" '{"x":1}'
		[ "$SSTATUS" = 200 ] && return 0
		sleep 0.2
	done
	fail "endpoint $1 does not score after 60s: $SSTATUS $(cat "$T/score")"
}

# usage errors: exit 64 with the reason
usage() {
	local rc=0
	"$AMLOPS" host --state-dir "$T/u" "$@" >"$T/u.out" 2>"$T/u.err" || rc=$?
	[ "$rc" = 64 ] || fail "'host $*' exited $rc, expected 64"
	head -n 1 "$T/u.err"
}
[ "$(usage --port 70000)" = "amlops: host: bad --port '70000' (expected 0 to 65535)" ] || fail "--port message"
[ "$(usage --retry-after x)" = "amlops: host: bad --retry-after 'x' (expected 0 to 3600 seconds)" ] || fail "--retry-after message"
[ "$(usage --blob-endpoint http://127.0.0.1:1/a)" = "amlops: host: --blob-endpoint, --blob-container, --blob-account and --blob-key go together" ] || fail "--blob-* message"
[ "$(usage extra)" = "amlops: host: unexpected argument 'extra'" ] || fail "extra argument message"
[ -e "$T/u" ] && fail "a usage error created the state dir"
rc=0
"$AMLOPS" host --state-dir "$T/u" --bind 10.0.0.300 --port 0 >/dev/null 2>"$T/u.err" || rc=$?
[ "$rc" = 1 ] || fail "a bad --bind exited $rc"
grep >/dev/null "^amlops: error: bad bind address '10.0.0.300' (expected an IPv4 address)$" "$T/u.err" || fail "--bind: $(cat "$T/u.err")"
ok "usage errors exit 64 (bad --bind: 1) with the reason"

start_host
EP=$WS/onlineEndpoints/keep-ep
make_code "$T/code" 0
make_model "$T/models" w1
req PUT "$(a "$WS/codes/echo/versions/1")" "$(code_body "$T/code")"
expect 201
req PUT "$(a "$WS/models/m/versions/1")" "$(model_body "$T/models/model")"
expect 201
req PUT "$(a "$EP")" "$(ep_body Key)"
expect 201
wait_op
req PUT "$(a "$EP/deployments/blue")" "$(dep_body 1 1)"
expect 201
wait_op
[ "$OPSTATUS" = Succeeded ] || fail "deployment $OPSTATUS"
req PUT "$(a "$EP")" "$(ep_body Key '{"blue":100}')"
expect 200
wait_op
req POST "$(a "$EP/listKeys")"
K1=$(jb "d['primaryKey']")
K2=$(jb "d['secondaryKey']")
wait_score keep-ep "$K1"
OLD_URL=$URL
ok "a host with an endpoint that scores"

# a second host on the same state dir is refused, and says why
rc=0
"$AMLOPS" host --state-dir "$T/state" --port 0 >"$T/second.out" 2>"$T/second.err" || rc=$?
[ "$rc" = 3 ] || fail "a second host exited $rc, expected 3"
grep -q "^amlops: error: another amlops host (pid $HOST_PID) is running on state dir '$T/state'$" "$T/second.err" ||
    fail "second host said: $(cat "$T/second.err")"
[ "$(jf "$T/state/host.json" "d['pid']")" = "$HOST_PID" ] || fail "the second host touched host.json"
ok "a second host on the same state dir exits 3 with a clear message"

stop_clean
ok "SIGTERM: exit 0, host.json removed, no sanitizer report"

# restart: same endpoint, keys, deployment; workers come back
start_host
req GET "$(a "$EP")"
expect 200
[ "$(jb "d['properties']['traffic']")" = '{"blue": 100}' ] || fail "traffic lost"
[ "$(jb "d['properties']['provisioningState']")" = Succeeded ] || fail "endpoint state"
req POST "$(a "$EP/listKeys")"
[ "$(jb "d['primaryKey']")" = "$K1" ] && [ "$(jb "d['secondaryKey']")" = "$K2" ] || fail "keys changed"
req GET "$(a "$EP/deployments/blue")"
[ "$(jb "d['properties']['provisioningState']")" = Succeeded ] || fail "deployment state"
req GET "$(a "$WS/codes/echo/versions/1")"
expect 200
wait_score keep-ep "$K1"
[ "$(jf "$T/score" "d['model']")" = w1 ] || fail "restarted worker: $(cat "$T/score")"
[ "$OLD_URL" != "" ]
ok "a restarted host serves the same endpoints, keys and deployments"

# kill -9 in the middle of PUTs: the state dir still loads
for i in $(seq 1 40); do
	mkdir -p "$T/many/c$i"
	echo "print($i)" >"$T/many/c$i/score.py"
done
(
	for i in $(seq 1 40); do
		curl -sS --max-time 10 -o /dev/null -X PUT \
		    -H "Authorization: Bearer $TOKEN" \
		    -H 'Content-Type: application/json' \
		    --data-binary "$(code_body "$T/many/c$i")" \
		    "$URL$(a "$WS/codes/many/versions/$i")" 2>/dev/null || true
		curl -sS --max-time 10 -o /dev/null -X PATCH \
		    -H "Authorization: Bearer $TOKEN" \
		    -H 'Content-Type: application/json' \
		    --data-binary "{\"tags\":{\"i\":\"$i\"}}" \
		    "$URL$(a "$EP")" 2>/dev/null || true
	done
) &
EXTRA_PIDS+=($!)
for i in $(seq 100); do
	[ "$(find "$T/state/store" -maxdepth 1 -type d | wc -l)" -ge 8 ] && break
	sleep 0.05
done
kill -KILL "$HOST_PID"
wait "$HOST_PID" 2>/dev/null || true
HOST_PID=
wait "${EXTRA_PIDS[0]}" 2>/dev/null || true
EXTRA_PIDS=()
"$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/state/state.json" ||
    fail "state.json is corrupt after kill -9"
ok "kill -9 during PUTs leaves a state.json that parses"

start_host --op-delay-ms 800
req GET "$(a "$EP")"
expect 200 "endpoint after kill -9"
req GET "$(a "$WS/codes/many/versions")"
expect 200
n=$(jb "len(d['value'])")
[ "$n" -ge 1 ] || fail "no version survived"
# every version the state names has its content in the store
"$PY" - "$T/state/state.json" <<'EOF' || fail "a registered version lost its content"
import json, os, sys
s = json.load(open(sys.argv[1]))
for ws in s["workspaces"].values():
    for key, a in ws["assets"].items():
        if "path" in a:
            assert os.path.exists(a["path"]), key
EOF
# the endpoint is not stuck: operations that were in flight finished
for i in $(seq 100); do
	req GET "$(a "$EP")"
	st=$(jb "d['properties']['provisioningState']")
	[ "$st" = Succeeded ] && break
	sleep 0.1
done
[ "$st" = Succeeded ] || fail "endpoint stuck in $st after restart"
req PATCH "$(a "$EP")" '{"tags":{"after":"restart"}}'
expect 202 "a mutation after the restart"
t0=$(date +%s%N)
cp "$T/headers" "$T/patch-headers"
req PATCH "$(a "$EP")" '{"tags":{"again":"1"}}'
expect 409 "a second PATCH while --op-delay-ms holds the first"
cp "$T/patch-headers" "$T/headers"
wait_op
[ "$OPSTATUS" = Succeeded ] || fail "PATCH after restart $OPSTATUS"
[ $(( ($(date +%s%N) - t0) / 1000000 )) -ge 700 ] || fail "--op-delay-ms 800 did not hold the operation"
wait_score keep-ep "$K1"
ok "after kill -9 the host restarts with $n versions, the endpoint scores and takes changes"
stop_clean

# --detach: the parent prints the URL once host.json is there and exits 0
rc=0
timeout 60 "$AMLOPS" host --detach --state-dir "$T/d" --port 0 >"$T/detach.out" 2>"$T/detach.err" || rc=$?
[ "$rc" = 0 ] || fail "--detach exited $rc: $(cat "$T/detach.err")"
[ -s "$T/d/host.json" ] || fail "--detach: no host.json"
dpid=$(jf "$T/d/host.json" "d['pid']")
EXTRA_PIDS+=("$dpid")
[ "$(cat "$T/detach.out")" = "$(jf "$T/d/host.json" "d['url']")" ] || fail "--detach printed $(cat "$T/detach.out")"
[ "$(stat -c %a "$T/d/host.json")" = 600 ] || fail "host.json mode"
URL=$(jf "$T/d/host.json" "d['url']")
TOKEN=$(jf "$T/d/host.json" "d['token']")
req GET "$(a "$WS")"
expect 200 "detached host"
grep -q "host=started" "$T/d/host.log" || fail "host.log"
kill -TERM "$dpid"
for i in $(seq 150); do
	kill -0 "$dpid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$dpid" 2>/dev/null && fail "the detached host ignored SIGTERM"
EXTRA_PIDS=()
[ -e "$T/d/host.json" ] && fail "the detached host left host.json"
ok "--detach prints the URL, logs to DIR/host.log, stops on SIGTERM"

echo "PASS: host_restart"
