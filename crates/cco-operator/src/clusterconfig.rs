//! Typed views of the cluster objects read by the upgrade gate and the pod identity webhook
//! controller (in addition to those of [`crate::openshift`]):
//! - `ClusterVersion` (`config.openshift.io/v1`, `version`): the version the cluster last completed;
//! - `APIServer` (`config.openshift.io/v1`, `cluster`): the cluster's TLS security profile.
//!
//! As in [`crate::openshift`], only the fields used are typed and the rest is kept in `rest` maps.

use std::collections::BTreeMap;

use kube::CustomResource;
use serde::{Deserialize, Serialize};

type Rest = BTreeMap<String, serde_json::Value>;

/// `spec` of ClusterVersion (untyped: only `status.history` is read).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "config.openshift.io",
    version = "v1",
    kind = "ClusterVersion",
    status = "ClusterVersionStatus",
    schema = "disabled"
)]
pub struct ClusterVersionSpec {
    #[serde(flatten)]
    pub rest: Rest,
}

/// `status` of ClusterVersion.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterVersionStatus {
    /// Most recent first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub history: Vec<UpdateHistory>,
    #[serde(flatten)]
    pub rest: Rest,
}

/// One entry of `status.history`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateHistory {
    /// `Completed` or `Partial`.
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub version: String,
    #[serde(flatten)]
    pub rest: Rest,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl ClusterVersion {
    /// The most recent completed version (the version the cluster runs), if any.
    pub fn completed_version(&self) -> Option<&str> {
        self.status
            .as_ref()?
            .history
            .iter()
            .find(|h| h.state == "Completed")
            .map(|h| h.version.as_str())
    }

    /// Whether the cluster is being upgraded: the ClusterVersion's `Progressing` condition is true.
    pub fn is_progressing(&self) -> bool {
        self.status
            .as_ref()
            .and_then(|s| s.rest.get("conditions"))
            .and_then(|c| c.as_array())
            .is_some_and(|conds| {
                conds
                    .iter()
                    .any(|c| c["type"] == "Progressing" && c["status"] == "True")
            })
    }

    /// `spec.clusterID`, the id older clusters tag their cloud resources with.
    pub fn cluster_id(&self) -> Option<&str> {
        self.spec
            .rest
            .get("clusterID")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    }
}

/// `spec` of APIServer.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "config.openshift.io",
    version = "v1",
    kind = "APIServer",
    plural = "apiservers",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct APIServerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_security_profile: Option<TlsSecurityProfile>,
    /// `""` (no opinion), `LegacyAdheringComponentsOnly` or `StrictAllComponents` (newer API only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_adherence: Option<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

/// `spec.tlsSecurityProfile`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsSecurityProfile {
    /// `Old`, `Intermediate`, `Modern` or `Custom`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<TlsProfileSpec>,
    #[serde(flatten)]
    pub rest: Rest,
}

/// A TLS profile: ciphers (OpenSSL names) and minimum version (`VersionTLS12`, …).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsProfileSpec {
    #[serde(default, deserialize_with = "null_as_default")]
    pub ciphers: Vec<String>,
    #[serde(rename = "minTLSVersion", default)]
    pub min_tls_version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_version_is_the_newest_completed_entry() {
        let cv: ClusterVersion = serde_json::from_value(serde_json::json!({
            "apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion",
            "metadata": {"name": "version"}, "spec": {"clusterID": "x"},
            "status": {"history": [
                {"state": "Partial", "version": "4.16.0"},
                {"state": "Completed", "version": "4.15.3"},
                {"state": "Completed", "version": "4.14.1"}
            ]}
        }))
        .expect("parses");
        assert_eq!(cv.completed_version(), Some("4.15.3"));
    }

    #[test]
    fn custom_tls_profile_parses() {
        let a: APIServer = serde_json::from_value(serde_json::json!({
            "apiVersion": "config.openshift.io/v1", "kind": "APIServer",
            "metadata": {"name": "cluster"},
            "spec": {"tlsSecurityProfile": {"type": "Custom", "custom": {
                "ciphers": ["ECDHE-RSA-AES128-GCM-SHA256"], "minTLSVersion": "VersionTLS12"}}}
        }))
        .expect("parses");
        let p = a.spec.tls_security_profile.expect("profile");
        assert_eq!(p.type_.as_deref(), Some("Custom"));
        assert_eq!(
            p.custom.expect("custom").min_tls_version,
            "VersionTLS12".to_string()
        );
    }
}
