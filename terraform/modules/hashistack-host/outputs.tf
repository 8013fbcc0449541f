output "id" {
  value       = one(concat(terraform_data.local[*].id, terraform_data.remote[*].id))
  description = "Changes whenever the agents are (re)installed: jobs deployed on the previous ones are gone. Read only once every image is loaded on the host (remote): a job is never submitted before its image is there."
  # A new tag does not change the id (the jobs whose image changed are
  # submitted again by shop), but it is loaded first.
  depends_on = [terraform_data.images, terraform_data.acl]
}

# Both APIs speak HTTPS only, with certificates of the cluster's CAs.
output "nomad_addr" {
  value = "https://${local.address}:${var.mode == "local" ? var.ports.nomad_http : 4646}"
}

output "consul_http_addr" {
  value = "https://${local.address}:${var.mode == "local" ? var.ports.consul_http : 8500}"
}

# The CAs the agents' certificates are checked against (public), as files
# on this machine.
output "nomad_ca_file" {
  value = var.mode == "local" ? "${var.state_dir}/tls/nomad-agent-ca.pem" : "${var.keys_dir}/nomad-agent-ca.pem"
}

output "consul_ca_file" {
  value = var.mode == "local" ? "${var.state_dir}/tls/consul-agent-ca.pem" : "${var.keys_dir}/consul-agent-ca.pem"
}

output "consul_dns_addr" {
  value       = "127.0.0.1:${var.mode == "local" ? var.ports.consul_dns : 8600}"
  description = "Consul DNS as the tasks of this host reach it (their local agent)."
}

# The operator's ACL tokens (management), as files on this machine: the
# shop's deploy scripts read them (NOMAD_TOKEN_FILE, CONSUL_HTTP_TOKEN_FILE),
# and no token goes into Terraform's state.
output "nomad_token_file" {
  value = var.mode == "local" ? "${var.state_dir}/keys/nomad-management.token" : "${var.keys_dir}/nomad-management.token"
}

output "consul_token_file" {
  value = var.mode == "local" ? "${var.state_dir}/keys/consul-management.token" : "${var.keys_dir}/consul-management.token"
}
