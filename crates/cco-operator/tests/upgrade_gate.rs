//! The upgrade gate (seeds/002) on a real API server, with the operator running as its own
//! ServiceAccount: in Manual/token mode Upgradeable stays False until CloudCredential `cluster` is
//! annotated `cloudcredential.openshift.io/upgradeable-to` with the next minor of ClusterVersion
//! `version`; token mode's Available reads "disabled by the admin"; Mint with the root credential
//! removed blocks upgrades unless annotated; a missing ClusterVersion is an error.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::*;
use kube::api::{Api, DynamicObject, Patch, PatchParams};

async fn annotate(c: &kube::Client, value: Option<&str>) -> anyhow::Result<()> {
    let gvk = kube::core::GroupVersionKind::gvk("operator.openshift.io", "v1", "CloudCredential");
    let (ar, _) = kube::discovery::pinned_kind(c, &gvk).await?;
    let api: Api<DynamicObject> = Api::all_with(c.clone(), &ar);
    let patch = serde_json::json!({"metadata": {"annotations":
        {"cloudcredential.openshift.io/upgradeable-to": value}}});
    api.patch("cluster", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgradeable_follows_the_admin_annotation_and_the_cluster_version() -> anyhow::Result<()> {
    let env = start().await?;
    set_cluster(
        &env.admin,
        "Manual",
        "AWS",
        "https://oidc.example.com/cluster",
    )
    .await?;
    let op = spawn_operator(operator_client(&env).await?, test_settings());

    // Token mode: the operator is "disabled by the admin", and upgrades wait for the annotation.
    let (_, _, msg) = wait_co_condition(&env.admin, "Upgradeable", |s, r, _| {
        s == "False" && r == Some("MissingUpgradeableAnnotation")
    })
    .await?;
    assert_eq!(
        msg.as_deref(),
        Some("Upgradeable annotation cloudcredential.openshift.io/upgradeable-to on cloudcredential.operator.openshift.io/cluster object needs updating before upgrade. See Manually Creating IAM documentation for instructions on preparing a cluster for upgrade.")
    );
    let (_, _, msg) = wait_co_condition(&env.admin, "Available", |s, r, _| {
        s == "True" && r == Some("OperatorDisabledByAdmin")
    })
    .await?;
    assert_eq!(
        msg.as_deref(),
        Some("Credential minting is disabled by cluster admin")
    );

    // The current minor does not open the gate; the next one does.
    annotate(&env.admin, Some("4.15")).await?;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    wait_co_condition(&env.admin, "Upgradeable", |s, r, _| {
        s == "False" && r == Some("MissingUpgradeableAnnotation")
    })
    .await?;
    annotate(&env.admin, Some("4.16")).await?;
    wait_co_condition(&env.admin, "Upgradeable", |s, r, _| {
        s == "True" && r == Some("AsExpected")
    })
    .await?;

    // The cluster upgraded to 4.16: the annotation no longer covers the next minor.
    set_cluster_version(&env.admin, "4.16.2").await?;
    wait_co_condition(&env.admin, "Upgradeable", |s, r, _| {
        s == "False" && r == Some("MissingUpgradeableAnnotation")
    })
    .await?;

    // Mint with the root credential removed: upgrades wait for it, unless the admin says otherwise.
    annotate(&env.admin, None).await?;
    set_cluster(&env.admin, "Mint", "AWS", "").await?;
    let (_, _, msg) = wait_co_condition(&env.admin, "Upgradeable", |s, r, _| {
        s == "False" && r == Some("MissingRootCredential")
    })
    .await?;
    assert_eq!(
        msg.as_deref(),
        Some("Parent credentials secret must be restored prior to upgrade: kube-system/aws-creds")
    );
    wait_co_condition(&env.admin, "Available", |s, r, _| {
        s == "True" && r == Some("AsExpected")
    })
    .await?;
    annotate(&env.admin, Some("4.16")).await?;
    wait_co_condition(&env.admin, "Upgradeable", |s, _, _| s == "True").await?;

    // No ClusterVersion: the gate cannot decide and blocks.
    let gvk = kube::core::GroupVersionKind::gvk("config.openshift.io", "v1", "ClusterVersion");
    let (ar, _) = kube::discovery::pinned_kind(&env.admin, &gvk).await?;
    Api::<DynamicObject>::all_with(env.admin.clone(), &ar)
        .delete("version", &Default::default())
        .await?;
    let (_, _, msg) = wait_co_condition(&env.admin, "Upgradeable", |s, r, _| {
        s == "False" && r == Some("ErrorDeterminingUpgradeable")
    })
    .await?;
    assert!(msg
        .unwrap()
        .starts_with("Error getting ClusterVersion while determining upgradability"));

    op.stop().await?;
    Ok(())
}

/// The status loop and the pod identity webhook controller both wait for the configuration caches
/// (ClusterVersion, APIServer, the Azure credentials Secret). Every waiter must be released: the
/// stores' own `wait_until_ready` wakes only its latest poller, and the other one slept until its
/// timeout (the first ClusterOperator status came a second late).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_waiter_sees_the_configuration_caches_ready() -> anyhow::Result<()> {
    let env = start().await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (config, driver, _changes) = cco_operator::config_watch::start(&env.admin, async move {
        let _ = stop_rx.await;
    });
    // Every waiter polls before the driver runs, so all of them wait on the first list.
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let config = config.clone();
            tokio::spawn(async move { config.wait_ready().await })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let driver = tokio::spawn(driver);
    for (i, w) in waiters.into_iter().enumerate() {
        tokio::time::timeout(std::time::Duration::from_secs(30), w)
            .await
            .unwrap_or_else(|_| panic!("waiter {i} was never released"))??;
    }
    // A waiter that comes after the first list returns at once.
    config.wait_ready().await?;
    let _ = stop_tx.send(());
    driver.await?;
    Ok(())
}
