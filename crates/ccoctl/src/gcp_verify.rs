//! `ccoctl gcp verify` and `ccoctl gcp plan`: both observe GCP with the read-only calls of
//! `cco_gcp::observe` (the same observation `create-*` plans from). `plan` prints the steps
//! `create-all` would take; `verify` checks the issuer (fetched anonymously over HTTPS, as Google's
//! token service does), the keys, the pool and provider, every request's service account, trust,
//! permissions and Secret, and with `--kubeconfig` the cluster's Authentication.
//!
//! With a storage emulator (`STORAGE_EMULATOR_HOST` / `GCP_STORAGE_ENDPOINT`), the issuer URL
//! `https://storage.googleapis.com/<bucket>` is fetched from the emulator's endpoint instead, the
//! way Google's own clients route storage traffic; `--issuer-ca-file` trusts a private CA.

use std::path::{Path, PathBuf};

use anyhow::bail;
use cco_core::gcp::{
    issuer_url, plan_changes, plan_report, plan_service_accounts, provider_checks, request_checks,
    retired_checks, validate_name_length, validate_pool_id, GcpFixes, KeyStorage, Scope,
    SecretFound, ServiceAccountPlan,
};
use cco_core::keys;
use cco_core::oidc::DISCOVERY_PATH;
use cco_core::oidc_checks::{
    discovery_checks, jwks_checks, key_checks, parse_jwks, patch_authentication_fix, SigningKey,
};
use cco_core::report::{Check, VerifyReport};
use clap::Args;
use serde_json::{json, Value};

use crate::gcp_cmd::{
    connect, desired, load, Common, CreateAllArgs, KeyStorageMethod, RequestsArgs,
};
use crate::report_out::{emit_plan, emit_verify, ReportOutputArgs};
use crate::verify_support::{
    local_signing_key, manifest_authentication, manifest_secret, quote_path, Cluster, Prober,
    SecretRead,
};

/// Flags of `ccoctl gcp plan`: those of `create-all`, and the output format.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub create: CreateAllArgs,
    #[command(flatten)]
    pub report: ReportOutputArgs,
}

/// Flags of `ccoctl gcp verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Name the resources were created with.
    #[arg(long)]
    pub name: String,
    /// ID of the GCP project.
    #[arg(long)]
    pub project: String,
    /// Directory of the CredentialsRequests to check [default: none; only the issuer and provider
    /// are checked].
    #[arg(long)]
    pub credentials_requests_dir: Option<PathBuf>,
    /// Include requests of the TechPreviewNoUpgrade feature set.
    #[arg(long)]
    pub enable_tech_preview: bool,
    /// Workload identity pool [default: --name].
    #[arg(long)]
    pub workload_identity_pool: Option<String>,
    /// Workload identity provider [default: --name].
    #[arg(long)]
    pub workload_identity_provider: Option<String>,
    /// Where the provider finds the signing keys.
    #[arg(long, value_enum, default_value = "public-bucket")]
    pub key_storage_method: KeyStorageMethod,
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
    #[command(flatten)]
    pub report: ReportOutputArgs,
}

/// `ccoctl gcp plan`.
pub async fn plan(a: PlanArgs) -> anyhow::Result<()> {
    let c = &a.create.common;
    if c.dry_run {
        bail!("plan never changes anything; --dry-run does not apply to it");
    }
    crate::gcp_cmd::check_issuer_name(&c.name, &a.create.issuer)?;
    let reqs = load(&a.create.requests)?;
    let plans = plan_service_accounts(&reqs, &c.name, &c.project)?;
    let local = local_signing_key(a.create.public_key_file.as_deref(), &c.output_dir)?;
    let jwks = match (&a.create.public_key_file, &local) {
        (Some(f), _) => {
            let (_, k) = crate::keypair::read_public_key(Some(f), &c.output_dir, "gcp")?;
            keys::jwks(std::slice::from_ref(&k))?
        }
        (None, _) => match planned_key(&c.output_dir)? {
            Some(k) => keys::jwks(std::slice::from_ref(&k))?,
            None => json!({"keys": [{"kid": "(the key create-all generates)", "kty": "RSA"}]}),
        },
    };
    let (gcp, number) = connect(&c.project).await?;
    let d = desired(
        c,
        &c.name,
        &c.name,
        a.create.issuer.key_storage_method.into(),
        &a.create.issuer.region,
        jwks,
        a.create.issuer.prune_old_keys,
        &plans,
        Scope {
            retire: a.create.delete_retired,
            ..Scope::ALL
        },
    );
    let observed = cco_gcp::observe(&gcp, &number, &d).await?;
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

/// The public URL `url` (under `https://storage.googleapis.com`) as the configured storage
/// endpoint serves it.
fn storage_url(url: &str, storage_endpoint: &str) -> String {
    const PUBLIC: &str = "https://storage.googleapis.com";
    match url.strip_prefix(PUBLIC) {
        Some(rest) if storage_endpoint != PUBLIC => format!("{storage_endpoint}{rest}"),
        _ => url.to_string(),
    }
}

fn fixes(a: &VerifyArgs, pool: &str, provider: &str, dir: &str) -> GcpFixes {
    let storage = match a.key_storage_method {
        KeyStorageMethod::PublicBucket => "",
        KeyStorageMethod::PoolJwkFile => " --key-storage-method pool-jwk-file",
    };
    let out = quote_path(&a.output_dir);
    GcpFixes {
        create_all: format!(
            "ccoctl gcp create-all --name {} --project {} --credentials-requests-dir {dir}{storage} --output-dir {out}",
            a.name, a.project
        ),
        issuer: format!(
            "ccoctl gcp create-workload-identity-provider --name {provider} --project {} --workload-identity-pool {pool}{storage} --output-dir {out}",
            a.project
        ),
        accounts: format!(
            "ccoctl gcp create-service-accounts --name {} --project {} --credentials-requests-dir {dir} --workload-identity-pool {pool} --workload-identity-provider {provider} --output-dir {out}",
            a.name, a.project
        ),
        manifests_dir: format!("{}/manifests", a.output_dir.display()),
    }
}

/// The command that publishes a signing key with the provider (and bucket).
fn publish_fix(fixes: &GcpFixes, k: &SigningKey) -> String {
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

/// `ccoctl gcp verify`.
pub async fn verify(a: VerifyArgs) -> anyhow::Result<()> {
    validate_name_length(&a.name)?;
    validate_pool_id("--name", &a.name)?;
    let pool = a
        .workload_identity_pool
        .clone()
        .unwrap_or_else(|| a.name.clone());
    let provider = a
        .workload_identity_provider
        .clone()
        .unwrap_or_else(|| a.name.clone());
    let (reqs, dir) = match &a.credentials_requests_dir {
        Some(d) => {
            let r = RequestsArgs {
                credentials_requests_dir: d.clone(),
                enable_tech_preview: a.enable_tech_preview,
                concurrency: 8,
            };
            (load(&r)?, quote_path(d))
        }
        None => (Vec::new(), "DIR".to_string()),
    };
    let plans = plan_service_accounts(&reqs, &a.name, &a.project)?;
    let fixes = fixes(&a, &pool, &provider, &dir);
    let storage: KeyStorage = a.key_storage_method.into();
    let common = Common {
        name: a.name.clone(),
        project: a.project.clone(),
        output_dir: a.output_dir.clone(),
        dry_run: false,
    };
    let (gcp, number) = connect(&a.project).await?;
    let d = desired(
        &common,
        &pool,
        &provider,
        storage,
        "us",
        Value::Null,
        false,
        &plans,
        Scope {
            retire: true,
            ..Scope::ALL
        },
    );
    let observed = cco_gcp::observe(&gcp, &number, &d).await?;
    let cluster = match &a.kubeconfig {
        Some(k) => Some(Cluster::connect(k).await?),
        None => None,
    };
    let mut report = VerifyReport::new("gcp", &a.name);
    let issuer = issuer_url(&a.name);

    // The issuer and the keys it publishes.
    let published: Option<(String, Value)> = match storage {
        KeyStorage::PublicBucket => {
            let prober = Prober::new(a.issuer_ca_file.as_deref())?;
            let endpoint = &gcp.endpoints.storage;
            let disc_url = format!("{issuer}/{DISCOVERY_PATH}");
            let disc = prober.get(&storage_url(&disc_url, endpoint)).await;
            let mut f = discovery_checks(&issuer, &disc, &fixes.issuer);
            if let Some(uri) = f.jwks_uri.clone() {
                let fetched = prober.get(&storage_url(&uri, endpoint)).await;
                jwks_checks(&mut f, &uri, &fetched, &fixes.issuer);
            }
            report.checks.extend(f.checks);
            f.jwks.map(|j| (f.jwks_uri.unwrap_or_default(), j))
        }
        KeyStorage::PoolJwkFile => {
            let subject = cco_core::gcp::provider_resource(&a.project, &pool, &provider);
            let raw = observed.provider.as_ref().map(|p| p.jwks_json.clone());
            match raw.as_deref().map(|r| parse_jwks(r.as_bytes())) {
                Some(Ok(j)) => {
                    report.push(Check::pass(
                        "provider.jwks",
                        &subject,
                        "the provider holds a JWKS that parses",
                    ));
                    Some((subject, j))
                }
                Some(Err(e)) => {
                    report.push(Check::fail(
                        "provider.jwks",
                        &subject,
                        format!("the JWKS stored in the provider does not parse: {e}"),
                        Some(fixes.issuer.clone()),
                    ));
                    None
                }
                None => None,
            }
        }
    };
    let mut signing: Vec<SigningKey> =
        local_signing_key(a.public_key_file.as_deref(), &a.output_dir)?
            .into_iter()
            .collect();
    if let Some(cl) = &cluster {
        let (keys, warnings) = cl.signing_keys().await;
        report.checks.extend(warnings);
        for k in keys {
            if !signing.iter().any(|s| s.kid == k.kid) {
                signing.push(k);
            } else if let Some(s) = signing.iter_mut().find(|s| s.kid == k.kid) {
                s.source = format!("{} and {}", s.source, k.source);
            }
        }
    }
    if let Some((subject, jwks)) = &published {
        report.checks.extend(key_checks(
            subject,
            jwks,
            &signing,
            &|k| publish_fix(&fixes, k),
            &format!("{} --prune-old-keys", fixes.issuer),
        ));
    }

    // The identity provider, then each request.
    report.checks.extend(provider_checks(&d, &observed, &fixes));
    for (i, p) in plans.iter().enumerate() {
        let secret = find_secret(cluster.as_ref(), &a.output_dir, p).await;
        report
            .checks
            .extend(request_checks(&d, &observed, i, &secret, &fixes));
    }
    if a.credentials_requests_dir.is_some() {
        report.checks.extend(retired_checks(&d, &observed, &fixes));
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

async fn find_secret(cluster: Option<&Cluster>, out: &Path, p: &ServiceAccountPlan) -> SecretFound {
    let (source, read): (String, SecretRead) = match cluster {
        Some(c) => (
            "in the cluster".to_string(),
            c.secret(&p.secret_namespace, &p.secret_name).await,
        ),
        None => {
            let path = out.join(&p.secret_path);
            (path.display().to_string(), manifest_secret(&path))
        }
    };
    let config = read.and_then(|data| match data {
        None => Ok(None),
        Some(d) => match d.get(cco_core::secrets::GCP_SERVICE_ACCOUNT_JSON) {
            None => Err("it has no service_account.json".to_string()),
            Some(raw) => serde_json::from_slice::<Value>(raw)
                .map(Some)
                .map_err(|e| format!("service_account.json is not JSON: {e}")),
        },
    });
    SecretFound { source, config }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_storage_url_is_served_by_the_emulator_when_one_is_set() {
        let u = "https://storage.googleapis.com/c1-oidc/keys.json";
        assert_eq!(
            storage_url(u, "https://127.0.0.1:9"),
            "https://127.0.0.1:9/c1-oidc/keys.json"
        );
        assert_eq!(storage_url(u, "https://storage.googleapis.com"), u);
        assert_eq!(
            storage_url("https://other/x", "https://127.0.0.1:9"),
            "https://other/x"
        );
    }
}
