#!/usr/bin/env bash
# Installs the Node-based emulators into a project-local directory (.cache/node, git-ignored):
#   azurite 3.35.0 — the Azure Storage emulator (Blob service) the Azure tests publish the issuer to.
# Idempotent: a second run only checks the pinned version. Prints the directory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${CCO_NODE_DIR:-$root/.cache/node}"
want="3.35.0"
mkdir -p "$dir"
have="$(cat "$dir/node_modules/azurite/package.json" 2>/dev/null | sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' | head -n1 || true)"
if [ "$have" != "$want" ] || [ ! -e "$dir/node_modules/.bin/azurite-blob" ]; then
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "azurite@$want" >&2
fi
echo "$dir"
