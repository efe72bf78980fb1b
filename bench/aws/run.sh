#!/usr/bin/env bash
# Benchmark: `ccoctl aws create-all` and `delete` against the local AWS emulator, compared with the
# emulator's floor (the same calls fired straight through the SDK at the best concurrency found) and
# with the same calls made one at a time (the reference tool's pattern).
#
# Usage: bench/aws/run.sh [--latency MS] [N ...]        (default: N = 10 100 500, no latency)
#   --latency MS   also run every N through a proxy that adds MS milliseconds of round trip to every
#                  request and every new connection (crates/cco-aws/examples/latency_proxy.rs), as a
#                  real AWS endpoint would; each N is then measured without and with it.
# Prints one line per N and latency:
#   bench=ccoctl-aws n=<N> latency_ms=<MS> create_s=… create_floor_s=… create_ratio=… create_seq_s=…
#     create_seq_ratio=… delete_s=… delete_floor_s=… delete_ratio=… delete_seq_s=… delete_seq_ratio=…
#     floor_concurrency=… load=<1-minute load average at the start>
# `*_seq_s` is the floor at concurrency 1; `*_seq_ratio` = ccoctl's time / that time (lower is better).
# Release build. The signing key is generated once beforehand, so the figures measure cloud work, not
# RSA key generation.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
latency=0
if [ "${1:-}" = "--latency" ]; then latency="$2"; shift 2; fi
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(10 100 500)
venv="$(bash scripts/setup-python.sh | tail -n1)"
cargo build -q --release -p ccoctl -p cco-aws --example floor --example latency_proxy --bin ccoctl
ccoctl="$root/target/release/ccoctl"
floor="$root/target/release/examples/floor"
proxy="$root/target/release/examples/latency_proxy"
work="$(mktemp -d)"
moto_pid=""; proxy_pid=""
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
"$venv/bin/python" "$root/crates/cco-testsupport/python/moto_server.py" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
moto="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
for _ in $(seq 100); do curl -sf "$moto/moto-api/" >/dev/null 2>&1 && break; sleep 0.1; done
if [ "$latency" != 0 ]; then
  pport="$(free_port)"
  "$proxy" "$pport" "127.0.0.1:$port" "$latency" >/dev/null 2>"$work/proxy.log" &
  proxy_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$pport/moto-api/" >/dev/null 2>&1 && break; sleep 0.1; done
fi
reset() { curl -sf -X POST "$moto/moto-api/reset" >/dev/null; }
now() { date +%s.%N; }
AWS_ENDPOINT_URL="$moto" "$ccoctl" aws create-key-pair --output-dir "$work/key" >/dev/null 2>&1

# Runs ccoctl and the floor for N requests against $AWS_ENDPOINT_URL; prints the result line.
measure() {
  local n="$1" ms="$2" reqs="$work/reqs-$1" load
  load="$(cut -d' ' -f1 /proc/loadavg)"
  local out="$work/out-$n-$ms"; rm -rf "$out"; mkdir -p "$out"; cp "$work/key/serviceaccount-signer.private" "$out/"
  reset
  local t0 t1 t2
  t0=$(now)
  "$ccoctl" aws create-all --name bench --region us-east-1 --credentials-requests-dir "$reqs" --output-dir "$out" \
    --issuer-thumbprint 0123456789abcdef0123456789abcdef01234567 >/dev/null 2>"$work/create-$n-$ms.log"
  t1=$(now)
  "$ccoctl" aws delete --name bench --region us-east-1 >/dev/null 2>"$work/delete-$n-$ms.log"
  t2=$(now)
  local create_s delete_s
  create_s=$(echo "$t1 - $t0" | bc); delete_s=$(echo "$t2 - $t1" | bc)
  # floor: same inputs (from a dry run), best concurrency; concurrency 1 is the sequential pattern
  local dry="$work/dry-$n"; rm -rf "$dry"; mkdir -p "$dry"; cp "$work/key/serviceaccount-signer.private" "$dry/"
  "$ccoctl" aws create-all --name bench --region us-east-1 --credentials-requests-dir "$reqs" --output-dir "$dry" --dry-run >/dev/null 2>&1
  local best_c="" best_create="" best_delete="" seq_create="" seq_delete="" c fc fd
  for c in 1 4 16 32; do
    reset
    fc=$("$floor" create "$dry" bench "$c" | sed -n 's/.*elapsed_s=\([0-9.]*\).*/\1/p')
    fd=$("$floor" delete "$dry" bench "$c" | sed -n 's/.*elapsed_s=\([0-9.]*\).*/\1/p')
    if [ "$c" = 1 ]; then seq_create=$fc; seq_delete=$fd; fi
    if [ -z "$best_create" ] || [ "$(echo "$fc + $fd < $best_create + $best_delete" | bc)" = 1 ]; then
      best_c=$c; best_create=$fc; best_delete=$fd
    fi
  done
  printf 'bench=ccoctl-aws n=%s latency_ms=%s create_s=%.3f create_floor_s=%.3f create_ratio=%.2f create_seq_s=%.3f create_seq_ratio=%.3f delete_s=%.3f delete_floor_s=%.3f delete_ratio=%.2f delete_seq_s=%.3f delete_seq_ratio=%.3f floor_concurrency=%s load=%s\n' \
    "$n" "$ms" "$create_s" "$best_create" "$(echo "$create_s / $best_create" | bc -l)" \
    "$seq_create" "$(echo "$create_s / $seq_create" | bc -l)" \
    "$delete_s" "$best_delete" "$(echo "$delete_s / $best_delete" | bc -l)" \
    "$seq_delete" "$(echo "$delete_s / $seq_delete" | bc -l)" "$best_c" "$load"
}

for n in "${sizes[@]}"; do
  reqs="$work/reqs-$n"; mkdir -p "$reqs"
  "$venv/bin/python" - "$root/../shared/corpus/credreqs/aws" "$reqs" "$n" <<'PY'
import os, sys, yaml
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
docs = [yaml.safe_load(open(os.path.join(src, f))) for f in sorted(os.listdir(src)) if f.endswith(".yaml")]
for i in range(n):
    d = docs[i % len(docs)]
    d["metadata"]["name"] = f"synthetic-{i}"
    d["spec"]["secretRef"] = {"name": f"secret-{i}", "namespace": f"ns-{i % 13}"}
    with open(os.path.join(dst, f"req-{i:04d}.yaml"), "w") as f:
        yaml.safe_dump(d, f)
PY
  AWS_ENDPOINT_URL="$moto" measure "$n" 0
  if [ "$latency" != 0 ]; then
    AWS_ENDPOINT_URL="http://127.0.0.1:$pport" measure "$n" "$latency"
  fi
done
