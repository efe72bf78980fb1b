//! Caches of the cluster-wide objects every reconcile reads, and the change signal they raise.
//!
//! Four reflectors keep `CloudCredential`, `Infrastructure`, `Authentication` and the Secrets of
//! `kube-system` in memory. A change to any of them (for Secrets: to a root credential only) bumps a
//! `watch` counter; the controller turns that into "reconcile every request", because the mode, the
//! platform, the issuer and the root credential affect all of them. Reflectors update their store
//! before the change is signalled, so a reconcile triggered by it sees the new state.

use std::sync::Arc;

use cco_core::secrets::SecretData;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::{self, reflector, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::cluster::{ClusterView, RootSecret, MODE_ANNOTATION, ROOT_SECRET_NAMESPACE};
use crate::openshift::{Authentication, CloudCredential, Infrastructure};

/// Names of every root credential Secret.
pub const ROOT_SECRET_NAMES: [&str; 7] = [
    "aws-creds",
    "gcp-credentials",
    "azure-credentials",
    "openstack-credentials",
    "vsphere-creds",
    "ovirt-credentials",
    "kubevirt-credentials",
];

/// Read-only handles on the caches.
#[derive(Clone)]
pub struct ClusterState {
    cloud_credentials: Store<CloudCredential>,
    infrastructures: Store<Infrastructure>,
    authentications: Store<Authentication>,
    system_secrets: Store<Secret>,
}

impl std::fmt::Debug for ClusterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterState")
    }
}

fn named<K>(store: &Store<K>, name: &str) -> Option<Arc<K>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    store.get(&reflector::ObjectRef::new(name))
}

impl ClusterState {
    /// The cluster configuration now.
    pub fn view(&self) -> ClusterView {
        let cc = named(&self.cloud_credentials, "cluster");
        let infra = named(&self.infrastructures, "cluster");
        let auth = named(&self.authentications, "cluster");
        ClusterView::from_objects(cc.as_deref(), infra.as_deref(), auth.as_deref())
    }

    /// CloudCredential `cluster`, if present (annotations and log level are read from it).
    pub fn cloud_credential(&self) -> Option<Arc<CloudCredential>> {
        named(&self.cloud_credentials, "cluster")
    }

    /// Infrastructure `cluster`, if present (topology is read from it).
    pub fn infrastructure(&self) -> Option<Arc<Infrastructure>> {
        named(&self.infrastructures, "cluster")
    }

    /// The root credential of the cluster's cloud, if present.
    pub fn root(&self, view: &ClusterView) -> Option<RootSecret> {
        let name = view.root_secret_name()?;
        let s = self
            .system_secrets
            .get(&reflector::ObjectRef::new(name).within(ROOT_SECRET_NAMESPACE))?;
        if s.metadata.deletion_timestamp.is_some() {
            return None;
        }
        Some(RootSecret {
            name: name.to_string(),
            resource_version: s.metadata.resource_version.clone().unwrap_or_default(),
            data: SecretData(
                s.data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.0.clone()))
                    .collect(),
            ),
            mode_annotation: s
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(MODE_ANNOTATION).cloned()),
        })
    }

    /// Waits until every cache has done its initial list.
    pub async fn wait_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.cloud_credentials.wait_until_ready().await?;
        self.infrastructures.wait_until_ready().await?;
        self.authentications.wait_until_ready().await?;
        self.system_secrets.wait_until_ready().await
    }
}

fn reflect<K>(
    api: Api<K>,
    relevant: fn(&K) -> bool,
) -> (Store<K>, impl Stream<Item = ()> + Send + 'static)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .filter_map(move |ev| async move {
            match ev {
                Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::Delete(o)) => {
                    relevant(&o).then_some(())
                }
                Ok(watcher::Event::InitDone) => Some(()),
                Ok(_) => None,
                Err(error) => {
                    tracing::warn!(%error, kind = %K::kind(&Default::default()), "watch failed; retrying");
                    None
                }
            }
        });
    (reader, stream)
}

fn any<K>(_: &K) -> bool {
    true
}

fn is_root_secret(s: &Secret) -> bool {
    s.metadata
        .name
        .as_deref()
        .is_some_and(|n| ROOT_SECRET_NAMES.contains(&n))
}

/// Starts the caches. The returned future drives them until `shutdown` resolves; the receiver
/// changes whenever the cluster-wide state changed.
pub fn start(
    client: &Client,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (
    ClusterState,
    impl std::future::Future<Output = ()> + Send + 'static,
    watch::Receiver<u64>,
) {
    let (cc, s1) = reflect::<CloudCredential>(Api::all(client.clone()), any);
    let (infra, s2) = reflect::<Infrastructure>(Api::all(client.clone()), any);
    let (auth, s3) = reflect::<Authentication>(Api::all(client.clone()), any);
    let (secrets, s4) = reflect::<Secret>(
        Api::namespaced(client.clone(), ROOT_SECRET_NAMESPACE),
        is_root_secret,
    );
    let (tx, rx) = watch::channel(0u64);
    let driver = async move {
        let merged = futures::stream::select(
            futures::stream::select(s1, s2),
            futures::stream::select(s3, s4),
        );
        let run = merged.for_each(|()| {
            tx.send_modify(|n| *n = n.wrapping_add(1));
            futures::future::ready(())
        });
        tokio::select! {
            _ = run => {}
            _ = shutdown => {}
        }
    };
    (
        ClusterState {
            cloud_credentials: cc,
            infrastructures: infra,
            authentications: auth,
            system_secrets: secrets,
        },
        driver,
        rx,
    )
}
