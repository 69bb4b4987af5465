#!/bin/bash
# amlops status through the real binary on a real repository: the human
# rendering, --output json (the note as stored), the notes ref from
# --notes-ref and from .amlops.yml, and the exact errors for a commit
# without a note, an unreadable note and an unknown revision.
set -euo pipefail

AMLOPS=${AMLOPS:?AMLOPS must name the amlops binary}
TMP=$(mktemp -d /tmp/amlops-status-cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { timeout 60 "$AMLOPS" --repo "$R" "$@"; }

R=$TMP/repo
git init -q -b main "$R"
git -C "$R" config user.name amlops-test
git -C "$R" config user.email test@example.com
echo a >"$R/a.txt"
git -C "$R" add -A && git -C "$R" commit -q -m "scale blue to 2"
HEAD=$(git -C "$R" rev-parse HEAD)
SHORT=${HEAD:0:12}

# no note yet: exit 1 and say so
rc=0; run status >"$TMP/out" 2>"$TMP/err" || rc=$?
[ "$rc" = 1 ] || fail "status without a note exited $rc"
[ "$(cat "$TMP/err")" = "amlops: error: no note for commit $SHORT under refs/notes/amlops (nothing applied it yet)" ] \
    || fail "unexpected message: $(cat "$TMP/err")"
[ ! -s "$TMP/out" ] || fail "printed something on stdout"
echo "ok - no note: exit 1 with the message"

cat >"$TMP/note.json" <<EOF
{
	"version": 1,
	"commit": "$HEAD",
	"target": {"name": "local", "url": "http://127.0.0.1:9000", "subscription": null,
		   "resource_group": null, "workspace": null},
	"started": "2026-11-25T18:00:00Z",
	"finished": "2026-11-25T18:00:03Z",
	"result": "succeeded",
	"plan": {"steps": []},
	"steps": [{"index": 1, "endpoint": "my-endpoint", "deployment": "blue",
		   "action": "update", "aspect": "scale", "status": "succeeded",
		   "started": "2026-11-25T18:00:00Z", "ms": 2500, "request_id": "r-1",
		   "error": null}],
	"endpoints": [{"name": "my-endpoint", "provisioning_state": "Succeeded",
		       "scoring_uri": "http://127.0.0.1:9001/endpoints/my-endpoint/score",
		       "traffic": {"blue": 100}}],
	"attempts": []
}
EOF
git -C "$R" notes --ref amlops add -F "$TMP/note.json" HEAD

run status >"$TMP/out" || fail "status exited $?"
cat >"$TMP/want" <<EOF
commit   $HEAD  scale blue to 2
target   local (http://127.0.0.1:9000)
result   succeeded (1 of 1 steps succeeded)
started  2026-11-25T18:00:00Z
finished 2026-11-25T18:00:03Z

steps:
   1. succeeded  my-endpoint/blue: update scale  2.5s  request r-1

endpoints:
  my-endpoint  Succeeded  http://127.0.0.1:9001/endpoints/my-endpoint/score  traffic blue=100
EOF
diff -u "$TMP/want" "$TMP/out" || fail "status text differs"
echo "ok - status renders the note"

run --output json status "$SHORT" >"$TMP/out" || fail "status --output json exited $?"
cmp -s "$TMP/out" <(git -C "$R" notes --ref amlops show HEAD) || fail "json output is not the stored note"
echo "ok - --output json prints the note as stored"

# another ref, by flag and by .amlops.yml
git -C "$R" notes --ref amlops-staging add -m '{"version":1,"commit":"'"$HEAD"'","target":{"name":"staging"},"result":"failed"}' HEAD
run status --notes-ref refs/notes/amlops-staging >"$TMP/out" || fail "status --notes-ref exited $?"
grep -q "^target   staging$" "$TMP/out" || fail "--notes-ref not used: $(cat "$TMP/out")"
grep -q "^result   failed (0 of 0 steps succeeded)$" "$TMP/out" || fail "result line: $(cat "$TMP/out")"
printf 'notes_ref: refs/notes/amlops-staging\n' >"$R/.amlops.yml"
git -C "$R" add -A && git -C "$R" commit -q -m config
git -C "$R" notes --ref amlops-staging copy HEAD~1 HEAD
run status >"$TMP/out" || fail "status with .amlops.yml notes_ref exited $?"
grep -q "^target   staging$" "$TMP/out" || fail ".amlops.yml notes_ref not used"
echo "ok - notes ref from --notes-ref and .amlops.yml"

# errors
git -C "$R" notes --ref amlops add -m 'not json' HEAD
rc=0; run status --notes-ref refs/notes/amlops 2>"$TMP/err" >/dev/null || rc=$?
[ "$rc" = 1 ] || fail "unreadable note exited $rc"
NEW=$(git -C "$R" rev-parse HEAD)
[ "$(cat "$TMP/err")" = "amlops: error: commit ${NEW:0:12}: note: not JSON (at byte 0)" ] \
    || fail "unexpected message: $(cat "$TMP/err")"
rc=0; run status nope 2>"$TMP/err" || rc=$?
[ "$rc" = 1 ] && [ "$(cat "$TMP/err")" = "amlops: error: unknown revision 'nope'" ] \
    || fail "unknown revision: rc=$rc $(cat "$TMP/err")"
rc=0; run status --notes-ref refs/heads/main 2>"$TMP/err" || rc=$?
[ "$rc" = 64 ] && head -1 "$TMP/err" | grep -qx "amlops: status: notes ref 'refs/heads/main' is not under refs/notes/" \
    || fail "bad notes ref: rc=$rc $(cat "$TMP/err")"
echo "ok - errors"
echo "PASS: status_cli"
