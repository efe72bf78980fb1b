//! `--compose-role-arn`: the partition and account a role name is completed with, read once at
//! startup from the EC2 instance metadata service, as the EKS webhook does.
//!
//! The client is the AWS SDK's own (`aws-config`): IMDSv2 (a session token from
//! `PUT /latest/api/token`, then `GET /latest/dynamic/instance-identity/document`), endpoint
//! `http://169.254.169.254` unless `AWS_EC2_METADATA_SERVICE_ENDPOINT` (or
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6`) says otherwise; `AWS_EC2_METADATA_DISABLED=true`
//! refuses, as in the Go SDK. The partition follows from the document's region
//! ([`ComposeRoleArn::partition_of`]); the account is its `accountId`. Like the EKS webhook, a
//! failure stops the webhook at startup.

use serde::Deserialize;

use crate::config::ComposeRoleArn;

/// Path of the instance identity document.
pub const IDENTITY_DOCUMENT: &str = "/latest/dynamic/instance-identity/document";

/// Why the instance's account and partition could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImdsError {
    /// `AWS_EC2_METADATA_DISABLED=true`.
    #[error("the EC2 instance metadata service is disabled by AWS_EC2_METADATA_DISABLED=true; unset it, or use full role ARNs without --compose-role-arn")]
    Disabled,
    /// The request failed.
    #[error("reading {IDENTITY_DOCUMENT} from the EC2 instance metadata service ({endpoint}) failed: {message}; run on EC2 with the metadata service reachable from the pod (hop limit 2), set AWS_EC2_METADATA_SERVICE_ENDPOINT, or use full role ARNs without --compose-role-arn")]
    Request {
        /// Endpoint asked.
        endpoint: String,
        /// The client's error.
        message: String,
    },
    /// The document is not what EC2 serves.
    #[error("the instance identity document from {endpoint} is unusable: {message}")]
    Document {
        /// Endpoint asked.
        endpoint: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityDocument {
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    region: String,
}

/// Parse an instance identity document into the partition and account used to compose ARNs.
pub fn from_document(document: &str) -> Result<ComposeRoleArn, String> {
    let doc: IdentityDocument =
        serde_json::from_str(document).map_err(|e| format!("not JSON: {e}"))?;
    if doc.account_id.is_empty() {
        return Err("no accountId".into());
    }
    Ok(ComposeRoleArn {
        partition: ComposeRoleArn::partition_of(&doc.region).to_string(),
        account_id: doc.account_id,
    })
}

/// Ask the instance metadata service (`env` reads the environment).
pub async fn compose_role_arn(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ComposeRoleArn, ImdsError> {
    if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(ImdsError::Disabled);
    }
    let endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| match env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") {
            Some(m) if m.eq_ignore_ascii_case("ipv6") => "http://[fd00:ec2::254]".into(),
            _ => "http://169.254.169.254".into(),
        });
    let client = aws_config::imds::Client::builder().build();
    let document = client
        .get(IDENTITY_DOCUMENT)
        .await
        .map_err(|e| ImdsError::Request {
            endpoint: endpoint.clone(),
            message: aws_smithy_error(&e),
        })?;
    from_document(document.as_ref()).map_err(|message| ImdsError::Document { endpoint, message })
}

fn aws_smithy_error(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_and_account_from_the_document() {
        let c = from_document(r#"{"accountId": "111122223333", "region": "cn-northwest-1"}"#)
            .expect("parses");
        assert_eq!(c.partition, "aws-cn");
        assert_eq!(c.account_id, "111122223333");
        assert!(from_document(r#"{"region": "us-east-1"}"#).is_err());
        assert!(from_document("<html>").is_err());
    }
}
