# The payment service (services/payment): idempotent payments and refunds
# through the card processor.
#
#   nomad job run -var binary=/path/to/payment nomad/payment.nomad.hcl
#
# Needs: the payment-db job passing in Consul, the Nomad variable
# nomad/jobs/payment (db_password, processor_api_key, fingerprint_key;
# scripts/shop-secrets.sh makes them), and the card processor: the sandbox
# (found in Consul) unless processor_url says otherwise.

variable "binary" {
  type        = string
  description = "Path of the payment binary on the clients (a release, never rewritten in place)."
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
  # The sandbox processor's address, rendered by the template from Consul.
  sandbox_url   = "{{ range $i, $s := service \"sandbox-processor\" }}{{ if eq $i 0 }}http://{{ $s.Address }}:{{ $s.Port }}{{ end }}{{ end }}"
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
      name     = "payment"
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

        # Only liveness restarts: a failing database makes every instance
        # unready, and restarting them would not help.
        check_restart {
          limit = 3
          grace = "30s"
        }
      }
    }

    task "payment" {
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
        DATABASE_MAX_CONNS    = "8"
      }, var.extra_env)

      template {
        destination = "${NOMAD_SECRETS_DIR}/app.env"
        env         = true
        change_mode = "restart"
        splay       = "10s"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/payment" -}}
          DATABASE_URL=postgres://payment:{{ .db_password }}@{{ range $i, $s := service "payment-db" }}{{ if eq $i 0 }}{{ $s.Address }}:{{ $s.Port }}{{ end }}{{ end }}/payment?sslmode=disable
          PAYMENT_PROCESSOR_API_KEY={{ .processor_api_key }}
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
