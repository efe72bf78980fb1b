use super::*;
use crate::azure::{plan_identities, resource_group_scope, tags, Scopes};
use crate::reader::{parse_documents, ReadOptions};
use std::path::Path;

const SUB: &str = "sub";

pub(crate) fn plans() -> Vec<IdentityPlan> {
    let reqs = parse_documents(
        Path::new("r.yaml"),
        r#"
apiVersion: cloudcredential.openshift.io/v1
kind: CredentialsRequest
metadata: {name: openshift-ingress-azure, namespace: openshift-cloud-credential-operator}
spec:
  secretRef: {name: cloud-credentials, namespace: openshift-ingress-operator}
  serviceAccountNames: [ingress-operator]
  providerSpec:
    apiVersion: cloudcredential.openshift.io/v1
    kind: AzureProviderSpec
    permissions: [Microsoft.Network/dnsZones/A/write]
    roleBindings: [{role: Reader}]
"#,
        ReadOptions {
            cloud: cco_api::Cloud::Azure,
            enable_tech_preview: false,
        },
    )
    .expect("parses");
    let scopes = Scopes {
        installation: "inst".into(),
        dnszone: None,
        network: None,
    };
    plan_identities("c", SUB, &scopes, &reqs).expect("plan")
}

pub(crate) fn desired(plans: &[IdentityPlan]) -> AzureDesired<'_> {
    AzureDesired {
        name: "c",
        subscription: SUB,
        region: "eastus",
        oidc_rg: "c-oidc".into(),
        install_rg: "inst".into(),
        extra_rgs: vec![],
        account: "acct".into(),
        container: "c".into(),
        tags: tags("c", &[]),
        default_endpoint: "https://acct.blob.core.windows.net/".into(),
        issuer_override: None,
        jwks: json!({"keys": [{"kid": "k1"}]}),
        plans,
        preserve_existing_roles: false,
        scope: AzScope {
            issuer: true,
            identities: true,
            retire: true,
        },
    }
}

pub(crate) fn converged(d: &AzureDesired<'_>) -> AzureObserved {
    let mut o = AzureObserved::default();
    o.groups.insert("c-oidc".into(), Some(d.tags.clone()));
    o.groups.insert("inst".into(), Some(json!({})));
    o.storage = Some(ObservedStorage {
        tags: d.tags.clone(),
        allow_blob_public_access: true,
        blob_endpoint: "https://acct.blob.core.windows.net/".into(),
    });
    let issuer = d.issuer(&o);
    o.container = Some(ObservedContainer {
        access: Some(crate::azure::CONTAINER_PUBLIC_ACCESS.into()),
        discovery: Some(reference_azure_discovery_text(&issuer).into_bytes()),
        jwks: Some(to_go_indented(&d.jwks).into_bytes()),
    });
    o.builtin_roles
        .insert("Reader".into(), Some("/r/reader".into()));
    for p in d.plans {
        let role = p.custom_role.as_ref().expect("custom");
        let body = role_definition_body(role, d.name, SUB);
        o.roles.insert(
            role.role_name.clone(),
            vec![ObservedRole {
                id: format!(
                    "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{}",
                    role.id
                ),
                properties: body["properties"].clone(),
            }],
        );
        let assignments = wanted_assignments(d, &o, p)
            .expect("wanted")
            .into_iter()
            .enumerate()
            .map(|(n, (scope, role))| ObservedAssignment {
                id: format!("{scope}/a{n}"),
                name: format!("a{n}"),
                scope,
                role_definition_id: role,
            })
            .collect();
        o.identities.push(ObservedIdentity {
            name: p.identity_name.clone(),
            client_id: "cid".into(),
            principal_id: "pid".into(),
            tenant_id: "tid".into(),
            tags: d.tags.clone(),
            fics: p
                .service_accounts
                .iter()
                .map(|sa| ObservedFic {
                    name: fic_name(sa),
                    issuer: issuer.clone(),
                    subject: subject(&p.secret_namespace, sa),
                    audiences: vec![AUDIENCE.into()],
                })
                .collect(),
            assignments,
        });
    }
    o
}

#[test]
fn nothing_exists_so_everything_is_created() {
    let plans = plans();
    let d = desired(&plans);
    let mut o = AzureObserved::default();
    o.builtin_roles
        .insert("Reader".into(), Some("/r/reader".into()));
    let steps = plan_changes(&d, &o).expect("plan");
    let names: Vec<String> = steps
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
        names,
        [
            "PutGroup",
            "PutStorage",
            "CreateContainer",
            "PutBlob",
            "PutBlob",
            "PutGroup",
            "PutIdentity",
            "PutRole",
            "CreateAssignment",
            "CreateAssignment",
            "PutFic"
        ]
    );
}

#[test]
fn a_converged_setup_plans_nothing() {
    let plans = plans();
    let d = desired(&plans);
    assert_eq!(plan_changes(&d, &converged(&d)).expect("plan"), []);
}

#[test]
fn a_lost_permission_a_stale_subject_an_extra_assignment_and_a_retired_identity_are_planned() {
    let plans = plans();
    let d = desired(&plans);
    let mut o = converged(&d);
    let role = plans[0].custom_role.as_ref().expect("role");
    o.roles.get_mut(&role.role_name).expect("role")[0].properties["permissions"][0]["actions"] =
        json!(["Microsoft.Old/read"]);
    let id = &mut o.identities[0];
    id.fics.push(ObservedFic {
        name: "gone".into(),
        issuer: "x".into(),
        subject: "system:serviceaccount:openshift-ingress-operator:gone".into(),
        audiences: vec![AUDIENCE.into()],
    });
    id.assignments.push(ObservedAssignment {
        id: "/extra".into(),
        name: "extra".into(),
        scope: resource_group_scope(SUB, "other"),
        role_definition_id: "/r/owner".into(),
    });
    o.identities.push(ObservedIdentity {
        name: "c-retired".into(),
        tags: d.tags.clone(),
        assignments: vec![ObservedAssignment {
            id: "/old".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    o.identities.push(ObservedIdentity {
        name: "c-not-ours".into(),
        tags: json!({}),
        ..Default::default()
    });
    let steps = plan_changes(&d, &o).expect("plan");
    let AzureStep::PutRole { added, removed, .. } = &steps[0] else {
        panic!("{steps:?}")
    };
    assert_eq!(added, &["action Microsoft.Network/dnsZones/A/write"]);
    assert_eq!(removed, &["action Microsoft.Old/read"]);
    assert!(steps.contains(&AzureStep::DeleteAssignment {
        identity: plans[0].identity_name.clone(),
        id: "/extra".into(),
        scope: resource_group_scope(SUB, "other"),
        role: "/r/owner".into(),
    }));
    // A credential of another name is left alone (verify reports it).
    assert!(!format!("{steps:?}").contains("gone"));
    assert_eq!(
        steps[steps.len() - 1],
        AzureStep::DeleteIdentity {
            identity: "c-retired".into()
        }
    );
    assert_eq!(steps.len(), 4, "{steps:#?}");
    let mut keep = d.clone();
    keep.preserve_existing_roles = true;
    keep.scope.retire = false;
    assert_eq!(plan_changes(&keep, &o).expect("plan").len(), 1);
}

#[test]
fn a_private_container_and_a_rotated_key_are_planned_and_a_missing_group_refused() {
    let plans = plans();
    let mut d = desired(&plans);
    let mut o = converged(&d);
    if let Some(c) = o.container.as_mut() {
        c.access = None;
    }
    d.jwks = json!({"keys": [{"kid": "k2"}]});
    let steps = plan_changes(&d, &o).expect("plan");
    assert_eq!(steps[0], AzureStep::MakeContainerPublic);
    let AzureStep::PutBlob { added, path, .. } = &steps[1] else {
        panic!("{steps:?}")
    };
    assert_eq!(
        (*path, added.as_slice()),
        (AZURE_KEYS_PATH, &["k2".to_string()][..])
    );
    d.extra_rgs = vec!["dns".into()];
    assert_eq!(
        plan_changes(&d, &o).expect_err("missing"),
        AzConvergeError::MissingGroup("dns".into())
    );
}

#[test]
fn the_plan_report_names_each_change_and_notes_retired_identities() {
    let plans = plans();
    let mut d = desired(&plans);
    d.scope.retire = false;
    let mut o = converged(&d);
    let role = plans[0].custom_role.as_ref().expect("role");
    o.roles.get_mut(&role.role_name).expect("role")[0].properties["permissions"][0]["actions"] =
        json!([]);
    o.identities[0].fics[0].subject = "system:serviceaccount:x:y".into();
    o.identities.push(ObservedIdentity {
        name: "c-retired".into(),
        tags: d.tags.clone(),
        ..Default::default()
    });
    let steps = plan_changes(&d, &o).expect("plan");
    let r = crate::azure::plan_report(&d, &o, &steps);
    let text = r.to_text();
    assert!(
        text.contains("~ update custom-role c-openshift-ingress-operator-cloud-credentials"),
        "{text}"
    );
    assert!(
        text.contains("+ permissions: action Microsoft.Network/dnsZones/A/write"),
        "{text}"
    );
    assert!(text.contains("~ update federated-credential c-openshift-ingress-operator-cloud-credentials/ingress-operator"), "{text}");
    assert!(text.contains("subject: system:serviceaccount:x:y -> system:serviceaccount:openshift-ingress-operator:ingress-operator"), "{text}");
    assert_eq!(r.notes.len(), 1, "{text}");
    assert!(r.notes[0].contains("c-retired"));
    assert_eq!(r.exit_code(), 2);
}

#[test]
fn a_container_readable_only_blob_by_blob_is_raised_to_container_level() {
    let plans = plans();
    let d = desired(&plans);
    let mut o = converged(&d);
    assert!(plan_changes(&d, &o).expect("plan").is_empty());
    if let Some(c) = o.container.as_mut() {
        c.access = Some("blob".into());
    }
    let steps = plan_changes(&d, &o).expect("plan");
    assert_eq!(steps, [AzureStep::MakeContainerPublic]);
    let report = crate::azure::plan_report(&d, &o, &steps);
    let json = serde_json::to_value(&report.changes[0]).expect("json");
    assert_eq!(
        json["diff"][0],
        json!({"op": "change", "field": "public access", "before": "blob", "after": "container"})
    );
}
