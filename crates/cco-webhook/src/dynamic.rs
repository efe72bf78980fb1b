//! Inputs that change while the webhook runs, besides ServiceAccounts:
//!
//! - the EKS Pod Identity association file (`--watch-container-credentials-config`):
//!   `{"identities": [{"namespace": "…", "serviceAccount": "…"}]}`, re-read when its mtime,
//!   size or inode changes (checked every second; a Secret/ConfigMap volume swap counts). An
//!   empty file clears the associations; an unreadable or invalid one keeps the previous set and
//!   is logged, as the EKS webhook does;
//! - the ConfigMap `pod-identity-webhook` in `--namespace` (`--watch-config-map`): `data.config`
//!   is a JSON object `{"<namespace>/<name>": RoleEntry}` (`*/<name>` for any namespace),
//!   watched through the API server.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use serde::Deserialize;
use tracing::{info, warn};

use crate::aws::RoleEntry;

/// Name of the ConfigMap read with `--watch-config-map`.
pub const CONFIG_MAP_NAME: &str = "pod-identity-webhook";

/// The current dynamic inputs, shared with the request path.
#[derive(Debug, Default)]
pub struct Dynamic {
    associations: RwLock<BTreeSet<(String, String)>>,
    roles: RwLock<BTreeMap<(String, String), RoleEntry>>,
}

#[derive(Debug, Deserialize)]
struct IdentityFile {
    #[serde(default)]
    identities: Vec<Identity>,
}

#[derive(Debug, Deserialize)]
struct Identity {
    namespace: String,
    #[serde(rename = "serviceAccount")]
    service_account: String,
}

/// Parse an association file's contents (empty = no associations).
pub fn parse_associations(content: &[u8]) -> Result<BTreeSet<(String, String)>, String> {
    if content.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeSet::new());
    }
    let file: IdentityFile = serde_json::from_slice(content).map_err(|e| e.to_string())?;
    Ok(file
        .identities
        .into_iter()
        .map(|i| (i.namespace, i.service_account))
        .collect())
}

/// Parse a ConfigMap's `data.config`.
pub fn parse_roles(config: &str) -> Result<BTreeMap<(String, String), RoleEntry>, String> {
    let raw: BTreeMap<String, RoleEntry> =
        serde_json::from_str(config).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for (key, entry) in raw {
        let Some((ns, name)) = key.split_once('/') else {
            return Err(format!("key {key:?} is not <namespace>/<serviceaccount>"));
        };
        out.insert((ns.to_string(), name.to_string()), entry);
    }
    Ok(out)
}

impl Dynamic {
    /// Whether `namespace/name` has an EKS Pod Identity association.
    pub fn associated(&self, namespace: &str, name: &str) -> bool {
        self.associations
            .read()
            .map(|a| a.contains(&(namespace.to_string(), name.to_string())))
            .unwrap_or(false)
    }

    /// The ConfigMap's role for `namespace/name` (or `*/name`).
    pub fn role(&self, namespace: &str, name: &str) -> Option<RoleEntry> {
        let roles = self.roles.read().ok()?;
        roles
            .get(&(namespace.to_string(), name.to_string()))
            .or_else(|| roles.get(&("*".to_string(), name.to_string())))
            .cloned()
    }

    /// Replace the associations.
    pub fn set_associations(&self, set: BTreeSet<(String, String)>) {
        if let Ok(mut a) = self.associations.write() {
            *a = set;
        }
    }

    /// Replace the ConfigMap roles.
    pub fn set_roles(&self, roles: BTreeMap<(String, String), RoleEntry>) {
        if let Ok(mut r) = self.roles.write() {
            *r = roles;
        }
    }

    /// Forget the ConfigMap roles until the next resync or ConfigMap change
    /// (`/debug/alpha/cache/clear`, as the EKS webhook's `Clear`).
    pub fn clear_roles(&self) {
        self.set_roles(BTreeMap::new());
    }

    /// Load `path` now; `Err` when it cannot be read or parsed.
    pub fn load_associations(&self, path: &Path) -> Result<usize, String> {
        let content =
            std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let set = parse_associations(&content).map_err(|e| {
            format!(
                "{}: not a container credentials config: {e}",
                path.display()
            )
        })?;
        let n = set.len();
        self.set_associations(set);
        Ok(n)
    }
}

type Stamp = Option<(Option<SystemTime>, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok(), m.len(), m.ino()))
}

/// Re-read the association file whenever it changes, forever.
pub async fn watch_associations(dynamic: Arc<Dynamic>, path: PathBuf) {
    let mut last: Stamp = stamp(&path);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = stamp(&path);
        if now == last {
            continue;
        }
        last = now;
        match dynamic.load_associations(&path) {
            Ok(n) => {
                info!(file = %path.display(), associations = n, "container credentials config reloaded")
            }
            Err(error) => {
                warn!(%error, "container credentials config not reloaded; keeping the previous one")
            }
        }
    }
}

/// Follow the ConfigMap [`CONFIG_MAP_NAME`] in `namespace`, forever; every `resync` (zero:
/// never) the roles last read are set again, as the EKS webhook's informer resync does.
pub async fn watch_config_map(
    dynamic: Arc<Dynamic>,
    client: Client,
    namespace: String,
    resync: Duration,
) {
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={CONFIG_MAP_NAME}"));
    let stream = watcher(api, cfg).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut ticks = (!resync.is_zero()).then(|| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + resync, resync);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut last: Option<BTreeMap<(String, String), RoleEntry>> = None;
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
                if let Some(roles) = &last {
                    dynamic.set_roles(roles.clone());
                }
                continue;
            }
        };
        let cm = match event {
            Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => Some(cm),
            Ok(watcher::Event::Delete(_)) => None,
            Ok(_) => continue,
            Err(error) => {
                warn!(%error, "ConfigMap watch failed; retrying");
                continue;
            }
        };
        let config = cm
            .and_then(|c| c.data)
            .and_then(|d| d.get("config").cloned())
            .unwrap_or_else(|| "{}".into());
        match parse_roles(&config) {
            Ok(roles) => {
                info!(namespace = %namespace, entries = roles.len(), "pod-identity-webhook ConfigMap loaded");
                dynamic.set_roles(roles.clone());
                last = Some(roles);
            }
            Err(error) => {
                warn!(%error, "ConfigMap pod-identity-webhook data.config is invalid; keeping the previous one")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn association_file_format() {
        let set = parse_associations(
            br#"{"identities":[{"namespace":"a","serviceAccount":"x"},{"namespace":"b","serviceAccount":"y"}]}"#,
        )
        .expect("parses");
        assert!(set.contains(&("a".into(), "x".into())));
        assert!(parse_associations(b"  ").expect("empty").is_empty());
        assert!(parse_associations(b"{nope").is_err());
    }

    #[test]
    fn config_map_roles_with_wildcard_namespace() {
        let d = Dynamic::default();
        d.set_roles(
            parse_roles(
                r#"{"team/app": {"RoleARN": "arn:aws:iam::111122223333:role/a", "TokenExpiration": 3600},
                    "*/shared": {"RoleARN": "arn:aws:iam::111122223333:role/s", "UseRegionalSTS": true}}"#,
            )
            .expect("parses"),
        );
        assert_eq!(
            d.role("team", "app").map(|r| r.token_expiration),
            Some(3600)
        );
        assert!(d
            .role("other", "shared")
            .is_some_and(|r| r.use_regional_sts));
        assert!(d.role("other", "app").is_none());
        assert!(parse_roles(r#"{"no-slash": {}}"#).is_err());
    }
}
