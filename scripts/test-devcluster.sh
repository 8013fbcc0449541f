#!/usr/bin/env bash
# test-devcluster.sh proves that the dev cluster's agents leave nothing
# behind: it brings a second dev cluster up on free ports in a scratch state
# folder (so a developer's own cluster is untouched) with
# scripts/devcluster.sh, the script `make up` runs through Terraform
# (terraform/modules/hashistack-host), checks both agents answer, runs a
# task, brings it down, and fails if any of its processes or listening
# ports remain. The whole `make up` / `make down`, every job included, is
# checked the same way by the e2e suite (make e2e).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
PATH=$("$top/scripts/tools.sh" bindir):$PATH

# free_port sets PORT to a TCP and UDP port no socket uses, different from
# those already taken. The range 14000-19999 lies below Nomad's dynamic
# ports (20000-32000), apart from the e2e cluster's (13000-13999), and below
# the kernel's ephemeral range (32768+), where an outgoing connection could
# take the port between this check and the agent's bind.
used=" "
free_port() {
	while :; do
		PORT=$((14000 + RANDOM % 6000))
		case "$used" in *" $PORT "*) continue ;; esac
		if ! ss -Htanu "( sport = :$PORT )" | grep -q .; then
			used+="$PORT "
			return
		fi
	done
}

export STATE
STATE=$(mktemp -d /tmp/devcluster-test.XXXXXX)
export OBJECTSTORE_DIR=$STATE/objectstore
for v in CONSUL_HTTP_PORT CONSUL_DNS_PORT CONSUL_SERF_LAN_PORT CONSUL_SERF_WAN_PORT \
	CONSUL_SERVER_PORT CONSUL_GRPC_PORT CONSUL_GRPC_TLS_PORT NOMAD_HTTP_PORT NOMAD_RPC_PORT NOMAD_SERF_PORT; do
	free_port
	export "$v=$PORT"
done
ports=$(echo "$used" | xargs)

fail() {
	echo "test-devcluster: FAIL: $*" >&2
	"$top/scripts/devcluster.sh" down >/dev/null 2>&1 || true
	exit 1
}

echo "test-devcluster: up on ports $ports"
"$top/scripts/devcluster.sh" up || fail "devcluster up failed"
pids="$(cat "$STATE/consul.pid") $(cat "$STATE/nomad.pid")"
curl -fsS "http://127.0.0.1:$CONSUL_HTTP_PORT/v1/agent/self" >/dev/null || fail "consul does not answer"
curl -fsS "http://127.0.0.1:$NOMAD_HTTP_PORT/v1/agent/self" >/dev/null || fail "nomad does not answer"
# Consul DNS answers for the Nomad agent's own registration.
listening=$(ss -Htlnu | awk '{print $5}' | grep -cE ":($(echo "$ports" | tr ' ' '|'))$" || true)
[ "$listening" -ge 4 ] || fail "only $listening of our ports listen while up"

# A task of the cluster must not outlive it either.
marker=$((600000 + RANDOM))
cat >"$STATE/sleeper.nomad.hcl" <<HCL
job "sleeper" {
  type = "service"
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["$marker"]
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
HCL
NOMAD_ADDR=http://127.0.0.1:$NOMAD_HTTP_PORT nomad job run -detach "$STATE/sleeper.nomad.hcl" >/dev/null || fail "job run failed"
deadline=$((SECONDS + 60))
until pgrep -f "sleep $marker" >/dev/null; do
	[ $SECONDS -lt $deadline ] || fail "the raw_exec task did not start"
	sleep 0.5
done

echo "test-devcluster: down"
"$top/scripts/devcluster.sh" down || fail "devcluster down failed"
for pid in $pids; do
	if kill -0 "$pid" 2>/dev/null; then fail "pid $pid still running after down"; fi
done
left=$(pgrep -af -- "$STATE|sleep $marker" || true)
[ -z "$left" ] || fail "processes of the cluster still running: $left"
open=$(ss -Htlnu | awk '{print $5}' | grep -E ":($(echo "$ports" | tr ' ' '|'))$" || true)
[ -z "$open" ] || fail "ports still listening after down: $open"
rm -rf "$STATE"
echo "test-devcluster: ok (up, both agents answered, a raw_exec task ran, down left no process and no port)"
