#!/usr/bin/env bash
# layering_check.sh: the source tree is the architecture (STYLE B1, structure_docs/layout.md),
# and this test keeps it so. Arrows only point down:
#
#   src/main.c  ->  src/cli  ->  src/gateway  ->  src/shell  ->  src/core
#
#   1. every #include "x.h" of a file resolves inside its own layer or a lower one (no "../");
#   2. src/core includes no libpq, libcurl or libmicrohttpd header;
#   3. every file compiles (-fsyntax-only) with only its own and the lower layers' include
#      directories, exactly as CMake builds it;
#   4. liborch_core.a references no libpq (PQ*), libcurl (curl_*) or libmicrohttpd (MHD_*)
#      symbol (needs ORCH_BUILD_DIR);
#   5. self-test: a copy of the tree with a core file including a shell header, and one with a
#      shell file including a cli header, must both fail checks 1 and 3. A checker that cannot
#      fail is no check.
#
# Prints "N passed, M failed"; exit status 0 only when nothing failed.
set -uo pipefail
src=${ORCH_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
build=${ORCH_BUILD_DIR:-}
cc=${CC:-cc}

# Layers from the bottom up; a layer may include its own and every earlier one.
LAYERS=(core shell gateway cli)

allowed_dirs() { # layer -> the src/ subdirectories it may include from
    local want=$1 out=()
    for l in "${LAYERS[@]}"; do
        out+=("$l")
        [ "$l" = "$want" ] && break
    done
    echo "${out[@]}"
}

cflags_for() { # layer -> the pkg-config cflags CMake gives it
    case $1 in
    core) pkg-config --cflags libcjson ;;
    *) pkg-config --cflags libcjson libpq libcurl uuid libmicrohttpd ;;
    esac
}

# check_tree ROOT: runs checks 1-3 on ROOT/src; prints one line per problem; returns the number
# of problems (capped at 255).
check_tree() {
    local root=$1 problems=0
    for layer in "${LAYERS[@]}"; do
        [ -d "$root/src/$layer" ] || continue
        local dirs incs=()
        dirs=$(allowed_dirs "$layer")
        for d in $dirs; do incs+=(-I"$root/src/$d"); done
        local flags
        flags=$(cflags_for "$layer")
        while IFS= read -r f; do
            [ -n "$f" ] || continue
            # 1. quoted includes resolve within the allowed layers
            while IFS= read -r inc; do
                [ -n "$inc" ] || continue
                if [[ $inc == */* ]]; then
                    echo "not ok - ${f#$root/}: #include \"$inc\" uses a path; name the header only"
                    problems=$((problems + 1))
                    continue
                fi
                local found=""
                for d in $dirs; do
                    [ -f "$root/src/$d/$inc" ] && found=$d
                done
                if [ -z "$found" ]; then
                    local owner
                    owner=$(cd "$root/src" && ls -d */"$inc" 2>/dev/null | head -n 1)
                    echo "not ok - ${f#$root/}: includes \"$inc\"${owner:+ from src/${owner%%/*}}, above the $layer layer"
                    problems=$((problems + 1))
                fi
            done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
            # 2. the core stays pure
            if [ "$layer" = core ] &&
                grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<(libpq-fe\.h|libpq/|curl/|microhttpd\.h)' "$f" >/dev/null; then
                echo "not ok - ${f#$root/}: a core file includes libpq, libcurl or libmicrohttpd"
                problems=$((problems + 1))
            fi
            # 3. compiles with only the allowed include directories
            if [[ $f == *.c ]]; then
                # shellcheck disable=SC2086
                if ! $cc -std=c11 -D_POSIX_C_SOURCE=200809L -DORCH_VERSION=\"check\" \
                    -fsyntax-only "${incs[@]}" $flags "$f" 2>/dev/null; then
                    echo "not ok - ${f#$root/} does not compile with only the ${dirs// /, } include directories"
                    problems=$((problems + 1))
                fi
            fi
        done < <(find "$root/src/$layer" -name '*.[ch]' | sort)
    done
    # main.c: the top; it may include the cli face only.
    if [ -f "$root/src/main.c" ]; then
        while IFS= read -r inc; do
            if [ ! -f "$root/src/cli/$inc" ]; then
                echo "not ok - src/main.c includes \"$inc\"; main.c uses the cli face only"
                problems=$((problems + 1))
            fi
        done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$root/src/main.c")
    fi
    [ $problems -gt 255 ] && problems=255
    return $problems
}

pass=0
fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "not ok - $1"; fail=$((fail + 1)); }

# 1-3 on the real tree
if check_tree "$src"; then
    ok "every #include points down; every file compiles with its layer's include directories"
else
    bad "layering violations above"
fi

# 4. the core library links neither libpq nor libcurl
if [ -n "$build" ]; then
    lib=$(find "$build" -maxdepth 2 -name liborch_core.a | head -n 1)
    if [ -z "$lib" ]; then
        bad "liborch_core.a not found under $build"
    else
        syms=$(nm -u "$lib" 2>/dev/null | grep -E ' U (PQ|pg_|curl_|MHD_)' | sort -u | head -n 5)
        if [ -n "$syms" ]; then
            bad "liborch_core.a references shell libraries: $(echo $syms)"
        else
            ok "liborch_core.a references no libpq, libcurl or libmicrohttpd symbol"
        fi
    fi
else
    bad "ORCH_BUILD_DIR is not set: cannot check what liborch_core.a links"
fi

# 5. self-test: the checker fails on a planted violation in each direction
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
plant() { # name, file under src/, header to include
    rm -rf "$tmp/$1"
    mkdir -p "$tmp/$1"
    cp -r "$src/src" "$tmp/$1/src"
    sed -i "0,/^#include/s//#include \"$3\"\n#include/" "$tmp/$1/src/$2"
    local out
    out=$(check_tree "$tmp/$1")
    local rc=$?
    if [ $rc -ge 2 ] && grep -q "includes \"$3\"" <<<"$out" && grep -q "does not compile" <<<"$out"; then
        ok "self-test: $2 including \"$3\" is refused ($(grep -c '^not ok' <<<"$out") problems)"
    else
        bad "self-test: $2 including \"$3\" was not caught (rc=$rc)"
        echo "$out" | sed 's/^/    /'
    fi
}
plant core_up core/planner.c db.h
plant shell_up shell/loop.c commands.h
plant gateway_up gateway/gateway.c commands.h

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
