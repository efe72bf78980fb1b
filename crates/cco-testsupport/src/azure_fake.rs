//! A small stateful fake of Azure Resource Manager and of the Azure AD token endpoint, for the
//! services no emulator exists for. Storage accounts it creates point their blob endpoint at an
//! Azurite instance (`<azurite>/<account>/`), so the Blob data plane is the real emulator.
//!
//! Data model: one [`State`] behind a mutex holding resource groups, storage accounts, user-assigned
//! identities, federated identity credentials, role definitions (seeded with a few built-in roles)
//! and role assignments, keyed the way ARM addresses them. Behaviour pinned by
//! `tests/azure_fake.rs`:
//! - `POST /<tenant>/oauth2/v2.0/token` (client credentials) issues [`TOKEN`]; every ARM call needs it.
//!   It takes a client secret ([`CLIENT_ID`]/[`CLIENT_SECRET`]) or, for [`WORKLOAD_CLIENT_ID`], a
//!   federated client assertion that must be [`FEDERATED_TOKEN`] (workload identity); errors carry
//!   Entra ID's `AADSTS` codes. `GET /msi/token` is an App Service managed identity endpoint
//!   (`IDENTITY_ENDPOINT`, `X-IDENTITY-HEADER` = [`IDENTITY_HEADER`]) for [`MANAGED_CLIENT_ID`].
//!   `GET /<tenant>/v2.0/.well-known/openid-configuration` is Azure AD's tenant discovery, which MSAL
//!   (azure-identity) reads first; [`AzureFake::start_tls`] serves everything over https, as MSAL and
//!   the SDKs' bearer-token policy require.
//! - PUT answers 201 on create and 200 on update; a new storage account answers 202 with no body
//!   and a `Location` monitor that answers the account once done (at once), a long-running
//!   operation; `DELETE` of a resource group answers 202 (its monitor answers 200)
//!   and removes what it holds (accounts, identities, credentials, assignments in its scope).
//! - ARM's fixed path words match case-insensitively (the Python SDK sends `resourcegroups`).
//! - Storage account names are global: another group's name is `409 StorageAccountAlreadyTaken`.
//! - The first role assignment for a new principal fails with `400 PrincipalNotFound` (Azure AD's
//!   replication delay; clients retry). A second assignment of the same principal, role and scope
//!   under another name is `409 RoleAssignmentExists`; a role definition name used by another id is
//!   `409 RoleDefinitionWithSameNameExists`; deleting a role still assigned is
//!   `409 RoleDefinitionHasAssignments`.
//! - At most 20 federated credentials per identity, and no two with the same issuer and subject;
//!   `GET …/federatedIdentityCredentials` lists an identity's.
//! - Every request is logged with its status (`server.calls()`), so tests can count the writes.
//!
//! Judged by Microsoft's Python SDKs in `tests/official_azure.rs` (calls and answers checked against
//! the SDK models). Not modelled: operation monitors that report progress, locks, RBAC of the caller, `$filter` beyond
//! `roleName eq`, `type eq 'CustomRole'` and `principalId eq`, https-only issuers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::fake_http::{FakeServer, Handler, Request, Response};

#[path = "azure_fake_authz.rs"]
mod authz;
#[path = "azure_fake_entra.rs"]
mod entra;

use authz::authorization;
use entra::{managed_identity_token, openid_configuration, token};

/// The subscription the fake knows.
pub const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000001";
/// The tenant.
pub const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";
/// Client id and secret the token endpoint accepts.
pub const CLIENT_ID: &str = "ccoctl-test-client";
pub const CLIENT_SECRET: &str = "ccoctl-test-secret";
/// The client id of the workload identity application, whose federated credential trusts
/// [`FEDERATED_TOKEN`] (a projected service account token, as AKS or OpenShift mount it).
pub const WORKLOAD_CLIENT_ID: &str = "ccoctl-test-workload-client";
/// The only client assertion the token endpoint accepts for [`WORKLOAD_CLIENT_ID`].
pub const FEDERATED_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZha2UifQ.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwic3ViIjoic3lzdGVtOnNlcnZpY2VhY2NvdW50Om9wZW5zaGlmdC1jbG91ZC1jcmVkZW50aWFsLW9wZXJhdG9yOmNjb2N0bCIsImF1ZCI6WyJhcGk6Ly9BenVyZUFEVG9rZW5FeGNoYW5nZSJdfQ.c2lnbmF0dXJl";
/// The secret of the managed identity endpoint (`IDENTITY_HEADER`).
pub const IDENTITY_HEADER: &str = "ccoctl-test-identity-header";
/// The client id of the user-assigned managed identity the endpoint serves.
pub const MANAGED_CLIENT_ID: &str = "ccoctl-test-managed-identity";
/// The access token it issues.
pub const TOKEN: &str = "fake-arm-token";
/// Built-in roles the fake knows, by name.
pub const BUILTIN_ROLES: &[(&str, &str)] = &[
    ("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
    ("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
    (
        "Storage Blob Data Contributor",
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    ),
];

/// The fake's state.
#[derive(Default)]
pub struct State {
    pub resource_groups: BTreeMap<String, Value>,
    /// (group, account) → account.
    pub storage_accounts: BTreeMap<(String, String), Value>,
    /// (group, identity) → identity.
    pub identities: BTreeMap<(String, String), Value>,
    /// (group, identity, credential) → credential.
    pub federated_credentials: BTreeMap<(String, String, String), Value>,
    /// guid → definition (built-in and custom).
    pub role_definitions: BTreeMap<String, Value>,
    /// guid → assignment.
    pub role_assignments: BTreeMap<String, Value>,
    /// The grant of each token issued (`client_secret`, `client_assertion`, `managed_identity`).
    pub tokens_issued: Vec<String>,
    /// `expires_in` of the tokens issued (default 3599 s).
    pub token_lifetime: Option<u64>,
    /// Principals for which one PrincipalNotFound was already answered.
    replicated: BTreeSet<String>,
    counter: u64,
}

/// A running fake.
pub struct AzureFake {
    pub server: FakeServer,
    pub state: Arc<Mutex<State>>,
    /// When served over TLS: the CA file clients trust (`SSL_CERT_FILE` in [`AzureFake::env`]).
    ca_file: Option<(tempfile::TempDir, std::path::PathBuf)>,
}

fn err(status: u16, code: &str, message: &str) -> Response {
    Response::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

impl AzureFake {
    /// Starts the fake; storage accounts get blob endpoints below `azurite` (`http://127.0.0.1:<port>`).
    pub fn start(azurite: &str) -> anyhow::Result<AzureFake> {
        Self::start_full(azurite, None)
    }

    /// Like [`AzureFake::start`], served over TLS with the server certificate of `ca` (the endpoint
    /// is `https://…`): what the official SDKs need (MSAL and the ARM bearer-token policy refuse
    /// plain http).
    pub fn start_tls(azurite: &str, ca: &crate::tls::TestCa) -> anyhow::Result<AzureFake> {
        let mut fake = Self::start_full(azurite, Some(ca.server_config()?))?;
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("azure-fake-ca.pem");
        std::fs::write(&file, &ca.ca_pem)?;
        fake.ca_file = Some((dir, file));
        Ok(fake)
    }

    /// Like [`AzureFake::start_tls`] with a CA of its own: what `ccoctl` needs (the Azure SDK's
    /// credentials accept only an https authority). [`AzureFake::env`] then sets `SSL_CERT_FILE`.
    pub fn start_https(azurite: &str) -> anyhow::Result<AzureFake> {
        Self::start_tls(azurite, &crate::tls::TestCa::generate()?)
    }

    /// The CA file to trust, when served over TLS.
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.ca_file.as_ref().map(|(_, f)| f.as_path())
    }

    fn start_full(
        azurite: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> anyhow::Result<AzureFake> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(Mutex::new(State::default()));
        if let Ok(mut s) = state.lock() {
            for (name, guid) in BUILTIN_ROLES {
                s.role_definitions.insert(
                    guid.to_string(),
                    json!({
                        "id": format!("/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
                        "name": guid,
                        "type": "Microsoft.Authorization/roleDefinitions",
                        "properties": {"roleName": name, "type": "BuiltInRole", "assignableScopes": ["/"], "permissions": []}
                    }),
                );
            }
        }
        let st = state.clone();
        let azurite = azurite.trim_end_matches('/').to_string();
        let handler: Handler = Arc::new(move |r: &Request| {
            if let Some(v) = openid_configuration(scheme, r) {
                return v;
            }
            let Ok(mut s) = st.lock() else {
                return err(500, "InternalError", "poisoned");
            };
            handle(&mut s, &azurite, r)
        });
        Ok(AzureFake {
            server: FakeServer::start_full(handler, None, tls)?,
            state,
            ca_file: None,
        })
    }

    /// `http://127.0.0.1:<port>`: both the authority host and the Resource Manager endpoint.
    pub fn endpoint(&self) -> &str {
        &self.server.endpoint
    }

    /// Environment for `ccoctl` to talk to this fake (with `SSL_CERT_FILE` when it serves TLS).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AZURE_AUTHORITY_HOST", self.server.endpoint.clone()),
            (
                "AZURE_RESOURCE_MANAGER_ENDPOINT",
                self.server.endpoint.clone(),
            ),
            ("AZURE_CLIENT_ID", CLIENT_ID.into()),
            ("AZURE_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("AZURE_TENANT_ID", TENANT.into()),
        ];
        if let Some(f) = self.ca_file() {
            env.push(("SSL_CERT_FILE", f.to_string_lossy().into_owned()));
        }
        env
    }

    /// The managed identity endpoint (`IDENTITY_ENDPOINT`, App Service style).
    pub fn identity_endpoint(&self) -> String {
        format!("{}/msi/token", self.server.endpoint)
    }

    /// The grants of the tokens issued so far.
    pub fn tokens_issued(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.tokens_issued.clone())
            .unwrap_or_default()
    }

    /// Makes the tokens issued from now on last `secs` seconds.
    pub fn set_token_lifetime(&self, secs: u64) {
        if let Ok(mut s) = self.state.lock() {
            s.token_lifetime = Some(secs);
        }
    }

    /// How many objects of each kind exist (custom roles only), for "nothing left" checks.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        if let Ok(s) = self.state.lock() {
            m.insert("resource_groups", s.resource_groups.len());
            m.insert("storage_accounts", s.storage_accounts.len());
            m.insert("identities", s.identities.len());
            m.insert("federated_credentials", s.federated_credentials.len());
            m.insert(
                "custom_roles",
                s.role_definitions
                    .values()
                    .filter(|d| d["properties"]["type"] == "CustomRole")
                    .count(),
            );
            m.insert("role_assignments", s.role_assignments.len());
        }
        m
    }

    /// Creates a resource group directly (e.g. the installer's, which ccoctl does not own).
    pub fn insert_resource_group(&self, name: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.resource_groups.insert(
                lower(name),
                json!({"id": format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{name}"), "name": name, "location": "eastus", "tags": {}, "properties": {"provisioningState": "Succeeded"}}),
            );
        }
    }
}

fn new_guid(s: &mut State) -> String {
    s.counter += 1;
    format!("{:08x}-0000-4000-8000-{:012x}", s.counter, s.counter)
}

/// ARM's fixed path words, in their documented spelling: ARM matches them case-insensitively (the
/// Python SDK sends `resourcegroups`), so the routes below see them canonicalized.
const ARM_WORDS: &[&str] = &[
    "subscriptions",
    "resourceGroups",
    "providers",
    "Microsoft.Storage",
    "storageAccounts",
    "listKeys",
    "Microsoft.ManagedIdentity",
    "userAssignedIdentities",
    "federatedIdentityCredentials",
    "Microsoft.Authorization",
    "roleDefinitions",
    "roleAssignments",
];

fn handle(s: &mut State, azurite: &str, r: &Request) -> Response {
    let segs: Vec<&str> = r
        .segs()
        .into_iter()
        .map(|x| {
            ARM_WORDS
                .iter()
                .find(|w| w.eq_ignore_ascii_case(x))
                .copied()
                .unwrap_or(x)
        })
        .collect();
    if r.method == "POST" && segs.len() == 4 && segs[1] == "oauth2" && segs[3] == "token" {
        return token(s, r);
    }
    if r.method == "GET" && segs == ["msi", "token"] {
        return managed_identity_token(s, r);
    }
    if r.bearer() != Some(TOKEN) {
        return err(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing or invalid.",
        );
    }
    // The status monitors of long-running operations (the `Location` of a 202): done at once; a
    // finished storage account creation answers with the account, as ARM's monitor does.
    if r.method == "GET" && segs.first() == Some(&"operations") {
        if let ["operations", "storage-create", rg, name] = segs.as_slice() {
            return match s.storage_accounts.get(&(lower(rg), lower(name))) {
                Some(v) => Response::json(200, v),
                None => err(404, "ResourceNotFound", "storage account not found"),
            };
        }
        return Response::json(200, &json!({"status": "Succeeded"}));
    }
    if r.query("api-version").is_none() {
        return err(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    if segs.len() < 2 || segs[0] != "subscriptions" {
        return err(404, "NotFound", "no such route");
    }
    if segs[1] != SUBSCRIPTION {
        return err(
            404,
            "SubscriptionNotFound",
            &format!("The subscription '{}' could not be found.", segs[1]),
        );
    }
    let sub_id = format!("/subscriptions/{SUBSCRIPTION}");
    if segs.len() == 2 {
        return Response::json(
            200,
            &json!({"id": sub_id, "subscriptionId": SUBSCRIPTION, "state": "Enabled", "tenantId": TENANT}),
        );
    }
    // Authorization, at subscription or resource group scope.
    if let Some(i) = segs.iter().position(|x| *x == "Microsoft.Authorization") {
        let scope = format!("/{}", segs[..i - 1].join("/"));
        return authorization(s, r, &scope, &segs[i + 1..]);
    }
    if segs[2] != "resourceGroups" || segs.len() < 4 {
        return err(404, "NotFound", "no such route");
    }
    let rg = segs[3].to_string();
    let rg_key = lower(&rg);
    let rest = &segs[4..];
    if rest.is_empty() {
        return resource_group(s, r, &rg);
    }
    if !s.resource_groups.contains_key(&rg_key) {
        return err(
            404,
            "ResourceGroupNotFound",
            &format!("Resource group '{rg}' could not be found."),
        );
    }
    match rest {
        ["providers", "Microsoft.Storage", "storageAccounts", name] => {
            storage_account(s, r, azurite, &rg, name)
        }
        ["providers", "Microsoft.Storage", "storageAccounts", name, "listKeys"]
            if r.method == "POST" =>
        {
            if s.storage_accounts
                .contains_key(&(rg_key.clone(), lower(name)))
            {
                Response::json(
                    200,
                    &json!({"keys": [{"keyName": "key1", "value": crate::azurite::DEV_KEY, "permissions": "FULL"}]}),
                )
            } else {
                err(404, "ResourceNotFound", "storage account not found")
            }
        }
        ["providers", "Microsoft.ManagedIdentity", "userAssignedIdentities"] => {
            let v: Vec<Value> = s
                .identities
                .iter()
                .filter(|((g, _), _)| *g == rg_key)
                .map(|(_, v)| v.clone())
                .collect();
            Response::json(200, &json!({"value": v}))
        }
        ["providers", "Microsoft.ManagedIdentity", "userAssignedIdentities", name] => {
            identity(s, r, &rg, name)
        }
        ["providers", "Microsoft.ManagedIdentity", "userAssignedIdentities", name, "federatedIdentityCredentials"]
            if r.method == "GET" =>
        {
            let ikey = (rg_key.clone(), lower(name));
            if !s.identities.contains_key(&ikey) {
                return err(
                    404,
                    "ParentResourceNotFound",
                    &format!("identity {name} not found"),
                );
            }
            let v: Vec<Value> = s
                .federated_credentials
                .iter()
                .filter(|((g, i, _), _)| *g == ikey.0 && *i == ikey.1)
                .map(|(_, v)| v.clone())
                .collect();
            Response::json(200, &json!({"value": v}))
        }
        ["providers", "Microsoft.ManagedIdentity", "userAssignedIdentities", name, "federatedIdentityCredentials", fic] => {
            federated(s, r, &rg, name, fic)
        }
        _ => err(404, "NotFound", "no such route"),
    }
}

fn resource_group(s: &mut State, r: &Request, rg: &str) -> Response {
    let key = lower(rg);
    match r.method.as_str() {
        "GET" => match s.resource_groups.get(&key) {
            Some(v) => Response::json(200, v),
            None => err(
                404,
                "ResourceGroupNotFound",
                &format!("Resource group '{rg}' could not be found."),
            ),
        },
        "PUT" => {
            let Ok(body) = r.json() else {
                return err(400, "InvalidRequestContent", "bad JSON");
            };
            let Some(loc) = body["location"].as_str() else {
                return err(
                    400,
                    "LocationRequired",
                    "The location property is required.",
                );
            };
            let existed = s.resource_groups.contains_key(&key);
            let v = json!({
                "id": format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}"),
                "name": rg, "location": loc, "tags": body.get("tags").cloned().unwrap_or(json!({})),
                "properties": {"provisioningState": "Succeeded"}
            });
            s.resource_groups.insert(key, v.clone());
            Response::json(if existed { 200 } else { 201 }, &v)
        }
        "DELETE" => {
            if s.resource_groups.remove(&key).is_none() {
                return err(
                    404,
                    "ResourceGroupNotFound",
                    &format!("Resource group '{rg}' could not be found."),
                );
            }
            s.storage_accounts.retain(|(g, _), _| *g != key);
            s.identities.retain(|(g, _), _| *g != key);
            s.federated_credentials.retain(|(g, _, _), _| *g != key);
            let prefix = lower(&format!(
                "/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}"
            ));
            s.role_assignments.retain(|_, a| {
                !lower(a["properties"]["scope"].as_str().unwrap_or("")).starts_with(&prefix)
            });
            Response::empty(202).with_header("location", "/operations/rg-delete")
        }
        _ => err(405, "MethodNotAllowed", "method"),
    }
}

fn storage_account(s: &mut State, r: &Request, azurite: &str, rg: &str, name: &str) -> Response {
    let key = (lower(rg), lower(name));
    match r.method.as_str() {
        "GET" => match s.storage_accounts.get(&key) {
            Some(v) => Response::json(200, v),
            None => err(
                404,
                "ResourceNotFound",
                &format!("The Resource 'Microsoft.Storage/storageAccounts/{name}' under resource group '{rg}' was not found."),
            ),
        },
        "PUT" => {
            if !(3..=24).contains(&name.len())
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            {
                return err(
                    400,
                    "AccountNameInvalid",
                    &format!("{name} is not a valid storage account name."),
                );
            }
            if s
                .storage_accounts
                .keys()
                .any(|(g, n)| *n == key.1 && *g != key.0)
            {
                return err(
                    409,
                    "StorageAccountAlreadyTaken",
                    &format!("The storage account named {name} is already taken."),
                );
            }
            let Ok(body) = r.json() else {
                return err(400, "InvalidRequestContent", "bad JSON");
            };
            let existed = s.storage_accounts.contains_key(&key);
            let v = json!({
                "id": format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}"),
                "name": name, "type": "Microsoft.Storage/storageAccounts",
                "kind": body["kind"], "sku": body["sku"], "location": body["location"],
                "tags": body.get("tags").cloned().unwrap_or(json!({})),
                "properties": {
                    "provisioningState": "Succeeded",
                    "allowBlobPublicAccess": body["properties"]["allowBlobPublicAccess"],
                    "supportsHttpsTrafficOnly": body["properties"]["supportsHttpsTrafficOnly"],
                    "minimumTlsVersion": body["properties"]["minimumTlsVersion"],
                    "primaryEndpoints": {"blob": format!("{azurite}/{name}/")},
                }
            });
            s.storage_accounts.insert(key, v.clone());
            if existed {
                Response::json(200, &v)
            } else {
                Response::empty(202).with_header(
                    "location",
                    &format!("/operations/storage-create/{rg}/{name}"),
                )
            }
        }
        "DELETE" => {
            if s.storage_accounts.remove(&key).is_some() {
                Response::empty(200)
            } else {
                Response::empty(204)
            }
        }
        _ => err(405, "MethodNotAllowed", "method"),
    }
}

fn identity(s: &mut State, r: &Request, rg: &str, name: &str) -> Response {
    let key = (lower(rg), lower(name));
    match r.method.as_str() {
        "GET" => match s.identities.get(&key) {
            Some(v) => Response::json(200, v),
            None => err(
                404,
                "ResourceNotFound",
                &format!("identity {name} not found"),
            ),
        },
        "PUT" => {
            let Ok(body) = r.json() else {
                return err(400, "InvalidRequestContent", "bad JSON");
            };
            if name.len() > 128 {
                return err(400, "InvalidResourceName", "name longer than 128");
            }
            let (client, principal, existed) = match s.identities.get(&key) {
                Some(v) => (
                    v["properties"]["clientId"].clone(),
                    v["properties"]["principalId"].clone(),
                    true,
                ),
                None => (json!(new_guid(s)), json!(new_guid(s)), false),
            };
            let v = json!({
                "id": format!("/subscriptions/{SUBSCRIPTION}/resourcegroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"),
                "name": name, "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                "location": body["location"], "tags": body.get("tags").cloned().unwrap_or(json!({})),
                "properties": {"tenantId": TENANT, "clientId": client, "principalId": principal}
            });
            s.identities.insert(key, v.clone());
            Response::json(if existed { 200 } else { 201 }, &v)
        }
        "DELETE" => {
            if s.identities.remove(&key).is_some() {
                s.federated_credentials
                    .retain(|(g, i, _), _| !(*g == key.0 && *i == key.1));
                Response::empty(200)
            } else {
                Response::empty(204)
            }
        }
        _ => err(405, "MethodNotAllowed", "method"),
    }
}

fn federated(s: &mut State, r: &Request, rg: &str, identity: &str, fic: &str) -> Response {
    let ikey = (lower(rg), lower(identity));
    if !s.identities.contains_key(&ikey) {
        return err(
            404,
            "ParentResourceNotFound",
            &format!("identity {identity} not found"),
        );
    }
    let key = (ikey.0.clone(), ikey.1.clone(), lower(fic));
    match r.method.as_str() {
        "GET" => match s.federated_credentials.get(&key) {
            Some(v) => Response::json(200, v),
            None => err(404, "NotFound", "federated credential not found"),
        },
        "PUT" => {
            let Ok(body) = r.json() else {
                return err(400, "InvalidRequestContent", "bad JSON");
            };
            let p = &body["properties"];
            if p["issuer"].as_str().is_none()
                || p["subject"].as_str().is_none()
                || p["audiences"].as_array().is_none_or(|a| a.is_empty())
            {
                return err(
                    400,
                    "BadRequest",
                    "issuer, subject and audiences are required",
                );
            }
            let siblings: Vec<&Value> = s
                .federated_credentials
                .iter()
                .filter(|((g, i, f), _)| *g == key.0 && *i == key.1 && *f != key.2)
                .map(|(_, v)| v)
                .collect();
            if siblings.iter().any(|v| {
                v["properties"]["issuer"] == p["issuer"]
                    && v["properties"]["subject"] == p["subject"]
            }) {
                return err(
                    409,
                    "Conflict",
                    "a federated credential with this issuer and subject already exists",
                );
            }
            let existed = s.federated_credentials.contains_key(&key);
            if !existed && siblings.len() >= 20 {
                return err(
                    400,
                    "BadRequest",
                    "at most 20 federated identity credentials per identity",
                );
            }
            let v = json!({
                "id": format!("/subscriptions/{SUBSCRIPTION}/resourcegroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{identity}/federatedIdentityCredentials/{fic}"),
                "name": fic,
                "properties": {"issuer": p["issuer"], "subject": p["subject"], "audiences": p["audiences"]}
            });
            s.federated_credentials.insert(key, v.clone());
            Response::json(if existed { 200 } else { 201 }, &v)
        }
        "DELETE" => {
            if s.federated_credentials.remove(&key).is_some() {
                Response::empty(200)
            } else {
                Response::empty(204)
            }
        }
        _ => err(405, "MethodNotAllowed", "method"),
    }
}
