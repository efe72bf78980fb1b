//! Keeps the webhook's objects as [`super::manifests::render`] says, and its health published.
//!
//! Each of the nine objects is watched (a `metadata.name=pod-identity-webhook` field selector, so
//! RBAC can name it). A reconcile runs on any change of them, of the cluster configuration
//! (platform, region, topology, TLS profile, the Azure Secret), on a retry timer after a failure,
//! and periodically. It server-side applies (field manager `cloud-credential-operator`, forced)
//! every object whose cached copy is not the one it last applied with the same content — so an
//! edit, a deletion or new content is repaired with one PATCH, and an unchanged cluster costs no
//! call — and deletes them all when the webhook is no longer wanted. Fields others own (the service
//! CA's `caBundle`, annotations) are left alone by the apply.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use sha2::Digest;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::health::{related_objects, Health};
use super::manifests::{render, Objects};
use super::{target, tls, Topology, Want, NAME};
use crate::config_watch::ConfigWatch;
use crate::controller::{Context, FIELD_MANAGER};
use crate::openshift::{ClusterOperator, RelatedObject};
use crate::status::{CoCondition, CLUSTER_OPERATOR, OPERATOR_NAMESPACE};

/// Controller label of the reconcile metrics.
pub const CONTROLLER: &str = "pod-identity";
/// Retry after a failed reconcile (the reference's).
const RETRY: Duration = Duration::from_secs(10);
/// Full re-check without events.
const PERIOD: Duration = Duration::from_secs(300);

/// The webhook's health, shared with the ClusterOperator status loop.
#[derive(Debug)]
pub struct WebhookStatus {
    health: Mutex<Health>,
    grace: Duration,
}

impl WebhookStatus {
    pub fn new(grace: Duration) -> WebhookStatus {
        WebhookStatus {
            health: Mutex::new(Health::default()),
            grace,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Health) -> T) -> T {
        let mut g = match self.health.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// Conditions to merge into the ClusterOperator now.
    pub fn conditions(&self) -> Vec<CoCondition> {
        self.with(|h| h.conditions(Timestamp::now(), self.grace))
    }

    /// The webhook's objects while it is deployed.
    pub fn related_objects(&self) -> Vec<RelatedObject> {
        if self.with(|h| h.deployed) {
            related_objects()
        } else {
            vec![]
        }
    }
}

/// One watched, applied object.
struct Slot {
    kind: &'static str,
    namespaced: bool,
    ar: ApiResource,
    api: Api<DynamicObject>,
    store: Store<DynamicObject>,
    /// Content hash and resourceVersion of our last successful apply.
    applied: Option<(String, String)>,
}

fn slot<K>(
    ctx: &Context,
    namespaced: bool,
) -> (Slot, impl futures::Stream<Item = ()> + Send + 'static)
where
    K: Resource<DynamicType = ()> + k8s_openapi::Resource,
{
    let ar = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = if namespaced {
        Api::namespaced_with(ctx.client.clone(), OPERATOR_NAMESPACE, &ar)
    } else {
        Api::all_with(ctx.client.clone(), &ar)
    };
    let writer = reflector::store::Writer::new(ar.clone());
    let store = writer.as_reader();
    let cfg = watcher::Config::default().fields(&format!("metadata.name={NAME}"));
    let kind = ar.kind.clone();
    let stream = reflector::reflector(writer, watcher(api.clone(), cfg))
        .default_backoff()
        .filter_map(move |ev| {
            let kind = kind.clone();
            async move {
                match ev {
                    Ok(watcher::Event::Apply(_))
                    | Ok(watcher::Event::Delete(_))
                    | Ok(watcher::Event::InitDone) => Some(()),
                    Ok(_) => None,
                    Err(error) => {
                        warn!(%error, %kind, "watch of a pod identity webhook object failed; retrying");
                        None
                    }
                }
            }
        });
    (
        Slot {
            kind: <K as k8s_openapi::Resource>::KIND,
            namespaced,
            ar,
            api,
            store,
            applied: None,
        },
        stream,
    )
}

impl Slot {
    fn current(&self) -> Option<Arc<DynamicObject>> {
        let r = ObjectRef::new_with(NAME, self.ar.clone());
        let r = if self.namespaced {
            r.within(OPERATOR_NAMESPACE)
        } else {
            r
        };
        self.store.get(&r)
    }

    async fn ensure(&mut self, want: &DynamicObject) -> Result<bool, String> {
        let body = serde_json::to_vec(want).map_err(|e| format!("{}: {e}", self.kind))?;
        let hash = hex::encode(sha2::Sha256::digest(&body));
        let current_rv = self
            .current()
            .and_then(|o| o.metadata.resource_version.clone());
        if let (Some((h, rv)), Some(cur)) = (&self.applied, &current_rv) {
            if *h == hash && rv == cur {
                return Ok(false);
            }
        }
        let out = self
            .api
            .patch(
                NAME,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(want),
            )
            .await
            .map_err(|e| format!("applying {} {NAME}: {e}", self.kind))?;
        let rv = out.metadata.resource_version.unwrap_or_default();
        let changed = current_rv.as_deref() != Some(rv.as_str());
        self.applied = Some((hash, rv));
        Ok(changed)
    }

    async fn remove(&mut self) -> Result<bool, String> {
        self.applied = None;
        if self.current().is_none() {
            return Ok(false);
        }
        match self.api.delete(NAME, &DeleteParams::background()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
            Err(e) => Err(format!("deleting {} {NAME}: {e}", self.kind)),
        }
    }
}

fn dynamic<T: serde::Serialize>(o: &T) -> Result<DynamicObject, String> {
    serde_json::to_value(o)
        .and_then(serde_json::from_value)
        .map_err(|e| e.to_string())
}

/// The rendered objects in slot order (see [`run`]); `None` for an object not wanted.
fn ordered(o: &Objects) -> Result<Vec<Option<DynamicObject>>, String> {
    Ok(vec![
        Some(dynamic(&o.service_account)?),
        Some(dynamic(&o.cluster_role)?),
        Some(dynamic(&o.cluster_role_binding)?),
        Some(dynamic(&o.role)?),
        Some(dynamic(&o.role_binding)?),
        Some(dynamic(&o.service)?),
        Some(dynamic(&o.deployment)?),
        Some(dynamic(&o.webhook)?),
        o.pdb.as_ref().map(dynamic).transpose()?,
    ])
}

/// Runs until `stop` resolves.
pub async fn run(
    ctx: Arc<Context>,
    config: ConfigWatch,
    status: Arc<WebhookStatus>,
    mut cluster_changes: watch::Receiver<u64>,
    mut config_changes: watch::Receiver<u64>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let (s0, e0) = slot::<ServiceAccount>(&ctx, true);
    let (s1, e1) = slot::<ClusterRole>(&ctx, false);
    let (s2, e2) = slot::<ClusterRoleBinding>(&ctx, false);
    let (s3, e3) = slot::<Role>(&ctx, true);
    let (s4, e4) = slot::<RoleBinding>(&ctx, true);
    let (s5, e5) = slot::<Service>(&ctx, true);
    let (s6, e6) = slot::<Deployment>(&ctx, true);
    let (s7, e7) = slot::<MutatingWebhookConfiguration>(&ctx, false);
    let (s8, e8) = slot::<PodDisruptionBudget>(&ctx, true);
    let mut slots = vec![s0, s1, s2, s3, s4, s5, s6, s7, s8];
    let mut events = futures::stream::select_all(vec![
        e0.boxed(),
        e1.boxed(),
        e2.boxed(),
        e3.boxed(),
        e4.boxed(),
        e5.boxed(),
        e6.boxed(),
        e7.boxed(),
        e8.boxed(),
    ]);
    // Wait for the initial lists (bounded: a missing permission must not stall the loop).
    let ready = async {
        for s in &slots {
            let _ = s.store.wait_until_ready().await;
        }
    };
    let mut drained = futures::StreamExt::take_until(&mut events, Box::pin(ready));
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while drained.next().await.is_some() {}
    })
    .await;
    drop(drained);
    let published = Api::<ClusterOperator>::all(ctx.client.clone())
        .get_opt(CLUSTER_OPERATOR)
        .await
        .ok()
        .flatten()
        .and_then(|c| c.status);
    status.with(|h| h.seed(published.as_ref(), status.grace));

    let mut last_reported: Option<Vec<CoCondition>> = None;
    let mut logged: HashMap<&'static str, ()> = HashMap::new();
    loop {
        let started = std::time::Instant::now();
        let failed = reconcile_once(&ctx, &config, &status, &mut slots, &mut logged).await;
        ctx.metrics
            .observe_reconcile(CONTROLLER, started.elapsed().as_secs_f64());
        let now_conditions = status.conditions();
        if last_reported.as_ref() != Some(&now_conditions) {
            ctx.status_changed.notify_one();
            last_reported = Some(now_conditions);
        }
        let deadline = status
            .with(|h| h.next_deadline(status.grace))
            .and_then(|t| Duration::try_from(t.duration_since(Timestamp::now())).ok())
            .map(|d| d + Duration::from_millis(100));
        let wait = if failed { RETRY } else { PERIOD };
        let wait = deadline.map_or(wait, |d| d.min(wait));
        tokio::select! {
            _ = &mut stop => return,
            ev = events.next() => if ev.is_none() { return },
            r = cluster_changes.changed() => if r.is_err() { return },
            r = config_changes.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(wait) => {}
        }
        // Debounce bursts (our own applies come back as events).
        let debounce = tokio::time::sleep(Duration::from_millis(200));
        tokio::pin!(debounce);
        loop {
            tokio::select! {
                _ = &mut debounce => break,
                ev = events.next() => if ev.is_none() { return },
            }
        }
    }
}

/// One pass; returns whether it failed (to retry sooner).
async fn reconcile_once(
    ctx: &Context,
    config: &ConfigWatch,
    status: &WebhookStatus,
    slots: &mut [Slot],
    logged: &mut HashMap<&'static str, ()>,
) -> bool {
    let view = ctx.state.view();
    let infra = ctx.state.infrastructure();
    let want = target(
        &view,
        &Topology::from_infrastructure(infra.as_deref()),
        &ctx.settings.webhook_images,
        config.azure_tenant_id_present(),
        tls::webhook_tls_args(config.apiserver().as_deref()),
    );
    let deployment_now = |slots: &[Slot]| {
        slots[6]
            .current()
            .and_then(|d| serde_json::to_value(d.as_ref()).ok())
            .and_then(|v| serde_json::from_value::<Deployment>(v).ok())
    };
    match want {
        Want::Wait(why) => {
            debug!(
                reason = why,
                "pod identity webhook: waiting for the cluster configuration"
            );
            false
        }
        Want::Remove(why) => {
            let mut error = None;
            let mut removed = 0;
            for s in slots.iter_mut() {
                match s.remove().await {
                    Ok(true) => removed += 1,
                    Ok(false) => {}
                    Err(e) => error = Some(e),
                }
            }
            if removed > 0 {
                info!(reason = why, removed, "removed the pod identity webhook");
            } else if logged.insert(why, ()).is_none() {
                info!(reason = why, "pod identity webhook not deployed");
            }
            if let Some(e) = &error {
                warn!(error = %e, "could not remove the pod identity webhook");
            }
            status.with(|h| h.observe(Timestamp::now(), false, None, None));
            error.is_some()
        }
        Want::Deploy(t) => {
            logged.clear();
            let mut error = None;
            match render(&t)
                .map_err(|e| e.to_string())
                .and_then(|o| ordered(&o))
            {
                Err(e) => error = Some(e),
                Ok(objs) => {
                    for (s, o) in slots.iter_mut().zip(objs) {
                        let r = match o {
                            Some(o) => s.ensure(&o).await,
                            None => s.remove().await,
                        };
                        match r {
                            Ok(true) => info!(
                                kind = s.kind,
                                cloud = t.cloud.as_str(),
                                "applied pod identity webhook object"
                            ),
                            Ok(false) => {}
                            Err(e) => {
                                warn!(error = %e, "could not apply a pod identity webhook object");
                                error.get_or_insert(e);
                            }
                        }
                    }
                }
            }
            if let Some(e) = &error {
                ctx.metrics.count_error(CONTROLLER, "apply");
                debug!(error = %e, "pod identity webhook reconcile failed");
            }
            let failed = error.is_some();
            status.with(|h| h.observe(Timestamp::now(), true, deployment_now(slots), error));
            failed
        }
    }
}
