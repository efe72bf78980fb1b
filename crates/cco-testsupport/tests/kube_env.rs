//! Starts a real etcd + kube-apiserver (tools/kube), installs the corpus CRDs
//! and checks service-account token signing (kid / iss) end to end.
//!
//! Run: CARGO_TARGET_DIR=target/helper-kube cargo test -p cco-testsupport --test kube_env
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use cco_testsupport::kube_env::{KubeEnv, KubeEnvOptions};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::EncodePublicKey;
use sha2::Digest;

const ISSUER: &str = "https://oidc.cco-test.example.com";

fn b64url_json(seg: &str) -> serde_json::Value {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(seg)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_request_kid_and_issuer() -> anyhow::Result<()> {
    // PKCS#1 RSA key, like `openssl genrsa -traditional`.
    let keydir = tempfile::tempdir()?;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
    let key_path = keydir.path().join("sa-signer.key");
    std::fs::write(
        &key_path,
        key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)?.as_bytes(),
    )?;
    let spki_der = key.to_public_key().to_public_key_der()?;
    let expected_kid = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(spki_der.as_bytes()));

    let env = KubeEnv::start(KubeEnvOptions {
        sa_signing_key: Some(key_path),
        sa_issuer: ISSUER.to_string(),
        api_audiences: vec![ISSUER.to_string(), "openshift".to_string()],
        ..Default::default()
    })
    .await?;
    assert!(env.server_url().starts_with("https://127.0.0.1:"));
    assert!(env.ca_pem().contains("BEGIN CERTIFICATE"));
    assert!(env.kubeconfig_path().is_file());

    let crds = env.install_corpus_crds().await?;
    assert!(
        crds.iter()
            .any(|c| c == "credentialsrequests.cloudcredential.openshift.io"),
        "{crds:?}"
    );

    let client = env.client().await?;
    let ns_name = "cco-kube-env-test";
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(ns_name.into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await?;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns_name);
    sas.create(
        &PostParams::default(),
        &ServiceAccount {
            metadata: ObjectMeta {
                name: Some("cloud-credential-operator".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await?;

    let tr = sas
        .create_token_request(
            "cloud-credential-operator",
            &PostParams::default(),
            &TokenRequest {
                spec: TokenRequestSpec {
                    audiences: vec!["openshift".into()],
                    expiration_seconds: Some(3600),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await?;
    let token = tr.status.expect("TokenRequest status").token;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWS: {token}");
    let header = b64url_json(parts[0]);
    let claims = b64url_json(parts[1]);
    assert_eq!(header["alg"], "RS256", "{header}");
    assert_eq!(header["kid"], expected_kid.as_str(), "{header}");
    assert_eq!(claims["iss"], ISSUER, "{claims}");
    assert_eq!(claims["aud"], serde_json::json!(["openshift"]), "{claims}");
    assert_eq!(
        claims["sub"],
        format!("system:serviceaccount:{ns_name}:cloud-credential-operator")
    );

    // The static admin token authenticates too.
    let mut cfg = env.config().await?;
    cfg.auth_info = kube::config::AuthInfo {
        token: Some(env.admin_token().to_string().into()),
        ..Default::default()
    };
    let token_client = kube::Client::try_from(cfg)?;
    Api::<Namespace>::all(token_client).get(ns_name).await?;
    Ok(())
}
