//! Pod identity webhook: one mutating admission webhook serving AWS, Azure and GCP workload
//! identity.
//!
//! A user annotates a ServiceAccount with a cloud identity (an IAM role ARN, an Azure client id,
//! a GCP workload identity provider); every pod created under that ServiceAccount gets a
//! projected ServiceAccount token with the right audience, a read-only mount of it and the
//! environment the cloud SDKs read. See `aws`, `azure` and `gcp` for each cloud's contract.
//!
//! # Data model
//!
//! - [`handler::admit`] is a pure function `(AdmissionRequest, WebhookConfig, ServiceAccount
//!   metadata) -> AdmissionResponse`. The pod stays raw JSON ([`pod::PodView`]) end to end.
//! - Each cloud planner turns the pod and ServiceAccount annotations into a
//!   [`handler::Decision`]: skip, refuse with a message, or an [`patch::Injection`] (volume,
//!   mount, env groups, owned annotations).
//! - [`patch::plan_patch`] diffs injections against the raw pod into `add` operations only for
//!   what is missing, so unknown fields survive and a second invocation is a no-op.
//! - [`sa_cache`] finds ServiceAccounts (watch cache, direct GET, bounded wait), [`tls`] serves
//!   a certificate reloaded from disk, [`server`] is the hyper layer, [`metrics`] the
//!   Prometheus registry.
//!
//! [`run`] wires it together for the `cco-pod-identity-webhook` binary.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod aws;
pub mod azure;
pub mod config;
pub mod gcp;
pub mod handler;
pub mod metrics;
pub mod patch;
pub mod pod;
pub mod sa_cache;
pub mod server;
pub mod tls;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::net::TcpListener;
use tracing::info;

pub use config::{Args, ServerConfig, WebhookConfig};
pub use handler::{admit, Decision, Outcome, Verdict};

/// Install aws-lc-rs as the process-wide rustls provider (no-op if one is installed already).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Build a Kubernetes client from `kubeconfig`, or the in-cluster/inferred configuration.
pub async fn kube_client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .context("loading kubeconfig")?
        }
        None => kube::Config::infer()
            .await
            .context("inferring Kubernetes client configuration")?,
    };
    kube::Client::try_from(config).context("building Kubernetes client")
}

/// Resolve when SIGINT or SIGTERM arrives.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Run the webhook until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    install_crypto_provider();
    let server_cfg = ServerConfig::from(&args);
    let config = args.webhook_config();
    let metrics = Arc::new(metrics::Metrics::new());

    let resolver = tls::ReloadingCertResolver::new(
        &server_cfg.tls_cert,
        &server_cfg.tls_key,
        Duration::from_secs(1),
    )
    .context("loading the serving certificate")?
    .with_metrics(metrics.clone());
    let tls_config = Arc::new(tls::server_config(
        Arc::new(resolver),
        server_cfg.tls_min_version,
    )?);

    let client = kube_client(server_cfg.kubeconfig.as_deref()).await?;
    let (service_accounts, watch) =
        sa_cache::KubeServiceAccounts::new(client, server_cfg.grace_period);
    tokio::spawn(watch);

    let app = Arc::new(server::App {
        config,
        service_accounts,
        metrics: metrics.clone(),
    });
    let tls_listener = TcpListener::bind((server_cfg.bind_address, server_cfg.port))
        .await
        .with_context(|| format!("binding TLS port {}", server_cfg.port))?;
    let metrics_listener = TcpListener::bind((server_cfg.bind_address, server_cfg.metrics_port))
        .await
        .with_context(|| format!("binding metrics port {}", server_cfg.metrics_port))?;
    info!(
        port = server_cfg.port,
        metrics_port = server_cfg.metrics_port,
        "pod identity webhook listening"
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let wait = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    let tls_task = tokio::spawn(server::serve_tls(
        tls_listener,
        tls_config,
        app,
        wait(stop_rx.clone()),
    ));
    let metrics_task = tokio::spawn(server::serve_metrics(
        metrics_listener,
        metrics,
        wait(stop_rx),
    ));
    shutdown_signal().await;
    info!("shutting down");
    let _ = stop_tx.send(());
    let _ = tokio::join!(tls_task, metrics_task);
    Ok(())
}
