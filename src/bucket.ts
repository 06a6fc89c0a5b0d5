/** `pgbackup bucket check | lifecycle [--apply]`. */
import {
  GetBucketEncryptionCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetObjectLockConfigurationCommand,
  GetPublicAccessBlockCommand,
  PutBucketLifecycleConfigurationCommand,
  type LifecycleRule,
} from '@aws-sdk/client-s3';
import type { Parsed } from './cli.js';
import { bucketConfig } from './config.js';
import type { Context } from './context.js';
import { StorageError, VerifyError, messageOf } from './errors.js';
import { lifecycleRules, mergeRules, ruleDifferences } from './lifecycle.js';
import { makeS3Client, wrapS3Error } from './storage/index.js';

type Status = 'ok' | 'missing' | 'recommended' | 'unknown';
interface Finding {
  check: string;
  status: Status;
  detail: string;
  fix?: string;
}

function cannot(e: unknown): string | null {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  const s = err.$metadata?.httpStatusCode;
  if (err.name === 'NotImplemented' || s === 501) return 'the server does not implement this API';
  if (err.name === 'AccessDenied' || s === 403) return 'access denied (the credentials may not read this setting)';
  if (s === 405) return 'the server does not allow this request';
  return null;
}

export async function bucketCommand(ctx: Context, parsed: Parsed): Promise<number> {
  const cfg = bucketConfig(parsed, ctx.env);
  const client = await makeS3Client(cfg.target);
  const Bucket = cfg.target.bucket;
  const wanted = lifecycleRules(cfg.target.prefix, cfg.retention);

  if (cfg.action === 'lifecycle') {
    if (!cfg.apply) {
      ctx.out(JSON.stringify({ Rules: wanted }, null, 2) + '\n');
      return 0;
    }
    let existing: LifecycleRule[] = [];
    try {
      existing = (await client.send(new GetBucketLifecycleConfigurationCommand({ Bucket }), { abortSignal: ctx.signal })).Rules ?? [];
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (name !== 'NoSuchLifecycleConfiguration') {
        const why = cannot(e);
        if (why) throw new StorageError('NO_LIFECYCLE_API', `cannot read the lifecycle rules of s3://${Bucket}: ${why}. Apply the rules another way (Terraform module in infra/terraform, or "pgbackup bucket lifecycle" > rules.json and your provider's tools)`, { cause: e });
        throw wrapS3Error(e, `cannot read the lifecycle rules of s3://${Bucket}`);
      }
    }
    const rules = mergeRules(existing, wanted) as LifecycleRule[];
    try {
      await client.send(new PutBucketLifecycleConfigurationCommand({ Bucket, LifecycleConfiguration: { Rules: rules } }), { abortSignal: ctx.signal });
    } catch (e) {
      const why = cannot(e);
      if (why) throw new StorageError('NO_LIFECYCLE_API', `cannot write the lifecycle rules of s3://${Bucket}: ${why}`, { cause: e });
      throw wrapS3Error(e, `cannot write the lifecycle rules of s3://${Bucket}`);
    }
    ctx.out(`applied ${wanted.length} pgbackup lifecycle rules to s3://${Bucket}/${cfg.target.prefix} (kept ${rules.length - wanted.length} other rule(s))\n`);
    return 0;
  }

  const findings: Finding[] = [];
  const probe = async (check: string, fn: () => Promise<Finding>, onMissing?: (e: unknown) => Finding | null) => {
    try {
      findings.push(await fn());
    } catch (e) {
      const m = onMissing?.(e);
      if (m) return void findings.push(m);
      const why = cannot(e);
      if (why) findings.push({ check, status: 'unknown', detail: `cannot check: ${why}` });
      else if ((e as { name?: string }).name === 'NoSuchBucket') throw wrapS3Error(e, `s3://${Bucket}`);
      else findings.push({ check, status: 'unknown', detail: `cannot check: ${messageOf(e)}` });
    }
  };
  await probe('versioning', async () => {
    const r = await client.send(new GetBucketVersioningCommand({ Bucket }), { abortSignal: ctx.signal });
    return r.Status === 'Enabled'
      ? { check: 'versioning', status: 'ok', detail: 'enabled' }
      : { check: 'versioning', status: 'missing', detail: `versioning is ${r.Status ?? 'off'}: an overwrite or delete would lose a backup`, fix: `aws s3api put-bucket-versioning --bucket ${Bucket} --versioning-configuration Status=Enabled` };
  });
  await probe(
    'default encryption',
    async () => {
      const r = await client.send(new GetBucketEncryptionCommand({ Bucket }), { abortSignal: ctx.signal });
      const algo = r.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm;
      return { check: 'default encryption', status: algo ? 'ok' : 'recommended', detail: algo ? algo : 'none (backups are age-encrypted anyway)' };
    },
    (e) => ((e as { name?: string }).name === 'ServerSideEncryptionConfigurationNotFoundError' ? { check: 'default encryption', status: 'recommended', detail: 'none (backups are age-encrypted anyway)', fix: 'set SSE-S3 or SSE-KMS default encryption (infra/terraform does)' } : null),
  );
  await probe(
    'public access block',
    async () => {
      const c = (await client.send(new GetPublicAccessBlockCommand({ Bucket }), { abortSignal: ctx.signal })).PublicAccessBlockConfiguration;
      const all = c?.BlockPublicAcls && c.BlockPublicPolicy && c.IgnorePublicAcls && c.RestrictPublicBuckets;
      return all
        ? { check: 'public access block', status: 'ok', detail: 'all four settings on' }
        : { check: 'public access block', status: 'missing', detail: 'not all four settings are on', fix: `aws s3api put-public-access-block --bucket ${Bucket} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true` };
    },
    (e) => ((e as { name?: string }).name === 'NoSuchPublicAccessBlockConfiguration' ? { check: 'public access block', status: 'missing', detail: 'none set', fix: `aws s3api put-public-access-block --bucket ${Bucket} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true` } : null),
  );
  await probe(
    'TLS-only policy',
    async () => {
      const p = (await client.send(new GetBucketPolicyCommand({ Bucket }), { abortSignal: ctx.signal })).Policy ?? '';
      const ok = /aws:SecureTransport/.test(p) && /"Deny"/.test(p);
      return { check: 'TLS-only policy', status: ok ? 'ok' : 'recommended', detail: ok ? 'denies requests without TLS' : 'no statement denying aws:SecureTransport=false', fix: ok ? undefined : 'add a Deny statement on aws:SecureTransport=false (infra/terraform does)' };
    },
    (e) => ((e as { name?: string }).name === 'NoSuchBucketPolicy' ? { check: 'TLS-only policy', status: 'recommended', detail: 'no bucket policy', fix: 'add a Deny statement on aws:SecureTransport=false (infra/terraform does)' } : null),
  );
  await probe(
    'object lock',
    async () => {
      const r = await client.send(new GetObjectLockConfigurationCommand({ Bucket }), { abortSignal: ctx.signal });
      const rule = r.ObjectLockConfiguration?.Rule?.DefaultRetention;
      return { check: 'object lock', status: 'ok', detail: rule ? `${rule.Mode} ${rule.Days ?? rule.Years} ${rule.Days ? 'days' : 'years'}` : 'enabled, no default retention' };
    },
    (e) => ((e as { name?: string }).name === 'ObjectLockConfigurationNotFoundError' ? { check: 'object lock', status: 'recommended', detail: 'off (optional: protects backups from deletion, even by an admin)' } : null),
  );
  await probe(
    'lifecycle rules',
    async () => {
      const r = await client.send(new GetBucketLifecycleConfigurationCommand({ Bucket }), { abortSignal: ctx.signal });
      const diffs = ruleDifferences((r.Rules ?? []) as unknown as Array<Record<string, unknown>>, wanted);
      return diffs.length
        ? { check: 'lifecycle rules', status: 'missing', detail: diffs.join('; '), fix: 'pgbackup bucket lifecycle --apply' }
        : { check: 'lifecycle rules', status: 'ok', detail: `the ${wanted.length} pgbackup rules match the retention settings` };
    },
    (e) => ((e as { name?: string }).name === 'NoSuchLifecycleConfiguration' ? { check: 'lifecycle rules', status: 'missing', detail: 'no lifecycle rules: nothing expires, and incomplete uploads are never cleaned up', fix: 'pgbackup bucket lifecycle --apply' } : null),
  );

  if (cfg.json) ctx.out(JSON.stringify({ bucket: Bucket, prefix: cfg.target.prefix, findings }, null, 2) + '\n');
  else {
    const mark: Record<Status, string> = { ok: 'ok     ', missing: 'MISSING', recommended: 'advice ', unknown: 'unknown' };
    for (const f of findings) ctx.out(`${mark[f.status]}  ${f.check}: ${f.detail}${f.fix ? `\n         fix: ${f.fix}` : ''}\n`);
  }
  const missing = findings.filter((f) => f.status === 'missing');
  if (missing.length) throw new VerifyError('BUCKET', `s3://${Bucket} lacks what a backup bucket needs: ${missing.map((m) => m.check).join(', ')}`);
  return 0;
}
