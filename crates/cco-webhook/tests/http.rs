//! The HTTP/TLS path in-process: `/mutate`, `/healthz`, `/metrics` and certificate reload on a
//! live listener (ServiceAccounts from a static source; the API-server path is in
//! `apiserver.rs`).

mod common;

use cco_webhook::sa_cache::StaticServiceAccounts;
use cco_webhook::WebhookConfig;
use common::{http_get, https_request, start_webhook, Pki};
use serde_json::{json, Value};

fn review(pod: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "uid-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team",
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": pod
        }
    }))
    .expect("serializes")
}

fn accounts() -> StaticServiceAccounts {
    StaticServiceAccounts::default().with(
        "team",
        "app",
        &[("eks.amazonaws.com/role-arn", "arn:aws:iam::1:role/r")],
    )
}

#[tokio::test]
async fn mutate_endpoint_answers_with_a_json_patch_review() {
    let pki = Pki::new();
    let hook = start_webhook(&pki, WebhookConfig::default(), accounts()).await;
    let pod = json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": "app",
        "containers": [{"name": "c", "image": "x", "futureField": 1}]}});
    let reply = https_request(
        hook.addr,
        &pki.ca_pem,
        "POST",
        "/mutate",
        review(pod.clone()),
    )
    .await;
    assert_eq!(reply.status, 200);
    let out: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(out["kind"], "AdmissionReview");
    assert_eq!(out["response"]["uid"], "uid-1");
    assert_eq!(out["response"]["allowed"], true);
    assert_eq!(out["response"]["patchType"], "JSONPatch");
    let patch_b64 = out["response"]["patch"].as_str().expect("patch");
    use base64::Engine as _;
    let patch: json_patch::Patch = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(patch_b64)
            .expect("base64"),
    )
    .expect("patch");
    let mut doc = pod;
    json_patch::patch(&mut doc, &patch).expect("applies");
    assert_eq!(doc["spec"]["containers"][0]["futureField"], 1);
    assert_eq!(doc["spec"]["volumes"][0]["name"], "aws-iam-token");

    let (status, text) = http_get(hook.metrics_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains("pod_identity_webhook_admission_requests_total{verdict=\"patched\"} 1"));
    assert!(text.contains("pod_identity_webhook_mutations_total{cloud=\"aws\"} 1"));
}

#[tokio::test]
async fn healthz_and_bad_requests() {
    let pki = Pki::new();
    let hook = start_webhook(&pki, WebhookConfig::default(), accounts()).await;
    let ok = https_request(hook.addr, &pki.ca_pem, "GET", "/healthz", vec![]).await;
    assert_eq!((ok.status, &ok.body[..]), (200, &b"ok"[..]));
    assert_eq!(http_get(hook.metrics_addr, "/healthz").await.0, 200);
    let missing = https_request(hook.addr, &pki.ca_pem, "GET", "/nope", vec![]).await;
    assert_eq!(missing.status, 404);
    let garbage = https_request(hook.addr, &pki.ca_pem, "POST", "/mutate", b"{".to_vec()).await;
    assert_eq!(garbage.status, 200);
    let out: Value = serde_json::from_slice(&garbage.body).expect("json");
    assert_eq!(out["response"]["allowed"], false);
}

#[tokio::test]
async fn rotated_certificate_is_served_without_restart() {
    let pki = Pki::new();
    let hook = start_webhook(&pki, WebhookConfig::default(), accounts()).await;
    let before = https_request(hook.addr, &pki.ca_pem, "GET", "/healthz", vec![]).await;
    let rotated = pki.write_leaf("webhook-2", 2);
    assert_ne!(before.peer_cert, rotated);
    let after = https_request(hook.addr, &pki.ca_pem, "GET", "/healthz", vec![]).await;
    assert_eq!(
        after.peer_cert, rotated,
        "new handshakes see the new certificate"
    );
    let (_, text) = http_get(hook.metrics_addr, "/metrics").await;
    assert!(text.contains("pod_identity_webhook_certificate_reloads_total{result=\"success\"} 1"));
}
