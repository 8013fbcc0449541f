output "shop_url" {
  value = module.cluster.shop_url
}

output "nomad_ui" {
  value = module.cluster.nomad_ui
}

output "consul_ui" {
  value = module.cluster.consul_ui
}

output "hosts" {
  value = module.cluster.hosts
}
