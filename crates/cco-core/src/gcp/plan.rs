//! The per-request plan, the issuer documents and the Secret manifest.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cco_api::ProviderSpec;
use serde_json::Value;

use super::{display_name, legacy_role_id, role_id, role_title, CREATED_BY};
use crate::oidc::{reference_discovery_text, to_go_indented};
use crate::reader::{LoadedRequest, Source};

/// A custom role holding a request's `permissions`, named as the reference tool names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomRole {
    /// Role id `<project≤32>_<request≤31>`, alphanumerics only in each part ([`role_id`]).
    pub id: String,
    /// The id earlier versions of this tool gave the role ([`legacy_role_id`]), for `delete`.
    pub legacy_id: String,
    /// Title `<project≤50>-<request≤49>` ([`role_title`]).
    pub title: String,
    pub description: String,
    /// Sorted, unique (what the role must hold).
    pub permissions: Vec<String>,
    /// As the request lists them (order and repeats kept), as the reference tool passes them on.
    pub listed_permissions: Vec<String>,
}

impl CustomRole {
    /// The permissions of a new role in the request's order, repeats dropped.
    pub fn permissions_in_request_order(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.listed_permissions
            .iter()
            .filter(|p| seen.insert(p.as_str()))
            .cloned()
            .collect()
    }
}

/// Everything to do for one request.
#[derive(Clone, Debug)]
pub struct ServiceAccountPlan {
    pub source: Source,
    /// `metadata.name` of the request.
    pub request: String,
    /// `<name≤50>-<request≤49>`: the service account is found again by it.
    pub display_name: String,
    pub description: String,
    pub custom_role: Option<CustomRole>,
    /// Predefined roles to bind on the project, sorted and unique.
    pub predefined_roles: Vec<String>,
    /// `spec.providerSpec.predefinedRoles` as listed (the reference tool's dry-run order).
    pub listed_predefined_roles: Vec<String>,
    /// `(namespace, service account)` pairs allowed to impersonate, sorted and unique.
    pub kubernetes_service_accounts: Vec<(String, String)>,
    /// `spec.serviceAccountNames` as listed (the reference tool's dry-run order).
    pub listed_service_accounts: Vec<String>,
    pub secret_namespace: String,
    pub secret_name: String,
    /// `manifests/<ns>-<secret>-credentials.yaml`.
    pub secret_path: String,
    pub token_path: String,
    /// What was merged or ignored, to log.
    pub notes: Vec<String>,
}

impl ServiceAccountPlan {
    /// Every project role the service account should hold (predefined, then the custom role).
    pub fn project_roles(&self, project: &str) -> Vec<String> {
        let mut roles = self.predefined_roles.clone();
        if let Some(r) = &self.custom_role {
            roles.push(super::role_name(project, &r.id));
        }
        roles
    }

    /// The federated principals allowed to impersonate the service account.
    pub fn principals(&self, project_number: &str, pool: &str) -> Vec<String> {
        self.kubernetes_service_accounts
            .iter()
            .map(|(ns, sa)| super::principal(project_number, pool, ns, sa))
            .collect()
    }
}

/// Why the requests cannot be planned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GcpPlanError {
    #[error("{source_} (CredentialsRequest {request}): field `spec.serviceAccountNames` is missing or empty; list the Kubernetes ServiceAccounts that may use this GCP service account")]
    NoServiceAccounts { source_: Source, request: String },
    #[error("{first} and {second} map to the same GCP service account display name {display_name}; the names are cut to 50+49 characters, so rename one request")]
    DisplayNameCollision {
        first: Source,
        second: Source,
        display_name: String,
    },
    #[error("{source_} (CredentialsRequest {request}): field `metadata.name` has no letter or digit, so no custom role id can be made from it")]
    NoRoleId { source_: Source, request: String },
    #[error("{first} and {second} map to the same custom role id {role}; the id keeps only the letters and digits of the project and request names, cut to 32 and 31 characters, so rename one request")]
    RoleIdCollision {
        first: Source,
        second: Source,
        role: String,
    },
}

/// Plans one service account per GCP request of project `project`.
pub fn plan_service_accounts(
    reqs: &[LoadedRequest],
    name: &str,
    project: &str,
) -> Result<Vec<ServiceAccountPlan>, GcpPlanError> {
    let mut by_display: BTreeMap<String, Source> = BTreeMap::new();
    let mut by_role: BTreeMap<String, Source> = BTreeMap::new();
    let mut out = Vec::new();
    for r in reqs {
        let ProviderSpec::Gcp(spec) = &r.provider else {
            continue;
        };
        let spec_ = &r.request.spec;
        if spec_.service_account_names.is_empty() {
            return Err(GcpPlanError::NoServiceAccounts {
                source_: r.source.clone(),
                request: r.name().to_string(),
            });
        }
        let display = display_name(name, r.name());
        if let Some(first) = by_display.insert(display.clone(), r.source.clone()) {
            return Err(GcpPlanError::DisplayNameCollision {
                first,
                second: r.source.clone(),
                display_name: display,
            });
        }
        let mut notes = Vec::new();
        let perms: BTreeSet<String> = spec.permissions.iter().cloned().collect();
        if perms.len() < spec.permissions.len() {
            notes.push(format!(
                "{} duplicate permissions merged",
                spec.permissions.len() - perms.len()
            ));
        }
        let custom_role = if perms.is_empty() {
            None
        } else {
            let id = role_id(project, r.name()).ok_or_else(|| GcpPlanError::NoRoleId {
                source_: r.source.clone(),
                request: r.name().to_string(),
            })?;
            if let Some(first) = by_role.insert(id.clone(), r.source.clone()) {
                return Err(GcpPlanError::RoleIdCollision {
                    first,
                    second: r.source.clone(),
                    role: id,
                });
            }
            Some(CustomRole {
                id,
                legacy_id: legacy_role_id(name, r.name()),
                title: role_title(project, r.name()),
                description: format!("{CREATED_BY} for service account {display}"),
                permissions: perms.into_iter().collect(),
                listed_permissions: spec.permissions.clone(),
            })
        };
        let roles: BTreeSet<String> = spec.predefined_roles.iter().cloned().collect();
        let namespace = spec_.secret_ref.namespace.clone();
        let mut ksas: Vec<(String, String)> = spec_
            .service_account_names
            .iter()
            .map(|sa| (namespace.clone(), sa.clone()))
            .collect();
        ksas.sort();
        ksas.dedup();
        out.push(ServiceAccountPlan {
            source: r.source.clone(),
            request: r.name().to_string(),
            description: format!("{CREATED_BY} for service account {display}"),
            display_name: display,
            custom_role,
            predefined_roles: roles.into_iter().collect(),
            listed_predefined_roles: spec.predefined_roles.clone(),
            kubernetes_service_accounts: ksas,
            listed_service_accounts: spec_.service_account_names.clone(),
            secret_namespace: namespace.clone(),
            secret_name: spec_.secret_ref.name.clone(),
            secret_path: crate::aws::secret_manifest_path(&namespace, &spec_.secret_ref.name),
            token_path: spec_
                .cloud_token_path
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| crate::DEFAULT_TOKEN_PATH.to_string()),
            notes,
        });
    }
    Ok(out)
}

/// The discovery document of the issuer, byte for byte as the reference tool writes it to
/// `03-openid-configuration` and uploads it.
pub fn discovery(issuer: &str) -> String {
    reference_discovery_text(issuer)
}

/// A JWKS as the reference tool writes it to `04-keys.json`, uploads it as `keys.json` and embeds
/// it in a provider's `oidc.jwksJson` (Go's four-space `MarshalIndent`, no final newline).
pub fn jwks_text(jwks: &Value) -> String {
    to_go_indented(jwks)
}

/// The `external_account` credential configuration of a service account, byte for byte as the
/// reference tool writes it (its indentation included), so that the base64 in the Secret is the same.
pub fn credentials_config(
    project_number: &str,
    pool: &str,
    provider: &str,
    email: &str,
    token_path: &str,
) -> String {
    let audience = super::credential_audience(project_number, pool, provider);
    format!(
        "{{\n  \t\"type\": \"external_account\",\n  \t\"audience\": \"{audience}\",\n  \t\"subject_token_type\": \"urn:ietf:params:oauth:token-type:jwt\",\n  \t\"token_url\": \"https://sts.googleapis.com/v1/token\",\n  \t\"service_account_impersonation_url\": \"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{email}:generateAccessToken\",\n  \t\"credential_source\": {{\n    \t\"file\": \"{token_path}\",\n    \t\"format\": {{\n      \t\t\"type\": \"text\"\n    \t}}\n\t}}\n}}"
    )
}

/// The Secret manifest (reference layout): `data.service_account.json` = base64 of `config`.
pub fn secret_manifest(namespace: &str, name: &str, config: &str) -> String {
    format!(
        "apiVersion: v1\ndata:\n  service_account.json: {}\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\ntype: Opaque",
        STANDARD.encode(config)
    )
}

/// The dry-run Secret manifest: deliberately invalid YAML until the credentials config generated by
/// `script` is pasted in, as the reference tool writes it, so it cannot be applied by mistake.
pub fn dry_run_secret_manifest(namespace: &str, name: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\ndata:\n  service_account.json: \nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\ntype: Opaque\nPOPULATE service_account.json FIELD WITH BASE 64 ENCODED CREDENTIALS CONFIG JSON GENERATED FROM SCRIPT {script}"
    )
}

/// The value of `service_account.json` in a manifest written by [`secret_manifest`].
pub fn config_from_manifest(text: &str) -> Option<Value> {
    let v: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    let b64 = v["data"]["service_account.json"].as_str()?;
    let raw = STANDARD.decode(b64).ok()?;
    serde_json::from_slice(&raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> Vec<LoadedRequest> {
        crate::reader::parse_documents(
            Path::new("r.yaml"),
            text,
            crate::reader::ReadOptions {
                cloud: cco_api::Cloud::Gcp,
                enable_tech_preview: false,
            },
        )
        .expect("parses")
    }

    const REQ: &str = r#"
apiVersion: cloudcredential.openshift.io/v1
kind: CredentialsRequest
metadata: {name: openshift-gcp-ccm, namespace: openshift-cloud-credential-operator}
spec:
  secretRef: {name: gcp-ccm-cloud-credentials, namespace: openshift-cloud-controller-manager}
  serviceAccountNames: [cloud-controller-manager, other]
  providerSpec:
    apiVersion: cloudcredential.openshift.io/v1
    kind: GCPProviderSpec
    predefinedRoles: [roles/compute.viewer, roles/compute.viewer]
    permissions: [compute.instances.get, compute.addresses.get, compute.instances.get]
"#;

    #[test]
    fn a_request_becomes_one_service_account_with_its_roles_and_principals() {
        let plans = plan_service_accounts(&load(REQ), "c1", "my-proj").expect("plans");
        let p = &plans[0];
        assert_eq!(p.display_name, "c1-openshift-gcp-ccm");
        assert_eq!(p.predefined_roles, ["roles/compute.viewer"]);
        let role = p.custom_role.as_ref().expect("custom role");
        assert_eq!(role.id, "myproj_openshiftgcpccm");
        assert_eq!(role.legacy_id, "c1_openshift_gcp_ccm");
        assert_eq!(role.title, "my-proj-openshift-gcp-ccm");
        assert_eq!(
            role.description,
            "Created By OpenShift ccoctl for service account c1-openshift-gcp-ccm"
        );
        assert_eq!(
            role.permissions,
            ["compute.addresses.get", "compute.instances.get"]
        );
        assert_eq!(p.notes, ["1 duplicate permissions merged"]);
        assert_eq!(
            p.project_roles("my-proj"),
            [
                "roles/compute.viewer",
                "projects/my-proj/roles/myproj_openshiftgcpccm"
            ]
        );
        assert_eq!(p.principals("9", "pool").len(), 2);
        assert!(p.principals("9", "pool")[0].ends_with(
            "system:serviceaccount:openshift-cloud-controller-manager:cloud-controller-manager"
        ));
        assert_eq!(p.secret_path, "manifests/openshift-cloud-controller-manager-gcp-ccm-cloud-credentials-credentials.yaml");
    }

    #[test]
    fn a_request_without_service_accounts_names_file_and_field() {
        let text = REQ.replace(
            "  serviceAccountNames: [cloud-controller-manager, other]\n",
            "",
        );
        let e = plan_service_accounts(&load(&text), "c1", "p").expect_err("bad");
        let s = e.to_string();
        assert!(
            s.contains("r.yaml (document 0)") && s.contains("spec.serviceAccountNames"),
            "{s}"
        );
    }

    #[test]
    fn secret_manifest_carries_the_external_account_config() {
        let cfg = credentials_config(
            "123",
            "pool",
            "prov",
            "sa@p.iam.gserviceaccount.com",
            crate::DEFAULT_TOKEN_PATH,
        );
        let m = secret_manifest("ns", "s", &cfg);
        let v = config_from_manifest(&m).expect("config");
        assert_eq!(v["type"], "external_account");
        assert_eq!(
            v["service_account_impersonation_url"],
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken"
        );
        assert_eq!(v["token_url"], "https://sts.googleapis.com/v1/token");
        assert_eq!(
            v["subject_token_type"],
            "urn:ietf:params:oauth:token-type:jwt"
        );
        assert_eq!(v["credential_source"]["format"]["type"], "text");
        assert_eq!(
            v["audience"],
            "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/prov"
        );
        assert_eq!(v["credential_source"]["file"], crate::DEFAULT_TOKEN_PATH);
        assert!(
            serde_yaml::from_str::<serde_yaml::Value>(&dry_run_secret_manifest("ns", "s", "x.sh"))
                .is_err()
        );
    }
}
