#!/usr/bin/env bash
# Side-by-side load benchmark of pod identity webhooks.
#
# Builds our webhook and the harness (crates/cco-webhook/examples/loadgen.rs) in release mode,
# installs the load generator oha (crates.io) into a cache directory if missing, then the harness
# starts a throw-away kube-apiserver (tools/kube) with an annotated ServiceAccount, starts each
# target webhook as its own process on loopback TLS, and drives it with oha over HTTP/2 at 16 and
# 64 connections, DURATION seconds each (default 5).
#
# Output: one JSON line per target and level: admissions_per_s, p50_ms, p99_ms,
# cpu_us_per_admission (utime+stime of the webhook process / admissions), peak_rss_kib, errors,
# load1_before (the machine's load average when the level started).
#
# Targets: ours always; the EKS webhook when a binary is found (EKS_WEBHOOK_BIN, or the cache
# dir, or `go install github.com/aws/amazon-eks-pod-identity-webhook@latest` into the cache dir,
# which needs that module on the Go proxy); any other with --target NAME=COMMAND, where COMMAND
# may use {port} {metrics_port} {cert} {key} {cert_dir} {kubeconfig}.
#
#   bench/webhook/run.sh
#   bench/webhook/run.sh --levels 16,64 --duration 10 --rounds 2
#   bench/webhook/run.sh --target 'other=/usr/bin/x --port={port} --cert={cert} --key={key}'
#   DURATION=3 bench/webhook/run.sh --http1
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
cache="${CCO_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cco-bench}"
mkdir -p "$cache/bin"
cd "$root"

oha="$(command -v oha || true)"
if [[ -z "$oha" ]]; then
  oha="$cache/bin/oha"
  if [[ ! -x "$oha" ]]; then
    echo "installing oha into $cache (once)..." >&2
    cargo install oha --locked --root "$cache" --quiet >&2
  fi
fi

eks="${EKS_WEBHOOK_BIN:-$cache/bin/amazon-eks-pod-identity-webhook}"
if [[ ! -x "$eks" ]] && command -v go >/dev/null; then
  echo "building the EKS webhook into $cache (once)..." >&2
  GOBIN="$cache/bin" GOPATH="$cache/gopath" go install \
    github.com/aws/amazon-eks-pod-identity-webhook@latest >&2 2>"$cache/go-install.log" \
    && mv "$cache/bin/amazon-eks-pod-identity-webhook" "$eks" 2>/dev/null || \
    echo "EKS webhook not available (see $cache/go-install.log); measuring ours only" >&2
fi

cargo build --release --quiet -p cco-webhook --bin cco-pod-identity-webhook --example loadgen
ours="$target_dir/release/cco-pod-identity-webhook"
common="--in-cluster=false --port={port} --metrics-port={metrics_port} --tls-cert={cert} --tls-key={key} --kubeconfig={kubeconfig} --aws-default-region=us-east-1 --sts-regional-endpoint"
targets=(--target "cco=$ours --profile=aws --bind-address=127.0.0.1 $common")
if [[ -x "$eks" ]]; then
  targets+=(--target "eks=$eks $common --logtostderr -v=0")
fi
extra=()
if [[ -n "${DURATION:-}" ]]; then extra+=(--duration "$DURATION"); fi
exec "$target_dir/release/examples/loadgen" --oha "$oha" "${extra[@]}" "${targets[@]}" "$@"
