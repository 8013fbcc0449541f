# One PostgreSQL per service database: `<service>-db`, e.g.
#
#   nomad job run -var service=auth -var image=mylittleshopping/postgres:<hash> nomad/postgres.nomad.hcl
#
# The data lives on the client's host volume `<service>-db` and outlives the
# job. The task's start script prepares it, at every start (a restart after
# a lost disk included): on an empty volume it first restores the
# latest backup from the first repository that has one (`backup task init`:
# repo1 on this host, then repo2 off the host), and runs initdb (with data
# checksums, the service's role and database) only when no backup exists;
# at every start it sets the role's password from the Nomad variable
# shop/<service>/db-login (password), so that the secret can be rotated, or
# regenerated on a rebuilt cluster, without losing the data. The server is
# registered in Consul as `<service>-db` with a pg_isready script check and
# a `wal-archive` check (`backup task check-archive`: WAL archived up to,
# RPO now); the service's DSN template reads its address from there.
#
# Backups (issue 11): pgBackRest, configured entirely through its
# PGBACKREST_* environment (one stanza named after the service), archives
# every WAL segment asynchronously to both repositories (archive_timeout
# 30 s: a segment switched at 30 s still has 30 s to reach the
# repositories, so the RPO stays <= 60 s — with 60 s, an order confirmed
# 61 s before a lost disk could be lost, CI stop 20); a poststart task creates the stanza and takes a first
# full backup when a repository has none. The scheduled backups, dumps and
# drills are the periodic jobs of nomad/backup.nomad.hcl.

variable "service" {
  type        = string
  description = "The service that owns the database: auth, inventory, orders or payment."
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

variable "image" {
  type        = string
  description = "The database image on the clients' Docker engine (mylittleshopping/postgres:<hash>, by make images: PostgreSQL 15, pgBackRest, the backup command)."
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
  type        = string
  default     = ""
  description = "repo2's bucket; empty: backup-<service> on the objectstore."
}

variable "repo2_region" {
  type    = string
  default = "us-east-1"
}

variable "repo2_uri_style" {
  type        = string
  default     = "path"
  description = "path for SeaweedFS and most S3-compatible stores, host for AWS."
}

variable "consul_http_addr" {
  type        = string
  default     = "http://127.0.0.1:8500"
  description = "Consul's HTTP API as the tasks reach it: the backup command records its results there."
}

variable "retention_full" {
  type        = number
  default     = 2
  description = "Full backups kept in each repository, with what depends on them (incrementals, WAL)."
}

variable "full_cron" {
  type        = string
  default     = ""
  description = "The schedule of the full backups (cron, UTC) that the backup-metrics task judges their records by; empty: not judged. Terraform passes the one it renders the backup job with."
}

variable "incr_cron" {
  type        = string
  default     = ""
  description = "The schedule of the incremental backups (cron, UTC) that the backup-metrics task judges their records by; empty: not judged. Terraform passes the one it renders the backup job with."
}

variable "dump_cron" {
  type        = string
  default     = ""
  description = "The schedule of the SQL dumps (cron, UTC) that the backup-metrics task judges their records by; empty: not judged. Terraform passes the one it renders the backup job with."
}

variable "drill_cron" {
  type        = string
  default     = ""
  description = "The schedule of the restore drills (cron, UTC) that the backup-metrics task judges their records by; empty: not judged. Terraform passes the one it renders the backup job with."
}

variable "status_slack" {
  type        = string
  default     = "1h"
  description = "What a backup's age may pass its schedule's period by before BackupLate (backup status uses the same slack)."
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
  # In the image (images/postgres.Dockerfile).
  backup_binary = "/usr/local/bin/backup"
  volume_dir    = "/srv/postgres"
  repo1_dir     = "/srv/backups"
  pgdata        = "${local.volume_dir}/pgdata"
  socket_dir    = "${local.volume_dir}/run"

  # pgBackRest's configuration, as its environment (the same in
  # nomad/backup.nomad.hcl): repo1 on the host's `backups` volume, repo2
  # in an S3 bucket off the host; both encrypted. Its spool, lock and log
  # folders are on the database's volume, so that every job that mounts it
  # (this one, the backups, the restore) shares them.
  pgbackrest_env = merge({
    PGBACKREST_CONFIG               = "/dev/null" # no file: only this environment
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
    PGBACKREST_LOG_LEVEL_CONSOLE    = "warn"
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
    }, var.repo2_ca ? {
    # The objectstore's self-signed certificate (repo2_ca) is repo2's CA; a
    # cloud provider's endpoint is checked against the system's CAs.
    PGBACKREST_REPO2_STORAGE_CA_FILE = "${NOMAD_SECRETS_DIR}/repo2-ca.pem"
  } : {})
  # The secrets, rendered as environment.
  pgbackrest_secrets = <<-EOT
    {{ with nomadVar "nomad/jobs/${var.service}-db" -}}
    PGBACKREST_REPO1_CIPHER_PASS={{ .repo_cipher_pass }}
    PGBACKREST_REPO2_CIPHER_PASS={{ .repo_cipher_pass }}
    {{ end -}}
    {{ with nomadVar "shop/${var.service}-db/s3" -}}
    PGBACKREST_REPO2_S3_KEY={{ .s3_key }}
    PGBACKREST_REPO2_S3_KEY_SECRET={{ .s3_secret }}
    {{ end -}}
  EOT
  repo2_ca           = var.repo2_ca ? "{{ with nomadVar \"shop/objectstore/ca\" }}{{ .tls_cert }}{{ end }}" : ""
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
    # Its tasks call Consul with tokens of their own, which Nomad gets
    # them from their workload identities (scripts/cluster-acl.sh,
    # workloads, says what each may do).
    consul {}

    count = 1

    volume "data" {
      type      = "host"
      source    = "${var.service}-db"
      read_only = false
    }

    # repo1: pgBackRest's repository on this host (fast restores; lost with
    # the host, when repo2 takes over).
    volume "backups" {
      type      = "host"
      source    = "backups"
      read_only = false
    }

    network {
      port "db" {}
      port "metrics" {}
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

    task "postgres" {
      driver       = "docker"
      user         = "postgres"
      kill_signal  = "SIGINT" # fast shutdown: roll back open transactions, checkpoint, exit
      kill_timeout = "30s"

      volume_mount {
        volume      = "data"
        destination = local.volume_dir
      }

      volume_mount {
        volume      = "backups"
        destination = local.repo1_dir
      }

      # start.sh prepares the data folder (restore, or initdb), then execs
      # postgres with these arguments.
      # The host's network (loopback); /tmp for initdb and pgBackRest.
      config {
        image           = var.image
        network_mode    = "host"
        readonly_rootfs = true
        entrypoint      = ["/bin/sh"]
        mount {
          type   = "tmpfs"
          target = "/tmp"
          tmpfs_options {
            size = 67108864
          }
        }
        args = [
          "${NOMAD_TASK_DIR}/start.sh",
          "-p", "${NOMAD_PORT_db}",
          "-c", "listen_addresses=${NOMAD_IP_db}",
          # pgBackRest and the backup command reach the server on its socket,
          # as the postgres user (peer authentication).
          "-c", "unix_socket_directories=${local.socket_dir}",
          "-c", "shared_buffers=${var.shared_buffers}",
          "-c", "max_connections=100",
          "-c", "log_destination=stderr",
          "-c", "logging_collector=off",
          "-c", "wal_level=replica",
          "-c", "archive_mode=on",
          "-c", "archive_command=pgbackrest archive-push %p",
          "-c", "archive_timeout=30",
        ]
      }

      env = merge(local.pgbackrest_env, {
        PGBACKREST_PG1_PORT = "${NOMAD_PORT_db}"
        PGPORT              = "${NOMAD_PORT_db}"
        PGDATA              = local.pgdata
        DB_NAME             = var.service
        BACKUP_BINARY       = local.backup_binary
      })

      # The password reaches the script through its environment, which only
      # the postgres user can read.
      template {
        destination = "${NOMAD_SECRETS_DIR}/db.env"
        env         = true
        change_mode = "noop"
        data        = <<-EOT
          {{ with nomadVar "shop/${var.service}/db-login" }}DB_PASSWORD={{ .password }}{{ end }}
        EOT
      }

      # noop: a new secret takes effect at the next start; restarting the
      # server for it would cost every service its connections.
      template {
        destination = "${NOMAD_SECRETS_DIR}/pgbackrest.env"
        env         = true
        change_mode = "noop"
        data        = local.pgbackrest_secrets
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

      template {
        destination = "${NOMAD_TASK_DIR}/start.sh"
        perms       = "0755"
        change_mode = "noop"
        data        = <<-EOT
          # Every start of the task (a first start, a restart after a crash or a
          # lost disk): make the folders pgBackRest and the server use. On an empty
          # volume, restore the latest backup from the first repository that has
          # one (repo1, then repo2): `backup task init` exits 0 when it restored,
          # 3 when no repository has a backup, anything else when it cannot tell
          # (then this task fails and is retried: better a database that waits
          # for its repository than an empty one over a good backup). Only with
          # no backup anywhere: initdb (with data checksums) into a scratch
          # folder, the service's role and database, then move it into place, so
          # that an interrupted first start leaves no half-made cluster behind.
          # Every start: set the role's password from the Nomad variable; then
          # become the server (exec: it gets the task's signals).
          set -eu

          fail() {
          	echo "postgres-init: $*" >&2
          	exit 1
          }
          [ -n "$(printenv DB_PASSWORD)" ] || fail "no db_password in the Nomad variable of $DB_NAME"
          case $DB_PASSWORD in *[!A-Za-z0-9]*) fail "db_password must be letters and digits" ;; esac
          case $DB_NAME in *[!a-z0-9_]* | "") fail "bad database name $DB_NAME" ;; esac
          mkdir -p "$PGHOST" "$PGBACKREST_SPOOL_PATH" "$PGBACKREST_LOCK_PATH" "$PGBACKREST_LOG_PATH"
          chmod 0700 "$PGHOST"

          single() {
          	# One statement per line; single-user mode reads them from stdin.
          	"$PG_BIN/postgres" --single -D "$1" \
          		-c listen_addresses= -c unix_socket_directories= -c log_min_messages=warning \
          		postgres >/dev/null
          }

          # A restore that has not recovered yet (`backup restore` put it there).
          restored=""
          [ ! -f "$PGDATA/recovery.signal" ] || restored=yes
          if [ ! -s "$PGDATA/PG_VERSION" ]; then
          	# A repository that cannot be read yet (on a new host the objectstore
          	# starts beside the databases) is waited for up to a minute here,
          	# before the task fails and Nomad retries it.
          	tries=0
          	while :; do
          		set +e
          		"$BACKUP_BINARY" task init
          		rc=$?
          		set -e
          		[ "$rc" -eq 5 ] && [ "$tries" -lt 30 ] || break
          		tries=$((tries + 1))
          		echo "postgres-init: a repository cannot be read yet; asking again in 2s" >&2
          		sleep 2
          	done
          	case $rc in
          	0) restored=yes ;;
          	3) ;;
          	*) fail "cannot tell whether a backup of $DB_NAME exists (backup task init: exit $rc); not creating an empty database" ;;
          	esac
          fi

          if [ -z "$restored" ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
          	scratch="$PGDATA.init"
          	rm -rf "$scratch"
          	echo "postgres-init: no backup of $DB_NAME: creating the database in $PGDATA"
          	"$PG_BIN/initdb" --data-checksums --pgdata="$scratch" --username=postgres \
          		--encoding=UTF8 --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 >/dev/null
          	single "$scratch" <<SQL
          CREATE ROLE $DB_NAME LOGIN;
          CREATE DATABASE $DB_NAME OWNER $DB_NAME;
          SQL
          	# An empty folder (a volume's mount point, or left by a check) gives way.
          	[ ! -d "$PGDATA" ] || rmdir "$PGDATA" || fail "$PGDATA is not empty and has no PG_VERSION"
          	mv "$scratch" "$PGDATA"
          fi

          if [ -n "$restored" ]; then
          	# Recovery replays the archived WAL and promotes; it must archive what
          	# it writes (the new timeline), so it runs as the server will, on the
          	# socket only. A hot standby answers read-only before recovery ends:
          	# wait until it has (promote it if it paused at its target), and
          	# stop it whatever happens, or its pid file blocks the next start.
          	"$PG_BIN/pg_ctl" start -w -t 1800 -D "$PGDATA" -l "$PGBACKREST_LOG_PATH/recovery.log" \
          		-o "-c listen_addresses= -c unix_socket_directories=$PGHOST -c archive_mode=on -c archive_timeout=30" \
          		-o "-c 'archive_command=pgbackrest archive-push %p'" >/dev/null ||
          		{ tail -n 30 "$PGBACKREST_LOG_PATH/recovery.log" >&2; "$PG_BIN/pg_ctl" stop -m fast -D "$PGDATA" >/dev/null 2>&1 || true; fail "recovery of $DB_NAME failed"; }
          	trap '"$PG_BIN/pg_ctl" stop -w -t 120 -m fast -D "$PGDATA" >/dev/null 2>&1 || true' EXIT
          	q() { "$PG_BIN/psql" -qAt -v ON_ERROR_STOP=1 -d postgres -c "$1"; }
          	deadline=$(($(date +%s) + 1800))
          	while [ "$(q 'SELECT pg_is_in_recovery()')" = t ]; do
          		[ "$(date +%s)" -lt "$deadline" ] || fail "recovery of $DB_NAME did not end in 30 minutes"
          		if [ "$(q 'SELECT pg_get_wal_replay_pause_state()')" = paused ]; then q 'SELECT pg_promote()' >/dev/null; fi
          		sleep 1
          	done
          	"$PG_BIN/psql" -q -v ON_ERROR_STOP=1 -d postgres -c "ALTER ROLE $DB_NAME WITH LOGIN PASSWORD '$DB_PASSWORD'"
          	# The point in time the database came back at: the last transaction
          	# recovery replayed (known only until this server stops).
          	to=$("$PG_BIN/psql" -qAt -d postgres -c "SELECT coalesce(to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), 'the backup''s end')")
          	echo "postgres-init: $DB_NAME recovered to $to"
          	"$BACKUP_BINARY" task restored "$to" || echo "postgres-init: the restore record was not completed" >&2
          	"$PG_BIN/pg_ctl" stop -w -t 120 -m fast -D "$PGDATA" >/dev/null
          	trap - EXIT
          else
          	single "$PGDATA" <<SQL
          ALTER ROLE $DB_NAME WITH LOGIN PASSWORD '$DB_PASSWORD';
          SQL
          fi
          echo "postgres-init: $DB_NAME ready (checksums: $("$PG_BIN/pg_controldata" -D "$PGDATA" | sed -n 's/^Data page checksum version: *//p'))"
          exec "$PG_BIN/postgres" -D "$PGDATA" "$@"
        EOT
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
          interval = "3s"
          timeout  = "3s"

          # The grace covers a restore at start (an empty volume): the server
          # answers only once recovery is over.
          check_restart {
            limit           = 6
            grace           = "20m"
            ignore_warnings = true
          }
        }
      }

      # The WAL archive, as a service of its own so that a late archive
      # never takes the database out of its clients' discovery (their
      # templates list passing instances only).
      service {
        provider = "consul"
        name     = "${var.service}-db-archive"
        port     = "db"
        # ops: the services need only the database to start; `make up`
        # waits for the archive once the shop is started (nomad-deploy.sh).
        tags = ["pgbackrest", var.service, "ops"]

        # WAL archived up to, and the RPO now: `backup status` reads this
        # check's output; a warning when the RPO is over 90 s, critical when
        # archiving fails. It never restarts the server.
        check {
          name     = "wal-archive"
          type     = "script"
          command  = local.backup_binary
          args     = ["task", "check-archive"]
          interval = "15s"
          timeout  = "10s"
        }
      }

      resources {
        cpu    = 200
        memory = var.memory_mb
      }
    }

    # The backups' series for VictoriaMetrics (BackupLate): each scheduled
    # kind's last success and the age its schedule allows, read from the
    # records in Consul KV at every scrape, as `backup status` judges them.
    task "backup-metrics" {
      driver = "docker"
      user   = "postgres"

      lifecycle {
        hook    = "poststart"
        sidecar = true
      }

      config {
        image           = var.image
        network_mode    = "host"
        readonly_rootfs = true
        entrypoint      = [local.backup_binary]
        args            = ["task", "metrics"]
      }

      env = {
        BACKUP_DB           = var.service
        BACKUP_METRICS_ADDR = "${NOMAD_ADDR_metrics}"
        BACKUP_STATUS_SLACK = var.status_slack
        BACKUP_FULL_CRON    = var.full_cron
        BACKUP_INCR_CRON    = var.incr_cron
        BACKUP_DUMP_CRON    = var.dump_cron
        BACKUP_DRILL_CRON   = var.drill_cron
        CONSUL_HTTP_ADDR    = var.consul_http_addr
        CONSUL_CACERT       = "${NOMAD_SECRETS_DIR}/consul-ca.pem"
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/consul-ca.pem"
        change_mode = "noop"
        data        = "{{ with nomadVar \"shop/cluster/ca\" }}{{ .consul }}{{ end }}"
      }

      service {
        provider = "consul"
        name     = "${var.service}-db-backups"
        port     = "metrics"
        tags     = ["metrics", var.service, "ops"]

        # VictoriaMetrics scrapes every service with a metrics_port.
        meta {
          metrics_port = "${NOMAD_PORT_metrics}"
        }

        check {
          name     = "metrics"
          type     = "http"
          path     = "/metrics"
          interval = "10s"
          timeout  = "3s"
        }
      }

      resources {
        cpu    = 20
        memory = 32
      }
    }

    # A new or restored database is covered at once: the stanza is created in
    # each repository (idempotent), checked, and a first full backup taken
    # where a repository has none.
    task "stanza" {
      driver = "docker"
      user   = "postgres"

      lifecycle {
        hook    = "poststart"
        sidecar = false
      }

      volume_mount {
        volume      = "data"
        destination = local.volume_dir
      }

      volume_mount {
        volume      = "backups"
        destination = local.repo1_dir
      }

      # Retried until it succeeds (a repository may be down for a while):
      # it must never take the server down with it.
      # The host's network (loopback); /tmp for initdb and pgBackRest.
      config {
        image           = var.image
        network_mode    = "host"
        readonly_rootfs = true
        entrypoint      = ["/bin/sh"]
        mount {
          type   = "tmpfs"
          target = "/tmp"
          tmpfs_options {
            size = 67108864
          }
        }
        args = ["-c", "until \"$BACKUP_BINARY\" task stanza; do echo 'stanza: retrying in 10s' >&2; sleep 10; done"]
      }

      env = merge(local.pgbackrest_env, { PGPORT = "${NOMAD_PORT_db}", PGBACKREST_PG1_PORT = "${NOMAD_PORT_db}", BACKUP_BINARY = local.backup_binary })

      template {
        destination = "${NOMAD_SECRETS_DIR}/pgbackrest.env"
        env         = true
        change_mode = "noop"
        data        = local.pgbackrest_secrets
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

      restart {
        attempts = 10
        interval = "30m"
        delay    = "15s"
        mode     = "fail"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}
