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

output "jobs" {
  value = module.shop.jobs
}
