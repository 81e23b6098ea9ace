#!/usr/bin/env bash
# install-deps.sh: installs the Debian packages that the build, the tests and the demo need.
# Idempotent: packages already present are left alone and apt is not touched at all when
# nothing is missing. As root it installs (after `apt-get update`); otherwise it prints the
# exact command to run and exits 1.
set -euo pipefail

PACKAGES=(
    # build
    build-essential cmake pkg-config
    libpq-dev libcurl4-openssl-dev libcjson-dev uuid-dev libmicrohttpd-dev
    # unit tests (Debian's check.pc links -lsubunit)
    check libsubunit-dev
    # integration tests and the demo: a private PostgreSQL server, pgbench, the fakes
    postgresql postgresql-contrib postgresql-client
    # SQL contract tests: pgTAP and its runner pg_prove
    postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
    python3 python3-psycopg2 python3-jsonschema python3-yaml
    # the cycle lease behind a transaction pooler (tests/e2e/test_18_cycle_lease.py)
    pgbouncer
    # process helpers used by the scripts
    procps util-linux ca-certificates valgrind
    # scripts/bench.sh: wall time and peak RSS (/usr/bin/time)
    time
    # metrics tests: promtool and a real Prometheus server, curl for the HTTP endpoint
    prometheus curl
    # style check and fuzzing (libFuzzer)
    clang-format
    clang libclang-rt-14-dev
    # the worker gateway (issue 13): OpenSSL's libcrypto for the token HMAC; Node.js for the
    # @supabase/supabase-js and s3rver tests (npm itself: see below)
    libssl-dev nodejs
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
# Debian's nodejs has npm as a package of its own; a nodejs that bundles npm needs none.
if ! command -v npm >/dev/null 2>&1; then
    missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run as root: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
