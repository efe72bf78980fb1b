//! `ccoctl gcp verify`, the GCP part, as pure functions of the observed state: the workload
//! identity pool and provider (issuer, audiences, mapping, embedded keys), and for each request its
//! service account, who may impersonate it, its project roles and custom role, and its Secret.
//! Check ids: `provider.pool`, `provider.provider`, `provider.issuer`, `provider.audiences`,
//! `provider.mapping`, `request.identity`, `request.trust`, `request.permissions`,
//! `request.secret`, `request.retired`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{
    credential_audience, service_account_member, GcpDesired, GcpObserved, ServiceAccountPlan,
    AUDIENCE, CREATED_BY,
};
use crate::report::Check;

/// The commands the checks name as fixes, built by the CLI from the flags it was given.
#[derive(Clone, Debug, Default)]
pub struct GcpFixes {
    /// Converges everything (`ccoctl gcp create-all …`).
    pub create_all: String,
    /// Converges the pool and provider and republishes the issuer
    /// (`ccoctl gcp create-workload-identity-provider …`).
    pub issuer: String,
    /// Converges the service accounts and rewrites the Secret manifests
    /// (`ccoctl gcp create-service-accounts …`).
    pub accounts: String,
    /// Where the Secret manifests are written (`<output-dir>/manifests`), to apply them.
    pub manifests_dir: String,
}

/// A request's Secret, as found in the manifests directory or the cluster.
#[derive(Clone, Debug)]
pub struct SecretFound {
    /// `manifests/…yaml` or `Secret <ns>/<name> in the cluster`.
    pub source: String,
    /// The decoded `service_account.json`, `None` when the Secret (or file) does not exist, or why
    /// it could not be read.
    pub config: Result<Option<Value>, String>,
}

/// Checks of the pool and provider.
pub fn provider_checks(d: &GcpDesired<'_>, o: &GcpObserved, fixes: &GcpFixes) -> Vec<Check> {
    let mut out = Vec::new();
    let fix = Some(fixes.issuer.clone());
    let pool = super::pool_resource(d.project, d.pool);
    match &o.pool {
        None => out.push(Check::fail(
            "provider.pool",
            &pool,
            "the workload identity pool does not exist",
            fix.clone(),
        )),
        Some(p) if p.deleted => out.push(Check::fail(
            "provider.pool",
            &pool,
            "the workload identity pool is deleted (restorable for 30 days)",
            fix.clone(),
        )),
        Some(p) if p.disabled => out.push(Check::fail(
            "provider.pool",
            &pool,
            "the workload identity pool is disabled",
            fix.clone(),
        )),
        Some(_) => out.push(Check::pass(
            "provider.pool",
            &pool,
            "the workload identity pool is active",
        )),
    }
    let subject = super::provider_resource(d.project, d.pool, d.provider);
    let Some(p) = &o.provider else {
        out.push(Check::fail(
            "provider.provider",
            &subject,
            "the workload identity provider does not exist",
            fix,
        ));
        return out;
    };
    if p.deleted || p.disabled {
        out.push(Check::fail(
            "provider.provider",
            &subject,
            if p.deleted {
                "the workload identity provider is deleted"
            } else {
                "the workload identity provider is disabled"
            },
            fix.clone(),
        ));
    } else {
        out.push(Check::pass(
            "provider.provider",
            &subject,
            "the workload identity provider is active",
        ));
    }
    out.push(if p.issuer == d.issuer {
        Check::pass(
            "provider.issuer",
            &subject,
            format!("the provider trusts the issuer {}", d.issuer),
        )
    } else {
        Check::fail(
            "provider.issuer",
            &subject,
            format!(
                "the provider trusts the issuer {:?}, not {:?}",
                p.issuer, d.issuer
            ),
            fix.clone(),
        )
    });
    out.push(if p.audiences.iter().any(|a| a == AUDIENCE) {
        Check::pass(
            "provider.audiences",
            &subject,
            format!("allowed audiences {:?} include {AUDIENCE:?}", p.audiences),
        )
    } else {
        Check::fail(
            "provider.audiences",
            &subject,
            format!(
                "allowed audiences {:?} do not include {AUDIENCE:?}, the audience of the cluster's tokens",
                p.audiences
            ),
            fix.clone(),
        )
    });
    out.push(
        if p.attribute_mapping.get("google.subject").map(String::as_str) == Some("assertion.sub") {
            Check::pass(
                "provider.mapping",
                &subject,
                "google.subject is mapped from assertion.sub",
            )
        } else {
            Check::fail(
                "provider.mapping",
                &subject,
                format!(
                    "attribute mapping {:?} does not map google.subject from assertion.sub, so principals name no ServiceAccount",
                    p.attribute_mapping
                ),
                fix,
            )
        },
    );
    out
}

/// Checks of one request (`d.plans[i]`): its service account, trust, permissions and Secret.
pub fn request_checks(
    d: &GcpDesired<'_>,
    o: &GcpObserved,
    i: usize,
    secret: &SecretFound,
    fixes: &GcpFixes,
) -> Vec<Check> {
    let mut out = Vec::new();
    let Some(p) = d.plans.get(i) else {
        return out;
    };
    let fix = Some(fixes.accounts.clone());
    let subject = format!("{} ({})", p.display_name, p.request);
    let found = o.accounts_named(&p.display_name);
    let account = match found.as_slice() {
        [] => {
            out.push(Check::fail(
                "request.identity",
                &subject,
                "no service account has this display name",
                fix,
            ));
            out.push(secret_check(d, o, p, None, secret, fixes));
            return out;
        }
        [a] => *a,
        many => {
            out.push(Check::fail(
                "request.identity",
                &subject,
                format!(
                    "{} service accounts have this display name ({}); delete all but one",
                    many.len(),
                    many.iter()
                        .map(|a| a.email.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None,
            ));
            return out;
        }
    };
    out.push(Check::pass(
        "request.identity",
        &subject,
        format!("service account {} exists", account.email),
    ));
    // Trust: exactly the request's ServiceAccounts, through this pool.
    let want: BTreeSet<String> = p
        .principals(&o.project_number, d.pool)
        .into_iter()
        .collect();
    let have: BTreeSet<String> = account.trust.iter().cloned().collect();
    let missing: Vec<&String> = want.difference(&have).collect();
    let extra: Vec<&String> = have.difference(&want).collect();
    out.push(if missing.is_empty() && extra.is_empty() {
        Check::pass(
            "request.trust",
            &account.email,
            format!(
                "roles/iam.workloadIdentityUser is held by exactly the principals of {} through pool {}",
                p.kubernetes_service_accounts
                    .iter()
                    .map(|(ns, sa)| format!("{ns}/{sa}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                d.pool
            ),
        )
    } else {
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!(
                "missing {}",
                missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        if !extra.is_empty() {
            why.push(format!(
                "also trusts {}",
                extra.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        Check::fail(
            "request.trust",
            &account.email,
            format!("who may impersonate it is not what the request says: {}", why.join("; ")),
            fix.clone(),
        )
    });
    // Permissions: exactly the request's project roles, and the custom role's permissions.
    let want: BTreeSet<String> = p.project_roles(d.project).into_iter().collect();
    let have = o.roles_of(&service_account_member(&account.email));
    let mut problems = Vec::new();
    let missing: Vec<&String> = want.difference(&have).collect();
    let extra: Vec<&String> = have.difference(&want).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "project roles missing: {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !extra.is_empty() {
        problems.push(format!(
            "project roles not asked for: {}",
            extra
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(role) = &p.custom_role {
        match o.roles.get(&role.id) {
            None => problems.push(format!("custom role {} does not exist", role.id)),
            Some(r) if r.deleted => problems.push(format!("custom role {} is deleted", role.id)),
            Some(r) => {
                let want: BTreeSet<&String> = role.permissions.iter().collect();
                let have: BTreeSet<&String> = r.permissions.iter().collect();
                let missing: Vec<&str> = want.difference(&have).map(|s| s.as_str()).collect();
                let extra: Vec<&str> = have.difference(&want).map(|s| s.as_str()).collect();
                if !missing.is_empty() {
                    problems.push(format!(
                        "custom role {} lacks {}",
                        role.id,
                        missing.join(", ")
                    ));
                }
                if !extra.is_empty() {
                    problems.push(format!(
                        "custom role {} also grants {}",
                        role.id,
                        extra.join(", ")
                    ));
                }
            }
        }
    }
    out.push(if problems.is_empty() {
        Check::pass(
            "request.permissions",
            &account.email,
            format!(
                "holds exactly the requested roles ({}){}",
                want.len(),
                if p.custom_role.is_some() {
                    " and the custom role has exactly the requested permissions"
                } else {
                    ""
                }
            ),
        )
    } else {
        Check::fail(
            "request.permissions",
            &account.email,
            problems.join("; "),
            fix,
        )
    });
    out.push(secret_check(d, o, p, Some(&account.email), secret, fixes));
    out
}

fn secret_check(
    d: &GcpDesired<'_>,
    o: &GcpObserved,
    p: &ServiceAccountPlan,
    email: Option<&str>,
    secret: &SecretFound,
    fixes: &GcpFixes,
) -> Check {
    let subject = format!(
        "{}/{} ({})",
        p.secret_namespace, p.secret_name, secret.source
    );
    let apply = format!(
        "{} && oc apply -f {}/{}-{}-credentials.yaml",
        fixes.accounts, fixes.manifests_dir, p.secret_namespace, p.secret_name
    );
    let config = match Check::secret_contents(&secret.config, &subject, &apply) {
        Ok(contents) => contents,
        Err(check) => return check,
    };
    let mut problems = Vec::new();
    if config["type"] != "external_account" {
        problems.push(format!("type is {}, not external_account", config["type"]));
    }
    let audience = credential_audience(&o.project_number, d.pool, d.provider);
    if config["audience"].as_str() != Some(audience.as_str()) {
        problems.push(format!(
            "audience is {}, not {audience}",
            config["audience"]
        ));
    }
    let url = config["service_account_impersonation_url"]
        .as_str()
        .unwrap_or("");
    match email {
        Some(e) if url.contains(&format!("/serviceAccounts/{e}:")) => {}
        Some(e) => problems.push(format!(
            "it impersonates {url:?}, not the request's service account {e}"
        )),
        None => problems.push(format!(
            "it impersonates {url:?}, but the request's service account does not exist"
        )),
    }
    if config["credential_source"]["file"].as_str() != Some(p.token_path.as_str()) {
        problems.push(format!(
            "the token file is {}, not {}",
            config["credential_source"]["file"], p.token_path
        ));
    }
    if problems.is_empty() {
        Check::pass(
            "request.secret",
            &subject,
            "the Secret points at the service account through the provider, with the right token path",
        )
    } else {
        Check::fail("request.secret", &subject, problems.join("; "), Some(apply))
    }
}

/// Warnings for service accounts made for this cluster that no request asks for any more.
pub fn retired_checks(d: &GcpDesired<'_>, o: &GcpObserved, fixes: &GcpFixes) -> Vec<Check> {
    let wanted: BTreeSet<&str> = d.plans.iter().map(|p| p.display_name.as_str()).collect();
    let prefix = d.principal_prefix(&o.project_number);
    o.accounts
        .iter()
        .filter(|a| {
            !wanted.contains(a.display_name.as_str())
                && a.description.starts_with(CREATED_BY)
                && a.trust.iter().any(|m| m.starts_with(&prefix))
        })
        .map(|a| {
            Check::warn(
                "request.retired",
                &a.email,
                format!(
                    "service account {} was made for this cluster but no request asks for it any more",
                    a.display_name
                ),
                Some(format!("{} --delete-retired", fixes.create_all)),
            )
        })
        .collect()
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
