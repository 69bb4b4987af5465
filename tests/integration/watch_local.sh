#!/bin/bash
# amlops watch on a local repository (inotify on its refs) against the
# real amlops host: a commit is picked up at once, /metrics and /healthz
# say what happened (reconciles by result, the duration histogram, steps
# by aspect and result, HTTP retries, the applied commit), a failing
# commit is retried with backoff (not on every ref change) and turns
# /healthz to 503 past --unhealthy-after, a fix brings it back to 200,
# SIGHUP reloads .amlops.yml, and --log-format json writes one JSON
# object a line.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

W=$T/work
ST=$T/st
WPID=

# start_watch ARGS...: amlops watch on $W in the background, log in
# $T/watch.err; waits for event=watch_start and sets PORT with --listen.
start_watch() {
	: >"$T/watch.err"
	"$AMLOPS" --repo "$W" watch --state-dir "$ST" "$@" \
	    >"$T/watch.out" 2>"$T/watch.err" &
	WPID=$!
	BG_PIDS+=("$WPID")
	wait_log "event=watch_start" 1 10
	PORT=$(sed -n 's/.*event=listening.*port=\([0-9]*\).*/\1/p' "$T/watch.err" | head -n 1)
}

# wait_log PATTERN COUNT SECONDS: until the log has COUNT lines matching.
wait_log() {
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
	local rc=0 i
	kill -TERM "$WPID"
	for i in $(seq 200); do
		kill -0 "$WPID" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$WPID" 2>/dev/null && fail "watch still running 10 s after SIGTERM"
	wait "$WPID" || rc=$?
	[ "$rc" = 0 ] || fail "watch exited $rc after SIGTERM"
	grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$T/watch.err" &&
	    fail "sanitizer report from amlops watch"
	return 0
}

get() { # get PATH: the body; status code in $T/code
	curl -sS --max-time 10 -o "$T/body" -w '%{http_code}' \
	    "http://127.0.0.1:$PORT$1" >"$T/code"
	cat "$T/body"
}

metric() { # metric 'NAME{LABELS}': its value in a fresh scrape
	get /metrics >"$T/metrics"
	awk -v k="$1" '$1 == k {print $2}' "$T/metrics"
}

start_host
git_init "$W"
fixture_common "$W"
split_endpoint "$W" watch-ep blue=100
split_deployment "$W" watch-ep blue 1
commit "$W" "1 create"
C1=$(git -C "$W" rev-parse HEAD)

start_watch --listen 127.0.0.1:0 --unhealthy-after 1s --backoff 2s
[ -n "$PORT" ] || fail "no port in the listening line"
wait_log "event=reconcile_done commit=${C1:0:12} result=succeeded" 1 60
grep -q "event=watch_start mode=inotify" "$T/watch.err" || fail "not in inotify mode"
ok "watch applies the repository's head at start"

# a new commit is picked up through inotify
split_deployment "$W" watch-ep blue 2
T0=$(date +%s%3N)
commit "$W" "2 scale"
C2=$(git -C "$W" rev-parse HEAD)
wait_log "event=apply_start commit=${C2:0:12}" 1 10
T1=$(sed -n "s/.*event=reconcile_start commit=${C2:0:12} .*wall_ms=\([0-9]*\).*/\1/p" "$T/watch.err")
echo "# commit to reconcile start: $((T1 - T0)) ms"
# generous for a loaded machine and the sanitizers; the bench measures it
[ $((T1 - T0)) -lt 2000 ] || fail "commit picked up after $((T1 - T0)) ms"
wait_log "event=reconcile_done commit=${C2:0:12} result=succeeded" 1 60
ok "a local commit starts reconciling within $((T1 - T0)) ms (inotify)"

# /metrics and /healthz
[ "$(metric 'amlops_reconciles_total{result="succeeded"}')" = 2 ] ||
    fail "reconciles succeeded: $(grep reconciles_total "$T/metrics")"
[ "$(metric 'amlops_reconciles_total{result="failed"}')" = 0 ] || fail "failed != 0"
[ "$(metric 'amlops_reconcile_duration_seconds_count')" = 2 ] || fail "histogram count"
[ "$(metric 'amlops_reconcile_duration_seconds_bucket{le="+Inf"}')" = 2 ] || fail "+Inf bucket"
[ "$(metric 'amlops_steps_total{aspect="scale",result="succeeded"}')" = 1 ] || fail "scale steps"
[ "$(metric 'amlops_steps_total{aspect="deployment",result="succeeded"}')" = 1 ] || fail "deployment steps"
[ "$(metric 'amlops_steps_total{aspect="traffic",result="succeeded"}')" = 1 ] || fail "traffic steps"
[ "$(metric "amlops_applied_info{target=\"local\",commit=\"$C2\"}")" = 1 ] ||
    fail "applied info: $(grep applied_info "$T/metrics")"
[ "$(metric amlops_reconcile_failing)" = 0 ] || fail "failing != 0"
LAST=$(metric amlops_last_success_timestamp_seconds)
[ "${LAST%.*}" -ge $((T0 / 1000 - 1)) ] || fail "last success $LAST before the commit"
grep -q '^# TYPE amlops_reconcile_duration_seconds histogram$' "$T/metrics" || fail "no histogram TYPE"
grep -q '^# TYPE amlops_http_retries_total counter$' "$T/metrics" || fail "no retries TYPE"
# every sample line parses as NAME{LABELS} VALUE
"$PY" - "$T/metrics" <<'PYEOF' || fail "a /metrics line does not parse"
import re, sys
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# HELP ") or line.startswith("# TYPE "):
        continue
    assert re.fullmatch(r'[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+', line), line
PYEOF
[ "$(get /healthz)" = ok ] && [ "$(cat "$T/code")" = 200 ] || fail "healthz not 200 ok"
get /nope >/dev/null
[ "$(cat "$T/code")" = 404 ] || fail "unknown path: $(cat "$T/code")"
[ "$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/metrics")" = 405 ] ||
    fail "POST /metrics not 405"
ok "/metrics: reconciles, histogram, steps by aspect, applied commit; /healthz 200"

# HTTP retries: two 503s on the next PUTs
fault '{"count":2,"status":503,"retry_after":0,"method":"PUT"}'
split_deployment "$W" watch-ep blue 1
commit "$W" "3 scale down"
C3=$(git -C "$W" rev-parse HEAD)
wait_log "event=reconcile_done commit=${C3:0:12} result=succeeded" 1 60
clear_faults
[ "$(metric amlops_http_retries_total)" -ge 2 ] ||
    fail "retries: $(grep retries_total "$T/metrics")"
ok "HTTP retries counted: $(metric amlops_http_retries_total)"

# a failing commit: retried with backoff, 503 past --unhealthy-after
printf 'name: watch-ep\nauth_mode: key\ntraffic: [\n' >"$W/endpoints/watch-ep/endpoint.yml"
commit "$W" "4 broken"
C4=$(git -C "$W" rev-parse HEAD)
wait_log "event=retry_scheduled commit=${C4:0:12} in_ms=2000" 1 10
# ref changes of other branches do not retry it before its time
git -C "$W" branch side-1
git -C "$W" branch side-2
sleep 0.5
[ "$(grep -c "event=reconcile_start commit=${C4:0:12}" "$T/watch.err")" = 1 ] ||
    fail "the failed commit was retried on a ref change"
wait_log "event=retry_scheduled commit=${C4:0:12} in_ms=4000" 1 10
grep -q "level=error event=invalid problem=\"endpoints/watch-ep/endpoint.yml:" "$T/watch.err" ||
    fail "no file:line:column for the broken YAML"
[ "$(metric 'amlops_reconciles_total{result="failed"}')" = 2 ] || fail "failed count"
[ "$(metric amlops_reconcile_failing)" = 1 ] || fail "failing != 1"
B=$(get /healthz)
[ "$(cat "$T/code")" = 503 ] || fail "healthz $(cat "$T/code") while failing for > 1s"
case "$B" in
"unhealthy: reconcile failing for "*"s: 2 problems in ${C4:0:12}") ;;
*) fail "healthz body: $B" ;;
esac
ok "a broken commit: retried after 2 s then 4 s, /healthz 503 with the reason"

split_endpoint "$W" watch-ep blue=100
commit "$W" "5 fixed"
C5=$(git -C "$W" rev-parse HEAD)
wait_log "event=reconcile_done commit=${C5:0:12} result=no_changes" 1 30
grep -q "event=superseded commit=${C4:0:12} by=${C5:0:12}" "$T/watch.err" ||
    fail "the broken commit was not superseded"
[ "$(get /healthz)" = ok ] || fail "healthz not back to ok"
ok "the fix: no changes to apply, /healthz 200 again"

# SIGHUP reloads .amlops.yml
printf 'notes_ref: refs/notes/amlops\npaths: [endpoints/]\n' >"$W/.amlops.yml"
commit "$W" "6 config"
C6=$(git -C "$W" rev-parse HEAD)
wait_log "event=reconcile_done commit=${C6:0:12}" 1 30
kill -HUP "$WPID"
wait_log "event=config_reloaded commit=${C6:0:12} notes_ref=refs/notes/amlops paths=1" 1 10
ok "SIGHUP reloads .amlops.yml"
stop_watch
grep -q "event=watch_stop" "$T/watch.err" || fail "no watch_stop line"
ok "SIGTERM while idle: exit 0"

# JSON logs: one object a line, with time and level
split_deployment "$W" watch-ep blue 2
commit "$W" "7 scale"
C7=$(git -C "$W" rev-parse HEAD)
start_watch --log-format json
wait_log "event=reconcile_done commit=${C7:0:12} result=succeeded" 1 60
stop_watch
"$PY" - "$T/watch.err" <<'PYEOF' || fail "a log line is not a JSON object"
import json, sys
n = 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    assert set(d) >= {"time", "level", "msg"}, d
    n += 1
assert n >= 4, n
PYEOF
ok "--log-format json: one JSON object a line"

# no secret in the log: the endpoint key and the host token
K=$(key watch-ep)
grep -qF "$K" "$T/watch.err" && fail "the endpoint key is in the log"
grep -qF "$TOKEN" "$T/watch.err" && fail "the host token is in the log"
ok "no key or token in the log"

echo "PASS: watch_local"
