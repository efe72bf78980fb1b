//! IAM policies: pure edits of the bindings, and the read-modify-write loop that applies them.
//!
//! A policy is edited only where `ccoctl` owns it: the bindings of one member (a service account it
//! made), or the members of one role that match a prefix (the federated principals of its pool).
//! Conditional bindings are never touched. The loop re-reads and re-applies the edit when another
//! writer changed the policy in between (the etag no longer matches).

use std::time::Duration;

use serde_json::{json, Value};

use google_cloud_iam_v1::model::GetPolicyOptions;

use crate::official::{gax_error, policy_json, policy_model};
use crate::{enc, eventually, Gcp, GcpError};

/// Which policy.
#[derive(Clone, Debug)]
pub enum PolicyTarget {
    /// The project's (Resource Manager).
    Project,
    /// A service account's, by email.
    ServiceAccount(String),
    /// A bucket's (Cloud Storage).
    Bucket(String),
}

fn bindings_mut(policy: &mut Value) -> Option<&mut Vec<Value>> {
    if !policy["bindings"].is_array() {
        policy["bindings"] = json!([]);
    }
    policy["bindings"].as_array_mut()
}

fn unconditional(b: &Value) -> bool {
    b.get("condition").is_none_or(Value::is_null)
}

/// Makes `member` hold exactly `roles` (unconditionally). Returns whether anything changed.
pub fn set_member_roles(policy: &mut Value, member: &str, roles: &[String]) -> bool {
    let Some(bindings) = bindings_mut(policy) else {
        return false;
    };
    let mut changed = false;
    for b in bindings.iter_mut().filter(|b| unconditional(b)) {
        let role = b["role"].as_str().unwrap_or("").to_string();
        let Some(members) = b["members"].as_array_mut() else {
            continue;
        };
        let has = members.iter().any(|m| m == member);
        let want = roles.contains(&role);
        if has && !want {
            members.retain(|m| m != member);
            changed = true;
        } else if !has && want {
            members.push(Value::String(member.into()));
            changed = true;
        }
    }
    for role in roles {
        let present = bindings
            .iter()
            .any(|b| unconditional(b) && b["role"] == role.as_str());
        if !present {
            bindings.push(json!({"role": role, "members": [member]}));
            changed = true;
        }
    }
    bindings.retain(|b| b["members"].as_array().is_some_and(|m| !m.is_empty()));
    changed
}

/// Makes the members of `role` that start with `owned_prefix` exactly `wanted`; other members stay.
pub fn set_role_members(
    policy: &mut Value,
    role: &str,
    owned_prefix: &str,
    wanted: &[String],
) -> bool {
    let Some(bindings) = bindings_mut(policy) else {
        return false;
    };
    let mut changed = false;
    let idx = bindings
        .iter()
        .position(|b| unconditional(b) && b["role"] == role);
    let i = match idx {
        Some(i) => i,
        None if wanted.is_empty() => return false,
        None => {
            bindings.push(json!({"role": role, "members": []}));
            bindings.len() - 1
        }
    };
    if let Some(members) = bindings[i]["members"].as_array_mut() {
        let before = members.len();
        members.retain(|m| {
            let s = m.as_str().unwrap_or("");
            !s.starts_with(owned_prefix) || wanted.iter().any(|w| w == s)
        });
        changed |= members.len() != before;
        for w in wanted {
            if !members.iter().any(|m| m == w.as_str()) {
                members.push(Value::String(w.clone()));
                changed = true;
            }
        }
    }
    bindings.retain(|b| b["members"].as_array().is_some_and(|m| !m.is_empty()));
    changed
}

impl Gcp {
    fn bucket_policy_url(&self, b: &str) -> String {
        format!("{}/storage/v1/b/{}/iam", self.endpoints.storage, enc(b))
    }

    fn target_name(&self, t: &PolicyTarget) -> String {
        match t {
            PolicyTarget::Project => format!("project {}", self.project),
            PolicyTarget::ServiceAccount(e) => format!("service account {e}"),
            PolicyTarget::Bucket(b) => format!("bucket {b}"),
        }
    }

    /// One read of the policy of `t`.
    async fn read_policy(&self, t: &PolicyTarget, name: &str) -> Result<Value, GcpError> {
        let options = GetPolicyOptions::new().set_requested_policy_version(3);
        let p = match t {
            PolicyTarget::Bucket(b) => {
                let url = self.bucket_policy_url(b);
                return self
                    .call("getIamPolicy", name, reqwest::Method::GET, &url, None)
                    .await;
            }
            PolicyTarget::Project => self
                .clients
                .projects
                .get_iam_policy()
                .set_resource(self.project_name())
                .set_options(options)
                .send()
                .await
                .map_err(|e| gax_error("resourcemanager.projects.getIamPolicy", name, e))?,
            PolicyTarget::ServiceAccount(email) => self
                .clients
                .iam
                .get_iam_policy()
                .set_resource(self.account_name(email))
                .set_options(options)
                .send()
                .await
                .map_err(|e| gax_error("iam.serviceAccounts.getIamPolicy", name, e))?,
        };
        policy_json("getIamPolicy", name, &p)
    }

    /// One write of the policy of `t`.
    async fn write_policy(
        &self,
        t: &PolicyTarget,
        name: &str,
        policy: &Value,
    ) -> Result<(), GcpError> {
        match t {
            PolicyTarget::Bucket(b) => {
                let url = self.bucket_policy_url(b);
                self.call(
                    "setIamPolicy",
                    name,
                    reqwest::Method::PUT,
                    &url,
                    Some(policy),
                )
                .await?;
            }
            PolicyTarget::Project => {
                self.clients
                    .projects
                    .set_iam_policy()
                    .set_resource(self.project_name())
                    .set_policy(policy_model("setIamPolicy", name, policy)?)
                    .send()
                    .await
                    .map_err(|e| gax_error("resourcemanager.projects.setIamPolicy", name, e))?;
            }
            PolicyTarget::ServiceAccount(email) => {
                self.clients
                    .iam
                    .set_iam_policy()
                    .set_resource(self.account_name(email))
                    .set_policy(policy_model("setIamPolicy", name, policy)?)
                    .send()
                    .await
                    .map_err(|e| gax_error("iam.serviceAccounts.setIamPolicy", name, e))?;
            }
        }
        Ok(())
    }

    /// Reads the policy of `t` (waiting for a just-created object to become visible).
    pub async fn get_policy(&self, t: &PolicyTarget) -> Result<Value, GcpError> {
        let name = self.target_name(t);
        eventually(|| self.read_policy(t, &name)).await
    }

    /// Applies `edit` to the policy of `t` with read-modify-write, redoing it on concurrent changes
    /// and waiting for members that are not visible yet. Returns whether the policy changed.
    pub async fn modify_policy<F>(&self, t: &PolicyTarget, mut edit: F) -> Result<bool, GcpError>
    where
        F: FnMut(&mut Value) -> bool,
    {
        let name = self.target_name(t);
        let mut conflicts = 0u32;
        loop {
            let mut policy = self.get_policy(t).await?;
            if !edit(&mut policy) {
                return Ok(false);
            }
            let result = eventually(|| self.write_policy(t, &name, &policy)).await;
            match result {
                Ok(()) => return Ok(true),
                Err(e) if e.is_concurrent_change() && conflicts < 30 => {
                    conflicts += 1;
                    let jitter = rand::random::<u64>() % 200;
                    tracing::debug!(target = %name, conflicts, "concurrent policy change, retrying");
                    tokio::time::sleep(Duration::from_millis(
                        50 * u64::from(conflicts.min(10)) + jitter,
                    ))
                    .await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_gets_exactly_its_roles_and_others_are_untouched() {
        let mut p = json!({"bindings": [
            {"role": "roles/a", "members": ["serviceAccount:me", "user:x"]},
            {"role": "roles/b", "members": ["serviceAccount:me"]},
            {"role": "roles/c", "members": ["serviceAccount:me"], "condition": {"expression": "true"}},
        ]});
        assert!(set_member_roles(
            &mut p,
            "serviceAccount:me",
            &["roles/a".into(), "roles/d".into()]
        ));
        assert_eq!(
            p["bindings"],
            json!([
                {"role": "roles/a", "members": ["serviceAccount:me", "user:x"]},
                {"role": "roles/c", "members": ["serviceAccount:me"], "condition": {"expression": "true"}},
                {"role": "roles/d", "members": ["serviceAccount:me"]},
            ])
        );
        assert!(!set_member_roles(
            &mut p,
            "serviceAccount:me",
            &["roles/a".into(), "roles/d".into()]
        ));
        assert!(set_member_roles(&mut p, "serviceAccount:me", &[]));
        assert_eq!(p["bindings"].as_array().expect("b").len(), 2);
    }

    #[test]
    fn only_owned_members_of_a_role_are_replaced() {
        let mut p = json!({"bindings": [{"role": "roles/iam.workloadIdentityUser", "members": ["principal://pool/subject/old", "user:keep"]}]});
        assert!(set_role_members(
            &mut p,
            "roles/iam.workloadIdentityUser",
            "principal://pool/",
            &["principal://pool/subject/new".into()]
        ));
        assert_eq!(
            p["bindings"][0]["members"],
            json!(["user:keep", "principal://pool/subject/new"])
        );
        let mut empty = json!({});
        assert!(!set_role_members(&mut empty, "r", "p", &[]));
        assert!(set_role_members(&mut empty, "r", "p", &["p1".into()]));
    }
}
