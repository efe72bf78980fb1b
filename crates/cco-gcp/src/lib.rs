//! GCP adapter for `ccoctl gcp` and the operator: executes `cco_core::gcp` plans.
//!
//! Credentials are Google's own implementation, the official `google-cloud-auth` crate (module
//! [`auth`]: every credentials file type, workload identity federation and the metadata server
//! included), found in the reference `ccoctl`'s order.
//!
//! Calls go through Google's official Rust clients where one exists (module `official`):
//! `google-cloud-iam-admin-v1` 1.13 for service accounts, their keys and IAM policies and custom
//! roles, and `google-cloud-resourcemanager-v3` 1.14 for the project (its number), its IAM policy
//! and `testIamPermissions` (the reference tool reads Resource Manager v1: the same project and
//! policy). The rest stays REST, with one `reqwest` client and the same credentials:
//! - workload identity pools and providers (IAM v1 `projects.locations.workloadIdentityPools`, with
//!   long-running operations): no official Rust crate covers them (`google-cloud-iam-admin-v1` is the
//!   `google.iam.admin.v1` service, accounts, keys and roles only; `google-cloud-workloadidentity-v1`
//!   1.1.0 is another API, `workloadidentity.googleapis.com`'s `generateServiceAgents`);
//! - the issuer bucket, its IAM policy and its objects (Cloud Storage JSON API): in
//!   `google-cloud-storage` 1.21 bucket administration and bucket IAM are `StorageControl`, which
//!   speaks gRPC only (`google.storage.v2.Storage/CreateBucket` over tonic), while fake-gcs-server
//!   and the tests' fake serve the JSON API.
//!
//! What this crate sends is checked in tests against Google's own discovery documents
//! (`cco-testsupport/official/gcp_schema.py`, run by `ccoctl/tests/gcp_schema.rs` and
//! `cco-operator/tests/mint_gcp.rs`).
//!
//! Endpoints can be overridden: `GCP_IAM_ENDPOINT`, `GCP_RESOURCEMANAGER_ENDPOINT`, and
//! `STORAGE_EMULATOR_HOST` (the variable Google's own libraries honour) or `GCP_STORAGE_ENDPOINT`.
//!
//! Retries: throttling, server errors (429, 5xx) and transport failures on every call (the official
//! clients with our retry policy, `official::Transient`); concurrent policy changes (409
//! ABORTED, 412 on buckets) by redoing the whole read-modify-write; and GCP's eventual consistency —
//! a service account, bucket or role not yet visible (404, or 400 "does not exist") — for up to
//! [`VISIBILITY_TIMEOUT`].

mod accounts;
pub mod auth;
mod converge;
mod error;
mod issuer;
mod mint;
mod official;
mod policy;

use std::time::Duration;

pub use accounts::*;
pub use auth::Auth;
pub use converge::*;
pub use error::GcpError;
pub use issuer::*;
pub use mint::*;
pub use policy::*;
use serde_json::Value;

/// How long a just-created object may stay invisible before its absence is an error.
pub const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(120);
const ATTEMPTS: u32 = 6;

/// The endpoints of the three APIs.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub iam: String,
    pub resource_manager: String,
    pub storage: String,
}

impl Endpoints {
    /// The public endpoints, or their overrides from the environment.
    pub fn from_env() -> Endpoints {
        let get = |var: &str| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| v.trim_end_matches('/').to_string())
        };
        let storage = get("STORAGE_EMULATOR_HOST")
            .map(|h| {
                if h.contains("://") {
                    h
                } else {
                    format!("http://{h}")
                }
            })
            .or_else(|| get("GCP_STORAGE_ENDPOINT"))
            .unwrap_or_else(|| "https://storage.googleapis.com".into());
        Endpoints {
            iam: get("GCP_IAM_ENDPOINT").unwrap_or_else(|| "https://iam.googleapis.com".into()),
            resource_manager: get("GCP_RESOURCEMANAGER_ENDPOINT")
                .unwrap_or_else(|| "https://cloudresourcemanager.googleapis.com".into()),
            storage,
        }
    }
}

/// An authenticated connection to one project.
pub struct Gcp {
    http: reqwest::Client,
    auth: Auth,
    clients: official::Clients,
    pub endpoints: Endpoints,
    /// The project id (`--project`).
    pub project: String,
}

/// Everything but RFC 3986's unreserved characters is encoded in a path segment or query value
/// (object names contain `/`, which must not split the path).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

impl Gcp {
    /// Finds the credentials (see the [`auth`] module for the sources) and reads the project number
    /// (which checks the project exists and the credentials work).
    pub async fn connect(project: &str, endpoints: Endpoints) -> Result<(Gcp, String), GcpError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("ccoctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GcpError::Local(format!("cannot build the HTTP client: {e}")))?;
        let auth = auth::from_env()?;
        tracing::info!(source = %auth.source, "GCP credentials loaded");
        // A token now, so that a credentials problem is reported as one, naming its source.
        auth.headers().await?;
        let clients = official::Clients::new(&endpoints, auth.credentials.clone()).await?;
        let gcp = Gcp {
            http,
            auth,
            clients,
            endpoints,
            project: project.to_string(),
        };
        let number = gcp.project_number().await?;
        Ok((gcp, number))
    }

    /// Like [`Gcp::connect`], with the credentials file `credentials_json` (a service-account key,
    /// as the operator's root credential holds, or any other type [`auth::from_json`] accepts)
    /// instead of the environment.
    pub async fn connect_with_credentials(
        project: &str,
        endpoints: Endpoints,
        credentials_json: &str,
        user_agent: &str,
    ) -> Result<Gcp, GcpError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(user_agent)
            .build()
            .map_err(|e| GcpError::Local(format!("cannot build the HTTP client: {e}")))?;
        let auth = auth::from_json("the root credential", credentials_json)?;
        // Fail here, as the token exchange of earlier versions did, rather than at the first call.
        auth.headers().await?;
        let clients = official::Clients::new(&endpoints, auth.credentials.clone()).await?;
        Ok(Gcp {
            http,
            auth,
            clients,
            endpoints,
            project: project.to_string(),
        })
    }

    /// The project number, which federated principals and audiences name (Resource Manager v3
    /// `projects.get`: the project's `name` is `projects/<number>`).
    pub async fn project_number(&self) -> Result<String, GcpError> {
        let p = self
            .clients
            .projects
            .get_project()
            .set_name(format!("projects/{}", self.project))
            .send()
            .await
            .map_err(|e| official::gax_error("resourcemanager.projects.get", &self.project, e))?;
        p.name
            .strip_prefix("projects/")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
            .ok_or_else(|| {
                GcpError::Unexpected(format!(
                    "project {} has no project number (its name is {:?})",
                    self.project, p.name
                ))
            })
    }

    /// Sends one JSON request with the bearer token, retrying throttling and server errors.
    /// Returns the JSON body (`null` when empty).
    pub(crate) async fn call(
        &self,
        op: &'static str,
        resource: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, GcpError> {
        self.send(
            op,
            resource,
            method,
            url,
            body.map(|b| (b.to_string().into_bytes(), "application/json")),
        )
        .await
    }

    /// Like [`Gcp::call`] with a raw body of `content_type`.
    pub(crate) async fn send(
        &self,
        op: &'static str,
        resource: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Value, GcpError> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), url)
                .headers(self.auth.headers().await?)
                .header("Accept", "application/json");
            if let Some((b, ct)) = &body {
                req = req.header("Content-Type", *ct).body(b.clone());
            } else if method == reqwest::Method::POST {
                req = req.header("Content-Type", "application/json").body("{}");
            }
            let reason = match req.send().await {
                Err(e) if attempt < ATTEMPTS && (e.is_timeout() || e.is_request()) => e.to_string(),
                Err(e) => return Err(GcpError::unreachable(op, resource, &e)),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let bytes = resp.bytes().await.unwrap_or_default();
                    let v: Value = if bytes.is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                            Value::String(String::from_utf8_lossy(&bytes).into_owned())
                        })
                    };
                    if (200..300).contains(&status) {
                        return Ok(v);
                    }
                    if (status == 429 || status >= 500) && attempt < ATTEMPTS {
                        format!("HTTP {status}")
                    } else {
                        return Err(GcpError::api(op, resource, status, &v));
                    }
                }
            };
            tracing::debug!(op, resource, attempt, %reason, "retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Raw bytes of a GET (objects), `None` on 404.
    pub(crate) async fn get_bytes(
        &self,
        op: &'static str,
        resource: &str,
        url: &str,
    ) -> Result<Option<Vec<u8>>, GcpError> {
        let resp = self
            .http
            .get(url)
            .headers(self.auth.headers().await?)
            .send()
            .await
            .map_err(|e| GcpError::unreachable(op, resource, &e))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap_or_default().to_vec();
        match status {
            200 => Ok(Some(bytes)),
            404 => Ok(None),
            _ => Err(GcpError::api(
                op,
                resource,
                status,
                &serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )),
        }
    }

    /// Waits for a long-running IAM operation and returns its `response`.
    pub(crate) async fn wait(
        &self,
        op: &'static str,
        resource: &str,
        mut v: Value,
    ) -> Result<Value, GcpError> {
        let mut delay = Duration::from_millis(100);
        let start = tokio::time::Instant::now();
        loop {
            if v["done"] == true {
                if v["error"].is_object() {
                    return Err(GcpError::api(
                        op,
                        resource,
                        500,
                        &serde_json::json!({"error": v["error"]}),
                    ));
                }
                return Ok(v["response"].clone());
            }
            let Some(name) = v["name"].as_str().map(str::to_owned) else {
                return Ok(v); // not an operation: the resource itself
            };
            if start.elapsed() > VISIBILITY_TIMEOUT {
                return Err(GcpError::Unexpected(format!(
                    "{op} on {resource}: operation {name} did not finish in {}s",
                    VISIBILITY_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            let url = format!("{}/v1/{name}", self.endpoints.iam);
            v = self
                .call(op, resource, reqwest::Method::GET, &url, None)
                .await?;
        }
    }
}

/// Runs `f` until it succeeds or fails with an error other than "not visible yet", for at most
/// [`VISIBILITY_TIMEOUT`].
pub(crate) async fn eventually<T, F, Fut>(mut f: F) -> Result<T, GcpError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, GcpError>>,
{
    let start = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        match f().await {
            Err(e) if e.is_not_visible_yet() && start.elapsed() < VISIBILITY_TIMEOUT => {
                tracing::debug!(error = %e, "not visible yet, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn api(code: u16, status: &str, message: &str) -> GcpError {
        GcpError::Api {
            op: "x",
            resource: "r".into(),
            code,
            status: status.into(),
            message: message.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn invisible_objects_are_retried_and_real_errors_are_not() {
        let n = AtomicUsize::new(0);
        let got = eventually(|| async {
            match n.fetch_add(1, Ordering::SeqCst) {
                0 => Err(api(404, "NOT_FOUND", "gone")),
                1 => Err(api(
                    400,
                    "INVALID_ARGUMENT",
                    "Service account a@b does not exist.",
                )),
                _ => Ok(5),
            }
        })
        .await
        .expect("eventually");
        assert_eq!((got, n.load(Ordering::SeqCst)), (5, 3));
        let n = AtomicUsize::new(0);
        let e = eventually(|| async {
            n.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(api(400, "INVALID_ARGUMENT", "bad permission"))
        })
        .await
        .expect_err("fails");
        assert_eq!((e.code(), n.load(Ordering::SeqCst)), (Some(400), 1));
    }

    #[test]
    fn emulator_host_without_scheme_gets_http() {
        // Only the pure part: the scheme rule.
        let h = "127.0.0.1:4443";
        let url = if h.contains("://") {
            h.to_string()
        } else {
            format!("http://{h}")
        };
        assert_eq!(url, "http://127.0.0.1:4443");
        assert_eq!(
            enc(".well-known/openid-configuration"),
            ".well-known%2Fopenid-configuration"
        );
        assert_eq!(
            enc("a@p.iam.gserviceaccount.com"),
            "a%40p.iam.gserviceaccount.com"
        );
    }
}
