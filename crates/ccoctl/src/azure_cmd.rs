//! `ccoctl azure …`: workload identity for Azure (SPEC §5). Read inputs, plan (`cco_core::azure`),
//! then either list the planned Resource Manager and Blob requests and write the files the reference
//! tool writes in a dry run (`--dry-run`, no call at all) or converge the cloud ([`apply`]: observe,
//! compute the steps `ccoctl azure plan` prints, execute exactly those), writing files atomically as
//! results arrive.

use crate::output::write_authentication_manifest;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cco_api::Cloud;
use cco_azure::{Azure, Endpoints};
use cco_core::azure::{
    blob_endpoint, default_oidc_resource_group, dry_run_secret_manifest, fic_name, issuer_url,
    parse_tags, plan_identities, resource_group_scope, secret_file, validate_container,
    validate_identity_prefix, validate_name, validate_resource_group, validate_storage_account,
    webhook_config_manifest, AzScope, IdentityPlan, Scopes, DISCOVERY_FILE, JWKS_FILE,
    WEBHOOK_CONFIG_FILE,
};
use cco_core::fsutil::{ensure_dir, write_atomic, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE};
use cco_core::keys;
use cco_core::oidc::{
    reference_azure_discovery_text, to_go_indented, AZURE_KEYS_PATH, DISCOVERY_PATH,
};
use cco_core::reader::{read_dir, ReadOptions};
use clap::{Args, Subcommand};
use serde_json::Value;

mod apply;
mod delete;

pub(crate) use apply::{desired, DesiredInputs};

use crate::cli::KeyPairArgs;
use crate::keypair::{create_key_pair, ensure_output_dir, read_public_key};

#[derive(Debug, Args)]
#[command(
    after_help = "Credentials, tried in the order of the reference's DefaultAzureCredential:
  AZURE_ACCESS_TOKEN                            a Resource Manager token, used as is
  AZURE_CLIENT_ID, AZURE_CLIENT_SECRET          a service principal
  AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE   workload identity
  IDENTITY_ENDPOINT, IDENTITY_HEADER, or IMDS   a managed identity (AZURE_CLIENT_ID picks one)
  az login, azd auth login                      the Azure CLI, the Azure Developer CLI
The tenant is AZURE_TENANT_ID or --tenant-id. AZURE_TOKEN_CREDENTIALS=dev|prod|<name> narrows
the chain. Endpoints: AZURE_AUTHORITY_HOST (https only), AZURE_RESOURCE_MANAGER_ENDPOINT.
A private CA: SSL_CERT_FILE."
)]
pub struct AzureArgs {
    #[command(subcommand)]
    pub command: AzureCommand,
}

#[derive(Debug, Subcommand)]
pub enum AzureCommand {
    /// Create the service-account signing key pair (reuses an existing private key).
    CreateKeyPair(KeyPairArgs),
    /// Create the OIDC issuer: resource group, storage account and public blob container with the
    /// discovery document and JWKS.
    CreateOidcIssuer(IssuerArgs),
    /// Create one user-assigned managed identity per CredentialsRequest and write its Secret manifest.
    CreateManagedIdentities(IdentitiesArgs),
    /// Create the key pair, the OIDC issuer and the managed identities in one go.
    CreateAll(CreateAllArgs),
    /// Delete what the create commands made for --name (found by its ownership tag).
    Delete(DeleteArgs),
    /// Check, reading only, that workload identity works end to end: the issuer served anonymously
    /// over HTTPS with the cluster's keys, each request's managed identity, federated credentials,
    /// role assignments and Secret, and (with --kubeconfig) the cluster's Authentication issuer.
    /// Exit 0 when every check passes, 1 otherwise.
    Verify(crate::azure_verify::VerifyArgs),
    /// Show, changing nothing, what create-all with the same flags would change. Exit 0 when
    /// nothing, 2 when there are changes, 1 on error.
    Plan(crate::azure_verify::PlanArgs),
}

#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Name of the created resources (identities `<name>-<ns>-<secret>`, default resource groups).
    #[arg(long)]
    pub name: String,
    /// Azure region of the created resources.
    #[arg(long)]
    pub region: String,
    /// Azure subscription ID.
    #[arg(long)]
    pub subscription_id: String,
    /// Resource group of the issuer's storage account and of the identities [default: <name>-oidc].
    #[arg(long)]
    pub oidc_resource_group_name: Option<String>,
    /// Extra tags for every taggable resource, `key=value,…`.
    #[arg(long, default_value = "")]
    pub user_tags: String,
    /// Directory for keys, manifests and dry-run files.
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
    /// Make no call: list the planned requests and write the files the reference tool writes in a
    /// dry run (Secrets with empty client and tenant ids, the issuer documents, the manifests).
    #[arg(long)]
    pub dry_run: bool,
}

impl Common {
    pub(crate) fn oidc_rg(&self) -> String {
        self.oidc_resource_group_name
            .clone()
            .unwrap_or_else(|| default_oidc_resource_group(&self.name))
    }
}

/// The tenant flag of the issuer commands: required, as in the reference tool, because it is
/// written into `manifests/azure-ad-pod-identity-webhook-config.yaml`.
#[derive(Debug, Args, Clone)]
pub struct TenantArgs {
    /// Azure AD tenant ID: written into the pod identity webhook's configuration Secret, and used for
    /// the login when AZURE_TENANT_ID is not set.
    #[arg(long)]
    pub tenant_id: String,
}

#[derive(Debug, Args, Clone)]
pub struct StorageArgs {
    /// Storage account of the issuer [default: <name>]; 3 to 24 lower-case letters and digits.
    #[arg(long)]
    pub storage_account_name: Option<String>,
    /// Blob container of the issuer [default: <name>].
    #[arg(long)]
    pub blob_container_name: Option<String>,
    /// DNS suffix of storage endpoints, for the issuer URL of a dry run (the live run reads the
    /// account's blob endpoint from Azure).
    #[arg(
        long,
        env = "AZURE_STORAGE_ENDPOINT_SUFFIX",
        default_value = "core.windows.net"
    )]
    pub storage_endpoint_suffix: String,
}

#[derive(Debug, Args, Clone)]
pub struct IssuerArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub tenant: TenantArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Public key of the service-account signer [default: <output-dir>/serviceaccount-signer.public].
    #[arg(long)]
    pub public_key_file: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct RequestsArgs {
    /// Directory of CredentialsRequest manifests.
    #[arg(long)]
    pub credentials_requests_dir: PathBuf,
    /// Include requests of the TechPreviewNoUpgrade feature set.
    #[arg(long)]
    pub enable_tech_preview: bool,
    /// Resource group the cluster is installed in, where roles are assigned [default: <name>].
    #[arg(long)]
    pub installation_resource_group_name: Option<String>,
    /// Resource group of the DNS zone (roles of the ingress operator are assigned there too).
    #[arg(long)]
    pub dnszone_resource_group_name: Option<String>,
    /// Resource group of a pre-existing virtual network (roles of network components assigned there too).
    #[arg(long)]
    pub network_resource_group_name: Option<String>,
    /// Keep role assignments of existing identities that the requests no longer ask for.
    #[arg(long)]
    pub preserve_existing_roles: bool,
    /// How many identities are worked on at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

#[derive(Debug, Args, Clone)]
pub struct IdentitiesArgs {
    #[command(flatten)]
    pub common: Common,
    /// Azure AD tenant ID for the login when AZURE_TENANT_ID is not set. Optional: the Secrets name
    /// the tenant of the created identities, as the reference tool does.
    #[arg(long)]
    pub tenant_id: Option<String>,
    #[command(flatten)]
    pub requests: RequestsArgs,
    /// The OIDC issuer URL the federated credentials trust.
    #[arg(long)]
    pub issuer_url: String,
}

#[derive(Debug, Args, Clone)]
pub struct CreateAllArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub tenant: TenantArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub requests: RequestsArgs,
    /// Public key of an existing service-account signer. Without it a key pair is created (or the
    /// one in --output-dir reused).
    #[arg(long)]
    pub public_key_file: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct DeleteArgs {
    /// Name the resources were created with.
    #[arg(long)]
    pub name: String,
    /// Azure subscription ID.
    #[arg(long)]
    pub subscription_id: String,
    /// Azure AD tenant ID for the login [default: AZURE_TENANT_ID].
    #[arg(long)]
    pub tenant_id: Option<String>,
    /// Accepted for compatibility; deletion does not depend on it.
    #[arg(long)]
    pub region: Option<String>,
    /// Resource group of the issuer and identities [default: <name>-oidc].
    #[arg(long)]
    pub oidc_resource_group_name: Option<String>,
    /// Storage account of the issuer [default: <name>].
    #[arg(long)]
    pub storage_account_name: Option<String>,
    /// Blob container of the issuer [default: <name>].
    #[arg(long)]
    pub blob_container_name: Option<String>,
    /// Also delete the OIDC resource group (only if ccoctl made it: it carries the ownership tag).
    #[arg(long)]
    pub delete_oidc_resource_group: bool,
    /// List what would be deleted without deleting anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs one `ccoctl azure` subcommand.
pub async fn run(args: AzureArgs) -> anyhow::Result<()> {
    match args.command {
        AzureCommand::CreateKeyPair(a) => create_key_pair(&a.output_dir).map(|_| ()),
        AzureCommand::CreateOidcIssuer(a) => {
            check_issuer(&a.common, &a.storage)?;
            ensure_output_dir(&a.common.output_dir)?;
            let (_, public) =
                read_public_key(a.public_key_file.as_deref(), &a.common.output_dir, "azure")?;
            let tenant = &a.tenant.tenant_id;
            let issuer = if a.common.dry_run {
                let mut plan = DryRun::default();
                let issuer =
                    dry_run_issuer(&a.common, tenant, &a.storage, &public, &mut plan).await?;
                plan.print();
                issuer
            } else {
                let az = connect(Some(tenant), &a.common.subscription_id).await?;
                let d = desired(DesiredInputs {
                    common: &a.common,
                    storage: Some(&a.storage),
                    requests: None,
                    plans: &[],
                    jwks: keys::jwks(std::slice::from_ref(&public))?,
                    issuer_override: None,
                    scope: AzScope {
                        issuer: true,
                        identities: false,
                        retire: false,
                    },
                })?;
                apply::converge(&az, &d, &a.common, Some(tenant), None, 1).await?
            };
            println!("Issuer URL: {issuer}");
            Ok(())
        }
        AzureCommand::CreateManagedIdentities(a) => {
            check_identities(&a.common, &a.requests)?;
            ensure_output_dir(&a.common.output_dir)?;
            let plans = load_plans(&a.common, &a.requests)?;
            if a.common.dry_run {
                let mut plan = DryRun::default();
                dry_run_identities(&a.common, &a.requests, &plans, &mut plan)?;
                plan.print();
                return Ok(());
            }
            let az = connect(a.tenant_id.as_deref(), &a.common.subscription_id).await?;
            let d = desired(DesiredInputs {
                common: &a.common,
                storage: None,
                requests: Some(&a.requests),
                plans: &plans,
                jwks: Value::Null,
                issuer_override: Some(a.issuer_url.clone()),
                scope: AzScope {
                    issuer: false,
                    identities: true,
                    retire: false,
                },
            })?;
            apply::converge(
                &az,
                &d,
                &a.common,
                None,
                a.tenant_id.as_deref(),
                a.requests.concurrency.into(),
            )
            .await?;
            Ok(())
        }
        AzureCommand::CreateAll(a) => {
            check_issuer(&a.common, &a.storage)?;
            check_identities(&a.common, &a.requests)?;
            ensure_output_dir(&a.common.output_dir)?;
            let public = match &a.public_key_file {
                Some(f) => read_public_key(Some(f), &a.common.output_dir, "azure")?.1,
                None => create_key_pair(&a.common.output_dir)?,
            };
            let tenant = &a.tenant.tenant_id;
            let plans = load_plans(&a.common, &a.requests)?;
            let issuer = if a.common.dry_run {
                let mut plan = DryRun::default();
                let issuer =
                    dry_run_issuer(&a.common, tenant, &a.storage, &public, &mut plan).await?;
                dry_run_identities(&a.common, &a.requests, &plans, &mut plan)?;
                plan.print();
                issuer
            } else {
                let az = connect(Some(tenant), &a.common.subscription_id).await?;
                let d = desired(DesiredInputs {
                    common: &a.common,
                    storage: Some(&a.storage),
                    requests: Some(&a.requests),
                    plans: &plans,
                    jwks: keys::jwks(std::slice::from_ref(&public))?,
                    issuer_override: None,
                    scope: AzScope {
                        issuer: true,
                        identities: true,
                        retire: false,
                    },
                })?;
                apply::converge(
                    &az,
                    &d,
                    &a.common,
                    Some(tenant),
                    Some(tenant),
                    a.requests.concurrency.into(),
                )
                .await?
            };
            println!("Issuer URL: {issuer}");
            Ok(())
        }
        AzureCommand::Delete(a) => delete::delete(a).await,
        AzureCommand::Verify(a) => crate::azure_verify::verify(a).await,
        AzureCommand::Plan(a) => crate::azure_verify::plan(a).await,
    }
}

pub(crate) fn check_common(c: &Common) -> anyhow::Result<()> {
    validate_name(&c.name)?;
    let derived = c
        .oidc_resource_group_name
        .is_none()
        .then_some("--name followed by -oidc");
    validate_resource_group("--oidc-resource-group-name", &c.oidc_rg(), derived)?;
    parse_tags(&c.user_tags)?;
    Ok(())
}

/// What the issuer commands need of their flags, before any call.
pub(crate) fn check_issuer(c: &Common, s: &StorageArgs) -> anyhow::Result<()> {
    check_common(c)?;
    validate_storage_account(&storage_account(c, s))?;
    validate_container(&container(c, s))?;
    Ok(())
}

/// What the identity commands need of their flags, before any call.
pub(crate) fn check_identities(c: &Common, r: &RequestsArgs) -> anyhow::Result<()> {
    check_common(c)?;
    validate_identity_prefix(&c.name)?;
    let derived = r
        .installation_resource_group_name
        .is_none()
        .then_some("--name");
    validate_resource_group(
        "--installation-resource-group-name",
        &installation_rg(c, r),
        derived,
    )?;
    for (flag, rg) in [
        (
            "--dnszone-resource-group-name",
            &r.dnszone_resource_group_name,
        ),
        (
            "--network-resource-group-name",
            &r.network_resource_group_name,
        ),
    ] {
        if let Some(rg) = rg.as_deref().filter(|g| !g.is_empty()) {
            validate_resource_group(flag, rg, None)?;
        }
    }
    if c.oidc_rg() == installation_rg(c, r) {
        bail!("OIDC and installation resource group names cannot be the same ({}); pass --oidc-resource-group-name or --installation-resource-group-name", c.oidc_rg());
    }
    Ok(())
}

pub(crate) fn storage_account(c: &Common, s: &StorageArgs) -> String {
    s.storage_account_name
        .clone()
        .unwrap_or_else(|| c.name.clone())
}

pub(crate) fn container(c: &Common, s: &StorageArgs) -> String {
    s.blob_container_name
        .clone()
        .unwrap_or_else(|| c.name.clone())
}

pub(crate) fn installation_rg(c: &Common, r: &RequestsArgs) -> String {
    r.installation_resource_group_name
        .clone()
        .unwrap_or_else(|| c.name.clone())
}

pub(crate) async fn connect(tenant: Option<&str>, subscription: &str) -> anyhow::Result<Azure> {
    Azure::connect(
        tenant.unwrap_or_default(),
        subscription,
        Endpoints::from_env(),
    )
    .await
    .context("connecting to Azure Resource Manager")
}

/// The requests a dry run would send, in order: listed on stdout, one line each.
#[derive(Default)]
struct DryRun {
    requests: Vec<String>,
}

impl DryRun {
    fn request(&mut self, method: &str, path: &str, what: &str) {
        self.requests.push(format!("{method} {path} ({what})"));
    }

    fn print(&self) {
        if self.requests.is_empty() {
            return;
        }
        println!("Planned requests (none was sent):");
        for (i, r) in self.requests.iter().enumerate() {
            println!("  {:>3}. {r}", i + 1);
        }
    }
}

/// Writes the local copies of the issuer documents (`openid-configuration`, `jwks`, mode 0644),
/// the Authentication manifest and `azure-ad-pod-identity-webhook-config.yaml`, as the reference
/// tool does in live and dry runs.
fn write_issuer_files(
    out: &Path,
    issuer: &str,
    discovery: &str,
    jwks: &str,
    tenant: &str,
) -> anyhow::Result<()> {
    for (name, body) in [(DISCOVERY_FILE, discovery), (JWKS_FILE, jwks)] {
        let path = out.join(name);
        write_atomic(&path, body.as_bytes(), 0o644)?;
        println!("Saved {}", path.display());
    }
    write_authentication_manifest(out, issuer)?;
    let path = out.join(WEBHOOK_CONFIG_FILE);
    write_atomic(
        &path,
        webhook_config_manifest(tenant).as_bytes(),
        PRIVATE_FILE_MODE,
    )?;
    println!(
        "Saved Azure AD pod identity webhook configuration to {}",
        path.display()
    );
    Ok(())
}

/// The issuer part of a dry run: the requests it would send, and the local files.
async fn dry_run_issuer(
    c: &Common,
    tenant: &str,
    s: &StorageArgs,
    public: &keys::RsaPublicKey,
    plan: &mut DryRun,
) -> anyhow::Result<String> {
    let account = storage_account(c, s);
    let container = container(c, s);
    let rg = c.oidc_rg();
    let jwks = keys::jwks(std::slice::from_ref(public))?;
    let endpoint = blob_endpoint(&account, &format!("blob.{}", s.storage_endpoint_suffix));
    let issuer = issuer_url(&endpoint, &container);
    let sub = &c.subscription_id;
    let rg_path = resource_group_scope(sub, &rg);
    plan.request("PUT", &rg_path, "resource group, if missing");
    plan.request(
        "PUT",
        &format!("{rg_path}/providers/Microsoft.Storage/storageAccounts/{account}"),
        "StorageV2 account allowing public blob access, if missing",
    );
    plan.request(
        "PUT",
        &format!("{endpoint}{container}?restype=container"),
        "public blob container",
    );
    plan.request(
        "PUT",
        &format!("{endpoint}{container}/{DISCOVERY_PATH}"),
        "discovery document",
    );
    plan.request(
        "PUT",
        &format!("{endpoint}{container}/{AZURE_KEYS_PATH}"),
        "JWKS",
    );
    write_issuer_files(
        &c.output_dir,
        &issuer,
        &reference_azure_discovery_text(&issuer),
        &to_go_indented(&jwks),
        tenant,
    )?;
    Ok(issuer)
}

/// The requests of `r`, planned.
fn load_plans(c: &Common, r: &RequestsArgs) -> anyhow::Result<Vec<IdentityPlan>> {
    let reqs = read_dir(
        &r.credentials_requests_dir,
        ReadOptions {
            cloud: Cloud::Azure,
            enable_tech_preview: r.enable_tech_preview,
        },
    )?;
    if reqs.is_empty() {
        tracing::warn!(dir = %r.credentials_requests_dir.display(), "no Azure CredentialsRequests found");
    }
    let scopes = Scopes {
        installation: installation_rg(c, r),
        dnszone: r.dnszone_resource_group_name.clone(),
        network: r.network_resource_group_name.clone(),
    };
    ensure_dir(&c.output_dir.join("manifests"), PRIVATE_DIR_MODE)?;
    Ok(plan_identities(
        &c.name,
        &c.subscription_id,
        &scopes,
        &reqs,
    )?)
}

fn dry_run_identities(
    c: &Common,
    r: &RequestsArgs,
    plans: &[IdentityPlan],
    plan: &mut DryRun,
) -> anyhow::Result<()> {
    let rg = &c.oidc_rg();
    let install_rg = &installation_rg(c, r);
    let sub = &c.subscription_id;
    let authz = format!("/subscriptions/{sub}/providers/Microsoft.Authorization");
    plan.request(
        "PUT",
        &resource_group_scope(sub, install_rg),
        "installation resource group, if missing",
    );
    for p in plans {
        let ipath = format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}",
            resource_group_scope(sub, rg),
            p.identity_name
        );
        plan.request("PUT", &ipath, "user-assigned managed identity");
        if let Some(custom) = &p.custom_role {
            plan.request(
                "PUT",
                &format!("{authz}/roleDefinitions/{}", custom.id),
                &format!(
                    "custom role {} ({} actions, {} data actions; an existing role of that name keeps its id)",
                    custom.role_name,
                    custom.actions.len(),
                    custom.data_actions.len()
                ),
            );
        }
        let mut roles: Vec<String> = p.builtin_roles.clone();
        if let Some(custom) = &p.custom_role {
            roles.push(custom.role_name.clone());
        }
        for scope in &p.scopes {
            for role in &roles {
                plan.request(
                    "PUT",
                    &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/<guid>"),
                    &format!("assign {role} to {}", p.identity_name),
                );
            }
        }
        for sa in &p.service_accounts {
            plan.request(
                "PUT",
                &format!("{ipath}/federatedIdentityCredentials/{}", fic_name(sa)),
                &format!("trust system:serviceaccount:{}:{sa}", p.secret_namespace),
            );
        }
        let path = c
            .output_dir
            .join(secret_file(&p.secret_namespace, &p.secret_name));
        let m = dry_run_secret_manifest(
            &p.secret_namespace,
            &p.secret_name,
            &c.region,
            &c.subscription_id,
            &p.token_path,
        );
        write_atomic(&path, m.as_bytes(), PRIVATE_FILE_MODE)?;
        println!("Saved credentials configuration to {}", path.display());
    }
    Ok(())
}
