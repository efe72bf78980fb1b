//! Serving certificate through a CertificateSigningRequest (EKS `--in-cluster`).
//!
//! Like amazon-eks-pod-identity-webhook's certificate manager, the webhook:
//!
//! 1. reads the `kubernetes.io/tls` Secret `--tls-secret` in `--namespace`; a usable pair that is
//!    not past 80 % of its lifetime is served at once;
//! 2. otherwise generates an ECDSA P-256 key and a CSR for `<service>.<namespace>.svc` (DNS names
//!    `<service>`, `<service>.<namespace>`, `<service>.<namespace>.svc`,
//!    `<service>.<namespace>.svc.cluster.local`), creates a `certificates.k8s.io/v1`
//!    CertificateSigningRequest (usages digital signature, key encipherment, server auth) and
//!    waits until it is approved and signed;
//! 3. stores certificate and key in the Secret (created if missing) and serves them;
//! 4. renews the same way at 80 % of the certificate's lifetime.
//!
//! One deviation, forced by the API: the EKS webhook asks for the signer
//! `kubernetes.io/legacy-unknown`, which `certificates.k8s.io/v1` has refused since Kubernetes
//! 1.22 (its in-cluster mode cannot get a certificate on a current cluster). The signer here is
//! `--csr-signer-name`, by default [`DEFAULT_SIGNER`]; whoever runs that signer (an approver and
//! signer such as cert-manager's, or an administrator with `kubectl certificate approve` and a
//! signing tool) issues the certificate. Until then TLS handshakes fail and the API server's
//! `failurePolicy` applies.
//!
//! The private key is only ever in memory and in the Secret; it is never logged.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use kube::Client;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde_json::json;
use tracing::{info, warn};

use crate::metrics::Metrics;

/// Default `signerName` of the CertificateSigningRequest.
pub const DEFAULT_SIGNER: &str = "cco.openshift.io/pod-identity-webhook-serving";
/// How long one CSR is waited for before a new one is made.
const CSR_WAIT: Duration = Duration::from_secs(15 * 60);
/// Share of the lifetime after which the certificate is renewed.
const RENEW_AT: f64 = 0.8;

/// Where the certificate is requested and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrConfig {
    /// Namespace of the Secret and the Service.
    pub namespace: String,
    /// Service fronting the webhook.
    pub service_name: String,
    /// Secret storing the pair.
    pub secret_name: String,
    /// `spec.signerName` of the CSR.
    pub signer_name: String,
}

impl CsrConfig {
    /// Common name of the certificate.
    pub fn common_name(&self) -> String {
        format!("{}.{}.svc", self.service_name, self.namespace)
    }

    /// DNS names of the certificate.
    pub fn dns_names(&self) -> Vec<String> {
        let (s, n) = (&self.service_name, &self.namespace);
        vec![
            s.clone(),
            format!("{s}.{n}"),
            format!("{s}.{n}.svc"),
            format!("{s}.{n}.svc.cluster.local"),
        ]
    }
}

/// Errors getting a certificate.
#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    /// Key or request generation failed.
    #[error("generating the key and certificate request: {0}")]
    Generate(#[from] rcgen::Error),
    /// An API call failed.
    #[error("{action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// The client error.
        source: kube::Error,
    },
    /// The CSR was denied or failed.
    #[error("CertificateSigningRequest {name} was {condition}: {message}")]
    Refused {
        /// CSR name.
        name: String,
        /// `Denied` or `Failed`.
        condition: String,
        /// Its message.
        message: String,
    },
    /// Nobody signed in time.
    #[error("CertificateSigningRequest {0} was not signed within {CSR_WAIT:?}; approve it (kubectl certificate approve) and make sure its signer runs")]
    Timeout(String),
    /// The issued certificate does not match the key or cannot be parsed.
    #[error("the issued certificate is unusable: {0}")]
    Unusable(String),
}

/// A certificate resolver whose certificate is set from outside (by [`run`]).
#[derive(Debug, Default)]
pub struct SharedCert {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl SharedCert {
    /// Serve `key` from now on.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        if let Ok(mut slot) = self.current.write() {
            *slot = Some(key);
        }
    }

    /// Whether a certificate is available.
    pub fn ready(&self) -> bool {
        self.current.read().map(|s| s.is_some()).unwrap_or(false)
    }
}

impl ResolvesServerCert for SharedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().and_then(|s| s.clone())
    }
}

/// A parsed pair and its validity window.
struct Pair {
    key: Arc<CertifiedKey>,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Pair {
    fn renew_at(&self) -> SystemTime {
        let life = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_before + life.mul_f64(RENEW_AT)
    }
}

fn parse_pair(cert_pem: &[u8], key_pem: &[u8], provider: &CryptoProvider) -> Result<Pair, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate PEM: {e}"))?;
    let leaf = chain.first().ok_or("no certificate in PEM")?.clone();
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("key PEM: {e}"))?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| e.to_string())?;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| e.to_string())?;
    let to_time = |t: x509_parser::time::ASN1Time| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0))
    };
    Ok(Pair {
        key: Arc::new(certified),
        not_before: to_time(parsed.validity().not_before),
        not_after: to_time(parsed.validity().not_after),
    })
}

async fn stored_pair(
    secrets: &Api<Secret>,
    cfg: &CsrConfig,
    provider: &CryptoProvider,
) -> Result<Option<Pair>, CsrError> {
    let secret = secrets
        .get_opt(&cfg.secret_name)
        .await
        .map_err(|source| CsrError::Api {
            action: format!("reading Secret {}/{}", cfg.namespace, cfg.secret_name),
            source,
        })?;
    let Some(data) = secret.and_then(|s| s.data) else {
        return Ok(None);
    };
    let (Some(cert), Some(key)) = (data.get("tls.crt"), data.get("tls.key")) else {
        return Ok(None);
    };
    match parse_pair(&cert.0, &key.0, provider) {
        Ok(pair) => Ok(Some(pair)),
        Err(e) => {
            warn!(secret = %cfg.secret_name, error = %e, "stored serving certificate is unusable; requesting a new one");
            Ok(None)
        }
    }
}

async fn request_pair(
    client: &Client,
    cfg: &CsrConfig,
    provider: &CryptoProvider,
) -> Result<(Pair, Vec<u8>, Vec<u8>), CsrError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(cfg.dns_names())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cfg.common_name());
    let request = params.serialize_request(&key)?;
    let request_pem = request.pem()?;

    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let csr: CertificateSigningRequest = serde_json::from_value(json!({
        "metadata": {"generateName": "csr-"},
        "spec": {
            "request": ByteString(request_pem.into_bytes()),
            "signerName": cfg.signer_name,
            "usages": ["digital signature", "key encipherment", "server auth"],
        }
    }))
    .map_err(|e| CsrError::Unusable(e.to_string()))?;
    let created = api
        .create(&PostParams::default(), &csr)
        .await
        .map_err(|source| CsrError::Api {
            action: format!(
                "creating a CertificateSigningRequest for {} (signer {})",
                cfg.common_name(),
                cfg.signer_name
            ),
            source,
        })?;
    let name = created.metadata.name.clone().unwrap_or_default();
    info!(csr = %name, signer = %cfg.signer_name, "CertificateSigningRequest created; waiting for approval and signature");

    let deadline = tokio::time::Instant::now() + CSR_WAIT;
    let mut delay = Duration::from_millis(200);
    loop {
        let current = api.get(&name).await.map_err(|source| CsrError::Api {
            action: format!("reading CertificateSigningRequest {name}"),
            source,
        })?;
        if let Some(status) = current.status {
            for c in status.conditions.iter().flatten() {
                if (c.type_ == "Denied" || c.type_ == "Failed") && c.status == "True" {
                    return Err(CsrError::Refused {
                        name,
                        condition: c.type_.clone(),
                        message: c.message.clone().unwrap_or_default(),
                    });
                }
            }
            if let Some(cert) = status.certificate.filter(|c| !c.0.is_empty()) {
                let key_pem = key.serialize_pem().into_bytes();
                let pair = parse_pair(&cert.0, &key_pem, provider).map_err(CsrError::Unusable)?;
                info!(csr = %name, "certificate issued");
                return Ok((pair, cert.0, key_pem));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CsrError::Timeout(name));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn store_pair(
    secrets: &Api<Secret>,
    cfg: &CsrConfig,
    cert: Vec<u8>,
    key: Vec<u8>,
) -> Result<(), CsrError> {
    let api_err = |action: &str| {
        let action = format!("{action} Secret {}/{}", cfg.namespace, cfg.secret_name);
        move |source| CsrError::Api { action, source }
    };
    let data = std::collections::BTreeMap::from([
        ("tls.crt".to_string(), ByteString(cert)),
        ("tls.key".to_string(), ByteString(key)),
    ]);
    match secrets
        .get_opt(&cfg.secret_name)
        .await
        .map_err(api_err("reading"))?
    {
        Some(mut existing) => {
            existing.data = Some(data);
            existing.string_data = None;
            secrets
                .replace(&cfg.secret_name, &PostParams::default(), &existing)
                .await
                .map_err(api_err("updating"))?;
        }
        None => {
            let secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(cfg.secret_name.clone()),
                    namespace: Some(cfg.namespace.clone()),
                    ..Default::default()
                },
                type_: Some("kubernetes.io/tls".into()),
                data: Some(data),
                ..Default::default()
            };
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .map_err(api_err("creating"))?;
        }
    }
    Ok(())
}

/// Keep `shared` supplied with a certificate for `cfg`, forever.
pub async fn run(client: Client, cfg: CsrConfig, shared: Arc<SharedCert>, metrics: Arc<Metrics>) {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &cfg.namespace);
    let mut retry = Duration::from_secs(1);
    loop {
        let outcome = async {
            if let Some(pair) = stored_pair(&secrets, &cfg, &provider).await? {
                if SystemTime::now() < pair.renew_at() {
                    return Ok(pair);
                }
            }
            let (pair, cert, key) = request_pair(&client, &cfg, &provider).await?;
            store_pair(&secrets, &cfg, cert, key).await?;
            Ok::<_, CsrError>(pair)
        }
        .await;
        match outcome {
            Ok(pair) => {
                shared.set(pair.key.clone());
                metrics.cert_reload("success");
                retry = Duration::from_secs(1);
                let wait = pair
                    .renew_at()
                    .duration_since(SystemTime::now())
                    .unwrap_or_default()
                    .max(Duration::from_secs(1));
                info!(secret = %cfg.secret_name, renew_in = ?wait, "serving certificate from CertificateSigningRequest");
                tokio::time::sleep(wait).await;
            }
            Err(error) => {
                metrics.cert_reload("failure");
                warn!(%error, retry_in = ?retry, "no serving certificate yet");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(60));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_eks_webhook() {
        let c = CsrConfig {
            namespace: "ns".into(),
            service_name: "svc".into(),
            secret_name: "s".into(),
            signer_name: DEFAULT_SIGNER.into(),
        };
        assert_eq!(c.common_name(), "svc.ns.svc");
        assert_eq!(
            c.dns_names(),
            ["svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local"]
        );
    }
}
