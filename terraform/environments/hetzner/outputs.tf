output "shop_url" {
  value = "http://${hcloud_load_balancer.shop.ipv4}"
}

output "nomad_ui" {
  value = "http://${hcloud_server.host[0].ipv4_address}:4646/ui"
}

output "consul_ui" {
  value = "http://${hcloud_server.host[0].ipv4_address}:8500/ui"
}

output "hosts" {
  value = hcloud_server.host[*].ipv4_address
}
