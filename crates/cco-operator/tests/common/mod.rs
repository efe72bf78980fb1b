//! Shared fixtures of the operator's integration tests: a real API server with the corpus CRDs and
//! this repository's deploy manifests, a client authenticated as the operator's ServiceAccount
//! (through the TokenRequest API, so RBAC applies exactly as in a cluster), cluster configuration
//! objects, and an in-process operator.
#![allow(dead_code, clippy::unwrap_used)]

pub mod metrics_client;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use base64::Engine as _;
use cco_api::CredentialsRequest;
use cco_operator::metrics::Metrics;
use cco_operator::Settings;
use cco_testsupport::kube_env::{KubeEnv, KubeEnvOptions};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::ByteString;
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

pub const OPERATOR_NS: &str = "openshift-cloud-credential-operator";
pub const OPERATOR_SA: &str = "cloud-credential-operator";

pub fn deploy_dir() -> PathBuf {
    cco_testsupport::repo_root().join("deploy/operator")
}

/// A running API server prepared for the operator.
pub struct Env {
    pub kube: KubeEnv,
    pub admin: Client,
}

/// Starts the API server, installs the corpus CRDs, then this repository's manifests (whose
/// CredentialsRequest CRD, generated from cco-api, replaces the upstream one).
pub async fn start() -> Result<Env> {
    start_with(KubeEnvOptions::default()).await
}

pub async fn start_with(opts: KubeEnvOptions) -> Result<Env> {
    let kube = KubeEnv::start(opts).await?;
    kube.install_corpus_crds().await?;
    let admin = kube.client().await?;
    let (_own_requests, rest) = deploy_manifests()?;
    cco_testsupport::kube_env::apply_objects(&admin, rest).await?;
    for ns in ["kube-system"] {
        let _ = Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &namespace(ns))
            .await;
    }
    Ok(Env { kube, admin })
}

/// The objects of `deploy/operator`: the operator's own CredentialsRequests (its read-only
/// credentials), and everything else. Tests install the rest; a test that wants the read-only
/// credentials applies them with [`apply_readonly_requests`].
pub fn deploy_manifests() -> Result<(Vec<DynamicObject>, Vec<DynamicObject>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        all.extend(
            cco_testsupport::kube_env::parse_manifests(&text)
                .with_context(|| format!("parsing {}", f.display()))?,
        );
    }
    Ok(all.into_iter().partition(|o| {
        o.types
            .as_ref()
            .is_some_and(|t| t.kind == "CredentialsRequest")
    }))
}

/// Applies the operator's read-only CredentialsRequests from `deploy/operator`.
pub async fn apply_readonly_requests(c: &Client) -> Result<Vec<String>> {
    let (requests, _) = deploy_manifests()?;
    let names = requests
        .iter()
        .filter_map(|o| o.metadata.name.clone())
        .collect();
    cco_testsupport::kube_env::apply_objects(c, requests).await?;
    Ok(names)
}

pub fn namespace(name: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub async fn create_namespace(c: &Client, name: &str) -> Result<()> {
    match Api::<Namespace>::all(c.clone())
        .create(&PostParams::default(), &namespace(name))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A kubeconfig whose user is the operator's ServiceAccount (token from the TokenRequest API).
pub async fn operator_kubeconfig(env: &Env) -> Result<String> {
    sa_kubeconfig(env, OPERATOR_SA).await
}

/// A kubeconfig for ServiceAccount `sa_name` in the operator's namespace.
pub async fn sa_kubeconfig(env: &Env, sa_name: &str) -> Result<String> {
    let sa: Api<ServiceAccount> = Api::namespaced(env.admin.clone(), OPERATOR_NS);
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600 * 4),
            ..Default::default()
        },
        ..Default::default()
    };
    let out: TokenRequest = sa
        .create_subresource("token", sa_name, &PostParams::default(), &tr)
        .await
        .context("TokenRequest for the operator's ServiceAccount")?;
    let token = out
        .status
        .ok_or_else(|| anyhow!("TokenRequest returned no status"))?
        .token;
    let ca = base64::engine::general_purpose::STANDARD.encode(env.kube.ca_pem());
    Ok(format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: cco\n  user:\n    token: {token}\ncontexts:\n- name: cco\n  context:\n    cluster: test\n    user: cco\ncurrent-context: cco\n",
        env.kube.server_url()
    ))
}

/// A client authenticated as the operator's ServiceAccount.
pub async fn operator_client(env: &Env) -> Result<Client> {
    sa_client(env, OPERATOR_SA).await
}

/// A client authenticated as ServiceAccount `sa_name` in the operator's namespace.
pub async fn sa_client(env: &Env, sa_name: &str) -> Result<Client> {
    cco_operator::install_crypto_provider();
    let kc = Kubeconfig::from_yaml(&sa_kubeconfig(env, sa_name).await?)?;
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(cfg)?)
}

async fn apply(c: &Client, obj: serde_json::Value) -> Result<()> {
    let o: DynamicObject = serde_json::from_value(obj)?;
    cco_testsupport::kube_env::apply_objects(c, vec![o]).await?;
    Ok(())
}

/// Sets CloudCredential/Infrastructure/Authentication `cluster`.
pub async fn set_cluster(c: &Client, mode: &str, platform: &str, issuer: &str) -> Result<()> {
    apply(
        c,
        serde_json::json!({"apiVersion": "operator.openshift.io/v1", "kind": "CloudCredential",
            "metadata": {"name": "cluster"}, "spec": {"credentialsMode": mode, "managementState": "Managed"}}),
    )
    .await?;
    apply(
        c,
        serde_json::json!({"apiVersion": "config.openshift.io/v1", "kind": "Authentication",
            "metadata": {"name": "cluster"}, "spec": {"serviceAccountIssuer": issuer}}),
    )
    .await?;
    set_cluster_version(c, "4.15.3").await?;
    set_platform(c, platform).await
}

/// Replaces Infrastructure `cluster` with one on `platform` (delete and create: the type is immutable).
pub async fn set_platform(c: &Client, platform: &str) -> Result<()> {
    let gvk = kube::core::GroupVersionKind::gvk("config.openshift.io", "v1", "Infrastructure");
    let (ar, _) = kube::discovery::pinned_kind(c, &gvk).await?;
    let api: Api<DynamicObject> = Api::all_with(c.clone(), &ar);
    if api.get_opt("cluster").await?.is_some() {
        api.delete("cluster", &Default::default()).await?;
        wait_until(Duration::from_secs(20), || async {
            Ok(api.get_opt("cluster").await?.is_none())
        })
        .await?;
    }
    apply(
        c,
        serde_json::json!({"apiVersion": "config.openshift.io/v1", "kind": "Infrastructure",
            "metadata": {"name": "cluster"}, "spec": {"platformSpec": {"type": platform}}}),
    )
    .await?;
    let mut ps = serde_json::json!({"type": platform});
    if platform == "AWS" {
        ps["aws"] = serde_json::json!({"region": "us-east-1"});
    }
    let status = serde_json::json!({"status": {"infrastructureName": "test-infra", "platform": platform, "platformStatus": ps}});
    api.patch_status("cluster", &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// Creates or replaces a root Secret in kube-system.
pub async fn put_root_secret(c: &Client, name: &str, data: &[(&str, &str)]) -> Result<Secret> {
    let api: Api<Secret> = Api::namespaced(c.clone(), "kube-system");
    let s = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("kube-system".into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    };
    Ok(api
        .patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&s))
        .await?)
}

/// Creates a CredentialsRequest from JSON.
pub async fn create_cr(c: &Client, ns: &str, v: serde_json::Value) -> Result<CredentialsRequest> {
    let cr: CredentialsRequest = serde_json::from_value(v)?;
    Ok(Api::<CredentialsRequest>::namespaced(c.clone(), ns)
        .create(&PostParams::default(), &cr)
        .await?)
}

pub fn cr_json(
    name: &str,
    target_ns: &str,
    secret: &str,
    provider: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({"apiVersion": "cloudcredential.openshift.io/v1", "kind": "CredentialsRequest",
        "metadata": {"name": name, "namespace": OPERATOR_NS},
        "spec": {"secretRef": {"name": secret, "namespace": target_ns}, "providerSpec": provider,
                 "serviceAccountNames": ["sa"]}})
}

/// A request for an AWS user allowed `s3:GetObject`, whose Secret `name` goes to `target_ns`.
pub fn s3_reader_request(name: &str, target_ns: &str) -> serde_json::Value {
    cr_json(
        name,
        target_ns,
        name,
        serde_json::json!({"apiVersion": "cloudcredential.openshift.io/v1", "kind": "AWSProviderSpec",
            "statementEntries": [{"effect": "Allow", "action": ["s3:GetObject"], "resource": "*"}]}),
    )
}

/// IAM on the AWS emulator, as the test (not the operator) sees it.
pub async fn moto_iam(moto: &cco_testsupport::moto::Moto) -> cco_aws::Minter {
    cco_aws::Minter::connect(&cco_aws::MintConnect {
        region: "us-east-1".into(),
        endpoint: Some(moto.endpoint.clone()),
        simulate_endpoint: None,
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
    })
    .await
}

/// The AWS SDK's IAM client on the emulator, for reads the code under test does not make.
pub async fn moto_iam_sdk(moto: &cco_testsupport::moto::Moto) -> aws_sdk_iam::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_iam::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    aws_sdk_iam::Client::new(&conf)
}

/// Waits until the request `name` is provisioned; returns the IAM user its status names.
pub async fn provisioned_user(c: &Client, name: &str) -> Result<String> {
    let cr = wait_cr(c, name, "provisioned", |c| {
        c.status.as_ref().is_some_and(|s| s.provisioned)
    })
    .await?;
    cr.status
        .and_then(|s| s.provider_status)
        .and_then(|p| p["user"].as_str().map(str::to_string))
        .ok_or_else(|| anyhow!("{name}: provisioned without a user in its provider status"))
}

/// Polls `f` until it returns true.
pub async fn wait_until<F, Fut>(timeout: Duration, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        match f().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = Some(e),
        }
        if Instant::now() > deadline {
            return Err(anyhow!("timed out after {timeout:?}; last error: {last:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for a Secret and returns its data as strings.
pub async fn wait_secret(c: &Client, ns: &str, name: &str) -> Result<BTreeMap<String, String>> {
    let api: Api<Secret> = Api::namespaced(c.clone(), ns);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = api.get_opt(name).await? {
            return Ok(s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect());
        }
        if Instant::now() > deadline {
            return Err(anyhow!("timed out waiting for Secret {ns}/{name}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads a CR.
pub async fn get_cr(c: &Client, name: &str) -> Result<CredentialsRequest> {
    Ok(
        Api::<CredentialsRequest>::namespaced(c.clone(), OPERATOR_NS)
            .get(name)
            .await?,
    )
}

/// The status of condition `t` on a CR, if set.
pub fn condition(cr: &CredentialsRequest, t: &str) -> Option<(String, Option<String>)> {
    cr.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Waits until `f(cr)` holds for the CR `name`.
pub async fn wait_cr(
    c: &Client,
    name: &str,
    what: &str,
    f: impl Fn(&CredentialsRequest) -> bool,
) -> Result<CredentialsRequest> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    loop {
        match get_cr(c, name).await {
            Ok(cr) if f(&cr) => return Ok(cr),
            Ok(cr) => last = Some(cr),
            Err(_) => {}
        }
        if Instant::now() > deadline {
            return Err(anyhow!(
                "{what}: timed out; last status: {:?}",
                last.and_then(|c| c.status)
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Settings for tests: fast lease, fast retries, metrics on a free port.
pub fn test_settings() -> Settings {
    Settings {
        metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
        lease_retry: Duration::from_millis(500),
        lease_duration: Duration::from_secs(5),
        retry: Duration::from_secs(2),
        status_interval: Duration::from_secs(5),
        identity: "test-operator".into(),
        ..Default::default()
    }
}

/// An operator running in this process until the returned sender is dropped or fired.
pub struct Running {
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub handle: tokio::task::JoinHandle<Result<(), cco_operator::operator::RunError>>,
    pub metrics: Arc<Metrics>,
}

impl Running {
    pub async fn stop(mut self) -> Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .map_err(|_| anyhow!("operator did not stop within 30s"))???;
        Ok(())
    }
}

/// Sends operator logs to the test output (shown for failing tests); `RUST_LOG` filters.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

pub fn spawn_operator(client: Client, settings: Settings) -> Running {
    init_logs();
    let metrics = Arc::new(Metrics::new());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let m = metrics.clone();
    let handle = tokio::spawn(async move {
        cco_operator::operator::run(client, settings, m, async move {
            let _ = rx.await;
        })
        .await
    });
    Running {
        stop: Some(tx),
        handle,
        metrics,
    }
}

/// Creates or updates ClusterVersion `version` so that `completed` is the version the cluster runs
/// (newest first in `status.history`, state Completed), as the cluster-version operator records it.
pub async fn set_cluster_version(c: &Client, completed: &str) -> Result<()> {
    apply(
        c,
        serde_json::json!({"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion",
            "metadata": {"name": "version"}, "spec": {"clusterID": "00000000-0000-0000-0000-000000000001"}}),
    )
    .await?;
    let gvk = kube::core::GroupVersionKind::gvk("config.openshift.io", "v1", "ClusterVersion");
    let (ar, _) = kube::discovery::pinned_kind(c, &gvk).await?;
    let api: Api<DynamicObject> = Api::all_with(c.clone(), &ar);
    let image = format!("quay.io/openshift-release-dev/ocp-release:{completed}");
    let status = serde_json::json!({"status": {
        "desired": {"image": image, "version": completed},
        "observedGeneration": 1, "versionHash": "test", "availableUpdates": [],
        "history": [{"state": "Completed", "version": completed, "image": image, "verified": false,
                     "startedTime": "2024-01-01T00:00:00Z", "completionTime": "2024-01-01T01:00:00Z"}]}});
    api.patch_status("version", &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// The ClusterOperator condition `type_` as (status, reason, message), once it satisfies `f`.
pub async fn wait_co_condition(
    c: &Client,
    type_: &str,
    f: impl Fn(&str, Option<&str>, Option<&str>) -> bool,
) -> Result<(String, Option<String>, Option<String>)> {
    let api: Api<cco_operator::openshift::ClusterOperator> = Api::all(c.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    loop {
        if let Some(s) = api
            .get_opt("cloud-credential")
            .await?
            .and_then(|c| c.status)
        {
            if let Some(cond) = s.conditions.iter().find(|x| x.type_ == type_) {
                let v = (
                    cond.status.clone(),
                    cond.reason.clone(),
                    cond.message.clone(),
                );
                if f(&v.0, v.1.as_deref(), v.2.as_deref()) {
                    return Ok(v);
                }
                last = Some(v);
            }
        }
        if Instant::now() > deadline {
            return Err(anyhow!(
                "ClusterOperator condition {type_}: timed out; last: {last:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
