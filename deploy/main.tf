locals {
  services = [
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    # The project and project-IAM calls go through it.
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtrace.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "run.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
  ]

  bucket_name = var.create_bucket ? google_storage_bucket.snapshots[0].name : data.google_storage_bucket.existing[0].name

  # The lists the job knows, as its own declarations give them (pkg/spoc:
  # name, default URL, object name, prefix, record floor, metric names,
  # key column and BigQuery reference schemas). cmd/job's tests write
  # this file from them (go test ./cmd/job -run TestDeployDatasets
  # -update) and fail when it is stale, so a dataset added to the job is
  # one entry in var.datasets away from being deployed.
  catalog = jsondecode(file("${path.module}/datasets.json"))

  # What snapshot_retention_days deletes once old enough: a day's objects
  # of every list, by the end of their names (a refused body's archive
  # and a lock included), and the day's geolocation layer of a list with
  # a point (geo/*.geo.parquet), which is made of that day's snapshot
  # alone and goes with it. The versions (history/*.versions.parquet) are
  # kept whatever their age, since a plot's newest version may be years
  # old and the list as of any later day needs it; so are the BigQuery
  # tables' schema files (_schema/*.schema.parquet).
  retention_suffixes = sort(flatten([
    for c in values(local.catalog) : [
      for end in concat([".parquet", ".manifest.json", ".json.gz", ".digest", ".changes.parquet", ".lock"], can(c.point) ? [".geo.parquet"] : []) : "${c.object}${end}"
    ]
  ]))

  # A group of lists (today references: states and zones), as the
  # catalog's group fields give it. A group in var.datasets is one job and
  # one schedule whose run publishes each list as if it ran alone
  # (SPOC_DATASET=references); each list keeps its own staleness alert,
  # BigQuery tables, bucket binding and dashboard block (the job has one
  # execution-failed alert).
  groups = {
    for g in distinct([for c in values(local.catalog) : c.group if try(c.group, "") != ""]) :
    g => sort([for name, c in local.catalog : name if try(c.group, "") == g])
  }

  # The default dataset (the job's SPOC_DATASET default) keeps the
  # deployment's names as they were before there were datasets: job_name,
  # output_prefix and min_records are its. Every other job is named
  # JOB_NAME-DATASET (a group's JOB_NAME-GROUP), and takes its prefix and
  # floor from the catalog unless dataset_settings says otherwise. A
  # group's job sets neither URL nor prefix (null: each list uses its
  # own). Its lists differ in size (16 states, 11 zones), so each keeps
  # its own floor (min_records: list => floor; job_fixed writes them as
  # SPOC_MIN_RECORDS=states=13,zones=9), unless dataset_settings gives
  # the group one for all of them.
  default_dataset = local.job_defaults.SPOC_DATASET
  jobs = {
    for name in var.datasets : name => {
      job_name      = name == local.default_dataset ? var.job_name : "${var.job_name}-${name}"
      lists         = contains(keys(local.groups), name) ? local.groups[name] : [name]
      url           = contains(keys(local.groups), name) ? null : local.catalog[name].url
      output_prefix = contains(keys(local.groups), name) ? null : trim(coalesce(try(var.dataset_settings[name].output_prefix, null), name == local.default_dataset ? var.output_prefix : local.catalog[name].prefix), "/")
      min_records = {
        for l in try(local.groups[name], [name]) : l => coalesce(try(var.dataset_settings[name].min_records, null), l == local.default_dataset ? var.min_records : local.catalog[l].min_records)
      }
      schedule     = coalesce(try(var.dataset_settings[name].schedule, null), var.schedule)
      job_settings = try(var.dataset_settings[name].job_settings, {})
    } if contains(keys(local.catalog), name) || contains(keys(local.groups), name)
  }

  # Which job publishes each list; a list enabled twice (states beside
  # references) is refused by a precondition on time_sleep.apis_ready.
  list_jobs = {
    for pair in flatten([for job, j in local.jobs : [for l in j.lists : { list = l, job = job }]]) : pair.list => pair.job...
  }

  # Each list published, whichever job publishes it.
  datasets = {
    for name, jobs in local.list_jobs : name => {
      job           = jobs[0]
      job_name      = local.jobs[jobs[0]].job_name
      url           = local.catalog[name].url
      object        = local.catalog[name].object
      output_prefix = coalesce(local.jobs[jobs[0]].output_prefix, local.catalog[name].prefix)
      min_records   = local.jobs[jobs[0]].min_records[name]
      schedule      = local.jobs[jobs[0]].schedule
      job_settings  = local.jobs[jobs[0]].job_settings
      last_success  = local.catalog[name].last_success_metric
      schema_files  = local.catalog[name].schema_files
      # The native tables' schemas (deploy/schema/*.bigquery.json), by
      # kind: snapshots, changes, versions and, with a point, geo.
      bigquery_schemas = local.catalog[name].bigquery_schemas
      key              = local.catalog[name].key
      bigquery_table   = name
      # The columns of the plot's point of a list that has one, and so a
      # geolocation layer; "" for the reference lists. Strings either way,
      # since the lists' values must have one type (bigquery_datasets'
      # conditional makes them a map).
      longitude = try(local.catalog[name].point.longitude, "")
      latitude  = try(local.catalog[name].point.latitude, "")
    }
  }
}

resource "google_project_service" "required" {
  for_each = toset(local.services)

  service = each.value
  # Other things in the project may use these APIs: destroying this
  # deployment must not turn them off.
  disable_on_destroy = false
}

# Enabling an API is eventually consistent: the provider's
# google_project_service guide says the API may still answer "has not been
# used in project ... or it is disabled" for a while after the resource is
# done, most of all in a new project. Every resource that calls one of
# these APIs depends on this pause instead, so that the first apply on an
# empty project goes through in one run. It waits again only when the list
# of APIs changes (triggers); later applies do not wait.
resource "time_sleep" "apis_ready" {
  create_duration = "90s"

  triggers = {
    services = join(",", sort(local.services))
  }

  # Every resource of the deployment waits for this one, so a dataset
  # name the job does not know stops the plan here, before anything is
  # created.
  lifecycle {
    precondition {
      condition     = length(setsubtract(var.datasets, concat(keys(local.catalog), keys(local.groups)))) == 0
      error_message = "datasets has ${join(", ", sort(setsubtract(var.datasets, concat(keys(local.catalog), keys(local.groups)))))}, which the job does not know; the known ones are ${join(", ", sort(concat(keys(local.catalog), keys(local.groups))))} (deploy/datasets.json)."
    }
    precondition {
      condition     = alltrue([for jobs in values(local.list_jobs) : length(jobs) == 1])
      error_message = "datasets enables ${join(", ", sort([for name, jobs in local.list_jobs : name if length(jobs) > 1]))} both alone and in a group: enable the group or its lists, not both."
    }
    precondition {
      condition     = alltrue([for g in setintersection(var.datasets, keys(local.groups)) : try(var.dataset_settings[g].output_prefix, null) == null])
      error_message = "dataset_settings gives a group an output_prefix: each of a group's lists is written under its own prefix."
    }
    precondition {
      condition     = length(setsubtract(keys(var.dataset_settings), var.datasets)) == 0
      error_message = "dataset_settings has ${join(", ", sort(setsubtract(keys(var.dataset_settings), var.datasets)))}, which datasets does not enable."
    }
  }

  depends_on = [google_project_service.required]
}

resource "google_artifact_registry_repository" "images" {
  location      = var.region
  repository_id = var.repository_id
  format        = "DOCKER"
  description   = "Container images of the mspo-spoc job, tagged with the commit SHA."

  # Old images are what a rollback needs. Artifact Registry deletes what a
  # DELETE policy matches unless a KEEP policy matches it too: so every
  # version older than image_retention_days goes, tagged or not, except
  # the newest image_keep_count versions, which stay whatever their age.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.image_keep_count
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "${var.image_retention_days}d"
    }
  }

  depends_on = [time_sleep.apis_ready]
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
        age            = lifecycle_rule.value
        matches_suffix = local.retention_suffixes
      }
      action {
        type = "Delete"
      }
    }
  }

  depends_on = [time_sleep.apis_ready]
}

data "google_storage_bucket" "existing" {
  count = var.create_bucket ? 0 : 1
  name  = var.bucket_name

  depends_on = [time_sleep.apis_ready]
}
