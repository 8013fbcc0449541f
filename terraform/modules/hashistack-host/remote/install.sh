#!/bin/sh
# Installs the agents uploaded to /tmp/hashistack as systemd units, Debian's
# Docker engine (every job of the shop runs in a container: the images are
# loaded by Terraform, terraform/modules/hashistack-host), and the host
# volumes, owned by the users the images run as (postgres, uid 999, for the
# databases and their backups). Idempotent: run again to upgrade.
set -eu
src=/tmp/hashistack
export DEBIAN_FRONTEND=noninteractive
# The engine's default log configuration, in place before it first starts:
# json-file, bounded, with Nomad's labels in every line (Nomad asks the
# same for each task's container: nomad.hcl, plugin "docker", logging). A
# change restarts an engine that runs.
install -d -m 0755 /etc/docker
cat >/etc/docker/daemon.json.new <<'JSON'
{
  "log-driver": "json-file",
  "log-opts": {
    "labels": "com.hashicorp.nomad.job_name,com.hashicorp.nomad.task_group_name,com.hashicorp.nomad.task_name,com.hashicorp.nomad.alloc_id,com.hashicorp.nomad.node_name,com.hashicorp.nomad.node_id",
    "max-size": "10m",
    "max-file": "3"
  }
}
JSON
docker_restart=
if cmp -s /etc/docker/daemon.json.new /etc/docker/daemon.json; then
	rm -f /etc/docker/daemon.json.new
else
	mv -f /etc/docker/daemon.json.new /etc/docker/daemon.json
	docker_restart=yes
fi
apt-get update -qq
# apparmor, which docker.io recommends: Debian's kernel enables AppArmor, and
# with its parser the engine confines every container with its
# docker-default profile.
apt-get install -y -qq --no-install-recommends docker.io apparmor ca-certificates >/dev/null
systemctl enable --now docker >/dev/null
[ -z "$docker_restart" ] || systemctl restart docker

id consul >/dev/null 2>&1 || useradd --system --home /var/lib/consul --shell /usr/sbin/nologin consul
install -m 0755 "$src/consul" /usr/local/bin/consul
install -m 0755 "$src/nomad" /usr/local/bin/nomad
install -d -o consul -g consul -m 0750 /var/lib/consul /etc/consul.d
install -m 0640 -o consul -g consul "$src/consul.hcl" /etc/consul.d/consul.hcl
# The operator's keys for this host (scripts/cluster-keys.sh, uploaded by
# Terraform): the CAs, the host's certificates, the gossip keys and the ACL
# tokens, written into each agent's secrets.hcl (never world-readable).
keys=$src/keys
install -d -o consul -g consul -m 0750 /etc/consul.d/tls
install -m 0644 "$keys/consul-agent-ca.pem" /etc/consul.d/tls/consul-agent-ca.pem
install -m 0640 -o consul -g consul "$keys/consul.pem" /etc/consul.d/tls/consul.pem
install -m 0640 -o consul -g consul "$keys/consul-key.pem" /etc/consul.d/tls/consul-key.pem
management=
[ ! -s "$keys/consul-management.token" ] || management="initial_management = \"$(cat "$keys/consul-management.token")\""
(
	umask 077
	cat >/etc/consul.d/secrets.hcl <<EOF
encrypt = "$(cat "$keys/consul-gossip.key")"
acl {
  tokens {
    $management
    agent = "$(cat "$keys/consul-agent.token")"
    dns   = "$(cat "$keys/consul-dns.token")"
  }
}
EOF
)
chown consul:consul /etc/consul.d/secrets.hcl
# 0711: the containers' users reach their task folders under Nomad's data.
install -d -m 0711 /var/lib/nomad /srv/shop /srv/shop/volumes
install -d -m 0755 /etc/nomad.d
install -m 0640 "$src/nomad.hcl" /etc/nomad.d/nomad.hcl
install -d -m 0750 /etc/nomad.d/tls
install -m 0644 "$keys/nomad-agent-ca.pem" /etc/nomad.d/tls/nomad-agent-ca.pem
install -m 0644 "$keys/consul-agent-ca.pem" /etc/nomad.d/tls/consul-agent-ca.pem
install -m 0600 "$keys/nomad.pem" /etc/nomad.d/tls/nomad.pem
install -m 0600 "$keys/nomad-key.pem" /etc/nomad.d/tls/nomad-key.pem
(
	umask 077
	{
		[ ! -s "$keys/nomad-gossip.key" ] || printf 'server {\n  encrypt = "%s"\n}\n' "$(cat "$keys/nomad-gossip.key")"
		printf 'consul {\n  token = "%s"\n}\n' "$(cat "$keys/consul-nomad.token")"
	} >/etc/nomad.d/secrets.hcl
)
rm -rf "$keys"
# images/postgres.Dockerfile's postgres user. A volume of another owner
# (made for Debian's postgres user before the containers) is handed over
# whole, as scripts/devcluster.sh does; Postgres wants 0700.
pg_uid=999
for v in ${HOST_VOLUMES:-}; do
	d=/srv/shop/volumes/$v
	install -d -m 0700 "$d"
	[ "$(stat -c %u:%g "$d")" = "$pg_uid:$pg_uid" ] || chown -R "$pg_uid:$pg_uid" "$d"
	chmod 0700 "$d"
done
# Logs and metrics: VictoriaLogs' and VictoriaMetrics' data, owned by the
# images' app user (uid 65532); the log collector's offsets and queue,
# root's (it runs as root to read Docker's log files).
app_uid=65532
for v in logs metrics; do
	d=/srv/shop/volumes/$v
	install -d -m 0700 "$d"
	[ "$(stat -c %u:%g "$d")" = "$app_uid:$app_uid" ] || chown -R "$app_uid:$app_uid" "$d"
done
install -d -m 0700 -o root -g root /srv/shop/volumes/log-collector
install -m 0644 "$src/consul.service" /etc/systemd/system/consul.service
install -m 0644 "$src/nomad.service" /etc/systemd/system/nomad.service
systemctl daemon-reload
systemctl enable consul nomad >/dev/null
systemctl restart consul
systemctl restart nomad
