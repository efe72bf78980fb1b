//! `ccoctl azure` side by side with the reference tool, against Azurite and the Azure Resource
//! Manager fake: the files it writes (snapshots of every dry-run file and Secret, byte for byte), the
//! `azure-credentials` webhook configuration, the tenant taken from the identity, `--public-key-file`,
//! objects the reference tool made reused rather than duplicated, its scoping rules and Azure's
//! naming rules.

use crate::azure_env;
use crate::snapshot;

use std::path::Path;
use std::process::Command;

use azure_env::*;
use cco_testsupport::azure_fake::{SUBSCRIPTION, TENANT};
use serde_json::{json, Value};

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
    let o = env.ccoctl(&azure_cmd(
        "ccoazlive",
        "create-oidc-issuer",
        &["--output-dir", s(&env.out()), "--dry-run"],
    ));
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
