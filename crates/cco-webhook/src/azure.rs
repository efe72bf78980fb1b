//! Azure AD workload identity, compatible with azure-workload-identity's webhook.
//!
//! Trigger: the pod label `azure.workload.identity/use: "true"`.
//!
//! - ServiceAccount annotations `azure.workload.identity/client-id` and `…/tenant-id` (the
//!   tenant defaults to `--azure-tenant-id`); a missing value is reported as an admission
//!   warning and its variable is not injected, so the container can still set it itself.
//! - Lifetime: pod annotation, then ServiceAccount annotation
//!   `azure.workload.identity/service-account-token-expiration`, default 3600 s. A value that is
//!   not a number or lies outside 3600–86400 s **refuses** the pod with a message naming the
//!   annotation, rather than silently clamping it.
//! - Pod annotation `azure.workload.identity/skip-containers` (`;` or `,` separated).
//! - Each of `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE` and
//!   `AZURE_AUTHORITY_HOST` is added where the container does not define it; the token volume
//!   `azure-identity-token` (audience `api://AzureADTokenExchange`) is mounted read-only at
//!   `/var/run/secrets/azure/tokens`.

use std::collections::BTreeMap;

use crate::config::AzureConfig;
use crate::patch::{Cloud, EnvGroup, Injection};
use crate::pod::{parse_container_list, PodView};
use crate::token::{parse_seconds, projected_token_volume, token_file};
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
/// Audience of the projected token.
pub const AUDIENCE: &str = "api://AzureADTokenExchange";
/// Name of the injected volume, also the token's file name.
pub const VOLUME_NAME: &str = "azure-identity-token";
/// Mount directory of the token volume.
pub const MOUNT_PATH: &str = "/var/run/secrets/azure/tokens";
/// Default lifetime.
pub const DEFAULT_EXPIRATION: i64 = 3600;
/// Accepted lifetime range (Azure AD refuses tokens outside it).
pub const EXPIRATION_RANGE: std::ops::RangeInclusive<i64> = 3600..=86400;

/// Decide what Azure needs in `pod`, given its ServiceAccount's annotations.
pub fn plan(
    pod: &PodView<'_>,
    sa_annotations: &BTreeMap<String, String>,
    cfg: &AzureConfig,
    warnings: &mut Vec<String>,
) -> Decision {
    if pod.label(USE_LABEL) != Some("true") {
        return Decision::Skip;
    }

    let (source, raw) = match (
        pod.annotation(EXPIRATION_ANNOTATION),
        sa_annotations.get(EXPIRATION_ANNOTATION),
    ) {
        (Some(v), _) => ("pod", Some(v)),
        (None, Some(v)) => ("ServiceAccount", Some(v.as_str())),
        (None, None) => ("", None),
    };
    let expiration = match raw {
        None => DEFAULT_EXPIRATION,
        Some(value) => match parse_seconds(EXPIRATION_ANNOTATION, value) {
            Ok(v) if EXPIRATION_RANGE.contains(&v) => v,
            Ok(v) => {
                return Decision::Refuse(format!(
                    "{source} annotation {EXPIRATION_ANNOTATION}={v} is outside the range Azure AD accepts: \
                     the token lifetime must be between {} and {} seconds",
                    EXPIRATION_RANGE.start(),
                    EXPIRATION_RANGE.end()
                ))
            }
            Err(msg) => return Decision::Refuse(format!("{source} {msg}")),
        },
    };

    let non_empty = |v: Option<&String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let client_id = non_empty(sa_annotations.get(CLIENT_ID_ANNOTATION));
    let tenant_id =
        non_empty(sa_annotations.get(TENANT_ID_ANNOTATION)).or_else(|| cfg.tenant_id.clone());

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
        token_file(pod, MOUNT_PATH, VOLUME_NAME),
    ));
    env.push(EnvGroup::single(
        "AZURE_AUTHORITY_HOST",
        cfg.authority_host.clone(),
    ));

    Decision::Inject(Injection {
        cloud: Cloud::Azure,
        volume: projected_token_volume(
            pod,
            VOLUME_NAME,
            &cfg.audience,
            expiration,
            VOLUME_NAME,
            vec![],
        ),
        mount_path: MOUNT_PATH.to_string(),
        env,
        skip_containers: parse_container_list(pod.annotation(SKIP_CONTAINERS_ANNOTATION)),
        annotations: BTreeMap::new(),
    })
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
            "/var/run/secrets/azure/tokens/azure-identity-token".into()
        )));
    }

    #[test]
    fn missing_client_id_is_a_warning_not_a_failure() {
        let (d, w) = run(&pod(json!({})), &[]);
        assert!(matches!(d, Decision::Inject(_)));
        assert!(w.iter().any(|m| m.contains(CLIENT_ID_ANNOTATION)));
    }
}
