//! End to end against a real kube-apiserver (cco-testsupport's `KubeEnv`): the webhook runs on
//! loopback TLS with a generated CA, is registered through a MutatingWebhookConfiguration, and
//! the assertions are on the pods the API server stores.
//!
//! Two webhook instances share the server:
//! - `team` namespace → instance A with a running ServiceAccount watch, registered twice
//!   (`a1`, `a2`) so every pod passes through the webhook a second time after being mutated;
//! - `fresh` namespace → instance B whose watch is never started, so every ServiceAccount is a
//!   cache miss: pods are mutated only thanks to the direct lookup (the "pod created together
//!   with its ServiceAccount" case, made deterministic).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use cco_testsupport::kube_env::{KubeEnv, KubeEnvOptions};
use cco_webhook::sa_cache::KubeServiceAccounts;
use cco_webhook::{gcp, WebhookConfig};
use common::{http_get, start_webhook, Pki, RunningWebhook};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Container, Namespace, Pod, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::Client;
use serde_json::{json, Value};

const ROLE_ARN: &str = "arn:aws:iam::111122223333:role/app";
const PROVIDER: &str = "projects/42/locations/global/workloadIdentityPools/pool/providers/prov";

fn webhook_entry(name: &str, hook: &RunningWebhook, ca_pem: &str, namespace: &str) -> Value {
    json!({
        "name": name,
        "clientConfig": {
            "url": format!("https://{}/mutate", hook.addr),
            "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem),
        },
        "rules": [{
            "operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
            "resources": ["pods"], "scope": "Namespaced"
        }],
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "objectSelector": {"matchExpressions": [{
            "key": "eks.amazonaws.com/skip-pod-identity-webhook", "operator": "NotIn", "values": ["true"]
        }]},
        // Fail in tests so a broken webhook is visible; the shipped manifest uses Ignore.
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "reinvocationPolicy": "IfNeeded",
        "timeoutSeconds": 10
    })
}

async fn create_sa(client: &Client, ns: &str, name: &str, annotations: Value) -> Result<()> {
    let sa: ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations}
    }))?;
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await
        .with_context(|| format!("creating ServiceAccount {ns}/{name}"))?;
    Ok(())
}

fn pod(name: &str, sa: &str, labels: Value, spec_extra: Value) -> Pod {
    let mut spec = json!({
        "serviceAccountName": sa,
        "containers": [{"name": "app", "image": "registry.example/app:1"}]
    });
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
        s.extend(extra.clone());
    }
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "spec": spec}))
        .expect("pod")
}

async fn create_pod(client: &Client, ns: &str, pod: &Pod, dry_run: bool) -> kube::Result<Pod> {
    let pp = PostParams {
        dry_run,
        ..Default::default()
    };
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&pp, pod)
        .await
}

fn env(c: &Container, name: &str) -> Vec<String> {
    c.env
        .iter()
        .flatten()
        .filter(|e| e.name == name)
        .map(|e| e.value.clone().unwrap_or_default())
        .collect()
}

fn volume<'a>(p: &'a Pod, name: &str) -> Vec<&'a k8s_openapi::api::core::v1::Volume> {
    p.spec
        .as_ref()
        .map(|s| {
            s.volumes
                .iter()
                .flatten()
                .filter(|v| v.name == name)
                .collect()
        })
        .unwrap_or_default()
}

fn containers(p: &Pod) -> Vec<&Container> {
    let s = p.spec.as_ref().expect("spec");
    s.init_containers
        .iter()
        .flatten()
        .chain(s.containers.iter())
        .collect()
}

/// Wait until the API server calls the webhook for `ns` (its configuration informer lags).
async fn wait_registered(client: &Client, ns: &str) -> Result<()> {
    create_sa(
        client,
        ns,
        "probe",
        json!({"eks.amazonaws.com/role-arn": ROLE_ARN}),
    )
    .await?;
    let probe = pod("probe", "probe", json!({}), json!({}));
    for _ in 0..150 {
        if let Ok(p) = create_pod(client, ns, &probe, true).await {
            if !env(
                &p.spec.as_ref().expect("spec").containers[0],
                "AWS_ROLE_ARN",
            )
            .is_empty()
            {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("webhook for namespace {ns} never became effective")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_mutates_pods_through_the_real_api_server() -> Result<()> {
    let env_ = KubeEnv::start(KubeEnvOptions::default()).await?;
    let client = env_.client().await?;

    let mut config = WebhookConfig::default();
    config.aws.region = Some("us-east-1".into());
    config.azure.tenant_id = Some("tenant-from-flag".into());

    let pki = Pki::new();
    let (watched, watch) = KubeServiceAccounts::new(client.clone(), Duration::from_secs(2));
    tokio::spawn(watch);
    let hook_a = start_webhook(&pki, config.clone(), watched).await;
    let (unwatched, _never_started) = KubeServiceAccounts::new(client.clone(), Duration::ZERO);
    let hook_b = start_webhook(&pki, config, unwatched).await;

    for ns in ["team", "fresh"] {
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &n)
            .await?;
    }
    let mwc: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": "pod-identity-webhook"},
        "webhooks": [
            webhook_entry("a1.pod-identity.test", &hook_a, &pki.ca_pem, "team"),
            webhook_entry("a2.pod-identity.test", &hook_a, &pki.ca_pem, "team"),
            webhook_entry("b.pod-identity.test", &hook_b, &pki.ca_pem, "fresh"),
        ]
    }))?;
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &mwc)
        .await?;
    wait_registered(&client, "team").await?;
    wait_registered(&client, "fresh").await?;

    // --- AWS, init + regular containers, region preset in one container, passed twice.
    create_sa(
        &client,
        "team",
        "aws-app",
        json!({"eks.amazonaws.com/role-arn": ROLE_ARN, "eks.amazonaws.com/token-expiration": "3600"}),
    )
    .await?;
    let p = pod(
        "aws",
        "aws-app",
        json!({}),
        json!({
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [
                {"name": "app", "image": "x", "env": [{"name": "AWS_REGION", "value": "eu-west-3"}]},
                {"name": "side", "image": "y"}
            ]
        }),
    );
    let stored = create_pod(&client, "team", &p, false).await?;
    for c in containers(&stored) {
        assert_eq!(env(c, "AWS_ROLE_ARN"), [ROLE_ARN], "container {}", c.name);
        assert_eq!(
            env(c, "AWS_WEB_IDENTITY_TOKEN_FILE"),
            ["/var/run/secrets/eks.amazonaws.com/serviceaccount/token"]
        );
        let mounts: Vec<_> = c
            .volume_mounts
            .iter()
            .flatten()
            .filter(|m| m.name == "aws-iam-token")
            .collect();
        assert_eq!(mounts.len(), 1, "one mount in {}", c.name);
        assert_eq!(mounts[0].read_only, Some(true));
    }
    let spec = stored.spec.as_ref().expect("spec");
    assert_eq!(env(&spec.containers[0], "AWS_REGION"), ["eu-west-3"]);
    assert!(env(&spec.containers[0], "AWS_DEFAULT_REGION").is_empty());
    assert_eq!(env(&spec.containers[1], "AWS_REGION"), ["us-east-1"]);
    let vols = volume(&stored, "aws-iam-token");
    assert_eq!(vols.len(), 1, "second webhook pass added nothing");
    let tok = vols[0]
        .projected
        .as_ref()
        .expect("projected")
        .sources
        .as_ref()
        .expect("sources")[0]
        .service_account_token
        .clone()
        .expect("token source");
    assert_eq!(tok.audience.as_deref(), Some("sts.amazonaws.com"));
    assert_eq!(tok.expiration_seconds, Some(3600));

    // --- Azure.
    create_sa(
        &client,
        "team",
        "azure-app",
        json!({"azure.workload.identity/client-id": "cid"}),
    )
    .await?;
    let p = pod(
        "azure",
        "azure-app",
        json!({"azure.workload.identity/use": "true"}),
        json!({}),
    );
    let stored = create_pod(&client, "team", &p, false).await?;
    let c = &stored.spec.as_ref().expect("spec").containers[0];
    assert_eq!(env(c, "AZURE_CLIENT_ID"), ["cid"]);
    assert_eq!(env(c, "AZURE_TENANT_ID"), ["tenant-from-flag"]);
    assert_eq!(
        env(c, "AZURE_FEDERATED_TOKEN_FILE"),
        ["/var/run/secrets/azure/wi/token/azure-identity-token"]
    );
    assert_eq!(
        env(c, "AZURE_AUTHORITY_HOST"),
        ["https://login.microsoftonline.com/"]
    );
    let vols = volume(&stored, &cco_webhook::azure::volume_name("azure"));
    assert_eq!(vols.len(), 1);
    let src = &vols[0]
        .projected
        .as_ref()
        .expect("projected")
        .sources
        .as_ref()
        .expect("s")[0];
    assert_eq!(
        src.service_account_token
            .as_ref()
            .expect("token")
            .audience
            .as_deref(),
        Some("api://AzureADTokenExchange")
    );

    // --- Azure with an out-of-range lifetime is refused.
    create_sa(
        &client,
        "team",
        "azure-bad",
        json!({"azure.workload.identity/service-account-token-expiration": "100"}),
    )
    .await?;
    let p = pod(
        "azure-bad",
        "azure-bad",
        json!({"azure.workload.identity/use": "true"}),
        json!({}),
    );
    let err = create_pod(&client, "team", &p, false)
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains("between 3600 and 86400"),
        "unexpected error: {err}"
    );

    // --- Azure pod whose ServiceAccount does not exist: denied, nothing half-injected.
    let err = create_pod(
        &client,
        "team",
        &pod(
            "azure-no-sa",
            "missing-sa",
            json!({"azure.workload.identity/use": "true"}),
            json!({}),
        ),
        false,
    )
    .await
    .expect_err("denied");
    assert!(err.to_string().contains("not found"), "{err}");

    // --- GCP, direct mode.
    create_sa(
        &client,
        "team",
        "gcp-app",
        json!({
            "cloud.google.com/workload-identity-provider": PROVIDER,
            "cloud.google.com/service-account-email": "app@proj.iam.gserviceaccount.com",
            "cloud.google.com/injection-mode": "direct",
            "cloud.google.com/audience": "openshift"
        }),
    )
    .await?;
    let stored = create_pod(
        &client,
        "team",
        &pod("gcp", "gcp-app", json!({}), json!({})),
        false,
    )
    .await?;
    let spec = stored.spec.as_ref().expect("spec");
    assert!(spec.init_containers.is_none(), "no init container");
    assert_eq!(
        env(&spec.containers[0], "GOOGLE_APPLICATION_CREDENTIALS"),
        ["/var/run/secrets/workload-identity/federation.json"]
    );
    let annotations = stored.metadata.annotations.clone().unwrap_or_default();
    let cfg: Value =
        serde_json::from_str(&annotations["cloud.google.com/external-credentials-json"])?;
    assert_eq!(cfg["type"], "external_account");
    assert_eq!(cfg["audience"], format!("//iam.googleapis.com/{PROVIDER}"));
    assert_eq!(
        cfg["service_account_impersonation_url"],
        "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/app@proj.iam.gserviceaccount.com:generateAccessToken"
    );
    let vols = volume(&stored, gcp::TOKEN_VOLUME);
    let token = vols[0]
        .projected
        .as_ref()
        .expect("projected")
        .sources
        .clone()
        .expect("s")[0]
        .service_account_token
        .clone()
        .expect("token");
    assert_eq!(token.audience.as_deref(), Some("openshift"));
    let vols = volume(&stored, gcp::DIRECT_VOLUME);
    let item = &vols[0]
        .downward_api
        .as_ref()
        .expect("downward")
        .items
        .as_ref()
        .expect("i")[0];
    assert_eq!(item.path, gcp::CONFIG_FILE);

    // --- GCP, gcloud mode (the default): the setup init container passes validation.
    create_sa(
        &client,
        "team",
        "gcp-gcloud",
        json!({
            "cloud.google.com/workload-identity-provider": PROVIDER,
            "cloud.google.com/service-account-email": "app@proj.iam.gserviceaccount.com",
            "cloud.google.com/gcloud-run-as-user": "1000"
        }),
    )
    .await?;
    let stored = create_pod(
        &client,
        "team",
        &pod("gcp-gcloud", "gcp-gcloud", json!({}), json!({})),
        false,
    )
    .await?;
    let spec = stored.spec.as_ref().expect("spec");
    let inits = spec.init_containers.as_ref().expect("init containers");
    assert_eq!(inits[0].name, gcp::GCLOUD_SETUP);
    assert_eq!(
        env(&spec.containers[0], "CLOUDSDK_CONFIG"),
        ["/var/run/secrets/gcloud/config"]
    );

    // --- GCP with a malformed provider is refused.
    create_sa(
        &client,
        "team",
        "gcp-bad",
        json!({
            "cloud.google.com/workload-identity-provider": "my-pool/my-provider",
            "cloud.google.com/service-account-email": "app@proj.iam.gserviceaccount.com"
        }),
    )
    .await?;
    let err = create_pod(
        &client,
        "team",
        &pod("gcp-bad", "gcp-bad", json!({}), json!({})),
        false,
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("workloadIdentityPools"), "{err}");

    // --- Unannotated ServiceAccount: unchanged.
    create_sa(&client, "team", "plain", json!({})).await?;
    let stored = create_pod(
        &client,
        "team",
        &pod("plain", "plain", json!({}), json!({})),
        false,
    )
    .await?;
    assert!(env(
        &stored.spec.as_ref().expect("spec").containers[0],
        "AWS_ROLE_ARN"
    )
    .is_empty());

    // --- Pod created right after its ServiceAccount, in both namespaces.
    for (ns, hook) in [("team", &hook_a), ("fresh", &hook_b)] {
        create_sa(
            &client,
            ns,
            "together",
            json!({"eks.amazonaws.com/role-arn": ROLE_ARN}),
        )
        .await?;
        let stored = create_pod(
            &client,
            ns,
            &pod("together", "together", json!({}), json!({})),
            false,
        )
        .await?;
        assert_eq!(
            env(
                &stored.spec.as_ref().expect("spec").containers[0],
                "AWS_ROLE_ARN"
            ),
            [ROLE_ARN],
            "pod created with its ServiceAccount in {ns} was mutated"
        );
        let (_, text) = http_get(hook.metrics_addr, "/metrics").await;
        assert!(text.contains("pod_identity_webhook_mutations_total{cloud=\"aws\"}"));
    }
    // Instance B never had a cache: all its answers came from direct lookups.
    let (_, text) = http_get(hook_b.metrics_addr, "/metrics").await;
    assert!(
        text.contains("pod_identity_webhook_service_account_lookups_total{source=\"api\"}"),
        "{text}"
    );
    assert!(!text.contains("source=\"cache\""), "{text}");
    Ok(())
}
