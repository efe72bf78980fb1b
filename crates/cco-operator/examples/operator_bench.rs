//! Operator benchmark driver (run by `bench/operator/run.sh` against the launcher's API server).
//!
//! Installs the CRDs and the operator's RBAC, configures the cluster for one mode (`token`: Manual with
//! a service-account issuer, requests carrying `stsIAMRoleARN`; `passthrough`: Passthrough with an AWS
//! root credential), starts the operator binary as its ServiceAccount, creates N CredentialsRequests
//! and measures the time until every target Secret exists, the operator's peak RSS (VmHWM) and its
//! reconciles per second (from its own `cco_controller_reconcile_seconds_count`). Prints one JSON line.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use cco_api::CredentialsRequest;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::ByteString;
use kube::api::{Api, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "openshift-cloud-credential-operator";
const NAMESPACES: usize = 10;

struct Args {
    kubeconfig: PathBuf,
    mode: String,
    count: usize,
    operator: PathBuf,
    repo: PathBuf,
}

fn args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        kubeconfig: PathBuf::new(),
        mode: "token".into(),
        count: 1000,
        operator: PathBuf::new(),
        repo: PathBuf::from("."),
    };
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| anyhow!("{k} needs a value"))?;
        match k.as_str() {
            "--kubeconfig" => a.kubeconfig = v.into(),
            "--mode" => a.mode = v,
            "--count" => a.count = v.parse()?,
            "--operator" => a.operator = v.into(),
            "--repo" => a.repo = v.into(),
            _ => bail!("unknown flag {k}"),
        }
    }
    Ok(a)
}

async fn apply_json(c: &Client, v: serde_json::Value) -> Result<()> {
    let o: DynamicObject = serde_json::from_value(v)?;
    cco_testsupport::kube_env::apply_objects(c, vec![o]).await?;
    Ok(())
}

async fn metrics(port: u16) -> Result<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

fn metric_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    cco_operator::install_crypto_provider();
    let kc = Kubeconfig::read_from(&a.kubeconfig)?;
    let cfg = Config::from_custom_kubeconfig(kc.clone(), &KubeConfigOptions::default()).await?;
    let server = cfg.cluster_url.to_string();
    let admin = Client::try_from(cfg)?;

    let corpus = a.repo.join("../shared/corpus/crds");
    cco_testsupport::kube_env::install_manifests_dir(&admin, &corpus).await?;
    cco_testsupport::kube_env::install_manifests_dir(&admin, &a.repo.join("deploy/operator"))
        .await?;
    let (mode, issuer) = match a.mode.as_str() {
        "token" => ("Manual", "https://oidc.bench.example.com"),
        "passthrough" => ("Passthrough", ""),
        m => bail!("unknown mode {m}"),
    };
    apply_json(&admin, serde_json::json!({"apiVersion": "operator.openshift.io/v1", "kind": "CloudCredential",
        "metadata": {"name": "cluster"}, "spec": {"credentialsMode": mode, "managementState": "Managed"}})).await?;
    apply_json(
        &admin,
        serde_json::json!({"apiVersion": "config.openshift.io/v1", "kind": "Authentication",
        "metadata": {"name": "cluster"}, "spec": {"serviceAccountIssuer": issuer}}),
    )
    .await?;
    apply_json(
        &admin,
        serde_json::json!({"apiVersion": "config.openshift.io/v1", "kind": "Infrastructure",
        "metadata": {"name": "cluster"}, "spec": {"platformSpec": {"type": "AWS"}}}),
    )
    .await?;
    let gvk = kube::core::GroupVersionKind::gvk("config.openshift.io", "v1", "Infrastructure");
    let (ar, _) = kube::discovery::pinned_kind(&admin, &gvk).await?;
    Api::<DynamicObject>::all_with(admin.clone(), &ar)
        .patch_status("cluster", &PatchParams::default(), &Patch::Merge(&serde_json::json!({"status": {
            "infrastructureName": "bench", "platform": "AWS", "platformStatus": {"type": "AWS", "aws": {"region": "us-east-1"}}}})))
        .await?;
    let nsapi: Api<Namespace> = Api::all(admin.clone());
    for n in std::iter::once("kube-system".to_string())
        .chain((0..NAMESPACES).map(|i| format!("bench-{i}")))
    {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(n),
                ..Default::default()
            },
            ..Default::default()
        };
        match nsapi.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    if a.mode == "passthrough" {
        let s = Secret {
            metadata: ObjectMeta {
                name: Some("aws-creds".into()),
                namespace: Some("kube-system".into()),
                ..Default::default()
            },
            data: Some(
                [
                    ("aws_access_key_id", "AKIABENCH"),
                    ("aws_secret_access_key", "bench-secret"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
            ),
            ..Default::default()
        };
        Api::<Secret>::namespaced(admin.clone(), "kube-system")
            .patch(
                "aws-creds",
                &PatchParams::apply("bench").force(),
                &Patch::Apply(&s),
            )
            .await?;
    }

    // The operator runs as its ServiceAccount.
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(7200),
            ..Default::default()
        },
        ..Default::default()
    };
    let issued: TokenRequest = Api::<ServiceAccount>::namespaced(admin.clone(), NS)
        .create_subresource(
            "token",
            "cloud-credential-operator",
            &PostParams::default(),
            &tr,
        )
        .await?;
    let token = issued.status.ok_or_else(|| anyhow!("no token"))?.token;
    let ca = kc
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.clone())
        .unwrap_or_default();
    let dir = tempfile::tempdir()?;
    let op_kc = dir.path().join("kubeconfig");
    std::fs::write(&op_kc, format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n"))?;
    let port = cco_testsupport::moto::free_port()?;
    let log = std::fs::File::create(dir.path().join("operator.log"))?;
    let mut child = Command::new(&a.operator)
        .env("KUBECONFIG", &op_kc)
        .env("CCO_METRICS_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", a.operator.display()))?;
    let pid = child.id();
    let ready = Instant::now();
    loop {
        if let Ok(m) = metrics(port).await {
            if m.contains("cco_credentials_mode{") {
                break;
            }
        }
        if ready.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            bail!(
                "operator not ready; log: {}",
                std::fs::read_to_string(dir.path().join("operator.log")).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let base_reconciles = metric_value(
        &metrics(port).await?,
        "cco_controller_reconcile_seconds_count{controller=\"credreq\"}",
    )
    .unwrap_or(0.0);

    let crs: Api<CredentialsRequest> = Api::namespaced(admin.clone(), NS);
    let start = Instant::now();
    let mode_name = a.mode.clone();
    futures::stream::iter(0..a.count)
        .map(|i| {
            let crs = crs.clone();
            let mode = mode_name.clone();
            async move {
                let provider = if mode == "token" {
                    serde_json::json!({"kind": "AWSProviderSpec", "statementEntries": [{"effect": "Allow", "action": ["s3:GetObject"], "resource": "*"}],
                        "stsIAMRoleARN": format!("arn:aws:iam::123456789012:role/bench-{i}")})
                } else {
                    serde_json::json!({"kind": "AWSProviderSpec", "statementEntries": [{"effect": "Allow", "action": ["s3:GetObject"], "resource": "*"}]})
                };
                let cr: CredentialsRequest = serde_json::from_value(serde_json::json!({
                    "apiVersion": "cloudcredential.openshift.io/v1", "kind": "CredentialsRequest",
                    "metadata": {"name": format!("bench-{i}"), "namespace": NS},
                    "spec": {"secretRef": {"name": format!("bench-{i}"), "namespace": format!("bench-{}", i % NAMESPACES)},
                             "providerSpec": provider, "serviceAccountNames": ["sa"]}}))?;
                crs.create(&PostParams::default(), &cr).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    let created = start.elapsed();
    let secrets: Api<Secret> = Api::all(admin.clone());
    let lp = ListParams::default().labels("cloudcredential.openshift.io/credentials-request=true");
    let mut peak = 0u64;
    loop {
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        let n = secrets.list_metadata(&lp).await?.items.len();
        if n >= a.count {
            break;
        }
        if start.elapsed() > Duration::from_secs(900) {
            let _ = child.kill();
            bail!("only {n} of {} secrets after 15 minutes", a.count);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed();
    let reconciles = metric_value(
        &metrics(port).await?,
        "cco_controller_reconcile_seconds_count{controller=\"credreq\"}",
    )
    .unwrap_or(0.0)
        - base_reconciles;
    peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    println!(
        "{}",
        serde_json::json!({
            "bench": "operator",
            "mode": a.mode,
            "requests": a.count,
            "create_seconds": (created.as_secs_f64() * 1000.0).round() / 1000.0,
            "seconds_until_all_secrets": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "reconciles": reconciles,
            "reconciles_per_sec": ((reconciles / elapsed.as_secs_f64()) * 10.0).round() / 10.0,
            "peak_rss_mib": ((peak as f64 / 1024.0) * 10.0).round() / 10.0,
        })
    );
    Ok(())
}
