//! Reading what exists, into `cco_core::aws`'s observed-state types. Only read calls are made here.
//!
//! [`observe_issuer`] reads the issuer bucket (tags, public access block, policy, documents), the
//! CloudFront origin access control and distribution, and the IAM OIDC provider of the issuer.
//! [`observe_roles`] lists the account's roles once, reads the requested ones that exist, and (when
//! asked) the other roles named `<name>-…`, so that owned roles no request asks for can be reported.

use std::collections::BTreeMap;

use aws_sdk_s3::error::ProvideErrorMetadata;
use cco_core::aws::{
    provider_arn, Front, IdentityProviderPlan, ObservedBucket, ObservedDistribution,
    ObservedIssuer, ObservedProvider, ObservedRole, PublicAccessBlock, RolePlan,
};
use cco_core::oidc::{DISCOVERY_PATH, KEYS_PATH};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;

use crate::idp::{find_distributions, find_origin_access_control, get_object, OriginAccess};
use crate::{Aws, AwsError};

/// Parses a policy document IAM returned (percent-encoded, as AWS does) or S3 returned (plain).
pub fn parse_policy_document(doc: &str) -> Value {
    let decoded = percent_encoding::percent_decode_str(doc)
        .decode_utf8()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| doc.to_string());
    serde_json::from_str(&decoded)
        .or_else(|_| serde_json::from_str(doc))
        .unwrap_or(Value::String(doc.to_string()))
}

fn s3_code<E: ProvideErrorMetadata>(e: &E) -> &str {
    e.code().unwrap_or("")
}

/// The issuer bucket, or `None` when it does not exist.
pub async fn observe_bucket(aws: &Aws, bucket: &str) -> Result<Option<ObservedBucket>, AwsError> {
    match aws.s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => return Ok(None),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => return Ok(None),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => {
            return Err(AwsError::BucketTaken {
                bucket: bucket.to_string(),
            })
        }
        Err(e) => return Err(AwsError::call("s3:HeadBucket", bucket, e)),
    }
    let tags = match aws.s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        Err(e) if matches!(s3_code(&e), "NoSuchTagSet" | "NoSuchTagSetError") => Vec::new(),
        Err(e) => return Err(AwsError::call("s3:GetBucketTagging", bucket, e)),
    };
    let public_access_block = match aws.s3.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => out
            .public_access_block_configuration()
            .map(|c| PublicAccessBlock {
                block_public_acls: c.block_public_acls().unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                block_public_policy: c.block_public_policy().unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
            }),
        Err(e) if s3_code(&e) == "NoSuchPublicAccessBlockConfiguration" => None,
        Err(e) => return Err(AwsError::call("s3:GetPublicAccessBlock", bucket, e)),
    };
    let policy = match aws.s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(out) => out.policy().map(parse_policy_document),
        Err(e) if s3_code(&e) == "NoSuchBucketPolicy" => None,
        Err(e) => return Err(AwsError::call("s3:GetBucketPolicy", bucket, e)),
    };
    let text = |b: Option<Vec<u8>>| b.map(|b| String::from_utf8_lossy(&b).to_string());
    let discovery = text(get_object(aws, bucket, DISCOVERY_PATH).await?);
    let keys = text(get_object(aws, bucket, KEYS_PATH).await?);
    Ok(Some(ObservedBucket {
        tags,
        public_access_block,
        policy,
        discovery_tags: object_tags(aws, bucket, DISCOVERY_PATH, discovery.is_some()).await?,
        keys_tags: object_tags(aws, bucket, KEYS_PATH, keys.is_some()).await?,
        discovery,
        keys,
    }))
}

/// The tags of an object (empty when it does not exist).
async fn object_tags(
    aws: &Aws,
    bucket: &str,
    key: &str,
    exists: bool,
) -> Result<Vec<(String, String)>, AwsError> {
    if !exists {
        return Ok(Vec::new());
    }
    match aws
        .s3
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()),
        Err(e) if s3_code(&e) == "NoSuchKey" => Ok(Vec::new()),
        Err(e) => Err(AwsError::call(
            "s3:GetObjectTagging",
            format!("s3://{bucket}/{key}"),
            e,
        )),
    }
}

/// The IAM OIDC provider `arn`, or `None` when it does not exist.
pub async fn observe_provider(aws: &Aws, arn: &str) -> Result<Option<ObservedProvider>, AwsError> {
    let got = match aws
        .iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
    {
        Ok(got) => got,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(AwsError::call("iam:GetOpenIDConnectProvider", arn, e)),
    };
    let tags = aws
        .iam
        .list_open_id_connect_provider_tags()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
        .map_err(|e| AwsError::call("iam:ListOpenIDConnectProviderTags", arn, e))?;
    Ok(Some(ObservedProvider {
        arn: arn.to_string(),
        client_ids: got.client_id_list().to_vec(),
        thumbprints: got.thumbprint_list().to_vec(),
        tags: tags
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
    }))
}

/// Everything of the issuer side of `plan` that exists in `account`.
pub async fn observe_issuer(
    aws: &Aws,
    plan: &IdentityProviderPlan,
    account: &str,
) -> Result<ObservedIssuer, AwsError> {
    let mut o = ObservedIssuer {
        account: account.to_string(),
        bucket: observe_bucket(aws, &plan.bucket).await?,
        ..Default::default()
    };
    if plan.front == Front::CloudFront {
        o.origin_access_control = find_origin_access_control(aws, &plan.oac_name()).await?;
        o.distribution = find_distributions(aws, &plan.bucket_regional_domain())
            .await?
            .into_iter()
            .next()
            .map(|d| ObservedDistribution {
                id: d.id,
                domain: d.domain,
                origin_access_identity: match d.access {
                    OriginAccess::Identity(oai) => Some(oai),
                    _ => None,
                },
            });
    }
    if let Some(issuer) = o.issuer(plan) {
        o.provider =
            observe_provider(aws, &provider_arn(&plan.partition, account, &issuer)).await?;
    }
    Ok(o)
}

/// Reads one role: trust, tags, boundary, the inline policy named `policy_name`, and (when
/// `list_policies`) the names of all inline and attached policies. `None` when it does not exist.
pub async fn observe_role(
    aws: &Aws,
    role: &str,
    policy_name: Option<&str>,
    list_policies: bool,
) -> Result<Option<ObservedRole>, AwsError> {
    let got = match aws.iam.get_role().role_name(role).send().await {
        Ok(got) => got,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(AwsError::call("iam:GetRole", role, e)),
    };
    let Some(r) = got.role() else {
        return Ok(None);
    };
    let mut o = ObservedRole {
        name: role.to_string(),
        trust: r
            .assume_role_policy_document()
            .map(parse_policy_document)
            .unwrap_or(Value::Null),
        tags: r
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        permissions_boundary: r
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_owned),
        ..Default::default()
    };
    if let Some(p) = policy_name {
        o.policy = match aws
            .iam
            .get_role_policy()
            .role_name(role)
            .policy_name(p)
            .send()
            .await
        {
            Ok(out) => Some(parse_policy_document(out.policy_document())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                None
            }
            Err(e) => return Err(AwsError::call("iam:GetRolePolicy", role, e)),
        };
    }
    if list_policies {
        let inline = aws
            .iam
            .list_role_policies()
            .role_name(role)
            .send()
            .await
            .map_err(|e| AwsError::call("iam:ListRolePolicies", role, e))?;
        o.inline_policies = inline.policy_names().to_vec();
        let attached = aws
            .iam
            .list_attached_role_policies()
            .role_name(role)
            .send()
            .await
            .map_err(|e| AwsError::call("iam:ListAttachedRolePolicies", role, e))?;
        o.attached_policies = attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_owned))
            .collect();
    }
    Ok(Some(o))
}

/// Names of every role starting with `prefix`.
pub async fn role_names_with_prefix(aws: &Aws, prefix: &str) -> Result<Vec<String>, AwsError> {
    let mut names = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = aws
            .iam
            .list_roles()
            .set_marker(marker.clone())
            .max_items(1000)
            .send()
            .await
            .map_err(|e| AwsError::call("iam:ListRoles", "account", e))?;
        names.extend(
            out.roles()
                .iter()
                .map(|r| r.role_name().to_string())
                .filter(|n| n.starts_with(prefix)),
        );
        match out.marker() {
            Some(m) if out.is_truncated() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(names)
}

/// The requested roles that exist (by role name) and, when `unrequested` is set, every other role
/// whose name starts with `prefix` (`<name>-`), with its policies listed (ownership is decided by
/// the caller).
pub async fn observe_roles(
    aws: &Aws,
    prefix: &str,
    plans: &[RolePlan],
    unrequested: bool,
) -> Result<(BTreeMap<String, ObservedRole>, Vec<ObservedRole>), AwsError> {
    let names = role_names_with_prefix(aws, prefix).await?;
    let planned: BTreeMap<&str, &RolePlan> =
        plans.iter().map(|p| (p.role_name.as_str(), p)).collect();
    let existing: Vec<&RolePlan> = names
        .iter()
        .filter_map(|n| planned.get(n.as_str()).copied())
        .collect();
    let found: Vec<ObservedRole> = stream::iter(existing)
        .map(|p| observe_role(aws, &p.role_name, Some(&p.policy_name), false))
        .buffer_unordered(aws.concurrency)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    let existing = found.into_iter().map(|r| (r.name.clone(), r)).collect();
    let mut others = Vec::new();
    if unrequested {
        let candidates: Vec<&String> = names
            .iter()
            .filter(|n| !planned.contains_key(n.as_str()))
            .collect();
        others = stream::iter(candidates)
            .map(|n| observe_role(aws, n, None, true))
            .buffer_unordered(aws.concurrency)
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .flatten()
            .collect();
        others.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok((existing, others))
}
