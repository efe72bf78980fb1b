//! `ccoctl azure verify`, the Azure part, as pure functions of the observed state
//! ([`AzureObserved`]): the issuer's storage account and container, and for each request its
//! managed identity, the federated identity credentials that let the cluster's ServiceAccounts use
//! it (issuer, subject, audience), its role assignments and custom role, and its Secret.
//! Check ids: `storage.account`, `storage.container`, `request.identity`, `request.trust`,
//! `request.permissions`, `request.secret`, `request.retired`.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    fic_name, retired, role_definition_body, subject, wanted_assignments, AzureDesired,
    AzureObserved, IdentityPlan, AUDIENCE,
};
use crate::report::Check;

/// The commands the checks name as fixes, built by the CLI from the flags it was given.
#[derive(Clone, Debug, Default)]
pub struct AzFixes {
    /// Converges everything (`ccoctl azure create-all …`).
    pub create_all: String,
    /// Converges the storage account and container and republishes the documents
    /// (`ccoctl azure create-oidc-issuer …`).
    pub issuer: String,
    /// Converges the identities and rewrites the Secret manifests
    /// (`ccoctl azure create-managed-identities …`).
    pub identities: String,
    /// Where the Secret manifests are written (`<output-dir>/manifests`), to apply them.
    pub manifests_dir: String,
}

/// A request's Secret, as found in the manifests directory or the cluster.
#[derive(Clone, Debug)]
pub struct AzSecretFound {
    /// The manifest's path, or `in the cluster`.
    pub source: String,
    /// Its data (`azure_client_id`, …) as text, `None` when the Secret (or file) does not exist,
    /// or why it could not be read.
    pub data: Result<Option<BTreeMap<String, String>>, String>,
}

/// The Secret keys and the values they must hold, for one request.
fn wanted_secret(
    d: &AzureDesired<'_>,
    p: &IdentityPlan,
    client_id: &str,
    tenant: &str,
) -> [(&'static str, String); 5] {
    [
        ("azure_client_id", client_id.to_string()),
        ("azure_tenant_id", tenant.to_string()),
        ("azure_region", d.region.to_string()),
        ("azure_subscription_id", d.subscription.to_string()),
        ("azure_federated_token_file", p.token_path.clone()),
    ]
}

/// Checks of the issuer's storage account and container (whether anonymous readers get the
/// documents is checked by fetching them, in `oidc_checks`).
pub fn storage_checks(d: &AzureDesired<'_>, o: &AzureObserved, fixes: &AzFixes) -> Vec<Check> {
    let mut out = Vec::new();
    let fix = Some(fixes.issuer.clone());
    let account = format!("storage account {} ({})", d.account, d.oidc_rg);
    match &o.storage {
        None => {
            out.push(Check::fail(
                "storage.account",
                &account,
                "the storage account does not exist",
                fix,
            ));
            return out;
        }
        Some(s) if !s.allow_blob_public_access => out.push(Check::fail(
            "storage.account",
            &account,
            "allowBlobPublicAccess is false: the issuer documents cannot be read anonymously",
            fix.clone(),
        )),
        Some(_) => out.push(Check::pass(
            "storage.account",
            &account,
            "the storage account exists and allows public blob access",
        )),
    }
    let container = format!("container {}", d.container);
    out.push(match &o.container {
        None => Check::fail(
            "storage.container",
            &container,
            "the blob container does not exist",
            fix,
        ),
        Some(c) if c.access.is_none() => Check::fail(
            "storage.container",
            &container,
            "the blob container is private: token exchanges cannot read the issuer documents",
            fix,
        ),
        Some(_) => Check::pass(
            "storage.container",
            &container,
            "the blob container allows anonymous reads of its blobs",
        ),
    });
    out
}

fn list(v: &[String]) -> String {
    v.join(", ")
}

/// Checks of one request (`d.plans[i]`): its identity, trust, permissions and Secret.
pub fn request_checks(
    d: &AzureDesired<'_>,
    o: &AzureObserved,
    i: usize,
    secret: &AzSecretFound,
    fixes: &AzFixes,
) -> Vec<Check> {
    let mut out = Vec::new();
    let Some(p) = d.plans.get(i) else {
        return out;
    };
    let fix = Some(fixes.identities.clone());
    let subject_line = format!("{} ({})", p.identity_name, p.request);
    let Some(id) = o.identity(&p.identity_name) else {
        out.push(Check::fail(
            "request.identity",
            &subject_line,
            format!(
                "managed identity {} does not exist in resource group {}",
                p.identity_name, d.oidc_rg
            ),
            fix,
        ));
        out.push(secret_check(d, p, None, secret, fixes));
        return out;
    };
    out.push(Check::pass(
        "request.identity",
        &subject_line,
        format!("managed identity exists (client id {})", id.client_id),
    ));

    // Trust: one federated credential per ServiceAccount, with the issuer, subject and audience.
    let issuer = d.issuer(o);
    let mut problems = Vec::new();
    for sa in &p.service_accounts {
        let want = subject(&p.secret_namespace, sa);
        match id.fics.iter().find(|f| f.name == fic_name(sa)) {
            None => problems.push(format!("no federated credential for {want}")),
            Some(f) => {
                if f.issuer != issuer {
                    problems.push(format!(
                        "federated credential {} trusts issuer {:?}, not {issuer:?}",
                        f.name, f.issuer
                    ));
                }
                if f.subject != want {
                    problems.push(format!(
                        "federated credential {} has subject {:?}, not {want:?}",
                        f.name, f.subject
                    ));
                }
                if f.audiences != [AUDIENCE] {
                    problems.push(format!(
                        "federated credential {} has audiences {:?}, not [{AUDIENCE:?}]",
                        f.name, f.audiences
                    ));
                }
            }
        }
    }
    let names: BTreeSet<String> = p.service_accounts.iter().map(|s| fic_name(s)).collect();
    let extra: Vec<_> = id
        .fics
        .iter()
        .filter(|f| !names.contains(&f.name))
        .collect();
    for f in &extra {
        problems.push(format!(
            "federated credential {} also trusts {} (issuer {})",
            f.name, f.subject, f.issuer
        ));
    }
    out.push(if problems.is_empty() {
        Check::pass(
            "request.trust",
            &p.identity_name,
            format!(
                "federated credentials trust exactly {} from {issuer} with audience {AUDIENCE}",
                list(
                    &p.service_accounts
                        .iter()
                        .map(|sa| subject(&p.secret_namespace, sa))
                        .collect::<Vec<_>>()
                )
            ),
        )
    } else {
        // Credentials of other names are never removed by create-*: name the command that does.
        let fix = if extra.is_empty() {
            fixes.identities.clone()
        } else {
            let dels: Vec<String> = extra
                .iter()
                .map(|f| {
                    format!(
                        "az identity federated-credential delete --yes --resource-group {} --identity-name {} --name {}",
                        d.oidc_rg, p.identity_name, f.name
                    )
                })
                .collect();
            if extra.len() == problems.len() {
                dels.join(" && ")
            } else {
                format!("{} && {}", fixes.identities, dels.join(" && "))
            }
        };
        Check::fail(
            "request.trust",
            &p.identity_name,
            problems.join("; "),
            Some(fix),
        )
    });

    // Permissions: exactly the request's role assignments, and the custom role's permissions.
    let mut problems = Vec::new();
    match wanted_assignments(d, o, p) {
        Err(e) => problems.push(e.to_string()),
        Ok(wanted) => {
            let role_name = |id: &str| -> String {
                if let Some((n, _)) = o
                    .builtin_roles
                    .iter()
                    .find(|(_, v)| v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(id)))
                {
                    return n.clone();
                }
                if let Some((n, _)) = o
                    .roles
                    .iter()
                    .find(|(_, v)| v.iter().any(|r| r.id.eq_ignore_ascii_case(id)))
                {
                    return n.clone();
                }
                match &p.custom_role {
                    Some(c) if id.ends_with(&c.id) => c.role_name.clone(),
                    _ => id.to_string(),
                }
            };
            let same = |s: &str, r: &str, s2: &str, r2: &str| {
                s.eq_ignore_ascii_case(s2) && r.eq_ignore_ascii_case(r2)
            };
            let missing: Vec<String> = wanted
                .iter()
                .filter(|(s, r)| {
                    !id.assignments
                        .iter()
                        .any(|a| same(&a.scope, &a.role_definition_id, s, r))
                })
                .map(|(s, r)| format!("{} at {s}", role_name(r)))
                .collect();
            let extra: Vec<String> = id
                .assignments
                .iter()
                .filter(|a| {
                    !wanted
                        .iter()
                        .any(|(s, r)| same(&a.scope, &a.role_definition_id, s, r))
                })
                .map(|a| format!("{} at {}", role_name(&a.role_definition_id), a.scope))
                .collect();
            if !missing.is_empty() {
                problems.push(format!("role assignments missing: {}", list(&missing)));
            }
            if !extra.is_empty() {
                problems.push(format!("role assignments not asked for: {}", list(&extra)));
            }
        }
    }
    if let Some(role) = &p.custom_role {
        match o.roles.get(&role.role_name).map(Vec::as_slice) {
            None | Some([]) => {
                problems.push(format!("custom role {} does not exist", role.role_name))
            }
            Some([r]) => {
                let want = role_definition_body(role, d.name, d.subscription);
                let wp = &want["properties"]["permissions"][0];
                let hp = &r.properties["permissions"][0];
                for (field, label) in [("actions", "actions"), ("dataActions", "data actions")] {
                    let w: BTreeSet<&str> = strs(&wp[field]);
                    let h: BTreeSet<&str> = strs(&hp[field]);
                    let lacks: Vec<&str> = w.difference(&h).copied().collect();
                    let more: Vec<&str> = h.difference(&w).copied().collect();
                    if !lacks.is_empty() {
                        problems.push(format!(
                            "custom role {} lacks {label} {}",
                            role.role_name,
                            lacks.join(", ")
                        ));
                    }
                    if !more.is_empty() {
                        problems.push(format!(
                            "custom role {} also grants {label} {}",
                            role.role_name,
                            more.join(", ")
                        ));
                    }
                }
                for field in ["notActions", "notDataActions"] {
                    if !strs(&hp[field]).is_empty() {
                        problems.push(format!(
                            "custom role {} has {field} the request does not ask for",
                            role.role_name
                        ));
                    }
                }
            }
            Some(many) => problems.push(format!(
                "{} role definitions are named {}; delete all but one",
                many.len(),
                role.role_name
            )),
        }
    }
    out.push(if problems.is_empty() {
        Check::pass(
            "request.permissions",
            &p.identity_name,
            format!(
                "holds exactly the requested role assignments on {}{}",
                list(&p.scopes),
                if p.custom_role.is_some() {
                    ", and the custom role grants exactly the requested permissions"
                } else {
                    ""
                }
            ),
        )
    } else {
        let fix = if d.preserve_existing_roles {
            fixes.identities.replace(" --preserve-existing-roles", "")
        } else {
            fixes.identities.clone()
        };
        Check::fail(
            "request.permissions",
            &p.identity_name,
            problems.join("; "),
            Some(fix),
        )
    });
    out.push(secret_check(
        d,
        p,
        Some((&id.client_id, &id.tenant_id)),
        secret,
        fixes,
    ));
    out
}

fn strs(v: &serde_json::Value) -> BTreeSet<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .collect()
}

fn secret_check(
    d: &AzureDesired<'_>,
    p: &IdentityPlan,
    identity: Option<(&str, &str)>,
    secret: &AzSecretFound,
    fixes: &AzFixes,
) -> Check {
    let subject = format!(
        "{}/{} ({})",
        p.secret_namespace, p.secret_name, secret.source
    );
    let apply = format!(
        "{} && oc apply -f {}/{}-{}-credentials.yaml",
        fixes.identities, fixes.manifests_dir, p.secret_namespace, p.secret_name
    );
    let data = match Check::secret_contents(&secret.data, &subject, &apply) {
        Ok(contents) => contents,
        Err(check) => return check,
    };
    let mut problems = Vec::new();
    let Some((client_id, tenant)) = identity else {
        return Check::fail(
            "request.secret",
            &subject,
            format!(
                "it names client id {:?}, but the request's managed identity does not exist",
                data.get("azure_client_id")
                    .map(String::as_str)
                    .unwrap_or("")
            ),
            Some(apply),
        );
    };
    for (key, want) in wanted_secret(d, p, client_id, tenant) {
        // An identity read without a tenant (some clouds omit it) does not decide the tenant.
        if key == "azure_tenant_id" && want.is_empty() {
            continue;
        }
        match data.get(key) {
            None => problems.push(format!("it has no {key}")),
            Some(v) if *v != want => {
                let what = if key == "azure_client_id" {
                    " (the client id of another, perhaps deleted, identity)"
                } else {
                    ""
                };
                problems.push(format!("{key} is {v:?}, not {want:?}{what}"))
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Check::pass(
            "request.secret",
            &subject,
            "the Secret names the managed identity's client id, tenant, region, subscription and token path",
        )
    } else {
        Check::fail("request.secret", &subject, problems.join("; "), Some(apply))
    }
}

/// Warnings for identities made for this cluster that no request asks for any more.
pub fn retired_checks(d: &AzureDesired<'_>, o: &AzureObserved) -> Vec<Check> {
    retired(d, o)
        .into_iter()
        .map(|id| {
            Check::warn(
                "request.retired",
                &id.name,
                "managed identity was made for this cluster but no request asks for it any more",
                Some(format!(
                    "az identity delete --resource-group {} --name {}",
                    d.oidc_rg, id.name
                )),
            )
        })
        .collect()
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
