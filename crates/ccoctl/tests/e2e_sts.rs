//! seeds/000 end to end on real peers: `ccoctl aws create-all` against the AWS emulator, a real
//! kube-apiserver signing with the key and issuer ccoctl made, a projected token for a ServiceAccount
//! named in a request, verified against the JWKS and discovery document fetched over HTTP from the
//! emulated bucket, then exchanged with `AssumeRoleWithWebIdentity` for the role in the Secret.
//!
//! The emulator's STS does not validate web identity tokens, so the token verification below is ours.

use crate::common;

use std::io::{Read, Write};

use base64::Engine;
use cco_testsupport::kube_env::{KubeEnv, KubeEnvOptions};
use common::*;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;

fn b64(seg: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(seg)
        .expect("base64url")
}

/// A plain HTTP/1.0 GET on loopback; returns the body of a 200 response.
fn http_get(url: &str) -> Vec<u8> {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("path");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{url}: {head}"
    );
    buf[split + 4..].to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_token_is_trusted_through_the_published_issuer_and_assumes_the_role() {
    let moto = Moto::start().expect("moto");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("_output");
    // 1. ccoctl against the emulator (it generates the 4096-bit key itself).
    ok(&ccoctl(
        Some(&moto),
        &[
            "aws",
            "create-all",
            "--name",
            "e2e",
            "--region",
            "us-east-1",
            "--credentials-requests-dir",
            corpus("aws").to_str().expect("utf8"),
            "--output-dir",
            out.to_str().expect("utf8"),
            "--issuer-thumbprint",
            THUMBPRINT,
        ],
    ));
    let auth = std::fs::read_to_string(out.join("manifests/cluster-authentication-02-config.yaml"))
        .expect("auth");
    let issuer = auth
        .lines()
        .find_map(|l| l.trim().strip_prefix("serviceAccountIssuer: "))
        .expect("issuer")
        .to_string();

    // 2. The API server signs with that key and issuer.
    let env = KubeEnv::start(KubeEnvOptions {
        sa_signing_key: Some(out.join("tls/bound-service-account-signing-key.key")),
        sa_public_key: Some(out.join("serviceaccount-signer.public")),
        sa_issuer: issuer.clone(),
        api_audiences: vec!["openshift".into(), issuer.clone()],
        ..Default::default()
    })
    .await
    .expect("kube-apiserver");
    let client = env.client().await.expect("client");

    // 3. A token for a ServiceAccount the image-registry request names, audience `openshift`.
    let ns = "openshift-image-registry";
    let sa = "cluster-image-registry-operator";
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("namespace");
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    sas.create(
        &PostParams::default(),
        &ServiceAccount {
            metadata: ObjectMeta {
                name: Some(sa.into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .expect("service account");
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec!["openshift".into()],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let tr: TokenRequest = sas
        .create_subresource("token", sa, &PostParams::default(), &tr)
        .await
        .expect("token request");
    let token = tr.status.expect("status").token;

    // 4. Verify it against what the emulated bucket publishes, fetched over HTTP.
    let jwks: serde_json::Value =
        serde_json::from_slice(&http_get(&format!("{}/e2e-oidc/keys.json", moto.endpoint)))
            .expect("jwks");
    let c = clients(&moto, "us-east-1").await;
    // Anonymous GETs under /.well-known/ reach moto's Cognito emulation; read this one signed.
    let disc = get_json(&c, "e2e-oidc", ".well-known/openid-configuration").await;
    assert_eq!(disc["issuer"], issuer.as_str());
    assert_eq!(disc["jwks_uri"], format!("{issuer}/keys.json").as_str());

    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value = serde_json::from_slice(&b64(parts[0])).expect("header");
    let claims: serde_json::Value = serde_json::from_slice(&b64(parts[1])).expect("claims");
    assert_eq!(header["alg"], "RS256");
    let kid = header["kid"].as_str().expect("kid");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the token's kid is published");
    let n = rsa::BigUint::from_bytes_be(&b64(jwk["n"].as_str().expect("n")));
    let e = rsa::BigUint::from_bytes_be(&b64(jwk["e"].as_str().expect("e")));
    let key =
        VerifyingKey::<rsa::sha2::Sha256>::new(rsa::RsaPublicKey::new(n, e).expect("jwk key"));
    let sig = Signature::try_from(b64(parts[2]).as_slice()).expect("signature");
    key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .expect("signature verifies against the published JWKS");
    // A tampered payload must not verify (the check above can fail).
    assert!(key
        .verify(format!("{}.{}x", parts[0], parts[1]).as_bytes(), &sig)
        .is_err());
    assert_eq!(claims["iss"], issuer.as_str());
    assert!(claims["aud"]
        .as_array()
        .expect("aud")
        .contains(&serde_json::json!("openshift")));
    assert_eq!(
        claims["sub"],
        format!("system:serviceaccount:{ns}:{sa}").as_str()
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    let exp = claims["exp"].as_i64().expect("exp");
    assert!(exp > now && exp <= now + 3600 + 60, "exp {exp} now {now}");

    // 5. Exchange it for the role named in the generated Secret manifest.
    let secret = std::fs::read_to_string(
        out.join("manifests/openshift-image-registry-installer-cloud-credentials-credentials.yaml"),
    )
    .expect("secret");
    let role_arn = secret
        .lines()
        .find_map(|l| l.trim().strip_prefix("role_arn = "))
        .expect("role_arn")
        .to_string();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .no_credentials()
        .load()
        .await;
    let sts = aws_sdk_sts::Client::new(&conf);
    let creds = sts
        .assume_role_with_web_identity()
        .role_arn(&role_arn)
        .role_session_name("e2e")
        .web_identity_token(&token)
        .send()
        .await
        .expect("AssumeRoleWithWebIdentity");
    assert!(creds.credentials().is_some());
    assert!(creds
        .assumed_role_user()
        .expect("user")
        .arn()
        .contains("e2e-openshift-image-registry-installer-cloud-credentials"));
}
