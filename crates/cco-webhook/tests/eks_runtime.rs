//! The EKS webhook's runtime flags, on the binary started as `/webhook` against a real
//! kube-apiserver: `--resync-period` with the debugging handlers' `/debug/alpha/cache/clear`,
//! and `--compose-role-arn` with the EC2 instance metadata service played by AWS's own emulator
//! (amazon-ec2-metadata-mock, IMDSv2 only).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use cco_testsupport::imds::{Imds, ImdsOptions};
use cco_testsupport::kube_env::{KubeEnv, KubeEnvOptions};
use common::process::{create_ns, create_sa, env_value, free_port, spawn, wait_port, Process};
use common::{http_get, Pki};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, PostParams};
use kube::Client;
use serde_json::{json, Value};

/// The webhook as `/webhook` with the EKS deployment's flags, certificates from files, plus
/// `extra`; returns the process and its TLS and metrics ports.
async fn start_eks(
    kube: &KubeEnv,
    pki: &Pki,
    work: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Result<(Process, u16, u16)> {
    let cert_dir = work.join("certs");
    pki.write_leaf_to(&cert_dir);
    let (port, metrics_port) = (free_port(), free_port());
    let mut command: Vec<String> = vec![
        "/webhook".into(),
        "--in-cluster=false".into(),
        "--namespace=eks".into(),
        format!("--tls-cert={}", cert_dir.join("tls.crt").display()),
        format!("--tls-key={}", cert_dir.join("tls.key").display()),
        format!("--port={port}"),
        format!("--metrics-port={metrics_port}"),
        "--logtostderr".into(),
    ];
    command.extend(extra.iter().map(|s| s.to_string()));
    let mut vars = vec![(
        "KUBECONFIG".to_string(),
        kube.kubeconfig_path().display().to_string(),
    )];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut proc = spawn(&command, &vars, work)?;
    wait_port(metrics_port, &mut proc, work).await?;
    wait_port(port, &mut proc, work).await?;
    Ok((proc, port, metrics_port))
}

async fn register(client: &Client, name: &str, port: u16, pki: &Pki, ns: &str) -> Result<()> {
    let mwc: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": name},
        "webhooks": [{
            "name": format!("{name}.pod-identity.test"),
            "clientConfig": {
                "url": format!("https://127.0.0.1:{port}/mutate"),
                "caBundle": base64::engine::general_purpose::STANDARD.encode(&pki.ca_pem),
            },
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
            "failurePolicy": "Fail", "sideEffects": "None",
            "admissionReviewVersions": ["v1beta1"], "timeoutSeconds": 10
        }]
    }))?;
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &mwc)
        .await?;
    Ok(())
}

/// Dry-run a pod under `sa` in `ns` until the webhook answers; the stored pod as JSON.
async fn admitted(client: &Client, ns: &str, sa: &str) -> Result<Value> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"generateName": "p-"},
        "spec": {"serviceAccountName": sa, "containers": [{"name": "app", "image": "x"}]}
    }))?;
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let mut last = None;
    for _ in 0..100 {
        match Api::<Pod>::namespaced(client.clone(), ns)
            .create(&dry, &pod)
            .await
        {
            Ok(p) => return Ok(serde_json::to_value(p)?),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("pod never admitted: {last:?}")
}

async fn dump(metrics: SocketAddr) -> Result<serde_json::Map<String, Value>> {
    let (status, body) = http_get(metrics, "/debug/alpha/cache").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).with_context(|| format!("dump is not JSON: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_clear_empties_the_cache_until_the_resync_period_refills_it() -> Result<()> {
    let kube = KubeEnv::start(KubeEnvOptions::default()).await?;
    let client = kube.client().await?;
    let pki = Pki::new();
    for ns in ["eks", "team"] {
        create_ns(&client, ns).await?;
    }
    let role = "arn:aws:iam::111122223333:role/app";
    create_sa(
        &client,
        "team",
        "app",
        json!({"eks.amazonaws.com/role-arn": role, "eks.amazonaws.com/token-expiration": "60"}),
    )
    .await?;
    create_sa(&client, "team", "cm-sa", json!({})).await?;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "pod-identity-webhook"},
        "data": {"config": json!({"team/cm-sa": {"RoleARN": role}}).to_string()}
    }))?;
    Api::<ConfigMap>::namespaced(client.clone(), "eks")
        .create(&PostParams::default(), &cm)
        .await?;

    // No resync: a cleared cache stays empty; watch events still feed it.
    let work = tempfile::tempdir()?;
    let (proc, _, metrics_port) = start_eks(
        &kube,
        &pki,
        work.path(),
        &[
            "--enable-debugging-handlers",
            "--resync-period=0",
            "--watch-config-map",
        ],
        &[],
    )
    .await?;
    let metrics: SocketAddr = ([127, 0, 0, 1], metrics_port).into();
    let mut entries = serde_json::Map::new();
    for _ in 0..100 {
        entries = dump(metrics).await?;
        if entries.contains_key("team/app") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The EKS webhook's entry shape: role, audience, regional STS, lifetime (clamped to 600).
    assert_eq!(
        entries["team/app"],
        json!({"RoleARN": role, "Audience": "sts.amazonaws.com", "UseRegionalSTS": false,
               "TokenExpiration": 600})
    );
    assert_eq!(
        entries["team/cm-sa"]["RoleARN"], "",
        "no annotation, no role"
    );

    let (status, _) = http_get(metrics, "/debug/alpha/cache/clear").await;
    assert_eq!(status, 200);
    assert!(dump(metrics).await?.is_empty(), "cleared");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        dump(metrics).await?.is_empty(),
        "no resync with --resync-period=0"
    );
    create_sa(&client, "team", "late", json!({})).await?;
    let mut keys = vec![];
    for _ in 0..50 {
        keys = dump(metrics).await?.keys().cloned().collect();
        if !keys.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        keys,
        ["team/late"],
        "watch events still reach the cleared cache"
    );
    drop(proc);

    // A one-second resync refills the cleared cache, ConfigMap roles included.
    let work = tempfile::tempdir()?;
    let (_proc, port, metrics_port) = start_eks(
        &kube,
        &pki,
        work.path(),
        &[
            "--enable-debugging-handlers",
            "--resync-period=1s",
            "--watch-config-map",
        ],
        &[],
    )
    .await?;
    register(&client, "resync", port, &pki, "team").await?;
    let metrics: SocketAddr = ([127, 0, 0, 1], metrics_port).into();
    let pod = admitted(&client, "team", "cm-sa").await?;
    assert_eq!(env_value(&pod, "AWS_ROLE_ARN").as_deref(), Some(role));
    let (status, _) = http_get(metrics, "/debug/alpha/cache/clear").await;
    assert_eq!(status, 200);
    let mut refilled = false;
    for _ in 0..50 {
        let d = dump(metrics).await?;
        if ["team/app", "team/late", "team/cm-sa"]
            .iter()
            .all(|k| d.contains_key(*k))
        {
            refilled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refilled, "cache not refilled by the resync");
    let mut cm_role = None;
    for _ in 0..30 {
        cm_role = env_value(&admitted(&client, "team", "cm-sa").await?, "AWS_ROLE_ARN");
        if cm_role.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(cm_role.as_deref(), Some(role), "ConfigMap roles resynced");
    Ok(())
}

/// Wait for `proc` to exit; its status and log.
async fn exited(proc: &mut Process, work: &Path) -> Result<(std::process::ExitStatus, String)> {
    for _ in 0..600 {
        if let Some(status) = proc.0.try_wait()? {
            let log = std::fs::read_to_string(work.join("webhook.log")).unwrap_or_default();
            return Ok((status, log));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("webhook still running after 30 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_role_arn_completes_role_names_from_instance_metadata() -> Result<()> {
    let imds = Imds::start(ImdsOptions {
        account_id: "111122223333".into(),
        region: "cn-north-1".into(),
        imdsv2_only: true,
    })?;
    let kube = KubeEnv::start(KubeEnvOptions::default()).await?;
    let client = kube.client().await?;
    let pki = Pki::new();
    for ns in ["eks", "team"] {
        create_ns(&client, ns).await?;
    }
    let full = "arn:aws:iam::444455556666:role/full";
    for (name, role) in [
        ("named", "app-role"),
        ("pathed", "teams/a/app-role"),
        ("full", full),
    ] {
        create_sa(
            &client,
            "team",
            name,
            json!({"eks.amazonaws.com/role-arn": role}),
        )
        .await?;
    }
    create_sa(&client, "team", "cm-sa", json!({})).await?;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "pod-identity-webhook"},
        "data": {"config": json!({"team/cm-sa": {"RoleARN": "cm-role"}}).to_string()}
    }))?;
    Api::<ConfigMap>::namespaced(client.clone(), "eks")
        .create(&PostParams::default(), &cm)
        .await?;

    let work = tempfile::tempdir()?;
    let (_proc, port, metrics_port) = start_eks(
        &kube,
        &pki,
        work.path(),
        &[
            "--compose-role-arn",
            "--watch-config-map",
            "--enable-debugging-handlers",
        ],
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint)],
    )
    .await?;
    register(&client, "compose", port, &pki, "team").await?;
    for (sa, expected) in [
        ("named", "arn:aws-cn:iam::111122223333:role/app-role"),
        (
            "pathed",
            "arn:aws-cn:iam::111122223333:role/teams/a/app-role",
        ),
        ("full", full),
        // ConfigMap roles are used as written, as in the EKS webhook.
        ("cm-sa", "cm-role"),
    ] {
        let mut got = None;
        for _ in 0..50 {
            got = env_value(&admitted(&client, "team", sa).await?, "AWS_ROLE_ARN");
            if got.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(got.as_deref(), Some(expected), "ServiceAccount {sa}");
    }
    let metrics: SocketAddr = ([127, 0, 0, 1], metrics_port).into();
    assert_eq!(
        dump(metrics).await?["team/named"]["RoleARN"],
        "arn:aws-cn:iam::111122223333:role/app-role"
    );

    // Without instance metadata the webhook stops at startup, saying why, as the EKS webhook.
    let nothing = format!("http://127.0.0.1:{}", free_port());
    for (env, needle) in [
        (
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", nothing.as_str()),
            "instance metadata service",
        ),
        (
            ("AWS_EC2_METADATA_DISABLED", "true"),
            "AWS_EC2_METADATA_DISABLED",
        ),
    ] {
        let work = tempfile::tempdir()?;
        let command: Vec<String> = [
            "/webhook",
            "--in-cluster=false",
            "--compose-role-arn",
            &format!("--port={}", free_port()),
            &format!("--metrics-port={}", free_port()),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let vars = vec![
            (
                "KUBECONFIG".to_string(),
                kube.kubeconfig_path().display().to_string(),
            ),
            (env.0.to_string(), env.1.to_string()),
        ];
        let mut proc = spawn(&command, &vars, work.path())?;
        let (status, log) = exited(&mut proc, work.path()).await?;
        assert!(!status.success(), "{log}");
        assert!(
            log.contains("--compose-role-arn") && log.contains(needle),
            "{log}"
        );
    }
    Ok(())
}
