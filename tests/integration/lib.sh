# Helpers every integration test library shares; sourced by host_lib.bash
# and apply_lib.bash, never run (CMake leaves lib.sh out of the tests).

# ok MESSAGE: one TAP-style line per passed check
ok() {
	STEP=$((STEP + 1))
	echo "ok $STEP - $*"
}

# stop_pid PID [SIGNAL]: signal it, wait up to 15 s, then SIGKILL
stop_pid() {
	local pid=$1 sig=${2:-TERM} i
	kill "-$sig" "$pid" 2>/dev/null || return 0
	for i in $(seq 150); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
