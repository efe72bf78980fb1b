//! The deployment manifests: the CredentialsRequest CRD is generated from cco-api and committed up
//! to date, every manifest applies to a real API server, every corpus request is accepted by our CRD,
//! and the ServiceAccount's RBAC is least privilege (checked with SubjectAccessReview).
//!
//! Regenerate the CRD with `CCO_UPDATE_CRD=1 cargo test -p cco-operator --test it deploy::`.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;

use cco_api::CredentialsRequest;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use kube::CustomResourceExt;

const CRD_FILE: &str = "01-crd-credentialsrequests.yaml";

fn generated_crd() -> String {
    let crd = CredentialsRequest::crd();
    format!(
        "# Generated from crates/cco-api by `CCO_UPDATE_CRD=1 cargo test -p cco-operator --test it deploy::`.\n{}",
        serde_yaml::to_string(&crd).unwrap()
    )
}

#[test]
fn credentials_request_crd_is_generated_and_up_to_date() {
    let path = common::deploy_dir().join(CRD_FILE);
    let want = generated_crd();
    if std::env::var_os("CCO_UPDATE_CRD").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is stale; run CCO_UPDATE_CRD=1 cargo test -p cco-operator --test it deploy::",
        path.display()
    );
}

fn corpus_requests() -> Vec<serde_json::Value> {
    let dir = cco_testsupport::corpus_dir().join("credreqs");
    let mut out = Vec::new();
    let mut clouds: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    clouds.sort_by_key(|e| e.path());
    for cloud in clouds.into_iter().filter(|e| e.path().is_dir()) {
        let mut files: Vec<_> = std::fs::read_dir(cloud.path()).unwrap().flatten().collect();
        files.sort_by_key(|e| e.path());
        for f in files {
            let p = f.path();
            if p.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let v: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            out.push(serde_json::to_value(v).unwrap());
        }
    }
    out
}

async fn can(
    admin: &kube::Client,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> bool {
    let operator = format!(
        "system:serviceaccount:{}:{}",
        common::OPERATOR_NS,
        common::OPERATOR_SA
    );
    user_can(admin, &operator, verb, group, resource, namespace, name).await
}

async fn user_can(
    admin: &kube::Client,
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> bool {
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_string()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.split('/').next().unwrap().into()),
                subresource: resource.split('/').nth(1).map(str::to_string),
                namespace: namespace.map(str::to_string),
                name: name.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let out = Api::<SubjectAccessReview>::all(admin.clone())
        .create(&PostParams::default(), &sar)
        .await
        .unwrap();
    out.status.map(|s| s.allowed).unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_apply_and_accept_every_corpus_request_with_least_privilege_rbac(
) -> anyhow::Result<()> {
    let env = common::start().await?;
    // Applying again is a no-op: the manifests are declarative.
    let (_, rest) = common::deploy_manifests()?;
    cco_testsupport::kube_env::apply_objects(&env.admin, rest).await?;

    // Every corpus request is accepted by our CRD, as the upstream CRD accepts it.
    let reqs = corpus_requests();
    assert!(reqs.len() >= 58, "corpus has {} requests", reqs.len());
    for v in reqs {
        let ns = v["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        common::create_namespace(&env.admin, &ns).await?;
        let name = v["metadata"]["name"].as_str().unwrap().to_string();
        let cr: CredentialsRequest = serde_json::from_value(v)
            .unwrap_or_else(|e| panic!("corpus request {name} does not deserialize: {e}"));
        Api::<CredentialsRequest>::namespaced(env.admin.clone(), &ns)
            .create(&PostParams::default(), &cr)
            .await
            .unwrap_or_else(|e| panic!("corpus request {ns}/{name} rejected: {e}"));
    }

    // The operator's own read-only requests apply over the reference's (in the corpus) and ask for
    // exactly what the reference's ask for.
    let corpus_specs: std::collections::BTreeMap<String, serde_json::Value> = corpus_requests()
        .into_iter()
        .map(|v| {
            (
                v["metadata"]["name"].as_str().unwrap().to_string(),
                v["spec"].clone(),
            )
        })
        .collect();
    let own = common::apply_readonly_requests(&env.admin).await?;
    assert_eq!(
        own,
        [
            "cloud-credential-operator-iam-ro",
            "cloud-credential-operator-gcp-ro-creds"
        ]
    );
    let (requests, _) = common::deploy_manifests()?;
    for r in requests {
        let name = r.metadata.name.clone().unwrap();
        assert_eq!(
            r.metadata.namespace.as_deref(),
            Some(common::OPERATOR_NS),
            "{name}"
        );
        assert_eq!(
            serde_json::to_value(&r.data["spec"])?,
            corpus_specs[&name],
            "deploy/operator request {name} differs from the reference's"
        );
        let stored = Api::<CredentialsRequest>::namespaced(env.admin.clone(), common::OPERATOR_NS)
            .get(&name)
            .await?;
        assert_eq!(stored.spec.secret_ref.namespace, common::OPERATOR_NS);
    }

    // The cluster-reader aggregate: whoever holds it reads CredentialsRequests, and only reads.
    let reader_role = "system:openshift:cloud-credential-operator:cluster-reader";
    let role: k8s_openapi::api::rbac::v1::ClusterRole =
        Api::all(env.admin.clone()).get(reader_role).await?;
    assert_eq!(
        role.metadata.labels.unwrap_or_default()
            ["rbac.authorization.k8s.io/aggregate-to-cluster-reader"],
        "true"
    );
    cco_testsupport::kube_env::apply_objects(
        &env.admin,
        cco_testsupport::kube_env::parse_manifests(&format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: test-reader\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {reader_role}\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: test-reader\n"
        ))?,
    )
    .await?;
    let ccg = "cloudcredential.openshift.io";
    // The API server's RBAC authorizer sees a new binding through its informer, a moment later.
    common::wait_until(std::time::Duration::from_secs(30), || async {
        Ok(user_can(
            &env.admin,
            "test-reader",
            "get",
            ccg,
            "credentialsrequests",
            Some("any-ns"),
            None,
        )
        .await)
    })
    .await?;
    for (verb, allowed) in [
        ("get", true),
        ("list", true),
        ("watch", true),
        ("create", false),
        ("update", false),
        ("patch", false),
        ("delete", false),
    ] {
        let can_do = user_can(
            &env.admin,
            "test-reader",
            verb,
            ccg,
            "credentialsrequests",
            Some("any-ns"),
            None,
        )
        .await;
        assert_eq!(can_do, allowed, "cluster-reader {verb} credentialsrequests");
    }

    // What the operator needs, it has.
    let a = &env.admin;
    for verb in ["get", "list", "watch", "patch", "delete"] {
        assert!(
            can(a, verb, ccg, "credentialsrequests", Some("any-ns"), None).await,
            "{verb} credentialsrequests"
        );
    }
    assert!(
        can(
            a,
            "patch",
            ccg,
            "credentialsrequests/status",
            Some("x"),
            None
        )
        .await
    );
    for verb in ["get", "list", "watch", "create", "patch", "delete"] {
        assert!(
            can(a, verb, "", "secrets", Some("any-ns"), None).await,
            "{verb} secrets"
        );
    }
    assert!(can(a, "watch", "", "namespaces", None, None).await);
    assert!(
        can(
            a,
            "watch",
            "operator.openshift.io",
            "cloudcredentials",
            None,
            None
        )
        .await
    );
    assert!(
        can(
            a,
            "watch",
            "config.openshift.io",
            "infrastructures",
            None,
            None
        )
        .await
    );
    assert!(
        can(
            a,
            "watch",
            "config.openshift.io",
            "authentications",
            None,
            None
        )
        .await
    );
    assert!(
        can(
            a,
            "create",
            "config.openshift.io",
            "clusteroperators",
            None,
            None
        )
        .await
    );
    assert!(
        can(
            a,
            "patch",
            "config.openshift.io",
            "clusteroperators/status",
            None,
            Some("cloud-credential")
        )
        .await
    );
    assert!(
        can(
            a,
            "update",
            "coordination.k8s.io",
            "leases",
            Some(common::OPERATOR_NS),
            None
        )
        .await
    );
    // The HTTPS metrics endpoint authenticates and authorizes each scrape.
    assert!(
        can(
            a,
            "create",
            "authentication.k8s.io",
            "tokenreviews",
            None,
            None
        )
        .await
    );
    assert!(
        can(
            a,
            "create",
            "authorization.k8s.io",
            "subjectaccessreviews",
            None,
            None
        )
        .await
    );

    // The pod identity webhook's objects: by name, nothing else.
    let piw = Some("pod-identity-webhook");
    for (group, resource, ns) in [
        ("", "serviceaccounts", Some(common::OPERATOR_NS)),
        ("", "services", Some(common::OPERATOR_NS)),
        ("apps", "deployments", Some(common::OPERATOR_NS)),
        (
            "rbac.authorization.k8s.io",
            "roles",
            Some(common::OPERATOR_NS),
        ),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            Some(common::OPERATOR_NS),
        ),
        ("policy", "poddisruptionbudgets", Some(common::OPERATOR_NS)),
        ("rbac.authorization.k8s.io", "clusterroles", None),
        ("rbac.authorization.k8s.io", "clusterrolebindings", None),
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            None,
        ),
    ] {
        for verb in ["get", "watch", "create", "patch", "delete"] {
            assert!(
                can(a, verb, group, resource, ns, piw).await,
                "{verb} {resource}/pod-identity-webhook"
            );
        }
        assert!(
            !can(a, "patch", group, resource, ns, Some("other")).await,
            "patch {resource}/other"
        );
        assert!(
            !can(a, "create", group, resource, ns, None).await,
            "create {resource} of any name"
        );
    }
    assert!(!can(a, "patch", "apps", "deployments", Some("kube-system"), piw).await);
    assert!(
        can(
            a,
            "get",
            "config.openshift.io",
            "clusterversions",
            None,
            Some("version")
        )
        .await
    );
    assert!(
        can(
            a,
            "watch",
            "config.openshift.io",
            "apiservers",
            None,
            Some("cluster")
        )
        .await
    );

    // What it does not need, it does not have.
    assert!(
        !can(
            a,
            "patch",
            "config.openshift.io",
            "clusteroperators/status",
            None,
            Some("kube-apiserver")
        )
        .await
    );
    assert!(
        !can(
            a,
            "update",
            "coordination.k8s.io",
            "leases",
            Some("kube-system"),
            None
        )
        .await
    );
    assert!(!can(a, "delete", "", "namespaces", None, Some("kube-system")).await);
    assert!(
        !can(
            a,
            "create",
            ccg,
            "credentialsrequests",
            Some("any-ns"),
            None
        )
        .await
    );
    assert!(
        !can(
            a,
            "update",
            ccg,
            "credentialsrequests",
            Some("any-ns"),
            None
        )
        .await
    );
    assert!(
        !can(
            a,
            "update",
            "config.openshift.io",
            "infrastructures",
            None,
            Some("cluster")
        )
        .await
    );
    assert!(!can(a, "list", "", "configmaps", Some("kube-system"), None).await);
    assert!(!can(a, "create", "", "pods", Some(common::OPERATOR_NS), None).await);
    assert!(
        !can(
            a,
            "escalate",
            "rbac.authorization.k8s.io",
            "clusterroles",
            None,
            None
        )
        .await
    );
    let _ = Path::new(CRD_FILE);
    Ok(())
}

/// `Containerfile` stage -> the image tag its build command (in the file's header) gives it.
fn containerfile_images() -> std::collections::BTreeMap<String, String> {
    let text = std::fs::read_to_string(cco_testsupport::repo_root().join("Containerfile")).unwrap();
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.trim_start_matches('#').split_whitespace().collect();
            let t = w.iter().position(|x| *x == "--target")?;
            let i = w.iter().position(|x| *x == "-t")?;
            Some((w.get(t + 1)?.to_string(), w.get(i + 1)?.to_string()))
        })
        .collect()
}

fn yaml_docs(path: &Path) -> Vec<serde_json::Value> {
    use serde::Deserialize as _;
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_json::to_value(serde_yaml::Value::deserialize(d).unwrap()).unwrap())
        .collect()
}

/// The deploy manifests run the images the Containerfile builds, as a non-root user, and the
/// webhook image holds every program name the operator runs it under.
#[test]
fn deploy_manifests_point_at_the_containerfile_images() {
    let images = containerfile_images();
    let operator = images.get("operator").expect("operator stage tag");
    let webhook = images.get("webhook").expect("webhook stage tag");
    assert!(images.contains_key("ccoctl"), "{images:?}");

    let dep = &yaml_docs(&common::deploy_dir().join("04-deployment.yaml"))[0];
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"].as_str(), Some(operator.as_str()));
    for e in c["env"].as_array().unwrap() {
        if e["name"]
            .as_str()
            .unwrap()
            .ends_with("_POD_IDENTITY_WEBHOOK_IMAGE")
        {
            assert_eq!(e["value"].as_str(), Some(webhook.as_str()), "{e}");
        }
    }
    assert_eq!(
        dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );
    let wh = cco_testsupport::repo_root().join("deploy/webhook/deployment.yaml");
    let wh = &yaml_docs(&wh)[0];
    assert_eq!(
        wh["spec"]["template"]["spec"]["containers"][0]["image"].as_str(),
        Some(webhook.as_str())
    );

    let text = std::fs::read_to_string(cco_testsupport::repo_root().join("Containerfile")).unwrap();
    assert!(text.contains("FROM scratch AS base"), "minimal base");
    assert!(text.contains("USER 65532:65532"), "non-root");
    use cco_operator::podidentity::{manifests::program, WebhookCloud};
    for cloud in [WebhookCloud::Aws, WebhookCloud::Azure, WebhookCloud::Gcp] {
        let name = program(cloud).trim_start_matches("/usr/bin/");
        assert!(text.contains(name), "the webhook image lacks {name}");
    }
}
