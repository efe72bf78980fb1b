//! The operator's own read-only AWS credential (`deploy/operator/06-credentialsrequest-aws-ro.yaml`)
//! in Mint mode against the AWS emulator (moto) and a real API server: the operator mints it like
//! any request, then reads every minted user through it (moto records the last use of each access
//! key, so the test sees which key read). With the root credential removed the periodic checks keep
//! running through it: an intact user stays provisioned, a policy deleted behind the operator's back
//! is noticed and reported (it cannot be repaired without the root), and is repaired once the root
//! credential is back. The same for GCP's read-only service account
//! (`deploy/operator/06-credentialsrequest-gcp-ro.yaml`) against the GCP fake, which records the
//! service account whose key made each call.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cco_testsupport::gcp_fake::{GcpFake, PROJECT_ID};
use cco_testsupport::moto::Moto;
use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use serde_json::json;

const ROOT: [(&str, &str); 2] = [
    ("aws_access_key_id", "AKIAROOTEXAMPLE00009"),
    ("aws_secret_access_key", "root-secret-value-ro-0123456789"),
];
const RO_SECRET: &str = "cloud-credential-operator-iam-ro-creds";
const GCP_RO_SECRET: &str = "cloud-credential-operator-gcp-ro-creds";

/// Seconds since the epoch of the key's last use, as IAM records it.
async fn last_used(iam: &aws_sdk_iam::Client, key: &str) -> anyhow::Result<Option<i64>> {
    Ok(iam
        .get_access_key_last_used()
        .access_key_id(key)
        .send()
        .await?
        .access_key_last_used
        .and_then(|u| u.last_used_date)
        .map(|d| d.secs()))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The message of a true CredentialsProvisionFailure condition.
fn failure(cr: &cco_api::CredentialsRequest) -> Option<String> {
    cr.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "CredentialsProvisionFailure" && c.status == "True")
        .map(|c| c.message.clone().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_reads_go_through_the_read_only_credential_and_keep_working_without_the_root(
) -> anyhow::Result<()> {
    init_logs();
    let moto = Moto::start()?;
    let env = start().await?;
    set_cluster(&env.admin, "Mint", "AWS", "").await?;
    create_namespace(&env.admin, "components").await?;
    put_root_secret(&env.admin, "aws-creds", &ROOT).await?;
    apply_readonly_requests(&env.admin).await?;
    create_cr(
        &env.admin,
        OPERATOR_NS,
        s3_reader_request("mint-one", "components"),
    )
    .await?;
    let mut settings = test_settings();
    settings.aws_endpoint = Some(moto.endpoint.clone());
    // Every reconcile is a full check of the cloud.
    settings.sync_period = Duration::from_secs(1);
    settings.resync = Duration::from_secs(1);
    let op = spawn_operator(operator_client(&env).await?, settings);
    let iam = moto_iam_sdk(&moto).await;

    // The read-only request is minted like any other: a user allowed to read IAM users only.
    let ro = wait_secret(&env.admin, OPERATOR_NS, RO_SECRET).await?;
    let ro_key = ro["aws_access_key_id"].clone();
    let ro_cr = wait_cr(
        &env.admin,
        "cloud-credential-operator-iam-ro",
        "provisioned",
        |c| c.status.as_ref().is_some_and(|s| s.provisioned),
    )
    .await?;
    let ro_user = ro_cr.status.unwrap().provider_status.unwrap()["user"]
        .as_str()
        .unwrap()
        .to_string();
    let minter = moto_iam(&moto).await;
    let ro_policy: serde_json::Value = serde_json::from_str(
        &minter
            .get_user_policy(&ro_user, &format!("{ro_user}-policy"))
            .await?
            .unwrap(),
    )?;
    let mut actions: Vec<String> = ro_policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| match &s["Action"] {
            serde_json::Value::Array(a) => a.clone(),
            a => vec![a.clone()],
        })
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    actions.sort();
    actions.dedup();
    assert_eq!(
        actions,
        ["iam:GetUser", "iam:GetUserPolicy", "iam:ListAccessKeys"],
        "{ro_policy}"
    );
    wait_secret(&env.admin, "components", "mint-one").await?;
    let user = provisioned_user(&env.admin, "mint-one").await?;

    // The root credential removed: the checks go on, through the read-only key.
    Api::<Secret>::namespaced(env.admin.clone(), "kube-system")
        .delete("aws-creds", &DeleteParams::default())
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let removed_at = now_secs();
    wait_until(Duration::from_secs(30), || async {
        Ok(last_used(&iam, &ro_key)
            .await?
            .is_some_and(|t| t > removed_at))
    })
    .await?;
    let cr = get_cr(&env.admin, "mint-one").await?;
    assert!(cr.status.as_ref().unwrap().provisioned);
    assert_eq!(failure(&cr), None);

    // Drift while the root is gone: noticed through the read-only key, reported, not repaired.
    iam.delete_user_policy()
        .user_name(&user)
        .policy_name(format!("{user}-policy"))
        .send()
        .await?;
    let cr = wait_cr(&env.admin, "mint-one", "drift reported", |c| {
        failure(c).is_some()
    })
    .await?;
    let message = failure(&cr).unwrap();
    assert!(
        message.contains("root credential kube-system/aws-creds was removed"),
        "{message}"
    );

    // The root credential back: repaired.
    put_root_secret(&env.admin, "aws-creds", &ROOT).await?;
    wait_cr(&env.admin, "mint-one", "repaired", |c| failure(c).is_none()).await?;
    let policies = iam.list_user_policies().user_name(&user).send().await?;
    assert_eq!(policies.policy_names, vec![format!("{user}-policy")]);
    op.stop().await?;
    Ok(())
}

/// The identities that made calls to `path_part` since call number `from`.
fn callers(fake: &GcpFake, from: usize, method: &str, path_part: &str) -> Vec<String> {
    let mut out: Vec<String> = fake
        .calls()
        .into_iter()
        .skip(from)
        // (`@` may be sent percent-encoded or not: both are the same path.)
        .filter(|c| c.method == method && c.path.replace("%40", "@").contains(path_part))
        .map(|c| c.caller.unwrap_or_default())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_reads_go_through_the_read_only_credential_and_keep_working_without_the_root(
) -> anyhow::Result<()> {
    init_logs();
    // No storage call is made: the upstream of the fake's storage proxy is never reached.
    let fake = GcpFake::start("http://127.0.0.1:9")?;
    let env = start().await?;
    set_cluster(&env.admin, "Mint", "GCP", "").await?;
    create_namespace(&env.admin, "components").await?;
    let root_json = fake.service_account_key_json();
    let root_email = serde_json::from_str::<serde_json::Value>(&root_json)?["client_email"]
        .as_str()
        .unwrap()
        .to_string();
    put_root_secret(
        &env.admin,
        "gcp-credentials",
        &[("service_account.json", &root_json)],
    )
    .await?;
    apply_readonly_requests(&env.admin).await?;
    create_cr(
        &env.admin,
        OPERATOR_NS,
        cr_json(
            "gcp-one",
            "components",
            "gcp-one",
            json!({"apiVersion": "cloudcredential.openshift.io/v1", "kind": "GCPProviderSpec",
                "predefinedRoles": ["roles/storage.admin"],
                "permissions": ["compute.instances.get"]}),
        ),
    )
    .await?;
    let mut settings = test_settings();
    settings.gcp_iam_endpoint = Some(fake.endpoint().to_string());
    settings.gcp_resource_manager_endpoint = Some(fake.endpoint().to_string());
    settings.sync_period = Duration::from_secs(1);
    settings.resync = Duration::from_secs(1);
    let op = spawn_operator(operator_client(&env).await?, settings);

    // The read-only request is minted like any other: its key file names its own service account.
    let ro = wait_secret(&env.admin, OPERATOR_NS, GCP_RO_SECRET).await?;
    let ro_key: serde_json::Value = serde_json::from_str(&ro["service_account.json"])?;
    let ro_email = ro_key["client_email"].as_str().unwrap().to_string();
    assert_ne!(ro_email, root_email);
    assert!(ro_email.ends_with(&format!("@{PROJECT_ID}.iam.gserviceaccount.com")));
    wait_secret(&env.admin, "components", "gcp-one").await?;
    let cr = wait_cr(&env.admin, "gcp-one", "provisioned", |c| {
        c.status.as_ref().is_some_and(|s| s.provisioned)
    })
    .await?;
    let id = cr.status.unwrap().provider_status.unwrap()["serviceAccountID"]
        .as_str()
        .unwrap()
        .to_string();
    let email = format!("{id}@{PROJECT_ID}.iam.gserviceaccount.com");
    let account_path = format!("/serviceAccounts/{email}");

    // With the read-only Secret in place, the periodic checks read the minted account with it and
    // the project policy with it, not with the root.
    let mark = fake.calls().len();
    wait_until(Duration::from_secs(30), || async {
        Ok(
            callers(&fake, mark, "GET", &account_path).contains(&ro_email)
                && callers(&fake, mark, "POST", ":getIamPolicy").contains(&ro_email),
        )
    })
    .await?;
    let mark = fake.calls().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let readers = callers(&fake, mark, "GET", &account_path);
    assert_eq!(readers, vec![ro_email.clone()], "{:?}", fake.calls());

    // The root credential removed: the checks go on, through the read-only key.
    Api::<Secret>::namespaced(env.admin.clone(), "kube-system")
        .delete("gcp-credentials", &DeleteParams::default())
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mark = fake.calls().len();
    wait_until(Duration::from_secs(30), || async {
        Ok(callers(&fake, mark, "GET", &account_path).contains(&ro_email))
    })
    .await?;
    let cr = get_cr(&env.admin, "gcp-one").await?;
    assert!(cr.status.as_ref().unwrap().provisioned);
    assert_eq!(failure(&cr), None);

    // Drift while the root is gone (the account deleted): noticed through the read-only key,
    // reported, not repaired.
    fake.remove_service_account(&email);
    let cr = wait_cr(&env.admin, "gcp-one", "drift reported", |c| {
        failure(c).is_some()
    })
    .await?;
    let message = failure(&cr).unwrap();
    assert!(
        message.contains("root credential kube-system/gcp-credentials was removed"),
        "{message}"
    );
    assert!(fake
        .service_accounts()
        .iter()
        .all(|a| a["email"] != email.as_str()));

    // The root credential back: repaired, by the root.
    let mark = fake.calls().len();
    put_root_secret(
        &env.admin,
        "gcp-credentials",
        &[("service_account.json", &root_json)],
    )
    .await?;
    wait_cr(&env.admin, "gcp-one", "repaired", |c| failure(c).is_none()).await?;
    assert!(fake
        .service_accounts()
        .iter()
        .any(|a| a["email"] == email.as_str()));
    assert_eq!(
        callers(&fake, mark, "POST", "/serviceAccounts"),
        vec![root_email.clone()]
    );
    op.stop().await?;
    Ok(())
}
