# The whole shop on this machine: the dev Consul and Nomad agents on
# loopback (hashistack-host, local mode) and every job (shop). `make up`
# applies it, `make down` destroys it. No provider: init downloads nothing.
#
# Ports move with variables (the e2e suite runs a second cluster on free
# ports with its own -state file); the defaults are the documented ones.

terraform {
  required_version = ">= 1.6"
}

locals {
  repo_root = abspath("${path.root}/../../..")
  state_dir = var.state_dir != "" ? var.state_dir : "${local.repo_root}/.run/cluster"
  # What must outlive the cluster (a lost host) sits beside its state, not
  # in it: the objectstore's bucket (backup repo2) and the operator's keys.
  outside_dir     = dirname(local.state_dir)
  objectstore_dir = var.objectstore_dir != "" ? var.objectstore_dir : "${local.outside_dir}/objectstore"
  keys_file       = var.keys_file != "" ? var.keys_file : "${local.outside_dir}/keys/shop-keys.json"
  # make images writes it; this host's Docker engine has the images.
  images_file = var.images_file != "" ? var.images_file : "${local.repo_root}/.run/images/images.json"
}

module "host" {
  source          = "../../modules/hashistack-host"
  mode            = "local"
  repo_root       = local.repo_root
  state_dir       = local.state_dir
  objectstore_dir = local.objectstore_dir
  ports = {
    consul_http     = var.consul_http_port
    consul_dns      = var.consul_dns_port
    consul_serf_lan = var.consul_serf_lan_port
    consul_serf_wan = var.consul_serf_wan_port
    consul_server   = var.consul_server_port
    consul_grpc     = var.consul_grpc_port
    consul_grpc_tls = var.consul_grpc_tls_port
    nomad_http      = var.nomad_http_port
    nomad_rpc       = var.nomad_rpc_port
    nomad_serf      = var.nomad_serf_port
  }
  dynamic_ports = {
    min = var.nomad_min_dynamic_port
    max = var.nomad_max_dynamic_port
  }
}

module "shop" {
  source               = "../../modules/shop"
  cluster_id           = module.host.id
  nomad_addr           = module.host.nomad_addr
  consul_http_addr     = module.host.consul_http_addr
  nomad_token_file     = module.host.nomad_token_file
  consul_token_file    = module.host.consul_token_file
  nomad_ca_file        = module.host.nomad_ca_file
  consul_ca_file       = module.host.consul_ca_file
  consul_dns_addr      = module.host.consul_dns_addr
  repo_root            = local.repo_root
  keys_file            = local.keys_file
  images               = jsondecode(file(local.images_file))
  public_url           = "http://127.0.0.1:${var.edge_port}"
  edge_port            = var.edge_port
  trusted_proxies      = var.trusted_proxies
  mailsink_port        = var.mailsink_port
  instances            = var.instances
  deploy_timeout       = var.deploy_timeout
  backup               = var.backup
  objectstore_port     = var.objectstore_port
  aggregator_extra_env = var.aggregator_extra_env
  demo                 = var.demo
  logs_port            = var.logs_port
  log_retention        = var.log_retention
  metrics_port         = var.metrics_port
  order_stuck_seconds  = var.order_stuck_seconds
  mesh                 = var.mesh
  log_level            = var.log_level
}
