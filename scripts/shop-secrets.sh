#!/usr/bin/env bash
# shop-secrets.sh makes the shop's secrets: one Nomad variable per service,
# nomad/jobs/<service>, read by that service's job templates (and by its
# database job, for db_password). Values are random and made on the cluster
# at deploy time, so no secret is ever in the repository; a key that exists
# is never changed, so running this again changes nothing, and a key added
# in a later version is filled in next to the others.
#
#   scripts/shop-secrets.sh ensure     make what is missing (NOMAD_ADDR)
#   scripts/shop-secrets.sh delete     remove them
#
# Values are never printed. Read one with `nomad var get nomad/jobs/auth`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
PATH=$("$top/scripts/tools.sh" bindir):$PATH
export NOMAD_CLI_SHOW_HINTS=0

log() { printf 'shop-secrets: %s\n' "$*" >&2; }

# Generators: hex N (N random bytes as hex), seed (an Ed25519 seed, base64).
hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
seed() { head -c 32 /dev/urandom | base64 -w0; }

# The secrets of each service: key=generator.
declare -A SECRETS=(
	[auth]="db_password=hex:24 signing_key=seed admin_password=hex:16 mailjet_api_key_public=hex:16 mailjet_api_key_private=hex:24"
	[inventory]="db_password=hex:24"
	[orders]="db_password=hex:24 mailjet_api_key_public=hex:16 mailjet_api_key_private=hex:24"
	[payment]="db_password=hex:24 processor_api_key=hex:24 fingerprint_key=hex:32"
)

ensure() {
	local svc=$1 path=nomad/jobs/$1 current items added=()
	current=$(nomad var get -out json "$path" 2>/dev/null || echo '{}')
	items=$(jq -c '.Items // {}' <<<"$current")
	for spec in ${SECRETS[$svc]}; do
		local key=${spec%%=*} gen=${spec#*=} value
		if jq -e --arg k "$key" 'has($k)' <<<"$items" >/dev/null; then continue; fi
		case $gen in
		hex:*) value=$(hex "${gen#hex:}") ;;
		seed) value=$(seed) ;;
		*) log "unknown generator $gen"; exit 1 ;;
		esac
		items=$(jq -c --arg k "$key" --arg v "$value" '. + {($k): $v}' <<<"$items")
		added+=("$key")
	done
	if [ ${#added[@]} -eq 0 ]; then
		log "$path: complete"
		return
	fi
	# -check-index: fail rather than overwrite a concurrent writer's keys.
	local index
	index=$(jq -r '.ModifyIndex // 0' <<<"$current")
	jq -n --argjson items "$items" '{Items: $items}' |
		nomad var put -in json -check-index "$index" "$path" - >/dev/null
	log "$path: generated ${added[*]}"
}

case "${1:-}" in
ensure)
	for svc in "${!SECRETS[@]}"; do ensure "$svc"; done
	;;
delete)
	for svc in "${!SECRETS[@]}"; do
		nomad var purge "nomad/jobs/$svc" >/dev/null 2>&1 || true
	done
	log "deleted"
	;;
*)
	echo "usage: $0 ensure|delete" >&2
	exit 2
	;;
esac
