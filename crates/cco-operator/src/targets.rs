//! What a reconcile knows without asking the API server: caches of the target namespaces and target
//! Secrets, and the operator's own writes that the caches have not caught up with yet.
//!
//! Why. A reconcile that writes (finalizer, Secret, status) raises watch events that trigger another
//! reconcile of the same request. If that one ran on the cached request, which may not show the first
//! reconcile's status yet, it would provision again: a second Secret write and more requests. So:
//! - [`OwnWrites`] remembers, per request, the object every write of ours returned and the
//!   resourceVersions it superseded. [`OwnWrites::freshest`] hands a reconcile our newest version
//!   while the cache still shows one we superseded, and the cache's once it has caught up (or moved
//!   past us: any version we did not supersede is newer than ours). Status and finalizer writes carry
//!   the resourceVersion they were based on, so a reconcile on anything stale fails with a conflict
//!   instead of overwriting (see the controller).
//! - [`Targets`] holds the metadata of the target namespaces and of the labelled target Secrets
//!   (the operator's label; data is not cached), fed by watches that also trigger reconciles, plus
//!   the Secrets this process applied and the Secret watch has not delivered yet. A Secret neither
//!   cached nor just written is read from the API server only when the decision depends on it.
//!   The caches are filled by their own task and are ready before the first reconcile runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cco_api::CredentialsRequest;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{self, reflector, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, ResourceExt};

use crate::plan::{ANNOTATION_CREDENTIALS_REQUEST, LABEL_CREDENTIALS_REQUEST};

/// How long an entry of [`OwnWrites`] may wait for the cache before it is dropped.
const OWN_WRITE_TTL: Duration = Duration::from_secs(300);

struct OwnWrite {
    latest: Arc<CredentialsRequest>,
    superseded: Vec<String>,
    at: Instant,
}

/// The operator's own writes to CredentialsRequests, until the cache has seen them.
#[derive(Default)]
pub struct OwnWrites {
    inner: Mutex<HashMap<ObjectRef<CredentialsRequest>, OwnWrite>>,
}

impl std::fmt::Debug for OwnWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnWrites")
    }
}

fn rv(cr: &CredentialsRequest) -> String {
    cr.resource_version().unwrap_or_default()
}

impl OwnWrites {
    /// Records that a write based on the version `before` returned `after`.
    pub fn record(&self, before: &CredentialsRequest, after: CredentialsRequest) {
        let key = ObjectRef::from_obj(&after);
        let Ok(mut map) = self.inner.lock() else {
            return;
        };
        map.retain(|_, e| e.at.elapsed() < OWN_WRITE_TTL);
        let before_rv = rv(before);
        match map.get_mut(&key) {
            Some(e) => {
                let prev = rv(&e.latest);
                e.superseded.push(prev);
                e.superseded.push(before_rv);
                e.latest = Arc::new(after);
                e.at = Instant::now();
            }
            None => {
                map.insert(
                    key,
                    OwnWrite {
                        latest: Arc::new(after),
                        superseded: vec![before_rv],
                        at: Instant::now(),
                    },
                );
            }
        }
    }

    /// The newest version of `cached` known to this process.
    pub fn freshest(&self, cached: Arc<CredentialsRequest>) -> Arc<CredentialsRequest> {
        let key = ObjectRef::from_obj(cached.as_ref());
        let Ok(mut map) = self.inner.lock() else {
            return cached;
        };
        let Some(e) = map.get(&key) else {
            return cached;
        };
        let cached_rv = rv(&cached);
        if cached.uid() == e.latest.uid() && e.superseded.contains(&cached_rv) {
            return e.latest.clone();
        }
        // The cache holds our latest write or something newer: it is authoritative again.
        map.remove(&key);
        cached
    }

    /// Forgets a request (deleted).
    pub fn forget(&self, cr: &CredentialsRequest) {
        if let Ok(mut map) = self.inner.lock() {
            map.remove(&ObjectRef::from_obj(cr));
        }
    }

    /// Entries waiting for the cache (for tests and debugging).
    pub fn pending(&self) -> usize {
        self.inner.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// What is known about a target Secret without reading its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretMeta {
    /// Value of [`ANNOTATION_CREDENTIALS_REQUEST`].
    pub owner: Option<String>,
}

type Key = (String, String);

/// Caches of target namespaces and labelled target Secrets, plus Secrets just applied.
#[derive(Clone)]
pub struct Targets {
    secrets: Store<PartialObjectMeta<Secret>>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    applied: Arc<Mutex<HashMap<Key, SecretMeta>>>,
}

impl std::fmt::Debug for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Targets")
    }
}

/// The request a target Secret names in its owner annotation.
pub fn owner_ref(meta: &kube::api::ObjectMeta) -> Option<ObjectRef<CredentialsRequest>> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_CREDENTIALS_REQUEST))
        .and_then(|v| v.split_once('/'))
        .map(|(ns, name)| ObjectRef::new(name).within(ns))
}

/// Changed objects, as the controller's `watches_stream` takes them.
pub type Changes<K> = futures::channel::mpsc::UnboundedReceiver<Result<K, watcher::Error>>;

/// What the watches behind [`Targets`] report: every changed target Secret and Namespace.
pub struct TargetChanges {
    pub secrets: Changes<PartialObjectMeta<Secret>>,
    pub namespaces: Changes<PartialObjectMeta<Namespace>>,
}

impl Targets {
    /// Creates the caches. The returned future drives them (it must run for the caches to fill,
    /// independently of any consumer of the changes); the changes are for the controller's triggers.
    pub fn start(
        client: &Client,
    ) -> (
        Targets,
        TargetChanges,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (secrets, sw) = reflector::store();
        let (namespaces, nw) = reflector::store();
        let applied: Arc<Mutex<HashMap<Key, SecretMeta>>> = Arc::default();
        let seen = applied.clone();
        let (secret_tx, secret_rx) = futures::channel::mpsc::unbounded();
        let (ns_tx, ns_rx) = futures::channel::mpsc::unbounded();
        let secret_stream = reflector(
            sw,
            watcher(
                Api::<PartialObjectMeta<Secret>>::all(client.clone()),
                watcher::Config::default().labels(&format!("{LABEL_CREDENTIALS_REQUEST}=true")),
            ),
        )
        .default_backoff()
        .inspect(move |ev| {
            // Once the watch has delivered anything about a Secret we applied, the cache is the
            // authority on it again (a deletion after our write must not be masked).
            let o = match ev {
                Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::Delete(o)) => o,
                _ => return,
            };
            if let Ok(mut m) = seen.lock() {
                m.remove(&(o.namespace().unwrap_or_default(), o.name_any()));
            }
        })
        .touched_objects()
        .for_each(move |o| {
            // A closed receiver means the controller is gone; the cache keeps being fed.
            let _ = secret_tx.unbounded_send(o);
            futures::future::ready(())
        });
        let ns_stream = reflector(
            nw,
            watcher(
                Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
                watcher::Config::default(),
            ),
        )
        .default_backoff()
        .touched_objects()
        .for_each(move |o| {
            let _ = ns_tx.unbounded_send(o);
            futures::future::ready(())
        });
        let driver = async move {
            futures::join!(secret_stream, ns_stream);
        };
        (
            Targets {
                secrets,
                namespaces,
                applied,
            },
            TargetChanges {
                secrets: secret_rx,
                namespaces: ns_rx,
            },
            driver,
        )
    }

    /// Waits until both caches have listed. Call it from one task only: the underlying store
    /// readiness (kube-runtime 5's `DelayedInit`) wakes only the last of several concurrent
    /// waiters, so reconciles must not wait on it; the operator waits once before starting them.
    pub async fn wait_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.secrets.wait_until_ready().await?;
        self.namespaces.wait_until_ready().await
    }

    /// Whether the namespace exists and is not being deleted.
    pub fn namespace_exists(&self, name: &str) -> bool {
        self.namespaces
            .get(&ObjectRef::new(name))
            .is_some_and(|n| n.metadata.deletion_timestamp.is_none())
    }

    /// The target Secret if the cache or our own recent writes know it; `None` means "not known
    /// here", not "absent": an unlabelled Secret is not cached.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<SecretMeta> {
        if let Some(s) = self.secrets.get(&ObjectRef::new(name).within(namespace)) {
            return Some(SecretMeta {
                owner: s
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ANNOTATION_CREDENTIALS_REQUEST).cloned()),
            });
        }
        self.applied
            .lock()
            .ok()
            .and_then(|m| m.get(&(namespace.to_string(), name.to_string())).cloned())
    }

    /// Records a Secret this process just applied.
    pub fn applied(&self, namespace: &str, name: &str, meta: SecretMeta) {
        if let Ok(mut m) = self.applied.lock() {
            m.insert((namespace.to_string(), name.to_string()), meta);
        }
    }

    /// Requests that target `namespace` and are not provisioned (to wake when it appears).
    pub fn waiting_for(
        crs: &Store<CredentialsRequest>,
        namespace: &str,
    ) -> Vec<ObjectRef<CredentialsRequest>> {
        crs.state()
            .into_iter()
            .filter(|cr| {
                cr.spec.secret_ref.namespace == namespace
                    && !cr.status.as_ref().is_some_and(|s| s.provisioned)
            })
            .map(|cr| ObjectRef::from_obj(cr.as_ref()))
            .collect()
    }
}

/// Field manager of the label backfill.
pub const LABELLER: &str = "cloud-credential-operator-labeller";

/// A Secret the operator wrote (it names a request in our annotation) without our label: written
/// before the label existed, so the label-filtered watch cannot see it.
pub fn missing_label(meta: &kube::api::ObjectMeta) -> bool {
    let annotated = meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION_CREDENTIALS_REQUEST));
    let labelled = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_CREDENTIALS_REQUEST))
        .is_some_and(|v| v == "true");
    annotated && !labelled
}

/// Labels every Secret [`missing_label`] finds (one paged pass over Secret metadata, as the
/// reference operator does at start). Returns how many were labelled.
pub async fn backfill_labels(client: &Client) -> Result<usize, kube::Error> {
    let api: Api<Secret> = Api::all(client.clone());
    let mut lp = kube::api::ListParams::default().limit(500);
    let mut labelled = 0;
    loop {
        let page = api.list_metadata(&lp).await?;
        for s in page.items.iter().filter(|s| missing_label(&s.metadata)) {
            let (ns, name) = (s.namespace().unwrap_or_default(), s.name_any());
            // A merge patch, not an apply: a Secret deleted meanwhile must not be recreated.
            let patch =
                serde_json::json!({"metadata": {"labels": {LABEL_CREDENTIALS_REQUEST: "true"}}});
            match Api::<Secret>::namespaced(client.clone(), &ns)
                .patch(
                    &name,
                    &kube::api::PatchParams {
                        field_manager: Some(LABELLER.to_string()),
                        ..Default::default()
                    },
                    &kube::api::Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {
                    tracing::info!(secret = %format!("{ns}/{name}"), "labelled target secret written before labelling");
                    labelled += 1;
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => return Ok(labelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(rv: &str, provisioned: bool) -> CredentialsRequest {
        let mut c: CredentialsRequest = serde_json::from_value(serde_json::json!({
            "apiVersion": "cloudcredential.openshift.io/v1", "kind": "CredentialsRequest",
            "metadata": {"name": "a", "namespace": "ns", "uid": "u1", "resourceVersion": rv},
            "spec": {"secretRef": {"name": "s", "namespace": "t"}, "providerSpec": {"kind": "AWSProviderSpec"}}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        if provisioned {
            c.status = Some(cco_api::CredentialsRequestStatus {
                provisioned: true,
                ..Default::default()
            });
        }
        c
    }

    #[test]
    fn a_superseded_cached_version_yields_our_latest_write() {
        let w = OwnWrites::default();
        w.record(&cr("1", false), cr("2", false));
        w.record(&cr("2", false), cr("3", true));
        for stale in ["1", "2"] {
            let got = w.freshest(Arc::new(cr(stale, false)));
            assert_eq!(rv(&got), "3");
            assert!(got.status.as_ref().is_some_and(|s| s.provisioned));
        }
        assert_eq!(w.pending(), 1);
    }

    #[test]
    fn the_cache_is_authoritative_once_it_caught_up_or_moved_past() {
        let w = OwnWrites::default();
        w.record(&cr("1", false), cr("2", true));
        assert_eq!(rv(&w.freshest(Arc::new(cr("2", true)))), "2");
        assert_eq!(w.pending(), 0, "caught up: entry dropped");
        w.record(&cr("4", false), cr("5", true));
        // Someone else wrote after us: their version wins.
        assert_eq!(rv(&w.freshest(Arc::new(cr("6", false)))), "6");
        assert_eq!(w.pending(), 0);
    }

    #[test]
    fn only_annotated_unlabelled_secrets_miss_the_label() {
        let meta = |ann: bool, label: Option<&str>| kube::api::ObjectMeta {
            annotations: ann.then(|| {
                [(
                    ANNOTATION_CREDENTIALS_REQUEST.to_string(),
                    "a/b".to_string(),
                )]
                .into()
            }),
            labels: label.map(|v| [(LABEL_CREDENTIALS_REQUEST.to_string(), v.to_string())].into()),
            ..Default::default()
        };
        assert!(missing_label(&meta(true, None)));
        assert!(missing_label(&meta(true, Some("false"))));
        assert!(!missing_label(&meta(true, Some("true"))));
        assert!(!missing_label(&meta(false, None)));
    }

    #[test]
    fn a_recreated_request_is_not_confused_with_the_old_one() {
        let w = OwnWrites::default();
        w.record(&cr("1", false), cr("2", true));
        let mut new = cr("1", false);
        new.metadata.uid = Some("u2".into());
        assert_eq!(rv(&w.freshest(Arc::new(new))), "1");
    }
}
