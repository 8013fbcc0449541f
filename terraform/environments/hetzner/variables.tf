# Hetzner's own variables; the operator's (hosts, operator_cidr, keys,
# repo2…) are in cloud.tf, which every cloud environment shares.

variable "server_type" {
  type    = string
  default = "cx22"
}

variable "location" {
  type    = string
  default = "fsn1"
}

variable "network" {
  type    = string
  default = "10.42.0.0/16"
}

variable "subnet" {
  type    = string
  default = "10.42.1.0/24"
}

variable "network_zone" {
  type    = string
  default = "eu-central"
}
