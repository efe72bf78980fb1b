//! IBM Cloud adapter for `ccoctl ibmcloud`: executes `cco_core::ibm` plans.
//!
//! There is no official IBM Cloud SDK for Rust, so this calls the documented REST APIs with
//! `reqwest` (rustls on aws-lc-rs): the IAM token service and IAM Identity (API keys, service IDs)
//! and IAM Policy Management at `https://iam.cloud.ibm.com`, and Resource Manager at
//! `https://resource-controller.cloud.ibm.com`. Both endpoints can be overridden
//! (`IBMCLOUD_IAM_ENDPOINT`, `IBMCLOUD_RESOURCE_MANAGER_ENDPOINT`), which is how the tests point it
//! at the fake in `cco-testsupport`.
//!
//! Every call is retried on throttling (429) and server errors (5xx) with bounded backoff; every
//! error names the operation and the resource.

mod error;
mod service_ids;

use std::time::Duration;

pub use error::IbmError;
use serde_json::Value;
pub use service_ids::*;

/// Default IAM endpoint (token, identity and policy APIs).
pub const DEFAULT_IAM_ENDPOINT: &str = "https://iam.cloud.ibm.com";
/// Default Resource Manager endpoint.
pub const DEFAULT_RESOURCE_MANAGER_ENDPOINT: &str = "https://resource-controller.cloud.ibm.com";
/// Environment variable overriding the IAM endpoint.
pub const IAM_ENDPOINT_ENV: &str = "IBMCLOUD_IAM_ENDPOINT";
/// Environment variable overriding the Resource Manager endpoint.
pub const RESOURCE_MANAGER_ENDPOINT_ENV: &str = "IBMCLOUD_RESOURCE_MANAGER_ENDPOINT";

/// Where and as whom to connect.
#[derive(Clone)]
pub struct IbmConfig {
    pub api_key: String,
    pub iam_endpoint: String,
    pub resource_manager_endpoint: String,
}

impl std::fmt::Debug for IbmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IbmConfig")
            .field("iam_endpoint", &self.iam_endpoint)
            .field("resource_manager_endpoint", &self.resource_manager_endpoint)
            .finish_non_exhaustive()
    }
}

/// The IAM and Resource Manager endpoints of an IBM Cloud API base domain given as
/// `--api-endpoint` (e.g. `test.cloud.ibm.com` → `https://iam.test.cloud.ibm.com` and
/// `https://resource-controller.test.cloud.ibm.com`), as the reference tool derives them. A scheme
/// and trailing slashes are dropped; anything else that is not a bare domain is refused.
pub fn endpoints_for_api_domain(domain: &str) -> Result<(String, String), IbmError> {
    let mut d = domain.trim();
    for scheme in ["https://", "http://"] {
        d = d.strip_prefix(scheme).unwrap_or(d);
    }
    let d = d.trim_end_matches('/');
    if d.is_empty() || d.contains("://") || d.contains('/') || d.contains(char::is_whitespace) {
        return Err(IbmError::Local(format!(
            "invalid --api-endpoint {domain:?}: must be a bare domain (e.g. test.cloud.ibm.com), not a full URL"
        )));
    }
    Ok((
        format!("https://iam.{d}"),
        format!("https://resource-controller.{d}"),
    ))
}

impl IbmConfig {
    /// Like [`IbmConfig::from_env`], with the endpoints of `--api-endpoint` when it is given (it
    /// takes precedence over the endpoint environment variables).
    pub fn from_env_and_api_endpoint(api_endpoint: Option<&str>) -> Result<IbmConfig, IbmError> {
        let mut cfg = IbmConfig::from_env()?;
        if let Some(d) = api_endpoint.filter(|d| !d.is_empty()) {
            let (iam, rm) = endpoints_for_api_domain(d)?;
            cfg.iam_endpoint = iam;
            cfg.resource_manager_endpoint = rm;
        }
        Ok(cfg)
    }

    /// The API key from the first of `IC_API_KEY`, `IBMCLOUD_API_KEY`, `BM_API_KEY`,
    /// `BLUEMIX_API_KEY` that is set, and the endpoints (overridable).
    pub fn from_env() -> Result<IbmConfig, IbmError> {
        let api_key = cco_core::ibm::API_KEY_ENV_VARS
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .ok_or_else(|| {
                IbmError::Local(format!(
                    "no IBM Cloud API key: set one of {}",
                    cco_core::ibm::API_KEY_ENV_VARS.join(", ")
                ))
            })?;
        let endpoint = |var: &str, default: &str| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
                .trim_end_matches('/')
                .to_string()
        };
        Ok(IbmConfig {
            api_key,
            iam_endpoint: endpoint(IAM_ENDPOINT_ENV, DEFAULT_IAM_ENDPOINT),
            resource_manager_endpoint: endpoint(
                RESOURCE_MANAGER_ENDPOINT_ENV,
                DEFAULT_RESOURCE_MANAGER_ENDPOINT,
            ),
        })
    }
}

/// An authenticated connection to one account.
pub struct Ibm {
    http: reqwest::Client,
    cfg: IbmConfig,
    token: String,
    /// The account of the administrator API key.
    pub account_id: String,
}

const ATTEMPTS: u32 = 6;

impl Ibm {
    /// Exchanges the API key for a token and looks up its account. Fails at once (no retries) on a
    /// rejected key or an unreachable endpoint.
    pub async fn connect(cfg: IbmConfig) -> Result<Ibm, IbmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("ccoctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| IbmError::Local(format!("cannot build the HTTP client: {e}")))?;
        let url = format!("{}/identity/token", cfg.iam_endpoint);
        let resp = http
            .post(&url)
            .header("Accept", "application/json")
            .form(&[
                ("grant_type", "urn:ibm:params:oauth:grant-type:apikey"),
                ("apikey", cfg.api_key.as_str()),
            ])
            .send()
            .await
            .map_err(|e| IbmError::unreachable("iam:GetToken", &cfg.iam_endpoint, &e))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status != 200 {
            return Err(IbmError::Credentials {
                message: error::message_of(&body),
            });
        }
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| IbmError::Unexpected("iam:GetToken: no access_token".into()))?
            .to_string();
        let mut ibm = Ibm {
            http,
            cfg,
            token,
            account_id: String::new(),
        };
        let details = ibm
            .call("iam:GetApiKeyDetails", "the administrator API key", || {
                ibm.http
                    .get(format!("{}/v1/apikeys/details", ibm.cfg.iam_endpoint))
                    .header("IAM-Apikey", ibm.cfg.api_key.as_str())
            })
            .await?;
        ibm.account_id = details["account_id"]
            .as_str()
            .ok_or_else(|| IbmError::Unexpected("API key details carry no account_id".into()))?
            .to_string();
        Ok(ibm)
    }

    fn iam(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.iam_endpoint)
    }

    /// Sends the request `build` makes, with the bearer token, retrying throttling and server
    /// errors. Returns the JSON body (`null` for an empty one).
    async fn call<F>(&self, op: &'static str, resource: &str, build: F) -> Result<Value, IbmError>
    where
        F: Fn() -> reqwest::RequestBuilder,
    {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = build()
                .bearer_auth(&self.token)
                .header("Accept", "application/json")
                .send()
                .await;
            let retry = match sent {
                Err(e) if attempt < ATTEMPTS && (e.is_timeout() || e.is_request()) => {
                    format!("{e}")
                }
                Err(e) => return Err(IbmError::unreachable(op, resource, &e)),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.text().await.unwrap_or_default();
                    let body: Value = if text.is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_str(&text).unwrap_or(Value::String(text))
                    };
                    if (200..300).contains(&status) {
                        return Ok(body);
                    }
                    if (status == 429 || status >= 500) && attempt < ATTEMPTS {
                        format!("HTTP {status}")
                    } else {
                        return Err(IbmError::api(op, resource, status, &body));
                    }
                }
            };
            tracing::debug!(op, resource, attempt, reason = %retry, "retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// The id of resource group `name`.
    pub async fn resource_group_id(&self, name: &str) -> Result<String, IbmError> {
        let url = format!("{}/v2/resource_groups", self.cfg.resource_manager_endpoint);
        let v = self
            .call("resource-manager:ListResourceGroups", name, || {
                self.http
                    .get(&url)
                    .query(&[("account_id", self.account_id.as_str()), ("name", name)])
            })
            .await?;
        v["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|g| g["name"] == name))
            .and_then(|g| g["id"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                IbmError::Local(format!(
                    "resource group {name} not found in account {}; check --resource-group-name",
                    self.account_id
                ))
            })
    }

    /// Follows `next` links of a paginated IAM Identity list, returning the items under `key`.
    async fn list_all(
        &self,
        op: &'static str,
        resource: &str,
        path: &str,
        query: &[(&str, &str)],
        key: &str,
    ) -> Result<Vec<Value>, IbmError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("pagesize", "100"));
            if let Some(t) = &token {
                q.push(("pagetoken", t.as_str()));
            }
            let v = self
                .call(op, resource, || self.http.get(self.iam(path)).query(&q))
                .await?;
            out.extend(v[key].as_array().cloned().unwrap_or_default());
            token = v["next"].as_str().and_then(page_token);
            if token.is_none() {
                return Ok(out);
            }
        }
    }
}

/// The `pagetoken` query parameter of a `next` link.
fn page_token(next: &str) -> Option<String> {
    let q = next.split_once('?')?.1;
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "pagetoken")
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_are_read_from_next_links() {
        assert_eq!(
            page_token("https://iam.cloud.ibm.com/v1/serviceids/?name=a&pagetoken=abc&pagesize=2")
                .as_deref(),
            Some("abc")
        );
        assert_eq!(page_token("https://x/v1/serviceids/?name=a"), None);
        assert_eq!(page_token("nonsense"), None);
    }
}
