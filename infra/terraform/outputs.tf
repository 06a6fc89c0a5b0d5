output "bucket" {
  description = "The backup bucket's name."
  value       = aws_s3_bucket.backups.id
}

output "bucket_arn" {
  description = "The backup bucket's ARN."
  value       = aws_s3_bucket.backups.arn
}

output "pgbackup_target" {
  description = "The value for PGBACKUP_TARGET."
  value       = "s3://${aws_s3_bucket.backups.id}/${var.prefix}"
}

output "writer_policy_arn" {
  description = "IAM policy for the backup job."
  value       = aws_iam_policy.writer.arn
}

output "restorer_policy_arn" {
  description = "IAM policy for operators who restore."
  value       = aws_iam_policy.restorer.arn
}

output "verifier_policy_arn" {
  description = "IAM policy for the verify job."
  value       = aws_iam_policy.verifier.arn
}
