//! `ccoctl azure` against Azurite (the Blob service holding the issuer documents) and the stateful
//! Azure Resource Manager fake: every corpus request through create-all, a re-run without
//! duplicates, `delete --dry-run` deleting nothing, `delete` leaving nothing it made; dry runs making
//! no call; bad inputs. Results are read back from the fake's state and anonymously from Azurite.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod snapshot;

use cco_testsupport::azure_fake::{AzureFake, SUBSCRIPTION, TENANT};
use cco_testsupport::azurite::Azurite;
use serde_json::{json, Value};

const ACCOUNT: &str = "ccoazlive";

struct Env {
    azurite: Azurite,
    fake: AzureFake,
    tmp: tempfile::TempDir,
}

fn start() -> Env {
    let azurite = Azurite::start(&[ACCOUNT]).expect("azurite");
    let fake = AzureFake::start(&azurite.endpoint).expect("azure fake");
    let tmp = tempfile::tempdir().expect("tmp");
    Env { azurite, fake, tmp }
}

fn corpus() -> PathBuf {
    cco_testsupport::corpus_dir().join("credreqs/azure")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

impl Env {
    fn ccoctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
        cmd.args(args)
            .env("HOME", self.tmp.path())
            .env_remove("AZURE_ACCESS_TOKEN");
        for (k, v) in self.fake.env() {
            cmd.env(k, v);
        }
        cmd.output().expect("ccoctl runs")
    }

    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    /// A blob read anonymously, as an OIDC client would.
    fn public_blob(&self, container: &str, name: &str) -> Option<Value> {
        let url = format!("{}{container}/{name}", self.azurite.blob_endpoint(ACCOUNT));
        let rt = tokio::runtime::Runtime::new().expect("rt");
        let (status, _, body) = rt
            .block_on(cco_testsupport::fake_http::raw("GET", &url, &[], b""))
            .expect("http");
        (status == 200).then(|| serde_json::from_slice(&body).expect("json"))
    }

    fn create_all(&self, extra: &[&str]) -> Output {
        let out = self.out();
        let corpus = corpus();
        let mut args = vec![
            "azure",
            "create-all",
            "--name",
            "ccoazlive",
            "--region",
            "eastus",
            "--subscription-id",
            SUBSCRIPTION,
            "--tenant-id",
            TENANT,
            "--installation-resource-group-name",
            "cluster-rg",
            "--dnszone-resource-group-name",
            "dns-rg",
            "--user-tags",
            "team=ocp,env=test",
            "--credentials-requests-dir",
            s(&corpus),
            "--output-dir",
            s(&out),
        ];
        args.extend_from_slice(extra);
        self.ccoctl(&args)
    }
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

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
fn dry_run_writes_the_reference_files_and_makes_no_call() {
    let env = start();
    let key = snapshot::fixture_public_key();
    let o = env.create_all(&["--dry-run", "--public-key-file", s(&key)]);
    ok(&o);
    assert!(env.fake.server.requests().is_empty());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("Planned requests (none was sent):"),
        "{stdout}"
    );
    assert!(
        stdout.contains("federatedIdentityCredentials/ingress-operator"),
        "{stdout}"
    );
    let out = env.out();
    // The reference tool's files and nothing else: no key pair either, as --public-key-file is given.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["jwks", "manifests", "openid-configuration"]);
    let disc: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("openid-configuration")).expect("file"),
    )
    .expect("json");
    assert_eq!(
        disc["issuer"],
        "https://ccoazlive.blob.core.windows.net/ccoazlive"
    );
    insta::assert_snapshot!(
        "azure_create_all_dry_run",
        snapshot::render_dir(&out, &[], &|t| t.to_string())
    );

    // Another cloud's storage suffix changes the planned issuer.
    let o = env.ccoctl(&[
        "azure",
        "create-oidc-issuer",
        "--name",
        "cc1",
        "--storage-account-name",
        "gov1",
        "--region",
        "usgovvirginia",
        "--subscription-id",
        SUBSCRIPTION,
        "--tenant-id",
        TENANT,
        "--storage-endpoint-suffix",
        "core.usgovcloudapi.net",
        "--public-key-file",
        s(&key),
        "--output-dir",
        s(&out),
        "--dry-run",
    ]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout)
        .contains("Issuer URL: https://gov1.blob.core.usgovcloudapi.net/cc1"));
    assert!(env.fake.server.requests().is_empty());
}

#[test]
fn create_oidc_issuer_writes_the_pod_identity_webhook_config_with_the_tenant() {
    let env = start();
    let out = env.out();
    ok(&env.ccoctl(&["azure", "create-key-pair", "--output-dir", s(&out)]));
    let args = |dry: bool| {
        let mut a = vec![
            "azure",
            "create-oidc-issuer",
            "--name",
            "ccoazlive",
            "--region",
            "eastus",
            "--subscription-id",
            SUBSCRIPTION,
            "--tenant-id",
            "11111111-2222-3333-4444-555555555555",
            "--output-dir",
            s(&out),
        ];
        if dry {
            a.push("--dry-run");
        }
        env.ccoctl(&a)
    };
    for dry in [true, false] {
        let _ =
            std::fs::remove_file(out.join("manifests/azure-ad-pod-identity-webhook-config.yaml"));
        ok(&args(dry));
        let path = out.join("manifests/azure-ad-pod-identity-webhook-config.yaml");
        assert_eq!(
            std::fs::read_to_string(&path).expect("webhook config"),
            "apiVersion: v1\nstringData:\n  azure_tenant_id: 11111111-2222-3333-4444-555555555555\nkind: Secret\nmetadata:\n  name: azure-credentials\n  namespace: openshift-cloud-credential-operator\ntype: Opaque",
            "dry run: {dry}"
        );
        assert_eq!(snapshot_mode(&path), 0o600);
        // The local copies of the issuer documents, as the reference tool writes them.
        for f in ["openid-configuration", "jwks"] {
            assert_eq!(snapshot_mode(&out.join(f)), 0o644, "{f}");
        }
    }
    let jwks: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("jwks")).expect("jwks"))
            .expect("json");
    assert_eq!(
        Some(jwks),
        env.public_blob("ccoazlive", "openid/v1/jwks"),
        "the local jwks is what was published"
    );
}

fn snapshot_mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

#[test]
fn a_missing_public_key_names_the_azure_command_that_makes_one() {
    let env = start();
    let o = env.ccoctl(&[
        "azure",
        "create-oidc-issuer",
        "--name",
        "ccoazlive",
        "--region",
        "eastus",
        "--subscription-id",
        SUBSCRIPTION,
        "--tenant-id",
        TENANT,
        "--output-dir",
        s(&env.out()),
        "--dry-run",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ccoctl azure create-key-pair"), "{err}");
    assert!(!err.contains("ccoctl aws"), "{err}");
}

#[test]
fn create_all_with_public_key_file_publishes_that_key_and_makes_no_key_pair() {
    let env = start();
    env.fake.insert_resource_group("cluster-rg");
    env.fake.insert_resource_group("dns-rg");
    let key = snapshot::fixture_public_key();
    ok(&env.create_all(&["--public-key-file", s(&key)]));
    assert!(!env.out().join("serviceaccount-signer.private").exists());
    assert!(!env.out().join("tls").exists());
    let pem = std::fs::read_to_string(&key).expect("key");
    let public = cco_core::keys::parse_public_key(&pem, "fixture").expect("key");
    let kid = cco_core::keys::key_id(&public).expect("kid");
    let jwks = env.public_blob(ACCOUNT, "openid/v1/jwks").expect("jwks");
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
}

#[test]
fn create_managed_identities_without_tenant_id_takes_the_tenant_of_the_identity() {
    let env = start();
    let out = env.out();
    // No tenant anywhere but in the identities Azure returns: a bare token, no AZURE_TENANT_ID.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
    for (k, v) in env.fake.env() {
        if k != "AZURE_TENANT_ID" {
            cmd.env(k, v);
        }
    }
    let o = cmd
        .env_remove("AZURE_TENANT_ID")
        .env("AZURE_ACCESS_TOKEN", cco_testsupport::azure_fake::TOKEN)
        .args([
            "azure",
            "create-managed-identities",
            "--name",
            "ccoazlive",
            "--region",
            "eastus",
            "--subscription-id",
            SUBSCRIPTION,
            "--issuer-url",
            "https://ccoazlive.blob.core.windows.net/ccoazlive",
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out),
        ])
        .output()
        .expect("runs");
    ok(&o);
    let secret = std::fs::read_to_string(
        out.join("manifests/openshift-machine-api-azure-cloud-credentials-credentials.yaml"),
    )
    .expect("secret");
    let v: serde_yaml::Value = serde_yaml::from_str(&secret).expect("yaml");
    assert_eq!(v["stringData"]["azure_tenant_id"].as_str(), Some(TENANT));
    let st = env.fake.state.lock().expect("state");
    let identity = st
        .identities
        .values()
        .find(|i| i["name"] == "ccoazlive-openshift-machine-api-azure-cloud-credentials")
        .expect("identity");
    assert_eq!(identity["properties"]["tenantId"], TENANT);
    assert_eq!(
        v["stringData"]["azure_client_id"].as_str(),
        identity["properties"]["clientId"].as_str()
    );
}

#[test]
fn live_secret_manifests_keep_the_reference_format() {
    let env = start();
    env.fake.insert_resource_group("cluster-rg");
    env.fake.insert_resource_group("dns-rg");
    ok(&env.create_all(&["--public-key-file", s(&snapshot::fixture_public_key())]));
    let manifests = env.out().join("manifests");
    // Client ids are drawn by Azure; everything else is fixed.
    let redact = |t: &str| {
        let t = t.replace(env.fake.endpoint(), "<ARM>");
        let t = t.replace(&env.azurite.endpoint, "<AZURITE>");
        snapshot::redact_after(&t, "azure_client_id: ", 36, &|c| {
            c.is_ascii_hexdigit() || c == '-'
        })
    };
    insta::assert_snapshot!(
        "azure_create_all_manifests",
        snapshot::render_dir(&manifests, &[], &redact)
    );
}

#[test]
fn roles_assignments_and_credentials_made_by_the_reference_tool_are_reused_not_duplicated() {
    let env = start();
    env.fake.insert_resource_group("cluster-rg");
    env.fake.insert_resource_group("dns-rg");
    ok(&env.create_all(&[]));
    let counts = env.fake.counts();
    // Make the machine-api identity look as the reference tool leaves it: a custom role under a
    // random GUID with the reference marker, its assignment under a random name, a federated
    // credential named after the service account.
    let identity = "ccoazlive-openshift-machine-api-azure-cloud-credentials";
    {
        let mut st = env.fake.state.lock().expect("state");
        let (guid, mut role) = st
            .role_definitions
            .iter()
            .find(|(_, d)| d["properties"]["roleName"] == identity)
            .map(|(g, d)| (g.clone(), d.clone()))
            .expect("custom role");
        st.role_definitions.remove(&guid);
        let assignment = st
            .role_assignments
            .iter()
            .find(|(_, a)| {
                a["properties"]["roleDefinitionId"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(&guid))
            })
            .map(|(k, _)| k.clone())
            .expect("assignment");
        let mut a = st.role_assignments.remove(&assignment).expect("assignment");
        let ref_guid = "7e57a11e-0000-4000-8000-00000000beef";
        let ref_id = format!("/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{ref_guid}");
        role["id"] = json!(ref_id);
        role["name"] = json!(ref_guid);
        role["properties"]["description"] = json!("Custom role for OpenShift. Owned by: ccoazlive");
        role["properties"]["assignableScopes"] = json!([format!("/subscriptions/{SUBSCRIPTION}")]);
        st.role_definitions.insert(ref_guid.into(), role);
        let scope = a["properties"]["scope"]
            .as_str()
            .expect("scope")
            .to_string();
        a["name"] = json!("0a0a0a0a-1111-4222-8333-444444444444");
        a["id"] = json!(format!("{scope}/providers/Microsoft.Authorization/roleAssignments/0a0a0a0a-1111-4222-8333-444444444444"));
        a["properties"]["roleDefinitionId"] = json!(ref_id);
        st.role_assignments
            .insert("0a0a0a0a-1111-4222-8333-444444444444".into(), a);
    }
    let o = env.create_all(&[]);
    ok(&o);
    assert_eq!(env.fake.counts(), counts, "nothing duplicated");
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("Removed stale role assignment"),
        "the reference-made assignment is kept"
    );
    {
        let st = env.fake.state.lock().expect("state");
        assert!(st
            .role_assignments
            .contains_key("0a0a0a0a-1111-4222-8333-444444444444"));
        assert!(st
            .role_definitions
            .contains_key("7e57a11e-0000-4000-8000-00000000beef"));
        // Federated credentials are named after the service account, as the reference names them.
        assert!(st
            .federated_credentials
            .keys()
            .any(|(_, i, f)| i == identity && f == "machine-api-controllers"));
        for d in st.role_definitions.values() {
            if d["properties"]["type"] == "CustomRole" {
                assert_eq!(
                    d["properties"]["description"],
                    "Custom role for OpenShift. Owned by: ccoazlive"
                );
            }
        }
    }
    ok(&env.ccoctl(&[
        "azure",
        "delete",
        "--name",
        "ccoazlive",
        "--region",
        "eastus",
        "--subscription-id",
        SUBSCRIPTION,
    ]));
    assert_eq!(env.fake.counts()["custom_roles"], 0);
}

#[test]
fn network_and_dns_scopes_follow_the_reference_request_names() {
    let env = start();
    let o = env.create_all(&[
        "--dry-run",
        "--network-resource-group-name",
        "net-rg",
        "--public-key-file",
        s(&snapshot::fixture_public_key()),
    ]);
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let on_net = |identity: &str| {
        stdout.lines().any(|l| {
            l.contains("/resourceGroups/net-rg/providers/Microsoft.Authorization/roleAssignments/")
                && l.contains(&format!("to ccoazlive-{identity})"))
        })
    };
    for yes in [
        "openshift-image-registry-installer-cloud-credentials",
        "openshift-ingress-operator-cloud-credentials",
        "openshift-machine-api-azure-cloud-credentials",
        "openshift-cluster-csi-drivers-azure-file-credentials",
        "openshift-cloud-network-config-controller-cloud-credentials",
        "openshift-cloud-controller-manager-azure-cloud-credentials",
    ] {
        assert!(on_net(yes), "{yes} gets the network group\n{stdout}");
    }
    for no in [
        "openshift-cluster-api-capz-manager-bootstrap-credentials",
        "openshift-cluster-csi-drivers-azure-disk-credentials",
    ] {
        assert!(!on_net(no), "{no} does not get the network group");
    }
}

#[test]
fn names_azure_accepts_are_accepted_and_others_refused_with_the_rule() {
    let env = start();
    let key = snapshot::fixture_public_key();
    let out = env.out();
    let run = |cmd: &str, name: &str, extra: &[&str]| {
        let mut a = vec![
            "azure",
            cmd,
            "--name",
            name,
            "--region",
            "eastus",
            "--subscription-id",
            SUBSCRIPTION,
            "--output-dir",
            s(&out),
            "--dry-run",
        ];
        a.extend_from_slice(extra);
        env.ccoctl(&a)
    };
    let issuer_flags = [
        "--tenant-id",
        TENANT,
        "--storage-account-name",
        "acct1",
        "--blob-container-name",
        "issuer",
        "--public-key-file",
        s(&key),
    ];
    // Upper case and periods are fine in resource group names and tags.
    ok(&run("create-oidc-issuer", "My.Cluster", &issuer_flags));
    let corpus = corpus();
    let id_flags = [
        "--issuer-url",
        "https://acct1.blob.core.windows.net/issuer",
        "--credentials-requests-dir",
        s(&corpus),
    ];
    // Longer than 64 characters, upper case and underscores: fine for identities.
    let long = format!("My_{}", "c".repeat(70));
    ok(&run("create-managed-identities", &long, &id_flags));
    // A period cannot start managed identity names.
    let o = run("create-managed-identities", "my.cluster", &id_flags);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--name \"my.cluster\" is not valid"), "{err}");
    assert!(err.contains("managed identity names"), "{err}");
    assert!(env.fake.server.requests().is_empty());
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
        .args([
            "azure",
            "create-all",
            "--name",
            "ccoazlive",
            "--region",
            "eastus",
            "--subscription-id",
            SUBSCRIPTION,
            "--tenant-id",
            TENANT,
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out),
        ])
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
