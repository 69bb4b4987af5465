#!/bin/bash
# amlops reconcile --once against a bare "remote" in a temp dir, through
# a file:// URL (cloned into the cache, fetched, pushed back): the first
# commit, then three commits pushed at once (reconciled straight to the
# newest; the two in between get a "superseded" note naming it), nothing
# new, a broken commit (exit 1, file:line:column in the log), the lock
# held by a running amlops watch (exit 3, "locked by pid N since T"),
# released by kill -9, and the exact usage errors.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

export XDG_CACHE_HOME=$T/cache
REMOTE=$T/remote.git
W=$T/work
ST=$T/st

# rec [ARGS...]: amlops reconcile --once on the remote, with a deadline;
# sets RC, output in $T/rec.out and $T/rec.err.
rec() {
	RC=0
	timeout 120 "$AMLOPS" --repo "file://$REMOTE" reconcile --once \
	    --state-dir "$ST" "$@" >"$T/rec.out" 2>"$T/rec.err" || RC=$?
	[ "$RC" = 124 ] && fail "amlops reconcile did not finish within 120s"
	if grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$T/rec.err"; then
		fail "sanitizer report from amlops reconcile"
	fi
	return 0
}

rnote() { # rnote REV EXPR: over the note of REV in the remote
	git -C "$REMOTE" notes --ref amlops show "$1" >"$T/note.json" 2>/dev/null ||
	    fail "no note on $1 in the remote"
	jf "$T/note.json" "$2"
}

DEP=subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.MachineLearningServices/workspaces/local/onlineEndpoints/rec-ep/deployments/blue
blue_capacity() {
	curl -sS --max-time 10 -H "Authorization: Bearer $TOKEN" \
	    "$URL/$DEP?api-version=2024-04-01" |
	    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["sku"]["capacity"])'
}
blue_writes() { # PUT and PATCH requests the host answered for blue
	"$PY" - "$T/state/operations.log" <<'PYEOF'
import json, sys
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "request" and e.get("method") in ("PUT", "PATCH") \
            and e.get("path", "").split("?")[0].endswith("/deployments/blue"):
        n += 1
print(n)
PYEOF
}

start_host
git init -q --bare -b main "$REMOTE"
git_init "$W"
fixture_common "$W"
split_endpoint "$W" rec-ep blue=100
split_deployment "$W" rec-ep blue 1
commit "$W" "1 create"
C1=$(git -C "$W" rev-parse HEAD)
git -C "$W" push -q "$REMOTE" main

rec --push
[ "$RC" = 0 ] || { cat "$T/rec.err" >&2; fail "first reconcile exited $RC"; }
[ "$(git -C "$REMOTE" rev-parse refs/amlops/applied/local)" = "$C1" ] ||
    fail "the applied ref was not pushed to the remote"
[ "$(rnote "$C1" "d['result']")" = succeeded ] || fail "note of $C1 not succeeded"
[ "$(rnote "$C1" "len(d['steps'])")" = 3 ] || fail "first commit: expected 3 steps"
grep -q "event=pushed notes_ref=refs/notes/amlops applied_ref=yes" "$T/rec.err" ||
    fail "no push in the log"
# one line per event: a timestamp, a level, key=value fields
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z level=info event=reconcile_done commit=[0-9a-f]{12} result=succeeded steps=3 ms=[0-9]+$' \
    "$T/rec.err" || fail "no reconcile_done line in the expected shape"
ok "first commit reconciled from a bare remote; note and applied ref pushed back"

# three commits pushed at once
split_deployment "$W" rec-ep blue 2
commit "$W" "2 scale to 2"
C2=$(git -C "$W" rev-parse HEAD)
split_deployment "$W" rec-ep blue 3
commit "$W" "3 scale to 3"
C3=$(git -C "$W" rev-parse HEAD)
split_deployment "$W" rec-ep blue 2
commit "$W" "4 back to 2"
C4=$(git -C "$W" rev-parse HEAD)
git -C "$W" push -q "$REMOTE" main
rec --push
[ "$RC" = 0 ] || { cat "$T/rec.err" >&2; fail "second reconcile exited $RC"; }
[ "$(git -C "$REMOTE" rev-parse refs/amlops/applied/local)" = "$C4" ] ||
    fail "applied ref is not the newest commit"
[ "$(rnote "$C4" "d['result']")" = succeeded ] || fail "note of C4 not succeeded"
# straight to the newest: one scale step 1 -> 2, never 3
[ "$(rnote "$C4" "[(s['aspect'], s['status']) for s in d['steps']]")" = '[["scale", "succeeded"]]' ] ||
    fail "C4: expected one scale step, got $(rnote "$C4" "d['steps']")"
for c in "$C2" "$C3"; do
	[ "$(rnote "$c" "d['result']")" = superseded ] || fail "note of $c not superseded"
	[ "$(rnote "$c" "d['superseded_by']")" = "$C4" ] || fail "$c: superseded_by is not C4"
	[ "$(rnote "$c" "d['finished'] is not None and d['steps'] == []")" = True ] ||
	    fail "$c: superseded note not finished or has steps"
done
[ "$(grep -c "event=superseded commit=.* by=${C4:0:12}" "$T/rec.err")" = 2 ] ||
    fail "expected two superseded lines in the log"
grep -q "event=superseded commit=${C2:0:12} by=${C4:0:12}" "$T/rec.err" ||
    fail "C2 not logged as superseded"
# live: C4's instance count; the host saw two writes to blue in all
# (the create, one scale), so C3's scale to 3 never went out
[ "$(blue_capacity)" = 2 ] || fail "blue's live capacity is $(blue_capacity), expected 2"
[ "$(blue_writes)" = 2 ] || fail "expected 2 writes to blue, the host saw $(blue_writes)"
# amlops status reads the superseded note
git clone -q "$REMOTE" "$T/clone"
git -C "$T/clone" fetch -q origin 'refs/notes/*:refs/notes/*'
timeout 30 "$AMLOPS" --repo "$T/clone" status "$C2" >"$T/status.out" ||
    fail "amlops status on a superseded commit failed"
grep -qi superseded "$T/status.out" || fail "status does not say superseded"
ok "three pushes at once: straight to the newest, two superseded notes"

rec --push
[ "$RC" = 0 ] || fail "up-to-date reconcile exited $RC"
grep -q "event=up_to_date commit=${C4:0:12}" "$T/rec.err" || fail "not up to date"
grep -q "event=apply_start" "$T/rec.err" && fail "up to date but applied"
ok "nothing new: exit 0, nothing applied"

# a broken commit: exit 1, the problem with file:line:column
printf 'name: rec-ep\nauth_mode: key\ntraffic:\n  blue: 100\ninstanse_count: 1\n' \
    >"$W/endpoints/rec-ep/endpoint.yml"
commit "$W" "5 broken"
C5=$(git -C "$W" rev-parse HEAD)
git -C "$W" push -q "$REMOTE" main
rec --push
[ "$RC" = 1 ] || fail "broken commit: exit $RC, expected 1"
grep -q "level=error event=invalid problem=\"endpoints/rec-ep/endpoint.yml:5:1: unknown key 'instanse_count'" "$T/rec.err" ||
    { cat "$T/rec.err" >&2; fail "no file:line:column for the broken key"; }
[ "$(tail -n 1 "$T/rec.err")" = "amlops: error: 1 problem in ${C5:0:12}" ] ||
    fail "unexpected last line: $(tail -n 1 "$T/rec.err")"
[ "$(git -C "$REMOTE" rev-parse refs/amlops/applied/local)" = "$C4" ] ||
    fail "the applied ref moved on a broken commit"
git -C "$W" revert --no-edit HEAD >/dev/null
git -C "$W" push -q "$REMOTE" main
ok "broken commit: exit 1, the problem at endpoints/rec-ep/endpoint.yml:5:1"

# the lock: a running watch holds it
"$AMLOPS" --repo "$W" watch --state-dir "$ST" >"$T/watch.out" 2>"$T/watch.err" &
WPID=$!
BG_PIDS+=("$WPID")
for _ in $(seq 100); do
	grep -q "event=watch_start" "$T/watch.err" && break
	kill -0 "$WPID" 2>/dev/null || { cat "$T/watch.err" >&2; fail "watch exited"; }
	sleep 0.1
done
grep -q "event=watch_start" "$T/watch.err" || fail "watch did not start within 10s"
SINCE=$(sed -n 's/^pid [0-9]* since \(.*\)$/\1/p' "$ST/reconcile.lock")
[ -n "$SINCE" ] || fail "no start time in the lock file: $(cat "$ST/reconcile.lock")"
rec
[ "$RC" = 3 ] || fail "locked: exit $RC, expected 3"
[ "$(cat "$T/rec.err")" = "amlops: error: locked by pid $WPID since $SINCE ($ST/reconcile.lock)" ] ||
    fail "unexpected lock message: $(cat "$T/rec.err")"
kill -KILL "$WPID"
wait "$WPID" 2>/dev/null || true
rec --push
[ "$RC" = 0 ] || { cat "$T/rec.err" >&2; fail "after kill -9 of the holder: exit $RC"; }
C6=$(git -C "$W" rev-parse HEAD)
[ "$(git -C "$REMOTE" rev-parse refs/amlops/applied/local)" = "$C6" ] ||
    fail "the revert was not applied"
[ "$(rnote "$C5" "d['result']")" = superseded ] || fail "the broken commit is not superseded"
ok "lock: exit 3 naming the holder's pid and start time; free after kill -9"

# usage errors, exact
usage() { # usage EXPECTED-FIRST-LINE ARGS...
	local want=$1 rc=0
	shift
	timeout 30 "$AMLOPS" --repo "$W" "$@" >"$T/u.out" 2>"$T/u.err" || rc=$?
	[ "$rc" = 64 ] || fail "$*: exit $rc, expected 64"
	[ "$(head -n 1 "$T/u.err")" = "$want" ] ||
	    fail "$*: got '$(head -n 1 "$T/u.err")'"
}
usage "amlops: reconcile: unknown log format 'xml' (expected 'text' or 'json')" \
    reconcile --once --log-format xml
usage "amlops: reconcile: --jobs '0' is not a number from 1 to 64" reconcile --jobs 0
usage "amlops: reconcile: --timeout 'soon' is not a duration (e.g. 90s, 20m, 1h)" \
    reconcile --timeout soon
usage "amlops: reconcile: unexpected argument 'main'" reconcile main
usage "amlops: watch: --interval 'often' is not a duration (e.g. 500ms, 30s, 10m)" \
    watch --interval often
usage "amlops: watch: --self-heal needs --drift-interval" watch --self-heal
RC=0
timeout 30 "$AMLOPS" --repo "$W" watch --state-dir "$T/st2" --listen nowhere \
    >"$T/u.out" 2>"$T/u.err" || RC=$?
[ "$RC" = 1 ] || fail "--listen nowhere: exit $RC"
[ "$(tail -n 1 "$T/u.err")" = "amlops: error: bad listen address 'nowhere' (expected HOST:PORT, [IPV6]:PORT or :PORT, e.g. 127.0.0.1:9464)" ] ||
    fail "--listen nowhere: $(cat "$T/u.err")"
RC=0
timeout 30 "$AMLOPS" --repo "$T/nothing-here" reconcile --state-dir "$T/st2" \
    >"$T/u.out" 2>"$T/u.err" || RC=$?
[ "$RC" = 1 ] || fail "missing repo: exit $RC"
grep -q "^amlops: error: .*nothing-here" "$T/u.err" || fail "missing repo: $(cat "$T/u.err")"
ok "usage errors: exit 64 with the exact message"

echo "PASS: reconcile_remote"
