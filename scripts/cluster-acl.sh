#!/usr/bin/env bash
# cluster-acl.sh gives a cluster whose Consul and Nomad deny by default
# what its agents and workloads need, idempotently (what exists is left).
# scripts/devcluster.sh runs it at every start (a dev Consul keeps its
# state in memory), terraform/modules/hashistack-host after the hosts'
# agents are up.
#
#   scripts/cluster-acl.sh consul      the agents' and DNS tokens, Nomad's Consul token
#   scripts/cluster-acl.sh nomad       bootstrap Nomad's ACLs with the management token
#   scripts/cluster-acl.sh workloads   Consul trusts Nomad's workload identities
#
# CONSUL_HTTP_ADDR, CONSUL_CACERT, NOMAD_ADDR, NOMAD_CACERT say where the
# agents are (HTTPS, checked against the CAs); KEYS is the folder of the
# tokens' secrets (consul-management.token, consul-agent.token,
# consul-dns.token, consul-nomad.token, nomad-management.token: each a
# UUID, made by the caller); NODES names the Consul nodes the agent token
# is for ("*": any node, a cloud cluster's hosts), DC their datacenter (dc1);
# JWKS_URL is where Consul's servers fetch Nomad's keys
# (NOMAD_ADDR/.well-known/jwks.json).
set -euo pipefail
: "${CONSUL_HTTP_ADDR:?}" "${CONSUL_CACERT:?}" "${NOMAD_ADDR:?}" "${NOMAD_CACERT:?}" "${KEYS:?}" "${NODES:?}"
DC=${DC:-dc1}
JWKS_URL=${JWKS_URL:-$NOMAD_ADDR/.well-known/jwks.json}

log() { printf 'cluster-acl: %s\n' "$*" >&2; }
secret() { cat "$KEYS/$1.token"; }

# capi METHOD PATH [BODY]: Consul's HTTP API with the management token.
capi() {
	curl -fsS --max-time 10 --cacert "$CONSUL_CACERT" -X "$1" -H "X-Consul-Token: $(secret consul-management)" \
		"$CONSUL_HTTP_ADDR/v1/$2" ${3:+--data-binary "$3"}
}

# consul_token SECRET DESCRIPTION JSON: the token of that secret, made with
# the grants in JSON (NodeIdentities, Policies…) unless it exists.
consul_token() {
	curl -fsS --max-time 10 --cacert "$CONSUL_CACERT" -o /dev/null -H "X-Consul-Token: $1" "$CONSUL_HTTP_ADDR/v1/acl/token/self" 2>/dev/null && return
	capi PUT acl/token "$(jq -n --arg s "$1" --arg d "$2" --argjson g "$3" '{SecretID: $s, Description: $d} + $g')" >/dev/null
}

# wait_leader ADDR CA: until the agent at ADDR has a leader (2 minutes).
wait_leader() {
	local deadline=$((SECONDS + 120)) leader=""
	until leader=$(curl -fsS --max-time 5 --cacert "$2" "$1/v1/status/leader" 2>/dev/null) && [ -n "$leader" ] && [ "$leader" != '""' ]; do
		[ $SECONDS -lt $deadline ] || { log "$1 has no leader"; exit 1; }
		sleep 1
	done
}

# consul_policy NAME RULES: the ACL policy NAME, made unless it exists.
consul_policy() {
	capi GET "acl/policy/name/$1" >/dev/null 2>&1 && return
	capi PUT acl/policy "$(jq -n --arg n "$1" --arg r "$2" '{Name: $n, Rules: $r}')" >/dev/null
}

# consul: the agents register their nodes; DNS answers for anyone who asks
# (HAProxy, the services' resolvers), from the catalogue's healthy
# instances only; Nomad's own token registers its agent and deregisters
# what its workloads registered with their identities (Nomad's documented
# policy for a server, which a client's is part of).
consul() {
	wait_leader "$CONSUL_HTTP_ADDR" "$CONSUL_CACERT"
	local nodes
	if [ "$NODES" = "*" ]; then
		consul_policy agents 'node_prefix "" { policy = "write" }
service_prefix "" { policy = "read" }'
		nodes='{"Policies": [{"Name": "agents"}]}'
	else
		nodes=$(for n in $NODES; do jq -n --arg n "$n" --arg dc "$DC" '{NodeName: $n, Datacenter: $dc}'; done | jq -s '{NodeIdentities: .}')
	fi
	consul_token "$(secret consul-agent)" "the agents" "$nodes"
	consul_token "$(secret consul-dns)" "DNS" '{"TemplatedPolicies": [{"TemplateName": "builtin/dns"}]}'
	consul_policy nomad-agent 'agent_prefix "" { policy = "read" }
node_prefix "" { policy = "write" }
service_prefix "" { policy = "write" }
acl = "write"
mesh = "write"'
	consul_token "$(secret consul-nomad)" "the Nomad agents" '{"Policies": [{"Name": "nomad-agent"}]}'
}

# nomad gives a new Nomad state its management token; a state that has it
# already says so (400).
nomad() {
	wait_leader "$NOMAD_ADDR" "$NOMAD_CACERT"
	local out
	out=$(curl -sS --max-time 10 --cacert "$NOMAD_CACERT" -X POST "$NOMAD_ADDR/v1/acl/bootstrap" \
		--data-binary "$(jq -n --arg s "$(secret nomad-management)" '{BootstrapSecret: $s}')" 2>&1) ||
		{ log "nomad acl bootstrap: $out"; exit 1; }
	case $out in *'"SecretID"'* | *"bootstrap already done"*) ;; *) log "nomad acl bootstrap: $out"; exit 1 ;; esac
}

# workloads lets Nomad's workload identities log in to Consul (Nomad signs
# them; Consul checks them against Nomad's keys):
# - a service registers itself (and its checks) under its own name;
# - a task gets write on the service named as its job — its mesh leaf
#   certificate, and the intentions asked about it — and read on the
#   catalogue (builtin/service: service_prefix "" and node_prefix "" read),
#   which is all VictoriaMetrics' Consul discovery and the log collector's
#   template need (the scrape configuration names its datacenter, so no
#   agent:read);
# - a database's tasks (its job and its backup jobs) write its backup
#   records in KV, and the drills' TTL checks (service backup-drill).
workloads() {
	capi GET acl/auth-method/nomad-workloads >/dev/null 2>&1 ||
		capi PUT acl/auth-method "$(jq -n --arg u "$JWKS_URL" --rawfile ca "$NOMAD_CACERT" '{
			Name: "nomad-workloads", Type: "jwt", TokenLocality: "local",
			Description: "Nomad workload identities",
			Config: {JWKSURL: $u, JWKSCACert: $ca, JWTSupportedAlgs: ["RS256"], BoundAudiences: ["consul.io"],
				ClaimMappings: {nomad_namespace: "nomad_namespace", nomad_job_id: "nomad_job_id", nomad_task: "nomad_task", nomad_service: "nomad_service"}}}')" >/dev/null
	local db rules
	for db in auth inventory orders payment; do
		consul_policy "backup-records-$db" "key_prefix \"mylittleshopping/backup/$db/\" { policy = \"write\" }
service \"backup-drill\" { policy = \"write\" }"
	done
	rules=$(capi GET "acl/binding-rules?authmethod=nomad-workloads")
	bind() {
		jq -e --arg d "$1" 'any(.[]; .Description == $d)' <<<"$rules" >/dev/null && return
		capi PUT acl/binding-rule "$(jq -n --arg d "$1" --argjson r "$2" '{AuthMethod: "nomad-workloads", Description: $d} + $r')" >/dev/null
	}
	bind "services: their own name" '{"BindType": "service", "BindName": "${value.nomad_service}", "Selector": "\"nomad_service\" in value"}'
	bind "tasks: the service named as their job" '{"BindType": "templated-policy", "BindName": "builtin/service", "BindVars": {"Name": "${value.nomad_job_id}"}, "Selector": "\"nomad_service\" not in value"}'
	for db in auth inventory orders payment; do
		bind "tasks of $db-db and its backups: their records" "$(jq -n --arg db "$db" '{BindType: "policy", BindName: "backup-records-\($db)", Selector: "\"nomad_service\" not in value and value.nomad_job_id matches \"^\($db)-db(-|$)\""}')"
	done
}

case "${1:-}" in
consul | nomad | workloads) "$1" ;;
*)
	echo "usage: $0 consul|nomad|workloads" >&2
	exit 2
	;;
esac
