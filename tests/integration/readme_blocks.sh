#!/bin/bash
# tests/integration/readme_blocks.py on small READMEs of its own: what it
# extracts and runs, and each way it refuses, with the exact message.
set -euo pipefail

: "${AMLOPS:?AMLOPS must name the amlops binary (ctest sets it)}"
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
RB=$HERE/readme_blocks.py
T=$(mktemp -d /tmp/amlops-readme-blocks.XXXXXX)
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
STEP=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { STEP=$((STEP + 1)); echo "ok $STEP - $*"; }
F='```'

# expect_err WANT-RC WANT-STDERR CMD...: runs CMD, checks both
expect_err() {
	local want_rc=$1 want=$2 rc=0
	shift 2
	"$@" >"$T/out" 2>"$T/err" </dev/null || rc=$?
	[ "$rc" = "$want_rc" ] || fail "$* exited $rc, not $want_rc: $(cat "$T/err")"
	[ "$(cat "$T/err")" = "$want" ] || fail "$*: stderr
$(cat "$T/err")
wanted
$want"
}

cat >"$T/ok.md" <<EOF
# x

<!-- runnable -->
${F}sh
echo one
cat >f.txt <<'END'
amlops --bogus
END
${F}

<!-- output -->
${F}text
one
${F}

${F}sh
amlops -v validate --alone a.yml && amlops plan --format json | head
x=\$(amlops endpoint show e --output json)
AMLOPS_HOST_DIR=/tmp/h amlops endpoint logs e --deployment blue \\
    --tail 5
scripts/demo.sh
${F}

<!-- runnable -->
${F}sh
echo two at 2026-11-25T19:44:52Z on 127.0.0.1:4242 in 1.0s, 2026-11-25 19:58:27,037 in $T/home/f
${F}

<!-- output -->
${F}text
two at 2026-01-01T00:00:00Z on 127.0.0.1:8321 in 3.1s, 2026-01-01 00:00:00,000 in /home/me/f
${F}
EOF

$PY "$RB" script "$T/ok.md" >"$T/walk.sh"
[ "$(grep -c '^__readme_block ' "$T/walk.sh")" = 2 ] || fail "script: $(cat "$T/walk.sh")"
grep -qx '__readme_block 4' "$T/walk.sh" || fail "the first block's line: $(cat "$T/walk.sh")"
grep -qx '} >"$__readme_out/4"; cat "$__readme_out/4"' "$T/walk.sh" ||
    fail "a block with an output block is captured: $(cat "$T/walk.sh")"
mkdir -p "$T/run" "$T/o"
(cd "$T/run" && __readme_out=$T/o bash -c '__readme_block() { :; }; set -e; . "$1"' _ "$T/walk.sh") >"$T/ran"
[ "$(cat "$T/o/4")" = one ] || fail "block 4 printed: $(cat "$T/o/4")"
ok "script: the runnable blocks in order, those with an output block captured"

README_HOME=$T/home $PY "$RB" compare "$T/ok.md" "$T/o" >"$T/cmp" || fail "compare: $(cat "$T/cmp")"
[ "$(cat "$T/cmp")" = "README.md:12: output matches
README.md:30: output matches" ] || fail "compare: $(cat "$T/cmp")"
ok "compare: outputs match with times (ours and Python's), ports and durations masked, \$README_HOME as /home/me"

echo "one more" >"$T/o/4"
expect_err 1 "README.md:12: the output shown differs from what the block at line 4 prints (masked):
--- README.md
+++ actual
@@ -1 +1 @@
-one
+one more" env README_HOME=$T/home $PY "$RB" compare "$T/ok.md" "$T/o"
rm "$T/o/25"
expect_err 1 "README.md:12: the output shown differs from what the block at line 4 prints (masked):
--- README.md
+++ actual
@@ -1 +1 @@
-one
+one more
README.md:25: the block was not run" env README_HOME=$T/home $PY "$RB" compare "$T/ok.md" "$T/o"
ok "compare: a different output is a diff, a block that did not run is named"

$PY "$RB" flags "$T/ok.md" "$AMLOPS" >"$T/flags" || fail "flags: $(cat "$T/flags")"
[ "$(cat "$T/flags")" = "README.md:17: amlops -v validate --alone a.yml
README.md:17: amlops plan --format json
README.md:18: amlops endpoint show e --output json
README.md:19: amlops endpoint logs e --deployment blue --tail 5" ] || fail "flags: $(cat "$T/flags")"
ok "flags: amlops calls found after &&, in |, in \$(...), after VAR=, across \\ lines; heredoc bodies skipped"

cat >"$T/bad.md" <<EOF
${F}sh
amlops --colour plan
amlops plan --lve
amlops deploy x
amlops endpoint purge e
amlops endpoint list --deployment-name x
scripts/nope.sh
${F}
EOF
expect_err 1 "README.md:2: global flag '--colour' is not in 'amlops --help'
README.md:3: 'amlops plan' has no flag '--lve'
README.md:4: 'amlops deploy' is not a command
README.md:5: 'amlops endpoint purge' is not a subcommand
README.md:6: 'amlops endpoint' has no flag '--deployment-name'" $PY "$RB" flags "$T/bad.md" "$AMLOPS"
expect_err 1 "README.md:7: 'scripts/nope.sh' does not exist" $PY "$RB" paths "$T/bad.md" "$T"
ok "flags and paths: unknown global flags, commands, subcommands, flags and paths, each with its line"

printf '%s\n' '<!-- runnable -->' "${F}text" 'x' "$F" >"$T/m1.md"
expect_err 1 "$T/m1.md:2: a runnable block must be \`\`\`sh, not 'text'" $PY "$RB" script "$T/m1.md"
printf '%s\n' "${F}sh" 'x' >"$T/m2.md"
expect_err 1 "$T/m2.md:1: fence never closed" $PY "$RB" script "$T/m2.md"
printf '%s\n' "${F}sh" 'x' "$F" '' '<!-- output -->' "${F}text" 'x' "$F" >"$T/m3.md"
expect_err 1 "$T/m3.md:6: <!-- output --> must mark a \`\`\`text block right after a runnable block" $PY "$RB" script "$T/m3.md"
printf '%s\n' "${F}sh" 'amlops plan' "$F" >"$T/m4.md"
expect_err 1 "no runnable block in $T/m4.md" $PY "$RB" script "$T/m4.md"
expect_err 1 "no <!-- output --> block in $T/m4.md" $PY "$RB" compare "$T/m4.md" "$T/o"
printf '%s\n' "${F}sh" 'echo hi' "$F" >"$T/m5.md"
expect_err 1 "no amlops command found in $T/m5.md" $PY "$RB" flags "$T/m5.md" "$AMLOPS"
ok "a runnable block that is not sh, an unclosed fence, a stray output mark, nothing to run or check"

cat >"$T/q.md" <<EOF
${F}text
[1/3] e: create endpoint: FAILED (25.0s): TooManyRequests: PUT x (request id 5ef038c7-8e6e-4244-aaad-c2787c088052): ...
...
${F}

    a.yml:1:1: unknown key 'x'
EOF
printf '%s\n' "[1/3] e: create endpoint: FAILED (0.0s): TooManyRequests: PUT x (request id 22a00350-e81f-4c4a-94e4-dd1240b2183a): TooManyRequests: injected" \
    "a.yml:1:1: unknown key 'x'" | $PY "$RB" quoted "$T/q.md" >"$T/qo" || fail "quoted: $(cat "$T/qo")"
[ "$(wc -l <"$T/qo")" = 2 ] || fail "quoted: $(cat "$T/qo")"
printf '%s\n' "[1/3] e: create endpoint: FAILED (0.0s): Conflict" "anything" >"$T/qin"
expect_err 1 "README.md does not quote: [1/3] e: create endpoint: FAILED (0.0s): Conflict
README.md does not quote: anything" sh -c '"$1" "$2" quoted "$3" <"$4"' _ "$PY" "$RB" "$T/q.md" "$T/qin"
expect_err 1 "no line to look for on stdin" $PY "$RB" quoted "$T/q.md"
ok "quoted: lines and indented examples, ' ...' prefixes (a bare '...' is none), the lines not quoted named"

echo "PASS: readme_blocks"
