//! `ccoctl aws plan`: what `create-all` (or `create-iam-roles`) would change, computed by the same
//! functions those commands execute (`cco_aws::plan_identity_provider`,
//! `cco_aws::plan_role_changes`), and nothing written anywhere.

use std::path::Path;

use cco_core::aws::{
    dry_run_provider_arn, issuer_host_path, plan_roles, validate_name, AwsChangePlan,
    IdentityProviderPlan, Partition, UNKNOWN_CLOUDFRONT_ISSUER,
};
use cco_core::fsutil::read_to_string;
use cco_core::keys;
use serde_json::json;

use crate::aws_cmd::{idp_options, load_requests, Run};
use crate::cli::AwsPlanArgs;
use crate::keypair::{PRIVATE_KEY_FILE, PUBLIC_KEY_FILE};
use crate::report_out::emit_plan;

/// The kid shown when create-all would generate the key pair.
pub const NEW_KEY_KID: &str = "<the key create-all generates>";

/// The JWKS create-all would publish: `--public-key-file`, else the output dir's key pair (the
/// public file, or the public half of the private key create-all would reuse), else a stand-in for
/// the key create-all would generate.
fn planned_jwks(public_key_file: Option<&Path>, out: &Path) -> anyhow::Result<serde_json::Value> {
    let key = if let Some(f) = public_key_file {
        let pem = read_to_string(f)?;
        Some(keys::parse_public_key(&pem, &f.display().to_string())?)
    } else if out.join(PRIVATE_KEY_FILE).exists() {
        let path = out.join(PRIVATE_KEY_FILE);
        let pem = read_to_string(&path)?;
        Some(keys::parse_private_key(&pem, &path.display().to_string())?.to_public_key())
    } else if out.join(PUBLIC_KEY_FILE).exists() {
        let path = out.join(PUBLIC_KEY_FILE);
        let pem = read_to_string(&path)?;
        Some(keys::parse_public_key(&pem, &path.display().to_string())?)
    } else {
        None
    };
    match key {
        Some(k) => Ok(keys::jwks(std::slice::from_ref(&k))?),
        None => {
            Ok(json!({"keys": [{"kid": NEW_KEY_KID, "kty": "RSA", "use": "sig", "alg": "RS256"}]}))
        }
    }
}

/// Observes AWS and computes the change plan of `create-all` (or, with `--identity-provider-arn`,
/// of `create-iam-roles`) for these arguments. Reads only.
pub async fn compute_plan(a: &AwsPlanArgs) -> anyhow::Result<AwsChangePlan> {
    validate_name(&a.name)?;
    let reqs = load_requests(&a.requests)?;
    let boundary = a.requests.permissions_boundary_arn.as_deref();
    let partition = Partition::for_region(&a.common.region);
    // Bad input fails before any call.
    plan_roles(
        &reqs,
        &a.name,
        &a.identity_provider_arn.clone().unwrap_or_else(|| {
            dry_run_provider_arn(
                &partition,
                &cco_core::aws::bucket_issuer_url(&a.name, &a.common.region),
            )
        }),
        boundary,
    )?;
    let run = Run::new(&a.name, &a.common, &a.output_dir, false);
    let aws = run.connect().await?;
    let mut plan = AwsChangePlan::default();
    let provider_arn = match &a.identity_provider_arn {
        Some(arn) => arn.clone(),
        None => {
            let account = aws.preflight().await?;
            let jwks = planned_jwks(a.public_key_file.as_deref(), &a.output_dir)?;
            let idp = IdentityProviderPlan::new(
                &a.name,
                &a.common.region,
                a.issuer.create_private_s3_bucket,
                jwks,
            )?;
            let diff =
                cco_aws::plan_identity_provider(&aws, &idp, &idp_options(&a.issuer)?, &account)
                    .await?;
            let arn = diff.provider_arn.clone().unwrap_or_else(|| {
                cco_core::aws::provider_arn(
                    &partition,
                    &account,
                    issuer_host_path(UNKNOWN_CLOUDFRONT_ISSUER),
                )
            });
            plan.issuer = Some(diff);
            arn
        }
    };
    let role_plans = plan_roles(&reqs, &a.name, &provider_arn, boundary)?;
    let roles = cco_aws::plan_role_changes(
        &aws,
        &a.name,
        &role_plans,
        true,
        a.requests.delete_unrequested,
    )
    .await?;
    plan.roles = roles.roles;
    plan.deletions = roles.deletions;
    plan.notes = roles.notes;
    Ok(plan)
}

/// Runs `ccoctl aws plan`.
pub async fn run(a: AwsPlanArgs) -> anyhow::Result<()> {
    let plan = compute_plan(&a).await?;
    emit_plan(&plan.report(&a.name), a.report.output)
}
