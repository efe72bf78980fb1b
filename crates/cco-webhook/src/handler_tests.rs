//! Tests of the pure handler on raw AdmissionReview JSON, patches applied with `json-patch`.

use super::*;
use crate::config::WebhookConfig;
use json_patch::PatchOperation;
use kube::core::admission::AdmissionReview;
use serde_json::{json, Value};

const ROLE_ARN: &str = "arn:aws:iam::111122223333:role/app";
const PROVIDER: &str = "projects/42/locations/global/workloadIdentityPools/pool/providers/prov";

fn review_json(pod: &Value, operation: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team",
            "operation": operation,
            "userInfo": {"username": "alice"},
            "object": pod,
            "oldObject": null,
            "dryRun": false
        }
    })
}

fn request(pod: &Value) -> AdmissionRequest<DynamicObject> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_value(review_json(pod, "CREATE")).expect("review parses");
    review.try_into().expect("has request")
}

fn sa(pairs: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some("app".into()),
        namespace: Some("team".into()),
        annotations: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn cfg() -> WebhookConfig {
    let mut c = WebhookConfig::default();
    c.aws.region = Some("eu-west-1".into());
    c.aws.sts_regional_endpoints = true;
    c.azure.tenant_id = Some("tenant-from-flag".into());
    c
}

fn ops(resp: &AdmissionResponse) -> Vec<PatchOperation> {
    resp.patch
        .as_ref()
        .map(|p| {
            serde_json::from_slice::<json_patch::Patch>(p)
                .expect("patch parses")
                .0
        })
        .unwrap_or_default()
}

fn apply(pod: &Value, resp: &AdmissionResponse) -> Value {
    let mut doc = pod.clone();
    json_patch::patch(&mut doc, &ops(resp)).expect("patch applies to the raw pod");
    doc
}

fn env_of(container: &Value) -> BTreeMap<String, String> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or("").to_string(),
                e["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// A pod carrying fields that k8s-openapi's `Pod` does not know.
fn pod_with_unknown_fields() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "team", "labels": {"app": "web"}},
        "spec": {
            "serviceAccountName": "app",
            "futureSpecField": {"enabled": true},
            "initContainers": [{"name": "init", "image": "busybox", "futureInitField": [1, 2]}],
            "containers": [{
                "name": "main",
                "image": "nginx",
                "futureField": {"nested": "kept"},
                "env": [{"name": "EXISTING", "value": "1", "futureEnvField": "x"}],
                "volumeMounts": [{"name": "data", "mountPath": "/data", "futureMountField": 7}]
            }],
            "volumes": [{"name": "data", "emptyDir": {}, "futureVolumeField": "y"}]
        }
    })
}

#[test]
fn patch_only_adds_and_keeps_fields_unknown_to_the_typed_model() {
    let pod = pod_with_unknown_fields();
    let out = admit(
        &request(&pod),
        &cfg(),
        Some(&sa(&[("eks.amazonaws.com/role-arn", ROLE_ARN)])),
    );
    assert_eq!(out.verdict, Verdict::Patched);
    let ops = ops(&out.response);
    for op in &ops {
        assert!(matches!(op, PatchOperation::Add(_)), "only adds: {op:?}");
        let path = op.path().to_string();
        assert!(
            !matches!(
                path.as_str(),
                "/spec/containers" | "/spec/initContainers" | "/spec"
            ) && !path.ends_with("/containers/0"),
            "never replaces whole containers: {path}"
        );
    }
    let patched = apply(&pod, &out.response);
    let main = &patched["spec"]["containers"][0];
    assert_eq!(main["futureField"], json!({"nested": "kept"}));
    assert_eq!(main["env"][0]["futureEnvField"], "x");
    assert_eq!(main["volumeMounts"][0]["futureMountField"], 7);
    assert_eq!(patched["spec"]["futureSpecField"], json!({"enabled": true}));
    assert_eq!(
        patched["spec"]["initContainers"][0]["futureInitField"],
        json!([1, 2])
    );
    assert_eq!(patched["spec"]["volumes"][0]["futureVolumeField"], "y");
    // And it did inject.
    assert_eq!(env_of(main)["AWS_ROLE_ARN"], ROLE_ARN);
}

#[test]
fn aws_injects_env_volume_and_mounts_in_init_and_regular_containers() {
    let pod = pod_with_unknown_fields();
    let out = admit(
        &request(&pod),
        &cfg(),
        Some(&sa(&[("eks.amazonaws.com/role-arn", ROLE_ARN)])),
    );
    let patched = apply(&pod, &out.response);
    for c in [
        &patched["spec"]["initContainers"][0],
        &patched["spec"]["containers"][0],
    ] {
        let env = env_of(c);
        assert_eq!(env["AWS_ROLE_ARN"], ROLE_ARN);
        assert_eq!(
            env["AWS_WEB_IDENTITY_TOKEN_FILE"],
            "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
        );
        assert_eq!(env["AWS_STS_REGIONAL_ENDPOINTS"], "regional");
        assert_eq!(env["AWS_REGION"], "eu-west-1");
        assert_eq!(env["AWS_DEFAULT_REGION"], "eu-west-1");
        let mounts = c["volumeMounts"].as_array().expect("mounts");
        assert!(mounts.contains(&json!({
            "name": "aws-iam-token",
            "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount",
            "readOnly": true
        })));
    }
    let vol = &patched["spec"]["volumes"][1];
    assert_eq!(vol["name"], "aws-iam-token");
    assert_eq!(
        vol["projected"]["sources"][0]["serviceAccountToken"],
        json!({"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"})
    );
    assert_eq!(out.mutated, BTreeSet::from([Cloud::Aws]));
}

#[test]
fn region_is_only_injected_where_the_container_sets_none() {
    let pod = json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": "app", "containers": [
        {"name": "a", "env": [{"name": "AWS_REGION", "value": "us-east-2"}]},
        {"name": "b"}
    ]}});
    let out = admit(
        &request(&pod),
        &cfg(),
        Some(&sa(&[("eks.amazonaws.com/role-arn", ROLE_ARN)])),
    );
    let patched = apply(&pod, &out.response);
    let a = env_of(&patched["spec"]["containers"][0]);
    assert_eq!(a["AWS_REGION"], "us-east-2");
    assert!(!a.contains_key("AWS_DEFAULT_REGION"));
    let b = env_of(&patched["spec"]["containers"][1]);
    assert_eq!(b["AWS_REGION"], "eu-west-1");
}

#[test]
fn skip_containers_annotation_leaves_those_containers_alone() {
    let pod = json!({
        "metadata": {"annotations": {"eks.amazonaws.com/skip-containers": "sidecar,init"}},
        "spec": {"serviceAccountName": "app",
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "main"}, {"name": "sidecar"}]}
    });
    let out = admit(
        &request(&pod),
        &cfg(),
        Some(&sa(&[("eks.amazonaws.com/role-arn", ROLE_ARN)])),
    );
    let patched = apply(&pod, &out.response);
    assert_eq!(
        patched["spec"]["initContainers"][0],
        json!({"name": "init"})
    );
    assert_eq!(patched["spec"]["containers"][1], json!({"name": "sidecar"}));
    assert!(env_of(&patched["spec"]["containers"][0]).contains_key("AWS_ROLE_ARN"));
}

fn all_clouds_sa() -> ObjectMeta {
    sa(&[
        ("eks.amazonaws.com/role-arn", ROLE_ARN),
        ("azure.workload.identity/client-id", "cid"),
        ("cloud.google.com/workload-identity-provider", PROVIDER),
        (
            "cloud.google.com/service-account-email",
            "app@p.iam.gserviceaccount.com",
        ),
    ])
}

fn azure_pod() -> Value {
    let mut pod = pod_with_unknown_fields();
    pod["metadata"]["labels"]["azure.workload.identity/use"] = json!("true");
    pod
}

#[test]
fn second_pass_over_a_mutated_pod_changes_nothing() {
    let pod = azure_pod();
    let sa = all_clouds_sa();
    let first = admit(&request(&pod), &cfg(), Some(&sa));
    assert_eq!(
        first.mutated,
        BTreeSet::from([Cloud::Aws, Cloud::Azure, Cloud::Gcp])
    );
    let mutated = apply(&pod, &first.response);
    let second = admit(&request(&mutated), &cfg(), Some(&sa));
    assert_eq!(second.verdict, Verdict::Allowed);
    assert!(second.response.allowed);
    assert_eq!(second.response.patch, None, "reinvocation must be a no-op");
    assert!(second.mutated.is_empty());
}

#[test]
fn azure_injects_the_workload_identity_environment() {
    let pod = azure_pod();
    let out = admit(
        &request(&pod),
        &cfg(),
        Some(&sa(&[("azure.workload.identity/client-id", "cid")])),
    );
    let patched = apply(&pod, &out.response);
    let env = env_of(&patched["spec"]["containers"][0]);
    assert_eq!(env["AZURE_CLIENT_ID"], "cid");
    assert_eq!(env["AZURE_TENANT_ID"], "tenant-from-flag");
    assert_eq!(
        env["AZURE_FEDERATED_TOKEN_FILE"],
        "/var/run/secrets/azure/tokens/azure-identity-token"
    );
    assert_eq!(
        env["AZURE_AUTHORITY_HOST"],
        "https://login.microsoftonline.com/"
    );
    let vol = &patched["spec"]["volumes"][1];
    assert_eq!(vol["name"], "azure-identity-token");
    assert_eq!(
        vol["projected"]["sources"][0]["serviceAccountToken"]["audience"],
        "api://AzureADTokenExchange"
    );
}

#[test]
fn azure_expiration_outside_range_denies_admission() {
    let pod = azure_pod();
    let out = admit(
        &request(&pod),
        &cfg(),
        Some(&sa(&[(
            "azure.workload.identity/service-account-token-expiration",
            "600",
        )])),
    );
    assert_eq!(out.verdict, Verdict::Denied);
    assert!(!out.response.allowed);
    assert!(out
        .response
        .result
        .message
        .contains("between 3600 and 86400"));
    assert_eq!(out.response.patch, None);
}

#[test]
fn gcp_injects_credentials_without_an_init_container() {
    let pod = pod_with_unknown_fields();
    let out = admit(
        &request(&pod),
        &cfg(),
        Some(&sa(&[(
            "cloud.google.com/workload-identity-provider",
            PROVIDER,
        )])),
    );
    let patched = apply(&pod, &out.response);
    assert_eq!(
        patched["spec"]["initContainers"].as_array().map(Vec::len),
        Some(1),
        "no init container added"
    );
    let env = env_of(&patched["spec"]["containers"][0]);
    assert_eq!(
        env["GOOGLE_APPLICATION_CREDENTIALS"],
        "/var/run/secrets/sts.googleapis.com/serviceaccount/credential-configuration.json"
    );
    let config = patched["metadata"]["annotations"][gcp::CONFIG_ANNOTATION]
        .as_str()
        .expect("config annotation");
    let config: Value = serde_json::from_str(config).expect("config is JSON");
    assert_eq!(config["type"], "external_account");
    assert_eq!(
        config["audience"],
        format!("//iam.googleapis.com/{PROVIDER}")
    );
}

#[test]
fn gcp_malformed_provider_denies_admission() {
    let pod = pod_with_unknown_fields();
    let out = admit(
        &request(&pod),
        &cfg(),
        Some(&sa(&[(
            "cloud.google.com/workload-identity-provider",
            "my-provider",
        )])),
    );
    assert_eq!(out.verdict, Verdict::Denied);
    assert!(out
        .response
        .result
        .message
        .contains("workloadIdentityPools"));
}

#[test]
fn unannotated_service_account_and_missing_service_account_allow_unchanged() {
    let pod = pod_with_unknown_fields();
    for sa in [Some(sa(&[])), None] {
        let out = admit(&request(&pod), &cfg(), sa.as_ref());
        assert_eq!(out.verdict, Verdict::Allowed);
        assert_eq!(out.response.patch, None);
    }
}

#[test]
fn updates_are_not_mutated() {
    let pod = pod_with_unknown_fields();
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_value(review_json(&pod, "UPDATE")).expect("parses");
    let req: AdmissionRequest<DynamicObject> = review.try_into().expect("request");
    assert_eq!(pod_service_account(&req), None);
    let out = admit(&req, &cfg(), Some(&all_clouds_sa()));
    assert_eq!(out.response.patch, None);
}

#[test]
fn service_account_reference_defaults_to_default_in_request_namespace() {
    let pod = json!({"metadata": {"generateName": "x-"}, "spec": {"containers": []}});
    assert_eq!(
        pod_service_account(&request(&pod)),
        Some(("team".to_string(), "default".to_string()))
    );
}

#[test]
fn response_review_carries_uid_and_json_patch_type() {
    let pod = pod_with_unknown_fields();
    let out = admit(&request(&pod), &cfg(), Some(&all_clouds_sa()));
    let review = serde_json::to_value(out.response.into_review()).expect("serializes");
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    assert_eq!(
        review["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert_eq!(review["response"]["patchType"], "JSONPatch");
}
