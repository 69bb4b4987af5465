#!/bin/sh
# Installs what is missing, builds amlops, and runs the demo on the sample
# repository in manifests/.
set -eu
cd "$(dirname "$0")/.."

scripts/setup.sh

build=${BUILD_DIR:-build/release}
echo "== build ($build)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DAMLOPS_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
amlops=$build/amlops

echo "== amlops validate manifests/"
"$amlops" validate manifests/
