output "id" {
  value       = one(concat(terraform_data.local[*].id, terraform_data.remote[*].id))
  description = "Changes whenever the agents are (re)installed: jobs deployed on the previous ones are gone."
}

output "nomad_addr" {
  value = "http://${local.address}:${var.mode == "local" ? var.ports.nomad_http : 4646}"
}

output "consul_http_addr" {
  value = "http://${local.address}:${var.mode == "local" ? var.ports.consul_http : 8500}"
}

output "consul_dns_addr" {
  value       = "127.0.0.1:${var.mode == "local" ? var.ports.consul_dns : 8600}"
  description = "Consul DNS as the tasks of this host reach it (their local agent)."
}

output "releases_dir" {
  value       = var.mode == "local" ? "${var.state_dir}/releases" : "/usr/local/lib/mylittleshopping/releases"
  description = "Where the jobs' binaries are on the clients."
}
