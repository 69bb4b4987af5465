#!/bin/bash
# A kill -9 of amlops while libgit2 writes the note or the applied ref
# leaves REF.lock behind (apply_crash's kills land there now and then).
# The next apply must not fail with "failed to lock file": amlops holds
# an flock on GITDIR/amlops-refs.lock while it writes a ref and records
# "PID REF" there until the write is done, so a record found by the next
# writer is one that died mid-write, and its REF.lock is removed with a
# warning. A REF.lock with no such record is another writer's and still
# stops the apply (apply_cli.sh checks that).
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

# what a writer killed while writing the note leaves
mkdir -p "$R/.git/refs/notes"
echo "dead writer" >"$R/.git/refs/notes/amlops.lock"
echo "999999 refs/notes/amlops" >"$R/.git/amlops-refs.lock"
apply_ok "$R"
grep -qxF "amlops: warning: lock=$R/.git/refs/notes/amlops.lock result=removed reason=\"left by amlops pid 999999, which died writing the ref\"" "$T/apply.err" ||
    fail "no warning about the notes ref's lock"
[ "$(note_get "$R" "$C1" "d['result']")" = succeeded ] || fail "note not succeeded"
[ -e "$R/.git/refs/notes/amlops.lock" ] && fail "the notes lock is still there"
[ -s "$R/.git/amlops-refs.lock" ] && fail "a finished write left its record: $(cat "$R/.git/amlops-refs.lock")"
ok "a note lock left by a writer that died mid-write is removed; apply succeeds"

# the same for the applied ref
split_deployment "$R" stale-ep blue 2
commit "$R" "2 scale"
C2=$(git -C "$R" rev-parse HEAD)
mkdir -p "$R/.git/refs/amlops/applied"
echo "dead writer" >"$R/.git/refs/amlops/applied/local.lock"
echo "999998 refs/amlops/applied/local" >"$R/.git/amlops-refs.lock"
apply_ok "$R"
grep -qxF "amlops: warning: lock=$R/.git/refs/amlops/applied/local.lock result=removed reason=\"left by amlops pid 999998, which died writing the ref\"" "$T/apply.err" ||
    fail "no warning about the applied ref's lock"
[ "$(git -C "$R" rev-parse refs/amlops/applied/local)" = "$C2" ] ||
    fail "the applied ref did not move"
ok "an applied-ref lock left by a dead writer is removed; the ref moves"

# no record: nothing is removed, nothing said
split_deployment "$R" stale-ep blue 1
commit "$R" "3 scale back"
apply_ok "$R"
grep -q "result=removed" "$T/apply.err" && fail "a warning without a stale lock"
ok "without a dead writer's record apply says nothing about locks"
