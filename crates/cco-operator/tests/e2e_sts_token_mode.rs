//! seeds/000 + seeds/004 end to end through the operator's token mode, on real peers.
//!
//! The issuer and the role are made by the same engine `ccoctl aws create-all` runs (cco-core plans
//! executed by cco-aws) against the AWS emulator; a real kube-apiserver signs with that key and
//! issuer; the operator, running under its own ServiceAccount's RBAC on a Manual cluster with a
//! service-account issuer, turns an operator author's CredentialsRequest (with `stsIAMRoleARN`)
//! into a Secret; a projected token is verified against the JWKS and discovery document fetched
//! over HTTP from the emulated bucket and exchanged with `AssumeRoleWithWebIdentity` for the role
//! the Secret names. The emulator's STS does not validate tokens, so the verification is ours.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::io::{Read, Write};

use base64::Engine as _;
use cco_api::Cloud;
use cco_core::aws::{plan_roles, IdentityProviderPlan};
use cco_core::reader::{parse_documents, ReadOptions};
use cco_testsupport::kube_env::KubeEnvOptions;
use cco_testsupport::moto::Moto;
use common::*;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ObjectMeta, PostParams};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;

const THUMBPRINT: &str = "0123456789abcdef0123456789abcdef01234567";

fn b64(seg: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(seg)
        .unwrap()
}

fn http_get(url: &str) -> Vec<u8> {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.1 200"));
    buf[split + 4..].to_vec()
}

async fn aws_for(moto: &Moto) -> cco_aws::Aws {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_iam::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    cco_aws::Aws {
        iam: aws_sdk_iam::Client::new(&conf),
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&conf)
                .force_path_style(true)
                .build(),
        ),
        cloudfront: aws_sdk_cloudfront::Client::new(&conf),
        sts: aws_sdk_sts::Client::new(&conf),
        region: "us-east-1".into(),
        concurrency: 4,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_authors_request_in_token_mode_yields_a_secret_that_assumes_the_role() {
    cco_operator::install_crypto_provider();
    let moto = Moto::start().unwrap();
    let aws = aws_for(&moto).await;
    let tmp = tempfile::tempdir().unwrap();

    // 1. Issuer and role, as `ccoctl aws create-all` makes them.
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let key_path = tmp.path().join("signer.key");
    std::fs::write(&key_path, cco_core::keys::private_key_pem(&key).unwrap()).unwrap();
    let jwks = cco_core::keys::jwks(&[key.to_public_key()]).unwrap();
    let plan = IdentityProviderPlan::new("tok", "us-east-1", false, jwks).unwrap();
    let idp = cco_aws::create_identity_provider(
        &aws,
        &plan,
        &cco_aws::IdpOptions {
            thumbprint: Some(THUMBPRINT.into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let request = r#"
apiVersion: cloudcredential.openshift.io/v1
kind: CredentialsRequest
metadata: {name: my-operator, namespace: my-operator-ns}
spec:
  secretRef: {name: my-operator-creds, namespace: my-operator-ns}
  serviceAccountNames: [my-operator-sa]
  providerSpec:
    apiVersion: cloudcredential.openshift.io/v1
    kind: AWSProviderSpec
    statementEntries: [{effect: Allow, action: ["s3:GetObject"], resource: "*"}]
"#;
    let loaded = parse_documents(
        std::path::Path::new("my-operator.yaml"),
        request,
        ReadOptions {
            cloud: Cloud::Aws,
            enable_tech_preview: false,
        },
    )
    .unwrap();
    let roles = plan_roles(&loaded, "tok", &idp.provider_arn, None).unwrap();
    let failures = cco_aws::apply_roles(&aws, &roles, |_, _| {}).await;
    assert!(failures.is_empty(), "{failures:?}");
    let role_arn = roles[0].role_arn.clone();

    // 2. The API server signs with that key and issuer; the operator runs in token mode.
    let env = start_with(KubeEnvOptions {
        sa_signing_key: Some(key_path),
        sa_issuer: idp.issuer.clone(),
        api_audiences: vec!["openshift".into(), idp.issuer.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    set_cluster(&env.admin, "Manual", "AWS", &idp.issuer)
        .await
        .unwrap();
    let op = spawn_operator(operator_client(&env).await.unwrap(), test_settings());

    // 3. seeds/004: the operator author creates its request with the role ARN; the Secret appears.
    create_namespace(&env.admin, "my-operator-ns")
        .await
        .unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(env.admin.clone(), "my-operator-ns");
    sas.create(
        &PostParams::default(),
        &ServiceAccount {
            metadata: ObjectMeta {
                name: Some("my-operator-sa".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut cr = cr_json(
        "my-operator",
        "my-operator-ns",
        "my-operator-creds",
        serde_json::json!({"apiVersion": "cloudcredential.openshift.io/v1", "kind": "AWSProviderSpec",
            "statementEntries": [{"effect": "Allow", "action": ["s3:GetObject"], "resource": "*"}],
            "stsIAMRoleARN": role_arn}),
    );
    cr["spec"]["serviceAccountNames"] = serde_json::json!(["my-operator-sa"]);
    create_cr(&env.admin, OPERATOR_NS, cr).await.unwrap();
    let secret = wait_secret(&env.admin, "my-operator-ns", "my-operator-creds")
        .await
        .unwrap();
    let creds = &secret["credentials"];
    let secret_role = creds
        .lines()
        .find_map(|l| l.trim().strip_prefix("role_arn = "))
        .unwrap();
    let token_file = creds
        .lines()
        .find_map(|l| l.trim().strip_prefix("web_identity_token_file = "))
        .unwrap();
    assert_eq!(secret_role, role_arn);
    assert_eq!(
        token_file,
        "/var/run/secrets/openshift/serviceaccount/token"
    );

    // 4. A projected token for that ServiceAccount, verified against the published issuer.
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec!["openshift".into()],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let tr: TokenRequest = sas
        .create_subresource("token", "my-operator-sa", &PostParams::default(), &tr)
        .await
        .unwrap();
    let token = tr.status.unwrap().token;
    let jwks: serde_json::Value =
        serde_json::from_slice(&http_get(&format!("{}/tok-oidc/keys.json", moto.endpoint)))
            .unwrap();
    let disc = aws
        .s3
        .get_object()
        .bucket("tok-oidc")
        .key(".well-known/openid-configuration")
        .send()
        .await
        .unwrap();
    let disc: serde_json::Value =
        serde_json::from_slice(&disc.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(disc["issuer"], idp.issuer.as_str());
    let parts: Vec<&str> = token.split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(&b64(parts[0])).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&b64(parts[1])).unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid published");
    let n = rsa::BigUint::from_bytes_be(&b64(jwk["n"].as_str().unwrap()));
    let e = rsa::BigUint::from_bytes_be(&b64(jwk["e"].as_str().unwrap()));
    let vk = VerifyingKey::<rsa::sha2::Sha256>::new(rsa::RsaPublicKey::new(n, e).unwrap());
    let sig = Signature::try_from(b64(parts[2]).as_slice()).unwrap();
    vk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .expect("signature");
    assert_eq!(claims["iss"], idp.issuer.as_str());
    assert_eq!(
        claims["sub"],
        "system:serviceaccount:my-operator-ns:my-operator-sa"
    );
    assert!(claims["aud"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("openshift")));

    // 5. Exchange it for the role the Secret names.
    let out = aws
        .sts
        .assume_role_with_web_identity()
        .role_arn(secret_role)
        .role_session_name("token-mode")
        .web_identity_token(&token)
        .send()
        .await
        .expect("AssumeRoleWithWebIdentity");
    assert!(out.credentials().is_some());
    op.stop().await.unwrap();
}
