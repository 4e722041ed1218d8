locals {
  services = [
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtrace.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
  ]

  bucket_name   = var.create_bucket ? google_storage_bucket.snapshots[0].name : data.google_storage_bucket.existing[0].name
  output_prefix = trim(var.output_prefix, "/")
}

resource "google_project_service" "required" {
  for_each = toset(local.services)

  service = each.value
  # Other things in the project may use these APIs: destroying this
  # deployment must not turn them off.
  disable_on_destroy = false
}

resource "google_artifact_registry_repository" "images" {
  location      = var.region
  repository_id = var.repository_id
  format        = "DOCKER"
  description   = "Container images of the mspo-spoc job, tagged with the commit SHA."

  # Old images are what a rollback needs: keep the last 30, delete the
  # untagged layers of interrupted pushes.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 30
    }
  }
  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"
    condition {
      tag_state = "UNTAGGED"
    }
  }

  depends_on = [google_project_service.required]
}

resource "google_storage_bucket" "snapshots" {
  count = var.create_bucket ? 1 : 0

  name                        = var.bucket_name
  location                    = var.bucket_location != "" ? var.bucket_location : var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Snapshots are an archive: a destroy must not take them with it.
  force_destroy = false

  dynamic "lifecycle_rule" {
    for_each = var.snapshot_retention_days > 0 ? [var.snapshot_retention_days] : []
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  depends_on = [google_project_service.required]
}

data "google_storage_bucket" "existing" {
  count = var.create_bucket ? 0 : 1
  name  = var.bucket_name
}
