//! GCP workload identity federation, compatible with the GCP workload identity federation
//! webhook OpenShift deploys (pfnet-research/gcp-workload-identity-federation-webhook).
//!
//! ServiceAccount annotations (domain `--annotation-prefix`, `cloud.google.com`):
//! - `workload-identity-provider` and `service-account-email`: both or neither; the provider must
//!   read `projects/…/locations/…/workloadIdentityPools/…/providers/…`. One without the other,
//!   or a malformed provider, refuses the pod with a message naming the annotation.
//! - `audience` (default `--token-audience`, `sts.googleapis.com`; a provider made by `ccoctl
//!   gcp` accepts `openshift`), `token-expiration` (seconds), `gcloud-run-as-user`,
//!   `injection-mode` (`gcloud`, the default, or `direct`).
//!
//! Pod annotations: `token-expiration` (overrides the ServiceAccount's; at least 1 h) and
//! `skip-containers` (comma separated). Pods without `spec.serviceAccountName` are left alone.
//!
//! What a pod gets, as the reference writes it:
//! - pod annotations `<domain>/workload-identity-provider`, `service-account-email`,
//!   `audience`, `token-expiration` (the effective values);
//! - the token volume `gcp-iam-token` (file `token`, `defaultMode` `--token-default-mode`,
//!   see below), mounted read-only at `/var/run/secrets/sts.googleapis.com/serviceaccount`;
//! - **gcloud mode**: an emptyDir `gcloud-config` mounted at `/var/run/secrets/gcloud/config`, an
//!   init container `gcloud-setup` (first; `--gcloud-image`) that writes the `external_account`
//!   configuration `federation.json` there with `gcloud iam workload-identity-pools
//!   create-cred-config` and logs gcloud in; `GOOGLE_APPLICATION_CREDENTIALS` and
//!   `CLOUDSDK_CONFIG` point there;
//! - **direct mode**: the configuration in the pod annotation `<domain>/external-credentials-json`,
//!   projected by the downward-API volume `external-credential-config` at
//!   `/var/run/secrets/workload-identity/federation.json` (`GOOGLE_APPLICATION_CREDENTIALS`);
//! - `CLOUDSDK_COMPUTE_REGION` (`--gcp-default-region`) and `CLOUDSDK_CORE_PROJECT` (from the
//!   e-mail's `@<project>.iam.gserviceaccount.com`) where unset.
//!
//! Differences, on purpose: variables and mounts a container already has are kept (the reference
//! overwrites them); without an explicit `--token-default-mode` the volumes' mode follows
//! [`crate::token::default_mode`] so non-root containers can read the token; a pod mutated by
//! an earlier version of this webhook (volume `gcp-workload-identity`) is left as it is.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::config::GcpConfig;
use crate::patch::{Cloud, EnvGroup, Injection, NewContainer, Position};
use crate::pod::{ContainerList, PodView};
use crate::token::default_mode;
use crate::Decision;

/// Annotation names under the domain.
pub const PROVIDER: &str = "workload-identity-provider";
/// Impersonated Google service account.
pub const EMAIL: &str = "service-account-email";
/// Token audience.
pub const AUDIENCE: &str = "audience";
/// Token lifetime (ServiceAccount or pod).
pub const TOKEN_EXPIRATION: &str = "token-expiration";
/// UID of the gcloud setup container.
pub const RUN_AS_USER: &str = "gcloud-run-as-user";
/// `gcloud` or `direct`.
pub const INJECTION_MODE: &str = "injection-mode";
/// Pod annotation listing containers to leave alone.
pub const SKIP_CONTAINERS: &str = "skip-containers";
/// Pod annotation holding the configuration in direct mode.
pub const EXTERNAL_CREDENTIALS_JSON: &str = "external-credentials-json";

/// Token volume.
pub const TOKEN_VOLUME: &str = "gcp-iam-token";
/// Token mount directory.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/sts.googleapis.com/serviceaccount";
/// Token file name.
pub const TOKEN_FILE: &str = "token";
/// Direct mode volume.
pub const DIRECT_VOLUME: &str = "external-credential-config";
/// Direct mode mount directory.
pub const DIRECT_MOUNT_PATH: &str = "/var/run/secrets/workload-identity";
/// Configuration file name.
pub const CONFIG_FILE: &str = "federation.json";
/// gcloud mode volume.
pub const GCLOUD_VOLUME: &str = "gcloud-config";
/// gcloud mode mount directory.
pub const GCLOUD_MOUNT_PATH: &str = "/var/run/secrets/gcloud/config";
/// gcloud mode init container.
pub const GCLOUD_SETUP: &str = "gcloud-setup";
/// Volume written by earlier versions of this webhook.
pub const LEGACY_VOLUME: &str = "gcp-workload-identity";
/// Shortest lifetime the reference lets through (1 h).
pub const MIN_EXPIRATION: i64 = 3600;

/// How the credential configuration reaches the containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An init container runs gcloud.
    Gcloud,
    /// The configuration is projected from a pod annotation.
    Direct,
}

/// The annotations of one ServiceAccount, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `projects/…/providers/…`.
    pub provider: String,
    /// Google service account.
    pub email: String,
    /// Token audience annotation.
    pub audience: Option<String>,
    /// Token lifetime annotation.
    pub expiration: Option<i64>,
    /// gcloud-setup's UID.
    pub run_as_user: Option<i64>,
    /// Injection mode.
    pub mode: Mode,
}

fn provider_is_valid(p: &str) -> bool {
    // ^projects/.+/locations/.+/workloadIdentityPools/.+/providers/.+$ (Go regexp, greedy).
    let Some(rest) = p.strip_prefix("projects/") else {
        return false;
    };
    let after = |s: &str, sep: &str| -> Option<usize> {
        // Some split point with a non-empty part before `sep` and something after it.
        s.match_indices(sep)
            .map(|(i, _)| i)
            .find(|&i| i > 0 && i + sep.len() < s.len())
    };
    let Some(i) = after(rest, "/locations/") else {
        return false;
    };
    let rest = &rest[i + "/locations/".len()..];
    let Some(j) = after(rest, "/workloadIdentityPools/") else {
        return false;
    };
    let rest = &rest[j + "/workloadIdentityPools/".len()..];
    after(rest, "/providers/").is_some()
}

/// Read a ServiceAccount's GCP annotations under `domain`; `Ok(None)` when it has neither the
/// provider nor the e-mail.
pub fn identity(domain: &str, sa: &BTreeMap<String, String>) -> Result<Option<Identity>, String> {
    let key = |n: &str| format!("{domain}/{n}");
    let get = |n: &str| sa.get(&key(n));
    let int = |n: &str| -> Result<Option<i64>, String> {
        get(n)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    format!(
                        "ServiceAccount annotation {}={v:?} must be a positive integer string",
                        key(n)
                    )
                })
            })
            .transpose()
    };
    let expiration = int(TOKEN_EXPIRATION)?;
    let run_as_user = int(RUN_AS_USER)?;
    let mode = match get(INJECTION_MODE).map(|m| m.to_ascii_lowercase()) {
        None => Mode::Gcloud,
        Some(m) if m == "gcloud" => Mode::Gcloud,
        Some(m) if m == "direct" => Mode::Direct,
        Some(m) => {
            return Err(format!(
                "ServiceAccount annotation {}={m:?}: the mode must be 'direct', 'gcloud' or unset",
                key(INJECTION_MODE)
            ))
        }
    };
    let (provider, email) = match (get(PROVIDER), get(EMAIL)) {
        (None, None) => return Ok(None),
        (Some(p), Some(e)) => (p.clone(), e.clone()),
        _ => {
            return Err(format!(
                "ServiceAccount annotations {} and {} must be set together",
                key(PROVIDER),
                key(EMAIL)
            ))
        }
    };
    if !provider_is_valid(&provider) {
        return Err(format!(
            "ServiceAccount annotation {}={provider:?} must have the form \
             projects/{{ProjectNumber}}/locations/{{Location}}/workloadIdentityPools/{{PoolId}}/providers/{{ProviderId}}",
            key(PROVIDER)
        ));
    }
    Ok(Some(Identity {
        provider,
        email,
        audience: get(AUDIENCE).cloned(),
        expiration,
        run_as_user,
        mode,
    }))
}

/// The `external_account` credential configuration (field order as the reference writes it).
pub fn credential_configuration(provider: &str, email: &str) -> Value {
    json!({
        "type": "external_account",
        "audience": format!("//iam.googleapis.com/{provider}"),
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "service_account_impersonation_url": format!(
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{email}:generateAccessToken"
        ),
        "credential_source": {
            "file": format!("{TOKEN_MOUNT_PATH}/{TOKEN_FILE}"),
            "format": {"type": "text"}
        }
    })
}

/// The project of a `…@<project>.iam.gserviceaccount.com` address (empty otherwise).
pub fn project_of(email: &str) -> String {
    // Go: regexp `@(.*).iam.gserviceaccount.com`, leftmost match, greedy group.
    let Some(at) = email.find('@') else {
        return String::new();
    };
    let rest = &email[at + 1..];
    // Greedy: the last position where ".iam.gserviceaccount.com" (any char for the dots) fits.
    let pat = b".iam.gserviceaccount.com";
    let bytes = rest.as_bytes();
    (0..=bytes.len().saturating_sub(pat.len()))
        .rev()
        .find(|&i| {
            bytes.len() >= pat.len()
                && bytes[i..i + pat.len()]
                    .iter()
                    .zip(pat)
                    .all(|(b, p)| *p == b'.' || b == p)
        })
        .map(|i| rest[..i].to_string())
        .unwrap_or_default()
}

fn setup_script() -> String {
    format!(
        "gcloud iam workload-identity-pools create-cred-config \\\n  \
         $(GCP_WORKLOAD_IDENTITY_PROVIDER) \\\n  \
         --service-account=$(GCP_SERVICE_ACCOUNT) \\\n  \
         --output-file=$(CLOUDSDK_CONFIG)/{CONFIG_FILE} \\\n  \
         --credential-source-file={TOKEN_MOUNT_PATH}/{TOKEN_FILE}\n\
         gcloud auth login --cred-file=$(CLOUDSDK_CONFIG)/{CONFIG_FILE}\n"
    )
}

fn setup_container(id: &Identity, project: &str, cfg: &GcpConfig) -> Value {
    let mut security = json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
    });
    if let (Some(uid), Some(m)) = (id.run_as_user, security.as_object_mut()) {
        m.insert("runAsUser".into(), json!(uid));
    }
    let mut c = json!({
        "name": GCLOUD_SETUP,
        "image": cfg.gcloud_image,
        "command": ["sh", "-c", setup_script()],
        "volumeMounts": [
            {"name": TOKEN_VOLUME, "mountPath": TOKEN_MOUNT_PATH, "readOnly": true},
            {"name": GCLOUD_VOLUME, "mountPath": GCLOUD_MOUNT_PATH},
        ],
        "env": [
            {"name": "GCP_WORKLOAD_IDENTITY_PROVIDER", "value": id.provider},
            {"name": "GCP_SERVICE_ACCOUNT", "value": id.email},
            {"name": "CLOUDSDK_CONFIG", "value": GCLOUD_MOUNT_PATH},
            env_var("CLOUDSDK_CORE_PROJECT", project),
        ],
        "securityContext": security,
    });
    if let (Some(r), Some(m)) = (&cfg.setup_container_resources, c.as_object_mut()) {
        m.insert("resources".into(), r.clone());
    }
    c
}

fn env_var(name: &str, value: &str) -> Value {
    if value.is_empty() {
        json!({ "name": name })
    } else {
        json!({"name": name, "value": value})
    }
}

/// Decide what GCP needs in `pod`, given its ServiceAccount's annotations.
pub fn plan(
    pod: &PodView<'_>,
    sa_annotations: &BTreeMap<String, String>,
    cfg: &GcpConfig,
    _warnings: &mut Vec<String>,
) -> Decision {
    if pod.explicit_service_account_name().is_none() {
        return Decision::Skip;
    }
    let domain = cfg.annotation_prefix.as_str();
    let id = match identity(domain, sa_annotations) {
        Ok(Some(id)) => id,
        Ok(None) => return Decision::Skip,
        Err(msg) => return Decision::Refuse(msg),
    };
    let volumes = pod.volume_names();
    if volumes.contains(LEGACY_VOLUME) {
        return Decision::Skip;
    }
    let key = |n: &str| format!("{domain}/{n}");

    let audience = id.audience.clone().unwrap_or_else(|| cfg.audience.clone());
    let mut expiration = id.expiration.unwrap_or(cfg.token_expiration);
    if let Some(raw) = pod.annotation(&key(TOKEN_EXPIRATION)) {
        match raw.parse::<i64>() {
            Ok(v) => expiration = v,
            Err(_) => {
                return Decision::Refuse(format!(
                    "pod annotation {}={raw:?} must be a positive integer string",
                    key(TOKEN_EXPIRATION)
                ))
            }
        }
    }
    let expiration = expiration.max(MIN_EXPIRATION);
    let mode_bits = cfg.default_mode.unwrap_or_else(|| default_mode(pod));
    let project = project_of(&id.email);

    let mut annotations = BTreeMap::from([
        (key(PROVIDER), id.provider.clone()),
        (key(EMAIL), id.email.clone()),
        (key(AUDIENCE), audience.clone()),
        (key(TOKEN_EXPIRATION), expiration.to_string()),
    ]);
    let token_volume = json!({
        "name": TOKEN_VOLUME,
        "projected": {
            "sources": [{"serviceAccountToken": {
                "audience": audience,
                "expirationSeconds": expiration,
                "path": TOKEN_FILE,
            }}],
            "defaultMode": mode_bits,
        }
    });
    let mut skip = crate::pod::parse_container_list(pod.annotation(&key(SKIP_CONTAINERS)));
    skip.insert(GCLOUD_SETUP.to_string());

    let (extra_volume, extra_mount, env, init) = match id.mode {
        Mode::Direct => {
            let config = credential_configuration(&id.provider, &id.email).to_string();
            annotations.insert(key(EXTERNAL_CREDENTIALS_JSON), config);
            (
                json!({"name": DIRECT_VOLUME, "downwardAPI": {
                    "items": [{"path": CONFIG_FILE, "fieldRef": {
                        "apiVersion": "v1",
                        "fieldPath": format!("metadata.annotations['{}']", key(EXTERNAL_CREDENTIALS_JSON)),
                    }}],
                    "defaultMode": mode_bits,
                }}),
                (
                    DIRECT_VOLUME.to_string(),
                    DIRECT_MOUNT_PATH.to_string(),
                    true,
                ),
                vec![EnvGroup::single(
                    "GOOGLE_APPLICATION_CREDENTIALS",
                    format!("{DIRECT_MOUNT_PATH}/{CONFIG_FILE}"),
                )],
                vec![],
            )
        }
        Mode::Gcloud => (
            json!({"name": GCLOUD_VOLUME, "emptyDir": {}}),
            (
                GCLOUD_VOLUME.to_string(),
                GCLOUD_MOUNT_PATH.to_string(),
                false,
            ),
            vec![
                EnvGroup::single(
                    "GOOGLE_APPLICATION_CREDENTIALS",
                    format!("{GCLOUD_MOUNT_PATH}/{CONFIG_FILE}"),
                ),
                EnvGroup::single("CLOUDSDK_CONFIG", GCLOUD_MOUNT_PATH),
            ],
            vec![NewContainer {
                list: ContainerList::Init,
                position: Position::First,
                container: setup_container(&id, &project, cfg),
                mutate: false,
            }],
        ),
    };
    let mut env = env;
    env.push(EnvGroup::single(
        "CLOUDSDK_COMPUTE_REGION",
        cfg.default_region.clone(),
    ));
    env.push(EnvGroup::single("CLOUDSDK_CORE_PROJECT", project));

    Decision::Inject(Box::new(Injection {
        cloud: Cloud::Gcp,
        volume: token_volume,
        mount_path: TOKEN_MOUNT_PATH.to_string(),
        env,
        skip_containers: skip,
        annotations,
        labels: BTreeMap::new(),
        extra_volumes: vec![extra_volume],
        extra_mounts: vec![extra_mount],
        init_containers: init,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WebhookConfig;
    use rstest::rstest;

    const PROVIDER_NAME: &str =
        "projects/123456/locations/global/workloadIdentityPools/pool-1/providers/oidc";
    const SA_EMAIL: &str = "app@proj-1.iam.gserviceaccount.com";

    fn sa(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("cloud.google.com/{k}"), v.to_string()))
            .collect()
    }

    fn run(pod: &Value, pairs: &[(&str, &str)]) -> Decision {
        plan(
            &PodView::new(pod),
            &sa(pairs),
            &WebhookConfig::default().gcp,
            &mut vec![],
        )
    }

    fn pod() -> Value {
        json!({"spec": {"serviceAccountName": "app", "containers": [{"name": "c"}]}})
    }

    #[rstest]
    #[case(PROVIDER_NAME, true)]
    #[case(
        "projects/my-proj/locations/global/workloadIdentityPools/p/providers/q",
        true
    )]
    #[case("projects/1/locations/global/workloadIdentityPools/p", false)]
    #[case("projects/1/locations/global/pools/p/providers/q", false)]
    #[case(
        "//iam.googleapis.com/projects/1/locations/g/workloadIdentityPools/p/providers/q",
        false
    )]
    #[case("", false)]
    fn provider_names_are_checked_like_the_reference(#[case] name: &str, #[case] ok: bool) {
        assert_eq!(provider_is_valid(name), ok, "{name}");
    }

    #[test]
    fn provider_without_email_is_refused() {
        let d = run(&pod(), &[(PROVIDER, PROVIDER_NAME)]);
        assert!(matches!(d, Decision::Refuse(m) if m.contains("must be set together")));
    }

    #[test]
    fn project_comes_from_the_email() {
        assert_eq!(project_of(SA_EMAIL), "proj-1");
        assert_eq!(project_of("x@example.com"), "");
    }

    #[test]
    fn default_is_gcloud_mode_with_the_reference_layout() {
        let Decision::Inject(inj) = run(&pod(), &[(PROVIDER, PROVIDER_NAME), (EMAIL, SA_EMAIL)])
        else {
            panic!("expected injection")
        };
        let tok = &inj.volume["projected"]["sources"][0]["serviceAccountToken"];
        assert_eq!(tok["audience"], "sts.googleapis.com");
        assert_eq!(tok["expirationSeconds"], 86400);
        assert_eq!(inj.volume["name"], TOKEN_VOLUME);
        assert_eq!(inj.extra_volumes[0]["name"], GCLOUD_VOLUME);
        let setup = &inj.init_containers[0].container;
        assert_eq!(setup["name"], GCLOUD_SETUP);
        assert_eq!(setup["image"], "google/cloud-sdk:slim");
        assert!(setup["command"][2]
            .as_str()
            .unwrap_or("")
            .contains("create-cred-config"));
        let vars: Vec<_> = inj.env.iter().flat_map(|g| g.vars.clone()).collect();
        assert!(vars.contains(&("CLOUDSDK_CONFIG".to_string(), GCLOUD_MOUNT_PATH.to_string())));
        assert!(vars.contains(&("CLOUDSDK_CORE_PROJECT".to_string(), "proj-1".to_string())));
        assert_eq!(
            inj.annotations["cloud.google.com/token-expiration"],
            "86400"
        );
    }

    #[test]
    fn direct_mode_projects_the_configuration_from_an_annotation() {
        let Decision::Inject(inj) = run(
            &pod(),
            &[
                (PROVIDER, PROVIDER_NAME),
                (EMAIL, SA_EMAIL),
                (INJECTION_MODE, "Direct"),
                (AUDIENCE, "openshift"),
            ],
        ) else {
            panic!("expected injection")
        };
        let cfg: Value =
            serde_json::from_str(&inj.annotations["cloud.google.com/external-credentials-json"])
                .expect("json");
        assert_eq!(cfg, credential_configuration(PROVIDER_NAME, SA_EMAIL));
        assert_eq!(
            inj.volume["projected"]["sources"][0]["serviceAccountToken"]["audience"],
            "openshift"
        );
        assert_eq!(inj.extra_volumes[0]["name"], DIRECT_VOLUME);
        assert!(inj.init_containers.is_empty());
    }

    #[rstest]
    #[case::pod_overrides(json!({"cloud.google.com/token-expiration": "7200"}), 7200)]
    #[case::at_least_an_hour(json!({"cloud.google.com/token-expiration": "60"}), 3600)]
    fn pod_level_token_expiration(#[case] annotations: Value, #[case] expected: i64) {
        let p = json!({"metadata": {"annotations": annotations},
                       "spec": {"serviceAccountName": "app"}});
        let Decision::Inject(inj) = run(
            &p,
            &[
                (PROVIDER, PROVIDER_NAME),
                (EMAIL, SA_EMAIL),
                (TOKEN_EXPIRATION, "1800"),
            ],
        ) else {
            panic!("expected injection")
        };
        assert_eq!(
            inj.volume["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            expected
        );
    }

    #[test]
    fn bad_numbers_and_modes_are_refused() {
        for pairs in [
            &[(TOKEN_EXPIRATION, "soon")][..],
            &[(RUN_AS_USER, "root")][..],
            &[(INJECTION_MODE, "sideways")][..],
        ] {
            let mut all = vec![(PROVIDER, PROVIDER_NAME), (EMAIL, SA_EMAIL)];
            all.extend_from_slice(pairs);
            assert!(
                matches!(run(&pod(), &all), Decision::Refuse(_)),
                "{pairs:?}"
            );
        }
        let p = json!({"metadata": {"annotations": {"cloud.google.com/token-expiration": "x"}},
                       "spec": {"serviceAccountName": "app"}});
        assert!(matches!(
            run(&p, &[(PROVIDER, PROVIDER_NAME), (EMAIL, SA_EMAIL)]),
            Decision::Refuse(_)
        ));
    }

    #[test]
    fn mirror_pods_without_a_service_account_name_are_skipped() {
        let p = json!({"spec": {"containers": []}});
        assert!(matches!(
            run(&p, &[(PROVIDER, PROVIDER_NAME), (EMAIL, SA_EMAIL)]),
            Decision::Skip
        ));
    }
}
