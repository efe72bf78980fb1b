#!/usr/bin/env bash
# Load benchmark of the pod identity webhook.
#
# Builds the webhook and the load generator (crates/cco-webhook/examples/loadgen.rs) in release
# mode, then the load generator starts a throw-away kube-apiserver (tools/kube), an annotated
# ServiceAccount and the webhook binary as a separate process on loopback TLS, and sends pod
# AdmissionReviews at 1, 16 and 64 concurrent clients, DURATION seconds each (default 5).
# Output: one JSON line per level with admissions_per_s, p50_ms, p99_ms, rss_kib, peak_rss_kib.
#
#   bench/webhook/run.sh                       # 1,16,64 clients, 5 s each
#   bench/webhook/run.sh --levels 1,8 --duration 2
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$root"
cargo build --release --quiet -p cco-webhook --bin cco-pod-identity-webhook --example loadgen
exec "$target/release/examples/loadgen" \
  --webhook-bin "$target/release/cco-pod-identity-webhook" \
  --duration "${DURATION:-5}" "$@"
