#!/usr/bin/env bash
# devcluster.sh starts and stops the local dev cluster: a Consul dev agent and
# a Nomad agent (server + client, raw_exec) on loopback. State, logs and pids
# live in $STATE (default .run/cluster in the work tree); `down` stops
# exactly the processes `up` started, by their pids, and waits until their
# ports are closed.
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
# host) under $STATE/volumes, owned by the postgres user. They are kept by
# `down`: data outlives the cluster, as it would on a real host. `purge`
# removes them (and the rest of $STATE) once the cluster is down.
#
# The host volume `objectstore` (the S3 bucket that stands in for a cloud
# provider's: backup repo2) lives in OBJECTSTORE_DIR, outside $STATE
# (default .run/objectstore): a purged cluster, like a lost host, leaves it.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
STATE=${STATE:-$top/.run/cluster}
PATH=$("$top/scripts/tools.sh" bindir):$PATH

CONSUL_HTTP_PORT=${CONSUL_HTTP_PORT:-8500}
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

log() { printf 'devcluster: %s\n' "$*" >&2; }

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

start_consul() {
	if running consul; then
		log "consul already running (pid $(cat "$STATE/consul.pid"))"
		return
	fi
	command -v consul >/dev/null || { log "consul not found: run make tools"; exit 1; }
	mkdir -p "$STATE/consul"
	# setsid: the agent must outlive `make up`'s shell, and stays findable
	# by its pid.
	setsid consul agent -dev -node dev \
		-bind 127.0.0.1 -client 127.0.0.1 \
		-http-port "$CONSUL_HTTP_PORT" -dns-port "$CONSUL_DNS_PORT" \
		-serf-lan-port "$CONSUL_SERF_LAN_PORT" -serf-wan-port "$CONSUL_SERF_WAN_PORT" \
		-server-port "$CONSUL_SERVER_PORT" -grpc-port "$CONSUL_GRPC_PORT" -grpc-tls-port "$CONSUL_GRPC_TLS_PORT" \
		-log-json >"$STATE/consul.log" 2>&1 </dev/null &
	echo $! >"$STATE/consul.pid"
	# Up means a leader is elected: before that, registrations fail.
	local deadline=$((SECONDS + 60)) leader=""
	until leader=$(curl -fsS "http://127.0.0.1:$CONSUL_HTTP_PORT/v1/status/leader" 2>/dev/null) && [ -n "$leader" ] && [ "$leader" != '""' ]; do
		if [ $SECONDS -ge $deadline ] || ! running consul; then
			log "consul did not come up; its log: $STATE/consul.log"
			tail -n 20 "$STATE/consul.log" >&2
			exit 1
		fi
		sleep 0.5
	done
}

start_nomad() {
	if running nomad; then
		log "nomad already running (pid $(cat "$STATE/nomad.pid"))"
		return
	fi
	command -v nomad >/dev/null || { log "nomad not found: run make tools"; exit 1; }
	# Tasks run as the postgres user must traverse the data folder.
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
  address = "127.0.0.1:$CONSUL_HTTP_PORT"
}
client {
  min_dynamic_port = $NOMAD_MIN_DYNAMIC_PORT
  max_dynamic_port = $NOMAD_MAX_DYNAMIC_PORT
  meta {
    # raw_exec mounts nothing: a task finds its host volume at
    # \${meta.shop_volumes_dir}/<volume name> (nomad/postgres.nomad.hcl).
    shop_volumes_dir = "$STATE/volumes"
    shop_objectstore_dir = "$OBJECTSTORE_DIR"
  }
  host_volume "objectstore" {
    path      = "$OBJECTSTORE_DIR"
    read_only = false
  }
HCL
	mkdir -p "$OBJECTSTORE_DIR"
	chmod 0700 "$OBJECTSTORE_DIR"
	local v
	for v in $HOST_VOLUMES; do
		mkdir -p "$STATE/volumes/$v"
		# Postgres runs as the postgres user and refuses a data folder that
		# others can read.
		if id postgres >/dev/null 2>&1; then chown postgres:postgres "$STATE/volumes/$v"; fi
		chmod 0700 "$STATE/volumes/$v"
		# Every folder above must be traversable by postgres too.
		if id postgres >/dev/null 2>&1 && command -v runuser >/dev/null && ! runuser -u postgres -- test -x "$STATE/volumes/$v"; then
			log "the postgres user cannot reach $STATE/volumes/$v: give its parent folders o+x"
			exit 1
		fi
		cat >>"$STATE/nomad/local.hcl" <<HCL
  host_volume "$v" {
    path      = "$STATE/volumes/$v"
    read_only = false
  }
HCL
	done
	echo "}" >>"$STATE/nomad/local.hcl"
	# The Nomad client refuses to start with AWS_CA_BUNDLE set.
	env -u AWS_CA_BUNDLE setsid nomad agent \
		-config "$top/nomad/dev/nomad.hcl" -config "$STATE/nomad/local.hcl" \
		>"$STATE/nomad.log" 2>&1 </dev/null &
	echo $! >"$STATE/nomad.pid"
	local deadline=$((SECONDS + 90))
	until curl -fsS "http://127.0.0.1:$NOMAD_HTTP_PORT/v1/nodes" 2>/dev/null | grep -q '"Status":"ready"'; do
		if [ $SECONDS -ge $deadline ] || ! running nomad; then
			log "nomad did not come up; its log: $STATE/nomad.log"
			tail -n 30 "$STATE/nomad.log" >&2
			exit 1
		fi
		sleep 0.5
	done
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
	export NOMAD_ADDR=http://127.0.0.1:$NOMAD_HTTP_PORT
	local jobs
	jobs=$(curl -fsS "$NOMAD_ADDR/v1/jobs" 2>/dev/null | grep -o '"ID":"[^"]*"' | sed 's/"ID":"\(.*\)"/\1/' | sort -u || true)
	for j in $jobs; do
		log "stopping job $j"
		nomad job stop -detach "$j" >/dev/null 2>&1 || true
	done
	local deadline=$((SECONDS + 90))
	while curl -fsS "$NOMAD_ADDR/v1/allocations" 2>/dev/null | grep -q '"ClientStatus":"\(running\|pending\)"'; do
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
	[ -n "$execs" ] || return 0
	log "ending the task executors the client left behind: $(echo $execs)"
	for pid in $execs; do
		pkill -KILL -P "$pid" 2>/dev/null || true
		kill -KILL "$pid" 2>/dev/null || true
	done
}

case "${1:-}" in
up)
	mkdir -p "$STATE"
	start_consul
	start_nomad
	echo "Consul UI: http://127.0.0.1:$CONSUL_HTTP_PORT/ui   (DNS on 127.0.0.1:$CONSUL_DNS_PORT)"
	echo "Nomad UI:  http://127.0.0.1:$NOMAD_HTTP_PORT/ui"
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
