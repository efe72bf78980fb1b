//! `create-identity-provider`: the issuer bucket, its documents, the optional CloudFront front, and
//! the IAM OIDC provider. Each step first looks for what a previous run made.

use aws_sdk_cloudfront::types as cf;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types as s3t;
use cco_core::aws::{
    cloudfront_read_bucket_policy, origin_access_identity_bucket_policy, provider_arn,
    public_read_bucket_policy, Front, IdentityProviderPlan, CACHING_DISABLED_POLICY_ID, CLIENT_IDS,
};
use cco_core::keys::merge_jwks;
use cco_core::oidc::{to_pretty, DISCOVERY_PATH, KEYS_PATH};
use serde_json::Value;

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

/// Creates (or brings up to date) everything the issuer needs. Safe to re-run.
pub async fn create_identity_provider(
    aws: &Aws,
    plan: &IdentityProviderPlan,
    opts: &IdpOptions,
) -> Result<IdentityProviderOutcome, AwsError> {
    let account = aws.preflight().await?;
    ensure_bucket(aws, plan).await?;
    let issuer = match plan.front {
        Front::PublicBucket => {
            put_public_access_block(aws, &plan.bucket, false).await?;
            let policy = public_read_bucket_policy(&plan.partition, &plan.bucket);
            put_bucket_policy(aws, &plan.bucket, &policy).await?;
            plan.bucket_issuer.clone()
        }
        Front::CloudFront => {
            put_public_access_block(aws, &plan.bucket, true).await?;
            let dist = ensure_distribution(aws, plan).await?;
            // A distribution the reference tool made reads through an origin access identity: keep
            // granting that identity, or the issuer would stop being served.
            let policy = match &dist.access {
                OriginAccess::Identity(oai) => {
                    origin_access_identity_bucket_policy(&plan.partition, &plan.bucket, oai)
                }
                OriginAccess::Control(_) | OriginAccess::None => {
                    cloudfront_read_bucket_policy(&plan.partition, &plan.bucket, &account, &dist.id)
                }
            };
            put_bucket_policy(aws, &plan.bucket, &policy).await?;
            format!("https://{}", dist.domain)
        }
    };
    upload_documents(aws, plan, &issuer, opts.prune_old_keys).await?;
    let thumbprint = match &opts.thumbprint {
        Some(t) => t.to_ascii_lowercase(),
        None => tls::issuer_thumbprint(&issuer, opts.issuer_ca_pem.as_deref()).await?,
    };
    let (arn, provider_created) =
        ensure_oidc_provider(aws, plan, &account, &issuer, &thumbprint).await?;
    Ok(IdentityProviderOutcome {
        issuer,
        provider_arn: arn,
        provider_created,
    })
}

async fn ensure_bucket(aws: &Aws, plan: &IdentityProviderPlan) -> Result<(), AwsError> {
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

async fn put_public_access_block(aws: &Aws, bucket: &str, block_all: bool) -> Result<(), AwsError> {
    aws.s3
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            s3t::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(block_all)
                .restrict_public_buckets(block_all)
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

async fn upload_documents(
    aws: &Aws,
    plan: &IdentityProviderPlan,
    issuer: &str,
    prune: bool,
) -> Result<(), AwsError> {
    let mut jwks = plan.jwks.clone();
    if !prune {
        if let Some(old) = get_object(aws, &plan.bucket, KEYS_PATH).await? {
            if let Ok(old) = serde_json::from_slice::<Value>(&old) {
                jwks = merge_jwks(&jwks, &old);
            }
        }
    }
    let published = jwks["keys"].as_array().map_or(0, Vec::len);
    // The ownership tags on both objects too, as the reference tool does: its `delete` removes only
    // tagged objects, and a bucket with objects left in it cannot be deleted.
    let tagging = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(plan.tags.iter())
        .finish();
    for (key, body) in [
        (DISCOVERY_PATH, to_pretty(&plan.discovery(issuer))),
        (KEYS_PATH, to_pretty(&jwks)),
    ] {
        aws.s3
            .put_object()
            .bucket(&plan.bucket)
            .key(key)
            .tagging(&tagging)
            .content_type("application/json")
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await
            .map_err(|e| {
                AwsError::call("s3:PutObject", format!("s3://{}/{key}", plan.bucket), e)
            })?;
    }
    tracing::info!(bucket = %plan.bucket, keys = published, "issuer documents uploaded");
    Ok(())
}

async fn ensure_origin_access_control(
    aws: &Aws,
    plan: &IdentityProviderPlan,
) -> Result<String, AwsError> {
    let name = plan.oac_name();
    if let Some(id) = find_origin_access_control(aws, &name).await? {
        return Ok(id);
    }
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

async fn ensure_distribution(
    aws: &Aws,
    plan: &IdentityProviderPlan,
) -> Result<FoundDistribution, AwsError> {
    if let Some(d) = find_distributions(aws, &plan.bucket_regional_domain())
        .await?
        .into_iter()
        .next()
    {
        tracing::info!(id = %d.id, domain = %d.domain, "CloudFront distribution exists, reusing it");
        return Ok(d);
    }
    let oac_id = ensure_origin_access_control(aws, plan).await?;
    let tags = plan
        .tags
        .iter()
        .map(|(k, v)| cf::Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AwsError::Local(e.to_string()))?;
    let with_tags = cf::DistributionConfigWithTags::builder()
        .distribution_config(distribution_config(plan, &oac_id)?)
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
        access: OriginAccess::Control(oac_id),
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

async fn ensure_oidc_provider(
    aws: &Aws,
    plan: &IdentityProviderPlan,
    account: &str,
    issuer: &str,
    thumbprint: &str,
) -> Result<(String, bool), AwsError> {
    let arn = provider_arn(&plan.partition, account, issuer);
    match aws
        .iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
    {
        Ok(existing) => {
            for id in CLIENT_IDS {
                if !existing.client_id_list().iter().any(|c| c == id) {
                    aws.iam
                        .add_client_id_to_open_id_connect_provider()
                        .open_id_connect_provider_arn(&arn)
                        .client_id(id)
                        .send()
                        .await
                        .map_err(|e| {
                            AwsError::call("iam:AddClientIDToOpenIDConnectProvider", &arn, e)
                        })?;
                }
            }
            if !existing
                .thumbprint_list()
                .iter()
                .any(|t| t.eq_ignore_ascii_case(thumbprint))
            {
                aws.iam
                    .update_open_id_connect_provider_thumbprint()
                    .open_id_connect_provider_arn(&arn)
                    .thumbprint_list(thumbprint)
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::call("iam:UpdateOpenIDConnectProviderThumbprint", &arn, e)
                    })?;
            }
            aws.iam
                .tag_open_id_connect_provider()
                .open_id_connect_provider_arn(&arn)
                .set_tags(Some(iam_tags(&plan.tags)?))
                .send()
                .await
                .map_err(|e| AwsError::call("iam:TagOpenIDConnectProvider", &arn, e))?;
            tracing::debug!(%arn, "identity provider exists, brought up to date");
            Ok((arn, false))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
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
                    let arn = o.open_id_connect_provider_arn().unwrap_or(&arn).to_string();
                    tracing::debug!(%arn, "identity provider created");
                    Ok((arn, true))
                }
                // Another run created it between our look and our create.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_entity_already_exists_exception()) =>
                {
                    Ok((arn, false))
                }
                Err(e) => Err(AwsError::call("iam:CreateOpenIDConnectProvider", issuer, e)),
            }
        }
        Err(e) => Err(AwsError::call("iam:GetOpenIDConnectProvider", &arn, e)),
    }
}
