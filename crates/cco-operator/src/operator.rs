//! Wiring: leader election, caches, the CredentialsRequest controller, the root-secret annotator, the
//! ClusterOperator/metrics loop, the metrics endpoint and graceful shutdown.
//!
//! Everything stops when the shutdown future resolves or leadership is lost: the controller finishes
//! the reconciles in flight, the loops exit, and the Lease is released.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cco_api::CredentialsRequest;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::Store;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, ResourceExt};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cluster::{
    desired_root_annotation, effective_mode, CredentialsMode, MODE_ANNOTATION,
    ROOT_SECRET_NAMESPACE,
};
use crate::co_merge::merge_worst;
use crate::controller::{error_policy, now_string, reconcile, Context};
use crate::leader::{Elector, LeaseConfig};
use crate::metrics::Metrics;
use crate::status::{metric_counts, operator_conditions, write_cluster_operator};
use crate::{state, Settings};

/// Why the operator stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("leadership lost")]
    LeadershipLost,
    #[error("cluster caches never became ready")]
    CachesNotReady,
    #[error(transparent)]
    Metrics(#[from] crate::metrics_server::MetricsServerError),
}

fn wait_for(rx: &watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|v| *v).await;
    }
}

/// Runs the operator with `client` until `shutdown` resolves.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    {
        let tx = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            info!("shutdown requested");
            let _ = tx.send(true);
        });
    }

    if let Some(addr) = settings.metrics_addr {
        let stop = stop_rx.clone();
        crate::metrics_server::start(
            client.clone(),
            addr,
            &settings.metrics_cert,
            settings.metrics_tls.clone(),
            metrics.clone(),
            futures::FutureExt::shared(Box::pin(wait_for(&stop))),
        )
        .await?;
    }

    let elector = settings.leader_election.then(|| {
        Elector::new(
            client.clone(),
            LeaseConfig {
                namespace: settings.lease_namespace.clone(),
                name: settings.lease_name.clone(),
                identity: settings.identity.clone(),
                lease_duration: settings.lease_duration,
                retry: settings.lease_retry,
            },
        )
    });
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(e) = &elector {
        tokio::select! {
            _ = e.acquire() => {}
            _ = wait_for(&stop_rx) => return Ok(()),
        }
        let (e, tx, lost, stop) = (e.clone(), stop_tx.clone(), lost.clone(), wait_for(&stop_rx));
        tokio::spawn(async move {
            tokio::select! {
                _ = e.hold() => {
                    lost.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _ = tx.send(true);
                }
                _ = stop => {}
            }
        });
    }

    let (cluster, driver, changes) = state::start(&client, wait_for(&stop_rx));
    tokio::spawn(driver);
    let (config_watch, config_driver, config_changes) =
        crate::config_watch::start(&client, wait_for(&stop_rx));
    tokio::spawn(config_driver);
    let (targets, target_changes, targets_driver) = crate::targets::Targets::start(&client);
    {
        let stop = wait_for(&stop_rx);
        tokio::spawn(async move {
            tokio::select! {
                _ = targets_driver => {}
                _ = stop => {}
            }
        });
    }
    tokio::select! {
        r = async {
            cluster.wait_ready().await?;
            targets.wait_ready().await
        } => r.map_err(|_| RunError::CachesNotReady)?,
        _ = wait_for(&stop_rx) => return Ok(()),
    }
    info!("cluster caches ready");

    let (readonly, readonly_driver) = crate::readonly::ReadOnly::start(&client);
    {
        let stop = wait_for(&stop_rx);
        tokio::spawn(async move {
            tokio::select! {
                _ = readonly_driver => {}
                _ = stop => {}
            }
        });
    }
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            settings.clone(),
            cluster,
            targets,
            readonly,
            metrics,
        )
        .with_config(config_watch.clone()),
    );
    let crs: Api<CredentialsRequest> = Api::all(client.clone());
    // The request cache, as `Controller::new` builds it, plus a readiness signal any number of
    // tasks can wait on: the store's own readiness wakes only one of several waiters (kube-runtime
    // 5's `DelayedInit`), and the controller already waits on it before its first reconcile.
    let (store, writer) = kube::runtime::reflector::store();
    let (requests_ready_tx, requests_ready) = watch::channel(false);
    let request_events = kube::runtime::reflector(writer, watcher(crs, watcher::Config::default()))
        .inspect(move |e| {
            if matches!(e, Ok(watcher::Event::InitDone)) {
                let _ = requests_ready_tx.send(true);
            }
        })
        .applied_objects();
    let controller = Controller::for_stream(request_events, store.clone()).with_config(
        kube::runtime::controller::Config::default().concurrency(settings.concurrency),
    );

    // Classify and annotate the root credential before any request is processed, so that an
    // annotation write never looks like a credential change to a request synced moments before.
    annotate_root(&ctx, &store).await;

    let trigger = {
        let rx = changes.clone();
        futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })
    };
    let ns_store = store.clone();
    let (graceful_tx, graceful_rx) = futures::channel::oneshot::channel::<()>();
    {
        let stop = wait_for(&stop_rx);
        tokio::spawn(async move {
            stop.await;
            let _ = graceful_tx.send(());
        });
    }
    let running = controller
        .watches_stream(target_changes.secrets, |s| {
            crate::targets::owner_ref(&s.metadata)
        })
        .watches_stream(target_changes.namespaces, move |ns| {
            crate::targets::Targets::waiting_for(&ns_store, &ns.name_any())
        })
        .reconcile_all_on(trigger)
        .graceful_shutdown_on(futures::FutureExt::map(graceful_rx, |_| ()))
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|res| async move {
            if let Err(error) = res {
                tracing::debug!(%error, "controller event");
            }
        });

    let backfill = {
        let (client, retry, stop) = (client.clone(), settings.retry, wait_for(&stop_rx));
        tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                match crate::targets::backfill_labels(&client).await {
                    Ok(n) => {
                        if n > 0 {
                            info!(
                                count = n,
                                "labelled target secrets written before labelling"
                            );
                        }
                        return;
                    }
                    Err(error) => warn!(%error, "could not label older target secrets; retrying"),
                }
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(retry) => {}
                }
            }
        })
    };
    let annotator = tokio::spawn(annotator_loop(
        ctx.clone(),
        store.clone(),
        changes.clone(),
        wait_for(&stop_rx),
    ));
    let log_level = settings.log_control.clone().map(|control| {
        tokio::spawn(crate::loglevel::run(
            ctx.state.clone(),
            control,
            changes.clone(),
            wait_for(&stop_rx),
        ))
    });
    let webhook_status = Arc::new(crate::podidentity::controller::WebhookStatus::new(
        settings.webhook_degraded_grace,
    ));
    let webhook = tokio::spawn(crate::podidentity::controller::run(
        ctx.clone(),
        config_watch.clone(),
        webhook_status.clone(),
        changes.clone(),
        config_changes.clone(),
        wait_for(&stop_rx),
    ));
    let status = tokio::spawn(status_loop(
        ctx.clone(),
        store.clone(),
        StatusSources {
            requests_ready,
            config: config_watch.clone(),
            config_changes: config_changes.clone(),
            webhook: webhook_status,
        },
        wait_for(&stop_rx),
    ));
    info!("controllers started");
    running.await;
    let _ = stop_tx.send(true);
    let _ = annotator.await;
    let _ = status.await;
    let _ = webhook.await;
    if let Some(l) = log_level {
        let _ = l.await;
    }
    backfill.abort();
    if let Some(e) = &elector {
        if !lost.load(std::sync::atomic::Ordering::SeqCst) {
            e.release().await;
        }
    }
    info!("operator stopped");
    if lost.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(RunError::LeadershipLost);
    }
    Ok(())
}

/// The reconcilers' context with every cache running but no controller: for tests and tools that
/// call [`reconcile`](crate::controller::reconcile) themselves (e.g. with a stale version of a
/// request, as a lagging cache would hand it over). The caches stop when `stop` resolves.
pub async fn standalone_context(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Arc<Context>, RunError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = stop_tx.send(true);
    });
    let (cluster, driver, _changes) = state::start(&client, wait_for(&stop_rx));
    tokio::spawn(driver);
    let (targets, _changes, targets_driver) = crate::targets::Targets::start(&client);
    let (readonly, readonly_driver) = crate::readonly::ReadOnly::start(&client);
    let stop = wait_for(&stop_rx);
    tokio::spawn(async move {
        let drain = futures::future::join(targets_driver, readonly_driver);
        tokio::select! {
            _ = drain => {}
            _ = stop => {}
        }
    });
    cluster
        .wait_ready()
        .await
        .map_err(|_| RunError::CachesNotReady)?;
    targets
        .wait_ready()
        .await
        .map_err(|_| RunError::CachesNotReady)?;
    Ok(Arc::new(Context::new(
        client, settings, cluster, targets, readonly, metrics,
    )))
}

/// Sets the root Secret's mode annotation to what the mode and (in the default mode on AWS) the
/// credential's permissions call for.
async fn annotate_root(ctx: &Context, store: &Store<CredentialsRequest>) {
    let start = Instant::now();
    let view = ctx.state.view();
    let Some(root) = ctx.state.root(&view) else {
        return;
    };
    if view.cloud() == Some(cco_api::Cloud::OpenStack)
        && matches!(
            view.mode,
            CredentialsMode::Default | CredentialsMode::Passthrough
        )
    {
        crate::openstack::sync_root(&ctx.client, &root).await;
    }
    let mut capability = None;
    let detect = matches!(
        view.cloud(),
        Some(cco_api::Cloud::Aws) | Some(cco_api::Cloud::Gcp)
    );
    if view.mode == CredentialsMode::Default && detect {
        let fp = root.fingerprint();
        let cached = ctx
            .capability
            .lock()
            .await
            .as_ref()
            .filter(|(k, _)| *k == fp)
            .map(|(_, c)| *c);
        capability = match cached {
            Some(c) => Some(c),
            None => {
                let detected = if view.cloud() == Some(cco_api::Cloud::Gcp) {
                    crate::mint_gcp::detect_capability(ctx, &root, &store.state()).await
                } else {
                    crate::mint_exec::detect_capability(ctx, &view, &root, &store.state()).await
                };
                match detected {
                    Ok(c) => {
                        info!(capability = ?c, "classified the root credential");
                        *ctx.capability.lock().await = Some((fp, c));
                        Some(c)
                    }
                    Err(error) => {
                        warn!(%error, "could not classify the root credential");
                        None
                    }
                }
            }
        };
    }
    if let Some(want) = desired_root_annotation(&view, capability) {
        if root.mode_annotation.as_deref() != Some(want) {
            let patch = serde_json::json!({"metadata": {"annotations": {MODE_ANNOTATION: want}}});
            match Api::<Secret>::namespaced(ctx.client.clone(), ROOT_SECRET_NAMESPACE)
                .patch(&root.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => info!(secret = %root.name, mode = want, "annotated root credential"),
                Err(error) => {
                    warn!(%error, secret = %root.name, "could not annotate root credential")
                }
            }
        }
    }
    ctx.metrics
        .observe_reconcile("secretannotator", start.elapsed().as_secs_f64());
}

async fn annotator_loop(
    ctx: Arc<Context>,
    store: Store<CredentialsRequest>,
    mut changes: watch::Receiver<u64>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            r = changes.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(ctx.settings.resync) => {}
        }
        annotate_root(&ctx, &store).await;
    }
}

/// What the ClusterOperator status is computed from besides the requests and the cluster view.
struct StatusSources {
    /// True once the request cache has listed.
    requests_ready: watch::Receiver<bool>,
    config: crate::config_watch::ConfigWatch,
    config_changes: watch::Receiver<u64>,
    webhook: Arc<crate::podidentity::controller::WebhookStatus>,
}

/// Recomputes the ClusterOperator and metrics after reconciles (debounced) and periodically.
async fn status_loop(
    ctx: Arc<Context>,
    store: Store<CredentialsRequest>,
    mut sources: StatusSources,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    if tokio::time::timeout(
        Duration::from_secs(5),
        sources.requests_ready.wait_for(|ready| *ready),
    )
    .await
    .is_err()
    {
        tracing::debug!("request cache not ready after 5s; computing status anyway");
    }
    if tokio::time::timeout(Duration::from_secs(2), sources.config.wait_ready())
        .await
        .is_err()
    {
        tracing::debug!(
            "ClusterVersion/APIServer caches not ready after 2s; computing status anyway"
        );
    }
    // What was last written, and when: an unchanged status is not read back and rewritten until
    // the status interval has passed (then the object is read and repaired if someone changed it).
    #[allow(clippy::type_complexity)]
    let mut written: Option<(
        Vec<crate::status::CoCondition>,
        Vec<crate::openshift::RelatedObject>,
        Instant,
    )> = None;
    loop {
        let start = Instant::now();
        let view = ctx.state.view();
        let root = ctx.state.root(&view);
        let effective = effective_mode(&view, root.as_ref());
        let crs = store.state();
        let clock = crate::status::Clock::now(ctx.settings.credentials_degraded_grace);
        let conds = operator_conditions(&effective, &view, &crs, &clock);
        // A failure still within its grace period: recompute when it starts to count.
        let mut wake = crate::status::next_failure_deadline(&effective, &view, &crs, &clock)
            .and_then(|t| Duration::try_from(t.duration_since(clock.now)).ok())
            .map_or(ctx.settings.status_interval, |d| {
                d.saturating_add(Duration::from_secs(1))
                    .min(ctx.settings.status_interval)
            });
        let upgradeable =
            crate::upgrade::current(&ctx.state, &sources.config, &view, root.is_some());
        let conds = merge_worst(conds, upgradeable.as_slice());
        let conds = merge_worst(conds, &sources.webhook.conditions());
        let mut related = crate::status::request_related(&crs);
        related.extend(sources.webhook.related_objects());
        let (by_cloud, by_cond) = metric_counts(&crs, view.mode == CredentialsMode::Manual);
        ctx.metrics.set_counts(&by_cloud, &by_cond);
        ctx.metrics.set_mode(effective.metric_label(root.is_some()));
        let unchanged = written.as_ref().is_some_and(|(c, r, at)| {
            *c == conds && *r == related && at.elapsed() < ctx.settings.status_interval
        });
        if !unchanged {
            let upgrading = sources
                .config
                .cluster_version()
                .is_some_and(|cv| cv.is_progressing());
            match write_cluster_operator(
                &ctx.client,
                &conds,
                &related,
                &ctx.settings.version,
                upgrading,
                &now_string(),
            )
            .await
            {
                Ok((changed, version_changed)) => {
                    if changed {
                        info!(conditions = ?conds.iter().map(|c| (c.type_, c.status, c.reason)).collect::<Vec<_>>(), "updated ClusterOperator");
                    }
                    // A version change reports Progressing for this write only: recompute soon.
                    written = (!version_changed).then(|| (conds, related, Instant::now()));
                    if version_changed {
                        wake = wake.min(Duration::from_secs(1));
                    }
                }
                Err(error) => warn!(%error, "could not update ClusterOperator"),
            }
        }
        ctx.metrics
            .observe_reconcile("status", start.elapsed().as_secs_f64());
        tokio::select! {
            _ = &mut stop => return,
            _ = ctx.status_changed.notified() => tokio::time::sleep(Duration::from_millis(500)).await,
            r = sources.config_changes.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(wake) => {}
        }
    }
}
