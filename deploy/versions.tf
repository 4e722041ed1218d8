terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 7.x is the current major. deploy/ was checked against v7.45.0's
      # own schemas and validators (terraform validate, and deploy/tests
      # with mock providers), and its docs; the 7.0 upgrade guide has no
      # breaking entry for these resources once disable_on_destroy and
      # use_legacy_sql are set, which they are. 8.0 is a breaking release
      # (its upgrade guide changes google_bigquery_dataset): moving to it
      # is a deliberate change, rechecked the same way.
      version = "~> 7.45"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.12"
    }
  }

  # State lives in a GCS bucket created once by hand (deploy/README.md,
  # "State bucket"); its name is given at init:
  #   terraform init -backend-config="bucket=NAME"
  backend "gcs" {
    prefix = "mspo-spoc"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  # A user's application-default credentials may carry no quota project,
  # and some APIs then refuse the call ("... requires a quota project,
  # which is not set by default"); the provider does not read one that
  # gcloud wrote into them (hashicorp/terraform-provider-google#24500).
  # billing_project names it here: the provider's "Quota Management
  # Configuration" sends it with every call (X-Goog-User-Project) when
  # user_project_override is true. Empty, as by default: the API decides.
  user_project_override = var.billing_project != ""
  billing_project       = var.billing_project != "" ? var.billing_project : null
}
