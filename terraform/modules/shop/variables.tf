variable "cluster_id" {
  type        = string
  description = "hashistack-host's id: when the agents are reinstalled, every job is deployed again."
}

variable "nomad_addr" {
  type = string
}

variable "consul_http_addr" {
  type = string
}

variable "consul_dns_addr" {
  type        = string
  default     = "127.0.0.1:8600"
  description = "Consul DNS as the tasks reach it."
}

variable "repo_root" {
  type        = string
  description = "The repository on this machine: nomad/ has the jobs, scripts/ the deploy helpers, bin/ the binaries (make build)."
}

variable "releases_dir" {
  type        = string
  description = "Where the binaries are on the clients, one file per release: <name>-<first 12 hex of its sha256>."
}

variable "install_releases" {
  type        = bool
  default     = false
  description = "Copy bin/<name> into releases_dir on this machine (the local cluster); remote hosts get them from hashistack-host."
}

variable "driver" {
  type        = string
  default     = "raw_exec"
  description = "Task driver of every job: raw_exec on the dev cluster, exec on real hosts."
}

variable "public_url" {
  type        = string
  default     = "http://127.0.0.1:8080"
  description = "The shop's address as buyers reach it (links in emails)."
}

variable "edge_port" {
  type    = number
  default = 8080
}

variable "edge_instances" {
  type        = number
  default     = 1
  description = "HAProxies, each on its own host."
}

variable "mailsink_port" {
  type        = number
  default     = 0
  description = "A fixed port for the mail sink; 0: any, and no mail sink URL in the outputs. -1: no mail sink (Mailjet for real: set mailjet_base_url)."
}

variable "mailjet_base_url" {
  type    = string
  default = ""
}

variable "processor_url" {
  type        = string
  default     = ""
  description = "The card processor; empty: the sandbox processor, deployed too."
}

variable "instances" {
  type        = map(number)
  default     = {}
  description = "Instances per stateless service (default 2 each)."
}

variable "log_level" {
  type    = string
  default = "info"
}

variable "deploy_timeout" {
  type        = number
  default     = 300
  description = "Seconds each job has to become healthy."
}
