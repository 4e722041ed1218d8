# Optional: every day's objects queryable from BigQuery, through views of
# the same names whichever tables they read (var.bigquery_tables):
#
#   native   - day-partitioned tables that each run of a job loads its day
#              into (one load job per object, into TABLE$YYYYMMDD, with
#              WRITE_TRUNCATE): a query of one day reads one partition.
#   external - tables over every day's objects in the bucket: no loads,
#              but a query reads every day, since the date folders are
#              not hive-style (key=value) and the views take the date
#              from the file name, on which BigQuery skips no file.
#
# An external Parquet table takes no schema of its own (the provider
# refuses external_data_configuration.schema for Parquet), and autodetect
# needs a file to look at, which an empty bucket does not have. So each
# external table reads its schema from a reference file: a zero-row
# Parquet file written by the job's own writer (deploy/schema/, checked
# against the job's schemas by cmd/job's TestBigQuerySchemaFiles),
# uploaded here under the prefix's _schema/ folder, three levels deep so
# that no snapshot, change-table, versions or geolocation glob matches
# it. Its MD5 is in its name, so a new schema file is a new object; and
# since BigQuery reads the reference file only when it creates an
# external table (the provider updates reference_file_schema_uri in
# place, it is not ForceNew), each table is replaced with its schema
# object (replace_triggered_by), or it would keep the old schema.

locals {
  bigquery = var.bigquery_dataset != "" ? 1 : 0
  # The datasets with tables, when BigQuery is on.
  bigquery_datasets = local.bigquery == 1 ? local.datasets : {}
  # Those with a point, whose snapshots view has a GEOGRAPHY and whose
  # day's geolocation layer has tables of its own.
  bigquery_geo_datasets = { for name, d in local.bigquery_datasets : name => d if d.longitude != "" }

  # The tables under the views: loaded by the jobs, or over the bucket.
  bigquery_native                = local.bigquery == 1 && var.bigquery_tables == "native"
  bigquery_external_datasets     = local.bigquery_native ? {} : local.bigquery_datasets
  bigquery_external_geo_datasets = local.bigquery_native ? {} : local.bigquery_geo_datasets
  bigquery_native_datasets       = local.bigquery_native ? local.bigquery_datasets : {}

  # What each kind of object is, for the native tables' descriptions.
  bigquery_kinds = {
    snapshots = "daily snapshots"
    changes   = "daily change tables"
    versions  = "plots' versions (a row per plot added, changed or removed, on valid_from, the partition's day)"
    geo       = "daily geolocation layers (GeoParquet: geometry is a GEOGRAPHY)"
  }

  # One native table per list and kind of object ("spoc/snapshots"), the
  # geolocation layer's for a list with a point only (its catalog entry
  # names a schema for it). A job loads its day's object of each kind
  # into TABLE$YYYYMMDD.
  bigquery_native_tables = merge([
    for name, d in local.bigquery_native_datasets : {
      for kind, schema in d.bigquery_schemas : "${name}/${kind}" => {
        dataset     = name
        kind        = kind
        table_id    = "${d.bigquery_table}_${kind}_native"
        schema      = "${path.module}/schema/${schema}"
        description = "The ${local.bigquery_kinds[kind]} of the ${name} dataset, a partition per day (_PARTITIONDATE is the day), loaded by its job from gs://${local.bucket_name}/${d.output_prefix}/YYYYMMDD/; query it through the view ${d.bigquery_table}_${kind == "versions" ? "history" : kind}."
        # Every query of the snapshots, change tables and layers names
        # its days (snapshot_date in the views), or BigQuery refuses it
        # rather than read every day. Not the versions: the history view
        # and the as-of function read every day's, which together are
        # the history (a plot's newest version may be years old), and a
        # filter on valid_from outside the view does not reach below its
        # window function.
        require_partition_filter = kind != "versions"
        # Clustered by the columns a query most often groups or filters
        # by, those of them the table has (none for a change table):
        # decided from its schema file, so a column cannot be named that
        # the table lacks.
        clustering = [for c in ["state", "cert_status"] : c if contains([for col in jsondecode(file("${path.module}/schema/${schema}")) : col.name], c)]
      }
    }
  ]...)
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
  for_each = local.bigquery_external_datasets

  bucket       = local.bucket_name
  name         = "${each.value.output_prefix}/_schema/${substr(filemd5("${path.module}/schema/${each.value.schema_files.snapshots}"), 0, 12)}/${each.value.schema_files.snapshots}"
  source       = "${path.module}/schema/${each.value.schema_files.snapshots}"
  content_type = "application/vnd.apache.parquet"
}

resource "google_storage_bucket_object" "changes_schema" {
  for_each = local.bigquery_external_datasets

  bucket       = local.bucket_name
  name         = "${each.value.output_prefix}/_schema/${substr(filemd5("${path.module}/schema/${each.value.schema_files.changes}"), 0, 12)}/${each.value.schema_files.changes}"
  source       = "${path.module}/schema/${each.value.schema_files.changes}"
  content_type = "application/vnd.apache.parquet"
}

resource "google_storage_bucket_object" "versions_schema" {
  for_each = local.bigquery_external_datasets

  bucket       = local.bucket_name
  name         = "${each.value.output_prefix}/_schema/${substr(filemd5("${path.module}/schema/${each.value.schema_files.versions}"), 0, 12)}/${each.value.schema_files.versions}"
  source       = "${path.module}/schema/${each.value.schema_files.versions}"
  content_type = "application/vnd.apache.parquet"
}

# The geolocation layer's reference schema is a layer of no plot, written
# by the job's layer writer: its GeoParquet metadata (the "geo" footer
# key) is what makes BigQuery read the geometry column as a GEOGRAPHY.
resource "google_storage_bucket_object" "geo_schema" {
  for_each = local.bigquery_external_geo_datasets

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
  for_each = local.bigquery_external_datasets

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
  # snapshot_date is the native table's partition day, _PARTITIONDATE
  # aliased: a filter on it in a query of the view is a filter on the
  # partitioning pseudocolumn, which prunes the other days and is the
  # partition filter the table requires ("Query partitioned tables",
  # cloud.google.com/bigquery/docs/querying-partitioned-tables: an
  # ingestion-time table's pseudocolumn is selected through an alias).
  # Over the external table it is the file's date folder.
  view {
    use_legacy_sql = false
    query          = <<-EOT
      SELECT
        %{if local.bigquery_native}_PARTITIONDATE%{else}PARSE_DATE('%Y%m%d', REGEXP_EXTRACT(_FILE_NAME, r'/(\d{8})/[^/]+$'))%{endif} AS snapshot_date,
        *${each.value.longitude == "" ? "" : ",\n  ST_GEOGPOINT(${each.value.longitude}, ${each.value.latitude}) AS geog"}
      FROM `${var.project_id}.${var.bigquery_dataset}.${local.bigquery_native ? google_bigquery_table.native["${each.key}/snapshots"].table_id : google_bigquery_table.snapshots[each.key].table_id}`
    EOT
  }
}

# Every day's geolocation layer (YYYYMMDD/geo/), a row per plot with its
# point and its checks (in_malaysia, coordinate_decimals,
# shared_point_plots, needs_polygon). The reference file carries the
# GeoParquet metadata, so BigQuery maps the geometry column to GEOGRAPHY
# itself; it does not use the file's bbox covering to skip rows.
resource "google_bigquery_table" "geo" {
  for_each = local.bigquery_external_geo_datasets

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
        %{if local.bigquery_native}_PARTITIONDATE%{else}PARSE_DATE('%Y%m%d', REGEXP_EXTRACT(_FILE_NAME, r'/(\d{8})/geo/[^/]+$'))%{endif} AS snapshot_date,
        * EXCEPT (geometry),
        geometry AS geog
      FROM `${var.project_id}.${var.bigquery_dataset}.${local.bigquery_native ? google_bigquery_table.native["${each.key}/geo"].table_id : google_bigquery_table.geo[each.key].table_id}`
    EOT
  }

  # As the history view: replaced with its table, so that its listed
  # schema is the table's.
  lifecycle {
    replace_triggered_by = [terraform_data.geo_table[each.key]]
  }
}

resource "google_bigquery_table" "changes" {
  for_each = local.bigquery_external_datasets

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
  for_each = local.bigquery_external_datasets

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
        FROM `${var.project_id}.${var.bigquery_dataset}.${local.bigquery_native ? google_bigquery_table.native["${each.key}/versions"].table_id : google_bigquery_table.versions[each.key].table_id}`
      )
    EOT
  }

  # A view keeps the schema its tables had when it was made: with the
  # external table replaced by a new schema, its queries still see the
  # new columns, but its listed schema would stay the old one.
  lifecycle {
    replace_triggered_by = [terraform_data.versions_table[each.key]]
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
      FROM `${var.project_id}.${var.bigquery_dataset}.${local.bigquery_native ? google_bigquery_table.native["${each.key}/versions"].table_id : google_bigquery_table.versions[each.key].table_id}`
      WHERE valid_from <= d
    )
    WHERE newest AND change != 'removed'
  EOT
}

# The native tables (bigquery_tables = "native"): one per list and kind
# of object, loaded by the list's job after each run that publishes or
# finds its day unchanged, one load job per object, into TABLE$YYYYMMDD
# with WRITE_TRUNCATE, so a rerun replaces exactly its day.
#
# Partitioned by ingestion time, by day, with no partitioning column:
# the objects have no date column, and the load names its day with the
# partition decorator, so a partition's day (_PARTITIONDATE) is the
# date folder's. The views give it as snapshot_date.
resource "google_bigquery_table" "native" {
  for_each = local.bigquery_native_tables

  dataset_id  = google_bigquery_dataset.spoc[0].dataset_id
  table_id    = each.value.table_id
  description = each.value.description

  # The tables hold every loaded day. Each can be loaded again from its
  # objects in the bucket, but only by hand (the jobs load their own
  # day), and with snapshot_retention_days the bucket no longer has the
  # old days at all: a destroy or replacement must be deliberate
  # (set false here, apply, then change what replaces or destroys it).
  deletion_protection = true

  # Created with the columns the job's files load as (deploy/schema/,
  # kept equal to the job's schemas by cmd/job's
  # TestBigQueryNativeSchemaFiles). After that the loads own the schema:
  # a job version with a new column adds it (ALLOW_FIELD_ADDITION), one
  # with a column made optional relaxes it (ALLOW_FIELD_RELAXATION), and
  # a later apply would otherwise try to put the file's schema back: drop
  # a column the loads added (the provider drops columns in place) or,
  # for a changed type, replace the table, emptying every day.
  schema = file(each.value.schema)

  time_partitioning {
    type = "DAY"
  }
  # v7.45 takes it here; inside time_partitioning it is deprecated.
  require_partition_filter = each.value.require_partition_filter
  clustering               = each.value.clustering

  lifecycle {
    ignore_changes = [schema]
  }
}

# What the geolocation and history views read, by its creation: a new
# table (external with a new reference schema, or the mode changed)
# replaces the view, whose listed schema would otherwise stay the old
# table's. The views name it through these, since a replace_triggered_by
# must name an instance that exists, and each mode has its own tables.
resource "terraform_data" "geo_table" {
  for_each = local.bigquery_geo_datasets

  input = local.bigquery_native ? google_bigquery_table.native["${each.key}/geo"].creation_time : google_bigquery_table.geo[each.key].creation_time
}

resource "terraform_data" "versions_table" {
  for_each = local.bigquery_datasets

  input = local.bigquery_native ? google_bigquery_table.native["${each.key}/versions"].creation_time : google_bigquery_table.versions[each.key].creation_time
}

# Every day's change table with its day, as the snapshots view gives
# its own.
resource "google_bigquery_table" "changes_by_date" {
  for_each = local.bigquery_datasets

  dataset_id          = google_bigquery_dataset.spoc[0].dataset_id
  table_id            = "${each.value.bigquery_table}_changes"
  description         = "The ${each.key} change tables (plots added, removed, changed) with their date; filter on snapshot_date."
  deletion_protection = false

  view {
    use_legacy_sql = false
    query          = <<-EOT
      SELECT
        %{if local.bigquery_native}_PARTITIONDATE%{else}PARSE_DATE('%Y%m%d', REGEXP_EXTRACT(_FILE_NAME, r'/(\d{8})/changes/[^/]+$'))%{endif} AS snapshot_date,
        *
      FROM `${var.project_id}.${var.bigquery_dataset}.${local.bigquery_native ? google_bigquery_table.native["${each.key}/changes"].table_id : google_bigquery_table.changes[each.key].table_id}`
    EOT
  }
}
