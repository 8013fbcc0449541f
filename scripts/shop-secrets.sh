#!/usr/bin/env bash
# shop-secrets.sh makes the shop's secrets as Nomad variables: each job's
# own in nomad/jobs/<job>, read by that job's templates alone, and those two
# jobs share under shop/ (see SECRETS). Values are random and made on the cluster
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
# shellcheck source=scripts/cluster-access.sh
. "$top/scripts/cluster-access.sh"
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

# The secrets, by the Nomad variable that holds them: key=generator. A
# job's own secrets are in nomad/jobs/<job>, which only that job's tasks
# read (Nomad's workload identities); a secret two jobs share is in a
# variable of its own under shop/, which scripts/workload-policies.sh lets
# exactly those jobs read.
declare -A SECRETS=(
	[nomad/jobs/auth]="signing_key=seed admin_password=hex:16 demo_buyer_password=hex:16 mailjet_api_key_public=hex:16 mailjet_api_key_private=hex:24"
	[nomad/jobs/orders]="mailjet_api_key_public=hex:16 mailjet_api_key_private=hex:24"
	[nomad/jobs/payment]="fingerprint_key=hex:32"
	# Each service's database login, shared by the service and its
	# database job (which sets it at every start).
	[shop/auth/db-login]="password=hex:24"
	[shop/inventory/db-login]="password=hex:24"
	[shop/orders/db-login]="password=hex:24"
	[shop/payment/db-login]="password=hex:24"
	# The key payment calls the card processor with, which the sandbox
	# processor checks.
	[shop/payment/processor]="api_key=hex:24"
	# The databases' backups: the repositories' cipher passphrase (kept by
	# the operator), for the database and its backup jobs alone…
	[nomad/jobs/auth-db]="repo_cipher_pass=kept:hex:32"
	[nomad/jobs/inventory-db]="repo_cipher_pass=kept:hex:32"
	[nomad/jobs/orders-db]="repo_cipher_pass=kept:hex:32"
	[nomad/jobs/payment-db]="repo_cipher_pass=kept:hex:32"
	# …and the database's own S3 identity on repo2, shared with the
	# objectstore. A cloud bucket's key comes from SHOP_REPO2_S3_KEY/SECRET.
	[shop/auth-db/s3]="s3_key=s3key s3_secret=s3secret"
	[shop/inventory-db/s3]="s3_key=s3key s3_secret=s3secret"
	[shop/orders-db/s3]="s3_key=s3key s3_secret=s3secret"
	[shop/payment-db/s3]="s3_key=s3key s3_secret=s3secret"
	# The objectstore's TLS key (tls_key; its certificate, which its
	# clients trust, is tls_cert in shop/objectstore/ca, readable by every
	# job), and the password of its admin server (SeaweedFS runs one, on
	# loopback).
	[nomad/jobs/objectstore]="tls=selfsigned:shop/objectstore/ca admin_password=hex:16"
	# The password of HAProxy's stats page (user operator).
	[nomad/jobs/edge]="stats_password=hex:16"
)

# Who reads a shared secret, besides its owner: job → variables. Each job
# gets a Nomad ACL policy attached to its workload identity that reads
# exactly these (a job reads its own nomad/jobs/<job> without one); every
# job reads the certificates shop/objectstore/ca and shop/cluster/ca.
DATABASES="auth inventory orders payment"
declare -A READERS=()
for db in $DATABASES; do
	READERS[$db]+=" shop/$db/db-login"
	READERS[$db-db]+=" shop/$db/db-login shop/$db-db/s3"
	for kind in backup-full backup-incr backup-dump backup-drill restore; do
		READERS[$db-db-$kind]+=" nomad/jobs/$db-db shop/$db-db/s3"
	done
	READERS[objectstore]+=" shop/$db-db/s3"
done
READERS[payment]+=" shop/payment/processor"
READERS[sandbox-processor]+=" shop/payment/processor"

# policy NAME JOB PATH...: the policy NAME, attached to JOB (every job when
# JOB is empty), reading the variables PATH... alone.
policy() {
	local name=$1 job=$2 f out
	shift 2
	f=$(mktemp)
	{
		echo 'namespace "default" {'
		echo '  variables {'
		for p in "$@"; do printf '    path "%s" {\n      capabilities = ["read"]\n    }\n' "$p"; done
		echo '  }'
		echo '}'
	} >"$f"
	out=$(nomad acl policy apply -namespace default ${job:+-job "$job"} -description "reads ${*}" "$name" "$f" 2>&1) ||
		{ rm -f "$f"; log "policy $name: $out"; exit 1; }
	rm -f "$f"
}

policies() {
	local job pids=()
	for job in "${!READERS[@]}"; do
		# shellcheck disable=SC2086 # the list of paths
		policy "read-shared-$job" "$job" ${READERS[$job]} &
		pids+=($!)
	done
	policy read-public-certs "" shop/objectstore/ca shop/cluster/ca &
	pids+=($!)
	all "${pids[@]}" || { log "a workload policy was not written (above)"; exit 1; }
	log "$(( ${#READERS[@]} + 1 )) workload policies: who reads which shared secret"
}

# all PID...: wait for every one; false when any failed.
all() {
	local pid ok=0
	for pid in "$@"; do wait "$pid" || ok=1; done
	return $ok
}

# cluster_ca puts the CA of Consul's HTTPS certificate (CONSUL_CACERT) in
# shop/cluster/ca, for the tasks that call Consul themselves (the backup
# command): a certificate, not a secret.
cluster_ca() {
	[ -s "${CONSUL_CACERT:-}" ] || { log "CONSUL_CACERT names no CA file"; exit 1; }
	jq -n --rawfile c "$CONSUL_CACERT" '{Items: {consul: $c}}' | nomad var put -in json -force shop/cluster/ca - >/dev/null
}

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
	local path=$1 current items added=()
	current=$(nomad var get -out json "$path" 2>/dev/null || echo '{}')
	items=$(jq -c '.Items // {}' <<<"$current")
	for spec in ${SECRETS[$path]}; do
		local key=${spec%%=*} gen=${spec#*=} value
		case $gen in
		selfsigned:*)
			if jq -e 'has("tls_key")' <<<"$items" >/dev/null; then continue; fi
			local d
			d=$(mktemp -d)
			selfsigned "$d"
			items=$(jq -c --rawfile k "$d/key.pem" '. + {tls_key: $k}' <<<"$items")
			jq -n --rawfile c "$d/cert.pem" '{Items: {tls_cert: $c}}' | nomad var put -in json -force "${gen#selfsigned:}" - >/dev/null
			rm -rf "$d"
			added+=(tls_key "tls_cert (in ${gen#selfsigned:})")
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
	# Each variable and each policy is its own API call, so they are made
	# side by side; the ones the operator keeps a value of write SHOP_KEYS_FILE,
	# so those go one at a time.
	pids=()
	for path in "${!SECRETS[@]}"; do
		if [[ ${SECRETS[$path]} == *kept:* ]]; then continue; fi
		ensure "$path" &
		pids+=($!)
	done
	cluster_ca &
	pids+=($!)
	for path in "${!SECRETS[@]}"; do
		if [[ ${SECRETS[$path]} == *kept:* ]]; then ensure "$path"; fi
	done
	all "${pids[@]}" || { log "a variable was not written (above)"; exit 1; }
	policies
	;;
delete)
	for path in "${!SECRETS[@]}" shop/objectstore/ca shop/cluster/ca; do
		nomad var purge "$path" >/dev/null 2>&1 || true
	done
	for job in "${!READERS[@]}"; do nomad acl policy delete "read-shared-$job" >/dev/null 2>&1 || true; done
	nomad acl policy delete read-public-certs >/dev/null 2>&1 || true
	log "deleted"
	;;
*)
	echo "usage: $0 ensure|delete" >&2
	exit 2
	;;
esac
