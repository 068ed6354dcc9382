#!/usr/bin/env bash
# Fetches what upstream publishes about the API frr-composer is a drop-in for, from the Go module
# proxy (download only, nothing is built), for tests/upstream_crds.rs and tests/metallb_goldens.rs:
#   - frr-k8s v0.0.27's four CRDs. The proxy refuses the frr-k8s v0.0.27 zip, so they are taken
#     from the frr-k8s 0.0.27 Helm chart that MetalLB v0.16.2's module carries
#     (charts/metallb/charts/frr-k8s-0.0.27.tgz, charts/crds/templates);
#   - MetalLB v0.16.2's FRRConfiguration goldens (internal/bgp/frrk8s/testdata/*.golden): the
#     objects exactly as its speaker writes them.
#
# Output, under ${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/upstream:
#   frr-k8s-v0.0.27/crds/*.yaml and metallb-v0.16.2/frrk8s-goldens/*.golden
# The module cache lives under the same upstream/ directory, never inside the repository.
# Idempotent: when the copies exist, nothing is fetched.
set -euo pipefail

METALLB_MODULE="go.universe.tf/metallb"
METALLB_VERSION="v0.16.2"
FRRK8S_VERSION="v0.0.27"

CACHE="${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/upstream"
CRDS="$CACHE/frr-k8s-$FRRK8S_VERSION/crds"
GOLDENS="$CACHE/metallb-$METALLB_VERSION/frrk8s-goldens"

log() { printf '[install-upstream-crds] %s\n' "$*" >&2; }

if [ -f "$CRDS/.complete" ] && [ -f "$GOLDENS/.complete" ]; then
    exit 0
fi

mkdir -p "$CACHE"
# shellcheck source=go-env.sh
. "$(dirname "$0")/go-env.sh"
go_env "$CACHE"

log "fetching $METALLB_MODULE@$METALLB_VERSION"
json="$(cd "$CACHE" && "$GO" mod download -json "$METALLB_MODULE@$METALLB_VERSION")"
dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")"
chart="$dir/charts/metallb/charts/frr-k8s-${FRRK8S_VERSION#v}.tgz"
[ -n "$dir" ] && [ -f "$chart" ] || { log "ERROR: no frr-k8s chart in the module: $json"; exit 1; }
[ -d "$dir/internal/bgp/frrk8s/testdata" ] || { log "ERROR: no internal/bgp/frrk8s/testdata in $dir"; exit 1; }

tmp="$(mktemp -d "$CACHE/fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/chart" "$tmp/crds" "$tmp/goldens"
tar -xzf "$chart" -C "$tmp/chart"
cp "$tmp"/chart/frr-k8s/charts/crds/templates/*.yaml "$tmp/crds/"
if grep -l '{{' "$tmp"/crds/*.yaml; then
    log "ERROR: the chart's CRDs hold template directives"
    exit 1
fi
cp "$dir"/internal/bgp/frrk8s/testdata/*.golden "$tmp/goldens/"
chmod 0644 "$tmp"/crds/*.yaml "$tmp"/goldens/*.golden
touch "$tmp/crds/.complete" "$tmp/goldens/.complete"
for pair in "crds:$CRDS" "goldens:$GOLDENS"; do
    out="${pair#*:}"
    rm -rf "$out"
    mkdir -p "$(dirname "$out")"
    mv "$tmp/${pair%%:*}" "$out"
done
log "upstream CRDs in $CRDS: $(cd "$CRDS" && ls *.yaml | tr '\n' ' ')"
log "MetalLB goldens in $GOLDENS: $(ls "$GOLDENS" | wc -l) files"
