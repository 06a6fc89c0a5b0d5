# The backup bucket: versioned, encrypted, private, TLS-only, optionally object-locked,
# with lifecycle rules that expire each retention tier after its own age.
# The rules are the ones `pgbackup bucket lifecycle` prints (a test holds them equal).

locals {
  tier_days = {
    daily   = var.keep_daily_days
    weekly  = var.keep_weekly_days
    monthly = var.keep_monthly_days
    yearly  = var.keep_yearly_days
  }
  objects_arn = "${aws_s3_bucket.backups.arn}/${var.prefix}*"
}

resource "aws_s3_bucket" "backups" {
  bucket              = var.bucket_name
  force_destroy       = var.force_destroy
  object_lock_enabled = var.object_lock_mode != null
  tags                = var.tags
}

resource "aws_s3_bucket_versioning" "backups" {
  bucket = aws_s3_bucket.backups.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "backups" {
  bucket = aws_s3_bucket.backups.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_public_access_block" "backups" {
  bucket                  = aws_s3_bucket.backups.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "backups" {
  bucket = aws_s3_bucket.backups.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

data "aws_iam_policy_document" "tls_only" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.backups.arn,
      "${aws_s3_bucket.backups.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "backups" {
  bucket     = aws_s3_bucket.backups.id
  policy     = data.aws_iam_policy_document.tls_only.json
  depends_on = [aws_s3_bucket_public_access_block.backups]
}

resource "aws_s3_bucket_object_lock_configuration" "backups" {
  count  = var.object_lock_mode == null ? 0 : 1
  bucket = aws_s3_bucket.backups.id
  rule {
    default_retention {
      mode = var.object_lock_mode
      days = var.object_lock_days
    }
  }
  depends_on = [aws_s3_bucket_versioning.backups]
}

resource "aws_s3_bucket_lifecycle_configuration" "backups" {
  bucket = aws_s3_bucket.backups.id

  # One rule per tier tag: pgbackup tags every dump and manifest with tier=...
  dynamic "rule" {
    for_each = local.tier_days
    content {
      id     = "pgbackup-${var.prefix}${rule.key}"
      status = "Enabled"
      # With a prefix: prefix AND tag. Without one: the tag alone.
      filter {
        dynamic "and" {
          for_each = var.prefix == "" ? [] : [var.prefix]
          content {
            prefix = and.value
            tags = {
              tier = rule.key
            }
          }
        }
        dynamic "tag" {
          for_each = var.prefix == "" ? [rule.key] : []
          content {
            key   = "tier"
            value = tag.value
          }
        }
      }
      expiration {
        days = rule.value
      }
    }
  }

  rule {
    id     = "pgbackup-${var.prefix}abort-incomplete-uploads"
    status = "Enabled"
    filter {
      prefix = var.prefix
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_upload_days
    }
  }

  rule {
    id     = "pgbackup-${var.prefix}noncurrent-versions"
    status = "Enabled"
    filter {
      prefix = var.prefix
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    expiration {
      expired_object_delete_marker = true
    }
  }

  depends_on = [aws_s3_bucket_versioning.backups]
}
