//! `ccoctl aws verify` against moto, a real TLS issuer front and the real kube-apiserver: a good
//! installation passes with anonymous reads only and no mutating call; each kind of breakage made
//! on purpose is reported with its fix, `plan` shows the change that fixes it, and after the fix
//! `verify` passes again.

use crate::common;

use common::front::*;
use serde_json::{json, Value};

/// Runs verify while moto records, and asserts that nothing mutating reached it.
fn verify_read_only(i: &Install, extra: &[&str]) -> (i32, Value) {
    i.moto.start_recording().expect("record");
    let r = i.verify(extra);
    i.moto.stop_recording().expect("stop");
    let mutating = i.moto.mutating_calls().expect("calls");
    assert!(mutating.is_empty(), "verify mutated: {mutating:?}");
    assert!(
        !i.moto.recorded_calls().expect("calls").is_empty(),
        "the recorder saw nothing; the check above proves nothing"
    );
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_installation_verifies_with_anonymous_reads_and_no_mutating_call() {
    let i = Install::created("v-ok");
    let (code, report) = verify_read_only(&i, &[]);
    assert_eq!(failures(&report), vec![], "{report:#}");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["version"], 1);
    assert_eq!(report["ok"], true);
    // The documented JSON form (README, "`verify` and `plan`: JSON output").
    assert_eq!(report["kind"], "verify");
    assert_eq!(report["cloud"], "aws");
    assert_eq!(report["name"], "v-ok");
    let all = report["checks"].as_array().expect("checks");
    assert_eq!(
        report["summary"],
        json!({"pass": all.len(), "fail": 0, "warn": 0}),
        "{report:#}"
    );
    for c in all {
        let mut keys: Vec<_> = c.as_object().expect("check").keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["fix", "id", "message", "status", "subject"], "{c}");
    }
    for (id, n) in [
        ("issuer.bucket", 1),
        ("issuer.bucket_access", 1),
        ("issuer.https", 1),
        ("issuer.discovery", 1),
        ("issuer.issuer", 1),
        ("issuer.jwks_uri", 1),
        ("issuer.jwks", 1),
        ("keys.kid", 1),
        ("keys.stale", 1),
        ("provider.exists", 1),
        ("provider.client_ids", 1),
        ("provider.thumbprint", 1),
        ("request.role", 7),
        ("request.trust", 7),
        ("request.policy", 7),
        ("request.secret", 7),
        ("manifest.authentication", 1),
    ] {
        let pass: Vec<_> = checks(&report, id, "")
            .into_iter()
            .filter(|c| c["status"] == "pass")
            .collect();
        assert_eq!(pass.len(), n, "{id}: {report:#}");
    }
    // The issuer documents were fetched over the TLS front, without credentials.
    let seen = i.front.requests();
    let host = format!("{}-oidc.s3.{REGION}.amazonaws.com", i.name);
    for path in ["/.well-known/openid-configuration", "/keys.json"] {
        let r: Vec<_> = seen.iter().filter(|r| r.path == path).collect();
        assert!(!r.is_empty(), "{path} not fetched: {seen:?}");
        assert!(
            r.iter()
                .all(|r| r.method == "GET" && !r.signed && r.host == host && r.status == 200),
            "{seen:?}"
        );
    }

    // The text form: one line per check, a summary.
    let text = i.ok(&i.args(
        "verify",
        &[
            "--output-dir",
            &Install::s(&i.out),
            "--issuer-ca-file",
            &Install::s(&i.ca),
        ],
    ));
    assert!(text.contains("PASS  issuer.discovery"), "{text}");
    assert!(text.trim_end().ends_with("0 failed, 0 warnings"), "{text}");
}

/// One breakage: what to break, then what verify and plan must say.
async fn broken(i: &Install, what: &str) {
    let c = i.clients().await;
    let role = i.role_of("openshift-image-registry.yaml");
    match what {
        "deleted role" => {
            c.iam
                .delete_role_policy()
                .role_name(&role)
                .policy_name(&role)
                .send()
                .await
                .expect("delete policy");
            c.iam
                .delete_role()
                .role_name(&role)
                .send()
                .await
                .expect("delete role");
        }
        "stale trust" => {
            let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Federated": i.provider_arn()},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {
                    format!("{}-oidc.s3.{REGION}.amazonaws.com:sub", i.name):
                        ["system:serviceaccount:openshift-image-registry:old-sa"]}}}]});
            c.iam
                .update_assume_role_policy()
                .role_name(&role)
                .policy_document(trust.to_string())
                .send()
                .await
                .expect("trust");
        }
        "policy missing an action" => {
            let got = c
                .iam
                .get_role_policy()
                .role_name(&role)
                .policy_name(&role)
                .send()
                .await
                .expect("policy");
            let mut doc = common::decode_policy(got.policy_document());
            let actions = doc["Statement"][0]["Action"]
                .as_array_mut()
                .expect("actions");
            assert_eq!(actions.remove(0), "s3:CreateBucket");
            c.iam
                .put_role_policy()
                .role_name(&role)
                .policy_name(&role)
                .policy_document(doc.to_string())
                .send()
                .await
                .expect("put policy");
        }
        "private bucket" => {
            c.s3.delete_bucket_policy()
                .bucket(i.bucket())
                .send()
                .await
                .expect("delete policy");
        }
        "wrong thumbprint" => {
            c.iam
                .update_open_id_connect_provider_thumbprint()
                .open_id_connect_provider_arn(i.provider_arn())
                .thumbprint_list("ffffffffffffffffffffffffffffffffffffffff")
                .send()
                .await
                .expect("thumbprint");
        }
        "client id removed" => {
            c.iam
                .remove_client_id_from_open_id_connect_provider()
                .open_id_connect_provider_arn(i.provider_arn())
                .client_id("openshift")
                .send()
                .await
                .expect("remove client id");
        }
        "deleted provider" => {
            c.iam
                .delete_open_id_connect_provider()
                .open_id_connect_provider_arn(i.provider_arn())
                .send()
                .await
                .expect("delete provider");
        }
        other => panic!("unknown breakage {other}"),
    }
}

/// Breaks one thing, checks verify (read only, the failing checks, the fix) and plan, applies the
/// fix create-all is, and checks that verify and plan are clean again.
async fn breakage_is_reported_planned_and_fixed(
    name: &str,
    what: &str,
    expect_fail: &[(&str, &str)],
    fix_has: &str,
    expect_changes: &[(&str, &str, &str)],
) -> (Value, Value) {
    let i = Install::created(name);
    broken(&i, what).await;
    let (code, report) = verify_read_only(&i, &[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["ok"], false);
    let want: Vec<(String, String)> = expect_fail
        .iter()
        .map(|(id, subject)| (id.to_string(), subject.replace("{name}", &i.name)))
        .collect();
    let got = failures(&report);
    assert_eq!(got.len(), want.len(), "{got:?}\n{report:#}");
    for (id, subject) in &want {
        assert!(
            got.iter()
                .any(|(i, s)| i == id && s.contains(subject.as_str())),
            "no failing {id} about {subject}: {got:?}"
        );
    }
    let (first_id, first_subject) = want[0].clone();
    let first = failing(&report, &first_id, &first_subject);
    let fix = first["fix"].as_str().expect("a fix");
    assert!(fix.contains(fix_has), "fix {fix:?} for {what}");

    let (code, plan) = i.plan(&i.reqs, &[]);
    assert_eq!(code, 2, "{plan:#}");
    let mut want: Vec<(String, String, String)> = expect_changes
        .iter()
        .map(|(a, k, n)| (a.to_string(), k.to_string(), n.replace("{name}", &i.name)))
        .collect();
    want.sort();
    let mut got = changes(&plan);
    got.sort();
    assert_eq!(got, want, "{plan:#}");

    // create-all makes exactly the planned calls, then verify passes and a second plan is empty.
    let planned = calls_of_plan(&plan);
    assert!(!planned.is_empty(), "{plan:#}");
    assert_eq!(
        recorded_mutations(&i, || {
            i.ok(&i.create_all_args(&i.reqs, &[]));
        }),
        planned,
        "create-all after plan, for {what}"
    );
    let (code, after) = i.verify(&[]);
    assert_eq!(code, 0, "after the fix: {after:#}");
    let (code, plan2) = i.plan(&i.reqs, &[]);
    assert_eq!(code, 0, "{plan2:#}");

    // Break it again and run the fix verify printed, as printed (through sh): it makes the same
    // calls and verify passes again.
    broken(&i, what).await;
    let (_, again) = verify_read_only(&i, &[]);
    let fix = failing(&again, &first_id, &first_subject)["fix"]
        .as_str()
        .expect("a fix")
        .to_string();
    assert_eq!(
        recorded_mutations(&i, || run_fix(&i, &fix)),
        planned,
        "the printed fix {fix:?} for {what}"
    );
    let (code, after) = i.verify(&[]);
    assert_eq!(code, 0, "after running {fix:?}: {after:#}");
    (report, plan)
}

/// The mutating calls moto saw while `f` ran, sorted.
fn recorded_mutations(i: &Install, f: impl FnOnce()) -> Vec<String> {
    i.moto.start_recording().expect("record");
    f();
    i.moto.stop_recording().expect("stop");
    let mut calls = i.moto.mutating_calls().expect("calls");
    calls.sort();
    calls
}

/// Runs a fix line as a shell would, with the ccoctl under test first on PATH.
fn run_fix(i: &Install, fix: &str) {
    assert!(fix.starts_with("ccoctl aws "), "{fix}");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_ccoctl"));
    let dir = bin.parent().expect("bin dir");
    let path = std::env::var("PATH").unwrap_or_default();
    let out = i
        .command("sh", &["-c".to_string(), fix.to_string()])
        .env("PATH", format!("{}:{path}", dir.display()))
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{fix}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const REGISTRY_ROLE: &str = "{name}-openshift-image-registry-installer-cloud-credentials";

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_role_is_reported_with_its_secret_and_recreated() {
    let (report, plan) = breakage_is_reported_planned_and_fixed(
        "v-delrole",
        "deleted role",
        &[
            ("request.role", REGISTRY_ROLE),
            (
                "request.secret",
                "openshift-image-registry-installer-cloud-credentials-credentials.yaml",
            ),
        ],
        "ccoctl aws create-iam-roles --name v-delrole --region us-east-1 --credentials-requests-dir",
        &[
            ("create", "iam-role", REGISTRY_ROLE),
            ("create", "iam-role-policy", REGISTRY_ROLE),
        ],
    )
    .await;
    let secret = failing(
        &report,
        "request.secret",
        "openshift-image-registry-installer-cloud-credentials",
    );
    assert!(
        secret["message"]
            .as_str()
            .expect("message")
            .contains("which does not exist"),
        "{secret}"
    );
    assert!(plan["changes"][0]["diff"][0]["values"]
        .as_array()
        .expect("subjects")
        .contains(&json!(
            "system:serviceaccount:openshift-image-registry:cluster-image-registry-operator"
        )));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_trust_policy_is_reported_and_replaced() {
    let (report, plan) = breakage_is_reported_planned_and_fixed(
        "v-trust",
        "stale trust",
        &[("request.trust", REGISTRY_ROLE)],
        "create-iam-roles",
        &[("update", "iam-role", REGISTRY_ROLE)],
    )
    .await;
    let msg = failing(&report, "request.trust", "image-registry")["message"]
        .as_str()
        .expect("msg")
        .to_string();
    assert!(
        msg.contains("unexpected subjects: system:serviceaccount:openshift-image-registry:old-sa"),
        "{msg}"
    );
    let diff = &plan["changes"][0]["diff"];
    assert!(diff
        .as_array()
        .expect("diff")
        .contains(&json!({"op": "remove", "field": "subjects",
            "values": ["system:serviceaccount:openshift-image-registry:old-sa"]})));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_missing_an_action_is_reported_and_rewritten() {
    let (report, plan) = breakage_is_reported_planned_and_fixed(
        "v-policy",
        "policy missing an action",
        &[("request.policy", REGISTRY_ROLE)],
        "create-iam-roles",
        &[("update", "iam-role-policy", REGISTRY_ROLE)],
    )
    .await;
    let msg = failing(&report, "request.policy", "image-registry")["message"]
        .as_str()
        .expect("msg")
        .to_string();
    assert!(msg.contains("missing actions: s3:CreateBucket"), "{msg}");
    assert_eq!(
        plan["changes"][0]["diff"],
        json!([{"op": "add", "field": "actions", "values": ["s3:CreateBucket"]}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_made_private_is_reported_by_the_anonymous_reads_and_reopened() {
    breakage_is_reported_planned_and_fixed(
        "v-private",
        "private bucket",
        &[
            ("issuer.bucket_access", "v-private-oidc"),
            (
                "issuer.discovery",
                "https://v-private-oidc.s3.us-east-1.amazonaws.com/.well-known/openid-configuration",
            ),
        ],
        "ccoctl aws create-identity-provider --name v-private --region us-east-1",
        &[("create", "s3-bucket-policy", "{name}-oidc")],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_thumbprint_is_reported_and_updated() {
    let (report, plan) = breakage_is_reported_planned_and_fixed(
        "v-thumb",
        "wrong thumbprint",
        &[("provider.thumbprint", "oidc-provider/v-thumb-oidc")],
        "create-identity-provider",
        &[(
            "update",
            "iam-oidc-provider",
            "arn:aws:iam::123456789012:oidc-provider/{name}-oidc.s3.us-east-1.amazonaws.com",
        )],
    )
    .await;
    let msg = failing(&report, "provider.thumbprint", "oidc-provider")["message"]
        .as_str()
        .expect("msg")
        .to_string();
    assert!(
        msg.contains("records ffffffffffffffffffffffffffffffffffffffff"),
        "{msg}"
    );
    assert_eq!(plan["changes"][0]["diff"][0]["field"], "thumbprint");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_without_the_openshift_client_id_is_reported_and_completed() {
    let (report, plan) = breakage_is_reported_planned_and_fixed(
        "v-clientid",
        "client id removed",
        &[("provider.client_ids", "oidc-provider/v-clientid-oidc")],
        "ccoctl aws create-identity-provider --name v-clientid --region us-east-1",
        &[(
            "update",
            "iam-oidc-provider",
            "arn:aws:iam::123456789012:oidc-provider/{name}-oidc.s3.us-east-1.amazonaws.com",
        )],
    )
    .await;
    let msg = failing(&report, "provider.client_ids", "oidc-provider")["message"]
        .as_str()
        .expect("msg")
        .to_string();
    assert!(msg.contains("lack openshift"), "{msg}");
    assert_eq!(
        plan["changes"][0]["diff"],
        json!([{"op": "add", "field": "client_ids", "values": ["openshift"]}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_identity_provider_is_reported_and_recreated() {
    breakage_is_reported_planned_and_fixed(
        "v-delidp",
        "deleted provider",
        &[("provider.exists", "oidc-provider/v-delidp-oidc")],
        "ccoctl aws create-identity-provider --name v-delidp --region us-east-1",
        &[(
            "create",
            "iam-oidc-provider",
            "arn:aws:iam::123456789012:oidc-provider/{name}-oidc.s3.us-east-1.amazonaws.com",
        )],
    )
    .await;
}

/// Applies YAML documents to the cluster (server-side apply).
async fn apply(client: &kube::Client, yaml: &str) {
    let objs = cco_testsupport::kube_env::parse_manifests(yaml).expect("yaml");
    cco_testsupport::kube_env::apply_objects(client, objs)
        .await
        .expect("apply");
}

fn key_secret(ns: &str, name: &str, public_pem: &str) -> String {
    let indented: String = public_pem.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\nstringData:\n  service-account.pub: |\n{indented}"
    )
}

fn authentication(issuer: &str) -> String {
    format!(
        "apiVersion: config.openshift.io/v1\nkind: Authentication\nmetadata:\n  name: cluster\nspec:\n  serviceAccountIssuer: {issuer}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_checks_find_an_unpublished_rotated_key_a_secret_whose_role_is_gone_and_a_wrong_issuer(
) {
    use cco_testsupport::kube_env::{KubeEnv, KubeEnvOptions};
    let i = Install::created("v-kube");
    let env = KubeEnv::start(KubeEnvOptions::default())
        .await
        .expect("kube-apiserver");
    env.install_corpus_crds().await.expect("crds");
    let client = env.client().await.expect("client");

    // The cluster rotated to a key that is not published yet, and has a next one.
    let rotated = i.tmp.path().join("rotated.pub");
    std::fs::write(&rotated, test_public_key("rotated")).expect("write");
    let next = i.tmp.path().join("next.pub");
    std::fs::write(&next, test_public_key("next")).expect("write");
    apply(
        &client,
        &key_secret(
            "openshift-kube-apiserver",
            "bound-service-account-signing-key",
            &test_public_key("rotated"),
        ),
    )
    .await;
    apply(
        &client,
        &key_secret(
            "openshift-kube-apiserver-operator",
            "next-bound-service-account-signing-key",
            &test_public_key("next"),
        ),
    )
    .await;
    // Its Authentication names another issuer.
    apply(&client, &authentication("https://wrong.example.com")).await;
    // Its Secrets are the ones create-all wrote; then a role they point at is deleted.
    for e in std::fs::read_dir(i.out.join("manifests")).expect("manifests") {
        let p = e.expect("entry").path();
        if p.to_string_lossy().ends_with("-credentials.yaml") {
            let text = std::fs::read_to_string(&p).expect("read");
            let ns = serde_yaml::from_str::<serde_yaml::Value>(&text).expect("yaml")["metadata"]
                ["namespace"]
                .as_str()
                .expect("ns")
                .to_string();
            apply(
                &client,
                &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n{text}"),
            )
            .await;
        }
    }
    broken(&i, "deleted role").await;

    let kubeconfig = Install::s(&env.kubeconfig_path());
    let (code, report) = verify_read_only(&i, &["--kubeconfig", &kubeconfig]);
    assert_eq!(code, 1, "{report:#}");
    let got = failures(&report);
    assert_eq!(got.len(), 4, "{got:?}\n{report:#}");
    let key = failing(&report, "keys.kid", "keys.json");
    assert!(key["message"]
        .as_str()
        .expect("msg")
        .contains("Secret openshift-kube-apiserver/bound-service-account-signing-key"));
    let fix = key["fix"].as_str().expect("fix");
    assert!(
        fix.starts_with("oc get secret -n openshift-kube-apiserver bound-service-account-signing-key")
            && fix.contains("ccoctl aws create-identity-provider --name v-kube --region us-east-1 --public-key-file bound-service-account-signing-key.pub"),
        "{fix}"
    );
    let warn_next: Vec<_> = checks(&report, "keys.next", "")
        .into_iter()
        .filter(|c| c["status"] == "warn")
        .collect();
    assert_eq!(warn_next.len(), 1, "{report:#}");
    failing(&report, "request.role", "image-registry");
    let secret = failing(
        &report,
        "request.secret",
        "Secret openshift-image-registry/installer-cloud-credentials",
    );
    assert!(secret["message"]
        .as_str()
        .expect("msg")
        .contains("which does not exist"));
    assert!(secret["fix"]
        .as_str()
        .expect("fix")
        .contains("&& oc apply -f"));
    let auth = failing(&report, "cluster.authentication", "Authentication cluster");
    assert!(auth["message"]
        .as_str()
        .expect("msg")
        .contains("https://wrong.example.com"));
    assert!(auth["fix"]
        .as_str()
        .expect("fix")
        .contains(&format!("\"serviceAccountIssuer\":\"{}\"", i.issuer())));

    // plan shows what publishing the rotated key and re-creating the role would change.
    let (code, plan) = i.plan(&i.reqs, &["--public-key-file", &Install::s(&rotated)]);
    assert_eq!(code, 2, "{plan:#}");
    let role = i.role_of("openshift-image-registry.yaml");
    let mut got = changes(&plan);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("create".into(), "iam-role".into(), role.clone()),
            ("create".into(), "iam-role-policy".into(), role.clone()),
            (
                "update".into(),
                "s3-object".into(),
                format!("{}/keys.json", i.bucket())
            ),
        ]
    );

    // The fixes: create-all with the rotated key makes exactly the planned calls; then publish the
    // next key too and patch the Authentication.
    i.moto.start_recording().expect("record");
    i.ok(&i.create_all_args(&i.reqs, &["--public-key-file", &Install::s(&rotated)]));
    i.moto.stop_recording().expect("stop");
    let mut made = i.moto.mutating_calls().expect("calls");
    made.sort();
    assert_eq!(made, calls_of_plan(&plan));
    i.ok(&i.args(
        "create-identity-provider",
        &[
            "--public-key-file",
            &Install::s(&next),
            "--output-dir",
            &Install::s(&i.out),
            "--issuer-ca-file",
            &Install::s(&i.ca),
        ],
    ));
    apply(&client, &authentication(&i.issuer())).await;
    let (code, report) = i.verify(&["--kubeconfig", &kubeconfig]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        checks(&report, "keys.next", "")[0]["status"],
        "pass",
        "{report:#}"
    );

    // A key that signs nothing in this cluster: the prune fix republishes every signing key (the
    // output dir's, the cluster's current and next), pruning once, so the next key survives.
    let old = i.tmp.path().join("old.pub");
    std::fs::write(&old, test_public_key("old")).expect("write");
    i.ok(&i.args(
        "create-identity-provider",
        &[
            "--public-key-file",
            &Install::s(&old),
            "--output-dir",
            &Install::s(&i.tmp.path().join("old-out")),
            "--issuer-ca-file",
            &Install::s(&i.ca),
        ],
    ));
    let (code, report) = i.verify(&["--kubeconfig", &kubeconfig]);
    assert_eq!(code, 0, "{report:#}");
    let stale = checks(&report, "keys.stale", "");
    assert_eq!(stale[0]["status"], "warn", "{report:#}");
    let fix = stale[0]["fix"].as_str().expect("fix");
    assert_eq!(fix.matches("--prune-old-keys").count(), 1, "{fix}");
    assert!(
        fix.starts_with(&format!(
            "ccoctl aws create-identity-provider --name v-kube --region us-east-1 --output-dir {}",
            Install::s(&i.out)
        )) && fix.contains("--prune-old-keys && oc get secret -n openshift-kube-apiserver bound-service-account-signing-key")
            && fix.contains("oc get secret -n openshift-kube-apiserver-operator next-bound-service-account-signing-key"),
        "{fix}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authentication_manifest_naming_another_issuer_is_reported_and_rewritten_by_the_fix() {
    let i = Install::created("v-authman");
    let path = i.out.join(cco_core::oidc::AUTHENTICATION_MANIFEST);
    let text = std::fs::read_to_string(&path).expect("manifest");
    assert!(text.contains(&i.issuer()), "{text}");
    std::fs::write(
        &path,
        text.replace(&i.issuer(), "https://wrong.example.com"),
    )
    .expect("write");

    let (code, report) = verify_read_only(&i, &[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        failures(&report),
        vec![("manifest.authentication".to_string(), Install::s(&path))],
        "{report:#}"
    );
    let check = failing(&report, "manifest.authentication", "");
    assert!(
        check["message"]
            .as_str()
            .expect("msg")
            .contains("https://wrong.example.com"),
        "{check}"
    );
    // Nothing to change in AWS: plan is empty; the printed fix rewrites the file without a call.
    let (code, plan) = i.plan(&i.reqs, &[]);
    assert_eq!(code, 0, "{plan:#}");
    let fix = check["fix"].as_str().expect("fix").to_string();
    assert_eq!(
        recorded_mutations(&i, || run_fix(&i, &fix)),
        Vec::<String>::new()
    );
    let (code, after) = i.verify(&[]);
    assert_eq!(code, 0, "after {fix:?}: {after:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_published_key_that_signs_nothing_is_a_warning_and_the_printed_prune_removes_it() {
    let i = Install::created("v-stale");
    let old = i.tmp.path().join("old.pub");
    std::fs::write(&old, test_public_key("old")).expect("write");
    i.ok(&i.args(
        "create-identity-provider",
        &[
            "--public-key-file",
            &Install::s(&old),
            "--output-dir",
            &Install::s(&i.tmp.path().join("old-out")),
            "--issuer-ca-file",
            &Install::s(&i.ca),
        ],
    ));

    let (code, report) = verify_read_only(&i, &[]);
    assert_eq!(code, 0, "a warning does not fail verify: {report:#}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["summary"]["warn"], 1, "{report:#}");
    let stale = checks(&report, "keys.stale", "keys.json");
    assert_eq!(stale.len(), 1, "{report:#}");
    assert_eq!(stale[0]["status"], "warn", "{report:#}");
    assert!(
        stale[0]["message"]
            .as_str()
            .expect("msg")
            .contains("published keys that sign nothing any more"),
        "{report:#}"
    );
    assert_eq!(checks(&report, "keys.kid", "")[0]["status"], "pass");
    let fix = stale[0]["fix"].as_str().expect("fix").to_string();
    assert_eq!(
        recorded_mutations(&i, || run_fix(&i, &fix)),
        vec!["s3:PutObject".to_string()],
        "{fix}"
    );
    let (code, after) = i.verify(&[]);
    assert_eq!(code, 0, "{after:#}");
    assert_eq!(after["summary"]["warn"], 0, "{after:#}");
    assert_eq!(checks(&after, "keys.stale", "")[0]["status"], "pass");
}
