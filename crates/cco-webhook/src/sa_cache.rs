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
//! Like the EKS webhook, the cache the lookups read is separate from the watch's own store:
//! `/debug/alpha/cache/clear` ([`KubeServiceAccounts::clear`]) empties it, and every
//! `--resync-period` (the EKS informer's resync; `0` disables it) it is filled again from the
//! watch's store, as client-go re-delivers every object to the informer's handlers. Between the
//! two, lookups go to the API server (step 2). Both hold the same `Arc`s, so the second map costs
//! a pointer and the keys per ServiceAccount.
//!
//! [`ServiceAccountSource`] abstracts this so the HTTP layer can be tested with
//! [`StaticServiceAccounts`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, reflector, ObjectRef, Store};
use kube::runtime::watcher::Event;
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

/// The cache lookups read: namespace → name → the watch store's object.
#[derive(Debug, Default)]
struct Visible(RwLock<HashMap<String, HashMap<String, Arc<Meta>>>>);

impl Visible {
    fn get(&self, namespace: &str, name: &str) -> Option<Arc<Meta>> {
        let map = self.0.read().ok()?;
        map.get(namespace)?.get(name).cloned()
    }

    fn insert(&self, sa: Arc<Meta>) {
        let (Some(ns), Some(name)) = (&sa.metadata.namespace, &sa.metadata.name) else {
            return;
        };
        let (ns, name) = (ns.clone(), name.clone());
        if let Ok(mut map) = self.0.write() {
            map.entry(ns).or_default().insert(name, sa);
        }
    }

    fn remove(&self, namespace: &str, name: &str) {
        if let Ok(mut map) = self.0.write() {
            if let Some(names) = map.get_mut(namespace) {
                names.remove(name);
                if names.is_empty() {
                    map.remove(namespace);
                }
            }
        }
    }

    /// Replace everything with `all` (a relist, or a resync of a cleared cache).
    fn replace(&self, all: Vec<Arc<Meta>>) {
        let mut fresh: HashMap<String, HashMap<String, Arc<Meta>>> = HashMap::new();
        for sa in all {
            if let (Some(ns), Some(name)) = (&sa.metadata.namespace, &sa.metadata.name) {
                let (ns, name) = (ns.clone(), name.clone());
                fresh.entry(ns).or_default().insert(name, sa);
            }
        }
        if let Ok(mut map) = self.0.write() {
            *map = fresh;
        }
    }

    fn clear(&self) {
        if let Ok(mut map) = self.0.write() {
            map.clear();
        }
    }

    fn len(&self) -> usize {
        self.0
            .read()
            .map(|m| m.values().map(HashMap::len).sum())
            .unwrap_or(0)
    }

    fn all(&self) -> Vec<Arc<Meta>> {
        self.0
            .read()
            .map(|m| m.values().flat_map(|n| n.values().cloned()).collect())
            .unwrap_or_default()
    }
}

/// Watch-fed ServiceAccount cache with direct lookup and bounded wait on a miss.
#[derive(Clone)]
pub struct KubeServiceAccounts {
    store: Store<Meta>,
    visible: Arc<Visible>,
    synced: Arc<AtomicBool>,
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
    /// Create the cache and the future that runs its watch, without periodic resync. The cache
    /// answers (through direct lookups) before the watch has synced; the future must be spawned
    /// for hits and waits.
    pub fn new(
        client: Client,
        grace: Duration,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        Self::with_resync(client, grace, Duration::ZERO)
    }

    /// [`Self::new`], refilling the lookup cache from the watch's store every `resync`
    /// (`--resync-period`; zero: never).
    pub fn with_resync(
        client: Client,
        grace: Duration,
        resync: Duration,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (store, writer) = reflector::store();
        let visible = Arc::new(Visible::default());
        let changed = Arc::new(Notify::new());
        // `Api<PartialObjectMeta<_>>` makes the watch request metadata only.
        let api: Api<Meta> = Api::all(client.clone());
        // managedFields are never read; dropping them keeps the cache small and lookups cheap.
        let events = watcher(api, watcher::Config::default().any_semantic())
            .modify(|sa: &mut Meta| sa.metadata.managed_fields = None);
        let stream = reflector(writer, events).default_backoff();
        let notify = changed.clone();
        let (reader, shown) = (store.clone(), visible.clone());
        let synced = Arc::new(AtomicBool::new(false));
        let listed = synced.clone();
        let watch = async move {
            let mut stream = std::pin::pin!(stream);
            // A zero period never fires (client-go: no resync).
            let mut ticks = (!resync.is_zero()).then(|| {
                let mut t = tokio::time::interval_at(tokio::time::Instant::now() + resync, resync);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            loop {
                let tick = async {
                    match ticks.as_mut() {
                        Some(t) => t.tick().await,
                        None => std::future::pending().await,
                    }
                };
                let event = tokio::select! {
                    event = stream.next() => match event {
                        Some(event) => event,
                        None => break,
                    },
                    _ = tick => {
                        debug!(period = ?resync, "ServiceAccount cache resync");
                        shown.replace(reader.state());
                        notify.notify_waiters();
                        continue;
                    }
                };
                match event {
                    Ok(Event::Apply(sa)) => {
                        if let Some(stored) = reader.get(&ObjectRef::from_obj(&sa)) {
                            shown.insert(stored);
                        }
                        notify.notify_waiters();
                    }
                    Ok(Event::Delete(sa)) => {
                        shown.remove(
                            sa.metadata.namespace.as_deref().unwrap_or_default(),
                            sa.metadata.name.as_deref().unwrap_or_default(),
                        );
                        notify.notify_waiters();
                    }
                    Ok(Event::InitDone) => {
                        shown.replace(reader.state());
                        listed.store(true, Ordering::Release);
                        notify.notify_waiters();
                    }
                    Ok(Event::Init | Event::InitApply(_)) => {}
                    Err(error) => warn!(%error, "ServiceAccount watch failed; retrying"),
                }
            }
        };
        let cache = Self {
            store,
            visible,
            synced,
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
        loop {
            let notified = self.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.synced.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// The cached ServiceAccounts' metadata, keyed `<namespace>/<name>` (debugging handler).
    pub fn snapshot(&self) -> BTreeMap<String, ObjectMeta> {
        self.visible
            .all()
            .into_iter()
            .map(|m| {
                (
                    format!(
                        "{}/{}",
                        m.metadata.namespace.as_deref().unwrap_or_default(),
                        m.metadata.name.as_deref().unwrap_or_default()
                    ),
                    m.metadata.clone(),
                )
            })
            .collect()
    }

    /// Empty the lookup cache until the next resync or watch event
    /// (`/debug/alpha/cache/clear`).
    pub fn clear(&self) {
        self.visible.clear();
    }

    /// Number of cached ServiceAccounts.
    pub fn cached(&self) -> usize {
        self.visible.len()
    }

    fn cached_meta(&self, namespace: &str, name: &str) -> Option<ObjectMeta> {
        self.visible
            .get(namespace, name)
            .map(|m| m.metadata.clone())
    }

    async fn wait_for_cache(&self, namespace: &str, name: &str) -> Option<ObjectMeta> {
        let deadline = tokio::time::Instant::now() + self.grace;
        loop {
            let notified = self.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(m) = self.cached_meta(namespace, name) {
                return Some(m);
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(deadline) => return self.cached_meta(namespace, name),
            }
        }
    }
}

impl ServiceAccountSource for KubeServiceAccounts {
    async fn lookup(&self, namespace: &str, name: &str) -> Lookup {
        if let Some(m) = self.cached_meta(namespace, name) {
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
        if let Some(m) = self.wait_for_cache(namespace, name).await {
            return Lookup::Cached(m);
        }
        match failure {
            None => Lookup::NotFound,
            Some(e) => Lookup::Failed(e),
        }
    }
}
