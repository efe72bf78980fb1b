//! `create-key-pair` and reading the public key for the issuer.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cco_core::fsutil::{
    ensure_dir, read_to_string, write_atomic, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE,
};
use cco_core::keys::{self, RsaPublicKey};

/// File name of the private key in the output dir.
pub const PRIVATE_KEY_FILE: &str = "serviceaccount-signer.private";
/// File name of the public key in the output dir.
pub const PUBLIC_KEY_FILE: &str = "serviceaccount-signer.public";
/// Where the installer expects the private key, relative to the output dir.
pub const TLS_KEY_FILE: &str = "tls/bound-service-account-signing-key.key";

/// Creates `dir` with mode 0700 if it does not exist (an existing directory keeps its mode).
pub fn ensure_output_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        ensure_dir(dir, PRIVATE_DIR_MODE)?;
    }
    Ok(())
}

/// Writes the key pair into `dir`, generating a key only when none exists. Returns the public key.
pub fn create_key_pair(dir: &Path) -> anyhow::Result<RsaPublicKey> {
    ensure_output_dir(dir)?;
    let priv_path = dir.join(PRIVATE_KEY_FILE);
    let key = if priv_path.exists() {
        let pem = read_to_string(&priv_path)?;
        let key = keys::parse_private_key(&pem, &priv_path.display().to_string())?;
        tracing::info!(path = %priv_path.display(), "using existing private key");
        key
    } else {
        tracing::info!("generating an RSA 4096 key pair");
        let key = keys::generate()?;
        write_atomic(
            &priv_path,
            keys::private_key_pem(&key)?.as_bytes(),
            PRIVATE_FILE_MODE,
        )?;
        println!("Private key written to {}", priv_path.display());
        key
    };
    let public = key.to_public_key();
    let pub_path = dir.join(PUBLIC_KEY_FILE);
    write_atomic(
        &pub_path,
        keys::public_key_pem(&public)?.as_bytes(),
        PRIVATE_FILE_MODE,
    )?;
    println!("Public key written to {}", pub_path.display());
    ensure_dir(&dir.join("tls"), PRIVATE_DIR_MODE)?;
    let tls_path = dir.join(TLS_KEY_FILE);
    write_atomic(
        &tls_path,
        keys::private_key_pem(&key)?.as_bytes(),
        PRIVATE_FILE_MODE,
    )?;
    println!("Private key copied to {}", tls_path.display());
    Ok(public)
}

/// The public key at `file`, or at `<dir>/serviceaccount-signer.public` when `file` is `None`.
/// `cloud` (`aws`, `gcp`, `azure`) names the `ccoctl <cloud> create-key-pair` the error suggests.
pub fn read_public_key(
    file: Option<&Path>,
    dir: &Path,
    cloud: &str,
) -> anyhow::Result<(PathBuf, RsaPublicKey)> {
    let path = file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(PUBLIC_KEY_FILE));
    let pem = read_to_string(&path).with_context(|| match file {
        Some(_) => "cannot read the public key given by --public-key-file".to_string(),
        None => format!(
            "cannot read the public key; run `ccoctl {cloud} create-key-pair --output-dir {}` or pass --public-key-file",
            dir.display()
        ),
    })?;
    let key = keys::parse_public_key(&pem, &path.display().to_string())?;
    Ok((path, key))
}
