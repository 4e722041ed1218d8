terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.13.0 added disable_metric_validation (monitoring.tf), which the
      # first apply needs; 7.0 may break the attributes used here.
      version = "~> 6.13"
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
}
