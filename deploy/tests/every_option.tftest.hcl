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
  bigquery_tables         = "external"
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
    condition     = length(google_bigquery_table.versions) == 1 && length(google_bigquery_table.history) == 1 && length(google_bigquery_routine.as_of) == 1 && length(google_storage_bucket_object.versions_schema) == 1
    error_message = "bigquery_dataset set: the plan must create the versions table, the history view and the as-of function."
  }

  # The history objects, as planned: names, the versions' objects, the
  # key the view and the function partition by, the function's argument.
  assert {
    condition     = google_bigquery_table.versions["spoc"].table_id == "spoc_versions_external" && google_bigquery_table.history["spoc"].table_id == "spoc_history" && google_bigquery_routine.as_of["spoc"].routine_id == "spoc_as_of"
    error_message = "The history objects are not named after the dataset's tables."
  }
  assert {
    condition     = google_bigquery_table.versions["spoc"].external_data_configuration[0].source_uris == tolist(["gs://my-project-mspo-spoc/raw/mspo/api/spoc/get-spoc-list-public/*/history/spoc-list-public.versions.parquet"]) && google_bigquery_table.versions["spoc"].external_data_configuration[0].source_format == "PARQUET" && !google_bigquery_table.versions["spoc"].external_data_configuration[0].autodetect
    error_message = "The versions table does not read every day's versions object."
  }
  assert {
    condition     = startswith(google_storage_bucket_object.versions_schema["spoc"].name, "raw/mspo/api/spoc/get-spoc-list-public/_schema/") && endswith(google_storage_bucket_object.versions_schema["spoc"].name, "/spoc-list-public.versions.schema.parquet")
    error_message = "The versions reference schema is not uploaded under the prefix's _schema/."
  }
  assert {
    condition = (
      strcontains(google_bigquery_table.history["spoc"].view[0].query, "FROM `my-project.mspo.spoc_versions_external`") &&
      strcontains(google_bigquery_table.history["spoc"].view[0].query, "LEAD(valid_from) OVER (PARTITION BY entity_smallholder_id ORDER BY valid_from) AS valid_to") &&
      strcontains(google_bigquery_table.history["spoc"].view[0].query, "valid_to IS NULL AND change != 'removed' AS is_current") &&
      !google_bigquery_table.history["spoc"].view[0].use_legacy_sql
    )
    error_message = "The history view does not give valid_to and is_current over the plot's key: ${google_bigquery_table.history["spoc"].view[0].query}"
  }
  assert {
    condition = (
      google_bigquery_routine.as_of["spoc"].routine_type == "TABLE_VALUED_FUNCTION" && google_bigquery_routine.as_of["spoc"].language == "SQL" &&
      length(google_bigquery_routine.as_of["spoc"].arguments) == 1 && google_bigquery_routine.as_of["spoc"].arguments[0].name == "d" &&
      jsondecode(google_bigquery_routine.as_of["spoc"].arguments[0].data_type).typeKind == "DATE"
    )
    error_message = "as_of is not a SQL table function of one DATE d."
  }
  assert {
    condition = (
      strcontains(google_bigquery_routine.as_of["spoc"].definition_body, "FROM `my-project.mspo.spoc_versions_external`") &&
      strcontains(google_bigquery_routine.as_of["spoc"].definition_body, "PARTITION BY entity_smallholder_id ORDER BY valid_from DESC") &&
      strcontains(google_bigquery_routine.as_of["spoc"].definition_body, "WHERE valid_from <= d") &&
      strcontains(google_bigquery_routine.as_of["spoc"].definition_body, "change != 'removed'")
    )
    error_message = "as_of does not take each plot's newest version on or before d, without removals: ${google_bigquery_routine.as_of["spoc"].definition_body}"
  }
  assert {
    condition     = one(google_storage_bucket.snapshots[0].lifecycle_rule[0].condition).age == 400
    error_message = "snapshot_retention_days does not reach the bucket's lifecycle rule."
  }
  assert {
    condition = (
      anytrue([for s in one(google_storage_bucket.snapshots[0].lifecycle_rule[0].condition).matches_suffix : endswith("raw/mspo/api/spoc/get-spoc-list-public/20250101/spoc-list-public.parquet", s)]) &&
      !anytrue([for s in one(google_storage_bucket.snapshots[0].lifecycle_rule[0].condition).matches_suffix : endswith("raw/mspo/api/spoc/get-spoc-list-public/20250101/history/spoc-list-public.versions.parquet", s)])
    )
    error_message = "The retention rule must delete old snapshots and keep every version (history/)."
  }
  assert {
    condition     = anytrue([for s in one(google_storage_bucket.snapshots[0].lifecycle_rule[0].condition).matches_suffix : endswith("raw/mspo/api/spoc/get-spoc-list-public/20250101/geo/spoc-list-public.geo.parquet", s)])
    error_message = "The retention rule must delete a day's geolocation layer (geo/) with its snapshot."
  }
  assert {
    condition     = length(google_bigquery_table.geo) == 1 && length(google_bigquery_table.geo_by_date) == 1 && length(google_storage_bucket_object.geo_schema) == 1
    error_message = "bigquery_dataset set: the plan must create the geolocation table, its view and its reference schema."
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
  assert {
    condition     = google_bigquery_table.versions["spoc"].external_data_configuration[0].reference_file_schema_uri == "gs://my-project-mspo-spoc/${google_storage_bucket_object.versions_schema["spoc"].name}"
    error_message = "The versions table's reference schema is not the uploaded versions schema file."
  }
  assert {
    condition = (
      google_bigquery_table.geo["spoc"].external_data_configuration[0].reference_file_schema_uri == "gs://my-project-mspo-spoc/${google_storage_bucket_object.geo_schema["spoc"].name}" &&
      endswith(google_storage_bucket_object.geo_schema["spoc"].name, "/spoc-list-public.geo.schema.parquet") &&
      google_bigquery_table.geo["spoc"].external_data_configuration[0].source_uris == tolist(["gs://my-project-mspo-spoc/raw/mspo/api/spoc/get-spoc-list-public/*/geo/spoc-list-public.geo.parquet"]) &&
      strcontains(google_bigquery_table.snapshots_by_date["spoc"].view[0].query, "ST_GEOGPOINT(gps_coordinate_long, gps_coordinate_lat) AS geog") &&
      strcontains(google_bigquery_table.geo_by_date["spoc"].view[0].query, "FROM `my-project.mspo.spoc_geo_external`")
    )
    error_message = "The geolocation table does not read every day's layer with the uploaded layer schema, or a view lacks geog."
  }
  assert {
    condition     = google_bigquery_routine.as_of["spoc"].dataset_id == "mspo" && google_bigquery_table.history["spoc"].dataset_id == "mspo" && google_bigquery_table.versions["spoc"].dataset_id == "mspo"
    error_message = "The history objects are not in the BigQuery dataset."
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
