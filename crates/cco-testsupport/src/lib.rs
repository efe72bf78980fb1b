//! Test support: launchers for the real protocol peers the tests run against (the AWS emulator and
//! a real kube-apiserver), and fixtures.

pub mod azure_fake;
pub mod azurite;
pub mod fake_gcs;
pub mod fake_http;
pub mod gcp_fake;
pub mod ibm_iam;
pub mod moto;
pub mod official;
pub mod proxy;
pub mod tls;
pub mod tls_front;

/// The repository root (two levels above this crate).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// The shared corpus folder beside the repository (`../shared/corpus`).
pub fn corpus_dir() -> std::path::PathBuf {
    repo_root().join("../shared/corpus")
}

pub mod imds;
pub mod kube_env;
