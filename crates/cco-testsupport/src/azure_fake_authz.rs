//! The ARM fake's Microsoft.Authorization provider: role definitions and role assignments at any
//! scope, with `$filter` queries.

use super::*;

pub(super) fn filter_value<'a>(r: &'a Request, field: &str) -> Option<&'a str> {
    let f = r.query("$filter")?;
    let rest = f
        .strip_prefix(field)?
        .trim_start()
        .strip_prefix("eq")?
        .trim();
    rest.strip_prefix('\'')?.strip_suffix('\'')
}

pub(super) fn authorization(s: &mut State, r: &Request, scope: &str, rest: &[&str]) -> Response {
    let sub_scope = format!("/subscriptions/{SUBSCRIPTION}");
    match (r.method.as_str(), rest) {
        ("GET", ["roleDefinitions"]) => {
            let name = filter_value(r, "roleName");
            let ty = filter_value(r, "type");
            let v: Vec<Value> = s
                .role_definitions
                .values()
                .filter(|d| name.is_none_or(|n| d["properties"]["roleName"] == n))
                .filter(|d| ty.is_none_or(|t| d["properties"]["type"] == t))
                .cloned()
                .collect();
            Response::json(200, &json!({"value": v}))
        }
        (_, ["roleDefinitions", guid]) => {
            let guid = lower(guid);
            match r.method.as_str() {
                "GET" => match s.role_definitions.get(&guid) {
                    Some(v) => Response::json(200, v),
                    None => err(
                        404,
                        "RoleDefinitionDoesNotExist",
                        "The specified role definition does not exist.",
                    ),
                },
                "PUT" => {
                    let Ok(body) = r.json() else {
                        return err(400, "InvalidRequestContent", "bad JSON");
                    };
                    let p = &body["properties"];
                    let Some(role_name) = p["roleName"].as_str() else {
                        return err(400, "InvalidRoleDefinition", "roleName is required");
                    };
                    if p["assignableScopes"]
                        .as_array()
                        .is_none_or(|a| a.is_empty())
                    {
                        return err(400, "InvalidRoleDefinition", "assignableScopes is required");
                    }
                    if s.role_definitions
                        .iter()
                        .any(|(g, d)| *g != guid && d["properties"]["roleName"] == role_name)
                    {
                        return err(
                            409,
                            "RoleDefinitionWithSameNameExists",
                            "A custom role with the same name already exists in this directory.",
                        );
                    }
                    if s.role_definitions
                        .get(&guid)
                        .is_some_and(|d| d["properties"]["type"] == "BuiltInRole")
                    {
                        return err(
                            403,
                            "AuthorizationFailed",
                            "built-in roles cannot be changed",
                        );
                    }
                    let existed = s.role_definitions.contains_key(&guid);
                    let mut props = p.clone();
                    props["type"] = json!("CustomRole");
                    let v = json!({
                        "id": format!("{sub_scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
                        "name": guid, "type": "Microsoft.Authorization/roleDefinitions",
                        "properties": props
                    });
                    s.role_definitions.insert(guid, v.clone());
                    Response::json(if existed { 200 } else { 201 }, &v)
                }
                "DELETE" => {
                    let Some(d) = s.role_definitions.get(&guid) else {
                        return Response::empty(204);
                    };
                    if d["properties"]["type"] == "BuiltInRole" {
                        return err(
                            403,
                            "AuthorizationFailed",
                            "built-in roles cannot be deleted",
                        );
                    }
                    let id = lower(d["id"].as_str().unwrap_or(""));
                    if s.role_assignments.values().any(|a| {
                        lower(a["properties"]["roleDefinitionId"].as_str().unwrap_or("")) == id
                    }) {
                        return err(
                            409,
                            "RoleDefinitionHasAssignments",
                            "There are existing role assignments referencing role.",
                        );
                    }
                    let v = s.role_definitions.remove(&guid).unwrap_or(Value::Null);
                    Response::json(200, &v)
                }
                _ => err(405, "MethodNotAllowed", "method"),
            }
        }
        ("GET", ["roleAssignments"]) => {
            let principal = filter_value(r, "principalId");
            let v: Vec<Value> = s
                .role_assignments
                .values()
                .filter(|a| principal.is_none_or(|p| a["properties"]["principalId"] == p))
                .filter(|a| {
                    lower(a["properties"]["scope"].as_str().unwrap_or(""))
                        .starts_with(&lower(scope))
                })
                .cloned()
                .collect();
            Response::json(200, &json!({"value": v}))
        }
        (_, ["roleAssignments", guid]) => {
            let guid = lower(guid);
            match r.method.as_str() {
                "GET" => match s.role_assignments.get(&guid) {
                    Some(v) => Response::json(200, v),
                    None => err(
                        404,
                        "RoleAssignmentNotFound",
                        "The role assignment does not exist.",
                    ),
                },
                "PUT" => {
                    let Ok(body) = r.json() else {
                        return err(400, "InvalidRequestContent", "bad JSON");
                    };
                    let p = &body["properties"];
                    let principal = p["principalId"].as_str().unwrap_or("").to_string();
                    let role = lower(p["roleDefinitionId"].as_str().unwrap_or(""));
                    if scope != sub_scope {
                        let rg = scope.rsplit('/').next().unwrap_or("");
                        if !s.resource_groups.contains_key(&lower(rg)) {
                            return err(
                                404,
                                "ResourceGroupNotFound",
                                &format!("Resource group '{rg}' could not be found."),
                            );
                        }
                    }
                    if !s
                        .role_definitions
                        .values()
                        .any(|d| lower(d["id"].as_str().unwrap_or("")) == role)
                    {
                        return err(
                            400,
                            "RoleDefinitionDoesNotExist",
                            "The specified role definition does not exist.",
                        );
                    }
                    let known = s
                        .identities
                        .values()
                        .any(|i| i["properties"]["principalId"] == principal.as_str());
                    if !known || !s.replicated.contains(&principal) {
                        if known {
                            s.replicated.insert(principal.clone());
                        }
                        return err(
                            400,
                            "PrincipalNotFound",
                            &format!(
                                "Principal {principal} does not exist in the directory {TENANT}."
                            ),
                        );
                    }
                    if let Some(existing) = s.role_assignments.get(&guid) {
                        if existing["properties"]["principalId"] == principal.as_str()
                            && lower(
                                existing["properties"]["roleDefinitionId"]
                                    .as_str()
                                    .unwrap_or(""),
                            ) == role
                        {
                            return Response::json(201, existing);
                        }
                        return err(400, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.");
                    }
                    if s.role_assignments.values().any(|a| {
                        a["properties"]["principalId"] == principal.as_str()
                            && lower(a["properties"]["roleDefinitionId"].as_str().unwrap_or(""))
                                == role
                            && lower(a["properties"]["scope"].as_str().unwrap_or(""))
                                == lower(scope)
                    }) {
                        return err(
                            409,
                            "RoleAssignmentExists",
                            "The role assignment already exists.",
                        );
                    }
                    let v = json!({
                        "id": format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}"),
                        "name": guid, "type": "Microsoft.Authorization/roleAssignments",
                        "properties": {"roleDefinitionId": p["roleDefinitionId"], "principalId": principal, "principalType": p["principalType"], "scope": scope}
                    });
                    s.role_assignments.insert(guid, v.clone());
                    Response::json(201, &v)
                }
                "DELETE" => match s.role_assignments.remove(&guid) {
                    Some(v) => Response::json(200, &v),
                    None => Response::empty(204),
                },
                _ => err(405, "MethodNotAllowed", "method"),
            }
        }
        _ => err(404, "NotFound", "no such route"),
    }
}
