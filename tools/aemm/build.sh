#!/usr/bin/env bash
# Install amazon-ec2-metadata-mock (AWS's EC2 instance metadata service emulator, a Go module on
# the Go module proxy) into a cache directory outside target/, once per pinned version. The tests
# of `--compose-role-arn` (crates/cco-webhook) run it as the instance metadata service.
#
#   ${CCO_AEMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cco-rs/aemm}/<version>/bin/ec2-metadata-mock
#
# Needs only `go` and the Go module proxy. The last stdout line is the binary's path.
set -euo pipefail

VERSION=v1.13.0
MODULE=github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock
GO="${CCO_AEMM_GO:-go}"

cache_root="${CCO_AEMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cco-rs/aemm}"
bin="$cache_root/$VERSION/bin/ec2-metadata-mock"
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi
command -v "$GO" >/dev/null || { echo "aemm/build.sh: '$GO' not found; install Go" >&2; exit 1; }

mkdir -p "$cache_root"
exec 9>"$cache_root/.build.lock"
flock 9
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi
tmp="$(mktemp -d "$cache_root/.tmp-$VERSION.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "aemm/build.sh: installing $MODULE@$VERSION" >&2
(
  export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOWORK=off GOBIN="$tmp/bin"
  "$GO" install -trimpath -ldflags="-s -w" "$MODULE@$VERSION"
) >&2
mkdir -p "$(dirname "$bin")"
mv "$tmp/bin/ec2-metadata-mock" "$bin"
echo "$bin"
