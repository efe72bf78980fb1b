//! Prometheus metrics served on the metrics port at `/metrics`.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `pod_identity_webhook_admission_requests_total` | `verdict` (allowed, patched, denied, invalid) | admission reviews answered |
//! | `pod_identity_webhook_admission_duration_seconds` | – | time from request body to response, ServiceAccount lookup included |
//! | `pod_identity_webhook_mutations_total` | `cloud` (aws, azure, gcp) | pods a cloud changed |
//! | `pod_identity_webhook_service_account_lookups_total` | `source` (cache, api, not_found, error) | how ServiceAccounts were found |
//! | `pod_identity_webhook_certificate_reloads_total` | `result` (success, failure) | serving-certificate reloads |

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::handler::Verdict;
use crate::patch::Cloud;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CloudLabels {
    cloud: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The webhook's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<VerdictLabels, Counter>,
    duration: Histogram,
    mutations: Family<CloudLabels, Counter>,
    lookups: Family<SourceLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Register all metrics.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pod_identity_webhook");
        let requests = Family::<VerdictLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let mutations = Family::<CloudLabels, Counter>::default();
        let lookups = Family::<SourceLabels, Counter>::default();
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission reviews answered, by verdict",
            requests.clone(),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to answer an admission review",
            duration.clone(),
        );
        registry.register("mutations", "Pods changed, by cloud", mutations.clone());
        registry.register(
            "service_account_lookups",
            "ServiceAccount lookups, by where the answer came from",
            lookups.clone(),
        );
        registry.register(
            "certificate_reloads",
            "Serving certificate reloads, by result",
            reloads.clone(),
        );
        for cloud in [Cloud::Aws, Cloud::Azure, Cloud::Gcp] {
            let _ = mutations.get_or_create(&CloudLabels {
                cloud: cloud.as_str(),
            });
        }
        Self {
            registry,
            requests,
            duration,
            mutations,
            lookups,
            reloads,
        }
    }

    /// Record one answered review.
    pub fn admission(
        &self,
        verdict: Verdict,
        seconds: f64,
        mutated: impl IntoIterator<Item = Cloud>,
    ) {
        self.requests
            .get_or_create(&VerdictLabels {
                verdict: verdict.as_str(),
            })
            .inc();
        self.duration.observe(seconds);
        for cloud in mutated {
            self.mutations
                .get_or_create(&CloudLabels {
                    cloud: cloud.as_str(),
                })
                .inc();
        }
    }

    /// Record a ServiceAccount lookup.
    pub fn lookup(&self, source: &'static str) {
        self.lookups.get_or_create(&SourceLabels { source }).inc();
    }

    /// Record a certificate reload attempt.
    pub fn cert_reload(&self, result: &'static str) {
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// Prometheus text exposition of all metrics.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_include_requests_latency_and_mutations_by_cloud() {
        let m = Metrics::new();
        m.admission(Verdict::Patched, 0.002, [Cloud::Aws, Cloud::Gcp]);
        m.lookup("cache");
        let text = m.render();
        assert!(
            text.contains("pod_identity_webhook_admission_requests_total{verdict=\"patched\"} 1")
        );
        assert!(text.contains("pod_identity_webhook_admission_duration_seconds_count 1"));
        assert!(text.contains("pod_identity_webhook_mutations_total{cloud=\"aws\"} 1"));
        assert!(text.contains("pod_identity_webhook_mutations_total{cloud=\"azure\"} 0"));
        assert!(
            text.contains("pod_identity_webhook_service_account_lookups_total{source=\"cache\"} 1")
        );
    }
}
