output "jobs" {
  description = "Per dataset: its Cloud Run job, the folder holding its YYYYMMDD folders, and the command that runs it now and waits."
  value = {
    for name, d in local.datasets : name => {
      job_name        = google_cloud_run_v2_job.dataset[d.job].name
      snapshot_url    = "gs://${local.bucket_name}/${d.output_prefix}/"
      execute_command = "gcloud run jobs execute ${google_cloud_run_v2_job.dataset[d.job].name} --region ${var.region} --project ${var.project_id} --wait"
    }
  }
}

# The spoc dataset's, as before there were datasets (null when it is not
# enabled).
output "job_name" {
  description = "The spoc dataset's Cloud Run job (jobs has every dataset's)."
  value       = try(google_cloud_run_v2_job.dataset["spoc"].name, null)
}

output "bucket" {
  description = "The bucket the snapshots go to."
  value       = local.bucket_name
}

output "snapshot_url" {
  description = "The spoc dataset's folder holding one YYYYMMDD folder per day (jobs has every dataset's)."
  value       = try("gs://${local.bucket_name}/${local.datasets["spoc"].output_prefix}/", null)
}

output "image_repository" {
  description = "Where Cloud Build pushes the images (tag: commit SHA)."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}/${var.job_name}"
}

output "runtime_service_account" {
  description = "Identity of the jobs."
  value       = google_service_account.runtime.email
}

output "execute_command" {
  description = "Run the spoc dataset's job now and wait for it (jobs has every dataset's)."
  value       = try("gcloud run jobs execute ${google_cloud_run_v2_job.dataset["spoc"].name} --region ${var.region} --project ${var.project_id} --wait", null)
}

output "build_command" {
  description = "Test, build and deploy the current checkout to every dataset's job (run at the repository's top). The build runs in var.build_region; the image and the jobs stay in var.region."
  value       = "gcloud builds submit --project ${var.project_id} --region ${var.build_region} --config cloudbuild.yaml --service-account ${google_service_account.build.id} --gcs-source-staging-dir gs://${google_storage_bucket.build_source.name}/source --substitutions \"COMMIT_SHA=$(git rev-parse HEAD),SHORT_SHA=$(git rev-parse --short HEAD),_REGION=${var.region},_REPOSITORY=${var.repository_id},_JOBS=${join(" ", sort([for j in values(local.jobs) : j.job_name]))},_IMAGE=${var.job_name}\""
}
