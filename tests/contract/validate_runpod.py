#!/usr/bin/python3
"""validate_runpod.py -- RunPod REST v2 contract check (SPEC 7).

Validates, against RunPod's OpenAPI 3.1 document (tests/fixtures/runpod/openapi-v2.json; its
schemas are JSON Schema 2020-12, $refs resolved within the document):

  * every request the client sent and every response the fake served, as recorded by
    tests/fakes/fake_runpod.py --record (JSON lines) -- its query parameters too (names, types,
    enums, bounds, and billing's lastN exclusive of startTime/endTime) -- and
  * the recorded RunPod examples in tests/fixtures/runpod/, and
  * that the validator has teeth: a create body with an unknown field (gpuTypeIds, the v1 name),
    without a name, or with a string disk FAILS.

Beyond bodies (issue 16): every request's query string against the operation's parameters
(unknown names, enum values, integers, the comma-separated arrays of style=form explode=false,
and the catalog's documented rule that include=AVAILABILITY needs product and that product,
cloud, count, countryCodes, cudaVersions and minCudaVersion are valid only with it), and every
response's RateLimit / RateLimit-Policy headers, when present, against the IETF draft's
structured-field format the document describes (members "name";r=N;t=N and "name";q=N;w=N).

Responses the test shaped on purpose into something RunPod would never send (a fault rule with
a raw "body": oversized, truncated or HTML; a hostile catalog mode; malformed or replaced
rate-limit headers) are exempt from the checks that they break on purpose; their requests are
still checked. Exit status 0 when everything validates, 1 otherwise.

Usage: validate_runpod.py --openapi FILE --fixtures DIR RECORD.jsonl...
Needs /usr/bin/python3 with Debian's python3-jsonschema (4.x).
"""

import argparse
import json
import re
import sys
from urllib.parse import unquote

from jsonschema import Draft202012Validator

REQUIRED_KINDS = [
    ("POST", "/v2/pods", 201), ("GET", "/v2/pods", 200), ("GET", "/v2/pods/{id}", 200),
    ("DELETE", "/v2/pods/{id}", 204), ("DELETE", "/v2/pods/{id}", 404),
    ("GET", "/v2/pods/{id}", 404), ("POST", "/v2/pods", 400), ("POST", "/v2/pods", 422),
    ("GET", "/v2/pods", 401), ("GET", "/v2/pods", 429), ("POST", "/v2/pods", 500),
    ("GET", "/v2/catalog/gpus", 200), ("GET", "/v2/catalog/gpus", 429),
    ("GET", "/v2/catalog/gpus", 500),
    # issue 16: stop/start, the log stream, the pod billing
    ("POST", "/v2/pods/{id}/action", 200), ("POST", "/v2/pods/{id}/action", 409),
    ("POST", "/v2/pods/{id}/action", 400), ("POST", "/v2/pods/{id}/action", 404),
    ("POST", "/v2/pods/{id}/action", 429), ("POST", "/v2/pods/{id}/action", 500),
    ("GET", "/v2/pods/{id}/logs", 200), ("GET", "/v2/pods/{id}/logs", 404),
    ("GET", "/v2/billing/pods", 200), ("GET", "/v2/billing/pods", 500),
]

# Parameters of GET /v2/catalog/gpus that the document says are valid only with
# include=AVAILABILITY (400 otherwise); product is required with it.
CATALOG_AVAILABILITY_ONLY = ("product", "count", "cloud", "countryCodes", "cudaVersions",
                             "minCudaVersion")

# RFC 8941 pieces the RateLimit fields use.
SF_KEY = r"[a-z*][a-z0-9_.*-]*"
SF_STRING = r'"(?:[\x20-\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"'
SF_TOKEN = r"[A-Za-z*][!#$%&'*+.^_`|~:/A-Za-z0-9-]*"
SF_NAME = "(?:%s|%s)" % (SF_STRING, SF_TOKEN)
SF_VALUE = r"(?:-?[0-9]{1,15}(?:\.[0-9]{1,3})?|%s|%s|\?[01]|:[A-Za-z0-9+/=]*:)" % (SF_STRING,
                                                                            SF_TOKEN)
SF_MEMBER = re.compile(r"^(%s)((?:;\s*%s(?:=%s)?)*)$" % (SF_NAME, SF_KEY, SF_VALUE))
SF_PARAM = re.compile(r";\s*(%s)(?:=(%s))?" % (SF_KEY, SF_VALUE))


def split_sf_list(value):
    """Splits a structured-field list at the commas outside strings; None when malformed."""
    out, cur, in_str, esc = [], "", False, False
    for ch in value:
        if in_str:
            cur += ch
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
            cur += ch
        elif ch == ",":
            out.append(cur.strip(" \t"))
            cur = ""
        else:
            cur += ch
    if in_str:
        return None
    out.append(cur.strip(" \t"))
    return out if all(out) else None


def ratelimit_errors(name, value, want):
    """Checks one RateLimit (want r, t) or RateLimit-Policy (want q, w) header value."""
    members = split_sf_list(value.strip(" "))
    if not members:
        return ["%s %r is not a structured-field list" % (name, value)]
    errs = []
    for m in members:
        mm = SF_MEMBER.match(m)
        if not mm:
            errs.append("%s member %r is not \"name\";key=value..." % (name, m))
            continue
        params = dict((k, v) for k, v in SF_PARAM.findall(mm.group(2)))
        for k in want:
            v = params.get(k)
            if v is None or not v.isdigit():
                errs.append("%s member %r lacks a non-negative integer %s" % (name, m, k))
    return errs


def query_errors(c, tpl, op, query):
    """The query string of a request against the operation's query parameters."""
    specs = {}
    for p in list(c.doc["paths"][tpl].get("parameters", [])) + list(op.get("parameters", [])):
        p = c.deref(p)
        if p.get("in") == "query":
            specs[p["name"]] = p
    given = {}
    errs = []
    for part in [x for x in (query or "").split("&") if x]:
        k, _, v = part.partition("=")
        k, v = unquote(k), unquote(v)
        if k in given:
            errs.append("query parameter %s given twice" % k)
        given[k] = v
    for k, v in given.items():
        spec = specs.get(k)
        if spec is None:
            errs.append("query parameter %s is not in the OpenAPI document" % k)
            continue
        schema = spec.get("schema", {})
        sch = c.deref(schema)
        if sch.get("type") == "array":
            value = v.split(",") if v else []
            item = c.deref(sch.get("items", {}))
            if item.get("type") == "integer":
                value = [int(x) if x.lstrip("-").isdigit() else x for x in value]
        elif sch.get("type") == "integer":
            value = int(v) if v.lstrip("-").isdigit() else v
        else:
            value = v
        errs += ["query %s=%s: %s" % (k, v, e) for e in c.errors(schema, value)]
    for k, spec in specs.items():
        if spec.get("required") and k not in given:
            errs.append("required query parameter %s missing" % k)
    if tpl == "/v2/catalog/gpus":
        if "include" in given and "product" not in given:
            errs.append("include=AVAILABILITY without product (the document: 400)")
        for k in CATALOG_AVAILABILITY_ONLY:
            if k in given and "include" not in given:
                errs.append("%s without include=AVAILABILITY (the document: 400)" % k)
        if "cudaVersions" in given and "minCudaVersion" in given:
            errs.append("cudaVersions with minCudaVersion (the document: 400)")
    if "lastN" in given and ("startTime" in given or "endTime" in given):
        errs.append("query lastN together with startTime/endTime (mutually exclusive)")
    return errs


class Contract:
    def __init__(self, doc):
        self.doc = doc
        self.validators = {}
        self.templates = []
        for tpl in doc["paths"]:
            rx = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(tpl)) + "$"
            self.templates.append((re.compile(rx), tpl))

    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        if key not in self.validators:
            root = dict(schema)
            root["components"] = self.doc["components"]
            Draft202012Validator.check_schema(root)
            self.validators[key] = Draft202012Validator(root)
        return self.validators[key]

    def errors(self, schema, instance):
        return ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "$", e.message)
                for e in self.validator(schema).iter_errors(instance)]

    def schema_errors(self, name, instance):
        return self.errors({"$ref": "#/components/schemas/" + name}, instance)

    def template(self, path):
        for rx, tpl in self.templates:
            if rx.match(path):
                return tpl
        return None

    def deref(self, obj):
        while isinstance(obj, dict) and "$ref" in obj:
            parts = obj["$ref"].lstrip("#/").split("/")
            obj = self.doc
            for p in parts:
                obj = obj[p]
        return obj


def header(headers, name):
    for k, v in (headers or {}).items():
        if k.lower() == name.lower():
            return v
    return None


def check_exchange(c, ex):
    errs = []
    method, path = ex["method"], ex["path"]
    tpl = c.template(path)
    if tpl is None:
        return ["%s %s: path not in the OpenAPI document" % (method, path)], None
    op = c.doc["paths"][tpl].get(method.lower())
    if op is None:
        return ["%s %s: method not in the OpenAPI document" % (method, tpl)], None
    # -- request --------------------------------------------------------------------------
    hdrs = ex.get("headers") or {}
    auth = header(hdrs, "Authorization")
    if auth == "Bearer <mismatched>":
        if ex.get("status") != 401:
            errs.append("a wrong bearer key was not answered 401")
    elif auth != "Bearer <matched>":
        errs.append("request without a bearer key (%s)" % auth)
    ua = header(hdrs, "User-Agent") or ""
    if not ua.startswith("orchestrator/"):
        errs.append("request User-Agent %r does not name orchestrator/<version>" % ua)
    if header(hdrs, "Content-Type") != "application/json":
        errs.append("request Content-Type %r" % header(hdrs, "Content-Type"))
    body = ex.get("body")
    if "requestBody" in op:
        schema = c.deref(op["requestBody"])["content"]["application/json"]["schema"]
        if not isinstance(body, (dict, list)):
            errs.append("request body is not JSON: %r" % (body,))
        else:
            errs += ["request " + e for e in c.errors(schema, body)]
    elif body not in (None, ""):
        errs.append("unexpected request body on %s" % method)
    errs += ["request " + e for e in query_errors(c, tpl, op, ex.get("query"))]
    # -- response -------------------------------------------------------------------------
    status = ex.get("status")
    fault = ex.get("fault") or {}
    rh = ex.get("response_headers") or {}
    if "ratelimit_mode" not in fault and "headers" not in fault:
        for hname, want in (("RateLimit", ("r",)), ("RateLimit-Policy", ("q", "w"))):
            hv = header(rh, hname)
            if hv is not None:
                errs += ["response " + e for e in ratelimit_errors(hname, str(hv), want)]
    if "body" in fault or "catalog_mode" in fault:
        return errs, (method, tpl, status)  # deliberately malformed answer
    resps = op["responses"]
    spec = c.deref(resps.get(str(status), resps.get("default")))
    resp = ex.get("response")
    content = spec.get("content")
    if not content:
        if resp not in (None, ""):
            errs.append("response %d must have no body" % status)
    else:
        ctype = (header(rh, "Content-Type") or "").split(";")[0].strip()
        if ctype not in content:
            errs.append("response %d Content-Type %r, document says %s" %
                        (status, ctype, sorted(content)))
        else:
            errs += ["response %d %s" % (status, e)
                     for e in c.errors(content[ctype]["schema"], resp)]
    if status == 429:
        ra = header(rh, "Retry-After")
        if ra is None or not str(ra).isdigit():
            errs.append("429 without an integer Retry-After")
    return errs, (method, tpl, status)


def self_test(c, fixtures):
    """The recorded examples validate, and bad create bodies fail."""
    errs = []

    def load(name):
        with open("%s/%s" % (fixtures, name), encoding="utf-8") as f:
            return json.load(f)

    good = {"v2_create_request.json": "CreatePodRequest", "v2_create_ok.json": "Pod",
            "v2_get_running.json": "Pod", "v2_get_starting.json": "Pod",
            "v2_list.json": "ListPodsResponse",
            "v2_error_insufficient_balance_402.json": "ErrorResponse",
            "v2_error_no_capacity.json": "ErrorResponse",
            "v2_error_not_found.json": "ErrorResponse",
            "v2_error_rate_limited_429.json": "ErrorResponse",
            "v2_error_unauthorized.json": "ErrorResponse",
            "v2_error_validation_422.json": "ErrorResponse"}
    for name, schema in good.items():
        e = c.schema_errors(schema, load(name))
        if e:
            errs.append("fixture %s does not validate as %s: %s" % (name, schema, e[:3]))
    req = load("v2_create_request.json")
    bad = {
        "unknown field gpuTypeIds": dict(req, gpuTypeIds=["NVIDIA GeForce RTX 4090"]),
        "unknown field in gpu": dict(req, gpu={"id": "x", "count": 1, "bogus": 1}),
        "missing name": {k: v for k, v in req.items() if k != "name"},
        "string disk": dict(req, disk="50"),
        "bad cloud": dict(req, cloud="SPOT"),
        "non-string env value": dict(req, env={"A": 1}),
        "two network mounts": dict(req, mounts={"network": [
            {"volumeId": "a", "path": "/a"}, {"volumeId": "b", "path": "/b"}]}),
    }
    for what, body in bad.items():
        if not c.schema_errors("CreatePodRequest", body):
            errs.append("validator accepted a create body with %s" % what)
    # issue 16: the action body, the billing answer, the query parameters.
    for body in ({"action": "reset"}, {"action": "stop", "force": True}, {}):
        if not c.schema_errors("PodActionRequest", body):
            errs.append("validator accepted the pod action %r" % (body,))
    billing = {"records": [{"startTime": "2026-06-01T11:00:00Z", "endTime": "2026-06-01T12:00:00Z",
                            "podId": "p", "totalAmount": 1, "gpuAmount": 1, "cpuAmount": 0,
                            "diskAmount": 0}],
               "metadata": {"query": {"startTime": "2026-06-01T11:00:00Z",
                                      "endTime": "2026-06-01T13:00:00Z", "bucketSize": "hour"},
                            "recordCount": 1, "uniquePodCount": 1,
                            "totals": {"totalAmount": 1, "gpuAmount": 1, "cpuAmount": 0,
                                       "diskAmount": 0}}}
    if c.schema_errors("ListPodBillingResponse", billing):
        errs.append("a good billing answer does not validate: %s"
                    % c.schema_errors("ListPodBillingResponse", billing)[:2])
    if not c.schema_errors("ListPodBillingResponse", {"records": billing["records"]}):
        errs.append("validator accepted a billing answer without metadata")
    bad_rec = dict(billing["records"][0])
    del bad_rec["podId"]
    if not c.schema_errors("ListPodBillingResponse", dict(billing, records=[bad_rec])):
        errs.append("validator accepted a billing record without podId")
    bop = c.doc["paths"]["/v2/billing/pods"]["get"]
    lop = c.doc["paths"]["/v2/pods/{id}/logs"]["get"]
    btpl, ltpl = "/v2/billing/pods", "/v2/pods/{id}/logs"
    for tpl, op, q in ((btpl, bop, "bucketSize=minute"), (btpl, bop, "lastN=0"),
                       (btpl, bop, "bogus=1"), (btpl, bop, "lastN=2&startTime=2026-06-01T00:00:00Z"),
                       (ltpl, lop, "tail=9000"), (ltpl, lop, "source=stdout"),
                       (ltpl, lop, "tail=abc")):
        if not query_errors(c, tpl, op, q):
            errs.append("validator accepted the query %r" % q)
    if query_errors(c, btpl, bop, "bucketSize=hour&lastN=2") or \
            query_errors(c, ltpl, lop, "tail=200"):
        errs.append("validator refused a good query")
    pod = load("v2_get_running.json")
    if not c.schema_errors("Pod", dict(pod, status="PAUSED")):
        errs.append("validator accepted a pod with status PAUSED")
    if not c.schema_errors("Pod", {k: v for k, v in pod.items() if k != "cost"}):
        errs.append("validator accepted a pod without cost")
    errs += catalog_self_test(c)
    return errs


def catalog_self_test(c):
    """Issue 16: the catalog example validates, broken catalogs, queries and rate-limit
    headers do not."""
    errs = []
    op = c.doc["paths"]["/v2/catalog/gpus"]["get"]
    example = op["responses"]["200"]["content"]["application/json"]["examples"]["gpus"]["value"]
    if c.schema_errors("ListGpuTypesResponse", example):
        errs.append("the document's catalog example does not validate")
    gpu = example["gpus"][0]
    bad = {
        "no price": {k: v for k, v in gpu.items() if k != "price"},
        "availability PLENTY": dict(gpu, availability="PLENTY"),
        "price as a string": dict(gpu, price={"secure": "0.44", "community": 0.31}),
        "numeric id": dict(gpu, id=12345),
    }
    for what, entry in bad.items():
        if not c.schema_errors("ListGpuTypesResponse", {"gpus": [entry]}):
            errs.append("validator accepted a catalog entry with %s" % what)
    good_q = "include=AVAILABILITY&product=POD&cloud=SECURE"
    if query_errors(c, "/v2/catalog/gpus", op, good_q):
        errs.append("validator rejected the client's catalog query: %s"
                    % query_errors(c, "/v2/catalog/gpus", op, good_q))
    for q in ("include=AVAILABILITY", "cloud=SECURE", "include=EVERYTHING&product=POD",
              "include=AVAILABILITY&product=POD&cloud=SPOT", "include=AVAILABILITY&product=PODS",
              "include=AVAILABILITY&product=POD&count=0", "bogus=1",
              "include=AVAILABILITY&product=POD&cudaVersions=12.8&minCudaVersion=12"):
        if not query_errors(c, "/v2/catalog/gpus", op, q):
            errs.append("validator accepted the catalog query %s" % q)
    spec_rl = c.doc["components"]["schemas"]["RateLimitHeader"]["examples"][0]
    spec_pol = c.doc["components"]["schemas"]["RateLimitPolicyHeader"]["examples"][0]
    if ratelimit_errors("RateLimit", spec_rl, ("r",)) or \
            ratelimit_errors("RateLimit-Policy", spec_pol, ("q", "w")):
        errs.append("validator rejected the document's RateLimit examples")
    for v in ("garbage ;;", '"m";r=-1;t=5', '"m";t=5', "limit=100, remaining=5", '"m";r=1,',
              '"m";r=1.5'):
        if not ratelimit_errors("RateLimit", v, ("r",)):
            errs.append("validator accepted the RateLimit header %r" % v)
    return errs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--openapi", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--no-coverage", action="store_true",
                    help="do not require every kind of exchange to appear")
    ap.add_argument("records", nargs="*")
    args = ap.parse_args()
    with open(args.openapi, encoding="utf-8") as f:
        c = Contract(json.load(f))

    failures = ["self-test: " + e for e in self_test(c, args.fixtures)]
    n = 0
    seen = {}
    for path in args.records:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                ex = json.loads(line)
                n += 1
                errs, kind = check_exchange(c, ex)
                if kind:
                    k = (kind[0], kind[1], 500 if 500 <= (kind[2] or 0) < 600 else kind[2])
                    seen[k] = seen.get(k, 0) + 1
                for e in errs:
                    failures.append("%s:%s %s %s -> %s: %s" % (
                        path.rsplit("/", 1)[-1], ex.get("seq"), ex["method"], ex["path"],
                        ex.get("status"), e))
    if not args.no_coverage:
        for kind in REQUIRED_KINDS:
            if kind not in seen:
                failures.append("coverage: no %s %s -> %d exchange was recorded" % kind)
    for k in sorted(seen, key=str):
        print("contract: %-6s %-16s %s x%d" % (k[0], k[1], k[2], seen[k]))
    if failures:
        for fl in failures[:200]:
            print("contract: FAIL " + fl)
        print("contract: %d exchanges, %d failures" % (n, len(failures)))
        return 1
    print("contract: %d exchanges from %d files and the fixtures validate against the "
          "OpenAPI document (bodies, query strings, RateLimit headers); bad create bodies, "
          "catalogs, queries and headers are rejected" % (n, len(args.records)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
