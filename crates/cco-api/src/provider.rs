//! Provider specs: the cloud-specific part of a CredentialsRequest, selected by `kind`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why a `providerSpec` could not be decoded. Every variant names the field at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("field `{field}` is missing")]
    Missing { field: String },
    #[error("field `{field}`: {message}")]
    Invalid { field: String, message: String },
}

/// The cloud a provider spec belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cloud {
    Aws,
    Gcp,
    Azure,
    IbmCloud,
    PowerVs,
    VSphere,
    Nutanix,
    OpenStack,
    Ovirt,
    Kubevirt,
    AlibabaCloud,
}

impl Cloud {
    /// The `providerSpec.kind` string of this cloud.
    pub fn kind(self) -> &'static str {
        match self {
            Cloud::Aws => "AWSProviderSpec",
            Cloud::Gcp => "GCPProviderSpec",
            Cloud::Azure => "AzureProviderSpec",
            Cloud::IbmCloud => "IBMCloudProviderSpec",
            Cloud::PowerVs => "IBMCloudPowerVSProviderSpec",
            Cloud::VSphere => "VSphereProviderSpec",
            Cloud::Nutanix => "NutanixProviderSpec",
            Cloud::OpenStack => "OpenStackProviderSpec",
            Cloud::Ovirt => "OvirtProviderSpec",
            Cloud::Kubevirt => "KubevirtProviderSpec",
            Cloud::AlibabaCloud => "AlibabaCloudProviderSpec",
        }
    }

    /// The cloud whose `providerSpec.kind` is `kind`, if we know it.
    pub fn from_kind(kind: &str) -> Option<Cloud> {
        [
            Cloud::Aws,
            Cloud::Gcp,
            Cloud::Azure,
            Cloud::IbmCloud,
            Cloud::PowerVs,
            Cloud::VSphere,
            Cloud::Nutanix,
            Cloud::OpenStack,
            Cloud::Ovirt,
            Cloud::Kubevirt,
            Cloud::AlibabaCloud,
        ]
        .into_iter()
        .find(|c| c.kind() == kind)
    }
}

/// A decoded `providerSpec`.
#[derive(Clone, Debug, PartialEq)]
pub enum ProviderSpec {
    Aws(AwsProviderSpec),
    Gcp(GcpProviderSpec),
    Azure(AzureProviderSpec),
    IbmCloud(IbmCloudProviderSpec),
    PowerVs(IbmCloudProviderSpec),
    VSphere(VSphereProviderSpec),
    /// Clouds whose spec carries nothing but its kind (Nutanix, OpenStack, oVirt, KubeVirt, Alibaba).
    KindOnly(Cloud),
    /// A kind this code does not know; kept as it was.
    Unknown {
        kind: String,
        raw: serde_json::Value,
    },
}

impl ProviderSpec {
    /// Decodes a raw `providerSpec` object. Error fields are paths below `spec.providerSpec`.
    pub fn decode(raw: &serde_json::Value) -> Result<ProviderSpec, DecodeError> {
        let kind = match raw.get("kind") {
            None => {
                return Err(DecodeError::Missing {
                    field: "spec.providerSpec.kind".into(),
                })
            }
            Some(serde_json::Value::String(k)) => k.clone(),
            Some(_) => {
                return Err(DecodeError::Invalid {
                    field: "spec.providerSpec.kind".into(),
                    message: "must be a string".into(),
                })
            }
        };
        let Some(cloud) = Cloud::from_kind(&kind) else {
            return Ok(ProviderSpec::Unknown {
                kind,
                raw: raw.clone(),
            });
        };
        Ok(match cloud {
            Cloud::Aws => ProviderSpec::Aws(typed(raw)?),
            Cloud::Gcp => ProviderSpec::Gcp(typed(raw)?),
            Cloud::Azure => ProviderSpec::Azure(typed(raw)?),
            Cloud::IbmCloud => ProviderSpec::IbmCloud(typed(raw)?),
            Cloud::PowerVs => ProviderSpec::PowerVs(typed(raw)?),
            Cloud::VSphere => ProviderSpec::VSphere(typed(raw)?),
            other => ProviderSpec::KindOnly(other),
        })
    }

    /// The cloud of this spec, when known.
    pub fn cloud(&self) -> Option<Cloud> {
        match self {
            ProviderSpec::Aws(_) => Some(Cloud::Aws),
            ProviderSpec::Gcp(_) => Some(Cloud::Gcp),
            ProviderSpec::Azure(_) => Some(Cloud::Azure),
            ProviderSpec::IbmCloud(_) => Some(Cloud::IbmCloud),
            ProviderSpec::PowerVs(_) => Some(Cloud::PowerVs),
            ProviderSpec::VSphere(_) => Some(Cloud::VSphere),
            ProviderSpec::KindOnly(c) => Some(*c),
            ProviderSpec::Unknown { .. } => None,
        }
    }
}

fn typed<T: serde::de::DeserializeOwned>(raw: &serde_json::Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "spec.providerSpec".to_string()
        } else {
            format!("spec.providerSpec.{path}")
        };
        DecodeError::Invalid {
            field,
            message: e.into_inner().to_string(),
        }
    })
}

/// One IAM policy statement requested by an AWS request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementEntry {
    /// "Allow" or "Deny".
    pub effect: String,
    /// IAM actions, e.g. `s3:GetObject`.
    pub action: Vec<String>,
    /// The resource ARN pattern.
    pub resource: String,
    /// Condition block: operator → (key → value). Values may be bools, strings or lists.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policy_condition: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

/// `AWSProviderSpec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsProviderSpec {
    #[serde(default)]
    pub statement_entries: Vec<StatementEntry>,
    /// Set by the user on a short-term-token cluster: the role to assume.
    #[serde(
        default,
        rename = "stsIAMRoleARN",
        skip_serializing_if = "Option::is_none"
    )]
    pub sts_iam_role_arn: Option<String>,
}

/// `GCPProviderSpec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GcpProviderSpec {
    #[serde(default)]
    pub predefined_roles: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub skip_service_check: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

/// One Azure role binding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleBinding {
    pub role: String,
}

/// `AzureProviderSpec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureProviderSpec {
    #[serde(default)]
    pub role_bindings: Vec<RoleBinding>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub data_permissions: Vec<String>,
    #[serde(
        default,
        rename = "azureClientID",
        skip_serializing_if = "Option::is_none"
    )]
    pub azure_client_id: Option<String>,
    #[serde(
        default,
        rename = "azureTenantID",
        skip_serializing_if = "Option::is_none"
    )]
    pub azure_tenant_id: Option<String>,
    #[serde(
        default,
        rename = "azureSubscriptionID",
        skip_serializing_if = "Option::is_none"
    )]
    pub azure_subscription_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_region: Option<String>,
}

/// One attribute of an IBM Cloud access policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IbmAttribute {
    pub name: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

/// One IBM Cloud access policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IbmPolicy {
    #[serde(default)]
    pub attributes: Vec<IbmAttribute>,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// `IBMCloudProviderSpec` and `IBMCloudPowerVSProviderSpec` (same shape).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IbmCloudProviderSpec {
    #[serde(default)]
    pub policies: Vec<IbmPolicy>,
}

/// One vSphere permission set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VSpherePermission {
    #[serde(default)]
    pub privileges: Vec<String>,
}

/// `VSphereProviderSpec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VSphereProviderSpec {
    #[serde(default)]
    pub permissions: Vec<VSpherePermission>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_kind_is_kept_not_rejected() {
        let raw = json!({"kind": "Metal3ProviderSpec", "x": 1});
        let spec = ProviderSpec::decode(&raw).expect("decodes");
        assert_eq!(
            spec,
            ProviderSpec::Unknown {
                kind: "Metal3ProviderSpec".into(),
                raw
            }
        );
    }

    #[test]
    fn bad_statement_names_the_field() {
        let raw = json!({"kind": "AWSProviderSpec", "statementEntries": [{"effect": "Allow", "action": "s3:Get", "resource": "*"}]});
        let err = ProviderSpec::decode(&raw).expect_err("must fail");
        match err {
            DecodeError::Invalid { field, .. } => {
                assert_eq!(field, "spec.providerSpec.statementEntries[0].action")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn aws_conditions_keep_bools_strings_and_lists() {
        let raw = json!({"kind": "AWSProviderSpec", "statementEntries": [{"effect": "Allow", "action": ["kms:CreateGrant"], "resource": "*",
            "policyCondition": {"Bool": {"kms:GrantIsForAWSResource": true}, "StringLike": {"aws:x": ["a", "b"]}}}]});
        let ProviderSpec::Aws(spec) = ProviderSpec::decode(&raw).expect("decodes") else {
            panic!("not aws")
        };
        let c = &spec.statement_entries[0].policy_condition;
        assert_eq!(c["Bool"]["kms:GrantIsForAWSResource"], json!(true));
        assert_eq!(c["StringLike"]["aws:x"], json!(["a", "b"]));
    }
}
