//! Test side of the HTTPS metrics endpoint: a serving certificate signed by a test CA (laid out as
//! the service CA's Secret is mounted: `tls.crt`/`tls.key`), a ServiceAccount allowed to read
//! `/metrics`, and a minimal HTTPS GET that trusts the test CA.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use anyhow::{anyhow, Context as _, Result};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DynamicObject, PostParams};
use kube::Client;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::OPERATOR_NS;

/// A directory with `tls.crt`/`tls.key` for the cco-metrics Service name and 127.0.0.1, and the
/// PEM of the CA that signed them.
pub fn serving_cert_dir() -> (tempfile::TempDir, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "service-ca-for-tests");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = rcgen::CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let leaf = CertificateParams::new(vec![
        cco_operator::metrics_server::SERVICE_DNS_NAME.to_string(),
        "127.0.0.1".to_string(),
    ])
    .unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).unwrap();
    (dir, issuer.pem())
}

/// A token of ServiceAccount `name` in the operator's namespace (created if missing).
pub async fn sa_token(admin: &Client, name: &str) -> Result<String> {
    let sa: Api<ServiceAccount> = Api::namespaced(admin.clone(), OPERATOR_NS);
    let obj: ServiceAccount = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": OPERATOR_NS}}))?;
    match sa.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let out: TokenRequest = sa
        .create_subresource("token", name, &PostParams::default(), &tr)
        .await
        .with_context(|| format!("TokenRequest for {name}"))?;
    Ok(out.status.ok_or_else(|| anyhow!("no token"))?.token)
}

/// Lets ServiceAccount `name` GET `/metrics` (as cluster monitoring's role does), returns a token.
pub async fn metrics_reader_token(admin: &Client, name: &str) -> Result<String> {
    let objs = cco_testsupport::kube_env::parse_manifests(&format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: metrics-reader-for-tests}}
rules:
- nonResourceURLs: ["/metrics"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {name}-metrics-reader}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: metrics-reader-for-tests}}
subjects:
- {{kind: ServiceAccount, name: {name}, namespace: {OPERATOR_NS}}}
"#
    ))?;
    let objs: Vec<DynamicObject> = objs;
    cco_testsupport::kube_env::apply_objects(admin, objs).await?;
    sa_token(admin, name).await
}

/// `GET path` over HTTPS on 127.0.0.1:`port`, verifying the server as the ServiceMonitor does
/// (CA `ca_pem`, server name of the cco-metrics Service). Returns (status, body).
pub async fn https_get(
    port: u16,
    path: &str,
    token: Option<&str>,
    ca_pem: &str,
) -> Result<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c?)?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from(cco_operator::metrics_server::SERVICE_DNS_NAME)?;
    let mut tls = connector.connect(name, tcp).await?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: cco-metrics\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    // The server may close without close_notify after the response; keep what was read.
    let _ = tls.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("no HTTP status in {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A plain-HTTP GET: what a scrape without TLS gets (no HTTP response expected).
pub async fn plain_http_get(port: u16, path: &str) -> Result<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    Ok(String::from_utf8_lossy(&out).to_string())
}
