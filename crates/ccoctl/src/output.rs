//! Files every cloud's commands write the same way: dry-run inputs and the Authentication manifest.

use std::path::Path;

use cco_core::fsutil::{ensure_dir, write_atomic, PRIVATE_DIR_MODE};
use cco_core::oidc::{authentication_manifest, AUTHENTICATION_MANIFEST};

/// Writes named dry-run files below `out` (mode 0644) and says where.
pub fn write_dry_run_files(out: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    for (name, contents) in files {
        let path = out.join(name);
        write_atomic(&path, contents.as_bytes(), 0o644)?;
        println!("Saved {}", path.display());
    }
    Ok(())
}

/// Writes `manifests/cluster-authentication-02-config.yaml` naming `issuer`.
pub fn write_authentication_manifest(out: &Path, issuer: &str) -> anyhow::Result<()> {
    ensure_dir(&out.join("manifests"), PRIVATE_DIR_MODE)?;
    let path = out.join(AUTHENTICATION_MANIFEST);
    write_atomic(&path, authentication_manifest(issuer).as_bytes(), 0o644)?;
    println!("Saved Authentication manifest to {}", path.display());
    Ok(())
}
