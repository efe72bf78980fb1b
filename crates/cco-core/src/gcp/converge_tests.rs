use super::*;
use crate::gcp::{jwks_text, plan_service_accounts, principal, KeyStorage};
use crate::reader::{parse_documents, LoadedRequest, ReadOptions};
use std::path::Path;

const PROJECT: &str = "proj";
const NUMBER: &str = "42";

fn req(name: &str, ns: &str, sas: &[&str], roles: &[&str], perms: &[&str]) -> String {
    format!(
        r#"
apiVersion: cloudcredential.openshift.io/v1
kind: CredentialsRequest
metadata: {{name: {name}, namespace: openshift-cloud-credential-operator}}
spec:
  secretRef: {{name: {name}-creds, namespace: {ns}}}
  serviceAccountNames: {sas:?}
  providerSpec:
    apiVersion: cloudcredential.openshift.io/v1
    kind: GCPProviderSpec
    predefinedRoles: {roles:?}
    permissions: {perms:?}
"#
    )
}

fn load(docs: &[String]) -> Vec<LoadedRequest> {
    parse_documents(
        Path::new("r.yaml"),
        &docs.join("\n---\n"),
        ReadOptions {
            cloud: cco_api::Cloud::Gcp,
            enable_tech_preview: false,
        },
    )
    .expect("parses")
}

fn plans() -> Vec<ServiceAccountPlan> {
    let reqs = load(&[
        req(
            "ccm",
            "ns-a",
            &["ccm"],
            &["roles/compute.viewer"],
            &["compute.a.get"],
        ),
        req(
            "ingress",
            "ns-b",
            &["ing", "ing2"],
            &["roles/dns.admin"],
            &[],
        ),
    ]);
    plan_service_accounts(&reqs, "c1", "proj").expect("plans")
}

fn desired(plans: &[ServiceAccountPlan]) -> GcpDesired<'_> {
    GcpDesired {
        name: "c1",
        project: PROJECT,
        pool: "c1",
        provider: "c1",
        storage: KeyStorage::PublicBucket,
        region: "us",
        issuer: crate::gcp::issuer_url("c1"),
        jwks: json!({"keys": [{"kid": "new", "kty": "RSA"}]}),
        prune_old_keys: false,
        plans,
        scope: Scope::ALL,
    }
}

/// The state `create-all` leaves behind.
fn converged(d: &GcpDesired<'_>) -> GcpObserved {
    let mut o = GcpObserved {
        project_number: NUMBER.into(),
        pool: Some(ObservedPool {
            description: CREATED_BY.into(),
            ..Default::default()
        }),
        provider: Some(ObservedProvider {
            issuer: d.issuer.clone(),
            audiences: vec![AUDIENCE.into()],
            attribute_mapping: [("google.subject".into(), "assertion.sub".into())].into(),
            ..Default::default()
        }),
        bucket: Some(ObservedBucket {
            public: true,
            discovery: Some(discovery(&d.issuer).into_bytes()),
            jwks: Some(jwks_text(&d.jwks).into_bytes()),
        }),
        ..Default::default()
    };
    for (i, p) in d.plans.iter().enumerate() {
        let email = format!("sa{i}@{PROJECT}.iam.gserviceaccount.com");
        if let Some(r) = &p.custom_role {
            o.roles.insert(
                r.id.clone(),
                ObservedRole {
                    deleted: false,
                    title: r.title.clone(),
                    description: r.description.clone(),
                    permissions: r.permissions.clone(),
                },
            );
        }
        o.project_roles.insert(
            service_account_member(&email),
            p.project_roles(PROJECT).into_iter().collect(),
        );
        o.accounts.push(ObservedAccount {
            email,
            display_name: p.display_name.clone(),
            description: p.description.clone(),
            trust: p.principals(NUMBER, "c1"),
        });
    }
    o
}

#[test]
fn nothing_exists_so_everything_is_created_in_dependency_order() {
    let plans = plans();
    let d = desired(&plans);
    let o = GcpObserved {
        project_number: NUMBER.into(),
        ..Default::default()
    };
    let steps = plan_changes(&d, &o).expect("plan");
    let kinds: Vec<String> = steps
        .iter()
        .map(|s| {
            format!("{s:?}")
                .split([' ', '(', '{'])
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "CreatePool",
            "CreateBucket",
            "MakeBucketPublic",
            "PutObject",
            "PutObject",
            "CreateProvider",
            "CreateRole",
            "CreateAccount",
            "CreateAccount",
            "Trust",
            "Trust",
            "ProjectRoles"
        ]
    );
    let GcpStep::ProjectRoles(m) = &steps[11] else {
        panic!("{:?}", steps[11])
    };
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].email, None);
    assert_eq!(
        m[0].added,
        ["projects/proj/roles/proj_ccm", "roles/compute.viewer"]
    );
}

#[test]
fn a_converged_setup_plans_nothing() {
    let plans = plans();
    let d = desired(&plans);
    assert_eq!(plan_changes(&d, &converged(&d)).expect("plan"), []);
}

#[test]
fn gained_permissions_stale_trust_and_retired_accounts_show_as_diffs() {
    let plans = plans();
    let d = desired(&plans);
    let mut o = converged(&d);
    // The role lost a permission and carries one no longer asked for.
    let role = o.roles.get_mut("proj_ccm").expect("role");
    role.permissions = vec!["compute.old.get".into()];
    // The ingress account trusts a ServiceAccount no longer listed, and someone else's member.
    let stale = principal(NUMBER, "c1", "ns-b", "gone");
    o.accounts[1].trust = vec![
        principal(NUMBER, "c1", "ns-b", "ing"),
        stale.clone(),
        "user:someone@example.com".into(),
    ];
    // A retired request's account, and another cluster's with the same prefix.
    o.accounts.push(ObservedAccount {
        email: "old@proj.iam.gserviceaccount.com".into(),
        display_name: "c1-retired".into(),
        description: format!("{CREATED_BY} for service account c1-retired"),
        trust: vec![principal(NUMBER, "c1", "x", "y")],
    });
    o.accounts.push(ObservedAccount {
        email: "other@proj.iam.gserviceaccount.com".into(),
        display_name: "c1-x-thing".into(),
        description: CREATED_BY.into(),
        trust: vec![principal(NUMBER, "c1-x", "x", "y")],
    });
    o.project_roles.insert(
        "serviceAccount:old@proj.iam.gserviceaccount.com".into(),
        ["roles/a".to_string()].into(),
    );
    let steps = plan_changes(&d, &o).expect("plan");
    assert_eq!(
        steps[0],
        GcpStep::UpdateRole {
            role: plans[0].custom_role.clone().expect("role"),
            added: vec!["compute.a.get".into()],
            removed: vec!["compute.old.get".into()],
            other: vec![],
        }
    );
    let GcpStep::Trust { added, removed, .. } = &steps[1] else {
        panic!("{:?}", steps[1])
    };
    assert_eq!(added, &[principal(NUMBER, "c1", "ns-b", "ing2")]);
    assert_eq!(removed, &[stale]);
    assert_eq!(
        steps[2],
        GcpStep::ProjectRoles(vec![MemberRoles {
            account: AccountRef::Retired("old@proj.iam.gserviceaccount.com".into()),
            email: Some("old@proj.iam.gserviceaccount.com".into()),
            roles: vec![],
            added: vec![],
            removed: vec!["roles/a".into()],
        }])
    );
    assert_eq!(
        steps[3],
        GcpStep::DeleteAccount {
            email: "old@proj.iam.gserviceaccount.com".into(),
            display_name: "c1-retired".into()
        }
    );
    assert_eq!(steps.len(), 4);
}

#[test]
fn a_rotated_key_is_published_beside_the_old_one_unless_pruned() {
    let plans = plans();
    let mut d = desired(&plans);
    let o = converged(&d);
    d.jwks = json!({"keys": [{"kid": "newer", "kty": "RSA"}]});
    let steps = plan_changes(&d, &o).expect("plan");
    let [GcpStep::PutObject {
        path,
        added,
        removed,
        content,
        ..
    }] = steps.as_slice()
    else {
        panic!("{steps:?}")
    };
    assert_eq!(
        (*path, added.as_slice(), removed.len()),
        (KEYS_PATH, &["newer".to_string()][..], 0)
    );
    assert_eq!(
        kids(&serde_json::from_str(content).expect("json")),
        ["newer", "new"]
    );
    d.prune_old_keys = true;
    let steps = plan_changes(&d, &o).expect("plan");
    let [GcpStep::PutObject { removed, .. }] = steps.as_slice() else {
        panic!("{steps:?}")
    };
    assert_eq!(removed, &["new".to_string()]);
}

#[test]
fn a_deleted_pool_and_provider_are_restored_and_a_private_bucket_made_public() {
    let plans = plans();
    let d = desired(&plans);
    let mut o = converged(&d);
    o.pool = Some(ObservedPool {
        deleted: true,
        ..Default::default()
    });
    if let Some(p) = o.provider.as_mut() {
        p.deleted = true;
        p.audiences = vec!["other".into()];
    }
    if let Some(b) = o.bucket.as_mut() {
        b.public = false;
    }
    let steps = plan_changes(&d, &o).expect("plan");
    assert_eq!(steps[0], GcpStep::UndeletePool);
    assert_eq!(steps[1], GcpStep::MakeBucketPublic);
    assert_eq!(steps[2], GcpStep::UndeleteProvider);
    let GcpStep::PatchProvider { mask, .. } = &steps[3] else {
        panic!("{steps:?}")
    };
    assert_eq!(mask, &["oidc.allowedAudiences"]);
}

#[test]
fn two_accounts_with_one_display_name_are_refused() {
    let plans = plans();
    let d = desired(&plans);
    let mut o = converged(&d);
    let dup = o.accounts[0].clone();
    o.accounts.push(ObservedAccount {
        email: "dup@x".into(),
        ..dup
    });
    let e = plan_changes(&d, &o).expect_err("refused");
    assert!(e.to_string().contains("2 service accounts"), "{e}");
}
