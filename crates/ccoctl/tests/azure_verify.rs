//! `ccoctl azure verify` and `ccoctl azure plan` against Azurite served over TLS with a throw-away
//! CA (so the issuer is fetched anonymously over HTTPS, as Azure AD fetches it), the Azure Resource
//! Manager fake, and the real kube-apiserver for `--kubeconfig`: a corpus setup verifies clean and
//! reading only; every kind of broken setup is reported with its fix and planned; create-all after
//! plan makes exactly the planned Resource Manager writes and a second plan is empty; the upgrade
//! story.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cco_testsupport::azure_fake::{AzureFake, SUBSCRIPTION, TENANT};
use cco_testsupport::azurite::{Azurite, DEV_KEY};
use cco_testsupport::tls::TestCa;
use serde_json::{json, Value};

const NAME: &str = "azverify";

struct Env {
    azurite: Azurite,
    fake: AzureFake,
    tmp: tempfile::TempDir,
    ca: PathBuf,
}

fn start() -> Env {
    let tls = TestCa::generate().expect("ca");
    let azurite = Azurite::start_tls(&[NAME], &tls).expect("azurite");
    // The Resource Manager fake and its token endpoint over TLS with the same CA (the Azure SDK's
    // credentials need an https authority).
    let fake = AzureFake::start_tls(&azurite.endpoint, &tls).expect("azure fake");
    fake.insert_resource_group("cluster-rg");
    fake.insert_resource_group("dns-rg");
    let tmp = tempfile::tempdir().expect("tmp");
    let ca = tls.write(tmp.path()).expect("ca");
    Env {
        azurite,
        fake,
        tmp,
        ca,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn corpus() -> PathBuf {
    cco_testsupport::corpus_dir().join("credreqs/azure")
}

const GROUPS: [&str; 4] = [
    "--installation-resource-group-name",
    "cluster-rg",
    "--dnszone-resource-group-name",
    "dns-rg",
];

impl Env {
    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    fn issuer(&self) -> String {
        format!("{}{NAME}", self.azurite.blob_endpoint(NAME))
    }

    fn ccoctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
        cmd.args(args)
            .env("HOME", self.tmp.path())
            .env("NO_COLOR", "1")
            .env_remove("AZURE_ACCESS_TOKEN")
            // Azurite's TLS certificate is signed by the test CA.
            .env("SSL_CERT_FILE", &self.ca);
        for (k, v) in self.fake.env() {
            cmd.env(k, v);
        }
        cmd.output().expect("ccoctl runs")
    }

    /// `create-all` (or `plan`) over `dir` with `extra` flags.
    fn run(&self, cmd: &str, dir: &Path, extra: &[&str]) -> Output {
        let out = self.out();
        let mut args = vec![
            "azure",
            cmd,
            "--name",
            NAME,
            "--region",
            "eastus",
            "--subscription-id",
            SUBSCRIPTION,
            "--tenant-id",
            TENANT,
            "--credentials-requests-dir",
            s(dir),
            "--output-dir",
            s(&out),
        ];
        args.extend_from_slice(&GROUPS);
        args.extend_from_slice(extra);
        self.ccoctl(&args)
    }

    fn verify_in(&self, out: &Path, extra: &[&str]) -> (i32, Value) {
        let dir = corpus();
        let mut args = vec![
            "azure",
            "verify",
            "--name",
            NAME,
            "--region",
            "eastus",
            "--subscription-id",
            SUBSCRIPTION,
            "--credentials-requests-dir",
            s(&dir),
            "--output-dir",
            s(out),
            "--output",
            "json",
        ];
        args.extend_from_slice(&GROUPS);
        args.extend_from_slice(extra);
        report(&self.ccoctl(&args))
    }

    fn verify(&self, extra: &[&str]) -> (i32, Value) {
        self.verify_in(&self.out(), extra)
    }

    fn plan(&self, dir: &Path, extra: &[&str]) -> (i32, Value) {
        let mut args = extra.to_vec();
        args.extend_from_slice(&["--output", "json"]);
        report(&self.run("plan", dir, &args))
    }

    /// The successful Resource Manager writes since call number `from`, by `<action> <kind>`.
    fn writes_since(&self, from: usize) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (r, status) in self.fake.server.calls().into_iter().skip(from) {
            if !(200..300).contains(&status) {
                continue;
            }
            if let Some(kind) = write_kind(&r, status) {
                *out.entry(kind).or_default() += 1;
            }
        }
        out
    }

    fn blob(&self) -> cco_azure::blob::BlobClient {
        let pem = std::fs::read(&self.ca).expect("ca");
        let http = reqwest::Client::builder()
            .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).expect("pem"))
            .build()
            .expect("client");
        cco_azure::blob::BlobClient::new(http, &self.azurite.blob_endpoint(NAME), DEV_KEY)
            .expect("blob client")
    }

    fn identity(&self, name: &str) -> Value {
        let st = self.fake.state.lock().expect("state");
        st.identities
            .values()
            .find(|i| i["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no identity {name}"))
    }
}

fn identity_name(ns: &str, secret: &str) -> String {
    format!("{NAME}-{ns}-{secret}")
}

fn report(o: &Output) -> (i32, Value) {
    let code = o.status.code().expect("exit code");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}), exit {code}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (code, v)
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "ccoctl failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What kind of write a Resource Manager request line is (`None` for reads, tokens, listKeys).
fn write_kind(line: &str, status: u16) -> Option<String> {
    let (method, path) = line.split_once(' ')?;
    let path = path.split('?').next().unwrap_or(path);
    let action = match (method, status) {
        ("PUT", 201 | 202) => "create",
        ("PUT", _) => "update",
        ("DELETE", _) => "delete",
        _ => return None,
    };
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let kind = match segs.as_slice() {
        [.., "resourceGroups", _] => "resource-group",
        [.., "storageAccounts", _] => "storage-account",
        [.., "userAssignedIdentities", _] => "managed-identity",
        [.., "federatedIdentityCredentials", _] => "federated-credential",
        [.., "roleDefinitions", _] => "custom-role",
        [.., "roleAssignments", _] => "role-assignment",
        _ => return Some(format!("other {method} {path}")),
    };
    Some(format!("{action} {kind}"))
}

/// The Resource Manager writes a plan's changes stand for (blob changes go to the storage
/// service, not Resource Manager).
fn planned_writes(plan: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in plan["changes"].as_array().expect("changes") {
        let kind = c["kind"].as_str().expect("kind");
        if kind == "blob" || kind == "blob-container" {
            continue;
        }
        *out.entry(format!("{} {kind}", c["action"].as_str().expect("action")))
            .or_default() += 1;
    }
    out
}

fn checks<'a>(report: &'a Value, status: &str) -> Vec<&'a Value> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == status)
        .collect()
}

fn failed(report: &Value) -> Vec<(String, String)> {
    checks(report, "fail")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().expect("id").to_string(),
                c["subject"].as_str().expect("subject").to_string(),
            )
        })
        .collect()
}

fn failed_ids(report: &Value) -> Vec<String> {
    failed(report).into_iter().map(|(i, _)| i).collect()
}

fn fail_of<'a>(report: &'a Value, id: &str) -> &'a Value {
    checks(report, "fail")
        .into_iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no failed {id}: {report:#}"))
}

fn changes(plan: &Value) -> Vec<String> {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c["action"].as_str().unwrap_or(""),
                c["kind"].as_str().unwrap_or(""),
                c["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Runs create-all after a plan and checks that it made exactly the planned Resource Manager
/// writes and that a second plan is empty.
fn apply_exactly_the_plan(env: &Env, dir: &Path, extra: &[&str], plan: &Value) {
    let before = env.fake.server.calls().len();
    ok(&env.run("create-all", dir, extra));
    assert_eq!(
        env.writes_since(before),
        planned_writes(plan),
        "create-all made other writes than planned: {plan:#}"
    );
    let (code, again) = env.plan(dir, extra);
    assert_eq!((code, changes(&again)), (0, vec![]), "{again:#}");
}

#[test]
fn a_corpus_setup_verifies_clean_reading_only_and_plans_nothing() {
    let env = start();
    // The first plan shows everything create-all makes, and create-all makes exactly that.
    let (code, plan) = env.plan(&corpus(), &[]);
    assert_eq!(code, 2, "{plan:#}");
    let kinds = planned_writes(&plan);
    assert_eq!(kinds["create managed-identity"], 8, "{kinds:?}");
    assert_eq!(kinds["create custom-role"], 8, "{kinds:?}");
    assert_eq!(kinds["create role-assignment"], 9, "{kinds:?}");
    assert_eq!(kinds["create storage-account"], 1, "{kinds:?}");
    assert_eq!(kinds["create federated-credential"], 13, "{kinds:?}");
    let all = changes(&plan);
    assert!(
        all.contains(&format!("create blob-container {NAME}")),
        "{all:?}"
    );
    // Before the storage account exists the issuer is the endpoint Azure gives a new account.
    assert!(
        all.contains(&format!(
            "create blob https://{NAME}.blob.core.windows.net/{NAME}/openid/v1/jwks"
        )),
        "{all:?}"
    );
    assert!(
        all.contains(&format!(
            "create role-assignment {NAME}-openshift-machine-api-azure-cloud-credentials to {NAME}-openshift-machine-api-azure-cloud-credentials at /subscriptions/{SUBSCRIPTION}/resourceGroups/cluster-rg"
        )),
        "{all:?}"
    );
    apply_exactly_the_plan(&env, &corpus(), &[], &plan);

    let before = env.fake.server.calls().len();
    let (code, v) = env.verify(&[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["cloud"], "azure");
    assert!(checks(&v, "fail").is_empty(), "{v:#}");
    let ids: Vec<&str> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    for id in [
        "issuer.https",
        "issuer.discovery",
        "issuer.issuer",
        "issuer.jwks_uri",
        "issuer.jwks",
        "storage.account",
        "storage.container",
        "keys.kid",
        "keys.stale",
        "request.identity",
        "request.trust",
        "request.permissions",
        "request.secret",
        "manifest.authentication",
    ] {
        assert!(ids.contains(&id), "{id} missing: {ids:?}");
    }
    assert_eq!(ids.iter().filter(|i| **i == "request.secret").count(), 8);
    // verify only reads.
    assert_eq!(env.writes_since(before), BTreeMap::new());

    // The text form: one line per check and a summary.
    let o = env.ccoctl(&[
        "azure",
        "verify",
        "--name",
        NAME,
        "--region",
        "eastus",
        "--subscription-id",
        SUBSCRIPTION,
        "--credentials-requests-dir",
        s(&corpus()),
        "--output-dir",
        s(&env.out()),
        GROUPS[0],
        GROUPS[1],
        GROUPS[2],
        GROUPS[3],
    ]);
    let text = ok(&o);
    assert!(text.lines().all(|l| !l.starts_with("FAIL")), "{text}");
    assert!(
        text.contains("PASS  issuer.discovery") && text.contains("azure verify \"azverify\":"),
        "{text}"
    );
}

#[test]
fn every_broken_setup_is_reported_with_its_fix_and_planned() {
    let env = start();
    ok(&env.run("create-all", &corpus(), &[]));
    let (code, v) = env.verify(&[]);
    assert_eq!(code, 0, "{v:#}");
    let rt = tokio::runtime::Runtime::new().expect("rt");

    // Broken on purpose, one of each kind:
    // - the machine API's identity is deleted (its role assignment stays, naming a gone principal);
    let machine = identity_name("openshift-machine-api", "azure-cloud-credentials");
    // - the image registry's federated credential trusts an old issuer, its other one another
    //   subject;
    let registry = identity_name("openshift-image-registry", "installer-cloud-credentials");
    // - the ingress operator lost its role assignment on the DNS zone's group, and its custom role
    //   an action;
    let ingress = identity_name("openshift-ingress-operator", "cloud-credentials");
    // - the cloud controller manager's Secret names an identity that is gone;
    // - the container is made private.
    let gone_client = "99999999-9999-4999-8999-999999999999";
    let removed_action = "Microsoft.Network/dnsZones/A/write";
    {
        let mut st = env.fake.state.lock().expect("state");
        st.identities.retain(|_, i| i["name"] != machine.as_str());
        st.federated_credentials
            .retain(|(_, i, _), _| *i != machine.to_ascii_lowercase());
        for ((_, i, f), v) in st.federated_credentials.iter_mut() {
            if *i == registry.to_ascii_lowercase() {
                if f == "registry" {
                    v["properties"]["subject"] = json!("system:serviceaccount:old-ns:registry");
                } else {
                    v["properties"]["issuer"] = json!("https://old-issuer.example/azverify");
                }
            }
        }
        let ingress_principal = st
            .identities
            .values()
            .find(|i| i["name"] == ingress.as_str())
            .expect("ingress")["properties"]["principalId"]
            .clone();
        st.role_assignments.retain(|_, a| {
            !(a["properties"]["principalId"] == ingress_principal
                && a["properties"]["scope"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("/resourceGroups/dns-rg")))
        });
        for d in st.role_definitions.values_mut() {
            if d["properties"]["roleName"] == ingress.as_str() {
                let actions = d["properties"]["permissions"][0]["actions"]
                    .as_array_mut()
                    .expect("actions");
                actions.retain(|a| a != removed_action);
            }
        }
    }
    let ccm_secret = env.out().join(
        "manifests/openshift-cloud-controller-manager-azure-cloud-credentials-credentials.yaml",
    );
    let text = std::fs::read_to_string(&ccm_secret).expect("ccm secret");
    let ccm = identity_name(
        "openshift-cloud-controller-manager",
        "azure-cloud-credentials",
    );
    let ccm_client = env.identity(&ccm)["properties"]["clientId"]
        .as_str()
        .expect("client id")
        .to_string();
    std::fs::write(&ccm_secret, text.replace(&ccm_client, gone_client)).expect("write");
    rt.block_on(env.blob().set_public_access(NAME, None))
        .expect("private");

    let (code, v) = env.verify(&[]);
    assert_eq!(code, 1, "{v:#}");
    let machine_subject = format!("{machine} (openshift-machine-api-azure)");
    assert_eq!(
        failed(&v),
        [
            (
                "issuer.discovery".to_string(),
                format!("{}/.well-known/openid-configuration", env.issuer())
            ),
            ("storage.container".to_string(), format!("container {NAME}")),
            (
                "request.secret".to_string(),
                format!(
                    "openshift-cloud-controller-manager/azure-cloud-credentials ({})",
                    ccm_secret.display()
                )
            ),
            ("request.trust".to_string(), registry.clone()),
            ("request.permissions".to_string(), ingress.clone()),
            ("request.identity".to_string(), machine_subject),
            (
                "request.secret".to_string(),
                format!(
                    "openshift-machine-api/azure-cloud-credentials ({})",
                    env.out()
                        .join("manifests/openshift-machine-api-azure-cloud-credentials-credentials.yaml")
                        .display()
                )
            ),
        ],
        "{v:#}"
    );
    let disc = fail_of(&v, "issuer.discovery");
    assert!(
        disc["fix"]
            .as_str()
            .is_some_and(|f| f.starts_with("ccoctl azure create-oidc-issuer --name azverify")),
        "{disc}"
    );
    let trust = fail_of(&v, "request.trust");
    let m = trust["message"].as_str().expect("message");
    assert!(
        m.contains("https://old-issuer.example/azverify")
            && m.contains("system:serviceaccount:old-ns:registry"),
        "{m}"
    );
    assert!(trust["fix"]
        .as_str()
        .is_some_and(|f| f.starts_with("ccoctl azure create-managed-identities")
            && f.contains(&format!("--issuer-url {}", env.issuer()))));
    let perms = fail_of(&v, "request.permissions")["message"]
        .as_str()
        .expect("message");
    assert!(
        perms.contains("role assignments missing:")
            && perms.contains("/resourceGroups/dns-rg")
            && perms.contains(&format!("lacks actions {removed_action}")),
        "{perms}"
    );
    let secrets: Vec<&Value> = checks(&v, "fail")
        .into_iter()
        .filter(|c| c["id"] == "request.secret")
        .collect();
    assert!(secrets[1]["message"]
        .as_str()
        .is_some_and(|m| m.contains("managed identity does not exist")));
    assert!(
        secrets[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains(gone_client) && m.contains(&ccm_client)),
        "{}",
        secrets[0]
    );
    assert!(secrets[0]["fix"]
        .as_str()
        .is_some_and(|f| f.contains("oc apply -f")
            && f.contains(
                "openshift-cloud-controller-manager-azure-cloud-credentials-credentials.yaml"
            )));

    // Every fixable one is planned, and create-all makes exactly those writes.
    let (code, plan) = env.plan(&corpus(), &[]);
    assert_eq!(code, 2, "{plan:#}");
    let all = changes(&plan);
    let mut want = vec![
        format!("update blob-container {NAME}"),
        format!("create managed-identity {machine}"),
        format!("update custom-role {ingress}"),
        format!("update federated-credential {registry}/cluster-image-registry-operator"),
        format!("update federated-credential {registry}/registry"),
        format!("create federated-credential {machine}/machine-api-controllers"),
    ];
    want.sort();
    let mut got: Vec<String> = all
        .iter()
        .filter(|c| !c.contains(" role-assignment "))
        .cloned()
        .collect();
    got.sort();
    assert_eq!(got, want, "{plan:#}");
    let assignments: Vec<&String> = all
        .iter()
        .filter(|c| c.contains(" role-assignment "))
        .collect();
    assert_eq!(assignments.len(), 2, "{all:?}");
    assert!(assignments
        .iter()
        .any(|a| a.contains(&ingress) && a.ends_with("/resourceGroups/dns-rg")));
    assert!(assignments.iter().any(|a| a.contains(&machine)));
    let role = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["kind"] == "custom-role")
        .expect("role change");
    assert_eq!(
        role["diff"][0],
        json!({"op": "add", "field": "permissions", "values": [format!("action {removed_action}")]})
    );
    apply_exactly_the_plan(&env, &corpus(), &[], &plan);
    let public = rt
        .block_on(env.blob().container_public_access(NAME))
        .expect("access");
    assert_eq!(public, Some(Some("container".to_string())));
    let (code, v) = env.verify(&[]);
    assert_eq!(code, 0, "{v:#}");

    // A rotated key that is not published yet: reported, planned, and published by create-all
    // (which keeps the old key beside it).
    let rotated = env.tmp.path().join("rotated");
    ok(&env.ccoctl(&["azure", "create-key-pair", "--output-dir", s(&rotated)]));
    let new_pub = rotated.join("serviceaccount-signer.public");
    let (_, rv) = env.verify(&["--public-key-file", s(&new_pub)]);
    let kid = fail_of(&rv, "keys.kid");
    assert!(
        kid["fix"]
            .as_str()
            .is_some_and(|f| f.contains("create-oidc-issuer")
                && f.ends_with(&format!("--public-key-file {}", new_pub.display()))),
        "{kid}"
    );
    let (code, rplan) = env.plan(&corpus(), &["--public-key-file", s(&new_pub)]);
    assert_eq!(code, 2);
    let jwks_change = rplan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| {
            c["kind"] == "blob"
                && c["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("/openid/v1/jwks"))
        })
        .expect("jwks change");
    assert_eq!(jwks_change["action"], "update");
    assert_eq!(jwks_change["diff"][0]["op"], "add", "{jwks_change}");

    apply_exactly_the_plan(&env, &corpus(), &["--public-key-file", s(&new_pub)], &rplan);
    let (code, v) = env.verify(&["--public-key-file", s(&new_pub)]);
    assert_eq!(code, 0, "{v:#}");
    let stale = checks(&v, "warn");
    assert_eq!(stale.len(), 1, "{v:#}");
    assert_eq!(stale[0]["id"], "keys.stale");
}

#[test]
fn the_upgrade_story_plans_gained_actions_and_notes_the_retired_request() {
    let env = start();
    ok(&env.run("create-all", &corpus(), &[]));
    // The next release: two requests gain actions, one is retired.
    let next = env.tmp.path().join("next");
    std::fs::create_dir(&next).expect("dir");
    for e in std::fs::read_dir(corpus()).expect("corpus") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        if name == "openshift-cluster-api-azure.yaml" {
            continue;
        }
        let mut text = std::fs::read_to_string(&p).expect("read");
        if name == "openshift-ingress-azure.yaml" || name == "openshift-machine-api-azure.yaml" {
            text = text.replacen(
                "    permissions:\n",
                "    permissions:\n    - Microsoft.Compute/newThings/read\n",
                1,
            );
            assert!(text.contains("newThings"), "{name}");
        }
        std::fs::write(next.join(name), text).expect("write");
    }
    let (code, plan) = env.plan(&next, &[]);
    assert_eq!(code, 2, "{plan:#}");
    let ingress = identity_name("openshift-ingress-operator", "cloud-credentials");
    let machine = identity_name("openshift-machine-api", "azure-cloud-credentials");
    let mut want = vec![
        format!("update custom-role {ingress}"),
        format!("update custom-role {machine}"),
    ];
    want.sort();
    assert_eq!(changes(&plan), want, "{plan:#}");
    for c in plan["changes"].as_array().expect("changes") {
        assert_eq!(
            c["diff"],
            json!([{"op": "add", "field": "permissions", "values": ["action Microsoft.Compute/newThings/read"]}])
        );
    }
    let notes = plan["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 1, "{plan:#}");
    assert!(notes[0].as_str().is_some_and(
        |n| n.contains("no request asks for it any more") && n.contains("az identity delete")
    ));
    apply_exactly_the_plan(&env, &next, &[], &plan);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_kubeconfig_the_cluster_keys_secrets_and_authentication_are_checked() {
    use base64::Engine as _;
    use cco_testsupport::kube_env::{apply_objects, parse_manifests, KubeEnv, KubeEnvOptions};

    cco_testsupport::kube_env::install_crypto_provider();
    let env = start();
    ok(&env.run("create-all", &corpus(), &[]));
    let kube = KubeEnv::start(KubeEnvOptions::default())
        .await
        .expect("kube-apiserver");
    kube.install_corpus_crds().await.expect("crds");
    let client = kube.client().await.expect("client");
    let issuer = env.issuer();

    // The cluster: its current signing key is the published one; its Authentication names another
    // issuer; the Secrets are the manifests create-all wrote, except one that names an identity
    // that is gone.
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let current = std::fs::read(env.out().join("serviceaccount-signer.public")).expect("pub");
    let mut namespaces = vec!["openshift-kube-apiserver".to_string()];
    let mut manifests = Vec::new();
    for e in std::fs::read_dir(env.out().join("manifests")).expect("manifests") {
        let p = e.expect("entry").path();
        let text = std::fs::read_to_string(&p).expect("read");
        if p.to_string_lossy().ends_with("-credentials.yaml") {
            let v: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
            namespaces.push(v["metadata"]["namespace"].as_str().expect("ns").to_string());
            manifests.push(text);
        }
    }
    namespaces.sort();
    namespaces.dedup();
    let mut yaml = String::new();
    for ns in &namespaces {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
        ));
    }
    yaml.push_str(&format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: bound-service-account-signing-key\n  namespace: openshift-kube-apiserver\ndata:\n  service-account.pub: {}\n",
        b64(&current)
    ));
    yaml.push_str("---\napiVersion: config.openshift.io/v1\nkind: Authentication\nmetadata:\n  name: cluster\nspec:\n  serviceAccountIssuer: https://kubernetes.default.svc\n");
    apply_objects(&client, parse_manifests(&yaml).expect("parse"))
        .await
        .expect("apply");
    for m in &manifests {
        apply_objects(&client, parse_manifests(m).expect("parse"))
            .await
            .expect("apply secret");
    }
    let gone = "99999999-9999-4999-8999-999999999999";
    let patched = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: azure-cloud-credentials\n  namespace: openshift-cloud-controller-manager\nstringData:\n  azure_client_id: {gone}\n"
    );
    apply_objects(&client, parse_manifests(&patched).expect("parse"))
        .await
        .expect("apply");

    let kubeconfig = kube.kubeconfig_path();
    // The manifests directory is not consulted with --kubeconfig: point --output-dir elsewhere.
    let elsewhere = env.tmp.path().join("empty");
    std::fs::create_dir(&elsewhere).expect("dir");
    let (code, v) = env.verify_in(&elsewhere, &["--kubeconfig", s(&kubeconfig)]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(
        failed_ids(&v),
        ["request.secret", "cluster.authentication"],
        "{v:#}"
    );
    let secret = fail_of(&v, "request.secret");
    assert!(
        secret["message"].as_str().is_some_and(|m| m.contains(gone)),
        "{secret}"
    );
    assert!(secret["subject"]
        .as_str()
        .is_some_and(|s| s.contains("openshift-cloud-controller-manager/azure-cloud-credentials")));
    let fix = fail_of(&v, "cluster.authentication")["fix"]
        .as_str()
        .expect("fix");
    assert!(
        fix.starts_with("oc patch authentication cluster") && fix.contains(&issuer),
        "{fix}"
    );
    let kid = checks(&v, "pass")
        .into_iter()
        .find(|c| c["id"] == "keys.kid")
        .expect("keys.kid passes");
    assert!(kid["message"]
        .as_str()
        .is_some_and(|m| m.contains("bound-service-account-signing-key")));

    // Fixed the way the report says.
    let auth = format!("apiVersion: config.openshift.io/v1\nkind: Authentication\nmetadata:\n  name: cluster\nspec:\n  serviceAccountIssuer: {issuer}\n");
    apply_objects(&client, parse_manifests(&auth).expect("parse"))
        .await
        .expect("apply");
    let original = manifests
        .iter()
        .find(|m| m.contains("namespace: openshift-cloud-controller-manager"))
        .expect("ccm manifest");
    apply_objects(&client, parse_manifests(original).expect("parse"))
        .await
        .expect("apply");
    let (code, v) = env.verify_in(&elsewhere, &["--kubeconfig", s(&kubeconfig)]);
    assert_eq!(code, 0, "{v:#}");
}

#[test]
fn the_printed_fixes_run_through_sh_repair_the_setup() {
    let env = start();
    ok(&env.run("create-all", &corpus(), &[]));
    // A private container and a stale federated subject.
    let registry = identity_name("openshift-image-registry", "installer-cloud-credentials");
    {
        let mut st = env.fake.state.lock().expect("state");
        for ((_, i, f), v) in st.federated_credentials.iter_mut() {
            if *i == registry.to_ascii_lowercase() && f == "registry" {
                v["properties"]["subject"] = json!("system:serviceaccount:old-ns:registry");
            }
        }
    }
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(env.blob().set_public_access(NAME, None))
        .expect("private");
    let (code, v) = env.verify(&[]);
    assert_eq!(code, 1, "{v:#}");
    let mut fixes: Vec<String> = checks(&v, "fail")
        .iter()
        .filter_map(|c| c["fix"].as_str().map(str::to_owned))
        .collect();
    fixes.dedup();
    assert_eq!(fixes.len(), 2, "{fixes:#?}");
    let bin = Path::new(env!("CARGO_BIN_EXE_ccoctl"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for fix in &fixes {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(fix)
            .env("PATH", &path)
            .env("HOME", env.tmp.path())
            .env_remove("AZURE_ACCESS_TOKEN")
            .env("SSL_CERT_FILE", &env.ca);
        for (k, val) in env.fake.env() {
            cmd.env(k, val);
        }
        let o = cmd.output().expect("sh");
        ok(&o);
    }
    let (code, v) = env.verify(&[]);
    assert_eq!(code, 0, "{v:#}");
}
