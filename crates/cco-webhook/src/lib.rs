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
pub mod certrotate;
pub mod config;
pub mod csr;
pub mod dynamic;
pub mod flags;
pub mod gcp;
pub mod handler;
pub mod imds;
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
use tracing::{info, warn};

pub use config::{Args, Profile, ServerConfig, Settings, WebhookConfig};
pub use handler::{admit, Decision, Outcome, Verdict};

/// Install aws-lc-rs as the process-wide rustls provider (no-op if one is installed already).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Build a Kubernetes client from `kubeconfig`, or the inferred configuration (`KUBECONFIG`,
/// ~/.kube/config, in-cluster), with the server URL replaced by `api_url` when given.
pub async fn kube_client(
    kubeconfig: Option<&std::path::Path>,
    api_url: Option<&str>,
) -> anyhow::Result<kube::Client> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .context("loading kubeconfig")?
        }
        None => kube::Config::infer()
            .await
            .context("inferring Kubernetes client configuration (set KUBECONFIG or --kubeconfig, or run in a pod)")?,
    };
    if let Some(url) = api_url {
        config.cluster_url = url
            .parse()
            .with_context(|| format!("--kube-api {url:?} is not a URL"))?;
    }
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

/// Run the webhook with resolved `settings` until SIGINT/SIGTERM.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    install_crypto_provider();
    for notice in &settings.notices {
        warn!("{notice}");
    }
    let server_cfg = settings.server;
    let mut webhook_cfg = settings.webhook;
    let metrics = Arc::new(metrics::Metrics::new());
    if settings.compose_role_arn {
        let compose = imds::compose_role_arn(&|k| std::env::var(k).ok())
            .await
            .context("--compose-role-arn")?;
        info!(partition = %compose.partition, account = %compose.account_id,
              "role names in role-arn annotations are completed with the instance's partition and account");
        webhook_cfg.aws.compose_role_arn = Some(compose);
    }
    let client = kube_client(
        server_cfg.kubeconfig.as_deref(),
        server_cfg.kube_api.as_deref(),
    )
    .await?;

    // azure-workload-identity injects the proxy as a native sidecar from Kubernetes 1.32 on.
    if webhook_cfg.clouds.contains(&patch::Cloud::Azure) {
        match client.apiserver_version().await {
            Ok(v) => {
                let minor: u32 = v
                    .minor
                    .trim_end_matches(|c: char| !c.is_ascii_digit())
                    .parse()
                    .unwrap_or(0);
                let major: u32 = v.major.parse().unwrap_or(0);
                webhook_cfg.azure.native_sidecar = major > 1 || (major == 1 && minor >= 32);
            }
            Err(e) => {
                warn!(error = %e, "reading the API server version failed; assuming native sidecars")
            }
        }
    }
    let dynamic = Arc::new(dynamic::Dynamic::default());
    if let Some(path) = &settings.container_credentials_config {
        if let Err(e) = dynamic.load_associations(path) {
            anyhow::bail!("--watch-container-credentials-config: {e}");
        }
        info!(file = %path.display(), "watching the container credentials config");
        tokio::spawn(dynamic::watch_associations(dynamic.clone(), path.clone()));
    }
    if let Some(namespace) = &settings.config_map_namespace {
        info!(%namespace, "watching ConfigMap pod-identity-webhook");
        tokio::spawn(dynamic::watch_config_map(
            dynamic.clone(),
            client.clone(),
            namespace.clone(),
            server_cfg.resync_period,
        ));
    }

    let (resolver, ready): (
        Arc<dyn rustls::server::ResolvesServerCert>,
        server::Readiness,
    ) = match &server_cfg.certs {
        config::CertSource::Files { cert, key } => {
            let resolver = tls::ReloadingCertResolver::new(cert, key, Duration::from_secs(1))
                .context("loading the serving certificate")?
                .with_metrics(metrics.clone());
            (Arc::new(resolver), Arc::new(|| true))
        }
        config::CertSource::Csr(csr_cfg) => {
            let shared = Arc::new(csr::SharedCert::default());
            tokio::spawn(csr::run(
                client.clone(),
                csr_cfg.clone(),
                shared.clone(),
                metrics.clone(),
            ));
            let probe = shared.clone();
            (shared, Arc::new(move || probe.ready()))
        }
        config::CertSource::Rotate(rotate_cfg) => {
            let shared = Arc::new(csr::SharedCert::default());
            let rotator = certrotate::Rotator::new(
                client.clone(),
                rotate_cfg.clone(),
                shared.clone(),
                metrics.clone(),
            );
            rotator
                .bootstrap()
                .await
                .context("setting up the serving certificate (--disable-cert-rotation=false)")?;
            info!(secret = %rotate_cfg.secret_name, namespace = %rotate_cfg.namespace,
                  configuration = %rotate_cfg.webhook_config_name,
                  "serving certificate generated and rotated in the Secret; CA bundle injected");
            let ready = rotator.ready();
            tokio::spawn(rotator.run());
            (shared, Arc::new(ready))
        }
    };
    let tls_config = Arc::new(tls::server_config(
        resolver,
        server_cfg.tls_min_version,
        server_cfg.tls12_cipher_suites.as_deref(),
    )?);

    let (service_accounts, watch) = sa_cache::KubeServiceAccounts::with_resync(
        client,
        server_cfg.grace_period,
        server_cfg.resync_period,
    );
    tokio::spawn(watch);

    let debug_cache: Option<server::DebugDump> = server_cfg.debugging_handlers.then(|| {
        let sa = service_accounts.clone();
        let aws = webhook_cfg.aws.clone();
        Arc::new(move || aws::cache_dump(&sa.snapshot(), &aws)) as server::DebugDump
    });
    let debug_clear: Option<server::DebugClear> = server_cfg.debugging_handlers.then(|| {
        let (sa, dynamic) = (service_accounts.clone(), dynamic.clone());
        Arc::new(move || {
            sa.clear();
            dynamic.clear_roles();
            info!("ServiceAccount cache cleared (debugging handler)");
        }) as server::DebugClear
    });
    let app = Arc::new(server::App {
        config: webhook_cfg,
        service_accounts,
        metrics: metrics.clone(),
        dynamic,
        debugging_handlers: server_cfg.debugging_handlers,
    });
    let bind = |addr: std::net::SocketAddr, what: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the {what} listener on {addr}"))
    };
    let tls_listener = bind(server_cfg.webhook_addr, "webhook").await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let wait = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    let mut tasks = vec![tokio::spawn(server::serve_tls(
        tls_listener,
        tls_config,
        app,
        wait(stop_rx.clone()),
    ))];
    let mut plain: Vec<(std::net::SocketAddr, server::PlainRoutes)> = Vec::new();
    if let Some(addr) = server_cfg.metrics_addr {
        plain.push((
            addr,
            server::PlainRoutes {
                metrics: Some(metrics.clone()),
                health: true,
                ready: ready.clone(),
                debug_cache: debug_cache.clone(),
                debug_clear: debug_clear.clone(),
            },
        ));
    }
    if let Some(addr) = server_cfg.health_addr {
        match plain.iter_mut().find(|(a, _)| *a == addr) {
            Some((_, routes)) => routes.health = true,
            None => plain.push((
                addr,
                server::PlainRoutes {
                    metrics: None,
                    health: true,
                    ready: ready.clone(),
                    debug_cache: None,
                    debug_clear: None,
                },
            )),
        }
    }
    for (addr, routes) in plain {
        let listener = bind(addr, "metrics/health").await?;
        tasks.push(tokio::spawn(server::serve_plain(
            listener,
            routes,
            wait(stop_rx.clone()),
        )));
    }
    info!(
        profile = ?settings.profile,
        webhook = %server_cfg.webhook_addr,
        metrics = ?server_cfg.metrics_addr,
        health = ?server_cfg.health_addr,
        "pod identity webhook listening"
    );
    shutdown_signal().await;
    info!("shutting down");
    let _ = stop_tx.send(());
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
