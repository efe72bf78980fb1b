//! What the operator's Mint mode needs beyond `ccoctl`: service accounts by id, their user-managed
//! keys, custom-role deletion, and `projects.testIamPermissions` for default-mode detection.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

use crate::{enc, Gcp, GcpError};

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
    fn sa_url(&self, email: &str) -> String {
        format!(
            "{}/v1/projects/{}/serviceAccounts/{}",
            self.endpoints.iam,
            enc(&self.project),
            enc(email)
        )
    }

    /// The service account with `email`, if it exists.
    pub async fn get_service_account(&self, email: &str) -> Result<Option<Value>, GcpError> {
        match self
            .call(
                "iam.serviceAccounts.get",
                email,
                Method::GET,
                &self.sa_url(email),
                None,
            )
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates service account `account_id`; one that already exists is returned as it is.
    pub async fn create_service_account_with_id(
        &self,
        account_id: &str,
        display_name: &str,
        description: &str,
    ) -> Result<Value, GcpError> {
        let url = format!(
            "{}/v1/projects/{}/serviceAccounts",
            self.endpoints.iam,
            enc(&self.project)
        );
        let body = json!({"accountId": account_id,
            "serviceAccount": {"displayName": display_name, "description": description}});
        match self
            .call(
                "iam.serviceAccounts.create",
                account_id,
                Method::POST,
                &url,
                Some(&body),
            )
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
        let url = format!("{}/keys?keyTypes=USER_MANAGED", self.sa_url(email));
        let v = self
            .call(
                "iam.serviceAccountKeys.list",
                email,
                Method::GET,
                &url,
                None,
            )
            .await?;
        Ok(v["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|k| k["keyType"].as_str().is_none_or(|t| t == "USER_MANAGED"))
            .filter_map(|k| k["name"].as_str().map(|n| last_segment(n).to_string()))
            .collect())
    }

    /// Creates a key (a JSON key file) for a service account, waiting for a new account to be
    /// visible.
    pub async fn create_key(&self, email: &str) -> Result<NewKey, GcpError> {
        let url = format!("{}/keys", self.sa_url(email));
        let body = json!({"privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE",
            "keyAlgorithm": "KEY_ALG_RSA_2048"});
        let v = crate::eventually(|| {
            self.call(
                "iam.serviceAccountKeys.create",
                email,
                Method::POST,
                &url,
                Some(&body),
            )
        })
        .await?;
        let id = v["name"]
            .as_str()
            .map(|n| last_segment(n).to_string())
            .ok_or_else(|| GcpError::Unexpected(format!("new key of {email} has no name")))?;
        let key_file = v["privateKeyData"]
            .as_str()
            .and_then(|d| STANDARD.decode(d).ok())
            .ok_or_else(|| {
                GcpError::Unexpected(format!("new key {id} of {email} has no privateKeyData"))
            })?;
        Ok(NewKey { id, key_file })
    }

    /// Deletes a key; absent is success.
    pub async fn delete_key(&self, email: &str, id: &str) -> Result<(), GcpError> {
        let url = format!("{}/keys/{}", self.sa_url(email), enc(id));
        match self
            .call(
                "iam.serviceAccountKeys.delete",
                email,
                Method::DELETE,
                &url,
                None,
            )
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Deletes (soft-deletes) a custom role; absent or already deleted is success.
    pub async fn delete_role(&self, id: &str) -> Result<(), GcpError> {
        match self.get_role(id).await? {
            Some(r) if r["deleted"] != true => {
                let url = format!(
                    "{}/v1/projects/{}/roles/{}",
                    self.endpoints.iam,
                    enc(&self.project),
                    enc(id)
                );
                match self
                    .call("iam.roles.delete", id, Method::DELETE, &url, None)
                    .await
                {
                    Err(e) if e.is_not_found() => Ok(()),
                    other => other.map(|_| ()),
                }
            }
            _ => Ok(()),
        }
    }

    /// The subset of `permissions` the caller holds on the project.
    pub async fn test_iam_permissions(
        &self,
        permissions: &[String],
    ) -> Result<Vec<String>, GcpError> {
        let url = format!(
            "{}/v1/projects/{}:testIamPermissions",
            self.endpoints.resource_manager,
            enc(&self.project)
        );
        let mut out = Vec::new();
        // The API takes at most 100 permissions per call.
        for chunk in permissions.chunks(100) {
            let v = self
                .call(
                    "resourcemanager.projects.testIamPermissions",
                    &self.project,
                    Method::POST,
                    &url,
                    Some(&json!({"permissions": chunk})),
                )
                .await?;
            out.extend(
                v["permissions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str().map(str::to_owned)),
            );
        }
        Ok(out)
    }
}
