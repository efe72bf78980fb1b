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
    assert_eq!(ops(&second.response), vec![], "second pass");
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
        "/var/run/secrets/azure/wi/token/azure-identity-token"
    );
    assert_eq!(
        env["AZURE_AUTHORITY_HOST"],
        "https://login.microsoftonline.com/"
    );
    let vol = &patched["spec"]["volumes"][1];
    assert_eq!(
        vol["name"],
        azure::volume_name(patched["metadata"]["name"].as_str().unwrap_or(""))
    );
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

fn gcp_sa(extra: &[(&str, &str)]) -> ObjectMeta {
    let mut pairs = vec![
        ("cloud.google.com/workload-identity-provider", PROVIDER),
        (
            "cloud.google.com/service-account-email",
            "app@proj.iam.gserviceaccount.com",
        ),
    ];
    pairs.extend_from_slice(extra);
    sa(&pairs)
}

fn gcp_pod() -> Value {
    let mut pod = pod_with_unknown_fields();
    pod["spec"]["serviceAccountName"] = json!("app");
    pod
}

#[test]
fn gcp_direct_mode_projects_the_configuration() {
    let pod = gcp_pod();
    let out = admit(
        &request(&pod),
        &cfg(),
        Some(&gcp_sa(&[("cloud.google.com/injection-mode", "direct")])),
    );
    let patched = apply(&pod, &out.response);
    assert_eq!(
        patched["spec"]["initContainers"].as_array().map(Vec::len),
        Some(1),
        "no init container added in direct mode"
    );
    let env = env_of(&patched["spec"]["containers"][0]);
    assert_eq!(
        env["GOOGLE_APPLICATION_CREDENTIALS"],
        "/var/run/secrets/workload-identity/federation.json"
    );
    assert_eq!(env["CLOUDSDK_CORE_PROJECT"], "proj");
    let config = patched["metadata"]["annotations"]["cloud.google.com/external-credentials-json"]
        .as_str()
        .expect("config annotation");
    let config: Value = serde_json::from_str(config).expect("config is JSON");
    assert_eq!(config["type"], "external_account");
    assert_eq!(
        config["audience"],
        format!("//iam.googleapis.com/{PROVIDER}")
    );
    assert_eq!(
        patched["metadata"]["annotations"]["cloud.google.com/audience"],
        "sts.googleapis.com"
    );
}

#[test]
fn gcp_gcloud_mode_prepends_the_setup_container() {
    let pod = gcp_pod();
    let out = admit(&request(&pod), &cfg(), Some(&gcp_sa(&[])));
    let patched = apply(&pod, &out.response);
    let inits = patched["spec"]["initContainers"].as_array().expect("inits");
    assert_eq!(inits.len(), 2);
    assert_eq!(inits[0]["name"], "gcloud-setup");
    assert_eq!(
        env_of(&inits[0])["GCP_WORKLOAD_IDENTITY_PROVIDER"],
        PROVIDER
    );
    // The user's init container (now second) got the variables, gcloud-setup kept its own.
    let env = env_of(&inits[1]);
    assert_eq!(env["CLOUDSDK_CONFIG"], "/var/run/secrets/gcloud/config");
    assert_eq!(
        env["GOOGLE_APPLICATION_CREDENTIALS"],
        "/var/run/secrets/gcloud/config/federation.json"
    );
    let mounts = patched["spec"]["containers"][0]["volumeMounts"]
        .as_array()
        .expect("mounts");
    assert!(mounts.iter().any(
        |m| m["name"] == "gcloud-config" && m["mountPath"] == "/var/run/secrets/gcloud/config"
    ));
    let second = admit(&request(&patched), &cfg(), Some(&gcp_sa(&[])));
    assert_eq!(second.response.patch, None, "second pass is a no-op");
}

#[test]
fn gcp_pod_token_expiration_annotation_is_honoured() {
    let mut pod = gcp_pod();
    pod["metadata"]["annotations"] = json!({"cloud.google.com/token-expiration": "5400"});
    let out = admit(&request(&pod), &cfg(), Some(&gcp_sa(&[])));
    let patched = apply(&pod, &out.response);
    let vol = patched["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "gcp-iam-token")
        .expect("token volume")
        .clone();
    assert_eq!(
        vol["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        5400
    );
}

#[test]
fn azure_pod_without_its_service_account_is_denied_not_half_injected() {
    let pod = azure_pod();
    for state in [
        ServiceAccountState::NotFound,
        ServiceAccountState::Failed("connection refused"),
    ] {
        let out = admit_with(&request(&pod), &cfg(), &Inputs::service_account(state));
        assert_eq!(out.verdict, Verdict::Denied, "{state:?}");
        assert!(!out.response.allowed);
        assert_eq!(out.response.result.code, 400);
        assert_eq!(out.response.patch, None, "nothing injected");
        assert!(out.response.result.message.contains("ServiceAccount"));
    }
    let out = admit_with(
        &request(&pod),
        &cfg(),
        &Inputs::service_account(ServiceAccountState::Failed("connection refused")),
    );
    assert!(out.response.result.message.contains("connection refused"));
}

#[rstest::rstest]
#[case("True")]
#[case("1")]
#[case("t")]
#[case("TRUE")]
fn sts_regional_annotation_is_a_go_boolean(#[case] value: &str) {
    let mut c = cfg();
    c.aws.sts_regional_endpoints = false;
    let pod = pod_with_unknown_fields();
    let out = admit(
        &request(&pod),
        &c,
        Some(&sa(&[
            ("eks.amazonaws.com/role-arn", ROLE_ARN),
            ("eks.amazonaws.com/sts-regional-endpoints", value),
        ])),
    );
    let patched = apply(&pod, &out.response);
    assert_eq!(
        env_of(&patched["spec"]["containers"][0])["AWS_STS_REGIONAL_ENDPOINTS"],
        "regional"
    );
    assert!(out.response.warnings.is_none());
}

#[test]
fn empty_azure_expiration_annotation_falls_back_to_the_default() {
    let mut pod = azure_pod();
    pod["metadata"]["annotations"] =
        json!({"azure.workload.identity/service-account-token-expiration": ""});
    let out = admit(
        &request(&pod),
        &cfg(),
        Some(&sa(&[("azure.workload.identity/client-id", "cid")])),
    );
    assert_eq!(out.verdict, Verdict::Patched);
    let patched = apply(&pod, &out.response);
    let vol = patched["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(azure::VOLUME_PREFIX))
        })
        .expect("azure volume")
        .clone();
    assert_eq!(
        vol["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3600
    );
}

#[test]
fn a_user_volume_at_the_token_path_is_reported() {
    let mut pod = pod_with_unknown_fields();
    pod["spec"]["containers"][0]["volumeMounts"] = json!([
        {"name": "mine", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount"}
    ]);
    let out = admit(
        &request(&pod),
        &cfg(),
        Some(&sa(&[("eks.amazonaws.com/role-arn", ROLE_ARN)])),
    );
    assert!(out.response.allowed);
    let warnings = out.response.warnings.clone().unwrap_or_default();
    assert!(
        warnings.iter().any(
            |w| w.contains("/var/run/secrets/eks.amazonaws.com/serviceaccount")
                && w.contains("main")
        ),
        "{warnings:?}"
    );
}

#[test]
fn azure_uses_the_v1_6_volume_name_and_token_path() {
    let pod = azure_pod();
    let out = admit(
        &request(&pod),
        &cfg(),
        Some(&sa(&[("azure.workload.identity/client-id", "cid")])),
    );
    let patched = apply(&pod, &out.response);
    let name = patched["metadata"]["name"].as_str().expect("name");
    let expected = azure::volume_name(name);
    assert!(expected.starts_with("azure-workload-identity-reserved-"));
    assert_eq!(expected.len(), 63);
    let c = &patched["spec"]["containers"][0];
    assert_eq!(
        env_of(c)["AZURE_FEDERATED_TOKEN_FILE"],
        "/var/run/secrets/azure/wi/token/azure-identity-token"
    );
    assert!(c["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .any(|m| m["name"] == expected.as_str() && m["mountPath"] == "/var/run/secrets/azure/wi"));
}

#[test]
fn pods_mutated_with_the_old_azure_layout_are_left_alone() {
    let mut pod = azure_pod();
    pod["spec"]["volumes"] =
        json!([{"name": "azure-identity-token", "projected": {"sources": []}}]);
    pod["spec"]["containers"][0]["volumeMounts"] = json!([
        {"name": "azure-identity-token", "mountPath": "/var/run/secrets/azure/tokens", "readOnly": true}
    ]);
    pod["spec"]["containers"][0]["env"] = json!([
        {"name": "AZURE_CLIENT_ID", "value": "cid"},
        {"name": "AZURE_FEDERATED_TOKEN_FILE", "value": "/var/run/secrets/azure/tokens/azure-identity-token"}
    ]);
    let out = admit(
        &request(&pod),
        &cfg(),
        Some(&sa(&[("azure.workload.identity/client-id", "cid")])),
    );
    assert_eq!(out.response.patch, None);
}

#[test]
fn azure_proxy_sidecar_is_injected_as_a_native_sidecar() {
    let mut pod = azure_pod();
    pod["metadata"]["annotations"] = json!({
        "azure.workload.identity/inject-proxy-sidecar": "true",
        "azure.workload.identity/proxy-sidecar-port": "9000"
    });
    let sa = sa(&[("azure.workload.identity/client-id", "cid")]);
    let out = admit(&request(&pod), &cfg(), Some(&sa));
    let patched = apply(&pod, &out.response);
    let inits = patched["spec"]["initContainers"].as_array().expect("inits");
    let names: Vec<_> = inits
        .iter()
        .map(|c| c["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["azwi-proxy", "init", "azwi-proxy-init"]);
    assert_eq!(inits[0]["restartPolicy"], "Always");
    assert_eq!(inits[0]["args"][0], "--proxy-port=9000");
    assert_eq!(env_of(&inits[2])["PROXY_PORT"], "9000");
    assert_eq!(env_of(&inits[0])["AZURE_CLIENT_ID"], "cid");
    let second = admit(&request(&patched), &cfg(), Some(&sa));
    assert_eq!(second.response.patch, None, "second pass is a no-op");

    let mut c = cfg();
    c.azure.native_sidecar = false;
    let out = admit(&request(&pod), &c, Some(&sa));
    let patched = apply(&pod, &out.response);
    assert_eq!(patched["spec"]["containers"][0]["name"], "azwi-proxy");

    pod["spec"]["hostNetwork"] = json!(true);
    let out = admit(&request(&pod), &cfg(), Some(&sa));
    assert_eq!(out.verdict, Verdict::Denied);
}

#[test]
fn azure_custom_token_endpoint_variables() {
    let mut c = cfg();
    c.azure.custom_token_endpoint = Some(crate::config::CustomTokenEndpoint {
        annotation: "azure.workload.identity/use-aks-proxy".into(),
        audience: "custom-aud".into(),
    });
    c.azure.custom_env.token_proxy = "https://proxy.example".into();
    c.azure.custom_env.ca_configmap_name = "ca-bundle".into();
    let mut pod = azure_pod();
    pod["metadata"]["annotations"] = json!({"azure.workload.identity/use-aks-proxy": "TRUE"});
    let out = admit(
        &request(&pod),
        &c,
        Some(&sa(&[("azure.workload.identity/client-id", "cid")])),
    );
    let patched = apply(&pod, &out.response);
    let env = env_of(&patched["spec"]["containers"][0]);
    assert_eq!(env["AZURE_KUBERNETES_TOKEN_PROXY"], "https://proxy.example");
    assert_eq!(
        env["AZURE_KUBERNETES_CA_FILE"],
        "/var/run/secrets/azure/wi/ca-cert/ca.crt"
    );
    assert!(!env.contains_key("AZURE_KUBERNETES_SNI_NAME"));
    let vol = patched["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(azure::VOLUME_PREFIX))
        })
        .expect("volume")
        .clone();
    assert_eq!(
        vol["projected"]["sources"][0]["serviceAccountToken"]["audience"],
        "custom-aud"
    );
    assert_eq!(
        vol["projected"]["sources"][1]["configMap"]["name"],
        "ca-bundle"
    );
}

#[test]
fn eks_pod_identity_association_injects_container_credentials() {
    let pod = pod_with_unknown_fields();
    let inputs = Inputs {
        service_account: ServiceAccountState::Found(&sa(&[])),
        config_map_role: None,
        pod_identity_association: true,
    };
    let out = admit_with(&request(&pod), &cfg(), &inputs);
    let patched = apply(&pod, &out.response);
    let env = env_of(&patched["spec"]["containers"][0]);
    assert_eq!(
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        "http://169.254.170.23/v1/credentials"
    );
    assert_eq!(
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"],
        "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
    );
    assert!(!env.contains_key("AWS_ROLE_ARN"));
    assert_eq!(
        patched["metadata"]["labels"]["eks.amazonaws.com/pod-identity"],
        "enabled"
    );
    let vol = patched["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "eks-pod-identity-token")
        .expect("volume")
        .clone();
    assert_eq!(
        vol["projected"]["sources"][0]["serviceAccountToken"]["audience"],
        "pods.eks.amazonaws.com"
    );
}

#[test]
fn config_map_role_is_used_when_the_service_account_has_none() {
    let pod = pod_with_unknown_fields();
    let entry = crate::aws::RoleEntry {
        role_arn: ROLE_ARN.into(),
        audience: "cm-aud".into(),
        use_regional_sts: false,
        token_expiration: 7200,
    };
    let inputs = Inputs {
        service_account: ServiceAccountState::Found(&sa(&[])),
        config_map_role: Some(&entry),
        pod_identity_association: false,
    };
    let out = admit_with(&request(&pod), &cfg(), &inputs);
    let patched = apply(&pod, &out.response);
    assert_eq!(
        env_of(&patched["spec"]["containers"][0])["AWS_ROLE_ARN"],
        ROLE_ARN
    );
}

#[test]
fn gcp_malformed_provider_denies_admission() {
    let pod = pod_with_unknown_fields();
    let out = admit(
        &request(&pod),
        &cfg(),
        Some(&sa(&[
            ("cloud.google.com/workload-identity-provider", "my-provider"),
            (
                "cloud.google.com/service-account-email",
                "app@proj.iam.gserviceaccount.com",
            ),
        ])),
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
        assert!(out.response.allowed);
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
