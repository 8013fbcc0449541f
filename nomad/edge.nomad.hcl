# The edge: HAProxy (Debian's) in front of the aggregator's instances, on a
# fixed port. Its configuration names each passing instance in Consul's
# catalogue (a template re-rendered on every change, then a reload that
# drops no request), HAProxy checks each on /health/ready itself, and refuses
# /internal paths, which only services may call. It tells the aggregator
# who the client is (X-Forwarded-For, the address it saw, replacing
# whatever the client sent), and every error it answers, its own or one
# Go's net/http gives before any handler, is application/problem+json.
#
#   nomad job run -var image=mylittleshopping/haproxy:<hash> nomad/edge.nomad.hcl
#
# Every answer carries X-Served-By, the HAProxy server (agg-<address>-<port>)
# of the instance that made it: one per instance, so counting the distinct
# values counts the instances behind the edge.

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "image" {
  type        = string
  description = "The HAProxy image on the clients' Docker engine (mylittleshopping/haproxy:<hash>, by make images: Debian's HAProxy 2.6)."
}

variable "port" {
  type        = number
  default     = 8080
  description = "The shop's public port."
}

variable "instances" {
  type        = number
  default     = 1
  description = "HAProxies, one per host (a cloud load balancer in front spreads over them)."
}

variable "accept_proxy" {
  type        = bool
  default     = false
  description = "The load balancer in front speaks the PROXY protocol (Hetzner's, which otherwise hides the clients' addresses): HAProxy reads the client's address from it."
}

variable "mesh" {
  type        = bool
  default     = true
  description = "In the mesh (mutual TLS, intentions): always, but for `make bench-mesh`, which measures the mesh's cost against a deploy without it (plain HTTP between the services: never elsewhere)."
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
    # Its tasks call Consul with tokens of their own, which Nomad gets
    # them from their workload identities (scripts/cluster-acl.sh,
    # workloads, says what each may do).
    consul {}

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
      # HAProxy's stats page, for the operator, with a password
      # (stats_password in nomad/jobs/edge: nomad var get nomad/jobs/edge).
      port "stats" {}
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
        interval = "2s"
        timeout  = "2s"

        check_restart {
          limit = 3
          grace = "20s"
        }
      }
    }

    task "haproxy" {
      driver       = "docker"
      kill_signal  = "SIGUSR1" # soft stop: finish the requests in flight
      kill_timeout = "20s"

      # The host's network: the public port is the host's.
      config {
        image           = var.image
        network_mode    = "host"
        readonly_rootfs = true
        # -W master-worker, so that SIGUSR2 reloads the configuration;
        # -db: stay in the foreground. stats.cfg holds a password: it is a
        # secret of the task.
        args = ["-W", "-db", "-f", "${NOMAD_TASK_DIR}/haproxy.cfg", "-f", "${NOMAD_SECRETS_DIR}/stats.cfg"]
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
            lua-load {{ env "NOMAD_TASK_DIR" }}/edge.lua

          defaults
            mode http
            log global
            option dontlognull
            timeout connect 2s
            timeout client 30s
            timeout server 35s
            timeout http-request 10s
            timeout http-keep-alive 10s
            timeout queue 5s
            # HAProxy's own errors speak the shop's error format
            # (application/problem+json, the types of platform/apierr):
            # every status its rules and its backends' failures can answer
            # with is here. A request its HTTP/1 parser refuses is answered
            # with a built-in page that no errorfile replaces (HAProxy 2.6,
            # mux_h1.c h1_send_error): frontend edge below refuses those
            # first.
            http-error status 400 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/invalid-request\",\"title\":\"Bad Request\",\"status\":400,\"detail\":\"the request is not valid HTTP: check its request line and headers (no control characters, no spaces in the path)\"}"
            http-error status 401 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/unauthenticated\",\"title\":\"Unauthorized\",\"status\":401}"
            http-error status 403 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/forbidden\",\"title\":\"Forbidden\",\"status\":403}"
            http-error status 404 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/not-found\",\"title\":\"Not Found\",\"status\":404}"
            http-error status 405 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/method-not-allowed\",\"title\":\"Method Not Allowed\",\"status\":405}"
            http-error status 408 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/request-timeout\",\"title\":\"Request Timeout\",\"status\":408,\"detail\":\"the request did not arrive in time; send it again\"}"
            http-error status 410 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/gone\",\"title\":\"Gone\",\"status\":410}"
            http-error status 413 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/body-too-large\",\"title\":\"Request Entity Too Large\",\"status\":413,\"detail\":\"the request is too large\"}"
            http-error status 425 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/too-early\",\"title\":\"Too Early\",\"status\":425}"
            http-error status 429 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/too-many-requests\",\"title\":\"Too Many Requests\",\"status\":429,\"detail\":\"too many requests; slow down\"}"
            http-error status 500 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/internal\",\"title\":\"Internal Server Error\",\"status\":500,\"detail\":\"an internal error occurred at the edge\"}"
            http-error status 501 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/not-implemented\",\"title\":\"Not Implemented\",\"status\":501,\"detail\":\"the request uses an HTTP feature the shop does not support (a transfer encoding other than chunked)\"}"
            http-error status 502 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/bad-gateway\",\"title\":\"Bad Gateway\",\"status\":502,\"detail\":\"the shop's API gave no valid answer; retry in a few seconds\"}"
            http-error status 503 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/unavailable\",\"title\":\"Service Unavailable\",\"status\":503,\"detail\":\"no instance of the shop's API is available; retry in a few seconds\"}"
            http-error status 504 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/gateway-timeout\",\"title\":\"Gateway Timeout\",\"status\":504,\"detail\":\"the shop's API did not answer in time\"}"

          # The public port, in TCP mode: edge.lua reads the head of each
          # connection's first request before HTTP parsing and answers a
          # malformed request line or header (a control character, a space
          # in the path, a header without a name) in problem+json; the rest
          # goes on to frontend http, with the client's address (PROXY
          # protocol). A malformed request later on a kept-alive connection
          # still gets HAProxy's built-in page (see defaults).
          frontend edge
            mode tcp
            option tcplog
            # A connection that went well is logged once, by frontend http
            # (its request); only a failed one is logged here.
            option dontlog-normal
            bind {{ env "NOMAD_ADDR_http" }}${var.accept_proxy ? " accept-proxy" : ""}
            tcp-request inspect-delay 10s
            tcp-request content use-service lua.bad_request if { lua.request_head -m str bad }
            tcp-request content use-service lua.headers_too_large if { lua.request_head -m str large }
            tcp-request content accept if { lua.request_head -m str good }
            # Not decided yet (the head is incomplete): WAIT_END waits for
            # more data, which runs the rules again, or for the delay.
            tcp-request content use-service lua.request_timeout if WAIT_END
            default_backend http

          backend http
            mode tcp
            server http abns@edge-{{ env "NOMAD_ALLOC_ID" }} send-proxy-v2

          frontend http
            bind abns@edge-{{ env "NOMAD_ALLOC_ID" }} accept-proxy
            # At a reload (a new leaf, a new set of aggregators), the old
            # process keeps its idle keep-alive connections until their next
            # request, answers it with Connection: close, then closes: a
            # client that sends on a connection at the instant of a reload
            # gets its answer, not an EOF (one checkout did, during a CA
            # rotation in CI). hard-stop-after still bounds the old process.
            # HTTP mode only: frontend edge is a TCP tunnel into this one.
            option idle-close-on-response
            # The request id that every service logs and passes on: the
            # client's X-Request-ID when it is one (the services' own rule:
            # 1 to 128 of these characters, sent once), else a new UUID.
            unique-id-format %[uuid()]
            acl request_id_ok req.fhdr_cnt(x-request-id) eq 1
            acl request_id_ok_chars req.fhdr(x-request-id) -m reg ^[A-Za-z0-9._:/+=-]{1,128}$
            http-request set-header X-Request-ID %[unique-id] unless request_id_ok request_id_ok_chars
            http-request set-var(txn.request_id) req.fhdr(x-request-id)
            http-request set-var(txn.path) path
            # The access log, one JSON line per request, named like the
            # services' fields so that one query finds them all; its time
            # is the line's own (Docker's log driver stamps each line).
            log-format "{\"@level\":\"info\",\"@message\":\"request\",\"service\":\"edge\",\"request_id\":\"%[var(txn.request_id),json(utf8s)]\",\"method\":\"%HM\",\"path\":\"%[var(txn.path),json(utf8s)]\",\"status\":%ST,\"bytes\":%B,\"duration_ms\":%Ta,\"remote\":\"%ci\",\"server\":\"%s\",\"termination\":\"%tsc\"}"
            # Any path with an "internal" segment, decoded and in any case,
            # so that //internal, /./internal or /%69nternal do not pass.
            acl internal path,url_dec -m reg -i (^|/)internal(/|$)
            http-request return status 404 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/not-found\",\"title\":\"Not Found\",\"status\":404,\"detail\":\"no such path\"}" if internal
            # A control character in a header value (HAProxy's parser lets
            # all but NUL, CR and LF through) would be refused by Go's
            # net/http in text/plain before any handler: refused here, in
            # the shop's format. req.hdrs holds the CRLFs between headers,
            # which the class leaves out; a tab is allowed.
            http-request return status 400 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/invalid-request\",\"title\":\"Bad Request\",\"status\":400,\"detail\":\"a request header contains a control character\"}" if { req.hdrs -m reg '[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]' }
            # Who the client is, for the rate limit and auth's lock-out, is
            # the address HAProxy saw and nothing the client wrote: every
            # client-sent forwarding header is replaced or removed, or a
            # forged X-Forwarded-For would give each request a fresh bucket.
            http-request del-header Forwarded
            http-request del-header X-Real-IP
            http-request del-header X-Client-Address
            http-request set-header X-Forwarded-For %[src]
            http-request set-header X-Forwarded-Proto http
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
            # What Go's net/http answers by itself, before any handler, is
            # text/plain (the aggregator's own errors are problem+json):
            # rewritten in the shop's format, status kept.
            acl problem res.hdr(content-type) -m beg application/problem+json
            http-response return status 400 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/invalid-request\",\"title\":\"Bad Request\",\"status\":400,\"detail\":\"the request is not valid HTTP: check its request line and headers\"}" if { status 400 } !problem
            http-response return status 417 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/expectation-failed\",\"title\":\"Expectation Failed\",\"status\":417,\"detail\":\"the only Expect the shop supports is 100-continue\"}" if { status 417 } !problem
            http-response return status 431 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/headers-too-large\",\"title\":\"Request Header Fields Too Large\",\"status\":431,\"detail\":\"the request's headers are too large\"}" if { status 431 } !problem
            http-response return status 501 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/not-implemented\",\"title\":\"Not Implemented\",\"status\":501,\"detail\":\"the request uses an HTTP feature the shop does not support\"}" if { status 501 } !problem
            http-response return status 505 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/http-version-not-supported\",\"title\":\"HTTP Version Not Supported\",\"status\":505}" if { status 505 } !problem
            # In the mesh: mutual TLS with the edge's Connect leaf, the
            # aggregator's certificate checked against the Connect CA (HAProxy
            # 2.6 cannot match its SPIFFE URI: which instance is the
            # aggregator is Consul's catalogue's word).
            default-server check inter 2s fall 2 rise 2${var.mesh ? " ssl verify required ca-file {{ env \"NOMAD_SECRETS_DIR\" }}/mesh-ca.pem crt {{ env \"NOMAD_SECRETS_DIR\" }}/mesh.pem" : ""}
            # One line per passing instance, named by its address and port
            # (X-Served-By). A new HAProxy worker starts with every server
            # known and up; resolving them itself (server-template over
            # DNS) left each reload's first requests with no server, a 503.
            {{- range service "aggregator" }}
            server agg-{{ .Address }}-{{ .Port }} {{ .Address }}:{{ .Port }}
            {{- end }}

          frontend admin
            bind {{ env "NOMAD_ADDR_admin" }}
            http-request return status 200 content-type text/plain string "live" if { path /health/live }
            http-request return status 404 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/not-found\",\"title\":\"Not Found\",\"status\":404,\"detail\":\"no such path\"}"
        EOT
      }

      # The stats page, behind a password (a 401 without it).
      template {
        destination   = "${NOMAD_SECRETS_DIR}/stats.cfg"
        perms         = "0600"
        uid           = 998 # haproxy in images/haproxy.Dockerfile
        gid           = 998
        change_mode   = "signal"
        change_signal = "SIGUSR2"
        data          = <<-EOT
          frontend stats
            mode http
            bind {{ env "NOMAD_ADDR_stats" }}
            stats enable
            stats uri /stats
            stats refresh 5s
            stats realm edge
            stats auth operator:{{ with nomadVar "nomad/jobs/edge" }}{{ .stats_password }}{{ end }}
            http-request return status 404 content-type application/problem+json string "{\"type\":\"https://mylittleshopping.dev/problems/not-found\",\"title\":\"Not Found\",\"status\":404,\"detail\":\"no such path\"}" unless { path_beg /stats }
        EOT
      }

      # The answers HAProxy gives from Lua (frontend edge): a request its
      # HTTP/1 parser would refuse with a text/html page, refused in the
      # shop's format first.
      # The edge's identity in the mesh, and the CA roots: renewed and
      # rotated by Consul, and reloaded without dropping a connection.
      # (HAProxy's runtime API could swap them in place, but 2.6.12
      # crashes when a CA file is committed after a certificate that
      # followed an earlier CA file commit: exactly a CA rotation.)
      template {
        destination   = "${NOMAD_SECRETS_DIR}/mesh.pem"
        perms         = "0600"
        uid           = 998 # haproxy in images/haproxy.Dockerfile
        gid           = 998
        change_mode   = "signal"
        change_signal = "SIGUSR2"
        data          = "{{ with caLeaf \"edge\" }}{{ .CertPEM }}{{ .PrivateKeyPEM }}{{ end }}"
      }

      template {
        destination   = "${NOMAD_SECRETS_DIR}/mesh-ca.pem"
        change_mode   = "signal"
        change_signal = "SIGUSR2"
        data          = "{{ range caRoots }}{{ .RootCertPEM }}{{ end }}"
      }

      template {
        destination   = "${NOMAD_TASK_DIR}/edge.lua"
        change_mode   = "signal"
        change_signal = "SIGUSR2"
        data          = <<-EOT
          local function problem(status, title, slug, detail)
            local body = string.format('{"type":"https://mylittleshopping.dev/problems/%s","title":"%s","status":%d,"detail":"%s"}', slug, title, status, detail)
            return string.format("HTTP/1.1 %d %s\r\ncontent-type: application/problem+json\r\ncontent-length: %d\r\ncache-control: no-store\r\nconnection: close\r\n\r\n%s", status, title, #body, body)
          end

          local answers = {
            bad_request = problem(400, "Bad Request", "invalid-request", "the request is not valid HTTP/1.1: its request line or a header is malformed or contains a control character"),
            headers_too_large = problem(431, "Request Header Fields Too Large", "headers-too-large", "the request's headers are too large"),
            request_timeout = problem(408, "Request Timeout", "request-timeout", "the request did not arrive in time; send it again"),
          }
          for name, answer in pairs(answers) do
            core.register_service(name, "tcp", function(applet)
              core.Info("edge: refused the request of " .. tostring(applet.f:src()) .. ": " .. name)
              applet:send(answer)
            end)
          end

          -- A control character but tab; CR is cut from the end of lines.
          local ctl = "[\0-\8\10-\31\127]"
          local token = "^[%w!#$%%&'*+.^_`|~-]+"
          -- Below tune.bufsize (16 KiB), which HAProxy's own parser needs
          -- the whole head in.
          local max_head = 15000

          local function bad_line(line, first)
            if first then
              return not line:match(token .. " [^%s%c]+ HTTP/%d%.%d$")
            end
            local name_end = select(2, line:find(token))
            return name_end == nil or line:sub(name_end + 1, name_end + 1) ~= ":" or line:find(ctl, name_end + 2) ~= nil
          end

          -- request_head judges the head of a connection's first request:
          -- "good", "bad", "large", or "" while it is incomplete (a partial
          -- line already malformed is "bad" at once).
          core.register_fetches("request_head", function(txn)
            local data = txn.req:data() or ""
            local pos, first = 1, true
            while true do
              local nl = data:find("\n", pos, true)
              local line = data:sub(pos, (nl or #data + 1) - 1):gsub("\r$", "")
              if nl == nil then
                if line:find(ctl) or (first and line:find("  ", 1, true)) then return "bad" end
                if #data >= max_head then return "large" end
                return ""
              end
              if line == "" then
                return first and "bad" or "good"
              end
              if bad_line(line, first) then return "bad" end
              pos, first = nl + 1, false
            end
          end)
        EOT
      }

      resources {
        cpu    = 200
        memory = 64
      }
    }
  }
}
