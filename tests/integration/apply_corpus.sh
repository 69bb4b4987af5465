#!/bin/bash
# The canary flow of the 2021 Azure ML examples, the corpus files
# verbatim (../shared/corpus), applied commit by commit with `amlops
# apply` against a real `amlops host`: the stand-in scoring scripts answer
# {"model": "model-1"} or "model-2", so the scoring after each commit
# shows which deployment answered: model-1, then about 90/10 over 1,000
# requests, then only model-2, and blue is gone at the end.
set -euo pipefail
. "$(dirname "$0")/apply_lib.bash"

SHARED=${AMLOPS_SHARED:-$(dirname "$0")/../../../shared}
FLOW=$SHARED/corpus/azureml-examples-2021/cli/endpoints/online
if [ ! -d "$FLOW/managed/canary-declarative-flow" ]; then
	echo "SKIP: $FLOW/managed/canary-declarative-flow is absent (needs ../shared/corpus)"
	exit 0
fi

start_host
R=$T/corpus
git_init "$R"
EP=$R/cli/endpoints/online/managed/canary-declarative-flow
mkdir -p "$EP"
cp -r "$FLOW/model-1" "$FLOW/model-2" "$R/cli/endpoints/online/"
for f in 1-create-endpoint-with-blue 2-scale-blue 3-create-green \
    4-flight-green 5-full-green 6-delete-blue; do
	cp "$FLOW/managed/canary-declarative-flow/$f.yml" "$EP/endpoint.yml"
	commit "$R" "$f"
done
flow "$R" my-endpoint corpus model-1 model-2
invariants --created-once
ok "corpus: invariants hold ($(cat "$T/inv.out"))"
echo "PASS: apply_corpus"
