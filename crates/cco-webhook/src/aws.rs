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
//! regular containers.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::AwsConfig;
use crate::patch::{Cloud, EnvGroup, Injection};
use crate::pod::{parse_container_list, PodView};
use crate::token::{clamp_expiration, parse_seconds, projected_token_volume, token_file};
use crate::Decision;

/// Name of the injected volume.
pub const VOLUME_NAME: &str = "aws-iam-token";
/// File name of the token inside the mount.
pub const TOKEN_FILE: &str = "token";

/// Decide what AWS needs in `pod`, given its ServiceAccount's annotations.
pub fn plan(
    pod: &PodView<'_>,
    sa_annotations: &BTreeMap<String, String>,
    cfg: &AwsConfig,
    warnings: &mut Vec<String>,
) -> Decision {
    let key = |name: &str| format!("{}/{}", cfg.annotation_prefix, name);

    if pod.label(&key("skip-pod-identity-webhook")) == Some("true") {
        return Decision::Skip;
    }
    let Some(role_arn) = sa_annotations
        .get(&key("role-arn"))
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    else {
        return Decision::Skip;
    };

    let audience = sa_annotations
        .get(&key("audience"))
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .unwrap_or(&cfg.token_audience);

    let regional_key = key("sts-regional-endpoints");
    let regional = match sa_annotations.get(&regional_key).map(|s| s.trim()) {
        Some("true") => true,
        Some("false") => false,
        Some(other) => {
            warnings.push(format!(
                "ServiceAccount annotation {regional_key}={other:?} is neither \"true\" nor \"false\"; using the webhook default"
            ));
            cfg.sts_regional_endpoints
        }
        None => cfg.sts_regional_endpoints,
    };

    let exp_key = key("token-expiration");
    let mut expiration = cfg.token_expiration;
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
    let token_path = token_file(pod, &cfg.token_mount_path, TOKEN_FILE);

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
    env.push(EnvGroup {
        unless_defined: vec!["AWS_ROLE_ARN".into(), "AWS_WEB_IDENTITY_TOKEN_FILE".into()],
        vars: vec![
            ("AWS_ROLE_ARN".into(), role_arn.to_string()),
            ("AWS_WEB_IDENTITY_TOKEN_FILE".into(), token_path),
        ],
    });

    Decision::Inject(Injection {
        cloud: Cloud::Aws,
        volume: projected_token_volume(pod, VOLUME_NAME, audience, expiration, TOKEN_FILE, vec![]),
        mount_path: cfg.token_mount_path.clone(),
        env,
        skip_containers: skip,
        annotations: BTreeMap::new(),
    })
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
        match plan(&PodView::new(pod), &annotations(sa), cfg, &mut warnings) {
            Decision::Inject(i) => (Some(i), warnings),
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
