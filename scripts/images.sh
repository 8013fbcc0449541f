#!/usr/bin/env bash
# images.sh builds the shop's Docker images (`make images`) and writes the
# manifest Terraform deploys from: .run/images/images.json, name → image.
#
#   name               Dockerfile                    what goes in
#   auth, inventory,   images/service.Dockerfile     bin/<name> (make build)
#   orders, payment,
#   aggregator,
#   mailsink,
#   sandbox-processor
#   seaweedfs          images/service.Dockerfile     SeaweedFS's weed (make tools)
#   victoria-logs,     images/service.Dockerfile     the tools' static binaries (make tools):
#   victoria-metrics,                                VictoriaLogs, VictoriaMetrics, vmalert and
#   vmalert, otelcol                                 the log collector (scripts/otelcol.yaml)
#   postgres           images/postgres.Dockerfile    bin/backup, PostgreSQL 15 and pgBackRest from Debian
#   haproxy            images/haproxy.Dockerfile     HAProxy from Debian
#
# An image is tagged mylittleshopping/<name>:<hash>, the hash of what goes
# into it (its Dockerfile, its file, the base image): an image whose tag is
# already there is not built again, so a second run with no change takes
# seconds and `make up` rolls out only what changed. The three newest tags
# of each image are kept (Nomad's auto-revert runs the previous one).
#
# No registry is reachable here: the base, debian:bookworm-slim, is built
# from Debian's packages (mmdebstrap | docker import) when it is missing,
# and tagged under that name, so that the Dockerfiles read as they would
# with a registry. DEBIAN_MIRROR moves the mirror.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
PATH=$("$top/scripts/tools.sh" bindir):$PATH
out=$top/.run/images
manifest=$out/images.json
BASE=debian:bookworm-slim
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY=${DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
KEEP=3
# Debian's engine (20.10) has no BuildKit client here: the classic builder.
export DOCKER_BUILDKIT=0

log() { printf 'images: %s\n' "$*" >&2; }

"$top/scripts/dockerd.sh" up

base() {
	docker image inspect "$BASE" >/dev/null 2>&1 && return
	command -v mmdebstrap >/dev/null || { log "mmdebstrap not found: run make tools"; exit 1; }
	log "building $BASE from Debian's packages ($DEBIAN_MIRROR; about half a minute, once)"
	mmdebstrap --quiet --variant=minbase --aptopt='APT::Install-Recommends "false"' \
		--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
		bookworm - \
		"deb $DEBIAN_MIRROR bookworm main" \
		"deb $DEBIAN_MIRROR bookworm-updates main" \
		"deb $DEBIAN_SECURITY bookworm-security main" |
		docker import --change 'CMD ["bash"]' \
			--message "Debian bookworm (minbase), built locally by scripts/images.sh" - "$BASE" >/dev/null
}

revision=$(git -C "$top" rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && [ -n "$(git -C "$top" status --porcelain 2>/dev/null)" ]; then revision=$revision-dirty; fi
base_id=""
declare -A built=()
fresh=0

# image NAME DOCKERFILE FILE AS: mylittleshopping/NAME from DOCKERFILE with
# FILE in its context as AS (or no file).
image() {
	local name=$1 dockerfile=$top/images/$2 file=$3 as=$4
	[ -z "$file" ] || [ -f "$file" ] || { log "$file is missing: run make build (or make tools)"; exit 1; }
	local hash
	hash=$({
		sha256sum "$dockerfile" | cut -d' ' -f1
		[ -z "$file" ] || sha256sum "$file" | cut -d' ' -f1
		echo "$base_id $name"
	} | sha256sum | cut -c1-12)
	local tag=mylittleshopping/$name:$hash
	built[$name]=$tag
	docker image inspect "$tag" >/dev/null 2>&1 && return
	log "building $tag"
	fresh=$((fresh + 1))
	local ctx
	ctx=$(mktemp -d)
	if [ -n "$file" ]; then
		cp "$file" "$ctx/$as"
		chmod 0555 "$ctx/$as"
	fi
	# --network host: the RUN steps reach Debian's mirror as this host does.
	if ! docker build --quiet --network host -f "$dockerfile" \
		--build-arg NAME="$name" --build-arg REVISION="$revision" --build-arg VERSION="$hash" \
		--build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		-t "$tag" "$ctx" >"$ctx.log" 2>&1; then
		log "docker build of $name failed:"
		tail -n 30 "$ctx.log" >&2
		rm -rf "$ctx" "$ctx.log"
		exit 1
	fi
	rm -rf "$ctx" "$ctx.log"
	# Older tags beyond the newest $KEEP go (one in use stays: rmi refuses).
	docker image ls "mylittleshopping/$name" --format '{{.Tag}}' | tail -n +$((KEEP + 1)) |
		while read -r old; do docker image rm "mylittleshopping/$name:$old" >/dev/null 2>&1 || true; done
}

start=$SECONDS
base
base_id=$(docker image inspect --format '{{.Id}}' "$BASE")
for name in auth inventory orders payment aggregator mailsink sandbox-processor; do
	image "$name" service.Dockerfile "$top/bin/$name" app
done
tools_bin=$("$top/scripts/tools.sh" bindir)
image seaweedfs service.Dockerfile "$tools_bin/weed" app
# Logs and metrics: static binaries too, on the same base.
for name in victoria-logs victoria-metrics vmalert otelcol; do
	image "$name" service.Dockerfile "$tools_bin/$name" app
done
image postgres postgres.Dockerfile "$top/bin/backup" backup
image haproxy haproxy.Dockerfile "" ""

mkdir -p "$out"
{
	echo "{"
	first=1
	for name in $(printf '%s\n' "${!built[@]}" | sort); do
		[ $first -eq 1 ] || echo ","
		first=0
		printf '  "%s": "%s"' "$name" "${built[$name]}"
	done
	printf '\n}\n'
} >"$manifest.$$"
mv -f "$manifest.$$" "$manifest"
log "${#built[@]} images ready, $fresh built, in $((SECONDS - start))s (manifest: ${manifest#$top/})"
