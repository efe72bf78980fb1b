//! A stateful fake of the IBM Cloud IAM APIs `ccoctl ibmcloud` uses, on one loopback port:
//!
//! - IAM token service: `POST /identity/token` (API key grant);
//! - IAM Identity: `GET /v1/apikeys/details` (`IAM-Apikey` header), `POST|GET /v1/apikeys`,
//!   `DELETE /v1/apikeys/{id}`, `POST|GET /v1/serviceids/`, `GET|DELETE /v1/serviceids/{id}`;
//! - IAM Policy Management: `POST|GET /v1/policies`, `DELETE /v1/policies/{id}`;
//! - Resource Manager: `GET /v2/resource_groups?account_id=&name=`.
//!
//! It follows the documented shapes and status codes: 201 on create, 204 on delete, 404 for unknown
//! ids, 401 without a valid bearer token, 400 for a bad body, 409 `policy_conflict_error` for a
//! policy identical to an existing one, `next` links with `pagetoken` when a list exceeds `pagesize`.
//! Like the real service, it allows several service IDs with the same name. Deleting a service ID
//! deletes its API keys (not its policies, which are removed by the caller).
//!
//! Not modelled: token expiry and refresh, CRNs beyond a fixed format, entity tags / `If-Match`,
//! locking, trusted profiles, access groups, policy templates, v2 policies, rate limiting, and
//! propagation delays (the real IAM is read-after-write consistent for these calls as far as
//! `ccoctl` can observe).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::fake_http::{FakeServer, Request, Response};

/// The account every object lives in.
pub const ACCOUNT_ID: &str = "acc0fake1bm2c10ud";
/// The administrator API key the fake accepts.
pub const ADMIN_API_KEY: &str = "fake-admin-api-key";
/// The resource groups that exist.
pub const RESOURCE_GROUPS: [(&str, &str); 2] = [
    ("default", "rg0000000000000000000000000default"),
    ("ocp-rg", "rg00000000000000000000000000ocprg"),
];

const PAGE_CAP: usize = 100;

#[derive(Default)]
struct State {
    seq: u64,
    tokens: Vec<String>,
    /// id → service ID object.
    service_ids: BTreeMap<String, Value>,
    /// id → (API key object without the value, the value).
    api_keys: BTreeMap<String, (Value, String)>,
    /// id → policy object.
    policies: BTreeMap<String, Value>,
}

impl State {
    fn next(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}-{:016x}", self.seq * 0x9e37_79b9)
    }
}

/// The running fake.
pub struct IbmIamFake {
    pub server: FakeServer,
    state: Arc<Mutex<State>>,
}

impl IbmIamFake {
    /// Starts the fake with the administrator key [`ADMIN_API_KEY`] and nothing else.
    pub fn start() -> anyhow::Result<IbmIamFake> {
        let state = Arc::new(Mutex::new(State::default()));
        {
            let mut s = state
                .lock()
                .map_err(|_| anyhow::anyhow!("fake state poisoned"))?;
            let admin = json!({"id": "ApiKey-admin", "name": "admin", "iam_id": "IBMid-admin0000",
                "account_id": ACCOUNT_ID, "created_at": now()});
            s.api_keys
                .insert("ApiKey-admin".into(), (admin, ADMIN_API_KEY.into()));
        }
        let st = state.clone();
        let server = FakeServer::start(Arc::new(move |r: &Request| match st.lock() {
            Ok(mut s) => handle(&mut s, r),
            Err(_) => error(500, "internal_error", "state poisoned"),
        }))?;
        Ok(IbmIamFake { server, state })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.server.endpoint
    }

    /// Environment for a `ccoctl` process that should talk to this fake.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("IC_API_KEY", ADMIN_API_KEY.into()),
            ("IBMCLOUD_IAM_ENDPOINT", self.endpoint().into()),
            ("IBMCLOUD_RESOURCE_MANAGER_ENDPOINT", self.endpoint().into()),
        ]
    }

    /// Names of all service IDs (with repeats).
    pub fn service_id_names(&self) -> Vec<String> {
        self.read(|s| {
            s.service_ids
                .values()
                .filter_map(|v| v["name"].as_str().map(str::to_owned))
                .collect()
        })
    }

    /// All service IDs.
    pub fn service_ids(&self) -> Vec<Value> {
        self.read(|s| s.service_ids.values().cloned().collect())
    }

    /// All policies.
    pub fn policies(&self) -> Vec<Value> {
        self.read(|s| s.policies.values().cloned().collect())
    }

    /// API keys (metadata) other than the administrator's.
    pub fn api_keys(&self) -> Vec<Value> {
        self.read(|s| {
            s.api_keys
                .values()
                .filter(|(v, _)| v["id"] != "ApiKey-admin")
                .map(|(v, _)| v.clone())
                .collect()
        })
    }

    /// The IAM id an API key value belongs to.
    pub fn owner_of_key(&self, key: &str) -> Option<String> {
        self.read(|s| {
            s.api_keys
                .values()
                .find(|(_, k)| k == key)
                .and_then(|(v, _)| v["iam_id"].as_str().map(str::to_owned))
        })
    }

    /// Creates a service ID directly (to set up a pre-existing or duplicate one).
    pub fn insert_service_id(&self, name: &str) -> Value {
        self.write(|s| create_service_id(s, name, ""))
    }

    fn read<T: Default>(&self, f: impl FnOnce(&State) -> T) -> T {
        self.state.lock().map(|s| f(&s)).unwrap_or_default()
    }

    fn write<T: Default>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        self.state.lock().map(|mut s| f(&mut s)).unwrap_or_default()
    }
}

fn now() -> String {
    "2026-01-01T00:00+0000".into()
}

fn error(status: u16, code: &str, message: &str) -> Response {
    Response::json(
        status,
        &json!({"trace": "fake-trace", "errors": [{"code": code, "message": message}], "status_code": status}),
    )
}

fn not_found(what: &str, id: &str) -> Response {
    error(404, "not_found", &format!("{what} with id {id} not found."))
}

fn handle(s: &mut State, r: &Request) -> Response {
    let segs = r.segs();
    if r.method == "POST" && segs == ["identity", "token"] {
        return token(s, r);
    }
    if segs.first() == Some(&"v1") || segs.first() == Some(&"v2") {
        match r.bearer() {
            Some(t) if s.tokens.iter().any(|x| x == t) => {}
            _ => {
                return error(
                    401,
                    "BXNIM0308E",
                    "No authorization header found or token invalid.",
                )
            }
        }
    }
    match (r.method.as_str(), segs.as_slice()) {
        ("GET", ["v1", "apikeys", "details"]) => {
            let Some(k) = r.header("iam-apikey") else {
                return error(400, "BXNIM0107E", "IAM-ApiKey header missing.");
            };
            match s.api_keys.values().find(|(_, v)| v == k) {
                Some((meta, _)) => Response::json(200, meta),
                None => error(404, "not_found", "API key not found."),
            }
        }
        ("POST", ["v1", "apikeys"]) => create_api_key(s, r),
        ("GET", ["v1", "apikeys"]) => {
            let iam_id = r.query("iam_id");
            let items: Vec<Value> = s
                .api_keys
                .values()
                .filter(|(v, _)| iam_id.is_none_or(|i| v["iam_id"] == i))
                .map(|(v, _)| v.clone())
                .collect();
            page(r, "apikeys", items)
        }
        ("DELETE", ["v1", "apikeys", id]) => match s.api_keys.remove(*id) {
            Some(_) => Response::empty(204),
            None => not_found("API key", id),
        },
        ("POST", ["v1", "serviceids"]) => {
            let body = match r.json() {
                Ok(b) => b,
                Err(e) => return error(400, "invalid_body", &e),
            };
            let (Some(account), Some(name)) = (body["account_id"].as_str(), body["name"].as_str())
            else {
                return error(
                    400,
                    "BXNIM0109E",
                    "Properties account_id and name are required.",
                );
            };
            if account != ACCOUNT_ID {
                return error(
                    403,
                    "BXNIM0513E",
                    "You are not authorized for this account.",
                );
            }
            if name.is_empty() {
                return error(400, "BXNIM0109E", "Property name must not be empty.");
            }
            let v = create_service_id(s, name, body["description"].as_str().unwrap_or(""));
            Response::json(201, &v)
        }
        ("GET", ["v1", "serviceids"]) => {
            if r.query("account_id") != Some(ACCOUNT_ID) {
                return error(400, "BXNIM0109E", "Query parameter account_id is required.");
            }
            let name = r.query("name");
            let items: Vec<Value> = s
                .service_ids
                .values()
                .filter(|v| name.is_none_or(|n| v["name"] == n))
                .cloned()
                .collect();
            page(r, "serviceids", items)
        }
        ("GET", ["v1", "serviceids", id]) => match s.service_ids.get(*id) {
            Some(v) => Response::json(200, v),
            None => not_found("Service ID", id),
        },
        ("DELETE", ["v1", "serviceids", id]) => match s.service_ids.remove(*id) {
            Some(v) => {
                let iam = v["iam_id"].clone();
                s.api_keys.retain(|_, (k, _)| k["iam_id"] != iam);
                Response::empty(204)
            }
            None => not_found("Service ID", id),
        },
        ("POST", ["v1", "policies"]) => create_policy(s, r),
        ("GET", ["v1", "policies"]) => {
            if r.query("account_id") != Some(ACCOUNT_ID) {
                return error(400, "invalid_query", "account_id is required.");
            }
            let iam_id = r.query("iam_id");
            let kind = r.query("type");
            let policies: Vec<Value> = s
                .policies
                .values()
                .filter(|p| iam_id.is_none_or(|i| subject_iam_id(p) == Some(i)))
                .filter(|p| kind.is_none_or(|t| p["type"] == t))
                .cloned()
                .collect();
            Response::json(200, &json!({"policies": policies}))
        }
        ("DELETE", ["v1", "policies", id]) => match s.policies.remove(*id) {
            Some(_) => Response::empty(204),
            None => not_found("Policy", id),
        },
        ("GET", ["v2", "resource_groups"]) => {
            let name = r.query("name");
            let resources: Vec<Value> = RESOURCE_GROUPS
                .iter()
                .filter(|(n, _)| name.is_none_or(|x| x == *n))
                .map(|(n, id)| json!({"id": id, "name": n, "account_id": ACCOUNT_ID, "state": "ACTIVE", "default": *n == "default"}))
                .collect();
            Response::json(200, &json!({"resources": resources}))
        }
        _ => error(
            404,
            "not_found",
            &format!("no route {} {}", r.method, r.path),
        ),
    }
}

fn token(s: &mut State, r: &Request) -> Response {
    let form = r.form();
    if form.get("grant_type").map(String::as_str) != Some("urn:ibm:params:oauth:grant-type:apikey")
    {
        return Response::json(
            400,
            &json!({"errorCode": "BXNIM0103E", "errorMessage": "Unsupported grant type."}),
        );
    }
    let key = form.get("apikey").cloned().unwrap_or_default();
    if !s.api_keys.values().any(|(_, v)| *v == key) {
        return Response::json(
            400,
            &json!({"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found.", "context": {}}),
        );
    }
    let t = s.next("token");
    s.tokens.push(t.clone());
    Response::json(
        200,
        &json!({"access_token": t, "refresh_token": "not_supported", "token_type": "Bearer",
            "expires_in": 3600, "expiration": 4_102_444_800u64, "scope": "ibm openid"}),
    )
}

fn create_service_id(s: &mut State, name: &str, description: &str) -> Value {
    let id = s.next("ServiceId");
    let v = json!({
        "id": id, "iam_id": format!("iam-{id}"), "account_id": ACCOUNT_ID, "name": name,
        "description": description, "entity_tag": "1-abc", "locked": false,
        "crn": format!("crn:v1:bluemix:public:iam-identity::a/{ACCOUNT_ID}::serviceid:{id}"),
        "created_at": now(), "modified_at": now(),
    });
    s.service_ids.insert(id, v.clone());
    v
}

fn create_api_key(s: &mut State, r: &Request) -> Response {
    let body = match r.json() {
        Ok(b) => b,
        Err(e) => return error(400, "invalid_body", &e),
    };
    let (Some(name), Some(iam_id)) = (body["name"].as_str(), body["iam_id"].as_str()) else {
        return error(
            400,
            "BXNIM0109E",
            "Properties name and iam_id are required.",
        );
    };
    if !s.service_ids.values().any(|v| v["iam_id"] == iam_id) {
        return error(404, "not_found", &format!("Identity {iam_id} not found."));
    }
    let id = s.next("ApiKey");
    let value = format!("key-{}", s.next("v"));
    let meta = json!({"id": id, "name": name, "iam_id": iam_id, "account_id": ACCOUNT_ID,
        "description": body["description"].as_str().unwrap_or(""), "created_at": now(),
        "entity_tag": "1-def", "locked": false});
    s.api_keys.insert(id, (meta.clone(), value.clone()));
    let mut out = meta;
    out["apikey"] = Value::String(value);
    Response::json(201, &out)
}

fn subject_iam_id(p: &Value) -> Option<&str> {
    p["subjects"][0]["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["name"] == "iam_id")?["value"]
        .as_str()
}

/// The comparable content of a policy: roles and resource attributes, sorted.
fn policy_key(p: &Value) -> (Vec<String>, Vec<String>) {
    let mut roles: Vec<String> = p["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["role_id"].as_str().map(str::to_owned))
        .collect();
    roles.sort();
    let mut attrs: Vec<String> = p["resources"][0]["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "{}|{}|{}",
                a["name"].as_str().unwrap_or(""),
                a["operator"].as_str().unwrap_or("stringEquals"),
                a["value"].as_str().unwrap_or("")
            )
        })
        .collect();
    attrs.sort();
    (roles, attrs)
}

fn create_policy(s: &mut State, r: &Request) -> Response {
    let body = match r.json() {
        Ok(b) => b,
        Err(e) => return error(400, "invalid_body", &e),
    };
    if body["type"] != "access" {
        return error(400, "invalid_body", "type must be access.");
    }
    let Some(iam_id) = subject_iam_id(&body).map(str::to_owned) else {
        return error(
            400,
            "invalid_body",
            "subjects[0] needs an iam_id attribute.",
        );
    };
    if !s
        .service_ids
        .values()
        .any(|v| v["iam_id"] == iam_id.as_str())
    {
        return error(
            400,
            "invalid_body",
            &format!("Subject {iam_id} does not exist."),
        );
    }
    let roles_ok = body["roles"].as_array().is_some_and(|r| {
        !r.is_empty()
            && r.iter().all(|x| {
                x["role_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("crn:v1:bluemix:public:"))
            })
    });
    if !roles_ok {
        return error(
            400,
            "invalid_body",
            "roles must be a non-empty list of role CRNs.",
        );
    }
    let account_ok = body["resources"][0]["attributes"]
        .as_array()
        .is_some_and(|a| {
            a.iter()
                .any(|x| x["name"] == "accountId" && x["value"] == ACCOUNT_ID)
        });
    if !account_ok {
        return error(
            400,
            "invalid_body",
            "resources[0] needs the accountId attribute of your account.",
        );
    }
    let key = policy_key(&body);
    if let Some((id, _)) = s
        .policies
        .iter()
        .find(|(_, p)| subject_iam_id(p) == Some(iam_id.as_str()) && policy_key(p) == key)
    {
        return error(
            409,
            "policy_conflict_error",
            &format!("Failed to create policy. Policy already exists with the id {id}."),
        );
    }
    let id = s.next("policy");
    let mut p = body;
    p["id"] = Value::String(id.clone());
    p["href"] = Value::String(format!("/v1/policies/{id}"));
    p["created_at"] = Value::String(now());
    p["state"] = Value::String("active".into());
    s.policies.insert(id, p.clone());
    Response::json(201, &p)
}

fn page(r: &Request, key: &str, items: Vec<Value>) -> Response {
    let size = r
        .query("pagesize")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, PAGE_CAP);
    let start = r
        .query("pagetoken")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(0);
    let chunk: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
    let mut out = json!({"offset": start, "limit": size, key: chunk});
    if start + size < items.len() {
        let mut q: Vec<String> = r
            .query
            .iter()
            .filter(|(k, _)| k.as_str() != "pagetoken")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        q.push(format!("pagetoken={}", start + size));
        out["next"] = Value::String(format!(
            "https://iam.cloud.ibm.com{}?{}",
            r.path,
            q.join("&")
        ));
    }
    Response::json(200, &out)
}
