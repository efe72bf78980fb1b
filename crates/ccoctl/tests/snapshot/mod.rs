//! Renders an output directory as one text (every file's path, mode and exact contents, in path
//! order) for insta snapshots: a change to any byte, name or mode of a format shows as a diff.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The fixed public key the snapshot runs publish, so that the JWKS is stable.
pub fn fixture_public_key() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signer.public")
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).expect("below root").to_path_buf());
        }
    }
}

/// Every file below `root` except those whose relative path is in `skip`, as
/// `=== <path> (mode 0NNN)\n<contents>\n<<< end (no newline at end)` blocks; `redact` rewrites the
/// contents (e.g. random ids) before they are rendered.
pub fn render_dir(root: &Path, skip: &[&str], redact: &dyn Fn(&str) -> String) -> String {
    let mut files = Vec::new();
    walk(root, root, &mut files);
    files.sort();
    let mut s = String::new();
    for rel in files {
        let name = rel.to_string_lossy().into_owned();
        if skip.contains(&name.as_str()) {
            continue;
        }
        let path = root.join(&rel);
        let text = std::fs::read_to_string(&path).expect("utf8 file");
        let text = redact(&text);
        s.push_str(&format!("=== {name} (mode {:04o})\n", mode(&path)));
        s.push_str(&text);
        if text.ends_with('\n') {
            s.push_str("<<< end\n");
        } else {
            s.push_str("\n<<< end (no newline at end of file)\n");
        }
    }
    s
}

/// Replaces every match of `prefix` followed by `len` characters of `alphabet` with `prefix<ID>`.
pub fn redact_after(
    text: &str,
    prefix: &str,
    len: usize,
    alphabet: &dyn Fn(char) -> bool,
) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let after = &rest[i + prefix.len()..];
        let taken: String = after.chars().take(len).collect();
        out.push_str(&rest[..i + prefix.len()]);
        if taken.chars().count() == len && taken.chars().all(alphabet) {
            out.push_str("<ID>");
            rest = &after[taken.len()..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}
