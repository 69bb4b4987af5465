# Helpers for the tests/integration/apply_*.sh scripts; sourced, never run
# (the .bash suffix keeps it out of ctest's *.sh glob).
#
# Each script gets a temp dir $T (removed on exit), starts the real
# `amlops host` with --faults (start_host), builds git repositories of
# its own (git_init, commit, the fixture_* writers), runs the real
# `amlops apply` (apply_ok, apply_fail) and scores the endpoint through
# the host's scoring front (score_count). Every wait has a deadline; the
# EXIT trap stops every process started here.

: "${AMLOPS:?AMLOPS must name the amlops binary (ctest sets it)}"
PY=/usr/bin/python3
T=$(mktemp -d /tmp/amlops-apply-test.XXXXXX)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INVARIANTS=$HERE/invariants.py
HOST_PID=
BG_PIDS=()
STEP=0
export AMLOPS_HOST_DIR=$T/state
# a host started by a test never leaks into the user's default state dir,
# nor a clone into the user's cache: tests run in parallel (ctest -j)
export XDG_STATE_HOME=$T/xdg
export XDG_CACHE_HOME=$T/cache

fail() {
	echo "FAIL: $*" >&2
	local f
	for f in "$T/apply.out" "$T/apply.err"; do
		if [ -s "$f" ]; then
			echo "--- $(basename "$f") (tail):" >&2
			tail -n 30 "$f" >&2
		fi
	done
	if [ -f "$T/host.err" ]; then
		echo "--- host log (tail):" >&2
		tail -n 30 "$T/host.err" >&2
	fi
	exit 1
}

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stop_host() {
	[ -n "$HOST_PID" ] || return 0
	stop_pid "$HOST_PID" TERM
	HOST_PID=
}

cleanup() {
	local p
	for p in "${BG_PIDS[@]}"; do
		stop_pid "$p" KILL
	done
	stop_host
	# a host that `amlops apply` started itself (--detach) in $T
	if [ -s "$T/xdg/amlops/host.json" ]; then
		p=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' \
		    "$T/xdg/amlops/host.json" 2>/dev/null || true)
		[ -n "$p" ] && stop_pid "$p" TERM
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# jf FILE EXPR: a Python expression over the JSON in FILE (as d).
jf() {
	"$PY" -c 'import json,sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1" "$2"
}

# start_host [ARGS...]: a fresh host in $T/state with fault injection and
# no Retry-After on operations (polls every 50 ms).
start_host() {
	local i
	rm -f "$T/state/host.json"
	"$AMLOPS" -v host --state-dir "$T/state" --port 0 --faults \
	    --retry-after 0 "$@" >>"$T/host.out" 2>>"$T/host.err" &
	HOST_PID=$!
	for i in $(seq 300); do
		if [ -s "$T/state/host.json" ] &&
		    [ "$(jf "$T/state/host.json" "d['pid']")" = "$HOST_PID" ]; then
			break
		fi
		kill -0 "$HOST_PID" 2>/dev/null || fail "the host exited at start"
		sleep 0.1
	done
	[ -s "$T/state/host.json" ] || fail "host.json not written within 30s"
	URL=$(jf "$T/state/host.json" "d['url']")
	TOKEN=$(jf "$T/state/host.json" "d['token']")
	SCORING=$(jf "$T/state/host.json" "d['scoring_url']")
}

# fault JSON: adds a fault to the host (POST /_amlops/faults).
fault() {
	local code
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
	    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
	    --data-binary "$1" "$URL/_amlops/faults") || code=000
	[ "$code" = 200 ] || [ "$code" = 201 ] || [ "$code" = 204 ] ||
	    fail "fault $1: status $code"
}

clear_faults() {
	curl -sS -o /dev/null --max-time 10 -X DELETE \
	    -H "Authorization: Bearer $TOKEN" "$URL/_amlops/faults" ||
	    fail "cannot clear faults"
}

git_init() {
	git init -q -b main "$1"
	git -C "$1" config user.name amlops-test
	git -C "$1" config user.email test@example.com
	git -C "$1" config commit.gpgsign false
}

commit() { git -C "$1" add -A . && git -C "$1" commit -q --allow-empty -m "$2"; }

# fixture_common REPO: the scoring code (answers with the name written in
# its model's name.txt, so a test can tell which deployment answered) and
# one model folder per deployment name.
fixture_common() {
	local repo=$1 d
	mkdir -p "$repo/code"
	cat >"$repo/code/score.py" <<'EOF'
import json
import os

name = None


def init():
    global name
    for root, _, files in os.walk(os.environ["AZUREML_MODEL_DIR"],
                                  followlinks=True):
        if "name.txt" in files:
            with open(os.path.join(root, "name.txt")) as f:
                name = f.read().strip()


def run(raw_data):
    json.loads(raw_data)
    return {"deployment": name}
EOF
	for d in blue green; do
		mkdir -p "$repo/models/$d"
		echo "$d" >"$repo/models/$d/name.txt"
	done
}

# split_endpoint REPO EP TRAFFIC...: today's endpoint.yml ("blue=90").
split_endpoint() {
	local repo=$1 ep=$2 t
	shift 2
	mkdir -p "$repo/endpoints/$ep"
	{
		echo "name: $ep"
		echo "auth_mode: key"
		echo "traffic:"
		for t in "$@"; do echo "  ${t%=*}: ${t#*=}"; done
	} >"$repo/endpoints/$ep/endpoint.yml"
}

# split_deployment REPO EP NAME COUNT: today's deployment file.
split_deployment() {
	local repo=$1 ep=$2
	cat >"$repo/endpoints/$ep/$3.yml" <<EOF
name: $3
endpoint_name: $ep
model:
  path: ../../models/$3
code_configuration:
  code: ../../code
  scoring_script: score.py
environment:
  image: mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest
instance_type: Standard_DS2_v2
instance_count: $4
EOF
}

# preview_endpoint REPO EP "blue:COUNT green:COUNT" TRAFFIC...: the 2021
# shape, one file with its deployments inline.
preview_endpoint() {
	local repo=$1 ep=$2 deps=$3 t d
	shift 3
	mkdir -p "$repo/endpoints/$ep"
	{
		echo "name: $ep"
		echo "type: online"
		echo "auth_mode: key"
		echo "traffic:"
		for t in "$@"; do echo "  ${t%=*}: ${t#*=}"; done
		echo "deployments:"
		for d in $deps; do
			cat <<EOF
  - name: ${d%:*}
    model:
      name: model-${d%:*}
      version: 1
      local_path: ../../models/${d%:*}
    code_configuration:
      code:
        local_path: ../../code
      scoring_script: score.py
    environment:
      name: env-$ep
      version: 1
      docker:
        image: mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest
    instance_type: Standard_F2s_v2
    scale_settings:
      scale_type: manual
      instance_count: ${d#*:}
      min_instances: 1
      max_instances: 2
EOF
		done
	} >"$repo/endpoints/$ep/endpoint.yml"
}

# canary_split REPO [BLUE-SCALED [EP...]]: the six commits of the canary
# flow in today's shape, for each EP (default my-endpoint); blue goes from
# 1 to BLUE-SCALED (default 2) instances in the second commit.
canary_split() {
	local r=$1 n=${2:-2} ep
	shift
	[ $# -gt 0 ] && shift
	local eps=("$@")
	[ ${#eps[@]} -gt 0 ] || eps=(my-endpoint)
	fixture_common "$r"
	for ep in "${eps[@]}"; do
		split_endpoint "$r" "$ep" blue=100
		split_deployment "$r" "$ep" blue 1
	done
	commit "$r" "1 create endpoint with blue"
	for ep in "${eps[@]}"; do split_deployment "$r" "$ep" blue "$n"; done
	commit "$r" "2 scale blue"
	for ep in "${eps[@]}"; do
		split_endpoint "$r" "$ep" blue=100 green=0
		split_deployment "$r" "$ep" green 1
	done
	commit "$r" "3 create green"
	for ep in "${eps[@]}"; do split_endpoint "$r" "$ep" blue=90 green=10; done
	commit "$r" "4 flight green"
	for ep in "${eps[@]}"; do split_endpoint "$r" "$ep" blue=0 green=100; done
	commit "$r" "5 full green"
	for ep in "${eps[@]}"; do
		split_endpoint "$r" "$ep" green=100
		rm "$r/endpoints/$ep/blue.yml"
	done
	commit "$r" "6 delete blue"
}

# canary_preview REPO [EP]: the same six commits in the 2021 shape.
canary_preview() {
	local r=$1 ep=${2:-my-endpoint}
	fixture_common "$r"
	preview_endpoint "$r" "$ep" "blue:1" blue=100
	commit "$r" "1 create endpoint with blue"
	preview_endpoint "$r" "$ep" "blue:2" blue=100
	commit "$r" "2 scale blue"
	preview_endpoint "$r" "$ep" "blue:2 green:1" blue=100 green=0
	commit "$r" "3 create green"
	preview_endpoint "$r" "$ep" "blue:2 green:1" blue=90 green=10
	commit "$r" "4 flight green"
	preview_endpoint "$r" "$ep" "blue:2 green:1" blue=0 green=100
	commit "$r" "5 full green"
	preview_endpoint "$r" "$ep" "green:1" green=100
	commit "$r" "6 delete blue"
}

# commits REPO: the repository's commits, oldest first, into COMMITS.
commits() {
	mapfile -t COMMITS < <(git -C "$1" rev-list --reverse HEAD)
}

# deployments EP: the names of the endpoint's deployments on the host.
deployments() {
	curl -sS --max-time 10 -H "Authorization: Bearer $TOKEN" \
	    "$URL/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.MachineLearningServices/workspaces/local/onlineEndpoints/$1/deployments?api-version=2024-04-01" \
	    | "$PY" -c 'import json,sys; print(" ".join(sorted(d["name"] for d in json.load(sys.stdin)["value"])))'
}

# apply_run REPO [ARGS...]: `amlops apply --yes` with a deadline; sets RC,
# output in $T/apply.out and $T/apply.err.
apply_run() {
	local repo=$1
	shift
	RC=0
	timeout 300 "$AMLOPS" --repo "$repo" apply --yes "$@" \
	    >"$T/apply.out" 2>"$T/apply.err" || RC=$?
	[ "$RC" = 124 ] && fail "amlops apply did not finish within 300s"
	grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$T/apply.err" &&
	    fail "sanitizer report from amlops apply"
	return 0
}

apply_ok() {
	apply_run "$@"
	[ "$RC" = 0 ] || fail "amlops apply $* exited $RC"
}

apply_fail() {
	apply_run "$@"
	[ "$RC" = 1 ] || fail "amlops apply $* exited $RC, expected 1"
}

# key EP: the endpoint's primary key, read from the host's control plane.
key() {
	curl -sS --max-time 10 -X POST -H "Authorization: Bearer $TOKEN" \
	    -H 'Content-Length: 0' \
	    "$URL/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.MachineLearningServices/workspaces/local/onlineEndpoints/$1/listKeys?api-version=2024-04-01" \
	    | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["primaryKey"])'
}

# score_count EP N: scores EP N times; prints "deployment=count ..."
# sorted by name ("error=N" for answers that are not 200).
score_count() {
	"$PY" - "$SCORING/endpoints/$1/score" "$(key "$1")" "$2" <<'EOF'
import collections, json, sys, urllib.request, urllib.error
url, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = collections.Counter()
for _ in range(n):
    req = urllib.request.Request(url, data=b'{"data": [[1, 2]]}', headers={
        "Authorization": "Bearer " + key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = json.loads(r.read())
            if isinstance(body, str):
                body = json.loads(body)
            c[body.get("deployment") or body.get("model") or "?"] += 1
    except urllib.error.HTTPError as e:
        c["error%d" % e.code] += 1
print(" ".join("%s=%d" % kv for kv in sorted(c.items())))
EOF
}

# invariants [ARGS...]: the checker over the host's operations.log.
invariants() {
	"$PY" "$INVARIANTS" "$@" "$T/state/operations.log" >"$T/inv.out" 2>&1 ||
	    { cat "$T/inv.out" >&2; fail "invariants broken"; }
}

# note REV EXPR: a Python expression over the note of REV (as d).
note_get() {
	git -C "$1" notes --ref amlops show "$2" >"$T/note.json" 2>/dev/null ||
	    fail "no note on $2"
	jf "$T/note.json" "$3"
}

# count_requests [FILTER]: mutating requests in the host's record.
count_requests() {
	grep -c '"event":"request"' "$T/state/operations.log" || true
}

# flow REPO EP LABEL BLUE GREEN: applies the six commits of a canary flow
# one by one, scoring EP after each: BLUE and GREEN are what the two
# deployments answer with.
flow() {
	local r=$1 ep=$2 label=$3 b=$4 g=$5 i out n before
	commits "$r"
	[ ${#COMMITS[@]} = 6 ] || fail "$label: expected 6 commits"
	for i in 0 1 2 3 4 5; do
		apply_ok "$r" --rev "${COMMITS[$i]}"
		grep -q "^Apply complete: " "$T/apply.out" ||
		    fail "$label: commit $((i + 1)): no summary line"
		[ "$(note_get "$r" "${COMMITS[$i]}" "d['result']")" = succeeded ] ||
		    fail "$label: commit $((i + 1)): note result is not succeeded"
		[ "$(git -C "$r" rev-parse refs/amlops/applied/local)" = "${COMMITS[$i]}" ] ||
		    fail "$label: commit $((i + 1)): refs/amlops/applied/local did not move"
		case $i in
		0 | 1 | 2)
			out=$(score_count "$ep" 20)
			[ "$out" = "$b=20" ] ||
			    fail "$label: commit $((i + 1)): answers $out, expected $b=20"
			;;
		3)
			out=$(score_count "$ep" 1000)
			n=$(echo "$out" | sed -n "s/.*$g=\\([0-9]*\\).*/\\1/p")
			echo "$out" | grep -q "^$b=[0-9]* $g=[0-9]*$" ||
			    fail "$label: 90/10: answers $out"
			[ "${n:-0}" -ge 60 ] && [ "${n:-0}" -le 140 ] ||
			    fail "$label: 90/10: $out (green outside 60..140 of 1000)"
			;;
		4 | 5)
			out=$(score_count "$ep" 20)
			[ "$out" = "$g=20" ] ||
			    fail "$label: commit $((i + 1)): answers $out, expected $g=20"
			;;
		esac
		ok "$label: commit $((i + 1)) applied, answers $out"
	done
	[ "$(deployments "$ep")" = green ] ||
	    fail "$label: deployments left: $(deployments "$ep")"
	ok "$label: blue is gone"
	[ "$(jf "$T/state/state.json" "any(e.get('resource', {}).get('tags', {}).get('managed-by') == 'amlops' for w in d['workspaces'].values() for n, e in w['endpoints'].items() if n == '$ep')")" = True ] ||
	    fail "$label: the endpoint does not carry managed-by=amlops"
	[ "$(jf "$T/state/state.json" "[e['resource']['tags'].get('amlops-commit') for w in d['workspaces'].values() for n, e in w['endpoints'].items() if n == '$ep'][0]")" = "${COMMITS[0]}" ] ||
	    fail "$label: the endpoint does not carry amlops-commit=${COMMITS[0]} (the commit that created it)"

	# again: no mutating request, "No changes."
	before=$(count_requests)
	apply_ok "$r"
	grep -qx "No changes." "$T/apply.out" ||
	    fail "$label: a second apply printed: $(cat "$T/apply.out")"
	[ "$(count_requests)" = "$before" ] ||
	    fail "$label: a second apply sent $(($(count_requests) - before)) mutating request(s)"
	ok "$label: applying again changes nothing"
}
