//! Property tests of the pure handler on random pods and ServiceAccount annotations, drawn from
//! the names the webhook cares about (so that collisions with its own variables, mounts,
//! volumes and containers are frequent) and from wrongly typed JSON: the handler never panics,
//! a patch always applies to the pod it was computed for, and a second pass over the patched
//! pod is a no-op.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use cco_webhook::handler::{admit_with, Inputs, ServiceAccountState};
use cco_webhook::WebhookConfig;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use kube::core::DynamicObject;
use proptest::prelude::*;
use serde_json::{json, Value};

const ENV_NAMES: &[&str] = &[
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_REGION",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_CONFIG",
    "CLOUDSDK_CORE_PROJECT",
    "OTHER",
];
const MOUNT_PATHS: &[&str] = &[
    "/var/run/secrets/eks.amazonaws.com/serviceaccount",
    "/var/run/secrets/azure/wi",
    "/var/run/secrets/sts.googleapis.com/serviceaccount",
    "/var/run/secrets/gcloud/config",
    "/var/run/secrets/workload-identity",
    "/data",
];
const VOLUME_NAMES: &[&str] = &[
    "aws-iam-token",
    "eks-pod-identity-token",
    "azure-identity-token",
    "gcp-iam-token",
    "gcloud-config",
    "external-credential-config",
    "gcp-workload-identity",
    "data",
];
const CONTAINER_NAMES: &[&str] = &[
    "app",
    "side",
    "gcloud-setup",
    "azwi-proxy",
    "azwi-proxy-init",
];
const POD_ANNOTATIONS: &[(&str, &[&str])] = &[
    (
        "eks.amazonaws.com/token-expiration",
        &["3600", "", "x", "-5", "99999999999999999999"],
    ),
    (
        "eks.amazonaws.com/skip-containers",
        &["app", "side,app", ""],
    ),
    (
        "azure.workload.identity/service-account-token-expiration",
        &["3600", "", "100", "abc"],
    ),
    ("azure.workload.identity/skip-containers", &["app;side", ""]),
    (
        "azure.workload.identity/inject-proxy-sidecar",
        &["true", ""],
    ),
    (
        "azure.workload.identity/proxy-sidecar-port",
        &["8000", "x", "-1"],
    ),
    ("cloud.google.com/token-expiration", &["7200", "y", "0"]),
    ("cloud.google.com/skip-containers", &["app", ""]),
    ("cloud.google.com/external-credentials-json", &["{}", "old"]),
];
const SA_ANNOTATIONS: &[(&str, &[&str])] = &[
    (
        "eks.amazonaws.com/role-arn",
        &["arn:aws:iam::111122223333:role/a", "", " "],
    ),
    ("eks.amazonaws.com/audience", &["aud", ""]),
    (
        "eks.amazonaws.com/sts-regional-endpoints",
        &["True", "no", "0"],
    ),
    ("eks.amazonaws.com/token-expiration", &["600", "z"]),
    ("azure.workload.identity/client-id", &["cid", ""]),
    ("azure.workload.identity/tenant-id", &["tid", ""]),
    (
        "azure.workload.identity/service-account-token-expiration",
        &["86400", "1"],
    ),
    (
        "cloud.google.com/workload-identity-provider",
        &[
            "projects/1/locations/global/workloadIdentityPools/p/providers/q",
            "bad",
        ],
    ),
    (
        "cloud.google.com/service-account-email",
        &["a@p.iam.gserviceaccount.com", "weird"],
    ),
    (
        "cloud.google.com/injection-mode",
        &["direct", "gcloud", "x"],
    ),
    ("cloud.google.com/gcloud-run-as-user", &["1000", "r"]),
];

fn pick(options: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(options)
}

fn pairs(
    table: &'static [(&'static str, &'static [&'static str])],
) -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::vec(
        (0..table.len()).prop_flat_map(move |i| {
            let (k, values) = table[i];
            pick(values).prop_map(move |v| (k.to_string(), v.to_string()))
        }),
        0..6,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// Occasionally the wrong JSON type instead of the expected one.
fn or_garbage(v: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => v,
        1 => Just(Value::Null),
        1 => Just(json!("string")),
        1 => Just(json!(42)),
        1 => Just(json!({"unexpected": true})),
    ]
}

fn container() -> impl Strategy<Value = Value> {
    (
        pick(CONTAINER_NAMES),
        proptest::option::of(or_garbage(
            proptest::collection::vec(
                pick(ENV_NAMES).prop_map(|n| json!({"name": n, "value": "v"})),
                0..4,
            )
            .prop_map(Value::Array),
        )),
        proptest::option::of(or_garbage(
            proptest::collection::vec(
                (pick(VOLUME_NAMES), pick(MOUNT_PATHS))
                    .prop_map(|(n, p)| json!({"name": n, "mountPath": p})),
                0..3,
            )
            .prop_map(Value::Array),
        )),
    )
        .prop_map(|(name, env, mounts)| {
            let mut c = json!({"name": name, "image": "x", "futureField": {"k": 1}});
            if let Some(e) = env {
                c["env"] = e;
            }
            if let Some(m) = mounts {
                c["volumeMounts"] = m;
            }
            c
        })
}

fn pod() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(pick(&["p", "", "pod-1"])),
        proptest::option::of(pick(&["gen-", ""])),
        pairs(POD_ANNOTATIONS),
        proptest::option::of(pick(&["true", "false", "True"])),
        proptest::option::of(pick(&["true", "false"])),
        proptest::option::of(pick(&["app", "", "default"])),
        proptest::option::of(or_garbage(
            proptest::collection::vec(container(), 0..3).prop_map(Value::Array),
        )),
        proptest::option::of(or_garbage(
            proptest::collection::vec(container(), 0..4).prop_map(Value::Array),
        )),
        proptest::option::of(or_garbage(
            proptest::collection::vec(
                pick(VOLUME_NAMES).prop_map(|n| json!({"name": n, "emptyDir": {}})),
                0..3,
            )
            .prop_map(Value::Array),
        )),
        any::<(bool, bool, bool, bool)>(),
    )
        .prop_map(
            |(
                name,
                generate,
                annotations,
                azure_use,
                skip,
                sa,
                inits,
                containers,
                volumes,
                flags,
            )| {
                let mut meta = json!({});
                if let Some(n) = name {
                    meta["name"] = json!(n);
                }
                if let Some(g) = generate {
                    meta["generateName"] = json!(g);
                }
                if !annotations.is_empty() || flags.0 {
                    meta["annotations"] = json!(annotations);
                }
                let mut labels = serde_json::Map::new();
                if let Some(v) = azure_use {
                    labels.insert("azure.workload.identity/use".into(), json!(v));
                }
                if let Some(v) = skip {
                    labels.insert(
                        "eks.amazonaws.com/skip-pod-identity-webhook".into(),
                        json!(v),
                    );
                }
                if !labels.is_empty() {
                    meta["labels"] = Value::Object(labels);
                }
                let mut spec = json!({});
                if let Some(sa) = sa {
                    spec["serviceAccountName"] = json!(sa);
                }
                if let Some(i) = inits {
                    spec["initContainers"] = i;
                }
                if let Some(c) = containers {
                    spec["containers"] = c;
                }
                if let Some(v) = volumes {
                    spec["volumes"] = v;
                }
                if flags.1 {
                    spec["hostNetwork"] = json!(true);
                }
                if flags.2 {
                    spec["securityContext"] = json!({"fsGroup": 2000});
                }
                if flags.3 {
                    spec["nodeSelector"] = json!({"kubernetes.io/os": "windows"});
                }
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
            },
        )
}

fn request(pod: &Value) -> Option<AdmissionRequest<DynamicObject>> {
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team",
            "operation": "CREATE",
            "userInfo": {},
            "object": pod,
        }
    });
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(review).ok()?;
    review.try_into().ok()
}

fn config() -> WebhookConfig {
    let mut c = WebhookConfig::default();
    c.aws.region = Some("eu-west-1".into());
    c.azure.tenant_id = Some("tenant".into());
    c
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn patches_apply_and_a_second_pass_is_a_no_op(
        pod in pod(),
        sa in pairs(SA_ANNOTATIONS),
        sa_state in 0u8..3,
        associated in any::<bool>(),
    ) {
        // Pods the API server could not have sent (unparsable as a DynamicObject) are skipped.
        let Some(req) = request(&pod) else { return Ok(()) };
        let meta = ObjectMeta { annotations: Some(sa), ..Default::default() };
        let state = match sa_state {
            0 => ServiceAccountState::Found(&meta),
            1 => ServiceAccountState::NotFound,
            _ => ServiceAccountState::Failed("boom"),
        };
        let inputs = Inputs { service_account: state, config_map_role: None, pod_identity_association: associated };
        let cfg = config();
        let first = admit_with(&req, &cfg, &inputs);
        let Some(patch) = first.response.patch.as_ref() else { return Ok(()) };
        prop_assert!(first.response.allowed);
        let patch: json_patch::Patch = serde_json::from_slice(patch).unwrap();
        let mut patched = pod.clone();
        let applied = json_patch::patch(&mut patched, &patch);
        prop_assert!(applied.is_ok(), "patch {:?} does not apply: {:?}", patch, applied);
        let req2 = request(&patched).expect("the patched pod parses");
        let second = admit_with(&req2, &cfg, &inputs);
        prop_assert!(second.response.allowed, "second pass denied: {}", second.response.result.message);
        prop_assert_eq!(
            second.response.patch.as_ref().map(|p| String::from_utf8_lossy(p).into_owned()),
            None,
            "second pass over {} is not a no-op", patched
        );
    }
}
