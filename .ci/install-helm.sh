#!/usr/bin/env bash
# Builds helm (for the chart in deploy/chart) and kustomize (what `kubectl kustomize` runs, to
# compare the chart with deploy/) from the Go module proxy, for tests/helm.rs.
#
# Output: ${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/helm/bin/{helm,kustomize}
# Everything else (wrapper modules, GOPATH, GOMODCACHE, GOCACHE) lives under the same helm/
# directory, never inside the repository. The frr-k8s chart that deploy/chart's value names
# follow is fetched into the same module cache (`frr-k8s@<version>/charts/frr-k8s`).
#
# Idempotent: when both binaries exist, run, and the marker file .versions names the pinned
# versions, nothing is built. Otherwise both are (re)built. Needs only Go (>= 1.26.0, the `go`
# line of helm's go.mod) and the module proxy. No cgo.
#
# A wrapper module per binary, as .ci/install-apiserver.sh does: `go get -tool` keeps each
# binary on exactly its upstream dependency set, and the build gets the same flags as
# upstream's Makefile (version ldflags, and helm's Kubernetes version for `helm lint`, which
# its Makefile derives from the client-go it requires).
#
# Measured on the 2-core / 24 GiB machine (Go 1.26.8), while other builds shared the cores
# (load average 12-19): cold (empty module and build caches) 16m11s wall but only 263 s user +
# 34 s sys (helm 845 s wall, kustomize 124 s); rebuild with warm caches 20 s; reuse (marker
# matches) 0.2 s. Disk: about 1.4 GB under helm/; helm is ~62 MB, kustomize ~16 MB.
set -euo pipefail

# ---------------------------------------------------------------- pinned versions
HELM_VERSION="3.22.0"        # helm.sh/helm/v3
KUSTOMIZE_VERSION="5.8.1"    # sigs.k8s.io/kustomize/kustomize/v5: the one kubectl v1.36 embeds
FRR_K8S_VERSION="0.0.26"     # github.com/metallb/frr-k8s: its chart names our values

CACHE="${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/helm"
BIN="$CACHE/bin"
MARKER="$BIN/.versions"
WANT_MARKER="helm=v$HELM_VERSION kustomize=v$KUSTOMIZE_VERSION frr-k8s=v$FRR_K8S_VERSION go-build=1"

log() { printf '[install-helm] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

check_versions() {
    local h k
    h="$("$BIN/helm" version --template '{{.Version}}' 2>&1)" || { log "helm version failed: $h"; return 1; }
    k="$("$BIN/kustomize" version 2>&1)" || { log "kustomize version failed: $k"; return 1; }
    [ "$h" = "v$HELM_VERSION" ] || { log "helm reports $h, want v$HELM_VERSION"; return 1; }
    [ "$k" = "v$KUSTOMIZE_VERSION" ] || { log "kustomize reports $k, want v$KUSTOMIZE_VERSION"; return 1; }
}

complete() {
    [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$WANT_MARKER" ] || return 1
    [ -x "$BIN/helm" ] && [ -x "$BIN/kustomize" ] || return 1
    [ -f "$CACHE/frr-k8s-chart/Chart.yaml" ] || return 1
    check_versions 2>/dev/null || return 1
}

if complete; then
    log "reusing $BIN ($WANT_MARKER)"
    exit 0
fi

# ---------------------------------------------------------------- Go environment
. "$(dirname "$0")/go-env.sh"
go_build_begin "$CACHE"

# `go mod download -json MODULE@VERSION` field (GoMod, Dir, or Origin's Hash).
download_field() {
    "$GO" mod download -json "$1" | sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",*\$/\1/p" | head -n1
}

# A fresh wrapper module in $CACHE/build/$1 that requires $2 (a package@version) as a tool,
# with the `go` line of the upstream module $3.
wrapper() {
    local w="$CACHE/build/$1" upstream
    rm -rf "$w" && mkdir -p "$w" && cd "$w"
    "$GO" mod init "local/$1" >/dev/null 2>&1
    upstream="$(download_field "$3" GoMod)"
    [ -f "$upstream" ] || die "cannot download go.mod of $3"
    "$GO" mod edit -go="$(awk '$1=="go"{print $2; exit}' "$upstream")"
    "$GO" get -tool "$2"
}

# ---------------------------------------------------------------- helm
build_helm() {
    local mod="helm.sh/helm/v3@v$HELM_VERSION"
    wrapper "helm-v$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" "$mod"
    local commit client_go major minor
    commit="$(download_field "$mod" Hash)"
    # upstream's Makefile: Kubernetes major = client-go's major + 1, minor = client-go's minor
    client_go="$(awk '$1=="k8s.io/client-go"{print $2; exit}' "$(download_field "$mod" GoMod)")"
    major=$(( $(cut -d. -f1 <<<"${client_go#v}") + 1 ))
    minor="$(cut -d. -f2 <<<"$client_go")"
    local ld="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
    ld+=" -X helm.sh/helm/v3/internal/version.gitCommit=$commit"
    ld+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
        ld+=" -X $p.k8sVersionMajor=$major -X $p.k8sVersionMinor=$minor"
    done
    log "building helm v$HELM_VERSION (Kubernetes $major.$minor)"
    "$GO" build -trimpath -ldflags="$ld" -o "$BIN/helm.tmp" helm.sh/helm/v3/cmd/helm
    mv -f "$BIN/helm.tmp" "$BIN/helm"
}

# ---------------------------------------------------------------- kustomize
build_kustomize() {
    local mod="sigs.k8s.io/kustomize/kustomize/v5@v$KUSTOMIZE_VERSION"
    wrapper "kustomize-v$KUSTOMIZE_VERSION" "$mod" "$mod"
    log "building kustomize v$KUSTOMIZE_VERSION"
    "$GO" build -trimpath -ldflags="-s -w" -o "$BIN/kustomize.tmp" sigs.k8s.io/kustomize/kustomize/v5
    mv -f "$BIN/kustomize.tmp" "$BIN/kustomize"
}

# ---------------------------------------------------------------- frr-k8s chart (reference)
fetch_frr_k8s_chart() {
    local dir
    dir="$(download_field "github.com/metallb/frr-k8s@v$FRR_K8S_VERSION" Dir)"
    [ -f "$dir/charts/frr-k8s/Chart.yaml" ] || die "no charts/frr-k8s in github.com/metallb/frr-k8s@v$FRR_K8S_VERSION"
    ln -sfn "$dir/charts/frr-k8s" "$CACHE/frr-k8s-chart"
}

T0=$SECONDS
build_helm
T_HELM=$((SECONDS - T0))
T0=$SECONDS
build_kustomize
T_KUST=$((SECONDS - T0))
fetch_frr_k8s_chart

check_versions || die "the built binaries do not report the pinned versions"
printf '%s\n' "$WANT_MARKER" >"$MARKER"
log "built in $((SECONDS - START))s (helm ${T_HELM}s, kustomize ${T_KUST}s) into $BIN"
