//! `ccoctl aws` against the local AWS emulator (moto), checked through the emulator's own API.

use crate::common;
use crate::snapshot;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::*;
use serde_json::json;

/// One pre-generated signing key for the tests that are not about key generation.
fn seed_key(out: &Path) {
    static PEM: OnceLock<String> = OnceLock::new();
    let pem = PEM.get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let k = rsa::RsaPrivateKey::new(&mut rand_core(), 2048).expect("keygen");
        k.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pem")
            .to_string()
    });
    std::fs::create_dir_all(out).expect("mkdir");
    std::fs::write(out.join("serviceaccount-signer.private"), pem).expect("write");
}

fn rand_core() -> rsa::rand_core::OsRng {
    rsa::rand_core::OsRng
}

fn create_all(
    moto: &Moto,
    name: &str,
    region: &str,
    dir: &Path,
    out: &Path,
    extra: &[&str],
) -> String {
    let mut args = vec![
        "aws",
        "create-all",
        "--name",
        name,
        "--region",
        region,
        "--credentials-requests-dir",
        dir.to_str().expect("utf8"),
        "--output-dir",
        out.to_str().expect("utf8"),
        "--issuer-thumbprint",
        THUMBPRINT,
    ];
    args.extend_from_slice(extra);
    ok(&ccoctl(Some(moto), &args))
}

#[tokio::test(flavor = "multi_thread")]
async fn create_all_with_public_bucket_creates_tagged_issuer_provider_and_roles() {
    let moto = Moto::start().expect("moto");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    seed_key(&out);
    let stdout = create_all(&moto, "pub1", "us-east-2", &corpus("aws"), &out, &[]);
    let provider_arn =
        "arn:aws:iam::123456789012:oidc-provider/pub1-oidc.s3.us-east-2.amazonaws.com";
    assert!(
        stdout.trim_end().ends_with(&format!(
            "Identity Provider created with ARN: {provider_arn}"
        )) || stdout.contains(provider_arn),
        "{stdout}"
    );
    let c = clients(&moto, "us-east-2").await;

    // Bucket: tags, public-access block that allows the policy, anonymous read policy.
    let tags =
        c.s3.get_bucket_tagging()
            .bucket("pub1-oidc")
            .send()
            .await
            .expect("tagging");
    let tags: Vec<_> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert!(tags.contains(&(
        "openshift.io/cloud-credential-operator/pub1".into(),
        "owned".into()
    )));
    assert!(tags.contains(&("Name".into(), "pub1".into())));
    let pab =
        c.s3.get_public_access_block()
            .bucket("pub1-oidc")
            .send()
            .await
            .expect("pab");
    let pab = pab.public_access_block_configuration().expect("config");
    assert_eq!(pab.block_public_policy(), Some(false));
    assert_eq!(pab.restrict_public_buckets(), Some(false));
    let policy =
        c.s3.get_bucket_policy()
            .bucket("pub1-oidc")
            .send()
            .await
            .expect("policy");
    let policy: serde_json::Value =
        serde_json::from_str(policy.policy().expect("doc")).expect("json");
    // Item 11: the reference's statement shape.
    assert_eq!(
        policy["Statement"][0],
        json!({"Sid": "AllowReadPublicAccess", "Principal": "*", "Effect": "Allow",
               "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::pub1-oidc/*"]})
    );
    // Item 6: both objects carry the ownership tags, so the reference's `delete` removes them.
    for key in [".well-known/openid-configuration", "keys.json"] {
        let t =
            c.s3.get_object_tagging()
                .bucket("pub1-oidc")
                .key(key)
                .send()
                .await
                .expect("object tagging");
        let mut tags: Vec<_> = t
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        tags.sort();
        assert_eq!(
            tags,
            vec![
                ("Name".to_string(), "pub1".to_string()),
                (
                    "openshift.io/cloud-credential-operator/pub1".to_string(),
                    "owned".to_string()
                )
            ],
            "{key}"
        );
    }

    // Documents: read back with signed requests (anonymous GETs under /.well-known hit moto's Cognito).
    let disc = get_json(&c, "pub1-oidc", ".well-known/openid-configuration").await;
    assert_eq!(
        disc["issuer"],
        "https://pub1-oidc.s3.us-east-2.amazonaws.com"
    );
    assert_eq!(
        disc["jwks_uri"],
        "https://pub1-oidc.s3.us-east-2.amazonaws.com/keys.json"
    );
    let keys = get_json(&c, "pub1-oidc", "keys.json").await;
    assert_eq!(keys["keys"].as_array().expect("keys").len(), 1);
    assert_eq!(keys["keys"][0]["alg"], "RS256");

    // OIDC provider: client IDs, thumbprint, tags.
    let p = c
        .iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(provider_arn)
        .send()
        .await
        .expect("provider");
    let mut ids = p.client_id_list().to_vec();
    ids.sort();
    assert_eq!(ids, vec!["openshift", "sts.amazonaws.com"]);
    assert_eq!(p.thumbprint_list(), [THUMBPRINT]);
    let pt = c
        .iam
        .list_open_id_connect_provider_tags()
        .open_id_connect_provider_arn(provider_arn)
        .send()
        .await
        .expect("tags");
    assert!(pt
        .tags()
        .iter()
        .any(|t| t.key() == "openshift.io/cloud-credential-operator/pub1" && t.value() == "owned"));

    // Roles: one per corpus request, trust policy, inline policy with conditions, tags.
    let roles: Vec<_> = role_names(&c)
        .await
        .into_iter()
        .filter(|r| r.starts_with("pub1-"))
        .collect();
    assert_eq!(roles.len(), 7, "{roles:?}");
    let ebs = "pub1-openshift-cluster-csi-drivers-ebs-cloud-credentials";
    let role = c.iam.get_role().role_name(ebs).send().await.expect("role");
    let role = role.role().expect("role");
    let trust = decode_policy(role.assume_role_policy_document().expect("trust"));
    assert_eq!(
        trust["Statement"][0]["Principal"]["Federated"],
        provider_arn
    );
    assert_eq!(
        trust["Statement"][0]["Action"],
        "sts:AssumeRoleWithWebIdentity"
    );
    assert_eq!(
        trust["Statement"][0]["Condition"]["StringEquals"]
            ["pub1-oidc.s3.us-east-2.amazonaws.com:sub"],
        json!([
            "system:serviceaccount:openshift-cluster-csi-drivers:aws-ebs-csi-driver-operator",
            "system:serviceaccount:openshift-cluster-csi-drivers:aws-ebs-csi-driver-controller-sa"
        ])
    );
    assert!(role
        .tags()
        .iter()
        .any(|t| t.key() == "openshift.io/cloud-credential-operator/pub1"));
    let inline = c
        .iam
        .get_role_policy()
        .role_name(ebs)
        .policy_name(ebs)
        .send()
        .await
        .expect("inline policy");
    let inline = decode_policy(inline.policy_document());
    let stmts = inline["Statement"].as_array().expect("statements");
    assert_eq!(stmts.len(), 3);
    assert_eq!(
        stmts[2]["Condition"]["Bool"]["kms:GrantIsForAWSResource"],
        json!(true)
    );
    assert!(stmts[0]["Action"]
        .as_array()
        .expect("actions")
        .contains(&json!("ec2:AttachVolume")));

    // Secret manifests and the Authentication manifest.
    let secret =
        out.join("manifests/openshift-cluster-csi-drivers-ebs-cloud-credentials-credentials.yaml");
    assert_eq!(mode(&secret), 0o600);
    let s: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&secret).expect("read")).expect("yaml");
    assert_eq!(
        s["stringData"]["credentials"].as_str().expect("credentials"),
        format!("[default]\nsts_regional_endpoints = regional\nrole_arn = arn:aws:iam::123456789012:role/{ebs}\nweb_identity_token_file = /var/run/secrets/openshift/serviceaccount/token")
    );
    let auth = std::fs::read_to_string(out.join("manifests/cluster-authentication-02-config.yaml"))
        .expect("auth");
    assert!(auth.contains("serviceAccountIssuer: https://pub1-oidc.s3.us-east-2.amazonaws.com"));
    // Every Secret manifest and the Authentication manifest, byte for byte, with their modes.
    insta::assert_snapshot!(snapshot::render_dir(&out.join("manifests"), &[], &|t| t.to_string()));
    assert_eq!(mode(&out.join("tls")), 0o700);
    assert_eq!(
        mode(&out.join("tls/bound-service-account-signing-key.key")),
        0o600
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rerun_creates_no_duplicates_and_repairs_a_stale_trust_policy() {
    let moto = Moto::start().expect("moto");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    seed_key(&out);
    create_all(&moto, "rerun", "us-east-1", &corpus("aws"), &out, &[]);
    let c = clients(&moto, "us-east-1").await;
    let role = "rerun-openshift-ingress-operator-cloud-credentials";
    c.iam
        .update_assume_role_policy()
        .role_name(role)
        .policy_document(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}).to_string())
        .send()
        .await
        .expect("tamper");
    let before = role_names(&c).await.len();
    let again = create_all(&moto, "rerun", "us-east-1", &corpus("aws"), &out, &[]);
    // Item 11: a provider that already existed is reported as found, not as created.
    assert!(!again.contains("Identity Provider created"), "{again}");
    assert!(
        again.contains("Existing Identity Provider found with ARN: arn:aws:iam::123456789012:oidc-provider/rerun-oidc.s3.us-east-1.amazonaws.com\n"),
        "{again}"
    );
    assert_eq!(role_names(&c).await.len(), before);
    assert_eq!(
        c.iam
            .list_open_id_connect_providers()
            .send()
            .await
            .expect("list")
            .open_id_connect_provider_list()
            .len(),
        1
    );
    assert_eq!(
        c.s3.list_buckets()
            .send()
            .await
            .expect("buckets")
            .buckets()
            .len(),
        1
    );
    let got = c.iam.get_role().role_name(role).send().await.expect("role");
    let trust = decode_policy(
        got.role()
            .expect("role")
            .assume_role_policy_document()
            .expect("doc"),
    );
    assert_eq!(
        trust["Statement"][0]["Action"],
        "sts:AssumeRoleWithWebIdentity"
    );
    // The published JWKS still has exactly one key: the same key is not duplicated on re-run.
    let keys = get_json(&c, "rerun-oidc", "keys.json").await;
    assert_eq!(keys["keys"].as_array().expect("keys").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_run_converges_on_rerun_without_duplicates() {
    let moto = Moto::start().expect("moto");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let reqs = tmp.path().join("reqs");
    seed_key(&out);
    synthetic_requests(&reqs, 120);
    // Start a run and kill it as soon as the first role is reported.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ccoctl"))
        .args([
            "aws",
            "create-all",
            "--name",
            "intr",
            "--region",
            "us-east-1",
            "--concurrency",
            "2",
            "--credentials-requests-dir",
            reqs.to_str().expect("utf8"),
            "--output-dir",
            out.to_str().expect("utf8"),
            "--issuer-thumbprint",
            THUMBPRINT,
        ])
        .envs(moto.env())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    for line in BufReader::new(stdout).lines() {
        if line.expect("line").contains("Secret manifest saved") {
            break;
        }
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
    let c = clients(&moto, "us-east-1").await;
    let partial = role_names(&c).await.len();
    assert!(
        partial < 120,
        "the run was not interrupted ({partial} roles)"
    );
    // Re-run to completion.
    create_all(&moto, "intr", "us-east-1", &reqs, &out, &[]);
    let roles = role_names(&c).await;
    assert_eq!(roles.len(), 120);
    for r in &roles {
        let p = c
            .iam
            .list_role_policies()
            .role_name(r)
            .send()
            .await
            .expect("policies");
        assert_eq!(
            p.policy_names(),
            [r.as_str()],
            "role {r} has exactly its inline policy"
        );
    }
    let manifests = std::fs::read_dir(out.join("manifests"))
        .expect("dir")
        .count();
    assert_eq!(
        manifests, 121,
        "120 Secrets and the Authentication manifest, no temporary files"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn private_bucket_is_served_through_cloudfront_origin_access_control() {
    let moto = Moto::start().expect("moto");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    seed_key(&out);
    let stdout = create_all(
        &moto,
        "priv1",
        "us-west-2",
        &corpus("aws"),
        &out,
        &["--create-private-s3-bucket"],
    );
    let c = clients(&moto, "us-west-2").await;
    let pab =
        c.s3.get_public_access_block()
            .bucket("priv1-oidc")
            .send()
            .await
            .expect("pab");
    let pab = pab.public_access_block_configuration().expect("config");
    assert_eq!(
        (
            pab.block_public_acls(),
            pab.ignore_public_acls(),
            pab.block_public_policy(),
            pab.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let dists = c.cf.list_distributions().send().await.expect("list");
    let items = dists.distribution_list().expect("list").items();
    assert_eq!(items.len(), 1);
    let d = &items[0];
    let issuer = format!("https://{}", d.domain_name());
    assert!(
        stdout.contains(&format!("Issuer URL: {issuer}")),
        "{stdout}"
    );
    let cfg =
        c.cf.get_distribution_config()
            .id(d.id())
            .send()
            .await
            .expect("config");
    let cfg = cfg.distribution_config().expect("config");
    let origin = &cfg.origins().expect("origins").items()[0];
    assert_eq!(
        origin.domain_name(),
        "priv1-oidc.s3.us-west-2.amazonaws.com"
    );
    let tags =
        c.cf.list_tags_for_resource()
            .resource(d.arn())
            .send()
            .await
            .expect("tags");
    assert!(tags
        .tags()
        .expect("tags")
        .items()
        .iter()
        .any(|t| t.key() == "openshift.io/cloud-credential-operator/priv1"));
    let oacs =
        c.cf.list_origin_access_controls()
            .send()
            .await
            .expect("oacs");
    let oacs = oacs.origin_access_control_list().expect("list").items();
    assert!(oacs.iter().any(|o| o.name() == "priv1-oidc"));
    let policy =
        c.s3.get_bucket_policy()
            .bucket("priv1-oidc")
            .send()
            .await
            .expect("policy");
    let policy: serde_json::Value =
        serde_json::from_str(policy.policy().expect("doc")).expect("json");
    assert_eq!(
        policy["Statement"][0]["Principal"]["Service"],
        "cloudfront.amazonaws.com"
    );
    assert!(
        policy["Statement"][0]["Condition"]["StringEquals"]["AWS:SourceArn"]
            .as_str()
            .expect("arn")
            .ends_with(&format!("distribution/{}", d.id()))
    );
    let auth = std::fs::read_to_string(out.join("manifests/cluster-authentication-02-config.yaml"))
        .expect("auth");
    assert!(auth.contains(&format!("serviceAccountIssuer: {issuer}")));
    // Re-run reuses the distribution and the origin access control.
    create_all(
        &moto,
        "priv1",
        "us-west-2",
        &corpus("aws"),
        &out,
        &["--create-private-s3-bucket"],
    );
    assert_eq!(
        c.cf.list_distributions()
            .send()
            .await
            .expect("list")
            .distribution_list()
            .expect("l")
            .items()
            .len(),
        1
    );
    assert_eq!(
        c.cf.list_origin_access_controls()
            .send()
            .await
            .expect("l")
            .origin_access_control_list()
            .expect("l")
            .items()
            .len(),
        1
    );
    // Delete removes all of it.
    ok(&ccoctl(
        Some(&moto),
        &["aws", "delete", "--name", "priv1", "--region", "us-west-2"],
    ));
    assert_eq!(tagged_leftovers(&c, "priv1").await, Vec::<String>::new());
    assert!(c
        .cf
        .list_origin_access_controls()
        .send()
        .await
        .expect("l")
        .origin_access_control_list()
        .is_none_or(|l| l.items().is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_removes_everything_tagged_and_spares_unrelated_roles() {
    let moto = Moto::start().expect("moto");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    seed_key(&out);
    // Every AWS document in a multi-cloud, multi-document file goes through create-all.
    let mixed = tmp.path().join("mixed");
    std::fs::create_dir(&mixed).expect("mkdir");
    let mut all = String::new();
    for cloud in ["aws", "gcp", "azure", "metal3providerspec"] {
        for f in std::fs::read_dir(corpus(cloud)).expect("corpus") {
            all.push_str(&std::fs::read_to_string(f.expect("entry").path()).expect("read"));
            all.push_str("\n---\n");
        }
    }
    std::fs::write(mixed.join("all.yaml"), all).expect("write");
    create_all(&moto, "del1", "us-east-1", &mixed, &out, &[]);
    let c = clients(&moto, "us-east-1").await;
    assert_eq!(role_names(&c).await.len(), 7);
    let unrelated_policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}).to_string();
    // Same prefix but not ours, and ours-looking tag of another name.
    c.iam
        .create_role()
        .role_name("del1-handmade")
        .assume_role_policy_document(&unrelated_policy)
        .send()
        .await
        .expect("role");
    c.iam
        .create_role()
        .role_name("other-role")
        .assume_role_policy_document(&unrelated_policy)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("openshift.io/cloud-credential-operator/del2")
                .value("owned")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("role");
    let dry = ok(&ccoctl(
        Some(&moto),
        &[
            "aws",
            "delete",
            "--name",
            "del1",
            "--region",
            "us-east-1",
            "--dry-run",
        ],
    ));
    assert!(
        dry.contains("Would delete IAM role del1-openshift-ingress-operator-cloud-credentials"),
        "{dry}"
    );
    assert_eq!(role_names(&c).await.len(), 9, "dry run deleted nothing");
    ok(&ccoctl(
        Some(&moto),
        &["aws", "delete", "--name", "del1", "--region", "us-east-1"],
    ));
    assert_eq!(tagged_leftovers(&c, "del1").await, Vec::<String>::new());
    let mut left = role_names(&c).await;
    left.sort();
    assert_eq!(left, vec!["del1-handmade", "other-role"]);
    // Delete again: nothing to do, still succeeds.
    let again = ok(&ccoctl(
        Some(&moto),
        &["aws", "delete", "--name", "del1", "--region", "us-east-1"],
    ));
    assert!(again.contains("Nothing owned by del1"), "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn create_iam_roles_uses_the_given_provider_and_permissions_boundary() {
    let moto = Moto::start().expect("moto");
    let tmp = tempfile::tempdir().expect("tmp");
    let reqs = tmp.path().join("reqs");
    std::fs::create_dir(&reqs).expect("mkdir");
    // Long names are cut to 64 characters.
    let long_ns = "openshift-a-very-long-namespace-name-for-testing-the-role-limit";
    std::fs::write(
        reqs.join("r.yaml"),
        format!(
            "apiVersion: cloudcredential.openshift.io/v1\nkind: CredentialsRequest\nmetadata: {{name: manual-sts, namespace: manual-sts}}\nspec:\n  providerSpec:\n    apiVersion: cloudcredential.openshift.io/v1\n    kind: AWSProviderSpec\n    statementEntries:\n    - action: ['s3:Get*', 's3:Put*']\n      effect: Allow\n      resource: '*'\n  secretRef: {{name: manual-sts, namespace: {long_ns}}}\n  serviceAccountNames: [sa-manual-sts]\n  cloudTokenPath: /var/run/secrets/custom/token\n"
        ),
    )
    .expect("write");
    let arn = "arn:aws:iam::123456789012:oidc-provider/manual-sts-oidc.s3.us-east-1.amazonaws.com";
    let boundary = "arn:aws:iam::aws:policy/PowerUserAccess";
    let outdir = tmp.path().join("outputs");
    ok(&ccoctl(
        Some(&moto),
        &[
            "aws",
            "create-iam-roles",
            "--name",
            "prefix-role",
            "--region",
            "us-east-1",
            "--credentials-requests-dir",
            reqs.to_str().expect("utf8"),
            "--identity-provider-arn",
            arn,
            "--permissions-boundary-arn",
            boundary,
            "--output-dir",
            outdir.to_str().expect("utf8"),
        ],
    ));
    let c = clients(&moto, "us-east-1").await;
    let names = role_names(&c).await;
    assert_eq!(names.len(), 1);
    let name = &names[0];
    assert_eq!(name.len(), 64);
    assert!(format!("prefix-role-{long_ns}-manual-sts").starts_with(name.as_str()));
    let role = c.iam.get_role().role_name(name).send().await.expect("role");
    let role = role.role().expect("role");
    assert_eq!(
        role.permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn()),
        Some(boundary)
    );
    let trust = decode_policy(role.assume_role_policy_document().expect("doc"));
    assert_eq!(trust["Statement"][0]["Principal"]["Federated"], arn);
    let secret = std::fs::read_to_string(
        outdir.join(format!("manifests/{long_ns}-manual-sts-credentials.yaml")),
    )
    .expect("secret");
    assert!(
        secret.contains(&format!("role_arn = arn:aws:iam::123456789012:role/{name}")),
        "{secret}"
    );
    assert!(
        secret.contains("web_identity_token_file = /var/run/secrets/custom/token"),
        "{secret}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn migration_flow_identity_provider_then_roles_from_its_printed_arn() {
    // seeds/000 "existing cluster": the public key comes from the cluster; the ARN is on the last line.
    let moto = Moto::start().expect("moto");
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("newstscluster");
    let key = rsa::RsaPrivateKey::new(&mut rand_core(), 2048).expect("keygen");
    std::fs::create_dir(&dir).expect("mkdir");
    use rsa::pkcs8::EncodePublicKey;
    std::fs::write(
        dir.join("serviceaccount-signer.public"),
        key.to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pem"),
    )
    .expect("write");
    let stdout = ok(&ccoctl(
        Some(&moto),
        &[
            "aws",
            "create-identity-provider",
            "--output-dir",
            dir.to_str().expect("utf8"),
            "--name",
            "newsts",
            "--region",
            "us-east-2",
            "--issuer-thumbprint",
            THUMBPRINT,
        ],
    ));
    let last = stdout.lines().last().expect("output");
    let arn = last.rsplit(' ').next().expect("arn");
    assert_eq!(
        arn, "arn:aws:iam::123456789012:oidc-provider/newsts-oidc.s3.us-east-2.amazonaws.com",
        "{stdout}"
    );
    assert!(
        !dir.join("serviceaccount-signer.private").exists(),
        "no private key is made in this flow"
    );
    ok(&ccoctl(
        Some(&moto),
        &[
            "aws",
            "create-iam-roles",
            "--output-dir",
            dir.to_str().expect("utf8"),
            "--name",
            "newsts",
            "--identity-provider-arn",
            arn,
            "--region",
            "us-east-2",
            "--credentials-requests-dir",
            corpus("aws").to_str().expect("utf8"),
        ],
    ));
    let c = clients(&moto, "us-east-2").await;
    assert_eq!(role_names(&c).await.len(), 7);
    assert_eq!(
        std::fs::read_dir(dir.join("manifests"))
            .expect("manifests")
            .count(),
        8
    );
    // Rotation: a new key is published beside the old one.
    let key2 = rsa::RsaPrivateKey::new(&mut rand_core(), 2048).expect("keygen");
    let new_pub = tmp.path().join("next.pub");
    std::fs::write(
        &new_pub,
        key2.to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pem"),
    )
    .expect("write");
    // Publishes `new_pub` through create-identity-provider with `extra` flags.
    let publish = |extra: &[&str]| {
        let mut args = vec![
            "aws",
            "create-identity-provider",
            "--output-dir",
            dir.to_str().expect("utf8"),
            "--name",
            "newsts",
            "--region",
            "us-east-2",
            "--issuer-thumbprint",
            THUMBPRINT,
            "--public-key-file",
            new_pub.to_str().expect("utf8"),
        ];
        args.extend_from_slice(extra);
        ok(&ccoctl(Some(&moto), &args));
    };
    publish(&[]);
    let keys = get_json(&c, "newsts-oidc", "keys.json").await;
    assert_eq!(
        keys["keys"].as_array().expect("keys").len(),
        2,
        "old and new keys side by side"
    );
    publish(&["--prune-old-keys"]);
    let keys = get_json(&c, "newsts-oidc", "keys.json").await;
    assert_eq!(keys["keys"].as_array().expect("keys").len(), 1);
    assert_eq!(
        c.iam
            .list_open_id_connect_providers()
            .send()
            .await
            .expect("l")
            .open_id_connect_provider_list()
            .len(),
        1
    );
}
