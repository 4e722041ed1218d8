# Who may query the BigQuery tables, views and table functions
# (bigquery_readers). Google's "Query Cloud Storage data in external
# tables" names three roles for it: BigQuery Data Viewer (the tables,
# views and routines), BigQuery User, of which a query needs
# bigquery.jobs.create, so Job User here (a query is a job, run and
# billed in a project: this one), and Storage Object Viewer. The last is because an external table is no
# copy: a query reads the objects in the bucket with the reader's own
# credentials, so without it every query of the external tables and the
# views over them fails with "Permission denied while globbing file
# pattern". It matters for the external tables only: native tables hold
# their own copy, read with the BigQuery roles alone, so with
# bigquery_tables = "native" the readers get no access to the bucket.
#
# Object reads are granted under the datasets' prefixes only (a
# condition on the object's name, which Cloud Storage evaluates for any
# read of an object). A query with a wildcard URI also lists the bucket
# (storage.objects.list, checked against the bucket), and Google does not
# document which prefix BigQuery's listing sends: a condition on the
# listed prefix (as the runtime account's) could refuse it. So the list
# is granted on the bucket, object names only: readers see the names of
# every object in the bucket, not their contents.

locals {
  bigquery_reader_members = local.bigquery == 1 ? toset(var.bigquery_readers) : toset([])
  # The bucket's grants, with external tables only: one object binding
  # per reader and published list, one list binding per reader.
  bigquery_reader_lists = {
    for pair in setproduct(var.bigquery_readers, keys(local.bigquery_external_datasets)) : "${pair[0]} ${pair[1]}" => {
      member = pair[0]
      list   = pair[1]
    }
  }
  bigquery_external_reader_members = local.bigquery_native ? toset([]) : local.bigquery_reader_members
}

resource "google_bigquery_dataset_iam_member" "readers" {
  for_each = local.bigquery_reader_members

  dataset_id = google_bigquery_dataset.spoc[0].dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value
}

resource "google_project_iam_member" "bigquery_readers_jobs" {
  for_each = local.bigquery_reader_members

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = each.value

  depends_on = [time_sleep.apis_ready]
}

resource "google_storage_bucket_iam_member" "bigquery_readers_objects" {
  for_each = local.bigquery_reader_lists

  bucket = local.bucket_name
  role   = "roles/storage.objectViewer"
  member = each.value.member

  condition {
    title       = "bigquery-read-${each.value.list}"
    description = "Reading the objects under the ${each.value.list} dataset's output prefix, for BigQuery's external tables."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${local.bucket_name}/objects/${local.datasets[each.value.list].output_prefix}/\")"
  }

  depends_on = [time_sleep.apis_ready]
}

resource "google_storage_bucket_iam_member" "bigquery_readers_list" {
  for_each = local.bigquery_external_reader_members

  bucket = local.bucket_name
  role   = "roles/storage.objectViewer"
  member = each.value

  condition {
    title       = "bigquery-list"
    description = "Listing the bucket's object names, as a query of an external table's wildcard does; no object access."
    expression  = "resource.type == \"storage.googleapis.com/Bucket\""
  }

  depends_on = [time_sleep.apis_ready]
}
