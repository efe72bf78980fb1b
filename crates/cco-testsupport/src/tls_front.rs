//! An HTTPS front for an issuer served by a local emulator: an HTTP `CONNECT` proxy that terminates
//! TLS with a certificate for whatever host the client asked for (signed by a CA made here) and
//! forwards each request, unchanged (its `Host` header included), to the emulator over plain HTTP.
//!
//! This lets a program fetch `https://<bucket>.s3.<region>.amazonaws.com/...` with real TLS and no
//! change of URL: point it at the proxy with `HTTPS_PROXY` and trust [`TlsFront::ca_pem`]. moto
//! serves the virtual-host-style request from its S3 (and enforces the bucket policy on anonymous
//! requests). Every request is recorded ([`TlsFront::requests`]) with whether it carried
//! credentials, so a test can prove that a client's reads were anonymous.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One request that came through the front.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontRequest {
    /// The host the client tunnelled to (from `CONNECT`).
    pub host: String,
    pub method: String,
    pub path: String,
    /// True when it carried an `Authorization` header (or a presigned-URL signature).
    pub signed: bool,
    /// The emulator's status code (0 when it could not be reached).
    pub status: u16,
}

/// A running front; stops when dropped.
pub struct TlsFront {
    /// `http://127.0.0.1:<port>`: the value for `HTTPS_PROXY`.
    pub proxy_url: String,
    /// The CA that signs every certificate the front presents (PEM).
    pub ca_pem: String,
    /// The same CA, DER: the last certificate of every chain presented.
    pub ca_der: Vec<u8>,
    requests: Arc<Mutex<Vec<FrontRequest>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

impl Ca {
    fn server_config(&self, host: &str) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let key = KeyPair::generate()?;
        let leaf = CertificateParams::new(vec![host.to_string()])?.signed_by(&key, &self.issuer)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone(), self.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )?;
        Ok(Arc::new(cfg))
    }
}

impl TlsFront {
    /// Starts a front forwarding to `upstream` (`http://127.0.0.1:<port>`, e.g. moto's endpoint).
    pub fn start(upstream: &str) -> anyhow::Result<TlsFront> {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let ca_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cco-testsupport TLS front CA");
        let ca_cert = params.self_signed(&ca_key)?;
        let ca = Arc::new(Ca {
            issuer: Issuer::new(params, ca_key),
            der: ca_cert.der().clone(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let recorded = requests.clone();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let serve = async {
                    while let Ok((tcp, _)) = listener.accept().await {
                        let (ca, upstream, recorded) =
                            (ca.clone(), upstream.clone(), recorded.clone());
                        tokio::spawn(async move {
                            if let Err(e) = tunnel(tcp, ca, upstream, recorded).await {
                                eprintln!("tls_front: {e:#}");
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = rx => {}
                }
            });
        });
        Ok(TlsFront {
            proxy_url: format!("http://127.0.0.1:{port}"),
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            requests,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<FrontRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Environment for a process that should reach HTTPS hosts through this front (and everything
    /// on loopback directly).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HTTPS_PROXY", self.proxy_url.clone()),
            ("https_proxy", self.proxy_url.clone()),
            ("NO_PROXY", "127.0.0.1,localhost".to_string()),
            ("no_proxy", "127.0.0.1,localhost".to_string()),
        ]
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn tunnel(
    tcp: tokio::net::TcpStream,
    ca: Arc<Ca>,
    upstream: String,
    recorded: Arc<Mutex<Vec<FrontRequest>>>,
) -> anyhow::Result<()> {
    let mut reader = BufReader::new(tcp);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let target = line
        .strip_prefix("CONNECT ")
        .and_then(|r| r.split_whitespace().next())
        .context("not a CONNECT request")?
        .to_string();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).await? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let host = target
        .rsplit_once(':')
        .map_or(target.as_str(), |(h, _)| h)
        .to_string();
    let mut tcp = reader.into_inner();
    tcp.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config(&host)?);
    let tls = acceptor.accept(tcp).await?;
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (upstream, recorded, host) = (upstream.clone(), recorded.clone(), host.clone());
        async move { forward(req, &upstream, &host, &recorded).await }
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .await?;
    Ok(())
}

async fn forward(
    req: hyper::Request<Incoming>,
    upstream: &str,
    host: &str,
    recorded: &Mutex<Vec<FrontRequest>>,
) -> anyhow::Result<hyper::Response<http_body_util::Full<hyper::body::Bytes>>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.to_string());
    let signed = parts.headers.contains_key(hyper::header::AUTHORIZATION)
        || path.contains("X-Amz-Signature=");
    let mut out = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(&path);
    for (k, v) in &parts.headers {
        out = out.header(k, v);
    }
    if !parts.headers.contains_key(hyper::header::HOST) {
        out = out.header(hyper::header::HOST, host);
    }
    let out = out.body(http_body_util::Full::new(body))?;
    let tcp = tokio::net::TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let resp = sender.send_request(out).await;
    let (status, response) = match resp {
        Ok(r) => {
            let (p, b) = r.into_parts();
            let bytes = b.collect().await?.to_bytes();
            (
                p.status.as_u16(),
                hyper::Response::from_parts(p, http_body_util::Full::new(bytes)),
            )
        }
        Err(e) => {
            let mut r = hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from(
                e.to_string(),
            )));
            *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            (0, r)
        }
    };
    if let Ok(mut r) = recorded.lock() {
        r.push(FrontRequest {
            host: host.to_string(),
            method: parts.method.to_string(),
            path,
            signed,
            status,
        });
    }
    Ok(response)
}
