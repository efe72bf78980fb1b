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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn service(code: &str, message: &str) -> AwsError {
        AwsError::Service {
            op: "iam:PutRolePolicy",
            resource: "r".into(),
            code: code.into(),
            message: message.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn not_yet_visible_entities_are_retried_until_they_appear() {
        let calls = AtomicUsize::new(0);
        let got = eventually(|| async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(service("NoSuchEntity", "The role cannot be found"))
            } else {
                Ok(7)
            }
        })
        .await
        .expect("eventually succeeds");
        assert_eq!((got, calls.load(Ordering::SeqCst)), (7, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_trust_policy_naming_an_unpropagated_provider_is_retried() {
        let calls = AtomicUsize::new(0);
        eventually(|| async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(service(
                    "MalformedPolicyDocument",
                    "Invalid principal in policy",
                ))
            } else {
                Ok(())
            }
        })
        .await
        .expect("retried");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn real_errors_are_not_retried_and_retries_are_bounded() {
        let calls = AtomicUsize::new(0);
        let err = eventually(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(service(
                "MalformedPolicyDocument",
                "Syntax errors in policy",
            ))
        })
        .await
        .expect_err("fails");
        assert_eq!(err.code(), Some("MalformedPolicyDocument"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let calls = AtomicUsize::new(0);
        eventually(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(service("NoSuchEntity", "gone"))
        })
        .await
        .expect_err("gives up");
        assert!(calls.load(Ordering::SeqCst) < 20);
    }
}
