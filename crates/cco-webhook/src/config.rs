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

fn parse_tls_version(s: &str, notices: &mut Vec<String>) -> Result<TlsVersion, ConfigError> {
    match s.trim() {
        "1.2" | "VersionTLS12" => Ok(TlsVersion::Tls12),
        "1.3" | "VersionTLS13" => Ok(TlsVersion::Tls13),
        "1.0" | "1.1" | "VersionTLS10" | "VersionTLS11" => {
            notices.push(format!(
                "--tls-min-version={s}: TLS 1.0 and 1.1 are not offered; serving TLS 1.2 and 1.3"
            ));
            Ok(TlsVersion::Tls12)
        }
        other => Err(ConfigError(format!(
            "--tls-min-version={other:?} is not a TLS version; use 1.2, 1.3, VersionTLS12 or VersionTLS13"
        ))),
    }
}

/// The Azure authority host of an `AZURE_ENVIRONMENT` name (go-autorest's environments).
pub fn azure_authority_host(environment: &str) -> Result<&'static str, ConfigError> {
    match environment.trim().to_ascii_uppercase().as_str() {
        "" | "AZUREPUBLICCLOUD" | "AZURECLOUD" => Ok("https://login.microsoftonline.com/"),
        "AZURECHINACLOUD" => Ok("https://login.chinacloudapi.cn/"),
        "AZUREUSGOVERNMENTCLOUD" | "AZUREUSGOVERNMENT" => Ok("https://login.microsoftonline.us/"),
        "AZUREGERMANCLOUD" => Ok("https://login.microsoftonline.de/"),
        _ => Err(ConfigError(format!(
            "AZURE_ENVIRONMENT={environment:?} is not a known Azure cloud; use AzurePublicCloud, \
             AzureChinaCloud or AzureUSGovernmentCloud"
        ))),
    }
}

/// Registry and version of azure-workload-identity's proxy images (v1.6 release defaults).
pub const AZWI_REGISTRY: &str = "mcr.microsoft.com/oss/azure/workload-identity";
/// See [`AZWI_REGISTRY`].
pub const AZWI_VERSION: &str = "v1.6.0";

fn azure_custom_endpoint(a: &Args) -> Result<Option<CustomTokenEndpoint>, ConfigError> {
    let suffix = a.custom_token_endpoint_annotation_suffix.as_str();
    let audience = a.custom_token_endpoint_audience.as_str();
    match (suffix.is_empty(), audience.is_empty()) {
        (true, true) => Ok(None),
        (true, false) => Err(ConfigError(
            "--custom-token-endpoint-annotation-suffix cannot be empty when \
             --custom-token-endpoint-audience is set"
                .into(),
        )),
        (false, true) => Err(ConfigError(
            "--custom-token-endpoint-audience cannot be empty when \
             --custom-token-endpoint-annotation-suffix is set"
                .into(),
        )),
        (false, false) => {
            if audience.eq_ignore_ascii_case(crate::azure::AUDIENCE) {
                return Err(ConfigError(format!(
                    "--custom-token-endpoint-audience cannot be the default audience {}",
                    crate::azure::AUDIENCE
                )));
            }
            let annotation = format!("azure.workload.identity/use-{suffix}");
            let name = annotation.rsplit('/').next().unwrap_or("");
            let valid = !name.is_empty()
                && name.len() <= 63
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !valid {
                return Err(ConfigError(format!(
                    "--custom-token-endpoint-annotation-suffix: annotation key {annotation:?} is not valid"
                )));
            }
            Ok(Some(CustomTokenEndpoint {
                annotation,
                audience: audience.to_string(),
            }))
        }
    }
}

fn azure_custom_env(env: &dyn Fn(&str) -> Option<String>) -> Result<CustomTokenEnv, ConfigError> {
    let get = |k: &str| env(k).unwrap_or_default();
    let c = CustomTokenEnv {
        token_proxy: get("AZURE_KUBERNETES_TOKEN_PROXY"),
        sni_name: get("AZURE_KUBERNETES_SNI_NAME"),
        ca_data: get("AZURE_KUBERNETES_CA_DATA"),
        ca_configmap_name: get("AZURE_KUBERNETES_CA_CONFIGMAP_NAME"),
        ca_ctb_signer_name: get("AZURE_KUBERNETES_CA_CTB_SIGNER_NAME"),
        ca_ctb_label_selector: match get("AZURE_KUBERNETES_CA_CTB_LABEL_SELECTOR").trim() {
            "" => None,
            s => Some(serde_json::from_str(s).map_err(|e| {
                ConfigError(format!(
                    "AZURE_KUBERNETES_CA_CTB_LABEL_SELECTOR is not a JSON label selector: {e}"
                ))
            })?),
        },
    };
    let set = [&c.ca_data, &c.ca_configmap_name, &c.ca_ctb_signer_name]
        .iter()
        .filter(|v| !v.is_empty())
        .count();
    if set > 1 {
        return Err(ConfigError(
            "only one of AZURE_KUBERNETES_CA_DATA, AZURE_KUBERNETES_CA_CONFIGMAP_NAME or \
             AZURE_KUBERNETES_CA_CTB_SIGNER_NAME can be set"
                .into(),
        ));
    }
    if c.ca_ctb_label_selector.is_some() && c.ca_ctb_signer_name.is_empty() {
        return Err(ConfigError(
            "AZURE_KUBERNETES_CA_CTB_SIGNER_NAME needs to be set when \
             AZURE_KUBERNETES_CA_CTB_LABEL_SELECTOR is set"
                .into(),
        ));
    }
    Ok(c)
}

/// Prefix an absolute path with `root` (see [`FS_ROOT_ENV`]).
pub fn rebase(root: Option<&Path>, path: PathBuf) -> PathBuf {
    match root {
        Some(root) if path.is_absolute() => {
            root.join(path.strip_prefix("/").unwrap_or(path.as_path()))
        }
        _ => path,
    }
}

fn listen(flag: &str, value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    flags::parse_go_listen_addr(value).map_err(|e| ConfigError(format!("--{flag}: {e}")))
}

impl Settings {
    /// Resolve `args` under `profile`; `env` reads environment variables (`TMPDIR`,
    /// `CCO_WEBHOOK_FS_ROOT`).
    pub fn resolve(
        a: &Args,
        profile: Profile,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut notices = Vec::new();
        let fs_root = env(FS_ROOT_ENV)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let fs_root = fs_root.as_deref();

        // ---- handler configuration ----
        let is_gcp = profile == Profile::Gcp;
        let aws_expiration = if is_gcp {
            86400
        } else {
            match a.token_expiration.as_deref() {
                None => 86400,
                Some(s) => s.trim().parse::<i64>().map_err(|_| {
                    ConfigError(format!(
                        "--token-expiration={s:?} is not a whole number of seconds"
                    ))
                })?,
            }
        };
        let gcp_expiration = match (
            is_gcp,
            a.token_expiration.as_deref(),
            a.gcp_token_expiration,
        ) {
            (true, Some(s), _) => i64::try_from(
                parse_go_duration(s)
                    .map_err(|e| ConfigError(format!("--token-expiration: {e}")))?
                    .as_secs(),
            )
            .unwrap_or(i64::MAX),
            (_, _, Some(secs)) => secs,
            _ => 86400,
        };
        let trim = |s: &str| s.trim_end_matches('/').to_string();
        let aws = AwsConfig {
            annotation_prefix: trim(
                a.annotation_prefix
                    .as_deref()
                    .filter(|_| !is_gcp)
                    .unwrap_or("eks.amazonaws.com"),
            ),
            token_audience: a
                .token_audience
                .clone()
                .filter(|_| !is_gcp)
                .unwrap_or_else(|| "sts.amazonaws.com".into()),
            token_mount_path: trim(&a.token_mount_path),
            token_expiration: aws_expiration.max(MIN_TOKEN_EXPIRATION),
            region: Some(a.aws_default_region.trim().to_string()).filter(|r| !r.is_empty()),
            sts_regional_endpoints: a.sts_regional_endpoint,
            container_credentials: ContainerCredentials {
                audience: a.container_credentials_audience.clone(),
                mount_path: trim(&a.container_credentials_token_mount_path),
                volume_name: a.container_credentials_token_volume_name.clone(),
                token_path: a.container_credentials_token_path.clone(),
                full_uri: a.container_credentials_full_uri.clone(),
            },
            compose_role_arn: None,
        };
        let authority_host = match &a.azure_authority_host {
            Some(h) => h.clone(),
            None => azure_authority_host(
                &a.azure_environment
                    .clone()
                    .or_else(|| env("AZURE_ENVIRONMENT"))
                    .unwrap_or_default(),
            )?
            .into(),
        };
        let tenant_id = a
            .azure_tenant_id
            .clone()
            .or_else(|| env("AZURE_TENANT_ID"))
            .filter(|t| !t.trim().is_empty());
        if profile == Profile::Azure && tenant_id.is_none() {
            return Err(ConfigError(
                "AZURE_TENANT_ID is required: set the environment variable (or --azure-tenant-id)"
                    .into(),
            ));
        }
        let custom_token_endpoint = azure_custom_endpoint(a)?;
        let custom_env = azure_custom_env(env)?;
        let image = |var: &str, name: &str| {
            env(var)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("{AZWI_REGISTRY}/{name}:{AZWI_VERSION}"))
        };
        let azure = AzureConfig {
            tenant_id,
            authority_host,
            audience: a
                .audience
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| crate::azure::AUDIENCE.into()),
            proxy_image: image("PROXY_IMAGE", "proxy"),
            proxy_init_image: image("PROXY_INIT_IMAGE", "proxy-init"),
            proxy_log_level: a.log_level.clone().unwrap_or_else(|| "info".into()),
            native_sidecar: true,
            custom_token_endpoint,
            custom_env,
        };
        let setup_container_resources = match a.setup_container_resources.trim() {
            "" => None,
            s => Some(serde_json::from_str(s).map_err(|e| {
                ConfigError(format!("--setup-container-resources is not JSON: {e}"))
            })?),
        };
        let gcp = GcpConfig {
            annotation_prefix: trim(
                a.annotation_prefix
                    .as_deref()
                    .filter(|_| is_gcp)
                    .unwrap_or("cloud.google.com"),
            ),
            audience: a
                .token_audience
                .clone()
                .filter(|_| is_gcp)
                .unwrap_or_else(|| "sts.googleapis.com".into()),
            token_expiration: gcp_expiration,
            default_region: a.gcp_default_region.clone(),
            gcloud_image: a.gcloud_image.clone(),
            default_mode: a.token_default_mode,
            setup_container_resources,
        };
        let webhook = WebhookConfig {
            clouds: profile.clouds(),
            aws,
            azure,
            gcp,
        };

        // ---- listeners ----
        let port = a.port.unwrap_or(match profile {
            Profile::Cco | Profile::Aws => 443,
            Profile::Azure | Profile::Gcp => 9443,
        });
        let webhook_addr = SocketAddr::new(a.bind_address, port);
        let aws_metrics = a.metrics_port.map(|p| SocketAddr::new(a.bind_address, p));
        let (metrics_addr, health_addr) = match profile {
            Profile::Cco | Profile::Aws => (
                Some(aws_metrics.unwrap_or(SocketAddr::new(a.bind_address, 9999))),
                match (&a.health_addr, &a.health_probe_bind_address) {
                    (Some(h), _) => listen("health-addr", h)?,
                    (None, Some(h)) => listen("health-probe-bind-address", h)?,
                    (None, None) => None,
                },
            ),
            Profile::Azure => (
                match (aws_metrics, &a.metrics_addr) {
                    (Some(m), _) => Some(m),
                    (None, m) => listen("metrics-addr", m.as_deref().unwrap_or(":8095"))?,
                },
                listen("health-addr", a.health_addr.as_deref().unwrap_or(":9440"))?,
            ),
            Profile::Gcp => (
                match (aws_metrics, &a.metrics_bind_address) {
                    (Some(m), _) => Some(m),
                    (None, m) => listen("metrics-bind-address", m.as_deref().unwrap_or(":8080"))?,
                },
                listen(
                    "health-probe-bind-address",
                    a.health_probe_bind_address.as_deref().unwrap_or(":8081"),
                )?,
            ),
        };
        if a.metrics_backend != "prometheus" {
            return Err(ConfigError(format!(
                "--metrics-backend={:?} is not supported; use prometheus",
                a.metrics_backend
            )));
        }

        // ---- certificates ----
        let cert_dir = match profile {
            Profile::Azure => a
                .webhook_cert_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("/certs")),
            Profile::Gcp => a.webhook_cert_dir.clone().unwrap_or_else(|| {
                PathBuf::from(
                    env("TMPDIR")
                        .filter(|t| !t.is_empty())
                        .unwrap_or("/tmp".into()),
                )
                .join("k8s-webhook-server/serving-certs")
            }),
            Profile::Cco | Profile::Aws => a
                .webhook_cert_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("/etc/webhook/certs")),
        };
        let in_cluster = a.in_cluster.unwrap_or(profile == Profile::Aws);
        let rotate = profile == Profile::Azure
            && !a.disable_cert_rotation
            && a.tls_cert.is_none()
            && a.tls_key.is_none();
        let certs = if rotate {
            let namespace = env("POD_NAMESPACE")
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| crate::certrotate::DEFAULT_NAMESPACE.into());
            CertSource::Rotate(crate::certrotate::RotatorConfig::azure(&namespace))
        } else if in_cluster {
            CertSource::Csr(crate::csr::CsrConfig {
                namespace: a.namespace.clone(),
                service_name: a.service_name.clone(),
                secret_name: a.tls_secret.clone(),
                signer_name: a.csr_signer_name.clone(),
            })
        } else {
            CertSource::Files {
                cert: rebase(
                    fs_root,
                    a.tls_cert
                        .clone()
                        .unwrap_or_else(|| cert_dir.join("tls.crt")),
                ),
                key: rebase(
                    fs_root,
                    a.tls_key
                        .clone()
                        .unwrap_or_else(|| cert_dir.join("tls.key")),
                ),
            }
        };
        let default_min = if profile == Profile::Azure {
            "1.3"
        } else {
            "1.2"
        };
        let tls_min_version = parse_tls_version(
            a.tls_min_version.as_deref().unwrap_or(default_min),
            &mut notices,
        )?;
        let tls12_cipher_suites = match a.tls_cipher_suites.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(list) => Some(crate::tls::cipher_suites_from_names(list, &mut notices)?),
        };
        for (set, name) in [
            (a.vmodule.is_some(), "--vmodule"),
            (a.log_backtrace_at.is_some(), "--log_backtrace_at"),
        ] {
            if set {
                notices.push(format!(
                    "{name} is accepted for compatibility and has no effect"
                ));
            }
        }

        let server = ServerConfig {
            webhook_addr,
            metrics_addr,
            health_addr,
            certs,
            tls_min_version,
            tls12_cipher_suites,
            grace_period: a.service_account_lookup_grace_period,
            resync_period: a.resync_period,
            kubeconfig: a.kubeconfig.clone(),
            kube_api: a.kube_api.clone().filter(|s| !s.is_empty()),
            debugging_handlers: a.enable_debugging_handlers,
        };
        let log = log_config(a, profile)?;
        Ok(Self {
            profile,
            webhook,
            server,
            log,
            notices,
            container_credentials_config: a
                .watch_container_credentials_config
                .clone()
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| rebase(fs_root, p)),
            config_map_namespace: a.watch_config_map.then(|| a.namespace.clone()),
            compose_role_arn: a.compose_role_arn,
        })
    }
}

fn log_config(a: &Args, profile: Profile) -> Result<LogConfig, ConfigError> {
    let mut level = match profile {
        Profile::Gcp if a.zap_devel.unwrap_or(true) => "debug",
        Profile::Azure => "warn",
        _ => "info",
    }
    .to_string();
    if let Some(v) = a.v {
        level = match v {
            0 | 1 => "info",
            2..=4 => "debug",
            _ => "trace",
        }
        .into();
    }
    if let Some(l) = &a.log_level {
        level = match l.as_str() {
            "" => "warn",
            "info" => "info",
            "debug" => "debug",
            "trace" | "all" => "trace",
            other => {
                return Err(ConfigError(format!(
                    "--log-level={other:?}: use info, debug, trace or all"
                )))
            }
        }
        .into();
    }
    if let Some(l) = &a.zap_log_level {
        level = match l.as_str() {
            "debug" => "debug".to_string(),
            "info" => "info".to_string(),
            "error" | "panic" | "dpanic" | "fatal" => "error".to_string(),
            n => match n.parse::<u32>() {
                Ok(0) => "info".to_string(),
                Ok(1..=4) => "debug".to_string(),
                Ok(_) => "trace".to_string(),
                Err(_) => {
                    return Err(ConfigError(format!(
                        "--zap-log-level={n:?}: use debug, info, error, panic or a number"
                    )))
                }
            },
        };
    }
    let json = match (a.log_json, a.zap_encoder.as_deref()) {
        (Some(j), _) => j,
        (None, Some("json")) => true,
        (None, Some("console")) => false,
        (None, Some(other)) => {
            return Err(ConfigError(format!(
                "--zap-encoder={other:?}: use json or console"
            )))
        }
        (None, None) => match profile {
            Profile::Azure => true,
            Profile::Gcp => !a.zap_devel.unwrap_or(true),
            _ => false,
        },
    };
    let file = if a.logtostderr {
        None
    } else {
        match (&a.log_file, &a.log_dir) {
            (Some(f), _) => Some(f.clone()),
            (None, Some(d)) => Some(d.join("cco-pod-identity-webhook.log")),
            (None, None) => None,
        }
    };
    Ok(LogConfig {
        level,
        json,
        also_stderr: file.is_none() || a.alsologtostderr,
        file,
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
