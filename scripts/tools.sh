#!/usr/bin/env bash
# tools.sh installs the pinned tools the project runs (see ARCHITECTURE.md,
# "Pinned tools"). Consul, Nomad, SeaweedFS, VictoriaLogs, VictoriaMetrics
# (with vmalert) and the log collector are built from their Go modules and
# cached by version outside the work tree, so a second run builds nothing.
# Debian packages are installed only when missing.
#
#   scripts/tools.sh            install everything
#   scripts/tools.sh bindir     print the folder to put on PATH
set -euo pipefail

CONSUL_VERSION=v1.22.0
NOMAD_VERSION=v1.11.0
NOMAD_API_PIN=v0.0.0-20261016150620-df630b26e78a
# SeaweedFS: the S3 gateway of backup repo2 on the local cluster (issue 11).
# An exact pseudo-version: the module proxy refuses a plain "latest".
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
# Logs and metrics (issue 17): VictoriaLogs keeps the logs, VictoriaMetrics
# the metrics, vmalert evaluates the alert rules, and the log collector is
# an OpenTelemetry Collector made by the Collector's builder from
# scripts/otelcol.yaml (only the components its job uses).
VICTORIALOGS_VERSION=v1.52.2
VICTORIAMETRICS_VERSION=v1.151.0
OTELCOL_BUILDER_VERSION=v0.165.0
top=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${MLS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mylittleshopping/tools}
BIN=$CACHE/bin

log() { printf 'tools: %s\n' "$*" >&2; }

# build_module NAME MODULE VERSION PKG [go get args...]
# Builds package PKG (relative to the module root) of MODULE@VERSION into
# $CACHE/NAME-VERSION/NAME unless it is there. Nomad needs cgo (its Linux
# isolation code, through runc); the others do not. VERSION_ARG is how the
# binary prints its version (default: `version`), GO_LDFLAGS what go build
# links in (the VictoriaMetrics binaries take their version from it).
build_module() {
	local name=$1 module=$2 version=$3 pkg=$4
	shift 4
	local out=$CACHE/$name-$version/$name
	if [ -x "$out" ]; then
		ln -sf "$out" "$BIN/$name"
		return
	fi
	# A binary already on PATH at the pinned version is used as it is.
	local onpath
	onpath=$(PATH=${PATH//$BIN:/} command -v "$name" || true)
	if [ -n "$onpath" ] && [[ $version != v0.0.0-* ]] && "$onpath" "${VERSION_ARG:-version}" 2>/dev/null | head -n1 | grep -q "${version}\b"; then
		log "$name $version found at $onpath"
		ln -sf "$onpath" "$BIN/$name"
		return
	fi
	log "building $name $version from $module (a few minutes, once)"
	local dir src work
	dir=$(GOPROXY=$PROXY go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$dir" ] || { log "download of $module@$version failed"; exit 1; }
	work=$(mktemp -d)
	trap 'rm -rf "$work"' RETURN
	src=$work/src
	cp -r "$dir" "$src"
	chmod -R u+w "$src"
	(
		cd "$src"
		# The module zip lacks the sub-module folders its replace lines point at.
		for old in $(go mod edit -json | awk '
			/"Old": \{/ {inold=1; next}
			inold && /"Path":/ {gsub(/[",]/,"",$2); path=$2; inold=0; next}
			/"New": \{/ {innew=1; next}
			innew && /"Path":/ {gsub(/[",]/,"",$2); if ($2 ~ /^\.\//) print path; innew=0}
		'); do
			go mod edit -dropreplace="$old"
		done
		export GOPROXY=$PROXY GONOSUMDB=$module GOFLAGS=-mod=mod GOWORK=off
		for pin in "$@"; do go get "$pin"; done
		go build -trimpath ${GO_LDFLAGS:+-ldflags "$GO_LDFLAGS"} -o "$work/$name" "$pkg"
	)
	mkdir -p "$(dirname "$out")"
	mv "$work/$name" "$out"
	ln -sf "$out" "$BIN/$name"
	log "$name $version cached at $out"
}

# build_otelcol builds the log collector from scripts/otelcol.yaml with the
# Collector's builder (ocb, itself built by build_module) into
# $CACHE/otelcol-<builder version>-<manifest hash>/otelcol unless it is
# there: a changed manifest is a new build. The builder runs `go mod tidy`
# and `go build` itself (statically: CGO_ENABLED=0 is its default), with
# the module proxy alone.
build_otelcol() {
	local manifest=$top/scripts/otelcol.yaml hash out
	hash=$(sha256sum "$manifest" | cut -c1-12)
	out=$CACHE/otelcol-$OTELCOL_BUILDER_VERSION-$hash/otelcol
	if [ -x "$out" ]; then
		ln -sf "$out" "$BIN/otelcol"
		return
	fi
	CGO_ENABLED=0 build_module ocb go.opentelemetry.io/collector/cmd/builder "$OTELCOL_BUILDER_VERSION" .
	log "building otelcol from scripts/otelcol.yaml with ocb $OTELCOL_BUILDER_VERSION (a few minutes, once)"
	local work
	work=$(mktemp -d)
	(
		cd "$work"
		export GOPROXY=$PROXY GOFLAGS=-mod=mod GOWORK=off
		"$BIN/ocb" --config "$manifest" >"$work/ocb.log" 2>&1 ||
			{ tail -n 30 "$work/ocb.log" >&2; log "ocb failed (its log above)"; exit 1; }
	)
	mkdir -p "$(dirname "$out")"
	mv "$work/otelcol/otelcol" "$out"
	rm -rf "$work"
	ln -sf "$out" "$BIN/otelcol"
	log "otelcol cached at $out"
}

# apt_install PKG... installs the Debian packages whose command is missing.
apt_install() {
	local missing=()
	for spec in "$@"; do
		local cmd=${spec%%:*} pkg=${spec##*:}
		command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/lib/postgresql/15/bin/$cmd" ] || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return
	log "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

case "${1:-all}" in
bindir)
	echo "$BIN"
	;;
all)
	mkdir -p "$BIN"
	# Builds reach the module proxy alone (GOPROXY without its ",direct"
	# fallback): what the proxy does not serve fails rather than being
	# fetched from its origin.
	PROXY=$(go env GOPROXY 2>/dev/null | sed -E 's/[,|](direct|off)$//')
	case $PROXY in "" | direct | off) PROXY=https://proxy.golang.org ;; esac
	apt_install curl:curl ss:iproute2 jq:jq pg_ctl:postgresql haproxy:haproxy pgbackrest:pgbackrest hey:hey openssl:openssl dockerd:docker.io mmdebstrap:mmdebstrap
	CGO_ENABLED=0 build_module consul github.com/hashicorp/consul "$CONSUL_VERSION" .
	build_module nomad github.com/hashicorp/nomad "$NOMAD_VERSION" . "github.com/hashicorp/nomad/api@$NOMAD_API_PIN"
	CGO_ENABLED=0 build_module weed github.com/seaweedfs/seaweedfs "$SEAWEEDFS_VERSION" ./weed
	# Logs and metrics. The version the binaries report (-version, and
	# their vm_app_version metric) is linked in, as their Makefiles do.
	vm_version=github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version
	CGO_ENABLED=0 VERSION_ARG=-version GO_LDFLAGS="-X $vm_version=victoria-logs-$VICTORIALOGS_VERSION" \
		build_module victoria-logs github.com/VictoriaMetrics/VictoriaLogs "$VICTORIALOGS_VERSION" ./app/victoria-logs
	CGO_ENABLED=0 VERSION_ARG=-version GO_LDFLAGS="-X $vm_version=victoria-metrics-$VICTORIAMETRICS_VERSION" \
		build_module victoria-metrics github.com/VictoriaMetrics/VictoriaMetrics "$VICTORIAMETRICS_VERSION" ./app/victoria-metrics
	CGO_ENABLED=0 VERSION_ARG=-version GO_LDFLAGS="-X $vm_version=vmalert-$VICTORIAMETRICS_VERSION" \
		build_module vmalert github.com/VictoriaMetrics/VictoriaMetrics "$VICTORIAMETRICS_VERSION" ./app/vmalert
	build_otelcol
	;;
*)
	echo "usage: $0 [all|bindir]" >&2
	exit 2
	;;
esac
