//! The AWS clients honour the cluster proxy and trusted CA bundle as the operator's Deployment
//! provides them (`HTTPS_PROXY`/`NO_PROXY` injected, the bundle where `SSL_CERT_FILE` points):
//! STS on the AWS emulator, served over HTTPS with a CA made here, is reached through a real HTTP
//! proxy (pproxy, `CONNECT`), and directly when `NO_PROXY` names the host. The server's CA is in no
//! system store, only in the bundle `SSL_CERT_FILE` names, so each success shows the bundle is used
//! (the SDK reads the roots once per process, as the reference's Go clients do).
//!
//! One test in its own binary: it sets the process environment, as a container runtime does.

use cco_testsupport::moto::Moto;
use cco_testsupport::proxy::HttpProxy;
use cco_testsupport::tls::TestCa;

/// Serves TLS on a free port and forwards each connection to `upstream` (the emulator's HTTP).
async fn tls_front(ca: &TestCa, upstream: u16) -> anyhow::Result<u16> {
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config()?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                }
            });
        }
    });
    Ok(port)
}

fn set(k: &str, v: &str) {
    std::env::set_var(k, v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_goes_through_the_proxy_and_trusts_the_bundle() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let moto = Moto::start()?;
    let moto_port: u16 = moto.endpoint.rsplit(':').next().unwrap_or("").parse()?;
    let ca = TestCa::generate()?;
    let dir = tempfile::tempdir()?;
    let bundle = ca.write(dir.path())?;
    let front = tls_front(&ca, moto_port).await?;
    let proxy = HttpProxy::start()?;

    for (k, v) in moto.env() {
        set(k, &v);
    }
    let target = format!("localhost:{front}");
    set("AWS_ENDPOINT_URL", &format!("https://{target}"));
    set("SSL_CERT_FILE", bundle.to_str().unwrap_or_default());
    for k in [
        "NO_PROXY",
        "no_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
    ] {
        std::env::remove_var(k);
    }
    set("HTTPS_PROXY", &proxy.url);

    // Through the proxy, trusting the CA from the bundle only.
    let aws = cco_aws::Aws::connect("us-east-1", 1).await;
    let account = aws.preflight().await?;
    assert_eq!(account, "123456789012");
    let carried = proxy.connections()?;
    assert!(
        carried.contains(&target),
        "the proxy carried {carried:?}, not {target}"
    );

    // NO_PROXY names the host: straight to it, the proxy carries nothing more.
    set("NO_PROXY", "localhost");
    let before = proxy.connections()?.len();
    let direct = cco_aws::Aws::connect("us-east-1", 1).await;
    assert_eq!(direct.preflight().await?, "123456789012");
    assert_eq!(proxy.connections()?.len(), before);
    std::env::remove_var("NO_PROXY");

    Ok(())
}
