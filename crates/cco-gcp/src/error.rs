//! Errors of GCP calls, carrying the operation and the resource they concern.

use serde_json::Value;

/// A failed GCP operation.
#[derive(Debug, thiserror::Error)]
pub enum GcpError {
    #[error("{op} on {resource} failed: HTTP {code} {status}: {message}")]
    Api {
        op: &'static str,
        resource: String,
        code: u16,
        status: String,
        message: String,
    },
    #[error("{op} on {resource}: cannot reach GCP ({message}). Check network access, and GCP_IAM_ENDPOINT / GCP_RESOURCEMANAGER_ENDPOINT / STORAGE_EMULATOR_HOST if you set them")]
    Unreachable {
        op: &'static str,
        resource: String,
        message: String,
    },
    #[error("GCP credentials: {message}")]
    Credentials { message: String },
    #[error("{0}")]
    Unexpected(String),
    #[error("{0}")]
    Local(String),
}

impl GcpError {
    /// A call that got no HTTP answer: the error and its chain of causes.
    pub(crate) fn unreachable(
        op: &'static str,
        resource: &str,
        e: &(dyn std::error::Error + 'static),
    ) -> GcpError {
        let mut message = e.to_string();
        let mut src = e.source();
        while let Some(s) = src {
            message = format!("{message}: {s}");
            src = s.source();
        }
        GcpError::Unreachable {
            op,
            resource: resource.to_string(),
            message,
        }
    }

    pub(crate) fn api(op: &'static str, resource: &str, code: u16, body: &Value) -> GcpError {
        let e = &body["error"];
        let (status, message) = if e.is_object() {
            (
                e["status"]
                    .as_str()
                    .or_else(|| e["errors"][0]["reason"].as_str())
                    .unwrap_or("")
                    .to_string(),
                e["message"].as_str().unwrap_or("").to_string(),
            )
        } else {
            let text = match body {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (String::new(), text.chars().take(300).collect())
        };
        GcpError::Api {
            op,
            resource: resource.to_string(),
            code,
            status,
            message,
        }
    }

    /// The HTTP status of an API error.
    pub fn code(&self) -> Option<u16> {
        match self {
            GcpError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// 404.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// A concurrent change of an IAM policy: 409 ABORTED (IAM, Resource Manager) or 412 (Storage).
    pub fn is_concurrent_change(&self) -> bool {
        match self {
            GcpError::Api { code: 412, .. } => true,
            GcpError::Api {
                code: 409, status, ..
            } => status == "ABORTED",
            _ => false,
        }
    }

    /// "Not visible yet": 404, or 400 naming a member or role that does not exist (yet).
    pub fn is_not_visible_yet(&self) -> bool {
        match self {
            GcpError::Api { code: 404, .. } => true,
            GcpError::Api {
                code: 400, message, ..
            } => message.contains("does not exist"),
            _ => false,
        }
    }
}
