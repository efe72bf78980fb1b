//! The GCP fake's IAM v1 service accounts (with their keys and IAM policies), custom roles and
//! `testIamPermissions`: the handlers [`super::handle`] routes to.

use super::*;

pub(super) fn valid_account_id(id: &str) -> bool {
    let b = id.as_bytes();
    (6..=30).contains(&id.len())
        && b[0].is_ascii_lowercase()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.ends_with('-')
}

pub(super) fn service_accounts(s: &mut State, r: &Request, rest: &[&str]) -> Response {
    match (r.method.as_str(), rest) {
        ("GET", []) => {
            let all: Vec<Value> = s.sas.values().map(|a| a.json.clone()).collect();
            paged(r, "accounts", all)
        }
        ("POST", []) => {
            let b = match body(r) {
                Ok(b) => b,
                Err(e) => return e,
            };
            let id = b["accountId"].as_str().unwrap_or("");
            if !valid_account_id(id) {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    &format!(
                        "Invalid account ID {id}: must match ^[a-z](?:[-a-z0-9]{{4,28}}[a-z0-9])$"
                    ),
                );
            }
            let email = format!("{id}@{PROJECT_ID}.iam.gserviceaccount.com");
            if s.sas.contains_key(&email) {
                return err(
                    409,
                    "ALREADY_EXISTS",
                    &format!(
                        "Service account {id} already exists within project projects/{PROJECT_ID}."
                    ),
                );
            }
            let display = b["serviceAccount"]["displayName"].as_str().unwrap_or("");
            if display.len() > 100 {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    "displayName is longer than 100 characters",
                );
            }
            let desc = b["serviceAccount"]["description"].as_str().unwrap_or("");
            let sa = new_sa(s, id, display, desc);
            s.sas.insert(
                email,
                Sa {
                    json: sa.clone(),
                    policy: json!({"version": 1, "etag": "ACAB"}),
                    invisible: SA_INVISIBLE_CALLS,
                    keys: BTreeMap::new(),
                },
            );
            Response::json(200, &sa)
        }
        (method, [email, "keys", more @ ..]) => keys(s, r, method, email, more),
        (method, [target]) => {
            let (email, verb) = match target.split_once(':') {
                Some((e, v)) => (e, Some(v)),
                None => (*target, None),
            };
            let Some(sa) = s.sas.get_mut(email) else {
                return not_found(&format!("projects/{PROJECT_ID}/serviceAccounts/{email}"));
            };
            match (method, verb) {
                ("GET", None) => Response::json(200, &sa.json),
                ("DELETE", None) => {
                    delete_sa(s, email);
                    Response::json(200, &json!({}))
                }
                ("POST", Some(v @ ("getIamPolicy" | "setIamPolicy"))) => {
                    if sa.invisible > 0 {
                        sa.invisible -= 1;
                        return not_found(&format!(
                            "projects/{PROJECT_ID}/serviceAccounts/{email}"
                        ));
                    }
                    if v == "getIamPolicy" {
                        // IAM v1 takes no body here (the version is `?options.requestedPolicyVersion`);
                        // Google refuses a JSON body naming fields the method does not have.
                        if let Some(name) = r
                            .json()
                            .ok()
                            .and_then(|b| b.as_object().and_then(|o| o.keys().next().cloned()))
                        {
                            return err(400, "INVALID_ARGUMENT", &format!(
                                "Invalid JSON payload received. Unknown name \"{name}\": Cannot find field."));
                        }
                        return Response::json(200, &sa.policy);
                    }
                    let b = match body(r) {
                        Ok(b) => b,
                        Err(e) => return e,
                    };
                    let mut policy = b["policy"].clone();
                    if !etag_ok(&sa.policy, &policy) {
                        return err(409, "ABORTED", "There were concurrent policy changes.");
                    }
                    if let Some(bs) = policy["bindings"].as_array_mut() {
                        bs.retain(|b| b["members"].as_array().is_some_and(|m| !m.is_empty()));
                    }
                    policy["etag"] = sa.policy["etag"].clone();
                    bump_etag(&mut policy);
                    sa.policy = policy.clone();
                    Response::json(200, &policy)
                }
                _ => not_found(&r.path),
            }
        }
        _ => not_found(&r.path),
    }
}

pub(super) fn test_permissions(s: &mut State, r: &Request) -> Response {
    let b = match body(r) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let asked: Vec<String> = b["permissions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    if asked.len() > 100 {
        return err(
            400,
            "INVALID_ARGUMENT",
            "No more than 100 permissions can be tested at once.",
        );
    }
    if let Some(bad) = asked.iter().find(|p| !valid_permission(p)) {
        return err(
            400,
            "INVALID_ARGUMENT",
            &format!("Permission {bad} is not valid."),
        );
    }
    let held: Vec<&String> = asked
        .iter()
        .filter(|p| s.caller_permissions.as_ref().is_none_or(|c| c.contains(*p)))
        .collect();
    // Like the API, an empty answer is `{}`.
    if held.is_empty() {
        Response::json(200, &json!({}))
    } else {
        Response::json(200, &json!({"permissions": held}))
    }
}

pub(super) fn keys(
    s: &mut State,
    r: &Request,
    method: &str,
    email: &str,
    rest: &[&str],
) -> Response {
    let n = s.next();
    let endpoint = s.endpoint.clone();
    let State {
        sas, signing_keys, ..
    } = s;
    let Some(sa) = sas.get_mut(email) else {
        return not_found(&format!("projects/{PROJECT_ID}/serviceAccounts/{email}"));
    };
    let key_name = |id: &str| format!("projects/{PROJECT_ID}/serviceAccounts/{email}/keys/{id}");
    match (method, rest) {
        ("GET", []) => {
            let types: String = r
                .query("keyTypes")
                .unwrap_or("")
                .split(',')
                .map(
                    |t| match t.parse::<i64>().ok().and_then(|n| enum_name("keyTypes", n)) {
                        Some(name) => name,
                        None => t,
                    },
                )
                .collect::<Vec<_>>()
                .join(",");
            let keys: Vec<Value> = sa
                .keys
                .values()
                .filter(|k| types.is_empty() || types.split(',').any(|t| k["keyType"] == t))
                .cloned()
                .collect();
            Response::json(200, &json!({"keys": keys}))
        }
        ("POST", []) => {
            if sa.invisible > 0 {
                sa.invisible -= 1;
                return not_found(&format!("projects/{PROJECT_ID}/serviceAccounts/{email}"));
            }
            let id = format!("{:040x}", 0x5eed_0000_u64 + n);
            let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
                .map(|k| k.serialize_pem())
                .unwrap_or_default();
            let file = json!({"type": "service_account", "project_id": PROJECT_ID,
                "private_key_id": id, "private_key": pem, "client_email": email,
                "client_id": sa.json["uniqueId"],
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": format!("{endpoint}/token")});
            let key = json!({"name": key_name(&id), "keyAlgorithm": "KEY_ALG_RSA_2048",
                "keyOrigin": "GOOGLE_PROVIDED", "keyType": "USER_MANAGED",
                "validAfterTime": "2024-01-01T00:00:00Z", "validBeforeTime": "9999-12-31T23:59:59Z"});
            signing_keys.insert(id.clone(), (email.to_string(), pem));
            sa.keys.insert(id, key.clone());
            let mut out = key;
            out["privateKeyType"] = Value::String("TYPE_GOOGLE_CREDENTIALS_FILE".into());
            out["privateKeyData"] =
                Value::String(base64::engine::general_purpose::STANDARD.encode(file.to_string()));
            Response::json(200, &out)
        }
        ("GET", [id]) => match sa.keys.get(*id) {
            Some(k) => Response::json(200, k),
            None => not_found(&key_name(id)),
        },
        ("DELETE", [id]) => match sa.keys.remove(*id) {
            Some(_) => {
                signing_keys.remove(*id);
                Response::json(200, &json!({}))
            }
            None => not_found(&key_name(id)),
        },
        _ => not_found(&r.path),
    }
}

pub(super) fn valid_role_id(id: &str) -> bool {
    (3..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

pub(super) fn valid_permission(p: &str) -> bool {
    let parts: Vec<&str> = p.split('.').collect();
    parts.len() >= 3
        && parts
            .iter()
            .all(|x| !x.is_empty() && x.chars().all(|c| c.is_ascii_alphanumeric()))
}

pub(super) fn roles(s: &mut State, r: &Request, rest: &[&str]) -> Response {
    match (r.method.as_str(), rest) {
        ("GET", []) => {
            let show_deleted = r.query("showDeleted") == Some("true");
            let all: Vec<Value> = s
                .roles
                .values()
                .filter(|x| show_deleted || x["deleted"] != true)
                .map(|x| {
                    let mut v = x.clone();
                    if r.query("view") != Some("FULL") {
                        if let Some(o) = v.as_object_mut() {
                            o.remove("includedPermissions");
                        }
                    }
                    v
                })
                .collect();
            paged(r, "roles", all)
        }
        ("POST", []) => {
            let b = match body(r) {
                Ok(b) => b,
                Err(e) => return e,
            };
            let id = b["roleId"].as_str().unwrap_or("");
            if !valid_role_id(id) {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("The role_id ({id}) is not valid."),
                );
            }
            if let Some(bad) = b["role"]["includedPermissions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| !p.as_str().is_some_and(valid_permission))
            {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("Permission {bad} is not valid."),
                );
            }
            match s.roles.get(id) {
                Some(x) if x["deleted"] == true => {
                    return err(400, "FAILED_PRECONDITION", &format!(
                        "You can't create a role with role_id ({id}) where there is an existing role with that role_id in a deleted state."))
                }
                Some(_) => {
                    return err(409, "ALREADY_EXISTS", &format!("A role named {id} in projects/{PROJECT_ID} already exists."))
                }
                None => {}
            }
            let mut role = b["role"].clone();
            role["name"] = Value::String(format!("projects/{PROJECT_ID}/roles/{id}"));
            role["etag"] = etag(&format!("role-{}", s.next()));
            if role["stage"].is_null() {
                role["stage"] = Value::String("ALPHA".into());
            }
            s.roles.insert(id.into(), role.clone());
            Response::json(200, &role)
        }
        (method, [target]) => {
            let (id, verb) = match target.split_once(':') {
                Some((i, v)) => (i, Some(v)),
                None => (*target, None),
            };
            let n = s.next();
            let Some(role) = s.roles.get_mut(id) else {
                return not_found(&format!("projects/{PROJECT_ID}/roles/{id}"));
            };
            match (method, verb) {
                ("GET", None) => Response::json(200, role),
                ("PATCH", None) => {
                    if role["deleted"] == true {
                        return err(
                            400,
                            "FAILED_PRECONDITION",
                            "You can't update a deleted role.",
                        );
                    }
                    let b = match body(r) {
                        Ok(b) => b,
                        Err(e) => return e,
                    };
                    let mask = r.query("updateMask").unwrap_or("");
                    for f in mask.split(',').filter(|f| !f.is_empty()) {
                        role[f] = b[f].clone();
                    }
                    role["etag"] = etag(&format!("role-{n}"));
                    Response::json(200, role)
                }
                ("DELETE", None) => {
                    if role["deleted"] == true {
                        return err(400, "FAILED_PRECONDITION", "The role is already deleted.");
                    }
                    role["deleted"] = Value::Bool(true);
                    Response::json(200, role)
                }
                ("POST", Some("undelete")) => {
                    if let Some(o) = role.as_object_mut() {
                        o.remove("deleted");
                    }
                    Response::json(200, role)
                }
                _ => not_found(&r.path),
            }
        }
        _ => not_found(&r.path),
    }
}
