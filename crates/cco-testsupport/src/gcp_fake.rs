//! A stateful fake of the Google Cloud APIs `ccoctl gcp` uses that have no emulator, on one loopback
//! port, in front of `fake-gcs-server` for storage:
//!
//! - OAuth 2.0 token endpoint `POST /token` (JWT-bearer grant of a service-account key, and the
//!   refresh-token grant of user credentials), self-signed service-account JWTs as bearer tokens,
//!   the Security Token Service exchange `POST /v1/token` of workload identity federation, and the
//!   IAM Credentials `generateAccessToken` of impersonation (see the `auth` submodule,
//!   `gcp_fake_auth.rs`);
//! - Resource Manager v1: `GET /v1/projects/{id}`, `POST /v1/projects/{id}:getIamPolicy|:setIamPolicy`,
//!   and the same under `/v3` (v3's project resource: `name` is `projects/<number>`);
//! - requests of Google's generated clients: `$alt=json;enum-encoding=int` (enum fields of the
//!   request body and `keyTypes` as numbers, read as their names), base64 etags;
//! - `POST /v1/projects/{id}:testIamPermissions`, answering with the permissions the caller holds
//!   (every permission unless [`GcpFake::set_caller_permissions`] restricted them);
//! - IAM v1: service accounts (list, create, get, delete, `:getIamPolicy`, `:setIamPolicy`), their
//!   user-managed keys (`keys` create with a base64 JSON key file in `privateKeyData`, list, get,
//!   delete; the keys go with their account), project
//!   custom roles (list, create, get, patch, delete, `:undelete`), workload identity pools and OIDC
//!   providers (create, get, list, patch, delete, `:undelete`) with long-running operations;
//! - Cloud Storage bucket IAM (`GET|PUT /storage/v1/b/{bucket}/iam`), which `fake-gcs-server` lacks;
//!   every other `/storage`, `/upload` and `/download` request is forwarded to `fake-gcs-server`, and
//!   the fake follows bucket creation and deletion from the answers, keeping each created bucket's
//!   resource as the client sent it ([`GcpFake::bucket_as_created`]: `fake-gcs-server` drops
//!   `iamConfiguration` and rewrites the location);
//! - anonymous path-style object reads (`GET /{bucket}/{object}`, how OIDC clients read an issuer
//!   at `https://storage.googleapis.com/<bucket>/…`), allowed only when the bucket's policy lets
//!   `allUsers` view objects (else 403 `AccessDenied` in Cloud Storage's XML), then served by
//!   `fake-gcs-server`. [`GcpFake::start_tls`] serves everything over TLS.
//!
//! Behaviour it pins, as documented by Google: errors as `{"error":{"code","message","status"}}`;
//! 404 NOT_FOUND, 409 ALREADY_EXISTS on create, 409 ABORTED when a `setIamPolicy` carries a stale
//! etag (412 for a bucket policy), 400 INVALID_ARGUMENT for a project binding naming a service
//! account or custom role that does not exist; custom roles and pools are soft-deleted (a create with
//! the id of a deleted role fails with FAILED_PRECONDITION, a pool's with ALREADY_EXISTS; both can be
//! undeleted); pool and provider changes are long-running operations that finish on the first poll.
//! Eventual consistency: a new service account is invisible to its own `getIamPolicy` /
//! `setIamPolicy` (404) and to project bindings (400) for the next [`SA_INVISIBLE_CALLS`] such calls,
//! and a new bucket's IAM policy answers 404 once.
//!
//! Deleting a service account leaves the bindings that named it as
//! `deleted:serviceAccount:<email>?uid=<id>`, as IAM shows them.
//!
//! Not modelled: permissions of the caller beyond `testIamPermissions` (every valid token may call
//! everything), conditions in bindings, policy versions beyond echoing them, system-managed keys and
//! the 10-key limit, key expiry, disabling, organisation policies,
//! quotas and rate limits, the 30-day purge of deleted pools and the 7-day purge of deleted roles,
//! signature checks of the assertions sent to `/token` (any well-formed one gets a token).
//!
//! Every authenticated call is recorded with the identity whose token made it ([`GcpFake::calls`]:
//! the `iss` of the JWT assertion the token was issued for, the service account of a self-signed
//! JWT, or the federated principal of an STS token), so tests can tell which key read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::fake_http::{FakeServer, Request, Response, Upstream};

#[path = "gcp_fake_auth.rs"]
mod auth;
#[path = "gcp_fake_iam.rs"]
mod iam;
#[path = "gcp_fake_pools.rs"]
mod pools;

use iam::{roles, service_accounts, test_permissions};
use pools::pools;

/// The project every object lives in.
pub const PROJECT_ID: &str = "fake-project";
/// Its number.
pub const PROJECT_NUMBER: &str = "123456789012";
/// How many IAM-policy calls a new service account stays invisible to.
pub const SA_INVISIBLE_CALLS: u32 = 2;

#[derive(Default)]
struct Sa {
    json: Value,
    policy: Value,
    invisible: u32,
    /// key id → key (without `privateKeyData`).
    keys: BTreeMap<String, Value>,
}

#[derive(Default)]
struct State {
    seq: u64,
    tokens: BTreeSet<String>,
    /// access token → the service-account email (or `user`) it was issued to.
    token_owner: BTreeMap<String, String>,
    /// Every authenticated API call, in order.
    calls: Vec<Call>,
    project_policy: Value,
    sas: BTreeMap<String, Sa>,
    roles: BTreeMap<String, Value>,
    pools: BTreeMap<String, Value>,
    /// (pool, provider) → provider.
    providers: BTreeMap<(String, String), Value>,
    /// operation name → response, returned done on the first poll.
    operations: BTreeMap<String, Value>,
    buckets: BTreeSet<String>,
    /// What `testIamPermissions` grants; `None`: everything.
    caller_permissions: Option<BTreeSet<String>>,
    /// This fake's endpoint (the `token_uri` of the keys it issues).
    endpoint: String,
    /// bucket → (policy, first read still to fail).
    bucket_policies: BTreeMap<String, (Value, bool)>,
    /// bucket → the resource of its successful `buckets.insert`, as sent.
    bucket_inserts: BTreeMap<String, Value>,
    /// Service-account keys this fake issued: key id → (email, PKCS#8 PEM private key).
    signing_keys: BTreeMap<String, (String, String)>,
}

impl State {
    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// One authenticated API call: who made it, and what it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The service-account email whose key obtained the token (`user` for user credentials), or
    /// the issuer of a self-signed JWT used as the token; `None` if unknown.
    pub caller: Option<String>,
}

/// The claim `claim` of a compact JWT's payload (no signature check).
fn jwt_claim(jwt: &str, claim: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v[claim].as_str().map(str::to_owned)
}

/// The running fake.
pub struct GcpFake {
    pub server: FakeServer,
    state: Arc<Mutex<State>>,
}

fn err(code: u16, status: &str, message: &str) -> Response {
    Response::json(
        code,
        &json!({"error": {"code": code, "message": message, "status": status,
            "errors": [{"message": message, "domain": "global", "reason": status.to_ascii_lowercase()}]}}),
    )
}

fn not_found(what: &str) -> Response {
    err(
        404,
        "NOT_FOUND",
        &format!("Requested entity was not found: {what}"),
    )
}

impl GcpFake {
    /// Starts the fake; storage requests other than bucket IAM go to `gcs_endpoint`.
    pub fn start(gcs_endpoint: &str) -> anyhow::Result<GcpFake> {
        Self::start_full(gcs_endpoint, None)
    }

    /// Like [`GcpFake::start`], served over TLS with the server certificate of `ca` (the endpoint is
    /// `https://…`; clients trust `ca.ca_pem`).
    pub fn start_tls(gcs_endpoint: &str, ca: &crate::tls::TestCa) -> anyhow::Result<GcpFake> {
        Self::start_full(gcs_endpoint, Some(ca.server_config()?))
    }

    fn start_full(
        gcs_endpoint: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> anyhow::Result<GcpFake> {
        let state = Arc::new(Mutex::new(State {
            project_policy: json!({"version": 1, "etag": "BwAAAAA=", "bindings": [
                {"role": "roles/owner", "members": ["user:admin@example.com"]}]}),
            ..State::default()
        }));
        let st = state.clone();
        let handler = Arc::new(move |r: &Request| match st.lock() {
            Ok(mut s) => handle(&mut s, r),
            Err(_) => err(500, "INTERNAL", "state poisoned"),
        });
        let st2 = state.clone();
        let observer = Arc::new(move |r: &Request, status: u16| {
            let Ok(mut s) = st2.lock() else { return };
            let segs = r.segs();
            match (r.method.as_str(), segs.as_slice()) {
                ("POST", ["storage", "v1", "b"]) if status == 200 => {
                    let body = r.json().ok();
                    if let Some(name) = body
                        .as_ref()
                        .and_then(|b| b["name"].as_str().map(str::to_owned))
                    {
                        s.buckets.insert(name.clone());
                        if let Some(b) = body {
                            s.bucket_inserts.insert(name.clone(), b);
                        }
                        let policy = json!({"kind": "storage#policy", "resourceId": format!("projects/_/buckets/{name}"),
                            "version": 1, "etag": "CAE=", "bindings": [
                                {"role": "roles/storage.legacyBucketOwner", "members": [format!("projectOwner:{PROJECT_ID}")]},
                                {"role": "roles/storage.legacyBucketReader", "members": [format!("projectViewer:{PROJECT_ID}")]}]});
                        s.bucket_policies.insert(name, (policy, true));
                    }
                }
                ("DELETE", ["storage", "v1", "b", b]) if status == 204 || status == 200 => {
                    s.buckets.remove(*b);
                    s.bucket_policies.remove(*b);
                }
                _ => {}
            }
        });
        let server = FakeServer::start_full(
            handler,
            Some(Upstream {
                endpoint: gcs_endpoint.to_string(),
                observer,
            }),
            tls,
        )?;
        if let Ok(mut s) = state.lock() {
            s.endpoint = server.endpoint.clone();
        }
        Ok(GcpFake { server, state })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.server.endpoint
    }

    /// A service-account key file whose token URI is this fake (what `GOOGLE_APPLICATION_CREDENTIALS`
    /// points at in tests).
    pub fn service_account_key_json(&self) -> String {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .map(|k| k.serialize_pem())
            .unwrap_or_default();
        let email = format!("admin@{PROJECT_ID}.iam.gserviceaccount.com");
        let mut kid = "fake".to_string();
        if let Ok(mut s) = self.state.lock() {
            kid = format!("{:040x}", 0xad_0000_u64 + s.next());
            s.signing_keys
                .insert(kid.clone(), (email.clone(), key.clone()));
        }
        json!({"type": "service_account", "project_id": PROJECT_ID, "private_key_id": kid,
            "private_key": key, "client_email": email,
            "client_id": "1", "token_uri": format!("{}/token", self.endpoint())})
        .to_string()
    }

    /// The distinct callers of [`GcpFake::calls`], sorted: service-account emails (of tokens from
    /// `/token` or of self-signed JWTs), `user`, or federated `principal://…/subject/<sub>`.
    pub fn callers(&self) -> Vec<String> {
        self.read(|s| {
            s.calls
                .iter()
                .filter_map(|c| c.caller.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        })
    }

    fn read<T: Default>(&self, f: impl FnOnce(&State) -> T) -> T {
        self.state.lock().map(|s| f(&s)).unwrap_or_default()
    }

    /// Every authenticated API call so far, with the identity that made it.
    pub fn calls(&self) -> Vec<Call> {
        self.read(|s| s.calls.clone())
    }

    /// Restricts what `testIamPermissions` says the caller holds (`None`: every permission).
    pub fn set_caller_permissions(&self, permissions: Option<&[&str]>) {
        if let Ok(mut s) = self.state.lock() {
            s.caller_permissions = permissions.map(|p| p.iter().map(|x| x.to_string()).collect());
        }
    }

    /// Ids of the user-managed keys of a service account (empty when it does not exist).
    pub fn service_account_keys(&self, email: &str) -> Vec<String> {
        self.read(|s| {
            s.sas
                .get(email)
                .map(|a| a.keys.keys().cloned().collect())
                .unwrap_or_default()
        })
    }

    /// All service accounts.
    pub fn service_accounts(&self) -> Vec<Value> {
        self.read(|s| s.sas.values().map(|a| a.json.clone()).collect())
    }

    /// The IAM policy of a service account.
    pub fn service_account_policy(&self, email: &str) -> Option<Value> {
        self.read(|s| s.sas.get(email).map(|a| a.policy.clone()))
    }

    /// The project's IAM policy.
    pub fn project_policy(&self) -> Value {
        self.read(|s| s.project_policy.clone())
    }

    /// Custom roles, deleted ones included (with `"deleted": true`).
    pub fn roles(&self) -> Vec<Value> {
        self.read(|s| s.roles.values().cloned().collect())
    }

    /// Pools, deleted ones included (`state: DELETED`).
    pub fn pools(&self) -> Vec<Value> {
        self.read(|s| s.pools.values().cloned().collect())
    }

    /// Providers, deleted ones included.
    pub fn providers(&self) -> Vec<Value> {
        self.read(|s| s.providers.values().cloned().collect())
    }

    /// The bucket resource of the `buckets.insert` that created `bucket`, as the client sent it.
    pub fn bucket_as_created(&self, bucket: &str) -> Option<Value> {
        self.read(|s| s.bucket_inserts.get(bucket).cloned())
    }

    /// Bucket IAM policy as last set.
    pub fn bucket_policy(&self, bucket: &str) -> Option<Value> {
        self.read(|s| s.bucket_policies.get(bucket).map(|p| p.0.clone()))
    }

    /// Buckets created through this fake and not deleted.
    pub fn buckets(&self) -> Vec<String> {
        self.read(|s| s.buckets.iter().cloned().collect())
    }

    /// Adds a project binding directly (to set up state that is not ccoctl's).
    pub fn add_project_binding(&self, role: &str, member: &str) {
        if let Ok(mut s) = self.state.lock() {
            add_binding(&mut s.project_policy, role, member);
            bump_etag(&mut s.project_policy);
        }
    }

    /// Changes a bucket's IAM policy directly (e.g. to make the issuer bucket private).
    pub fn edit_bucket_policy(&self, bucket: &str, edit: impl FnOnce(&mut Value)) {
        if let Ok(mut s) = self.state.lock() {
            if let Some((p, _)) = s.bucket_policies.get_mut(bucket) {
                edit(p);
                bump_etag(p);
            }
        }
    }

    /// Changes a service account's IAM policy directly (e.g. to leave a stale trust binding).
    pub fn edit_service_account_policy(&self, email: &str, edit: impl FnOnce(&mut Value)) {
        if let Ok(mut s) = self.state.lock() {
            if let Some(sa) = s.sas.get_mut(email) {
                edit(&mut sa.policy);
                bump_etag(&mut sa.policy);
            }
        }
    }

    /// Changes a custom role directly (e.g. to drop a permission).
    pub fn edit_role(&self, id: &str, edit: impl FnOnce(&mut Value)) {
        if let Ok(mut s) = self.state.lock() {
            if let Some(r) = s.roles.get_mut(id) {
                edit(r);
            }
        }
    }

    /// Deletes a service account directly, as someone in the console would (its keys go with it;
    /// project bindings naming it stay, as in GCP).
    pub fn remove_service_account(&self, email: &str) {
        if let Ok(mut s) = self.state.lock() {
            delete_sa(&mut s, email);
        }
    }

    /// Creates a pool directly (to set up one ccoctl did not make).
    pub fn insert_pool(&self, id: &str, description: &str) {
        if let Ok(mut s) = self.state.lock() {
            let pool = json!({"name": pool_name(id), "displayName": id, "description": description,
                "state": "ACTIVE", "disabled": false});
            s.pools.insert(id.into(), pool);
        }
    }

    /// Creates a custom role directly (e.g. one made by another tool or an earlier version).
    pub fn insert_role(&self, id: &str, title: &str, description: &str, permissions: &[&str]) {
        if let Ok(mut s) = self.state.lock() {
            let role = json!({"name": format!("projects/{PROJECT_ID}/roles/{id}"), "title": title,
                "description": description, "includedPermissions": permissions, "stage": "GA",
                "etag": "BwXa"});
            s.roles.insert(id.into(), role);
        }
    }

    /// Creates a service account directly (visible at once).
    pub fn insert_service_account(&self, account_id: &str, display: &str, description: &str) {
        if let Ok(mut s) = self.state.lock() {
            let sa = new_sa(&mut s, account_id, display, description);
            let email = sa["email"].as_str().unwrap_or_default().to_string();
            s.sas.insert(
                email,
                Sa {
                    json: sa,
                    policy: json!({"version": 1, "etag": "ACAB"}),
                    invisible: 0,
                    keys: BTreeMap::new(),
                },
            );
        }
    }
}

fn add_binding(policy: &mut Value, role: &str, member: &str) {
    if !policy["bindings"].is_array() {
        policy["bindings"] = json!([]);
    }
    let Some(bindings) = policy["bindings"].as_array_mut() else {
        return;
    };
    match bindings.iter_mut().find(|b| b["role"] == role) {
        Some(b) => {
            if let Some(m) = b["members"].as_array_mut() {
                if !m.iter().any(|x| x == member) {
                    m.push(Value::String(member.into()));
                }
            }
        }
        None => bindings.push(json!({"role": role, "members": [member]})),
    }
}

fn bump_etag(policy: &mut Value) {
    let n = policy["etag"]
        .as_str()
        .map(|e| e.len() as u64 * 7 + e.bytes().map(u64::from).sum::<u64>())
        .unwrap_or(0);
    policy["etag"] = etag(&format!("Bw{n:x}{}", policy["bindings"].to_string().len()));
}

/// An etag as Google's: base64 bytes (the official clients decode them).
fn etag(seed: &str) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(seed))
}

/// Deletes a service account as IAM does: its keys go with it, and the bindings that named it
/// now name `deleted:serviceAccount:<email>?uid=<unique id>` (which policies may keep).
fn delete_sa(s: &mut State, email: &str) {
    let Some(sa) = s.sas.remove(email) else {
        return;
    };
    s.signing_keys.retain(|_, (e, _)| e != email);
    let uid = sa.json["uniqueId"].as_str().unwrap_or("0").to_string();
    let from = format!("serviceAccount:{email}");
    let to = format!("deleted:serviceAccount:{email}?uid={uid}");
    let rewrite = |policy: &mut Value| {
        for b in policy["bindings"].as_array_mut().into_iter().flatten() {
            for m in b["members"].as_array_mut().into_iter().flatten() {
                if m == from.as_str() {
                    *m = Value::String(to.clone());
                }
            }
        }
    };
    rewrite(&mut s.project_policy);
    for other in s.sas.values_mut() {
        rewrite(&mut other.policy);
    }
}

fn public_read(s: &State, bucket: &str, object: &str) -> Response {
    let public = s.bucket_policies.get(bucket).is_some_and(|(p, _)| {
        p["bindings"].as_array().into_iter().flatten().any(|b| {
            matches!(
                b["role"].as_str(),
                Some("roles/storage.objectViewer") | Some("roles/storage.legacyObjectReader")
            ) && b["members"]
                .as_array()
                .is_some_and(|m| m.iter().any(|x| x == "allUsers"))
        })
    });
    if public {
        return Response::forward_to(&format!(
            "/download/storage/v1/b/{bucket}/o/{}?alt=media",
            percent_encoding::utf8_percent_encode(object, percent_encoding::NON_ALPHANUMERIC)
        ));
    }
    Response {
        status: 403,
        headers: vec![("content-type".into(), "application/xml; charset=UTF-8".into())],
        body: b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code><Message>Access denied.</Message><Details>Anonymous caller does not have storage.objects.get access to the Google Cloud Storage object. Permission 'storage.objects.get' denied on resource (or it may not exist).</Details></Error>".to_vec(),
    }
}

fn pool_name(id: &str) -> String {
    format!("projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{id}")
}

fn new_sa(s: &mut State, account_id: &str, display: &str, description: &str) -> Value {
    let n = s.next();
    let email = format!("{account_id}@{PROJECT_ID}.iam.gserviceaccount.com");
    json!({"name": format!("projects/{PROJECT_ID}/serviceAccounts/{email}"), "projectId": PROJECT_ID,
        "uniqueId": format!("1000000000000000{n:05}"), "email": email, "displayName": display,
        "description": description, "etag": "MDEwMjE5MjA=", "oauth2ClientId": format!("1000000000000000{n:05}")})
}

fn handle(s: &mut State, r: &Request) -> Response {
    let segs = r.segs();
    if r.method == "POST" && segs == ["token"] {
        return token(s, r);
    }
    if r.method == "POST" && segs == ["v1", "token"] {
        return auth::sts(s, r);
    }
    let storage = matches!(
        segs.first(),
        Some(&"storage") | Some(&"upload") | Some(&"download")
    );
    let bucket_iam = segs.len() == 5 && segs[..3] == ["storage", "v1", "b"] && segs[4] == "iam";
    if storage && !bucket_iam {
        return Response::forward();
    }
    // Path-style object reads (`https://storage.googleapis.com/<bucket>/<object>`), as OIDC clients
    // read an issuer: anonymous callers get the object only if `allUsers` may view the bucket's
    // objects, and Cloud Storage's XML AccessDenied otherwise.
    if matches!(r.method.as_str(), "GET" | "HEAD")
        && segs.len() >= 2
        && s.buckets.contains(segs[0])
        && r.bearer().is_none()
    {
        return public_read(s, segs[0], &segs[1..].join("/"));
    }
    match r.bearer().and_then(|t| auth::authenticate(s, t)) {
        Some(caller) => {
            s.calls.push(Call {
                method: r.method.clone(),
                path: r.path.split('?').next().unwrap_or_default().to_string(),
                caller,
            });
        }
        None => {
            return err(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
            )
        }
    }
    if bucket_iam {
        return bucket_policy(s, r, segs[3]);
    }
    if let ["v1", "projects", "-", "serviceAccounts", target] = segs.as_slice() {
        if let Some(email) = target.strip_suffix(":generateAccessToken") {
            let email = email.replace("%40", "@");
            let caller = s.calls.last().and_then(|c| c.caller.clone());
            return auth::generate_access_token(s, r, caller.as_deref(), &email);
        }
    }
    // Resource Manager v3 (what the official Rust client calls) serves the project and its IAM
    // verbs under `/v3`; everything else is IAM v1 or Resource Manager v1.
    let v3 = segs.first() == Some(&"v3");
    if segs.len() < 3 || !(segs[0] == "v1" || v3 && segs.len() == 3) || segs[1] != "projects" {
        return not_found(&r.path);
    }
    // `projects/{p}` or `projects/{p}:verb`
    let (project, verb) = match segs[2].split_once(':') {
        Some((p, v)) => (p, Some(v)),
        None => (segs[2], None),
    };
    if project != PROJECT_ID && project != PROJECT_NUMBER {
        return err(
            403,
            "PERMISSION_DENIED",
            &format!(
                "The caller does not have permission on project {project}, or it does not exist."
            ),
        );
    }
    let rest: Vec<&str> = segs[3..].to_vec();
    match (r.method.as_str(), verb, rest.as_slice()) {
        ("GET", None, []) if v3 => Response::json(
            200,
            &json!({"name": format!("projects/{PROJECT_NUMBER}"), "projectId": PROJECT_ID,
                "parent": "organizations/1", "state": "ACTIVE", "displayName": "Fake project",
                "etag": "W/\"1\""}),
        ),
        ("GET", None, []) => Response::json(
            200,
            &json!({"projectNumber": PROJECT_NUMBER, "projectId": PROJECT_ID,
                "lifecycleState": "ACTIVE", "name": "Fake project"}),
        ),
        ("POST", Some("getIamPolicy"), []) => Response::json(200, &s.project_policy),
        ("POST", Some("setIamPolicy"), []) => set_project_policy(s, r),
        ("POST", Some("testIamPermissions"), []) => test_permissions(s, r),
        (_, None, ["serviceAccounts", ..]) => service_accounts(s, r, &rest[1..]),
        (_, None, ["roles", ..]) => roles(s, r, &rest[1..]),
        (_, None, ["locations", "global", "workloadIdentityPools", ..]) => pools(s, r, &rest[3..]),
        _ => not_found(&r.path),
    }
}

fn token(s: &mut State, r: &Request) -> Response {
    let form = r.form();
    let owner = match form.get("grant_type").map(String::as_str) {
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => form
            .get("assertion")
            .filter(|a| a.split('.').count() == 3)
            .map(|a| jwt_claim(a, "iss").unwrap_or_default()),
        Some("refresh_token") => form
            .get("refresh_token")
            .filter(|t| !t.is_empty())
            .map(|_| "user".to_string()),
        _ => None,
    };
    let Some(owner) = owner else {
        return Response::json(
            400,
            &json!({"error": "invalid_grant", "error_description": "Invalid grant: bad assertion or refresh token."}),
        );
    };
    let t = format!("ya29.fake-{}", s.next());
    s.tokens.insert(t.clone());
    s.token_owner.insert(t.clone(), owner);
    Response::json(
        200,
        &json!({"access_token": t, "expires_in": 3599, "token_type": "Bearer"}),
    )
}

fn body(r: &Request) -> Result<Value, Response> {
    let mut v = r.json().map_err(|e| err(400, "INVALID_ARGUMENT", &e))?;
    if int_enums(r) {
        enum_names(&mut v);
    }
    Ok(v)
}

/// Whether the client asked for enums as numbers (`$alt=json;enum-encoding=int`, what Google's
/// generated Rust clients send): then enums in the request body are numbers too.
fn int_enums(r: &Request) -> bool {
    r.query("$alt")
        .is_some_and(|a| a.split(';').any(|p| p == "enum-encoding=int"))
}

/// The enum names of the numbers of the enum fields this fake reads (`google.iam.admin.v1`).
fn enum_name(field: &str, n: i64) -> Option<&'static str> {
    let names: &[(i64, &str)] = match field {
        "stage" => &[
            (0, "ALPHA"),
            (1, "BETA"),
            (2, "GA"),
            (4, "DEPRECATED"),
            (5, "DISABLED"),
            (6, "EAP"),
        ],
        "privateKeyType" => &[
            (0, "TYPE_UNSPECIFIED"),
            (1, "TYPE_PKCS12_FILE"),
            (2, "TYPE_GOOGLE_CREDENTIALS_FILE"),
        ],
        "keyAlgorithm" => &[
            (0, "KEY_ALG_UNSPECIFIED"),
            (1, "KEY_ALG_RSA_1024"),
            (2, "KEY_ALG_RSA_2048"),
        ],
        "keyTypes" | "keyType" => &[
            (0, "KEY_TYPE_UNSPECIFIED"),
            (1, "USER_MANAGED"),
            (2, "SYSTEM_MANAGED"),
        ],
        _ => return None,
    };
    names.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
}

/// Replaces the numbers of known enum fields by their names, everywhere in `v`.
fn enum_names(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if let Some(name) = x.as_i64().and_then(|n| enum_name(k, n)) {
                    *x = Value::String(name.into());
                } else {
                    enum_names(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(enum_names),
        _ => {}
    }
}

/// Checks an etag precondition: an absent etag overwrites, a stale one is a conflict.
fn etag_ok(current: &Value, new: &Value) -> bool {
    match new["etag"].as_str() {
        None | Some("") => true,
        Some(e) => current["etag"].as_str() == Some(e),
    }
}

fn set_project_policy(s: &mut State, r: &Request) -> Response {
    let b = match body(r) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let mut policy = b["policy"].clone();
    if !policy.is_object() {
        return err(400, "INVALID_ARGUMENT", "policy is required");
    }
    if !etag_ok(&s.project_policy, &policy) {
        return err(
            409,
            "ABORTED",
            "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.",
        );
    }
    for binding in policy["bindings"].as_array().cloned().unwrap_or_default() {
        let role = binding["role"].as_str().unwrap_or("");
        if let Some(id) = role.strip_prefix(&format!("projects/{PROJECT_ID}/roles/")) {
            if s.roles.get(id).is_none_or(|r| r["deleted"] == true) {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("Role ({role}) does not exist in the resource's hierarchy."),
                );
            }
        } else if !role.starts_with("roles/") {
            return err(
                400,
                "INVALID_ARGUMENT",
                &format!("Role {role} is not valid."),
            );
        }
        for m in binding["members"].as_array().cloned().unwrap_or_default() {
            let m = m.as_str().unwrap_or("");
            if let Some(email) = m.strip_prefix("serviceAccount:") {
                if email.ends_with(&format!("@{PROJECT_ID}.iam.gserviceaccount.com")) {
                    match s.sas.get_mut(email) {
                        Some(sa) if sa.invisible == 0 => {}
                        Some(sa) => {
                            sa.invisible -= 1;
                            return err(
                                400,
                                "INVALID_ARGUMENT",
                                &format!("Service account {email} does not exist."),
                            );
                        }
                        None => {
                            return err(
                                400,
                                "INVALID_ARGUMENT",
                                &format!("Service account {email} does not exist."),
                            )
                        }
                    }
                }
            }
        }
    }
    // Empty bindings are dropped, as IAM does.
    if let Some(bs) = policy["bindings"].as_array_mut() {
        bs.retain(|b| b["members"].as_array().is_some_and(|m| !m.is_empty()));
    }
    policy["etag"] = s.project_policy["etag"].clone();
    bump_etag(&mut policy);
    s.project_policy = policy.clone();
    Response::json(200, &policy)
}

fn bucket_policy(s: &mut State, r: &Request, bucket: &str) -> Response {
    let Some((policy, first)) = s.bucket_policies.get_mut(bucket) else {
        return not_found(&format!("bucket {bucket}"));
    };
    if *first {
        *first = false;
        return err(
            404,
            "NOT_FOUND",
            &format!("The specified bucket {bucket} does not exist."),
        );
    }
    match r.method.as_str() {
        "GET" => Response::json(200, policy),
        "PUT" => {
            let b = match body(r) {
                Ok(b) => b,
                Err(e) => return e,
            };
            if !etag_ok(policy, &b) {
                return err(
                    412,
                    "FAILED_PRECONDITION",
                    "Precondition Failed: etag mismatch",
                );
            }
            let mut p = b;
            p["kind"] = Value::String("storage#policy".into());
            p["resourceId"] = Value::String(format!("projects/_/buckets/{bucket}"));
            p["etag"] = policy["etag"].clone();
            bump_etag(&mut p);
            *policy = p.clone();
            Response::json(200, &p)
        }
        _ => not_found(&r.path),
    }
}

fn paged(r: &Request, key: &str, items: Vec<Value>) -> Response {
    let size = r
        .query("pageSize")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(100)
        .min(100);
    let start = r
        .query("pageToken")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(0);
    let chunk: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
    let mut out = json!({});
    if !chunk.is_empty() {
        out[key] = Value::Array(chunk);
    }
    if start + size < items.len() {
        out["nextPageToken"] = Value::String((start + size).to_string());
    }
    Response::json(200, &out)
}
