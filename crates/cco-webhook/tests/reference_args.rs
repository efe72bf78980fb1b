//! The binary started exactly as the reference Deployments start theirs
//! (`tests/data/reference-deployments.json`: OpenShift's AWS, Azure and GCP webhook Deployments
//! and the EKS webhook's own), registered with a real kube-apiserver, serving and mutating pods.
//!
//! The process gets the Deployment's command (`argv[0]` through a symlink named like the
//! reference binary) and arguments unchanged, and its environment: `KUBECONFIG` stands in for
//! the in-cluster ServiceAccount, `CCO_WEBHOOK_FS_ROOT` for the container's file system (the
//! certificate directories of the Deployments, `/certs`, `/var/run/app/certs`, … are looked up
//! under a temp dir). The reference ports are fixed (9443, 8081, …), so the deployments run one
//! after the other under a cross-process lock.
//!
//! The second test runs `--in-cluster`: the webhook asks for its certificate with a
//! CertificateSigningRequest; the test approves and signs it like a signer controller would
//! (there is no kube-controller-manager), and checks the Secret and the served certificate.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result};
use base64::Engine as _;
use cco_testsupport::kube_env::{KubeEnv, KubeEnvOptions};
use common::process::{
    create_ns, create_sa, env_value, free_port, port_lock, spawn, wait_port, wait_ready,
};
use common::{http_get, https_request_as, Pki};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use kube::Client;
use serde_json::{json, Value};

/// The SA annotations and pod labels that make each profile's cloud inject.
fn identity(profile: &str) -> (Value, Value) {
    match profile {
        "aws" => (
            json!({"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/app"}),
            json!({}),
        ),
        "azure" => (
            json!({"azure.workload.identity/client-id": "client-1"}),
            json!({"azure.workload.identity/use": "true"}),
        ),
        _ => (
            json!({
                "cloud.google.com/workload-identity-provider":
                    "projects/42/locations/global/workloadIdentityPools/pool/providers/prov",
                "cloud.google.com/service-account-email": "app@proj.iam.gserviceaccount.com",
            }),
            json!({}),
        ),
    }
}

/// The variable that proves each cloud injected, and its expected value.
fn proof(profile: &str) -> (&'static str, Option<&'static str>) {
    match profile {
        "aws" => ("AWS_ROLE_ARN", Some("arn:aws:iam::111122223333:role/app")),
        "azure" => ("AZURE_TENANT_ID", Some("tenant-from-secret")),
        _ => ("GOOGLE_APPLICATION_CREDENTIALS", None),
    }
}

async fn mutated_pod(client: &Client, ns: &str, labels: &Value) -> Result<Option<Value>> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"generateName": "probe-", "labels": labels},
        "spec": {"serviceAccountName": "app", "containers": [{"name": "app", "image": "x"}]}
    }))?;
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    match Api::<Pod>::namespaced(client.clone(), ns)
        .create(&pp, &pod)
        .await
    {
        Ok(p) => Ok(Some(serde_json::to_value(p)?)),
        Err(_) => Ok(None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_deployment_arguments_start_the_binary_and_it_mutates() -> Result<()> {
    let data: Value =
        serde_json::from_str(include_str!("data/reference-deployments.json")).unwrap();
    let kube = KubeEnv::start(KubeEnvOptions::default()).await?;
    let client = kube.client().await?;
    let pki = Pki::new();
    let _lock = port_lock();

    for d in data["deployments"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap();
        let profile = d["profile"].as_str().unwrap();
        let command: Vec<String> = serde_json::from_value(d["command"].clone())?;
        let port = u16::try_from(d["webhook_port"].as_u64().unwrap())?;
        let work = tempfile::tempdir()?;
        let root = work.path().join("root");
        let cert_dir = root.join(d["cert_dir"].as_str().unwrap().trim_start_matches('/'));
        pki.write_leaf_to(&cert_dir);

        let mut env: Vec<(String, String)> =
            serde_json::from_value::<std::collections::BTreeMap<String, String>>(d["env"].clone())?
                .into_iter()
                .collect();
        env.push((
            "KUBECONFIG".into(),
            kube.kubeconfig_path().display().to_string(),
        ));
        env.push(("CCO_WEBHOOK_FS_ROOT".into(), root.display().to_string()));
        env.push(("TMPDIR".into(), "/tmp".into()));
        let mut proc = spawn(&command, &env, work.path())?;
        wait_port(port, &mut proc, work.path()).await?;

        // Health and metrics where the Deployment's probes and scrapers look.
        for key in ["health_port", "metrics_port"] {
            if let Some(p) = d[key].as_u64() {
                let addr: SocketAddr = ([127, 0, 0, 1], u16::try_from(p)?).into();
                wait_port(addr.port(), &mut proc, work.path()).await?;
                let path = if key == "health_port" {
                    "/readyz"
                } else {
                    "/metrics"
                };
                let (status, _) = http_get(addr, path).await;
                assert_eq!(status, 200, "{name}: {path} on {p}");
            }
        }

        // Register it exactly where the reference MutatingWebhookConfiguration points.
        let ns = format!("ref-{name}");
        create_ns(&client, &ns).await?;
        let (sa_annotations, labels) = identity(profile);
        create_sa(&client, &ns, "app", sa_annotations).await?;
        let versions = if profile == "aws" {
            json!(["v1beta1"])
        } else {
            json!(["v1", "v1beta1"])
        };
        let mwc: MutatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": {"name": format!("ref-{name}")},
            "webhooks": [{
                "name": format!("{name}.pod-identity.test"),
                "clientConfig": {
                    "url": format!("https://127.0.0.1:{port}{}", d["path"].as_str().unwrap()),
                    "caBundle": base64::engine::general_purpose::STANDARD.encode(&pki.ca_pem),
                },
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["pods"]}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": versions,
                "timeoutSeconds": 10
            }]
        }))?;
        let mwcs = Api::<MutatingWebhookConfiguration>::all(client.clone());
        mwcs.create(&PostParams::default(), &mwc).await?;

        let (var, expected) = proof(profile);
        let mut mutated = None;
        for _ in 0..150 {
            if let Some(p) = mutated_pod(&client, &ns, &labels).await? {
                if env_value(&p, var).is_some() {
                    mutated = Some(p);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let log = std::fs::read_to_string(work.path().join("webhook.log")).unwrap_or_default();
        let pod = mutated.with_context(|| format!("{name}: pod never mutated; log:\n{log}"))?;
        if let Some(v) = expected {
            assert_eq!(env_value(&pod, var).as_deref(), Some(v), "{name}");
        }
        // Only the profile's cloud is served.
        for other in [
            "AWS_ROLE_ARN",
            "AZURE_CLIENT_ID",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ] {
            if other != var && !(profile == "azure" && other == "AZURE_CLIENT_ID") {
                assert!(env_value(&pod, other).is_none(), "{name}: {other} injected");
            }
        }
        mwcs.delete(&format!("ref-{name}"), &DeleteParams::default())
            .await?;
        drop(proc);
    }
    Ok(())
}

/// Approve and sign every pending CSR of `signer` with the test CA, as a signer controller.
async fn approve_and_sign(client: &Client, pki: &Pki, signer: &str) -> Result<Vec<String>> {
    let api = Api::<CertificateSigningRequest>::all(client.clone());
    let mut signed = Vec::new();
    for csr in api.list(&Default::default()).await? {
        let name = csr.metadata.name.clone().unwrap_or_default();
        if csr.spec.signer_name != signer
            || csr
                .status
                .as_ref()
                .and_then(|s| s.certificate.as_ref())
                .is_some()
        {
            continue;
        }
        let approval = json!({"status": {"conditions": [{
            "type": "Approved", "status": "True", "reason": "Test", "message": "approved by the test"
        }]}});
        api.patch_approval(
            &name,
            &Default::default(),
            &kube::api::Patch::Merge(&approval),
        )
        .await?;
        let request = String::from_utf8(csr.spec.request.0.clone())?;
        let cert = pki.sign_request(&request);
        let status = json!({"status": {
            "conditions": [{"type": "Approved", "status": "True", "reason": "Test", "message": "approved by the test"}],
            "certificate": base64::engine::general_purpose::STANDARD.encode(cert),
        }});
        api.patch_status(
            &name,
            &Default::default(),
            &kube::api::Patch::Merge(&status),
        )
        .await?;
        signed.push(name);
    }
    Ok(signed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_cluster_mode_gets_its_certificate_through_a_csr() -> Result<()> {
    let kube = KubeEnv::start(KubeEnvOptions::default()).await?;
    let client = kube.client().await?;
    let pki = Pki::new();
    create_ns(&client, "eks").await?;
    let work = tempfile::tempdir()?;
    let port = free_port();
    let metrics_port = free_port();
    let signer = "example.com/webhook-serving";
    let command: Vec<String> = [
        "/webhook",
        "--in-cluster",
        "--namespace",
        "eks",
        "--service-name=pod-identity-webhook",
        "-tls-secret=pod-identity-webhook",
        &format!("--port={port}"),
        &format!("--metrics-port={metrics_port}"),
        &format!("--csr-signer-name={signer}"),
        "--logtostderr",
        "-v=2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let env = vec![(
        "KUBECONFIG".to_string(),
        kube.kubeconfig_path().display().to_string(),
    )];
    let mut proc = spawn(&command, &env, work.path())?;
    wait_port(port, &mut proc, work.path()).await?;

    let mut signed = Vec::new();
    for _ in 0..100 {
        signed = approve_and_sign(&client, &pki, signer).await?;
        if !signed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(signed.len(), 1, "one CSR per webhook start");
    let csr = Api::<CertificateSigningRequest>::all(client.clone())
        .get(&signed[0])
        .await?;
    assert_eq!(
        csr.spec.usages.clone().unwrap_or_default(),
        ["digital signature", "key encipherment", "server auth"]
    );

    // The pair lands in the Secret, and the webhook serves it for its Service name.
    let secrets = Api::<Secret>::namespaced(client.clone(), "eks");
    let mut stored = None;
    for _ in 0..100 {
        if let Some(s) = secrets.get_opt("pod-identity-webhook").await? {
            stored = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = stored.context("Secret pod-identity-webhook never written")?;
    assert_eq!(stored.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = stored.data.unwrap_or_default();
    assert!(data.contains_key("tls.key"));
    let served_cert = data["tls.crt"].0.clone();

    let metrics_addr: SocketAddr = ([127, 0, 0, 1], metrics_port).into();
    wait_ready(metrics_addr).await?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut reply = None;
    for _ in 0..50 {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            https_request_as(
                addr,
                "pod-identity-webhook.eks.svc",
                &pki.ca_pem,
                "GET",
                "/healthz",
                vec![],
            ),
        )
        .await;
        if let Ok(r) = r {
            reply = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply = reply.context("no TLS answer")?;
    assert_eq!(reply.status, 200);
    let pem = String::from_utf8(served_cert)?;
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|c: rustls::pki_types::CertificateDer<'static>| c.as_ref().to_vec())?;
    assert_eq!(
        reply.peer_cert, der,
        "serves the certificate from the Secret"
    );

    // A restart reuses the stored certificate instead of asking again.
    drop(proc);
    let mut proc = spawn(&command, &env, work.path())?;
    wait_port(port, &mut proc, work.path()).await?;
    wait_ready(metrics_addr).await?;
    let csrs = Api::<CertificateSigningRequest>::all(client.clone())
        .list(&Default::default())
        .await?;
    assert_eq!(csrs.items.len(), 1, "no new CSR after a restart");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_map_roles_pod_identity_associations_and_debug_handlers() -> Result<()> {
    let kube = KubeEnv::start(KubeEnvOptions::default()).await?;
    let client = kube.client().await?;
    let pki = Pki::new();
    let work = tempfile::tempdir()?;
    pki.write_leaf_to(&work.path().join("certs"));
    for ns in ["eks", "team"] {
        create_ns(&client, ns).await?;
    }
    let role = "arn:aws:iam::111122223333:role/from-config-map";
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "pod-identity-webhook"},
        "data": {"config": json!({"team/cm-sa": {"RoleARN": role, "UseRegionalSTS": true}}).to_string()}
    }))?;
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), "eks")
        .create(&PostParams::default(), &cm)
        .await?;
    let associations = work.path().join("associations.json");
    std::fs::write(
        &associations,
        r#"{"identities":[{"namespace":"team","serviceAccount":"pi-sa"}]}"#,
    )?;
    create_sa(&client, "team", "cm-sa", json!({})).await?;
    create_sa(&client, "team", "pi-sa", json!({})).await?;

    let (port, metrics_port) = (free_port(), free_port());
    let cert_dir = work.path().join("certs");
    let command: Vec<String> = vec![
        "/webhook".into(),
        "--in-cluster=false".into(),
        format!("--tls-cert={}", cert_dir.join("tls.crt").display()),
        format!("--tls-key={}", cert_dir.join("tls.key").display()),
        format!("--port={port}"),
        format!("--metrics-port={metrics_port}"),
        "--namespace=eks".into(),
        "--watch-config-map".into(),
        format!(
            "--watch-container-credentials-config={}",
            associations.display()
        ),
        "--enable-debugging-handlers".into(),
    ];
    let env = vec![(
        "KUBECONFIG".to_string(),
        kube.kubeconfig_path().display().to_string(),
    )];
    let mut proc = spawn(&command, &env, work.path())?;
    wait_port(port, &mut proc, work.path()).await?;
    let mwc: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": "dynamic"},
        "webhooks": [{
            "name": "dynamic.pod-identity.test",
            "clientConfig": {
                "url": format!("https://127.0.0.1:{port}/mutate"),
                "caBundle": base64::engine::general_purpose::STANDARD.encode(&pki.ca_pem),
            },
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team"}},
            "failurePolicy": "Fail", "sideEffects": "None",
            "admissionReviewVersions": ["v1beta1"], "timeoutSeconds": 10
        }]
    }))?;
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &mwc)
        .await?;

    let pod_for = |sa: &str| -> Result<Pod> {
        Ok(serde_json::from_value(json!({
            "metadata": {"generateName": "p-"},
            "spec": {"serviceAccountName": sa, "containers": [{"name": "app", "image": "x"}]}
        }))?)
    };
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let pods = Api::<Pod>::namespaced(client.clone(), "team");
    let mut cm_pod = None;
    for _ in 0..150 {
        if let Ok(p) = pods.create(&dry, &pod_for("cm-sa")?).await {
            let v = serde_json::to_value(&p)?;
            if env_value(&v, "AWS_ROLE_ARN").is_some() {
                cm_pod = Some(v);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cm_pod = cm_pod.context("ConfigMap role never applied")?;
    assert_eq!(env_value(&cm_pod, "AWS_ROLE_ARN").as_deref(), Some(role));
    assert_eq!(
        env_value(&cm_pod, "AWS_STS_REGIONAL_ENDPOINTS").as_deref(),
        Some("regional")
    );

    let pi_pod = serde_json::to_value(pods.create(&dry, &pod_for("pi-sa")?).await?)?;
    assert_eq!(
        env_value(&pi_pod, "AWS_CONTAINER_CREDENTIALS_FULL_URI").as_deref(),
        Some("http://169.254.170.23/v1/credentials")
    );
    assert_eq!(
        pi_pod["metadata"]["labels"]["eks.amazonaws.com/pod-identity"],
        "enabled"
    );

    // The association file is followed: emptied, the ServiceAccount loses Pod Identity.
    std::fs::write(&associations, "")?;
    let mut cleared = false;
    for _ in 0..50 {
        let p = serde_json::to_value(pods.create(&dry, &pod_for("pi-sa")?).await?)?;
        if env_value(&p, "AWS_CONTAINER_CREDENTIALS_FULL_URI").is_none() {
            cleared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(cleared, "association file change not picked up");

    let metrics_addr: SocketAddr = ([127, 0, 0, 1], metrics_port).into();
    let (_, text) = http_get(metrics_addr, "/metrics").await;
    for needle in [
        "http_request_count{code=\"200\",path=\"/mutate\",verb=\"POST\"}",
        "pod_identity_webhook_pod_count{method=\"container_credentials\"}",
        "pod_identity_webhook_pod_count{method=\"sts_web_identity\"}",
        "pod_identity_webhook_used 1",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    let (status, dump) = http_get(metrics_addr, "/debug/alpha/cache").await;
    assert_eq!(status, 200);
    assert!(dump.contains("team/cm-sa"), "{dump}");
    Ok(())
}
