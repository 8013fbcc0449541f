# The shop on Hetzner Cloud: the same two modules as terraform/environments/aws
# (and as a laptop), with Hetzner's servers, private network and load
# balancer. Switching clouds is switching this folder.
#
#   export HCLOUD_TOKEN=...
#   terraform -chdir=terraform/environments/hetzner init
#   terraform -chdir=terraform/environments/hetzner apply -var operator_cidr=203.0.113.7/32
#
# The operator's variables (operator_cidr, hosts, repo2…), the call of
# modules/cloud-cluster and the outputs are in cloud.tf, a link to the file
# every cloud environment shares; this one holds the provider's part.
#
# Run `make images` first: the shop's images are saved from this machine's
# Docker engine and loaded on every host; the agents are uploaded from the
# tools cache.

terraform {
  required_version = ">= 1.6"
  required_providers {
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = "~> 1.45"
    }
  }
}

provider "hcloud" {}

locals {
  # Private addresses, fixed so that the servers' join list is known before
  # the hosts exist.
  private_ips = [for i in range(var.hosts) : cidrhost(var.subnet, 10 + i)]
}

resource "hcloud_ssh_key" "operator" {
  name       = "mylittleshopping"
  public_key = file(pathexpand(var.ssh_public_key))
}

resource "hcloud_network" "shop" {
  name     = "mylittleshopping"
  ip_range = var.network
}

resource "hcloud_network_subnet" "shop" {
  network_id   = hcloud_network.shop.id
  type         = "cloud"
  network_zone = var.network_zone
  ip_range     = var.subnet
}

resource "hcloud_firewall" "shop" {
  name = "mylittleshopping"
  dynamic "rule" {
    for_each = [22, 4646, 8500]
    content {
      direction  = "in"
      protocol   = "tcp"
      port       = tostring(rule.value)
      source_ips = [var.operator_cidr]
    }
  }
  # Between the hosts, traffic stays on the private network, which the
  # firewall does not filter.
}

resource "hcloud_server" "host" {
  count        = var.hosts
  name         = "mylittleshopping-${count.index}"
  image        = "debian-12"
  server_type  = var.server_type
  location     = var.location
  ssh_keys     = [hcloud_ssh_key.operator.id]
  firewall_ids = [hcloud_firewall.shop.id]
  network {
    network_id = hcloud_network.shop.id
    ip         = local.private_ips[count.index]
  }
  depends_on = [hcloud_network_subnet.shop]
}

# What cloud.tf hands modules/cloud-cluster.
locals {
  cluster_hosts = [for i, h in hcloud_server.host : { public_ip = h.ipv4_address, private_ip = local.private_ips[i] }]
  ssh_user      = "root"
  public_url    = "http://${hcloud_load_balancer.shop.ipv4}"
  # Hetzner's load balancer connects from its own private address: it
  # sends each client's in the PROXY protocol, which HAProxy reads.
  edge_accept_proxy = true
}

# The network load balancer: port 80 to HAProxy on every host, over the
# private network.
resource "hcloud_load_balancer" "shop" {
  name               = "mylittleshopping"
  load_balancer_type = "lb11"
  location           = var.location
}

resource "hcloud_load_balancer_network" "shop" {
  load_balancer_id = hcloud_load_balancer.shop.id
  network_id       = hcloud_network.shop.id
  depends_on       = [hcloud_network_subnet.shop]
}

resource "hcloud_load_balancer_target" "host" {
  count            = var.hosts
  type             = "server"
  load_balancer_id = hcloud_load_balancer.shop.id
  server_id        = hcloud_server.host[count.index].id
  use_private_ip   = true
  depends_on       = [hcloud_load_balancer_network.shop]
}

resource "hcloud_load_balancer_service" "http" {
  load_balancer_id = hcloud_load_balancer.shop.id
  protocol         = "tcp"
  listen_port      = 80
  destination_port = var.edge_port
  # The clients' addresses, for HAProxy (edge_accept_proxy above): the
  # rate limit and the lock-out count per client.
  proxyprotocol = true
  health_check {
    protocol = "tcp"
    port     = var.edge_port
    interval = 10
    timeout  = 5
  }
}
