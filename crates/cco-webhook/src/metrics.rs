//! Prometheus metrics served on the metrics port at `/metrics`.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `pod_identity_webhook_admission_requests_total` | `verdict` (allowed, patched, denied, invalid) | admission reviews answered |
//! | `pod_identity_webhook_admission_duration_seconds` | – | time from request body to response, ServiceAccount lookup included |
//! | `pod_identity_webhook_mutations_total` | `cloud` (aws, azure, gcp) | pods a cloud changed |
//! | `pod_identity_webhook_service_account_lookups_total` | `source` (cache, api, not_found, error) | how ServiceAccounts were found |
//! | `pod_identity_webhook_certificate_reloads_total` | `result` (success, failure) | serving-certificate reloads |
//!
//! And, under the reference webhooks' names so that existing dashboards keep working
//! ([`Compat`], written in the Prometheus text format as those webhooks' client libraries do):
//!
//! | metric | labels | from |
//! |---|---|---|
//! | `http_request_count` (counter) | `verb`, `path`, `code` | amazon-eks-pod-identity-webhook |
//! | `http_request_latencies` (histogram, µs) | `verb`, `path` | amazon-eks-pod-identity-webhook |
//! | `http_request_duration_microseconds` (summary: sum and count) | `verb`, `path` | amazon-eks-pod-identity-webhook |
//! | `pod_identity_webhook_pod_count` | `method` (`sts_web_identity`, `container_credentials`) | amazon-eks-pod-identity-webhook |
//! | `pod_identity_webhook_missing_sa_count` | – | amazon-eks-pod-identity-webhook |
//! | `pod_identity_webhook_used` (gauge) | – | amazon-eks-pod-identity-webhook |
//! | `azwi_mutation_request` (histogram, s) | `namespace`, `service_name` | azure-workload-identity |

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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
    /// The reference webhooks' metric names.
    pub compat: Compat,
}

/// A fixed-bucket histogram in the Prometheus text format.
#[derive(Debug, Clone, Default)]
struct Hist {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Hist {
    fn observe(&mut self, bounds: &[f64], v: f64) {
        if self.counts.len() != bounds.len() {
            self.counts = vec![0; bounds.len()];
        }
        for (i, b) in bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in bounds.iter().enumerate() {
            let c = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// EKS: 125 ms to 8 s in microseconds.
const EKS_LATENCY_BUCKETS: [f64; 7] = [
    125_000.0,
    250_000.0,
    500_000.0,
    1_000_000.0,
    2_000_000.0,
    4_000_000.0,
    8_000_000.0,
];
/// OpenTelemetry's default histogram boundaries (azure-workload-identity).
const OTEL_BUCKETS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// Metrics under the reference webhooks' names.
#[derive(Debug, Default)]
pub struct Compat {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latencies: Mutex<BTreeMap<(String, String), Hist>>,
    pod_count: Mutex<BTreeMap<&'static str, u64>>,
    missing_sa: AtomicU64,
    used: AtomicU64,
    azwi: Mutex<BTreeMap<String, Hist>>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Compat {
    /// One HTTP request served on the admission port.
    pub fn http(&self, verb: &str, path: &str, code: u16, micros: f64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((verb.to_string(), path.to_string(), code))
                .or_default() += 1;
        }
        if let Ok(mut m) = self.latencies.lock() {
            m.entry((verb.to_string(), path.to_string()))
                .or_default()
                .observe(&EKS_LATENCY_BUCKETS, micros);
        }
    }

    /// A pod mutated for AWS by `method` (`sts_web_identity`, `container_credentials`).
    pub fn pod(&self, method: &'static str) {
        if let Ok(mut m) = self.pod_count.lock() {
            *m.entry(method).or_default() += 1;
        }
        self.used.store(1, Ordering::Relaxed);
    }

    /// A pod whose ServiceAccount was not found.
    pub fn missing_service_account(&self) {
        self.missing_sa.fetch_add(1, Ordering::Relaxed);
    }

    /// One Azure mutation request in `namespace` took `seconds`.
    pub fn azure_request(&self, namespace: &str, seconds: f64) {
        if let Ok(mut m) = self.azwi.lock() {
            m.entry(namespace.to_string())
                .or_default()
                .observe(&OTEL_BUCKETS, seconds);
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP http_request_count Counter of requests broken out for each verb, path, and response code.\n# TYPE http_request_count counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((verb, path, code), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "http_request_count{{code=\"{code}\",path=\"{}\",verb=\"{}\"}} {n}",
                    escape(path),
                    escape(verb)
                );
            }
        }
        out.push_str("# HELP http_request_latencies Response latency distribution in microseconds for each verb and path\n# TYPE http_request_latencies histogram\n");
        let mut summary = String::new();
        if let Ok(m) = self.latencies.lock() {
            for ((verb, path), h) in m.iter() {
                let labels = format!("path=\"{}\",verb=\"{}\"", escape(path), escape(verb));
                h.render(out, "http_request_latencies", &labels, &EKS_LATENCY_BUCKETS);
                let _ = writeln!(
                    summary,
                    "http_request_duration_microseconds_sum{{{labels}}} {}\nhttp_request_duration_microseconds_count{{{labels}}} {}",
                    h.sum, h.count
                );
            }
        }
        out.push_str("# HELP http_request_duration_microseconds Response latency summary in microseconds for each verb and path.\n# TYPE http_request_duration_microseconds summary\n");
        out.push_str(&summary);
        out.push_str("# HELP pod_identity_webhook_pod_count Indicator to how many pods are using sts web identity or container credentials\n# TYPE pod_identity_webhook_pod_count counter\n");
        if let Ok(m) = self.pod_count.lock() {
            for (method, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "pod_identity_webhook_pod_count{{method=\"{method}\"}} {n}"
                );
            }
        }
        let _ = write!(
            out,
            "# HELP pod_identity_webhook_missing_sa_count Service account did not have the right annotations or was not found in the cache.\n\
             # TYPE pod_identity_webhook_missing_sa_count counter\npod_identity_webhook_missing_sa_count {}\n\
             # HELP pod_identity_webhook_used Indicator to know pod identity webhook is used\n\
             # TYPE pod_identity_webhook_used gauge\npod_identity_webhook_used {}\n",
            self.missing_sa.load(Ordering::Relaxed),
            self.used.load(Ordering::Relaxed)
        );
        out.push_str("# HELP azwi_mutation_request Distribution of how long it took for the azure-workload-identity mutation request\n# TYPE azwi_mutation_request histogram\n");
        if let Ok(m) = self.azwi.lock() {
            for (ns, h) in m.iter() {
                let labels = format!("namespace=\"{}\",service_name=\"webhook\"", escape(ns));
                h.render(out, "azwi_mutation_request", &labels, &OTEL_BUCKETS);
            }
        }
    }
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
        let compat = Compat::default();
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
            compat,
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

    /// Prometheus text exposition (format 0.0.4) of all metrics.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        if let Some(stripped) = out.strip_suffix("# EOF\n") {
            out.truncate(stripped.len());
        }
        self.compat.render(&mut out);
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

    #[test]
    fn reference_metric_names_are_exported() {
        let m = Metrics::new();
        m.compat.http("POST", "/mutate", 200, 900.0);
        m.compat.pod("sts_web_identity");
        m.compat.missing_service_account();
        m.compat.azure_request("team", 0.002);
        let text = m.render();
        for needle in [
            "http_request_count{code=\"200\",path=\"/mutate\",verb=\"POST\"} 1",
            "http_request_latencies_bucket{path=\"/mutate\",verb=\"POST\",le=\"125000\"} 1",
            "http_request_duration_microseconds_count{path=\"/mutate\",verb=\"POST\"} 1",
            "pod_identity_webhook_pod_count{method=\"sts_web_identity\"} 1",
            "pod_identity_webhook_missing_sa_count 1",
            "pod_identity_webhook_used 1",
            "azwi_mutation_request_count{namespace=\"team\",service_name=\"webhook\"} 1",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
        assert!(!text.contains("# EOF"));
    }
}
