//! The TLS thumbprint IAM records for an OIDC provider.
//!
//! It is the hex SHA-1 of the last certificate the issuer's server presents in its TLS handshake. The
//! handshake is fully verified (system roots, plus an extra CA when given), so a thumbprint is never
//! taken from a server we could not authenticate. Like other HTTPS clients, it honours `HTTPS_PROXY`
//! (an `http://` proxy, through `CONNECT`) and `NO_PROXY`.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use sha1::{Digest, Sha1};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::AwsError;

/// Computes the thumbprint of `issuer_url` (an `https://` URL). `extra_ca_pem` adds trusted roots,
/// for issuers served with a private CA.
pub async fn issuer_thumbprint(
    issuer_url: &str,
    extra_ca_pem: Option<&[u8]>,
) -> Result<String, AwsError> {
    let fail = |message: String| AwsError::Thumbprint {
        issuer: issuer_url.to_string(),
        message,
    };
    let url = url::Url::parse(issuer_url).map_err(|e| fail(format!("not a URL: {e}")))?;
    if url.scheme() != "https" {
        return Err(fail("the issuer must be an https:// URL".into()));
    }
    let host = url
        .host_str()
        .ok_or_else(|| fail("the URL has no host".into()))?
        .to_string();
    let port = url.port().unwrap_or(443);

    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(pem) = extra_ca_pem {
        let mut rd = pem;
        for cert in rustls_pemfile::certs(&mut rd) {
            let cert: CertificateDer<'static> =
                cert.map_err(|e| fail(format!("bad CA PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| fail(format!("bad CA certificate: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let name =
        ServerName::try_from(host.clone()).map_err(|e| fail(format!("bad host name: {e}")))?;

    let connect = async {
        let tcp = match proxy_for(&host) {
            Some(proxy) => connect_through(&proxy, &host, port).await.map_err(fail)?,
            None => TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| fail(format!("cannot connect to {host}:{port}: {e}")))?,
        };
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| fail(format!("TLS handshake failed: {e}")))
    };
    let stream = tokio::time::timeout(Duration::from_secs(20), connect)
        .await
        .map_err(|_| fail(format!("timed out connecting to {host}:{port}")))??;
    let (_, conn) = stream.get_ref();
    let last = conn
        .peer_certificates()
        .and_then(|c| c.last())
        .ok_or_else(|| fail("the server presented no certificate".into()))?;
    Ok(hex::encode(Sha1::digest(last.as_ref())))
}

/// The proxy (`host:port`) to reach `host` through, from `HTTPS_PROXY`/`https_proxy` unless
/// `NO_PROXY`/`no_proxy` exempts the host.
fn proxy_for(host: &str) -> Option<String> {
    let var = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
    };
    let proxy = var(["HTTPS_PROXY", "https_proxy"])?;
    if let Some(no) = var(["NO_PROXY", "no_proxy"]) {
        let exempt = no.split(',').map(str::trim).any(|e| {
            let e = e.trim_start_matches('.');
            e == "*" || (!e.is_empty() && (host == e || host.ends_with(&format!(".{e}"))))
        });
        if exempt {
            return None;
        }
    }
    let url = url::Url::parse(&proxy).ok()?;
    Some(format!(
        "{}:{}",
        url.host_str()?,
        url.port_or_known_default().unwrap_or(80)
    ))
}

/// Opens a tunnel to `host:port` through an HTTP proxy with `CONNECT`.
async fn connect_through(proxy: &str, host: &str, port: u16) -> Result<TcpStream, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(proxy)
        .await
        .map_err(|e| format!("cannot connect to the proxy {proxy}: {e}"))?;
    tcp.write_all(
        format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n").as_bytes(),
    )
    .await
    .map_err(|e| format!("proxy {proxy}: {e}"))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192
            || tcp
                .read(&mut byte)
                .await
                .map_err(|e| format!("proxy {proxy}: {e}"))?
                == 0
        {
            return Err(format!(
                "proxy {proxy} closed the connection during CONNECT"
            ));
        }
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head);
    let line = status.lines().next().unwrap_or("");
    if line.split_whitespace().nth(1) != Some("200") {
        return Err(format!(
            "proxy {proxy} refused CONNECT {host}:{port}: {line}"
        ));
    }
    Ok(tcp)
}
