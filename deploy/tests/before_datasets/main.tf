# The deployment's resources at their addresses before there were datasets
# (one job, unkeyed), with the attributes that would force a replacement
# set as the deployment sets them for the spoc dataset. moved.tftest.hcl
# applies this first, then the deployment on the same state: the moved
# blocks must carry every resource over, without a replacement.

variable "project_id" {
  type = string
}

variable "bucket_name" {
  type = string
}

variable "bigquery_dataset" {
  type = string
}

locals {
  prefix = "raw/mspo/api/spoc/get-spoc-list-public"
  schema = {
    snapshots = "spoc-list-public.schema.parquet"
    changes   = "spoc-list-public.changes.schema.parquet"
  }
}

resource "google_storage_bucket" "snapshots" {
  count    = 1
  name     = var.bucket_name
  location = "asia-southeast1"
}

resource "google_service_account" "runtime" {
  account_id = "mspo-spoc-run"
}

resource "google_service_account" "scheduler" {
  account_id = "mspo-spoc-sched"
}

resource "google_service_account" "build" {
  account_id = "mspo-spoc-build"
}

resource "google_cloud_run_v2_job" "spoc" {
  name                = "mspo-spoc"
  location            = "asia-southeast1"
  deletion_protection = true
  template {
    template {
      containers {
        image = "us-docker.pkg.dev/cloudrun/container/job:latest"
      }
    }
  }
}

resource "google_cloud_scheduler_job" "daily" {
  name     = "mspo-spoc-daily"
  region   = "asia-southeast1"
  schedule = "0 3 * * *"
  http_target {
    uri = "https://run.googleapis.com/v2/projects/${var.project_id}/locations/asia-southeast1/jobs/mspo-spoc:run"
  }
}

resource "google_monitoring_alert_policy" "execution_failed" {
  display_name = "mspo-spoc: execution failed"
  combiner     = "OR"
  conditions {
    display_name = "failed"
    condition_threshold {
      filter     = "metric.type = \"run.googleapis.com/job/completed_execution_count\""
      comparison = "COMPARISON_GT"
      duration   = "0s"
    }
  }
}

resource "google_monitoring_alert_policy" "stale_snapshot" {
  display_name = "mspo-spoc: no snapshot for 36 h"
  combiner     = "OR"
  conditions {
    display_name = "stale"
    condition_prometheus_query_language {
      query = "absent_over_time(workload_googleapis_com:spoc_last_success[36h])"
    }
  }
}

resource "google_storage_bucket_iam_member" "runtime_objects" {
  bucket = google_storage_bucket.snapshots[0].name
  role   = "roles/storage.objectUser"
  member = google_service_account.runtime.member
  condition {
    title       = "only-mspo-spoc-prefix"
    description = "Objects under the spoc dataset's output prefix."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${var.bucket_name}/objects/${local.prefix}/\")"
  }
}

resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_job" {
  name     = google_cloud_run_v2_job.spoc.name
  location = google_cloud_run_v2_job.spoc.location
  role     = "roles/run.jobsExecutor"
  member   = google_service_account.scheduler.member
}

resource "google_cloud_run_v2_job_iam_member" "build_updates_job" {
  name     = google_cloud_run_v2_job.spoc.name
  location = google_cloud_run_v2_job.spoc.location
  role     = "roles/run.developer"
  member   = google_service_account.build.member
}

resource "google_bigquery_dataset" "spoc" {
  count      = 1
  dataset_id = var.bigquery_dataset
  location   = "asia-southeast1"
}

resource "google_storage_bucket_object" "schema" {
  for_each = local.schema
  bucket   = google_storage_bucket.snapshots[0].name
  # As the deployment names it: relative to deploy/, where terraform
  # test runs (path.module is "." there).
  name         = "${local.prefix}/_schema/${substr(filemd5("./schema/${each.value}"), 0, 12)}/${each.value}"
  source       = "./schema/${each.value}"
  content_type = "application/vnd.apache.parquet"
}

resource "google_bigquery_table" "snapshots" {
  count               = 1
  dataset_id          = google_bigquery_dataset.spoc[0].dataset_id
  table_id            = "spoc_snapshots_external"
  deletion_protection = false
  external_data_configuration {
    source_format             = "PARQUET"
    autodetect                = false
    reference_file_schema_uri = "gs://${var.bucket_name}/${google_storage_bucket_object.schema["snapshots"].name}"
    source_uris               = ["gs://${var.bucket_name}/${local.prefix}/*spoc-list-public.parquet"]
  }
}

resource "google_bigquery_table" "snapshots_by_date" {
  count               = 1
  dataset_id          = google_bigquery_dataset.spoc[0].dataset_id
  table_id            = "spoc_snapshots"
  deletion_protection = false
  view {
    use_legacy_sql = false
    query          = "SELECT * FROM `${var.project_id}.${var.bigquery_dataset}.spoc_snapshots_external`"
  }
}

resource "google_bigquery_table" "changes" {
  count               = 1
  dataset_id          = google_bigquery_dataset.spoc[0].dataset_id
  table_id            = "spoc_changes_external"
  deletion_protection = false
  external_data_configuration {
    source_format             = "PARQUET"
    autodetect                = false
    reference_file_schema_uri = "gs://${var.bucket_name}/${google_storage_bucket_object.schema["changes"].name}"
    source_uris               = ["gs://${var.bucket_name}/${local.prefix}/*/changes/spoc-list-public.changes.parquet"]
    parquet_options {
      enable_list_inference = true
    }
  }
}

# What moved.tftest.hcl compares after the move: an id the mock provider
# makes up at creation, which a replacement would make up again.
output "ids" {
  value = {
    job               = google_cloud_run_v2_job.spoc.id
    scheduler         = google_cloud_scheduler_job.daily.id
    execution_failed  = google_monitoring_alert_policy.execution_failed.id
    stale_snapshot    = google_monitoring_alert_policy.stale_snapshot.id
    runtime_objects   = google_storage_bucket_iam_member.runtime_objects.id
    scheduler_runs    = google_cloud_run_v2_job_iam_member.scheduler_runs_job.id
    build_updates     = google_cloud_run_v2_job_iam_member.build_updates_job.id
    snapshots_schema  = google_storage_bucket_object.schema["snapshots"].id
    changes_schema    = google_storage_bucket_object.schema["changes"].id
    snapshots_table   = google_bigquery_table.snapshots[0].id
    snapshots_by_date = google_bigquery_table.snapshots_by_date[0].id
    changes_table     = google_bigquery_table.changes[0].id
  }
}
