//! `ccoctl gcp` side by side with the reference tool, against fake-gcs-server and the GCP fake: the
//! dry-run files (names, numbering, modes, and snapshots of every file byte for byte), the Secret
//! manifests, custom role ids of the reference scheme (and `delete --force-delete-custom-roles`
//! finding either scheme), `--public-key-file`, GCP's naming rules and the key-pair hint.

use crate::gcp_env;
use crate::snapshot;

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

// The reference tool's templates, verbatim from pkg/cmd/provisioning/gcp/*.go and
// pkg/cmd/provisioning/{constants,utils}.go; the expectations below fill them in as Go's
// fmt.Sprintf does, so they pin the reference's bytes rather than ours.
const REF_SHELL_SCRIPT: &str = "#!/bin/sh\n%s";
const REF_POOL_CMD: &str = "gcloud iam workload-identity-pools create %s --location=global --description=\"Created by OpenShift ccoctl\" --display-name=%s";
const REF_BUCKET_CMD: &str = "gsutil mb -b on -l %s -p %s gs://%s";
const REF_PUBLIC_CMD: &str = "gsutil iam ch allUsers:objectViewer gs://%s";
const REF_PROVIDER_CMD: &str = "gcloud iam workload-identity-pools providers create-oidc %s --location=global --workload-identity-pool=%s --display-name=%s --description=\"%s\" --issuer-uri=%s --allowed-audiences=%s --attribute-mapping=\"google.subject=assertion.sub\"";
const REF_PROVIDER_JWK_CMD: &str = "gcloud iam workload-identity-pools providers create-oidc %s --location=global --workload-identity-pool=%s --display-name=%s --description=\"%s\" --issuer-uri=%s --allowed-audiences=%s --attribute-mapping=\"google.subject=assertion.sub\" --jwk-json-path=%s";
const REF_SA_CMD: &str = "gcloud iam service-accounts create %s --display-name=%s";
const REF_ROLE_CMD: &str = "gcloud iam roles create %s --project=%s --title=%s ---permissions=%s";
const REF_PROJECT_BINDING_CMD: &str =
    "gcloud projects add-iam-policy-binding %s --member=%s --role=%s";
const REF_SA_BINDING_CMD: &str = "gcloud iam service-accounts add-iam-policy-binding <POPULATE_SERVICE_ACCOUNT_EMAIL> --member=%s --role=%s";
const REF_CRED_CONFIG_CMD: &str = "gcloud iam workload-identity-pools create-cred-config projects/%s/locations/global/workloadIdentityPools/%s/providers/%s --service-account=<POPULATE_SERVICE_ACCOUNT_EMAIL> --output-file=%s --credential-source-file=/var/run/secrets/openshift/serviceaccount/token --credential-source-type=text";
const REF_DISCOVERY: &str = "{\n\t\"issuer\": \"%s\",\n\t\"jwks_uri\": \"%s/%s\",\n    \"response_types_supported\": [\n        \"id_token\"\n    ],\n    \"subject_types_supported\": [\n        \"public\"\n    ],\n    \"id_token_signing_alg_values_supported\": [\n        \"RS256\"\n    ],\n    \"claims_supported\": [\n        \"aud\",\n        \"exp\",\n        \"sub\",\n        \"iat\",\n        \"iss\",\n        \"sub\"\n    ]\n}";
const REF_SECRET: &str = "apiVersion: v1\ndata:\n  service_account.json: %s\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\ntype: Opaque";
const REF_SECRET_POPULATE: &str =
    "\nPOPULATE service_account.json FIELD WITH BASE 64 ENCODED CREDENTIALS CONFIG JSON GENERATED FROM SCRIPT %s";

/// Go's `fmt.Sprintf` for `%s` and `%d` verbs.
fn sprintf(template: &str, args: &[&str]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut rest = template;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        out.push_str(args.next().expect("an argument per verb"));
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    assert!(args.next().is_none(), "more arguments than verbs");
    out
}

fn ref_script(commands: &[String]) -> String {
    sprintf(REF_SHELL_SCRIPT, &[&commands.join("\n")])
}

/// The reference's JWKS file: go-jose's field order (use, kty, kid, alg, n, e) written by Go's
/// `json.MarshalIndent(…, "", "    ")`.
fn ref_jwks(key_file: &std::path::Path) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rsa::traits::PublicKeyParts;
    let public =
        cco_core::keys::parse_public_key(&std::fs::read_to_string(key_file).expect("key"), "key")
            .expect("key");
    let kid = cco_core::keys::key_id(&public).expect("kid");
    let n = URL_SAFE_NO_PAD.encode(public.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(public.e().to_bytes_be());
    format!("{{\n    \"keys\": [\n        {{\n            \"use\": \"sig\",\n            \"kty\": \"RSA\",\n            \"kid\": \"{kid}\",\n            \"alg\": \"RS256\",\n            \"n\": \"{n}\",\n            \"e\": \"{e}\"\n        }}\n    ]\n}}")
}

const ORDER_REQUEST: &str = "apiVersion: cloudcredential.openshift.io/v1
kind: CredentialsRequest
metadata:
  name: openshift-zeta-operator
  namespace: openshift-cloud-credential-operator
spec:
  serviceAccountNames:
  - zeta-sa
  - alpha-sa
  secretRef:
    name: zeta-creds
    namespace: openshift-zeta
  cloudTokenPath: /var/run/secrets/custom/token
  providerSpec:
    apiVersion: cloudcredential.openshift.io/v1
    kind: GCPProviderSpec
    predefinedRoles:
    - roles/storage.admin
    - roles/compute.viewer
    permissions:
    - compute.instances.list
    - compute.addresses.get
    - compute.instances.list
";

const PLAIN_REQUEST: &str = "apiVersion: cloudcredential.openshift.io/v1
kind: CredentialsRequest
metadata:
  name: openshift-beta
  namespace: openshift-cloud-credential-operator
spec:
  serviceAccountNames:
  - beta
  secretRef:
    name: beta-creds
    namespace: openshift-beta
  providerSpec:
    apiVersion: cloudcredential.openshift.io/v1
    kind: GCPProviderSpec
    predefinedRoles:
    - roles/dns.admin
";

fn mode_of(p: &std::path::Path) -> u32 {
    snapshot_mode(p)
}

#[test]
fn dry_run_files_are_the_reference_templates_byte_for_byte() {
    let env = start();
    let cwd = env.tmp.path().join("cwd");
    let reqs = env.tmp.path().join("reqs");
    std::fs::create_dir_all(&cwd).expect("cwd");
    std::fs::create_dir_all(&reqs).expect("reqs");
    std::fs::write(reqs.join("a.yaml"), ORDER_REQUEST).expect("a");
    std::fs::write(reqs.join("b.yaml"), PLAIN_REQUEST).expect("b");
    let key = snapshot::fixture_public_key();
    let (name, pool, provider) = ("ccoref", "refpool", "refprov");
    // The output directory as a user types it: relative, with a trailing slash.
    let given = "./out/";
    let out = cwd.join("out");
    let run = |args: &[&str]| {
        let mut a = vec!["gcp"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--project", PROJECT_ID, "--output-dir", given, "--dry-run"]);
        ok(&env.ccoctl_in(&cwd, &a))
    };
    run(&["create-workload-identity-pool", "--name", pool]);
    assert!(
        env.fake.server.requests().is_empty(),
        "the pool dry run calls nothing"
    );
    run(&[
        "create-workload-identity-provider",
        "--name",
        name,
        "--workload-identity-pool",
        pool,
        "--region",
        "europe-west4",
        "--public-key-file",
        s(&key),
    ]);
    assert!(
        env.fake.server.requests().is_empty(),
        "the provider dry run calls nothing"
    );
    run(&[
        "create-service-accounts",
        "--name",
        name,
        "--workload-identity-pool",
        pool,
        "--workload-identity-provider",
        provider,
        "--credentials-requests-dir",
        s(&reqs),
    ]);
    // The one read the reference makes in a dry run: the project, for its number.
    let reads: Vec<String> = env
        .fake
        .server
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with("POST /token"))
        .map(|r| r.split('?').next().unwrap_or_default().to_string())
        .collect();
    // (Resource Manager v3, the official Rust client's; the reference reads v1: the same project.)
    assert_eq!(reads, [format!("GET /v3/projects/{PROJECT_ID}")]);

    let issuer = format!("https://storage.googleapis.com/{name}-oidc");
    let bucket = format!("{name}-oidc");
    let read =
        |f: &str| std::fs::read_to_string(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let mut want: Vec<(String, String, u32)> = vec![
        (
            "01-create-workload-identity-pool.sh".into(),
            ref_script(&[sprintf(REF_POOL_CMD, &[pool, pool])]),
            0o744,
        ),
        (
            "02-create-oidc-bucket.sh".into(),
            ref_script(&[
                sprintf(REF_BUCKET_CMD, &["europe-west4", PROJECT_ID, &bucket]),
                sprintf(REF_PUBLIC_CMD, &[&bucket]),
            ]),
            0o744,
        ),
        (
            "03-openid-configuration".into(),
            sprintf(REF_DISCOVERY, &[&issuer, &issuer, "keys.json"]),
            0o744,
        ),
        ("04-keys.json".into(), ref_jwks(&key), 0o744),
        (
            "05-create-workload-identity-provider.sh".into(),
            ref_script(&[sprintf(
                REF_PROVIDER_CMD,
                &[
                    name,
                    pool,
                    name,
                    "Created By OpenShift ccoctl",
                    &issuer,
                    "openshift",
                ],
            )]),
            0o744,
        ),
    ];
    // Per request, in reading order (a.yaml, then b.yaml).
    let number = cco_testsupport::gcp_fake::PROJECT_NUMBER;
    let principal = |ns: &str, sa: &str| {
        format!("principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/{pool}/subject/system:serviceaccount:{ns}:{sa}")
    };
    let member = "serviceAccount:<POPULATE_SERVICE_ACCOUNT_EMAIL>";
    let zeta = "ccoref-openshift-zeta-operator";
    let role_id = "fakeproject_openshiftzetaoperator";
    want.push((
        format!("06-0-create-{zeta}-sa.sh"),
        ref_script(&[sprintf(REF_SA_CMD, &["ccoref-openshift-z-<ID>", zeta])]),
        0o744,
    ));
    want.push((
        format!("07-0-create-{zeta}-role.sh"),
        ref_script(&[sprintf(
            REF_ROLE_CMD,
            &[
                role_id,
                PROJECT_ID,
                "fake-project-openshift-zeta-operator",
                "compute.instances.list,compute.addresses.get,compute.instances.list",
            ],
        )]),
        0o744,
    ));
    let custom = format!("projects/{PROJECT_ID}/roles/{role_id}");
    want.push((
        format!("08-0-add-iam-policy-binding-for-{zeta}-sa.sh"),
        ref_script(&[
            sprintf(
                REF_PROJECT_BINDING_CMD,
                &[PROJECT_ID, member, "roles/storage.admin"],
            ),
            sprintf(
                REF_PROJECT_BINDING_CMD,
                &[PROJECT_ID, member, "roles/compute.viewer"],
            ),
            sprintf(REF_PROJECT_BINDING_CMD, &[PROJECT_ID, member, &custom]),
            sprintf(
                REF_SA_BINDING_CMD,
                &[
                    &principal("openshift-zeta", "zeta-sa"),
                    "roles/iam.workloadIdentityUser",
                ],
            ),
            sprintf(
                REF_SA_BINDING_CMD,
                &[
                    &principal("openshift-zeta", "alpha-sa"),
                    "roles/iam.workloadIdentityUser",
                ],
            ),
        ]),
        0o744,
    ));
    // filepath.Join("./out/", …) is "out/…".
    let gen0 = format!("09-0-generate-credentials-config-for-{zeta}-sa.sh");
    want.push((
        gen0.clone(),
        ref_script(&[sprintf(
            REF_CRED_CONFIG_CMD,
            &[
                PROJECT_ID,
                pool,
                provider,
                &format!("out/credentials_configurations/{zeta}_credentials_config.json"),
            ],
        )]),
        0o744,
    ));
    let beta = "ccoref-openshift-beta";
    want.push((
        format!("06-1-create-{beta}-sa.sh"),
        ref_script(&[sprintf(REF_SA_CMD, &["ccoref-openshift-b-<ID>", beta])]),
        0o744,
    ));
    want.push((
        format!("08-1-add-iam-policy-binding-for-{beta}-sa.sh"),
        ref_script(&[
            sprintf(
                REF_PROJECT_BINDING_CMD,
                &[PROJECT_ID, member, "roles/dns.admin"],
            ),
            sprintf(
                REF_SA_BINDING_CMD,
                &[
                    &principal("openshift-beta", "beta"),
                    "roles/iam.workloadIdentityUser",
                ],
            ),
        ]),
        0o744,
    ));
    let gen1 = format!("09-1-generate-credentials-config-for-{beta}-sa.sh");
    want.push((
        gen1.clone(),
        ref_script(&[sprintf(
            REF_CRED_CONFIG_CMD,
            &[
                PROJECT_ID,
                pool,
                provider,
                &format!("out/credentials_configurations/{beta}_credentials_config.json"),
            ],
        )]),
        0o744,
    ));
    want.push((
        "manifests/cluster-authentication-02-config.yaml".into(),
        format!("apiVersion: config.openshift.io/v1\nkind: Authentication\nmetadata:\n  name: cluster\nspec:\n  serviceAccountIssuer: {issuer}"),
        0o600,
    ));
    for (ns, secret, gen) in [
        ("openshift-zeta", "zeta-creds", &gen0),
        ("openshift-beta", "beta-creds", &gen1),
    ] {
        want.push((
            format!("manifests/{ns}-{secret}-credentials.yaml"),
            sprintf(REF_SECRET, &["", secret, ns])
                + &sprintf(REF_SECRET_POPULATE, &[&format!("out/{gen}")]),
            0o600,
        ));
    }
    let mut have: Vec<String> = Vec::new();
    for e in std::fs::read_dir(&out).expect("out") {
        let n = e.expect("e").file_name().into_string().expect("utf8");
        if n != "manifests" {
            have.push(n);
        }
    }
    for e in std::fs::read_dir(out.join("manifests")).expect("manifests") {
        have.push(format!(
            "manifests/{}",
            e.expect("e").file_name().into_string().expect("utf8")
        ));
    }
    have.sort();
    let mut names: Vec<String> = want.iter().map(|(n, _, _)| n.clone()).collect();
    names.sort();
    assert_eq!(have, names, "the reference's file names, and no other file");
    for (f, contents, mode) in &want {
        let got = redact_after_prefixes(&read(f), &["ccoref-openshift-z-", "ccoref-openshift-b-"]);
        assert_eq!(&got, contents, "{f}");
        assert_eq!(mode_of(&out.join(f)), *mode, "{f}");
    }

    // pool-jwk-file: the JWKS file and the provider script naming it by its bare file name; no
    // bucket script, no discovery document.
    let jwk_dir = cwd.join("jwk");
    ok(&env.ccoctl_in(
        &cwd,
        &gcp_cmd(
            "create-workload-identity-provider",
            name,
            &[
                "--workload-identity-pool",
                pool,
                "--key-storage-method",
                "pool-jwk-file",
                "--public-key-file",
                s(&key),
                "--output-dir",
                "jwk",
                "--dry-run",
            ],
        ),
    ));
    assert!(!jwk_dir.join("02-create-oidc-bucket.sh").exists());
    assert!(!jwk_dir.join("03-openid-configuration").exists());
    assert_eq!(
        std::fs::read_to_string(jwk_dir.join("04-keys.json")).expect("04"),
        ref_jwks(&key)
    );
    assert_eq!(
        std::fs::read_to_string(jwk_dir.join("05-create-workload-identity-provider.sh"))
            .expect("05"),
        ref_script(&[sprintf(
            REF_PROVIDER_JWK_CMD,
            &[
                name,
                pool,
                name,
                "Created By OpenShift ccoctl",
                &issuer,
                "openshift",
                "04-keys.json"
            ],
        )])
    );
}

/// Without `--output-dir` the reference writes to the current directory and names it, absolute, in
/// script 09 and the Secret manifests.
#[test]
fn dry_run_without_output_dir_names_the_absolute_current_directory() {
    let env = start();
    let cwd = env.tmp.path().join("here");
    let reqs = env.tmp.path().join("reqs");
    std::fs::create_dir_all(&cwd).expect("cwd");
    std::fs::create_dir_all(&reqs).expect("reqs");
    std::fs::write(reqs.join("b.yaml"), PLAIN_REQUEST).expect("b");
    ok(&env.ccoctl_in(
        &cwd,
        &gcp_cmd(
            "create-service-accounts",
            "ccoref",
            &[
                "--workload-identity-pool",
                "refpool",
                "--workload-identity-provider",
                "refprov",
                "--credentials-requests-dir",
                s(&reqs),
                "--dry-run",
            ],
        ),
    ));
    // What getcwd(3) reports for it.
    let abs = cwd.canonicalize().expect("canonical");
    let m =
        std::fs::read_to_string(cwd.join("manifests/openshift-beta-beta-creds-credentials.yaml"))
            .expect("manifest");
    assert!(
        m.ends_with(&format!(
            "GENERATED FROM SCRIPT {}/09-0-generate-credentials-config-for-ccoref-openshift-beta-sa.sh",
            abs.display()
        )),
        "{m}"
    );
}

/// Replaces the 5 random characters after each prefix with `<ID>`.
fn redact_after_prefixes(text: &str, prefixes: &[&str]) -> String {
    let mut t = text.to_string();
    for p in prefixes {
        t = snapshot::redact_after(&t, p, 5, &|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    }
    t
}

#[test]
fn dry_run_writes_the_reference_scripts_and_reads_only_the_project_number() {
    let env = start();
    let out = env.tmp.path().join("dry");
    ok(&env.ccoctl(&gcp_cmd(
        "create-all",
        "dryrun",
        &[
            "--dry-run",
            "--public-key-file",
            s(&snapshot::fixture_public_key()),
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out),
        ],
    )));
    // Only the project number is read (the token request aside), as the reference does.
    let reads: Vec<String> = env
        .fake
        .server
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with("POST /token"))
        .map(|r| r.split('?').next().unwrap_or_default().to_string())
        .collect();
    // (Resource Manager v3, the official Rust client's; the reference reads v1: the same project.)
    assert_eq!(reads, [format!("GET /v3/projects/{PROJECT_ID}")]);
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
        bind.contains("gcloud projects add-iam-policy-binding fake-project --member=serviceAccount:<POPULATE_SERVICE_ACCOUNT_EMAIL> --role=projects/fake-project/roles/fakeproject_openshiftgcpccm"),
        "{bind}"
    );
    assert!(
        bind.ends_with(&format!("--member=principal://iam.googleapis.com/projects/{}/locations/global/workloadIdentityPools/dryrun/subject/system:serviceaccount:openshift-cloud-controller-manager:cloud-controller-manager --role=roles/iam.workloadIdentityUser", cco_testsupport::gcp_fake::PROJECT_NUMBER)),
        "{bind}"
    );
    let role = std::fs::read_to_string(out.join("07-3-create-dryrun-openshift-gcp-ccm-role.sh"))
        .expect("read");
    assert!(
        role.starts_with("#!/bin/sh\ngcloud iam roles create fakeproject_openshiftgcpccm --project=fake-project --title=fake-project-openshift-gcp-ccm ---permissions=compute.addresses.create,"),
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
    let redact = |t: &str| redact_account_ids(&t.replace(s(&out), "<OUT>"), "dryrun");
    insta::assert_snapshot!(
        "gcp_create_all_dry_run",
        snapshot::render_dir(&out, &[], &redact)
    );
    // pool-jwk-file points the provider script at the JWKS file and makes no bucket script.
    let out2 = env.tmp.path().join("dry2");
    ok(&env.ccoctl(&gcp_cmd(
        "create-all",
        "dryrun",
        &[
            "--dry-run",
            "--key-storage-method",
            "pool-jwk-file",
            "--public-key-file",
            s(&snapshot::fixture_public_key()),
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out2),
        ],
    )));
    assert!(!out2.join("02-create-oidc-bucket.sh").exists());
    let p =
        std::fs::read_to_string(out2.join("05-create-workload-identity-provider.sh")).expect("05");
    assert!(p.ends_with(" --jwk-json-path=04-keys.json"), "{p}");
    let only_issuer = |t: &str| t.replace(s(&out2), "<OUT>");
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
}

/// What `create-all` sends GCP, compared with the reference's requests
/// (pkg/cmd/provisioning/gcp/create_workload_identity_provider.go, create_service_accounts.go and
/// pkg/gcp/actuator): a bucket with only name, location and uniform access (no labels); the issuer
/// documents in the reference's bytes, with the content type its storage client sniffs from them;
/// the custom role's permissions in the request's order; service account ids with the reference's
/// random alphabet; and, with `pool-jwk-file`, the provider's `jwksJson` as the reference's JWKS text.
#[test]
fn created_resources_are_what_the_reference_creates() {
    let env = start();
    let reqs = env.tmp.path().join("reqs");
    std::fs::create_dir_all(&reqs).expect("reqs");
    for e in std::fs::read_dir(corpus()).expect("corpus") {
        let p = e.expect("e").path();
        std::fs::copy(&p, reqs.join(p.file_name().expect("name"))).expect("copy");
    }
    std::fs::write(reqs.join("zz-order.yaml"), ORDER_REQUEST).expect("order");
    let key = snapshot::fixture_public_key();
    let name = "resfid";
    let out = env.tmp.path().join("out");
    ok(&env.ccoctl(&gcp_cmd(
        "create-all",
        name,
        &[
            "--public-key-file",
            s(&key),
            "--credentials-requests-dir",
            s(&reqs),
            "--output-dir",
            s(&out),
        ],
    )));
    let bucket = format!("{name}-oidc");
    let issuer = format!("https://storage.googleapis.com/{bucket}");
    // storage.BucketAttrs{Name, Location, UniformBucketLevelAccess: {Enabled: true}}: nothing else,
    // labels included.
    assert_eq!(
        env.fake.bucket_as_created(&bucket).expect("bucket insert"),
        serde_json::json!({"name": bucket, "location": "us",
            "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}}})
    );
    for (object, want) in [
        (
            ".well-known/openid-configuration",
            sprintf(REF_DISCOVERY, &[&issuer, &issuer, "keys.json"]),
        ),
        ("keys.json", ref_jwks(&key)),
    ] {
        let body = env.object(&bucket, object).expect("object");
        assert_eq!(String::from_utf8(body).expect("utf8"), want, "{object}");
        // The reference's writer sets no content type; Go's http.DetectContentType makes JSON text
        // "text/plain; charset=utf-8".
        assert_eq!(
            env.gcs_metadata(&bucket, object)["contentType"],
            "text/plain; charset=utf-8",
            "{object}"
        );
    }
    let role = env
        .fake
        .roles()
        .into_iter()
        .find(|r| r["name"] == "projects/fake-project/roles/fakeproject_openshiftzetaoperator")
        .expect("custom role");
    assert_eq!(
        role["includedPermissions"],
        serde_json::json!(["compute.instances.list", "compute.addresses.get"])
    );
    assert_eq!(role["stage"], "GA");
    assert_eq!(role["title"], "fake-project-openshift-zeta-operator");
    assert_eq!(
        role["description"],
        "Created By OpenShift ccoctl for service account resfid-openshift-zeta-operator"
    );
    // utilrand.String(5): "bcdfghjklmnpqrstvwxz2456789".
    let accounts = env.fake.service_accounts();
    assert_eq!(accounts.len(), 9);
    for a in &accounts {
        let email = a["email"].as_str().expect("email");
        let id = email.split('@').next().expect("id");
        let suffix = &id[id.len() - 5..];
        assert!(
            suffix
                .chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
            "{id}"
        );
        assert_eq!(
            a["description"],
            format!(
                "Created By OpenShift ccoctl for service account {}",
                a["displayName"].as_str().expect("display")
            )
        );
    }
    let pool = &env.fake.pools()[0];
    assert_eq!(pool["displayName"], name);
    assert_eq!(pool["description"], "Created By OpenShift ccoctl");
    let p = &env.fake.providers()[0];
    assert_eq!(p["displayName"], name);
    assert_eq!(p["description"], "Created By OpenShift ccoctl");
    assert_eq!(
        p["attributeMapping"],
        serde_json::json!({"google.subject": "assertion.sub"})
    );
    assert_eq!(
        p["oidc"]["allowedAudiences"],
        serde_json::json!(["openshift"])
    );
    assert!(p["oidc"].get("jwksJson").is_none(), "{p}");

    // pool-jwk-file: the provider holds the reference's JWKS text.
    let jwk = "resfidjwk";
    ok(&env.ccoctl(&gcp_cmd(
        "create-all",
        jwk,
        &[
            "--key-storage-method",
            "pool-jwk-file",
            "--public-key-file",
            s(&key),
            "--credentials-requests-dir",
            s(&reqs),
            "--output-dir",
            s(&env.tmp.path().join("out2")),
        ],
    )));
    let p = env
        .fake
        .providers()
        .into_iter()
        .find(|p| p["displayName"] == jwk)
        .expect("provider");
    assert_eq!(p["oidc"]["jwksJson"], ref_jwks(&key));
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
    let stdout = ok(&env.ccoctl(&gcp_cmd(
        "delete",
        "oldname",
        &[
            "--credentials-requests-dir",
            s(&corpus()),
            "--force-delete-custom-roles",
        ],
    )));
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
    // Only the accepted service-account dry run read anything: the project number.
    assert!(
        env.fake
            .server
            .requests()
            .iter()
            .all(|r| r.starts_with("POST /token")
                || r.split('?').next() == Some("GET /v3/projects/fake-project")),
        "{:?}",
        env.fake.server.requests()
    );
}

#[test]
fn a_missing_public_key_names_the_gcp_command_that_makes_one() {
    let env = start();
    let err = failed(&env.ccoctl(&gcp_cmd(
        "create-workload-identity-provider",
        "nokey",
        &[
            "--workload-identity-pool",
            "nokey",
            "--output-dir",
            s(&env.tmp.path().join("empty")),
            "--dry-run",
        ],
    )));
    assert!(err.contains("ccoctl gcp create-key-pair"), "{err}");
}

#[test]
fn create_all_with_public_key_file_publishes_that_key_and_makes_no_key_pair() {
    let env = start();
    let out = env.tmp.path().join("pk");
    let key = snapshot::fixture_public_key();
    ok(&env.ccoctl(&gcp_cmd(
        "create-all",
        "pkfile",
        &[
            "--public-key-file",
            s(&key),
            "--credentials-requests-dir",
            s(&corpus()),
            "--output-dir",
            s(&out),
        ],
    )));
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
