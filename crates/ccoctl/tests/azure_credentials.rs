//! Where `ccoctl azure` gets its Resource Manager token: the reference tool's default credential chain
//! (environment client secret, workload identity, managed identity, Azure CLI) through the Azure SDK
//! for Rust, each source against the ARM fake's Entra ID token endpoint (over TLS, as the SDK
//! requires) or its App Service managed identity endpoint. The Azure CLI cannot log in to a fake, so
//! its test puts a stand-in `az` on `PATH` that prints what `az account get-access-token -o json`
//! prints; it shows the command ccoctl runs and that its output is used, not the real CLI.

use crate::azure_env;

use std::path::Path;
use std::process::{Command, Output};

use azure_env::*;
use cco_testsupport::azure_fake::{
    FEDERATED_TOKEN, IDENTITY_HEADER, MANAGED_CLIENT_ID, SUBSCRIPTION, TENANT, TOKEN,
    WORKLOAD_CLIENT_ID,
};

/// Every variable the credential chain reads, cleared so the host's own never leak in.
const CHAIN_VARS: &[&str] = &[
    "AZURE_ACCESS_TOKEN",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_TOKEN_CREDENTIALS",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "MSI_ENDPOINT",
    "MSI_SECRET",
];

/// `ccoctl azure plan` (read only, a few Resource Manager GETs) with the fake's endpoints, tenant and
/// CA, no credential but `vars`, and `PATH` = `path` (an empty directory unless a test puts `az` there).
fn plan(env: &Env, path: &Path, vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
    cmd.args(azure_cmd(
        "ccoazlive",
        "plan",
        &[
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&env.out()),
            "--output",
            "json",
        ],
    ))
    .env("HOME", env.tmp.path())
    .env("PATH", path);
    for k in CHAIN_VARS {
        cmd.env_remove(k);
    }
    for (k, v) in env.fake.env() {
        if !CHAIN_VARS.contains(&k) {
            cmd.env(k, v);
        }
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("ccoctl runs")
}

fn empty_dir(env: &Env, name: &str) -> std::path::PathBuf {
    let d = env.tmp.path().join(name);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// `plan` succeeded: exit 0 (nothing to do) or 2 (changes planned), with the plan on stdout.
fn planned(o: &Output) {
    assert!(
        matches!(o.status.code(), Some(0 | 2)) && o.stdout.starts_with(b"{"),
        "{:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn client_secret_tokens_are_renewed_before_they_expire() {
    let env = start();
    // Tokens that live one minute: each is within the five-minute renewal window at once, so every
    // Resource Manager call asks Entra ID again (the old code took one token per run).
    env.fake.set_token_lifetime(60);
    let bin = empty_dir(&env, "bin");
    let o = plan(
        &env,
        &bin,
        &[
            ("AZURE_CLIENT_ID", cco_testsupport::azure_fake::CLIENT_ID),
            (
                "AZURE_CLIENT_SECRET",
                cco_testsupport::azure_fake::CLIENT_SECRET,
            ),
        ],
    );
    planned(&o);
    let issued = env.fake.tokens_issued();
    assert!(issued.len() >= 3, "{issued:?}");
    assert!(issued.iter().all(|g| g == "client_secret"), "{issued:?}");
}

#[test]
fn workload_identity_exchanges_the_federated_token_file() {
    let env = start();
    let bin = empty_dir(&env, "bin");
    let file = env.tmp.path().join("azure-identity-token");
    std::fs::write(&file, FEDERATED_TOKEN).expect("token file");
    let o = plan(
        &env,
        &bin,
        &[
            ("AZURE_CLIENT_ID", WORKLOAD_CLIENT_ID),
            ("AZURE_FEDERATED_TOKEN_FILE", s(&file)),
        ],
    );
    planned(&o);
    assert_eq!(env.fake.tokens_issued(), ["client_assertion"]);
    // The fake's federated credential trusts only that token: another one is refused, and the
    // error is Entra ID's, naming the credential.
    std::fs::write(
        &file,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzb21lb25lLWVsc2UifQ.c2ln",
    )
    .expect("token file");
    let o = plan(
        &env,
        &bin,
        &[
            ("AZURE_CLIENT_ID", WORKLOAD_CLIENT_ID),
            ("AZURE_FEDERATED_TOKEN_FILE", s(&file)),
        ],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("WorkloadIdentityCredential"), "{err}");
    assert!(err.contains("AADSTS70021"), "{err}");
}

#[test]
fn managed_identity_uses_the_identity_endpoint() {
    let env = start();
    let bin = empty_dir(&env, "bin");
    let endpoint = env.fake.identity_endpoint();
    let o = plan(
        &env,
        &bin,
        &[
            ("AZURE_CLIENT_ID", MANAGED_CLIENT_ID),
            ("IDENTITY_ENDPOINT", &endpoint),
            ("IDENTITY_HEADER", IDENTITY_HEADER),
        ],
    );
    planned(&o);
    assert_eq!(env.fake.tokens_issued(), ["managed_identity"]);
    // The user-assigned identity is the one AZURE_CLIENT_ID names, as the reference's chain asks.
    let o = plan(
        &env,
        &bin,
        &[
            ("AZURE_CLIENT_ID", "some-other-identity"),
            ("IDENTITY_ENDPOINT", &endpoint),
            ("IDENTITY_HEADER", IDENTITY_HEADER),
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("ManagedIdentityCredential"),
        "{}",
        stderr(&o)
    );
}

/// A stand-in for the Azure CLI (the real one cannot log in to a fake): it records its arguments and
/// prints a token in the shape of `az account get-access-token -o json`. Shell builtins only, as
/// `PATH` holds nothing else.
fn stand_in_az(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs()
        + 3600;
    let script = format!(
        "#!/bin/sh\necho \"$@\" > '{args}'\nprintf '%s' '{{\"accessToken\": \"{TOKEN}\", \"expiresOn\": \"2099-01-01 00:00:00.000000\", \"expires_on\": {expires}, \"subscription\": \"{SUBSCRIPTION}\", \"tenant\": \"{TENANT}\", \"tokenType\": \"Bearer\"}}'\n",
        args = dir.join("az-args").display(),
    );
    let az = dir.join("az");
    std::fs::write(&az, script).expect("az");
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn azure_cli_stand_in_is_used_when_nothing_else_is_configured() {
    let env = start();
    let bin = empty_dir(&env, "bin");
    stand_in_az(&bin);
    let o = plan(&env, &bin, &[]);
    planned(&o);
    // No token came from the fake's Entra ID: the Resource Manager calls carried the CLI's.
    assert!(env.fake.tokens_issued().is_empty());
    let args = std::fs::read_to_string(bin.join("az-args")).expect("az ran");
    assert_eq!(
        args.trim(),
        format!(
            "account get-access-token -o json --scope {}/.default",
            env.fake.endpoint()
        )
    );
    // AZURE_TOKEN_CREDENTIALS=dev skips the environment credential, as in the reference.
    let o = plan(
        &env,
        &bin,
        &[
            ("AZURE_CLIENT_ID", cco_testsupport::azure_fake::CLIENT_ID),
            ("AZURE_CLIENT_SECRET", "wrong"),
            ("AZURE_TOKEN_CREDENTIALS", "dev"),
        ],
    );
    planned(&o);
    assert!(env.fake.tokens_issued().is_empty());
}

#[test]
fn no_credential_names_every_source_tried_and_what_to_set() {
    let env = start();
    let bin = empty_dir(&env, "bin");
    let o = plan(&env, &bin, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    for want in [
        "AZURE_ACCESS_TOKEN: not set",
        "EnvironmentCredential: AZURE_CLIENT_ID not set",
        "WorkloadIdentityCredential: AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE not set",
        "ManagedIdentityCredential:",
        "AzureCLICredential: az not found on PATH",
        "AZURE_CLIENT_SECRET",
        "az login",
    ] {
        assert!(err.contains(want), "{want:?} missing from:\n{err}");
    }
    assert!(env.fake.server.requests().is_empty());
}
