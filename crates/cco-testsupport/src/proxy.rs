//! A real HTTP proxy for tests (`pproxy` from PyPI, installed into the project's virtualenv by
//! `scripts/setup-python.sh`), on a free loopback port, stopped on drop. It forwards plain HTTP
//! requests and tunnels `CONNECT` for HTTPS, and logs every connection it carries
//! (`http <client> -> <host:port>`), which [`HttpProxy::connections`] reads back.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::moto::{free_port, moto_server_path};

/// A running `pproxy`.
pub struct HttpProxy {
    /// `http://127.0.0.1:<port>`, the value for `HTTPS_PROXY`/`HTTP_PROXY`.
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
    child: Child,
}

impl HttpProxy {
    /// Starts the proxy and waits until it accepts connections.
    pub fn start() -> anyhow::Result<HttpProxy> {
        let bin = moto_server_path()?.with_file_name("pproxy");
        if !bin.exists() {
            bail!("{} not found; run scripts/setup-python.sh", bin.display());
        }
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("pproxy.log");
        let port = free_port()?;
        let out = std::fs::File::create(&log)?;
        let child = Command::new(&bin)
            .args(["-l", &format!("http://127.0.0.1:{port}"), "-v"])
            .env("PYTHONUNBUFFERED", "1")
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut p = HttpProxy {
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = p.child.try_wait() {
                let log = std::fs::read_to_string(&p.log).unwrap_or_default();
                bail!("pproxy exited ({status}): {log}");
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(p);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("pproxy did not accept connections on port {port} within 20 s")
    }

    /// The upstream `host:port` of every connection the proxy has carried so far.
    pub fn connections(&self) -> anyhow::Result<Vec<String>> {
        let text = std::fs::read_to_string(&self.log)?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once(" -> ").map(|(_, to)| to.trim().to_string()))
            .collect())
    }
}

impl Drop for HttpProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
