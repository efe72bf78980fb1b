//! OpenStack root credential upkeep, as the reference's OpenStack secret annotator does it before
//! annotating the root Secret (default and Passthrough modes): the CA bundle of ConfigMap
//! `openshift-config/cloud-provider-config` (key `ca-bundle.pem`) is copied into the root Secret's
//! `cacert`, and `clouds.openstack.cacert` in its `clouds.yaml` is pointed at the path where
//! OpenShift mounts that bundle (an empty value is removed; a missing one stays missing).
//! Passthrough then copies `clouds.yaml` and `cacert` to every target Secret.
//!
//! [`fix_root`] computes the change (pure); [`sync_root`] reads the ConfigMap and writes the Secret.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::ByteString;
use kube::api::{Api, Patch, PatchParams};
use serde_yaml::Value;
use tracing::{info, warn};

use crate::cluster::{RootSecret, ROOT_SECRET_NAMESPACE};

/// Where OpenShift mounts the cloud provider's CA bundle; `clouds.yaml` must point there.
pub const CA_CERT_FILE: &str =
    "/etc/kubernetes/static-pod-resources/configmaps/cloud-config/ca-bundle.pem";
/// The ConfigMap that holds the CA bundle, and its key.
pub const CLOUD_PROVIDER_CONFIG_NAMESPACE: &str = "openshift-config";
pub const CLOUD_PROVIDER_CONFIG: &str = "cloud-provider-config";
pub const CA_BUNDLE_KEY: &str = "ca-bundle.pem";
/// The root Secret's keys.
pub const CLOUDS_YAML: &str = cco_core::secrets::OPENSTACK_CLOUDS_YAML;
pub const CACERT: &str = cco_core::secrets::OPENSTACK_CACERT;

/// New values for the root Secret's keys; `None` leaves a key as it is.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RootFix {
    pub clouds_yaml: Option<String>,
    pub cacert: Option<String>,
}

impl RootFix {
    pub fn is_empty(&self) -> bool {
        self.clouds_yaml.is_none() && self.cacert.is_none()
    }
}

/// What the root Secret needs: `clouds` is its `clouds.yaml`, `cacert` its `cacert` (empty when
/// absent), `ca_bundle` the ConfigMap's bundle (empty when absent; an empty bundle never replaces
/// a certificate, as in the reference, which writes `cacert` only when it is non-empty).
pub fn fix_root(clouds: &str, cacert: &str, ca_bundle: &str) -> Result<RootFix, String> {
    let mut doc: Value = serde_yaml::from_str(clouds).map_err(|e| {
        format!(
            "{CLOUDS_YAML} is not YAML{}",
            e.location()
                .map(|l| format!(" (line {} column {})", l.line(), l.column()))
                .unwrap_or_default()
        )
    })?;
    let mut fix = RootFix::default();
    let entry = doc
        .get_mut("clouds")
        .and_then(|c| c.get_mut("openstack"))
        .and_then(Value::as_mapping_mut);
    if let Some(cloud) = entry {
        let key = Value::String("cacert".into());
        let changed = match cloud.get(&key) {
            None => false,
            Some(Value::Null) => cloud.remove(&key).is_some(),
            Some(Value::String(s)) if s.is_empty() => cloud.remove(&key).is_some(),
            Some(Value::String(s)) if s == CA_CERT_FILE => false,
            Some(_) => {
                cloud.insert(key, Value::String(CA_CERT_FILE.into()));
                true
            }
        };
        if changed {
            fix.clouds_yaml = Some(
                serde_yaml::to_string(&doc)
                    .map_err(|e| format!("cannot write {CLOUDS_YAML}: {e}"))?,
            );
        }
    }
    if !ca_bundle.is_empty() && ca_bundle != cacert {
        fix.cacert = Some(ca_bundle.to_string());
    }
    Ok(fix)
}

/// Brings the OpenStack root Secret up to date; problems are logged (the annotation goes on).
pub async fn sync_root(client: &kube::Client, root: &RootSecret) {
    let Some(clouds) = root.data.get_str(CLOUDS_YAML) else {
        warn!(secret = %root.name, "root credential has no {CLOUDS_YAML}; nothing to fix");
        return;
    };
    let cacert = root.data.get_str(CACERT).unwrap_or_default();
    let ca_bundle = match Api::<ConfigMap>::namespaced(
        client.clone(),
        CLOUD_PROVIDER_CONFIG_NAMESPACE,
    )
    .get_opt(CLOUD_PROVIDER_CONFIG)
    .await
    {
        Ok(cm) => cm
            .and_then(|c| c.data)
            .and_then(|d| d.get(CA_BUNDLE_KEY).cloned())
            .unwrap_or_default(),
        Err(error) => {
            warn!(%error, "could not read ConfigMap {CLOUD_PROVIDER_CONFIG_NAMESPACE}/{CLOUD_PROVIDER_CONFIG}; the root credential's cacert is not synced");
            return;
        }
    };
    let fix = match fix_root(clouds, cacert, &ca_bundle) {
        Ok(f) => f,
        Err(message) => {
            warn!(secret = %root.name, "root credential: {message}");
            return;
        }
    };
    if fix.is_empty() {
        return;
    }
    let mut data = BTreeMap::new();
    if let Some(c) = &fix.clouds_yaml {
        data.insert(CLOUDS_YAML, ByteString(c.clone().into_bytes()));
    }
    if let Some(c) = &fix.cacert {
        data.insert(CACERT, ByteString(c.clone().into_bytes()));
    }
    let patch = serde_json::json!({ "data": data });
    match Api::<Secret>::namespaced(client.clone(), ROOT_SECRET_NAMESPACE)
        .patch(&root.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => info!(
            secret = %root.name,
            clouds_yaml_fixed = fix.clouds_yaml.is_some(),
            cacert_synced = fix.cacert.is_some(),
            "updated OpenStack root credential"
        ),
        Err(error) => {
            warn!(%error, secret = %root.name, "could not update OpenStack root credential")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_ca_path_is_fixed_and_an_empty_one_removed() {
        let f = fix_root(
            "clouds:\n  openstack:\n    auth: {}\n    cacert: /etc/wrong.pem\n",
            "",
            "",
        )
        .unwrap();
        let v: Value = serde_yaml::from_str(&f.clouds_yaml.unwrap()).unwrap();
        assert_eq!(
            v["clouds"]["openstack"]["cacert"].as_str(),
            Some(CA_CERT_FILE)
        );
        assert_eq!(f.cacert, None);
        for empty in ["cacert: \"\"", "cacert:", "cacert: ~"] {
            let f = fix_root(
                &format!("clouds:\n  openstack:\n    auth: {{}}\n    {empty}\n"),
                "",
                "",
            )
            .unwrap();
            let v: Value = serde_yaml::from_str(&f.clouds_yaml.unwrap()).unwrap();
            assert!(v["clouds"]["openstack"].get("cacert").is_none(), "{empty}");
        }
    }

    #[test]
    fn a_right_or_missing_path_is_left_alone() {
        let right = format!("clouds:\n  openstack:\n    cacert: {CA_CERT_FILE}\n");
        assert_eq!(fix_root(&right, "x", "x").unwrap(), RootFix::default());
        let none = "clouds:\n  openstack:\n    auth: {}\n";
        assert_eq!(fix_root(none, "", "").unwrap(), RootFix::default());
        assert_eq!(
            fix_root("clouds: {}\n", "", "").unwrap(),
            RootFix::default()
        );
    }

    #[test]
    fn the_bundle_replaces_a_different_cacert_but_never_with_nothing() {
        let c = "clouds:\n  openstack: {}\n";
        assert_eq!(
            fix_root(c, "old", "new").unwrap().cacert.as_deref(),
            Some("new")
        );
        assert_eq!(
            fix_root(c, "", "new").unwrap().cacert.as_deref(),
            Some("new")
        );
        assert_eq!(fix_root(c, "old", "").unwrap().cacert, None);
        assert_eq!(fix_root(c, "same", "same").unwrap().cacert, None);
    }

    #[test]
    fn not_yaml_is_an_error_naming_the_key() {
        let e = fix_root("clouds: [", "", "").unwrap_err();
        assert!(e.starts_with("clouds.yaml is not YAML"), "{e}");
    }
}
