//! `deploy/webhook/`: the policies the issue requires, flags the binary accepts, and acceptance
//! by a real kube-apiserver.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use cco_testsupport::kube_env::{apply_objects, parse_manifests, KubeEnv, KubeEnvOptions};
use clap::Parser as _;
use kube::api::DynamicObject;
use serde_json::{json, Value};

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/webhook")
}

/// Objects of every file listed in kustomization.yaml, in its order.
fn objects() -> Result<Vec<DynamicObject>> {
    let dir = deploy_dir();
    let kustomization: Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml"))?)?;
    let mut out = Vec::new();
    for file in kustomization["resources"].as_array().context("resources")? {
        let file = file.as_str().context("resource name")?;
        let text = std::fs::read_to_string(dir.join(file))?;
        out.extend(parse_manifests(&text).with_context(|| file.to_string())?);
    }
    Ok(out)
}

fn find(objs: &[DynamicObject], kind: &str) -> Value {
    let o = objs
        .iter()
        .find(|o| o.types.as_ref().is_some_and(|t| t.kind == kind))
        .unwrap_or_else(|| panic!("no {kind}"));
    serde_json::to_value(o).unwrap()
}

#[test]
fn kustomization_lists_every_manifest() {
    let kustomization: Value = serde_yaml::from_str(
        &std::fs::read_to_string(deploy_dir().join("kustomization.yaml")).unwrap(),
    )
    .unwrap();
    let mut listed: Vec<String> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut files: Vec<String> = std::fs::read_dir(deploy_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    files.sort();
    assert_eq!(listed, files);
}

#[test]
fn webhook_configuration_reinvokes_and_ignores_failures() {
    let objs = objects().unwrap();
    let mwc = find(&objs, "MutatingWebhookConfiguration");
    let hook = &mwc["webhooks"][0];
    assert_eq!(hook["reinvocationPolicy"], "IfNeeded");
    assert_eq!(hook["failurePolicy"], "Ignore");
    assert_eq!(hook["sideEffects"], "None");
    assert_eq!(hook["clientConfig"]["service"]["path"], "/mutate");
    assert_eq!(hook["rules"][0]["resources"], json!(["pods"]));
    assert_eq!(hook["rules"][0]["operations"], json!(["CREATE"]));
}

#[test]
fn rbac_only_reads_service_accounts() {
    let objs = objects().unwrap();
    let role = find(&objs, "ClusterRole");
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "list", "watch"]}])
    );
    let binding = find(&objs, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
}

#[test]
fn deployment_arguments_are_accepted_by_the_binary() {
    let objs = objects().unwrap();
    let deployment = find(&objs, "Deployment");
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let parsed = cco_webhook::Args::try_parse_from(
        std::iter::once("cco-pod-identity-webhook".to_string()).chain(args),
    )
    .expect("arguments parse");
    assert_eq!(parsed.port, Some(9443));
    assert!(parsed.sts_regional_endpoint);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_are_accepted_by_the_api_server() -> Result<()> {
    let env = KubeEnv::start(KubeEnvOptions::default()).await?;
    let client = env.client().await?;
    apply_objects(&client, objects()?).await?;
    let api: kube::Api<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration> =
        kube::Api::all(client);
    let stored = api.get("cco-pod-identity-webhook").await?;
    assert_eq!(
        stored.webhooks.unwrap()[0].reinvocation_policy.as_deref(),
        Some("IfNeeded")
    );
    Ok(())
}
