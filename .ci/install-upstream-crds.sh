#!/usr/bin/env bash
# Fetches the CRDs of metallb/frr-k8s v0.0.26 (the release frr-composer is a drop-in for) from the
# Go module proxy, for tests/upstream_crds.rs, which compares our generated schemas with them.
#
# Output: ${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/upstream/frr-k8s-v0.0.26/crds/*.yaml
# (copies of the module's config/crd/bases). The module cache lives under the same upstream/
# directory, never inside the repository. Idempotent: when the copies exist, nothing is fetched.
# Needs only Go and the module proxy (no build: `go mod download` fetches and verifies the zip).
set -euo pipefail

MODULE="github.com/metallb/frr-k8s"
VERSION="v0.0.26"

CACHE="${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/upstream"
OUT="$CACHE/frr-k8s-$VERSION/crds"

log() { printf '[install-upstream-crds] %s\n' "$*" >&2; }

if [ -f "$OUT/.complete" ]; then
    exit 0
fi

mkdir -p "$CACHE"
# shellcheck source=go-env.sh
. "$(dirname "$0")/go-env.sh"
go_env "$CACHE"

log "fetching $MODULE@$VERSION"
json="$(cd "$CACHE" && "$GO" mod download -json "$MODULE@$VERSION")"
dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")"
[ -n "$dir" ] && [ -d "$dir/config/crd/bases" ] || { log "ERROR: no config/crd/bases in the module: $json"; exit 1; }

tmp="$(mktemp -d "$CACHE/crds.XXXXXX")"
cp "$dir"/config/crd/bases/*.yaml "$tmp/"
chmod 0644 "$tmp"/*.yaml
touch "$tmp/.complete"
rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
mv "$tmp" "$OUT"
log "upstream CRDs in $OUT: $(cd "$OUT" && ls *.yaml | tr '\n' ' ')"
