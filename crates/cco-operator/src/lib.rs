//! The cloud-credential-operator: turns CredentialsRequests into Secrets.
//!
//! Data model. A `CredentialsRequest` (namespaced) asks for a credential with given permissions, to
//! be written to `spec.secretRef`. How the Secret is produced depends on cluster-wide state
//! ([`cluster::ClusterView`]): the credentials mode of CloudCredential `cluster` (Mint, Passthrough,
//! Manual, or default), the platform of Infrastructure `cluster`, the service-account issuer of
//! Authentication `cluster` (Manual plus an issuer is the short-term-token mode), and the root
//! credential in `kube-system` with its `cloudcredential.openshift.io/mode` annotation.
//!
//! Layout, from pure to effectful:
//! - [`cluster`], [`plan`], [`mint_plan`], [`conditions`], [`status`] (its pure half): plain data in,
//!   plain data out, unit-tested without a cluster;
//! - [`controller`], [`mint_exec`] and [`mint_gcp`] execute plans against the API server, AWS and
//!   GCP;
//! - [`state`] caches cluster-wide objects, [`targets`] the target namespaces and Secrets and the
//!   operator's own writes, [`readonly`] the operator's read-only credentials, [`leader`] holds the
//!   Lease, [`metrics`] keeps the Prometheus metrics and [`metrics_server`] serves them over
//!   authenticated HTTPS, [`operator`] wires it all and handles shutdown;
//! - [`upgrade`] (the Upgradeable gate, pure) reads ClusterVersion and APIServer through
//!   [`config_watch`] ([`clusterconfig`] types); [`co_merge`] folds such extra ClusterOperator
//!   conditions into the request conditions as the reference's status controller does;
//! - [`podidentity`] deploys and keeps the pod identity webhook, and reports its health;
//! - [`loglevel`] follows CloudCredential `spec.logLevel` without a restart;
//! - [`render`] plans and writes the installer's bootstrap manifests (`render` command).

pub mod cluster;
pub mod clusterconfig;
pub mod co_merge;
pub mod conditions;
pub mod config_watch;
pub mod controller;
pub mod leader;
pub mod loglevel;
pub mod metrics;
pub mod metrics_server;
pub mod mint_exec;
pub mod mint_gcp;
pub mod mint_plan;
pub mod openshift;
pub mod openstack;
pub mod operator;
pub mod plan;
pub mod podidentity;
pub mod readonly;
pub mod render;
pub mod state;
pub mod status;
pub mod targets;
pub mod upgrade;

use std::net::SocketAddr;
use std::time::Duration;

/// Operator settings (the binary fills them from flags).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where `/metrics` is served (HTTPS); `None` disables the endpoint.
    pub metrics_addr: Option<SocketAddr>,
    /// The metrics endpoint's serving certificate.
    pub metrics_cert: metrics_server::ServingCert,
    /// Fixed TLS settings for the metrics endpoint (`--tls-min-version`/`--tls-cipher-suites`);
    /// `None`: the APIServer `cluster` TLS profile.
    pub metrics_tls: Option<podidentity::tls::TlsArgs>,
    pub leader_election: bool,
    pub lease_namespace: String,
    pub lease_name: String,
    /// This replica's identity in the Lease.
    pub identity: String,
    pub lease_duration: Duration,
    pub lease_retry: Duration,
    /// Requeue after a successful reconcile (periodic resync: cloud state drifts).
    pub resync: Duration,
    /// A provisioned request is fully re-synced at least this often.
    pub sync_period: Duration,
    /// Requeue after a failed provisioning.
    pub retry: Duration,
    /// ClusterOperator recomputation without events.
    pub status_interval: Duration,
    /// Concurrent reconciles.
    pub concurrency: u16,
    /// IAM/STS endpoint override (an emulator); `None`: AWS.
    pub aws_endpoint: Option<String>,
    /// Endpoint for `iam:SimulatePrincipalPolicy` only; `None`: same as `aws_endpoint`.
    pub aws_simulate_endpoint: Option<String>,
    /// GCP IAM endpoint override (a fake); `None`: `GCP_IAM_ENDPOINT` or Google.
    pub gcp_iam_endpoint: Option<String>,
    /// GCP Resource Manager endpoint override; `None`: `GCP_RESOURCEMANAGER_ENDPOINT` or Google.
    pub gcp_resource_manager_endpoint: Option<String>,
    /// Version reported on the ClusterOperator.
    pub version: String,
    /// Pod identity webhook images (`*_POD_IDENTITY_WEBHOOK_IMAGE`); none: no webhook.
    pub webhook_images: podidentity::WebhookImages,
    /// How long the webhook may be unavailable (or failing to apply) before Degraded.
    pub webhook_degraded_grace: Duration,
    /// How long a request's failure condition must be true before it counts toward Degraded.
    pub credentials_degraded_grace: Duration,
    /// Reloads the log filter when CloudCredential `spec.logLevel` changes; `None`: fixed.
    pub log_control: Option<loglevel::LogControl>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            metrics_addr: None,
            metrics_cert: metrics_server::ServingCert::SelfSigned,
            metrics_tls: None,
            leader_election: true,
            lease_namespace: status::OPERATOR_NAMESPACE.to_string(),
            lease_name: "cloud-credential-operator-leader".to_string(),
            identity: format!("cloud-credential-operator-{}", std::process::id()),
            lease_duration: Duration::from_secs(15),
            lease_retry: Duration::from_secs(2),
            resync: Duration::from_secs(600),
            sync_period: Duration::from_secs(3600),
            retry: Duration::from_secs(30),
            status_interval: Duration::from_secs(60),
            concurrency: 16,
            aws_endpoint: None,
            aws_simulate_endpoint: None,
            gcp_iam_endpoint: None,
            gcp_resource_manager_endpoint: None,
            version: env!("CARGO_PKG_VERSION").to_string(),
            webhook_images: podidentity::WebhookImages::default(),
            webhook_degraded_grace: Duration::from_secs(300),
            credentials_degraded_grace: status::FAILURE_GRACE,
            log_control: None,
        }
    }
}

/// Installs the aws-lc-rs rustls provider as the process default (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
