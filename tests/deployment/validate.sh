#!/usr/bin/env bash
# validate.sh: the deployment files' test (ctest `deployment`). Runs validate.py -- every YAML
# and JSON file parses; the Dockerfile, docker-compose, Kubernetes, ECS/EventBridge and Cloud Run
# manifests carry the fields their platform needs; every command they run exists in the binary
# (`ORCH_BINARY <cmd> --help` exits 0) and every environment variable they set is one the binary
# knows (`ORCH_BINARY help config`, WORKER_ENV_* allowed) -- then proves the cross-checks bite:
# a copy of deployment/ with a misspelt variable, and one with a misspelt command, must fail.
# Uses a schema validator (kubeconform, kubeval) when one is installed; Debian has neither.
# Needs ORCH_BINARY and ORCH_SOURCE_DIR (ctest sets both); /usr/bin/python3 with python3-yaml.
set -uo pipefail
bin=${ORCH_BINARY:?ORCH_BINARY is not set}
src=${ORCH_SOURCE_DIR:?ORCH_SOURCE_DIR is not set}
py=/usr/bin/python3
here="$src/tests/deployment"
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name, condition result (0 = ok)
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); echo "ok - $1"; else fail=$((fail + 1)); echo "not ok - $1"; fi
}

# 1. The static checks (they print their own ok/not ok lines and a count).
"$py" "$here/validate.py" --root "$src" --binary "$bin" >"$tmp/main.out" 2>&1
rc=$?
grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/main.out"
read -r p _ f _ < <(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/main.out" | tail -n 1 || echo "0 passed 1 failed")
pass=$((pass + ${p:-0}))
fail=$((fail + ${f:-1}))
[ $rc -ne 0 ] && [ "${f:-0}" -eq 0 ] && { fail=$((fail + 1)); echo "not ok - validate.py exited $rc"; }

# 2. The cross-checks must catch a typo: run validate.py on mutated copies of deployment/.
mutate() { # name, file (relative to deployment/), sed expression, text expected in the failure
    rm -rf "$tmp/dep"
    cp -r "$src/deployment" "$tmp/dep"
    sed -i "$3" "$tmp/dep/$2"
    if cmp -s "$src/deployment/$2" "$tmp/dep/$2"; then
        check "self-test '$1': the mutation applies" 1
        return
    fi
    "$py" "$here/validate.py" --root "$src" --binary "$bin" --deploy-dir "$tmp/dep" --skip-slow >"$tmp/mut.out" 2>&1
    local mrc=$?
    local named=1
    if [ $mrc -ne 0 ] && grep '^not ok' "$tmp/mut.out" | grep -q -- "$4"; then named=0; fi
    check "self-test '$1': validate.py fails and names $4" "$named"
}
mutate "misspelt variable in the ConfigMap" kubernetes/configmap.yaml \
    's/^  MAX_ACTIVE_GPUS:/  MAX_ACTIVE_GPU:/' MAX_ACTIVE_GPU
mutate "misspelt variable in the ECS task" aws/task-definition.json \
    's/"LOG_FORMAT"/"LOG_FROMAT"/' LOG_FROMAT
mutate "misspelt command in the CronJob" kubernetes/cronjob.yaml \
    's/args: \["single"\]/args: ["singel"]/' singel
mutate "unknown flag in the Cloud Run job" gcp/cloud-run-job.yaml \
    's/args: \["single"\]/args: ["single", "--dryrun"]/' --dryrun
mutate "misspelt command in the gateway Deployment" kubernetes/gateway.yaml \
    's/args: \["gateway"\]/args: ["gatewy"]/' gatewy
mutate "CronJob retries failed cycles" kubernetes/cronjob.yaml \
    's/backoffLimit: 0 /backoffLimit: 2 /' "backoffLimit 0"

# 3. A real schema validator, when one is installed (not packaged in Debian bookworm).
if command -v kubeconform >/dev/null 2>&1; then
    kubeconform -strict -summary -ignore-missing-schemas "$src"/deployment/kubernetes/*.yaml >"$tmp/kc.out" 2>&1
    check "kubeconform -strict accepts deployment/kubernetes" $?
elif command -v kubeval >/dev/null 2>&1; then
    kubeval --strict "$src"/deployment/kubernetes/*.yaml >"$tmp/kc.out" 2>&1
    check "kubeval --strict accepts deployment/kubernetes" $?
else
    echo "# note: no kubeconform/kubeval installed (neither is packaged in Debian); schema check skipped"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
