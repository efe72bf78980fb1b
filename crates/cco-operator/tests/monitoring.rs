//! Monitoring and cluster plumbing of deploy/operator on a real API server, with the operator
//! running in-process as its own ServiceAccount:
//! - `/metrics` is served over HTTPS only, with the serving certificate from a directory laid out
//!   as the service CA's Secret is mounted, and only to callers the API server authenticates
//!   (TokenReview) and authorizes for GET `/metrics` (SubjectAccessReview);
//! - the ServiceMonitor and PrometheusRule apply with the upstream monitoring CRDs, the
//!   ServiceMonitor points at the Service, port and certificate name the operator serves, and every
//!   alert names the reference's alert and a series the operator exports, firing exactly when a
//!   request has the condition it watches;
//! - NetworkPolicies, proxy injection and the trusted CA bundle are wired as the reference wires
//!   them (no CNI runs here, so policies are checked as objects, not enforced).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::metrics_client::{
    https_get, metrics_reader_token, plain_http_get, sa_token, serving_cert_dir,
};
use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use serde_json::{json, Value};

/// The reference's alerts (manifests/0000_90_cloud-credential-operator_03_alertrules.yaml) and the
/// request condition each one watches.
const ALERTS: [(&str, &str); 5] = [
    (
        "CloudCredentialOperatorTargetNamespaceMissing",
        "MissingTargetNamespace",
    ),
    (
        "CloudCredentialOperatorProvisioningFailed",
        "CredentialsProvisionFailure",
    ),
    (
        "CloudCredentialOperatorDeprovisioningFailed",
        "CredentialsDeprovisionFailure",
    ),
    (
        "CloudCredentialOperatorInsufficientCloudCreds",
        "InsufficientCloudCreds",
    ),
    (
        "CloudCredentialOperatorStaleCredentials",
        "StaleCredentials",
    ),
];

async fn get_dynamic(c: &kube::Client, kind: &str, name: &str) -> anyhow::Result<Value> {
    let gvk = GroupVersionKind::gvk("monitoring.coreos.com", "v1", kind);
    let (ar, _) = kube::discovery::pinned_kind(c, &gvk).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), OPERATOR_NS, &ar);
    Ok(serde_json::to_value(api.get(name).await?)?)
}

/// The samples of an OpenMetrics text: `name{labels}` -> value.
fn samples(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Parses the one expression shape the alerts use, `metric{label="value"} > N`, into the sample
/// key it reads and the threshold; anything else fails the test.
fn parse_expr(expr: &str) -> (String, String, String, f64) {
    let expr = expr.split_whitespace().collect::<Vec<_>>().join(" ");
    let (selector, threshold) = expr
        .split_once(" > ")
        .unwrap_or_else(|| panic!("unexpected alert expression {expr:?}"));
    let (metric, rest) = selector.split_once('{').unwrap();
    let (label, value) = rest.trim_end_matches('}').split_once('=').unwrap();
    (
        metric.to_string(),
        label.to_string(),
        value.trim_matches('"').to_string(),
        threshold.parse().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_over_authenticated_tls_and_alerts_on_exported_series() -> anyhow::Result<()> {
    let env = start().await?;
    set_cluster(&env.admin, "Passthrough", "VSphere", "").await?;
    put_root_secret(
        &env.admin,
        "vsphere-creds",
        &[
            ("vc.example.com.username", "administrator@vsphere.local"),
            ("vc.example.com.password", "vsphere-password-value"),
        ],
    )
    .await?;
    create_namespace(&env.admin, "components").await?;
    let vsphere =
        json!({"apiVersion": "cloudcredential.openshift.io/v1", "kind": "VSphereProviderSpec"});
    create_cr(
        &env.admin,
        OPERATOR_NS,
        cr_json("fine", "components", "fine", vsphere.clone()),
    )
    .await?;
    create_cr(
        &env.admin,
        OPERATOR_NS,
        cr_json("lost", "no-such-namespace", "lost", vsphere),
    )
    .await?;

    let (cert_dir, ca) = serving_cert_dir();
    let port = cco_testsupport::moto::free_port()?;
    let mut settings = test_settings();
    settings.metrics_addr = Some(format!("127.0.0.1:{port}").parse()?);
    settings.metrics_cert =
        cco_operator::metrics_server::ServingCert::Dir(cert_dir.path().to_path_buf());
    let op = spawn_operator(operator_client(&env).await?, settings);

    wait_secret(&env.admin, "components", "fine").await?;
    wait_cr(&env.admin, "lost", "MissingTargetNamespace", |c| {
        condition(c, "MissingTargetNamespace").is_some_and(|(s, _)| s == "True")
    })
    .await?;

    // Only authenticated, authorized callers read the metrics.
    let reader = metrics_reader_token(&env.admin, "prometheus-for-tests").await?;
    let missing = "cco_credentials_requests_conditions{condition=\"MissingTargetNamespace\"}";
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, b) = https_get(port, "/metrics", Some(&reader), &ca).await?;
        assert_eq!(status, 200, "{b}");
        if samples(&b).get(missing) == Some(&1.0) {
            break b;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing} never reached 1:\n{b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let (status, b) = https_get(port, "/metrics", None, &ca).await?;
    assert_eq!(status, 401, "{b}");
    let (status, b) = https_get(port, "/metrics", Some("not-a-token"), &ca).await?;
    assert_eq!(status, 401, "{b}");
    let other = sa_token(&env.admin, "not-allowed-to-scrape").await?;
    let (status, b) = https_get(port, "/metrics", Some(&other), &ca).await?;
    assert_eq!(status, 403, "{b}");
    assert!(!b.contains("cco_"), "{b}");
    let (status, _) = https_get(port, "/healthz", None, &ca).await?;
    assert_eq!(status, 200);
    let plain = plain_http_get(port, "/metrics").await?;
    assert!(!plain.starts_with("HTTP/"), "plain HTTP answered: {plain}");

    // The PrometheusRule applied (with the upstream CRD); every alert is the reference's, names a
    // series we export, and fires exactly for the condition a request has.
    let rule = get_dynamic(
        &env.admin,
        "PrometheusRule",
        "cloud-credential-operator-alerts",
    )
    .await?;
    let rules = rule["spec"]["groups"][0]["rules"].as_array().unwrap();
    let names: BTreeSet<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    assert_eq!(names, ALERTS.iter().map(|(a, _)| *a).collect());
    let exported = samples(&body);
    for r in rules {
        let alert = r["alert"].as_str().unwrap();
        let (metric, label, value, threshold) = parse_expr(r["expr"].as_str().unwrap());
        let watched = ALERTS.iter().find(|(a, _)| *a == alert).unwrap().1;
        assert_eq!(
            (metric.as_str(), label.as_str(), value.as_str()),
            ("cco_credentials_requests_conditions", "condition", watched),
            "{alert}"
        );
        let key = format!("{metric}{{{label}=\"{value}\"}}");
        let v = exported
            .get(&key)
            .unwrap_or_else(|| panic!("{alert}: the operator exports no {key}:\n{body}"));
        assert_eq!(
            *v > threshold,
            watched == "MissingTargetNamespace",
            "{alert}: {key} = {v}"
        );
        assert_eq!(r["for"], "5m", "{alert}");
        assert_eq!(r["labels"]["severity"], "warning", "{alert}");
        assert!(r["annotations"]["description"].is_string(), "{alert}");
    }

    // The ServiceMonitor scrapes what the operator serves: the Service's https port, the
    // certificate's name, the Secret the Deployment mounts where the operator reads it.
    let sm = get_dynamic(&env.admin, "ServiceMonitor", "cloud-credential-operator").await?;
    let ep = &sm["spec"]["endpoints"][0];
    assert_eq!(ep["scheme"], "https");
    assert_eq!(ep["port"], "metrics");
    assert_eq!(
        ep["tlsConfig"]["serverName"],
        cco_operator::metrics_server::SERVICE_DNS_NAME
    );
    assert!(ep["bearerTokenFile"].is_string());
    let svc = Api::<Service>::namespaced(env.admin.clone(), OPERATOR_NS)
        .get("cco-metrics")
        .await?;
    let secret_name = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("service.alpha.openshift.io/serving-cert-secret-name"))
        .cloned()
        .expect("serving-cert annotation on cco-metrics");
    let sp = &svc.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
    assert_eq!((sp.name.as_deref(), sp.port), (Some("metrics"), 8443));
    let dep = Api::<Deployment>::namespaced(env.admin.clone(), OPERATOR_NS)
        .get("cloud-credential-operator")
        .await?;
    let pod = dep.spec.as_ref().unwrap().template.clone();
    let pod_labels = pod.metadata.as_ref().unwrap().labels.clone().unwrap();
    let pod_spec = pod.spec.unwrap();
    let c0 = &pod_spec.containers[0];
    let cport = c0
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .find(|p| p.name.as_deref() == Some("metrics"))
        .unwrap();
    assert_eq!(cport.container_port, 8443);
    let args = c0.args.clone().unwrap_or_default();
    assert!(
        args.contains(&"--metrics-addr=0.0.0.0:8443".to_string()),
        "{args:?}"
    );
    let mount_of = |volume: &str| {
        c0.volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == volume)
            .map(|m| m.mount_path.clone())
    };
    let volumes = pod_spec.volumes.clone().unwrap();
    let cert_vol = volumes
        .iter()
        .find(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some(&secret_name))
        .expect("the serving-cert Secret is a volume");
    assert_eq!(
        mount_of(&cert_vol.name).as_deref(),
        Some(cco_operator::metrics_server::DEFAULT_CERT_DIR)
    );

    // Proxy injection and the trusted CA bundle, as the reference's Deployment asks for them.
    assert_eq!(
        dep.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("config.openshift.io/inject-proxy"))
            .map(String::as_str),
        Some("cloud-credential-operator")
    );
    let cm = Api::<ConfigMap>::namespaced(env.admin.clone(), OPERATOR_NS)
        .get("cco-trusted-ca")
        .await?;
    assert_eq!(
        cm.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("config.openshift.io/inject-trusted-cabundle"))
            .map(String::as_str),
        Some("true")
    );
    let ca_vol = volumes
        .iter()
        .find(|v| {
            v.config_map
                .as_ref()
                .is_some_and(|c| c.name == "cco-trusted-ca")
        })
        .expect("trusted CA volume");
    let items = ca_vol.config_map.as_ref().unwrap().items.clone().unwrap();
    assert_eq!(
        (items[0].key.as_str(), items[0].path.as_str()),
        ("ca-bundle.crt", "tls-ca-bundle.pem")
    );
    assert_eq!(
        mount_of(&ca_vol.name).as_deref(),
        Some("/etc/pki/ca-trust/extracted/pem")
    );

    // NetworkPolicies: default deny, egress for the operator and the webhook, ingress only to the
    // operator's metrics port and the webhook's port.
    let np = Api::<NetworkPolicy>::namespaced(env.admin.clone(), OPERATOR_NS);
    let mut policies = BTreeMap::new();
    for p in np.list(&Default::default()).await?.items {
        policies.insert(
            p.metadata.name.clone().unwrap(),
            serde_json::to_value(p.spec.unwrap())?,
        );
    }
    assert_eq!(
        policies.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "allow-egress",
            "allow-ingress-metrics",
            "allow-ingress-webhook",
            "default-deny"
        ]
    );
    assert_eq!(policies["default-deny"]["podSelector"], json!({}));
    assert_eq!(
        policies["default-deny"]["policyTypes"],
        json!(["Ingress", "Egress"])
    );
    assert!(policies["default-deny"].get("ingress").is_none());
    let selects = |p: &Value| -> Vec<String> {
        let e = &p["podSelector"]["matchExpressions"][0];
        assert_eq!((&e["key"], &e["operator"]), (&json!("app"), &json!("In")));
        serde_json::from_value(e["values"].clone()).unwrap()
    };
    assert_eq!(
        selects(&policies["allow-egress"]),
        ["cloud-credential-operator", "pod-identity-webhook"]
    );
    assert_eq!(policies["allow-egress"]["policyTypes"], json!(["Egress"]));
    let ingress_port = |p: &Value| {
        assert_eq!(p["policyTypes"], json!(["Ingress"]));
        assert_eq!(p["ingress"].as_array().unwrap().len(), 1);
        assert!(p["ingress"][0].get("from").is_none());
        p["ingress"][0]["ports"][0]["port"].as_i64().unwrap()
    };
    let metrics_np = &policies["allow-ingress-metrics"];
    assert_eq!(selects(metrics_np), [pod_labels["app"].clone()]);
    assert_eq!(ingress_port(metrics_np), i64::from(cport.container_port));
    let webhook_np = &policies["allow-ingress-webhook"];
    assert_eq!(selects(webhook_np), ["pod-identity-webhook"]);
    assert_eq!(ingress_port(webhook_np), 9443);

    op.stop().await?;
    drop(cert_dir);
    Ok(())
}
