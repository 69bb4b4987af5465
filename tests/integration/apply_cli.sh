#!/bin/bash
# amlops apply through the binary: every bad input with its exact
# message, YAML errors with file:line:column, a refused plan, the
# confirmation prompt and the progress lines on a terminal, the step
# timeout, a scoring script whose init() fails, and --push.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

start_host
R=$T/repo
git_init "$R"
fixture_common "$R"
split_endpoint "$R" cli-ep blue=100
split_deployment "$R" cli-ep blue 1
commit "$R" one

# usage_error ARGS... -- MESSAGE: exit 64, the message, then the usage.
usage_error() {
	local args=() msg
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	msg=$2
	RC=0
	"$AMLOPS" --repo "$R" apply "${args[@]}" >"$T/out" 2>"$T/err" || RC=$?
	[ "$RC" = 64 ] || fail "apply ${args[*]}: exit $RC, expected 64"
	[ "$(head -n 1 "$T/err")" = "$msg" ] ||
	    fail "apply ${args[*]}: said '$(head -n 1 "$T/err")', expected '$msg'"
	grep -q "^usage: amlops apply" "$T/err" || fail "apply ${args[*]}: no usage"
}

usage_error --jobs 0 -- "amlops: apply: --jobs '0' is not a number from 1 to 64"
usage_error --jobs 65 -- "amlops: apply: --jobs '65' is not a number from 1 to 64"
usage_error --jobs 2x -- "amlops: apply: --jobs '2x' is not a number from 1 to 64"
usage_error --timeout 5x -- "amlops: apply: --timeout '5x' is not a duration (e.g. 90s, 20m, 1h)"
usage_error --timeout 0 -- "amlops: apply: --timeout '0' is not a duration (e.g. 90s, 20m, 1h)"
usage_error --target gcp -- "amlops: apply: unknown target 'gcp' (expected 'local' or 'azure')"
usage_error extra -- "amlops: apply: unexpected argument 'extra'"
ok "usage errors: exit 64 with the exact message and the usage"

apply_fail "$R" --rev nosuch
[ "$(cat "$T/apply.err")" = "amlops: error: unknown revision 'nosuch'" ] ||
    fail "unknown revision: $(cat "$T/apply.err")"
ok "an unknown revision is an error naming it"

# YAML problems: file:line:column, nothing sent, no note.
sed -i 's/^traffic:/trafic:/' "$R/endpoints/cli-ep/endpoint.yml"
commit "$R" typo
apply_fail "$R"
head -n 1 "$T/apply.err" | grep -qx "endpoints/cli-ep/endpoint.yml:3:1: unknown key 'trafic' (did you mean 'traffic'?)" ||
    fail "YAML error: $(cat "$T/apply.err")"
[ "$(tail -n 1 "$T/apply.err")" = "amlops: error: 1 problem in $(git -C "$R" rev-parse --short=12 HEAD)" ] ||
    fail "YAML error summary: $(tail -n 1 "$T/apply.err")"
[ ! -s "$T/state/operations.log" ] || fail "a commit with YAML errors sent mutations"
git -C "$R" notes --ref amlops show HEAD >/dev/null 2>&1 && fail "a note on a commit that was not applied"
ok "YAML errors name file:line:column; nothing is applied"
sed -i 's/^trafic:/traffic:/' "$R/endpoints/cli-ep/endpoint.yml"
commit "$R" fixed

# The confirmation prompt on a terminal: "n" cancels, nothing is sent.
RC=0
printf 'n\n' | script -qec "'$AMLOPS' --repo '$R' apply" /dev/null >"$T/tty.out" 2>&1 || RC=$?
[ "$RC" = 1 ] || fail "cancelled apply exited $RC: $(cat "$T/tty.out")"
grep -q "Apply 3 steps to target 'local'? \[y/N\]" "$T/tty.out" || fail "no prompt: $(cat "$T/tty.out")"
grep -q "Apply cancelled." "$T/tty.out" || fail "not cancelled: $(cat "$T/tty.out")"
[ ! -s "$T/state/operations.log" ] || fail "a cancelled apply sent mutations"
ok "on a terminal apply asks, and 'n' cancels with nothing sent"

# "y" applies, with a progress line per step and its elapsed time.
RC=0
printf 'y\n' | script -qec "'$AMLOPS' --repo '$R' apply" /dev/null >"$T/tty.out" 2>&1 || RC=$?
[ "$RC" = 0 ] || fail "confirmed apply exited $RC: $(tail -n 20 "$T/tty.out")"
grep -q "\[2/3\] cli-ep/blue: create deployment \.\.\. [0-9]*s" "$T/tty.out" ||
    fail "no progress line with elapsed time: $(cat -v "$T/tty.out" | tail -n 20)"
grep -q "\[2/3\] cli-ep/blue: create deployment: done ([0-9.]*s)" "$T/tty.out" ||
    fail "no step result line: $(cat -v "$T/tty.out" | tail -n 20)"
ok "on a terminal 'y' applies, with progress lines and elapsed time"

# Without a terminal: plain lines, no prompt.
split_deployment "$R" cli-ep blue 2
commit "$R" scale
apply_ok "$R"
grep -q "?" "$T/apply.out" && fail "a prompt without a terminal"
grep -qx "\[1/1\] cli-ep/blue: update scale: started" "$T/apply.out" || fail "no plain start line"
grep -q "^\[1/1\] cli-ep/blue: update scale: done ([0-9.]*s)$" "$T/apply.out" || fail "no plain result line"
ok "without a terminal: plain lines, no prompt"

# A refused plan: an immutable field changed under traffic.
sed -i 's/^instance_type: .*/instance_type: Standard_F4s_v2/' "$R/endpoints/cli-ep/blue.yml"
commit "$R" immutable
before=$(count_requests)
apply_fail "$R"
grep -q "^amlops: error: endpoints/cli-ep/blue.yml:[0-9]*:[0-9]*: endpoint 'cli-ep': " "$T/apply.err" ||
    fail "the refusal has no location: $(cat "$T/apply.err")"
[ "$(tail -n 1 "$T/apply.err")" = "amlops: error: nothing applied: the plan refuses 1 endpoint" ] ||
    fail "refusal summary: $(tail -n 1 "$T/apply.err")"
[ "$(count_requests)" = "$before" ] || fail "a refused plan sent mutations"
ok "a refused plan says where and why, and applies nothing"
git -C "$R" revert --no-edit HEAD >/dev/null

# The step timeout: a deployment whose init() takes 4 s, a 1 s timeout.
sed -i 's/^def init():/def init():\n    import time\n    time.sleep(4)/' "$R/code/score.py"
split_deployment "$R" cli-ep green 1
commit "$R" slow-green
apply_fail "$R" --timeout 1s
c=$(git -C "$R" rev-parse HEAD)
[ "$(note_get "$R" "$c" "[s['error']['code'] for s in d['steps'] if s['status'] == 'failed']")" = '["timeout"]' ] ||
    fail "timeout: $(note_get "$R" "$c" "d['steps']")"
grep -q "^  failed: step 1 cli-ep/green: create deployment: timeout: step timed out after 1 s: PUT onlineDeployments\|^  failed: step 1 cli-ep/green: create deployment: timeout: step timed out after 1 s: " "$T/apply.out" ||
    fail "timeout summary: $(grep failed "$T/apply.out")"
# the rerun waits for the deployment still Creating, then finds it live
apply_ok "$R"
[ "$(note_get "$R" "$c" "d['result']")" = succeeded ] || fail "rerun after timeout"
ok "a step past --timeout fails as 'timeout'; the rerun finishes"

# A scoring script whose init() raises: the operation ends Failed with
# the traceback's last line, in the note and the summary.
cp -r "$R/code" "$R/badcode"
printf 'def init():\n    raise RuntimeError("model file is corrupt")\n\ndef run(raw):\n    return 1\n' >"$R/badcode/score.py"
split_deployment "$R" cli-ep bad 1
sed -i 's|code: ../../code|code: ../../badcode|; s|path: ../../models/bad|path: ../../models/blue|' "$R/endpoints/cli-ep/bad.yml"
commit "$R" bad
apply_fail "$R"
grep -q "^  failed: step 1 cli-ep/bad: create deployment: .*RuntimeError: model file is corrupt" "$T/apply.out" ||
    fail "init failure summary: $(grep -A2 failed "$T/apply.out")"
grep -q "^amlops: error: 1 of 1 step failed: endpoint 'cli-ep' step 1 (create deployment bad): " "$T/apply.err" ||
    fail "init failure stderr: $(cat "$T/apply.err")"
ok "a scoring script whose init() fails: the service's error in the summary and note"
git -C "$R" rm -q -r badcode endpoints/cli-ep/bad.yml
commit "$R" drop-bad
apply_ok "$R"
[ "$(deployments cli-ep)" = "blue green" ] || fail "after dropping bad: $(deployments cli-ep)"
ok "removing the failed deployment from the repository deletes it"

# A lock on the notes ref: a fresh one (another writer) stops the apply
# before anything is sent; one older than a minute was left by a process
# that died in the middle of a write, and is removed.
split_deployment "$R" cli-ep green 2
commit "$R" locked
before=$(count_requests)
touch "$R/.git/refs/notes/amlops.lock"
apply_fail "$R"
[ "$(tail -n 1 "$T/apply.err")" = "amlops: error: cannot write note: failed to lock file '$R/.git/refs/notes/amlops.lock' for writing: " ] ||
    fail "locked note: $(cat "$T/apply.err")"
grep -q "^Apply" "$T/apply.out" && fail "a summary although nothing ran"
[ "$(count_requests)" = "$before" ] || fail "mutations sent while the note was locked"
touch -d '2 minutes ago' "$R/.git/refs/notes/amlops.lock"
apply_ok "$R"
grep -qx "amlops: warning: lock=$R/.git/refs/notes/amlops.lock result=removed reason=\"older than 60 s: left by a process that died\"" "$T/apply.err" ||
    fail "stale lock: $(cat "$T/apply.err")"
[ -e "$R/.git/refs/notes/amlops.lock" ] && fail "the stale lock is still there"
ok "a fresh lock on the notes ref stops apply before any request; a stale one is removed"

# SIGTERM in the middle of a step: that step finishes, the next does not
# start and is recorded as not started; apply again finishes the work.
split_deployment "$R" cli-ep slow 1
sed -i 's|path: ../../models/slow|path: ../../models/green|' "$R/endpoints/cli-ep/slow.yml"
split_endpoint "$R" cli-ep blue=90 slow=10
commit "$R" slow-and-traffic
c=$(git -C "$R" rev-parse HEAD)
"$AMLOPS" --repo "$R" apply --yes >"$T/apply.out" 2>"$T/apply.err" &
pid=$!
BG_PIDS+=("$pid")
for _ in $(seq 300); do
	grep -q "^\[1/2\] cli-ep/slow: create deployment: started" "$T/apply.out" && break
	sleep 0.05
done
sleep 0.5
kill -TERM "$pid"
for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "apply still running 30 s after SIGTERM"
RC=0
wait "$pid" || RC=$?
[ "$RC" = 1 ] || fail "SIGTERM: exit $RC"
grep -q "^\[1/2\] cli-ep/slow: create deployment: done" "$T/apply.out" ||
    fail "SIGTERM: the step in flight did not finish: $(cat "$T/apply.out")"
grep -q "^Apply interrupted: 1 step succeeded, 1 not started (interrupted)" "$T/apply.out" ||
    fail "SIGTERM: summary: $(grep Apply "$T/apply.out")"
[ "$(note_get "$R" "$c" "[d['result'], d['steps'][1]['status'], d['steps'][1]['error']['code']]")" = '["failed", "skipped", "Interrupted"]' ] ||
    fail "SIGTERM: note: $(note_get "$R" "$c" "d['steps'][1]")"
apply_ok "$R"
[ "$(note_get "$R" "$c" "d['result']")" = succeeded ] || fail "after SIGTERM: rerun"
ok "SIGTERM finishes the step in flight and starts no other; apply again finishes"

# --push: the notes ref and the applied ref reach the remote.
git init -q --bare "$T/remote.git"
git -C "$R" remote add origin "$T/remote.git"
git -C "$R" push -q origin main
split_deployment "$R" cli-ep green 1
commit "$R" push-me
git -C "$R" push -q origin main
apply_ok "$R" --push
grep -qx "Pushed refs/notes/amlops and the applied ref to origin." "$T/apply.out" ||
    fail "push: $(tail -n 3 "$T/apply.out")"
[ "$(git -C "$T/remote.git" rev-parse refs/amlops/applied/local)" = "$(git -C "$R" rev-parse HEAD)" ] ||
    fail "the remote's applied ref"
git -C "$T/remote.git" notes --ref amlops show "$(git -C "$R" rev-parse HEAD)" >/dev/null ||
    fail "the remote has no note"
ok "--push pushes the note and the applied ref"

invariants --created-once
ok "invariants hold ($(cat "$T/inv.out"))"
echo "PASS: apply_cli"
