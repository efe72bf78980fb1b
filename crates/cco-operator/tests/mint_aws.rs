//! AWS Mint mode against the AWS emulator (moto) and a real API server, with the operator running as
//! its own ServiceAccount: one IAM user per request with exactly the requested policy plus
//! `iam:GetUser` on itself and one key; a new key when the root credential changes, old keys removed;
//! the root credential removed (existing credentials kept, new ones refused, Upgradeable=False,
//! deletion blocked with CredentialsDeprovisionFailure until it is restored); cleanup through the
//! finalizer. Every log line of the run is captured, and no credential value may appear in it.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cco_api::{CredentialsRequest, StatementEntry};
use cco_testsupport::moto::Moto;
use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

const ROOT_ID: &str = "AKIAROOTEXAMPLE00001";
const ROOT_SECRET: &str = "root-secret-value-one-0123456789";
const ROOT_ID_2: &str = "AKIAROOTEXAMPLE00002";
const ROOT_SECRET_2: &str = "root-secret-value-two-9876543210";

fn statements() -> Vec<StatementEntry> {
    serde_json::from_value(json!([
        {"effect": "Allow", "action": ["s3:GetObject", "s3:PutObject"], "resource": "*"},
        {"effect": "Allow", "action": ["kms:CreateGrant"], "resource": "*",
         "policyCondition": {"Bool": {"kms:GrantIsForAWSResource": true}}}
    ]))
    .unwrap()
}

fn mint_cr(name: &str, secret: &str) -> serde_json::Value {
    cr_json(
        name,
        "components",
        secret,
        json!({"apiVersion": "cloudcredential.openshift.io/v1",
        "kind": "AWSProviderSpec", "statementEntries": serde_json::to_value(statements()).unwrap()}),
    )
}

fn user_of(cr: &CredentialsRequest) -> String {
    cr.status
        .as_ref()
        .unwrap()
        .provider_status
        .as_ref()
        .unwrap()["user"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mint_mode_manages_one_iam_user_per_request_without_logging_secrets() -> anyhow::Result<()>
{
    let logs = Capture::default();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,cco_operator=trace,cco_aws=trace",
        ))
        .with_writer(logs.clone())
        .init();

    let moto = Moto::start()?;
    let env = start().await?;
    set_cluster(&env.admin, "Mint", "AWS", "").await?;
    create_namespace(&env.admin, "components").await?;
    put_root_secret(
        &env.admin,
        "aws-creds",
        &[
            ("aws_access_key_id", ROOT_ID),
            ("aws_secret_access_key", ROOT_SECRET),
        ],
    )
    .await?;
    let mut settings = test_settings();
    settings.aws_endpoint = Some(moto.endpoint.clone());
    let op = spawn_operator(operator_client(&env).await?, settings);
    let iam = moto_iam(&moto).await;
    let mut seen_secrets: Vec<String> = vec![ROOT_SECRET.into(), ROOT_SECRET_2.into()];

    // One user per request: exactly the requested policy plus iam:GetUser on itself, one key, tags.
    create_cr(&env.admin, OPERATOR_NS, mint_cr("mint-one", "mint-one")).await?;
    let data = wait_secret(&env.admin, "components", "mint-one").await?;
    let cr = wait_cr(&env.admin, "mint-one", "provisioned", |c| {
        c.status.as_ref().is_some_and(|s| s.provisioned)
    })
    .await?;
    let user = user_of(&cr);
    assert!(user.starts_with("test-infra-mint-one-"), "{user}");
    let key1 = data["aws_access_key_id"].clone();
    seen_secrets.push(data["aws_secret_access_key"].clone());
    assert_eq!(
        data["credentials"],
        format!(
            "[default]\naws_access_key_id = {key1}\naws_secret_access_key = {}",
            data["aws_secret_access_key"]
        )
    );
    let u = iam.get_user(&user).await?.expect("user exists");
    assert!(
        u.tags
            .contains(&("kubernetes.io/cluster/test-infra".into(), "owned".into())),
        "{:?}",
        u.tags
    );
    assert_eq!(
        iam.list_user_policies(&user).await?,
        vec![format!("{user}-policy")]
    );
    let policy: serde_json::Value = serde_json::from_str(
        &iam.get_user_policy(&user, &format!("{user}-policy"))
            .await?
            .unwrap(),
    )?;
    assert_eq!(
        policy,
        cco_operator::mint_plan::user_policy(&statements(), &u.arn)
    );
    assert_eq!(iam.list_access_keys(&user).await?, vec![key1.clone()]);
    // The root Secret is annotated with the mode.
    wait_until(Duration::from_secs(10), || async {
        let s = Api::<Secret>::namespaced(env.admin.clone(), "kube-system")
            .get("aws-creds")
            .await?;
        Ok(s.metadata
            .annotations
            .unwrap_or_default()
            .get("cloudcredential.openshift.io/mode")
            .map(String::as_str)
            == Some("mint"))
    })
    .await?;

    // A new root credential: a new key in the Secret, the old key deleted.
    put_root_secret(
        &env.admin,
        "aws-creds",
        &[
            ("aws_access_key_id", ROOT_ID_2),
            ("aws_secret_access_key", ROOT_SECRET_2),
        ],
    )
    .await?;
    wait_until(Duration::from_secs(30), || async {
        Ok(wait_secret(&env.admin, "components", "mint-one").await?["aws_access_key_id"] != key1)
    })
    .await?;
    let data = wait_secret(&env.admin, "components", "mint-one").await?;
    seen_secrets.push(data["aws_secret_access_key"].clone());
    let key2 = data["aws_access_key_id"].clone();
    wait_until(Duration::from_secs(10), || async {
        Ok(iam.list_access_keys(&user).await? == vec![key2.clone()])
    })
    .await?;
    assert_eq!(
        user_of(&get_cr(&env.admin, "mint-one").await?),
        user,
        "same user after rotation"
    );

    // The root credential removed: existing credentials stay, new requests cannot be minted.
    Api::<Secret>::namespaced(env.admin.clone(), "kube-system")
        .delete("aws-creds", &DeleteParams::default())
        .await?;
    create_cr(&env.admin, OPERATOR_NS, mint_cr("mint-two", "mint-two")).await?;
    wait_cr(&env.admin, "mint-two", "provision failure", |c| {
        condition(c, "CredentialsProvisionFailure").is_some_and(|(s, _)| s == "True")
    })
    .await?;
    let one = get_cr(&env.admin, "mint-one").await?;
    assert!(one.status.as_ref().unwrap().provisioned);
    assert_ne!(
        condition(&one, "CredentialsProvisionFailure").map(|c| c.0),
        Some("True".into())
    );
    wait_until(Duration::from_secs(20), || async {
        let api: Api<cco_operator::openshift::ClusterOperator> = Api::all(env.admin.clone());
        Ok(api
            .get_opt("cloud-credential")
            .await?
            .and_then(|c| c.status)
            .is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "Upgradeable"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("MissingRootCredential")
                })
            }))
    })
    .await?;
    assert!(op
        .metrics
        .encode()
        .contains("cco_credentials_mode{mode=\"credsremoved\"} 1"));
    // Deleting while the root credential is gone cannot clean up: reported, and the request stays.
    Api::<CredentialsRequest>::namespaced(env.admin.clone(), OPERATOR_NS)
        .delete("mint-one", &DeleteParams::default())
        .await?;
    wait_cr(&env.admin, "mint-one", "deprovision failure", |c| {
        condition(c, "CredentialsDeprovisionFailure").is_some_and(|(s, _)| s == "True")
    })
    .await?;

    // Restored: the new request is minted, the deleted one cleaned up (user, keys, policy, Secret).
    put_root_secret(
        &env.admin,
        "aws-creds",
        &[
            ("aws_access_key_id", ROOT_ID_2),
            ("aws_secret_access_key", ROOT_SECRET_2),
        ],
    )
    .await?;
    let data = wait_secret(&env.admin, "components", "mint-two").await?;
    seen_secrets.push(data["aws_secret_access_key"].clone());
    wait_until(Duration::from_secs(30), || async {
        let gone = Api::<CredentialsRequest>::namespaced(env.admin.clone(), OPERATOR_NS)
            .get_opt("mint-one")
            .await?
            .is_none();
        Ok(gone && iam.get_user(&user).await?.is_none())
    })
    .await?;
    assert!(Api::<Secret>::namespaced(env.admin.clone(), "components")
        .get_opt("mint-one")
        .await?
        .is_none());
    let two = wait_cr(&env.admin, "mint-two", "provisioned", |c| {
        c.status.as_ref().is_some_and(|s| s.provisioned)
    })
    .await?;
    assert_eq!(iam.list_access_keys(&user_of(&two)).await?.len(), 1);

    op.stop().await?;
    let text = String::from_utf8(logs.0.lock().unwrap().clone())?;
    assert!(text.contains("created IAM user"), "logs were captured");
    for s in &seen_secrets {
        assert!(!s.is_empty());
        assert!(
            !text.contains(s.as_str()),
            "a secret value appears in the logs"
        );
    }
    Ok(())
}
