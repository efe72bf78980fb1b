//! Leader election on a Lease: of two operators only the holder works; when it shuts down gracefully
//! it releases the Lease and the other one takes over at once and carries on.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::json;

async fn holder(c: &kube::Client) -> anyhow::Result<Option<String>> {
    Ok(Api::<Lease>::namespaced(c.clone(), OPERATOR_NS)
        .get_opt("cloud-credential-operator-leader")
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_works_and_a_successor_takes_over() -> anyhow::Result<()> {
    let env = start().await?;
    set_cluster(&env.admin, "Manual", "AWS", "https://oidc.example.com").await?;
    create_namespace(&env.admin, "components").await?;
    let mut a_settings = test_settings();
    a_settings.identity = "replica-a".into();
    let a = spawn_operator(operator_client(&env).await?, a_settings);
    wait_until(Duration::from_secs(20), || async {
        Ok(holder(&env.admin).await?.as_deref() == Some("replica-a"))
    })
    .await?;
    let mut b_settings = test_settings();
    b_settings.identity = "replica-b".into();
    let b = spawn_operator(operator_client(&env).await?, b_settings);

    let arn = json!({"kind": "AWSProviderSpec", "stsIAMRoleARN": "arn:aws:iam::1:role/r"});
    create_cr(
        &env.admin,
        OPERATOR_NS,
        cr_json("first", "components", "first", arn.clone()),
    )
    .await?;
    wait_secret(&env.admin, "components", "first").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        holder(&env.admin).await?.as_deref(),
        Some("replica-a"),
        "the standby does not take the lease"
    );
    assert!(
        !b.metrics.encode().contains("controller=\"credreq\""),
        "the standby does not reconcile"
    );

    a.stop().await?;
    wait_until(Duration::from_secs(20), || async {
        Ok(holder(&env.admin).await?.as_deref() == Some("replica-b"))
    })
    .await?;
    create_cr(
        &env.admin,
        OPERATOR_NS,
        cr_json("second", "components", "second", arn),
    )
    .await?;
    wait_secret(&env.admin, "components", "second").await?;
    b.stop().await?;
    Ok(())
}
