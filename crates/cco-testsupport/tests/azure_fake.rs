//! Raw-HTTP tests pinning the Azure Resource Manager fake's behaviour: the client-credentials token,
//! create (201) versus update (200), the storage account's long-running create and its blob endpoint
//! on Azurite, PrincipalNotFound before replication, 409s on duplicates, resource group cascades.

use cco_testsupport::azure_fake::{
    AzureFake, CLIENT_ID, CLIENT_SECRET, FEDERATED_TOKEN, IDENTITY_HEADER, MANAGED_CLIENT_ID,
    SUBSCRIPTION, TENANT, TOKEN, WORKLOAD_CLIENT_ID,
};
use cco_testsupport::fake_http::raw;
use serde_json::{json, Value};

const API: &str = "api-version=2023-01-01";

fn fake() -> AzureFake {
    // The blob endpoints are only handed out, never called here.
    AzureFake::start("http://127.0.0.1:1").expect("fake")
}

async fn call(f: &AzureFake, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let sep = if path.contains('?') { '&' } else { '?' };
    let (status, _, bytes) = raw(
        method,
        &format!("{}{path}{sep}{API}", f.endpoint()),
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await
    .expect("http");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn rg(name: &str) -> String {
    format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{name}")
}

#[tokio::test]
async fn the_token_endpoint_checks_the_client_secret_and_arm_needs_its_token() {
    let f = fake();
    let url = format!("{}/{TENANT}/oauth2/v2.0/token", f.endpoint());
    let form = |secret: &str| {
        format!("grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={secret}&scope=x%2F.default")
    };
    let ct = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, _, body) = raw("POST", &url, &ct, form(CLIENT_SECRET).as_bytes())
        .await
        .expect("http");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["access_token"], TOKEN);
    let (status, _, _) = raw("POST", &url, &ct, form("nope").as_bytes())
        .await
        .expect("http");
    assert_eq!(status, 401);
    let (status, _, _) = raw(
        "GET",
        &format!("{}/subscriptions/{SUBSCRIPTION}?{API}", f.endpoint()),
        &[],
        b"",
    )
    .await
    .expect("http");
    assert_eq!(status, 401);
    let (status, v) = call(&f, "GET", "/subscriptions/other", None).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("SubscriptionNotFound"))
    );
}

#[tokio::test]
async fn the_token_endpoint_takes_the_federated_assertion_and_checks_the_scope() {
    let f = fake();
    let url = format!("{}/{TENANT}/oauth2/v2.0/token", f.endpoint());
    let ct = [("Content-Type", "application/x-www-form-urlencoded")];
    let form = |assertion: &str, scope: &str| {
        format!("grant_type=client_credentials&client_id={WORKLOAD_CLIENT_ID}&client_assertion={assertion}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&scope={scope}")
    };
    let post = |body: String| {
        let url = url.clone();
        async move {
            let (status, _, b) = raw("POST", &url, &ct, body.as_bytes()).await.expect("http");
            (status, serde_json::from_slice::<Value>(&b).expect("json"))
        }
    };
    let (status, v) = post(form(FEDERATED_TOKEN, "x%2F.default")).await;
    assert_eq!((status, v["access_token"].as_str()), (200, Some(TOKEN)));
    let (status, v) = post(form("eyJ.other.sig", "x%2F.default")).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("invalid_client")));
    assert_eq!(v["error_codes"], json!([70021]));
    let (status, v) = post(form(FEDERATED_TOKEN, "x")).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_scope")));
    assert_eq!(f.tokens_issued(), ["client_assertion"]);
}

#[tokio::test]
async fn the_managed_identity_endpoint_checks_its_header_and_identity() {
    let f = fake();
    let get = |query: String, header: Option<&'static str>| {
        let url = format!("{}?{query}", f.identity_endpoint());
        async move {
            let h: Vec<(&str, &str)> = header
                .map(|h| vec![("X-IDENTITY-HEADER", h)])
                .unwrap_or_default();
            let (status, _, b) = raw("GET", &url, &h, b"").await.expect("http");
            (
                status,
                serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null),
            )
        }
    };
    let q = |client: &str| {
        format!(
            "api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.azure.com&client_id={client}"
        )
    };
    let (status, v) = get(q(MANAGED_CLIENT_ID), Some(IDENTITY_HEADER)).await;
    assert_eq!((status, v["access_token"].as_str()), (200, Some(TOKEN)));
    assert_eq!(v["resource"], "https://management.azure.com");
    assert!(
        v["expires_on"]
            .as_str()
            .is_some_and(|e| e.parse::<u64>().is_ok()),
        "{v}"
    );
    assert_eq!(get(q(MANAGED_CLIENT_ID), None).await.0, 401);
    assert_eq!(get(q("someone-else"), Some(IDENTITY_HEADER)).await.0, 400);
    assert_eq!(f.tokens_issued(), ["managed_identity"]);
}

#[tokio::test]
async fn puts_create_then_update_and_storage_creation_is_long_running() {
    let f = fake();
    let body = json!({"location": "eastus", "tags": {"a": "1"}});
    assert_eq!(call(&f, "PUT", &rg("g"), Some(body.clone())).await.0, 201);
    assert_eq!(call(&f, "PUT", &rg("g"), Some(body)).await.0, 200);
    let acct = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/acct1",
        rg("g")
    );
    let sa = json!({"kind": "StorageV2", "location": "eastus", "sku": {"name": "Standard_LRS"}, "properties": {}});
    let (status, v) = call(&f, "PUT", &acct, Some(sa.clone())).await;
    assert_eq!((status, v), (202, Value::Null));
    let (status, v) = call(&f, "GET", &acct, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        v["properties"]["primaryEndpoints"]["blob"],
        "http://127.0.0.1:1/acct1/"
    );
    assert_eq!(call(&f, "PUT", &acct, Some(sa.clone())).await.0, 200);
    let (status, v) = call(&f, "POST", &format!("{acct}/listKeys"), None).await;
    assert_eq!(status, 200);
    assert_eq!(v["keys"][0]["value"], cco_testsupport::azurite::DEV_KEY);
    // Storage account names are global.
    call(&f, "PUT", &rg("h"), Some(json!({"location": "eastus"}))).await;
    let other = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/acct1",
        rg("h")
    );
    let (status, v) = call(&f, "PUT", &other, Some(sa)).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("StorageAccountAlreadyTaken"))
    );
    // Children of a missing group are refused.
    let (status, v) = call(
        &f,
        "GET",
        &format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x",
            rg("none")
        ),
        None,
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("ResourceGroupNotFound"))
    );
}

#[tokio::test]
async fn role_assignments_see_principal_not_found_first_and_409_on_duplicates() {
    let f = fake();
    call(&f, "PUT", &rg("g"), Some(json!({"location": "eastus"}))).await;
    let ipath = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
        rg("g")
    );
    let (status, id) = call(&f, "PUT", &ipath, Some(json!({"location": "eastus"}))).await;
    assert_eq!(status, 201);
    let principal = id["properties"]["principalId"]
        .as_str()
        .expect("principal")
        .to_string();
    let (_, again) = call(&f, "PUT", &ipath, Some(json!({"location": "eastus"}))).await;
    assert_eq!(
        again["properties"]["principalId"],
        principal.as_str(),
        "an update keeps the ids"
    );

    let authz = format!("/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization");
    let role = json!({"properties": {"roleName": "r1", "permissions": [{"actions": ["a"]}], "assignableScopes": [rg("g")]}});
    let (status, def) = call(
        &f,
        "PUT",
        &format!("{authz}/roleDefinitions/11111111-1111-4111-8111-111111111111"),
        Some(role.clone()),
    )
    .await;
    assert_eq!(status, 201);
    let (status, v) = call(
        &f,
        "PUT",
        &format!("{authz}/roleDefinitions/22222222-2222-4222-8222-222222222222"),
        Some(role),
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("RoleDefinitionWithSameNameExists"))
    );

    let ra = |guid: &str| {
        format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{guid}",
            rg("g")
        )
    };
    let body = json!({"properties": {"roleDefinitionId": def["id"], "principalId": principal, "principalType": "ServicePrincipal"}});
    let (status, v) = call(&f, "PUT", &ra("a1"), Some(body.clone())).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("PrincipalNotFound"))
    );
    assert_eq!(call(&f, "PUT", &ra("a1"), Some(body.clone())).await.0, 201);
    let (status, v) = call(&f, "PUT", &ra("a2"), Some(body)).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("RoleAssignmentExists"))
    );
    let (_, list) = call(
        &f,
        "GET",
        &format!("{authz}/roleAssignments?$filter=principalId%20eq%20%27{principal}%27"),
        None,
    )
    .await;
    assert_eq!(list["value"].as_array().map(Vec::len), Some(1));
    // A role still assigned cannot be deleted.
    let (status, v) = call(
        &f,
        "DELETE",
        &format!("{authz}/roleDefinitions/11111111-1111-4111-8111-111111111111"),
        None,
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("RoleDefinitionHasAssignments"))
    );
    // Built-in roles are found by name.
    let (_, list) = call(
        &f,
        "GET",
        &format!("{authz}/roleDefinitions?$filter=roleName%20eq%20%27Contributor%27"),
        None,
    )
    .await;
    assert_eq!(list["value"][0]["properties"]["type"], "BuiltInRole");
}

#[tokio::test]
async fn federated_credentials_refuse_duplicate_subjects_and_a_group_delete_cascades() {
    let f = fake();
    call(&f, "PUT", &rg("g"), Some(json!({"location": "eastus"}))).await;
    let ipath = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
        rg("g")
    );
    call(&f, "PUT", &ipath, Some(json!({"location": "eastus"}))).await;
    let fic = json!({"properties": {"issuer": "https://i", "subject": "system:serviceaccount:ns:sa", "audiences": ["openshift"]}});
    assert_eq!(
        call(
            &f,
            "PUT",
            &format!("{ipath}/federatedIdentityCredentials/f1"),
            Some(fic.clone())
        )
        .await
        .0,
        201
    );
    assert_eq!(
        call(
            &f,
            "PUT",
            &format!("{ipath}/federatedIdentityCredentials/f1"),
            Some(fic.clone())
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(
            &f,
            "PUT",
            &format!("{ipath}/federatedIdentityCredentials/f2"),
            Some(fic)
        )
        .await
        .0,
        409
    );
    let (status, _) = call(&f, "DELETE", &rg("g"), None).await;
    assert_eq!(status, 202);
    let c = f.counts();
    assert_eq!(
        (
            c["identities"],
            c["federated_credentials"],
            c["resource_groups"]
        ),
        (0, 0, 0)
    );
    assert_eq!(call(&f, "GET", &rg("g"), None).await.0, 404);
}
