//! `ccoctl gcp` against fake-gcs-server (storage) and the stateful GCP fake (IAM, workload identity
//! pools, Resource Manager, bucket IAM): every corpus request through create-all, re-run, delete and
//! re-create; both key-storage methods; delete leaving what it did not make; dry runs making no call;
//! bad inputs. Results are read back from the fakes' state, not through the code under test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod snapshot;

use base64::Engine;
use cco_testsupport::fake_gcs::FakeGcs;
use cco_testsupport::gcp_fake::{GcpFake, PROJECT_ID, PROJECT_NUMBER};
use serde_json::Value;

struct Env {
    gcs: FakeGcs,
    fake: GcpFake,
    tmp: tempfile::TempDir,
}

fn start() -> Env {
    let gcs = FakeGcs::start().expect("fake-gcs-server");
    let fake = GcpFake::start(&gcs.endpoint).expect("gcp fake");
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("key.json"), fake.service_account_key_json()).expect("key");
    Env { gcs, fake, tmp }
}

fn corpus() -> PathBuf {
    cco_testsupport::corpus_dir().join("credreqs/gcp")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

impl Env {
    fn ccoctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
        cmd.args(args)
            .env("HOME", self.tmp.path())
            .env_remove("GOOGLE_OAUTH_ACCESS_TOKEN")
            .env_remove("GOOGLE_CREDENTIALS")
            .env(
                "GOOGLE_APPLICATION_CREDENTIALS",
                self.tmp.path().join("key.json"),
            )
            .env("GCP_IAM_ENDPOINT", self.fake.endpoint())
            .env("GCP_RESOURCEMANAGER_ENDPOINT", self.fake.endpoint())
            .env("STORAGE_EMULATOR_HOST", self.fake.endpoint());
        cmd.output().expect("ccoctl runs")
    }

    /// An object straight from fake-gcs-server.
    fn object(&self, bucket: &str, name: &str) -> Option<Vec<u8>> {
        let url = format!(
            "{}/storage/v1/b/{bucket}/o/{}?alt=media",
            self.gcs.endpoint,
            name.replace('/', "%2F")
        );
        let rt = tokio::runtime::Runtime::new().expect("rt");
        let (status, _, body) = rt
            .block_on(cco_testsupport::fake_http::raw("GET", &url, &[], b""))
            .expect("http");
        (status == 200).then_some(body)
    }

    fn bucket_exists(&self, bucket: &str) -> bool {
        let url = format!("{}/storage/v1/b/{bucket}", self.gcs.endpoint);
        let rt = tokio::runtime::Runtime::new().expect("rt");
        rt.block_on(cco_testsupport::fake_http::raw("GET", &url, &[], b""))
            .expect("http")
            .0
            == 200
    }

    fn our_members(&self) -> Vec<String> {
        let p = self.fake.project_policy();
        let mut out = Vec::new();
        for b in p["bindings"].as_array().into_iter().flatten() {
            for m in b["members"].as_array().into_iter().flatten() {
                let m = m.as_str().expect("member");
                if m.starts_with("serviceAccount:") {
                    out.push(format!("{} {m}", b["role"].as_str().expect("role")));
                }
            }
        }
        out
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ccoctl failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "ccoctl unexpectedly succeeded\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What a corpus request asks for.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Req {
    name: String,
    ns: String,
    secret: String,
    ksas: Vec<String>,
    predefined: Vec<String>,
    has_perms: bool,
}

fn corpus_requests() -> Vec<Req> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(corpus()).expect("dir") {
        let text = std::fs::read_to_string(e.expect("e").path()).expect("read");
        let v: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
        let strs = |x: &serde_yaml::Value| -> Vec<String> {
            x.as_sequence()
                .into_iter()
                .flatten()
                .map(|s| s.as_str().expect("str").to_string())
                .collect()
        };
        out.push(Req {
            name: v["metadata"]["name"].as_str().expect("name").to_string(),
            ns: v["spec"]["secretRef"]["namespace"]
                .as_str()
                .expect("ns")
                .to_string(),
            secret: v["spec"]["secretRef"]["name"]
                .as_str()
                .expect("n")
                .to_string(),
            ksas: strs(&v["spec"]["serviceAccountNames"]),
            predefined: strs(&v["spec"]["providerSpec"]["predefinedRoles"]),
            has_perms: v["spec"]["providerSpec"]["permissions"]
                .as_sequence()
                .is_some_and(|p| !p.is_empty()),
        });
    }
    out.sort();
    out
}

fn secret_config(out: &Path, ns: &str, name: &str) -> Value {
    let text = std::fs::read_to_string(out.join(format!("manifests/{ns}-{name}-credentials.yaml")))
        .expect("manifest");
    let v: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v["data"]["service_account.json"].as_str().expect("data"))
        .expect("b64");
    serde_json::from_slice(&raw).expect("json")
}

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
    // Concurrent project-policy writers and not-yet-visible accounts were retried, not failed.
    let sets = env
        .fake
        .server
        .requests()
        .iter()
        .filter(|r| r.ends_with(":setIamPolicy") && r.contains(&format!("projects/{PROJECT_ID}:")))
        .count();
    assert!(sets >= 3 * reqs.len(), "{sets} project policy writes");

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
    ok(&env.ccoctl(&[
        "gcp",
        "create-all",
        "--name",
        name,
        "--project",
        PROJECT_ID,
        "--key-storage-method",
        "pool-jwk-file",
        "--credentials-requests-dir",
        s(&corpus()),
        "--output-dir",
        s(&out),
    ]));
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
    ok(&env.ccoctl(&[
        "gcp",
        "create-all",
        "--name",
        name,
        "--project",
        PROJECT_ID,
        "--key-storage-method",
        "pool-jwk-file",
        "--credentials-requests-dir",
        s(&corpus()),
        "--output-dir",
        s(&out),
    ]));
    let p = &env.fake.providers()[0];
    let jwks: Value =
        serde_json::from_str(p["oidc"]["jwksJson"].as_str().expect("jwksJson")).expect("json");
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 2);
    ok(&env.ccoctl(&[
        "gcp",
        "delete",
        "--name",
        name,
        "--project",
        PROJECT_ID,
        "--credentials-requests-dir",
        s(&corpus()),
        "--force-delete-custom-roles",
    ]));
    assert!(env.fake.service_accounts().is_empty());
    assert!(env.fake.pools().iter().all(|p| p["state"] == "DELETED"));
}

#[test]
fn delete_removes_only_what_ccoctl_made() {
    let env = start();
    let out = env.tmp.path().join("out");
    let name = "mixed";
    ok(&env.ccoctl(&[
        "gcp",
        "create-all",
        "--name",
        name,
        "--project",
        PROJECT_ID,
        "--credentials-requests-dir",
        s(&corpus()),
        "--output-dir",
        s(&out),
    ]));
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
    let listed = ok(&env.ccoctl(&[
        "gcp",
        "delete",
        "--name",
        name,
        "--project",
        PROJECT_ID,
        "--credentials-requests-dir",
        s(&corpus()),
        "--dry-run",
    ]));
    assert!(listed.contains("Would delete service account"), "{listed}");
    assert_eq!(env.fake.service_accounts().len(), 9);
    let stdout = ok(&env.ccoctl(&[
        "gcp",
        "delete",
        "--name",
        name,
        "--project",
        PROJECT_ID,
        "--credentials-requests-dir",
        s(&corpus()),
    ]));
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
    ok(&env.ccoctl(&[
        "gcp",
        "create-workload-identity-pool",
        "--name",
        name,
        "--project",
        PROJECT_ID,
    ]));
    ok(&env.ccoctl(&[
        "gcp",
        "create-workload-identity-provider",
        "--name",
        name,
        "--project",
        PROJECT_ID,
        "--workload-identity-pool",
        name,
        "--output-dir",
        s(&out),
    ]));
    ok(&env.ccoctl(&[
        "gcp",
        "create-service-accounts",
        "--name",
        name,
        "--project",
        PROJECT_ID,
        "--workload-identity-pool",
        name,
        "--workload-identity-provider",
        name,
        "--credentials-requests-dir",
        s(&corpus()),
        "--output-dir",
        s(&out),
    ]));
    assert_eq!(env.fake.service_accounts().len(), 8);
    assert!(env.object(&format!("{name}-oidc"), "keys.json").is_some());
    ok(&env.ccoctl(&[
        "gcp",
        "delete",
        "--name",
        name,
        "--project",
        PROJECT_ID,
        "--credentials-requests-dir",
        s(&corpus()),
        "--force-delete-custom-roles",
    ]));
    assert!(env.fake.service_accounts().is_empty());
}

/// Replaces the random part of the service account ids (`<name≤12>-<request≤11>-<5 random>`).
fn redact_account_ids(text: &str, name: &str) -> String {
    let mut t = text.to_string();
    for r in corpus_requests() {
        let prefix = format!(
            "{}-{}-",
            &name[..name.len().min(12)],
            &r.name[..r.name.len().min(11)]
        );
        t = snapshot::redact_after(&t, &prefix, 5, &|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit()
        });
    }
    t
}

#[test]
fn dry_run_writes_the_reference_scripts_and_makes_no_call() {
    let env = start();
    let out = env.tmp.path().join("dry");
    ok(&env.ccoctl(&[
        "gcp",
        "create-all",
        "--name",
        "dryrun",
        "--project",
        PROJECT_ID,
        "--dry-run",
        "--public-key-file",
        s(&snapshot::fixture_public_key()),
        "--credentials-requests-dir",
        s(&corpus()),
        "--output-dir",
        s(&out),
    ]));
    assert!(
        env.fake.server.requests().is_empty(),
        "{:?}",
        env.fake.server.requests()
    );
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("dir")
        .map(|e| e.expect("e").file_name().into_string().expect("u"))
        .collect();
    names.sort();
    for want in [
        "01-create-workload-identity-pool.sh",
        "02-create-oidc-bucket.sh",
        "03-openid-configuration",
        "04-keys.json",
        "05-create-workload-identity-provider.sh",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    // The reference numbering: 06 service account, 07 custom role (requests with permissions
    // only), 08 bindings, 09 credentials config; each numbered by the request's position.
    let reqs = corpus_requests();
    let with_perms = reqs.iter().filter(|r| r.has_perms).count();
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("06-") && n.ends_with("-sa.sh"))
            .count(),
        8
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("07-") && n.ends_with("-role.sh"))
            .count(),
        with_perms
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("08-") && n.contains("-add-iam-policy-binding-for-"))
            .count(),
        8
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("09-") && n.contains("-generate-credentials-config-for-"))
            .count(),
        8
    );
    assert!(
        names.contains(&"07-3-create-dryrun-openshift-gcp-ccm-role.sh".to_string()),
        "{names:?}"
    );
    // Modes as the reference writes them: scripts and documents 0744, manifests 0600.
    for n in names.iter().filter(|n| *n != "manifests") {
        assert_eq!(snapshot_mode(&out.join(n)), 0o744, "{n}");
    }
    let bind = std::fs::read_to_string(
        out.join("08-3-add-iam-policy-binding-for-dryrun-openshift-gcp-ccm-sa.sh"),
    )
    .expect("read");
    assert!(
        bind.contains("gcloud projects add-iam-policy-binding \"$PROJECT\""),
        "{bind}"
    );
    assert!(bind.contains("roles/iam.workloadIdentityUser"), "{bind}");
    assert!(
        bind.contains("projects/fake-project/roles/fakeproject_openshiftgcpccm"),
        "{bind}"
    );
    let role = std::fs::read_to_string(out.join("07-3-create-dryrun-openshift-gcp-ccm-role.sh"))
        .expect("read");
    assert!(
        role.contains("gcloud iam roles create 'fakeproject_openshiftgcpccm'"),
        "{role}"
    );
    // Every script is valid sh.
    for n in names.iter().filter(|n| n.ends_with(".sh")) {
        let st = Command::new("sh")
            .arg("-n")
            .arg(out.join(n))
            .status()
            .expect("sh");
        assert!(st.success(), "{n}");
    }
    // The Secret manifests cannot be applied until completed, and name script 09.
    let m = std::fs::read_to_string(out.join(
        "manifests/openshift-cloud-controller-manager-gcp-ccm-cloud-credentials-credentials.yaml",
    ))
    .expect("manifest");
    assert!(m.contains("POPULATE service_account.json FIELD"), "{m}");
    assert!(
        m.ends_with("09-3-generate-credentials-config-for-dryrun-openshift-gcp-ccm-sa.sh"),
        "{m}"
    );
    let root = out.canonicalize().expect("canonical");
    let redact = |t: &str| redact_account_ids(&t.replace(s(&root), "<OUT>"), "dryrun");
    insta::assert_snapshot!(
        "gcp_create_all_dry_run",
        snapshot::render_dir(&out, &[], &redact)
    );
    // pool-jwk-file points the provider script at the JWKS file and makes no bucket script.
    let out2 = env.tmp.path().join("dry2");
    ok(&env.ccoctl(&[
        "gcp",
        "create-all",
        "--name",
        "dryrun",
        "--project",
        PROJECT_ID,
        "--dry-run",
        "--key-storage-method",
        "pool-jwk-file",
        "--public-key-file",
        s(&snapshot::fixture_public_key()),
        "--credentials-requests-dir",
        s(&corpus()),
        "--output-dir",
        s(&out2),
    ]));
    assert!(!out2.join("02-create-oidc-bucket.sh").exists());
    let p =
        std::fs::read_to_string(out2.join("05-create-workload-identity-provider.sh")).expect("05");
    assert!(p.contains("--jwk-json-path="), "{p}");
    let root2 = out2.canonicalize().expect("canonical");
    let only_issuer = |t: &str| t.replace(s(&root2), "<OUT>");
    let files: Vec<String> = std::fs::read_dir(&out2)
        .expect("dir")
        .map(|e| e.expect("e").file_name().into_string().expect("u"))
        .filter(|n| n.starts_with("0") && n.as_str() < "06")
        .collect();
    let skip: Vec<String> = std::fs::read_dir(&out2)
        .expect("dir")
        .map(|e| e.expect("e").file_name().into_string().expect("u"))
        .filter(|n| !files.contains(n))
        .collect();
    let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
    insta::assert_snapshot!(
        "gcp_pool_jwk_file_dry_run_issuer",
        snapshot::render_dir(&out2, &skip, &only_issuer)
    );
    assert!(env.fake.server.requests().is_empty());
}

fn snapshot_mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

#[test]
fn delete_force_finds_custom_roles_of_either_naming_scheme() {
    let env = start();
    // A role of the reference scheme and one an earlier version of this tool made.
    let desc = "Created By OpenShift ccoctl for service account oldname-openshift-gcp-ccm";
    env.fake.insert_role(
        "fakeproject_openshiftgcpccm",
        "fake-project-openshift-gcp-ccm",
        desc,
        &["compute.instances.get"],
    );
    env.fake.insert_role(
        "oldname_openshift_gcp_ccm",
        "oldname-openshift-gcp-ccm",
        "Created By OpenShift ccoctl for CredentialsRequest openshift-gcp-ccm",
        &["compute.instances.get"],
    );
    // One nobody asked ccoctl to touch.
    env.fake.insert_role(
        "other_role",
        "other",
        "made by hand",
        &["compute.instances.get"],
    );
    let stdout = ok(&env.ccoctl(&[
        "gcp",
        "delete",
        "--name",
        "oldname",
        "--project",
        PROJECT_ID,
        "--credentials-requests-dir",
        s(&corpus()),
        "--force-delete-custom-roles",
    ]));
    let deleted: Vec<String> = env
        .fake
        .roles()
        .iter()
        .filter(|r| r["deleted"] == true)
        .map(|r| r["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(
        deleted,
        [
            "projects/fake-project/roles/fakeproject_openshiftgcpccm",
            "projects/fake-project/roles/oldname_openshift_gcp_ccm"
        ],
        "{stdout}"
    );
}

#[test]
fn names_gcp_accepts_are_accepted_and_the_refusal_says_which_rule() {
    let env = start();
    let out = env.tmp.path().join("names");
    let run = |args: &[&str]| {
        let mut a = vec!["gcp"];
        a.extend_from_slice(args);
        a.extend_from_slice(&[
            "--project",
            PROJECT_ID,
            "--output-dir",
            s(&out),
            "--dry-run",
        ]);
        env.ccoctl(&a)
    };
    // A pool id may start with a digit and end with a hyphen.
    ok(&run(&["create-workload-identity-pool", "--name", "1abc-"]));
    // Only the first 12 characters reach service account ids; display names take anything.
    ok(&run(&[
        "create-service-accounts",
        "--name",
        "mycluster-01.Prod_X",
        "--workload-identity-pool",
        "pool1",
        "--workload-identity-provider",
        "prov1",
        "--credentials-requests-dir",
        s(&corpus()),
    ]));
    let err = failed(&run(&[
        "create-service-accounts",
        "--name",
        "My-cluster",
        "--workload-identity-pool",
        "pool1",
        "--workload-identity-provider",
        "prov1",
        "--credentials-requests-dir",
        s(&corpus()),
    ]));
    assert!(
        err.contains("--name \"My-cluster\" is not valid") && err.contains("service account ids"),
        "{err}"
    );
    let err = failed(&run(&[
        "create-workload-identity-pool",
        "--name",
        "gcp-pool",
    ]));
    assert!(err.contains("reserved by Google"), "{err}");
    let err = failed(&run(&[
        "create-workload-identity-provider",
        "--name",
        "my-google-1",
        "--workload-identity-pool",
        "pool1",
        "--public-key-file",
        s(&snapshot::fixture_public_key()),
    ]));
    assert!(err.contains("contain google"), "{err}");
    assert!(env.fake.server.requests().is_empty());
}

#[test]
fn a_missing_public_key_names_the_gcp_command_that_makes_one() {
    let env = start();
    let err = failed(&env.ccoctl(&[
        "gcp",
        "create-workload-identity-provider",
        "--name",
        "nokey",
        "--project",
        PROJECT_ID,
        "--workload-identity-pool",
        "nokey",
        "--output-dir",
        s(&env.tmp.path().join("empty")),
        "--dry-run",
    ]));
    assert!(err.contains("ccoctl gcp create-key-pair"), "{err}");
}

#[test]
fn create_all_with_public_key_file_publishes_that_key_and_makes_no_key_pair() {
    let env = start();
    let out = env.tmp.path().join("pk");
    let key = snapshot::fixture_public_key();
    ok(&env.ccoctl(&[
        "gcp",
        "create-all",
        "--name",
        "pkfile",
        "--project",
        PROJECT_ID,
        "--public-key-file",
        s(&key),
        "--credentials-requests-dir",
        s(&corpus()),
        "--output-dir",
        s(&out),
    ]));
    assert!(!out.join("serviceaccount-signer.private").exists());
    let public =
        cco_core::keys::parse_public_key(&std::fs::read_to_string(&key).expect("key"), "fixture")
            .expect("key");
    let keys: Value =
        serde_json::from_slice(&env.object("pkfile-oidc", "keys.json").expect("keys"))
            .expect("json");
    assert_eq!(
        keys["keys"][0]["kid"],
        cco_core::keys::key_id(&public).expect("kid").as_str()
    );
    // The Secret manifests, byte for byte in the reference layout (emails redacted).
    let redact = |t: &str| {
        let mut t = t.to_string();
        // The base64 holds the email: decode, redact, show the config itself.
        if let Some(line) = t
            .lines()
            .find(|l| l.starts_with("  service_account.json: "))
        {
            let b64 = line.trim_start_matches("  service_account.json: ");
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("b64");
            let config = redact_account_ids(&String::from_utf8(raw).expect("utf8"), "pkfile");
            t = t.replace(b64, &format!("<base64 of:\n{config}\n>"));
        }
        t
    };
    insta::assert_snapshot!(
        "gcp_create_all_secret_manifests",
        snapshot::render_dir(
            &out.join("manifests"),
            &["cluster-authentication-02-config.yaml"],
            &redact
        )
    );
}

#[test]
fn bad_names_requests_projects_and_credentials_fail_clearly() {
    let env = start();
    let out = env.tmp.path().join("out");
    let err = failed(&env.ccoctl(&[
        "gcp",
        "create-all",
        "--name",
        &"n".repeat(33),
        "--project",
        PROJECT_ID,
        "--credentials-requests-dir",
        s(&corpus()),
        "--output-dir",
        s(&out),
    ]));
    assert!(
        err.contains("Name can be at most 32 characters long"),
        "{err}"
    );
    let err = failed(&env.ccoctl(&[
        "gcp",
        "create-all",
        "--name",
        "Bad_Name",
        "--project",
        PROJECT_ID,
        "--credentials-requests-dir",
        s(&corpus()),
        "--output-dir",
        s(&out),
    ]));
    assert!(err.contains("lower-case"), "{err}");
    // A request without serviceAccountNames, before any call.
    let reqs = env.tmp.path().join("reqs");
    std::fs::create_dir_all(&reqs).expect("mkdir");
    let text = std::fs::read_to_string(corpus().join("openshift-gcp-ccm.yaml")).expect("read");
    let bad = text.replace("  serviceAccountNames:\n  - cloud-controller-manager\n", "");
    assert_ne!(bad, text);
    std::fs::write(reqs.join("ccm.yaml"), bad).expect("write");
    let err = failed(&env.ccoctl(&[
        "gcp",
        "create-all",
        "--name",
        "badreq",
        "--project",
        PROJECT_ID,
        "--credentials-requests-dir",
        s(&reqs),
        "--output-dir",
        s(&out),
    ]));
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
    std::fs::write(
        env.tmp.path().join("key.json"),
        r#"{"type":"external_account"}"#,
    )
    .expect("write");
    let err = failed(&env.ccoctl(&[
        "gcp",
        "create-workload-identity-pool",
        "--name",
        "other",
        "--project",
        PROJECT_ID,
    ]));
    assert!(
        err.contains("GCP credentials") && err.contains("not supported"),
        "{err}"
    );
}
