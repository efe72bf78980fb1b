//! The webhook's objects for a [`Target`], rendered from `assets/podidentity/` (pure).
//!
//! The shapes follow the reference operator's `bindata/v4.1.0`: the same names, namespace,
//! labels, RBAC, Service (with the service CA's serving-cert annotation), PodDisruptionBudget,
//! and per cloud the same MutatingWebhookConfiguration (with the CA-bundle injection annotation)
//! and the same container command and arguments. The container runs our webhook: the image ships
//! it under the reference programs' names (`/usr/bin/aws-pod-identity-webhook`, …), and the name
//! selects the matching argument syntax and defaults (see `crates/cco-webhook/README.md`). The
//! reference puts the AWS flags in `command`; here the program is `command` and the flags `args`.

use std::sync::OnceLock;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, Probe,
    SecretKeySelector, Service, ServiceAccount, VolumeMount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde::Deserialize as _;

use super::{Target, WebhookCloud};
use crate::status::OPERATOR_NAMESPACE;

const COMMON: &str = include_str!("../../assets/podidentity/common.yaml");
const DEPLOYMENT: &str = include_str!("../../assets/podidentity/deployment.yaml");
const WEBHOOKS: &str = include_str!("../../assets/podidentity/webhooks.yaml");

/// A broken built-in asset (caught by the unit tests).
#[derive(Debug, Clone, thiserror::Error)]
#[error("built-in pod identity webhook manifest {asset}: {message}")]
pub struct AssetError {
    asset: &'static str,
    message: String,
}

/// Every object of the webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct Objects {
    pub service_account: ServiceAccount,
    pub cluster_role: ClusterRole,
    pub cluster_role_binding: ClusterRoleBinding,
    pub role: Role,
    pub role_binding: RoleBinding,
    pub service: Service,
    pub deployment: Deployment,
    pub webhook: MutatingWebhookConfiguration,
    /// Absent on single-replica clusters.
    pub pdb: Option<PodDisruptionBudget>,
}

#[derive(Clone, Debug)]
struct Templates {
    service_account: ServiceAccount,
    cluster_role: ClusterRole,
    cluster_role_binding: ClusterRoleBinding,
    role: Role,
    role_binding: RoleBinding,
    service: Service,
    pdb: PodDisruptionBudget,
    deployment: Deployment,
    webhooks: [MutatingWebhookConfiguration; 3],
}

fn docs(asset: &'static str, text: &str) -> Result<Vec<serde_json::Value>, AssetError> {
    let mut out = Vec::new();
    for d in serde_yaml::Deserializer::from_str(text) {
        let v =
            serde_json::to_value(serde_yaml::Value::deserialize(d).map_err(|e| AssetError {
                asset,
                message: e.to_string(),
            })?)
            .map_err(|e| AssetError {
                asset,
                message: e.to_string(),
            })?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

fn take<T: DeserializeOwned>(
    asset: &'static str,
    docs: &[serde_json::Value],
    kind: &str,
) -> Result<T, AssetError> {
    let v = docs
        .iter()
        .find(|d| d["kind"] == kind)
        .ok_or_else(|| AssetError {
            asset,
            message: format!("no {kind}"),
        })?;
    serde_json::from_value(v.clone()).map_err(|e| AssetError {
        asset,
        message: format!("{kind}: {e}"),
    })
}

fn load() -> Result<Templates, AssetError> {
    let common = docs("common.yaml", COMMON)?;
    let c = |kind| ("common.yaml", common.as_slice(), kind);
    let (a, d, k) = c("ServiceAccount");
    let service_account = take(a, d, k)?;
    let (a, d, k) = c("ClusterRole");
    let cluster_role = take(a, d, k)?;
    let (a, d, k) = c("ClusterRoleBinding");
    let cluster_role_binding = take(a, d, k)?;
    let (a, d, k) = c("Role");
    let role = take(a, d, k)?;
    let (a, d, k) = c("RoleBinding");
    let role_binding = take(a, d, k)?;
    let (a, d, k) = c("Service");
    let service = take(a, d, k)?;
    let (a, d, k) = c("PodDisruptionBudget");
    let pdb = take(a, d, k)?;
    let deployment = take(
        "deployment.yaml",
        &docs("deployment.yaml", DEPLOYMENT)?,
        "Deployment",
    )?;
    let hooks = docs("webhooks.yaml", WEBHOOKS)?;
    let parse = |i: usize| -> Result<MutatingWebhookConfiguration, AssetError> {
        let v = hooks.get(i).cloned().ok_or_else(|| AssetError {
            asset: "webhooks.yaml",
            message: format!("document {} missing", i + 1),
        })?;
        serde_json::from_value(v).map_err(|e| AssetError {
            asset: "webhooks.yaml",
            message: e.to_string(),
        })
    };
    Ok(Templates {
        service_account,
        cluster_role,
        cluster_role_binding,
        role,
        role_binding,
        service,
        pdb,
        deployment,
        webhooks: [parse(0)?, parse(1)?, parse(2)?],
    })
}

fn templates() -> Result<&'static Templates, AssetError> {
    static T: OnceLock<Result<Templates, AssetError>> = OnceLock::new();
    T.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// The token audience the GCP webhook projects by default: what `ccoctl gcp` providers allow.
pub const GCP_TOKEN_AUDIENCE: &str = cco_core::DEFAULT_AUDIENCE;

/// The program name the container runs, per cloud (a name of our webhook in the image).
pub fn program(cloud: WebhookCloud) -> &'static str {
    match cloud {
        WebhookCloud::Aws => "/usr/bin/aws-pod-identity-webhook",
        WebhookCloud::Azure => "/usr/bin/azure-workload-identity-webhook",
        WebhookCloud::Gcp => "/usr/bin/gcp-workload-identity-federation-webhook",
    }
}

/// Where the serving certificate Secret is mounted, per cloud (each webhook's default location).
pub fn cert_dir(cloud: WebhookCloud) -> &'static str {
    match cloud {
        WebhookCloud::Aws => "/var/run/app/certs",
        WebhookCloud::Azure => "/certs",
        WebhookCloud::Gcp => "/tmp/k8s-webhook-server/serving-certs/",
    }
}

fn probe(path: &str, port: IntOrString, initial: i32, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port,
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial),
        period_seconds: Some(period),
        ..Default::default()
    }
}

fn port(name: &str, n: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: n,
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn container(c: &mut Container, t: &Target) {
    c.image = Some(t.image.clone());
    c.command = Some(vec![program(t.cloud).to_string()]);
    let mut args: Vec<String> = match t.cloud {
        WebhookCloud::Aws => vec![
            format!(
                "--aws-default-region={}",
                t.region
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .unwrap_or("us-east-1")
            ),
            "--in-cluster=false".into(),
            "--tls-cert=/var/run/app/certs/tls.crt".into(),
            "--tls-key=/var/run/app/certs/tls.key".into(),
            format!("--namespace={OPERATOR_NAMESPACE}"),
            "--port=9443".into(),
            format!("--service-name={}", super::NAME),
            "--annotation-prefix=eks.amazonaws.com".into(),
            "--token-audience=sts.amazonaws.com".into(),
            "--logtostderr".into(),
        ],
        WebhookCloud::Azure => vec![
            "--log-level=info".into(),
            "--disable-cert-rotation=true".into(),
        ],
        // The reference passes no flags, so its GCP webhook projects tokens for
        // `sts.googleapis.com`; a provider made by `ccoctl gcp` allows only `openshift`, the
        // audience every other part of the cluster uses (README: where behaviour differs).
        WebhookCloud::Gcp => vec![format!("--token-audience={GCP_TOKEN_AUDIENCE}")],
    };
    args.extend(t.tls.args());
    c.args = Some(args);
    if let Some(m) = c.volume_mounts.as_mut().and_then(|m| m.first_mut()) {
        *m = VolumeMount {
            mount_path: cert_dir(t.cloud).into(),
            read_only: Some(t.cloud != WebhookCloud::Aws),
            ..m.clone()
        };
    }
    match t.cloud {
        WebhookCloud::Aws => {}
        WebhookCloud::Azure => {
            c.env = Some(vec![
                EnvVar {
                    name: "AZURE_TENANT_ID".into(),
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: crate::config_watch::AZURE_CREDENTIALS.into(),
                            key: crate::config_watch::AZURE_TENANT_ID_KEY.into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "POD_NAMESPACE".into(),
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: Some("v1".into()),
                            field_path: "metadata.namespace".into(),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]);
            c.ports = Some(vec![
                port("webhook-server", 6443),
                port("metrics", 8095),
                port("healthz", 9440),
            ]);
            let mut live = probe("/healthz", IntOrString::String("healthz".into()), 15, 20);
            live.failure_threshold = Some(6);
            c.liveness_probe = Some(live);
            c.readiness_probe = Some(probe(
                "/readyz",
                IntOrString::String("healthz".into()),
                5,
                5,
            ));
        }
        WebhookCloud::Gcp => {
            c.liveness_probe = Some(probe("/healthz", IntOrString::Int(8081), 15, 20));
            c.readiness_probe = Some(probe("/readyz", IntOrString::Int(8081), 5, 10));
        }
    }
}

/// Renders every object for `t`.
pub fn render(t: &Target) -> Result<Objects, AssetError> {
    let tp = templates()?;
    let mut deployment = tp.deployment.clone();
    if t.cloud == WebhookCloud::Azure {
        deployment.metadata.labels = Some(
            [(
                "azure-workload-identity.io/system".to_string(),
                "true".to_string(),
            )]
            .into(),
        );
    }
    if let Some(spec) = deployment.spec.as_mut() {
        spec.replicas = Some(if t.single_replica { 1 } else { 2 });
        if let Some(c) = spec
            .template
            .spec
            .as_mut()
            .and_then(|p| p.containers.first_mut())
        {
            container(c, t);
        }
    }
    let webhook = tp.webhooks[match t.cloud {
        WebhookCloud::Aws => 0,
        WebhookCloud::Azure => 1,
        WebhookCloud::Gcp => 2,
    }]
    .clone();
    Ok(Objects {
        service_account: tp.service_account.clone(),
        cluster_role: tp.cluster_role.clone(),
        cluster_role_binding: tp.cluster_role_binding.clone(),
        role: tp.role.clone(),
        role_binding: tp.role_binding.clone(),
        service: tp.service.clone(),
        deployment,
        webhook,
        pdb: (!t.single_replica).then(|| tp.pdb.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::podidentity::tls::TlsArgs;

    fn target(cloud: WebhookCloud) -> Target {
        Target {
            cloud,
            image: "registry.example/cco:1".into(),
            region: Some("eu-west-2".into()),
            tls: TlsArgs {
                min_version: Some("VersionTLS12".into()),
                ciphers: vec!["TLS_AES_128_GCM_SHA256".into()],
            },
            single_replica: false,
        }
    }

    fn c0(o: &Objects) -> &Container {
        &o.deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .expect("pod spec")
            .containers[0]
    }

    #[test]
    fn aws_runs_the_reference_arguments_with_region_and_tls() {
        let o = render(&target(WebhookCloud::Aws)).expect("renders");
        let c = c0(&o);
        assert_eq!(c.image.as_deref(), Some("registry.example/cco:1"));
        assert_eq!(
            c.command.as_deref(),
            Some(&["/usr/bin/aws-pod-identity-webhook".to_string()][..])
        );
        assert_eq!(
            c.args.clone().unwrap_or_default(),
            [
                "--aws-default-region=eu-west-2",
                "--in-cluster=false",
                "--tls-cert=/var/run/app/certs/tls.crt",
                "--tls-key=/var/run/app/certs/tls.key",
                "--namespace=openshift-cloud-credential-operator",
                "--port=9443",
                "--service-name=pod-identity-webhook",
                "--annotation-prefix=eks.amazonaws.com",
                "--token-audience=sts.amazonaws.com",
                "--logtostderr",
                "--tls-min-version=VersionTLS12",
                "--tls-cipher-suites=TLS_AES_128_GCM_SHA256",
            ]
            .map(str::to_string)
        );
        assert_eq!(
            c.volume_mounts.as_ref().expect("mounts")[0].mount_path,
            "/var/run/app/certs"
        );
        assert_eq!(o.deployment.spec.as_ref().and_then(|s| s.replicas), Some(2));
        assert_eq!(
            o.webhook.webhooks.as_ref().expect("hooks")[0].name,
            "pod-identity-webhook.aws.mutate.io"
        );
        assert_eq!(
            o.service
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("service.beta.openshift.io/serving-cert-secret-name"))
                .map(String::as_str),
            Some("pod-identity-webhook")
        );
        assert_eq!(
            o.webhook
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("service.beta.openshift.io/inject-cabundle"))
                .map(String::as_str),
            Some("true")
        );
        assert!(o.pdb.is_some());
    }

    #[test]
    fn aws_without_a_region_defaults_to_us_east_1() {
        let mut t = target(WebhookCloud::Aws);
        t.region = None;
        t.tls = TlsArgs::default();
        let o = render(&t).expect("renders");
        let args = c0(&o).args.clone().unwrap_or_default();
        assert_eq!(args[0], "--aws-default-region=us-east-1");
        assert_eq!(args.len(), 10);
    }

    #[test]
    fn azure_and_gcp_follow_their_reference_deployments() {
        let o = render(&target(WebhookCloud::Azure)).expect("renders");
        let c = c0(&o);
        assert_eq!(
            c.command.as_deref(),
            Some(&["/usr/bin/azure-workload-identity-webhook".to_string()][..])
        );
        assert_eq!(
            c.args.clone().unwrap_or_default()[..2],
            ["--log-level=info", "--disable-cert-rotation=true"].map(str::to_string)
        );
        let env = c.env.clone().unwrap_or_default();
        assert_eq!(env[0].name, "AZURE_TENANT_ID");
        assert_eq!(
            env[0]
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .map(|s| (s.name.as_str(), s.key.as_str())),
            Some(("azure-credentials", "azure_tenant_id"))
        );
        assert_eq!(
            c.volume_mounts.as_ref().expect("mounts")[0].mount_path,
            "/certs"
        );
        assert_eq!(
            o.webhook.webhooks.as_ref().expect("hooks")[0]
                .client_config
                .service
                .as_ref()
                .and_then(|s| s.path.as_deref()),
            Some("/mutate-v1-pod")
        );
        let g = render(&target(WebhookCloud::Gcp)).expect("renders");
        let c = c0(&g);
        assert_eq!(
            c.command.as_deref(),
            Some(&["/usr/bin/gcp-workload-identity-federation-webhook".to_string()][..])
        );
        assert_eq!(
            c.volume_mounts.as_ref().expect("mounts")[0].mount_path,
            "/tmp/k8s-webhook-server/serving-certs/"
        );
        assert_eq!(
            c.args
                .as_deref()
                .and_then(|a| a.first())
                .map(String::as_str),
            Some("--token-audience=openshift")
        );
        assert_eq!(
            g.webhook.webhooks.as_ref().expect("hooks")[0].name,
            "pod-identity-webhook.gcp.mutate.io"
        );
    }

    #[test]
    fn single_replica_has_one_replica_and_no_pdb() {
        let mut t = target(WebhookCloud::Gcp);
        t.single_replica = true;
        let o = render(&t).expect("renders");
        assert_eq!(o.deployment.spec.as_ref().and_then(|s| s.replicas), Some(1));
        assert!(o.pdb.is_none());
    }

    #[test]
    fn every_object_is_named_like_the_reference() {
        let o = render(&target(WebhookCloud::Aws)).expect("renders");
        let names = [
            o.service_account.metadata.name.clone(),
            o.cluster_role.metadata.name.clone(),
            o.cluster_role_binding.metadata.name.clone(),
            o.role.metadata.name.clone(),
            o.role_binding.metadata.name.clone(),
            o.service.metadata.name.clone(),
            o.deployment.metadata.name.clone(),
            o.webhook.metadata.name.clone(),
            o.pdb.as_ref().and_then(|p| p.metadata.name.clone()),
        ];
        assert!(names
            .iter()
            .all(|n| n.as_deref() == Some("pod-identity-webhook")));
    }
}
