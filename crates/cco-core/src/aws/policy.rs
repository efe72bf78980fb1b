//! IAM policy documents: role trust policies, inline permission policies and bucket policies.

use cco_api::StatementEntry;
use serde_json::{json, Map, Value};

use super::{issuer_host_path, Partition};

/// A note about a request's statements that was handled explicitly (merged duplicates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyNote {
    pub statement: usize,
    pub message: String,
}

/// Trust policy letting the given ServiceAccounts assume a role through the OIDC provider.
pub fn trust_policy(
    provider_arn: &str,
    issuer_host_path_: &str,
    namespace: &str,
    service_accounts: &[String],
) -> Value {
    let subs: Vec<String> = service_accounts
        .iter()
        .map(|sa| format!("system:serviceaccount:{namespace}:{sa}"))
        .collect();
    let mut cond = Map::new();
    cond.insert(
        format!("{}:sub", issuer_host_path(issuer_host_path_)),
        json!(subs),
    );
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": cond}
        }]
    })
}

/// The inline permission policy for a request's statements, with conditions kept. Duplicate actions
/// inside a statement are merged, and each merge is reported in the returned notes.
pub fn permission_policy(entries: &[StatementEntry]) -> (Value, Vec<PolicyNote>) {
    let mut notes = Vec::new();
    let statements: Vec<Value> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut actions: Vec<&str> = Vec::with_capacity(e.action.len());
            for a in &e.action {
                if actions.contains(&a.as_str()) {
                    notes.push(PolicyNote {
                        statement: i,
                        message: format!("action {a} is listed twice; merged"),
                    });
                } else {
                    actions.push(a);
                }
            }
            let mut s = Map::new();
            s.insert("Effect".into(), json!(e.effect));
            s.insert("Action".into(), json!(actions));
            s.insert("Resource".into(), json!(e.resource));
            if !e.policy_condition.is_empty() {
                s.insert("Condition".into(), json!(e.policy_condition));
            }
            Value::Object(s)
        })
        .collect();
    (
        json!({"Version": "2012-10-17", "Statement": statements}),
        notes,
    )
}

/// Bucket policy granting anonymous read of the issuer documents (public-bucket variant), in the
/// reference tool's statement shape (`Sid`, `Action` as a list).
pub fn public_read_bucket_policy(partition: &Partition, bucket: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowReadPublicAccess",
            "Principal": "*",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [format!("arn:{}:s3:::{bucket}/*", partition.id)]
        }]
    })
}

/// Bucket policy letting a CloudFront origin access identity read the issuer documents, as the
/// reference tool's private-bucket setup writes it.
pub fn origin_access_identity_bucket_policy(
    partition: &Partition,
    bucket: &str,
    oai_id: &str,
) -> Value {
    json!({
        "Version": "2008-10-17",
        "Id": "PolicyForCloudFrontPrivateContent",
        "Statement": [{
            "Sid": "1",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:{}:iam::cloudfront:user/CloudFront Origin Access Identity {oai_id}", partition.id)},
            "Action": "s3:GetObject",
            "Resource": format!("arn:{}:s3:::{bucket}/*", partition.id)
        }]
    })
}

/// Bucket policy granting a CloudFront distribution read access through origin access control.
pub fn cloudfront_read_bucket_policy(
    partition: &Partition,
    bucket: &str,
    account: &str,
    distribution_id: &str,
) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowCloudFrontServicePrincipalReadOnly",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": format!("arn:{}:s3:::{bucket}/*", partition.id),
            "Condition": {"StringEquals": {
                "AWS:SourceArn": format!("arn:{}:cloudfront::{account}:distribution/{distribution_id}", partition.id)
            }}
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn trust_policy_lists_every_service_account() {
        let p = trust_policy(
            "arn:aws:iam::1:oidc-provider/h/p",
            "https://h/p",
            "ns",
            &["a".into(), "b".into()],
        );
        assert_eq!(
            p["Statement"][0]["Condition"]["StringEquals"]["h/p:sub"],
            json!(["system:serviceaccount:ns:a", "system:serviceaccount:ns:b"])
        );
        assert_eq!(
            p["Statement"][0]["Principal"]["Federated"],
            "arn:aws:iam::1:oidc-provider/h/p"
        );
    }

    #[test]
    fn permission_policy_keeps_conditions_and_merges_duplicate_actions() {
        let mut cond = BTreeMap::new();
        cond.insert(
            "Bool".to_string(),
            BTreeMap::from([("kms:GrantIsForAWSResource".to_string(), json!(true))]),
        );
        let e = StatementEntry {
            effect: "Allow".into(),
            action: vec!["kms:CreateGrant".into(), "kms:CreateGrant".into()],
            resource: "*".into(),
            policy_condition: cond,
        };
        let (p, notes) = permission_policy(&[e]);
        assert_eq!(p["Statement"][0]["Action"], json!(["kms:CreateGrant"]));
        assert_eq!(
            p["Statement"][0]["Condition"]["Bool"]["kms:GrantIsForAWSResource"],
            json!(true)
        );
        assert_eq!(notes.len(), 1);
    }
}
