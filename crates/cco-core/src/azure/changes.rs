//! The steps of [`super::plan_changes`] as the cloud-neutral [`PlanReport`] that `ccoctl azure
//! plan` prints: one [`Change`] per step, with the actions, subjects and issuers that change.
//! Kinds: `resource-group`, `storage-account`, `blob-container`, `blob`, `managed-identity`,
//! `custom-role`, `role-assignment`, `federated-credential`.

use super::{fic_name, retired, subject, AzureDesired, AzureObserved, AzureStep, AUDIENCE};
use crate::report::{Change, ChangeAction, DiffItem, PlanReport};

fn action(exists: bool) -> ChangeAction {
    if exists {
        ChangeAction::Update
    } else {
        ChangeAction::Create
    }
}

fn role_label(d: &AzureDesired<'_>, o: &AzureObserved, id: &str) -> String {
    let planned = d
        .plans
        .iter()
        .filter_map(|p| p.custom_role.as_ref())
        .find(|r| id.rsplit('/').next() == Some(r.id.as_str()));
    if let Some(r) = planned {
        return r.role_name.clone();
    }
    o.builtin_roles
        .iter()
        .find(|(_, v)| v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(id)))
        .map(|(n, _)| n.clone())
        .or_else(|| {
            o.roles
                .iter()
                .find(|(_, v)| v.iter().any(|r| r.id.eq_ignore_ascii_case(id)))
                .map(|(n, _)| n.clone())
        })
        .unwrap_or_else(|| id.rsplit('/').next().unwrap_or(id).to_string())
}

/// Renders `steps` as a plan report; identities no request asks for any more are notes unless
/// a step deletes them.
pub fn plan_report(d: &AzureDesired<'_>, o: &AzureObserved, steps: &[AzureStep]) -> PlanReport {
    let mut r = PlanReport::new("azure", d.name);
    let issuer = d.issuer(o);
    let name_of = |i: usize| {
        d.plans
            .get(i)
            .map(|p| p.identity_name.clone())
            .unwrap_or_default()
    };
    for s in steps {
        let change = match s {
            AzureStep::PutGroup {
                group,
                tags,
                exists,
            } => {
                Change::new(action(*exists), "resource-group", group).with_diff([DiffItem::change(
                    "tags",
                    o.groups
                        .get(group)
                        .cloned()
                        .flatten()
                        .map(|t| t.to_string()),
                    Some(tags.to_string()),
                )])
            }
            AzureStep::PutStorage { exists, diff } => {
                let c = Change::new(
                    action(*exists),
                    "storage-account",
                    format!("{} ({})", d.account, d.oidc_rg),
                );
                if *exists {
                    c.with_diff(diff.iter().map(DiffItem::note))
                } else {
                    c.with_diff([DiffItem::note(
                        "StorageV2, https only, TLS 1.2, public blob access allowed",
                    )])
                }
            }
            AzureStep::CreateContainer => {
                Change::new(ChangeAction::Create, "blob-container", &d.container).with_diff([
                    DiffItem::change(
                        "public access",
                        None,
                        Some(super::CONTAINER_PUBLIC_ACCESS.into()),
                    ),
                ])
            }
            AzureStep::MakeContainerPublic => {
                Change::new(ChangeAction::Update, "blob-container", &d.container).with_diff([
                    DiffItem::change(
                        "public access",
                        Some(
                            o.container
                                .as_ref()
                                .and_then(|c| c.access.clone())
                                .unwrap_or_else(|| "none".into()),
                        ),
                        Some(super::CONTAINER_PUBLIC_ACCESS.into()),
                    ),
                ])
            }
            AzureStep::PutBlob {
                path,
                added,
                removed,
                exists,
                ..
            } => {
                let mut diff = Vec::new();
                if !added.is_empty() {
                    diff.push(DiffItem::add("kids", added.clone()));
                }
                if !removed.is_empty() {
                    diff.push(DiffItem::remove("kids", removed.clone()));
                }
                if diff.is_empty() {
                    diff.push(DiffItem::note(format!("issuer {issuer}")));
                }
                Change::new(action(*exists), "blob", format!("{issuer}/{path}")).with_diff(diff)
            }
            AzureStep::PutIdentity { plan, exists } => {
                let c = Change::new(action(*exists), "managed-identity", name_of(*plan));
                if *exists {
                    let have = o.identity(&name_of(*plan)).map(|i| &i.tags);
                    c.with_diff([DiffItem::change(
                        "tags",
                        have.map(serde_json::Value::to_string),
                        Some(super::converge::merged_tags(have, &d.tags).to_string()),
                    )])
                } else {
                    c.with_diff([DiffItem::note(format!(
                        "for CredentialsRequest {} in resource group {}",
                        d.plans.get(*plan).map(|p| p.request.as_str()).unwrap_or(""),
                        d.oidc_rg
                    ))])
                }
            }
            AzureStep::PutRole {
                plan,
                exists,
                added,
                removed,
                other,
                ..
            } => {
                let mut diff = Vec::new();
                if !added.is_empty() {
                    diff.push(DiffItem::add("permissions", added.clone()));
                }
                if !removed.is_empty() {
                    diff.push(DiffItem::remove("permissions", removed.clone()));
                }
                diff.extend(other.iter().map(DiffItem::note));
                Change::new(action(*exists), "custom-role", name_of(*plan)).with_diff(diff)
            }
            AzureStep::CreateAssignment { plan, scope, role } => Change::new(
                ChangeAction::Create,
                "role-assignment",
                format!(
                    "{} to {} at {scope}",
                    role_label(d, o, role),
                    name_of(*plan)
                ),
            ),
            AzureStep::DeleteAssignment {
                identity,
                scope,
                role,
                ..
            } => Change::new(
                ChangeAction::Delete,
                "role-assignment",
                format!("{} to {identity} at {scope}", role_label(d, o, role)),
            )
            .with_diff([DiffItem::note("the request does not ask for it")]),
            AzureStep::PutFic {
                plan,
                sa,
                exists,
                diff,
            } => {
                let p = d.plans.get(*plan);
                let c = Change::new(
                    action(*exists),
                    "federated-credential",
                    format!("{}/{}", name_of(*plan), fic_name(sa)),
                );
                if *exists {
                    c.with_diff(diff.iter().map(DiffItem::note))
                } else {
                    c.with_diff([
                        DiffItem::change("issuer", None, Some(issuer.clone())),
                        DiffItem::change(
                            "subject",
                            None,
                            p.map(|p| subject(&p.secret_namespace, sa)),
                        ),
                        DiffItem::change("audiences", None, Some(AUDIENCE.into())),
                    ])
                }
            }
            AzureStep::DeleteIdentity { identity } => {
                Change::new(ChangeAction::Delete, "managed-identity", identity)
                    .with_diff([DiffItem::note("no request asks for it any more")])
            }
        };
        r.changes.push(change);
    }
    if !d.scope.retire {
        for id in retired(d, o) {
            r.notes.push(format!(
                "managed identity {} was made for this cluster but no request asks for it any more; create-all keeps it (delete it with: az identity delete --resource-group {} --name {})",
                id.name, d.oidc_rg, id.name
            ));
        }
    }
    r
}
