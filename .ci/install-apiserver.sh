#!/usr/bin/env bash
# Builds a real kube-apiserver and etcd from the Go module proxy, for the integration tests
# that need a real Kubernetes API server (tests/apiserver/mod.rs).
#
# Output: ${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/apiserver/bin/{kube-apiserver,etcd}
# Everything else (wrapper modules, GOPATH, GOMODCACHE, GOCACHE) lives under the same
# apiserver/ directory, never inside the repository.
#
# Idempotent: when both binaries exist, run, and the marker file .versions names the pinned
# versions, nothing is built (a few hundred milliseconds). Otherwise both are (re)built.
# Needs only Go (>= the `go` line of k8s.io/kubernetes' go.mod, 1.26.0 for v1.36) and the
# module proxy. No cgo, no gcc.
#
# Why a wrapper module: k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) at the
# fake version v0.0.0 and maps them with replace directives that a consumer does not inherit,
# so `go install k8s.io/kubernetes/cmd/kube-apiserver@v1.x` cannot work. The wrapper adds its own
# `replace k8s.io/X => k8s.io/X v0.<minor>.<patch>` for every staging module, derived from the
# go.mod of the pinned release. etcd's server module has replace lines too, so it gets its own
# (separate) wrapper: one module per binary keeps each on exactly its upstream dependency set.
#
# Measured on the 2-core / 24 GiB machine (Go 1.26.8), while other builds shared the cores:
# cold (empty module and build caches) 10m52s wall, 426 s user + 104 s sys, 1.8 GB peak RSS,
# about 1 min of it etcd; rebuild with warm caches 23 s; reuse (marker matches) 0.2 s.
# Disk: about 3 GB under apiserver/ (module cache + build cache); kube-apiserver is ~105 MB.
set -euo pipefail

# ---------------------------------------------------------------- pinned versions
K8S_VERSION="1.36.3"       # k8s.io/kubernetes v1.36.3 -> staging modules v0.36.3
ETCD_VERSION="3.6.8"       # the etcd client version kube v1.36.3's go.mod pins (envtest pairs 1.36 with 3.6.8)

CACHE="${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/apiserver"
BIN="$CACHE/bin"
MARKER="$BIN/.versions"
WANT_MARKER="kube-apiserver=v$K8S_VERSION etcd=v$ETCD_VERSION go-build=1"

log() { printf '[install-apiserver] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

print_versions() {
    printf 'kube-apiserver: %s\n' "$("$BIN/kube-apiserver" --version 2>&1 | head -n1)"
    printf 'etcd:           %s\n' "$("$BIN/etcd" --version 2>&1 | head -n1)"
}

complete() {
    [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$WANT_MARKER" ] || return 1
    [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/etcd" ] || return 1
    check_versions 2>/dev/null || return 1
}

# Not `bin --version | grep -q`: grep -q exits at the first match, the writer gets SIGPIPE
# and pipefail turns the match into a failure.
check_versions() {
    local k e
    k="$("$BIN/kube-apiserver" --version 2>&1)" || { log "kube-apiserver --version failed: $k"; return 1; }
    e="$("$BIN/etcd" --version 2>&1)" || { log "etcd --version failed: $e"; return 1; }
    grep -qx "Kubernetes v$K8S_VERSION" <<<"$k" || { log "kube-apiserver reports $k, want v$K8S_VERSION"; return 1; }
    grep -qx "etcd Version: $ETCD_VERSION" <<<"$e" || { log "etcd reports $(head -n1 <<<"$e"), want $ETCD_VERSION"; return 1; }
}

if complete; then
    log "reusing $BIN ($WANT_MARKER)"
    print_versions
    exit 0
fi

# ---------------------------------------------------------------- Go environment
. "$(dirname "$0")/go-env.sh"
go_build_begin "$CACHE"

# ---------------------------------------------------------------- kube-apiserver
build_kube_apiserver() {
    local w="$CACHE/build/kube-apiserver-v$K8S_VERSION"
    local staging="v0.${K8S_VERSION#1.}"                 # 1.36.3 -> v0.36.3
    local minor; minor="$(cut -d. -f2 <<<"$K8S_VERSION")"
    rm -rf "$w" && mkdir -p "$w" && cd "$w"
    "$GO" mod init local/kube-apiserver-build >/dev/null 2>&1

    local upstream
    upstream="$("$GO" mod download -json "k8s.io/kubernetes@v$K8S_VERSION" |
        sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
    [ -f "$upstream" ] || die "cannot download go.mod of k8s.io/kubernetes@v$K8S_VERSION"

    # Same `go` and `godebug` lines as upstream, so the binary gets upstream's GODEBUG defaults.
    "$GO" mod edit -go="$(awk '$1=="go"{print $2; exit}' "$upstream")"
    awk '/^godebug \($/{b=1} b{print} b&&/^\)$/{b=0; next} /^godebug [^(]/{print}' "$upstream" >>go.mod

    local n=0 m
    for m in $(awk '$1 ~ /^k8s\.io\// && $2=="v0.0.0" {print $1}' "$upstream" | sort -u); do
        "$GO" mod edit -replace="$m=$m@$staging"
        n=$((n + 1))
    done
    [ "$n" -gt 20 ] || die "found only $n staging modules in $upstream"
    log "kube-apiserver v$K8S_VERSION: $n staging modules replaced by $staging"

    # The `tool` directive keeps the requirement alive under `go mod tidy`.
    "$GO" get -tool "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION"

    local v=k8s.io/component-base/version c=k8s.io/client-go/pkg/version ld="-s -w"
    local date; date="$(date -u +%FT%TZ)"
    for p in "$v" "$c"; do
        ld+=" -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
        ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
    done
    log "building kube-apiserver (cold: ~10 min on 2 cores)"
    "$GO" build -trimpath -tags=selinux,notest -ldflags="$ld" \
        -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
    mv -f "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
}

# ---------------------------------------------------------------- etcd
build_etcd() {
    local w="$CACHE/build/etcd-v$ETCD_VERSION"
    rm -rf "$w" && mkdir -p "$w" && cd "$w"
    "$GO" mod init local/etcd-build >/dev/null 2>&1
    local upstream
    upstream="$("$GO" mod download -json "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" |
        sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
    [ -f "$upstream" ] || die "cannot download go.mod of go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    "$GO" mod edit -go="$(awk '$1=="go"{print $2; exit}' "$upstream")"
    "$GO" get -tool "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    log "building etcd v$ETCD_VERSION"
    "$GO" build -trimpath -ldflags="-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
    mv -f "$BIN/etcd.tmp" "$BIN/etcd"
}

T0=$SECONDS
build_etcd
T_ETCD=$((SECONDS - T0))
T0=$SECONDS
build_kube_apiserver
T_KUBE=$((SECONDS - T0))

check_versions || die "the built binaries do not report the pinned versions"
printf '%s\n' "$WANT_MARKER" >"$MARKER"

log "built in $((SECONDS - START))s (etcd ${T_ETCD}s, kube-apiserver ${T_KUBE}s) into $BIN"
print_versions
