//! Serving certificate that follows the files on disk, without a restart.
//!
//! [`ReloadingCertResolver`] implements rustls' `ResolvesServerCert`. On a handshake (at most
//! once per check interval) it `stat`s the certificate and key files; when the modification time,
//! size or inode of either changed — a rewrite in place, or the symlink swap a Secret volume
//! does — it parses both again and, if they form a matching pair, serves the new chain from
//! that handshake on. A half-written rotation (new certificate, old key) or unparsable files
//! keep the previous certificate and are retried at the next check; the failure is logged and
//! counted, never served.
//!
//! Everything runs on the aws-lc-rs crypto provider.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tracing::{info, warn};

use crate::config::TlsVersion;
use crate::metrics::Metrics;

/// Errors loading the serving certificate.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The certificate file holds no usable PEM certificate.
    #[error("{path}: no PEM certificate found ({detail})")]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// Parser detail.
        detail: String,
    },
    /// The key file holds no usable PEM private key.
    #[error("{path}: no PEM private key found ({detail})")]
    NoKey {
        /// The file.
        path: PathBuf,
        /// Parser detail.
        detail: String,
    },
    /// The key is unsupported or does not match the certificate.
    #[error("certificate {cert} and key {key} do not form a usable pair: {source}")]
    Pair {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: m.modified().ok(),
        len: m.len(),
        ino: m.ino(),
    })
}

struct State {
    stamps: (Option<FileStamp>, Option<FileStamp>),
    key: Arc<CertifiedKey>,
    checked: Instant,
}

/// A `ResolvesServerCert` that reloads the certificate and key when their files change.
pub struct ReloadingCertResolver {
    cert_path: PathBuf,
    key_path: PathBuf,
    check_interval: Duration,
    provider: Arc<CryptoProvider>,
    metrics: Option<Arc<Metrics>>,
    state: Mutex<State>,
}

impl fmt::Debug for ReloadingCertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCertResolver")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("check_interval", &self.check_interval)
            .finish()
    }
}

/// Read and parse a certificate chain and key pair with `provider`.
pub fn load_certified_key(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
            detail: "empty".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: key_path.to_path_buf(),
        detail: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Pair {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
        source,
    })
}

impl ReloadingCertResolver {
    /// Load the pair now (failing if it is unusable) and watch the files from then on,
    /// checking at most once per `check_interval`.
    pub fn new(
        cert_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
        check_interval: Duration,
    ) -> Result<Self, TlsError> {
        let cert_path = cert_path.into();
        let key_path = key_path.into();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let stamps = (stamp(&cert_path), stamp(&key_path));
        let key = Arc::new(load_certified_key(&cert_path, &key_path, &provider)?);
        Ok(Self {
            cert_path,
            key_path,
            check_interval,
            provider,
            metrics: None,
            state: Mutex::new(State {
                stamps,
                key,
                checked: Instant::now(),
            }),
        })
    }

    /// Count reloads in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The crypto provider (aws-lc-rs) used for keys and for the server configuration.
    pub fn provider(&self) -> Arc<CryptoProvider> {
        self.provider.clone()
    }

    /// The certificate to serve now, reloading it first if the files changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() < self.check_interval {
            return state.key.clone();
        }
        state.checked = Instant::now();
        let stamps = (stamp(&self.cert_path), stamp(&self.key_path));
        if stamps == state.stamps {
            return state.key.clone();
        }
        match load_certified_key(&self.cert_path, &self.key_path, &self.provider) {
            Ok(key) => {
                info!(cert = %self.cert_path.display(), "serving certificate reloaded");
                state.key = Arc::new(key);
                state.stamps = stamps;
                self.count_reload("success");
            }
            Err(error) => {
                // Keep the stamps unchanged so the next check retries.
                warn!(%error, "serving certificate changed but cannot be loaded; keeping the previous one");
                self.count_reload("failure");
            }
        }
        state.key.clone()
    }

    fn count_reload(&self, result: &'static str) {
        if let Some(m) = &self.metrics {
            m.cert_reload(result);
        }
    }
}

impl ResolvesServerCert for ReloadingCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Go (IANA) and OpenSSL names of the TLS 1.2 suites rustls offers, with their rustls ids.
const TLS12_SUITES: &[(&str, &str, rustls::CipherSuite)] = &[
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// Names Go knows but rustls does not implement (CBC, RSA key exchange, 3DES, RC4), and the
/// TLS 1.3 suites (always on in Go and here): accepted and skipped.
const KNOWN_ELSEWHERE: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "AES128-SHA",
    "AES256-SHA",
    "AES128-SHA256",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "DES-CBC3-SHA",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
];

/// Turn a `--tls-cipher-suites` list into the TLS 1.2 suites to offer. Names rustls does not
/// implement are skipped with a notice; unknown names are an error, as for the EKS webhook.
pub fn cipher_suites_from_names(
    list: &str,
    notices: &mut Vec<String>,
) -> Result<Vec<rustls::CipherSuite>, crate::config::ConfigError> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if let Some((_, _, id)) = TLS12_SUITES
            .iter()
            .find(|(go, openssl, _)| *go == name || *openssl == name)
        {
            if !out.contains(id) {
                out.push(*id);
            }
        } else if KNOWN_ELSEWHERE.contains(&name) {
            notices.push(format!(
                "--tls-cipher-suites: {name} is not offered (TLS 1.3 suites are always on; \
                 CBC, RSA key exchange, 3DES and RC4 are not implemented)"
            ));
        } else {
            return Err(crate::config::ConfigError(format!(
                "--tls-cipher-suites: unsupported cipher suite: {name}"
            )));
        }
    }
    Ok(out)
}

/// A rustls server configuration around `resolver`, offering HTTP/2 and HTTP/1.1; with
/// `tls12_suites`, TLS 1.2 is limited to those suites (TLS 1.3 suites stay on, as in Go).
pub fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
    min_version: TlsVersion,
    tls12_suites: Option<&[rustls::CipherSuite]>,
) -> Result<rustls::ServerConfig, TlsError> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(allowed) = tls12_suites {
        provider.cipher_suites.retain(|s| match s {
            rustls::SupportedCipherSuite::Tls12(_) => allowed.contains(&s.suite()),
            rustls::SupportedCipherSuite::Tls13(_) => true,
        });
    }
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Write `contents` and give the file a distinct modification time (`generation`), so the
    /// test does not depend on the file system's timestamp granularity.
    pub(crate) fn put(path: &Path, contents: impl AsRef<[u8]>, generation: u64) {
        std::fs::write(path, contents).expect("write");
        let f = std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open");
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + generation))
            .expect("set mtime");
    }

    /// Write a self-signed pair named `cn` into `dir`; returns the certificate's DER.
    pub(crate) fn write_pair(dir: &Path, cn: &str, generation: u64) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.self_signed(&key).expect("cert");
        put(&dir.join("tls.crt"), cert.pem(), generation);
        put(&dir.join("tls.key"), key.serialize_pem(), generation);
        cert.der().to_vec()
    }

    #[test]
    fn rewritten_files_are_served_without_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = write_pair(dir.path(), "first", 1);
        let r = ReloadingCertResolver::new(
            dir.path().join("tls.crt"),
            dir.path().join("tls.key"),
            Duration::ZERO,
        )
        .expect("loads");
        assert_eq!(r.current().cert[0].as_ref(), first.as_slice());
        let second = write_pair(dir.path(), "second", 2);
        assert_eq!(r.current().cert[0].as_ref(), second.as_slice());
    }

    #[test]
    fn broken_or_mismatched_rotation_keeps_the_previous_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = write_pair(dir.path(), "first", 1);
        let r = ReloadingCertResolver::new(
            dir.path().join("tls.crt"),
            dir.path().join("tls.key"),
            Duration::ZERO,
        )
        .expect("loads");
        // New key written, certificate not yet: mismatched pair.
        let other = rcgen::KeyPair::generate().expect("key");
        put(&dir.path().join("tls.key"), other.serialize_pem(), 2);
        assert_eq!(r.current().cert[0].as_ref(), first.as_slice());
        put(&dir.path().join("tls.crt"), "garbage", 3);
        assert_eq!(r.current().cert[0].as_ref(), first.as_slice());
        // Rotation completes: picked up.
        let second = write_pair(dir.path(), "second", 4);
        assert_eq!(r.current().cert[0].as_ref(), second.as_slice());
    }

    #[test]
    fn cipher_suite_names_map_to_tls12_suites() {
        let mut notices = vec![];
        let suites = cipher_suites_from_names(
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ECDHE-ECDSA-AES256-GCM-SHA384,TLS_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_CBC_SHA",
            &mut notices,
        )
        .expect("known names");
        assert_eq!(
            suites,
            [
                rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            ]
        );
        assert_eq!(notices.len(), 2);
        assert!(cipher_suites_from_names("TLS_BOGUS", &mut notices).is_err());
    }

    #[test]
    fn unusable_files_fail_at_startup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = ReloadingCertResolver::new(
            dir.path().join("missing.crt"),
            dir.path().join("missing.key"),
            Duration::ZERO,
        )
        .expect_err("missing files");
        assert!(err.to_string().contains("missing.crt"));
    }
}
