#!/bin/bash
# contrib/ as far as it can be checked here: the systemd units pass
# `systemd-analyze verify` with nothing to say, the workflows and the
# Kubernetes manifest parse and have the shape they need, the completion
# script is valid bash and completes commands, flags and values, the
# Dockerfile installs Debian packages only (and those the binary links),
# and README names every file.
set -euo pipefail

: "${AMLOPS:?AMLOPS must name the amlops binary (ctest sets it)}"
SRC=${AMLOPS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
C=$SRC/contrib
PY=/usr/bin/python3
T=$(mktemp -d /tmp/amlops-contrib-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
STEP=0

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

ok() {
	STEP=$((STEP + 1))
	echo "ok $STEP - $*"
}

skip() {
	STEP=$((STEP + 1))
	echo "ok $STEP - SKIP: $*"
}

# -- systemd: verify with the real binary in ExecStart and an environment
# file that exists; any output (unknown keys, bad values) is a failure
if command -v systemd-analyze >/dev/null 2>&1; then
	mkdir -p "$T/units"
	printf 'AMLOPS_REPO=%s\n' "$T/repo" >"$T/amlops.env"
	for f in "$C"/systemd/*.service "$C"/systemd/*.timer; do
		sed -e "s|/usr/local/bin/amlops|$AMLOPS|g" \
		    -e "s|^EnvironmentFile=.*|EnvironmentFile=$T/amlops.env|" \
		    "$f" >"$T/units/$(basename "$f")"
	done
	(cd "$T/units" && timeout 60 systemd-analyze verify --man=no \
	    ./amlops-watch.service ./amlops-reconcile.service \
	    ./amlops-reconcile.timer) >"$T/verify" 2>&1 ||
	    fail "systemd-analyze verify: $(cat "$T/verify")"
	[ ! -s "$T/verify" ] || fail "systemd-analyze verify said: $(cat "$T/verify")"
	# the check itself catches a mistake
	sed 's/^Restart=on-failure/Restart=sometimes/' "$T/units/amlops-watch.service" \
	    >"$T/units/broken.service"
	(cd "$T/units" && timeout 60 systemd-analyze verify --man=no ./broken.service) \
	    >"$T/verify" 2>&1 || true
	grep -qi "restart specifier" "$T/verify" || fail "a broken unit went unnoticed"
	ok "systemd units pass systemd-analyze verify with nothing to say"
else
	skip "systemd-analyze is not installed (Debian package 'systemd')"
fi

grep -q '^ExecStart=.* watch ' "$C/systemd/amlops-watch.service" || fail "watch unit runs no watch"
grep -q '^ExecStart=.* reconcile --once' "$C/systemd/amlops-reconcile.service" || fail "reconcile unit"
grep -q '^Type=oneshot' "$C/systemd/amlops-reconcile.service" || fail "reconcile is not oneshot"
grep -q '^OnCalendar=' "$C/systemd/amlops-reconcile.timer" || fail "timer has no schedule"
for f in "$C"/systemd/*.service; do
	grep -q '^EnvironmentFile=/etc/amlops/amlops.env$' "$f" || fail "$f: no environment file"
	grep -q '^DynamicUser=yes$' "$f" || fail "$f: runs as root"
done
# the example environment names every variable the units use
for v in $(grep -ho '\${[A-Z_]*}' "$C"/systemd/*.service | sort -u | tr -d '${}'); do
	grep -q "^$v=" "$C/systemd/amlops.env.example" || fail "amlops.env.example lacks $v"
done
ok "systemd: watch service, oneshot reconcile and its timer, one environment file"

# -- YAML: the workflows and the Kubernetes manifest
"$PY" - "$C" <<'EOF' || fail "YAML checks"
import sys, yaml

c = sys.argv[1]

def load(path):
    with open(path) as f:
        return list(yaml.safe_load_all(f))

def on(w):
    # YAML 1.1 reads the key `on` as True
    return w.get("on", w.get(True))

plan, = load(c + "/github/amlops-plan.yml")
assert "pull_request" in on(plan), "plan workflow is not for pull requests"
assert plan["permissions"]["pull-requests"] == "write", "plan cannot comment"
steps = plan["jobs"]["plan"]["steps"]
runs = "\n".join(s.get("run", "") for s in steps)
assert "amlops" in runs and "plan" in runs, "plan workflow runs no plan"
for flag in ("--format markdown", "--detailed-exitcode"):
    assert flag in runs, "plan workflow lacks " + flag
assert any("github-script" in s.get("uses", "") and "createComment" in s["with"]["script"]
           for s in steps), "plan workflow posts no comment"
# untrusted PR fields never go straight into a shell
assert "${{ github.event.pull_request.title" not in runs
assert "${{ github.event.pull_request.head.ref" not in runs

rec, = load(c + "/github/amlops-reconcile.yml")
assert on(rec)["push"]["branches"] == ["main"], "reconcile is not on pushes to main"
assert rec["permissions"]["id-token"] == "write", "no OIDC token for Azure"
assert rec["concurrency"]["cancel-in-progress"] is False, "a push may cancel a run mid-step"
runs = "\n".join(s.get("run", "") for s in rec["jobs"]["reconcile"]["steps"])
assert "reconcile --once" in runs, "reconcile workflow runs no reconcile --once"

docs = load(c + "/kubernetes/amlops-sidecar.yaml")
kinds = {d["kind"]: d for d in docs}
for k in ("ServiceAccount", "Deployment"):
    assert k in kinds, "manifest lacks a " + k
for d in docs:
    assert d.get("apiVersion") and d.get("metadata", {}).get("name"), d
sa = kinds["ServiceAccount"]
assert "azure.workload.identity/client-id" in sa["metadata"]["annotations"]
dep = kinds["Deployment"]
pod = dep["spec"]["template"]
assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
assert pod["spec"]["serviceAccountName"] == sa["metadata"]["name"]
assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
sel = dep["spec"]["selector"]["matchLabels"]
assert all(pod["metadata"]["labels"].get(k) == v for k, v in sel.items()), "selector"
side = [x for x in pod["spec"].get("initContainers", []) if x["name"] == "amlops"]
assert side and side[0].get("restartPolicy") == "Always", "amlops is not a native sidecar"
assert "watch" in side[0]["args"], "the sidecar runs no watch"
vols = {v["name"] for v in pod["spec"]["volumes"]}
for x in pod["spec"]["containers"] + pod["spec"]["initContainers"]:
    for m in x.get("volumeMounts", []):
        assert m["name"] in vols, "unknown volume " + m["name"]
    sc = x.get("securityContext", {})
    assert sc.get("allowPrivilegeEscalation") is False, x["name"]
EOF
ok "workflows and the Kubernetes manifest parse and have the needed shape"

# the pull request workflow's plan step, run as GitHub would run it, on a
# repository whose head adds the sample endpoint and then breaks it
"$PY" -c '
import sys, yaml
w = yaml.safe_load(open(sys.argv[1]))
step, = [s for s in w["jobs"]["plan"]["steps"] if s.get("id") == "plan"]
print(step["run"])' "$C/github/amlops-plan.yml" >"$T/plan-step.sh"
mkdir -p "$T/bin" "$T/home" "$T/ws"
ln -s "$AMLOPS" "$T/bin/amlops"
git init -q "$T/ws"
gitc() { git -C "$T/ws" -c user.name=ci -c user.email=ci@example.com "$@"; }
echo "# endpoints" >"$T/ws/README.md"
gitc add README.md
gitc commit -qm base
BASE=$(gitc rev-parse HEAD)
cp -r "$SRC/manifests/." "$T/ws/"
gitc add -A
gitc commit -qm "add the sample endpoint"
run_plan_step() { # HEAD-SHA: runs the step in $T/ws; sets PLAN_RC
	: >"$T/gh-output"
	: >"$T/gh-summary"
	PLAN_RC=0
	(cd "$T/ws" && HOME=$T/home PATH=$T/bin:$PATH GITHUB_WORKSPACE=$T/ws \
	    GITHUB_OUTPUT=$T/gh-output GITHUB_STEP_SUMMARY=$T/gh-summary \
	    BASE_SHA=$BASE HEAD_SHA=$1 timeout 120 \
	    bash --noprofile --norc -eo pipefail "$T/plan-step.sh") >"$T/step.out" 2>&1 ||
	    PLAN_RC=$?
}
run_plan_step "$(gitc rev-parse HEAD)"
[ "$PLAN_RC" = 0 ] || fail "the plan step failed ($PLAN_RC): $(cat "$T/step.out")"
grep -qx "exitcode=2" "$T/gh-output" ||
    fail "plan step output: $(cat "$T/gh-output"); $(cat "$T/ws/plan.err")"
grep -q "sklearn-regression" "$T/ws/plan.md" || fail "plan.md: $(cat "$T/ws/plan.md")"
cmp -s "$T/ws/plan.md" "$T/gh-summary" || fail "the job summary is not the plan"
printf 'name: sklearn-regression\nauth_mode: key\nbogus_key: 1\n' \
    >"$T/ws/endpoints/sklearn-regression/endpoint.yml"
gitc commit -qam "break it"
run_plan_step "$(gitc rev-parse HEAD)"
[ "$PLAN_RC" = 0 ] || fail "the plan step itself failed ($PLAN_RC): $(cat "$T/step.out")"
grep -qx "exitcode=1" "$T/gh-output" || fail "a broken head: $(cat "$T/gh-output")"
grep -qx '### amlops plan failed' "$T/ws/plan.md" || fail "failure comment: $(cat "$T/ws/plan.md")"
grep -q "endpoint.yml:3:1: " "$T/ws/plan.md" ||
    fail "the failure comment lacks the error: $(cat "$T/ws/plan.md")"
ok "the pull request workflow's plan step: exit code 2 and markdown for changes, 1 and the error for a broken head"

# the flags the contrib files pass exist, for the commands the binary has
for cmd in $("$AMLOPS" --help | awk '/^commands:/{f=1;next} f&&/^  [a-z]/{print $1}'); do
	"$AMLOPS" "$cmd" --help >"$T/help" 2>&1 || true
	for flag in $(grep -hoE "amlops( --[a-z-]+[ =][^ ]+)* $cmd( [^#\"]*)?" \
	    "$C"/systemd/* "$C"/github/*.yml 2>/dev/null | grep -oE -- '--[a-z][a-z-]+' |
	    sort -u); do
		case $flag in --repo | --target | --output) continue ;; esac
		grep -q -- "$flag" "$T/help" ||
		    fail "contrib passes '$cmd $flag', which '$cmd --help' does not list"
	done
done
"$PY" -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d["kind"] == "Deployment":
        pod = d["spec"]["template"]["spec"]
        for x in pod.get("initContainers", []) + pod["containers"]:
            if x["name"] == "amlops":
                print(" ".join(x["args"]))' "$C/kubernetes/amlops-sidecar.yaml" >"$T/k8s-args"
read -r -a kargs <"$T/k8s-args"
kcmd=${kargs[0]}
if "$AMLOPS" "$kcmd" --help >"$T/help" 2>&1; then
	for a in "${kargs[@]:1}"; do
		flag=${a%%=*}
		grep -q -- "$flag" "$T/help" ||
		    fail "the Kubernetes sidecar passes '$kcmd $flag', which '$kcmd --help' does not list"
	done
fi
ok "the flags contrib passes to existing commands are in their --help"

# -- bash completion
bash -n "$C/completion/amlops.bash" || fail "completion: bash -n"
comp() { # EXPECTED WORDS...: completes the last word
	local want=$1 got
	shift
	got=$(bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1));
		_amlops; echo "${COMPREPLY[*]}"' _ "$C/completion/amlops.bash" "$@")
	[ "$got" = "$want" ] || fail "completing '$*': got '$got', expected '$want'"
}
bash -c '. "$1"; complete -p amlops' _ "$C/completion/amlops.bash" | grep -q -- '-F _amlops amlops' ||
    fail "completion is not registered"
comp "plan" amlops pl
comp "status" amlops --repo /tmp st
comp "endpoint" amlops -o json end
comp "local azure" amlops --target ""
comp "table json" amlops endpoint list --output ""
comp "text json markdown" amlops plan --format ""
comp "list show invoke logs credentials delete" amlops endpoint ""
comp "invoke" amlops endpoint inv
comp "--request-file --resource-group" amlops endpoint invoke blue --re
comp "--show-secrets" amlops endpoint credentials blue --sh
comp "--detailed-exitcode" amlops plan --det
comp "--once" amlops reconcile --on
comp "--self-heal" amlops watch --self
mkdir -p "$T/dirs/hostdir"
comp "$T/dirs/hostdir" amlops endpoint list --host-dir "$T/dirs/h"
# every command the binary lists is completed, with the flags its --help names
cmds=$(bash -c '. "$1"; echo "$_amlops_commands"' _ "$C/completion/amlops.bash")
for cmd in $("$AMLOPS" --help | awk '/^commands:/{f=1;next} f&&/^  [a-z]/{print $1}'); do
	case " $cmds " in *" $cmd "*) ;; *) fail "completion lacks command '$cmd'" ;; esac
	[ "$cmd" = endpoint ] && continue
	flags=$(bash -c '. "$1"; _amlops_flags "$2"' _ "$C/completion/amlops.bash" "$cmd")
	# the flags of the synopsis ("[--x") and of the option lines
	# ("  -x, --x"), not those the prose mentions
	for flag in $("$AMLOPS" "$cmd" --help 2>&1 |
	    grep -oE -- '^ +(-[a-zA-Z], )?--[a-z][a-z-]+|\[--[a-z][a-z-]+' |
	    grep -oE -- '--[a-z][a-z-]+' | sort -u); do
		case " $flags " in *" $flag "*) ;; *) fail "completion lacks '$cmd $flag'" ;; esac
	done
done
for sub in list show invoke logs credentials delete; do
	flags=$(bash -c '. "$1"; _amlops_flags "endpoint:$2"' _ "$C/completion/amlops.bash" "$sub")
	for flag in $("$AMLOPS" endpoint --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
		# the flags valid for this subcommand, as the binary says
		out=$("$AMLOPS" endpoint "$sub" blue-ep "$flag" 5 --host-dir "$T/none" 2>&1 || true)
		if grep -q "is not a flag of\|unknown flag" <<<"$out"; then
			continue
		fi
		case " $flags " in *" $flag "*) ;; *) fail "completion lacks 'endpoint $sub $flag'" ;; esac
	done
done
ok "completion: sourced by bash, completes commands, subcommands, flags and values, as --help lists them"

# -- Dockerfile: Debian only, apt only, runtime stage without toolchains
D=$C/container/Dockerfile
grep -E '^FROM ' "$D" | grep -vqE '^FROM debian:[0-9a-z.-]+(-slim)?( AS [a-z]+)?$' &&
    fail "a base image that is not Debian: $(grep '^FROM' "$D")"
grep -qiE '(curl|wget)[^|]*\|[[:space:]]*(ba|da)?sh|^ADD[[:space:]]+https?:|pip[0-9]* install|npm install' "$D" &&
    fail "the Dockerfile fetches something outside apt"
"$PY" - "$D" >"$T/pkgs" <<'EOF' || fail "Dockerfile stages"
import re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
stages = re.split(r"^FROM ", text, flags=re.M)[1:]
assert len(stages) == 2, "expected a build stage and a runtime stage"
for i, st in enumerate(stages):
    for cmd in re.findall(r"apt-get install ([^&\n]*)", st):
        pkgs = [w for w in cmd.split() if not w.startswith("-")]
        for p in pkgs:
            print(i, p)
EOF
runtime=$(awk '$1 == 1 {print $2}' "$T/pkgs")
[ -n "$runtime" ] || fail "no runtime packages"
for p in $runtime; do
	case $p in *-dev | build-essential | cmake | gcc* | clang* | pkg-config)
		fail "runtime stage installs the build package '$p'" ;;
	esac
done
if command -v apt-cache >/dev/null 2>&1 && grep -q '^12\.' /etc/debian_version 2>/dev/null; then
	for p in $(awk '{print $2}' "$T/pkgs"); do
		apt-cache show "$p" >/dev/null 2>&1 || fail "'$p' is not a Debian 12 package"
	done
	# every library the binary links comes with a runtime package
	for lib in $(readelf -d "$AMLOPS" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
		case $lib in libasan* | libubsan* | libc.so* | libm.so* | libpthread* | libdl* | ld-linux*) continue ;; esac
		path=$(ldd "$AMLOPS" | awk -v l="$lib" '$1 == l {print $3}')
		[ -n "$path" ] || fail "ldd does not resolve $lib"
		pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "/usr$path" 2>/dev/null ||
		    dpkg -S "$(readlink -f "$path")" 2>/dev/null || true)
		pkg=${pkg%%:*}
		[ -n "$pkg" ] || fail "no Debian package owns $path"
		grep -qx "$pkg" <<<"$runtime" || fail "$lib comes from '$pkg', which the runtime stage does not install"
	done
	ok "Dockerfile: Debian bases, apt only, runtime packages exist and cover every linked library"
else
	ok "Dockerfile: Debian bases, apt only, no build packages at run time (package lookup: SKIP, not Debian 12)"
fi

# -- README names every contrib file, with a line on when to use it
for f in $(cd "$C" && find . -type f ! -name README.md | sed 's|^\./||' | sort); do
	grep -q "$(basename "$f")" "$C/README.md" || fail "contrib/README.md does not mention $f"
done
grep -q 'contrib/' "$SRC/README.md" || fail "README.md does not point to contrib/"
for f in amlops-watch.service amlops-reconcile.timer amlops-sidecar.yaml amlops-plan.yml \
    amlops-reconcile.yml Dockerfile amlops.bash; do
	grep -q "$f" "$SRC/README.md" || fail "README.md does not name $f"
done
ok "README and contrib/README.md name every file"
