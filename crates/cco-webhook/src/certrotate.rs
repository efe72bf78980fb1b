//! Self-managed serving certificate, as azure-workload-identity's webhook does by default
//! (`--disable-cert-rotation=false`, open-policy-agent/cert-controller's rotator):
//!
//! 1. the Secret [`SECRET_NAME`] in `$POD_NAMESPACE` (default [`DEFAULT_NAMESPACE`]) must exist
//!    (the reference's chart creates it empty); it holds `ca.crt`, `ca.key`, `tls.crt`, `tls.key`;
//! 2. a CA that is missing, unparsable, or not valid 90 days from now is replaced by a new
//!    self-signed one (RSA 2048, `CN=azure-workload-identity-ca`, `O=azure-workload-identity`,
//!    10 years), and the serving certificate with it;
//! 3. a serving certificate that does not chain to the CA, does not name
//!    `azure-wi-webhook-webhook-service.<namespace>.svc`, is not for server auth, does not match
//!    its key, or is not valid 90 days from now is replaced (RSA 2048, 1 year, signed by the CA);
//! 4. the CA certificate is written into `clientConfig.caBundle` of every webhook of the
//!    MutatingWebhookConfiguration [`WEBHOOK_CONFIG_NAME`];
//! 5. this is done at startup (failing the start when the Secret cannot be read, as the
//!    reference), on every change of the Secret or the configuration (an edited or stripped
//!    `caBundle` is put back), and every 12 hours.
//!
//! Keys are written PKCS#1 (`RSA PRIVATE KEY`) as the reference writes them, so either program
//! can take over the other's Secret. One deviation: the reference serves the files the kubelet
//! projects from the Secret into `--webhook-cert-dir` (up to a minute later); here the pair is
//! served straight from the Secret as soon as it is written. Readiness (`/readyz`) waits for the
//! certificate and the first CA injection, as the reference's.
//!
//! Private keys are only ever in memory and in the Secret; they are never logged.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, RsaKeySize, PKCS_RSA_SHA256,
};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use tracing::{info, warn};

use crate::csr::SharedCert;
use crate::metrics::Metrics;

/// Secret holding the CA and the serving pair.
pub const SECRET_NAME: &str = "azure-wi-webhook-server-cert";
/// Service fronting the webhook (its DNS name is the certificate's).
pub const SERVICE_NAME: &str = "azure-wi-webhook-webhook-service";
/// MutatingWebhookConfiguration receiving the CA bundle.
pub const WEBHOOK_CONFIG_NAME: &str = "azure-wi-webhook-mutating-webhook-configuration";
/// Namespace without `POD_NAMESPACE`.
pub const DEFAULT_NAMESPACE: &str = "azure-workload-identity-system";
/// Common and DNS name of the CA.
pub const CA_NAME: &str = "azure-workload-identity-ca";
/// Organization of the CA.
pub const CA_ORGANIZATION: &str = "azure-workload-identity";

const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const SERVER_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// A certificate expiring within this is replaced.
const LOOKAHEAD: Duration = Duration::from_secs(90 * 24 * 3600);
/// Periodic check besides the watch events.
const CHECK_EVERY: Duration = Duration::from_secs(12 * 3600);
/// Certificates start this much in the past (clock skew).
const BACKDATE: Duration = Duration::from_secs(3600);

/// Where the pair is kept and whose CA bundle is maintained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatorConfig {
    /// Namespace of the Secret.
    pub namespace: String,
    /// The Secret.
    pub secret_name: String,
    /// The MutatingWebhookConfiguration.
    pub webhook_config_name: String,
    /// DNS name (and CN) of the serving certificate.
    pub dns_name: String,
}

impl RotatorConfig {
    /// azure-workload-identity's names in `namespace`.
    pub fn azure(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            secret_name: SECRET_NAME.into(),
            webhook_config_name: WEBHOOK_CONFIG_NAME.into(),
            dns_name: format!("{SERVICE_NAME}.{namespace}.svc"),
        }
    }
}

/// Why the certificate could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The Secret does not exist.
    #[error("Secret {namespace}/{name} does not exist; create it (it may be empty, as the azure-workload-identity chart does) or run with --disable-cert-rotation=true and certificates in --webhook-cert-dir")]
    SecretMissing {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// An API call failed.
    #[error("{action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// The client error.
        source: kube::Error,
    },
    /// Generating keys or certificates failed.
    #[error("generating the certificate: {0}")]
    Generate(String),
}

/// What the Secret needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Both are valid.
    Nothing,
    /// A new serving certificate from the existing CA.
    Server,
    /// A new CA and a new serving certificate.
    CaAndServer,
}

fn asn1(t: SystemTime) -> Option<x509_parser::time::ASN1Time> {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    x509_parser::time::ASN1Time::from_timestamp(i64::try_from(secs).ok()?).ok()
}

fn first_cert(pem: &[u8]) -> Option<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem).next()?.ok()
}

fn certified(cert_pem: &[u8], key_pem: &[u8], provider: &CryptoProvider) -> Option<CertifiedKey> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).ok()?;
    CertifiedKey::from_der(chain, key, provider).ok()
}

/// The CA is usable at `at`: parses, is a CA named [`CA_NAME`], matches its key.
fn valid_ca(cert: &[u8], key: &[u8], at: SystemTime, provider: &CryptoProvider) -> bool {
    let (Some(der), Some(at)) = (first_cert(cert), asn1(at)) else {
        return false;
    };
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return false;
    };
    let is_ca = parsed
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|b| b.value.ca);
    let named = parsed
        .subject_alternative_name()
        .ok()
        .flatten()
        .is_some_and(|san| {
            san.value.general_names.iter().any(
                |n| matches!(n, x509_parser::extensions::GeneralName::DNSName(d) if *d == CA_NAME),
            )
        });
    is_ca && named && parsed.validity().is_valid_at(at) && certified(cert, key, provider).is_some()
}

/// The serving pair is usable at `at`: chains to `ca`, names `dns_name`, is for server auth,
/// matches its key.
fn valid_server(
    ca: &[u8],
    cert: &[u8],
    key: &[u8],
    dns_name: &str,
    at: SystemTime,
    provider: &Arc<CryptoProvider>,
) -> bool {
    let (Some(ca), Some(leaf)) = (first_cert(ca), first_cert(cert)) else {
        return false;
    };
    if certified(cert, key, provider).is_none() {
        return false;
    }
    let mut roots = rustls::RootCertStore::empty();
    if roots.add(ca).is_err() {
        return false;
    }
    let Ok(verifier) = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build() else {
        return false;
    };
    let (Ok(name), Ok(since)) = (
        ServerName::try_from(dns_name.to_string()),
        at.duration_since(SystemTime::UNIX_EPOCH),
    ) else {
        return false;
    };
    verifier
        .verify_server_cert(&leaf, &[], &name, &[], UnixTime::since_unix_epoch(since))
        .is_ok()
}

/// What `data` (the Secret's) needs at `now`.
pub fn needed(
    data: &BTreeMap<String, ByteString>,
    dns_name: &str,
    now: SystemTime,
    provider: &Arc<CryptoProvider>,
) -> Refresh {
    let get = |k: &str| data.get(k).map(|v| v.0.as_slice()).unwrap_or_default();
    let at = now + LOOKAHEAD;
    if !valid_ca(get("ca.crt"), get("ca.key"), at, provider) {
        return Refresh::CaAndServer;
    }
    if !valid_server(
        get("ca.crt"),
        get("tls.crt"),
        get("tls.key"),
        dns_name,
        at,
        provider,
    ) {
        return Refresh::Server;
    }
    Refresh::Nothing
}

/// A new RSA 2048 key and its PKCS#1 PEM.
fn rsa_key() -> Result<(KeyPair, String), RotateError> {
    let gen = |e: String| RotateError::Generate(e);
    let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)
        .map_err(|e| gen(e.to_string()))?;
    let pkcs1 = rsa::RsaPrivateKey::from_pkcs8_der(&key.serialize_der())
        .map_err(|e| gen(e.to_string()))?
        .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|e| gen(e.to_string()))?;
    Ok((key, pkcs1.to_string()))
}

fn window(
    params: &mut CertificateParams,
    now: SystemTime,
    validity: Duration,
) -> Result<(), RotateError> {
    let (Some(begin), Some(end)) = (asn1(now - BACKDATE), asn1(now + validity)) else {
        return Err(RotateError::Generate("the clock is out of range".into()));
    };
    params.not_before = begin.to_datetime();
    params.not_after = end.to_datetime();
    Ok(())
}

/// `data` with the keys `refresh` asks for replaced (other keys kept).
pub fn refreshed(
    mut data: BTreeMap<String, ByteString>,
    refresh: Refresh,
    dns_name: &str,
    now: SystemTime,
) -> Result<BTreeMap<String, ByteString>, RotateError> {
    let gen = |e: rcgen::Error| RotateError::Generate(e.to_string());
    if refresh == Refresh::Nothing {
        return Ok(data);
    }
    if refresh == Refresh::CaAndServer {
        let mut params = CertificateParams::new(vec![CA_NAME.to_string()]).map_err(gen)?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, CA_NAME);
        params
            .distinguished_name
            .push(DnType::OrganizationName, CA_ORGANIZATION);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyCertSign,
        ];
        window(&mut params, now, CA_VALIDITY)?;
        let (key, key_pem) = rsa_key()?;
        let cert = params.self_signed(&key).map_err(gen)?;
        data.insert("ca.crt".into(), ByteString(cert.pem().into_bytes()));
        data.insert("ca.key".into(), ByteString(key_pem.into_bytes()));
    }
    let ca_pem = String::from_utf8_lossy(
        data.get("ca.crt")
            .map(|v| v.0.as_slice())
            .unwrap_or_default(),
    )
    .into_owned();
    let ca_key = KeyPair::from_pem(&String::from_utf8_lossy(
        data.get("ca.key")
            .map(|v| v.0.as_slice())
            .unwrap_or_default(),
    ))
    .map_err(gen)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(gen)?;
    let mut params = CertificateParams::new(vec![dns_name.to_string()]).map_err(gen)?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, dns_name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.is_ca = IsCa::ExplicitNoCa;
    window(&mut params, now, SERVER_VALIDITY)?;
    let (key, key_pem) = rsa_key()?;
    let cert = params.signed_by(&key, &issuer).map_err(gen)?;
    data.insert("tls.crt".into(), ByteString(cert.pem().into_bytes()));
    data.insert("tls.key".into(), ByteString(key_pem.into_bytes()));
    Ok(data)
}

/// A change worth a reconcile: an object written or deleted, or a (re)list complete.
fn relevant<K>(event: &watcher::Event<K>) -> bool {
    matches!(
        event,
        watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone
    )
}

/// Runs the rotation for one [`RotatorConfig`].
pub struct Rotator {
    client: Client,
    cfg: RotatorConfig,
    shared: Arc<SharedCert>,
    injected: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    provider: Arc<CryptoProvider>,
}

impl Rotator {
    /// A rotator serving through `shared`.
    pub fn new(
        client: Client,
        cfg: RotatorConfig,
        shared: Arc<SharedCert>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            client,
            cfg,
            shared,
            injected: Arc::new(AtomicBool::new(false)),
            metrics,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        }
    }

    /// Certificate served and CA bundle injected at least once (readiness).
    pub fn ready(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let (shared, injected) = (self.shared.clone(), self.injected.clone());
        move || shared.ready() && injected.load(Ordering::Acquire)
    }

    fn api_err(&self, action: &str) -> impl FnOnce(kube::Error) -> RotateError {
        let action = format!(
            "{action} Secret {}/{}",
            self.cfg.namespace, self.cfg.secret_name
        );
        move |source| RotateError::Api { action, source }
    }

    /// Make the Secret valid, serve it, inject the CA bundle.
    pub async fn reconcile(&self) -> Result<(), RotateError> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
        let mut attempts = 0;
        let secret = loop {
            let Some(mut secret) = secrets
                .get_opt(&self.cfg.secret_name)
                .await
                .map_err(self.api_err("reading"))?
            else {
                return Err(RotateError::SecretMissing {
                    namespace: self.cfg.namespace.clone(),
                    name: self.cfg.secret_name.clone(),
                });
            };
            let data = secret.data.take().unwrap_or_default();
            let refresh = needed(&data, &self.cfg.dns_name, SystemTime::now(), &self.provider);
            if refresh == Refresh::Nothing {
                secret.data = Some(data);
                break secret;
            }
            info!(
                secret = %self.cfg.secret_name,
                what = if refresh == Refresh::CaAndServer { "CA and serving certificate" } else { "serving certificate" },
                "refreshing certificates"
            );
            secret.data = Some(refreshed(
                data,
                refresh,
                &self.cfg.dns_name,
                SystemTime::now(),
            )?);
            match secrets
                .replace(&self.cfg.secret_name, &PostParams::default(), &secret)
                .await
            {
                Ok(written) => break written,
                // Someone else wrote in between: look again.
                Err(kube::Error::Api(e)) if e.code == 409 && attempts < 5 => attempts += 1,
                Err(e) => return Err(self.api_err("updating")(e)),
            }
        };
        let data = secret.data.unwrap_or_default();
        let get = |k: &str| data.get(k).map(|v| v.0.clone()).unwrap_or_default();
        match certified(&get("tls.crt"), &get("tls.key"), &self.provider) {
            Some(key) => self.shared.set(Arc::new(key)),
            None => {
                return Err(RotateError::Generate(
                    "the stored serving certificate does not load".into(),
                ))
            }
        }
        self.inject(&get("ca.crt")).await
    }

    /// Put `ca_pem` into every webhook's `clientConfig.caBundle`; a missing configuration is
    /// logged, as the reference does.
    async fn inject(&self, ca_pem: &[u8]) -> Result<(), RotateError> {
        let name = &self.cfg.webhook_config_name;
        let api: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
        let err = |action: &str| {
            let action = format!("{action} MutatingWebhookConfiguration {name}");
            move |source| RotateError::Api { action, source }
        };
        for _ in 0..5 {
            let Some(mut mwc) = api.get_opt(name).await.map_err(err("reading"))? else {
                warn!(configuration = %name, "MutatingWebhookConfiguration not found; cannot inject the CA bundle");
                return Ok(());
            };
            if mwc.metadata.deletion_timestamp.is_some() {
                return Ok(());
            }
            let mut changed = false;
            for hook in mwc.webhooks.iter_mut().flatten() {
                if hook
                    .client_config
                    .ca_bundle
                    .as_ref()
                    .map(|b| b.0.as_slice())
                    != Some(ca_pem)
                {
                    hook.client_config.ca_bundle = Some(ByteString(ca_pem.to_vec()));
                    changed = true;
                }
            }
            if changed {
                match api.replace(name, &PostParams::default(), &mwc).await {
                    Ok(_) => info!(configuration = %name, "CA bundle injected"),
                    Err(kube::Error::Api(e)) if e.code == 409 => continue,
                    Err(e) => return Err(err("updating")(e)),
                }
            }
            self.injected.store(true, Ordering::Release);
            return Ok(());
        }
        Err(RotateError::Generate(format!(
            "MutatingWebhookConfiguration {name} kept changing while the CA bundle was injected"
        )))
    }

    /// The first reconcile, retried for about 3 s (the reference gives up after about 10 s).
    pub async fn bootstrap(&self) -> Result<(), RotateError> {
        let mut delay = Duration::from_millis(100);
        let mut last = None;
        for _ in 0..5 {
            match self.reconcile().await {
                Ok(()) => {
                    self.metrics.cert_reload("success");
                    return Ok(());
                }
                Err(e) => {
                    self.metrics.cert_reload("failure");
                    warn!(error = %e, retry_in = ?delay, "could not set up the serving certificate");
                    last = Some(e);
                }
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        Err(last.unwrap_or_else(|| RotateError::Generate("no attempt".into())))
    }

    /// Reconcile on every change of the Secret or the configuration and every 12 hours, forever.
    pub async fn run(self) {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
        let configs: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
        let by_name = |n: &str| watcher::Config::default().fields(&format!("metadata.name={n}"));
        let secret_events = watcher(secrets, by_name(&self.cfg.secret_name))
            .default_backoff()
            .map(|e| e.map(|e| relevant(&e)).map_err(|e| e.to_string()));
        let config_events = watcher(configs, by_name(&self.cfg.webhook_config_name))
            .default_backoff()
            .map(|e| e.map(|e| relevant(&e)).map_err(|e| e.to_string()));
        let mut events = std::pin::pin!(futures::stream::select(secret_events, config_events));
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + CHECK_EVERY, CHECK_EVERY);
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(true)) => {}
                    Some(Ok(false)) => continue,
                    Some(Err(error)) => {
                        warn!(%error, "certificate rotation watch failed; retrying");
                        continue;
                    }
                    None => return,
                },
                _ = ticks.tick() => {}
            }
            match self.reconcile().await {
                Ok(()) => {}
                Err(error) => {
                    self.metrics.cert_reload("failure");
                    warn!(%error, "certificate rotation failed; retrying on the next change");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    #[test]
    fn empty_data_needs_everything_and_the_result_is_valid() {
        let dns = "azure-wi-webhook-webhook-service.ns.svc";
        let now = SystemTime::now();
        let p = provider();
        assert_eq!(needed(&BTreeMap::new(), dns, now, &p), Refresh::CaAndServer);
        let data = refreshed(BTreeMap::new(), Refresh::CaAndServer, dns, now).expect("generates");
        assert_eq!(needed(&data, dns, now, &p), Refresh::Nothing);
        // Keys are PKCS#1, as cert-controller writes and reads them.
        for k in ["ca.key", "tls.key"] {
            assert!(
                String::from_utf8_lossy(&data[k].0).starts_with("-----BEGIN RSA PRIVATE KEY-----")
            );
        }
        // Another service name, or a date past the lookahead: the server certificate is renewed
        // from the same CA.
        assert_eq!(needed(&data, "other.ns.svc", now, &p), Refresh::Server);
        let late = now + SERVER_VALIDITY - LOOKAHEAD + Duration::from_secs(3600);
        assert_eq!(needed(&data, dns, late, &p), Refresh::Server);
        let renewed = refreshed(data.clone(), Refresh::Server, dns, late).expect("renews");
        assert_eq!(renewed["ca.crt"], data["ca.crt"]);
        assert_ne!(renewed["tls.crt"], data["tls.crt"]);
        assert_eq!(needed(&renewed, dns, late, &p), Refresh::Nothing);
        // A key that does not match the certificate.
        let mut mixed = data.clone();
        mixed.insert("tls.key".into(), renewed["tls.key"].clone());
        assert_eq!(needed(&mixed, dns, now, &p), Refresh::Server);
        // A CA near its end replaces both.
        let ca_end = now + CA_VALIDITY - LOOKAHEAD + Duration::from_secs(3600);
        assert_eq!(needed(&data, dns, ca_end, &p), Refresh::CaAndServer);
    }
}
