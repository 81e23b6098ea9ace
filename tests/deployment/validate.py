#!/usr/bin/python3
"""validate.py -- static checks of deployment/ against the built binary (run by validate.sh).

Parses every YAML and JSON file, checks the fields each platform needs (Kubernetes CronJob,
Job, Deployment, ConfigMap, Secret; docker-compose; the Dockerfile; the ECS task definition and
its EventBridge schedule; the Cloud Run jobs and deploy.sh), and cross-checks the manifests with
the binary: every command they run must answer `ORCH_BINARY <cmd> --help` with exit 0 (and every
--flag must appear in that help), every environment variable they set for the orchestrator must
be one that `ORCH_BINARY help config` lists (WORKER_ENV_* allowed). Prints one "ok - ..." or
"not ok - ..." line per check and a closing "N passed, M failed"; exits 1 on any failure.

Does not: talk to any cloud, registry or cluster, or modify any file.

  validate.py --root REPO --binary ORCH_BINARY [--deploy-dir DIR] [--skip-slow]
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

PY = "/usr/bin/python3"
SLOW_SKIPPED = False  # --skip-slow (validate.sh's mutation self-tests): no apt, shellcheck, stub run
RUNTIME_PACKAGES = {"libpq5", "libcurl4", "libcjson1", "libuuid1", "libmicrohttpd12",
                    "libssl3", "ca-certificates"}
# Shared objects of sanitizer builds (ORCH_SANITIZE=ON) are not runtime-image material.
SANITIZER_LIBS = re.compile(r"^lib(asan|ubsan|lsan|tsan)\.so")
# Variables the manifests must never carry as plain values (only via a secret store).
SECRET_VARS = re.compile(r"^(DATABASE_URL|RUNPOD_API_KEY|WORKER_ENV_.+|GATEWAY_JWT_SECRET|"
                         r"GATEWAY_DATABASE_URL|STORAGE_S3_ACCESS_KEY_ID|"
                         r"STORAGE_S3_SECRET_ACCESS_KEY|WORKER_TOKEN)$")
# Fargate task sizes: cpu units -> allowed memory (MiB).
FARGATE_SIZES = {
    "256": {512, 1024, 2048},
    "512": set(range(1024, 4097, 1024)),
    "1024": set(range(2048, 8193, 1024)),
    "2048": set(range(4096, 16385, 1024)),
    "4096": set(range(8192, 30721, 1024)),
}


class Results:
    """Collects check outcomes and prints them as they come."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("ok - %s" % name)
        else:
            self.failed += 1
            msg = "%s%s" % (name, (": " + detail) if detail else "")
            self.failures.append(msg)
            print("not ok - %s" % msg)
        return ok


# --------------------------------------------------------------------------------------------
# Loading


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that also accepts CloudFormation short-form tags (!Ref, !Sub, !GetAtt ...)."""


def _cfn_tag(loader, tag_suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    name = tag_suffix
    if name == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Ref": value} if name == "Ref" else {"Fn::" + name: value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    loader = CfnLoader if path.endswith(".cfn.yaml") else yaml.SafeLoader
    return [d for d in yaml.load_all(text, Loader=loader) if d is not None]


def dig(obj, *keys, default=None):
    for k in keys:
        if isinstance(obj, dict) and k in obj:
            obj = obj[k]
        elif isinstance(obj, list) and isinstance(k, int) and 0 <= k < len(obj):
            obj = obj[k]
        else:
            return default
    return obj


def quantity(q, kind):
    """Kubernetes quantity -> float (cores or bytes); None when unparsable."""
    s = str(q)
    m = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G)?", s)
    if not m:
        return None
    v = float(m.group(1))
    unit = m.group(2) or ""
    if kind == "cpu":
        return v / 1000 if unit == "m" else (v if unit == "" else None)
    mult = {"": 1, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4,
            "k": 1000, "M": 1000 ** 2, "G": 1000 ** 3}
    return v * mult[unit] if unit in mult else None


# --------------------------------------------------------------------------------------------
# What the binary knows


class Binary:
    def __init__(self, path):
        self.path = path
        out = subprocess.run([path, "help", "config"], capture_output=True, text=True,
                             timeout=30)
        self.help_config_rc = out.returncode
        self.env_names = set(re.findall(r"^  ([A-Z][A-Z0-9_]+)\s", out.stdout, re.M))
        self.worker_env = "WORKER_ENV_<NAME>" in out.stdout
        # Pool settings (issue 14): POOL_<NAME>_<SETTING>, the settings as the help lists them.
        m = re.search(r"POOL_<NAME>_<SETTING> \(([A-Z0-9_, <>]+)\)", out.stdout)
        self.pool_settings = [x.strip() for x in m.group(1).split(",")] if m else []
        self._help = {}

    def env_known(self, name):
        if name in self.env_names:
            return True
        for setting in self.pool_settings:
            if setting == "ENV_<VAR>":
                pat = r"POOL_[A-Z0-9_]+_ENV_[A-Za-z_][A-Za-z0-9_]*"
            else:
                pat = r"POOL_[A-Z0-9_]+_" + re.escape(setting)
            if re.fullmatch(pat, name):
                return True
        return self.worker_env and \
            re.fullmatch(r"WORKER_ENV_[A-Za-z_][A-Za-z0-9_]*", name) is not None

    def command_help(self, cmd):
        if cmd not in self._help:
            out = subprocess.run([self.path, cmd, "--help"], capture_output=True, text=True,
                                 timeout=30, env={"PATH": os.environ.get("PATH", "")})
            self._help[cmd] = (out.returncode, out.stdout + out.stderr)
        return self._help[cmd]


_text_cache = {}


def open_text_of(*argv):
    if argv not in _text_cache:
        _text_cache[argv] = subprocess.run(list(argv), capture_output=True, text=True,
                                           timeout=30).stdout
    return _text_cache[argv]


# --------------------------------------------------------------------------------------------
# Collected across files: (where, argv-after-entrypoint) and (where, env name)


class Uses:
    def __init__(self):
        self.commands = []   # (where, [cmd, args...])
        self.env = []        # (where, NAME)

    def add_cmd(self, where, argv):
        self.commands.append((where, [str(a) for a in argv]))

    def add_env(self, where, name):
        self.env.append((where, name))


# --------------------------------------------------------------------------------------------
# Parsing


def check_parse(r, deploy, docs):
    files = sorted(glob.glob(os.path.join(deploy, "**", "*"), recursive=True))
    yamls = [f for f in files if f.endswith((".yaml", ".yml"))]
    jsons = [f for f in files if f.endswith(".json")]
    r.check("deployment/ holds YAML and JSON files", len(yamls) >= 5 and len(jsons) >= 1,
            "%d yaml, %d json" % (len(yamls), len(jsons)))
    for f in yamls:
        rel = os.path.relpath(f, deploy)
        try:
            docs[rel] = load_yaml_docs(f)
            r.check("parses: %s (%d document(s))" % (rel, len(docs[rel])), len(docs[rel]) > 0)
        except yaml.YAMLError as e:
            r.check("parses: %s" % rel, False, str(e).replace("\n", " "))
    for f in jsons:
        rel = os.path.relpath(f, deploy)
        try:
            with open(f, encoding="utf-8") as fh:
                docs[rel] = [json.load(fh)]
            r.check("parses: %s" % rel, True)
        except ValueError as e:
            r.check("parses: %s" % rel, False, str(e))


# --------------------------------------------------------------------------------------------
# Dockerfile


def dockerfile_stages(text):
    """[(name, base, [instruction lines joined])]; ARG defaults substituted into FROM."""
    joined = re.sub(r"\\\n", " ", text)
    lines = [ln.strip() for ln in joined.splitlines()
             if ln.strip() and not ln.strip().startswith("#")]
    args = {}
    stages = []
    for ln in lines:
        word, _, rest = ln.partition(" ")
        word = word.upper()
        if word == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k.strip()] = v.strip()
        elif word == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else ""
            stages.append({"name": name, "base": base, "lines": []})
        elif stages:
            stages[-1]["lines"].append((word, rest))
    return stages


def check_dockerfile(r, root, deploy, binary, uses):
    path = os.path.join(deploy, "Dockerfile")
    if not r.check("Dockerfile exists", os.path.isfile(path)):
        return set()
    with open(path, encoding="utf-8") as f:
        stages = dockerfile_stages(f.read())
    names = {s["name"] for s in stages}
    r.check("Dockerfile is multi-stage with build and runtime stages",
            len(stages) >= 2 and "build" in names and "runtime" in names, str(names))
    r.check("every stage is based on debian:bookworm-slim",
            all(s["base"] == "debian:bookworm-slim" for s in stages),
            str([s["base"] for s in stages]))
    r.check("the last (default) stage is runtime", stages[-1]["name"] == "runtime")
    build = next((s for s in stages if s["name"] == "build"), None)
    runtime = next((s for s in stages if s["name"] == "runtime"), None)
    if build is None or runtime is None:
        return names
    brun = " ".join(rest for w, rest in build["lines"] if w == "RUN")
    r.check("build stage runs scripts/install-deps.sh", "scripts/install-deps.sh" in brun)
    # The CI configure line (scripts/test.sh): the same CMake options.
    with open(os.path.join(root, "scripts", "test.sh"), encoding="utf-8") as f:
        ci = f.read()
    ci_opts = set(re.findall(r"-D(?:CMAKE_BUILD_TYPE=Release|ORCH_WERROR=ON)", ci))
    r.check("build stage configures with CI's CMake options %s" % sorted(ci_opts),
            bool(ci_opts) and all(o in brun for o in ci_opts) and "cmake --build" in brun)
    rrun = " ".join(rest for w, rest in runtime["lines"] if w == "RUN")
    m = re.search(r"apt-get install (.*?)(?:&&|$)", rrun)
    pkgs = {p for p in (m.group(1).split() if m else []) if not p.startswith("-")}
    r.check("runtime stage installs only the runtime libraries and CA certificates",
            pkgs == RUNTIME_PACKAGES, "got %s" % sorted(pkgs))
    r.check("runtime apt-get uses --no-install-recommends and clears the lists",
            "--no-install-recommends" in rrun and "/var/lib/apt/lists" in rrun)
    if shutil.which("apt-cache") and not SLOW_SKIPPED:
        pol = subprocess.run(["apt-cache", "policy"] + sorted(pkgs), capture_output=True,
                             text=True).stdout
        known = set(re.findall(r"^(\S+?)(?::\w+)?:\n\s+Installed: .*\n\s+Candidate: (?!\(none\))",
                               pol, re.M))
        missing = sorted(pkgs - known)
        r.check("runtime packages exist in this Debian's archive", not missing, str(missing))
    # Every shared library the binary needs comes from a listed package (or libc6).
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                        open_text_of("readelf", "-d", binary.path))
    ldd = open_text_of("ldd", binary.path)
    unmet = []
    for lib in needed:
        if SANITIZER_LIBS.match(lib):
            continue
        m = re.search(r"^\s*%s => (\S+)" % re.escape(lib), ldd, re.M)
        if not m:
            unmet.append(lib + " (not resolved by ldd)")
            continue
        real = os.path.realpath(m.group(1))
        pkg = None
        for cand in (m.group(1), real, real.replace("/usr/lib/", "/lib/", 1)):
            out = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
            if out.returncode == 0:
                pkg = out.stdout.split(":")[0].strip()
                break
        if pkg is None:
            unmet.append(lib + " (no package owns %s)" % real)
        elif pkg not in pkgs and pkg != "libc6":
            unmet.append("%s from %s" % (lib, pkg))
    r.check("every NEEDED library of the binary (%s) comes from a runtime package"
            % ", ".join(needed), not unmet and bool(needed), str(unmet))
    user = [rest for w, rest in runtime["lines"] if w == "USER"]
    r.check("runtime runs as a numeric non-root user",
            bool(user) and re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user[-1]) is not None,
            str(user))
    ep = [rest for w, rest in runtime["lines"] if w == "ENTRYPOINT"]
    cmd = [rest for w, rest in runtime["lines"] if w == "CMD"]
    r.check('runtime ENTRYPOINT ["orchestrator"]', ep and json.loads(ep[-1]) == ["orchestrator"],
            str(ep))
    r.check('runtime CMD ["single"]', cmd and json.loads(cmd[-1]) == ["single"], str(cmd))
    if cmd:
        uses.add_cmd("Dockerfile CMD", json.loads(cmd[-1]))
    copies = [rest for w, rest in runtime["lines"] if w == "COPY"]
    r.check("runtime copies the binary from the build stage onto PATH",
            any("--from=build" in c and re.search(r"/usr/(local/)?bin/orchestrator$", c)
                for c in copies), str(copies))
    r.check("runtime carries sql/migrations in /usr/share/orchestrator/migrations",
            any(c.startswith("sql/migrations") and "/usr/share/orchestrator/migrations" in c
                for c in copies), str(copies))
    # Every path the build copies from the context exists.
    srcs = []
    for s in stages:
        for w, rest in s["lines"]:
            if w == "COPY" and "--from=" not in rest:
                srcs += rest.split()[:-1]
    absent = [p for p in srcs if not os.path.exists(os.path.join(root, p))]
    r.check("every COPY source exists in the repository", not absent, str(absent))
    return names


# --------------------------------------------------------------------------------------------
# docker-compose


def check_compose(r, root, docs, stage_names, binary, uses):
    key = next((k for k in docs if os.path.basename(k) in ("docker-compose.yml",
                                                            "docker-compose.yaml")), None)
    if not r.check("docker-compose.yml present", key is not None):
        return
    doc = docs[key][0]
    svcs = doc.get("services", {})
    r.check("compose services: postgres, migrate, orchestrator, fake-runpod",
            {"postgres", "migrate", "orchestrator", "fake-runpod"} <= set(svcs), str(list(svcs)))
    pg = svcs.get("postgres", {})
    r.check("postgres has a healthcheck", "healthcheck" in pg)
    for name, svc in svcs.items():
        b = svc.get("build")
        if isinstance(b, dict):
            r.check("compose %s builds an existing Dockerfile stage (%s)"
                    % (name, b.get("target")), b.get("target") in stage_names and
                    os.path.isfile(os.path.join(root, b.get("dockerfile", ""))))
    orch_svcs = {n: s for n, s in svcs.items()
                 if dig(s, "build", "target") == "runtime" or
                 str(s.get("image", "")).startswith("orchestrator:")}
    r.check("compose runs the orchestrator image in migrate and orchestrator",
            {"migrate", "orchestrator"} <= set(orch_svcs), str(list(orch_svcs)))
    for n, s in orch_svcs.items():
        c = s.get("command", [])
        c = c.split() if isinstance(c, str) else c
        uses.add_cmd("compose %s" % n, c)
        env = s.get("environment", {})
        names = list(env) if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        for e in names:
            uses.add_env("compose %s" % n, e)
        r.check("compose %s reads secrets from the .env file" % n,
                s.get("env_file") in (".env", [".env"]) or
                any(isinstance(x, dict) and x.get("path") == ".env"
                    for x in (s.get("env_file") or [])))
        if isinstance(env, dict):
            inline = [k for k, v in env.items() if SECRET_VARS.match(k) and
                      "${" not in str(v) and not str(v).startswith("$")]
            # A DATABASE_URL built from ${POSTGRES_PASSWORD} is fine; a literal password is not.
            r.check("compose %s has no literal secret values" % n, not inline, str(inline))
    m = svcs.get("migrate", {})
    r.check("compose migrate runs `migrate` once after postgres is healthy",
            m.get("command") in (["migrate"], "migrate") and m.get("restart") in ("no", None) and
            dig(m, "depends_on", "postgres", "condition") == "service_healthy")
    o = svcs.get("orchestrator", {})
    r.check("compose orchestrator runs `continuous` after migrate completed",
            o.get("command") in (["continuous"], "continuous") and
            dig(o, "depends_on", "migrate", "condition") == "service_completed_successfully")
    oenv = o.get("environment", {}) if isinstance(o.get("environment"), dict) else {}
    port = str(oenv.get("METRICS_PORT", ""))
    r.check("compose orchestrator sets METRICS_PORT=9100", port == "9100", port)
    # The port is published by the service whose network namespace the orchestrator uses.
    net = o.get("network_mode", "")
    owner = svcs.get(net.split(":", 1)[1], {}) if net.startswith("service:") else o
    published = [str(p) for p in owner.get("ports", [])]
    r.check("compose publishes the metrics port %s" % port,
            any(p.endswith(":%s" % port) or p == port for p in published), str(published))
    f = svcs.get("fake-runpod", {})
    fargs = f.get("command", [])
    fargs = fargs.split() if isinstance(fargs, str) else [str(a) for a in fargs]
    helptext = subprocess.run([PY, os.path.join(root, "tests", "fakes", "fake_runpod.py"),
                               "--help"], capture_output=True, text=True, timeout=30).stdout
    flags = [a for a in fargs if a.startswith("--")]
    unknown = [a for a in flags if not re.search(r"(^|\s|\[)%s\b" % re.escape(a), helptext)]
    r.check("compose fake-runpod flags %s are in fake_runpod.py --help" % flags,
            bool(flags) and not unknown, str(unknown))
    fport = fargs[fargs.index("--port") + 1] if "--port" in fargs else None
    r.check("compose points RUNPOD_API_BASE_URL at the fake (port %s)" % fport,
            fport is not None and
            str(oenv.get("RUNPOD_API_BASE_URL", "")).endswith(":%s" % fport))
    boot = fargs[fargs.index("--boot-cmd") + 1] if "--boot-cmd" in fargs else ""
    r.check("compose fake boot command runs the fake worker",
            "fake_worker.py" in boot and
            os.path.isfile(os.path.join(root, "tests", "fakes", "fake_worker.py")))
    r.check("compose passes the workers a DATABASE_URL (WORKER_ENV_DATABASE_URL)",
            "WORKER_ENV_DATABASE_URL" in oenv)
    g = svcs.get("gateway", {})
    genv = g.get("environment", {}) if isinstance(g.get("environment"), dict) else {}
    r.check("compose gateway runs `gateway` from the orchestrator image",
            "gateway" in orch_svcs and g.get("command") in (["gateway"], "gateway"))
    gport = str(genv.get("GATEWAY_PORT", ""))
    r.check("compose gateway publishes GATEWAY_PORT %s" % gport,
            gport not in ("", "0") and any(str(p).endswith(":%s" % gport)
                                           for p in g.get("ports", [])))
    r.check("compose gateway connects as its own role, created after the migrations",
            "gateway:" in str(genv.get("GATEWAY_DATABASE_URL", "")) and
            dig(g, "depends_on", "gateway-role", "condition") ==
            "service_completed_successfully" and
            "orchestrator_worker" in str(svcs.get("gateway-role", {}).get("command")))
    r.check("compose orchestrator points the pods at the gateway (GATEWAY_PUBLIC_URL)",
            str(oenv.get("GATEWAY_PUBLIC_URL", "")).endswith(":%s" % gport) and
            "GATEWAY_JWT_SECRET" in oenv)


# --------------------------------------------------------------------------------------------
# Kubernetes


def k8s_pod_specs(doc):
    kind = doc.get("kind")
    if kind == "CronJob":
        return [dig(doc, "spec", "jobTemplate", "spec", "template", "spec")]
    if kind in ("Job", "Deployment", "StatefulSet", "DaemonSet"):
        return [dig(doc, "spec", "template", "spec")]
    return []


def check_container_security(r, where, pod, c):
    psc = pod.get("securityContext", {}) or {}
    sc = c.get("securityContext", {}) or {}
    non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True
    uid = sc.get("runAsUser", psc.get("runAsUser"))
    r.check("%s: runAsNonRoot true and runAsUser non-zero" % where,
            non_root and (uid is None or (isinstance(uid, int) and uid > 0)))
    r.check("%s: readOnlyRootFilesystem true" % where, sc.get("readOnlyRootFilesystem") is True)
    r.check("%s: allowPrivilegeEscalation false" % where,
            sc.get("allowPrivilegeEscalation") is False)
    r.check("%s: capabilities drop ALL" % where,
            "ALL" in (dig(sc, "capabilities", "drop", default=[]) or []))
    res = c.get("resources", {}) or {}
    ok = True
    detail = ""
    for k in ("cpu", "memory"):
        req = quantity(dig(res, "requests", k, default=""), k)
        lim = quantity(dig(res, "limits", k, default=""), k)
        if req is None or lim is None or req <= 0 or req > lim:
            ok = False
            detail += "%s request %s limit %s; " % (k, dig(res, "requests", k),
                                                   dig(res, "limits", k))
    r.check("%s: resources requests and limits (cpu, memory), request <= limit" % where,
            ok, detail)


def check_kubernetes(r, docs, binary, uses):
    kdocs = [(k, d) for k, ds in docs.items() if k.startswith("kubernetes" + os.sep)
             for d in ds if isinstance(d, dict) and "kind" in d]
    by_kind = {}
    for k, d in kdocs:
        by_kind.setdefault(d["kind"], []).append((k, d))
    for kind in ("CronJob", "Job", "Deployment", "ConfigMap", "Secret"):
        r.check("kubernetes: a %s manifest" % kind, kind in by_kind)
    cms = {d["metadata"]["name"]: d for _, d in by_kind.get("ConfigMap", [])}
    secrets = {d["metadata"]["name"]: d for _, d in by_kind.get("Secret", [])}
    for name, s in secrets.items():
        vals = dict(s.get("stringData", {}) or {})
        vals.update(s.get("data", {}) or {})
        bad = [k for k, v in vals.items() if "CHANGE_ME" not in str(v)]
        r.check("kubernetes Secret %s holds placeholder values only" % name,
                bool(vals) and not bad, str(bad))
    for name, cm in cms.items():
        data = cm.get("data") or {}
        r.check("kubernetes ConfigMap %s: every value is a string" % name,
                all(isinstance(v, str) for v in data.values()),
                str([k for k, v in data.items() if not isinstance(v, str)]))
        r.check("kubernetes ConfigMap %s carries no secret" % name,
                not any(SECRET_VARS.match(k) for k in data))

    for kind in ("CronJob", "Job", "Deployment"):
        for fname, d in by_kind.get(kind, []):
            dname = "%s %s" % (kind, d["metadata"]["name"])
            for pod in k8s_pod_specs(d):
                if pod is None:
                    r.check("%s: has a pod template" % dname, False)
                    continue
                conts = [("container", c) for c in pod.get("containers", [])] + \
                        [("initContainer", c) for c in pod.get("initContainers", [])]
                for role, c in conts:
                    where = "%s %s %s" % (dname, role, c.get("name"))
                    check_container_security(r, where, pod, c)
                    cmd = c.get("command")
                    r.check("%s: keeps the image ENTRYPOINT (args, no command)" % where,
                            cmd is None or (cmd and cmd[0].endswith("orchestrator")))
                    args = (cmd[1:] if cmd else []) + list(c.get("args", []) or [])
                    uses.add_cmd(where, args)
                    for e in c.get("env", []) or []:
                        uses.add_env(where, e["name"])
                        ref = dig(e, "valueFrom", "secretKeyRef")
                        if ref:
                            sec = secrets.get(ref.get("name"))
                            r.check("%s: secretKeyRef %s/%s exists in the example Secret"
                                    % (where, ref.get("name"), ref.get("key")),
                                    sec is not None and ref.get("key") in
                                    (sec.get("stringData") or sec.get("data") or {}))
                        if SECRET_VARS.match(e["name"]):
                            r.check("%s: %s comes from a Secret" % (where, e["name"]),
                                    ref is not None)
                    for ef in c.get("envFrom", []) or []:
                        prefix = ef.get("prefix", "")
                        if "configMapRef" in ef:
                            cm = cms.get(ef["configMapRef"]["name"])
                            r.check("%s: envFrom ConfigMap %s exists" %
                                    (where, ef["configMapRef"]["name"]), cm is not None)
                            for k in (cm or {}).get("data", {}) or {}:
                                uses.add_env(where + " (ConfigMap)", prefix + k)
                        if "secretRef" in ef:
                            sec = secrets.get(ef["secretRef"]["name"])
                            r.check("%s: envFrom Secret %s has an example manifest" %
                                    (where, ef["secretRef"]["name"]), sec is not None)
                            vals = dict((sec or {}).get("stringData", {}) or {})
                            vals.update((sec or {}).get("data", {}) or {})
                            for k in vals:
                                uses.add_env(where + " (Secret)", prefix + k)
                if kind == "Deployment" and not is_gateway(pod):
                    check_probes(r, dname, pod, cms)
            if kind == "CronJob":
                spec = d.get("spec", {})
                js = dig(spec, "jobTemplate", "spec", default={})
                r.check("%s: concurrencyPolicy Forbid" % dname,
                        spec.get("concurrencyPolicy") == "Forbid")
                r.check("%s: schedule has 5 fields" % dname,
                        len(str(spec.get("schedule", "")).split()) == 5)
                sd = spec.get("startingDeadlineSeconds")
                r.check("%s: startingDeadlineSeconds set (1..59 for a per-minute schedule)"
                        % dname, isinstance(sd, int) and 0 < sd < 60, str(sd))
                ad = js.get("activeDeadlineSeconds")
                r.check("%s: activeDeadlineSeconds set" % dname, isinstance(ad, int) and ad > 0)
                r.check("%s: backoffLimit 0" % dname, js.get("backoffLimit") == 0)
                r.check("%s: restartPolicy Never" % dname,
                        dig(js, "template", "spec", "restartPolicy") == "Never")
                r.check("%s: runs `single`" % dname,
                        dig(js, "template", "spec", "containers", 0, "args") == ["single"])
            if kind == "Job":
                r.check("%s: runs `migrate`" % dname,
                        dig(d, "spec", "template", "spec", "containers", 0, "args") ==
                        ["migrate"])
                r.check("%s: backoffLimit and activeDeadlineSeconds set" % dname,
                        isinstance(dig(d, "spec", "backoffLimit"), int) and
                        isinstance(dig(d, "spec", "activeDeadlineSeconds"), int))
            if kind == "Deployment" and is_gateway(dig(d, "spec", "template", "spec",
                                                        default={})):
                check_k8s_gateway(r, dname, d, by_kind.get("Service", []))
            elif kind == "Deployment":
                r.check("%s: replicas 1" % dname, dig(d, "spec", "replicas") == 1)
                pod = dig(d, "spec", "template", "spec", default={})
                r.check("%s: runs `continuous`" % dname,
                        dig(pod, "containers", 0, "args", 0) == "continuous")
                r.check("%s: migrates first (init container running `migrate`)" % dname,
                        any(c.get("args") == ["migrate"] for c in pod.get("initContainers", [])))
                labels = dig(d, "spec", "template", "metadata", "labels", default={})
                r.check("%s: selector matches the pod labels" % dname,
                        dig(d, "spec", "selector", "matchLabels", default={}).items() <=
                        labels.items())
    for fname, d in by_kind.get("Service", []):
        sel = dig(d, "spec", "selector", default={})
        r.check("Service %s selects the Deployment's pods" % d["metadata"]["name"],
                any(sel.items() <= dig(dep, "spec", "template", "metadata", "labels",
                                       default={}).items()
                    for _, dep in by_kind.get("Deployment", [])))


def is_gateway(pod):
    """A pod whose first container runs `orchestrator gateway` (issue 13)."""
    return (dig(pod, "containers", 0, "args", default=[]) or [])[:1] == ["gateway"]


def env_value(c, name):
    for e in c.get("env", []) or []:
        if e.get("name") == name:
            return e.get("value")
    return None


def check_k8s_gateway(r, dname, d, services):
    """The worker gateway's Deployment: runs `gateway` on GATEWAY_PORT, probes /healthz there,
    its database URL and token secret come from a Secret, STORAGE_DIR is a volume (the root file
    system is read-only), and a Service routes to its port."""
    pod = dig(d, "spec", "template", "spec", default={})
    c = dig(pod, "containers", 0, default={})
    r.check("%s: runs `gateway`" % dname, c.get("args") == ["gateway"])
    r.check("%s: replicas >= 1 (stateless)" % dname,
            isinstance(dig(d, "spec", "replicas"), int) and dig(d, "spec", "replicas") >= 1)
    gport = env_value(c, "GATEWAY_PORT")
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", []) or []}
    r.check("%s: GATEWAY_PORT set and a containerPort of that number" % dname,
            gport not in (None, "", "0") and str(gport) in {str(v) for v in ports.values()},
            "GATEWAY_PORT %s ports %s" % (gport, ports))
    for probe in ("livenessProbe", "readinessProbe"):
        hg = dig(c, probe, "httpGet", default={})
        port = hg.get("port")
        num = ports.get(port) if isinstance(port, str) else port
        r.check("%s: %s GET /healthz on GATEWAY_PORT" % (dname, probe),
                hg.get("path") == "/healthz" and str(num) == str(gport))
    names = {e["name"] for e in c.get("env", []) or [] if dig(e, "valueFrom", "secretKeyRef")}
    r.check("%s: GATEWAY_DATABASE_URL and GATEWAY_JWT_SECRET come from a Secret" % dname,
            {"GATEWAY_DATABASE_URL", "GATEWAY_JWT_SECRET"} <= names, str(sorted(names)))
    sdir = env_value(c, "STORAGE_DIR") or "/var/lib/orchestrator/storage"
    mounts = [m.get("mountPath") for m in c.get("volumeMounts", []) or []]
    r.check("%s: STORAGE_DIR (%s) is a mounted volume" % (dname, sdir), sdir in mounts,
            str(mounts))
    labels = dig(d, "spec", "template", "metadata", "labels", default={})
    routed = []
    for _, svc in services:
        sel = dig(svc, "spec", "selector", default={})
        if sel and sel.items() <= labels.items():
            for p in dig(svc, "spec", "ports", default=[]) or []:
                t = p.get("targetPort")
                routed.append(str(ports.get(t, t) if isinstance(t, str) else t))
    r.check("%s: a Service routes to GATEWAY_PORT" % dname, str(gport) in routed, str(routed))


def check_probes(r, dname, pod, cms):
    c = dig(pod, "containers", 0, default={})
    env = {e["name"]: e.get("value") for e in c.get("env", []) or []}
    mport = env.get("METRICS_PORT")
    if mport is None:
        for ef in c.get("envFrom", []) or []:
            name = dig(ef, "configMapRef", "name")
            if name and name in cms:
                mport = (cms[name].get("data") or {}).get("METRICS_PORT", mport)
    r.check("%s: METRICS_PORT set (non-zero)" % dname, mport not in (None, "", "0"), str(mport))
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", []) or []}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        hg = dig(c, probe, "httpGet", default={})
        port = hg.get("port")
        port_num = ports.get(port) if isinstance(port, str) else port
        r.check("%s: %s GET %s on the metrics port (%s)" % (dname, probe, path, mport),
                hg.get("path") == path and str(port_num) == str(mport),
                "path %s port %s -> %s" % (hg.get("path"), port, port_num))


# --------------------------------------------------------------------------------------------
# AWS


def check_aws(r, docs, binary, uses):
    td = docs.get(os.path.join("aws", "task-definition.json"), [None])[0]
    if r.check("aws: task-definition.json present", isinstance(td, dict)):
        r.check("aws task: Fargate, awsvpc",
                "FARGATE" in td.get("requiresCompatibilities", []) and
                td.get("networkMode") == "awsvpc")
        cpu, mem = str(td.get("cpu")), td.get("memory")
        r.check("aws task: valid Fargate size (cpu %s, memory %s)" % (cpu, mem),
                cpu in FARGATE_SIZES and str(mem).isdigit() and int(mem) in FARGATE_SIZES[cpu])
        r.check("aws task: executionRoleArn set (needed for secrets and awslogs)",
                str(td.get("executionRoleArn", "")).startswith("arn:aws:iam::"))
        for c in td.get("containerDefinitions", []):
            where = "aws container %s" % c.get("name")
            user = str(c.get("user", ""))
            r.check("%s: non-root numeric user" % where,
                    re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user) is not None, user)
            r.check("%s: readonlyRootFilesystem, not privileged" % where,
                    c.get("readonlyRootFilesystem") is True and not c.get("privileged"))
            r.check("%s: drops ALL capabilities" % where,
                    "ALL" in dig(c, "linuxParameters", "capabilities", "drop", default=[]))
            lc = c.get("logConfiguration", {})
            r.check("%s: awslogs log driver with group, region, stream prefix" % where,
                    lc.get("logDriver") == "awslogs" and
                    {"awslogs-group", "awslogs-region", "awslogs-stream-prefix"} <=
                    set(lc.get("options", {})))
            ep = c.get("entryPoint") or ["orchestrator"]
            r.check("%s: entryPoint ends with orchestrator" % where,
                    ep[-1] == "orchestrator", str(ep))
            uses.add_cmd(where, c.get("command", []))
            r.check("%s: memory limit within the task's" % where,
                    int(c.get("memory", 0)) <= int(mem) and
                    int(c.get("memoryReservation", 0)) <= int(c.get("memory", mem)))
            plain = [e["name"] for e in c.get("environment", [])]
            for n in plain:
                uses.add_env(where, n)
            r.check("%s: no secret in plaintext environment" % where,
                    not [n for n in plain if SECRET_VARS.match(n)])
            for s in c.get("secrets", []):
                uses.add_env(where + " (secrets)", s["name"])
                r.check("%s: secret %s valueFrom Secrets Manager or SSM" % (where, s["name"]),
                        re.match(r"arn:aws:(secretsmanager|ssm):", s.get("valueFrom", ""))
                        is not None)
            names = {s["name"] for s in c.get("secrets", [])}
            r.check("%s: DATABASE_URL and RUNPOD_API_KEY come from secrets" % where,
                    {"DATABASE_URL", "RUNPOD_API_KEY"} <= names)
    templates = {k: d[0] for k, d in docs.items() if k.startswith("aws" + os.sep) and
                 k.endswith(".yaml") and d and isinstance(d[0], dict)}
    for k, t in templates.items():
        check_cfn_refs(r, k, t)
    gw = next((t for t in templates.values() if any(
        v.get("Type") == "AWS::ECS::Service" for v in (t.get("Resources") or {}).values())), None)
    if r.check("aws: gateway service template (AWS::ECS::Service) present", gw is not None):
        check_aws_gateway(r, gw, uses)
    key = next((k for k, t in templates.items() if any(
        v.get("Type") == "AWS::Scheduler::Schedule"
        for v in (t.get("Resources") or {}).values())), None)
    if not r.check("aws: EventBridge Scheduler template present", key is not None):
        return
    tpl = docs[key][0]
    res = tpl.get("Resources", {})
    scheds = [v for v in res.values() if v.get("Type") == "AWS::Scheduler::Schedule"]
    if not r.check("aws: an AWS::Scheduler::Schedule resource", len(scheds) == 1):
        return
    p = scheds[0]["Properties"]
    expr = p.get("ScheduleExpression", "")
    r.check("aws schedule: every minute (%s)" % expr,
            expr in ("rate(1 minute)", "cron(* * * * ? *)"))
    r.check('aws schedule: FlexibleTimeWindow Mode "OFF" (a string, not YAML false)',
            dig(p, "FlexibleTimeWindow", "Mode") == "OFF")
    r.check("aws schedule: no retries of a failed run",
            dig(p, "Target", "RetryPolicy", "MaximumRetryAttempts") == 0)
    ecs = dig(p, "Target", "EcsParameters", default={})
    r.check("aws schedule: Fargate ECS target with a task definition and awsvpc network",
            ecs.get("LaunchType") == "FARGATE" and "TaskDefinitionArn" in ecs and
            dig(ecs, "NetworkConfiguration", "AwsvpcConfiguration", "Subnets") is not None)



def check_cfn_refs(r, name, tpl):
    res = tpl.get("Resources", {})
    declared = set(tpl.get("Parameters", {})) | set(res) | {"AWS::Region", "AWS::AccountId",
                                                              "AWS::StackName", "AWS::Partition"}
    refs = []

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "Ref":
                    refs.append(v)
                elif k == "Fn::GetAtt":
                    refs.append(v[0] if isinstance(v, list) else str(v).split(".")[0])
                elif k == "Fn::Sub" and isinstance(v, str):
                    refs.extend(x.split(".")[0] for x in re.findall(r"\$\{([^}!]+)\}", v))
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(res)
    walk(tpl.get("Outputs", {}))
    undeclared = sorted({x for x in refs if x not in declared})
    r.check("aws template %s: every Ref/GetAtt/Sub names a declared parameter or resource"
            % name, not undeclared, str(undeclared))


def check_aws_gateway(r, tpl, uses):
    """The gateway's ECS service: Fargate task running `gateway` as a non-root user with a
    read-only root file system, secrets from Secrets Manager, the load balancer on
    GATEWAY_PORT, STORAGE_DIR on a task volume."""
    res = tpl.get("Resources", {})
    tds = [v.get("Properties", {}) for v in res.values()
           if v.get("Type") == "AWS::ECS::TaskDefinition"]
    svcs = [v.get("Properties", {}) for v in res.values() if v.get("Type") == "AWS::ECS::Service"]
    if not r.check("aws gateway: one task definition and one service",
                   len(tds) == 1 and len(svcs) == 1):
        return
    td, svc = tds[0], svcs[0]
    cpu, mem = str(td.get("Cpu")), td.get("Memory")
    r.check("aws gateway task: Fargate, awsvpc, valid size (cpu %s, memory %s)" % (cpu, mem),
            "FARGATE" in td.get("RequiresCompatibilities", []) and
            td.get("NetworkMode") == "awsvpc" and cpu in FARGATE_SIZES and
            str(mem).isdigit() and int(mem) in FARGATE_SIZES[cpu])
    c = (td.get("ContainerDefinitions") or [{}])[0]
    where = "aws gateway container %s" % c.get("Name")
    uses.add_cmd(where, c.get("Command", []))
    r.check("%s: runs `gateway`" % where, c.get("Command") == ["gateway"])
    r.check("%s: non-root numeric user, read-only root, not privileged, drops ALL" % where,
            re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", str(c.get("User", ""))) is not None and
            c.get("ReadonlyRootFilesystem") is True and not c.get("Privileged") and
            "ALL" in dig(c, "LinuxParameters", "Capabilities", "Drop", default=[]))
    env = {e["Name"]: e.get("Value") for e in c.get("Environment", [])}
    for n in env:
        uses.add_env(where, n)
    r.check("%s: no secret in plaintext environment" % where,
            not [n for n in env if SECRET_VARS.match(n)])
    secrets = {x["Name"] for x in c.get("Secrets", [])}
    for n in secrets:
        uses.add_env(where + " (secrets)", n)
    r.check("%s: GATEWAY_DATABASE_URL and GATEWAY_JWT_SECRET from secrets" % where,
            {"GATEWAY_DATABASE_URL", "GATEWAY_JWT_SECRET"} <= secrets)
    gport = str(env.get("GATEWAY_PORT"))
    cports = {str(p.get("ContainerPort")) for p in c.get("PortMappings", [])}
    lbs = {str(lb.get("ContainerPort")) for lb in svc.get("LoadBalancers", [])}
    r.check("%s: GATEWAY_PORT %s mapped and behind the load balancer" % (where, gport),
            gport in cports and gport in lbs, "ports %s lb %s" % (cports, lbs))
    sdir = env.get("STORAGE_DIR") or "/var/lib/orchestrator/storage"
    r.check("%s: STORAGE_DIR on a task volume" % where,
            sdir in [m.get("ContainerPath") for m in c.get("MountPoints", [])])
    r.check("aws gateway service: Fargate, DesiredCount >= 1",
            svc.get("LaunchType") == "FARGATE" and int(svc.get("DesiredCount", 0)) >= 1)


# --------------------------------------------------------------------------------------------
# Google Cloud


def check_gcp(r, root, deploy, docs, binary, uses):
    jobs = [(k, d) for k, ds in docs.items() if k.startswith("gcp" + os.sep)
            for d in ds if isinstance(d, dict) and d.get("kind") == "Job"]
    r.check("gcp: Cloud Run jobs for the cycle and for migrate", len(jobs) >= 2)
    args_seen = set()
    for k, d in jobs:
        where = "gcp %s" % d["metadata"]["name"]
        r.check("%s: apiVersion run.googleapis.com/v1" % where,
                d.get("apiVersion") == "run.googleapis.com/v1")
        tspec = dig(d, "spec", "template", "spec", default={})
        r.check("%s: one task at a time (taskCount 1, parallelism 1)" % where,
                tspec.get("taskCount") == 1 and tspec.get("parallelism") == 1)
        inner = dig(tspec, "template", "spec", default={})
        r.check("%s: timeoutSeconds and maxRetries set" % where,
                isinstance(inner.get("timeoutSeconds"), int) and
                isinstance(inner.get("maxRetries"), int))
        for c in inner.get("containers", []):
            args = c.get("args", [])
            args_seen.add(args[0] if args else "")
            uses.add_cmd(where, args)
            if args[:1] == ["single"]:
                r.check("%s: a failed cycle is not retried (maxRetries 0)" % where,
                        inner.get("maxRetries") == 0)
            for e in c.get("env", []):
                uses.add_env(where, e["name"])
                if SECRET_VARS.match(e["name"]):
                    r.check("%s: %s comes from Secret Manager" % (where, e["name"]),
                            dig(e, "valueFrom", "secretKeyRef", "key") is not None)
            mem = quantity(dig(c, "resources", "limits", "memory", default=""), "memory")
            r.check("%s: memory limit >= Cloud Run's 512Mi minimum" % where,
                    mem is not None and mem >= 512 * 1024 ** 2)
    r.check("gcp: jobs run `single` and `migrate`", {"single", "migrate"} <= args_seen,
            str(args_seen))
    services = [(k, d) for k, ds in docs.items() if k.startswith("gcp" + os.sep)
                for d in ds if isinstance(d, dict) and d.get("kind") == "Service"]
    r.check("gcp: a Cloud Run service for the worker gateway", len(services) >= 1)
    for k, d in services:
        where = "gcp service %s" % d["metadata"]["name"]
        r.check("%s: apiVersion serving.knative.dev/v1" % where,
                d.get("apiVersion") == "serving.knative.dev/v1")
        c = dig(d, "spec", "template", "spec", "containers", 0, default={})
        uses.add_cmd(where, c.get("args", []))
        r.check("%s: runs `gateway`" % where, c.get("args") == ["gateway"])
        for e in c.get("env", []):
            uses.add_env(where, e["name"])
            if SECRET_VARS.match(e["name"]):
                r.check("%s: %s comes from Secret Manager" % (where, e["name"]),
                        dig(e, "valueFrom", "secretKeyRef", "key") is not None)
        cport = str(dig(c, "ports", 0, "containerPort"))
        r.check("%s: GATEWAY_PORT is the containerPort (%s)" % (where, cport),
                str(env_value(c, "GATEWAY_PORT")) == cport)
        r.check("%s: probes GET /healthz" % where,
                dig(c, "livenessProbe", "httpGet", "path") == "/healthz")
        mem = quantity(dig(c, "resources", "limits", "memory", default=""), "memory")
        r.check("%s: memory limit >= Cloud Run's 512Mi minimum" % where,
                mem is not None and mem >= 512 * 1024 ** 2)
    script = os.path.join(deploy, "gcp", "deploy.sh")
    if not r.check("gcp: deploy.sh present", os.path.isfile(script)):
        return
    r.check("gcp deploy.sh: bash -n", subprocess.run(["bash", "-n", script]).returncode == 0)
    if SLOW_SKIPPED:
        return
    if shutil.which("shellcheck"):
        out = subprocess.run(["shellcheck", script], capture_output=True, text=True)
        r.check("gcp deploy.sh: shellcheck clean", out.returncode == 0, out.stdout[-400:])
    # Run it against a stub gcloud that records each call and keeps the rendered YAML.
    with tempfile.TemporaryDirectory() as tmp:
        stub = os.path.join(tmp, "gcloud")
        with open(stub, "w") as f:
            f.write("#!/usr/bin/env bash\n"
                    "printf '%%s\\n' \"$*\" >> %s/calls\n"
                    "if [ \"$1 $2 $3\" = 'run jobs replace' ]; then "
                    "cp \"$4\" %s/rendered-$(basename \"$4\"); fi\n"
                    "[ \"$1 $2 $3\" = 'scheduler jobs describe' ] && exit 1\n"
                    "exit 0\n" % (tmp, tmp))
        os.chmod(stub, 0o755)
        env = dict(os.environ, PATH=tmp + ":" + os.environ.get("PATH", ""),
                   PROJECT_ID="proj-x", REGION="europe-west4",
                   IMAGE="europe-west4-docker.pkg.dev/proj-x/orch/orchestrator:9.9.9")
        out = subprocess.run(["bash", script], capture_output=True, text=True, env=env,
                             timeout=60)
        r.check("gcp deploy.sh: runs to the end with a stub gcloud", out.returncode == 0,
                out.stderr[-400:])
        calls = open(os.path.join(tmp, "calls")).read().splitlines() \
            if os.path.exists(os.path.join(tmp, "calls")) else []
        idx = {name: next((i for i, c in enumerate(calls) if c.startswith(name)), -1)
               for name in ("run jobs replace", "run jobs execute orchestrator-migrate",
                            "scheduler jobs create http")}
        r.check("gcp deploy.sh: migrates (execute --wait) before scheduling",
                0 <= idx["run jobs execute orchestrator-migrate"] <
                idx["scheduler jobs create http"] and
                "--wait" in calls[idx["run jobs execute orchestrator-migrate"]], str(calls))
        sched = calls[idx["scheduler jobs create http"]] if idx["scheduler jobs create http"] \
            >= 0 else ""
        r.check("gcp deploy.sh: scheduler every minute, POST jobs/orchestrator:run, no retries",
                "--schedule * * * * *" in sched and "jobs/orchestrator:run" in sched and
                "--http-method POST" in sched and "--max-retry-attempts 0" in sched, sched)
        for rendered in sorted(glob.glob(os.path.join(tmp, "rendered-*"))):
            text = open(rendered).read()
            ok = True
            try:
                yaml.safe_load(text)
            except yaml.YAMLError:
                ok = False
            r.check("gcp deploy.sh: %s renders to YAML without placeholders"
                    % os.path.basename(rendered)[9:],
                    ok and not re.search(r"PROJECT_ID|REGION-docker|:REGION:", text) and
                    "orchestrator:9.9.9" in text)


# --------------------------------------------------------------------------------------------
# Cross-checks with the binary


def check_binary_uses(r, binary, uses):
    r.check("binary: `help config` lists the variables", binary.help_config_rc == 0 and
            len(binary.env_names) > 20, "%d names" % len(binary.env_names))
    cmds = {}
    for where, argv in uses.commands:
        if not argv:
            r.check("%s: names a command" % where, False)
            continue
        cmds.setdefault(argv[0], []).append((where, argv))
    for cmd in sorted(cmds):
        rc, text = binary.command_help(cmd)
        r.check("command `%s` (used by %d manifest(s)) exists: `orchestrator %s --help` exits 0"
                % (cmd, len(cmds[cmd]), cmd), rc == 0, "exit %d" % rc)
        flags = sorted({a for _, argv in cmds[cmd] for a in argv[1:] if a.startswith("--")})
        if flags:
            unknown = [f for f in flags if f not in text]
            r.check("command `%s` accepts %s" % (cmd, flags), not unknown, str(unknown))
    names = {}
    for where, name in uses.env:
        names.setdefault(name, []).append(where)
    unknown = {n: w for n, w in names.items() if not binary.env_known(n)}
    r.check("all %d environment variable names the manifests set are known to the binary"
            % len(names), not unknown,
            "; ".join("%s (in %s)" % (n, ", ".join(sorted(set(w)))) for n, w in
                      sorted(unknown.items())))


def check_env_example(r, root, binary):
    path = os.path.join(root, "env.example")
    names = re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", open(path).read(), re.M)
    unknown = [n for n in names if not binary.env_known(n)]
    r.check("env.example (the .env template) names only known variables", not unknown,
            str(unknown))


def check_worker_entrypoint(r, deploy):
    """deployment/worker/entrypoint.sh, run against a stub worker.py: the flags Headless-Wan2GP
    needs, --supabase-url and --supabase-anon-key always, no service-role key left."""
    script = os.path.join(deploy, "worker", "entrypoint.sh")
    if not r.check("worker: entrypoint.sh present", os.path.isfile(script)):
        return
    r.check("worker entrypoint: bash -n", subprocess.run(["bash", "-n", script]).returncode == 0)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "worker.py"), "w") as f:
            f.write("import json, os, sys\nprint(json.dumps({'argv': sys.argv[1:], "
                    "'env': {k: v for k, v in os.environ.items() if k.startswith('SUPABASE')}}"
                    "))\n")
        env = {"PATH": os.environ.get("PATH", ""), "HEADLESS_WAN2GP_DIR": tmp,
               "HEADLESS_PYTHON": PY, "WORKER_ID": "gpu-20260101_000000-abcd1234",
               "WORKER_API_URL": "https://gw.example.com/", "WORKER_TOKEN": "tok.en.sig",
               "SUPABASE_SERVICE_ROLE_KEY": "leak", "SUPABASE_SERVICE_KEY": "leak",
               "SUPABASE_EDGE_CLAIM_TASK_URL": "https://elsewhere.example"}
        out = subprocess.run(["bash", script, "--main-output-dir", "/out"], env=env,
                             capture_output=True, text=True, timeout=30)
        try:
            got = json.loads(out.stdout)
        except ValueError:
            got = {"argv": [], "env": {}}
        argv = got["argv"]

        def flag(name):
            return argv[argv.index(name) + 1] if name in argv[:-1] else None
        r.check("worker entrypoint: maps WORKER_API_URL/WORKER_TOKEN/WORKER_ID onto the flags",
                out.returncode == 0 and flag("--supabase-url") == "https://gw.example.com" and
                flag("--supabase-access-token") == "tok.en.sig" and
                flag("--worker") == "gpu-20260101_000000-abcd1234" and
                argv[-2:] == ["--main-output-dir", "/out"], out.stdout + out.stderr)
        r.check("worker entrypoint: always passes --supabase-anon-key (the token)",
                flag("--supabase-anon-key") == "tok.en.sig")
        r.check("worker entrypoint: no service-role key, no endpoint override reaches the worker",
                not {"SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_SERVICE_KEY",
                     "SUPABASE_EDGE_CLAIM_TASK_URL"} & set(got["env"]) and
                got["env"].get("SUPABASE_URL") == "https://gw.example.com", str(got["env"]))
        bad = subprocess.run(["bash", script], env={"PATH": env["PATH"], "WORKER_ID": "w"},
                             capture_output=True, text=True, timeout=30)
        r.check("worker entrypoint: refuses to start without WORKER_API_URL and WORKER_TOKEN",
                bad.returncode != 0 and "WORKER_API_URL" in bad.stderr)


def check_docs(r, root, deploy):
    path = os.path.join(root, "structure_docs", "deployment.md")
    if not r.check("structure_docs/deployment.md exists", os.path.isfile(path)):
        return
    text = open(path, encoding="utf-8").read()
    files = [os.path.relpath(f, deploy) for f in glob.glob(os.path.join(deploy, "**", "*"),
                                                           recursive=True) if os.path.isfile(f)]
    missing = [f for f in files if os.path.basename(f) not in text]
    r.check("deployment.md mentions every file in deployment/", not missing, str(missing))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--deploy-dir")
    ap.add_argument("--skip-slow", action="store_true")
    a = ap.parse_args()
    global SLOW_SKIPPED
    SLOW_SKIPPED = a.skip_slow
    root = os.path.abspath(a.root)
    deploy = os.path.abspath(a.deploy_dir or os.path.join(root, "deployment"))
    r = Results()
    binary = Binary(a.binary)
    uses = Uses()
    docs = {}
    check_parse(r, deploy, docs)
    stages = check_dockerfile(r, root, deploy, binary, uses)
    check_compose(r, root, docs, stages, binary, uses)
    check_kubernetes(r, docs, binary, uses)
    check_aws(r, docs, binary, uses)
    check_gcp(r, root, deploy, docs, binary, uses)
    check_binary_uses(r, binary, uses)
    check_env_example(r, root, binary)
    check_worker_entrypoint(r, deploy)
    check_docs(r, root, deploy)
    print("%d passed, %d failed" % (r.passed, r.failed))
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
