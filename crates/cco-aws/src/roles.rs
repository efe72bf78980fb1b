//! `create-iam-roles`: one role per request, its trust policy, inline policy and tags.
//!
//! Roles are independent, so they are applied concurrently (bounded by [`Aws::concurrency`]). An
//! existing role is brought up to date: its trust policy is replaced by the planned one (the reference
//! tool leaves it stale), its tags and permissions boundary set, and its inline policy rewritten.

use cco_core::aws::RolePlan;
use futures::stream::{self, StreamExt};

use crate::idp::iam_tags as to_iam_tags;
use crate::retry::eventually;
use crate::{Aws, AwsError};

/// Whether a role was made or found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleChange {
    Created,
    Updated,
}

/// Applies one role plan. Safe to re-run.
pub async fn apply_role(aws: &Aws, plan: &RolePlan) -> Result<RoleChange, AwsError> {
    let trust = plan.trust_policy.to_string();
    let tags = to_iam_tags(&plan.tags)?;
    let created = eventually(|| async {
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
    .await?;
    if !created {
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
        aws.iam
            .tag_role()
            .role_name(&plan.role_name)
            .set_tags(Some(tags.clone()))
            .send()
            .await
            .map_err(|e| AwsError::call("iam:TagRole", &plan.role_name, e))?;
        if let Some(b) = &plan.permissions_boundary {
            aws.iam
                .put_role_permissions_boundary()
                .role_name(&plan.role_name)
                .permissions_boundary(b)
                .send()
                .await
                .map_err(|e| {
                    AwsError::call("iam:PutRolePermissionsBoundary", &plan.role_name, e)
                })?;
        }
    }
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
    Ok(if created {
        RoleChange::Created
    } else {
        RoleChange::Updated
    })
}

/// Applies every plan concurrently; `on_done` is called as each finishes (in completion order), so
/// the caller can write its Secret at once and show progress. Returns the failures.
pub async fn apply_roles<F>(
    aws: &Aws,
    plans: &[RolePlan],
    mut on_done: F,
) -> Vec<(String, AwsError)>
where
    F: FnMut(&RolePlan, &Result<RoleChange, AwsError>),
{
    let mut failures = Vec::new();
    let mut results = stream::iter(plans)
        .map(|p| async move { (p, apply_role(aws, p).await) })
        .buffer_unordered(aws.concurrency);
    while let Some((plan, result)) = results.next().await {
        on_done(plan, &result);
        if let Err(e) = result {
            failures.push((plan.role_name.clone(), e));
        }
    }
    failures
}
