variable "region" {
  type    = string
  default = "eu-west-3"
}

variable "hosts" {
  type        = number
  default     = 3
  description = "Hosts, each a Consul and Nomad client; the first three are the servers too."
}

variable "instance_type" {
  type    = string
  default = "t3.medium"
}

variable "disk_gb" {
  type    = number
  default = 30
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
