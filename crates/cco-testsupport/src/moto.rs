//! The local AWS emulator (`moto_server` from PyPI `moto[server]`), started per test on a free
//! loopback port and stopped on drop.
//!
//! The server comes from the project's virtualenv (`.venv`, or `$CCO_VENV`), which
//! `scripts/setup-python.sh` creates; if it is missing, [`Moto::start`] runs that script first. It is
//! started through `python/moto_server.py`, which adds CloudFront origin access identities (the
//! reference tool's private-bucket setup uses them; moto has none) to moto's own CloudFront.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::repo_root;

/// A running `moto_server`.
pub struct Moto {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    child: Child,
}

static SETUP: Mutex<bool> = Mutex::new(false);

/// Path of `moto_server`, installing the virtualenv if needed.
pub fn moto_server_path() -> anyhow::Result<PathBuf> {
    let venv = std::env::var_os("CCO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    let bin = venv.join("bin/moto_server");
    let mut done = SETUP
        .lock()
        .map_err(|_| anyhow::anyhow!("setup lock poisoned"))?;
    if !bin.exists() && !*done {
        let status = Command::new("bash")
            .arg(repo_root().join("scripts/setup-python.sh"))
            .status()
            .context("running scripts/setup-python.sh")?;
        if !status.success() {
            bail!("scripts/setup-python.sh failed; run it by hand to see why");
        }
        *done = true;
    }
    if !bin.exists() {
        bail!("{} not found; run scripts/setup-python.sh", bin.display());
    }
    Ok(bin)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Moto {
    /// Starts a fresh emulator and waits until it answers.
    pub fn start() -> anyhow::Result<Moto> {
        let bin = moto_server_path()?;
        let python = bin.with_file_name("python");
        let script = repo_root().join("crates/cco-testsupport/python/moto_server.py");
        for _attempt in 0..3 {
            let port = free_port()?;
            let child = Command::new(&python)
                .arg(&script)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
            let mut moto = Moto {
                endpoint: format!("http://127.0.0.1:{port}"),
                child,
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = moto.child.try_wait() {
                    break; // exited: most likely the port was taken; try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(moto);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        bail!("moto_server did not start")
    }

    /// Environment for a process that should talk to this emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
