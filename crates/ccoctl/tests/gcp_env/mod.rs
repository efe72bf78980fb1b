//! The environment of the `ccoctl gcp` tests: fake-gcs-server and the stateful GCP fake, a
//! temporary home with a service-account key, and helpers to run the binary and read results back.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use cco_testsupport::fake_gcs::FakeGcs;
use cco_testsupport::gcp_fake::GcpFake;
use serde_json::Value;

/// `gcp <cmd> --name <name> --project <the fake's project>`, then `rest`: the flags every
/// `ccoctl gcp` test passes.
pub fn gcp_cmd<'a>(cmd: &'a str, name: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "gcp",
        cmd,
        "--name",
        name,
        "--project",
        cco_testsupport::gcp_fake::PROJECT_ID,
    ];
    args.extend_from_slice(rest);
    args
}

pub struct Env {
    pub gcs: FakeGcs,
    pub fake: GcpFake,
    pub tmp: tempfile::TempDir,
}

pub fn start() -> Env {
    let gcs = FakeGcs::start().expect("fake-gcs-server");
    let fake = GcpFake::start(&gcs.endpoint).expect("gcp fake");
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("key.json"), fake.service_account_key_json()).expect("key");
    Env { gcs, fake, tmp }
}

pub fn corpus() -> PathBuf {
    cco_testsupport::corpus_dir().join("credreqs/gcp")
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

impl Env {
    pub fn ccoctl(&self, args: &[&str]) -> Output {
        self.ccoctl_in(self.tmp.path(), args)
    }

    /// Runs `ccoctl` with `dir` as its current directory.
    pub fn ccoctl_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(dir, &self.tmp.path().join("key.json"), &[], args)
    }

    /// Runs `ccoctl` with `GOOGLE_APPLICATION_CREDENTIALS` set to `creds`.
    pub fn ccoctl_with_credentials(&self, creds: &Path, args: &[&str]) -> Output {
        self.command(self.tmp.path(), creds, &[], args)
    }

    /// Runs `ccoctl` with extra environment variables.
    pub fn ccoctl_with(&self, vars: &[(&str, &str)], args: &[&str]) -> Output {
        self.command(
            self.tmp.path(),
            &self.tmp.path().join("key.json"),
            vars,
            args,
        )
    }

    fn command(&self, dir: &Path, creds: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
        cmd.current_dir(dir)
            .args(args)
            .env("HOME", self.tmp.path())
            .env_remove("GOOGLE_OAUTH_ACCESS_TOKEN")
            .env_remove("GOOGLE_CREDENTIALS")
            .env_remove("GOOGLE_CLOUD_KEYFILE_JSON")
            .env_remove("GCLOUD_KEYFILE_JSON")
            .env_remove("CLOUDSDK_CONFIG")
            .env("GOOGLE_APPLICATION_CREDENTIALS", creds)
            .envs(vars.iter().copied())
            .env("GCP_IAM_ENDPOINT", self.fake.endpoint())
            .env("GCP_RESOURCEMANAGER_ENDPOINT", self.fake.endpoint())
            .env("STORAGE_EMULATOR_HOST", self.fake.endpoint());
        cmd.output().expect("ccoctl runs")
    }

    /// An object straight from fake-gcs-server.
    pub fn object(&self, bucket: &str, name: &str) -> Option<Vec<u8>> {
        let url = format!(
            "{}/storage/v1/b/{bucket}/o/{}?alt=media",
            self.gcs.endpoint,
            name.replace('/', "%2F")
        );
        let rt = tokio::runtime::Runtime::new().expect("rt");
        let (status, _, body) = rt
            .block_on(cco_testsupport::fake_http::raw("GET", &url, &[], b""))
            .expect("http");
        (status == 200).then_some(body)
    }

    /// Metadata of a bucket (`path` empty) or of one of its objects, straight from
    /// fake-gcs-server.
    pub fn gcs_metadata(&self, bucket: &str, object: &str) -> Value {
        let url = if object.is_empty() {
            format!("{}/storage/v1/b/{bucket}", self.gcs.endpoint)
        } else {
            format!(
                "{}/storage/v1/b/{bucket}/o/{}",
                self.gcs.endpoint,
                object.replace('/', "%2F")
            )
        };
        let rt = tokio::runtime::Runtime::new().expect("rt");
        let (status, _, body) = rt
            .block_on(cco_testsupport::fake_http::raw("GET", &url, &[], b""))
            .expect("http");
        assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).expect("json")
    }

    pub fn bucket_exists(&self, bucket: &str) -> bool {
        let url = format!("{}/storage/v1/b/{bucket}", self.gcs.endpoint);
        let rt = tokio::runtime::Runtime::new().expect("rt");
        rt.block_on(cco_testsupport::fake_http::raw("GET", &url, &[], b""))
            .expect("http")
            .0
            == 200
    }

    pub fn our_members(&self) -> Vec<String> {
        let p = self.fake.project_policy();
        let mut out = Vec::new();
        for b in p["bindings"].as_array().into_iter().flatten() {
            for m in b["members"].as_array().into_iter().flatten() {
                let m = m.as_str().expect("member");
                if m.starts_with("serviceAccount:") {
                    out.push(format!("{} {m}", b["role"].as_str().expect("role")));
                }
            }
        }
        out
    }
}

pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ccoctl failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "ccoctl unexpectedly succeeded\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What a corpus request asks for.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub struct Req {
    pub name: String,
    pub ns: String,
    pub secret: String,
    pub ksas: Vec<String>,
    pub predefined: Vec<String>,
    pub has_perms: bool,
}

pub fn corpus_requests() -> Vec<Req> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(corpus()).expect("dir") {
        let text = std::fs::read_to_string(e.expect("e").path()).expect("read");
        let v: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
        let strs = |x: &serde_yaml::Value| -> Vec<String> {
            x.as_sequence()
                .into_iter()
                .flatten()
                .map(|s| s.as_str().expect("str").to_string())
                .collect()
        };
        out.push(Req {
            name: v["metadata"]["name"].as_str().expect("name").to_string(),
            ns: v["spec"]["secretRef"]["namespace"]
                .as_str()
                .expect("ns")
                .to_string(),
            secret: v["spec"]["secretRef"]["name"]
                .as_str()
                .expect("n")
                .to_string(),
            ksas: strs(&v["spec"]["serviceAccountNames"]),
            predefined: strs(&v["spec"]["providerSpec"]["predefinedRoles"]),
            has_perms: v["spec"]["providerSpec"]["permissions"]
                .as_sequence()
                .is_some_and(|p| !p.is_empty()),
        });
    }
    out.sort();
    out
}

pub fn secret_config(out: &Path, ns: &str, name: &str) -> Value {
    let text = std::fs::read_to_string(out.join(format!("manifests/{ns}-{name}-credentials.yaml")))
        .expect("manifest");
    let v: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v["data"]["service_account.json"].as_str().expect("data"))
        .expect("b64");
    serde_json::from_slice(&raw).expect("json")
}

pub fn snapshot_mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}
