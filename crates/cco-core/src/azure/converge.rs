//! What exists in Azure ([`AzureObserved`], filled by the adapter's read-only calls) against what
//! the requests and flags ask for ([`AzureDesired`]): [`plan_changes`] computes every step
//! `create-*` takes ([`AzureStep`]), as plain data that `ccoctl azure plan` prints and `create-*`
//! executes.
//!
//! Ownership: resource groups, the storage account and identities carry the tag
//! `openshift.io_cloud-credential-operator_<name>=owned`. A request's identity is the one with its
//! name in the OIDC resource group; an identity no request asks for any more is *retired* when it
//! carries the tag and its name starts with `<name>-`. On a request's identity, role assignments
//! other than the request's are stale and removed (kept with `--preserve-existing-roles`);
//! federated credentials of other names are left alone, as the reference tool leaves them
//! (`verify` reports them).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::{
    fic_name, issuer_url, role_definition_body, stable_guid, subject, IdentityPlan, AUDIENCE,
};
use crate::keys::merge_jwks;
use crate::oidc::{
    reference_azure_discovery_text, to_go_indented, AZURE_KEYS_PATH, DISCOVERY_PATH,
};

/// The storage account as read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedStorage {
    pub tags: Value,
    pub allow_blob_public_access: bool,
    /// `properties.primaryEndpoints.blob`.
    pub blob_endpoint: String,
}

/// The issuer container as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedContainer {
    /// Its anonymous access level as read (`x-ms-blob-public-access`: `blob` or `container`; `None`:
    /// private). `create-*` wants [`CONTAINER_PUBLIC_ACCESS`](super::CONTAINER_PUBLIC_ACCESS).
    pub access: Option<String>,
    pub discovery: Option<Vec<u8>>,
    pub jwks: Option<Vec<u8>>,
}

/// A custom role definition as read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedRole {
    /// Full resource id.
    pub id: String,
    pub properties: Value,
}

/// A federated identity credential as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedFic {
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
}

/// A role assignment as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedAssignment {
    pub id: String,
    pub name: String,
    pub scope: String,
    pub role_definition_id: String,
}

/// A user-assigned managed identity as read, with its credentials and assignments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedIdentity {
    pub name: String,
    pub client_id: String,
    pub principal_id: String,
    pub tenant_id: String,
    pub tags: Value,
    pub fics: Vec<ObservedFic>,
    pub assignments: Vec<ObservedAssignment>,
}

/// Everything `plan` and `verify` look at, read without changing anything.
#[derive(Clone, Debug, Default)]
pub struct AzureObserved {
    /// Resource groups looked at: name → tags (`None`: absent).
    pub groups: BTreeMap<String, Option<Value>>,
    pub storage: Option<ObservedStorage>,
    /// `None` when the container does not exist (or the account does not).
    pub container: Option<ObservedContainer>,
    /// Built-in roles by name → id (`None`: no role with that name).
    pub builtin_roles: BTreeMap<String, Option<String>>,
    /// Custom roles by `roleName` (normally one each).
    pub roles: BTreeMap<String, Vec<ObservedRole>>,
    /// The identities of the OIDC resource group.
    pub identities: Vec<ObservedIdentity>,
}

impl AzureObserved {
    /// The identity named `name`.
    pub fn identity(&self, name: &str) -> Option<&ObservedIdentity> {
        self.identities.iter().find(|i| i.name == name)
    }
}

/// Which parts `create-*` converges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AzScope {
    /// Resource group, storage account, container and documents.
    pub issuer: bool,
    /// One identity per request.
    pub identities: bool,
    /// Delete this cluster's identities that no request asks for any more.
    pub retire: bool,
}

/// What the requests and flags ask for.
#[derive(Clone, Debug)]
pub struct AzureDesired<'a> {
    pub name: &'a str,
    pub subscription: &'a str,
    pub region: &'a str,
    pub oidc_rg: String,
    pub install_rg: String,
    /// `--dnszone-resource-group-name` / `--network-resource-group-name`: must exist.
    pub extra_rgs: Vec<String>,
    pub account: String,
    pub container: String,
    /// Tags of every taggable resource (ownership tag and `--user-tags`).
    pub tags: Value,
    /// The blob endpoint a storage account still to be made will have (dry-run form).
    pub default_endpoint: String,
    /// `--issuer-url` of `create-managed-identities`; otherwise the account's endpoint + container.
    pub issuer_override: Option<String>,
    /// JWKS of the signing key(s) to publish, before keys already published are added.
    pub jwks: Value,
    pub plans: &'a [IdentityPlan],
    pub preserve_existing_roles: bool,
    pub scope: AzScope,
}

impl AzureDesired<'_> {
    /// The issuer: `--issuer-url`, or the storage account's blob endpoint and the container.
    pub fn issuer(&self, o: &AzureObserved) -> String {
        if let Some(i) = &self.issuer_override {
            return i.trim_end_matches('/').to_string();
        }
        let endpoint = o
            .storage
            .as_ref()
            .map(|s| s.blob_endpoint.clone())
            .unwrap_or_else(|| self.default_endpoint.clone());
        issuer_url(&endpoint, &self.container)
    }

    /// The id of the custom role `plan` would get, whether it exists or not.
    pub fn custom_role_id(&self, o: &AzureObserved, p: &IdentityPlan) -> Option<String> {
        let role = p.custom_role.as_ref()?;
        Some(match o.roles.get(&role.role_name).and_then(|r| r.first()) {
            Some(r) => r.id.clone(),
            None => format!(
                "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}",
                self.subscription, role.id
            ),
        })
    }
}

/// The role assignments a plan asks for: `(scope, role definition id)`.
pub fn wanted_assignments(
    d: &AzureDesired<'_>,
    o: &AzureObserved,
    p: &IdentityPlan,
) -> Result<Vec<(String, String)>, AzConvergeError> {
    let mut roles = Vec::new();
    for b in &p.builtin_roles {
        match o.builtin_roles.get(b).cloned().flatten() {
            Some(id) => roles.push(id),
            None => {
                return Err(AzConvergeError::NoSuchRole {
                    request: p.request.clone(),
                    role: b.clone(),
                })
            }
        }
    }
    roles.extend(d.custom_role_id(o, p));
    let mut out = Vec::new();
    for scope in &p.scopes {
        for r in &roles {
            out.push((scope.clone(), r.clone()));
        }
    }
    Ok(out)
}

fn same_assignment(a: &ObservedAssignment, scope: &str, role: &str) -> bool {
    a.scope.eq_ignore_ascii_case(scope) && a.role_definition_id.eq_ignore_ascii_case(role)
}

/// One step of `create-*`, in execution order.
#[derive(Clone, Debug, PartialEq)]
pub enum AzureStep {
    /// PUT a resource group with `tags` (ours merged into any it has).
    PutGroup {
        group: String,
        tags: Value,
        exists: bool,
    },
    /// PUT the storage account (StorageV2, https only, TLS 1.2, public blob access allowed).
    PutStorage {
        exists: bool,
        diff: Vec<String>,
    },
    CreateContainer,
    /// Set the container's access level to container-level anonymous reads.
    MakeContainerPublic,
    /// Upload an issuer document.
    PutBlob {
        path: &'static str,
        content: String,
        added: Vec<String>,
        removed: Vec<String>,
        exists: bool,
    },
    /// PUT an identity with the desired tags merged into those it has (create, or bring ours back).
    PutIdentity {
        plan: usize,
        exists: bool,
    },
    /// PUT the custom role of a plan at `guid`.
    PutRole {
        plan: usize,
        guid: String,
        exists: bool,
        added: Vec<String>,
        removed: Vec<String>,
        other: Vec<String>,
    },
    CreateAssignment {
        plan: usize,
        scope: String,
        role: String,
    },
    /// Remove an assignment the request does not ask for.
    DeleteAssignment {
        identity: String,
        id: String,
        scope: String,
        role: String,
    },
    /// PUT a federated credential (create, or fix its issuer, subject or audiences).
    PutFic {
        plan: usize,
        sa: String,
        exists: bool,
        diff: Vec<String>,
    },
    /// Delete a retired identity (its federated credentials go with it; its assignments are
    /// removed first by `DeleteAssignment` steps).
    DeleteIdentity {
        identity: String,
    },
}

/// Why the plan cannot be computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AzConvergeError {
    #[error("resource group {0} does not exist; create it or correct the flag naming it")]
    MissingGroup(String),
    #[error("CredentialsRequest {request}: no role definition named {role:?} (spec.providerSpec.roleBindings)")]
    NoSuchRole { request: String, role: String },
    #[error("found {count} role definitions named {role:?}, expected one; delete the extra ones")]
    DuplicateRoles { role: String, count: usize },
}

fn set_diff(want: &[String], have: &[String]) -> (Vec<String>, Vec<String>) {
    let w: BTreeSet<&String> = want.iter().collect();
    let h: BTreeSet<&String> = have.iter().collect();
    (
        w.difference(&h).map(|s| (*s).clone()).collect(),
        h.difference(&w).map(|s| (*s).clone()).collect(),
    )
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

/// The tags a resource ends up with: those it has, ours added or overwriting (the reference tool's
/// `mergeResourceTags`).
pub fn merged_tags(have: Option<&Value>, ours: &Value) -> Value {
    let mut all = have
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let (Some(a), Some(b)) = (all.as_object_mut(), ours.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
    all
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn issuer_steps(d: &AzureDesired<'_>, o: &AzureObserved, steps: &mut Vec<AzureStep>) {
    let have = o.groups.get(&d.oidc_rg).cloned().flatten();
    let want = merged_tags(have.as_ref(), &d.tags);
    if have.as_ref() != Some(&want) {
        steps.push(AzureStep::PutGroup {
            group: d.oidc_rg.clone(),
            tags: want,
            exists: have.is_some(),
        });
    }
    match &o.storage {
        None => steps.push(AzureStep::PutStorage {
            exists: false,
            diff: Vec::new(),
        }),
        Some(s) => {
            let mut diff = Vec::new();
            let want = merged_tags(Some(&s.tags), &d.tags);
            if s.tags != want {
                diff.push(format!("tags: {} -> {want}", s.tags));
            }
            if !s.allow_blob_public_access {
                diff.push("allowBlobPublicAccess: false -> true".into());
            }
            if !diff.is_empty() {
                steps.push(AzureStep::PutStorage { exists: true, diff });
            }
        }
    }
    let container = o.container.as_ref();
    match container {
        None => steps.push(AzureStep::CreateContainer),
        Some(c) if c.access.as_deref() != Some(super::CONTAINER_PUBLIC_ACCESS) => {
            steps.push(AzureStep::MakeContainerPublic)
        }
        Some(_) => {}
    }
    let issuer = d.issuer(o);
    let disc = reference_azure_discovery_text(&issuer);
    let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).ok();
    let have_disc = container.and_then(|c| c.discovery.as_deref());
    if have_disc.and_then(parse) != parse(disc.as_bytes()) {
        steps.push(AzureStep::PutBlob {
            path: DISCOVERY_PATH,
            content: disc,
            added: Vec::new(),
            removed: Vec::new(),
            exists: have_disc.is_some(),
        });
    }
    let have_raw = container.and_then(|c| c.jwks.as_deref());
    let have = have_raw.and_then(parse);
    let want = merge_jwks(&d.jwks, have.as_ref().unwrap_or(&Value::Null));
    if have.as_ref() != Some(&want) {
        let (added, removed) = set_diff(&kids(&want), &have.as_ref().map(kids).unwrap_or_default());
        steps.push(AzureStep::PutBlob {
            path: AZURE_KEYS_PATH,
            content: to_go_indented(&want),
            added,
            removed,
            exists: have_raw.is_some(),
        });
    }
}

/// Computes every step `create-*` takes, in order. Pure.
pub fn plan_changes(
    d: &AzureDesired<'_>,
    o: &AzureObserved,
) -> Result<Vec<AzureStep>, AzConvergeError> {
    let mut steps = Vec::new();
    if d.scope.issuer {
        issuer_steps(d, o, &mut steps);
    }
    if !d.scope.identities {
        return Ok(steps);
    }
    if !d.scope.issuer {
        // The identities live in the OIDC group.
        let have = o.groups.get(&d.oidc_rg).cloned().flatten();
        let want = merged_tags(have.as_ref(), &d.tags);
        if have.as_ref() != Some(&want) {
            steps.push(AzureStep::PutGroup {
                group: d.oidc_rg.clone(),
                tags: want,
                exists: have.is_some(),
            });
        }
    }
    if o.groups.get(&d.install_rg).cloned().flatten().is_none() {
        steps.push(AzureStep::PutGroup {
            group: d.install_rg.clone(),
            tags: d.tags.clone(),
            exists: false,
        });
    }
    for g in &d.extra_rgs {
        if o.groups.get(g).cloned().flatten().is_none() {
            return Err(AzConvergeError::MissingGroup(g.clone()));
        }
    }
    let issuer = d.issuer(o);
    for (i, p) in d.plans.iter().enumerate() {
        let have = o.identity(&p.identity_name);
        if have.is_none_or(|h| h.tags != merged_tags(Some(&h.tags), &d.tags)) {
            steps.push(AzureStep::PutIdentity {
                plan: i,
                exists: have.is_some(),
            });
        }
    }
    for (i, p) in d.plans.iter().enumerate() {
        let Some(role) = &p.custom_role else { continue };
        let body = role_definition_body(role, d.name, d.subscription);
        let want = &body["properties"];
        let existing = o.roles.get(&role.role_name).cloned().unwrap_or_default();
        if existing.len() > 1 {
            return Err(AzConvergeError::DuplicateRoles {
                role: role.role_name.clone(),
                count: existing.len(),
            });
        }
        let (guid, have) = match existing.first() {
            Some(r) => (
                r.id.rsplit('/').next().unwrap_or(&role.id).to_string(),
                Some(&r.properties),
            ),
            None => (role.id.clone(), None),
        };
        let want_actions: Vec<String> = role
            .actions
            .iter()
            .map(|a| format!("action {a}"))
            .chain(role.data_actions.iter().map(|a| format!("dataAction {a}")))
            .collect();
        let have_actions: Vec<String> = have
            .map(|h| {
                strings(&h["permissions"][0]["actions"])
                    .into_iter()
                    .map(|a| format!("action {a}"))
                    .chain(
                        strings(&h["permissions"][0]["dataActions"])
                            .into_iter()
                            .map(|a| format!("dataAction {a}")),
                    )
                    .collect()
            })
            .unwrap_or_default();
        let same = have.is_some_and(|h| {
            h["permissions"] == want["permissions"]
                && h["assignableScopes"] == want["assignableScopes"]
                && h["description"] == want["description"]
        });
        if !same {
            let (added, removed) = set_diff(&want_actions, &have_actions);
            let mut other = Vec::new();
            if let Some(h) = have {
                if h["description"] != want["description"] {
                    other.push(format!(
                        "description: {} -> {}",
                        h["description"], want["description"]
                    ));
                }
                if h["assignableScopes"] != want["assignableScopes"] {
                    other.push(format!(
                        "assignable scopes: {} -> {}",
                        h["assignableScopes"], want["assignableScopes"]
                    ));
                }
                if added.is_empty() && removed.is_empty() && other.is_empty() {
                    other.push("permissions: order or not-actions differ".into());
                }
            }
            steps.push(AzureStep::PutRole {
                plan: i,
                guid,
                exists: have.is_some(),
                added,
                removed,
                other,
            });
        }
    }
    let mut later = Vec::new();
    for (i, p) in d.plans.iter().enumerate() {
        let have = o.identity(&p.identity_name);
        let wanted = wanted_assignments(d, o, p)?;
        let existing: &[ObservedAssignment] = have.map(|h| h.assignments.as_slice()).unwrap_or(&[]);
        for (scope, role) in &wanted {
            if !existing.iter().any(|a| same_assignment(a, scope, role)) {
                steps.push(AzureStep::CreateAssignment {
                    plan: i,
                    scope: scope.clone(),
                    role: role.clone(),
                });
            }
        }
        if !d.preserve_existing_roles {
            for a in existing {
                if !wanted.iter().any(|(s, r)| same_assignment(a, s, r)) {
                    later.push(AzureStep::DeleteAssignment {
                        identity: p.identity_name.clone(),
                        id: a.id.clone(),
                        scope: a.scope.clone(),
                        role: a.role_definition_id.clone(),
                    });
                }
            }
        }
        let fics: &[ObservedFic] = have.map(|h| h.fics.as_slice()).unwrap_or(&[]);
        for sa in &p.service_accounts {
            let want_subject = subject(&p.secret_namespace, sa);
            match fics.iter().find(|f| f.name == fic_name(sa)) {
                None => later.push(AzureStep::PutFic {
                    plan: i,
                    sa: sa.clone(),
                    exists: false,
                    diff: Vec::new(),
                }),
                Some(f) => {
                    let mut diff = Vec::new();
                    if f.issuer != issuer {
                        diff.push(format!("issuer: {} -> {issuer}", f.issuer));
                    }
                    if f.subject != want_subject {
                        diff.push(format!("subject: {} -> {want_subject}", f.subject));
                    }
                    if f.audiences != [AUDIENCE] {
                        diff.push(format!("audiences: {:?} -> [\"{AUDIENCE}\"]", f.audiences));
                    }
                    if !diff.is_empty() {
                        later.push(AzureStep::PutFic {
                            plan: i,
                            sa: sa.clone(),
                            exists: true,
                            diff,
                        });
                    }
                }
            }
        }
    }
    steps.extend(later);
    if d.scope.retire {
        for id in retired(d, o) {
            for a in &id.assignments {
                steps.push(AzureStep::DeleteAssignment {
                    identity: id.name.clone(),
                    id: a.id.clone(),
                    scope: a.scope.clone(),
                    role: a.role_definition_id.clone(),
                });
            }
            steps.push(AzureStep::DeleteIdentity {
                identity: id.name.clone(),
            });
        }
    }
    Ok(steps)
}

/// The identities made for `d.name` that no request asks for any more.
pub fn retired<'o>(d: &AzureDesired<'_>, o: &'o AzureObserved) -> Vec<&'o ObservedIdentity> {
    let wanted: BTreeSet<&str> = d.plans.iter().map(|p| p.identity_name.as_str()).collect();
    let key = super::owner_tag_key(d.name);
    let prefix = format!("{}-", d.name);
    o.identities
        .iter()
        .filter(|i| {
            !wanted.contains(i.name.as_str())
                && i.name.starts_with(&prefix)
                && i.tags[&key].as_str() == Some("owned")
        })
        .collect()
}

/// The role assignment name `create-*` gives a new assignment.
pub fn assignment_guid(scope: &str, role: &str, principal: &str) -> String {
    stable_guid(&[scope, role, principal])
}

#[cfg(test)]
#[path = "converge_tests.rs"]
pub(super) mod tests;
