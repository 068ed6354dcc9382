#!/usr/bin/env bash
# Builds GoBGP v4 (`gobgpd` and the `gobgp` CLI) from the Go module proxy, for the test where
# gobgpd is the router and puts its best paths into the kernel through zebra
# (tests/lab_gobgp_zebra.rs). Debian bookworm's gobgpd 3.10 stays the lab's ordinary peer.
#
# Output: ${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/gobgp-<version>/
#   bin/gobgpd, bin/gobgp    static binaries (CGO off)
# The wrapper module, GOPATH, module cache and build cache live under the same directory,
# never inside the repository.
#
# Idempotent: when both binaries exist, report the pinned version and the marker names it,
# nothing is built. Otherwise both are (re)built.
#
# GoBGP's go.mod has no replace lines, so a wrapper module that requires the release as a
# tool builds its two main packages with exactly upstream's dependency set.
#
# Measured on the 2-core / 24 GiB machine (Go 1.26.8, load average about 4): cold (empty
# module and build caches) 63 s wall, 49 s user + 9 s sys; reuse under 0.1 s. Binaries about
# 22 MB (gobgpd) and 18 MB (gobgp); about 450 MB under gobgp-<version>/ with the caches.
set -euo pipefail

GOBGP_VERSION="4.8.0"

CACHE="${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/gobgp-$GOBGP_VERSION"
BIN="$CACHE/bin"
MARKER="$BIN/.versions"
WANT_MARKER="gobgp=v$GOBGP_VERSION go-build=1"
MODULE="github.com/osrg/gobgp/v4"

log() { printf '[install-gobgp] %s\n' "$*" >&2; }

complete() {
    [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$WANT_MARKER" ] || return 1
    [ -x "$BIN/gobgpd" ] && [ -x "$BIN/gobgp" ] || return 1
    "$BIN/gobgpd" --version 2>/dev/null | grep -qF "$GOBGP_VERSION" || return 1
}

if complete; then
    log "reusing $BIN ($WANT_MARKER)"
    exit 0
fi

# shellcheck source=go-env.sh
. "$(dirname "$0")/go-env.sh"
go_build_begin "$CACHE"
log "using $("$GO" version) with GOPROXY=$("$GO" env GOPROXY), cache $CACHE"

go_wrapper_module "$CACHE/build/gobgp-v$GOBGP_VERSION" gobgp-build "$MODULE@v$GOBGP_VERSION" >/dev/null
cd "$CACHE/build/gobgp-v$GOBGP_VERSION"
"$GO" get -tool "$MODULE/cmd/gobgpd@v$GOBGP_VERSION" "$MODULE/cmd/gobgp@v$GOBGP_VERSION"
for b in gobgpd gobgp; do
    go_build_static "$MODULE/cmd/$b" "$b"
done

"$BIN/gobgpd" --version | grep -qF "$GOBGP_VERSION" || {
    log "ERROR: $BIN/gobgpd --version does not name $GOBGP_VERSION: $("$BIN/gobgpd" --version 2>&1)"
    exit 1
}
printf '%s\n' "$WANT_MARKER" >"$MARKER"
log "built in $((SECONDS - START))s into $BIN"
