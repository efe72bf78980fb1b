//! The Azure resources `ccoctl azure create-all` makes, compared field by field with what the
//! reference tool makes (pkg/cmd/provisioning/azure/create_oidc_issuer.go and
//! create_managed_identities.go), against Azurite and the Azure Resource Manager fake: the blob
//! container's container-level public access, tags merged into those a resource already has (the
//! reference's `mergeResourceTags`), federated identity credentials named after the service account
//! with the reference's fields, custom roles and role assignments.

use crate::azure_env;
use crate::snapshot;

use azure_env::*;
use cco_testsupport::azure_fake::SUBSCRIPTION;
use serde_json::json;

const OWNER: &str = "openshift.io_cloud-credential-operator_ccoazlive";

/// An anonymous `Get Container Properties`: allowed only when the container's public access level is
/// `container`; returns the status and the level Azurite reports.
fn anonymous_container_properties(env: &Env, container: &str) -> (u16, Option<String>) {
    let url = format!(
        "{}{container}?restype=container",
        env.azurite.blob_endpoint(ACCOUNT)
    );
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let (status, headers, _) = rt
        .block_on(cco_testsupport::fake_http::raw(
            "GET",
            &url,
            &[("x-ms-version", "2021-08-06")],
            b"",
        ))
        .expect("http");
    (status, headers.get("x-ms-blob-public-access").cloned())
}

/// `ccoctl azure plan --output json` with create-all's flags and `user_tags`.
fn plan(env: &Env, user_tags: &str) -> serde_json::Value {
    let corpus = corpus();
    let out = env.out();
    let key = snapshot::fixture_public_key();
    let o = env.ccoctl(&azure_cmd(
        "ccoazlive",
        "plan",
        &[
            "--installation-resource-group-name",
            "cluster-rg",
            "--dnszone-resource-group-name",
            "dns-rg",
            "--user-tags",
            user_tags,
            "--credentials-requests-dir",
            s(&corpus),
            "--output-dir",
            s(&out),
            "--public-key-file",
            s(&key),
            "--output",
            "json",
        ],
    ));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn the_issuer_container_is_public_at_container_level_as_the_reference_makes_it() {
    let env = start();
    env.fake.insert_resource_group("dns-rg");
    ok(&env.create_all(&["--public-key-file", s(&snapshot::fixture_public_key())]));
    // armstorage.PublicAccessContainer: anonymous clients may read the blobs and the container.
    assert_eq!(
        anonymous_container_properties(&env, "ccoazlive"),
        (200, Some("container".to_string()))
    );
    // An existing container with less access (blobs only, as earlier versions of this tool made
    // it) is raised to the same level on a re-run, and `plan` says so first.
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let blob = cco_azure::blob::BlobClient::new(
            reqwest::Client::new(),
            &env.azurite.blob_endpoint(ACCOUNT),
            cco_testsupport::azurite::DEV_KEY,
        )
        .expect("client");
        blob.set_public_access("ccoazlive", Some("blob"))
            .await
            .expect("blob level");
    });
    assert_ne!(anonymous_container_properties(&env, "ccoazlive").0, 200);
    let report = plan(&env, "team=ocp,env=test");
    let text = report.to_string();
    assert!(
        text.contains("blob-container") && text.contains("\"container\""),
        "{report:#}"
    );
    ok(&env.create_all(&["--public-key-file", s(&snapshot::fixture_public_key())]));
    assert_eq!(
        anonymous_container_properties(&env, "ccoazlive"),
        (200, Some("container".to_string()))
    );
}

#[test]
fn tags_are_merged_into_existing_resources_and_identities_federate_as_the_reference_does() {
    let env = start();
    env.fake.insert_resource_group("dns-rg");
    let key = snapshot::fixture_public_key();
    ok(&env.create_all(&["--public-key-file", s(&key)]));

    // Someone (or the reference tool with other --user-tags) put more tags on our resources.
    {
        let mut guard = env.fake.state.lock().expect("state");
        let st = &mut *guard;
        for v in st
            .identities
            .values_mut()
            .chain(st.storage_accounts.values_mut())
        {
            v["tags"]["cost-center"] = json!("42");
        }
    }
    // A re-run with another user tag keeps every tag there and adds the new one.
    ok(&env.ccoctl(&azure_cmd(
        "ccoazlive",
        "create-all",
        &[
            "--installation-resource-group-name",
            "cluster-rg",
            "--dnszone-resource-group-name",
            "dns-rg",
            "--user-tags",
            "team=ocp,owner=alice",
            "--public-key-file",
            s(&key),
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&env.out()),
        ],
    )));
    // Converged: the plan (same merge rule) has nothing left to do for them.
    let report = plan(&env, "team=ocp,owner=alice");
    assert_eq!(report["changes"], json!([]), "{report:#}");
    let st = env.fake.state.lock().expect("state");
    assert!(!st.identities.is_empty());
    for v in st.identities.values().chain(st.storage_accounts.values()) {
        assert_eq!(
            v["tags"],
            json!({OWNER: "owned", "team": "ocp", "env": "test", "cost-center": "42",
                "owner": "alice"}),
            "{}",
            v["name"]
        );
    }
    for (k, g) in &st.resource_groups {
        if k != "cluster-rg" && k != "dns-rg" {
            assert_eq!(g["tags"]["env"], "test", "{k}");
            assert_eq!(g["tags"]["owner"], "alice", "{k}");
        }
    }

    // Federated identity credentials: one per service account, named after it, with the
    // reference's issuer, subject and audience.
    let issuer = format!("{}ccoazlive", env.azurite.blob_endpoint(ACCOUNT));
    let ingress = "ccoazlive-openshift-ingress-operator-cloud-credentials";
    let fics: Vec<_> = st
        .federated_credentials
        .iter()
        .filter(|((_, identity, _), _)| identity == ingress)
        .map(|((_, _, name), v)| (name.clone(), v.clone()))
        .collect();
    assert_eq!(fics.len(), 1, "{fics:?}");
    assert_eq!(fics[0].0, "ingress-operator");
    assert_eq!(fics[0].1["name"], "ingress-operator");
    assert_eq!(
        fics[0].1["properties"],
        json!({"issuer": issuer.trim_end_matches('/'),
            "subject": "system:serviceaccount:openshift-ingress-operator:ingress-operator",
            "audiences": ["openshift"]})
    );

    // The custom role: named after the identity, the reference's description, assignable in the
    // subscription, the request's permissions in its order.
    let role = st
        .role_definitions
        .values()
        .find(|d| d["properties"]["roleName"] == ingress)
        .expect("custom role");
    assert_eq!(role["properties"]["type"], "CustomRole");
    assert_eq!(
        role["properties"]["description"],
        "Custom role for OpenShift. Owned by: ccoazlive"
    );
    assert_eq!(
        role["properties"]["assignableScopes"],
        json!([format!("/subscriptions/{SUBSCRIPTION}")])
    );
    assert!(role["properties"]["permissions"][0]["actions"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));

    // Role assignments: the identity's principal, that role, on each scoping resource group.
    let principal = st
        .identities
        .values()
        .find(|i| i["name"] == ingress)
        .expect("identity")["properties"]["principalId"]
        .clone();
    let mut scopes: Vec<String> = st
        .role_assignments
        .values()
        .filter(|a| a["properties"]["principalId"] == principal)
        .map(|a| {
            assert_eq!(a["properties"]["roleDefinitionId"], role["id"]);
            a["properties"]["scope"]
                .as_str()
                .expect("scope")
                .to_string()
        })
        .collect();
    scopes.sort();
    assert_eq!(
        scopes,
        [
            format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/cluster-rg"),
            format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/dns-rg"),
        ]
    );
}

/// The reference's `openidConfigurationTemplate` (create_oidc_issuer.go), verbatim.
const REF_AZURE_DISCOVERY: &str = "{\n\t\t\"issuer\": \"%s\",\n\t\t\"jwks_uri\": \"%s/openid/v1/jwks\",\n\t\t\"response_types_supported\": [\n\t\t  \"id_token\"\n\t\t],\n\t\t\"subject_types_supported\": [\n\t\t  \"public\"\n\t\t],\n\t\t\"id_token_signing_alg_values_supported\": [\n\t\t  \"RS256\"\n\t\t]\n\t  }";

/// A blob read anonymously: its bytes and content type.
fn raw_blob(env: &Env, path: &str) -> (Vec<u8>, Option<String>) {
    let url = format!("{}ccoazlive/{path}", env.azurite.blob_endpoint(ACCOUNT));
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let (status, headers, body) = rt
        .block_on(cco_testsupport::fake_http::raw("GET", &url, &[], b""))
        .expect("http");
    assert_eq!(status, 200, "{url}");
    (body, headers.get("content-type").cloned())
}

#[test]
fn the_issuer_documents_are_the_reference_bytes_in_the_files_and_the_container() {
    let env = start();
    env.fake.insert_resource_group("dns-rg");
    ok(&env.create_all(&["--public-key-file", s(&snapshot::fixture_public_key())]));
    let issuer = format!("{}ccoazlive", env.azurite.blob_endpoint(ACCOUNT));
    let want = REF_AZURE_DISCOVERY.replace("%s", &issuer);
    let (disc, ctype) = raw_blob(&env, ".well-known/openid-configuration");
    assert_eq!(String::from_utf8(disc).expect("utf8"), want);
    // azblob's UploadBuffer without HTTP headers: the service's default content type.
    assert_eq!(ctype.as_deref(), Some("application/octet-stream"));
    let (jwks, ctype) = raw_blob(&env, "openid/v1/jwks");
    assert_eq!(ctype.as_deref(), Some("application/octet-stream"));
    let jwks = String::from_utf8(jwks).expect("utf8");
    // Go's json.MarshalIndent(keySet, "", "    "): four spaces, no final newline.
    assert!(
        jwks.starts_with("{\n    \"keys\": [\n        {\n            \""),
        "{jwks}"
    );
    assert!(jwks.ends_with("\n        }\n    ]\n}"), "{jwks}");
    // The files beside are the same bytes.
    let out = env.out();
    assert_eq!(
        std::fs::read_to_string(out.join("openid-configuration")).expect("file"),
        want
    );
    assert_eq!(
        std::fs::read_to_string(out.join("jwks")).expect("file"),
        jwks
    );
}
