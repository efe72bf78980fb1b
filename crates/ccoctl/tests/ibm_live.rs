//! `ccoctl ibmcloud` against the stateful IBM IAM fake (`cco_testsupport::ibm_iam`): every IBM Cloud
//! and Power VS corpus request through create, re-run and delete; idempotency; duplicates; dry run;
//! bad inputs; and `refresh-keys` applying new keys to a real kube-apiserver. Results are read back
//! from the fake's state, not through the code under test.

use crate::snapshot;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cco_testsupport::ibm_iam::{IbmIamFake, ACCOUNT_ID, RESOURCE_GROUPS};
use serde_json::Value;

fn corpus(cloud: &str) -> PathBuf {
    cco_testsupport::corpus_dir().join("credreqs").join(cloud)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn ccoctl(fake: Option<&IbmIamFake>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
    cmd.args(args).env("NO_COLOR", "1");
    for k in [
        "IC_API_KEY",
        "IBMCLOUD_API_KEY",
        "BM_API_KEY",
        "BLUEMIX_API_KEY",
    ] {
        cmd.env_remove(k);
    }
    match fake {
        Some(f) => {
            for (k, v) in f.env() {
                cmd.env(k, v);
            }
        }
        None => {
            cmd.env("IC_API_KEY", "x")
                .env("IBMCLOUD_IAM_ENDPOINT", "http://127.0.0.1:9")
                .env("IBMCLOUD_RESOURCE_MANAGER_ENDPOINT", "http://127.0.0.1:9");
        }
    }
    cmd.output().expect("ccoctl runs")
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

/// Requests of a corpus dir as (service ID name, secret ns, secret name, policy count).
fn expected(dir: &Path, name: &str) -> Vec<(String, String, String, usize)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir") {
        let text = std::fs::read_to_string(e.expect("entry").path()).expect("read");
        let v: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
        let ns = v["spec"]["secretRef"]["namespace"]
            .as_str()
            .expect("ns")
            .to_string();
        let sn = v["spec"]["secretRef"]["name"]
            .as_str()
            .expect("name")
            .to_string();
        let n = v["spec"]["providerSpec"]["policies"]
            .as_sequence()
            .map(|p| p.len())
            .unwrap_or(0);
        out.push((format!("{name}-{ns}-{sn}"), ns, sn, n));
    }
    out.sort();
    out
}

fn subject(p: &Value) -> String {
    p["subjects"][0]["attributes"][0]["value"]
        .as_str()
        .expect("subject")
        .to_string()
}

fn manifest_key(out: &Path, ns: &str, name: &str) -> String {
    let text = std::fs::read_to_string(out.join(format!("manifests/{ns}-{name}-credentials.yaml")))
        .expect("manifest");
    let v: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let key = v["stringData"]["ibmcloud_api_key"]
        .as_str()
        .expect("key")
        .to_string();
    assert_eq!(
        v["stringData"]["ibm-credentials.env"].as_str(),
        Some(format!("IBMCLOUD_AUTHTYPE=iam\nIBMCLOUD_APIKEY={key}").as_str())
    );
    key
}

#[test]
fn every_ibm_cloud_and_power_vs_corpus_request_is_created_reconverged_and_deleted() {
    let fake = IbmIamFake::start().expect("fake");
    for cloud in ["ibmcloud", "powervs"] {
        let tmp = tempfile::tempdir().expect("tmp");
        let out = tmp.path().join("out");
        let name = format!("t-{cloud}");
        let want = expected(&corpus(cloud), &name);
        let dir = corpus(cloud);
        let args = [
            "ibmcloud",
            "create-service-id",
            "--name",
            &name,
            "--credentials-requests-dir",
            s(&dir),
            "--output-dir",
            s(&out),
            "--resource-group-name",
            "ocp-rg",
        ];
        ok(&ccoctl(Some(&fake), &args));
        let mut names = fake.service_id_names();
        names.sort();
        assert_eq!(names, want.iter().map(|w| w.0.clone()).collect::<Vec<_>>());
        let sids = fake.service_ids();
        let policies = fake.policies();
        let mut keys = Vec::new();
        for (sid_name, ns, sn, n) in &want {
            let sid = sids
                .iter()
                .find(|v| v["name"] == sid_name.as_str())
                .expect("sid");
            let iam = sid["iam_id"].as_str().expect("iam");
            let mine: Vec<&Value> = policies.iter().filter(|p| subject(p) == iam).collect();
            assert_eq!(mine.len(), *n, "{sid_name}");
            for p in &mine {
                let attrs = p["resources"][0]["attributes"].as_array().expect("attrs");
                assert!(attrs
                    .iter()
                    .any(|a| a["name"] == "accountId" && a["value"] == ACCOUNT_ID));
                assert!(
                    attrs.iter().any(|a| a["value"] == RESOURCE_GROUPS[1].1),
                    "policy scoped to the resource group: {p}"
                );
            }
            let key = manifest_key(&out, ns, sn);
            assert_eq!(fake.owner_of_key(&key).as_deref(), Some(iam), "{sid_name}");
            keys.push(key);
        }
        let n_policies = fake.policies().len();
        let n_keys = fake.api_keys().len();

        // A re-run converges: nothing new, the same keys kept.
        let stdout = ok(&ccoctl(Some(&fake), &args));
        assert!(stdout.contains("up to date"), "{stdout}");
        assert_eq!(fake.service_ids().len(), want.len());
        assert_eq!(fake.policies().len(), n_policies);
        assert_eq!(fake.api_keys().len(), n_keys);
        for ((_, ns, sn, _), key) in want.iter().zip(&keys) {
            assert_eq!(&manifest_key(&out, ns, sn), key);
        }

        ok(&ccoctl(
            Some(&fake),
            &[
                "ibmcloud",
                "delete-service-id",
                "--name",
                &name,
                "--credentials-requests-dir",
                s(&corpus(cloud)),
            ],
        ));
        assert!(
            fake.service_ids().is_empty(),
            "{:?}",
            fake.service_id_names()
        );
        assert!(fake.policies().is_empty());
        assert!(fake.api_keys().is_empty());
    }
}

#[test]
fn an_existing_service_id_is_reused_and_its_policies_brought_up_to_date() {
    let fake = IbmIamFake::start().expect("fake");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let dir = corpus("ibmcloud");
    let args = [
        "ibmcloud",
        "create-service-id",
        "--name",
        "c1",
        "--credentials-requests-dir",
        s(&dir),
        "--output-dir",
        s(&out),
    ];
    ok(&ccoctl(Some(&fake), &args));
    let before = fake.policies().len();
    // Scoping to a resource group changes every policy: the old ones are replaced, not kept.
    let mut scoped = args.to_vec();
    scoped.extend(["--resource-group-name", "default"]);
    ok(&ccoctl(Some(&fake), &scoped));
    let after = fake.policies();
    assert_eq!(after.len(), before);
    assert!(after.iter().all(|p| p["resources"][0]["attributes"]
        .as_array()
        .expect("attrs")
        .iter()
        .any(|a| a["value"] == RESOURCE_GROUPS[0].1)));
    // A lost manifest gets a fresh key for the same service ID.
    let (_, ns, sn, _) = expected(&corpus("ibmcloud"), "c1").remove(0);
    let old = manifest_key(&out, &ns, &sn);
    std::fs::remove_file(out.join(format!("manifests/{ns}-{sn}-credentials.yaml"))).expect("rm");
    ok(&ccoctl(Some(&fake), &args));
    let new = manifest_key(&out, &ns, &sn);
    assert_ne!(old, new);
    assert_eq!(fake.owner_of_key(&old), fake.owner_of_key(&new));
    assert_eq!(fake.service_ids().len(), 5);
}

#[test]
fn duplicate_service_ids_are_refused_until_force_deleted() {
    let fake = IbmIamFake::start().expect("fake");
    let (dup, _, _, _) = expected(&corpus("ibmcloud"), "d").remove(0);
    fake.insert_service_id(&dup);
    fake.insert_service_id(&dup);
    let tmp = tempfile::tempdir().expect("tmp");
    let err = failed(&ccoctl(
        Some(&fake),
        &[
            "ibmcloud",
            "create-service-id",
            "--name",
            "d",
            "--credentials-requests-dir",
            s(&corpus("ibmcloud")),
            "--output-dir",
            s(tmp.path()),
        ],
    ));
    assert!(
        err.contains(&format!("2 service IDs are named {dup}")),
        "{err}"
    );
    assert!(err.contains("1 of 5 service IDs failed"), "{err}");
    let dir = corpus("ibmcloud");
    let del = [
        "ibmcloud",
        "delete-service-id",
        "--name",
        "d",
        "--credentials-requests-dir",
        s(&dir),
    ];
    let err = failed(&ccoctl(Some(&fake), &del));
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        fake.service_ids().len(),
        6,
        "nothing deleted without --force"
    );
    let mut dry = del.to_vec();
    dry.extend(["--force", "--dry-run"]);
    let listed = ok(&ccoctl(Some(&fake), &dry));
    assert_eq!(listed.matches("Would delete service ID").count(), 6);
    assert_eq!(fake.service_ids().len(), 6);
    let mut force = del.to_vec();
    force.push("--force");
    ok(&ccoctl(Some(&fake), &force));
    assert!(fake.service_ids().is_empty());
    assert!(fake.policies().is_empty());
}

#[test]
fn dry_run_writes_the_plan_and_makes_no_call() {
    let fake = IbmIamFake::start().expect("fake");
    let tmp = tempfile::tempdir().expect("tmp");
    ok(&ccoctl(
        Some(&fake),
        &[
            "ibmcloud",
            "create-service-id",
            "--name",
            "dry",
            "--credentials-requests-dir",
            s(&corpus("powervs")),
            "--output-dir",
            s(tmp.path()),
            "--resource-group-name",
            "ocp-rg",
            "--dry-run",
        ],
    ));
    assert!(
        fake.server.requests().is_empty(),
        "{:?}",
        fake.server.requests()
    );
    let mut files: Vec<String> = std::fs::read_dir(tmp.path())
        .expect("dir")
        .map(|e| e.expect("e").file_name().into_string().expect("utf8"))
        .filter(|f| f.ends_with("-service-id.json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 6);
    let first: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join(&files[0])).expect("read"))
            .expect("json");
    assert!(first["serviceId"]["name"]
        .as_str()
        .expect("name")
        .starts_with("dry-"));
    assert_eq!(first["policies"][0]["type"], "access");
    assert!(!tmp.path().join("manifests").exists());
}

#[test]
fn bad_keys_unknown_resource_groups_and_bad_requests_fail_clearly() {
    let fake = IbmIamFake::start().expect("fake");
    let tmp = tempfile::tempdir().expect("tmp");
    let base = |extra: &[&'static str]| {
        let mut v = vec![
            "ibmcloud".to_string(),
            "create-service-id".into(),
            "--name".into(),
            "b".into(),
            "--credentials-requests-dir".into(),
            s(&corpus("ibmcloud")).into(),
            "--output-dir".into(),
            s(tmp.path()).into(),
        ];
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let run = |args: &[String], env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
        cmd.args(args);
        for (k, v) in fake.env() {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("runs")
    };
    let err = failed(&run(&base(&[]), &[("IC_API_KEY", "wrong")]));
    assert!(
        err.contains("API key was rejected") && err.contains("BXNIM0415E"),
        "{err}"
    );
    let err = failed(&run(&base(&["--resource-group-name", "nope"]), &[]));
    assert!(err.contains("resource group nope not found"), "{err}");
    assert!(fake.service_ids().is_empty());
    let err = failed(&ccoctl(
        None,
        &[
            "ibmcloud",
            "create-service-id",
            "--name",
            "b",
            "--credentials-requests-dir",
            s(&corpus("ibmcloud")),
            "--output-dir",
            s(tmp.path()),
        ],
    ));
    assert!(err.contains("cannot reach IBM Cloud"), "{err}");
    // A policy without roles names its file, document and field, before any call.
    let reqs = tmp.path().join("reqs");
    std::fs::create_dir_all(&reqs).expect("mkdir");
    let text = std::fs::read_to_string(
        corpus("ibmcloud").join("openshift-ibm-cloud-controller-manager.yaml"),
    )
    .expect("read");
    let bad = text.replacen(
        "roles:\n      - \"crn:v1:bluemix:public:iam::::role:Viewer\"",
        "roles: []",
        1,
    );
    assert_ne!(bad, text);
    std::fs::write(reqs.join("bad.yaml"), bad).expect("write");
    let before = fake.server.requests().len();
    let err = failed(&ccoctl(
        Some(&fake),
        &[
            "ibmcloud",
            "create-service-id",
            "--name",
            "b",
            "--credentials-requests-dir",
            s(&reqs),
            "--output-dir",
            s(tmp.path()),
        ],
    ));
    assert!(
        err.contains("bad.yaml (document 0)") && err.contains("policies[0].roles"),
        "{err}"
    );
    assert_eq!(fake.server.requests().len(), before);
    // No API key at all.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
    cmd.args(base(&[]));
    for k in [
        "IC_API_KEY",
        "IBMCLOUD_API_KEY",
        "BM_API_KEY",
        "BLUEMIX_API_KEY",
    ] {
        cmd.env_remove(k);
    }
    let err = failed(&cmd.output().expect("runs"));
    assert!(err.contains("IC_API_KEY"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_keys_applies_new_keys_to_the_cluster_and_deletes_the_old_ones() {
    use cco_testsupport::kube_env::{KubeEnv, KubeEnvOptions};
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use kube::api::{Api, ObjectMeta, PostParams};

    cco_testsupport::kube_env::install_crypto_provider();
    let fake = IbmIamFake::start().expect("fake");
    let env = KubeEnv::start(KubeEnvOptions::default())
        .await
        .expect("kube-apiserver");
    let client = env.client().await.expect("client");
    let want = expected(&corpus("ibmcloud"), "r");
    for (_, ns, _, _) in &want {
        let _ = Api::<Namespace>::all(client.clone())
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        name: Some(ns.clone()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .await;
    }
    let kubeconfig = env.kubeconfig_path();
    let tmp = tempfile::tempdir().expect("tmp");
    let refresh = |create: bool| {
        let mut args = vec![
            "ibmcloud".to_string(),
            "refresh-keys".into(),
            "--name".into(),
            "r".into(),
            "--credentials-requests-dir".into(),
            s(&corpus("ibmcloud")).into(),
            "--kubeconfig".into(),
            s(&kubeconfig).into(),
        ];
        if create {
            args.push("--create".into());
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
        cmd.args(&args);
        for (k, v) in fake.env() {
            cmd.env(k, v);
        }
        cmd.output().expect("runs")
    };
    // Without --create, missing service IDs stop the run before anything changes.
    let err = failed(&refresh(false));
    assert!(
        err.contains("does not exist; re-run with --create"),
        "{err}"
    );
    assert!(fake.service_ids().is_empty());

    ok(&ccoctl(
        Some(&fake),
        &[
            "ibmcloud",
            "create-service-id",
            "--name",
            "r",
            "--credentials-requests-dir",
            s(&corpus("ibmcloud")),
            "--output-dir",
            s(tmp.path()),
        ],
    ));
    let old_keys: Vec<String> = want
        .iter()
        .map(|(_, ns, sn, _)| manifest_key(tmp.path(), ns, sn))
        .collect();
    ok(&refresh(false));
    for ((sid, ns, sn, _), old) in want.iter().zip(&old_keys) {
        let secret = Api::<Secret>::namespaced(client.clone(), ns)
            .get(sn)
            .await
            .expect("secret");
        let data = secret.data.expect("data");
        let key = String::from_utf8(data["ibmcloud_api_key"].0.clone()).expect("utf8");
        assert_ne!(&key, old, "{sid}: a new key");
        let iam = fake.owner_of_key(&key).expect("the new key exists");
        assert!(
            fake.owner_of_key(old).is_none(),
            "{sid}: the old key is deleted"
        );
        assert_eq!(
            String::from_utf8(data["ibm-credentials.env"].0.clone()).expect("utf8"),
            format!("IBMCLOUD_AUTHTYPE=iam\nIBMCLOUD_APIKEY={key}")
        );
        assert_eq!(
            fake.api_keys()
                .iter()
                .filter(|k| k["iam_id"] == iam.as_str())
                .count(),
            1
        );
    }
    // With --create, missing service IDs are made.
    ok(&ccoctl(
        Some(&fake),
        &[
            "ibmcloud",
            "delete-service-id",
            "--name",
            "r",
            "--credentials-requests-dir",
            s(&corpus("ibmcloud")),
        ],
    ));
    ok(&refresh(true));
    assert_eq!(fake.service_ids().len(), want.len());
}

#[test]
fn secret_manifests_are_written_as_the_reference_tool_serialises_them() {
    let fake = IbmIamFake::start().expect("fake");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    for cloud in ["ibmcloud", "powervs"] {
        ok(&ccoctl(
            Some(&fake),
            &[
                "ibmcloud",
                "create-service-id",
                "--name",
                "snap",
                "--credentials-requests-dir",
                s(&corpus(cloud)),
                "--output-dir",
                s(&out),
            ],
        ));
    }
    // API keys are drawn by IAM: replace each by a placeholder, everything else is fixed.
    let manifests = out.join("manifests");
    let mut keys = Vec::new();
    for e in std::fs::read_dir(&manifests).expect("dir") {
        let text = std::fs::read_to_string(e.expect("e").path()).expect("read");
        let v: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
        keys.push(
            v["stringData"]["ibmcloud_api_key"]
                .as_str()
                .expect("key")
                .to_string(),
        );
    }
    let redact = |t: &str| {
        keys.iter()
            .fold(t.to_string(), |t, k| t.replace(k.as_str(), "<API_KEY>"))
    };
    insta::assert_snapshot!(
        "ibm_secret_manifests",
        snapshot::render_dir(&manifests, &[], &redact)
    );
}

#[test]
fn api_endpoint_points_every_call_at_that_domain() {
    let fake = IbmIamFake::start().expect("fake");
    let tmp = tempfile::tempdir().expect("tmp");
    for cmd in ["create-service-id", "delete-service-id"] {
        let err = failed(&ccoctl(
            Some(&fake),
            &[
                "ibmcloud",
                cmd,
                "--name",
                "ep",
                "--credentials-requests-dir",
                s(&corpus("ibmcloud")),
                "--api-endpoint",
                "test.invalid",
            ],
        ));
        // The flag wins over the endpoint environment the fake sets: IAM is asked at iam.<domain>.
        assert!(err.contains("https://iam.test.invalid"), "{cmd}: {err}");
    }
    let err = failed(&ccoctl(
        Some(&fake),
        &[
            "ibmcloud",
            "create-service-id",
            "--name",
            "ep",
            "--credentials-requests-dir",
            s(&corpus("ibmcloud")),
            "--output-dir",
            s(&tmp.path().join("out")),
            "--api-endpoint",
            "https://test.cloud.ibm.com/v1",
        ],
    ));
    assert!(err.contains("must be a bare domain"), "{err}");
}

#[test]
fn names_the_reference_accepts_are_accepted() {
    let fake = IbmIamFake::start().expect("fake");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let name = format!("My.Cluster_{}", "x".repeat(60));
    ok(&ccoctl(
        Some(&fake),
        &[
            "ibmcloud",
            "create-service-id",
            "--name",
            &name,
            "--credentials-requests-dir",
            s(&corpus("ibmcloud")),
            "--output-dir",
            s(&out),
        ],
    ));
    assert!(fake
        .service_ids()
        .iter()
        .all(|sid| sid["name"].as_str().is_some_and(|n| n.starts_with(&name))));
}
