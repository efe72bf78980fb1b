//! `ccoctl aws` as a drop-in for the reference tool, against the local AWS emulator: command lines
//! the reference accepts, resources the reference leaves behind, and output reported once.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_cloudfront::types as cf;
use common::*;
use serde_json::json;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn public_key() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signer.public")
}

/// `ccoctl aws create-all` with the fixed test key (no key generation) and a given thumbprint.
fn create_all(moto: &Moto, name: &str, region: &str, out: &Path, extra: &[&str]) -> String {
    let key = public_key();
    let corpus = corpus("aws");
    let mut args = vec![
        "aws",
        "create-all",
        "--name",
        name,
        "--region",
        region,
        "--credentials-requests-dir",
        s(&corpus),
        "--output-dir",
        s(out),
        "--public-key-file",
        s(&key),
        "--issuer-thumbprint",
        THUMBPRINT,
    ];
    args.extend_from_slice(extra);
    ok(&ccoctl(Some(moto), &args))
}

#[tokio::test(flavor = "multi_thread")]
async fn create_iam_roles_needs_no_region_and_takes_names_iam_accepts() {
    // Item 9: the reference's help says --region is "only required for GovCloud"; IAM is global.
    let moto = Moto::start().expect("moto");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let arn = "arn:aws:iam::123456789012:oidc-provider/x-oidc.s3.us-east-1.amazonaws.com";
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
    cmd.args([
        "aws",
        "create-iam-roles",
        "--name",
        "My_Cluster.v2",
        "--identity-provider-arn",
        arn,
        "--credentials-requests-dir",
        s(&corpus("aws")),
        "--output-dir",
        s(&out),
    ])
    .envs(moto.env())
    // No region anywhere in the configuration chain: the ARN's partition decides.
    .env_remove("AWS_REGION")
    .env_remove("AWS_DEFAULT_REGION")
    .env_remove("AWS_PROFILE")
    .env("AWS_CONFIG_FILE", tmp.path().join("no-config"))
    .env(
        "AWS_SHARED_CREDENTIALS_FILE",
        tmp.path().join("no-credentials"),
    )
    .env("NO_COLOR", "1");
    ok(&cmd.output().expect("runs"));
    let c = clients(&moto, "us-east-1").await;
    let mut roles = role_names(&c).await;
    roles.sort();
    assert_eq!(roles.len(), 7, "{roles:?}");
    assert!(
        roles.contains(&"My_Cluster.v2-openshift-ingress-operator-cloud-credentials".to_string()),
        "{roles:?}"
    );
    let t = c
        .iam
        .list_role_tags()
        .role_name("My_Cluster.v2-openshift-ingress-operator-cloud-credentials")
        .send()
        .await
        .expect("tags");
    assert!(t
        .tags()
        .iter()
        .any(|t| t.key() == "openshift.io/cloud-credential-operator/My_Cluster.v2"));
    // delete takes the same name and finds the roles again (there is no bucket for such a name).
    ok(&ccoctl(
        Some(&moto),
        &[
            "aws",
            "delete",
            "--name",
            "My_Cluster.v2",
            "--region",
            "us-east-1",
        ],
    ));
    assert!(role_names(&c).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn each_created_resource_is_reported_once() {
    let moto = Moto::start().expect("moto");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let key = public_key();
    let corpus = corpus("aws");
    let run = ccoctl(
        Some(&moto),
        &[
            "aws",
            "create-all",
            "--name",
            "once",
            "--region",
            "us-east-1",
            "--credentials-requests-dir",
            s(&corpus),
            "--output-dir",
            s(&out),
            "--public-key-file",
            s(&key),
            "--issuer-thumbprint",
            THUMBPRINT,
        ],
    );
    ok(&run);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let c = clients(&moto, "us-east-1").await;
    let roles = role_names(&c).await;
    assert_eq!(roles.len(), 7);
    for r in &roles {
        assert_eq!(all.matches(r.as_str()).count(), 1, "{r} in:\n{all}");
    }
    let provider = "arn:aws:iam::123456789012:oidc-provider/once-oidc.s3.us-east-1.amazonaws.com";
    assert_eq!(all.matches(provider).count(), 1, "{all}");
    // The same for delete.
    let del = ccoctl(
        Some(&moto),
        &["aws", "delete", "--name", "once", "--region", "us-east-1"],
    );
    ok(&del);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&del.stdout),
        String::from_utf8_lossy(&del.stderr)
    );
    for r in &roles {
        assert_eq!(all.matches(r.as_str()).count(), 1, "{r} in:\n{all}");
    }
    assert_eq!(all.matches(provider).count(), 1, "{all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_statement_is_refused_before_anything_is_created() {
    let moto = Moto::start().expect("moto");
    let tmp = tempfile::tempdir().expect("tmp");
    let reqs = tmp.path().join("reqs");
    std::fs::create_dir(&reqs).expect("mkdir");
    for f in std::fs::read_dir(corpus("aws")).expect("corpus") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, reqs.join(f.file_name().expect("name"))).expect("copy");
    }
    let ingress = reqs.join("openshift-ingress.yaml");
    let text = std::fs::read_to_string(&ingress).expect("read");
    assert!(text.contains("effect: Allow"));
    std::fs::write(&ingress, text.replacen("effect: Allow", "effect: allow", 1)).expect("write");
    let out = tmp.path().join("out");
    let key = public_key();
    let err = failed(&ccoctl(
        Some(&moto),
        &[
            "aws",
            "create-all",
            "--name",
            "badst",
            "--region",
            "us-east-1",
            "--credentials-requests-dir",
            s(&reqs),
            "--output-dir",
            s(&out),
            "--public-key-file",
            s(&key),
            "--issuer-thumbprint",
            THUMBPRINT,
        ],
    ));
    assert!(
        err.contains("openshift-ingress.yaml (document 0)")
            && err.contains("spec.providerSpec.statementEntries[0].effect"),
        "{err}"
    );
    let c = clients(&moto, "us-east-1").await;
    assert!(role_names(&c).await.is_empty());
    assert!(c
        .s3
        .list_buckets()
        .send()
        .await
        .expect("buckets")
        .buckets()
        .is_empty());
    assert!(!out.exists(), "nothing was written");
}

/// What the reference `ccoctl aws create-all --create-private-s3-bucket` creates for `name` (its
/// calls, in its order, with its inputs): tagged bucket, origin access identity marked by its
/// comment, a bucket policy for that identity, public access blocked, a tagged distribution reading
/// through the identity, tagged documents, and the tagged OIDC provider. Returns the distribution's
/// domain and the identity's id.
async fn reference_private_setup(c: &Clients, name: &str, region: &str) -> (String, String) {
    let bucket = format!("{name}-oidc");
    let key = format!("openshift.io/cloud-credential-operator/{name}");
    let domain = format!("{bucket}.s3.{region}.amazonaws.com");
    let mut create = c.s3.create_bucket().bucket(&bucket);
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(region.into())
                .build(),
        );
    }
    create.send().await.expect("bucket");
    let tag = |k: &str, v: &str| {
        aws_sdk_s3::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .expect("tag")
    };
    c.s3.put_bucket_tagging()
        .bucket(&bucket)
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(tag(&key, "owned"))
                .tag_set(tag("Name", name))
                .build()
                .expect("tagging"),
        )
        .send()
        .await
        .expect("bucket tags");
    let oai =
        c.cf.create_cloud_front_origin_access_identity()
            .cloud_front_origin_access_identity_config(
                cf::CloudFrontOriginAccessIdentityConfig::builder()
                    .caller_reference(name)
                    .comment(&key)
                    .build()
                    .expect("config"),
            )
            .send()
            .await
            .expect("origin access identity");
    let oai_id = oai
        .cloud_front_origin_access_identity()
        .expect("oai")
        .id()
        .to_string();
    let policy = json!({"Version": "2008-10-17", "Id": "PolicyForCloudFrontPrivateContent",
        "Statement": [{"Sid": "1", "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity {oai_id}")},
            "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}]});
    c.s3.put_bucket_policy()
        .bucket(&bucket)
        .policy(policy.to_string())
        .send()
        .await
        .expect("policy");
    c.s3.put_public_access_block()
        .bucket(&bucket)
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .expect("public access block");
    let origin_id = format!("https://{domain}");
    let methods = || {
        cf::CachedMethods::builder()
            .quantity(2)
            .items(cf::Method::Head)
            .items(cf::Method::Get)
            .build()
            .expect("methods")
    };
    let config = cf::DistributionConfig::builder()
        .caller_reference(name)
        .comment(&key)
        .enabled(true)
        .origins(
            cf::Origins::builder()
                .quantity(1)
                .items(
                    cf::Origin::builder()
                        .id(&origin_id)
                        .domain_name(&domain)
                        .s3_origin_config(
                            cf::S3OriginConfig::builder()
                                .origin_access_identity(format!(
                                    "origin-access-identity/cloudfront/{oai_id}"
                                ))
                                .build(),
                        )
                        .build()
                        .expect("origin"),
                )
                .build()
                .expect("origins"),
        )
        .default_cache_behavior(
            cf::DefaultCacheBehavior::builder()
                .target_origin_id(&origin_id)
                .viewer_protocol_policy(cf::ViewerProtocolPolicy::HttpsOnly)
                .cache_policy_id("4135ea2d-6df8-44a3-9df3-4b5a84be39ad")
                .allowed_methods(
                    cf::AllowedMethods::builder()
                        .quantity(2)
                        .items(cf::Method::Head)
                        .items(cf::Method::Get)
                        .cached_methods(methods())
                        .build()
                        .expect("allowed"),
                )
                .build()
                .expect("behaviour"),
        )
        .viewer_certificate(
            cf::ViewerCertificate::builder()
                .cloud_front_default_certificate(true)
                .build(),
        )
        .build()
        .expect("config");
    let cf_tag = |k: &str, v: &str| cf::Tag::builder().key(k).value(v).build().expect("tag");
    let dist =
        c.cf.create_distribution_with_tags()
            .distribution_config_with_tags(
                cf::DistributionConfigWithTags::builder()
                    .distribution_config(config)
                    .tags(
                        cf::Tags::builder()
                            .items(cf_tag(&key, "owned"))
                            .items(cf_tag("Name", name))
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("distribution");
    let dist_domain = dist.distribution().expect("d").domain_name().to_string();
    let issuer = format!("https://{dist_domain}");
    let tagging = format!("{key}=owned&Name={name}");
    for (k, body) in [
        (
            ".well-known/openid-configuration",
            json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys.json")}).to_string(),
        ),
        ("keys.json", json!({"keys": []}).to_string()),
    ] {
        c.s3.put_object()
            .bucket(&bucket)
            .key(k)
            .tagging(&tagging)
            .body(body.into_bytes().into())
            .send()
            .await
            .expect("object");
    }
    let iam_tag = |k: &str, v: &str| {
        aws_sdk_iam::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .expect("tag")
    };
    let p = c
        .iam
        .create_open_id_connect_provider()
        .url(&issuer)
        .client_id_list("openshift")
        .client_id_list("sts.amazonaws.com")
        .thumbprint_list(THUMBPRINT)
        .send()
        .await
        .expect("provider");
    c.iam
        .tag_open_id_connect_provider()
        .open_id_connect_provider_arn(p.open_id_connect_provider_arn().expect("arn"))
        .tags(iam_tag(&key, "owned"))
        .tags(iam_tag("Name", name))
        .send()
        .await
        .expect("provider tags");
    (dist_domain, oai_id)
}

async fn origin_access_identities(c: &Clients) -> Vec<String> {
    c.cf.list_cloud_front_origin_access_identities()
        .send()
        .await
        .expect("list")
        .cloud_front_origin_access_identity_list()
        .map(|l| l.items().iter().map(|o| o.id().to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reference_private_setup_converges_under_create_all_and_is_deleted_whole() {
    // Item 10.
    let moto = Moto::start().expect("moto");
    let c = clients(&moto, "us-west-2").await;
    let (domain, oai) = reference_private_setup(&c, "refp", "us-west-2").await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let stdout = create_all(
        &moto,
        "refp",
        "us-west-2",
        &out,
        &["--create-private-s3-bucket"],
    );
    let issuer = format!("https://{domain}");
    assert!(
        stdout.contains(&format!("Issuer URL: {issuer}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("Existing Identity Provider found"),
        "{stdout}"
    );
    // No duplicates: one distribution, the same identity, no origin access control beside it, one
    // provider.
    let dists =
        c.cf.list_distributions()
            .send()
            .await
            .expect("list")
            .distribution_list()
            .map(|l| l.items().len())
            .unwrap_or(0);
    assert_eq!(dists, 1);
    assert_eq!(origin_access_identities(&c).await, vec![oai.clone()]);
    let oacs =
        c.cf.list_origin_access_controls()
            .send()
            .await
            .expect("oacs")
            .origin_access_control_list()
            .map(|l| l.items().len())
            .unwrap_or(0);
    assert_eq!(oacs, 0, "no origin access control next to the identity");
    assert_eq!(
        c.iam
            .list_open_id_connect_providers()
            .send()
            .await
            .expect("providers")
            .open_id_connect_provider_list()
            .len(),
        1
    );
    // The bucket still lets the identity read, so the distribution keeps serving the issuer.
    let policy =
        c.s3.get_bucket_policy()
            .bucket("refp-oidc")
            .send()
            .await
            .expect("policy");
    let policy: serde_json::Value =
        serde_json::from_str(policy.policy().expect("doc")).expect("json");
    assert_eq!(
        policy["Statement"][0]["Principal"]["AWS"],
        format!("arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity {oai}")
    );
    let disc = get_json(&c, "refp-oidc", ".well-known/openid-configuration").await;
    assert_eq!(disc["issuer"], issuer.as_str());
    assert_eq!(role_names(&c).await.len(), 7);

    // delete removes the identity too, found by the reference's ownership rule (its comment).
    let del = ok(&ccoctl(
        Some(&moto),
        &["aws", "delete", "--name", "refp", "--region", "us-west-2"],
    ));
    assert!(
        del.contains(&format!("Deleted CloudFront origin access identity {oai}")),
        "{del}"
    );
    assert_eq!(tagged_leftovers(&c, "refp").await, Vec::<String>::new());
    assert!(origin_access_identities(&c).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_spares_origin_access_identities_of_other_names() {
    let moto = Moto::start().expect("moto");
    let c = clients(&moto, "us-east-1").await;
    let (_, other) = reference_private_setup(&c, "othr", "us-east-1").await;
    let (_, mine) = reference_private_setup(&c, "mine", "us-east-1").await;
    let dry = ok(&ccoctl(
        Some(&moto),
        &[
            "aws",
            "delete",
            "--name",
            "mine",
            "--region",
            "us-east-1",
            "--dry-run",
        ],
    ));
    assert!(
        dry.contains(&format!(
            "Would delete CloudFront origin access identity {mine}"
        )),
        "{dry}"
    );
    assert_eq!(origin_access_identities(&c).await.len(), 2);
    ok(&ccoctl(
        Some(&moto),
        &["aws", "delete", "--name", "mine", "--region", "us-east-1"],
    ));
    assert_eq!(origin_access_identities(&c).await, vec![other]);
    assert_eq!(tagged_leftovers(&c, "mine").await, Vec::<String>::new());
    assert!(!tagged_leftovers(&c, "othr").await.is_empty());
}
