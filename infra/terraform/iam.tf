# Least-privilege policies for the three roles around a backup bucket.
# Attach them to the role or user the job runs as.

# Listing the backups' prefix (and nothing else in the bucket); every role needs it.
data "aws_iam_policy_document" "list_prefix" {
  statement {
    sid       = "ListPrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.backups.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.prefix}*"]
    }
  }
}

# The scheduled backup job: writes dumps and manifests, tags them (and reads the tags back:
# some servers drop tags sent at creation), cleans up its own
# failed uploads, lists the prefix and reads manifests (to pick a tier: only full backups take
# a period's slot, and a backup's kind is in its manifest; manifests hold no secret). It cannot
# delete a backup: a stolen job credential cannot destroy history.
data "aws_iam_policy_document" "writer" {
  source_policy_documents = [data.aws_iam_policy_document.list_prefix.json]
  statement {
    sid = "WriteBackups"
    actions = [
      "s3:PutObject",
      "s3:PutObjectTagging",
      "s3:GetObjectTagging",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = [local.objects_arn]
  }
  statement {
    sid       = "ReadManifests"
    actions   = ["s3:GetObject"]
    resources = ["${local.objects_arn}.json"]
  }
  # After completing a dump, the job aborts other uploads of that same key: requests that
  # timed out but were carried out by S3 anyway (a bucket-level action: no prefix condition).
  statement {
    sid       = "FindStrayUploads"
    actions   = ["s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.backups.arn]
  }
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "UseKmsKey"
      actions   = ["kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

# An operator restoring a backup: reads and lists, nothing else.
data "aws_iam_policy_document" "restorer" {
  source_policy_documents = [data.aws_iam_policy_document.list_prefix.json]
  statement {
    sid       = "ReadBackups"
    actions   = ["s3:GetObject", "s3:GetObjectTagging", "s3:GetObjectVersion"]
    resources = [local.objects_arn]
  }
  statement {
    sid       = "ListVersions"
    actions   = ["s3:ListBucketVersions"]
    resources = [aws_s3_bucket.backups.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.prefix}*"]
    }
  }
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "UseKmsKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

# The weekly verify job: reads and lists backups, reads the bucket's settings for
# `pgbackup bucket check`, and writes the verify records ({key}.verified.json, tagged with the
# backup's tier so lifecycle expires them with it) that `pgbackup status` reads. A restore taken by `pgbackup restore` also writes a safety
# backup: give the operator the writer policy as well when that is wanted.
data "aws_iam_policy_document" "verifier" {
  source_policy_documents = [data.aws_iam_policy_document.restorer.json]
  statement {
    sid = "ReadBucketSettings"
    actions = [
      "s3:GetBucketVersioning",
      "s3:GetEncryptionConfiguration",
      "s3:GetBucketPublicAccessBlock",
      "s3:GetBucketPolicy",
      "s3:GetBucketObjectLockConfiguration",
      "s3:GetLifecycleConfiguration",
    ]
    resources = [aws_s3_bucket.backups.arn]
  }
  statement {
    sid       = "WriteVerifyRecords"
    actions   = ["s3:PutObject", "s3:PutObjectTagging"]
    resources = ["${local.objects_arn}.verified.json"]
  }
}

resource "aws_iam_policy" "writer" {
  name        = "${var.bucket_name}-pgbackup-writer"
  description = "pgbackup backup job: put, tag, abort uploads, list. No get, no delete."
  policy      = data.aws_iam_policy_document.writer.json
  tags        = var.tags
}

resource "aws_iam_policy" "restorer" {
  name        = "${var.bucket_name}-pgbackup-restorer"
  description = "pgbackup restore: get and list."
  policy      = data.aws_iam_policy_document.restorer.json
  tags        = var.tags
}

resource "aws_iam_policy" "verifier" {
  name        = "${var.bucket_name}-pgbackup-verifier"
  description = "pgbackup verify and bucket check: get, list, read bucket settings."
  policy      = data.aws_iam_policy_document.verifier.json
  tags        = var.tags
}
