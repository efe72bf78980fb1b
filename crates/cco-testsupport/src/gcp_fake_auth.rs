//! How the GCP fake authenticates callers, as Google does for the credential types the official
//! client libraries use:
//!
//! - access tokens it issued at its OAuth 2.0 endpoint `POST /token` (JWT-bearer grant of a
//!   service-account key, refresh-token grant of user credentials), as before;
//! - self-signed JWTs of a service-account key used directly as the bearer token (what
//!   `google-cloud-auth` sends for `"type": "service_account"`): RS256, `kid` naming a key this fake
//!   issued ([`super::GcpFake::service_account_key_json`] or `serviceAccounts.keys.create`, not
//!   deleted), `iss` its service account, `scope` or `aud` present, not expired, and the signature
//!   verified with that key;
//! - Security Token Service token exchange `POST /v1/token` (RFC 8693, as `sts.googleapis.com`
//!   serves it for workload identity federation): the `audience` must name an active OIDC provider
//!   of an active pool of this project, and the subject token must be a JWT whose `iss` is the
//!   provider's `issuerUri`, whose `aud` is one of its `allowedAudiences`, with a `sub` and not
//!   expired. The access token then acts for
//!   `principal://iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/subject/<sub>`.
//!   Not modelled: the subject token's signature (the issuer's keys), attribute conditions and
//!   mappings other than `google.subject = assertion.sub`;
//! - IAM Credentials `POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken`
//!   (impersonation): the caller needs `roles/iam.serviceAccountTokenCreator` on the target, and the
//!   token then acts for the target. Not modelled: delegation chains (`delegates`), lifetimes.
//!
//! Every authenticated call records its caller ([`super::GcpFake::calls`]: the email of a
//! self-signed JWT, the federated principal of an STS token), so tests can tell which credential
//! flow produced the token a client sent.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::Verifier;
use serde_json::{json, Value};

use super::{State, PROJECT_NUMBER};
use crate::fake_http::{Request, Response};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn decode_part(p: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok()?).ok()
}

/// Whether `token` is a valid credential here, and then who it acts for (`None` inside: unknown).
pub(super) fn authenticate(s: &State, token: &str) -> Option<Option<String>> {
    if s.tokens.contains(token) {
        return Some(s.token_owner.get(token).cloned());
    }
    // Checked on every call (not remembered), so a deleted key's JWTs stop working at once.
    self_signed_jwt(s, token).map(Some)
}

/// The service account whose key signed `jwt`, if the JWT is valid.
fn self_signed_jwt(s: &State, jwt: &str) -> Option<String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, sig] = parts.as_slice() else {
        return None;
    };
    let header = decode_part(h)?;
    let claims = decode_part(c)?;
    if header["alg"] != "RS256" {
        return None;
    }
    let (email, pem) = s.signing_keys.get(header["kid"].as_str()?)?;
    let fresh = claims["exp"].as_i64().is_some_and(|e| e > now());
    let scoped = claims["scope"].is_string() || claims["aud"].is_string();
    if claims["iss"] != email.as_str() || !fresh || !scoped {
        return None;
    }
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).ok()?;
    let vk = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(key.to_public_key());
    let sig =
        rsa::pkcs1v15::Signature::try_from(URL_SAFE_NO_PAD.decode(sig).ok()?.as_slice()).ok()?;
    vk.verify(format!("{h}.{c}").as_bytes(), &sig).ok()?;
    Some(email.clone())
}

fn sts_error(error: &str, description: &str) -> Response {
    Response::json(
        400,
        &json!({"error": error, "error_description": description}),
    )
}

/// `POST /v1/token`: the STS token exchange of workload identity federation.
pub(super) fn sts(s: &mut State, r: &Request) -> Response {
    let form = r.form();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if get("grant_type") != TOKEN_EXCHANGE {
        return sts_error(
            "unsupported_grant_type",
            &format!("Unsupported grant_type {:?}.", get("grant_type")),
        );
    }
    if get("requested_token_type") != ACCESS_TOKEN_TYPE {
        return sts_error("invalid_request", "Invalid requested_token_type.");
    }
    if !matches!(
        get("subject_token_type"),
        "urn:ietf:params:oauth:token-type:jwt" | "urn:ietf:params:oauth:token-type:id_token"
    ) {
        return sts_error("invalid_request", "Invalid subject_token_type.");
    }
    let audience = get("audience");
    let segs: Vec<&str> = audience
        .strip_prefix("//iam.googleapis.com/")
        .unwrap_or("")
        .split('/')
        .collect();
    let ["projects", number, "locations", "global", "workloadIdentityPools", pool, "providers", provider] =
        segs.as_slice()
    else {
        return sts_error(
            "invalid_request",
            &format!("Invalid audience {audience:?}: expected //iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>."),
        );
    };
    let active =
        |v: Option<&Value>| v.is_some_and(|v| v["state"] == "ACTIVE" && v["disabled"] != true);
    if *number != PROJECT_NUMBER
        || !active(s.pools.get(*pool))
        || !active(s.providers.get(&(pool.to_string(), provider.to_string())))
    {
        return sts_error(
            "invalid_target",
            &format!("The target service indicated by the \"audience\" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist: {audience}"),
        );
    }
    let oidc = s
        .providers
        .get(&(pool.to_string(), provider.to_string()))
        .map(|p| p["oidc"].clone())
        .unwrap_or(Value::Null);
    let subject = get("subject_token");
    let claims = match subject.split('.').collect::<Vec<_>>().as_slice() {
        [_, c, _] => decode_part(c).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    if claims["iss"] != oidc["issuerUri"] {
        return sts_error(
            "invalid_grant",
            "The issuer in ID Token does not match the expected ones.",
        );
    }
    let auds: Vec<&str> = match &claims["aud"] {
        Value::String(a) => vec![a.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let allowed = oidc["allowedAudiences"].as_array();
    let aud_ok = match allowed {
        Some(list) if !list.is_empty() => auds.iter().any(|a| list.iter().any(|l| l == *a)),
        _ => auds.iter().any(|a| *a == format!("https:{audience}")),
    };
    if !aud_ok {
        return sts_error(
            "invalid_grant",
            "The audience in ID Token does not match the expected audience.",
        );
    }
    if claims["exp"].as_i64().is_none_or(|e| e <= now()) {
        return sts_error("invalid_grant", "ID Token has expired.");
    }
    let Some(sub) = claims["sub"].as_str().filter(|s| !s.is_empty()) else {
        return sts_error("invalid_grant", "The ID Token has no sub claim.");
    };
    let t = format!("ya29.sts-fake-{}", s.next());
    s.tokens.insert(t.clone());
    s.token_owner.insert(
        t.clone(),
        format!("principal://iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{pool}/subject/{sub}"),
    );
    Response::json(
        200,
        &json!({"access_token": t, "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer", "expires_in": 3600}),
    )
}

/// `2026-12-01T17:00:00Z` for a Unix time (UTC, seconds).
fn rfc3339(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken` (the IAM Credentials API, what
/// `impersonated_service_account` credentials call): the caller needs
/// `roles/iam.serviceAccountTokenCreator` on the target account (its policy or the project's); the
/// token then acts for the target.
pub(super) fn generate_access_token(
    s: &mut State,
    r: &Request,
    caller: Option<&str>,
    email: &str,
) -> Response {
    let member = caller.map(|c| format!("serviceAccount:{c}"));
    let grants = |policy: &Value| {
        policy["bindings"].as_array().is_some_and(|bs| {
            bs.iter().any(|b| {
                b["role"] == "roles/iam.serviceAccountTokenCreator"
                    && b["members"].as_array().is_some_and(|m| {
                        m.iter()
                            .any(|x| Some(x.as_str().unwrap_or("")) == member.as_deref())
                    })
            })
        })
    };
    let allowed =
        s.sas.get(email).is_some_and(|sa| grants(&sa.policy)) || grants(&s.project_policy);
    if !s.sas.contains_key(email) || !allowed {
        return super::err(
            403,
            "PERMISSION_DENIED",
            &format!("Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist): projects/-/serviceAccounts/{email}"),
        );
    }
    let body = r.json().unwrap_or(Value::Null);
    if body["scope"].as_array().is_none_or(|a| a.is_empty()) {
        return super::err(400, "INVALID_ARGUMENT", "Scope required.");
    }
    let t = format!("ya29.impersonated-fake-{}", s.next());
    s.tokens.insert(t.clone());
    s.token_owner.insert(t.clone(), email.to_string());
    Response::json(
        200,
        &json!({"accessToken": t, "expireTime": rfc3339(now() + 3600)}),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_of_unix_times() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_796_144_400), "2026-12-01T17:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
