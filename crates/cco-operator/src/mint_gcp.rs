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
use tracing::{info, warn};

use crate::cluster::{Capability, ClusterView, RootSecret};
use crate::controller::{apply_secret, patch_status_of, read_target_data, Context, Error};
use crate::mint_exec::{no_root_message, MintError, MintResult};
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
    /// A GCP connection holding `cred` (the root or a read-only credential), or why there is none.
    pub(crate) async fn gcp(&self, cred: &RootSecret) -> Result<Arc<Gcp>, String> {
        let key = cred.fingerprint();
        let mut guard = self.gcp.lock().await;
        if let Some((at, g)) = guard.get(&key) {
            if at.elapsed() < CONNECTION_TTL {
                return Ok(g.clone());
            }
        }
        let project = gcp_root_project(cred)?;
        let json = cred
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
        if guard.len() >= 4 {
            guard.clear();
        }
        guard.insert(key, (Instant::now(), g.clone()));
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
    root: Option<&RootSecret>,
) -> Result<MintResult, MintError> {
    // Writes need the root credential; reads use the read-only one when it exists.
    let writer = match root {
        Some(r) => Some(ctx.gcp(r).await.map_err(MintError::Root)?),
        None => None,
    };
    let mut account_id = m.account_id.clone();
    if m.account_is_new {
        let Some(gcp) = writer.as_ref() else {
            return Err(MintError::Root(no_root_message(
                ctx,
                "create a service account",
            )));
        };
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
    let role = m.role_id.as_ref().map(|id| CustomRole {
        id: id.clone(),
        legacy_id: id.clone(),
        title: m.display_name.clone(),
        description: m.description.clone(),
        permissions: m.permissions.clone(),
        listed_permissions: m.permissions.clone(),
    });
    let member = service_account_member(&email);
    let roles = m.project_roles();

    let (reader, read_only) = match ctx.readonly.gcp() {
        Some(ro) => (ctx.gcp(&ro).await.map_err(MintError::Root)?, true),
        None => match &writer {
            Some(w) => (w.clone(), false),
            None => {
                return Err(MintError::Root(no_root_message(
                    ctx,
                    "read the service account",
                )))
            }
        },
    };
    let obs = match observe(&reader, m, role.as_ref(), &email, &member, &roles).await {
        // A read-only key GCP refuses (revoked, not yet usable): read with the root credential.
        Err(e) if read_only && matches!(e.code(), Some(401 | 403)) && writer.is_some() => {
            warn!(error = %e, "read-only credential rejected; reading with the root credential");
            let root_reader = writer.clone().ok_or(e)?;
            observe(&root_reader, m, role.as_ref(), &email, &member, &roles).await?
        }
        r => r?,
    };
    let need = |what: &str| writer.clone().ok_or_else(|| no_root_message(ctx, what));
    if let (Some(role), false) = (&role, obs.role_ok) {
        let change = need("update the custom role")
            .map_err(MintError::Root)?
            .ensure_role(role)
            .await?;
        info!(role = %role.id, ?change, "custom role brought up to date");
    }
    if !obs.account_exists {
        need("create the service account")
            .map_err(MintError::Root)?
            .create_service_account_with_id(&account_id, &m.display_name, &m.description)
            .await?;
        info!(account = %email, "created GCP service account");
    }
    if !obs.bindings_ok
        && need("set the project bindings")
            .map_err(MintError::Root)?
            .modify_policy(&PolicyTarget::Project, |p| {
                set_member_roles(p, &member, &roles)
            })
            .await?
    {
        info!(account = %email, ?roles, "set project bindings");
    }
    if let (Some(stale), true) = (&m.stale_role_id, obs.stale_role_exists) {
        need("delete the custom role the request no longer needs")
            .map_err(MintError::Root)?
            .delete_role(stale)
            .await?;
        info!(role = %stale, "deleted custom role the request no longer needs");
    }

    // The request may come from a cache that has not seen the status our last sync wrote: before
    // rotating, make sure the key was not already made under this root credential.
    let mut rotate = m.rotate;
    if rotate {
        let fresh = crate::mint_exec::fresh_request(ctx, cr).await?;
        let (_, _, fingerprint) = crate::plan::gcp_provider_status(&fresh);
        rotate = fingerprint.as_deref() != Some(m.root_fingerprint.as_str());
    }
    let target = read_target_data(ctx, cr).await.map_err(MintError::Kube)?;
    let (secret_key_id, secret_complete) = secret_key_fields(target.as_ref(), &email);
    let steps = key_steps(rotate, &obs.keys, secret_key_id.as_deref(), secret_complete);
    let mut orphaned = None;
    let mut after_new_key = false;
    for step in steps {
        match step {
            MintStep::CreateKeyAndWriteSecret => {
                let key = need("create a service account key")
                    .map_err(MintError::Root)?
                    .create_key(&email)
                    .await?;
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
                let gcp = need("delete unused service account keys").map_err(MintError::Root)?;
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

/// What GCP holds for one request, as far as the decision to write goes.
struct Observed {
    /// The custom role exists, is not deleted and matches (true when the request needs none).
    role_ok: bool,
    account_exists: bool,
    /// The project policy binds exactly the request's roles to the account.
    bindings_ok: bool,
    stale_role_exists: bool,
    keys: Vec<String>,
}

/// Whether a custom role as GCP returns it matches `want`.
pub fn role_matches(current: &Value, want: &CustomRole) -> bool {
    let mut have: Vec<String> = current["includedPermissions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    have.sort();
    current["deleted"] != true
        && have == want.permissions
        && current["title"] == want.title.as_str()
        && current["description"] == want.description.as_str()
}

/// Reads everything [`sync`] decides on, with `gcp` (reads only).
async fn observe(
    gcp: &Gcp,
    m: &GcpMint,
    role: Option<&CustomRole>,
    email: &str,
    member: &str,
    roles: &[String],
) -> Result<Observed, cco_gcp::GcpError> {
    let role_ok = match role {
        Some(r) => gcp
            .get_role(&r.id)
            .await?
            .is_some_and(|current| role_matches(&current, r)),
        None => true,
    };
    let stale_role_exists = match &m.stale_role_id {
        Some(id) => gcp
            .get_role(id)
            .await?
            .is_some_and(|r| r["deleted"] != true),
        None => false,
    };
    let account_exists = gcp.get_service_account(email).await?.is_some();
    let mut policy = gcp.get_policy(&PolicyTarget::Project).await?;
    let bindings_ok = !set_member_roles(&mut policy, member, roles);
    let keys = if account_exists {
        gcp.list_keys(email).await?
    } else {
        Vec::new()
    };
    Ok(Observed {
        role_ok,
        account_exists,
        bindings_ok,
        stale_role_exists,
        keys,
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
