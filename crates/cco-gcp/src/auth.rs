//! Where the caller's credentials come from. The credentials themselves — every type Google's
//! client libraries accept — are Google's own implementation, the `google-cloud-auth` crate:
//! service-account keys (`"type": "service_account"`, self-signed JWTs), user credentials
//! (`authorized_user`, refresh-token exchange), workload identity federation (`external_account`:
//! a subject token from a file, URL, executable or AWS, exchanged at the file's `token_url`, then
//! optionally impersonating a service account; `external_account_authorized_user`), impersonated
//! service accounts (`impersonated_service_account`), and the metadata server of GCE/GKE.
//!
//! The sources are tried in the reference `ccoctl`'s order (`pkg/cmd/provisioning/gcp/
//! credentials.go`: the three installer variables, the installer's file, then Google's application
//! default credentials), after one source of ours:
//!
//! 1. `GOOGLE_OAUTH_ACCESS_TOKEN`: a bare access token, used as it is (not in the reference tool);
//! 2. `GOOGLE_CREDENTIALS`, `GOOGLE_CLOUD_KEYFILE_JSON`, `GCLOUD_KEYFILE_JSON`: the path of a
//!    credentials file if it exists, else the file's JSON content;
//! 3. `~/.gcp/osServiceAccount.json` (the installer's file);
//! 4. application default credentials: `GOOGLE_APPLICATION_CREDENTIALS` (a path), then gcloud's
//!    `application_default_credentials.json` (`gcloud auth application-default login`), then the
//!    metadata server.
//!
//! The operator builds its credentials from the root Secret's `service_account.json` content with
//! [`from_json`]. Keys, tokens and file contents are never logged nor put in errors (the crate's
//! `Debug` censors them too).

use std::path::PathBuf;

use google_cloud_auth::credentials::{
    external_account, external_account_authorized_user, impersonated, mds, service_account,
    user_account, CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use google_cloud_auth::errors::CredentialsError;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use serde_json::Value;

use crate::GcpError;

/// The variables of the reference tool holding a credentials file's path or content, in its order.
pub const KEYFILE_VARIABLES: [&str; 3] = [
    "GOOGLE_CREDENTIALS",
    "GOOGLE_CLOUD_KEYFILE_JSON",
    "GCLOUD_KEYFILE_JSON",
];

/// The caller's credentials, and where they came from (for messages).
#[derive(Clone)]
pub struct Auth {
    /// What the official clients use too.
    pub credentials: Credentials,
    /// Where the credentials came from: `file "…"`, `environment variable "…"`, ….
    pub source: String,
}

/// `GOOGLE_OAUTH_ACCESS_TOKEN`: a bare access token as credentials.
struct BareToken(HeaderMap);

impl std::fmt::Debug for BareToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BareToken([censored])")
    }
}

impl CredentialsProvider for BareToken {
    async fn headers(
        &self,
        _: http::Extensions,
    ) -> Result<CacheableResource<HeaderMap>, CredentialsError> {
        Ok(CacheableResource::New {
            entity_tag: EntityTag::new(),
            data: self.0.clone(),
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        None
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// The headers that authenticate one request (`Authorization`, and what the credential type
    /// adds, such as `x-goog-user-project`). Tokens are cached and refreshed by the credentials.
    pub async fn headers(&self) -> Result<HeaderMap, GcpError> {
        match self.credentials.headers(http::Extensions::new()).await {
            Ok(CacheableResource::New { data, .. }) => Ok(data),
            Ok(CacheableResource::NotModified) => Err(GcpError::Credentials {
                message: format!("{}: no authentication headers", self.source),
            }),
            Err(e) => Err(GcpError::Credentials {
                message: format!(
                    "cannot get an access token with the credentials from {}: {e}{}",
                    self.source,
                    if self.source == METADATA_SERVER {
                        ". No credentials were found elsewhere: set GOOGLE_APPLICATION_CREDENTIALS to a credentials file, or run `gcloud auth application-default login`"
                    } else {
                        ""
                    }
                ),
            }),
        }
    }
}

const METADATA_SERVER: &str = "the metadata server";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn read(path: &std::path::Path, what: &str) -> Result<String, GcpError> {
    std::fs::read_to_string(path).map_err(|e| GcpError::Credentials {
        message: format!("cannot read the credentials file {what}: {e}"),
    })
}

/// gcloud's application default credentials file.
fn gcloud_adc_file() -> Option<PathBuf> {
    let dir = var("CLOUDSDK_CONFIG")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config/gcloud")))?;
    Some(dir.join("application_default_credentials.json"))
}

/// The credentials from the first source that has some (see the module header for the order).
pub fn from_env() -> Result<Auth, GcpError> {
    if let Some(t) = var("GOOGLE_OAUTH_ACCESS_TOKEN") {
        let source = "environment variable \"GOOGLE_OAUTH_ACCESS_TOKEN\"".to_string();
        let mut v = HeaderValue::from_str(&format!("Bearer {}", t.trim())).map_err(|_| {
            GcpError::Credentials {
                message: format!("{source}: the token is not a valid header value"),
            }
        })?;
        v.set_sensitive(true);
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, v);
        return Ok(Auth {
            credentials: Credentials::from(BareToken(h)),
            source,
        });
    }
    for name in KEYFILE_VARIABLES {
        let Some(v) = var(name) else { continue };
        let path = PathBuf::from(v.trim());
        return if path.is_file() {
            let what = format!("environment variable \"{name}\", file {:?}", path.display());
            from_json(&what, &read(&path, &what)?)
        } else {
            from_json(&format!("environment variable \"{name}\" (content)"), &v)
        };
    }
    if let Some(home) = var("HOME") {
        let p = PathBuf::from(home).join(".gcp/osServiceAccount.json");
        if p.is_file() {
            let what = format!("file {:?}", p.display());
            return from_json(&what, &read(&p, &what)?);
        }
    }
    if let Some(p) = var("GOOGLE_APPLICATION_CREDENTIALS") {
        let what = format!("GOOGLE_APPLICATION_CREDENTIALS, file {p:?}");
        return from_json(&what, &read(std::path::Path::new(&p), &what)?);
    }
    if let Some(p) = gcloud_adc_file().filter(|p| p.is_file()) {
        let what = format!(
            "gcloud application default credentials, file {:?}",
            p.display()
        );
        return from_json(&what, &read(&p, &what)?);
    }
    let c = mds::Builder::default()
        .build()
        .map_err(|e| GcpError::Credentials {
            message: format!("{METADATA_SERVER}: {e}"),
        })?;
    Ok(Auth {
        credentials: c,
        source: METADATA_SERVER.into(),
    })
}

/// Credentials from the JSON `text` of a credentials file, described as `what` in messages.
pub fn from_json(what: &str, text: &str) -> Result<Auth, GcpError> {
    let bad = |m: String| GcpError::Credentials {
        message: format!("{what}: {m}"),
    };
    let json: Value = serde_json::from_str(text).map_err(|e| {
        // The position only: the content may be a key.
        bad(format!(
            "not a JSON credentials file (syntax error at line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    let built = match json["type"].as_str() {
        Some("service_account") => service_account::Builder::new(json).build(),
        Some("authorized_user") => user_account::Builder::new(json).build(),
        Some("external_account") => external_account::Builder::new(json).build(),
        Some("external_account_authorized_user") => {
            external_account_authorized_user::Builder::new(json).build()
        }
        Some("impersonated_service_account") => impersonated::Builder::new(json).build(),
        other => {
            return Err(bad(format!(
                "field \"type\" is {}: supported are service_account, authorized_user, external_account, external_account_authorized_user and impersonated_service_account",
                other.map_or_else(|| "missing".to_string(), |t| format!("{t:?}"))
            )))
        }
    };
    let c = built.map_err(|e| bad(e.to_string()))?;
    tracing::debug!(source = what, "GCP credentials loaded");
    Ok(Auth {
        credentials: c,
        source: what.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_named_and_their_content_is_not_echoed() {
        let e = from_json("file \"k.json\"", "{\"private_key\": \"SECRET\", oops}")
            .expect_err("bad json");
        let m = e.to_string();
        assert!(m.contains("k.json") && m.contains("line 1"), "{m}");
        assert!(!m.contains("SECRET"), "{m}");
        let e = from_json(
            "file \"k.json\"",
            r#"{"type": "gdch", "private_key": "SECRET"}"#,
        )
        .expect_err("unsupported");
        let m = e.to_string();
        assert!(m.contains("\"gdch\"") && !m.contains("SECRET"), "{m}");
        let e =
            from_json("file \"k.json\"", r#"{"type": "service_account"}"#).expect_err("incomplete");
        assert!(e.to_string().contains("k.json"), "{e}");
    }
}
