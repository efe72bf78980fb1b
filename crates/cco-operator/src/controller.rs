//! The CredentialsRequest reconciler: observe, [`decide`], execute, record status.
//!
//! A reconcile works on the freshest version of the request this process knows
//! ([`OwnWrites::freshest`]), reads the cached cluster state and target caches ([`Targets`]; the
//! API server only for a Secret they cannot know), asks [`decide`] what to do, performs those writes,
//! and turns the result into an [`Outcome`] whose status [`next_status`] computes. Status is written
//! only when it changed, and only onto the version it was computed from (resourceVersion
//! precondition). A new request therefore costs three requests in token and Passthrough mode:
//! finalizer, Secret, status; the reconciles its own writes trigger find it up to date.
//! Successful reconciles requeue after the resync period, because cloud state drifts outside
//! Kubernetes; failed writes go to [`error_policy`], which picks a backoff by error category.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cco_api::CredentialsRequest;
use cco_core::secrets::SecretData;
use k8s_openapi::api::core::v1::Secret;
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
use crate::readonly::ReadOnly;
use crate::state::ClusterState;
use crate::targets::{OwnWrites, SecretMeta, Targets};
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
    /// Target namespaces and Secrets.
    pub targets: Targets,
    /// Our writes to requests that the request cache may not show yet.
    pub own: OwnWrites,
    /// The operator's own read-only credentials.
    pub readonly: ReadOnly,
    /// IAM clients per credential (root and read-only), keyed by fingerprint and region.
    pub(crate) minters: Mutex<HashMap<String, cco_aws::Minter>>,
    /// Default-mode classification of the root credential (keyed by its fingerprint).
    pub(crate) capability: Mutex<Option<(String, Capability)>>,
    /// GCP connections per credential (root and read-only), keyed by fingerprint, with their age.
    pub(crate) gcp: Mutex<HashMap<String, (Instant, Arc<cco_gcp::Gcp>)>>,
    /// ClusterVersion / APIServer caches, when the operator runs them.
    pub config: Option<crate::config_watch::ConfigWatch>,
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
        targets: Targets,
        readonly: ReadOnly,
        metrics: Arc<Metrics>,
    ) -> Context {
        Context {
            client,
            settings,
            state,
            metrics,
            status_changed: Arc::new(Notify::new()),
            targets,
            own: OwnWrites::default(),
            readonly,
            minters: Mutex::new(HashMap::new()),
            capability: Mutex::new(None),
            gcp: Mutex::new(HashMap::new()),
            config: None,
        }
    }

    /// With the ClusterVersion / APIServer caches.
    pub fn with_config(mut self, config: crate::config_watch::ConfigWatch) -> Context {
        self.config = Some(config);
        self
    }

    /// The cluster configuration now, with ClusterVersion's cluster id when the cluster has no
    /// infrastructure name.
    pub fn view(&self) -> crate::cluster::ClusterView {
        let mut view = self.state.view();
        if view.infrastructure_name.is_none() {
            view.cluster_id = self
                .config
                .as_ref()
                .and_then(|c| c.cluster_version())
                .and_then(|cv| cv.cluster_id().map(str::to_owned));
        }
        view
    }

    /// IAM clients holding `cred` (the root or a read-only credential), or why there are none.
    pub(crate) async fn minter(
        &self,
        cred: &RootSecret,
        region: &str,
    ) -> Result<cco_aws::Minter, String> {
        let key = format!("{}/{region}", cred.fingerprint());
        let mut guard = self.minters.lock().await;
        if let Some(m) = guard.get(&key) {
            return Ok(m.clone());
        }
        let id = cred.data.get_str(cco_core::secrets::AWS_ACCESS_KEY_ID);
        let secret = cred.data.get_str(cco_core::secrets::AWS_SECRET_ACCESS_KEY);
        let (Some(id), Some(secret)) = (id, secret) else {
            return Err(format!(
                "credential {} lacks aws_access_key_id or aws_secret_access_key",
                cred.name
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
        // Credentials come and go (rotation, removal): keep only a few clients.
        if guard.len() >= 4 {
            guard.clear();
        }
        guard.insert(key, m.clone());
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
    // The target caches listed before the first reconcile (see `operator::run`): a cached miss
    // is not a missing Secret.
    let cr = ctx.own.freshest(cr);
    let res = reconcile_inner(&cr, &ctx).await;
    ctx.metrics
        .observe_reconcile(CONTROLLER, start.elapsed().as_secs_f64());
    ctx.status_changed.notify_one();
    res
}

/// Backoff by error category: permissions are not fixed quickly, conflicts are.
pub fn error_policy(_cr: Arc<CredentialsRequest>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.count_error(CONTROLLER, &err.label());
    let code = match err {
        Error::Kube {
            source: kube::Error::Api(e),
            ..
        } => Some(e.code),
        _ => None,
    };
    if code == Some(409) {
        // A write based on a version someone (or our own cache) had already superseded.
        debug!(error = %err, "conflict; retrying on the newer version");
    } else {
        warn!(error = %err, "reconcile failed");
    }
    Action::requeue(match code {
        Some(409) => Duration::from_millis(500),
        Some(429) => Duration::from_secs(5),
        Some(401) | Some(403) => Duration::from_secs(300),
        _ => ctx.settings.retry,
    })
}

/// Whether the target namespace exists, and the target Secret's metadata when the decision needs
/// it: from the caches, else (an unlabelled Secret, or one this process has not seen) from the API
/// server, but only for a request being deleted or already provisioned. A new request's Secret is
/// written whatever exists, so it is not read.
async fn observe_target(
    ctx: &Context,
    cr: &CredentialsRequest,
) -> Result<(bool, Option<TargetSecret>), Error> {
    let (namespace, name) = (&cr.spec.secret_ref.namespace, &cr.spec.secret_ref.name);
    if namespace.is_empty() || name.is_empty() || !ctx.targets.namespace_exists(namespace) {
        return Ok((false, None));
    }
    if let Some(m) = ctx.targets.secret(namespace, name) {
        return Ok((true, Some(TargetSecret { owner: m.owner })));
    }
    let matters = cr.metadata.deletion_timestamp.is_some()
        || cr.status.as_ref().is_some_and(|s| s.provisioned);
    if !matters {
        return Ok((true, None));
    }
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), namespace)
        .get_metadata_opt(name)
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
        }),
    ))
}

/// Reads the target Secret's data (minting compares the key in it with the cloud's).
pub(crate) async fn read_target_data(
    ctx: &Context,
    cr: &CredentialsRequest,
) -> Result<Option<SecretData>, Error> {
    let (ns, name) = (&cr.spec.secret_ref.namespace, &cr.spec.secret_ref.name);
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(kube_err("get", "Secret", ns, name))?;
    Ok(secret.map(|s| {
        SecretData(
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
        )
    }))
}

async fn reconcile_inner(cached: &CredentialsRequest, ctx: &Context) -> Result<Action, Error> {
    let mut view = ctx.view();
    let may_mint_aws = view.cloud() == Some(cco_api::Cloud::Aws)
        && view.mode != crate::cluster::CredentialsMode::Manual;
    if let (true, None, None, Some(config)) = (
        may_mint_aws,
        &view.infrastructure_name,
        &view.cluster_id,
        &ctx.config,
    ) {
        // A cluster without an infrastructure name tags users with its cluster id: give the
        // ClusterVersion cache a moment to fill at start-up (bounded: a waiter may not be woken).
        let _ = tokio::time::timeout(Duration::from_secs(5), config.wait_ready()).await;
        view = ctx.view();
    }
    if let Some(e) = &view.config_error {
        warn!(error = %e, "cluster configuration unusable; waiting");
        return Ok(Action::requeue(ctx.settings.retry));
    }
    let root = ctx.state.root(&view);
    let effective = effective_mode(&view, root.as_ref());
    let (tns, tname) = (
        cached.spec.secret_ref.namespace.clone(),
        cached.spec.secret_ref.name.clone(),
    );
    let quick_leave = effective == Effective::Manual
        && cached.metadata.deletion_timestamp.is_none()
        && !cached
            .annotations()
            .contains_key(cco_api::ANNOTATION_DELETE);
    if quick_leave {
        return Ok(Action::await_change());
    }
    let (ns_exists, target) = observe_target(ctx, cached).await?;
    let suffix = random_suffix();
    let readonly = match view.cloud() {
        Some(cco_api::Cloud::Aws) => ctx.readonly.aws(),
        Some(cco_api::Cloud::Gcp) => ctx.readonly.gcp(),
        _ => None,
    };
    let inputs = Inputs {
        cr: cached,
        cluster: &view,
        effective: &effective,
        root: root.as_ref(),
        readonly: readonly.as_ref(),
        target_namespace_exists: ns_exists,
        target: target.as_ref(),
        since_last_sync: since(
            cached
                .status
                .as_ref()
                .and_then(|s| s.last_sync_timestamp.as_deref()),
        ),
        sync_period: ctx.settings.sync_period,
        random_suffix: &suffix,
    };
    let decision = decide(&inputs);
    debug!(?decision, mode = ?effective, "decided");
    let crs: Api<CredentialsRequest> =
        Api::namespaced(ctx.client.clone(), &cached.namespace().unwrap_or_default());
    let name = cached.name_any();
    let cr_ns = cached.namespace().unwrap_or_default();
    // The request as of our last write: every write is based on it and replaces it.
    let mut cr = cached.clone();

    let mut marks = SyncMarks {
        generation: cr.metadata.generation.unwrap_or(0),
        root_resource_version: root.as_ref().map(|r| r.resource_version.clone()),
        infrastructure_resource_version: view.infrastructure_resource_version.clone(),
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
                    write_status(ctx, &crs, &mut cr, &outcome, &marks).await?;
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
            remove_finalizer(&crs, &cr).await?;
            ctx.own.forget(&cr);
            return Ok(Action::await_change());
        }
        Decision::Ignore { platform } => Outcome::Ignored { platform },
        Decision::WaitForNamespace { add_finalizer } => {
            if add_finalizer {
                add_finalizer_to(ctx, &crs, &mut cr).await?;
            }
            info!(namespace = %tns, "target namespace missing; waiting for it");
            Outcome::MissingNamespace {
                namespace: tns.clone(),
            }
        }
        Decision::Provision { add_finalizer, how } => {
            if add_finalizer {
                add_finalizer_to(ctx, &crs, &mut cr).await?;
            }
            match how {
                Provision::Write(data) => {
                    apply_secret(ctx, &cr, &data, BTreeMap::new()).await?;
                    info!(secret = %format!("{tns}/{tname}"), keys = ?data, "wrote target secret");
                    Outcome::Provisioned { orphaned: None }
                }
                Provision::KeepMinted => Outcome::Provisioned { orphaned: None },
                Provision::MintAws(m) => {
                    match crate::mint_exec::sync(ctx, &mut cr, &m, root.as_ref()).await {
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
                    match crate::mint_gcp::sync(ctx, &mut cr, &m, root.as_ref()).await {
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
    write_status(ctx, &crs, &mut cr, &outcome, &marks).await?;
    Ok(match outcome {
        Outcome::ProvisionFailed { .. } | Outcome::Insufficient { .. } => {
            Action::requeue(ctx.settings.retry)
        }
        Outcome::MissingNamespace { .. } => Action::requeue(ctx.settings.resync),
        Outcome::Ignored { .. } | Outcome::Stale => Action::await_change(),
        _ => Action::requeue(ctx.settings.resync),
    })
}

/// Patches `cr`'s status, conditional on `cr`'s resourceVersion (a status computed from a stale
/// version fails with 409 instead of overwriting a newer one), and replaces `cr` with the result.
pub(crate) async fn patch_status_of(
    ctx: &Context,
    crs: &Api<CredentialsRequest>,
    cr: &mut CredentialsRequest,
    status: serde_json::Value,
    op: &'static str,
) -> Result<(), Error> {
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": cr.resource_version()},
        "status": status,
    });
    let updated = crs
        .patch_status(
            &cr.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(kube_err(
            op,
            "CredentialsRequest",
            &cr.namespace().unwrap_or_default(),
            &cr.name_any(),
        ))?;
    ctx.own.record(cr, updated.clone());
    *cr = updated;
    Ok(())
}

async fn write_status(
    ctx: &Context,
    crs: &Api<CredentialsRequest>,
    cr: &mut CredentialsRequest,
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
    patch_status_of(
        ctx,
        crs,
        cr,
        serde_json::to_value(&next).unwrap_or_default(),
        "patch status of",
    )
    .await
}

async fn set_finalizers(
    api: &Api<CredentialsRequest>,
    cr: &CredentialsRequest,
    finalizers: Vec<String>,
    op: &'static str,
) -> Result<Option<CredentialsRequest>, Error> {
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
        Ok(o) => Ok(Some(o)),
        Err(kube::Error::Api(e)) if e.code == 404 && op == "remove finalizer from" => Ok(None),
        Err(e) => Err(kube_err(
            op,
            "CredentialsRequest",
            &cr.namespace().unwrap_or_default(),
            &cr.name_any(),
        )(e)),
    }
}

async fn add_finalizer_to(
    ctx: &Context,
    api: &Api<CredentialsRequest>,
    cr: &mut CredentialsRequest,
) -> Result<(), Error> {
    let mut f = cr.finalizers().to_vec();
    f.push(FINALIZER.to_string());
    if let Some(updated) = set_finalizers(api, cr, f, "add finalizer to").await? {
        ctx.own.record(cr, updated.clone());
        *cr = updated;
    }
    Ok(())
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
    set_finalizers(api, cr, f, "remove finalizer from").await?;
    Ok(())
}

/// Server-side applies the target Secret with `data`, our label and owner annotation.
pub(crate) async fn apply_secret(
    ctx: &Context,
    cr: &CredentialsRequest,
    data: &SecretData,
    extra_annotations: BTreeMap<String, String>,
) -> Result<(), Error> {
    let (ns, name) = (&cr.spec.secret_ref.namespace, &cr.spec.secret_ref.name);
    let owner = format!("{}/{}", cr.namespace().unwrap_or_default(), cr.name_any());
    let mut annotations = extra_annotations;
    annotations.insert(ANNOTATION_CREDENTIALS_REQUEST.to_string(), owner.clone());
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
    Api::<Secret>::namespaced(ctx.client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
        .map_err(kube_err("apply", "Secret", ns, name))?;
    ctx.targets
        .applied(ns, name, SecretMeta { owner: Some(owner) });
    Ok(())
}
