variable "bucket_name" {
  description = "Name of the backup bucket."
  type        = string
}

variable "prefix" {
  description = "Key prefix the backups live under (PGBACKUP_TARGET = s3://BUCKET/PREFIX). Empty, or ending in /."
  type        = string
  default     = ""
  validation {
    condition     = var.prefix == "" || endswith(var.prefix, "/")
    error_message = "prefix must be empty or end with /."
  }
}

# Days each retention tier is kept. Keep these equal to pgbackup's settings
# (PGBACKUP_KEEP_DAILY_DAYS and friends); `pgbackup bucket check` compares them.
variable "keep_daily_days" {
  description = "Days a daily backup is kept."
  type        = number
  default     = 7
}

variable "keep_weekly_days" {
  description = "Days a weekly backup (first of an ISO week) is kept."
  type        = number
  default     = 35
}

variable "keep_monthly_days" {
  description = "Days a monthly backup (first of a month) is kept."
  type        = number
  default     = 400
}

variable "keep_yearly_days" {
  description = "Days a yearly backup (first of a year) is kept."
  type        = number
  default     = 3650
}

variable "abort_incomplete_upload_days" {
  description = "Days after which an unfinished multipart upload (an interrupted backup) is removed."
  type        = number
  default     = 1
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or expired object version is kept before it is removed."
  type        = number
  default     = 7
}

variable "kms_key_arn" {
  description = "KMS key for default encryption (SSE-KMS). Null uses SSE-S3 (AES256)."
  type        = string
  default     = null
}

variable "object_lock_mode" {
  description = "Object lock: null (off), \"GOVERNANCE\" or \"COMPLIANCE\". Can only be enabled when the bucket is created."
  type        = string
  default     = null
  validation {
    condition     = var.object_lock_mode == null || contains(["GOVERNANCE", "COMPLIANCE"], coalesce(var.object_lock_mode, "x"))
    error_message = "object_lock_mode must be null, GOVERNANCE or COMPLIANCE."
  }
}

variable "object_lock_days" {
  description = "Default retention, in days, of every new object when object lock is on. Keep it at most keep_daily_days."
  type        = number
  default     = 7
}

variable "force_destroy" {
  description = "Allow terraform destroy to delete a bucket that still holds backups."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for the bucket and the IAM policies."
  type        = map(string)
  default     = {}
}
