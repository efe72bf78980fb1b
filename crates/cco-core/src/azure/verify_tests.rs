use super::*;
use crate::azure::converge::tests::{converged, desired, plans};
use crate::azure::{ObservedAssignment, ObservedFic};
use crate::report::CheckStatus;

fn fixes() -> AzFixes {
    AzFixes {
        create_all: "ccoctl azure create-all …".into(),
        issuer: "ccoctl azure create-oidc-issuer …".into(),
        identities: "ccoctl azure create-managed-identities …".into(),
        manifests_dir: "out/manifests".into(),
    }
}

fn good_secret(d: &AzureDesired<'_>, o: &AzureObserved) -> AzSecretFound {
    let p = &d.plans[0];
    let id = o.identity(&p.identity_name).expect("identity");
    AzSecretFound {
        source: "m.yaml".into(),
        data: Ok(Some(
            wanted_secret(d, p, &id.client_id, &id.tenant_id)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )),
    }
}

fn statuses(c: &[Check]) -> Vec<(&str, CheckStatus)> {
    c.iter().map(|c| (c.id.as_str(), c.status)).collect()
}

#[test]
fn a_converged_setup_passes() {
    let plans = plans();
    let d = desired(&plans);
    let o = converged(&d);
    let secret = good_secret(&d, &o);
    let mut checks = storage_checks(&d, &o, &fixes());
    checks.extend(request_checks(&d, &o, 0, &secret, &fixes()));
    checks.extend(retired_checks(&d, &o));
    assert!(
        checks.iter().all(|c| c.status == CheckStatus::Pass),
        "{checks:#?}"
    );
    assert_eq!(checks.len(), 6);
}

#[test]
fn stale_trust_missing_role_and_a_secret_of_another_identity_fail_with_fixes() {
    let plans = plans();
    let d = desired(&plans);
    let mut o = converged(&d);
    let secret = good_secret(&d, &o);
    let id = &mut o.identities[0];
    id.client_id = "new-client".into();
    id.fics[0].issuer = "https://old.example/c".into();
    id.fics.push(ObservedFic {
        name: "other".into(),
        issuer: "https://x".into(),
        subject: "system:serviceaccount:a:b".into(),
        audiences: vec![AUDIENCE.into()],
    });
    let removed: ObservedAssignment = id.assignments.remove(0);
    let role = plans[0].custom_role.as_ref().expect("role");
    o.roles.get_mut(&role.role_name).expect("role")[0].properties["permissions"][0]["actions"] =
        serde_json::json!([]);
    o.identities.push(crate::azure::ObservedIdentity {
        name: "c-retired".into(),
        tags: d.tags.clone(),
        ..Default::default()
    });
    let c = request_checks(&d, &o, 0, &secret, &fixes());
    assert_eq!(
        statuses(&c),
        [
            ("request.identity", CheckStatus::Pass),
            ("request.trust", CheckStatus::Fail),
            ("request.permissions", CheckStatus::Fail),
            ("request.secret", CheckStatus::Fail),
        ]
    );
    assert!(
        c[1].message.contains("https://old.example/c"),
        "{}",
        c[1].message
    );
    assert!(c[1]
        .message
        .contains("also trusts system:serviceaccount:a:b"));
    let fix = c[1].fix.as_deref().expect("fix");
    assert!(
        fix.contains("create-managed-identities") && fix.contains("federated-credential delete"),
        "{fix}"
    );
    assert!(
        c[2].message
            .contains(&format!("missing: Reader at {}", removed.scope))
            || c[2].message.contains("missing"),
        "{}",
        c[2].message
    );
    assert!(
        c[2].message
            .contains("lacks actions Microsoft.Network/dnsZones/A/write"),
        "{}",
        c[2].message
    );
    assert!(
        c[3].message
            .contains("azure_client_id is \"cid\", not \"new-client\""),
        "{}",
        c[3].message
    );
    let r = retired_checks(&d, &o);
    assert_eq!(statuses(&r), [("request.retired", CheckStatus::Warn)]);
}

#[test]
fn a_deleted_identity_and_a_private_container_fail() {
    let plans = plans();
    let d = desired(&plans);
    let mut o = converged(&d);
    let secret = good_secret(&d, &o);
    o.identities.clear();
    if let Some(c) = o.container.as_mut() {
        c.access = None;
    }
    let c = request_checks(&d, &o, 0, &secret, &fixes());
    assert_eq!(
        statuses(&c),
        [
            ("request.identity", CheckStatus::Fail),
            ("request.secret", CheckStatus::Fail),
        ]
    );
    assert!(c[1].message.contains("does not exist"), "{}", c[1].message);
    let s = storage_checks(&d, &o, &fixes());
    assert_eq!(s[1].status, CheckStatus::Fail);
    assert_eq!(
        s[1].fix.as_deref(),
        Some("ccoctl azure create-oidc-issuer …")
    );
}
