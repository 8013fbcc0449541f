# What every cloud environment's root declares alike, in one file that
# each of them links as its cloud.tf (terraform/environments/aws,
# terraform/environments/hetzner): the operator's variables, the call of
# modules/cloud-cluster, the outputs. An environment keeps in its own
# files only its provider's resources and variables, and says in locals
# what those resources made:
#
#   locals {
#     cluster_hosts     = [{ public_ip, private_ip }, …] # the hosts
#     ssh_user          = "…"   # who the image lets in with the operator's key
#     public_url        = "…"   # the load balancer, as buyers reach it
#     edge_accept_proxy = bool  # it sends clients' addresses in PROXY
#   }
#
# A new environment links this file too (ln -s ../cloud.tf cloud.tf).
# scripts/lint-deploy.sh validates it with stand-in locals, since the
# providers' environments cannot be validated without their plugins.

variable "hosts" {
  type        = number
  default     = 3
  description = "Hosts, each a Consul and Nomad client; the first three are the servers too."
}

variable "operator_cidr" {
  type        = string
  description = "Who may reach SSH and the Nomad and Consul APIs (your address/32)."
}

variable "ssh_public_key" {
  type    = string
  default = "~/.ssh/id_ed25519.pub"
}

variable "ssh_private_key" {
  type    = string
  default = "~/.ssh/id_ed25519"
}

variable "edge_port" {
  type    = number
  default = 8080
}

variable "mailjet_base_url" {
  type        = string
  default     = ""
  description = "Mailjet's API (https://api.mailjet.com) to send mail for real; empty: the mail sink."
}

variable "instances" {
  type    = map(number)
  default = {}
}

variable "keys_file" {
  type        = string
  default     = ""
  description = "The operator's keys that must outlive the hosts (the backups' cipher passphrases); empty: ~/.config/mylittleshopping/<environment>-keys.json. Keep a copy with your other secrets: without it the backups cannot be read."
}

variable "repo2" {
  type = object({
    endpoint      = string
    port          = number
    region        = string
    uri_style     = string
    bucket_prefix = string
  })
  description = "Backup repo2: the provider's object storage (S3 API), one bucket per database named <bucket_prefix>-<db>, made beforehand."
  validation {
    # An empty endpoint would deploy the objectstore job, whose host volume
    # the hosts do not declare.
    condition     = var.repo2.endpoint != ""
    error_message = "repo2.endpoint is the provider's object storage (the local cluster's objectstore job does not run here)."
  }
}

variable "repo2_credentials" {
  type = object({
    key    = string
    secret = string
  })
  sensitive   = true
  description = "The access key of repo2's buckets (from the environment: TF_VAR_repo2_credentials); it goes into the databases' Nomad variables only."
}

variable "images_file" {
  type        = string
  default     = ""
  description = "The images' manifest (name => repository:tag) that make images writes; empty: .run/images/images.json in the repository."
}

module "cluster" {
  source            = "../../modules/cloud-cluster"
  hosts             = local.cluster_hosts
  ssh_user          = local.ssh_user
  ssh_private_key   = var.ssh_private_key
  public_url        = local.public_url
  edge_port         = var.edge_port
  edge_accept_proxy = local.edge_accept_proxy
  mailjet_base_url  = var.mailjet_base_url
  instances         = var.instances
  # The environment's folder names its keys: aws-keys.json, hetzner-keys.json.
  keys_file         = coalesce(var.keys_file, "~/.config/mylittleshopping/${basename(abspath(path.root))}-keys.json")
  repo2             = var.repo2
  repo2_credentials = var.repo2_credentials
  images_file       = var.images_file
}

output "shop_url" {
  value = module.cluster.shop_url
}

output "nomad_ui" {
  value = module.cluster.nomad_ui
}

output "consul_ui" {
  value = module.cluster.consul_ui
}

output "hosts" {
  value = module.cluster.hosts
}
