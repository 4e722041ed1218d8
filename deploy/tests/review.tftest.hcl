# terraform test: the least-privilege grants and limits of deploy/, each
# as the provider plans it: the runtime account's list binding, the build
# runner's staging-bucket roles, the BigQuery readers' grants and the
# checks on cpu and memory.

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

# The runtime account lists object names only under each list's prefix:
# the condition is on the prefix the objects.list request asks for.
run "runtime_lists_only_its_prefixes" {
  command = apply

  variables {
    datasets = ["spoc", "osh", "references"]
  }

  assert {
    condition     = toset(keys(google_storage_bucket_iam_member.runtime_list)) == toset(["spoc", "osh", "states", "zones"])
    error_message = "One list binding per published list: ${jsonencode(keys(google_storage_bucket_iam_member.runtime_list))}"
  }
  assert {
    condition = alltrue([
      for name, b in google_storage_bucket_iam_member.runtime_list :
      b.condition[0].expression == "resource.type == \"storage.googleapis.com/Bucket\" && api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${local.datasets[name].output_prefix}/\")"
    ])
    error_message = "A list binding is not limited to its list's prefix: ${jsonencode([for b in google_storage_bucket_iam_member.runtime_list : b.condition[0].expression])}"
  }
  assert {
    condition     = google_storage_bucket_iam_member.runtime_list["osh"].condition[0].expression == "resource.type == \"storage.googleapis.com/Bucket\" && api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"raw/mspo/api/osh/all-smallholder/\")"
    error_message = "osh's list binding: ${google_storage_bucket_iam_member.runtime_list["osh"].condition[0].expression}"
  }
  assert {
    condition = alltrue([
      for b in google_storage_bucket_iam_member.runtime_list :
      b.role == "roles/storage.objectViewer" && b.member == "serviceAccount:mspo-spoc-run@my-project.iam.gserviceaccount.com" && b.bucket == "my-project-mspo-spoc"
    ])
    error_message = "The list bindings are not the runtime account's objectViewer on the bucket."
  }
  assert {
    condition     = length(distinct([for b in google_storage_bucket_iam_member.runtime_list : b.condition[0].title])) == 4
    error_message = "Two list bindings share a title."
  }
}

# Without build_submitters, no custom role (creating one needs Role
# Administrator) and no staging-bucket grant.
run "no_build_submitters_no_custom_role" {
  command = plan

  assert {
    condition     = length(google_project_iam_custom_role.build_bucket_get) == 0 && length(google_storage_bucket_iam_member.build_submitters_upload) == 0 && length(google_storage_bucket_iam_member.build_submitters_get_bucket) == 0
    error_message = "build_submitters is empty: nothing is granted to run the build."
  }
}

# Whoever runs the build command can read the staging bucket's metadata
# (gcloud builds submit's first call) and upload the source, on that
# bucket only.
run "build_submitters_get_the_staging_bucket" {
  command = apply

  variables {
    build_submitters = ["user:dev@example.com", "group:builders@example.com"]
  }

  assert {
    condition     = google_project_iam_custom_role.build_bucket_get[0].permissions == toset(["storage.buckets.get"]) && google_project_iam_custom_role.build_bucket_get[0].role_id == "mspo_spoc_build_bucket_get"
    error_message = "The custom role is not storage.buckets.get alone: ${jsonencode(google_project_iam_custom_role.build_bucket_get[0].permissions)}"
  }
  assert {
    condition = alltrue([
      for m in ["user:dev@example.com", "group:builders@example.com"] :
      google_storage_bucket_iam_member.build_submitters_get_bucket[m].role == google_project_iam_custom_role.build_bucket_get[0].name &&
      google_storage_bucket_iam_member.build_submitters_get_bucket[m].bucket == "my-project-mspo-spoc-build" &&
      google_storage_bucket_iam_member.build_submitters_upload[m].role == "roles/storage.objectAdmin" &&
      google_storage_bucket_iam_member.build_submitters_upload[m].bucket == "my-project-mspo-spoc-build"
    ])
    error_message = "A build submitter lacks the custom role or Storage Object Admin on the staging bucket."
  }
}

run "refuses_a_build_submitter_that_is_not_a_member" {
  command = plan

  variables {
    build_submitters = ["dev@example.com"]
  }

  expect_failures = [var.build_submitters]
}

# The BigQuery readers get nothing without BigQuery.
run "bigquery_readers_without_bigquery" {
  command = plan

  variables {
    bigquery_readers = ["group:analysts@example.com"]
  }

  assert {
    condition     = length(google_bigquery_dataset_iam_member.readers) == 0 && length(google_project_iam_member.bigquery_readers_jobs) == 0 && length(google_storage_bucket_iam_member.bigquery_readers_objects) == 0 && length(google_storage_bucket_iam_member.bigquery_readers_list) == 0
    error_message = "bigquery_readers is granted something without bigquery_dataset."
  }
}

# With external tables: the dataset's data, jobs in the project, the
# objects under each list's prefix and the bucket's object names.
run "bigquery_readers_can_query" {
  command = apply

  variables {
    datasets         = ["spoc", "osh"]
    bigquery_dataset = "mspo"
    bigquery_tables  = "external"
    bigquery_readers = ["group:analysts@example.com", "user:a@example.com"]
  }

  assert {
    condition = alltrue([
      for m in ["group:analysts@example.com", "user:a@example.com"] :
      google_bigquery_dataset_iam_member.readers[m].role == "roles/bigquery.dataViewer" && google_bigquery_dataset_iam_member.readers[m].dataset_id == "mspo" &&
      google_project_iam_member.bigquery_readers_jobs[m].role == "roles/bigquery.jobUser" && google_project_iam_member.bigquery_readers_jobs[m].project == "my-project"
    ])
    error_message = "A reader lacks Data Viewer on the dataset or Job User on the project."
  }
  assert {
    condition     = length(google_storage_bucket_iam_member.bigquery_readers_objects) == 4
    error_message = "One object binding per reader and list: ${jsonencode(keys(google_storage_bucket_iam_member.bigquery_readers_objects))}"
  }
  assert {
    condition     = google_storage_bucket_iam_member.bigquery_readers_objects["user:a@example.com osh"].condition[0].expression == "resource.name.startsWith(\"projects/_/buckets/my-project-mspo-spoc/objects/raw/mspo/api/osh/all-smallholder/\")" && google_storage_bucket_iam_member.bigquery_readers_objects["user:a@example.com osh"].member == "user:a@example.com" && google_storage_bucket_iam_member.bigquery_readers_objects["user:a@example.com osh"].role == "roles/storage.objectViewer"
    error_message = "A reader's object reads are not limited to the list's prefix: ${google_storage_bucket_iam_member.bigquery_readers_objects["user:a@example.com osh"].condition[0].expression}"
  }
  assert {
    condition     = google_storage_bucket_iam_member.bigquery_readers_list["group:analysts@example.com"].condition[0].expression == "resource.type == \"storage.googleapis.com/Bucket\"" && google_storage_bucket_iam_member.bigquery_readers_list["group:analysts@example.com"].bucket == "my-project-mspo-spoc"
    error_message = "A reader's list binding is not the bucket's names only."
  }
}

# With native tables (the default), the readers query BigQuery's own
# copy: the BigQuery roles, and nothing of the bucket.
run "bigquery_readers_of_native_tables" {
  command = apply

  variables {
    datasets         = ["spoc", "osh"]
    bigquery_dataset = "mspo"
    bigquery_readers = ["group:analysts@example.com"]
  }

  assert {
    condition     = google_bigquery_dataset_iam_member.readers["group:analysts@example.com"].role == "roles/bigquery.dataViewer" && google_project_iam_member.bigquery_readers_jobs["group:analysts@example.com"].role == "roles/bigquery.jobUser"
    error_message = "A reader of the native tables lacks Data Viewer on the dataset or Job User on the project."
  }
  assert {
    condition     = length(google_storage_bucket_iam_member.bigquery_readers_objects) == 0 && length(google_storage_bucket_iam_member.bigquery_readers_list) == 0
    error_message = "A reader of the native tables is granted access to the bucket."
  }
}

# The build command, as cloudbuild.yaml's header points to it, is whole:
# account, region, staging bucket and every substitution, COMMIT_SHA
# (the image tag) included.
run "build_command_is_whole" {
  command = apply

  variables {
    datasets = ["spoc", "osh"]
  }

  assert {
    condition = alltrue([for part in [
      "gcloud builds submit --project my-project --region asia-east1 --config cloudbuild.yaml",
      "--service-account projects/my-project/serviceAccounts/mspo-spoc-build@my-project.iam.gserviceaccount.com",
      "--gcs-source-staging-dir gs://my-project-mspo-spoc-build/source",
      "COMMIT_SHA=$(git rev-parse HEAD)",
      "SHORT_SHA=$(git rev-parse --short HEAD)",
      "_REGION=asia-southeast1",
      "_REPOSITORY=mspo-spoc",
      "_JOBS=mspo-spoc mspo-spoc-osh",
      "_IMAGE=mspo-spoc",
    ] : strcontains(output.build_command, part)])
    error_message = "build_command is not whole: ${output.build_command}"
  }
}

# cpu is one of the values Cloud Run jobs take, and memory within the
# range Cloud Run gives that many CPUs.
run "four_cpus_with_two_gibibytes" {
  command = plan

  variables {
    cpu    = "4"
    memory = "2Gi"
  }

  assert {
    condition     = google_cloud_run_v2_job.dataset["spoc"].template[0].template[0].containers[0].resources[0].limits == tomap({ cpu = "4", memory = "2Gi" })
    error_message = "The job's limits are not cpu and memory."
  }
}

run "refuses_three_cpus" {
  command = plan

  variables {
    cpu = "3"
  }

  expect_failures = [var.cpu]
}

run "refuses_four_cpus_with_the_default_memory" {
  command = plan

  variables {
    cpu = "4"
  }

  expect_failures = [google_cloud_run_v2_job.dataset["spoc"]]
}

run "refuses_eight_cpus_with_two_gibibytes" {
  command = plan

  variables {
    cpu    = "8"
    memory = "2048Mi"
  }

  expect_failures = [google_cloud_run_v2_job.dataset["spoc"]]
}

run "refuses_more_memory_than_one_cpu_gets" {
  command = plan

  variables {
    memory = "8Gi"
  }

  expect_failures = [google_cloud_run_v2_job.dataset["spoc"]]
}

run "refuses_a_memory_of_no_unit" {
  command = plan

  variables {
    memory = "512"
  }

  expect_failures = [var.memory]
}
