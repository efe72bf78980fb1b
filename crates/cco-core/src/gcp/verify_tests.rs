use super::*;
use crate::gcp::{
    plan_service_accounts, principal, GcpDesired, GcpObserved, KeyStorage, ObservedAccount,
    ObservedPool, ObservedProvider, ObservedRole, Scope,
};
use crate::reader::{parse_documents, ReadOptions};
use crate::report::CheckStatus;
use serde_json::json;
use std::path::Path;

const REQ: &str = r#"
apiVersion: cloudcredential.openshift.io/v1
kind: CredentialsRequest
metadata: {name: ccm, namespace: openshift-cloud-credential-operator}
spec:
  secretRef: {name: ccm-creds, namespace: ns-a}
  serviceAccountNames: [ccm]
  providerSpec:
    apiVersion: cloudcredential.openshift.io/v1
    kind: GCPProviderSpec
    predefinedRoles: [roles/compute.viewer]
    permissions: [compute.a.get, compute.b.get]
"#;

fn setup() -> (Vec<crate::gcp::ServiceAccountPlan>, GcpObserved) {
    let reqs = parse_documents(
        Path::new("r.yaml"),
        REQ,
        ReadOptions {
            cloud: cco_api::Cloud::Gcp,
            enable_tech_preview: false,
        },
    )
    .expect("parses");
    let plans = plan_service_accounts(&reqs, "c1", "proj").expect("plans");
    let p = &plans[0];
    let email = "sa@proj.iam.gserviceaccount.com".to_string();
    let mut o = GcpObserved {
        project_number: "42".into(),
        pool: Some(ObservedPool::default()),
        provider: Some(ObservedProvider {
            issuer: crate::gcp::issuer_url("c1"),
            audiences: vec!["openshift".into()],
            attribute_mapping: [("google.subject".into(), "assertion.sub".into())].into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    o.accounts.push(ObservedAccount {
        email: email.clone(),
        display_name: p.display_name.clone(),
        description: p.description.clone(),
        trust: p.principals("42", "c1"),
    });
    o.project_roles.insert(
        format!("serviceAccount:{email}"),
        p.project_roles("proj").into_iter().collect(),
    );
    let role = p.custom_role.clone().expect("role");
    o.roles.insert(
        role.id.clone(),
        ObservedRole {
            permissions: role.permissions.clone(),
            ..Default::default()
        },
    );
    (plans, o)
}

fn desired(plans: &[crate::gcp::ServiceAccountPlan]) -> GcpDesired<'_> {
    GcpDesired {
        name: "c1",
        project: "proj",
        pool: "c1",
        provider: "c1",
        storage: KeyStorage::PublicBucket,
        region: "us",
        issuer: crate::gcp::issuer_url("c1"),
        jwks: json!({"keys": []}),
        prune_old_keys: false,
        plans,
        scope: Scope::ALL,
    }
}

fn secret(email: &str, token: &str) -> SecretFound {
    let cfg = crate::gcp::credentials_config("42", "c1", "c1", email, token);
    SecretFound {
        source: "manifests/x.yaml".into(),
        config: Ok(Some(serde_json::from_str(&cfg).expect("json"))),
    }
}

fn fixes() -> GcpFixes {
    GcpFixes {
        create_all: "ccoctl gcp create-all".into(),
        issuer: "ccoctl gcp create-workload-identity-provider".into(),
        accounts: "ccoctl gcp create-service-accounts".into(),
        manifests_dir: "out/manifests".into(),
    }
}

fn by_id(c: &[Check]) -> Vec<(String, CheckStatus)> {
    c.iter().map(|c| (c.id.clone(), c.status)).collect()
}

#[test]
fn a_converged_request_passes() {
    let (plans, o) = setup();
    let d = desired(&plans);
    let c = request_checks(
        &d,
        &o,
        0,
        &secret("sa@proj.iam.gserviceaccount.com", crate::DEFAULT_TOKEN_PATH),
        &fixes(),
    );
    assert!(c.iter().all(|c| c.status == CheckStatus::Pass), "{c:#?}");
    assert_eq!(c.len(), 4);
    let c = provider_checks(&d, &o, &fixes());
    assert!(c.iter().all(|c| c.status == CheckStatus::Pass), "{c:#?}");
}

#[test]
fn stale_trust_missing_permission_and_a_wrong_secret_fail_with_fixes() {
    let (plans, mut o) = setup();
    let d = desired(&plans);
    o.accounts[0]
        .trust
        .push(principal("42", "c1", "ns-a", "gone"));
    if let Some(r) = o.roles.values_mut().next() {
        r.permissions.pop();
    }
    let c = request_checks(
        &d,
        &o,
        0,
        &secret("other@proj.iam.gserviceaccount.com", "/t"),
        &fixes(),
    );
    assert_eq!(
        by_id(&c),
        [
            ("request.identity".to_string(), CheckStatus::Pass),
            ("request.trust".to_string(), CheckStatus::Fail),
            ("request.permissions".to_string(), CheckStatus::Fail),
            ("request.secret".to_string(), CheckStatus::Fail),
        ]
    );
    assert!(
        c[1].message.contains("system:serviceaccount:ns-a:gone"),
        "{}",
        c[1].message
    );
    assert!(
        c[2].message.contains("lacks compute.b.get"),
        "{}",
        c[2].message
    );
    assert!(
        c[3].message.contains("other@proj") && c[3].message.contains("/t"),
        "{}",
        c[3].message
    );
    assert!(c[3]
        .fix
        .as_deref()
        .is_some_and(|f| f.contains("oc apply -f out/manifests/ns-a-ccm-creds-credentials.yaml")));
    assert!(c.iter().skip(1).all(|c| c.fix.is_some()));
}

#[test]
fn a_deleted_service_account_fails_and_its_secret_points_nowhere() {
    let (plans, mut o) = setup();
    let d = desired(&plans);
    o.accounts.clear();
    let c = request_checks(
        &d,
        &o,
        0,
        &secret("sa@proj.iam.gserviceaccount.com", crate::DEFAULT_TOKEN_PATH),
        &fixes(),
    );
    assert_eq!(
        by_id(&c),
        [
            ("request.identity".to_string(), CheckStatus::Fail),
            ("request.secret".to_string(), CheckStatus::Fail),
        ]
    );
    assert_eq!(
        c[0].fix.as_deref(),
        Some("ccoctl gcp create-service-accounts")
    );
}

#[test]
fn a_provider_without_the_openshift_audience_or_for_another_issuer_fails() {
    let (plans, mut o) = setup();
    let d = desired(&plans);
    if let Some(p) = o.provider.as_mut() {
        p.audiences = vec!["sts.amazonaws.com".into()];
        p.issuer = "https://elsewhere".into();
    }
    let c = provider_checks(&d, &o, &fixes());
    assert_eq!(
        by_id(&c),
        [
            ("provider.pool".to_string(), CheckStatus::Pass),
            ("provider.provider".to_string(), CheckStatus::Pass),
            ("provider.issuer".to_string(), CheckStatus::Fail),
            ("provider.audiences".to_string(), CheckStatus::Fail),
            ("provider.mapping".to_string(), CheckStatus::Pass),
        ]
    );
    o.provider = None;
    let c = provider_checks(&d, &o, &fixes());
    assert_eq!(c[1].status, CheckStatus::Fail);
}
