//! The clouds' official clients as judges of the fakes: runs the Python scripts in
//! `crates/cco-testsupport/official/` (Google's `google-api-python-client` and `google-cloud-storage`,
//! Microsoft's `azure-identity` and `azure-mgmt-*`, installed into the project's virtualenv by
//! `scripts/setup-python.sh`) against a running fake, and checks recorded [`Exchange`]s against the
//! published schemas (Google's discovery documents, the Azure SDKs' models).
//!
//! A script either prints its result on stdout and exits 0, or fails with the traceback that says
//! which call the official client could not make; [`run_script`] turns that into an error.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::fake_http::Exchange;
use crate::repo_root;

static SETUP: Mutex<bool> = Mutex::new(false);

/// The folder of the judge scripts.
pub fn scripts_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("official")
}

/// The virtualenv's Python, with the official clients installed (running `scripts/setup-python.sh`
/// once when they are missing).
pub fn python() -> anyhow::Result<PathBuf> {
    let venv = std::env::var_os("CCO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    let py = venv.join("bin/python");
    let ready = || {
        Command::new(&py)
            .args([
                "-c",
                "import googleapiclient, google.cloud.storage, azure.identity, azure.mgmt.msi",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let mut done = SETUP
        .lock()
        .map_err(|_| anyhow::anyhow!("setup lock poisoned"))?;
    if !ready() && !*done {
        let status = Command::new("bash")
            .arg(repo_root().join("scripts/setup-python.sh"))
            .status()
            .context("running scripts/setup-python.sh")?;
        if !status.success() {
            bail!("scripts/setup-python.sh failed; run it by hand to see why");
        }
        *done = true;
    }
    if !ready() {
        bail!(
            "the official clients are not importable from {}; run scripts/setup-python.sh",
            py.display()
        );
    }
    Ok(py)
}

/// Runs `official/<script>` with `args` and extra environment `env`; its stdout, or an error with
/// its stderr.
pub fn run_script(script: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<String> {
    let py = python()?;
    let out = Command::new(&py)
        .arg(scripts_dir().join(script))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .with_context(|| format!("running {script}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{script} failed ({}):\n{}\n{stdout}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// Exchanges as the schema scripts read them: bodies parsed as JSON when they are JSON.
pub fn exchanges_json(exchanges: &[Exchange]) -> Value {
    let body = |b: &[u8]| -> Value {
        if b.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(b).unwrap_or_else(|_| json!({"$raw": b.len()}))
        }
    };
    Value::Array(
        exchanges
            .iter()
            .map(|e| {
                json!({"method": e.method, "path": e.path, "query": e.query,
                    "request": body(&e.request_body), "status": e.status,
                    "response": body(&e.response_body)})
            })
            .collect(),
    )
}

/// Checks `exchanges` with `official/<script>` (a schema checker): writes them to a temporary file,
/// runs the script on it, and returns its report (stdout); an error lists every violation.
pub fn check_schemas(script: &str, exchanges: &[Exchange]) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("exchanges.json");
    std::fs::write(
        &file,
        serde_json::to_vec_pretty(&exchanges_json(exchanges))?,
    )?;
    let path = file.to_string_lossy().into_owned();
    run_script(script, &[&path], &[])
}
