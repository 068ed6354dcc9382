#!/usr/bin/env bash
# What the one-node Kubernetes of tests/cluster needs besides kube-apiserver and etcd
# (.ci/install-apiserver.sh, run first):
#   - kubelet, kube-controller-manager, kube-scheduler and kube-proxy v1.36.3, built from the Go
#     module proxy with kube-apiserver's wrapper module, module cache and build cache;
#   - containerd, runc, the CNI plugins, and umoci/skopeo/mmdebstrap from Debian;
#   - images built here, without a registry, as OCI layouts: a sandbox ("pause") image and FRR
#     from Debian packages in the upstream FRR image's layout (8.4 from bookworm, 10.3 from
#     trixie). The frr-composer image (FRR + the binary cargo built) is added by the test
#     harness, since it changes with every build.
#
# Output under ${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/cluster: bin/ (the four
# binaries, marker .versions) and images/oci (tags pause, frr-8.4, frr-10.3; marker per tag).
# Idempotent: what is present and matches the pinned versions is reused.
# Usage: install-cluster.sh [packages] [images] [binaries] [upgrade-image]
#   (default: the first three; images are pause and FRR 8.4, 10.3 and 10.7; upgrade-image
#   builds only the frr-10.7 one, which benches/frr_upgrade.rs upgrades to)
set -euo pipefail

K8S_VERSION="1.36.3"
COMMANDS=(kubelet kube-controller-manager kube-scheduler kube-proxy)
PACKAGES=(containerd runc containernetworking-plugins umoci skopeo mmdebstrap gcc libc6-dev)
# image recipe version: bump to rebuild the cached images
IMAGE_RECIPE=1
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

ROOT="${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}"
CACHE="$ROOT/cluster"
BIN="$CACHE/bin"
OCI="$CACHE/images/oci"
APISERVER_CACHE="$ROOT/apiserver"
HERE="$(cd "$(dirname "$0")" && pwd)"

log() { printf '[install-cluster] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (Debian packages, images)"
STAGES=("$@")
[ ${#STAGES[@]} -gt 0 ] || STAGES=(packages images binaries)
want() { local s; for s in "${STAGES[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

# ---------------------------------------------------------------- Debian packages
install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "packages already installed"
        return
    fi
    log "installing ${missing[*]}"
    # no service starts by maintainer scripts: the harness runs its own containerd
    local policy=/usr/sbin/policy-rc.d created=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created=1
    fi
    apt-get update -qq || apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    [ -z "$created" ] || rm -f "$policy"
}

# ---------------------------------------------------------------- images
# The upstream image starts FRR with /usr/lib/frr/docker-start under /sbin/tini; Debian has
# no docker-start and installs tini as /usr/bin/tini.
DOCKER_START='#!/bin/sh
# Starts the daemons of /etc/frr/daemons under watchfrr (as the upstream image'"'"'s
# docker-start does) and stops them on SIGTERM.
set -e
chown -R frr:frr /etc/frr || true
/usr/lib/frr/frrinit.sh start
trap "/usr/lib/frr/frrinit.sh stop; exit 0" TERM INT
while :; do sleep 3600 & wait $!; done
'

PAUSE_C='#include <signal.h>
#include <unistd.h>
static void stop(int s) { (void)s; _exit(0); }
int main(void) {
    signal(SIGTERM, stop);
    signal(SIGINT, stop);
    for (;;) pause();
}
'

image_done() { [ "$(cat "$CACHE/images/$1.done" 2>/dev/null)" = "$IMAGE_RECIPE" ] && umoci stat --image "$OCI:$1" >/dev/null 2>&1; }

oci_layout() {
    [ -f "$OCI/index.json" ] || { mkdir -p "$(dirname "$OCI")" && umoci init --layout "$OCI"; }
}

build_pause() {
    image_done pause && { log "reusing image pause"; return; }
    local w; w="$(mktemp -d)"
    mkdir -p "$w/root"
    printf '%s' "$PAUSE_C" >"$w/pause.c"
    gcc -static -Os -o "$w/root/pause" "$w/pause.c"
    strip "$w/root/pause"
    tar --owner=0 --group=0 -C "$w/root" -cf "$w/layer.tar" pause
    oci_layout
    umoci rm --image "$OCI:pause" 2>/dev/null || true
    umoci new --image "$OCI:pause"
    umoci raw add-layer --image "$OCI:pause" "$w/layer.tar"
    umoci config --image "$OCI:pause" --config.entrypoint /pause
    rm -rf "$w"
    echo "$IMAGE_RECIPE" >"$CACHE/images/pause.done"
    log "built image pause"
}

build_frr() { # build_frr TAG SUITE [extra packages] [mmdebstrap options...]
    local tag="$1" suite="$2" extra="${3:-}"
    local opts=("${@:4}")
    image_done "$tag" && { log "reusing image $tag"; return; }
    local w; w="$(mktemp -d -p "$CACHE")"
    printf '%s' "$DOCKER_START" >"$w/docker-start"
    log "mmdebstrap $suite for image $tag"
    mmdebstrap --variant=minbase --include="frr,tini,iproute2,procps$extra" "${opts[@]}" \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --customize-hook='ln -sf /usr/bin/tini "$1/sbin/tini"' \
        --customize-hook="install -m 0755 '$w/docker-start' \"\$1/usr/lib/frr/docker-start\"" \
        --customize-hook='chroot "$1" install -d -o frr -g frr /run/frr' \
        --customize-hook='rm -rf "$1/var/cache/apt" "$1/var/lib/apt/lists"; mkdir -p "$1/var/cache/apt" "$1/var/lib/apt/lists"' \
        "$suite" "$w/rootfs.tar" "$MIRROR" >"$w/mmdebstrap.log" 2>&1 ||
        { tail -n 30 "$w/mmdebstrap.log" >&2; die "mmdebstrap $suite failed"; }
    oci_layout
    umoci rm --image "$OCI:$tag" 2>/dev/null || true
    umoci new --image "$OCI:$tag"
    umoci raw add-layer --image "$OCI:$tag" "$w/rootfs.tar"
    umoci config --image "$OCI:$tag" --config.entrypoint /sbin/tini --config.entrypoint -- \
        --config.cmd /usr/lib/frr/docker-start --config.env "PATH=$IMAGE_PATH"
    rm -rf "$w"
    echo "$IMAGE_RECIPE" >"$CACHE/images/$tag.done"
    log "built image $tag"
}

build_images() {
    # the Debian archive the host's apt uses (or FRR_COMPOSER_MIRROR)
    . "$HERE/host-apt.sh"
    MIRROR="$(host_debian_mirror)" || die "no Debian archive to build the images from"
    mkdir -p "$CACHE/images"
    build_pause
    build_frr frr-8.4 bookworm
    # trixie's frr creates its users with systemd-sysusers
    build_frr frr-10.3 trixie ",systemd-standalone-sysusers"
    build_frr_10_7
    umoci gc --layout "$OCI"
}

# FRR 10.7.1 from Debian forky (testing): a mirror may serve testing with a Release file past
# its Valid-Until date (debootstrap, which built the lab's forky chroot, does not check it; apt
# does)
build_frr_10_7() {
    build_frr frr-10.7 forky ",systemd-standalone-sysusers" --aptopt='Acquire::Check-Valid-Until "false"'
}

build_upgrade_image() {
    . "$HERE/host-apt.sh"
    MIRROR="$(host_debian_mirror)" || die "no Debian archive to build the images from"
    mkdir -p "$CACHE/images"
    build_frr_10_7
}

# ---------------------------------------------------------------- Kubernetes binaries
binaries_done() {
    [ "$(cat "$BIN/.versions" 2>/dev/null)" = "v$K8S_VERSION ${COMMANDS[*]}" ] || return 1
    local c
    for c in "${COMMANDS[@]}"; do
        [ -x "$BIN/$c" ] && "$BIN/$c" --version 2>/dev/null | grep -q "v$K8S_VERSION" || return 1
    done
}

build_binaries() {
    if binaries_done; then
        log "reusing $BIN (v$K8S_VERSION)"
        return
    fi
    # kube-apiserver's wrapper module (go.mod with the staging replaces) and its caches
    "$HERE/install-apiserver.sh" >/dev/null
    local wrapper="$APISERVER_CACHE/build/kube-apiserver-v$K8S_VERSION"
    [ -f "$wrapper/go.mod" ] || die "no wrapper module at $wrapper (run .ci/install-apiserver.sh)"
    . "$HERE/go-env.sh"
    go_env "$APISERVER_CACHE"
    local go="$GO"
    local w="$CACHE/build/kube-v$K8S_VERSION"
    rm -rf "$w" && mkdir -p "$w" "$BIN" "$GOTMPDIR"
    cp "$wrapper/go.mod" "$wrapper/go.sum" "$w/"
    cd "$w"
    sed -i 's#^module .*#module local/kube-cluster-build#' go.mod
    local c v=k8s.io/component-base/version cv=k8s.io/client-go/pkg/version
    local minor; minor="$(cut -d. -f2 <<<"$K8S_VERSION")"
    local ld="-s -w" date; date="$(date -u +%FT%TZ)"
    for p in "$v" "$cv"; do
        ld+=" -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
        ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
    done
    rm -f "$BIN/.versions"
    for c in "${COMMANDS[@]}"; do
        "$go" get -tool "k8s.io/kubernetes/cmd/$c@v$K8S_VERSION"
    done
    for c in "${COMMANDS[@]}"; do
        local t0=$SECONDS
        "$go" build -trimpath -tags=selinux,notest -ldflags="$ld" -o "$BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c"
        mv -f "$BIN/$c.tmp" "$BIN/$c"
        log "built $c in $((SECONDS - t0))s"
    done
    echo "v$K8S_VERSION ${COMMANDS[*]}" >"$BIN/.versions"
    binaries_done || die "the built binaries do not report v$K8S_VERSION"
}

START=$SECONDS
if want packages; then install_packages; fi
T=$SECONDS
if want images; then build_images; log "images: $((SECONDS - T))s"; fi
T=$SECONDS
if want binaries; then build_binaries; log "binaries: $((SECONDS - T))s"; fi
T=$SECONDS
if want upgrade-image; then build_upgrade_image; log "upgrade image: $((SECONDS - T))s"; fi
log "done in $((SECONDS - START))s"
