//! Cloud-neutral checks of `ccoctl <cloud> verify`, as pure functions of what was fetched or read.
//!
//! The callers do the I/O (anonymous HTTPS GETs of the issuer documents, reading the cluster) and
//! hand the results here as [`Fetched`] values and key ids; each function returns
//! [`Check`](crate::report::Check)s with stable ids:
//!
//! | id | what |
//! |---|---|
//! | `issuer.discovery` | `<issuer>/.well-known/openid-configuration` is served anonymously over HTTPS as JSON |
//! | `issuer.discovery_issuer` | its `issuer` equals the issuer URL exactly |
//! | `issuer.jwks_uri` | its `jwks_uri` is served anonymously over HTTPS |
//! | `issuer.jwks` | the JWKS parses and every key has `kid`, `kty`, `n`, `e` |
//! | `keys.kid` | the JWKS holds the kid of each signing key checked |
//! | `keys.unused` | (warning) a published kid matches none of the signing keys checked |
//! | `cluster.authentication` | the cluster's Authentication `spec.serviceAccountIssuer` is the issuer |
//! | `files.authentication` | the installer manifest in the output dir names the issuer |

use serde_json::Value;

use crate::oidc::DISCOVERY_PATH;
use crate::report::{Check, DiffItem};

/// The outcome of one anonymous GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// A response arrived: its status and body.
    Response { status: u16, body: Vec<u8> },
    /// No response: the reason (TLS, DNS, connection, not https).
    Failed(String),
}

/// A signing key whose kid must be published, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKey {
    /// E.g. `serviceaccount-signer.public` or `the cluster's next key (Secret ns/name)`.
    pub label: String,
    pub kid: String,
}

/// `<issuer>/.well-known/openid-configuration`.
pub fn discovery_url(issuer: &str) -> String {
    format!("{}/{DISCOVERY_PATH}", issuer.trim_end_matches('/'))
}

fn json_body(url: &str, fetched: &Fetched) -> Result<Value, String> {
    match fetched {
        Fetched::Failed(why) => Err(format!("cannot GET {url} anonymously: {why}")),
        Fetched::Response { status, .. } if *status != 200 => Err(format!(
            "anonymous GET {url} answered HTTP {status}, not 200"
        )),
        Fetched::Response { body, .. } => serde_json::from_slice(body)
            .map_err(|e| format!("{url} is served but is not JSON: {e}")),
    }
}

/// Checks of the discovery document. Returns the checks and, when the document is usable, its
/// `jwks_uri`. `fix` is the command that republishes the documents.
pub fn discovery_checks(
    issuer: &str,
    fetched: &Fetched,
    fix: &str,
) -> (Vec<Check>, Option<String>) {
    let url = discovery_url(issuer);
    let mut checks = Vec::new();
    if !issuer.starts_with("https://") {
        checks.push(Check::fail(
            "issuer.discovery",
            issuer,
            "the issuer is not an https:// URL; cloud identity providers accept only HTTPS issuers",
            Some(fix.to_string()),
        ));
        return (checks, None);
    }
    let doc = match json_body(&url, fetched) {
        Ok(doc) => doc,
        Err(why) => {
            checks.push(Check::fail(
                "issuer.discovery",
                &url,
                why,
                Some(fix.to_string()),
            ));
            return (checks, None);
        }
    };
    checks.push(Check::pass(
        "issuer.discovery",
        &url,
        "served anonymously over HTTPS",
    ));
    match doc.get("issuer").and_then(Value::as_str) {
        Some(i) if i == issuer => checks.push(Check::pass(
            "issuer.discovery_issuer",
            &url,
            format!("issuer is {issuer}"),
        )),
        other => checks.push(Check::fail(
            "issuer.discovery_issuer",
            &url,
            format!(
                "issuer is {}, expected exactly {issuer}; tokens would be rejected",
                other.map_or("missing".to_string(), |o| format!("{o:?}"))
            ),
            Some(fix.to_string()),
        )),
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if jwks_uri.is_none() {
        checks.push(Check::fail(
            "issuer.jwks_uri",
            &url,
            "the discovery document has no jwks_uri",
            Some(fix.to_string()),
        ));
    }
    (checks, jwks_uri)
}

/// Checks of the JWKS at `jwks_uri`. Returns the checks and the parsed JWKS when usable.
pub fn jwks_checks(jwks_uri: &str, fetched: &Fetched, fix: &str) -> (Vec<Check>, Option<Value>) {
    let mut checks = Vec::new();
    if !jwks_uri.starts_with("https://") {
        checks.push(Check::fail(
            "issuer.jwks_uri",
            jwks_uri,
            "jwks_uri is not an https:// URL",
            Some(fix.to_string()),
        ));
        return (checks, None);
    }
    let doc = match json_body(jwks_uri, fetched) {
        Ok(doc) => {
            checks.push(Check::pass(
                "issuer.jwks_uri",
                jwks_uri,
                "served anonymously over HTTPS",
            ));
            doc
        }
        Err(why) => {
            checks.push(Check::fail(
                "issuer.jwks_uri",
                jwks_uri,
                why,
                Some(fix.to_string()),
            ));
            return (checks, None);
        }
    };
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        checks.push(Check::fail(
            "issuer.jwks",
            jwks_uri,
            "not a JWKS: there is no `keys` list",
            Some(fix.to_string()),
        ));
        return (checks, None);
    };
    let bad: Vec<String> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| {
            ["kid", "kty", "n", "e"]
                .iter()
                .any(|f| k.get(*f).and_then(Value::as_str).is_none_or(str::is_empty))
        })
        .map(|(i, _)| format!("keys[{i}]"))
        .collect();
    if !bad.is_empty() {
        checks.push(Check::fail(
            "issuer.jwks",
            jwks_uri,
            format!("{} lack kid, kty, n or e", bad.join(", ")),
            Some(fix.to_string()),
        ));
        return (checks, None);
    }
    checks.push(Check::pass(
        "issuer.jwks",
        jwks_uri,
        format!("a JWKS of {} key(s)", keys.len()),
    ));
    (checks, Some(doc))
}

/// The kids a JWKS publishes.
pub fn published_kids(jwks: &Value) -> Vec<String> {
    jwks.get("keys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|k| k.get("kid").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// One `keys.kid` check per signing key, and a `keys.unused` warning per published kid that none
/// of them has. `fix_publish(label)` is the command that publishes a key; `fix_prune` the one that
/// removes keys no longer used.
pub fn key_checks(
    jwks_uri: &str,
    jwks: &Value,
    signing: &[SigningKey],
    fix_publish: impl Fn(&SigningKey) -> String,
    fix_prune: Option<String>,
) -> Vec<Check> {
    let published = published_kids(jwks);
    let mut checks = Vec::new();
    if signing.is_empty() {
        checks.push(Check::warn(
            "keys.kid",
            jwks_uri,
            "no signing key to compare with; pass --public-key-file, --output-dir or --kubeconfig",
            None,
        ));
        return checks;
    }
    for k in signing {
        if published.contains(&k.kid) {
            checks.push(Check::pass(
                "keys.kid",
                &k.label,
                format!("kid {} is published", k.kid),
            ));
        } else {
            checks.push(Check::fail(
                "keys.kid",
                &k.label,
                format!(
                    "kid {} is not published at {jwks_uri}; tokens it signs will be rejected",
                    k.kid
                ),
                Some(fix_publish(k)),
            ));
        }
    }
    for kid in published {
        if !signing.iter().any(|k| k.kid == kid) {
            checks.push(Check::warn(
                "keys.unused",
                jwks_uri,
                format!(
                    "published kid {kid} is none of the signing keys checked; once no valid token is signed with it, stop publishing it"
                ),
                fix_prune.clone(),
            ));
        }
    }
    checks
}

/// Whether the cluster's (or the manifest's) service-account issuer is `issuer`. `observed` is
/// `Err` with a reason when it could not be read.
pub fn authentication_check(
    id: &str,
    subject: &str,
    observed: Result<Option<&str>, &str>,
    issuer: &str,
    fix: &str,
) -> Check {
    match observed {
        Ok(Some(i)) if i == issuer => Check::pass(id, subject, format!("serviceAccountIssuer is {issuer}")),
        Ok(Some(i)) => Check::fail(
            id,
            subject,
            format!("serviceAccountIssuer is {i:?}, expected {issuer}; tokens carry the wrong issuer and are rejected"),
            Some(fix.to_string()),
        ),
        Ok(None) => Check::fail(
            id,
            subject,
            format!("spec.serviceAccountIssuer is not set; expected {issuer}"),
            Some(fix.to_string()),
        ),
        Err(why) => Check::warn(id, subject, why.to_string(), Some(fix.to_string())),
    }
}

/// A short one-line form of diff items, for check messages: `+actions: a, b; -subjects: c`.
pub fn summarize(items: &[DiffItem]) -> String {
    items
        .iter()
        .map(|d| match d {
            DiffItem::Add { field, values } => format!("missing {field}: {}", values.join(", ")),
            DiffItem::Remove { field, values } => {
                format!("unexpected {field}: {}", values.join(", "))
            }
            DiffItem::Change {
                field,
                before,
                after,
            } => format!(
                "{field} is {} instead of {}",
                before.as_deref().unwrap_or("absent"),
                after.as_deref().unwrap_or("absent")
            ),
            DiffItem::Note { text } => text.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CheckStatus;

    const ISSUER: &str = "https://x-oidc.s3.us-east-1.amazonaws.com";

    fn ok(v: &Value) -> Fetched {
        Fetched::Response {
            status: 200,
            body: v.to_string().into_bytes(),
        }
    }

    #[test]
    fn a_good_discovery_document_passes_and_yields_the_jwks_uri() {
        let doc = serde_json::json!({"issuer": ISSUER, "jwks_uri": format!("{ISSUER}/keys.json")});
        let (checks, uri) = discovery_checks(ISSUER, &ok(&doc), "fix");
        assert!(checks.iter().all(|c| c.status == CheckStatus::Pass));
        assert_eq!(uri.as_deref(), Some(&*format!("{ISSUER}/keys.json")));
    }

    #[test]
    fn a_forbidden_or_mismatched_discovery_document_fails_with_the_fix() {
        let (checks, uri) = discovery_checks(
            ISSUER,
            &Fetched::Response {
                status: 403,
                body: vec![],
            },
            "ccoctl fix",
        );
        assert_eq!(checks[0].status, CheckStatus::Fail);
        assert!(checks[0].message.contains("403"));
        assert_eq!(checks[0].fix.as_deref(), Some("ccoctl fix"));
        assert_eq!(uri, None);
        let doc = serde_json::json!({"issuer": format!("{ISSUER}/"), "jwks_uri": "https://k"});
        let (checks, _) = discovery_checks(ISSUER, &ok(&doc), "fix");
        assert_eq!(checks[1].id, "issuer.discovery_issuer");
        assert_eq!(checks[1].status, CheckStatus::Fail);
    }

    #[test]
    fn unpublished_signing_keys_fail_and_unused_published_keys_warn() {
        let jwks = serde_json::json!({"keys": [{"kid": "a", "kty": "RSA", "n": "x", "e": "AQAB"},
                                               {"kid": "old", "kty": "RSA", "n": "y", "e": "AQAB"}]});
        let (checks, parsed) = jwks_checks("https://k", &ok(&jwks), "fix");
        assert_eq!(checks.len(), 2);
        let jwks = parsed.expect("parsed");
        let signing = [
            SigningKey {
                label: "current".into(),
                kid: "a".into(),
            },
            SigningKey {
                label: "next".into(),
                kid: "b".into(),
            },
        ];
        let checks = key_checks(
            "https://k",
            &jwks,
            &signing,
            |k| format!("publish {}", k.label),
            Some("prune".into()),
        );
        let statuses: Vec<_> = checks.iter().map(|c| (c.id.as_str(), c.status)).collect();
        assert_eq!(
            statuses,
            [
                ("keys.kid", CheckStatus::Pass),
                ("keys.kid", CheckStatus::Fail),
                ("keys.unused", CheckStatus::Warn)
            ]
        );
        assert_eq!(checks[1].fix.as_deref(), Some("publish next"));
    }

    #[test]
    fn a_jwks_without_key_material_fails() {
        let jwks = serde_json::json!({"keys": [{"kid": "a"}]});
        let (checks, parsed) = jwks_checks("https://k", &ok(&jwks), "fix");
        assert_eq!(checks[1].status, CheckStatus::Fail);
        assert!(parsed.is_none());
    }

    #[test]
    fn authentication_issuer_mismatch_fails() {
        let c = authentication_check("cluster.authentication", "a", Ok(Some("https://other")), ISSUER, "oc patch");
        assert_eq!(c.status, CheckStatus::Fail);
        let c = authentication_check("cluster.authentication", "a", Ok(Some(ISSUER)), ISSUER, "oc patch");
        assert_eq!(c.status, CheckStatus::Pass);
    }
}
