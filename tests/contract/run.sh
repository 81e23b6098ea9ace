#!/usr/bin/env bash
# run.sh -- RunPod REST v2 contract test (ctest: contract_runpod).
#
# Runs the client scenarios (test_int_runpod_client, test_int_runpod_catalog for issue 16's
# catalog and rate limit, test_int_runpod_lifecycle for its stop/start, log and billing calls,
# given as arguments) with the fake recording every exchange, then validates each recorded
# request and response, plus RunPod's recorded examples, against
# tests/fixtures/runpod/openapi-v2.json with /usr/bin/python3 + jsonschema.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: run.sh PATH/TO/test_int_runpod_client [MORE SCENARIO BINARIES]" >&2; exit 2; }
src=${ORCH_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
tmp=$(mktemp -d /tmp/orch-contract.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

for bin in "$@"; do
    if ! ORCH_SOURCE_DIR="$src" ORCH_FAKE_RUNPOD_RECORD_DIR="$tmp" "$bin" >"$tmp/scenarios.log" 2>&1; then
        cat "$tmp/scenarios.log"
        echo "contract: the client scenarios of $(basename "$bin") failed (see above)" >&2
        exit 1
    fi
done
shopt -s nullglob
records=("$tmp"/*.jsonl)
if [ ${#records[@]} -eq 0 ]; then
    echo "contract: the fake recorded nothing" >&2
    exit 1
fi
exec /usr/bin/python3 "$src/tests/contract/validate_runpod.py" \
    --openapi "$src/tests/fixtures/runpod/openapi-v2.json" \
    --fixtures "$src/tests/fixtures/runpod" "${records[@]}"
