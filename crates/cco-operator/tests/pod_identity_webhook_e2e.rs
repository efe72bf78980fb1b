//! The two halves fit: the Deployment the operator writes starts our webhook binary, which then
//! serves and mutates pods through the real API server — for AWS, GCP and Azure.
//!
//! For each cloud the operator (in-process, as its own ServiceAccount) writes the webhook objects.
//! The test then does what the kubelet would: it runs `cco-pod-identity-webhook` under the
//! Deployment's program name (a symlink named like `command[0]`) with exactly the container's
//! `args`, the container's environment (`valueFrom` resolved from the Secret and the pod's
//! namespace), the serving certificate (from a test CA) placed where the Deployment mounts the
//! Secret (`CCO_WEBHOOK_FS_ROOT` stands in for the container's file system) and the webhook's own
//! ServiceAccount token (`KUBECONFIG` stands in for the in-cluster account, so the webhook's RBAC
//! the operator wrote is what it runs under). The operator's MutatingWebhookConfiguration is
//! registered again with a URL to the Service's target port instead of the Service (there is no
//! kubelet or service network here) and the test CA; a pod created through the API server must come
//! back mutated. Azure's configuration fails closed, so for Azure (the last case) the operator is
//! stopped and its Service-based configuration deleted before the copy is registered.
//!
//! The webhook ports are the reference's fixed ones (9443, …): the run holds the same cross-process
//! lock as the webhook crate's reference-argument tests.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use common::*;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret, Service, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::json;

const NAME: &str = "pod-identity-webhook";
const ROLE: &str = "arn:aws:iam::111122223333:role/app";
const PROVIDER: &str = "projects/42/locations/global/workloadIdentityPools/pool/providers/prov";

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The webhook crate's lock on the reference ports (same directory, same protocol).
struct PortLock(PathBuf);

impl Drop for PortLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn port_lock() -> PortLock {
    let dir = std::env::temp_dir().join("cco-webhook-reference-ports.lock");
    loop {
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::write(dir.join("pid"), std::process::id().to_string()).unwrap();
                return PortLock(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
                let alive = !owner.is_empty() && Path::new("/proc").join(owner.trim()).exists();
                if !alive && !owner.is_empty() {
                    let _ = std::fs::remove_dir_all(&dir);
                    continue;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("lock {}: {e}", dir.display()),
        }
    }
}

/// Builds (if needed) and returns the webhook binary of this workspace.
fn webhook_binary() -> Result<PathBuf> {
    let root = cco_testsupport::repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-p",
            "cco-webhook",
            "--bin",
            "cco-pod-identity-webhook",
        ])
        .current_dir(&root)
        .status()
        .context("running cargo build for the webhook")?;
    if !status.success() {
        bail!("building cco-pod-identity-webhook failed: {status}");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug").join("cco-pod-identity-webhook");
    anyhow::ensure!(bin.exists(), "{} missing", bin.display());
    Ok(bin)
}

/// A CA and a serving certificate for 127.0.0.1, as PEM (ca, cert, key).
fn test_pki() -> (String, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "service-ca-for-tests");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = rcgen::CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut leaf = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "pod-identity-webhook.openshift-cloud-credential-operator.svc".to_string(),
    ])
    .unwrap();
    leaf.distinguished_name.push(DnType::CommonName, NAME);
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (issuer.pem(), cert.pem(), key.serialize_pem())
}

async fn wait_deployment(c: &Client, command: &str) -> Result<Deployment> {
    let api = Api::<Deployment>::namespaced(c.clone(), OPERATOR_NS);
    for _ in 0..150 {
        if let Some(d) = api.get_opt(NAME).await? {
            let c0 = &d
                .spec
                .as_ref()
                .unwrap()
                .template
                .spec
                .as_ref()
                .unwrap()
                .containers[0];
            if c0.command.as_deref() == Some(&[command.to_string()][..]) {
                return Ok(d);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("no Deployment running {command}")
}

async fn wait_mwc(c: &Client, hook: &str) -> Result<MutatingWebhookConfiguration> {
    let api = Api::<MutatingWebhookConfiguration>::all(c.clone());
    for _ in 0..150 {
        if let Some(m) = api.get_opt(NAME).await? {
            if m.webhooks.as_ref().is_some_and(|w| w[0].name == hook) {
                return Ok(m);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("no MutatingWebhookConfiguration with {hook}")
}

/// Starts the Deployment's container as the kubelet would (see the module documentation).
async fn start_container(
    env: &Env,
    d: &Deployment,
    bin: &Path,
    work: &Path,
    certs: &(String, String, String),
) -> Result<Process> {
    let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let c = &pod.containers[0];
    let command = c.command.clone().unwrap_or_default();
    let args = c.args.clone().unwrap_or_default();
    // The serving certificate where the Deployment mounts the Secret.
    let mount = c.volume_mounts.as_ref().unwrap()[0].mount_path.clone();
    let fs_root = work.join("rootfs");
    let cert_dir = fs_root.join(mount.trim_start_matches('/'));
    std::fs::create_dir_all(&cert_dir)?;
    std::fs::write(cert_dir.join("tls.crt"), &certs.1)?;
    std::fs::write(cert_dir.join("tls.key"), &certs.2)?;
    // The webhook's own ServiceAccount, as its pod would have.
    let kubeconfig = work.join("kubeconfig");
    std::fs::write(&kubeconfig, sa_kubeconfig(env, NAME).await?)?;
    // The container's environment.
    let mut vars: Vec<(String, String)> = vec![
        ("KUBECONFIG".into(), kubeconfig.display().to_string()),
        ("CCO_WEBHOOK_FS_ROOT".into(), fs_root.display().to_string()),
        ("TMPDIR".into(), "/tmp".into()),
    ];
    for e in c.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            v.clone()
        } else if let Some(r) = e
            .value_from
            .as_ref()
            .and_then(|f| f.secret_key_ref.as_ref())
        {
            let s = Api::<Secret>::namespaced(env.admin.clone(), OPERATOR_NS)
                .get(&r.name)
                .await?;
            String::from_utf8(s.data.unwrap()[&r.key].0.clone())?
        } else if e
            .value_from
            .as_ref()
            .and_then(|f| f.field_ref.as_ref())
            .is_some_and(|f| f.field_path == "metadata.namespace")
        {
            OPERATOR_NS.to_string()
        } else {
            bail!("unsupported env source for {}", e.name)
        };
        vars.push((e.name.clone(), value));
    }
    let program = Path::new(&command[0]).file_name().unwrap().to_owned();
    let link = work.join("bin").join(program);
    std::fs::create_dir_all(link.parent().unwrap())?;
    std::os::unix::fs::symlink(bin, &link)?;
    let log = std::fs::File::create(work.join("webhook.log"))?;
    let child = Command::new(&link)
        .args(&command[1..])
        .args(&args)
        .env_remove("RUST_LOG")
        .envs(vars)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", link.display()))?;
    Ok(Process(child))
}

async fn wait_port(port: u16, p: &mut Process, work: &Path) -> Result<()> {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Some(st) = p.0.try_wait()? {
            let log = std::fs::read_to_string(work.join("webhook.log")).unwrap_or_default();
            bail!("webhook exited with {st}:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("port {port} never opened")
}

/// The operator's MutatingWebhookConfiguration, pointed at the local process and scoped to `ns`.
async fn register(
    c: &Client,
    mwc: &MutatingWebhookConfiguration,
    port: u16,
    ca_pem: &str,
    ns: &str,
) -> Result<String> {
    let mut v = serde_json::to_value(mwc)?;
    let name = format!("test-{ns}");
    v["metadata"] = json!({"name": name});
    for h in v["webhooks"].as_array_mut().unwrap() {
        let path = h["clientConfig"]["service"]["path"].clone();
        h["clientConfig"] = json!({
            "url": format!("https://127.0.0.1:{port}{}", path.as_str().unwrap()),
            "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem),
        });
        let sel = h
            .as_object_mut()
            .unwrap()
            .entry("namespaceSelector")
            .or_insert(json!({}));
        sel["matchLabels"] = json!({"kubernetes.io/metadata.name": ns});
    }
    let m: MutatingWebhookConfiguration = serde_json::from_value(v)?;
    Api::<MutatingWebhookConfiguration>::all(c.clone())
        .create(&PostParams::default(), &m)
        .await?;
    // The API server's webhook registry catches up asynchronously.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(name)
}

/// Creates a pod using ServiceAccount `sa` in `ns` until it comes back mutated; returns it.
async fn mutated_pod(
    c: &Client,
    ns: &str,
    sa: serde_json::Value,
    labels: serde_json::Value,
) -> Result<Pod> {
    create_namespace(c, ns).await?;
    let sa: ServiceAccount = serde_json::from_value(sa)?;
    Api::<ServiceAccount>::namespaced(c.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await?;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "app", "labels": labels},
        "spec": {"serviceAccountName": sa.metadata.name, "containers": [{"name": "app", "image": "registry.example/app:1"}]}
    }))?;
    let mut last = None;
    // Retry while the webhook registration propagates (failurePolicy Ignore admits unmutated).
    for attempt in 0..10 {
        let name = format!("app-{attempt}");
        let mut p = pod.clone();
        p.metadata.name = Some(name.clone());
        let out = Api::<Pod>::namespaced(c.clone(), ns)
            .create(&PostParams::default(), &p)
            .await?;
        let env = pod_env(&out);
        if !env.is_empty() {
            return Ok(out);
        }
        last = Some(env);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("pod never mutated: {last:?}")
}

fn pod_env(p: &Pod) -> Vec<(String, String)> {
    p.spec.as_ref().unwrap().containers[0]
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect()
}

/// The audiences of the pod's projected ServiceAccount tokens.
fn token_audiences(p: &Pod) -> Vec<String> {
    p.spec
        .as_ref()
        .unwrap()
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|pr| pr.sources.iter().flatten())
        .filter_map(|s| s.service_account_token.as_ref())
        .filter_map(|t| t.audience.clone())
        .collect()
}

fn has(env: &[(String, String)], k: &str, v: &str) -> bool {
    env.iter().any(|(a, b)| a == k && b == v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployment_the_operator_writes_runs_our_webhook_and_it_mutates_pods() -> Result<()> {
    let bin = webhook_binary()?;
    let env = start().await?;
    let a = env.admin.clone();
    set_cluster(&a, "Manual", "AWS", "https://oidc.example.com/cluster").await?;
    let gvk = kube::core::GroupVersionKind::gvk("config.openshift.io", "v1", "Infrastructure");
    let (ar, _) = kube::discovery::pinned_kind(&a, &gvk).await?;
    Api::<kube::api::DynamicObject>::all_with(a.clone(), &ar)
        .patch_status(
            "cluster",
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"status": {"platformStatus": {"aws": {"region": "ap-south-1"}}}}),
            ),
        )
        .await?;
    let mut settings = test_settings();
    settings.webhook_images = cco_operator::podidentity::WebhookImages {
        aws: Some("registry.example/cco:1".into()),
        azure: Some("registry.example/cco:1".into()),
        gcp: Some("registry.example/cco:1".into()),
    };
    let mut op = Some(spawn_operator(operator_client(&env).await?, settings));
    let certs = test_pki();
    let _lock = port_lock();

    struct Case {
        platform: &'static str,
        command: &'static str,
        hook: &'static str,
        ns: &'static str,
        sa: serde_json::Value,
        labels: serde_json::Value,
    }
    let cases = [
        Case {
            platform: "AWS",
            command: "/usr/bin/aws-pod-identity-webhook",
            hook: "pod-identity-webhook.aws.mutate.io",
            ns: "e2e-aws",
            sa: json!({"metadata": {"name": "app",
                "annotations": {"eks.amazonaws.com/role-arn": ROLE}}}),
            labels: json!({}),
        },
        Case {
            platform: "GCP",
            command: "/usr/bin/gcp-workload-identity-federation-webhook",
            hook: "pod-identity-webhook.gcp.mutate.io",
            ns: "e2e-gcp",
            sa: json!({"metadata": {"name": "app", "annotations": {
                "cloud.google.com/workload-identity-provider": PROVIDER,
                "cloud.google.com/service-account-email": "app@proj.iam.gserviceaccount.com"}}}),
            labels: json!({}),
        },
        Case {
            platform: "Azure",
            command: "/usr/bin/azure-workload-identity-webhook",
            hook: "pod-identity-webhook.azure.mutate.io",
            ns: "e2e-azure",
            sa: json!({"metadata": {"name": "app", "annotations": {
                "azure.workload.identity/client-id": "client-1"}}}),
            labels: json!({"azure.workload.identity/use": "true"}),
        },
    ];
    for case in cases {
        if case.platform != "AWS" {
            set_platform(&a, case.platform).await?;
        }
        if case.platform == "Azure" {
            let s: Secret = serde_json::from_value(json!({
                "metadata": {"name": "azure-credentials", "namespace": OPERATOR_NS},
                "stringData": {"azure_tenant_id": "tenant-from-the-secret"}}))?;
            Api::<Secret>::namespaced(a.clone(), OPERATOR_NS)
                .create(&PostParams::default(), &s)
                .await?;
        }
        let d = wait_deployment(&a, case.command).await?;
        let mwc = wait_mwc(&a, case.hook).await?;
        let svc = Api::<Service>::namespaced(a.clone(), OPERATOR_NS)
            .get(NAME)
            .await?;
        let port = match svc.spec.unwrap().ports.unwrap()[0].target_port.clone() {
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p)) => p as u16,
            other => bail!("Service targetPort {other:?}"),
        };
        if case.platform == "Azure" {
            // The Azure configuration fails closed (failurePolicy Fail) and names the Service,
            // which nothing serves here: with the objects read, stop the operator and let only the
            // copy registered below intercept pods.
            if let Some(op) = op.take() {
                op.stop().await?;
            }
            Api::<MutatingWebhookConfiguration>::all(a.clone())
                .delete(NAME, &DeleteParams::default())
                .await?;
        }
        let work = tempfile::tempdir()?;
        let mut proc = start_container(&env, &d, &bin, work.path(), &certs).await?;
        wait_port(port, &mut proc, work.path())
            .await
            .with_context(|| format!("{} webhook", case.platform))?;
        let reg = register(&a, &mwc, port, &certs.0, case.ns).await?;
        let pod = mutated_pod(&a, case.ns, case.sa, case.labels).await;
        let log = std::fs::read_to_string(work.path().join("webhook.log")).unwrap_or_default();
        let pod = pod.with_context(|| format!("{}: webhook log:\n{log}", case.platform))?;
        let got = pod_env(&pod);
        match case.platform {
            "AWS" => {
                assert!(has(&got, "AWS_ROLE_ARN", ROLE), "{got:?}");
                // The region the operator passed from Infrastructure.
                assert!(has(&got, "AWS_REGION", "ap-south-1"), "{got:?}");
            }
            "GCP" => {
                assert!(
                    got.iter()
                        .any(|(k, _)| k == "GOOGLE_APPLICATION_CREDENTIALS"),
                    "{got:?}"
                );
                // The ServiceAccount names no audience: the token is for `openshift`, the only
                // audience a provider made by `ccoctl gcp` allows (issue 10).
                assert_eq!(
                    token_audiences(&pod),
                    ["openshift"],
                    "{:?}",
                    pod.spec.as_ref().map(|s| &s.volumes)
                );
            }
            _ => {
                assert!(has(&got, "AZURE_CLIENT_ID", "client-1"), "{got:?}");
                assert!(
                    has(&got, "AZURE_TENANT_ID", "tenant-from-the-secret"),
                    "{got:?}"
                );
            }
        }
        Api::<MutatingWebhookConfiguration>::all(a.clone())
            .delete(&reg, &DeleteParams::default())
            .await?;
        drop(proc);
    }
    if let Some(op) = op {
        op.stop().await?;
    }
    Ok(())
}
