# Cloud Build runs cloudbuild.yaml as its own service account, with only
# what the pipeline does: read the uploaded source, push images to the one
# repository, update the datasets' jobs (which run as the runtime account), and
# write its build logs.

resource "google_service_account" "build" {
  account_id   = "${var.job_name}-build"
  display_name = "mspo-spoc Cloud Build"
  description  = "Identity of cloudbuild.yaml: tests, pushes the image, updates the mspo-spoc job."

  depends_on = [time_sleep.apis_ready]
}

# gcloud builds submit uploads the source here
# (--gcs-source-staging-dir), instead of a project-wide default bucket the
# build account would need broad access to.
resource "google_storage_bucket" "build_source" {
  name                        = "${var.project_id}-${var.job_name}-build"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [time_sleep.apis_ready]
}

resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.build_source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member

  depends_on = [time_sleep.apis_ready]
}

# Whoever runs the build command (build_submitters) uploads the source
# to the staging bucket, and before that gcloud builds submit reads the
# bucket itself (buckets.get, in its CreateBucketIfNotExists, which it
# calls for --gcs-source-staging-dir too): a 403 there ends the command
# ("The user is forbidden from accessing the bucket"). Storage Object
# Admin has no storage.buckets.* permission; the custom role adds that
# one, bound on this bucket only. It exists only with build_submitters,
# since creating it needs Role Administrator, which the other resources
# do not.
resource "google_project_iam_custom_role" "build_bucket_get" {
  count = length(var.build_submitters) > 0 ? 1 : 0

  role_id     = "${replace(var.job_name, "-", "_")}_build_bucket_get"
  title       = "${var.job_name} build: staging bucket metadata"
  description = "Read the metadata of the ${var.job_name} build's staging bucket, as gcloud builds submit does before it uploads the source."
  permissions = ["storage.buckets.get"]

  depends_on = [time_sleep.apis_ready]
}

resource "google_storage_bucket_iam_member" "build_submitters_upload" {
  for_each = toset(var.build_submitters)

  bucket = google_storage_bucket.build_source.name
  role   = "roles/storage.objectAdmin"
  member = each.value

  depends_on = [time_sleep.apis_ready]
}

resource "google_storage_bucket_iam_member" "build_submitters_get_bucket" {
  for_each = toset(var.build_submitters)

  bucket = google_storage_bucket.build_source.name
  role   = google_project_iam_custom_role.build_bucket_get[0].name
  member = each.value

  depends_on = [time_sleep.apis_ready]
}

resource "google_artifact_registry_repository_iam_member" "build_pushes" {
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

moved {
  from = google_cloud_run_v2_job_iam_member.build_updates_job
  to   = google_cloud_run_v2_job_iam_member.build_updates_job["spoc"]
}

# Every dataset's job runs the one image: the build updates each.
resource "google_cloud_run_v2_job_iam_member" "build_updates_job" {
  for_each = local.jobs

  name     = google_cloud_run_v2_job.dataset[each.key].name
  location = google_cloud_run_v2_job.dataset[each.key].location
  role     = "roles/run.developer"
  member   = google_service_account.build.member
}

# Updating a job that runs as the runtime account needs actAs on it.
resource "google_service_account_iam_member" "build_acts_as_runtime" {
  service_account_id = google_service_account.runtime.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.build.member
}

resource "google_project_iam_member" "build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member

  depends_on = [time_sleep.apis_ready]
}
