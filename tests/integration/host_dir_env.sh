#!/bin/bash
# `amlops host` takes its state dir from $AMLOPS_HOST_DIR when --state-dir
# is not given, as apply, endpoint and reconcile do, and says so in its
# --help; --state-dir still wins over the variable.
set -euo pipefail
. "$(dirname "$0")/host_lib.bash"
export XDG_STATE_HOME=$T/xdg

# pid_of DIR: the pid in DIR/host.json.
pid_of() {
	jf "$1/host.json" "d['pid']"
}

# a detached host, wherever it wrote its host.json, is stopped on exit
cleanup_hosts() {
	local f p
	for f in "$T"/*/host.json "$T"/xdg/amlops/host.json; do
		[ -s "$f" ] || continue
		p=$(jf "$f" "d['pid']" 2>/dev/null || true)
		[ -n "$p" ] && stop_pid "$p" TERM
	done
	cleanup
}
trap cleanup_hosts EXIT

"$AMLOPS" host --help >"$T/help.out" || fail "host --help failed"
grep -qF -- '--state-dir DIR   default $AMLOPS_HOST_DIR, else' "$T/help.out" ||
    fail "host --help does not mention \$AMLOPS_HOST_DIR: $(cat "$T/help.out")"
ok "host --help names \$AMLOPS_HOST_DIR"

AMLOPS_HOST_DIR=$T/env timeout 60 "$AMLOPS" host --detach --port 0 \
    >"$T/d.out" 2>"$T/d.err" || fail "host --detach failed: $(cat "$T/d.err")"
[ -s "$T/env/host.json" ] || fail "no host.json in \$AMLOPS_HOST_DIR"
HOST_PID=$(pid_of "$T/env")
[ -e "$T/xdg/amlops/host.json" ] && fail "the host also wrote the XDG default"
[ "$(jf "$T/env/host.json" "d.get('state_dir')")" = "$T/env" ] ||
    fail "host.json names another state dir: $(jf "$T/env/host.json" "d.get('state_dir')")"
ok "host --detach with AMLOPS_HOST_DIR serves from it"

# a client with the same variable finds it
AMLOPS_HOST_DIR=$T/env timeout 60 "$AMLOPS" endpoint list \
    >"$T/l.out" 2>"$T/l.err" || fail "endpoint list failed: $(cat "$T/l.err")"
ok "endpoint list finds the host through AMLOPS_HOST_DIR"
stop_host
for i in $(seq 150); do
	[ -e "$T/env/host.json" ] || break
	sleep 0.1
done
[ -e "$T/env/host.json" ] && fail "host.json left behind after SIGTERM"

# --state-dir wins over the variable
AMLOPS_HOST_DIR=$T/env timeout 60 "$AMLOPS" host --detach --port 0 \
    --state-dir "$T/flag" >"$T/d.out" 2>"$T/d.err" ||
    fail "host --detach --state-dir failed: $(cat "$T/d.err")"
[ -s "$T/flag/host.json" ] || fail "no host.json in --state-dir"
HOST_PID=$(pid_of "$T/flag")
[ -e "$T/env/host.json" ] && fail "--state-dir did not win over AMLOPS_HOST_DIR"
ok "--state-dir wins over AMLOPS_HOST_DIR"
