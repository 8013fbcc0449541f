# The log collector: on every client (a system job), an OpenTelemetry
# Collector (scripts/otelcol.yaml: filelog, file_storage, batch, resource,
# otlphttp, nothing else) tails the Docker engine's json-file logs, tells
# each line's job, group, task, allocation and node from the labels the
# engine writes into it, and ships it to VictoriaLogs (nomad/logs.nomad.hcl)
# over OTLP/HTTP.
#
#   nomad job run -var image=mylittleshopping/otelcol:<hash> nomad/log-collector.nomad.hcl
#
# Why Docker's files: Nomad's own alloc/logs files do not say which job a
# line is from, and vlagent collects Kubernetes pods only. The Nomad docker
# plugin labels each container with its job, group, task, allocation and
# node (extra_labels), and runs it with the json-file driver told to copy
# those labels into every line (its `logging` block, in nomad/dev/nomad.hcl
# and the cloud hosts' nomad.hcl.tftpl): each line is
#
#   {"log":"<the line>\n","stream":"stdout","attrs":{"com.hashicorp.nomad.job_name":"auth",…},"time":"…"}
#
# `nomad alloc logs` keeps working: Nomad reads the same files through the
# engine.
#
# What a line becomes in VictoriaLogs: the stream fields (OTLP resource)
# nomad.job, nomad.group, nomad.task, nomad.alloc_id, nomad.node and
# service.name (the job); _time from the engine; the line itself as _msg,
# except that a JSON line (go-hclog's, HAProxy's access log) is taken
# apart: @level becomes the severity (severity_text), @message the message,
# every other field (request_id, @module, status…) a field of its own.
# PostgreSQL's lines and other text stay as they are. log.iostream says
# stdout or stderr.
#
# Nothing is lost while VictoriaLogs is down or moves: the read offsets and
# the exporter's queue are on the host volume `log-collector`
# (file_storage), and the exporter retries forever. Only the batch being
# formed (at most a second of lines) lives in memory.

variable "image" {
  type        = string
  description = "The collector's image on the clients' Docker engine (mylittleshopping/otelcol:<hash>, by make images)."
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "logs_service" {
  type        = string
  default     = "logs"
  description = "The Consul service VictoriaLogs is registered as."
}

locals {
  # The host volumes, as mounted into the container: Docker's containers
  # folder (read-only), and the collector's own state.
  containers_dir = "/var/lib/docker/containers"
  state_dir      = "/srv/log-collector"
}

job "log-collector" {
  type        = "system"
  datacenters = var.datacenters

  # System jobs have deployments since Nomad 1.11; scripts/nomad-deploy.sh
  # waits for every allocation of the new version to run either way.
  update {
    max_parallel     = 1
    health_check     = "checks"
    min_healthy_time = "5s"
    healthy_deadline = "2m"
  }

  group "collector" {
    # The template asks Consul where VictoriaLogs is, with the task's own
    # token (scripts/cluster-acl.sh, workloads: it reads the catalogue).
    consul {}

    volume "containers" {
      type      = "host"
      source    = "docker-containers"
      read_only = true
    }

    volume "state" {
      type      = "host"
      source    = "log-collector"
      read_only = false
    }

    # The collector's own metrics (queue size, lines sent and failed),
    # which VictoriaMetrics scrapes, and which Consul's check reads.
    network {
      port "metrics" {}
    }

    restart {
      attempts = 5
      interval = "5m"
      delay    = "5s"
      mode     = "delay"
    }

    service {
      provider = "consul"
      name     = "log-collector"
      port     = "metrics"
      tags     = ["otelcol"]

      meta {
        metrics_port = "${NOMAD_PORT_metrics}"
        nomad_job    = "${NOMAD_JOB_NAME}"
      }

      check {
        name     = "metrics"
        type     = "http"
        path     = "/metrics"
        interval = "10s"
        timeout  = "3s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }
    }

    task "otelcol" {
      driver       = "docker"
      kill_signal  = "SIGTERM"
      kill_timeout = "20s" # the queue and the offsets are written before it exits

      # Root, with every capability dropped: Docker writes its log files
      # 0640 in folders 0710/0700, all root's, so only their owner reads
      # them — and root without CAP_DAC_OVERRIDE reads what root owns,
      # nothing more. The folder is mounted read-only, and besides the logs
      # it holds the containers' configurations (their environments): the
      # image is the static collector alone.
      user = "0:0"

      # Docker refuses a private bind of a folder inside its own root (it
      # could pin the containers' mounts): the host's mounts propagate into
      # the task (rslave).
      volume_mount {
        volume           = "containers"
        destination      = local.containers_dir
        read_only        = true
        propagation_mode = "host-to-task"
      }

      volume_mount {
        volume      = "state"
        destination = local.state_dir
      }

      config {
        image           = var.image
        network_mode    = "host"
        readonly_rootfs = true
        cap_drop        = ["all"]
        security_opt    = ["no-new-privileges"]
        args            = ["--config=${NOMAD_TASK_DIR}/otelcol.yaml"]
      }

      # This client's node: only its containers' lines are shipped (two
      # clusters may share one engine: the e2e suite's beside `make up`'s).
      env {
        NOMAD_NODE_ID = "${node.unique.id}"
      }

      # Where VictoriaLogs is, from Consul's catalogue. While no instance
      # passes, the exporter points at a closed port and queues on disk;
      # the collector restarts on the new address and sends the queue.
      template {
        destination = "${NOMAD_TASK_DIR}/otelcol.yaml"
        change_mode = "restart"
        wait {
          min = "2s"
          max = "10s"
        }
        data = <<-EOT
          {{- $logs := service "${var.logs_service}" -}}
          extensions:
            file_storage:
              directory: ${local.state_dir}
              timeout: 10s
              # The rootfs is read-only: compaction's scratch files go on
              # the volume too.
              compaction:
                on_start: true
                on_rebound: true
                directory: ${local.state_dir}

          receivers:
            file_log:
              # The rotated files too: a line written just before a
              # rotation is read from .1 (a file is known by its first
              # bytes, never read twice).
              include: [${local.containers_dir}/*/*-json.log*]
              start_at: beginning
              include_file_name: false
              include_file_path: true
              storage: file_storage
              poll_interval: 500ms
              # A file is known by its first bytes, these many: each must
              # hold Docker's envelope of the file's first line, whose
              # attrs name the allocation and the task, or two files
              # alike at their start are taken for one and the second is
              # never read. Kept small, since every poll stores each
              # file's fingerprint: the services' first line is short for
              # it (logging.Starting), and the e2e suite checks every
              # running container's file (stepLogFilesApart).
              fingerprint_size: 1000
              operators:
                # Docker's envelope: the line (log) into the body, time into
                # the timestamp, stream into log.iostream, attrs kept.
                - type: container
                  id: docker
                  format: docker
                  add_metadata_from_filepath: false
                # Not this client's (or not Nomad's) containers: dropped.
                - type: filter
                  id: this-node
                  expr: 'attributes.attrs == nil or attributes.attrs["com.hashicorp.nomad.node_id"] != "$${env:NOMAD_NODE_ID}"'
                # A line over 16 KiB comes in pieces, only the last with
                # its newline.
                - type: recombine
                  id: long-lines
                  combine_field: body
                  combine_with: ""
                  is_last_entry: 'body endsWith "\n"'
                  source_identifier: attributes["log.file.path"]
                  max_log_size: 1MiB
                - type: add
                  id: trim-newline
                  field: body
                  value: EXPR(trimSuffix(body, "\n"))
                # The labels Nomad put on the container: the stream's
                # identity.
                - type: move
                  from: attributes.attrs["com.hashicorp.nomad.job_name"]
                  to: resource["nomad.job"]
                - type: move
                  from: attributes.attrs["com.hashicorp.nomad.task_group_name"]
                  to: resource["nomad.group"]
                - type: move
                  from: attributes.attrs["com.hashicorp.nomad.task_name"]
                  to: resource["nomad.task"]
                - type: move
                  from: attributes.attrs["com.hashicorp.nomad.alloc_id"]
                  to: resource["nomad.alloc_id"]
                - type: move
                  from: attributes.attrs["com.hashicorp.nomad.node_name"]
                  to: resource["nomad.node"]
                - type: remove
                  field: attributes.attrs
                - type: remove
                  field: attributes["log.file.path"]
                # A JSON line (go-hclog's, HAProxy's access log, the
                # Victoria* and the collector's own): its fields become
                # attributes; anything else stays as the body.
                - type: json_parser
                  id: line
                  if: 'body startsWith "{"'
                  parse_from: body
                  parse_to: attributes
                  on_error: send_quiet
                # go-hclog's @level and @message (HAProxy's access log
                # names them the same)…
                - type: severity_parser
                  if: 'attributes["@level"] != nil'
                  parse_from: attributes["@level"]
                  on_error: send_quiet
                - type: remove
                  if: 'attributes["@level"] != nil'
                  field: attributes["@level"]
                - type: move
                  if: 'attributes["@message"] != nil'
                  from: attributes["@message"]
                  to: body
                # …or level and msg (VictoriaLogs', VictoriaMetrics' and the
                # collector's own JSON).
                - type: severity_parser
                  if: 'attributes.level != nil and attributes.msg != nil'
                  parse_from: attributes.level
                  on_error: send_quiet
                - type: remove
                  if: 'attributes.level != nil and attributes.msg != nil'
                  field: attributes.level
                - type: move
                  if: 'attributes.msg != nil'
                  from: attributes.msg
                  to: body

          processors:
            resource:
              attributes:
                - key: service.name
                  from_attribute: nomad.job
                  action: insert
            batch:
              timeout: 1s
              send_batch_size: 2048
              send_batch_max_size: 8192

          exporters:
            otlp_http:
              # VictoriaLogs' OTLP endpoint (…/v1/logs is added).
              endpoint: {{ if $logs }}{{ with index $logs 0 }}http://{{ .Address }}:{{ .Port }}{{ end }}{{ else }}http://127.0.0.1:1{{ end }}/insert/opentelemetry
              compression: gzip
              timeout: 30s
              # Forever: a line waits on disk until VictoriaLogs takes it.
              retry_on_failure:
                enabled: true
                initial_interval: 1s
                max_interval: 30s
                max_elapsed_time: 0
              sending_queue:
                enabled: true
                storage: file_storage
                queue_size: 10000

          service:
            extensions: [file_storage]
            pipelines:
              logs:
                receivers: [file_log]
                processors: [resource, batch]
                exporters: [otlp_http]
            telemetry:
              logs:
                level: info
                encoding: json
              metrics:
                level: basic
                readers:
                  - pull:
                      exporter:
                        prometheus:
                          host: $${env:NOMAD_IP_metrics}
                          port: $${env:NOMAD_PORT_metrics}
        EOT
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}
