//! The projected ServiceAccount-token volume shared by all clouds, and who can read it.
//!
//! # File permissions (non-root containers)
//!
//! The kubelet writes a projected token with these permissions (pkg/volume/projected):
//!
//! 1. pod `securityContext.fsGroup` set: mode `0600` plus group read from the fsGroup ownership
//!    pass, i.e. `0640`, group = fsGroup. Every container gets the fsGroup as a supplementary
//!    group, so any UID in the pod can read it; other users cannot.
//! 2. all containers share one `runAsUser` (kubelet "FsUser"): mode `0600` owned by that UID.
//! 3. otherwise: the volume's `defaultMode`, owned by root.
//!
//! Case 3 is where a container whose image runs as a non-root UID used to fail to read the token
//! (a restrictive mode owned by root). The webhook therefore sets `defaultMode` itself:
//! `0444` when the pod has no fsGroup — readable by whatever UID the image runs as, read-only
//! for everyone — and `0440` when the pod has an fsGroup, so the non-token files of the volume
//! (the GCP credential configuration) follow the same "pod group only" rule as the token.
//! Where the platform allows (cases 1 and 2) the token stays unreadable to other users.

use serde_json::{json, Value};

use crate::config::MIN_TOKEN_EXPIRATION;
use crate::pod::PodView;

/// Largest `expirationSeconds` the API server accepts (2^32 s).
pub const MAX_TOKEN_EXPIRATION: i64 = 1 << 32;

/// `defaultMode` for a token volume in `pod` (see the module docs).
pub fn default_mode(pod: &PodView<'_>) -> i64 {
    if pod.fs_group().is_some() {
        0o440
    } else {
        0o444
    }
}

/// A projected volume holding a ServiceAccount token at `path`, plus `extra_sources`.
pub fn projected_token_volume(
    pod: &PodView<'_>,
    name: &str,
    audience: &str,
    expiration_seconds: i64,
    path: &str,
    extra_sources: Vec<Value>,
) -> Value {
    let mut sources = vec![json!({"serviceAccountToken": {
        "audience": audience,
        "expirationSeconds": expiration_seconds,
        "path": path,
    }})];
    sources.extend(extra_sources);
    json!({
        "name": name,
        "projected": {
            "defaultMode": default_mode(pod),
            "sources": sources,
        }
    })
}

/// Parse a lifetime annotation; `Err` carries a message fit for a warning.
pub fn parse_seconds(key: &str, value: &str) -> Result<i64, String> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("annotation {key}={value:?} is not a whole number of seconds"))
}

/// Clamp a lifetime into what the API server accepts (at least 600 s).
pub fn clamp_expiration(seconds: i64) -> i64 {
    seconds.clamp(MIN_TOKEN_EXPIRATION, MAX_TOKEN_EXPIRATION)
}

/// Join a mount directory and a file name, converting to a Windows path for Windows pods.
pub fn token_file(pod: &PodView<'_>, dir: &str, file: &str) -> String {
    let path = format!("{}/{}", dir.trim_end_matches('/'), file);
    if pod.targets_windows() {
        format!("C:{}", path.replace('/', "\\"))
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// Model of the kubelet's permission rule for the token file, see the module docs.
    /// Returns `(mode, group)`; the owner is root unless a shared runAsUser is set.
    fn kubelet_token_mode(
        default_mode: i64,
        fs_group: Option<i64>,
        fs_user: Option<i64>,
    ) -> (i64, i64) {
        match (fs_group, fs_user) {
            (Some(g), _) => (0o640, g),
            (None, Some(_)) => (0o600, 0),
            (None, None) => (default_mode, 0),
        }
    }

    fn can_read(mode: i64, file_group: i64, uid: i64, groups: &[i64]) -> bool {
        uid == 0 || (groups.contains(&file_group) && mode & 0o040 != 0) || mode & 0o004 != 0
    }

    #[rstest]
    #[case::image_runs_as_1000_without_fs_group(json!({"spec": {}}), None, 1000, vec![1000])]
    #[case::fs_group_gives_group_read(
        json!({"spec": {"securityContext": {"fsGroup": 2000}}}), Some(2000), 1000, vec![1000, 2000]
    )]
    fn non_root_containers_can_read_the_token(
        #[case] pod: Value,
        #[case] fs_group: Option<i64>,
        #[case] uid: i64,
        #[case] groups: Vec<i64>,
    ) {
        let view = PodView::new(&pod);
        let vol = projected_token_volume(&view, "t", "aud", 3600, "token", vec![]);
        let mode = vol["projected"]["defaultMode"].as_i64().unwrap_or(0);
        let (effective, group) = kubelet_token_mode(mode, fs_group, None);
        assert!(
            can_read(effective, group, uid, &groups),
            "mode {effective:o}"
        );
    }

    #[test]
    fn with_fs_group_other_users_cannot_read_the_volume() {
        let pod = json!({"spec": {"securityContext": {"fsGroup": 2000}}});
        let mode = default_mode(&PodView::new(&pod));
        assert_eq!(mode & 0o007, 0);
        assert!(!can_read(mode, 2000, 1234, &[1234]));
    }

    #[test]
    fn windows_pods_get_windows_paths() {
        let pod = json!({"spec": {"nodeSelector": {"kubernetes.io/os": "windows"}}});
        assert_eq!(
            token_file(&PodView::new(&pod), "/var/run/x", "token"),
            "C:\\var\\run\\x\\token"
        );
    }

    #[rstest]
    #[case(10, 600)]
    #[case(600, 600)]
    #[case(86400, 86400)]
    #[case(1 << 40, 1 << 32)]
    fn expirations_are_clamped(#[case] input: i64, #[case] expected: i64) {
        assert_eq!(clamp_expiration(input), expected);
    }
}
