//! Mint mode: one IAM user per CredentialsRequest, driven by the operator.
//!
//! [`Minter`] wraps an IAM and an STS client built from *explicit* credentials (the cluster's root
//! credential, read from a Secret), not from the process environment. Every call maps its SDK error to
//! [`AwsError`] and every "not found" to `Ok(None)`/success, so the operator's plan can be re-run
//! after any failure and converge. The operations are narrow on purpose: read a user with its tags,
//! create or tag it, read or put its one inline policy, list, create and delete its access keys, and
//! delete it with everything attached. [`Minter::simulate`] wraps `iam:SimulatePrincipalPolicy`, the
//! call that decides between mint and passthrough in the default mode; it may use its own endpoint,
//! because local emulators do not implement it.

use std::fmt;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_iam::config::Credentials;

use crate::idp::iam_tags;
use crate::AwsError;

/// How to reach IAM with a given credential.
#[derive(Clone)]
pub struct MintConnect {
    pub region: String,
    /// Endpoint override for IAM and STS (e.g. a local emulator). `None`: the AWS default.
    pub endpoint: Option<String>,
    /// Endpoint override for `iam:SimulatePrincipalPolicy` only. `None`: same as `endpoint`.
    pub simulate_endpoint: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for MintConnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintConnect")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("simulate_endpoint", &self.simulate_endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// An IAM user as the operator needs to see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IamUser {
    pub name: String,
    pub arn: String,
    pub tags: Vec<(String, String)>,
}

/// A newly created access key. The secret half is only ever returned by `CreateAccessKey`.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// IAM and STS clients holding one explicit credential.
#[derive(Clone, Debug)]
pub struct Minter {
    iam: aws_sdk_iam::Client,
    simulate_iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
}

fn is_no_such_entity(e: &AwsError) -> bool {
    e.code() == Some("NoSuchEntity")
}

impl Minter {
    /// Builds clients for `c`. No call is made.
    pub async fn connect(c: &MintConnect) -> Minter {
        let creds = Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.clone(),
            None,
            None,
            "cloud-credential-operator-root",
        );
        let load = |endpoint: Option<String>| {
            let mut loader = aws_config::defaults(BehaviorVersion::latest())
                .region(Region::new(c.region.clone()))
                .credentials_provider(creds.clone());
            if let Some(e) = endpoint {
                loader = loader.endpoint_url(e);
            }
            loader.load()
        };
        let conf = load(c.endpoint.clone()).await;
        let sim_conf = match &c.simulate_endpoint {
            Some(e) => load(Some(e.clone())).await,
            None => conf.clone(),
        };
        Minter {
            iam: aws_sdk_iam::Client::new(&conf),
            simulate_iam: aws_sdk_iam::Client::new(&sim_conf),
            sts: aws_sdk_sts::Client::new(&conf),
        }
    }

    /// The ARN of the credential itself (`sts:GetCallerIdentity`).
    pub async fn caller_arn(&self) -> Result<String, AwsError> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AwsError::call("sts:GetCallerIdentity", "caller", e))?;
        out.arn()
            .map(str::to_owned)
            .ok_or_else(|| AwsError::Unexpected("GetCallerIdentity returned no ARN".into()))
    }

    /// `iam:SimulatePrincipalPolicy` for `actions` on all resources; returns each action with whether
    /// it is allowed. Follows pagination.
    pub async fn simulate(
        &self,
        principal_arn: &str,
        actions: &[String],
    ) -> Result<Vec<(String, bool)>, AwsError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let resp = self
                .simulate_iam
                .simulate_principal_policy()
                .policy_source_arn(principal_arn)
                .set_action_names(Some(actions.to_vec()))
                .resource_arns("*")
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| AwsError::call("iam:SimulatePrincipalPolicy", principal_arn, e))?;
            for r in resp.evaluation_results() {
                let allowed = r.eval_decision().as_str() == "allowed";
                out.push((r.eval_action_name().to_string(), allowed));
            }
            match (resp.is_truncated(), resp.marker()) {
                (true, Some(m)) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// The user with its tags, or `None` when it does not exist.
    pub async fn get_user(&self, name: &str) -> Result<Option<IamUser>, AwsError> {
        let out = match self.iam.get_user().user_name(name).send().await {
            Ok(o) => o,
            Err(e) => {
                let e = AwsError::call("iam:GetUser", name, e);
                return if is_no_such_entity(&e) {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        let Some(u) = out.user() else {
            return Ok(None);
        };
        // GetUser includes tags on AWS; list them explicitly so emulators that omit them agree.
        let tags = self.list_user_tags(name).await?;
        Ok(Some(IamUser {
            name: u.user_name().to_string(),
            arn: u.arn().to_string(),
            tags,
        }))
    }

    async fn list_user_tags(&self, name: &str) -> Result<Vec<(String, String)>, AwsError> {
        let mut tags = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .iam
                .list_user_tags()
                .user_name(name)
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| AwsError::call("iam:ListUserTags", name, e))?;
            tags.extend(
                out.tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string())),
            );
            match (out.is_truncated(), out.marker()) {
                (true, Some(m)) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        Ok(tags)
    }

    /// Creates the user with `tags`. An existing user is returned as found.
    pub async fn create_user(
        &self,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<IamUser, AwsError> {
        let res = self
            .iam
            .create_user()
            .user_name(name)
            .set_tags(Some(iam_tags(tags)?))
            .send()
            .await;
        match res {
            Ok(out) => {
                let arn = out
                    .user()
                    .map(|u| u.arn().to_string())
                    .ok_or_else(|| AwsError::Unexpected("CreateUser returned no user".into()))?;
                Ok(IamUser {
                    name: name.to_string(),
                    arn,
                    tags: tags.to_vec(),
                })
            }
            Err(e) => {
                let e = AwsError::call("iam:CreateUser", name, e);
                if e.code() == Some("EntityAlreadyExists") {
                    self.get_user(name).await?.ok_or(e)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Adds or overwrites `tags` on the user.
    pub async fn tag_user(&self, name: &str, tags: &[(String, String)]) -> Result<(), AwsError> {
        self.iam
            .tag_user()
            .user_name(name)
            .set_tags(Some(iam_tags(tags)?))
            .send()
            .await
            .map_err(|e| AwsError::call("iam:TagUser", name, e))?;
        Ok(())
    }

    /// The user's inline policy `policy`, URL-decoded, or `None` when absent.
    pub async fn get_user_policy(
        &self,
        user: &str,
        policy: &str,
    ) -> Result<Option<String>, AwsError> {
        match self
            .iam
            .get_user_policy()
            .user_name(user)
            .policy_name(policy)
            .send()
            .await
        {
            Ok(out) => {
                let doc = out.policy_document();
                let decoded = percent_encoding::percent_decode_str(doc)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .unwrap_or_else(|_| doc.to_string());
                Ok(Some(decoded))
            }
            Err(e) => {
                let e = AwsError::call("iam:GetUserPolicy", user, e);
                if is_no_such_entity(&e) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Sets the user's inline policy `policy` to `document`.
    pub async fn put_user_policy(
        &self,
        user: &str,
        policy: &str,
        document: &str,
    ) -> Result<(), AwsError> {
        self.iam
            .put_user_policy()
            .user_name(user)
            .policy_name(policy)
            .policy_document(document)
            .send()
            .await
            .map_err(|e| AwsError::call("iam:PutUserPolicy", user, e))?;
        Ok(())
    }

    /// Names of the user's inline policies.
    pub async fn list_user_policies(&self, user: &str) -> Result<Vec<String>, AwsError> {
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = match self
                .iam
                .list_user_policies()
                .user_name(user)
                .set_marker(marker.clone())
                .send()
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    let e = AwsError::call("iam:ListUserPolicies", user, e);
                    return if is_no_such_entity(&e) {
                        Ok(names)
                    } else {
                        Err(e)
                    };
                }
            };
            names.extend(out.policy_names().iter().cloned());
            match (out.is_truncated(), out.marker()) {
                (true, Some(m)) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        Ok(names)
    }

    /// IDs of the user's access keys (empty when the user does not exist).
    pub async fn list_access_keys(&self, user: &str) -> Result<Vec<String>, AwsError> {
        match self.iam.list_access_keys().user_name(user).send().await {
            Ok(out) => Ok(out
                .access_key_metadata()
                .iter()
                .filter_map(|k| k.access_key_id().map(str::to_owned))
                .collect()),
            Err(e) => {
                let e = AwsError::call("iam:ListAccessKeys", user, e);
                if is_no_such_entity(&e) {
                    Ok(Vec::new())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Creates an access key for the user.
    pub async fn create_access_key(&self, user: &str) -> Result<AccessKey, AwsError> {
        let out = self
            .iam
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .map_err(|e| AwsError::call("iam:CreateAccessKey", user, e))?;
        let k = out
            .access_key()
            .ok_or_else(|| AwsError::Unexpected("CreateAccessKey returned no key".into()))?;
        Ok(AccessKey {
            id: k.access_key_id().to_string(),
            secret: k.secret_access_key().to_string(),
        })
    }

    /// Deletes one access key; an absent key is not an error.
    pub async fn delete_access_key(&self, user: &str, key_id: &str) -> Result<(), AwsError> {
        match self
            .iam
            .delete_access_key()
            .user_name(user)
            .access_key_id(key_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = AwsError::call("iam:DeleteAccessKey", user, e);
                if is_no_such_entity(&e) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Deletes the user with its inline policies and access keys. Returns `false` when there was no
    /// such user.
    pub async fn delete_user(&self, user: &str) -> Result<bool, AwsError> {
        if self.get_user(user).await?.is_none() {
            return Ok(false);
        }
        for p in self.list_user_policies(user).await? {
            match self
                .iam
                .delete_user_policy()
                .user_name(user)
                .policy_name(&p)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) => {
                    let e = AwsError::call("iam:DeleteUserPolicy", user, e);
                    if !is_no_such_entity(&e) {
                        return Err(e);
                    }
                }
            }
        }
        for k in self.list_access_keys(user).await? {
            self.delete_access_key(user, &k).await?;
        }
        match self.iam.delete_user().user_name(user).send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = AwsError::call("iam:DeleteUser", user, e);
                if is_no_such_entity(&e) {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }
}
