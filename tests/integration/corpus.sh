#!/usr/bin/env bash
# amlops validate with the real binary: first on a repository of its own
# (every flag, exit code and output form), then against Azure's own
# examples (../shared/corpus): every file of EXPECTATIONS.tsv checked
# alone, and each version of the 2021 canary-declarative flow checked as a
# whole repository with its model-1/model-2 folders so that paths resolve.
set -u

: "${AMLOPS:?AMLOPS must name the amlops binary}"
# the script changes directory: make a relative binary path absolute
case "$AMLOPS" in
*/*) AMLOPS="$(cd "$(dirname "$AMLOPS")" && pwd)/$(basename "$AMLOPS")" ;;
esac

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

# expect_line FILE LINE: FILE holds exactly LINE as one of its lines
expect_line() {
	grep -qxF -- "$2" "$1" || fail "expected in $(basename "$1"): '$2'; got: $(head -5 "$1")"
}

## A repository of our own
repo="$tmp/own/repo"
mkdir -p "$repo/endpoints/my-ep" "$repo/models/m1/model" \
	"$repo/models/m1/code" "$repo/env" "$repo/.git"
cat >"$repo/endpoints/my-ep/endpoint.yml" <<'EOF_'
name: my-ep
auth_mode: key
traffic:
  blue: 100
EOF_
cat >"$repo/endpoints/my-ep/blue.yml" <<'EOF_'
name: blue
endpoint_name: my-ep
model:
  path: ../../models/m1/model
code_configuration:
  code: ../../models/m1/code
  scoring_script: score.py
environment:
  image: python:3.11
  conda_file: ../../env/conda.yml
instance_type: Standard_F2s_v2
EOF_
printf 'name: env\ndependencies:\n  - python=3.11\n' >"$repo/env/conda.yml"
printf 'binary' >"$repo/models/m1/model/model.pkl"
printf 'def init():\n    pass\n' >"$repo/models/m1/code/score.py"
printf '\001\002 not yaml' >"$repo/.git/ignored.yml"

rc=$(cd "$repo" && run "$tmp/out" "$tmp/err" validate)
[ "$rc" = 0 ] || fail "own repo: exit $rc: $(cat "$tmp/err")"
expect_line "$tmp/out" "3 files: 1 endpoint, 1 deployment, 1 skipped, no errors"

rc=$(cd "$tmp/own" && run "$tmp/out" "$tmp/err" --repo repo/ validate -v)
[ "$rc" = 0 ] || fail "own repo -v: exit $rc"
expect_line "$tmp/out" "repo/env/conda.yml: skipped: a conda environment file"

# plain files: the current directory is the repository root
rc=$(cd "$repo" && run "$tmp/out" "$tmp/err" validate \
	endpoints/my-ep/endpoint.yml endpoints/my-ep/blue.yml)
[ "$rc" = 0 ] || fail "two files: exit $rc: $(cat "$tmp/err")"
rc=$(cd "$repo" && run "$tmp/out" "$tmp/err" validate endpoints/my-ep/blue.yml)
[ "$rc" = 1 ] || fail "deployment without its endpoint: exit $rc"
expect_line "$tmp/err" "endpoints/my-ep/blue.yml:2:16: deployment 'blue' names endpoint 'my-ep', which no file defines"
rc=$(cd "$repo" && run "$tmp/out" "$tmp/err" validate endpoints/my-ep/blue.yml --alone)
[ "$rc" = 0 ] || fail "--alone deployment: exit $rc: $(cat "$tmp/err")"
expect_line "$tmp/out" "1 file: 0 endpoints, 1 deployment, 0 skipped, no errors"
rc=$(cd "$repo/endpoints" && run "$tmp/out" "$tmp/err" validate ../env/conda.yml)
[ "$rc" = 1 ] || fail "file outside the current directory: exit $rc"
expect_line "$tmp/err" "amlops: error: '../env/conda.yml' is outside the current directory, the repository root; run amlops from the repository or use --alone"

# a typo: located message, exit 1, and the same as JSON
sed -i 's/^instance_type:/instanse_type:/' "$repo/endpoints/my-ep/blue.yml"
rc=$(cd "$tmp/own" && run "$tmp/out" "$tmp/err" validate repo)
[ "$rc" = 1 ] || fail "typo: exit $rc"
expect_line "$tmp/err" "repo/endpoints/my-ep/blue.yml:11:1: unknown key 'instanse_type' (did you mean 'instance_type'?)"
expect_line "$tmp/err" "1 problem found"
for form in "validate --output json repo" "--output json validate repo"; do
	rc=$(cd "$tmp/own" && run "$tmp/out" "$tmp/err" $form)
	[ "$rc" = 1 ] || fail "$form: exit $rc"
	/usr/bin/python3 - "$tmp/out" <<'EOF_' || fail "$form: $(cat "$tmp/out")"
import json, sys
v = json.load(open(sys.argv[1]))
assert v == [{"file": "repo/endpoints/my-ep/blue.yml", "line": 11,
    "column": 1, "message": "unknown key 'instanse_type' "
    "(did you mean 'instance_type'?)"}], v
EOF_
done
sed -i 's/^instanse_type:/instance_type:/' "$repo/endpoints/my-ep/blue.yml"

# local paths: one gone, one a symlink out of the repository
mv "$repo/models/m1/code" "$repo/models/m1/gone"
ln -s /etc "$repo/models/m1/code"
rc=$(cd "$repo" && run "$tmp/out" "$tmp/err" validate)
[ "$rc" = 1 ] || fail "symlink out: exit $rc"
expect_line "$tmp/err" "endpoints/my-ep/blue.yml:6:9: 'code' path '../../models/m1/code' is a symlink that leaves the repository"
rm "$repo/models/m1/code"
rc=$(cd "$repo" && run "$tmp/out" "$tmp/err" validate)
[ "$rc" = 1 ] || fail "missing code: exit $rc"
expect_line "$tmp/err" "endpoints/my-ep/blue.yml:6:9: 'code' path '../../models/m1/code' does not exist (looked for 'models/m1/code' in the repository)"
mv "$repo/models/m1/gone" "$repo/models/m1/code"

# hostile files: refused fast, with a message
bomb="$tmp/own/bomb.yml"
{
	printf 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
	prev=a
	for x in b c d e f g h i; do
		printf '%s: &%s [*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s]\n' \
			$x $x $prev $prev $prev $prev $prev $prev $prev $prev $prev
		prev=$x
	done
} >"$bomb"
rc=$(cd "$tmp/own" && run "$tmp/out" "$tmp/err" validate --alone bomb.yml)
[ "$rc" = 1 ] || fail "billion laughs: exit $rc"
expect_line "$tmp/err" "bomb.yml:6:4: this list expands to more than 100000 nodes (aliases counted in full); manifests are far smaller"
head -c 1100000 /dev/zero | tr '\0' '#' >"$tmp/own/big.yml"
rc=$(cd "$tmp/own" && run "$tmp/out" "$tmp/err" validate --alone big.yml)
[ "$rc" = 1 ] || fail "big file: exit $rc"
expect_line "$tmp/err" "big.yml:1:1: file is 1100000 bytes, larger than the 1048576 bytes (1 MiB) a manifest may have"

# usage
rc=$(run "$tmp/out" "$tmp/err" validate --help)
[ "$rc" = 0 ] || fail "--help: exit $rc"
grep -q '^usage: amlops validate' "$tmp/out" || fail "--help: no usage"
rc=$(run "$tmp/out" "$tmp/err" validate --bogus)
[ "$rc" = 64 ] || fail "--bogus: exit $rc"
rc=$(run "$tmp/out" "$tmp/err" validate --output yaml)
[ "$rc" = 64 ] || fail "--output yaml: exit $rc"
expect_line "$tmp/err" "amlops: validate: unknown output 'yaml' (expected 'table' or 'json')"
rc=$(cd "$tmp/own" && run "$tmp/out" "$tmp/err" validate nope)
[ "$rc" = 1 ] || fail "missing PATH: exit $rc"
expect_line "$tmp/err" "amlops: error: cannot read 'nope': No such file or directory"

## Azure's examples
corpus="${AMLOPS_SHARED:-}/corpus"
if [ -z "${AMLOPS_SHARED:-}" ] || [ ! -f "$corpus/EXPECTATIONS.tsv" ]; then
	echo "SKIP: the corpus part: no corpus at '${AMLOPS_SHARED:-}/corpus' (AMLOPS_SHARED)"
	echo "own repository: $fails failures"
	[ "$fails" = 0 ]
	exit
fi

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
