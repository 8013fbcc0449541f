# The auth service (services/auth): accounts, sessions, and the JWKS every
# service verifies tokens with.
#
#   nomad job run -var image=mylittleshopping/auth:<hash> nomad/auth.nomad.hcl
#
# Needs: the auth-db job passing in Consul, the Nomad variables
# shop/auth/db-login (password) and nomad/jobs/auth (signing_key, admin_password, mailjet_api_key_public,
# mailjet_api_key_private; scripts/shop-secrets.sh makes them), and the mail
# sink or Mailjet.

variable "image" {
  type        = string
  description = "The auth image on the clients' Docker engine (mylittleshopping/auth:<hash>, by make images)."
}

variable "consul_http_addr" {
  type        = string
  default     = "http://127.0.0.1:8500"
  description = "The local Consul agent's HTTP API as the tasks reach it: the mesh's certificates and intentions (services/platform/mesh)."
}

variable "mesh" {
  type        = bool
  default     = true
  description = "In the mesh (mutual TLS, intentions): always, but for `make bench-mesh`, which measures the mesh's cost against a deploy without it (plain HTTP between the services: never elsewhere)."
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "instances" {
  type    = number
  default = 2
}

variable "consul_dns_addr" {
  type        = string
  default     = "127.0.0.1:8600"
  description = "Consul DNS as the tasks reach it: peers and auth's JWKS are found through it."
}

variable "public_url" {
  type        = string
  default     = "http://127.0.0.1:8080"
  description = "The shop's public address (HAProxy), for the links in emails."
}

variable "mailjet_base_url" {
  type        = string
  default     = ""
  description = "Mailjet's API root; empty: the mail sink, found in Consul."
}

variable "mail_from" {
  type    = string
  default = "noreply@shop.example.com"
}

variable "admin_email" {
  type        = string
  default     = "admin@shop.example.com"
  description = "The bootstrap admin; its password is admin_password in nomad/jobs/auth."
}

variable "demo_buyer_email" {
  type        = string
  default     = ""
  description = "A demo buyer ensured at every start (verified; its password is demo_buyer_password in nomad/jobs/auth), or \"\" for none."
}

variable "demo_sellers" {
  type        = number
  default     = 0
  description = "The sellers of inventory's demo catalogue ensured with the demo buyer's password (needs demo_buyer_email), so that it can be checked out."
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
  # The mail sink's address, rendered by the template from Consul.
  # The mail sink, found in Consul and called in the mesh.
  mailsink_url     = "http://mailsink.service.consul"
  mailjet_base_url = var.mailjet_base_url != "" ? var.mailjet_base_url : local.mailsink_url
}

job "auth" {
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

  group "auth" {
    # Its tasks call Consul with tokens of their own, which Nomad gets
    # them from their workload identities (scripts/cluster-acl.sh,
    # workloads, says what each may do).
    consul {}

    count = var.instances

    # http: the API, in the mesh (mutual TLS); health: Consul's checks,
    # plain.
    network {
      port "http" {}
      port "health" {}
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
      name     = "auth"
      port     = "http"
      task     = "auth"
      tags     = ["mesh"]

      # VictoriaMetrics scrapes every service with a metrics_port
      # (nomad/metrics.nomad.hcl): the plain health listener serves
      # /metrics beside /health/*.
      meta {
        metrics_port = "${NOMAD_PORT_health}"
        nomad_job    = "${NOMAD_JOB_NAME}"
      }

      # The task serves the mesh's mutual TLS itself (services/platform/mesh).
      connect {
        native = true
      }

      check {
        name     = "ready"
        type     = "http"
        port     = "health"
        path     = "/health/ready"
        interval = "2s"
        timeout  = "3s"
      }

      check {
        name     = "live"
        type     = "http"
        port     = "health"
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

    task "auth" {
      driver = "docker"

      # The task's own Nomad identity, in secrets/nomad_token: what it may
      # read of Nomad (its job's variables, the shared ones its policy
      # names) is what its templates may. The service does not use it; an
      # operator checks the task's reach with it.
      identity {
        file = true
      }
      kill_signal  = "SIGTERM"
      kill_timeout = "25s" # HTTP_SHUTDOWN_TIMEOUT (20s) and some

      # The host's network: traffic stays on loopback, ports are Nomad's.
      config {
        image           = var.image
        network_mode    = "host"
        readonly_rootfs = true
      }

      env = merge({
        HTTP_ADDR             = "${NOMAD_ADDR_http}"
        HTTP_HEALTH_ADDR      = "${NOMAD_ADDR_health}"
        MESH_CONSUL_HTTP_ADDR = var.mesh ? var.consul_http_addr : ""
        HTTP_SHUTDOWN_TIMEOUT = "20s"
        CONSUL_DNS_ADDR       = var.consul_dns_addr
        LOG_LEVEL             = var.log_level
        AUTH_VERIFY_URL       = "${var.public_url}/v1/verify-email"
        AUTH_RESET_URL        = "${var.public_url}/v1/password/reset"
        MAIL_FROM_EMAIL       = var.mail_from
        # Two instances sharing one database: a small pool each.
        DATABASE_MAX_CONNS = "8"
        # Hashes in flight (memory is sized for them, see resources below)
        # and password requests in progress at once, database work
        # included. Two hashes per instance leave the task's other
        # goroutines a CPU on a 2-core host: with 4 and 16, 200 wrong
        # logins on one account kept the admitted ones up to 2.75 s in auth
        # (the account's throttle row and the CPU queued them), and one
        # passed the aggregator's 3 s; with 2 and 8 all 200 answered 401
        # within 1.5 s (e2e's storm, through the edge).
        AUTH_HASH_CONCURRENCY       = "2"
        AUTH_CREDENTIAL_CONCURRENCY = "8"
        GOMEMLIMIT                  = "200MiB"
        AUTH_BOOTSTRAP_ADMIN_EMAIL  = var.admin_email
        AUTH_DEMO_BUYER_EMAIL       = var.demo_buyer_email
        AUTH_DEMO_SELLERS           = "${var.demo_sellers}"
      }, var.extra_env)

      template {
        destination = "${NOMAD_SECRETS_DIR}/auth.env"
        env         = true
        change_mode = "restart"
        splay       = "10s"
        data        = <<-EOT
          {{ with nomadVar "shop/auth/db-login" -}}
          DATABASE_URL=postgres://auth:{{ .password }}@auth-db.service.consul/auth?sslmode=disable
          {{ end -}}
          {{ with nomadVar "nomad/jobs/auth" -}}
          AUTH_SIGNING_KEY={{ .signing_key }}
          AUTH_BOOTSTRAP_ADMIN_PASSWORD={{ .admin_password }}
          %{~if var.demo_buyer_email != ""}
          AUTH_DEMO_BUYER_PASSWORD={{ .demo_buyer_password }}
          %{~endif}
          MAILJET_API_KEY_PUBLIC={{ .mailjet_api_key_public }}
          MAILJET_API_KEY_PRIVATE={{ .mailjet_api_key_private }}
          {{ end -}}
          MAILJET_BASE_URL=${local.mailjet_base_url}
        EOT
      }

      resources {
        cpu = 200
        # argon2id takes 19 MiB per hash in flight and at most
        # AUTH_HASH_CONCURRENCY = 2 are (the others queue, then answer 503
        # busy): 2 × 19 = 38 MiB, plus ~40 MiB for the rest (runtime, pgx
        # pool of 8, HTTP buffers, the goroutines of queued requests) is
        # ~78 MiB live. Between collections Go lets the heap grow to twice
        # the live set; GOMEMLIMIT = 200MiB makes it collect before 200
        # MiB, and 256 MiB leaves 56 MiB above it for stacks and memory
        # outside the heap (sized for 4 hashes, which the limit still
        # holds). services/auth's TestHashingIsBounded
        # reads these numbers and holds a flood of logins and resets to them.
        memory = 256
      }
    }
  }
}
