//! `ccoctl gcp verify` and `ccoctl gcp plan` against fake-gcs-server and the GCP fake, served over
//! TLS with a throw-away CA (so the issuer is fetched anonymously over HTTPS, as Google's token
//! service does), and the real kube-apiserver for `--kubeconfig`: a corpus setup verifies clean
//! and reading only; every kind of broken setup is reported with its fix and planned; create-all
//! after plan makes exactly the planned writes and a second plan is empty; the upgrade story.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cco_testsupport::fake_gcs::FakeGcs;
use cco_testsupport::gcp_fake::{GcpFake, PROJECT_ID, PROJECT_NUMBER};
use cco_testsupport::tls::TestCa;
use serde_json::{json, Value};

const NAME: &str = "gcpverify";

struct Env {
    _gcs: FakeGcs,
    fake: GcpFake,
    tmp: tempfile::TempDir,
    ca: PathBuf,
}

fn start() -> Env {
    let gcs = FakeGcs::start().expect("fake-gcs-server");
    let tls = TestCa::generate().expect("ca");
    let fake = GcpFake::start_tls(&gcs.endpoint, &tls).expect("gcp fake");
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("key.json"), fake.service_account_key_json()).expect("key");
    let ca = tls.write(tmp.path()).expect("ca");
    Env {
        _gcs: gcs,
        fake,
        tmp,
        ca,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn corpus() -> PathBuf {
    cco_testsupport::corpus_dir().join("credreqs/gcp")
}

impl Env {
    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    fn ccoctl(&self, args: &[&str]) -> Output {
        let t0 = std::time::Instant::now();
        let o = self.ccoctl_(args);
        eprintln!("TIMING {:?} {:?}", &args[..2], t0.elapsed());
        if args[1] == "create-all" {
            eprintln!("{}", String::from_utf8_lossy(&o.stderr));
        }
        o
    }
    fn ccoctl_(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ccoctl"))
            .args(args)
            .env("HOME", self.tmp.path())
            .env("NO_COLOR", "1")
            .env_remove("GOOGLE_OAUTH_ACCESS_TOKEN")
            .env_remove("GOOGLE_CREDENTIALS")
            .env(
                "GOOGLE_APPLICATION_CREDENTIALS",
                self.tmp.path().join("key.json"),
            )
            .env("GCP_IAM_ENDPOINT", self.fake.endpoint())
            .env("GCP_RESOURCEMANAGER_ENDPOINT", self.fake.endpoint())
            .env("STORAGE_EMULATOR_HOST", self.fake.endpoint())
            // The fake's TLS certificate is signed by the test CA.
            .env("SSL_CERT_FILE", &self.ca)
            .output()
            .expect("ccoctl runs")
    }

    /// `create-all` (or `plan`) over `dir` with `extra` flags.
    fn run(&self, cmd: &str, dir: &Path, extra: &[&str]) -> Output {
        let out = self.out();
        let mut args = vec![
            "gcp",
            cmd,
            "--name",
            NAME,
            "--project",
            PROJECT_ID,
            "--credentials-requests-dir",
            s(dir),
            "--output-dir",
            s(&out),
        ];
        args.extend_from_slice(extra);
        self.ccoctl(&args)
    }

    fn verify(&self, extra: &[&str]) -> (i32, Value) {
        let out = self.out();
        let dir = corpus();
        let mut args = vec![
            "gcp",
            "verify",
            "--name",
            NAME,
            "--project",
            PROJECT_ID,
            "--credentials-requests-dir",
            s(&dir),
            "--output-dir",
            s(&out),
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        let o = self.ccoctl(&args);
        report(&o)
    }

    fn plan(&self, dir: &Path, extra: &[&str]) -> (i32, Value) {
        let mut args = extra.to_vec();
        args.extend_from_slice(&["--output", "json"]);
        report(&self.run("plan", dir, &args))
    }

    fn account(&self, request: &str) -> Value {
        let display = format!("{NAME}-{request}");
        self.fake
            .service_accounts()
            .into_iter()
            .find(|a| a["displayName"] == display.as_str())
            .unwrap_or_else(|| panic!("no account {display}"))
    }

    fn email(&self, request: &str) -> String {
        self.account(request)["email"]
            .as_str()
            .expect("email")
            .to_string()
    }

    /// The successful writes since call number `from`, by kind.
    fn writes_since(&self, from: usize) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (r, status) in self.fake.server.calls().into_iter().skip(from) {
            if !(200..300).contains(&status) {
                continue;
            }
            if let Some(kind) = write_kind(&r) {
                *out.entry(kind).or_default() += 1;
            }
        }
        out
    }
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

/// What kind of write a request line is (`None` for reads: GETs, `getIamPolicy`, tokens).
fn write_kind(line: &str) -> Option<String> {
    let (method, path) = line.split_once(' ')?;
    let path = path.split('?').next().unwrap_or(path);
    let kind = match method {
        "GET" | "HEAD" => return None,
        "POST" if path.ends_with(":getIamPolicy") || path == "/token" => return None,
        "POST" if path.ends_with(":testIamPermissions") => return None,
        "POST" if path.ends_with("/workloadIdentityPools") => "create workload-identity-pool",
        "POST" if path.ends_with("/providers") => "create workload-identity-provider",
        "PATCH" if path.contains("/providers/") => "update workload-identity-provider",
        "POST" if path == "/storage/v1/b" => "create gcs-bucket",
        "PUT" if path.ends_with("/iam") => "update gcs-bucket-iam",
        "POST" if path.starts_with("/upload/") => "put gcs-object",
        "POST" if path.ends_with("/roles") => "create custom-role",
        "PATCH" if path.contains("/roles/") => "update custom-role",
        "POST" if path.ends_with("/serviceAccounts") => "create service-account",
        "DELETE" if path.contains("/serviceAccounts/") => "delete service-account",
        "POST" if path.contains("/serviceAccounts/") && path.ends_with(":setIamPolicy") => {
            "set workload-identity-binding"
        }
        "POST" if path.ends_with(":setIamPolicy") => "set project policy",
        _ => return Some(format!("other {method} {path}")),
    };
    Some(kind.to_string())
}

/// The writes a plan's changes stand for, by kind (all project role changes are one write).
fn planned_writes(plan: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let mut project = false;
    for c in plan["changes"].as_array().expect("changes") {
        let action = c["action"].as_str().expect("action");
        let kind = match (action, c["kind"].as_str().expect("kind")) {
            (_, "role-binding") => {
                project = true;
                continue;
            }
            (_, "gcs-object") => "put gcs-object".to_string(),
            (_, "workload-identity-binding") => "set workload-identity-binding".to_string(),
            (a, k) => format!("{a} {k}"),
        };
        *out.entry(kind).or_default() += 1;
    }
    if project {
        out.insert("set project policy".into(), 1);
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

fn failed_ids(report: &Value) -> Vec<String> {
    checks(report, "fail")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect()
}

fn fix_of<'a>(report: &'a Value, id: &str) -> &'a str {
    checks(report, "fail")
        .into_iter()
        .find(|c| c["id"] == id)
        .and_then(|c| c["fix"].as_str())
        .unwrap_or_else(|| panic!("no fix for {id}: {report:#}"))
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

/// Runs create-all after a plan and checks that it made exactly the planned writes and that a
/// second plan is empty.
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
    assert_eq!(kinds["create service-account"], 8, "{kinds:?}");
    assert_eq!(kinds["create workload-identity-pool"], 1);
    assert_eq!(kinds["create gcs-bucket"], 1);
    assert_eq!(kinds["put gcs-object"], 2);
    assert_eq!(kinds["set workload-identity-binding"], 8);
    apply_exactly_the_plan(&env, &corpus(), &[], &plan);

    let before = env.fake.server.calls().len();
    let (code, v) = env.verify(&[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["ok"], true);
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
        "keys.kid",
        "keys.stale",
        "provider.pool",
        "provider.issuer",
        "provider.audiences",
        "request.identity",
        "request.trust",
        "request.permissions",
        "request.secret",
        "manifest.authentication",
    ] {
        assert!(ids.contains(&id), "{id} missing: {ids:?}");
    }
    assert_eq!(ids.iter().filter(|i| **i == "request.secret").count(), 8);
    // verify only read.
    assert_eq!(env.writes_since(before), BTreeMap::new());

    // Text output: one line per check, exit 0.
    let text = ok(&env.ccoctl(&[
        "gcp",
        "verify",
        "--name",
        NAME,
        "--project",
        PROJECT_ID,
        "--credentials-requests-dir",
        s(&corpus()),
        "--output-dir",
        s(&env.out()),
    ]));
    assert!(text.contains("PASS  issuer.discovery"), "{text}");
    assert!(text.contains("0 failed"), "{text}");
}

#[test]
fn each_broken_setup_is_reported_with_its_fix_and_planned() {
    let env = start();
    ok(&env.run("create-all", &corpus(), &[]));
    let bucket = format!("{NAME}-oidc");

    // A key rotated in the cluster but not published yet.
    let rotated = env.tmp.path().join("rotated");
    ok(&env.ccoctl(&["gcp", "create-key-pair", "--output-dir", s(&rotated)]));
    let new_pub = rotated.join("serviceaccount-signer.public");
    let (code, v) = env.verify(&["--public-key-file", s(&new_pub)]);
    assert_eq!(
        (code, failed_ids(&v)),
        (1, vec!["keys.kid".to_string()]),
        "{v:#}"
    );
    let fix = fix_of(&v, "keys.kid");
    assert!(
        fix.contains("create-workload-identity-provider") && fix.contains(s(&new_pub)),
        "{fix}"
    );

    // A deleted service account (its Secret now points at an identity that is gone), a stale
    // trust binding, a missing permission, a private bucket.
    let ccm = env.email("openshift-gcp-ccm");
    env.fake.remove_service_account(&ccm);
    let ingress = env.email("openshift-ingress-gcp");
    let stale = format!("principal://iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{NAME}/subject/system:serviceaccount:openshift-ingress-operator:retired-sa");
    env.fake.edit_service_account_policy(&ingress, |p| {
        p["bindings"][0]["members"]
            .as_array_mut()
            .expect("members")
            .push(json!(stale))
    });
    let role = cco_core::gcp::role_id(PROJECT_ID, "cloud-credential-operator-gcp-ro-creds")
        .expect("role id");
    env.fake.edit_role(&role, |r| {
        r["includedPermissions"]
            .as_array_mut()
            .expect("perms")
            .retain(|p| p != "iam.roles.get")
    });
    env.fake.edit_bucket_policy(&bucket, |p| {
        for b in p["bindings"].as_array_mut().expect("bindings") {
            if let Some(m) = b["members"].as_array_mut() {
                m.retain(|x| x != "allUsers");
            }
        }
    });
    let (code, v) = env.verify(&[]);
    assert_eq!(code, 1);
    let failed = failed_ids(&v);
    for id in [
        "issuer.discovery",
        "request.identity",
        "request.secret",
        "request.trust",
        "request.permissions",
    ] {
        assert!(failed.contains(&id.to_string()), "{id} not failed: {v:#}");
    }
    let discovery = checks(&v, "fail")
        .into_iter()
        .find(|c| c["id"] == "issuer.discovery")
        .expect("discovery");
    assert!(
        discovery["message"]
            .as_str()
            .is_some_and(|m| m.contains("403")),
        "{discovery}"
    );
    for c in checks(&v, "fail") {
        assert!(
            c["fix"]
                .as_str()
                .is_some_and(|f| f.starts_with("ccoctl gcp ")),
            "{c}"
        );
    }
    let text = serde_json::to_string(&v).expect("json");
    assert!(
        text.contains("retired-sa") && text.contains("iam.roles.get"),
        "{v:#}"
    );

    // plan shows each fixable one; create-all does exactly that; everything verifies again.
    let (code, plan) = env.plan(&corpus(), &[]);
    assert_eq!(code, 2);
    let c = changes(&plan);
    assert!(
        c.iter()
            .any(|x| x == &format!("update gcs-bucket-iam {bucket}")),
        "{c:?}"
    );
    assert!(
        c.iter()
            .any(|x| x == &format!("create service-account {NAME}-openshift-gcp-ccm")),
        "{c:?}"
    );
    assert!(
        c.iter()
            .any(|x| x.starts_with("update custom-role") && x.ends_with(&role)),
        "{c:?}"
    );
    assert!(
        c.iter()
            .any(|x| x.starts_with("update workload-identity-binding") && x.contains(&ingress)),
        "{c:?}"
    );
    let trust = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| {
            c["kind"] == "workload-identity-binding"
                && c["name"].as_str().is_some_and(|n| n.contains(&ingress))
        })
        .expect("trust change");
    assert_eq!(
        trust["diff"][0],
        json!({"op": "remove", "field": "subjects", "values": ["system:serviceaccount:openshift-ingress-operator:retired-sa"]})
    );
    apply_exactly_the_plan(&env, &corpus(), &[], &plan);
    let (code, v) = env.verify(&[]);
    assert_eq!(code, 0, "{v:#}");

    // Publishing the rotated key fixes the key check; the old key is then reported as stale.
    let (code, plan) = env.plan(&corpus(), &["--public-key-file", s(&new_pub)]);
    assert_eq!(code, 2);
    assert_eq!(
        changes(&plan),
        [format!("update gcs-object gs://{bucket}/keys.json")]
    );
    apply_exactly_the_plan(&env, &corpus(), &["--public-key-file", s(&new_pub)], &plan);
    let (code, v) = env.verify(&["--public-key-file", s(&new_pub)]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(
        checks(&v, "warn")
            .iter()
            .filter(|c| c["id"] == "keys.stale")
            .count(),
        1,
        "{v:#}"
    );
}

#[test]
fn the_upgrade_story_plans_gained_permissions_and_the_retired_request() {
    let env = start();
    ok(&env.run("create-all", &corpus(), &[]));
    // The next release: two requests gain permissions, one is retired.
    let next = env.tmp.path().join("next");
    std::fs::create_dir(&next).expect("dir");
    for e in std::fs::read_dir(corpus()).expect("corpus") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().to_string();
        if name == "openshift-gcp-pd-csi-driver-operator.yaml" {
            continue;
        }
        let mut text = std::fs::read_to_string(&p).expect("read");
        if name == "openshift-gcp-ccm.yaml" || name == "openshift-ingress-gcp.yaml" {
            text = text.replacen(
                "    permissions:\n",
                "    permissions:\n    - compute.upgrade.newPermission\n",
                1,
            );
            assert!(
                text.contains("compute.upgrade.newPermission"),
                "{name} has no permissions list"
            );
        }
        std::fs::write(next.join(&name), text).expect("write");
    }
    let retired = env.email("openshift-gcp-pd-csi-driver-operator");

    // Without --delete-retired the retired account is a note, not a change.
    let (code, plan) = env.plan(&next, &[]);
    assert_eq!(code, 2);
    let c = changes(&plan);
    assert_eq!(c.len(), 2, "{plan:#}");
    for r in ["openshift-gcp-ccm", "openshift-ingress-gcp"] {
        let r = cco_core::gcp::role_id(PROJECT_ID, r).expect("role id");
        let change = plan["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .find(|c| {
                c["kind"] == "custom-role" && c["name"].as_str().is_some_and(|n| n.ends_with(&r))
            })
            .unwrap_or_else(|| panic!("{r}: {plan:#}"));
        assert_eq!(change["action"], "update");
        assert_eq!(
            change["diff"],
            json!([{"op": "add", "field": "permissions", "values": ["compute.upgrade.newPermission"]}])
        );
    }
    let notes = plan["notes"].to_string();
    assert!(
        notes.contains(&retired) && notes.contains("--delete-retired"),
        "{notes}"
    );

    // With it, the retired account and its project roles go too; create-all does exactly that.
    let (code, plan) = env.plan(&next, &["--delete-retired"]);
    assert_eq!(code, 2);
    let c = changes(&plan);
    assert!(
        c.contains(&format!("delete service-account {retired}")),
        "{c:?}"
    );
    assert!(
        c.iter()
            .any(|x| x.starts_with("delete role-binding") && x.contains(&retired)),
        "{c:?}"
    );
    assert_eq!(c.len(), 4, "{c:?}");
    apply_exactly_the_plan(&env, &next, &["--delete-retired"], &plan);
    assert!(env
        .fake
        .service_accounts()
        .iter()
        .all(|a| a["email"] != retired.as_str()));
    let text = env.fake.project_policy().to_string();
    assert!(!text.contains(&retired), "{text}");
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
    let issuer = format!("https://storage.googleapis.com/{NAME}-oidc");

    // The cluster: its current signing key is the published one, its next one is not published
    // yet; its Authentication names another issuer; the Secrets are the manifests create-all
    // wrote, except one that impersonates a service account that is gone.
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let current = std::fs::read(env.out().join("serviceaccount-signer.public")).expect("pub");
    let next_dir = env.tmp.path().join("next-key");
    ok(&env.ccoctl(&["gcp", "create-key-pair", "--output-dir", s(&next_dir)]));
    let next = std::fs::read(next_dir.join("serviceaccount-signer.public")).expect("pub");
    let mut yaml = String::new();
    let mut namespaces = vec![
        "openshift-kube-apiserver".to_string(),
        "openshift-kube-apiserver-operator".to_string(),
    ];
    let mut manifests = Vec::new();
    for e in std::fs::read_dir(env.out().join("manifests")).expect("manifests") {
        let p = e.expect("entry").path();
        let text = std::fs::read_to_string(&p).expect("read");
        if text.contains("kind: Secret") {
            let v: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
            namespaces.push(v["metadata"]["namespace"].as_str().expect("ns").to_string());
            manifests.push(text);
        }
    }
    namespaces.sort();
    namespaces.dedup();
    for ns in &namespaces {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
        ));
    }
    yaml.push_str(&format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: bound-service-account-signing-key\n  namespace: openshift-kube-apiserver\ndata:\n  service-account.pub: {}\n",
        b64(&current)
    ));
    yaml.push_str(&format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: next-bound-service-account-signing-key\n  namespace: openshift-kube-apiserver-operator\ndata:\n  service-account.pub: {}\n",
        b64(&next)
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
    let ccm = env.email("openshift-gcp-ccm");
    let gone = "gone-sa-12345@fake-project.iam.gserviceaccount.com";
    let config = cco_core::gcp::credentials_config(
        PROJECT_NUMBER,
        NAME,
        NAME,
        gone,
        "/var/run/secrets/openshift/serviceaccount/token",
    );
    let patched = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: gcp-ccm-cloud-credentials\n  namespace: openshift-cloud-controller-manager\ndata:\n  service_account.json: {}\n",
        b64(config.as_bytes())
    );
    apply_objects(&client, parse_manifests(&patched).expect("parse"))
        .await
        .expect("apply");

    let kubeconfig = kube.kubeconfig_path();
    // The manifests directory is not consulted with --kubeconfig: point --output-dir elsewhere.
    let elsewhere = env.tmp.path().join("empty");
    std::fs::create_dir(&elsewhere).expect("dir");
    let dir = corpus();
    let run = |env: &Env| {
        report(&env.ccoctl(&[
            "gcp",
            "verify",
            "--name",
            NAME,
            "--project",
            PROJECT_ID,
            "--credentials-requests-dir",
            s(&dir),
            "--output-dir",
            s(&elsewhere),
            "--kubeconfig",
            s(&kubeconfig),
            "--output",
            "json",
        ]))
    };
    let (code, v) = run(&env);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(
        failed_ids(&v),
        ["request.secret", "cluster.authentication"],
        "{v:#}"
    );
    let secret = checks(&v, "fail")
        .into_iter()
        .find(|c| c["id"] == "request.secret")
        .expect("secret check");
    assert!(
        secret["message"]
            .as_str()
            .is_some_and(|m| m.contains(gone) && m.contains(&ccm)),
        "{secret}"
    );
    assert!(secret["subject"].as_str().is_some_and(
        |s| s.contains("openshift-cloud-controller-manager/gcp-ccm-cloud-credentials")
    ));
    let fix = fix_of(&v, "cluster.authentication");
    assert!(
        fix.starts_with("oc patch authentication cluster") && fix.contains(&issuer),
        "{fix}"
    );
    let kid = |pem: &[u8]| {
        let k = cco_core::keys::parse_public_key(&String::from_utf8_lossy(pem), "k").expect("key");
        cco_core::keys::key_id(&k).expect("kid")
    };
    let keys: Vec<(&str, &str)> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["id"].as_str().is_some_and(|i| i.starts_with("keys.")))
        .map(|c| {
            (
                c["id"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("keys.kid", "pass"),
            ("keys.next", "warn"),
            ("keys.stale", "pass")
        ],
        "{v:#}"
    );
    let next_check = checks(&v, "warn")
        .into_iter()
        .find(|c| c["id"] == "keys.next")
        .expect("next");
    assert!(next_check["message"]
        .as_str()
        .is_some_and(|m| m.contains(&kid(&next))));
    assert!(next_check["fix"]
        .as_str()
        .is_some_and(|f| f.contains("next-bound-service-account-signing-key")
            && f.contains("--public-key-file")));
    assert!(!kid(&current).is_empty());

    // Fixed the way the report says (the Authentication through the API, as `oc patch` would).
    let auth = format!("apiVersion: config.openshift.io/v1\nkind: Authentication\nmetadata:\n  name: cluster\nspec:\n  serviceAccountIssuer: {issuer}\n");
    apply_objects(&client, parse_manifests(&auth).expect("parse"))
        .await
        .expect("apply");
    let original = manifests
        .iter()
        .find(|m| m.contains("gcp-ccm-cloud-credentials"))
        .expect("ccm manifest");
    apply_objects(&client, parse_manifests(original).expect("parse"))
        .await
        .expect("apply");
    let (code, v) = run(&env);
    assert_eq!(code, 0, "{v:#}");
}

#[test]
fn with_pool_jwk_file_the_keys_embedded_in_the_provider_are_checked() {
    let env = start();
    let jwk = ["--key-storage-method", "pool-jwk-file"];
    ok(&env.run("create-all", &corpus(), &jwk));
    let (code, v) = env.verify(&jwk);
    assert_eq!(code, 0, "{v:#}");
    let ids: Vec<&str> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"provider.jwks") && ids.contains(&"keys.kid"),
        "{ids:?}"
    );
    assert!(!ids.iter().any(|i| i.starts_with("issuer.")), "{ids:?}");

    // A rotated key is not in the provider until create-all publishes it there.
    let rotated = env.tmp.path().join("rotated");
    ok(&env.ccoctl(&["gcp", "create-key-pair", "--output-dir", s(&rotated)]));
    let new_pub = rotated.join("serviceaccount-signer.public");
    let mut flags = jwk.to_vec();
    flags.extend_from_slice(&["--public-key-file", s(&new_pub)]);
    let (code, v) = env.verify(&flags);
    assert_eq!(
        (code, failed_ids(&v)),
        (1, vec!["keys.kid".to_string()]),
        "{v:#}"
    );
    assert!(fix_of(&v, "keys.kid").contains("--key-storage-method pool-jwk-file"));
    let (code, plan) = env.plan(&corpus(), &flags);
    assert_eq!(code, 2);
    assert_eq!(
        changes(&plan),
        [format!("update workload-identity-provider projects/{PROJECT_ID}/locations/global/workloadIdentityPools/{NAME}/providers/{NAME}")]
    );
    apply_exactly_the_plan(&env, &corpus(), &flags, &plan);
    let (code, v) = env.verify(&flags);
    assert_eq!(code, 0, "{v:#}");
}
