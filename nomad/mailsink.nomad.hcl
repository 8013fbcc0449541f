# The mail sink (services/platform/cmd/mailsink): the Mailjet-compatible
# capture server of the dev cluster. Services send to it through their
# Mailjet client; journeys read the messages back from GET /messages. One
# instance: it keeps the messages in memory. It accepts any Mailjet keys.
#
#   nomad job run -var image=mylittleshopping/mailsink:<hash> nomad/mailsink.nomad.hcl

variable "image" {
  type        = string
  description = "The mailsink image on the clients' Docker engine (mylittleshopping/mailsink:<hash>, by make images)."
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
  default = 1
}

variable "port" {
  type        = number
  default     = 0
  description = "A fixed port for the sink's API (the operator reads the mail there); 0: any free port."
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

job "mailsink" {
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

  group "mailsink" {
    # Its tasks call Consul with tokens of their own, which Nomad gets
    # them from their workload identities (scripts/cluster-acl.sh,
    # workloads, says what each may do).
    consul {}

    count = var.instances

    # api: the Send API, in the mesh (registered in Consul); http: the
    # inbox and test controls for the operator (plain, the static port);
    # health: Consul's checks.
    network {
      port "api" {}
      port "http" {
        static = var.port
      }
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
      name     = "mailsink"
      port     = "api"
      task     = "mailsink"
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

        # Only liveness restarts: a process that answers but is unready
        # is waiting on nothing a restart would bring.
        check_restart {
          limit = 3
          grace = "30s"
        }
      }
    }

    task "mailsink" {
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
        HTTP_ADDR             = "${NOMAD_ADDR_api}"
        HTTP_HEALTH_ADDR      = "${NOMAD_ADDR_health}"
        MESH_CONSUL_HTTP_ADDR = var.mesh ? var.consul_http_addr : ""
        MAILSINK_VIEW_ADDR    = "${NOMAD_ADDR_http}"
        HTTP_SHUTDOWN_TIMEOUT = "20s"
        LOG_LEVEL             = var.log_level
      }, var.extra_env)

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
