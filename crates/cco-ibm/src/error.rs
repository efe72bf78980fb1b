//! Errors of IBM Cloud calls, carrying the operation and the resource they concern.

use serde_json::Value;

/// A failed IBM Cloud operation.
#[derive(Debug, thiserror::Error)]
pub enum IbmError {
    #[error("{op} on {resource} failed: HTTP {status}: {code}: {message}")]
    Api {
        op: &'static str,
        resource: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{op} on {resource}: cannot reach IBM Cloud ({message}). Check network access, and IBMCLOUD_IAM_ENDPOINT / IBMCLOUD_RESOURCE_MANAGER_ENDPOINT if you set them")]
    Unreachable {
        op: &'static str,
        resource: String,
        message: String,
    },
    #[error("the IBM Cloud API key was rejected ({message}). Set IC_API_KEY (or IBMCLOUD_API_KEY) to a valid key of the account")]
    Credentials { message: String },
    #[error("{0}")]
    Unexpected(String),
    #[error("{0}")]
    Local(String),
}

impl IbmError {
    pub(crate) fn unreachable(op: &'static str, resource: &str, e: &reqwest::Error) -> IbmError {
        let mut message = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            message = format!("{message}: {s}");
            src = s.source();
        }
        IbmError::Unreachable {
            op,
            resource: resource.to_string(),
            message,
        }
    }

    pub(crate) fn api(op: &'static str, resource: &str, status: u16, body: &Value) -> IbmError {
        let (code, message) = code_and_message(body);
        IbmError::Api {
            op,
            resource: resource.to_string(),
            status,
            code,
            message,
        }
    }

    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            IbmError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `(code, message)` from either IBM error shape: `{"errors":[{"code","message"}]}` (IAM Identity,
/// Policy Management) or `{"errorCode","errorMessage"}` (token service).
fn code_and_message(body: &Value) -> (String, String) {
    if let Some(e) = body["errors"].as_array().and_then(|e| e.first()) {
        return (
            e["code"].as_str().unwrap_or("error").to_string(),
            e["message"].as_str().unwrap_or("").to_string(),
        );
    }
    if let Some(c) = body["errorCode"].as_str() {
        return (
            c.to_string(),
            body["errorMessage"].as_str().unwrap_or("").to_string(),
        );
    }
    let text = match body {
        Value::String(s) => s.chars().take(300).collect(),
        other => other.to_string().chars().take(300).collect(),
    };
    ("error".into(), text)
}

pub(crate) fn message_of(body: &Value) -> String {
    let (code, message) = code_and_message(body);
    format!("{code}: {message}")
}
