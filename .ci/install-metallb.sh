#!/usr/bin/env bash
# Builds MetalLB's `controller` and `speaker` from the Go module proxy, for the tests that run a
# real MetalLB in frr-k8s mode against the suite's kube-apiserver (tests/metallb.rs).
#
# Output: ${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/metallb/
#   bin/controller, bin/speaker    the two MetalLB binaries (static, CGO off)
#   crds/*.yaml                    MetalLB's CRDs of the same release (config/crd/bases)
# The wrapper module, GOPATH, module cache and build cache live under the same metallb/
# directory, never inside the repository.
#
# Idempotent: when both binaries exist and the marker names the pinned version, nothing is
# built. A changed pin rebuilds.
#
# Why v0.16.1: v0.16.2 requires github.com/metallb/frr-k8s v0.0.27, whose module zip the proxy
# refuses; v0.16.0 is not served. MetalLB's go.mod has no replace lines, so a wrapper module
# that requires the release builds its main packages as they are.
#
# Measured on the 2-core / 24 GiB machine (Go 1.26.8), with other builds and tests sharing
# the cores (load average 10-19): cold (empty module and build caches) 16m36s wall, 308 s user
# + 43 s sys; reuse 0.1 s. Binaries about 64 MB each.
set -euo pipefail

METALLB_VERSION="0.16.1"

CACHE="${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/metallb"
BIN="$CACHE/bin"
MARKER="$BIN/.versions"
WANT_MARKER="metallb=v$METALLB_VERSION go-build=1"

log() { printf '[install-metallb] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

complete() {
    [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$WANT_MARKER" ] || return 1
    [ -x "$BIN/controller" ] && [ -x "$BIN/speaker" ] || return 1
    compgen -G "$CACHE/crds/*.yaml" >/dev/null || return 1
}

if complete; then
    log "reusing $BIN ($WANT_MARKER)"
    exit 0
fi

# shellcheck source=go-env.sh
. "$(dirname "$0")/go-env.sh"
go_build_begin "$CACHE"
log "using $("$GO" version) with GOPROXY=$("$GO" env GOPROXY), cache $CACHE"

src="$(go_wrapper_module "$CACHE/build/metallb-v$METALLB_VERSION" metallb-build "go.universe.tf/metallb@v$METALLB_VERSION")"
cd "$CACHE/build/metallb-v$METALLB_VERSION"
"$GO" get -tool "go.universe.tf/metallb/speaker@v$METALLB_VERSION" "go.universe.tf/metallb/controller@v$METALLB_VERSION"
for b in controller speaker; do
    go_build_static "go.universe.tf/metallb/$b" "$b"
done

rm -rf "$CACHE/crds" && mkdir -p "$CACHE/crds"
cp "$src"/config/crd/bases/*.yaml "$CACHE/crds/"
chmod -R u+w "$CACHE/crds"

printf '%s\n' "$WANT_MARKER" >"$MARKER"
log "built in $((SECONDS - START))s into $BIN"
