//! Errors of AWS calls, carrying the operation and the resource they concern.

use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;

/// A failed AWS operation.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("{op} on {resource} failed: {code}: {message}")]
    Service {
        op: &'static str,
        resource: String,
        code: String,
        message: String,
    },
    #[error("{op} on {resource}: cannot reach the AWS endpoint ({message}). Check network access, the region, and AWS_ENDPOINT_URL if you use one")]
    Unreachable {
        op: &'static str,
        resource: String,
        message: String,
    },
    #[error("{op} on {resource}: AWS credentials are missing or invalid ({message}). Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")]
    Credentials {
        op: &'static str,
        resource: String,
        message: String,
    },
    #[error("S3 bucket {bucket} already exists and belongs to another account; bucket names are global, so choose another --name")]
    BucketTaken { bucket: String },
    #[error("cannot compute the TLS thumbprint of {issuer}: {message}")]
    Thumbprint { issuer: String, message: String },
    #[error("{0}")]
    Unexpected(String),
    #[error("{0}")]
    Local(String),
}

impl AwsError {
    /// Wraps an SDK error with the operation and resource.
    pub fn call<E, R>(op: &'static str, resource: impl Into<String>, e: SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let resource = resource.into();
        match &e {
            SdkError::DispatchFailure(d) => {
                let message = format!("{:?}", d);
                if d.is_user() || message.contains("credential") {
                    AwsError::Credentials {
                        op,
                        resource,
                        message: first_line(
                            &aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
                        ),
                    }
                } else {
                    AwsError::Unreachable {
                        op,
                        resource,
                        message: first_line(
                            &aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
                        ),
                    }
                }
            }
            SdkError::TimeoutError(_) => AwsError::Unreachable {
                op,
                resource,
                message: "timed out".into(),
            },
            SdkError::ServiceError(se) => AwsError::Service {
                op,
                resource,
                code: se.err().code().unwrap_or("Unknown").to_string(),
                message: se.err().message().unwrap_or("").to_string(),
            },
            _ => AwsError::Service {
                op,
                resource,
                code: e.code().unwrap_or("Error").to_string(),
                message: first_line(
                    &aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
                ),
            },
        }
    }

    /// The AWS error code, when there is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Service { code, .. } => Some(code),
            _ => None,
        }
    }
}

fn first_line(s: &str) -> String {
    // DisplayErrorContext ends with the Debug form of the whole error; keep the readable chain only.
    let s = s.lines().next().unwrap_or("");
    let s = s.split(" (DispatchFailure(").next().unwrap_or(s);
    s.chars().take(400).collect()
}
