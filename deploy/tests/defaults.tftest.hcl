# terraform test (run from deploy/, after terraform init -backend=false):
# plan and apply with only the required variables, against mock providers,
# and the wiring a mistake would silently break. The providers' schemas and
# validators are real; only their API calls are mocked (tests/mocks/).

mock_provider "google" {
  source = "./tests/mocks/google"
}

mock_provider "time" {
  source = "./tests/mocks/time"
}

variables {
  project_id  = "my-project"
  bucket_name = "my-project-mspo-spoc"
}

run "plan_with_required_variables_only" {
  command = plan

  assert {
    condition     = length(google_storage_bucket.snapshots) == 1 && google_storage_bucket.snapshots[0].name == "my-project-mspo-spoc"
    error_message = "create_bucket defaults to true: the plan must create the bucket."
  }
  assert {
    condition     = length(google_bigquery_dataset.spoc) == 0 && length(google_bigquery_table.snapshots) == 0 && length(google_storage_bucket_object.snapshots_schema) == 0
    error_message = "BigQuery is off unless bigquery_dataset is set."
  }
  assert {
    condition     = length(google_bigquery_table.versions) == 0 && length(google_bigquery_table.history) == 0 && length(google_bigquery_routine.as_of) == 0 && length(google_storage_bucket_object.versions_schema) == 0
    error_message = "The history objects are BigQuery's: none unless bigquery_dataset is set."
  }
  assert {
    condition     = time_sleep.apis_ready.create_duration == "90s"
    error_message = "The resources that call APIs wait for their activation to settle."
  }
}

# One dashboard, with a header and the charts of the one dataset, every
# chart on that dataset's job.
run "dashboard_of_the_default_dataset" {
  command = plan

  assert {
    condition     = jsondecode(google_monitoring_dashboard.spoc.dashboard_json).displayName == "mspo-spoc: published lists"
    error_message = "The dashboard is not named after the deployment: ${jsondecode(google_monitoring_dashboard.spoc.dashboard_json).displayName}"
  }
  assert {
    condition     = length(jsondecode(google_monitoring_dashboard.spoc.dashboard_json).mosaicLayout.tiles) == 1 + length(local.dashboard_charts["spoc"]) && length(local.dashboard_charts["spoc"]) >= 7
    error_message = "The dashboard does not have a header and the spoc dataset's charts."
  }
  assert {
    condition = alltrue(flatten([
      for t in jsondecode(google_monitoring_dashboard.spoc.dashboard_json).mosaicLayout.tiles : [
        for s in try(t.widget.xyChart.dataSets, []) : strcontains(try(s.timeSeriesQuery.timeSeriesFilter.filter, s.timeSeriesQuery.prometheusQuery), "job=\"mspo-spoc\"")
      ]
    ]))
    error_message = "A chart does not read the mspo-spoc job's series."
  }
}

run "apply_with_required_variables_only" {
  command = apply

  # The scheduler starts this job's :run, with an OAuth token (not OIDC:
  # the target is a Google API) of its own account.
  assert {
    condition     = google_cloud_scheduler_job.daily["spoc"].http_target[0].uri == "https://run.googleapis.com/v2/projects/my-project/locations/asia-southeast1/jobs/mspo-spoc:run"
    error_message = "The scheduler does not target the job's :run URL: ${google_cloud_scheduler_job.daily["spoc"].http_target[0].uri}"
  }
  assert {
    condition     = google_cloud_scheduler_job.daily["spoc"].http_target[0].http_method == "POST"
    error_message = "The scheduler's call is not a POST."
  }
  assert {
    condition     = length(google_cloud_scheduler_job.daily["spoc"].http_target[0].oauth_token) == 1 && length(google_cloud_scheduler_job.daily["spoc"].http_target[0].oidc_token) == 0
    error_message = "The scheduler must send an OAuth token, not an OIDC one."
  }
  assert {
    condition     = google_cloud_scheduler_job.daily["spoc"].http_target[0].oauth_token[0].service_account_email == "mspo-spoc-sched@my-project.iam.gserviceaccount.com"
    error_message = "The scheduler's token is not the scheduler account's."
  }
  assert {
    condition     = google_cloud_scheduler_job.daily["spoc"].schedule == "0 3 * * *" && google_cloud_scheduler_job.daily["spoc"].time_zone == "Asia/Kuala_Lumpur"
    error_message = "The schedule is not 03:00 Kuala Lumpur."
  }

  # The job runs as the runtime account, with the deployment's settings.
  assert {
    condition     = google_cloud_run_v2_job.dataset["spoc"].template[0].template[0].service_account == "mspo-spoc-run@my-project.iam.gserviceaccount.com"
    error_message = "The job does not run as the runtime account."
  }
  assert {
    condition     = local.job_env["spoc"]["SPOC_OUTPUT"] == "gs://my-project-mspo-spoc" && local.job_env["spoc"]["SPOC_PREFIX"] == "raw/mspo/api/spoc/get-spoc-list-public"
    error_message = "The job does not write to the bucket's prefix."
  }
  assert {
    condition     = local.job_env["spoc"]["SPOC_MIN_RECORDS"] == "250000"
    error_message = "The deployed job must refuse a first day far below the list's size."
  }
  assert {
    condition = alltrue([
      for e in google_cloud_run_v2_job.dataset["spoc"].template[0].template[0].containers[0].env : local.job_env["spoc"][e.name] == e.value
    ]) && length(google_cloud_run_v2_job.dataset["spoc"].template[0].template[0].containers[0].env) == length(local.job_env["spoc"])
    error_message = "The container's environment is not local.job_env."
  }
  assert {
    condition     = one([for e in google_cloud_run_v2_job.dataset["spoc"].template[0].template[0].containers[0].env : e.value if e.name == "SPOC_LOG_FORMAT"]) == "json"
    error_message = "The job does not log JSON for Cloud Logging."
  }

  # The staleness alert reads this job's series only.
  assert {
    condition     = strcontains(google_monitoring_alert_policy.stale_snapshot["spoc"].conditions[0].condition_prometheus_query_language[0].query, "job=\"mspo-spoc\"")
    error_message = "The staleness alert is not scoped to this job: ${google_monitoring_alert_policy.stale_snapshot["spoc"].conditions[0].condition_prometheus_query_language[0].query}"
  }
  assert {
    condition     = strcontains(google_monitoring_alert_policy.stale_snapshot["spoc"].conditions[0].condition_prometheus_query_language[0].query, "> ${1764633600 + 36 * 3600}")
    error_message = "The staleness alert must wait out the first 36 h after the first apply."
  }
  assert {
    condition     = strcontains(google_monitoring_alert_policy.execution_failed["spoc"].conditions[0].condition_threshold[0].filter, "resource.labels.job_name = \"mspo-spoc\"")
    error_message = "The failed-execution alert is not scoped to this job."
  }

  # Who may do what.
  assert {
    condition     = google_cloud_run_v2_job_iam_member.scheduler_runs_job["spoc"].member == "serviceAccount:mspo-spoc-sched@my-project.iam.gserviceaccount.com" && google_cloud_run_v2_job_iam_member.scheduler_runs_job["spoc"].role == "roles/run.jobsExecutor" && google_cloud_run_v2_job_iam_member.scheduler_runs_job["spoc"].name == "mspo-spoc"
    error_message = "The scheduler account may not run exactly this job."
  }
  assert {
    condition     = google_storage_bucket_iam_member.runtime_objects["spoc"].member == "serviceAccount:mspo-spoc-run@my-project.iam.gserviceaccount.com" && google_storage_bucket_iam_member.runtime_objects["spoc"].bucket == "my-project-mspo-spoc"
    error_message = "The runtime account's object role is not on the snapshot bucket."
  }
  assert {
    condition     = google_storage_bucket_iam_member.runtime_objects["spoc"].condition[0].expression == "resource.name.startsWith(\"projects/_/buckets/my-project-mspo-spoc/objects/raw/mspo/api/spoc/get-spoc-list-public/\")"
    error_message = "The runtime account's object access is not limited to the prefix: ${google_storage_bucket_iam_member.runtime_objects["spoc"].condition[0].expression}"
  }
  assert {
    condition     = google_project_iam_member.runtime_metrics.member == "serviceAccount:mspo-spoc-run@my-project.iam.gserviceaccount.com" && google_project_iam_member.runtime_metrics.role == "roles/monitoring.metricWriter"
    error_message = "The runtime account cannot write its metrics."
  }
  assert {
    condition     = google_service_account_iam_member.build_acts_as_runtime.service_account_id == "projects/my-project/serviceAccounts/mspo-spoc-run@my-project.iam.gserviceaccount.com" && google_service_account_iam_member.build_acts_as_runtime.member == "serviceAccount:mspo-spoc-build@my-project.iam.gserviceaccount.com"
    error_message = "The build account cannot act as the runtime account (gcloud run jobs update needs it)."
  }
  assert {
    condition     = google_artifact_registry_repository_iam_member.build_pushes.member == "serviceAccount:mspo-spoc-build@my-project.iam.gserviceaccount.com" && google_artifact_registry_repository_iam_member.build_pushes.repository == "mspo-spoc"
    error_message = "The build account cannot push to the repository."
  }
  assert {
    condition     = strcontains(output.build_command, "--service-account projects/my-project/serviceAccounts/mspo-spoc-build@my-project.iam.gserviceaccount.com") && strcontains(output.build_command, "--region asia-east1")
    error_message = "build_command: ${output.build_command}"
  }
}
