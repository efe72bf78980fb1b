"""Checks recorded HTTP exchanges with the Azure Resource Manager fake against the models of
Microsoft's official Python SDKs (azure-mgmt-resource, azure-mgmt-storage, azure-mgmt-msi 2024-11-30,
azure-mgmt-authorization 2022-04-01): the field names, nesting and types each SDK (de)serializes.

Usage: azure_schema.py EXCHANGES.json  (a list of {method, path, query, request, status, response}).

Each ARM exchange is matched to an operation by method and path; then
- the request body must fit the operation's parameter model: no field the model lacks, no read-only
  field, every required field present, the right JSON types;
- a 2xx response must fit the operation's result model (no unknown field, right types);
- an error response must be ARM's `{"error": {"code", "message", …}}`.
Prints a JSON report {"operations": {name: count}}; exits 1 listing every violation.
"""

import functools
import json
import re
import sys

from azure.mgmt.authorization.v2022_04_01 import models as authz
from azure.mgmt.msi.v2024_11_30 import models as msi
from azure.mgmt.resource.resources import models as res
from azure.mgmt.storage import models as storage

# --- model descriptions: ("model", {rest_name: (desc, readonly, required)}), ("list", d), ("dict", d),
# ("prim", python type), ("any",)


def split_key(key):
    return [k.replace("\\.", ".") for k in re.split(r"(?<!\\)\.", key)]


MSREST_PRIMS = {"str": str, "bool": bool, "int": int, "long": int, "float": float, "iso-8601": str,
                "rfc-1123": str, "duration": str, "unix-time": int, "bytearray": str, "base64": str,
                "date": str, "time": str}


def msrest_type(t, module):
    if t.startswith("[") and t.endswith("]"):
        return ("list", msrest_type(t[1:-1], module))
    if t.startswith("{") and t.endswith("}"):
        return ("dict", msrest_type(t[1:-1], module))
    if t in MSREST_PRIMS:
        return ("prim", MSREST_PRIMS[t])
    if t == "object":
        return ("any",)
    cls = getattr(module, t, None)
    return ("msrest", cls) if cls is not None else ("any",)


def msrest_model(cls, module):
    fields = {}
    validation = getattr(cls, "_validation", {})
    for attr, a in cls._attribute_map.items():
        path = split_key(a["key"])
        v = validation.get(attr, {})
        node = fields
        for seg in path[:-1]:
            node = node.setdefault(seg, (("model", {}), False, False))[0][1]
        node[path[-1]] = (msrest_type(a["type"], module), bool(v.get("readonly")), bool(v.get("required")))
    return ("model", fields)


def base_type(p):
    """The description of a model_base field from its deserializer partial."""
    if not isinstance(p, functools.partial):
        return ("any",)
    name = p.func.__name__
    if name == "_deserialize_with_optional":
        return base_type(p.args[0])
    if name == "_deserialize_dict":
        return ("dict", base_type(p.args[0]))
    if name in ("_deserialize_sequence", "_deserialize_list"):
        return ("list", base_type(p.args[0]))
    if name == "_deserialize_model":
        return ("base", p.args[0])
    if name == "_deserialize_with_union":
        return ("union", [base_type(x) for x in p.args[0]])
    if name == "_deserialize_default" and p.args and isinstance(p.args[0], type):
        t = p.args[0]
        for prim in (bool, int, float, str):
            if issubclass(t, prim):
                return ("prim", prim)
    return ("any",)


def base_model(cls):
    try:
        cls()
    except TypeError:
        pass
    fields = {}
    for f in getattr(cls, "_attr_to_rest_field", {}).values():
        vis = f._visibility or []
        readonly = vis == ["read"]
        required = not f._is_optional and "create" in vis
        fields[f._rest_name] = (base_type(f._type), readonly, required)
    return ("model", fields)


def resolve(desc):
    if desc[0] == "msrest":
        return msrest_model(desc[1], sys.modules[desc[1].__module__])
    if desc[0] == "base":
        return base_model(desc[1])
    return desc


def check(value, desc, where, request, errors):
    desc = resolve(desc)
    kind = desc[0]
    if kind == "any" or value is None:
        return
    if kind == "union":
        trial = []
        for d in desc[1]:
            e = []
            check(value, d, where, request, e)
            if not e:
                return
            trial.append(e)
        errors.extend(trial[0])
        return
    if kind == "model":
        if not isinstance(value, dict):
            errors.append(f"{where}: expected an object, got {json.dumps(value)[:80]}")
            return
        fields = desc[1]
        for k, v in value.items():
            if k not in fields:
                errors.append(f"{where}: unknown field {k!r} (the SDK model has {sorted(fields)})")
                continue
            sub, readonly, _ = fields[k]
            if request and readonly:
                errors.append(f"{where}: read-only field {k!r} sent")
            check(v, sub, f"{where}.{k}", request, errors)
        if request:
            for k, (_, _, required) in fields.items():
                if required and k not in value:
                    errors.append(f"{where}: required field {k!r} missing")
    elif kind == "list":
        if not isinstance(value, list):
            errors.append(f"{where}: expected an array, got {json.dumps(value)[:80]}")
            return
        for i, v in enumerate(value):
            check(v, desc[1], f"{where}[{i}]", request, errors)
    elif kind == "dict":
        if not isinstance(value, dict):
            errors.append(f"{where}: expected an object, got {json.dumps(value)[:80]}")
            return
        for k, v in value.items():
            check(v, desc[1], f"{where}[{k}]", request, errors)
    elif kind == "prim":
        t = desc[1]
        ok = isinstance(value, t) and not (t in (int, float) and isinstance(value, bool))
        if t is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            errors.append(f"{where}: expected {t.__name__}, got {json.dumps(value)[:80]}")


def ms(cls):
    return ("msrest", cls)


def base(cls):
    return ("base", cls)


SUB = r"/subscriptions/[^/]+"
RG = SUB + r"/resourceGroups/[^/]+"
ID = RG + r"/providers/Microsoft\.ManagedIdentity/userAssignedIdentities"
SA = RG + r"/providers/Microsoft\.Storage/storageAccounts"
AZ = r"(?:/subscriptions/[^/]+(?:/resourceGroups/[^/]+)?)/providers/Microsoft\.Authorization"
# (method, path regex, operation, request model, response model)
ROUTES = [
    ("GET", SUB, "subscriptions.get", None, None),  # no SDK model installed (SubscriptionClient left azure-mgmt-resource)
    ("GET", RG, "resource_groups.get", None, base(res.ResourceGroup)),
    ("PUT", RG, "resource_groups.create_or_update", base(res.ResourceGroup), base(res.ResourceGroup)),
    ("DELETE", RG, "resource_groups.delete", None, None),
    ("GET", SA + r"/[^/]+", "storage_accounts.get_properties", None, base(storage.StorageAccount)),
    ("PUT", SA + r"/[^/]+", "storage_accounts.create", base(storage.StorageAccountCreateParameters), base(storage.StorageAccount)),
    ("DELETE", SA + r"/[^/]+", "storage_accounts.delete", None, None),
    ("POST", SA + r"/[^/]+/listKeys", "storage_accounts.list_keys", None, base(storage.StorageAccountListKeysResult)),
    ("GET", ID, "user_assigned_identities.list_by_resource_group", None, ms(msi.UserAssignedIdentitiesListResult)),
    ("GET", ID + r"/[^/]+", "user_assigned_identities.get", None, ms(msi.Identity)),
    ("PUT", ID + r"/[^/]+", "user_assigned_identities.create_or_update", ms(msi.Identity), ms(msi.Identity)),
    ("DELETE", ID + r"/[^/]+", "user_assigned_identities.delete", None, None),
    ("GET", ID + r"/[^/]+/federatedIdentityCredentials", "federated_identity_credentials.list", None, ms(msi.FederatedIdentityCredentialsListResult)),
    ("GET", ID + r"/[^/]+/federatedIdentityCredentials/[^/]+", "federated_identity_credentials.get", None, ms(msi.FederatedIdentityCredential)),
    ("PUT", ID + r"/[^/]+/federatedIdentityCredentials/[^/]+", "federated_identity_credentials.create_or_update", ms(msi.FederatedIdentityCredential), ms(msi.FederatedIdentityCredential)),
    ("DELETE", ID + r"/[^/]+/federatedIdentityCredentials/[^/]+", "federated_identity_credentials.delete", None, None),
    ("GET", AZ + r"/roleDefinitions", "role_definitions.list", None, ms(authz.RoleDefinitionListResult)),
    ("GET", AZ + r"/roleDefinitions/[^/]+", "role_definitions.get", None, ms(authz.RoleDefinition)),
    ("PUT", AZ + r"/roleDefinitions/[^/]+", "role_definitions.create_or_update", ms(authz.RoleDefinition), ms(authz.RoleDefinition)),
    ("DELETE", AZ + r"/roleDefinitions/[^/]+", "role_definitions.delete", None, ms(authz.RoleDefinition)),
    ("GET", AZ + r"/roleAssignments", "role_assignments.list", None, ms(authz.RoleAssignmentListResult)),
    ("GET", AZ + r"/roleAssignments/[^/]+", "role_assignments.get", None, ms(authz.RoleAssignment)),
    ("PUT", AZ + r"/roleAssignments/[^/]+", "role_assignments.create", ms(authz.RoleAssignmentCreateParameters), ms(authz.RoleAssignment)),
    ("DELETE", AZ + r"/roleAssignments/[^/]+", "role_assignments.delete", None, ms(authz.RoleAssignment)),
]


def check_error(body, status, where, errors):
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        errors.append(f"{where}: an ARM error must be {{\"error\": {{…}}}}, got {json.dumps(body)[:120]}")
        return
    e = body["error"]
    if not isinstance(e.get("code"), str) or not isinstance(e.get("message"), str):
        errors.append(f"{where}: error.code and error.message must be strings: {e}")
    unknown = set(e) - {"code", "message", "target", "details", "additionalInfo"}
    if unknown:
        errors.append(f"{where}: unknown fields in error: {sorted(unknown)}")


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        exchanges = json.load(f)
    errors, counts = [], {}
    for i, x in enumerate(exchanges):
        path = x["path"]
        if re.search(r"/oauth2/v2\.0/token$|/\.well-known/openid-configuration$|^/operations/|^/msi/token$", path):
            continue  # Azure AD (token, tenant discovery), the managed identity endpoint, operation monitors
        where = f"#{i} {x['method']} {path}"
        route = next((r for r in ROUTES if r[0] == x["method"] and re.fullmatch(r[1], path, re.I)), None)
        if route is None:
            errors.append(f"{where}: no ARM operation the SDKs know has this method and path")
            continue
        _, _, name, req_model, resp_model = route
        where = f"#{i} {name}"
        counts[name] = counts.get(name, 0) + 1
        if "api-version=" not in x["query"]:
            errors.append(f"{where}: no api-version")
        if x["request"] is not None:
            if req_model is None:
                errors.append(f"{where}: a request body where the operation takes none")
            else:
                check(x["request"], req_model, f"{where} request", True, errors)
        elif req_model is not None:
            errors.append(f"{where}: no request body")
        status, resp = x["status"], x["response"]
        if 200 <= status < 300:
            if resp is not None and resp_model is not None:
                check(resp, resp_model, f"{where} response", False, errors)
        elif status >= 400:
            check_error(resp, status, f"{where} ({status})", errors)
    print(json.dumps({"operations": counts}, indent=1, sort_keys=True))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
