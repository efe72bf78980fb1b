//! Raw-HTTP tests pinning the IBM IAM fake's behaviour (status codes and shapes the real API
//! documents), so the client is tested against a peer whose behaviour is itself checked.

use cco_testsupport::fake_http::raw;
use cco_testsupport::ibm_iam::{IbmIamFake, ACCOUNT_ID, ADMIN_API_KEY};
use serde_json::{json, Value};

async fn call(
    f: &IbmIamFake,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, _, bytes) = raw(
        method,
        &format!("{}{path}", f.endpoint()),
        &headers,
        body.as_bytes(),
    )
    .await
    .expect("http");
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("json body")
    };
    (status, v)
}

async fn token(f: &IbmIamFake) -> String {
    let form = format!(
        "grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey={ADMIN_API_KEY}"
    );
    let (status, _, body) = raw(
        "POST",
        &format!("{}/identity/token", f.endpoint()),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .await
    .expect("http");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).expect("json");
    v["access_token"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn unknown_api_keys_get_no_token_and_calls_without_a_token_are_401() {
    let f = IbmIamFake::start().expect("fake");
    let (status, _, body) = raw(
        "POST",
        &format!("{}/identity/token", f.endpoint()),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey=nope",
    )
    .await
    .expect("http");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("BXNIM0415E"));
    let (status, _) = call(
        &f,
        "GET",
        &format!("/v1/serviceids/?account_id={ACCOUNT_ID}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn service_ids_are_created_listed_by_name_paginated_and_deleted_with_their_keys() {
    let f = IbmIamFake::start().expect("fake");
    let t = token(&f).await;
    let (status, details) = call(&f, "GET", "/v1/apikeys/details", Some(&t), None).await;
    assert_eq!(status, 400, "the IAM-Apikey header is required: {details}");
    // Same name twice is allowed, as in the real service.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, sid) = call(
            &f,
            "POST",
            "/v1/serviceids/",
            Some(&t),
            Some(json!({"account_id": ACCOUNT_ID, "name": "dup"})),
        )
        .await;
        assert_eq!(status, 201);
        assert!(sid["iam_id"]
            .as_str()
            .expect("iam")
            .starts_with("iam-ServiceId-"));
        ids.push(sid);
    }
    let (status, page1) = call(
        &f,
        "GET",
        &format!("/v1/serviceids/?account_id={ACCOUNT_ID}&name=dup&pagesize=2"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page1["serviceids"].as_array().expect("list").len(), 2);
    let next = page1["next"].as_str().expect("next link");
    let tok = next.split("pagetoken=").nth(1).expect("pagetoken");
    let (_, page2) = call(
        &f,
        "GET",
        &format!("/v1/serviceids/?account_id={ACCOUNT_ID}&name=dup&pagesize=2&pagetoken={tok}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(page2["serviceids"].as_array().expect("list").len(), 1);
    assert!(page2.get("next").is_none());
    // An API key for a service ID; its value comes back once, then only metadata.
    let iam = ids[0]["iam_id"].as_str().expect("iam");
    let (status, key) = call(
        &f,
        "POST",
        "/v1/apikeys",
        Some(&t),
        Some(json!({"name": "k", "iam_id": iam, "account_id": ACCOUNT_ID})),
    )
    .await;
    assert_eq!(status, 201);
    let value = key["apikey"].as_str().expect("value").to_string();
    let (_, listed) = call(
        &f,
        "GET",
        &format!("/v1/apikeys?iam_id={iam}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(listed["apikeys"].as_array().expect("list").len(), 1);
    assert!(listed["apikeys"][0].get("apikey").is_none());
    assert_eq!(f.owner_of_key(&value).as_deref(), Some(iam));
    let (status, _) = call(
        &f,
        "POST",
        "/v1/apikeys",
        Some(&t),
        Some(json!({"name": "k", "iam_id": "iam-nobody"})),
    )
    .await;
    assert_eq!(status, 404);
    // Deleting the service ID deletes its keys; a second delete is 404.
    let id = ids[0]["id"].as_str().expect("id");
    let (status, _) = call(
        &f,
        "DELETE",
        &format!("/v1/serviceids/{id}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert!(f.owner_of_key(&value).is_none());
    let (status, err) = call(
        &f,
        "DELETE",
        &format!("/v1/serviceids/{id}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(err["errors"][0]["code"], "not_found");
}

#[tokio::test]
async fn identical_policies_conflict_and_policies_are_listed_by_subject() {
    let f = IbmIamFake::start().expect("fake");
    let t = token(&f).await;
    let sid = f.insert_service_id("svc");
    let iam = sid["iam_id"].as_str().expect("iam");
    let policy = json!({"type": "access",
        "subjects": [{"attributes": [{"name": "iam_id", "value": iam}]}],
        "roles": [{"role_id": "crn:v1:bluemix:public:iam::::role:Viewer"}],
        "resources": [{"attributes": [{"name": "serviceName", "value": "is"}, {"name": "accountId", "value": ACCOUNT_ID}]}]});
    let (status, created) = call(&f, "POST", "/v1/policies", Some(&t), Some(policy.clone())).await;
    assert_eq!(status, 201);
    let (status, err) = call(&f, "POST", "/v1/policies", Some(&t), Some(policy.clone())).await;
    assert_eq!(status, 409);
    assert_eq!(err["errors"][0]["code"], "policy_conflict_error");
    let mut no_account = policy.clone();
    no_account["resources"][0]["attributes"] = json!([{"name": "serviceName", "value": "is"}]);
    let (status, _) = call(&f, "POST", "/v1/policies", Some(&t), Some(no_account)).await;
    assert_eq!(status, 400);
    let (_, list) = call(
        &f,
        "GET",
        &format!("/v1/policies?account_id={ACCOUNT_ID}&iam_id={iam}&type=access"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(list["policies"].as_array().expect("list").len(), 1);
    let (_, none) = call(
        &f,
        "GET",
        &format!("/v1/policies?account_id={ACCOUNT_ID}&iam_id=iam-other"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(none["policies"].as_array().expect("list").len(), 0);
    let id = created["id"].as_str().expect("id");
    assert_eq!(
        call(&f, "DELETE", &format!("/v1/policies/{id}"), Some(&t), None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(&f, "DELETE", &format!("/v1/policies/{id}"), Some(&t), None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn resource_groups_are_found_by_name() {
    let f = IbmIamFake::start().expect("fake");
    let t = token(&f).await;
    let (status, v) = call(
        &f,
        "GET",
        &format!("/v2/resource_groups?account_id={ACCOUNT_ID}&name=ocp-rg"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["resources"].as_array().expect("list").len(), 1);
    let (_, v) = call(
        &f,
        "GET",
        &format!("/v2/resource_groups?account_id={ACCOUNT_ID}&name=missing"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(v["resources"].as_array().expect("list").len(), 0);
}
