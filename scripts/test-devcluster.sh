#!/usr/bin/env bash
# test-devcluster.sh proves that the dev cluster's agents leave nothing
# behind: it brings a second dev cluster up on free ports in a scratch state
# folder (so a developer's own cluster is untouched) with
# scripts/devcluster.sh, the script `make up` runs through Terraform
# (terraform/modules/hashistack-host), checks both agents answer, runs a
# task in a container, brings it down, and fails if any of its processes,
# containers or listening ports remain. The whole `make up` / `make down`, every job included, is
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
# Both answer over HTTPS, checked against the cluster's CAs, with the
# operator's tokens; without a token they refuse.
consul_ca=$STATE/tls/consul-agent-ca.pem nomad_ca=$STATE/tls/nomad-agent-ca.pem
curl -fsS --cacert "$consul_ca" -H "X-Consul-Token: $(cat "$STATE/keys/consul-management.token")" \
	"https://127.0.0.1:$CONSUL_HTTP_PORT/v1/agent/self" >/dev/null || fail "consul does not answer"
curl -fsS --cacert "$nomad_ca" -H "X-Nomad-Token: $(cat "$STATE/keys/nomad-management.token")" \
	"https://127.0.0.1:$NOMAD_HTTP_PORT/v1/agent/self" >/dev/null || fail "nomad does not answer"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$nomad_ca" "https://127.0.0.1:$NOMAD_HTTP_PORT/v1/jobs")
[ "$code" = 403 ] || fail "nomad answered $code without a token"
curl -fsS -o /dev/null "http://127.0.0.1:$NOMAD_HTTP_PORT/v1/agent/self" 2>/dev/null && fail "nomad answered plain HTTP"
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
      driver = "docker"
      config {
        image           = "debian:bookworm-slim" # make images builds it
        network_mode    = "host"
        readonly_rootfs = true
        command         = "/bin/sleep"
        args            = ["$marker"]
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
HCL
NOMAD_ADDR=https://127.0.0.1:$NOMAD_HTTP_PORT NOMAD_CACERT=$nomad_ca NOMAD_TOKEN=$(cat "$STATE/keys/nomad-management.token") nomad job run -detach "$STATE/sleeper.nomad.hcl" >/dev/null || fail "job run failed"
deadline=$((SECONDS + 60))
until pgrep -f "sleep $marker" >/dev/null; do
	[ $SECONDS -lt $deadline ] || fail "the container task did not start"
	sleep 0.5
done

echo "test-devcluster: down"
"$top/scripts/devcluster.sh" down || fail "devcluster down failed"
for pid in $pids; do
	if kill -0 "$pid" 2>/dev/null; then fail "pid $pid still running after down"; fi
done
left=$(pgrep -af -- "$STATE|sleep $marker" || true)
[ -z "$left" ] || fail "processes of the cluster still running: $left"
if docker version >/dev/null 2>&1; then
	for c in $(docker ps -aq); do
		if docker inspect --format '{{range .Mounts}}{{.Source}}{{"\n"}}{{end}}' "$c" 2>/dev/null | grep -q "^$STATE/"; then
			fail "container $c of the cluster still there after down"
		fi
	done
fi
open=$(ss -Htlnu | awk '{print $5}' | grep -E ":($(echo "$ports" | tr ' ' '|'))$" || true)
[ -z "$open" ] || fail "ports still listening after down: $open"
rm -rf "$STATE"
echo "test-devcluster: ok (up, both agents answered over HTTPS with a token and refused without, a task ran in a container, down left no process, container or port)"
