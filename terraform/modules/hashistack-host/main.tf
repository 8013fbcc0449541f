# hashistack-host brings up a Consul agent and a Nomad agent on one host.
#
# mode = "local": the dev agents of this machine on loopback, through
# scripts/devcluster.sh (local-exec), so that `make up` and the e2e suite
# run the very agents developers use. Destroy stops every job, then the
# agents, and waits until their ports are closed.
#
# mode = "remote": a Debian host reached over SSH. The agents' binaries and
# configuration go up with `file`, and `remote-exec` installs Debian's
# Docker engine, the host volumes and the systemd units; the shop's images
# are saved here and loaded there (no registry is needed). Nothing here
# needs a provider.

locals {
  local_env = var.mode == "local" ? {
    STATE                  = var.state_dir
    CONSUL_HTTP_PORT       = var.ports.consul_http
    CONSUL_DNS_PORT        = var.ports.consul_dns
    CONSUL_SERF_LAN_PORT   = var.ports.consul_serf_lan
    CONSUL_SERF_WAN_PORT   = var.ports.consul_serf_wan
    CONSUL_SERVER_PORT     = var.ports.consul_server
    CONSUL_GRPC_PORT       = var.ports.consul_grpc
    CONSUL_GRPC_TLS_PORT   = var.ports.consul_grpc_tls
    NOMAD_HTTP_PORT        = var.ports.nomad_http
    NOMAD_RPC_PORT         = var.ports.nomad_rpc
    NOMAD_SERF_PORT        = var.ports.nomad_serf
    NOMAD_MIN_DYNAMIC_PORT = var.dynamic_ports.min
    NOMAD_MAX_DYNAMIC_PORT = var.dynamic_ports.max
    HOST_VOLUMES           = join(" ", var.host_volumes)
    OBJECTSTORE_DIR        = var.objectstore_dir != "" ? var.objectstore_dir : "${var.repo_root}/.run/objectstore"
  } : {}
  address = var.mode == "local" ? "127.0.0.1" : var.advertise_addr
}

resource "terraform_data" "local" {
  count = var.mode == "local" ? 1 : 0

  # The agents read their configuration at start only: a new dev agent
  # policy (nomad/dev/nomad.hcl: the docker plugin's labels and logging,
  # which the log collector reads) or new host volumes restart the cluster,
  # and every job is deployed on it again (the volumes' data stays).
  triggers_replace = {
    nomad_hcl    = filesha256("${var.repo_root}/nomad/dev/nomad.hcl")
    host_volumes = join(" ", concat(var.host_volumes, ["logs", "metrics", "log-collector", "docker-containers"]))
  }

  # Destroy-time provisioners may only read self: everything `down` needs
  # is kept in input.
  input = {
    devcluster = "${var.repo_root}/scripts/devcluster.sh"
    env        = local.local_env
  }

  provisioner "local-exec" {
    command     = "${self.input.devcluster} up"
    environment = self.input.env
  }

  provisioner "local-exec" {
    when        = destroy
    command     = "${self.input.devcluster} down"
    environment = self.input.env
  }
}

# The cluster's keys and certificates, made once on the operator's machine
# in keys_dir (scripts/cluster-keys.sh: gossip keys, ACL tokens' secrets,
# Consul's and Nomad's CAs), and this host's part of them in
# keys_dir/hosts/<address>: its certificates (for its private and public
# addresses) and the keys its agents need; the management token and Nomad's
# gossip key on a server only.
resource "terraform_data" "keys" {
  count = var.mode == "remote" ? 1 : 0

  triggers_replace = { host = var.advertise_addr, server = var.server }

  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    environment = {
      SCRIPT = "${var.repo_root}/scripts/cluster-keys.sh"
      KEYS   = var.keys_dir
      NAME   = var.advertise_addr
      ROLE   = var.server ? "server" : "client"
      ADDRS  = join(" ", compact([var.advertise_addr, var.ssh == null ? "" : var.ssh.host]))
      DC     = var.datacenter
    }
    command = <<-EOT
      set -euo pipefail
      "$SCRIPT" cluster "$KEYS" "$KEYS/tls"
      "$SCRIPT" host "$KEYS/tls" "$NAME" "$ROLE" $ADDRS
      bundle=$KEYS/hosts/$NAME
      (umask 077 && mkdir -p "$bundle")
      cp "$KEYS/tls/consul-agent-ca.pem" "$KEYS/tls/nomad-agent-ca.pem" "$KEYS/tls/$NAME/"*.pem \
        "$KEYS/consul-gossip.key" "$KEYS/consul-agent.token" "$KEYS/consul-dns.token" "$KEYS/consul-nomad.token" "$bundle/"
      if [ "$ROLE" = server ]; then cp "$KEYS/consul-management.token" "$KEYS/nomad-gossip.key" "$bundle/"; fi
    EOT
  }
}

resource "terraform_data" "remote" {
  count      = var.mode == "remote" ? 1 : 0
  depends_on = [terraform_data.keys]

  triggers_replace = {
    consul_hcl = local.consul_hcl
    nomad_hcl  = local.nomad_hcl
    binaries   = [for b in ["consul", "nomad"] : filesha256("${var.tools_bin}/${b}")]
  }

  input = {
    host = var.ssh == null ? "" : var.ssh.host
  }

  connection {
    type        = "ssh"
    host        = var.ssh.host
    user        = var.ssh.user
    private_key = var.ssh.private_key
  }

  provisioner "remote-exec" {
    inline = ["mkdir -p /tmp/hashistack/keys && chmod 0700 /tmp/hashistack/keys"]
  }

  # This host's keys (install.sh installs them and removes the upload).
  provisioner "file" {
    source      = "${var.keys_dir}/hosts/${var.advertise_addr}/"
    destination = "/tmp/hashistack/keys"
  }

  provisioner "file" {
    source      = "${var.tools_bin}/consul"
    destination = "/tmp/hashistack/consul"
  }

  provisioner "file" {
    source      = "${var.tools_bin}/nomad"
    destination = "/tmp/hashistack/nomad"
  }

  provisioner "file" {
    content     = local.consul_hcl
    destination = "/tmp/hashistack/consul.hcl"
  }

  provisioner "file" {
    content     = local.nomad_hcl
    destination = "/tmp/hashistack/nomad.hcl"
  }

  provisioner "file" {
    source      = "${path.module}/remote/install.sh"
    destination = "/tmp/hashistack/install.sh"
  }

  provisioner "file" {
    source      = "${path.module}/remote/consul.service"
    destination = "/tmp/hashistack/consul.service"
  }

  provisioner "file" {
    source      = "${path.module}/remote/nomad.service"
    destination = "/tmp/hashistack/nomad.service"
  }

  provisioner "remote-exec" {
    # As root (Hetzner's images) or through sudo (AWS's admin user).
    inline = ["S=; [ \"$(id -u)\" -eq 0 ] || S=sudo; $S env HOST_VOLUMES='${join(" ", var.host_volumes)}' sh /tmp/hashistack/install.sh"]
  }
}

# Once the agents of the first host are up: what ACLs that deny by default
# must allow (scripts/cluster-acl.sh: the agents' and DNS tokens, Nomad's
# bootstrap with the operator's management token, Consul's trust in Nomad's
# workload identities), from the operator's machine over HTTPS.
resource "terraform_data" "acl" {
  count = var.mode == "remote" && var.acl_bootstrap ? 1 : 0

  triggers_replace = { host = terraform_data.remote[0].id }

  provisioner "local-exec" {
    environment = {
      CONSUL_HTTP_ADDR = "https://${var.ssh.host}:8500"
      CONSUL_CACERT    = "${var.keys_dir}/tls/consul-agent-ca.pem"
      NOMAD_ADDR       = "https://${var.ssh.host}:4646"
      NOMAD_CACERT     = "${var.keys_dir}/tls/nomad-agent-ca.pem"
      JWKS_URL         = "https://${var.advertise_addr}:4646/.well-known/jwks.json"
      KEYS             = var.keys_dir
      NODES            = "*"
      DC               = var.datacenter
    }
    command = "for c in consul nomad workloads; do '${var.repo_root}/scripts/cluster-acl.sh' $c; done"
  }
}

# The jobs' images, saved from this machine's Docker engine and loaded into
# the host's whenever a tag (the hash of the image's content) changes, or the
# agents are reinstalled (a new host). The saved file is named by its tag and
# written whole before it is renamed, so the hosts of one cluster (one module
# each, applied in parallel) share it: it is saved once per tag. Older files
# of the image go; on the host, as scripts/images.sh does here, the newest
# three tags stay (Nomad's auto-revert runs the previous one; gc.image is off).
resource "terraform_data" "images" {
  for_each = var.mode == "remote" ? var.images : {}

  triggers_replace = {
    image = each.value
    host  = terraform_data.remote[0].id
  }

  connection {
    type        = "ssh"
    host        = var.ssh.host
    user        = var.ssh.user
    private_key = var.ssh.private_key
  }

  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    environment = {
      DOCKERD = "${var.repo_root}/scripts/dockerd.sh"
      IMAGE   = each.value
      DIR     = "${local.images_dir}/${each.key}"
      NAME    = local.image_files[each.key]
    }
    command = <<-EOT
      set -euo pipefail
      mkdir -p "$DIR"
      if [ ! -s "$DIR/$NAME" ]; then
        # The engine make images built with may have stopped since.
        "$DOCKERD" up
        docker image inspect "$IMAGE" >/dev/null || { echo "$IMAGE is not in this machine's Docker engine: run make images" >&2; exit 1; }
        tmp=$(mktemp "$DIR/$NAME.XXXXXX")
        trap 'rm -f "$tmp"' EXIT
        docker save "$IMAGE" | gzip -1 >"$tmp"
        mv -f "$tmp" "$DIR/$NAME"
      fi
      find "$DIR" -maxdepth 1 -type f -name '*.tar.gz' ! -name "$NAME" -delete
    EOT
  }

  provisioner "remote-exec" {
    # /tmp may have been emptied (a reboot) since the agents were installed.
    inline = ["mkdir -p /tmp/hashistack"]
  }

  provisioner "file" {
    source      = "${local.images_dir}/${each.key}/${local.image_files[each.key]}"
    destination = "/tmp/hashistack/${local.image_files[each.key]}"
  }

  provisioner "remote-exec" {
    # As root (Hetzner's images) or through sudo (AWS's admin user); docker
    # load reads the gzipped archive as it is.
    inline = [join(" && ", [
      "S=; [ \"$(id -u)\" -eq 0 ] || S=sudo",
      "$S docker load -i '/tmp/hashistack/${local.image_files[each.key]}' >/dev/null",
      "$S docker image inspect '${each.value}' >/dev/null",
      "rm -f '/tmp/hashistack/${local.image_files[each.key]}'",
      # The newest three tags stay, this one always (it may be older than
      # those: a rollback); one in use stays too (rmi refuses).
      "{ $S docker image ls '${local.image_repos[each.key]}' --format '{{.Tag}}' | tail -n +4 | while read -r old; do [ \"$old\" = '${local.image_tags[each.key]}' ] || $S docker image rm '${local.image_repos[each.key]}':\"$old\" >/dev/null 2>&1 || true; done; }",
    ])]
  }
}

locals {
  images_dir = var.images_dir != "" ? var.images_dir : "${var.repo_root}/.run/images/export"
  # name => the saved file (its tag in its name) and the image's repository
  # (repository:tag, the repository possibly with a registry's host:port).
  image_files = { for k, v in var.images : k => "${replace(v, "/[^A-Za-z0-9._-]/", "_")}.tar.gz" }
  image_repos = { for k, v in var.images : k => replace(v, "/:[^:/]*$/", "") }
  image_tags  = { for k, v in var.images : k => trimprefix(v, "${local.image_repos[k]}:") }
  consul_hcl = var.mode == "remote" ? templatefile("${path.module}/remote/consul.hcl.tftpl", {
    datacenter       = var.datacenter
    address          = var.advertise_addr
    server           = var.server
    bootstrap_expect = var.bootstrap_expect
    retry_join       = var.retry_join
  }) : ""
  nomad_hcl = var.mode == "remote" ? templatefile("${path.module}/remote/nomad.hcl.tftpl", {
    datacenter       = var.datacenter
    address          = var.advertise_addr
    server           = var.server
    bootstrap_expect = var.bootstrap_expect
    retry_join       = var.retry_join
    host_volumes     = var.host_volumes
  }) : ""
}
