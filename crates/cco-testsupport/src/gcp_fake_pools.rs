//! The GCP fake's IAM v1 workload identity pools and OIDC providers, with their long-running
//! operations: the handlers [`super::handle`] routes to.

use super::*;

pub(super) fn valid_pool_id(id: &str) -> bool {
    (4..=32).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with("gcp-")
}

pub(super) fn operation(s: &mut State, parent: &str, response: Value) -> Response {
    let name = format!("{parent}/operations/op-{}", s.next());
    s.operations.insert(name.clone(), response);
    Response::json(200, &json!({"name": name, "done": false}))
}

pub(super) fn pools(s: &mut State, r: &Request, rest: &[&str]) -> Response {
    // Operation polls: `…/operations/{id}` anywhere below a pool.
    if r.method == "GET" && rest.len() >= 3 && rest[rest.len() - 2] == "operations" {
        let name = format!(
            "projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{}",
            rest.join("/")
        );
        return match s.operations.get(&name) {
            Some(resp) => {
                Response::json(200, &json!({"name": name, "done": true, "response": resp}))
            }
            None => not_found(&name),
        };
    }
    match (r.method.as_str(), rest) {
        ("GET", []) => {
            let show_deleted = r.query("showDeleted") == Some("true");
            let all: Vec<Value> = s
                .pools
                .values()
                .filter(|p| show_deleted || p["state"] != "DELETED")
                .cloned()
                .collect();
            paged(r, "workloadIdentityPools", all)
        }
        ("POST", []) => {
            let id = r.query("workloadIdentityPoolId").unwrap_or("").to_string();
            if !valid_pool_id(&id) {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("Invalid workload identity pool id {id}."),
                );
            }
            if s.pools.contains_key(&id) {
                return err(
                    409,
                    "ALREADY_EXISTS",
                    &format!("Requested entity already exists: {}", pool_name(&id)),
                );
            }
            let b = match body(r) {
                Ok(b) => b,
                Err(e) => return e,
            };
            let pool = json!({"name": pool_name(&id), "displayName": b["displayName"], "description": b["description"],
                "state": "ACTIVE", "disabled": b["disabled"].as_bool().unwrap_or(false)});
            s.pools.insert(id.clone(), pool.clone());
            operation(s, &pool_name(&id), pool)
        }
        (method, [target]) => {
            let (id, verb) = match target.split_once(':') {
                Some((i, v)) => (i, Some(v)),
                None => (*target, None),
            };
            let Some(pool) = s.pools.get(id).cloned() else {
                return not_found(&pool_name(id));
            };
            match (method, verb) {
                ("GET", None) => Response::json(200, &pool),
                ("DELETE", None) => {
                    if pool["state"] == "DELETED" {
                        return err(400, "FAILED_PRECONDITION", "The pool is already deleted.");
                    }
                    let mut p = pool;
                    p["state"] = Value::String("DELETED".into());
                    s.pools.insert(id.into(), p.clone());
                    operation(s, &pool_name(id), p)
                }
                ("POST", Some("undelete")) => {
                    let mut p = pool;
                    p["state"] = Value::String("ACTIVE".into());
                    s.pools.insert(id.into(), p.clone());
                    operation(s, &pool_name(id), p)
                }
                _ => not_found(&r.path),
            }
        }
        (method, [pool_id, "providers", more @ ..]) => {
            match s.pools.get(*pool_id) {
                Some(p) if p["state"] == "ACTIVE" => {}
                Some(_) => return err(400, "FAILED_PRECONDITION", "The pool is deleted."),
                None => return not_found(&pool_name(pool_id)),
            }
            providers(s, r, method, pool_id, more)
        }
        _ => not_found(&r.path),
    }
}

pub(super) fn providers(
    s: &mut State,
    r: &Request,
    method: &str,
    pool: &str,
    rest: &[&str],
) -> Response {
    let pname = |id: &str| format!("{}/providers/{id}", pool_name(pool));
    match (method, rest) {
        ("GET", []) => {
            let all: Vec<Value> = s
                .providers
                .iter()
                .filter(|((p, _), v)| p == pool && v["state"] != "DELETED")
                .map(|(_, v)| v.clone())
                .collect();
            paged(r, "workloadIdentityPoolProviders", all)
        }
        ("POST", []) => {
            let id = r
                .query("workloadIdentityPoolProviderId")
                .unwrap_or("")
                .to_string();
            if !valid_pool_id(&id) {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("Invalid provider id {id}."),
                );
            }
            if s.providers.contains_key(&(pool.to_string(), id.clone())) {
                return err(
                    409,
                    "ALREADY_EXISTS",
                    &format!("Requested entity already exists: {}", pname(&id)),
                );
            }
            let b = match body(r) {
                Ok(b) => b,
                Err(e) => return e,
            };
            if let Some(e) = check_oidc(&b) {
                return e;
            }
            let mut p = b;
            p["name"] = Value::String(pname(&id));
            p["state"] = Value::String("ACTIVE".into());
            s.providers.insert((pool.into(), id.clone()), p.clone());
            operation(s, &pname(&id), p)
        }
        (method, [target]) => {
            let (id, verb) = match target.split_once(':') {
                Some((i, v)) => (i, Some(v)),
                None => (*target, None),
            };
            let key = (pool.to_string(), id.to_string());
            let Some(mut p) = s.providers.get(&key).cloned() else {
                return not_found(&pname(id));
            };
            match (method, verb) {
                ("GET", None) => Response::json(200, &p),
                ("PATCH", None) => {
                    let b = match body(r) {
                        Ok(b) => b,
                        Err(e) => return e,
                    };
                    for f in r.query("updateMask").unwrap_or("").split(',') {
                        match f {
                            "" => {}
                            "oidc.issuerUri" | "oidc.allowedAudiences" | "oidc.jwksJson" => {
                                let k = &f[5..];
                                p["oidc"][k] = b["oidc"][k].clone();
                            }
                            "oidc" | "attributeMapping" | "displayName" | "description"
                            | "disabled" | "attributeCondition" => p[f] = b[f].clone(),
                            other => {
                                return err(
                                    400,
                                    "INVALID_ARGUMENT",
                                    &format!("Invalid update mask field {other}."),
                                )
                            }
                        }
                    }
                    if let Some(e) = check_oidc(&p) {
                        return e;
                    }
                    s.providers.insert(key, p.clone());
                    operation(s, &pname(id), p)
                }
                ("DELETE", None) => {
                    p["state"] = Value::String("DELETED".into());
                    s.providers.insert(key, p.clone());
                    operation(s, &pname(id), p)
                }
                ("POST", Some("undelete")) => {
                    p["state"] = Value::String("ACTIVE".into());
                    s.providers.insert(key, p.clone());
                    operation(s, &pname(id), p)
                }
                _ => not_found(&r.path),
            }
        }
        _ => not_found(&r.path),
    }
}

pub(super) fn check_oidc(p: &Value) -> Option<Response> {
    let issuer = p["oidc"]["issuerUri"].as_str().unwrap_or("");
    if !issuer.starts_with("https://") {
        return Some(err(
            400,
            "INVALID_ARGUMENT",
            "oidc.issuerUri must be an https URL.",
        ));
    }
    if let Some(j) = p["oidc"]["jwksJson"].as_str().filter(|j| !j.is_empty()) {
        let ok = serde_json::from_str::<Value>(j)
            .ok()
            .is_some_and(|v| v["keys"].as_array().is_some_and(|k| !k.is_empty()));
        if !ok {
            return Some(err(
                400,
                "INVALID_ARGUMENT",
                "oidc.jwksJson is not a valid JWKS.",
            ));
        }
    }
    None
}
