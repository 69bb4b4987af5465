#!/usr/bin/env bash
# Scoring throughput and latency of the amlops runtime against its peer,
# gunicorn + Flask (the architecture of Azure's own inference server),
# serving the same score.py with the same number of worker processes.
#
#   tests/bench/score_bench.sh [BUILD_DIR]
#
# BUILD_DIR (default build/runtime-release) holds integ_test_runtime built
# without sanitizers:
#   cmake -S . -B build/runtime-release -DCMAKE_BUILD_TYPE=Release
#   cmake --build build/runtime-release --target integ_test_runtime
# Its serve mode (AMLOPS_RUNTIME_SERVE) runs the runtime exactly as
# `amlops host` does, without the control plane in front.
#
# Knobs (environment): WORKERS (2), CONNS (8), SECONDS_RUN (10),
# WRK_THREADS (2), ROUNDS (2). Two scores: a trivial score.py, and the
# scikit-learn sample of manifests/. For each it prints requests/s and p99
# at CONNS connections for both servers, their ratios, and the per-request
# overhead: median latency at one connection and one worker, less the time
# run() takes in a tight Python loop. The two servers take turns for
# ROUNDS rounds and each keeps its best round, so that a load spike from
# elsewhere on the machine does not decide the ratio. Targets: amlops >= 3x
# the peer's requests/s and <= 1/2 its p99.
#
# The runtime gets max_concurrent_requests_per_instance =
# ceil(CONNS / (2 * WORKERS)), so that Azure's limit of 2 * that * workers
# requests in flight admits every connection (no 429s).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build/runtime-release}
driver=$build/integ_test_runtime
PY=/usr/bin/python3
WORKERS=${WORKERS:-2}
CONNS=${CONNS:-8}
SECONDS_RUN=${SECONDS_RUN:-10}
WRK_THREADS=${WRK_THREADS:-2}
ROUNDS=${ROUNDS:-2}

for tool in wrk "$PY" curl; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool not found"; exit 0; }
done
"$PY" -c 'import flask, gunicorn, sklearn' 2>/dev/null ||
	{ echo "SKIP: $PY lacks flask, gunicorn or sklearn"; exit 0; }
[ -x "$driver" ] || { echo "error: no $driver (see the top of $0)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/amlops-bench-XXXXXX)
pids=()
cleanup() {
	exec 7>&- 2>/dev/null || true
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wrk URL BODYFILE CONNS SECONDS AUTH -> "rps p99_ms p50_ms non2xx"
run_wrk() {
	local url=$1 body=$2 conns=$3 secs=$4 auth=$5 threads=$WRK_THREADS
	[ "$conns" -lt "$threads" ] && threads=$conns
	cat >"$tmp/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
$( [ -n "$auth" ] && echo "wrk.headers[\"Authorization\"] = \"Bearer $auth\"" )
local f = io.open("$body", "rb")
wrk.body = f:read("*a")
f:close()
EOF
	timeout $((secs + 30)) wrk -t"$threads" -c"$conns" -d"${secs}s" \
	    --timeout 10s --latency -s "$tmp/post.lua" "$url" >"$tmp/wrk.out"
	awk '
	function ms(v) {
		if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
		if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
		if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
		return v + 0
	}
	$1 == "50%" { p50 = ms($2) }
	$1 == "99%" { p99 = ms($2) }
	$1 == "Requests/sec:" { rps = $2 }
	/Non-2xx/ { bad = $NF }
	END { printf "%s %.3f %.3f %d\n", rps, p99, p50, bad }' "$tmp/wrk.out"
}

# Starts the runtime on CODE MODEL with N workers; sets AMLOPS_URL.
start_amlops() {
	local code=$1 model=$2 n=$3
	rm -f "$tmp/in.fifo" "$tmp/url"
	mkfifo -m 600 "$tmp/in.fifo"
	AMLOPS_RUNTIME_SERVE=$code AMLOPS_RUNTIME_MODEL=$model \
	    AMLOPS_RUNTIME_INSTANCES=$n AMLOPS_RUNTIME_MAXCONC=$(( (CONNS + 2 * n - 1) / (2 * n) )) \
	    "$driver" <"$tmp/in.fifo" >"$tmp/url" 2>"$tmp/amlops.err" &
	amlops_pid=$!
	pids+=("$amlops_pid")
	exec 7>"$tmp/in.fifo"
	for _ in $(seq 300); do
		[ -s "$tmp/url" ] && break
		kill -0 "$amlops_pid" 2>/dev/null || break
		sleep 0.1
	done
	[ -s "$tmp/url" ] || { cat "$tmp/amlops.err" >&2; echo "error: runtime did not start" >&2; exit 1; }
	AMLOPS_URL="$(head -1 "$tmp/url")/endpoints/bench/score"
}

stop_amlops() {
	exec 7>&-
	for _ in $(seq 100); do
		kill -0 "$amlops_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$amlops_pid" 2>/dev/null || true
	wait "$amlops_pid" 2>/dev/null || true
}

# Starts gunicorn + Flask on CODE MODEL with N workers; sets PEER_URL.
start_peer() {
	local code=$1 model=$2 n=$3 port
	port=$(free_port)
	SCORE_DIR=$code AZUREML_MODEL_DIR=$model "$PY" -m gunicorn -w "$n" \
	    -b "127.0.0.1:$port" --chdir "$here" --log-level warning \
	    flask_peer:app >"$tmp/peer.log" 2>&1 &
	peer_pid=$!
	pids+=("$peer_pid")
	PEER_URL="http://127.0.0.1:$port/score"
	for _ in $(seq 300); do
		curl -s -o /dev/null -m 2 -X POST -H 'Content-Type: application/json' \
		    --data-binary @"$body" "$PEER_URL" && return 0
		kill -0 "$peer_pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$tmp/peer.log" >&2
	echo "error: gunicorn did not start" >&2
	exit 1
}

stop_peer() {
	kill "$peer_pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$peer_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$peer_pid" 2>/dev/null || true
	wait "$peer_pid" 2>/dev/null || true
}

# The better of two wrk results: most requests/s, least p99 and p50, and
# the non-2xx count of the round with the most requests/s.
best() {
	awk -v x="$1" -v y="$2" 'BEGIN {
		split(x, X, " "); split(y, Y, " ")
		printf "%s %s %s %s\n", (X[1] + 0 >= Y[1] + 0 ? X[1] : Y[1]),
		    (X[2] + 0 <= Y[2] + 0 ? X[2] : Y[2]),
		    (X[3] + 0 <= Y[3] + 0 ? X[3] : Y[3]),
		    (X[1] + 0 >= Y[1] + 0 ? X[4] : Y[4])
	}'
}

# Microseconds one run() call takes in a tight loop.
tight_loop_us() {
	local code=$1 model=$2
	AZUREML_MODEL_DIR=$model "$PY" - "$code" "$body" <<'EOF'
import importlib.util, os, sys, time
code, body = sys.argv[1], open(sys.argv[2]).read()
sys.path.insert(0, code)
spec = importlib.util.spec_from_file_location("score", os.path.join(code, "score.py"))
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
m.init()
for _ in range(200):
    m.run(body)
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < 2.0:
    m.run(body); n += 1
print("%.1f" % ((time.perf_counter() - t0) / n * 1e6))
EOF
}

bench() {
	local label=$1 code=$2 model=$3
	local a p a1 p1 loop
	body=$4
	echo "== $label: $WORKERS workers, $CONNS connections, ${SECONDS_RUN}s, best of $ROUNDS"
	loop=$(tight_loop_us "$code" "$model")

	a="0 1e9 1e9 0" p="0 1e9 1e9 0" a1="0 1e9 1e9 0" p1="0 1e9 1e9 0"
	for round in $(seq "$ROUNDS"); do
		start_amlops "$code" "$model" "$WORKERS"
		curl -sf -m 10 -H 'Authorization: Bearer bench-key' \
		    -H 'Content-Type: application/json' --data-binary @"$body" \
		    "$AMLOPS_URL" >"$tmp/amlops.answer"
		a=$(best "$a" "$(run_wrk "$AMLOPS_URL" "$body" "$CONNS" \
		    "$SECONDS_RUN" bench-key)")
		stop_amlops
		start_amlops "$code" "$model" 1
		a1=$(best "$a1" "$(run_wrk "$AMLOPS_URL" "$body" 1 5 bench-key)")
		stop_amlops

		start_peer "$code" "$model" "$WORKERS"
		curl -sf -m 10 -H 'Content-Type: application/json' \
		    --data-binary @"$body" "$PEER_URL" >"$tmp/peer.answer"
		p=$(best "$p" "$(run_wrk "$PEER_URL" "$body" "$CONNS" \
		    "$SECONDS_RUN" "")")
		stop_peer
		start_peer "$code" "$model" 1
		p1=$(best "$p1" "$(run_wrk "$PEER_URL" "$body" 1 5 "")")
		stop_peer
	done

	if ! cmp -s "$tmp/amlops.answer" "$tmp/peer.answer"; then
		echo "error: the two servers answer differently:" >&2
		cat "$tmp/amlops.answer" "$tmp/peer.answer" >&2
		exit 1
	fi
	echo "   answer: $(head -c 200 "$tmp/amlops.answer")"
	awk -v a="$a" -v p="$p" -v a1="$a1" -v p1="$p1" -v loop="$loop" '
	BEGIN {
		split(a, A, " "); split(p, P, " ")
		split(a1, A1, " "); split(p1, P1, " ")
		printf "   %-16s %12s %10s %10s\n", "", "requests/s", "p99 ms", "non-2xx"
		printf "   %-16s %12.0f %10.2f %10d\n", "amlops", A[1], A[2], A[4]
		printf "   %-16s %12.0f %10.2f %10d\n", "gunicorn+flask", P[1], P[2], P[4]
		printf "   throughput ratio amlops/peer: %.2fx (target >= 3)\n", A[1] / P[1]
		printf "   p99 ratio amlops/peer:        %.2f (target <= 0.5)\n", A[2] / P[2]
		printf "   run() in a tight loop: %.1f us; one connection, one worker:\n", loop
		printf "     amlops median %.3f ms = run() + %.0f us overhead\n", A1[3], A1[3] * 1000 - loop
		printf "     peer   median %.3f ms = run() + %.0f us overhead\n", P1[3], P1[3] * 1000 - loop
	}'
}

# 1. A trivial score.py.
mkdir -p "$tmp/trivial"
cat >"$tmp/trivial/score.py" <<'EOF'
import json
def init():
    pass
def run(raw_data):
    return {"rows": len(json.loads(raw_data)["data"])}
EOF
bench "trivial score.py" "$tmp/trivial" "$tmp/trivial" \
    "$src/manifests/models/sample-request.json"

# 2. The scikit-learn sample of manifests/.
sample=$src/manifests/models/regression-1
if [ -f "$sample/onlinescoring/score.py" ]; then
	bench "sklearn sample (manifests/models/regression-1)" \
	    "$sample/onlinescoring" "$sample" \
	    "$src/manifests/models/sample-request.json"
else
	echo "SKIP: no $sample"
fi
echo "reproduce: $0 $build"
