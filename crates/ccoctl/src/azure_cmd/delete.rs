//! `ccoctl azure delete`: removes what the create commands made for `--name`, found by the ownership
//! tag (identities, storage account, resource group) or the marker description (custom roles, the
//! reference tool's or that of earlier versions of this tool); `--dry-run` only reads and lists.

use cco_azure::blob::BlobClient;
use cco_core::azure::{
    default_oidc_resource_group, is_owned, legacy_role_description, owner_tag_key,
    role_description, validate_name,
};

use super::{connect, DeleteArgs};

/// Runs `ccoctl azure delete`.
pub(super) async fn delete(a: DeleteArgs) -> anyhow::Result<()> {
    validate_name(&a.name)?;
    let rg = a
        .oidc_resource_group_name
        .clone()
        .unwrap_or_else(|| default_oidc_resource_group(&a.name));
    let account = a
        .storage_account_name
        .clone()
        .unwrap_or_else(|| a.name.clone());
    let az = connect(a.tenant_id.as_deref(), &a.subscription_id).await?;
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
    // Roles made by the reference tool or by this tool, now or before it took the reference marker.
    let markers = [role_description(&a.name), legacy_role_description(&a.name)];
    for role in az.list_custom_roles().await? {
        let description = role["properties"]["description"].as_str().unwrap_or("");
        if !markers.iter().any(|m| m == description) {
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
                    .unwrap_or_else(|| a.name.clone());
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
