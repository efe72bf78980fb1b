//! Nutanix: long-term shared credentials (`ccoctl nutanix create-shared-secrets`).
//!
//! Data model: the user's credentials file (`~/.nutanix/credentials`, YAML) holds a list of typed
//! credentials; only `basic_auth` exists, with the Prism Central login and optionally one login per
//! Prism Element. Every Nutanix CredentialsRequest gets the same Secret: `data.credentials` is the
//! base64 of the JSON list `[{"type":"basic_auth","data":{"prismCentral":…,"prismElements":…}}]`, the
//! shape the Nutanix machine controllers read (and the reference tool writes, `prismElements` being
//! `null` when the file has none). Nothing here does I/O; values never appear in `Debug` output.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// The only credential type Nutanix defines.
pub const BASIC_AUTH: &str = "basic_auth";

/// Why the credentials file cannot be used. Every variant names the field at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NutanixError {
    #[error("{file}: not a Nutanix credentials file: field `{field}`: {message}")]
    Parse {
        file: String,
        field: String,
        message: String,
    },
    #[error("{file}: field `{field}` is missing or empty")]
    Missing { file: String, field: String },
    #[error("{file}: field `{field}`: unsupported credentials type `{kind}`; only `basic_auth` is supported")]
    UnsupportedType {
        file: String,
        field: String,
        kind: String,
    },
    #[error("{file}: no credentials: the file needs `credentials:` with at least one `type: basic_auth` entry")]
    Empty { file: String },
}

/// The credentials file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsFile {
    #[serde(default)]
    pub credentials: Vec<Credential>,
}

/// One typed credential.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

/// `basic_auth` data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    #[serde(default)]
    pub prism_central: Login,
    /// `None` serializes as `null`, as the reference tool writes a file without Prism Elements.
    #[serde(default)]
    pub prism_elements: Option<Vec<ElementLogin>>,
}

/// A username and password.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
}

/// A Prism Element (cluster) login. Field order is the JSON order of the reference tool (the
/// embedded username and password first, then the name).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementLogin {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub name: String,
}

impl fmt::Debug for CredentialsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<&str> = self.credentials.iter().map(|c| c.kind.as_str()).collect();
        f.debug_struct("CredentialsFile")
            .field("types", &kinds)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("type", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The validated credentials, ready to render: `(type, data)` pairs in file order.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedCredentials(Vec<(String, BasicAuth)>);

impl fmt::Debug for SharedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedCredentials({} credentials)", self.0.len())
    }
}

impl SharedCredentials {
    /// How many credentials there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none (never true after [`parse_credentials`]).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The JSON list the Secret carries, byte for byte as the reference tool's Go `json.Marshal`
    /// writes it: compact, and with `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`, … .
    pub fn to_json(&self) -> String {
        go_json_escape(&self.compact_json())
    }

    fn compact_json(&self) -> String {
        let list: Vec<serde_json::Value> = self
            .0
            .iter()
            .map(|(kind, data)| {
                serde_json::json!({
                    "type": kind,
                    "data": serde_json::to_value(data).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect();
        serde_json::to_string(&list).unwrap_or_default()
    }
}

/// Go's `encoding/json` escapes these characters inside strings (they only occur inside strings
/// in the JSON rendered here).
fn go_json_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Parses and validates the credentials file `text` (YAML or JSON); `file` names it in errors.
pub fn parse_credentials(file: &str, text: &str) -> Result<SharedCredentials, NutanixError> {
    let de = serde_yaml::Deserializer::from_str(text);
    let parsed: CredentialsFile =
        serde_path_to_error::deserialize(de).map_err(|e| NutanixError::Parse {
            file: file.into(),
            field: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
    let mut out = Vec::new();
    for (i, c) in parsed.credentials.into_iter().enumerate() {
        let at = |f: &str| format!("credentials[{i}]{f}");
        if c.kind != BASIC_AUTH {
            return Err(NutanixError::UnsupportedType {
                file: file.into(),
                field: at(".type"),
                kind: c.kind,
            });
        }
        let data = c.data.ok_or_else(|| NutanixError::Missing {
            file: file.into(),
            field: at(".data"),
        })?;
        let auth: BasicAuth =
            serde_path_to_error::deserialize(&data).map_err(|e| NutanixError::Parse {
                file: file.into(),
                field: at(&format!(".data.{}", e.path())),
                message: e.inner().to_string(),
            })?;
        let missing = |field: String| NutanixError::Missing {
            file: file.into(),
            field,
        };
        if auth.prism_central.username.is_empty() {
            return Err(missing(at(".data.prismCentral.username")));
        }
        if auth.prism_central.password.is_empty() {
            return Err(missing(at(".data.prismCentral.password")));
        }
        for (j, pe) in auth.prism_elements.iter().flatten().enumerate() {
            for (name, v) in [
                ("name", &pe.name),
                ("username", &pe.username),
                ("password", &pe.password),
            ] {
                if v.is_empty() {
                    return Err(missing(at(&format!(".data.prismElements[{j}].{name}"))));
                }
            }
        }
        out.push((c.kind, auth));
    }
    if out.is_empty() {
        return Err(NutanixError::Empty { file: file.into() });
    }
    Ok(SharedCredentials(out))
}

/// Path of the Secret manifest below the output dir.
pub fn secret_manifest_path(namespace: &str, name: &str) -> String {
    format!("manifests/{namespace}-{name}-credentials.yaml")
}

/// The Secret manifest for one request, byte for byte as the reference tool writes it.
pub fn secret_manifest(namespace: &str, name: &str, creds: &SharedCredentials) -> String {
    let b64 = STANDARD.encode(creds.to_json());
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\ntype: Opaque\ndata:\n  credentials: {b64}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
credentials:
- type: basic_auth
  data:
    prismCentral:
      username: admin
      password: s3cret
    prismElements:
    - name: pe1
      username: peuser
      password: pepass
"#;

    #[test]
    fn basic_auth_renders_the_reference_json() {
        let c = parse_credentials("f", FILE).expect("valid");
        assert_eq!(
            c.to_json(),
            r#"[{"type":"basic_auth","data":{"prismCentral":{"username":"admin","password":"s3cret"},"prismElements":[{"username":"peuser","password":"pepass","name":"pe1"}]}}]"#
        );
    }

    #[test]
    fn missing_prism_elements_render_as_null_like_the_reference_tool() {
        let text = "credentials:\n- type: basic_auth\n  data:\n    prismCentral: {username: u, password: p}\n";
        let c = parse_credentials("f", text).expect("valid");
        assert!(
            c.to_json().ends_with(r#""prismElements":null}}]"#),
            "{}",
            c.to_json()
        );
    }

    #[test]
    fn html_characters_are_escaped_as_go_escapes_them() {
        let c = parse_credentials("f", &FILE.replace("s3cret", "\"a<b>&c\"")).expect("valid");
        assert!(
            c.to_json()
                .contains(r#""password":"a\u003cb\u003e\u0026c""#),
            "{}",
            c.to_json()
        );
    }

    #[test]
    fn secret_manifest_decodes_back_to_the_credentials() {
        let c = parse_credentials("f", FILE).expect("valid");
        let m = secret_manifest("ns", "nutanix-credentials", &c);
        let v: serde_yaml::Value = serde_yaml::from_str(&m).expect("yaml");
        assert_eq!(v["metadata"]["namespace"].as_str(), Some("ns"));
        let data = STANDARD
            .decode(v["data"]["credentials"].as_str().expect("str"))
            .expect("b64");
        assert_eq!(String::from_utf8(data).expect("utf8"), c.to_json());
    }

    #[test]
    fn bad_files_name_the_field() {
        let e = parse_credentials("f", &FILE.replace("s3cret", "\"\"")).expect_err("bad");
        assert!(e
            .to_string()
            .contains("credentials[0].data.prismCentral.password"));
        let e = parse_credentials("f", &FILE.replace("basic_auth", "oauth")).expect_err("bad");
        assert!(e
            .to_string()
            .contains("unsupported credentials type `oauth`"));
        let e = parse_credentials("f", &FILE.replace("name: pe1", "name: \"\"")).expect_err("bad");
        assert!(e.to_string().contains("prismElements[0].name"), "{e}");
        let e = parse_credentials("f", "credentials: []\n").expect_err("bad");
        assert!(matches!(e, NutanixError::Empty { .. }));
        let e = parse_credentials("f", "credentials: 3\n").expect_err("bad");
        assert!(e.to_string().contains("field `credentials`"), "{e}");
    }

    #[test]
    fn debug_never_shows_passwords() {
        let c = parse_credentials("f", FILE).expect("valid");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
