# The spoc dataset's schedule had this address before there were datasets.
moved {
  from = google_cloud_scheduler_job.daily
  to   = google_cloud_scheduler_job.daily["spoc"]
}

resource "google_cloud_scheduler_job" "daily" {
  for_each = local.jobs

  name        = "${each.value.job_name}-daily"
  description = "Starts the ${each.value.job_name} Cloud Run job."
  region      = var.region
  schedule    = each.value.schedule
  time_zone   = var.time_zone

  # The call only starts an execution and returns; the job's own outcome is
  # watched by the alert policies, not by the scheduler.
  attempt_deadline = "180s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "60s"
    max_backoff_duration = "600s"
    max_doublings        = 2
  }

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/projects/${var.project_id}/locations/${var.region}/jobs/${google_cloud_run_v2_job.dataset[each.key].name}:run"

    # An OAuth access token, not OIDC: the target is a Google API.
    oauth_token {
      service_account_email = google_service_account.scheduler.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [
    time_sleep.apis_ready,
    google_cloud_run_v2_job_iam_member.scheduler_runs_job,
  ]
}
