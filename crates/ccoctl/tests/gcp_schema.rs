//! Every request `ccoctl gcp` sends, checked against Google's published discovery documents (the
//! ones google-api-python-client ships, see `cco-testsupport/official/gcp_schema.py`): path and
//! method of a real API method, declared query parameters with allowed values, request bodies with
//! no unknown field and the right types; and every answer the fake gave them fits the response
//! schemas. Runs create-all over the whole corpus, a re-run after drift (custom role patched,
//! service-account trust binding restored), verify, plan, and delete.

use crate::gcp_env;

use gcp_env::*;

use cco_testsupport::gcp_fake::PROJECT_ID;
use cco_testsupport::official;

#[test]
fn every_request_ccoctl_gcp_sends_fits_the_discovery_documents() {
    let env = start();
    let out = env.tmp.path().join("out");
    let dir = corpus();
    let name = "gcpschema";
    let common = |cmd: &'static str| {
        vec![
            "gcp".to_string(),
            cmd.to_string(),
            "--name".into(),
            name.into(),
            "--project".into(),
            PROJECT_ID.into(),
            "--credentials-requests-dir".into(),
            s(&dir).into(),
            "--output-dir".into(),
            s(&out).into(),
        ]
    };
    let run = |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        env.ccoctl(&a)
    };
    let mut create = common("create-all");
    create.extend(["--region".into(), "us-east1".into()]);
    create.push("--enable-tech-preview".into());
    ok(&run(create.clone()));

    // Drift, so the re-run patches a custom role and rewrites a service account's policy.
    let role = env
        .fake
        .roles()
        .into_iter()
        .find(|r| r["deleted"] != true)
        .expect("a custom role");
    let role_id = role["name"]
        .as_str()
        .and_then(|n| n.rsplit('/').next())
        .expect("role id")
        .to_string();
    env.fake.edit_role(&role_id, |r| {
        r["includedPermissions"] = serde_json::json!(["iam.roles.get"]);
    });
    let sa = env
        .fake
        .service_accounts()
        .into_iter()
        .next()
        .expect("an account");
    let email = sa["email"].as_str().expect("email").to_string();
    env.fake
        .edit_service_account_policy(&email, |p| p["bindings"] = serde_json::json!([]));
    ok(&run(create));
    let calls = env.fake.server.requests();
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("PATCH ") && c.contains("/roles/")),
        "the re-run patched no role: {calls:?}"
    );

    let mut verify = common("verify");
    verify.extend(["--output".into(), "json".into()]);
    let _ = run(verify); // its verdict is gcp_verify.rs's business; its requests are checked here
    let mut plan = common("plan");
    plan.extend(["--output".into(), "json".into()]);
    let _ = run(plan);
    let delete = vec![
        "gcp".to_string(),
        "delete".into(),
        "--name".into(),
        name.into(),
        "--project".into(),
        PROJECT_ID.into(),
        "--credentials-requests-dir".into(),
        s(&dir).into(),
        "--force-delete-custom-roles".into(),
    ];
    ok(&run(delete));
    assert!(env.fake.service_accounts().is_empty());

    let report = official::check_schemas("gcp_schema.py", &env.fake.server.exchanges())
        .unwrap_or_else(|e| panic!("{e:#}"));
    for method in [
        "cloudresourcemanager.projects.get",
        "cloudresourcemanager.projects.setIamPolicy",
        "iam.projects.serviceAccounts.create",
        "iam.projects.serviceAccounts.setIamPolicy",
        "iam.projects.serviceAccounts.delete",
        "iam.projects.roles.create",
        "iam.projects.roles.patch",
        "iam.projects.roles.delete",
        "iam.projects.locations.workloadIdentityPools.create",
        "iam.projects.locations.workloadIdentityPools.providers.create",
        "iam.projects.locations.workloadIdentityPools.delete",
        "storage.buckets.insert",
        "storage.buckets.setIamPolicy",
        "storage.objects.insert",
        "storage.buckets.delete",
    ] {
        assert!(
            report.contains(&format!("\"{method}\"")),
            "{method} never called: {report}"
        );
    }
}
