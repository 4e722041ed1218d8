# The google provider's API calls, mocked for deploy/tests. Its schemas
# and validators stay real, and it validates IAM members, service account
# names and emails: so every computed attribute that another resource reads
# gets the shape the API returns (for project my-project), not a random
# string.

mock_resource "google_artifact_registry_repository" {
  defaults = {
    name = "mspo-spoc"
    id   = "projects/my-project/locations/asia-southeast1/repositories/mspo-spoc"
  }
}

override_resource {
  target = google_service_account.runtime
  values = {
    email  = "mspo-spoc-run@my-project.iam.gserviceaccount.com"
    member = "serviceAccount:mspo-spoc-run@my-project.iam.gserviceaccount.com"
    name   = "projects/my-project/serviceAccounts/mspo-spoc-run@my-project.iam.gserviceaccount.com"
    id     = "projects/my-project/serviceAccounts/mspo-spoc-run@my-project.iam.gserviceaccount.com"
  }
}

override_resource {
  target = google_service_account.scheduler
  values = {
    email  = "mspo-spoc-sched@my-project.iam.gserviceaccount.com"
    member = "serviceAccount:mspo-spoc-sched@my-project.iam.gserviceaccount.com"
    name   = "projects/my-project/serviceAccounts/mspo-spoc-sched@my-project.iam.gserviceaccount.com"
    id     = "projects/my-project/serviceAccounts/mspo-spoc-sched@my-project.iam.gserviceaccount.com"
  }
}

override_resource {
  target = google_service_account.build
  values = {
    email  = "mspo-spoc-build@my-project.iam.gserviceaccount.com"
    member = "serviceAccount:mspo-spoc-build@my-project.iam.gserviceaccount.com"
    name   = "projects/my-project/serviceAccounts/mspo-spoc-build@my-project.iam.gserviceaccount.com"
    id     = "projects/my-project/serviceAccounts/mspo-spoc-build@my-project.iam.gserviceaccount.com"
  }
}
