//! Google's official Python clients as the judge of the GCP fake: `official/gcp_calls.py` makes every
//! call `ccoctl gcp` and the operator make (IAM v1 service accounts, keys, custom roles, workload
//! identity pools and providers with their operations; Resource Manager v1 and v3 project, policy and
//! `testIamPermissions`; Cloud Storage buckets, bucket IAM and objects), their 404/409/412 paths
//! included, through google-api-python-client (built from its bundled discovery documents) and
//! google-cloud-storage; then every exchange is checked against the discovery documents' schemas.

use cco_testsupport::fake_gcs::FakeGcs;
use cco_testsupport::gcp_fake::{GcpFake, PROJECT_ID, PROJECT_NUMBER};
use cco_testsupport::official;

/// The steps `gcp_calls.py` reports when every call went as the API documents it.
const STEPS: &[&str] = &[
    "iam.projects.serviceAccounts.create",
    "iam.projects.serviceAccounts.create 409",
    "iam.projects.serviceAccounts.create 400",
    "iam.projects.serviceAccounts.get",
    "iam.projects.serviceAccounts.get 404",
    "iam.projects.serviceAccounts.list (paged)",
    "iam.projects.serviceAccounts.getIamPolicy",
    "iam.projects.serviceAccounts.setIamPolicy",
    "iam.projects.serviceAccounts.setIamPolicy 409 stale etag",
    "iam.projects.serviceAccounts.keys.create",
    "iam.projects.serviceAccounts.keys.list",
    "iam.projects.serviceAccounts.keys.get",
    "iam.projects.serviceAccounts.keys.delete (+404)",
    "iam.projects.roles.create",
    "iam.projects.roles.create 409",
    "iam.projects.roles.get",
    "iam.projects.roles.get 404",
    "iam.projects.roles.patch",
    "iam.projects.roles.list",
    "iam.projects.roles.delete (soft)",
    "iam.projects.roles.create 400 deleted id",
    "iam.projects.roles.undelete",
    "iam.projects.locations.workloadIdentityPools.create (operation)",
    "iam.projects.locations.workloadIdentityPools.create 409",
    "iam.projects.locations.workloadIdentityPools.get",
    "iam.projects.locations.workloadIdentityPools.get 404",
    "iam.projects.locations.workloadIdentityPools.list",
    "iam.projects.locations.workloadIdentityPools.providers.create (operation)",
    "iam.projects.locations.workloadIdentityPools.providers.create 409",
    "iam.projects.locations.workloadIdentityPools.providers.create 400 http issuer",
    "iam.projects.locations.workloadIdentityPools.providers.get",
    "iam.projects.locations.workloadIdentityPools.providers.get 404",
    "iam.projects.locations.workloadIdentityPools.providers.patch (operation)",
    "iam.projects.locations.workloadIdentityPools.providers.list",
    "iam.projects.locations.workloadIdentityPools.providers.delete (operation)",
    "iam.projects.locations.workloadIdentityPools.providers.undelete (operation)",
    "iam.projects.locations.workloadIdentityPools.delete (operation, soft)",
    "iam.projects.locations.workloadIdentityPools.create 409 deleted id",
    "iam.projects.locations.workloadIdentityPools.undelete (operation)",
    "cloudresourcemanager.projects.get",
    "cloudresourcemanager.projects.get 403",
    "cloudresourcemanager.projects.getIamPolicy",
    "cloudresourcemanager.projects.setIamPolicy",
    "cloudresourcemanager.projects.setIamPolicy 409 stale etag",
    "cloudresourcemanager.projects.setIamPolicy 400 unknown member",
    "cloudresourcemanager.projects.testIamPermissions",
    "cloudresourcemanager.v3.projects.get",
    "cloudresourcemanager.v3.projects.get 403",
    "cloudresourcemanager.v3.projects.getIamPolicy",
    "cloudresourcemanager.v3.projects.setIamPolicy",
    "cloudresourcemanager.v3.projects.setIamPolicy 409 stale etag",
    "cloudresourcemanager.v3.projects.testIamPermissions",
    "storage.buckets.insert",
    "storage.buckets.insert 409",
    "storage.buckets.get",
    "storage.buckets.get 404",
    "storage.buckets.getIamPolicy",
    "storage.buckets.setIamPolicy",
    "storage.buckets.setIamPolicy 412 stale etag",
    "storage.objects.insert",
    "storage.objects.get (media)",
    "storage.objects.list",
    "anonymous path-style read",
    "storage.objects.delete",
    "storage.buckets.delete",
    "iam.projects.serviceAccounts.delete",
];

#[test]
fn official_google_clients_drive_the_gcp_fake_and_its_answers_fit_the_discovery_schemas() {
    let gcs = FakeGcs::start().expect("fake-gcs-server");
    let fake = GcpFake::start(&gcs.endpoint).expect("GCP fake");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key.json");
    std::fs::write(&key, fake.service_account_key_json()).expect("key file");
    let key = key.to_string_lossy().into_owned();
    let out = official::run_script(
        "gcp_calls.py",
        &[],
        &[
            ("FAKE_ENDPOINT", fake.endpoint()),
            ("FAKE_KEY_FILE", &key),
            ("FAKE_PROJECT", PROJECT_ID),
            ("FAKE_PROJECT_NUMBER", PROJECT_NUMBER),
        ],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let steps: Vec<String> = serde_json::from_str(out.trim()).expect("steps JSON");
    assert_eq!(steps, STEPS, "the official clients' run stopped short");

    // What the official clients did is what the fake now holds.
    let email = format!("official-sa@{PROJECT_ID}.iam.gserviceaccount.com");
    let sas = fake.service_accounts();
    assert!(sas.iter().all(|a| a["email"] != email.as_str()), "{sas:?}");
    let role = fake
        .roles()
        .into_iter()
        .find(|r| r["name"] == format!("projects/{PROJECT_ID}/roles/official_role"))
        .expect("custom role");
    assert_eq!(
        role["includedPermissions"],
        serde_json::json!(["iam.roles.get"])
    );
    assert!(role.get("deleted").is_none(), "{role}");
    let pools = fake.pools();
    assert!(
        pools.iter().any(|p| p["state"] == "ACTIVE"
            && p["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("/official-pool"))),
        "{pools:?}"
    );
    let binding = format!("deleted:serviceAccount:{email}");
    let policy = fake.project_policy().to_string();
    assert!(policy.contains(&binding), "{policy}");
    assert!(fake.buckets().is_empty());

    eprintln!("{}", fake.server.exchanges().len());
    // Every answer the official clients got fits Google's published schemas.
    let report = official::check_schemas("gcp_schema.py", &fake.server.exchanges())
        .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("{report}");
    for method in [
        "iam.projects.serviceAccounts.create",
        "iam.projects.serviceAccounts.keys.create",
        "iam.projects.roles.patch",
        "iam.projects.locations.workloadIdentityPools.operations.get",
        "iam.projects.locations.workloadIdentityPools.providers.operations.get",
        "cloudresourcemanager.projects.setIamPolicy",
        "storage.buckets.setIamPolicy",
    ] {
        assert!(
            report.contains(&format!("\"{method}\"")),
            "{method} unchecked: {report}"
        );
    }
}

/// The schema checker itself rejects what the discovery documents do not allow (so a pass means
/// something): an unknown field, a wrong type, an unknown query parameter, a bad error shape.
#[test]
fn the_gcp_schema_check_rejects_shapes_google_does_not_publish() {
    use cco_testsupport::fake_http::Exchange;
    let x = |method: &str, path: &str, query: &str, req: &str, status: u16, resp: &str| Exchange {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        request_body: req.as_bytes().to_vec(),
        status,
        response_body: resp.as_bytes().to_vec(),
    };
    let sa = "/v1/projects/p/serviceAccounts";
    let good = x(
        "POST",
        sa,
        "",
        r#"{"accountId":"abcdef","serviceAccount":{"displayName":"d"}}"#,
        200,
        r#"{"email":"abcdef@p.iam.gserviceaccount.com","disabled":false}"#,
    );
    official::check_schemas("gcp_schema.py", std::slice::from_ref(&good)).expect("valid");
    // What Google's generated Rust clients send: enums as numbers under `$alt=json;enum-encoding=int`,
    // and Resource Manager v3.
    let roles = "/v1/projects/p/roles";
    let int_enums = "$alt=json%3Benum-encoding%3Dint";
    let role = r#"{"roleId":"r1","role":{"title":"t","includedPermissions":["a.b.c"],"stage":2}}"#;
    official::check_schemas(
        "gcp_schema.py",
        &[
            x(
                "POST",
                roles,
                int_enums,
                role,
                200,
                r#"{"name":"projects/p/roles/r1","stage":"GA"}"#,
            ),
            x(
                "GET",
                "/v3/projects/p",
                int_enums,
                "",
                200,
                r#"{"name":"projects/1","projectId":"p","state":"ACTIVE"}"#,
            ),
            x(
                "GET",
                &format!("{sa}/a@b/keys"),
                &format!("keyTypes=1&{int_enums}"),
                "",
                200,
                "{}",
            ),
        ],
    )
    .expect("valid with int enums");
    for (bad, why) in [
        (x("POST", roles, "", role, 200, "{}"), "expected a string"),
        (
            x("POST", roles, "$alt=proto", r#"{"roleId":"r1"}"#, 200, "{}"),
            "system parameter $alt",
        ),
        (
            x(
                "POST",
                roles,
                int_enums,
                r#"{"roleId":"r1","role":{"stage":-1}}"#,
                200,
                "{}",
            ),
            "not an enum number",
        ),
        (
            x(
                "GET",
                "/v3/projects/p",
                "",
                "",
                200,
                r#"{"projectNumber":"1"}"#,
            ),
            "unknown field 'projectNumber'",
        ),
        (
            x(
                "POST",
                sa,
                "",
                r#"{"accountId":"abcdef","sa":{}}"#,
                200,
                "{}",
            ),
            "unknown field 'sa'",
        ),
        (
            x("POST", sa, "", "{}", 200, r#"{"disabled":"no"}"#),
            "expected a boolean",
        ),
        (
            x("GET", sa, "pageSiz=5", "", 200, "{}"),
            "unknown query parameter 'pageSiz'",
        ),
        (
            x(
                "GET",
                &format!("{sa}/a@b/keys"),
                "keyTypes=USER",
                "",
                200,
                "{}",
            ),
            "is not one of",
        ),
        (
            x(
                "GET",
                &format!("{sa}/a@b"),
                "",
                "",
                404,
                r#"{"error":{"code":404,"status":"ABORTED","message":"m"}}"#,
            ),
            "does not go with HTTP 404",
        ),
        (
            x("GET", "/v1/projects/p/nothing", "", "", 200, "{}"),
            "no GET method",
        ),
    ] {
        let e = official::check_schemas("gcp_schema.py", &[bad])
            .expect_err(why)
            .to_string();
        assert!(e.contains(why), "{why}: {e}");
    }
}
