//! The webhook's health on the ClusterOperator (pure).
//!
//! As the reference's pod-identity status handler: `Available=False` (`DeploymentNotFound`,
//! `DeploymentUnavailable`) as soon as the Deployment is missing or has no available pod,
//! `Progressing=True` (`Deploying`) while it rolls out. `Degraded=True` only once a problem has
//! lasted the grace period (5 minutes; [`crate::Settings::webhook_degraded_grace`]): the Deployment
//! without an available pod (`PodIdentityWebhookUnavailable`) or the objects failing to apply
//! (`StaticResourceReconcileFailed`, the reference's reason). After a restart the grace period is not
//! granted again: a Degraded condition already published with one of these reasons seeds the start
//! of the problem.
//!
//! [`related_objects`] lists the webhook's objects for `relatedObjects` (must-gather).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;

use super::NAME;
use crate::openshift::{ClusterOperatorStatus, RelatedObject};
use crate::status::{CoCondition, OPERATOR_NAMESPACE};

/// Degraded reason: the Deployment has had no available pod for the grace period.
pub const REASON_UNAVAILABLE: &str = "PodIdentityWebhookUnavailable";
/// Degraded reason: applying the objects has failed for the grace period (the reference's).
pub const REASON_RECONCILE_FAILED: &str = "StaticResourceReconcileFailed";

/// The webhook's observed state over time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    /// Whether the webhook is wanted (and so reported) at all.
    pub deployed: bool,
    /// The Deployment as last read; `None` when it does not exist.
    pub deployment: Option<Deployment>,
    /// Since when it has had no available pod (or not existed).
    pub unavailable_since: Option<Timestamp>,
    /// Since when applying has failed, and the last error.
    pub failing_since: Option<Timestamp>,
    pub last_error: Option<String>,
}

fn available_replicas(d: &Deployment) -> i32 {
    d.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// Whether the Deployment is rolling out, and the reference's message for it.
pub fn progressing(d: &Deployment) -> Option<&'static str> {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let st = d.status.clone().unwrap_or_default();
    let finished = st
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing")
        .is_some_and(|c| {
            c.status == "True" && c.reason.as_deref() == Some("NewReplicaSetAvailable")
        });
    if d.metadata.generation.unwrap_or(0) != st.observed_generation.unwrap_or(0) {
        Some("Waiting for pod-identity-webhook deployment to act on changes")
    } else if finished {
        None
    } else if st.unavailable_replicas.unwrap_or(0) > 0 {
        Some("Waiting for pod-identity-webhook deployment to deploy pods")
    } else if st.updated_replicas.unwrap_or(0) < want {
        Some("Waiting for pod-identity-webhook deployment to update pods")
    } else if st.available_replicas.unwrap_or(0) < want {
        Some("Waiting for pod-identity-webhook deployment to deploy pods")
    } else {
        None
    }
}

impl Health {
    /// Records what was seen at `now`: whether the webhook is wanted, its Deployment, and the
    /// error of the last apply (if it failed).
    pub fn observe(
        &mut self,
        now: Timestamp,
        deployed: bool,
        deployment: Option<Deployment>,
        error: Option<String>,
    ) {
        if !deployed {
            *self = Health::default();
            return;
        }
        self.deployed = true;
        let unavailable = deployment
            .as_ref()
            .is_none_or(|d| available_replicas(d) == 0);
        self.deployment = deployment;
        match (unavailable, self.unavailable_since) {
            (true, None) => self.unavailable_since = Some(now),
            (false, _) => self.unavailable_since = None,
            _ => {}
        }
        match (&error, self.failing_since) {
            (Some(_), None) => self.failing_since = Some(now),
            (None, _) => self.failing_since = None,
            _ => {}
        }
        self.last_error = error;
    }

    /// Seeds the problem start times from the ClusterOperator published before a restart, so the
    /// grace period is not granted again.
    pub fn seed(&mut self, published: Option<&ClusterOperatorStatus>, grace: Duration) {
        let Some(d) = published.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Degraded"))
        else {
            return;
        };
        if d.status != "True" {
            return;
        }
        let Ok(ltt) = d.last_transition_time.parse::<Timestamp>() else {
            return;
        };
        let Ok(g) = k8s_openapi::jiff::SignedDuration::try_from(grace) else {
            return;
        };
        let start = ltt.checked_sub(g).unwrap_or(ltt);
        let reason = d.reason.as_deref().unwrap_or("");
        if reason.contains(REASON_UNAVAILABLE)
            || d.message
                .as_deref()
                .unwrap_or("")
                .contains("pod-identity-webhook deployment has had no available pods")
        {
            self.unavailable_since = Some(start);
        }
        if reason.contains(REASON_RECONCILE_FAILED)
            || d.message
                .as_deref()
                .unwrap_or("")
                .contains("static resource reconciliation failed")
        {
            self.failing_since = Some(start);
        }
    }

    /// When a problem started now would pass the grace period (to recompute status then).
    pub fn next_deadline(&self, grace: Duration) -> Option<Timestamp> {
        let g = k8s_openapi::jiff::SignedDuration::try_from(grace).ok()?;
        [self.unavailable_since, self.failing_since]
            .into_iter()
            .flatten()
            .filter_map(|t| t.checked_add(g).ok())
            .min()
    }

    /// The conditions to merge into the ClusterOperator at `now`.
    pub fn conditions(&self, now: Timestamp, grace: Duration) -> Vec<CoCondition> {
        if !self.deployed {
            return vec![];
        }
        let mut out = Vec::new();
        match &self.deployment {
            None => out.push(CoCondition {
                type_: "Available",
                status: false,
                reason: "DeploymentNotFound",
                message: "pod-identity-webhook deployment does not exist".into(),
            }),
            Some(d) => {
                if let Some(msg) = progressing(d) {
                    out.push(CoCondition {
                        type_: "Progressing",
                        status: true,
                        reason: "Deploying",
                        message: msg.into(),
                    });
                }
                if available_replicas(d) == 0 {
                    out.push(CoCondition {
                        type_: "Available",
                        status: false,
                        reason: "DeploymentUnavailable",
                        message: "pod-identity-webhook deployment has no available pods".into(),
                    });
                }
            }
        }
        let over = |since: Option<Timestamp>| {
            since
                .is_some_and(|s| Duration::try_from(now.duration_since(s)).is_ok_and(|d| d > grace))
        };
        if over(self.failing_since) {
            out.push(CoCondition {
                type_: "Degraded",
                status: true,
                reason: REASON_RECONCILE_FAILED,
                message: format!(
                    "static resource reconciliation failed: {}",
                    self.last_error.as_deref().unwrap_or("unknown error")
                ),
            });
        } else if over(self.unavailable_since) {
            out.push(CoCondition {
                type_: "Degraded",
                status: true,
                reason: REASON_UNAVAILABLE,
                message: format!(
                    "pod-identity-webhook deployment has had no available pods for more than {}s",
                    grace.as_secs()
                ),
            });
        }
        out
    }
}

/// The webhook's objects, for the ClusterOperator's `relatedObjects` (the reference's list, plus
/// the PodDisruptionBudget).
pub fn related_objects() -> Vec<RelatedObject> {
    let o = |group: &str, resource: &str, namespaced: bool| RelatedObject {
        group: group.into(),
        resource: resource.into(),
        namespace: namespaced.then(|| OPERATOR_NAMESPACE.to_string()),
        name: NAME.into(),
    };
    vec![
        o("", "serviceaccounts", true),
        o("rbac.authorization.k8s.io", "clusterroles", false),
        o("rbac.authorization.k8s.io", "clusterrolebindings", false),
        o("rbac.authorization.k8s.io", "roles", true),
        o("rbac.authorization.k8s.io", "rolebindings", true),
        o("", "services", true),
        o("apps", "deployments", true),
        o(
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            false,
        ),
        o("policy", "poddisruptionbudgets", true),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(300);

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn deployment(available: i32, rolled_out: bool) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "pod-identity-webhook", "generation": 2},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "availableReplicas": available,
                "updatedReplicas": 2, "replicas": 2,
                "conditions": [{"type": "Progressing", "status": "True",
                    "reason": if rolled_out {"NewReplicaSetAvailable"} else {"ReplicaSetUpdated"}}]}
        }))
        .expect("deployment")
    }

    fn types(c: &[CoCondition]) -> Vec<(&str, bool, &str)> {
        c.iter().map(|c| (c.type_, c.status, c.reason)).collect()
    }

    #[test]
    fn healthy_deployment_reports_nothing() {
        let mut h = Health::default();
        h.observe(
            t("2024-01-01T00:00:00Z"),
            true,
            Some(deployment(2, true)),
            None,
        );
        assert!(h.conditions(t("2024-01-01T01:00:00Z"), GRACE).is_empty());
    }

    #[test]
    fn unavailable_is_degraded_only_after_the_grace_period() {
        let mut h = Health::default();
        h.observe(
            t("2024-01-01T00:00:00Z"),
            true,
            Some(deployment(0, true)),
            None,
        );
        assert_eq!(
            types(&h.conditions(t("2024-01-01T00:04:59Z"), GRACE)),
            vec![("Available", false, "DeploymentUnavailable")]
        );
        // Seen again later: the start time is kept.
        h.observe(
            t("2024-01-01T00:03:00Z"),
            true,
            Some(deployment(0, true)),
            None,
        );
        let c = h.conditions(t("2024-01-01T00:05:01Z"), GRACE);
        assert_eq!(
            types(&c),
            vec![
                ("Available", false, "DeploymentUnavailable"),
                ("Degraded", true, REASON_UNAVAILABLE)
            ]
        );
        assert_eq!(h.next_deadline(GRACE), Some(t("2024-01-01T00:05:00Z")));
        // Back: all clear at once.
        h.observe(
            t("2024-01-01T00:06:00Z"),
            true,
            Some(deployment(1, true)),
            None,
        );
        assert!(h.conditions(t("2024-01-01T00:06:00Z"), GRACE).is_empty());
        assert_eq!(h.next_deadline(GRACE), None);
    }

    #[test]
    fn missing_deployment_and_rollouts() {
        let mut h = Health::default();
        h.observe(t("2024-01-01T00:00:00Z"), true, None, None);
        assert_eq!(
            types(&h.conditions(t("2024-01-01T00:00:01Z"), GRACE)),
            vec![("Available", false, "DeploymentNotFound")]
        );
        h.observe(
            t("2024-01-01T00:00:00Z"),
            true,
            Some(deployment(1, false)),
            None,
        );
        let c = h.conditions(t("2024-01-01T00:00:01Z"), GRACE);
        assert_eq!(types(&c), vec![("Progressing", true, "Deploying")]);
        assert_eq!(
            c[0].message,
            "Waiting for pod-identity-webhook deployment to deploy pods"
        );
    }

    #[test]
    fn apply_failures_degrade_after_the_grace_period_with_the_error() {
        let mut h = Health::default();
        let d = Some(deployment(2, true));
        h.observe(
            t("2024-01-01T00:00:00Z"),
            true,
            d.clone(),
            Some("boom".into()),
        );
        assert!(h.conditions(t("2024-01-01T00:01:00Z"), GRACE).is_empty());
        h.observe(
            t("2024-01-01T00:02:00Z"),
            true,
            d,
            Some("still boom".into()),
        );
        let c = h.conditions(t("2024-01-01T00:06:00Z"), GRACE);
        assert_eq!(types(&c), vec![("Degraded", true, REASON_RECONCILE_FAILED)]);
        assert_eq!(
            c[0].message,
            "static resource reconciliation failed: still boom"
        );
    }

    #[test]
    fn not_wanted_reports_nothing_and_forgets() {
        let mut h = Health::default();
        h.observe(t("2024-01-01T00:00:00Z"), true, None, Some("x".into()));
        h.observe(t("2024-01-01T00:00:01Z"), false, None, None);
        assert_eq!(h, Health::default());
        assert!(h.conditions(t("2024-01-02T00:00:00Z"), GRACE).is_empty());
    }

    #[test]
    fn a_published_degraded_condition_seeds_the_start() {
        let status: ClusterOperatorStatus = serde_json::from_value(serde_json::json!({
            "conditions": [{"type": "Degraded", "status": "True", "reason": REASON_UNAVAILABLE,
                "message": "x", "lastTransitionTime": "2024-01-01T00:10:00Z"}]
        }))
        .expect("status");
        let mut h = Health::default();
        h.seed(Some(&status), GRACE);
        h.observe(
            t("2024-01-01T00:11:00Z"),
            true,
            Some(deployment(0, true)),
            None,
        );
        assert_eq!(
            types(&h.conditions(t("2024-01-01T00:11:00Z"), GRACE)),
            vec![
                ("Available", false, "DeploymentUnavailable"),
                ("Degraded", true, REASON_UNAVAILABLE)
            ]
        );
    }

    #[test]
    fn related_objects_name_every_webhook_object() {
        let r = related_objects();
        assert_eq!(r.len(), 9);
        assert!(r.iter().all(|o| o.name == "pod-identity-webhook"));
        assert!(r
            .iter()
            .any(|o| o.resource == "mutatingwebhookconfigurations" && o.namespace.is_none()));
    }
}
