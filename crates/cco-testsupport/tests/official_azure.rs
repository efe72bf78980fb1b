//! Microsoft's official Python SDKs as the judge of the Azure Resource Manager fake:
//! `official/azure_calls.py` authenticates with azure-identity's `ClientSecretCredential` against the
//! fake's Azure AD endpoints (and checks its `WorkloadIdentityCredential` and App Service
//! `ManagedIdentityCredential` against the fake's federated-assertion grant and identity endpoint) and makes every ARM call `ccoctl azure` makes through azure-mgmt-resource,
//! azure-mgmt-storage, azure-mgmt-msi and azure-mgmt-authorization (404/409 paths, long-running
//! creates and deletes included), then the issuer's Blob calls with azure-storage-blob against
//! Azurite. The SDKs refuse bearer tokens over plain http, so the fake is served over TLS.

use cco_testsupport::azure_fake::{
    AzureFake, CLIENT_ID, CLIENT_SECRET, FEDERATED_TOKEN, IDENTITY_HEADER, MANAGED_CLIENT_ID,
    SUBSCRIPTION, TENANT, WORKLOAD_CLIENT_ID,
};
use cco_testsupport::azurite::Azurite;
use cco_testsupport::official;
use cco_testsupport::tls::TestCa;

const STEPS: &[&str] = &[
    "azure-identity ClientSecretCredential.get_token",
    "azure-identity ClientSecretCredential.get_token (bad secret)",
    "azure-identity WorkloadIdentityCredential.get_token",
    "azure-identity WorkloadIdentityCredential.get_token (unknown assertion)",
    "azure-identity ManagedIdentityCredential.get_token (App Service)",
    "azure-identity ManagedIdentityCredential.get_token (unknown identity)",
    "subscriptions.get",
    "resource_groups.get 404",
    "resource_groups.create_or_update (create)",
    "resource_groups.create_or_update (update)",
    "resource_groups.get",
    "storage_accounts.get_properties 404",
    "storage_accounts.begin_create (long-running)",
    "storage_accounts.begin_create 409 name taken",
    "storage_accounts.get_properties",
    "storage_accounts.list_keys",
    "user_assigned_identities.get 404",
    "user_assigned_identities.create_or_update",
    "user_assigned_identities.get",
    "user_assigned_identities.list_by_resource_group",
    "federated_identity_credentials.create_or_update",
    "federated_identity_credentials.get",
    "federated_identity_credentials.get 404",
    "federated_identity_credentials.create_or_update 400 same issuer and subject",
    "federated_identity_credentials.list",
    "role_definitions.list roleName eq",
    "role_definitions.create_or_update",
    "role_definitions.create_or_update 409 same name",
    "role_definitions.get_by_id",
    "role_definitions.list type eq CustomRole",
    "role_assignments.create 400 PrincipalNotFound (replication)",
    "role_assignments.create",
    "role_assignments.create 409 exists",
    "role_assignments.list_for_subscription principalId eq",
    "role_definitions.delete 409 still assigned",
    "role_assignments.delete_by_id",
    "role_definitions.delete",
    "blob create_container (public blob access)",
    "blob set_container_access_policy",
    "blob upload_blob (tags)",
    "blob get_blob_tags",
    "blob download_blob",
    "anonymous blob read",
    "blob delete_container",
    "user_assigned_identities.delete",
    "storage_accounts.delete",
    "resource_groups.begin_delete (long-running)",
];

#[test]
fn official_azure_sdks_drive_the_arm_fake() {
    let azurite = Azurite::start(&["officialsa"]).expect("azurite");
    let ca = TestCa::generate().expect("CA");
    let fake = AzureFake::start_tls(&azurite.endpoint, &ca).expect("ARM fake");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = ca.write(dir.path()).expect("CA file");
    let ca_file = ca_file.to_string_lossy().into_owned();
    let tmp = dir.path().to_string_lossy().into_owned();
    let out = official::run_script(
        "azure_calls.py",
        &[],
        &[
            ("FAKE_ENDPOINT", fake.endpoint()),
            ("FAKE_SUBSCRIPTION", SUBSCRIPTION),
            ("FAKE_TENANT", TENANT),
            ("FAKE_CLIENT_ID", CLIENT_ID),
            ("FAKE_CLIENT_SECRET", CLIENT_SECRET),
            ("FAKE_WORKLOAD_CLIENT_ID", WORKLOAD_CLIENT_ID),
            ("FAKE_FEDERATED_TOKEN", FEDERATED_TOKEN),
            ("FAKE_MANAGED_CLIENT_ID", MANAGED_CLIENT_ID),
            ("FAKE_IDENTITY_HEADER", IDENTITY_HEADER),
            ("FAKE_TMP", &tmp),
            ("REQUESTS_CA_BUNDLE", &ca_file),
            ("SSL_CERT_FILE", &ca_file),
        ],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let steps: Vec<String> = serde_json::from_str(out.trim()).expect("steps JSON");
    assert_eq!(steps, STEPS, "the official SDKs' run stopped short");
    // Everything the SDKs made, they deleted.
    let counts = fake.counts();
    assert!(counts.values().all(|n| *n == 0), "{counts:?}");
}

/// What the SDKs sent and what the fake answered fit the SDKs' own models (see the next test for
/// what the checker rejects).
#[test]
fn the_arm_fake_answers_fit_the_sdk_models() {
    let azurite = Azurite::start(&["officialsa"]).expect("azurite");
    let ca = TestCa::generate().expect("CA");
    let fake = AzureFake::start_tls(&azurite.endpoint, &ca).expect("ARM fake");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = ca.write(dir.path()).expect("CA file");
    let ca_file = ca_file.to_string_lossy().into_owned();
    let tmp = dir.path().to_string_lossy().into_owned();
    official::run_script(
        "azure_calls.py",
        &[],
        &[
            ("FAKE_ENDPOINT", fake.endpoint()),
            ("FAKE_SUBSCRIPTION", SUBSCRIPTION),
            ("FAKE_TENANT", TENANT),
            ("FAKE_CLIENT_ID", CLIENT_ID),
            ("FAKE_CLIENT_SECRET", CLIENT_SECRET),
            ("FAKE_WORKLOAD_CLIENT_ID", WORKLOAD_CLIENT_ID),
            ("FAKE_FEDERATED_TOKEN", FEDERATED_TOKEN),
            ("FAKE_MANAGED_CLIENT_ID", MANAGED_CLIENT_ID),
            ("FAKE_IDENTITY_HEADER", IDENTITY_HEADER),
            ("FAKE_TMP", &tmp),
            ("REQUESTS_CA_BUNDLE", &ca_file),
        ],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let report = official::check_schemas("azure_schema.py", &fake.server.exchanges())
        .unwrap_or_else(|e| panic!("{e:#}"));
    for op in [
        "resource_groups.create_or_update",
        "storage_accounts.create",
        "storage_accounts.list_keys",
        "user_assigned_identities.create_or_update",
        "federated_identity_credentials.create_or_update",
        "role_definitions.create_or_update",
        "role_assignments.create",
        "role_assignments.list",
    ] {
        assert!(
            report.contains(&format!("\"{op}\"")),
            "{op} unchecked: {report}"
        );
    }
}

/// The Azure schema checker rejects what the SDK models do not allow.
#[test]
fn the_azure_schema_check_rejects_shapes_the_sdks_do_not_know() {
    use cco_testsupport::fake_http::Exchange;
    let x = |method: &str, path: &str, req: &str, status: u16, resp: &str| Exchange {
        method: method.into(),
        path: path.into(),
        query: "api-version=2023-01-31".into(),
        request_body: req.as_bytes().to_vec(),
        status,
        response_body: resp.as_bytes().to_vec(),
    };
    let id = format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i");
    let good = x(
        "PUT",
        &id,
        r#"{"location":"eastus","tags":{"a":"b"}}"#,
        201,
        r#"{"id":"x","name":"i","location":"eastus","properties":{"principalId":"p","clientId":"c","tenantId":"t"}}"#,
    );
    official::check_schemas("azure_schema.py", std::slice::from_ref(&good)).expect("valid");
    for (bad, why) in [
        (
            x("PUT", &id, r#"{"tags":{}}"#, 201, "{}"),
            "required field 'location' missing",
        ),
        (
            x("PUT", &id, r#"{"location":"e","props":{}}"#, 201, "{}"),
            "unknown field 'props'",
        ),
        (
            x(
                "PUT",
                &id,
                r#"{"location":"e","properties":{"principalId":"p"}}"#,
                201,
                "{}",
            ),
            "read-only field 'principalId' sent",
        ),
        (
            x("GET", &id, "", 200, r#"{"location":"e","tags":"no"}"#),
            "expected an object",
        ),
        (
            x("GET", &id, "", 404, r#"{"code":"NotFound"}"#),
            "an ARM error must be",
        ),
        (
            x("GET", &format!("{id}/nothing"), "", 200, "{}"),
            "no ARM operation",
        ),
    ] {
        let e = official::check_schemas("azure_schema.py", &[bad])
            .expect_err(why)
            .to_string();
        assert!(e.contains(why), "{why}: {e}");
    }
}
