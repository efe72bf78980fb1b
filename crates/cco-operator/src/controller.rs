//! The CredentialsRequest reconciler: observe, [`decide`], execute, record status.
//!
//! A reconcile reads the cached cluster state, makes at most two reads of its own (the target
//! namespace and Secret), asks [`decide`] what to do, performs those writes, and turns the result into
//! an [`Outcome`] whose status [`next_status`] computes. Status is written only when it changed.
//! Successful reconciles requeue after the resync period, because cloud state drifts outside
//! Kubernetes; failed writes go to [`error_policy`], which picks a backoff by error category.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cco_api::CredentialsRequest;
use cco_core::secrets::SecretData;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use rand::Rng;
use tokio::sync::{Mutex, Notify};
use tracing::{debug, info, instrument, warn};

use crate::cluster::{effective_mode, Capability, Effective, RootSecret};
use crate::conditions::{next_status, same_status, Outcome, SyncMarks};
use crate::metrics::Metrics;
use crate::plan::{
    decide, Decision, Deprovision, Failure, Inputs, Provision, TargetSecret,
    ANNOTATION_CREDENTIALS_REQUEST, FINALIZER, LABEL_CREDENTIALS_REQUEST,
};
use crate::state::ClusterState;
use crate::Settings;

/// Field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "cloud-credential-operator";
/// Controller label of the reconcile metrics.
pub const CONTROLLER: &str = "credreq";

/// A failed Kubernetes or cloud call, with what it was about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {kind} {namespace}/{name}: {source}")]
    Kube {
        op: &'static str,
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deprovisioning {what}: {message}")]
    Deprovision { what: String, message: String },
}

impl Error {
    /// The metric label of the variant and, for API errors, its HTTP code.
    pub fn label(&self) -> String {
        match self {
            Error::Kube {
                source: kube::Error::Api(e),
                op,
                ..
            } => format!("{op}:{}", e.code),
            Error::Kube { op, .. } => format!("{op}:transport"),
            Error::Deprovision { .. } => "deprovision".into(),
        }
    }
}

pub(crate) fn kube_err(
    op: &'static str,
    kind: &'static str,
    namespace: &str,
    name: &str,
) -> impl FnOnce(kube::Error) -> Error {
    let (namespace, name) = (namespace.to_string(), name.to_string());
    move |source| Error::Kube {
        op,
        kind,
        namespace,
        name,
        source,
    }
}

/// Shared state of the reconcilers.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub state: ClusterState,
    pub metrics: Arc<Metrics>,
    /// Poked after each reconcile so the ClusterOperator is recomputed.
    pub status_changed: Arc<Notify>,
    /// Minter for the current root credential (keyed by its fingerprint and region).
    pub(crate) minter: Mutex<Option<(String, cco_aws::Minter)>>,
    /// Default-mode classification of the root credential (keyed by its fingerprint).
    pub(crate) capability: Mutex<Option<(String, Capability)>>,
    /// GCP connection for the current root credential (keyed by its fingerprint, with its age).
    #[allow(clippy::type_complexity)]
    pub(crate) gcp: Mutex<Option<(String, Instant, Arc<cco_gcp::Gcp>)>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(
        client: Client,
        settings: Settings,
        state: ClusterState,
        metrics: Arc<Metrics>,
    ) -> Context {
        Context {
            client,
            settings,
            state,
            metrics,
            status_changed: Arc::new(Notify::new()),
            minter: Mutex::new(None),
            capability: Mutex::new(None),
            gcp: Mutex::new(None),
        }
    }

    /// IAM clients holding the root credential, or why there are none.
    pub(crate) async fn minter(
        &self,
        root: &RootSecret,
        region: &str,
    ) -> Result<cco_aws::Minter, String> {
        let key = format!("{}/{region}", root.fingerprint());
        let mut guard = self.minter.lock().await;
        if let Some((k, m)) = guard.as_ref() {
            if *k == key {
                return Ok(m.clone());
            }
        }
        let id = root.data.get_str(cco_core::secrets::AWS_ACCESS_KEY_ID);
        let secret = root.data.get_str(cco_core::secrets::AWS_SECRET_ACCESS_KEY);
        let (Some(id), Some(secret)) = (id, secret) else {
            return Err(format!(
                "root credential {} lacks aws_access_key_id or aws_secret_access_key",
                root.name
            ));
        };
        let m = cco_aws::Minter::connect(&cco_aws::MintConnect {
            region: region.to_string(),
            endpoint: self.settings.aws_endpoint.clone(),
            simulate_endpoint: self.settings.aws_simulate_endpoint.clone(),
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
        })
        .await;
        *guard = Some((key, m.clone()));
        Ok(m)
    }
}

/// Timestamp in the API's `date-time` format, at second precision.
pub fn now_string() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn since(ts: Option<&str>) -> Option<Duration> {
    let t: Timestamp = ts?.parse().ok()?;
    let d = Timestamp::now().duration_since(t);
    Duration::try_from(d).ok()
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::thread_rng();
    (0..5)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Reconciles one request; records its duration.
#[instrument(skip_all, fields(cr = %format!("{}/{}", cr.namespace().unwrap_or_default(), cr.name_any())))]
pub async fn reconcile(cr: Arc<CredentialsRequest>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let res = reconcile_inner(&cr, &ctx).await;
    ctx.metrics
        .observe_reconcile(CONTROLLER, start.elapsed().as_secs_f64());
    ctx.status_changed.notify_one();
    res
}

/// Backoff by error category: permissions are not fixed quickly, conflicts are.
pub fn error_policy(_cr: Arc<CredentialsRequest>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.count_error(CONTROLLER, &err.label());
    warn!(error = %err, "reconcile failed");
    let code = match err {
        Error::Kube {
            source: kube::Error::Api(e),
            ..
        } => Some(e.code),
        _ => None,
    };
    Action::requeue(match code {
        Some(409) => Duration::from_secs(1),
        Some(429) => Duration::from_secs(5),
        Some(401) | Some(403) => Duration::from_secs(300),
        _ => ctx.settings.retry,
    })
}

async fn observe_target(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(bool, Option<TargetSecret>), Error> {
    if namespace.is_empty() || name.is_empty() {
        return Ok((false, None));
    }
    let ns = Api::<Namespace>::all(client.clone())
        .get_opt(namespace)
        .await
        .map_err(kube_err("get", "Namespace", "", namespace))?;
    let exists = ns.is_some_and(|n| n.metadata.deletion_timestamp.is_none());
    if !exists {
        return Ok((false, None));
    }
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(kube_err("get", "Secret", namespace, name))?;
    Ok((
        true,
        secret.map(|s| TargetSecret {
            owner: s
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_CREDENTIALS_REQUEST).cloned()),
            data: SecretData(
                s.data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect(),
            ),
        }),
    ))
}

async fn reconcile_inner(cr: &CredentialsRequest, ctx: &Context) -> Result<Action, Error> {
    let view = ctx.state.view();
    if let Some(e) = &view.config_error {
        warn!(error = %e, "cluster configuration unusable; waiting");
        return Ok(Action::requeue(ctx.settings.retry));
    }
    let root = ctx.state.root(&view);
    let effective = effective_mode(&view, root.as_ref());
    let (tns, tname) = (
        cr.spec.secret_ref.namespace.clone(),
        cr.spec.secret_ref.name.clone(),
    );
    let quick_leave = effective == Effective::Manual
        && cr.metadata.deletion_timestamp.is_none()
        && !cr.annotations().contains_key(cco_api::ANNOTATION_DELETE);
    if quick_leave {
        return Ok(Action::await_change());
    }
    let (ns_exists, target) = observe_target(&ctx.client, &tns, &tname).await?;
    let suffix = random_suffix();
    let inputs = Inputs {
        cr,
        cluster: &view,
        effective: &effective,
        root: root.as_ref(),
        target_namespace_exists: ns_exists,
        target: target.as_ref(),
        since_last_sync: since(
            cr.status
                .as_ref()
                .and_then(|s| s.last_sync_timestamp.as_deref()),
        ),
        sync_period: ctx.settings.sync_period,
        random_suffix: &suffix,
    };
    let decision = decide(&inputs);
    debug!(?decision, mode = ?effective, "decided");
    let crs: Api<CredentialsRequest> =
        Api::namespaced(ctx.client.clone(), &cr.namespace().unwrap_or_default());
    let name = cr.name_any();
    let cr_ns = cr.namespace().unwrap_or_default();

    let mut marks = SyncMarks {
        generation: cr.metadata.generation.unwrap_or(0),
        root_resource_version: root.as_ref().map(|r| r.resource_version.clone()),
        provider_status: None,
    };
    let outcome = match decision {
        Decision::LeaveAlone => return Ok(Action::await_change()),
        Decision::UpToDate => return Ok(Action::requeue(ctx.settings.resync)),
        Decision::MarkStale => Outcome::Stale,
        Decision::DeleteStale => {
            info!("deleting request marked for removal from the release payload");
            match crs.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(kube_err("delete", "CredentialsRequest", &cr_ns, &name)(e)),
            }
            return Ok(Action::await_change());
        }
        Decision::Finalize {
            deprovision,
            delete_secret,
        } => {
            if let Some(d) = deprovision {
                if let Err(e) = crate::mint_exec::deprovision(ctx, &view, root.as_ref(), &d).await {
                    let outcome = Outcome::DeprovisionFailed {
                        message: e.to_string(),
                    };
                    write_status(ctx, &crs, cr, &outcome, &marks).await?;
                    return Err(e);
                }
                match &d {
                    Deprovision::AwsUser { user } => info!(user = %user, "deprovisioned IAM user"),
                    Deprovision::GcpServiceAccount { account_id, .. } => {
                        info!(account = %account_id, "deprovisioned GCP service account")
                    }
                }
            }
            if delete_secret {
                match Api::<Secret>::namespaced(ctx.client.clone(), &tns)
                    .delete(&tname, &DeleteParams::default())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(kube_err("delete", "Secret", &tns, &tname)(e)),
                }
                info!(secret = %format!("{tns}/{tname}"), "deleted target secret");
            }
            remove_finalizer(&crs, cr).await?;
            return Ok(Action::await_change());
        }
        Decision::Ignore { platform } => Outcome::Ignored { platform },
        Decision::WaitForNamespace { add_finalizer } => {
            if add_finalizer {
                add_finalizer_to(&crs, cr).await?;
            }
            info!(namespace = %tns, "target namespace missing; waiting for it");
            Outcome::MissingNamespace {
                namespace: tns.clone(),
            }
        }
        Decision::Provision { add_finalizer, how } => {
            if add_finalizer {
                add_finalizer_to(&crs, cr).await?;
            }
            match how {
                Provision::Write(data) => {
                    apply_secret(&ctx.client, cr, &data, BTreeMap::new()).await?;
                    info!(secret = %format!("{tns}/{tname}"), keys = ?data, "wrote target secret");
                    Outcome::Provisioned { orphaned: None }
                }
                Provision::KeepMinted => Outcome::Provisioned { orphaned: None },
                Provision::MintAws(m) => {
                    let Some(root) = root.as_ref() else {
                        return Ok(Action::requeue(ctx.settings.retry));
                    };
                    match crate::mint_exec::sync(ctx, cr, &m, root, target.as_ref()).await {
                        Ok(r) => {
                            marks.provider_status = Some(r.provider_status);
                            Outcome::Provisioned {
                                orphaned: r.orphaned,
                            }
                        }
                        Err(crate::mint_exec::MintError::Kube(e)) => return Err(e),
                        Err(e) => Outcome::ProvisionFailed {
                            message: e.to_string(),
                        },
                    }
                }
                Provision::MintGcp(m) => {
                    let Some(root) = root.as_ref() else {
                        return Ok(Action::requeue(ctx.settings.retry));
                    };
                    match crate::mint_gcp::sync(ctx, cr, &m, root, target.as_ref()).await {
                        Ok(r) => {
                            marks.provider_status = Some(r.provider_status);
                            Outcome::Provisioned {
                                orphaned: r.orphaned,
                            }
                        }
                        Err(crate::mint_exec::MintError::Kube(e)) => return Err(e),
                        Err(e) => Outcome::ProvisionFailed {
                            message: e.to_string(),
                        },
                    }
                }
                Provision::Fail(Failure::Provision(message)) => {
                    Outcome::ProvisionFailed { message }
                }
                Provision::Fail(Failure::Insufficient(message)) => {
                    Outcome::Insufficient { message }
                }
            }
        }
    };
    let failed = matches!(
        outcome,
        Outcome::ProvisionFailed { .. } | Outcome::Insufficient { .. }
    );
    if failed {
        warn!(?outcome, "could not provision credentials");
    }
    write_status(ctx, &crs, cr, &outcome, &marks).await?;
    Ok(match outcome {
        Outcome::ProvisionFailed { .. } | Outcome::Insufficient { .. } => {
            Action::requeue(ctx.settings.retry)
        }
        Outcome::MissingNamespace { .. } => Action::requeue(ctx.settings.resync),
        Outcome::Ignored { .. } | Outcome::Stale => Action::await_change(),
        _ => Action::requeue(ctx.settings.resync),
    })
}

async fn write_status(
    ctx: &Context,
    crs: &Api<CredentialsRequest>,
    cr: &CredentialsRequest,
    outcome: &Outcome,
    marks: &SyncMarks,
) -> Result<(), Error> {
    let current = cr.status.clone().unwrap_or_default();
    let next = next_status(
        &current,
        outcome,
        &cr.spec.secret_ref.namespace,
        marks,
        &now_string(),
    );
    if same_status(&current, &next) && cr.status.is_some() {
        return Ok(());
    }
    let patch = serde_json::json!({ "status": next });
    crs.patch_status(
        &cr.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(kube_err(
        "patch status of",
        "CredentialsRequest",
        &cr.namespace().unwrap_or_default(),
        &cr.name_any(),
    ))?;
    let _ = ctx;
    Ok(())
}

async fn set_finalizers(
    api: &Api<CredentialsRequest>,
    cr: &CredentialsRequest,
    finalizers: Vec<String>,
    op: &'static str,
) -> Result<(), Error> {
    // The resourceVersion makes this a compare-and-swap: a concurrent change yields 409 and a retry.
    let patch = serde_json::json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": cr.resource_version(),
    }});
    match api
        .patch(
            &cr.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 && op == "remove finalizer from" => Ok(()),
        Err(e) => Err(kube_err(
            op,
            "CredentialsRequest",
            &cr.namespace().unwrap_or_default(),
            &cr.name_any(),
        )(e)),
    }
}

async fn add_finalizer_to(
    api: &Api<CredentialsRequest>,
    cr: &CredentialsRequest,
) -> Result<(), Error> {
    let mut f = cr.finalizers().to_vec();
    f.push(FINALIZER.to_string());
    set_finalizers(api, cr, f, "add finalizer to").await
}

async fn remove_finalizer(
    api: &Api<CredentialsRequest>,
    cr: &CredentialsRequest,
) -> Result<(), Error> {
    if !cr.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    let f = cr
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    set_finalizers(api, cr, f, "remove finalizer from").await
}

/// Server-side applies the target Secret with `data`, our label and owner annotation.
pub(crate) async fn apply_secret(
    client: &Client,
    cr: &CredentialsRequest,
    data: &SecretData,
    extra_annotations: BTreeMap<String, String>,
) -> Result<(), Error> {
    let (ns, name) = (&cr.spec.secret_ref.namespace, &cr.spec.secret_ref.name);
    let mut annotations = extra_annotations;
    annotations.insert(
        ANNOTATION_CREDENTIALS_REQUEST.to_string(),
        format!("{}/{}", cr.namespace().unwrap_or_default(), cr.name_any()),
    );
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            labels: Some(BTreeMap::from([(
                LABEL_CREDENTIALS_REQUEST.to_string(),
                "true".to_string(),
            )])),
            annotations: Some(annotations),
            ..Default::default()
        },
        data: Some(
            data.0
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                .collect(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
        .map_err(kube_err("apply", "Secret", ns, name))?;
    Ok(())
}
