# terraform test: a deployment applied before there were datasets keeps
# every resource when it is applied again with the datasets: the moved
# blocks carry the spoc dataset's job, schedule, alerts, IAM bindings,
# schema objects and BigQuery tables to their new addresses, and nothing
# is replaced (the mock provider would give a replaced resource a new id).

mock_provider "google" {
  source = "./tests/mocks/google"
}

mock_provider "time" {
  source = "./tests/mocks/time"
}

variables {
  project_id       = "my-project"
  bucket_name      = "my-project-mspo-spoc"
  bigquery_dataset = "mspo"
}

run "before_datasets" {
  state_key = "deployment"
  module {
    source = "./tests/before_datasets"
  }
}

run "with_datasets" {
  state_key = "deployment"

  # The tables a deployment made before there were datasets has.
  variables {
    bigquery_tables = "external"
  }

  assert {
    condition = {
      job               = google_cloud_run_v2_job.dataset["spoc"].id
      scheduler         = google_cloud_scheduler_job.daily["spoc"].id
      execution_failed  = google_monitoring_alert_policy.execution_failed["spoc"].id
      stale_snapshot    = google_monitoring_alert_policy.stale_snapshot["spoc"].id
      runtime_objects   = google_storage_bucket_iam_member.runtime_objects["spoc"].id
      scheduler_runs    = google_cloud_run_v2_job_iam_member.scheduler_runs_job["spoc"].id
      build_updates     = google_cloud_run_v2_job_iam_member.build_updates_job["spoc"].id
      snapshots_schema  = google_storage_bucket_object.snapshots_schema["spoc"].id
      changes_schema    = google_storage_bucket_object.changes_schema["spoc"].id
      snapshots_table   = google_bigquery_table.snapshots["spoc"].id
      snapshots_by_date = google_bigquery_table.snapshots_by_date["spoc"].id
      changes_table     = google_bigquery_table.changes["spoc"].id
    } == run.before_datasets.ids
    error_message = "A resource was replaced instead of moved: before ${jsonencode(run.before_datasets.ids)}"
  }
}
