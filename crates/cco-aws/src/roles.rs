//! `create-iam-roles`: one role per request, its trust policy, inline policy and tags.
//!
//! The roles are observed first ([`crate::observe::observe_roles`]) and compared with their plans
//! (`cco_core::aws::diff_roles`); only the resulting steps are executed, one API call each, roles
//! concurrently (bounded by [`Aws::concurrency`]). An existing role is brought up to date: its trust
//! policy is replaced by the planned one when it differs (the reference tool leaves it stale), its
//! tags and permissions boundary set, and its inline policy rewritten when it differs.

use cco_core::aws::{diff_roles, RoleDeletion, RoleDiff, RolePlan, RoleStep};
use futures::stream::{self, StreamExt};

use crate::idp::iam_tags as to_iam_tags;
use crate::observe::observe_roles;
use crate::retry::eventually;
use crate::{Aws, AwsError};

/// What happened to a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleChange {
    Created,
    Updated,
    /// It already matched its plan; nothing was called.
    Unchanged,
}

/// The role side of a change plan: each requested role's steps, the deletions, and notes.
#[derive(Clone, Debug, Default)]
pub struct RolesPlan {
    pub roles: Vec<RoleDiff>,
    pub deletions: Vec<RoleDeletion>,
    pub notes: Vec<String>,
}

/// Observes the roles and compares them with `plans`. `name` is the `--name` (roles are
/// `<name>-…`); with `look_for_unrequested`, the owned roles no request asks for are found too, and
/// with `delete_unrequested` they are planned for deletion. Reads only.
pub async fn plan_role_changes(
    aws: &Aws,
    name: &str,
    plans: &[RolePlan],
    look_for_unrequested: bool,
    delete_unrequested: bool,
) -> Result<RolesPlan, AwsError> {
    let (existing, others) = observe_roles(
        aws,
        &format!("{name}-"),
        plans,
        look_for_unrequested || delete_unrequested,
    )
    .await?;
    let (roles, deletions, notes) = diff_roles(name, plans, &existing, &others, delete_unrequested);
    Ok(RolesPlan {
        roles,
        deletions,
        notes,
    })
}

async fn create_role(aws: &Aws, plan: &RolePlan) -> Result<bool, AwsError> {
    let trust = plan.trust_policy.to_string();
    let tags = to_iam_tags(&plan.tags)?;
    eventually(|| async {
        match aws
            .iam
            .create_role()
            .role_name(&plan.role_name)
            .assume_role_policy_document(&trust)
            .description(&plan.description)
            .set_permissions_boundary(plan.permissions_boundary.clone())
            .set_tags(Some(tags.clone()))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_already_exists_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsError::call("iam:CreateRole", &plan.role_name, e)),
        }
    })
    .await
}

async fn update_trust(aws: &Aws, plan: &RolePlan) -> Result<(), AwsError> {
    let trust = plan.trust_policy.to_string();
    eventually(|| async {
        aws.iam
            .update_assume_role_policy()
            .role_name(&plan.role_name)
            .policy_document(&trust)
            .send()
            .await
            .map_err(|e| AwsError::call("iam:UpdateAssumeRolePolicy", &plan.role_name, e))
    })
    .await?;
    Ok(())
}

async fn tag_role(aws: &Aws, plan: &RolePlan) -> Result<(), AwsError> {
    aws.iam
        .tag_role()
        .role_name(&plan.role_name)
        .set_tags(Some(to_iam_tags(&plan.tags)?))
        .send()
        .await
        .map_err(|e| AwsError::call("iam:TagRole", &plan.role_name, e))?;
    Ok(())
}

async fn put_boundary(aws: &Aws, plan: &RolePlan) -> Result<(), AwsError> {
    if let Some(b) = &plan.permissions_boundary {
        aws.iam
            .put_role_permissions_boundary()
            .role_name(&plan.role_name)
            .permissions_boundary(b)
            .send()
            .await
            .map_err(|e| AwsError::call("iam:PutRolePermissionsBoundary", &plan.role_name, e))?;
    }
    Ok(())
}

async fn put_policy(aws: &Aws, plan: &RolePlan) -> Result<(), AwsError> {
    let policy = plan.policy.to_string();
    eventually(|| async {
        aws.iam
            .put_role_policy()
            .role_name(&plan.role_name)
            .policy_name(&plan.policy_name)
            .policy_document(&policy)
            .send()
            .await
            .map_err(|e| AwsError::call("iam:PutRolePolicy", &plan.role_name, e))
    })
    .await?;
    Ok(())
}

/// Executes one role's steps. A role found to exist when creating it (another run made it in
/// between) gets its trust, tags and boundary set instead.
pub async fn apply_role_steps(
    aws: &Aws,
    plan: &RolePlan,
    steps: &[RoleStep],
) -> Result<RoleChange, AwsError> {
    let mut outcome = if steps.is_empty() {
        RoleChange::Unchanged
    } else {
        RoleChange::Updated
    };
    for step in steps {
        match step {
            RoleStep::CreateRole => {
                if create_role(aws, plan).await? {
                    outcome = RoleChange::Created;
                } else {
                    update_trust(aws, plan).await?;
                    tag_role(aws, plan).await?;
                    put_boundary(aws, plan).await?;
                }
            }
            RoleStep::UpdateTrust => update_trust(aws, plan).await?,
            RoleStep::TagRole => tag_role(aws, plan).await?,
            RoleStep::PutBoundary => put_boundary(aws, plan).await?,
            RoleStep::PutPolicy => put_policy(aws, plan).await?,
        }
    }
    Ok(outcome)
}

/// Deletes an owned role no request asks for: its inline policies, its attachments, then itself.
pub async fn apply_role_deletion(aws: &Aws, del: &RoleDeletion) -> Result<(), AwsError> {
    let role = &del.role;
    let gone = |e: &AwsError| e.code() == Some("NoSuchEntity");
    for p in &del.inline_policies {
        let r = aws
            .iam
            .delete_role_policy()
            .role_name(role)
            .policy_name(p)
            .send()
            .await
            .map_err(|e| AwsError::call("iam:DeleteRolePolicy", role, e));
        match r {
            Err(e) if !gone(&e) => return Err(e),
            _ => {}
        }
    }
    for arn in &del.attached_policies {
        let r = aws
            .iam
            .detach_role_policy()
            .role_name(role)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| AwsError::call("iam:DetachRolePolicy", role, e));
        match r {
            Err(e) if !gone(&e) => return Err(e),
            _ => {}
        }
    }
    match aws
        .iam
        .delete_role()
        .role_name(role)
        .send()
        .await
        .map_err(|e| AwsError::call("iam:DeleteRole", role, e))
    {
        Err(e) if !gone(&e) => return Err(e),
        _ => {}
    }
    tracing::debug!(%role, "role no request asks for deleted");
    Ok(())
}

/// Executes a roles plan: every role's steps concurrently, `on_done` called as each finishes (in
/// completion order) so the caller can write its Secret at once and show progress; then the
/// deletions. Returns the failures (role name and error).
pub async fn apply_role_plan<F>(
    aws: &Aws,
    plans: &[RolePlan],
    roles_plan: &RolesPlan,
    mut on_done: F,
) -> Vec<(String, AwsError)>
where
    F: FnMut(&RolePlan, &Result<RoleChange, AwsError>),
{
    let mut failures = Vec::new();
    let work: Vec<(&RolePlan, &RoleDiff)> = roles_plan
        .roles
        .iter()
        .filter_map(|d| plans.get(d.index).map(|p| (p, d)))
        .collect();
    let mut results = stream::iter(work)
        .map(|(p, d)| async move { (p, apply_role_steps(aws, p, &d.steps).await) })
        .buffer_unordered(aws.concurrency);
    while let Some((plan, result)) = results.next().await {
        on_done(plan, &result);
        if let Err(e) = result {
            failures.push((plan.role_name.clone(), e));
        }
    }
    let deleted: Vec<_> = stream::iter(&roles_plan.deletions)
        .map(|d| async move { (d, apply_role_deletion(aws, d).await) })
        .buffer_unordered(aws.concurrency)
        .collect()
        .await;
    for (d, r) in deleted {
        if let Err(e) = r {
            failures.push((d.role.clone(), e));
        }
    }
    failures
}

/// Observes, plans and applies every role of `plans` (no deletions). Safe to re-run.
pub async fn apply_roles<F>(aws: &Aws, plans: &[RolePlan], on_done: F) -> Vec<(String, AwsError)>
where
    F: FnMut(&RolePlan, &Result<RoleChange, AwsError>),
{
    let (existing, _) = match observe_roles(aws, "", plans, false).await {
        Ok(o) => o,
        Err(e) => return vec![("(listing roles)".to_string(), e)],
    };
    let (roles, _, _) = diff_roles("", plans, &existing, &[], false);
    let roles_plan = RolesPlan {
        roles,
        ..Default::default()
    };
    apply_role_plan(aws, plans, &roles_plan, on_done).await
}
