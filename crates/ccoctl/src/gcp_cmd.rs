//! `ccoctl gcp …`: workload identity federation for GCP (SPEC §4). Read inputs, plan
//! (`cco_core::gcp`), then either write the numbered gcloud/gsutil scripts (`--dry-run`) or converge
//! the cloud through `cco_gcp`, writing files atomically as results arrive.

use crate::output::write_authentication_manifest;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cco_api::Cloud;
use cco_core::fsutil::{ensure_dir, write_atomic, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE};
use cco_core::gcp::{
    bucket_name, credentials_config, issuer_url, jwks_text, plan_changes, plan_report,
    plan_service_accounts, pool_files, provider_files, random_suffix, secret_manifest,
    service_account_files, validate_account_prefix, validate_bucket_name, validate_delete_name,
    validate_name_length, validate_pool_id, GcpDesired, KeyStorage, Scope, ServiceAccountPlan,
    ServiceAccountScripts, DRY_RUN_FILE_MODE,
};
use cco_core::keys;
use cco_core::reader::{read_dir, LoadedRequest, ReadOptions};
use cco_gcp::{Endpoints, Gcp};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use crate::cli::KeyPairArgs;
use crate::keypair::{create_key_pair, ensure_output_dir, read_public_key};

#[derive(Debug, Args)]
pub struct GcpArgs {
    #[command(subcommand)]
    pub command: GcpCommand,
}

#[derive(Debug, Subcommand)]
pub enum GcpCommand {
    /// Create the service-account signing key pair (reuses an existing private key).
    CreateKeyPair(KeyPairArgs),
    /// Create the workload identity pool.
    CreateWorkloadIdentityPool(PoolArgs),
    /// Create the OIDC issuer (public bucket or keys in the provider) and the pool's OIDC provider.
    CreateWorkloadIdentityProvider(ProviderArgs),
    /// Create one IAM service account per CredentialsRequest and write its Secret manifest.
    CreateServiceAccounts(ServiceAccountsArgs),
    /// Create the key pair, pool, provider, issuer and service accounts in one go.
    CreateAll(CreateAllArgs),
    /// Delete what the create commands made for --name (and only that).
    Delete(DeleteArgs),
    /// Check, reading only, that the issuer, keys, pool, provider, service accounts and Secrets
    /// work together; exit 1 when a check fails.
    Verify(crate::gcp_verify::VerifyArgs),
    /// Show, changing nothing, what create-all with the same flags would change; exit 2 when
    /// there are changes, 0 when there are none.
    Plan(crate::gcp_verify::PlanArgs),
}

/// Where the provider finds the signing keys.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KeyStorageMethod {
    /// A public bucket `<name>-oidc` serves the discovery document and keys.json.
    PublicBucket,
    /// The JWKS is stored in the provider; no bucket is made.
    PoolJwkFile,
}

impl From<KeyStorageMethod> for KeyStorage {
    fn from(m: KeyStorageMethod) -> KeyStorage {
        match m {
            KeyStorageMethod::PublicBucket => KeyStorage::PublicBucket,
            KeyStorageMethod::PoolJwkFile => KeyStorage::PoolJwkFile,
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Name of the created resources (pool, provider, bucket `<name>-oidc`, service account names),
    /// at most 32 characters. Each command checks GCP's rules for what it names with it: a pool or
    /// provider id is 4 to 32 lower-case letters, digits and hyphens; service account ids start with
    /// its first 12 characters.
    #[arg(long)]
    pub name: String,
    /// ID of the GCP project.
    #[arg(long)]
    pub project: String,
    /// Directory for keys, manifests and dry-run files [default: the current directory]. A dry run
    /// names it, as given, in its scripts and Secret manifests, as the reference tool does.
    #[arg(long, default_value_os_t = current_dir(), hide_default_value = true)]
    pub output_dir: PathBuf,
    /// Write the gcloud/gsutil scripts and documents instead of calling GCP.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args, Clone)]
pub struct PoolArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args, Clone)]
pub struct IssuerArgs {
    /// Location of the issuer bucket.
    #[arg(long, default_value = "us")]
    pub region: String,
    /// Where the provider finds the signing keys.
    #[arg(long, value_enum, default_value = "public-bucket")]
    pub key_storage_method: KeyStorageMethod,
    /// Publish only the current signing key. By default keys already published are kept beside
    /// the new one, so tokens signed before a key rotation stay valid.
    #[arg(long)]
    pub prune_old_keys: bool,
}

#[derive(Debug, Args, Clone)]
pub struct ProviderArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub issuer: IssuerArgs,
    /// Pool to create the provider in.
    #[arg(long)]
    pub workload_identity_pool: String,
    /// Public key of the service-account signer [default: <output-dir>/serviceaccount-signer.public].
    #[arg(long)]
    pub public_key_file: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct RequestsArgs {
    /// Directory of CredentialsRequest manifests (top-level .yaml, .yml and .json files).
    #[arg(long)]
    pub credentials_requests_dir: PathBuf,
    /// Include requests of the TechPreviewNoUpgrade feature set.
    #[arg(long)]
    pub enable_tech_preview: bool,
    /// How many service accounts are worked on at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

#[derive(Debug, Args, Clone)]
pub struct ServiceAccountsArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub requests: RequestsArgs,
    /// Pool whose principals may impersonate the service accounts.
    #[arg(long)]
    pub workload_identity_pool: String,
    /// Provider named in the credentials configuration.
    #[arg(long)]
    pub workload_identity_provider: String,
}

#[derive(Debug, Args, Clone)]
pub struct CreateAllArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub issuer: IssuerArgs,
    #[command(flatten)]
    pub requests: RequestsArgs,
    /// Public key of an existing service-account signer. Without it a key pair is created (or the
    /// one in --output-dir reused).
    #[arg(long)]
    pub public_key_file: Option<PathBuf>,
    /// Also delete the service accounts made for --name that no request asks for any more (their
    /// project roles first). `ccoctl gcp plan` lists them.
    #[arg(long)]
    pub delete_retired: bool,
}

#[derive(Debug, Args, Clone)]
pub struct DeleteArgs {
    /// Name the resources were created with.
    #[arg(long)]
    pub name: String,
    /// ID of the GCP project.
    #[arg(long)]
    pub project: String,
    /// Directory of the CredentialsRequests the service accounts were made for.
    #[arg(long)]
    pub credentials_requests_dir: PathBuf,
    /// Also delete the custom roles (GCP keeps a deleted role's id reserved for 7 days).
    #[arg(long)]
    pub force_delete_custom_roles: bool,
    /// List what would be deleted without deleting anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// The current directory, absolute: the reference tool's default output directory, which its dry-run
/// scripts then name.
fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// Runs one `ccoctl gcp` subcommand.
pub async fn run(args: GcpArgs) -> anyhow::Result<()> {
    match args.command {
        GcpCommand::CreateKeyPair(a) => create_key_pair(&a.output_dir).map(|_| ()),
        GcpCommand::CreateWorkloadIdentityPool(a) => {
            validate_name_length(&a.common.name)?;
            validate_pool_id("--name", &a.common.name)?;
            ensure_output_dir(&a.common.output_dir)?;
            if a.common.dry_run {
                return write_files(&a.common.output_dir, &pool_files(&a.common.name));
            }
            let (gcp, number) = connect(&a.common.project).await?;
            let d = desired(
                &a.common,
                &a.common.name,
                &a.common.name,
                KeyStorage::PublicBucket,
                "us",
                Value::Null,
                false,
                &[],
                Scope {
                    pool: true,
                    issuer: false,
                    accounts: false,
                    retire: false,
                },
            );
            converge(&gcp, &number, &d, 1).await.map(|_| ())
        }
        GcpCommand::CreateWorkloadIdentityProvider(a) => {
            check_issuer_name(&a.common.name, &a.issuer)?;
            validate_pool_id("--workload-identity-pool", &a.workload_identity_pool)?;
            let (_, public) =
                read_public_key(a.public_key_file.as_deref(), &a.common.output_dir, "gcp")?;
            provider(&a.common, &a.issuer, &a.workload_identity_pool, &public).await
        }
        GcpCommand::CreateServiceAccounts(a) => {
            validate_account_prefix(&a.common.name)?;
            validate_pool_id("--workload-identity-pool", &a.workload_identity_pool)?;
            validate_pool_id(
                "--workload-identity-provider",
                &a.workload_identity_provider,
            )?;
            let reqs = load(&a.requests)?;
            service_accounts(
                &a.common,
                &a.requests,
                &reqs,
                &a.workload_identity_pool,
                &a.workload_identity_provider,
            )
            .await
        }
        GcpCommand::CreateAll(a) => create_all(a).await,
        GcpCommand::Delete(a) => delete(a).await,
        GcpCommand::Verify(a) => crate::gcp_verify::verify(a).await,
        GcpCommand::Plan(a) => crate::gcp_verify::plan(a).await,
    }
}

pub(crate) async fn connect(project: &str) -> anyhow::Result<(Gcp, String)> {
    Ok(Gcp::connect(project, Endpoints::from_env()).await?)
}

/// What `--name` of the commands that make the issuer (provider id, and the bucket `<name>-oidc`
/// unless the keys go in the provider) must be.
pub(crate) fn check_issuer_name(name: &str, issuer: &IssuerArgs) -> anyhow::Result<()> {
    validate_name_length(name)?;
    validate_pool_id("--name", name)?;
    if matches!(issuer.key_storage_method, KeyStorageMethod::PublicBucket) {
        validate_bucket_name(name)?;
    }
    Ok(())
}

/// Writes dry-run files: manifests mode 0600, scripts and documents 0744, as the reference tool.
fn write_files(out: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    for (name, contents) in files {
        let path = cco_core::fsutil::join_inside(out, name)?;
        let mode = if name.starts_with("manifests/") {
            ensure_dir(&out.join("manifests"), PRIVATE_DIR_MODE)?;
            PRIVATE_FILE_MODE
        } else {
            DRY_RUN_FILE_MODE
        };
        write_atomic(&path, contents.as_bytes(), mode)?;
        println!("Saved {}", path.display());
    }
    Ok(())
}

pub(crate) fn load(r: &RequestsArgs) -> anyhow::Result<Vec<LoadedRequest>> {
    let reqs = read_dir(
        &r.credentials_requests_dir,
        ReadOptions {
            cloud: Cloud::Gcp,
            enable_tech_preview: r.enable_tech_preview,
        },
    )?;
    if reqs.is_empty() {
        tracing::warn!(dir = %r.credentials_requests_dir.display(), "no GCP CredentialsRequests found; nothing to do for service accounts");
    }
    Ok(reqs)
}

/// The desired state of one command.
#[allow(clippy::too_many_arguments)]
pub(crate) fn desired<'a>(
    c: &'a Common,
    pool: &'a str,
    provider: &'a str,
    storage: KeyStorage,
    region: &'a str,
    jwks: Value,
    prune_old_keys: bool,
    plans: &'a [ServiceAccountPlan],
    scope: Scope,
) -> GcpDesired<'a> {
    GcpDesired {
        name: &c.name,
        project: &c.project,
        pool,
        provider,
        storage,
        region,
        issuer: issuer_url(&c.name),
        jwks,
        prune_old_keys,
        plans,
        scope,
    }
}

/// Observes, plans and executes; returns the email of every plan's service account.
pub(crate) async fn converge(
    gcp: &Gcp,
    number: &str,
    d: &GcpDesired<'_>,
    concurrency: usize,
) -> anyhow::Result<Vec<Option<String>>> {
    let observed = cco_gcp::observe(gcp, number, d).await?;
    let steps = plan_changes(d, &observed)?;
    let report = plan_report(d, &observed, &steps);
    for n in &report.notes {
        tracing::warn!("{n}");
    }
    if steps.is_empty() {
        println!("Nothing to change: everything is already up to date");
    } else {
        println!("{} changes to make", report.changes.len());
    }
    let done = cco_gcp::execute(gcp, d, &observed, &steps, concurrency).await?;
    for line in &done.done {
        println!("Done: {line}");
    }
    Ok(done.emails)
}

async fn provider(
    c: &Common,
    issuer_args: &IssuerArgs,
    pool: &str,
    public: &keys::RsaPublicKey,
) -> anyhow::Result<()> {
    let jwks = keys::jwks(std::slice::from_ref(public))?;
    let storage: KeyStorage = issuer_args.key_storage_method.into();
    let issuer = issuer_url(&c.name);
    ensure_output_dir(&c.output_dir)?;
    if c.dry_run {
        // No call: the reference tool's provider dry run asks GCP nothing either.
        write_files(
            &c.output_dir,
            &provider_files(
                &c.name,
                &c.project,
                &issuer_args.region,
                pool,
                &issuer,
                &jwks_text(&jwks),
                storage,
            ),
        )?;
        return write_authentication_manifest(&c.output_dir, &issuer);
    }
    let (gcp, number) = connect(&c.project).await?;
    let d = desired(
        c,
        pool,
        &c.name,
        storage,
        &issuer_args.region,
        jwks,
        issuer_args.prune_old_keys,
        &[],
        Scope {
            pool: false,
            issuer: true,
            accounts: false,
            retire: false,
        },
    );
    converge(&gcp, &number, &d, 1).await?;
    write_authentication_manifest(&c.output_dir, &issuer)?;
    println!("Issuer URL: {issuer}");
    Ok(())
}

async fn service_accounts(
    c: &Common,
    r: &RequestsArgs,
    reqs: &[LoadedRequest],
    pool: &str,
    provider: &str,
) -> anyhow::Result<()> {
    let plans = plan_service_accounts(reqs, &c.name, &c.project)?;
    for p in &plans {
        for n in &p.notes {
            tracing::warn!(source = %p.source, request = %p.request, "{n}");
        }
    }
    ensure_output_dir(&c.output_dir)?;
    if c.dry_run {
        if plans.is_empty() {
            return Ok(());
        }
        // The one read of a dry run, as in the reference tool: the project number, which the
        // federated principals in the binding scripts name.
        let (_, number) = connect(&c.project).await?;
        let suffixes: Vec<String> = plans.iter().map(|_| random_suffix()).collect();
        let target = c.output_dir.to_string_lossy();
        return write_files(
            &c.output_dir,
            &service_account_files(
                &plans,
                &ServiceAccountScripts {
                    name: &c.name,
                    project: &c.project,
                    project_number: &number,
                    pool,
                    provider,
                    target_dir: &target,
                },
                &suffixes,
            ),
        );
    }
    if plans.is_empty() {
        return Ok(());
    }
    let (gcp, number) = connect(&c.project).await?;
    let d = desired(
        c,
        pool,
        provider,
        KeyStorage::PublicBucket,
        "us",
        Value::Null,
        false,
        &plans,
        Scope {
            pool: false,
            issuer: false,
            accounts: true,
            retire: false,
        },
    );
    let emails = converge(&gcp, &number, &d, r.concurrency.into()).await?;
    write_secrets(c, &number, pool, provider, &plans, &emails)
}

/// Writes the Secret manifest of every plan whose service account is known.
fn write_secrets(
    c: &Common,
    number: &str,
    pool: &str,
    provider: &str,
    plans: &[ServiceAccountPlan],
    emails: &[Option<String>],
) -> anyhow::Result<()> {
    ensure_dir(&c.output_dir.join("manifests"), PRIVATE_DIR_MODE)?;
    for (p, email) in plans.iter().zip(emails) {
        let Some(email) = email else {
            bail!(
                "the service account of {} ({}) is not known after the run; re-run the same command",
                p.request,
                p.source
            );
        };
        let config = credentials_config(number, pool, provider, email, &p.token_path);
        let path = c.output_dir.join(&p.secret_path);
        write_atomic(
            &path,
            secret_manifest(&p.secret_namespace, &p.secret_name, &config).as_bytes(),
            PRIVATE_FILE_MODE,
        )?;
        println!(
            "IAM service account {email} ready; Secret manifest saved to {}",
            path.display()
        );
    }
    Ok(())
}

async fn create_all(a: CreateAllArgs) -> anyhow::Result<()> {
    let c = &a.common;
    check_issuer_name(&c.name, &a.issuer)?;
    // Read and plan the requests first, so a bad input fails before anything is created.
    let reqs = load(&a.requests)?;
    let plans = plan_service_accounts(&reqs, &c.name, &c.project)?;
    if !plans.is_empty() {
        validate_account_prefix(&c.name)?;
    }
    for p in &plans {
        for n in &p.notes {
            tracing::warn!(source = %p.source, request = %p.request, "{n}");
        }
    }
    ensure_output_dir(&c.output_dir)?;
    let public = match &a.public_key_file {
        Some(f) => read_public_key(Some(f), &c.output_dir, "gcp")?.1,
        None => create_key_pair(&c.output_dir)?,
    };
    if c.dry_run {
        write_files(&c.output_dir, &pool_files(&c.name))?;
        provider(c, &a.issuer, &c.name, &public).await?;
        return service_accounts(c, &a.requests, &reqs, &c.name, &c.name).await;
    }
    let jwks = keys::jwks(std::slice::from_ref(&public))?;
    let (gcp, number) = connect(&c.project).await?;
    let d = desired(
        c,
        &c.name,
        &c.name,
        a.issuer.key_storage_method.into(),
        &a.issuer.region,
        jwks,
        a.issuer.prune_old_keys,
        &plans,
        Scope {
            retire: a.delete_retired,
            ..Scope::ALL
        },
    );
    let emails = converge(&gcp, &number, &d, a.requests.concurrency.into()).await?;
    let issuer = issuer_url(&c.name);
    write_authentication_manifest(&c.output_dir, &issuer)?;
    write_secrets(c, &number, &c.name, &c.name, &plans, &emails)?;
    println!("Issuer URL: {issuer}");
    Ok(())
}

async fn delete(a: DeleteArgs) -> anyhow::Result<()> {
    validate_delete_name(&a.name)?;
    // Every request is considered, tech-preview ones included: a full cleanup is the safe side.
    let reqs = read_dir(
        &a.credentials_requests_dir,
        ReadOptions {
            cloud: Cloud::Gcp,
            enable_tech_preview: true,
        },
    )?;
    let plans = plan_service_accounts(&reqs, &a.name, &a.project)?;
    let (gcp, _) = connect(&a.project).await?;
    let verb = if a.dry_run { "Would delete" } else { "Deleted" };
    let mut kept = Vec::new();
    for p in &plans {
        let r = cco_gcp::delete_for_request(&gcp, p, a.force_delete_custom_roles, a.dry_run)
            .await
            .with_context(|| format!("deleting what was made for {} ({})", p.request, p.source))?;
        for x in r.removed {
            println!("{verb} {x}");
        }
        kept.extend(r.kept);
    }
    match gcp.delete_pool(&a.name, a.dry_run).await? {
        Some(true) => println!("{verb} workload identity pool {} and its providers", a.name),
        Some(false) => kept.push(format!(
            "workload identity pool {}: its description does not say ccoctl made it",
            a.name
        )),
        None => {}
    }
    let (removed, left) = gcp
        .delete_issuer_bucket(&bucket_name(&a.name), a.dry_run)
        .await?;
    for x in removed {
        println!("{verb} {x}");
    }
    kept.extend(left);
    for k in &kept {
        println!("Kept {k}");
    }
    Ok(())
}
