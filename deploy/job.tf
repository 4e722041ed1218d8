locals {
  # Every setting the job reads (cmd/job/config.go), at the job's own
  # defaults. cmd/job/deploy_test.go checks that these names are exactly
  # the job's and these values its defaults, so the two cannot drift.
  # Change a value with var.job_settings, not here.
  job_defaults = {
    SPOC_DATASET                = "spoc"
    SPOC_URL                    = "https://api.mspots.org.my/api/spoc/get-spoc-list-public"
    SPOC_API_BASE               = ""
    SPOC_OUTPUT                 = "./data"
    SPOC_PREFIX                 = "raw/mspo/api/spoc/get-spoc-list-public"
    SPOC_TIMEZONE               = "Asia/Kuala_Lumpur"
    SPOC_MIN_RECORDS            = "1"
    SPOC_MAX_DROPPED_PERCENT    = "1"
    SPOC_MAX_DROP_PERCENT       = "10"
    SPOC_COLLAPSE_WAS_PERCENT   = "90"
    SPOC_COLLAPSE_BELOW_PERCENT = "10"
    SPOC_FORCE                  = "false"
    SPOC_ARCHIVE_RAW            = "true"
    SPOC_DETECT_CHANGES         = "true"
    SPOC_SKIP_IF_UNCHANGED      = "true"
    SPOC_LOCK_WAIT              = "2m15s"
    SPOC_DATE                   = ""
    SPOC_BATCH_SIZE             = "16384"
    SPOC_ROW_GROUP_ROWS         = "131072"
    SPOC_ZSTD_LEVEL             = "3"
    SPOC_ZSTD_LEVEL_COORDINATES = "3"
    SPOC_MAX_BODY_BYTES         = "2GiB"
    SPOC_MAX_STRING_BYTES       = "1MiB"
    SPOC_MAX_RECORD_BYTES       = "4MiB"
    SPOC_MAX_RECORDS            = "2000000"
    SPOC_ATTEMPTS               = "4"
    SPOC_RETRY_INITIAL          = "2s"
    SPOC_RETRY_MAX              = "1m"
    SPOC_CONNECT_TIMEOUT        = "30s"
    SPOC_FIRST_BYTE_TIMEOUT     = "5m"
    SPOC_STALL_TIMEOUT          = "1m"
    SPOC_DEADLINE               = "45m"
    SPOC_CA_FILE                = ""
    SPOC_TLS_PIN_SHA256         = ""
    SPOC_INSECURE_SKIP_VERIFY   = "false"
    SPOC_LOG_FORMAT             = "auto"
    SPOC_LOG_LEVEL              = "info"
    SPOC_PROGRESS_INTERVAL      = "10s"
    SPOC_TELEMETRY_TIMEOUT      = "10s"
    SPOC_BIGQUERY_DATASET       = ""
    SPOC_BIGQUERY_TIMEOUT       = "10m"
    SPOC_BIGQUERY_ENDPOINT      = ""
  }

  # What the deployment decides for each job, whatever job_settings says.
  # A group's job (SPOC_DATASET=references) publishes several lists, and
  # the job refuses SPOC_URL or SPOC_PREFIX with several (exit 2): its
  # url and output_prefix are null, and job_env drops null settings.
  job_fixed = {
    for name, j in local.jobs : name => {
      SPOC_DATASET  = name
      SPOC_OUTPUT   = "gs://${local.bucket_name}"
      SPOC_PREFIX   = j.output_prefix
      SPOC_TIMEZONE = var.time_zone
      # Cloud Logging reads JSON lines on stderr; "auto" would pick it
      # too, but say it.
      SPOC_LOG_FORMAT = "json"
      # The job's own default (1) suits a laptop; in production the drop
      # guard needs a previous snapshot, so on the first day only this
      # floor stops a body that suddenly honours pageSize=10 from being
      # published as the whole list. One number when every list of the
      # job has the same floor, else each list's: states=13,zones=9.
      SPOC_MIN_RECORDS = length(distinct(values(j.min_records))) == 1 ? tostring(values(j.min_records)[0]) : join(",", [for l in j.lists : "${l}=${j.min_records[l]}"])
      # With native tables, every job loads each day it publishes (or
      # finds unchanged) into them; otherwise nothing is loaded (null:
      # job_env leaves the setting out, and the job's default is off).
      # Fixed either way: loads need the tables and the account's
      # BigQuery roles, which only the native tables come with.
      SPOC_BIGQUERY_DATASET = local.bigquery_native ? "${var.project_id}.${var.bigquery_dataset}" : null
    }
  }

  # Each job's env: the job's defaults, the dataset's own URL (the job
  # would pick it from SPOC_DATASET, but job_defaults names the spoc one),
  # then the settings given for every job, those given for this dataset,
  # and what the deployment decides; without the settings that are null
  # (a group's URL and prefix), which the job then leaves to each list.
  job_env = {
    for name, j in local.jobs : name => {
      for k, v in merge(
        local.job_defaults,
        { SPOC_URL = j.url },
        var.job_settings,
        j.job_settings,
        local.job_fixed[name],
      ) : k => v if v != null
    }
  }

  given_job_settings   = setunion(keys(var.job_settings), flatten([for j in values(local.jobs) : keys(j.job_settings)]))
  unknown_job_settings = setsubtract(local.given_job_settings, keys(local.job_defaults))
  fixed_job_settings   = setintersection(local.given_job_settings, flatten([for f in values(local.job_fixed) : keys(f)]))
}

# The spoc dataset's job had this address before there were datasets.
moved {
  from = google_cloud_run_v2_job.spoc
  to   = google_cloud_run_v2_job.dataset["spoc"]
}

# One per entry of var.datasets: a dataset's, or a group's (references),
# which publishes each of the group's lists.
resource "google_cloud_run_v2_job" "dataset" {
  for_each = local.jobs

  name     = each.value.job_name
  location = var.region
  # A destroy of the deployment should be deliberate.
  deletion_protection = true

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account = google_service_account.runtime.email
      timeout         = var.task_timeout
      max_retries     = var.max_retries

      containers {
        image = var.image

        resources {
          limits = {
            cpu    = var.cpu
            memory = var.memory
          }
        }

        dynamic "env" {
          for_each = local.job_env[each.key]
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }

  lifecycle {
    # Cloud Build deploys images (gcloud run jobs update --image); a later
    # terraform apply must not roll them back to var.image.
    ignore_changes = [
      template[0].template[0].containers[0].image,
      client,
      client_version,
    ]

    precondition {
      condition     = length(local.unknown_job_settings) == 0
      error_message = "job_settings has names the job does not read: ${join(", ", local.unknown_job_settings)}."
    }
    precondition {
      condition     = length(local.fixed_job_settings) == 0
      error_message = "job_settings sets ${join(", ", local.fixed_job_settings)}, which the deployment decides: set datasets, bucket_name, output_prefix, time_zone or min_records (or dataset_settings) instead."
    }
    # Across two variables, so a precondition: a variable's validation
    # may name another only from Terraform 1.9, and 1.5 is enough here.
    precondition {
      # A cpu or memory their own validations refuse is theirs to report.
      condition     = try(local.memory_mib >= local.memory_range_mib[var.cpu][0] && local.memory_mib <= local.memory_range_mib[var.cpu][1], true)
      error_message = "memory ${var.memory} is outside the range Cloud Run gives ${var.cpu} vCPU: ${local.memory_range_mib[var.cpu][0]}Mi to ${local.memory_range_mib[var.cpu][1]}Mi."
    }
    precondition {
      condition     = each.value.url != null || !contains(keys(merge(var.job_settings, each.value.job_settings)), "SPOC_URL")
      error_message = "job_settings sets SPOC_URL for ${each.key}, whose job publishes several lists, each from its own URL: set SPOC_API_BASE to fetch them from another host."
    }
  }

  depends_on = [time_sleep.apis_ready]
}

locals {
  # The memory Cloud Run gives a task of each CPU count it takes, in MiB
  # (Cloud Run's "Configure memory limits": 1 vCPU up to 4 GiB, 2 up to
  # 8, 4 from 2 to 16, 6 from 4 to 24, 8 from 4 to 32, and 512 MiB at
  # least; the provider's job docs: "4 CPU requires at least 2Gi of
  # memory, 6 or more CPU requires at least 4Gi").
  memory_range_mib = {
    "1" = [512, 4096]
    "2" = [512, 8192]
    "4" = [2048, 16384]
    "6" = [4096, 24576]
    "8" = [4096, 32768]
  }
  # var.memory in MiB; null when it is not of a form var.memory's
  # validation takes, which then reports it.
  memory_mib = try(tonumber(regex("^[0-9]+", var.memory)) * { Mi = 1, Gi = 1024, M = 1000000 / 1048576, G = 1000000000 / 1048576 }[regex("[A-Za-z]+$", var.memory)], null)
}
