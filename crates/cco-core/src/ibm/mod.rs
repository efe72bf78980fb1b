//! IBM Cloud and Power VS: long-term credentials made of one service ID per request (SPEC §6).
//!
//! Data model: a [`ServiceIdPlan`] names the service ID (`<name>-<namespace>-<secret>`), the access
//! policies it must have (one per `providerSpec.policies` entry, each scoped to the account and,
//! when given, the resource group), and the Secret manifest to write. Policies are compared as
//! [`PolicySpec`]s (sorted roles and attributes), which is what lets a re-run converge: missing
//! policies are created, policies the request no longer asks for are removed. The API key is the only
//! value known after a call, so the Secret is rendered by [`secret_manifest`] from it.

use std::collections::{BTreeMap, BTreeSet};

use cco_api::{IbmCloudProviderSpec, ProviderSpec};
use serde_json::{json, Value};

use crate::reader::{LoadedRequest, Source};

/// Name of the API keys `ccoctl` creates for a service ID.
pub const API_KEY_NAME: &str = "ccoctl-generated-key";
/// Description put on created service IDs, so they can be told apart in the console.
pub const SERVICE_ID_DESCRIPTION: &str = "Created by ccoctl for an OpenShift CredentialsRequest";
/// The environment variables an administrator API key is read from, in order.
pub const API_KEY_ENV_VARS: [&str; 4] = [
    "IC_API_KEY",
    "IBMCLOUD_API_KEY",
    "BM_API_KEY",
    "BLUEMIX_API_KEY",
];
/// Secret key holding the bare API key.
pub const SECRET_API_KEY: &str = "ibmcloud_api_key";
/// Secret key holding the SDK environment file.
pub const SECRET_ENV_FILE: &str = "ibm-credentials.env";

/// One resource attribute of a policy.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Attribute {
    pub name: String,
    pub value: String,
    /// `stringEquals` when the request gives none.
    pub operator: String,
}

/// What an access policy grants, in comparable form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PolicySpec {
    /// Role CRNs, sorted and unique.
    pub roles: Vec<String>,
    /// Resource attributes, sorted.
    pub attributes: Vec<Attribute>,
}

impl PolicySpec {
    /// The request body of `POST /v1/policies` for this policy on subject `iam_id`.
    pub fn create_body(&self, iam_id: &str) -> Value {
        json!({
            "type": "access",
            "subjects": [{"attributes": [{"name": "iam_id", "value": iam_id}]}],
            "roles": self.roles.iter().map(|r| json!({"role_id": r})).collect::<Vec<_>>(),
            "resources": [{"attributes": self.attributes.iter().map(|a| {
                let mut v = json!({"name": a.name, "value": a.value});
                if a.operator != "stringEquals" {
                    v["operator"] = Value::String(a.operator.clone());
                }
                v
            }).collect::<Vec<_>>()}],
        })
    }

    /// The spec of a policy as the API returns it (`None` when it is not a plain access policy).
    pub fn from_api(p: &Value) -> Option<PolicySpec> {
        let roles: BTreeSet<String> = p["roles"]
            .as_array()?
            .iter()
            .filter_map(|r| r["role_id"].as_str().map(str::to_owned))
            .collect();
        let mut attributes: Vec<Attribute> = p["resources"].as_array()?.first()?["attributes"]
            .as_array()?
            .iter()
            .map(|a| Attribute {
                name: a["name"].as_str().unwrap_or("").to_string(),
                value: a["value"].as_str().unwrap_or("").to_string(),
                operator: a["operator"].as_str().unwrap_or("stringEquals").to_string(),
            })
            .collect();
        attributes.sort();
        Some(PolicySpec {
            roles: roles.into_iter().collect(),
            attributes,
        })
    }
}

/// Everything to do for one request.
#[derive(Clone, Debug)]
pub struct ServiceIdPlan {
    pub source: Source,
    /// `metadata.name` of the request.
    pub request: String,
    /// `<name>-<namespace>-<secret>`.
    pub name: String,
    pub secret_namespace: String,
    pub secret_name: String,
    /// `manifests/<ns>-<secret>-credentials.yaml`.
    pub secret_path: String,
    pub policies: Vec<PolicySpec>,
}

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IbmPlanError {
    #[error("--name must not be empty")]
    EmptyName,
    #[error("{source_} (CredentialsRequest {request}): field `spec.providerSpec.policies[{index}].roles` is empty; every policy needs at least one role")]
    NoRoles {
        source_: Source,
        request: String,
        index: usize,
    },
    #[error("{first} and {second} both map to service ID {name}; rename one of their Secrets")]
    DuplicateName {
        first: Source,
        second: Source,
        name: String,
    },
}

/// `<name>-<namespace>-<secret>`.
pub fn service_id_name(name: &str, namespace: &str, secret: &str) -> String {
    format!("{name}-{namespace}-{secret}")
}

/// The policies a request asks for, scoped to `account_id` and, when given, `resource_group_id`
/// (as attribute `resourceGroupId`, or `resource` for a policy on resource groups themselves).
pub fn policies_for(
    spec: &IbmCloudProviderSpec,
    account_id: &str,
    resource_group_id: Option<&str>,
) -> Vec<PolicySpec> {
    spec.policies
        .iter()
        .map(|p| {
            let mut attributes: Vec<Attribute> = p
                .attributes
                .iter()
                .map(|a| Attribute {
                    name: a.name.clone(),
                    value: a.value.clone(),
                    operator: a
                        .operator
                        .clone()
                        .filter(|o| !o.is_empty())
                        .unwrap_or_else(|| "stringEquals".into()),
                })
                .collect();
            if let Some(rg) = resource_group_id {
                let on_groups = p
                    .attributes
                    .iter()
                    .any(|a| a.name == "resourceType" && a.value == "resource-group");
                attributes.push(Attribute {
                    name: if on_groups {
                        "resource"
                    } else {
                        "resourceGroupId"
                    }
                    .into(),
                    value: rg.into(),
                    operator: "stringEquals".into(),
                });
            }
            attributes.push(Attribute {
                name: "accountId".into(),
                value: account_id.into(),
                operator: "stringEquals".into(),
            });
            attributes.sort();
            let roles: BTreeSet<String> = p.roles.iter().cloned().collect();
            PolicySpec {
                roles: roles.into_iter().collect(),
                attributes,
            }
        })
        .collect()
}

/// Plans one service ID per IBM Cloud or Power VS request.
pub fn plan_service_ids(
    reqs: &[LoadedRequest],
    name: &str,
    account_id: &str,
    resource_group_id: Option<&str>,
) -> Result<Vec<ServiceIdPlan>, IbmPlanError> {
    if name.is_empty() {
        return Err(IbmPlanError::EmptyName);
    }
    let mut seen: BTreeMap<String, Source> = BTreeMap::new();
    let mut out = Vec::new();
    for r in reqs {
        let spec = match &r.provider {
            ProviderSpec::IbmCloud(s) | ProviderSpec::PowerVs(s) => s,
            _ => continue,
        };
        for (index, p) in spec.policies.iter().enumerate() {
            if p.roles.is_empty() {
                return Err(IbmPlanError::NoRoles {
                    source_: r.source.clone(),
                    request: r.name().to_string(),
                    index,
                });
            }
        }
        let sr = &r.request.spec.secret_ref;
        let sid = service_id_name(name, &sr.namespace, &sr.name);
        if let Some(first) = seen.insert(sid.clone(), r.source.clone()) {
            return Err(IbmPlanError::DuplicateName {
                first,
                second: r.source.clone(),
                name: sid,
            });
        }
        out.push(ServiceIdPlan {
            source: r.source.clone(),
            request: r.name().to_string(),
            name: sid,
            secret_namespace: sr.namespace.clone(),
            secret_name: sr.name.clone(),
            secret_path: crate::aws::secret_manifest_path(&sr.namespace, &sr.name),
            policies: policies_for(spec, account_id, resource_group_id),
        });
    }
    Ok(out)
}

/// The `ibm-credentials.env` value, as the reference tool writes it.
pub fn credentials_env(api_key: &str) -> String {
    format!("IBMCLOUD_AUTHTYPE=iam\nIBMCLOUD_APIKEY={api_key}")
}

/// The Secret `data` for an API key (what `refresh-keys` applies to a cluster).
pub fn secret_data(api_key: &str) -> crate::secrets::SecretData {
    crate::secrets::SecretData::from_strings([
        (SECRET_API_KEY, api_key.to_string()),
        (SECRET_ENV_FILE, credentials_env(api_key)),
    ])
}

/// The Secret manifest, byte for byte as the reference tool writes it (a `corev1.Secret` through
/// `sigs.k8s.io/yaml`: keys sorted, `creationTimestamp: null`, the env file as a literal block).
pub fn secret_manifest(namespace: &str, name: &str, api_key: &str) -> String {
    let key = crate::yaml::scalar(api_key);
    let env = credentials_env(api_key)
        .lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  creationTimestamp: null\n  name: {}\n  namespace: {}\nstringData:\n  {SECRET_ENV_FILE}: |-\n{env}\n  {SECRET_API_KEY}: {key}\ntype: Opaque\n",
        crate::yaml::scalar(name),
        crate::yaml::scalar(namespace),
    )
}

/// The API key in a Secret manifest written earlier, if the text is one.
pub fn api_key_from_manifest(text: &str) -> Option<String> {
    let v: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    v["stringData"][SECRET_API_KEY]
        .as_str()
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cco_api::{IbmAttribute, IbmPolicy};

    fn spec() -> IbmCloudProviderSpec {
        IbmCloudProviderSpec {
            policies: vec![
                IbmPolicy {
                    attributes: vec![IbmAttribute {
                        name: "serviceName".into(),
                        value: "is".into(),
                        operator: None,
                    }],
                    roles: vec![
                        "crn:v1:bluemix:public:iam::::role:Operator".into(),
                        "crn:v1:bluemix:public:iam::::role:Editor".into(),
                    ],
                },
                IbmPolicy {
                    attributes: vec![IbmAttribute {
                        name: "resourceType".into(),
                        value: "resource-group".into(),
                        operator: None,
                    }],
                    roles: vec!["crn:v1:bluemix:public:iam::::role:Viewer".into()],
                },
            ],
        }
    }

    #[test]
    fn policies_are_scoped_to_the_account_and_resource_group() {
        let p = policies_for(&spec(), "acc", Some("rg1"));
        let names =
            |i: usize| -> Vec<&str> { p[i].attributes.iter().map(|a| a.name.as_str()).collect() };
        assert_eq!(names(0), ["accountId", "resourceGroupId", "serviceName"]);
        // A policy on resource groups themselves names the group as its `resource`.
        assert_eq!(names(1), ["accountId", "resource", "resourceType"]);
        assert_eq!(
            p[0].roles,
            [
                "crn:v1:bluemix:public:iam::::role:Editor",
                "crn:v1:bluemix:public:iam::::role:Operator"
            ]
        );
        assert_eq!(
            policies_for(&spec(), "acc", None)[0].attributes.len(),
            2,
            "no resource group attribute without --resource-group-name"
        );
    }

    #[test]
    fn a_created_policy_reads_back_as_the_same_spec() {
        for p in policies_for(&spec(), "acc", Some("rg")) {
            let body = p.create_body("iam-1");
            assert_eq!(body["subjects"][0]["attributes"][0]["value"], "iam-1");
            assert_eq!(PolicySpec::from_api(&body), Some(p));
        }
    }

    #[test]
    fn secret_manifest_has_both_reference_keys_and_parses_back() {
        let m = secret_manifest("ns", "s", "KEY123");
        let v: serde_yaml::Value = serde_yaml::from_str(&m).expect("yaml");
        assert_eq!(v["stringData"]["ibmcloud_api_key"].as_str(), Some("KEY123"));
        assert_eq!(
            v["stringData"]["ibm-credentials.env"].as_str(),
            Some("IBMCLOUD_AUTHTYPE=iam\nIBMCLOUD_APIKEY=KEY123")
        );
        assert_eq!(
            m,
            "apiVersion: v1\nkind: Secret\nmetadata:\n  creationTimestamp: null\n  name: s\n  namespace: ns\nstringData:\n  ibm-credentials.env: |-\n    IBMCLOUD_AUTHTYPE=iam\n    IBMCLOUD_APIKEY=KEY123\n  ibmcloud_api_key: KEY123\ntype: Opaque\n"
        );
        assert_eq!(api_key_from_manifest(&m).as_deref(), Some("KEY123"));
        assert_eq!(api_key_from_manifest("kind: [").as_deref(), None);
        assert_eq!(
            secret_data("KEY123").get_str(SECRET_ENV_FILE),
            Some("IBMCLOUD_AUTHTYPE=iam\nIBMCLOUD_APIKEY=KEY123")
        );
    }
}
