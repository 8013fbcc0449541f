# AWS's own variables; the operator's (hosts, operator_cidr, keys, repo2…)
# are in cloud.tf, which every cloud environment shares.

variable "region" {
  type    = string
  default = "eu-west-3"
}

variable "instance_type" {
  type    = string
  default = "t3.medium"
}

variable "disk_gb" {
  type    = number
  default = 30
}
