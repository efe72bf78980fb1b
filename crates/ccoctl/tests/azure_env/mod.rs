//! The environment of the `ccoctl azure` tests: Azurite (Blob) and the Azure Resource Manager fake,
//! a temporary home and output dir, and helpers to run the binary and read results back.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cco_testsupport::azure_fake::{AzureFake, SUBSCRIPTION, TENANT};
use cco_testsupport::azurite::Azurite;
use serde_json::Value;

/// `azure <cmd> --name <name> --region eastus --subscription-id <fake's> --tenant-id <fake's>`, the
/// flags every `ccoctl azure` test passes, then `rest`.
pub fn azure_cmd<'a>(name: &'a str, cmd: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "azure",
        cmd,
        "--name",
        name,
        "--region",
        "eastus",
        "--subscription-id",
        SUBSCRIPTION,
        "--tenant-id",
        TENANT,
    ];
    args.extend_from_slice(rest);
    args
}

pub const ACCOUNT: &str = "ccoazlive";

pub struct Env {
    pub azurite: Azurite,
    pub fake: AzureFake,
    pub tmp: tempfile::TempDir,
}

pub fn start() -> Env {
    let azurite = Azurite::start(&[ACCOUNT]).expect("azurite");
    let fake = AzureFake::start_https(&azurite.endpoint).expect("azure fake");
    let tmp = tempfile::tempdir().expect("tmp");
    Env { azurite, fake, tmp }
}

pub fn corpus() -> PathBuf {
    cco_testsupport::corpus_dir().join("credreqs/azure")
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

impl Env {
    pub fn ccoctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
        cmd.args(args)
            .env("HOME", self.tmp.path())
            .env_remove("AZURE_ACCESS_TOKEN");
        for (k, v) in self.fake.env() {
            cmd.env(k, v);
        }
        cmd.output().expect("ccoctl runs")
    }

    pub fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    /// A blob read anonymously, as an OIDC client would.
    pub fn public_blob(&self, container: &str, name: &str) -> Option<Value> {
        let url = format!("{}{container}/{name}", self.azurite.blob_endpoint(ACCOUNT));
        let rt = tokio::runtime::Runtime::new().expect("rt");
        let (status, _, body) = rt
            .block_on(cco_testsupport::fake_http::raw("GET", &url, &[], b""))
            .expect("http");
        (status == 200).then(|| serde_json::from_slice(&body).expect("json"))
    }

    pub fn create_all(&self, extra: &[&str]) -> Output {
        let out = self.out();
        let corpus = corpus();
        let mut args = azure_cmd(
            "ccoazlive",
            "create-all",
            &[
                "--installation-resource-group-name",
                "cluster-rg",
                "--dnszone-resource-group-name",
                "dns-rg",
                "--user-tags",
                "team=ocp,env=test",
                "--credentials-requests-dir",
                s(&corpus),
                "--output-dir",
                s(&out),
            ],
        );
        args.extend_from_slice(extra);
        self.ccoctl(&args)
    }
}

pub fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
