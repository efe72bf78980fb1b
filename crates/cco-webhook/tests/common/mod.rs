//! Test helpers: a generated CA and serving certificate, an in-process webhook on loopback TLS,
//! and a minimal HTTPS client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cco_webhook::metrics::Metrics;
use cco_webhook::sa_cache::ServiceAccountSource;
use cco_webhook::server::{self, App};
use cco_webhook::tls::{server_config, ReloadingCertResolver};
use cco_webhook::WebhookConfig;
use http_body_util::{BodyExt, Full};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpListener, TcpStream};

/// A CA and a serving certificate for 127.0.0.1/localhost written to a temp dir.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params
            .distinguished_name
            .push(DnType::CommonName, "webhook-test-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
        let pki = Self {
            dir: tempfile::tempdir().expect("tempdir"),
            ca_pem: issuer.pem(),
            issuer,
        };
        pki.write_leaf("webhook-1", 1);
        pki
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    /// Issue a new serving certificate named `cn`, write it with a distinct mtime, return its DER.
    pub fn write_leaf(&self, cn: &str, generation: u64) -> Vec<u8> {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        put(&self.cert_path(), cert.pem(), generation);
        put(&self.key_path(), key.serialize_pem(), generation);
        cert.der().to_vec()
    }
}

impl Pki {
    /// Issue a serving certificate for 127.0.0.1/localhost into `dir/tls.crt` and `dir/tls.key`.
    pub fn write_leaf_to(&self, dir: &Path) {
        std::fs::create_dir_all(dir).expect("cert dir");
        let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("params");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        put(&dir.join("tls.crt"), cert.pem(), 1);
        put(&dir.join("tls.key"), key.serialize_pem(), 1);
    }

    /// Sign a PEM certificate request with the CA (the test acting as a CSR signer).
    pub fn sign_request(&self, request_pem: &str) -> String {
        let csr =
            rcgen::CertificateSigningRequestParams::from_pem(request_pem).expect("CSR parses");
        csr.signed_by(&self.issuer).expect("signs").pem()
    }
}

fn put(path: &Path, contents: impl AsRef<[u8]>, generation: u64) {
    std::fs::write(path, contents).expect("write");
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + generation))
        .expect("mtime");
}

/// A webhook served in-process; dropping `stop` shuts it down.
pub struct RunningWebhook {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    pub stop: tokio::sync::watch::Sender<()>,
}

pub async fn start_webhook<S: ServiceAccountSource>(
    pki: &Pki,
    config: WebhookConfig,
    service_accounts: S,
) -> RunningWebhook {
    cco_webhook::install_crypto_provider();
    let metrics = Arc::new(Metrics::new());
    let resolver = ReloadingCertResolver::new(pki.cert_path(), pki.key_path(), Duration::ZERO)
        .expect("certificate loads")
        .with_metrics(metrics.clone());
    let tls = Arc::new(
        server_config(
            Arc::new(resolver),
            cco_webhook::config::TlsVersion::Tls12,
            None,
        )
        .expect("tls config"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let metrics_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let metrics_addr = metrics_listener.local_addr().expect("addr");
    let app = Arc::new(App::new(config, service_accounts, metrics.clone()));
    let (stop, rx) = tokio::sync::watch::channel(());
    let wait = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    tokio::spawn(server::serve_tls(listener, tls, app, wait(rx.clone())));
    tokio::spawn(server::serve_metrics(
        metrics_listener,
        metrics.clone(),
        wait(rx),
    ));
    RunningWebhook {
        addr,
        metrics_addr,
        metrics,
        stop,
    }
}

/// Response of [`https_request`].
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    pub peer_cert: Vec<u8>,
}

/// One HTTPS request on a fresh connection trusting `ca_pem`.
pub async fn https_request(
    addr: SocketAddr,
    ca_pem: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Reply {
    https_request_as(addr, "127.0.0.1", ca_pem, method, path, body).await
}

/// One HTTPS request to `addr`, verifying the certificate for `server_name`.
pub async fn https_request_as(
    addr: SocketAddr,
    server_name: &str,
    ca_pem: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Reply {
    cco_webhook::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("ca pem")).expect("add root");
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let tls = connector
        .connect(
            ServerName::try_from(server_name.to_string()).expect("name"),
            tcp,
        )
        .await
        .expect("TLS handshake");
    let peer_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("http handshake");
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        body,
        peer_cert,
    }
}

/// Plain-HTTP GET (metrics port).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let req = http::Request::builder()
        .uri(path)
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}
pub mod process;
