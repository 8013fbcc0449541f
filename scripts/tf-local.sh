#!/usr/bin/env bash
# tf-local.sh runs Terraform on terraform/environments/local: the whole shop
# on this machine. `make up` and `make down` call it.
#
#   scripts/tf-local.sh up      init + apply, then print the addresses
#   scripts/tf-local.sh down    destroy: no job, agent, process or port left
#   scripts/tf-local.sh output  print the addresses again
#
# TF_STATE_FILE keeps the state elsewhere than the environment's
# terraform.tfstate (the e2e suite runs its own cluster this way, with
# TF_VAR_* moving every port); the rest of the environment's variables come
# as TF_VAR_*.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
PATH=$("$top/scripts/tools.sh" bindir):$PATH
env_dir=$top/terraform/environments/local

# A CLI configuration file that does not exist is only noise.
if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -f "$TF_CLI_CONFIG_FILE" ]; then unset TF_CLI_CONFIG_FILE; fi
export TF_IN_AUTOMATION=1 TF_INPUT=0

state_args=()
if [ -n "${TF_STATE_FILE:-}" ]; then state_args=(-state="$TF_STATE_FILE"); fi
tf() { terraform -chdir="$env_dir" "$@"; }

log() { printf 'tf-local: %s\n' "$*" >&2; }

# quiet LOG ARGS...: terraform ARGS, its whole output in LOG, and on the
# terminal only what the deploy scripts say, the summary, and errors.
log_dir=$(dirname "${TF_STATE_FILE:-$top/.run/terraform.tfstate}")
mkdir -p "$log_dir"
quiet() {
	local logf=$1
	shift
	set +e
	tf "$@" -no-color 2>&1 | tee "$logf" |
		grep --line-buffered -E '(nomad-deploy|devcluster|shop-secrets|tf-local): |^(Apply|Destroy) complete|No changes|^Error|^│' |
		sed -u -E 's/^module\.[^ ]+ \(local-exec\): //'
	local rc=${PIPESTATUS[0]}
	set -e
	if [ "$rc" -ne 0 ]; then
		log "terraform $1 failed; the end of its log ($logf):"
		tail -n 40 "$logf" >&2
		exit "$rc"
	fi
}

case "${1:-}" in
up)
	command -v terraform >/dev/null || { log "terraform not found (1.6 or later, or OpenTofu)"; exit 1; }
	tf init -input=false >/dev/null
	replace=()
	# The state says the cluster runs, but its agents are gone (a reboot,
	# a kill): rebuild it, and every job with it, rather than trust the state.
	state=${TF_STATE_FILE:-$env_dir/terraform.tfstate}
	if [ -s "$state" ] && tf state list "${state_args[@]}" 2>/dev/null | grep -q '^module.host.terraform_data.local\[0\]$'; then
		status=$(STATE=${TF_VAR_state_dir:-$top/.run/cluster} "$top/scripts/devcluster.sh" status)
		if [[ $status != *"consul: running"* || $status != *"nomad: running"* ]]; then
			log "the state has a cluster whose agents are not running: rebuilding it"
			replace=(-replace='module.host.terraform_data.local[0]')
		fi
	fi
	start=$SECONDS
	apply_started=$(date +%s)
	quiet "$log_dir/apply.log" apply -auto-approve -input=false "${state_args[@]}" "${replace[@]}"
	# What the databases restored at this start (an empty volume: a lost
	# disk or a new host), from the backup command's records in Consul.
	consul=$(tf output "${state_args[@]}" -raw consul_ui 2>/dev/null | sed 's|/ui$||')
	cluster=${TF_VAR_state_dir:-$top/.run/cluster}
	keys=$cluster/keys
	for db in auth inventory orders payment; do
		curl -fsS --cacert "$cluster/tls/consul-agent-ca.pem" -H "X-Consul-Token: $(cat "$keys/consul-management.token" 2>/dev/null)" "$consul/v1/kv/mylittleshopping/backup/$db/restore?raw" 2>/dev/null |
			jq -r --argjson since "$apply_started" --arg db "$db" '
				select(.ok and (.started | sub("\\.[0-9]+"; "") | fromdateiso8601) >= $since) |
				"restored \($db) from \(.restore.from) (backup \(.restore.backup_label)) to \(.restore.recovered_to // "latest"), in \(.restore.took)"' || true
	done
	echo
	echo "The shop is up ($((SECONDS - start))s; Terraform's log: $log_dir/apply.log):"
	tf output "${state_args[@]}"
	echo
	echo "Nomad and Consul speak HTTPS and want a token (ACLs deny by default): as the operator,"
	echo "  export NOMAD_ADDR=$(tf output "${state_args[@]}" -raw nomad_ui | sed 's|/ui$||') NOMAD_CACERT=$cluster/tls/nomad-agent-ca.pem NOMAD_TOKEN=\$(cat $keys/nomad-management.token)"
	echo "  export CONSUL_HTTP_ADDR=$consul CONSUL_CACERT=$cluster/tls/consul-agent-ca.pem CONSUL_HTTP_TOKEN=\$(cat $keys/consul-management.token)"
	;;
down)
	tf init -input=false >/dev/null
	start=$SECONDS
	quiet "$log_dir/destroy.log" destroy -auto-approve -input=false "${state_args[@]}"
	echo "The shop is down ($((SECONDS - start))s; Terraform's log: $log_dir/destroy.log)"
	;;
output)
	tf output "${state_args[@]}"
	;;
*)
	echo "usage: $0 up|down|output" >&2
	exit 2
	;;
esac
