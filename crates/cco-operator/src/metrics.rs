//! Prometheus metrics with the reference operator's names (served by [`crate::metrics_server`]).
//!
//! - `cco_credentials_requests{cloud_type}`: requests per cloud;
//! - `cco_credentials_requests_conditions{condition}`: requests with a condition `True`;
//! - `cco_credentials_mode{mode}`: 1 for the current mode;
//! - `cco_controller_reconcile_seconds{controller}`: reconcile durations (histogram);
//! - `cco_controller_reconcile_errors_total{controller,error}`: failed reconciles by error kind.

use std::collections::BTreeMap;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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
