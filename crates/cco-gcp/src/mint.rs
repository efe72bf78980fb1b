//! What the operator's Mint mode needs beyond `ccoctl`: service accounts by id, their user-managed
//! keys, custom-role deletion, and `projects.testIamPermissions` for default-mode detection.

use google_cloud_iam_admin_v1::model as iam;
use google_cloud_iam_admin_v1::model::list_service_account_keys_request::KeyType;
use serde_json::Value;

use crate::official::{account_json, gax_error};
use crate::{Gcp, GcpError};

/// A new service-account key: its id and the JSON key file (`privateKeyData`, decoded).
#[derive(Clone)]
pub struct NewKey {
    pub id: String,
    pub key_file: Vec<u8>,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The last segment of a resource name (`…/keys/<id>` → `<id>`).
fn last_segment(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

impl Gcp {
    /// The service account with `email`, if it exists.
    pub async fn get_service_account(&self, email: &str) -> Result<Option<Value>, GcpError> {
        match self
            .clients
            .iam
            .get_service_account()
            .set_name(self.account_name(email))
            .send()
            .await
        {
            Ok(a) => Ok(Some(account_json(&a))),
            Err(e) => match gax_error("iam.serviceAccounts.get", email, e) {
                e if e.is_not_found() => Ok(None),
                e => Err(e),
            },
        }
    }

    /// Creates service account `account_id`; one that already exists is returned as it is.
    pub async fn create_service_account_with_id(
        &self,
        account_id: &str,
        display_name: &str,
        description: &str,
    ) -> Result<Value, GcpError> {
        match self
            .create_account(account_id, display_name, description)
            .await
        {
            Ok(v) => Ok(v),
            Err(e) if e.code() == Some(409) => {
                let email = cco_core::gcp::service_account_email(account_id, &self.project);
                crate::eventually(|| async {
                    self.get_service_account(&email).await?.ok_or_else(|| {
                        GcpError::Unexpected(format!("service account {email} vanished"))
                    })
                })
                .await
            }
            Err(e) => Err(e),
        }
    }

    /// Ids of the user-managed keys of a service account.
    pub async fn list_keys(&self, email: &str) -> Result<Vec<String>, GcpError> {
        let keys = self
            .clients
            .iam
            .list_service_account_keys()
            .set_name(self.account_name(email))
            .set_key_types([KeyType::UserManaged])
            .send()
            .await
            .map_err(|e| gax_error("iam.serviceAccountKeys.list", email, e))?;
        Ok(keys
            .keys
            .iter()
            .filter(|k| matches!(k.key_type, KeyType::UserManaged | KeyType::Unspecified))
            .map(|k| last_segment(&k.name).to_string())
            .collect())
    }

    /// Creates a key (a JSON key file) for a service account, waiting for a new account to be
    /// visible.
    pub async fn create_key(&self, email: &str) -> Result<NewKey, GcpError> {
        let k = crate::eventually(|| async {
            self.clients
                .iam
                .create_service_account_key()
                .set_name(self.account_name(email))
                .set_private_key_type(iam::ServiceAccountPrivateKeyType::TypeGoogleCredentialsFile)
                .set_key_algorithm(iam::ServiceAccountKeyAlgorithm::KeyAlgRsa2048)
                .send()
                .await
                .map_err(|e| gax_error("iam.serviceAccountKeys.create", email, e))
        })
        .await?;
        let id = last_segment(&k.name).to_string();
        if id.is_empty() {
            return Err(GcpError::Unexpected(format!(
                "new key of {email} has no name"
            )));
        }
        if k.private_key_data.is_empty() {
            return Err(GcpError::Unexpected(format!(
                "new key {id} of {email} has no privateKeyData"
            )));
        }
        Ok(NewKey {
            id,
            key_file: k.private_key_data.to_vec(),
        })
    }

    /// Deletes a key; absent is success.
    pub async fn delete_key(&self, email: &str, id: &str) -> Result<(), GcpError> {
        match self
            .clients
            .iam
            .delete_service_account_key()
            .set_name(format!("{}/keys/{id}", self.account_name(email)))
            .send()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => match gax_error("iam.serviceAccountKeys.delete", email, e) {
                e if e.is_not_found() => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Deletes (soft-deletes) a custom role; absent or already deleted is success.
    pub async fn delete_role(&self, id: &str) -> Result<(), GcpError> {
        match self.get_role(id).await? {
            Some(r) if r["deleted"] != true => match self.soft_delete_role(id).await {
                Err(e) if e.is_not_found() => Ok(()),
                other => other,
            },
            _ => Ok(()),
        }
    }

    /// The subset of `permissions` the caller holds on the project.
    pub async fn test_iam_permissions(
        &self,
        permissions: &[String],
    ) -> Result<Vec<String>, GcpError> {
        let mut out = Vec::new();
        // The API takes at most 100 permissions per call.
        for chunk in permissions.chunks(100) {
            let r = self
                .clients
                .projects
                .test_iam_permissions()
                .set_resource(self.project_name())
                .set_permissions(chunk.iter().cloned())
                .send()
                .await
                .map_err(|e| {
                    gax_error(
                        "resourcemanager.projects.testIamPermissions",
                        &self.project,
                        e,
                    )
                })?;
            out.extend(r.permissions);
        }
        Ok(out)
    }
}
