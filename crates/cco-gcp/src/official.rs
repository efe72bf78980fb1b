//! The calls that go through Google's official clients: `google-cloud-iam-admin-v1` (service
//! accounts, their keys and IAM policies, custom roles) and `google-cloud-resourcemanager-v3` (the
//! project, its IAM policy, `testIamPermissions`), with our credentials, endpoints, retry policy and
//! error messages.
//!
//! Their errors become [`GcpError::Api`] with the HTTP status and the canonical status name, so the
//! retry rules of this crate (not visible yet, concurrent policy change) apply to them unchanged.
//! The clients themselves retry throttling, server errors and transport failures ([`Transient`]).

use std::time::Duration;

use google_cloud_gax::error::Error as GaxError;
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::retry_policy::RetryPolicy;
use google_cloud_gax::retry_result::RetryResult;
use google_cloud_gax::retry_state::RetryState;
use google_cloud_iam_admin_v1::client::Iam;
use google_cloud_iam_admin_v1::model as iam;
use google_cloud_resourcemanager_v3::client::Projects;
use serde_json::{json, Value};

use crate::{Endpoints, GcpError, ATTEMPTS};

/// How long one attempt of a call may take (as the REST client's timeout).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The official clients of one connection.
#[derive(Clone, Debug)]
pub(crate) struct Clients {
    pub iam: Iam,
    pub projects: Projects,
}

/// Retries throttling (429), server errors (5xx) and transport failures, on every method (a
/// retried create answers 409, which the callers handle), for at most [`ATTEMPTS`] attempts.
#[derive(Debug)]
pub(crate) struct Transient;

impl RetryPolicy for Transient {
    fn on_error(&self, state: &RetryState, error: GaxError) -> RetryResult {
        let transient = match error.http_status_code() {
            Some(c) => c == 429 || c >= 500,
            None => {
                error.is_io() || error.is_connect() || error.is_timeout() || error.is_transport()
            }
        };
        if !transient {
            RetryResult::Permanent(error)
        } else if state.attempt_count >= ATTEMPTS {
            RetryResult::Exhausted(error)
        } else {
            RetryResult::Continue(error)
        }
    }
}

fn build_error(what: &str, e: impl std::fmt::Display) -> GcpError {
    GcpError::Local(format!("cannot build the {what} client: {e}"))
}

impl Clients {
    pub(crate) async fn new(
        endpoints: &Endpoints,
        credentials: google_cloud_auth::credentials::Credentials,
    ) -> Result<Clients, GcpError> {
        let backoff = || {
            ExponentialBackoffBuilder::new()
                .with_initial_delay(Duration::from_millis(200))
                .with_maximum_delay(Duration::from_secs(5))
                .build()
                .map_err(|e| build_error("retry", e))
        };
        let iam = Iam::builder()
            .with_attempt_timeout(ATTEMPT_TIMEOUT)
            .with_endpoint(endpoints.iam.clone())
            .with_credentials(credentials.clone())
            .with_retry_policy(Transient)
            .with_backoff_policy(backoff()?)
            .build()
            .await
            .map_err(|e| build_error("IAM", e))?;
        let projects = Projects::builder()
            .with_attempt_timeout(ATTEMPT_TIMEOUT)
            .with_endpoint(endpoints.resource_manager.clone())
            .with_credentials(credentials)
            .with_retry_policy(Transient)
            .with_backoff_policy(backoff()?)
            .build()
            .await
            .map_err(|e| build_error("Resource Manager", e))?;
        Ok(Clients { iam, projects })
    }
}

/// An official client's error as a [`GcpError`] naming the operation and the resource.
pub(crate) fn gax_error(op: &'static str, resource: &str, e: GaxError) -> GcpError {
    if let Some(st) = e.status() {
        let code = e.http_status_code().unwrap_or(match st.code.name() {
            "NOT_FOUND" => 404,
            "ALREADY_EXISTS" | "ABORTED" => 409,
            "PERMISSION_DENIED" => 403,
            "UNAUTHENTICATED" => 401,
            "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => 400,
            "RESOURCE_EXHAUSTED" => 429,
            _ => 500,
        });
        return GcpError::Api {
            op,
            resource: resource.to_string(),
            code,
            status: st.code.name().to_string(),
            message: st.message.clone(),
        };
    }
    if e.is_deserialization() || e.is_serialization() {
        return GcpError::Unexpected(format!(
            "{op} on {resource}: the request or answer does not have the documented shape: {e}"
        ));
    }
    if e.is_authentication() {
        return GcpError::Credentials {
            message: format!("{op} on {resource}: {e}"),
        };
    }
    if let Some(code) = e.http_status_code() {
        let body = e
            .http_payload()
            .map(|b| String::from_utf8_lossy(b).chars().take(300).collect())
            .unwrap_or_default();
        return GcpError::Api {
            op,
            resource: resource.to_string(),
            code,
            status: String::new(),
            message: body,
        };
    }
    GcpError::unreachable(op, resource, &e)
}

/// A service account as the JSON resource the rest of this crate reads.
pub(crate) fn account_json(a: &iam::ServiceAccount) -> Value {
    json!({"name": a.name, "projectId": a.project_id, "uniqueId": a.unique_id, "email": a.email,
        "displayName": a.display_name, "description": a.description, "disabled": a.disabled})
}

/// A custom role as the JSON resource the rest of this crate reads (`stage` by name).
pub(crate) fn role_json(r: &iam::Role) -> Value {
    json!({"name": r.name, "title": r.title, "description": r.description,
        "includedPermissions": r.included_permissions, "stage": r.stage.name(),
        "deleted": r.deleted})
}

/// The role `ccoctl` makes for `r`: its permissions in the request's order, stage GA.
pub(crate) fn role_model(r: &cco_core::gcp::CustomRole) -> iam::Role {
    iam::Role::new()
        .set_title(r.title.clone())
        .set_description(r.description.clone())
        .set_included_permissions(r.permissions_in_request_order())
        .set_stage(iam::role::RoleLaunchStage::Ga)
}

/// A policy (IAM v1 model) as JSON, for the pure edits of [`crate::policy`].
pub(crate) fn policy_json(
    op: &'static str,
    resource: &str,
    p: &google_cloud_iam_v1::model::Policy,
) -> Result<Value, GcpError> {
    serde_json::to_value(p)
        .map_err(|e| GcpError::Unexpected(format!("{op} on {resource}: policy: {e}")))
}

/// The JSON of an edited policy back as the IAM v1 model.
pub(crate) fn policy_model(
    op: &'static str,
    resource: &str,
    v: &Value,
) -> Result<google_cloud_iam_v1::model::Policy, GcpError> {
    serde_json::from_value(v.clone())
        .map_err(|e| GcpError::Unexpected(format!("{op} on {resource}: policy: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(code: u16, body: &str) -> GaxError {
        GaxError::http(
            code,
            http::HeaderMap::new(),
            bytes::Bytes::from(body.to_string()),
        )
    }

    #[test]
    fn throttling_and_server_errors_are_retried_on_any_method_until_the_attempts_run_out() {
        let first = RetryState::new(false).set_attempt_count(1u32);
        for code in [429, 500, 503] {
            assert!(matches!(
                Transient.on_error(&first, http(code, "")),
                RetryResult::Continue(_)
            ));
        }
        for code in [400, 403, 404, 409] {
            assert!(matches!(
                Transient.on_error(&first, http(code, "")),
                RetryResult::Permanent(_)
            ));
        }
        let last = RetryState::new(true).set_attempt_count(ATTEMPTS);
        assert!(matches!(
            Transient.on_error(&last, http(503, "")),
            RetryResult::Exhausted(_)
        ));
    }

    #[test]
    fn errors_name_the_operation_and_the_resource() {
        let e = gax_error("iam.roles.get", "r1", http(418, "teapot"));
        assert_eq!(e.code(), Some(418));
        let m = e.to_string();
        assert!(
            m.contains("iam.roles.get on r1") && m.contains("teapot"),
            "{m}"
        );
    }
}
