output "jobs" {
  value = concat(
    keys(local.objectstore_jobs), keys(local.database_jobs), keys(local.backup_jobs), keys(local.support_jobs), keys(local.service_jobs),
    keys(local.aggregator_jobs), keys(local.edge_jobs),
  )
  description = "Every job deployed, in order."
  depends_on  = [terraform_data.edge]
}

output "images" {
  value       = var.images
  description = "name => the image its jobs run (repository:tag, the tag a hash of its content)."
}

output "with_aggregator" {
  value = local.with_aggregator
}
