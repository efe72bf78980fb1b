"""Drives the Azure Resource Manager fake with Microsoft's official Python SDKs: every call
`ccoctl azure` makes (subscription, resource groups, storage accounts and their keys, user-assigned
identities, federated identity credentials, role definitions and assignments), their 404/409 and
long-running paths included, authenticated by azure-identity's ClientSecretCredential against the
fake's Azure AD endpoints; then the issuer's Blob calls with azure-storage-blob against Azurite.

Environment: FAKE_ENDPOINT (https://127.0.0.1:port, authority host and ARM endpoint),
FAKE_SUBSCRIPTION, FAKE_TENANT, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FAKE_WORKLOAD_CLIENT_ID,
FAKE_FEDERATED_TOKEN, FAKE_MANAGED_CLIENT_ID, FAKE_IDENTITY_HEADER, FAKE_TMP (a scratch directory)
and REQUESTS_CA_BUNDLE (the test CA). Also checks WorkloadIdentityCredential (a federated token file)
and ManagedIdentityCredential (App Service endpoint) against the fake. Prints the JSON list of the steps it completed; any unexpected answer raises.
"""

import json
import os
import time
import urllib.request

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.identity import ClientSecretCredential, ManagedIdentityCredential, WorkloadIdentityCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01 import models as authz
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.v2024_11_30 import models as msi
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.storage import StorageManagementClient
from azure.mgmt.storage import models as storage
from azure.storage.blob import BlobServiceClient, ContentSettings, PublicAccess

EP = os.environ["FAKE_ENDPOINT"]
SUB = os.environ["FAKE_SUBSCRIPTION"]
TENANT = os.environ["FAKE_TENANT"]
SCOPES = [EP + "/.default"]
RG = "official-rg"
steps = []


def step(name):
    steps.append(name)


def credential(secret):
    return ClientSecretCredential(
        TENANT, os.environ["FAKE_CLIENT_ID"], secret, authority=EP, disable_instance_discovery=True
    )


CRED = credential(os.environ["FAKE_CLIENT_SECRET"])
ARM = {"base_url": EP, "credential_scopes": SCOPES}


def fails(exc, code, fn):
    """Runs fn, which must raise `exc` carrying the ARM error code `code` (None: any code)."""
    try:
        fn()
    except exc as e:
        got = e.error.code if getattr(e, "error", None) is not None else None
        assert code is None or got == code, f"expected {code}, got {got}: {e}"
        return e
    raise AssertionError(f"expected {exc.__name__} {code}, the call succeeded")


def auth():
    token = CRED.get_token(*SCOPES)
    assert token.token and token.expires_on > time.time(), token
    step("azure-identity ClientSecretCredential.get_token")
    try:
        credential("wrong").get_token(*SCOPES)
        raise AssertionError("a wrong client secret got a token")
    except ClientAuthenticationError:
        pass
    step("azure-identity ClientSecretCredential.get_token (bad secret)")
    workload_identity()
    managed_identity()


def workload_identity():
    """A federated token file exchanged for a token (client_assertion), as on AKS or OpenShift."""
    path = os.path.join(os.environ["FAKE_TMP"], "federated-token")

    def cred(content):
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
        return WorkloadIdentityCredential(
            tenant_id=TENANT,
            client_id=os.environ["FAKE_WORKLOAD_CLIENT_ID"],
            token_file_path=path,
            authority=EP,
            disable_instance_discovery=True,
        )

    token = cred(os.environ["FAKE_FEDERATED_TOKEN"]).get_token(*SCOPES)
    assert token.token and token.expires_on > time.time(), token
    step("azure-identity WorkloadIdentityCredential.get_token")
    try:
        cred("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvdGhlciJ9.c2ln").get_token(*SCOPES)
        raise AssertionError("an unknown assertion got a token")
    except ClientAuthenticationError:
        pass
    step("azure-identity WorkloadIdentityCredential.get_token (unknown assertion)")


def managed_identity():
    """The App Service managed identity endpoint (IDENTITY_ENDPOINT, X-IDENTITY-HEADER)."""
    os.environ["IDENTITY_ENDPOINT"] = EP + "/msi/token"
    os.environ["IDENTITY_HEADER"] = os.environ["FAKE_IDENTITY_HEADER"]
    try:
        token = ManagedIdentityCredential(client_id=os.environ["FAKE_MANAGED_CLIENT_ID"]).get_token(*SCOPES)
        assert token.token and token.expires_on > time.time(), token
        step("azure-identity ManagedIdentityCredential.get_token (App Service)")
        try:
            ManagedIdentityCredential(client_id="unknown-identity").get_token(*SCOPES)
            raise AssertionError("an unknown identity got a token")
        except ClientAuthenticationError:
            pass
        step("azure-identity ManagedIdentityCredential.get_token (unknown identity)")
    finally:
        del os.environ["IDENTITY_ENDPOINT"]
        del os.environ["IDENTITY_HEADER"]


def subscription(rm):
    # azure-mgmt-resource 26 dropped SubscriptionClient: the same GET through the SDK's pipeline.
    resp = rm.send_request(HttpRequest("GET", f"/subscriptions/{SUB}?api-version=2022-12-01"))
    resp.raise_for_status()
    body = resp.json()
    assert body["subscriptionId"] == SUB and body["state"] == "Enabled", body
    step("subscriptions.get")


def resource_groups(rm):
    fails(ResourceNotFoundError, "ResourceGroupNotFound", lambda: rm.resource_groups.get(RG))
    step("resource_groups.get 404")
    g = rm.resource_groups.create_or_update(RG, {"location": "eastus", "tags": {"owner": "official"}})
    assert g.name == RG and g.location == "eastus" and g.tags == {"owner": "official"}, g
    assert g.properties.provisioning_state == "Succeeded", g
    step("resource_groups.create_or_update (create)")
    g = rm.resource_groups.create_or_update(RG, {"location": "eastus", "tags": {"owner": "official", "b": "c"}})
    assert g.tags == {"owner": "official", "b": "c"}, g
    step("resource_groups.create_or_update (update)")
    assert rm.resource_groups.get(RG).id == f"/subscriptions/{SUB}/resourceGroups/{RG}"
    step("resource_groups.get")


def storage_accounts(st):
    params = storage.StorageAccountCreateParameters(
        sku=storage.Sku(name="Standard_LRS"),
        kind="StorageV2",
        location="eastus",
        tags={"owner": "official"},
        properties=storage.StorageAccountPropertiesCreateParameters(
            allow_blob_public_access=True, enable_https_traffic_only=True, minimum_tls_version="TLS1_2"
        ),
    )
    fails(ResourceNotFoundError, "ResourceNotFound", lambda: st.storage_accounts.get_properties(RG, "officialsa"))
    step("storage_accounts.get_properties 404")
    acct = st.storage_accounts.begin_create(RG, "officialsa", params).result()
    assert acct.name == "officialsa" and acct.properties.primary_endpoints.blob, acct
    step("storage_accounts.begin_create (long-running)")
    fails(ResourceExistsError, "StorageAccountAlreadyTaken", lambda: _other_group_create(st, params))
    step("storage_accounts.begin_create 409 name taken")
    got = st.storage_accounts.get_properties(RG, "officialsa")
    assert got.properties.allow_blob_public_access is True and got.tags == {"owner": "official"}, got
    step("storage_accounts.get_properties")
    # (the model maps `keys`, which the Mapping base class also names a method)
    keys = st.storage_accounts.list_keys(RG, "officialsa")["keys"]
    assert keys and keys[0]["value"] and keys[0]["keyName"] == "key1", keys
    step("storage_accounts.list_keys")
    return got.properties.primary_endpoints.blob, keys[0]["value"]


def _other_group_create(st, params):
    # Storage account names are global: the same name in another group is taken.
    ResourceManagementClient(CRED, SUB, **ARM).resource_groups.create_or_update("official-rg-2", {"location": "eastus"})
    st.storage_accounts.begin_create("official-rg-2", "officialsa", params).result()


def identities(ms):
    ids = ms.user_assigned_identities
    fails(ResourceNotFoundError, "ResourceNotFound", lambda: ids.get(RG, "official-id"))
    step("user_assigned_identities.get 404")
    ident = ids.create_or_update(RG, "official-id", msi.Identity(location="eastus", tags={"owner": "official"}))
    assert ident.principal_id and ident.client_id and ident.tenant_id == TENANT, ident
    step("user_assigned_identities.create_or_update")
    assert ids.get(RG, "official-id").principal_id == ident.principal_id
    step("user_assigned_identities.get")
    assert [i.name for i in ids.list_by_resource_group(RG)] == ["official-id"]
    step("user_assigned_identities.list_by_resource_group")

    fics = ms.federated_identity_credentials
    fic = msi.FederatedIdentityCredential(
        issuer="https://official.blob.core.windows.net/issuer",
        subject="system:serviceaccount:ns:sa",
        audiences=["openshift"],
    )
    got = fics.create_or_update(RG, "official-id", "official-fic", fic)
    assert got.issuer == fic.issuer and got.subject == fic.subject and got.audiences == ["openshift"], got
    step("federated_identity_credentials.create_or_update")
    assert fics.get(RG, "official-id", "official-fic").subject == fic.subject
    step("federated_identity_credentials.get")
    fails(ResourceNotFoundError, None, lambda: fics.get(RG, "official-id", "nope"))
    step("federated_identity_credentials.get 404")
    fails(HttpResponseError, None, lambda: fics.create_or_update(RG, "official-id", "official-fic-2", fic))
    step("federated_identity_credentials.create_or_update 400 same issuer and subject")
    assert [f.name for f in fics.list(RG, "official-id")] == ["official-fic"]
    step("federated_identity_credentials.list")
    return ident


def roles(az, ident):
    rd = az.role_definitions
    scope = f"/subscriptions/{SUB}"
    builtin = list(rd.list(scope, filter="roleName eq 'Contributor'"))
    assert [r.role_name for r in builtin] == ["Contributor"] and builtin[0].role_type == "BuiltInRole", builtin
    step("role_definitions.list roleName eq")
    guid = "0f0f0f0f-0000-4000-8000-00000000000f"
    body = authz.RoleDefinition(
        role_name="official-role",
        description="made by the official client",
        role_type="CustomRole",
        permissions=[authz.Permission(actions=["Microsoft.Storage/storageAccounts/read"], not_actions=[])],
        assignable_scopes=[scope],
    )
    made = rd.create_or_update(scope, guid, body)
    assert made.role_name == "official-role" and made.id.endswith(guid), made
    step("role_definitions.create_or_update")
    fails(ResourceExistsError, "RoleDefinitionWithSameNameExists",
          lambda: rd.create_or_update(scope, "1f0f0f0f-0000-4000-8000-00000000000f", body))
    step("role_definitions.create_or_update 409 same name")
    assert rd.get_by_id(made.id).role_name == "official-role"
    step("role_definitions.get_by_id")
    assert [r.role_name for r in rd.list(scope, filter="type eq 'CustomRole'")] == ["official-role"]
    step("role_definitions.list type eq CustomRole")

    ra = az.role_assignments
    rg_scope = f"{scope}/resourceGroups/{RG}"
    params = authz.RoleAssignmentCreateParameters(
        role_definition_id=made.id, principal_id=ident.principal_id, principal_type="ServicePrincipal"
    )
    name = "2f0f0f0f-0000-4000-8000-00000000000f"
    fails(HttpResponseError, "PrincipalNotFound", lambda: ra.create(rg_scope, name, params))
    step("role_assignments.create 400 PrincipalNotFound (replication)")
    made_ra = ra.create(rg_scope, name, params)
    assert made_ra.principal_id == ident.principal_id and made_ra.scope.lower() == rg_scope.lower(), made_ra
    step("role_assignments.create")
    fails(ResourceExistsError, "RoleAssignmentExists",
          lambda: ra.create(rg_scope, "3f0f0f0f-0000-4000-8000-00000000000f", params))
    step("role_assignments.create 409 exists")
    found = list(ra.list_for_subscription(filter=f"principalId eq '{ident.principal_id}'"))
    assert [a.name for a in found] == [name], found
    step("role_assignments.list_for_subscription principalId eq")
    fails(ResourceExistsError, "RoleDefinitionHasAssignments", lambda: rd.delete(scope, guid))
    step("role_definitions.delete 409 still assigned")
    ra.delete_by_id(made_ra.id)
    assert list(ra.list_for_subscription(filter=f"principalId eq '{ident.principal_id}'")) == []
    step("role_assignments.delete_by_id")
    rd.delete(scope, guid)
    fails(ResourceNotFoundError, None, lambda: rd.get_by_id(made.id))
    step("role_definitions.delete")


def blobs(endpoint, key):
    account = endpoint.rstrip("/").rsplit("/", 1)[-1]
    svc = BlobServiceClient(account_url=endpoint, credential={"account_name": account, "account_key": key})
    c = svc.create_container("oidc", public_access=PublicAccess.BLOB)
    step("blob create_container (public blob access)")
    try:
        svc.create_container("oidc")
        raise AssertionError("second create_container succeeded")
    except ResourceExistsError:
        pass
    c.set_container_access_policy(signed_identifiers={}, public_access=PublicAccess.BLOB)
    assert c.get_container_properties().public_access == "blob"
    step("blob set_container_access_policy")
    doc = json.dumps({"issuer": endpoint + "oidc"}).encode()
    b = c.get_blob_client(".well-known/openid-configuration")
    b.upload_blob(doc, overwrite=True, content_settings=ContentSettings(content_type="application/json"),
                  tags={"owner": "official"})
    step("blob upload_blob (tags)")
    assert b.get_blob_tags() == {"owner": "official"}
    step("blob get_blob_tags")
    assert b.download_blob().readall() == doc
    step("blob download_blob")
    with urllib.request.urlopen(f"{endpoint}oidc/.well-known/openid-configuration") as resp:
        assert resp.read() == doc
    step("anonymous blob read")
    svc.delete_container("oidc")
    step("blob delete_container")


def cleanup(rm, st, ms):
    ms.user_assigned_identities.delete(RG, "official-id")
    fails(ResourceNotFoundError, "ResourceNotFound", lambda: ms.user_assigned_identities.get(RG, "official-id"))
    step("user_assigned_identities.delete")
    st.storage_accounts.delete(RG, "officialsa")
    fails(ResourceNotFoundError, "ResourceNotFound", lambda: st.storage_accounts.get_properties(RG, "officialsa"))
    step("storage_accounts.delete")
    rm.resource_groups.begin_delete(RG).result()
    rm.resource_groups.begin_delete("official-rg-2").result()
    fails(ResourceNotFoundError, "ResourceGroupNotFound", lambda: rm.resource_groups.get(RG))
    step("resource_groups.begin_delete (long-running)")


def main():
    auth()
    rm = ResourceManagementClient(CRED, SUB, **ARM)
    st = StorageManagementClient(CRED, SUB, **ARM)
    ms = ManagedServiceIdentityClient(CRED, SUB, **ARM)
    az = AuthorizationManagementClient(CRED, SUB, api_version="2022-04-01", **ARM)
    subscription(rm)
    resource_groups(rm)
    endpoint, key = storage_accounts(st)
    ident = identities(ms)
    roles(az, ident)
    blobs(endpoint, key)
    cleanup(rm, st, ms)
    print(json.dumps(steps))


if __name__ == "__main__":
    main()
