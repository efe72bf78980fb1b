//! Helpers for tests that run the `cco-pod-identity-webhook` binary as a process: start it
//! under a reference program name, wait for its ports, serialize the reference ports across
//! test processes, and create the Kubernetes objects the tests need.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::Client;
use serde_json::{json, Value};

use super::http_get;

/// The webhook binary (integration tests; the benchmark harness that shares these helpers has
/// no such variable and does not start it from here).
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_cco-pod-identity-webhook") {
    Some(bin) => bin,
    None => "cco-pod-identity-webhook",
};

pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serializes the use of the reference ports across test processes on this machine: a lock
/// directory holding the owner's pid, taken over when that process is gone.
pub struct PortLock(PathBuf);

impl Drop for PortLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn port_lock() -> PortLock {
    let dir = std::env::temp_dir().join("cco-webhook-reference-ports.lock");
    loop {
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::write(dir.join("pid"), std::process::id().to_string()).expect("pid");
                return PortLock(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if dir.is_file() {
                    let _ = std::fs::remove_file(&dir);
                    continue;
                }
                let owner = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
                let alive = !owner.is_empty() && Path::new("/proc").join(owner.trim()).exists();
                let young = std::fs::metadata(&dir)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age < Duration::from_secs(10));
                if !alive && (!owner.is_empty() || !young) {
                    let _ = std::fs::remove_dir_all(&dir);
                    continue;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("lock {}: {e}", dir.display()),
        }
    }
}

/// Start `command` (reference argv) with `env`, `argv[0]` named like the reference binary.
pub fn spawn(command: &[String], env: &[(String, String)], work: &Path) -> Result<Process> {
    let name = Path::new(&command[0])
        .file_name()
        .context("command name")?
        .to_owned();
    let link = work.join("bin").join(name);
    std::fs::create_dir_all(work.join("bin"))?;
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(BIN, &link)?;
    let log = std::fs::File::create(work.join("webhook.log"))?;
    let child = Command::new(&link)
        .args(&command[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", link.display()))?;
    Ok(Process(child))
}

pub async fn wait_port(port: u16, proc: &mut Process, work: &Path) -> Result<()> {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Some(status) = proc.0.try_wait()? {
            let log = std::fs::read_to_string(work.join("webhook.log")).unwrap_or_default();
            bail!("webhook exited with {status}:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("port {port} never opened")
}

pub async fn create_ns(client: &Client, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

pub async fn create_sa(client: &Client, ns: &str, name: &str, annotations: Value) -> Result<()> {
    let sa: ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations}
    }))?;
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await?;
    Ok(())
}

pub fn env_value(pod: &Value, name: &str) -> Option<String> {
    pod["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .map(String::from)
}

pub async fn wait_ready(addr: SocketAddr) -> Result<()> {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok()
            && http_get(addr, "/readyz").await.0 == 200
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{addr}/readyz never answered 200")
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free loopback port")
        .port()
}
