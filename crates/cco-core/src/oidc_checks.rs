//! Checks every cloud's `verify` makes the same way, as pure functions over what was fetched: the
//! issuer's documents ([`issuer_checks`]), the signing keys they publish ([`key_checks`]) and the
//! cluster's Authentication `spec.serviceAccountIssuer` ([`authentication_check`]).
//!
//! The caller fetches (anonymously, over HTTPS, as an OIDC relying party would) and passes the
//! outcome as a [`Fetch`]; nothing here does I/O. Check ids: `issuer.https`, `issuer.discovery`,
//! `issuer.issuer`, `issuer.jwks_uri`, `issuer.jwks`, `keys.kid`, `keys.next`, `keys.stale`,
//! `cluster.authentication`, `manifest.authentication`.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::report::Check;

/// The outcome of one anonymous GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// The URL fetched (for an emulator, where the public URL is served).
    pub url: String,
    /// The body of a 200, or why there is none (status and the server's words, or the transport
    /// or TLS error).
    pub outcome: Result<Vec<u8>, String>,
}

/// What the issuer checks found.
#[derive(Clone, Debug, Default)]
pub struct IssuerFindings {
    pub checks: Vec<Check>,
    /// `jwks_uri` of the discovery document, when it has one.
    pub jwks_uri: Option<String>,
    /// The JWKS, when it was fetched and parses.
    pub jwks: Option<Value>,
}

/// Checks the discovery document (fetched from `<issuer>/.well-known/openid-configuration`):
/// HTTPS, served anonymously, `issuer` equal to the URL. `fix` is the command that (re)publishes
/// the documents.
pub fn discovery_checks(issuer: &str, discovery: &Fetch, fix: &str) -> IssuerFindings {
    let mut f = IssuerFindings::default();
    let subject = issuer.to_string();
    if issuer.starts_with("https://") && discovery.url.starts_with("https://") {
        f.checks.push(Check::pass(
            "issuer.https",
            &subject,
            "the issuer is an https URL and is served over TLS",
        ));
    } else {
        f.checks.push(Check::fail(
            "issuer.https",
            &subject,
            format!(
                "the issuer must be served over https (fetched {}); cloud token exchanges refuse other issuers",
                discovery.url
            ),
            Some(fix.to_string()),
        ));
    }
    let doc = match &discovery.outcome {
        Err(e) => {
            f.checks.push(Check::fail(
                "issuer.discovery",
                &discovery.url,
                format!("the discovery document is not served anonymously: {e}"),
                Some(fix.to_string()),
            ));
            return f;
        }
        Ok(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(v) if v.is_object() => v,
            _ => {
                f.checks.push(Check::fail(
                    "issuer.discovery",
                    &discovery.url,
                    "the discovery document is not a JSON object",
                    Some(fix.to_string()),
                ));
                return f;
            }
        },
    };
    f.checks.push(Check::pass(
        "issuer.discovery",
        &discovery.url,
        "the discovery document is served anonymously",
    ));
    match doc["issuer"].as_str() {
        Some(i) if i == issuer => f.checks.push(Check::pass(
            "issuer.issuer",
            &subject,
            "`issuer` in the discovery document equals the issuer URL",
        )),
        other => f.checks.push(Check::fail(
            "issuer.issuer",
            &subject,
            format!(
                "`issuer` in the discovery document is {:?}, not the issuer URL {issuer:?}; tokens would be rejected",
                other.unwrap_or("(missing)")
            ),
            Some(fix.to_string()),
        )),
    }
    f.jwks_uri = doc["jwks_uri"].as_str().map(str::to_owned);
    if f.jwks_uri.is_none() {
        f.checks.push(Check::fail(
            "issuer.jwks_uri",
            &discovery.url,
            "the discovery document has no `jwks_uri`",
            Some(fix.to_string()),
        ));
    }
    f
}

/// Checks the JWKS fetched from `jwks_uri` (reachable anonymously, parses as RSA keys with ids)
/// and adds the checks and the parsed set to `f`.
pub fn jwks_checks(f: &mut IssuerFindings, jwks_uri: &str, jwks: &Fetch, fix: &str) {
    let bytes = match &jwks.outcome {
        Err(e) => {
            f.checks.push(Check::fail(
                "issuer.jwks_uri",
                jwks_uri,
                format!("`jwks_uri` is not reachable anonymously: {e}"),
                Some(fix.to_string()),
            ));
            return;
        }
        Ok(b) => b,
    };
    f.checks.push(Check::pass(
        "issuer.jwks_uri",
        jwks_uri,
        "`jwks_uri` is reachable anonymously",
    ));
    match parse_jwks(bytes) {
        Ok(v) => {
            let n = v["keys"].as_array().map_or(0, Vec::len);
            f.checks.push(Check::pass(
                "issuer.jwks",
                jwks_uri,
                format!("the JWKS parses ({n} RSA keys)"),
            ));
            f.jwks = Some(v);
        }
        Err(e) => f.checks.push(Check::fail(
            "issuer.jwks",
            jwks_uri,
            format!("the JWKS does not parse: {e}"),
            Some(fix.to_string()),
        )),
    }
}

/// Parses a JWKS: an object with a `keys` array of RSA signing keys, each with `kid`, `n` and `e`.
pub fn parse_jwks(bytes: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    let keys = v["keys"].as_array().ok_or("no `keys` array")?;
    for (i, k) in keys.iter().enumerate() {
        if k["kty"] != "RSA" {
            return Err(format!("key {i} is not an RSA key (kty {})", k["kty"]));
        }
        for field in ["kid", "n", "e"] {
            if k[field].as_str().is_none_or(|s| s.is_empty()) {
                return Err(format!("key {i} has no `{field}`"));
            }
        }
    }
    Ok(v)
}

/// The `kid`s of a JWKS.
pub fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

/// Whether a signing key signs today's tokens or is the one the cluster rotates to next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRole {
    Current,
    Next,
}

/// A key the cluster signs (or will sign) tokens with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKey {
    /// Where it came from, e.g. `--public-key-file k.pub` or `Secret openshift-kube-apiserver/…`.
    pub source: String,
    pub kid: String,
    pub role: KeyRole,
}

/// Checks that the published keys (`jwks`, at `subject`) hold every current signing key (fail
/// otherwise: tokens are rejected), the next one (warn otherwise), and warns about published keys
/// that sign nothing any more. `publish_fix` publishes a key file; `prune_fix` drops old keys.
pub fn key_checks(
    subject: &str,
    jwks: &Value,
    signing: &[SigningKey],
    publish_fix: &dyn Fn(&SigningKey) -> String,
    prune_fix: &str,
) -> Vec<Check> {
    let mut out = Vec::new();
    let published: BTreeSet<String> = kids(jwks).into_iter().collect();
    if signing.is_empty() {
        out.push(Check::warn(
            "keys.kid",
            subject,
            "no signing key to compare with: pass --public-key-file (or --output-dir holding serviceaccount-signer.public) or --kubeconfig",
            None,
        ));
        return out;
    }
    for k in signing {
        let here = published.contains(&k.kid);
        let (id, what) = match k.role {
            KeyRole::Current => ("keys.kid", "signing key"),
            KeyRole::Next => ("keys.next", "next signing key"),
        };
        let label = format!("{what} {} ({})", k.kid, k.source);
        out.push(match (here, k.role) {
            (true, _) => Check::pass(id, subject, format!("the {label} is published")),
            (false, KeyRole::Current) => Check::fail(
                id,
                subject,
                format!("the {label} is not published: the cloud rejects every token it signs"),
                Some(publish_fix(k)),
            ),
            (false, KeyRole::Next) => Check::warn(
                id,
                subject,
                format!(
                    "the {label} is not published yet: publish it before the cluster rotates to it"
                ),
                Some(publish_fix(k)),
            ),
        });
    }
    let known: BTreeSet<&str> = signing.iter().map(|k| k.kid.as_str()).collect();
    let stale: Vec<&String> = published
        .iter()
        .filter(|k| !known.contains(k.as_str()))
        .collect();
    if stale.is_empty() {
        out.push(Check::pass(
            "keys.stale",
            subject,
            "every published key is a signing key",
        ));
    } else {
        out.push(Check::warn(
            "keys.stale",
            subject,
            format!(
                "published keys that sign nothing any more: {}; remove them once no token they signed is in use",
                stale.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
            Some(prune_fix.to_string()),
        ));
    }
    out
}

/// Checks an Authentication `spec.serviceAccountIssuer` against the issuer. `found` is the value
/// (`None` when unset) or why it could not be read; `id` is `cluster.authentication` or
/// `manifest.authentication`.
pub fn authentication_check(
    id: &str,
    subject: &str,
    issuer: &str,
    found: &Result<Option<String>, String>,
    fix: &str,
) -> Check {
    match found {
        Ok(Some(v)) if v.trim_end_matches('/') == issuer.trim_end_matches('/') => Check::pass(
            id,
            subject,
            "spec.serviceAccountIssuer equals the issuer",
        ),
        Ok(Some(v)) => Check::fail(
            id,
            subject,
            format!("spec.serviceAccountIssuer is {v:?}, not the issuer {issuer:?}: tokens name the wrong issuer and are rejected"),
            Some(fix.to_string()),
        ),
        Ok(None) => Check::fail(
            id,
            subject,
            "spec.serviceAccountIssuer is not set: tokens name the cluster's default issuer and are rejected",
            Some(fix.to_string()),
        ),
        Err(e) => Check::fail(id, subject, format!("cannot read it: {e}"), Some(fix.to_string())),
    }
}

/// The `oc patch` that sets the cluster's issuer.
pub fn patch_authentication_fix(issuer: &str) -> String {
    format!(
        "oc patch authentication cluster --type=merge -p '{{\"spec\":{{\"serviceAccountIssuer\":\"{issuer}\"}}}}'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CheckStatus;
    use serde_json::json;

    const ISSUER: &str = "https://storage.googleapis.com/c1-oidc";

    fn ok(url: &str, v: &Value) -> Fetch {
        Fetch {
            url: url.into(),
            outcome: Ok(v.to_string().into_bytes()),
        }
    }

    fn statuses(c: &[Check]) -> Vec<(String, CheckStatus)> {
        c.iter().map(|c| (c.id.clone(), c.status)).collect()
    }

    #[test]
    fn a_good_issuer_passes_every_check() {
        let disc = crate::oidc::discovery_document(ISSUER, crate::oidc::Flavour::AwsGcp);
        let mut f = discovery_checks(
            ISSUER,
            &ok(&format!("{ISSUER}/.well-known/openid-configuration"), &disc),
            "fix",
        );
        let uri = f.jwks_uri.clone().expect("jwks_uri");
        assert_eq!(uri, format!("{ISSUER}/keys.json"));
        let jwks = json!({"keys": [{"kty": "RSA", "kid": "a", "n": "x", "e": "AQAB"}]});
        jwks_checks(&mut f, &uri, &ok(&uri, &jwks), "fix");
        assert!(
            f.checks.iter().all(|c| c.status == CheckStatus::Pass),
            "{:?}",
            f.checks
        );
        assert_eq!(f.jwks, Some(jwks));
    }

    #[test]
    fn a_private_or_wrong_issuer_fails_with_the_fix() {
        let f = discovery_checks(
            ISSUER,
            &Fetch {
                url: format!("{ISSUER}/.well-known/openid-configuration"),
                outcome: Err("HTTP 403 AccessDenied".into()),
            },
            "ccoctl gcp create-all …",
        );
        assert_eq!(
            statuses(&f.checks),
            [
                ("issuer.https".to_string(), CheckStatus::Pass),
                ("issuer.discovery".to_string(), CheckStatus::Fail)
            ]
        );
        assert_eq!(f.checks[1].fix.as_deref(), Some("ccoctl gcp create-all …"));
        let disc =
            json!({"issuer": "https://elsewhere", "jwks_uri": "https://elsewhere/keys.json"});
        let f = discovery_checks("http://plain/x", &ok("http://plain/x/d", &disc), "fix");
        assert_eq!(
            statuses(&f.checks),
            [
                ("issuer.https".to_string(), CheckStatus::Fail),
                ("issuer.discovery".to_string(), CheckStatus::Pass),
                ("issuer.issuer".to_string(), CheckStatus::Fail)
            ]
        );
        let mut f = IssuerFindings::default();
        jwks_checks(
            &mut f,
            "u",
            &ok("u", &json!({"keys": [{"kty": "EC", "kid": "a"}]})),
            "fix",
        );
        assert_eq!(f.checks[1].status, CheckStatus::Fail);
        assert!(
            f.checks[1].message.contains("not an RSA key"),
            "{:?}",
            f.checks
        );
    }

    #[test]
    fn keys_missing_next_and_stale_are_told_apart() {
        let jwks = json!({"keys": [{"kid": "old"}, {"kid": "cur"}]});
        let keys = [
            SigningKey {
                source: "cluster".into(),
                kid: "cur".into(),
                role: KeyRole::Current,
            },
            SigningKey {
                source: "cluster".into(),
                kid: "nxt".into(),
                role: KeyRole::Next,
            },
        ];
        let c = key_checks(
            "s",
            &jwks,
            &keys,
            &|k| format!("publish {}", k.kid),
            "prune",
        );
        assert_eq!(
            statuses(&c),
            [
                ("keys.kid".to_string(), CheckStatus::Pass),
                ("keys.next".to_string(), CheckStatus::Warn),
                ("keys.stale".to_string(), CheckStatus::Warn)
            ]
        );
        assert_eq!(c[1].fix.as_deref(), Some("publish nxt"));
        assert!(c[2].message.contains("old"));
        let rotated = [SigningKey {
            source: "f".into(),
            kid: "new".into(),
            role: KeyRole::Current,
        }];
        let c = key_checks("s", &jwks, &rotated, &|_| "publish".into(), "prune");
        assert_eq!(c[0].status, CheckStatus::Fail);
    }

    #[test]
    fn the_authentication_issuer_must_match() {
        let fix = patch_authentication_fix(ISSUER);
        let pass = authentication_check(
            "cluster.authentication",
            "a",
            ISSUER,
            &Ok(Some(format!("{ISSUER}/"))),
            &fix,
        );
        assert_eq!(pass.status, CheckStatus::Pass);
        let fail = authentication_check(
            "cluster.authentication",
            "a",
            ISSUER,
            &Ok(Some("https://other".into())),
            &fix,
        );
        assert_eq!(fail.status, CheckStatus::Fail);
        assert!(fail
            .fix
            .as_deref()
            .is_some_and(|f| f.contains(ISSUER) && f.starts_with("oc patch")));
        let unset = authentication_check("cluster.authentication", "a", ISSUER, &Ok(None), &fix);
        assert_eq!(unset.status, CheckStatus::Fail);
    }
}
