//! A request is provisioned once. The reconciles the operator's own writes trigger may run on a
//! cached version of the request from before those writes (the cache lags behind the API server):
//! here the reconciler is handed such stale versions directly, exactly as a lagging cache hands them
//! over, and the API server's audit log counts every request the operator's ServiceAccount makes.
//! - After a request was provisioned, reconciling its stale versions again (the one before the
//!   finalizer was added, the one before status was written) makes no API request at all: no second
//!   Secret write, no second status write.
//! - In Mint mode a stale version without the recorded IAM user name, handed to a process that never
//!   saw the first reconcile, cannot make a second IAM user: recording a name is conditional on the
//!   version it was chosen from, so it fails with a conflict before anything is created.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cco_api::CredentialsRequest;
use cco_operator::metrics::Metrics;
use cco_testsupport::kube_env::KubeEnvOptions;
use cco_testsupport::moto::Moto;
use common::*;
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;

const SA_USER: &str =
    "system:serviceaccount:openshift-cloud-credential-operator:cloud-credential-operator";

/// An API server whose audit log records every request of the operator's ServiceAccount.
async fn audited_env(dir: &Path) -> anyhow::Result<(Env, PathBuf)> {
    let policy = dir.join("audit-policy.yaml");
    std::fs::write(
        &policy,
        format!("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [\"RequestReceived\"]\nrules:\n- level: Metadata\n  users: [\"{SA_USER}\"]\n- level: None\n"),
    )?;
    let log = dir.join("audit.log");
    let env = start_with(KubeEnvOptions {
        extra_apiserver_args: vec![
            format!("--audit-policy-file={}", policy.display()),
            format!("--audit-log-path={}", log.display()),
            "--audit-log-format=json".into(),
        ],
        ..Default::default()
    })
    .await?;
    Ok((env, log))
}

/// The operator's requests other than list/watch (which the caches make once), as
/// `verb resource/name`.
fn operator_requests(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["user"]["username"] == SA_USER)
        .filter(|e| seen.insert(e["auditID"].as_str().unwrap_or("").to_string()))
        .filter(|e| !matches!(e["verb"].as_str(), Some("list" | "watch")))
        .map(|e| {
            let o = &e["objectRef"];
            format!(
                "{} {}{}/{}",
                e["verb"].as_str().unwrap_or("?"),
                o["resource"].as_str().unwrap_or("?"),
                o["subresource"]
                    .as_str()
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default(),
                o["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Records every version of the CredentialsRequests the API server reports.
fn record_versions(c: &kube::Client) -> Arc<Mutex<Vec<CredentialsRequest>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    let api: Api<CredentialsRequest> = Api::namespaced(c.clone(), OPERATOR_NS);
    tokio::spawn(async move {
        let mut s = watcher(api, watcher::Config::default())
            .applied_objects()
            .boxed();
        while let Some(Ok(cr)) = s.next().await {
            out.lock().unwrap().push(cr);
        }
    });
    seen
}

fn provisioned(cr: &CredentialsRequest) -> bool {
    cr.status.as_ref().is_some_and(|s| s.provisioned)
}

/// Waits until the watch has seen the request provisioned; returns the versions seen.
async fn versions_until_provisioned(
    seen: &Arc<Mutex<Vec<CredentialsRequest>>>,
    name: &str,
) -> anyhow::Result<Vec<CredentialsRequest>> {
    wait_until(Duration::from_secs(20), || async {
        Ok(seen
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some(name) && provisioned(c)))
    })
    .await?;
    Ok(seen
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.metadata.name.as_deref() == Some(name))
        .cloned()
        .collect())
}

fn has_finalizer(cr: &CredentialsRequest) -> bool {
    cr.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == cco_operator::plan::FINALIZER)
}

async fn context(env: &Env) -> anyhow::Result<Arc<cco_operator::controller::Context>> {
    context_with(env, test_settings()).await
}

async fn context_with(
    env: &Env,
    settings: cco_operator::Settings,
) -> anyhow::Result<Arc<cco_operator::controller::Context>> {
    init_logs();
    Ok(cco_operator::operator::standalone_context(
        operator_client(env).await?,
        settings,
        Arc::new(Metrics::new()),
        futures::future::pending(),
    )
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_versions_of_a_provisioned_request_cause_no_request() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (env, log) = audited_env(dir.path()).await?;
    set_cluster(&env.admin, "Passthrough", "AWS", "").await?;
    create_namespace(&env.admin, "components").await?;
    put_root_secret(
        &env.admin,
        "aws-creds",
        &[
            ("aws_access_key_id", "AKIAPASSTHROUGH00001"),
            ("aws_secret_access_key", "passthrough-secret"),
        ],
    )
    .await?;
    let seen = record_versions(&env.admin);
    let created = create_cr(
        &env.admin,
        OPERATOR_NS,
        cr_json(
            "once",
            "components",
            "once",
            json!({"kind": "AWSProviderSpec"}),
        ),
    )
    .await?;
    let ctx = context(&env).await?;

    cco_operator::controller::reconcile(Arc::new(created.clone()), ctx.clone()).await?;
    let first = operator_requests(&log);
    let writes = |r: &[String]| {
        r.iter()
            .filter(|l| l.starts_with("patch secrets/once") || l.starts_with("create secrets/once"))
            .count()
    };
    assert_eq!(writes(&first), 1, "first reconcile: {first:?}");
    assert!(
        first.len() <= 3,
        "a new request costs finalizer, Secret and status: {first:?}"
    );

    // What a lagging cache hands the reconciles triggered by those three writes.
    let versions = versions_until_provisioned(&seen, "once").await?;
    let with_finalizer_only = versions
        .iter()
        .find(|c| has_finalizer(c) && !provisioned(c))
        .cloned()
        .expect("the watch saw the version with the finalizer and no status");
    for stale in [with_finalizer_only, created] {
        cco_operator::controller::reconcile(Arc::new(stale), ctx.clone()).await?;
    }
    let after = operator_requests(&log);
    assert_eq!(
        after[first.len()..].to_vec(),
        Vec::<String>::new(),
        "reconciles on stale versions made requests"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_version_never_mints_a_second_iam_user() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let dir = tempfile::tempdir()?;
    let (env, log) = audited_env(dir.path()).await?;
    set_cluster(&env.admin, "Mint", "AWS", "").await?;
    create_namespace(&env.admin, "components").await?;
    put_root_secret(
        &env.admin,
        "aws-creds",
        &[
            ("aws_access_key_id", "AKIAMINTROOT00000001"),
            ("aws_secret_access_key", "mint-root-secret"),
        ],
    )
    .await?;
    let seen = record_versions(&env.admin);
    let created = create_cr(
        &env.admin,
        OPERATOR_NS,
        cr_json(
            "minted",
            "components",
            "minted",
            json!({"kind": "AWSProviderSpec",
                "statementEntries": [{"effect": "Allow", "action": ["s3:GetObject"], "resource": "*"}]}),
        ),
    )
    .await?;
    let mut settings = test_settings();
    settings.aws_endpoint = Some(moto.endpoint.clone());
    let ctx = context_with(&env, settings.clone()).await?;
    cco_operator::controller::reconcile(Arc::new(created.clone()), ctx.clone()).await?;
    let first = operator_requests(&log);

    let versions = versions_until_provisioned(&seen, "minted").await?;
    let before_name = versions
        .iter()
        .find(|c| {
            has_finalizer(c)
                && c.status
                    .as_ref()
                    .and_then(|s| s.provider_status.as_ref())
                    .is_none()
        })
        .cloned()
        .expect("the watch saw the version with the finalizer and no user name");
    // The same process: its own writes are newer than the stale version; nothing to do.
    cco_operator::controller::reconcile(Arc::new(before_name.clone()), ctx.clone()).await?;
    assert_eq!(
        operator_requests(&log)[first.len()..].to_vec(),
        Vec::<String>::new(),
        "the replay made requests"
    );
    // A process that never saw the first reconcile: the name it would choose cannot be recorded.
    let other = context_with(&env, settings).await?;
    let err = cco_operator::controller::reconcile(Arc::new(before_name), other)
        .await
        .expect_err("a stale version must not be provisioned again");
    assert!(
        err.to_string().contains("409") || err.label().ends_with(":409"),
        "{err}"
    );

    let iam = moto_iam(&moto).await;
    let cr = get_cr(&env.admin, "minted").await?;
    let user = cr.status.unwrap().provider_status.unwrap()["user"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(iam.list_access_keys(&user).await?.len(), 1);
    let users = moto_iam_sdk(&moto).await.list_users().send().await?.users;
    assert_eq!(
        users
            .iter()
            .map(|u| u.user_name.clone())
            .collect::<Vec<_>>(),
        vec![user],
        "exactly one IAM user"
    );
    Ok(())
}
