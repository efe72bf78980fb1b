//! Side-by-side load benchmark of pod identity webhooks (`bench/webhook/run.sh`).
//!
//! Starts a real kube-apiserver (cco-testsupport) with an IRSA-annotated ServiceAccount and a
//! generated CA and serving certificate, then for each `--target NAME=COMMAND` (our binary, the
//! EKS webhook, any other) starts that command as a separate process, waits until it answers a
//! pod AdmissionReview with a patch, warms it up, and drives it with `oha` (a load generator
//! neither side wrote) over HTTP/2 + TLS at each concurrency level for a fixed duration.
//!
//! Placeholders in COMMAND: `{port}`, `{metrics_port}`, `{cert}`, `{key}`, `{cert_dir}`,
//! `{kubeconfig}`; `KUBECONFIG` is also set in its environment. Per target and level one JSON
//! line: admissions/s, p50/p99 latency (oha), CPU time of the webhook process per admission
//! (utime+stime from `/proc/<pid>/stat`), its peak RSS (`VmHWM`), errors and the machine load.
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
use serde_json::{json, Value};
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
struct Opts {
    /// `NAME=COMMAND` of a webhook to measure (repeatable), with placeholders.
    #[arg(long = "target", required = true)]
    targets: Vec<String>,
    /// The oha binary.
    #[arg(long, default_value = "oha")]
    oha: PathBuf,
    /// Seconds per concurrency level.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Concurrency levels (oha `-c`: connections).
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    levels: Vec<usize>,
    /// Admission path.
    #[arg(long, default_value = "/mutate")]
    path: String,
    /// Use HTTP/1.1 instead of HTTP/2.
    #[arg(long)]
    http1: bool,
    /// Rounds: each round runs every target at every level, alternating the order.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
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

async fn post(conn: &mut Conn, path: &str, body: &Bytes) -> Result<()> {
    conn.sender.ready().await?;
    let req = http::Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))?;
    let resp = conn.sender.send_request(req).await?;
    if resp.status() != 200 {
        bail!("status {}", resp.status());
    }
    let bytes = resp.into_body().collect().await?.to_bytes();
    if !bytes.windows(8).any(|w| w == b"\"patch\":") {
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

/// utime + stime of `pid` in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

fn clock_ticks_per_s() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Env {
    kubeconfig: String,
    cert_dir: PathBuf,
    tls: tokio_rustls::TlsConnector,
    body: Bytes,
    body_file: PathBuf,
}

fn expand(template: &str, env: &Env, port: u16, metrics_port: u16) -> Vec<String> {
    template
        .split_whitespace()
        .map(|a| {
            a.replace("{port}", &port.to_string())
                .replace("{metrics_port}", &metrics_port.to_string())
                .replace(
                    "{cert}",
                    &env.cert_dir.join("tls.crt").display().to_string(),
                )
                .replace("{key}", &env.cert_dir.join("tls.key").display().to_string())
                .replace("{cert_dir}", &env.cert_dir.display().to_string())
                .replace("{kubeconfig}", &env.kubeconfig)
        })
        .collect()
}

async fn start_target(
    name: &str,
    template: &str,
    env: &Env,
    path: &str,
) -> Result<(KillOnDrop, SocketAddr)> {
    let port = free_port()?;
    let metrics_port = free_port()?;
    let argv = expand(template, env, port, metrics_port);
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .env("KUBECONFIG", &env.kubeconfig)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {name}: {}", argv[0]))?;
    let mut child = KillOnDrop(child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let ready_by = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = match connect(addr, &env.tls).await {
            Ok(mut c) => post(&mut c, path, &env.body).await.is_ok(),
            Err(_) => false,
        };
        if ok {
            break;
        }
        if let Some(status) = child.0.try_wait()? {
            bail!("{name} exited with {status}");
        }
        if Instant::now() > ready_by {
            bail!("{name} did not answer with a patch within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Warm-up: the ServiceAccount watch syncs, connections and caches settle.
    let mut c = connect(addr, &env.tls).await?;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        post(&mut c, path, &env.body).await?;
    }
    Ok((child, addr))
}

fn run_oha(opts: &Opts, env: &Env, addr: SocketAddr, clients: usize) -> Result<Value> {
    let mut cmd = Command::new(&opts.oha);
    cmd.args(["--no-tui", "--output-format", "json", "--insecure"])
        .args(["-z", &format!("{}s", opts.duration)])
        .args(["-c", &clients.to_string()])
        .args(["-m", "POST", "-H", "Content-Type: application/json"])
        .arg("-D")
        .arg(&env.body_file);
    if !opts.http1 {
        cmd.arg("--http2");
    }
    cmd.arg(format!("https://{addr}{}", opts.path));
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", opts.oha.display()))?;
    if !out.status.success() {
        bail!("oha failed: {}", out.status);
    }
    serde_json::from_slice(&out.stdout).context("oha JSON output")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let opts = Opts::parse();
    cco_webhook::install_crypto_provider();

    let kube = KubeEnv::start(KubeEnvOptions::default()).await?;
    let client = kube.client().await?;
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "bench",
        "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/bench"}}}))?;
    Api::<ServiceAccount>::namespaced(client, "default")
        .create(&PostParams::default(), &sa)
        .await?;

    let pki = common::Pki::new();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let tls = tokio_rustls::TlsConnector::from(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ));
    let body_file = pki.dir.path().join("review.json");
    std::fs::write(&body_file, review_body())?;
    let env = Env {
        kubeconfig: kube.kubeconfig_path().display().to_string(),
        cert_dir: pki.dir.path().to_path_buf(),
        tls,
        body: Bytes::from(review_body()),
        body_file,
    };
    let hz = clock_ticks_per_s();
    let mut targets = Vec::new();
    for t in &opts.targets {
        let (name, template) = t
            .split_once('=')
            .with_context(|| format!("--target {t:?}: expected NAME=COMMAND"))?;
        targets.push((name.to_string(), template.to_string()));
    }
    for round in 0..opts.rounds {
        for &clients in &opts.levels {
            let mut order: Vec<&(String, String)> = targets.iter().collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for (name, template) in order {
                let (child, addr) = start_target(name, template, &env, &opts.path).await?;
                let pid = child.0.id();
                let load = load1();
                let before = cpu_ticks(pid);
                let report = run_oha(&opts, &env, addr, clients)?;
                let after = cpu_ticks(pid);
                let summary = &report["summary"];
                let total = report["statusCodeDistribution"]
                    .as_object()
                    .map(|m| m.values().filter_map(Value::as_u64).sum::<u64>())
                    .unwrap_or(0);
                let ok = report["statusCodeDistribution"]["200"]
                    .as_u64()
                    .unwrap_or(0);
                let errors = report["errorDistribution"]
                    .as_object()
                    .map(|m| m.values().filter_map(Value::as_u64).sum::<u64>())
                    .unwrap_or(0)
                    + (total - ok);
                let cpu_s = (after.saturating_sub(before)) as f64 / hz;
                let pct = |p: &str| {
                    report["latencyPercentiles"][p]
                        .as_f64()
                        .map(|s| (s * 1e6).round() / 1e3)
                };
                let line = json!({
                    "bench": "pod-identity-webhook",
                    "round": round + 1,
                    "target": name,
                    "http": if opts.http1 { "http/1.1" } else { "h2" },
                    "clients": clients,
                    "duration_s": opts.duration,
                    "admissions": ok,
                    "errors": errors,
                    "admissions_per_s": summary["requestsPerSec"].as_f64().map(f64::round),
                    "p50_ms": pct("p50"),
                    "p99_ms": pct("p99"),
                    "cpu_us_per_admission": if ok > 0 { Some((cpu_s * 1e6 / ok as f64 * 10.0).round() / 10.0) } else { None },
                    "peak_rss_kib": proc_status_kib(pid, "VmHWM:"),
                    "load1_before": load,
                });
                println!("{line}");
                drop(child);
            }
        }
    }
    Ok(())
}
