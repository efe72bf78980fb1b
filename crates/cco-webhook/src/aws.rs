//! AWS IAM roles for service accounts, compatible with amazon-eks-pod-identity-webhook.
//!
//! Trigger: the ServiceAccount carries `<prefix>/role-arn` and the pod is not labelled
//! `<prefix>/skip-pod-identity-webhook: "true"` (prefix `eks.amazonaws.com` by default).
//!
//! | setting | pod annotation | ServiceAccount annotation | flag |
//! |---|---|---|---|
//! | audience | – | `<prefix>/audience` | `--token-audience` |
//! | regional STS | – | `<prefix>/sts-regional-endpoints` | `--sts-regional-endpoint` |
//! | lifetime | `<prefix>/token-expiration` | `<prefix>/token-expiration` | `--token-expiration` |
//! | skipped containers | `<prefix>/skip-containers` (comma list) | – | – |
//!
//! The leftmost source that is set and valid wins; lifetimes are clamped up to 600 s. Per
//! container, as the EKS webhook does: `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE` are added
//! together unless either is defined; `AWS_STS_REGIONAL_ENDPOINTS=regional` when enabled and not
//! defined; `AWS_DEFAULT_REGION` and `AWS_REGION` together when a region is configured and the
//! container defines neither. The token volume `aws-iam-token` is mounted read-only in init and
//! regular containers. `sts-regional-endpoints` is read with Go's `strconv.ParseBool` (`True`,
//! `1`, `t`, …).
//!
//! Also, as the EKS webhook:
//! - `--watch-config-map`: a ServiceAccount without `role-arn` takes its role, audience,
//!   regional STS and lifetime from the ConfigMap `pod-identity-webhook` ([`RoleEntry`]);
//! - `--compose-role-arn`: a `role-arn` annotation without `arn:` (a role name or
//!   `path/name`) becomes `arn:<partition>:iam::<account>:role/<value>`, partition and account
//!   read from EC2 instance metadata at startup ([`crate::imds`]); ConfigMap roles are used as
//!   written, as in the EKS webhook;
//! - EKS Pod Identity (`--watch-container-credentials-config`): a ServiceAccount listed in the
//!   association file gets `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
//!   `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (instead of the IRSA pair), the volume
//!   `eks-pod-identity-token` (audience `pods.eks.amazonaws.com`) and the pod label
//!   `eks.amazonaws.com/pod-identity: enabled`. The EKS webhook randomises a default lifetime
//!   between 22 h and 24 h; here it stays the configured value (deterministic patches).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::config::AwsConfig;
use crate::flags::parse_go_bool;
use crate::patch::{Cloud, EnvGroup, Injection};
use crate::pod::{parse_container_list, PodView};
use crate::token::{clamp_expiration, parse_seconds, projected_token_volume, token_file};
use crate::Decision;

/// Name of the injected volume.
pub const VOLUME_NAME: &str = "aws-iam-token";
/// File name of the token inside the mount.
pub const TOKEN_FILE: &str = "token";
/// Pod label set on pods using EKS Pod Identity.
pub const POD_IDENTITY_LABEL: &str = "eks.amazonaws.com/pod-identity";

/// One ServiceAccount's settings from the `pod-identity-webhook` ConfigMap (`data.config`, a JSON
/// object keyed `<namespace>/<name>`, `*/<name>` for every namespace), as the EKS webhook reads
/// it (Go field names, matched case-insensitively there; both spellings here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RoleEntry {
    /// Role to assume.
    #[serde(rename = "RoleARN", alias = "roleARN", alias = "roleArn", default)]
    pub role_arn: String,
    /// Token audience (the flag's when empty).
    #[serde(rename = "Audience", alias = "audience", default)]
    pub audience: String,
    /// AWS_STS_REGIONAL_ENDPOINTS=regional.
    #[serde(rename = "UseRegionalSTS", alias = "useRegionalSTS", default)]
    pub use_regional_sts: bool,
    /// Token lifetime (the flag's when 0).
    #[serde(rename = "TokenExpiration", alias = "tokenExpiration", default)]
    pub token_expiration: i64,
}

/// What the AWS planner needs besides the pod and the ServiceAccount annotations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    /// The ConfigMap's entry for this ServiceAccount.
    pub config_map_role: Option<&'a RoleEntry>,
    /// The ServiceAccount has an EKS Pod Identity association.
    pub pod_identity_association: bool,
}

/// Decide what AWS needs in `pod`, given its ServiceAccount's annotations.
pub fn plan(
    pod: &PodView<'_>,
    sa_annotations: &BTreeMap<String, String>,
    inputs: &Inputs<'_>,
    cfg: &AwsConfig,
    warnings: &mut Vec<String>,
) -> Decision {
    let key = |name: &str| format!("{}/{}", cfg.annotation_prefix, name);

    if pod.label(&key("skip-pod-identity-webhook")) == Some("true") {
        return Decision::Skip;
    }
    let sa_role = sa_annotations
        .get(&key("role-arn"))
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|arn| compose_arn(arn, cfg));
    let cm_role = inputs
        .config_map_role
        .filter(|e| !e.role_arn.is_empty() && sa_role.is_none());
    if sa_role.is_none() && cm_role.is_none() && !inputs.pod_identity_association {
        return Decision::Skip;
    }

    let regional_key = key("sts-regional-endpoints");
    let mut regional = cfg.sts_regional_endpoints;
    if let Some(entry) = cm_role {
        regional = entry.use_regional_sts;
    }
    if let Some(value) = sa_annotations.get(&regional_key) {
        match parse_go_bool(value) {
            Ok(b) => regional = b,
            Err(_) => warnings.push(format!(
                "ServiceAccount annotation {regional_key}={value:?} is not a boolean; using the webhook default"
            )),
        }
    }

    let exp_key = key("token-expiration");
    let mut expiration = cfg.token_expiration;
    if let Some(entry) = cm_role.filter(|e| e.token_expiration != 0) {
        expiration = entry.token_expiration;
    }
    for value in [
        sa_annotations.get(&exp_key).map(String::as_str),
        pod.annotation(&exp_key),
    ]
    .into_iter()
    .flatten()
    {
        match parse_seconds(&exp_key, value) {
            Ok(v) => expiration = v,
            Err(msg) => warnings.push(msg),
        }
    }
    let expiration = clamp_expiration(expiration);

    let skip: BTreeSet<String> = parse_container_list(pod.annotation(&key("skip-containers")));

    let mut env = Vec::new();
    if regional {
        env.push(EnvGroup::single("AWS_STS_REGIONAL_ENDPOINTS", "regional"));
    }
    if let Some(region) = &cfg.region {
        env.push(EnvGroup {
            unless_defined: vec!["AWS_REGION".into(), "AWS_DEFAULT_REGION".into()],
            vars: vec![
                ("AWS_DEFAULT_REGION".into(), region.clone()),
                ("AWS_REGION".into(), region.clone()),
            ],
        });
    }

    // EKS Pod Identity takes precedence over IRSA, as in the EKS webhook.
    if inputs.pod_identity_association {
        let cc = &cfg.container_credentials;
        let token_path = token_file(pod, &cc.mount_path, &cc.token_path);
        env.push(EnvGroup {
            unless_defined: vec![
                "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".into(),
            ],
            vars: vec![
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
                    cc.full_uri.clone(),
                ),
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".into(), token_path),
            ],
        });
        return Decision::Inject(Box::new(Injection {
            cloud: Cloud::Aws,
            volume: projected_token_volume(
                pod,
                &cc.volume_name,
                &cc.audience,
                expiration,
                &cc.token_path,
                vec![],
            ),
            mount_path: cc.mount_path.clone(),
            env,
            skip_containers: skip,
            annotations: BTreeMap::new(),
            labels: BTreeMap::from([(POD_IDENTITY_LABEL.to_string(), "enabled".to_string())]),
            extra_volumes: vec![],
            extra_mounts: vec![],
            init_containers: vec![],
        }));
    }

    let (role_arn, audience) = match (sa_role, cm_role) {
        (Some(arn), _) => (
            arn,
            sa_annotations
                .get(&key("audience"))
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .unwrap_or(&cfg.token_audience)
                .to_string(),
        ),
        // The EKS webhook composes annotation roles only; ConfigMap roles are used as written.
        (None, Some(entry)) => (
            entry.role_arn.clone(),
            Some(entry.audience.clone())
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| cfg.token_audience.clone()),
        ),
        (None, None) => return Decision::Skip,
    };
    let token_path = token_file(pod, &cfg.token_mount_path, TOKEN_FILE);
    env.push(EnvGroup {
        unless_defined: vec!["AWS_ROLE_ARN".into(), "AWS_WEB_IDENTITY_TOKEN_FILE".into()],
        vars: vec![
            ("AWS_ROLE_ARN".into(), role_arn),
            ("AWS_WEB_IDENTITY_TOKEN_FILE".into(), token_path),
        ],
    });

    Decision::Inject(Box::new(Injection {
        cloud: Cloud::Aws,
        volume: projected_token_volume(pod, VOLUME_NAME, &audience, expiration, TOKEN_FILE, vec![]),
        mount_path: cfg.token_mount_path.clone(),
        env,
        skip_containers: skip,
        annotations: BTreeMap::new(),
        labels: BTreeMap::new(),
        extra_volumes: vec![],
        extra_mounts: vec![],
        init_containers: vec![],
    }))
}

/// `/debug/alpha/cache` as the EKS webhook writes it: every cached ServiceAccount keyed
/// `<namespace>/<name>`, with the role, audience, regional STS and lifetime its annotations and
/// the flags give (`RoleARN` empty without a role), indented by one space.
pub fn cache_dump(
    service_accounts: &BTreeMap<String, k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
    cfg: &AwsConfig,
) -> String {
    let key = |name: &str| format!("{}/{}", cfg.annotation_prefix, name);
    let entries: serde_json::Map<String, serde_json::Value> = service_accounts
        .iter()
        .map(|(id, meta)| {
            let get = |name: &str| {
                meta.annotations
                    .as_ref()
                    .and_then(|a| a.get(&key(name)))
                    .map(String::as_str)
            };
            let entry = serde_json::json!({
                "RoleARN": get("role-arn").map(|a| compose_arn(a, cfg)).unwrap_or_default(),
                "Audience": get("audience").unwrap_or(&cfg.token_audience),
                "UseRegionalSTS": get("sts-regional-endpoints")
                    .and_then(|v| parse_go_bool(v).ok())
                    .unwrap_or(cfg.sts_regional_endpoints),
                "TokenExpiration": get("token-expiration")
                    .and_then(|v| v.parse::<i64>().ok())
                    .map(|v| v.max(crate::config::MIN_TOKEN_EXPIRATION))
                    .unwrap_or(cfg.token_expiration),
            });
            (id.clone(), entry)
        })
        .collect();
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b" "),
    );
    match serde::Serialize::serialize(&entries, &mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => "{}".into(),
    }
}

/// With `--compose-role-arn`, a role name or path becomes a full ARN in the instance's
/// partition and account.
fn compose_arn(arn: &str, cfg: &AwsConfig) -> String {
    match &cfg.compose_role_arn {
        Some(c) if !arn.contains("arn:") => {
            format!("arn:{}:iam::{}:role/{}", c.partition, c.account_id, arn)
        }
        _ => arn.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WebhookConfig;
    use rstest::rstest;
    use serde_json::{json, Value};

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn plan_for(
        pod: &Value,
        sa: &[(&str, &str)],
        cfg: &AwsConfig,
    ) -> (Option<Injection>, Vec<String>) {
        let mut warnings = vec![];
        match plan(
            &PodView::new(pod),
            &annotations(sa),
            &Inputs::default(),
            cfg,
            &mut warnings,
        ) {
            Decision::Inject(i) => (Some(*i), warnings),
            Decision::Skip => (None, warnings),
            Decision::Refuse(m) => panic!("refused: {m}"),
        }
    }

    const ROLE: (&str, &str) = (
        "eks.amazonaws.com/role-arn",
        "arn:aws:iam::111122223333:role/r",
    );

    fn expiration(i: &Injection) -> i64 {
        i.volume["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"]
            .as_i64()
            .unwrap_or_default()
    }

    #[rstest]
    #[case::flag_default(&[], &[], 86400)]
    #[case::sa_overrides_flag(&[("eks.amazonaws.com/token-expiration", "7200")], &[], 7200)]
    #[case::pod_overrides_sa(
        &[("eks.amazonaws.com/token-expiration", "7200")],
        &[("eks.amazonaws.com/token-expiration", "3600")], 3600
    )]
    #[case::minimum_is_600(&[], &[("eks.amazonaws.com/token-expiration", "60")], 600)]
    #[case::invalid_pod_value_falls_back(
        &[("eks.amazonaws.com/token-expiration", "7200")],
        &[("eks.amazonaws.com/token-expiration", "soon")], 7200
    )]
    fn token_expiration_precedence_is_pod_then_sa_then_flag(
        #[case] sa: &[(&str, &str)],
        #[case] pod_ann: &[(&str, &str)],
        #[case] expected: i64,
    ) {
        let mut sa_all = vec![ROLE];
        sa_all.extend_from_slice(sa);
        let pod = json!({"metadata": {"annotations": annotations(pod_ann)}, "spec": {}});
        let (inj, _) = plan_for(&pod, &sa_all, &WebhookConfig::default().aws);
        assert_eq!(expiration(&inj.expect("injected")), expected);
    }

    #[test]
    fn sa_without_role_arn_is_not_mutated() {
        let pod = json!({"spec": {}});
        assert!(plan_for(&pod, &[], &WebhookConfig::default().aws)
            .0
            .is_none());
    }

    #[test]
    fn opt_out_label_skips_the_pod() {
        let pod = json!({"metadata": {"labels": {"eks.amazonaws.com/skip-pod-identity-webhook": "true"}}});
        assert!(plan_for(&pod, &[ROLE], &WebhookConfig::default().aws)
            .0
            .is_none());
    }

    #[test]
    fn sa_audience_and_regional_sts_override_flags() {
        let mut cfg = WebhookConfig::default().aws;
        cfg.sts_regional_endpoints = false;
        let pod = json!({"spec": {}});
        let (inj, _) = plan_for(
            &pod,
            &[
                ROLE,
                ("eks.amazonaws.com/audience", "custom"),
                ("eks.amazonaws.com/sts-regional-endpoints", "true"),
            ],
            &cfg,
        );
        let inj = inj.expect("injected");
        assert_eq!(
            inj.volume["projected"]["sources"][0]["serviceAccountToken"]["audience"],
            "custom"
        );
        assert!(inj
            .env
            .iter()
            .any(|g| g.vars == [("AWS_STS_REGIONAL_ENDPOINTS".into(), "regional".into())]));
    }

    #[test]
    fn custom_prefix_is_honoured() {
        let mut cfg = WebhookConfig::default().aws;
        cfg.annotation_prefix = "example.com".into();
        let pod = json!({"spec": {}});
        assert!(plan_for(&pod, &[ROLE], &cfg).0.is_none());
        assert!(plan_for(&pod, &[("example.com/role-arn", "arn:x")], &cfg)
            .0
            .is_some());
    }

    #[test]
    fn invalid_regional_annotation_warns() {
        let pod = json!({"spec": {}});
        let (_, warnings) = plan_for(
            &pod,
            &[ROLE, ("eks.amazonaws.com/sts-regional-endpoints", "yes")],
            &WebhookConfig::default().aws,
        );
        assert_eq!(warnings.len(), 1);
    }
}
