#!/bin/sh
# Install the Debian packages amlops needs to build, test and run, when they
# are missing. Safe to run again; needs root (or sudo) only when something is
# missing.
set -eu

want="build-essential cmake pkg-config git clang
libgit2-dev libcurl4-openssl-dev libyaml-dev libcjson-dev libmicrohttpd-dev
libcmocka-dev libssl-dev python3 python3-yaml python3-sklearn python3-numpy
curl ca-certificates"

case "${1:-}" in
--tests) want="$want libclang-rt-14-dev wrk python3-flask gunicorn nodejs npm systemd" ;;
"") ;;
*) echo "usage: scripts/setup.sh [--tests]" >&2; exit 64 ;;
esac

missing=""
for p in $want; do
	s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$s" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done

# nodejs from another source may bring its own npm: don't fight it
if command -v npm >/dev/null 2>&1; then
	missing=$(echo "$missing" | sed 's/ npm\b//; s/ nodejs\b//')
fi

if [ -n "$missing" ]; then
	echo "setup: installing$missing"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Azurite (the Azure Storage emulator the blob tests run against) comes
# from npm, pinned in package.json/package-lock.json at the repository root.
if [ "${1:-}" = "--tests" ]; then
	root=$(cd "$(dirname "$0")/.." && pwd)
	if [ ! -x "$root/node_modules/.bin/azurite-blob" ]; then
		echo "setup: installing azurite (npm)"
		(cd "$root" && npm ci --no-audit --no-fund --ignore-scripts)
	fi
fi
