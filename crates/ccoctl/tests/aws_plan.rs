//! `ccoctl aws plan` against moto and a real TLS issuer front: the plan is exactly what
//! `create-all` then does (compared with the mutating calls moto records), a second plan is empty,
//! and the upgrade story (new actions in two requests, one request retired) is planned and applied.

use crate::common;

use common::front::*;
use serde_json::{json, Value};

/// Runs `args` while moto records; returns the mutating calls, sorted.
fn recorded(i: &Install, args: &[String]) -> Vec<String> {
    i.moto.start_recording().expect("record");
    i.ok(args);
    i.moto.stop_recording().expect("stop");
    let mut calls = i.moto.mutating_calls().expect("calls");
    calls.sort();
    calls
}

#[tokio::test(flavor = "multi_thread")]
async fn create_all_makes_exactly_the_planned_calls_and_a_second_plan_is_empty() {
    let i = Install::new("p-fresh");
    i.moto.start_recording().expect("record");
    let (code, plan) = i.plan(&i.reqs, &[]);
    i.moto.stop_recording().expect("stop");
    assert_eq!(
        i.moto.mutating_calls().expect("calls"),
        Vec::<String>::new(),
        "plan must only read"
    );
    assert_eq!(code, 2, "{plan:#}");
    assert_eq!(plan["version"], 1);
    assert_eq!(
        plan["summary"],
        json!({"create": 20, "update": 0, "delete": 0})
    );
    let expected = calls_of_plan(&plan);
    assert_eq!(expected.len(), 7 + 2 * 7, "{expected:?}");

    let made = recorded(&i, &i.create_all_args(&i.reqs, &[]));
    assert_eq!(made, expected);

    let (code, again) = i.plan(&i.reqs, &[]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(again["changes"], json!([]));
    // Re-running create-all changes nothing either.
    assert_eq!(
        recorded(&i, &i.create_all_args(&i.reqs, &[])),
        Vec::<String>::new()
    );

    // The text form.
    let mut args = i.create_all_args(&i.reqs, &[]);
    args[1] = "plan".into();
    let out = i.ccoctl(&args);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no changes"));
}

/// Adds `action` to the first statement of a request file.
fn add_action(path: &std::path::Path, action: &str) {
    let mut v: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).expect("read")).expect("yaml");
    v["spec"]["providerSpec"]["statementEntries"][0]["action"]
        .as_sequence_mut()
        .expect("actions")
        .push(action.into());
    std::fs::write(path, serde_yaml::to_string(&v).expect("yaml")).expect("write");
}

fn diff_of<'a>(plan: &'a Value, kind: &str, name: &str) -> &'a Value {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["kind"] == kind && c["name"] == name)
        .map(|c| &c["diff"])
        .unwrap_or_else(|| panic!("no {kind} {name} in {plan:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upgrade_plan_shows_added_actions_and_the_retired_request_and_create_all_applies_it() {
    let i = Install::created("p-upgrade");
    // The next release: two requests gained actions, one was retired.
    let next = i.tmp.path().join("next");
    std::fs::create_dir_all(&next).expect("mkdir");
    for e in std::fs::read_dir(&i.reqs).expect("reqs") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, next.join(p.file_name().expect("name"))).expect("copy");
    }
    add_action(
        &next.join("openshift-ingress.yaml"),
        "route53:GetHostedZone",
    );
    add_action(
        &next.join("openshift-machine-api-aws.yaml"),
        "ec2:DescribeCapacityReservations",
    );
    add_action(
        &next.join("openshift-machine-api-aws.yaml"),
        "ec2:DescribeHosts",
    );
    std::fs::remove_file(next.join("cloud-credential-operator-iam-ro.yaml")).expect("rm");
    let ingress = i.role_of("openshift-ingress.yaml");
    let machine = i.role_of("openshift-machine-api-aws.yaml");
    let retired = i.role_of("cloud-credential-operator-iam-ro.yaml");

    // Without --delete-unrequested the retired role is kept and named in a note.
    let (code, plan) = i.plan(&next, &[]);
    assert_eq!(code, 2, "{plan:#}");
    let mut got = changes(&plan);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("update".into(), "iam-role-policy".into(), ingress.clone()),
            ("update".into(), "iam-role-policy".into(), machine.clone()),
        ]
    );
    assert_eq!(
        diff_of(&plan, "iam-role-policy", &ingress),
        &json!([{"op": "add", "field": "actions", "values": ["route53:GetHostedZone"]}])
    );
    assert_eq!(
        diff_of(&plan, "iam-role-policy", &machine),
        &json!([{"op": "add", "field": "actions",
                 "values": ["ec2:DescribeCapacityReservations", "ec2:DescribeHosts"]}])
    );
    let notes = plan["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 1, "{plan:#}");
    assert!(notes[0].as_str().expect("note").contains(&retired));

    // With it, the retired role is planned for deletion too.
    let (code, plan) = i.plan(&next, &["--delete-unrequested"]);
    assert_eq!(code, 2);
    assert!(changes(&plan).contains(&("delete".into(), "iam-role".into(), retired.clone())));
    assert_eq!(
        plan["summary"],
        json!({"create": 0, "update": 2, "delete": 1})
    );
    assert_eq!(
        diff_of(&plan, "iam-role", &retired)[1],
        json!({"op": "remove", "field": "inline policies", "values": [retired]})
    );

    // create-all makes exactly those calls; afterwards there is nothing left to do.
    let made = recorded(&i, &i.create_all_args(&next, &["--delete-unrequested"]));
    assert_eq!(made, calls_of_plan(&plan));
    let c = i.clients().await;
    assert!(c.iam.get_role().role_name(&retired).send().await.is_err());
    let (code, again) = i.plan(&next, &["--delete-unrequested"]);
    assert_eq!(code, 0, "{again:#}");
    let (code, report) = {
        let args = i.args(
            "verify",
            &[
                "--credentials-requests-dir",
                &Install::s(&next),
                "--output-dir",
                &Install::s(&i.out),
                "--issuer-ca-file",
                &Install::s(&i.ca),
                "--output",
                "json",
            ],
        );
        let out = i.ccoctl(&args);
        (
            out.status.code().expect("code"),
            serde_json::from_slice::<Value>(&out.stdout).expect("json"),
        )
    };
    assert_eq!(code, 0, "{report:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_of_create_iam_roles_uses_the_given_provider_and_plans_no_issuer() {
    let i = Install::created("p-roles");
    let arn = i.provider_arn();
    let args = i.args(
        "plan",
        &[
            "--credentials-requests-dir",
            &Install::s(&i.reqs),
            "--identity-provider-arn",
            &arn,
            "--output",
            "json",
        ],
    );
    let out = i.ccoctl(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A different provider ARN: every role's trust changes, nothing else.
    let other = "arn:aws:iam::123456789012:oidc-provider/elsewhere.example.com";
    let args = i.args(
        "plan",
        &[
            "--credentials-requests-dir",
            &Install::s(&i.reqs),
            "--identity-provider-arn",
            other,
            "--output",
            "json",
        ],
    );
    let out = i.ccoctl(&args);
    assert_eq!(out.status.code(), Some(2));
    let plan: Value = serde_json::from_slice(&out.stdout).expect("json");
    let got = changes(&plan);
    assert_eq!(got.len(), 7, "{plan:#}");
    assert!(got.iter().all(|(a, k, _)| a == "update" && k == "iam-role"));
    assert!(plan["changes"][0]["diff"]
        .as_array()
        .expect("diff")
        .contains(&json!({"op": "add", "field": "principals", "values": [other]})));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_fails_plan_with_exit_1_before_any_call() {
    let i = Install::new("p-bad");
    std::fs::write(
        i.reqs.join("zz-bad.yaml"),
        "apiVersion: cloudcredential.openshift.io/v1\nkind: CredentialsRequest\nmetadata: {name: bad, namespace: x}\nspec:\n  providerSpec: {kind: AWSProviderSpec, statementEntries: []}\n",
    )
    .expect("write");
    i.moto.start_recording().expect("record");
    let mut args = i.create_all_args(&i.reqs, &[]);
    args[1] = "plan".into();
    let out = i.ccoctl(&args);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("zz-bad.yaml") && err.contains("secretRef"),
        "{err}"
    );
    assert!(i.moto.recorded_calls().expect("calls").is_empty());
}
