# Two identities, each with only what it needs:
#   runtime   - the job itself: objects under the output prefix, metrics, traces;
#   scheduler - Cloud Scheduler's caller: may start this one job, nothing else.

resource "google_service_account" "runtime" {
  account_id   = "${var.job_name}-run"
  display_name = "mspo-spoc job runtime"
  description  = "Identity of the mspo-spoc Cloud Run job: writes snapshots under one prefix of one bucket."

  depends_on = [time_sleep.apis_ready]
}

resource "google_service_account" "scheduler" {
  account_id   = "${var.job_name}-sched"
  display_name = "mspo-spoc scheduler"
  description  = "Identity Cloud Scheduler uses to start the mspo-spoc Cloud Run job."

  depends_on = [time_sleep.apis_ready]
}

# Create, overwrite (a rerun of a day replaces its objects, which GCS counts
# as a delete) and read objects, only under the datasets' prefixes: the
# conditions keep the rest of the bucket out of reach. One runtime account
# runs every dataset's job, with one binding per prefix (IAM tells the
# bindings of one role and member apart by their condition's title).
moved {
  from = google_storage_bucket_iam_member.runtime_objects
  to   = google_storage_bucket_iam_member.runtime_objects["spoc"]
}

resource "google_storage_bucket_iam_member" "runtime_objects" {
  for_each = local.datasets

  bucket = local.bucket_name
  role   = "roles/storage.objectUser"
  member = google_service_account.runtime.member

  condition {
    title       = "only-${each.value.job_name}-prefix"
    description = "Objects under the ${each.key} dataset's output prefix."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${local.bucket_name}/objects/${each.value.output_prefix}/\")"
  }

  depends_on = [time_sleep.apis_ready]
}

# Finding the previous day's manifest, and a killed run's leftovers in
# the day's folder, needs storage.objects.list, which IAM checks against
# the bucket, not an object: the prefix condition above never matches a
# list. This binding allows the list call (object names) and nothing else
# (object reads stay under the condition above), and only for a listed
# prefix under one of the datasets' prefixes. IAM Conditions' attribute
# reference documents storage.googleapis.com/objectListPrefix, the prefix
# of an objects.list request, for this ('' when the request has none, so
# a list of the whole bucket is refused). The job lists "PREFIX/" (the
# previous days: pkg/snapshot's findPrevious) and "PREFIX/YYYYMMDD/" (the
# day's leftovers: pkg/transaction's removeLeftovers) and nothing else;
# cmd/job's TestJobListsOnlyUnderItsPrefix checks that against the
# storage emulator. One binding per list, like the object bindings.
resource "google_storage_bucket_iam_member" "runtime_list" {
  for_each = local.datasets

  bucket = local.bucket_name
  role   = "roles/storage.objectViewer"
  member = google_service_account.runtime.member

  condition {
    title       = "list-${each.key}-prefix"
    description = "Listing object names under the ${each.key} dataset's output prefix; no object access."
    expression  = "resource.type == \"storage.googleapis.com/Bucket\" && api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${each.value.output_prefix}/\")"
  }

  depends_on = [time_sleep.apis_ready]
}

resource "google_project_iam_member" "runtime_metrics" {
  project = var.project_id
  role    = "roles/monitoring.metricWriter"
  member  = google_service_account.runtime.member

  depends_on = [time_sleep.apis_ready]
}

resource "google_project_iam_member" "runtime_traces" {
  project = var.project_id
  role    = "roles/cloudtrace.agent"
  member  = google_service_account.runtime.member

  depends_on = [time_sleep.apis_ready]
}

# With native BigQuery tables, each job loads its day into them: a load
# job runs in the project (bigquery.jobs.create: Job User, which reads
# no table) and writes the dataset's tables (Data Editor, on this
# dataset only). It reads the objects it loads as the runtime account:
# storage.objects.get, which runtime_objects grants under each dataset's
# prefix, where the loaded objects are; a load of named objects (no
# wildcard) needs no objects.list.
resource "google_project_iam_member" "runtime_bigquery_jobs" {
  count = local.bigquery_native ? 1 : 0

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.runtime.member

  depends_on = [time_sleep.apis_ready]
}

resource "google_bigquery_dataset_iam_member" "runtime_loads" {
  count = local.bigquery_native ? 1 : 0

  dataset_id = google_bigquery_dataset.spoc[0].dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.runtime.member
}

# Bound on each job, not the project: the scheduler can run these jobs and
# no other, not invoke services or change anything. Google's IAM roles
# reference for Cloud Run (cloud.google.com/iam/docs/roles-permissions/run)
# gives Cloud Run Jobs Executor "execute and cancel Cloud Run jobs":
# run.jobs.run ("Invoke (execute) jobs") and run.executions.cancel. The
# scheduler's :run request has no body, so no overrides, and needs no
# run.jobs.runWithOverrides (Jobs Executor With Overrides, which a run by
# hand with --update-env-vars needs).
moved {
  from = google_cloud_run_v2_job_iam_member.scheduler_runs_job
  to   = google_cloud_run_v2_job_iam_member.scheduler_runs_job["spoc"]
}

resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_job" {
  for_each = local.jobs

  name     = google_cloud_run_v2_job.dataset[each.key].name
  location = google_cloud_run_v2_job.dataset[each.key].location
  role     = "roles/run.jobsExecutor"
  member   = google_service_account.scheduler.member
}
