//! `ccoctl ibmcloud …`: one service ID per IBM Cloud or Power VS CredentialsRequest, with its access
//! policies and an API key in the request's Secret (SPEC §6). Unlike the reference tool, `create`
//! is idempotent: an existing service ID is reused and its policies brought up to date, and the key
//! of a Secret manifest written by an earlier run is kept when it still belongs to the service ID.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cco_api::Cloud;
use cco_core::fsutil::{ensure_dir, write_atomic, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE};
use cco_core::ibm::{api_key_from_manifest, plan_service_ids, secret_manifest, ServiceIdPlan};
use cco_core::reader::{read_dir, LoadedRequest, ReadOptions};
use cco_ibm::{Ibm, IbmConfig};
use clap::{Args, Subcommand};
use futures::StreamExt;

use crate::keypair::ensure_output_dir;

#[derive(Debug, Args)]
pub struct IbmArgs {
    #[command(subcommand)]
    pub command: IbmCommand,
}

#[derive(Debug, Subcommand)]
pub enum IbmCommand {
    /// Create (or bring up to date) one service ID per request, with its policies and an API key,
    /// and write the Secret manifests.
    CreateServiceId(CreateServiceIdArgs),
    /// Delete the service IDs (and their policies and keys) of the requests.
    DeleteServiceId(DeleteServiceIdArgs),
    /// Give every service ID a new API key, apply it to the cluster's Secrets, then delete the old keys.
    RefreshKeys(RefreshKeysArgs),
}

/// Flags every `ccoctl ibmcloud` command takes.
#[derive(Debug, Args, Clone)]
pub struct IbmCommon {
    /// Name prefix of the service IDs (`<name>-<namespace>-<secret>`).
    #[arg(long)]
    pub name: String,
    /// Directory of CredentialsRequest manifests (IBM Cloud and Power VS requests are used).
    #[arg(long)]
    pub credentials_requests_dir: PathBuf,
    /// Include requests of the TechPreviewNoUpgrade feature set.
    #[arg(long)]
    pub enable_tech_preview: bool,
    /// How many service IDs are worked on at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Override the IBM Cloud API base domain (e.g. test.cloud.ibm.com): IAM is then reached at
    /// https://iam.<domain> and Resource Manager at https://resource-controller.<domain>.
    #[arg(long, value_name = "DOMAIN")]
    pub api_endpoint: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct CreateServiceIdArgs {
    #[command(flatten)]
    pub common: IbmCommon,
    /// Resource group the access policies are scoped to.
    #[arg(long)]
    pub resource_group_name: Option<String>,
    /// Directory for the Secret manifests.
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
    /// Write the service IDs and policies that would be created as JSON files, without calling IBM Cloud.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args, Clone)]
pub struct DeleteServiceIdArgs {
    #[command(flatten)]
    pub common: IbmCommon,
    /// Delete every service ID with a request's name, even when there are several.
    #[arg(long)]
    pub force: bool,
    /// List what would be deleted without deleting anything.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args, Clone)]
pub struct RefreshKeysArgs {
    #[command(flatten)]
    pub common: IbmCommon,
    /// Kubeconfig of the cluster whose Secrets get the new keys.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Resource group the access policies are scoped to.
    #[arg(long)]
    pub resource_group_name: Option<String>,
    /// Create the service IDs that do not exist yet.
    #[arg(long)]
    pub create: bool,
}

/// Runs one `ccoctl ibmcloud` subcommand.
pub async fn run(args: IbmArgs) -> anyhow::Result<()> {
    match args.command {
        IbmCommand::CreateServiceId(a) => create(a).await,
        IbmCommand::DeleteServiceId(a) => delete(a).await,
        IbmCommand::RefreshKeys(a) => refresh(a).await,
    }
}

fn load(common: &IbmCommon) -> anyhow::Result<Vec<LoadedRequest>> {
    let mut reqs = Vec::new();
    for cloud in [Cloud::IbmCloud, Cloud::PowerVs] {
        reqs.extend(read_dir(
            &common.credentials_requests_dir,
            ReadOptions {
                cloud,
                enable_tech_preview: common.enable_tech_preview,
            },
        )?);
    }
    reqs.sort_by(|a, b| a.source.cmp(&b.source));
    if reqs.is_empty() {
        tracing::warn!(dir = %common.credentials_requests_dir.display(), "no IBM Cloud or Power VS CredentialsRequests found; nothing to do");
    }
    Ok(reqs)
}

async fn connect(common: &IbmCommon) -> anyhow::Result<Ibm> {
    let cfg = IbmConfig::from_env_and_api_endpoint(common.api_endpoint.as_deref())?;
    Ok(Ibm::connect(cfg).await?)
}

async fn resource_group(ibm: &Ibm, name: Option<&str>) -> anyhow::Result<Option<String>> {
    match name {
        Some(n) if !n.is_empty() => Ok(Some(ibm.resource_group_id(n).await?)),
        _ => Ok(None),
    }
}

fn summarize(what: &str, total: usize, failures: Vec<String>) -> anyhow::Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    let mut msg = format!("{} of {total} service IDs failed to {what}", failures.len());
    for f in &failures {
        msg.push_str(&format!("\n  {f}"));
    }
    msg.push_str("\nThe others are done; re-run the same command to finish (it does not duplicate anything).");
    bail!(msg)
}

async fn create(a: CreateServiceIdArgs) -> anyhow::Result<()> {
    let reqs = load(&a.common)?;
    // Plan once with placeholders first, so a bad input fails before any call.
    plan_service_ids(&reqs, &a.common.name, "<account_id>", None)?;
    ensure_output_dir(&a.output_dir)?;
    if a.dry_run {
        return dry_run_create(&a, &reqs);
    }
    let ibm = connect(&a.common).await?;
    let rg = resource_group(&ibm, a.resource_group_name.as_deref()).await?;
    let plans = plan_service_ids(&reqs, &a.common.name, &ibm.account_id, rg.as_deref())?;
    ensure_dir(&a.output_dir.join("manifests"), PRIVATE_DIR_MODE)?;
    let total = plans.len();
    let out = a.output_dir.as_path();
    let results: Vec<Result<(), String>> = futures::stream::iter(plans.iter())
        .map(|plan| apply_one(&ibm, plan, out))
        .buffer_unordered(a.common.concurrency.into())
        .collect()
        .await;
    summarize(
        "converge",
        total,
        results.into_iter().filter_map(Result::err).collect(),
    )
}

async fn apply_one(ibm: &Ibm, plan: &ServiceIdPlan, out: &Path) -> Result<(), String> {
    let path = out.join(&plan.secret_path);
    let previous = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| api_key_from_manifest(&t));
    let applied = cco_ibm::apply(ibm, plan, previous.as_deref())
        .await
        .map_err(|e| format!("{} ({}): {e}", plan.name, plan.source))?;
    write_atomic(
        &path,
        secret_manifest(&plan.secret_namespace, &plan.secret_name, &applied.api_key).as_bytes(),
        PRIVATE_FILE_MODE,
    )
    .map_err(|e| e.to_string())?;
    let verb = if applied.created {
        "created"
    } else {
        "up to date"
    };
    tracing::debug!(service_id = %applied.service_id.name, id = %applied.service_id.id,
        policies_created = applied.policies_created, policies_deleted = applied.policies_deleted,
        key_reused = applied.key_reused, "service ID {verb}");
    println!(
        "Service ID {} ({}) {verb}; Secret manifest saved to {}",
        applied.service_id.name,
        applied.service_id.id,
        path.display()
    );
    Ok(())
}

fn dry_run_create(a: &CreateServiceIdArgs, reqs: &[LoadedRequest]) -> anyhow::Result<()> {
    let rg = a
        .resource_group_name
        .as_ref()
        .map(|n| format!("<id of resource group {n}>"));
    let plans = plan_service_ids(reqs, &a.common.name, "<account_id>", rg.as_deref())?;
    for (i, p) in plans.iter().enumerate() {
        let doc = serde_json::json!({
            "serviceId": {"account_id": "<account_id>", "name": p.name,
                "description": cco_core::ibm::SERVICE_ID_DESCRIPTION},
            "policies": p.policies.iter().map(|s| s.create_body("<iam_id of the service ID>")).collect::<Vec<_>>(),
            "apiKey": {"name": cco_core::ibm::API_KEY_NAME, "iam_id": "<iam_id of the service ID>"},
            "secret": {"namespace": p.secret_namespace, "name": p.secret_name, "path": p.secret_path},
        });
        let path = a
            .output_dir
            .join(format!("{:02}-{}-service-id.json", i + 1, p.name));
        write_atomic(&path, cco_core::oidc::to_pretty(&doc).as_bytes(), 0o644)?;
        println!("Saved {}", path.display());
    }
    Ok(())
}

async fn delete(a: DeleteServiceIdArgs) -> anyhow::Result<()> {
    let reqs = load(&a.common)?;
    let plans = plan_service_ids(&reqs, &a.common.name, "<account_id>", None)?;
    let ibm = connect(&a.common).await?;
    // Look everything up first: several service IDs with one name stop the run before any delete.
    let mut found = Vec::new();
    for p in &plans {
        let sids = ibm
            .find_service_ids(&p.name)
            .await
            .with_context(|| format!("looking up service ID {}", p.name))?;
        if sids.len() > 1 && !a.force {
            bail!(
                "{} service IDs are named {}; re-run with --force to delete them all",
                sids.len(),
                p.name
            );
        }
        if sids.is_empty() {
            println!("No service ID named {}", p.name);
        }
        found.extend(sids);
    }
    if a.dry_run {
        for s in &found {
            println!(
                "Would delete service ID {} ({}) with its policies and API keys",
                s.name, s.id
            );
        }
        return Ok(());
    }
    let total = found.len();
    let results: Vec<Result<(), String>> = futures::stream::iter(found.iter())
        .map(|sid| {
            let ibm = &ibm;
            async move {
                let n = cco_ibm::delete_with_policies(ibm, sid)
                    .await
                    .map_err(|e| format!("{}: {e}", sid.name))?;
                println!(
                    "Deleted service ID {} ({}) and {n} policies",
                    sid.name, sid.id
                );
                Ok(())
            }
        })
        .buffer_unordered(a.common.concurrency.into())
        .collect()
        .await;
    summarize(
        "delete",
        total,
        results.into_iter().filter_map(Result::err).collect(),
    )
}

async fn kube_client(path: &Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read --kubeconfig {}", path.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .with_context(|| format!("invalid kubeconfig {}", path.display()))?;
    Ok(kube::Client::try_from(cfg)?)
}

async fn apply_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    api_key: &str,
) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::ByteString;
    let data = cco_core::ibm::secret_data(api_key)
        .0
        .into_iter()
        .map(|(k, v)| (k, ByteString(v)))
        .collect();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    let mut v = serde_json::to_value(&secret)?;
    v["apiVersion"] = "v1".into();
    v["kind"] = "Secret".into();
    let api: kube::Api<Secret> = kube::Api::namespaced(client.clone(), namespace);
    api.patch(
        name,
        &kube::api::PatchParams::apply("ccoctl").force(),
        &kube::api::Patch::Apply(&v),
    )
    .await
    .with_context(|| format!("applying Secret {namespace}/{name}"))?;
    Ok(())
}

async fn refresh(a: RefreshKeysArgs) -> anyhow::Result<()> {
    let reqs = load(&a.common)?;
    plan_service_ids(&reqs, &a.common.name, "<account_id>", None)?;
    let client = kube_client(&a.kubeconfig).await?;
    let ibm = connect(&a.common).await?;
    let rg = resource_group(&ibm, a.resource_group_name.as_deref()).await?;
    let plans = plan_service_ids(&reqs, &a.common.name, &ibm.account_id, rg.as_deref())?;
    for p in &plans {
        if cco_ibm::find_one(&ibm, &p.name).await?.is_none() && !a.create {
            bail!(
                "service ID {} does not exist; re-run with --create to create it",
                p.name
            );
        }
    }
    let total = plans.len();
    let results: Vec<Result<(), String>> = futures::stream::iter(plans.iter())
        .map(|plan| {
            let (ibm, client) = (&ibm, &client);
            async move {
                let fail = |e: String| format!("{} ({}): {e}", plan.name, plan.source);
                let (sid, created, _, _) = cco_ibm::converge(ibm, plan)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                let (key_id, key) = ibm
                    .create_api_key(&sid)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                apply_secret(client, &plan.secret_namespace, &plan.secret_name, &key)
                    .await
                    .map_err(|e| fail(format!("{e:#}")))?;
                let stale = cco_ibm::remove_stale_keys(ibm, &sid, &key_id)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                let verb = if created { "created" } else { "refreshed" };
                println!(
                    "Service ID {} {verb}: new API key applied to Secret {}/{}, {stale} old keys deleted",
                    sid.name, plan.secret_namespace, plan.secret_name
                );
                Ok(())
            }
        })
        .buffer_unordered(a.common.concurrency.into())
        .collect()
        .await;
    summarize(
        "refresh",
        total,
        results.into_iter().filter_map(Result::err).collect(),
    )
}
