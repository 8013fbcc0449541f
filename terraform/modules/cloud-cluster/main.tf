# cloud-cluster is what every cloud environment does once its provider has
# made the hosts and the load balancer: Consul and Nomad on each host
# (hashistack-host, remote mode, over SSH; the first min(hosts, 3) are
# servers), and the shop on them (the same shop module as on a laptop).
# terraform/environments/aws and terraform/environments/hetzner differ only
# in their provider's resources; both call this module from the root file
# they share by a link (terraform/environments/cloud.tf). Switching clouds
# is switching folders.

locals {
  repo_root = abspath("${path.module}/../../..")
  tools_bin = "${pathexpand("~")}/.cache/mylittleshopping/tools/bin"
  servers   = min(length(var.hosts), 3)
  # make images writes the manifest; the images are saved from this
  # machine's Docker engine and loaded on every host.
  images      = jsondecode(file(var.images_file != "" ? var.images_file : "${local.repo_root}/.run/images/images.json"))
  private_ips = var.hosts[*].private_ip
}

module "host" {
  source           = "../hashistack-host"
  count            = length(var.hosts)
  mode             = "remote"
  keys_dir         = "${dirname(pathexpand(var.keys_file))}/cluster"
  acl_bootstrap    = count.index == 0
  repo_root        = local.repo_root
  advertise_addr   = var.hosts[count.index].private_ip
  server           = count.index < local.servers
  bootstrap_expect = local.servers
  retry_join       = slice(local.private_ips, 0, local.servers)
  tools_bin        = local.tools_bin
  images           = local.images
  ssh = {
    host        = var.hosts[count.index].public_ip
    user        = var.ssh_user
    private_key = file(pathexpand(var.ssh_private_key))
  }
}

module "shop" {
  source            = "../shop"
  keys_file         = pathexpand(var.keys_file)
  repo2             = var.repo2
  repo2_credentials = var.repo2_credentials
  cluster_id        = join(",", module.host[*].id)
  nomad_addr        = "https://${var.hosts[0].public_ip}:4646"
  consul_http_addr  = "https://${var.hosts[0].public_ip}:8500"
  nomad_token_file  = module.host[0].nomad_token_file
  consul_token_file = module.host[0].consul_token_file
  nomad_ca_file     = module.host[0].nomad_ca_file
  consul_ca_file    = module.host[0].consul_ca_file
  consul_dns_addr   = "127.0.0.1:8600"
  repo_root         = local.repo_root
  images            = local.images
  public_url        = var.public_url
  edge_port         = var.edge_port
  edge_instances    = length(var.hosts)
  # HAProxy runs on every host and reaches the aggregators from the host's
  # private address: those, and nothing else, are believed when they say
  # who the client is.
  trusted_proxies   = [for ip in local.private_ips : "${ip}/32"]
  edge_accept_proxy = var.edge_accept_proxy
  mailsink_port     = 0
  mailjet_base_url  = var.mailjet_base_url
  instances         = var.instances
}
