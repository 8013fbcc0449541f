# The sandbox card processor (services/payment/cmd/sandbox-processor) that
# the payment service charges in the dev cluster. One instance: it keeps its
# charges in memory.
#
#   nomad job run -var binary=/path/to/sandbox-processor nomad/sandbox-processor.nomad.hcl
#
# Needs: the Nomad variable nomad/jobs/payment (processor_api_key, the key
# the payment service presents).

variable "binary" {
  type        = string
  description = "Path of the sandbox-processor binary on the clients (a release, never rewritten in place)."
}

variable "driver" {
  type        = string
  default     = "raw_exec"
  description = "Task driver: raw_exec on the dev cluster, exec on real hosts."
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "instances" {
  type    = number
  default = 1
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

job "sandbox-processor" {
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

  group "sandbox-processor" {
    count = var.instances

    network {
      port "http" {}
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
      name     = "sandbox-processor"
      port     = "http"
      tags     = ["http"]

      check {
        name     = "ready"
        type     = "http"
        path     = "/health/ready"
        interval = "2s"
        timeout  = "3s"
      }

      check {
        name     = "live"
        type     = "http"
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

    task "sandbox-processor" {
      driver       = var.driver
      kill_signal  = "SIGTERM"
      kill_timeout = "25s" # HTTP_SHUTDOWN_TIMEOUT (20s) and some

      config {
        command = var.binary
      }

      env = merge({
        HTTP_ADDR             = "${NOMAD_ADDR_http}"
        HTTP_SHUTDOWN_TIMEOUT = "20s"
        LOG_LEVEL             = var.log_level
      }, var.extra_env)

      template {
        destination = "${NOMAD_SECRETS_DIR}/app.env"
        env         = true
        change_mode = "restart"
        splay       = "10s"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/payment" -}}
          SANDBOX_API_KEY={{ .processor_api_key }}
          {{ end -}}
        EOT
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
