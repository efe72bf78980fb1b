//! AWS adapter: executes the plans of `cco_core::aws` through the official AWS SDK for Rust.
//!
//! [`Aws`] bundles the IAM, S3, CloudFront and STS clients built from the standard configuration chain,
//! so `AWS_ENDPOINT_URL`, profiles and credentials work as with every AWS tool. When a custom endpoint
//! is set, S3 uses path-style addressing, which local emulators need. Each operation is idempotent:
//! it looks for what already exists (by deterministic name, then by ownership tag) before creating, so
//! a re-run after any failure converges and creates no duplicates. The SDK's default HTTPS client
//! (behavior version 2025-08-07 and later) honours `HTTPS_PROXY`/`NO_PROXY` and the platform roots
//! (`SSL_CERT_FILE`); `tests/proxy.rs` holds it to that.

mod delete;
mod error;
mod idp;
mod mint;
pub mod observe;
mod retry;
mod roles;
pub mod tls;

pub use delete::*;
pub use error::*;
pub use idp::*;
pub use mint::*;
pub use roles::*;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use std::time::Duration;

/// Clients for one region.
#[derive(Clone, Debug)]
pub struct Aws {
    pub iam: aws_sdk_iam::Client,
    pub s3: aws_sdk_s3::Client,
    pub cloudfront: aws_sdk_cloudfront::Client,
    pub sts: aws_sdk_sts::Client,
    pub region: String,
    /// How many independent calls run at once.
    pub concurrency: usize,
}

/// True when the standard endpoint override points the SDK somewhere other than AWS.
pub fn custom_endpoint() -> Option<String> {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}

/// The region for a command whose `--region` is optional because IAM is global: the flag, else the
/// standard configuration chain (AWS_REGION, the profile), else the home region of the partition of
/// `provider_arn`. A configured region of another partition than the ARN's is passed over, since
/// that partition's IAM would not know the provider. `None` when nothing applies.
pub async fn region_for_iam(flag: Option<&str>, provider_arn: &str) -> Option<String> {
    use cco_core::aws::{parse_provider_arn, Partition};
    if let Some(r) = flag.filter(|r| !r.is_empty()) {
        return Some(r.to_string());
    }
    let partition = parse_provider_arn(provider_arn).map(|(p, _, _)| p);
    let configured = aws_config::default_provider::region::DefaultRegionChain::builder()
        .build()
        .region()
        .await
        .map(|r| r.to_string());
    if let Some(r) =
        configured.filter(|r| partition.is_none_or(|p| Partition::for_region(r).id == p))
    {
        return Some(r);
    }
    let home = partition.and_then(Partition::home_region)?;
    tracing::debug!(
        region = home,
        "no region configured; using the home region of the provider's partition"
    );
    Some(home.to_string())
}

impl Aws {
    /// Loads the standard AWS configuration for `region`. Retries use the SDK's adaptive mode, which
    /// backs off on throttling and rate-limits itself client-side.
    pub async fn connect(region: &str, concurrency: usize) -> Aws {
        let retry = RetryConfig::adaptive()
            .with_max_attempts(10)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(20));
        let conf = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .retry_config(retry)
            .load()
            .await;
        let s3_conf = aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(custom_endpoint().is_some())
            .build();
        Aws {
            iam: aws_sdk_iam::Client::new(&conf),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            cloudfront: aws_sdk_cloudfront::Client::new(&conf),
            sts: aws_sdk_sts::Client::new(&conf),
            region: region.to_string(),
            concurrency: concurrency.max(1),
        }
    }

    /// Checks, with one quickly-failing call, that the endpoint is reachable and the credentials are
    /// valid, so that a wrong setup fails at once instead of after every call's retries. Returns the
    /// account id.
    pub async fn preflight(&self) -> Result<String, AwsError> {
        let out = self
            .sts
            .get_caller_identity()
            .customize()
            .config_override(
                aws_sdk_sts::config::Builder::default()
                    .retry_config(RetryConfig::standard().with_max_attempts(2)),
            )
            .send()
            .await
            .map_err(|e| AwsError::call("sts:GetCallerIdentity", "caller", e))?;
        out.account()
            .map(str::to_owned)
            .ok_or_else(|| AwsError::Unexpected("GetCallerIdentity returned no account".into()))
    }
}
