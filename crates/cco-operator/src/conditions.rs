//! CredentialsRequest conditions and status, computed from the outcome of a reconcile.
//!
//! The rules follow the reference operator: a condition that does not exist yet is only added when
//! it is `True`; an existing one is updated when its status, reason or message changes, and its
//! `lastTransitionTime` moves only when the status flips. [`next_status`] is the single place that
//! maps an [`Outcome`] to the seven SPEC §7 conditions plus `provisioned` and the `lastSync*` fields.

use cco_api::{ConditionType, CredentialsRequestCondition, CredentialsRequestStatus};

/// What a reconcile achieved, as far as status is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The request is for another platform.
    Ignored { platform: String },
    /// The target namespace does not exist.
    MissingNamespace { namespace: String },
    /// The target Secret holds a valid credential. `orphaned` names cloud resources left behind.
    Provisioned { orphaned: Option<String> },
    /// The credential could not be written.
    ProvisionFailed { message: String },
    /// The root credential is not good enough for the request.
    Insufficient { message: String },
    /// Cleanup on deletion failed.
    DeprovisionFailed { message: String },
    /// The request is marked for removal from the payload but the operator is in Manual mode.
    Stale,
}

/// One desired condition value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub type_: ConditionType,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Desired {
    fn new(type_: ConditionType, status: bool, reason: &'static str, message: String) -> Desired {
        Desired {
            type_,
            status,
            reason,
            message,
        }
    }
}

/// Condition types that count as a failure to sync (ClusterOperator Degraded).
pub const FAILURE_TYPES: [ConditionType; 4] = [
    ConditionType::InsufficientCloudCreds,
    ConditionType::MissingTargetNamespace,
    ConditionType::CredentialsProvisionFailure,
    ConditionType::CredentialsDeprovisionFailure,
];

fn namespace_cond(missing: bool, ns: &str) -> Desired {
    if missing {
        Desired::new(
            ConditionType::MissingTargetNamespace,
            true,
            "NamespaceMissing",
            format!("target namespace {ns} not found"),
        )
    } else {
        Desired::new(
            ConditionType::MissingTargetNamespace,
            false,
            "NamespaceExists",
            format!("target namespace {ns} found"),
        )
    }
}

fn provision_cond(failed: Option<&str>) -> Desired {
    match failed {
        Some(m) => Desired::new(
            ConditionType::CredentialsProvisionFailure,
            true,
            "CredentialsProvisionFailure",
            format!("failed to grant creds: {m}"),
        ),
        None => Desired::new(
            ConditionType::CredentialsProvisionFailure,
            false,
            "CredentialsProvisionSuccess",
            "successfully granted credentials request".into(),
        ),
    }
}

fn insufficient_cond(message: Option<&str>) -> Desired {
    match message {
        Some(m) => Desired::new(
            ConditionType::InsufficientCloudCreds,
            true,
            "CloudCredsInsufficient",
            format!("cloud creds are insufficient to satisfy CredentialsRequest: {m}"),
        ),
        None => Desired::new(
            ConditionType::InsufficientCloudCreds,
            false,
            "CloudCredsSufficient",
            "cloud credentials sufficient for minting or passthrough".into(),
        ),
    }
}

fn orphan_cond(orphaned: Option<&str>) -> Desired {
    match orphaned {
        Some(m) => Desired::new(
            ConditionType::OrphanedCloudResource,
            true,
            "CloudResourceOrphaned",
            format!("unable to clean up previously created cloud resource: {m}"),
        ),
        None => Desired::new(
            ConditionType::OrphanedCloudResource,
            false,
            "CloudResourceCleaned",
            "cleaned up cloud resources".into(),
        ),
    }
}

fn ignored_cond(platform: Option<&str>) -> Desired {
    match platform {
        Some(p) => Desired::new(
            ConditionType::Ignored,
            true,
            "InfrastructureMismatch",
            format!("CredentialsRequest is not for platform {p}"),
        ),
        None => Desired::new(
            ConditionType::Ignored,
            false,
            "InfrastructureMatch",
            "CredentialsRequest is for this cluster's platform".into(),
        ),
    }
}

/// The conditions an outcome implies, for `target_namespace`.
pub fn desired_conditions(outcome: &Outcome, target_namespace: &str) -> Vec<Desired> {
    match outcome {
        Outcome::Ignored { platform } => {
            // Clear every failure, so ignored requests never degrade the operator.
            let msg = format!("CredentialsRequest is not for platform {platform}");
            let mut v = vec![ignored_cond(Some(platform))];
            v.extend(FAILURE_TYPES.iter().map(|t| Desired {
                type_: *t,
                status: false,
                reason: "InfrastructureMismatch",
                message: msg.clone(),
            }));
            v
        }
        Outcome::MissingNamespace { .. } => vec![
            ignored_cond(None),
            namespace_cond(true, target_namespace),
        ],
        Outcome::Provisioned { orphaned } => vec![
            ignored_cond(None),
            namespace_cond(false, target_namespace),
            provision_cond(None),
            insufficient_cond(None),
            orphan_cond(orphaned.as_deref()),
        ],
        Outcome::ProvisionFailed { message } => vec![
            ignored_cond(None),
            namespace_cond(false, target_namespace),
            provision_cond(Some(message)),
            insufficient_cond(None),
        ],
        Outcome::Insufficient { message } => vec![
            ignored_cond(None),
            namespace_cond(false, target_namespace),
            provision_cond(None),
            insufficient_cond(Some(message)),
        ],
        Outcome::DeprovisionFailed { message } => vec![Desired::new(
            ConditionType::CredentialsDeprovisionFailure,
            true,
            "CloudCredDeprovisionFailure",
            format!("failed to deprovision resource: {message}"),
        )],
        Outcome::Stale => vec![Desired::new(
            ConditionType::StaleCredentials,
            true,
            "CredentialsNoLongerRequired",
            "CredentialsRequest is no longer required. Delete CR, Secret containing credentials, and associated platform/cloud resources".into(),
        )],
    }
}

/// Applies one desired condition with the reference operator's rules.
pub fn set_condition(conds: &mut Vec<CredentialsRequestCondition>, d: &Desired, now: &str) {
    let status = if d.status { "True" } else { "False" };
    match conds.iter_mut().find(|c| c.type_ == d.type_.as_str()) {
        None => {
            if d.status {
                conds.push(CredentialsRequestCondition {
                    type_: d.type_.as_str().to_string(),
                    status: status.to_string(),
                    last_probe_time: Some(now.to_string()),
                    last_transition_time: Some(now.to_string()),
                    reason: Some(d.reason.to_string()),
                    message: Some(d.message.clone()),
                });
            }
        }
        Some(c) => {
            let changed = c.status != status
                || c.reason.as_deref() != Some(d.reason)
                || c.message.as_deref() != Some(d.message.as_str());
            if changed {
                if c.status != status {
                    c.last_transition_time = Some(now.to_string());
                }
                c.status = status.to_string();
                c.reason = Some(d.reason.to_string());
                c.message = Some(d.message.clone());
                c.last_probe_time = Some(now.to_string());
            }
        }
    }
}

/// Whether any failure condition is `True`.
pub fn has_failure(status: &CredentialsRequestStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.status == "True" && FAILURE_TYPES.iter().any(|t| t.as_str() == c.type_))
}

/// What a successful sync records besides conditions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncMarks {
    pub generation: i64,
    pub root_resource_version: Option<String>,
    pub infrastructure_resource_version: Option<String>,
    pub provider_status: Option<serde_json::Value>,
}

/// The status after `outcome`. `marks` is recorded only when the request is provisioned.
pub fn next_status(
    current: &CredentialsRequestStatus,
    outcome: &Outcome,
    target_namespace: &str,
    marks: &SyncMarks,
    now: &str,
) -> CredentialsRequestStatus {
    let mut s = current.clone();
    for d in desired_conditions(outcome, target_namespace) {
        set_condition(&mut s.conditions, &d, now);
    }
    match outcome {
        Outcome::Provisioned { .. } => {
            s.provisioned = true;
            s.last_sync_generation = marks.generation;
            s.last_sync_timestamp = Some(now.to_string());
            if marks.root_resource_version.is_some() {
                s.last_sync_cloud_creds_secret_resource_version =
                    marks.root_resource_version.clone();
            }
            if marks.infrastructure_resource_version.is_some() {
                s.last_sync_infrastructure_resource_version =
                    marks.infrastructure_resource_version.clone();
            }
        }
        Outcome::ProvisionFailed { .. }
        | Outcome::Insufficient { .. }
        | Outcome::MissingNamespace { .. } => s.provisioned = false,
        Outcome::Ignored { .. } | Outcome::DeprovisionFailed { .. } | Outcome::Stale => {}
    }
    if marks.provider_status.is_some() {
        s.provider_status = marks.provider_status.clone();
    }
    s
}

/// Status equality that ignores probe times, so that an unchanged status is not written again.
pub fn same_status(a: &CredentialsRequestStatus, b: &CredentialsRequestStatus) -> bool {
    let strip = |s: &CredentialsRequestStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_probe_time = None;
        }
        s
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(
        s: &CredentialsRequestStatus,
        t: ConditionType,
    ) -> Option<&CredentialsRequestCondition> {
        s.conditions.iter().find(|c| c.type_ == t.as_str())
    }

    #[test]
    fn false_conditions_are_not_added_until_they_were_true() {
        let s = next_status(
            &Default::default(),
            &Outcome::Provisioned { orphaned: None },
            "ns",
            &SyncMarks::default(),
            "t1",
        );
        assert!(s.conditions.is_empty(), "{:?}", s.conditions);
        assert!(s.provisioned);
        assert_eq!(s.last_sync_timestamp.as_deref(), Some("t1"));
    }

    #[test]
    fn missing_namespace_then_namespace_appears() {
        let s1 = next_status(
            &Default::default(),
            &Outcome::MissingNamespace {
                namespace: "ns".into(),
            },
            "ns",
            &SyncMarks::default(),
            "t1",
        );
        let c = cond(&s1, ConditionType::MissingTargetNamespace).expect("set");
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("True", Some("NamespaceMissing"))
        );
        assert!(!s1.provisioned);
        let s2 = next_status(
            &s1,
            &Outcome::Provisioned { orphaned: None },
            "ns",
            &SyncMarks {
                generation: 3,
                ..Default::default()
            },
            "t2",
        );
        let c = cond(&s2, ConditionType::MissingTargetNamespace).expect("kept");
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some("NamespaceExists"))
        );
        assert_eq!(c.last_transition_time.as_deref(), Some("t2"));
        assert!(s2.provisioned);
        assert_eq!(s2.last_sync_generation, 3);
    }

    #[test]
    fn ignored_clears_failures_and_matching_again_clears_ignored() {
        let failed = next_status(
            &Default::default(),
            &Outcome::ProvisionFailed {
                message: "boom".into(),
            },
            "ns",
            &SyncMarks::default(),
            "t1",
        );
        assert!(has_failure(&failed));
        let ignored = next_status(
            &failed,
            &Outcome::Ignored {
                platform: "GCP".into(),
            },
            "ns",
            &SyncMarks::default(),
            "t2",
        );
        assert!(!has_failure(&ignored));
        assert_eq!(
            cond(&ignored, ConditionType::Ignored).map(|c| c.status.as_str()),
            Some("True")
        );
        let back = next_status(
            &ignored,
            &Outcome::Provisioned { orphaned: None },
            "ns",
            &SyncMarks::default(),
            "t3",
        );
        assert_eq!(
            cond(&back, ConditionType::Ignored).map(|c| c.status.as_str()),
            Some("False")
        );
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let s1 = next_status(
            &Default::default(),
            &Outcome::ProvisionFailed {
                message: "a".into(),
            },
            "ns",
            &SyncMarks::default(),
            "t1",
        );
        let s2 = next_status(
            &s1,
            &Outcome::ProvisionFailed {
                message: "b".into(),
            },
            "ns",
            &SyncMarks::default(),
            "t2",
        );
        let c = cond(&s2, ConditionType::CredentialsProvisionFailure).expect("set");
        assert_eq!(c.last_transition_time.as_deref(), Some("t1"));
        assert_eq!(c.message.as_deref(), Some("failed to grant creds: b"));
        assert!(same_status(
            &s2,
            &next_status(
                &s2,
                &Outcome::ProvisionFailed {
                    message: "b".into()
                },
                "ns",
                &SyncMarks::default(),
                "t3"
            )
        ));
    }

    #[test]
    fn insufficient_deprovision_orphan_and_stale_are_reported() {
        let s = next_status(
            &Default::default(),
            &Outcome::Insufficient {
                message: "m".into(),
            },
            "ns",
            &SyncMarks::default(),
            "t",
        );
        assert_eq!(
            cond(&s, ConditionType::InsufficientCloudCreds).map(|c| c.status.as_str()),
            Some("True")
        );
        let s = next_status(
            &s,
            &Outcome::DeprovisionFailed {
                message: "m".into(),
            },
            "ns",
            &SyncMarks::default(),
            "t",
        );
        assert_eq!(
            cond(&s, ConditionType::CredentialsDeprovisionFailure).map(|c| c.reason.as_deref()),
            Some(Some("CloudCredDeprovisionFailure"))
        );
        let s = next_status(
            &s,
            &Outcome::Provisioned {
                orphaned: Some("key AKIA1".into()),
            },
            "ns",
            &SyncMarks::default(),
            "t",
        );
        assert_eq!(
            cond(&s, ConditionType::OrphanedCloudResource).map(|c| c.status.as_str()),
            Some("True")
        );
        assert!(s.provisioned, "an orphan is not a provisioning failure");
        let s = next_status(&s, &Outcome::Stale, "ns", &SyncMarks::default(), "t");
        assert_eq!(
            cond(&s, ConditionType::StaleCredentials).map(|c| c.reason.as_deref()),
            Some(Some("CredentialsNoLongerRequired"))
        );
    }
}
