//! The OIDC issuer's documents: the discovery document and the installer's Authentication manifest.

use serde_json::{json, Value};

/// Flavour of the discovery document: AWS and GCP publish the JWKS at `<issuer>/keys.json` and list
/// `claims_supported`; Azure publishes it at `<issuer>/openid/v1/jwks` and does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    AwsGcp,
    Azure,
}

/// Path of the discovery document below the issuer.
pub const DISCOVERY_PATH: &str = ".well-known/openid-configuration";
/// Path of the JWKS below the issuer for AWS and GCP.
pub const KEYS_PATH: &str = "keys.json";
/// Path of the JWKS below the issuer for Azure.
pub const AZURE_KEYS_PATH: &str = "openid/v1/jwks";
/// Where `create-*` writes the Authentication manifest, relative to the output dir.
pub const AUTHENTICATION_MANIFEST: &str = "manifests/cluster-authentication-02-config.yaml";

/// The discovery document for `issuer` (no trailing slash).
pub fn discovery_document(issuer: &str, flavour: Flavour) -> Value {
    let issuer = issuer.trim_end_matches('/');
    match flavour {
        Flavour::AwsGcp => json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/{KEYS_PATH}"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["aud", "exp", "sub", "iat", "iss", "sub"],
        }),
        Flavour::Azure => json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/{AZURE_KEYS_PATH}"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }),
    }
}

/// Mode of the Authentication manifest, as the reference tool writes it.
pub const AUTHENTICATION_MANIFEST_MODE: u32 = 0o600;

/// The `config.openshift.io/v1` Authentication `cluster` manifest naming the issuer, byte for byte as
/// the reference tool writes it (no final newline).
pub fn authentication_manifest(issuer: &str) -> String {
    format!(
        "apiVersion: config.openshift.io/v1\nkind: Authentication\nmetadata:\n  name: cluster\nspec:\n  serviceAccountIssuer: {}",
        issuer.trim_end_matches('/')
    )
}

/// Pretty JSON with a trailing newline, as written to files and uploaded.
pub fn to_pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// `v` as Go's `json.MarshalIndent(v, "", "    ")` writes it: four-space indentation, `": "`
/// between key and value, no final newline. The reference tool writes and publishes its JWKS so
/// (`keys.json`, `jwks`, a provider's `jwksJson`). Go would also escape `<`, `>` and `&`, which no
/// JWKS holds.
pub fn to_go_indented(v: &Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    if v.serialize(&mut ser).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// The discovery document of an AWS or GCP issuer byte for byte as the reference tool writes and
/// uploads it: its template (`provisioning.DiscoveryDocumentTemplate`) mixes tab and space
/// indentation and has no final newline. Equal, as JSON, to
/// `discovery_document(issuer, Flavour::AwsGcp)`.
pub fn reference_discovery_text(issuer: &str) -> String {
    let issuer = issuer.trim_end_matches('/');
    format!(
        "{{\n\t\"issuer\": \"{issuer}\",\n\t\"jwks_uri\": \"{issuer}/{KEYS_PATH}\",\n    \"response_types_supported\": [\n        \"id_token\"\n    ],\n    \"subject_types_supported\": [\n        \"public\"\n    ],\n    \"id_token_signing_alg_values_supported\": [\n        \"RS256\"\n    ],\n    \"claims_supported\": [\n        \"aud\",\n        \"exp\",\n        \"sub\",\n        \"iat\",\n        \"iss\",\n        \"sub\"\n    ]\n}}"
    )
}

/// The discovery document of an Azure issuer byte for byte as the reference tool writes and
/// uploads it (its `openidConfigurationTemplate`: tab indentation, no final newline). Equal, as
/// JSON, to `discovery_document(issuer, Flavour::Azure)`.
pub fn reference_azure_discovery_text(issuer: &str) -> String {
    let issuer = issuer.trim_end_matches('/');
    format!(
        "{{\n\t\t\"issuer\": \"{issuer}\",\n\t\t\"jwks_uri\": \"{issuer}/{AZURE_KEYS_PATH}\",\n\t\t\"response_types_supported\": [\n\t\t  \"id_token\"\n\t\t],\n\t\t\"subject_types_supported\": [\n\t\t  \"public\"\n\t\t],\n\t\t\"id_token_signing_alg_values_supported\": [\n\t\t  \"RS256\"\n\t\t]\n\t  }}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_discovery_points_at_keys_json() {
        let d = discovery_document(
            "https://x-oidc.s3.us-east-1.amazonaws.com/",
            Flavour::AwsGcp,
        );
        assert_eq!(d["issuer"], "https://x-oidc.s3.us-east-1.amazonaws.com");
        assert_eq!(
            d["jwks_uri"],
            "https://x-oidc.s3.us-east-1.amazonaws.com/keys.json"
        );
        assert_eq!(
            d["claims_supported"],
            json!(["aud", "exp", "sub", "iat", "iss", "sub"])
        );
    }

    #[test]
    fn azure_discovery_has_no_claims_and_another_jwks_path() {
        let d = discovery_document("https://a.blob.core.windows.net/c", Flavour::Azure);
        assert_eq!(
            d["jwks_uri"],
            "https://a.blob.core.windows.net/c/openid/v1/jwks"
        );
        assert!(d.get("claims_supported").is_none());
    }

    #[test]
    fn reference_texts_are_the_documents_in_the_reference_layout() {
        for (text, flavour) in [
            (reference_discovery_text("https://i/x/"), Flavour::AwsGcp),
            (
                reference_azure_discovery_text("https://i/x"),
                Flavour::Azure,
            ),
        ] {
            let v: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(v, discovery_document("https://i/x", flavour));
            assert!(!text.ends_with('\n'));
        }
        assert!(reference_discovery_text("https://i")
            .starts_with("{\n\t\"issuer\": \"https://i\",\n\t\"jwks_uri\""));
        assert!(reference_azure_discovery_text("https://i").ends_with("\t\t]\n\t  }"));
        let v = json!({"keys": [{"use": "sig", "e": "AQAB"}], "empty": []});
        assert_eq!(
            to_go_indented(&v),
            "{\n    \"keys\": [\n        {\n            \"use\": \"sig\",\n            \"e\": \"AQAB\"\n        }\n    ],\n    \"empty\": []\n}"
        );
    }

    #[test]
    fn authentication_manifest_names_the_issuer() {
        let m = authentication_manifest("https://i");
        let v: serde_yaml::Value = serde_yaml::from_str(&m).expect("yaml");
        assert_eq!(
            v["spec"]["serviceAccountIssuer"].as_str(),
            Some("https://i")
        );
        assert_eq!(v["kind"].as_str(), Some("Authentication"));
    }
}
