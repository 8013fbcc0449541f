#!/usr/bin/env bash
# devcluster.sh starts and stops the local dev cluster: a Consul dev agent and
# a Nomad agent (server + client, its tasks in Docker containers: the engine
# is started by scripts/dockerd.sh when none runs) on loopback. State, logs and pids
# live in $STATE (default .run/cluster in the work tree); `down` stops
# exactly the processes `up` started, by their pids, and waits until their
# ports are closed.
#
# Both agents are locked as a cloud host's are: ACLs deny by default (the
# management tokens are in $STATE/keys, mode 0600: `up` prints how to use
# them), their HTTP APIs and RPC speak TLS only with certificates of the
# cluster's CAs ($STATE/tls), gossip is encrypted, and workloads get
# tokens from their Nomad identities (scripts/cluster-keys.sh makes the
# keys at the first start, scripts/cluster-acl.sh grants what is needed).
#
#   scripts/devcluster.sh up | down | purge | status
#
# Ports can be moved with CONSUL_HTTP_PORT, CONSUL_DNS_PORT, CONSUL_SERF_LAN_PORT,
# CONSUL_SERF_WAN_PORT, CONSUL_SERVER_PORT, CONSUL_GRPC_PORT, CONSUL_GRPC_TLS_PORT, NOMAD_HTTP_PORT,
# NOMAD_RPC_PORT, NOMAD_SERF_PORT (the up/down test and the e2e suite run a
# second cluster this way), and the range Nomad hands out dynamic ports from
# with NOMAD_MIN_DYNAMIC_PORT, NOMAD_MAX_DYNAMIC_PORT (so that two clusters on
# one machine do not give their tasks the same port).
#
# The client declares one host volume per database (HOST_VOLUMES, default
# the four services' `<svc>-db`, and `backups`, pgBackRest's repo1 on this
# host) under $STATE/volumes, owned by the images' postgres user (uid 999). They are kept by
# `down`: data outlives the cluster, as it would on a real host. `purge`
# removes them (and the rest of $STATE) once the cluster is down.
#
# The host volume `objectstore` (the S3 bucket that stands in for a cloud
# provider's: backup repo2) lives in OBJECTSTORE_DIR, outside $STATE
# (default .run/objectstore): a purged cluster, like a lost host, leaves it.
#
# Logs and metrics: the volumes `logs` (VictoriaLogs) and `metrics`
# (VictoriaMetrics) under $STATE/volumes, owned by the images' app user;
# `log-collector` (the collector's read offsets and queue), root's: the
# collector reads Docker's log files as root; and `docker-containers`,
# the engine's containers folder (DOCKER_CONTAINERS_DIR, default the
# running engine's root + /containers), read-only: the json-file logs the
# collector tails.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
STATE=${STATE:-$top/.run/cluster}
PATH=$("$top/scripts/tools.sh" bindir):$PATH

CONSUL_HTTP_PORT=${CONSUL_HTTP_PORT:-8500}
# Both agents' HTTP APIs speak HTTPS only, with certificates of the
# cluster's own CAs (keys).
TLS=$STATE/tls
CONSUL_DNS_PORT=${CONSUL_DNS_PORT:-8600}
CONSUL_SERF_LAN_PORT=${CONSUL_SERF_LAN_PORT:-8301}
CONSUL_SERF_WAN_PORT=${CONSUL_SERF_WAN_PORT:-8302}
CONSUL_SERVER_PORT=${CONSUL_SERVER_PORT:-8300}
CONSUL_GRPC_PORT=${CONSUL_GRPC_PORT:-8502}
CONSUL_GRPC_TLS_PORT=${CONSUL_GRPC_TLS_PORT:-8503}
NOMAD_HTTP_PORT=${NOMAD_HTTP_PORT:-4646}
NOMAD_RPC_PORT=${NOMAD_RPC_PORT:-4647}
NOMAD_SERF_PORT=${NOMAD_SERF_PORT:-4648}
NOMAD_MIN_DYNAMIC_PORT=${NOMAD_MIN_DYNAMIC_PORT:-20000}
NOMAD_MAX_DYNAMIC_PORT=${NOMAD_MAX_DYNAMIC_PORT:-32000}
HOST_VOLUMES=${HOST_VOLUMES:-auth-db inventory-db orders-db payment-db backups}
OBJECTSTORE_DIR=${OBJECTSTORE_DIR:-$top/.run/objectstore}
# The users the images run as: postgres (the databases, their backups) and
# app (every Go binary, SeaweedFS's and the Victoria* included).
PG_UID=999
APP_UID=65532

log() { printf 'devcluster: %s\n' "$*" >&2; }

# key NAME: a key of the cluster (a gossip key, an ACL token's secret),
# which keys makes at its first start and keeps in $STATE/keys (mode 0600)
# until purge: never in the repository.
key() { cat "$STATE/keys/$1" 2>/dev/null || true; }

# keys makes what key reads, and the cluster's two CAs and the agent's
# certificates in $TLS (scripts/cluster-keys.sh): Consul's
# (consul-agent-ca.pem; dev/consul.pem, for server.dc1.consul, localhost
# and 127.0.0.1) and Nomad's (nomad-agent-ca.pem; dev/nomad.pem, for
# server.global.nomad, localhost and 127.0.0.1). Clients check the agents
# against the CA files.
keys() {
	"$top/scripts/cluster-keys.sh" cluster "$STATE/keys" "$TLS"
	"$top/scripts/cluster-keys.sh" host "$TLS" dev server 127.0.0.1
}

# secret_config FILE TEXT writes an agent's configuration that holds a key
# (mode 0600: only root, which runs the agents, reads it).
secret_config() {
	(umask 077 && printf '%s\n' "$2" >"$1.tmp" && mv -f "$1.tmp" "$1")
}

# acl CMD: scripts/cluster-acl.sh CMD on this cluster, with its keys.
acl() {
	CONSUL_HTTP_ADDR=https://127.0.0.1:$CONSUL_HTTP_PORT CONSUL_CACERT=$TLS/consul-agent-ca.pem \
		NOMAD_ADDR=https://127.0.0.1:$NOMAD_HTTP_PORT NOMAD_CACERT=$TLS/nomad-agent-ca.pem \
		KEYS=$STATE/keys NODES=dev "$top/scripts/cluster-acl.sh" "$1"
}

# napi METHOD PATH [BODY]: Nomad's HTTP API with the management token.
napi() {
	curl -fsS --max-time 10 --cacert "$TLS/nomad-agent-ca.pem" -X "$1" -H "X-Nomad-Token: $(key nomad-management.token)" \
		"https://127.0.0.1:$NOMAD_HTTP_PORT/v1/$2" ${3:+--data-binary "$3"}
}

# The agents start without the operator's client settings (NOMAD_ADDR,
# CONSUL_HTTP_TOKEN… which README tells an operator to export, and the e2e
# suite sets): Nomad's templates read Nomad through the task's API socket,
# and an inherited NOMAD_ADDR=https://… made them speak TLS to it (every
# nomadVar template blocked: "server gave HTTP response to HTTPS client").
# The Nomad client also refuses to start with AWS_CA_BUNDLE set.
agent_env=(env -u NOMAD_ADDR -u NOMAD_CACERT -u NOMAD_CLIENT_CERT -u NOMAD_CLIENT_KEY -u NOMAD_TOKEN -u NOMAD_TOKEN_FILE
	-u CONSUL_HTTP_ADDR -u CONSUL_CACERT -u CONSUL_CLIENT_CERT -u CONSUL_CLIENT_KEY -u CONSUL_HTTP_SSL
	-u CONSUL_HTTP_TOKEN -u CONSUL_HTTP_TOKEN_FILE -u AWS_CA_BUNDLE)

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

# wait_leader NAME URL CA DEADLINE: until the agent NAME (consul, nomad)
# has a leader, its HTTPS checked against CA; at DEADLINE ($SECONDS), or
# when it died, fail with the end of its log.
wait_leader() {
	local leader=""
	until leader=$(curl -fsS --cacert "$3" "$2/v1/status/leader" 2>/dev/null) && [ -n "$leader" ] && [ "$leader" != '""' ]; do
		if [ $SECONDS -ge "$4" ] || ! running "$1"; then
			log "$1 elected no leader; its log: $STATE/$1.log"
			tail -n 30 "$STATE/$1.log" >&2
			exit 1
		fi
		sleep 0.5
	done
}


start_consul() {
	if running consul; then
		log "consul already running (pid $(cat "$STATE/consul.pid"))"
		return
	fi
	command -v consul >/dev/null || { log "consul not found: run make tools"; exit 1; }
	mkdir -p "$STATE/consul"
	# Gossip (Serf) is encrypted with the cluster's key; ACLs deny what no
	# token allows.
	secret_config "$STATE/consul/secrets.hcl" "encrypt = \"$(key consul-gossip.key)\"
ports {
  http  = -1
  https = $CONSUL_HTTP_PORT
}
tls {
  defaults {
    ca_file         = \"$TLS/consul-agent-ca.pem\"
    cert_file       = \"$TLS/dev/consul.pem\"
    key_file        = \"$TLS/dev/consul-key.pem\"
    verify_outgoing = true
  }
  internal_rpc {
    verify_incoming        = true
    verify_server_hostname = true
  }
  # Clients (the CLI, the UI, Nomad, the services) check the agent against
  # the CA and present no certificate of their own: ACLs guard the API.
  https {
    verify_incoming = false
  }
}
acl {
  enabled        = true
  default_policy = \"deny\"
  down_policy    = \"extend-cache\"
  tokens {
    initial_management = \"$(key consul-management.token)\"
    agent              = \"$(key consul-agent.token)\"
    dns                = \"$(key consul-dns.token)\"
  }
}"
	# setsid: the agent must outlive `make up`'s shell, and stays findable
	# by its pid.
	"${agent_env[@]}" setsid consul agent -dev -node dev \
		-bind 127.0.0.1 -client 127.0.0.1 \
		-dns-port "$CONSUL_DNS_PORT" \
		-serf-lan-port "$CONSUL_SERF_LAN_PORT" -serf-wan-port "$CONSUL_SERF_WAN_PORT" \
		-server-port "$CONSUL_SERVER_PORT" -grpc-port "$CONSUL_GRPC_PORT" -grpc-tls-port "$CONSUL_GRPC_TLS_PORT" \
		-config-file "$STATE/consul/secrets.hcl" \
		-log-json >"$STATE/consul.log" 2>&1 </dev/null &
	echo $! >"$STATE/consul.pid"
	# Up means a leader is elected: before that, registrations fail.
	wait_leader consul "https://127.0.0.1:$CONSUL_HTTP_PORT" "$TLS/consul-agent-ca.pem" $((SECONDS + 60))
	acl consul
}

# run_nomad DEADLINE starts the Nomad agent with the cluster's
# configuration, waits for its leader and applies the ACLs.
run_nomad() {
	"${agent_env[@]}" setsid nomad agent \
		-config "$top/nomad/dev/nomad.hcl" -config "$STATE/nomad/local.hcl" -config "$STATE/nomad/secrets.hcl" \
		>>"$STATE/nomad.log" 2>&1 </dev/null &
	echo $! >"$STATE/nomad.pid"
	wait_leader nomad "https://127.0.0.1:$NOMAD_HTTP_PORT" "$TLS/nomad-agent-ca.pem" "$1"
	acl nomad
}

# nomad_until DEADLINE WHAT CMD...: until CMD succeeds; past DEADLINE, or
# when the agent is gone, fail saying that nomad WHAT, with its log.
nomad_until() {
	local deadline=$1 what=$2
	shift 2
	until "$@"; do
		if [ $SECONDS -ge "$deadline" ] || ! running nomad; then
			log "nomad $what; its log: $STATE/nomad.log"
			tail -n 30 "$STATE/nomad.log" >&2
			exit 1
		fi
		sleep 0.2
	done
}
nomad_has_keyring() { [ "$(napi GET operator/keyring/keys 2>/dev/null | jq 'map(select(.State == "active")) | length' 2>/dev/null)" = 1 ]; }
nomad_node_ready() { napi GET nodes 2>/dev/null | grep -q '"Status":"ready"'; }

start_nomad() {
	if running nomad; then
		log "nomad already running (pid $(cat "$STATE/nomad.pid"))"
		return
	fi
	command -v nomad >/dev/null || { log "nomad not found: run make tools"; exit 1; }
	# The containers' users must reach their task folders under data_dir.
	# The client starts with the server only once the server has its
	# keyring (see below).
	local client_enabled=true
	[ -d "$STATE/nomad/data/server" ] || client_enabled=false
	: >"$STATE/nomad.log"
	mkdir -p "$STATE/nomad/data" "$STATE/volumes"
	chmod 0711 "$STATE" "$STATE/nomad" "$STATE/nomad/data" "$STATE/volumes"
	cat >"$STATE/nomad/local.hcl" <<HCL
data_dir = "$STATE/nomad/data"
ports {
  http = $NOMAD_HTTP_PORT
  rpc  = $NOMAD_RPC_PORT
  serf = $NOMAD_SERF_PORT
}
consul {
  address   = "127.0.0.1:$CONSUL_HTTP_PORT"
  ssl       = true
  ca_file   = "$TLS/consul-agent-ca.pem"
}
tls {
  http      = true
  rpc       = true
  ca_file   = "$TLS/nomad-agent-ca.pem"
  cert_file = "$TLS/dev/nomad.pem"
  key_file  = "$TLS/dev/nomad-key.pem"
  verify_server_hostname = true
  # Browsers, curl and Consul (which fetches Nomad's keys for workload
  # identities) present no client certificate; ACLs guard the API.
  verify_https_client = false
}
client {
  enabled          = $client_enabled
  min_dynamic_port = $NOMAD_MIN_DYNAMIC_PORT
  max_dynamic_port = $NOMAD_MAX_DYNAMIC_PORT
  host_volume "objectstore" {
    path      = "$OBJECTSTORE_DIR"
    read_only = false
  }
HCL
	mkdir -p "$OBJECTSTORE_DIR"
	# SeaweedFS runs as the images' app user (images/service.Dockerfile).
	[ "$(stat -c %u:%g "$OBJECTSTORE_DIR")" = "$APP_UID:$APP_UID" ] || chown -R "$APP_UID:$APP_UID" "$OBJECTSTORE_DIR"
	chmod 0700 "$OBJECTSTORE_DIR"
	local v
	for v in $HOST_VOLUMES; do
		mkdir -p "$STATE/volumes/$v"
		# The databases' containers run as the image's postgres user, uid
		# $PG_UID (images/postgres.Dockerfile), and Postgres refuses a data
		# folder that others can read. A volume of another owner (made
		# before the containers) is handed over whole.
		[ "$(stat -c %u:%g "$STATE/volumes/$v")" = "$PG_UID:$PG_UID" ] || chown -R "$PG_UID:$PG_UID" "$STATE/volumes/$v"
		chmod 0700 "$STATE/volumes/$v"
		cat >>"$STATE/nomad/local.hcl" <<HCL
  host_volume "$v" {
    path      = "$STATE/volumes/$v"
    read_only = false
  }
HCL
	done
	# Logs and metrics (the header says whose each is).
	local owner
	for v in logs:$APP_UID metrics:$APP_UID log-collector:0; do
		owner=${v#*:}
		v=${v%%:*}
		mkdir -p "$STATE/volumes/$v"
		[ "$(stat -c %u:%g "$STATE/volumes/$v")" = "$owner:$owner" ] || chown -R "$owner:$owner" "$STATE/volumes/$v"
		chmod 0700 "$STATE/volumes/$v"
		cat >>"$STATE/nomad/local.hcl" <<HCL
  host_volume "$v" {
    path      = "$STATE/volumes/$v"
    read_only = false
  }
HCL
	done
	local containers=${DOCKER_CONTAINERS_DIR:-$(docker info --format '{{.DockerRootDir}}' 2>/dev/null || echo /var/lib/docker)/containers}
	mkdir -p "$containers"
	cat >>"$STATE/nomad/local.hcl" <<HCL
  host_volume "docker-containers" {
    path      = "$containers"
    read_only = true
  }
}
HCL
	# The servers' gossip is encrypted with the cluster's key; ACLs on.
	# Nomad gives every workload identities that Consul accepts (see
	# consul_workloads): services register, and tasks call Consul, with
	# their own token.
	secret_config "$STATE/nomad/secrets.hcl" "server {
  encrypt = \"$(key nomad-gossip.key)\"
}
acl {
  enabled = true
}
consul {
  token = \"$(key consul-nomad.token)\"
  service_identity {
    aud = [\"consul.io\"]
    ttl = \"1h\"
  }
  task_identity {
    aud = [\"consul.io\"]
    ttl = \"1h\"
  }
}"
	local deadline=$((SECONDS + 90))
	if [ "$client_enabled" = false ]; then
		# A new server has no keyring until its first leader makes one, a
		# few hundred milliseconds after the election; a client that
		# registers before that is told to retry 15 to 30 s later
		# (registerRetryIntv in Nomad's client/client.go), which made `make
		# up` on a new cluster vary by as much. So on a new data folder the
		# agent first runs as a server alone until its keyring exists, and
		# then again with its client.
		run_nomad "$deadline"
		nomad_until "$deadline" "made no keyring" nomad_has_keyring
		stop nomad
		sed -i 's/^  enabled          = false$/  enabled          = true/' "$STATE/nomad/local.hcl"
	fi
	run_nomad "$deadline"
	nomad_until "$deadline" "did not come up" nomad_node_ready
}

# stop NAME: TERM the process group, wait, KILL what is left.
stop() {
	local name=$1 pidf=$STATE/$1.pid
	[ -f "$pidf" ] || return 0
	local pid
	pid=$(cat "$pidf")
	if kill -0 "$pid" 2>/dev/null; then
		log "stopping $name (pid $pid)"
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		local deadline=$((SECONDS + 30))
		while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	rm -f "$pidf"
}

# stop_jobs stops every job and waits until no allocation runs. It does not
# purge: a purged job's allocations vanish from the API while their tasks
# may still be draining, and the wait would end before they are gone.
stop_jobs() {
	export NOMAD_ADDR=https://127.0.0.1:$NOMAD_HTTP_PORT NOMAD_CACERT=$TLS/nomad-agent-ca.pem
	NOMAD_TOKEN=$(key nomad-management.token)
	export NOMAD_TOKEN
	local jobs
	jobs=$(napi GET jobs 2>/dev/null | grep -o '"ID":"[^"]*"' | sed 's/"ID":"\(.*\)"/\1/' | sort -u || true)
	for j in $jobs; do
		log "stopping job $j"
		nomad job stop -detach "$j" >/dev/null 2>&1 || true
	done
	local deadline=$((SECONDS + 90))
	while napi GET allocations 2>/dev/null | grep -q '"ClientStatus":"\(running\|pending\)"'; do
		if [ $SECONDS -ge $deadline ]; then
			log "allocations still running after 90s"
			return
		fi
		sleep 0.5
	done
}

# kill_leftovers ends the tasks a stopped client left behind (it would have
# re-attached to them at its next start, but down wipes its state): each
# task runs under a Nomad executor whose command line names its allocation
# folder in $STATE. The executor and its children are killed by pid.
kill_leftovers() {
	local execs pid
	execs=$(ps -eo pid=,args= | awk -v dir="$STATE/nomad/data/alloc/" 'index($0, "nomad executor") && index($0, dir) {print $1}')
	if [ -n "$execs" ]; then
		log "ending the task executors the client left behind: $(echo $execs)"
		for pid in $execs; do
			pkill -KILL -P "$pid" 2>/dev/null || true
			kill -KILL "$pid" 2>/dev/null || true
		done
	fi
	# Containers outlive the client the same way: those that mount a task
	# folder of this cluster are its own.
	docker version >/dev/null 2>&1 || return 0
	local c mine=()
	for c in $(docker ps -aq --filter label=com.hashicorp.nomad.alloc_id); do
		if docker inspect --format '{{range .Mounts}}{{.Source}}{{"\n"}}{{end}}' "$c" 2>/dev/null | grep -q "^$STATE/nomad/data/"; then mine+=("$c"); fi
	done
	[ ${#mine[@]} -eq 0 ] && return 0
	log "removing the containers the client left behind: ${mine[*]}"
	docker rm -f "${mine[@]}" >/dev/null 2>&1 || true
}

case "${1:-}" in
up)
	mkdir -p "$STATE"
	"$top/scripts/dockerd.sh" up
	keys
	start_consul
	start_nomad
	acl workloads
	echo "Consul UI: https://127.0.0.1:$CONSUL_HTTP_PORT/ui   (DNS on 127.0.0.1:$CONSUL_DNS_PORT; CA $TLS/consul-agent-ca.pem)"
	echo "Nomad UI:  https://127.0.0.1:$NOMAD_HTTP_PORT/ui   (CA $TLS/nomad-agent-ca.pem)"
	echo "Tokens:    export NOMAD_TOKEN=\$(cat $STATE/keys/nomad-management.token) CONSUL_HTTP_TOKEN=\$(cat $STATE/keys/consul-management.token)"
	;;
down)
	# A Nomad client leaves its tasks running when it exits (it re-attaches
	# to them at restart), so stop every job first and wait for its tasks.
	if running nomad; then
		stop_jobs
	fi
	stop nomad
	kill_leftovers
	stop consul
	# Only an engine `up` started, once no container runs.
	"$top/scripts/dockerd.sh" down
	# Nomad leaves task folders mounted (secrets, private dirs) under its
	# data_dir; unmount them so the state can be removed.
	if [ -d "$STATE/nomad/data" ]; then
		{ grep -o " $STATE/nomad/data[^ ]*" /proc/mounts || true; } | sort -r |
			while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
	fi
	rm -rf "$STATE/nomad/data"
	;;
purge)
	if running consul || running nomad; then
		log "the cluster is running: run down first"
		exit 1
	fi
	rm -rf "$STATE"
	;;
status)
	for n in consul nomad; do
		if running "$n"; then echo "$n: running (pid $(cat "$STATE/$n.pid"))"; else echo "$n: stopped"; fi
	done
	;;
*)
	echo "usage: $0 up|down|purge|status" >&2
	exit 2
	;;
esac
