#!/usr/bin/python3
"""The code blocks of README.md, for tests/integration/readme.sh.

A block is runnable when the line just before its opening fence is
`<!-- runnable -->` and its info string is `sh`. Blocks tagged `sh` that
are not runnable (Azure, clusters, CI) are still read for their amlops
command lines, whose command and flags are checked against --help.

    readme_blocks.py script README.md > walk.sh
        the runnable blocks in order as one bash script; before each, a
        line `__readme_block LINE` (LINE: its fence's line in README.md)
    readme_blocks.py flags README.md AMLOPS
        every `amlops ...` command line of every sh block: its command
        (and endpoint subcommand) must exist and each flag it uses must
        appear in that command's --help (or amlops --help for the global
        ones); prints one line per command checked, exits 1 on the first
        problems with README.md:LINE: what is wrong
    readme_blocks.py paths README.md ROOT
        every scripts/... or contrib/... path named in an sh block must
        exist under ROOT
    readme_blocks.py compare README.md OUTDIR
        a runnable block followed by `<!-- output -->` and a ```text block
        shows its whole stdout: the script above saves that stdout in
        OUTDIR/LINE, and this compares the two with what changes from run
        to run (commit and content ids, UUIDs, ports, times, durations)
        masked, and $README_HOME, when set, read as /home/me; exits 1 with
        a diff when they differ
    readme_blocks.py yaml README.md DIR
        writes each ```yaml block to DIR/LINE.yml and prints its path
    readme_blocks.py quoted README.md < LINES
        each line on stdin (a message a test provoked) must be a line of
        a block of README.md, both masked as above; a README line that
        ends with " ..." stands for every line it begins; exits 1 naming
        the lines README.md does not quote
"""
import re
import shlex
import subprocess
import sys

FENCE = re.compile(r"^(```+)\s*([A-Za-z0-9_+-]*)\s*$")
MARK = "<!-- runnable -->"
OUTPUT = "<!-- output -->"


def blocks(path):
    """Yields (line, info, runnable, text) for each fenced block."""
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group(1), m.group(2), i + 1
        runnable = i > 0 and lines[i - 1].strip() == MARK
        body = []
        i += 1
        while i < len(lines) and lines[i].rstrip() != fence:
            body.append(lines[i])
            i += 1
        if i >= len(lines):
            sys.exit("%s:%d: fence never closed" % (path, start))
        if runnable and info != "sh":
            sys.exit("%s:%d: a runnable block must be ```sh, not '%s'"
                     % (path, start, info))
        yield start, info, runnable, "\n".join(body)
        i += 1


def command_lines(text, first):
    """Yields (line, words) for each amlops command in a shell block:
    continuation lines joined, comments and heredoc bodies left out, and
    `a && b`, `a | b`, `$(...)` split so that each amlops call is seen."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        no = first + 1 + i
        line = lines[i]
        heredoc = re.search(r"<<-?\s*'?\"?([A-Za-z_]+)", line)
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i]
        i += 1
        if heredoc:
            end = heredoc.group(1)
            while i < len(lines) and lines[i].strip() != end:
                i += 1
            i += 1
        try:
            lex = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
            lex.whitespace_split = True
            lex.commenters = "#"
            words = list(lex)
        except ValueError as e:
            sys.exit("README.md:%d: cannot split '%s': %s" % (no, line, e))
        cur = []
        for w in words + [";"]:
            if w and set(w) <= set(";&|()"):
                if cur:
                    yield no, cur
                cur = []
            elif w.startswith("$(") or w == "$":
                if cur:
                    yield no, cur
                cur = []
            else:
                cur.append(w)


def amlops_calls(text, first):
    for no, words in command_lines(text, first):
        # env assignments and a leading `$ ` prompt do not count
        while words and (re.match(r"^[A-Z_][A-Z0-9_]*=", words[0])
                         or words[0] in ("$", "exec", "timeout", "sudo")
                         or re.match(r"^[0-9]+[smh]?$", words[0])):
            words = words[1:]
        if words and words[0] in ("amlops", "build/amlops",
                                  "build/release/amlops"):
            yield no, words[1:]


GLOBAL_WITH_ARG = {"--repo", "--target", "--output", "-o"}


def help_text(amlops, args):
    p = subprocess.run([amlops] + args + ["--help"], capture_output=True,
                       text=True, timeout=30)
    return p.stdout + p.stderr


def check_flags(readme, amlops):
    top = help_text(amlops, [])
    commands = set(re.findall(r"^  ([a-z]+)\s{2,}", top, re.M))
    if not commands:
        sys.exit("no commands in '%s --help':\n%s" % (amlops, top))
    cache = {}
    bad = []
    n = 0
    for first, info, _runnable, text in blocks(readme):
        if info != "sh":
            continue
        for no, words in amlops_calls(text, first):
            n += 1
            i = 0
            while i < len(words) and words[i].startswith("-"):
                flag = words[i].split("=", 1)[0]
                if not re.search(r"(^|[\s\[|])%s\b" % re.escape(flag), top):
                    bad.append("README.md:%d: global flag '%s' is not in "
                               "'amlops --help'" % (no, flag))
                if flag in GLOBAL_WITH_ARG and "=" not in words[i]:
                    i += 1
                i += 1
            if i >= len(words):
                print("README.md:%d: amlops %s" % (no, " ".join(words)))
                continue
            cmd = words[i]
            if cmd not in commands:
                bad.append("README.md:%d: 'amlops %s' is not a command"
                           % (no, cmd))
                continue
            if cmd not in cache:
                cache[cmd] = help_text(amlops, [cmd])
            h = cache[cmd]
            rest = words[i + 1:]
            if cmd == "endpoint" and rest and not rest[0].startswith("-"):
                if not re.search(r"amlops endpoint %s\b" % re.escape(rest[0]),
                                 h):
                    bad.append("README.md:%d: 'amlops endpoint %s' is not a "
                               "subcommand" % (no, rest[0]))
            for w in rest:
                if not w.startswith("-") or w == "-" or w == "--":
                    continue
                flag = w.split("=", 1)[0]
                pat = r"(^|[\s\[|,])%s\b" % re.escape(flag)
                if not re.search(pat, h) and not re.search(pat, top):
                    bad.append("README.md:%d: 'amlops %s' has no flag '%s'"
                               % (no, cmd, flag))
            print("README.md:%d: amlops %s" % (no, " ".join(words)))
    if bad:
        print("\n".join(bad), file=sys.stderr)
        sys.exit(1)
    if n == 0:
        sys.exit("no amlops command found in %s" % readme)


def check_paths(readme, root):
    import os
    bad = []
    for first, info, _runnable, text in blocks(readme):
        if info != "sh":
            continue
        for no, words in command_lines(text, first):
            for w in words:
                if re.match(r"^(scripts|contrib)/[A-Za-z0-9_./-]+$", w):
                    if not os.path.exists(os.path.join(root, w)):
                        bad.append("README.md:%d: '%s' does not exist"
                                   % (no, w))
                    else:
                        print("README.md:%d: %s" % (no, w))
    if bad:
        print("\n".join(bad), file=sys.stderr)
        sys.exit(1)


def outputs(readme):
    """{line of a runnable block: (line, text) of the output it shows}"""
    lines = open(readme, encoding="utf-8").read().split("\n")
    prev = None
    found = {}
    for first, info, runnable, text in blocks(readme):
        marked = lines[first - 2].strip() == OUTPUT if first >= 2 else False
        if marked:
            if info != "text" or prev is None or not prev[1]:
                sys.exit("%s:%d: <!-- output --> must mark a ```text block "
                         "right after a runnable block" % (readme, first))
            found[prev[0]] = (first, text)
        prev = (first, runnable)
    return found


def script(readme):
    out = []
    shown = outputs(readme)
    for first, _info, runnable, text in blocks(readme):
        if not runnable:
            continue
        out.append("__readme_block %d" % first)
        if first in shown:
            out.append("{")
            out.append(text)
            out.append('} >"$__readme_out/%d"; cat "$__readme_out/%d"'
                       % (first, first))
        else:
            out.append(text)
    if not out:
        sys.exit("no runnable block in %s" % readme)
    print("\n".join(out))


MASKS = [
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b"), "<TIME>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\b"), "<PYTIME>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                r"[0-9a-f]{12}\b"), "<UUID>"),
    (re.compile(r"\b[0-9a-f]{40}\b"), "<COMMIT>"),
    (re.compile(r"\b[0-9a-f]{12}\b"), "<ID>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<PORT>"),
    (re.compile(r"\b\d+\.\ds\b"), "<SECS>"),
    (re.compile(r"\bpid=\d+"), "pid=<PID>"),
    (re.compile(r"\bamlops-repository=\S+"), "amlops-repository=<REPO>"),
]


def mask(text):
    out = []
    for line in text.rstrip("\n").split("\n"):
        for pat, rep in MASKS:
            line = pat.sub(rep, line)
        out.append(line.rstrip())
    return out


def compare(readme, outdir):
    import difflib
    import os
    bad = 0
    shown = outputs(readme)
    if not shown:
        sys.exit("no <!-- output --> block in %s" % readme)
    for block, (line, want) in sorted(shown.items()):
        path = os.path.join(outdir, str(block))
        if not os.path.exists(path):
            print("README.md:%d: the block was not run" % block,
                  file=sys.stderr)
            bad += 1
            continue
        text = open(path, encoding="utf-8").read()
        if os.environ.get("README_HOME"):
            # the test's $HOME is the README's /home/me
            text = text.replace(os.environ["README_HOME"], "/home/me")
        got = mask(text)
        exp = mask(want)
        if got != exp:
            bad += 1
            print("README.md:%d: the output shown differs from what the "
                  "block at line %d prints (masked):" % (line, block),
                  file=sys.stderr)
            for d in difflib.unified_diff(exp, got, "README.md", "actual",
                                          lineterm=""):
                print(d, file=sys.stderr)
        else:
            print("README.md:%d: output matches" % line)
    if bad:
        sys.exit(1)


def quoted(readme):
    lines = []
    for _first, _info, _runnable, text in blocks(readme):
        lines.extend(mask(text))
    # indented (4 spaces) examples count too
    for line in open(readme, encoding="utf-8").read().split("\n"):
        if line.startswith("    "):
            lines.extend(mask(line[4:]))
    whole = set(lines)
    prefixes = [ln[:-3] for ln in lines
                if ln.endswith(" ...") and len(ln.strip()) > 20]
    bad = 0
    n = 0
    for want in sys.stdin.read().split("\n"):
        if not want.strip():
            continue
        n += 1
        m = mask(want)[0]
        if m in whole or any(m.startswith(p) for p in prefixes):
            print("quoted: %s" % want)
        else:
            print("README.md does not quote: %s" % want, file=sys.stderr)
            bad += 1
    if n == 0:
        sys.exit("no line to look for on stdin")
    if bad:
        sys.exit(1)


def yaml_blocks(readme, outdir):
    import os
    n = 0
    for first, info, _runnable, text in blocks(readme):
        if info != "yaml":
            continue
        path = os.path.join(outdir, "%d.yml" % first)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        print(path)
        n += 1
    if n == 0:
        sys.exit("no yaml block in %s" % readme)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "script":
        script(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "flags":
        check_flags(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "yaml":
        yaml_blocks(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "quoted":
        quoted(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "paths":
        check_paths(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
