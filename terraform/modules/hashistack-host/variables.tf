variable "mode" {
  type        = string
  description = "local: the dev agents on this machine (scripts/devcluster.sh); remote: agents installed over SSH as systemd units."
  validation {
    condition     = contains(["local", "remote"], var.mode)
    error_message = "mode is local or remote."
  }
}

variable "repo_root" {
  type        = string
  description = "The repository's root on this machine (its scripts/ and the tools cache)."
}

variable "host_volumes" {
  type        = list(string)
  default     = ["auth-db", "inventory-db", "orders-db", "payment-db", "backups"]
  description = "Nomad host volumes the client declares, one per database and `backups` (pgBackRest's repo1 on the host), owned by the postgres user."
}

# --- local ---------------------------------------------------------------

variable "state_dir" {
  type        = string
  default     = ""
  description = "local: the cluster's state, logs, volumes (devcluster.sh's STATE)."
}

variable "objectstore_dir" {
  type        = string
  default     = ""
  description = "local: the objectstore's data (backup repo2), outside state_dir so that a purged cluster leaves it; empty: .run/objectstore in the repository."
}

variable "ports" {
  type = object({
    consul_http     = number
    consul_dns      = number
    consul_serf_lan = number
    consul_serf_wan = number
    consul_server   = number
    consul_grpc     = number
    consul_grpc_tls = number
    nomad_http      = number
    nomad_rpc       = number
    nomad_serf      = number
  })
  default = {
    consul_http     = 8500
    consul_dns      = 8600
    consul_serf_lan = 8301
    consul_serf_wan = 8302
    consul_server   = 8300
    consul_grpc     = 8502
    consul_grpc_tls = 8503
    nomad_http      = 4646
    nomad_rpc       = 4647
    nomad_serf      = 4648
  }
  description = "The agents' ports (local mode moves them all; remote hosts use the defaults)."
}

variable "dynamic_ports" {
  type = object({
    min = number
    max = number
  })
  default     = { min = 20000, max = 32000 }
  description = "The range Nomad gives tasks their ports from."
}

# --- remote --------------------------------------------------------------

variable "ssh" {
  type = object({
    host        = string
    user        = string
    private_key = string
  })
  default     = null
  sensitive   = true
  description = "remote: how to reach the host."
}

variable "advertise_addr" {
  type        = string
  default     = ""
  description = "remote: the address the agents bind and advertise (the host's private address)."
}

variable "server" {
  type        = bool
  default     = true
  description = "remote: run the Consul and Nomad servers on this host (with a client either way)."
}

variable "bootstrap_expect" {
  type    = number
  default = 1
}

variable "retry_join" {
  type        = list(string)
  default     = []
  description = "remote: the servers' addresses to join."
}

variable "datacenter" {
  type    = string
  default = "dc1"
}

variable "tools_bin" {
  type        = string
  default     = ""
  description = "remote: the folder with the consul and nomad binaries to upload (scripts/tools.sh bindir)."
}

variable "images" {
  type        = map(string)
  default     = {}
  description = "remote: name => image (repository:tag, tagged by content; scripts/images.sh's manifest) to load into the host's Docker engine: saved from this machine's engine and loaded over SSH whenever a tag changes."
}

variable "images_dir" {
  type        = string
  default     = ""
  description = "remote: where the saved images (docker save, gzipped; the latest tag of each) are kept on this machine for the upload, shared by the hosts; empty: .run/images/export in the repository."
}

variable "acl_bootstrap" {
  type        = bool
  default     = false
  description = "remote: this host bootstraps the cluster's ACLs once its agents are up (one host of the cluster, a server)."
}

variable "keys_dir" {
  type        = string
  default     = ""
  description = "remote: the folder on the operator's machine (mode 0700) where the cluster's keys and management tokens are made at the first apply and kept: gossip keys, ACL tokens. local: unused (devcluster.sh keeps them in state_dir/keys)."
}
