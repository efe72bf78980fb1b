//! A byte-exact, reviewable listing of an output directory, for snapshot tests.

use std::path::{Path, PathBuf};

use super::mode;

/// Every directory (name and mode) and file below `dir`, sorted by path: name, mode, size, whether it
/// ends with a newline, and the bytes. The temporary directory's path is replaced by `<out>`.
pub fn listing(dir: &Path) -> String {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            }
            out.push(p);
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let mut text = String::new();
    for f in files {
        let rel = f.strip_prefix(dir).expect("inside");
        if f.is_dir() {
            text.push_str(&format!("=== {}/ mode {:o}\n", rel.display(), mode(&f)));
            continue;
        }
        let body = std::fs::read_to_string(&f).expect("utf8 file");
        let end = if body.ends_with('\n') {
            ""
        } else {
            ", no final newline"
        };
        text.push_str(&format!(
            "=== {} mode {:o} ({} bytes{end})\n{}\n",
            rel.display(),
            mode(&f),
            body.len(),
            body.replace(dir.to_str().expect("utf8"), "<out>")
        ));
    }
    text
}
