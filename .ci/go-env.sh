# Sourced by the install scripts that build Go programs from the module proxy: finds `go` and
# keeps GOPATH, the module cache, the build cache and scratch space under "$1" (never inside
# the repository). Static binaries (CGO off), the local toolchain only. The module proxy is
# the one this machine's Go is configured with (GOPROXY in the environment or `go env -w`).
go_env() {
    GO="$(command -v go || true)"
    [ -n "$GO" ] || GO=/usr/local/go/bin/go
    [ -x "$GO" ] || { echo "go not found (PATH or /usr/local/go/bin/go)" >&2; exit 1; }
    export GOPATH="$1/gopath"
    export GOMODCACHE="$1/gopath/pkg/mod"
    export GOCACHE="$1/gocache"
    export GOTMPDIR="$1/tmp"
    export GOTOOLCHAIN=local
    export CGO_ENABLED=0
    export GOFLAGS="-mod=mod -buildvcs=false"
    # GOPROXY, GONOSUMDB and friends: as this machine's Go is configured (`go env`)
    unset GOWORK GOOS GOARCH || true
    mkdir -p "$1/build" "$GOMODCACHE" "$GOCACHE" "$GOTMPDIR"
}

# go_wrapper_module DIR NAME MODULE@VERSION: a fresh wrapper module in DIR with the `go` line
# of MODULE's go.mod; prints MODULE's source directory.
go_wrapper_module() {
    local dir="$1" name="$2" modver="$3" info gomod src
    rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
    "$GO" mod init "local/$name" >/dev/null 2>&1
    info="$("$GO" mod download -json "$modver")"
    gomod="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p' <<<"$info")"
    src="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p' <<<"$info")"
    [ -f "$gomod" ] && [ -d "$src" ] || { echo "cannot download $modver" >&2; exit 1; }
    "$GO" mod edit -go="$(awk '$1=="go"{print $2; exit}' "$gomod")"
    printf '%s\n' "$src"
}

# go_build_static PACKAGE NAME: builds PACKAGE (a tool of the wrapper module in the current
# directory) into $BIN/NAME, stripped, replacing NAME only once the build succeeded.
go_build_static() {
    log "building $2 ($1)"
    "$GO" build -trimpath -ldflags="-s -w" -o "$BIN/$2.tmp" "$1"
    mv -f "$BIN/$2.tmp" "$BIN/$2"
}

# go_build_begin CACHE: the Go environment under CACHE, an empty marker (a build that stops
# half-way is rebuilt next time), $BIN made, and START for the script's closing time.
go_build_begin() {
    go_env "$1"
    mkdir -p "$BIN"
    rm -f "$MARKER"
    START=$SECONDS
}
