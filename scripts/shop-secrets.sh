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
#
# Most secrets live and die with the cluster. Those marked `kept:` must
# outlive it: the backup repositories' cipher passphrases, without which
# a rebuilt host could not read its own off-host backups. They are kept by
# the operator, outside the cluster, in SHOP_KEYS_FILE (JSON, mode 0600;
# terraform/environments/* set it), and put back into the new cluster's
# variables from there. Lose that file and the backups are unreadable:
# keep a copy of it where you keep your other keys.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
PATH=$("$top/scripts/tools.sh" bindir):$PATH
export NOMAD_CLI_SHOW_HINTS=0

log() { printf 'shop-secrets: %s\n' "$*" >&2; }

# Generators: hex N (N random bytes as hex), seed (an Ed25519 seed, base64).
hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
seed() { head -c 32 /dev/urandom | base64 -w0; }

KEYS_FILE=${SHOP_KEYS_FILE:-}

# kept PATH KEY GEN: the value the operator keeps for PATH's KEY, made with
# GEN and stored in KEYS_FILE the first time.
kept() {
	local path=$1 key=$2 gen=$3 value
	[ -n "$KEYS_FILE" ] || { log "SHOP_KEYS_FILE is not set: $path $key must outlive the cluster"; exit 1; }
	if [ ! -s "$KEYS_FILE" ]; then
		mkdir -p "$(dirname "$KEYS_FILE")"
		(umask 077 && echo '{}' >"$KEYS_FILE")
	fi
	value=$(jq -r --arg p "$path" --arg k "$key" '.[$p][$k] // empty' "$KEYS_FILE")
	if [ -z "$value" ]; then
		value=$(generate "$gen")
		local tmp
		tmp=$(mktemp "$KEYS_FILE.XXXXXX")
		jq --arg p "$path" --arg k "$key" --arg v "$value" '.[$p][$k] = $v' "$KEYS_FILE" >"$tmp"
		chmod 0600 "$tmp"
		mv -f "$tmp" "$KEYS_FILE"
		log "$path $key: made, kept in $KEYS_FILE"
	fi
	printf '%s' "$value"
}

generate() {
	case $1 in
	hex:*) hex "${1#hex:}" ;;
	seed) seed ;;
	s3key) if [ -n "${SHOP_REPO2_S3_KEY:-}" ]; then printf '%s' "$SHOP_REPO2_S3_KEY"; else hex 10; fi ;;
	s3secret) if [ -n "${SHOP_REPO2_S3_SECRET:-}" ]; then printf '%s' "$SHOP_REPO2_S3_SECRET"; else hex 20; fi ;;
	*) log "unknown generator $1"; exit 1 ;;
	esac
}

# selfsigned DIR: a self-signed certificate for the objectstore's S3 API
# (loopback names) in DIR/cert.pem, its key in DIR/key.pem; the
# certificate is its clients' CA too. pgBackRest 2.45 matches the endpoint
# against DNS names only, never IP addresses: 127.0.0.1 is both.
selfsigned() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
		-keyout "$1/key.pem" -out "$1/cert.pem" -subj "/CN=objectstore" \
		-addext "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost,DNS:objectstore.service.consul" 2>/dev/null
}

# The secrets of each service: key=generator.
declare -A SECRETS=(
	[auth]="db_password=hex:24 signing_key=seed admin_password=hex:16 demo_buyer_password=hex:16 mailjet_api_key_public=hex:16 mailjet_api_key_private=hex:24"
	[inventory]="db_password=hex:24"
	[orders]="db_password=hex:24 mailjet_api_key_public=hex:16 mailjet_api_key_private=hex:24"
	[payment]="db_password=hex:24 processor_api_key=hex:24 fingerprint_key=hex:32"
	# The databases' backups: the repositories' cipher passphrase (kept by
	# the operator) and the database's own S3 identity on repo2.
	# A cloud bucket's key comes from SHOP_REPO2_S3_KEY/SECRET instead.
	[auth-db]="repo_cipher_pass=kept:hex:32 s3_key=s3key s3_secret=s3secret"
	[inventory-db]="repo_cipher_pass=kept:hex:32 s3_key=s3key s3_secret=s3secret"
	[orders-db]="repo_cipher_pass=kept:hex:32 s3_key=s3key s3_secret=s3secret"
	[payment-db]="repo_cipher_pass=kept:hex:32 s3_key=s3key s3_secret=s3secret"
	# The objectstore's TLS key and certificate (tls_key and tls_cert), and
	# the password of its admin server (SeaweedFS runs one, on loopback).
	[objectstore]="tls=selfsigned admin_password=hex:16"
)

# keep_existing PATH KEY VALUE writes a value the cluster has into KEYS_FILE.
keep_existing() {
	[ -s "$KEYS_FILE" ] || { mkdir -p "$(dirname "$KEYS_FILE")"; (umask 077 && echo '{}' >"$KEYS_FILE"); }
	local tmp
	tmp=$(mktemp "$KEYS_FILE.XXXXXX")
	jq --arg p "$1" --arg k "$2" --arg v "$3" '.[$p][$k] = $v' "$KEYS_FILE" >"$tmp"
	chmod 0600 "$tmp"
	mv -f "$tmp" "$KEYS_FILE"
	log "$1 $2: now kept in $KEYS_FILE"
}

ensure() {
	local svc=$1 path=nomad/jobs/$1 current items added=()
	current=$(nomad var get -out json "$path" 2>/dev/null || echo '{}')
	items=$(jq -c '.Items // {}' <<<"$current")
	for spec in ${SECRETS[$svc]}; do
		local key=${spec%%=*} gen=${spec#*=} value
		case $gen in
		selfsigned)
			if jq -e 'has("tls_cert")' <<<"$items" >/dev/null; then continue; fi
			local d
			d=$(mktemp -d)
			selfsigned "$d"
			items=$(jq -c --rawfile k "$d/key.pem" --rawfile c "$d/cert.pem" '. + {tls_key: $k, tls_cert: $c}' <<<"$items")
			rm -rf "$d"
			added+=(tls_key tls_cert)
			continue
			;;
		esac
		if jq -e --arg k "$key" 'has($k)' <<<"$items" >/dev/null; then
			# A kept secret the operator does not have yet (a cluster made
			# before it was kept): keep the cluster's value.
			if [[ $gen == kept:* ]] && [ -n "$KEYS_FILE" ] && ! jq -e --arg p "$path" --arg k "$key" '.[$p][$k]' "$KEYS_FILE" >/dev/null 2>&1; then
				keep_existing "$path" "$key" "$(jq -r --arg k "$key" '.[$k]' <<<"$items")"
			fi
			continue
		fi
		case $gen in
		kept:*) value=$(kept "$path" "$key" "${gen#kept:}") ;;
		*) value=$(generate "$gen") ;;
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
