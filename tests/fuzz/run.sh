#!/usr/bin/env bash
# run.sh: builds the libFuzzer harnesses with clang (ASan+UBSan+fuzzer) and runs each for a
# fixed time (FUZZ_SECONDS, default 20) from a seed corpus made of the RunPod fixtures and a few
# environments. Any crash, leak or sanitizer report fails the run.
set -euo pipefail
src=${ORCH_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
secs=${FUZZ_SECONDS:-20}
command -v clang >/dev/null || { echo "fuzz: clang is missing; run scripts/install-deps.sh" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(-std=c11 -D_POSIX_C_SOURCE=200809L -DORCH_VERSION=\"fuzz\" -g -O1
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -I"$src/src/core" $(pkg-config --cflags libcjson))
libs=($(pkg-config --libs libcjson) -lm)
clang "${flags[@]}" -o "$work/fuzz_runpod_json" "$src/tests/fuzz/fuzz_runpod_json.c" \
    "$src/src/core/runpod_json.c" "$src/src/core/status.c" "${libs[@]}"
clang "${flags[@]}" -o "$work/fuzz_ratelimit_catalog" "$src/tests/fuzz/fuzz_ratelimit_catalog.c" \
    "$src/src/core/ratelimit.c" "$src/src/core/catalog.c" "$src/src/core/runpod_json.c" \
    "$src/src/core/status.c" "${libs[@]}"
clang "${flags[@]}" -o "$work/fuzz_config" "$src/tests/fuzz/fuzz_config.c" \
    "$src/src/core/config.c" "$src/src/core/config_table.c" \
    "$src/src/core/config_show.c" "$src/src/core/config_pools.c" "$src/src/core/status.c" "${libs[@]}"

# The gateway's request parsing and token checks (issue 13): gw_request.c is pure and
# compiles alone with the core's worker_token.c and libcrypto.
clang "${flags[@]}" -I"$src/src/gateway" -o "$work/fuzz_gateway_request" \
    "$src/tests/fuzz/fuzz_gateway_request.c" "$src/src/gateway/gw_request.c" \
    "$src/src/gateway/gw_paths.c" \
    "$src/src/core/worker_token.c" "$src/src/core/status.c" "${libs[@]}" \
    $(pkg-config --libs libcrypto)

mkdir -p "$work/corpus_json" "$work/corpus_config" "$work/corpus_gateway_request" \
    "$work/corpus_ratelimit_catalog"
t=0f8fad5b-d9cb-469f-a165-70867728950e
printf '\000{"worker_id_param":"gpu-1","vram_total_mb_param":0,"vram_used_mb_param":0,"logs_param":[{"message":"m","task_id":"x","metadata":{}}],"status_param":"crashed"}' >"$work/corpus_gateway_request/hb"
printf '\000{"worker_id_param":"gpu-1","logs_param":[{"message":"ffmpeg \377\376","level":"E\303","metadata":{"k":"\300\257"}}]}' >"$work/corpus_gateway_request/hb_utf8"
printf '\001{"run_type":"gpu","worker_id":"gpu-1","include_active":true}' >"$work/corpus_gateway_request/claim"
printf '\002{"task_id":"%s","status":"Failed","output_location":"oom","reset_generation_started_at":true}' $t >"$work/corpus_gateway_request/status"
printf '\003{"task_id":"%s","file_data":"aGVsbG8=","filename":"../a.mp4","first_frame_data":"aGk=","first_frame_filename":"f.jpg"}' $t >"$work/corpus_gateway_request/complete"
printf '\003{"task_id":"%s","storage_path":"system/tasks/%s/a.mp4"}' $t $t >"$work/corpus_gateway_request/complete2"
printf '\004{"task_id":"%s","filename":"a.mp4","content_type":"video/mp4","generate_thumbnail_url":true}' $t >"$work/corpus_gateway_request/upload"
printf '\005select=id,params&worker_id=eq.gpu-1&status=eq.In Progress&limit=1' >"$work/corpus_gateway_request/query"
printf '\006eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJncHUtMSIsInVzZSI6IndvcmtlciJ9.AAAA' >"$work/corpus_gateway_request/token"
cp "$src"/tests/fixtures/runpod/v2_*.json "$work/corpus_json/"
# issue 16: the document's catalog example and RateLimit headers (first byte: cloud, filter)
/usr/bin/python3 - "$src/tests/fixtures/runpod/openapi-v2.json" "$work/corpus_ratelimit_catalog" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ex = d["paths"]["/v2/catalog/gpus"]["get"]["responses"]["200"]["content"]["application/json"]
body = json.dumps(ex["examples"]["gpus"]["value"]).encode()
rl = d["components"]["schemas"]["RateLimitHeader"]["examples"][0]
pol = d["components"]["schemas"]["RateLimitPolicyHeader"]["examples"][0]
for i, data in enumerate([b"\x00" + body, b"\x03" + body, b"\x00" + (rl + "\n" + pol).encode()]):
    open("%s/seed%d" % (sys.argv[2], i), "wb").write(data)
PY
printf '\002abc\n\003-1\n' >"$work/corpus_config/a"
printf '\0200.5\n\377WORKER_ENV_X=1\n\016http://x\n' >"$work/corpus_config/b"

status=0
for h in fuzz_runpod_json fuzz_config fuzz_gateway_request fuzz_ratelimit_catalog; do
    corpus="$work/corpus_${h#fuzz_}"
    [ "$h" = fuzz_runpod_json ] && corpus="$work/corpus_json"
    echo "== $h for ${secs}s"
    if "$work/$h" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=1024 \
        -artifact_prefix="$work/" "$corpus" >"$work/$h.log" 2>&1; then
        grep -E '^(#[0-9]+ +DONE|Done)' "$work/$h.log" | tail -n 1
        echo "ok - $h: no crash"
    else
        tail -n 40 "$work/$h.log"
        echo "not ok - $h crashed (artifact in the log above)"
        status=1
    fi
done
[ $status -eq 0 ] && echo "4 passed, 0 failed" || echo "fuzz: failures"
exit $status
