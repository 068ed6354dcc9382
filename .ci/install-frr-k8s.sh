#!/usr/bin/env bash
# Builds frr-k8s v0.0.26 itself (the controller, from the Go module proxy) and copies its
# reloader script, for the side-by-side benchmark of benches/metallb_side_by_side.rs. Not part
# of .ci/test: only the benchmark needs it.
#
# Output: ${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/frr-k8s/
#   bin/frr-k8s        the controller (static, CGO off)
#   frr-reloader.sh    cmd/reloader/frr-reloader.sh of the same module
#   crds/*.yaml        its CRDs (config/crd/bases)
# Measured: 8m37s wall with warm MetalLB module and build caches, on 2 busy cores.
# Go's module and build caches are shared with .ci/install-metallb.sh (same dependencies, so
# a warm MetalLB build makes this one short).
set -euo pipefail

FRRK8S_VERSION="0.0.26"

ROOT="${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}"
CACHE="$ROOT/frr-k8s"
GOC="$ROOT/metallb"
BIN="$CACHE/bin"
MARKER="$BIN/.versions"
WANT_MARKER="frr-k8s=v$FRRK8S_VERSION go-build=1"

log() { printf '[install-frr-k8s] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$WANT_MARKER" ] && [ -x "$BIN/frr-k8s" ] && [ -f "$CACHE/frr-reloader.sh" ]; then
    log "reusing $BIN ($WANT_MARKER)"
    exit 0
fi

# shellcheck source=go-env.sh
. "$(dirname "$0")/go-env.sh"
go_env "$GOC"
mkdir -p "$BIN" "$CACHE/build"
rm -f "$MARKER"
START=$SECONDS

src="$(go_wrapper_module "$CACHE/build/frr-k8s-v$FRRK8S_VERSION" frr-k8s-build "github.com/metallb/frr-k8s@v$FRRK8S_VERSION")"
cd "$CACHE/build/frr-k8s-v$FRRK8S_VERSION"
# the controller's main package moved between releases
pkg=""
for p in cmd/frr-k8s-controller cmd; do
    if [ -f "$src/$p/main.go" ]; then pkg="github.com/metallb/frr-k8s/$p"; break; fi
done
[ -n "$pkg" ] || die "no controller main package in $src/cmd"
"$GO" get -tool "$pkg@v$FRRK8S_VERSION"
go_build_static "$pkg" frr-k8s
cp "$src/cmd/reloader/frr-reloader.sh" "$CACHE/frr-reloader.sh"
rm -rf "$CACHE/crds" && mkdir -p "$CACHE/crds" && cp "$src"/config/crd/bases/*.yaml "$CACHE/crds/"
chmod -R u+w "$CACHE/crds" "$CACHE/frr-reloader.sh"
printf '%s\n' "$WANT_MARKER" >"$MARKER"
log "built in $((SECONDS - START))s into $BIN"
