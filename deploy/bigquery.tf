# Optional: every day's snapshot queryable from BigQuery without loading it.
# The date folders are not hive-style (key=value), so the table reads all
# snapshots with one wildcard, and the view takes the date from the file name.

locals {
  bigquery = var.bigquery_dataset != "" ? 1 : 0
}

resource "google_bigquery_dataset" "spoc" {
  count = local.bigquery

  dataset_id  = var.bigquery_dataset
  location    = var.bigquery_location != "" ? var.bigquery_location : var.region
  description = "MSPO SPOC smallholder snapshots written by ${var.job_name}."

  depends_on = [google_project_service.required]
}

resource "google_bigquery_table" "snapshots" {
  count = local.bigquery

  dataset_id          = google_bigquery_dataset.spoc[0].dataset_id
  table_id            = "spoc_snapshots_external"
  description         = "Every daily Parquet snapshot under gs://${local.bucket_name}/${local.output_prefix}/."
  deletion_protection = false

  external_data_configuration {
    source_format = "PARQUET"
    autodetect    = true
    # One wildcard (BigQuery allows one), which also matches "/": here
    # the YYYYMMDD/ folder. The change tables, in YYYYMMDD/changes/, end
    # with another name.
    source_uris = ["gs://${local.bucket_name}/${local.output_prefix}/*spoc-list-public.parquet"]
  }
}

resource "google_bigquery_table" "snapshots_by_date" {
  count = local.bigquery

  dataset_id          = google_bigquery_dataset.spoc[0].dataset_id
  table_id            = "spoc_snapshots"
  description         = "The snapshots with their date; filter on snapshot_date."
  deletion_protection = false

  view {
    use_legacy_sql = false
    query          = <<-EOT
      SELECT
        PARSE_DATE('%Y%m%d', REGEXP_EXTRACT(_FILE_NAME, r'/(\d{8})/[^/]+$')) AS snapshot_date,
        *
      FROM `${var.project_id}.${var.bigquery_dataset}.${google_bigquery_table.snapshots[0].table_id}`
    EOT
  }
}

resource "google_bigquery_table" "changes" {
  count = local.bigquery

  dataset_id          = google_bigquery_dataset.spoc[0].dataset_id
  table_id            = "spoc_changes_external"
  description         = "Every day's change table (plots added, removed, changed) under gs://${local.bucket_name}/${local.output_prefix}/*/changes/."
  deletion_protection = false

  external_data_configuration {
    source_format = "PARQUET"
    autodetect    = true
    source_uris   = ["gs://${local.bucket_name}/${local.output_prefix}/*/changes/spoc-list-public.changes.parquet"]
  }
}
