//! The operator deploys and keeps the pod identity webhook (seeds/001 option 2), on a real API
//! server, running as its own ServiceAccount under deploy/operator's RBAC: the nine objects with the
//! reference's shapes, the region and the APIServer TLS profile in the arguments, drift repaired
//! (an edited Deployment, a deleted Service, edited RBAC) without fighting the service CA's
//! `caBundle`, single-replica topology, removal when the platform no longer wants it, Azure only
//! with `azure_tenant_id`, and the health on the ClusterOperator (Available at once, Degraded after
//! the grace period, `relatedObjects`).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

const NAME: &str = "pod-identity-webhook";

fn settings() -> cco_operator::Settings {
    let mut s = test_settings();
    s.webhook_images = cco_operator::podidentity::WebhookImages {
        aws: Some("registry.example/cco-webhook:aws".into()),
        azure: Some("registry.example/cco-webhook:azure".into()),
        gcp: Some("registry.example/cco-webhook:gcp".into()),
    };
    s.webhook_degraded_grace = Duration::from_secs(3);
    s
}

async fn deployment(c: &Client) -> anyhow::Result<Option<Deployment>> {
    Ok(Api::<Deployment>::namespaced(c.clone(), OPERATOR_NS)
        .get_opt(NAME)
        .await?)
}

fn args(d: &Deployment) -> Vec<String> {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .args
        .clone()
        .unwrap_or_default()
}

async fn wait_deployment(
    c: &Client,
    what: &str,
    f: impl Fn(&Deployment) -> bool,
) -> anyhow::Result<Deployment> {
    let mut last = None;
    for _ in 0..150 {
        if let Some(d) = deployment(c).await? {
            if f(&d) {
                return Ok(d);
            }
            last = Some(args(&d));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("{what}: timed out; last args {last:?}")
}

/// Whether each of the nine objects exists.
async fn present(c: &Client) -> anyhow::Result<Vec<bool>> {
    let ns = OPERATOR_NS;
    Ok(vec![
        Api::<ServiceAccount>::namespaced(c.clone(), ns)
            .get_opt(NAME)
            .await?
            .is_some(),
        Api::<ClusterRole>::all(c.clone())
            .get_opt(NAME)
            .await?
            .is_some(),
        Api::<ClusterRoleBinding>::all(c.clone())
            .get_opt(NAME)
            .await?
            .is_some(),
        Api::<Role>::namespaced(c.clone(), ns)
            .get_opt(NAME)
            .await?
            .is_some(),
        Api::<RoleBinding>::namespaced(c.clone(), ns)
            .get_opt(NAME)
            .await?
            .is_some(),
        Api::<Service>::namespaced(c.clone(), ns)
            .get_opt(NAME)
            .await?
            .is_some(),
        deployment(c).await?.is_some(),
        Api::<MutatingWebhookConfiguration>::all(c.clone())
            .get_opt(NAME)
            .await?
            .is_some(),
        Api::<PodDisruptionBudget>::namespaced(c.clone(), ns)
            .get_opt(NAME)
            .await?
            .is_some(),
    ])
}

async fn wait_present(c: &Client, want: [bool; 9]) -> anyhow::Result<()> {
    let mut last = vec![];
    for _ in 0..150 {
        last = present(c).await?;
        if last == want {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("objects present {last:?}, wanted {want:?}")
}

async fn related(c: &Client) -> anyhow::Result<Vec<(String, String)>> {
    let api: Api<cco_operator::openshift::ClusterOperator> = Api::all(c.clone());
    Ok(api
        .get_opt("cloud-credential")
        .await?
        .and_then(|c| c.status)
        .map(|s| {
            s.related_objects
                .into_iter()
                .map(|r| (r.resource, r.name))
                .collect()
        })
        .unwrap_or_default())
}

async fn patch_infra_status(c: &Client, status: serde_json::Value) -> anyhow::Result<()> {
    let gvk = kube::core::GroupVersionKind::gvk("config.openshift.io", "v1", "Infrastructure");
    let (ar, _) = kube::discovery::pinned_kind(c, &gvk).await?;
    Api::<DynamicObject>::all_with(c.clone(), &ar)
        .patch_status(
            "cluster",
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await?;
    Ok(())
}

async fn set_available(c: &Client, available: i32) -> anyhow::Result<()> {
    let d = deployment(c).await?.unwrap();
    let status = json!({"status": {
        "observedGeneration": d.metadata.generation, "replicas": 2, "updatedReplicas": 2,
        "readyReplicas": available, "availableReplicas": available,
        "unavailableReplicas": 2 - available,
        "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
            "message": "done", "lastUpdateTime": "2024-01-01T00:00:00Z", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
    Api::<Deployment>::namespaced(c.clone(), OPERATOR_NS)
        .patch_status(NAME, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_deploys_repairs_reports_and_removes_the_webhook() -> anyhow::Result<()> {
    let env = start().await?;
    set_cluster(
        &env.admin,
        "Manual",
        "AWS",
        "https://oidc.example.com/cluster",
    )
    .await?;
    let op = spawn_operator(operator_client(&env).await?, settings());
    let a = &env.admin;

    // Everything is there, shaped like the reference's, with the region and the default profile.
    wait_present(a, [true; 9]).await?;
    let d = wait_deployment(a, "aws deployment", |d| {
        args(d).contains(&"--aws-default-region=us-east-1".to_string())
    })
    .await?;
    let c = &d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert_eq!(c.image.as_deref(), Some("registry.example/cco-webhook:aws"));
    assert_eq!(
        c.command.clone().unwrap(),
        vec!["/usr/bin/aws-pod-identity-webhook".to_string()]
    );
    assert!(args(&d).contains(&"--tls-min-version=VersionTLS12".to_string()));
    let svc = Api::<Service>::namespaced(a.clone(), OPERATOR_NS)
        .get(NAME)
        .await?;
    assert_eq!(
        svc.metadata.annotations.unwrap()["service.beta.openshift.io/serving-cert-secret-name"],
        NAME
    );

    // Region from Infrastructure, TLS from the APIServer profile.
    patch_infra_status(
        a,
        json!({"platformStatus": {"aws": {"region": "eu-west-2"}}}),
    )
    .await?;
    wait_deployment(a, "region", |d| {
        args(d).contains(&"--aws-default-region=eu-west-2".to_string())
    })
    .await?;
    let apiserver: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "config.openshift.io/v1", "kind": "APIServer", "metadata": {"name": "cluster"},
        "spec": {"tlsSecurityProfile": {"type": "Modern", "modern": {}}}}))?;
    cco_testsupport::kube_env::apply_objects(a, vec![apiserver]).await?;
    wait_deployment(a, "modern TLS profile", |d| {
        args(d).contains(&"--tls-min-version=VersionTLS13".to_string())
            && args(d).contains(
                &"--tls-cipher-suites=TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256"
                    .to_string(),
            )
    })
    .await?;

    // Health: unavailable at once, Degraded only after the grace period; relatedObjects listed.
    wait_co_condition(a, "Available", |s, r, _| {
        s == "False" && r == Some("DeploymentUnavailable")
    })
    .await?;
    let (_, _, msg) = wait_co_condition(a, "Degraded", |s, r, _| {
        s == "True" && r == Some("PodIdentityWebhookUnavailable")
    })
    .await?;
    assert!(msg
        .unwrap()
        .contains("pod-identity-webhook deployment has had no available pods"));
    let rel = related(a).await?;
    for resource in [
        "serviceaccounts",
        "clusterroles",
        "clusterrolebindings",
        "roles",
        "rolebindings",
        "services",
        "deployments",
        "mutatingwebhookconfigurations",
    ] {
        assert!(
            rel.contains(&(resource.to_string(), NAME.to_string())),
            "{resource} in {rel:?}"
        );
    }
    set_available(a, 2).await?;
    wait_co_condition(a, "Degraded", |s, _, _| s == "False").await?;
    wait_co_condition(a, "Available", |s, _, _| s == "True").await?;
    // Down again: Available drops at once, Degraded waits for the grace period.
    set_available(a, 0).await?;
    wait_co_condition(a, "Available", |s, r, _| {
        s == "False" && r == Some("DeploymentUnavailable")
    })
    .await?;
    let co: cco_operator::openshift::ClusterOperator =
        Api::all(a.clone()).get("cloud-credential").await?;
    let degraded = co
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(degraded.status, "False", "Degraded before the grace period");
    wait_co_condition(a, "Degraded", |s, r, _| {
        s == "True" && r == Some("PodIdentityWebhookUnavailable")
    })
    .await?;
    set_available(a, 2).await?;

    // Drift is repaired; the service CA's caBundle is not fought.
    let deployments = Api::<Deployment>::namespaced(a.clone(), OPERATOR_NS);
    deployments
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "pod-identity-webhook", "image": "evil:1", "args": ["--port=1"]}]}}}})),
        )
        .await?;
    wait_deployment(a, "repaired deployment", |d| {
        let c = &d
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0];
        c.image.as_deref() == Some("registry.example/cco-webhook:aws")
            && args(d).contains(&"--port=9443".to_string())
    })
    .await?;
    Api::<Service>::namespaced(a.clone(), OPERATOR_NS)
        .delete(NAME, &DeleteParams::default())
        .await?;
    wait_present(a, [true; 9]).await?;
    Api::<ClusterRole>::all(a.clone())
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]}),
            ),
        )
        .await?;
    let mut repaired = false;
    for _ in 0..100 {
        let r = Api::<ClusterRole>::all(a.clone()).get(NAME).await?;
        if r.rules.unwrap_or_default()[0].resources == Some(vec!["serviceaccounts".into()]) {
            repaired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(repaired, "ClusterRole rules repaired");
    let mwc = Api::<MutatingWebhookConfiguration>::all(a.clone());
    let injected = json!({"webhooks": [{"name": "pod-identity-webhook.aws.mutate.io",
        "clientConfig": {"caBundle": "Y2EK"}}]});
    mwc.patch(
        NAME,
        &PatchParams::apply("service-ca").force(),
        &Patch::Apply(json!({"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration", "metadata": {"name": NAME},
            "webhooks": injected["webhooks"]})),
    )
    .await?;
    // Force a reconcile (a region change), then the caBundle must still be there.
    patch_infra_status(
        a,
        json!({"platformStatus": {"aws": {"region": "eu-west-1"}}}),
    )
    .await?;
    wait_deployment(a, "region again", |d| {
        args(d).contains(&"--aws-default-region=eu-west-1".to_string())
    })
    .await?;
    let hook = mwc.get(NAME).await?.webhooks.unwrap().remove(0);
    assert_eq!(
        hook.client_config.ca_bundle.map(|b| b.0),
        Some(b"ca\n".to_vec())
    );
    assert_eq!(
        hook.client_config.service.unwrap().path.as_deref(),
        Some("/mutate")
    );

    // Single-replica topology: one replica, no PodDisruptionBudget.
    patch_infra_status(a, json!({"infrastructureTopology": "SingleReplica"})).await?;
    wait_deployment(a, "single replica", |d| {
        d.spec.as_ref().unwrap().replicas == Some(1)
    })
    .await?;
    let mut want = [true; 9];
    want[8] = false;
    wait_present(a, want).await?;

    // Another platform: everything removed, and no longer reported.
    set_platform(a, "VSphere").await?;
    wait_present(a, [false; 9]).await?;
    wait_until(Duration::from_secs(20), || async {
        Ok(!related(a).await?.iter().any(|(_, n)| n == NAME))
    })
    .await?;
    wait_co_condition(a, "Available", |s, _, _| s == "True").await?;

    // Azure: only with azure_tenant_id in the operator's azure-credentials Secret.
    set_platform(a, "Azure").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(present(a).await?, vec![false; 9]);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "azure-credentials", "namespace": OPERATOR_NS},
        "stringData": {"azure_tenant_id": "tenant-1", "azure_client_id": "c"}}))?;
    Api::<Secret>::namespaced(a.clone(), OPERATOR_NS)
        .create(&PostParams::default(), &secret)
        .await?;
    wait_present(a, [true; 9]).await?;
    let d = wait_deployment(a, "azure deployment", |d| {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .command
            .clone()
            == Some(vec!["/usr/bin/azure-workload-identity-webhook".to_string()])
    })
    .await?;
    let c = &d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert_eq!(
        c.image.as_deref(),
        Some("registry.example/cco-webhook:azure")
    );
    Api::<Secret>::namespaced(a.clone(), OPERATOR_NS)
        .patch(
            "azure-credentials",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(
                json!([{"op": "remove", "path": "/data/azure_tenant_id"}]),
            )?),
        )
        .await?;
    wait_present(a, [false; 9]).await?;

    op.stop().await?;
    Ok(())
}
