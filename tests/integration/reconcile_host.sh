#!/bin/bash
# reconcile and watch on the local target start an `amlops host` in the
# background when none runs, as apply does (one implementation in
# src/cli/target.c), and log where its state and log are: reconcile --once
# on a fresh state dir applies the commit instead of failing with "no
# amlops host is running"; a second run uses the host already there;
# watch starts one in --host-dir.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

# apply_lib.bash points AMLOPS_HOST_DIR at $T/state; here the default
# (XDG_STATE_HOME=$T/xdg) is what a fresh user gets
unset AMLOPS_HOST_DIR
HS=$T/xdg/amlops
W=$T/work
WPID=

# every host this test made a command start is stopped on exit
cleanup_hosts() {
	local f p
	[ -n "$WPID" ] && stop_pid "$WPID" TERM
	for f in "$T"/w/host.json; do
		[ -s "$f" ] || continue
		p=$(jf "$f" "d['pid']" 2>/dev/null || true)
		[ -n "$p" ] && stop_pid "$p" TERM
	done
	cleanup
}
trap cleanup_hosts EXIT

rec() {
	RC=0
	timeout 180 "$AMLOPS" --repo "$W" reconcile --once --state-dir "$T/st" \
	    "$@" >"$T/rec.out" 2>"$T/rec.err" || RC=$?
	[ "$RC" = 124 ] && fail "amlops reconcile did not finish within 180s"
	if grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$T/rec.err"; then
		fail "sanitizer report from amlops reconcile"
	fi
	return 0
}

git_init "$W"
fixture_common "$W"
split_endpoint "$W" rh-ep blue=100
split_deployment "$W" rh-ep blue 1
commit "$W" "1 create"
C1=$(git -C "$W" rev-parse HEAD)

[ -e "$HS/host.json" ] && fail "a host runs before the test started one"
rec
[ "$RC" = 0 ] || { cat "$T/rec.err" >&2; fail "reconcile --once on a fresh state dir exited $RC"; }
grep -Eq "^[0-9T:Z-]+ level=info event=host_started state_dir=$HS log=$HS/host.log$" "$T/rec.err" ||
    { cat "$T/rec.err" >&2; fail "no event=host_started line naming $HS"; }
[ -s "$HS/host.json" ] || fail "no host.json in $HS"
[ "$(note_get "$W" "$C1" "d['result']")" = succeeded ] ||
    fail "the note of $C1 is not succeeded"
URL=$(jf "$HS/host.json" "d['url']")
TOKEN=$(jf "$HS/host.json" "d['token']")
[ "$(deployments rh-ep)" = blue ] || fail "deployments: $(deployments rh-ep)"
ok "reconcile --once on a fresh state dir starts a host and applies"

PID1=$(jf "$HS/host.json" "d['pid']")
split_deployment "$W" rh-ep blue 2
commit "$W" "2 scale"
rec
[ "$RC" = 0 ] || { cat "$T/rec.err" >&2; fail "second reconcile exited $RC"; }
grep -q "event=host_started" "$T/rec.err" && fail "a second host was started"
[ "$(jf "$HS/host.json" "d['pid']")" = "$PID1" ] || fail "the host changed"
ok "the next reconcile uses the host already running"

# watch, with --host-dir naming a dir where no host runs
"$AMLOPS" --repo "$W" watch --state-dir "$T/wst" --host-dir "$T/w" \
    >"$T/watch.out" 2>"$T/watch.err" &
WPID=$!
for i in $(seq 1200); do
	grep -q "event=watch_start" "$T/watch.err" && break
	kill -0 "$WPID" 2>/dev/null || { cat "$T/watch.err" >&2; fail "watch exited"; }
	sleep 0.05
done
grep -q "event=watch_start" "$T/watch.err" || fail "watch did not start within 60s"
grep -Eq "^[0-9T:Z-]+ level=info event=host_started state_dir=$T/w log=$T/w/host.log$" "$T/watch.err" ||
    { cat "$T/watch.err" >&2; fail "watch logged no event=host_started line naming $T/w"; }
[ -s "$T/w/host.json" ] || fail "no host.json in $T/w"
stop_pid "$WPID" TERM
WPID=
ok "watch starts a host in --host-dir and says where"
