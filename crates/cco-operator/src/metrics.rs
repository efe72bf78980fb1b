//! Prometheus metrics with the reference operator's names, and a minimal HTTP endpoint for them.
//!
//! - `cco_credentials_requests{cloud_type}`: requests per cloud;
//! - `cco_credentials_requests_conditions{condition}`: requests with a condition `True`;
//! - `cco_credentials_mode{mode}`: 1 for the current mode;
//! - `cco_controller_reconcile_seconds{controller}`: reconcile durations (histogram);
//! - `cco_controller_reconcile_errors_total{controller,error}`: failed reconciles by error kind.
//!
//! The endpoint answers `GET /metrics` and `GET /healthz` over plain HTTP/1.1 and closes each
//! connection; it is meant for a Prometheus scrape or a Service, nothing more.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Labels = Vec<(String, String)>;

fn histogram() -> Histogram {
    Histogram::new([0.001, 0.01, 0.1, 1.0, 10.0, 30.0, 60.0, 120.0])
}

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Gauge>,
    conditions: Family<Labels, Gauge>,
    mode: Family<Labels, Gauge>,
    reconcile: Family<Labels, Histogram, fn() -> Histogram>,
    errors: Family<Labels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Gauge>::default();
        let conditions = Family::<Labels, Gauge>::default();
        let mode = Family::<Labels, Gauge>::default();
        let reconcile: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(histogram);
        let errors = Family::<Labels, Counter>::default();
        registry.register(
            "cco_credentials_requests",
            "Total number of credentials requests.",
            requests.clone(),
        );
        registry.register(
            "cco_credentials_requests_conditions",
            "Credentials requests with asserted conditions.",
            conditions.clone(),
        );
        registry.register(
            "cco_credentials_mode",
            "Track current mode the cloud-credentials-operator is functioning under.",
            mode.clone(),
        );
        registry.register(
            "cco_controller_reconcile_seconds",
            "Distribution of the length of time each controllers reconcile loop takes.",
            reconcile.clone(),
        );
        registry.register(
            "cco_controller_reconcile_errors",
            "Failed reconciles by controller and error kind.",
            errors.clone(),
        );
        Metrics {
            registry,
            requests,
            conditions,
            mode,
            reconcile,
            errors,
        }
    }

    /// Records one reconcile of `controller`.
    pub fn observe_reconcile(&self, controller: &str, seconds: f64) {
        self.reconcile
            .get_or_create(&vec![("controller".into(), controller.into())])
            .observe(seconds);
    }

    /// Counts a failed reconcile.
    pub fn count_error(&self, controller: &str, error: &str) {
        self.errors
            .get_or_create(&vec![
                ("controller".into(), controller.into()),
                ("error".into(), error.into()),
            ])
            .inc();
    }

    /// Replaces the per-cloud and per-condition gauges.
    pub fn set_counts(
        &self,
        by_cloud: &BTreeMap<String, i64>,
        by_condition: &BTreeMap<String, i64>,
    ) {
        self.requests.clear();
        for (k, v) in by_cloud {
            self.requests
                .get_or_create(&vec![("cloud_type".into(), k.clone())])
                .set(*v);
        }
        self.conditions.clear();
        for (k, v) in by_condition {
            self.conditions
                .get_or_create(&vec![("condition".into(), k.clone())])
                .set(*v);
        }
    }

    /// Sets the mode gauge to 1 for `mode` only.
    pub fn set_mode(&self, mode: &str) {
        self.mode.clear();
        self.mode
            .get_or_create(&vec![("mode".into(), mode.into())])
            .set(1);
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        if encode(&mut s, &self.registry).is_err() {
            s.clear();
        }
        s
    }
}

/// Serves `/metrics` and `/healthz` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (mut sock, _) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(error) => {
                    tracing::warn!(%error, "metrics accept failed");
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                match tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut chunk))
                    .await
                {
                    Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => return,
                }
            }
            let head = String::from_utf8_lossy(&buf);
            let path = head.split_whitespace().nth(1).unwrap_or("/");
            let (status, ctype, body) = match path {
                "/metrics" => (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    metrics.encode(),
                ),
                "/healthz" | "/readyz" => ("200 OK", "text/plain", "ok\n".to_string()),
                _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_uses_the_reference_names() {
        let m = Metrics::new();
        m.observe_reconcile("credreq", 0.02);
        m.set_mode("mint");
        m.set_counts(
            &BTreeMap::from([("aws".to_string(), 3)]),
            &BTreeMap::from([("CredentialsProvisionFailure".to_string(), 1)]),
        );
        let s = m.encode();
        assert!(
            s.contains("cco_credentials_requests{cloud_type=\"aws\"} 3"),
            "{s}"
        );
        assert!(s.contains(
            "cco_credentials_requests_conditions{condition=\"CredentialsProvisionFailure\"} 1"
        ));
        assert!(s.contains("cco_credentials_mode{mode=\"mint\"} 1"));
        assert!(s.contains("cco_controller_reconcile_seconds_count{controller=\"credreq\"} 1"));
        m.set_mode("passthrough");
        assert!(!m.encode().contains("mode=\"mint\""));
    }
}
