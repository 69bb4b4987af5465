#!/bin/bash
# The watch benchmark: how soon a commit starts being applied, and what
# an idle `amlops watch` costs.
#
#   - commit-to-apply-start latency: the time from `git commit`'s return
#     to the wall_ms of watch's "event=apply_start" line for that commit,
#     with inotify on the refs, with --poll --interval 1s and with --poll
#     --interval 30s (commits come at random moments, so polling costs
#     half the interval on average);
#   - idle CPU (utime+stime from /proc/PID/stat) and memory of watch over
#     60 s, inotify and --poll --interval 1s, against a named peer
#     measured at the same time: the naive poller, a bash loop running
#     `git rev-parse HEAD` every second. Memory is VmRSS, split into
#     RssAnon (private to the process) and RssFile (pages of the binary
#     and its ~40 shared libraries, in the page cache for every process
#     that maps them), and Pss (shared pages divided among the processes
#     that map them); then the inotify watch's largest mappings.
#     Why those figures and not less: tests/bench/watch_memory.md.
#
# The commits touch a README only: the plan is empty, so the figure is
# detection plus the pass up to the apply (fetch, resolve, read live
# state, plan), not the service's time.
#
#   tests/bench/watch_bench.sh
#
# Env: AMLOPS (a binary; default: a Release build, no sanitizers, in
# build/bench), N (inotify samples, default 20), N1 (1 s samples,
# default 10), N30 (30 s samples, default 3), IDLE (seconds, default 60).
# Takes about 3 to 4 minutes; not run by ctest.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
N=${N:-20}
N1=${N1:-10}
N30=${N30:-3}
IDLE=${IDLE:-60}
T=$(mktemp -d /tmp/amlops-watch-bench.XXXXXX)
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

if [ -z "${AMLOPS:-}" ]; then
	BUILD=${AMLOPS_BENCH_BUILD:-$SRC/build/bench}
	echo "building a Release amlops in $BUILD ..." >&2
	cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
	    -DAMLOPS_TESTS=OFF -DAMLOPS_SANITIZE=OFF >/dev/null
	cmake --build "$BUILD" --target amlops -j2 >/dev/null
	AMLOPS=$BUILD/amlops
fi
export XDG_STATE_HOME=$T/xdg

# the local target
"$AMLOPS" host --state-dir "$T/host" --port 0 >"$T/host.out" 2>"$T/host.err" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/host/host.json" ] && break; sleep 0.1; done
[ -s "$T/host/host.json" ] || fail "the host did not start"
export AMLOPS_HOST_DIR=$T/host

mkrepo() {
	git init -q -b main "$1"
	git -C "$1" config user.name bench
	git -C "$1" config user.email bench@example.com
	git -C "$1" config commit.gpgsign false
	echo 0 >"$1/README"
	git -C "$1" add README
	git -C "$1" commit -q -m 0
}

# start NAME ARGS...: watch on repo $T/NAME, log in $T/NAME.log; waits
# for the first pass. Sets WPID.
start() {
	local name=$1
	shift
	mkrepo "$T/$name"
	"$AMLOPS" --repo "$T/$name" watch --state-dir "$T/st-$name" "$@" \
	    2>"$T/$name.log" >/dev/null &
	WPID=$!
	PIDS+=("$WPID")
	for _ in $(seq 200); do
		grep -q "event=reconcile_done" "$T/$name.log" && return 0
		kill -0 "$WPID" 2>/dev/null || { cat "$T/$name.log" >&2; fail "$name: watch exited"; }
		sleep 0.05
	done
	fail "$name: no first pass within 10 s"
}

# sample NAME TIMEOUT-S: one commit, its latency in ms on stdout.
sample() {
	local name=$1 t0 sha i ws
	echo "$RANDOM" >"$T/$name/README"
	git -C "$T/$name" commit -q -a -m "bench"
	t0=$(date +%s%3N)
	sha=$(git -C "$T/$name" rev-parse HEAD)
	for i in $(seq $(($2 * 100))); do
		ws=$(sed -n "s/.*event=apply_start commit=${sha:0:12} .*wall_ms=\([0-9]*\).*/\1/p" "$T/$name.log")
		[ -n "$ws" ] && { echo $((ws - t0)); return 0; }
		sleep 0.01
	done
	fail "$name: commit ${sha:0:12} not picked up within $2 s"
}

stats() { # stats < one number a line: "n median mean p90 max"
	$PY -c '
import statistics, sys
v = sorted(int(x) for x in sys.stdin if x.strip())
p90 = v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))]
print("%d %d %d %d %d" % (len(v), statistics.median(v), statistics.mean(v), p90, v[-1]))'
}

echo "inotify: $N commits ..." >&2
start ino
for _ in $(seq "$N"); do
	sample ino 10
	sleep 0.$((RANDOM % 3 + 2))
done >"$T/lat-ino"
kill -TERM "$WPID"

echo "poll 1s: $N1 commits at random moments ..." >&2
start p1 --poll --interval 1s
for _ in $(seq "$N1"); do
	sleep "0.$((RANDOM % 10))"
	sample p1 5
done >"$T/lat-p1"
kill -TERM "$WPID"

echo "poll 30s: $N30 commits at random moments ..." >&2
start p30 --poll --interval 30s
for _ in $(seq "$N30"); do
	# uniform over the interval: the wait after the last poll varies
	sleep "$((RANDOM % 30)).$((RANDOM % 10))"
	sample p30 40
done >"$T/lat-p30"
kill -TERM "$WPID"

echo "idle: ${IDLE}s of inotify watch, 1s poll watch and the bash poller ..." >&2
start idle-ino
PI=$WPID
start idle-p1 --poll --interval 1s
PP=$WPID
mkrepo "$T/peer"
bash -c 'while sleep 1; do git -C "$1" rev-parse HEAD >/dev/null; done' _ "$T/peer" &
PEER=$!
PIDS+=("$PEER")
sleep 1
ticks() { # utime+stime of PID and its children that it waited for
	awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"
}
# mem PID: "VmRSS RssAnon RssFile Pss" in kB (Pss: shared library pages
# divided among the processes that map them)
mem() {
	echo "$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status")" \
	    "$(awk '/^RssAnon:/ {print $2}' "/proc/$1/status")" \
	    "$(awk '/^RssFile:/ {print $2}' "/proc/$1/status")" \
	    "$(awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup")"
}
# maps PID: its largest mappings by Rss, "name MB" a line
maps() {
	awk '/^[0-9a-f]+-/ { n = split($6, p, "/"); name = n ? p[n] : "[anon]" }
	    /^Rss:/ { r[name] += $2 }
	    END { for (k in r) printf "%d %s\n", r[k], k }' "/proc/$1/smaps" |
	    sort -rn | head -8 | awk '{ printf "%s %.1f\n", $2, $1 / 1024 }'
}
a1=$(ticks "$PI"); b1=$(ticks "$PP"); c1=$(ticks "$PEER")
sleep "$IDLE"
a2=$(ticks "$PI"); b2=$(ticks "$PP"); c2=$(ticks "$PEER")
mi=$(mem "$PI"); mp=$(mem "$PP"); mc=$(mem "$PEER")
maps "$PI" >"$T/maps-ino"
HZ=$(getconf CLK_TCK)

{
	echo "amlops watch benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $AMLOPS)"
	echo
	echo "commit to apply start, ms (from git commit's return to event=apply_start):"
	printf "  %-22s %4s %7s %7s %7s %7s\n" mode n median mean p90 max
	for m in "inotify:ino" "poll --interval 1s:p1" "poll --interval 30s:p30"; do
		read -r n med mean p90 max < <(stats <"$T/lat-${m##*:}")
		printf "  %-22s %4d %7d %7d %7d %7d\n" "${m%%:*}" "$n" "$med" "$mean" "$p90" "$max"
	done
	ino=$(stats <"$T/lat-ino" | awk '{print $2}')
	p1=$(stats <"$T/lat-p1" | awk '{print $2}')
	p30=$(stats <"$T/lat-p30" | awk '{print $2}')
	$PY -c 'import sys
i, a, b = (max(1, int(x)) for x in sys.argv[1:])
print("  ratio of medians: poll 1s / inotify = %.0fx, poll 30s / inotify = %.0fx" % (a / i, b / i))' \
	    "$ino" "$p1" "$p30"
	echo
	echo "idle over ${IDLE}s (CPU % of one core; memory in MB: VmRSS = RssAnon"
	echo "(private) + RssFile (binary and shared libraries), and Pss):"
	# shellcheck disable=SC2086 # mi, mp, mc: four numbers each
	$PY -c 'import sys
hz, idle = int(sys.argv[1]), float(sys.argv[2])
a = sys.argv[3:]
rows = [("amlops watch (inotify)", a[0:6]), ("amlops watch --poll 1s", a[6:12]),
        ("peer: bash + git 1s", a[12:18])]
for name, (t1, t2, rss, anon, file, pss) in rows:
    cpu = (int(t2) - int(t1)) / hz / idle * 100
    print("  %-24s cpu %6.3f %%  rss %5.1f  anon %5.1f  file %5.1f  pss %5.1f" %
          (name, cpu, int(rss) / 1024, int(anon) / 1024, int(file) / 1024,
           int(pss) / 1024))' \
	    "$HZ" "$IDLE" "$a1" "$a2" $mi "$b1" "$b2" $mp "$c1" "$c2" $mc
	echo "  amlops watch (inotify), largest mappings (MB):" \
	    "$(awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }' "$T/maps-ino")"
	echo "  (CPU resolution: 1 tick = $((1000 / HZ)) ms over ${IDLE} s = $($PY -c "print('%.3f' % (100 / $HZ / $IDLE))") %)"
	echo
	echo "reproduce: tests/bench/watch_bench.sh   (AMLOPS=path N=$N N1=$N1 N30=$N30 IDLE=$IDLE)"
}
