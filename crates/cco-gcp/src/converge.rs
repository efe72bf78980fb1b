//! `create-*`, `plan` and `verify` in three moves: [`observe`] reads what exists (read-only calls
//! only: gets, lists, `getIamPolicy`), `cco_core::gcp::plan_changes` turns it and the requests into
//! steps, and [`execute`] carries out exactly those steps, each with the one write it names.
//!
//! Execution order follows the dependencies: the pool and the issuer one step at a time, then the
//! custom roles, the new service accounts, the trust of each service account (per account, so new
//! accounts become visible to IAM concurrently), one read-modify-write of the project policy for
//! every member, and last the retired accounts. Steps of one phase run
//! concurrently; a phase with a failure stops the run (later phases depend on it), and a re-run
//! plans only what is still missing.

use std::collections::{BTreeMap, BTreeSet};

use cco_core::gcp::{
    bucket_name, service_account_member, AccountRef, GcpDesired, GcpObserved, GcpStep, KeyStorage,
    ObservedAccount, ObservedBucket, ObservedPool, ObservedProvider, ObservedRole, CREATED_BY,
    OBJECT_VIEWER, WORKLOAD_IDENTITY_USER,
};
use cco_core::oidc::{DISCOVERY_PATH, KEYS_PATH};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};

use crate::{enc, set_member_roles, set_role_members, Gcp, GcpError, PolicyTarget};

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    out.sort();
    out
}

fn unconditional_bindings(policy: &Value) -> impl Iterator<Item = &Value> {
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b.get("condition").is_none_or(Value::is_null))
}

/// Members of `role` in `policy` (unconditional bindings), sorted.
pub fn role_members(policy: &Value, role: &str) -> Vec<String> {
    let mut out: Vec<String> = unconditional_bindings(policy)
        .filter(|b| b["role"] == role)
        .flat_map(|b| strings(&b["members"]))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn to_pool(v: &Value) -> ObservedPool {
    ObservedPool {
        deleted: v["state"] == "DELETED",
        disabled: v["disabled"] == true,
        description: v["description"].as_str().unwrap_or("").to_string(),
    }
}

fn to_provider(v: &Value) -> ObservedProvider {
    ObservedProvider {
        deleted: v["state"] == "DELETED",
        disabled: v["disabled"] == true,
        issuer: v["oidc"]["issuerUri"].as_str().unwrap_or("").to_string(),
        audiences: v["oidc"]["allowedAudiences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        attribute_mapping: v["attributeMapping"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect(),
        jwks_json: v["oidc"]["jwksJson"].as_str().unwrap_or("").to_string(),
    }
}

fn to_role(v: &Value) -> ObservedRole {
    ObservedRole {
        deleted: v["deleted"] == true,
        title: v["title"].as_str().unwrap_or("").to_string(),
        description: v["description"].as_str().unwrap_or("").to_string(),
        permissions: strings(&v["includedPermissions"]),
    }
}

/// `<name≤50>-`: the display-name prefix of the service accounts made for `name`.
fn display_prefix(name: &str) -> String {
    let mut end = name.len().min(50);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}-", &name[..end])
}

/// Reads everything `d` concerns, without changing anything.
pub async fn observe(
    gcp: &Gcp,
    project_number: &str,
    d: &GcpDesired<'_>,
) -> Result<GcpObserved, GcpError> {
    let mut o = GcpObserved {
        project_number: project_number.to_string(),
        ..Default::default()
    };
    if d.scope.pool || d.scope.issuer {
        o.pool = gcp.get_pool(d.pool).await?.as_ref().map(to_pool);
    }
    if d.scope.issuer {
        o.provider = gcp
            .get_provider(d.pool, d.provider)
            .await?
            .as_ref()
            .map(to_provider);
        if d.storage == KeyStorage::PublicBucket {
            o.bucket = observe_bucket(gcp, &bucket_name(d.name)).await?;
        }
    }
    if !d.scope.accounts {
        return Ok(o);
    }
    for p in d.plans {
        if let Some(r) = &p.custom_role {
            if let Some(v) = gcp.get_role(&r.id).await? {
                o.roles.insert(r.id.clone(), to_role(&v));
            }
        }
    }
    let wanted: BTreeSet<&str> = d.plans.iter().map(|p| p.display_name.as_str()).collect();
    let prefix = display_prefix(d.name);
    let candidates: Vec<Value> = gcp
        .list_service_accounts()
        .await?
        .into_iter()
        .filter(|a| {
            let display = a["displayName"].as_str().unwrap_or("");
            wanted.contains(display)
                || (display.starts_with(&prefix)
                    && a["description"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with(CREATED_BY))
        })
        .collect();
    let accounts: Vec<Result<ObservedAccount, GcpError>> = futures::stream::iter(candidates)
        .map(|a| async move {
            let email = a["email"].as_str().unwrap_or("").to_string();
            let policy = gcp
                .get_policy(&PolicyTarget::ServiceAccount(email.clone()))
                .await?;
            Ok(ObservedAccount {
                trust: role_members(&policy, WORKLOAD_IDENTITY_USER),
                display_name: a["displayName"].as_str().unwrap_or("").to_string(),
                description: a["description"].as_str().unwrap_or("").to_string(),
                email,
            })
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for a in accounts {
        o.accounts.push(a?);
    }
    o.accounts.sort_by(|a, b| a.email.cmp(&b.email));
    let policy = gcp.get_policy(&PolicyTarget::Project).await?;
    let mut roles: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for b in unconditional_bindings(&policy) {
        let role = b["role"].as_str().unwrap_or("");
        for m in strings(&b["members"]) {
            if m.starts_with("serviceAccount:") {
                roles.entry(m).or_default().insert(role.to_string());
            }
        }
    }
    o.project_roles = roles;
    Ok(o)
}

/// The issuer bucket: whether `allUsers` may read it, and its two documents.
pub async fn observe_bucket(gcp: &Gcp, bucket: &str) -> Result<Option<ObservedBucket>, GcpError> {
    if gcp.get_bucket(bucket).await?.is_none() {
        return Ok(None);
    }
    let policy = gcp
        .get_policy(&PolicyTarget::Bucket(bucket.to_string()))
        .await?;
    Ok(Some(ObservedBucket {
        public: role_members(&policy, OBJECT_VIEWER)
            .iter()
            .any(|m| m == "allUsers"),
        discovery: gcp.get_object(bucket, DISCOVERY_PATH).await?,
        jwks: gcp.get_object(bucket, KEYS_PATH).await?,
    }))
}

/// What [`execute`] did: the email of every plan's service account (known for all when it
/// succeeds), and a line per step done.
#[derive(Clone, Debug, Default)]
pub struct Executed {
    pub emails: Vec<Option<String>>,
    pub done: Vec<String>,
}

/// Steps that failed, each with its error; the others are done.
#[derive(Debug, thiserror::Error)]
#[error("{} of {total} steps failed:\n  {}\nThe others are done; re-run the same command to finish (it plans only what is still missing).", failures.len(), failures.join("\n  "))]
pub struct ExecuteError {
    pub total: usize,
    pub failures: Vec<String>,
    pub executed: Executed,
}

/// A step's outcome: for a created service account, its plan index and email.
type StepResult = Result<Option<(usize, String)>, GcpError>;

fn phase(step: &GcpStep) -> u8 {
    match step {
        GcpStep::CreateRole(_) | GcpStep::UndeleteRole(_) | GcpStep::UpdateRole { .. } => 1,
        GcpStep::CreateAccount(_) => 2,
        GcpStep::Trust { .. } => 3,
        GcpStep::ProjectRoles(_) => 4,
        GcpStep::DeleteAccount { .. } => 5,
        _ => 0,
    }
}

/// Carries out `steps` (from `plan_changes` over `d` and `o`), phase by phase.
pub async fn execute(
    gcp: &Gcp,
    d: &GcpDesired<'_>,
    o: &GcpObserved,
    steps: &[GcpStep],
    concurrency: usize,
) -> Result<Executed, ExecuteError> {
    let project_number = o.project_number.as_str();
    let mut ex = Executed {
        emails: cco_core::gcp::account_emails(d, o),
        done: Vec::new(),
    };
    let total = steps.len();
    let mut failures = Vec::new();
    for ph in 0..=5u8 {
        let this: Vec<&GcpStep> = steps.iter().filter(|s| phase(s) == ph).collect();
        if this.is_empty() {
            continue;
        }
        let width = if ph == 0 { 1 } else { concurrency.max(1) };
        let emails = ex.emails.clone();
        let results: Vec<(String, StepResult)> = futures::stream::iter(this)
            .map(|s| {
                let emails = &emails;
                async move {
                    (
                        describe(d, s),
                        run_step(gcp, project_number, d, s, emails).await,
                    )
                }
            })
            .buffered(width)
            .collect()
            .await;
        for (what, r) in results {
            match r {
                Ok(created) => {
                    if let Some((i, email)) = created {
                        ex.emails[i] = Some(email);
                    }
                    tracing::debug!(step = %what, "done");
                    ex.done.push(what);
                }
                Err(e) => failures.push(format!("{what}: {e}")),
            }
        }
        if !failures.is_empty() {
            return Err(ExecuteError {
                total,
                failures,
                executed: ex,
            });
        }
    }
    Ok(ex)
}

/// One line naming a step, for progress and errors.
pub fn describe(d: &GcpDesired<'_>, s: &GcpStep) -> String {
    let display = |i: &usize| {
        d.plans
            .get(*i)
            .map(|p| p.display_name.clone())
            .unwrap_or_default()
    };
    match s {
        GcpStep::CreatePool => format!("create workload identity pool {}", d.pool),
        GcpStep::UndeletePool => format!("restore workload identity pool {}", d.pool),
        GcpStep::CreateBucket => format!("create bucket {}", bucket_name(d.name)),
        GcpStep::MakeBucketPublic => {
            format!("let allUsers read bucket {}", bucket_name(d.name))
        }
        GcpStep::PutObject { path, .. } => {
            format!("upload gs://{}/{path}", bucket_name(d.name))
        }
        GcpStep::CreateProvider { .. } => {
            format!("create workload identity provider {}", d.provider)
        }
        GcpStep::UndeleteProvider | GcpStep::RestoreProvider { .. } => {
            format!("restore workload identity provider {}", d.provider)
        }
        GcpStep::PatchProvider { mask, .. } => format!(
            "update workload identity provider {} ({})",
            d.provider,
            mask.join(", ")
        ),
        GcpStep::CreateRole(r) => format!("create custom role {}", r.id),
        GcpStep::UndeleteRole(id) => format!("restore custom role {id}"),
        GcpStep::UpdateRole { role, .. } => format!("update custom role {}", role.id),
        GcpStep::CreateAccount(i) => format!("create service account {}", display(i)),
        GcpStep::ProjectRoles(m) => {
            format!("set the project roles of {} service accounts", m.len())
        }
        GcpStep::Trust { plan, .. } => {
            format!("set who may impersonate service account {}", display(plan))
        }
        GcpStep::DeleteAccount { email, .. } => format!("delete service account {email}"),
    }
}

async fn run_step(
    gcp: &Gcp,
    project_number: &str,
    d: &GcpDesired<'_>,
    s: &GcpStep,
    emails: &[Option<String>],
) -> StepResult {
    let pools = format!(
        "{}/v1/projects/{}/locations/global/workloadIdentityPools",
        gcp.endpoints.iam,
        enc(&gcp.project)
    );
    let pool_res = cco_core::gcp::pool_resource(&gcp.project, d.pool);
    let prov_res = format!("{pool_res}/providers/{}", d.provider);
    let providers = format!("{pools}/{}/providers", enc(d.pool));
    let bucket = bucket_name(d.name);
    match s {
        GcpStep::CreatePool => {
            let url = format!("{pools}?workloadIdentityPoolId={}", enc(d.pool));
            let body = json!({"displayName": d.pool, "description": CREATED_BY, "disabled": false});
            let op = gcp
                .call(
                    "iam.workloadIdentityPools.create",
                    &pool_res,
                    Method::POST,
                    &url,
                    Some(&body),
                )
                .await?;
            gcp.wait("iam.workloadIdentityPools.create", &pool_res, op)
                .await?;
        }
        GcpStep::UndeletePool => {
            let url = format!("{pools}/{}:undelete", enc(d.pool));
            let op = gcp
                .call(
                    "iam.workloadIdentityPools.undelete",
                    &pool_res,
                    Method::POST,
                    &url,
                    Some(&json!({})),
                )
                .await?;
            gcp.wait("iam.workloadIdentityPools.undelete", &pool_res, op)
                .await?;
        }
        GcpStep::CreateBucket => gcp.create_bucket(&bucket, d.region).await?,
        GcpStep::MakeBucketPublic => {
            gcp.modify_policy(&PolicyTarget::Bucket(bucket.clone()), |p| {
                set_role_members(p, OBJECT_VIEWER, "allUsers", &["allUsers".into()])
            })
            .await?;
        }
        GcpStep::PutObject { path, content, .. } => {
            gcp.put_object(
                &bucket,
                path,
                content.as_bytes(),
                crate::ISSUER_DOCUMENT_CONTENT_TYPE,
            )
            .await?;
        }
        GcpStep::CreateProvider { body } => {
            let url = format!(
                "{providers}?workloadIdentityPoolProviderId={}",
                enc(d.provider)
            );
            let op = gcp
                .call(
                    "iam.workloadIdentityPoolProviders.create",
                    &prov_res,
                    Method::POST,
                    &url,
                    Some(body),
                )
                .await?;
            gcp.wait("iam.workloadIdentityPoolProviders.create", &prov_res, op)
                .await?;
        }
        GcpStep::RestoreProvider { body } => {
            let exists = gcp.get_provider(d.pool, d.provider).await?;
            let (method, url, op_name) = match exists {
                Some(_) => (
                    Method::PATCH,
                    format!(
                        "{providers}/{}?updateMask=displayName,description,disabled,attributeMapping,oidc.issuerUri,oidc.allowedAudiences,oidc.jwksJson",
                        enc(d.provider)
                    ),
                    "iam.workloadIdentityPoolProviders.patch",
                ),
                None => (
                    Method::POST,
                    format!("{providers}?workloadIdentityPoolProviderId={}", enc(d.provider)),
                    "iam.workloadIdentityPoolProviders.create",
                ),
            };
            let mut body = body.clone();
            if method == Method::PATCH && body["oidc"].get("jwksJson").is_none() {
                // Keys read from the issuer: clear any embedded ones.
                body["oidc"]["jwksJson"] = Value::String(String::new());
            }
            let op = gcp
                .call(op_name, &prov_res, method, &url, Some(&body))
                .await?;
            gcp.wait(op_name, &prov_res, op).await?;
        }
        GcpStep::UndeleteProvider => {
            let url = format!("{providers}/{}:undelete", enc(d.provider));
            let op = gcp
                .call(
                    "iam.workloadIdentityPoolProviders.undelete",
                    &prov_res,
                    Method::POST,
                    &url,
                    Some(&json!({})),
                )
                .await?;
            gcp.wait("iam.workloadIdentityPoolProviders.undelete", &prov_res, op)
                .await?;
        }
        GcpStep::PatchProvider { mask, body, .. } => {
            let url = format!(
                "{providers}/{}?updateMask={}",
                enc(d.provider),
                mask.join(",")
            );
            let op = gcp
                .call(
                    "iam.workloadIdentityPoolProviders.patch",
                    &prov_res,
                    Method::PATCH,
                    &url,
                    Some(body),
                )
                .await?;
            gcp.wait("iam.workloadIdentityPoolProviders.patch", &prov_res, op)
                .await?;
        }
        GcpStep::CreateRole(r) => gcp.create_role(r).await?,
        GcpStep::UndeleteRole(id) => {
            gcp.undelete_role(id).await?;
        }
        GcpStep::UpdateRole { role, .. } => gcp.update_role(role).await?,
        GcpStep::CreateAccount(i) => {
            let plan = d
                .plans
                .get(*i)
                .ok_or_else(|| GcpError::Local(format!("no plan {i}")))?;
            let sa = gcp.create_service_account(d.name, plan).await?;
            let email = sa["email"]
                .as_str()
                .ok_or_else(|| GcpError::Unexpected("service account without email".into()))?;
            return Ok(Some((*i, email.to_string())));
        }
        GcpStep::ProjectRoles(members) => {
            let mut wanted = Vec::new();
            for m in members {
                let email = match (&m.account, &m.email) {
                    (_, Some(e)) => e.clone(),
                    (AccountRef::Plan(i), None) => {
                        emails.get(*i).cloned().flatten().ok_or_else(|| {
                            GcpError::Local(format!("service account of plan {i} was not created"))
                        })?
                    }
                    (AccountRef::Retired(e), None) => e.clone(),
                };
                wanted.push((service_account_member(&email), m.roles.clone()));
            }
            gcp.modify_policy(&PolicyTarget::Project, |p| {
                let mut changed = false;
                for (member, roles) in &wanted {
                    changed |= set_member_roles(p, member, roles);
                }
                changed
            })
            .await?;
        }
        GcpStep::Trust {
            plan,
            email,
            principals,
            ..
        } => {
            let email = email
                .clone()
                .or_else(|| emails.get(*plan).cloned().flatten())
                .ok_or_else(|| {
                    GcpError::Local(format!("service account of plan {plan} was not created"))
                })?;
            let prefix = d.principal_prefix(project_number);
            gcp.modify_policy(&PolicyTarget::ServiceAccount(email), |p| {
                set_role_members(p, WORKLOAD_IDENTITY_USER, &prefix, principals)
            })
            .await?;
        }
        GcpStep::DeleteAccount { email, .. } => gcp.delete_service_account(email).await?,
    }
    Ok(None)
}
