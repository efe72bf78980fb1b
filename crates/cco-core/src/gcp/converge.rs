//! What exists in GCP ([`GcpObserved`], filled by the adapter's read-only calls) against what the
//! requests ask for ([`GcpDesired`]): [`plan_changes`] computes, as plain data, every step
//! `create-*` takes to get from one to the other ([`GcpStep`]). `ccoctl gcp plan` prints these steps
//! and `create-*` executes exactly them, so what the plan shows is what happens.
//!
//! Ownership: a request's service account is the one with its display name (as the reference tool
//! finds it); one no request asks for any more is *retired* when its description says `ccoctl` made
//! it and it trusts principals of this cluster's pool (so another cluster's accounts
//! whose display names share a prefix are never touched). In trust bindings only the principals of
//! this pool are managed; in project bindings only the roles of our service accounts.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::{
    discovery, pool_resource, service_account_member, CustomRole, KeyStorage, ServiceAccountPlan,
    AUDIENCE, CREATED_BY,
};
use crate::keys::merge_jwks;
use crate::oidc::{DISCOVERY_PATH, KEYS_PATH};

/// A workload identity pool as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedPool {
    /// `state: DELETED` (soft-deleted, restorable for 30 days).
    pub deleted: bool,
    pub disabled: bool,
    pub description: String,
}

/// A workload identity pool provider as read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedProvider {
    pub deleted: bool,
    pub disabled: bool,
    /// `oidc.issuerUri`.
    pub issuer: String,
    /// `oidc.allowedAudiences`.
    pub audiences: Vec<String>,
    pub attribute_mapping: BTreeMap<String, String>,
    /// `oidc.jwksJson`, raw (empty when the provider fetches keys from the issuer).
    pub jwks_json: String,
}

/// The issuer bucket as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedBucket {
    /// `allUsers` holds `roles/storage.objectViewer` on it.
    pub public: bool,
    /// The discovery document, if the object exists.
    pub discovery: Option<Vec<u8>>,
    /// `keys.json`, if the object exists.
    pub jwks: Option<Vec<u8>>,
}

/// A custom role as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedRole {
    pub deleted: bool,
    pub title: String,
    pub description: String,
    /// Sorted.
    pub permissions: Vec<String>,
}

/// A service account as read, with the members of `roles/iam.workloadIdentityUser` on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedAccount {
    pub email: String,
    pub display_name: String,
    pub description: String,
    /// Unconditional members of `roles/iam.workloadIdentityUser` in its IAM policy, sorted.
    pub trust: Vec<String>,
}

/// Everything `plan` and `verify` look at, read without changing anything.
#[derive(Clone, Debug, Default)]
pub struct GcpObserved {
    pub project_number: String,
    pub pool: Option<ObservedPool>,
    pub provider: Option<ObservedProvider>,
    /// `None`: no bucket (or not looked at, with `pool-jwk-file`).
    pub bucket: Option<ObservedBucket>,
    /// Custom roles by id (only those the plans name).
    pub roles: BTreeMap<String, ObservedRole>,
    /// The service accounts whose display name is a plan's, and the candidates for retirement
    /// (ccoctl's description, display name starting with `<name≤50>-`).
    pub accounts: Vec<ObservedAccount>,
    /// Unconditional project bindings of service accounts: member → roles.
    pub project_roles: BTreeMap<String, BTreeSet<String>>,
}

impl GcpObserved {
    /// The accounts with `display_name`.
    pub fn accounts_named(&self, display_name: &str) -> Vec<&ObservedAccount> {
        self.accounts
            .iter()
            .filter(|a| a.display_name == display_name)
            .collect()
    }

    /// Project roles of a member (empty when it has none).
    pub fn roles_of(&self, member: &str) -> BTreeSet<String> {
        self.project_roles.get(member).cloned().unwrap_or_default()
    }
}

/// Which parts `create-*` converges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope {
    /// The workload identity pool.
    pub pool: bool,
    /// The issuer (bucket and documents, or keys in the provider) and the provider.
    pub issuer: bool,
    /// One service account per request.
    pub accounts: bool,
    /// Delete this cluster's service accounts that no request asks for any more (`create-all`).
    pub retire: bool,
}

impl Scope {
    /// Everything, as `create-all` does.
    pub const ALL: Scope = Scope {
        pool: true,
        issuer: true,
        accounts: true,
        retire: true,
    };
}

/// What the requests and flags ask for.
#[derive(Clone, Debug)]
pub struct GcpDesired<'a> {
    /// `--name`.
    pub name: &'a str,
    pub project: &'a str,
    pub pool: &'a str,
    pub provider: &'a str,
    pub storage: KeyStorage,
    /// Location of a new bucket (`--region`).
    pub region: &'a str,
    /// `https://storage.googleapis.com/<name>-oidc`.
    pub issuer: String,
    /// JWKS of the signing key(s) to publish, before keys already published are added.
    pub jwks: Value,
    pub prune_old_keys: bool,
    pub plans: &'a [ServiceAccountPlan],
    pub scope: Scope,
}

impl GcpDesired<'_> {
    /// The federated principal prefix of this pool: the members of trust bindings we manage.
    pub fn principal_prefix(&self, project_number: &str) -> String {
        format!(
            "principal://iam.googleapis.com/{}/",
            pool_resource(project_number, self.pool)
        )
    }
}

/// Which service account a step concerns: one of the plans (its email may only be known once
/// created), or a retired one by email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountRef {
    /// Index into `GcpDesired::plans`.
    Plan(usize),
    Retired(String),
}

/// A change of one member's project roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRoles {
    pub account: AccountRef,
    /// Current email; `None` for an account still to be created.
    pub email: Option<String>,
    /// Every role the member must end up with (empty for a retired account).
    pub roles: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// One step of `create-*`, in execution order.
#[derive(Clone, Debug, PartialEq)]
pub enum GcpStep {
    CreatePool,
    UndeletePool,
    CreateBucket,
    /// Give `allUsers` `roles/storage.objectViewer` on the bucket.
    MakeBucketPublic,
    /// Upload an issuer document (`.well-known/openid-configuration` or `keys.json`).
    PutObject {
        path: &'static str,
        content: String,
        /// Key ids added and removed (for `keys.json`).
        added: Vec<String>,
        removed: Vec<String>,
        /// Whether the object exists already.
        exists: bool,
    },
    CreateProvider {
        body: Value,
    },
    /// The pool is soft-deleted, so its provider cannot be read: once the pool is restored (which
    /// restores the providers deleted with it), patch the provider to `body`, or create it.
    RestoreProvider {
        body: Value,
    },
    UndeleteProvider,
    /// Patch the fields in `mask` to what `body` holds.
    PatchProvider {
        mask: Vec<String>,
        body: Value,
        diff: Vec<String>,
    },
    CreateRole(CustomRole),
    UndeleteRole(String),
    UpdateRole {
        role: CustomRole,
        added: Vec<String>,
        removed: Vec<String>,
        other: Vec<String>,
    },
    /// Create the service account of `GcpDesired::plans[i]`.
    CreateAccount(usize),
    /// One read-modify-write of the project policy giving each member exactly its roles.
    ProjectRoles(Vec<MemberRoles>),
    /// Make the pool's principals trusted by the account exactly those of its plan.
    Trust {
        plan: usize,
        email: Option<String>,
        principals: Vec<String>,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// Delete a retired service account (its project roles are removed by `ProjectRoles` first).
    DeleteAccount {
        email: String,
        display_name: String,
    },
}

/// Why the plan cannot be computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvergeError {
    #[error("{count} service accounts have the display name {display_name}; ccoctl finds its service account by that name, so delete the extra ones ({emails})")]
    DuplicateAccounts {
        display_name: String,
        count: usize,
        emails: String,
    },
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

fn parse_json(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

fn set_diff(want: &[String], have: &[String]) -> (Vec<String>, Vec<String>) {
    let w: BTreeSet<&String> = want.iter().collect();
    let h: BTreeSet<&String> = have.iter().collect();
    (
        w.difference(&h).map(|s| (*s).clone()).collect(),
        h.difference(&w).map(|s| (*s).clone()).collect(),
    )
}

/// The provider body `create-*` wants, with `jwks` embedded when given.
pub fn provider_body(provider: &str, issuer: &str, jwks: Option<&Value>) -> Value {
    let mut oidc = json!({"issuerUri": issuer, "allowedAudiences": [AUDIENCE]});
    if let Some(j) = jwks {
        oidc["jwksJson"] = Value::String(super::jwks_text(j));
    }
    json!({"displayName": provider, "description": CREATED_BY, "disabled": false,
        "attributeMapping": {"google.subject": "assertion.sub"}, "oidc": oidc})
}

/// The JWKS to publish: the desired keys, then (unless pruning) those already published.
pub fn jwks_to_publish(new: &Value, published: Option<&Value>, prune: bool) -> Value {
    match published {
        Some(old) if !prune => merge_jwks(new, old),
        _ => new.clone(),
    }
}

fn issuer_steps(d: &GcpDesired<'_>, o: &GcpObserved, steps: &mut Vec<GcpStep>) {
    let mut embedded: Option<Value> = None;
    if d.storage == KeyStorage::PublicBucket {
        let bucket = o.bucket.as_ref();
        if bucket.is_none() {
            steps.push(GcpStep::CreateBucket);
        }
        if !bucket.is_some_and(|b| b.public) {
            steps.push(GcpStep::MakeBucketPublic);
        }
        let disc = discovery(&d.issuer);
        let have_disc = bucket.and_then(|b| b.discovery.as_deref());
        if have_disc.and_then(parse_json) != parse_json(disc.as_bytes()) {
            steps.push(GcpStep::PutObject {
                path: DISCOVERY_PATH,
                content: disc,
                added: Vec::new(),
                removed: Vec::new(),
                exists: have_disc.is_some(),
            });
        }
        let have_jwks_raw = bucket.and_then(|b| b.jwks.as_deref());
        let have_jwks = have_jwks_raw.and_then(parse_json);
        let want = jwks_to_publish(&d.jwks, have_jwks.as_ref(), d.prune_old_keys);
        if have_jwks.as_ref() != Some(&want) {
            let (added, removed) = set_diff(
                &kids(&want),
                &have_jwks.as_ref().map(kids).unwrap_or_default(),
            );
            steps.push(GcpStep::PutObject {
                path: KEYS_PATH,
                content: super::jwks_text(&want),
                added,
                removed,
                exists: have_jwks_raw.is_some(),
            });
        }
    } else {
        let old = o
            .provider
            .as_ref()
            .and_then(|p| serde_json::from_str::<Value>(&p.jwks_json).ok());
        embedded = Some(jwks_to_publish(&d.jwks, old.as_ref(), false));
    }
    let body = provider_body(d.provider, &d.issuer, embedded.as_ref());
    let Some(p) = &o.provider else {
        if o.pool.as_ref().is_some_and(|p| p.deleted) {
            steps.push(GcpStep::RestoreProvider { body });
        } else {
            steps.push(GcpStep::CreateProvider { body });
        }
        return;
    };
    if p.deleted {
        steps.push(GcpStep::UndeleteProvider);
    }
    let mut mask = Vec::new();
    let mut diff = Vec::new();
    if p.issuer != d.issuer {
        mask.push("oidc.issuerUri".to_string());
        diff.push(format!("issuer: {} -> {}", p.issuer, d.issuer));
    }
    if p.audiences != [AUDIENCE] {
        mask.push("oidc.allowedAudiences".to_string());
        diff.push(format!(
            "allowed audiences: {:?} -> [\"{AUDIENCE}\"]",
            p.audiences
        ));
    }
    let have_jwks = serde_json::from_str::<Value>(&p.jwks_json).ok();
    let mut patch = body.clone();
    if have_jwks != embedded {
        mask.push("oidc.jwksJson".to_string());
        match &embedded {
            None => {
                patch["oidc"]["jwksJson"] = Value::String(String::new());
                diff.push("embedded JWKS: removed (keys are read from the issuer)".into());
            }
            Some(want) => {
                let (added, removed) = set_diff(
                    &kids(want),
                    &have_jwks.as_ref().map(kids).unwrap_or_default(),
                );
                diff.push(format!(
                    "embedded JWKS: keys added {added:?}, removed {removed:?}"
                ));
            }
        }
    }
    let want_mapping: BTreeMap<String, String> =
        [("google.subject".to_string(), "assertion.sub".to_string())].into();
    if p.attribute_mapping != want_mapping {
        mask.push("attributeMapping".to_string());
        diff.push(format!(
            "attribute mapping: {:?} -> {{google.subject: assertion.sub}}",
            p.attribute_mapping
        ));
    }
    if p.disabled {
        mask.push("disabled".to_string());
        diff.push("disabled: true -> false".into());
    }
    if !mask.is_empty() {
        steps.push(GcpStep::PatchProvider {
            mask,
            body: patch,
            diff,
        });
    }
}

/// The email of each plan's service account, when exactly one has its display name.
pub fn account_emails(d: &GcpDesired<'_>, o: &GcpObserved) -> Vec<Option<String>> {
    d.plans
        .iter()
        .map(|p| match o.accounts_named(&p.display_name).as_slice() {
            [a] => Some(a.email.clone()),
            _ => None,
        })
        .collect()
}

/// Computes every step `create-*` takes, in order. Pure: the same inputs give the same steps.
pub fn plan_changes(d: &GcpDesired<'_>, o: &GcpObserved) -> Result<Vec<GcpStep>, ConvergeError> {
    let mut steps = Vec::new();
    if d.scope.pool {
        match &o.pool {
            None => steps.push(GcpStep::CreatePool),
            Some(p) if p.deleted => steps.push(GcpStep::UndeletePool),
            Some(_) => {}
        }
    }
    if d.scope.issuer {
        issuer_steps(d, o, &mut steps);
    }
    if !d.scope.accounts {
        return Ok(steps);
    }
    // Custom roles first: bindings name them.
    for p in d.plans {
        let Some(role) = &p.custom_role else { continue };
        match o.roles.get(&role.id) {
            None => steps.push(GcpStep::CreateRole(role.clone())),
            Some(have) => {
                if have.deleted {
                    steps.push(GcpStep::UndeleteRole(role.id.clone()));
                }
                let (added, removed) = set_diff(&role.permissions, &have.permissions);
                let mut other = Vec::new();
                if have.title != role.title {
                    other.push(format!("title: {:?} -> {:?}", have.title, role.title));
                }
                if have.description != role.description {
                    other.push(format!(
                        "description: {:?} -> {:?}",
                        have.description, role.description
                    ));
                }
                if !added.is_empty() || !removed.is_empty() || !other.is_empty() {
                    steps.push(GcpStep::UpdateRole {
                        role: role.clone(),
                        added,
                        removed,
                        other,
                    });
                }
            }
        }
    }
    // Find each plan's account.
    let mut emails: Vec<Option<String>> = Vec::new();
    for (i, p) in d.plans.iter().enumerate() {
        let found = o.accounts_named(&p.display_name);
        match found.as_slice() {
            [] => {
                steps.push(GcpStep::CreateAccount(i));
                emails.push(None);
            }
            [a] => emails.push(Some(a.email.clone())),
            many => {
                return Err(ConvergeError::DuplicateAccounts {
                    display_name: p.display_name.clone(),
                    count: many.len(),
                    emails: many
                        .iter()
                        .map(|a| a.email.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }
    let prefix = d.principal_prefix(&o.project_number);
    let retired: Vec<&ObservedAccount> = if d.scope.retire {
        let wanted: BTreeSet<&str> = d.plans.iter().map(|p| p.display_name.as_str()).collect();
        o.accounts
            .iter()
            .filter(|a| {
                !wanted.contains(a.display_name.as_str())
                    && a.description.starts_with(CREATED_BY)
                    && a.trust.iter().any(|m| m.starts_with(&prefix))
            })
            .collect()
    } else {
        Vec::new()
    };
    // Trust first: it is per account (concurrent), so a new account becomes visible to IAM
    // before the one project-policy write that names them all.
    for (i, p) in d.plans.iter().enumerate() {
        let principals = p.principals(&o.project_number, d.pool);
        let have: Vec<String> = emails[i]
            .as_ref()
            .and_then(|e| o.accounts.iter().find(|a| &a.email == e))
            .map(|a| {
                a.trust
                    .iter()
                    .filter(|m| m.starts_with(&prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let (added, removed) = set_diff(&principals, &have);
        if !added.is_empty() || !removed.is_empty() {
            steps.push(GcpStep::Trust {
                plan: i,
                email: emails[i].clone(),
                principals,
                added,
                removed,
            });
        }
    }
    // Project roles: one read-modify-write for every member.
    let mut members = Vec::new();
    for (i, p) in d.plans.iter().enumerate() {
        let roles = p.project_roles(d.project);
        let have: Vec<String> = emails[i]
            .as_ref()
            .map(|e| o.roles_of(&service_account_member(e)).into_iter().collect())
            .unwrap_or_default();
        let (added, removed) = set_diff(&roles, &have);
        if !added.is_empty() || !removed.is_empty() {
            members.push(MemberRoles {
                account: AccountRef::Plan(i),
                email: emails[i].clone(),
                roles,
                added,
                removed,
            });
        }
    }
    for a in &retired {
        let have: Vec<String> = o
            .roles_of(&service_account_member(&a.email))
            .into_iter()
            .collect();
        if !have.is_empty() {
            members.push(MemberRoles {
                account: AccountRef::Retired(a.email.clone()),
                email: Some(a.email.clone()),
                roles: Vec::new(),
                added: Vec::new(),
                removed: have,
            });
        }
    }
    if !members.is_empty() {
        steps.push(GcpStep::ProjectRoles(members));
    }
    for a in retired {
        steps.push(GcpStep::DeleteAccount {
            email: a.email.clone(),
            display_name: a.display_name.clone(),
        });
    }
    Ok(steps)
}

#[cfg(test)]
#[path = "converge_tests.rs"]
mod tests;
