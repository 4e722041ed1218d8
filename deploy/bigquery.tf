# Optional: every day's snapshot queryable from BigQuery without loading it.
# The date folders are not hive-style (key=value), so the table reads all
# snapshots with one wildcard, and the view takes the date from the file name.
#
# A Parquet external table takes no schema of its own (the provider refuses
# external_data_configuration.schema for Parquet), and autodetect needs a
# file to look at, which an empty bucket does not have. So each table reads
# its schema from a reference file: a zero-row Parquet file written by the
# job's own writer (deploy/schema/, checked against the job's schemas by
# cmd/job's TestBigQuerySchemaFiles), uploaded here under the prefix's
# _schema/ folder, three levels deep so that no snapshot or change-table
# glob matches it. Its MD5 is in its name, so a new schema file is a new
# object; and since BigQuery reads the reference file only when it creates
# an external table (the provider updates reference_file_schema_uri in
# place, it is not ForceNew), each table is replaced with its schema object
# (replace_triggered_by), or it would keep the old schema.

locals {
  bigquery = var.bigquery_dataset != "" ? 1 : 0
  # The datasets with tables, when BigQuery is on.
  bigquery_datasets = local.bigquery == 1 ? local.datasets : {}
}

# The spoc dataset's objects and tables had these addresses before there
# were datasets.
moved {
  from = google_storage_bucket_object.schema["snapshots"]
  to   = google_storage_bucket_object.snapshots_schema["spoc"]
}

moved {
  from = google_storage_bucket_object.schema["changes"]
  to   = google_storage_bucket_object.changes_schema["spoc"]
}

moved {
  from = google_bigquery_table.snapshots[0]
  to   = google_bigquery_table.snapshots["spoc"]
}

moved {
  from = google_bigquery_table.snapshots_by_date[0]
  to   = google_bigquery_table.snapshots_by_date["spoc"]
}

moved {
  from = google_bigquery_table.changes[0]
  to   = google_bigquery_table.changes["spoc"]
}

# One resource per table kind, keyed by dataset, so that each table's
# replace_triggered_by names its own schema object (it takes each.key as
# an index, not an expression).
resource "google_storage_bucket_object" "snapshots_schema" {
  for_each = local.bigquery_datasets

  bucket       = local.bucket_name
  name         = "${each.value.output_prefix}/_schema/${substr(filemd5("${path.module}/schema/${each.value.schema_files.snapshots}"), 0, 12)}/${each.value.schema_files.snapshots}"
  source       = "${path.module}/schema/${each.value.schema_files.snapshots}"
  content_type = "application/vnd.apache.parquet"
}

resource "google_storage_bucket_object" "changes_schema" {
  for_each = local.bigquery_datasets

  bucket       = local.bucket_name
  name         = "${each.value.output_prefix}/_schema/${substr(filemd5("${path.module}/schema/${each.value.schema_files.changes}"), 0, 12)}/${each.value.schema_files.changes}"
  source       = "${path.module}/schema/${each.value.schema_files.changes}"
  content_type = "application/vnd.apache.parquet"
}

resource "google_bigquery_dataset" "spoc" {
  count = local.bigquery

  dataset_id  = var.bigquery_dataset
  location    = var.bigquery_location != "" ? var.bigquery_location : var.region
  description = "MSPO smallholder snapshots written by ${var.job_name}."

  depends_on = [time_sleep.apis_ready]
}

resource "google_bigquery_table" "snapshots" {
  for_each = local.bigquery_datasets

  dataset_id          = google_bigquery_dataset.spoc[0].dataset_id
  table_id            = "${each.value.bigquery_table}_snapshots_external"
  description         = "Every daily Parquet snapshot under gs://${local.bucket_name}/${each.value.output_prefix}/."
  deletion_protection = false

  external_data_configuration {
    source_format             = "PARQUET"
    autodetect                = false
    reference_file_schema_uri = "gs://${local.bucket_name}/${google_storage_bucket_object.snapshots_schema[each.key].name}"
    # One wildcard (BigQuery allows one), which also matches "/": here
    # the YYYYMMDD/ folder. The change tables, in YYYYMMDD/changes/, end
    # with another name.
    source_uris = ["gs://${local.bucket_name}/${each.value.output_prefix}/*${each.value.object}.parquet"]
  }

  lifecycle {
    replace_triggered_by = [google_storage_bucket_object.snapshots_schema[each.key]]
  }
}

resource "google_bigquery_table" "snapshots_by_date" {
  for_each = local.bigquery_datasets

  dataset_id          = google_bigquery_dataset.spoc[0].dataset_id
  table_id            = "${each.value.bigquery_table}_snapshots"
  description         = "The ${each.key} snapshots with their date; filter on snapshot_date."
  deletion_protection = false

  view {
    use_legacy_sql = false
    query          = <<-EOT
      SELECT
        PARSE_DATE('%Y%m%d', REGEXP_EXTRACT(_FILE_NAME, r'/(\d{8})/[^/]+$')) AS snapshot_date,
        *
      FROM `${var.project_id}.${var.bigquery_dataset}.${google_bigquery_table.snapshots[each.key].table_id}`
    EOT
  }
}

resource "google_bigquery_table" "changes" {
  for_each = local.bigquery_datasets

  dataset_id          = google_bigquery_dataset.spoc[0].dataset_id
  table_id            = "${each.value.bigquery_table}_changes_external"
  description         = "Every day's change table of the ${each.key} dataset (plots added, removed, changed) under gs://${local.bucket_name}/${each.value.output_prefix}/*/changes/."
  deletion_protection = false

  external_data_configuration {
    source_format             = "PARQUET"
    autodetect                = false
    reference_file_schema_uri = "gs://${local.bucket_name}/${google_storage_bucket_object.changes_schema[each.key].name}"
    source_uris               = ["gs://${local.bucket_name}/${each.value.output_prefix}/*/changes/${each.value.object}.changes.parquet"]

    # changed_columns is a Parquet LIST: without list inference BigQuery
    # shows it as a record of list.element instead of ARRAY<STRING>.
    parquet_options {
      enable_list_inference = true
    }
  }

  lifecycle {
    replace_triggered_by = [google_storage_bucket_object.changes_schema[each.key]]
  }
}
