//! Load generator for the pod identity webhook (`bench/webhook/run.sh`).
//!
//! Starts a real kube-apiserver (cco-testsupport), creates an IRSA-annotated ServiceAccount,
//! launches the `cco-pod-identity-webhook` binary as a separate process on loopback TLS with a
//! generated CA, then for each concurrency level runs N clients (one keep-alive HTTP/1.1 TLS
//! connection each) that POST the same pod AdmissionReview to `/mutate` for a fixed duration.
//! Per level it prints one JSON line: admissions/s, p50/p99 latency and the webhook's resident
//! memory (current and peak) read from `/proc/<pid>/status`.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use cco_testsupport::kube_env::{KubeEnv, KubeEnvOptions};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
struct Opts {
    /// Path of the webhook binary (build it with --release).
    #[arg(long)]
    webhook_bin: PathBuf,
    /// Seconds per concurrency level.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    levels: Vec<usize>,
}

fn free_port() -> Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn review_body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "bench",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "bench"},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": "bench-", "namespace": "default", "labels": {"app": "bench"}},
                "spec": {
                    "serviceAccountName": "bench",
                    "initContainers": [{"name": "init", "image": "busybox"}],
                    "containers": [
                        {"name": "app", "image": "registry.example/app:1",
                         "env": [{"name": "LOG_LEVEL", "value": "info"}],
                         "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                        {"name": "sidecar", "image": "registry.example/proxy:1"}
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}]
                }
            }
        }
    }))
    .unwrap()
}

struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

async fn connect(addr: SocketAddr, tls: &tokio_rustls::TlsConnector) -> Result<Conn> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let stream = tls
        .connect(ServerName::try_from("127.0.0.1")?.to_owned(), tcp)
        .await?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(Conn { sender })
}

async fn post(conn: &mut Conn, body: &Bytes) -> Result<()> {
    conn.sender.ready().await?;
    let req = http::Request::post("/mutate")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))?;
    let resp = conn.sender.send_request(req).await?;
    if resp.status() != 200 {
        bail!("status {}", resp.status());
    }
    let bytes = resp.into_body().collect().await?.to_bytes();
    if !bytes.windows(9).any(|w| w == b"\"patch\":\"") {
        bail!("response without patch");
    }
    Ok(())
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let opts = Opts::parse();
    cco_webhook::install_crypto_provider();

    let env = KubeEnv::start(KubeEnvOptions::default()).await?;
    let client = env.client().await?;
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "bench",
        "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/bench"}}}))?;
    Api::<ServiceAccount>::namespaced(client, "default")
        .create(&PostParams::default(), &sa)
        .await?;

    let pki = common::Pki::new();
    let port = free_port()?;
    let metrics_port = free_port()?;
    let child = Command::new(&opts.webhook_bin)
        .args(["--bind-address", "127.0.0.1", "--port", &port.to_string()])
        .args(["--metrics-port", &metrics_port.to_string()])
        .arg("--tls-cert")
        .arg(pki.cert_path())
        .arg("--tls-key")
        .arg(pki.key_path())
        .arg("--kubeconfig")
        .arg(env.kubeconfig_path())
        .args([
            "--aws-default-region",
            "us-east-1",
            "--sts-regional-endpoint",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", opts.webhook_bin.display()))?;
    let child = KillOnDrop(child);
    let pid = child.0.id();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let tls = tokio_rustls::TlsConnector::from(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ));
    let body = Bytes::from(review_body());

    // Ready: the first successful mutation (ServiceAccount found) ends the wait.
    let ready_by = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = match connect(addr, &tls).await {
            Ok(mut c) => post(&mut c, &body).await.is_ok(),
            Err(_) => false,
        };
        if ok {
            break;
        }
        if Instant::now() > ready_by {
            bail!("webhook did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Warm-up (lets the ServiceAccount watch sync so the run measures cache hits).
    {
        let mut c = connect(addr, &tls).await?;
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            post(&mut c, &body).await?;
        }
    }

    let duration = Duration::from_secs_f64(opts.duration);
    for &clients in &opts.levels {
        let start = Instant::now();
        let deadline = start + duration;
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let tls = tls.clone();
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let mut conn = match connect(addr, &tls).await {
                    Ok(c) => c,
                    Err(_) => return (lat, 1),
                };
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match post(&mut conn, &body).await {
                        Ok(()) => lat.push(t.elapsed()),
                        Err(_) => {
                            errors += 1;
                            match connect(addr, &tls).await {
                                Ok(c) => conn = c,
                                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                            }
                        }
                    }
                }
                (lat, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (lat, e) = t.await?;
            all.extend(lat);
            errors += e;
        }
        let elapsed = start.elapsed().as_secs_f64();
        all.sort_unstable();
        let line = json!({
            "bench": "pod-identity-webhook",
            "clients": clients,
            "duration_s": (elapsed * 100.0).round() / 100.0,
            "admissions": all.len(),
            "errors": errors,
            "admissions_per_s": (all.len() as f64 / elapsed).round(),
            "p50_ms": (percentile(&all, 0.50) * 1000.0).round() / 1000.0,
            "p99_ms": (percentile(&all, 0.99) * 1000.0).round() / 1000.0,
            "rss_kib": proc_status_kib(pid, "VmRSS:"),
            "peak_rss_kib": proc_status_kib(pid, "VmHWM:"),
        });
        println!("{line}");
    }
    drop(child);
    Ok(())
}
