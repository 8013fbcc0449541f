# One service of the shop (services/<service>: auth, inventory, orders or
# payment), the same job for each, as the four databases share
# postgres.nomad.hcl. What differs between them (their own settings, the
# Nomad variables they read, their resources) comes as variables:
# terraform/modules/shop/services.tf sets them for each service, with the
# reasons for its numbers.
#
#   nomad job run -var service=orders -var image=mylittleshopping/orders:<hash> nomad/service.nomad.hcl
#
# Needs: the <service>-db job passing in Consul, the Nomad variable
# shop/<service>/db-login (password) and those the secrets variable names
# (scripts/shop-secrets.sh makes them all), auth's JWKS through Consul DNS
# (but for auth), and the peers its settings name (the mail sink or
# Mailjet, the card processor), found in Consul.

variable "service" {
  type        = string
  description = "The service: auth, inventory, orders or payment. It names the job, its group, task and Consul service, its database and its Nomad variables."
}

variable "image" {
  type        = string
  description = "The service's image on the clients' Docker engine (mylittleshopping/<service>:<hash>, by make images)."
}

variable "env" {
  type        = map(string)
  default     = {}
  description = "The service's own settings (AUTH_*, ORDERS_*, mail and processor addresses…), over the shared ones."
}

variable "secrets" {
  type = map(object({
    path = string
    key  = string
  }))
  default     = {}
  description = "Environment read from Nomad variables at start and re-read when they change: NAME = { path, key }. DATABASE_URL is always made from shop/<service>/db-login."
}

variable "cpu" {
  type        = number
  default     = 200
  description = "CPU shares (MHz) for one instance."
}

variable "memory" {
  type        = number
  default     = 128
  description = "Memory limit (MiB) for one instance: the container is killed above it."
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
  description = "Consul DNS as the tasks reach it: auth's JWKS and the peers are found through it."
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

job "service" {
  id   = var.service
  name = var.service

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

  # The group and its task are named after the service, as the job is
  # (the Nomad UI, the logs' nomad.group and nomad.task fields).
  dynamic "group" {
    for_each = [var.service]
    labels   = [group.value]

    content {
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
        name     = var.service
        port     = "http"
        task     = var.service
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

      dynamic "task" {
        for_each = [var.service]
        labels   = [task.value]

        content {
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
            # Two instances sharing one database: a small pool each.
            DATABASE_MAX_CONNS = "8"
          }, var.env, var.extra_env)

          template {
            destination = "${NOMAD_SECRETS_DIR}/app.env"
            env         = true
            change_mode = "restart"
            splay       = "10s"
            data        = <<-EOT
                {{ with nomadVar "shop/${var.service}/db-login" -}}
                DATABASE_URL=postgres://${var.service}:{{ .password }}@${var.service}-db.service.consul/${var.service}?sslmode=disable
                {{ end -}}
                %{~for name, s in var.secrets}
                {{ with nomadVar "${s.path}" }}${name}={{ .${s.key} }}{{ end }}
                %{~endfor}
              EOT
          }

          resources {
            cpu    = var.cpu
            memory = var.memory
          }
        }
      }
    }
  }
}
