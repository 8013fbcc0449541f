#!/usr/bin/env bash
# dockerd.sh starts and stops the Docker engine the dev cluster's Nomad runs
# its tasks with (there is no systemd here). One engine serves the machine:
# `up` uses one that already answers, and starts one only when none does;
# `down` stops only an engine that `up` started, and only once no container
# runs any more (another cluster of this machine may still use it). Images
# and the build cache live in the engine's data root (/var/lib/docker), so
# they outlive it.
#
#   scripts/dockerd.sh up | down | status
#
# Its pid and log are in $DOCKERD_STATE (default .run/dockerd in the work tree).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
DOCKERD_STATE=${DOCKERD_STATE:-$top/.run/dockerd}
pidf=$DOCKERD_STATE/dockerd.pid

# What the engine writes its containers' logs with when nothing else is
# asked: json-file, bounded, with Nomad's labels in every line. Nomad asks
# the same for every task's container (nomad/dev/nomad.hcl, logging), so
# the log collector reads them even from an engine started elsewhere.
LOG_LABELS=com.hashicorp.nomad.job_name,com.hashicorp.nomad.task_group_name,com.hashicorp.nomad.task_name,com.hashicorp.nomad.alloc_id,com.hashicorp.nomad.node_name,com.hashicorp.nomad.node_id

log() { printf 'dockerd: %s\n' "$*" >&2; }
answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
ours() { [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; }

case "${1:-}" in
up)
	if answers; then
		exit 0
	fi
	command -v dockerd >/dev/null || { log "dockerd not found: run make tools (Debian's docker.io)"; exit 1; }
	mkdir -p "$DOCKERD_STATE"
	if ours; then
		log "dockerd (pid $(cat "$pidf")) runs but does not answer; waiting for it"
	else
		log "starting dockerd (log: $DOCKERD_STATE/dockerd.log)"
		# setsid: the engine outlives the shell that started it, and stays
		# findable by its pid.
		setsid dockerd --log-driver json-file --log-opt "labels=$LOG_LABELS" --log-opt max-size=10m --log-opt max-file=3 \
			>"$DOCKERD_STATE/dockerd.log" 2>&1 </dev/null &
		echo $! >"$pidf"
	fi
	deadline=$((SECONDS + 60))
	until answers; do
		if [ $SECONDS -ge $deadline ] || ! ours; then
			log "dockerd did not come up; its log: $DOCKERD_STATE/dockerd.log"
			tail -n 20 "$DOCKERD_STATE/dockerd.log" >&2
			exit 1
		fi
		sleep 0.5
	done
	;;
down)
	ours || { rm -f "$pidf"; exit 0; }
	if [ -n "$(docker ps -q 2>/dev/null)" ]; then
		log "leaving dockerd running: containers still run ($(docker ps --format '{{.Names}}' | head -n 3 | tr '\n' ' ')…)"
		exit 0
	fi
	pid=$(cat "$pidf")
	log "stopping dockerd (pid $pid)"
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	deadline=$((SECONDS + 30))
	while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
	kill -KILL -- "-$pid" 2>/dev/null || true
	rm -f "$pidf"
	;;
status)
	if answers; then
		if ours; then echo "dockerd: running (pid $(cat "$pidf"), started by this work tree)"; else echo "dockerd: running (not started by this work tree)"; fi
	else
		echo "dockerd: stopped"
	fi
	;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac
