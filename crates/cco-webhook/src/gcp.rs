//! GCP workload identity federation through an `external_account` credential configuration.
//!
//! Trigger: the ServiceAccount annotation `cloud.google.com/workload-identity-provider`, which
//! must have the form `projects/<number>/locations/<location>/workloadIdentityPools/<pool>/providers/<provider>`
//! (a leading `//iam.googleapis.com/` is accepted); anything else refuses the pod with a message
//! showing the expected form.
//!
//! Other ServiceAccount annotations:
//! - `cloud.google.com/service-account-email`: impersonated Google service account; without it
//!   the configuration uses the federated identity directly (no impersonation URL).
//! - `cloud.google.com/audience`: audience of the projected token, default `--token-audience`
//!   (`sts.googleapis.com`, as the reference webhook).
//! - `cloud.google.com/token-expiration`: token lifetime, default `--token-expiration` (24 h),
//!   clamped up to 600 s. Pod annotation `cloud.google.com/skip-containers` as for AWS.
//!
//! # No init container
//!
//! The credential configuration is a file, but it is not secret and it is fully determined by the
//! annotations. The webhook writes it into the pod annotation [`CONFIG_ANNOTATION`] and adds one
//! projected volume `gcp-workload-identity` with two sources: the ServiceAccount token (`token`)
//! and a downward-API item rendering that annotation as `credential-configuration.json`. The
//! kubelet materialises both files before any container starts, and
//! `GOOGLE_APPLICATION_CREDENTIALS` points at the JSON file.

use std::collections::BTreeMap;

use serde_json::json;

use crate::config::GcpConfig;
use crate::patch::{Cloud, EnvGroup, Injection};
use crate::pod::{parse_container_list, PodView};
use crate::token::{clamp_expiration, parse_seconds, projected_token_volume, token_file};
use crate::Decision;

/// ServiceAccount annotation naming the workload identity provider.
pub const PROVIDER_ANNOTATION: &str = "cloud.google.com/workload-identity-provider";
/// ServiceAccount annotation naming the Google service account to impersonate.
pub const EMAIL_ANNOTATION: &str = "cloud.google.com/service-account-email";
/// ServiceAccount annotation overriding the token audience.
pub const AUDIENCE_ANNOTATION: &str = "cloud.google.com/audience";
/// ServiceAccount annotation setting the token lifetime.
pub const EXPIRATION_ANNOTATION: &str = "cloud.google.com/token-expiration";
/// Pod annotation listing containers to leave alone.
pub const SKIP_CONTAINERS_ANNOTATION: &str = "cloud.google.com/skip-containers";
/// Pod annotation the webhook writes the credential configuration into.
pub const CONFIG_ANNOTATION: &str = "cloudcredential.openshift.io/gcp-credential-configuration";
/// Name of the injected volume.
pub const VOLUME_NAME: &str = "gcp-workload-identity";
/// Mount directory of the volume.
pub const MOUNT_PATH: &str = "/var/run/secrets/sts.googleapis.com/serviceaccount";
/// Token file name.
pub const TOKEN_FILE: &str = "token";
/// Credential configuration file name.
pub const CONFIG_FILE: &str = "credential-configuration.json";

/// Validate a provider resource name, returning it without any `//iam.googleapis.com/` prefix.
pub fn parse_provider(value: &str) -> Result<&str, String> {
    let name = value.trim();
    let name = name.strip_prefix("//iam.googleapis.com/").unwrap_or(name);
    let parts: Vec<&str> = name.split('/').collect();
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let ok = matches!(
        parts.as_slice(),
        ["projects", project, "locations", location, "workloadIdentityPools", pool, "providers", provider]
            if !project.is_empty() && project.chars().all(|c| c.is_ascii_digit())
                && id_ok(location) && id_ok(pool) && id_ok(provider)
    );
    if ok {
        Ok(name)
    } else {
        Err(format!(
            "ServiceAccount annotation {PROVIDER_ANNOTATION}={value:?} is not a workload identity provider name; \
             expected projects/<project number>/locations/<location>/workloadIdentityPools/<pool>/providers/<provider>"
        ))
    }
}

fn validate_email(value: &str) -> Result<&str, String> {
    let email = value.trim();
    let valid = email
        .split_once('@')
        .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'))
        && !email.contains(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | ':'));
    if valid {
        Ok(email)
    } else {
        Err(format!(
            "ServiceAccount annotation {EMAIL_ANNOTATION}={value:?} is not a service account email"
        ))
    }
}

/// The `external_account` credential configuration for `provider`.
pub fn credential_configuration(
    provider: &str,
    email: Option<&str>,
    token_path: &str,
) -> serde_json::Value {
    let mut cfg = json!({
        "type": "external_account",
        "audience": format!("//iam.googleapis.com/{provider}"),
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
    });
    if let (Some(email), Some(map)) = (email, cfg.as_object_mut()) {
        map.insert(
            "service_account_impersonation_url".into(),
            json!(format!(
                "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{email}:generateAccessToken"
            )),
        );
    }
    if let Some(map) = cfg.as_object_mut() {
        map.insert(
            "credential_source".into(),
            json!({"file": token_path, "format": {"type": "text"}}),
        );
    }
    cfg
}

/// Decide what GCP needs in `pod`, given its ServiceAccount's annotations.
pub fn plan(
    pod: &PodView<'_>,
    sa_annotations: &BTreeMap<String, String>,
    cfg: &GcpConfig,
    warnings: &mut Vec<String>,
) -> Decision {
    let Some(raw_provider) = sa_annotations.get(PROVIDER_ANNOTATION) else {
        return Decision::Skip;
    };
    let provider = match parse_provider(raw_provider) {
        Ok(p) => p,
        Err(msg) => return Decision::Refuse(msg),
    };
    let email = match sa_annotations.get(EMAIL_ANNOTATION).map(|e| e.trim()) {
        None | Some("") => None,
        Some(e) => match validate_email(e) {
            Ok(e) => Some(e),
            Err(msg) => return Decision::Refuse(msg),
        },
    };
    let audience = sa_annotations
        .get(AUDIENCE_ANNOTATION)
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| cfg.audience.clone());
    let expiration = match sa_annotations.get(EXPIRATION_ANNOTATION) {
        None => cfg.token_expiration,
        Some(v) => parse_seconds(EXPIRATION_ANNOTATION, v).unwrap_or_else(|msg| {
            warnings.push(msg);
            cfg.token_expiration
        }),
    };
    let expiration = clamp_expiration(expiration);

    let token_path = token_file(pod, MOUNT_PATH, TOKEN_FILE);
    let config = credential_configuration(provider, email, &token_path).to_string();
    let downward = json!({"downwardAPI": {"items": [{
        "path": CONFIG_FILE,
        "fieldRef": {"apiVersion": "v1", "fieldPath": format!("metadata.annotations['{CONFIG_ANNOTATION}']")},
    }]}});

    Decision::Inject(Injection {
        cloud: Cloud::Gcp,
        volume: projected_token_volume(
            pod,
            VOLUME_NAME,
            &audience,
            expiration,
            TOKEN_FILE,
            vec![downward],
        ),
        mount_path: MOUNT_PATH.to_string(),
        env: vec![EnvGroup::single(
            "GOOGLE_APPLICATION_CREDENTIALS",
            token_file(pod, MOUNT_PATH, CONFIG_FILE),
        )],
        skip_containers: parse_container_list(pod.annotation(SKIP_CONTAINERS_ANNOTATION)),
        annotations: BTreeMap::from([(CONFIG_ANNOTATION.to_string(), config)]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WebhookConfig;
    use rstest::rstest;
    use serde_json::Value;

    const PROVIDER: &str =
        "projects/123456/locations/global/workloadIdentityPools/pool-1/providers/oidc";

    #[rstest]
    #[case(PROVIDER)]
    #[case("//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q")]
    fn valid_provider_names_are_accepted(#[case] name: &str) {
        assert!(parse_provider(name).is_ok());
    }

    #[rstest]
    #[case::project_id_not_number(
        "projects/my-proj/locations/global/workloadIdentityPools/p/providers/q"
    )]
    #[case::missing_provider("projects/1/locations/global/workloadIdentityPools/p")]
    #[case::wrong_keyword("projects/1/locations/global/pools/p/providers/q")]
    #[case::trailing_segment("projects/1/locations/global/workloadIdentityPools/p/providers/q/x")]
    #[case::uppercase("projects/1/locations/global/workloadIdentityPools/P/providers/q")]
    #[case::empty("")]
    fn malformed_provider_names_are_refused(#[case] name: &str) {
        let err = parse_provider(name).expect_err("must be refused");
        assert!(
            err.contains("projects/<project number>/locations/"),
            "{err}"
        );
    }

    fn run(sa: &[(&str, &str)]) -> Decision {
        let pod = json!({"spec": {}});
        let sa = sa
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        plan(
            &PodView::new(&pod),
            &sa,
            &WebhookConfig::default().gcp,
            &mut vec![],
        )
    }

    #[test]
    fn credential_configuration_has_the_external_account_format() {
        let Decision::Inject(inj) = run(&[
            (PROVIDER_ANNOTATION, PROVIDER),
            (EMAIL_ANNOTATION, "app@proj.iam.gserviceaccount.com"),
        ]) else {
            panic!("expected injection")
        };
        let cfg: Value = serde_json::from_str(&inj.annotations[CONFIG_ANNOTATION]).expect("json");
        assert_eq!(
            cfg,
            json!({
                "type": "external_account",
                "audience": format!("//iam.googleapis.com/{PROVIDER}"),
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                "token_url": "https://sts.googleapis.com/v1/token",
                "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/app@proj.iam.gserviceaccount.com:generateAccessToken",
                "credential_source": {
                    "file": "/var/run/secrets/sts.googleapis.com/serviceaccount/token",
                    "format": {"type": "text"}
                }
            })
        );
        let sources = &inj.volume["projected"]["sources"];
        assert_eq!(
            sources[0]["serviceAccountToken"]["audience"],
            "sts.googleapis.com"
        );
        assert_eq!(
            sources[1]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"],
            format!("metadata.annotations['{CONFIG_ANNOTATION}']")
        );
    }

    #[test]
    fn audience_annotation_and_expiration_are_used() {
        let Decision::Inject(inj) = run(&[
            (PROVIDER_ANNOTATION, PROVIDER),
            (AUDIENCE_ANNOTATION, "openshift"),
            (EXPIRATION_ANNOTATION, "1800"),
        ]) else {
            panic!("expected injection")
        };
        let tok = &inj.volume["projected"]["sources"][0]["serviceAccountToken"];
        assert_eq!(tok["audience"], "openshift");
        assert_eq!(tok["expirationSeconds"], 1800);
        let cfg: Value = serde_json::from_str(&inj.annotations[CONFIG_ANNOTATION]).expect("json");
        assert!(cfg.get("service_account_impersonation_url").is_none());
    }

    #[test]
    fn invalid_email_is_refused() {
        let d = run(&[(PROVIDER_ANNOTATION, PROVIDER), (EMAIL_ANNOTATION, "x/y")]);
        assert!(matches!(d, Decision::Refuse(m) if m.contains(EMAIL_ANNOTATION)));
    }
}
