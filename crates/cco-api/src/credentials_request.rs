//! The `CredentialsRequest` resource itself: spec, status and conditions.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::provider::{DecodeError, ProviderSpec};

/// A reference to the Secret a request's credential is written to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[serde(default)]
    pub name: String,
    /// Namespace of the Secret.
    #[serde(default)]
    pub namespace: String,
}

/// `spec` of a CredentialsRequest.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "cloudcredential.openshift.io",
    version = "v1",
    kind = "CredentialsRequest",
    namespaced,
    status = "CredentialsRequestStatus",
    schema = "derived"
)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsRequestSpec {
    /// Where the credential is written.
    pub secret_ref: SecretRef,
    /// Cloud-specific part; `kind` selects the cloud. Kept raw, see [`CredentialsRequestSpec::provider`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub provider_spec: Option<serde_json::Value>,
    /// Kubernetes ServiceAccounts that will use the credential (short-term token flows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_account_names: Vec<String>,
    /// Where the projected ServiceAccount token is mounted in the consuming pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_token_path: Option<String>,
}

impl CredentialsRequestSpec {
    /// Decodes `providerSpec`. A missing spec is an error; an unknown kind is not.
    pub fn provider(&self) -> Result<ProviderSpec, DecodeError> {
        match &self.provider_spec {
            None => Err(DecodeError::Missing {
                field: "spec.providerSpec".into(),
            }),
            Some(v) => ProviderSpec::decode(v),
        }
    }

    /// The `kind` of `providerSpec`, if present.
    pub fn provider_kind(&self) -> Option<&str> {
        self.provider_spec
            .as_ref()
            .and_then(|v| v.get("kind"))
            .and_then(|k| k.as_str())
    }
}

/// One condition on a CredentialsRequest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsRequestCondition {
    /// One of the [`ConditionType`] names.
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `status` of a CredentialsRequest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsRequestStatus {
    /// True once the target Secret holds a credential.
    #[serde(default)]
    pub provisioned: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_timestamp: Option<String>,
    #[serde(default)]
    pub last_sync_generation: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_cloud_creds_secret_resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_infrastructure_resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub provider_status: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<CredentialsRequestCondition>,
}

/// The condition types the operator sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConditionType {
    MissingTargetNamespace,
    InsufficientCloudCreds,
    CredentialsProvisionFailure,
    CredentialsDeprovisionFailure,
    Ignored,
    OrphanedCloudResource,
    StaleCredentials,
}

impl ConditionType {
    /// Every condition type, in a stable order.
    pub const ALL: [ConditionType; 7] = [
        ConditionType::MissingTargetNamespace,
        ConditionType::InsufficientCloudCreds,
        ConditionType::CredentialsProvisionFailure,
        ConditionType::CredentialsDeprovisionFailure,
        ConditionType::Ignored,
        ConditionType::OrphanedCloudResource,
        ConditionType::StaleCredentials,
    ];

    /// The name as it appears in `status.conditions[].type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::MissingTargetNamespace => "MissingTargetNamespace",
            ConditionType::InsufficientCloudCreds => "InsufficientCloudCreds",
            ConditionType::CredentialsProvisionFailure => "CredentialsProvisionFailure",
            ConditionType::CredentialsDeprovisionFailure => "CredentialsDeprovisionFailure",
            ConditionType::Ignored => "Ignored",
            ConditionType::OrphanedCloudResource => "OrphanedCloudResource",
            ConditionType::StaleCredentials => "StaleCredentials",
        }
    }
}

fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
