//! `create-identity-provider`: the issuer bucket, its documents, the optional CloudFront front, and
//! the IAM OIDC provider. The run observes what exists ([`crate::observe`]), plans with
//! `cco_core::aws::diff_issuer`, and executes only the plan's steps, one API call each.

use aws_sdk_cloudfront::types as cf;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types as s3t;
use cco_core::aws::{
    diff_issuer, IdentityProviderPlan, IssuerDiff, IssuerStep, PublicAccessBlock,
    CACHING_DISABLED_POLICY_ID, CLIENT_IDS,
};
use serde_json::Value;

use crate::observe::observe_issuer;
use crate::{tls, Aws, AwsError};

/// Choices that are not part of the plan.
#[derive(Clone, Debug, Default)]
pub struct IdpOptions {
    /// Use this thumbprint instead of fetching the issuer's certificate (an issuer not served over
    /// public TLS, such as a local emulator).
    pub thumbprint: Option<String>,
    /// Extra trusted CA (PEM) for fetching the issuer's certificate.
    pub issuer_ca_pem: Option<Vec<u8>>,
    /// Publish only the current key instead of keeping previously published keys beside it.
    pub prune_old_keys: bool,
}

/// What `create-identity-provider` produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityProviderOutcome {
    pub issuer: String,
    pub provider_arn: String,
    /// False when the provider already existed and was reused.
    pub provider_created: bool,
}

fn s3_tags(plan: &IdentityProviderPlan) -> Result<Vec<s3t::Tag>, AwsError> {
    plan.tags
        .iter()
        .map(|(k, v)| {
            s3t::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| AwsError::Local(e.to_string()))
        })
        .collect()
}

/// The thumbprint to record for `issuer`: the one given, or the issuer certificate's.
pub async fn thumbprint_for(issuer: &str, opts: &IdpOptions) -> Result<String, AwsError> {
    match &opts.thumbprint {
        Some(t) => Ok(t.to_ascii_lowercase()),
        None => tls::issuer_thumbprint(issuer, opts.issuer_ca_pem.as_deref()).await,
    }
}

/// Observes the issuer side and compares it with `plan`: what `create-identity-provider` would do
/// now. Reads only.
pub async fn plan_identity_provider(
    aws: &Aws,
    plan: &IdentityProviderPlan,
    opts: &IdpOptions,
    account: &str,
) -> Result<IssuerDiff, AwsError> {
    let observed = observe_issuer(aws, plan, account).await?;
    let thumbprint = match observed.issuer(plan) {
        Some(issuer) => Some(thumbprint_for(&issuer, opts).await?),
        None => None,
    };
    Ok(diff_issuer(
        plan,
        &observed,
        thumbprint.as_deref(),
        opts.prune_old_keys,
    ))
}

/// Creates (or brings up to date) everything the issuer needs: observes, plans with
/// [`plan_identity_provider`] and executes the plan's steps. Safe to re-run. With CloudFront, the
/// issuer is known only once the distribution exists, so the run re-plans once after creating it.
pub async fn create_identity_provider(
    aws: &Aws,
    plan: &IdentityProviderPlan,
    opts: &IdpOptions,
) -> Result<IdentityProviderOutcome, AwsError> {
    let account = aws.preflight().await?;
    let mut provider_created = false;
    for _round in 0..3 {
        let diff = plan_identity_provider(aws, plan, opts, &account).await?;
        let replan = apply_issuer_steps(aws, plan, &diff.steps).await?;
        if !replan {
            provider_created |= diff
                .steps
                .iter()
                .any(|s| matches!(s, IssuerStep::CreateProvider { .. }));
            return match (diff.issuer, diff.provider_arn) {
                (Some(issuer), Some(provider_arn)) => Ok(IdentityProviderOutcome {
                    issuer,
                    provider_arn,
                    provider_created,
                }),
                _ => Err(AwsError::Unexpected(
                    "the issuer is still unknown after creating it".into(),
                )),
            };
        }
    }
    Err(AwsError::Unexpected(
        "the CloudFront distribution did not appear after it was created; re-run the command"
            .into(),
    ))
}

/// Executes issuer steps in order. Returns `true` when it stopped after creating the CloudFront
/// distribution, whose domain the rest of the plan depends on: the caller re-plans.
pub async fn apply_issuer_steps(
    aws: &Aws,
    plan: &IdentityProviderPlan,
    steps: &[IssuerStep],
) -> Result<bool, AwsError> {
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        tracing::debug!(step = i + 1, total, call = step.api_call(), "issuer step");
        match step {
            IssuerStep::CreateBucket => create_bucket(aws, plan).await?,
            IssuerStep::TagBucket => tag_bucket(aws, plan).await?,
            IssuerStep::PutPublicAccessBlock(p) => {
                put_public_access_block(aws, &plan.bucket, p).await?
            }
            IssuerStep::PutBucketPolicy(policy) => {
                put_bucket_policy(aws, &plan.bucket, policy).await?
            }
            IssuerStep::CreateOriginAccessControl => {
                create_origin_access_control(aws, plan).await?;
            }
            IssuerStep::CreateDistribution => {
                let oac = find_origin_access_control(aws, &plan.oac_name())
                    .await?
                    .ok_or_else(|| {
                        AwsError::Unexpected(format!(
                            "origin access control {} not found; re-run the command",
                            plan.oac_name()
                        ))
                    })?;
                create_distribution(aws, plan, &oac).await?;
                return Ok(true);
            }
            IssuerStep::PutObject { key, body } => put_document(aws, plan, key, body).await?,
            IssuerStep::CreateProvider { issuer, thumbprint } => {
                create_oidc_provider(aws, plan, issuer, thumbprint).await?;
            }
            IssuerStep::AddClientId { arn, client_id } => {
                aws.iam
                    .add_client_id_to_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .client_id(client_id)
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::call("iam:AddClientIDToOpenIDConnectProvider", arn, e)
                    })?;
            }
            IssuerStep::UpdateThumbprint { arn, thumbprint } => {
                aws.iam
                    .update_open_id_connect_provider_thumbprint()
                    .open_id_connect_provider_arn(arn)
                    .thumbprint_list(thumbprint)
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::call("iam:UpdateOpenIDConnectProviderThumbprint", arn, e)
                    })?;
                tracing::debug!(%arn, "identity provider thumbprint updated");
            }
            IssuerStep::TagProvider { arn } => {
                aws.iam
                    .tag_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .set_tags(Some(iam_tags(&plan.tags)?))
                    .send()
                    .await
                    .map_err(|e| AwsError::call("iam:TagOpenIDConnectProvider", arn, e))?;
            }
        }
    }
    Ok(false)
}

async fn create_bucket(aws: &Aws, plan: &IdentityProviderPlan) -> Result<(), AwsError> {
    let mut req = aws.s3.create_bucket().bucket(&plan.bucket);
    if plan.region != "us-east-1" {
        req = req.create_bucket_configuration(
            s3t::CreateBucketConfiguration::builder()
                .location_constraint(s3t::BucketLocationConstraint::from(plan.region.as_str()))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => tracing::info!(bucket = %plan.bucket, "bucket created"),
        Err(e) => {
            let svc = e.as_service_error();
            if svc.is_some_and(|s| s.is_bucket_already_owned_by_you()) {
                tracing::info!(bucket = %plan.bucket, "bucket exists, reusing it");
            } else if svc.is_some_and(|s| s.is_bucket_already_exists()) {
                return Err(AwsError::BucketTaken {
                    bucket: plan.bucket.clone(),
                });
            } else {
                return Err(AwsError::call("s3:CreateBucket", &plan.bucket, e));
            }
        }
    }
    Ok(())
}

async fn tag_bucket(aws: &Aws, plan: &IdentityProviderPlan) -> Result<(), AwsError> {
    aws.s3
        .put_bucket_tagging()
        .bucket(&plan.bucket)
        .tagging(
            s3t::Tagging::builder()
                .set_tag_set(Some(s3_tags(plan)?))
                .build()
                .map_err(|e| AwsError::Local(e.to_string()))?,
        )
        .send()
        .await
        .map_err(|e| AwsError::call("s3:PutBucketTagging", &plan.bucket, e))?;
    Ok(())
}

async fn put_public_access_block(
    aws: &Aws,
    bucket: &str,
    p: &PublicAccessBlock,
) -> Result<(), AwsError> {
    aws.s3
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            s3t::PublicAccessBlockConfiguration::builder()
                .block_public_acls(p.block_public_acls)
                .ignore_public_acls(p.ignore_public_acls)
                .block_public_policy(p.block_public_policy)
                .restrict_public_buckets(p.restrict_public_buckets)
                .build(),
        )
        .send()
        .await
        .map_err(|e| AwsError::call("s3:PutPublicAccessBlock", bucket, e))?;
    Ok(())
}

async fn put_bucket_policy(aws: &Aws, bucket: &str, policy: &Value) -> Result<(), AwsError> {
    aws.s3
        .put_bucket_policy()
        .bucket(bucket)
        .policy(policy.to_string())
        .send()
        .await
        .map_err(|e| AwsError::call("s3:PutBucketPolicy", bucket, e))?;
    Ok(())
}

/// Reads an object, or `None` when it does not exist.
pub async fn get_object(aws: &Aws, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, AwsError> {
    match aws.s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let bytes =
                out.body.collect().await.map_err(|e| {
                    AwsError::Unexpected(format!("reading s3://{bucket}/{key}: {e}"))
                })?;
            Ok(Some(bytes.into_bytes().to_vec()))
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
        Err(e) => Err(AwsError::call(
            "s3:GetObject",
            format!("s3://{bucket}/{key}"),
            e,
        )),
    }
}

async fn put_document(
    aws: &Aws,
    plan: &IdentityProviderPlan,
    key: &str,
    body: &str,
) -> Result<(), AwsError> {
    let bucket = &plan.bucket;
    // The ownership tags on the objects too, as the reference tool does: its `delete` removes only
    // tagged objects, and a bucket with objects left in it cannot be deleted.
    let tagging = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(plan.tags.iter())
        .finish();
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .tagging(&tagging)
        .content_type("application/json")
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .map_err(|e| AwsError::call("s3:PutObject", format!("s3://{bucket}/{key}"), e))?;
    tracing::info!(%bucket, %key, "issuer document uploaded");
    Ok(())
}

async fn create_origin_access_control(
    aws: &Aws,
    plan: &IdentityProviderPlan,
) -> Result<String, AwsError> {
    let name = plan.oac_name();
    let cfg = cf::OriginAccessControlConfig::builder()
        .name(&name)
        .description(format!("OIDC issuer bucket of {}", plan.name))
        .signing_protocol(cf::OriginAccessControlSigningProtocols::Sigv4)
        .signing_behavior(cf::OriginAccessControlSigningBehaviors::Always)
        .origin_access_control_origin_type(cf::OriginAccessControlOriginTypes::S3)
        .build()
        .map_err(|e| AwsError::Local(e.to_string()))?;
    let out = aws
        .cloudfront
        .create_origin_access_control()
        .origin_access_control_config(cfg)
        .send()
        .await
        .map_err(|e| AwsError::call("cloudfront:CreateOriginAccessControl", &name, e))?;
    let id = out
        .origin_access_control()
        .map(|o| o.id().to_string())
        .ok_or_else(|| AwsError::Unexpected("CreateOriginAccessControl returned no id".into()))?;
    tracing::info!(%name, %id, "origin access control created");
    Ok(id)
}

/// The id of the origin access control named `name`, if any.
pub async fn find_origin_access_control(aws: &Aws, name: &str) -> Result<Option<String>, AwsError> {
    let mut marker: Option<String> = None;
    loop {
        let out = aws
            .cloudfront
            .list_origin_access_controls()
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| AwsError::call("cloudfront:ListOriginAccessControls", name, e))?;
        let Some(list) = out.origin_access_control_list() else {
            return Ok(None);
        };
        if let Some(found) = list.items().iter().find(|o| o.name() == name) {
            return Ok(Some(found.id().to_string()));
        }
        match list.next_marker() {
            Some(m) if list.is_truncated() && !m.is_empty() => marker = Some(m.to_string()),
            _ => return Ok(None),
        }
    }
}

/// How a distribution's S3 origin reads the private bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginAccess {
    /// Through an origin access control (what this tool creates): its id.
    Control(String),
    /// Through a legacy origin access identity (what the reference tool creates): its id.
    Identity(String),
    /// Neither (a public origin).
    None,
}

impl OriginAccess {
    fn of(origin: &cf::Origin) -> OriginAccess {
        if let Some(id) = origin.origin_access_control_id().filter(|i| !i.is_empty()) {
            return OriginAccess::Control(id.to_string());
        }
        match origin
            .s3_origin_config()
            .map(|c| c.origin_access_identity())
            .and_then(|i| i.strip_prefix("origin-access-identity/cloudfront/"))
        {
            Some(id) if !id.is_empty() => OriginAccess::Identity(id.to_string()),
            _ => OriginAccess::None,
        }
    }
}

/// A distribution in front of the issuer bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundDistribution {
    pub id: String,
    pub domain: String,
    pub arn: String,
    pub access: OriginAccess,
}

/// Distributions whose origin is the issuer bucket.
pub async fn find_distributions(
    aws: &Aws,
    origin_domain: &str,
) -> Result<Vec<FoundDistribution>, AwsError> {
    let mut found = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = aws
            .cloudfront
            .list_distributions()
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| AwsError::call("cloudfront:ListDistributions", origin_domain, e))?;
        let Some(list) = out.distribution_list() else {
            break;
        };
        for d in list.items() {
            let ours = match d.origins().filter(|o| !o.items().is_empty()) {
                Some(o) => o
                    .items()
                    .iter()
                    .find(|i| i.domain_name() == origin_domain)
                    .map(OriginAccess::of),
                // Some emulators leave Origins out of the summary; read this one's config instead.
                None => distribution_origin(aws, d.id(), origin_domain).await?,
            };
            if let Some(access) = ours {
                found.push(FoundDistribution {
                    id: d.id().to_string(),
                    domain: d.domain_name().to_string(),
                    arn: d.arn().to_string(),
                    access,
                });
            }
        }
        match list.next_marker() {
            Some(m) if list.is_truncated() && !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(found)
}

async fn distribution_origin(
    aws: &Aws,
    id: &str,
    origin_domain: &str,
) -> Result<Option<OriginAccess>, AwsError> {
    let out = aws
        .cloudfront
        .get_distribution_config()
        .id(id)
        .send()
        .await
        .map_err(|e| AwsError::call("cloudfront:GetDistributionConfig", id, e))?;
    Ok(out
        .distribution_config()
        .and_then(|c| c.origins())
        .and_then(|o| o.items().iter().find(|i| i.domain_name() == origin_domain))
        .map(OriginAccess::of))
}

fn distribution_config(
    plan: &IdentityProviderPlan,
    oac_id: &str,
) -> Result<cf::DistributionConfig, AwsError> {
    let b = |e: aws_sdk_cloudfront::error::BuildError| AwsError::Local(e.to_string());
    let origin_id = format!("S3-{}", plan.bucket);
    let origin = cf::Origin::builder()
        .id(&origin_id)
        .domain_name(plan.bucket_regional_domain())
        .origin_access_control_id(oac_id)
        .s3_origin_config(
            cf::S3OriginConfig::builder()
                .origin_access_identity("")
                .build(),
        )
        .build()
        .map_err(b)?;
    let methods = cf::AllowedMethods::builder()
        .quantity(2)
        .items(cf::Method::Get)
        .items(cf::Method::Head)
        .cached_methods(
            cf::CachedMethods::builder()
                .quantity(2)
                .items(cf::Method::Get)
                .items(cf::Method::Head)
                .build()
                .map_err(b)?,
        )
        .build()
        .map_err(b)?;
    let behaviour = cf::DefaultCacheBehavior::builder()
        .target_origin_id(&origin_id)
        .viewer_protocol_policy(cf::ViewerProtocolPolicy::HttpsOnly)
        .allowed_methods(methods)
        .cache_policy_id(CACHING_DISABLED_POLICY_ID)
        .build()
        .map_err(b)?;
    cf::DistributionConfig::builder()
        .caller_reference(&plan.bucket)
        .comment(format!("OIDC issuer for {}", plan.name))
        .enabled(true)
        .origins(
            cf::Origins::builder()
                .quantity(1)
                .items(origin)
                .build()
                .map_err(b)?,
        )
        .default_cache_behavior(behaviour)
        .build()
        .map_err(b)
}

async fn create_distribution(
    aws: &Aws,
    plan: &IdentityProviderPlan,
    oac_id: &str,
) -> Result<FoundDistribution, AwsError> {
    let tags = plan
        .tags
        .iter()
        .map(|(k, v)| cf::Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AwsError::Local(e.to_string()))?;
    let with_tags = cf::DistributionConfigWithTags::builder()
        .distribution_config(distribution_config(plan, oac_id)?)
        .tags(cf::Tags::builder().set_items(Some(tags)).build())
        .build();
    let out = aws
        .cloudfront
        .create_distribution_with_tags()
        .distribution_config_with_tags(with_tags)
        .send()
        .await
        .map_err(|e| AwsError::call("cloudfront:CreateDistributionWithTags", &plan.bucket, e))?;
    let d = out.distribution().ok_or_else(|| {
        AwsError::Unexpected("CreateDistribution returned no distribution".into())
    })?;
    tracing::info!(id = %d.id(), domain = %d.domain_name(), "CloudFront distribution created");
    Ok(FoundDistribution {
        id: d.id().to_string(),
        domain: d.domain_name().to_string(),
        arn: d.arn().to_string(),
        access: OriginAccess::Control(oac_id.to_string()),
    })
}

pub(crate) fn iam_tags(
    plan_tags: &[(String, String)],
) -> Result<Vec<aws_sdk_iam::types::Tag>, AwsError> {
    plan_tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| AwsError::Local(e.to_string()))
        })
        .collect()
}

async fn create_oidc_provider(
    aws: &Aws,
    plan: &IdentityProviderPlan,
    issuer: &str,
    thumbprint: &str,
) -> Result<(), AwsError> {
    let out = aws
        .iam
        .create_open_id_connect_provider()
        .url(issuer)
        .set_client_id_list(Some(CLIENT_IDS.iter().map(|s| s.to_string()).collect()))
        .thumbprint_list(thumbprint)
        .set_tags(Some(iam_tags(&plan.tags)?))
        .send()
        .await;
    match out {
        Ok(o) => {
            tracing::debug!(
                arn = o.open_id_connect_provider_arn().unwrap_or(""),
                "identity provider created"
            );
            Ok(())
        }
        // Another run created it between our look and our create.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_entity_already_exists_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(AwsError::call("iam:CreateOpenIDConnectProvider", issuer, e)),
    }
}
