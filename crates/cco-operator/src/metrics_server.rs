//! The metrics endpoint as the reference serves it (controller-runtime's secure metrics server).
//!
//! - HTTPS only, on `:8443` by default; HTTP/1.1 and HTTP/2.
//! - The serving certificate is `tls.crt`/`tls.key` in a directory (`/etc/tls/private`, where the
//!   Deployment mounts the Secret `cloud-credential-operator-serving-cert` the service CA writes for
//!   the `cco-metrics` Service), reloaded when the files change; [`ServingCert::SelfSigned`] makes
//!   one in memory for tests and clusters without a service CA.
//! - The TLS version and TLS 1.2 ciphers follow the APIServer `cluster` TLS profile (read at start,
//!   then watched; the reference restarts itself on a change), unless fixed by
//!   `--tls-min-version`/`--tls-cipher-suites`.
//! - `GET /metrics` requires a bearer token that the API server authenticates (TokenReview) and
//!   authorizes for `get` on the non-resource URL `/metrics` (SubjectAccessReview), as
//!   controller-runtime's `WithAuthenticationAndAuthorization` filter does: 401 without a valid
//!   token, 403 when the user may not read it. Decisions are cached per token (hashed) for a minute
//!   when allowed, 30 s when refused. `/healthz` and `/readyz` answer without a token (probes).

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use kube::Client;
use rustls::server::ResolvesServerCert;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::clusterconfig::APIServer;
use crate::metrics::Metrics;
use crate::podidentity::tls::{webhook_tls_args, TlsArgs};

/// Where the Deployment mounts the serving certificate Secret.
pub const DEFAULT_CERT_DIR: &str = "/etc/tls/private";
/// The Service (and so the certificate's DNS name) the reference's ServiceMonitor scrapes.
pub const SERVICE_DNS_NAME: &str = "cco-metrics.openshift-cloud-credential-operator.svc";

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const CERT_CHECK_INTERVAL: Duration = Duration::from_secs(10);
const ALLOW_TTL: Duration = Duration::from_secs(60);
const DENY_TTL: Duration = Duration::from_secs(30);
const CACHE_LIMIT: usize = 1024;

/// Where the serving certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServingCert {
    /// `tls.crt` and `tls.key` in this directory, followed when they change.
    Dir(PathBuf),
    /// A self-signed certificate made at start (tests; clusters without a service CA).
    SelfSigned,
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsServerError {
    #[error("metrics serving certificate: {0}; mount the serving-cert Secret there or pass --metrics-cert-dir=\"\" for a self-signed certificate")]
    Cert(#[from] cco_webhook::tls::TlsError),
    #[error("metrics serving certificate: generating a self-signed one: {0}")]
    Generate(String),
    #[error("metrics TLS settings: {0}")]
    Settings(String),
    #[error("metrics endpoint {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

fn self_signed() -> Result<Arc<dyn ResolvesServerCert>, MetricsServerError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let gen = |e: rcgen::Error| MetricsServerError::Generate(e.to_string());
    let key = rcgen::KeyPair::generate().map_err(gen)?;
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), SERVICE_DNS_NAME.to_string()])
            .map_err(gen)?;
    let cert = params.self_signed(&key).map_err(gen)?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let ck = rustls::sign::CertifiedKey::from_der(
        vec![CertificateDer::from(cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        &provider,
    )
    .map_err(|e| MetricsServerError::Generate(e.to_string()))?;
    Ok(Arc::new(rustls::sign::SingleCertAndKey::from(ck)))
}

fn resolver(cert: &ServingCert) -> Result<Arc<dyn ResolvesServerCert>, MetricsServerError> {
    match cert {
        // As controller-runtime's metrics server: without both files at start (the bootstrap
        // static pod mounts none), a self-signed certificate.
        ServingCert::Dir(dir)
            if !(dir.join("tls.crt").exists() && dir.join("tls.key").exists()) =>
        {
            tracing::warn!(
                dir = %dir.display(),
                "no tls.crt/tls.key for the metrics endpoint; serving a self-signed certificate"
            );
            self_signed()
        }
        ServingCert::Dir(dir) => Ok(Arc::new(cco_webhook::tls::ReloadingCertResolver::new(
            dir.join("tls.crt"),
            dir.join("tls.key"),
            CERT_CHECK_INTERVAL,
        )?)),
        ServingCert::SelfSigned => self_signed(),
    }
}

/// A rustls configuration for `tls`: TLS 1.3 only for `VersionTLS13`, else TLS 1.2 and 1.3
/// (1.0/1.1 are not offered); with ciphers, TLS 1.2 is limited to those rustls implements.
pub fn rustls_config(
    resolver: Arc<dyn ResolvesServerCert>,
    tls: &TlsArgs,
) -> Result<rustls::ServerConfig, MetricsServerError> {
    use cco_webhook::config::TlsVersion;
    let min = match tls.min_version.as_deref() {
        Some("VersionTLS13") => TlsVersion::Tls13,
        Some("VersionTLS10" | "VersionTLS11" | "VersionTLS12") | None => TlsVersion::Tls12,
        Some(other) => {
            return Err(MetricsServerError::Settings(format!(
                "--tls-min-version={other}: use VersionTLS10, VersionTLS11, VersionTLS12 or VersionTLS13"
            )))
        }
    };
    let suites = if tls.ciphers.is_empty() {
        None
    } else {
        let mut notices = Vec::new();
        let s = cco_webhook::tls::cipher_suites_from_names(&tls.ciphers.join(","), &mut notices)
            .map_err(|e| MetricsServerError::Settings(e.to_string()))?;
        for n in notices {
            debug!(notice = %n, "metrics TLS");
        }
        Some(s)
    };
    Ok(cco_webhook::tls::server_config(
        resolver,
        min,
        suites.as_deref(),
    )?)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Decision {
    Allowed,
    Unauthenticated,
    Forbidden(String),
}

/// TokenReview + SubjectAccessReview for a bearer token, with a small cache.
struct Authorizer {
    client: Client,
    cache: Mutex<HashMap<[u8; 32], (Decision, Instant)>>,
}

impl Authorizer {
    fn key(token: &str, path: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(token.as_bytes());
        h.update([0]);
        h.update(path.as_bytes());
        h.finalize().into()
    }

    async fn decide(&self, token: Option<&str>, path: &str) -> Result<Decision, kube::Error> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(Decision::Unauthenticated);
        };
        let key = Self::key(token, path);
        if let Some((d, at)) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            let ttl = if *d == Decision::Allowed {
                ALLOW_TTL
            } else {
                DENY_TTL
            };
            if at.elapsed() < ttl {
                return Ok(d.clone());
            }
        }
        let d = self.review(token, path).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.retain(|_, (_, at)| at.elapsed() < ALLOW_TTL);
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
        }
        cache.insert(key, (d.clone(), Instant::now()));
        Ok(d)
    }

    async fn review(&self, token: &str, path: &str) -> Result<Decision, kube::Error> {
        let tr = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        let tr = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &tr)
            .await?;
        let status = tr.status.unwrap_or_default();
        let Some(user) = status.user.filter(|_| status.authenticated == Some(true)) else {
            return Ok(Decision::Unauthenticated);
        };
        let username = user.username.clone().unwrap_or_default();
        let sar = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(path.to_string()),
                    verb: Some("get".to_string()),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let out = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &sar)
            .await?;
        Ok(if out.status.is_some_and(|s| s.allowed) {
            Decision::Allowed
        } else {
            Decision::Forbidden(username)
        })
    }
}

/// The running endpoint's state.
pub struct MetricsServer {
    resolver: Arc<dyn ResolvesServerCert>,
    tls: Mutex<TlsArgs>,
    acceptor: RwLock<TlsAcceptor>,
    auth: Authorizer,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

type Body = Full<Bytes>;

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn bearer(req: &Request<Incoming>) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl MetricsServer {
    /// Loads the certificate and builds the TLS configuration; authorizes through `client`.
    pub fn new(
        cert: &ServingCert,
        tls: &TlsArgs,
        client: Client,
        metrics: Arc<Metrics>,
    ) -> Result<MetricsServer, MetricsServerError> {
        let resolver = resolver(cert)?;
        let config = rustls_config(resolver.clone(), tls)?;
        Ok(MetricsServer {
            resolver,
            tls: Mutex::new(tls.clone()),
            acceptor: RwLock::new(TlsAcceptor::from(Arc::new(config))),
            auth: Authorizer {
                client,
                cache: Mutex::new(HashMap::new()),
            },
            metrics,
        })
    }

    /// Switches to `tls` for new connections; false when it was already in force.
    pub fn set_tls(&self, tls: &TlsArgs) -> Result<bool, MetricsServerError> {
        let mut current = self.tls.lock().unwrap_or_else(|e| e.into_inner());
        if *current == *tls {
            return Ok(false);
        }
        let config = rustls_config(self.resolver.clone(), tls)?;
        *self.acceptor.write().unwrap_or_else(|e| e.into_inner()) =
            TlsAcceptor::from(Arc::new(config));
        *current = tls.clone();
        Ok(true)
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path();
        match path {
            "/healthz" | "/readyz" => return text(StatusCode::OK, "ok\n"),
            "/metrics" => {}
            _ => return text(StatusCode::NOT_FOUND, "not found\n"),
        }
        if req.method() != Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        match self.auth.decide(bearer(&req), path).await {
            Ok(Decision::Allowed) => {
                let mut r = Response::new(Full::new(Bytes::from(self.metrics.encode())));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                r
            }
            Ok(Decision::Unauthenticated) => text(StatusCode::UNAUTHORIZED, "Unauthorized\n"),
            Ok(Decision::Forbidden(user)) => text(
                StatusCode::FORBIDDEN,
                &format!("Forbidden (user={user}, verb=get, path={path})\n"),
            ),
            Err(error) => {
                warn!(%error, "metrics: token or access review failed");
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error: authorization unavailable\n",
                )
            }
        }
    }

    /// Serves `listener` until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let tcp = tokio::select! {
                _ = &mut shutdown => return,
                r = listener.accept() => match r {
                    Ok((tcp, _)) => tcp,
                    Err(error) => {
                        warn!(%error, "metrics accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let acceptor = self
                .acceptor
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let me = self.clone();
            tokio::spawn(async move {
                let tls =
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(error)) => {
                            debug!(%error, "metrics TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                let svc = service_fn(move |req| {
                    let me = me.clone();
                    async move { Ok::<_, Infallible>(me.handle(req).await) }
                });
                if let Err(error) = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await
                {
                    debug!(%error, "metrics connection ended");
                }
            });
        }
    }

    /// Follows the APIServer `cluster` TLS profile until `shutdown` resolves.
    async fn follow_profile(
        self: Arc<Self>,
        client: Client,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let api: Api<APIServer> = Api::all(client);
        let cfg = watcher::Config::default().fields("metadata.name=cluster");
        let events = watcher::watcher(api, cfg);
        let run = events.for_each(|ev| {
            let next = match ev {
                Ok(watcher::Event::Apply(a) | watcher::Event::InitApply(a)) => {
                    Some(webhook_tls_args(Some(&a)))
                }
                Ok(watcher::Event::Delete(_)) => Some(webhook_tls_args(None)),
                Ok(_) => None,
                Err(error) => {
                    debug!(%error, "metrics: APIServer watch");
                    None
                }
            };
            if let Some(tls) = next {
                match self.set_tls(&tls) {
                    Ok(true) => info!(min_version = ?tls.min_version, ciphers = tls.ciphers.len(),
                        "metrics endpoint follows the new APIServer TLS profile"),
                    Ok(false) => {}
                    Err(error) => warn!(%error, "metrics: TLS profile not applied"),
                }
            }
            futures::future::ready(())
        });
        tokio::select! {
            _ = run => {}
            _ = shutdown => {}
        }
    }
}

/// Starts the endpoint on `addr`: the certificate from `cert`, the TLS settings `fixed` or else the
/// APIServer profile (read now, then followed), authorization through `client`. Returns the bound
/// address; the server and the profile watch run until `shutdown` resolves.
pub async fn start(
    client: Client,
    addr: std::net::SocketAddr,
    cert: &ServingCert,
    fixed: Option<TlsArgs>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + Clone + 'static,
) -> Result<std::net::SocketAddr, MetricsServerError> {
    let tls = match &fixed {
        Some(t) => t.clone(),
        None => {
            let api: Api<APIServer> = Api::all(client.clone());
            match tokio::time::timeout(Duration::from_secs(5), api.get_opt("cluster")).await {
                Ok(Ok(a)) => webhook_tls_args(a.as_ref()),
                Ok(Err(error)) => {
                    warn!(%error, "metrics: cannot read APIServer cluster; Intermediate TLS profile until it can be watched");
                    webhook_tls_args(None)
                }
                Err(_) => webhook_tls_args(None),
            }
        }
    };
    let server = Arc::new(MetricsServer::new(cert, &tls, client.clone(), metrics)?);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsServerError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    info!(addr = %bound, "serving metrics over HTTPS");
    tokio::spawn(server.clone().serve(listener, shutdown.clone()));
    if fixed.is_none() {
        tokio::spawn(server.follow_profile(client, shutdown));
    }
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_follow_the_profile_names() {
        let r = self_signed().expect("self-signed");
        let intermediate = rustls_config(
            r.clone(),
            &TlsArgs {
                min_version: Some("VersionTLS12".into()),
                ciphers: vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()],
            },
        )
        .expect("intermediate");
        let tls12: Vec<_> = intermediate
            .crypto_provider()
            .cipher_suites
            .iter()
            .filter(|s| matches!(s, rustls::SupportedCipherSuite::Tls12(_)))
            .map(|s| s.suite())
            .collect();
        assert_eq!(
            tls12,
            [rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
        );
        let bad = rustls_config(
            r,
            &TlsArgs {
                min_version: Some("TLS9".into()),
                ciphers: vec![],
            },
        );
        assert!(bad.is_err());
    }

    #[test]
    fn cache_keys_depend_on_token_and_path() {
        assert_ne!(
            Authorizer::key("a", "/metrics"),
            Authorizer::key("b", "/metrics")
        );
        assert_ne!(Authorizer::key("a", "/metrics"), Authorizer::key("a", "/x"));
    }

    /// As controller-runtime: a certificate directory without the files at start means a
    /// self-signed certificate (the bootstrap static pod mounts no serving certificate).
    #[test]
    fn a_missing_certificate_falls_back_to_self_signed() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(resolver(&ServingCert::Dir(dir.path().to_path_buf())).is_ok());
        std::fs::write(dir.path().join("tls.crt"), "not a certificate").expect("write");
        std::fs::write(dir.path().join("tls.key"), "not a key").expect("write");
        let Err(err) = resolver(&ServingCert::Dir(dir.path().to_path_buf())) else {
            panic!("unreadable files accepted");
        };
        assert!(err.to_string().contains("tls.crt"), "{err}");
    }
}
