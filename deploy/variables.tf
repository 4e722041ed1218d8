variable "project_id" {
  description = "GCP project that runs the job."
  type        = string
}

variable "billing_project" {
  description = "Quota project of every API call Terraform makes (usually project_id), for application-default credentials that have none: an apply that fails with \"... requires a quota project, which is not set by default\" (deploy/README.md, \"The quota project\"). Empty: each API decides, from the credentials or the resource's project."
  type        = string
  default     = ""
}

variable "region" {
  description = "Region of the Cloud Run job, the Artifact Registry repository, the scheduler and (when created) the bucket."
  type        = string
  default     = "asia-southeast1"
}

variable "datasets" {
  description = <<-EOT
    The public MSPO lists to publish, each with its own Cloud Run job,
    schedule, pair of alerts (execution failed, no snapshot) and (with
    bigquery_dataset) BigQuery tables:
    "spoc" (certified independent smallholders), "osh" (organised
    smallholders) and "gm" (smallholders certified through a group
    manager); deploy/datasets.json lists the ones the job knows. A group,
    "references", is one job and one schedule that publishes each of its
    lists (states, zones), with one execution-failed alert for the job and
    per-list staleness alerts and tables.
  EOT
  type        = set(string)
  default     = ["spoc"]

  validation {
    condition     = length(var.datasets) > 0
    error_message = "datasets must enable at least one dataset."
  }
}

variable "dataset_settings" {
  description = <<-EOT
    Per dataset, what differs from the deployment's defaults: its
    output_prefix (default: the dataset's own; for spoc, var.output_prefix),
    its min_records floor (default: the dataset's own; for spoc,
    var.min_records; a group's lists each keep their own, as
    SPOC_MIN_RECORDS=states=13,zones=9, unless min_records gives one for
    all of them; a group takes no output_prefix), its schedule (default:
    var.schedule) and job_settings applied over var.job_settings. For example
    { osh = { schedule = "30 3 * * *", job_settings = { SPOC_MAX_DROP_PERCENT = "5" } } }.
  EOT
  type = map(object({
    output_prefix = optional(string)
    min_records   = optional(number)
    schedule      = optional(string)
    job_settings  = optional(map(string), {})
  }))
  default = {}

  validation {
    condition = alltrue([for s in values(var.dataset_settings) : s.output_prefix == null || (
      length(coalesce(s.output_prefix, "-")) > 0 && !startswith(coalesce(s.output_prefix, "-"), "/") && !endswith(coalesce(s.output_prefix, "-"), "/") && !strcontains(coalesce(s.output_prefix, "-"), "..")
    )])
    error_message = "A dataset's output_prefix must be a relative path without .., and without a leading or trailing slash."
  }
  validation {
    condition     = alltrue([for s in values(var.dataset_settings) : s.min_records == null || (coalesce(s.min_records, 1) >= 1 && floor(coalesce(s.min_records, 1)) == coalesce(s.min_records, 1))])
    error_message = "A dataset's min_records must be a whole number of at least 1."
  }
}

variable "job_name" {
  description = "Name of the Cloud Run job of the spoc dataset; another dataset's job is JOB_NAME-DATASET (mspo-spoc-osh). Also the prefix of the service accounts."
  type        = string
  default     = "mspo-spoc"
}

variable "repository_id" {
  description = "Artifact Registry Docker repository that holds the job's images."
  type        = string
  default     = "mspo-spoc"
}

variable "image" {
  description = <<-EOT
    Image the job is created with. Cloud Build (cloudbuild.yaml) deploys new
    images with `gcloud run jobs update --image`, and Terraform leaves the
    image alone after creation, so this only matters on the first apply.
    The default is Google's sample job image, which exits at once: the first
    Cloud Build run replaces it.
  EOT
  type        = string
  default     = "us-docker.pkg.dev/cloudrun/container/job:latest"
}

variable "bucket_name" {
  description = "Bucket the snapshots are written to."
  type        = string
}

variable "create_bucket" {
  description = "Create the bucket (true), or use an existing one of that name (false)."
  type        = bool
  default     = true
}

variable "bucket_location" {
  description = "Location of the bucket when it is created; empty means var.region."
  type        = string
  default     = ""
}

variable "snapshot_retention_days" {
  description = "When the bucket is created: delete each day's snapshot, manifest, raw body, digest, change table and geolocation layer (geo/) older than this many days (0 keeps them forever). The versions (history/) and the BigQuery schema files are kept: the list as of any day needs every plot's newest version, however old."
  type        = number
  default     = 0

  validation {
    condition     = var.snapshot_retention_days >= 0
    error_message = "snapshot_retention_days cannot be negative."
  }
}

variable "output_prefix" {
  description = "Folder in the bucket that holds the spoc dataset's YYYYMMDD folders (its SPOC_PREFIX); other datasets default to their own (dataset_settings)."
  type        = string
  default     = "raw/mspo/api/spoc/get-spoc-list-public"

  validation {
    condition     = length(var.output_prefix) > 0 && !startswith(var.output_prefix, "/") && !endswith(var.output_prefix, "/") && !strcontains(var.output_prefix, "..")
    error_message = "output_prefix must be a relative path without .., and without a leading or trailing slash."
  }
}

variable "schedule" {
  description = "When the jobs run, in cron syntax, in var.time_zone (a dataset may have its own: dataset_settings)."
  type        = string
  default     = "0 3 * * *"
}

variable "time_zone" {
  description = "Time zone of the schedule and of the job's date folders (SPOC_TIMEZONE)."
  type        = string
  default     = "Asia/Kuala_Lumpur"
}

variable "min_records" {
  description = <<-EOT
    The fewest records a run of the spoc dataset may publish
    (SPOC_MIN_RECORDS); other datasets, and each list of a group, default
    to their own floor (deploy/datasets.json, dataset_settings). The list has
    about 306,000 plots; the default refuses a body far below that, such as
    an endpoint that one day honours pageSize=10, even on the first run,
    when there is no previous snapshot for the drop guard
    (SPOC_MAX_DROP_PERCENT) to compare with. Lower it if the list really
    shrinks that far.
  EOT
  type        = number
  default     = 250000

  validation {
    condition     = var.min_records >= 1 && floor(var.min_records) == var.min_records
    error_message = "min_records must be a whole number of at least 1."
  }
}

variable "job_settings" {
  description = <<-EOT
    SPOC_* settings that differ from the job's defaults, for every
    dataset's job, e.g. { SPOC_MAX_DROP_PERCENT = "5" } (one dataset's
    own: dataset_settings). Only names the job reads are accepted (see the
    README's configuration table). SPOC_DATASET, SPOC_OUTPUT, SPOC_PREFIX,
    SPOC_TIMEZONE and SPOC_MIN_RECORDS come from datasets, bucket_name,
    output_prefix, time_zone and min_records, and are refused here.
  EOT
  type        = map(string)
  default     = {}
}

variable "cpu" {
  description = "vCPUs of the job's task: 1, 2, 4, 6 or 8, the only values Cloud Run jobs take. Decoding and Parquet encoding run on two goroutines, so a second vCPU shortens the run when the download is fast. Cloud Run gives each its own memory range: 1 vCPU up to 4Gi, 2 up to 8Gi, 4 from 2Gi to 16Gi, 6 from 4Gi to 24Gi, 8 from 4Gi to 32Gi (checked against memory)."
  type        = string
  default     = "1"

  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.cpu)
    error_message = "cpu must be 1, 2, 4, 6 or 8: the only CPU limits Cloud Run jobs take."
  }
}

variable "memory" {
  description = "Memory of the job's task, in Mi or Gi (M and G, powers of ten, are taken too): at least 512Mi, within the range Cloud Run gives var.cpu. The job sets its soft memory limit to 90% of it. Measured peak RSS with every default: 200 MiB at 306,000 records, 287 MiB at 3,060,000 (58 bytes a plot of exact counts, change digests and the geolocation layer's point counts; bench/README.md); 512Mi leaves room for a higher zstd level."
  type        = string
  default     = "512Mi"

  validation {
    condition     = can(regex("^[1-9][0-9]*(Mi|Gi|M|G)$", var.memory))
    error_message = "memory must be a whole number of Mi or Gi (or M or G), such as 512Mi or 2Gi."
  }
}

variable "task_timeout" {
  description = "Limit of one task. Keep it above SPOC_DEADLINE (45m by default) plus SPOC_TELEMETRY_TIMEOUT, so the job ends itself cleanly first."
  type        = string
  default     = "3600s"
}

variable "max_retries" {
  description = "Times Cloud Run retries a failed task. The job already retries the download itself (SPOC_ATTEMPTS), so one retry only covers a lost instance."
  type        = number
  default     = 1
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel IDs (projects/P/notificationChannels/N) the alerts go to. Empty: alerts are raised but notify no one."
  type        = list(string)
  default     = []
}

variable "staleness_hours" {
  description = "Alert when no run has published a snapshot for this many hours."
  type        = number
  default     = 36
}

variable "bigquery_dataset" {
  description = "When set, create this BigQuery dataset with, per dataset, the tables bigquery_tables chooses and the views over them, named alike either way: DATASET_snapshots (with snapshot_date), DATASET_changes, DATASET_geo, DATASET_history and the table function DATASET_as_of."
  type        = string
  default     = ""
}

variable "bigquery_tables" {
  description = <<-EOT
    With bigquery_dataset set, the tables under the views: "native"
    (each run of a job loads its day into day-partitioned tables,
    DATASET_KIND_native, so that a query of one day reads that day's
    partition; the job's account may load into the BigQuery dataset) or
    "external" (tables over every day's objects in the bucket,
    DATASET_KIND_external: no loads, but every query reads every day).
    The views, and so the queries, are the same either way. A
    deployment that had BigQuery before this setting existed moves to
    "native" on its next apply: its tables then start empty, and the
    history views miss every plot that has not changed since, until the
    earlier days are loaded (deploy/README.md, "BigQuery tables"); set
    "external" to keep the tables it had.
  EOT
  type        = string
  default     = "native"

  validation {
    condition     = contains(["native", "external"], var.bigquery_tables)
    error_message = "bigquery_tables must be \"native\" or \"external\"."
  }
}

variable "bigquery_location" {
  description = "Location of the BigQuery dataset; it must match the bucket's. Empty means var.region."
  type        = string
  default     = ""
}

variable "build_region" {
  description = <<-EOT
    Region Cloud Build runs the build in (gcloud builds submit --region),
    apart from the job's region: Google restricts Cloud Build in some
    projects to us-central1, us-west2, europe-west1, asia-east1,
    australia-southeast1 and southamerica-east1 (asia-southeast1 is not one
    of them). The build still pushes to the repository in var.region.
  EOT
  type        = string
  default     = "asia-east1"
}

variable "build_submitters" {
  description = <<-EOT
    Who runs the build command (build_command), as IAM members
    ("user:a@example.com", "group:builders@example.com"): each gets, on
    the build's staging bucket only, Storage Object Admin (the source is
    uploaded there) and a custom role holding only storage.buckets.get
    (gcloud builds submit reads the bucket first). Their other roles
    (Cloud Build Editor, Service Account User on the build account, Logs
    Viewer) are granted by hand: deploy/README.md, Prerequisites. Setting
    it creates the custom role, which needs Role Administrator.
  EOT
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.build_submitters : can(regex("^(user|group|serviceAccount|domain):[^:]+$", m))])
    error_message = "build_submitters takes IAM members: user:EMAIL, group:EMAIL, serviceAccount:EMAIL or domain:DOMAIN."
  }
}

variable "bigquery_readers" {
  description = <<-EOT
    With bigquery_dataset: who may query the tables, views and table
    functions, as IAM members ("group:analysts@example.com",
    "user:a@example.com"). Each gets BigQuery Data Viewer on the dataset,
    BigQuery Job User on the project (queries run, and are billed, here)
    and, for the external tables, which read the bucket with the reader's
    own credentials, Storage Object Viewer on the objects under the
    datasets' prefixes and on the bucket's object names (deploy/README.md,
    "Who may query").
  EOT
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.bigquery_readers : can(regex("^(user|group|serviceAccount|domain):[^:]+$", m))])
    error_message = "bigquery_readers takes IAM members: user:EMAIL, group:EMAIL, serviceAccount:EMAIL or domain:DOMAIN."
  }
}

variable "image_keep_count" {
  description = "Artifact Registry keeps at least this many of the newest image versions, whatever their age."
  type        = number
  default     = 30
}

variable "image_retention_days" {
  description = "Image versions older than this many days are deleted, tagged or not, unless among the newest image_keep_count."
  type        = number
  default     = 90

  validation {
    condition     = var.image_retention_days >= 1
    error_message = "image_retention_days must be at least 1."
  }
}
