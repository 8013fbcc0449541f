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

variable "keys_file" {
  type        = string
  default     = "~/.config/mylittleshopping/hetzner-keys.json"
  description = "The operator's keys that must outlive the hosts (the backups' cipher passphrases). Keep a copy with your other secrets: without it the backups cannot be read."
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
