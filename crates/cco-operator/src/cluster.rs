//! The cluster-wide inputs of every decision, as plain data: the configured credentials mode, the
//! platform, the service-account issuer and the root credential.
//!
//! [`ClusterView`] is built from the cached `CloudCredential`, `Infrastructure` and `Authentication`
//! objects; [`RootSecret`] from the cached root Secret in `kube-system`. [`effective_mode`] turns them
//! into the mode requests are processed in, and [`desired_root_annotation`] into the value of the
//! root Secret's `cloudcredential.openshift.io/mode` annotation. All functions here are pure.

use cco_api::Cloud;
use cco_core::secrets::SecretData;

use crate::openshift::{Authentication, CloudCredential, Infrastructure};

/// Namespace of the root credentials.
pub const ROOT_SECRET_NAMESPACE: &str = "kube-system";
/// Annotation on the root Secret naming the mode its permissions allow.
pub const MODE_ANNOTATION: &str = "cloudcredential.openshift.io/mode";
/// Annotation values.
pub const ANNOTATION_MINT: &str = "mint";
pub const ANNOTATION_PASSTHROUGH: &str = "passthrough";
pub const ANNOTATION_INSUFFICIENT: &str = "insufficient";

/// `spec.credentialsMode` of CloudCredential `cluster`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialsMode {
    /// "": mint when the root credential can, else passthrough.
    Default,
    Mint,
    Passthrough,
    Manual,
}

impl CredentialsMode {
    /// Parses the field; unknown values are an error (the upstream CRD's enum forbids them).
    pub fn parse(s: Option<&str>) -> Result<CredentialsMode, String> {
        match s.unwrap_or("") {
            "" => Ok(CredentialsMode::Default),
            "Mint" => Ok(CredentialsMode::Mint),
            "Passthrough" => Ok(CredentialsMode::Passthrough),
            "Manual" => Ok(CredentialsMode::Manual),
            other => Err(format!("unknown credentialsMode {other:?}")),
        }
    }
}

/// The cloud an Infrastructure platform type runs on, if it is one with CredentialsRequests.
pub fn platform_cloud(platform: &str) -> Option<Cloud> {
    Some(match platform {
        "AWS" => Cloud::Aws,
        "GCP" => Cloud::Gcp,
        "Azure" => Cloud::Azure,
        "OpenStack" => Cloud::OpenStack,
        "VSphere" => Cloud::VSphere,
        "oVirt" | "Ovirt" => Cloud::Ovirt,
        "KubeVirt" => Cloud::Kubevirt,
        "IBMCloud" => Cloud::IbmCloud,
        "PowerVS" => Cloud::PowerVs,
        "Nutanix" => Cloud::Nutanix,
        "AlibabaCloud" => Cloud::AlibabaCloud,
        _ => return None,
    })
}

/// Whether the operator can pass a root credential through on this cloud.
pub fn supports_passthrough(cloud: Cloud) -> bool {
    matches!(
        cloud,
        Cloud::Aws
            | Cloud::Gcp
            | Cloud::Azure
            | Cloud::OpenStack
            | Cloud::VSphere
            | Cloud::Ovirt
            | Cloud::Kubevirt
    )
}

/// Cluster-wide configuration, read from the cached config objects.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterView {
    pub mode: CredentialsMode,
    /// Infrastructure `status.platformStatus.type` (or `status.platform`); "" when unknown.
    pub platform: String,
    pub service_account_issuer: Option<String>,
    pub infrastructure_name: Option<String>,
    /// ClusterVersion `spec.clusterID`, read only when there is no infrastructure name (clusters
    /// from before it existed tag minted users `openshiftClusterID=<id>` instead).
    pub cluster_id: Option<String>,
    pub aws_region: Option<String>,
    pub aws_resource_tags: Vec<(String, String)>,
    /// Infrastructure `cluster`'s resourceVersion: a request synced under another one is synced
    /// again (resource tags may have changed), as the reference's
    /// `lastSyncInfrastructureResourceVersion`.
    pub infrastructure_resource_version: Option<String>,
    /// Why the configuration cannot be used (missing object, bad mode), if so.
    pub config_error: Option<String>,
}

impl ClusterView {
    /// Builds the view from the three `cluster` objects (any may be missing).
    pub fn from_objects(
        cc: Option<&CloudCredential>,
        infra: Option<&Infrastructure>,
        auth: Option<&Authentication>,
    ) -> ClusterView {
        let mut config_error = None;
        let mode = match cc {
            None => {
                config_error = Some("CloudCredential \"cluster\" not found".to_string());
                CredentialsMode::Default
            }
            Some(cc) => {
                CredentialsMode::parse(cc.spec.credentials_mode.as_deref()).unwrap_or_else(|e| {
                    config_error = Some(e);
                    CredentialsMode::Default
                })
            }
        };
        let status = infra.and_then(|i| i.status.as_ref());
        let platform = status
            .and_then(|s| {
                s.platform_status
                    .as_ref()
                    .and_then(|p| p.type_.clone())
                    .or_else(|| s.platform.clone())
            })
            .unwrap_or_default();
        if infra.is_none() && config_error.is_none() {
            config_error = Some("Infrastructure \"cluster\" not found".to_string());
        }
        let aws = status
            .and_then(|s| s.platform_status.as_ref())
            .and_then(|p| p.aws.as_ref());
        ClusterView {
            mode,
            platform,
            service_account_issuer: auth
                .and_then(|a| a.spec.service_account_issuer.clone())
                .filter(|s| !s.is_empty()),
            infrastructure_name: status
                .and_then(|s| s.infrastructure_name.clone())
                .filter(|s| !s.is_empty()),
            cluster_id: None,
            aws_region: aws.and_then(|a| a.region.clone()).filter(|s| !s.is_empty()),
            aws_resource_tags: aws
                .map(|a| {
                    a.resource_tags
                        .iter()
                        .map(|t| (t.key.clone(), t.value.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            infrastructure_resource_version: infra
                .and_then(|i| i.metadata.resource_version.clone()),
            config_error,
        }
    }

    /// The cloud the cluster runs on.
    pub fn cloud(&self) -> Option<Cloud> {
        platform_cloud(&self.platform)
    }

    /// Manual mode with a service-account issuer: short-term tokens for components.
    pub fn token_mode(&self) -> bool {
        self.mode == CredentialsMode::Manual && self.service_account_issuer.is_some()
    }

    /// The root Secret's name on this cluster's cloud.
    pub fn root_secret_name(&self) -> Option<&'static str> {
        self.cloud().and_then(cco_core::secrets::root_secret_name)
    }

    /// AWS region for IAM calls.
    pub fn region(&self) -> String {
        self.aws_region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_string())
    }
}

/// The cached root Secret.
#[derive(Clone, Debug, PartialEq)]
pub struct RootSecret {
    pub name: String,
    pub resource_version: String,
    pub data: SecretData,
    /// Value of [`MODE_ANNOTATION`].
    pub mode_annotation: Option<String>,
}

impl RootSecret {
    /// A short, irreversible fingerprint of the credential (not of annotations), so that a change of
    /// annotation alone never counts as a new credential.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for (k, v) in &self.data.0 {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v);
            h.update([0]);
        }
        hex::encode(&h.finalize()[..8])
    }
}

/// The mode requests are processed in, after resolving the default mode and short-term tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effective {
    /// Manual without an issuer: requests are left alone.
    Manual,
    /// Manual with an issuer: requests carrying the cloud's token fields get their Secret.
    Token,
    Mint,
    Passthrough,
    /// Default mode and the root credential can neither mint nor be passed through.
    Insufficient,
    /// Default mode and the root credential has not been classified yet.
    Undetermined,
}

impl Effective {
    /// The `cco_credentials_mode` label for this mode (upstream's names).
    pub fn metric_label(&self, root_present: bool) -> &'static str {
        match self {
            Effective::Manual => "manual",
            Effective::Token => "manualpodidentity",
            Effective::Mint if !root_present => "credsremoved",
            Effective::Mint => "mint",
            Effective::Passthrough => "passthrough",
            Effective::Insufficient => "degraded",
            Effective::Undetermined => "unknown",
        }
    }
}

/// Resolves the processing mode from the configured mode and the root Secret's annotation.
pub fn effective_mode(view: &ClusterView, root: Option<&RootSecret>) -> Effective {
    match view.mode {
        CredentialsMode::Manual if view.token_mode() => Effective::Token,
        CredentialsMode::Manual => Effective::Manual,
        CredentialsMode::Mint => Effective::Mint,
        CredentialsMode::Passthrough => Effective::Passthrough,
        CredentialsMode::Default => match view.cloud() {
            Some(Cloud::Aws) | Some(Cloud::Gcp) => match root {
                // Mint mode with the root credential removed (seeds/002).
                None => Effective::Mint,
                Some(r) => match r.mode_annotation.as_deref() {
                    Some(ANNOTATION_MINT) => Effective::Mint,
                    Some(ANNOTATION_PASSTHROUGH) => Effective::Passthrough,
                    Some(ANNOTATION_INSUFFICIENT) => Effective::Insufficient,
                    _ => Effective::Undetermined,
                },
            },
            _ => Effective::Passthrough,
        },
    }
}

/// What default-mode detection found out about the root credential's permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    CanMint,
    CanPassthrough,
    Insufficient,
}

/// The value the root Secret's mode annotation should have, or `None` to leave it alone.
/// `capability` is only consulted in the default mode on AWS and GCP (where it is detected).
pub fn desired_root_annotation(
    view: &ClusterView,
    capability: Option<Capability>,
) -> Option<&'static str> {
    match view.mode {
        CredentialsMode::Manual => None,
        CredentialsMode::Mint => Some(ANNOTATION_MINT),
        CredentialsMode::Passthrough => Some(ANNOTATION_PASSTHROUGH),
        CredentialsMode::Default => match view.cloud() {
            Some(Cloud::Aws) | Some(Cloud::Gcp) => capability.map(|c| match c {
                Capability::CanMint => ANNOTATION_MINT,
                Capability::CanPassthrough => ANNOTATION_PASSTHROUGH,
                Capability::Insufficient => ANNOTATION_INSUFFICIENT,
            }),
            Some(c) if supports_passthrough(c) => Some(ANNOTATION_PASSTHROUGH),
            _ => None,
        },
    }
}

/// Classifies simulation results: every mint action allowed → mint; else every action the requests
/// need allowed → passthrough; else insufficient.
pub fn classify(
    mint_results: &[(String, bool)],
    passthrough_results: &[(String, bool)],
) -> Capability {
    let all = |r: &[(String, bool)]| r.iter().all(|(_, ok)| *ok);
    if !mint_results.is_empty() && all(mint_results) {
        Capability::CanMint
    } else if all(passthrough_results) {
        Capability::CanPassthrough
    } else {
        Capability::Insufficient
    }
}

/// IAM actions mint mode needs (seeds/002, "Required AWS permissions").
pub const AWS_MINT_ACTIONS: [&str; 11] = [
    "iam:CreateAccessKey",
    "iam:CreateUser",
    "iam:DeleteAccessKey",
    "iam:DeleteUser",
    "iam:DeleteUserPolicy",
    "iam:GetUser",
    "iam:GetUserPolicy",
    "iam:ListAccessKeys",
    "iam:PutUserPolicy",
    "iam:TagUser",
    "iam:SimulatePrincipalPolicy",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openshift::{
        AuthenticationSpec, CloudCredentialSpec, InfrastructureSpec, InfrastructureStatus,
        PlatformStatus,
    };

    fn view(mode: &str, platform: &str, issuer: Option<&str>) -> ClusterView {
        let cc = CloudCredential::new(
            "cluster",
            CloudCredentialSpec {
                credentials_mode: Some(mode.to_string()),
                ..Default::default()
            },
        );
        let mut infra = Infrastructure::new("cluster", InfrastructureSpec::default());
        infra.status = Some(InfrastructureStatus {
            platform_status: Some(PlatformStatus {
                type_: Some(platform.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        });
        let auth = Authentication::new(
            "cluster",
            AuthenticationSpec {
                service_account_issuer: issuer.map(str::to_string),
                ..Default::default()
            },
        );
        ClusterView::from_objects(Some(&cc), Some(&infra), Some(&auth))
    }

    fn root(annotation: Option<&str>) -> RootSecret {
        RootSecret {
            name: "aws-creds".into(),
            resource_version: "1".into(),
            data: SecretData::default(),
            mode_annotation: annotation.map(str::to_string),
        }
    }

    #[test]
    fn manual_with_an_issuer_is_token_mode() {
        assert_eq!(
            effective_mode(&view("Manual", "AWS", Some("https://i")), None),
            Effective::Token
        );
        assert_eq!(
            effective_mode(&view("Manual", "AWS", Some("")), None),
            Effective::Manual
        );
        assert_eq!(
            effective_mode(&view("Manual", "AWS", None), None),
            Effective::Manual
        );
    }

    #[test]
    fn default_mode_on_aws_follows_the_root_annotation() {
        let v = view("", "AWS", None);
        assert_eq!(
            effective_mode(&v, Some(&root(Some("mint")))),
            Effective::Mint
        );
        assert_eq!(
            effective_mode(&v, Some(&root(Some("passthrough")))),
            Effective::Passthrough
        );
        assert_eq!(
            effective_mode(&v, Some(&root(Some("insufficient")))),
            Effective::Insufficient
        );
        assert_eq!(
            effective_mode(&v, Some(&root(None))),
            Effective::Undetermined
        );
        assert_eq!(effective_mode(&v, None), Effective::Mint, "root removed");
    }

    #[test]
    fn default_mode_elsewhere_is_passthrough() {
        for p in ["OpenStack", "VSphere", "oVirt", "KubeVirt", "Azure"] {
            assert_eq!(
                effective_mode(&view("", p, None), None),
                Effective::Passthrough
            );
            assert_eq!(
                desired_root_annotation(&view("", p, None), None),
                Some(ANNOTATION_PASSTHROUGH)
            );
        }
    }

    #[test]
    fn unknown_mode_is_a_config_error() {
        let v = view("Sometimes", "AWS", None);
        assert!(v.config_error.is_some());
    }

    #[test]
    fn classification_prefers_mint_then_passthrough() {
        let yes = |a: &str| (a.to_string(), true);
        let no = |a: &str| (a.to_string(), false);
        assert_eq!(classify(&[yes("iam:CreateUser")], &[]), Capability::CanMint);
        assert_eq!(
            classify(&[no("iam:CreateUser")], &[yes("s3:GetObject")]),
            Capability::CanPassthrough
        );
        assert_eq!(
            classify(&[no("iam:CreateUser")], &[no("s3:GetObject")]),
            Capability::Insufficient
        );
    }

    #[test]
    fn annotation_changes_do_not_change_the_fingerprint() {
        let a = root(Some("mint"));
        let b = root(None);
        assert_eq!(a.fingerprint(), b.fingerprint());
    }
}
