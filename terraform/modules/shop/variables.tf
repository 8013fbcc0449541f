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

variable "nomad_token_file" {
  type        = string
  description = "A file holding the Nomad ACL token the deploy uses (the cluster's management token; hashistack-host's nomad_token_file)."
}

variable "consul_token_file" {
  type        = string
  description = "A file holding the Consul ACL token the deploy uses (intentions, health; hashistack-host's consul_token_file)."
}

variable "nomad_ca_file" {
  type        = string
  description = "The CA file Nomad's HTTPS certificate is checked against (hashistack-host's nomad_ca_file)."
}

variable "consul_ca_file" {
  type        = string
  description = "The CA file Consul's HTTPS certificate is checked against (hashistack-host's consul_ca_file); the tasks that call Consul get it too (shop/cluster/ca)."
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

variable "images" {
  type        = map(string)
  description = "The image of each deployable on the clients' Docker engine, name => repository:tag (scripts/images.sh's manifest, .run/images/images.json): auth, inventory, orders, payment, aggregator, mailsink, sandbox-processor, seaweedfs, postgres, haproxy; victoria-logs and otelcol (logs), victoria-metrics and vmalert (metrics)."

  validation {
    condition     = length(setsubtract(["auth", "inventory", "orders", "payment", "postgres", "haproxy"], keys(var.images))) == 0
    error_message = "images needs at least auth, inventory, orders, payment, postgres and haproxy: run make images."
  }
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

variable "trusted_proxies" {
  type        = list(string)
  default     = ["127.0.0.1/32", "::1/128"]
  description = "Where the edge (HAProxy) connects to the aggregator from, as CIDRs, and nothing else: the aggregator believes X-Forwarded-For (who the client is, for its rate limit and auth's lock-out) from these addresses only. The default is the local cluster's loopback; a cloud environment gives its edge hosts' private addresses."
  validation {
    condition     = length(var.trusted_proxies) > 0 && alltrue([for c in var.trusted_proxies : can(cidrhost(c, 0))])
    error_message = "trusted_proxies must list CIDRs, such as 10.0.1.5/32."
  }
}

variable "edge_accept_proxy" {
  type        = bool
  default     = false
  description = "The load balancer in front of the edge speaks the PROXY protocol (it would hide the clients' addresses otherwise): HAProxy reads each client's address from it."
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

variable "mail_from" {
  type        = string
  default     = "noreply@shop.example.com"
  description = "The sender of the shop's emails."
}

variable "admin_email" {
  type        = string
  default     = "admin@shop.example.com"
  description = "The bootstrap admin; its password is admin_password in nomad/jobs/auth."
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

variable "keys_file" {
  type        = string
  description = "The operator's file of secrets that must outlive the cluster (the backups' cipher passphrases), outside the cluster's state; JSON, mode 0600."
}

variable "repo2" {
  type = object({
    endpoint      = string
    port          = number
    region        = string
    uri_style     = string
    bucket_prefix = string
  })
  default     = { endpoint = "", port = 0, region = "us-east-1", uri_style = "path", bucket_prefix = "backup" }
  description = "Backup repo2, the S3 bucket off the host, one per database: <bucket_prefix>-<db>. An empty endpoint: the objectstore job (SeaweedFS) of this cluster; a cloud environment gives its provider's object storage."
}

variable "objectstore_port" {
  type        = number
  default     = 8333
  description = "The objectstore's S3 port (HTTPS), when it is repo2."
}

variable "repo2_credentials" {
  type = object({
    key    = string
    secret = string
  })
  default     = { key = "", secret = "" }
  sensitive   = true
  description = "repo2's access key for a cloud bucket; empty: one made per database for the objectstore."
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
  description = "The backup schedules (cron, UTC), the full backups kept per repository, and the days a SQL dump is kept."
}

variable "demo" {
  type = object({
    products    = number
    sellers     = number
    buyer_email = string
  })
  default = {
    products    = 0
    sellers     = 50
    buyer_email = ""
  }
  description = "The demo shop for a newcomer's first look: the demo catalogue's size, loaded into an empty catalogue only, and a verified demo buyer (its password is demo_buyer_password in nomad/jobs/auth); none by default."
}

variable "aggregator_extra_env" {
  type        = map(string)
  default     = {}
  description = "More environment for the aggregator (tuning: the e2e suite shortens the reconciliation's grace period)."
}

variable "logs_port" {
  type        = number
  default     = 9428
  description = "VictoriaLogs' fixed port: the collectors' OTLP endpoint, LogsQL and its web UI (/select/vmui)."
}

variable "log_retention" {
  type        = string
  default     = "14d"
  description = "How long VictoriaLogs keeps logs (a number with h, d, w or y); its volume is capped besides (nomad/logs.nomad.hcl, max_disk_space)."
}

variable "metrics_port" {
  type        = number
  default     = 8428
  description = "VictoriaMetrics' fixed port: its query API and vmui, the alerts at /vmui/#/rules."
}

variable "order_stuck_seconds" {
  type        = number
  default     = 900
  description = "The OrderStuck alert's threshold: an order in progress for longer than this (seconds)."
}

variable "mesh" {
  type        = bool
  default     = true
  description = "The services, the aggregator, the edge, the mail sink and the sandbox processor in the mesh (mutual TLS, intentions). false only for `make bench-mesh` on the local cluster, which measures the mesh's cost against a deploy without it: plain HTTP between the services, no intention checked."
}
