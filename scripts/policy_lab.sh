#!/usr/bin/env bash
# policy_lab.sh: the policy lab's comparison (issue 15, structure_docs/simulation.md): for each
# of the four generated traces (and any recorded ones), the three baselines, the current
# default and each adaptive policy side by side on the same trace, with the clairvoyant bound;
# then, per adaptive policy, on which traces it wins on cost at equal or better p95 wait -- the
# rule for turning one on by default.
#
#   scripts/policy_lab.sh [--seed N] [--seeds 1,2,3] [--days D] [--trace F.csv --env F.env]...
#
# --seeds repeats the generated traces with several seeds and counts the wins per seed (how
# robust a verdict is). --trace/--env add a recorded trace (scripts/demo.sh --record) simulated
# with its own settings under every policy file. Binary: $ORCH_BINARY, else build-release.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${ORCH_BINARY:-$root/build-release/orchestrator}
lab=$root/scripts/policy_lab
py=/usr/bin/python3
seeds=1
days=1
traces=()
envs=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seed | --seeds) seeds=${2:?$1 needs a value}; shift 2 ;;
    --days) days=${2:?--days needs a value}; shift 2 ;;
    --trace) traces+=("${2:?--trace needs a file}"); shift 2 ;;
    --env) envs+=("${2:?--env needs a file}"); shift 2 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "policy_lab: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ ${#traces[@]} = ${#envs[@]} ] || { echo "policy_lab: give one --env per --trace" >&2; exit 2; }
[ -x "$bin" ] || { echo "policy_lab: no binary at $bin (build it or set ORCH_BINARY)" >&2; exit 1; }

files=("$lab"/legacy.env "$lab"/keda.env "$lab"/runpod.env "$lab"/default.env
    "$lab"/warm.env "$lab"/keep1.env "$lab"/predictive.env "$lab"/grace.env)
# Issue 16's options (the stopped-pod warm pool, GPU choice among three types), simulated here.
files16=("$lab"/default.env "$lab"/stopped2.env "$lab"/choice_ordered.env
    "$lab"/choice_cheapest.env "$lab"/choice_value.env)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

IFS=, read -r -a seed_list <<<"$seeds"
reports=()
for seed in "${seed_list[@]}"; do
    for kind in steady bursty diurnal sparse; do
        out="$tmp/$kind-$seed.json"
        env -i PATH="$PATH" "$bin" simulate --generate "$kind" --seed "$seed" --days "$days" \
            --json --compare "${files[@]}" >"$out"
        reports+=("$out")
        if [ ${#seed_list[@]} = 1 ]; then
            env -i PATH="$PATH" "$bin" simulate --generate "$kind" --seed "$seed" --days "$days" \
                --json --compare "${files16[@]}" >"$tmp/i16-$kind.json"
        fi
    done
done
for i in "${!traces[@]}"; do
    out="$tmp/recorded-$i.json"
    # The trace's own settings under each policy file: the env file, then the policy on top.
    (
        set -a
        # shellcheck disable=SC1090
        . "${envs[$i]}"
        set +a
        "$bin" simulate --trace "${traces[$i]}" --json --compare "${files[@]}" >"$out"
    )
    reports+=("$out")
done

"$py" - "${#seed_list[@]}" "${reports[@]}" <<'PY'
import json, sys
n_seeds = int(sys.argv[1])


def money(x):
    return "%9.2f" % x if x >= 1 else "%9.4f" % x


adaptive = ("warm", "predictive", "grace")
wins = {a: {} for a in adaptive}
for path in sys.argv[2:]:
    d = json.load(open(path))
    runs = {r["label"]: r for r in d["runs"]}
    label = d["trace"]["label"]
    if n_seeds == 1 or "recorded" in path:
        print("\n== %s (%d tasks)" % (label, d["trace"]["tasks"]))
        print("%-28s %9s %8s %6s %9s %6s %5s" % ("policy", "dollars", "p95 s", "cold", "p50 s",
                                                "pods", "peak"))
        for r in d["runs"]:
            t = r["total"]
            print("%-28s %s %8.1f %6d %9.1f %6d %5d" % (
                r["label"] + " (" + r["policy"] + ")", money(t["usd"]), t["wait_p95_sec"],
                t["cold_starts"], t["wait_p50_sec"], t["pods_created"], t["peak_fleet"]))
        b = d["clairvoyant"]["total"]
        print("%-28s %s %8.1f %6d %9.1f %6d %5d" % ("clairvoyant bound", money(b["usd"]), 0, 0,
                                                  0, b["pods_created"], b["peak_fleet"]))
    base = runs["default"]["total"]
    kind = label.split(" seed")[0]
    for a in adaptive:
        t = runs[a]["total"]
        won = t["usd"] < base["usd"] - 1e-9 and t["wait_p95_sec"] <= base["wait_p95_sec"] + 1e-9
        wins[a].setdefault(kind, []).append(won)
print("\nwins on cost at equal or better p95 wait than the current default (per trace: "
      "seeds won / seeds):")
for a in adaptive:
    cells = ", ".join("%s %d/%d" % (k, sum(v), len(v)) for k, v in wins[a].items())
    generated = [k for k in ("steady", "bursty", "diurnal", "sparse")
                 if k in wins[a] and sum(wins[a][k]) * 2 > len(wins[a][k])]
    print("  %-10s %s -> %s" % (a, cells, "wins on %d of 4 generated traces%s" % (
        len(generated), ": turn on" if len(generated) >= 3 else ": stays off")))
PY
if [ ${#seed_list[@]} = 1 ]; then
    echo
    echo "issue 16 in the simulator (assumed prices and speeds: structure_docs/simulation.md):"
    "$py" - "$tmp"/i16-*.json <<'PY'
import json, sys
for path in sys.argv[1:]:
    d = json.load(open(path))
    print("  %s: " % d["trace"]["label"] + "; ".join(
        "%s $%.2f p95 %.1f s" % (r["label"], r["total"]["usd"], r["total"]["wait_p95_sec"])
        for r in d["runs"]))
PY
fi
