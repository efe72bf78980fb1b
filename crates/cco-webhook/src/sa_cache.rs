//! Finding the pod's ServiceAccount, including one created a moment before the pod.
//!
//! [`KubeServiceAccounts`] keeps a cluster-wide, metadata-only cache of ServiceAccounts fed by a
//! `kube` watch (reflector). Annotations are all the handler needs, so the cache holds
//! `PartialObjectMeta` rather than full objects. A lookup goes:
//!
//! 1. cache hit → done (the common case, no API call);
//! 2. miss → a direct `GET` of the ServiceAccount's metadata. This is what fixes the known
//!    complaint: `kubectl apply` of a ServiceAccount and a Deployment together creates the pod
//!    before the webhook's watch has delivered the new ServiceAccount, and a cache-only webhook
//!    admits it unmutated;
//! 3. not found (or the API call failed) → wait for the watch, at most the grace period
//!    (`--service-account-lookup-grace-period`), woken by every watch event.
//!
//! [`ServiceAccountSource`] abstracts this so the HTTP layer can be tested with
//! [`StaticServiceAccounts`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, reflector, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio::sync::Notify;
use tracing::{debug, warn};

/// Result of a ServiceAccount lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// Found in the watch cache.
    Cached(ObjectMeta),
    /// Not cached yet, read directly from the API server.
    Fetched(ObjectMeta),
    /// Does not exist (after the grace period).
    NotFound,
    /// The API server could not be asked and the cache never showed it.
    Failed(String),
}

impl Lookup {
    /// The ServiceAccount's metadata when found.
    pub fn metadata(&self) -> Option<&ObjectMeta> {
        match self {
            Lookup::Cached(m) | Lookup::Fetched(m) => Some(m),
            Lookup::NotFound | Lookup::Failed(_) => None,
        }
    }

    /// Label value for metrics.
    pub fn source(&self) -> &'static str {
        match self {
            Lookup::Cached(_) => "cache",
            Lookup::Fetched(_) => "api",
            Lookup::NotFound => "not_found",
            Lookup::Failed(_) => "error",
        }
    }
}

/// Where the server gets ServiceAccounts from.
pub trait ServiceAccountSource: Send + Sync + 'static {
    /// Look up `namespace/name`.
    fn lookup(&self, namespace: &str, name: &str) -> impl Future<Output = Lookup> + Send;
}

/// A fixed set of ServiceAccounts, for tests and benchmarks without a cluster.
#[derive(Debug, Clone, Default)]
pub struct StaticServiceAccounts(pub BTreeMap<(String, String), ObjectMeta>);

impl StaticServiceAccounts {
    /// Add a ServiceAccount with `annotations`.
    pub fn with(mut self, namespace: &str, name: &str, annotations: &[(&str, &str)]) -> Self {
        let meta = ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        self.0.insert((namespace.into(), name.into()), meta);
        self
    }
}

impl ServiceAccountSource for StaticServiceAccounts {
    async fn lookup(&self, namespace: &str, name: &str) -> Lookup {
        match self.0.get(&(namespace.to_string(), name.to_string())) {
            Some(m) => Lookup::Cached(m.clone()),
            None => Lookup::NotFound,
        }
    }
}

type Meta = PartialObjectMeta<ServiceAccount>;

/// Watch-fed ServiceAccount cache with direct lookup and bounded wait on a miss.
#[derive(Clone)]
pub struct KubeServiceAccounts {
    store: Store<Meta>,
    client: Client,
    changed: Arc<Notify>,
    grace: Duration,
    request_timeout: Duration,
}

impl std::fmt::Debug for KubeServiceAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeServiceAccounts")
            .field("cached", &self.store.len())
            .field("grace", &self.grace)
            .finish()
    }
}

impl KubeServiceAccounts {
    /// Create the cache and the future that runs its watch. The cache answers (through direct
    /// lookups) before the watch has synced; the future must be spawned for hits and waits.
    pub fn new(
        client: Client,
        grace: Duration,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (store, writer) = reflector::store();
        let changed = Arc::new(Notify::new());
        // `Api<PartialObjectMeta<_>>` makes the watch request metadata only.
        let api: Api<Meta> = Api::all(client.clone());
        // managedFields are never read; dropping them keeps the cache small and lookups cheap.
        let events = watcher(api, watcher::Config::default().any_semantic())
            .modify(|sa: &mut Meta| sa.metadata.managed_fields = None);
        let stream = reflector(writer, events).default_backoff();
        let notify = changed.clone();
        let watch = async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(_) => notify.notify_waiters(),
                    Err(error) => warn!(%error, "ServiceAccount watch failed; retrying"),
                }
            }
        };
        let cache = Self {
            store,
            client,
            changed,
            grace,
            request_timeout: Duration::from_secs(3),
        };
        (cache, watch)
    }

    /// Wait until the watch has listed all ServiceAccounts once.
    pub async fn wait_synced(&self) {
        let _ = self.store.wait_until_ready().await;
    }

    /// The cache as JSON: `{"<namespace>/<name>": {annotations}}` (debugging handler).
    pub fn dump_json(&self) -> String {
        let map: BTreeMap<String, BTreeMap<String, String>> = self
            .store
            .state()
            .iter()
            .map(|m| {
                (
                    format!(
                        "{}/{}",
                        m.metadata.namespace.clone().unwrap_or_default(),
                        m.metadata.name.clone().unwrap_or_default()
                    ),
                    m.metadata.annotations.clone().unwrap_or_default(),
                )
            })
            .collect();
        serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
    }

    /// Number of cached ServiceAccounts.
    pub fn cached(&self) -> usize {
        self.store.len()
    }

    fn cached_meta(&self, key: &ObjectRef<Meta>) -> Option<ObjectMeta> {
        self.store.get(key).map(|m| m.metadata.clone())
    }

    async fn wait_for_cache(&self, key: &ObjectRef<Meta>) -> Option<ObjectMeta> {
        let deadline = tokio::time::Instant::now() + self.grace;
        loop {
            let notified = self.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(m) = self.cached_meta(key) {
                return Some(m);
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(deadline) => return self.cached_meta(key),
            }
        }
    }
}

impl ServiceAccountSource for KubeServiceAccounts {
    async fn lookup(&self, namespace: &str, name: &str) -> Lookup {
        let key = ObjectRef::<Meta>::new(name).within(namespace);
        if let Some(m) = self.cached_meta(&key) {
            return Lookup::Cached(m);
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let failure =
            match tokio::time::timeout(self.request_timeout, api.get_metadata_opt(name)).await {
                Ok(Ok(Some(sa))) => {
                    debug!(
                        namespace,
                        name, "ServiceAccount not cached yet; read directly"
                    );
                    let mut meta = sa.metadata;
                    meta.managed_fields = None;
                    return Lookup::Fetched(meta);
                }
                Ok(Ok(None)) => None,
                Ok(Err(error)) => {
                    warn!(%error, namespace, name, "direct ServiceAccount lookup failed");
                    Some(error.to_string())
                }
                Err(_) => Some(format!(
                    "direct ServiceAccount lookup timed out after {:?}",
                    self.request_timeout
                )),
            };
        if let Some(m) = self.wait_for_cache(&key).await {
            return Lookup::Cached(m);
        }
        match failure {
            None => Lookup::NotFound,
            Some(e) => Lookup::Failed(e),
        }
    }
}
