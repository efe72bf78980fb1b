//! Caches of the single, named cluster objects read by the upgrade gate and the pod identity
//! webhook controller: ClusterVersion `version`, APIServer `cluster` and the Secret
//! `openshift-cloud-credential-operator/azure-credentials` (whose `azure_tenant_id` turns the Azure
//! webhook on).
//!
//! Each is watched with a `metadata.name` field selector, so the operator's RBAC can name the one
//! object it may read. A change to any of them bumps the returned counter.
//!
//! Readiness is one `watch` channel rather than the stores' own `wait_until_ready`: that future
//! (kube-runtime's `DelayedInit`) keeps the waker of only its latest poller, so with the status loop
//! and the webhook controller both waiting, one of them slept until its timeout.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::{self, reflector, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::clusterconfig::{APIServer, ClusterVersion};
use crate::status::OPERATOR_NAMESPACE;

/// Name of the Secret that enables the Azure webhook.
pub const AZURE_CREDENTIALS: &str = "azure-credentials";
/// The key in it that must be present.
pub const AZURE_TENANT_ID_KEY: &str = "azure_tenant_id";

/// Read handles on the caches.
#[derive(Clone)]
pub struct ConfigWatch {
    cluster_versions: Store<ClusterVersion>,
    apiservers: Store<APIServer>,
    operator_secrets: Store<Secret>,
    /// True once all three caches have done their initial list.
    ready: watch::Receiver<bool>,
}

impl std::fmt::Debug for ConfigWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigWatch")
    }
}

impl ConfigWatch {
    /// ClusterVersion `version`, if it exists.
    pub fn cluster_version(&self) -> Option<Arc<ClusterVersion>> {
        self.cluster_versions
            .get(&reflector::ObjectRef::new("version"))
    }

    /// APIServer `cluster`, if it exists.
    pub fn apiserver(&self) -> Option<Arc<APIServer>> {
        self.apiservers.get(&reflector::ObjectRef::new("cluster"))
    }

    /// Whether `openshift-cloud-credential-operator/azure-credentials` carries `azure_tenant_id`.
    pub fn azure_tenant_id_present(&self) -> bool {
        self.operator_secrets
            .get(&reflector::ObjectRef::new(AZURE_CREDENTIALS).within(OPERATOR_NAMESPACE))
            .is_some_and(|s| {
                s.data
                    .as_ref()
                    .is_some_and(|d| d.contains_key(AZURE_TENANT_ID_KEY))
                    || s.string_data
                        .as_ref()
                        .is_some_and(|d| d.contains_key(AZURE_TENANT_ID_KEY))
            })
    }

    /// Waits until every cache has done its initial list. Any number of tasks may wait at once.
    pub async fn wait_ready(&self) -> Result<(), CachesStopped> {
        let mut ready = self.ready.clone();
        ready
            .wait_for(|r| *r)
            .await
            .map(|_| ())
            .map_err(|_| CachesStopped)
    }
}

/// The caches stopped before their first list completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the configuration caches stopped before they were ready")]
pub struct CachesStopped;

/// What one cache's stream reports to the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// An object was added, changed or deleted.
    Object,
    /// The cache finished a (re)list.
    Listed,
}

fn named<K>(api: Api<K>, name: &str) -> (Store<K>, impl futures::Stream<Item = Change> + Send)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let stream = reflector(writer, watcher(api, cfg))
        .default_backoff()
        .filter_map(|ev| async move {
            match ev {
                Ok(watcher::Event::Apply(_)) | Ok(watcher::Event::Delete(_)) => {
                    Some(Change::Object)
                }
                Ok(watcher::Event::InitDone) => Some(Change::Listed),
                Ok(_) => None,
                Err(error) => {
                    tracing::warn!(%error, kind = %K::kind(&Default::default()), "watch failed; retrying");
                    None
                }
            }
        });
    (reader, stream)
}

/// Starts the caches; the future drives them until `shutdown` resolves.
pub fn start(
    client: &Client,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (
    ConfigWatch,
    impl std::future::Future<Output = ()> + Send + 'static,
    watch::Receiver<u64>,
) {
    let (cv, s1) = named::<ClusterVersion>(Api::all(client.clone()), "version");
    let (apiserver, s2) = named::<APIServer>(Api::all(client.clone()), "cluster");
    let (secrets, s3) = named::<Secret>(
        Api::namespaced(client.clone(), OPERATOR_NAMESPACE),
        AZURE_CREDENTIALS,
    );
    let (tx, rx) = watch::channel(0u64);
    let (ready_tx, ready) = watch::channel(false);
    let driver = async move {
        let tagged = |i: usize, s| futures::StreamExt::map(s, move |c: Change| (i, c));
        let merged = futures::stream::select_all([
            tagged(0, s1.boxed()),
            tagged(1, s2.boxed()),
            tagged(2, s3.boxed()),
        ]);
        let mut listed = [false; 3];
        let run = merged.for_each(|(i, change)| {
            if change == Change::Listed && !listed[i] {
                listed[i] = true;
                if listed.iter().all(|l| *l) {
                    let _ = ready_tx.send(true);
                }
            }
            tx.send_modify(|n| *n = n.wrapping_add(1));
            futures::future::ready(())
        });
        tokio::select! {
            _ = run => {}
            _ = shutdown => {}
        }
    };
    (
        ConfigWatch {
            cluster_versions: cv,
            apiservers: apiserver,
            operator_secrets: secrets,
            ready,
        },
        driver,
        rx,
    )
}
