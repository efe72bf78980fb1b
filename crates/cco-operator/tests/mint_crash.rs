//! AWS Mint under crashes: many requests on moto while the operator binary, running as its own
//! ServiceAccount, is killed with SIGKILL at random moments and restarted. At the end every target
//! Secret exists, each request has exactly one IAM user (the one its status names) with exactly one
//! access key (the one in its Secret), and no IAM user or access key exists that no request owns.
//!
//! The operator is killed after a random 0.3–4 s of life, again and again, until at least
//! `CCO_CRASH_KILLS` (default 10) kills happened and nine tenths of the requests are provisioned;
//! then one last run must finish the rest. `CCO_CRASH_COUNT` (default 500) sets the number of
//! requests, `CCO_CRASH_SEED` replays a run (the seed is printed), and `CCO_OPERATOR_BIN` runs the
//! test against another build of the operator.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cco_api::CredentialsRequest;
use cco_testsupport::moto::Moto;
use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use rand::{Rng, SeedableRng};
use serde_json::json;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The operator process; killed (SIGKILL) when dropped, so a failing test leaves nothing behind.
struct Operator(Child);

impl Operator {
    fn kill(&mut self) -> std::io::Result<()> {
        self.0.kill()?;
        self.0.wait().map(|_| ())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

fn spawn(kubeconfig: &std::path::Path, moto: &Moto, log: &std::path::Path) -> Operator {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let bin = std::env::var_os("CCO_OPERATOR_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_cloud-credential-operator").into());
    Command::new(bin)
        .env("KUBECONFIG", kubeconfig)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("CCO_METRICS_ADDR", "")
        // The same identity as a restarted pod: the Lease of the killed process is taken over at once.
        .env("POD_NAME", "crash-test-operator")
        .env("CCO_LOG_FORMAT", "text")
        .env("RUST_LOG", "warn,cco_operator=info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(Operator)
        .unwrap()
}

/// Every IAM user with its access key ids, read through the SDK (not the code under test).
async fn iam_state(iam: &aws_sdk_iam::Client) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let users: Vec<String> = iam
        .list_users()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await?
        .into_iter()
        .map(|u| u.user_name)
        .collect();
    futures::stream::iter(users)
        .map(|u| async move {
            let keys = iam
                .list_access_keys()
                .user_name(&u)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await?
                .into_iter()
                .filter_map(|k| k.access_key_id)
                .collect::<Vec<_>>();
            anyhow::Ok((u, keys))
        })
        .buffer_unordered(8)
        .try_collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mint_survives_sigkill_with_one_user_and_one_key_per_request() -> anyhow::Result<()> {
    let count = env_or("CCO_CRASH_COUNT", 500) as usize;
    let kills = env_or("CCO_CRASH_KILLS", 10);
    let seed = env_or("CCO_CRASH_SEED", rand::thread_rng().gen());
    eprintln!("crash test: {count} requests, at least {kills} kills, CCO_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let moto = Moto::start()?;
    let env = start().await?;
    set_cluster(&env.admin, "Mint", "AWS", "").await?;
    create_namespace(&env.admin, "components").await?;
    put_root_secret(
        &env.admin,
        "aws-creds",
        &[
            ("aws_access_key_id", "AKIACRASHROOT0000001"),
            ("aws_secret_access_key", "crash-root-secret"),
        ],
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, operator_kubeconfig(&env).await?)?;
    let log = dir.path().join("operator.log");

    futures::stream::iter(0..count)
        .map(|i| {
            let admin = env.admin.clone();
            async move {
                let v = cr_json(
                    &format!("crash-{i}"),
                    "components",
                    &format!("crash-{i}"),
                    json!({"apiVersion": "cloudcredential.openshift.io/v1", "kind": "AWSProviderSpec",
                        "statementEntries": [{"effect": "Allow", "action": ["s3:GetObject"], "resource": "*"}]}),
                );
                create_cr(&admin, OPERATOR_NS, v).await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;

    let crs: Api<CredentialsRequest> = Api::namespaced(env.admin.clone(), OPERATOR_NS);
    let secrets: Api<Secret> = Api::namespaced(env.admin.clone(), "components");
    let provisioned = || async {
        Ok::<_, anyhow::Error>(
            crs.list(&ListParams::default())
                .await?
                .items
                .iter()
                .filter(|c| c.status.as_ref().is_some_and(|s| s.provisioned))
                .count(),
        )
    };

    // Kill at random moments while provisioning is under way.
    let mut k = 0;
    loop {
        let mut child = spawn(&kubeconfig, &moto, &log);
        let alive = Duration::from_millis(rng.gen_range(300..4000));
        tokio::time::sleep(alive).await;
        child.kill()?; // SIGKILL
        k += 1;
        let n = provisioned().await?;
        eprintln!("kill {k} after {alive:?}: {n} of {count} provisioned");
        if (k >= kills && n * 10 >= count * 9) || k >= 200 {
            break;
        }
    }

    // A last run without kills must complete everything.
    let mut child = spawn(&kubeconfig, &moto, &log);
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let n = provisioned().await?;
        if n == count {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!(
                "only {n} of {count} provisioned; operator log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    child.kill()?;

    // Every request: one user (the one its status names) with exactly the key in its Secret.
    let state = iam_state(&moto_iam_sdk(&moto).await).await?;
    let mut owned = BTreeSet::new();
    for cr in crs.list(&ListParams::default()).await?.items {
        let name = cr.metadata.name.clone().unwrap();
        let user = cr
            .status
            .as_ref()
            .unwrap()
            .provider_status
            .as_ref()
            .unwrap()["user"]
            .as_str()
            .unwrap()
            .to_string();
        let secret = secrets.get(&cr.spec.secret_ref.name).await?;
        let data = secret.data.unwrap_or_default();
        let key = String::from_utf8(data["aws_access_key_id"].0.clone())?;
        let keys = state
            .get(&user)
            .unwrap_or_else(|| panic!("{name}: IAM user {user} does not exist"));
        assert_eq!(keys, &vec![key], "{name}: IAM user {user} keys");
        assert!(owned.insert(user.clone()), "{name}: user {user} shared");
    }
    assert_eq!(owned.len(), count);
    let strays: Vec<_> = state.keys().filter(|u| !owned.contains(*u)).collect();
    assert!(strays.is_empty(), "IAM users without a request: {strays:?}");
    eprintln!(
        "crash test: {count} requests, {k} kills, converged and verified in {:?}",
        started.elapsed()
    );
    Ok(())
}
