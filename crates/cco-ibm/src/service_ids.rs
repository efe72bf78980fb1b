//! Service IDs, their access policies and API keys: idempotent create, delete and key refresh.
//!
//! A service ID is found again by its name (IAM allows duplicates; more than one is reported, never
//! guessed between). Policies converge to the plan: missing ones are created (a 409 conflict means
//! it already exists), ones the plan does not name are removed. An API key from a Secret written by
//! an earlier run is reused when IAM confirms it belongs to the service ID; otherwise a new key is
//! made (its value is only ever returned by the create call).

use cco_core::ibm::{PolicySpec, ServiceIdPlan, API_KEY_NAME, SERVICE_ID_DESCRIPTION};
use serde_json::{json, Value};

use crate::{Ibm, IbmError};

/// A service ID as `ccoctl` needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceId {
    pub id: String,
    pub iam_id: String,
    pub name: String,
}

impl ServiceId {
    fn from_api(v: &Value) -> Result<ServiceId, IbmError> {
        let get = |k: &str| {
            v[k].as_str().map(str::to_owned).ok_or_else(|| {
                IbmError::Unexpected(format!("service ID without `{k}` in the API answer"))
            })
        };
        Ok(ServiceId {
            id: get("id")?,
            iam_id: get("iam_id")?,
            name: get("name")?,
        })
    }
}

/// What [`apply`] did for one plan. `Debug` leaves the key out.
pub struct Applied {
    pub service_id: ServiceId,
    pub created: bool,
    pub policies_created: usize,
    pub policies_deleted: usize,
    /// The API key to put in the Secret.
    pub api_key: String,
    /// Whether `api_key` is the one from the earlier run.
    pub key_reused: bool,
}

impl std::fmt::Debug for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applied")
            .field("service_id", &self.service_id)
            .field("created", &self.created)
            .field("key_reused", &self.key_reused)
            .finish_non_exhaustive()
    }
}

impl Ibm {
    /// Every service ID named `name` in the account.
    pub async fn find_service_ids(&self, name: &str) -> Result<Vec<ServiceId>, IbmError> {
        let account = self.account_id.clone();
        self.list_all(
            "iam:ListServiceIds",
            name,
            "/v1/serviceids/",
            &[("account_id", account.as_str()), ("name", name)],
            "serviceids",
        )
        .await?
        .iter()
        .filter(|v| v["name"] == name)
        .map(ServiceId::from_api)
        .collect()
    }

    /// Creates a service ID named `name`.
    pub async fn create_service_id(&self, name: &str) -> Result<ServiceId, IbmError> {
        let body = json!({"account_id": self.account_id, "name": name, "description": SERVICE_ID_DESCRIPTION});
        let v = self
            .call("iam:CreateServiceId", name, || {
                self.http.post(self.iam("/v1/serviceids/")).json(&body)
            })
            .await?;
        ServiceId::from_api(&v)
    }

    /// Deletes a service ID (and, on IAM's side, its API keys). Absent is success.
    pub async fn delete_service_id(&self, sid: &ServiceId) -> Result<(), IbmError> {
        let path = format!("/v1/serviceids/{}", sid.id);
        match self
            .call("iam:DeleteServiceId", &sid.name, || {
                self.http.delete(self.iam(&path))
            })
            .await
        {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// The access policies whose subject is `iam_id`, as `(id, spec)`.
    pub async fn policies_of(&self, sid: &ServiceId) -> Result<Vec<(String, Value)>, IbmError> {
        let v = self
            .call("iam:ListPolicies", &sid.name, || {
                self.http.get(self.iam("/v1/policies")).query(&[
                    ("account_id", self.account_id.as_str()),
                    ("iam_id", sid.iam_id.as_str()),
                    ("type", "access"),
                ])
            })
            .await?;
        Ok(v["policies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p["id"].as_str()?.to_string(), p.clone())))
            .collect())
    }

    /// Creates an access policy; one identical to an existing policy (409) counts as done.
    pub async fn create_policy(
        &self,
        sid: &ServiceId,
        spec: &PolicySpec,
    ) -> Result<bool, IbmError> {
        let body = spec.create_body(&sid.iam_id);
        match self
            .call("iam:CreatePolicy", &sid.name, || {
                self.http.post(self.iam("/v1/policies")).json(&body)
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(409) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes a policy. Absent is success.
    pub async fn delete_policy(&self, sid: &ServiceId, id: &str) -> Result<(), IbmError> {
        let path = format!("/v1/policies/{id}");
        match self
            .call(
                "iam:DeletePolicy",
                &format!("{} (policy {id})", sid.name),
                || self.http.delete(self.iam(&path)),
            )
            .await
        {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Creates an API key for the service ID and returns `(key id, value)`.
    pub async fn create_api_key(&self, sid: &ServiceId) -> Result<(String, String), IbmError> {
        let body = json!({"name": API_KEY_NAME, "iam_id": sid.iam_id, "account_id": self.account_id,
            "description": "Created by ccoctl; the value is in the component's Secret", "store_value": false});
        let v = self
            .call("iam:CreateApiKey", &sid.name, || {
                self.http.post(self.iam("/v1/apikeys")).json(&body)
            })
            .await?;
        match (v["id"].as_str(), v["apikey"].as_str()) {
            (Some(id), Some(key)) => Ok((id.to_string(), key.to_string())),
            _ => Err(IbmError::Unexpected(format!(
                "iam:CreateApiKey on {}: the answer carries no key",
                sid.name
            ))),
        }
    }

    /// The API keys (metadata) of the service ID.
    pub async fn api_keys_of(&self, sid: &ServiceId) -> Result<Vec<Value>, IbmError> {
        let account = self.account_id.clone();
        self.list_all(
            "iam:ListApiKeys",
            &sid.name,
            "/v1/apikeys",
            &[
                ("account_id", account.as_str()),
                ("iam_id", sid.iam_id.as_str()),
            ],
            "apikeys",
        )
        .await
    }

    /// Deletes an API key. Absent is success.
    pub async fn delete_api_key(&self, sid: &ServiceId, id: &str) -> Result<(), IbmError> {
        let path = format!("/v1/apikeys/{id}");
        match self
            .call(
                "iam:DeleteApiKey",
                &format!("{} (key {id})", sid.name),
                || self.http.delete(self.iam(&path)),
            )
            .await
        {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// The IAM id an API key value belongs to, or `None` if IAM does not know the key.
    pub async fn owner_of_api_key(&self, key: &str) -> Result<Option<String>, IbmError> {
        match self
            .call(
                "iam:GetApiKeyDetails",
                "a previously written API key",
                || {
                    self.http
                        .get(self.iam("/v1/apikeys/details"))
                        .header("IAM-Apikey", key)
                },
            )
            .await
        {
            Ok(v) => Ok(v["iam_id"].as_str().map(str::to_owned)),
            Err(e) if matches!(e.status(), Some(400 | 401 | 404)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The single service ID named `name`, if any; several is an error naming the way out.
pub async fn find_one(ibm: &Ibm, name: &str) -> Result<Option<ServiceId>, IbmError> {
    let mut found = ibm.find_service_ids(name).await?;
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        n => Err(IbmError::Local(format!(
            "{n} service IDs are named {name}; IAM allows duplicate names, so ccoctl will not guess. Remove the extra ones (`ccoctl ibmcloud delete-service-id --force` deletes them all)"
        ))),
    }
}

/// Makes the service ID, its policies and the ones it no longer needs converge to the plan.
/// Returns the service ID, whether it was created, and (created, deleted) policy counts.
pub async fn converge(
    ibm: &Ibm,
    plan: &ServiceIdPlan,
) -> Result<(ServiceId, bool, usize, usize), IbmError> {
    let (sid, created) = match find_one(ibm, &plan.name).await? {
        Some(s) => (s, false),
        None => (ibm.create_service_id(&plan.name).await?, true),
    };
    let existing = ibm.policies_of(&sid).await?;
    let mut have: Vec<(String, Option<PolicySpec>)> = existing
        .iter()
        .map(|(id, p)| (id.clone(), PolicySpec::from_api(p)))
        .collect();
    let mut made = 0;
    for want in &plan.policies {
        if let Some(i) = have.iter().position(|(_, s)| s.as_ref() == Some(want)) {
            have.remove(i);
            continue;
        }
        if ibm.create_policy(&sid, want).await? {
            made += 1;
        }
    }
    let mut removed = 0;
    for (id, _) in &have {
        ibm.delete_policy(&sid, id).await?;
        removed += 1;
    }
    Ok((sid, created, made, removed))
}

/// [`converge`], then an API key: `previous_key` (from a Secret written by an earlier run) when IAM
/// confirms it belongs to the service ID, otherwise a new one.
pub async fn apply(
    ibm: &Ibm,
    plan: &ServiceIdPlan,
    previous_key: Option<&str>,
) -> Result<Applied, IbmError> {
    let (sid, created, policies_created, policies_deleted) = converge(ibm, plan).await?;
    if let Some(prev) = previous_key.filter(|_| !created) {
        if ibm.owner_of_api_key(prev).await?.as_deref() == Some(sid.iam_id.as_str()) {
            return Ok(Applied {
                service_id: sid,
                created,
                policies_created,
                policies_deleted,
                api_key: prev.to_string(),
                key_reused: true,
            });
        }
    }
    let (_, api_key) = ibm.create_api_key(&sid).await?;
    Ok(Applied {
        service_id: sid,
        created,
        policies_created,
        policies_deleted,
        api_key,
        key_reused: false,
    })
}

/// Deletes the API keys `ccoctl` made for the service ID, except `keep` (a key id).
pub async fn remove_stale_keys(ibm: &Ibm, sid: &ServiceId, keep: &str) -> Result<usize, IbmError> {
    let mut n = 0;
    for k in ibm.api_keys_of(sid).await? {
        let (Some(id), Some(name)) = (k["id"].as_str(), k["name"].as_str()) else {
            continue;
        };
        if id != keep && name == API_KEY_NAME {
            ibm.delete_api_key(sid, id).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Deletes a service ID with its policies (IAM removes its API keys with it).
pub async fn delete_with_policies(ibm: &Ibm, sid: &ServiceId) -> Result<usize, IbmError> {
    let policies = ibm.policies_of(sid).await?;
    for (id, _) in &policies {
        ibm.delete_policy(sid, id).await?;
    }
    ibm.delete_service_id(sid).await?;
    Ok(policies.len())
}
