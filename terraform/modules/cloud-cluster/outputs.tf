output "shop_url" {
  value = var.public_url
}

output "nomad_ui" {
  value = "https://${var.hosts[0].public_ip}:4646/ui"
}

output "consul_ui" {
  value = "https://${var.hosts[0].public_ip}:8500/ui"
}

output "hosts" {
  value = var.hosts[*].public_ip
}
