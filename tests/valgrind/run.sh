#!/usr/bin/env bash
# run.sh: the unit suite under valgrind memcheck (no fork, so leaks are seen): any error or
# definitely/indirectly lost block fails. Registered only in builds without ASan.
set -uo pipefail
dir=${ORCH_BUILD_DIR:?ORCH_BUILD_DIR is not set}
command -v valgrind >/dev/null || { echo "valgrind is missing; run scripts/install-deps.sh" >&2; exit 1; }
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pass=0
fail=0
for t in "$dir"/test_unit_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    name=$(basename "$t")
    if CK_FORK=no valgrind -q --error-exitcode=97 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect "$t" >"$logs/$name.log" 2>&1; then
        echo "ok - $name: $(grep -E '^[0-9]+%: Checks' "$logs/$name.log")"
        pass=$((pass + 1))
    else
        tail -n 30 "$logs/$name.log"
        echo "not ok - $name under valgrind"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
