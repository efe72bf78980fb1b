//! Retries for IAM's eventual consistency, on top of the SDK's own throttling retries.
//!
//! A role or OIDC provider created a moment ago may not yet be visible to the next call: IAM answers
//! `NoSuchEntity`, or `MalformedPolicyDocument` ("Invalid principal") for a trust policy naming a
//! provider it has not propagated. Those calls are retried with exponential backoff.

use std::future::Future;
use std::time::Duration;

use crate::AwsError;

/// Error codes that mean "not visible yet" rather than "wrong".
pub(crate) fn is_propagation(e: &AwsError) -> bool {
    match e {
        AwsError::Service { code, message, .. } => {
            code == "NoSuchEntity"
                || (code == "MalformedPolicyDocument" && message.contains("Invalid principal"))
                || code == "ConcurrentModification"
        }
        _ => false,
    }
}

/// Runs `f` until it succeeds, fails with a non-propagation error, or about 40 s have passed.
pub(crate) async fn eventually<T, F, Fut>(mut f: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AwsError>>,
{
    let mut delay = Duration::from_millis(250);
    let mut waited = Duration::ZERO;
    loop {
        match f().await {
            Err(e) if is_propagation(&e) && waited < Duration::from_secs(40) => {
                tracing::debug!(error = %e, "not visible yet, retrying");
                tokio::time::sleep(delay).await;
                waited += delay;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}
