# VictoriaLogs (single node, built from its Go module by scripts/tools.sh):
# every allocation's output, which the log collector
# (nomad/log-collector.nomad.hcl) ships here over OTLP with its Nomad
# metadata, queried with LogsQL — `make logs Q='…'`, or the web UI at
# http://<address>:<port>/select/vmui.
#
#   nomad job run -var image=mylittleshopping/victoria-logs:<hash> nomad/logs.nomad.hcl
#
# The data lives on the client's host volume `logs` and outlives the job;
# it is kept `retention` long and within `max_disk_space` (the oldest days
# go first). Registered in Consul as `logs`, which the collector's
# template and `make logs` find it by. It is plain HTTP outside the mesh:
# its callers are the collector, vmui in the operator's browser and the
# operator's scripts, none of which has a mesh identity (the intentions
# have no entry for it). On the local cluster that is loopback; on a cloud
# host its port must stay on the private network.

variable "image" {
  type        = string
  description = "The VictoriaLogs image on the clients' Docker engine (mylittleshopping/victoria-logs:<hash>, by make images)."
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "port" {
  type        = number
  default     = 9428
  description = "VictoriaLogs' fixed port (VictoriaLogs' default): the collector's OTLP endpoint, LogsQL's API and the web UI the operator opens."
}

variable "retention" {
  type        = string
  default     = "14d"
  description = "How long logs are kept (-retentionPeriod: a number with h, d, w or y)."
}

variable "max_disk_space" {
  type        = string
  default     = "5GiB"
  description = "The volume's cap (-retention.maxDiskSpaceUsageBytes): past it the oldest days are dropped, even inside the retention."
}

variable "memory_mb" {
  type    = number
  default = 256
}

locals {
  # The host volume `logs`, mounted into the container.
  data_dir = "/srv/logs"
}

job "logs" {
  type        = "service"
  datacenters = var.datacenters

  update {
    # One server per volume: the old allocation stops before the new starts.
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "5s"
    healthy_deadline  = "2m"
    progress_deadline = "4m"
    auto_revert       = true
  }

  # No consul {}: no task calls Consul (the service registers with its
  # own identity).
  group "logs" {
    count = 1

    volume "data" {
      type      = "host"
      source    = "logs"
      read_only = false
    }

    network {
      port "http" {
        static = var.port
      }
    }

    restart {
      attempts = 5
      interval = "5m"
      delay    = "5s"
      mode     = "delay"
    }

    reschedule {
      delay          = "10s"
      delay_function = "exponential"
      max_delay      = "2m"
      unlimited      = true
    }

    service {
      provider = "consul"
      name     = "logs"
      port     = "http"
      tags     = ["http", "victorialogs"]

      # VictoriaMetrics scrapes every service with a metrics_port
      # (nomad/metrics.nomad.hcl): VictoriaLogs serves /metrics on its port.
      meta {
        metrics_port = "${NOMAD_PORT_http}"
        nomad_job    = "${NOMAD_JOB_NAME}"
      }

      check {
        name     = "health"
        type     = "http"
        path     = "/health"
        interval = "5s"
        timeout  = "3s"

        check_restart {
          limit = 3
          grace = "1m"
        }
      }
    }

    task "victoria-logs" {
      driver       = "docker"
      kill_signal  = "SIGTERM"
      kill_timeout = "30s" # it flushes what it holds in memory to the volume

      volume_mount {
        volume      = "data"
        destination = local.data_dir
      }

      # The host's network: the collectors of every host reach it on its
      # fixed port, the operator's browser too.
      config {
        image           = var.image
        network_mode    = "host"
        readonly_rootfs = true
        args = [
          "-httpListenAddr=${NOMAD_ADDR_http}",
          "-storageDataPath=${local.data_dir}",
          "-retentionPeriod=${var.retention}",
          "-retention.maxDiskSpaceUsageBytes=${var.max_disk_space}",
          # A line is searchable a second after it arrived (the default
          # is 5 s): `make logs` right after a request finds it.
          "-inmemoryDataFlushInterval=1s",
          # Its own log lines as JSON, which the collector parses as it
          # parses the services'.
          "-loggerFormat=json",
        ]
      }

      resources {
        cpu    = 200
        memory = var.memory_mb
      }
    }
  }
}
