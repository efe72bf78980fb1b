#!/usr/bin/env bash
# Build kube-apiserver and etcd (from Go modules, pinned in ./gomod) into a
# cache directory outside target/, so `cargo clean` does not throw them away.
#
#   ${CCO_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cco-rs/kube}/<pin>/bin/
#
# <pin> is derived from the component versions plus a hash of gomod/go.mod,
# gomod/go.sum and this script's build flags; binaries are rebuilt only when
# the pin changes (or a binary is missing). etcd is our gomod/etcd/main.go (etcd's
# own main with 4 MB write-ahead-log segments) and is rebuilt alone when that file
# changes (bin/etcd.stamp). The last stdout line is the bin dir.
#
# Needs only `go` (>= the version in gomod/go.mod) and the Go module proxy.
# Env knobs: CCO_KUBE_CACHE, CCO_KUBE_GO (go binary), CCO_KUBE_BUILD_P (go
# build -p, default 2), CCO_KUBE_FORCE=1 (rebuild even when cached).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
gomod="$here/gomod"
GO="${CCO_KUBE_GO:-go}"
PAR="${CCO_KUBE_BUILD_P:-2}"

K8S_VERSION=v1.34.4
ETCD_VERSION=v3.6.4

# Version stamping mirrors hack/lib/version.sh so /version reports v1.34.4.
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=34"
  LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

hash_inputs() {
  cat "$gomod/go.mod" "$gomod/go.sum"
  printf '%s\n' "$LDFLAGS" "$K8S_VERSION" "$ETCD_VERSION" "$(uname -m)"
}
hash="$(hash_inputs | sha256sum | cut -c1-12)"
etcd_stamp="$(sha256sum "$gomod/etcd/main.go" | cut -c1-12)"
pin="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_${hash}"

cache_root="${CCO_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cco-rs/kube}"
dest="$cache_root/$pin"
bin="$dest/bin"

have_etcd() { [[ -x "$bin/etcd" && "$(cat "$bin/etcd.stamp" 2>/dev/null)" == "$etcd_stamp" ]]; }
have_all() { [[ -x "$bin/kube-apiserver" ]] && have_etcd; }

if [[ "${CCO_KUBE_FORCE:-0}" != 1 ]] && have_all; then
  echo "$bin"
  exit 0
fi

command -v "$GO" >/dev/null || { echo "build.sh: '$GO' not found; install Go" >&2; exit 1; }

mkdir -p "$cache_root"
# Serialise concurrent builds (e.g. several test binaries starting at once).
exec 9>"$cache_root/.build.lock"
flock 9
if [[ "${CCO_KUBE_FORCE:-0}" != 1 ]] && have_all; then
  echo "$bin"
  exit 0
fi

tmp="$(mktemp -d "$cache_root/.tmp-$pin.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"

start=$SECONDS
export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOWORK=off
build_etcd() {
  (cd "$gomod" && "$GO" build -p "$PAR" -trimpath -ldflags="-s -w" -o "$tmp/bin/etcd" ./etcd) >&2
  "$tmp/bin/etcd" --version >&2
  echo "$etcd_stamp" >"$tmp/bin/etcd.stamp"
}

if [[ "${CCO_KUBE_FORCE:-0}" != 1 && -x "$bin/kube-apiserver" ]]; then
  echo "build.sh: rebuilding etcd $ETCD_VERSION into $bin" >&2
  build_etcd
  mv -f "$tmp/bin/etcd" "$bin/etcd"
  mv -f "$tmp/bin/etcd.stamp" "$bin/etcd.stamp"
  echo "build.sh: done in $((SECONDS - start))s" >&2
  echo "$bin"
  exit 0
fi

echo "build.sh: building kube-apiserver $K8S_VERSION and etcd $ETCD_VERSION into $bin (go build -p $PAR)" >&2
(cd "$gomod" && "$GO" build -p "$PAR" -trimpath -ldflags="$LDFLAGS" -o "$tmp/bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver) >&2
build_etcd
"$tmp/bin/kube-apiserver" --version >&2

rm -rf "$dest"
mkdir -p "$dest"
mv "$tmp/bin" "$bin"
echo "build.sh: done in $((SECONDS - start))s" >&2
echo "$bin"
