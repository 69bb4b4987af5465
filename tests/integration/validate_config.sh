#!/bin/bash
# `amlops validate DIR` reads DIR/.amlops.yml as plan does: only the files
# its `paths:` select are checked, and problems in .amlops.yml itself are
# reported with file:line:col.
set -euo pipefail
: "${AMLOPS:?AMLOPS must name the amlops binary (ctest sets it)}"
case "$AMLOPS" in
*/*) AMLOPS="$(cd "$(dirname "$AMLOPS")" && pwd)/$(basename "$AMLOPS")" ;;
esac
T=$(mktemp -d /tmp/amlops-validate-config.XXXXXX)
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
STEP=0

fail() {
	echo "FAIL: $*" >&2
	for f in "$T/out" "$T/err"; do
		[ -s "$f" ] && { echo "--- $(basename "$f"):" >&2; cat "$f" >&2; }
	done
	exit 1
}
ok() {
	STEP=$((STEP + 1))
	echo "ok $STEP - $*"
}
# v ARGS...: amlops with a deadline from $T; sets RC, output in $T/out, $T/err
v() {
	RC=0
	(cd "$T" && timeout 30 "$AMLOPS" "$@") >"$T/out" 2>"$T/err" || RC=$?
	[ "$RC" = 124 ] && fail "amlops $* did not finish within 30s"
	grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$T/err" &&
	    fail "sanitizer report from amlops $*"
	return 0
}
same() { # FILE EXPECTED: the whole file
	[ "$(cat "$1")" = "$2" ] || fail "$(basename "$1") is '$(cat "$1")', expected '$2'"
}

R=$T/repo
mkdir -p "$R/endpoints/good" "$R/other"
printf 'name: good\nauth_mode: key\n' >"$R/endpoints/good/endpoint.yml"
printf 'name: bad\nauth_mode: key\ninstanse_type: x\n' >"$R/other/broken.yml"

v validate repo
[ "$RC" = 1 ] || fail "without .amlops.yml: exit $RC, expected 1"
same "$T/err" "repo/other/broken.yml:3:1: unknown key 'instanse_type' in an endpoint
1 problem found"
ok "without .amlops.yml every YAML file is checked"

printf 'paths:\n  - endpoints\n' >"$R/.amlops.yml"
v validate repo
[ "$RC" = 0 ] || fail "with paths: [endpoints]: exit $RC, expected 0"
same "$T/out" "1 file: 1 endpoint, 0 deployments, 0 skipped, no errors"
same "$T/err" ""
ok "paths: selects the files validate checks"

v -v validate repo
[ "$RC" = 0 ] || fail "-v: exit $RC"
grep -qxF "repo/other/broken.yml: skipped: not in the paths of repo/.amlops.yml" "$T/out" ||
    fail "-v does not say why other/broken.yml was left out"
ok "-v names the files paths: leaves out"

# from inside the repository, the default directory is '.'
RC=0
(cd "$R" && timeout 30 "$AMLOPS" validate) >"$T/out" 2>"$T/err" || RC=$?
[ "$RC" = 0 ] || fail "validate in the repository: exit $RC"
same "$T/out" "1 file: 1 endpoint, 0 deployments, 0 skipped, no errors"
ok "validate with no argument honours .amlops.yml too"

# a pattern
printf 'paths: ["other/*.yml"]\n' >"$R/.amlops.yml"
v validate repo
[ "$RC" = 1 ] || fail "paths: [other/*.yml]: exit $RC, expected 1"
same "$T/err" "repo/other/broken.yml:3:1: unknown key 'instanse_type' in an endpoint
1 problem found"
ok "a paths: pattern selects by fnmatch"

# problems in .amlops.yml itself
printf 'paths:\n  - endpoints\npahts: [x]\n' >"$R/.amlops.yml"
v validate repo
[ "$RC" = 1 ] || fail "unknown key: exit $RC, expected 1"
same "$T/err" "repo/.amlops.yml:3:1: unknown key 'pahts' (did you mean 'paths'?)
1 problem found"
printf 'notes_ref: refs/notes/x\npaths:\n  a: b\n' >"$R/.amlops.yml"
v validate repo
[ "$RC" = 1 ] || fail "paths as a map: exit $RC, expected 1"
same "$T/err" "repo/.amlops.yml:3:3: 'paths' must be a list of paths
1 problem found"
v --output json validate repo
[ "$RC" = 1 ] || fail "json: exit $RC, expected 1"
[ "$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1])))' "$T/out")" = \
    "[{'file': 'repo/.amlops.yml', 'line': 3, 'column': 3, 'message': \"'paths' must be a list of paths\"}]" ] ||
    fail "json output: $(cat "$T/out")"
ok "problems in .amlops.yml are reported with file:line:col"
