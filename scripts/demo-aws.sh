#!/usr/bin/env bash
# The main job, end to end, against the local AWS emulator:
#   installs moto into .venv, builds ccoctl, starts the emulator on a free loopback port, and runs
#   `ccoctl aws create-all` over every AWS CredentialsRequest in ../shared/corpus/credreqs/aws
#   (or $CREDREQS), writing keys, the Authentication manifest and the Secret manifests to _output/.
#   It then lists the cloud resources that now exist (through `ccoctl aws delete --dry-run`).
# KEEP_EMULATOR=1 leaves the emulator running and prints how to reach it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
name="${NAME:-demo}"
region="${REGION:-us-east-1}"
credreqs="${CREDREQS:-$root/../shared/corpus/credreqs/aws}"
out="${OUTPUT_DIR:-$root/_output}"

venv="$(bash scripts/setup-python.sh | tail -n1)"
cargo build -q -p ccoctl
ccoctl="$root/target/debug/ccoctl"

port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$venv/bin/python" "$root/crates/cco-testsupport/python/moto_server.py" -H 127.0.0.1 -p "$port" >"${TMPDIR:-/tmp}/moto-demo.log" 2>&1 &
moto_pid=$!
if [ "${KEEP_EMULATOR:-0}" != 1 ]; then trap 'kill $moto_pid 2>/dev/null || true' EXIT; fi
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION="$region"
for _ in $(seq 100); do curl -sf "$AWS_ENDPOINT_URL/moto-api/" >/dev/null 2>&1 && break; sleep 0.1; done
echo "AWS emulator (moto) listening on $AWS_ENDPOINT_URL"

# The emulated issuer is not served over public TLS, so the thumbprint is given (see README).
"$ccoctl" aws create-all --name "$name" --region "$region" \
  --credentials-requests-dir "$credreqs" --output-dir "$out" \
  --issuer-thumbprint 0123456789abcdef0123456789abcdef01234567

echo
echo "Files written to $out:"
(cd "$out" && find . -type f | sort)
echo
echo "Cloud resources owned by '$name' in the emulator:"
"$ccoctl" aws delete --name "$name" --region "$region" --dry-run
if [ "${KEEP_EMULATOR:-0}" = 1 ]; then
  echo
  echo "Emulator left running (pid $moto_pid). To use it:"
  echo "  export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
fi
