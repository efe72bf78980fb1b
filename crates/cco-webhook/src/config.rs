//! Command-line flags and the plain configuration derived from them.
//!
//! [`Args`] mirrors the flags of amazon-eks-pod-identity-webhook (`--port`, `--tls-cert`,
//! `--annotation-prefix`, `--token-expiration`, `--sts-regional-endpoint`, …) so that an existing
//! Deployment can switch binaries without editing its arguments, and adds the Azure and GCP knobs.
//! Go's flag package accepts single-dash long flags (`-port=443`) and bare booleans, so
//! [`Args::parse_compat`] rewrites `-name` to `--name` before handing the arguments to clap.
//!
//! [`WebhookConfig`] is what the pure admission handler reads; it holds no I/O handles.
//! [`ServerConfig`] holds the settings of the TLS/metrics servers and the ServiceAccount lookup.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Minimum projected-token lifetime accepted by the kube-apiserver (seconds).
pub const MIN_TOKEN_EXPIRATION: i64 = 600;

/// Command-line flags of `cco-pod-identity-webhook`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "cco-pod-identity-webhook",
    version,
    about = "Mutating admission webhook injecting AWS, Azure and GCP workload identity into pods"
)]
pub struct Args {
    /// Port of the TLS admission endpoint (`/mutate`, `/healthz`).
    #[arg(long, default_value_t = 443)]
    pub port: u16,
    /// Address the TLS and metrics listeners bind to.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// PEM certificate chain served on the TLS port; reloaded when the file changes.
    #[arg(long, default_value = "/etc/webhook/certs/tls.crt")]
    pub tls_cert: PathBuf,
    /// PEM private key matching `--tls-cert`; reloaded when the file changes.
    #[arg(long, default_value = "/etc/webhook/certs/tls.key")]
    pub tls_key: PathBuf,
    /// Minimum TLS version: `1.2`/`VersionTLS12` or `1.3`/`VersionTLS13`.
    #[arg(long, default_value = "1.2", value_parser = parse_tls_version)]
    pub tls_min_version: TlsVersion,
    /// Port of the plain-HTTP metrics endpoint (`/metrics`, `/healthz`).
    #[arg(long, default_value_t = 9999)]
    pub metrics_port: u16,
    /// Path to a kubeconfig; in-cluster configuration is used when absent.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// How long to wait for a ServiceAccount that is neither cached nor readable yet
    /// (Go duration, e.g. `100ms`, `2s`; `0` disables waiting).
    #[arg(long, default_value = "100ms", value_parser = parse_go_duration)]
    pub service_account_lookup_grace_period: Duration,

    /// AWS: annotation/label domain (`<prefix>/role-arn`, `<prefix>/skip-pod-identity-webhook`).
    #[arg(long, default_value = "eks.amazonaws.com")]
    pub annotation_prefix: String,
    /// AWS: default audience of the projected token.
    #[arg(long, default_value = "sts.amazonaws.com")]
    pub token_audience: String,
    /// AWS: directory the token volume is mounted at.
    #[arg(
        long,
        default_value = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
    )]
    pub token_mount_path: String,
    /// AWS: default token lifetime in seconds (minimum 600).
    #[arg(long, default_value_t = 86400)]
    pub token_expiration: i64,
    /// AWS: region injected as AWS_REGION/AWS_DEFAULT_REGION (nothing injected when empty).
    #[arg(long, default_value = "")]
    pub aws_default_region: String,
    /// AWS: inject AWS_STS_REGIONAL_ENDPOINTS=regional unless the ServiceAccount says otherwise.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    pub sts_regional_endpoint: bool,

    /// Azure: tenant used when the ServiceAccount has no `azure.workload.identity/tenant-id`.
    #[arg(long)]
    pub azure_tenant_id: Option<String>,
    /// Azure: value of AZURE_AUTHORITY_HOST.
    #[arg(long, default_value = "https://login.microsoftonline.com/")]
    pub azure_authority_host: String,

    /// GCP: default token lifetime in seconds when the ServiceAccount sets none (minimum 600).
    #[arg(long, default_value_t = 3600)]
    pub gcp_token_expiration: i64,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, default_value_t = false)]
    pub log_json: bool,
}

/// Accepted minimum TLS protocol versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 are accepted.
    Tls12,
    /// Only TLS 1.3 is accepted.
    Tls13,
}

fn parse_tls_version(s: &str) -> Result<TlsVersion, String> {
    match s {
        "1.2" | "VersionTLS12" | "TLS12" | "tls1.2" => Ok(TlsVersion::Tls12),
        "1.3" | "VersionTLS13" | "TLS13" | "tls1.3" => Ok(TlsVersion::Tls13),
        "1.0" | "1.1" | "VersionTLS10" | "VersionTLS11" => {
            Err(format!("TLS version {s} is not supported; use 1.2 or 1.3"))
        }
        _ => Err(format!("unknown TLS version {s:?}; use 1.2 or 1.3")),
    }
}

/// Parse a Go `time.Duration` string such as `100ms`, `1.5s`, `2m30s` or `0`.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        if num_len == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid number in duration {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("unknown unit {other:?} in duration {s:?}")),
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

impl Args {
    /// Parse `std::env::args`, accepting Go-style single-dash long flags.
    pub fn parse_compat() -> Self {
        Self::parse_from(normalize_go_flags(std::env::args()))
    }

    /// The handler configuration these flags describe.
    pub fn webhook_config(&self) -> WebhookConfig {
        WebhookConfig {
            aws: AwsConfig {
                annotation_prefix: self.annotation_prefix.trim_end_matches('/').to_string(),
                token_audience: self.token_audience.clone(),
                token_mount_path: self.token_mount_path.trim_end_matches('/').to_string(),
                token_expiration: self.token_expiration.max(MIN_TOKEN_EXPIRATION),
                region: Some(self.aws_default_region.trim().to_string()).filter(|r| !r.is_empty()),
                sts_regional_endpoints: self.sts_regional_endpoint,
            },
            azure: AzureConfig {
                tenant_id: self.azure_tenant_id.clone().filter(|t| !t.is_empty()),
                authority_host: self.azure_authority_host.clone(),
            },
            gcp: GcpConfig {
                token_expiration: self.gcp_token_expiration.max(MIN_TOKEN_EXPIRATION),
            },
        }
    }
}

/// Rewrite Go-style `-flag[=v]` arguments to `--flag[=v]`, leaving short flags (`-h`, `-V`) and
/// everything after a bare `--` alone.
pub fn normalize_go_flags(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut passthrough = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || passthrough {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        let is_go_long = arg.starts_with('-')
            && !arg.starts_with("--")
            && arg.len() > 2
            && arg[1..].starts_with(|c: char| c.is_ascii_alphabetic());
        if is_go_long {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
}

/// Everything the pure admission handler needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// AWS (IRSA) settings.
    pub aws: AwsConfig,
    /// Azure workload identity settings.
    pub azure: AzureConfig,
    /// GCP workload identity federation settings.
    pub gcp: GcpConfig,
}

/// AWS settings, defaults matching amazon-eks-pod-identity-webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// Annotation and label domain, without trailing slash.
    pub annotation_prefix: String,
    /// Default audience of the projected token.
    pub token_audience: String,
    /// Mount directory of the token volume, without trailing slash.
    pub token_mount_path: String,
    /// Default token lifetime in seconds (already clamped to the minimum).
    pub token_expiration: i64,
    /// Region injected where the container sets none.
    pub region: Option<String>,
    /// Default for AWS_STS_REGIONAL_ENDPOINTS=regional.
    pub sts_regional_endpoints: bool,
}

/// Azure settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureConfig {
    /// Tenant used when the ServiceAccount names none.
    pub tenant_id: Option<String>,
    /// Value of AZURE_AUTHORITY_HOST.
    pub authority_host: String,
}

/// GCP settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpConfig {
    /// Default token lifetime in seconds (already clamped to the minimum).
    pub token_expiration: i64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Args::parse_from(["cco-pod-identity-webhook"]).webhook_config()
    }
}

/// Settings of the servers and the ServiceAccount lookup.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address both listeners bind to.
    pub bind_address: IpAddr,
    /// TLS admission port.
    pub port: u16,
    /// Plain-HTTP metrics port.
    pub metrics_port: u16,
    /// Certificate chain path.
    pub tls_cert: PathBuf,
    /// Private key path.
    pub tls_key: PathBuf,
    /// Minimum TLS version.
    pub tls_min_version: TlsVersion,
    /// Bounded wait for a ServiceAccount not visible yet.
    pub grace_period: Duration,
    /// Kubeconfig path, in-cluster config when `None`.
    pub kubeconfig: Option<PathBuf>,
}

impl From<&Args> for ServerConfig {
    fn from(a: &Args) -> Self {
        Self {
            bind_address: a.bind_address,
            port: a.port,
            metrics_port: a.metrics_port,
            tls_cert: a.tls_cert.clone(),
            tls_key: a.tls_key.clone(),
            tls_min_version: a.tls_min_version,
            grace_period: a.service_account_lookup_grace_period,
            kubeconfig: a.kubeconfig.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("0", Duration::ZERO)]
    #[case("100ms", Duration::from_millis(100))]
    #[case("2s", Duration::from_secs(2))]
    #[case("1.5s", Duration::from_millis(1500))]
    #[case("1m30s", Duration::from_secs(90))]
    #[case("250us", Duration::from_micros(250))]
    fn go_durations_parse(#[case] input: &str, #[case] expected: Duration) {
        assert_eq!(parse_go_duration(input), Ok(expected));
    }

    #[rstest]
    #[case("")]
    #[case("10")]
    #[case("5 parsecs")]
    #[case("ms")]
    fn malformed_go_durations_are_rejected(#[case] input: &str) {
        assert!(parse_go_duration(input).is_err());
    }

    #[test]
    fn defaults_match_the_eks_webhook() {
        let a = Args::parse_from(["x"]);
        assert_eq!(a.port, 443);
        assert_eq!(a.metrics_port, 9999);
        assert_eq!(
            a.service_account_lookup_grace_period,
            Duration::from_millis(100)
        );
        let c = a.webhook_config();
        assert_eq!(c.aws.annotation_prefix, "eks.amazonaws.com");
        assert_eq!(c.aws.token_audience, "sts.amazonaws.com");
        assert_eq!(
            c.aws.token_mount_path,
            "/var/run/secrets/eks.amazonaws.com/serviceaccount"
        );
        assert_eq!(c.aws.token_expiration, 86400);
        assert_eq!(c.aws.region, None);
        assert!(!c.aws.sts_regional_endpoints);
        assert_eq!(c.azure.authority_host, "https://login.microsoftonline.com/");
    }

    #[test]
    fn go_style_single_dash_flags_are_accepted() {
        let argv = [
            "webhook",
            "-port=8443",
            "-sts-regional-endpoint",
            "-token-expiration",
            "10",
            "-aws-default-region=eu-west-1",
            "--tls-min-version=VersionTLS13",
            "-service-account-lookup-grace-period=2s",
        ]
        .map(String::from);
        let a = Args::parse_from(normalize_go_flags(argv));
        assert_eq!(a.port, 8443);
        assert!(a.sts_regional_endpoint);
        assert_eq!(a.tls_min_version, TlsVersion::Tls13);
        assert_eq!(
            a.service_account_lookup_grace_period,
            Duration::from_secs(2)
        );
        let c = a.webhook_config();
        assert_eq!(c.aws.token_expiration, MIN_TOKEN_EXPIRATION, "clamped up");
        assert_eq!(c.aws.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn explicit_false_boolean_is_accepted() {
        let a = Args::parse_from(["x", "--sts-regional-endpoint=false"]);
        assert!(!a.sts_regional_endpoint);
    }
}
