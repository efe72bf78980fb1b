//! `ccoctl aws` without a cloud: key material, dry runs (which must make no AWS call), and bad inputs.

use crate::common;

use std::path::Path;

use base64::Engine;
use common::*;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use sha2_compat::sha256;

mod sha2_compat {
    /// SHA-256 through the `rsa` crate's re-export, so the test needs no extra dependency.
    pub fn sha256(data: &[u8]) -> Vec<u8> {
        use rsa::sha2::{Digest, Sha256};
        Sha256::digest(data).to_vec()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

#[test]
fn create_key_pair_writes_reference_formats_with_private_modes_and_reuses_the_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("keys");
    ok(&ccoctl(
        None,
        &["aws", "create-key-pair", "--output-dir", s(&out)],
    ));
    let private =
        std::fs::read_to_string(out.join("serviceaccount-signer.private")).expect("private");
    let public = std::fs::read_to_string(out.join("serviceaccount-signer.public")).expect("public");
    assert!(private.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    let key = rsa::RsaPublicKey::from_public_key_pem(&public).expect("pkix");
    assert_eq!(rsa::traits::PublicKeyParts::size(&key) * 8, 4096);
    assert_eq!(
        std::fs::read_to_string(out.join("tls/bound-service-account-signing-key.key"))
            .expect("tls"),
        private
    );
    for f in [
        "serviceaccount-signer.private",
        "serviceaccount-signer.public",
        "tls/bound-service-account-signing-key.key",
    ] {
        assert_eq!(mode(&out.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&out), 0o700);
    assert_eq!(mode(&out.join("tls")), 0o700);
    // A second run reuses the private key.
    ok(&ccoctl(
        None,
        &["aws", "create-key-pair", "--output-dir", s(&out)],
    ));
    assert_eq!(
        std::fs::read_to_string(out.join("serviceaccount-signer.private")).expect("private"),
        private
    );
    assert_eq!(
        std::fs::read_to_string(out.join("serviceaccount-signer.public")).expect("public"),
        public
    );
}

#[test]
fn dry_run_identity_provider_accepts_a_cluster_public_key_and_derives_the_kubernetes_kid() {
    let tmp = tempfile::tempdir().expect("tmp");
    // The migration path: the public key extracted from an existing cluster, in a file of its own.
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("keygen");
    let pem = key
        .to_public_key()
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .expect("pem");
    let pubfile = tmp.path().join("serviceaccount-signer.public");
    std::fs::write(&pubfile, &pem).expect("write");
    let out = tmp.path().join("newstscluster");
    ok(&ccoctl(
        None,
        &[
            "aws",
            "create-identity-provider",
            "--name",
            "mig",
            "--region",
            "us-east-2",
            "--public-key-file",
            s(&pubfile),
            "--output-dir",
            s(&out),
            "--dry-run",
        ],
    ));
    let jwks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("03-keys.json")).expect("keys"))
            .expect("json");
    let der = key.to_public_key().to_public_key_der().expect("der");
    let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256(der.as_bytes()));
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
    assert_eq!(jwks["keys"][0]["use"], "sig");
    let disc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("02-openid-configuration")).expect("disc"),
    )
    .expect("json");
    assert_eq!(
        disc["issuer"],
        "https://mig-oidc.s3.us-east-2.amazonaws.com"
    );
    assert_eq!(
        disc["response_types_supported"],
        serde_json::json!(["id_token"])
    );
    let idp: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("04-iam-identity-provider.json")).expect("idp"),
    )
    .expect("json");
    assert_eq!(idp["Url"], "https://mig-oidc.s3.us-east-2.amazonaws.com");
    assert_eq!(
        idp["ThumbprintList"][0],
        "<enter_tls_fingerprint_for_issuer_url_here>"
    );
    let bucket: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("01-oidc-bucket.json")).expect("bucket"),
    )
    .expect("json");
    assert_eq!(
        bucket["CreateBucketConfiguration"]["LocationConstraint"],
        "us-east-2"
    );
    let auth = std::fs::read_to_string(out.join("manifests/cluster-authentication-02-config.yaml"))
        .expect("auth");
    // The seeds/000 awk one-liner must find the issuer as the second field.
    let line = auth
        .lines()
        .find(|l| l.contains("serviceAccountIssuer"))
        .expect("line");
    assert_eq!(
        line.split_whitespace().nth(1),
        Some("https://mig-oidc.s3.us-east-2.amazonaws.com")
    );
}

#[test]
fn dry_run_create_all_writes_numbered_inputs_and_calls_no_cloud() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    // ccoctl(None, ..) points the SDK at a closed port: any AWS call would fail the command.
    let stdout = ok(&ccoctl(
        None,
        &[
            "aws",
            "create-all",
            "--name",
            "dry",
            "--region",
            "us-east-1",
            "--credentials-requests-dir",
            s(&corpus("aws")),
            "--output-dir",
            s(&out),
            "--dry-run",
        ],
    ));
    assert!(!stdout.contains("Identity Provider created"), "{stdout}");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("dir")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for want in [
        "01-oidc-bucket.json",
        "02-openid-configuration",
        "03-keys.json",
        "04-iam-identity-provider.json",
    ] {
        assert!(names.contains(&want.to_string()), "{want} in {names:?}");
    }
    let roles: Vec<_> = names
        .iter()
        .filter(|n| n.starts_with("05-") && n.ends_with("-role.json"))
        .collect();
    let policies: Vec<_> = names
        .iter()
        .filter(|n| n.starts_with("06-") && n.ends_with("-policy.json"))
        .collect();
    assert_eq!((roles.len(), policies.len()), (7, 7));
    let role: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(roles[0])).expect("role"))
            .expect("json");
    let trust: serde_json::Value =
        serde_json::from_str(role["AssumeRolePolicyDocument"].as_str().expect("doc"))
            .expect("json");
    assert_eq!(
        trust["Statement"][0]["Principal"]["Federated"],
        "arn:aws:iam::<enter_aws_account_id_here>:oidc-provider/dry-oidc.s3.us-east-1.amazonaws.com"
    );
    // Item 1: a Secret manifest per request, as the reference writes it in a dry run: empty ARN and a
    // last line that keeps it from being applied.
    let secrets: Vec<_> = std::fs::read_dir(out.join("manifests"))
        .expect("manifests")
        .map(|e| e.expect("e").path())
        .filter(|p| p.to_string_lossy().ends_with("-credentials.yaml"))
        .collect();
    assert_eq!(secrets.len(), 7, "{secrets:?}");
    let ingress =
        out.join("manifests/openshift-ingress-operator-cloud-credentials-credentials.yaml");
    assert_eq!(mode(&ingress), 0o600);
    assert_eq!(
        std::fs::read_to_string(&ingress).expect("secret"),
        "apiVersion: v1\nstringData:\n  credentials: |-\n    [default]\n    sts_regional_endpoints = regional\n    role_arn = \n    web_identity_token_file = /var/run/secrets/openshift/serviceaccount/token\nkind: Secret\nmetadata:\n  name: cloud-credentials\n  namespace: openshift-ingress-operator\ntype: Opaque\nPOPULATE ROLE ARN AND DELETE THIS LINE"
    );
    // Item 11: the Authentication manifest has the reference's mode.
    assert_eq!(
        mode(&out.join("manifests/cluster-authentication-02-config.yaml")),
        0o600
    );
}

#[test]
fn dry_run_private_bucket_writes_the_cloudfront_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    ok(&ccoctl(
        None,
        &[
            "aws",
            "create-all",
            "--name",
            "dryp",
            "--region",
            "eu-west-1",
            "--create-private-s3-bucket",
            "--credentials-requests-dir",
            s(&corpus("aws")),
            "--output-dir",
            s(&out),
            "--dry-run",
        ],
    ));
    for f in [
        "05-cloudfront-origin-access-control.json",
        "06-put-bucket-policy-to-allow-origin-access-control.json",
        "07-block-public-access-to-oidc-bucket.json",
        "08-cloudfront-distribution.json",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // Item 2: documents, provider, roles and the Authentication manifest all name one issuer, the
    // CloudFront placeholder (standing for the whole URL, as in the reference).
    let placeholder = "<enter_cloudfront_distribution_url_here>";
    let json = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(f)).expect(f)).expect("json")
    };
    assert_eq!(json("02-openid-configuration")["issuer"], placeholder);
    assert_eq!(json("04-iam-identity-provider.json")["Url"], placeholder);
    let auth = std::fs::read_to_string(out.join("manifests/cluster-authentication-02-config.yaml"))
        .expect("a private dry run writes the Authentication manifest");
    assert!(
        auth.ends_with(&format!("serviceAccountIssuer: {placeholder}")),
        "{auth}"
    );
    let role = json("05-5-dryp-openshift-ingress-operator-cloud-credentials-role.json");
    let trust: serde_json::Value =
        serde_json::from_str(role["AssumeRolePolicyDocument"].as_str().expect("doc"))
            .expect("json");
    assert_eq!(
        trust["Statement"][0]["Principal"]["Federated"],
        format!("arn:aws:iam::<enter_aws_account_id_here>:oidc-provider/{placeholder}")
    );
    assert!(
        trust["Statement"][0]["Condition"]["StringEquals"]
            .get(format!("{placeholder}:sub"))
            .is_some(),
        "{trust}"
    );
    assert!(!trust.to_string().contains("dryp-oidc.s3"), "{trust}");
    let dist: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("08-cloudfront-distribution.json")).expect("d"),
    )
    .expect("json");
    let cfg = &dist["DistributionConfigWithTags"]["DistributionConfig"];
    assert_eq!(
        cfg["DefaultCacheBehavior"]["ViewerProtocolPolicy"],
        "https-only"
    );
    assert_eq!(
        cfg["DefaultCacheBehavior"]["AllowedMethods"]["Items"],
        serde_json::json!(["GET", "HEAD"])
    );
}

#[test]
fn dry_run_create_iam_roles_needs_no_identity_provider_in_the_cloud() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    ok(&ccoctl(
        None,
        &[
            "aws",
            "create-iam-roles",
            "--name",
            "r",
            "--region",
            "us-east-1",
            "--identity-provider-arn",
            "arn:aws:iam::111122223333:oidc-provider/x.example.com",
            "--credentials-requests-dir",
            s(&corpus("aws")),
            "--output-dir",
            s(&out),
            "--dry-run",
        ],
    ));
    let policy = std::fs::read_dir(&out)
        .expect("dir")
        .map(|e| e.expect("e").path())
        .find(|p| p.to_string_lossy().contains("ebs-cloud-credentials-policy"))
        .expect("policy file");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(policy).expect("read")).expect("json");
    let doc: serde_json::Value =
        serde_json::from_str(v["PolicyDocument"].as_str().expect("doc")).expect("json");
    assert_eq!(
        doc["Statement"][2]["Condition"]["Bool"]["kms:GrantIsForAWSResource"],
        true
    );
}

// ---- bad inputs: each names the file, the document and the field, and says what to do ----

fn requests_dir(tmp: &Path, body: &str) -> std::path::PathBuf {
    let d = tmp.join("reqs");
    std::fs::create_dir_all(&d).expect("mkdir");
    std::fs::write(d.join("bad.yaml"), body).expect("write");
    d
}

const GOOD: &str = "apiVersion: cloudcredential.openshift.io/v1\nkind: CredentialsRequest\nmetadata: {name: good, namespace: x}\nspec:\n  secretRef: {name: s, namespace: ns}\n  serviceAccountNames: [sa]\n  providerSpec: {kind: AWSProviderSpec, statementEntries: [{effect: Allow, action: ['s3:*'], resource: '*'}]}\n";

fn roles_dry_run(dir: &Path, out: &Path) -> std::process::Output {
    ccoctl(
        None,
        &[
            "aws",
            "create-iam-roles",
            "--name",
            "n",
            "--region",
            "us-east-1",
            "--identity-provider-arn",
            "arn:aws:iam::1:oidc-provider/h",
            "--credentials-requests-dir",
            s(dir),
            "--output-dir",
            s(out),
            "--dry-run",
        ],
    )
}

#[test]
fn malformed_yaml_is_reported_with_file_and_document() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = requests_dir(tmp.path(), &format!("{GOOD}---\nkind: [oops\n"));
    let err = failed(&roles_dry_run(&dir, &tmp.path().join("o")));
    assert!(
        err.contains("bad.yaml (document 1)") && err.contains("malformed YAML"),
        "{err}"
    );
}

#[test]
fn missing_secret_ref_is_reported_with_the_field() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = requests_dir(
        tmp.path(),
        &GOOD.replace("  secretRef: {name: s, namespace: ns}\n", ""),
    );
    let err = failed(&roles_dry_run(&dir, &tmp.path().join("o")));
    assert!(
        err.contains("bad.yaml (document 0)")
            && err.contains("CredentialsRequest good")
            && err.contains("spec.secretRef"),
        "{err}"
    );
}

#[test]
fn missing_service_accounts_is_reported_with_the_field() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = requests_dir(
        tmp.path(),
        &GOOD.replace("  serviceAccountNames: [sa]\n", ""),
    );
    let err = failed(&roles_dry_run(&dir, &tmp.path().join("o")));
    assert!(
        err.contains("bad.yaml (document 0)") && err.contains("spec.serviceAccountNames"),
        "{err}"
    );
}

#[test]
fn a_field_of_the_wrong_type_is_reported_with_its_path() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = requests_dir(
        tmp.path(),
        &GOOD.replace("action: ['s3:*']", "action: 's3:*'"),
    );
    let err = failed(&roles_dry_run(&dir, &tmp.path().join("o")));
    assert!(
        err.contains("spec.providerSpec.statementEntries[0].action"),
        "{err}"
    );
}

#[test]
fn an_unreadable_requests_directory_is_reported() {
    let tmp = tempfile::tempdir().expect("tmp");
    let err = failed(&roles_dry_run(
        &tmp.path().join("missing"),
        &tmp.path().join("o"),
    ));
    assert!(
        err.contains("missing") && err.contains("--credentials-requests-dir"),
        "{err}"
    );
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let out = ccoctl(None, &["aws", "create-all", "--nmae", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--nmae"));
}

#[test]
fn an_invalid_name_is_refused_before_anything_happens() {
    let tmp = tempfile::tempdir().expect("tmp");
    let err = failed(&ccoctl(
        None,
        &[
            "aws",
            "create-all",
            "--name",
            "Bad_Name",
            "--region",
            "us-east-1",
            "--credentials-requests-dir",
            s(&corpus("aws")),
            "--output-dir",
            s(&tmp.path().join("o")),
        ],
    ));
    assert!(err.contains("--name") && err.contains("lowercase"), "{err}");
    assert!(!tmp.path().join("o").exists(), "nothing was written");
}

#[test]
fn an_unreachable_endpoint_fails_with_advice() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("o");
    let err = failed(&ccoctl(
        None,
        &[
            "aws",
            "create-iam-roles",
            "--name",
            "n",
            "--region",
            "us-east-1",
            "--identity-provider-arn",
            "arn:aws:iam::1:oidc-provider/h",
            "--credentials-requests-dir",
            s(&corpus("aws")),
            "--output-dir",
            s(&out),
        ],
    ));
    assert!(
        err.contains("cannot reach the AWS endpoint") && err.contains("AWS_ENDPOINT_URL"),
        "{err}"
    );
    assert!(
        !err.contains("DispatchFailure"),
        "no debug dump in user-facing errors: {err}"
    );
}

#[test]
fn a_bad_identity_provider_arn_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let err = failed(&ccoctl(
        None,
        &[
            "aws",
            "create-iam-roles",
            "--name",
            "n",
            "--region",
            "us-east-1",
            "--identity-provider-arn",
            "arn:aws:iam::1:role/nope",
            "--credentials-requests-dir",
            s(&corpus("aws")),
            "--output-dir",
            s(&tmp.path().join("o")),
            "--dry-run",
        ],
    ));
    assert!(err.contains("--identity-provider-arn"), "{err}");
}

#[test]
fn a_bad_thumbprint_is_a_usage_error() {
    let out = ccoctl(
        None,
        &[
            "aws",
            "create-identity-provider",
            "--name",
            "x",
            "--region",
            "us-east-1",
            "--issuer-thumbprint",
            "xyz",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("40 hexadecimal digits"));
}

#[test]
fn a_missing_public_key_says_how_to_make_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let err = failed(&ccoctl(
        None,
        &[
            "aws",
            "create-identity-provider",
            "--name",
            "x",
            "--region",
            "us-east-1",
            "--output-dir",
            s(tmp.path()),
            "--dry-run",
        ],
    ));
    assert!(
        err.contains("serviceaccount-signer.public") && err.contains("create-key-pair"),
        "{err}"
    );
}

#[test]
fn help_lists_every_reference_flag() {
    let out = ok(&ccoctl(None, &["aws", "create-all", "--help"]));
    for flag in [
        "--name",
        "--region",
        "--output-dir",
        "--credentials-requests-dir",
        "--permissions-boundary-arn",
        "--enable-tech-preview",
        "--create-private-s3-bucket",
        "--dry-run",
    ] {
        assert!(out.contains(flag), "{flag}");
    }
    let out = ok(&ccoctl(
        None,
        &["aws", "create-identity-provider", "--help"],
    ));
    assert!(out.contains("--public-key-file"));
    let out = ok(&ccoctl(None, &["aws", "create-iam-roles", "--help"]));
    assert!(out.contains("--identity-provider-arn"));
}

// ---- issue 8 items that need no cloud ----

fn fixture_public_key() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signer.public")
}

#[test]
fn create_all_publishes_a_given_public_key_and_makes_no_key_pair() {
    // Item 3: runbooks that reuse a cluster's signer pass --public-key-file to create-all.
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let key = fixture_public_key();
    ok(&ccoctl(
        None,
        &[
            "aws",
            "create-all",
            "--name",
            "pk",
            "--region",
            "us-east-1",
            "--credentials-requests-dir",
            s(&corpus("aws")),
            "--public-key-file",
            s(&key),
            "--output-dir",
            s(&out),
            "--dry-run",
        ],
    ));
    assert!(!out.join("serviceaccount-signer.private").exists());
    assert!(!out.join("tls").exists());
    let pem = std::fs::read_to_string(&key).expect("pem");
    let der = rsa::RsaPublicKey::from_public_key_pem(&pem)
        .expect("key")
        .to_public_key_der()
        .expect("der");
    let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256(der.as_bytes()));
    let jwks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("03-keys.json")).expect("keys"))
            .expect("json");
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
}

#[test]
fn dry_run_file_names_carry_the_full_role_name_and_the_cut_name_is_inside() {
    // Item 8: `05-<i>-<name>-<ns>-<secret>-role.json`, the 64-character cut only inside.
    let tmp = tempfile::tempdir().expect("tmp");
    let ns = "openshift-a-namespace-long-enough-to-need-the-role-name-cut";
    let dir = requests_dir(
        tmp.path(),
        &GOOD.replace(
            "{name: s, namespace: ns}",
            &format!("{{name: secret-with-a-long-name, namespace: {ns}}}"),
        ),
    );
    let out = tmp.path().join("o");
    ok(&roles_dry_run(&dir, &out));
    let full = format!("n-{ns}-secret-with-a-long-name");
    assert!(full.len() > 64);
    let role: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(format!("05-0-{full}-role.json"))).expect("role file"),
    )
    .expect("json");
    assert_eq!(role["RoleName"], &full[..64]);
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(format!("06-0-{full}-policy.json")))
            .expect("policy file"),
    )
    .expect("json");
    assert_eq!(policy["PolicyName"], &full[..64]);
}

#[test]
fn create_iam_roles_dry_run_needs_no_region_and_accepts_names_iam_accepts() {
    // Item 9: no --region (the reference's help: only for GovCloud); upper case, '_' and '.' in
    // --name are valid for IAM roles and tags.
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("o");
    let dir = requests_dir(tmp.path(), GOOD);
    ok(&ccoctl(
        None,
        &[
            "aws",
            "create-iam-roles",
            "--name",
            "My_Cluster.v2",
            "--identity-provider-arn",
            "arn:aws:iam::1:oidc-provider/h",
            "--credentials-requests-dir",
            s(&dir),
            "--output-dir",
            s(&out),
            "--dry-run",
        ],
    ));
    assert!(out.join("05-0-My_Cluster.v2-ns-s-role.json").exists());
}

#[test]
fn names_aws_refuses_are_refused_with_aws_reason() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = requests_dir(tmp.path(), GOOD);
    // A comma is valid in a role name but not in the ownership tag key.
    let err = failed(&ccoctl(
        None,
        &[
            "aws",
            "create-iam-roles",
            "--name",
            "a,b",
            "--identity-provider-arn",
            "arn:aws:iam::1:oidc-provider/h",
            "--credentials-requests-dir",
            s(&dir),
            "--output-dir",
            s(&tmp.path().join("o")),
            "--dry-run",
        ],
    ));
    assert!(err.contains("--name") && err.contains("tag keys"), "{err}");
    // Too long for the bucket <name>-oidc.
    let long = "a".repeat(59);
    let err = failed(&ccoctl(
        None,
        &[
            "aws",
            "create-all",
            "--name",
            &long,
            "--region",
            "us-east-1",
            "--credentials-requests-dir",
            s(&dir),
            "--output-dir",
            s(&tmp.path().join("o2")),
            "--dry-run",
        ],
    ));
    assert!(err.contains("S3 allows 3 to 63"), "{err}");
    assert!(!tmp.path().join("o2").exists(), "nothing was written");
}

#[test]
fn secret_ref_names_that_are_not_kubernetes_names_are_refused_before_anything_is_written() {
    for (secret_ref, field) in [
        ("{name: ../../escape, namespace: ns}", "spec.secretRef.name"),
        ("{name: s, namespace: ../..}", "spec.secretRef.namespace"),
        ("{name: Upper, namespace: ns}", "spec.secretRef.name"),
        ("{name: s, namespace: 'a/b'}", "spec.secretRef.namespace"),
    ] {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = requests_dir(
            tmp.path(),
            &GOOD.replace("{name: s, namespace: ns}", secret_ref),
        );
        let out = tmp.path().join("o");
        let err = failed(&roles_dry_run(&dir, &out));
        assert!(
            err.contains("bad.yaml (document 0)")
                && err.contains("CredentialsRequest good")
                && err.contains(field),
            "{err}"
        );
        assert!(!out.exists(), "nothing was written for {secret_ref}");
        assert!(
            !tmp.path().join("escape").exists() && !tmp.path().join("s-credentials.yaml").exists()
        );
    }
}

#[test]
fn bad_statements_are_refused_in_a_dry_run_with_the_field_path() {
    for (from, to, field) in [
        (
            "effect: Allow",
            "effect: Permit",
            "spec.providerSpec.statementEntries[0].effect",
        ),
        (
            "action: ['s3:*']",
            "action: []",
            "spec.providerSpec.statementEntries[0].action",
        ),
    ] {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = requests_dir(tmp.path(), &GOOD.replace(from, to));
        let out = tmp.path().join("o");
        let err = failed(&roles_dry_run(&dir, &out));
        assert!(
            err.contains("bad.yaml (document 0)") && err.contains(field),
            "{err}"
        );
        assert!(!out.exists(), "nothing was written");
    }
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let tmp = tempfile::tempdir().expect("tmp");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    // Without NO_COLOR (which `ccoctl()` sets): stderr is a pipe here, so no escape codes either.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ccoctl"))
        .args([
            "aws",
            "create-iam-roles",
            "--name",
            "n",
            "--identity-provider-arn",
            "arn:aws:iam::1:oidc-provider/h",
            "--credentials-requests-dir",
            s(&empty),
            "--output-dir",
            s(&tmp.path().join("o")),
            "--dry-run",
        ])
        .env_remove("NO_COLOR")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no AWS CredentialsRequests found"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "escape codes in {stderr:?}");
}
