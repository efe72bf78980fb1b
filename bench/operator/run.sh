#!/usr/bin/env bash
# Operator benchmark: N CredentialsRequests (default 1000) in token mode, then in Passthrough mode,
# each against a fresh API server from the launcher (tools/kube/start.sh). For each mode it prints
# one JSON line: time until every target Secret exists, the operator's peak RSS, reconciles/s, time
# from the operator's start to its first ClusterOperator status, and — from the API server's audit
# log, which records every request of the operator's ServiceAccount — API requests per
# CredentialsRequest and write requests per target Secret (counted until SETTLE seconds after the
# last Secret appeared, so late duplicate writes show).
#
#   bench/operator/run.sh            # COUNT=1000 MODES="token passthrough"
#   COUNT=200 MODES=token bench/operator/run.sh
#   PROFILE=debug bench/operator/run.sh   # a debug build (request counts as release; times and RSS not)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
COUNT="${COUNT:-1000}"
MODES="${MODES:-token passthrough}"
SETTLE="${SETTLE:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

PROFILE="${PROFILE:-release}"
case "$PROFILE" in
  release) cargo build --release -q -p cco-operator --bin cloud-credential-operator --example operator_bench ;;
  debug) cargo build -q -p cco-operator --bin cloud-credential-operator --example operator_bench ;;
  *) echo "PROFILE must be release or debug, not $PROFILE" >&2; exit 2 ;;
esac
operator="$CARGO_TARGET_DIR/$PROFILE/cloud-credential-operator"
driver="$CARGO_TARGET_DIR/$PROFILE/examples/operator_bench"

work="$(mktemp -d "${TMPDIR:-/tmp}/cco-bench.XXXXXX")"
kube_pid=""
cleanup() {
  if [[ -n "$kube_pid" ]]; then kill "$kube_pid" 2>/dev/null || true; wait "$kube_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Only the operator's own requests are logged, once each (at completion; a watch also when it starts).
cat >"$work/audit-policy.yaml" <<'EOF_POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  users: ["system:serviceaccount:openshift-cloud-credential-operator:cloud-credential-operator"]
- level: None
EOF_POLICY

for mode in $MODES; do
  out="$work/kube-$mode.out"
  audit="$work/audit-$mode.log"
  EXTRA_APISERVER_ARGS="--audit-policy-file=$work/audit-policy.yaml --audit-log-path=$audit --audit-log-format=json --audit-log-maxsize=0" \
    "$root/tools/kube/start.sh" >"$out" 2>"$work/kube-$mode.err" &
  kube_pid=$!
  kubeconfig=""
  for _ in $(seq 1 600); do
    kubeconfig="$(grep -m1 'kubeconfig' "$out" 2>/dev/null || true)"
    [[ -n "$kubeconfig" && -f "$kubeconfig" ]] && break
    kill -0 "$kube_pid" 2>/dev/null || { cat "$work/kube-$mode.err" >&2; exit 1; }
    sleep 0.5
  done
  [[ -f "$kubeconfig" ]] || { echo "API server did not start" >&2; exit 1; }
  "$driver" --kubeconfig "$kubeconfig" --mode "$mode" --count "$COUNT" --operator "$operator" --repo "$root" \
    --audit-log "$audit" --settle "$SETTLE"
  kill "$kube_pid" 2>/dev/null || true
  wait "$kube_pid" 2>/dev/null || true
  kube_pid=""
done
