"""fake_runpod_catalog.py -- the GPU catalog and the rate limit of the fake RunPod (issue 16).

Imported by fake_runpod.py (python3 standard library only). Two pieces of state, each with its
own lock and reset with the fake (POST /_fake/reset):

GET /v2/catalog/gpus, shaped exactly like ListGpuTypesResponse of openapi-v2.json. Query
parameters are checked as the document describes: include=AVAILABILITY needs product (400
either way), cloud/count/countryCodes/cudaVersions/minCudaVersion are valid only with include
(400), cudaVersions and minCudaVersion exclude each other (400), a bad enum value or number is a
422, and an unknown parameter a 400. With include, each type carries `availability` and
`dataCenters` for the requested cloud (dataCenters omitted when it is unavailable everywhere).

  GET  /_fake/catalog                  the state below
  POST /_fake/catalog {...}            merge: "gpus": {id: {"stock": level (SECURE),
                                       "community_stock": level, "price": $/h (secure),
                                       "community_price": $/h, "secure": bool, "community":
                                       bool, "dcs": {dc id: level}}} (a new id is added;
                                       "replace": true drops the others first);
                                       "mode": one of MODES; "timeline": [{"after_sec": S,
                                       "gpus": {...}}, ...] -- changes applied S seconds after
                                       this POST, so stock moves while a test runs

  Modes (hostile catalogs): ok (default); garbage (a truncated JSON body); html (a 200 with an
  HTML page); odd (entries with a numeric id, an unknown level, prices as strings,
  dataCenters as a string, a duplicate id that disagrees, unknown extra fields); missing_prices
  (no price object); unknown_ids (only GPU ids nobody configures); empty ({"gpus": []});
  not_a_list ({"gpus": {}}). Failures by status, delay or raw body: the fake's fault rules with
  path "/v2/catalog/gpus". The answers of garbage, html, odd, missing_prices and not_a_list
  break the document on purpose: their request log entries carry fault.catalog_mode, so the
  contract test validates their requests only.

RateLimit / RateLimit-Policy on every authenticated answer (the IETF draft's structured
fields), from real counters: fixed windows that start at the first request; every
authenticated /v2 request takes one call from each window; an exhausted window answers 429
with Retry-After (seconds to its reset) and "rate limit exceeded for the <name> window".

  GET  /_fake/ratelimit                the state below, with each window's count and reset
  POST /_fake/ratelimit {...}          merge: "windows": [{"name", "q", "w"}] (restarts the
                                       counters), "mode": normal | storm | malformed | absent |
                                       no_enforce, "storm_retry_after": seconds,
                                       "malformed_values": [header values to send in turn],
                                       "exempt_paths": [globs not counted]; "reset": true
                                       restarts the counters

  storm: every authenticated request is answered 429 (Retry-After storm_retry_after, r=0)
  malformed: the counters run, but RateLimit carries the next of malformed_values
  absent: no RateLimit headers (a rate-limit-exempt caller)
  no_enforce: the headers are sent, but a window at 0 does not answer 429

The default windows are generous (minute 100000) so scenarios not about rate limits never
meet them; test_19 sets real quotas.
"""

import copy
import fnmatch
import json
import math
import threading
import time

LEVELS = ("NONE", "LOW", "MEDIUM", "HIGH")
PRODUCTS = ("POD", "CLUSTER", "SERVERLESS")
CLOUDS = ("SECURE", "COMMUNITY")
MODES = ("ok", "garbage", "html", "odd", "missing_prices", "unknown_ids", "empty", "not_a_list")
BROKEN_MODES = ("garbage", "html", "odd", "missing_prices", "not_a_list")
KNOWN_PARAMS = ("include", "product", "count", "cloud", "countryCodes", "cudaVersions",
                "minCudaVersion")

DC_NAMES = {"EU-RO-1": "EU Romania 1", "US-KS-2": "US Kansas 2", "CA-MTL-1": "CA Montreal 1",
            "EU-SE-1": "EU Sweden 1", "US-TX-3": "US Texas 3"}


def _gpu(gid, name, pool, memory, secure_price, community_price, secure_stock, community_stock,
         dcs):
    return {"id": gid, "name": name, "pool": pool, "manufacturer": "NVIDIA", "memory": memory,
            "secure": True, "community": True, "price": secure_price,
            "community_price": community_price, "stock": secure_stock,
            "community_stock": community_stock, "dcs": dict(dcs)}


DEFAULT_GPUS = [
    _gpu("NVIDIA GeForce RTX 4090", "RTX 4090", "ADA_24", 24, 0.69, 0.34, "HIGH", "MEDIUM",
         {"EU-RO-1": "HIGH", "US-KS-2": "MEDIUM"}),
    _gpu("NVIDIA RTX A6000", "RTX A6000", "AMPERE_48", 48, 0.49, 0.33, "MEDIUM", "LOW",
         {"EU-RO-1": "MEDIUM", "CA-MTL-1": "LOW"}),
    _gpu("NVIDIA A40", "A40", "AMPERE_48", 48, 0.40, 0.35, "LOW", "NONE", {"EU-SE-1": "LOW"}),
    _gpu("NVIDIA L40S", "L40S", "ADA_48_PRO", 48, 0.86, 0.79, "HIGH", "HIGH",
         {"US-TX-3": "HIGH", "US-KS-2": "LOW"}),
    _gpu("NVIDIA H100 80GB HBM3", "H100 SXM", "HOPPER_141", 80, 2.69, 2.39, "LOW", "NONE",
         {"US-KS-2": "LOW"}),
]


class Catalog:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.gpus = {g["id"]: copy.deepcopy(g) for g in DEFAULT_GPUS}
            self.mode = "ok"
            self.timeline = []  # [(monotonic time, {id: changes})]

    def _merge(self, changes):
        for gid, ch in changes.items():
            g = self.gpus.setdefault(gid, _gpu(gid, gid.split()[-1], None, 24, 0.5, 0.4, "HIGH",
                                               "HIGH", {}))
            for k, v in ch.items():
                if k == "dcs":
                    g["dcs"] = dict(v)
                elif k in ("stock", "community_stock", "price", "community_price", "secure",
                           "community", "name", "memory"):
                    g[k] = v
                else:
                    raise ValueError("unknown catalog field %s" % k)

    def control(self, method, body):
        """GET/POST /_fake/catalog: returns (status, answer)."""
        with self.lock:
            if method == "POST":
                try:
                    if body.get("replace"):
                        self.gpus = {}
                    if "mode" in body:
                        if body["mode"] not in MODES:
                            return 400, {"error": "mode must be one of %s" % (MODES,)}
                        self.mode = body["mode"]
                    self._merge(body.get("gpus") or {})
                    now = time.monotonic()
                    self.timeline = [(now + float(step.get("after_sec", 0)),
                                      step.get("gpus") or {})
                                     for step in body.get("timeline") or []]
                except (ValueError, TypeError, AttributeError) as e:
                    return 400, {"error": str(e)}
            return 200, {"gpus": copy.deepcopy(self.gpus), "mode": self.mode,
                         "timeline_pending": len(self.timeline)}

    def _advance(self):
        now = time.monotonic()
        due = [step for step in self.timeline if step[0] <= now]
        self.timeline = [step for step in self.timeline if step[0] > now]
        for _, changes in sorted(due, key=lambda s: s[0]):
            self._merge(changes)

    def out_of_stock(self, gpu_id, cloud, dcs):
        """Whether a create of gpu_id on cloud (in one of dcs, when given) finds no capacity:
        the catalog lists the type and shows it unavailable there. A type it does not list is
        never out of stock here (the fake's no_capacity fault covers those)."""
        with self.lock:
            self._advance()
            g = self.gpus.get(gpu_id)
            if g is None:
                return False
            offered = g["secure"] if cloud == "SECURE" else g["community"]
            level = g["stock"] if cloud == "SECURE" else g["community_stock"]
            if not offered or level == "NONE":
                return True
            if dcs:
                return all(g["dcs"].get(dc, "NONE") == "NONE" for dc in dcs)
            return False

    @staticmethod
    def check_query(query):
        """Validates the query string as openapi-v2.json describes. Returns None, or
        (status, detail) for a 400/422 answer."""
        params = {}
        for part in [p for p in query.split("&") if p]:
            k, _, v = part.partition("=")
            if k in params:
                return 400, "query parameter %s given twice" % k
            params[k] = v
        for k in params:
            if k not in KNOWN_PARAMS:
                return 400, "unknown query parameter %s" % k
        include = [x for x in params.get("include", "").split(",") if x] \
            if "include" in params else None
        if include is not None and (len(include) != 1 or include[0] != "AVAILABILITY"):
            return 422, "include must be AVAILABILITY"
        avail = include is not None
        if avail and "product" not in params:
            return 400, "include=AVAILABILITY requires product"
        for k in ("product", "count", "cloud", "countryCodes", "cudaVersions", "minCudaVersion"):
            if k in params and not avail:
                return 400, "%s is valid only with include=AVAILABILITY" % k
        if "cudaVersions" in params and "minCudaVersion" in params:
            return 400, "cudaVersions and minCudaVersion exclude each other"
        if avail:
            products = params["product"].split(",")
            if not products or any(p not in PRODUCTS for p in products):
                return 422, "product must be POD, CLUSTER or SERVERLESS"
            if "cloud" in params and params["cloud"] not in CLOUDS:
                return 422, "cloud must be SECURE or COMMUNITY"
            if "count" in params and (not params["count"].isdigit() or int(params["count"]) < 1):
                return 422, "count must be an integer >= 1"
        return None

    def answer(self, query):
        """(status, obj or raw text, content type, fault marker) for GET /v2/catalog/gpus."""
        bad = self.check_query(query)
        if bad:
            return bad[0], {"detail": bad[1]}, None, None
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        avail = "include" in params
        cloud = params.get("cloud", "SECURE")
        with self.lock:
            self._advance()
            gpus = copy.deepcopy(list(self.gpus.values()))
            mode = self.mode
        out = []
        for g in gpus:
            level = g["stock"] if cloud == "SECURE" else g["community_stock"]
            e = {"id": g["id"], "name": g["name"], "pool": g["pool"],
                 "manufacturer": g["manufacturer"], "memory": g["memory"],
                 "secure": bool(g["secure"]), "community": bool(g["community"]),
                 "price": {"secure": g["price"], "community": g["community_price"]},
                 "maxCount": {"secure": 8, "community": 4}}
            if g["pool"]:
                e["price"]["serverless"] = round(g["price"] * 2.5, 2)
            if avail:
                offered = g["secure"] if cloud == "SECURE" else g["community"]
                e["availability"] = level if offered else "NONE"
                if e["availability"] != "NONE":
                    e["dataCenters"] = [{"id": dc, "name": DC_NAMES.get(dc, dc),
                                         "availability": lv}
                                        for dc, lv in sorted(g["dcs"].items())]
                    e["cudaVersions"] = [{"version": "12.8", "available": True},
                                         {"version": "12.4", "available": level != "LOW"}]
            out.append(e)
        marker = {"catalog_mode": mode} if mode in BROKEN_MODES else None
        if mode == "garbage":
            return 200, json.dumps({"gpus": out})[:40], None, marker
        if mode == "html":
            return 200, "<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html", marker
        if mode == "empty":
            return 200, {"gpus": []}, None, None
        if mode == "not_a_list":
            return 200, {"gpus": {str(i): e for i, e in enumerate(out)}}, None, marker
        if mode == "unknown_ids":
            for e in out:
                e["id"] = "UNKNOWN " + e["id"]
        if mode == "missing_prices":
            for e in out:
                del e["price"]
        if mode == "odd":
            for i, e in enumerate(out):
                if i % 4 == 0:
                    e["availability"] = "PLENTY"
                    e["price"] = {"secure": "cheap", "community": None}
                elif i % 4 == 1:
                    e["dataCenters"] = "EU-RO-1"
                    e["bogus"] = {"nested": [1, {"x": None}]}
                elif i % 4 == 2:
                    e["id"] = 12345
            if out:
                twin = copy.deepcopy(out[-1])
                twin["availability"] = "NONE" if twin.get("availability") != "NONE" else "HIGH"
                out.append(twin)
        return 200, {"gpus": out}, None, marker


class RateLimiter:
    DEFAULT_WINDOWS = [{"name": "minute", "q": 100000, "w": 60},
                       {"name": "hour", "q": 1000000, "w": 3600},
                       {"name": "day", "q": 10000000, "w": 86400}]

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.windows = copy.deepcopy(self.DEFAULT_WINDOWS)
            self.mode = "normal"
            self.storm_retry_after = 2
            self.malformed_values = ["garbage ;;", "\"minute\";r=-5;t=10",
                                     "limit=100, remaining=50, reset=30"]
            self.malformed_next = 0
            self.exempt = []
            self.answered_429 = 0
            self._restart()

    def _restart(self):
        for w in self.windows:
            w["count"] = 0
            w["start"] = None

    def _roll(self, now):
        for w in self.windows:
            if w["start"] is not None and now >= w["start"] + w["w"]:
                w["start"] = None
                w["count"] = 0

    def control(self, method, body):
        with self.lock:
            if method == "POST":
                try:
                    if "windows" in body:
                        ws = [{"name": str(w["name"]), "q": int(w["q"]), "w": float(w["w"])}
                              for w in body["windows"]]
                        if any(w["q"] < 0 or w["w"] <= 0 for w in ws):
                            raise ValueError("q >= 0 and w > 0")
                        self.windows = ws
                        self._restart()
                    if "mode" in body:
                        if body["mode"] not in ("normal", "storm", "malformed", "absent",
                                                "no_enforce"):
                            raise ValueError("unknown mode")
                        self.mode = body["mode"]
                    if "storm_retry_after" in body:
                        self.storm_retry_after = int(body["storm_retry_after"])
                    if "malformed_values" in body:
                        self.malformed_values = [str(v) for v in body["malformed_values"]]
                        self.malformed_next = 0
                    if "exempt_paths" in body:
                        self.exempt = [str(p) for p in body["exempt_paths"]]
                    if body.get("reset"):
                        self._restart()
                except (KeyError, TypeError, ValueError) as e:
                    return 400, {"error": str(e)}
            now = time.monotonic()
            self._roll(now)
            return 200, {"mode": self.mode, "answered_429": self.answered_429,
                         "windows": [{"name": w["name"], "q": w["q"], "w": w["w"],
                                      "count": w["count"],
                                      "reset_in": (w["start"] + w["w"] - now)
                                      if w["start"] is not None else None}
                                     for w in self.windows]}

    def take(self, path):
        """One authenticated request arrives. Returns None, or (retry_after, detail) when it is
        to be answered 429."""
        with self.lock:
            if self.mode == "storm":
                self.answered_429 += 1
                return self.storm_retry_after, "rate limit exceeded for the minute window"
            if any(fnmatch.fnmatchcase(path, p) for p in self.exempt):
                return None
            now = time.monotonic()
            self._roll(now)
            for w in self.windows:
                if w["start"] is None:
                    w["start"] = now
            if self.mode != "no_enforce":
                for w in self.windows:
                    if w["count"] >= w["q"]:
                        self.answered_429 += 1
                        retry = max(1, int(math.ceil(w["start"] + w["w"] - now)))
                        return retry, "rate limit exceeded for the %s window" % w["name"]
            for w in self.windows:
                w["count"] += 1
            return None

    def headers(self):
        """The RateLimit / RateLimit-Policy headers of an authenticated answer."""
        with self.lock:
            if self.mode == "absent":
                return {}
            now = time.monotonic()
            self._roll(now)
            parts, policy = [], []
            for w in self.windows:
                left = 0 if self.mode == "storm" else max(0, w["q"] - w["count"])
                reset = w["w"] if w["start"] is None else max(0, w["start"] + w["w"] - now)
                parts.append('"%s";r=%d;t=%d' % (w["name"], left, int(math.ceil(reset))))
                policy.append('"%s";q=%d;w=%d' % (w["name"], w["q"], int(w["w"])))
            limit = ", ".join(parts)
            if self.mode == "malformed" and self.malformed_values:
                limit = self.malformed_values[self.malformed_next % len(self.malformed_values)]
                self.malformed_next += 1
            return {"RateLimit": limit, "RateLimit-Policy": ", ".join(policy)}

    def odd_mode(self):
        """The mode when its headers are deliberately malformed or absent, else None."""
        with self.lock:
            return self.mode if self.mode in ("malformed", "absent") else None
