"""Drives the GCP fake with Google's official Python clients: every call `ccoctl gcp` and the operator
make, with the paths, methods, parameters and bodies google-api-python-client builds from its bundled
discovery documents (iam v1, cloudresourcemanager v1 and v3) and google-cloud-storage's own requests.

Environment: FAKE_ENDPOINT (http://127.0.0.1:port), FAKE_KEY_FILE (a service-account key whose
token_uri is the fake), FAKE_PROJECT, FAKE_PROJECT_NUMBER. Prints the JSON list of the steps it
completed; any unexpected answer raises (non-zero exit, traceback on stderr).
"""

import base64
import json
import os
import time
import urllib.error
import urllib.request

from google.api_core import exceptions as gexc
from google.cloud import storage
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

EP = os.environ["FAKE_ENDPOINT"]
PROJECT = os.environ["FAKE_PROJECT"]
NUMBER = os.environ["FAKE_PROJECT_NUMBER"]
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
with open(os.environ["FAKE_KEY_FILE"], encoding="utf-8") as f:
    KEY = json.load(f)
CREDS = service_account.Credentials.from_service_account_info(KEY, scopes=SCOPES)

steps = []


def step(name):
    steps.append(name)


def api(name, version):
    # static_discovery: the discovery document bundled with the client, as Google published it.
    return build(
        name,
        version,
        credentials=CREDS,
        client_options={"api_endpoint": EP},
        static_discovery=True,
        cache_discovery=False,
    )


def fails(code, status, fn):
    """Runs fn, which must fail with HTTP `code` and google.rpc `status` (None: not checked)."""
    try:
        fn()
    except HttpError as e:
        assert e.status_code == code, f"expected {code}, got {e.status_code}: {e.content!r}"
        body = json.loads(e.content)
        assert body["error"]["code"] == code, body
        if status:
            assert body["error"]["status"] == status, body
        return body
    raise AssertionError(f"expected HTTP {code} {status}, the call succeeded")


def until_visible(fn, tries=10):
    """Eventual consistency: retries a call answered 404 (a new object not visible yet)."""
    for _ in range(tries - 1):
        try:
            return fn()
        except HttpError as e:
            if e.status_code != 404:
                raise
        except gexc.NotFound:
            pass
        time.sleep(0.05)
    return fn()


def wait(iam, op, what):
    """Polls a long-running operation of a pool or provider until done; returns its response."""
    assert op["name"].startswith(what + "/operations/"), op
    ops = iam.projects().locations().workloadIdentityPools()
    if "/providers/" in what:
        ops = ops.providers()
    for _ in range(20):
        if op.get("done"):
            assert "error" not in op, op
            return op["response"]
        op = ops.operations().get(name=op["name"]).execute()
    raise AssertionError(f"operation {op['name']} never finished")


def service_accounts(iam, crm):
    sas = iam.projects().serviceAccounts()
    parent = f"projects/{PROJECT}"
    body = {
        "accountId": "official-sa",
        "serviceAccount": {"displayName": "official-sa", "description": "made by the official client"},
    }
    sa = sas.create(name=parent, body=body).execute()
    email = f"official-sa@{PROJECT}.iam.gserviceaccount.com"
    assert sa["email"] == email and sa["name"] == f"{parent}/serviceAccounts/{email}", sa
    assert sa["uniqueId"] and sa["projectId"] == PROJECT, sa
    step("iam.projects.serviceAccounts.create")
    fails(409, "ALREADY_EXISTS", lambda: sas.create(name=parent, body=body).execute())
    step("iam.projects.serviceAccounts.create 409")
    fails(400, "INVALID_ARGUMENT", lambda: sas.create(name=parent, body={"accountId": "X"}).execute())
    step("iam.projects.serviceAccounts.create 400")
    name = f"{parent}/serviceAccounts/{email}"
    got = sas.get(name=name).execute()
    assert got["email"] == email and got["description"] == "made by the official client", got
    step("iam.projects.serviceAccounts.get")
    fails(404, "NOT_FOUND", lambda: sas.get(name=f"{parent}/serviceAccounts/nope@{PROJECT}.iam.gserviceaccount.com").execute())
    step("iam.projects.serviceAccounts.get 404")
    sas.create(name=parent, body={"accountId": "official-sa-2", "serviceAccount": {"displayName": "two"}}).execute()
    seen, req, pages = [], sas.list(name=parent, pageSize=1), 0
    while req is not None:
        page = req.execute()
        seen += [a["email"] for a in page.get("accounts", [])]
        pages += 1
        req = sas.list_next(req, page)
    assert email in seen and pages >= 2, (seen, pages)
    step("iam.projects.serviceAccounts.list (paged)")

    # The account's own policy: who may impersonate it (workloadIdentityUser for federated principals).
    policy = until_visible(lambda: sas.getIamPolicy(resource=name).execute())
    assert "etag" in policy, policy
    step("iam.projects.serviceAccounts.getIamPolicy")
    member = f"principalSet://iam.googleapis.com/projects/{NUMBER}/locations/global/workloadIdentityPools/official-pool/attribute.sub/system:serviceaccount:ns:sa"
    policy["bindings"] = [{"role": "roles/iam.workloadIdentityUser", "members": [member]}]
    new = sas.setIamPolicy(resource=name, body={"policy": policy}).execute()
    assert new["bindings"] == policy["bindings"] and new["etag"] != policy["etag"], new
    step("iam.projects.serviceAccounts.setIamPolicy")
    fails(409, "ABORTED", lambda: sas.setIamPolicy(resource=name, body={"policy": policy}).execute())
    step("iam.projects.serviceAccounts.setIamPolicy 409 stale etag")
    assert sas.getIamPolicy(resource=name).execute()["bindings"] == policy["bindings"]

    # Keys (the operator's minting).
    keys = sas.keys()
    key = until_visible(
        lambda: keys.create(
            name=name, body={"privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE", "keyAlgorithm": "KEY_ALG_RSA_2048"}
        ).execute()
    )
    file = json.loads(base64.b64decode(key["privateKeyData"]))
    assert file["type"] == "service_account" and file["client_email"] == email, file
    assert key["name"] == f"{name}/keys/{file['private_key_id']}", key
    # The key file it returns is one the official auth library accepts.
    service_account.Credentials.from_service_account_info(file, scopes=SCOPES)
    step("iam.projects.serviceAccounts.keys.create")
    listed = keys.list(name=name, keyTypes="USER_MANAGED").execute()["keys"]
    assert [k["name"] for k in listed] == [key["name"]], listed
    step("iam.projects.serviceAccounts.keys.list")
    assert keys.get(name=key["name"]).execute()["keyType"] == "USER_MANAGED"
    step("iam.projects.serviceAccounts.keys.get")
    keys.delete(name=key["name"]).execute()
    fails(404, "NOT_FOUND", lambda: keys.get(name=key["name"]).execute())
    fails(404, "NOT_FOUND", lambda: keys.delete(name=key["name"]).execute())
    step("iam.projects.serviceAccounts.keys.delete (+404)")
    return email, name


def roles(iam):
    r = iam.projects().roles()
    parent = f"projects/{PROJECT}"
    body = {
        "roleId": "official_role",
        "role": {
            "title": "official_role",
            "description": "made by the official client",
            "includedPermissions": ["iam.roles.get", "storage.objects.get"],
            "stage": "GA",
        },
    }
    role = r.create(parent=parent, body=body).execute()
    name = f"{parent}/roles/official_role"
    assert role["name"] == name and role["includedPermissions"] == body["role"]["includedPermissions"], role
    assert role["etag"], role
    step("iam.projects.roles.create")
    fails(409, "ALREADY_EXISTS", lambda: r.create(parent=parent, body=body).execute())
    step("iam.projects.roles.create 409")
    assert r.get(name=name).execute()["title"] == "official_role"
    step("iam.projects.roles.get")
    fails(404, "NOT_FOUND", lambda: r.get(name=f"{parent}/roles/nope").execute())
    step("iam.projects.roles.get 404")
    patched = r.patch(
        name=name,
        updateMask="includedPermissions,title,description,stage",
        body={"includedPermissions": ["iam.roles.get"], "title": "t2", "description": "d2", "stage": "GA"},
    ).execute()
    assert patched["includedPermissions"] == ["iam.roles.get"] and patched["title"] == "t2", patched
    step("iam.projects.roles.patch")
    full = r.list(parent=parent, view="FULL").execute()["roles"]
    assert [x["includedPermissions"] for x in full if x["name"] == name] == [["iam.roles.get"]], full
    basic = r.list(parent=parent).execute()["roles"]
    assert all("includedPermissions" not in x for x in basic), basic
    step("iam.projects.roles.list")
    deleted = r.delete(name=name).execute()
    assert deleted.get("deleted") is True, deleted
    assert name not in [x["name"] for x in r.list(parent=parent).execute().get("roles", [])]
    assert name in [x["name"] for x in r.list(parent=parent, showDeleted=True).execute()["roles"]]
    step("iam.projects.roles.delete (soft)")
    fails(400, "FAILED_PRECONDITION", lambda: r.create(parent=parent, body=body).execute())
    step("iam.projects.roles.create 400 deleted id")
    back = r.undelete(name=name, body={}).execute()
    assert not back.get("deleted"), back
    step("iam.projects.roles.undelete")
    return name


def pools(iam):
    p = iam.projects().locations().workloadIdentityPools()
    parent = f"projects/{PROJECT}/locations/global"
    pool = f"projects/{NUMBER}/locations/global/workloadIdentityPools/official-pool"
    body = {"displayName": "official-pool", "description": "made by the official client", "disabled": False}
    op = p.create(parent=parent, workloadIdentityPoolId="official-pool", body=body).execute()
    got = wait(iam, op, pool)
    assert got["name"] == pool and got["state"] == "ACTIVE", got
    step("iam.projects.locations.workloadIdentityPools.create (operation)")
    fails(409, "ALREADY_EXISTS", lambda: p.create(parent=parent, workloadIdentityPoolId="official-pool", body=body).execute())
    step("iam.projects.locations.workloadIdentityPools.create 409")
    assert p.get(name=f"{parent}/workloadIdentityPools/official-pool").execute()["description"] == body["description"]
    step("iam.projects.locations.workloadIdentityPools.get")
    fails(404, "NOT_FOUND", lambda: p.get(name=f"{parent}/workloadIdentityPools/nope-pool").execute())
    step("iam.projects.locations.workloadIdentityPools.get 404")
    assert pool in [x["name"] for x in p.list(parent=parent).execute()["workloadIdentityPools"]]
    step("iam.projects.locations.workloadIdentityPools.list")

    prov = p.providers()
    pname = f"{pool}/providers/official-provider"
    jwks = json.dumps({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": "AQAB", "e": "AQAB"}]})
    pbody = {
        "displayName": "official-provider",
        "description": "made by the official client",
        "disabled": False,
        "attributeMapping": {"google.subject": "assertion.sub"},
        "oidc": {"issuerUri": "https://issuer.example.com", "allowedAudiences": ["openshift"], "jwksJson": jwks},
    }
    op = prov.create(parent=pool, workloadIdentityPoolProviderId="official-provider", body=pbody).execute()
    got = wait(iam, op, pname)
    assert got["name"] == pname and got["oidc"]["allowedAudiences"] == ["openshift"], got
    step("iam.projects.locations.workloadIdentityPools.providers.create (operation)")
    fails(409, "ALREADY_EXISTS", lambda: prov.create(parent=pool, workloadIdentityPoolProviderId="official-provider", body=pbody).execute())
    step("iam.projects.locations.workloadIdentityPools.providers.create 409")
    fails(400, "INVALID_ARGUMENT", lambda: prov.create(parent=pool, workloadIdentityPoolProviderId="bad-provider",
          body={**pbody, "oidc": {"issuerUri": "http://plain.example.com"}}).execute())
    step("iam.projects.locations.workloadIdentityPools.providers.create 400 http issuer")
    assert prov.get(name=pname).execute()["attributeMapping"] == pbody["attributeMapping"]
    step("iam.projects.locations.workloadIdentityPools.providers.get")
    fails(404, "NOT_FOUND", lambda: prov.get(name=f"{pool}/providers/nope-provider").execute())
    step("iam.projects.locations.workloadIdentityPools.providers.get 404")
    op = prov.patch(name=pname, updateMask="oidc.allowedAudiences,description",
                    body={"description": "d2", "oidc": {"allowedAudiences": ["a2"]}}).execute()
    got = wait(iam, op, pname)
    assert got["oidc"]["allowedAudiences"] == ["a2"] and got["description"] == "d2", got
    assert got["oidc"]["issuerUri"] == "https://issuer.example.com", got
    step("iam.projects.locations.workloadIdentityPools.providers.patch (operation)")
    assert pname in [x["name"] for x in prov.list(parent=pool).execute()["workloadIdentityPoolProviders"]]
    step("iam.projects.locations.workloadIdentityPools.providers.list")
    got = wait(iam, prov.delete(name=pname).execute(), pname)
    assert got["state"] == "DELETED", got
    step("iam.projects.locations.workloadIdentityPools.providers.delete (operation)")
    got = wait(iam, prov.undelete(name=pname, body={}).execute(), pname)
    assert got["state"] == "ACTIVE", got
    step("iam.projects.locations.workloadIdentityPools.providers.undelete (operation)")

    got = wait(iam, p.delete(name=pool).execute(), pool)
    assert got["state"] == "DELETED", got
    assert p.get(name=pool).execute()["state"] == "DELETED"
    step("iam.projects.locations.workloadIdentityPools.delete (operation, soft)")
    fails(409, "ALREADY_EXISTS", lambda: p.create(parent=parent, workloadIdentityPoolId="official-pool", body=body).execute())
    step("iam.projects.locations.workloadIdentityPools.create 409 deleted id")
    got = wait(iam, p.undelete(name=pool, body={}).execute(), pool)
    assert got["state"] == "ACTIVE", got
    step("iam.projects.locations.workloadIdentityPools.undelete (operation)")
    return pool


def project(crm, email, role):
    pr = crm.projects()
    got = pr.get(projectId=PROJECT).execute()
    assert got["projectNumber"] == NUMBER and got["projectId"] == PROJECT, got
    step("cloudresourcemanager.projects.get")
    fails(403, "PERMISSION_DENIED", lambda: pr.get(projectId="someone-elses").execute())
    step("cloudresourcemanager.projects.get 403")
    policy = pr.getIamPolicy(resource=PROJECT, body={}).execute()
    assert policy["etag"] and policy["bindings"], policy
    step("cloudresourcemanager.projects.getIamPolicy")
    policy["bindings"].append({"role": role, "members": [f"serviceAccount:{email}"]})
    new = until_visible(lambda: pr.setIamPolicy(resource=PROJECT, body={"policy": policy}).execute())
    assert {"role": role, "members": [f"serviceAccount:{email}"]} in new["bindings"], new
    assert new["etag"] != policy["etag"], new
    step("cloudresourcemanager.projects.setIamPolicy")
    fails(409, "ABORTED", lambda: pr.setIamPolicy(resource=PROJECT, body={"policy": policy}).execute())
    step("cloudresourcemanager.projects.setIamPolicy 409 stale etag")
    bad = dict(new, bindings=new["bindings"] + [{"role": "roles/viewer", "members": [f"serviceAccount:ghost-sa@{PROJECT}.iam.gserviceaccount.com"]}])
    fails(400, "INVALID_ARGUMENT", lambda: pr.setIamPolicy(resource=PROJECT, body={"policy": bad}).execute())
    step("cloudresourcemanager.projects.setIamPolicy 400 unknown member")
    perms = ["iam.roles.create", "iam.serviceAccounts.create"]
    got = pr.testIamPermissions(resource=PROJECT, body={"permissions": perms}).execute()
    assert got["permissions"] == perms, got
    step("cloudresourcemanager.projects.testIamPermissions")


def project_v3(crm3, email):
    """Resource Manager v3, which ccoctl and the operator call through google-cloud-resourcemanager-v3."""
    pr = crm3.projects()
    got = pr.get(name=f"projects/{PROJECT}").execute()
    assert got["name"] == f"projects/{NUMBER}" and got["projectId"] == PROJECT, got
    step("cloudresourcemanager.v3.projects.get")
    fails(403, "PERMISSION_DENIED", lambda: pr.get(name="projects/someone-elses").execute())
    step("cloudresourcemanager.v3.projects.get 403")
    policy = pr.getIamPolicy(resource=f"projects/{PROJECT}", body={}).execute()
    assert policy["etag"] and policy["bindings"], policy
    step("cloudresourcemanager.v3.projects.getIamPolicy")
    member = f"serviceAccount:{email}"
    policy["bindings"].append({"role": "roles/viewer", "members": [member]})
    new = until_visible(lambda: pr.setIamPolicy(resource=f"projects/{PROJECT}", body={"policy": policy}).execute())
    assert {"role": "roles/viewer", "members": [member]} in new["bindings"], new
    step("cloudresourcemanager.v3.projects.setIamPolicy")
    fails(409, "ABORTED", lambda: pr.setIamPolicy(resource=f"projects/{PROJECT}", body={"policy": policy}).execute())
    step("cloudresourcemanager.v3.projects.setIamPolicy 409 stale etag")
    perms = ["iam.roles.get"]
    got = pr.testIamPermissions(resource=f"projects/{PROJECT}", body={"permissions": perms}).execute()
    assert got["permissions"] == perms, got
    step("cloudresourcemanager.v3.projects.testIamPermissions")


def bucket():
    client = storage.Client(project=PROJECT, credentials=CREDS, client_options={"api_endpoint": EP})
    b = client.create_bucket("official-bucket", location="US")
    assert b.name == "official-bucket", b
    step("storage.buckets.insert")
    try:
        client.create_bucket("official-bucket", location="US")
        raise AssertionError("second create_bucket succeeded")
    except gexc.Conflict:
        pass
    step("storage.buckets.insert 409")
    assert client.get_bucket("official-bucket").name == "official-bucket"
    step("storage.buckets.get")
    assert client.lookup_bucket("no-such-bucket-here") is None
    step("storage.buckets.get 404")
    b = client.bucket("official-bucket")
    policy = until_visible(b.get_iam_policy)
    assert policy.etag, policy
    step("storage.buckets.getIamPolicy")
    stale = until_visible(b.get_iam_policy)
    policy.bindings.append({"role": "roles/storage.objectViewer", "members": {"allUsers"}})
    new = b.set_iam_policy(policy)
    assert any(x["role"] == "roles/storage.objectViewer" and "allUsers" in x["members"] for x in new.bindings), new.bindings
    step("storage.buckets.setIamPolicy")
    stale.bindings.append({"role": "roles/storage.objectAdmin", "members": {"allUsers"}})
    try:
        b.set_iam_policy(stale)
        raise AssertionError("a stale bucket policy was accepted")
    except gexc.PreconditionFailed:
        pass
    step("storage.buckets.setIamPolicy 412 stale etag")
    doc = json.dumps({"issuer": "https://example.com/official-bucket"}).encode()
    blob = b.blob(".well-known/openid-configuration")
    blob.upload_from_string(doc, content_type="application/json")
    step("storage.objects.insert")
    assert b.blob(".well-known/openid-configuration").download_as_bytes() == doc
    step("storage.objects.get (media)")
    assert [x.name for x in client.list_blobs("official-bucket")] == [".well-known/openid-configuration"]
    step("storage.objects.list")
    # What an OIDC client does: read the issuer document anonymously, path style.
    with urllib.request.urlopen(f"{EP}/official-bucket/.well-known/openid-configuration") as resp:
        assert resp.read() == doc
    step("anonymous path-style read")
    b.blob(".well-known/openid-configuration").delete()
    try:
        b.blob(".well-known/openid-configuration").download_as_bytes()
        raise AssertionError("deleted object still readable")
    except gexc.NotFound:
        pass
    step("storage.objects.delete")
    b.delete()
    assert client.lookup_bucket("official-bucket") is None
    step("storage.buckets.delete")


def main():
    iam = api("iam", "v1")
    crm = api("cloudresourcemanager", "v1")
    email, name = service_accounts(iam, crm)
    role = roles(iam)
    pools(iam)
    project(crm, email, role)
    project_v3(api("cloudresourcemanager", "v3"), email)
    bucket()
    iam.projects().serviceAccounts().delete(name=name).execute()
    fails(404, "NOT_FOUND", lambda: iam.projects().serviceAccounts().get(name=name).execute())
    step("iam.projects.serviceAccounts.delete")
    print(json.dumps(steps))


if __name__ == "__main__":
    main()
