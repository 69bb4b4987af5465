#!/bin/bash
# The plan benchmark: a repository of N endpoint files (default 10,000),
# each the canary flow's two-deployment endpoint, and
#   - the full plan (from the root commit, which has the models and code
#     but no endpoint, to all N),
#   - the plan of a commit that changes one file, in a repository of N
#     endpoints and in one of 100 (it must not grow with the repository),
# against two peers reading the same files, PyYAML's yaml.safe_load (what
# the Azure ML CLI uses) and PyYAML's libyaml-backed CSafeLoader (the
# fastest Python path), and the floor: libyaml alone parsing the files
# (events only, tests/bench/yaml_floor.c).
#
#   tests/bench/plan_bench.sh [N]
#
# What is measured, and why it is fair:
#   - amlops: the whole command, `amlops --repo R plan --base root --head
#     full --format json > file`: process start, opening the repository,
#     reading every manifest blob from the packed object store (the
#     generator packs the repository, as a clone is), parsing,
#     validating, content ids, planning 4N steps and rendering them as
#     JSON. Its output is checked (4N steps; 1 step for the one-file
#     commit) so that no run can be fast by doing nothing.
#   - the floor reads the same N blobs from the same packed repository at
#     the same commit, the way amlops reads them (tree walk,
#     git_blob_lookup, with hash verification off as amlops sets it),
#     and runs libyaml's parser over each: the cost of any YAML tool
#     that reads a git repository, on one core. The same parse of the
#     checked-out files on disk is shown for reference.
#   - the peers read the checked-out files from disk (the page cache is
#     warm: the generator has just written them), as the Azure ML CLI
#     does; they only parse (no validation, no plan, no output), which
#     favours them. Python's start and `import yaml` are in their time as
#     amlops's process start is in its.
#   - every command is run RUNS times and the best wall time is kept
#     (the machine may be shared); the amlops plan uses two threads from
#     2,048 manifests up (src/source loads them in two halves, the plan
#     command plans them in two halves), the peers and the floor use one:
#     `nproc` is printed with the figures, and so is the CPU time (user +
#     sys) of one full plan, which is what amlops costs on one core.
#
# Env: AMLOPS (a binary; default: a Release build in build/bench),
# RUNS (best of, default 3; safe_load runs once: it is slow).
# Not run by ctest: it takes about a minute.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-10000}
RUNS=${RUNS:-3}
PY=/usr/bin/python3

WORK=$(mktemp -d /tmp/amlops-plan-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM

if [ -z "${AMLOPS:-}" ]; then
	BUILD=${AMLOPS_BENCH_BUILD:-$SRC/build/bench}
	echo "building a Release amlops in $BUILD ..." >&2
	cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
	    -DAMLOPS_TESTS=OFF -DAMLOPS_SANITIZE=OFF >/dev/null
	cmake --build "$BUILD" --target amlops -j2 >/dev/null
	AMLOPS=$BUILD/amlops
fi
cc -O2 -o "$WORK/yaml_floor" "$SRC/tests/bench/yaml_floor.c" -lyaml -lgit2

echo "generating $N endpoints ..." >&2
$PY "$SRC/tests/bench/gen_plan_repo.py" "$WORK/big" "$N"
$PY "$SRC/tests/bench/gen_plan_repo.py" "$WORK/small" 100
git -C "$WORK/big" ls-files 'endpoints/*.yml' | sed "s|^|$WORK/big/|" >"$WORK/files.txt"
[ "$(wc -l <"$WORK/files.txt")" = "$N" ] || { echo "generator wrote the wrong count" >&2; exit 1; }

# best RUNS CMD...: the best wall time of RUNS runs, in seconds
best() {
	local runs=$1 i s e t b=
	shift
	for ((i = 0; i < runs; i++)); do
		s=$(date +%s%N)
		"$@" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; echo "failed: $*" >&2; exit 1; }
		e=$(date +%s%N)
		t=$(( (e - s) / 1000 ))
		if [ -z "$b" ] || [ "$t" -lt "$b" ]; then b=$t; fi
	done
	awk -v us="$b" 'BEGIN { printf "%.3f", us / 1e6 }'
}

plan() { timeout 600 "$AMLOPS" --repo "$1" plan --base "$2" --head "$3" --format json; }
steps() { $PY -c 'import json,sys; print(len(json.load(sys.stdin)["steps"]))' <"$WORK/out"; }

t_full=$(best "$RUNS" plan "$WORK/big" root full)
n_full=$(steps)
# the CPU time of one full plan (user + sys, both threads), for the record
cpu_full=$(
	command -v /usr/bin/time >/dev/null &&
		/usr/bin/time -o "$WORK/time" -f "%U %S" "$AMLOPS" --repo "$WORK/big" \
		    plan --base root --head full --format json >/dev/null 2>&1 &&
		awk '{ printf "%.1f ms CPU", ($1 + $2) * 1000 }' "$WORK/time"
) || cpu_full="CPU not measured"
t_one=$(best "$RUNS" plan "$WORK/big" full one)
n_one=$(steps)
t_one_small=$(best "$RUNS" plan "$WORK/small" full one)
[ "$n_full" = $((N * 4)) ] || { echo "full plan has $n_full steps, expected $((N * 4))" >&2; exit 1; }
[ "$n_one" = 1 ] || { echo "one-file plan has $n_one steps, expected 1" >&2; exit 1; }

t_floor=$(best "$RUNS" "$WORK/yaml_floor" "$WORK/big" full endpoints/)
[ "$(cat "$WORK/out")" = "$N files, $((N * 128)) events" ] ||
	{ echo "the floor parsed: $(cat "$WORK/out")" >&2; exit 1; }
t_floor_disk=$(best "$RUNS" sh -c "'$WORK/yaml_floor' <'$WORK/files.txt'")
PEER='import sys, yaml
L = getattr(yaml, sys.argv[1])
for p in open(sys.argv[2]):
    with open(p.rstrip("\n")) as f:
        yaml.load(f, Loader=L)'
t_csafe=$(best "$RUNS" $PY -c "$PEER" CSafeLoader "$WORK/files.txt")
t_safe=$(best 1 $PY -c "$PEER" SafeLoader "$WORK/files.txt")

ms() { awk -v s="$1" 'BEGIN { printf "%9.1f ms", s * 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }
row() { printf '  %-50s %s   %s\n' "$1" "$(ms "$2")" "${3:-}"; }

echo
echo "amlops plan benchmark: $N endpoint files (the canary flow's two-deployment"
echo "endpoint each), best of $RUNS; $(nproc) CPUs; $(uname -sr)"
echo
row "full plan, root -> all $N ($n_full steps, json)" "$t_full" "($cpu_full on up to 2 threads)"
row "one-file commit, $N endpoints ($n_one step)" "$t_one"
row "one-file commit, 100 endpoints" "$t_one_small" "(the $N-endpoint one is $(ratio "$t_one" "$t_one_small") of it)"
echo
echo "  peers on the same $N files:"
row "python3 PyYAML yaml.safe_load (Azure ML CLI)" "$t_safe" "amlops full plan is $(ratio "$t_safe" "$t_full") faster"
row "python3 PyYAML CSafeLoader (libyaml)" "$t_csafe" "amlops full plan is $(ratio "$t_csafe" "$t_full") faster (target >= 10x)"
row "libyaml events only, blobs from git (the floor)" "$t_floor" "amlops full plan takes $(ratio "$t_full" "$t_floor") the floor (target <= 2x)"
row "libyaml events only, files from disk" "$t_floor_disk"
echo
echo "targets: one-file commit < 50 ms and flat; full plan >= 10x CSafeLoader, <= 2x the floor"
echo "reproduce: tests/bench/plan_bench.sh $N   (AMLOPS=$AMLOPS)"
