//! From "what a cloud wants in the pod" to the smallest RFC 6902 patch that gets it there.
//!
//! Each cloud module produces an [`Injection`]: one projected volume, where to mount it, groups
//! of environment variables, containers to leave alone and pod annotations. [`plan_patch`]
//! compares the injections with the raw pod and emits only `add` operations for what is missing
//! (and `replace` for an owned annotation whose value changed):
//!
//! - `/spec/containers/0/env/-` per variable when the container has an `env` array, one
//!   `/spec/containers/0/env` holding all of them when it has none; the same for
//!   `volumeMounts`, `/spec/volumes` and `/metadata/annotations`;
//! - nothing that already exists is touched, so a second pass over a mutated pod (reinvocation)
//!   yields no operation at all, and fields the webhook does not model survive untouched.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, ReplaceOperation};
use serde_json::{json, Map, Value};

use crate::pod::{ContainerList, ContainerView, PodView};

/// The clouds the webhook serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cloud {
    /// AWS IAM roles for service accounts.
    Aws,
    /// Azure AD workload identity.
    Azure,
    /// GCP workload identity federation.
    Gcp,
}

impl Cloud {
    /// Lower-case name used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Aws => "aws",
            Cloud::Azure => "azure",
            Cloud::Gcp => "gcp",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Variables added together, and only when the container defines none of `unless_defined`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvGroup {
    /// If the container already defines any of these names, the group is skipped.
    pub unless_defined: Vec<String>,
    /// `(name, value)` pairs, appended in order.
    pub vars: Vec<(String, String)>,
}

impl EnvGroup {
    /// A single variable, skipped when the container already defines it.
    pub fn single(name: &str, value: impl Into<String>) -> Self {
        Self {
            unless_defined: vec![name.to_string()],
            vars: vec![(name.to_string(), value.into())],
        }
    }
}

/// Everything one cloud adds to a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    /// Which cloud this is (for metrics).
    pub cloud: Cloud,
    /// The full `Volume` object; its `name` identifies it.
    pub volume: Value,
    /// Where the volume is mounted, read-only, in every non-skipped container.
    pub mount_path: String,
    /// Environment variables for every non-skipped container.
    pub env: Vec<EnvGroup>,
    /// Names of containers (init or regular) left untouched.
    pub skip_containers: BTreeSet<String>,
    /// Pod annotations owned by the webhook.
    pub annotations: BTreeMap<String, String>,
    /// Pod labels owned by the webhook.
    pub labels: BTreeMap<String, String>,
    /// More volumes (e.g. GCP's gcloud configuration), added when missing.
    pub extra_volumes: Vec<Value>,
    /// More mounts `(volume, path, read_only)` in every non-skipped container.
    pub extra_mounts: Vec<(String, String, bool)>,
    /// Containers the cloud adds (skipped when one of that name exists in the list).
    pub init_containers: Vec<NewContainer>,
}

/// Where a new container goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Before the existing ones.
    First,
    /// After the existing ones.
    Last,
}

/// A container a cloud adds to the pod.
#[derive(Debug, Clone, PartialEq)]
pub struct NewContainer {
    /// `spec.initContainers` or `spec.containers`.
    pub list: ContainerList,
    /// Before or after the existing containers.
    pub position: Position,
    /// The container object; `name` identifies it.
    pub container: Value,
    /// Whether the injections' variables and mounts are added to it too.
    pub mutate: bool,
}

impl NewContainer {
    fn name(&self) -> &str {
        self.container
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

impl Injection {
    /// Name of the injected volume.
    pub fn volume_name(&self) -> &str {
        self.volume
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// A patch and the clouds that contributed to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlannedPatch {
    /// The RFC 6902 operations, empty when the pod already has everything.
    pub ops: Vec<PatchOperation>,
    /// Clouds that added at least one thing.
    pub changed: BTreeSet<Cloud>,
    /// Problems worth an admission warning (the pod is still admitted).
    pub warnings: Vec<String>,
}

fn ptr(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

/// Append `items` to the array at `base` (a JSON pointer's tokens): one `add` per item when the
/// array exists, one `add` creating it otherwise.
fn append_ops(ops: &mut Vec<PatchOperation>, base: &[&str], exists: bool, items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    if exists {
        let mut tokens = base.to_vec();
        tokens.push("-");
        for item in items {
            ops.push(add(ptr(&tokens), item));
        }
    } else {
        ops.push(add(ptr(base), Value::Array(items)));
    }
}

/// Compute the minimal patch applying `injections` to `pod`.
pub fn plan_patch(pod: &PodView<'_>, injections: &[Injection]) -> PlannedPatch {
    let mut out = PlannedPatch::default();

    // Labels and annotations first: the downward API items of a volume may reference them.
    plan_meta_map(pod, injections, "labels", |i| &i.labels, &mut out);
    plan_meta_map(pod, injections, "annotations", |i| &i.annotations, &mut out);

    // Volumes.
    let mut volume_names: BTreeSet<String> =
        pod.volume_names().into_iter().map(String::from).collect();
    let mut new_volumes = Vec::new();
    for inj in injections {
        if volume_names.insert(inj.volume_name().to_string()) {
            new_volumes.push(inj.volume.clone());
            out.changed.insert(inj.cloud);
        }
        for extra in &inj.extra_volumes {
            let name = extra.get("name").and_then(Value::as_str).unwrap_or("");
            if volume_names.insert(name.to_string()) {
                new_volumes.push(extra.clone());
                out.changed.insert(inj.cloud);
            }
        }
    }
    append_ops(
        &mut out.ops,
        &["spec", "volumes"],
        pod.has_volumes(),
        new_volumes,
    );

    // Existing containers (init first), addressed by their current indices...
    // Containers a cloud adds untouched (gcloud-setup) stay untouched on every pass.
    let untouched: BTreeSet<&str> = injections
        .iter()
        .flat_map(|i| &i.init_containers)
        .filter(|n| !n.mutate)
        .map(NewContainer::name)
        .collect();
    let existing = pod.containers();
    for c in existing.iter().filter(|c| !untouched.contains(c.name())) {
        plan_container(c, injections, &mut out);
    }
    // ...then new containers, which shift those indices.
    for list in [ContainerList::Init, ContainerList::Regular] {
        plan_new_containers(pod, &existing, list, injections, &mut out);
    }
    out
}

fn plan_new_containers(
    pod: &PodView<'_>,
    existing: &[ContainerView<'_>],
    list: ContainerList,
    injections: &[Injection],
    out: &mut PlannedPatch,
) {
    let present: BTreeSet<&str> = existing
        .iter()
        .filter(|c| c.list == list)
        .map(|c| c.name())
        .collect();
    let mut first = Vec::new();
    let mut last = Vec::new();
    for inj in injections {
        for nc in inj.init_containers.iter().filter(|n| n.list == list) {
            if present.contains(nc.name()) || first.iter().chain(&last).any(|(n, _)| n == nc.name())
            {
                continue;
            }
            let mut container = nc.container.clone();
            if nc.mutate {
                mutate_new_container(&mut container, injections);
            }
            out.changed.insert(inj.cloud);
            let slot = match nc.position {
                Position::First => &mut first,
                Position::Last => &mut last,
            };
            slot.push((nc.name().to_string(), container));
        }
    }
    if first.is_empty() && last.is_empty() {
        return;
    }
    let field = list.field();
    if !pod.has_container_list(list) {
        let all: Vec<Value> = first.into_iter().chain(last).map(|(_, c)| c).collect();
        out.ops.push(add(ptr(&["spec", field]), Value::Array(all)));
        return;
    }
    // Insert the "first" ones at 0 in reverse so they keep their order.
    for (_, c) in first.into_iter().rev() {
        out.ops.push(add(ptr(&["spec", field, "0"]), c));
    }
    for (_, c) in last {
        out.ops.push(add(ptr(&["spec", field, "-"]), c));
    }
}

/// Give a container the webhook creates the variables and mounts of every injection.
fn mutate_new_container(container: &mut Value, injections: &[Injection]) {
    let name = container
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut env: Vec<Value> = container
        .get("env")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut mounts: Vec<Value> = container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for inj in injections {
        if inj.skip_containers.contains(&name) {
            continue;
        }
        for group in &inj.env {
            let defined = |n: &String| {
                env.iter()
                    .any(|e| e.get("name").and_then(Value::as_str) == Some(n))
            };
            if group.unless_defined.iter().any(defined) {
                continue;
            }
            for (k, v) in &group.vars {
                env.push(env_var(k, v));
            }
        }
        let vol = inj.volume_name();
        let taken = mounts.iter().any(|m| {
            m.get("name").and_then(Value::as_str) == Some(vol)
                || m.get("mountPath").and_then(Value::as_str) == Some(inj.mount_path.as_str())
        });
        if !taken {
            mounts.push(json!({"name": vol, "mountPath": inj.mount_path, "readOnly": true}));
        }
        for (vol, path, ro) in &inj.extra_mounts {
            if !mounts
                .iter()
                .any(|m| m.get("name").and_then(Value::as_str) == Some(vol))
            {
                mounts.push(mount(vol, path, *ro));
            }
        }
    }
    if let Some(map) = container.as_object_mut() {
        if !env.is_empty() {
            map.insert("env".into(), Value::Array(env));
        }
        if !mounts.is_empty() {
            map.insert("volumeMounts".into(), Value::Array(mounts));
        }
    }
}

/// An `EnvVar`; an empty value is left out, as Go's `omitempty` writes it.
fn env_var(name: &str, value: &str) -> Value {
    if value.is_empty() {
        json!({ "name": name })
    } else {
        json!({"name": name, "value": value})
    }
}

fn mount(volume: &str, path: &str, read_only: bool) -> Value {
    if read_only {
        json!({"name": volume, "mountPath": path, "readOnly": true})
    } else {
        json!({"name": volume, "mountPath": path})
    }
}

fn plan_meta_map(
    pod: &PodView<'_>,
    injections: &[Injection],
    field: &str,
    pick: impl Fn(&Injection) -> &BTreeMap<String, String>,
    out: &mut PlannedPatch,
) {
    let mut missing = Map::new();
    for inj in injections {
        for (key, value) in pick(inj) {
            match pod.meta_value(field, key) {
                Some(current) if current == value => {}
                Some(_) => {
                    out.ops.push(PatchOperation::Replace(ReplaceOperation {
                        path: ptr(&["metadata", field, key]),
                        value: json!(value),
                    }));
                    out.changed.insert(inj.cloud);
                }
                None => {
                    if !missing.contains_key(key) {
                        missing.insert(key.clone(), json!(value));
                        out.changed.insert(inj.cloud);
                    }
                }
            }
        }
    }
    if missing.is_empty() {
        return;
    }
    if pod.has_meta_map(field) {
        for (key, value) in missing {
            out.ops.push(add(ptr(&["metadata", field, &key]), value));
        }
    } else {
        out.ops
            .push(add(ptr(&["metadata", field]), Value::Object(missing)));
    }
}

fn plan_container(c: &ContainerView<'_>, injections: &[Injection], out: &mut PlannedPatch) {
    let index = c.index.to_string();
    let list = c.list.field();
    let mut env_names: BTreeSet<String> = c.env_names().into_iter().map(String::from).collect();
    let mut mount_names: BTreeSet<String> = c.mount_names().into_iter().map(String::from).collect();
    let mut mount_paths: BTreeSet<String> = c.mount_paths().into_iter().map(String::from).collect();
    let mut new_env = Vec::new();
    let mut new_mounts = Vec::new();

    for inj in injections {
        if inj.skip_containers.contains(c.name()) {
            continue;
        }
        for group in &inj.env {
            if group.unless_defined.iter().any(|n| env_names.contains(n)) {
                continue;
            }
            for (name, value) in &group.vars {
                if env_names.insert(name.clone()) {
                    new_env.push(env_var(name, value));
                    out.changed.insert(inj.cloud);
                }
            }
        }
        let vol = inj.volume_name();
        if !mount_names.contains(vol) {
            if mount_paths.contains(&inj.mount_path) {
                // A second mount at the same path would make the pod invalid: leave the
                // user's one, and say that this container's identity will not work.
                out.warnings.push(format!(
                    "container {:?} already mounts a volume at {}; the {} token is not mounted \
                     there, so the container's {} identity will not work",
                    c.name(),
                    inj.mount_path,
                    inj.cloud,
                    inj.cloud
                ));
            } else {
                mount_names.insert(vol.to_string());
                mount_paths.insert(inj.mount_path.clone());
                new_mounts
                    .push(json!({"name": vol, "mountPath": inj.mount_path, "readOnly": true}));
                out.changed.insert(inj.cloud);
            }
        }
        for (vol, path, ro) in &inj.extra_mounts {
            if !mount_names.contains(vol) && !mount_paths.contains(path) {
                mount_names.insert(vol.clone());
                mount_paths.insert(path.clone());
                new_mounts.push(mount(vol, path, *ro));
                out.changed.insert(inj.cloud);
            }
        }
    }

    append_ops(
        &mut out.ops,
        &["spec", list, &index, "env"],
        c.has_env(),
        new_env,
    );
    append_ops(
        &mut out.ops,
        &["spec", list, &index, "volumeMounts"],
        c.has_mounts(),
        new_mounts,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injection() -> Injection {
        Injection {
            cloud: Cloud::Aws,
            volume: json!({"name": "tok", "projected": {"sources": []}}),
            mount_path: "/var/run/tok".into(),
            env: vec![
                EnvGroup::single("A", "1"),
                EnvGroup {
                    unless_defined: vec!["R1".into(), "R2".into()],
                    vars: vec![("R1".into(), "x".into()), ("R2".into(), "x".into())],
                },
            ],
            skip_containers: BTreeSet::from(["sidecar".to_string()]),
            annotations: BTreeMap::from([("k/a".to_string(), "v".to_string())]),
            labels: BTreeMap::new(),
            extra_volumes: vec![],
            extra_mounts: vec![],
            init_containers: vec![],
        }
    }

    fn paths(p: &PlannedPatch) -> Vec<String> {
        p.ops.iter().map(|o| o.path().to_string()).collect()
    }

    #[test]
    fn missing_arrays_are_created_whole() {
        let pod = json!({"metadata": {}, "spec": {"containers": [{"name": "app"}]}});
        let p = plan_patch(&PodView::new(&pod), &[injection()]);
        assert_eq!(
            paths(&p),
            [
                "/metadata/annotations",
                "/spec/volumes",
                "/spec/containers/0/env",
                "/spec/containers/0/volumeMounts"
            ]
        );
        assert_eq!(p.changed, BTreeSet::from([Cloud::Aws]));
    }

    #[test]
    fn existing_arrays_get_one_append_per_item() {
        let pod = json!({
            "metadata": {"annotations": {"other": "x"}},
            "spec": {"volumes": [{"name": "data"}], "containers": [{
                "name": "app", "env": [{"name": "B", "value": "2"}], "volumeMounts": []
            }]}
        });
        let p = plan_patch(&PodView::new(&pod), &[injection()]);
        assert_eq!(
            paths(&p),
            [
                "/metadata/annotations/k~1a",
                "/spec/volumes/-",
                "/spec/containers/0/env/-",
                "/spec/containers/0/env/-",
                "/spec/containers/0/env/-",
                "/spec/containers/0/volumeMounts/-"
            ]
        );
    }

    #[test]
    fn a_group_is_skipped_when_any_member_is_defined() {
        let pod = json!({"spec": {"containers": [{
            "name": "app", "env": [{"name": "R2", "value": "mine"}]
        }]}});
        let p = plan_patch(&PodView::new(&pod), &[injection()]);
        let env_values: Vec<_> = p
            .ops
            .iter()
            .filter(|o| o.path().to_string().contains("/env"))
            .map(|o| match o {
                PatchOperation::Add(a) => a.value["name"].clone(),
                _ => Value::Null,
            })
            .collect();
        assert_eq!(env_values, [json!("A")]);
    }

    #[test]
    fn skipped_containers_and_taken_mount_paths_are_left_alone() {
        let pod = json!({"spec": {"containers": [
            {"name": "sidecar"},
            {"name": "app", "volumeMounts": [{"name": "mine", "mountPath": "/var/run/tok"}]}
        ]}});
        let p = plan_patch(&PodView::new(&pod), &[injection()]);
        assert!(paths(&p).iter().all(|s| !s.contains("/containers/0/")));
        assert!(!paths(&p).iter().any(|s| s.contains("volumeMounts")));
    }

    #[test]
    fn changed_owned_annotation_is_replaced() {
        let pod = json!({"metadata": {"annotations": {"k/a": "old"}}, "spec": {
            "volumes": [{"name": "tok"}], "containers": []
        }});
        let p = plan_patch(&PodView::new(&pod), &[injection()]);
        assert!(matches!(p.ops.as_slice(), [PatchOperation::Replace(_)]));
    }
}
