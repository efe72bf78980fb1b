//! A permission the operator lacks makes it fail, visibly: the operator is run as a ServiceAccount
//! bound to deploy/operator's ClusterRole minus the right to write Secrets, and the request is never
//! provisioned while the failure is counted in `cco_controller_reconcile_errors` as a 403. (Every
//! other integration test runs the operator under the full role, so a rule missing there fails them.)
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_right_to_write_secrets_nothing_is_provisioned() -> anyhow::Result<()> {
    let env = start().await?;
    set_cluster(&env.admin, "Manual", "AWS", "https://oidc.example.com").await?;
    create_namespace(&env.admin, "components").await?;

    let full: ClusterRole = Api::all(env.admin.clone())
        .get("cloud-credential-operator")
        .await?;
    let mut limited = full.clone();
    limited.metadata = ObjectMeta {
        name: Some("cco-limited".into()),
        ..Default::default()
    };
    for r in limited.rules.iter_mut().flatten() {
        if r.resources
            .as_ref()
            .is_some_and(|v| v.iter().any(|x| x == "secrets"))
        {
            r.verbs.retain(|v| v != "create" && v != "patch");
        }
    }
    Api::<ClusterRole>::all(env.admin.clone())
        .create(&PostParams::default(), &limited)
        .await?;
    let sa: ServiceAccount = serde_json::from_value(
        json!({"metadata": {"name": "cco-limited", "namespace": OPERATOR_NS}}),
    )?;
    Api::<ServiceAccount>::namespaced(env.admin.clone(), OPERATOR_NS)
        .create(&PostParams::default(), &sa)
        .await?;
    let subject =
        json!([{"kind": "ServiceAccount", "name": "cco-limited", "namespace": OPERATOR_NS}]);
    let crb: ClusterRoleBinding = serde_json::from_value(
        json!({"metadata": {"name": "cco-limited"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cco-limited"}, "subjects": subject}),
    )?;
    Api::<ClusterRoleBinding>::all(env.admin.clone())
        .create(&PostParams::default(), &crb)
        .await?;
    let rb: RoleBinding = serde_json::from_value(
        json!({"metadata": {"name": "cco-limited", "namespace": OPERATOR_NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cloud-credential-operator-leader-election"}, "subjects": subject}),
    )?;
    Api::<RoleBinding>::namespaced(env.admin.clone(), OPERATOR_NS)
        .create(&PostParams::default(), &rb)
        .await?;

    let op = spawn_operator(sa_client(&env, "cco-limited").await?, test_settings());
    create_cr(
        &env.admin,
        OPERATOR_NS,
        cr_json(
            "denied",
            "components",
            "denied",
            json!({"kind": "AWSProviderSpec", "stsIAMRoleARN": "arn:aws:iam::1:role/r"}),
        ),
    )
    .await?;
    wait_until(Duration::from_secs(20), || async {
        Ok(op.metrics.encode().contains("error=\"apply:403\""))
    })
    .await?;
    assert!(Api::<Secret>::namespaced(env.admin.clone(), "components")
        .get_opt("denied")
        .await?
        .is_none());
    assert!(!get_cr(&env.admin, "denied")
        .await?
        .status
        .is_some_and(|s| s.provisioned));
    op.stop().await?;
    Ok(())
}
