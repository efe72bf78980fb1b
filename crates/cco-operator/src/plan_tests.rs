//! Unit tests of [`decide`]: every mode, deletion, staleness, platform mismatch and sync skipping.

use super::*;
use crate::cluster::CredentialsMode;
use cco_api::{CredentialsRequestSpec, CredentialsRequestStatus, SecretRef};
use serde_json::json;

fn view(mode: CredentialsMode, platform: &str, issuer: Option<&str>) -> ClusterView {
    ClusterView {
        mode,
        platform: platform.into(),
        service_account_issuer: issuer.map(str::to_string),
        infrastructure_name: Some("infra-x1".into()),
        cluster_id: None,
        aws_region: Some("us-east-2".into()),
        aws_resource_tags: vec![],
        infrastructure_resource_version: None,
        config_error: None,
    }
}

fn cr(spec: serde_json::Value) -> CredentialsRequest {
    let mut c = CredentialsRequest::new(
        "my-cr",
        CredentialsRequestSpec {
            secret_ref: SecretRef {
                name: "s".into(),
                namespace: "target".into(),
            },
            provider_spec: Some(spec),
            ..Default::default()
        },
    );
    c.metadata.namespace = Some("openshift-cloud-credential-operator".into());
    c.metadata.generation = Some(1);
    c
}

fn aws_root(rv: &str) -> RootSecret {
    RootSecret {
        name: "aws-creds".into(),
        resource_version: rv.into(),
        data: secrets::aws_access_key_data("AKROOT", "rootsecret"),
        mode_annotation: None,
    }
}

fn with_finalizer(mut c: CredentialsRequest) -> CredentialsRequest {
    c.metadata.finalizers = Some(vec![FINALIZER.into()]);
    c
}

struct Case<'a> {
    cr: &'a CredentialsRequest,
    view: ClusterView,
    root: Option<RootSecret>,
    readonly: Option<RootSecret>,
    ns: bool,
    target: Option<TargetSecret>,
    since: Option<Duration>,
}

fn run(c: Case<'_>) -> Decision {
    let effective = crate::cluster::effective_mode(&c.view, c.root.as_ref());
    decide(&Inputs {
        cr: c.cr,
        cluster: &c.view,
        effective: &effective,
        root: c.root.as_ref(),
        readonly: c.readonly.as_ref(),
        target_namespace_exists: c.ns,
        target: c.target.as_ref(),
        since_last_sync: c.since,
        sync_period: Duration::from_secs(3600),
        random_suffix: "abcde",
    })
}

fn case(cr: &CredentialsRequest, view: ClusterView, root: Option<RootSecret>) -> Case<'_> {
    Case {
        cr,
        view,
        root,
        readonly: None,
        ns: true,
        target: None,
        since: None,
    }
}

const STS: &str = "arn:aws:iam::123456789012:role/my-role";

#[test]
fn token_mode_writes_the_sts_secret_with_the_requested_token_path() {
    let mut c = cr(json!({"kind": "AWSProviderSpec", "stsIAMRoleARN": STS}));
    let d = run(case(
        &c,
        view(CredentialsMode::Manual, "AWS", Some("https://oidc")),
        None,
    ));
    let Decision::Provision {
        add_finalizer: true,
        how: Provision::Write(data),
    } = d
    else {
        panic!("{d:?}")
    };
    assert_eq!(
        data.get_str("credentials"),
        Some(cco_core::aws::credentials_file(STS, DEFAULT_TOKEN_PATH).as_str())
    );
    c.spec.cloud_token_path = Some("/custom/token".into());
    let Decision::Provision {
        how: Provision::Write(data),
        ..
    } = run(case(
        &c,
        view(CredentialsMode::Manual, "AWS", Some("https://oidc")),
        None,
    ))
    else {
        panic!()
    };
    assert!(data
        .get_str("credentials")
        .is_some_and(|s| s.ends_with("web_identity_token_file = /custom/token")));
}

#[test]
fn token_mode_gcp_and_azure_need_all_their_fields() {
    let g = cr(
        json!({"kind": "GCPProviderSpec", "serviceAccountEmail": "sa@p.iam.gserviceaccount.com", "audience": "//iam.googleapis.com/x"}),
    );
    assert!(matches!(
        run(case(
            &g,
            view(CredentialsMode::Manual, "GCP", Some("https://o")),
            None
        )),
        Decision::Provision {
            how: Provision::Write(_),
            ..
        }
    ));
    let g = cr(json!({"kind": "GCPProviderSpec", "serviceAccountEmail": "sa@p"}));
    assert_eq!(
        run(case(
            &g,
            view(CredentialsMode::Manual, "GCP", Some("https://o")),
            None
        )),
        Decision::LeaveAlone
    );
    let z = cr(
        json!({"kind": "AzureProviderSpec", "azureClientID": "c", "azureTenantID": "t", "azureRegion": "r", "azureSubscriptionID": "s"}),
    );
    let Decision::Provision {
        how: Provision::Write(d),
        ..
    } = run(case(
        &z,
        view(CredentialsMode::Manual, "Azure", Some("https://o")),
        None,
    ))
    else {
        panic!()
    };
    assert_eq!(
        d.get_str("azure_federated_token_file"),
        Some(DEFAULT_TOKEN_PATH)
    );
    let z = cr(json!({"kind": "AzureProviderSpec", "azureClientID": "c"}));
    assert_eq!(
        run(case(
            &z,
            view(CredentialsMode::Manual, "Azure", Some("https://o")),
            None
        )),
        Decision::LeaveAlone
    );
}

#[test]
fn manual_without_issuer_leaves_requests_alone() {
    let c = cr(json!({"kind": "AWSProviderSpec", "stsIAMRoleARN": STS}));
    assert_eq!(
        run(case(&c, view(CredentialsMode::Manual, "AWS", None), None)),
        Decision::LeaveAlone
    );
}

#[test]
fn other_platforms_and_unknown_kinds_are_ignored() {
    let c = cr(json!({"kind": "GCPProviderSpec"}));
    assert_eq!(
        run(case(
            &c,
            view(CredentialsMode::Passthrough, "AWS", None),
            Some(aws_root("1"))
        )),
        Decision::Ignore {
            platform: "AWS".into()
        }
    );
    let m = cr(json!({"kind": "Metal3ProviderSpec"}));
    assert!(matches!(
        run(case(
            &m,
            view(CredentialsMode::Passthrough, "AWS", None),
            None
        )),
        Decision::Ignore { .. }
    ));
}

#[test]
fn passthrough_copies_the_root_credential_and_reports_missing_keys_as_insufficient() {
    let c = cr(json!({"kind": "AWSProviderSpec", "statementEntries": []}));
    let d = run(case(
        &c,
        view(CredentialsMode::Passthrough, "AWS", None),
        Some(aws_root("1")),
    ));
    let Decision::Provision {
        how: Provision::Write(data),
        ..
    } = d
    else {
        panic!("{d:?}")
    };
    assert_eq!(data.get_str("aws_access_key_id"), Some("AKROOT"));
    let mut bad = aws_root("1");
    bad.data.0.remove("aws_secret_access_key");
    assert!(matches!(
        run(case(
            &c,
            view(CredentialsMode::Passthrough, "AWS", None),
            Some(bad)
        )),
        Decision::Provision {
            how: Provision::Fail(Failure::Insufficient(_)),
            ..
        }
    ));
    assert!(matches!(
        run(case(
            &c,
            view(CredentialsMode::Passthrough, "AWS", None),
            None
        )),
        Decision::Provision {
            how: Provision::Fail(Failure::Provision(_)),
            ..
        }
    ));
}

#[test]
fn a_missing_namespace_waits_after_adding_the_finalizer() {
    let c = cr(json!({"kind": "AWSProviderSpec", "stsIAMRoleARN": STS}));
    let mut k = case(
        &c,
        view(CredentialsMode::Manual, "AWS", Some("https://o")),
        None,
    );
    k.ns = false;
    assert_eq!(
        run(k),
        Decision::WaitForNamespace {
            add_finalizer: true
        }
    );
}

#[test]
fn mint_generates_a_user_name_and_rotates_only_on_a_new_credential() {
    let c = with_finalizer(cr(
        json!({"kind": "AWSProviderSpec", "statementEntries": [{"effect": "Allow", "action": ["s3:*"], "resource": "*"}]}),
    ));
    let Decision::Provision {
        how: Provision::MintAws(m),
        ..
    } = run(case(
        &c,
        view(CredentialsMode::Mint, "AWS", None),
        Some(aws_root("1")),
    ))
    else {
        panic!()
    };
    assert_eq!(m.user, "infra-x1-my-cr-abcde");
    assert_eq!(m.policy_name, "infra-x1-my-cr-abcde-policy");
    assert!(m.user_is_new && !m.rotate);
    assert_eq!(
        m.tags,
        vec![(
            "kubernetes.io/cluster/infra-x1".to_string(),
            "owned".to_string()
        )]
    );
    assert_eq!(m.region, "us-east-2");

    let root = aws_root("1");
    let mut synced = c.clone();
    synced.status = Some(CredentialsRequestStatus {
        provisioned: true,
        last_sync_generation: 1,
        last_sync_cloud_creds_secret_resource_version: Some("1".into()),
        provider_status: Some(
            json!({"user": "u1", "policy": "u1-policy", "rootCredentialFingerprint": root.fingerprint()}),
        ),
        ..Default::default()
    });
    // Same credential under a new resourceVersion (an annotation changed): no rotation.
    let mut annotated = aws_root("2");
    annotated.mode_annotation = Some("mint".into());
    let Decision::Provision {
        how: Provision::MintAws(m),
        ..
    } = run(case(
        &synced,
        view(CredentialsMode::Mint, "AWS", None),
        Some(annotated),
    ))
    else {
        panic!()
    };
    assert_eq!(m.user, "u1");
    assert!(!m.user_is_new && !m.rotate);
    // A new credential: rotate.
    let mut changed = aws_root("3");
    changed.data = secrets::aws_access_key_data("AKNEW", "newsecret");
    let Decision::Provision {
        how: Provision::MintAws(m),
        ..
    } = run(case(
        &synced,
        view(CredentialsMode::Mint, "AWS", None),
        Some(changed),
    ))
    else {
        panic!()
    };
    assert!(m.rotate);
}

#[test]
fn mint_without_root_keeps_existing_credentials_and_refuses_new_ones() {
    let c = with_finalizer(cr(
        json!({"kind": "AWSProviderSpec", "statementEntries": []}),
    ));
    assert!(matches!(
        run(case(&c, view(CredentialsMode::Mint, "AWS", None), None)),
        Decision::Provision {
            how: Provision::Fail(Failure::Provision(_)),
            ..
        }
    ));
    let mut minted = c.clone();
    minted.status = Some(CredentialsRequestStatus {
        provisioned: true,
        provider_status: Some(json!({"user": "u1", "policy": "p"})),
        ..Default::default()
    });
    let mut k = case(&minted, view(CredentialsMode::Mint, "AWS", None), None);
    k.target = Some(TargetSecret { owner: None });
    assert!(matches!(
        run(k),
        Decision::Provision {
            how: Provision::KeepMinted,
            ..
        }
    ));
}

#[test]
fn mint_is_refused_where_it_is_not_supported() {
    let c = cr(json!({"kind": "OpenStackProviderSpec"}));
    assert!(matches!(
        run(case(
            &c,
            view(CredentialsMode::Mint, "OpenStack", None),
            None
        )),
        Decision::Provision {
            how: Provision::Fail(Failure::Provision(_)),
            ..
        }
    ));
}

#[test]
fn deletion_deprovisions_the_user_and_deletes_only_our_secret() {
    let mut c = with_finalizer(cr(json!({"kind": "AWSProviderSpec"})));
    c.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    c.status = Some(CredentialsRequestStatus {
        provider_status: Some(json!({"user": "u1"})),
        ..Default::default()
    });
    let mut k = case(
        &c,
        view(CredentialsMode::Mint, "AWS", None),
        Some(aws_root("1")),
    );
    k.target = Some(TargetSecret {
        owner: Some("openshift-cloud-credential-operator/my-cr".into()),
    });
    assert_eq!(
        run(k),
        Decision::Finalize {
            deprovision: Some(Deprovision::AwsUser { user: "u1".into() }),
            delete_secret: true
        }
    );
    let mut k = case(&c, view(CredentialsMode::Manual, "AWS", None), None);
    k.target = Some(TargetSecret {
        owner: Some("someone/else".into()),
    });
    assert_eq!(
        run(k),
        Decision::Finalize {
            deprovision: None,
            delete_secret: false
        }
    );
}

/// A stale request is marked `StaleCredentials` in Manual mode and deleted in the others.
fn assert_marked_in_manual_deleted_otherwise(c: &CredentialsRequest) {
    assert_eq!(
        run(case(c, view(CredentialsMode::Manual, "AWS", None), None)),
        Decision::MarkStale
    );
    assert_eq!(
        run(case(
            c,
            view(CredentialsMode::Passthrough, "AWS", None),
            Some(aws_root("1"))
        )),
        Decision::DeleteStale
    );
}

#[test]
fn stale_requests_are_reported_in_manual_mode_and_deleted_otherwise() {
    let mut c = cr(json!({"kind": "AWSProviderSpec"}));
    c.metadata.annotations =
        Some([(cco_api::ANNOTATION_DELETE.to_string(), "true".to_string())].into());
    assert_marked_in_manual_deleted_otherwise(&c);
}

/// The reference's cleanup controller list: `cloud-credential-operator-s3` in the operator's
/// namespace is stale without any annotation; the same name elsewhere is not.
#[test]
fn the_references_stale_requests_are_stale_by_name() {
    let mut c = cr(json!({"kind": "AWSProviderSpec"}));
    c.metadata.name = Some("cloud-credential-operator-s3".into());
    assert_marked_in_manual_deleted_otherwise(&c);
    c.metadata.namespace = Some("elsewhere".into());
    assert_ne!(
        run(case(
            &c,
            view(CredentialsMode::Passthrough, "AWS", None),
            Some(aws_root("1"))
        )),
        Decision::DeleteStale
    );
}

#[test]
fn a_recent_sync_with_nothing_changed_is_up_to_date() {
    let mut c = with_finalizer(cr(json!({"kind": "AWSProviderSpec"})));
    c.status = Some(CredentialsRequestStatus {
        provisioned: true,
        last_sync_generation: 1,
        last_sync_cloud_creds_secret_resource_version: Some("7".into()),
        ..Default::default()
    });
    let target = TargetSecret { owner: None };
    let mut k = case(
        &c,
        view(CredentialsMode::Passthrough, "AWS", None),
        Some(aws_root("7")),
    );
    k.target = Some(target.clone());
    k.since = Some(Duration::from_secs(10));
    assert_eq!(run(k), Decision::UpToDate);
    // The root credential changed: sync again.
    let mut k = case(
        &c,
        view(CredentialsMode::Passthrough, "AWS", None),
        Some(aws_root("8")),
    );
    k.target = Some(target.clone());
    k.since = Some(Duration::from_secs(10));
    assert!(matches!(run(k), Decision::Provision { .. }));
    // The Secret was deleted: sync again.
    let mut k = case(
        &c,
        view(CredentialsMode::Passthrough, "AWS", None),
        Some(aws_root("7")),
    );
    k.since = Some(Duration::from_secs(10));
    assert!(matches!(run(k), Decision::Provision { .. }));
}

#[test]
fn user_names_are_cut_like_the_reference_operator() {
    let n = aws_user_name(Some(&"i".repeat(30)), &"c".repeat(50), "abcde");
    assert_eq!(n.len(), 20 + 1 + 37 + 1 + 5);
    assert_eq!(aws_user_name(None, "x", "abcde"), "x-abcde");
}

fn gcp_root(rv: &str, key: &str) -> RootSecret {
    RootSecret {
        name: "gcp-credentials".into(),
        resource_version: rv.into(),
        data: SecretData::from_strings([(
            secrets::GCP_SERVICE_ACCOUNT_JSON,
            json!({"type": "service_account", "project_id": "proj-1", "private_key_id": key})
                .to_string(),
        )]),
        mode_annotation: None,
    }
}

fn gcp_mint(d: Decision) -> GcpMint {
    match d {
        Decision::Provision {
            how: Provision::MintGcp(m),
            ..
        } => m,
        other => panic!("{other:?}"),
    }
}

#[test]
fn gcp_mint_names_the_account_and_role_and_rotates_only_on_a_new_credential() {
    let c = with_finalizer(cr(json!({"kind": "GCPProviderSpec",
        "predefinedRoles": ["roles/b", "roles/a", "roles/b"],
        "permissions": ["x.y.z", "a.b.c", "x.y.z"]})));
    let m = gcp_mint(run(case(
        &c,
        view(CredentialsMode::Mint, "GCP", None),
        Some(gcp_root("1", "k1")),
    )));
    assert_eq!(m.project, "proj-1");
    assert_eq!(m.account_id, "infra-x1-my-cr-abcde");
    assert!(m.account_is_new && !m.rotate);
    assert_eq!(m.display_name, "infra-x1-my-cr");
    assert_eq!(m.role_id.as_deref(), Some("infra_x1_my_cr"));
    assert_eq!(m.permissions, vec!["a.b.c", "x.y.z"]);
    assert_eq!(
        m.project_roles(),
        vec!["roles/a", "roles/b", "projects/proj-1/roles/infra_x1_my_cr"]
    );
    assert_eq!(
        m.email(),
        "infra-x1-my-cr-abcde@proj-1.iam.gserviceaccount.com"
    );

    let root = gcp_root("1", "k1");
    let mut synced = c.clone();
    synced.status = Some(CredentialsRequestStatus {
        provisioned: true,
        last_sync_generation: 1,
        last_sync_cloud_creds_secret_resource_version: Some("1".into()),
        provider_status: Some(json!({"serviceAccountID": "sa-1", "roleID": "old_role",
            "rootCredentialFingerprint": root.fingerprint()})),
        ..Default::default()
    });
    let m = gcp_mint(run(case(
        &synced,
        view(CredentialsMode::Mint, "GCP", None),
        Some(gcp_root("2", "k1")),
    )));
    assert_eq!(
        (m.account_id.as_str(), m.account_is_new, m.rotate),
        ("sa-1", false, false)
    );
    assert_eq!(m.role_id.as_deref(), Some("old_role"));
    let m = gcp_mint(run(case(
        &synced,
        view(CredentialsMode::Mint, "GCP", None),
        Some(gcp_root("3", "k2")),
    )));
    assert!(m.rotate);

    // Permissions dropped: the recorded role is stale.
    let mut no_perms = synced.clone();
    no_perms.spec.provider_spec =
        Some(json!({"kind": "GCPProviderSpec", "predefinedRoles": ["roles/a"]}));
    let m = gcp_mint(run(case(
        &no_perms,
        view(CredentialsMode::Mint, "GCP", None),
        Some(gcp_root("3", "k2")),
    )));
    assert_eq!(
        (m.role_id, m.stale_role_id.as_deref()),
        (None, Some("old_role"))
    );

    // A root credential without a project is insufficient.
    let mut bad = gcp_root("1", "k1");
    bad.data = SecretData::from_strings([(secrets::GCP_SERVICE_ACCOUNT_JSON, "{}".to_string())]);
    assert!(matches!(
        run(case(
            &c,
            view(CredentialsMode::Mint, "GCP", None),
            Some(bad)
        )),
        Decision::Provision {
            how: Provision::Fail(Failure::Insufficient(_)),
            ..
        }
    ));
}

#[test]
fn gcp_account_ids_are_valid_for_any_names() {
    for (infra, name) in [
        (
            Some("9lives-cluster-abcdef"),
            "openshift.image-registry.gcs",
        ),
        (None, "x"),
        (Some("Infra"), "UPPER_case"),
    ] {
        let id = gcp_account_id(infra, name, "b2c4d");
        assert!((6..=30).contains(&id.len()), "{id}");
        assert!(id.starts_with(|c: char| c.is_ascii_lowercase()), "{id}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{id}"
        );
    }
}

#[test]
fn deleting_a_gcp_minted_request_deprovisions_its_service_account() {
    let mut c = with_finalizer(cr(json!({"kind": "GCPProviderSpec"})));
    c.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    c.status = Some(CredentialsRequestStatus {
        provider_status: Some(json!({"serviceAccountID": "sa-1", "roleID": "r"})),
        ..Default::default()
    });
    assert_eq!(
        run(case(
            &c,
            view(CredentialsMode::Mint, "GCP", None),
            Some(gcp_root("1", "k1"))
        )),
        Decision::Finalize {
            deprovision: Some(Deprovision::GcpServiceAccount {
                account_id: "sa-1".into(),
                role_id: Some("r".into())
            }),
            delete_secret: false
        }
    );
}

/// The cluster tag when the cluster has an infrastructure name, else the reference's legacy
/// `openshiftClusterID` tag; the Infrastructure resource tags in both cases.
#[test]
fn minted_users_are_tagged_with_the_cluster_or_its_legacy_id() {
    let mut v = view(CredentialsMode::Mint, "AWS", None);
    v.cluster_id = Some("c0ffee".into());
    v.aws_resource_tags = vec![("team".into(), "a".into())];
    assert_eq!(
        aws_user_tags(&v),
        vec![
            (
                "kubernetes.io/cluster/infra-x1".to_string(),
                "owned".to_string()
            ),
            ("team".to_string(), "a".to_string())
        ]
    );
    v.infrastructure_name = None;
    assert_eq!(
        aws_user_tags(&v),
        vec![
            ("openshiftClusterID".to_string(), "c0ffee".to_string()),
            ("team".to_string(), "a".to_string())
        ]
    );
}
