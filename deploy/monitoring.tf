# Two alerts, which between them catch a job that fails loudly and one that
# quietly stops publishing (the scheduler paused, the job deleted, runs that
# hang until their timeout). A failed execution is one job's, whichever of
# its lists failed, so execution_failed is one per job; publishing is each
# list's, so stale_snapshot is one per list and tells which one stopped.

# The spoc dataset's alerts had these addresses before there were datasets.
moved {
  from = google_monitoring_alert_policy.execution_failed
  to   = google_monitoring_alert_policy.execution_failed["spoc"]
}

moved {
  from = google_monitoring_alert_policy.stale_snapshot
  to   = google_monitoring_alert_policy.stale_snapshot["spoc"]
}

# Keyed as local.jobs: a single list's job by its dataset's name, so
# execution_failed["spoc"] keeps its address; a group's by the group's
# (references), one alert for all its lists.
resource "google_monitoring_alert_policy" "execution_failed" {
  for_each = local.jobs

  display_name = "${each.value.job_name}: execution failed"
  combiner     = "OR"

  conditions {
    display_name = "A ${each.value.job_name} execution ended failed"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_job\" AND resource.labels.job_name = \"${google_cloud_run_v2_job.dataset[each.key].name}\" AND metric.type = \"run.googleapis.com/job/completed_execution_count\" AND metric.labels.result = \"failed\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      The ${each.value.job_name} Cloud Run job, which publishes ${join(", ", each.value.lists)}, failed: ${length(each.value.lists) > 1 ? "at least one of its lists was not published by that execution (each list is published as if it ran alone, never in part: the others may have been; the run's last log line, \"run finished\", names the failed ones)" : "no snapshot was published by that execution (the job never publishes part of one)"}.
      Its logs say why: `gcloud logging read 'resource.type="cloud_run_job" AND resource.labels.job_name="${each.value.job_name}" AND severity>=ERROR' --limit 20`.
      Exit status 2 is a configuration error, 1 a failed run (upstream down, bad body, publish guard).
      Each list's "no snapshot" alert tells which list stopped being published.
    EOT
  }

  alert_strategy {
    auto_close = "86400s"
  }

  notification_channels = var.notification_channels
  depends_on            = [time_sleep.apis_ready]
}

# DATASET.last_success (exported by the job with the gcp exporter as
# workload.googleapis.com/spoc.last_success for the spoc dataset,
# osh.last_success for osh: deploy/datasets.json names it) is only
# recorded by a run that published, so its absence over the window means
# no successful run.
#
# The exporter writes it on the generic_task resource, whose job label is
# the job's service.name: the Cloud Run job's name (CLOUD_RUN_JOB, or
# OTEL_SERVICE_NAME when set; cmd/job). The query selects this job's, so
# another deployment's successes in the same project cannot hide this
# one's silence.
#
# On a new deployment the metric has no history at all, and absent_over_time
# would be true from the first apply until the first successful run: every
# deployment would start with an incident. So the condition also requires
# the dataset's deployment to be older than the window: on its day one
# nothing fires unless an execution fails (the policy above), and from
# then on a day without a published snapshot does. time_static.deployed
# is, per dataset, the time of the apply that created it, or that gave
# its job a new name: a dataset enabled on an existing deployment, or
# moved to another job, gets its own grace period rather than the first
# apply's, long past, which would fire before its first run.
resource "time_static" "deployed" {
  for_each = local.datasets

  triggers = {
    job = google_cloud_run_v2_job.dataset[each.value.job].name
  }
}

# The deployment time was one for all datasets: it becomes spoc's. Its
# new trigger replaces it at the apply that brings this in, as every
# other dataset's time is created then: each alert's grace period starts
# again at that apply, later than before, never earlier.
moved {
  from = time_static.deployed
  to   = time_static.deployed["spoc"]
}

resource "google_monitoring_alert_policy" "stale_snapshot" {
  for_each = local.datasets

  # Named for its list too when the job publishes several, so that the
  # alerts of a group's lists are told apart.
  display_name = "${each.value.job_name}: no ${each.key == each.value.job ? "" : "${each.key} "}snapshot for ${var.staleness_hours} h"
  combiner     = "OR"

  conditions {
    display_name = "No successful ${each.value.job_name} run${each.key == each.value.job ? "" : " of ${each.key}"} for ${var.staleness_hours} hours"
    condition_prometheus_query_language {
      query               = "absent_over_time(workload_googleapis_com:${each.value.last_success}{monitored_resource=\"generic_task\",job=\"${google_cloud_run_v2_job.dataset[each.value.job].name}\"}[${var.staleness_hours}h]) and on() (vector(time()) > ${time_static.deployed[each.key].unix + var.staleness_hours * 3600})"
      duration            = "0s"
      evaluation_interval = "300s"
      # The metric does not exist until the job has published once;
      # without this, Cloud Monitoring refuses the policy on a new project.
      disable_metric_validation = true
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      No ${each.value.job_name} run has published a snapshot of ${each.key} for ${var.staleness_hours} hours.
      Check that the scheduler job ${each.value.job_name}-daily is enabled and that recent executions ran: `gcloud run jobs executions list --job ${each.value.job_name} --region ${var.region}`.
    EOT
  }

  alert_strategy {
    auto_close = "86400s"
  }

  notification_channels = var.notification_channels
  depends_on            = [time_sleep.apis_ready]
}
