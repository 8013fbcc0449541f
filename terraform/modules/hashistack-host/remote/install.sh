#!/bin/sh
# Installs the agents uploaded to /tmp/hashistack as systemd units, and what
# the shop's jobs run on the host: Debian's PostgreSQL 15 (its own cluster
# disabled: Nomad runs one per database), pgBackRest and HAProxy, plus the host
# volumes, owned by postgres. Idempotent: run again to upgrade.
set -eu
src=/tmp/hashistack
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql-15 pgbackrest haproxy ca-certificates >/dev/null
# Nomad runs the databases and the edge; the packages' own must not.
systemctl disable --now postgresql haproxy >/dev/null 2>&1 || true

id consul >/dev/null 2>&1 || useradd --system --home /var/lib/consul --shell /usr/sbin/nologin consul
install -m 0755 "$src/consul" /usr/local/bin/consul
install -m 0755 "$src/nomad" /usr/local/bin/nomad
install -d -o consul -g consul -m 0750 /var/lib/consul /etc/consul.d
install -m 0640 -o consul -g consul "$src/consul.hcl" /etc/consul.d/consul.hcl
# 0711: tasks run as postgres traverse Nomad's data folder.
install -d -m 0711 /var/lib/nomad /srv/shop /srv/shop/volumes
install -d -m 0755 /etc/nomad.d /usr/local/lib/mylittleshopping/releases
install -m 0640 "$src/nomad.hcl" /etc/nomad.d/nomad.hcl
for v in ${HOST_VOLUMES:-}; do
	install -d -o postgres -g postgres -m 0700 "/srv/shop/volumes/$v"
done
install -m 0644 "$src/consul.service" /etc/systemd/system/consul.service
install -m 0644 "$src/nomad.service" /etc/systemd/system/nomad.service
systemctl daemon-reload
systemctl enable consul nomad >/dev/null
systemctl restart consul
systemctl restart nomad
