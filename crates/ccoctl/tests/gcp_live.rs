//! `ccoctl gcp` against fake-gcs-server (storage) and the stateful GCP fake (IAM, workload identity
//! pools, Resource Manager, bucket IAM): every corpus request through create-all, re-run, delete and
//! re-create; both key-storage methods; delete leaving what it did not make; dry runs making no call;
//! bad inputs. Results are read back from the fakes' state, not through the code under test.

use crate::gcp_env;

use gcp_env::*;

use cco_testsupport::gcp_fake::{PROJECT_ID, PROJECT_NUMBER};
use serde_json::Value;

#[test]
fn every_corpus_request_is_created_rerun_deleted_and_created_again() {
    let env = start();
    let out = env.tmp.path().join("out");
    let name = "gcpcorpus";
    let dir = corpus();
    let create = [
        "gcp",
        "create-all",
        "--name",
        name,
        "--project",
        PROJECT_ID,
        "--region",
        "us-east1",
        "--credentials-requests-dir",
        s(&dir),
        "--output-dir",
        s(&out),
        "--enable-tech-preview",
    ];
    ok(&env.ccoctl(&create));
    let reqs = corpus_requests();

    // Issuer: pool, provider, public bucket with both documents.
    let pools = env.fake.pools();
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0]["state"], "ACTIVE");
    let providers = env.fake.providers();
    assert_eq!(providers.len(), 1);
    let issuer = format!("https://storage.googleapis.com/{name}-oidc");
    assert_eq!(providers[0]["oidc"]["issuerUri"], issuer.as_str());
    assert_eq!(
        providers[0]["oidc"]["allowedAudiences"],
        serde_json::json!(["openshift"])
    );
    assert_eq!(
        providers[0]["attributeMapping"]["google.subject"],
        "assertion.sub"
    );
    assert!(providers[0]["oidc"].get("jwksJson").is_none());
    let disc: Value = serde_json::from_slice(
        &env.object(&format!("{name}-oidc"), ".well-known/openid-configuration")
            .expect("discovery"),
    )
    .expect("json");
    assert_eq!(disc["issuer"], issuer.as_str());
    assert_eq!(disc["jwks_uri"], format!("{issuer}/keys.json"));
    let keys: Value = serde_json::from_slice(
        &env.object(&format!("{name}-oidc"), "keys.json")
            .expect("keys"),
    )
    .expect("json");
    assert_eq!(keys["keys"].as_array().expect("keys").len(), 1);
    let bp = env
        .fake
        .bucket_policy(&format!("{name}-oidc"))
        .expect("bucket policy");
    assert!(bp["bindings"]
        .as_array()
        .expect("b")
        .iter()
        .any(|b| b["role"] == "roles/storage.objectViewer"
            && b["members"] == serde_json::json!(["allUsers"])));
    let auth = std::fs::read_to_string(out.join("manifests/cluster-authentication-02-config.yaml"))
        .expect("auth");
    assert!(auth.contains(&format!("serviceAccountIssuer: {issuer}")));

    // One service account per request, with its roles and federated principals.
    let sas = env.fake.service_accounts();
    assert_eq!(sas.len(), reqs.len());
    let policy = env.fake.project_policy();
    for Req {
        name: req,
        ns,
        secret,
        ksas,
        predefined,
        has_perms,
    } in &reqs
    {
        let display = format!("{name}-{req}");
        let sa = sas
            .iter()
            .find(|a| a["displayName"] == display.as_str())
            .expect("service account");
        let email = sa["email"].as_str().expect("email");
        assert!(email.len() <= 30 + "@fake-project.iam.gserviceaccount.com".len());
        let member = format!("serviceAccount:{email}");
        let mut want: Vec<String> = predefined.clone();
        if *has_perms {
            // The reference tool's id: <project>_<request>, letters and digits only.
            let alnum = |x: &str| {
                x.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
            };
            let r = alnum(req);
            want.push(format!(
                "projects/{PROJECT_ID}/roles/{}_{}",
                alnum(PROJECT_ID),
                &r[..r.len().min(31)]
            ));
        }
        let mut have: Vec<String> = policy["bindings"]
            .as_array()
            .expect("b")
            .iter()
            .filter(|b| {
                b["members"]
                    .as_array()
                    .expect("m")
                    .iter()
                    .any(|m| m == member.as_str())
            })
            .map(|b| b["role"].as_str().expect("role").to_string())
            .collect();
        have.sort();
        want.sort();
        assert_eq!(have, want, "{req}");
        let sap = env.fake.service_account_policy(email).expect("sa policy");
        let wiu = sap["bindings"]
            .as_array()
            .expect("b")
            .iter()
            .find(|b| b["role"] == "roles/iam.workloadIdentityUser")
            .expect("wiu");
        let mut principals: Vec<String> = wiu["members"]
            .as_array()
            .expect("m")
            .iter()
            .map(|m| m.as_str().expect("s").to_string())
            .collect();
        principals.sort();
        let mut expect: Vec<String> = ksas.iter().map(|k| format!(
            "principal://iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{name}/subject/system:serviceaccount:{ns}:{k}")).collect();
        expect.sort();
        assert_eq!(principals, expect, "{req}");
        let cfg = secret_config(&out, ns, secret);
        assert_eq!(cfg["type"], "external_account");
        assert_eq!(cfg["audience"], format!("//iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{name}/providers/{name}"));
        assert_eq!(cfg["service_account_impersonation_url"], format!("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{email}:generateAccessToken"));
        assert_eq!(
            cfg["credential_source"]["file"],
            "/var/run/secrets/openshift/serviceaccount/token"
        );
    }
    assert_eq!(
        env.fake.roles().len(),
        reqs.iter().filter(|r| r.has_perms).count()
    );
    // Every account's project roles were set with one read-modify-write of the project policy,
    // retried while the new accounts were not visible yet rather than failed.
    let sets: Vec<u16> = env
        .fake
        .server
        .calls()
        .into_iter()
        .filter(|(r, _)| {
            let path = r.split('?').next().unwrap_or_default();
            path.ends_with(":setIamPolicy") && path.contains(&format!("projects/{PROJECT_ID}:"))
        })
        .map(|(_, status)| status)
        .collect();
    assert_eq!(
        sets.iter().filter(|s| **s == 200).count(),
        1,
        "project policy writes: {sets:?}"
    );

    // A re-run converges: the same accounts, the same Secrets.
    let before: Vec<Value> = reqs
        .iter()
        .map(|r| secret_config(&out, &r.ns, &r.secret))
        .collect();
    let stdout = ok(&env.ccoctl(&create));
    assert!(stdout.contains("already up to date"), "{stdout}");
    assert_eq!(env.fake.service_accounts().len(), reqs.len());
    let after: Vec<Value> = reqs
        .iter()
        .map(|r| secret_config(&out, &r.ns, &r.secret))
        .collect();
    assert_eq!(before, after);

    // Delete leaves nothing of ours.
    let delete = [
        "gcp",
        "delete",
        "--name",
        name,
        "--project",
        PROJECT_ID,
        "--credentials-requests-dir",
        s(&dir),
        "--force-delete-custom-roles",
    ];
    ok(&env.ccoctl(&delete));
    assert!(env.fake.service_accounts().is_empty());
    assert!(env.our_members().is_empty(), "{:?}", env.our_members());
    assert!(env.fake.roles().iter().all(|r| r["deleted"] == true));
    assert!(env.fake.pools().iter().all(|p| p["state"] == "DELETED"));
    assert!(!env.bucket_exists(&format!("{name}-oidc")));
    // A second delete finds nothing and succeeds.
    ok(&env.ccoctl(&delete));

    // Creating again restores the soft-deleted pool and custom roles.
    ok(&env.ccoctl(&create));
    assert_eq!(env.fake.service_accounts().len(), reqs.len());
    assert!(env.fake.pools().iter().all(|p| p["state"] == "ACTIVE"));
    assert!(env.fake.roles().iter().all(|r| r["deleted"] != true));
    ok(&env.ccoctl(&delete));
    assert!(env.fake.service_accounts().is_empty());
    assert!(env.our_members().is_empty());
}

#[test]
fn pool_jwk_file_embeds_the_keys_in_the_provider_and_makes_no_bucket() {
    let env = start();
    let out = env.tmp.path().join("out");
    let name = "jwkpool";
    ok(&env.ccoctl(&gcp_cmd(
        "create-all",
        name,
        &[
            "--key-storage-method",
            "pool-jwk-file",
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out),
        ],
    )));
    assert!(env.fake.buckets().is_empty());
    assert!(!env.bucket_exists(&format!("{name}-oidc")));
    let p = &env.fake.providers()[0];
    let jwks: Value =
        serde_json::from_str(p["oidc"]["jwksJson"].as_str().expect("jwksJson")).expect("json");
    let pem = std::fs::read_to_string(out.join("serviceaccount-signer.public")).expect("pub");
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    assert!(!pem.is_empty());
    assert_eq!(
        p["oidc"]["issuerUri"],
        format!("https://storage.googleapis.com/{name}-oidc")
    );
    // A rotated key is published beside the old one.
    std::fs::remove_file(out.join("serviceaccount-signer.private")).expect("rm");
    ok(&env.ccoctl(&gcp_cmd(
        "create-all",
        name,
        &[
            "--key-storage-method",
            "pool-jwk-file",
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out),
        ],
    )));
    let p = &env.fake.providers()[0];
    let jwks: Value =
        serde_json::from_str(p["oidc"]["jwksJson"].as_str().expect("jwksJson")).expect("json");
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 2);
    ok(&env.ccoctl(&gcp_cmd(
        "delete",
        name,
        &[
            "--credentials-requests-dir",
            s(&corpus()),
            "--force-delete-custom-roles",
        ],
    )));
    assert!(env.fake.service_accounts().is_empty());
    assert!(env.fake.pools().iter().all(|p| p["state"] == "DELETED"));
}

#[test]
fn delete_removes_only_what_ccoctl_made() {
    let env = start();
    let out = env.tmp.path().join("out");
    let name = "mixed";
    ok(&env.ccoctl(&gcp_cmd(
        "create-all",
        name,
        &[
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out),
        ],
    )));
    // Someone else's things: a service account with one of our display names, a binding, an
    // object in the issuer bucket, and a pool ccoctl did not make.
    env.fake.insert_service_account(
        "someone-else1",
        &format!("{name}-openshift-gcp-ccm"),
        "made by hand",
    );
    env.fake
        .add_project_binding("roles/viewer", "user:someone@example.com");
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let (status, _, _) = rt
        .block_on(cco_testsupport::fake_http::raw(
            "POST",
            &format!(
                "{}/upload/storage/v1/b/{name}-oidc/o?uploadType=media&name=notes.txt",
                env.gcs.endpoint
            ),
            &[("Content-Type", "text/plain")],
            b"hello",
        ))
        .expect("upload");
    assert_eq!(status, 200);
    env.fake.insert_pool("handmade", "not ccoctl");
    // Dry run first: nothing changes.
    let listed = ok(&env.ccoctl(&gcp_cmd(
        "delete",
        name,
        &["--credentials-requests-dir", s(&corpus()), "--dry-run"],
    )));
    assert!(listed.contains("Would delete service account"), "{listed}");
    assert_eq!(env.fake.service_accounts().len(), 9);
    let stdout = ok(&env.ccoctl(&gcp_cmd(
        "delete",
        name,
        &["--credentials-requests-dir", s(&corpus())],
    )));
    assert!(stdout.contains("Kept custom role"), "{stdout}");
    assert!(
        stdout.contains("holds 1 objects ccoctl did not write"),
        "{stdout}"
    );
    let left = env.fake.service_accounts();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["description"], "made by hand");
    assert!(env.bucket_exists(&format!("{name}-oidc")));
    assert!(env.object(&format!("{name}-oidc"), "keys.json").is_none());
    assert!(env.object(&format!("{name}-oidc"), "notes.txt").is_some());
    assert!(env.fake.project_policy()["bindings"]
        .as_array()
        .expect("b")
        .iter()
        .any(|b| b["members"] == serde_json::json!(["user:someone@example.com"])));
    assert!(
        env.fake.roles().iter().all(|r| r["deleted"] != true),
        "roles kept without --force-delete-custom-roles"
    );
    assert!(env
        .fake
        .pools()
        .iter()
        .any(|p| p["name"].as_str().expect("n").ends_with("/handmade") && p["state"] == "ACTIVE"));
}

#[test]
fn step_by_step_commands_build_the_same_federation() {
    let env = start();
    let out = env.tmp.path().join("out");
    let name = "steps1";
    ok(&env.ccoctl(&["gcp", "create-key-pair", "--output-dir", s(&out)]));
    ok(&env.ccoctl(&gcp_cmd("create-workload-identity-pool", name, &[])));
    ok(&env.ccoctl(&gcp_cmd(
        "create-workload-identity-provider",
        name,
        &["--workload-identity-pool", name, "--output-dir", s(&out)],
    )));
    ok(&env.ccoctl(&gcp_cmd(
        "create-service-accounts",
        name,
        &[
            "--workload-identity-pool",
            name,
            "--workload-identity-provider",
            name,
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out),
        ],
    )));
    assert_eq!(env.fake.service_accounts().len(), 8);
    assert!(env.object(&format!("{name}-oidc"), "keys.json").is_some());
    ok(&env.ccoctl(&gcp_cmd(
        "delete",
        name,
        &[
            "--credentials-requests-dir",
            s(&corpus()),
            "--force-delete-custom-roles",
        ],
    )));
    assert!(env.fake.service_accounts().is_empty());
}

#[test]
fn bad_names_requests_projects_and_credentials_fail_clearly() {
    let env = start();
    let out = env.tmp.path().join("out");
    let err = failed(&env.ccoctl(&gcp_cmd(
        "create-all",
        &"n".repeat(33),
        &[
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out),
        ],
    )));
    assert!(
        err.contains("Name can be at most 32 characters long"),
        "{err}"
    );
    let err = failed(&env.ccoctl(&gcp_cmd(
        "create-all",
        "Bad_Name",
        &[
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out),
        ],
    )));
    assert!(err.contains("lower-case"), "{err}");
    // A request without serviceAccountNames, before any call.
    let reqs = env.tmp.path().join("reqs");
    std::fs::create_dir_all(&reqs).expect("mkdir");
    let text = std::fs::read_to_string(corpus().join("openshift-gcp-ccm.yaml")).expect("read");
    let bad = text.replace("  serviceAccountNames:\n  - cloud-controller-manager\n", "");
    assert_ne!(bad, text);
    std::fs::write(reqs.join("ccm.yaml"), bad).expect("write");
    let err = failed(&env.ccoctl(&gcp_cmd(
        "create-all",
        "badreq",
        &[
            "--credentials-requests-dir",
            s(&reqs),
            "--output-dir",
            s(&out),
        ],
    )));
    assert!(
        err.contains("ccm.yaml (document 0)") && err.contains("spec.serviceAccountNames"),
        "{err}"
    );
    assert!(env.fake.server.requests().is_empty());
    let err = failed(&env.ccoctl(&[
        "gcp",
        "create-workload-identity-pool",
        "--name",
        "other",
        "--project",
        "nope",
    ]));
    assert!(
        err.contains("PERMISSION_DENIED") && err.contains("nope"),
        "{err}"
    );
    // A credentials file of a type no Google library knows, and an incomplete one: the file is
    // named, its content is not echoed.
    for (content, says) in [
        (
            r#"{"type":"gdch_service_account","private_key":"SECRET"}"#,
            "supported are",
        ),
        (
            r#"{"type":"external_account","private_key":"SECRET"}"#,
            "key.json",
        ),
    ] {
        std::fs::write(env.tmp.path().join("key.json"), content).expect("write");
        let err = failed(&env.ccoctl(&gcp_cmd("create-workload-identity-pool", "other", &[])));
        assert!(
            err.contains("GCP credentials") && err.contains("key.json") && err.contains(says),
            "{err}"
        );
        assert!(!err.contains("SECRET"), "{err}");
    }
}

/// An unsigned JWT (the fake's STS does not check the issuer's signature).
fn subject_token(claims: &Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        b64(&serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "k"})),
        b64(claims)
    )
}

#[test]
fn workload_identity_federation_credentials_drive_ccoctl() {
    // Issue 12: credentials are Google's own implementation, so an `external_account` file (a
    // file-sourced subject token exchanged at the file's `token_url`) works like a key. The fake's
    // STS only exchanges a token that its pool's provider trusts, and records who each call was
    // made as.
    let env = start();
    let out = env.tmp.path().join("out");
    let name = "wifcreds";
    ok(&env.ccoctl(&gcp_cmd(
        "create-all",
        name,
        &[
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out),
        ],
    )));
    // The key was used as a self-signed JWT, not exchanged at the token endpoint.
    let admin = format!("admin@{PROJECT_ID}.iam.gserviceaccount.com");
    assert_eq!(env.fake.callers(), vec![admin.clone()]);
    assert!(!env
        .fake
        .server
        .requests()
        .iter()
        .any(|r| r.contains("/token")));

    let provider = env.fake.providers()[0]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let issuer = format!("https://storage.googleapis.com/{name}-oidc");
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("now")
        .as_secs()
        + 3600;
    let sub = "system:serviceaccount:ci:deployer";
    let write_creds = |claims: Value| {
        let token_file = env.tmp.path().join("subject-token");
        std::fs::write(&token_file, subject_token(&claims)).expect("token");
        let creds = serde_json::json!({
            "type": "external_account",
            "audience": format!("//iam.googleapis.com/{provider}"),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": format!("{}/v1/token", env.fake.endpoint()),
            "credential_source": {"file": token_file},
        });
        let path = env.tmp.path().join("wif.json");
        std::fs::write(&path, creds.to_string()).expect("creds");
        path
    };
    // A token of another issuer is refused by the STS, and ccoctl says where the credentials came
    // from.
    let creds = write_creds(
        serde_json::json!({"iss": "https://elsewhere.example", "aud": "openshift", "sub": sub, "exp": exp}),
    );
    let dir = corpus();
    let delete = [
        "gcp",
        "delete",
        "--name",
        name,
        "--project",
        PROJECT_ID,
        "--credentials-requests-dir",
        s(&dir),
    ];
    let err = failed(&env.ccoctl_with_credentials(&creds, &delete));
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        line.contains("GCP credentials") && line.contains("wif.json"),
        "{err}"
    );
    assert_eq!(env.fake.callers(), vec![admin.clone()]);

    let creds =
        write_creds(serde_json::json!({"iss": issuer, "aud": "openshift", "sub": sub, "exp": exp}));
    ok(&env.ccoctl_with_credentials(&creds, &delete));
    let federated = format!(
        "principal://iam.googleapis.com/{}/subject/{sub}",
        provider.split("/providers/").next().expect("pool")
    );
    assert_eq!(env.fake.callers(), vec![admin, federated]); // sorted
    assert!(env
        .fake
        .server
        .requests()
        .iter()
        .any(|r| r.starts_with("POST /v1/token")));
    assert!(env.fake.service_accounts().is_empty());
    assert!(env.fake.pools().iter().all(|p| p["state"] == "DELETED"));
}

#[test]
fn the_installer_file_comes_before_application_default_credentials() {
    // The reference ccoctl's order: GOOGLE_CREDENTIALS & co., then ~/.gcp/osServiceAccount.json,
    // then application default credentials (GOOGLE_APPLICATION_CREDENTIALS among them).
    let env = start();
    let gcp_dir = env.tmp.path().join(".gcp");
    std::fs::create_dir_all(&gcp_dir).expect("dir");
    std::fs::write(
        gcp_dir.join("osServiceAccount.json"),
        env.fake.service_account_key_json(),
    )
    .expect("key");
    let missing = env.tmp.path().join("missing.json");
    let args = [
        "gcp",
        "create-workload-identity-pool",
        "--name",
        "order",
        "--project",
        PROJECT_ID,
    ];
    ok(&env.ccoctl_with_credentials(&missing, &args));
    assert_eq!(env.fake.pools().len(), 1);
    // A bare token (GOOGLE_OAUTH_ACCESS_TOKEN) comes first of all; the official clients send it.
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let (status, _, body) = rt
        .block_on(cco_testsupport::fake_http::raw(
            "POST",
            &format!("{}/token", env.fake.endpoint()),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"grant_type=refresh_token&refresh_token=r",
        ))
        .expect("http");
    assert_eq!(status, 200);
    let token: Value = serde_json::from_slice(&body).expect("json");
    let token = token["access_token"].as_str().expect("token");
    let before = env.fake.calls().len();
    ok(&env.ccoctl_with(
        &[
            ("GOOGLE_OAUTH_ACCESS_TOKEN", token),
            ("GOOGLE_CREDENTIALS", "{\"type\": \"nonsense\"}"),
        ],
        &args,
    ));
    let callers: Vec<Option<String>> = env.fake.calls()[before..]
        .iter()
        .map(|c| c.caller.clone())
        .collect();
    assert!(
        !callers.is_empty() && callers.iter().all(|c| c.as_deref() == Some("user")),
        "{callers:?}"
    );
    // GOOGLE_CREDENTIALS (here: content) comes before the installer's file.
    let out = env.ccoctl_with(&[("GOOGLE_CREDENTIALS", "{\"type\": \"nonsense\"}")], &args);
    let err = failed(&out);
    assert!(err.contains("GOOGLE_CREDENTIALS"), "{err}");
}

#[test]
fn impersonated_service_account_credentials_act_as_the_target() {
    // Issue 12: an `impersonated_service_account` file (source: the admin's key) gets its token from
    // IAM Credentials `generateAccessToken`, which the fake grants only to a token creator; every
    // call is then made as the target account.
    let env = start();
    env.fake
        .insert_service_account("deployer-sa", "deployer", "made by hand");
    let target = format!("deployer-sa@{PROJECT_ID}.iam.gserviceaccount.com");
    let source: Value = serde_json::from_str(
        &std::fs::read_to_string(env.tmp.path().join("key.json")).expect("key"),
    )
    .expect("json");
    let admin = source["client_email"].as_str().expect("email").to_string();
    let creds = env.tmp.path().join("impersonated.json");
    std::fs::write(
        &creds,
        serde_json::json!({
            "type": "impersonated_service_account",
            "service_account_impersonation_url": format!(
                "{}/v1/projects/-/serviceAccounts/{target}:generateAccessToken",
                env.fake.endpoint()
            ),
            "source_credentials": source,
            "delegates": [],
        })
        .to_string(),
    )
    .expect("write");
    let args = [
        "gcp",
        "create-workload-identity-pool",
        "--name",
        "impersonated",
        "--project",
        PROJECT_ID,
    ];
    // Not a token creator on the target yet: refused, and ccoctl names the file.
    let err = failed(&env.ccoctl_with_credentials(&creds, &args));
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        line.contains("GCP credentials") && line.contains("impersonated.json"),
        "{err}"
    );
    assert!(env.fake.pools().is_empty());

    env.fake.edit_service_account_policy(&target, |p| {
        p["bindings"] = serde_json::json!([{"role": "roles/iam.serviceAccountTokenCreator",
            "members": [format!("serviceAccount:{admin}")]}]);
    });
    let before = env.fake.calls().len();
    ok(&env.ccoctl_with_credentials(&creds, &args));
    assert_eq!(env.fake.pools().len(), 1);
    let calls = env.fake.calls()[before..].to_vec();
    let (minting, rest): (Vec<_>, Vec<_>) = calls
        .iter()
        .partition(|c| c.path.ends_with(":generateAccessToken"));
    assert_eq!(minting.len(), 1, "{calls:?}");
    assert_eq!(minting[0].caller.as_deref(), Some(admin.as_str()));
    assert!(
        !rest.is_empty()
            && rest
                .iter()
                .all(|c| c.caller.as_deref() == Some(target.as_str())),
        "{calls:?}"
    );
}
