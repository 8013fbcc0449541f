output "jobs" {
  value = concat(
    keys(local.objectstore_jobs), keys(local.database_jobs), keys(local.backup_jobs), keys(local.support_jobs), keys(local.service_jobs),
    keys(local.aggregator_jobs), keys(local.edge_jobs),
  )
  description = "Every job deployed, in order."
  depends_on  = [terraform_data.edge]
}

output "releases" {
  value       = local.release
  description = "binary => release file name in releases_dir."
}

output "with_aggregator" {
  value = local.with_aggregator
}
