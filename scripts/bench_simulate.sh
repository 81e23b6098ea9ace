#!/usr/bin/env bash
# bench_simulate.sh: item 6 of scripts/bench.sh -- the policy lab's speed (issue 15). Simulates a
# one-week trace of 100,000 tasks on 4 pools (steady arrivals spread over the pools, each with
# its own GPU type, the fleet's MAX_ACTIVE_GPUS 40) with `orchestrator simulate` and prints the
# wall time (target < 10 s), the simulated-to-real time ratio, cycles, events and peak RSS.
# Runs it twice and checks the two reports are byte-identical and every task completed.
#
#   scripts/bench_simulate.sh [--smoke]     --smoke: 4,000 tasks over one day, checks only
#
# Binary: $ORCH_BINARY, else build-bench/orchestrator (a Release build). Needs /usr/bin/time and
# /usr/bin/python3. Exits 1 when a check fails (not when the target is missed: it says so).
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${ORCH_BINARY:-$root/build-bench/orchestrator}
py=/usr/bin/python3
tasks=100000 days=7
[ "${1:-}" = "--smoke" ] && tasks=4000 days=1
[ -x "$bin" ] || { echo "bench_simulate: no orchestrator binary at $bin" >&2; exit 1; }

tmp=$(mktemp -d /tmp/orch-bench-sim.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
sim_env=(PATH="$PATH" POOLS=video,image,audio,upscale MAX_ACTIVE_GPUS=40
    TASK_STUCK_TIMEOUT_SEC=900
    "POOL_VIDEO_GPU_TYPES=NVIDIA A100 80GB PCIe" "POOL_IMAGE_GPU_TYPES=NVIDIA GeForce RTX 4090"
    "POOL_AUDIO_GPU_TYPES=NVIDIA RTX A5000" "POOL_UPSCALE_GPU_TYPES=NVIDIA L40S,NVIDIA RTX A6000")
args=(simulate --generate steady --tasks "$tasks" --days "$days" --seed 1 --json)

failures=0
check() { # check TEXT RESULT(0/1)
    if [ "$2" = 0 ]; then echo "  ok   - $1" >&2; else echo "  FAIL - $1" >&2; failures=$((failures + 1)); fi
}

for run in 1 2; do
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%M' -o "$tmp/time$run" env -i "${sim_env[@]}" "$bin" "${args[@]}" \
        >"$tmp/report$run.json" 2>"$tmp/err$run" || { cat "$tmp/err$run" >&2; exit 1; }
    t1=$EPOCHREALTIME
    echo "$((10#${t1/./} - 10#${t0/./}))" >"$tmp/wall$run"
done
read -r wall < <(sort -n "$tmp/wall1" "$tmp/wall2" | head -n 1)
rss=$(sort -n "$tmp/time1" "$tmp/time2" | tail -n 1)
read -r n sim_sec cycles events completed pools < <("$py" -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = d["runs"][0]
print(d["trace"]["tasks"], r["end_sec"], r["cycles"], r["events"], r["total"]["completed"],
      len(r["pools"]))' "$tmp/report1.json")
awk -v w="$wall" -v s="$sim_sec" -v n="$n" -v d="$days" -v c="$cycles" -v e="$events" \
    -v p="$pools" -v m="$rss" -v smoke="$([ "$tasks" = 4000 ] && echo 1 || echo 0)" 'BEGIN {
    secs = w / 1e6
    printf "\n== 8. Policy lab: %d tasks over %g days on %d pools, simulated with the real planner\n", n, d, p
    printf "   wall %.2f s (best of 2), simulated %.0f s (%.1f days): %.0f simulated seconds per real second\n", secs, s, s / 86400, s / secs
    printf "   %d planner cycles, %d events, peak RSS %.1f MiB\n", c, e, m / 1024
    if (!smoke)
        printf "   target: a one-week trace of 100,000 tasks on 4 pools in < 10 s: %s\n", secs < 10 ? "met" : "MISSED"
}'
check "the simulation ran every task to completion ($completed of $n)" "$([ "$completed" = "$n" ] && echo 0 || echo 1)"
check "two runs of the same seed gave byte-identical reports" "$(cmp -s "$tmp/report1.json" "$tmp/report2.json" && echo 0 || echo 1)"
[ "$failures" = 0 ]
