//! Azure AD workload identity, compatible with azure-workload-identity v1.6's webhook.
//!
//! Trigger: the pod label `azure.workload.identity/use: "true"`. The pod's ServiceAccount must
//! be readable: when it does not exist or cannot be read the pod is **denied** (code 400, with
//! the lookup error, as azure-workload-identity answers), never admitted with half an identity;
//! see [`crate::handler::admit_with`].
//!
//! - ServiceAccount annotations `azure.workload.identity/client-id` and `…/tenant-id` (the
//!   tenant defaults to `AZURE_TENANT_ID`); a missing client id is reported as an admission
//!   warning and `AZURE_CLIENT_ID` is not injected (the container may set it itself).
//! - Lifetime: pod annotation, then ServiceAccount annotation
//!   `azure.workload.identity/service-account-token-expiration` (an empty value counts as
//!   unset), default 3600 s. A value that is not a number or lies outside 3600–86400 s
//!   **refuses** the pod with a message naming the annotation.
//! - Pod annotation `azure.workload.identity/skip-containers` (`;` separated; `,` too).
//! - Each of `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE` and
//!   `AZURE_AUTHORITY_HOST` is added where the container does not define it. The token is the
//!   projected volume `azure-workload-identity-reserved-<sha256(pod name)[..30]>` (audience
//!   `--audience`, default `api://AzureADTokenExchange`), mounted read-only at
//!   `/var/run/secrets/azure/wi`, file `token/azure-identity-token`: the layout v1.6 writes
//!   and tools hard-code. A pod mutated by an older version of this webhook (volume
//!   `azure-identity-token` at `/var/run/secrets/azure/tokens`) is left as it is.
//! - Pod annotation `azure.workload.identity/inject-proxy-sidecar` (any value): the init
//!   container `azwi-proxy-init` (`PROXY_INIT_IMAGE`) and the sidecar `azwi-proxy`
//!   (`PROXY_IMAGE`) on `azure.workload.identity/proxy-sidecar-port` (default 8000), as a
//!   native sidecar (init container, `restartPolicy: Always`) on Kubernetes ≥ 1.32. Refused
//!   for `hostNetwork` pods and unparsable ports.
//! - Custom token endpoint (`--custom-token-endpoint-annotation-suffix` and `…-audience`): a pod
//!   annotated `azure.workload.identity/use-<suffix>: "true"` gets that audience and
//!   `AZURE_KUBERNETES_TOKEN_PROXY`, `…_SNI_NAME`, `…_CA_FILE`, `…_CA_DATA` (from the
//!   environment variables of the same names, each only when set), and the CA from
//!   `AZURE_KUBERNETES_CA_CONFIGMAP_NAME` or a ClusterTrustBundle
//!   (`AZURE_KUBERNETES_CA_CTB_SIGNER_NAME`, `…_LABEL_SELECTOR`) in the token volume.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::AzureConfig;
use crate::patch::{Cloud, EnvGroup, Injection, NewContainer, Position};
use crate::pod::{parse_container_list, ContainerList, PodView};
use crate::token::{parse_seconds, projected_token_volume};
use crate::Decision;

/// Pod label that opts a pod in.
pub const USE_LABEL: &str = "azure.workload.identity/use";
/// ServiceAccount annotation naming the application (client) id.
pub const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
/// ServiceAccount annotation naming the tenant.
pub const TENANT_ID_ANNOTATION: &str = "azure.workload.identity/tenant-id";
/// Pod or ServiceAccount annotation setting the token lifetime.
pub const EXPIRATION_ANNOTATION: &str = "azure.workload.identity/service-account-token-expiration";
/// Pod annotation listing containers to leave alone.
pub const SKIP_CONTAINERS_ANNOTATION: &str = "azure.workload.identity/skip-containers";
/// Pod annotation asking for the proxy sidecar.
pub const INJECT_PROXY_ANNOTATION: &str = "azure.workload.identity/inject-proxy-sidecar";
/// Pod annotation with the proxy port.
pub const PROXY_PORT_ANNOTATION: &str = "azure.workload.identity/proxy-sidecar-port";
/// Default audience of the projected token.
pub const AUDIENCE: &str = "api://AzureADTokenExchange";
/// Prefix of the injected volume's name.
pub const VOLUME_PREFIX: &str = "azure-workload-identity-reserved-";
/// Mount directory of the token volume.
pub const MOUNT_PATH: &str = "/var/run/secrets/azure/wi";
/// Token file inside the mount.
pub const TOKEN_PATH: &str = "token/azure-identity-token";
/// CA file inside the mount (custom token endpoint).
pub const CA_PATH: &str = "ca-cert/ca.crt";
/// Volume name written by earlier versions of this webhook.
pub const LEGACY_VOLUME_NAME: &str = "azure-identity-token";
/// Default lifetime.
pub const DEFAULT_EXPIRATION: i64 = 3600;
/// Accepted lifetime range (Azure AD refuses tokens outside it).
pub const EXPIRATION_RANGE: std::ops::RangeInclusive<i64> = 3600..=86400;
/// Default proxy port.
pub const DEFAULT_PROXY_PORT: i64 = 8000;
/// Name of the proxy init container.
pub const PROXY_INIT_NAME: &str = "azwi-proxy-init";
/// Name of the proxy sidecar.
pub const PROXY_NAME: &str = "azwi-proxy";

/// The token volume's name for a pod named `pod_name` (see [`PodView::azure_name`]).
pub fn volume_name(pod_name: &str) -> String {
    let hash = hex_lower(&Sha256::digest(pod_name.as_bytes()));
    format!("{VOLUME_PREFIX}{}", &hash[..63 - VOLUME_PREFIX.len()])
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn token_lifetime(
    pod: &PodView<'_>,
    sa_annotations: &BTreeMap<String, String>,
) -> Result<i64, String> {
    let (source, raw) = match (
        pod.annotation(EXPIRATION_ANNOTATION)
            .filter(|s| !s.is_empty()),
        sa_annotations
            .get(EXPIRATION_ANNOTATION)
            .map(String::as_str)
            .filter(|s| !s.is_empty()),
    ) {
        (Some(v), _) => ("pod", Some(v)),
        (None, Some(v)) => ("ServiceAccount", Some(v)),
        (None, None) => ("", None),
    };
    match raw {
        None => Ok(DEFAULT_EXPIRATION),
        Some(value) => match parse_seconds(EXPIRATION_ANNOTATION, value) {
            Ok(v) if EXPIRATION_RANGE.contains(&v) => Ok(v),
            Ok(v) => Err(format!(
                "{source} annotation {EXPIRATION_ANNOTATION}={v} is outside the range Azure AD accepts: \
                 the token lifetime must be between {} and {} seconds",
                EXPIRATION_RANGE.start(),
                EXPIRATION_RANGE.end()
            )),
            Err(msg) => Err(format!("{source} {msg}")),
        },
    }
}

fn proxy_containers(pod: &PodView<'_>, cfg: &AzureConfig) -> Result<Vec<NewContainer>, String> {
    if pod.host_network() {
        return Err(format!(
            "{INJECT_PROXY_ANNOTATION} is set but the pod uses hostNetwork; the proxy sidecar \
             cannot be injected"
        ));
    }
    let port = match pod.annotation(PROXY_PORT_ANNOTATION) {
        None => DEFAULT_PROXY_PORT,
        Some(v) => v
            .parse::<i32>()
            .map(i64::from)
            .map_err(|_| format!("failed to parse proxy sidecar port: annotation {PROXY_PORT_ANNOTATION}={v:?} is not a 32-bit integer"))?,
    };
    let init = json!({
        "name": PROXY_INIT_NAME,
        "image": cfg.proxy_init_image,
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
            "privileged": true,
            "runAsNonRoot": false,
            "runAsUser": 0
        },
        "env": [{"name": "PROXY_PORT", "value": port.to_string()}],
    });
    let level = &cfg.proxy_log_level;
    let mut sidecar = json!({
        "name": PROXY_NAME,
        "image": cfg.proxy_image,
        "imagePullPolicy": "IfNotPresent",
        "args": [format!("--proxy-port={port}"), format!("--log-level={level}")],
        "ports": [{"containerPort": port}],
        "lifecycle": {"postStart": {"exec": {"command": [
            "/proxy", format!("--proxy-port={port}"), "--probe", format!("--log-level={level}")
        ]}}},
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "privileged": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true
        },
    });
    let sidecar_list = if cfg.native_sidecar {
        if let Some(m) = sidecar.as_object_mut() {
            m.insert("restartPolicy".into(), json!("Always"));
        }
        ContainerList::Init
    } else {
        ContainerList::Regular
    };
    Ok(vec![
        NewContainer {
            list: ContainerList::Init,
            position: Position::Last,
            container: init,
            mutate: true,
        },
        NewContainer {
            list: sidecar_list,
            position: Position::First,
            container: sidecar,
            mutate: true,
        },
    ])
}

/// Decide what Azure needs in `pod`, given its ServiceAccount's annotations (the caller has
/// checked that the ServiceAccount exists).
pub fn plan(
    pod: &PodView<'_>,
    sa_annotations: &BTreeMap<String, String>,
    cfg: &AzureConfig,
    warnings: &mut Vec<String>,
) -> Decision {
    if pod.label(USE_LABEL) != Some("true") {
        return Decision::Skip;
    }
    let existing = pod.volume_names();
    if existing.contains(LEGACY_VOLUME_NAME) {
        return Decision::Skip;
    }

    let new_containers = if pod.annotation(INJECT_PROXY_ANNOTATION).is_some() {
        match proxy_containers(pod, cfg) {
            Ok(c) => c,
            Err(msg) => return Decision::Refuse(msg),
        }
    } else {
        vec![]
    };
    let expiration = match token_lifetime(pod, sa_annotations) {
        Ok(v) => v,
        Err(msg) => return Decision::Refuse(msg),
    };

    let custom = cfg.custom_token_endpoint.as_ref().filter(|c| {
        pod.annotation(&c.annotation)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    });

    let client_id = sa_annotations
        .get(CLIENT_ID_ANNOTATION)
        .cloned()
        .filter(|s| !s.is_empty());
    let tenant_id = match sa_annotations.get(TENANT_ID_ANNOTATION) {
        Some(t) => Some(t.clone()),
        None => cfg.tenant_id.clone(),
    }
    .filter(|s| !s.is_empty());

    let mut env = Vec::new();
    match client_id {
        Some(id) => env.push(EnvGroup::single("AZURE_CLIENT_ID", id)),
        None => warnings.push(format!(
            "ServiceAccount has no {CLIENT_ID_ANNOTATION} annotation; AZURE_CLIENT_ID not injected"
        )),
    }
    match tenant_id {
        Some(id) => env.push(EnvGroup::single("AZURE_TENANT_ID", id)),
        None => warnings.push(format!(
            "ServiceAccount has no {TENANT_ID_ANNOTATION} annotation and the webhook has no default tenant; \
             AZURE_TENANT_ID not injected"
        )),
    }
    env.push(EnvGroup::single(
        "AZURE_FEDERATED_TOKEN_FILE",
        format!("{MOUNT_PATH}/{TOKEN_PATH}"),
    ));
    env.push(EnvGroup::single(
        "AZURE_AUTHORITY_HOST",
        cfg.authority_host.clone(),
    ));
    let mut extra_sources = Vec::new();
    if custom.is_some() {
        let e = &cfg.custom_env;
        for (name, value) in [
            ("AZURE_KUBERNETES_TOKEN_PROXY", e.token_proxy.clone()),
            ("AZURE_KUBERNETES_SNI_NAME", e.sni_name.clone()),
            (
                "AZURE_KUBERNETES_CA_FILE",
                format!("{MOUNT_PATH}/{CA_PATH}"),
            ),
            ("AZURE_KUBERNETES_CA_DATA", e.ca_data.clone()),
        ] {
            if !value.is_empty() {
                env.push(EnvGroup::single(name, value));
            }
        }
        if !e.ca_configmap_name.is_empty() {
            extra_sources.push(json!({"configMap": {
                "name": e.ca_configmap_name,
                "items": [{"key": "ca.crt", "path": CA_PATH}],
                "optional": false
            }}));
        }
        if !e.ca_ctb_signer_name.is_empty() {
            let mut ctb = json!({
                "signerName": e.ca_ctb_signer_name, "path": CA_PATH, "optional": false
            });
            if let (Some(sel), Some(m)) = (&e.ca_ctb_label_selector, ctb.as_object_mut()) {
                m.insert("labelSelector".into(), sel.clone());
            }
            extra_sources.push(json!({"clusterTrustBundle": ctb}));
        }
    }
    let audience = custom.map_or(cfg.audience.as_str(), |c| c.audience.as_str());

    let name = existing
        .iter()
        .find(|n| n.starts_with(VOLUME_PREFIX))
        .map_or_else(|| volume_name(&pod.azure_name()), |n| n.to_string());
    let volume: Value =
        projected_token_volume(pod, &name, audience, expiration, TOKEN_PATH, extra_sources);

    Decision::Inject(Box::new(Injection {
        cloud: Cloud::Azure,
        volume,
        mount_path: MOUNT_PATH.to_string(),
        env,
        skip_containers: parse_container_list(pod.annotation(SKIP_CONTAINERS_ANNOTATION)),
        annotations: BTreeMap::new(),
        labels: BTreeMap::new(),
        extra_volumes: vec![],
        extra_mounts: vec![],
        init_containers: new_containers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WebhookConfig;
    use rstest::rstest;
    use serde_json::{json, Value};

    fn pod(annotations: Value) -> Value {
        json!({"metadata": {"labels": {USE_LABEL: "true"}, "annotations": annotations}, "spec": {}})
    }

    fn sa(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(pod: &Value, sa_ann: &[(&str, &str)]) -> (Decision, Vec<String>) {
        let mut w = vec![];
        let cfg = AzureConfig {
            tenant_id: Some("default-tenant".into()),
            ..WebhookConfig::default().azure
        };
        (plan(&PodView::new(pod), &sa(sa_ann), &cfg, &mut w), w)
    }

    #[rstest]
    #[case::below_range("3599")]
    #[case::above_range("86401")]
    #[case::not_a_number("1h")]
    fn out_of_range_expiration_is_refused_with_a_clear_message(#[case] value: &str) {
        let (d, _) = run(&pod(json!({})), &[(EXPIRATION_ANNOTATION, value)]);
        let Decision::Refuse(msg) = d else {
            panic!("expected a refusal, got {d:?}")
        };
        assert!(msg.contains(EXPIRATION_ANNOTATION), "{msg}");
        assert!(msg.contains("ServiceAccount"), "{msg}");
    }

    #[rstest]
    #[case::lower_bound("3600", 3600)]
    #[case::upper_bound("86400", 86400)]
    fn expiration_bounds_are_inclusive(#[case] value: &str, #[case] expected: i64) {
        let (d, _) = run(&pod(json!({})), &[(EXPIRATION_ANNOTATION, value)]);
        let Decision::Inject(inj) = d else {
            panic!("expected injection, got {d:?}")
        };
        assert_eq!(
            inj.volume["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            expected
        );
    }

    #[test]
    fn pod_expiration_annotation_overrides_sa_and_is_validated_too() {
        let (d, _) = run(
            &pod(json!({EXPIRATION_ANNOTATION: "100"})),
            &[(EXPIRATION_ANNOTATION, "7200")],
        );
        assert!(matches!(d, Decision::Refuse(m) if m.starts_with("pod annotation")));
    }

    #[test]
    fn pods_without_the_label_are_skipped() {
        let p = json!({"metadata": {"labels": {USE_LABEL: "false"}}});
        assert!(matches!(run(&p, &[]).0, Decision::Skip));
    }

    #[test]
    fn tenant_defaults_to_the_flag_and_sa_annotation_wins() {
        let names = |d: Decision| match d {
            Decision::Inject(i) => i.env.into_iter().flat_map(|g| g.vars).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        let vars = names(run(&pod(json!({})), &[(CLIENT_ID_ANNOTATION, "cid")]).0);
        assert!(vars.contains(&("AZURE_TENANT_ID".into(), "default-tenant".into())));
        assert!(vars.contains(&("AZURE_CLIENT_ID".into(), "cid".into())));
        let vars = names(run(&pod(json!({})), &[(TENANT_ID_ANNOTATION, "t2")]).0);
        assert!(vars.contains(&("AZURE_TENANT_ID".into(), "t2".into())));
        assert!(vars.contains(&(
            "AZURE_FEDERATED_TOKEN_FILE".into(),
            "/var/run/secrets/azure/wi/token/azure-identity-token".into()
        )));
    }

    #[test]
    fn missing_client_id_is_a_warning_not_a_failure() {
        let (d, w) = run(&pod(json!({})), &[]);
        assert!(matches!(d, Decision::Inject(_)));
        assert!(w.iter().any(|m| m.contains(CLIENT_ID_ANNOTATION)));
    }
}
