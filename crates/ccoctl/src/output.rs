//! Files every cloud's commands write the same way: dry-run inputs, Secret manifests and the
//! Authentication manifest. Every name goes through [`join_inside`], so none can leave `out`.

use std::path::{Path, PathBuf};

use cco_core::fsutil::{
    ensure_dir, join_inside, write_atomic, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE,
};
use cco_core::oidc::{
    authentication_manifest, AUTHENTICATION_MANIFEST, AUTHENTICATION_MANIFEST_MODE,
};

/// Mode of the dry-run files (the API inputs), as the reference tool writes them.
pub const DRY_RUN_FILE_MODE: u32 = 0o644;

/// Writes named dry-run files below `out` (mode 0644) and says where.
pub fn write_dry_run_files(out: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    write_files(out, files, DRY_RUN_FILE_MODE)
}

/// Writes Secret manifests (`manifests/…`, mode 0600) below `out` and says where.
pub fn write_secret_files(out: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    write_files(out, files, PRIVATE_FILE_MODE)
}

fn write_files(out: &Path, files: &[(String, String)], mode: u32) -> anyhow::Result<()> {
    for (name, contents) in files {
        let path = write_inside(out, name, contents, mode)?;
        println!("Saved {}", path.display());
    }
    Ok(())
}

/// Writes `contents` to `out/<relative>` atomically with `mode`, creating a missing `manifests/`
/// (0700) on the way. Returns the path written.
pub fn write_inside(
    out: &Path,
    relative: &str,
    contents: &str,
    mode: u32,
) -> anyhow::Result<PathBuf> {
    let path = join_inside(out, relative)?;
    if let Some(parent) = path.parent().filter(|p| !p.exists()) {
        ensure_dir(parent, PRIVATE_DIR_MODE)?;
    }
    write_atomic(&path, contents.as_bytes(), mode)?;
    Ok(path)
}

/// Writes `manifests/cluster-authentication-02-config.yaml` naming `issuer` (mode 0600, as the
/// reference tool).
pub fn write_authentication_manifest(out: &Path, issuer: &str) -> anyhow::Result<()> {
    ensure_dir(&out.join("manifests"), PRIVATE_DIR_MODE)?;
    let path = write_inside(
        out,
        AUTHENTICATION_MANIFEST,
        &authentication_manifest(issuer),
        AUTHENTICATION_MANIFEST_MODE,
    )?;
    println!("Saved Authentication manifest to {}", path.display());
    Ok(())
}
