//! `ccoctl azure` against Azurite (the Blob service holding the issuer documents) and the stateful
//! Azure Resource Manager fake: every corpus request through create-all, a re-run without
//! duplicates, `delete --dry-run` deleting nothing, `delete` leaving nothing it made; dry runs making
//! no call; bad inputs. Results are read back from the fake's state and anonymously from Azurite.

use crate::azure_env;

use std::path::Path;
use std::process::Command;

use azure_env::*;
use cco_testsupport::azure_fake::{SUBSCRIPTION, TENANT};

fn corpus_service_accounts() -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(corpus()).expect("corpus").flatten() {
        let text = std::fs::read_to_string(e.path()).expect("read");
        for doc in text.split("\n---") {
            let v: serde_yaml::Value = serde_yaml::from_str(doc).unwrap_or_default();
            n += v["spec"]["serviceAccountNames"]
                .as_sequence()
                .map(|s| s.len())
                .unwrap_or(0);
        }
    }
    n
}

#[test]
fn every_corpus_request_goes_through_create_all_rerun_and_delete_leaving_nothing() {
    let env = start();
    env.fake.insert_resource_group("cluster-rg");
    env.fake.insert_resource_group("dns-rg");
    let o = env.create_all(&[]);
    ok(&o);
    let requests = std::fs::read_dir(corpus()).expect("corpus").count();
    let counts = env.fake.counts();
    assert_eq!(counts["identities"], requests, "{counts:?}");
    assert_eq!(counts["custom_roles"], requests);
    assert_eq!(counts["federated_credentials"], corpus_service_accounts());
    assert_eq!(counts["storage_accounts"], 1);
    // one assignment per request on the installation group, plus the ingress operator's on dns-rg
    assert_eq!(counts["role_assignments"], requests + 1);

    // The issuer is served anonymously from the blob endpoint the storage account reports.
    let issuer = format!("{}{ACCOUNT}", env.azurite.blob_endpoint(ACCOUNT));
    let disc = env
        .public_blob(ACCOUNT, ".well-known/openid-configuration")
        .expect("discovery document is public");
    assert_eq!(disc["issuer"], issuer.as_str());
    assert_eq!(
        disc["jwks_uri"],
        format!("{issuer}/openid/v1/jwks").as_str()
    );
    let jwks = env
        .public_blob(ACCOUNT, "openid/v1/jwks")
        .expect("jwks is public");
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));
    // Both documents carry the resource tags (blob index tags), as the reference tool uploads them.
    {
        let rt = tokio::runtime::Runtime::new().expect("rt");
        let blob = cco_azure::blob::BlobClient::new(
            cco_azure::http_client().expect("client"),
            &env.azurite.blob_endpoint(ACCOUNT),
            cco_testsupport::azurite::DEV_KEY,
        )
        .expect("blob client");
        for doc in [".well-known/openid-configuration", "openid/v1/jwks"] {
            let mut tags = rt.block_on(blob.get_blob_tags(ACCOUNT, doc)).expect("tags");
            tags.sort();
            assert_eq!(
                tags,
                [
                    ("env".to_string(), "test".to_string()),
                    (
                        "openshift.io_cloud-credential-operator_ccoazlive".into(),
                        "owned".into()
                    ),
                    ("team".into(), "ocp".into()),
                ],
                "{doc}"
            );
        }
    }
    let auth = std::fs::read_to_string(
        env.out()
            .join("manifests/cluster-authentication-02-config.yaml"),
    )
    .expect("auth manifest");
    assert!(auth.contains(&issuer), "{auth}");

    // Every federated credential trusts the issuer with audience openshift; everything is tagged.
    {
        let st = env.fake.state.lock().expect("state");
        for f in st.federated_credentials.values() {
            assert_eq!(f["properties"]["issuer"], issuer.as_str());
            assert_eq!(
                f["properties"]["audiences"],
                serde_json::json!(["openshift"])
            );
            assert!(f["properties"]["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("system:serviceaccount:")));
        }
        for v in st.identities.values().chain(st.storage_accounts.values()) {
            assert_eq!(
                v["tags"]["openshift.io_cloud-credential-operator_ccoazlive"],
                "owned"
            );
            assert_eq!(v["tags"]["team"], "ocp");
        }
        let ingress = st
            .identities
            .values()
            .find(|i| i["name"] == "ccoazlive-openshift-ingress-operator-cloud-credentials")
            .expect("ingress identity");
        let principal = ingress["properties"]["principalId"].clone();
        let scopes: Vec<String> = st
            .role_assignments
            .values()
            .filter(|a| a["properties"]["principalId"] == principal)
            .map(|a| a["properties"]["scope"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(scopes.len(), 2, "{scopes:?}");
        assert!(scopes.iter().any(|s| s.ends_with("/resourceGroups/dns-rg")));
    }

    // Secrets carry the five fields and the identity's client id.
    let secret = std::fs::read_to_string(
        env.out()
            .join("manifests/openshift-ingress-operator-cloud-credentials-credentials.yaml"),
    )
    .expect("secret");
    let v: serde_yaml::Value = serde_yaml::from_str(&secret).expect("yaml");
    let d = &v["stringData"];
    assert_eq!(d["azure_tenant_id"].as_str(), Some(TENANT));
    assert_eq!(d["azure_subscription_id"].as_str(), Some(SUBSCRIPTION));
    assert_eq!(d["azure_region"].as_str(), Some("eastus"));
    assert_eq!(
        d["azure_federated_token_file"].as_str(),
        Some("/var/run/secrets/openshift/serviceaccount/token")
    );
    assert!(d["azure_client_id"].as_str().is_some_and(|c| !c.is_empty()));
    let secrets = std::fs::read_dir(env.out().join("manifests"))
        .expect("manifests")
        .filter(|e| {
            e.as_ref().is_ok_and(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with("-credentials.yaml")
            })
        })
        .count();
    assert_eq!(secrets, requests);

    // A re-run converges without duplicates and keeps the client ids.
    let o = env.create_all(&[]);
    ok(&o);
    assert_eq!(env.fake.counts(), counts);
    assert_eq!(
        std::fs::read_to_string(
            env.out()
                .join("manifests/openshift-ingress-operator-cloud-credentials-credentials.yaml")
        )
        .expect("secret"),
        secret
    );

    // delete --dry-run deletes nothing.
    let before = env.fake.server.requests().len();
    let del = |extra: &[&str]| {
        let mut a = vec![
            "azure",
            "delete",
            "--name",
            "ccoazlive",
            "--region",
            "eastus",
            "--subscription-id",
            SUBSCRIPTION,
            "--delete-oidc-resource-group",
        ];
        a.extend_from_slice(extra);
        env.ccoctl(&a)
    };
    let o = del(&["--dry-run"]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Would delete managed identity"));
    assert_eq!(env.fake.counts(), counts);
    assert!(env.fake.server.requests()[before..]
        .iter()
        .all(|r| !r.starts_with("DELETE") && !r.starts_with("PUT")));

    // delete removes everything it made, and nothing else.
    ok(&del(&[]));
    let after = env.fake.counts();
    for k in [
        "identities",
        "federated_credentials",
        "custom_roles",
        "role_assignments",
        "storage_accounts",
    ] {
        assert_eq!(after[k], 0, "{k}: {after:?}");
    }
    let st = env.fake.state.lock().expect("state");
    let groups: Vec<&String> = st.resource_groups.keys().collect();
    assert_eq!(groups, vec!["cluster-rg", "dns-rg"]);
    drop(st);
    assert!(
        env.public_blob(ACCOUNT, ".well-known/openid-configuration")
            .is_none(),
        "the issuer documents are gone"
    );
    // A second delete finds nothing and succeeds.
    ok(&del(&[]));
}

#[test]
fn a_name_that_is_no_storage_account_name_is_refused_before_any_call() {
    let env = start();
    let o = env.ccoctl(&[
        "azure",
        "create-all",
        "--name",
        "my-cluster",
        "--region",
        "eastus",
        "--subscription-id",
        SUBSCRIPTION,
        "--tenant-id",
        TENANT,
        "--credentials-requests-dir",
        s(&corpus()),
        "--output-dir",
        s(&env.out()),
        "--dry-run",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--storage-account-name \"my-cluster\""),
        "{err}"
    );
    assert!(env.fake.server.requests().is_empty());
}

#[test]
fn bad_credentials_fail_at_once_with_the_token_endpoint_message() {
    let env = start();
    let out = env.out();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
    for (k, v) in env.fake.env() {
        cmd.env(k, v);
    }
    let o = cmd
        .env("AZURE_CLIENT_SECRET", "wrong")
        .args(azure_cmd(
            "ccoazlive",
            "create-all",
            &[
                "--credentials-requests-dir",
                s(&corpus()),
                "--output-dir",
                s(&out),
            ],
        ))
        .output()
        .expect("runs");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("AADSTS7000215"), "{err}");
}

#[test]
fn azurite_checks_the_shared_key_signature() {
    let env = start();
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let http = cco_azure::http_client().expect("client");
        let endpoint = env.azurite.blob_endpoint(ACCOUNT);
        let good = cco_azure::blob::BlobClient::new(
            http.clone(),
            &endpoint,
            cco_testsupport::azurite::DEV_KEY,
        )
        .expect("client");
        assert!(good.ensure_public_container("cc1").await.expect("create"));
        assert!(!good.ensure_public_container("cc1").await.expect("again"));
        good.put_blob("cc1", "a/b", "application/json", b"{}")
            .await
            .expect("put");
        assert_eq!(
            good.get_blob("cc1", "a/b").await.expect("get").as_deref(),
            Some(&b"{}"[..])
        );
        let bad =
            cco_azure::blob::BlobClient::new(http, &endpoint, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
                .expect("client");
        let err = bad
            .put_blob("cc1", "x", "text/plain", b"x")
            .await
            .expect_err("a wrong key is refused");
        assert_eq!(err.status(), Some(403), "{err}");
        assert!(good.delete_container("cc1").await.expect("delete"));
        assert!(!good.delete_container("cc1").await.expect("gone"));
    });
}

#[test]
fn stale_role_assignments_are_removed_unless_preserve_existing_roles() {
    let env = start();
    env.fake.insert_resource_group("cluster-rg");
    env.fake.insert_resource_group("dns-rg");
    ok(&env.create_all(&[]));
    let base = env.fake.counts()["role_assignments"];
    let scope = format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/cluster-rg");
    {
        let mut st = env.fake.state.lock().expect("state");
        let principal = st
            .identities
            .values()
            .find(|i| i["name"] == "ccoazlive-openshift-machine-api-azure-cloud-credentials")
            .map(|i| i["properties"]["principalId"].clone())
            .expect("identity");
        st.role_assignments.insert(
            "manual".into(),
            serde_json::json!({
                "id": format!("{scope}/providers/Microsoft.Authorization/roleAssignments/manual"),
                "name": "manual",
                "properties": {
                    "roleDefinitionId": format!("/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"),
                    "principalId": principal,
                    "scope": scope,
                }
            }),
        );
    }
    ok(&env.create_all(&["--preserve-existing-roles"]));
    assert_eq!(env.fake.counts()["role_assignments"], base + 1);
    let o = env.create_all(&[]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Removed stale role assignment"));
    assert_eq!(env.fake.counts()["role_assignments"], base);
}

#[test]
fn separate_issuer_and_identity_steps_work_and_a_new_key_is_published_beside_the_old() {
    let env = start();
    let base = [
        "--name",
        "ccoazlive",
        "--region",
        "eastus",
        "--subscription-id",
        SUBSCRIPTION,
        "--tenant-id",
        TENANT,
        "--blob-container-name",
        "issuer",
    ];
    let issuer_in = |dir: &Path| {
        ok(&env.ccoctl(&["azure", "create-key-pair", "--output-dir", s(dir)]));
        let mut a = vec!["azure", "create-oidc-issuer"];
        a.extend_from_slice(&base);
        a.extend_from_slice(&["--output-dir", s(dir)]);
        let o = env.ccoctl(&a);
        ok(&o);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Issuer URL: ").map(str::to_string))
            .expect("issuer printed")
    };
    let first = env.tmp.path().join("first");
    let issuer = issuer_in(&first);
    assert_eq!(
        issuer,
        format!("{}issuer", env.azurite.blob_endpoint(ACCOUNT))
    );
    let second = env.tmp.path().join("second");
    assert_eq!(issuer_in(&second), issuer);
    let jwks = env.public_blob("issuer", "openid/v1/jwks").expect("jwks");
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));

    let corpus = corpus();
    let mut a = vec!["azure", "create-managed-identities"];
    a.extend_from_slice(&base[..8]);
    a.extend_from_slice(&[
        "--issuer-url",
        &issuer,
        "--credentials-requests-dir",
        s(&corpus),
        "--output-dir",
        s(&second),
    ]);
    ok(&env.ccoctl(&a));
    let counts = env.fake.counts();
    assert_eq!(
        counts["identities"],
        std::fs::read_dir(corpus).expect("corpus").count()
    );
    // The installation group (default <name>) was created, tagged, because it was missing.
    let st = env.fake.state.lock().expect("state");
    assert_eq!(
        st.resource_groups["ccoazlive"]["tags"]["openshift.io_cloud-credential-operator_ccoazlive"],
        "owned"
    );
}
