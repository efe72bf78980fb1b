//! Cloud-neutral reports of `ccoctl <cloud> verify` and `ccoctl <cloud> plan`, and their renderers.
//!
//! The data model is small on purpose so that AWS, GCP and Azure fill it alike:
//!
//! - **verify**: a [`VerifyReport`] is a list of [`Check`]s. Each check has a stable dotted `id`
//!   (`issuer.discovery`, `keys.kid`, `provider.client_ids`, `request.trust`, …), the `subject` it was
//!   run on (a URL, a role, a service account, a Secret), a [`CheckStatus`], a one-line message and,
//!   when it fails, the command that fixes it.
//! - **plan**: a [`PlanReport`] is a list of [`Change`]s, each a [`ChangeAction`] on one cloud
//!   resource of some `kind` (`s3-bucket`, `iam-role`, `iam-role-policy`, `service-account`,
//!   `custom-role`, `role-binding`, `workload-identity-provider`, `managed-identity`,
//!   `role-assignment`, `federated-credential`, …) with a readable [`DiffItem`] list: values added or
//!   removed in a field (actions, principals, subjects, client IDs), a field changed from one value to
//!   another (a condition, a thumbprint, an issuer), or free text.
//!
//! Renderers are pure functions returning `String`s: [`VerifyReport::to_text`],
//! [`VerifyReport::to_json`], [`PlanReport::to_text`], [`PlanReport::to_json`]. The JSON forms carry
//! `"version": 1` and are documented in the README ("JSON output of verify and plan"); fields are only
//! ever added within a version.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::json;

/// The version of the JSON schemas of [`VerifyReport::to_json`] and [`PlanReport::to_json`].
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The check holds.
    Pass,
    /// The check does not hold; something will break (or is broken). Makes `verify` exit 1.
    Fail,
    /// Worth a look, but nothing breaks (e.g. a published key that signs nothing any more).
    Warn,
}

impl CheckStatus {
    /// `PASS`, `FAIL` or `WARN`, as the text renderer prints it.
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Pass => "PASS",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Warn => "WARN",
        }
    }
}

/// One line of a `verify` report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable dotted id of the kind of check, e.g. `issuer.discovery`, `keys.kid`,
    /// `provider.client_ids`, `request.trust`. Monitoring may key on it.
    pub id: String,
    /// What was checked: a URL, a role name, a service account, a Secret `namespace/name`.
    pub subject: String,
    /// The outcome.
    pub status: CheckStatus,
    /// One line saying what was found.
    pub message: String,
    /// The command to run to fix a failure (or a warning), if there is one.
    pub fix: Option<String>,
}

impl Check {
    /// A passing check.
    pub fn pass(
        id: impl Into<String>,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(CheckStatus::Pass, id, subject, message, None)
    }

    /// A failing check with the command that fixes it (if any).
    pub fn fail(
        id: impl Into<String>,
        subject: impl Into<String>,
        message: impl Into<String>,
        fix: Option<String>,
    ) -> Self {
        Self::new(CheckStatus::Fail, id, subject, message, fix)
    }

    /// The contents of the Secret a request names, or the failed `request.secret` check when the
    /// Secret does not exist or could not be read (`fix` applies it again).
    pub fn secret_contents<'a, T>(
        read: &'a Result<Option<T>, String>,
        subject: &str,
        fix: &str,
    ) -> Result<&'a T, Check> {
        match read {
            Ok(Some(contents)) => Ok(contents),
            Ok(None) => Err(Self::fail(
                "request.secret",
                subject,
                "the Secret does not exist",
                Some(fix.to_string()),
            )),
            Err(e) => Err(Self::fail(
                "request.secret",
                subject,
                format!("cannot read the Secret: {e}"),
                Some(fix.to_string()),
            )),
        }
    }

    /// A warning, with an optional command that addresses it.
    pub fn warn(
        id: impl Into<String>,
        subject: impl Into<String>,
        message: impl Into<String>,
        fix: Option<String>,
    ) -> Self {
        Self::new(CheckStatus::Warn, id, subject, message, fix)
    }

    /// A check with every field given.
    pub fn new(
        status: CheckStatus,
        id: impl Into<String>,
        subject: impl Into<String>,
        message: impl Into<String>,
        fix: Option<String>,
    ) -> Self {
        Self {
            id: id.into(),
            subject: subject.into(),
            status,
            message: message.into(),
            fix,
        }
    }
}

/// Counts of checks by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifySummary {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
}

/// The result of `ccoctl <cloud> verify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// `aws`, `gcp` or `azure`.
    pub cloud: String,
    /// The `--name` of the installation.
    pub name: String,
    /// Every check, in the order they ran.
    pub checks: Vec<Check>,
}

impl VerifyReport {
    /// An empty report.
    pub fn new(cloud: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            cloud: cloud.into(),
            name: name.into(),
            checks: Vec::new(),
        }
    }

    /// Appends one check.
    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// Counts of checks by status.
    pub fn summary(&self) -> VerifySummary {
        let mut s = VerifySummary::default();
        for c in &self.checks {
            match c.status {
                CheckStatus::Pass => s.pass += 1,
                CheckStatus::Fail => s.fail += 1,
                CheckStatus::Warn => s.warn += 1,
            }
        }
        s
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == CheckStatus::Fail)
    }

    /// 0 when no check failed (warnings allowed), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.failures().next().is_none() {
            0
        } else {
            1
        }
    }

    /// One line per check (`STATUS  id  subject: message`), the fix of a failing or warning check
    /// on the next line, then a summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let id_width = self.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        for c in &self.checks {
            let _ = writeln!(
                out,
                "{}  {:<id_width$}  {}: {}",
                c.status.label(),
                c.id,
                c.subject,
                c.message
            );
            if c.status != CheckStatus::Pass {
                if let Some(fix) = &c.fix {
                    let _ = writeln!(out, "      {:<id_width$}  fix: {fix}", "");
                }
            }
        }
        let s = self.summary();
        let _ = writeln!(
            out,
            "{} verify {:?}: {} passed, {} failed, {} warnings",
            self.cloud, self.name, s.pass, s.fail, s.warn
        );
        out
    }

    /// The JSON form (schema version 1):
    ///
    /// ```json
    /// {"version": 1, "kind": "verify", "cloud": "aws", "name": "demo", "ok": false,
    ///  "summary": {"pass": 10, "fail": 1, "warn": 0},
    ///  "checks": [{"id": "keys.kid", "subject": "https://…", "status": "fail",
    ///              "message": "…", "fix": "ccoctl aws create-identity-provider …"}]}
    /// ```
    ///
    /// `fix` is `null` when there is none. `ok` is true exactly when the exit code is 0.
    pub fn to_json(&self) -> String {
        let s = self.summary();
        let value = json!({
            "version": REPORT_SCHEMA_VERSION,
            "kind": "verify",
            "cloud": self.cloud,
            "name": self.name,
            "ok": self.exit_code() == 0,
            "summary": s,
            "checks": self.checks,
        });
        pretty(&value)
    }
}

/// What `create-all` (or its parts) would do to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    /// The resource does not exist and a request (or the issuer) asks for it.
    Create,
    /// The resource exists but differs from what is asked for.
    Update,
    /// The resource exists (and is ours) but no request asks for it any more.
    Delete,
}

impl ChangeAction {
    /// The terraform-like marker: `+`, `~` or `-`.
    pub fn symbol(self) -> char {
        match self {
            ChangeAction::Create => '+',
            ChangeAction::Update => '~',
            ChangeAction::Delete => '-',
        }
    }

    /// `create`, `update` or `delete`.
    pub fn word(self) -> &'static str {
        match self {
            ChangeAction::Create => "create",
            ChangeAction::Update => "update",
            ChangeAction::Delete => "delete",
        }
    }
}

/// One readable line of the difference between what exists and what is asked for.
///
/// `field` names what differs in words a reader knows: `actions`, `principals`, `subjects`,
/// `client_ids`, `thumbprint`, `condition`, `trust`, `permissions_boundary`, `tag`, … and may be
/// qualified (`statement 2 actions`, `condition StringEquals aws:SourceVpc`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum DiffItem {
    /// Values that will be present and are not yet (actions granted, subjects trusted, …).
    Add { field: String, values: Vec<String> },
    /// Values present today that will go away.
    Remove { field: String, values: Vec<String> },
    /// A single-valued field that changes; `None` means absent.
    Change {
        field: String,
        before: Option<String>,
        after: Option<String>,
    },
    /// Free text, e.g. "policy document will be written" or "the request that asked for it is gone".
    Note { text: String },
}

impl DiffItem {
    /// Values added to `field`.
    pub fn add(field: impl Into<String>, values: Vec<String>) -> Self {
        DiffItem::Add {
            field: field.into(),
            values,
        }
    }

    /// Values removed from `field`.
    pub fn remove(field: impl Into<String>, values: Vec<String>) -> Self {
        DiffItem::Remove {
            field: field.into(),
            values,
        }
    }

    /// `field` goes from `before` to `after`.
    pub fn change(field: impl Into<String>, before: Option<String>, after: Option<String>) -> Self {
        DiffItem::Change {
            field: field.into(),
            before,
            after,
        }
    }

    /// Free text.
    pub fn note(text: impl Into<String>) -> Self {
        DiffItem::Note { text: text.into() }
    }

    /// The set difference of two value lists as at most one [`DiffItem::Add`] and one
    /// [`DiffItem::Remove`], values sorted and deduplicated; empty when the sets are equal.
    pub fn set_diff<B, A>(field: &str, before: B, after: A) -> Vec<DiffItem>
    where
        B: IntoIterator,
        B::Item: Into<String>,
        A: IntoIterator,
        A::Item: Into<String>,
    {
        let before: BTreeSet<String> = before.into_iter().map(Into::into).collect();
        let after: BTreeSet<String> = after.into_iter().map(Into::into).collect();
        let added: Vec<String> = after.difference(&before).cloned().collect();
        let removed: Vec<String> = before.difference(&after).cloned().collect();
        let mut out = Vec::new();
        if !added.is_empty() {
            out.push(DiffItem::add(field, added));
        }
        if !removed.is_empty() {
            out.push(DiffItem::remove(field, removed));
        }
        out
    }

    fn render(&self, out: &mut String, indent: &str) {
        let _ = match self {
            DiffItem::Add { field, values } => {
                writeln!(out, "{indent}+ {field}: {}", values.join(", "))
            }
            DiffItem::Remove { field, values } => {
                writeln!(out, "{indent}- {field}: {}", values.join(", "))
            }
            DiffItem::Change {
                field,
                before,
                after,
            } => writeln!(
                out,
                "{indent}~ {field}: {} -> {}",
                before.as_deref().unwrap_or("(none)"),
                after.as_deref().unwrap_or("(none)")
            ),
            DiffItem::Note { text } => writeln!(out, "{indent}# {text}"),
        };
    }
}

/// Diff items on one line, for a check's message: `missing actions: a, b; unexpected subjects: c;
/// condition is x instead of y`.
pub fn summarize(items: &[DiffItem]) -> String {
    items
        .iter()
        .map(|d| match d {
            DiffItem::Add { field, values } => format!("missing {field}: {}", values.join(", ")),
            DiffItem::Remove { field, values } => {
                format!("unexpected {field}: {}", values.join(", "))
            }
            DiffItem::Change {
                field,
                before,
                after,
            } => format!(
                "{field} is {} instead of {}",
                before.as_deref().unwrap_or("absent"),
                after.as_deref().unwrap_or("absent")
            ),
            DiffItem::Note { text } => text.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One change of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Create, update or delete.
    pub action: ChangeAction,
    /// The kind of resource: `s3-bucket`, `s3-object`, `iam-oidc-provider`, `iam-role`,
    /// `iam-role-policy`, `service-account`, `custom-role`, `role-binding`,
    /// `workload-identity-pool`, `workload-identity-provider`, `managed-identity`,
    /// `role-assignment`, `federated-credential`, …
    pub kind: String,
    /// The resource's name (or URL / ARN / scope when that is how it is known).
    pub name: String,
    /// What differs; may be empty (e.g. a plain create).
    pub diff: Vec<DiffItem>,
}

impl Change {
    /// A change with no diff lines yet.
    pub fn new(action: ChangeAction, kind: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            action,
            kind: kind.into(),
            name: name.into(),
            diff: Vec::new(),
        }
    }

    /// Adds diff lines (builder style).
    pub fn with_diff(mut self, diff: impl IntoIterator<Item = DiffItem>) -> Self {
        self.diff.extend(diff);
        self
    }
}

/// Counts of changes by action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
}

/// The result of `ccoctl <cloud> plan`: what `create-all` (with the same flags) would change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanReport {
    /// `aws`, `gcp` or `azure`.
    pub cloud: String,
    /// The `--name` of the installation.
    pub name: String,
    /// Every change, in the order `create-all` makes them.
    pub changes: Vec<Change>,
    /// Things worth knowing that are not changes, e.g. an owned role no request asks for that
    /// `create-all` keeps because it was run without the option that deletes such roles.
    #[serde(default)]
    pub notes: Vec<String>,
}

impl PlanReport {
    /// An empty plan.
    pub fn new(cloud: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            cloud: cloud.into(),
            name: name.into(),
            changes: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Counts of changes by action.
    pub fn summary(&self) -> PlanSummary {
        let mut s = PlanSummary::default();
        for c in &self.changes {
            match c.action {
                ChangeAction::Create => s.create += 1,
                ChangeAction::Update => s.update += 1,
                ChangeAction::Delete => s.delete += 1,
            }
        }
        s
    }

    /// `true` when there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// As `terraform plan -detailed-exitcode`: 0 when there is nothing to do, 2 when there are
    /// changes. (Errors exit 1; they never make a report.)
    pub fn exit_code(&self) -> i32 {
        if self.is_empty() {
            0
        } else {
            2
        }
    }

    /// Terraform-like text: `+ create <kind> <name>`, `~ update …`, `- delete …`, each followed by
    /// its indented diff lines, then the notes and a summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.changes {
            let _ = writeln!(
                out,
                "{} {} {} {}",
                c.action.symbol(),
                c.action.word(),
                c.kind,
                c.name
            );
            for d in &c.diff {
                d.render(&mut out, "    ");
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        let s = self.summary();
        if self.is_empty() {
            let _ = writeln!(
                out,
                "{} plan {:?}: no changes; the cloud matches the requests",
                self.cloud, self.name
            );
        } else {
            let _ = writeln!(
                out,
                "{} plan {:?}: {} to create, {} to update, {} to delete",
                self.cloud, self.name, s.create, s.update, s.delete
            );
        }
        out
    }

    /// The JSON form (schema version 1):
    ///
    /// ```json
    /// {"version": 1, "kind": "plan", "cloud": "aws", "name": "demo",
    ///  "summary": {"create": 1, "update": 1, "delete": 0},
    ///  "changes": [{"action": "update", "kind": "iam-role-policy", "name": "demo-ns-secret",
    ///               "diff": [{"op": "add", "field": "actions", "values": ["s3:GetObject"]},
    ///                        {"op": "change", "field": "condition", "before": "…", "after": null},
    ///                        {"op": "note", "text": "…"}]}],
    ///  "notes": []}
    /// ```
    pub fn to_json(&self) -> String {
        let value = json!({
            "version": REPORT_SCHEMA_VERSION,
            "kind": "plan",
            "cloud": self.cloud,
            "name": self.name,
            "summary": self.summary(),
            "changes": self.changes,
            "notes": self.notes,
        });
        pretty(&value)
    }
}

fn pretty(value: &serde_json::Value) -> String {
    // Serializing a `Value` cannot fail (all keys are strings).
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_verify() -> VerifyReport {
        let mut r = VerifyReport::new("aws", "demo");
        r.push(Check::pass(
            "issuer.discovery",
            "https://demo-oidc.s3.us-east-1.amazonaws.com",
            "discovery document served anonymously over HTTPS",
        ));
        r.push(Check::fail(
            "keys.kid",
            "https://demo-oidc.s3.us-east-1.amazonaws.com/keys.json",
            "kid abc123 of serviceaccount-signer.public is not published",
            Some("ccoctl aws create-identity-provider --name demo --region us-east-1 --public-key-file serviceaccount-signer.public".into()),
        ));
        r.push(Check::warn(
            "keys.unused",
            "https://demo-oidc.s3.us-east-1.amazonaws.com/keys.json",
            "published kid old999 signs nothing any more",
            Some("ccoctl aws create-identity-provider --name demo --region us-east-1 --prune-old-keys".into()),
        ));
        r
    }

    fn sample_plan() -> PlanReport {
        let mut p = PlanReport::new("aws", "demo");
        p.changes.push(
            Change::new(
                ChangeAction::Create,
                "iam-role",
                "demo-openshift-image-registry-installer",
            )
            .with_diff([DiffItem::add(
                "subjects",
                vec!["system:serviceaccount:openshift-image-registry:registry".into()],
            )]),
        );
        p.changes.push(
            Change::new(
                ChangeAction::Update,
                "iam-role-policy",
                "demo-openshift-machine-api-aws",
            )
            .with_diff(
                DiffItem::set_diff(
                    "actions",
                    ["ec2:DescribeImages", "ec2:RunInstances"],
                    [
                        "ec2:DescribeImages",
                        "ec2:RunInstances",
                        "ec2:DescribeVpcs",
                        "kms:Decrypt",
                    ],
                )
                .into_iter()
                .chain([DiffItem::change(
                    "condition StringEquals aws:ResourceTag/owner",
                    Some("\"a\"".into()),
                    None,
                )]),
            ),
        );
        p.changes.push(
            Change::new(
                ChangeAction::Delete,
                "iam-role",
                "demo-openshift-retired-creds",
            )
            .with_diff([DiffItem::note("no request asks for this role any more")]),
        );
        p.notes.push("role demo-x is kept".into());
        p
    }

    #[test]
    fn verify_exit_code_is_one_only_when_a_check_fails() {
        let mut r = VerifyReport::new("aws", "demo");
        assert_eq!(r.exit_code(), 0);
        r.push(Check::warn("keys.unused", "x", "y", None));
        assert_eq!(r.exit_code(), 0);
        r.push(Check::fail("keys.kid", "x", "y", None));
        assert_eq!(r.exit_code(), 1);
    }

    #[test]
    fn plan_exit_code_is_two_when_there_are_changes() {
        let mut p = PlanReport::new("aws", "demo");
        p.notes.push("a note is not a change".into());
        assert_eq!(p.exit_code(), 0);
        p.changes
            .push(Change::new(ChangeAction::Create, "iam-role", "r"));
        assert_eq!(p.exit_code(), 2);
    }

    #[test]
    fn set_diff_reports_added_and_removed_values_sorted() {
        let d = DiffItem::set_diff("actions", ["b", "a", "c"], ["c", "d", "a", "d"]);
        assert_eq!(
            d,
            vec![
                DiffItem::add("actions", vec!["d".into()]),
                DiffItem::remove("actions", vec!["b".into()]),
            ]
        );
        assert!(DiffItem::set_diff("actions", ["a"], ["a"]).is_empty());
    }

    #[test]
    fn verify_text_rendering() {
        insta::assert_snapshot!(sample_verify().to_text());
    }

    #[test]
    fn verify_json_rendering() {
        insta::assert_snapshot!(sample_verify().to_json());
    }

    #[test]
    fn plan_text_rendering() {
        insta::assert_snapshot!(sample_plan().to_text());
    }

    #[test]
    fn empty_plan_text_rendering() {
        insta::assert_snapshot!(PlanReport::new("gcp", "demo").to_text());
    }

    #[test]
    fn plan_json_rendering() {
        insta::assert_snapshot!(sample_plan().to_json());
    }

    #[test]
    fn json_forms_read_back_into_the_types() {
        let v = sample_verify();
        let value: serde_json::Value = serde_json::from_str(&v.to_json()).expect("json");
        let checks: Vec<Check> = serde_json::from_value(value["checks"].clone()).expect("checks");
        assert_eq!(checks, v.checks);
        assert_eq!(value["summary"]["fail"], 1);
        let p = sample_plan();
        let value: serde_json::Value = serde_json::from_str(&p.to_json()).expect("json");
        let changes: Vec<Change> =
            serde_json::from_value(value["changes"].clone()).expect("changes");
        assert_eq!(changes, p.changes);
    }
}
