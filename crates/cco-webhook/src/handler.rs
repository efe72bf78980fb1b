//! The admission decision as a pure function.
//!
//! [`admit`] takes the `AdmissionRequest` (the pod kept as raw JSON inside a `DynamicObject`),
//! the [`WebhookConfig`] and the metadata of the pod's ServiceAccount as looked up by the caller,
//! and returns the `AdmissionResponse`. It does no I/O, so every behaviour of the webhook is
//! unit-tested here without HTTP or a cluster; `server` only parses, looks the ServiceAccount up
//! and serializes.
//!
//! Flow: each cloud planner (`aws`, `azure`, `gcp`) returns a [`Decision`]; any refusal denies
//! the pod with the planner's message; the injections are turned into a minimal JSON patch by
//! [`crate::patch::plan_patch`]; planner warnings become admission warnings shown by kubectl.

use std::collections::{BTreeMap, BTreeSet};

use json_patch::Patch;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::DynamicObject;

use crate::config::WebhookConfig;
use crate::patch::{plan_patch, Cloud, Injection};
use crate::pod::PodView;
use crate::{aws, azure, gcp};

/// What one cloud planner wants for a pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The cloud does not apply to this pod.
    Skip,
    /// The cloud applies; add this.
    Inject(Box<Injection>),
    /// The pod's configuration is invalid for this cloud; deny admission with this message.
    Refuse(String),
}

/// Coarse result of an admission, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed without changes.
    Allowed,
    /// Allowed with a patch.
    Patched,
    /// Denied because of invalid identity annotations.
    Denied,
    /// The request could not be understood.
    Invalid,
}

impl Verdict {
    /// Lower-case name used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Patched => "patched",
            Verdict::Denied => "denied",
            Verdict::Invalid => "invalid",
        }
    }
}

/// The response plus what happened, for the caller's metrics and logs.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The response to send back.
    pub response: AdmissionResponse,
    /// Coarse result.
    pub verdict: Verdict,
    /// Clouds that changed the pod.
    pub mutated: BTreeSet<Cloud>,
}

impl Outcome {
    fn new(response: AdmissionResponse, verdict: Verdict) -> Self {
        Self {
            response,
            verdict,
            mutated: BTreeSet::new(),
        }
    }
}

/// The `(namespace, name)` of the ServiceAccount to look up before calling [`admit`], or `None`
/// when the request is not a pod creation the webhook acts on.
pub fn pod_service_account(req: &AdmissionRequest<DynamicObject>) -> Option<(String, String)> {
    if !is_pod_create(req) {
        return None;
    }
    let obj = req.object.as_ref()?;
    let namespace = req
        .namespace
        .clone()
        .or_else(|| obj.metadata.namespace.clone())
        .filter(|n| !n.is_empty())?;
    let name = ["serviceAccountName", "serviceAccount"]
        .iter()
        .find_map(|k| {
            obj.data
                .get("spec")
                .and_then(|s| s.get(*k))
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default");
    Some((namespace, name.to_string()))
}

fn is_pod_create(req: &AdmissionRequest<DynamicObject>) -> bool {
    req.kind.group.is_empty()
        && req.kind.kind == "Pod"
        && req.operation == Operation::Create
        && req.sub_resource.as_deref().unwrap_or("").is_empty()
}

/// What the caller found out about the pod's ServiceAccount.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ServiceAccountState<'a> {
    /// Its metadata.
    Found(&'a ObjectMeta),
    /// It does not exist (after the grace period).
    NotFound,
    /// It could not be looked up; the error.
    Failed(&'a str),
}

impl<'a> ServiceAccountState<'a> {
    fn metadata(self) -> Option<&'a ObjectMeta> {
        match self {
            ServiceAccountState::Found(m) => Some(m),
            _ => None,
        }
    }
}

impl<'a> From<Option<&'a ObjectMeta>> for ServiceAccountState<'a> {
    fn from(m: Option<&'a ObjectMeta>) -> Self {
        m.map_or(ServiceAccountState::NotFound, ServiceAccountState::Found)
    }
}

/// Everything besides the request and the configuration that decides an admission.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The pod's ServiceAccount.
    pub service_account: ServiceAccountState<'a>,
    /// AWS settings from the `--watch-config-map` ConfigMap for this ServiceAccount.
    pub config_map_role: Option<&'a aws::RoleEntry>,
    /// The ServiceAccount has an EKS Pod Identity association
    /// (`--watch-container-credentials-config`).
    pub pod_identity_association: bool,
}

impl<'a> Inputs<'a> {
    /// Inputs with only the ServiceAccount.
    pub fn service_account(sa: impl Into<ServiceAccountState<'a>>) -> Self {
        Self {
            service_account: sa.into(),
            config_map_role: None,
            pod_identity_association: false,
        }
    }
}

/// Decide the admission of `req`. `service_account` is the metadata of the pod's
/// ServiceAccount, `None` when it does not exist.
pub fn admit(
    req: &AdmissionRequest<DynamicObject>,
    cfg: &WebhookConfig,
    service_account: Option<&ObjectMeta>,
) -> Outcome {
    admit_with(req, cfg, &Inputs::service_account(service_account))
}

/// [`admit`] with all inputs.
pub fn admit_with(
    req: &AdmissionRequest<DynamicObject>,
    cfg: &WebhookConfig,
    inputs: &Inputs<'_>,
) -> Outcome {
    let allowed = AdmissionResponse::from(req);
    if !is_pod_create(req) {
        return Outcome::new(allowed, Verdict::Allowed);
    }
    let Some(obj) = req.object.as_ref() else {
        return Outcome::new(
            AdmissionResponse::invalid("pod CREATE request without an object"),
            Verdict::Invalid,
        );
    };
    let pod_json = match serde_json::to_value(obj) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::new(
                AdmissionResponse::invalid(format!("pod object: {e}")),
                Verdict::Invalid,
            )
        }
    };
    let pod = PodView::new(&pod_json);

    let empty = BTreeMap::new();
    let service_account = inputs.service_account.metadata();
    let sa_annotations = service_account
        .and_then(|m| m.annotations.as_ref())
        .unwrap_or(&empty);

    let mut warnings = Vec::new();
    let on = |c: Cloud| cfg.clouds.contains(&c);
    // Azure needs the ServiceAccount's client id: never inject half an identity. Deny as
    // azure-workload-identity does (400 with the lookup error), so the pod's controller
    // retries once the ServiceAccount exists.
    if on(Cloud::Azure) && pod.label(azure::USE_LABEL) == Some("true") {
        let reason = match inputs.service_account {
            ServiceAccountState::Found(_) => None,
            ServiceAccountState::NotFound => Some(format!(
                "serviceaccounts {:?} not found",
                pod.service_account_name()
            )),
            ServiceAccountState::Failed(e) => Some(e.to_string()),
        };
        if let Some(reason) = reason {
            let mut denied = allowed.deny(format!(
                "{} is set but the pod's ServiceAccount cannot be read: {reason}",
                azure::USE_LABEL
            ));
            denied.result.code = 400;
            return Outcome::new(denied, Verdict::Denied);
        }
    }

    let aws_inputs = aws::Inputs {
        config_map_role: inputs.config_map_role,
        pod_identity_association: inputs.pod_identity_association,
    };
    let decisions = [
        on(Cloud::Aws)
            .then(|| aws::plan(&pod, sa_annotations, &aws_inputs, &cfg.aws, &mut warnings)),
        on(Cloud::Azure).then(|| azure::plan(&pod, sa_annotations, &cfg.azure, &mut warnings)),
        on(Cloud::Gcp).then(|| gcp::plan(&pod, sa_annotations, &cfg.gcp, &mut warnings)),
    ];
    let mut injections = Vec::new();
    for decision in decisions.into_iter().flatten() {
        match decision {
            Decision::Skip => {}
            Decision::Inject(i) => injections.push(*i),
            Decision::Refuse(message) => {
                let mut denied = allowed.deny(message);
                denied.result.code = 400;
                return Outcome::new(denied, Verdict::Denied);
            }
        }
    }

    let planned = plan_patch(&pod, &injections);
    warnings.extend(planned.warnings);
    let mut response = allowed;
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    if planned.ops.is_empty() {
        return Outcome::new(response, Verdict::Allowed);
    }
    match response.clone().with_patch(Patch(planned.ops)) {
        Ok(response) => Outcome {
            response,
            verdict: Verdict::Patched,
            mutated: planned.changed,
        },
        Err(e) => Outcome::new(
            AdmissionResponse::invalid(format!("serializing patch: {e}")),
            Verdict::Invalid,
        ),
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
