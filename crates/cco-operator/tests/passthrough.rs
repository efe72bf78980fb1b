//! Passthrough mode on every cloud that has it (AWS, GCP, Azure, OpenStack, vSphere, oVirt, KubeVirt),
//! in the seeds/002 formats, against a real API server with the operator running as its own
//! ServiceAccount (OpenStack: the root Secret's CA path and CA bundle fixed up as the reference
//! does, then clouds.yaml and cacert passed through). Also: the root Secret's mode annotation, root credential changes reaching the
//! target Secret, InsufficientCloudCreds for a root credential missing a key, the Degraded
//! ClusterOperator that follows, and a request marked for removal being deleted.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cco_api::CredentialsRequest;
use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams};
use serde_json::json;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const CA_BUNDLE: &str = "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n";
const OPENSTACK_FIXED: &str = "clouds:\n  openstack:\n    auth: {}\n    cacert: /etc/kubernetes/static-pod-resources/configmaps/cloud-config/ca-bundle.pem\n";

struct Cloud {
    platform: &'static str,
    root: &'static str,
    kind: &'static str,
    root_data: Vec<(&'static str, &'static str)>,
    want: Vec<(&'static str, &'static str)>,
}

fn clouds() -> Vec<Cloud> {
    let sa = r#"{"type":"service_account","project_id":"p","private_key_id":"k","client_email":"a@p.iam.gserviceaccount.com"}"#;
    let azure = vec![
        ("azure_subscription_id", "sub"),
        ("azure_client_id", "client"),
        ("azure_client_secret", "azure-secret-value"),
        ("azure_tenant_id", "tenant"),
        ("azure_resource_prefix", "mycluster-2mpcn"),
        ("azure_resourcegroup", "mycluster-2mpcn-rg"),
        ("azure_region", "eastus"),
    ];
    let ovirt = vec![
        ("ovirt_url", "https://engine/ovirt-engine/api"),
        ("ovirt_username", "admin@internal"),
        ("ovirt_password", "ovirt-password-value"),
        ("ovirt_insecure", "false"),
        ("ovirt_ca_bundle", "-----BEGIN CERTIFICATE-----"),
    ];
    let vsphere = vec![
        (
            "vsphere.openshift.example.com.username",
            "administrator@vsphere.local",
        ),
        (
            "vsphere.openshift.example.com.password",
            "vsphere-password-value",
        ),
    ];
    vec![
        Cloud {
            platform: "AWS",
            root: "aws-creds",
            kind: "AWSProviderSpec",
            root_data: vec![("aws_access_key_id", "AKIAROOT"), ("aws_secret_access_key", "root-secret-value")],
            want: vec![
                ("aws_access_key_id", "AKIAROOT"),
                ("aws_secret_access_key", "root-secret-value"),
                ("credentials", "[default]\naws_access_key_id = AKIAROOT\naws_secret_access_key = root-secret-value"),
            ],
        },
        Cloud { platform: "GCP", root: "gcp-credentials", kind: "GCPProviderSpec", root_data: vec![("service_account.json", sa)], want: vec![("service_account.json", sa)] },
        Cloud { platform: "Azure", root: "azure-credentials", kind: "AzureProviderSpec", root_data: azure.clone(), want: azure },
        Cloud {
            platform: "OpenStack",
            root: "openstack-credentials",
            kind: "OpenStackProviderSpec",
            // The CA path in clouds.yaml is fixed and the CA bundle of cloud-provider-config
            // copied in (both in the root Secret); clouds.yaml and cacert are passed through.
            root_data: vec![("clouds.yaml", "clouds:\n  openstack:\n    auth: {}\n    cacert: /etc/openstack/ca.pem\n"), ("clouds.conf", "[Global]\n")],
            want: vec![("clouds.yaml", OPENSTACK_FIXED), ("cacert", CA_BUNDLE)],
        },
        Cloud { platform: "VSphere", root: "vsphere-creds", kind: "VSphereProviderSpec", root_data: vsphere.clone(), want: vsphere },
        Cloud { platform: "oVirt", root: "ovirt-credentials", kind: "OvirtProviderSpec", root_data: ovirt.clone(), want: ovirt },
        Cloud {
            platform: "KubeVirt",
            root: "kubevirt-credentials",
            kind: "KubevirtProviderSpec",
            root_data: vec![("kubeconfig", "apiVersion: v1\nkind: Config\n")],
            want: vec![("kubeconfig", "apiVersion: v1\nkind: Config\n")],
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_copies_each_clouds_root_credential_in_its_format() -> anyhow::Result<()> {
    let env = start().await?;
    set_cluster(&env.admin, "Passthrough", "AWS", "").await?;
    create_namespace(&env.admin, "components").await?;
    // OpenStack's CA bundle, where OpenShift keeps it.
    create_namespace(&env.admin, "openshift-config").await?;
    Api::<ConfigMap>::namespaced(env.admin.clone(), "openshift-config")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "cloud-provider-config"},
                "data": {"ca-bundle.pem": CA_BUNDLE, "config": "[Global]\n"}}))?,
        )
        .await?;
    let mut settings = test_settings();
    // A failing request counts toward Degraded only after this long (the reference: 5 minutes).
    settings.credentials_degraded_grace = Duration::from_secs(6);
    let op = spawn_operator(operator_client(&env).await?, settings);

    for c in clouds() {
        set_platform(&env.admin, c.platform).await?;
        put_root_secret(&env.admin, c.root, &c.root_data).await?;
        let name = format!("pt-{}", c.platform.to_lowercase());
        create_cr(
            &env.admin,
            OPERATOR_NS,
            cr_json(&name, "components", &name, json!({"kind": c.kind})),
        )
        .await?;
        // The first copy may be of the root credential before its upkeep (OpenStack).
        let want = map(&c.want);
        let deadline = Instant::now() + Duration::from_secs(20);
        let got = loop {
            let got = wait_secret(&env.admin, "components", &name).await?;
            if got == want || Instant::now() > deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(got, want, "{} passthrough format", c.platform);
        wait_cr(&env.admin, &name, "provisioned", |cr| {
            cr.status.as_ref().is_some_and(|s| s.provisioned)
        })
        .await?;
        // The root Secret is annotated with the mode.
        wait_until(Duration::from_secs(10), || async {
            let s = Api::<Secret>::namespaced(env.admin.clone(), "kube-system")
                .get(c.root)
                .await?;
            Ok(s.metadata
                .annotations
                .unwrap_or_default()
                .get("cloudcredential.openshift.io/mode")
                .map(String::as_str)
                == Some("passthrough"))
        })
        .await?;
        if c.platform == "OpenStack" {
            let root = Api::<Secret>::namespaced(env.admin.clone(), "kube-system")
                .get(c.root)
                .await?;
            let data = root.data.unwrap_or_default();
            assert_eq!(data["clouds.yaml"].0, OPENSTACK_FIXED.as_bytes());
            assert_eq!(data["cacert"].0, CA_BUNDLE.as_bytes());
            assert_eq!(data["clouds.conf"].0, b"[Global]\n", "other keys kept");
        }
    }

    // A root credential change reaches the target Secret (KubeVirt is the current platform).
    put_root_secret(
        &env.admin,
        "kubevirt-credentials",
        &[("kubeconfig", "rotated")],
    )
    .await?;
    wait_until(Duration::from_secs(20), || async {
        Ok(wait_secret(&env.admin, "components", "pt-kubevirt")
            .await?
            .get("kubeconfig")
            .map(String::as_str)
            == Some("rotated"))
    })
    .await?;

    // A root credential missing a key: InsufficientCloudCreds, and the operator is Degraded.
    set_platform(&env.admin, "oVirt").await?;
    put_root_secret(
        &env.admin,
        "ovirt-credentials",
        &[
            ("ovirt_url", "https://e"),
            ("ovirt_username", "u"),
            ("ovirt_insecure", "true"),
        ],
    )
    .await?;
    create_cr(
        &env.admin,
        OPERATOR_NS,
        cr_json(
            "pt-ovirt-bad",
            "components",
            "pt-ovirt-bad",
            json!({"kind": "OvirtProviderSpec"}),
        ),
    )
    .await?;
    let cr = wait_cr(&env.admin, "pt-ovirt-bad", "InsufficientCloudCreds", |c| {
        condition(c, "InsufficientCloudCreds").is_some_and(|(s, _)| s == "True")
    })
    .await?;
    let failed_at: k8s_openapi::jiff::Timestamp = cr
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "InsufficientCloudCreds")
        .and_then(|c| c.last_transition_time.as_deref())
        .unwrap()
        .parse()?;
    assert!(!cr.status.unwrap().provisioned);
    let degraded = || async {
        let api: Api<cco_operator::openshift::ClusterOperator> = Api::all(env.admin.clone());
        Ok::<_, anyhow::Error>(
            api.get_opt("cloud-credential")
                .await?
                .and_then(|c| c.status)
                .and_then(|s| {
                    s.conditions.into_iter().find(|c| {
                        c.type_ == "Degraded"
                            && c.status == "True"
                            && c.reason.as_deref() == Some("CredentialsFailing")
                    })
                }),
        )
    };
    wait_until(Duration::from_secs(30), || async {
        Ok(degraded().await?.is_some())
    })
    .await?;
    // relatedObjects name each request of the operator's namespace (what must-gather collects).
    wait_until(Duration::from_secs(20), || async {
        let api: Api<cco_operator::openshift::ClusterOperator> = Api::all(env.admin.clone());
        Ok(api
            .get_opt("cloud-credential")
            .await?
            .and_then(|c| c.status)
            .is_some_and(|s| {
                s.related_objects.iter().any(|r| {
                    r.resource == "credentialsrequests"
                        && r.group == "cloudcredential.openshift.io"
                        && r.namespace.as_deref() == Some(OPERATOR_NS)
                        && r.name == "pt-ovirt-bad"
                })
            }))
    })
    .await?;
    // Not at once: only when the failure had lasted the grace period (second precision).
    let since: k8s_openapi::jiff::Timestamp =
        degraded().await?.unwrap().last_transition_time.parse()?;
    let waited = since.duration_since(failed_at).as_secs();
    assert!(
        (5..=12).contains(&waited),
        "Degraded {waited}s after the failure"
    );

    // A request removed from the release payload is deleted (and its Secret with it).
    let mut stale = cr_json(
        "pt-stale",
        "components",
        "pt-stale",
        json!({"kind": "KubevirtProviderSpec"}),
    );
    stale["metadata"]["annotations"] = json!({"release.openshift.io/delete": "true"});
    create_cr(&env.admin, OPERATOR_NS, stale).await?;
    wait_until(Duration::from_secs(20), || async {
        Ok(
            Api::<CredentialsRequest>::namespaced(env.admin.clone(), OPERATOR_NS)
                .get_opt("pt-stale")
                .await?
                .is_none(),
        )
    })
    .await?;

    op.stop().await?;
    Ok(())
}
