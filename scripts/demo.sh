#!/bin/sh
# The first command of a new user: installs what is missing, builds
# amlops (Release, in build/release), then shows GitOps on the sample in
# manifests/ end to end against the local target:
#
#   a temporary git repository with the sample's models; `amlops host`
#   and `amlops watch` started against it; the sample endpoint committed;
#   the note awaited; the endpoint scored with the sample request; a
#   blue/green change committed (green, on the second model, takes 10% of
#   the traffic) with its plan, its apply and the answers of both; then
#   `amlops status`. Everything it started is stopped and removed at the
#   end, also when a stage fails (the failing command and its log are
#   printed, and it exits 1).
#
#   scripts/demo.sh
#   AMLOPS_BIN=build/demo/amlops scripts/demo.sh   use that binary: no setup, no build
#   AMLOPS_DEMO_KEEP=1 scripts/demo.sh             keep the temp dir (its path is printed)
set -eu
cd "$(dirname "$0")/.."
src=$(pwd)

if [ -n "${AMLOPS_BIN:-}" ]; then
	case "$AMLOPS_BIN" in
	/*) amlops=$AMLOPS_BIN ;;
	*) amlops=$src/$AMLOPS_BIN ;;
	esac
	[ -x "$amlops" ] || { echo "demo: AMLOPS_BIN=$AMLOPS_BIN is not an executable" >&2; exit 1; }
	echo "== amlops: $amlops (AMLOPS_BIN; setup and build skipped)"
else
	echo "== setup: scripts/setup.sh installs the Debian packages that are missing"
	scripts/setup.sh || { echo "demo: FAILED: scripts/setup.sh exited $?" >&2; exit 1; }
	build=${BUILD_DIR:-build/release}
	echo "== build: $build/amlops (Release)"
	blog=$(mktemp "${TMPDIR:-/tmp}/amlops-demo-build.XXXXXX")
	{
		cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DAMLOPS_TESTS=OFF &&
		    cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target amlops
	} >"$blog" 2>&1 || {
		echo "demo: FAILED: the build (cmake -S . -B $build ...); its log:" >&2
		tail -n 40 "$blog" >&2
		rm -f "$blog"
		exit 1
	}
	rm -f "$blog"
	case "$build" in
	/*) amlops=$build/amlops ;;
	*) amlops=$src/$build/amlops ;;
	esac
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/amlops-demo.XXXXXX")
R=$T/repo
HOST_PID=
WATCH_PID=
EP=sklearn-regression
REQ=models/sample-request.json

# stop PID NAME: SIGTERM, up to 15 s, then SIGKILL.
stop() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 150 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$1" 2>/dev/null && echo "demo: $2 did not stop on SIGTERM: killed" >&2
	wait "$1" 2>/dev/null || true
}

cleanup() {
	rc=$?
	trap - EXIT INT TERM
	stop "$WATCH_PID" "amlops watch"
	stop "$HOST_PID" "amlops host"
	if [ "${AMLOPS_DEMO_KEEP:-0}" = 1 ]; then
		echo "== cleanup: stopped amlops watch and amlops host; kept $T"
	else
		rm -rf "$T"
		echo "== cleanup: stopped amlops watch and amlops host, removed $T"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fail WHAT [LOG...]: says what failed, shows the logs, exits 1.
fail() {
	what=$1
	shift
	echo "demo: FAILED: $what" >&2
	for f in "$@"; do
		[ -s "$f" ] || continue
		echo "--- $(basename "$f") (last 40 lines):" >&2
		tail -n 40 "$f" >&2
	done
	exit 1
}

# run LOG CMD...: runs CMD with stdout and stderr in LOG; on failure
# shows the command, its exit code and LOG, then the host's and the
# watcher's logs.
run() {
	log=$1
	shift
	"$@" >"$log" 2>&1 || fail "'$*' exited $?" "$log" "$T/host.log" "$T/watch.log"
}

git_commit() { # MESSAGE: commits what is staged; prints the short id
	git -C "$R" -c user.name="amlops demo" -c user.email=demo@amlops.invalid \
	    commit -q -m "$1" || fail "git commit '$1'"
	git -C "$R" rev-parse --short=12 HEAD
}

# wait_note COMMIT: waits (up to 120 s) until amlops watch has finished
# applying COMMIT; prints amlops status's result line. Fails on any
# result other than succeeded.
wait_note() {
	i=0
	while :; do
		if "$amlops" --repo "$R" status "$1" >"$T/status.out" 2>&1; then
			res=$(sed -n 's/^result *//p' "$T/status.out")
			case "$res" in
			running*) ;;
			succeeded*) echo "$res"; return 0 ;;
			*) fail "the note of $1 says: $res" "$T/status.out" "$T/watch.log" "$T/host.log" ;;
			esac
		fi
		i=$((i + 1))
		[ $i -lt 600 ] || fail "no finished note on $1 within 120 s" "$T/status.out" "$T/watch.log" "$T/host.log"
		kill -0 "$WATCH_PID" 2>/dev/null || fail "amlops watch exited" "$T/watch.log"
		sleep 0.2
	done
}

# 1. the repository: the sample's models and environment, no endpoint yet
mkdir -p "$R"
git init -q -b main "$R" 2>/dev/null || git init -q "$R"
cp -r manifests/models manifests/environment "$R/"
git -C "$R" add models environment
c=$(git_commit "the sample's models and conda environment")
echo "[1/9] repository: $R, commit $c with models/ and environment/ from manifests/"

# 2. the local target
"$amlops" host --state-dir "$T/host" >"$T/host.log" 2>&1 &
HOST_PID=$!
i=0
until [ -s "$T/host/host.json" ] && grep -q "host=started" "$T/host.log"; do
	kill -0 "$HOST_PID" 2>/dev/null || fail "'amlops host --state-dir $T/host' exited" "$T/host.log"
	i=$((i + 1))
	[ $i -lt 300 ] || fail "amlops host did not start within 30 s" "$T/host.log"
	sleep 0.1
done
url=$(sed -n 's/.*host=started url=\([^ ]*\).*/\1/p' "$T/host.log" | head -n 1)
echo "[2/9] host: amlops host serves the Azure ML REST API on $url (state in $T/host)"

# 3. the reconciler
"$amlops" --repo "$R" watch --state-dir "$T/state" --host-dir "$T/host" \
    >"$T/watch.log" 2>&1 &
WATCH_PID=$!
i=0
until grep -q "event=watch_start" "$T/watch.log"; do
	kill -0 "$WATCH_PID" 2>/dev/null || fail "'amlops watch' exited" "$T/watch.log"
	i=$((i + 1))
	[ $i -lt 300 ] || fail "amlops watch did not start within 30 s" "$T/watch.log"
	sleep 0.1
done
mode=$(sed -n 's/.*event=watch_start mode=\([^ ]*\).*/\1/p' "$T/watch.log" | head -n 1)
echo "[3/9] watch: amlops watch applies each new commit of $R (${mode:-watching})"

# 4. the sample endpoint, committed
mkdir -p "$R/endpoints"
cp -r manifests/endpoints/$EP "$R/endpoints/"
git -C "$R" add endpoints
c1=$(git_commit "sklearn-regression: the blue deployment takes all traffic")
echo "[4/9] commit $c1: endpoints/$EP/endpoint.yml and blue.yml (regression-1, 100% of traffic)"

# 5. amlops watch applies it and writes the note
res=$(wait_note "$c1")
echo "[5/9] note on $c1: $res"

# 6. a prediction
run "$T/invoke.out" "$amlops" endpoint invoke $EP --request-file "$R/$REQ" --host-dir "$T/host"
blue=$(cat "$T/invoke.out")
echo "[6/9] prediction: amlops endpoint invoke $EP --request-file $REQ -> $blue"

# 7. blue/green: green runs the second model and takes 10% of the traffic
sed -e 's/^name: blue$/name: green/' -e 's/regression-1/regression-2/g' \
    "$R/endpoints/$EP/blue.yml" >"$R/endpoints/$EP/green.yml"
sed -e 's/^  blue: 100$/  blue: 90\n  green: 10/' "$R/endpoints/$EP/endpoint.yml" \
    >"$T/endpoint.yml"
grep -q "green: 10" "$T/endpoint.yml" || fail "could not edit endpoint.yml's traffic"
mv "$T/endpoint.yml" "$R/endpoints/$EP/endpoint.yml"
git -C "$R" add endpoints
c2=$(git_commit "sklearn-regression: green (regression-2) takes 10% of traffic")
echo "[7/9] commit $c2: green.yml (regression-2) and traffic blue=90 green=10; its plan:"
run "$T/plan.out" "$amlops" --repo "$R" plan --base "$c1" --head "$c2"
sed 's/^./      &/' "$T/plan.out"

# 8. amlops watch applies it
res=$(wait_note "$c2")
echo "[8/9] note on $c2: $res"
"$amlops" --repo "$R" status "$c2" | sed -n 's/^ *[0-9]*\. /      /p'

# 9. the answers of both deployments, and how the traffic splits
run "$T/blue.out" "$amlops" endpoint invoke $EP --request-file "$R/$REQ" --deployment blue --host-dir "$T/host"
run "$T/green.out" "$amlops" endpoint invoke $EP --request-file "$R/$REQ" --deployment green --host-dir "$T/host"
b=$(cat "$T/blue.out")
g=$(cat "$T/green.out")
nb=0
ng=0
n=0
while [ $n -lt 20 ]; do
	run "$T/split.out" "$amlops" endpoint invoke $EP --request-file "$R/$REQ" --host-dir "$T/host"
	a=$(cat "$T/split.out")
	if [ "$a" = "$g" ]; then ng=$((ng + 1)); else nb=$((nb + 1)); fi
	n=$((n + 1))
done
echo "[9/9] answers: blue $b, green $g; of 20 requests to $EP, $nb went to blue and $ng to green"

echo "== amlops status $c2"
"$amlops" --repo "$R" status "$c2"
