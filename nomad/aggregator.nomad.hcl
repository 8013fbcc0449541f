# The aggregator (aggregator/): the shop's public API behind HAProxy. It
# keeps no data; it finds auth, aggregator, orders and payment through Consul
# DNS. Rollouts go through a canary, promoted once its checks pass.
#
#   nomad job run -var image=mylittleshopping/aggregator:<hash> nomad/aggregator.nomad.hcl
#   nomad job scale aggregator 3
#
# It holds no secret: tokens are verified against auth's JWKS.

variable "image" {
  type        = string
  description = "The aggregator image on the clients' Docker engine (mylittleshopping/aggregator:<hash>, by make images)."
}

variable "consul_http_addr" {
  type        = string
  default     = "http://127.0.0.1:8500"
  description = "The local Consul agent's HTTP API as the tasks reach it: the mesh's certificates and intentions (services/platform/mesh)."
}

variable "mesh" {
  type        = bool
  default     = true
  description = "In the mesh (mutual TLS, intentions): always, but for `make bench-mesh`, which measures the mesh's cost against a deploy without it (plain HTTP between the services: never elsewhere)."
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "instances" {
  type    = number
  default = 2
}

variable "consul_dns_addr" {
  type        = string
  default     = "127.0.0.1:8600"
  description = "Consul DNS as the tasks reach it: the services and auth's JWKS are found through it."
}

variable "trusted_proxies" {
  type        = string
  default     = "127.0.0.1/32,::1/128"
  description = "Where HAProxy connects from, as comma-separated CIDRs, and nothing else: X-Forwarded-For (which HAProxy writes with the address it saw) is believed from there only, for the rate limit and auth's lock-out per client. Terraform's trusted_proxies sets it per environment."
}

variable "log_level" {
  type    = string
  default = "info"
}

variable "healthy_deadline" {
  type        = string
  default     = "2m"
  description = "How long a new instance has to pass its checks before the deployment fails (and auto-reverts)."
}

variable "progress_deadline" {
  type        = string
  default     = "4m"
  description = "How long a deployment may go without a new healthy instance before it fails (and auto-reverts); above healthy_deadline."
}

variable "extra_env" {
  type        = map(string)
  default     = {}
  description = "More environment, over the rest (tuning, or a deliberately broken rollout in the e2e tests)."
}

job "aggregator" {
  type        = "service"
  datacenters = var.datacenters

  update {
    # A canary first; promoted when its checks pass, rolled back when not.
    canary            = 1
    auto_promote      = true
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "5s"
    healthy_deadline  = var.healthy_deadline
    progress_deadline = var.progress_deadline
    auto_revert       = true
  }

  group "aggregator" {
    # Its tasks call Consul with tokens of their own, which Nomad gets
    # them from their workload identities (scripts/cluster-acl.sh,
    # workloads, says what each may do).
    consul {}

    count = var.instances

    # http: the API, in the mesh (mutual TLS); health: Consul's checks,
    # plain.
    network {
      port "http" {}
      port "health" {}
    }

    # The delay is longer than the checks' interval: Consul sees an instance
    # that died as critical before it is back.
    restart {
      attempts = 3
      interval = "2m"
      delay    = "5s"
      mode     = "fail"
    }

    reschedule {
      delay          = "5s"
      delay_function = "exponential"
      max_delay      = "1m"
      unlimited      = true
    }

    # Consul drops the instance, and callers stop choosing it, before the
    # task is told to drain.
    shutdown_delay = "5s"

    service {
      provider = "consul"
      name     = "aggregator"
      port     = "http"
      task     = "aggregator"
      tags     = ["mesh"]

      # VictoriaMetrics scrapes every service with a metrics_port
      # (nomad/metrics.nomad.hcl): the plain health listener serves
      # /metrics beside /health/*.
      meta {
        metrics_port = "${NOMAD_PORT_health}"
        nomad_job    = "${NOMAD_JOB_NAME}"
      }

      # The task serves the mesh's mutual TLS itself (services/platform/mesh).
      connect {
        native = true
      }

      check {
        name     = "ready"
        type     = "http"
        port     = "health"
        path     = "/health/ready"
        interval = "2s"
        timeout  = "3s"
      }

      check {
        name     = "live"
        type     = "http"
        port     = "health"
        path     = "/health/live"
        interval = "2s"
        timeout  = "3s"

        # Only liveness restarts: readiness says whether to send traffic.
        check_restart {
          limit = 3
          grace = "30s"
        }
      }
    }

    # The orders a person must look at (a refused refund, an order
    # non-final past AGGREGATOR_FLAG_AFTER), as a service of its own: its
    # check is a warning (429) while any is flagged, never critical, and
    # it must never take the aggregator out of the edge's discovery. ops:
    # no job waits on it to start (nomad-deploy.sh); its first check runs
    # up to its interval after the task starts.
    service {
      provider = "consul"
      name     = "aggregator-attention"
      port     = "http"
      tags     = ["attention", "ops"]

      check {
        name      = "flagged-orders"
        type      = "http"
        port      = "health"
        path      = "/internal/health/orders"
        interval  = "10s"
        timeout   = "5s"
        on_update = "ignore" # a flagged order is for a person, not a failed rollout
      }
    }

    task "aggregator" {
      driver       = "docker"
      kill_signal  = "SIGTERM"
      kill_timeout = "25s" # HTTP_SHUTDOWN_TIMEOUT (20s) and some

      # The host's network: traffic stays on loopback, ports are Nomad's.
      config {
        image           = var.image
        network_mode    = "host"
        readonly_rootfs = true
      }

      env = merge({
        HTTP_ADDR                  = "${NOMAD_ADDR_http}"
        HTTP_HEALTH_ADDR           = "${NOMAD_ADDR_health}"
        MESH_CONSUL_HTTP_ADDR      = var.mesh ? var.consul_http_addr : ""
        HTTP_SHUTDOWN_TIMEOUT      = "20s"
        HTTP_WRITE_TIMEOUT         = "30s" # above AGGREGATOR_CHECKOUT_BUDGET (25s)
        CONSUL_DNS_ADDR            = var.consul_dns_addr
        LOG_LEVEL                  = var.log_level
        AGGREGATOR_TRUSTED_PROXIES = var.trusted_proxies
      }, var.extra_env)

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
