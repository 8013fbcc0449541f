# The backups of one database, one job per kind, all from this file:
#
#   nomad job run -var service=orders -var kind=full -var image=mylittleshopping/postgres:<hash> nomad/backup.nomad.hcl
#
#   kind     job                         what its task runs (the backup command, bin/backup)
#   full     <svc>-db-backup-full        pgBackRest full backup to repo1 and repo2, then verify (weekly)
#   incr     <svc>-db-backup-incr        incremental on the last backup, then verify (daily)
#   dump     <svc>-db-backup-dump        pg_dump SQL script, gzip, encrypted, to both repos (daily)
#   drill    <svc>-db-backup-drill       restore into a scratch server, compare with live (nightly)
#   restore  <svc>-db-restore            parameterized: `backup restore` dispatches it with
#                                        meta target_time (RFC 3339, empty: latest) and repo (1|2)
#
# Every kind but restore is a periodic batch job (prohibit_overlap); a
# schedule is a variable. Each job mounts the database's volume and the
# `backups` volume, so it runs where the database runs, with pgBackRest
# configured exactly as in nomad/postgres.nomad.hcl; `backup run <kind>`
# forces one now. Results go to Consul KV (mylittleshopping/backup/<db>/<kind>),
# where `backup status` reads them; the drill's also to a Consul TTL check.

variable "service" {
  type        = string
  description = "The database's service: auth, inventory, orders or payment."
}

variable "kind" {
  type        = string
  description = "full, incr, dump, drill or restore."
  validation {
    condition     = contains(["full", "incr", "dump", "drill", "restore"], var.kind)
    error_message = "The kind is one of full, incr, dump, drill, restore."
  }
}

variable "cron" {
  type        = string
  default     = ""
  description = "The schedule (cron, UTC); empty: the kind's default."
}

variable "image" {
  type        = string
  description = "The database image on the clients' Docker engine (mylittleshopping/postgres:<hash>, by make images: PostgreSQL 15, pgBackRest, the backup command)."
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "pg_bin_dir" {
  type    = string
  default = "/usr/lib/postgresql/15/bin"
}

variable "consul_http_addr" {
  type    = string
  default = "http://127.0.0.1:8500"
}

variable "repo2_endpoint" {
  type        = string
  default     = "127.0.0.1"
  description = "repo2's S3 endpoint host: the objectstore job on the dev cluster (loopback), the provider's in the clouds."
}

variable "repo2_port" {
  type        = number
  default     = 8333
  description = "repo2's S3 port (HTTPS)."
}

variable "repo2_ca" {
  type        = bool
  default     = true
  description = "Check repo2's certificate against the objectstore's (tls_cert of shop/objectstore/ca); false: against the system's CAs (a cloud provider)."
}

variable "repo2_bucket" {
  type    = string
  default = ""
}

variable "repo2_region" {
  type    = string
  default = "us-east-1"
}

variable "repo2_uri_style" {
  type    = string
  default = "path"
}

variable "retention_full" {
  type    = number
  default = 2
}

variable "dump_keep_days" {
  type        = number
  default     = 7
  description = "Days a SQL dump is kept, in each repository."
}

variable "drill_ttl" {
  type        = string
  default     = "26h"
  description = "A drill older than this turns its Consul check critical (overdue)."
}

locals {
  # In the image (images/postgres.Dockerfile).
  backup_binary = "/usr/local/bin/backup"
  default_cron = {
    full  = "0 2 * * 0"   # Sundays 02:00
    incr  = "0 2 * * 1-6" # the other days, 02:00: never at the same time as a full
    dump  = "30 3 * * *"
    drill = "0 4 * * *"
  }
  cron   = var.cron != "" ? var.cron : lookup(local.default_cron, var.kind, "")
  job_id = var.kind == "restore" ? "${var.service}-db-restore" : "${var.service}-db-backup-${var.kind}"
  args = {
    full    = ["task", "backup", "--type", "full"]
    incr    = ["task", "backup", "--type", "incr"]
    dump    = ["task", "dump"]
    drill   = ["task", "drill"]
    restore = ["task", "restore"]
  }

  # The same configuration as the database's (nomad/postgres.nomad.hcl).
  volume_dir = "/srv/postgres"
  repo1_dir  = "/srv/backups"
  pgdata     = "${local.volume_dir}/pgdata"
  socket_dir = "${local.volume_dir}/run"
  pgbackrest_env = merge({
    PGBACKREST_CONFIG               = "/dev/null"
    PGBACKREST_STANZA               = var.service
    PGBACKREST_PG1_PATH             = local.pgdata
    PGBACKREST_PG1_SOCKET_PATH      = local.socket_dir
    PGBACKREST_REPO1_PATH           = "${local.repo1_dir}/pgbackrest"
    PGBACKREST_REPO1_RETENTION_FULL = var.retention_full
    PGBACKREST_REPO1_CIPHER_TYPE    = "aes-256-cbc"
    PGBACKREST_REPO2_TYPE           = "s3"
    PGBACKREST_REPO2_PATH           = "/pgbackrest"
    PGBACKREST_REPO2_S3_ENDPOINT    = var.repo2_endpoint
    PGBACKREST_REPO2_S3_BUCKET      = var.repo2_bucket != "" ? var.repo2_bucket : "backup-${var.service}"
    PGBACKREST_REPO2_STORAGE_PORT   = var.repo2_port
    PGBACKREST_REPO2_S3_REGION      = var.repo2_region
    PGBACKREST_REPO2_S3_URI_STYLE   = var.repo2_uri_style
    PGBACKREST_REPO2_RETENTION_FULL = var.retention_full
    PGBACKREST_REPO2_CIPHER_TYPE    = "aes-256-cbc"
    PGBACKREST_ARCHIVE_ASYNC        = "y"
    PGBACKREST_SPOOL_PATH           = "${local.volume_dir}/pgbackrest/spool"
    PGBACKREST_LOCK_PATH            = "${local.volume_dir}/pgbackrest/lock"
    PGBACKREST_LOG_PATH             = "${local.volume_dir}/pgbackrest/log"
    PGBACKREST_LOG_LEVEL_CONSOLE    = "info"
    PGBACKREST_LOG_LEVEL_FILE       = "info"
    PGBACKREST_START_FAST           = "y"
    PGBACKREST_COMPRESS_TYPE        = "zst"
    PG_BIN                          = var.pg_bin_dir
    PGHOST                          = local.socket_dir
    PGUSER                          = "postgres"
    PGDATABASE                      = var.service
    BACKUP_DB                       = var.service
    CONSUL_HTTP_ADDR                = var.consul_http_addr
    CONSUL_CACERT                   = "${NOMAD_SECRETS_DIR}/consul-ca.pem"
    BACKUP_DUMP_KEEP_DAYS           = var.dump_keep_days
    BACKUP_DRILL_TTL                = var.drill_ttl
    }, var.repo2_ca ? {
    PGBACKREST_REPO2_STORAGE_CA_FILE = "${NOMAD_SECRETS_DIR}/repo2-ca.pem"
  } : {})
  repo2_ca = var.repo2_ca ? "{{ with nomadVar \"shop/objectstore/ca\" }}{{ .tls_cert }}{{ end }}" : ""
}

job "backup" {
  id          = local.job_id
  name        = local.job_id
  type        = "batch"
  datacenters = var.datacenters

  meta {
    service = var.service
    kind    = var.kind
  }

  dynamic "periodic" {
    for_each = var.kind == "restore" ? [] : [local.cron]
    content {
      crons            = [periodic.value]
      time_zone        = "UTC"
      prohibit_overlap = true
    }
  }

  dynamic "parameterized" {
    for_each = var.kind == "restore" ? ["restore"] : []
    content {
      meta_optional = ["target_time", "repo"]
    }
  }

  group "backup" {
    # Its tasks call Consul with tokens of their own, which Nomad gets
    # them from their workload identities (scripts/cluster-acl.sh,
    # workloads, says what each may do).
    consul {}

    volume "data" {
      type      = "host"
      source    = "${var.service}-db"
      read_only = false
    }

    volume "backups" {
      type      = "host"
      source    = "backups"
      read_only = false
    }

    network {
      # The drill's scratch server (socket only; the port names its socket).
      port "scratch" {}
    }

    # A failed backup is reported (Consul KV, `backup status`) and retried
    # once; the next run comes with the schedule.
    restart {
      attempts = 1
      interval = "1h"
      delay    = "30s"
      mode     = "fail"
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    task "backup" {
      driver = "docker"
      user   = "postgres"

      volume_mount {
        volume      = "data"
        destination = local.volume_dir
      }

      volume_mount {
        volume      = "backups"
        destination = local.repo1_dir
      }

      # The host's network (loopback); /tmp for pgBackRest and the drill.
      config {
        image           = var.image
        network_mode    = "host"
        readonly_rootfs = true
        entrypoint      = [local.backup_binary]
        mount {
          type   = "tmpfs"
          target = "/tmp"
          tmpfs_options {
            size = 67108864
          }
        }
        args = local.args[var.kind]
      }

      env = merge(local.pgbackrest_env, {
        BACKUP_SCRATCH_PORT = "${NOMAD_PORT_scratch}"
        BACKUP_SCRATCH_DIR  = "${local.volume_dir}/drill"
        }, var.kind == "restore" ? {
        BACKUP_RESTORE_TARGET_TIME = "${NOMAD_META_target_time}"
        BACKUP_RESTORE_REPO        = "${NOMAD_META_repo}"
      } : {})

      # The secrets, and the live server's port (its socket is named by it).
      template {
        destination = "${NOMAD_SECRETS_DIR}/pgbackrest.env"
        env         = true
        change_mode = "noop"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/${var.service}-db" -}}
          PGBACKREST_REPO1_CIPHER_PASS={{ .repo_cipher_pass }}
          PGBACKREST_REPO2_CIPHER_PASS={{ .repo_cipher_pass }}
          {{ end -}}
          {{ with nomadVar "shop/${var.service}-db/s3" -}}
          PGBACKREST_REPO2_S3_KEY={{ .s3_key }}
          PGBACKREST_REPO2_S3_KEY_SECRET={{ .s3_secret }}
          {{ end -}}
                {{ range $i, $s := service "${var.service}-db" }}{{ if eq $i 0 }}PGPORT={{ $s.Port }}
          PGBACKREST_PG1_PORT={{ $s.Port }}{{ end }}{{ end }}
        EOT
      }

      # The CA of Consul's HTTPS certificate: the backup command records
      # what it did in Consul's KV.
      template {
        destination = "${NOMAD_SECRETS_DIR}/consul-ca.pem"
        change_mode = "noop"
        data        = "{{ with nomadVar \"shop/cluster/ca\" }}{{ .consul }}{{ end }}"
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/repo2-ca.pem"
        change_mode = "noop"
        data        = local.repo2_ca
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
