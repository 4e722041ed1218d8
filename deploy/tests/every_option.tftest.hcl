# terraform test: plan and apply with every option on (BigQuery, alert
# notification channels, a job setting, another floor and schedule), and
# the settings the deployment refuses.

mock_provider "google" {
  source = "./tests/mocks/google"
}

mock_provider "time" {
  source = "./tests/mocks/time"
}

variables {
  project_id              = "my-project"
  bucket_name             = "my-project-mspo-spoc"
  bucket_location         = "ASIA-SOUTHEAST1"
  snapshot_retention_days = 400
  schedule                = "30 4 * * *"
  notification_channels   = ["projects/my-project/notificationChannels/1234567890"]
  bigquery_dataset        = "mspo"
  bigquery_location       = "asia-southeast1"
  min_records             = 280000
  staleness_hours         = 48
  job_settings = {
    SPOC_MAX_DROP_PERCENT = "5"
  }
}

run "plan_with_every_option" {
  command = plan

  assert {
    condition     = length(google_bigquery_table.snapshots) == 1 && length(google_bigquery_table.changes) == 1 && length(google_bigquery_table.snapshots_by_date) == 1
    error_message = "bigquery_dataset set: the plan must create both external tables and the view."
  }
  assert {
    condition     = one(google_storage_bucket.snapshots[0].lifecycle_rule[0].condition).age == 400
    error_message = "snapshot_retention_days does not reach the bucket's lifecycle rule."
  }
  assert {
    condition = one(flatten([
      for t in jsondecode(google_monitoring_dashboard.spoc.dashboard_json).mosaicLayout.tiles : [
        for th in try(t.widget.xyChart.thresholds, []) : th.value
      ]
    ])) == 48 && strcontains(google_monitoring_dashboard.spoc.dashboard_json, "[96h]")
    error_message = "staleness_hours does not reach the dashboard's time-since-success chart."
  }
}

run "apply_with_every_option" {
  command = apply

  assert {
    condition     = google_monitoring_alert_policy.stale_snapshot["spoc"].notification_channels == tolist(["projects/my-project/notificationChannels/1234567890"]) && google_monitoring_alert_policy.execution_failed["spoc"].notification_channels == tolist(["projects/my-project/notificationChannels/1234567890"])
    error_message = "The alerts do not notify the channels given."
  }
  assert {
    condition     = strcontains(google_monitoring_alert_policy.stale_snapshot["spoc"].conditions[0].condition_prometheus_query_language[0].query, "[48h]")
    error_message = "staleness_hours does not reach the alert's window."
  }
  assert {
    condition     = local.job_env["spoc"]["SPOC_MIN_RECORDS"] == "280000" && local.job_env["spoc"]["SPOC_MAX_DROP_PERCENT"] == "5" && local.job_env["spoc"]["SPOC_MAX_DROPPED_PERCENT"] == "1"
    error_message = "min_records and job_settings do not reach the job, over its defaults."
  }
  assert {
    condition     = google_cloud_scheduler_job.daily["spoc"].schedule == "30 4 * * *"
    error_message = "schedule does not reach the scheduler."
  }

  # Each table reads its schema from its own uploaded reference file, in
  # the prefix's _schema/ folder, and is replaced with it.
  assert {
    condition     = google_bigquery_table.snapshots["spoc"].external_data_configuration[0].reference_file_schema_uri == "gs://my-project-mspo-spoc/${google_storage_bucket_object.snapshots_schema["spoc"].name}" && startswith(google_storage_bucket_object.snapshots_schema["spoc"].name, "raw/mspo/api/spoc/get-spoc-list-public/_schema/") && endswith(google_storage_bucket_object.snapshots_schema["spoc"].name, "/spoc-list-public.schema.parquet")
    error_message = "The snapshot table's reference schema is not the uploaded snapshot schema file."
  }
  assert {
    condition     = google_bigquery_table.changes["spoc"].external_data_configuration[0].reference_file_schema_uri == "gs://my-project-mspo-spoc/${google_storage_bucket_object.changes_schema["spoc"].name}" && endswith(google_storage_bucket_object.changes_schema["spoc"].name, "/spoc-list-public.changes.schema.parquet")
    error_message = "The change table's reference schema is not the uploaded change schema file."
  }
  assert {
    condition     = google_bigquery_table.changes["spoc"].external_data_configuration[0].parquet_options[0].enable_list_inference
    error_message = "The change table does not infer Parquet lists (changed_columns)."
  }
  assert {
    condition     = google_bigquery_table.snapshots["spoc"].external_data_configuration[0].source_uris == tolist(["gs://my-project-mspo-spoc/raw/mspo/api/spoc/get-spoc-list-public/*spoc-list-public.parquet"]) && google_bigquery_table.changes["spoc"].external_data_configuration[0].source_uris == tolist(["gs://my-project-mspo-spoc/raw/mspo/api/spoc/get-spoc-list-public/*/changes/spoc-list-public.changes.parquet"])
    error_message = "The tables do not read the snapshot and change-table objects."
  }
  assert {
    condition     = google_bigquery_dataset.spoc[0].location == "asia-southeast1" && strcontains(google_bigquery_table.snapshots_by_date["spoc"].view[0].query, "`my-project.mspo.spoc_snapshots_external`")
    error_message = "The view does not read the external table of this dataset."
  }
}

run "refuses_a_setting_the_deployment_decides" {
  command = plan

  variables {
    job_settings = {
      SPOC_MIN_RECORDS = "10"
    }
  }

  expect_failures = [google_cloud_run_v2_job.dataset["spoc"]]
}

run "refuses_a_setting_the_job_does_not_read" {
  command = plan

  variables {
    job_settings = {
      SPOC_MIN_RECORD = "250000"
    }
  }

  expect_failures = [google_cloud_run_v2_job.dataset["spoc"]]
}

run "refuses_a_floor_of_zero" {
  command = plan

  variables {
    min_records = 0
  }

  expect_failures = [var.min_records]
}
