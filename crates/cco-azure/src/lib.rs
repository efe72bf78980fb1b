//! Azure adapter: Azure Resource Manager (resource groups, storage accounts, user-assigned
//! identities, federated identity credentials, role definitions and assignments) over its documented
//! REST API with a bearer token from the Azure SDK for Rust's credentials ([`credential`]), and the
//! Blob service with Shared Key signatures ([`blob`]).
//!
//! Data model: [`Azure`] holds one HTTP client, the ARM endpoint, the credential chain and the
//! subscription; each method is one idempotent step (`ensure_*` PUTs the desired state, which ARM
//! treats as create-or-update) and returns our own types ([`Change`], [`Identity`], JSON values) and
//! [`AzureError`]s. Transient failures (429, 5xx, transport errors) and Azure AD's eventual
//! consistency (`PrincipalNotFound` right after an identity is made) are retried with backoff;
//! long-running operations (202) are followed by polling the resource.
//!
//! Endpoints come from the environment so the same code talks to Azure, another cloud or a fake:
//! `AZURE_AUTHORITY_HOST` (default `https://login.microsoftonline.com`; https only) and
//! `AZURE_RESOURCE_MANAGER_ENDPOINT` (default `https://management.azure.com`). Credentials: the
//! reference tool's default chain (environment client secret, workload identity, managed identity,
//! Azure CLI), after an already issued `AZURE_ACCESS_TOKEN`; see [`credential`].
//!
//! What comes from the official Azure SDK for Rust and what does not (issue 12): authentication is
//! `azure_identity` 1.1.0-beta.1 / `azure_core` 1.2.0-beta.1 (their credential types, token requests
//! and caching, sent through our reqwest client). The Resource Manager calls stay hand-written: there
//! is no official Rust management-plane crate for resource groups, storage accounts and their keys,
//! user-assigned identities and federated credentials, or role definitions and assignments (the
//! Azure SDK for Rust ships data-plane clients only), so only the token is taken from the credential.
//! The ARM fake these requests are tested against is itself judged by Microsoft's Python SDKs
//! (`cco-testsupport/tests/official_azure.rs`), its token endpoints included.

mod authz;
pub mod blob;
pub mod credential;
mod observe;

pub use credential::ArmCredential;
pub use observe::observe;

use std::time::Duration;

use serde_json::{json, Value};

const API_RG: &str = "2021-04-01";
const API_STORAGE: &str = "2023-01-01";
const API_MSI: &str = "2023-01-31";
const API_AUTHZ: &str = "2022-04-01";

/// Errors of the Azure adapter.
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    #[error("{op}: Azure answered {status} {code}: {message}")]
    Api {
        op: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{op}: cannot reach {url}: {message}")]
    Transport {
        op: String,
        url: String,
        message: String,
    },
    #[error("Azure credentials: {0}")]
    Credentials(String),
    #[error("{0}")]
    Local(String),
}

impl AzureError {
    /// The ARM error code, if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            AzureError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
    /// The HTTP status, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            AzureError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Whether a step created, updated or found its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

impl Change {
    /// For messages.
    pub fn verb(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "already up to date",
        }
    }
}

/// Where to talk to.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub authority: String,
    pub resource_manager: String,
}

impl Endpoints {
    /// From `AZURE_AUTHORITY_HOST` and `AZURE_RESOURCE_MANAGER_ENDPOINT`, defaulting to the public cloud.
    pub fn from_env() -> Endpoints {
        let get = |k: &str, d: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| d.to_string())
                .trim_end_matches('/')
                .to_string()
        };
        Endpoints {
            authority: get("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com"),
            resource_manager: get(
                "AZURE_RESOURCE_MANAGER_ENDPOINT",
                "https://management.azure.com",
            ),
        }
    }
}

/// A user-assigned managed identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub principal_id: String,
    /// The Azure AD tenant of the identity (what its Secret names).
    pub tenant_id: String,
    pub owned: bool,
}

/// An ARM session for one subscription.
pub struct Azure {
    http: reqwest::Client,
    credential: ArmCredential,
    pub endpoints: Endpoints,
    pub subscription: String,
}

fn is_retryable(status: u16, code: &str) -> bool {
    status == 429
        || status >= 500
        || matches!(
            code,
            "PrincipalNotFound" | "AnotherOperationInProgress" | "RetryableError"
        )
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((200u64 << attempt.min(5)).min(5_000))
}

/// Builds the HTTP client every Azure call uses.
pub fn http_client() -> Result<reqwest::Client, AzureError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("ccoctl/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AzureError::Local(format!("cannot build the HTTP client: {e}")))
}

impl Azure {
    /// The credential source in use (e.g. `WorkloadIdentityCredential`), for messages.
    pub async fn credential_source(&self) -> Option<&'static str> {
        self.credential.source().await
    }

    /// Gets a token and checks the subscription with one quick call, so bad endpoints or
    /// credentials fail at once.
    pub async fn connect(
        tenant: &str,
        subscription: &str,
        endpoints: Endpoints,
    ) -> Result<Azure, AzureError> {
        let http = http_client()?;
        let credential = ArmCredential::from_env(&http, &endpoints, tenant)?;
        // The first token now, so missing or wrong credentials fail before anything else.
        credential.token().await?;
        let az = Azure {
            http,
            credential,
            endpoints,
            subscription: subscription.to_string(),
        };
        az.call_once(
            "checking the subscription",
            reqwest::Method::GET,
            &format!("/subscriptions/{subscription}"),
            "2022-12-01",
            None,
        )
        .await?;
        Ok(az)
    }

    fn rg_path(&self, rg: &str) -> String {
        format!("/subscriptions/{}/resourceGroups/{rg}", self.subscription)
    }

    async fn call_once(
        &self,
        op: &str,
        method: reqwest::Method,
        path: &str,
        api: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), AzureError> {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.endpoints.resource_manager)
        };
        let token = self.credential.token().await?;
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(&token)
            .query(&[("api-version", api)]);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| AzureError::Transport {
            op: op.to_string(),
            url: url.clone(),
            message: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let v: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status >= 400 {
            return Err(AzureError::Api {
                op: op.to_string(),
                status,
                code: v["error"]["code"].as_str().unwrap_or("").to_string(),
                message: v["error"]["message"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            });
        }
        Ok((status, v))
    }

    /// One call with retries on transient errors.
    async fn call(
        &self,
        op: &str,
        method: reqwest::Method,
        path: &str,
        api: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), AzureError> {
        let mut attempt = 0;
        loop {
            match self.call_once(op, method.clone(), path, api, body).await {
                // Up to about a minute and a half: Azure AD replication of a new principal can be slow.
                Err(e) if attempt < 20 => {
                    let retry = match &e {
                        AzureError::Api { status, code, .. } => is_retryable(*status, code),
                        AzureError::Transport { .. } => true,
                        _ => false,
                    };
                    if !retry {
                        return Err(e);
                    }
                    tracing::debug!(%e, attempt, "retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    async fn get_opt(&self, op: &str, path: &str, api: &str) -> Result<Option<Value>, AzureError> {
        match self.call(op, reqwest::Method::GET, path, api, None).await {
            Ok((_, v)) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, op: &str, path: &str, api: &str) -> Result<Vec<Value>, AzureError> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(p) = next.take() {
            let (_, v) = self.call(op, reqwest::Method::GET, &p, api, None).await?;
            out.extend(v["value"].as_array().cloned().unwrap_or_default());
            next = v["nextLink"].as_str().map(str::to_string);
        }
        Ok(out)
    }

    /// PUTs `body` at `path`; follows a 202 by polling the resource until it is provisioned.
    async fn put(
        &self,
        op: &str,
        path: &str,
        api: &str,
        body: &Value,
    ) -> Result<(Change, Value), AzureError> {
        let (status, mut v) = self
            .call(op, reqwest::Method::PUT, path, api, Some(body))
            .await?;
        let mut polls = 0;
        while status == 202
            || !matches!(
                v["properties"]["provisioningState"].as_str(),
                None | Some("Succeeded")
            )
        {
            if polls > 120 {
                return Err(AzureError::Local(format!("{op}: still provisioning")));
            }
            tokio::time::sleep(Duration::from_millis(if polls == 0 { 100 } else { 1000 })).await;
            polls += 1;
            if let Some(got) = self.get_opt(op, path, api).await? {
                v = got;
                if v["properties"]["provisioningState"].as_str() == Some("Succeeded") {
                    break;
                }
            }
        }
        let change = if status == 201 || status == 202 {
            Change::Created
        } else {
            Change::Updated
        };
        Ok((change, v))
    }

    async fn delete(&self, op: &str, path: &str, api: &str) -> Result<bool, AzureError> {
        match self
            .call(op, reqwest::Method::DELETE, path, api, None)
            .await
        {
            Ok((204, _)) => Ok(false),
            Ok((202, _)) => {
                for _ in 0..300 {
                    if self.get_opt(op, path, api).await?.is_none() {
                        return Ok(true);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(AzureError::Local(format!("{op}: still being deleted")))
            }
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    // --- resource groups

    /// A resource group, if it exists.
    pub async fn get_resource_group(&self, rg: &str) -> Result<Option<Value>, AzureError> {
        self.get_opt("reading resource group", &self.rg_path(rg), API_RG)
            .await
    }

    /// Creates or updates a resource group. An existing group keeps its own tags plus ours.
    pub async fn ensure_resource_group(
        &self,
        rg: &str,
        region: &str,
        tags: &Value,
    ) -> Result<Change, AzureError> {
        let existing = self.get_resource_group(rg).await?;
        let all = merged_tags(existing.as_ref(), tags);
        if let Some(e) = &existing {
            if e["tags"] == all {
                return Ok(Change::Unchanged);
            }
        }
        let location = existing
            .as_ref()
            .and_then(|e| e["location"].as_str().map(str::to_string))
            .unwrap_or_else(|| region.to_string());
        let (change, _) = self
            .put(
                &format!("creating resource group {rg}"),
                &self.rg_path(rg),
                API_RG,
                &json!({"location": location, "tags": all}),
            )
            .await?;
        Ok(if existing.is_some() {
            Change::Updated
        } else {
            change
        })
    }

    /// Deletes a resource group and everything in it; false when it did not exist.
    pub async fn delete_resource_group(&self, rg: &str) -> Result<bool, AzureError> {
        self.delete(
            &format!("deleting resource group {rg}"),
            &self.rg_path(rg),
            API_RG,
        )
        .await
    }

    // --- storage

    fn account_path(&self, rg: &str, account: &str) -> String {
        format!(
            "{}/providers/Microsoft.Storage/storageAccounts/{account}",
            self.rg_path(rg)
        )
    }

    /// A storage account, if it exists in `rg`.
    pub async fn get_storage_account(
        &self,
        rg: &str,
        account: &str,
    ) -> Result<Option<Value>, AzureError> {
        self.get_opt(
            "reading storage account",
            &self.account_path(rg, account),
            API_STORAGE,
        )
        .await
    }

    /// Creates the issuer's storage account (StorageV2, Standard_LRS, https only, TLS 1.2, public blob
    /// access allowed) and returns its blob endpoint.
    pub async fn ensure_storage_account(
        &self,
        rg: &str,
        account: &str,
        region: &str,
        tags: &Value,
    ) -> Result<(Change, String), AzureError> {
        let existing = self.get_storage_account(rg, account).await?;
        // Tags merged into the account's own, as the reference tool merges them.
        let all = merged_tags(existing.as_ref(), tags);
        let body = json!({
            "kind": "StorageV2",
            "location": region,
            "sku": {"name": "Standard_LRS"},
            "tags": all,
            "properties": {
                "allowBlobPublicAccess": true,
                "supportsHttpsTrafficOnly": true,
                "minimumTlsVersion": "TLS1_2",
            },
        });
        let (change, v) = match &existing {
            Some(e)
                if e["tags"] == all && e["properties"]["allowBlobPublicAccess"] == json!(true) =>
            {
                (Change::Unchanged, e.clone())
            }
            _ => {
                let (c, v) = self
                    .put(
                        &format!("creating storage account {account}"),
                        &self.account_path(rg, account),
                        API_STORAGE,
                        &body,
                    )
                    .await?;
                (
                    if existing.is_some() {
                        Change::Updated
                    } else {
                        c
                    },
                    v,
                )
            }
        };
        let endpoint = v["properties"]["primaryEndpoints"]["blob"]
            .as_str()
            .ok_or_else(|| {
                AzureError::Local(format!(
                    "storage account {account} has no properties.primaryEndpoints.blob"
                ))
            })?;
        Ok((change, endpoint.to_string()))
    }

    /// The first key of a storage account.
    pub async fn storage_key(&self, rg: &str, account: &str) -> Result<String, AzureError> {
        let (_, v) = self
            .call(
                &format!("listing the keys of storage account {account}"),
                reqwest::Method::POST,
                &format!("{}/listKeys", self.account_path(rg, account)),
                API_STORAGE,
                None,
            )
            .await?;
        v["keys"][0]["value"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| AzureError::Local(format!("storage account {account} has no keys")))
    }

    /// Deletes a storage account; false when it did not exist.
    pub async fn delete_storage_account(
        &self,
        rg: &str,
        account: &str,
    ) -> Result<bool, AzureError> {
        self.delete(
            &format!("deleting storage account {account}"),
            &self.account_path(rg, account),
            API_STORAGE,
        )
        .await
    }

    // --- identities

    fn identity_path(&self, rg: &str, name: &str) -> String {
        format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
            self.rg_path(rg)
        )
    }

    fn to_identity(v: &Value, owner_key: &str) -> Identity {
        Identity {
            id: v["id"].as_str().unwrap_or_default().to_string(),
            name: v["name"].as_str().unwrap_or_default().to_string(),
            client_id: v["properties"]["clientId"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            principal_id: v["properties"]["principalId"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            tenant_id: v["properties"]["tenantId"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            owned: v["tags"][owner_key].as_str() == Some("owned"),
        }
    }

    /// Creates or updates a user-assigned identity.
    pub async fn ensure_identity(
        &self,
        rg: &str,
        name: &str,
        region: &str,
        tags: &Value,
        owner_key: &str,
    ) -> Result<(Change, Identity), AzureError> {
        let path = self.identity_path(rg, name);
        let existing = self.get_opt("reading identity", &path, API_MSI).await?;
        // As the reference tool does: the identity keeps the tags it has, ours are added (or
        // overwrite a different value), and it is written only when that changes something.
        let all = merged_tags(existing.as_ref(), tags);
        if let Some(e) = &existing {
            if e["tags"] == all {
                return Ok((Change::Unchanged, Self::to_identity(e, owner_key)));
            }
        }
        let (c, v) = self
            .put(
                &format!("creating identity {name}"),
                &path,
                API_MSI,
                &json!({"location": region, "tags": all}),
            )
            .await?;
        let c = if existing.is_some() {
            Change::Updated
        } else {
            c
        };
        Ok((c, Self::to_identity(&v, owner_key)))
    }

    /// The user-assigned identities of a resource group.
    pub async fn list_identities(
        &self,
        rg: &str,
        owner_key: &str,
    ) -> Result<Vec<Identity>, AzureError> {
        let path = format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
            self.rg_path(rg)
        );
        match self.list("listing identities", &path, API_MSI).await {
            Ok(v) => Ok(v.iter().map(|i| Self::to_identity(i, owner_key)).collect()),
            Err(e) if e.status() == Some(404) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The user-assigned identities of a resource group as ARM returns them (with their tags).
    pub async fn list_identities_raw(&self, rg: &str) -> Result<Vec<Value>, AzureError> {
        let path = format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
            self.rg_path(rg)
        );
        match self.list("listing identities", &path, API_MSI).await {
            Err(e) if e.status() == Some(404) => Ok(Vec::new()),
            r => r,
        }
    }

    /// The federated identity credentials of an identity.
    pub async fn list_federated_credentials(
        &self,
        rg: &str,
        identity: &str,
    ) -> Result<Vec<Value>, AzureError> {
        let path = format!(
            "{}/federatedIdentityCredentials",
            self.identity_path(rg, identity)
        );
        match self
            .list("listing federated credentials", &path, API_MSI)
            .await
        {
            Err(e) if e.status() == Some(404) => Ok(Vec::new()),
            r => r,
        }
    }

    /// Deletes an identity (its federated credentials go with it).
    pub async fn delete_identity(&self, rg: &str, name: &str) -> Result<bool, AzureError> {
        self.delete(
            &format!("deleting identity {name}"),
            &self.identity_path(rg, name),
            API_MSI,
        )
        .await
    }

    /// Creates or updates a federated identity credential of an identity.
    pub async fn ensure_federated_credential(
        &self,
        rg: &str,
        identity: &str,
        fic: &str,
        body: &Value,
    ) -> Result<Change, AzureError> {
        let path = format!(
            "{}/federatedIdentityCredentials/{fic}",
            self.identity_path(rg, identity)
        );
        if let Some(e) = self
            .get_opt("reading federated credential", &path, API_MSI)
            .await?
        {
            let p = &e["properties"];
            let want = &body["properties"];
            if p["issuer"] == want["issuer"]
                && p["subject"] == want["subject"]
                && p["audiences"] == want["audiences"]
            {
                return Ok(Change::Unchanged);
            }
        }
        let (c, _) = self
            .put(
                &format!("creating federated credential {fic} of {identity}"),
                &path,
                API_MSI,
                body,
            )
            .await?;
        Ok(c)
    }
}

/// The tags of `existing` (none when it does not exist) with `tags` added or overwriting: the
/// reference tool's `mergeResourceTags`.
fn merged_tags(existing: Option<&Value>, tags: &Value) -> Value {
    let mut all = existing
        .map(|v| v["tags"].clone())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    merge(&mut all, tags);
    all
}

fn merge(into: &mut Value, from: &Value) {
    if let (Some(a), Some(b)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
}
