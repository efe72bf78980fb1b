//! Executes AWS mint plans through [`cco_aws::Minter`], and default-mode detection.
//!
//! [`sync`] observes IAM and the target Secret, asks [`plan_mint`] for steps, performs them and
//! repeats (a new user must exist before its policy can name its ARN) until the plan is empty. A
//! generated user name is recorded in `status.providerStatus` *before* the user is created, so a
//! crash can never leave an IAM user the operator does not know about. [`deprovision`] deletes the
//! user with its keys and policy. [`detect_capability`] runs `iam:SimulatePrincipalPolicy`.

use std::collections::{BTreeMap, BTreeSet};

use cco_api::{Cloud, CredentialsRequest, ProviderSpec};
use cco_aws::AwsError;
use cco_core::secrets;
use kube::api::Api;
use kube::ResourceExt;
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::cluster::{classify, Capability, ClusterView, RootSecret, AWS_MINT_ACTIONS};
use crate::controller::{
    apply_secret, kube_err, patch_status_of, read_target_data, Context, Error,
};
use crate::mint_plan::{plan_mint, MintObserved, MintStep};
use crate::plan::{AwsMint, Deprovision, ANNOTATION_AWS_POLICY};

/// Why minting failed.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("{0}")]
    Gcp(#[from] cco_gcp::GcpError),
    #[error("{0}")]
    Root(String),
    #[error("IAM user {user} did not converge after {rounds} rounds")]
    NoConvergence { user: String, rounds: usize },
    #[error(transparent)]
    Kube(Error),
}

/// What a successful sync records.
#[derive(Debug)]
pub struct MintResult {
    pub provider_status: Value,
    pub orphaned: Option<String>,
}

fn provider_status(m: &AwsMint) -> Value {
    json!({
        "apiVersion": cco_api::API_VERSION,
        "kind": "AWSProviderStatus",
        "user": m.user,
        "policy": m.policy_name,
        "rootCredentialFingerprint": m.root_fingerprint,
    })
}

/// Brings the request's IAM user and target Secret to the desired state. `cr` is replaced by the
/// result of any status write.
pub async fn sync(
    ctx: &Context,
    cr: &mut CredentialsRequest,
    m: &AwsMint,
    root: Option<&RootSecret>,
) -> Result<MintResult, MintError> {
    if m.user_is_new {
        // Record the name first: an IAM user is never created without the request knowing it. The
        // write is conditional on the version the name was chosen from, so two reconciles can never
        // both choose (one of them gets a conflict and starts over from the recorded name).
        let mut ps = provider_status(m);
        if let Some(o) = ps.as_object_mut() {
            o.remove("rootCredentialFingerprint");
        }
        let api = Api::<CredentialsRequest>::namespaced(
            ctx.client.clone(),
            &cr.namespace().unwrap_or_default(),
        );
        patch_status_of(
            ctx,
            &api,
            cr,
            json!({"providerStatus": ps}),
            "record IAM user name in",
        )
        .await
        .map_err(MintError::Kube)?;
        info!(user = %m.user, "chose IAM user name");
    }
    let target = read_target_data(ctx, cr).await.map_err(MintError::Kube)?;
    // Writes need the root credential; reads use the read-only one when it exists.
    let writer = match root {
        Some(r) => Some(ctx.minter(r, &m.region).await.map_err(MintError::Root)?),
        None => None,
    };
    let mut reader = match ctx.readonly.aws() {
        Some(ro) => Reader::ReadOnly(ctx.minter(&ro, &m.region).await.map_err(MintError::Root)?),
        None => match &writer {
            Some(w) => Reader::Root(w.clone()),
            None => return Err(MintError::Root(no_root_message(ctx, "read the IAM user"))),
        },
    };
    let (mut secret_key_id, mut secret_complete) = MintObserved::secret_fields(target.as_ref());
    // The request may come from a cache that has not seen the status our last sync wrote: before
    // rotating, make sure the key was not already made under this root credential (otherwise two
    // reconciles in a row would rotate twice).
    let mut rotate = m.rotate;
    if rotate {
        let (_, _, fingerprint) = crate::plan::aws_provider_status(&fresh_request(ctx, cr).await?);
        rotate = fingerprint.as_deref() != Some(m.root_fingerprint.as_str());
    }
    let mut orphaned = None;
    const ROUNDS: usize = 4;
    for _ in 0..ROUNDS {
        let (user, policy, keys) = match observe(reader.iam(), m).await {
            // A new read-only key takes a while to work in IAM: fall back to the root credential.
            Err(e) if matches!(reader, Reader::ReadOnly(_)) && rejected(&e) && writer.is_some() => {
                warn!(error = %e, "read-only credential rejected; reading with the root credential");
                reader = Reader::Root(writer.clone().ok_or(e)?);
                observe(reader.iam(), m).await?
            }
            r => r?,
        };
        let obs = MintObserved {
            user,
            policy,
            keys,
            secret_key_id: secret_key_id.clone(),
            secret_complete,
        };
        let req = AwsMint {
            rotate,
            ..m.clone()
        };
        let steps = plan_mint(&req, &obs);
        if steps.is_empty() {
            return Ok(MintResult {
                provider_status: provider_status(m),
                orphaned,
            });
        }
        let Some(iam) = writer.as_ref() else {
            let what: Vec<&str> = steps.iter().map(MintStep::describe).collect();
            return Err(MintError::Root(no_root_message(ctx, &what.join(", "))));
        };
        let mut after_new_key = false;
        for step in steps {
            match step {
                MintStep::CreateUser { tags } => {
                    iam.create_user(&m.user, &tags).await?;
                    info!(user = %m.user, "created IAM user");
                }
                MintStep::TagUser { tags } => iam.tag_user(&m.user, &tags).await?,
                MintStep::PutPolicy { document } => {
                    iam.put_user_policy(&m.user, &m.policy_name, &document)
                        .await?;
                    info!(user = %m.user, policy = %m.policy_name, "set IAM user policy");
                }
                MintStep::CreateKeyAndWriteSecret => {
                    let key = iam.create_access_key(&m.user).await?;
                    let policy = reader
                        .iam()
                        .get_user_policy(&m.user, &m.policy_name)
                        .await?
                        .unwrap_or_default();
                    let data = secrets::aws_access_key_data(&key.id, &key.secret);
                    let ann = BTreeMap::from([(ANNOTATION_AWS_POLICY.to_string(), policy)]);
                    apply_secret(ctx, cr, &data, ann)
                        .await
                        .map_err(MintError::Kube)?;
                    info!(user = %m.user, access_key_id = %key.id, "wrote new access key to target secret");
                    secret_key_id = Some(key.id);
                    secret_complete = true;
                    rotate = false;
                    after_new_key = true;
                }
                MintStep::DeleteKeys { ids } => {
                    for id in ids {
                        match iam.delete_access_key(&m.user, &id).await {
                            Ok(()) => {
                                info!(user = %m.user, access_key_id = %id, "deleted access key")
                            }
                            // The new key is already in place: report, do not fail.
                            Err(e) if after_new_key => {
                                orphaned =
                                    Some(format!("access key {id} of IAM user {}: {e}", m.user));
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
    }
    Err(MintError::NoConvergence {
        user: m.user.clone(),
        rounds: ROUNDS,
    })
}

/// The credential IAM is read with.
enum Reader {
    ReadOnly(cco_aws::Minter),
    Root(cco_aws::Minter),
}

impl Reader {
    fn iam(&self) -> &cco_aws::Minter {
        match self {
            Reader::ReadOnly(m) | Reader::Root(m) => m,
        }
    }
}

/// The user, its inline policy and its access keys.
async fn observe(
    iam: &cco_aws::Minter,
    m: &AwsMint,
) -> Result<(Option<cco_aws::IamUser>, Option<String>, Vec<String>), AwsError> {
    let user = iam.get_user(&m.user).await?;
    if user.is_none() {
        return Ok((None, None, Vec::new()));
    }
    let policy = iam.get_user_policy(&m.user, &m.policy_name).await?;
    let keys = iam.list_access_keys(&m.user).await?;
    Ok((user, policy, keys))
}

/// IAM refused the credential itself (not a missing permission on one resource).
fn rejected(e: &AwsError) -> bool {
    matches!(e, AwsError::Credentials { .. })
        || matches!(
            e.code(),
            Some(
                "InvalidClientTokenId"
                    | "SignatureDoesNotMatch"
                    | "AccessDenied"
                    | "UnrecognizedClientException"
            )
        )
}

/// The request as the API server has it now (the cache may not show the status our last sync wrote).
pub(crate) async fn fresh_request(
    ctx: &Context,
    cr: &CredentialsRequest,
) -> Result<CredentialsRequest, MintError> {
    let (ns, name) = (cr.namespace().unwrap_or_default(), cr.name_any());
    Api::<CredentialsRequest>::namespaced(ctx.client.clone(), &ns)
        .get(&name)
        .await
        .map_err(|e| MintError::Kube(kube_err("get", "CredentialsRequest", &ns, &name)(e)))
}

/// Why a change cannot be made with the root credential removed.
pub(crate) fn no_root_message(ctx: &Context, what: &str) -> String {
    let view = ctx.state.view();
    format!(
        "cannot {what}: the root credential {}/{} was removed (minted credentials are only checked with the read-only credential); restore it to make changes",
        crate::cluster::ROOT_SECRET_NAMESPACE,
        view.root_secret_name().unwrap_or("<none>")
    )
}

/// Deletes the cloud identity of a request being deleted.
pub async fn deprovision(
    ctx: &Context,
    view: &ClusterView,
    root: Option<&RootSecret>,
    d: &Deprovision,
) -> Result<(), Error> {
    let user = match d {
        Deprovision::AwsUser { user } => user,
        Deprovision::GcpServiceAccount { .. } => {
            return crate::mint_gcp::deprovision(ctx, view, root, d).await
        }
    };
    let fail = |message: String| Error::Deprovision {
        what: format!("IAM user {user}"),
        message,
    };
    let Some(root) = root else {
        return Err(fail(format!(
            "root credential {}/{} not found; restore it to clean up",
            crate::cluster::ROOT_SECRET_NAMESPACE,
            view.root_secret_name().unwrap_or("aws-creds")
        )));
    };
    let iam = ctx.minter(root, &view.region()).await.map_err(fail)?;
    iam.delete_user(user)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// Default-mode detection on AWS: can the root credential mint, or at least serve every request?
pub async fn detect_capability(
    ctx: &Context,
    view: &ClusterView,
    root: &RootSecret,
    requests: &[std::sync::Arc<CredentialsRequest>],
) -> Result<Capability, String> {
    let iam = ctx.minter(root, &view.region()).await?;
    let arn = iam.caller_arn().await.map_err(|e| e.to_string())?;
    let mint_actions: Vec<String> = AWS_MINT_ACTIONS.iter().map(|s| s.to_string()).collect();
    let mint = iam
        .simulate(&arn, &mint_actions)
        .await
        .map_err(|e| e.to_string())?;
    if classify(&mint, &[]) == Capability::CanMint {
        return Ok(Capability::CanMint);
    }
    let needed: BTreeSet<String> = requests
        .iter()
        .filter_map(|cr| match cr.spec.provider() {
            Ok(ProviderSpec::Aws(a)) => Some(a.statement_entries),
            _ => None,
        })
        .flatten()
        .filter(|e| e.effect == "Allow")
        .flat_map(|e| e.action)
        .collect();
    let needed: Vec<String> = needed.into_iter().collect();
    let pass = if needed.is_empty() {
        Vec::new()
    } else {
        let mut out = Vec::new();
        // SimulatePrincipalPolicy takes at most 128 actions per call.
        for chunk in needed.chunks(100) {
            out.extend(iam.simulate(&arn, chunk).await.map_err(|e| e.to_string())?);
        }
        out
    };
    let _ = Cloud::Aws;
    Ok(classify(&mint, &pass))
}
