//! Comparing IAM and S3 policy documents, and describing their differences for people.
//!
//! AWS returns documents in a form that may differ from what was sent (a one-element list comes back
//! as a string or the other way round, keys and list items reordered). [`normalize_policy`] maps a
//! document to a canonical form so that [`policies_equivalent`] says whether a write would change
//! anything. [`trust_diff`] and [`permission_diff`] turn two documents into readable
//! [`DiffItem`]s: principals and subjects added or removed, actions added or removed, changed
//! conditions and resources.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::report::DiffItem;

/// The canonical form of a policy document: object keys sorted, list items normalized, sorted and
/// deduplicated, one-element lists replaced by their element.
pub fn normalize_policy(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> =
                m.iter().map(|(k, v)| (k, normalize_policy(v))).collect();
            let mut out = Map::new();
            for (k, v) in sorted {
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let mut norm: Vec<Value> = items.iter().map(normalize_policy).collect();
            norm.sort_by_key(|v| v.to_string());
            norm.dedup();
            if norm.len() == 1 {
                norm.pop().unwrap_or(Value::Null)
            } else {
                Value::Array(norm)
            }
        }
        other => other.clone(),
    }
}

/// True when two policy documents grant the same thing (see [`normalize_policy`]).
pub fn policies_equivalent(a: &Value, b: &Value) -> bool {
    normalize_policy(a) == normalize_policy(b)
}

/// A value that may be a string or a list of strings, as a list.
pub fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => Vec::new(),
    }
}

/// The federated principals of a trust policy.
pub fn trust_principals(doc: &Value) -> Vec<String> {
    statements(doc)
        .into_iter()
        .flat_map(|s| string_list(s.get("Principal").and_then(|p| p.get("Federated"))))
        .collect()
}

/// The `<issuer>:sub` condition keys and the ServiceAccount subjects a trust policy names.
pub fn trust_subjects(doc: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut keys = BTreeSet::new();
    let mut subjects = BTreeSet::new();
    for s in statements(doc) {
        let Some(Value::Object(cond)) = s.get("Condition") else {
            continue;
        };
        for (_op, inner) in cond {
            let Value::Object(inner) = inner else {
                continue;
            };
            for (k, v) in inner {
                if k.ends_with(":sub") {
                    keys.insert(k.clone());
                    subjects.extend(string_list(Some(v)));
                }
            }
        }
    }
    (keys, subjects)
}

/// What differs between two trust policies: federated principals, subject condition keys (the
/// issuer), ServiceAccount subjects; a note when only other fields differ.
pub fn trust_diff(before: &Value, after: &Value) -> Vec<DiffItem> {
    if policies_equivalent(before, after) {
        return Vec::new();
    }
    let mut out = DiffItem::set_diff(
        "principals",
        trust_principals(before),
        trust_principals(after),
    );
    let (bk, bs) = trust_subjects(before);
    let (ak, as_) = trust_subjects(after);
    out.extend(DiffItem::set_diff("issuer condition keys", bk, ak));
    out.extend(DiffItem::set_diff("subjects", bs, as_));
    if out.is_empty() {
        out.push(DiffItem::note(
            "the trust document differs in other fields; it will be replaced",
        ));
    }
    out
}

/// `(effect, action)` pairs of a permission policy, `Deny` actions prefixed `deny `.
fn effect_actions(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in statements(doc) {
        let deny = s.get("Effect").and_then(Value::as_str) == Some("Deny");
        for a in string_list(s.get("Action")) {
            out.insert(if deny { format!("deny {a}") } else { a });
        }
    }
    out
}

fn compact(v: Option<&Value>) -> Option<String> {
    v.map(|v| normalize_policy(v).to_string())
}

/// What differs between two permission policies: actions added or removed (over all statements),
/// then, statement by statement, changed resources and conditions; a note when only other fields
/// differ.
pub fn permission_diff(before: &Value, after: &Value) -> Vec<DiffItem> {
    if policies_equivalent(before, after) {
        return Vec::new();
    }
    let mut out = DiffItem::set_diff("actions", effect_actions(before), effect_actions(after));
    let (b, a) = (statements(before), statements(after));
    for i in 0..b.len().max(a.len()) {
        let (bs, as_) = (b.get(i), a.get(i));
        match (bs, as_) {
            (Some(bs), Some(as_)) => {
                for field in ["Resource", "Condition", "Effect"] {
                    let (x, y) = (compact(bs.get(field)), compact(as_.get(field)));
                    if x != y {
                        out.push(DiffItem::change(
                            format!("statement {i} {}", field.to_ascii_lowercase()),
                            x,
                            y,
                        ));
                    }
                }
            }
            (None, Some(s)) => out.push(DiffItem::note(format!(
                "statement {i} added: {}",
                normalize_policy(s)
            ))),
            (Some(s), None) => out.push(DiffItem::note(format!(
                "statement {i} removed: {}",
                normalize_policy(s)
            ))),
            (None, None) => {}
        }
    }
    if out.is_empty() {
        out.push(DiffItem::note(
            "the policy document differs in other fields; it will be replaced",
        ));
    }
    out
}

/// The diff lines of a new permission policy: every action it grants, and each statement's
/// condition.
pub fn permission_summary(doc: &Value) -> Vec<DiffItem> {
    let mut out = DiffItem::set_diff("actions", Vec::<String>::new(), effect_actions(doc));
    for (i, s) in statements(doc).iter().enumerate() {
        if let Some(c) = s.get("Condition") {
            out.push(DiffItem::change(
                format!("statement {i} condition"),
                None,
                compact(Some(c)),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_element_lists_and_order_do_not_make_a_difference() {
        let a = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"], "Principal": "*"}]});
        let b = json!({"Statement": {"Principal": "*", "Resource": "arn:aws:s3:::b/*",
            "Action": "s3:GetObject", "Effect": "Allow"}, "Version": "2012-10-17"});
        assert!(policies_equivalent(&a, &b));
        let c = json!({"Statement": [{"Effect": "Allow", "Action": ["b", "a"]}]});
        let d = json!({"Statement": [{"Effect": "Allow", "Action": ["a", "b", "a"]}]});
        assert!(policies_equivalent(&c, &d));
        let e = json!({"Statement": [{"Effect": "Allow", "Action": ["a"]}]});
        assert!(!policies_equivalent(&c, &e));
    }

    fn trust(principal: &str, key: &str, subs: &[&str]) -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Federated": principal}, "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {key: subs}}}]})
    }

    #[test]
    fn trust_diff_names_subjects_and_issuer() {
        let before = trust("arn:p1", "old/x:sub", &["system:serviceaccount:ns:a"]);
        let after = trust(
            "arn:p2",
            "new/x:sub",
            &["system:serviceaccount:ns:a", "system:serviceaccount:ns:b"],
        );
        let d = trust_diff(&before, &after);
        assert_eq!(
            d,
            vec![
                DiffItem::add("principals", vec!["arn:p2".into()]),
                DiffItem::remove("principals", vec!["arn:p1".into()]),
                DiffItem::add("issuer condition keys", vec!["new/x:sub".into()]),
                DiffItem::remove("issuer condition keys", vec!["old/x:sub".into()]),
                DiffItem::add("subjects", vec!["system:serviceaccount:ns:b".into()]),
            ]
        );
        assert!(trust_diff(&after, &after).is_empty());
    }

    #[test]
    fn permission_diff_names_actions_and_conditions() {
        let before = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["ec2:A", "ec2:B"], "Resource": "*",
             "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}}]});
        let after = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["ec2:A", "ec2:C"], "Resource": "*"}]});
        let d = permission_diff(&before, &after);
        assert_eq!(
            d,
            vec![
                DiffItem::add("actions", vec!["ec2:C".into()]),
                DiffItem::remove("actions", vec!["ec2:B".into()]),
                DiffItem::change(
                    "statement 0 condition",
                    Some(r#"{"StringEquals":{"aws:SourceVpc":"vpc-1"}}"#.into()),
                    None
                ),
            ]
        );
    }
}
