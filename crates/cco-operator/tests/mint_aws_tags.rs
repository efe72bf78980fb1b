//! AWS Mint tags, against the AWS emulator (moto) and a real API server: a minted user carries the
//! cluster tag (`kubernetes.io/cluster/<infrastructureName>=owned`) and the Infrastructure's AWS
//! resource tags; the request records the Infrastructure resourceVersion it was synced under
//! (`lastSyncInfrastructureResourceVersion`), and a change of the resource tags re-syncs every
//! request (within the sync period) so the user is tagged again, without a new key. Without an
//! infrastructure name, the legacy `openshiftClusterID` tag.
#![allow(clippy::unwrap_used)]

use crate::common;

use cco_testsupport::moto::Moto;
use common::*;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;

async fn infra_api(c: &kube::Client) -> anyhow::Result<Api<DynamicObject>> {
    let gvk = kube::core::GroupVersionKind::gvk("config.openshift.io", "v1", "Infrastructure");
    let (ar, _) = kube::discovery::pinned_kind(c, &gvk).await?;
    Ok(Api::all_with(c.clone(), &ar))
}

/// Sets the Infrastructure's AWS resource tags; returns its new resourceVersion.
async fn set_resource_tags(c: &kube::Client, tags: &[(&str, &str)]) -> anyhow::Result<String> {
    let tags: Vec<_> = tags
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let patch = json!({"status": {"platformStatus": {"type": "AWS",
        "aws": {"region": "us-east-1", "resourceTags": tags}}}});
    let o = infra_api(c)
        .await?
        .patch_status("cluster", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(o.metadata.resource_version.unwrap())
}

fn infra_rv_of(cr: &cco_api::CredentialsRequest) -> Option<String> {
    cr.status
        .as_ref()
        .and_then(|s| s.last_sync_infrastructure_resource_version.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_users_carry_the_cluster_and_resource_tags_and_follow_tag_changes(
) -> anyhow::Result<()> {
    init_logs();
    let moto = Moto::start()?;
    let env = start().await?;
    set_cluster(&env.admin, "Mint", "AWS", "").await?;
    let rv1 = set_resource_tags(&env.admin, &[("team", "storage"), ("cost", "1")]).await?;
    create_namespace(&env.admin, "components").await?;
    put_root_secret(
        &env.admin,
        "aws-creds",
        &[
            ("aws_access_key_id", "AKIAROOTEXAMPLE00007"),
            ("aws_secret_access_key", "root-secret-value-tags-012345"),
        ],
    )
    .await?;
    create_cr(
        &env.admin,
        OPERATOR_NS,
        s3_reader_request("tagged", "components"),
    )
    .await?;
    let mut settings = test_settings();
    settings.aws_endpoint = Some(moto.endpoint.clone());
    let op = spawn_operator(operator_client(&env).await?, settings);
    let iam = moto_iam(&moto).await;

    let data = wait_secret(&env.admin, "components", "tagged").await?;
    let cr = wait_cr(&env.admin, "tagged", "provisioned", |c| {
        c.status.as_ref().is_some_and(|s| s.provisioned)
    })
    .await?;
    assert_eq!(infra_rv_of(&cr).as_deref(), Some(rv1.as_str()));
    let user = cr.status.unwrap().provider_status.unwrap()["user"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tags = iam.get_user(&user).await?.unwrap().tags;
    tags.sort();
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v: Vec<_> = v
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        tags,
        pairs(&[
            ("cost", "1"),
            ("kubernetes.io/cluster/test-infra", "owned"),
            ("team", "storage"),
        ])
    );

    // The resource tags change: the request is synced again and the user tagged.
    let rv2 = set_resource_tags(&env.admin, &[("team", "compute"), ("owner", "ops")]).await?;
    let cr = wait_cr(
        &env.admin,
        "tagged",
        "synced under the new Infrastructure",
        |c| infra_rv_of(c).as_deref() == Some(rv2.as_str()),
    )
    .await?;
    assert!(cr.status.unwrap().provisioned);
    let tags = iam.get_user(&user).await?.unwrap().tags;
    for t in pairs(&[
        ("team", "compute"),
        ("owner", "ops"),
        ("kubernetes.io/cluster/test-infra", "owned"),
    ]) {
        assert!(tags.contains(&t), "{t:?} missing from {tags:?}");
    }
    // Same key, same Secret.
    assert_eq!(
        iam.list_access_keys(&user).await?,
        vec![data["aws_access_key_id"].clone()]
    );
    assert_eq!(wait_secret(&env.admin, "components", "tagged").await?, data);
    op.stop().await?;
    Ok(())
}

/// A cluster from before Infrastructure had `status.infrastructureName`: as the reference, minted
/// users carry the legacy tag `openshiftClusterID=<ClusterVersion spec.clusterID>` instead of the
/// cluster tag (its cleanup finds them by it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_infrastructure_name_users_carry_the_legacy_cluster_id_tag() -> anyhow::Result<()>
{
    init_logs();
    let moto = Moto::start()?;
    let env = start().await?;
    set_cluster(&env.admin, "Mint", "AWS", "").await?;
    infra_api(&env.admin)
        .await?
        .patch_status(
            "cluster",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"infrastructureName": null}})),
        )
        .await?;
    create_namespace(&env.admin, "components").await?;
    put_root_secret(
        &env.admin,
        "aws-creds",
        &[
            ("aws_access_key_id", "AKIAROOTEXAMPLE00008"),
            ("aws_secret_access_key", "root-secret-value-legacy-0123"),
        ],
    )
    .await?;
    create_cr(
        &env.admin,
        OPERATOR_NS,
        s3_reader_request("legacy", "components"),
    )
    .await?;
    let mut settings = test_settings();
    settings.aws_endpoint = Some(moto.endpoint.clone());
    let op = spawn_operator(operator_client(&env).await?, settings);
    let iam = moto_iam(&moto).await;
    wait_secret(&env.admin, "components", "legacy").await?;
    let user = provisioned_user(&env.admin, "legacy").await?;
    assert!(user.starts_with("legacy-"), "{user}");
    let tags = iam.get_user(&user).await?.unwrap().tags;
    assert_eq!(
        tags,
        vec![(
            "openshiftClusterID".to_string(),
            "00000000-0000-0000-0000-000000000001".to_string()
        )]
    );
    op.stop().await?;
    Ok(())
}
