# terraform test: the BigQuery tables bigquery_tables chooses, native by
# default (loaded by the jobs: day-partitioned, clustered, the runtime
# account allowed to load and every job told where) or external (over
# the bucket: no loads), under views of the same names either way.

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
  datasets         = ["spoc", "references"]
}

run "native_tables_by_default" {
  command = apply

  assert {
    condition = keys(google_bigquery_table.native) == [
      "spoc/changes", "spoc/geo", "spoc/snapshots", "spoc/versions",
      "states/changes", "states/snapshots", "states/versions",
      "zones/changes", "zones/snapshots", "zones/versions",
    ]
    error_message = "Not one native table per list and kind of object (a layer's for a list with a point only): ${jsonencode(keys(google_bigquery_table.native))}"
  }
  assert {
    condition = (
      length(google_bigquery_table.snapshots) + length(google_bigquery_table.changes) + length(google_bigquery_table.versions) + length(google_bigquery_table.geo) == 0 &&
      length(google_storage_bucket_object.snapshots_schema) + length(google_storage_bucket_object.changes_schema) + length(google_storage_bucket_object.versions_schema) + length(google_storage_bucket_object.geo_schema) == 0
    )
    error_message = "Native tables, and external tables or their _schema/ objects planned too."
  }
  assert {
    condition = alltrue([for k, t in google_bigquery_table.native : (
      t.table_id == "${replace(k, "/", "_")}_native" && t.dataset_id == "mspo" &&
      t.time_partitioning[0].type == "DAY" && t.time_partitioning[0].field == null &&
      t.require_partition_filter == !endswith(k, "/versions") &&
      t.deletion_protection
    )])
    error_message = "A native table is not named LIST_KIND_native, partitioned by ingestion day, requiring a partition filter (the versions excepted) and protected from deletion."
  }
  assert {
    condition = (
      google_bigquery_table.native["spoc/snapshots"].clustering == tolist(["state", "cert_status"]) &&
      google_bigquery_table.native["spoc/versions"].clustering == tolist(["state", "cert_status"]) &&
      google_bigquery_table.native["spoc/geo"].clustering == tolist(["state"]) &&
      google_bigquery_table.native["states/snapshots"].clustering == tolist(["state"]) &&
      length(coalesce(google_bigquery_table.native["spoc/changes"].clustering, [])) == 0 &&
      length(coalesce(google_bigquery_table.native["zones/snapshots"].clustering, [])) == 0
    )
    error_message = "The native tables are not clustered by state and cert_status where they have them."
  }
  assert {
    condition = (
      jsondecode(google_bigquery_table.native["spoc/geo"].schema)[1].name == "geometry" &&
      jsondecode(google_bigquery_table.native["spoc/geo"].schema)[1].type == "GEOGRAPHY" &&
      one([for c in jsondecode(google_bigquery_table.native["spoc/changes"].schema) : c.mode if c.name == "changed_columns"]) == "REPEATED" &&
      one([for c in jsondecode(google_bigquery_table.native["spoc/versions"].schema) : c.type if c.name == "valid_from"]) == "DATE"
    )
    error_message = "The native tables are not created with the schemas of deploy/schema/*.bigquery.json."
  }

  # The views have external mode's names, over the native tables, with
  # the partition's day as snapshot_date.
  assert {
    condition = (
      google_bigquery_table.snapshots_by_date["spoc"].table_id == "spoc_snapshots" &&
      strcontains(google_bigquery_table.snapshots_by_date["spoc"].view[0].query, "_PARTITIONDATE AS snapshot_date") &&
      strcontains(google_bigquery_table.snapshots_by_date["spoc"].view[0].query, "ST_GEOGPOINT(gps_coordinate_long, gps_coordinate_lat) AS geog") &&
      strcontains(google_bigquery_table.snapshots_by_date["spoc"].view[0].query, "FROM `my-project.mspo.spoc_snapshots_native`") &&
      strcontains(google_bigquery_table.snapshots_by_date["zones"].view[0].query, "FROM `my-project.mspo.zones_snapshots_native`") &&
      !strcontains(google_bigquery_table.snapshots_by_date["spoc"].view[0].query, "_FILE_NAME")
    )
    error_message = "The snapshots view does not read the native snapshots with the partition's day: ${google_bigquery_table.snapshots_by_date["spoc"].view[0].query}"
  }
  assert {
    condition = (
      google_bigquery_table.changes_by_date["spoc"].table_id == "spoc_changes" &&
      strcontains(google_bigquery_table.changes_by_date["spoc"].view[0].query, "FROM `my-project.mspo.spoc_changes_native`") &&
      google_bigquery_table.geo_by_date["spoc"].table_id == "spoc_geo" &&
      strcontains(google_bigquery_table.geo_by_date["spoc"].view[0].query, "FROM `my-project.mspo.spoc_geo_native`") &&
      strcontains(google_bigquery_table.geo_by_date["spoc"].view[0].query, "_PARTITIONDATE AS snapshot_date") &&
      keys(google_bigquery_table.geo_by_date) == ["spoc"] &&
      strcontains(google_bigquery_table.history["states"].view[0].query, "FROM `my-project.mspo.states_versions_native`") &&
      strcontains(google_bigquery_routine.as_of["spoc"].definition_body, "FROM `my-project.mspo.spoc_versions_native`")
    )
    error_message = "The change, geolocation and history views and the as-of function do not read the native tables."
  }

  # The runtime account may run load jobs and write this dataset's
  # tables; every job loads into it.
  assert {
    condition = (
      google_project_iam_member.runtime_bigquery_jobs[0].role == "roles/bigquery.jobUser" &&
      google_project_iam_member.runtime_bigquery_jobs[0].project == "my-project" &&
      google_project_iam_member.runtime_bigquery_jobs[0].member == "serviceAccount:mspo-spoc-run@my-project.iam.gserviceaccount.com" &&
      google_bigquery_dataset_iam_member.runtime_loads[0].role == "roles/bigquery.dataEditor" &&
      google_bigquery_dataset_iam_member.runtime_loads[0].dataset_id == "mspo" &&
      google_bigquery_dataset_iam_member.runtime_loads[0].member == "serviceAccount:mspo-spoc-run@my-project.iam.gserviceaccount.com"
    )
    error_message = "The runtime account cannot run load jobs in the project or write the dataset's tables."
  }
  assert {
    condition = alltrue([for job in ["spoc", "references"] : (
      local.job_env[job]["SPOC_BIGQUERY_DATASET"] == "my-project.mspo" &&
      one([for e in google_cloud_run_v2_job.dataset[job].template[0].template[0].containers[0].env : e.value if e.name == "SPOC_BIGQUERY_DATASET"]) == "my-project.mspo"
    )])
    error_message = "A job is not told to load into my-project.mspo."
  }
}

run "external_tables" {
  command = plan

  variables {
    bigquery_tables = "external"
  }

  assert {
    condition     = length(google_bigquery_table.native) == 0 && keys(google_bigquery_table.snapshots) == ["spoc", "states", "zones"] && keys(google_bigquery_table.geo) == ["spoc"] && keys(google_storage_bucket_object.versions_schema) == ["spoc", "states", "zones"]
    error_message = "External tables chosen: the external tables and their schema objects, and no native table."
  }
  assert {
    condition = (
      google_bigquery_table.snapshots_by_date["spoc"].table_id == "spoc_snapshots" &&
      strcontains(google_bigquery_table.snapshots_by_date["spoc"].view[0].query, "FROM `my-project.mspo.spoc_snapshots_external`") &&
      strcontains(google_bigquery_table.snapshots_by_date["spoc"].view[0].query, "_FILE_NAME") &&
      strcontains(google_bigquery_table.changes_by_date["zones"].view[0].query, "FROM `my-project.mspo.zones_changes_external`") &&
      strcontains(google_bigquery_table.history["spoc"].view[0].query, "FROM `my-project.mspo.spoc_versions_external`")
    )
    error_message = "The views do not read the external tables, under the same names."
  }
  assert {
    condition     = length(google_project_iam_member.runtime_bigquery_jobs) == 0 && length(google_bigquery_dataset_iam_member.runtime_loads) == 0
    error_message = "No loads, and the runtime account may still load into BigQuery."
  }
  assert {
    condition     = !contains(keys(local.job_env["spoc"]), "SPOC_BIGQUERY_DATASET") && !contains(keys(local.job_env["references"]), "SPOC_BIGQUERY_DATASET")
    error_message = "External tables, and a job is told to load."
  }
}

run "no_bigquery" {
  command = plan

  variables {
    bigquery_dataset = ""
  }

  assert {
    condition     = length(google_bigquery_table.native) == 0 && length(google_bigquery_table.snapshots_by_date) == 0 && length(google_project_iam_member.runtime_bigquery_jobs) == 0 && length(google_bigquery_dataset_iam_member.runtime_loads) == 0
    error_message = "BigQuery off, and tables, views or BigQuery roles planned."
  }
  assert {
    condition     = !contains(keys(local.job_env["spoc"]), "SPOC_BIGQUERY_DATASET")
    error_message = "BigQuery off, and a job is told to load."
  }
}

run "refuses_an_unknown_kind_of_tables" {
  command = plan

  variables {
    bigquery_tables = "loaded"
  }

  expect_failures = [var.bigquery_tables]
}

run "refuses_a_load_dataset_in_job_settings" {
  command = plan

  variables {
    job_settings = { SPOC_BIGQUERY_DATASET = "other-project.other" }
  }

  expect_failures = [google_cloud_run_v2_job.dataset["spoc"], google_cloud_run_v2_job.dataset["references"]]
}
