//! The read-only observation `ccoctl azure plan` and `verify` start from: what exists of what
//! [`AzureDesired`] asks for, as an [`AzureObserved`]. Only GETs (and `listKeys`, which reads the
//! storage account's key to read the container's access level and documents); nothing changes.

use std::collections::BTreeSet;

use cco_core::azure::{
    AzureDesired, AzureObserved, ObservedAssignment, ObservedContainer, ObservedFic,
    ObservedIdentity, ObservedRole, ObservedStorage,
};
use cco_core::oidc::{AZURE_KEYS_PATH, DISCOVERY_PATH};
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use crate::blob::BlobClient;
use crate::{Azure, AzureError};

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// Reads everything `plan_changes` and the verify checks look at.
pub async fn observe(az: &Azure, d: &AzureDesired<'_>) -> Result<AzureObserved, AzureError> {
    let mut o = AzureObserved::default();
    let mut groups: Vec<&String> = vec![&d.oidc_rg, &d.install_rg];
    groups.extend(d.extra_rgs.iter());
    for g in groups {
        let found = az.get_resource_group(g).await?;
        o.groups.insert(g.clone(), found.map(|v| v["tags"].clone()));
    }
    // With an issuer of its own (create-managed-identities --issuer-url) the storage account is
    // not ours to look at.
    let storage_wanted = d.scope.issuer || d.issuer_override.is_none();
    if storage_wanted && o.groups.get(&d.oidc_rg).is_some_and(Option::is_some) {
        if let Some(s) = az.get_storage_account(&d.oidc_rg, &d.account).await? {
            let storage = ObservedStorage {
                tags: s["tags"].clone(),
                allow_blob_public_access: s["properties"]["allowBlobPublicAccess"]
                    == Value::Bool(true),
                blob_endpoint: text(&s["properties"]["primaryEndpoints"]["blob"]),
            };
            if !storage.blob_endpoint.is_empty() {
                let key = az.storage_key(&d.oidc_rg, &d.account).await?;
                let blob = BlobClient::new(crate::http_client()?, &storage.blob_endpoint, &key)?;
                if let Some(access) = blob.container_public_access(&d.container).await? {
                    o.container = Some(ObservedContainer {
                        access,
                        discovery: blob.get_blob(&d.container, DISCOVERY_PATH).await?,
                        jwks: blob.get_blob(&d.container, AZURE_KEYS_PATH).await?,
                    });
                }
            }
            o.storage = Some(storage);
        }
    }
    let builtin: BTreeSet<&String> = d.plans.iter().flat_map(|p| &p.builtin_roles).collect();
    for name in builtin {
        let found = az.role_definitions_named(name).await?;
        o.builtin_roles.insert(
            name.clone(),
            found
                .iter()
                .find_map(|r| r["id"].as_str().map(str::to_owned)),
        );
    }
    for role in d.plans.iter().filter_map(|p| p.custom_role.as_ref()) {
        let found = az.role_definitions_named(&role.role_name).await?;
        o.roles.insert(
            role.role_name.clone(),
            found
                .iter()
                .map(|r| ObservedRole {
                    id: text(&r["id"]),
                    properties: r["properties"].clone(),
                })
                .collect(),
        );
    }
    if o.groups.get(&d.oidc_rg).is_some_and(Option::is_some) {
        let wanted: BTreeSet<&str> = d.plans.iter().map(|p| p.identity_name.as_str()).collect();
        let prefix = format!("{}-", d.name);
        let raw: Vec<Value> = az
            .list_identities_raw(&d.oidc_rg)
            .await?
            .into_iter()
            .filter(|i| {
                let n = i["name"].as_str().unwrap_or_default();
                wanted.contains(n) || n.starts_with(&prefix)
            })
            .collect();
        o.identities = futures::stream::iter(raw.iter().map(|i| identity(az, &d.oidc_rg, i)))
            .buffered(8)
            .try_collect()
            .await?;
    }
    Ok(o)
}

async fn identity(az: &Azure, rg: &str, i: &Value) -> Result<ObservedIdentity, AzureError> {
    let name = text(&i["name"]);
    let principal = text(&i["properties"]["principalId"]);
    let fics = az
        .list_federated_credentials(rg, &name)
        .await?
        .iter()
        .map(|f| ObservedFic {
            name: text(&f["name"]),
            issuer: text(&f["properties"]["issuer"]),
            subject: text(&f["properties"]["subject"]),
            audiences: strings(&f["properties"]["audiences"]),
        })
        .collect();
    let assignments = if principal.is_empty() {
        Vec::new()
    } else {
        az.list_role_assignments(&principal)
            .await?
            .iter()
            .map(|a| ObservedAssignment {
                id: text(&a["id"]),
                name: text(&a["name"]),
                scope: text(&a["properties"]["scope"]),
                role_definition_id: text(&a["properties"]["roleDefinitionId"]),
            })
            .collect()
    };
    Ok(ObservedIdentity {
        client_id: text(&i["properties"]["clientId"]),
        tenant_id: text(&i["properties"]["tenantId"]),
        tags: i["tags"].clone(),
        name,
        principal_id: principal,
        fics,
        assignments,
    })
}
