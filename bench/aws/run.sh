#!/usr/bin/env bash
# Benchmark: `ccoctl aws create-all` and `delete` against the local AWS emulator, compared with the
# emulator's floor (the same calls fired straight through the SDK at the best concurrency found).
#
# Usage: bench/aws/run.sh [N ...]            (default: 10 100 500)
# Prints one line per N:
#   bench=ccoctl-aws n=<N> create_s=… create_floor_s=… create_ratio=… delete_s=… delete_floor_s=… delete_ratio=… floor_concurrency=…
# The signing key is generated once beforehand, so the figures measure cloud work, not RSA key generation.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(10 100 500)
venv="$(bash scripts/setup-python.sh | tail -n1)"
cargo build -q -p ccoctl -p cco-aws --example floor --bin ccoctl
ccoctl="$root/target/debug/ccoctl"
floor="$root/target/debug/examples/floor"
work="$(mktemp -d)"
moto_pid=""
cleanup() { [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
for _ in $(seq 100); do curl -sf "$AWS_ENDPOINT_URL/moto-api/" >/dev/null 2>&1 && break; sleep 0.1; done
reset() { curl -sf -X POST "$AWS_ENDPOINT_URL/moto-api/reset" >/dev/null; }
now() { date +%s.%N; }
"$ccoctl" aws create-key-pair --output-dir "$work/key" >/dev/null 2>&1

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
  out="$work/out-$n"; mkdir -p "$out"; cp "$work/key/serviceaccount-signer.private" "$out/"
  # ccoctl
  reset
  t0=$(now)
  "$ccoctl" aws create-all --name bench --region us-east-1 --credentials-requests-dir "$reqs" --output-dir "$out" \
    --issuer-thumbprint 0123456789abcdef0123456789abcdef01234567 >/dev/null 2>"$work/create-$n.log"
  t1=$(now)
  "$ccoctl" aws delete --name bench --region us-east-1 >/dev/null 2>"$work/delete-$n.log"
  t2=$(now)
  create_s=$(echo "$t1 - $t0" | bc); delete_s=$(echo "$t2 - $t1" | bc)
  # floor: same inputs (from a dry run), best concurrency
  dry="$work/dry-$n"; mkdir -p "$dry"; cp "$work/key/serviceaccount-signer.private" "$dry/"
  "$ccoctl" aws create-all --name bench --region us-east-1 --credentials-requests-dir "$reqs" --output-dir "$dry" --dry-run >/dev/null 2>&1
  best_c=""; best_create=""; best_delete=""
  for c in 1 4 16 32; do
    reset
    fc=$("$floor" create "$dry" bench "$c" | sed -n 's/.*elapsed_s=\([0-9.]*\).*/\1/p')
    fd=$("$floor" delete "$dry" bench "$c" | sed -n 's/.*elapsed_s=\([0-9.]*\).*/\1/p')
    if [ -z "$best_create" ] || [ "$(echo "$fc + $fd < $best_create + $best_delete" | bc)" = 1 ]; then
      best_c=$c; best_create=$fc; best_delete=$fd
    fi
  done
  printf 'bench=ccoctl-aws n=%s create_s=%.3f create_floor_s=%.3f create_ratio=%.2f delete_s=%.3f delete_floor_s=%.3f delete_ratio=%.2f floor_concurrency=%s\n' \
    "$n" "$create_s" "$best_create" "$(echo "$create_s / $best_create" | bc -l)" \
    "$delete_s" "$best_delete" "$(echo "$delete_s / $best_delete" | bc -l)" "$best_c"
done
