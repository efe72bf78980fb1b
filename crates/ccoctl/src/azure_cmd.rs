//! `ccoctl azure …`: workload identity for Azure (SPEC §5). Read inputs, plan (`cco_core::azure`),
//! then either write the planned Resource Manager and Blob requests as numbered files (`--dry-run`,
//! no call at all) or converge the cloud through `cco_azure`, writing files atomically as results
//! arrive.

use crate::output::write_authentication_manifest;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cco_api::Cloud;
use cco_azure::blob::BlobClient;
use cco_azure::{Azure, Endpoints};
use cco_core::azure::{
    blob_endpoint, default_oidc_resource_group, fic_body, fic_name, is_owned, issuer_url,
    owner_tag_key, parse_tags, plan_identities, resource_group_scope, role_definition_body,
    role_description, secret_file, secret_manifest, stable_guid, tags, validate_container,
    validate_name, validate_storage_account, IdentityPlan, Scopes,
};
use cco_core::fsutil::{ensure_dir, write_atomic, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE};
use cco_core::keys;
use cco_core::oidc::{discovery_document, to_pretty, Flavour, AZURE_KEYS_PATH, DISCOVERY_PATH};
use cco_core::reader::{read_dir, ReadOptions};
use clap::{Args, Subcommand};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::cli::KeyPairArgs;
use crate::keypair::{create_key_pair, ensure_output_dir, read_public_key};

#[derive(Debug, Args)]
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
    /// Azure AD tenant ID (written into the Secrets; AZURE_TENANT_ID overrides it for the login).
    #[arg(long)]
    pub tenant_id: String,
    /// Resource group of the issuer's storage account and of the identities [default: <name>-oidc].
    #[arg(long)]
    pub oidc_resource_group_name: Option<String>,
    /// Extra tags for every taggable resource, `key=value,…`.
    #[arg(long, default_value = "")]
    pub user_tags: String,
    /// Directory for keys, manifests and dry-run files.
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
    /// Write the planned requests as files instead of calling Azure.
    #[arg(long)]
    pub dry_run: bool,
}

impl Common {
    fn oidc_rg(&self) -> String {
        self.oidc_resource_group_name
            .clone()
            .unwrap_or_else(|| default_oidc_resource_group(&self.name))
    }
}

#[derive(Debug, Args, Clone)]
pub struct StorageArgs {
    /// Storage account of the issuer [default: <name>]; 3 to 24 lower-case letters and digits.
    #[arg(long)]
    pub storage_account_name: Option<String>,
    /// Blob container of the issuer [default: <storage account name>].
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
    pub storage: StorageArgs,
    #[command(flatten)]
    pub requests: RequestsArgs,
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
    #[arg(long, default_value = "")]
    pub tenant_id: String,
    /// Accepted for compatibility; deletion does not depend on it.
    #[arg(long)]
    pub region: Option<String>,
    /// Resource group of the issuer and identities [default: <name>-oidc].
    #[arg(long)]
    pub oidc_resource_group_name: Option<String>,
    /// Storage account of the issuer [default: <name>].
    #[arg(long)]
    pub storage_account_name: Option<String>,
    /// Blob container of the issuer [default: <storage account name>].
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
            check(&a.common)?;
            let (_, public) = read_public_key(a.public_key_file.as_deref(), &a.common.output_dir)?;
            let mut plan = DryRun::default();
            let az = connect_unless_dry(&a.common).await?;
            let issuer = issuer(&a.common, &a.storage, &public, az.as_ref(), &mut plan).await?;
            plan.write(&a.common.output_dir)?;
            println!("Issuer URL: {issuer}");
            Ok(())
        }
        AzureCommand::CreateManagedIdentities(a) => {
            check(&a.common)?;
            let mut plan = DryRun::default();
            let az = connect_unless_dry(&a.common).await?;
            identities(
                &a.common,
                &a.requests,
                &a.issuer_url,
                az.as_ref(),
                &mut plan,
            )
            .await?;
            plan.write(&a.common.output_dir)
        }
        AzureCommand::CreateAll(a) => {
            check(&a.common)?;
            let public = create_key_pair(&a.common.output_dir)?;
            let mut plan = DryRun::default();
            let az = connect_unless_dry(&a.common).await?;
            let issuer = issuer(&a.common, &a.storage, &public, az.as_ref(), &mut plan).await?;
            identities(&a.common, &a.requests, &issuer, az.as_ref(), &mut plan).await?;
            plan.write(&a.common.output_dir)?;
            println!("Issuer URL: {issuer}");
            Ok(())
        }
        AzureCommand::Delete(a) => delete(a).await,
    }
}

fn check(c: &Common) -> anyhow::Result<()> {
    validate_name(&c.name)?;
    parse_tags(&c.user_tags)?;
    ensure_output_dir(&c.output_dir)
}

async fn connect(tenant: &str, subscription: &str) -> anyhow::Result<Azure> {
    Azure::connect(tenant, subscription, Endpoints::from_env())
        .await
        .context("connecting to Azure Resource Manager")
}

async fn connect_unless_dry(c: &Common) -> anyhow::Result<Option<Azure>> {
    if c.dry_run {
        return Ok(None);
    }
    Ok(Some(connect(&c.tenant_id, &c.subscription_id).await?))
}

/// The requests a dry run would send, in order, written as `NN-<what>.json`.
#[derive(Default)]
struct DryRun {
    files: Vec<(String, String)>,
}

impl DryRun {
    fn request(&mut self, what: &str, method: &str, path: &str, api: &str, body: Value) {
        let n = self.files.len() + 1;
        let doc = json!({"method": method, "path": path, "api-version": api, "body": body});
        self.files
            .push((format!("{n:02}-{what}.json"), to_pretty(&doc)));
    }

    fn write(&self, out: &Path) -> anyhow::Result<()> {
        crate::output::write_dry_run_files(out, &self.files)
    }
}

async fn issuer(
    c: &Common,
    s: &StorageArgs,
    public: &keys::RsaPublicKey,
    az: Option<&Azure>,
    plan: &mut DryRun,
) -> anyhow::Result<String> {
    let account = s
        .storage_account_name
        .clone()
        .unwrap_or_else(|| c.name.clone());
    validate_storage_account(&account)?;
    let container = s
        .blob_container_name
        .clone()
        .unwrap_or_else(|| account.clone());
    validate_container(&container)?;
    let rg = c.oidc_rg();
    let t = tags(&c.name, &parse_tags(&c.user_tags)?);
    let jwks = keys::jwks(std::slice::from_ref(public))?;
    let Some(az) = az else {
        let endpoint = blob_endpoint(&account, &format!("blob.{}", s.storage_endpoint_suffix));
        let issuer = issuer_url(&endpoint, &container);
        let sub = &c.subscription_id;
        let rg_path = format!("/subscriptions/{sub}/resourceGroups/{rg}");
        plan.request(
            "resource-group",
            "PUT",
            &rg_path,
            "2021-04-01",
            json!({"location": c.region, "tags": t}),
        );
        plan.request(
            "storage-account",
            "PUT",
            &format!("{rg_path}/providers/Microsoft.Storage/storageAccounts/{account}"),
            "2023-01-01",
            json!({"kind": "StorageV2", "location": c.region, "sku": {"name": "Standard_LRS"}, "tags": t,
                   "properties": {"allowBlobPublicAccess": true, "supportsHttpsTrafficOnly": true, "minimumTlsVersion": "TLS1_2"}}),
        );
        plan.request(
            "blob-container",
            "PUT",
            &format!("{endpoint}{container}?restype=container"),
            "2021-12-02",
            json!({"x-ms-blob-public-access": "blob"}),
        );
        plan.request(
            "discovery-document",
            "PUT",
            &format!("{endpoint}{container}/{DISCOVERY_PATH}"),
            "2021-12-02",
            discovery_document(&issuer, Flavour::Azure),
        );
        plan.request(
            "jwks",
            "PUT",
            &format!("{endpoint}{container}/{AZURE_KEYS_PATH}"),
            "2021-12-02",
            jwks,
        );
        write_authentication_manifest(&c.output_dir, &issuer)?;
        return Ok(issuer);
    };
    let change = az.ensure_resource_group(&rg, &c.region, &t).await?;
    println!("Resource group {rg} {}", change.verb());
    let (change, endpoint) = az
        .ensure_storage_account(&rg, &account, &c.region, &t)
        .await?;
    println!("Storage account {account} {}", change.verb());
    let key = az.storage_key(&rg, &account).await?;
    let blob = BlobClient::new(cco_azure::http_client()?, &endpoint, &key)?;
    let created = blob.ensure_public_container(&container).await?;
    println!(
        "Blob container {container} {} (blobs publicly readable)",
        if created { "created" } else { "already exists" }
    );
    let issuer = issuer_url(&endpoint, &container);
    let published = blob
        .get_blob(&container, AZURE_KEYS_PATH)
        .await?
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or(Value::Null);
    let jwks = keys::merge_jwks(&jwks, &published);
    blob.put_blob(
        &container,
        DISCOVERY_PATH,
        "application/json",
        to_pretty(&discovery_document(&issuer, Flavour::Azure)).as_bytes(),
    )
    .await?;
    blob.put_blob(
        &container,
        AZURE_KEYS_PATH,
        "application/json",
        to_pretty(&jwks).as_bytes(),
    )
    .await?;
    println!("Published {DISCOVERY_PATH} and {AZURE_KEYS_PATH} at {issuer}");
    write_authentication_manifest(&c.output_dir, &issuer)?;
    Ok(issuer)
}

async fn identities(
    c: &Common,
    r: &RequestsArgs,
    issuer: &str,
    az: Option<&Azure>,
    plan: &mut DryRun,
) -> anyhow::Result<()> {
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
    let install_rg = r
        .installation_resource_group_name
        .clone()
        .unwrap_or_else(|| c.name.clone());
    let scopes = Scopes {
        installation: install_rg.clone(),
        dnszone: r.dnszone_resource_group_name.clone(),
        network: r.network_resource_group_name.clone(),
    };
    let plans = plan_identities(&c.name, &c.subscription_id, &scopes, &reqs)?;
    let rg = c.oidc_rg();
    let t = tags(&c.name, &parse_tags(&c.user_tags)?);
    ensure_dir(&c.output_dir.join("manifests"), PRIVATE_DIR_MODE)?;
    let Some(az) = az else {
        dry_run_identities(c, issuer, &rg, &install_rg, &t, &plans, plan)?;
        return Ok(());
    };
    // The identities live in the OIDC group; roles need the installation group to exist.
    az.ensure_resource_group(&rg, &c.region, &t).await?;
    if az.get_resource_group(&install_rg).await?.is_none() {
        az.ensure_resource_group(&install_rg, &c.region, &t).await?;
        println!("Resource group {install_rg} created");
    }
    for extra in [
        &r.dnszone_resource_group_name,
        &r.network_resource_group_name,
    ]
    .into_iter()
    .flatten()
    {
        if az.get_resource_group(extra).await?.is_none() {
            bail!("resource group {extra} does not exist");
        }
    }
    let total = plans.len();
    let mut done = 0;
    let mut results = futures::stream::iter(plans.iter().map(|p| {
        let t = &t;
        let rg = &rg;
        async move { (p, converge_identity(az, c, r, rg, issuer, t, p).await) }
    }))
    .buffer_unordered(r.concurrency.into());
    let mut errors = Vec::new();
    while let Some((p, res)) = results.next().await {
        done += 1;
        match res {
            Ok(()) => {
                tracing::info!(identity = %p.identity_name, progress = %format!("{done}/{total}"), "identity ready")
            }
            Err(e) => {
                tracing::error!(identity = %p.identity_name, error = %format!("{e:#}"), "identity failed");
                errors.push(format!("{} ({}): {e:#}", p.identity_name, p.request));
            }
        }
    }
    if !errors.is_empty() {
        bail!(
            "{} of {total} identities failed (re-run to finish):\n  {}",
            errors.len(),
            errors.join("\n  ")
        );
    }
    Ok(())
}

async fn converge_identity(
    az: &Azure,
    c: &Common,
    r: &RequestsArgs,
    rg: &str,
    issuer: &str,
    t: &Value,
    p: &IdentityPlan,
) -> anyhow::Result<()> {
    let (change, id) = az
        .ensure_identity(rg, &p.identity_name, &c.region, t, &owner_tag_key(&c.name))
        .await?;
    println!("Managed identity {} {}", p.identity_name, change.verb());
    let mut roles = Vec::new();
    for name in &p.builtin_roles {
        roles.push(az.builtin_role_id(name).await?);
    }
    if let Some(custom) = &p.custom_role {
        let (change, role_id) = az
            .ensure_role_definition(
                &custom.id,
                &role_definition_body(custom, &c.name, &p.scopes),
            )
            .await?;
        println!("Custom role {} {}", custom.role_name, change.verb());
        roles.push(role_id);
    }
    let mut wanted = Vec::new();
    for scope in &p.scopes {
        for role in &roles {
            let guid = stable_guid(&[scope, role, &id.principal_id]);
            az.ensure_role_assignment(scope, &guid, role, &id.principal_id)
                .await?;
            wanted.push(guid);
        }
    }
    if !r.preserve_existing_roles {
        for a in az.list_role_assignments(&id.principal_id).await? {
            let name = a["name"].as_str().unwrap_or("");
            if !wanted.iter().any(|w| w.eq_ignore_ascii_case(name)) {
                if let Some(aid) = a["id"].as_str() {
                    az.delete_by_id(aid).await?;
                    println!("Removed stale role assignment {aid}");
                }
            }
        }
    }
    for sa in &p.service_accounts {
        let fic = fic_name(&p.secret_namespace, sa);
        az.ensure_federated_credential(
            rg,
            &p.identity_name,
            &fic,
            &fic_body(issuer, &p.secret_namespace, sa),
        )
        .await?;
    }
    let path = c
        .output_dir
        .join(secret_file(&p.secret_namespace, &p.secret_name));
    write_atomic(
        &path,
        secret_manifest(
            &p.secret_namespace,
            &p.secret_name,
            &id.client_id,
            &c.tenant_id,
            &c.region,
            &c.subscription_id,
            &p.token_path,
        )
        .as_bytes(),
        PRIVATE_FILE_MODE,
    )?;
    println!("Saved credentials configuration to {}", path.display());
    Ok(())
}

fn dry_run_identities(
    c: &Common,
    issuer: &str,
    rg: &str,
    install_rg: &str,
    t: &Value,
    plans: &[IdentityPlan],
    plan: &mut DryRun,
) -> anyhow::Result<()> {
    let sub = &c.subscription_id;
    let authz = format!("/subscriptions/{sub}/providers/Microsoft.Authorization");
    plan.request(
        "installation-resource-group",
        "PUT",
        &resource_group_scope(sub, install_rg),
        "2021-04-01",
        json!({"location": c.region, "tags": t}),
    );
    for p in plans {
        let ipath = format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}",
            resource_group_scope(sub, rg),
            p.identity_name
        );
        plan.request(
            &format!("identity-{}", p.identity_name),
            "PUT",
            &ipath,
            "2023-01-31",
            json!({"location": c.region, "tags": t}),
        );
        let mut roles: Vec<String> = p
            .builtin_roles
            .iter()
            .map(|n| format!("${{id of built-in role {n}}}"))
            .collect();
        if let Some(custom) = &p.custom_role {
            plan.request(
                &format!("role-definition-{}", p.identity_name),
                "PUT",
                &format!("{authz}/roleDefinitions/{}", custom.id),
                "2022-04-01",
                role_definition_body(custom, &c.name, &p.scopes),
            );
            roles.push(format!("{authz}/roleDefinitions/{}", custom.id));
        }
        for scope in &p.scopes {
            for role in &roles {
                plan.request(
                    &format!("role-assignment-{}", p.identity_name),
                    "PUT",
                    &format!(
                        "{scope}/providers/Microsoft.Authorization/roleAssignments/${{guid}}"
                    ),
                    "2022-04-01",
                    json!({"properties": {"roleDefinitionId": role, "principalId": format!("${{principalId of {}}}", p.identity_name), "principalType": "ServicePrincipal"}}),
                );
            }
        }
        for sa in &p.service_accounts {
            plan.request(
                &format!("federated-credential-{}", fic_name(&p.secret_namespace, sa)),
                "PUT",
                &format!(
                    "{ipath}/federatedIdentityCredentials/{}",
                    fic_name(&p.secret_namespace, sa)
                ),
                "2023-01-31",
                fic_body(issuer, &p.secret_namespace, sa),
            );
        }
        let path = c
            .output_dir
            .join(secret_file(&p.secret_namespace, &p.secret_name));
        let mut m = secret_manifest(
            &p.secret_namespace,
            &p.secret_name,
            &format!("${{clientId of {}}}", p.identity_name),
            &c.tenant_id,
            &c.region,
            &c.subscription_id,
            &p.token_path,
        );
        m.push_str(&format!(
            "POPULATE azure_client_id WITH THE CLIENT ID OF MANAGED IDENTITY {}\n",
            p.identity_name
        ));
        write_atomic(&path, m.as_bytes(), PRIVATE_FILE_MODE)?;
        println!("Saved {}", path.display());
    }
    Ok(())
}

async fn delete(a: DeleteArgs) -> anyhow::Result<()> {
    validate_name(&a.name)?;
    let rg = a
        .oidc_resource_group_name
        .clone()
        .unwrap_or_else(|| default_oidc_resource_group(&a.name));
    let account = a
        .storage_account_name
        .clone()
        .unwrap_or_else(|| a.name.clone());
    let az = connect(&a.tenant_id, &a.subscription_id).await?;
    let verb = if a.dry_run { "Would delete" } else { "Deleted" };
    let key = owner_tag_key(&a.name);
    let group = az.get_resource_group(&rg).await?;
    if group.is_some() {
        for id in az.list_identities(&rg, &key).await? {
            if !id.owned || !id.name.starts_with(&format!("{}-", a.name)) {
                continue;
            }
            for ra in az.list_role_assignments(&id.principal_id).await? {
                let Some(aid) = ra["id"].as_str() else {
                    continue;
                };
                if !a.dry_run {
                    az.delete_by_id(aid).await?;
                }
                println!("{verb} role assignment {aid}");
            }
            if !a.dry_run {
                az.delete_identity(&rg, &id.name).await?;
            }
            println!(
                "{verb} managed identity {} and its federated credentials",
                id.name
            );
        }
    }
    let marker = role_description(&a.name);
    for role in az.list_custom_roles().await? {
        if role["properties"]["description"].as_str() != Some(marker.as_str()) {
            continue;
        }
        let Some(rid) = role["id"].as_str() else {
            continue;
        };
        if !a.dry_run {
            az.delete_by_id(rid).await?;
        }
        println!(
            "{verb} custom role {}",
            role["properties"]["roleName"].as_str().unwrap_or(rid)
        );
    }
    if let Some(group) = group {
        if let Some(sa) = az.get_storage_account(&rg, &account).await? {
            if is_owned(&sa, &a.name) {
                let container = a
                    .blob_container_name
                    .clone()
                    .unwrap_or_else(|| account.clone());
                if !a.dry_run {
                    // The issuer's documents first: they are what outside clients can see.
                    if let Some(endpoint) = sa["properties"]["primaryEndpoints"]["blob"].as_str() {
                        let key = az.storage_key(&rg, &account).await?;
                        let blob = BlobClient::new(cco_azure::http_client()?, endpoint, &key)?;
                        blob.delete_container(&container).await?;
                    }
                    az.delete_storage_account(&rg, &account).await?;
                }
                println!("{verb} blob container {container} and storage account {account}");
            } else {
                tracing::warn!(%account, "storage account does not carry the ownership tag; kept");
            }
        }
        if a.delete_oidc_resource_group {
            if is_owned(&group, &a.name) {
                if !a.dry_run {
                    az.delete_resource_group(&rg).await?;
                }
                println!("{verb} resource group {rg}");
            } else {
                tracing::warn!(resource_group = %rg, "resource group does not carry the ownership tag; kept");
            }
        }
    } else {
        println!("Resource group {rg} does not exist; nothing to delete there");
    }
    Ok(())
}
