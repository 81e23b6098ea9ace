#!/usr/bin/env bash
# test.sh: the project's test command (README, .ci/run).
#
# Installs missing Debian packages, builds twice -- a release build (-O2, fortify, warnings as
# errors) and an AddressSanitizer+UBSan build with the test crash points compiled in -- starts a
# private PostgreSQL in a temporary directory, migrates a template database that every
# integration test copies, runs every test with ctest against both builds, and always stops the
# server it started. A missing PostgreSQL fails the run; nothing is skipped.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    the release build only
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
quick=0
[ "${1:-}" = "--quick" ] && quick=1

bash "$root/scripts/install-deps.sh"

jobs=$(nproc 2>/dev/null || echo 2)
builds=("build-release")
cmake -S "$root" -B "$root/build-release" -DCMAKE_BUILD_TYPE=Release -DORCH_WERROR=ON >/dev/null
cmake --build "$root/build-release" -j "$jobs"
if [ $quick -eq 0 ]; then
    cmake -S "$root" -B "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug -DORCH_WERROR=ON \
        -DORCH_SANITIZE=ON -DORCH_TEST_HOOKS=ON >/dev/null
    cmake --build "$root/build-asan" -j "$jobs"
    builds+=("build-asan")
fi

tmp=$(mktemp -d /tmp/orch-test.XXXXXX)
chmod 755 "$tmp"
cleanup() {
    "$root/scripts/pg-local.sh" stop "$tmp/pg" || true
    rm -rf "$tmp"
}
trap cleanup EXIT

eval "$("$root/scripts/pg-local.sh" start "$tmp/pg")"
export PGHOST PGPORT PGUSER
createdb orch_tpl
DATABASE_URL="postgresql:///orch_tpl?host=$PGHOST&port=$PGPORT&user=$PGUSER" \
    "$root/build-release/orchestrator" migrate >/dev/null
export ORCH_TEST_TEMPLATE_DB=orch_tpl

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
summaries=()
for b in "${builds[@]}"; do
    echo "== ctest: $b"
    # Two tests at a time, longest first (COST in CMakeLists.txt): most of the suite waits on
    # timeouts, heartbeats and cycles rather than the CPU, so this halves the wall time.
    if ! ctest --test-dir "$root/$b" --output-on-failure --timeout 600 -j "${ORCH_TEST_JOBS:-2}" |
        tee "$tmp/ctest-$b.log"; then
        status=1
    fi
    # The figures the tests print (counts, bounds, per-suite totals), from ctest's full log.
    echo "== highlights: $b"
    grep -h -E '^(claim-concurrency|claim-pools|drain-race|invariants|crash-loop|poison|pools|catalog|ratelimit|e2e|bench|sql-contract|lease|explain)[: ]|^[0-9]+ passed, [0-9]+ failed' \
        "$root/$b/Testing/Temporary/LastTest.log" 2>/dev/null | sed 's/^/  /' || true
    summaries+=("$b: $(grep -E 'tests passed|tests failed' "$tmp/ctest-$b.log" | tail -n 1)")
done
echo "== summary"
for line in "${summaries[@]}"; do echo "$line"; done
exit $status
