# hashistack-host brings up a Consul agent and a Nomad agent on one host.
#
# mode = "local": the dev agents of this machine on loopback, through
# scripts/devcluster.sh (local-exec), so that `make up` and the e2e suite
# run the very agents developers use. Destroy stops every job, then the
# agents, and waits until their ports are closed.
#
# mode = "remote": a Debian host reached over SSH. The binaries and
# configuration go up with `file`, and `remote-exec` installs the Debian
# packages the jobs run (PostgreSQL 15, HAProxy), the host volumes, and the
# systemd units. Nothing here needs a provider.

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

resource "terraform_data" "remote" {
  count = var.mode == "remote" ? 1 : 0

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
    inline = ["mkdir -p /tmp/hashistack"]
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

# The jobs' binaries, uploaded whenever one changes.
resource "terraform_data" "releases" {
  for_each = var.mode == "remote" ? var.releases : {}

  triggers_replace = {
    sha  = filesha256(each.value)
    host = terraform_data.remote[0].id
  }

  connection {
    type        = "ssh"
    host        = var.ssh.host
    user        = var.ssh.user
    private_key = var.ssh.private_key
  }

  provisioner "file" {
    source      = each.value
    destination = "/tmp/hashistack/${each.key}"
  }

  provisioner "remote-exec" {
    inline = ["S=; [ \"$(id -u)\" -eq 0 ] || S=sudo; $S install -D -m 0755 /tmp/hashistack/${each.key} /usr/local/lib/mylittleshopping/releases/${each.key}"]
  }
}

locals {
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
