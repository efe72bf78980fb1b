//! Service-account signing keys and the JWKS that publishes them.
//!
//! The private key is RSA 4096 in PKCS#1 PEM ("RSA PRIVATE KEY"), the public key PKIX PEM ("PUBLIC
//! KEY"), as the reference tool writes them. The JWK `kid` is the unpadded base64url SHA-256 of the DER
//! SubjectPublicKeyInfo, which is how kube-apiserver names the key in the tokens it signs, so a token's
//! `kid` always finds its key in the JWKS.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
pub use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Size of generated signing keys.
pub const KEY_BITS: usize = 4096;

/// Key material errors.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot generate an RSA key: {0}")]
    Generate(String),
    #[error("{what} is not a PEM RSA {kind} key (expected {expected}): {message}")]
    Parse {
        what: String,
        kind: &'static str,
        expected: &'static str,
        message: String,
    },
    #[error("cannot encode key: {0}")]
    Encode(String),
}

/// Generates a new RSA 4096 signing key.
pub fn generate() -> Result<RsaPrivateKey, KeyError> {
    let mut rng = rand::thread_rng();
    RsaPrivateKey::new(&mut rng, KEY_BITS).map_err(|e| KeyError::Generate(e.to_string()))
}

/// PKCS#1 PEM of a private key.
pub fn private_key_pem(key: &RsaPrivateKey) -> Result<String, KeyError> {
    key.to_pkcs1_pem(LineEnding::LF)
        .map(|z| z.to_string())
        .map_err(|e| KeyError::Encode(e.to_string()))
}

/// PKIX PEM of a public key.
pub fn public_key_pem(key: &RsaPublicKey) -> Result<String, KeyError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Encode(e.to_string()))
}

/// Parses a private key: PKCS#1 ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"). `what` names the source
/// in errors (a file path); the key itself never appears in an error.
pub fn parse_private_key(pem: &str, what: &str) -> Result<RsaPrivateKey, KeyError> {
    RsaPrivateKey::from_pkcs1_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs8_pem(pem))
        .map_err(|e| KeyError::Parse {
            what: what.to_string(),
            kind: "private",
            expected: "\"RSA PRIVATE KEY\" or \"PRIVATE KEY\"",
            message: e.to_string(),
        })
}

/// Parses a public key: PKIX ("PUBLIC KEY", what a cluster's `service-account.pub` holds) or PKCS#1
/// ("RSA PUBLIC KEY").
pub fn parse_public_key(pem: &str, what: &str) -> Result<RsaPublicKey, KeyError> {
    RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
        .map_err(|e| KeyError::Parse {
            what: what.to_string(),
            kind: "public",
            expected: "\"PUBLIC KEY\" or \"RSA PUBLIC KEY\"",
            message: e.to_string(),
        })
}

/// The Kubernetes key id: unpadded base64url of SHA-256 over the DER SubjectPublicKeyInfo.
pub fn key_id(key: &RsaPublicKey) -> Result<String, KeyError> {
    let der = key
        .to_public_key_der()
        .map_err(|e| KeyError::Encode(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_bytes())))
}

/// One JWK for a signing key.
pub fn jwk(key: &RsaPublicKey) -> Result<Value, KeyError> {
    Ok(json!({
        "use": "sig",
        "kty": "RSA",
        "kid": key_id(key)?,
        "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    }))
}

/// A JWKS publishing `keys` in order (the current key first during a rotation).
pub fn jwks(keys: &[RsaPublicKey]) -> Result<Value, KeyError> {
    let keys = keys.iter().map(jwk).collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "keys": keys }))
}

/// Merges a freshly built JWKS with one already published: the new keys come first, then every
/// previously published key whose `kid` is not among them. This is how a rotation publishes old and
/// new keys side by side, so no token signed by the old key is rejected while it is still valid.
pub fn merge_jwks(new: &Value, published: &Value) -> Value {
    let mut keys: Vec<Value> = new
        .get("keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let kids: Vec<String> = keys
        .iter()
        .filter_map(|k| k.get("kid").and_then(Value::as_str).map(str::to_owned))
        .collect();
    if let Some(old) = published.get("keys").and_then(Value::as_array) {
        for k in old {
            let kid = k.get("kid").and_then(Value::as_str).unwrap_or("");
            if !kid.is_empty() && !kids.iter().any(|x| x == kid) {
                keys.push(k.clone());
            }
        }
    }
    json!({ "keys": keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A fixed 1024-bit key keeps unit tests fast; generation of 4096-bit keys is covered by the CLI tests.
    fn small_key() -> RsaPrivateKey {
        let mut rng = rand::thread_rng();
        RsaPrivateKey::new(&mut rng, 1024).expect("keygen")
    }

    #[test]
    fn pem_round_trips_in_the_reference_formats() {
        let k = small_key();
        let priv_pem = private_key_pem(&k).expect("pem");
        assert!(priv_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let pub_pem = public_key_pem(&k.to_public_key()).expect("pem");
        assert!(pub_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(parse_private_key(&priv_pem, "x").expect("parse"), k);
        assert_eq!(
            parse_public_key(&pub_pem, "x").expect("parse"),
            k.to_public_key()
        );
    }

    #[test]
    fn kid_is_sha256_of_spki_der() {
        let k = small_key().to_public_key();
        let der = k.to_public_key_der().expect("der");
        let want = URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_bytes()));
        assert_eq!(key_id(&k).expect("kid"), want);
        assert_eq!(want.len(), 43);
    }

    #[test]
    fn jwk_has_the_reference_fields() {
        let k = small_key().to_public_key();
        let j = jwk(&k).expect("jwk");
        assert_eq!(j["use"], "sig");
        assert_eq!(j["kty"], "RSA");
        assert_eq!(j["alg"], "RS256");
        assert_eq!(j["e"], "AQAB");
    }

    #[test]
    fn merged_jwks_keeps_old_keys_after_new_ones_without_duplicates() {
        let a = small_key().to_public_key();
        let b = small_key().to_public_key();
        let old = jwks(std::slice::from_ref(&a)).expect("jwks");
        let new = jwks(std::slice::from_ref(&b)).expect("jwks");
        let merged = merge_jwks(&new, &old);
        let kids: Vec<_> = merged["keys"]
            .as_array()
            .expect("arr")
            .iter()
            .map(|k| k["kid"].clone())
            .collect();
        assert_eq!(
            kids,
            vec![
                json!(key_id(&b).expect("kid")),
                json!(key_id(&a).expect("kid"))
            ]
        );
        assert_eq!(
            merge_jwks(&new, &new)["keys"]
                .as_array()
                .expect("arr")
                .len(),
            1
        );
    }

    #[test]
    fn bad_pem_error_names_the_source_but_not_the_content() {
        let err = parse_public_key(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "/tmp/k.pub",
        )
        .expect_err("must fail")
        .to_string();
        assert!(err.contains("/tmp/k.pub"), "{err}");
        assert!(!err.contains("AAAA"), "{err}");
    }
}
