# terraform init && terraform apply -var bucket_name=acme-db-backups
provider "aws" {
  region = "eu-west-1"
}

variable "bucket_name" {
  type = string
}

module "pgbackup_bucket" {
  source      = "../.."
  bucket_name = var.bucket_name
  prefix      = "prod/"

  # Same as pgbackup's defaults; change both together.
  keep_daily_days   = 7
  keep_weekly_days  = 35
  keep_monthly_days = 400
  keep_yearly_days  = 3650

  object_lock_mode = "GOVERNANCE"
  object_lock_days = 7

  tags = {
    service = "postgres-backups"
  }
}

resource "aws_iam_role_policy_attachment" "backup_job" {
  role       = "prod-db-backup-job" # the role your CronJob / instance runs as
  policy_arn = module.pgbackup_bucket.writer_policy_arn
}

output "pgbackup_target" {
  value = module.pgbackup_bucket.pgbackup_target
}
