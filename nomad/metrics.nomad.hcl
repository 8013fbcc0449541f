# VictoriaMetrics (single node) and vmalert, in one group: the shop's
# metrics and its alerts (both built from VictoriaMetrics' Go module by
# scripts/tools.sh).
#
#   nomad job run -var image=mylittleshopping/victoria-metrics:<hash> \
#     -var vmalert_image=mylittleshopping/vmalert:<hash> nomad/metrics.nomad.hcl
#
# VictoriaMetrics scrapes every instance of every Consul service whose meta
# has a metrics_port (the shop's services: their plain health listener
# serves /metrics), found through Consul's catalogue with the task's own
# Consul token, over HTTPS checked against the cluster's CA
# (shop/cluster/ca); each series gets job, service, instance, alloc and
# node labels. vmalert evaluates the rules below against it every 15 s and
# writes the alerts' state back into it (ALERTS, and what restores them
# after a restart). There is no Alertmanager: an alert is seen in vmui's
# Alerting page (http://<address>:<port>/vmui/#/rules, vmalert behind
# VictoriaMetrics' -vmalert.proxyURL) or queried (ALERTS{alertstate="firing"}).
#
# Plain HTTP outside the mesh, as nomad/logs.nomad.hcl: no intention names
# it; on a cloud host its port stays on the private network.

variable "image" {
  type        = string
  description = "The VictoriaMetrics image on the clients' Docker engine (mylittleshopping/victoria-metrics:<hash>, by make images)."
}

variable "vmalert_image" {
  type        = string
  description = "The vmalert image (mylittleshopping/vmalert:<hash>, by make images)."
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "port" {
  type        = number
  default     = 8428
  description = "VictoriaMetrics' fixed port (its default): the query API, vmui, and the alerts through it."
}

variable "retention" {
  type        = string
  default     = "30d"
  description = "How long samples are kept (-retentionPeriod)."
}

variable "consul_addr" {
  type        = string
  default     = "127.0.0.1:8500"
  description = "The local Consul agent's HTTPS API (host:port) as the task reaches it: service discovery."
}

variable "consul_datacenter" {
  type        = string
  default     = "dc1"
  description = "Consul's datacenter (given, so that discovery needs no agent:read to ask the agent)."
}

variable "scrape_interval" {
  type    = string
  default = "15s"
}

variable "order_stuck_seconds" {
  type        = number
  default     = 900
  description = "OrderStuck fires when an order has been in progress longer than this (orders_oldest_in_progress_age_seconds); a test sets it short."
}

variable "outbox_stuck_seconds" {
  type        = number
  default     = 300
  description = "OutboxStuck fires when an outbox's oldest unsent message is older than this (outbox_oldest_pending_age_seconds)."
}

variable "memory_mb" {
  type    = number
  default = 256
}

locals {
  # The host volume `metrics`, mounted into the container.
  data_dir = "/srv/metrics"

  # The scrape configuration. Its one template directive is the task's
  # secrets folder (the Consul CA); scripts/lint-deploy.sh renders it with
  # a stand-in and checks it with -promscrape.config.dryRun.
  scrape_config = <<-EOT
    global:
      scrape_interval: ${var.scrape_interval}
      scrape_timeout: 10s

    scrape_configs:
      # Every Consul service with a metrics_port in its meta, on that port
      # of the instance's address. The token is the task's own
      # (CONSUL_HTTP_TOKEN, which Nomad sets from its workload identity:
      # service:read and node:read on everything).
      - job_name: consul
        metrics_path: /metrics
        consul_sd_configs:
          - server: "${var.consul_addr}"
            scheme: https
            datacenter: "${var.consul_datacenter}"
            tls_config:
              ca_file: '{{ env "NOMAD_SECRETS_DIR" }}/consul-ca.pem'
        relabel_configs:
          - source_labels: [__meta_consul_service_metadata_metrics_port]
            regex: ".+"
            action: keep
          - source_labels: [__meta_consul_service_address, __meta_consul_service_metadata_metrics_port]
            separator: ":"
            target_label: __address__
          # job: the Nomad job (its meta), else the service's name.
          - source_labels: [__meta_consul_service]
            target_label: job
          - source_labels: [__meta_consul_service_metadata_nomad_job]
            regex: "(.+)"
            target_label: job
          - source_labels: [__meta_consul_service]
            target_label: service
          - source_labels: [__address__]
            target_label: instance
          # Nomad's service ids are _nomad-task-<alloc id>-<task or group>-<service>-<port>.
          - source_labels: [__meta_consul_service_id]
            regex: "_nomad-task-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-.*"
            target_label: alloc
          - source_labels: [__meta_consul_node]
            target_label: node
  EOT

  # The alert rules. No template directive: the Nomad template that writes
  # them uses other delimiters, so that vmalert's own {{ $labels.x }} pass
  # through. scripts/lint-deploy.sh checks them with vmalert -dryRun.
  rules = <<-EOT
    groups:
      - name: shop
        interval: 15s
        rules:
          # More than 1 % of a job's requests answered 5xx over 5 minutes.
          - alert: ErrorRateHigh
            expr: |
              sum by (job) (rate(http_requests_total{status=~"5.."}[5m]))
                / sum by (job) (rate(http_requests_total[5m])) > 0.01
            for: 1m
            labels:
              severity: critical
            annotations:
              summary: '{{ $labels.job }}: {{ $value | humanizePercentage }} of its requests answered 5xx (5 min)'

          # An order in progress (not final) for too long: the saga's
          # recovery is not moving it (see the aggregator's README).
          - alert: OrderStuck
            expr: max by (status) (orders_oldest_in_progress_age_seconds) > ${var.order_stuck_seconds}
            labels:
              severity: warning
            annotations:
              summary: 'an order has been {{ $labels.status }} for {{ $value | humanizeDuration }}'

          # An outbox (auth's, orders') whose oldest unsent message is old:
          # the relay cannot reach Mailjet (or the mail sink).
          - alert: OutboxStuck
            expr: max by (job) (outbox_oldest_pending_age_seconds) > ${var.outbox_stuck_seconds}
            labels:
              severity: warning
            annotations:
              summary: '{{ $labels.job }}: the oldest unsent email is {{ $value | humanizeDuration }} old'

          # A backup older than it may be; both series come from the
          # backup jobs, with the same labels (database, kind).
          - alert: BackupLate
            expr: backup_last_success_age_seconds > backup_allowed_age_seconds
            labels:
              severity: critical
            annotations:
              summary: 'the last good backup ({{ $labels.db }} {{ $labels.kind }}) is {{ $value | humanizeDuration }} old'

          # A target that does not answer its scrapes.
          - alert: TargetDown
            expr: up == 0
            for: 2m
            labels:
              severity: critical
            annotations:
              summary: '{{ $labels.job }} at {{ $labels.instance }} does not answer /metrics'
  EOT
}

job "metrics" {
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

  group "metrics" {
    count = 1

    volume "data" {
      type      = "host"
      source    = "metrics"
      read_only = false
    }

    # http: VictoriaMetrics (fixed: the operator's vmui); vmalert: its API,
    # which VictoriaMetrics proxies.
    network {
      port "http" {
        static = var.port
      }
      port "vmalert" {}
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
      name     = "metrics"
      port     = "http"
      task     = "victoria-metrics"
      tags     = ["http", "victoriametrics"]

      # It scrapes itself like any other target.
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

    service {
      provider = "consul"
      name     = "vmalert"
      port     = "vmalert"
      task     = "vmalert"
      tags     = ["http", "vmalert"]

      meta {
        metrics_port = "${NOMAD_PORT_vmalert}"
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

    task "victoria-metrics" {
      driver       = "docker"
      kill_signal  = "SIGTERM"
      kill_timeout = "30s" # it flushes what it holds in memory to the volume

      # Only this task calls Consul (service discovery), with a token of
      # its own from its workload identity (scripts/cluster-acl.sh,
      # workloads: it reads the whole catalogue).
      consul {}

      volume_mount {
        volume      = "data"
        destination = local.data_dir
      }

      config {
        image           = var.image
        network_mode    = "host"
        readonly_rootfs = true
        args = [
          "-httpListenAddr=${NOMAD_ADDR_http}",
          "-storageDataPath=${local.data_dir}",
          "-retentionPeriod=${var.retention}",
          "-promscrape.config=${NOMAD_TASK_DIR}/scrape.yml",
          # New instances are scraped within 10 s of passing in Consul.
          "-promscrape.consulSDCheckInterval=10s",
          # vmui's Alerting page, and /api/v1/rules and /api/v1/alerts.
          "-vmalert.proxyURL=http://${NOMAD_ADDR_vmalert}",
          "-loggerFormat=json",
        ]
      }

      # SIGHUP: VictoriaMetrics reads its scrape configuration again.
      template {
        destination   = "${NOMAD_TASK_DIR}/scrape.yml"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = local.scrape_config
      }

      # The CA of Consul's HTTPS certificate (every job reads
      # shop/cluster/ca: scripts/shop-secrets.sh).
      template {
        destination = "${NOMAD_SECRETS_DIR}/consul-ca.pem"
        change_mode = "restart"
        data        = "{{ with nomadVar \"shop/cluster/ca\" }}{{ .consul }}{{ end }}"
      }

      resources {
        cpu    = 200
        memory = var.memory_mb
      }
    }

    task "vmalert" {
      driver       = "docker"
      kill_signal  = "SIGTERM"
      kill_timeout = "10s"

      config {
        image           = var.vmalert_image
        network_mode    = "host"
        readonly_rootfs = true
        args = [
          "-httpListenAddr=${NOMAD_ADDR_vmalert}",
          "-rule=${NOMAD_TASK_DIR}/rules.yml",
          "-datasource.url=http://${NOMAD_ADDR_http}",
          # The alerts' state is written to VictoriaMetrics and read back
          # at a restart: a pending alert keeps its age.
          "-remoteWrite.url=http://${NOMAD_ADDR_http}",
          "-remoteRead.url=http://${NOMAD_ADDR_http}",
          "-evaluationInterval=15s",
          # No Alertmanager: alerts are for the Alerting page.
          "-notifier.blackhole",
          # Links in its pages point at it through VictoriaMetrics.
          "-external.url=http://${NOMAD_ADDR_http}/vmalert",
          "-loggerFormat=json",
        ]
      }

      # SIGHUP: vmalert reads its rules again.
      template {
        destination     = "${NOMAD_TASK_DIR}/rules.yml"
        change_mode     = "signal"
        change_signal   = "SIGHUP"
        left_delimiter  = "[["
        right_delimiter = "]]"
        data            = local.rules
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
