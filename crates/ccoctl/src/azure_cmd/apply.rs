//! The live runs of `create-oidc-issuer`, `create-managed-identities` and `create-all`, in three
//! moves: observe (`cco_azure::observe`, read only), compute the steps
//! (`cco_core::azure::plan_changes`, the very data `ccoctl azure plan` prints), and execute exactly
//! those steps, writing the local files (issuer documents, webhook configuration, Secrets) as the
//! reference tool does. Identities are worked on concurrently, each in plan order.

use std::collections::BTreeMap;

use anyhow::Context;
use cco_azure::blob::BlobClient;
use cco_azure::{Azure, Change};
use cco_core::azure::{
    fic_body, fic_name, issuer_url, owner_tag_key, plan_changes, role_definition_body, secret_file,
    secret_manifest, stable_guid, AzScope, AzureDesired, AzureObserved, AzureStep, IdentityPlan,
};
use cco_core::fsutil::{write_atomic, PRIVATE_FILE_MODE};
use cco_core::keys;
use cco_core::oidc::{
    reference_azure_discovery_text, to_go_indented, AZURE_KEYS_PATH, DISCOVERY_PATH,
};
use futures::StreamExt;
use serde_json::Value;

use super::{
    container, installation_rg, storage_account, write_issuer_files, Common, RequestsArgs,
    StorageArgs,
};
use cco_core::azure::{blob_endpoint, parse_tags, tags};

/// What `create-*` (and `plan`) ask for, from their flags.
pub(crate) struct DesiredInputs<'a> {
    pub common: &'a Common,
    pub storage: Option<&'a StorageArgs>,
    pub requests: Option<&'a RequestsArgs>,
    pub plans: &'a [IdentityPlan],
    pub jwks: Value,
    pub issuer_override: Option<String>,
    pub scope: AzScope,
}

/// The desired state of a `create-*` run (and of `plan` with create-all's flags).
pub(crate) fn desired<'a>(i: DesiredInputs<'a>) -> anyhow::Result<AzureDesired<'a>> {
    let c = i.common;
    let (account, container_name, suffix) = match i.storage {
        Some(s) => (
            storage_account(c, s),
            container(c, s),
            s.storage_endpoint_suffix.clone(),
        ),
        None => (c.name.clone(), c.name.clone(), "core.windows.net".into()),
    };
    let (install_rg, extra_rgs, preserve) = match i.requests {
        Some(r) => (
            installation_rg(c, r),
            [
                &r.dnszone_resource_group_name,
                &r.network_resource_group_name,
            ]
            .into_iter()
            .flatten()
            .filter(|g| !g.is_empty())
            .cloned()
            .collect(),
            r.preserve_existing_roles,
        ),
        None => (c.name.clone(), Vec::new(), false),
    };
    Ok(AzureDesired {
        name: &c.name,
        subscription: &c.subscription_id,
        region: &c.region,
        oidc_rg: c.oidc_rg(),
        install_rg,
        extra_rgs,
        default_endpoint: blob_endpoint(&account, &format!("blob.{suffix}")),
        account,
        container: container_name,
        tags: tags(&c.name, &parse_tags(&c.user_tags)?),
        issuer_override: i.issuer_override,
        jwks: i.jwks,
        plans: i.plans,
        preserve_existing_roles: preserve,
        scope: i.scope,
    })
}

fn blob_tags(t: &Value) -> Vec<(String, String)> {
    t.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Observes, plans and executes the steps; returns the issuer URL. `files_tenant` is the tenant
/// written into the webhook configuration (issuer runs); `secret_tenant` the one Secrets name when
/// an identity reports none.
pub(crate) async fn converge(
    az: &Azure,
    d: &AzureDesired<'_>,
    c: &Common,
    files_tenant: Option<&str>,
    secret_tenant: Option<&str>,
    concurrency: usize,
) -> anyhow::Result<String> {
    let observed = cco_azure::observe(az, d).await?;
    let steps = plan_changes(d, &observed)?;
    tracing::debug!(steps = steps.len(), "planned");
    let mut endpoint = observed.storage.as_ref().map(|s| s.blob_endpoint.clone());
    let mut identity_steps: BTreeMap<usize, Vec<&AzureStep>> = BTreeMap::new();
    let mut deletes = Vec::new();
    let mut blob_steps = Vec::new();
    for s in &steps {
        match s {
            AzureStep::PutGroup { group, tags, .. } => {
                let change = az.ensure_resource_group(group, &c.region, tags).await?;
                println!("Resource group {group} {}", change.verb());
            }
            AzureStep::PutStorage { .. } => {
                let (change, e) = az
                    .ensure_storage_account(&d.oidc_rg, &d.account, &c.region, &d.tags)
                    .await?;
                println!("Storage account {} {}", d.account, change.verb());
                endpoint = Some(e);
            }
            AzureStep::CreateContainer
            | AzureStep::MakeContainerPublic
            | AzureStep::PutBlob { .. } => blob_steps.push(s),
            AzureStep::PutIdentity { plan, .. }
            | AzureStep::PutRole { plan, .. }
            | AzureStep::CreateAssignment { plan, .. }
            | AzureStep::PutFic { plan, .. } => identity_steps.entry(*plan).or_default().push(s),
            AzureStep::DeleteAssignment { identity, .. } => {
                match d.plans.iter().position(|p| &p.identity_name == identity) {
                    Some(i) => identity_steps.entry(i).or_default().push(s),
                    None => deletes.push(s),
                }
            }
            AzureStep::DeleteIdentity { .. } => deletes.push(s),
        }
    }
    let issuer = match (&d.issuer_override, &endpoint) {
        (Some(i), _) => i.trim_end_matches('/').to_string(),
        (None, Some(e)) => issuer_url(e, &d.container),
        (None, None) => d.issuer(&observed),
    };
    if d.scope.issuer {
        publish(az, d, &blob_steps, endpoint.as_deref(), &issuer).await?;
        // The reference tool's bytes: its discovery template and Go's four-space JWKS.
        let discovery = reference_azure_discovery_text(&issuer);
        let published = observed
            .container
            .as_ref()
            .and_then(|c| c.jwks.as_deref())
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
            .unwrap_or(Value::Null);
        let jwks = to_go_indented(&keys::merge_jwks(&d.jwks, &published));
        write_issuer_files(
            &c.output_dir,
            &issuer,
            &discovery,
            &jwks,
            files_tenant.unwrap_or_default(),
        )?;
    }
    if d.scope.identities {
        println!(
            "Cluster installation resource group name is {}. This resource group MUST be configured as the resource group used for cluster installation.",
            d.install_rg
        );
        identities(
            az,
            d,
            &observed,
            c,
            &identity_steps,
            &issuer,
            secret_tenant,
            concurrency,
        )
        .await?;
    }
    for s in deletes {
        match s {
            AzureStep::DeleteAssignment { id, .. } => {
                az.delete_by_id(id).await?;
                println!("Removed stale role assignment {id}");
            }
            AzureStep::DeleteIdentity { identity } => {
                az.delete_identity(&d.oidc_rg, identity).await?;
                println!("Deleted managed identity {identity} (no request asks for it any more)");
            }
            _ => {}
        }
    }
    Ok(issuer)
}

async fn publish(
    az: &Azure,
    d: &AzureDesired<'_>,
    steps: &[&AzureStep],
    endpoint: Option<&str>,
    issuer: &str,
) -> anyhow::Result<()> {
    if steps.is_empty() {
        println!(
            "Blob container {} already exists (publicly readable: blobs and listing); {DISCOVERY_PATH} and {AZURE_KEYS_PATH} are up to date",
            d.container
        );
        return Ok(());
    }
    let endpoint = endpoint.with_context(|| {
        format!(
            "storage account {} has no properties.primaryEndpoints.blob",
            d.account
        )
    })?;
    let key = az.storage_key(&d.oidc_rg, &d.account).await?;
    let blob = BlobClient::new(cco_azure::http_client()?, endpoint, &key)?;
    let tags = blob_tags(&d.tags);
    let mut published = false;
    for s in steps {
        match s {
            AzureStep::CreateContainer | AzureStep::MakeContainerPublic => {
                let created = blob.ensure_public_container(&d.container).await?;
                println!(
                    "Blob container {} {} (publicly readable: blobs and listing)",
                    d.container,
                    if created {
                        "created"
                    } else {
                        "made publicly readable"
                    }
                );
            }
            AzureStep::PutBlob { path, content, .. } => {
                // The discovery document names the issuer as the account reports its endpoint.
                let body = if *path == DISCOVERY_PATH {
                    reference_azure_discovery_text(issuer)
                } else {
                    content.clone()
                };
                blob.put_blob_tagged(
                    &d.container,
                    path,
                    cco_azure::blob::ISSUER_DOCUMENT_CONTENT_TYPE,
                    body.as_bytes(),
                    &tags,
                )
                .await?;
                published = true;
            }
            _ => {}
        }
    }
    if published {
        println!("Published {DISCOVERY_PATH} and {AZURE_KEYS_PATH} at {issuer}");
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn identities(
    az: &Azure,
    d: &AzureDesired<'_>,
    observed: &AzureObserved,
    c: &Common,
    steps: &BTreeMap<usize, Vec<&AzureStep>>,
    issuer: &str,
    tenant: Option<&str>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let total = d.plans.len();
    let none: Vec<&AzureStep> = Vec::new();
    let mut results = futures::stream::iter(d.plans.iter().enumerate().map(|(i, p)| {
        let mine = steps.get(&i).unwrap_or(&none);
        async move {
            (
                p,
                identity(az, d, observed, c, p, mine, issuer, tenant).await,
            )
        }
    }))
    .buffer_unordered(concurrency.max(1));
    let mut errors = Vec::new();
    let mut done = 0;
    while let Some((p, res)) = results.next().await {
        done += 1;
        match res {
            Ok(()) => {
                tracing::debug!(identity = %p.identity_name, progress = %format!("{done}/{total}"), "identity ready")
            }
            Err(e) => {
                tracing::error!(identity = %p.identity_name, error = %format!("{e:#}"), "identity failed");
                errors.push(format!("{} ({}): {e:#}", p.identity_name, p.request));
            }
        }
    }
    if !errors.is_empty() {
        anyhow::bail!(
            "{} of {total} identities failed (re-run to finish):\n  {}",
            errors.len(),
            errors.join("\n  ")
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn identity(
    az: &Azure,
    d: &AzureDesired<'_>,
    observed: &AzureObserved,
    c: &Common,
    p: &IdentityPlan,
    steps: &[&AzureStep],
    issuer: &str,
    tenant: Option<&str>,
) -> anyhow::Result<()> {
    let have = observed.identity(&p.identity_name);
    let (mut client_id, mut principal, mut id_tenant) = have
        .map(|h| {
            (
                h.client_id.clone(),
                h.principal_id.clone(),
                h.tenant_id.clone(),
            )
        })
        .unwrap_or_default();
    let mut role_ids: BTreeMap<String, String> = BTreeMap::new();
    let mut reported = false;
    for s in steps {
        match s {
            AzureStep::PutIdentity { .. } => {
                let (change, id) = az
                    .ensure_identity(
                        &d.oidc_rg,
                        &p.identity_name,
                        &c.region,
                        &d.tags,
                        &owner_tag_key(&c.name),
                    )
                    .await?;
                println!("Managed identity {} {}", p.identity_name, change.verb());
                reported = true;
                client_id = id.client_id;
                principal = id.principal_id;
                id_tenant = id.tenant_id;
            }
            AzureStep::PutRole { .. } => {
                let Some(custom) = &p.custom_role else {
                    continue;
                };
                let planned = d.custom_role_id(observed, p).unwrap_or_default();
                let (change, role_id) = az
                    .ensure_role_definition(
                        &custom.id,
                        &role_definition_body(custom, &c.name, &c.subscription_id),
                    )
                    .await?;
                println!("Custom role {} {}", custom.role_name, change.verb());
                role_ids.insert(planned, role_id);
            }
            AzureStep::CreateAssignment { scope, role, .. } => {
                let role = role_ids.get(role).unwrap_or(role);
                let guid = stable_guid(&[scope, role, &principal]);
                let (change, _) = az
                    .ensure_role_assignment(scope, &guid, role, &principal, &[])
                    .await?;
                if change != Change::Unchanged {
                    tracing::debug!(%scope, %role, identity = %p.identity_name, "role assigned");
                }
            }
            AzureStep::DeleteAssignment { id, .. } => {
                az.delete_by_id(id).await?;
                println!("Removed stale role assignment {id}");
            }
            AzureStep::PutFic { sa, .. } => {
                az.ensure_federated_credential(
                    &d.oidc_rg,
                    &p.identity_name,
                    &fic_name(sa),
                    &fic_body(issuer, &p.secret_namespace, sa),
                )
                .await?;
            }
            _ => {}
        }
    }
    if !reported {
        println!(
            "Managed identity {} {}",
            p.identity_name,
            Change::Unchanged.verb()
        );
    }
    // The tenant is the identity's own, as the reference tool writes it.
    let tenant = if id_tenant.is_empty() {
        tenant.unwrap_or_default()
    } else {
        &id_tenant
    };
    let path = c
        .output_dir
        .join(secret_file(&p.secret_namespace, &p.secret_name));
    write_atomic(
        &path,
        secret_manifest(
            &p.secret_namespace,
            &p.secret_name,
            &client_id,
            tenant,
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
