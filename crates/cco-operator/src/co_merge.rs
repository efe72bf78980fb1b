//! Combining ClusterOperator conditions from several sources, as the reference operator's status
//! controller combines its handlers' conditions.
//!
//! The request conditions of [`crate::status::operator_conditions`] always carry all four types,
//! with `AsExpected`/`All is well` for "nothing to report"; other sources (the upgrade gate, the pod
//! identity webhook) return only what they have to report. [`merge_worst`] folds such a source in:
//! a default is replaced; otherwise the worse status wins (`False` for Available/Upgradeable, `True`
//! for Degraded/Progressing), keeping the winner's reason, and the loser's message is appended after
//! `"; "` so that nothing is lost.

use crate::status::CoCondition;

fn is_default(c: &CoCondition) -> bool {
    (c.reason == "AsExpected" && c.message == "All is well")
        || (c.type_ == "Available" && c.status && c.reason == "OperatorDisabledByAdmin")
}

fn worse(type_: &str, candidate: bool, current: bool) -> bool {
    if candidate == current {
        return false;
    }
    match type_ {
        "Available" | "Upgradeable" => !candidate,
        _ => candidate,
    }
}

/// Folds `extra` into `base` (see the module documentation).
pub fn merge_worst(mut base: Vec<CoCondition>, extra: &[CoCondition]) -> Vec<CoCondition> {
    for new in extra {
        match base.iter_mut().find(|c| c.type_ == new.type_) {
            None => base.push(new.clone()),
            Some(old) if is_default(old) => {
                // Manual mode's Available reason is applied after merging in the reference: keep it
                // when the new condition does not change the status.
                if !(old.type_ == "Available" && old.status == new.status && old.status) {
                    *old = new.clone();
                }
            }
            Some(old) => {
                if worse(new.type_, new.status, old.status) {
                    let mut w = new.clone();
                    w.message = format!("{}; {}", new.message, old.message);
                    *old = w;
                } else {
                    old.message = format!("{}; {}", old.message, new.message);
                }
            }
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(type_: &'static str, status: bool, reason: &'static str, message: &str) -> CoCondition {
        CoCondition {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }

    fn defaults() -> Vec<CoCondition> {
        vec![
            c("Available", true, "AsExpected", "All is well"),
            c("Degraded", false, "AsExpected", "All is well"),
            c("Progressing", false, "AsExpected", "All is well"),
            c("Upgradeable", true, "AsExpected", "All is well"),
        ]
    }

    #[test]
    fn a_report_replaces_a_default() {
        let out = merge_worst(defaults(), &[c("Degraded", true, "X", "broken")]);
        assert_eq!(out[1], c("Degraded", true, "X", "broken"));
    }

    #[test]
    fn the_worse_status_wins_and_messages_are_kept() {
        let mut base = defaults();
        base[1] = c("Degraded", true, "CredentialsFailing", "1 of 2 failing");
        let out = merge_worst(base.clone(), &[c("Degraded", true, "Webhook", "down")]);
        assert_eq!(
            out[1],
            c(
                "Degraded",
                true,
                "CredentialsFailing",
                "1 of 2 failing; down"
            )
        );
        base[3] = c("Upgradeable", true, "Other", "fine");
        let out = merge_worst(
            base,
            &[c("Upgradeable", false, "MissingRootCredential", "gone")],
        );
        assert_eq!(
            out[3],
            c("Upgradeable", false, "MissingRootCredential", "gone; fine")
        );
    }

    #[test]
    fn manual_available_reason_survives_unless_unavailable() {
        let mut base = defaults();
        base[0] = c(
            "Available",
            true,
            "OperatorDisabledByAdmin",
            "Credential minting is disabled by cluster admin",
        );
        let out = merge_worst(
            base.clone(),
            &[c("Available", false, "DeploymentUnavailable", "no pods")],
        );
        assert_eq!(
            out[0],
            c("Available", false, "DeploymentUnavailable", "no pods")
        );
        let out = merge_worst(base.clone(), &[c("Progressing", true, "Deploying", "x")]);
        assert_eq!(out[0], base[0]);
    }
}
