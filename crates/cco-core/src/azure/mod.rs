//! Azure workload identity: naming rules, the plan of managed identities, Secret manifests and the
//! dry-run request files.
//!
//! Data model: the issuer is a public blob container in storage account `--storage-account-name`
//! (in resource group `--oidc-resource-group-name`) holding the discovery document and the JWKS
//! (`openid/v1/jwks`); its URL is the account's blob endpoint followed by the container name. Each
//! request becomes an [`IdentityPlan`]: one user-assigned managed identity `<name>-<ns>-<secret>`
//! (cut to 128 characters) in the OIDC resource group, an optional custom role holding the request's
//! `permissions`/`dataPermissions`, role assignments on the resource groups the component works in,
//! and one federated identity credential per Kubernetes service account (named after it). Resource
//! groups, storage accounts and identities carry the tag [`owner_tag_key`]`=owned`; role definitions
//! (which take no tags) carry the reference tool's marker [`role_description`]. `delete` removes only
//! what carries them. Names, scopes and markers are the reference tool's, so either tool can re-run
//! or delete what the other made.

mod changes;
mod converge;
mod manifests;
mod names;
mod verify;

pub use changes::*;
pub use converge::*;
pub use manifests::*;
pub use names::*;
pub use verify::*;

use cco_api::ProviderSpec;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::reader::LoadedRequest;

/// The audience of the federated identity credentials.
pub const AUDIENCE: &str = "openshift";
/// The public cloud's blob endpoint suffix (`https://<account>.<suffix>/`).
pub const DEFAULT_BLOB_SUFFIX: &str = "blob.core.windows.net";
/// The issuer container's anonymous access level (`x-ms-blob-public-access`), the reference tool's
/// `PublicAccessContainer`: its blobs and its listing are readable anonymously.
pub const CONTAINER_PUBLIC_ACCESS: &str = "container";
/// Longest user-assigned identity name.
pub const MAX_IDENTITY_NAME: usize = 128;
/// Longest federated identity credential name.
pub const MAX_FIC_NAME: usize = 120;

/// Requests (by `metadata.name`) whose identities also get their roles on `--dnszone-resource-group-name`.
pub const DNS_ZONE_REQUESTS: &[&str] = &["openshift-ingress-azure"];
/// Requests (by `metadata.name`) whose identities also get their roles on
/// `--network-resource-group-name`: the components that manage the cluster's virtual network.
pub const NETWORK_REQUESTS: &[&str] = &[
    "openshift-image-registry-azure",
    "openshift-ingress-azure",
    "openshift-machine-api-azure",
    "azure-file-csi-driver-operator",
    "openshift-cloud-network-config-controller-azure",
    "openshift-azure-cloud-controller-manager",
];

/// `<name>-oidc`.
pub fn default_oidc_resource_group(name: &str) -> String {
    format!("{name}-oidc")
}

/// The ownership tag key, `openshift.io_cloud-credential-operator_<name>` (Azure tag keys may not
/// hold `/`).
pub fn owner_tag_key(name: &str) -> String {
    format!("openshift.io_cloud-credential-operator_{name}")
}

/// The tags put on every taggable resource: the ownership tag, then the user's tags.
pub fn tags(name: &str, user: &[(String, String)]) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(owner_tag_key(name), json!("owned"));
    for (k, v) in user {
        m.insert(k.clone(), json!(v));
    }
    Value::Object(m)
}

/// Whether a resource's `tags` mark it as owned by `name`.
pub fn is_owned(resource: &Value, name: &str) -> bool {
    resource["tags"][owner_tag_key(name)].as_str() == Some("owned")
}

/// The marker description of custom roles made for `name` (the reference tool's).
pub fn role_description(name: &str) -> String {
    format!("Custom role for OpenShift. Owned by: {name}")
}

/// The marker earlier versions of this tool put on custom roles; `delete` still recognises it.
pub fn legacy_role_description(name: &str) -> String {
    format!("Created by OpenShift ccoctl for {name}")
}

/// `https://<account>.<suffix>/` : the blob endpoint when it is not read from the account.
pub fn blob_endpoint(account: &str, suffix: &str) -> String {
    format!("https://{account}.{}/", suffix.trim_matches('/'))
}

/// `<blob endpoint>/<container>` without a trailing slash.
pub fn issuer_url(blob_endpoint: &str, container: &str) -> String {
    format!("{}/{container}", blob_endpoint.trim_end_matches('/'))
}

fn cut(s: &str, n: usize) -> &str {
    let mut end = s.len().min(n);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `<name>-<namespace>-<secret>` cut to 128 characters.
pub fn identity_name(name: &str, namespace: &str, secret: &str) -> String {
    cut(&format!("{name}-{namespace}-{secret}"), MAX_IDENTITY_NAME).to_string()
}

/// A federated identity credential's name: the Kubernetes service account's name, as the reference
/// tool names it (one identity serves one namespace, so it is unique within the identity).
pub fn fic_name(sa: &str) -> String {
    cut(sa, MAX_FIC_NAME).to_string()
}

/// `system:serviceaccount:<ns>:<sa>`.
pub fn subject(namespace: &str, sa: &str) -> String {
    format!("system:serviceaccount:{namespace}:{sa}")
}

/// A deterministic GUID (SHA-256 of the parts, shaped as a version-5-style UUID): role definition and
/// role assignment names, so a re-run addresses the same objects.
pub fn stable_guid(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let mut b: [u8; 16] = [0; 16];
    b.copy_from_slice(&h.finalize()[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// `/subscriptions/<sub>/resourceGroups/<rg>`.
pub fn resource_group_scope(subscription: &str, rg: &str) -> String {
    format!("/subscriptions/{subscription}/resourceGroups/{rg}")
}

/// A custom role made for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomRole {
    /// Its GUID name.
    pub id: String,
    /// Its `roleName` (the identity's name).
    pub role_name: String,
    pub actions: Vec<String>,
    pub data_actions: Vec<String>,
}

/// What one CredentialsRequest becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityPlan {
    /// `metadata.name` of the request.
    pub request: String,
    pub identity_name: String,
    pub secret_namespace: String,
    pub secret_name: String,
    pub service_accounts: Vec<String>,
    /// Built-in roles named by `roleBindings`.
    pub builtin_roles: Vec<String>,
    pub custom_role: Option<CustomRole>,
    /// Resource groups the roles are assigned on.
    pub scopes: Vec<String>,
    pub token_path: String,
}

/// Where role assignments go.
#[derive(Clone, Debug, Default)]
pub struct Scopes {
    pub installation: String,
    pub dnszone: Option<String>,
    pub network: Option<String>,
}

/// Why a request cannot be planned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("{origin}: CredentialsRequest {name} is not an AzureProviderSpec")]
    NotAzure { origin: String, name: String },
    #[error("{origin}: CredentialsRequest {name} has no spec.serviceAccountNames; workload identity needs at least one")]
    NoServiceAccounts { origin: String, name: String },
    #[error("{a} and {b} both write Secret {ns}/{secret}")]
    DuplicateSecret {
        a: String,
        b: String,
        ns: String,
        secret: String,
    },
    #[error("{a} and {b} both map to identity {identity}")]
    DuplicateIdentity {
        a: String,
        b: String,
        identity: String,
    },
}

/// Plans one identity per request.
pub fn plan_identities(
    name: &str,
    subscription: &str,
    scopes: &Scopes,
    reqs: &[LoadedRequest],
) -> Result<Vec<IdentityPlan>, PlanError> {
    let mut out: Vec<(String, IdentityPlan)> = Vec::new();
    for r in reqs {
        let ProviderSpec::Azure(spec) = &r.provider else {
            return Err(PlanError::NotAzure {
                origin: r.source.to_string(),
                name: r.name().to_string(),
            });
        };
        let s = &r.request.spec;
        if s.service_account_names.is_empty() {
            return Err(PlanError::NoServiceAccounts {
                origin: r.source.to_string(),
                name: r.name().to_string(),
            });
        }
        let ns = s.secret_ref.namespace.clone();
        let secret = s.secret_ref.name.clone();
        let identity = identity_name(name, &ns, &secret);
        for (src, p) in &out {
            if p.secret_namespace == ns && p.secret_name == secret {
                return Err(PlanError::DuplicateSecret {
                    a: src.clone(),
                    b: r.source.to_string(),
                    ns,
                    secret,
                });
            }
            if p.identity_name == identity {
                return Err(PlanError::DuplicateIdentity {
                    a: src.clone(),
                    b: r.source.to_string(),
                    identity,
                });
            }
        }
        let custom_role =
            (!spec.permissions.is_empty() || !spec.data_permissions.is_empty()).then(|| {
                CustomRole {
                    id: stable_guid(&[subscription, &identity]),
                    role_name: identity.clone(),
                    actions: spec.permissions.clone(),
                    data_actions: spec.data_permissions.clone(),
                }
            });
        let mut rgs = vec![scopes.installation.clone()];
        if DNS_ZONE_REQUESTS.contains(&r.name()) {
            rgs.extend(scopes.dnszone.clone().filter(|g| !g.is_empty()));
        }
        if NETWORK_REQUESTS.contains(&r.name()) {
            rgs.extend(scopes.network.clone().filter(|g| !g.is_empty()));
        }
        rgs.dedup();
        let mut builtin: Vec<String> = spec.role_bindings.iter().map(|b| b.role.clone()).collect();
        builtin.sort();
        builtin.dedup();
        let mut sas = s.service_account_names.clone();
        sas.sort();
        sas.dedup();
        out.push((
            r.source.to_string(),
            IdentityPlan {
                request: r.name().to_string(),
                identity_name: identity,
                secret_namespace: ns,
                secret_name: secret,
                service_accounts: sas,
                builtin_roles: builtin,
                custom_role,
                scopes: rgs
                    .iter()
                    .map(|rg| resource_group_scope(subscription, rg))
                    .collect(),
                token_path: s
                    .cloud_token_path
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| crate::DEFAULT_TOKEN_PATH.to_string()),
            },
        ));
    }
    Ok(out.into_iter().map(|(_, p)| p).collect())
}

/// The custom role definition body: assignable anywhere in the subscription, as the reference tool
/// makes it (the assignments themselves are scoped to the resource groups).
pub fn role_definition_body(role: &CustomRole, name: &str, subscription: &str) -> Value {
    json!({
        "properties": {
            "roleName": role.role_name,
            "description": role_description(name),
            "type": "CustomRole",
            "permissions": [{
                "actions": role.actions,
                "notActions": [],
                "dataActions": role.data_actions,
                "notDataActions": [],
            }],
            "assignableScopes": [format!("/subscriptions/{subscription}")],
        }
    })
}

/// The federated identity credential body.
pub fn fic_body(issuer: &str, namespace: &str, sa: &str) -> Value {
    json!({
        "properties": {
            "issuer": issuer,
            "subject": subject(namespace, sa),
            "audiences": [AUDIENCE],
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_names_are_cut_to_128_characters() {
        assert_eq!(identity_name("c", "ns", "s"), "c-ns-s");
        assert_eq!(
            identity_name(&"n".repeat(100), "ns", &"s".repeat(60)).len(),
            128
        );
    }

    #[test]
    fn stable_guids_are_deterministic_and_guid_shaped() {
        let a = stable_guid(&["x", "y"]);
        assert_eq!(a, stable_guid(&["x", "y"]));
        assert_ne!(a, stable_guid(&["xy"]));
        assert_eq!(a.len(), 36);
        assert_eq!(a.chars().filter(|c| *c == '-').count(), 4);
    }

    #[test]
    fn user_tags_parse_and_follow_the_owner_tag() {
        let t = tags("c", &parse_tags("a=1, b=two").expect("tags"));
        assert_eq!(t["openshift.io_cloud-credential-operator_c"], "owned");
        assert_eq!(t["b"], "two");
        assert!(is_owned(&json!({"tags": t}), "c"));
    }

    #[test]
    fn issuer_is_the_blob_endpoint_and_container() {
        assert_eq!(
            issuer_url(&blob_endpoint("acct", DEFAULT_BLOB_SUFFIX), "oidc"),
            "https://acct.blob.core.windows.net/oidc"
        );
        assert_eq!(
            issuer_url("http://127.0.0.1:1/devstoreaccount1/", "c"),
            "http://127.0.0.1:1/devstoreaccount1/c"
        );
    }

    #[test]
    fn ingress_roles_also_go_on_the_dns_and_network_groups() {
        let reqs = crate::reader::parse_documents(
            std::path::Path::new("r.yaml"),
            r#"
apiVersion: cloudcredential.openshift.io/v1
kind: CredentialsRequest
metadata: {name: openshift-ingress-azure, namespace: openshift-cloud-credential-operator}
spec:
  secretRef: {name: cloud-credentials, namespace: openshift-ingress-operator}
  serviceAccountNames: [ingress-operator]
  providerSpec:
    apiVersion: cloudcredential.openshift.io/v1
    kind: AzureProviderSpec
    permissions: [Microsoft.Network/dnsZones/A/write]
"#,
            crate::reader::ReadOptions {
                cloud: cco_api::Cloud::Azure,
                enable_tech_preview: false,
            },
        )
        .expect("parses");
        let scopes = Scopes {
            installation: "inst".into(),
            dnszone: Some("dns".into()),
            network: None,
        };
        let p = plan_identities("c", "sub", &scopes, &reqs).expect("plan");
        assert_eq!(
            p[0].scopes,
            vec![
                "/subscriptions/sub/resourceGroups/inst",
                "/subscriptions/sub/resourceGroups/dns"
            ]
        );
        assert_eq!(
            p[0].identity_name,
            "c-openshift-ingress-operator-cloud-credentials"
        );
        assert!(p[0].custom_role.is_some());
        assert_eq!(p[0].token_path, crate::DEFAULT_TOKEN_PATH);
    }
}
