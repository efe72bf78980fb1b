//! What the GCP and Azure `verify` commands read besides the cloud: the issuer's documents fetched
//! anonymously over HTTPS ([`Prober`]), the signing keys of the installation (a public key file, the
//! output directory, or the cluster's own Secrets), and, with `--kubeconfig`, the cluster's
//! Authentication and the requests' Secrets ([`Cluster`]). Everything here only reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use cco_core::keys;
use cco_core::oidc_checks::{
    authentication_check, patch_authentication_fix, Fetch, KeyRole, SigningKey,
};
use cco_core::report::Check;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;

use crate::keypair::{PRIVATE_KEY_FILE, PUBLIC_KEY_FILE};

/// Quotes a command-line word for a POSIX shell when it needs it (the fix commands `verify` prints).
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// [`sh_quote`] of a path.
pub fn quote_path(p: &Path) -> String {
    sh_quote(&p.display().to_string())
}

/// The cluster's current service-account signing key: Secret namespace, name and data key.
pub const CURRENT_KEY_SECRET: (&str, &str, &str) = (
    "openshift-kube-apiserver",
    "bound-service-account-signing-key",
    "service-account.pub",
);
/// The key the cluster rotates to next.
pub const NEXT_KEY_SECRET: (&str, &str, &str) = (
    "openshift-kube-apiserver-operator",
    "next-bound-service-account-signing-key",
    "service-account.pub",
);

/// Anonymous HTTPS GETs, as an OIDC relying party makes them.
pub struct Prober {
    http: reqwest::Client,
}

impl Prober {
    /// A client trusting the platform's roots (and `SSL_CERT_FILE`), plus `ca_file` if given.
    pub fn new(ca_file: Option<&Path>) -> anyhow::Result<Prober> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("ccoctl/", env!("CARGO_PKG_VERSION")));
        if let Some(f) = ca_file {
            let pem = std::fs::read(f)
                .with_context(|| format!("cannot read --issuer-ca-file {}", f.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!("--issuer-ca-file {} holds no PEM certificate", f.display())
            })?;
            b = b.tls_certs_merge(certs);
        }
        Ok(Prober {
            http: b.build().context("cannot build the HTTP client")?,
        })
    }

    /// GETs `url` without credentials.
    pub async fn get(&self, url: &str) -> Fetch {
        let outcome = match self.http.get(url).send().await {
            Err(e) => {
                let mut m = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    m = format!("{m}: {s}");
                    src = s.source();
                }
                Err(m)
            }
            Ok(resp) => {
                let status = resp.status();
                let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                if status.is_success() {
                    Ok(body)
                } else {
                    // One line: error bodies (XML from storage services) span several.
                    let text = String::from_utf8_lossy(&body)
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    let text: String = text.chars().take(200).collect();
                    Err(format!("HTTP {status}: {text}"))
                }
            }
        };
        Fetch {
            url: url.to_string(),
            outcome,
        }
    }
}

/// The signing key named by `--public-key-file`, or found in the output directory (the public key,
/// else the one derived from the private key). `None` when there is neither.
pub fn local_signing_key(file: Option<&Path>, dir: &Path) -> anyhow::Result<Option<SigningKey>> {
    let (source, key) = if let Some(f) = file {
        let pem = cco_core::fsutil::read_to_string(f)?;
        (
            format!("--public-key-file {}", f.display()),
            keys::parse_public_key(&pem, &f.display().to_string())?,
        )
    } else if dir.join(PUBLIC_KEY_FILE).exists() {
        let f = dir.join(PUBLIC_KEY_FILE);
        let pem = cco_core::fsutil::read_to_string(&f)?;
        (
            f.display().to_string(),
            keys::parse_public_key(&pem, &f.display().to_string())?,
        )
    } else if dir.join(PRIVATE_KEY_FILE).exists() {
        let f = dir.join(PRIVATE_KEY_FILE);
        let pem = cco_core::fsutil::read_to_string(&f)?;
        (
            f.display().to_string(),
            keys::parse_private_key(&pem, &f.display().to_string())?.to_public_key(),
        )
    } else {
        return Ok(None);
    };
    Ok(Some(SigningKey {
        source,
        kid: keys::key_id(&key)?,
        role: KeyRole::Current,
    }))
}

/// A kube client from a kubeconfig file.
pub async fn kube_client(path: &Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read --kubeconfig {}", path.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .with_context(|| format!("invalid kubeconfig {}", path.display()))?;
    Ok(kube::Client::try_from(cfg)?)
}

/// The cluster, read through `--kubeconfig`.
pub struct Cluster {
    client: kube::Client,
    pub kubeconfig: PathBuf,
}

/// A Secret's data, `None` when it does not exist, or why it could not be read.
pub type SecretRead = Result<Option<BTreeMap<String, Vec<u8>>>, String>;

impl Cluster {
    /// Connects (no call is made until something is read).
    pub async fn connect(kubeconfig: &Path) -> anyhow::Result<Cluster> {
        Ok(Cluster {
            client: kube_client(kubeconfig).await?,
            kubeconfig: kubeconfig.to_path_buf(),
        })
    }

    /// A Secret's data.
    pub async fn secret(&self, namespace: &str, name: &str) -> SecretRead {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(None) => Ok(None),
            Ok(Some(s)) => Ok(Some(
                s.data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect(),
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The cluster's current and next signing keys, and a warning for each that cannot be read.
    pub async fn signing_keys(&self) -> (Vec<SigningKey>, Vec<Check>) {
        let mut keys_out: Vec<SigningKey> = Vec::new();
        let mut checks = Vec::new();
        for ((ns, name, field), role) in [
            (CURRENT_KEY_SECRET, KeyRole::Current),
            (NEXT_KEY_SECRET, KeyRole::Next),
        ] {
            let subject = format!("Secret {ns}/{name}");
            let got = match self.secret(ns, name).await {
                Ok(Some(d)) => d.get(field).cloned(),
                Ok(None) => None,
                Err(e) => {
                    checks.push(Check::warn(
                        "keys.cluster",
                        &subject,
                        format!("cannot read the cluster's signing key: {e}"),
                        None,
                    ));
                    continue;
                }
            };
            let Some(pem) = got else {
                if role == KeyRole::Current {
                    checks.push(Check::warn(
                        "keys.cluster",
                        &subject,
                        format!(
                            "no {field} in the cluster: cannot tell which key signs its tokens"
                        ),
                        None,
                    ));
                }
                continue;
            };
            let parsed = keys::parse_public_key(&String::from_utf8_lossy(&pem), &subject)
                .and_then(|k| keys::key_id(&k));
            match parsed {
                Ok(kid) if keys_out.iter().any(|k| k.kid == kid) => {}
                Ok(kid) => keys_out.push(SigningKey {
                    source: subject,
                    kid,
                    role,
                }),
                Err(e) => checks.push(Check::warn("keys.cluster", &subject, e.to_string(), None)),
            }
        }
        (keys_out, checks)
    }

    /// The Authentication `cluster` check.
    pub async fn authentication(&self, issuer: &str) -> Check {
        let gvk = GroupVersionKind::gvk("config.openshift.io", "v1", "Authentication");
        let ar = ApiResource::from_gvk_with_plural(&gvk, "authentications");
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
        let found = match api.get_opt("cluster").await {
            Ok(Some(o)) => Ok(o.data["spec"]["serviceAccountIssuer"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)),
            Ok(None) => Err("Authentication cluster does not exist".to_string()),
            Err(e) => Err(e.to_string()),
        };
        authentication_check(
            "cluster.authentication",
            "Authentication cluster",
            issuer,
            &found,
            &patch_authentication_fix(issuer),
        )
    }
}

/// The check of `manifests/cluster-authentication-02-config.yaml` in the output directory, if the
/// file is there.
pub fn manifest_authentication(dir: &Path, issuer: &str, fix: &str) -> Option<Check> {
    let path = dir.join(cco_core::oidc::AUTHENTICATION_MANIFEST);
    let text = std::fs::read_to_string(&path).ok()?;
    let found = serde_yaml::from_str::<serde_yaml::Value>(&text)
        .map(|v| {
            v["spec"]["serviceAccountIssuer"]
                .as_str()
                .map(str::to_owned)
        })
        .map_err(|e| format!("not YAML: {e}"));
    Some(authentication_check(
        "manifest.authentication",
        &path.display().to_string(),
        issuer,
        &found,
        fix,
    ))
}

/// Reads a Secret manifest file: its `data` (base64-decoded) and `stringData`, `None` when the
/// file does not exist.
pub fn manifest_secret(path: &Path) -> SecretRead {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let v: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| format!("{} is not YAML: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    use base64::Engine as _;
    if let Some(m) = v["data"].as_mapping() {
        for (k, val) in m {
            if let (Some(k), Some(val)) = (k.as_str(), val.as_str()) {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(val.trim())
                    .map_err(|_| format!("{}: data.{k} is not base64", path.display()))?;
                out.insert(k.to_string(), bytes);
            }
        }
    }
    if let Some(m) = v["stringData"].as_mapping() {
        for (k, val) in m {
            if let (Some(k), Some(val)) = (k.as_str(), val.as_str()) {
                out.insert(k.to_string(), val.as_bytes().to_vec());
            }
        }
    }
    Ok(Some(out))
}
