#!/usr/bin/env bash
# Start a throw-away etcd + kube-apiserver on loopback (random free ports, real
# TLS, RBAC, default admission chain, service-account token signing) and run
# until killed. Prints the admin kubeconfig path on stdout once /readyz is OK.
#
# Environment (all optional):
#   SA_SIGNING_KEY   PEM RSA private key used to sign SA tokens (PKCS#1 or
#                    PKCS#8); generated into the work dir when unset.
#   SA_PUBLIC_KEY    PEM public key(s) that verify SA tokens; defaults to the
#                    signing key (the apiserver derives the public half).
#   SA_ISSUER        --service-account-issuer (default https://kubernetes.default.svc)
#   API_AUDIENCES    --api-audiences, comma separated (default: SA_ISSUER)
#   KUBE_BIN_DIR     dir holding kube-apiserver and etcd (default: ./build.sh)
#   KUBE_ENV_DIR     work dir to use (default: mktemp -d; removed on exit
#                    unless KUBE_ENV_KEEP=1)
#   EXTRA_APISERVER_ARGS  extra flags, word-split
#
# Usage: SA_SIGNING_KEY=key.pem SA_ISSUER=https://issuer.example tools/kube/start.sh
#        export KUBECONFIG=<printed path>; kubectl get ns   (kubectl not provided)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

SA_ISSUER="${SA_ISSUER:-https://kubernetes.default.svc}"
API_AUDIENCES="${API_AUDIENCES:-$SA_ISSUER}"
bin="${KUBE_BIN_DIR:-$("$here/build.sh" | tail -n1)}"

if [[ -n "${KUBE_ENV_DIR:-}" ]]; then
  dir="$KUBE_ENV_DIR"; mkdir -p "$dir"
else
  dir="$(mktemp -d "${TMPDIR:-/tmp}/cco-kube.XXXXXX")"
fi

pids=()
cleanup() {
  local p i alive
  trap '' INT TERM
  # Reverse order: apiserver first, then etcd. Graceful for up to 2s (apiserver shutdown is slow), then KILL.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for ((i = 0; i < 20; i++)); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [[ -z "${KUBE_ENV_DIR:-}" && "${KUBE_ENV_KEEP:-0}" != 1 ]]; then rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free loopback port: ask the kernel (python3 if present), else probe randomly.
free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    return
  fi
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}

# --- PKI ---------------------------------------------------------------------
pki="$dir/pki"; mkdir -p "$pki"
ossl() { openssl "$@" 2>>"$pki/openssl.log"; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
  -subj "/CN=cco-test-ca" -keyout "$pki/ca.key" -out "$pki/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
issue() { # name subject extfile-content
  local name=$1 subj=$2 ext=$3
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subj" \
    -keyout "$pki/$name.key" -out "$pki/$name.csr"
  printf '%s\n' "$ext" > "$pki/$name.ext"
  ossl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$pki/$name.ext" -out "$pki/$name.crt"
}
issue serving "/CN=kube-apiserver" \
  "$(printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
      'extendedKeyUsage=serverAuth' \
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc')"
issue admin "/O=system:masters/CN=cco-admin" \
  "$(printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
      'extendedKeyUsage=clientAuth')"

token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s,cco-admin-token,cco-admin-token-uid,"system:masters"\n' "$token" > "$pki/tokens.csv"
printf '%s\n' "$token" > "$pki/admin.token"

if [[ -z "${SA_SIGNING_KEY:-}" ]]; then
  SA_SIGNING_KEY="$pki/sa.key"
  ossl genrsa -traditional -out "$SA_SIGNING_KEY" 2048
fi
SA_PUBLIC_KEY="${SA_PUBLIC_KEY:-$SA_SIGNING_KEY}"

# --- etcd --------------------------------------------------------------------
etcd_port=$(free_port); peer_port=$(free_port)
etcd_url="http://127.0.0.1:$etcd_port"
"$bin/etcd" --name=default --data-dir="$dir/etcd" \
  --listen-client-urls="$etcd_url" --advertise-client-urls="$etcd_url" \
  --listen-peer-urls="http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
  --initial-cluster="default=http://127.0.0.1:$peer_port" \
  --unsafe-no-fsync=true --quota-backend-bytes=$((1 << 30)) --log-level=warn \
  >"$dir/etcd.log" 2>&1 &
pids+=($!)

# --- kube-apiserver ------------------------------------------------------------
port=$(free_port)
server="https://127.0.0.1:$port"
# shellcheck disable=SC2086
"$bin/kube-apiserver" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$port" \
  --cert-dir="$dir/apiserver-certs" \
  --tls-cert-file="$pki/serving.crt" --tls-private-key-file="$pki/serving.key" \
  --client-ca-file="$pki/ca.crt" --token-auth-file="$pki/tokens.csv" \
  --etcd-servers="$etcd_url" \
  --authorization-mode=RBAC \
  --service-account-issuer="$SA_ISSUER" --api-audiences="$API_AUDIENCES" \
  --service-account-signing-key-file="$SA_SIGNING_KEY" \
  --service-account-key-file="$SA_PUBLIC_KEY" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --allow-privileged=true --profiling=false \
  --enable-priority-and-fairness=false \
  ${EXTRA_APISERVER_ARGS:-} \
  >"$dir/kube-apiserver.log" 2>&1 &
pids+=($!)
apiserver_pid=$!

b64() { base64 -w0 < "$1"; }
cat > "$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cco-test
  cluster:
    server: $server
    certificate-authority-data: $(b64 "$pki/ca.crt")
users:
- name: cco-admin
  user:
    client-certificate-data: $(b64 "$pki/admin.crt")
    client-key-data: $(b64 "$pki/admin.key")
contexts:
- name: cco-test
  context: {cluster: cco-test, user: cco-admin}
current-context: cco-test
EOF

deadline=$((SECONDS + ${KUBE_START_TIMEOUT:-90}))
until curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $token" "$server/readyz" >/dev/null 2>&1; do
  if ! kill -0 "$apiserver_pid" 2>/dev/null; then
    echo "start.sh: kube-apiserver exited; log tail:" >&2; tail -n 30 "$dir/kube-apiserver.log" >&2; exit 1
  fi
  if (( SECONDS > deadline )); then
    echo "start.sh: timed out waiting for /readyz; log tail:" >&2; tail -n 30 "$dir/kube-apiserver.log" >&2; exit 1
  fi
  sleep 0.5
done

echo "start.sh: ready: server=$server dir=$dir (Ctrl-C to stop)" >&2
echo "$dir/kubeconfig"
wait -n "${pids[@]}"
echo "start.sh: a child exited; stopping" >&2
exit 1
