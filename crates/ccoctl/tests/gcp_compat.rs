//! `ccoctl gcp` side by side with the reference tool, against fake-gcs-server and the GCP fake: the
//! dry-run files (names, numbering, modes, and snapshots of every file byte for byte), the Secret
//! manifests, custom role ids of the reference scheme (and `delete --force-delete-custom-roles`
//! finding either scheme), `--public-key-file`, GCP's naming rules and the key-pair hint.

mod gcp_env;
mod snapshot;

use std::process::Command;

use base64::Engine;
use cco_testsupport::gcp_fake::PROJECT_ID;
use gcp_env::*;
use serde_json::Value;

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
