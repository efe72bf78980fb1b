//! AWS mint mode as plain data: the user's policy document and the steps that bring an IAM user,
//! its inline policy, tags and access keys to the desired state.
//!
//! [`plan_mint`] compares an [`AwsMint`] request with what IAM holds ([`MintObserved`]) and returns
//! [`MintStep`]s. A missing user yields only [`MintStep::CreateUser`]: the executor creates it,
//! observes again and plans again, so the policy can name the user's ARN. Key handling keeps exactly
//! one key: a new key is created when the Secret lacks a valid one or the root credential changed,
//! and every other key is removed (after the new key is written, so consumers never see a gap).

use cco_api::StatementEntry;
use cco_aws::IamUser;
use cco_core::secrets::{self, SecretData};
use serde_json::{json, Value};

use crate::plan::AwsMint;

/// The user's inline policy: exactly the requested statements plus `iam:GetUser` on itself.
pub fn user_policy(statements: &[StatementEntry], user_arn: &str) -> Value {
    let (mut doc, _notes) = cco_core::aws::permission_policy(statements);
    if let Some(list) = doc.get_mut("Statement").and_then(Value::as_array_mut) {
        list.push(json!({"Effect": "Allow", "Action": ["iam:GetUser"], "Resource": user_arn}));
    }
    doc
}

/// What IAM and the target Secret hold for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct MintObserved {
    pub user: Option<IamUser>,
    /// The user's inline policy document, if any.
    pub policy: Option<String>,
    pub keys: Vec<String>,
    /// Access key ID in the target Secret.
    pub secret_key_id: Option<String>,
    /// The Secret has both keys and a matching `credentials` file.
    pub secret_complete: bool,
}

impl MintObserved {
    /// Reads the Secret half of the observation.
    pub fn secret_fields(data: Option<&SecretData>) -> (Option<String>, bool) {
        let Some(d) = data else {
            return (None, false);
        };
        let id = d.get_str(secrets::AWS_ACCESS_KEY_ID).map(str::to_owned);
        let complete = match (id.as_deref(), d.get_str(secrets::AWS_SECRET_ACCESS_KEY)) {
            (Some(i), Some(s)) if !i.is_empty() && !s.is_empty() => {
                d.get_str(secrets::AWS_CREDENTIALS)
                    == Some(secrets::aws_static_credentials_file(i, s).as_str())
            }
            _ => false,
        };
        (id, complete)
    }
}

/// One change to make in IAM (and, for a new key, to the Secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MintStep {
    CreateUser {
        tags: Vec<(String, String)>,
    },
    TagUser {
        tags: Vec<(String, String)>,
    },
    PutPolicy {
        document: String,
    },
    DeleteKeys {
        ids: Vec<String>,
    },
    /// Create a key and write it to the target Secret.
    CreateKeyAndWriteSecret,
}

impl MintStep {
    /// What the step does, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            MintStep::CreateUser { .. } => "create the IAM user",
            MintStep::TagUser { .. } => "tag the IAM user",
            MintStep::PutPolicy { .. } => "update the user policy",
            MintStep::DeleteKeys { .. } => "delete unused access keys",
            MintStep::CreateKeyAndWriteSecret => "create an access key",
        }
    }
}

fn same_policy(current: Option<&str>, desired: &Value) -> bool {
    current
        .and_then(|c| serde_json::from_str::<Value>(c).ok())
        .is_some_and(|c| &c == desired)
}

/// The steps that bring IAM and the Secret in line with `req`. Empty when nothing is to do.
pub fn plan_mint(req: &AwsMint, obs: &MintObserved) -> Vec<MintStep> {
    let Some(user) = &obs.user else {
        return vec![MintStep::CreateUser {
            tags: req.tags.clone(),
        }];
    };
    let mut steps = Vec::new();
    let missing: Vec<(String, String)> = req
        .tags
        .iter()
        .filter(|t| !user.tags.contains(t))
        .cloned()
        .collect();
    if !missing.is_empty() {
        steps.push(MintStep::TagUser { tags: missing });
    }
    let desired = user_policy(&req.statements, &user.arn);
    if !same_policy(obs.policy.as_deref(), &desired) {
        steps.push(MintStep::PutPolicy {
            document: desired.to_string(),
        });
    }
    steps.extend(key_steps(
        req.rotate,
        &obs.keys,
        obs.secret_key_id.as_deref(),
        obs.secret_complete,
    ));
    steps
}

/// Key handling shared by AWS and GCP: keep exactly one key, the one in the Secret. A new key is
/// made when the root credential changed (`rotate`) or the Secret lacks a valid key; keys the Secret
/// does not use are removed first (AWS allows two keys, GCP ten), and the replaced key after the new
/// one is written, so consumers never see a gap.
pub fn key_steps(
    rotate: bool,
    keys: &[String],
    secret_key_id: Option<&str>,
    secret_complete: bool,
) -> Vec<MintStep> {
    let mut steps = Vec::new();
    let current = secret_key_id.filter(|id| keys.iter().any(|k| k == id));
    let need_new = rotate || current.is_none() || !secret_complete;
    let unused: Vec<String> = keys
        .iter()
        .filter(|k| Some(k.as_str()) != current)
        .cloned()
        .collect();
    if !unused.is_empty() {
        steps.push(MintStep::DeleteKeys { ids: unused });
    }
    if need_new {
        steps.push(MintStep::CreateKeyAndWriteSecret);
        if let Some(old) = current {
            steps.push(MintStep::DeleteKeys {
                ids: vec![old.to_string()],
            });
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(rotate: bool) -> AwsMint {
        AwsMint {
            user: "infra-cr-abcde".into(),
            policy_name: "infra-cr-abcde-policy".into(),
            user_is_new: false,
            statements: vec![StatementEntry {
                effect: "Allow".into(),
                action: vec!["s3:GetObject".into()],
                resource: "*".into(),
                policy_condition: Default::default(),
            }],
            tags: vec![("kubernetes.io/cluster/infra".into(), "owned".into())],
            rotate,
            region: "us-east-1".into(),
            root_fingerprint: "f".into(),
        }
    }

    fn user() -> IamUser {
        IamUser {
            name: "infra-cr-abcde".into(),
            arn: "arn:aws:iam::123456789012:user/infra-cr-abcde".into(),
            tags: vec![("kubernetes.io/cluster/infra".into(), "owned".into())],
        }
    }

    fn synced(keys: &[&str], secret_key: Option<&str>) -> MintObserved {
        MintObserved {
            user: Some(user()),
            policy: Some(user_policy(&req(false).statements, &user().arn).to_string()),
            keys: keys.iter().map(|s| s.to_string()).collect(),
            secret_key_id: secret_key.map(str::to_owned),
            secret_complete: secret_key.is_some(),
        }
    }

    #[test]
    fn policy_is_exactly_the_request_plus_get_user_on_itself() {
        let p = user_policy(&req(false).statements, "arn:aws:iam::1:user/u");
        assert_eq!(
            p,
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"},
                {"Effect": "Allow", "Action": ["iam:GetUser"], "Resource": "arn:aws:iam::1:user/u"}
            ]})
        );
    }

    #[test]
    fn a_missing_user_is_created_first_and_alone() {
        let obs = MintObserved {
            user: None,
            policy: None,
            keys: vec![],
            secret_key_id: None,
            secret_complete: false,
        };
        assert_eq!(
            plan_mint(&req(false), &obs),
            vec![MintStep::CreateUser {
                tags: req(false).tags
            }]
        );
    }

    #[test]
    fn a_new_user_gets_policy_and_one_key() {
        let mut obs = synced(&[], None);
        obs.policy = None;
        let steps = plan_mint(&req(false), &obs);
        assert!(matches!(steps[0], MintStep::PutPolicy { .. }));
        assert_eq!(steps[1], MintStep::CreateKeyAndWriteSecret);
        assert_eq!(steps.len(), 2);
    }

    #[test]
    fn an_up_to_date_user_needs_nothing() {
        assert!(plan_mint(&req(false), &synced(&["AK1"], Some("AK1"))).is_empty());
    }

    #[test]
    fn rotation_creates_a_key_then_deletes_the_old_one() {
        assert_eq!(
            plan_mint(&req(true), &synced(&["AK1"], Some("AK1"))),
            vec![
                MintStep::CreateKeyAndWriteSecret,
                MintStep::DeleteKeys {
                    ids: vec!["AK1".into()]
                }
            ]
        );
    }

    #[test]
    fn a_deleted_secret_gets_a_new_key_and_stray_keys_are_removed_first() {
        assert_eq!(
            plan_mint(&req(false), &synced(&["AK1", "AK2"], None)),
            vec![
                MintStep::DeleteKeys {
                    ids: vec!["AK1".into(), "AK2".into()]
                },
                MintStep::CreateKeyAndWriteSecret
            ]
        );
        assert_eq!(
            plan_mint(&req(false), &synced(&["AK1", "AK2"], Some("AK2"))),
            vec![MintStep::DeleteKeys {
                ids: vec!["AK1".into()]
            }]
        );
    }

    #[test]
    fn missing_tags_and_a_changed_policy_are_fixed() {
        let mut obs = synced(&["AK1"], Some("AK1"));
        obs.user = Some(IamUser {
            tags: vec![],
            ..user()
        });
        obs.policy = Some("{\"Version\":\"2012-10-17\",\"Statement\":[]}".into());
        let steps = plan_mint(&req(false), &obs);
        assert_eq!(steps.len(), 2);
        assert!(matches!(steps[0], MintStep::TagUser { .. }));
        assert!(matches!(steps[1], MintStep::PutPolicy { .. }));
    }

    #[test]
    fn secret_fields_require_a_matching_credentials_file() {
        let good = secrets::aws_access_key_data("AK", "S");
        assert_eq!(
            MintObserved::secret_fields(Some(&good)),
            (Some("AK".into()), true)
        );
        let mut bad = good.clone();
        bad.0.remove(secrets::AWS_CREDENTIALS);
        assert_eq!(
            MintObserved::secret_fields(Some(&bad)),
            (Some("AK".into()), false)
        );
    }

    #[test]
    fn key_steps_keep_exactly_the_secret_key() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(key_steps(false, &ids(&["k1"]), Some("k1"), true).is_empty());
        assert_eq!(
            key_steps(true, &ids(&["k1", "k0"]), Some("k1"), true),
            vec![
                MintStep::DeleteKeys { ids: ids(&["k0"]) },
                MintStep::CreateKeyAndWriteSecret,
                MintStep::DeleteKeys { ids: ids(&["k1"]) },
            ]
        );
        assert_eq!(
            key_steps(false, &ids(&["k1"]), Some("gone"), true),
            vec![
                MintStep::DeleteKeys { ids: ids(&["k1"]) },
                MintStep::CreateKeyAndWriteSecret,
            ]
        );
        assert_eq!(
            key_steps(false, &[], None, false),
            vec![MintStep::CreateKeyAndWriteSecret]
        );
    }
}
