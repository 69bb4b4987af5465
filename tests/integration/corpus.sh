#!/usr/bin/env bash
# amlops validate against Azure's own examples (../shared/corpus):
# every file of EXPECTATIONS.tsv checked alone with the real binary, then
# each version of the 2021 canary-declarative flow checked as a whole
# repository, with its model-1/model-2 folders so that paths resolve.
set -u

: "${AMLOPS:?AMLOPS must name the amlops binary}"
# the script changes directory: make a relative binary path absolute
case "$AMLOPS" in
*/*) AMLOPS="$(cd "$(dirname "$AMLOPS")" && pwd)/$(basename "$AMLOPS")" ;;
esac
corpus="${AMLOPS_SHARED:-}/corpus"
if [ -z "${AMLOPS_SHARED:-}" ] || [ ! -f "$corpus/EXPECTATIONS.tsv" ]; then
	echo "SKIP: no corpus at '${AMLOPS_SHARED:-}/corpus' (AMLOPS_SHARED)"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/amlops-corpus.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

fails=0
checked=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# run OUTFILE ERRFILE ARGS...: amlops with a deadline; prints its status
run() {
	local out=$1 err=$2
	shift 2
	timeout 20 "$AMLOPS" "$@" >"$out" 2>"$err"
	echo $?
}

cd "$corpus" || exit 1
while IFS=$'\t' read -r path expect why; do
	case "$path" in '#'* | path | '') continue ;; esac
	checked=$((checked + 1))
	rc=$(run "$tmp/out" "$tmp/err" validate --alone -v "$path")
	case "$expect" in
	load)
		[ "$rc" = 0 ] || fail "$path: expected to load, exit $rc: $(head -3 "$tmp/err")"
		;;
	reject)
		if [ "$rc" != 1 ]; then
			fail "$path: expected exit 1, got $rc"
		elif ! grep -Eq "^$(printf '%s' "$path" | sed 's/[.[\*^$]/\\&/g'):[0-9]+:[0-9]+: " "$tmp/err"; then
			fail "$path: rejected without a FILE:LINE:COL message: $(head -3 "$tmp/err")"
		fi
		;;
	skip)
		if [ "$rc" != 0 ]; then
			fail "$path: expected to be skipped, exit $rc: $(head -3 "$tmp/err")"
		elif ! grep -q "^$path: skipped: " "$tmp/out"; then
			fail "$path: -v does not say it was skipped ($(cat "$tmp/out"))"
		fi
		;;
	*)
		fail "$path: unknown expectation '$expect' ($why)"
		;;
	esac
done <EXPECTATIONS.tsv
[ "$checked" -gt 0 ] || fail "no rows read from EXPECTATIONS.tsv"

# --output json: a list of objects with a location and a message
rc=$(run "$tmp/out" "$tmp/err" validate --alone --output json \
	azureml-examples/cli/endpoints/online/deploy-with-packages/custom-model/model-deployment.yml)
[ "$rc" = 1 ] || fail "json: expected exit 1, got $rc"
/usr/bin/python3 - "$tmp/out" <<'EOF' || fail "json: $(cat "$tmp/out")"
import json, sys
v = json.load(open(sys.argv[1]))
assert isinstance(v, list) and len(v) == 1, v
d = v[0]
assert d["line"] == 2 and d["column"] == 7, d
assert d["file"].endswith("custom-model/model-deployment.yml"), d
assert d["message"] == ("deployment name 'regular_deployment' breaks "
    "Azure's naming rules: only letters, digits and '-' are allowed"), d
EOF

# The 2021 canary-declarative flow: each numbered file is one version of
# the same endpoint, so each is a repository of its own.
flow=azureml-examples-2021/cli/endpoints/online
versions=0
for f in "$flow"/managed/canary-declarative-flow/*.yml; do
	repo="$tmp/repo"
	rm -rf "$repo"
	mkdir -p "$repo/managed/canary-declarative-flow"
	cp -R "$flow/model-1" "$flow/model-2" "$repo/"
	cp "$f" "$repo/managed/canary-declarative-flow/"
	rc=$(cd "$repo" && run "$tmp/out" "$tmp/err" validate .)
	if [ "$rc" != 0 ]; then
		fail "canary flow $(basename "$f"): exit $rc: $(head -3 "$tmp/err")"
	elif ! grep -q "1 endpoint, [12] deployments\?," "$tmp/out"; then
		fail "canary flow $(basename "$f"): unexpected summary: $(cat "$tmp/out")"
	fi
	versions=$((versions + 1))
done
[ "$versions" = 6 ] || fail "expected 6 canary flow versions, found $versions"

# Without its model folders the same tree fails, at the path that is gone.
rm -rf "$repo/model-2" "$repo"/managed/canary-declarative-flow/*.yml
cp "$flow/managed/canary-declarative-flow/3-create-green.yml" \
	"$repo/managed/canary-declarative-flow/"
rc=$(cd "$repo" && run "$tmp/out" "$tmp/err" validate .)
[ "$rc" = 1 ] || fail "missing model-2: expected exit 1, got $rc"
grep -q "^managed/canary-declarative-flow/3-create-green.yml:[0-9]*:[0-9]*: 'model' path '../../model-2/model/sklearn_regression_model.pkl' does not exist" "$tmp/err" ||
	fail "missing model-2: no located message: $(head -3 "$tmp/err")"

echo "corpus: $checked files, $versions canary versions, $fails failures"
[ "$fails" = 0 ]
