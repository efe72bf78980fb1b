//! Writing files safely: atomically (write to a temporary sibling, then rename), with explicit modes.
//!
//! An interrupted run therefore never leaves a half-written manifest or key behind.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode for private keys and Secret manifests.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode for directories holding private material.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// An I/O failure with the path it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path}: {source}")]
pub struct FsError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FsError + 'a {
    move |source| FsError {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (and parents) with `mode`; an existing directory gets `mode` too.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<(), FsError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(err("cannot create directory", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .map_err(err("cannot set permissions on", dir))
}

/// Writes `contents` to `path` atomically with `mode`: readers (and a re-run after the process is
/// killed) see the old file or the new one, never a torn one. Generated manifests use this: they are
/// rewritten by every run, so they do not need to survive a power loss.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), FsError> {
    write_atomic_impl(path, contents, mode, false)
}

/// Like [`write_atomic`], and also flushed to disk before the rename, for material that cannot be
/// regenerated (private keys).
pub fn write_atomic_durable(path: &Path, contents: &[u8], mode: u32) -> Result<(), FsError> {
    write_atomic_impl(path, contents, mode, true)
}

fn write_atomic_impl(
    path: &Path,
    contents: &[u8],
    mode: u32,
    durable: bool,
) -> Result<(), FsError> {
    let parent = path.parent().unwrap_or_else(|| Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{file_name}.tmp-{}", std::process::id()));
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(err("cannot write", &tmp))?;
        f.write_all(contents).map_err(err("cannot write", &tmp))?;
        if durable {
            f.sync_all().map_err(err("cannot write", &tmp))?;
        }
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
        .map_err(err("cannot set permissions on", &tmp))?;
    fs::rename(&tmp, path).map_err(err("cannot write", path))
}

/// `base` joined with `relative`, refusing anything that could leave `base`: an absolute path, `..`,
/// or an empty name. Every file name built from input goes through this, so no input can make a
/// command write outside its output directory.
pub fn join_inside(base: &Path, relative: &str) -> Result<PathBuf, FsError> {
    use std::path::Component;
    let rel = Path::new(relative);
    let ok = !relative.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, Component::Normal(n) if !n.is_empty()));
    if ok {
        Ok(base.join(rel))
    } else {
        Err(FsError {
            action: "refusing to write",
            path: rel.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the name would leave the output directory {}",
                    base.display()
                ),
            ),
        })
    }
}

/// Reads a file to a string, naming the file on failure.
pub fn read_to_string(path: &Path) -> Result<String, FsError> {
    fs::read_to_string(path).map_err(err("cannot read", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_inside_refuses_every_way_out() {
        let base = Path::new("/out");
        assert_eq!(
            join_inside(base, "manifests/ns-s-credentials.yaml").expect("inside"),
            Path::new("/out/manifests/ns-s-credentials.yaml")
        );
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "manifests/../../x",
            "a/./../../b",
        ] {
            assert!(join_inside(base, bad).is_err(), "{bad}");
        }
    }
}
