//! Role definitions and role assignments (`Microsoft.Authorization`): built-in roles looked up by
//! name, custom roles found again by their name whatever their GUID, and assignments matched by role
//! and scope so that those the reference tool made (under random names) are reused.

use serde_json::{json, Value};

use crate::{Azure, AzureError, Change, API_AUTHZ};

impl Azure {
    fn authz(&self, scope: &str, what: &str) -> String {
        format!("{scope}/providers/Microsoft.Authorization/{what}")
    }

    fn sub_scope(&self) -> String {
        format!("/subscriptions/{}", self.subscription)
    }

    /// The id of a built-in role found by its name.
    pub async fn builtin_role_id(&self, role_name: &str) -> Result<String, AzureError> {
        self.role_definitions_named(role_name)
            .await?
            .iter()
            .find_map(|r| r["id"].as_str().map(str::to_string))
            .ok_or_else(|| AzureError::Local(format!("no role definition named {role_name:?}")))
    }

    /// Role definitions of the subscription whose `roleName` is `role_name`.
    pub async fn role_definitions_named(&self, role_name: &str) -> Result<Vec<Value>, AzureError> {
        let filter = format!("roleName eq '{}'", role_name.replace('\'', "''"));
        let path = format!(
            "{}?$filter={}",
            self.authz(&self.sub_scope(), "roleDefinitions"),
            percent_encoding::utf8_percent_encode(&filter, percent_encoding::NON_ALPHANUMERIC)
        );
        let found = self.list("finding a role", &path, API_AUTHZ).await?;
        Ok(found
            .into_iter()
            .filter(|r| r["properties"]["roleName"].as_str() == Some(role_name))
            .collect())
    }

    /// Creates or updates the custom role `body.properties.roleName`. A role of that name that
    /// already exists (made by this tool or the reference tool, whatever its GUID) is updated in
    /// place; otherwise it is created under `guid`. Returns its id.
    pub async fn ensure_role_definition(
        &self,
        guid: &str,
        body: &Value,
    ) -> Result<(Change, String), AzureError> {
        let want = &body["properties"];
        let role_name = want["roleName"].as_str().unwrap_or_default();
        let existing = self.role_definitions_named(role_name).await?;
        if existing.len() > 1 {
            return Err(AzureError::Local(format!(
                "found {} role definitions named {role_name:?}, expected one; delete the extra ones",
                existing.len()
            )));
        }
        let guid = existing
            .first()
            .and_then(|e| e["name"].as_str())
            .unwrap_or(guid)
            .to_string();
        let path = self.authz(&self.sub_scope(), &format!("roleDefinitions/{guid}"));
        if let Some(e) = existing.first() {
            let a = &e["properties"];
            if a["permissions"] == want["permissions"]
                && a["assignableScopes"] == want["assignableScopes"]
                && a["description"] == want["description"]
            {
                return Ok((
                    Change::Unchanged,
                    e["id"].as_str().unwrap_or(&path).to_string(),
                ));
            }
        }
        let (c, v) = self
            .put("creating role definition", &path, API_AUTHZ, body)
            .await?;
        Ok((c, v["id"].as_str().unwrap_or(&path).to_string()))
    }

    /// Custom role definitions of the subscription.
    pub async fn list_custom_roles(&self) -> Result<Vec<Value>, AzureError> {
        let filter = "type eq 'CustomRole'";
        let path = format!(
            "{}?$filter={}",
            self.authz(&self.sub_scope(), "roleDefinitions"),
            percent_encoding::utf8_percent_encode(filter, percent_encoding::NON_ALPHANUMERIC)
        );
        self.list("listing custom roles", &path, API_AUTHZ).await
    }

    /// Deletes a role definition by id.
    pub async fn delete_by_id(&self, id: &str) -> Result<bool, AzureError> {
        self.delete(&format!("deleting {id}"), id, API_AUTHZ).await
    }

    /// Assigns `role_id` to `principal` on `scope`. An assignment of that role to that principal at
    /// that scope found in `existing` (whatever its name: the reference tool names them at random)
    /// counts as done; otherwise one is made under the deterministic name `guid`. Returns the change
    /// and the assignment's name. Retries `PrincipalNotFound` while a new identity replicates.
    pub async fn ensure_role_assignment(
        &self,
        scope: &str,
        guid: &str,
        role_id: &str,
        principal: &str,
        existing: &[Value],
    ) -> Result<(Change, String), AzureError> {
        let same = |a: &Value| {
            let p = &a["properties"];
            p["roleDefinitionId"]
                .as_str()
                .is_some_and(|r| r.eq_ignore_ascii_case(role_id))
                && p["scope"]
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(scope))
        };
        if let Some(name) = existing
            .iter()
            .find(|a| same(a))
            .and_then(|a| a["name"].as_str())
        {
            return Ok((Change::Unchanged, name.to_string()));
        }
        let path = self.authz(scope, &format!("roleAssignments/{guid}"));
        let body = json!({"properties": {
            "roleDefinitionId": role_id,
            "principalId": principal,
            "principalType": "ServicePrincipal",
        }});
        match self.put("assigning a role", &path, API_AUTHZ, &body).await {
            Ok((c, _)) => Ok((c, guid.to_string())),
            Err(e) if e.code() == Some("RoleAssignmentExists") => {
                // Made meanwhile under another name: find it so that it is not taken for stale.
                let now = self.list_role_assignments(principal).await?;
                let name = now
                    .iter()
                    .find(|a| same(a))
                    .and_then(|a| a["name"].as_str())
                    .unwrap_or(guid)
                    .to_string();
                Ok((Change::Unchanged, name))
            }
            Err(e) => Err(e),
        }
    }

    /// The role assignments of a principal, anywhere in the subscription.
    pub async fn list_role_assignments(&self, principal: &str) -> Result<Vec<Value>, AzureError> {
        let filter = format!("principalId eq '{principal}'");
        let path = format!(
            "{}?$filter={}",
            self.authz(&self.sub_scope(), "roleAssignments"),
            percent_encoding::utf8_percent_encode(&filter, percent_encoding::NON_ALPHANUMERIC)
        );
        self.list("listing role assignments", &path, API_AUTHZ)
            .await
    }
}
