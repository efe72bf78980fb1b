//! CloudCredential `spec.logLevel` (and `operatorLogLevel`, the more verbose wins) changes the
//! operator's log level while it runs. The operator runs in-process as its own ServiceAccount with
//! the same reloadable filter the binary installs (this test binary owns its global subscriber).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn operator_debug_lines(text: &str) -> usize {
    text.lines()
        .filter(|l| l.contains("DEBUG") && l.contains("cco_operator"))
        .count()
}

async fn set_levels(
    c: &kube::Client,
    log: Option<&str>,
    operator: Option<&str>,
) -> anyhow::Result<()> {
    let gvk = kube::core::GroupVersionKind::gvk("operator.openshift.io", "v1", "CloudCredential");
    let (ar, _) = kube::discovery::pinned_kind(c, &gvk).await?;
    Api::<DynamicObject>::all_with(c.clone(), &ar)
        .patch(
            "cluster",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"logLevel": log, "operatorLogLevel": operator}})),
        )
        .await?;
    Ok(())
}

async fn provision(c: &kube::Client, name: &str) -> anyhow::Result<()> {
    create_cr(
        c,
        OPERATOR_NS,
        cr_json(
            name,
            "components",
            name,
            json!({"kind": "AWSProviderSpec", "stsIAMRoleARN": "arn:aws:iam::1:role/r"}),
        ),
    )
    .await?;
    wait_secret(c, "components", name).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_level_follows_the_cloudcredential_without_a_restart() -> anyhow::Result<()> {
    let buf = Buf::default();
    let (filter, handle) =
        tracing_subscriber::reload::Layer::new(tracing_subscriber::EnvFilter::new("info"));
    let writer = buf.clone();
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone()),
        )
        .init();
    let mut settings = test_settings();
    settings.log_control = Some(cco_operator::loglevel::LogControl::new(move |d| {
        let f = tracing_subscriber::EnvFilter::try_new(d).map_err(|e| e.to_string())?;
        handle.reload(f).map_err(|e| e.to_string())
    }));

    let env = start().await?;
    let a = env.admin.clone();
    set_cluster(&a, "Manual", "AWS", "https://oidc.example.com").await?;
    create_namespace(&a, "components").await?;
    let op = spawn_operator(operator_client(&env).await?, settings);

    // Normal: the operator's debug messages are filtered out.
    provision(&a, "normal").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(operator_debug_lines(&buf.text()), 0, "{}", buf.text());

    // Debug, set on the CloudCredential: they appear, without a restart.
    set_levels(&a, Some("Debug"), None).await?;
    wait_until(Duration::from_secs(20), || async {
        Ok(buf.text().contains("log level changed level=Debug"))
    })
    .await?;
    provision(&a, "debug").await?;
    wait_until(Duration::from_secs(20), || async {
        Ok(operator_debug_lines(&buf.text()) > 0)
    })
    .await?;

    // Back to Normal: no more debug messages.
    set_levels(&a, Some("Normal"), None).await?;
    wait_until(Duration::from_secs(20), || async {
        Ok(buf.text().contains("log level changed level=Normal"))
    })
    .await?;
    let mark = buf.text().len();
    provision(&a, "normal-again").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = buf.text()[mark..].to_string();
    assert_eq!(operator_debug_lines(&after), 0, "{after}");

    // operatorLogLevel counts too: the more verbose of the two wins.
    set_levels(&a, Some("Normal"), Some("TraceAll")).await?;
    wait_until(Duration::from_secs(20), || async {
        Ok(buf.text().contains("log level changed level=TraceAll"))
    })
    .await?;
    wait_until(Duration::from_secs(20), || async {
        Ok(buf.text().lines().any(|l| l.contains("TRACE")))
    })
    .await?;

    op.stop().await?;
    Ok(())
}
