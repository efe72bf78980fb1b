//! azure-workload-identity's default certificate handling (`--disable-cert-rotation=false`) on the
//! binary started as `azure-workload-identity-webhook` against a real kube-apiserver: it fills the
//! empty Secret `azure-wi-webhook-server-cert` with a CA and a serving pair, injects the CA into
//! `azure-wi-webhook-mutating-webhook-configuration`, and the API server, calling it through the
//! Service `azure-wi-webhook-webhook-service` (endpoint routing to this host's address, TLS
//! verified for `<service>.<namespace>.svc` against the injected bundle), gets pods mutated.
//! Stripped bundles are put back, a broken serving certificate is replaced from the same CA, a
//! CA without its key is replaced with everything, and each time admission keeps working.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use cco_testsupport::kube_env::{KubeEnv, KubeEnvOptions};
use common::https_request_as;
use common::process::{create_ns, create_sa, env_value, free_port, spawn, wait_ready};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use kube::Client;
use serde_json::{json, Value};

const NS: &str = "azwi";
const SECRET: &str = "azure-wi-webhook-server-cert";
const SERVICE: &str = "azure-wi-webhook-webhook-service";
const MWC: &str = "azure-wi-webhook-mutating-webhook-configuration";

/// This host's non-loopback address (the API server refuses loopback endpoints).
fn host_ip() -> Result<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    // No packet is sent: connecting a UDP socket only picks the route and source address.
    socket.connect("192.0.2.1:9")?;
    let ip = socket.local_addr()?.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        bail!("no non-loopback IPv4 address on this host (got {ip})");
    }
    Ok(ip)
}

async fn create<K>(api: &Api<K>, value: Value) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(value)?;
    api.create(&PostParams::default(), &obj).await?;
    Ok(())
}

/// Service, EndpointSlice (this host, `port`) and the webhook configuration without a CA bundle.
async fn setup(client: &Client, ip: IpAddr, port: u16) -> Result<()> {
    create(
        &Api::<Service>::namespaced(client.clone(), NS),
        json!({"metadata": {"name": SERVICE},
               "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}}),
    )
    .await?;
    create(
        &Api::<EndpointSlice>::namespaced(client.clone(), NS),
        json!({"metadata": {"name": format!("{SERVICE}-1"),
                            "labels": {"kubernetes.io/service-name": SERVICE}},
               "addressType": "IPv4",
               "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
               "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}),
    )
    .await?;
    create(
        &Api::<MutatingWebhookConfiguration>::all(client.clone()),
        json!({
            "metadata": {"name": MWC},
            "webhooks": [{
                "name": "mutation.azure-workload-identity.io",
                "clientConfig": {"service": {"name": SERVICE, "namespace": NS,
                                             "path": "/mutate-v1-pod", "port": 443}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["pods"]}],
                "objectSelector": {"matchLabels": {"azure.workload.identity/use": "true"}},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team"}},
                "failurePolicy": "Fail", "sideEffects": "None",
                "admissionReviewVersions": ["v1"], "timeoutSeconds": 10
            }]
        }),
    )
    .await?;
    Ok(())
}

async fn secret_data(client: &Client) -> Result<BTreeMap<String, ByteString>> {
    Ok(Api::<Secret>::namespaced(client.clone(), NS)
        .get(SECRET)
        .await?
        .data
        .unwrap_or_default())
}

async fn ca_bundle(client: &Client) -> Result<Option<Vec<u8>>> {
    let mwc = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(MWC)
        .await?;
    Ok(mwc
        .webhooks
        .unwrap_or_default()
        .first()
        .and_then(|w| w.client_config.ca_bundle.clone())
        .map(|b| b.0))
}

/// Dry-run a labelled pod in `team` through the API server (and so through the webhook).
async fn admit(client: &Client) -> Result<Value> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"generateName": "p-", "labels": {"azure.workload.identity/use": "true"}},
        "spec": {"serviceAccountName": "app", "containers": [{"name": "app", "image": "x"}]}
    }))?;
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    Ok(serde_json::to_value(
        Api::<Pod>::namespaced(client.clone(), "team")
            .create(&dry, &pod)
            .await?,
    )?)
}

/// Wait until `check` holds (10 s).
async fn eventually<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let mut last = None;
    for _ in 0..100 {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} never happened (last error: {last:?})")
}

fn pem_str(data: &BTreeMap<String, ByteString>, key: &str) -> String {
    String::from_utf8_lossy(&data[key].0).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generates_rotates_and_injects_the_serving_certificate() -> Result<()> {
    let ip = host_ip()?;
    let kube = KubeEnv::start(KubeEnvOptions {
        extra_apiserver_args: vec!["--enable-aggregator-routing=true".into()],
        ..Default::default()
    })
    .await?;
    let client = kube.client().await?;
    for ns in [NS, "team"] {
        create_ns(&client, ns).await?;
    }
    create_sa(
        &client,
        "team",
        "app",
        json!({"azure.workload.identity/client-id": "client-1"}),
    )
    .await?;
    let (port, health, metrics) = (free_port(), free_port(), free_port());
    setup(&client, ip, port).await?;
    let command: Vec<String> = [
        "/usr/bin/azure-workload-identity-webhook".to_string(),
        "--log-level=info".into(),
        format!("--port={port}"),
        format!("--health-addr=127.0.0.1:{health}"),
        format!("--metrics-addr=127.0.0.1:{metrics}"),
    ]
    .into();
    let env = |extra: &[(&str, &str)]| {
        let mut v = vec![
            (
                "KUBECONFIG".to_string(),
                kube.kubeconfig_path().display().to_string(),
            ),
            ("AZURE_TENANT_ID".to_string(), "tenant-1".to_string()),
        ];
        v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        v
    };

    // Without the Secret the start fails, saying which Secret to create (as the reference).
    let work = tempfile::tempdir()?;
    let mut proc = spawn(&command, &env(&[("POD_NAMESPACE", NS)]), work.path())?;
    let mut exited = None;
    for _ in 0..300 {
        if let Some(status) = proc.0.try_wait()? {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(work.path().join("webhook.log"))?;
    assert!(matches!(exited, Some(s) if !s.success()), "{log}");
    assert!(
        log.contains(&format!("Secret {NS}/{SECRET} does not exist")),
        "{log}"
    );

    // An empty Secret, as the reference's chart creates it.
    create(
        &Api::<Secret>::namespaced(client.clone(), NS),
        json!({"metadata": {"name": SECRET}}),
    )
    .await?;
    let work = tempfile::tempdir()?;
    let _proc = spawn(&command, &env(&[("POD_NAMESPACE", NS)]), work.path())?;
    wait_ready(([127, 0, 0, 1], health).into())
        .await
        .with_context(|| {
            std::fs::read_to_string(work.path().join("webhook.log")).unwrap_or_default()
        })?;

    let data = secret_data(&client).await?;
    for key in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        assert!(
            data.contains_key(key),
            "Secret lacks {key}: {:?}",
            data.keys()
        );
    }
    for key in ["ca.key", "tls.key"] {
        assert!(pem_str(&data, key).starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    }
    assert_eq!(ca_bundle(&client).await?, Some(data["ca.crt"].0.clone()));
    let dns = format!("{SERVICE}.{NS}.svc");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let reply = https_request_as(
        addr,
        &dns,
        &pem_str(&data, "ca.crt"),
        "GET",
        "/healthz",
        vec![],
    )
    .await;
    assert_eq!(
        reply.status, 200,
        "serves a certificate for {dns} from the CA"
    );

    // Through the API server: service resolution, TLS against the injected bundle, mutation.
    let pod = admit(&client).await?;
    assert_eq!(
        env_value(&pod, "AZURE_CLIENT_ID").as_deref(),
        Some("client-1")
    );
    assert_eq!(
        env_value(&pod, "AZURE_TENANT_ID").as_deref(),
        Some("tenant-1")
    );

    // A stripped CA bundle is put back.
    let mwcs = Api::<MutatingWebhookConfiguration>::all(client.clone());
    let mut mwc = mwcs.get(MWC).await?;
    for hook in mwc.webhooks.iter_mut().flatten() {
        hook.client_config.ca_bundle = None;
    }
    mwcs.replace(MWC, &PostParams::default(), &mwc).await?;
    let ca = data["ca.crt"].0.clone();
    eventually("CA bundle re-injected", || {
        let (client, ca) = (client.clone(), ca.clone());
        async move { Ok(ca_bundle(&client).await? == Some(ca)) }
    })
    .await?;

    // A broken serving certificate is replaced from the same CA, and served.
    let secrets = Api::<Secret>::namespaced(client.clone(), NS);
    let mut secret = secrets.get(SECRET).await?;
    if let Some(d) = secret.data.as_mut() {
        d.insert("tls.crt".into(), ByteString(b"garbage".to_vec()));
    }
    secrets
        .replace(SECRET, &PostParams::default(), &secret)
        .await?;
    eventually("serving certificate replaced", || {
        let client = client.clone();
        async move {
            Ok(secret_data(&client).await?["tls.crt"]
                .0
                .starts_with(b"-----BEGIN"))
        }
    })
    .await?;
    let renewed = secret_data(&client).await?;
    assert_eq!(renewed["ca.crt"], data["ca.crt"], "same CA");
    assert_ne!(
        renewed["tls.crt"], data["tls.crt"],
        "new serving certificate"
    );
    let served = https_request_as(
        addr,
        &dns,
        &pem_str(&renewed, "ca.crt"),
        "GET",
        "/healthz",
        vec![],
    )
    .await
    .peer_cert;
    let renewed_der = rustls::pki_types::pem::PemObject::from_pem_slice(&renewed["tls.crt"].0)
        .map(|c: rustls::pki_types::CertificateDer<'static>| c.as_ref().to_vec())?;
    assert_eq!(served, renewed_der, "the new pair is served");

    // A CA without its key: new CA, new pair, new bundle; admission keeps working.
    let mut secret = secrets.get(SECRET).await?;
    if let Some(d) = secret.data.as_mut() {
        d.remove("ca.key");
    }
    secrets
        .replace(SECRET, &PostParams::default(), &secret)
        .await?;
    eventually("CA replaced and injected", || {
        let (client, old) = (client.clone(), data["ca.crt"].clone());
        async move {
            let d = secret_data(&client).await?;
            Ok(d.contains_key("ca.key")
                && d["ca.crt"] != old
                && ca_bundle(&client).await? == Some(d["ca.crt"].0.clone()))
        }
    })
    .await?;
    let mut admitted = None;
    for _ in 0..50 {
        if let Ok(pod) = admit(&client).await {
            admitted = Some(pod);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pod = admitted.context("pod not admitted after the CA rotation")?;
    assert_eq!(
        env_value(&pod, "AZURE_CLIENT_ID").as_deref(),
        Some("client-1")
    );
    Ok(())
}
