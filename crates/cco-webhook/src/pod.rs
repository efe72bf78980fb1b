//! A read-only view over a pod kept as raw JSON.
//!
//! The webhook never deserializes the pod into typed Kubernetes structs and serializes it back:
//! doing so silently drops every field the typed model does not know (newer API fields, alpha
//! features), which is the bug that makes whole-container patches dangerous. Instead the handler
//! reads what it needs through [`PodView`] and emits JSON-patch operations addressed by the same
//! array indices the API server sees.

use std::collections::BTreeSet;

use serde_json::Value;

/// Which container list of the pod spec a container belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerList {
    /// `spec.initContainers`
    Init,
    /// `spec.containers`
    Regular,
}

impl ContainerList {
    /// JSON field name of the list inside `spec`.
    pub fn field(self) -> &'static str {
        match self {
            ContainerList::Init => "initContainers",
            ContainerList::Regular => "containers",
        }
    }
}

/// Borrowed view over a pod object (`{"metadata": …, "spec": …}`).
#[derive(Debug, Clone, Copy)]
pub struct PodView<'a> {
    raw: &'a Value,
}

impl<'a> PodView<'a> {
    /// Wrap a raw pod object.
    pub fn new(raw: &'a Value) -> Self {
        Self { raw }
    }

    /// The raw JSON.
    pub fn raw(&self) -> &'a Value {
        self.raw
    }

    fn meta_str(&self, map: &str, key: &str) -> Option<&'a str> {
        self.raw.get("metadata")?.get(map)?.get(key)?.as_str()
    }

    /// Value of `metadata.<map>.<key>` (`labels`, `annotations`).
    pub fn meta_value(&self, map: &str, key: &str) -> Option<&'a str> {
        self.meta_str(map, key)
    }

    /// Whether `metadata.<map>` exists as an object.
    pub fn has_meta_map(&self, map: &str) -> bool {
        self.raw
            .get("metadata")
            .and_then(|m| m.get(map))
            .is_some_and(Value::is_object)
    }

    /// Whether `spec.<list>` exists as an array.
    pub fn has_container_list(&self, list: ContainerList) -> bool {
        self.spec()
            .and_then(|s| s.get(list.field()))
            .is_some_and(Value::is_array)
    }

    /// `spec.hostNetwork`.
    pub fn host_network(&self) -> bool {
        self.spec()
            .and_then(|s| s.get("hostNetwork"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// `metadata.name`, or `metadata.generateName` + `" (prefix)"` as azure-workload-identity
    /// names a pod that has no name yet.
    pub fn azure_name(&self) -> String {
        let meta = self.raw.get("metadata");
        match meta.and_then(|m| m.get("name")).and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!(
                "{} (prefix)",
                meta.and_then(|m| m.get("generateName"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            ),
        }
    }

    /// Value of a pod label.
    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.meta_str("labels", key)
    }

    /// Value of a pod annotation.
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.meta_str("annotations", key)
    }

    /// Whether `metadata.annotations` exists as an object.
    pub fn has_annotations(&self) -> bool {
        self.raw
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .is_some_and(Value::is_object)
    }

    /// `metadata.name`, or `metadata.generateName` for pods named by the server (logs only).
    pub fn display_name(&self) -> &'a str {
        let meta = self.raw.get("metadata");
        meta.and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .or_else(|| {
                meta.and_then(|m| m.get("generateName"))
                    .and_then(Value::as_str)
            })
            .unwrap_or("")
    }

    fn spec(&self) -> Option<&'a Value> {
        self.raw.get("spec")
    }

    /// The ServiceAccount the pod runs as (`default` when unset, as the API server defaults it).
    pub fn service_account_name(&self) -> &'a str {
        let spec = self.spec();
        ["serviceAccountName", "serviceAccount"]
            .iter()
            .find_map(|k| {
                spec.and_then(|s| s.get(*k))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or("default")
    }

    /// `spec.serviceAccountName` when set and non-empty (no defaulting).
    pub fn explicit_service_account_name(&self) -> Option<&'a str> {
        self.spec()
            .and_then(|s| s.get("serviceAccountName"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Whether the pod is pinned to Windows nodes by its node selector.
    pub fn targets_windows(&self) -> bool {
        let sel = self.spec().and_then(|s| s.get("nodeSelector"));
        ["kubernetes.io/os", "beta.kubernetes.io/os"]
            .iter()
            .any(|k| sel.and_then(|s| s.get(*k)).and_then(Value::as_str) == Some("windows"))
    }

    /// `spec.securityContext.fsGroup`.
    pub fn fs_group(&self) -> Option<i64> {
        self.spec()?
            .get("securityContext")?
            .get("fsGroup")?
            .as_i64()
    }

    /// Whether `spec.volumes` exists as an array.
    pub fn has_volumes(&self) -> bool {
        self.spec()
            .and_then(|s| s.get("volumes"))
            .is_some_and(Value::is_array)
    }

    /// Names of the pod's volumes.
    pub fn volume_names(&self) -> BTreeSet<&'a str> {
        names(self.spec().and_then(|s| s.get("volumes")), "name")
    }

    /// Init containers followed by regular containers.
    pub fn containers(&self) -> Vec<ContainerView<'a>> {
        let mut out = Vec::new();
        for list in [ContainerList::Init, ContainerList::Regular] {
            let items = self
                .spec()
                .and_then(|s| s.get(list.field()))
                .and_then(Value::as_array);
            for (index, raw) in items.into_iter().flatten().enumerate() {
                out.push(ContainerView { list, index, raw });
            }
        }
        out
    }
}

fn names<'a>(array: Option<&'a Value>, field: &str) -> BTreeSet<&'a str> {
    array
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get(field).and_then(Value::as_str))
        .collect()
}

/// Borrowed view over one container of a pod.
#[derive(Debug, Clone, Copy)]
pub struct ContainerView<'a> {
    /// The list the container is in.
    pub list: ContainerList,
    /// Its index in that list.
    pub index: usize,
    raw: &'a Value,
}

impl<'a> ContainerView<'a> {
    /// Container name.
    pub fn name(&self) -> &'a str {
        self.raw.get("name").and_then(Value::as_str).unwrap_or("")
    }

    /// Whether `env` exists as an array.
    pub fn has_env(&self) -> bool {
        self.raw.get("env").is_some_and(Value::is_array)
    }

    /// Names of the container's `env` entries.
    pub fn env_names(&self) -> BTreeSet<&'a str> {
        names(self.raw.get("env"), "name")
    }

    /// Whether `volumeMounts` exists as an array.
    pub fn has_mounts(&self) -> bool {
        self.raw.get("volumeMounts").is_some_and(Value::is_array)
    }

    /// Volume names of the container's mounts.
    pub fn mount_names(&self) -> BTreeSet<&'a str> {
        names(self.raw.get("volumeMounts"), "name")
    }

    /// Paths of the container's mounts.
    pub fn mount_paths(&self) -> BTreeSet<&'a str> {
        names(self.raw.get("volumeMounts"), "mountPath")
    }
}

/// Split a container list annotation (`a,b` or `a;b`, whitespace ignored).
pub fn parse_container_list(value: Option<&str>) -> BTreeSet<String> {
    value
        .into_iter()
        .flat_map(|v| v.split([',', ';']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn service_account_defaults_to_default() {
        let pod = json!({"spec": {"containers": []}});
        assert_eq!(PodView::new(&pod).service_account_name(), "default");
        let pod = json!({"spec": {"serviceAccount": "legacy"}});
        assert_eq!(PodView::new(&pod).service_account_name(), "legacy");
    }

    #[test]
    fn containers_are_listed_init_first_with_indices() {
        let pod = json!({"spec": {
            "initContainers": [{"name": "i0"}],
            "containers": [{"name": "c0"}, {"name": "c1", "env": [{"name": "A"}]}]
        }});
        let view = PodView::new(&pod);
        let cs = view.containers();
        let summary: Vec<_> = cs.iter().map(|c| (c.list, c.index, c.name())).collect();
        assert_eq!(
            summary,
            vec![
                (ContainerList::Init, 0, "i0"),
                (ContainerList::Regular, 0, "c0"),
                (ContainerList::Regular, 1, "c1"),
            ]
        );
        assert!(!cs[1].has_env());
        assert!(cs[2].env_names().contains("A"));
    }

    #[test]
    fn container_lists_accept_commas_and_semicolons() {
        let set = parse_container_list(Some(" a, b;c ,,"));
        assert_eq!(set.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
    }
}
