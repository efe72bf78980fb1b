//! `ccoctl nutanix create-shared-secrets`: every corpus request gets the shared Prism credentials,
//! in the reference Secret format; bad inputs fail with the file and field named.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::snapshot;

use base64::Engine;

const CREDS: &str = r#"credentials:
- type: basic_auth
  data:
    prismCentral:
      username: admin
      password: Nutanix/4u
    prismElements:
    - name: pe-cluster-1
      username: pe-admin
      password: pe-pass
"#;

fn corpus() -> PathBuf {
    cco_testsupport::corpus_dir().join("credreqs/nutanix")
}

fn ccoctl(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ccoctl"))
        .args(args)
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .output()
        .expect("ccoctl runs")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn assert_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ccoctl failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_failed(out: &Output) -> String {
    assert!(!out.status.success(), "ccoctl unexpectedly succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

#[test]
fn every_corpus_request_gets_the_shared_credentials_from_the_default_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".nutanix")).expect("mkdir");
    std::fs::write(home.join(".nutanix/credentials"), CREDS).expect("write");
    let out = tmp.path().join("out");
    let stdout = assert_ok(&ccoctl(
        &[
            "nutanix",
            "create-shared-secrets",
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out),
        ],
        &home,
    ));
    let mut files: Vec<_> = std::fs::read_dir(out.join("manifests"))
        .expect("manifests")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "openshift-cloud-controller-manager-nutanix-credentials-credentials.yaml",
            "openshift-machine-api-nutanix-credentials-credentials.yaml"
        ]
    );
    assert_eq!(
        stdout
            .matches("Saved credentials configuration to:")
            .count(),
        2
    );
    for f in &files {
        let path = out.join("manifests").join(f);
        assert_eq!(mode(&path), 0o600);
        let v: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).expect("read")).expect("yaml");
        assert_eq!(v["kind"].as_str(), Some("Secret"));
        assert_eq!(v["type"].as_str(), Some("Opaque"));
        assert_eq!(v["metadata"]["name"].as_str(), Some("nutanix-credentials"));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["data"]["credentials"].as_str().expect("credentials"))
            .expect("base64");
        let creds: serde_json::Value = serde_json::from_slice(&raw).expect("json");
        assert_eq!(
            creds,
            serde_json::json!([{"type": "basic_auth", "data": {
                "prismCentral": {"username": "admin", "password": "Nutanix/4u"},
                "prismElements": [{"name": "pe-cluster-1", "username": "pe-admin", "password": "pe-pass"}]
            }}])
        );
    }
    // A re-run rewrites the same files.
    assert_ok(&ccoctl(
        &[
            "nutanix",
            "create-shared-secrets",
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out),
        ],
        &home,
    ));
    assert_eq!(
        std::fs::read_dir(out.join("manifests"))
            .expect("manifests")
            .count(),
        2
    );
}

#[test]
fn an_explicit_credentials_file_is_used_and_secrets_never_reach_the_logs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("creds.yaml");
    std::fs::write(&file, CREDS).expect("write");
    let out = tmp.path().join("out");
    let o = ccoctl(
        &[
            "nutanix",
            "create-shared-secrets",
            "--credentials-requests-dir",
            s(&corpus()),
            "--credentials-source-filepath",
            s(&file),
            "--output-dir",
            s(&out),
            "--log-level",
            "debug",
        ],
        tmp.path(),
    );
    assert_ok(&o);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !all.contains("Nutanix/4u") && !all.contains("pe-pass"),
        "{all}"
    );
}

#[test]
fn a_missing_or_invalid_credentials_file_is_reported_with_its_path_and_field() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let err = assert_failed(&ccoctl(
        &[
            "nutanix",
            "create-shared-secrets",
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out),
        ],
        tmp.path(),
    ));
    assert!(err.contains(".nutanix/credentials"), "{err}");
    assert!(err.contains("--credentials-source-filepath"), "{err}");
    assert!(!out.join("manifests").exists());

    let file = tmp.path().join("bad.yaml");
    std::fs::write(&file, CREDS.replace("username: admin", "username: \"\"")).expect("write");
    let err = assert_failed(&ccoctl(
        &[
            "nutanix",
            "create-shared-secrets",
            "--credentials-requests-dir",
            s(&corpus()),
            "--credentials-source-filepath",
            s(&file),
            "--output-dir",
            s(&out),
        ],
        tmp.path(),
    ));
    assert!(
        err.contains("bad.yaml") && err.contains("credentials[0].data.prismCentral.username"),
        "{err}"
    );
    std::fs::write(&file, CREDS.replace("basic_auth", "token")).expect("write");
    let err = assert_failed(&ccoctl(
        &[
            "nutanix",
            "create-shared-secrets",
            "--credentials-requests-dir",
            s(&corpus()),
            "--credentials-source-filepath",
            s(&file),
        ],
        tmp.path(),
    ));
    assert!(
        err.contains("unsupported credentials type `token`"),
        "{err}"
    );
}

#[test]
fn requests_of_other_clouds_get_no_nutanix_secret() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("creds.yaml");
    std::fs::write(&file, CREDS).expect("write");
    let out = tmp.path().join("out");
    let aws = cco_testsupport::corpus_dir().join("credreqs/aws");
    assert_ok(&ccoctl(
        &[
            "nutanix",
            "create-shared-secrets",
            "--credentials-requests-dir",
            s(&aws),
            "--credentials-source-filepath",
            s(&file),
            "--output-dir",
            s(&out),
        ],
        tmp.path(),
    ));
    assert_eq!(
        std::fs::read_dir(out.join("manifests"))
            .expect("manifests")
            .count(),
        0
    );
}

#[test]
fn a_directory_as_credentials_source_is_read_through_its_credentials_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let creds_dir = tmp.path().join("creds");
    std::fs::create_dir_all(&creds_dir).expect("mkdir");
    let out = tmp.path().join("out");
    let run = || {
        ccoctl(
            &[
                "nutanix",
                "create-shared-secrets",
                "--credentials-requests-dir",
                s(&corpus()),
                "--credentials-source-filepath",
                s(&creds_dir),
                "--output-dir",
                s(&out),
            ],
            tmp.path(),
        )
    };
    // Without the file inside, the error says where it was expected.
    let err = assert_failed(&run());
    assert!(
        err.contains("credentials file not found in directory")
            && err.contains(&format!("{}/credentials", s(&creds_dir))),
        "{err}"
    );
    std::fs::write(creds_dir.join("credentials"), CREDS).expect("write");
    assert_ok(&run());
    // The manifests, byte for byte in the reference layout.
    insta::assert_snapshot!(
        "nutanix_secret_manifests",
        snapshot::render_dir(&out.join("manifests"), &[], &|t| t.to_string())
    );
}

#[test]
fn a_credentials_source_that_does_not_exist_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let err = assert_failed(&ccoctl(
        &[
            "nutanix",
            "create-shared-secrets",
            "--credentials-requests-dir",
            s(&corpus()),
            "--credentials-source-filepath",
            "does/not/exist",
            "--output-dir",
            s(&tmp.path().join("out")),
        ],
        tmp.path(),
    ));
    assert!(
        err.contains("source credentials file does/not/exist does not exist"),
        "{err}"
    );
}

#[test]
fn one_directory_for_requests_credentials_and_output_works_as_in_the_reference() {
    // The reference tool's own test: requests, the credentials file and the output in one place.
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("all");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(
        corpus().join("openshift-machine-api-nutanix.yaml"),
        dir.join("openshift-machine-api-nutanix.yaml"),
    )
    .expect("copy");
    std::fs::write(dir.join("nutanix_test_basic_auth.yaml"), CREDS).expect("write");
    assert_ok(&ccoctl(
        &[
            "nutanix",
            "create-shared-secrets",
            "--credentials-requests-dir",
            s(&dir),
            "--credentials-source-filepath",
            s(&dir.join("nutanix_test_basic_auth.yaml")),
            "--output-dir",
            s(&dir),
        ],
        tmp.path(),
    ));
    let files: Vec<_> = std::fs::read_dir(dir.join("manifests"))
        .expect("manifests")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    assert_eq!(
        files,
        ["openshift-machine-api-nutanix-credentials-credentials.yaml"]
    );
}
