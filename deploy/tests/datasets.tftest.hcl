# terraform test: one job, schedule and failure alert per enabled dataset
# or group, one staleness alert and set of BigQuery tables per list, each
# with its own names, prefix, floor and metric; and the dataset settings
# the deployment refuses.

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
  bigquery_tables  = "external"
  datasets         = ["spoc", "osh"]
  dataset_settings = {
    osh = {
      schedule     = "30 3 * * *"
      job_settings = { SPOC_MAX_DROP_PERCENT = "5" }
    }
  }
}

run "apply_with_both_datasets" {
  command = apply

  assert {
    condition     = google_cloud_run_v2_job.dataset["spoc"].name == "mspo-spoc" && google_cloud_run_v2_job.dataset["osh"].name == "mspo-spoc-osh"
    error_message = "The spoc job keeps job_name; another dataset's is JOB_NAME-DATASET."
  }
  assert {
    condition = (
      local.job_env["osh"]["SPOC_DATASET"] == "osh" &&
      local.job_env["osh"]["SPOC_URL"] == "https://api.mspots.org.my/api/osh/all-smallholder" &&
      local.job_env["osh"]["SPOC_PREFIX"] == "raw/mspo/api/osh/all-smallholder" &&
      local.job_env["osh"]["SPOC_MIN_RECORDS"] == "40000" &&
      local.job_env["osh"]["SPOC_MAX_DROP_PERCENT"] == "5"
    )
    error_message = "The osh job does not get its dataset, URL, prefix, floor and own settings: ${jsonencode(local.job_env["osh"])}"
  }
  assert {
    condition = (
      local.job_env["spoc"]["SPOC_DATASET"] == "spoc" &&
      local.job_env["spoc"]["SPOC_URL"] == "https://api.mspots.org.my/api/spoc/get-spoc-list-public" &&
      local.job_env["spoc"]["SPOC_PREFIX"] == "raw/mspo/api/spoc/get-spoc-list-public" &&
      local.job_env["spoc"]["SPOC_MIN_RECORDS"] == "250000" &&
      local.job_env["spoc"]["SPOC_MAX_DROP_PERCENT"] == "10"
    )
    error_message = "The spoc job's settings changed, or took the osh dataset's: ${jsonencode(local.job_env["spoc"])}"
  }
  assert {
    condition     = google_cloud_scheduler_job.daily["osh"].name == "mspo-spoc-osh-daily" && google_cloud_scheduler_job.daily["osh"].schedule == "30 3 * * *" && google_cloud_scheduler_job.daily["spoc"].schedule == "0 3 * * *"
    error_message = "Each dataset has its own schedule."
  }
  assert {
    condition     = google_cloud_scheduler_job.daily["osh"].http_target[0].uri == "https://run.googleapis.com/v2/projects/my-project/locations/asia-southeast1/jobs/mspo-spoc-osh:run"
    error_message = "The osh schedule does not start the osh job: ${google_cloud_scheduler_job.daily["osh"].http_target[0].uri}"
  }
  assert {
    condition     = strcontains(google_monitoring_alert_policy.stale_snapshot["osh"].conditions[0].condition_prometheus_query_language[0].query, "absent_over_time(workload_googleapis_com:osh_last_success{monitored_resource=\"generic_task\",job=\"mspo-spoc-osh\"}")
    error_message = "The osh staleness alert does not watch osh.last_success of the osh job: ${google_monitoring_alert_policy.stale_snapshot["osh"].conditions[0].condition_prometheus_query_language[0].query}"
  }
  assert {
    condition     = strcontains(google_monitoring_alert_policy.stale_snapshot["spoc"].conditions[0].condition_prometheus_query_language[0].query, "workload_googleapis_com:spoc_last_success{monitored_resource=\"generic_task\",job=\"mspo-spoc\"}")
    error_message = "The spoc staleness alert changed."
  }
  assert {
    condition     = strcontains(google_monitoring_alert_policy.execution_failed["osh"].conditions[0].condition_threshold[0].filter, "resource.labels.job_name = \"mspo-spoc-osh\"")
    error_message = "The osh failed-execution alert is not scoped to the osh job."
  }
  assert {
    condition     = google_storage_bucket_iam_member.runtime_objects["osh"].condition[0].expression == "resource.name.startsWith(\"projects/_/buckets/my-project-mspo-spoc/objects/raw/mspo/api/osh/all-smallholder/\")" && google_storage_bucket_iam_member.runtime_objects["osh"].condition[0].title != google_storage_bucket_iam_member.runtime_objects["spoc"].condition[0].title
    error_message = "The runtime account's access to the osh prefix is not a binding of its own."
  }
  assert {
    condition     = google_cloud_run_v2_job_iam_member.scheduler_runs_job["osh"].name == "mspo-spoc-osh" && google_cloud_run_v2_job_iam_member.build_updates_job["osh"].name == "mspo-spoc-osh"
    error_message = "The scheduler may not run, or the build may not update, the osh job."
  }
  assert {
    condition     = google_bigquery_table.snapshots["osh"].table_id == "osh_snapshots_external" && google_bigquery_table.snapshots_by_date["osh"].table_id == "osh_snapshots" && google_bigquery_table.changes["osh"].table_id == "osh_changes_external" && google_bigquery_table.snapshots["spoc"].table_id == "spoc_snapshots_external"
    error_message = "Each dataset has its own tables."
  }
  assert {
    condition     = google_bigquery_table.snapshots["osh"].external_data_configuration[0].source_uris == tolist(["gs://my-project-mspo-spoc/raw/mspo/api/osh/all-smallholder/*osh-all-smallholder.parquet"]) && google_bigquery_table.changes["osh"].external_data_configuration[0].source_uris == tolist(["gs://my-project-mspo-spoc/raw/mspo/api/osh/all-smallholder/*/changes/osh-all-smallholder.changes.parquet"])
    error_message = "The osh tables do not read the osh objects."
  }
  assert {
    condition     = endswith(google_storage_bucket_object.snapshots_schema["osh"].name, "/osh-all-smallholder.schema.parquet") && startswith(google_storage_bucket_object.snapshots_schema["osh"].name, "raw/mspo/api/osh/all-smallholder/_schema/") && google_bigquery_table.snapshots["osh"].external_data_configuration[0].reference_file_schema_uri == "gs://my-project-mspo-spoc/${google_storage_bucket_object.snapshots_schema["osh"].name}"
    error_message = "The osh snapshot table does not read the osh reference schema."
  }
  assert {
    condition     = strcontains(google_bigquery_table.snapshots_by_date["osh"].view[0].query, "`my-project.mspo.osh_snapshots_external`")
    error_message = "The osh view does not read the osh table."
  }
  assert {
    condition = alltrue([for d in ["osh", "spoc"] :
      strcontains(google_bigquery_table.snapshots_by_date[d].view[0].query, "ST_GEOGPOINT(gps_coordinate_long, gps_coordinate_lat) AS geog")
    ])
    error_message = "A snapshots view of a list with a point does not give it as geog: ${google_bigquery_table.snapshots_by_date["osh"].view[0].query}"
  }
  assert {
    condition = (
      keys(google_bigquery_table.geo) == ["osh", "spoc"] && keys(google_bigquery_table.geo_by_date) == ["osh", "spoc"] &&
      google_bigquery_table.geo["osh"].table_id == "osh_geo_external" && google_bigquery_table.geo_by_date["osh"].table_id == "osh_geo" &&
      google_bigquery_table.geo["osh"].external_data_configuration[0].source_uris == tolist(["gs://my-project-mspo-spoc/raw/mspo/api/osh/all-smallholder/*/geo/osh-all-smallholder.geo.parquet"]) &&
      google_bigquery_table.geo["spoc"].external_data_configuration[0].source_uris == tolist(["gs://my-project-mspo-spoc/raw/mspo/api/spoc/get-spoc-list-public/*/geo/spoc-list-public.geo.parquet"]) &&
      google_bigquery_table.geo["osh"].external_data_configuration[0].reference_file_schema_uri == "gs://my-project-mspo-spoc/${google_storage_bucket_object.geo_schema["osh"].name}" &&
      startswith(google_storage_bucket_object.geo_schema["osh"].name, "raw/mspo/api/osh/all-smallholder/_schema/") && endswith(google_storage_bucket_object.geo_schema["osh"].name, "/osh-all-smallholder.geo.schema.parquet") &&
      strcontains(google_bigquery_table.geo_by_date["osh"].view[0].query, "FROM `my-project.mspo.osh_geo_external`") &&
      strcontains(google_bigquery_table.geo_by_date["osh"].view[0].query, "geometry AS geog")
    )
    error_message = "Each list with a point does not get its own geolocation table over its own layers, with its reference schema, and a view with geog."
  }
  assert {
    condition = (
      google_bigquery_table.versions["osh"].table_id == "osh_versions_external" && google_bigquery_table.history["osh"].table_id == "osh_history" && google_bigquery_routine.as_of["osh"].routine_id == "osh_as_of" &&
      google_bigquery_table.versions["osh"].external_data_configuration[0].source_uris == tolist(["gs://my-project-mspo-spoc/raw/mspo/api/osh/all-smallholder/*/history/osh-all-smallholder.versions.parquet"]) &&
      google_bigquery_table.versions["osh"].external_data_configuration[0].reference_file_schema_uri == "gs://my-project-mspo-spoc/${google_storage_bucket_object.versions_schema["osh"].name}" &&
      endswith(google_storage_bucket_object.versions_schema["osh"].name, "/osh-all-smallholder.versions.schema.parquet") &&
      strcontains(google_bigquery_table.history["osh"].view[0].query, "FROM `my-project.mspo.osh_versions_external`") &&
      strcontains(google_bigquery_routine.as_of["osh"].definition_body, "FROM `my-project.mspo.osh_versions_external`") &&
      google_bigquery_routine.as_of["spoc"].routine_id == "spoc_as_of"
    )
    error_message = "Each dataset does not have its own versions table, history view and as-of function over its own versions."
  }
  assert {
    condition     = length(jsondecode(google_monitoring_dashboard.spoc.dashboard_json).mosaicLayout.tiles) == 2 + length(local.dashboard_charts["spoc"]) + length(local.dashboard_charts["osh"])
    error_message = "The dashboard does not have a header and the charts of each dataset."
  }
  assert {
    condition = alltrue(flatten([
      for t in jsondecode(google_monitoring_dashboard.spoc.dashboard_json).mosaicLayout.tiles : [
        for s in try(t.widget.xyChart.dataSets, []) : strcontains(try(s.timeSeriesQuery.timeSeriesFilter.filter, s.timeSeriesQuery.prometheusQuery), "job=\"mspo-spoc-osh\"") && (strcontains(try(s.timeSeriesQuery.timeSeriesFilter.filter, ""), "workload.googleapis.com/osh.") || strcontains(try(s.timeSeriesQuery.prometheusQuery, ""), "workload_googleapis_com:osh_"))
      ] if startswith(try(t.widget.title, ""), "osh: ")
    ]))
    error_message = "An osh chart does not read the osh metrics of the osh job."
  }
  assert {
    condition     = length([for t in jsondecode(google_monitoring_dashboard.spoc.dashboard_json).mosaicLayout.tiles : t if startswith(try(t.widget.title, ""), "osh: ")]) == length(local.dashboard_charts["osh"])
    error_message = "The osh dataset does not have its charts."
  }
  assert {
    condition     = output.jobs["osh"].snapshot_url == "gs://my-project-mspo-spoc/raw/mspo/api/osh/all-smallholder/" && output.job_name == "mspo-spoc" && strcontains(output.build_command, "_JOBS=mspo-spoc mspo-spoc-osh,")
    error_message = "outputs: ${jsonencode(output.jobs)}, ${output.build_command}"
  }
}

run "osh_only" {
  command = plan

  variables {
    datasets = ["osh"]
  }

  assert {
    condition     = keys(google_cloud_run_v2_job.dataset) == ["osh"] && keys(google_cloud_scheduler_job.daily) == ["osh"] && keys(google_bigquery_table.snapshots) == ["osh"]
    error_message = "Only the osh dataset's resources are planned."
  }
  assert {
    condition     = keys(google_bigquery_table.versions) == ["osh"] && keys(google_bigquery_table.history) == ["osh"] && keys(google_bigquery_routine.as_of) == ["osh"]
    error_message = "Only the osh dataset's history objects are planned."
  }
  assert {
    condition     = length(jsondecode(google_monitoring_dashboard.spoc.dashboard_json).mosaicLayout.tiles) == 1 + length(local.dashboard_charts["osh"]) && keys(local.dashboard_charts) == ["osh"]
    error_message = "The dashboard has charts of a dataset not enabled."
  }
}

run "gm_beside_spoc" {
  command = plan

  variables {
    datasets         = ["spoc", "gm"]
    dataset_settings = {}
  }

  assert {
    condition     = keys(google_cloud_run_v2_job.dataset) == ["gm", "spoc"] && google_cloud_run_v2_job.dataset["gm"].name == "mspo-spoc-gm" && google_cloud_run_v2_job.dataset["spoc"].name == "mspo-spoc"
    error_message = "The gm dataset does not get a job of its own beside spoc's, at spoc's unchanged address."
  }
  assert {
    condition = (
      local.job_env["gm"]["SPOC_DATASET"] == "gm" &&
      local.job_env["gm"]["SPOC_URL"] == "https://api.mspots.org.my/api/groupmanager/list-public" &&
      local.job_env["gm"]["SPOC_PREFIX"] == "raw/mspo/api/groupmanager/list-public" &&
      local.job_env["gm"]["SPOC_MIN_RECORDS"] == "2000"
    )
    error_message = "The gm job does not get its dataset, URL, prefix and floor: ${jsonencode(local.job_env["gm"])}"
  }
  assert {
    condition     = strcontains(google_monitoring_alert_policy.stale_snapshot["gm"].conditions[0].condition_prometheus_query_language[0].query, "gm_last_success") && strcontains(google_monitoring_alert_policy.execution_failed["gm"].conditions[0].condition_threshold[0].filter, "resource.labels.job_name = \"mspo-spoc-gm\"")
    error_message = "The gm alerts do not watch the gm job and its gm.last_success."
  }
  assert {
    condition     = google_bigquery_table.snapshots["gm"].table_id == "gm_snapshots_external" && google_bigquery_table.changes["gm"].table_id == "gm_changes_external" && endswith(google_storage_bucket_object.snapshots_schema["gm"].name, "/groupmanager-list-public.schema.parquet")
    error_message = "The gm BigQuery tables do not read the gm objects and reference schema."
  }
  assert {
    condition = (
      strcontains(google_bigquery_table.snapshots_by_date["gm"].view[0].query, "ST_GEOGPOINT(gps_coordinate_long, gps_coordinate_lat) AS geog") &&
      google_bigquery_table.geo["gm"].external_data_configuration[0].source_uris == tolist(["gs://my-project-mspo-spoc/raw/mspo/api/groupmanager/list-public/*/geo/groupmanager-list-public.geo.parquet"]) &&
      endswith(google_storage_bucket_object.geo_schema["gm"].name, "/groupmanager-list-public.geo.schema.parquet")
    )
    error_message = "The gm view does not give geog, or the gm geolocation table does not read the gm layers."
  }
}

run "references_beside_spoc" {
  command = plan

  variables {
    datasets         = ["spoc", "references"]
    dataset_settings = {}
  }

  assert {
    condition     = keys(google_cloud_run_v2_job.dataset) == ["references", "spoc"] && google_cloud_run_v2_job.dataset["references"].name == "mspo-spoc-references" && google_cloud_run_v2_job.dataset["spoc"].name == "mspo-spoc"
    error_message = "references does not get one job of its own beside spoc's, at spoc's unchanged address."
  }
  assert {
    condition     = keys(google_cloud_scheduler_job.daily) == ["references", "spoc"] && google_cloud_scheduler_job.daily["references"].http_target[0].uri == "https://run.googleapis.com/v2/projects/my-project/locations/asia-southeast1/jobs/mspo-spoc-references:run"
    error_message = "references does not get one schedule that starts its job."
  }
  assert {
    condition = (
      local.job_env["references"]["SPOC_DATASET"] == "references" &&
      !contains(keys(local.job_env["references"]), "SPOC_URL") &&
      !contains(keys(local.job_env["references"]), "SPOC_PREFIX") &&
      local.job_env["references"]["SPOC_MIN_RECORDS"] == "states=13,zones=9"
    )
    error_message = "The references job must select the group, leave each list its URL and prefix, and give each list its own floor: ${jsonencode(local.job_env["references"])}"
  }
  assert {
    condition = alltrue([for l in ["states", "zones"] : (
      strcontains(google_monitoring_alert_policy.stale_snapshot[l].conditions[0].condition_prometheus_query_language[0].query, "workload_googleapis_com:${l}_last_success{monitored_resource=\"generic_task\",job=\"mspo-spoc-references\"}") &&
      google_monitoring_alert_policy.stale_snapshot[l].display_name == "mspo-spoc-references: no ${l} snapshot for 36 h"
    )]) && keys(google_monitoring_alert_policy.stale_snapshot) == ["spoc", "states", "zones"] && google_monitoring_alert_policy.stale_snapshot["spoc"].display_name == "mspo-spoc: no snapshot for 36 h"
    error_message = "Each reference list does not get its own staleness alert, named for it, on the references job."
  }
  assert {
    condition = (
      keys(time_static.deployed) == ["spoc", "states", "zones"] &&
      time_static.deployed["zones"].triggers["job"] == "mspo-spoc-references" &&
      time_static.deployed["spoc"].triggers["job"] == "mspo-spoc" &&
      strcontains(google_monitoring_alert_policy.stale_snapshot["zones"].conditions[0].condition_prometheus_query_language[0].query, "> ${1764633600 + 36 * 3600}")
    )
    error_message = "Each list does not get its own deployment time, renewed with its job, that its staleness alert waits for."
  }
  assert {
    condition = (
      keys(google_monitoring_alert_policy.execution_failed) == ["references", "spoc"] &&
      strcontains(google_monitoring_alert_policy.execution_failed["references"].conditions[0].condition_threshold[0].filter, "resource.labels.job_name = \"mspo-spoc-references\"") &&
      strcontains(google_monitoring_alert_policy.execution_failed["references"].documentation[0].content, "publishes states, zones,") &&
      strcontains(google_monitoring_alert_policy.execution_failed["spoc"].conditions[0].condition_threshold[0].filter, "resource.labels.job_name = \"mspo-spoc\"")
    )
    error_message = "The references job does not get exactly one execution_failed alert, naming its lists, beside spoc's."
  }
  assert {
    condition = (
      google_bigquery_table.snapshots["states"].table_id == "states_snapshots_external" && google_bigquery_table.changes["zones"].table_id == "zones_changes_external" &&
      google_bigquery_table.snapshots["states"].external_data_configuration[0].source_uris == tolist(["gs://my-project-mspo-spoc/raw/mspo/api/references/states/*references-states.parquet"]) &&
      google_bigquery_table.snapshots["zones"].external_data_configuration[0].source_uris == tolist(["gs://my-project-mspo-spoc/raw/mspo/api/spoc/zones/*spoc-zones.parquet"]) &&
      !contains(keys(google_bigquery_table.snapshots), "references")
    )
    error_message = "Each reference list does not get its own BigQuery tables over its own prefix."
  }
  # A reference list has no point: no geog in its view, no layer.
  assert {
    condition = (
      !strcontains(google_bigquery_table.snapshots_by_date["states"].view[0].query, "geog") &&
      !strcontains(google_bigquery_table.snapshots_by_date["zones"].view[0].query, "geog") &&
      strcontains(google_bigquery_table.snapshots_by_date["spoc"].view[0].query, "AS geog") &&
      keys(google_bigquery_table.geo) == ["spoc"] && keys(google_storage_bucket_object.geo_schema) == ["spoc"]
    )
    error_message = "A reference list's view has a geog, or the list has geolocation objects: ${google_bigquery_table.snapshots_by_date["states"].view[0].query}"
  }
  # A reference list's plot is its own id: the view and the function
  # partition by it, not by a smallholder id.
  assert {
    condition = (
      keys(google_bigquery_routine.as_of) == ["spoc", "states", "zones"] &&
      strcontains(google_bigquery_table.history["states"].view[0].query, "PARTITION BY state_id ORDER BY valid_from") &&
      strcontains(google_bigquery_routine.as_of["states"].definition_body, "PARTITION BY state_id ORDER BY valid_from DESC") &&
      strcontains(google_bigquery_table.history["zones"].view[0].query, "PARTITION BY zone_id ORDER BY valid_from") &&
      strcontains(google_bigquery_routine.as_of["zones"].definition_body, "FROM `my-project.mspo.zones_versions_external`") &&
      google_bigquery_table.versions["states"].external_data_configuration[0].source_uris == tolist(["gs://my-project-mspo-spoc/raw/mspo/api/references/states/*/history/references-states.versions.parquet"])
    )
    error_message = "Each reference list's history objects do not partition by its own key or read its own versions."
  }
  assert {
    condition     = google_storage_bucket_iam_member.runtime_objects["states"].condition[0].expression == "resource.name.startsWith(\"projects/_/buckets/my-project-mspo-spoc/objects/raw/mspo/api/references/states/\")" && contains(keys(google_storage_bucket_iam_member.runtime_objects), "zones")
    error_message = "The runtime account cannot write each reference list's prefix."
  }
}

run "references_with_one_floor" {
  command = plan

  variables {
    datasets         = ["spoc", "references"]
    dataset_settings = { references = { min_records = 5 } }
  }

  assert {
    condition     = local.job_env["references"]["SPOC_MIN_RECORDS"] == "5" && local.job_env["spoc"]["SPOC_MIN_RECORDS"] == "250000"
    error_message = "dataset_settings.references.min_records must be one floor for every list of the references job, and leave spoc's alone: ${jsonencode(local.job_env["references"])}"
  }
}

run "refuses_a_list_both_alone_and_in_its_group" {
  command = plan

  variables {
    datasets         = ["spoc", "states", "references"]
    dataset_settings = {}
  }

  expect_failures = [time_sleep.apis_ready]
}

run "refuses_an_unknown_dataset" {
  command = plan

  variables {
    datasets = ["spoc", "palm"]
  }

  expect_failures = [time_sleep.apis_ready]
}

run "refuses_settings_of_a_dataset_not_enabled" {
  command = plan

  variables {
    datasets = ["spoc"]
  }

  expect_failures = [time_sleep.apis_ready]
}

run "refuses_a_dataset_setting_the_deployment_decides" {
  command = plan

  variables {
    dataset_settings = {
      osh = { job_settings = { SPOC_DATASET = "spoc" } }
    }
  }

  expect_failures = [google_cloud_run_v2_job.dataset["spoc"], google_cloud_run_v2_job.dataset["osh"]]
}

run "refuses_a_bad_dataset_prefix" {
  command = plan

  variables {
    dataset_settings = {
      osh = { output_prefix = "/raw/osh/" }
    }
  }

  expect_failures = [var.dataset_settings]
}
