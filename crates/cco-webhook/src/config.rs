//! Command-line flags, the reference profile they are read in, and the plain configuration
//! derived from them.
//!
//! One binary stands in for three reference webhooks, each started by its own Deployment with
//! its own command and flags (see `README.md` of this crate for the full table):
//!
//! | profile | chosen by `argv[0]` | reference |
//! |---|---|---|
//! | [`Profile::Aws`] | `aws-pod-identity-webhook`, `amazon-eks-pod-identity-webhook`, `webhook` | amazon-eks-pod-identity-webhook |
//! | [`Profile::Azure`] | `azure-workload-identity-webhook` | azure-workload-identity v1.6 |
//! | [`Profile::Gcp`] | `gcp-workload-identity-federation-webhook` | the GCP webhook OpenShift ships |
//! | [`Profile::Cco`] | anything else (`cco-pod-identity-webhook`) | all three clouds at once |
//!
//! `--profile` (or `CCO_WEBHOOK_PROFILE`) overrides the choice. A profile decides the defaults
//! the reference binary has (ports, certificate location, health and metrics listeners, which
//! cloud is served, the meaning of the shared `--token-audience`/`--annotation-prefix`/
//! `--token-expiration` flags). Every profile accepts the union of all flags, in Go syntax
//! ([`crate::flags`]).
//!
//! [`Args`] is the clap model; [`Settings::resolve`] turns it into a [`WebhookConfig`] (what the
//! pure handler reads), a [`ServerConfig`] (listeners, certificates, Kubernetes access) and a
//! [`LogConfig`].

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use crate::flags::{self, parse_go_bool, parse_go_duration};
use crate::patch::Cloud;

pub use crate::flags::parse_go_duration as parse_duration;

/// Minimum projected-token lifetime accepted by the kube-apiserver (seconds).
pub const MIN_TOKEN_EXPIRATION: i64 = 600;

/// Environment variable naming a directory under which absolute certificate and configuration
/// file paths are looked up (`/certs/tls.crt` → `$CCO_WEBHOOK_FS_ROOT/certs/tls.crt`). For running
/// a reference Deployment's argument list outside its container (tests, benchmarks).
pub const FS_ROOT_ENV: &str = "CCO_WEBHOOK_FS_ROOT";

/// Which reference webhook the binary stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// All clouds, this project's defaults.
    Cco,
    /// amazon-eks-pod-identity-webhook.
    Aws,
    /// azure-workload-identity's webhook.
    Azure,
    /// The GCP workload identity federation webhook.
    Gcp,
}

impl Profile {
    /// The profile a program name selects.
    pub fn from_program(argv0: &str) -> Self {
        let base = Path::new(argv0)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        match base {
            "aws-pod-identity-webhook" | "amazon-eks-pod-identity-webhook" | "webhook" => {
                Profile::Aws
            }
            "azure-workload-identity-webhook" => Profile::Azure,
            "gcp-workload-identity-federation-webhook" => Profile::Gcp,
            _ => Profile::Cco,
        }
    }

    /// Clouds this profile injects.
    pub fn clouds(self) -> BTreeSet<Cloud> {
        match self {
            Profile::Cco => BTreeSet::from([Cloud::Aws, Cloud::Azure, Cloud::Gcp]),
            Profile::Aws => BTreeSet::from([Cloud::Aws]),
            Profile::Azure => BTreeSet::from([Cloud::Azure]),
            Profile::Gcp => BTreeSet::from([Cloud::Gcp]),
        }
    }
}

const GO_BOOL: &str = "Go boolean (1, t, true, True, 0, f, false, …)";

/// Command-line flags of `cco-pod-identity-webhook` (union of the three reference webhooks').
#[derive(Debug, Clone, Parser)]
#[command(
    name = "cco-pod-identity-webhook",
    version,
    about = "Mutating admission webhook injecting AWS, Azure and GCP workload identity into pods",
    long_about = "Mutating admission webhook injecting AWS, Azure and GCP workload identity into pods.\n\n\
        Flags use Go syntax (-flag value, --flag=value, bare booleans). Started as \
        aws-pod-identity-webhook, azure-workload-identity-webhook or \
        gcp-workload-identity-federation-webhook (or with --profile) it takes that reference \
        webhook's defaults; defaults shown below are those of the cco profile."
)]
pub struct Args {
    /// Reference defaults to use: cco, aws, azure or gcp (default: chosen by the program name).
    #[arg(long, env = "CCO_WEBHOOK_PROFILE", value_enum)]
    pub profile: Option<Profile>,

    // ---- listeners and TLS ----
    /// Port of the TLS admission endpoint (`/mutate`, `/mutate-v1-pod`, `/healthz`)
    /// [cco, aws: 443; azure, gcp: 9443].
    #[arg(long)]
    pub port: Option<u16>,
    /// Address the TLS and `--metrics-port` listeners bind to.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// PEM certificate chain, reloaded when the file changes [default: /etc/webhook/certs/tls.crt;
    /// azure: <webhook-cert-dir>/tls.crt; gcp: $TMPDIR/k8s-webhook-server/serving-certs/tls.crt].
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key matching `--tls-cert`, reloaded when the file changes.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Azure: directory holding tls.crt and tls.key [default: /certs].
    #[arg(long)]
    pub webhook_cert_dir: Option<PathBuf>,
    /// Minimum TLS version: 1.2/VersionTLS12 or 1.3/VersionTLS13 (1.0 and 1.1 are accepted and
    /// served as 1.2) [cco, aws, gcp: 1.2; azure: 1.3].
    #[arg(long)]
    pub tls_min_version: Option<String>,
    /// Comma-separated TLS 1.2 cipher suites, Go (IANA) or OpenSSL names; TLS 1.3 suites are
    /// always enabled, as in Go.
    #[arg(long)]
    pub tls_cipher_suites: Option<String>,
    /// Port of the plain-HTTP metrics endpoint (`/metrics`, `/healthz`) [cco, aws: 9999].
    #[arg(long)]
    pub metrics_port: Option<u16>,
    /// Azure: metrics listen address, `0` disables [default: :8095].
    #[arg(long)]
    pub metrics_addr: Option<String>,
    /// GCP: metrics listen address, `0` disables [default: :8080].
    #[arg(long)]
    pub metrics_bind_address: Option<String>,
    /// Azure: health listen address (`/healthz`, `/readyz`) [default: :9440].
    #[arg(long)]
    pub health_addr: Option<String>,
    /// GCP: health listen address (`/healthz`, `/readyz`) [default: :8081].
    #[arg(long)]
    pub health_probe_bind_address: Option<String>,
    /// Azure: generate and rotate the certificate itself (not supported: the certificate is
    /// read from `--webhook-cert-dir`; `false` is what OpenShift passes).
    #[arg(long, default_value = "false", value_parser = parse_go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", help_heading = GO_BOOL)]
    pub disable_cert_rotation: bool,

    // ---- Kubernetes access and in-cluster certificates (EKS) ----
    /// Path to a kubeconfig; `KUBECONFIG`, ~/.kube/config or the in-cluster account otherwise.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// URL of the API server, overriding the kubeconfig's.
    #[arg(long)]
    pub kube_api: Option<String>,
    /// Get the serving certificate through a CertificateSigningRequest and keep it in the
    /// Secret `--tls-secret` [aws: true; others: false].
    #[arg(long, value_parser = parse_go_bool, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub in_cluster: Option<bool>,
    /// In-cluster: Service fronting the webhook (names in the certificate).
    #[arg(long, default_value = "pod-identity-webhook")]
    pub service_name: String,
    /// In-cluster: namespace of the webhook, its Secret and its ConfigMap.
    #[arg(long, default_value = "eks")]
    pub namespace: String,
    /// In-cluster: Secret storing the serving certificate.
    #[arg(long, default_value = "pod-identity-webhook")]
    pub tls_secret: String,
    /// In-cluster: signerName of the CertificateSigningRequest.
    #[arg(long, default_value = crate::csr::DEFAULT_SIGNER)]
    pub csr_signer_name: String,
    /// Period of the ServiceAccount (and ConfigMap) cache resync, as the EKS informer's: a
    /// cache emptied by `/debug/alpha/cache/clear` is whole again after it; `0` disables it.
    #[arg(long, default_value = "60s", value_parser = parse_go_duration)]
    pub resync_period: Duration,
    /// How long to wait for a ServiceAccount that is neither cached nor readable yet.
    #[arg(long, default_value = "100ms", value_parser = parse_go_duration)]
    pub service_account_lookup_grace_period: Duration,
    /// AWS: also read role settings from the ConfigMap `pod-identity-webhook` in `--namespace`.
    #[arg(long, default_value = "false", value_parser = parse_go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub watch_config_map: bool,
    /// AWS: accept a role name or path in `role-arn`, completed with the partition and account
    /// of the instance (EC2 instance metadata).
    #[arg(long, default_value = "false", value_parser = parse_go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub compose_role_arn: bool,
    /// Serve `/debug/alpha/cache` (metrics port) and `/debug/alpha/deny`, `/debug/alpha/500`.
    #[arg(long, default_value = "false", value_parser = parse_go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub enable_debugging_handlers: bool,

    // ---- AWS (and the shared names the GCP webhook reuses) ----
    /// Annotation domain [cco, aws: eks.amazonaws.com; gcp: cloud.google.com].
    #[arg(long)]
    pub annotation_prefix: Option<String>,
    /// Default token audience [cco, aws: sts.amazonaws.com; gcp: sts.googleapis.com].
    #[arg(long)]
    pub token_audience: Option<String>,
    /// AWS: directory the token volume is mounted at.
    #[arg(
        long,
        default_value = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
    )]
    pub token_mount_path: String,
    /// Default token lifetime [cco, aws: seconds, 86400; gcp: Go duration, 24h].
    #[arg(long)]
    pub token_expiration: Option<String>,
    /// AWS: region injected as AWS_REGION/AWS_DEFAULT_REGION (nothing when empty).
    #[arg(long, default_value = "")]
    pub aws_default_region: String,
    /// AWS: inject AWS_STS_REGIONAL_ENDPOINTS=regional unless the ServiceAccount says otherwise.
    #[arg(long, default_value = "false", value_parser = parse_go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub sts_regional_endpoint: bool,
    /// AWS: EKS Pod Identity association file to watch.
    #[arg(long)]
    pub watch_container_credentials_config: Option<PathBuf>,
    /// AWS Pod Identity: token audience.
    #[arg(long, default_value = "pods.eks.amazonaws.com")]
    pub container_credentials_audience: String,
    /// AWS Pod Identity: token mount directory.
    #[arg(
        long,
        default_value = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
    )]
    pub container_credentials_token_mount_path: String,
    /// AWS Pod Identity: token volume name.
    #[arg(long, default_value = "eks-pod-identity-token")]
    pub container_credentials_token_volume_name: String,
    /// AWS Pod Identity: token file name inside the mount.
    #[arg(long, default_value = "eks-pod-identity-token")]
    pub container_credentials_token_path: String,
    /// AWS Pod Identity: value of AWS_CONTAINER_CREDENTIALS_FULL_URI.
    #[arg(long, default_value = "http://169.254.170.23/v1/credentials")]
    pub container_credentials_full_uri: String,

    // ---- Azure ----
    /// Azure: default tenant (ServiceAccounts may name their own) [env: AZURE_TENANT_ID].
    #[arg(long)]
    pub azure_tenant_id: Option<String>,
    /// Azure: cloud whose authority host is injected (AzurePublicCloud, AzureChinaCloud,
    /// AzureUSGovernmentCloud) [env: AZURE_ENVIRONMENT].
    #[arg(long)]
    pub azure_environment: Option<String>,
    /// Azure: value of AZURE_AUTHORITY_HOST, overriding `--azure-environment`.
    #[arg(long)]
    pub azure_authority_host: Option<String>,
    /// Azure: token audience [default: api://AzureADTokenExchange].
    #[arg(long)]
    pub audience: Option<String>,
    /// Azure: metrics backend (only prometheus).
    #[arg(long, default_value = "prometheus")]
    pub metrics_backend: String,
    /// Azure: log level: "" (warnings), info, debug, trace, all.
    #[arg(long)]
    pub log_level: Option<String>,
    /// Azure: suffix of the pod annotation `azure.workload.identity/use-<suffix>` selecting the
    /// custom token endpoint.
    #[arg(long, default_value = "")]
    pub custom_token_endpoint_annotation_suffix: String,
    /// Azure: token audience for pods using the custom token endpoint.
    #[arg(long, default_value = "")]
    pub custom_token_endpoint_audience: String,

    // ---- GCP ----
    /// GCP: CLOUDSDK_COMPUTE_REGION injected where unset.
    #[arg(long, default_value = "")]
    pub gcp_default_region: String,
    /// GCP: image of the gcloud setup init container.
    #[arg(long, default_value = "google/cloud-sdk:slim")]
    pub gcloud_image: String,
    /// GCP: defaultMode of the token volume (Go integer, `0440` is octal) [default: 0444
    /// without a pod fsGroup, 0440 with one, so non-root containers can read the token].
    #[arg(long, value_parser = flags::parse_go_int)]
    pub token_default_mode: Option<i64>,
    /// GCP: resources of the gcloud setup init container, as JSON.
    #[arg(long, default_value = "")]
    pub setup_container_resources: String,
    /// GCP (cco profile): default token lifetime in seconds.
    #[arg(long)]
    pub gcp_token_expiration: Option<i64>,

    // ---- logging: klog (EKS), zap (GCP) and ours ----
    /// klog: verbosity (0 info, 2–4 debug, 5+ trace).
    #[arg(long = "v")]
    pub v: Option<u32>,
    /// klog: accepted, no effect.
    #[arg(long)]
    pub vmodule: Option<String>,
    /// klog: log to standard error instead of files.
    #[arg(long, default_value = "true", value_parser = parse_go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub logtostderr: bool,
    /// klog: log to standard error as well as files.
    #[arg(long, default_value = "false", value_parser = parse_go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub alsologtostderr: bool,
    /// klog: directory for the log file (with --logtostderr=false).
    #[arg(long = "log_dir")]
    pub log_dir: Option<PathBuf>,
    /// klog: log file (with --logtostderr=false).
    #[arg(long = "log_file")]
    pub log_file: Option<PathBuf>,
    /// klog: accepted, no effect.
    #[arg(long = "log_file_max_size")]
    pub log_file_max_size: Option<u64>,
    /// klog: accepted, no effect.
    #[arg(long = "skip_headers", value_parser = parse_go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub skip_headers: Option<bool>,
    /// klog: accepted, no effect.
    #[arg(long = "skip_log_headers", value_parser = parse_go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub skip_log_headers: Option<bool>,
    /// klog: accepted, no effect.
    #[arg(long = "add_dir_header", value_parser = parse_go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub add_dir_header: Option<bool>,
    /// klog: accepted, no effect.
    #[arg(long = "one_output", value_parser = parse_go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub one_output: Option<bool>,
    /// klog: accepted, no effect.
    #[arg(long)]
    pub stderrthreshold: Option<String>,
    /// klog: accepted, no effect.
    #[arg(long = "log_backtrace_at")]
    pub log_backtrace_at: Option<String>,
    /// zap: development mode (console output, debug level) [gcp: true].
    #[arg(long, value_parser = parse_go_bool, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub zap_devel: Option<bool>,
    /// zap: `json` or `console`.
    #[arg(long)]
    pub zap_encoder: Option<String>,
    /// zap: debug, info, error, panic or a verbosity number.
    #[arg(long)]
    pub zap_log_level: Option<String>,
    /// zap: accepted, no effect.
    #[arg(long)]
    pub zap_stacktrace_level: Option<String>,
    /// zap: accepted, no effect.
    #[arg(long)]
    pub zap_time_encoding: Option<String>,
    /// Log as JSON lines [azure: true].
    #[arg(long, value_parser = parse_go_bool, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub log_json: Option<bool>,
}

/// Names of the boolean flags (they never take the next argument as their value).
pub const BOOL_FLAGS: &[&str] = &[
    "disable-cert-rotation",
    "in-cluster",
    "watch-config-map",
    "compose-role-arn",
    "enable-debugging-handlers",
    "sts-regional-endpoint",
    "logtostderr",
    "alsologtostderr",
    "skip_headers",
    "skip_log_headers",
    "add_dir_header",
    "one_output",
    "zap-devel",
    "log-json",
    "version",
];

/// A flag combination that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Args {
    /// Parse a Go-style argument list; `Err` is clap's error (usage, `--help`, `--version`
    /// included), ready for `exit()`.
    pub fn try_parse_go(
        argv: impl IntoIterator<Item = String>,
    ) -> Result<(Self, Vec<String>), clap::Error> {
        let normalized = flags::normalize(argv, |n| BOOL_FLAGS.contains(&n)).map_err(|e| {
            clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{e}\n"))
        })?;
        let args: Vec<String> = normalized
            .args
            .into_iter()
            .filter_map(|a| match a.strip_prefix("--version=") {
                Some(v) => parse_go_bool(v)
                    .map(|b| b.then(|| "--version".to_string()))
                    .unwrap_or(Some(a)),
                None => Some(a),
            })
            .collect();
        Ok((Self::try_parse_from(args)?, normalized.ignored))
    }

    /// Parse `std::env::args` (Go syntax), exiting on usage errors like the references do.
    pub fn parse_compat() -> (Self, Profile, Vec<String>) {
        let argv: Vec<String> = std::env::args().collect();
        let program = argv.first().cloned().unwrap_or_default();
        match Self::try_parse_go(argv) {
            Ok((args, ignored)) => {
                let profile = args
                    .profile
                    .unwrap_or_else(|| Profile::from_program(&program));
                (args, profile, ignored)
            }
            Err(e) => e.exit(),
        }
    }

    /// Handler configuration for the cco profile (tests, default).
    pub fn webhook_config(&self) -> WebhookConfig {
        match Settings::resolve(self, Profile::Cco, &|k| std::env::var(k).ok()) {
            Ok(s) => s.webhook,
            Err(_) => WebhookConfig::default(),
        }
    }
}

/// Everything the pure admission handler needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Clouds injected.
    pub clouds: BTreeSet<Cloud>,
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
    /// EKS Pod Identity injection settings.
    pub container_credentials: ContainerCredentials,
    /// `--compose-role-arn`: the instance's partition and account.
    pub compose_role_arn: Option<ComposeRoleArn>,
}

/// `--container-credentials-*` (EKS Pod Identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCredentials {
    /// Token audience.
    pub audience: String,
    /// Mount directory.
    pub mount_path: String,
    /// Volume name.
    pub volume_name: String,
    /// Token file name.
    pub token_path: String,
    /// AWS_CONTAINER_CREDENTIALS_FULL_URI.
    pub full_uri: String,
}

/// Where `--compose-role-arn` completes role names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeRoleArn {
    /// `aws`, `aws-cn`, `aws-us-gov`, …
    pub partition: String,
    /// Twelve-digit account id.
    pub account_id: String,
}

impl ComposeRoleArn {
    /// Partition of `region`, as the EKS webhook derives it.
    pub fn partition_of(region: &str) -> &'static str {
        if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else if region.starts_with("us-isob-") {
            "aws-iso-b"
        } else if region.starts_with("us-iso-") {
            "aws-iso"
        } else if region.starts_with("eusc-") {
            "aws-eusc"
        } else {
            "aws"
        }
    }
}

/// Azure settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureConfig {
    /// Tenant used when the ServiceAccount names none.
    pub tenant_id: Option<String>,
    /// Value of AZURE_AUTHORITY_HOST.
    pub authority_host: String,
    /// Audience of the projected token.
    pub audience: String,
    /// Image of the proxy sidecar (`PROXY_IMAGE`).
    pub proxy_image: String,
    /// Image of the proxy init container (`PROXY_INIT_IMAGE`).
    pub proxy_init_image: String,
    /// Log level passed to the proxy.
    pub proxy_log_level: String,
    /// The API server runs native sidecars (Kubernetes 1.32 and later).
    pub native_sidecar: bool,
    /// Custom token endpoint selection, when configured.
    pub custom_token_endpoint: Option<CustomTokenEndpoint>,
    /// Values for the custom token endpoint (environment variables of the same names).
    pub custom_env: CustomTokenEnv,
}

/// `--custom-token-endpoint-annotation-suffix` and `--custom-token-endpoint-audience`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomTokenEndpoint {
    /// Pod annotation `azure.workload.identity/use-<suffix>`.
    pub annotation: String,
    /// Token audience for those pods.
    pub audience: String,
}

/// `AZURE_KUBERNETES_*` environment of the webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomTokenEnv {
    /// AZURE_KUBERNETES_TOKEN_PROXY.
    pub token_proxy: String,
    /// AZURE_KUBERNETES_SNI_NAME.
    pub sni_name: String,
    /// AZURE_KUBERNETES_CA_DATA.
    pub ca_data: String,
    /// AZURE_KUBERNETES_CA_CONFIGMAP_NAME.
    pub ca_configmap_name: String,
    /// AZURE_KUBERNETES_CA_CTB_SIGNER_NAME.
    pub ca_ctb_signer_name: String,
    /// AZURE_KUBERNETES_CA_CTB_LABEL_SELECTOR, parsed.
    pub ca_ctb_label_selector: Option<serde_json::Value>,
}

/// GCP settings, defaults matching the GCP workload identity federation webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpConfig {
    /// Annotation domain, without trailing slash.
    pub annotation_prefix: String,
    /// Default audience of the projected token.
    pub audience: String,
    /// Default token lifetime in seconds.
    pub token_expiration: i64,
    /// CLOUDSDK_COMPUTE_REGION injected where unset (nothing when empty).
    pub default_region: String,
    /// Image of the gcloud setup init container.
    pub gcloud_image: String,
    /// defaultMode of the volumes (`None`: readable by non-root containers, see
    /// [`crate::token::default_mode`]).
    pub default_mode: Option<i64>,
    /// Resources of the gcloud setup init container.
    pub setup_container_resources: Option<serde_json::Value>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Args::parse_from(["cco-pod-identity-webhook"]).webhook_config()
    }
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// PEM files, reloaded when they change.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// A CertificateSigningRequest, the result kept in a Secret (EKS `--in-cluster`).
    Csr(crate::csr::CsrConfig),
    /// Generated and rotated CA and pair in a Secret, CA injected into the webhook configuration
    /// (azure-workload-identity without `--disable-cert-rotation`).
    Rotate(crate::certrotate::RotatorConfig),
}

/// Settings of the servers and the ServiceAccount lookup.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// TLS admission listener.
    pub webhook_addr: SocketAddr,
    /// Plain-HTTP `/metrics` listener.
    pub metrics_addr: Option<SocketAddr>,
    /// Plain-HTTP `/healthz` + `/readyz` listener (controller-runtime style).
    pub health_addr: Option<SocketAddr>,
    /// Serving certificate.
    pub certs: CertSource,
    /// Minimum TLS version.
    pub tls_min_version: TlsVersion,
    /// TLS 1.2 cipher suites (rustls names); `None` = all.
    pub tls12_cipher_suites: Option<Vec<rustls::CipherSuite>>,
    /// Bounded wait for a ServiceAccount not visible yet.
    pub grace_period: Duration,
    /// ServiceAccount and ConfigMap cache resync (`--resync-period`; zero: none).
    pub resync_period: Duration,
    /// Kubeconfig path.
    pub kubeconfig: Option<PathBuf>,
    /// API server URL override.
    pub kube_api: Option<String>,
    /// Debug endpoints.
    pub debugging_handlers: bool,
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// tracing filter directive (`info`, `debug`, …).
    pub level: String,
    /// JSON lines instead of text.
    pub json: bool,
    /// Log file (klog `--logtostderr=false` with `--log_file`/`--log_dir`).
    pub file: Option<PathBuf>,
    /// Also to standard error when writing a file.
    pub also_stderr: bool,
}

/// Everything [`Args`] resolve to under a profile.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The profile used.
    pub profile: Profile,
    /// Handler configuration.
    pub webhook: WebhookConfig,
    /// Listeners, certificates, Kubernetes access.
    pub server: ServerConfig,
    /// Logging.
    pub log: LogConfig,
    /// Things accepted but ignored, worth a warning at startup.
    pub notices: Vec<String>,
    /// `--watch-container-credentials-config` (rebased).
    pub container_credentials_config: Option<PathBuf>,
    /// `--watch-config-map`: the namespace of the ConfigMap.
    pub config_map_namespace: Option<String>,
    /// `--compose-role-arn`: read the partition and account from EC2 instance metadata at
    /// startup (see [`crate::imds`]).
    pub compose_role_arn: bool,
}

/// Accepted minimum TLS protocol versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 are accepted.
    Tls12,
    /// Only TLS 1.3 is accepted.
    Tls13,
}

#[path = "config_resolve.rs"]
mod resolve;

pub use resolve::{azure_authority_host, rebase, AZWI_REGISTRY, AZWI_VERSION};

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
