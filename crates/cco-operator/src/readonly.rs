//! The operator's own read-only cloud credentials.
//!
//! `deploy/operator/06-credentialsrequest-{aws,gcp}-ro.yaml` ask, like the reference operator's
//! manifests, for an AWS user allowed `iam:GetUser`, `iam:GetUserPolicy` and `iam:ListAccessKeys`
//! and a GCP service account allowed to read service accounts, keys, roles and the project's IAM
//! policy. The operator mints them like any request; their Secrets, cached here, then serve every
//! read of minted identities, so checks keep working after the administrator removes the root
//! credential (seeds/002). Writes always use the root credential. Until a read-only Secret exists
//! (the first sync), or when the cloud rejects it (a new AWS key takes a while to work), reads fall
//! back to the root credential, as the reference operator does.

use std::sync::Arc;

use cco_core::secrets::SecretData;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::{self, reflector, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;

use crate::cluster::RootSecret;
use crate::status::OPERATOR_NAMESPACE;

/// Request and Secret of the AWS read-only credential.
pub const AWS_RO_REQUEST: &str = "cloud-credential-operator-iam-ro";
pub const AWS_RO_SECRET: &str = "cloud-credential-operator-iam-ro-creds";
/// Request and Secret of the GCP read-only credential.
pub const GCP_RO_REQUEST: &str = "cloud-credential-operator-gcp-ro-creds";
pub const GCP_RO_SECRET: &str = "cloud-credential-operator-gcp-ro-creds";

/// Cached read-only credential Secrets.
#[derive(Clone)]
pub struct ReadOnly {
    aws: Store<Secret>,
    gcp: Store<Secret>,
}

impl std::fmt::Debug for ReadOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadOnly")
    }
}

fn one_secret(
    client: &Client,
    name: &'static str,
) -> (Store<Secret>, impl futures::Future<Output = ()> + Send) {
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(
            Api::<Secret>::namespaced(client.clone(), OPERATOR_NAMESPACE),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
        ),
    )
    .default_backoff()
    .for_each(move |ev| async move {
        if let Err(error) = ev {
            tracing::warn!(%error, secret = name, "watch of read-only credential failed; retrying");
        }
    });
    (reader, stream)
}

fn as_credential(name: &str, s: Arc<Secret>) -> Option<RootSecret> {
    if s.metadata.deletion_timestamp.is_some() {
        return None;
    }
    Some(RootSecret {
        name: format!("{OPERATOR_NAMESPACE}/{name}"),
        resource_version: s.metadata.resource_version.clone().unwrap_or_default(),
        data: SecretData(
            s.data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect(),
        ),
        mode_annotation: None,
    })
}

impl ReadOnly {
    /// Starts the caches; the future drives them until dropped.
    pub fn start(client: &Client) -> (ReadOnly, impl futures::Future<Output = ()> + Send) {
        let (aws, a) = one_secret(client, AWS_RO_SECRET);
        let (gcp, g) = one_secret(client, GCP_RO_SECRET);
        (ReadOnly { aws, gcp }, async move {
            futures::join!(a, g);
        })
    }

    /// The AWS read-only credential, when its Secret exists.
    pub fn aws(&self) -> Option<RootSecret> {
        self.aws
            .get(&ObjectRef::new(AWS_RO_SECRET).within(OPERATOR_NAMESPACE))
            .and_then(|s| as_credential(AWS_RO_SECRET, s))
    }

    /// The GCP read-only credential, when its Secret exists.
    pub fn gcp(&self) -> Option<RootSecret> {
        self.gcp
            .get(&ObjectRef::new(GCP_RO_SECRET).within(OPERATOR_NAMESPACE))
            .and_then(|s| as_credential(GCP_RO_SECRET, s))
    }
}
