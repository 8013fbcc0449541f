output "jobs" {
  value = concat(
    keys(local.objectstore_jobs), keys(local.database_jobs), keys(local.backup_jobs), keys(local.support_jobs), keys(local.service_jobs),
    keys(local.aggregator_jobs), keys(local.edge_jobs), keys(local.observability_jobs), keys(local.collector_jobs),
  )
  description = "Every job deployed, in order."
  depends_on  = [terraform_data.settled, terraform_data.collector, terraform_data.observability]
}

output "with_logs" {
  value       = local.with_logs
  description = "Whether VictoriaLogs and the log collector are deployed (their images are in the manifest)."
}

output "with_metrics" {
  value       = local.with_metrics
  description = "Whether VictoriaMetrics and vmalert are deployed."
}

output "images" {
  value       = var.images
  description = "name => the image its jobs run (repository:tag, the tag a hash of its content)."
}

output "with_aggregator" {
  value = local.with_aggregator
}
