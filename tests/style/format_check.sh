#!/usr/bin/env bash
# format_check.sh: every C file of the project is clang-formatted (.clang-format, STYLE B7), and
# no banned function (STYLE B9) appears in src/.
set -uo pipefail
src=${ORCH_SOURCE_DIR:?ORCH_SOURCE_DIR is not set}
command -v clang-format >/dev/null || { echo "clang-format is missing; run scripts/install-deps.sh" >&2; exit 1; }
cd "$src"
pass=0
fail=0
while IFS= read -r f; do
    if clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        pass=$((pass + 1))
    else
        echo "not ok - $f is not clang-formatted (clang-format -i $f)"
        fail=$((fail + 1))
    fi
done < <(find src tests -name '*.[ch]' -not -path '*/build*' | sort)
banned=$(grep -rnE '\b(sprintf|vsprintf|strcpy|strcat|strncpy|atoi|atol|atof|gets|strtok)[[:space:]]*\(' src |
    grep -v 'snprintf\|vsnprintf')
if [ -n "$banned" ]; then
    echo "not ok - banned functions in src/:"
    echo "$banned"
    fail=$((fail + 1))
else
    pass=$((pass + 1))
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
