# The orders service (services/orders): orders, deliveries, address books.
#
#   nomad job run -var image=mylittleshopping/orders:<hash> nomad/orders.nomad.hcl
#
# Needs: the orders-db job passing in Consul, the Nomad variables
# shop/orders/db-login (password) and nomad/jobs/orders (mailjet_api_key_public,
# mailjet_api_key_private; scripts/shop-secrets.sh makes them), auth's JWKS
# through Consul DNS, and the mail sink or Mailjet.

variable "image" {
  type        = string
  description = "The orders image on the clients' Docker engine (mylittleshopping/orders:<hash>, by make images)."
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
  description = "Consul DNS as the tasks reach it: auth's JWKS is found through it."
}

variable "public_url" {
  type        = string
  default     = "http://127.0.0.1:8080"
  description = "The shop's public address (HAProxy), for the links in emails."
}

variable "mailjet_base_url" {
  type        = string
  default     = ""
  description = "Mailjet's API root; empty: the mail sink, found in Consul."
}

variable "mail_from" {
  type    = string
  default = "noreply@shop.example.com"
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
  # The mail sink's address, rendered by the template from Consul.
  # The mail sink, found in Consul and called in the mesh.
  mailsink_url     = "http://mailsink.service.consul"
  mailjet_base_url = var.mailjet_base_url != "" ? var.mailjet_base_url : local.mailsink_url
}

job "orders" {
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

  group "orders" {
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
      name     = "orders"
      port     = "http"
      task     = "orders"
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

    task "orders" {
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
        MESH_CONSUL_HTTP_ADDR = var.mesh ? var.consul_http_addr : ""
        HTTP_SHUTDOWN_TIMEOUT = "20s"
        CONSUL_DNS_ADDR       = var.consul_dns_addr
        LOG_LEVEL             = var.log_level
        DATABASE_MAX_CONNS    = "8"
        ORDERS_ORDER_URL      = "${var.public_url}/v1/orders"
        MAIL_FROM_EMAIL       = var.mail_from
      }, var.extra_env)

      template {
        destination = "${NOMAD_SECRETS_DIR}/app.env"
        env         = true
        change_mode = "restart"
        splay       = "10s"
        data        = <<-EOT
          {{ with nomadVar "shop/orders/db-login" -}}
          DATABASE_URL=postgres://orders:{{ .password }}@orders-db.service.consul/orders?sslmode=disable
          {{ end -}}
          {{ with nomadVar "nomad/jobs/orders" -}}
          MAILJET_API_KEY_PUBLIC={{ .mailjet_api_key_public }}
          MAILJET_API_KEY_PRIVATE={{ .mailjet_api_key_private }}
          {{ end -}}
          MAILJET_BASE_URL=${local.mailjet_base_url}
        EOT
      }

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
