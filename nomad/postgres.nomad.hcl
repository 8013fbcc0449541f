# One PostgreSQL per service database: `<service>-db`, e.g.
#
#   nomad job run -var service=auth nomad/postgres.nomad.hcl
#
# The data lives on the client's host volume `<service>-db` and outlives the
# job. A prestart task creates it on first start (initdb with data
# checksums, the service's role and database) and, at every start, sets the
# role's password from the Nomad variable nomad/jobs/<service> (db_password),
# so that the secret can be rotated, or regenerated on a rebuilt cluster,
# without losing the data. The server is registered in Consul as
# `<service>-db` with a pg_isready script check; the service's DSN template
# reads its address from there.

variable "service" {
  type        = string
  description = "The service that owns the database: auth, inventory, orders or payment."
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

variable "pg_bin_dir" {
  type        = string
  default     = "/usr/lib/postgresql/15/bin"
  description = "The Debian PostgreSQL binaries on the clients."
}

variable "memory_mb" {
  type    = number
  default = 256
}

variable "shared_buffers" {
  type    = string
  default = "64MB"
}

locals {
  # raw_exec mounts nothing: the task reaches the host volume at its path on
  # the host, which the client publishes as meta.shop_volumes_dir. exec
  # mounts it into the task's chroot.
  volume_dir = var.driver == "raw_exec" ? "${meta.shop_volumes_dir}/${var.service}-db" : "/srv/postgres"
  pgdata     = "${local.volume_dir}/pgdata"
}

job "postgres" {
  id          = "${var.service}-db"
  name        = "${var.service}-db"
  type        = "service"
  datacenters = var.datacenters

  meta {
    service = var.service
  }

  update {
    # One server per volume: the old allocation stops before the new starts.
    max_parallel      = 1
    canary            = 0
    health_check      = "checks"
    min_healthy_time  = "5s"
    healthy_deadline  = "3m"
    progress_deadline = "5m"
    auto_revert       = true
  }

  group "db" {
    count = 1

    volume "data" {
      type      = "host"
      source    = "${var.service}-db"
      read_only = false
    }

    network {
      port "db" {}
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

    task "init" {
      driver = var.driver
      user   = "postgres"

      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      # raw_exec cannot mount (see local.volume_dir).
      dynamic "volume_mount" {
        for_each = var.driver == "raw_exec" ? [] : ["data"]
        content {
          volume      = volume_mount.value
          destination = "/srv/postgres"
        }
      }

      config {
        command = "/bin/sh"
        args    = ["${NOMAD_TASK_DIR}/init.sh"]
      }

      env {
        PG_BIN  = var.pg_bin_dir
        PGDATA  = local.pgdata
        DB_NAME = var.service
      }

      # The password reaches the script through its environment, which only
      # the postgres user can read.
      template {
        destination = "${NOMAD_SECRETS_DIR}/db.env"
        env         = true
        change_mode = "noop"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/${var.service}" }}DB_PASSWORD={{ .db_password }}{{ end }}
        EOT
      }

      template {
        destination = "${NOMAD_TASK_DIR}/init.sh"
        perms       = "0755"
        change_mode = "noop"
        data        = <<-EOT
          # First start: initdb (with data checksums) into a scratch folder, create
          # the service's role and database there, then move it into place, so that
          # an interrupted first start leaves no half-made cluster behind. Every
          # start: set the role's password from the Nomad variable, in single-user
          # mode before the server starts.
          set -eu

          fail() {
          	echo "postgres-init: $*" >&2
          	exit 1
          }
          [ -n "$(printenv DB_PASSWORD)" ] || fail "no db_password in the Nomad variable of $DB_NAME"
          case $DB_PASSWORD in *[!A-Za-z0-9]*) fail "db_password must be letters and digits" ;; esac
          case $DB_NAME in *[!a-z0-9_]* | "") fail "bad database name $DB_NAME" ;; esac

          single() {
          	# One statement per line; single-user mode reads them from stdin.
          	"$PG_BIN/postgres" --single -D "$1" \
          		-c listen_addresses= -c unix_socket_directories= -c log_min_messages=warning \
          		postgres >/dev/null
          }

          if [ ! -s "$PGDATA/PG_VERSION" ]; then
          	scratch="$PGDATA.init"
          	rm -rf "$scratch"
          	echo "postgres-init: creating the $DB_NAME database in $PGDATA"
          	"$PG_BIN/initdb" --data-checksums --pgdata="$scratch" --username=postgres \
          		--encoding=UTF8 --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 >/dev/null
          	single "$scratch" <<SQL
          CREATE ROLE $DB_NAME LOGIN;
          CREATE DATABASE $DB_NAME OWNER $DB_NAME;
          SQL
          	mv "$scratch" "$PGDATA"
          fi

          single "$PGDATA" <<SQL
          ALTER ROLE $DB_NAME WITH LOGIN PASSWORD '$DB_PASSWORD';
          SQL
          echo "postgres-init: $DB_NAME ready (checksums: $("$PG_BIN/pg_controldata" -D "$PGDATA" | sed -n 's/^Data page checksum version: *//p'))"
        EOT
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }

    task "postgres" {
      driver       = var.driver
      user         = "postgres"
      kill_signal  = "SIGINT" # fast shutdown: roll back open transactions, checkpoint, exit
      kill_timeout = "30s"

      # raw_exec cannot mount (see local.volume_dir).
      dynamic "volume_mount" {
        for_each = var.driver == "raw_exec" ? [] : ["data"]
        content {
          volume      = volume_mount.value
          destination = "/srv/postgres"
        }
      }

      config {
        command = "${var.pg_bin_dir}/postgres"
        args = [
          "-D", local.pgdata,
          "-p", "${NOMAD_PORT_db}",
          "-c", "listen_addresses=${NOMAD_IP_db}",
          "-c", "unix_socket_directories=",
          "-c", "shared_buffers=${var.shared_buffers}",
          "-c", "max_connections=100",
          "-c", "log_destination=stderr",
          "-c", "logging_collector=off",
        ]
      }

      service {
        provider = "consul"
        name     = "${var.service}-db"
        port     = "db"
        tags     = ["postgres", var.service]

        check {
          name     = "pg_isready"
          type     = "script"
          command  = "${var.pg_bin_dir}/pg_isready"
          args     = ["-q", "-h", "${NOMAD_IP_db}", "-p", "${NOMAD_PORT_db}", "-t", "2"]
          interval = "5s"
          timeout  = "3s"

          check_restart {
            limit           = 6
            grace           = "60s"
            ignore_warnings = true
          }
        }
      }

      resources {
        cpu    = 200
        memory = var.memory_mb
      }
    }
  }
}
