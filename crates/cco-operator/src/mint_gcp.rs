//! GCP mint mode through [`cco_gcp::Gcp`], with the root credential's key, and default-mode
//! detection through `projects.testIamPermissions`.
//!
//! [`sync`] converges one request: a service account (its id recorded in `status.providerStatus`
//! *before* it is created; one `ccoctl`-style display name with our description is adopted instead),
//! a custom role when the request lists `permissions`, the project bindings of its predefined roles
//! and custom role (read-modify-write with etag retries), and exactly one user-managed key, whose
//! JSON key file is the target Secret's `service_account.json`. Key handling is
//! [`key_steps`](crate::mint_plan::key_steps), shared with AWS: a new key when the root credential
//! changed or the Secret lacks a valid key, every other key deleted. [`deprovision`] removes the
//! bindings, the custom role and the service account (its keys go with it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cco_api::{CredentialsRequest, ProviderSpec};
use cco_core::gcp::{service_account_email, service_account_member, CustomRole};
use cco_core::secrets::{self, SecretData};
use cco_gcp::{set_member_roles, Gcp, PolicyTarget};
use kube::api::Api;
use kube::ResourceExt;
use serde_json::{json, Value};
use tracing::info;

use crate::cluster::{Capability, ClusterView, RootSecret};
use crate::controller::{
    apply_secret, kube_err, patch_status_of, read_target_data, Context, Error,
};
use crate::mint_exec::{MintError, MintResult};
use crate::mint_plan::{key_steps, MintStep};
use crate::plan::{gcp_root_project, Deprovision, GcpMint};

/// Project permissions mint mode needs: service accounts and their keys, custom roles, and the
/// project's IAM policy.
pub const GCP_MINT_PERMISSIONS: [&str; 16] = [
    "iam.roles.create",
    "iam.roles.delete",
    "iam.roles.get",
    "iam.roles.undelete",
    "iam.roles.update",
    "iam.serviceAccountKeys.create",
    "iam.serviceAccountKeys.delete",
    "iam.serviceAccountKeys.list",
    "iam.serviceAccounts.create",
    "iam.serviceAccounts.delete",
    "iam.serviceAccounts.get",
    "iam.serviceAccounts.list",
    "resourcemanager.projects.get",
    "resourcemanager.projects.getIamPolicy",
    "resourcemanager.projects.setIamPolicy",
    "serviceusage.services.list",
];

/// Access tokens last an hour; a connection is renewed well before.
const CONNECTION_TTL: Duration = Duration::from_secs(30 * 60);

fn endpoints(ctx: &Context) -> cco_gcp::Endpoints {
    let mut e = cco_gcp::Endpoints::from_env();
    if let Some(i) = &ctx.settings.gcp_iam_endpoint {
        e.iam = i.trim_end_matches('/').to_string();
    }
    if let Some(r) = &ctx.settings.gcp_resource_manager_endpoint {
        e.resource_manager = r.trim_end_matches('/').to_string();
    }
    e
}

impl Context {
    /// A GCP connection holding the root credential's token, or why there is none.
    pub(crate) async fn gcp(&self, root: &RootSecret) -> Result<Arc<Gcp>, String> {
        let key = root.fingerprint();
        let mut guard = self.gcp.lock().await;
        if let Some((k, at, g)) = guard.as_ref() {
            if *k == key && at.elapsed() < CONNECTION_TTL {
                return Ok(g.clone());
            }
        }
        let project = gcp_root_project(root)?;
        let json = root
            .data
            .get_str(secrets::GCP_SERVICE_ACCOUNT_JSON)
            .unwrap_or_default();
        let g = Gcp::connect_with_credentials(
            &project,
            endpoints(self),
            json,
            concat!("cloud-credential-operator/", env!("CARGO_PKG_VERSION")),
        )
        .await
        .map_err(|e| e.to_string())?;
        let g = Arc::new(g);
        *guard = Some((key, Instant::now(), g.clone()));
        Ok(g)
    }
}

fn provider_status(m: &GcpMint, account_id: &str, with_fingerprint: bool) -> Value {
    let mut v = json!({
        "apiVersion": cco_api::API_VERSION,
        "kind": "GCPProviderStatus",
        "serviceAccountID": account_id,
    });
    if let Some(r) = &m.role_id {
        v["roleID"] = Value::String(r.clone());
    }
    if with_fingerprint {
        v["rootCredentialFingerprint"] = Value::String(m.root_fingerprint.clone());
    }
    v
}

/// The key id in the target Secret and whether its key file is complete for `email`.
pub fn secret_key_fields(data: Option<&SecretData>, email: &str) -> (Option<String>, bool) {
    let Some(v) = data
        .and_then(|d| d.get_str(secrets::GCP_SERVICE_ACCOUNT_JSON))
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    else {
        return (None, false);
    };
    let id = v["private_key_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let complete = v["type"] == "service_account"
        && v["client_email"] == email
        && v["private_key"].as_str().is_some_and(|k| !k.is_empty());
    (id, complete)
}

async fn record_account(
    ctx: &Context,
    cr: &mut CredentialsRequest,
    m: &GcpMint,
    account_id: &str,
) -> Result<(), MintError> {
    let api = Api::<CredentialsRequest>::namespaced(
        ctx.client.clone(),
        &cr.namespace().unwrap_or_default(),
    );
    patch_status_of(
        ctx,
        &api,
        cr,
        json!({"providerStatus": provider_status(m, account_id, false)}),
        "record GCP service account in",
    )
    .await
    .map_err(MintError::Kube)
}

/// Brings the request's service account, role, bindings and key to the desired state.
pub async fn sync(
    ctx: &Context,
    cr: &mut CredentialsRequest,
    m: &GcpMint,
    root: &RootSecret,
) -> Result<MintResult, MintError> {
    let gcp = ctx.gcp(root).await.map_err(MintError::Root)?;
    let mut account_id = m.account_id.clone();
    if m.account_is_new {
        // Adopt a service account made for this request before (found by display name, as ccoctl
        // does), else record the new id first: no account is created without the request knowing.
        let found: Vec<Value> = gcp
            .find_service_accounts(&m.display_name)
            .await?
            .into_iter()
            .filter(|a| a["description"] == m.description.as_str())
            .collect();
        if let [only] = found.as_slice() {
            if let Some(id) = only["email"].as_str().and_then(|e| e.split('@').next()) {
                account_id = id.to_string();
                info!(account = %account_id, "adopted existing GCP service account");
            }
        }
        record_account(ctx, cr, m, &account_id).await?;
        info!(account = %account_id, "chose GCP service account id");
    }
    let email = service_account_email(&account_id, &m.project);
    if let Some(id) = &m.role_id {
        let role = CustomRole {
            id: id.clone(),
            legacy_id: id.clone(),
            title: m.display_name.clone(),
            description: m.description.clone(),
            permissions: m.permissions.clone(),
        };
        let change = gcp.ensure_role(&role).await?;
        if change != cco_gcp::Change::Unchanged {
            info!(role = %id, ?change, "custom role brought up to date");
        }
    }
    if gcp.get_service_account(&email).await?.is_none() {
        gcp.create_service_account_with_id(&account_id, &m.display_name, &m.description)
            .await?;
        info!(account = %email, "created GCP service account");
    }
    let member = service_account_member(&email);
    let roles = m.project_roles();
    if gcp
        .modify_policy(&PolicyTarget::Project, |p| {
            set_member_roles(p, &member, &roles)
        })
        .await?
    {
        info!(account = %email, ?roles, "set project bindings");
    }
    if let Some(stale) = &m.stale_role_id {
        gcp.delete_role(stale).await?;
        info!(role = %stale, "deleted custom role the request no longer needs");
    }

    // The request may come from a cache that has not seen the status our last sync wrote: before
    // rotating, make sure the key was not already made under this root credential.
    let mut rotate = m.rotate;
    if rotate {
        let (ns, name) = (cr.namespace().unwrap_or_default(), cr.name_any());
        let fresh = Api::<CredentialsRequest>::namespaced(ctx.client.clone(), &ns)
            .get(&name)
            .await
            .map_err(|e| MintError::Kube(kube_err("get", "CredentialsRequest", &ns, &name)(e)))?;
        let (_, _, fingerprint) = crate::plan::gcp_provider_status(&fresh);
        rotate = fingerprint.as_deref() != Some(m.root_fingerprint.as_str());
    }
    let target = read_target_data(ctx, cr).await.map_err(MintError::Kube)?;
    let (secret_key_id, secret_complete) = secret_key_fields(target.as_ref(), &email);
    let keys = gcp.list_keys(&email).await?;
    let mut orphaned = None;
    let mut after_new_key = false;
    for step in key_steps(rotate, &keys, secret_key_id.as_deref(), secret_complete) {
        match step {
            MintStep::CreateKeyAndWriteSecret => {
                let key = gcp.create_key(&email).await?;
                let data = SecretData(BTreeMap::from([(
                    secrets::GCP_SERVICE_ACCOUNT_JSON.to_string(),
                    key.key_file,
                )]));
                apply_secret(ctx, cr, &data, BTreeMap::new())
                    .await
                    .map_err(MintError::Kube)?;
                info!(account = %email, key = %key.id, "wrote new service account key to target secret");
                after_new_key = true;
            }
            MintStep::DeleteKeys { ids } => {
                for id in ids {
                    match gcp.delete_key(&email, &id).await {
                        Ok(()) => info!(account = %email, key = %id, "deleted service account key"),
                        Err(e) if after_new_key => {
                            orphaned = Some(format!("key {id} of service account {email}: {e}"));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            other => return Err(MintError::Root(format!("unexpected key step {other:?}"))),
        }
    }
    Ok(MintResult {
        provider_status: provider_status(m, &account_id, true),
        orphaned,
    })
}

/// Deletes the service account of a request being deleted, its project bindings and custom role.
pub async fn deprovision(
    ctx: &Context,
    view: &ClusterView,
    root: Option<&RootSecret>,
    d: &Deprovision,
) -> Result<(), Error> {
    let Deprovision::GcpServiceAccount {
        account_id,
        role_id,
    } = d
    else {
        return Ok(());
    };
    let fail = |message: String| Error::Deprovision {
        what: format!("GCP service account {account_id}"),
        message,
    };
    let Some(root) = root else {
        return Err(fail(format!(
            "root credential {}/{} not found; restore it to clean up",
            crate::cluster::ROOT_SECRET_NAMESPACE,
            view.root_secret_name().unwrap_or("gcp-credentials")
        )));
    };
    let gcp = ctx.gcp(root).await.map_err(fail)?;
    let email = service_account_email(account_id, &gcp.project);
    let member = service_account_member(&email);
    gcp.modify_policy(&PolicyTarget::Project, |p| {
        set_member_roles(p, &member, &[])
    })
    .await
    .map_err(|e| fail(e.to_string()))?;
    if let Some(r) = role_id {
        gcp.delete_role(r).await.map_err(|e| fail(e.to_string()))?;
    }
    gcp.delete_service_account(&email)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// Default-mode detection on GCP: mint when the root credential holds every permission of
/// [`GCP_MINT_PERMISSIONS`]; else passthrough when it holds the `permissions` every GCP request
/// lists (predefined roles are not expanded); else insufficient.
pub async fn detect_capability(
    ctx: &Context,
    root: &RootSecret,
    requests: &[Arc<CredentialsRequest>],
) -> Result<Capability, String> {
    let gcp = ctx.gcp(root).await?;
    let mint: Vec<String> = GCP_MINT_PERMISSIONS.iter().map(|s| s.to_string()).collect();
    let held: BTreeSet<String> = gcp
        .test_iam_permissions(&mint)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    if mint.iter().all(|p| held.contains(p)) {
        return Ok(Capability::CanMint);
    }
    let needed: Vec<String> = requests
        .iter()
        .filter_map(|cr| match cr.spec.provider() {
            Ok(ProviderSpec::Gcp(g)) => Some(g.permissions),
            _ => None,
        })
        .flatten()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if needed.is_empty() {
        return Ok(Capability::CanPassthrough);
    }
    let held: BTreeSet<String> = gcp
        .test_iam_permissions(&needed)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    Ok(if needed.iter().all(|p| held.contains(p)) {
        Capability::CanPassthrough
    } else {
        Capability::Insufficient
    })
}
