//! Every cloud's create commands report each created identity once: one printed line, not that line
//! and an INFO log line repeating it (AWS is checked in `aws_compat_live.rs`). Run against the same
//! peers as the per-cloud suites: the GCP and Azure fakes over fake-gcs-server and Azurite, and the
//! IBM IAM fake.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cco_testsupport::azure_fake::{AzureFake, SUBSCRIPTION, TENANT};
use cco_testsupport::azurite::Azurite;
use cco_testsupport::fake_gcs::FakeGcs;
use cco_testsupport::gcp_fake::{GcpFake, PROJECT_ID};
use cco_testsupport::ibm_iam::IbmIamFake;

fn corpus(cloud: &str) -> PathBuf {
    cco_testsupport::corpus_dir().join("credreqs").join(cloud)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

/// stdout and stderr of a successful run, together.
fn both(out: Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "ccoctl failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

/// For each printed line starting with `prefix`: the line is printed once, and the identity that
/// follows the prefix is not logged again on stderr. Returns how many such lines there were.
fn each_once(stdout: &str, stderr: &str, prefix: &str) -> usize {
    let mut n = 0;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix(prefix) {
            let id = rest.split_whitespace().next().expect("identity");
            assert_eq!(stdout.lines().filter(|l| *l == line).count(), 1, "{line}");
            assert!(!stderr.contains(id), "{id} logged again:\n{stderr}");
            n += 1;
        }
    }
    n
}

#[test]
fn gcp_service_accounts_are_reported_once() {
    let gcs = FakeGcs::start().expect("fake-gcs-server");
    let fake = GcpFake::start(&gcs.endpoint).expect("gcp fake");
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("key.json"), fake.service_account_key_json()).expect("key");
    let out = tmp.path().join("out");
    let dir = corpus("gcp");
    let run = Command::new(env!("CARGO_BIN_EXE_ccoctl"))
        .args([
            "gcp",
            "create-all",
            "--name",
            "once",
            "--project",
            PROJECT_ID,
            "--region",
            "us-east1",
            "--credentials-requests-dir",
            s(&dir),
            "--output-dir",
            s(&out),
        ])
        .env("HOME", tmp.path())
        .env_remove("GOOGLE_OAUTH_ACCESS_TOKEN")
        .env_remove("GOOGLE_CREDENTIALS")
        .env_remove("NO_COLOR")
        .env(
            "GOOGLE_APPLICATION_CREDENTIALS",
            tmp.path().join("key.json"),
        )
        .env("GCP_IAM_ENDPOINT", fake.endpoint())
        .env("GCP_RESOURCEMANAGER_ENDPOINT", fake.endpoint())
        .env("STORAGE_EMULATOR_HOST", fake.endpoint())
        .output()
        .expect("runs");
    let (stdout, stderr) = both(run);
    assert!(
        each_once(&stdout, &stderr, "IAM service account ") >= 7,
        "{stdout}"
    );
}

#[test]
fn azure_managed_identities_are_reported_once() {
    const ACCOUNT: &str = "ccoazonce";
    let azurite = Azurite::start(&[ACCOUNT]).expect("azurite");
    let fake = AzureFake::start_https(&azurite.endpoint).expect("azure fake");
    fake.insert_resource_group("cluster-rg");
    fake.insert_resource_group("dns-rg");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let dir = corpus("azure");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
    cmd.args([
        "azure",
        "create-all",
        "--name",
        ACCOUNT,
        "--region",
        "eastus",
        "--subscription-id",
        SUBSCRIPTION,
        "--tenant-id",
        TENANT,
        "--installation-resource-group-name",
        "cluster-rg",
        "--dnszone-resource-group-name",
        "dns-rg",
        "--credentials-requests-dir",
        s(&dir),
        "--output-dir",
        s(&out),
    ])
    .env("HOME", tmp.path())
    .env_remove("AZURE_ACCESS_TOKEN");
    for (k, v) in fake.env() {
        cmd.env(k, v);
    }
    let (stdout, stderr) = both(cmd.output().expect("runs"));
    assert!(
        each_once(&stdout, &stderr, "Managed identity ") >= 7,
        "{stdout}"
    );
}

#[test]
fn ibm_service_ids_are_reported_once() {
    let fake = IbmIamFake::start().expect("ibm fake");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let dir = corpus("ibmcloud");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
    cmd.args([
        "ibmcloud",
        "create-service-id",
        "--name",
        "once",
        "--credentials-requests-dir",
        s(&dir),
        "--output-dir",
        s(&out),
    ]);
    for (k, v) in fake.env() {
        cmd.env(k, v);
    }
    let (stdout, stderr) = both(cmd.output().expect("runs"));
    assert!(each_once(&stdout, &stderr, "Service ID ") >= 5, "{stdout}");
}
