# shop deploys the Mylittleshopping jobs (nomad/*.nomad.hcl) on a running
# Nomad + Consul cluster, in order, each waited for until healthy:
#
#   secrets (Nomad variables, random, made if missing; the backups' cipher
#   passphrases kept by the operator in keys_file)
#   → objectstore (backup repo2, when no cloud bucket is given)
#   → databases (<svc>-db, restored from the latest backup when their volume
#     is empty) → their backup jobs (periodic: full, incr, dump, drill;
#     parameterized: restore) → mail sink, sandbox processor
#   → auth, inventory, orders, payment → aggregator → edge (HAProxy)
#
# and, after the edge, submitted without waiting (`make up` is done when
# the shop is healthy; on 2 cores, deployed beside the shop they had made
# it 2m13s instead of about 1m30s), logs and metrics: VictoriaLogs,
# VictoriaMetrics with vmalert → the log collector (a system job: one per
# client), when their images are in the manifest;
#
# and stops and purges them in the reverse order on destroy. It uses only
# terraform_data and local-exec (scripts/nomad-deploy.sh, which talks to
# NOMAD_ADDR and CONSUL_HTTP_ADDR), so no provider is needed.
#
# A job is submitted again only when its spec or its variables changed, its
# image among them (tagged by its content, scripts/images.sh): a second
# apply changes nothing, and a new build rolls out as a Nomad deployment
# (one instance at a time, auto-revert on failed checks).

locals {
  nomad_dir = "${var.repo_root}/nomad"
  deploy    = "${var.repo_root}/scripts/nomad-deploy.sh"
  env = {
    SHOP_KEYS_FILE   = var.keys_file
    NOMAD_ADDR       = var.nomad_addr
    CONSUL_HTTP_ADDR = var.consul_http_addr
    DEPLOY_TIMEOUT   = var.deploy_timeout
    # The operator's tokens, read by the scripts from their files.
    NOMAD_TOKEN_FILE       = var.nomad_token_file
    CONSUL_HTTP_TOKEN_FILE = var.consul_token_file
    # The CAs the agents' HTTPS certificates are checked against.
    NOMAD_CACERT  = var.nomad_ca_file
    CONSUL_CACERT = var.consul_ca_file
  }

  databases       = ["auth", "inventory", "orders", "payment"]
  services        = ["auth", "inventory", "orders", "payment"]
  with_aggregator = contains(keys(var.images), "aggregator")
  with_logs       = contains(keys(var.images), "victoria-logs") && contains(keys(var.images), "otelcol")
  with_metrics    = contains(keys(var.images), "victoria-metrics") && contains(keys(var.images), "vmalert")
  with_mailsink   = var.mailsink_port >= 0
  with_sandbox    = var.processor_url == ""

  # Backups: repo2 is the objectstore job unless a cloud bucket is given.
  with_objectstore = var.repo2.endpoint == ""
  repo2_vars = local.with_objectstore ? {
    repo2_endpoint = "127.0.0.1"
    repo2_port     = var.objectstore_port
    } : {
    repo2_endpoint  = var.repo2.endpoint
    repo2_port      = var.repo2.port
    repo2_region    = var.repo2.region
    repo2_uri_style = var.repo2.uri_style
    repo2_ca        = false
  }
  backup_vars = merge(local.repo2_vars, {
    image            = var.images.postgres
    consul_http_addr = var.consul_http_addr
    retention_full   = var.backup.retention_full
  })
  backup_kinds = ["full", "incr", "dump", "drill", "restore"]
  backup_cron = {
    full  = var.backup.full_cron
    incr  = var.backup.incr_cron
    dump  = var.backup.dump_cron
    drill = var.backup.drill_cron
  }

  # name => { file, vars } for each stage.
  objectstore_jobs = local.with_objectstore ? { objectstore = {
    file = "objectstore.nomad.hcl"
    vars = { image = var.images.seaweedfs, port = var.objectstore_port }
  } } : {}
  database_jobs = { for s in local.databases : "${s}-db" => {
    file = "postgres.nomad.hcl"
    vars = merge(local.backup_vars, { service = s }, { for kind, cron in local.backup_cron : "${kind}_cron" => cron }, local.with_objectstore ? {} : { repo2_bucket = "${var.repo2.bucket_prefix}-${s}" })
  } }
  backup_jobs = { for p in setproduct(local.databases, local.backup_kinds) :
    (p[1] == "restore" ? "${p[0]}-db-restore" : "${p[0]}-db-backup-${p[1]}") => {
      file = "backup.nomad.hcl"
      vars = merge(local.backup_vars, {
        service        = p[0]
        kind           = p[1]
        cron           = lookup(local.backup_cron, p[1], "")
        dump_keep_days = var.backup.dump_keep_days
      }, local.with_objectstore ? {} : { repo2_bucket = "${var.repo2.bucket_prefix}-${p[0]}" })
  } }
  support_jobs = merge(
    local.with_mailsink ? { mailsink = {
      file = "mailsink.nomad.hcl"
      vars = { image = var.images.mailsink, port = var.mailsink_port, log_level = var.log_level, consul_http_addr = var.consul_http_addr, mesh = var.mesh }
    } } : {},
    local.with_sandbox ? { sandbox-processor = {
      file = "sandbox-processor.nomad.hcl"
      vars = { image = var.images.sandbox-processor, log_level = var.log_level, consul_http_addr = var.consul_http_addr, mesh = var.mesh }
    } } : {},
  )
  service_jobs = { for s in local.services : s => {
    file = "service.nomad.hcl"
    vars = {
      service          = s
      image            = var.images[s]
      instances        = lookup(var.instances, s, 2)
      log_level        = var.log_level
      mesh             = var.mesh
      consul_http_addr = var.consul_http_addr
      consul_dns_addr  = var.consul_dns_addr
      # services.tf
      env     = jsonencode(local.service_settings[s].env)
      secrets = jsonencode(local.service_settings[s].secrets)
      memory  = local.service_settings[s].memory
    }
  } }
  aggregator_jobs = local.with_aggregator ? { aggregator = {
    file = "aggregator.nomad.hcl"
    vars = merge({
      image            = var.images.aggregator
      consul_http_addr = var.consul_http_addr
      instances        = lookup(var.instances, "aggregator", 2)
      consul_dns_addr  = var.consul_dns_addr
      log_level        = var.log_level
      trusted_proxies  = join(",", var.trusted_proxies)
      mesh             = var.mesh
    }, length(var.aggregator_extra_env) > 0 ? { extra_env = jsonencode(var.aggregator_extra_env) } : {})
  } } : {}
  # Logs and metrics, beside the shop. The tasks reach their host's Consul
  # agent on loopback, on the port the operator's address names (the same
  # agent on the local cluster, 8500 on every cloud host).
  consul_local_addr = "127.0.0.1:${regex(":([0-9]+)/?$", var.consul_http_addr)[0]}"
  observability_jobs = merge(
    local.with_logs ? { logs = {
      file = "logs.nomad.hcl"
      vars = { image = var.images.victoria-logs, port = var.logs_port, retention = var.log_retention }
    } } : {},
    local.with_metrics ? { metrics = {
      file = "metrics.nomad.hcl"
      vars = {
        image               = var.images.victoria-metrics
        vmalert_image       = var.images.vmalert
        port                = var.metrics_port
        consul_addr         = local.consul_local_addr
        order_stuck_seconds = var.order_stuck_seconds
      }
    } } : {},
  )
  collector_jobs = local.with_logs ? { log-collector = {
    file = "log-collector.nomad.hcl"
    vars = { image = var.images.otelcol }
  } } : {}

  edge_jobs = { edge = {
    file = "edge.nomad.hcl"
    vars = merge({ image = var.images.haproxy }, { port = var.edge_port, instances = var.edge_instances, accept_proxy = var.edge_accept_proxy, mesh = var.mesh })
  } }

  all_jobs = merge(local.objectstore_jobs, local.database_jobs, local.backup_jobs, local.support_jobs, local.service_jobs, local.aggregator_jobs, local.edge_jobs,
  local.observability_jobs, local.collector_jobs)
  # The command that submits a job: its spec and its variables (the image
  # among them, tagged by its content).
  run = { for name, j in local.all_jobs : name => join(" ", concat(
    ["'${local.deploy}' run '${local.nomad_dir}/${j.file}'"],
    [for k, v in j.vars : "-var '${k}=${v}'"],
  )) }
  # The logs and metrics are submitted without waiting (nomad-deploy.sh
  # submit): `make up` is done when the shop is healthy.
  submit = { for name, j in merge(local.observability_jobs, local.collector_jobs) : name => replace(local.run[name], "' run '", "' submit '") }
  # The shop's long-running jobs are started stage by stage, each stage as
  # soon as the one it needs passes in Consul (nomad-deploy.sh start);
  # their deployments are waited for once, together, at the end (settled),
  # rather than each stage's min_healthy_time in turn.
  started_jobs = merge(local.objectstore_jobs, local.database_jobs, local.support_jobs, local.service_jobs, local.aggregator_jobs, local.edge_jobs)
  start        = { for name, j in local.started_jobs : name => replace(local.run[name], "' run '", "' start '") }
  trigger = { for name, j in local.all_jobs : name => {
    cluster = var.cluster_id
    spec    = filesha256("${local.nomad_dir}/${j.file}")
    vars    = j.vars
  } }
}

# --- the mesh's intentions ---------------------------------------------------
#
# Who may call whom (nomad/intentions/*.hcl, default deny), written before
# any service starts; again whenever a file changes.

resource "terraform_data" "intentions" {
  triggers_replace = {
    cluster = var.cluster_id
    files   = { for f in fileset("${local.nomad_dir}/intentions", "*.hcl") : f => filesha256("${local.nomad_dir}/intentions/${f}") }
  }
  provisioner "local-exec" {
    command     = "'${var.repo_root}/scripts/intentions.sh'"
    environment = local.env
  }
}

# --- secrets ---------------------------------------------------------------

resource "terraform_data" "secrets" {
  # Again when the script changes: a key added in a later version is made.
  triggers_replace = { cluster = var.cluster_id, script = filesha256("${var.repo_root}/scripts/shop-secrets.sh") }
  input = {
    script = "${var.repo_root}/scripts/shop-secrets.sh"
    env = merge(local.env, {
      SHOP_REPO2_S3_KEY    = var.repo2_credentials.key
      SHOP_REPO2_S3_SECRET = var.repo2_credentials.secret
    })
  }

  provisioner "local-exec" {
    command     = "'${self.input.script}' ensure"
    environment = self.input.env
  }

  provisioner "local-exec" {
    when        = destroy
    command     = "'${self.input.script}' delete"
    environment = self.input.env
  }
}

# --- stop on destroy, in reverse order ---------------------------------------
#
# Each job has a resource whose only work is its destroy provisioner, so
# that replacing a job's deploy resource (a new version) never stops it.

resource "terraform_data" "objectstore_stop" {
  for_each   = local.objectstore_jobs
  depends_on = [terraform_data.secrets]
  input      = { deploy = local.deploy, job = each.key, env = local.env }
  provisioner "local-exec" {
    when        = destroy
    command     = "'${self.input.deploy}' stop '${self.input.job}'"
    environment = self.input.env
  }
}

resource "terraform_data" "database_stop" {
  for_each   = local.database_jobs
  depends_on = [terraform_data.secrets, terraform_data.objectstore_stop]
  input      = { deploy = local.deploy, job = each.key, env = local.env }
  provisioner "local-exec" {
    when        = destroy
    command     = "'${self.input.deploy}' stop '${self.input.job}'"
    environment = self.input.env
  }
}

resource "terraform_data" "backup_stop" {
  for_each   = local.backup_jobs
  depends_on = [terraform_data.database_stop]
  input      = { deploy = local.deploy, job = each.key, env = local.env }
  provisioner "local-exec" {
    when        = destroy
    command     = "'${self.input.deploy}' stop '${self.input.job}'"
    environment = self.input.env
  }
}

resource "terraform_data" "support_stop" {
  for_each   = local.support_jobs
  depends_on = [terraform_data.secrets]
  input      = { deploy = local.deploy, job = each.key, env = local.env }
  provisioner "local-exec" {
    when        = destroy
    command     = "'${self.input.deploy}' stop '${self.input.job}'"
    environment = self.input.env
  }
}

resource "terraform_data" "service_stop" {
  for_each   = local.service_jobs
  depends_on = [terraform_data.database_stop, terraform_data.support_stop]
  input      = { deploy = local.deploy, job = each.key, env = local.env }
  provisioner "local-exec" {
    when        = destroy
    command     = "'${self.input.deploy}' stop '${self.input.job}'"
    environment = self.input.env
  }
}

resource "terraform_data" "aggregator_stop" {
  for_each   = local.aggregator_jobs
  depends_on = [terraform_data.service_stop]
  input      = { deploy = local.deploy, job = each.key, env = local.env }
  provisioner "local-exec" {
    when        = destroy
    command     = "'${self.input.deploy}' stop '${self.input.job}'"
    environment = self.input.env
  }
}

resource "terraform_data" "edge_stop" {
  for_each   = local.edge_jobs
  depends_on = [terraform_data.aggregator_stop, terraform_data.service_stop]
  input      = { deploy = local.deploy, job = each.key, env = local.env }
  provisioner "local-exec" {
    when        = destroy
    command     = "'${self.input.deploy}' stop '${self.input.job}'"
    environment = self.input.env
  }
}

resource "terraform_data" "observability_stop" {
  for_each   = local.observability_jobs
  depends_on = [terraform_data.secrets]
  input      = { deploy = local.deploy, job = each.key, env = local.env }
  provisioner "local-exec" {
    when        = destroy
    command     = "'${self.input.deploy}' stop '${self.input.job}'"
    environment = self.input.env
  }
}

resource "terraform_data" "collector_stop" {
  for_each   = local.collector_jobs
  depends_on = [terraform_data.observability_stop]
  input      = { deploy = local.deploy, job = each.key, env = local.env }
  provisioner "local-exec" {
    when        = destroy
    command     = "'${self.input.deploy}' stop '${self.input.job}'"
    environment = self.input.env
  }
}

# --- deploy, in order ----------------------------------------------------------

resource "terraform_data" "objectstore" {
  for_each         = local.objectstore_jobs
  depends_on       = [terraform_data.secrets, terraform_data.objectstore_stop]
  triggers_replace = local.trigger[each.key]
  provisioner "local-exec" {
    command     = local.start[each.key]
    environment = local.env
  }
}

resource "terraform_data" "databases" {
  for_each = local.database_jobs
  # Not after the objectstore: on a new host, a database restoring from
  # repo2 waits for it (nomad/postgres.nomad.hcl), and the archive pushes
  # to it retry; starting both at once is what makes make up quick.
  depends_on       = [terraform_data.secrets, terraform_data.database_stop]
  triggers_replace = local.trigger[each.key]
  provisioner "local-exec" {
    command     = local.start[each.key]
    environment = local.env
  }
}

resource "terraform_data" "backups" {
  for_each         = local.backup_jobs
  depends_on       = [terraform_data.databases, terraform_data.backup_stop]
  triggers_replace = local.trigger[each.key]
  provisioner "local-exec" {
    command     = local.run[each.key]
    environment = local.env
  }
}

resource "terraform_data" "support" {
  for_each         = local.support_jobs
  depends_on       = [terraform_data.secrets, terraform_data.intentions, terraform_data.support_stop]
  triggers_replace = local.trigger[each.key]
  provisioner "local-exec" {
    command     = local.start[each.key]
    environment = local.env
  }
}

resource "terraform_data" "services" {
  for_each         = local.service_jobs
  depends_on       = [terraform_data.databases, terraform_data.support, terraform_data.intentions, terraform_data.service_stop]
  triggers_replace = local.trigger[each.key]
  provisioner "local-exec" {
    command     = local.start[each.key]
    environment = local.env
  }
}

resource "terraform_data" "aggregator" {
  for_each         = local.aggregator_jobs
  depends_on       = [terraform_data.services, terraform_data.aggregator_stop]
  triggers_replace = local.trigger[each.key]
  provisioner "local-exec" {
    command     = local.start[each.key]
    environment = local.env
  }
}

resource "terraform_data" "edge" {
  for_each         = local.edge_jobs
  depends_on       = [terraform_data.aggregator, terraform_data.services, terraform_data.edge_stop]
  triggers_replace = local.trigger[each.key]
  provisioner "local-exec" {
    command     = local.start[each.key]
    environment = local.env
  }
}

# --- every deployment settled --------------------------------------------------
#
# Each stage above let the next start as soon as its instances passed in
# Consul; here every one of those deployments must succeed (its
# min_healthy_time passed, nothing reverted) before the apply is done.

resource "terraform_data" "settled" {
  depends_on       = [terraform_data.objectstore, terraform_data.databases, terraform_data.support, terraform_data.services, terraform_data.aggregator, terraform_data.edge]
  triggers_replace = { for name in keys(local.started_jobs) : name => local.trigger[name] }
  provisioner "local-exec" {
    command     = "'${local.deploy}' wait ${join(" ", [for name in sort(keys(local.started_jobs)) : "'${name}'"])}"
    environment = local.env
  }
}

# --- logs and metrics, after the shop ---------------------------------------------
#
# Submitted together once the edge is healthy, and not waited for (the
# e2e's health step sees them healthy): the collector's template names
# VictoriaLogs once Consul has it, and its queue keeps the lines until then.

resource "terraform_data" "observability" {
  for_each         = local.observability_jobs
  depends_on       = [terraform_data.edge, terraform_data.observability_stop]
  triggers_replace = local.trigger[each.key]
  provisioner "local-exec" {
    command     = local.submit[each.key]
    environment = local.env
  }
}

resource "terraform_data" "collector" {
  for_each         = local.collector_jobs
  depends_on       = [terraform_data.edge, terraform_data.collector_stop]
  triggers_replace = local.trigger[each.key]
  provisioner "local-exec" {
    command     = local.submit[each.key]
    environment = local.env
  }
}
