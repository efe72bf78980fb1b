//! Azurite, the Azure Storage emulator (npm `azurite` 3.35.0, installed into `.cache/node` by
//! `scripts/setup-node.sh`), started per test with only its Blob service, in memory, on a free
//! loopback port, and stopped on drop.
//!
//! Blob endpoints are path-style: `http://127.0.0.1:<port>/<account>/`. Besides the well-known
//! `devstoreaccount1`, the accounts a test names at start are registered (all with the well-known
//! development key), so the fake Resource Manager can hand out one endpoint per storage account.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::moto::free_port;
use crate::repo_root;

/// The emulator's well-known development account.
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// The emulator's well-known development account key (public, documented by Microsoft).
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running Azurite Blob service.
pub struct Azurite {
    /// `http://127.0.0.1:<port>` (append `/<account>/` for an account's blob endpoint).
    pub endpoint: String,
    child: Child,
    _dir: tempfile::TempDir,
}

static SETUP: Mutex<bool> = Mutex::new(false);

/// Path of the `azurite-blob` launcher, installing it if needed.
pub fn azurite_blob_path() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("CCO_NODE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/node"));
    let bin = dir.join("node_modules/azurite/dist/src/blob/main.js");
    let mut done = SETUP
        .lock()
        .map_err(|_| anyhow::anyhow!("setup lock poisoned"))?;
    if !bin.exists() && !*done {
        let status = Command::new("bash")
            .arg(repo_root().join("scripts/setup-node.sh"))
            .stdout(Stdio::null())
            .status()
            .context("running scripts/setup-node.sh")?;
        if !status.success() {
            bail!("scripts/setup-node.sh failed; run it by hand to see why");
        }
        *done = true;
    }
    if !bin.exists() {
        bail!(
            "azurite not found at {}; run scripts/setup-node.sh",
            bin.display()
        );
    }
    Ok(bin)
}

impl Azurite {
    /// Starts a fresh, empty emulator knowing `accounts` besides `devstoreaccount1`.
    pub fn start(accounts: &[&str]) -> anyhow::Result<Azurite> {
        Self::start_full(accounts, None)
    }

    /// As [`Azurite::start`], served over HTTPS with the server certificate of `ca` (endpoint
    /// `https://127.0.0.1:<port>`), so issuer documents are fetched as Azure AD fetches them.
    pub fn start_tls(accounts: &[&str], ca: &crate::tls::TestCa) -> anyhow::Result<Azurite> {
        Self::start_full(accounts, Some(ca))
    }

    fn start_full(accounts: &[&str], tls: Option<&crate::tls::TestCa>) -> anyhow::Result<Azurite> {
        let main = azurite_blob_path()?;
        let mut list = vec![format!("{DEV_ACCOUNT}:{DEV_KEY}")];
        list.extend(accounts.iter().map(|a| format!("{a}:{DEV_KEY}")));
        for _attempt in 0..3 {
            let port = free_port()?;
            let dir = tempfile::tempdir()?;
            let mut cmd = Command::new("node");
            cmd.arg(&main)
                .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()]);
            if let Some(ca) = tls {
                ca.write(dir.path())?;
                cmd.args(["--cert", "server.pem", "--key", "server-key.pem"]);
            }
            let child = cmd
                .current_dir(dir.path())
                .args([
                    "--inMemoryPersistence",
                    "--skipApiVersionCheck",
                    "--disableProductStyleUrl",
                    "--silent",
                ])
                .env("AZURITE_ACCOUNTS", list.join(";"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting azurite (node)")?;
            let mut a = Azurite {
                endpoint: format!(
                    "{}://127.0.0.1:{port}",
                    if tls.is_some() { "https" } else { "http" }
                ),
                child,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = a.child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(a);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        bail!("azurite did not start")
    }

    /// `http://127.0.0.1:<port>/<account>/`.
    pub fn blob_endpoint(&self, account: &str) -> String {
        format!("{}/{account}/", self.endpoint)
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
