output "job_name" {
  description = "The Cloud Run job."
  value       = google_cloud_run_v2_job.spoc.name
}

output "bucket" {
  description = "The bucket the snapshots go to."
  value       = local.bucket_name
}

output "snapshot_url" {
  description = "Folder holding one YYYYMMDD folder per day."
  value       = "gs://${local.bucket_name}/${local.output_prefix}/"
}

output "image_repository" {
  description = "Where Cloud Build pushes the images (tag: commit SHA)."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}/${var.job_name}"
}

output "runtime_service_account" {
  description = "Identity of the job."
  value       = google_service_account.runtime.email
}

output "execute_command" {
  description = "Run the job now and wait for it."
  value       = "gcloud run jobs execute ${google_cloud_run_v2_job.spoc.name} --region ${var.region} --project ${var.project_id} --wait"
}

output "build_command" {
  description = "Test, build and deploy the current checkout (run at the repository's top). The build runs in var.build_region; the image and the job stay in var.region."
  value       = "gcloud builds submit --project ${var.project_id} --region ${var.build_region} --config cloudbuild.yaml --service-account ${google_service_account.build.id} --gcs-source-staging-dir gs://${google_storage_bucket.build_source.name}/source --substitutions COMMIT_SHA=$(git rev-parse HEAD),SHORT_SHA=$(git rev-parse --short HEAD),_REGION=${var.region},_REPOSITORY=${var.repository_id},_JOB=${var.job_name},_IMAGE=${var.job_name}"
}
