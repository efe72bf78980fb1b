//! `ccoctl azure verify` and `ccoctl azure plan`: both observe Azure with the read-only calls of
//! `cco_azure::observe`. `plan` prints the steps `create-all` with the same flags would take
//! (`cco_core::azure::plan_changes`); `verify` checks the issuer (its documents fetched anonymously
//! over HTTPS from the storage account's blob endpoint, as Azure AD fetches them), the keys, the
//! storage account and container, every request's managed identity, federated credentials, role
//! assignments and Secret, and with `--kubeconfig` the cluster's Authentication.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::bail;
use cco_api::Cloud;
use cco_core::azure::{
    blob_endpoint, default_oidc_resource_group, plan_changes, plan_identities, plan_report,
    request_checks, retired_checks, storage_checks, tags, validate_container,
    validate_identity_prefix, validate_name, validate_resource_group, validate_storage_account,
    AzFixes, AzScope, AzSecretFound, AzureDesired, IdentityPlan, Scopes,
};
use cco_core::keys;
use cco_core::oidc::{AZURE_KEYS_PATH, DISCOVERY_PATH};
use cco_core::oidc_checks::{
    discovery_checks, jwks_checks, key_checks, patch_authentication_fix, SigningKey,
};
use cco_core::reader::{read_dir, LoadedRequest, ReadOptions};
use cco_core::report::{Check, VerifyReport};
use clap::Args;
use serde_json::{json, Value};

use crate::azure_cmd::{
    check_identities, check_issuer, connect, desired, installation_rg, CreateAllArgs, DesiredInputs,
};
use crate::report_out::{emit_plan, emit_verify, ReportOutputArgs};
use crate::verify_support::{
    local_signing_key, manifest_authentication, manifest_secret, quote_path, Cluster, Prober,
    SecretRead,
};

/// Flags of `ccoctl azure plan`: those of `create-all`, and the output format.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub create: CreateAllArgs,
    #[command(flatten)]
    pub report: ReportOutputArgs,
}

/// Flags of `ccoctl azure verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Name the resources were created with.
    #[arg(long)]
    pub name: String,
    /// Azure region the Secrets must name.
    #[arg(long)]
    pub region: String,
    /// Azure subscription ID.
    #[arg(long)]
    pub subscription_id: String,
    /// Azure AD tenant ID for the login [default: AZURE_TENANT_ID].
    #[arg(long)]
    pub tenant_id: Option<String>,
    /// Resource group of the issuer's storage account and of the identities [default: <name>-oidc].
    #[arg(long)]
    pub oidc_resource_group_name: Option<String>,
    /// Storage account of the issuer [default: <name>].
    #[arg(long)]
    pub storage_account_name: Option<String>,
    /// Blob container of the issuer [default: <name>].
    #[arg(long)]
    pub blob_container_name: Option<String>,
    /// The issuer URL, when it is not the storage account's blob endpoint and container (as with
    /// create-managed-identities --issuer-url).
    #[arg(long)]
    pub issuer_url: Option<String>,
    /// Directory of the CredentialsRequests to check [default: none; only the issuer is checked].
    #[arg(long)]
    pub credentials_requests_dir: Option<PathBuf>,
    /// Include requests of the TechPreviewNoUpgrade feature set.
    #[arg(long)]
    pub enable_tech_preview: bool,
    /// Resource group the cluster is installed in, where roles are assigned [default: <name>].
    #[arg(long)]
    pub installation_resource_group_name: Option<String>,
    /// Resource group of the DNS zone (the ingress operator's roles are assigned there too).
    #[arg(long)]
    pub dnszone_resource_group_name: Option<String>,
    /// Resource group of a pre-existing virtual network (network components' roles there too).
    #[arg(long)]
    pub network_resource_group_name: Option<String>,
    /// Public key the cluster signs tokens with [default: the key pair in --output-dir].
    #[arg(long)]
    pub public_key_file: Option<PathBuf>,
    /// Directory create-all wrote to: its key pair and `manifests/` (Secrets, Authentication).
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
    /// Kubeconfig of the cluster: check its signing keys, its Authentication
    /// spec.serviceAccountIssuer and the Secrets in it (instead of the manifests).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Extra CA certificate (PEM) to trust when fetching the issuer.
    #[arg(long, value_name = "FILE")]
    pub issuer_ca_file: Option<PathBuf>,
    /// DNS suffix of storage endpoints, for the issuer URL when the storage account is missing.
    #[arg(
        long,
        env = "AZURE_STORAGE_ENDPOINT_SUFFIX",
        default_value = "core.windows.net"
    )]
    pub storage_endpoint_suffix: String,
    #[command(flatten)]
    pub report: ReportOutputArgs,
}

fn load(dir: &Path, tech_preview: bool) -> anyhow::Result<Vec<LoadedRequest>> {
    let reqs = read_dir(
        dir,
        ReadOptions {
            cloud: Cloud::Azure,
            enable_tech_preview: tech_preview,
        },
    )?;
    if reqs.is_empty() {
        tracing::warn!(dir = %dir.display(), "no Azure CredentialsRequests found");
    }
    Ok(reqs)
}

fn extra_groups(dns: &Option<String>, net: &Option<String>) -> Vec<String> {
    [dns, net]
        .into_iter()
        .flatten()
        .filter(|g| !g.is_empty())
        .cloned()
        .collect()
}

/// `ccoctl azure plan`.
pub async fn plan(a: PlanArgs) -> anyhow::Result<()> {
    let c = &a.create.common;
    let r = &a.create.requests;
    if c.dry_run {
        bail!("plan never changes anything; --dry-run does not apply to it");
    }
    check_issuer(c, &a.create.storage)?;
    check_identities(c, r)?;
    let reqs = load(&r.credentials_requests_dir, r.enable_tech_preview)?;
    let scopes = Scopes {
        installation: installation_rg(c, r),
        dnszone: r.dnszone_resource_group_name.clone(),
        network: r.network_resource_group_name.clone(),
    };
    let plans = plan_identities(&c.name, &c.subscription_id, &scopes, &reqs)?;
    let local = local_signing_key(a.create.public_key_file.as_deref(), &c.output_dir)?;
    let jwks = match &a.create.public_key_file {
        Some(f) => {
            let (_, k) = crate::keypair::read_public_key(Some(f), &c.output_dir, "azure")?;
            keys::jwks(std::slice::from_ref(&k))?
        }
        None => match planned_key(&c.output_dir)? {
            Some(k) => keys::jwks(std::slice::from_ref(&k))?,
            None => json!({"keys": [{"kid": "(the key create-all generates)", "kty": "RSA"}]}),
        },
    };
    // The very desired state create-all computes from these flags.
    let d = desired(DesiredInputs {
        common: c,
        storage: Some(&a.create.storage),
        requests: Some(r),
        plans: &plans,
        jwks,
        issuer_override: None,
        scope: AzScope {
            issuer: true,
            identities: true,
            retire: false,
        },
    })?;
    let az = connect(Some(&a.create.tenant.tenant_id), &c.subscription_id).await?;
    let observed = cco_azure::observe(&az, &d).await?;
    let steps = plan_changes(&d, &observed)?;
    let mut report = plan_report(&d, &observed, &steps);
    if a.create.public_key_file.is_none() && local.is_none() {
        report.notes.push(format!(
            "{} holds no key pair: create-all generates one there and publishes its public key",
            c.output_dir.display()
        ));
    }
    emit_plan(&report, a.report.output)
}

/// The public key `create-all` would publish from `dir` without `--public-key-file`: the one of
/// the private key there (`create-key-pair` reuses it), if any.
fn planned_key(dir: &Path) -> anyhow::Result<Option<keys::RsaPublicKey>> {
    let f = dir.join(crate::keypair::PRIVATE_KEY_FILE);
    if !f.exists() {
        return Ok(None);
    }
    let pem = cco_core::fsutil::read_to_string(&f)?;
    Ok(Some(
        keys::parse_private_key(&pem, &f.display().to_string())?.to_public_key(),
    ))
}

struct Names {
    oidc_rg: String,
    install_rg: String,
    account: String,
    container: String,
}

fn names(a: &VerifyArgs) -> anyhow::Result<Names> {
    validate_name(&a.name)?;
    let oidc_rg = a
        .oidc_resource_group_name
        .clone()
        .unwrap_or_else(|| default_oidc_resource_group(&a.name));
    validate_resource_group(
        "--oidc-resource-group-name",
        &oidc_rg,
        a.oidc_resource_group_name
            .is_none()
            .then_some("--name followed by -oidc"),
    )?;
    let install_rg = a
        .installation_resource_group_name
        .clone()
        .unwrap_or_else(|| a.name.clone());
    validate_resource_group(
        "--installation-resource-group-name",
        &install_rg,
        a.installation_resource_group_name
            .is_none()
            .then_some("--name"),
    )?;
    let account = a
        .storage_account_name
        .clone()
        .unwrap_or_else(|| a.name.clone());
    validate_storage_account(&account)?;
    let container = a
        .blob_container_name
        .clone()
        .unwrap_or_else(|| a.name.clone());
    validate_container(&container)?;
    if a.credentials_requests_dir.is_some() {
        validate_identity_prefix(&a.name)?;
    }
    Ok(Names {
        oidc_rg,
        install_rg,
        account,
        container,
    })
}

fn fixes(a: &VerifyArgs, dir: &str, issuer: &str) -> AzFixes {
    let tenant = a
        .tenant_id
        .clone()
        .or_else(|| std::env::var("AZURE_TENANT_ID").ok())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "TENANT_ID".to_string());
    let mut base = format!(
        "--name {} --region {} --subscription-id {}",
        a.name, a.region, a.subscription_id
    );
    if let Some(g) = &a.oidc_resource_group_name {
        base.push_str(&format!(" --oidc-resource-group-name {g}"));
    }
    let mut storage = String::new();
    if let Some(s) = &a.storage_account_name {
        storage.push_str(&format!(" --storage-account-name {s}"));
    }
    if let Some(s) = &a.blob_container_name {
        storage.push_str(&format!(" --blob-container-name {s}"));
    }
    let mut groups = String::new();
    for (flag, v) in [
        (
            "--installation-resource-group-name",
            &a.installation_resource_group_name,
        ),
        (
            "--dnszone-resource-group-name",
            &a.dnszone_resource_group_name,
        ),
        (
            "--network-resource-group-name",
            &a.network_resource_group_name,
        ),
    ] {
        if let Some(v) = v {
            groups.push_str(&format!(" {flag} {v}"));
        }
    }
    let out = quote_path(&a.output_dir);
    AzFixes {
        create_all: format!(
            "ccoctl azure create-all {base} --tenant-id {tenant}{storage} --credentials-requests-dir {dir}{groups} --output-dir {out}"
        ),
        issuer: format!(
            "ccoctl azure create-oidc-issuer {base} --tenant-id {tenant}{storage} --output-dir {out}"
        ),
        identities: format!(
            "ccoctl azure create-managed-identities {base} --credentials-requests-dir {dir}{groups} --issuer-url {issuer} --output-dir {out}"
        ),
        manifests_dir: format!("{}/manifests", a.output_dir.display()),
    }
}

/// The command that publishes a signing key with the issuer.
fn publish_fix(fixes: &AzFixes, k: &SigningKey) -> String {
    if let Some(f) = k.source.strip_prefix("--public-key-file ") {
        return format!("{} --public-key-file {f}", fixes.issuer);
    }
    if let Some(secret) = k.source.strip_prefix("Secret ") {
        if let Some((ns, name)) = secret.split_once('/') {
            return format!(
                "oc get secret -n {ns} {name} -o jsonpath='{{.data.service-account\\.pub}}' | base64 -d > {name}.pub && {} --public-key-file {name}.pub",
                fixes.issuer
            );
        }
    }
    format!("{} --public-key-file {}", fixes.issuer, k.source)
}

/// `ccoctl azure verify`.
pub async fn verify(a: VerifyArgs) -> anyhow::Result<()> {
    let n = names(&a)?;
    let (reqs, dir) = match &a.credentials_requests_dir {
        Some(d) => (load(d, a.enable_tech_preview)?, quote_path(d)),
        None => (Vec::new(), "DIR".to_string()),
    };
    let scopes = Scopes {
        installation: n.install_rg.clone(),
        dnszone: a.dnszone_resource_group_name.clone(),
        network: a.network_resource_group_name.clone(),
    };
    let plans: Vec<IdentityPlan> = plan_identities(&a.name, &a.subscription_id, &scopes, &reqs)?;
    let d = AzureDesired {
        name: &a.name,
        subscription: &a.subscription_id,
        region: &a.region,
        oidc_rg: n.oidc_rg.clone(),
        install_rg: n.install_rg.clone(),
        extra_rgs: extra_groups(
            &a.dnszone_resource_group_name,
            &a.network_resource_group_name,
        ),
        account: n.account.clone(),
        container: n.container.clone(),
        tags: tags(&a.name, &[]),
        default_endpoint: blob_endpoint(&n.account, &format!("blob.{}", a.storage_endpoint_suffix)),
        issuer_override: a.issuer_url.clone(),
        jwks: Value::Null,
        plans: &plans,
        preserve_existing_roles: false,
        scope: AzScope {
            issuer: true,
            identities: true,
            retire: false,
        },
    };
    let az = connect(a.tenant_id.as_deref(), &a.subscription_id).await?;
    let observed = cco_azure::observe(&az, &d).await?;
    let cluster = match &a.kubeconfig {
        Some(k) => Some(Cluster::connect(k).await?),
        None => None,
    };
    let issuer = d.issuer(&observed);
    let fixes = fixes(&a, &dir, &issuer);
    let mut report = VerifyReport::new("azure", &a.name);

    // The issuer, as Azure AD reads it, and the keys it publishes.
    let prober = Prober::new(a.issuer_ca_file.as_deref())?;
    let disc = prober.get(&format!("{issuer}/{DISCOVERY_PATH}")).await;
    let mut f = discovery_checks(&issuer, &disc, &fixes.issuer);
    if let Some(uri) = f.jwks_uri.clone() {
        let fetched = prober.get(&uri).await;
        jwks_checks(&mut f, &uri, &fetched, &fixes.issuer);
    }
    report.checks.extend(f.checks);
    if a.issuer_url.is_none() {
        report.checks.extend(storage_checks(&d, &observed, &fixes));
    }
    let mut signing: Vec<SigningKey> =
        local_signing_key(a.public_key_file.as_deref(), &a.output_dir)?
            .into_iter()
            .collect();
    if let Some(cl) = &cluster {
        let (keys, warnings) = cl.signing_keys().await;
        report.checks.extend(warnings);
        for k in keys {
            if let Some(s) = signing.iter_mut().find(|s| s.kid == k.kid) {
                s.source = format!("{} and {}", s.source, k.source);
            } else {
                signing.push(k);
            }
        }
    }
    if let Some(jwks) = &f.jwks {
        let subject = f.jwks_uri.clone().unwrap_or_default();
        report.checks.extend(key_checks(
            &subject,
            jwks,
            &signing,
            &|k| publish_fix(&fixes, k),
            &format!(
                "az storage blob upload --account-name {} --container-name {} --name {AZURE_KEYS_PATH} --overwrite --file <a JWKS holding only the signing keys>",
                n.account, n.container
            ),
        ));
    }

    // Each request.
    for (i, p) in plans.iter().enumerate() {
        let secret = find_secret(cluster.as_ref(), &a.output_dir, p).await;
        report
            .checks
            .extend(request_checks(&d, &observed, i, &secret, &fixes));
    }
    if a.credentials_requests_dir.is_some() {
        report.checks.extend(retired_checks(&d, &observed));
    }
    if let Some(cl) = &cluster {
        report.push(cl.authentication(&issuer).await);
    }
    if let Some(c) = manifest_authentication(&a.output_dir, &issuer, &fixes.issuer) {
        report.push(c);
    } else if cluster.is_none() {
        report.push(Check::warn(
            "cluster.authentication",
            "Authentication cluster",
            "not checked: pass --kubeconfig (or --output-dir holding manifests/cluster-authentication-02-config.yaml)",
            Some(patch_authentication_fix(&issuer)),
        ));
    }
    emit_verify(&report, a.report.output)
}

async fn find_secret(cluster: Option<&Cluster>, out: &Path, p: &IdentityPlan) -> AzSecretFound {
    let (source, read): (String, SecretRead) = match cluster {
        Some(c) => (
            "in the cluster".to_string(),
            c.secret(&p.secret_namespace, &p.secret_name).await,
        ),
        None => {
            let path = out.join(cco_core::azure::secret_file(
                &p.secret_namespace,
                &p.secret_name,
            ));
            (path.display().to_string(), manifest_secret(&path))
        }
    };
    let data = read.map(|found| {
        found.map(|d| {
            d.into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v).trim().to_string()))
                .collect::<BTreeMap<String, String>>()
        })
    });
    AzSecretFound { source, data }
}
