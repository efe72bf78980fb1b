//! GCP Mint mode against the GCP fake and a real API server, with the operator running as its own
//! ServiceAccount, in the default credentials mode: `testIamPermissions` finds the root credential
//! can mint; one service account per request with its custom role and predefined roles bound on the
//! project, and one key whose JSON key file is the Secret's `service_account.json`; a new key when
//! the root credential changes, the old one deleted; cleanup of bindings, role and service account
//! through the finalizer; and a root credential without the mint permissions is passed through.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use cco_api::CredentialsRequest;
use cco_testsupport::gcp_fake::{GcpFake, PROJECT_ID};
use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use serde_json::{json, Value};

fn gcp_cr(name: &str) -> Value {
    cr_json(
        name,
        "components",
        name,
        json!({"apiVersion": "cloudcredential.openshift.io/v1", "kind": "GCPProviderSpec",
            "predefinedRoles": ["roles/storage.admin", "roles/iam.serviceAccountUser"],
            "permissions": ["compute.instances.get", "compute.instances.list", "compute.instances.get"]}),
    )
}

fn status_field(cr: &CredentialsRequest, k: &str) -> Option<String> {
    cr.status.as_ref()?.provider_status.as_ref()?[k]
        .as_str()
        .map(str::to_owned)
}

async fn root_annotation(env: &Env) -> anyhow::Result<Option<String>> {
    let s = Api::<Secret>::namespaced(env.admin.clone(), "kube-system")
        .get("gcp-credentials")
        .await?;
    Ok(s.metadata
        .annotations
        .unwrap_or_default()
        .get("cloudcredential.openshift.io/mode")
        .cloned())
}

fn key_file(data: &std::collections::BTreeMap<String, String>) -> Value {
    serde_json::from_str(&data["service_account.json"]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_mode_on_gcp_mints_one_service_account_per_request() -> anyhow::Result<()> {
    // No storage call is made: the upstream of the fake's storage proxy is never reached.
    let fake = GcpFake::start("http://127.0.0.1:9")?;
    let env = start().await?;
    set_cluster(&env.admin, "", "GCP", "").await?;
    create_namespace(&env.admin, "components").await?;
    put_root_secret(
        &env.admin,
        "gcp-credentials",
        &[("service_account.json", &fake.service_account_key_json())],
    )
    .await?;
    let mut settings = test_settings();
    settings.gcp_iam_endpoint = Some(fake.endpoint().to_string());
    settings.gcp_resource_manager_endpoint = Some(fake.endpoint().to_string());
    let op = spawn_operator(operator_client(&env).await?, settings);

    // testIamPermissions: the root credential holds everything, so the mode is mint.
    wait_until(Duration::from_secs(20), || async {
        Ok(root_annotation(&env).await?.as_deref() == Some("mint"))
    })
    .await?;

    create_cr(&env.admin, OPERATOR_NS, gcp_cr("gcp-one")).await?;
    let cr = wait_cr(&env.admin, "gcp-one", "provisioned", |c| {
        c.status.as_ref().is_some_and(|s| s.provisioned)
    })
    .await?;
    let id = status_field(&cr, "serviceAccountID").unwrap();
    let role = status_field(&cr, "roleID").unwrap();
    assert!(id.starts_with("test-infra-gcp-one-"), "{id}");
    assert!(id.len() <= 30);
    let email = format!("{id}@{PROJECT_ID}.iam.gserviceaccount.com");
    let sas = fake.service_accounts();
    assert_eq!(sas.len(), 1, "{sas:?}");
    assert_eq!(sas[0]["email"], email.as_str());
    assert_eq!(sas[0]["displayName"], "test-infra-gcp-one");
    let r = fake
        .roles()
        .into_iter()
        .find(|r| r["name"] == format!("projects/{PROJECT_ID}/roles/{role}"))
        .expect("custom role");
    assert_eq!(
        r["includedPermissions"],
        json!(["compute.instances.get", "compute.instances.list"])
    );
    let member = format!("serviceAccount:{email}");
    let roles_of = |policy: &Value| -> Vec<String> {
        let mut out: Vec<String> = policy["bindings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| {
                b["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m == member.as_str())
            })
            .map(|b| b["role"].as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    };
    assert_eq!(
        roles_of(&fake.project_policy()),
        vec![
            format!("projects/{PROJECT_ID}/roles/{role}"),
            "roles/iam.serviceAccountUser".to_string(),
            "roles/storage.admin".to_string(),
        ]
    );
    let data = wait_secret(&env.admin, "components", "gcp-one").await?;
    let key1 = key_file(&data);
    assert_eq!(key1["type"], "service_account");
    assert_eq!(key1["client_email"], email.as_str());
    let key1_id = key1["private_key_id"].as_str().unwrap().to_string();
    assert_eq!(fake.service_account_keys(&email), vec![key1_id.clone()]);

    // A new root credential: a new key in the Secret, the old one deleted, the same account.
    put_root_secret(
        &env.admin,
        "gcp-credentials",
        &[("service_account.json", &fake.service_account_key_json())],
    )
    .await?;
    wait_until(Duration::from_secs(30), || async {
        let d = wait_secret(&env.admin, "components", "gcp-one").await?;
        Ok(key_file(&d)["private_key_id"] != key1_id.as_str())
    })
    .await?;
    let key2_id = key_file(&wait_secret(&env.admin, "components", "gcp-one").await?)
        ["private_key_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_until(Duration::from_secs(10), || async {
        Ok(fake.service_account_keys(&email) == vec![key2_id.clone()])
    })
    .await?;
    assert_eq!(
        status_field(&get_cr(&env.admin, "gcp-one").await?, "serviceAccountID").as_deref(),
        Some(id.as_str())
    );
    assert_eq!(fake.service_accounts().len(), 1);

    // Deletion: bindings, custom role, service account (with its keys) and Secret are removed.
    Api::<CredentialsRequest>::namespaced(env.admin.clone(), OPERATOR_NS)
        .delete("gcp-one", &DeleteParams::default())
        .await?;
    wait_until(Duration::from_secs(30), || async {
        Ok(
            Api::<CredentialsRequest>::namespaced(env.admin.clone(), OPERATOR_NS)
                .get_opt("gcp-one")
                .await?
                .is_none(),
        )
    })
    .await?;
    assert!(fake.service_accounts().is_empty());
    assert!(roles_of(&fake.project_policy()).is_empty());
    assert!(
        fake.roles().iter().all(|r| r["deleted"] == true),
        "{:?}",
        fake.roles()
    );
    assert!(Api::<Secret>::namespaced(env.admin.clone(), "components")
        .get_opt("gcp-one")
        .await?
        .is_none());

    // A root credential that cannot mint is passed through.
    fake.set_caller_permissions(Some(&["resourcemanager.projects.get"]));
    let root = fake.service_account_key_json();
    put_root_secret(
        &env.admin,
        "gcp-credentials",
        &[("service_account.json", &root)],
    )
    .await?;
    wait_until(Duration::from_secs(20), || async {
        Ok(root_annotation(&env).await?.as_deref() == Some("passthrough"))
    })
    .await?;
    let mut pass = gcp_cr("gcp-pass");
    pass["spec"]["providerSpec"]["permissions"] = json!([]);
    create_cr(&env.admin, OPERATOR_NS, pass).await?;
    let data = wait_secret(&env.admin, "components", "gcp-pass").await?;
    assert_eq!(data["service_account.json"], root);
    assert!(fake.service_accounts().is_empty());

    op.stop().await?;
    // Every request the operator sent (and every answer it got) fits Google's discovery documents.
    let report =
        cco_testsupport::official::check_schemas("gcp_schema.py", &fake.server.exchanges())?;
    for method in [
        "iam.projects.serviceAccounts.keys.create",
        "iam.projects.serviceAccounts.keys.delete",
        "iam.projects.roles.delete",
        "cloudresourcemanager.projects.testIamPermissions",
    ] {
        assert!(
            report.contains(&format!("\"{method}\"")),
            "{method}: {report}"
        );
    }
    Ok(())
}
