//! The ClusterOperator `cloud-credential` and the aggregate metrics, both computed from the cached
//! CredentialsRequests.
//!
//! [`operator_conditions`] is pure: from the effective mode, the cluster view and the requests, it
//! derives Available, Progressing and Degraded with the reference operator's reasons (Upgradeable
//! is left at its default; the upgrade gate in [`crate::upgrade`] is merged in by the caller). As in
//! the reference, a request's failure condition counts toward Degraded only once it has been true
//! for the grace period ([`FAILURE_GRACE`]: transient failures during a sync do not degrade the
//! operator), and Progressing comes from requests not provisioned or whose spec changed since their
//! last sync (`metadata.generation` ≠ `status.lastSyncGeneration`). [`merge_conditions`] keeps `lastTransitionTime` when a
//! status does not flip. [`write_cluster_operator`] creates the object if needed and patches status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cco_api::{Cloud, ConditionType, CredentialsRequest};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;

use crate::cluster::{ClusterView, Effective};
use crate::conditions::FAILURE_TYPES;
use crate::openshift::{
    ClusterOperator, ClusterOperatorCondition, ClusterOperatorSpec, ClusterOperatorStatus,
    OperandVersion, RelatedObject,
};
use crate::plan::token_secret;

/// Name of the ClusterOperator.
pub const CLUSTER_OPERATOR: &str = "cloud-credential";
/// The operator's namespace (also holds the Lease).
pub const OPERATOR_NAMESPACE: &str = "openshift-cloud-credential-operator";

/// How long a request's failure condition must stay true before it counts toward Degraded (the
/// reference's `degradedGracePeriod`).
pub const FAILURE_GRACE: Duration = Duration::from_secs(300);

/// When the status is computed, and the grace period of request failures.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub now: Timestamp,
    pub grace: Duration,
}

impl Clock {
    /// Now, with the reference's grace period.
    pub fn now(grace: Duration) -> Clock {
        Clock {
            now: Timestamp::now(),
            grace,
        }
    }

    /// When a failure that became true at `since` starts to count (`None`: it already does, or
    /// its time is unknown, which counts at once as the reference's zero time does).
    fn counts_from(&self, since: Option<&str>) -> Option<Timestamp> {
        let since: Timestamp = since?.parse().ok()?;
        let span = k8s_openapi::jiff::SignedDuration::try_from(self.grace).ok()?;
        let from = since.checked_add(span).ok()?;
        (from >= self.now).then_some(from)
    }
}

/// The true failure conditions of a request: for each, `None` when it counts toward Degraded now,
/// else the time from which it will.
fn failures(cr: &CredentialsRequest, clock: &Clock) -> Vec<Option<Timestamp>> {
    cr.status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .filter(|c| c.status == "True" && FAILURE_TYPES.iter().any(|t| c.type_ == t.as_str()))
        .map(|c| clock.counts_from(c.last_transition_time.as_deref()))
        .collect()
}

/// The next moment a failing request (still within its grace period) will start to count toward
/// Degraded, so the status is recomputed then.
pub fn next_failure_deadline(
    effective: &Effective,
    view: &ClusterView,
    crs: &[Arc<CredentialsRequest>],
    clock: &Clock,
) -> Option<Timestamp> {
    if matches!(effective, Effective::Manual | Effective::Token) {
        return None;
    }
    managed(effective, view, crs)
        .iter()
        .flat_map(|cr| failures(cr, clock))
        .flatten()
        .min()
}

/// One ClusterOperator condition before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoCondition {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

/// Requests that this operator is responsible for under `effective`.
fn managed<'a>(
    effective: &Effective,
    view: &ClusterView,
    crs: &'a [Arc<CredentialsRequest>],
) -> Vec<&'a CredentialsRequest> {
    let cloud = view.cloud();
    crs.iter()
        .map(|c| c.as_ref())
        .filter(|cr| cloud.is_some() && cr.spec.provider_kind().and_then(Cloud::from_kind) == cloud)
        .filter(|cr| match effective {
            Effective::Token => cr
                .spec
                .provider()
                .ok()
                .is_some_and(|p| token_secret(cr, &p).is_some()),
            _ => true,
        })
        .collect()
}

/// Available / Progressing / Degraded / Upgradeable for the operator.
pub fn operator_conditions(
    effective: &Effective,
    view: &ClusterView,
    crs: &[Arc<CredentialsRequest>],
    clock: &Clock,
) -> Vec<CoCondition> {
    let ok = |type_, status| CoCondition {
        type_,
        status,
        reason: "AsExpected",
        message: "All is well".to_string(),
    };
    let mine = managed(effective, view, crs);
    let failing = mine
        .iter()
        .filter(|cr| failures(cr, clock).iter().any(Option::is_none))
        .count();
    let spec_changed = mine
        .iter()
        .filter(|cr| {
            cr.metadata.generation.unwrap_or(0)
                != cr.status.as_ref().map_or(0, |s| s.last_sync_generation)
        })
        .count();
    let not_provisioned = mine
        .iter()
        .filter(|cr| !cr.status.as_ref().is_some_and(|s| s.provisioned))
        .count();

    let mut available = ok("Available", true);
    let mut degraded = ok("Degraded", false);
    let mut progressing = ok("Progressing", false);
    let upgradeable = ok("Upgradeable", true);

    if let Some(e) = &view.config_error {
        degraded = CoCondition {
            type_: "Degraded",
            status: true,
            reason: "ConfigurationError",
            message: e.clone(),
        };
    } else if matches!(effective, Effective::Manual | Effective::Token) {
        // Manual mode, token mode included: the reference reports the operator as disabled by the
        // admin and derives neither Degraded nor Progressing from the requests (stale requests
        // show through `cco_credentials_requests_conditions` and its alert instead).
        available.reason = "OperatorDisabledByAdmin";
        available.message = "Credential minting is disabled by cluster admin".into();
    } else {
        if failing > 0 {
            degraded = CoCondition {
                type_: "Degraded",
                status: true,
                reason: "CredentialsFailing",
                message: format!(
                    "{failing} of {} credentials requests are failing to sync.",
                    mine.len()
                ),
            };
        }
        if not_provisioned > 0 || spec_changed > 0 {
            progressing = CoCondition {
                type_: "Progressing",
                status: true,
                reason: "Reconciling",
                message: format!(
                    "{} of {} credentials requests provisioned, {failing} reporting errors.",
                    mine.len() - not_provisioned,
                    mine.len()
                ),
            };
        }
    }
    // Upgradeable comes from the upgrade gate ([`crate::upgrade`]), merged by the caller.
    vec![available, degraded, progressing, upgradeable]
}

/// Turns computed conditions into ClusterOperator conditions, keeping transition times of
/// conditions whose status did not change.
pub fn merge_conditions(
    old: &[ClusterOperatorCondition],
    new: &[CoCondition],
    now: &str,
) -> Vec<ClusterOperatorCondition> {
    let mut out: Vec<ClusterOperatorCondition> = new
        .iter()
        .map(|c| {
            let status = if c.status { "True" } else { "False" };
            let ltt = old
                .iter()
                .find(|o| o.type_ == c.type_ && o.status == status)
                .map(|o| o.last_transition_time.clone())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| now.to_string());
            ClusterOperatorCondition {
                type_: c.type_.to_string(),
                status: status.to_string(),
                last_transition_time: ltt,
                // The reference's no-op actuator reports Upgradeable with neither (Go omits them).
                reason: Some(c.reason.to_string()).filter(|r| !r.is_empty()),
                message: Some(c.message.clone()).filter(|m| !m.is_empty()),
            }
        })
        .collect();
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// `cco_credentials_requests{cloud_type}` and `cco_credentials_requests_conditions{condition}`.
/// In Manual mode only StaleCredentials is counted (as upstream: nothing else should alert).
pub fn metric_counts(
    crs: &[Arc<CredentialsRequest>],
    manual: bool,
) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let mut by_cloud = BTreeMap::new();
    let mut by_cond: BTreeMap<String, i64> = BTreeMap::new();
    for t in FAILURE_TYPES
        .iter()
        .chain([&ConditionType::StaleCredentials])
    {
        by_cond.insert(t.as_str().to_string(), 0);
    }
    for cr in crs {
        let key = match cr.spec.provider_kind().and_then(Cloud::from_kind) {
            Some(Cloud::Aws) => "aws",
            Some(Cloud::Azure) => "azure",
            Some(Cloud::Gcp) => "gcp",
            Some(Cloud::OpenStack) => "openstack",
            Some(Cloud::Ovirt) => "ovirt",
            Some(Cloud::VSphere) => "vsphere",
            Some(Cloud::Kubevirt) => "kubevirt",
            Some(Cloud::IbmCloud) => "ibmcloud",
            Some(Cloud::PowerVs) => "powervs",
            Some(Cloud::Nutanix) => "nutanix",
            Some(Cloud::AlibabaCloud) => "alibabacloud",
            None => "unknown",
        };
        *by_cloud.entry(key.to_string()).or_insert(0) += 1;
        for c in cr.status.iter().flat_map(|s| s.conditions.iter()) {
            let stale = c.type_ == ConditionType::StaleCredentials.as_str();
            if c.status == "True" && stale == manual {
                *by_cond.entry(c.type_.clone()).or_insert(0) += 1;
            }
        }
    }
    (by_cloud, by_cond)
}

/// The reference status controller's rules around upgrades, applied to a freshly computed status:
///
/// - on the write where the operator's version changes, `Progressing=True` (`VersionChanged`,
///   "Operator version is updating"), keeping the transition time if it was already true;
/// - while the cluster is upgrading (ClusterVersion `Progressing=True`) and this operator is
///   progressing, a `Degraded=True` is reported as `Degraded=False` (`UpgradeInProgress`) with the
///   original reason and message inside, since a component must not report Degraded during a
///   normal upgrade.
///
/// Returns whether the version changed (the status is then recomputed soon, as the reference's
/// next reconcile does).
pub fn apply_upgrade_rules(
    old: &ClusterOperatorStatus,
    status: &mut ClusterOperatorStatus,
    cluster_upgrading: bool,
    now: &str,
) -> bool {
    let find =
        |conds: &[ClusterOperatorCondition], t: &str| conds.iter().find(|c| c.type_ == t).cloned();
    let version_changed = old.versions != status.versions;
    if version_changed {
        if let Some(p) = status
            .conditions
            .iter_mut()
            .find(|c| c.type_ == "Progressing")
        {
            p.last_transition_time = match find(&old.conditions, "Progressing") {
                Some(o) if o.status == "True" => o.last_transition_time,
                _ => now.to_string(),
            };
            p.status = "True".into();
            p.reason = Some("VersionChanged".into());
            p.message = Some("Operator version is updating".into());
        }
    }
    let progressing = find(&status.conditions, "Progressing").is_some_and(|p| p.status == "True");
    if cluster_upgrading && progressing {
        if let Some(d) = status
            .conditions
            .iter_mut()
            .find(|c| c.type_ == "Degraded" && c.status == "True")
        {
            d.message = Some(format!(
                "Degraded=True suppressed during cluster upgrade (reason: {}, message: {})",
                d.reason.as_deref().unwrap_or_default(),
                d.message.as_deref().unwrap_or_default()
            ));
            d.status = "False".into();
            d.reason = Some("UpgradeInProgress".into());
            d.last_transition_time = match find(&old.conditions, "Degraded") {
                Some(o) if o.status == "False" => o.last_transition_time,
                _ => now.to_string(),
            };
        }
    }
    version_changed
}

/// The requests in the operator's namespace as ClusterOperator `relatedObjects` (what `oc adm
/// must-gather` collects), one entry each as the reference's `buildExpectedRelatedObjects`.
pub fn request_related(crs: &[Arc<CredentialsRequest>]) -> Vec<RelatedObject> {
    crs.iter()
        .filter(|cr| cr.metadata.namespace.as_deref() == Some(OPERATOR_NAMESPACE))
        .filter_map(|cr| {
            Some(RelatedObject {
                group: cco_api::GROUP.into(),
                resource: "credentialsrequests".into(),
                namespace: Some(OPERATOR_NAMESPACE.into()),
                name: cr.metadata.name.clone()?,
            })
        })
        .collect()
}

/// Creates the ClusterOperator if missing and writes its status when it changed. Returns whether
/// it wrote, and whether the operator's version changed with this write.
pub async fn write_cluster_operator(
    client: &Client,
    conditions: &[CoCondition],
    extra_related: &[RelatedObject],
    version: &str,
    cluster_upgrading: bool,
    now: &str,
) -> Result<(bool, bool), kube::Error> {
    let api: Api<ClusterOperator> = Api::all(client.clone());
    let existing = match api.get_opt(CLUSTER_OPERATOR).await? {
        Some(co) => co,
        None => {
            let co = ClusterOperator::new(CLUSTER_OPERATOR, ClusterOperatorSpec::default());
            match api.create(&PostParams::default(), &co).await {
                Ok(c) => c,
                Err(kube::Error::Api(e)) if e.code == 409 => api.get(CLUSTER_OPERATOR).await?,
                Err(e) => return Err(e),
            }
        }
    };
    let old = existing.status.clone().unwrap_or_default();
    let mut status = old.clone();
    status.conditions = merge_conditions(&old.conditions, conditions, now);
    status.versions = vec![OperandVersion {
        name: "operator".into(),
        version: version.to_string(),
    }];
    status.related_objects = vec![RelatedObject {
        group: String::new(),
        resource: "namespaces".into(),
        namespace: None,
        name: OPERATOR_NAMESPACE.into(),
    }];
    status.related_objects.extend(extra_related.iter().cloned());
    // As the reference sorts them (by name, stable), so an unchanged list is not rewritten.
    status.related_objects.sort_by(|a, b| a.name.cmp(&b.name));
    let version_changed = apply_upgrade_rules(&old, &mut status, cluster_upgrading, now);
    if status == old {
        return Ok((false, version_changed));
    }
    let patch = serde_json::json!({"status": status});
    api.patch_status(
        CLUSTER_OPERATOR,
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok((true, version_changed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::CredentialsMode;
    use cco_api::{CredentialsRequestCondition, CredentialsRequestSpec, CredentialsRequestStatus};

    fn view(platform: &str, mode: CredentialsMode) -> ClusterView {
        ClusterView {
            mode,
            platform: platform.into(),
            service_account_issuer: None,
            infrastructure_name: None,
            cluster_id: None,
            aws_region: None,
            aws_resource_tags: vec![],
            infrastructure_resource_version: None,
            config_error: None,
        }
    }

    fn cr(kind: &str, provisioned: bool, cond: Option<&str>) -> Arc<CredentialsRequest> {
        let mut c = CredentialsRequest::new(
            "x",
            CredentialsRequestSpec {
                provider_spec: Some(serde_json::json!({"kind": kind})),
                ..Default::default()
            },
        );
        c.status = Some(CredentialsRequestStatus {
            provisioned,
            conditions: cond
                .map(|t| {
                    vec![CredentialsRequestCondition {
                        type_: t.into(),
                        status: "True".into(),
                        ..Default::default()
                    }]
                })
                .unwrap_or_default(),
            ..Default::default()
        });
        Arc::new(c)
    }

    fn clock() -> Clock {
        Clock {
            now: "2026-12-01T12:00:00Z".parse().expect("timestamp"),
            grace: FAILURE_GRACE,
        }
    }

    fn failing_since(kind: &str, provisioned: bool, since: &str) -> Arc<CredentialsRequest> {
        let mut c = (*cr(kind, provisioned, Some("CredentialsProvisionFailure"))).clone();
        if let Some(s) = c.status.as_mut() {
            s.conditions[0].last_transition_time = Some(since.into());
        }
        Arc::new(c)
    }

    /// As the reference's `degradedGracePeriod`: a failure counts toward Degraded only after five
    /// minutes, and the status is recomputed when it starts to count.
    #[test]
    fn a_failure_degrades_only_after_the_grace_period() {
        let v = view("AWS", CredentialsMode::Passthrough);
        let fresh = [failing_since(
            "AWSProviderSpec",
            true,
            "2026-12-01T11:58:00Z",
        )];
        let c = operator_conditions(&Effective::Passthrough, &v, &fresh, &clock());
        assert!(!find(&c, "Degraded").status, "{c:?}");
        // Provisioned and in sync: a failure within its grace period does not progress either.
        assert!(!find(&c, "Progressing").status, "{c:?}");
        assert_eq!(
            next_failure_deadline(&Effective::Passthrough, &v, &fresh, &clock()),
            Some("2026-12-01T12:03:00Z".parse().expect("timestamp"))
        );
        let old = [
            failing_since("AWSProviderSpec", true, "2026-12-01T11:54:59Z"),
            failing_since("AWSProviderSpec", true, "2026-12-01T11:58:00Z"),
        ];
        let c = operator_conditions(&Effective::Passthrough, &v, &old, &clock());
        let d = find(&c, "Degraded");
        assert_eq!((d.status, d.reason), (true, "CredentialsFailing"));
        assert_eq!(
            d.message,
            "1 of 2 credentials requests are failing to sync."
        );
        assert_eq!(
            next_failure_deadline(&Effective::Passthrough, &v, &old[..1], &clock()),
            None
        );
    }

    /// Progressing comes from unprovisioned requests and from spec changes not yet synced
    /// (`metadata.generation` ahead of `status.lastSyncGeneration`), as in the reference.
    #[test]
    fn a_spec_change_not_yet_synced_progresses() {
        let v = view("AWS", CredentialsMode::Passthrough);
        let mut c = (*cr("AWSProviderSpec", true, None)).clone();
        c.metadata.generation = Some(2);
        if let Some(s) = c.status.as_mut() {
            s.last_sync_generation = 1;
        }
        let conds = operator_conditions(
            &Effective::Passthrough,
            &v,
            &[Arc::new(c.clone())],
            &clock(),
        );
        let p = find(&conds, "Progressing");
        assert_eq!((p.status, p.reason), (true, "Reconciling"));
        assert_eq!(
            p.message,
            "1 of 1 credentials requests provisioned, 0 reporting errors."
        );
        if let Some(s) = c.status.as_mut() {
            s.last_sync_generation = 2;
        }
        let conds = operator_conditions(&Effective::Passthrough, &v, &[Arc::new(c)], &clock());
        assert!(!find(&conds, "Progressing").status);
    }

    fn find<'a>(v: &'a [CoCondition], t: &str) -> &'a CoCondition {
        v.iter().find(|c| c.type_ == t).expect("present")
    }

    #[test]
    fn all_well_when_every_request_is_provisioned() {
        let v = view("AWS", CredentialsMode::Passthrough);
        let c = operator_conditions(
            &Effective::Passthrough,
            &v,
            &[cr("AWSProviderSpec", true, None)],
            &clock(),
        );
        assert!(c.iter().all(|c| c.reason == "AsExpected"), "{c:?}");
        assert!(find(&c, "Available").status && !find(&c, "Degraded").status);
    }

    #[test]
    fn failures_degrade_and_unprovisioned_requests_progress() {
        let v = view("AWS", CredentialsMode::Passthrough);
        let crs = [
            cr(
                "AWSProviderSpec",
                false,
                Some("CredentialsProvisionFailure"),
            ),
            cr("AWSProviderSpec", false, None),
            cr(
                "GCPProviderSpec",
                false,
                Some("CredentialsProvisionFailure"),
            ),
        ];
        let c = operator_conditions(&Effective::Passthrough, &v, &crs, &clock());
        let d = find(&c, "Degraded");
        assert_eq!((d.status, d.reason), (true, "CredentialsFailing"));
        assert_eq!(
            d.message,
            "1 of 2 credentials requests are failing to sync."
        );
        let p = find(&c, "Progressing");
        assert_eq!(
            p.message,
            "0 of 2 credentials requests provisioned, 1 reporting errors."
        );
    }

    #[test]
    fn token_mode_is_reported_as_disabled_by_the_admin() {
        let v = view("AWS", CredentialsMode::Manual);
        let c = operator_conditions(&Effective::Token, &v, &[], &clock());
        let a = find(&c, "Available");
        assert_eq!((a.status, a.reason), (true, "OperatorDisabledByAdmin"));
        assert_eq!(a.message, "Credential minting is disabled by cluster admin");
    }

    /// The reference's `computeStatusConditions` returns only Upgradeable when the mode is Manual
    /// (token mode included): failing, unprovisioned or stale requests neither degrade nor
    /// progress the operator.
    #[test]
    fn manual_and_token_modes_take_no_degraded_or_progressing_from_requests() {
        let v = view("AWS", CredentialsMode::Manual);
        let crs = [
            cr(
                "AWSProviderSpec",
                false,
                Some("CredentialsProvisionFailure"),
            ),
            cr("AWSProviderSpec", false, Some("InsufficientCloudCreds")),
            cr("AWSProviderSpec", false, None),
            cr("AWSProviderSpec", true, Some("StaleCredentials")),
        ];
        for e in [Effective::Manual, Effective::Token] {
            let c = operator_conditions(&e, &v, &crs, &clock());
            assert_eq!(find(&c, "Available").reason, "OperatorDisabledByAdmin");
            for t in ["Degraded", "Progressing"] {
                let d = find(&c, t);
                assert!(!d.status, "{e:?}: {t} {d:?}");
                assert_eq!(d.reason, "AsExpected");
            }
            assert!(find(&c, "Upgradeable").status);
        }
    }

    fn co_status(version: &str, conds: &[(&str, bool, &str)], at: &str) -> ClusterOperatorStatus {
        ClusterOperatorStatus {
            conditions: conds
                .iter()
                .map(|(t, s, r)| ClusterOperatorCondition {
                    type_: t.to_string(),
                    status: if *s { "True" } else { "False" }.into(),
                    last_transition_time: at.into(),
                    reason: Some(r.to_string()),
                    message: Some(format!("{r} message")),
                })
                .collect(),
            versions: vec![OperandVersion {
                name: "operator".into(),
                version: version.into(),
            }],
            related_objects: vec![],
        }
    }

    /// The reference's status controller: a new operator version makes Progressing true
    /// (`VersionChanged`) on that write, and during a cluster upgrade a Degraded operator that is
    /// progressing reports `Degraded=False` (`UpgradeInProgress`) carrying the original reason.
    #[test]
    fn upgrades_progress_on_a_version_change_and_suppress_degraded() {
        let old = co_status(
            "4.17.0",
            &[
                ("Degraded", false, "AsExpected"),
                ("Progressing", false, "AsExpected"),
            ],
            "t0",
        );
        let mut new = co_status(
            "4.18.0",
            &[
                ("Degraded", true, "CredentialsFailing"),
                ("Progressing", false, "AsExpected"),
            ],
            "t1",
        );
        assert!(apply_upgrade_rules(&old, &mut new, true, "t2"));
        let p = &new.conditions[1];
        assert_eq!(
            (p.status.as_str(), p.reason.as_deref(), p.message.as_deref()),
            (
                "True",
                Some("VersionChanged"),
                Some("Operator version is updating")
            )
        );
        assert_eq!(p.last_transition_time, "t2");
        let d = &new.conditions[0];
        assert_eq!(
            (d.status.as_str(), d.reason.as_deref(), d.message.as_deref()),
            (
                "False",
                Some("UpgradeInProgress"),
                Some("Degraded=True suppressed during cluster upgrade (reason: CredentialsFailing, message: CredentialsFailing message)")
            )
        );
        // Degraded was already false: its transition time is kept.
        assert_eq!(d.last_transition_time, "t0");

        // Same version, cluster not upgrading: nothing changes.
        let old = co_status(
            "4.18.0",
            &[
                ("Degraded", true, "CredentialsFailing"),
                ("Progressing", true, "Reconciling"),
            ],
            "t0",
        );
        let mut same = old.clone();
        assert!(!apply_upgrade_rules(&old, &mut same, false, "t3"));
        assert_eq!(same, old);
        // Upgrading but this operator is done progressing: Degraded stays.
        let mut done = co_status(
            "4.18.0",
            &[
                ("Degraded", true, "CredentialsFailing"),
                ("Progressing", false, "AsExpected"),
            ],
            "t0",
        );
        apply_upgrade_rules(&old, &mut done, true, "t3");
        assert_eq!(done.conditions[0].status, "True");
    }

    #[test]
    fn related_objects_name_each_request_of_the_operator_namespace() {
        let mut mine = (*cr("AWSProviderSpec", true, None)).clone();
        mine.metadata.namespace = Some(OPERATOR_NAMESPACE.into());
        let mut other = mine.clone();
        other.metadata.namespace = Some("elsewhere".into());
        let r = request_related(&[Arc::new(mine), Arc::new(other)]);
        assert_eq!(
            r,
            vec![RelatedObject {
                group: "cloudcredential.openshift.io".into(),
                resource: "credentialsrequests".into(),
                namespace: Some(OPERATOR_NAMESPACE.into()),
                name: "x".into(),
            }]
        );
    }

    #[test]
    fn transition_times_survive_unchanged_statuses() {
        let v = view("AWS", CredentialsMode::Passthrough);
        let c = operator_conditions(&Effective::Passthrough, &v, &[], &clock());
        let first = merge_conditions(&[], &c, "t1");
        let second = merge_conditions(&first, &c, "t2");
        assert!(second.iter().all(|c| c.last_transition_time == "t1"));
    }

    #[test]
    fn metrics_count_clouds_and_true_conditions() {
        let crs = [
            cr(
                "AWSProviderSpec",
                false,
                Some("CredentialsProvisionFailure"),
            ),
            cr("GCPProviderSpec", true, None),
            cr("Metal3ProviderSpec", true, None),
        ];
        let (clouds, conds) = metric_counts(&crs, false);
        assert_eq!(clouds.get("aws"), Some(&1));
        assert_eq!(clouds.get("unknown"), Some(&1));
        assert_eq!(conds.get("CredentialsProvisionFailure"), Some(&1));
        assert_eq!(conds.get("StaleCredentials"), Some(&0));
    }
}
