//! `cloud-credential-operator render`: the installer's bootstrap step (its `bootkube.sh` runs
//! `render --dest-dir=… --manifests-dir=… --cloud-credential-operator-image=…`).
//!
//! From the install-time manifests it reads the install-config (ConfigMap
//! `kube-system/cluster-config-v1`, key `install-config`: `credentialsMode`, `capabilities`,
//! `proxy`) and the deprecated ConfigMap `openshift-cloud-credential-operator/
//! cloud-credential-operator-config` (`disabled`), and renders, as the reference does:
//!
//! - `<dest>/manifests/cco-cloudcredential_v1_operator_config_custresdef.yaml`,
//!   `cco-cloudcredential_v1_credentialsrequest_crd.yaml`, `cco-namespace.yaml` (the CRDs and the
//!   namespace the bootstrap control plane needs) and `cco-operator-config.yaml` (CloudCredential
//!   `cluster` with the effective mode);
//! - `<dest>/bootstrap-manifests/cloud-credential-operator-pod.yaml`, the static pod that runs the
//!   operator on the bootstrap node (`operator --log-level=debug --kubeconfig=…`, the install
//!   proxy in its environment), unless the effective mode is Manual.
//!
//! Nothing is rendered when the install-config's capabilities leave `CloudCredential` out. The
//! plan ([`plan`]) is plain data; [`write`] puts it on disk. Unlike the reference, an existing
//! `bootstrap-manifests` directory is not an error, so a re-run completes.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// The CloudCredential CRD (upstream, byte for byte).
const CLOUDCREDENTIAL_CRD: &str =
    include_str!("../../../deploy/bootstrap/cloudcredentials.operator.openshift.io.yaml");
/// The CredentialsRequest CRD (generated from `cco-api`).
const CREDENTIALSREQUEST_CRD: &str =
    include_str!("../../../deploy/operator/01-crd-credentialsrequests.yaml");
/// The operator's namespace.
const NAMESPACE: &str = include_str!("../../../deploy/bootstrap/namespace.yaml");

/// Where the static pod reads the bootstrap kubeconfig (a host path mounted at
/// `/etc/kubernetes/secrets`).
pub const BOOTSTRAP_KUBECONFIG: &str = "/etc/kubernetes/secrets/kubeconfig";

/// Why rendering stopped; each names the file or object at fault.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot list the manifests in {dir}: {source}")]
    ListManifests {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to find configmap kube-system/cluster-config-v1 in manifests {0} (the installer writes it as cluster-config.yaml)")]
    NoInstallConfig(PathBuf),
    #[error("{file}: did not find key install-config in configmap kube-system/cluster-config-v1")]
    NoInstallConfigKey { file: PathBuf },
    #[error("{file}: failed to decode install config (configmap kube-system/cluster-config-v1, key install-config): {reason}")]
    BadInstallConfig { file: PathBuf, reason: String },
    #[error("{file}: invalid mode defined: {mode} (install-config credentialsMode must be empty, Manual, Mint or Passthrough)")]
    InvalidMode { file: PathBuf, mode: String },
    #[error(
        "config map asking for CCO to be disabled, and install-config asking for \"{0}\" mode"
    )]
    Conflict(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the install-config says that rendering uses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstallConfig {
    /// `credentialsMode` ("" = the default mode).
    pub credentials_mode: String,
    /// `capabilities.baselineCapabilitySet` ("" = `vCurrent`).
    pub baseline_capability_set: String,
    /// `capabilities.additionalEnabledCapabilities`.
    pub additional_capabilities: Vec<String>,
    /// Whether `capabilities` was given at all.
    pub has_capabilities: bool,
    /// `proxy.httpProxy`, `proxy.httpsProxy`, `proxy.noProxy` ("" = unset).
    pub http_proxy: String,
    pub https_proxy: String,
    pub no_proxy: String,
}

/// The files to write, relative to the destination directory (empty when the capability is off).
#[derive(Clone, Debug, PartialEq)]
pub struct RenderPlan {
    /// Directories to create, relative.
    pub dirs: Vec<PathBuf>,
    /// (relative path, contents).
    pub files: Vec<(PathBuf, Vec<u8>)>,
    /// The effective mode written into the operator config.
    pub mode: String,
}

/// The ConfigMaps of a manifests directory (first document of each file, as the reference reads
/// them), keyed by (namespace, name), with the file each came from.
fn find_config_map(
    dir: &Path,
    namespace: &str,
    name: &str,
) -> Result<Option<(PathBuf, Value)>, RenderError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RenderError::ListManifests {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Some(doc) = serde_yaml::Deserializer::from_str(&text).next() else {
            continue;
        };
        let Ok(v) = <Value as serde::Deserialize>::deserialize(doc) else {
            continue;
        };
        if v["apiVersion"] == "v1"
            && v["kind"] == "ConfigMap"
            && v["metadata"]["namespace"] == namespace
            && v["metadata"]["name"] == name
        {
            return Ok(Some((path, v)));
        }
    }
    Ok(None)
}

fn string_at(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or_default().to_string()
}

/// Reads the install-config from the manifests (none given: the defaults).
pub fn read_install_config(
    manifests: Option<&Path>,
) -> Result<(InstallConfig, PathBuf), RenderError> {
    let Some(dir) = manifests else {
        return Ok((InstallConfig::default(), PathBuf::new()));
    };
    let (file, cm) = find_config_map(dir, "kube-system", "cluster-config-v1")?
        .ok_or_else(|| RenderError::NoInstallConfig(dir.to_path_buf()))?;
    let data = cm["data"]["install-config"]
        .as_str()
        .ok_or_else(|| RenderError::NoInstallConfigKey { file: file.clone() })?;
    let ic: Value = serde_yaml::from_str(data).map_err(|e| RenderError::BadInstallConfig {
        file: file.clone(),
        reason: e.to_string(),
    })?;
    let caps = &ic["capabilities"];
    Ok((
        InstallConfig {
            credentials_mode: string_at(&ic, &["credentialsMode"]),
            baseline_capability_set: string_at(caps, &["baselineCapabilitySet"]),
            additional_capabilities: caps["additionalEnabledCapabilities"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            has_capabilities: caps.is_object(),
            http_proxy: string_at(&ic, &["proxy", "httpProxy"]),
            https_proxy: string_at(&ic, &["proxy", "httpsProxy"]),
            no_proxy: string_at(&ic, &["proxy", "noProxy"]),
        },
        file,
    ))
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Whether the deprecated ConfigMap disables the operator (`disabled: "true"`); anything unreadable
/// counts as enabled, as in the reference.
pub fn disabled_via_config_map(manifests: Option<&Path>) -> bool {
    let Some(dir) = manifests else {
        return false;
    };
    match find_config_map(
        dir,
        crate::status::OPERATOR_NAMESPACE,
        "cloud-credential-operator-config",
    ) {
        Ok(Some((_, cm))) => cm["data"]["disabled"]
            .as_str()
            .and_then(go_bool)
            .unwrap_or(false),
        _ => false,
    }
}

/// Whether the cluster's capabilities include `CloudCredential`: the baseline set (`vCurrent` when
/// unset; the capability is in v4.15 and later) or the additional ones.
pub fn cloud_credential_enabled(ic: &InstallConfig) -> bool {
    let baseline = if ic.has_capabilities && !ic.baseline_capability_set.is_empty() {
        ic.baseline_capability_set.as_str()
    } else {
        "vCurrent"
    };
    let in_baseline = matches!(baseline, "v4.15" | "v4.16" | "v4.17" | "v4.18" | "vCurrent");
    in_baseline
        || ic
            .additional_capabilities
            .iter()
            .any(|c| c == "CloudCredential")
}

/// The effective mode from the install-config mode and the deprecated ConfigMap, or the conflict
/// between them (the reference's `GetEffectiveOperatorMode`).
pub fn effective_mode(config_map_disabled: bool, mode: &str) -> Result<String, RenderError> {
    if mode.is_empty() {
        return Ok(if config_map_disabled { "Manual" } else { "" }.to_string());
    }
    if config_map_disabled && mode != "Manual" {
        return Err(RenderError::Conflict(mode.to_string()));
    }
    Ok(mode.to_string())
}

/// Recursively sorts object keys (the order `sigs.k8s.io/yaml` writes).
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<String, Value>>(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The bootstrap static pod running `image`, with the install proxy in its environment.
pub fn static_pod(image: &str, ic: &InstallConfig) -> Value {
    let env: Vec<Value> = [
        ("HTTP_PROXY", &ic.http_proxy),
        ("HTTPS_PROXY", &ic.https_proxy),
        ("NO_PROXY", &ic.no_proxy),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| json!({"name": k, "value": v}))
    .collect();
    let mut container = json!({
        "args": ["operator", "--log-level=debug", format!("--kubeconfig={BOOTSTRAP_KUBECONFIG}")],
        "command": ["/usr/bin/cloud-credential-operator"],
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "name": "cloud-credential-operator",
        "resources": {},
        "securityContext": {"readOnlyRootFilesystem": true},
        "volumeMounts": [
            {"mountPath": "/etc/pki/ca-trust/extracted/pem", "name": "cco-trusted-ca", "readOnly": true},
            {"mountPath": "/etc/kubernetes/secrets", "name": "secrets", "readOnly": true},
        ],
    });
    if !env.is_empty() {
        container["env"] = Value::Array(env);
    }
    sorted(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "cloud-credential-operator", "namespace": crate::status::OPERATOR_NAMESPACE},
        "spec": {
            "containers": [container],
            "hostNetwork": true,
            "volumes": [
                {"hostPath": {"path": "/etc/pki/ca-trust/extracted/pem"}, "name": "cco-trusted-ca"},
                {"hostPath": {"path": "/etc/kubernetes/bootstrap-secrets"}, "name": "secrets"},
            ],
        },
        "status": {},
    }))
}

/// What `render` writes, from the manifests directory and the operator image.
pub fn plan(manifests: Option<&Path>, image: &str) -> Result<RenderPlan, RenderError> {
    let disabled = disabled_via_config_map(manifests);
    let (ic, file) = read_install_config(manifests)?;
    if !matches!(
        ic.credentials_mode.as_str(),
        "" | "Manual" | "Mint" | "Passthrough"
    ) {
        return Err(RenderError::InvalidMode {
            file,
            mode: ic.credentials_mode,
        });
    }
    if !cloud_credential_enabled(&ic) {
        return Ok(RenderPlan {
            dirs: vec![],
            files: vec![],
            mode: ic.credentials_mode,
        });
    }
    let mode = effective_mode(disabled, &ic.credentials_mode)?;
    let manifests_dir = PathBuf::from("manifests");
    let mut files = vec![
        (
            manifests_dir.join("cco-cloudcredential_v1_operator_config_custresdef.yaml"),
            CLOUDCREDENTIAL_CRD.as_bytes().to_vec(),
        ),
        (
            manifests_dir.join("cco-cloudcredential_v1_credentialsrequest_crd.yaml"),
            CREDENTIALSREQUEST_CRD.as_bytes().to_vec(),
        ),
        (
            manifests_dir.join("cco-namespace.yaml"),
            NAMESPACE.as_bytes().to_vec(),
        ),
        (
            manifests_dir.join("cco-operator-config.yaml"),
            format!(
                "apiVersion: operator.openshift.io/v1\nkind: CloudCredential\nmetadata:\n  name: cluster\nspec:\n  credentialsMode: \"{mode}\""
            )
            .into_bytes(),
        ),
    ];
    if mode != "Manual" {
        let pod = serde_yaml::to_string(&static_pod(image, &ic)).unwrap_or_default();
        files.push((
            PathBuf::from("bootstrap-manifests").join("cloud-credential-operator-pod.yaml"),
            pod.into_bytes(),
        ));
    }
    Ok(RenderPlan {
        dirs: vec![manifests_dir, PathBuf::from("bootstrap-manifests")],
        files,
        mode,
    })
}

/// Writes the plan under `dest` (directories 0775, files 0644, as the reference).
pub fn write(plan: &RenderPlan, dest: &Path) -> Result<(), RenderError> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RenderError::Write { path, source }
    };
    for d in &plan.dirs {
        let p = dest.join(d);
        std::fs::create_dir_all(&p).map_err(fail(&p))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o775)).map_err(fail(&p))?;
    }
    for (rel, data) in &plan.files {
        let p = dest.join(rel);
        tracing::info!(file = %p.display(), "writing file");
        std::fs::write(&p, data).map_err(fail(&p))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).map_err(fail(&p))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
