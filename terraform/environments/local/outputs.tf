output "shop_url" {
  value       = "http://127.0.0.1:${var.edge_port}"
  description = "The shop's public API, through HAProxy."
  depends_on  = [module.shop]
}

output "consul_ui" {
  value = "${module.host.consul_http_addr}/ui"
}

output "nomad_ui" {
  value = "${module.host.nomad_addr}/ui"
}

output "consul_dns" {
  value = module.host.consul_dns_addr
}

output "mailsink_url" {
  value       = "http://127.0.0.1:${var.mailsink_port}/messages"
  description = "The emails the shop sent (the mail sink stands in for Mailjet)."
}

output "admin" {
  value       = "admin@shop.example.com; its password: nomad var get -item=admin_password nomad/jobs/auth"
  description = "The bootstrap admin account."
}

output "demo_buyer" {
  value       = var.demo.buyer_email == "" ? "none (TF_VAR_demo)" : "${var.demo.buyer_email}; its password: nomad var get -item=demo_buyer_password nomad/jobs/auth"
  description = "The demo buyer, who can log in and check out the demo catalogue at once."
}

output "logs_ui" {
  value       = module.shop.with_logs ? "http://127.0.0.1:${var.logs_port}/select/vmui  (or: make logs Q='request_id:\"…\"')" : "none (no victoria-logs image: make images)"
  description = "VictoriaLogs' web UI: every job's logs, LogsQL."
  depends_on  = [module.shop]
}

output "metrics_ui" {
  value       = module.shop.with_metrics ? "http://127.0.0.1:${var.metrics_port}/vmui" : "none (no victoria-metrics image: make images)"
  description = "VictoriaMetrics' vmui: the services' metrics."
  depends_on  = [module.shop]
}

output "alerts_ui" {
  value       = module.shop.with_metrics ? "http://127.0.0.1:${var.metrics_port}/vmui/#/rules" : "none"
  description = "The alert rules and what fires (vmalert, through VictoriaMetrics)."
  depends_on  = [module.shop]
}

output "jobs" {
  value = module.shop.jobs
}
