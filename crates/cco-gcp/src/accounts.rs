//! One service account per request: custom role, project bindings, workload identity bindings; and
//! the delete that removes only what `ccoctl` made (found by display name *and* its description).

use cco_core::gcp::{
    account_id, random_suffix, service_account_member, CustomRole, ServiceAccountPlan, CREATED_BY,
    WORKLOAD_IDENTITY_USER,
};
use google_cloud_iam_admin_v1::model as iam;
use serde_json::Value;

use crate::official::{account_json, gax_error, role_json, role_model};
use crate::{set_member_roles, set_role_members, Change, Gcp, GcpError, PolicyTarget};

/// What [`apply_service_account`] did.
#[derive(Clone, Debug)]
pub struct Applied {
    pub email: String,
    pub account: Change,
    pub role: Option<Change>,
    pub project_bindings_changed: bool,
    pub federation_changed: bool,
}

/// What `delete` removed (or would remove) and what it left, with the reason.
#[derive(Clone, Debug, Default)]
pub struct DeleteReport {
    pub removed: Vec<String>,
    pub kept: Vec<String>,
}

impl Gcp {
    pub(crate) fn project_name(&self) -> String {
        format!("projects/{}", self.project)
    }

    pub(crate) fn role_name(&self, id: &str) -> String {
        format!("projects/{}/roles/{id}", self.project)
    }

    pub(crate) fn account_name(&self, email: &str) -> String {
        format!("projects/{}/serviceAccounts/{email}", self.project)
    }

    /// Every service account of the project.
    pub async fn list_service_accounts(&self) -> Result<Vec<Value>, GcpError> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .clients
                .iam
                .list_service_accounts()
                .set_name(self.project_name())
                .set_page_size(100)
                .set_page_token(token)
                .send()
                .await
                .map_err(|e| gax_error("iam.serviceAccounts.list", &self.project, e))?;
            out.extend(page.accounts.iter().map(account_json));
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            token = page.next_page_token;
        }
    }

    /// The custom role, if it exists (soft-deleted ones included, `deleted: true`).
    pub async fn get_role(&self, id: &str) -> Result<Option<Value>, GcpError> {
        match self
            .clients
            .iam
            .get_role()
            .set_name(self.role_name(id))
            .send()
            .await
        {
            Ok(r) => Ok(Some(role_json(&r))),
            Err(e) => match gax_error("iam.roles.get", id, e) {
                e if e.is_not_found() => Ok(None),
                e => Err(e),
            },
        }
    }

    /// Creates the custom role `r`.
    pub(crate) async fn create_role(&self, r: &CustomRole) -> Result<(), GcpError> {
        self.clients
            .iam
            .create_role()
            .set_parent(self.project_name())
            .set_role_id(r.id.clone())
            .set_role(role_model(r))
            .send()
            .await
            .map_err(|e| gax_error("iam.roles.create", &r.id, e))?;
        Ok(())
    }

    /// Undeletes the soft-deleted custom role `id`; returns it.
    pub(crate) async fn undelete_role(&self, id: &str) -> Result<Value, GcpError> {
        let r = self
            .clients
            .iam
            .undelete_role()
            .set_name(self.role_name(id))
            .send()
            .await
            .map_err(|e| gax_error("iam.roles.undelete", id, e))?;
        Ok(role_json(&r))
    }

    /// Makes the title, description, permissions and stage of custom role `r` ours.
    pub(crate) async fn update_role(&self, r: &CustomRole) -> Result<(), GcpError> {
        self.clients
            .iam
            .update_role()
            .set_name(self.role_name(&r.id))
            .set_role(role_model(r))
            .set_update_mask(google_cloud_wkt::FieldMask::default().set_paths([
                "included_permissions",
                "title",
                "description",
                "stage",
            ]))
            .send()
            .await
            .map_err(|e| gax_error("iam.roles.patch", &r.id, e))?;
        Ok(())
    }

    /// Soft-deletes custom role `id`.
    pub(crate) async fn soft_delete_role(&self, id: &str) -> Result<(), GcpError> {
        self.clients
            .iam
            .delete_role()
            .set_name(self.role_name(id))
            .send()
            .await
            .map_err(|e| gax_error("iam.roles.delete", id, e))?;
        Ok(())
    }

    /// Creates, undeletes or updates the custom role until it matches.
    pub async fn ensure_role(&self, role: &CustomRole) -> Result<Change, GcpError> {
        let mut change = Change::Unchanged;
        let current = match self.get_role(&role.id).await? {
            None => {
                self.create_role(role).await?;
                return Ok(Change::Created);
            }
            Some(r) if r["deleted"] == true => {
                change = Change::Undeleted;
                self.undelete_role(&role.id).await?
            }
            Some(r) => r,
        };
        let mut have: Vec<String> = current["includedPermissions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect();
        have.sort();
        if have == role.permissions
            && current["title"] == role.title.as_str()
            && current["description"] == role.description.as_str()
        {
            return Ok(change);
        }
        self.update_role(role).await?;
        Ok(if change == Change::Unchanged {
            Change::Updated
        } else {
            change
        })
    }

    /// Service accounts with `display_name`.
    pub async fn find_service_accounts(&self, display_name: &str) -> Result<Vec<Value>, GcpError> {
        Ok(self
            .list_service_accounts()
            .await?
            .into_iter()
            .filter(|a| a["displayName"] == display_name)
            .collect())
    }

    /// Creates service account `account_id` (the error of an existing one is returned as it is).
    pub(crate) async fn create_account(
        &self,
        account_id: &str,
        display_name: &str,
        description: &str,
    ) -> Result<Value, GcpError> {
        let a = self
            .clients
            .iam
            .create_service_account()
            .set_name(self.project_name())
            .set_account_id(account_id)
            .set_service_account(
                iam::ServiceAccount::new()
                    .set_display_name(display_name)
                    .set_description(description),
            )
            .send()
            .await
            .map_err(|e| gax_error("iam.serviceAccounts.create", account_id, e))?;
        Ok(account_json(&a))
    }

    /// Creates a service account with a fresh random id (retrying on the rare id collision).
    pub async fn create_service_account(
        &self,
        name: &str,
        plan: &ServiceAccountPlan,
    ) -> Result<Value, GcpError> {
        let mut last = None;
        for _ in 0..3 {
            let id = account_id(name, &plan.request, &random_suffix());
            match self
                .create_account(&id, &plan.display_name, &plan.description)
                .await
            {
                Ok(v) => return Ok(v),
                Err(e) if e.code() == Some(409) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| GcpError::Unexpected("service account id collisions".into())))
    }

    /// Deletes a service account; absent is success.
    pub async fn delete_service_account(&self, email: &str) -> Result<(), GcpError> {
        match self
            .clients
            .iam
            .delete_service_account()
            .set_name(self.account_name(email))
            .send()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => match gax_error("iam.serviceAccounts.delete", email, e) {
                e if e.is_not_found() => Ok(()),
                e => Err(e),
            },
        }
    }
}

fn email_of(sa: &Value) -> Result<String, GcpError> {
    sa["email"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| GcpError::Unexpected("service account without email".into()))
}

/// Converges one request: custom role, service account (found by display name, created if
/// missing), its project roles, and the federated principals allowed to impersonate it.
pub async fn apply_service_account(
    gcp: &Gcp,
    name: &str,
    project_number: &str,
    pool: &str,
    plan: &ServiceAccountPlan,
) -> Result<Applied, GcpError> {
    let role = match &plan.custom_role {
        Some(r) => Some(gcp.ensure_role(r).await?),
        None => None,
    };
    let mut found = gcp.find_service_accounts(&plan.display_name).await?;
    let (sa, account) = match found.len() {
        0 => (gcp.create_service_account(name, plan).await?, Change::Created),
        1 => (found.remove(0), Change::Unchanged),
        n => {
            return Err(GcpError::Local(format!(
                "{n} service accounts have the display name {}; ccoctl finds its service account by that name, so delete the extra ones",
                plan.display_name
            )))
        }
    };
    let email = email_of(&sa)?;
    let member = service_account_member(&email);
    let roles = plan.project_roles(&gcp.project);
    let project_bindings_changed = gcp
        .modify_policy(&PolicyTarget::Project, |p| {
            set_member_roles(p, &member, &roles)
        })
        .await?;
    let principals = plan.principals(project_number, pool);
    let prefix = format!(
        "principal://iam.googleapis.com/{}/",
        cco_core::gcp::pool_resource(project_number, pool)
    );
    let federation_changed = gcp
        .modify_policy(&PolicyTarget::ServiceAccount(email.clone()), |p| {
            set_role_members(p, WORKLOAD_IDENTITY_USER, &prefix, &principals)
        })
        .await?;
    Ok(Applied {
        email,
        account,
        role,
        project_bindings_changed,
        federation_changed,
    })
}

/// Removes what `ccoctl` made for one request: the project bindings of its service accounts, the
/// service accounts (only those with its description), and with `force_roles` the custom role under
/// either naming scheme (the reference tool's `<project>_<request>`, or `<name>_<request>` of earlier
/// versions of this tool; only if its description says `ccoctl` made it). Custom roles are
/// soft-deleted by GCP for 7 days.
pub async fn delete_for_request(
    gcp: &Gcp,
    plan: &ServiceAccountPlan,
    force_roles: bool,
    dry_run: bool,
) -> Result<DeleteReport, GcpError> {
    let mut report = DeleteReport::default();
    for sa in gcp.find_service_accounts(&plan.display_name).await? {
        let email = email_of(&sa)?;
        if !sa["description"]
            .as_str()
            .unwrap_or("")
            .starts_with(CREATED_BY)
        {
            report.kept.push(format!(
                "service account {email}: its description does not say ccoctl made it"
            ));
            continue;
        }
        if !dry_run {
            let member = service_account_member(&email);
            gcp.modify_policy(&PolicyTarget::Project, |p| {
                set_member_roles(p, &member, &[])
            })
            .await?;
            gcp.delete_service_account(&email).await?;
        }
        report
            .removed
            .push(format!("service account {email} and its project bindings"));
    }
    if let Some(role) = &plan.custom_role {
        // The reference tool's id (also ours now) and the id earlier versions of this tool used.
        let mut ids = vec![role.id.as_str()];
        if role.legacy_id != role.id {
            ids.push(role.legacy_id.as_str());
        }
        for id in ids {
            let Some(r) = gcp.get_role(id).await? else {
                continue;
            };
            if r["deleted"] == true {
                continue;
            }
            let ours = r["description"]
                .as_str()
                .unwrap_or("")
                .starts_with(CREATED_BY);
            if !ours {
                report.kept.push(format!(
                    "custom role {id}: its description does not say ccoctl made it"
                ));
            } else if !force_roles {
                report.kept.push(format!("custom role {id} (pass --force-delete-custom-roles to delete it; GCP keeps deleted roles for 7 days)"));
            } else {
                if !dry_run {
                    gcp.soft_delete_role(id).await?;
                }
                report.removed.push(format!("custom role {id}"));
            }
        }
    }
    Ok(report)
}
