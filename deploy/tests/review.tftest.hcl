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
  command = plan

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
