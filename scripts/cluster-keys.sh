#!/usr/bin/env bash
# cluster-keys.sh makes a cluster's keys and certificates, once, where they
# are kept (never in the repository): the dev cluster's in its state folder
# (scripts/devcluster.sh), a cloud cluster's on the operator's machine
# (terraform/modules/hashistack-host), which hands each host its part.
#
#   scripts/cluster-keys.sh cluster KEYS TLS
#       KEYS (mode 0700, each file 0600): the gossip keys (consul-gossip.key,
#       nomad-gossip.key) and the ACL tokens' secrets (consul-management,
#       consul-agent, consul-dns, consul-nomad, nomad-management .token);
#       TLS: Consul's and Nomad's CAs (consul-agent-ca.pem and
#       nomad-agent-ca.pem, public; their keys 0600).
#   scripts/cluster-keys.sh host TLS NAME server|client ADDR...
#       TLS/NAME: the host's certificates, consul.pem and nomad.pem (keys
#       consul-key.pem, nomad-key.pem), for server.<DC, dc1>.consul and
#       server.global.nomad (client.… on a client), localhost, 127.0.0.1
#       and ADDR....
#
# What exists is kept, so running it again changes nothing; the hosts of
# one cluster may run it at once (a lock).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
PATH=$("$top/scripts/tools.sh" bindir):$PATH

# secret FILE GEN: FILE made with GEN (mode 0600), unless it exists.
secret() {
	[ -s "$1" ] && return
	(umask 077 && $2 >"$1.tmp" && mv -f "$1.tmp" "$1")
}
gossip() { head -c 32 /dev/urandom | base64 -w0; }
uuid() { cat /proc/sys/kernel/random/uuid; }

cluster() {
	local keys=$1 tls=$2 t
	mkdir -p "$keys" "$tls"
	chmod 0700 "$keys"
	exec 9>"$keys/.lock"
	flock 9
	secret "$keys/consul-gossip.key" gossip
	secret "$keys/nomad-gossip.key" gossip
	for t in consul-management consul-agent consul-dns consul-nomad nomad-management; do
		secret "$keys/$t.token" uuid
	done
	if [ ! -s "$tls/consul-agent-ca.pem" ]; then
		(cd "$tls" && umask 077 && rm -f consul-agent-ca-key.pem && consul tls ca create >/dev/null)
	fi
	if [ ! -s "$tls/nomad-agent-ca.pem" ]; then
		(cd "$tls" && umask 077 && rm -f nomad-agent-ca-key.pem && nomad tls ca create >/dev/null)
	fi
	# The CAs are public: every client reads them; their keys stay 0600.
	chmod 0755 "$tls"
	chmod 0644 "$tls/consul-agent-ca.pem" "$tls/nomad-agent-ca.pem"
}

host() {
	local tls=$1 name=$2 role=$3 out=$1/$2 tmp a
	shift 3
	[ -s "$out/nomad.pem" ] && return
	case $role in server | client) ;; *) echo "cluster-keys: role $role: server or client" >&2; exit 2 ;; esac
	mkdir -p "$out"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	local consul_extra=() nomad_extra=()
	for a in "$@"; do
		if [[ $a =~ ^[0-9.:]+$ ]]; then
			consul_extra+=(-additional-ipaddress "$a")
			nomad_extra+=(-additional-ipaddress "$a")
		else
			consul_extra+=(-additional-dnsname "$a")
			nomad_extra+=(-additional-dnsname "$a")
		fi
	done
	# (consul warns on stderr that a server certificate is a key to the
	# cluster: it is kept as one, 0600.)
	(cd "$tmp" && umask 077 &&
		consul tls cert create "-$role" -dc "${DC:-dc1}" -ca "$tls/consul-agent-ca.pem" -key "$tls/consul-agent-ca-key.pem" "${consul_extra[@]}" >"$tmp/out" 2>&1 &&
		nomad tls cert create "-$role" -region global -ca "$tls/nomad-agent-ca.pem" -key "$tls/nomad-agent-ca-key.pem" "${nomad_extra[@]}" >"$tmp/out" 2>&1) ||
		{ cat "$tmp/out" >&2; exit 1; }
	(umask 077 &&
		mv "$tmp/${DC:-dc1}-$role-consul-0.pem" "$out/consul.pem" && mv "$tmp/${DC:-dc1}-$role-consul-0-key.pem" "$out/consul-key.pem" &&
		mv "$tmp/global-$role-nomad-key.pem" "$out/nomad-key.pem" && mv "$tmp/global-$role-nomad.pem" "$out/nomad.pem")
}

case "${1:-}" in
cluster) cluster "$2" "$3" ;;
host) host "${@:2}" ;;
*)
	echo "usage: $0 cluster KEYS TLS | host TLS NAME server|client ADDR..." >&2
	exit 2
	;;
esac
