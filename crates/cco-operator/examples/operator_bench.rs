//! Operator benchmark driver (run by `bench/operator/run.sh` against the launcher's API server).
//!
//! Installs the CRDs and the operator's manifests (with the ClusterOperator, which the
//! cluster-version operator creates before the operator starts), a ClusterVersion as every cluster
//! has, configures the cluster for one mode (`token`: Manual with
//! a service-account issuer, requests carrying `stsIAMRoleARN`; `passthrough`: Passthrough with an AWS
//! root credential), starts the operator binary as its ServiceAccount, creates N CredentialsRequests
//! and measures the time until every target Secret exists, the operator's peak RSS (VmHWM), its
//! reconciles per second (from its own `cco_controller_reconcile_seconds_count`) and the time from
//! its start to the first ClusterOperator status. With `--audit-log` (the API server's JSON audit
//! log, written by `bench/operator/run.sh`), it also counts every API request the operator's
//! ServiceAccount made from its start until it stopped, a few seconds after the last Secret appeared
//! (so that late duplicate writes are counted too): requests per CredentialsRequest and write
//! requests (create/update/patch) per target Secret. Prints one JSON line.
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
    audit_log: Option<PathBuf>,
    /// Seconds to keep the operator running after the last Secret appeared.
    settle: f64,
}

fn args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        kubeconfig: PathBuf::new(),
        mode: "token".into(),
        count: 1000,
        operator: PathBuf::new(),
        repo: PathBuf::from("."),
        audit_log: None,
        settle: 5.0,
    };
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| anyhow!("{k} needs a value"))?;
        match k.as_str() {
            "--kubeconfig" => a.kubeconfig = v.into(),
            "--mode" => a.mode = v,
            "--count" => a.count = v.parse()?,
            "--operator" => a.operator = v.into(),
            "--repo" => a.repo = v.into(),
            "--audit-log" => a.audit_log = Some(v.into()),
            "--settle" => a.settle = v.parse()?,
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

/// Scrapes the operator's HTTPS metrics endpoint as Prometheus does: the serving certificate's CA
/// trusted, a bearer token the API server authenticates and authorizes.
struct Scraper {
    port: u16,
    token: String,
    tls: tokio_rustls::TlsConnector,
}

impl Scraper {
    fn new(port: u16, token: String, ca_pem: &str) -> Result<Scraper> {
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls::pki_types::CertificateDer::from_pem_slice(
            ca_pem.as_bytes(),
        )?)?;
        let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Scraper {
            port,
            token,
            tls: tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg)),
        })
    }

    async fn metrics(&self) -> Result<String> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        let name = rustls::pki_types::ServerName::try_from("localhost")?;
        let mut s = self.tls.connect(name, tcp).await?;
        s.write_all(
            format!(
                "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
                self.token
            )
            .as_bytes(),
        )
        .await?;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        Ok(String::from_utf8_lossy(&out).to_string())
    }
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
    // Every OpenShift cluster has its ClusterVersion before the operator starts.
    apply_json(
        &admin,
        serde_json::json!({"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion",
        "metadata": {"name": "version"}, "spec": {"clusterID": "5a1c0f3e-2b7d-4c39-9e61-0d8f4a6b2c17"}}),
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
    // Metrics over HTTPS with a certificate from a throw-away CA, scraped with the admin's token.
    let pki = cco_testsupport::tls::TestCa::generate()?;
    let cert_dir = dir.path().join("metrics-tls");
    std::fs::create_dir_all(&cert_dir)?;
    std::fs::write(cert_dir.join("tls.crt"), &pki.cert_pem)?;
    std::fs::write(cert_dir.join("tls.key"), &pki.key_pem)?;
    // A ServiceAccount allowed to GET /metrics, as cluster monitoring's is.
    for obj in [
        serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "bench-scraper", "namespace": NS}}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "bench-metrics-reader"},
            "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "bench-metrics-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bench-metrics-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "bench-scraper", "namespace": NS}]}),
    ] {
        apply_json(&admin, obj).await?;
    }
    let scrape: TokenRequest = Api::<ServiceAccount>::namespaced(admin.clone(), NS)
        .create_subresource("token", "bench-scraper", &PostParams::default(), &tr)
        .await?;
    let admin_token = scrape.status.ok_or_else(|| anyhow!("no token"))?.token;
    let scraper = Scraper::new(port, admin_token, &pki.ca_pem)?;
    let log = std::fs::File::create(dir.path().join("operator.log"))?;
    let mut child = Command::new(&a.operator)
        .env("KUBECONFIG", &op_kc)
        .env("CCO_METRICS_ADDR", format!("127.0.0.1:{port}"))
        .env("CCO_METRICS_CERT_DIR", &cert_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", a.operator.display()))?;
    let pid = child.id();
    let spawned = Instant::now();
    let first_status = {
        let cos: Api<cco_operator::openshift::ClusterOperator> = Api::all(admin.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(Some(co)) = cos.get_opt("cloud-credential").await {
                    if co.status.is_some_and(|s| !s.conditions.is_empty()) {
                        return Some(spawned.elapsed());
                    }
                }
                if spawned.elapsed() > Duration::from_secs(60) {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let ready = Instant::now();
    loop {
        if let Ok(m) = scraper.metrics().await {
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
        &scraper.metrics().await?,
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
        &scraper.metrics().await?,
        "cco_controller_reconcile_seconds_count{controller=\"credreq\"}",
    )
    .unwrap_or(0.0)
        - base_reconciles;
    // Late duplicates (a second reconcile writing again) happen within a few hundred milliseconds.
    let settle_until = Instant::now() + Duration::from_secs_f64(a.settle);
    while Instant::now() < settle_until {
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
    let first_status = first_status.await.ok().flatten();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    let audit = match &a.audit_log {
        // The log backend writes synchronously; give it a moment to flush the last lines.
        Some(p) => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Some(count_audit(p, a.count)?)
        }
        None => None,
    };
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let mut line = serde_json::json!({
            "bench": "operator",
            "mode": a.mode,
            "requests": a.count,
            "create_seconds": (created.as_secs_f64() * 1000.0).round() / 1000.0,
            "seconds_until_all_secrets": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "reconciles": reconciles,
            "reconciles_per_sec": ((reconciles / elapsed.as_secs_f64()) * 10.0).round() / 10.0,
            "peak_rss_mib": ((peak as f64 / 1024.0) * 10.0).round() / 10.0,
            "seconds_to_first_clusteroperator_status": first_status.map(|d| round3(d.as_secs_f64())),
    });
    if let Some(au) = audit {
        line["api_requests"] = au.total.into();
        line["api_requests_per_credentialsrequest"] =
            round3(au.total as f64 / a.count as f64).into();
        line["api_requests_by_verb_resource"] = serde_json::to_value(&au.by_verb_resource)?;
        line["secret_writes"] = au.secret_writes.into();
        line["secret_writes_per_secret"] = round3(au.secret_writes as f64 / a.count as f64).into();
        line["secrets_written_more_than_once"] = au.secrets_written_twice.into();
    }
    println!("{line}");
    Ok(())
}

/// What the operator's ServiceAccount asked of the API server.
struct AuditCounts {
    total: u64,
    by_verb_resource: std::collections::BTreeMap<String, u64>,
    /// create/update/patch requests on target Secrets (namespaces `bench-*`).
    secret_writes: u64,
    secrets_written_twice: u64,
}

fn count_audit(path: &std::path::Path, _count: usize) -> Result<AuditCounts> {
    use std::collections::{BTreeMap, HashSet};
    let user = format!("system:serviceaccount:{NS}:cloud-credential-operator");
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading audit log {}", path.display()))?;
    let mut seen = HashSet::new();
    let mut by = BTreeMap::new();
    let mut per_secret: BTreeMap<String, u64> = BTreeMap::new();
    for line in text.lines() {
        let Ok(ev) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if ev["user"]["username"].as_str() != Some(user.as_str()) {
            continue;
        }
        // A long-running watch is logged when its response starts and when it ends: count it once.
        let Some(id) = ev["auditID"].as_str() else {
            continue;
        };
        if !seen.insert(id.to_string()) {
            continue;
        }
        let verb = ev["verb"].as_str().unwrap_or("?");
        let o = &ev["objectRef"];
        let resource = match o["subresource"].as_str() {
            Some(sub) => format!("{}/{sub}", o["resource"].as_str().unwrap_or("?")),
            None => o["resource"].as_str().unwrap_or("?").to_string(),
        };
        *by.entry(format!("{verb} {resource}")).or_insert(0u64) += 1;
        let ns = o["namespace"].as_str().unwrap_or("");
        if resource == "secrets"
            && ns.starts_with("bench-")
            && matches!(verb, "create" | "update" | "patch")
        {
            let name = o["name"].as_str().unwrap_or("?");
            *per_secret.entry(format!("{ns}/{name}")).or_insert(0) += 1;
        }
    }
    Ok(AuditCounts {
        total: seen.len() as u64,
        by_verb_resource: by,
        secret_writes: per_secret.values().sum(),
        secrets_written_twice: per_secret.values().filter(|n| **n > 1).count() as u64,
    })
}
