#!/usr/bin/env bash
# Installs the real FRR daemons the test suite runs against:
#   - FRR 8.4 natively (Debian bookworm packages frr, frr-pythontools),
#   - FRR 10.3 in a Debian trixie debootstrap chroot and FRR 10.7 in a Debian forky (testing)
#     one, cached OUTSIDE the repo at ${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/trixie
#     and .../forky,
#   - gobgpd (external BGP peer), debootstrap, iproute2.
# Idempotent: installs only what is missing, reuses a complete chroot (marker file
# .frr-composer-ready), and takes a few seconds when everything is already there.
# Never leaves FRR/GoBGP system services running and never leaves mounts behind.
# Needs root.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C

CACHE="${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}"
CHROOT="$CACHE/trixie"
CHROOT_FORKY="$CACHE/forky"
MARKER=".frr-composer-ready"
HOST_PKGS=(frr frr-pythontools debootstrap gobgpd iproute2 procps util-linux)

log() { printf '[install-frr] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"

# ---------------------------------------------------------------- cleanup state
MOUNTED=()              # mount points to unmount on exit, most recent last
POLICY_CREATED=""       # host policy-rc.d created by us, removed on exit

cleanup() {
    local rc=$? i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" 2>/dev/null || true
    done
    MOUNTED=()
    if [ -n "$POLICY_CREATED" ]; then rm -f "$POLICY_CREATED"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_in() { # mount_in TARGET mount-args...
    local target=$1; shift
    mount "$@" "$target"
    MOUNTED+=("$target")
}

# Unmount everything below $1 (left by an interrupted earlier run), deepest first.
umount_below() {
    local dir m
    dir=$(readlink -f "$1" 2>/dev/null || echo "$1")
    while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done < <(awk -v d="$dir" '{ gsub(/\\040/, " ", $2); if ($2 == d || index($2, d "/") == 1) print $2 }' \
        /proc/self/mounts | sort -r)
}

# Forbid service starts by maintainer scripts (Debian's policy-rc.d protocol).
no_service_starts() { # no_service_starts ROOT -> prints path if created
    local f="$1/usr/sbin/policy-rc.d"
    if [ ! -e "$f" ]; then
        mkdir -p "$1/usr/sbin"
        printf '#!/bin/sh\n# frr-composer: no service starts\nexit 101\n' >"$f"
        chmod 755 "$f"
        echo "$f"
    fi
}

# ------------------------------------------------------------ host packages
missing=()
for p in "${HOST_PKGS[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" != "ii " ]; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing host packages: ${missing[*]}"
    POLICY_CREATED=$(no_service_starts "")
    apt-get update -qq || apt-get update
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    if [ -n "$POLICY_CREATED" ]; then rm -f "$POLICY_CREATED"; POLICY_CREATED=""; fi
else
    log "host packages already installed"
fi

# Make sure no system FRR / GoBGP service runs: the tests start their own daemons
# with pathspaces (-N) and their own gobgpd instances.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    for svc in frr gobgpd; do
        if systemctl is-enabled --quiet "$svc" 2>/dev/null || systemctl is-active --quiet "$svc" 2>/dev/null; then
            log "stopping and disabling system service $svc"
            systemctl disable --now "$svc" >/dev/null 2>&1 || systemctl stop "$svc" || true
        fi
    done
fi
# Daemons of the default pathspace (pid files directly in /run/frr, never in
# /run/frr/<pathspace>/, so test instances are left alone).
for pidfile in /run/frr/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    case "$comm" in
        watchfrr|zebra|bgpd|bfdd|staticd|mgmtd|ospfd|ospf6d|ripd|ripngd|isisd|pimd|ldpd|nhrpd|eigrpd|babeld|sharpd|pbrd|fabricd|vrrpd|pathd)
            log "killing system FRR daemon $comm (pid $pid)"
            kill "$pid" 2>/dev/null || true ;;
    esac
done

# ------------------------------------------------------------ FRR chroots
# build_chroot DIR SUITE: Debian SUITE bootstrapped into DIR with FRR installed, unless DIR is
# already complete (its marker file names the FRR version).
build_chroot() {
    local chroot=$1 suite=$2 build="$1.partial" d ver
    if [ -s "$chroot/$MARKER" ] && [ -x "$chroot/usr/bin/vtysh" ] && [ -x "$chroot/usr/lib/frr/bgpd" ]; then
        log "reusing FRR chroot $chroot ($(cat "$chroot/$MARKER"))"
        return
    fi
    log "building an FRR chroot in $chroot (debootstrap $suite, takes a minute or more)"
    mkdir -p "$CACHE"
    for d in "$chroot" "$build"; do
        if [ -e "$d" ]; then
            umount_below "$d"
            rm -rf --one-file-system "$d"
        fi
    done
    if [ ! -e "/usr/share/debootstrap/scripts/$suite" ]; then
        # an older debootstrap knows no newer suite: they bootstrap like sid
        ln -s sid "/usr/share/debootstrap/scripts/$suite"
    fi
    # the Debian archive the host's apt uses (or FRR_COMPOSER_MIRROR)
    . "$(dirname "$0")/host-apt.sh"
    local_mirror="$(host_debian_mirror)" || die "no Debian archive to bootstrap from"
    debootstrap --variant=minbase "$suite" "$build" "$local_mirror" >"$CACHE/debootstrap-$suite.log" 2>&1 \
        || { tail -n 30 "$CACHE/debootstrap-$suite.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap-$suite.log)"; }

    no_service_starts "$build" >/dev/null
    cp -L /etc/resolv.conf "$build/etc/resolv.conf" 2>/dev/null || true
    # Mounts needed only while installing packages; cleaned up by the trap too.
    mount_in "$build/proc" -t proc proc
    mount_in "$build/dev" --bind /dev
    mount_in "$build/dev/pts" --bind /dev/pts
    in_chroot() { chroot "$build" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LC_ALL=C DEBIAN_FRONTEND=noninteractive "$@"; }
    {
        in_chroot dpkg --configure -a
        in_chroot apt-get -f install -y
        in_chroot apt-get update
        in_chroot apt-get install -y --no-install-recommends systemd-standalone-sysusers frr frr-pythontools
        in_chroot apt-get clean
    } >"$CACHE/chroot-install-$suite.log" 2>&1 \
        || { tail -n 30 "$CACHE/chroot-install-$suite.log" >&2; die "package install in chroot failed (log: $CACHE/chroot-install-$suite.log)"; }
    # Kill anything the packages may have started inside the chroot despite policy-rc.d.
    for p in /proc/[0-9]*; do
        if [ "$(readlink "$p/root" 2>/dev/null)" = "$(readlink -f "$build")" ]; then
            kill "${p#/proc/}" 2>/dev/null || true
        fi
    done
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do umount "${MOUNTED[i]}"; done
    MOUNTED=()

    # shellcheck disable=SC2016
    ver=$(chroot "$build" dpkg-query -W -f='${Version}' frr)
    [ -x "$build/usr/bin/vtysh" ] || die "vtysh missing in chroot"
    echo "frr $ver" >"$build/$MARKER"
    mv "$build" "$chroot"
    log "chroot ready: frr $ver"
}

# FRR 10.3 from Debian trixie, FRR 10.7 from Debian forky (testing)
build_chroot "$CHROOT" trixie
build_chroot "$CHROOT_FORKY" forky

# ------------------------------------------------------------ summary
# vtysh has no --version; its --help names the version ("Integrated shell for FRR (version X)").
vtysh_version() { "$@" --help 2>/dev/null | sed -n 's/.*Integrated shell for FRR (version \([^)]*\)).*/\1/p' | head -n 1; }
native=$(vtysh_version vtysh || true)
chrooted=$(vtysh_version chroot "$CHROOT" vtysh || true)
forky=$(vtysh_version chroot "$CHROOT_FORKY" vtysh || true)
[ -n "$native" ] || die "native vtysh does not work"
[ -n "$chrooted" ] || die "vtysh in chroot $CHROOT does not work"
[ -n "$forky" ] || die "vtysh in chroot $CHROOT_FORKY does not work"
echo "FRR native: vtysh $native (package $(dpkg-query -W -f='${Version}' frr))"
echo "FRR chroot: vtysh $chrooted ($(cat "$CHROOT/$MARKER"), $CHROOT)"
echo "FRR chroot: vtysh $forky ($(cat "$CHROOT_FORKY/$MARKER"), $CHROOT_FORKY)"
echo "GoBGP:      $(gobgpd --version 2>/dev/null | head -n 1 || echo '?')"
