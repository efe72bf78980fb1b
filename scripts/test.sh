#!/usr/bin/env bash
# Runs every check and test of the project on a fresh machine:
#   1. installs the Python emulators into .venv (moto[server]),
#   2. builds (or reuses from cache) kube-apiserver and etcd from their Go modules, and
#      amazon-ec2-metadata-mock (the EC2 instance metadata emulator),
#   3. rustfmt --check, clippy -D warnings, and the whole cargo test suite.
# Idempotent; what is already installed is reused.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
step() { printf '\n==> %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
# Free space where the build and the tests write (the tests' API servers and emulators use TMPDIR).
disk() { df -h "$root" "${TMPDIR:-/tmp}" 2>/dev/null | awk 'NR == 1 || !seen[$0]++' || true; }

disk
step "Python emulators"
bash scripts/setup-python.sh
bash scripts/setup-node.sh  # azurite (Azure Storage emulator) into .cache/node

step "kube-apiserver and etcd (cached build)"
CCO_KUBE_BIN_DIR="$(bash tools/kube/build.sh | tail -n1)"
export CCO_KUBE_BIN_DIR

step "amazon-ec2-metadata-mock (cached build)"
CCO_AEMM_BIN="$(bash tools/aemm/build.sh | tail -n1)"
export CCO_AEMM_BIN

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "build the tests"
cargo test --workspace --no-run
disk

step "tests"
trap 'status=$?; disk; exit $status' EXIT
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"
