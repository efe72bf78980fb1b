//! Raw-HTTP tests pinning the GCP fake's behaviour: tokens, etag conflicts, eventual consistency,
//! soft deletion, long-running operations, and storage forwarded to fake-gcs-server.

use cco_testsupport::fake_gcs::FakeGcs;
use cco_testsupport::fake_http::raw;
use cco_testsupport::gcp_fake::{GcpFake, PROJECT_ID, PROJECT_NUMBER, SA_INVISIBLE_CALLS};
use serde_json::{json, Value};

struct T {
    _gcs: FakeGcs,
    f: GcpFake,
    token: String,
}

async fn start() -> T {
    let gcs = FakeGcs::start().expect("fake-gcs-server");
    let f = GcpFake::start(&gcs.endpoint).expect("fake");
    let (status, _, body) = raw(
        "POST",
        &format!("{}/token", f.endpoint()),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c",
    )
    .await
    .expect("http");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).expect("json");
    let token = v["access_token"].as_str().expect("token").to_string();
    T {
        _gcs: gcs,
        f,
        token,
    }
}

impl T {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let auth = format!("Bearer {}", self.token);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, _, bytes) = raw(
            method,
            &format!("{}{path}", self.f.endpoint()),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await
        .expect("http");
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, v)
    }
}

#[tokio::test]
async fn calls_need_a_token_and_unknown_projects_are_denied() {
    let t = start().await;
    let (status, _, _) = raw(
        "GET",
        &format!("{}/v1/projects/{PROJECT_ID}", t.f.endpoint()),
        &[],
        b"",
    )
    .await
    .expect("http");
    assert_eq!(status, 401);
    let (status, v) = t
        .call("GET", &format!("/v1/projects/{PROJECT_ID}"), None)
        .await;
    assert_eq!(
        (status, v["projectNumber"].as_str()),
        (200, Some(PROJECT_NUMBER))
    );
    let (status, v) = t.call("GET", "/v1/projects/other", None).await;
    assert_eq!(
        (status, v["error"]["status"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
}

#[tokio::test]
async fn a_new_service_account_is_not_visible_to_iam_policies_at_once_and_stale_etags_conflict() {
    let t = start().await;
    let (status, sa) = t
        .call(
            "POST",
            &format!("/v1/projects/{PROJECT_ID}/serviceAccounts"),
            Some(json!({"accountId": "abc-def-12345", "serviceAccount": {"displayName": "d"}})),
        )
        .await;
    assert_eq!(status, 200);
    let email = sa["email"].as_str().expect("email").to_string();
    let (status, dup) = t
        .call(
            "POST",
            &format!("/v1/projects/{PROJECT_ID}/serviceAccounts"),
            Some(json!({"accountId": "abc-def-12345", "serviceAccount": {}})),
        )
        .await;
    assert_eq!(
        (status, dup["error"]["status"].as_str()),
        (409, Some("ALREADY_EXISTS"))
    );
    let member = format!("serviceAccount:{email}");
    let set = |etag: Value| json!({"policy": {"etag": etag, "bindings": [{"role": "roles/viewer", "members": [member.clone()]}]}});
    let (_, policy) = t
        .call(
            "POST",
            &format!("/v1/projects/{PROJECT_ID}:getIamPolicy"),
            Some(json!({})),
        )
        .await;
    for _ in 0..SA_INVISIBLE_CALLS {
        let (status, e) = t
            .call(
                "POST",
                &format!("/v1/projects/{PROJECT_ID}:setIamPolicy"),
                Some(set(policy["etag"].clone())),
            )
            .await;
        assert_eq!(
            (status, e["error"]["status"].as_str()),
            (400, Some("INVALID_ARGUMENT")),
            "{e}"
        );
    }
    let (status, _) = t
        .call(
            "POST",
            &format!("/v1/projects/{PROJECT_ID}:setIamPolicy"),
            Some(set(policy["etag"].clone())),
        )
        .await;
    assert_eq!(status, 200);
    // The old etag is now stale.
    let (status, e) = t
        .call(
            "POST",
            &format!("/v1/projects/{PROJECT_ID}:setIamPolicy"),
            Some(set(policy["etag"].clone())),
        )
        .await;
    assert_eq!(
        (status, e["error"]["status"].as_str()),
        (409, Some("ABORTED"))
    );
    // The service account's own policy became visible too.
    let (status, _) = t
        .call(
            "POST",
            &format!("/v1/projects/{PROJECT_ID}/serviceAccounts/{email}:getIamPolicy"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    // IAM v1 takes the policy version as a query parameter here; a body naming it is refused.
    let (status, e) = t
        .call(
            "POST",
            &format!("/v1/projects/{PROJECT_ID}/serviceAccounts/{email}:getIamPolicy"),
            Some(json!({"options": {"requestedPolicyVersion": 3}})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["status"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    let (status, _) = t
        .call(
            "DELETE",
            &format!("/v1/projects/{PROJECT_ID}/serviceAccounts/{email}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = t
        .call(
            "GET",
            &format!("/v1/projects/{PROJECT_ID}/serviceAccounts/{email}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn custom_roles_are_soft_deleted_and_block_their_id_until_undeleted() {
    let t = start().await;
    let base = format!("/v1/projects/{PROJECT_ID}/roles");
    let create = json!({"roleId": "my_role", "role": {"title": "t", "includedPermissions": ["compute.instances.get"], "stage": "GA"}});
    assert_eq!(t.call("POST", &base, Some(create.clone())).await.0, 200);
    assert_eq!(t.call("POST", &base, Some(create.clone())).await.0, 409);
    let (status, r) = t.call("DELETE", &format!("{base}/my_role"), None).await;
    assert_eq!((status, &r["deleted"]), (200, &json!(true)));
    let (status, e) = t.call("POST", &base, Some(create.clone())).await;
    assert_eq!(
        (status, e["error"]["status"].as_str()),
        (400, Some("FAILED_PRECONDITION"))
    );
    let (_, listed) = t.call("GET", &base, None).await;
    assert!(
        listed.get("roles").is_none(),
        "deleted roles are hidden: {listed}"
    );
    let (_, listed) = t
        .call("GET", &format!("{base}?showDeleted=true"), None)
        .await;
    assert_eq!(listed["roles"].as_array().expect("roles").len(), 1);
    assert_eq!(
        t.call("POST", &format!("{base}/my_role:undelete"), Some(json!({})))
            .await
            .0,
        200
    );
    let (status, r) = t
        .call(
            "PATCH",
            &format!("{base}/my_role?updateMask=includedPermissions"),
            Some(json!({"includedPermissions": ["compute.disks.get"]})),
        )
        .await;
    assert_eq!(
        (status, &r["includedPermissions"]),
        (200, &json!(["compute.disks.get"]))
    );
    let bad = json!({"roleId": "bad-id!", "role": {"includedPermissions": []}});
    assert_eq!(t.call("POST", &base, Some(bad)).await.0, 400);
}

#[tokio::test]
async fn pools_and_providers_are_long_running_and_soft_deleted() {
    let t = start().await;
    let base = format!("/v1/projects/{PROJECT_ID}/locations/global/workloadIdentityPools");
    let (status, op) = t
        .call(
            "POST",
            &format!("{base}?workloadIdentityPoolId=my-pool"),
            Some(json!({"displayName": "p"})),
        )
        .await;
    assert_eq!((status, &op["done"]), (200, &json!(false)));
    let (status, done) = t
        .call(
            "GET",
            &format!("/v1/{}", op["name"].as_str().expect("op")),
            None,
        )
        .await;
    assert_eq!((status, &done["done"]), (200, &json!(true)));
    assert_eq!(done["response"]["state"], "ACTIVE");
    let provider = json!({"oidc": {"issuerUri": "https://storage.googleapis.com/x-oidc", "allowedAudiences": ["openshift"]},
        "attributeMapping": {"google.subject": "assertion.sub"}});
    let (status, _) = t
        .call(
            "POST",
            &format!("{base}/my-pool/providers?workloadIdentityPoolProviderId=my-prov"),
            Some(provider.clone()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        t.call(
            "POST",
            &format!("{base}/my-pool/providers?workloadIdentityPoolProviderId=my-prov"),
            Some(provider)
        )
        .await
        .0,
        409
    );
    let (status, e) = t
        .call(
            "PATCH",
            &format!("{base}/my-pool/providers/my-prov?updateMask=oidc.jwksJson"),
            Some(json!({"oidc": {"jwksJson": "not json"}})),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(
        t.call("DELETE", &format!("{base}/my-pool"), None).await.0,
        200
    );
    let (_, p) = t.call("GET", &format!("{base}/my-pool"), None).await;
    assert_eq!(p["state"], "DELETED");
    let (status, _) = t
        .call(
            "POST",
            &format!("{base}?workloadIdentityPoolId=my-pool"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 409, "a deleted pool keeps its id");
    assert_eq!(
        t.call("GET", &format!("{base}/my-pool/providers/my-prov"), None)
            .await
            .0,
        400
    );
    assert_eq!(
        t.call("POST", &format!("{base}/my-pool:undelete"), Some(json!({})))
            .await
            .0,
        200
    );
    assert_eq!(
        t.call("GET", &format!("{base}/my-pool/providers/my-prov"), None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn storage_goes_to_fake_gcs_server_and_bucket_iam_is_served_here() {
    let t = start().await;
    let (status, _) = t
        .call(
            "POST",
            &format!("/storage/v1/b?project={PROJECT_ID}"),
            Some(json!({"name": "b-oidc", "location": "us", "labels": {"k": "v"}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(t.f.buckets(), ["b-oidc"]);
    // The resource as sent is kept (fake-gcs-server answers with its own location, no labels).
    assert_eq!(
        t.f.bucket_as_created("b-oidc"),
        Some(json!({"name": "b-oidc", "location": "us", "labels": {"k": "v"}}))
    );
    // Just after creation the bucket's policy is not visible yet.
    assert_eq!(t.call("GET", "/storage/v1/b/b-oidc/iam", None).await.0, 404);
    let (status, policy) = t.call("GET", "/storage/v1/b/b-oidc/iam", None).await;
    assert_eq!(status, 200);
    let mut p = policy.clone();
    p["bindings"]
        .as_array_mut()
        .expect("bindings")
        .push(json!({"role": "roles/storage.objectViewer", "members": ["allUsers"]}));
    assert_eq!(
        t.call("PUT", "/storage/v1/b/b-oidc/iam", Some(p.clone()))
            .await
            .0,
        200
    );
    assert_eq!(
        t.call("PUT", "/storage/v1/b/b-oidc/iam", Some(p)).await.0,
        412,
        "stale etag"
    );
    let (status, _) = t.call("DELETE", "/storage/v1/b/b-oidc", None).await;
    assert!(status == 204 || status == 200, "{status}");
    assert!(t.f.buckets().is_empty());
    assert_eq!(t.call("GET", "/storage/v1/b/b-oidc", None).await.0, 404);
}

#[tokio::test]
async fn service_account_keys_are_created_listed_and_deleted_with_their_account() {
    use base64::Engine as _;
    let t = start().await;
    t.f.insert_service_account("keyed-sa-1", "keyed", "d");
    let email = format!("keyed-sa-1@{PROJECT_ID}.iam.gserviceaccount.com");
    let base = format!("/v1/projects/{PROJECT_ID}/serviceAccounts/{email}/keys");
    let (status, key) = t
        .call(
            "POST",
            &base,
            Some(json!({"privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE"})),
        )
        .await;
    assert_eq!(status, 200, "{key}");
    let name = key["name"].as_str().expect("name");
    let id = name.rsplit('/').next().expect("id").to_string();
    assert!(name.starts_with(&format!(
        "projects/{PROJECT_ID}/serviceAccounts/{email}/keys/"
    )));
    let file: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(key["privateKeyData"].as_str().expect("privateKeyData"))
            .expect("base64"),
    )
    .expect("json key file");
    assert_eq!(file["type"], "service_account");
    assert_eq!(file["private_key_id"], id.as_str());
    assert_eq!(file["client_email"], email.as_str());
    assert!(file["private_key"]
        .as_str()
        .is_some_and(|k| k.contains("PRIVATE KEY")));
    assert_eq!(file["token_uri"], format!("{}/token", t.f.endpoint()));

    let (status, list) = t
        .call("GET", &format!("{base}?keyTypes=USER_MANAGED"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["keys"].as_array().expect("keys").len(), 1);
    assert!(list["keys"][0].get("privateKeyData").is_none());
    assert_eq!(t.f.service_account_keys(&email), vec![id.clone()]);

    let (status, _) = t.call("DELETE", &format!("{base}/{id}"), None).await;
    assert_eq!(status, 200);
    let (status, e) = t.call("DELETE", &format!("{base}/{id}"), None).await;
    assert_eq!(
        (status, e["error"]["status"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (_, list) = t.call("GET", &base, None).await;
    assert_eq!(list["keys"], json!([]));

    // Keys go with their account.
    t.call("POST", &base, Some(json!({}))).await;
    let (status, _) = t
        .call(
            "DELETE",
            &format!("/v1/projects/{PROJECT_ID}/serviceAccounts/{email}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(t.f.service_account_keys(&email).is_empty());
    let (status, _) = t.call("GET", &base, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn test_iam_permissions_answers_with_what_the_caller_holds() {
    let t = start().await;
    let path = format!("/v1/projects/{PROJECT_ID}:testIamPermissions");
    let ask =
        json!({"permissions": ["iam.serviceAccounts.create", "iam.serviceAccountKeys.create"]});
    let (status, v) = t.call("POST", &path, Some(ask.clone())).await;
    assert_eq!((status, &v["permissions"]), (200, &ask["permissions"]));
    t.f.set_caller_permissions(Some(&["iam.serviceAccounts.create"]));
    let (_, v) = t.call("POST", &path, Some(ask.clone())).await;
    assert_eq!(v["permissions"], json!(["iam.serviceAccounts.create"]));
    t.f.set_caller_permissions(Some(&[]));
    let (status, v) = t.call("POST", &path, Some(ask)).await;
    assert_eq!((status, v), (200, json!({})));
    let (status, e) = t
        .call(
            "POST",
            &path,
            Some(json!({"permissions": ["not a permission"]})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["status"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
}

#[tokio::test]
async fn anonymous_path_style_reads_need_a_public_bucket() {
    let t = start().await;
    let (status, _) = t
        .call(
            "POST",
            &format!("/storage/v1/b?project={PROJECT_ID}"),
            Some(json!({"name": "p-oidc"})),
        )
        .await;
    assert_eq!(status, 200);
    let auth = format!("Bearer {}", t.token);
    let (status, _, _) = raw(
        "POST",
        &format!(
            "{}/upload/storage/v1/b/p-oidc/o?uploadType=media&name=keys.json",
            t.f.endpoint()
        ),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"keys":[]}"#,
    )
    .await
    .expect("http");
    assert_eq!(status, 200);
    let anonymous = || async {
        raw(
            "GET",
            &format!("{}/p-oidc/keys.json", t.f.endpoint()),
            &[],
            b"",
        )
        .await
        .expect("http")
    };
    let (status, _, body) = anonymous().await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("<Code>AccessDenied</Code>"));
    t.f.edit_bucket_policy("p-oidc", |p| {
        p["bindings"]
            .as_array_mut()
            .expect("bindings")
            .push(json!({"role": "roles/storage.objectViewer", "members": ["allUsers"]}))
    });
    let (status, _, body) = anonymous().await;
    assert_eq!(
        (status, body.as_slice()),
        (200, br#"{"keys":[]}"#.as_slice())
    );
}

/// A self-signed JWT of the key file `key`, as `google-cloud-auth` makes for a service account.
fn self_signed(key: &Value, claims: &Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    let k =
        rsa::RsaPrivateKey::from_pkcs8_pem(key["private_key"].as_str().expect("pem")).expect("key");
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key["private_key_id"]});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(k)
        .sign(input.as_bytes())
        .to_bytes();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[tokio::test]
async fn self_signed_jwts_need_a_live_key_of_this_fake_and_sts_a_token_its_provider_trusts() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let t = start().await;
    let get = |bearer: String| {
        let url = format!("{}/v1/projects/{PROJECT_ID}", t.f.endpoint());
        async move {
            let auth = format!("Bearer {bearer}");
            raw("GET", &url, &[("Authorization", &auth)], b"")
                .await
                .expect("http")
                .0
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("now")
        .as_secs();
    let claims = |email: &str, exp: u64| {
        json!({"iss": email, "sub": email, "iat": now,  "exp": exp,
            "scope": "https://www.googleapis.com/auth/cloud-platform"})
    };

    // A key of this fake: its JWT is accepted, and the call is recorded as its account's.
    let admin: Value = serde_json::from_str(&t.f.service_account_key_json()).expect("key");
    let email = admin["client_email"].as_str().expect("email").to_string();
    assert_eq!(
        get(self_signed(&admin, &claims(&email, now + 600))).await,
        200
    );
    assert_eq!(
        t.f.calls().last().and_then(|c| c.caller.clone()),
        Some(email.clone())
    );
    // Expired, claims changed after signing, another account named, or signed by another key.
    assert_eq!(
        get(self_signed(&admin, &claims(&email, now - 10))).await,
        401
    );
    let good = self_signed(&admin, &claims(&email, now + 600));
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims(&email, now + 7200).to_string()),
        parts[2]
    );
    assert_eq!(get(forged).await, 401);
    assert_eq!(
        get(self_signed(
            &admin,
            &claims("other@x.iam.gserviceaccount.com", now + 600)
        ))
        .await,
        401
    );
    let mut stranger = admin.clone();
    stranger["private_key"] = Value::String(
        rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .expect("key")
            .serialize_pem(),
    );
    assert_eq!(
        get(self_signed(&stranger, &claims(&email, now + 600))).await,
        401
    );

    // A key made through the API works until it is deleted.
    t.f.insert_service_account("jwt-sa-1", "jwt", "d");
    let sa = format!("jwt-sa-1@{PROJECT_ID}.iam.gserviceaccount.com");
    let base = format!("/v1/projects/{PROJECT_ID}/serviceAccounts/{sa}/keys");
    let (status, key) = t.call("POST", &base, Some(json!({}))).await;
    assert_eq!(status, 200, "{key}");
    let file: Value = serde_json::from_slice(
        &STANDARD
            .decode(key["privateKeyData"].as_str().expect("data"))
            .expect("b64"),
    )
    .expect("json");
    let jwt = self_signed(&file, &claims(&sa, now + 600));
    assert_eq!(get(jwt.clone()).await, 200);
    let id = file["private_key_id"].as_str().expect("id");
    assert_eq!(t.call("DELETE", &format!("{base}/{id}"), None).await.0, 200);
    assert_eq!(get(jwt).await, 401);

    // STS: only for an active provider of this project, with a token of its issuer and audience.
    let sts = |form: String| {
        let url = format!("{}/v1/token", t.f.endpoint());
        async move {
            let (status, _, body) = raw(
                "POST",
                &url,
                &[("Content-Type", "application/x-www-form-urlencoded")],
                form.as_bytes(),
            )
            .await
            .expect("http");
            (
                status,
                serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
            )
        }
    };
    let pools = format!("/v1/projects/{PROJECT_ID}/locations/global/workloadIdentityPools");
    let (status, _) = t
        .call(
            "POST",
            &format!("{pools}?workloadIdentityPoolId=stspool"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    let issuer = "https://issuer.example";
    let (status, v) = t
        .call(
            "POST",
            &format!("{pools}/stspool/providers?workloadIdentityPoolProviderId=stsprov"),
            Some(
                json!({"attributeMapping": {"google.subject": "assertion.sub"},
                "oidc": {"issuerUri": issuer, "allowedAudiences": ["openshift"]}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let subject = |iss: &str, aud: &str| {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(
                json!({"iss": iss, "aud": aud, "sub": "ns:sa", "exp": now + 600}).to_string()
            )
        )
    };
    let form = |provider: &str, token: &str| {
        format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
             &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
             &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt\
             &audience=%2F%2Fiam.googleapis.com%2Fprojects%2F{PROJECT_NUMBER}%2Flocations%2Fglobal%2FworkloadIdentityPools%2Fstspool%2Fproviders%2F{provider}\
             &subject_token={token}"
        )
    };
    let (status, v) = sts(form("nope", &subject(issuer, "openshift"))).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_target")));
    let (status, v) = sts(form("stsprov", &subject("https://other", "openshift"))).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
    let (status, v) = sts(form("stsprov", &subject(issuer, "elsewhere"))).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
    let (status, v) = sts(form("stsprov", &subject(issuer, "openshift"))).await;
    assert_eq!(status, 200, "{v}");
    let token = v["access_token"].as_str().expect("token").to_string();
    assert_eq!(get(token).await, 200);
    assert_eq!(
        t.f.calls().last().and_then(|c| c.caller.clone()),
        Some(format!(
            "principal://iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/stspool/subject/ns:sa"
        ))
    );
}
