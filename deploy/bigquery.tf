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
# _schema/ folder, three levels deep so that no snapshot, change-table,
# versions or geolocation glob matches it. Its MD5 is in its name, so a
# new schema file is a new object; and since BigQuery reads the reference
# file only when it creates an external table (the provider updates
# reference_file_schema_uri in place, it is not ForceNew), each table is
# replaced with its schema object (replace_triggered_by), or it would
# keep the old schema.

locals {
  bigquery = var.bigquery_dataset != "" ? 1 : 0
  # The datasets with tables, when BigQuery is on.
  bigquery_datasets = local.bigquery == 1 ? local.datasets : {}
  # Those with a point, whose snapshots view has a GEOGRAPHY and whose
  # day's geolocation layer has tables of its own.
  bigquery_geo_datasets = { for name, d in local.bigquery_datasets : name => d if d.longitude != "" }
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

resource "google_storage_bucket_object" "versions_schema" {
  for_each = local.bigquery_datasets

  bucket       = local.bucket_name
  name         = "${each.value.output_prefix}/_schema/${substr(filemd5("${path.module}/schema/${each.value.schema_files.versions}"), 0, 12)}/${each.value.schema_files.versions}"
  source       = "${path.module}/schema/${each.value.schema_files.versions}"
  content_type = "application/vnd.apache.parquet"
}

# The geolocation layer's reference schema is a layer of no plot, written
# by the job's layer writer: its GeoParquet metadata (the "geo" footer
# key) is what makes BigQuery read the geometry column as a GEOGRAPHY.
resource "google_storage_bucket_object" "geo_schema" {
  for_each = local.bigquery_geo_datasets

  bucket       = local.bucket_name
  name         = "${each.value.output_prefix}/_schema/${substr(filemd5("${path.module}/schema/${each.value.schema_files.geo}"), 0, 12)}/${each.value.schema_files.geo}"
  source       = "${path.module}/schema/${each.value.schema_files.geo}"
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
    # the YYYYMMDD/ folder. The change tables and the versions, in
    # YYYYMMDD/changes/ and YYYYMMDD/history/, end with other names.
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

  # A list with a point gets it as a GEOGRAPHY, geog (null where either
  # coordinate is). ST_GEOGPOINT fails on a latitude outside [-90, 90]
  # and wraps a longitude outside [-180, 180] (modulo 360); neither
  # reaches it, since the job nulls a coordinate out of range.
  view {
    use_legacy_sql = false
    query          = <<-EOT
      SELECT
        PARSE_DATE('%Y%m%d', REGEXP_EXTRACT(_FILE_NAME, r'/(\d{8})/[^/]+$')) AS snapshot_date,
        *${each.value.longitude == "" ? "" : ",\n  ST_GEOGPOINT(${each.value.longitude}, ${each.value.latitude}) AS geog"}
      FROM `${var.project_id}.${var.bigquery_dataset}.${google_bigquery_table.snapshots[each.key].table_id}`
    EOT
  }
}

# Every day's geolocation layer (YYYYMMDD/geo/), a row per plot with its
# point and its checks (in_malaysia, coordinate_decimals,
# shared_point_plots, needs_polygon). The reference file carries the
# GeoParquet metadata, so BigQuery maps the geometry column to GEOGRAPHY
# itself; it does not use the file's bbox covering to skip rows.
resource "google_bigquery_table" "geo" {
  for_each = local.bigquery_geo_datasets

  dataset_id          = google_bigquery_dataset.spoc[0].dataset_id
  table_id            = "${each.value.bigquery_table}_geo_external"
  description         = "Every day's geolocation layer of the ${each.key} dataset (GeoParquet) under gs://${local.bucket_name}/${each.value.output_prefix}/*/geo/."
  deletion_protection = false

  external_data_configuration {
    source_format             = "PARQUET"
    autodetect                = false
    reference_file_schema_uri = "gs://${local.bucket_name}/${google_storage_bucket_object.geo_schema[each.key].name}"
    source_uris               = ["gs://${local.bucket_name}/${each.value.output_prefix}/*/geo/${each.value.object}.geo.parquet"]
  }

  lifecycle {
    replace_triggered_by = [google_storage_bucket_object.geo_schema[each.key]]
  }
}

# The layer with its day, and its geometry named geog as in the
# snapshots view.
resource "google_bigquery_table" "geo_by_date" {
  for_each = local.bigquery_geo_datasets

  dataset_id          = google_bigquery_dataset.spoc[0].dataset_id
  table_id            = "${each.value.bigquery_table}_geo"
  description         = "The ${each.key} geolocation layers with their date; filter on snapshot_date. geog is each plot's point (GEOGRAPHY), null without a valid one."
  deletion_protection = false

  view {
    use_legacy_sql = false
    query          = <<-EOT
      SELECT
        PARSE_DATE('%Y%m%d', REGEXP_EXTRACT(_FILE_NAME, r'/(\d{8})/geo/[^/]+$')) AS snapshot_date,
        * EXCEPT (geometry),
        geometry AS geog
      FROM `${var.project_id}.${var.bigquery_dataset}.${google_bigquery_table.geo[each.key].table_id}`
    EOT
  }

  # As the history view: replaced with its table, so that its listed
  # schema is the table's.
  lifecycle {
    replace_triggered_by = [google_bigquery_table.geo[each.key]]
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

# The plots' history: every day's versions object (YYYYMMDD/history/),
# the rows that begin a version that day (a plot added or changed, with
# its new values, or removed, with its last ones), as one table; a view
# that gives each version the day it ended; and a table function that
# gives the list as of a day. The view and the function read the
# external table directly, each with its full name (a table function
# must name tables with their project), which is also what orders them
# after it. Neither reads the other.
resource "google_bigquery_table" "versions" {
  for_each = local.bigquery_datasets

  dataset_id          = google_bigquery_dataset.spoc[0].dataset_id
  table_id            = "${each.value.bigquery_table}_versions_external"
  description         = "Every version of every plot of the ${each.key} dataset: a row for each plot added, changed or removed on valid_from, under gs://${local.bucket_name}/${each.value.output_prefix}/*/history/."
  deletion_protection = false

  external_data_configuration {
    source_format             = "PARQUET"
    autodetect                = false
    reference_file_schema_uri = "gs://${local.bucket_name}/${google_storage_bucket_object.versions_schema[each.key].name}"
    source_uris               = ["gs://${local.bucket_name}/${each.value.output_prefix}/*/history/${each.value.object}.versions.parquet"]
  }

  lifecycle {
    replace_triggered_by = [google_storage_bucket_object.versions_schema[each.key]]
  }
}

# A plot's versions follow each other: one ends when the next begins
# (valid_to, null for the newest). The newest is the plot's current
# values unless it is a removal.
resource "google_bigquery_table" "history" {
  for_each = local.bigquery_datasets

  dataset_id          = google_bigquery_dataset.spoc[0].dataset_id
  table_id            = "${each.value.bigquery_table}_history"
  description         = "The ${each.key} plots' versions with valid_to (the next version's valid_from, null for the newest) and is_current; a plot is ${each.value.key}."
  deletion_protection = false

  view {
    use_legacy_sql = false
    query          = <<-EOT
      SELECT
        *,
        valid_to IS NULL AND change != 'removed' AS is_current
      FROM (
        SELECT
          *,
          LEAD(valid_from) OVER (PARTITION BY ${each.value.key} ORDER BY valid_from) AS valid_to
        FROM `${var.project_id}.${var.bigquery_dataset}.${google_bigquery_table.versions[each.key].table_id}`
      )
    EOT
  }

  # A view keeps the schema its tables had when it was made: with the
  # external table replaced by a new schema, its queries still see the
  # new columns, but its listed schema would stay the old one.
  lifecycle {
    replace_triggered_by = [google_bigquery_table.versions[each.key]]
  }
}

# The list as of a day: per plot, the newest version that began on or
# before d, unless it is a removal. That is day d's snapshot (for a day
# without one, the last one before it), with valid_from: the day the
# plot took the values it had on d. No return_table_type: the columns
# are the external table's, inferred when a query calls the function, so
# they follow a new schema, and the provider keeps no JSON that could
# differ from what the API returns.
resource "google_bigquery_routine" "as_of" {
  for_each = local.bigquery_datasets

  dataset_id   = google_bigquery_dataset.spoc[0].dataset_id
  routine_id   = "${each.value.bigquery_table}_as_of"
  routine_type = "TABLE_VALUED_FUNCTION"
  language     = "SQL"
  description  = "The ${each.key} list as of the day d: each plot's newest version with valid_from <= d, without the removed ones."

  arguments {
    name      = "d"
    data_type = jsonencode({ typeKind = "DATE" })
  }

  definition_body = <<-EOT
    SELECT * EXCEPT (change, newest)
    FROM (
      SELECT
        *,
        ROW_NUMBER() OVER (PARTITION BY ${each.value.key} ORDER BY valid_from DESC) = 1 AS newest
      FROM `${var.project_id}.${var.bigquery_dataset}.${google_bigquery_table.versions[each.key].table_id}`
      WHERE valid_from <= d
    )
    WHERE newest AND change != 'removed'
  EOT
}
