# Sourced by the .ci/install-*.sh scripts that build Go programs from the module proxy:
# `go_env DIR` sets GO (the go binary) and a Go environment whose module cache, build cache and
# scratch space all live under DIR (never in the repository), with static builds, no toolchain
# downloads and no VCS stamping. Needs the caller's `log` and `die`.
go_env() {
    local cache="$1"
    GO="$(command -v go || true)"
    [ -n "$GO" ] || GO=/usr/local/go/bin/go
    [ -x "$GO" ] || die "go not found (PATH or /usr/local/go/bin/go)"
    export GOPATH="$cache/gopath"
    export GOMODCACHE="$cache/gopath/pkg/mod"
    export GOCACHE="$cache/gocache"
    export GOTMPDIR="$cache/tmp"      # go build's scratch directories
    export GOTOOLCHAIN=local          # a too-new `go` line fails loudly instead of fetching a toolchain
    export CGO_ENABLED=0              # static binaries, as upstream builds them
    export GOFLAGS="-mod=mod -buildvcs=false"
    export GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"
    unset GOWORK GOOS GOARCH || true
    mkdir -p "$cache/build" "$GOMODCACHE" "$GOCACHE" "$GOTMPDIR"
    log "using $("$GO" version) with GOPROXY=$GOPROXY, cache $cache"
}
