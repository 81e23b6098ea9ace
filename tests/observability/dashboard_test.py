#!/usr/bin/env python3
"""dashboard_test.py -- the Grafana dashboard, the recording rules and the alerts agree with each
other and with what the orchestrator really exports (issue 17).

    dashboard_test.py --root SRC --metrics FILE [--dashboard F] [--rules F] [--alerts F]
                      [--alerts-test F] [--runbook F]

FILE is a metrics text the orchestrator wrote in a real run (tests/observability/run.sh makes
one: the METRICS_FILE of `single` against a database with completed tasks, a run type no pool
serves and a due reconcile). Checks, one "ok"/"not ok" line each, then "N passed, M failed":

  * the dashboard is importable: a Prometheus data-source variable `datasource`, a `pool`
    variable from label_values(<exported metric with a pool label>, pool), every panel and
    every query on ${datasource}, unique panel ids, a grid 24 wide;
  * every panel query is a recording rule's expression once its `pool=~"$pool"` matcher is
    taken out, and every recording rule is some panel's query (neither drifts alone);
  * every metric a panel, a recording rule or an alert names is in FILE, and every label and
    literal label value a selector matches on exists on that metric in FILE (pool=~"$pool"
    aside);
  * every alert has summary, description and runbook_url, its runbook anchor is a heading of
    structure_docs/operating.md, and the promtool unit tests hold a case where it fires and one
    where it does not.
"""
import argparse
import json
import os
import re
import sys

import yaml

POOL_MATCHER = 'pool=~"$pool"'
METRIC_RE = re.compile(r"\b(gpu_orchestrator_[a-z0-9_]+)\b")
SELECTOR_RE = re.compile(r"\b(gpu_orchestrator_[a-z0-9_]+)\{([^}]*)\}")
MATCHER_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"\s*')


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("ok - %s" % name)
        else:
            self.failed += 1
            print("not ok - %s%s" % (name, (": " + str(detail)) if detail else ""))
        return ok


def parse_exposition(path):
    """{sample name: [label dicts]} of a Prometheus text file, and the histogram base names."""
    samples = {}
    histograms = set()
    line_re = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+$")
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith("# TYPE "):
                parts = line.split()
                if len(parts) == 4 and parts[3] == "histogram":
                    histograms.add(parts[2])
                continue
            if not line or line.startswith("#"):
                continue
            m = line_re.match(line)
            if not m:
                continue
            labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
            samples.setdefault(m.group(1), []).append(labels)
    return samples, histograms


def normalize(expr):
    """An expression without the dashboard's pool filter, whitespace collapsed."""
    e = expr.replace("," + POOL_MATCHER, "").replace(POOL_MATCHER + ",", "")
    e = e.replace("{" + POOL_MATCHER + "}", "")
    return " ".join(e.split())


def anchor(heading):
    """GitHub's anchor of a markdown heading."""
    a = heading.strip().lower()
    a = re.sub(r"[^a-z0-9 _-]", "", a)
    return a.replace(" ", "-")


def words(value):
    """The plain alternatives of a matcher value (a|b|c), or None when it is a real regex."""
    if re.fullmatch(r"[A-Za-z0-9_().-]+(\|[A-Za-z0-9_().-]+)*", value):
        return value.split("|")
    return None


def check_selectors(r, where, expr, samples):
    """Every label a selector names exists on its metric in the export, with each literal value."""
    for metric, body in SELECTOR_RE.findall(expr):
        series = samples.get(metric)
        if not series:
            continue  # reported by the metric-name check
        for label, op, value in MATCHER_RE.findall(body):
            if label == "pool" and value == "$pool":
                continue
            have = {s.get(label) for s in series if label in s}
            if not r.check("%s: %s has label %s" % (where, metric, label), bool(have),
                           "labels seen: %s" % sorted({k for s in series for k in s})):
                continue
            alts = [value] if op in ("=", "!=") else words(value)
            if alts is None:
                continue
            missing = [a for a in alts if a not in have]
            r.check("%s: %s{%s%s\"%s\"} names values it exports" % (where, metric, label, op, value),
                    not missing, "not exported: %s (exported: %s)" % (missing, sorted(have)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--dashboard")
    ap.add_argument("--rules")
    ap.add_argument("--alerts")
    ap.add_argument("--alerts-test")
    ap.add_argument("--runbook")
    a = ap.parse_args()
    root = a.root
    dash_path = a.dashboard or os.path.join(root, "deployment/grafana/orchestrator.json")
    rules_path = a.rules or os.path.join(root, "deployment/prometheus/recording_rules.yml")
    alerts_path = a.alerts or os.path.join(root, "deployment/prometheus/alerts.yml")
    atest_path = a.alerts_test or os.path.join(root, "tests/observability/alerts_test.yml")
    runbook_path = a.runbook or os.path.join(root, "structure_docs/operating.md")
    r = Checks()

    samples, histograms = parse_exposition(a.metrics)
    exported = set(samples) | histograms
    r.check("the metrics file holds gpu_orchestrator_ samples (%d names)" % len(exported),
            any(n.startswith("gpu_orchestrator_") for n in exported))

    with open(dash_path, encoding="utf-8") as fh:
        dash = json.load(fh)
    rules_doc = yaml.safe_load(open(rules_path, encoding="utf-8"))
    alerts_doc = yaml.safe_load(open(alerts_path, encoding="utf-8"))
    rules = [x for g in rules_doc["groups"] for x in g["rules"]]
    alerts = [x for g in alerts_doc["groups"] for x in g["rules"]]

    # -- importable
    tvars = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    ds = tvars.get("datasource", {})
    r.check("dashboard: a data-source variable 'datasource' of type prometheus",
            ds.get("type") == "datasource" and ds.get("query") == "prometheus", ds)
    pool = tvars.get("pool", {})
    q = pool.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    m = re.fullmatch(r"label_values\((gpu_orchestrator_[a-z0-9_]+),\s*pool\)", q or "")
    r.check("dashboard: a 'pool' variable from label_values(<metric>, pool), multi, with All",
            bool(m) and pool.get("includeAll") and pool.get("multi")
            and pool.get("datasource", {}).get("uid") == "${datasource}", pool)
    if m:
        r.check("dashboard: the pool variable's metric is exported with a pool label",
                any("pool" in s for s in samples.get(m.group(1), [])), m.group(1))
    raw = open(dash_path, encoding="utf-8").read()
    others = sorted(set(re.findall(r"\$\{?[A-Za-z][A-Za-z0-9_]*\}?", raw))
                    - {"${datasource}", "$pool"})  # Grafana's own $__all, $__interval aside
    r.check("dashboard: no variable but ${datasource} and $pool (no import-time __inputs)",
            not others and "__inputs" not in dash, others)
    panels = [p for p in dash.get("panels", []) if p.get("type") != "row"]
    ids = [p.get("id") for p in dash.get("panels", [])]
    r.check("dashboard: %d panels, unique ids" % len(panels),
            len(panels) >= 10 and len(ids) == len(set(ids)))
    r.check("dashboard: every panel and query uses ${datasource}",
            all(p.get("datasource", {}).get("uid") == "${datasource}" and p.get("targets") and
                all(t.get("datasource", {}).get("uid") == "${datasource}" for t in p["targets"])
                for p in panels))
    r.check("dashboard: every panel fits the 24-column grid",
            all(0 <= p["gridPos"]["x"] and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
                for p in dash.get("panels", [])))
    r.check("dashboard: every panel has a title and a description",
            all(p.get("title") and p.get("description") for p in panels))

    # -- panels <-> recording rules
    rule_exprs = {normalize(x["expr"]): x["record"] for x in rules}
    used = set()
    for p in panels:
        for t in p["targets"]:
            n = normalize(t["expr"])
            rec = rule_exprs.get(n)
            r.check("panel '%s' %s: its query is recording rule %s" % (p["title"], t["refId"], rec),
                    rec is not None, "no rule has the expression %s" % n)
            if rec:
                used.add(rec)
            leftover = "$" in n
            r.check("panel '%s' %s: no template variable but $pool in a pool matcher" % (
                p["title"], t["refId"]), not leftover, n)
    unused = [x["record"] for x in rules if x["record"] not in used]
    r.check("every recording rule is a panel's query", not unused, unused)
    r.check("every recording rule is named orchestrator:...",
            all(x["record"].startswith("orchestrator:") for x in rules))

    # -- metrics and labels named exist
    for where, exprs in (("dashboard", [t["expr"] for p in panels for t in p["targets"]]),
                         ("recording rules", [x["expr"] for x in rules]),
                         ("alerts", [x["expr"] for x in alerts])):
        named = sorted({n for e in exprs for n in METRIC_RE.findall(e)})
        missing = [n for n in named if n not in exported]
        r.check("%s: every metric named (%d) is exported" % (where, len(named)), not missing,
                "not in the metrics file: %s" % missing)
        for e in exprs:
            check_selectors(r, where, e, samples)

    # -- alerts: annotations, runbooks, unit tests
    runbook = open(runbook_path, encoding="utf-8").read()
    anchors = {anchor(h) for h in re.findall(r"^#{1,6}\s+(.+)$", runbook, re.M)}
    atest = yaml.safe_load(open(atest_path, encoding="utf-8"))
    cases = [c for t in atest["tests"] for c in t.get("alert_rule_test", [])]
    for x in alerts:
        name = x["alert"]
        ann = x.get("annotations", {})
        r.check("alert %s: summary, description, runbook_url" % name,
                all(ann.get(k) for k in ("summary", "description", "runbook_url")), ann)
        frag = ann.get("runbook_url", "").partition("#")[2]
        r.check("alert %s: runbook anchor #%s is a heading of operating.md" % (name, frag),
                frag in anchors and frag == name.lower())
        mine = [c for c in cases if c.get("alertname") == name]
        r.check("alert %s: a promtool case where it fires and one where it does not" % name,
                any(c.get("exp_alerts") for c in mine) and any(not c.get("exp_alerts") for c in mine))

    print("%d passed, %d failed" % (r.passed, r.failed))
    return 0 if r.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
