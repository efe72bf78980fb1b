"""Checks recorded HTTP exchanges with the GCP fake against Google's discovery documents, the ones
google-api-python-client ships (iam v1, cloudresourcemanager v1 and v3, storage v1).

Usage: gcp_schema.py EXCHANGES.json  (a list of {method, path, query, request, status, response}).

Each exchange is matched to the one discovery method whose HTTP method and path template fit; then
- every query parameter must be one the method (or the API) declares, with an allowed enum value
  (plus the system parameter `$alt=json;enum-encoding=int` of Google's generated clients, with which
  enums are numbers: an enum field then takes a non-negative integer);
- the request body must fit the method's request schema (no unknown fields, right types and enums);
- a 2xx response must fit the method's response schema (a finished operation's `response` the
  resource's schema), an error response Google's JSON error shape with a canonical code/status.
Prints a JSON report {"methods": {id: count}}; exits 1 listing every violation.
"""

import json
import os
import re
import sys
from urllib.parse import unquote_plus

import googleapiclient

DOCS = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents")
APIS = {"iam": "iam.v1.json", "crm": "cloudresourcemanager.v1.json",
        "crm3": "cloudresourcemanager.v3.json", "storage": "storage.v1.json"}
# `$alt` values of https://cloud.google.com/apis/docs/system-parameters that keep JSON.
ALT = {"json", "json;enum-encoding=int"}
INT_ENUMS = False  # set per exchange from its `$alt`
# google.rpc.Code names with the HTTP status each maps to.
CANONICAL = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ABORTED": 409, "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "INTERNAL": 500, "UNKNOWN": 500, "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}


def load(api):
    with open(os.path.join(DOCS, APIS[api]), encoding="utf-8") as f:
        return json.load(f)


def methods_of(doc):
    def walk(res):
        for m in res.get("methods", {}).values():
            yield m
        for r in res.get("resources", {}).values():
            yield from walk(r)

    yield from walk(doc)


def template_regex(template):
    """A discovery path template as a regex over the raw (percent-encoded) path."""
    out, literal = "", 0
    for part in re.split(r"(\{\+?[^}]+\})", template):
        if part.startswith("{+"):
            out += r"(.+)"
        elif part.startswith("{"):
            out += r"([^/:]+)"
        else:
            out += re.escape(part)
            literal += len(part)
    return re.compile("^" + out + "$"), literal


class Api:
    def __init__(self, key):
        self.key = key
        self.doc = load(key)
        self.schemas = self.doc["schemas"]
        self.routes = []
        service = self.doc["servicePath"]
        for m in methods_of(self.doc):
            paths = [service + m.get("flatPath", m["path"])]
            simple = m.get("mediaUpload", {}).get("protocols", {}).get("simple", {}).get("path")
            if simple:
                paths.append(simple.lstrip("/"))
            for p in paths:
                rx, literal = template_regex(p)
                self.routes.append((m["httpMethod"], rx, literal, m))


IAM, CRM, CRM3, STORAGE = Api("iam"), Api("crm"), Api("crm3"), Api("storage")


def api_for(path):
    if path.startswith("storage/v1/") or path.startswith("upload/storage/v1/"):
        return STORAGE
    # One fake serves both: the project itself and its IAM verbs are Resource Manager's.
    if re.match(r"^v1/projects/[^/]+(:(getIamPolicy|setIamPolicy|testIamPermissions))?$", path):
        return CRM
    if path.startswith("v3/"):
        return CRM3
    return IAM


def match(api, method, path):
    best = None
    for http, rx, literal, m in api.routes:
        if http == method and rx.match(path) and (best is None or literal > best[0]):
            best = (literal, m)
    return best[1] if best else None


def check(api, value, schema, where, errors):
    if "$ref" in schema:
        schema = api.schemas[schema["$ref"]]
    t = schema.get("type")
    if t == "any" or value is None and t != "object":
        return
    if t == "object" or "properties" in schema:
        if not isinstance(value, dict):
            errors.append(f"{where}: expected an object, got {json.dumps(value)[:80]}")
            return
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            if k in props:
                check(api, v, props[k], f"{where}.{k}", errors)
            elif extra is not None:
                check(api, v, extra, f"{where}[{k}]", errors)
            else:
                errors.append(f"{where}: unknown field {k!r} (not in {schema.get('id', 'the schema')})")
    elif t == "array":
        if not isinstance(value, list):
            errors.append(f"{where}: expected an array, got {json.dumps(value)[:80]}")
            return
        for i, v in enumerate(value):
            check(api, v, schema.get("items", {}), f"{where}[{i}]", errors)
    elif t == "string" and "enum" in schema and INT_ENUMS and isinstance(value, int):
        if isinstance(value, bool) or value < 0:
            errors.append(f"{where}: {value!r} is not an enum number of {schema['enum']}")
    elif t == "string":
        if not isinstance(value, str):
            errors.append(f"{where}: expected a string ({schema.get('format', 'string')}), got {json.dumps(value)[:80]}")
        elif "enum" in schema and value not in schema["enum"]:
            errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    elif t == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{where}: expected an integer, got {json.dumps(value)[:80]}")
    elif t == "number":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append(f"{where}: expected a number, got {json.dumps(value)[:80]}")
    elif t == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{where}: expected a boolean, got {json.dumps(value)[:80]}")


def check_error(body, status, where, errors):
    if not isinstance(body, dict) or set(body) != {"error"}:
        errors.append(f"{where}: an error answer must be {{\"error\": …}}, got {json.dumps(body)[:120]}")
        return
    e = body["error"]
    unknown = set(e) - {"code", "message", "status", "errors", "details"}
    if unknown:
        errors.append(f"{where}: unknown fields in error: {sorted(unknown)}")
    if e.get("code") != status:
        errors.append(f"{where}: error.code {e.get('code')} is not the HTTP status {status}")
    if not isinstance(e.get("message"), str):
        errors.append(f"{where}: error.message missing")
    s = e.get("status")
    # Cloud Storage's JSON API answers a failed precondition with 412 (no google.rpc code has it).
    if s is not None and CANONICAL.get(s) != status and not (status == 412 and s == "FAILED_PRECONDITION"):
        errors.append(f"{where}: error.status {s} does not go with HTTP {status}")


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        exchanges = json.load(f)
    errors, counts = [], {}
    for i, x in enumerate(exchanges):
        path = x["path"].lstrip("/")
        if path in ("token", "v1/token") or path.startswith("download/") or path.endswith(":generateAccessToken"):
            continue  # OAuth and STS token endpoints, IAM Credentials (other APIs); media downloads
        if x["method"] in ("GET", "HEAD") and not re.match(r"^(v1|v3|storage|upload)/", path):
            continue  # anonymous path-style object reads (the XML API)
        api = api_for(path)
        where = f"#{i} {x['method']} /{path}"
        m = match(api, x["method"], path)
        if m is None:
            errors.append(f"{where}: no {x['method']} method of {api.key} has this path")
            continue
        where = f"#{i} {m['id']}"
        counts[m["id"]] = counts.get(m["id"], 0) + 1
        params = dict(api.doc.get("parameters", {}), **m.get("parameters", {}))
        query = [kv.split("=", 1) for kv in x["query"].split("&") if kv]
        global INT_ENUMS
        INT_ENUMS = any(unquote_plus(kv[0]) == "$alt" and len(kv) > 1
                        and unquote_plus(kv[1]) == "json;enum-encoding=int" for kv in query)
        for kv in query:
            k, v = kv[0], (kv[1] if len(kv) > 1 else "")
            k, v = unquote_plus(k), unquote_plus(v)
            if k == "$alt":
                if v not in ALT:
                    errors.append(f"{where}: system parameter $alt={v!r} is not one of {sorted(ALT)}")
            elif "enum" in params.get(k, {}) and INT_ENUMS and v.isdigit():
                pass  # an enum by number
            elif k not in params:
                errors.append(f"{where}: unknown query parameter {k!r}")
            elif "enum" in params[k] and v not in params[k]["enum"] and not any(
                p in params[k]["enum"] for p in v.split(",")
            ):
                errors.append(f"{where}: query {k}={v!r} is not one of {params[k]['enum']}")
        missing = [p for p, d in m.get("parameters", {}).items() if d.get("required") and d.get("location") == "query"
                   and p not in {kv[0] for kv in query}]
        if missing:
            errors.append(f"{where}: required query parameters missing: {missing}")
        req = x["request"]
        upload = path.startswith("upload/")
        if not upload and req not in (None, {}):
            if "request" in m:
                check(api, req, m["request"], f"{where} request", errors)
            else:
                errors.append(f"{where}: a request body where the method takes none: {json.dumps(req)[:120]}")
        resp, status = x["response"], x["status"]
        media = "alt=media" in x["query"].split("&")
        if 200 <= status < 300 and media:
            pass  # the object's bytes, not a resource
        elif 200 <= status < 300:
            if "response" in m:
                check(api, resp if resp is not None else {}, m["response"], f"{where} response", errors)
                if m["response"].get("$ref") == "Operation" and isinstance(resp, dict) and resp.get("done") \
                        and "response" in resp:
                    name = resp.get("name", "")
                    kind = "WorkloadIdentityPoolProvider" if "/providers/" in name else "WorkloadIdentityPool"
                    check(api, resp["response"], {"$ref": kind}, f"{where} operation response", errors)
            elif resp not in (None, {}):
                errors.append(f"{where}: a response body where the method returns none")
        elif status >= 400:
            check_error(resp, status, f"{where} ({status})", errors)
    print(json.dumps({"methods": counts}, indent=1, sort_keys=True))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
