variable "state_dir" {
  type        = string
  default     = ""
  description = "The cluster's state, logs and volumes; empty: .run/cluster in the repository."
}

variable "edge_port" {
  type        = number
  default     = 8080
  description = "The shop's public port (HAProxy)."
}

variable "trusted_proxies" {
  type        = list(string)
  default     = ["127.0.0.1/32", "::1/128"]
  description = "Where HAProxy connects to the aggregator from: loopback on this machine. The aggregator believes X-Forwarded-For from there only (HAProxy writes it with the address it saw)."
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

variable "objectstore_dir" {
  type        = string
  default     = ""
  description = "The objectstore's data (backup repo2); empty: objectstore/ beside the state folder (outside it: a purged cluster leaves it)."
}

variable "keys_file" {
  type        = string
  default     = ""
  description = "The operator's keys that must outlive the cluster (the backups' cipher passphrases); empty: keys/shop-keys.json beside the state folder."
}

variable "images_file" {
  type        = string
  default     = ""
  description = "The images' manifest (name => repository:tag) that make images writes; empty: .run/images/images.json in the repository."
}

variable "backup" {
  type = object({
    full_cron      = string
    incr_cron      = string
    dump_cron      = string
    drill_cron     = string
    retention_full = number
    dump_keep_days = number
  })
  default = {
    full_cron      = "0 2 * * 0"
    incr_cron      = "0 2 * * 1-6"
    dump_cron      = "30 3 * * *"
    drill_cron     = "0 4 * * *"
    retention_full = 2
    dump_keep_days = 7
  }
  description = "The backup schedules (cron, UTC) and retention."
}

variable "objectstore_port" {
  type        = number
  default     = 8333
  description = "The objectstore's S3 API (HTTPS): backup repo2 on this machine."
}

variable "aggregator_extra_env" {
  type        = map(string)
  default     = {}
  description = "More environment for the aggregator (tuning: the e2e suite shortens the reconciliation's grace period)."
}

variable "demo" {
  type = object({
    products    = number
    sellers     = number
    buyer_email = string
  })
  default = {
    products    = 5000
    sellers     = 50
    buyer_email = "buyer@demo.shop.example.com"
  }
  description = "The demo shop of a first look: the deterministic demo catalogue (make seed's), loaded into an empty catalogue only, and a verified demo buyer. Skip both with TF_VAR_demo='{\"products\":0,\"sellers\":0,\"buyer_email\":\"\"}'; the sellers (seller-01@demo.shop.example.com …) share the demo buyer's password."
}

variable "logs_port" {
  type        = number
  default     = 9428
  description = "VictoriaLogs (logs_ui, make logs)."
}

variable "log_retention" {
  type        = string
  default     = "14d"
  description = "How long VictoriaLogs keeps logs: TF_VAR_log_retention=30d make up."
}

variable "metrics_port" {
  type        = number
  default     = 8428
  description = "VictoriaMetrics (metrics_ui, alerts_ui)."
}

variable "order_stuck_seconds" {
  type        = number
  default     = 900
  description = "The OrderStuck alert's threshold in seconds (a test sets it short)."
}

variable "mesh" {
  type        = bool
  default     = true
  description = "The mesh between the services (mutual TLS, intentions); false only while `make bench-mesh` measures the mesh's cost (TF_VAR_mesh), which puts it back."
}

variable "log_level" {
  type        = string
  default     = "info"
  description = "The services' log level (debug, info, warn, error); `make bench-logs` measures info's cost against warn (TF_VAR_log_level), which it puts back."
}
