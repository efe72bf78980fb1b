//! Where the caller's OAuth 2.0 access token comes from, in this order:
//!
//! 1. `GOOGLE_OAUTH_ACCESS_TOKEN`: a token as it is;
//! 2. `GOOGLE_CREDENTIALS`: the JSON of a credentials file (the installer's convention);
//! 3. `GOOGLE_APPLICATION_CREDENTIALS`: the path of a credentials file;
//! 4. `~/.gcp/osServiceAccount.json` (the installer's file);
//! 5. `~/.config/gcloud/application_default_credentials.json` (`gcloud auth application-default login`).
//!
//! A credentials file is a service-account key (`"type": "service_account"`: an RS256-signed JWT
//! assertion is exchanged at its `token_uri`) or user credentials (`"type": "authorized_user"`: the
//! refresh token is exchanged). The key is never logged.

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{json, Value};

use crate::GcpError;

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// Where credentials were found, for messages.
fn sources() -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    if let Ok(j) = std::env::var("GOOGLE_CREDENTIALS") {
        if !j.trim().is_empty() {
            out.push(("GOOGLE_CREDENTIALS".to_string(), Some(j)));
        }
    }
    let mut paths: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty()) {
        paths.push(PathBuf::from(p));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let home = PathBuf::from(home);
        paths.push(home.join(".gcp/osServiceAccount.json"));
        paths.push(home.join(".config/gcloud/application_default_credentials.json"));
    }
    for p in paths {
        let text = std::fs::read_to_string(&p).ok();
        let explicit =
            std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").is_some_and(|e| e == p.as_os_str());
        if text.is_some() || explicit {
            out.push((p.display().to_string(), text));
        }
    }
    out
}

/// Gets an access token from the first available source.
pub async fn access_token(http: &reqwest::Client) -> Result<String, GcpError> {
    if let Ok(t) = std::env::var("GOOGLE_OAUTH_ACCESS_TOKEN") {
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let Some((what, text)) = sources().into_iter().next() else {
        return Err(GcpError::Credentials {
            message: "no credentials found: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run `gcloud auth application-default login`, or set GOOGLE_OAUTH_ACCESS_TOKEN".into(),
        });
    };
    let text = text.ok_or_else(|| GcpError::Credentials {
        message: format!("cannot read the credentials file {what}"),
    })?;
    access_token_from_json(http, &what, &text).await
}

/// Exchanges the credentials file `text` (described as `what` in messages) for an access token.
pub async fn access_token_from_json(
    http: &reqwest::Client,
    what: &str,
    text: &str,
) -> Result<String, GcpError> {
    let creds: Value = serde_json::from_str(text).map_err(|e| GcpError::Credentials {
        message: format!("{what} is not a JSON credentials file: {e}"),
    })?;
    let bad = |m: &str| GcpError::Credentials {
        message: format!("{what}: {m}"),
    };
    let token_uri = creds["token_uri"]
        .as_str()
        .filter(|u| !u.is_empty())
        .unwrap_or(DEFAULT_TOKEN_URI)
        .to_string();
    let form: Vec<(&str, String)> = match creds["type"].as_str() {
        Some("service_account") => {
            let email = creds["client_email"]
                .as_str()
                .ok_or_else(|| bad("field client_email is missing"))?;
            let pem = creds["private_key"]
                .as_str()
                .ok_or_else(|| bad("field private_key is missing"))?;
            let kid = creds["private_key_id"].as_str().unwrap_or("");
            let assertion =
                jwt_assertion(email, kid, pem, &token_uri).map_err(|m| bad(&m))?;
            vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                ),
                ("assertion", assertion),
            ]
        }
        Some("authorized_user") => {
            let get = |k: &str| {
                creds[k]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(&format!("field {k} is missing")))
            };
            vec![
                ("grant_type", "refresh_token".into()),
                ("refresh_token", get("refresh_token")?),
                ("client_id", get("client_id")?),
                ("client_secret", get("client_secret")?),
            ]
        }
        other => {
            return Err(bad(&format!(
                "credentials of type {other:?} are not supported (use a service_account key or authorized_user credentials)"
            )))
        }
    };
    let resp = http
        .post(&token_uri)
        .form(&form)
        .send()
        .await
        .map_err(|e| GcpError::unreachable("oauth2:Token", &token_uri, &e))?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    match body["access_token"].as_str() {
        Some(t) if status == 200 => Ok(t.to_string()),
        _ => Err(GcpError::Credentials {
            message: format!(
                "the token endpoint {token_uri} refused the credentials from {what}: HTTP {status}: {} {}",
                body["error"].as_str().unwrap_or(""),
                body["error_description"].as_str().unwrap_or("")
            ),
        }),
    }
}

fn jwt_assertion(email: &str, kid: &str, pem: &str, aud: &str) -> Result<String, String> {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| "field private_key is not a PEM RSA private key".to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let claims = json!({"iss": email, "scope": SCOPE, "aud": aud, "iat": now, "exp": now + 3600});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signer = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(key);
    let sig = signer.sign(signing_input.as_bytes()).to_bytes();
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    use rsa::signature::Verifier;

    #[test]
    fn the_assertion_is_an_rs256_jwt_signed_by_the_key() {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key");
        let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pem");
        let jwt = jwt_assertion("a@p.iam.gserviceaccount.com", "k1", &pem, "https://t/token")
            .expect("jwt");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        assert_eq!(claims["aud"], "https://t/token");
        assert_eq!(claims["scope"], SCOPE);
        let verifier = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(key.to_public_key());
        let sig = rsa::pkcs1v15::Signature::try_from(
            URL_SAFE_NO_PAD.decode(parts[2]).expect("b64").as_slice(),
        )
        .expect("sig");
        verifier
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .expect("valid signature");
        assert!(jwt_assertion("a", "k", "not a key", "x").is_err());
    }
}
