//! The ClusterOperator `cloud-credential` and the aggregate metrics, both computed from the cached
//! CredentialsRequests.
//!
//! [`operator_conditions`] is pure: from the effective mode, the cluster view and the requests, it
//! derives Available, Progressing and Degraded with the reference operator's reasons (Upgradeable
//! is left at its default; the upgrade gate in [`crate::upgrade`] is merged in by the caller). [`merge_conditions`] keeps `lastTransitionTime` when a
//! status does not flip. [`write_cluster_operator`] creates the object if needed and patches status.

use std::collections::BTreeMap;
use std::sync::Arc;

use cco_api::{Cloud, ConditionType, CredentialsRequest};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;

use crate::cluster::{ClusterView, Effective};
use crate::conditions::FAILURE_TYPES;
use crate::openshift::{
    ClusterOperator, ClusterOperatorCondition, ClusterOperatorSpec, OperandVersion, RelatedObject,
};
use crate::plan::token_secret;

/// Name of the ClusterOperator.
pub const CLUSTER_OPERATOR: &str = "cloud-credential";
/// The operator's namespace (also holds the Lease).
pub const OPERATOR_NAMESPACE: &str = "openshift-cloud-credential-operator";

/// One ClusterOperator condition before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoCondition {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

fn is_true(cr: &CredentialsRequest, t: ConditionType) -> bool {
    cr.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == t.as_str() && c.status == "True")
    })
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
        .filter(|cr| FAILURE_TYPES.iter().any(|t| is_true(cr, *t)))
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
        if not_provisioned > 0 || failing > 0 {
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

/// Creates the ClusterOperator if missing and writes its status when it changed.
pub async fn write_cluster_operator(
    client: &Client,
    conditions: &[CoCondition],
    extra_related: &[RelatedObject],
    version: &str,
    now: &str,
) -> Result<bool, kube::Error> {
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
    status.related_objects = vec![
        RelatedObject {
            group: String::new(),
            resource: "namespaces".into(),
            namespace: None,
            name: OPERATOR_NAMESPACE.into(),
        },
        RelatedObject {
            group: cco_api::GROUP.into(),
            resource: "credentialsrequests".into(),
            namespace: None,
            name: String::new(),
        },
    ];
    status.related_objects.extend(extra_related.iter().cloned());
    if status == old {
        return Ok(false);
    }
    let patch = serde_json::json!({"status": status});
    api.patch_status(
        CLUSTER_OPERATOR,
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(true)
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
        let c = operator_conditions(&Effective::Passthrough, &v, &crs);
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
        let c = operator_conditions(&Effective::Token, &v, &[]);
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
            let c = operator_conditions(&e, &v, &crs);
            assert_eq!(find(&c, "Available").reason, "OperatorDisabledByAdmin");
            for t in ["Degraded", "Progressing"] {
                let d = find(&c, t);
                assert!(!d.status, "{e:?}: {t} {d:?}");
                assert_eq!(d.reason, "AsExpected");
            }
            assert!(find(&c, "Upgradeable").status);
        }
    }

    #[test]
    fn transition_times_survive_unchanged_statuses() {
        let v = view("AWS", CredentialsMode::Passthrough);
        let c = operator_conditions(&Effective::Passthrough, &v, &[]);
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
