//! Every request `ccoctl azure` sends to Azure Resource Manager, checked against the models of
//! Microsoft's official Python SDKs (`cco-testsupport/official/azure_schema.py`): a known operation
//! for its method and path, an api-version, request bodies with no field the SDK model lacks, no
//! read-only field and every required one; and the fake's answers fit the result models. Runs
//! create-all over the whole corpus, a re-run, verify, plan and delete.

use crate::azure_env;

use azure_env::*;

use cco_testsupport::azure_fake::SUBSCRIPTION;
use cco_testsupport::official;

#[test]
fn every_request_ccoctl_azure_sends_fits_the_sdk_models() {
    let env = start();
    env.fake.insert_resource_group("cluster-rg");
    env.fake.insert_resource_group("dns-rg");
    ok(&env.create_all(&[]));
    ok(&env.create_all(&[]));
    let out = env.out();
    let corpus = corpus();
    for cmd in ["verify", "plan"] {
        // Their verdicts are azure_verify.rs's business; their requests are checked here.
        let _ = env.ccoctl(&[
            "azure",
            cmd,
            "--name",
            "ccoazlive",
            "--region",
            "eastus",
            "--subscription-id",
            SUBSCRIPTION,
            "--installation-resource-group-name",
            "cluster-rg",
            "--dnszone-resource-group-name",
            "dns-rg",
            "--credentials-requests-dir",
            s(&corpus),
            "--output-dir",
            s(&out),
        ]);
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
        "--delete-oidc-resource-group",
    ]));
    let report = official::check_schemas("azure_schema.py", &env.fake.server.exchanges())
        .unwrap_or_else(|e| panic!("{e:#}"));
    for op in [
        "subscriptions.get",
        "resource_groups.create_or_update",
        "storage_accounts.create",
        "storage_accounts.list_keys",
        "user_assigned_identities.create_or_update",
        "federated_identity_credentials.create_or_update",
        "role_definitions.list",
        "role_assignments.create",
        "resource_groups.delete",
    ] {
        assert!(
            report.contains(&format!("\"{op}\"")),
            "{op} never called: {report}"
        );
    }
}
