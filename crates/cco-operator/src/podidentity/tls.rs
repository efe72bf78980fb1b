//! The cluster TLS profile (APIServer `cluster` `spec.tlsSecurityProfile`) as webhook arguments.
//!
//! The profiles are OpenShift's: `Old` (TLS 1.0, many ciphers), `Intermediate` (the default: TLS
//! 1.2, AEAD ciphers), `Modern` (TLS 1.3) and `Custom`. Ciphers are OpenSSL names in the API; the
//! webhook takes IANA names (`--tls-cipher-suites`), converted with the same table the reference
//! uses (library-go's `OpenSSLToIANACipherSuites`; names it does not know are dropped). The minimum
//! version is passed as the API spells it (`--tls-min-version=VersionTLS12`).
//!
//! Deviation, documented in the README: the reference passes these arguments only when the
//! APIServer's `spec.tlsAdherence` is `StrictAllComponents` (a field of a newer, feature-gated API);
//! we always follow the profile, except when `tlsAdherence` is `LegacyAdheringComponentsOnly`.

use crate::clusterconfig::{APIServer, TlsProfileSpec};

/// `--tls-min-version` and `--tls-cipher-suites` for the webhook (empty: no arguments).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsArgs {
    pub min_version: Option<String>,
    pub ciphers: Vec<String>,
}

impl TlsArgs {
    /// The arguments, in the order the reference appends them.
    pub fn args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(v) = &self.min_version {
            out.push(format!("--tls-min-version={v}"));
        }
        if !self.ciphers.is_empty() {
            out.push(format!("--tls-cipher-suites={}", self.ciphers.join(",")));
        }
        out
    }
}

const TLS13: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

const INTERMEDIATE: [&str; 6] = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
];

const OLD_EXTRA: [&str; 15] = [
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA256",
    "AES256-SHA256",
    "AES128-SHA",
    "AES256-SHA",
    "DES-CBC3-SHA",
];

/// A predefined profile by name; unknown names fall back to Intermediate (as in library-go).
pub fn predefined(name: &str) -> TlsProfileSpec {
    let list = |parts: &[&[&str]]| {
        parts
            .iter()
            .flat_map(|p| p.iter())
            .map(|s| s.to_string())
            .collect()
    };
    match name {
        "Old" => TlsProfileSpec {
            ciphers: list(&[&TLS13, &INTERMEDIATE, &OLD_EXTRA]),
            min_tls_version: "VersionTLS10".into(),
        },
        "Modern" => TlsProfileSpec {
            ciphers: list(&[&TLS13]),
            min_tls_version: "VersionTLS13".into(),
        },
        _ => TlsProfileSpec {
            ciphers: list(&[&TLS13, &INTERMEDIATE]),
            min_tls_version: "VersionTLS12".into(),
        },
    }
}

/// OpenSSL cipher name → IANA name (library-go's table); `None` for names it does not know.
pub fn openssl_to_iana(name: &str) -> Option<&'static str> {
    Some(match name {
        "TLS_AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256" => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256" => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384" => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384" => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305" => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-AES128-SHA256" => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        "ECDHE-RSA-AES128-SHA256" => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        "AES128-GCM-SHA256" => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "AES256-GCM-SHA384" => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "AES128-SHA256" => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        "ECDHE-ECDSA-AES128-SHA" => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        "ECDHE-RSA-AES128-SHA" => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "ECDHE-ECDSA-AES256-SHA" => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        "ECDHE-RSA-AES256-SHA" => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        "AES128-SHA" => "TLS_RSA_WITH_AES_128_CBC_SHA",
        "AES256-SHA" => "TLS_RSA_WITH_AES_256_CBC_SHA",
        "DES-CBC3-SHA" => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        "ECDHE-RSA-DES-CBC3-SHA" => "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        _ => return None,
    })
}

/// The profile in force: APIServer's, or Intermediate when there is none or it is unusable
/// (a `Custom` type without `custom`).
pub fn profile(apiserver: Option<&APIServer>) -> TlsProfileSpec {
    let Some(p) = apiserver.and_then(|a| a.spec.tls_security_profile.as_ref()) else {
        return predefined("Intermediate");
    };
    match p.type_.as_deref() {
        Some("Custom") => p
            .custom
            .clone()
            .unwrap_or_else(|| predefined("Intermediate")),
        Some(name) => predefined(name),
        None => predefined("Intermediate"),
    }
}

/// The webhook's TLS arguments for the cluster's APIServer configuration.
pub fn webhook_tls_args(apiserver: Option<&APIServer>) -> TlsArgs {
    let legacy_only = apiserver
        .and_then(|a| a.spec.tls_adherence.as_deref())
        .is_some_and(|a| a == "LegacyAdheringComponentsOnly");
    if legacy_only {
        return TlsArgs::default();
    }
    let p = profile(apiserver);
    TlsArgs {
        min_version: Some(p.min_tls_version.clone()).filter(|v| !v.is_empty()),
        ciphers: p
            .ciphers
            .iter()
            .filter_map(|c| openssl_to_iana(c))
            .map(str::to_string)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apiserver(spec: serde_json::Value) -> APIServer {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "config.openshift.io/v1", "kind": "APIServer",
            "metadata": {"name": "cluster"}, "spec": spec
        }))
        .expect("parses")
    }

    #[test]
    fn default_is_intermediate() {
        let a = webhook_tls_args(None);
        assert_eq!(a.min_version.as_deref(), Some("VersionTLS12"));
        assert_eq!(a.ciphers.len(), 9);
        assert_eq!(a.args()[0], "--tls-min-version=VersionTLS12");
        assert!(a.args()[1].starts_with(
            "--tls-cipher-suites=TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,"
        ));
        assert_eq!(webhook_tls_args(Some(&apiserver(serde_json::json!({})))), a);
    }

    #[test]
    fn modern_old_and_custom() {
        let m = webhook_tls_args(Some(&apiserver(
            serde_json::json!({"tlsSecurityProfile": {"type": "Modern", "modern": {}}}),
        )));
        assert_eq!(m.min_version.as_deref(), Some("VersionTLS13"));
        assert_eq!(m.ciphers, TLS13.map(str::to_string).to_vec());
        let o = webhook_tls_args(Some(&apiserver(
            serde_json::json!({"tlsSecurityProfile": {"type": "Old", "old": {}}}),
        )));
        assert_eq!(o.min_version.as_deref(), Some("VersionTLS10"));
        // ECDHE-*-AES256-SHA384 and AES256-SHA256 are not in library-go's table: dropped, as
        // upstream.
        assert_eq!(o.ciphers.len(), 24 - 3);
        let c = webhook_tls_args(Some(&apiserver(serde_json::json!({"tlsSecurityProfile": {
            "type": "Custom", "custom": {"ciphers": ["ECDHE-RSA-AES128-GCM-SHA256", "NOT-A-CIPHER"],
            "minTLSVersion": "VersionTLS12"}}}))));
        assert_eq!(
            c.args(),
            vec![
                "--tls-min-version=VersionTLS12".to_string(),
                "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string()
            ]
        );
    }

    #[test]
    fn legacy_adherence_leaves_the_webhook_defaults() {
        let a = webhook_tls_args(Some(&apiserver(serde_json::json!({
            "tlsAdherence": "LegacyAdheringComponentsOnly",
            "tlsSecurityProfile": {"type": "Modern", "modern": {}}}))));
        assert!(a.args().is_empty());
    }
}
