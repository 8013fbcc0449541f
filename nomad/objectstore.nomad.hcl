# The object store of the local cluster: SeaweedFS (`weed mini`, built from
# its Go module by scripts/tools.sh) serving an S3-compatible API over TLS.
# It stands in for a cloud provider's bucket as the off-host backup
# repository (pgBackRest repo2, and the SQL dumps): its data lives on the
# host volume `objectstore`, which the dev cluster puts OUTSIDE the cluster's
# state folder, so that destroying the cluster and purging its volumes (a
# lost host) leaves the backups.
#
#   nomad job run -var binary=/path/to/weed nomad/objectstore.nomad.hcl
#
# One bucket per database (backup-<db>), one S3 identity per database,
# allowed only on its own bucket: the keys are in the database's Nomad
# variable nomad/jobs/<db>-db (s3_key, s3_secret); the TLS certificate and
# key are in nomad/jobs/objectstore (scripts/shop-secrets.sh makes both).
# The cloud environments use their provider's object storage instead and do
# not run this job.

variable "binary" {
  type        = string
  description = "Path of the weed binary on the clients."
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

variable "databases" {
  type        = list(string)
  default     = ["auth", "inventory", "orders", "payment"]
  description = "The databases that back up here: one bucket and one identity each."
}

variable "port" {
  type        = number
  default     = 8333
  description = "The S3 API's fixed port (HTTPS): the databases' repo2 endpoint, set at their start."
}

locals {
  # raw_exec mounts nothing: the task reaches the host volume at the path
  # the client publishes as meta.shop_objectstore_dir.
  data_dir = var.driver == "raw_exec" ? "${meta.shop_objectstore_dir}" : "/srv/objectstore"
  buckets  = join(",", [for d in var.databases : "backup-${d}"])
  # SeaweedFS's S3 identities file: each database may use its own bucket
  # only.
  identities = join(",", [for d in var.databases : <<-EOT
    {{ with nomadVar "nomad/jobs/${d}-db" }}{"name": "${d}-db",
     "credentials": [{"accessKey": "{{ .s3_key }}", "secretKey": "{{ .s3_secret }}"}],
     "actions": ["Read:backup-${d}", "Write:backup-${d}", "List:backup-${d}", "Tagging:backup-${d}"]}{{ end }}
    EOT
  ])
}

job "objectstore" {
  type        = "service"
  datacenters = var.datacenters

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "5s"
    healthy_deadline  = "3m"
    progress_deadline = "5m"
    auto_revert       = true
  }

  group "objectstore" {
    # One server per volume.
    count = 1

    volume "data" {
      type      = "host"
      source    = "objectstore"
      read_only = false
    }

    network {
      port "s3" {
        static = var.port
      }
      port "master" {}
      port "master_grpc" {}
      port "volume" {}
      port "volume_grpc" {}
      port "filer" {}
      port "filer_grpc" {}
      port "s3_grpc" {}
      port "admin" {}
      port "admin_grpc" {}
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
      name     = "objectstore"
      port     = "s3"
      tags     = ["s3", "https"]

      # Any answer over TLS is up (an unsigned request is refused with 403).
      check {
        name     = "s3"
        type     = "tcp"
        interval = "5s"
        timeout  = "3s"
      }
    }

    task "weed" {
      driver       = var.driver
      kill_signal  = "SIGTERM"
      kill_timeout = "20s"

      dynamic "volume_mount" {
        for_each = var.driver == "raw_exec" ? [] : ["data"]
        content {
          volume      = volume_mount.value
          destination = "/srv/objectstore"
        }
      }

      config {
        command = var.binary
        args = [
          "mini",
          "-dir=${local.data_dir}",
          "-ip=${NOMAD_IP_s3}",
          "-ip.bind=${NOMAD_IP_s3}",
          "-master.port=${NOMAD_PORT_master}",
          "-master.port.grpc=${NOMAD_PORT_master_grpc}",
          "-master.telemetry=false",
          "-volume.port=${NOMAD_PORT_volume}",
          "-volume.port.grpc=${NOMAD_PORT_volume_grpc}",
          "-filer.port=${NOMAD_PORT_filer}",
          "-filer.port.grpc=${NOMAD_PORT_filer_grpc}",
          "-filer.localSocket=${NOMAD_TASK_DIR}/filer.sock",
          "-s3.port=${NOMAD_PORT_s3}",
          "-s3.port.grpc=${NOMAD_PORT_s3_grpc}",
          "-s3.localSocket=${NOMAD_TASK_DIR}/s3.sock",
          "-s3.port.iceberg=0",
          "-s3.port.lance=0",
          "-s3.cert.file=${NOMAD_SECRETS_DIR}/tls.crt",
          "-s3.key.file=${NOMAD_SECRETS_DIR}/tls.key",
          "-s3.config=${NOMAD_SECRETS_DIR}/identities.json",
          "-s3.autoCreateBucket=false",
          "-bucket=${local.buckets}",
          "-webdav=false",
          # mini always runs its admin server (maintenance workers): on a
          # dynamic port, with a password, without the UI.
          "-admin.ui=false",
          "-admin.port=${NOMAD_PORT_admin}",
          "-admin.port.grpc=${NOMAD_PORT_admin_grpc}",
          "-admin.port.legacy=0",
          "-admin.password=${WEED_ADMIN_PASSWORD}",
        ]
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/admin.env"
        env         = true
        change_mode = "restart"
        data        = "{{ with nomadVar \"nomad/jobs/objectstore\" }}WEED_ADMIN_PASSWORD={{ .admin_password }}{{ end }}"
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/tls.crt"
        change_mode = "restart"
        data        = "{{ with nomadVar \"nomad/jobs/objectstore\" }}{{ .tls_cert }}{{ end }}"
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/tls.key"
        perms       = "0600"
        change_mode = "restart"
        data        = "{{ with nomadVar \"nomad/jobs/objectstore\" }}{{ .tls_key }}{{ end }}"
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/identities.json"
        perms       = "0600"
        change_mode = "restart"
        data        = "{\"identities\": [${local.identities}]}"
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
