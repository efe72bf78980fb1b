//! The ARM fake's Microsoft Entra ID side: the tenant's OpenID configuration, the OAuth 2.0 token
//! endpoint (client secret or federated assertion) and the App Service managed identity endpoint.

use super::*;

/// Azure AD's tenant discovery document (`GET /<tenant>/v2.0/.well-known/openid-configuration`),
/// which MSAL reads to find the token endpoint.
pub(super) fn openid_configuration(scheme: &str, r: &Request) -> Option<Response> {
    let segs = r.segs();
    if r.method != "GET"
        || segs.len() != 4
        || segs[1..] != ["v2.0", ".well-known", "openid-configuration"]
    {
        return None;
    }
    let base = format!(
        "{scheme}://{}/{}",
        r.header("host").unwrap_or("127.0.0.1"),
        segs[0]
    );
    Some(Response::json(
        200,
        &json!({"token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
            "issuer": format!("{base}/v2.0"), "jwks_uri": format!("{base}/discovery/v2.0/keys"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "tenant_region_scope": null}),
    ))
}

/// An Entra ID error answer (`error`, `error_description` with the AADSTS code, `error_codes`).
pub(super) fn entra_error(status: u16, error: &str, code: u32, text: &str) -> Response {
    Response::json(
        status,
        &json!({"error": error, "error_description": format!("AADSTS{code}: {text}"), "error_codes": [code]}),
    )
}

/// `POST /<tenant>/oauth2/v2.0/token`, the client-credentials grant of Entra ID: with a client secret
/// ([`CLIENT_ID`], [`CLIENT_SECRET`]) or a federated client assertion ([`WORKLOAD_CLIENT_ID`], whose
/// federated credential trusts exactly [`FEDERATED_TOKEN`]). The scope must be `<resource>/.default`.
pub(super) fn token(s: &mut State, r: &Request) -> Response {
    let f = r.form();
    let get = |k: &str| f.get(k).map(String::as_str);
    if get("grant_type") != Some("client_credentials") {
        return entra_error(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if !get("scope").is_some_and(|sc| sc.ends_with("/.default")) {
        return entra_error(
            400,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
        );
    }
    let grant = match (
        get("client_id"),
        get("client_secret"),
        get("client_assertion"),
    ) {
        (Some(CLIENT_ID), Some(CLIENT_SECRET), None) => "client_secret",
        (Some(CLIENT_ID), Some(_), None) => {
            return entra_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            )
        }
        (Some(WORKLOAD_CLIENT_ID), None, Some(assertion)) => {
            if get("client_assertion_type")
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            {
                return entra_error(
                    400,
                    "invalid_request",
                    50027,
                    "Invalid client_assertion_type.",
                );
            }
            if assertion != FEDERATED_TOKEN {
                return entra_error(
                    401,
                    "invalid_client",
                    70021,
                    "No matching federated identity record found for presented assertion.",
                );
            }
            "client_assertion"
        }
        _ => {
            return entra_error(
                400,
                "unauthorized_client",
                700016,
                "Application was not found in the directory.",
            )
        }
    };
    s.tokens_issued.push(grant.to_string());
    let lifetime = s.token_lifetime.unwrap_or(3599);
    Response::json(
        200,
        &json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": TOKEN}),
    )
}

/// `GET /msi/token`: the managed identity endpoint of App Service / Azure Functions
/// (`IDENTITY_ENDPOINT`, api-version 2019-08-01), which checks the `X-IDENTITY-HEADER` secret
/// ([`IDENTITY_HEADER`]) and knows one user-assigned identity, [`MANAGED_CLIENT_ID`].
pub(super) fn managed_identity_token(s: &mut State, r: &Request) -> Response {
    if r.header("x-identity-header") != Some(IDENTITY_HEADER) {
        return Response::json(
            401,
            &json!({"statusCode": 401, "message": "Unauthorized: the X-IDENTITY-HEADER is missing or wrong"}),
        );
    }
    if r.query("api-version") != Some("2019-08-01") {
        return Response::json(
            400,
            &json!({"statusCode": 400, "message": "Unsupported api-version"}),
        );
    }
    let Some(resource) = r.query("resource").filter(|v| !v.is_empty()) else {
        return Response::json(
            400,
            &json!({"statusCode": 400, "message": "resource is required"}),
        );
    };
    match r.query("client_id") {
        None | Some(MANAGED_CLIENT_ID) => {}
        Some(_) => {
            return Response::json(
                400,
                &json!({"statusCode": 400, "message": "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId."}),
            )
        }
    }
    s.tokens_issued.push("managed_identity".into());
    let lifetime = s.token_lifetime.unwrap_or(3599);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Response::json(
        200,
        &json!({"access_token": TOKEN, "expires_on": (now + lifetime).to_string(), "resource": resource,
            "token_type": "Bearer", "client_id": MANAGED_CLIENT_ID}),
    )
}
