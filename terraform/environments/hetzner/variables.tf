variable "hosts" {
  type        = number
  default     = 3
  description = "Hosts, each a Consul and Nomad client; the first three are the servers too."
}

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
