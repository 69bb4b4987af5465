#!/bin/bash
# Drift: a deployment scaled behind amlops' back (a PUT straight to the
# host) is reported by amlops watch --drift-interval in the log and in
# /metrics, and left alone; with --self-heal it is scaled back to what
# the applied commit says, and the next check finds no drift.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

W=$T/work
ST=$T/st
WPID=
DEP=subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.MachineLearningServices/workspaces/local/onlineEndpoints/drift-ep/deployments/blue

start_watch() {
	: >"$T/watch.err"
	"$AMLOPS" --repo "$W" watch --state-dir "$ST" --listen 127.0.0.1:0 "$@" \
	    >"$T/watch.out" 2>"$T/watch.err" &
	WPID=$!
	BG_PIDS+=("$WPID")
	wait_log "event=watch_start" 1 10
	PORT=$(sed -n 's/.*event=listening.*port=\([0-9]*\).*/\1/p' "$T/watch.err" | head -n 1)
}

wait_log() { # wait_log PATTERN COUNT SECONDS
	local i
	for i in $(seq $(($3 * 20))); do
		[ "$(grep -c -- "$1" "$T/watch.err" || true)" -ge "$2" ] && return 0
		kill -0 "$WPID" 2>/dev/null || { tail -n 30 "$T/watch.err" >&2; fail "watch exited"; }
		sleep 0.05
	done
	tail -n 30 "$T/watch.err" >&2
	fail "no $2 line(s) matching '$1' within $3 s"
}

stop_watch() {
	local rc=0
	kill -TERM "$WPID"
	for _ in $(seq 200); do
		kill -0 "$WPID" 2>/dev/null || break
		sleep 0.05
	done
	wait "$WPID" || rc=$?
	[ "$rc" = 0 ] || fail "watch exited $rc"
	grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$T/watch.err" &&
	    fail "sanitizer report"
	return 0
}

metric() {
	curl -sS --max-time 10 "http://127.0.0.1:$PORT/metrics" |
	    awk -v k="$1" '$1 == k {print $2}'
}

capacity() {
	curl -sS --max-time 10 -H "Authorization: Bearer $TOKEN" \
	    "$URL/$DEP?api-version=2024-04-01" |
	    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["sku"]["capacity"])'
}

# scale_behind N: PUT the deployment back with sku.capacity N, and wait
# for the host to finish
scale_behind() {
	curl -sS --max-time 10 -H "Authorization: Bearer $TOKEN" \
	    "$URL/$DEP?api-version=2024-04-01" |
	    "$PY" -c 'import json,sys
d = json.load(sys.stdin)
d["sku"]["capacity"] = int(sys.argv[1])
for k in ("id", "name", "type", "systemData"):
    d.pop(k, None)
d["properties"].pop("provisioningState", None)
print(json.dumps(d))' "$1" >"$T/dep.json"
	local code
	code=$(curl -sS --max-time 10 -o "$T/put.out" -w '%{http_code}' -X PUT \
	    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
	    --data-binary @"$T/dep.json" "$URL/$DEP?api-version=2024-04-01")
	case "$code" in 200 | 201 | 202) ;; *) cat "$T/put.out" >&2; fail "PUT: $code" ;; esac
	for _ in $(seq 100); do
		[ "$(capacity)" = "$1" ] && return 0
		sleep 0.1
	done
	fail "the host did not scale to $1"
}

start_host
git_init "$W"
fixture_common "$W"
split_endpoint "$W" drift-ep blue=100
split_deployment "$W" drift-ep blue 1
commit "$W" "1 create"
C1=$(git -C "$W" rev-parse HEAD)

start_watch --drift-interval 1s
wait_log "event=reconcile_done commit=${C1:0:12} result=succeeded" 1 60
# in sync: checks find nothing
for _ in $(seq 100); do
	[ "$(metric 'amlops_drift_checks_total{result="ok"}')" -ge 1 ] && break
	sleep 0.1
done
[ "$(metric 'amlops_drift_checks_total{result="ok"}')" -ge 1 ] || fail "no ok drift check"
grep -q "event=drift " "$T/watch.err" && fail "drift reported while in sync"
ok "in sync: drift checks find nothing"

scale_behind 2
wait_log "level=warn event=drift endpoint=drift-ep steps=1 aspects=scale commit=${C1:0:12} action=report" 1 10
[ "$(metric amlops_drifted_endpoints)" = 1 ] || fail "drifted_endpoints != 1"
[ "$(metric 'amlops_drift_checks_total{result="drift"}')" -ge 1 ] || fail "no drift check counted"
sleep 1.5
[ "$(capacity)" = 2 ] || fail "report-only watch changed the live state"
ok "drift reported in the log and /metrics, and left alone"
stop_watch

start_watch --drift-interval 1s --self-heal
wait_log "event=healed endpoints=1 steps=1 commit=${C1:0:12}" 1 30
[ "$(capacity)" = 1 ] || fail "not healed: capacity $(capacity)"
[ "$(note_get "$W" "$C1" "d['result']")" = succeeded ] || fail "note after healing"
[ "$(note_get "$W" "$C1" "[s['aspect'] for s in d['steps']]")" = '["scale"]' ] ||
    fail "the heal is not in the note"
[ "$(note_get "$W" "$C1" "len(d['attempts'])")" = 1 ] || fail "the original run is not in attempts"
for _ in $(seq 60); do
	[ "$(metric amlops_drifted_endpoints)" = 0 ] && break
	sleep 0.1
done
[ "$(metric amlops_drifted_endpoints)" = 0 ] || fail "still drifted after healing"
[ "$(metric 'amlops_drift_checks_total{result="healed"}')" = 1 ] || fail "healed count"
stop_watch
invariants
ok "--self-heal scales it back; the note records the heal; next check is clean"

echo "PASS: watch_drift"
