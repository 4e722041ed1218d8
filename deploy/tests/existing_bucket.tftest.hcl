# terraform test: apply with create_bucket = false, into a bucket that
# already exists.

mock_provider "google" {
  source = "./tests/mocks/google"
}

mock_provider "time" {
  source = "./tests/mocks/time"
}

variables {
  project_id       = "my-project"
  bucket_name      = "shared-data-bucket"
  create_bucket    = false
  output_prefix    = "raw/mspo/spoc"
  bigquery_dataset = "mspo"
  bigquery_tables  = "external"
}

run "apply_into_an_existing_bucket" {
  command = apply

  assert {
    condition     = length(google_storage_bucket.snapshots) == 0 && length(data.google_storage_bucket.existing) == 1
    error_message = "create_bucket = false must read the bucket, not create one."
  }
  assert {
    condition     = local.job_env["spoc"]["SPOC_OUTPUT"] == "gs://shared-data-bucket" && local.job_env["spoc"]["SPOC_PREFIX"] == "raw/mspo/spoc"
    error_message = "The job does not write to the existing bucket's prefix."
  }
  assert {
    condition     = google_storage_bucket_iam_member.runtime_objects["spoc"].bucket == "shared-data-bucket" && google_storage_bucket_iam_member.runtime_objects["spoc"].condition[0].expression == "resource.name.startsWith(\"projects/_/buckets/shared-data-bucket/objects/raw/mspo/spoc/\")"
    error_message = "The runtime account's access is not limited to the prefix of the existing bucket."
  }
  assert {
    condition     = google_storage_bucket_object.snapshots_schema["spoc"].bucket == "shared-data-bucket" && startswith(google_storage_bucket_object.snapshots_schema["spoc"].name, "raw/mspo/spoc/_schema/")
    error_message = "The schema files are not uploaded into the existing bucket's prefix."
  }
  assert {
    condition     = google_storage_bucket_object.versions_schema["spoc"].bucket == "shared-data-bucket" && google_bigquery_table.versions["spoc"].external_data_configuration[0].source_uris == tolist(["gs://shared-data-bucket/raw/mspo/spoc/*/history/spoc-list-public.versions.parquet"])
    error_message = "The versions table does not read the existing bucket's prefix."
  }
  assert {
    condition     = google_storage_bucket_object.geo_schema["spoc"].bucket == "shared-data-bucket" && google_bigquery_table.geo["spoc"].external_data_configuration[0].source_uris == tolist(["gs://shared-data-bucket/raw/mspo/spoc/*/geo/spoc-list-public.geo.parquet"])
    error_message = "The geolocation table does not read the existing bucket's prefix."
  }
  assert {
    condition     = output.snapshot_url == "gs://shared-data-bucket/raw/mspo/spoc/"
    error_message = "snapshot_url: ${output.snapshot_url}"
  }
}
