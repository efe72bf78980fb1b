//! The I/O of `verify` that every cloud shares: anonymous HTTPS GETs of the issuer documents, the
//! signing keys (a public key file, the output dir, or the cluster), and the cluster's
//! Authentication and Secrets. The checks themselves are pure (`cco_core::verify`).
//!
//! The cluster objects read with `--kubeconfig` (seeds/000):
//! - the current signing key: Secret `openshift-kube-apiserver/bound-service-account-signing-key`,
//!   key `service-account.pub`;
//! - the next signing key: Secret `openshift-kube-apiserver-operator/next-bound-service-account-signing-key`,
//!   key `service-account.pub`;
//! - Authentication `cluster` (`config.openshift.io/v1`), `spec.serviceAccountIssuer`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use cco_core::keys;
use cco_core::report::Check;
use cco_core::verify::{
    discovery_checks, discovery_url, jwks_checks, Fetched, SigningKey,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

/// Secret holding the cluster's current service-account signing key.
pub const CURRENT_KEY_SECRET: (&str, &str) = (
    "openshift-kube-apiserver",
    "bound-service-account-signing-key",
);
/// Secret holding the key the cluster will sign with after the next rotation.
pub const NEXT_KEY_SECRET: (&str, &str) = (
    "openshift-kube-apiserver-operator",
    "next-bound-service-account-signing-key",
);
/// The data key of the public half in both Secrets.
pub const PUBLIC_KEY_DATA: &str = "service-account.pub";

/// An HTTPS client that sends no credentials, trusts the system roots plus `ca_pem`, and refuses
/// plain HTTP.
pub fn anonymous_client(ca_pem: Option<&[u8]>) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .https_only(true)
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::limited(3));
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .context("--issuer-ca-file holds no usable PEM certificate")?;
        b = b.tls_certs_merge(certs);
    }
    b.build().context("cannot build the HTTPS client")
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// One anonymous GET.
pub async fn get_anonymously(client: &reqwest::Client, url: &str) -> Fetched {
    match client.get(url).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.bytes().await {
                Ok(body) => Fetched::Response {
                    status,
                    body: body.to_vec(),
                },
                Err(e) => Fetched::Failed(error_chain(&e)),
            }
        }
        Err(e) => Fetched::Failed(error_chain(&e)),
    }
}

/// The issuer checks (discovery document, issuer, jwks_uri, JWKS) and the JWKS when usable.
pub async fn check_issuer(
    client: &reqwest::Client,
    issuer: &str,
    fix: &str,
) -> (Vec<Check>, Option<(String, Value)>) {
    let disc = get_anonymously(client, &discovery_url(issuer)).await;
    let (mut checks, jwks_uri) = discovery_checks(issuer, &disc, fix);
    let Some(jwks_uri) = jwks_uri else {
        return (checks, None);
    };
    let fetched = get_anonymously(client, &jwks_uri).await;
    let (more, jwks) = jwks_checks(&jwks_uri, &fetched, fix);
    checks.extend(more);
    (checks, jwks.map(|j| (jwks_uri, j)))
}

/// The signing key of a PEM public key file, labelled with its path.
pub fn key_from_file(path: &Path) -> anyhow::Result<SigningKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read public key {}", path.display()))?;
    let key = keys::parse_public_key(&pem, &path.display().to_string())?;
    Ok(SigningKey {
        label: path.display().to_string(),
        kid: keys::key_id(&key)?,
    })
}

/// The signing keys named on the command line: `--public-key-file`, else
/// `<output-dir>/serviceaccount-signer.public` when it exists.
pub fn local_signing_keys(
    public_key_file: Option<&Path>,
    output_dir: Option<&Path>,
) -> anyhow::Result<Vec<SigningKey>> {
    let path: Option<PathBuf> = match (public_key_file, output_dir) {
        (Some(p), _) => Some(p.to_path_buf()),
        (None, Some(dir)) => {
            let p = dir.join("serviceaccount-signer.public");
            p.exists().then_some(p)
        }
        (None, None) => None,
    };
    path.map(|p| key_from_file(&p).map(|k| vec![k]))
        .unwrap_or_else(|| Ok(Vec::new()))
}

/// The cluster `verify --kubeconfig` reads.
pub struct Cluster {
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
}

impl Cluster {
    /// Connects with the kubeconfig at `path`.
    pub async fn connect(path: &Path) -> anyhow::Result<Cluster> {
        let kc = kube::config::Kubeconfig::read_from(path)
            .with_context(|| format!("cannot read --kubeconfig {}", path.display()))?;
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("invalid kubeconfig {}", path.display()))?;
        Ok(Cluster {
            client: kube::Client::try_from(cfg)?,
            kubeconfig: path.to_path_buf(),
        })
    }

    /// A Secret, `Ok(None)` when it does not exist.
    pub async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, String> {
        Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| format!("cannot read Secret {namespace}/{name}: {}", error_chain(&e)))
    }

    /// A text value of a Secret's `data` (or `stringData`).
    pub fn secret_value(secret: &Secret, key: &str) -> Option<String> {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| String::from_utf8_lossy(&b.0).to_string())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .cloned()
            })
    }

    /// The current and next signing keys, and a warning for each that cannot be read.
    pub async fn signing_keys(&self) -> (Vec<SigningKey>, Vec<Check>) {
        let mut keys_found = Vec::new();
        let mut checks = Vec::new();
        for (what, (ns, name)) in [("current", CURRENT_KEY_SECRET), ("next", NEXT_KEY_SECRET)] {
            let subject = format!("the cluster's {what} signing key (Secret {ns}/{name})");
            let problem = match self.secret(ns, name).await {
                Err(e) => Some(e),
                Ok(None) => Some("the Secret does not exist".to_string()),
                Ok(Some(s)) => match Self::secret_value(&s, PUBLIC_KEY_DATA) {
                    None => Some(format!("the Secret has no {PUBLIC_KEY_DATA}")),
                    Some(pem) => match keys::parse_public_key(&pem, &subject)
                        .and_then(|k| keys::key_id(&k))
                    {
                        Ok(kid) => {
                            keys_found.push(SigningKey {
                                label: subject.clone(),
                                kid,
                            });
                            None
                        }
                        Err(e) => Some(e.to_string()),
                    },
                },
            };
            if let Some(p) = problem {
                checks.push(Check::warn("keys.source", subject, p, None));
            }
        }
        (keys_found, checks)
    }

    /// Authentication `cluster`'s `spec.serviceAccountIssuer`; `Err` when it cannot be read.
    pub async fn authentication_issuer(&self) -> Result<Option<String>, String> {
        let gvk = GroupVersionKind::gvk("config.openshift.io", "v1", "Authentication");
        let ar = ApiResource::from_gvk_with_plural(&gvk, "authentications");
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
        match api.get_opt("cluster").await {
            Ok(Some(o)) => Ok(o
                .data
                .get("spec")
                .and_then(|s| s.get("serviceAccountIssuer"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)),
            Ok(None) => Err("Authentication cluster does not exist".to_string()),
            Err(e) => Err(format!(
                "cannot read Authentication cluster: {}",
                error_chain(&e)
            )),
        }
    }
}

/// The `oc` command that sets the cluster's service-account issuer.
pub fn patch_authentication_fix(issuer: &str) -> String {
    format!(
        "oc patch authentication.config.openshift.io cluster --type=merge -p '{{\"spec\":{{\"serviceAccountIssuer\":\"{issuer}\"}}}}'"
    )
}

/// Quotes a command-line word for a POSIX shell when it needs it.
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

/// The issuer the installer manifest in `output_dir` names; `Err` when it cannot be read.
pub fn manifest_issuer(output_dir: &Path) -> Result<Option<String>, String> {
    let path = output_dir.join(cco_core::oidc::AUTHENTICATION_MANIFEST);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let v: serde_yaml::Value = serde_yaml::from_str(&text)
        .map_err(|e| format!("{} is not YAML: {e}", path.display()))?;
    Ok(v["spec"]["serviceAccountIssuer"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned))
}
