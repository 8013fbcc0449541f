output "shop_url" {
  value = "http://${aws_lb.shop.dns_name}"
}

output "nomad_ui" {
  value = "http://${aws_instance.host[0].public_ip}:4646/ui"
}

output "consul_ui" {
  value = "http://${aws_instance.host[0].public_ip}:8500/ui"
}

output "hosts" {
  value = aws_instance.host[*].public_ip
}
