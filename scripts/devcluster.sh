#!/usr/bin/env bash
# devcluster.sh starts and stops the local dev cluster: a Consul dev agent and
# a Nomad agent (server + client, raw_exec) on loopback. State, logs and pids
# live in $STATE (default .run/cluster in the work tree); `down` stops
# exactly the processes `up` started, by their pids, and waits until their
# ports are closed.
#
#   scripts/devcluster.sh up | down | status
#
# Ports can be moved with CONSUL_HTTP_PORT, CONSUL_DNS_PORT, CONSUL_SERF_LAN_PORT,
# CONSUL_SERF_WAN_PORT, CONSUL_SERVER_PORT, CONSUL_GRPC_PORT, NOMAD_HTTP_PORT,
# NOMAD_RPC_PORT, NOMAD_SERF_PORT (the up/down test runs a second cluster
# this way).
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
NOMAD_HTTP_PORT=${NOMAD_HTTP_PORT:-4646}
NOMAD_RPC_PORT=${NOMAD_RPC_PORT:-4647}
NOMAD_SERF_PORT=${NOMAD_SERF_PORT:-4648}

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
		-server-port "$CONSUL_SERVER_PORT" -grpc-port "$CONSUL_GRPC_PORT" \
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
	mkdir -p "$STATE/nomad/data"
	chmod 0711 "$STATE" "$STATE/nomad" "$STATE/nomad/data"
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
HCL
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

# stop_jobs stops and purges every job and waits until no allocation runs.
stop_jobs() {
	export NOMAD_ADDR=http://127.0.0.1:$NOMAD_HTTP_PORT
	local jobs
	jobs=$(nomad job status -short 2>/dev/null | awk 'NR > 1 && $1 != "No" {print $1}' || true)
	for j in $jobs; do
		log "stopping job $j"
		nomad job stop -purge -detach "$j" >/dev/null || true
	done
	local deadline=$((SECONDS + 60))
	while curl -fsS "$NOMAD_ADDR/v1/allocations" 2>/dev/null | grep -q '"ClientStatus":"\(running\|pending\)"'; do
		if [ $SECONDS -ge $deadline ]; then
			log "allocations still running after 60s"
			return
		fi
		sleep 0.5
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
	stop consul
	# Nomad leaves task folders mounted (secrets, private dirs) under its
	# data_dir; unmount them so the state can be removed.
	if [ -d "$STATE/nomad/data" ]; then
		{ grep -o " $STATE/nomad/data[^ ]*" /proc/mounts || true; } | sort -r |
			while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
	fi
	rm -rf "$STATE/nomad/data"
	;;
status)
	for n in consul nomad; do
		if running "$n"; then echo "$n: running (pid $(cat "$STATE/$n.pid"))"; else echo "$n: stopped"; fi
	done
	;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac
