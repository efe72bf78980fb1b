//! Secrets an older operator wrote before target Secrets were labelled (they carry the
//! `cloudcredential.openshift.io/credentials-request` annotation but not the
//! `cloudcredential.openshift.io/credentials-request: "true"` label, so the label-filtered Secret
//! watch cannot see them) are labelled when the operator starts, as the reference's
//! secret-missing-label controller does; a wrong label value is corrected; Secrets that are not
//! the operator's are left alone; the contents are never touched. Real API server, operator running
//! as its own ServiceAccount.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, ObjectMeta, PostParams};

const LABEL: &str = "cloudcredential.openshift.io/credentials-request";
const ANNOTATION: &str = "cloudcredential.openshift.io/credentials-request";

fn secret(name: &str, annotated: bool, label: Option<&str>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations: annotated.then(|| {
                BTreeMap::from([(ANNOTATION.to_string(), format!("{OPERATOR_NS}/{name}"))])
            }),
            labels: label.map(|v| BTreeMap::from([(LABEL.to_string(), v.to_string())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "key".to_string(),
            ByteString(format!("value-of-{name}").into_bytes()),
        )])),
        ..Default::default()
    }
}

fn label_of(s: &Secret) -> Option<String> {
    s.metadata.labels.as_ref()?.get(LABEL).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_written_before_labelling_are_labelled_at_start() -> anyhow::Result<()> {
    init_logs();
    let env = start().await?;
    set_cluster(&env.admin, "Passthrough", "AWS", "").await?;
    let mut names = Vec::new();
    for ns in ["old-a", "old-b"] {
        create_namespace(&env.admin, ns).await?;
        let api: Api<Secret> = Api::namespaced(env.admin.clone(), ns);
        for (name, annotated, label) in [
            ("old-unlabelled", true, None),
            ("old-wrong-value", true, Some("false")),
            ("already-labelled", true, Some("true")),
            ("not-ours", false, None),
        ] {
            api.create(&PostParams::default(), &secret(name, annotated, label))
                .await?;
            names.push((ns, name));
        }
    }
    let op = spawn_operator(operator_client(&env).await?, test_settings());

    wait_until(Duration::from_secs(30), || async {
        let mut all = true;
        for ns in ["old-a", "old-b"] {
            let api: Api<Secret> = Api::namespaced(env.admin.clone(), ns);
            for name in ["old-unlabelled", "old-wrong-value"] {
                all &= label_of(&api.get(name).await?).as_deref() == Some("true");
            }
        }
        Ok(all)
    })
    .await?;
    for (ns, name) in names {
        let s = Api::<Secret>::namespaced(env.admin.clone(), ns)
            .get(name)
            .await?;
        let want = match name {
            "not-ours" => None,
            _ => Some("true".to_string()),
        };
        assert_eq!(label_of(&s), want, "{ns}/{name}");
        assert_eq!(
            s.data.unwrap()["key"].0,
            format!("value-of-{name}").into_bytes(),
            "{ns}/{name}: contents untouched"
        );
    }
    op.stop().await?;
    Ok(())
}
