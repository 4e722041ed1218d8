terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
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
