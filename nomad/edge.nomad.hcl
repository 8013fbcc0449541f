# The edge: HAProxy (Debian's) in front of the aggregator's instances, on a
# fixed port. It finds the instances through Consul DNS SRV records
# (server-template), checks each on /health/ready itself, and refuses
# /internal paths, which only services may call.
#
#   nomad job run nomad/edge.nomad.hcl
#
# Every answer carries X-Served-By, the HAProxy slot (agg1…agg10) of the
# instance that made it: one slot per instance, so counting the distinct
# values counts the instances behind the edge.

variable "driver" {
  type        = string
  default     = "raw_exec"
  description = "Task driver: raw_exec on the dev cluster, exec on real hosts."
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "haproxy" {
  type        = string
  default     = "/usr/sbin/haproxy"
  description = "The HAProxy binary on the clients (Debian's)."
}

variable "port" {
  type        = number
  default     = 8080
  description = "The shop's public port."
}

variable "consul_dns_addr" {
  type        = string
  default     = "127.0.0.1:8600"
  description = "Consul DNS as HAProxy reaches it."
}

variable "instances" {
  type        = number
  default     = 1
  description = "HAProxies, one per host (a cloud load balancer in front spreads over them)."
}

variable "max_instances" {
  type        = number
  default     = 10
  description = "Aggregator instances HAProxy keeps a slot for."
}

job "edge" {
  type        = "service"
  datacenters = var.datacenters

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "5s"
    healthy_deadline  = "2m"
    progress_deadline = "4m"
    auto_revert       = true
  }

  group "haproxy" {
    count = var.instances

    # The port is fixed: one HAProxy per host.
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    network {
      port "http" {
        static = var.port
      }
      port "admin" {}
    }

    restart {
      attempts = 5
      interval = "2m"
      delay    = "3s"
      mode     = "delay"
    }

    reschedule {
      delay          = "5s"
      delay_function = "exponential"
      max_delay      = "1m"
      unlimited      = true
    }

    service {
      provider = "consul"
      name     = "edge"
      port     = "http"
      tags     = ["http"]

      check {
        name     = "live"
        type     = "http"
        port     = "admin"
        path     = "/health/live"
        interval = "5s"
        timeout  = "2s"

        check_restart {
          limit = 3
          grace = "20s"
        }
      }
    }

    task "haproxy" {
      driver       = var.driver
      kill_signal  = "SIGUSR1" # soft stop: finish the requests in flight
      kill_timeout = "20s"

      config {
        command = var.haproxy
        # -W master-worker, so that SIGUSR2 reloads the configuration;
        # -db: stay in the foreground.
        args = ["-W", "-db", "-f", "${NOMAD_TASK_DIR}/haproxy.cfg"]
      }

      template {
        destination   = "${NOMAD_TASK_DIR}/haproxy.cfg"
        change_mode   = "signal"
        change_signal = "SIGUSR2"
        data          = <<-EOT
          global
            log stdout format raw local0 info
            maxconn 4096
            hard-stop-after 25s

          defaults
            mode http
            log global
            option httplog
            option dontlognull
            timeout connect 2s
            timeout client 30s
            timeout server 35s
            timeout http-request 10s
            timeout http-keep-alive 10s
            timeout queue 5s
            # HAProxy's own errors speak the shop's error format.
            http-error status 502 content-type application/problem+json string "{\"type\":\"about:blank\",\"title\":\"Bad Gateway\",\"status\":502}"
            http-error status 503 content-type application/problem+json string "{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,\"detail\":\"no instance of the shop's API is available\"}"
            http-error status 504 content-type application/problem+json string "{\"type\":\"about:blank\",\"title\":\"Gateway Timeout\",\"status\":504}"

          resolvers consul
            nameserver consul ${var.consul_dns_addr}
            accepted_payload_size 8192
            resolve_retries 3
            timeout resolve 1s
            timeout retry 1s
            hold valid 5s
            hold nx 2s
            hold other 2s
            hold refused 2s
            hold timeout 2s
            hold obsolete 5s

          frontend edge
            bind {{ env "NOMAD_ADDR_http" }}
            # Any path with an "internal" segment, decoded and in any case,
            # so that //internal, /./internal or /%69nternal do not pass.
            acl internal path,url_dec -m reg -i (^|/)internal(/|$)
            http-request return status 404 content-type application/problem+json string "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404}" if internal
            http-request set-header X-Forwarded-Proto http
            option forwardfor
            default_backend aggregator

          backend aggregator
            balance roundrobin
            option httpchk GET /health/ready
            http-check expect status 200
            # Retry where the request surely did not reach an instance (the
            # connection failed); L7 retries only for idempotent methods.
            retries 2
            option redispatch 1
            retry-on conn-failure empty-response response-timeout
            http-request disable-l7-retry if METH_POST || { method PATCH }
            http-response set-header X-Served-By %s
            # allow-dup-ip: instances on one host share its address and
            # differ by port (on the dev cluster, all of them).
            default-server check inter 2s fall 2 rise 2 init-addr none resolvers consul resolve-prefer ipv4 resolve-opts allow-dup-ip
            server-template agg 1-${var.max_instances} _aggregator._tcp.service.consul resolvers consul resolve-prefer ipv4 resolve-opts allow-dup-ip check

          frontend admin
            bind {{ env "NOMAD_ADDR_admin" }}
            http-request return status 200 content-type text/plain string "live" if { path /health/live }
            stats enable
            stats uri /stats
            stats refresh 5s
        EOT
      }

      resources {
        cpu    = 200
        memory = 64
      }
    }
  }
}
