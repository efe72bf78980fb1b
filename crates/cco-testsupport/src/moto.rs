//! The local AWS emulator (`moto_server` from PyPI `moto[server]`), started per test on a free
//! loopback port and stopped on drop.
//!
//! The server comes from the project's virtualenv (`.venv`, or `$CCO_VENV`), which
//! `scripts/setup-python.sh` creates; if it is missing, [`Moto::start`] runs that script first. It is
//! started through `python/moto_server.py`, which adds CloudFront origin access identities (the
//! reference tool's private-bucket setup uses them; moto has none) to moto's own CloudFront, and the
//! OIDC provider client-ID calls moto lacks.
//!
//! Each server records into a file of its own: [`Moto::start_recording`] / [`Moto::recorded_calls`]
//! use moto's request recorder to list the calls a command made, named as AWS names them
//! (`iam:CreateRole`, `s3:PutObject`, …), so a test can assert which calls mutated state.

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
    recording: PathBuf,
    _dir: tempfile::TempDir,
}

/// One request moto recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedCall {
    /// The signing service (`iam`, `s3`, `cloudfront`, `sts`), or `anonymous`.
    pub service: String,
    /// `<service>:<Operation>` for the operations the project uses, else `<METHOD> <path>`.
    pub operation: String,
    pub method: String,
    /// Path and query.
    pub path: String,
}

impl RecordedCall {
    /// True when the call can change state: not a `Get*`/`List*` query, not a GET or HEAD.
    pub fn is_mutating(&self) -> bool {
        match self.service.as_str() {
            "iam" | "sts" => {
                let op = self.operation.split(':').nth(1).unwrap_or("");
                !(op.starts_with("Get") || op.starts_with("List") || op.starts_with("Simulate"))
            }
            _ => !matches!(self.method.as_str(), "GET" | "HEAD"),
        }
    }
}

fn s3_operation(method: &str, path: &str, query: &str) -> Option<&'static str> {
    let object = path.trim_matches('/').contains('/');
    let has = |q: &str| {
        query
            .split('&')
            .any(|p| p == q || p.starts_with(&format!("{q}=")))
    };
    Some(match (method, object) {
        ("PUT", true) => "PutObject",
        ("DELETE", true) => "DeleteObject",
        ("PUT", false) if has("tagging") => "PutBucketTagging",
        ("PUT", false) if has("policy") => "PutBucketPolicy",
        ("PUT", false) if has("publicAccessBlock") => "PutPublicAccessBlock",
        ("PUT", false) => "CreateBucket",
        ("DELETE", false) if has("policy") => "DeleteBucketPolicy",
        ("DELETE", false) if has("publicAccessBlock") => "DeletePublicAccessBlock",
        ("DELETE", false) => "DeleteBucket",
        ("POST", false) if has("delete") => "DeleteObjects",
        _ => return None,
    })
}

fn cloudfront_operation(method: &str, path: &str, query: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    Some(match (method, parts.get(1).copied(), parts.len()) {
        ("POST", Some("origin-access-control"), 2) => "CreateOriginAccessControl",
        ("POST", Some("distribution"), 2) if query.contains("WithTags") => {
            "CreateDistributionWithTags"
        }
        ("POST", Some("distribution"), 2) => "CreateDistribution",
        ("PUT", Some("distribution"), _) => "UpdateDistribution",
        ("DELETE", Some("distribution"), _) => "DeleteDistribution",
        ("DELETE", Some("origin-access-control"), _) => "DeleteOriginAccessControl",
        _ => return None,
    })
}

/// Names one recorded entry (moto's JSON line).
fn classify(entry: &serde_json::Value) -> RecordedCall {
    use base64::Engine as _;
    let method = entry["method"].as_str().unwrap_or("").to_string();
    let url = url::Url::parse(entry["url"].as_str().unwrap_or("")).ok();
    let path = url
        .as_ref()
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    let query = url
        .as_ref()
        .and_then(|u| u.query().map(str::to_owned))
        .unwrap_or_default();
    let auth = entry["headers"]
        .as_object()
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .and_then(|(_, v)| v.as_str())
        })
        .unwrap_or("");
    // Credential=<key>/<date>/<region>/<service>/aws4_request
    let service = auth
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("anonymous")
        .to_string();
    let body = entry["body"].as_str().unwrap_or("");
    let body = if entry["body_encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    };
    let named = match service.as_str() {
        "iam" | "sts" => url::form_urlencoded::parse(&body)
            .chain(url::form_urlencoded::parse(query.as_bytes()))
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.into_owned()),
        "s3" => s3_operation(&method, &path, &query).map(str::to_owned),
        "cloudfront" => cloudfront_operation(&method, &path, &query).map(str::to_owned),
        _ => None,
    };
    let full = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    RecordedCall {
        operation: named
            .map(|op| format!("{service}:{op}"))
            .unwrap_or_else(|| format!("{method} {full}")),
        service,
        method,
        path: full,
    }
}

/// A bodiless HTTP/1.0 request to moto's own API; returns the response body.
fn moto_api(endpoint: &str, method: &str, path: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        bail!("{method} {path}: {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_string())
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
            let dir = tempfile::tempdir().context("temp dir for the recording")?;
            let recording = dir.path().join("recording.jsonl");
            let port = free_port()?;
            let child = Command::new(&python)
                .arg(&script)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_RECORDER_FILEPATH", &recording)
                .env_remove("MOTO_ENABLE_RECORDING")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
            let mut moto = Moto {
                endpoint: format!("http://127.0.0.1:{port}"),
                child,
                recording,
                _dir: dir,
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

    /// Clears the recording and starts recording every request.
    pub fn start_recording(&self) -> anyhow::Result<()> {
        moto_api(&self.endpoint, "POST", "/moto-api/recorder/reset-recording")?;
        moto_api(&self.endpoint, "POST", "/moto-api/recorder/start-recording")?;
        Ok(())
    }

    /// Stops recording.
    pub fn stop_recording(&self) -> anyhow::Result<()> {
        moto_api(&self.endpoint, "POST", "/moto-api/recorder/stop-recording")?;
        Ok(())
    }

    /// Every request recorded since [`Moto::start_recording`], named.
    pub fn recorded_calls(&self) -> anyhow::Result<Vec<RecordedCall>> {
        let text = match std::fs::read_to_string(&self.recording) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).context("reading moto's recording"),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .map(|v| classify(&v))
                    .context("a recorded line is not JSON")
            })
            .collect()
    }

    /// The recorded calls that can change state, by operation name, in order.
    pub fn mutating_calls(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .recorded_calls()?
            .into_iter()
            .filter(RecordedCall::is_mutating)
            .map(|c| c.operation)
            .collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(method: &str, url: &str, service: &str, body: &str) -> serde_json::Value {
        json!({"method": method, "url": url, "body": body, "body_encoded": false,
               "headers": {"Authorization": format!("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=x")}})
    }

    #[test]
    fn recorded_requests_are_named_as_aws_names_them() {
        let cases = [
            (
                entry(
                    "POST",
                    "http://h/",
                    "iam",
                    "Action=CreateRole&Version=2010-05-08",
                ),
                "iam:CreateRole",
                true,
            ),
            (
                entry("POST", "http://h/", "iam", "Action=GetRole&RoleName=r"),
                "iam:GetRole",
                false,
            ),
            (
                entry("POST", "http://h/", "sts", "Action=GetCallerIdentity"),
                "sts:GetCallerIdentity",
                false,
            ),
            (
                entry("PUT", "http://h/b-oidc/", "s3", ""),
                "s3:CreateBucket",
                true,
            ),
            (
                entry("PUT", "http://h/b-oidc?tagging", "s3", ""),
                "s3:PutBucketTagging",
                true,
            ),
            (
                entry("PUT", "http://h/b-oidc/?policy", "s3", ""),
                "s3:PutBucketPolicy",
                true,
            ),
            (
                entry("PUT", "http://h/b-oidc?publicAccessBlock", "s3", ""),
                "s3:PutPublicAccessBlock",
                true,
            ),
            (
                entry(
                    "PUT",
                    "http://h/b-oidc/.well-known/openid-configuration",
                    "s3",
                    "",
                ),
                "s3:PutObject",
                true,
            ),
            (
                entry("GET", "http://h/b-oidc/keys.json", "s3", ""),
                "GET /b-oidc/keys.json",
                false,
            ),
            (
                entry(
                    "POST",
                    "http://h/2020-05-31/distribution?WithTags",
                    "cloudfront",
                    "",
                ),
                "cloudfront:CreateDistributionWithTags",
                true,
            ),
            (
                entry("GET", "http://h/2020-05-31/distribution", "cloudfront", ""),
                "GET /2020-05-31/distribution",
                false,
            ),
        ];
        for (e, op, mutating) in cases {
            let c = classify(&e);
            assert_eq!(c.operation, op, "{e}");
            assert_eq!(c.is_mutating(), mutating, "{e}");
        }
        let anonymous = json!({"method": "GET", "url": "http://h/keys.json", "headers": {}});
        assert_eq!(classify(&anonymous).service, "anonymous");
    }
}
