//! The upgrade gate: the ClusterOperator `Upgradeable` condition (seeds/002).
//!
//! Same decision, reasons and messages as the reference operator's `UpgradeableCheck`:
//! 1. no ClusterVersion `version` → `False`/`ErrorDeterminingUpgradeable`;
//! 2. no completed version in its history (installation not finished) → no opinion;
//! 3. a completed version that is not semver → `False`/`ErrorDeterminingUpgradeable`;
//! 4. the CloudCredential `cluster` annotation `cloudcredential.openshift.io/upgradeable-to`
//!    naming a major.minor above the current one → no opinion (the admin prepared the credentials);
//! 5. Manual mode (with or without short-term tokens) → `False`/`MissingUpgradeableAnnotation`;
//! 6. any other mode without the root credential (e.g. Mint with the root credential removed) →
//!    `False`/`MissingRootCredential`.
//!
//! Platforms without a cloud actuator (the reference's no-op actuator) always report
//! `Upgradeable=True` with neither reason nor message. Versions are compared like Go's
//! `golang.org/x/mod/semver` (`v` prefix, `MAJOR[.MINOR[.PATCH]]`, pre-release only on full versions).

use crate::cluster::{CredentialsMode, ROOT_SECRET_NAMESPACE};
use crate::status::CoCondition;

/// Annotation on CloudCredential `cluster` by which the admin confirms the next minor's credentials.
pub const UPGRADEABLE_ANNOTATION: &str = "cloudcredential.openshift.io/upgradeable-to";
/// Reasons (the reference's constants).
pub const REASON_MISSING_ANNOTATION: &str = "MissingUpgradeableAnnotation";
pub const REASON_ERROR: &str = "ErrorDeterminingUpgradeable";
pub const REASON_MISSING_ROOT: &str = "MissingRootCredential";

/// Everything the gate looks at.
#[derive(Clone, Debug, PartialEq)]
pub struct UpgradeInputs<'a> {
    /// `spec.credentialsMode` of CloudCredential `cluster`; `None` when the object is missing.
    pub mode: Option<CredentialsMode>,
    /// The `upgradeable-to` annotation of CloudCredential `cluster`.
    pub upgradeable_to: Option<&'a str>,
    /// `None` when ClusterVersion `version` does not exist; else its completed version, if any.
    pub cluster_version: Option<Option<&'a str>>,
    /// The root Secret's name on this platform (`None`: no cloud actuator, nothing to gate).
    pub root_secret_name: Option<&'a str>,
    pub root_present: bool,
}

/// The Upgradeable condition to report, or `None` for no opinion (reported as the default
/// `True`/`AsExpected`).
pub fn upgradeable_condition(i: &UpgradeInputs<'_>) -> Option<CoCondition> {
    let Some(root_name) = i.root_secret_name else {
        return Some(CoCondition {
            type_: "Upgradeable",
            status: true,
            reason: "",
            message: String::new(),
        });
    };
    let not = |reason: &'static str, message: String| {
        Some(CoCondition {
            type_: "Upgradeable",
            status: false,
            reason,
            message,
        })
    };
    let Some(completed) = i.cluster_version else {
        return not(
            REASON_ERROR,
            "Error getting ClusterVersion while determining upgradability: clusterversions.config.openshift.io \"version\" not found".into(),
        );
    };
    let completed = completed?;
    let current = format!("v{completed}");
    let Some(current_mm) = major_minor(&current) else {
        return not(
            REASON_ERROR,
            format!("Unable to decode cluster version: {current}"),
        );
    };
    let Some(mode) = i.mode else {
        return not(
            REASON_ERROR,
            "Error determining if cluster can be upgraded: cloudcredentials.operator.openshift.io \"cluster\" not found".into(),
        );
    };
    let annotation = i.upgradeable_to.unwrap_or("");
    let annotation = if annotation.starts_with('v') {
        annotation.to_string()
    } else {
        format!("v{annotation}")
    };
    // An invalid annotation sorts below every valid version, as in Go's semver.Compare.
    if major_minor(&annotation).is_some_and(|a| a > current_mm) {
        return None;
    }
    if mode == CredentialsMode::Manual {
        return not(
            REASON_MISSING_ANNOTATION,
            format!(
                "Upgradeable annotation {UPGRADEABLE_ANNOTATION} on cloudcredential.operator.openshift.io/cluster object needs updating before upgrade. See Manually Creating IAM documentation for instructions on preparing a cluster for upgrade."
            ),
        );
    }
    if !i.root_present {
        return not(
            REASON_MISSING_ROOT,
            format!(
                "Parent credentials secret must be restored prior to upgrade: {ROOT_SECRET_NAMESPACE}/{root_name}"
            ),
        );
    }
    None
}

/// The gate's condition for the cluster as cached now.
pub fn current(
    state: &crate::state::ClusterState,
    config: &crate::config_watch::ConfigWatch,
    view: &crate::cluster::ClusterView,
    root_present: bool,
) -> Option<CoCondition> {
    let cc = state.cloud_credential();
    let cv = config.cluster_version();
    let upgradeable_to = cc
        .as_ref()
        .and_then(|c| c.metadata.annotations.as_ref())
        .and_then(|a| a.get(UPGRADEABLE_ANNOTATION))
        .map(String::as_str);
    upgradeable_condition(&UpgradeInputs {
        // An unknown mode is a configuration error reported as Degraded; gate as the reference
        // would on the raw value (anything but Manual needs the root credential).
        mode: cc.as_ref().map(|_| view.mode),
        upgradeable_to,
        cluster_version: cv.as_ref().map(|c| c.completed_version()),
        root_secret_name: view.root_secret_name(),
        root_present,
    })
}

/// `(major, minor)` of a Go-semver version string (`v1`, `v1.2`, `v1.2.3-pre+build`), or `None`
/// when it is not valid.
pub fn major_minor(v: &str) -> Option<(u64, u64)> {
    let rest = v.strip_prefix('v')?;
    let (major, rest) = number(rest)?;
    if rest.is_empty() {
        return Some((major, 0));
    }
    let (minor, rest) = number(rest.strip_prefix('.')?)?;
    if rest.is_empty() {
        return Some((major, minor));
    }
    let (_patch, mut rest) = number(rest.strip_prefix('.')?)?;
    if let Some(pre) = rest.strip_prefix('-') {
        let end = pre.find('+').unwrap_or(pre.len());
        if !pre[..end].split('.').all(|id| identifier(id, true)) {
            return None;
        }
        rest = &pre[end..];
    }
    if let Some(build) = rest.strip_prefix('+') {
        if !build.split('.').all(|id| identifier(id, false)) {
            return None;
        }
        rest = "";
    }
    rest.is_empty().then_some((major, minor))
}

/// A decimal number without leading zeros, and what follows it.
fn number(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let digits = &s[..end];
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    Some((digits.parse().ok()?, &s[end..]))
}

fn identifier(id: &str, prerelease: bool) -> bool {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return false;
    }
    let numeric = id.chars().all(|c| c.is_ascii_digit());
    !(prerelease && numeric && id.len() > 1 && id.starts_with('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(
        mode: CredentialsMode,
        annotation: Option<&'a str>,
        version: Option<Option<&'a str>>,
        root: bool,
    ) -> UpgradeInputs<'a> {
        UpgradeInputs {
            mode: Some(mode),
            upgradeable_to: annotation,
            cluster_version: version,
            root_secret_name: Some("aws-creds"),
            root_present: root,
        }
    }

    fn reason(c: &Option<CoCondition>) -> Option<(bool, &'static str)> {
        c.as_ref().map(|c| (c.status, c.reason))
    }

    #[test]
    fn go_semver_major_minor() {
        assert_eq!(major_minor("v4.15.3"), Some((4, 15)));
        assert_eq!(major_minor("v4.16"), Some((4, 16)));
        assert_eq!(major_minor("v4"), Some((4, 0)));
        assert_eq!(
            major_minor("v4.16.0-0.nightly-2024-01-01-000000"),
            Some((4, 16))
        );
        assert_eq!(major_minor("v4.16.0+build.1"), Some((4, 16)));
        for bad in [
            "",
            "v",
            "4.16",
            "v4.16-rc1",
            "v04.1",
            "v4.1.",
            "v4.1.0-01",
            "vx",
            "v4.1.0+",
        ] {
            assert_eq!(major_minor(bad), None, "{bad}");
        }
    }

    #[test]
    fn manual_mode_needs_the_annotation_for_the_next_minor() {
        let v = Some(Some("4.15.3"));
        let c = upgradeable_condition(&inputs(CredentialsMode::Manual, None, v, false));
        assert_eq!(reason(&c), Some((false, REASON_MISSING_ANNOTATION)));
        assert_eq!(
            c.map(|c| c.message),
            Some("Upgradeable annotation cloudcredential.openshift.io/upgradeable-to on cloudcredential.operator.openshift.io/cluster object needs updating before upgrade. See Manually Creating IAM documentation for instructions on preparing a cluster for upgrade.".into())
        );
        // The current minor is not enough; the next one (with or without "v", patch or not) is.
        for (a, ok) in [
            ("4.15", false),
            ("4.15.9", false),
            ("4.16", true),
            ("v4.16", true),
            ("4.16.0", true),
            ("5.0", true),
            ("garbage", false),
            ("", false),
        ] {
            let c = upgradeable_condition(&inputs(CredentialsMode::Manual, Some(a), v, false));
            assert_eq!(c.is_none(), ok, "annotation {a:?}: {c:?}");
        }
    }

    #[test]
    fn root_credential_removed_blocks_unless_annotated() {
        let v = Some(Some("4.15.3"));
        for mode in [
            CredentialsMode::Mint,
            CredentialsMode::Default,
            CredentialsMode::Passthrough,
        ] {
            let c = upgradeable_condition(&inputs(mode, None, v, false));
            assert_eq!(reason(&c), Some((false, REASON_MISSING_ROOT)));
            assert_eq!(
                c.map(|c| c.message),
                Some(
                    "Parent credentials secret must be restored prior to upgrade: kube-system/aws-creds"
                        .into()
                )
            );
            assert!(upgradeable_condition(&inputs(mode, None, v, true)).is_none());
            assert!(upgradeable_condition(&inputs(mode, Some("4.16"), v, false)).is_none());
        }
    }

    #[test]
    fn cluster_version_problems() {
        let c = upgradeable_condition(&inputs(CredentialsMode::Mint, None, None, true));
        assert_eq!(reason(&c), Some((false, REASON_ERROR)));
        assert!(c.is_some_and(|c| c
            .message
            .starts_with("Error getting ClusterVersion while determining upgradability: ")));
        // Installing: no completed version yet, no opinion even in Manual mode.
        assert!(
            upgradeable_condition(&inputs(CredentialsMode::Manual, None, Some(None), false))
                .is_none()
        );
        let c = upgradeable_condition(&inputs(
            CredentialsMode::Manual,
            None,
            Some(Some("4.x")),
            false,
        ));
        assert_eq!(reason(&c), Some((false, REASON_ERROR)));
        assert_eq!(
            c.map(|c| c.message),
            Some("Unable to decode cluster version: v4.x".into())
        );
        let mut i = inputs(CredentialsMode::Manual, None, Some(Some("4.15.0")), false);
        i.mode = None;
        assert_eq!(
            reason(&upgradeable_condition(&i)),
            Some((false, REASON_ERROR))
        );
    }

    #[test]
    fn platforms_without_an_actuator_are_always_upgradeable() {
        let mut i = inputs(CredentialsMode::Manual, None, None, false);
        i.root_secret_name = None;
        let c = upgradeable_condition(&i).expect("a condition");
        assert!(c.status && c.reason.is_empty() && c.message.is_empty());
    }
}
