# What differs between the four services' jobs: they all run
# nomad/service.nomad.hcl, with these settings, the Nomad variables they
# read (scripts/shop-secrets.sh makes them) and their resources. What they
# share (ports, checks, mesh, updates, the database's URL) is in the job.

locals {
  # The mail sink (found in Consul, called in the mesh) unless Mailjet's
  # own address is given; the sandbox processor likewise.
  mailjet_base_url = var.mailjet_base_url != "" ? var.mailjet_base_url : "http://mailsink.service.consul"
  processor_url    = var.processor_url != "" ? var.processor_url : "http://sandbox-processor.service.consul"

  # The services that send mail read Mailjet's keys from their own job's
  # variable (nomad/jobs/<service>).
  mail_secrets = { for s in ["auth", "orders"] : s => {
    MAILJET_API_KEY_PUBLIC  = { path = "nomad/jobs/${s}", key = "mailjet_api_key_public" }
    MAILJET_API_KEY_PRIVATE = { path = "nomad/jobs/${s}", key = "mailjet_api_key_private" }
  } }
  mail_env = {
    MAILJET_BASE_URL = local.mailjet_base_url
    MAIL_FROM_EMAIL  = var.mail_from
  }

  service_settings = {
    auth = {
      env = merge(local.mail_env, {
        AUTH_VERIFY_URL = "${var.public_url}/v1/verify-email"
        AUTH_RESET_URL  = "${var.public_url}/v1/password/reset"
        # Hashes in flight (memory is sized for them, see below) and
        # password requests in progress at once, database work included.
        # Two hashes per instance leave the task's other goroutines a CPU
        # on a 2-core host: with 4 and 16, 200 wrong logins on one account
        # kept the admitted ones up to 2.75 s in auth (the account's
        # throttle row and the CPU queued them), and one passed the
        # aggregator's 3 s; with 2 and 8 all 200 answered 401 within 1.5 s
        # (e2e's storm, through the edge).
        AUTH_HASH_CONCURRENCY       = "2"
        AUTH_CREDENTIAL_CONCURRENCY = "8"
        GOMEMLIMIT                  = "200MiB"
        AUTH_BOOTSTRAP_ADMIN_EMAIL  = var.admin_email
        AUTH_DEMO_BUYER_EMAIL       = var.demo.buyer_email
        AUTH_DEMO_SELLERS           = tostring(var.demo.buyer_email == "" ? 0 : var.demo.sellers)
      })
      secrets = merge(local.mail_secrets.auth, {
        AUTH_SIGNING_KEY              = { path = "nomad/jobs/auth", key = "signing_key" }
        AUTH_BOOTSTRAP_ADMIN_PASSWORD = { path = "nomad/jobs/auth", key = "admin_password" }
        }, var.demo.buyer_email == "" ? {} : {
        AUTH_DEMO_BUYER_PASSWORD = { path = "nomad/jobs/auth", key = "demo_buyer_password" }
      })
      # argon2id takes 19 MiB per hash in flight and at most
      # AUTH_HASH_CONCURRENCY = 2 are (the others queue, then answer 503
      # busy): 2 × 19 = 38 MiB, plus ~40 MiB for the rest (runtime, pgx
      # pool of 8, HTTP buffers, the goroutines of queued requests) is ~78
      # MiB live. Between collections Go lets the heap grow to twice the
      # live set; GOMEMLIMIT = 200MiB makes it collect before 200 MiB, and
      # 256 MiB leaves 56 MiB above it for stacks and memory outside the
      # heap (sized for 4 hashes, which the limit still holds).
      # services/auth's TestHashingIsBounded reads these numbers and holds
      # a flood of logins and resets to them.
      memory = 256
    }
    inventory = {
      env = {
        # Only into an empty catalogue (services/inventory/README.md).
        INVENTORY_DEMO_PRODUCTS = tostring(var.demo.products)
        INVENTORY_DEMO_SELLERS  = tostring(var.demo.sellers)
      }
      secrets = {}
      memory  = 128
    }
    orders = {
      env = merge(local.mail_env, {
        ORDERS_ORDER_URL = "${var.public_url}/v1/orders"
      })
      secrets = local.mail_secrets.orders
      memory  = 128
    }
    payment = {
      env = {
        PAYMENT_PROCESSOR_URL = local.processor_url
      }
      secrets = {
        PAYMENT_PROCESSOR_API_KEY = { path = "shop/payment/processor", key = "api_key" }
        PAYMENT_FINGERPRINT_KEY   = { path = "nomad/jobs/payment", key = "fingerprint_key" }
      }
      memory = 128
    }
  }
}
