//! Minimal typed views of the OpenShift cluster-configuration objects the operator reads or writes.
//!
//! Only the fields the operator uses are typed; everything else is kept in `rest` maps so that an
//! object read and written back loses nothing. The upstream CRDs live in `shared/corpus/crds`:
//! - `CloudCredential` (`operator.openshift.io/v1`, cluster-scoped, `cluster`): the credentials mode;
//! - `Infrastructure` (`config.openshift.io/v1`, `cluster`): the platform, region, infra name, tags;
//! - `Authentication` (`config.openshift.io/v1`, `cluster`): the service-account issuer;
//! - `ClusterOperator` (`config.openshift.io/v1`, `cloud-credential`): the operator's own status.

use std::collections::BTreeMap;

use kube::CustomResource;
use serde::{Deserialize, Serialize};

type Rest = BTreeMap<String, serde_json::Value>;

/// `spec` of CloudCredential.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "operator.openshift.io",
    version = "v1",
    kind = "CloudCredential",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct CloudCredentialSpec {
    /// "", "Mint", "Passthrough" or "Manual".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_mode: Option<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

/// `spec` of Infrastructure (untyped: the operator reads only `status`).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "config.openshift.io",
    version = "v1",
    kind = "Infrastructure",
    status = "InfrastructureStatus",
    schema = "disabled"
)]
pub struct InfrastructureSpec {
    #[serde(flatten)]
    pub rest: Rest,
}

/// `status` of Infrastructure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InfrastructureStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_name: Option<String>,
    /// Deprecated top-level platform; used when `platformStatus` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_status: Option<PlatformStatus>,
    #[serde(flatten)]
    pub rest: Rest,
}

/// `status.platformStatus` of Infrastructure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformStatus {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsPlatformStatus>,
    #[serde(flatten)]
    pub rest: Rest,
}

/// `status.platformStatus.aws`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsPlatformStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_tags: Vec<ResourceTag>,
    #[serde(flatten)]
    pub rest: Rest,
}

/// One user-defined AWS resource tag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceTag {
    pub key: String,
    pub value: String,
}

/// `spec` of Authentication.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "config.openshift.io",
    version = "v1",
    kind = "Authentication",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_issuer: Option<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

/// `spec` of ClusterOperator (empty by design).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "config.openshift.io",
    version = "v1",
    kind = "ClusterOperator",
    status = "ClusterOperatorStatus",
    schema = "disabled"
)]
pub struct ClusterOperatorSpec {
    #[serde(flatten)]
    pub rest: Rest,
}

/// `status` of ClusterOperator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOperatorStatus {
    #[serde(default)]
    pub conditions: Vec<ClusterOperatorCondition>,
    #[serde(default)]
    pub versions: Vec<OperandVersion>,
    #[serde(default)]
    pub related_objects: Vec<RelatedObject>,
}

/// One ClusterOperator condition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOperatorCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default)]
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An operand version reported on the ClusterOperator.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperandVersion {
    pub name: String,
    pub version: String,
}

/// A related object reported on the ClusterOperator (for must-gather).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelatedObject {
    pub group: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}
