variable "hosts" {
  type = list(object({
    public_ip  = string
    private_ip = string
  }))
  description = "The hosts the provider made, each a Consul and Nomad client; the first three are the servers too. public_ip: where the operator reaches it (SSH, the agents' APIs); private_ip: where the other hosts do."
}

variable "ssh_user" {
  type        = string
  description = "The user the image lets in with the operator's key (it must be root or have sudo)."
}

variable "ssh_private_key" {
  type = string
}

variable "public_url" {
  type        = string
  description = "The shop's address as buyers reach it: the provider's load balancer."
}

variable "edge_port" {
  type    = number
  default = 8080
}

variable "edge_accept_proxy" {
  type        = bool
  default     = false
  description = "The load balancer sends each client's address in the PROXY protocol (it connects from its own address); false when it keeps the clients' addresses."
}

variable "mailjet_base_url" {
  type    = string
  default = ""
}

variable "instances" {
  type    = map(number)
  default = {}
}

variable "keys_file" {
  type        = string
  description = "The operator's keys that must outlive the hosts (the backups' cipher passphrases)."
}

variable "repo2" {
  type = object({
    endpoint      = string
    port          = number
    region        = string
    uri_style     = string
    bucket_prefix = string
  })
}

variable "repo2_credentials" {
  type = object({
    key    = string
    secret = string
  })
  sensitive = true
}

variable "images_file" {
  type    = string
  default = ""
}
