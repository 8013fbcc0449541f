# The object store of the local cluster: SeaweedFS (`weed mini`, built from
# its Go module by scripts/tools.sh) serving an S3-compatible API over TLS.
# It stands in for a cloud provider's bucket as the off-host backup
# repository (pgBackRest repo2, and the SQL dumps): its data lives on the
# host volume `objectstore`, which the dev cluster puts OUTSIDE the cluster's
# state folder, so that destroying the cluster and purging its volumes (a
# lost host) leaves the backups.
#
#   nomad job run -var image=mylittleshopping/seaweedfs:<hash> nomad/objectstore.nomad.hcl
#
# One bucket per database (backup-<db>), one S3 identity per database,
# allowed only on its own bucket: the keys are in the database's Nomad
# variable shop/<db>-db/s3 (s3_key, s3_secret); the TLS key is in
# nomad/jobs/objectstore, its certificate in shop/objectstore/ca, which every
# job may read (scripts/shop-secrets.sh makes them).
# The cloud environments use their provider's object storage instead and do
# not run this job.

variable "image" {
  type        = string
  description = "The SeaweedFS image on the clients' Docker engine (mylittleshopping/seaweedfs:<hash>, by make images: weed as its entrypoint)."
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
  # The host volume `objectstore`, mounted into the container.
  data_dir = "/srv/objectstore"
  buckets  = join(",", [for d in var.databases : "backup-${d}"])
  # SeaweedFS's S3 identities file: each database may use its own bucket
  # only.
  identities = join(",", [for d in var.databases : <<-EOT
    {{ with nomadVar "shop/${d}-db/s3" }}{"name": "${d}-db",
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
    # Its tasks call Consul with tokens of their own, which Nomad gets
    # them from their workload identities (scripts/cluster-acl.sh,
    # workloads, says what each may do).
    consul {}

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
        interval = "2s"
        timeout  = "3s"
      }
    }

    task "weed" {
      driver       = "docker"
      kill_signal  = "SIGTERM"
      kill_timeout = "20s"

      volume_mount {
        volume      = "data"
        destination = local.data_dir
      }

      # The host's network (loopback); weed writes its logs in /tmp.
      config {
        image           = var.image
        network_mode    = "host"
        readonly_rootfs = true
        mount {
          type   = "tmpfs"
          target = "/tmp"
          tmpfs_options {
            size = 67108864
          }
        }
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
        data        = "{{ with nomadVar \"shop/objectstore/ca\" }}{{ .tls_cert }}{{ end }}"
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/tls.key"
        perms       = "0600"
        uid         = 65532 # the image's app user (images/service.Dockerfile)
        gid         = 65532
        change_mode = "restart"
        data        = "{{ with nomadVar \"nomad/jobs/objectstore\" }}{{ .tls_key }}{{ end }}"
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/identities.json"
        perms       = "0600"
        uid         = 65532 # the image's app user (images/service.Dockerfile)
        gid         = 65532
        change_mode = "restart"
        data        = "{\"identities\": [${local.identities}]}"
      }

      # weed mini runs a master, a volume server, a filer and the S3
      # gateway in one process: it was OOM-killed at 256 MiB once the
      # container enforced the limit (raw_exec never did). GOMEMLIMIT makes
      # the Go heap collect well before the cgroup's limit.
      env = {
        GOMEMLIMIT = "400MiB"
      }

      resources {
        cpu    = 200
        memory = 512
      }
    }
  }
}
