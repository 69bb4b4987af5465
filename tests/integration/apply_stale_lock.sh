#!/bin/bash
# A kill -9 of amlops while libgit2 writes the note or the applied ref
# leaves REF.lock behind (apply_crash's kills land there now and then).
# The next apply must not fail with "failed to lock file": amlops
# serialises its own ref writes with an flock on GITDIR/amlops-refs.lock,
# so a REF.lock found while holding it is a dead writer's and is removed,
# with a warning naming it.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

start_host
R=$T/repo
git_init "$R"
fixture_common "$R"
split_endpoint "$R" stale-ep blue=100
split_deployment "$R" stale-ep blue 1
commit "$R" "1 create"
C1=$(git -C "$R" rev-parse HEAD)

# what a killed writer leaves: fresh lock files of both refs
mkdir -p "$R/.git/refs/notes" "$R/.git/refs/amlops/applied"
echo "dead writer" >"$R/.git/refs/notes/amlops.lock"
echo "dead writer" >"$R/.git/refs/amlops/applied/local.lock"
apply_ok "$R"
grep -qxF "amlops: warning: lock=$R/.git/refs/notes/amlops.lock result=removed reason=\"left by an amlops process that died writing the ref\"" "$T/apply.err" ||
    fail "no warning about the notes ref's lock"
grep -qxF "amlops: warning: lock=$R/.git/refs/amlops/applied/local.lock result=removed reason=\"left by an amlops process that died writing the ref\"" "$T/apply.err" ||
    fail "no warning about the applied ref's lock"
[ "$(note_get "$R" "$C1" "d['result']")" = succeeded ] || fail "note not succeeded"
[ "$(git -C "$R" rev-parse refs/amlops/applied/local)" = "$C1" ] ||
    fail "the applied ref did not move"
[ -e "$R/.git/refs/notes/amlops.lock" ] && fail "the notes lock is still there"
ok "an apply after a writer died mid-write removes its locks and succeeds"

# no lock left: no warning
split_deployment "$R" stale-ep blue 2
commit "$R" "2 scale"
apply_ok "$R"
grep -q "result=removed" "$T/apply.err" && fail "a warning without a stale lock"
ok "without a stale lock apply says nothing about locks"
