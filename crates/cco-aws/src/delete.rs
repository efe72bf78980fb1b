//! `delete`: finds what `ccoctl aws` (or the reference tool) made for a `--name` and removes it.
//!
//! Nothing unrelated is inspected in depth: role candidates are the roles whose name starts with
//! `<name>-` (every role we create does), OIDC provider candidates are those whose issuer is our bucket
//! or a CloudFront domain, and distributions are those whose origin is our bucket. Each candidate is
//! removed only when it carries our ownership tag `openshift.io/cloud-credential-operator/<name>=owned`.
//! Origin access identities cannot be tagged: the reference tool marks its one with that tag key as
//! the comment, and the same rule finds it here.

use std::time::Duration;

use aws_sdk_s3::types as s3t;
use cco_core::aws::{bucket_name, bucket_name_problem, owned_tag_key, Partition, OWNED_TAG_VALUE};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::idp::{find_distributions, find_origin_access_control};
use crate::observe::role_names_with_prefix;
use crate::{Aws, AwsError};

/// What `delete` removed (or, in a dry run, would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteReport {
    pub roles: Vec<String>,
    pub providers: Vec<String>,
    pub distributions: Vec<String>,
    pub origin_access_controls: Vec<String>,
    /// Origin access identities (left by the reference tool's private-bucket setup).
    pub origin_access_identities: Vec<String>,
    pub buckets: Vec<String>,
}

fn owned(tags: impl IntoIterator<Item = (String, String)>, key: &str) -> bool {
    tags.into_iter()
        .any(|(k, v)| k == key && v == OWNED_TAG_VALUE)
}

/// Finds and (unless `dry_run`) deletes everything owned by `name`.
pub async fn delete_all(aws: &Aws, name: &str, dry_run: bool) -> Result<DeleteReport, AwsError> {
    let key = owned_tag_key(name);
    let mut report = DeleteReport {
        roles: owned_roles(aws, name, &key).await?,
        ..Default::default()
    };
    stream::iter(report.roles.clone())
        .map(|r| async move {
            if dry_run {
                Ok(())
            } else {
                delete_role(aws, &r).await
            }
        })
        .buffer_unordered(aws.concurrency)
        .try_collect::<Vec<_>>()
        .await?;

    report.providers = owned_providers(aws, name, &key).await?;
    for arn in &report.providers {
        if !dry_run {
            aws.iam
                .delete_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .send()
                .await
                .map_err(|e| AwsError::call("iam:DeleteOpenIDConnectProvider", arn, e))?;
            tracing::debug!(%arn, "identity provider deleted");
        }
    }

    let bucket = bucket_name(name);
    if bucket_name_problem(&bucket).is_some() {
        // No bucket can have this name, so there is no issuer bucket nor anything in front of it.
        return Ok(report);
    }
    let partition = Partition::for_region(&aws.region);
    let origin = format!("{bucket}.s3.{}.{}", aws.region, partition.dns_suffix);
    for found in find_distributions(aws, &origin).await? {
        let (id, arn) = (found.id, found.arn);
        let tags = aws
            .cloudfront
            .list_tags_for_resource()
            .resource(&arn)
            .send()
            .await
            .map_err(|e| AwsError::call("cloudfront:ListTagsForResource", &arn, e))?;
        let pairs = tags
            .tags()
            .map(|t| {
                t.items()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if owned(pairs, &key) {
            if !dry_run {
                delete_distribution(aws, &id).await?;
            }
            report.distributions.push(id);
        }
    }
    if let Some(id) = find_origin_access_control(aws, &bucket).await? {
        if !dry_run {
            let got = aws
                .cloudfront
                .get_origin_access_control()
                .id(&id)
                .send()
                .await
                .map_err(|e| AwsError::call("cloudfront:GetOriginAccessControl", &id, e))?;
            aws.cloudfront
                .delete_origin_access_control()
                .id(&id)
                .set_if_match(got.e_tag().map(str::to_owned))
                .send()
                .await
                .map_err(|e| AwsError::call("cloudfront:DeleteOriginAccessControl", &id, e))?;
            tracing::debug!(%id, "origin access control deleted");
        }
        report.origin_access_controls.push(id);
    }

    report.origin_access_identities = owned_origin_access_identities(aws, &key).await?;
    for id in &report.origin_access_identities {
        if !dry_run {
            delete_origin_access_identity(aws, id).await?;
        }
    }

    if bucket_owned(aws, &bucket, &key).await? {
        if !dry_run {
            empty_and_delete_bucket(aws, &bucket).await?;
        }
        report.buckets.push(bucket);
    }
    Ok(report)
}

/// Origin access identities whose comment is the ownership tag key, as the reference tool writes it.
async fn owned_origin_access_identities(aws: &Aws, key: &str) -> Result<Vec<String>, AwsError> {
    let mut found = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = aws
            .cloudfront
            .list_cloud_front_origin_access_identities()
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| {
                AwsError::call("cloudfront:ListCloudFrontOriginAccessIdentities", key, e)
            })?;
        let Some(list) = out.cloud_front_origin_access_identity_list() else {
            break;
        };
        found.extend(
            list.items()
                .iter()
                .filter(|o| o.comment() == key)
                .map(|o| o.id().to_string()),
        );
        match list.next_marker() {
            Some(m) if list.is_truncated() && !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(found)
}

async fn delete_origin_access_identity(aws: &Aws, id: &str) -> Result<(), AwsError> {
    let got = aws
        .cloudfront
        .get_cloud_front_origin_access_identity()
        .id(id)
        .send()
        .await
        .map_err(|e| AwsError::call("cloudfront:GetCloudFrontOriginAccessIdentity", id, e))?;
    aws.cloudfront
        .delete_cloud_front_origin_access_identity()
        .id(id)
        .set_if_match(got.e_tag().map(str::to_owned))
        .send()
        .await
        .map_err(|e| AwsError::call("cloudfront:DeleteCloudFrontOriginAccessIdentity", id, e))?;
    tracing::debug!(%id, "origin access identity deleted");
    Ok(())
}

async fn owned_roles(aws: &Aws, name: &str, key: &str) -> Result<Vec<String>, AwsError> {
    let candidates = role_names_with_prefix(aws, &format!("{name}-")).await?;
    let checks = stream::iter(candidates)
        .map(|role| async move {
            let out = aws
                .iam
                .list_role_tags()
                .role_name(&role)
                .send()
                .await
                .map_err(|e| AwsError::call("iam:ListRoleTags", &role, e))?;
            let pairs = out
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()));
            Ok::<_, AwsError>(owned(pairs, key).then_some(role))
        })
        .buffer_unordered(aws.concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let mut roles: Vec<String> = checks.into_iter().flatten().collect();
    roles.sort();
    Ok(roles)
}

async fn delete_role(aws: &Aws, role: &str) -> Result<(), AwsError> {
    // Our inline policy is named after the role; try it directly and fall back to listing only if the
    // role still has something attached.
    match aws
        .iam
        .delete_role_policy()
        .role_name(role)
        .policy_name(role)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) => {}
        Err(e) => return Err(AwsError::call("iam:DeleteRolePolicy", role, e)),
    }
    match aws.iam.delete_role().role_name(role).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_delete_conflict_exception()) =>
        {
            detach_everything(aws, role).await?;
            aws.iam
                .delete_role()
                .role_name(role)
                .send()
                .await
                .map_err(|e| AwsError::call("iam:DeleteRole", role, e))?;
        }
        Err(e) => return Err(AwsError::call("iam:DeleteRole", role, e)),
    }
    tracing::debug!(%role, "role deleted");
    Ok(())
}

async fn detach_everything(aws: &Aws, role: &str) -> Result<(), AwsError> {
    let inline = aws
        .iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|e| AwsError::call("iam:ListRolePolicies", role, e))?;
    for p in inline.policy_names() {
        aws.iam
            .delete_role_policy()
            .role_name(role)
            .policy_name(p)
            .send()
            .await
            .map_err(|e| AwsError::call("iam:DeleteRolePolicy", role, e))?;
    }
    let attached = aws
        .iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|e| AwsError::call("iam:ListAttachedRolePolicies", role, e))?;
    for p in attached.attached_policies() {
        if let Some(arn) = p.policy_arn() {
            aws.iam
                .detach_role_policy()
                .role_name(role)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| AwsError::call("iam:DetachRolePolicy", role, e))?;
        }
    }
    Ok(())
}

async fn owned_providers(aws: &Aws, name: &str, key: &str) -> Result<Vec<String>, AwsError> {
    let out = aws
        .iam
        .list_open_id_connect_providers()
        .send()
        .await
        .map_err(|e| AwsError::call("iam:ListOpenIDConnectProviders", "account", e))?;
    let bucket_host = format!("oidc-provider/{}.", bucket_name(name));
    let mut found = Vec::new();
    for p in out.open_id_connect_provider_list() {
        let Some(arn) = p.arn() else { continue };
        if !(arn.contains(&bucket_host) || arn.contains(".cloudfront.net")) {
            continue;
        }
        let tags = aws
            .iam
            .list_open_id_connect_provider_tags()
            .open_id_connect_provider_arn(arn)
            .send()
            .await
            .map_err(|e| AwsError::call("iam:ListOpenIDConnectProviderTags", arn, e))?;
        let pairs = tags
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()));
        if owned(pairs, key) {
            found.push(arn.to_string());
        }
    }
    Ok(found)
}

async fn delete_distribution(aws: &Aws, id: &str) -> Result<(), AwsError> {
    let cfg = aws
        .cloudfront
        .get_distribution_config()
        .id(id)
        .send()
        .await
        .map_err(|e| AwsError::call("cloudfront:GetDistributionConfig", id, e))?;
    let mut etag = cfg.e_tag().map(str::to_owned);
    if let Some(c) = cfg.distribution_config() {
        if c.enabled() {
            let mut disabled = c.clone();
            disabled.enabled = false;
            let out = aws
                .cloudfront
                .update_distribution()
                .id(id)
                .set_if_match(etag.clone())
                .distribution_config(disabled)
                .send()
                .await
                .map_err(|e| AwsError::call("cloudfront:UpdateDistribution", id, e))?;
            etag = out.e_tag().map(str::to_owned);
            tracing::info!(%id, "distribution disabled; waiting for it to deploy before deleting (this takes minutes on AWS)");
        }
    }
    let mut waited = Duration::ZERO;
    loop {
        let d = aws
            .cloudfront
            .get_distribution()
            .id(id)
            .send()
            .await
            .map_err(|e| AwsError::call("cloudfront:GetDistribution", id, e))?;
        etag = d.e_tag().map(str::to_owned).or(etag);
        if d.distribution().is_none_or(|d| d.status() == "Deployed") {
            break;
        }
        if waited > Duration::from_secs(45 * 60) {
            return Err(AwsError::Unexpected(format!(
                "CloudFront distribution {id} is still not deployed after 45 minutes; re-run delete later"
            )));
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
        waited += Duration::from_secs(15);
        tracing::info!(%id, waited_s = waited.as_secs(), "waiting for the distribution to deploy");
    }
    aws.cloudfront
        .delete_distribution()
        .id(id)
        .set_if_match(etag)
        .send()
        .await
        .map_err(|e| AwsError::call("cloudfront:DeleteDistribution", id, e))?;
    tracing::debug!(%id, "distribution deleted");
    Ok(())
}

async fn bucket_owned(aws: &Aws, bucket: &str, key: &str) -> Result<bool, AwsError> {
    match aws.s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => Ok(owned(
            out.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string())),
            key,
        )),
        Err(e) => {
            let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).unwrap_or("");
            if matches!(code, "NoSuchBucket" | "NoSuchTagSet" | "NoSuchTagSetError") {
                Ok(false)
            } else {
                Err(AwsError::call("s3:GetBucketTagging", bucket, e))
            }
        }
    }
}

async fn empty_and_delete_bucket(aws: &Aws, bucket: &str) -> Result<(), AwsError> {
    loop {
        let out = aws
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| AwsError::call("s3:ListObjectsV2", bucket, e))?;
        let keys: Vec<s3t::ObjectIdentifier> = out
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter_map(|k| s3t::ObjectIdentifier::builder().key(k).build().ok())
            .collect();
        if keys.is_empty() {
            break;
        }
        aws.s3
            .delete_objects()
            .bucket(bucket)
            .delete(
                s3t::Delete::builder()
                    .set_objects(Some(keys))
                    .build()
                    .map_err(|e| AwsError::Local(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| AwsError::call("s3:DeleteObjects", bucket, e))?;
    }
    aws.s3
        .delete_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| AwsError::call("s3:DeleteBucket", bucket, e))?;
    tracing::debug!(%bucket, "bucket deleted");
    Ok(())
}
