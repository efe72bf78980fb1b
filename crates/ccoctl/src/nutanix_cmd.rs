//! `ccoctl nutanix create-shared-secrets`: one Secret manifest per Nutanix CredentialsRequest, all
//! holding the Prism logins of the user's credentials file (SPEC §6). No cloud call is made.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cco_api::Cloud;
use cco_core::fsutil::{ensure_dir, write_atomic, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE};
use cco_core::nutanix::{parse_credentials, secret_manifest, secret_manifest_path};
use cco_core::reader::{read_dir, ReadOptions};
use clap::{Args, Subcommand};

use crate::keypair::ensure_output_dir;

#[derive(Debug, Args)]
pub struct NutanixArgs {
    #[command(subcommand)]
    pub command: NutanixCommand,
}

#[derive(Debug, Subcommand)]
pub enum NutanixCommand {
    /// Write one Secret manifest per Nutanix CredentialsRequest holding the shared Prism credentials.
    CreateSharedSecrets(SharedSecretsArgs),
}

#[derive(Debug, Args, Clone)]
pub struct SharedSecretsArgs {
    /// Directory of CredentialsRequest manifests (top-level .yaml, .yml and .json files).
    #[arg(long)]
    pub credentials_requests_dir: PathBuf,
    /// The Nutanix credentials file, or a directory holding a file named `credentials`
    /// [default: ~/.nutanix/credentials].
    #[arg(long, value_name = "PATH")]
    pub credentials_source_filepath: Option<PathBuf>,
    /// Directory for the generated manifests.
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
    /// Include requests of the TechPreviewNoUpgrade feature set.
    #[arg(long)]
    pub enable_tech_preview: bool,
}

/// Runs one `ccoctl nutanix` subcommand.
pub async fn run(args: NutanixArgs) -> anyhow::Result<()> {
    match args.command {
        NutanixCommand::CreateSharedSecrets(a) => create_shared_secrets(&a),
    }
}

fn default_credentials_file() -> anyhow::Result<PathBuf> {
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(Path::new(&home).join(".nutanix/credentials")),
        None => bail!("HOME is not set, so the default ~/.nutanix/credentials cannot be found; pass --credentials-source-filepath"),
    }
}

/// The credentials file `--credentials-source-filepath` names: the path itself, or the file
/// `credentials` inside it when it is a directory (as the reference tool reads it).
fn credentials_file(given: &Path) -> anyhow::Result<PathBuf> {
    let meta = std::fs::metadata(given).with_context(|| {
        format!(
            "source credentials file {} does not exist; pass the Nutanix credentials file (or a directory holding a file named credentials) as --credentials-source-filepath",
            given.display()
        )
    })?;
    if !meta.is_dir() {
        return Ok(given.to_path_buf());
    }
    let inside = given.join("credentials");
    if !inside.is_file() {
        bail!(
            "credentials file not found in directory {}; expected at {}",
            given.display(),
            inside.display()
        );
    }
    Ok(inside)
}

fn create_shared_secrets(a: &SharedSecretsArgs) -> anyhow::Result<()> {
    let file = match &a.credentials_source_filepath {
        Some(f) => credentials_file(f)?,
        None => default_credentials_file()?,
    };
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "cannot read the Nutanix credentials file {}; create it or pass --credentials-source-filepath",
            file.display()
        )
    })?;
    let creds = parse_credentials(&file.display().to_string(), &text)?;
    tracing::info!(count = creds.len(), file = %file.display(), "valid credentials read");
    let reqs = read_dir(
        &a.credentials_requests_dir,
        ReadOptions {
            cloud: Cloud::Nutanix,
            enable_tech_preview: a.enable_tech_preview,
        },
    )?;
    if reqs.is_empty() {
        tracing::warn!(dir = %a.credentials_requests_dir.display(), "no Nutanix CredentialsRequests found; nothing to write");
    }
    ensure_output_dir(&a.output_dir)?;
    ensure_dir(&a.output_dir.join("manifests"), PRIVATE_DIR_MODE)?;
    for r in &reqs {
        let sr = &r.request.spec.secret_ref;
        let path = a
            .output_dir
            .join(secret_manifest_path(&sr.namespace, &sr.name));
        write_atomic(
            &path,
            secret_manifest(&sr.namespace, &sr.name, &creds).as_bytes(),
            PRIVATE_FILE_MODE,
        )?;
        println!("Saved credentials configuration to: {}", path.display());
    }
    Ok(())
}
