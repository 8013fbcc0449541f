variable "state_dir" {
  type        = string
  default     = ""
  description = "The cluster's state, logs, volumes and releases; empty: .run/cluster in the repository."
}

variable "edge_port" {
  type        = number
  default     = 8080
  description = "The shop's public port (HAProxy)."
}

variable "mailsink_port" {
  type        = number
  default     = 8025
  description = "The mail sink's port, to read the emails the shop sent."
}

variable "consul_http_port" {
  type    = number
  default = 8500
}

variable "consul_dns_port" {
  type    = number
  default = 8600
}

variable "consul_serf_lan_port" {
  type    = number
  default = 8301
}

variable "consul_serf_wan_port" {
  type    = number
  default = 8302
}

variable "consul_server_port" {
  type    = number
  default = 8300
}

variable "consul_grpc_port" {
  type    = number
  default = 8502
}

variable "consul_grpc_tls_port" {
  type    = number
  default = 8503
}

variable "nomad_http_port" {
  type    = number
  default = 4646
}

variable "nomad_rpc_port" {
  type    = number
  default = 4647
}

variable "nomad_serf_port" {
  type    = number
  default = 4648
}

variable "nomad_min_dynamic_port" {
  type    = number
  default = 20000
}

variable "nomad_max_dynamic_port" {
  type    = number
  default = 32000
}

variable "instances" {
  type        = map(number)
  default     = {}
  description = "Instances per stateless service, e.g. { aggregator = 3 } (default 2 each)."
}

variable "deploy_timeout" {
  type    = number
  default = 300
}
