# The payment service (services/payment): idempotent payments and refunds
# through the card processor.
#
#   nomad job run -var image=mylittleshopping/payment:<hash> nomad/payment.nomad.hcl
#
# Needs: the payment-db job passing in Consul, the Nomad variables
# shop/payment/db-login (password), shop/payment/processor (api_key) and
# nomad/jobs/payment (fingerprint_key;
# scripts/shop-secrets.sh makes them), and the card processor: the sandbox
# (found in Consul) unless processor_url says otherwise.

variable "image" {
  type        = string
  description = "The payment image on the clients' Docker engine (mylittleshopping/payment:<hash>, by make images)."
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

variable "consul_dns_addr" {
  type        = string
  default     = "127.0.0.1:8600"
  description = "Consul DNS as the tasks reach it: the sandbox processor is found through it."
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "instances" {
  type    = number
  default = 2
}

variable "processor_url" {
  type        = string
  default     = ""
  description = "The card processor's API root; empty: the sandbox processor, found in Consul."
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

locals {
  # The sandbox processor, found in Consul and called in the mesh.
  sandbox_url   = "http://sandbox-processor.service.consul"
  processor_url = var.processor_url != "" ? var.processor_url : local.sandbox_url
}

job "payment" {
  type        = "service"
  datacenters = var.datacenters

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "5s"
    healthy_deadline  = var.healthy_deadline
    progress_deadline = var.progress_deadline
    auto_revert       = true
  }

  group "payment" {
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
      name     = "payment"
      port     = "http"
      task     = "payment"
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

        # Only liveness restarts: a failing database makes every instance
        # unready, and restarting them would not help.
        check_restart {
          limit = 3
          grace = "30s"
        }
      }
    }

    task "payment" {
      driver = "docker"

      # The task's own Nomad identity, in secrets/nomad_token: what it may
      # read of Nomad (its job's variables, the shared ones its policy
      # names) is what its templates may. The service does not use it; an
      # operator checks the task's reach with it.
      identity {
        file = true
      }
      kill_signal  = "SIGTERM"
      kill_timeout = "25s" # HTTP_SHUTDOWN_TIMEOUT (20s) and some

      # The host's network: traffic stays on loopback, ports are Nomad's.
      config {
        image           = var.image
        network_mode    = "host"
        readonly_rootfs = true
      }

      env = merge({
        HTTP_ADDR             = "${NOMAD_ADDR_http}"
        HTTP_HEALTH_ADDR      = "${NOMAD_ADDR_health}"
        CONSUL_DNS_ADDR       = var.consul_dns_addr
        MESH_CONSUL_HTTP_ADDR = var.mesh ? var.consul_http_addr : ""
        HTTP_SHUTDOWN_TIMEOUT = "20s"
        LOG_LEVEL             = var.log_level
        DATABASE_MAX_CONNS    = "8"
      }, var.extra_env)

      template {
        destination = "${NOMAD_SECRETS_DIR}/app.env"
        env         = true
        change_mode = "restart"
        splay       = "10s"
        data        = <<-EOT
          {{ with nomadVar "shop/payment/db-login" -}}
          DATABASE_URL=postgres://payment:{{ .password }}@payment-db.service.consul/payment?sslmode=disable
          {{ end -}}
          {{ with nomadVar "shop/payment/processor" -}}
          PAYMENT_PROCESSOR_API_KEY={{ .api_key }}
          {{ end -}}
          {{ with nomadVar "nomad/jobs/payment" -}}
          PAYMENT_FINGERPRINT_KEY={{ .fingerprint_key }}
          {{ end -}}
          PAYMENT_PROCESSOR_URL=${local.processor_url}
        EOT
      }

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
