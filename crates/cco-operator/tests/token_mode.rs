//! Manual mode with a service-account issuer (short-term tokens), against a real API server, with the
//! operator running in-process as its own ServiceAccount under the RBAC in deploy/operator.
//!
//! Covers the seeds/004 flow (an operator creates a CredentialsRequest carrying `stsIAMRoleARN` and
//! waits for the Secret), `cloudTokenPath`, the missing-namespace transition, Ignored, requests
//! without token fields, deletion through the finalizer, GCP and Azure formats, the ClusterOperator,
//! the Lease, the metrics endpoint and graceful shutdown.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use cco_api::CredentialsRequest;
use common::metrics_client::{https_get, metrics_reader_token, serving_cert_dir};
use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use serde_json::json;

const ROLE: &str = "arn:aws:iam::123456789012:role/my-operator-role";
const TOKEN: &str = "/var/run/secrets/openshift/serviceaccount/token";

/// How many status passes (ClusterOperator + metrics) the operator has made.
fn status_passes(m: &cco_operator::metrics::Metrics) -> u64 {
    let key = "cco_controller_reconcile_seconds_count{controller=\"status\"} ";
    m.encode()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_mode_writes_secrets_for_requests_with_token_fields() -> anyhow::Result<()> {
    let env = start().await?;
    set_cluster(
        &env.admin,
        "Manual",
        "AWS",
        "https://oidc.example.com/cluster",
    )
    .await?;
    let port = cco_testsupport::moto::free_port()?;
    let mut settings = test_settings();
    settings.metrics_addr = Some(format!("127.0.0.1:{port}").parse()?);
    let (cert_dir, ca) = serving_cert_dir();
    settings.metrics_cert =
        cco_operator::metrics_server::ServingCert::Dir(cert_dir.path().to_path_buf());
    let op = spawn_operator(operator_client(&env).await?, settings);

    // seeds/004: another operator creates a request with the role ARN and waits for its Secret.
    create_namespace(&env.admin, "my-operator-ns").await?;
    let mut req = cr_json(
        "my-operator-creds",
        "my-operator-ns",
        "my-operator-secret",
        json!({"apiVersion": "cloudcredential.openshift.io/v1", "kind": "AWSProviderSpec",
               "statementEntries": [{"effect": "Allow", "action": ["s3:*"], "resource": "arn:aws:s3:*:*:*"}],
               "stsIAMRoleARN": ROLE}),
    );
    req["spec"]["cloudTokenPath"] = json!(TOKEN);
    create_cr(&env.admin, OPERATOR_NS, req).await?;
    let data = wait_secret(&env.admin, "my-operator-ns", "my-operator-secret").await?;
    assert_eq!(
        data.get("credentials").map(String::as_str),
        Some(cco_core::aws::credentials_file(ROLE, TOKEN).as_str())
    );
    let cr = wait_cr(&env.admin, "my-operator-creds", "provisioned", |c| {
        c.status.as_ref().is_some_and(|s| s.provisioned)
    })
    .await?;
    let st = cr.status.clone().unwrap();
    assert_eq!(st.last_sync_generation, cr.metadata.generation.unwrap());
    assert!(st.last_sync_timestamp.is_some());
    assert!(cr
        .metadata
        .finalizers
        .unwrap_or_default()
        .contains(&"cloudcredential.openshift.io/deprovision".to_string()));

    // A custom token path is honoured.
    let mut req = cr_json(
        "custom-path",
        "my-operator-ns",
        "custom-path",
        json!({"kind": "AWSProviderSpec", "stsIAMRoleARN": ROLE}),
    );
    req["spec"]["cloudTokenPath"] = json!("/custom/token");
    create_cr(&env.admin, OPERATOR_NS, req).await?;
    let data = wait_secret(&env.admin, "my-operator-ns", "custom-path").await?;
    assert!(data["credentials"].ends_with("web_identity_token_file = /custom/token"));

    // Missing target namespace: reported, then provisioned by itself once the namespace appears.
    create_cr(
        &env.admin,
        OPERATOR_NS,
        cr_json(
            "later",
            "later-ns",
            "later",
            json!({"kind": "AWSProviderSpec", "stsIAMRoleARN": ROLE}),
        ),
    )
    .await?;
    wait_cr(&env.admin, "later", "MissingTargetNamespace", |c| {
        condition(c, "MissingTargetNamespace")
            == Some(("True".into(), Some("NamespaceMissing".into())))
    })
    .await?;
    // Token mode is Manual mode: as the reference, the failing and unprovisioned request neither
    // degrades nor progresses the operator (checked after a full status pass that saw it).
    let seen = status_passes(&op.metrics);
    wait_until(Duration::from_secs(20), || async {
        Ok(status_passes(&op.metrics) >= seen + 2)
    })
    .await?;
    for t in ["Degraded", "Progressing"] {
        let (status, reason, _) = wait_co_condition(&env.admin, t, |_, _, _| true).await?;
        assert_eq!(
            (status.as_str(), reason.as_deref()),
            ("False", Some("AsExpected")),
            "{t} in token mode with a request missing its namespace"
        );
    }
    create_namespace(&env.admin, "later-ns").await?;
    wait_secret(&env.admin, "later-ns", "later").await?;
    let cr = wait_cr(&env.admin, "later", "namespace found", |c| {
        c.status.as_ref().is_some_and(|s| s.provisioned)
            && condition(c, "MissingTargetNamespace")
                == Some(("False".into(), Some("NamespaceExists".into())))
    })
    .await?;
    assert!(cr.status.unwrap().provisioned);

    // Another platform's request is Ignored; a request without token fields is left alone.
    create_cr(
        &env.admin,
        OPERATOR_NS,
        cr_json(
            "gcp-one",
            "my-operator-ns",
            "gcp-one",
            json!({"kind": "GCPProviderSpec", "predefinedRoles": ["roles/viewer"]}),
        ),
    )
    .await?;
    wait_cr(&env.admin, "gcp-one", "Ignored", |c| {
        condition(c, "Ignored") == Some(("True".into(), Some("InfrastructureMismatch".into())))
    })
    .await?;
    create_cr(
        &env.admin,
        OPERATOR_NS,
        cr_json(
            "no-role",
            "my-operator-ns",
            "no-role",
            json!({"kind": "AWSProviderSpec", "statementEntries": []}),
        ),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        Api::<Secret>::namespaced(env.admin.clone(), "my-operator-ns")
            .get_opt("no-role")
            .await?
            .is_none()
    );
    assert!(get_cr(&env.admin, "no-role").await?.status.is_none());

    // ClusterOperator, Lease and metrics.
    let co = wait_until(Duration::from_secs(20), || async {
        let api: Api<cco_operator::openshift::ClusterOperator> = Api::all(env.admin.clone());
        Ok(api
            .get_opt("cloud-credential")
            .await?
            .and_then(|c| c.status)
            .is_some_and(|s| {
                s.conditions.len() == 4
                    && s.conditions
                        .iter()
                        .any(|c| c.type_ == "Available" && c.status == "True")
                    && s.conditions
                        .iter()
                        .any(|c| c.type_ == "Progressing" && c.status == "False")
            }))
    })
    .await;
    co?;
    let lease = Api::<Lease>::namespaced(env.admin.clone(), OPERATOR_NS)
        .get("cloud-credential-operator-leader")
        .await?;
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("test-operator")
    );
    let reader = metrics_reader_token(&env.admin, "prometheus-for-tests").await?;
    let (status, m) = https_get(port, "/metrics", Some(&reader), &ca).await?;
    assert_eq!(status, 200, "{m}");
    assert!(
        m.contains("cco_credentials_mode{mode=\"manualpodidentity\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("cco_credentials_requests{cloud_type=\"aws\"}"),
        "{m}"
    );
    assert!(
        m.contains("cco_controller_reconcile_seconds_count{controller=\"credreq\"}"),
        "{m}"
    );
    assert!(
        m.contains("cco_credentials_requests_conditions{condition=\"MissingTargetNamespace\"}"),
        "{m}"
    );

    // Deletion: the finalizer removes our Secret, then the request goes away.
    Api::<CredentialsRequest>::namespaced(env.admin.clone(), OPERATOR_NS)
        .delete("my-operator-creds", &DeleteParams::default())
        .await?;
    wait_until(Duration::from_secs(20), || async {
        let s = Api::<Secret>::namespaced(env.admin.clone(), "my-operator-ns")
            .get_opt("my-operator-secret")
            .await?;
        let c = Api::<CredentialsRequest>::namespaced(env.admin.clone(), OPERATOR_NS)
            .get_opt("my-operator-creds")
            .await?;
        Ok(s.is_none() && c.is_none())
    })
    .await?;

    // GCP with workload identity.
    set_platform(&env.admin, "GCP").await?;
    create_cr(&env.admin, OPERATOR_NS, cr_json("gcp-wi", "my-operator-ns", "gcp-wi", json!({"kind": "GCPProviderSpec",
        "serviceAccountEmail": "sa-1@proj.iam.gserviceaccount.com",
        "audience": "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/prov"}))).await?;
    let data = wait_secret(&env.admin, "my-operator-ns", "gcp-wi").await?;
    let sa: serde_json::Value = serde_json::from_str(&data["service_account.json"])?;
    assert_eq!(sa["type"], "external_account");
    assert_eq!(sa["audience"], "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/prov");
    assert_eq!(sa["credential_source"]["file"], TOKEN);
    assert!(sa["service_account_impersonation_url"]
        .as_str()
        .unwrap()
        .contains("sa-1@proj.iam.gserviceaccount.com:generateAccessToken"));
    wait_cr(
        &env.admin,
        "custom-path",
        "AWS request ignored on GCP",
        |c| condition(c, "Ignored").is_some_and(|(s, _)| s == "True"),
    )
    .await?;

    // Azure with workload identity.
    set_platform(&env.admin, "Azure").await?;
    let mut req = cr_json(
        "azure-wi",
        "my-operator-ns",
        "azure-wi",
        json!({"kind": "AzureProviderSpec",
        "azureClientID": "client", "azureTenantID": "tenant", "azureRegion": "eastus", "azureSubscriptionID": "sub"}),
    );
    req["spec"]["cloudTokenPath"] = json!("/var/run/secrets/azure/token");
    create_cr(&env.admin, OPERATOR_NS, req).await?;
    let data = wait_secret(&env.admin, "my-operator-ns", "azure-wi").await?;
    let want: std::collections::BTreeMap<String, String> = [
        ("azure_client_id", "client"),
        ("azure_tenant_id", "tenant"),
        ("azure_region", "eastus"),
        ("azure_subscription_id", "sub"),
        ("azure_federated_token_file", "/var/run/secrets/azure/token"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(data, want);

    // Graceful shutdown releases the Lease.
    op.stop().await?;
    let lease = Api::<Lease>::namespaced(env.admin.clone(), OPERATOR_NS)
        .get("cloud-credential-operator-leader")
        .await?;
    assert_eq!(lease.spec.unwrap().holder_identity, None);
    Ok(())
}
