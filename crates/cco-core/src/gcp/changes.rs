//! The steps of [`super::plan_changes`] as the cloud-neutral [`PlanReport`] that `ccoctl gcp plan`
//! prints: one [`Change`] per step (one per service account for the project-policy step), with the
//! permissions, roles and principals added and removed.

use super::{bucket_name, pool_resource, AccountRef, GcpDesired, GcpObserved, GcpStep, CREATED_BY};
use crate::report::{Change, ChangeAction, DiffItem, PlanReport};

fn account_name(d: &GcpDesired<'_>, a: &AccountRef, email: Option<&String>) -> String {
    match (a, email) {
        (AccountRef::Plan(i), Some(e)) => format!(
            "{e} ({})",
            d.plans
                .get(*i)
                .map(|p| p.display_name.as_str())
                .unwrap_or("")
        ),
        (AccountRef::Plan(i), None) => format!(
            "{} (new)",
            d.plans
                .get(*i)
                .map(|p| p.display_name.as_str())
                .unwrap_or("")
        ),
        (AccountRef::Retired(e), _) => e.clone(),
    }
}

/// Renders `steps` as a plan report.
pub fn plan_report(d: &GcpDesired<'_>, o: &GcpObserved, steps: &[GcpStep]) -> PlanReport {
    let mut r = PlanReport::new("gcp", d.name);
    let bucket = bucket_name(d.name);
    for s in steps {
        match s {
            GcpStep::CreatePool => r.changes.push(
                Change::new(
                    ChangeAction::Create,
                    "workload-identity-pool",
                    pool_resource(d.project, d.pool),
                )
                .with_diff([DiffItem::change(
                    "description",
                    None,
                    Some(CREATED_BY.into()),
                )]),
            ),
            GcpStep::UndeletePool => r.changes.push(
                Change::new(
                    ChangeAction::Update,
                    "workload-identity-pool",
                    pool_resource(d.project, d.pool),
                )
                .with_diff([DiffItem::change(
                    "state",
                    Some("DELETED".into()),
                    Some("ACTIVE".into()),
                )]),
            ),
            GcpStep::CreateBucket => r.changes.push(
                Change::new(ChangeAction::Create, "gcs-bucket", &bucket).with_diff([
                    DiffItem::change("location", None, Some(d.region.to_string())),
                    DiffItem::note("uniform bucket-level access"),
                ]),
            ),
            GcpStep::MakeBucketPublic => r.changes.push(
                Change::new(ChangeAction::Update, "gcs-bucket-iam", &bucket).with_diff([
                    DiffItem::add("roles/storage.objectViewer", vec!["allUsers".into()]),
                ]),
            ),
            GcpStep::PutObject {
                path,
                added,
                removed,
                exists,
                ..
            } => {
                let action = if *exists {
                    ChangeAction::Update
                } else {
                    ChangeAction::Create
                };
                let mut c = Change::new(action, "gcs-object", format!("gs://{bucket}/{path}"));
                if !added.is_empty() {
                    c.diff.push(DiffItem::add("keys", added.clone()));
                }
                if !removed.is_empty() {
                    c.diff.push(DiffItem::remove("keys", removed.clone()));
                }
                if c.diff.is_empty() {
                    c.diff.push(DiffItem::note(format!(
                        "content differs from what {} publishes",
                        d.issuer
                    )));
                }
                r.changes.push(c);
            }
            GcpStep::CreateProvider { .. } => r.changes.push(
                Change::new(
                    ChangeAction::Create,
                    "workload-identity-provider",
                    super::provider_resource(d.project, d.pool, d.provider),
                )
                .with_diff([
                    DiffItem::change("issuer", None, Some(d.issuer.clone())),
                    DiffItem::add("allowed_audiences", vec![super::AUDIENCE.into()]),
                ]),
            ),
            GcpStep::RestoreProvider { .. } => r.changes.push(
                Change::new(
                    ChangeAction::Update,
                    "workload-identity-provider",
                    super::provider_resource(d.project, d.pool, d.provider),
                )
                .with_diff([
                    DiffItem::note("restored with its pool (or created if it was not deleted with it), then set to:"),
                    DiffItem::change("issuer", None, Some(d.issuer.clone())),
                    DiffItem::add("allowed_audiences", vec![super::AUDIENCE.into()]),
                ]),
            ),
            GcpStep::UndeleteProvider => r.changes.push(
                Change::new(
                    ChangeAction::Update,
                    "workload-identity-provider",
                    super::provider_resource(d.project, d.pool, d.provider),
                )
                .with_diff([DiffItem::change(
                    "state",
                    Some("DELETED".into()),
                    Some("ACTIVE".into()),
                )]),
            ),
            GcpStep::PatchProvider { diff, .. } => r.changes.push(
                Change::new(
                    ChangeAction::Update,
                    "workload-identity-provider",
                    super::provider_resource(d.project, d.pool, d.provider),
                )
                .with_diff(diff.iter().map(DiffItem::note)),
            ),
            GcpStep::CreateRole(role) => r.changes.push(
                Change::new(
                    ChangeAction::Create,
                    "custom-role",
                    super::role_name(d.project, &role.id),
                )
                .with_diff([DiffItem::add("permissions", role.permissions.clone())]),
            ),
            GcpStep::UndeleteRole(id) => r.changes.push(
                Change::new(
                    ChangeAction::Update,
                    "custom-role",
                    super::role_name(d.project, id),
                )
                .with_diff([DiffItem::change(
                    "deleted",
                    Some("true".into()),
                    Some("false".into()),
                )]),
            ),
            GcpStep::UpdateRole {
                role,
                added,
                removed,
                other,
            } => {
                let mut c = Change::new(
                    ChangeAction::Update,
                    "custom-role",
                    super::role_name(d.project, &role.id),
                );
                if !added.is_empty() {
                    c.diff.push(DiffItem::add("permissions", added.clone()));
                }
                if !removed.is_empty() {
                    c.diff
                        .push(DiffItem::remove("permissions", removed.clone()));
                }
                c.diff.extend(other.iter().map(DiffItem::note));
                r.changes.push(c);
            }
            GcpStep::CreateAccount(i) => {
                let Some(p) = d.plans.get(*i) else { continue };
                r.changes.push(
                    Change::new(ChangeAction::Create, "service-account", &p.display_name)
                        .with_diff([DiffItem::note(format!(
                            "for CredentialsRequest {} ({})",
                            p.request, p.source
                        ))]),
                );
            }
            GcpStep::ProjectRoles(members) => {
                for m in members {
                    let action = if matches!(m.account, AccountRef::Retired(_)) {
                        ChangeAction::Delete
                    } else if m.email.is_none() {
                        ChangeAction::Create
                    } else {
                        ChangeAction::Update
                    };
                    let mut c = Change::new(
                        action,
                        "role-binding",
                        format!(
                            "project {}: {}",
                            d.project,
                            account_name(d, &m.account, m.email.as_ref())
                        ),
                    );
                    if !m.added.is_empty() {
                        c.diff.push(DiffItem::add("roles", m.added.clone()));
                    }
                    if !m.removed.is_empty() {
                        c.diff.push(DiffItem::remove("roles", m.removed.clone()));
                    }
                    r.changes.push(c);
                }
            }
            GcpStep::Trust {
                plan,
                email,
                added,
                removed,
                ..
            } => {
                let action = if email.is_none() {
                    ChangeAction::Create
                } else {
                    ChangeAction::Update
                };
                let mut c = Change::new(
                    action,
                    "workload-identity-binding",
                    account_name(d, &AccountRef::Plan(*plan), email.as_ref()),
                );
                let short = |v: &Vec<String>| -> Vec<String> {
                    v.iter()
                        .map(|m| {
                            m.split_once("/subject/")
                                .map(|(_, s)| s.to_string())
                                .unwrap_or_else(|| m.clone())
                        })
                        .collect()
                };
                if !added.is_empty() {
                    c.diff.push(DiffItem::add("subjects", short(added)));
                }
                if !removed.is_empty() {
                    c.diff.push(DiffItem::remove("subjects", short(removed)));
                }
                c.diff.push(DiffItem::note(format!(
                    "roles/iam.workloadIdentityUser through pool {} (project number {})",
                    d.pool, o.project_number
                )));
                r.changes.push(c);
            }
            GcpStep::DeleteAccount {
                email,
                display_name,
            } => r.changes.push(
                Change::new(ChangeAction::Delete, "service-account", email).with_diff([
                    DiffItem::note(format!("{display_name}: no request asks for it any more")),
                ]),
            ),
        }
    }
    if !d.scope.retire && d.scope.accounts {
        for c in super::retired_checks(d, o, &super::GcpFixes::default()) {
            r.notes.push(format!(
                "service account {} was made for this cluster but no request asks for it any more; create-all keeps it (pass --delete-retired to delete it)",
                c.subject
            ));
        }
    }
    r
}
