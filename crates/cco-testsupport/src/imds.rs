//! The EC2 instance metadata service, played by AWS's own emulator amazon-ec2-metadata-mock
//! (`ec2-metadata-mock`, a Go module installed by `tools/aemm/build.sh` into a cache directory,
//! or `$CCO_AEMM_BIN`), started per test on a free loopback port and stopped on drop.
//!
//! It serves IMDSv2 (`PUT /latest/api/token`, then the `X-aws-ec2-metadata-token` header; with
//! [`ImdsOptions::imdsv2_only`] a request without a token gets 401) and IMDSv1, including
//! `/latest/dynamic/instance-identity/document`, whose account and region are set per test.
//! Point a client at it with `AWS_EC2_METADATA_SERVICE_ENDPOINT=<endpoint>`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::repo_root;

/// What the emulated instance reports.
#[derive(Debug, Clone)]
pub struct ImdsOptions {
    /// `accountId` of the instance identity document.
    pub account_id: String,
    /// `region` of the instance identity document (and `placement/region`).
    pub region: String,
    /// Refuse requests without an IMDSv2 session token (401), as instances configured with
    /// `HttpTokens: required` do.
    pub imdsv2_only: bool,
}

impl Default for ImdsOptions {
    fn default() -> Self {
        Self {
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            imdsv2_only: true,
        }
    }
}

/// A running `ec2-metadata-mock`.
pub struct Imds {
    /// `http://127.0.0.1:<port>`, for `AWS_EC2_METADATA_SERVICE_ENDPOINT`.
    pub endpoint: String,
    child: Child,
    _dir: tempfile::TempDir,
}

/// Path of `ec2-metadata-mock`: `$CCO_AEMM_BIN`, or the last stdout line of
/// `tools/aemm/build.sh` (which installs it on first use). Memoised per process.
pub fn aemm_bin() -> Result<PathBuf> {
    static BIN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| resolve_bin().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn resolve_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("CCO_AEMM_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("CCO_AEMM_BIN={} is not a file", bin.display());
        }
        return Ok(bin);
    }
    let script = repo_root().join("tools/aemm/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed with {}", script.display(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| anyhow!("{} printed nothing", script.display()))?;
    let bin = PathBuf::from(last.trim());
    if !bin.is_file() {
        bail!("{} is not a file", bin.display());
    }
    Ok(bin)
}

impl Imds {
    /// Start an emulator reporting `opts` and wait until it answers.
    pub fn start(opts: ImdsOptions) -> Result<Self> {
        let bin = aemm_bin()?;
        let dir = tempfile::tempdir()?;
        let config = serde_json::json!({
            "metadata": {"values": {"placement-region": opts.region}},
            "dynamic": {"values": {"instance-identity-document": {
                "accountId": opts.account_id,
                "region": opts.region,
                "availabilityZone": format!("{}a", opts.region),
            }}},
        });
        let config_path = dir.path().join("aemm-config.json");
        std::fs::write(&config_path, serde_json::to_vec(&config)?)?;
        let port = crate::moto::free_port()?;
        let log = std::fs::File::create(dir.path().join("aemm.log"))?;
        let mut cmd = Command::new(&bin);
        cmd.args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
            .arg("--config-file")
            .arg(&config_path)
            // Keep the emulator away from the user's own $HOME/aemm-config.json.
            .env("HOME", dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if opts.imdsv2_only {
            cmd.arg("--imdsv2");
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(dir.path().join("aemm.log")).unwrap_or_default();
                bail!("ec2-metadata-mock exited with {status}:\n{log}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("ec2-metadata-mock did not open port {port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        })
    }
}

impl Drop for Imds {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
