//! The HTTPS client every AWS SDK client here uses: the SDK's own hyper/rustls (aws-lc) client,
//! built so that it honours the proxy environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
//! `NO_PROXY`, upper or lower case) as the reference's Go clients do; the SDK's default client
//! ignores them. Trusted roots are the platform's (`SSL_CERT_FILE`/`SSL_CERT_DIR` or the usual
//! bundle paths), which is where the cluster's trusted CA bundle is mounted.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::{Builder, Connector};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// An HTTPS client that goes through the proxy the environment names, if any.
pub fn http_client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut b = Connector::builder().proxy_config(ProxyConfig::from_env());
        b.set_connector_settings(settings.cloned());
        if let Some(c) = components {
            b.set_sleep_impl(c.sleep_impl());
        }
        b.tls_provider(Provider::Rustls(CryptoMode::AwsLc)).build()
    })
}
