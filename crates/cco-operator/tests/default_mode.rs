//! The default credentials mode ("") on AWS: the operator classifies the root credential and
//! annotates it `mint` or `passthrough`, then processes requests accordingly.
//!
//! The AWS emulator (moto) does not implement `iam:SimulatePrincipalPolicy`. That ONE call goes to a
//! small HTTP responder in this test, which answers in the IAM query protocol and allows or denies the
//! `iam:*` actions as the test says. Everything else (STS GetCallerIdentity, the IAM user, its policy
//! and keys) runs against moto, and Kubernetes is a real API server.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cco_testsupport::moto::Moto;
use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers SimulatePrincipalPolicy: every action allowed, except `iam:*` when `deny_iam` is set.
async fn simulate_responder(
    deny_iam: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
) -> anyhow::Result<String> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", l.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let (deny, calls) = (deny_iam.clone(), calls.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let body =
                                String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                            assert!(
                                body.contains("Action=SimulatePrincipalPolicy"),
                                "only SimulatePrincipalPolicy comes here: {body}"
                            );
                            calls.fetch_add(1, Ordering::SeqCst);
                            let members: String = body
                                .split('&')
                                .filter_map(|kv| kv.split_once('='))
                                .filter(|(k, _)| k.starts_with("ActionNames.member."))
                                .map(|(_, v)| v.replace("%3A", ":"))
                                .map(|a| {
                                    let d = if a.starts_with("iam:") && deny.load(Ordering::SeqCst) { "implicitDeny" } else { "allowed" };
                                    format!("<member><EvalActionName>{a}</EvalActionName><EvalResourceName>*</EvalResourceName><EvalDecision>{d}</EvalDecision></member>")
                                })
                                .collect();
                            let xml = format!("<SimulatePrincipalPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>{members}</EvaluationResults></SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>");
                            let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}", xml.len());
                            let _ = s.write_all(resp.as_bytes()).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(url)
}

async fn mode_annotation(c: &kube::Client) -> anyhow::Result<Option<String>> {
    let s = Api::<Secret>::namespaced(c.clone(), "kube-system")
        .get("aws-creds")
        .await?;
    Ok(s.metadata
        .annotations
        .unwrap_or_default()
        .get("cloudcredential.openshift.io/mode")
        .cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_mode_mints_when_the_root_credential_can_and_passes_through_otherwise(
) -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let deny = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let responder = simulate_responder(deny.clone(), calls.clone()).await?;
    let env = start().await?;
    set_cluster(&env.admin, "", "AWS", "").await?;
    create_namespace(&env.admin, "components").await?;
    put_root_secret(
        &env.admin,
        "aws-creds",
        &[
            ("aws_access_key_id", "AKIAMINTER"),
            ("aws_secret_access_key", "can-mint"),
        ],
    )
    .await?;
    let mut settings = test_settings();
    settings.aws_endpoint = Some(moto.endpoint.clone());
    settings.aws_simulate_endpoint = Some(responder);
    let op = spawn_operator(operator_client(&env).await?, settings);

    // Every mint action allowed: annotated mint, and the request gets its own IAM user.
    wait_until(Duration::from_secs(20), || async {
        Ok(mode_annotation(&env.admin).await?.as_deref() == Some("mint"))
    })
    .await?;
    create_cr(
        &env.admin,
        OPERATOR_NS,
        cr_json(
            "d-one",
            "components",
            "d-one",
            json!({"kind": "AWSProviderSpec",
        "statementEntries": [{"effect": "Allow", "action": ["s3:GetObject"], "resource": "*"}]}),
        ),
    )
    .await?;
    let data = wait_secret(&env.admin, "components", "d-one").await?;
    assert_ne!(
        data["aws_access_key_id"], "AKIAMINTER",
        "a minted key, not the root key"
    );
    let cr = wait_cr(&env.admin, "d-one", "minted", |c| {
        c.status.as_ref().is_some_and(|s| s.provisioned)
    })
    .await?;
    assert!(cr.status.unwrap().provider_status.unwrap()["user"]
        .as_str()
        .is_some());

    // A credential that cannot mint but holds what the requests need: passthrough.
    deny.store(true, Ordering::SeqCst);
    put_root_secret(
        &env.admin,
        "aws-creds",
        &[
            ("aws_access_key_id", "AKIAPASSER"),
            ("aws_secret_access_key", "can-pass"),
        ],
    )
    .await?;
    wait_until(Duration::from_secs(20), || async {
        Ok(mode_annotation(&env.admin).await?.as_deref() == Some("passthrough"))
    })
    .await?;
    create_cr(
        &env.admin,
        OPERATOR_NS,
        cr_json(
            "d-two",
            "components",
            "d-two",
            json!({"kind": "AWSProviderSpec",
        "statementEntries": [{"effect": "Allow", "action": ["s3:GetObject"], "resource": "*"}]}),
        ),
    )
    .await?;
    let data = wait_secret(&env.admin, "components", "d-two").await?;
    assert_eq!(data["aws_access_key_id"], "AKIAPASSER");
    assert!(
        calls.load(Ordering::SeqCst) >= 3,
        "mint check, then mint and passthrough checks"
    );
    op.stop().await?;
    Ok(())
}
