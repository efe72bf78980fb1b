//! Secret contents the operator writes: passthrough copies of a root credential, and the
//! short-term-token formats of a Manual cluster with a service-account issuer.
//!
//! The data model is a flat map of Secret keys to bytes ([`SecretData`]), exactly what lands in
//! `Secret.data`. Its `Debug` prints key names only, so a plan or an error that carries it can be
//! logged without leaking a credential. Every function here is pure; which keys a cloud needs is
//! documented beside each one (seeds/002 for passthrough, SPEC §3–5 for token formats).

use std::collections::BTreeMap;
use std::fmt;

use cco_api::Cloud;
use serde_json::json;

/// `Secret.data`: key → bytes. `Debug` shows keys, never values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretData(pub BTreeMap<String, Vec<u8>>);

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl SecretData {
    /// Builds from string values.
    pub fn from_strings<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> SecretData {
        SecretData(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into_bytes()))
                .collect(),
        )
    }

    /// The value of `key` as UTF-8, if present and valid.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// Why a root credential cannot be passed through.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PassthroughError {
    #[error("root credential is missing key `{key}`")]
    MissingKey { key: String },
    #[error("root credential key `{key}` is invalid: {message}")]
    Invalid { key: String, message: String },
    #[error("{cloud} has no passthrough mode; use Manual mode")]
    Unsupported { cloud: String },
}

/// `aws_access_key_id` / `aws_secret_access_key` (seeds/002).
pub const AWS_ACCESS_KEY_ID: &str = "aws_access_key_id";
pub const AWS_SECRET_ACCESS_KEY: &str = "aws_secret_access_key";
/// The shared-credentials-file key every AWS secret also carries.
pub const AWS_CREDENTIALS: &str = "credentials";
/// GCP service-account key file.
pub const GCP_SERVICE_ACCOUNT_JSON: &str = "service_account.json";
/// Azure keys of the long-term format (seeds/002).
pub const AZURE_KEYS: [&str; 7] = [
    "azure_subscription_id",
    "azure_client_id",
    "azure_client_secret",
    "azure_tenant_id",
    "azure_resource_prefix",
    "azure_resourcegroup",
    "azure_region",
];
/// Azure keys a passthrough copy cannot do without.
pub const AZURE_REQUIRED: [&str; 4] = [
    "azure_subscription_id",
    "azure_client_id",
    "azure_client_secret",
    "azure_tenant_id",
];
/// OpenStack `clouds.yaml` (required) and `cacert` (optional): what the reference passes through.
pub const OPENSTACK_CLOUDS_YAML: &str = "clouds.yaml";
pub const OPENSTACK_CACERT: &str = "cacert";
/// oVirt keys, all required.
pub const OVIRT_KEYS: [&str; 5] = [
    "ovirt_url",
    "ovirt_username",
    "ovirt_password",
    "ovirt_insecure",
    "ovirt_ca_bundle",
];
/// KubeVirt infra-cluster kubeconfig.
pub const KUBEVIRT_KUBECONFIG: &str = "kubeconfig";

/// The root credential Secret in `kube-system` for a cloud, if it has one.
pub fn root_secret_name(cloud: Cloud) -> Option<&'static str> {
    Some(match cloud {
        Cloud::Aws => "aws-creds",
        Cloud::Gcp => "gcp-credentials",
        Cloud::Azure => "azure-credentials",
        Cloud::OpenStack => "openstack-credentials",
        Cloud::VSphere => "vsphere-creds",
        Cloud::Ovirt => "ovirt-credentials",
        Cloud::Kubevirt => "kubevirt-credentials",
        _ => return None,
    })
}

/// The AWS shared-credentials file for a long-term key (the `credentials` key).
pub fn aws_static_credentials_file(access_key_id: &str, secret_access_key: &str) -> String {
    format!(
        "[default]\n{AWS_ACCESS_KEY_ID} = {access_key_id}\n{AWS_SECRET_ACCESS_KEY} = {secret_access_key}"
    )
}

/// An AWS long-term secret: both keys plus the `credentials` file.
pub fn aws_access_key_data(access_key_id: &str, secret_access_key: &str) -> SecretData {
    SecretData::from_strings([
        (AWS_ACCESS_KEY_ID, access_key_id.to_string()),
        (AWS_SECRET_ACCESS_KEY, secret_access_key.to_string()),
        (
            AWS_CREDENTIALS,
            aws_static_credentials_file(access_key_id, secret_access_key),
        ),
    ])
}

fn required<'a>(root: &'a SecretData, key: &str) -> Result<&'a [u8], PassthroughError> {
    match root.0.get(key) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(PassthroughError::MissingKey {
            key: key.to_string(),
        }),
    }
}

fn utf8<'a>(root: &'a SecretData, key: &str) -> Result<&'a str, PassthroughError> {
    std::str::from_utf8(required(root, key)?).map_err(|_| PassthroughError::Invalid {
        key: key.to_string(),
        message: "not UTF-8".into(),
    })
}

/// The target Secret's data when `root` (the root credential of `cloud`) is passed through.
pub fn passthrough_data(cloud: Cloud, root: &SecretData) -> Result<SecretData, PassthroughError> {
    let mut out = BTreeMap::new();
    let copy = |out: &mut BTreeMap<String, Vec<u8>>, key: &str| {
        if let Some(v) = root.0.get(key) {
            out.insert(key.to_string(), v.clone());
        }
    };
    match cloud {
        Cloud::Aws => {
            let id = utf8(root, AWS_ACCESS_KEY_ID)?;
            let secret = utf8(root, AWS_SECRET_ACCESS_KEY)?;
            return Ok(aws_access_key_data(id, secret));
        }
        Cloud::Gcp => {
            let raw = utf8(root, GCP_SERVICE_ACCOUNT_JSON)?;
            serde_json::from_str::<serde_json::Value>(raw).map_err(|e| {
                PassthroughError::Invalid {
                    key: GCP_SERVICE_ACCOUNT_JSON.into(),
                    message: format!("not JSON: line {} column {}", e.line(), e.column()),
                }
            })?;
            copy(&mut out, GCP_SERVICE_ACCOUNT_JSON);
        }
        Cloud::Azure => {
            for k in AZURE_REQUIRED {
                required(root, k)?;
            }
            for k in AZURE_KEYS {
                copy(&mut out, k);
            }
        }
        Cloud::OpenStack => {
            required(root, OPENSTACK_CLOUDS_YAML)?;
            copy(&mut out, OPENSTACK_CLOUDS_YAML);
            copy(&mut out, OPENSTACK_CACERT);
        }
        Cloud::VSphere => {
            // Keys are `<vcenter>.username` / `<vcenter>.password`, one pair per vCenter.
            let users: Vec<&String> = root.0.keys().filter(|k| k.ends_with(".username")).collect();
            if users.is_empty() {
                return Err(PassthroughError::MissingKey {
                    key: "<vcenter>.username".into(),
                });
            }
            for u in users {
                let server = u.trim_end_matches(".username");
                required(root, &format!("{server}.password"))?;
            }
            out = root.0.clone();
        }
        Cloud::Ovirt => {
            for k in OVIRT_KEYS {
                if k != "ovirt_ca_bundle" {
                    required(root, k)?;
                }
            }
            let insecure = utf8(root, "ovirt_insecure")?;
            if insecure.parse::<bool>().is_err() {
                return Err(PassthroughError::Invalid {
                    key: "ovirt_insecure".into(),
                    message: "must be true or false".into(),
                });
            }
            for k in OVIRT_KEYS {
                copy(&mut out, k);
            }
            out.entry("ovirt_ca_bundle".into()).or_default();
        }
        Cloud::Kubevirt => {
            required(root, KUBEVIRT_KUBECONFIG)?;
            copy(&mut out, KUBEVIRT_KUBECONFIG);
        }
        other => {
            return Err(PassthroughError::Unsupported {
                cloud: format!("{other:?}"),
            })
        }
    }
    Ok(SecretData(out))
}

/// AWS short-term-token Secret: `credentials` assuming `role_arn` with the token at `token_path`.
pub fn aws_sts_data(role_arn: &str, token_path: &str) -> SecretData {
    SecretData::from_strings([(
        AWS_CREDENTIALS,
        crate::aws::credentials_file(role_arn, token_path),
    )])
}

/// The GCP `external_account` credential configuration (seeds/003).
pub fn gcp_external_account(
    audience: &str,
    service_account_email: &str,
    token_path: &str,
) -> String {
    let v = json!({
        "type": "external_account",
        "audience": audience,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "service_account_impersonation_url": format!(
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{service_account_email}:generateAccessToken"
        ),
        "credential_source": {"file": token_path, "format": {"type": "text"}}
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// GCP short-term-token Secret: `service_account.json` holding the external account.
pub fn gcp_workload_identity_data(
    audience: &str,
    service_account_email: &str,
    token_path: &str,
) -> SecretData {
    SecretData::from_strings([(
        GCP_SERVICE_ACCOUNT_JSON,
        gcp_external_account(audience, service_account_email, token_path),
    )])
}

/// Azure workload-identity Secret (SPEC §5).
pub fn azure_workload_identity_data(
    client_id: &str,
    tenant_id: &str,
    region: &str,
    subscription_id: &str,
    token_path: &str,
) -> SecretData {
    SecretData::from_strings([
        ("azure_client_id", client_id.to_string()),
        ("azure_tenant_id", tenant_id.to_string()),
        ("azure_region", region.to_string()),
        ("azure_subscription_id", subscription_id.to_string()),
        ("azure_federated_token_file", token_path.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(pairs: &[(&str, &str)]) -> SecretData {
        SecretData::from_strings(pairs.iter().map(|(k, v)| (*k, v.to_string())))
    }

    #[test]
    fn aws_passthrough_adds_the_credentials_file() {
        let d = passthrough_data(
            Cloud::Aws,
            &root(&[
                (AWS_ACCESS_KEY_ID, "AKID"),
                (AWS_SECRET_ACCESS_KEY, "SECRET"),
            ]),
        )
        .expect("ok");
        assert_eq!(d.get_str(AWS_ACCESS_KEY_ID), Some("AKID"));
        assert_eq!(
            d.get_str(AWS_CREDENTIALS),
            Some("[default]\naws_access_key_id = AKID\naws_secret_access_key = SECRET")
        );
    }

    #[test]
    fn passthrough_names_the_missing_key() {
        let e = passthrough_data(Cloud::Aws, &root(&[(AWS_ACCESS_KEY_ID, "x")])).expect_err("bad");
        assert_eq!(
            e,
            PassthroughError::MissingKey {
                key: AWS_SECRET_ACCESS_KEY.into()
            }
        );
        let e =
            passthrough_data(Cloud::Azure, &root(&[("azure_client_id", "x")])).expect_err("bad");
        assert!(matches!(e, PassthroughError::MissingKey { .. }));
    }

    #[test]
    fn vsphere_copies_every_vcenter_pair() {
        let r = root(&[
            ("vc1.example.com.username", "u"),
            ("vc1.example.com.password", "p"),
        ]);
        assert_eq!(passthrough_data(Cloud::VSphere, &r).expect("ok"), r);
        let bad = root(&[("vc1.example.com.username", "u")]);
        assert!(passthrough_data(Cloud::VSphere, &bad).is_err());
    }

    #[test]
    fn ovirt_requires_a_boolean_insecure_flag() {
        let mut pairs = vec![
            ("ovirt_url", "https://e/ovirt-engine/api"),
            ("ovirt_username", "admin@internal"),
            ("ovirt_password", "pw"),
            ("ovirt_insecure", "maybe"),
        ];
        assert!(passthrough_data(Cloud::Ovirt, &root(&pairs)).is_err());
        pairs[3] = ("ovirt_insecure", "false");
        let d = passthrough_data(Cloud::Ovirt, &root(&pairs)).expect("ok");
        assert_eq!(d.0.len(), 5);
    }

    #[test]
    fn nutanix_has_no_passthrough() {
        assert!(matches!(
            passthrough_data(Cloud::Nutanix, &SecretData::default()),
            Err(PassthroughError::Unsupported { .. })
        ));
    }

    #[test]
    fn gcp_external_account_matches_the_documented_shape() {
        let s = gcp_external_account(
            "//iam.googleapis.com/x",
            "sa@p.iam.gserviceaccount.com",
            "/t",
        );
        let v: serde_json::Value = serde_json::from_str(&s).expect("json");
        assert_eq!(v["type"], "external_account");
        assert_eq!(v["credential_source"]["file"], "/t");
        assert_eq!(v["credential_source"]["format"]["type"], "text");
        assert_eq!(
            v["service_account_impersonation_url"],
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken"
        );
    }

    #[test]
    fn debug_never_shows_values() {
        let d = aws_access_key_data("AKIDVALUE", "TOPSECRET");
        let s = format!("{d:?}");
        assert!(!s.contains("TOPSECRET") && !s.contains("AKIDVALUE"), "{s}");
        assert!(s.contains("aws_secret_access_key"));
    }
}
