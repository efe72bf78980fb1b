//! The issuer thumbprint is taken from a real TLS handshake: a local server with a CA made here.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha1::{Digest, Sha1};
use tokio::io::AsyncWriteExt;

struct Pki {
    ca_pem: String,
    ca_der: Vec<u8>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().to_vec(),
        chain: vec![leaf.der().clone(), ca.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

async fn serve(p: &Pki) -> u16 {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(p.chain.clone(), p.key.clone_key())
        .expect("cert");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn thumbprint_is_sha1_of_the_last_certificate_presented() {
    let p = pki();
    let port = serve(&p).await;
    let got = cco_aws::tls::issuer_thumbprint(
        &format!("https://localhost:{port}/cluster"),
        Some(p.ca_pem.as_bytes()),
    )
    .await
    .expect("thumbprint");
    assert_eq!(got, hex::encode(Sha1::digest(&p.ca_der)));
    assert_eq!(got.len(), 40);
}

#[tokio::test]
async fn an_issuer_we_cannot_authenticate_yields_no_thumbprint() {
    let p = pki();
    let port = serve(&p).await;
    let err = cco_aws::tls::issuer_thumbprint(&format!("https://localhost:{port}"), None)
        .await
        .expect_err("untrusted CA must fail");
    assert!(err.to_string().contains("TLS handshake failed"), "{err}");
}

#[tokio::test]
async fn a_plain_http_issuer_is_refused() {
    let err = cco_aws::tls::issuer_thumbprint("http://localhost:1", None)
        .await
        .expect_err("http");
    assert!(err.to_string().contains("https://"), "{err}");
}
