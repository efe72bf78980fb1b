//! `ccoctl aws …`: read inputs, plan, then render (`--dry-run`) or execute through `cco_aws`.

use crate::output::{
    write_authentication_manifest, write_dry_run_files, write_inside, write_secret_files,
};
use std::path::Path;

use anyhow::{bail, Context};
use cco_api::Cloud;
use cco_aws::{Aws, IdpOptions, RoleChange};
use cco_core::aws::{
    bucket_name_problem, dry_run_identity_provider_files, dry_run_provider_arn, dry_run_role_files,
    dry_run_secret_files, plan_roles, validate_iam_name, validate_name, Front,
    IdentityProviderPlan, Partition, RolePlan,
};
use cco_core::fsutil::{ensure_dir, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE};
use cco_core::keys;
use cco_core::reader::{read_dir, ReadOptions};

use crate::cli::{
    AwsArgs, AwsCommand, AwsCommon, CreateAllArgs, DeleteArgs, IamRolesArgs, IdentityProviderArgs,
    IssuerArgs, RequestsArgs,
};
use crate::keypair::{create_key_pair, ensure_output_dir, read_public_key};

/// Runs one `ccoctl aws` subcommand.
pub async fn run(args: AwsArgs) -> anyhow::Result<()> {
    match args.command {
        AwsCommand::CreateKeyPair(a) => create_key_pair(&a.output_dir).map(|_| ()),
        AwsCommand::CreateIdentityProvider(a) => create_identity_provider(a).await.map(|_| ()),
        AwsCommand::CreateIamRoles(a) => create_iam_roles(a).await,
        AwsCommand::CreateAll(a) => create_all(a).await,
        AwsCommand::Delete(a) => delete(a).await,
        AwsCommand::Plan(a) => crate::aws_plan::run(a).await,
        AwsCommand::Verify(a) => crate::aws_verify::run(a).await,
    }
}

pub(crate) fn idp_options(issuer: &IssuerArgs) -> anyhow::Result<IdpOptions> {
    let issuer_ca_pem = match &issuer.issuer_ca_file {
        Some(p) => Some(
            std::fs::read(p)
                .with_context(|| format!("cannot read --issuer-ca-file {}", p.display()))?,
        ),
        None => None,
    };
    Ok(IdpOptions {
        thumbprint: issuer.issuer_thumbprint.clone(),
        issuer_ca_pem,
        prune_old_keys: issuer.prune_old_keys,
    })
}

/// What every create step needs to know about the run.
pub(crate) struct Run<'a> {
    name: &'a str,
    region: String,
    concurrency: u16,
    out: &'a Path,
    dry_run: bool,
}

impl<'a> Run<'a> {
    pub(crate) fn new(name: &'a str, common: &AwsCommon, out: &'a Path, dry_run: bool) -> Self {
        Run {
            name,
            region: common.region.clone(),
            concurrency: common.concurrency.concurrency,
            out,
            dry_run,
        }
    }

    pub(crate) async fn connect(&self) -> anyhow::Result<Aws> {
        let aws = Aws::connect(&self.region, self.concurrency.into()).await;
        aws.preflight().await?;
        Ok(aws)
    }
}

/// Returns the provider ARN (a placeholder-bearing one in a dry run).
async fn identity_provider(
    run: &Run<'_>,
    public_key: &keys::RsaPublicKey,
    issuer_args: &IssuerArgs,
) -> anyhow::Result<String> {
    let (name, region, out, dry_run) = (run.name, run.region.as_str(), run.out, run.dry_run);
    let jwks = keys::jwks(std::slice::from_ref(public_key))?;
    let plan = IdentityProviderPlan::new(name, region, issuer_args.create_private_s3_bucket, jwks)?;
    ensure_output_dir(out)?;
    if plan.front == Front::PublicBucket && name.contains('.') {
        tracing::warn!("--name contains '.': the issuer https://{}-oidc.s3.… does not match S3's wildcard TLS certificate, so token exchange will fail; use --create-private-s3-bucket or a name without '.'", name);
    }
    if dry_run {
        // Everything names the same issuer: the bucket URL, or the CloudFront placeholder.
        let issuer = plan.dry_run_issuer();
        write_dry_run_files(out, &dry_run_identity_provider_files(&plan))?;
        write_authentication_manifest(out, &issuer)?;
        return Ok(dry_run_provider_arn(&plan.partition, &issuer));
    }
    let opts = idp_options(issuer_args)?;
    let aws = run.connect().await?;
    let outcome = cco_aws::create_identity_provider(&aws, &plan, &opts)
        .await
        .map_err(|e| match e {
            cco_aws::AwsError::Thumbprint { .. } => anyhow::anyhow!(
                "{e}. If the issuer is not served over public TLS (for example with a local emulator), pass --issuer-thumbprint <sha1-hex>, or --issuer-ca-file <pem> for a private CA"
            ),
            other => other.into(),
        })?;
    write_authentication_manifest(out, &outcome.issuer)?;
    println!("Issuer URL: {}", outcome.issuer);
    // The ARN stays the last word of the last line: runbooks read it from there.
    if outcome.provider_created {
        println!(
            "Identity Provider created with ARN: {}",
            outcome.provider_arn
        );
    } else {
        println!(
            "Existing Identity Provider found with ARN: {}",
            outcome.provider_arn
        );
    }
    Ok(outcome.provider_arn)
}

async fn create_identity_provider(a: IdentityProviderArgs) -> anyhow::Result<String> {
    validate_name(&a.name)?;
    let (_, public_key) = read_public_key(a.public_key_file.as_deref(), &a.output_dir, "aws")?;
    let run = Run::new(&a.name, &a.common, &a.output_dir, a.dry_run);
    identity_provider(&run, &public_key, &a.issuer).await
}

pub(crate) fn load_requests(
    r: &RequestsArgs,
) -> anyhow::Result<Vec<cco_core::reader::LoadedRequest>> {
    let reqs = read_dir(
        &r.credentials_requests_dir,
        ReadOptions {
            cloud: Cloud::Aws,
            enable_tech_preview: r.enable_tech_preview,
        },
    )?;
    if reqs.is_empty() {
        tracing::warn!(dir = %r.credentials_requests_dir.display(), "no AWS CredentialsRequests found; nothing to do for roles");
    }
    Ok(reqs)
}

async fn roles(
    run: &Run<'_>,
    provider_arn: &str,
    reqs: &[cco_core::reader::LoadedRequest],
    boundary: Option<&str>,
    delete_unrequested: bool,
) -> anyhow::Result<()> {
    let (name, out, dry_run) = (run.name, run.out, run.dry_run);
    let plans = plan_roles(reqs, name, provider_arn, boundary)?;
    for p in &plans {
        for n in &p.notes {
            tracing::warn!(source = %p.source, request = %p.request, "{n}");
        }
    }
    ensure_output_dir(out)?;
    if dry_run {
        write_dry_run_files(out, &dry_run_role_files(&plans))?;
        return write_secret_files(out, &dry_run_secret_files(&plans));
    }
    if plans.is_empty() && !delete_unrequested {
        return Ok(());
    }
    ensure_dir(&out.join("manifests"), PRIVATE_DIR_MODE)?;
    let aws = run.connect().await?;
    // The same observation and plan `ccoctl aws plan` shows, then its steps.
    let roles_plan =
        cco_aws::plan_role_changes(&aws, name, &plans, delete_unrequested, delete_unrequested)
            .await?;
    let total = plans.len();
    let mut done = 0usize;
    let mut write_errors = Vec::new();
    // One line per role, as it finishes; the count shows progress.
    let failures = cco_aws::apply_role_plan(&aws, &plans, &roles_plan, |plan: &RolePlan, result| {
        done += 1;
        match result {
            Ok(change) => {
                let verb = match change {
                    RoleChange::Created => "created",
                    RoleChange::Updated => "existed, brought up to date",
                    RoleChange::Unchanged => "existed, up to date",
                };
                match write_inside(out, &plan.secret_path, &plan.secret_manifest, PRIVATE_FILE_MODE) {
                    Ok(path) => println!("[{done}/{total}] Role {} {verb}; Secret manifest saved to {}", plan.role_arn, path.display()),
                    Err(e) => write_errors.push(format!("{e:#}")),
                }
            }
            Err(e) => tracing::error!(progress = %format!("{done}/{total}"), role = %plan.role_name, source = %plan.source, error = %e, "role failed"),
        }
    })
    .await;
    for d in &roles_plan.deletions {
        if !failures.iter().any(|(r, _)| *r == d.role) {
            println!("Role {} deleted: no request asks for it any more", d.role);
        }
    }
    if !failures.is_empty() || !write_errors.is_empty() {
        let mut msg = format!("{} of {total} roles failed", failures.len());
        for (role, e) in &failures {
            msg.push_str(&format!("\n  {role}: {e}"));
        }
        for e in &write_errors {
            msg.push_str(&format!("\n  {e}"));
        }
        msg.push_str("\nThe roles that succeeded are in place; re-run the same command to finish (it does not duplicate anything).");
        bail!(msg);
    }
    Ok(())
}

async fn create_iam_roles(a: IamRolesArgs) -> anyhow::Result<()> {
    validate_iam_name(&a.name)?;
    let reqs = load_requests(&a.requests)?;
    // A dry run calls nothing, so it needs no region.
    let region = if a.dry_run {
        String::new()
    } else {
        cco_aws::region_for_iam(a.region.as_deref(), &a.identity_provider_arn)
            .await
            .ok_or_else(|| anyhow::anyhow!("no AWS region: pass --region or set AWS_REGION (the partition of --identity-provider-arn is not one this tool knows)"))?
    };
    let run = Run {
        name: &a.name,
        region,
        concurrency: a.concurrency.concurrency,
        out: &a.output_dir,
        dry_run: a.dry_run,
    };
    roles(
        &run,
        &a.identity_provider_arn,
        &reqs,
        a.requests.permissions_boundary_arn.as_deref(),
        a.requests.delete_unrequested,
    )
    .await
}

async fn create_all(a: CreateAllArgs) -> anyhow::Result<()> {
    validate_name(&a.name)?;
    // Read and plan the requests first, so a bad input fails before anything is created.
    let reqs = load_requests(&a.requests)?;
    let partition = Partition::for_region(&a.common.region);
    plan_roles(
        &reqs,
        &a.name,
        &dry_run_provider_arn(
            &partition,
            &cco_core::aws::bucket_issuer_url(&a.name, &a.common.region),
        ),
        a.requests.permissions_boundary_arn.as_deref(),
    )?;
    // As the reference: with --public-key-file no key pair is made, the given key is published.
    let public_key = match &a.public_key_file {
        Some(f) => read_public_key(Some(f), &a.output_dir, "aws")?.1,
        None => create_key_pair(&a.output_dir)?,
    };
    let run = Run::new(&a.name, &a.common, &a.output_dir, a.dry_run);
    let provider_arn = identity_provider(&run, &public_key, &a.issuer).await?;
    let boundary = a.requests.permissions_boundary_arn.as_deref();
    roles(
        &run,
        &provider_arn,
        &reqs,
        boundary,
        a.requests.delete_unrequested,
    )
    .await
}

async fn delete(a: DeleteArgs) -> anyhow::Result<()> {
    // Any name the roles could have been made with; the bucket is looked at only if S3 allows it.
    validate_iam_name(&a.name)?;
    if let Some(why) = bucket_name_problem(&cco_core::aws::bucket_name(&a.name)) {
        tracing::info!(
            "no issuer bucket, distribution or origin access to look for: the bucket name {why}"
        );
    }
    let aws = Aws::connect(&a.common.region, a.common.concurrency.concurrency.into()).await;
    aws.preflight().await?;
    let report = cco_aws::delete_all(&aws, &a.name, a.dry_run).await?;
    let verb = if a.dry_run { "Would delete" } else { "Deleted" };
    for r in &report.roles {
        println!("{verb} IAM role {r}");
    }
    for p in &report.providers {
        println!("{verb} identity provider {p}");
    }
    for d in &report.distributions {
        println!("{verb} CloudFront distribution {d}");
    }
    for o in &report.origin_access_controls {
        println!("{verb} CloudFront origin access control {o}");
    }
    for o in &report.origin_access_identities {
        println!("{verb} CloudFront origin access identity {o}");
    }
    for b in &report.buckets {
        println!("{verb} S3 bucket {b}");
    }
    let n = report.roles.len()
        + report.providers.len()
        + report.distributions.len()
        + report.origin_access_controls.len()
        + report.origin_access_identities.len()
        + report.buckets.len();
    if n == 0 {
        println!("Nothing owned by {} was found.", a.name);
    }
    Ok(())
}
