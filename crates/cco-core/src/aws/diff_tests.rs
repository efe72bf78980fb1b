//! Unit tests of the AWS change plan.

use super::*;
use crate::aws::{plan_roles, IdentityProviderPlan};
use crate::reader::{parse_documents, ReadOptions};
use cco_api::Cloud;
use serde_json::json;
use std::path::Path;

const ACCOUNT: &str = "123456789012";
const THUMB: &str = "0123456789abcdef0123456789abcdef01234567";

fn jwks(kids: &[&str]) -> Value {
    json!({"keys": kids.iter().map(|k| json!({"kid": k, "kty": "RSA", "n": k, "e": "AQAB"})).collect::<Vec<_>>()})
}

fn idp(private: bool) -> IdentityProviderPlan {
    IdentityProviderPlan::new("c", "us-east-1", private, jwks(&["new"])).expect("plan")
}

/// What a complete, up-to-date public issuer looks like.
fn converged(plan: &IdentityProviderPlan) -> ObservedIssuer {
    let issuer = plan.bucket_issuer.clone();
    ObservedIssuer {
        account: ACCOUNT.into(),
        bucket: Some(ObservedBucket {
            tags: plan.tags.clone(),
            public_access_block: Some(PublicAccessBlock::for_front(&plan.front)),
            policy: Some(public_read_bucket_policy(&plan.partition, &plan.bucket)),
            discovery: Some(to_pretty(&plan.discovery(&issuer))),
            keys: Some(to_pretty(&plan.jwks)),
            discovery_tags: plan.tags.clone(),
            keys_tags: plan.tags.clone(),
        }),
        origin_access_control: None,
        distribution: None,
        provider: Some(ObservedProvider {
            arn: provider_arn(&plan.partition, ACCOUNT, &issuer),
            client_ids: CLIENT_IDS.iter().map(|s| s.to_string()).collect(),
            thumbprints: vec![THUMB.into()],
            tags: plan.tags.clone(),
        }),
    }
}

#[test]
fn a_fresh_public_issuer_needs_every_step_once() {
    let plan = idp(false);
    let obs = ObservedIssuer {
        account: ACCOUNT.into(),
        ..Default::default()
    };
    let d = diff_issuer(&plan, &obs, Some(THUMB), false);
    let calls: Vec<_> = d.steps.iter().map(IssuerStep::api_call).collect();
    assert_eq!(
        calls,
        [
            "s3:CreateBucket",
            "s3:PutBucketTagging",
            "s3:PutPublicAccessBlock",
            "s3:PutBucketPolicy",
            "s3:PutObject",
            "s3:PutObject",
            "iam:CreateOpenIDConnectProvider"
        ]
    );
    assert_eq!(
        d.provider_arn.as_deref(),
        Some("arn:aws:iam::123456789012:oidc-provider/c-oidc.s3.us-east-1.amazonaws.com")
    );
    assert!(d.changes.iter().all(|c| c.action == ChangeAction::Create));
}

#[test]
fn an_up_to_date_issuer_needs_nothing_even_with_keys_in_another_order() {
    let mut plan = idp(false);
    plan.jwks = jwks(&["a", "b"]);
    let mut obs = converged(&plan);
    if let Some(b) = obs.bucket.as_mut() {
        b.keys = Some(jwks(&["b", "a"]).to_string());
        // AWS hands the policy back with a plain string where a one-element list was sent.
        b.policy = Some(
            json!({"Version": "2012-10-17", "Statement": {"Sid": "AllowReadPublicAccess", "Effect": "Allow",
            "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::c-oidc/*"}}),
        );
    }
    let d = diff_issuer(&plan, &obs, Some(&THUMB.to_uppercase()), false);
    assert_eq!(d.steps, vec![]);
    assert_eq!(d.changes, vec![]);
}

#[test]
fn a_private_bucket_gets_its_access_block_and_policy_back() {
    let plan = idp(false);
    let mut obs = converged(&plan);
    if let Some(b) = obs.bucket.as_mut() {
        b.public_access_block = Some(PublicAccessBlock::for_front(&Front::CloudFront));
        b.policy = None;
    }
    let d = diff_issuer(&plan, &obs, Some(THUMB), false);
    assert_eq!(
        d.steps.iter().map(IssuerStep::api_call).collect::<Vec<_>>(),
        ["s3:PutPublicAccessBlock", "s3:PutBucketPolicy"]
    );
    assert_eq!(
        d.changes[0].diff,
        vec![
            DiffItem::change(
                "BlockPublicPolicy",
                Some("true".into()),
                Some("false".into())
            ),
            DiffItem::change(
                "RestrictPublicBuckets",
                Some("true".into()),
                Some("false".into())
            ),
        ]
    );
    assert_eq!(d.changes[1].action, ChangeAction::Create);
}

#[test]
fn a_new_key_is_added_beside_the_published_ones_unless_pruned() {
    let plan = idp(false);
    let mut obs = converged(&plan);
    if let Some(b) = obs.bucket.as_mut() {
        b.keys = Some(jwks(&["old"]).to_string());
    }
    let d = diff_issuer(&plan, &obs, Some(THUMB), false);
    assert_eq!(d.changes.len(), 1);
    assert_eq!(
        d.changes[0].diff,
        vec![DiffItem::add("kids", vec!["new".into()])]
    );
    let pruned = diff_issuer(&plan, &obs, Some(THUMB), true);
    assert_eq!(
        pruned.changes[0].diff,
        vec![
            DiffItem::add("kids", vec!["new".into()]),
            DiffItem::remove("kids", vec!["old".into()])
        ]
    );
}

#[test]
fn a_wrong_thumbprint_and_a_missing_client_id_are_updated() {
    let plan = idp(false);
    let mut obs = converged(&plan);
    if let Some(p) = obs.provider.as_mut() {
        p.thumbprints = vec!["ffff".into()];
        p.client_ids = vec!["openshift".into()];
    }
    let d = diff_issuer(&plan, &obs, Some(THUMB), false);
    assert_eq!(
        d.steps.iter().map(IssuerStep::api_call).collect::<Vec<_>>(),
        [
            "iam:AddClientIDToOpenIDConnectProvider",
            "iam:UpdateOpenIDConnectProviderThumbprint"
        ]
    );
    assert_eq!(d.changes[0].action, ChangeAction::Update);
}

#[test]
fn a_fresh_cloudfront_issuer_stands_in_for_the_unknown_domain() {
    let plan = idp(true);
    let obs = ObservedIssuer {
        account: ACCOUNT.into(),
        ..Default::default()
    };
    let d = diff_issuer(&plan, &obs, None, false);
    assert_eq!(d.issuer, None);
    let calls: Vec<_> = d.steps.iter().map(IssuerStep::api_call).collect();
    assert_eq!(
        calls,
        [
            "s3:CreateBucket",
            "s3:PutBucketTagging",
            "s3:PutPublicAccessBlock",
            "cloudfront:CreateOriginAccessControl",
            "cloudfront:CreateDistributionWithTags",
            "s3:PutBucketPolicy",
            "s3:PutObject",
            "s3:PutObject",
            "iam:CreateOpenIDConnectProvider"
        ]
    );
    assert!(d
        .changes
        .iter()
        .any(|c| c.kind == "iam-oidc-provider" && c.name == UNKNOWN_CLOUDFRONT_ISSUER));
}

const REQ: &str = r#"
kind: CredentialsRequest
apiVersion: cloudcredential.openshift.io/v1
metadata: {name: r, namespace: openshift-cloud-credential-operator}
spec:
  secretRef: {name: s, namespace: ns}
  serviceAccountNames: [sa1, sa2]
  providerSpec:
    kind: AWSProviderSpec
    statementEntries: [{effect: Allow, action: ["ec2:A", "ec2:B"], resource: "*"}]
"#;
const ARN: &str = "arn:aws:iam::123456789012:oidc-provider/c-oidc.s3.us-east-1.amazonaws.com";

fn role_plans() -> Vec<RolePlan> {
    let reqs = parse_documents(
        Path::new("f.yaml"),
        REQ,
        ReadOptions {
            cloud: Cloud::Aws,
            enable_tech_preview: false,
        },
    )
    .expect("parses");
    plan_roles(&reqs, "c", ARN, None).expect("plans")
}

fn observed_role(p: &RolePlan) -> ObservedRole {
    ObservedRole {
        name: p.role_name.clone(),
        trust: p.trust_policy.clone(),
        tags: p.tags.clone(),
        permissions_boundary: None,
        policy: Some(p.policy.clone()),
        inline_policies: vec![p.policy_name.clone()],
        attached_policies: vec![],
    }
}

#[test]
fn a_missing_role_is_created_with_its_policy() {
    let plans = role_plans();
    let d = diff_role(0, &plans[0], None);
    assert_eq!(d.steps, vec![RoleStep::CreateRole, RoleStep::PutPolicy]);
    assert_eq!(
        d.changes[0].diff[0],
        DiffItem::add(
            "subjects",
            vec![
                "system:serviceaccount:ns:sa1".into(),
                "system:serviceaccount:ns:sa2".into()
            ]
        )
    );
    assert_eq!(
        d.changes[1].diff,
        vec![DiffItem::add(
            "actions",
            vec!["ec2:A".into(), "ec2:B".into()]
        )]
    );
}

#[test]
fn a_stale_trust_and_a_policy_missing_an_action_are_updated() {
    let plans = role_plans();
    let mut have = observed_role(&plans[0]);
    have.trust = crate::aws::trust_policy(
        ARN,
        "c-oidc.s3.us-east-1.amazonaws.com",
        "ns",
        &["sa1".into()],
    );
    have.policy = Some(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ec2:A"], "Resource": "*"}]}));
    let d = diff_role(0, &plans[0], Some(&have));
    assert_eq!(d.steps, vec![RoleStep::UpdateTrust, RoleStep::PutPolicy]);
    assert_eq!(
        d.changes[0].diff,
        vec![DiffItem::add(
            "subjects",
            vec!["system:serviceaccount:ns:sa2".into()]
        )]
    );
    assert_eq!(
        d.changes[1].diff,
        vec![DiffItem::add("actions", vec!["ec2:B".into()])]
    );
    assert!(diff_role(0, &plans[0], Some(&observed_role(&plans[0])))
        .steps
        .is_empty());
}

#[test]
fn owned_unrequested_roles_are_noted_or_deleted_and_foreign_ones_left_alone() {
    let plans = role_plans();
    let mut existing = BTreeMap::new();
    existing.insert(plans[0].role_name.clone(), observed_role(&plans[0]));
    let retired = ObservedRole {
        name: "c-old-secret".into(),
        tags: crate::aws::owned_tags("c"),
        inline_policies: vec!["c-old-secret".into()],
        attached_policies: vec!["arn:aws:iam::aws:policy/X".into()],
        ..Default::default()
    };
    let foreign = ObservedRole {
        name: "c-someone-else".into(),
        ..Default::default()
    };
    let unrequested = [retired.clone(), foreign];
    let (roles, deletions, notes) = diff_roles("c", &plans, &existing, &unrequested, false);
    assert!(roles.iter().all(|r| r.steps.is_empty()));
    assert!(deletions.is_empty());
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("c-old-secret"), "{notes:?}");
    let (_, deletions, notes) = diff_roles("c", &plans, &existing, &unrequested, true);
    assert!(notes.is_empty());
    assert_eq!(
        deletions[0].api_calls(),
        [
            "iam:DeleteRolePolicy",
            "iam:DetachRolePolicy",
            "iam:DeleteRole"
        ]
    );
    let plan = AwsChangePlan {
        issuer: None,
        roles,
        deletions,
        notes,
    };
    let report = plan.report("c");
    assert_eq!(report.exit_code(), 2);
    assert_eq!(report.changes[0].action, ChangeAction::Delete);
}
