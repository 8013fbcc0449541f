#!/usr/bin/env bash
# tools.sh installs the pinned tools the project runs (see ARCHITECTURE.md,
# "Pinned tools"). Consul, Nomad and SeaweedFS are built from their Go modules and
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
CACHE=${MLS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mylittleshopping/tools}
BIN=$CACHE/bin

log() { printf 'tools: %s\n' "$*" >&2; }

# build_module NAME MODULE VERSION PKG [go get args...]
# Builds package PKG (relative to the module root) of MODULE@VERSION into
# $CACHE/NAME-VERSION/NAME unless it is there. Nomad needs cgo (its Linux
# isolation code, through runc); Consul and SeaweedFS do not.
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
	if [ -n "$onpath" ] && [[ $version != v0.0.0-* ]] && "$onpath" version 2>/dev/null | head -n1 | grep -q "${version}\b"; then
		log "$name $version found at $onpath"
		ln -sf "$onpath" "$BIN/$name"
		return
	fi
	log "building $name $version from $module (a few minutes, once)"
	local dir src work
	dir=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
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
		export GOPROXY=https://proxy.golang.org GONOSUMDB=$module GOFLAGS=-mod=mod GOWORK=off
		for pin in "$@"; do go get "$pin"; done
		go build -trimpath -o "$work/$name" "$pkg"
	)
	mkdir -p "$(dirname "$out")"
	mv "$work/$name" "$out"
	ln -sf "$out" "$BIN/$name"
	log "$name $version cached at $out"
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
	apt_install curl:curl ss:iproute2 jq:jq pg_ctl:postgresql haproxy:haproxy pgbackrest:pgbackrest hey:hey openssl:openssl dockerd:docker.io mmdebstrap:mmdebstrap
	CGO_ENABLED=0 build_module consul github.com/hashicorp/consul "$CONSUL_VERSION" .
	build_module nomad github.com/hashicorp/nomad "$NOMAD_VERSION" . "github.com/hashicorp/nomad/api@$NOMAD_API_PIN"
	CGO_ENABLED=0 build_module weed github.com/seaweedfs/seaweedfs "$SEAWEEDFS_VERSION" ./weed
	;;
*)
	echo "usage: $0 [all|bindir]" >&2
	exit 2
	;;
esac
