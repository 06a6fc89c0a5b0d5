/** `pgbackup bucket check | lifecycle [--apply]`. */
import {
  GetBucketEncryptionCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetObjectLockConfigurationCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  PutBucketLifecycleConfigurationCommand,
  type LifecycleRule,
} from '@aws-sdk/client-s3';
import type { Parsed } from '../cli/args.js';
import { bucketConfig } from '../config/config.js';
import type { Context } from '../support/context.js';
import { StorageError, VerifyError, messageOf } from '../support/errors.js';
import { isLegacyRuleFor, lifecycleRules, mergeRules, ruleDifferences } from '../model/lifecycle.js';
import { makeS3Client, wrapS3Error } from '../storage/index.js';

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

export async function bucketCommand(ctx: Context, parsed: Parsed): Promise<void> {
  const cfg = bucketConfig(parsed, ctx.env);
  const client = await makeS3Client(cfg.target);
  const Bucket = cfg.target.bucket;
  const wanted = lifecycleRules(cfg.target.prefix, cfg.retention);

  if (cfg.action === 'lifecycle') {
    if (!cfg.apply) {
      ctx.out(JSON.stringify({ Rules: wanted }, null, 2) + '\n');
      return;
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
    const rules = mergeRules(existing, wanted, cfg.target.prefix) as LifecycleRule[];
    try {
      await client.send(new PutBucketLifecycleConfigurationCommand({ Bucket, LifecycleConfiguration: { Rules: rules } }), { abortSignal: ctx.signal });
    } catch (e) {
      const why = cannot(e);
      if (why) throw new StorageError('NO_LIFECYCLE_API', `cannot write the lifecycle rules of s3://${Bucket}: ${why}`, { cause: e });
      throw wrapS3Error(e, `cannot write the lifecycle rules of s3://${Bucket}`);
    }
    const replacedLegacy = existing.filter((r) => isLegacyRuleFor(r, cfg.target.prefix)).length;
    ctx.out(
      `applied ${wanted.length} pgbackup lifecycle rules to s3://${Bucket}/${cfg.target.prefix} (kept ${rules.length - wanted.length} other rule(s)` +
        `${replacedLegacy ? `; replaced ${replacedLegacy} rule(s) of this prefix written before rule IDs named it` : ''})\n`,
    );
    return;
  }

  // Which server answers: Ceph RGW sends x-rgw-* headers (HeadBucket: object count, quotas).
  // Some settings cannot be verified there, or must not be set (see below and the README's quirks table).
  let rgw = false;
  client.middlewareStack.add(
    (next) => async (args) => {
      const out = await next(args);
      const headers = (out.response as { headers?: Record<string, string> }).headers ?? {};
      if (Object.keys(headers).some((h) => h.toLowerCase().startsWith('x-rgw-'))) rgw = true;
      return out;
    },
    { step: 'deserialize', name: 'pgbackupServerKind' },
  );
  try {
    await client.send(new HeadBucketCommand({ Bucket }), { abortSignal: ctx.signal });
  } catch (e) {
    if ((e as { name?: string }).name === 'NotFound' || (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) {
      throw new StorageError('NoSuchBucket', `s3://${Bucket}: NoSuchBucket (the bucket does not exist)`, { cause: e });
    }
    // Other failures show in the checks themselves.
  }
  const server = rgw ? 'Ceph RGW' : 'S3';

  const findings: Finding[] = [];
  type Result = Omit<Finding, 'check'>;
  /** Run one check; `absent` is what it means when the server answers "not configured" with `error`. */
  const probe = async (check: string, fn: () => Promise<Result>, absent?: { error: string } & Result) => {
    try {
      findings.push({ check, ...(await fn()) });
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (absent && name === absent.error) {
        const { error: _error, ...result } = absent;
        return void findings.push({ check, ...result });
      }
      const why = cannot(e);
      if (why) findings.push({ check, status: 'unknown', detail: `cannot check: ${why}` });
      else if (name === 'NoSuchBucket') throw wrapS3Error(e, `s3://${Bucket}`);
      else findings.push({ check, status: 'unknown', detail: `cannot check: ${messageOf(e)}` });
    }
  };
  const pabFix = `aws s3api put-public-access-block --bucket ${Bucket} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true`;
  const tlsFix = 'add a Deny statement on aws:SecureTransport=false (infra/terraform does)';
  const lifecycleFix = `pgbackup bucket lifecycle --apply --to s3://${Bucket}/${cfg.target.prefix}`;

  await probe('versioning', async () => {
    const r = await client.send(new GetBucketVersioningCommand({ Bucket }), { abortSignal: ctx.signal });
    return r.Status === 'Enabled'
      ? { status: 'ok', detail: 'enabled' }
      : { status: 'missing', detail: `versioning is ${r.Status ?? 'off'}: an overwrite or delete would lose a backup`, fix: `aws s3api put-bucket-versioning --bucket ${Bucket} --versioning-configuration Status=Enabled` };
  });
  await probe(
    'default encryption',
    async () => {
      const r = await client.send(new GetBucketEncryptionCommand({ Bucket }), { abortSignal: ctx.signal });
      const rules = r.ServerSideEncryptionConfiguration?.Rules;
      // Ceph RGW 16 answers GetBucketEncryption without a configuration (it does not implement
      // default bucket encryption; PutBucketEncryption is refused).
      if (!rules) return { status: 'unknown', detail: `cannot check: the server answered without an encryption configuration${rgw ? ' (Ceph RGW 16 does not implement default bucket encryption)' : ''}; backups are age-encrypted anyway` };
      const algo = rules[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm;
      return { status: algo ? 'ok' : 'recommended', detail: algo ? algo : 'none (backups are age-encrypted anyway)' };
    },
    { error: 'ServerSideEncryptionConfigurationNotFoundError', status: 'recommended', detail: 'none (backups are age-encrypted anyway)', fix: 'set SSE-S3 or SSE-KMS default encryption (infra/terraform does)' },
  );
  await probe(
    'public access block',
    async () => {
      const c = (await client.send(new GetPublicAccessBlockCommand({ Bucket }), { abortSignal: ctx.signal })).PublicAccessBlockConfiguration;
      const all = c?.BlockPublicAcls && c.BlockPublicPolicy && c.IgnorePublicAcls && c.RestrictPublicBuckets;
      const any = c?.BlockPublicAcls || c?.BlockPublicPolicy || c?.IgnorePublicAcls || c?.RestrictPublicBuckets;
      if (rgw) {
        // Ceph RGW 16: a public access block makes every upload fail with 403 (Ceph tracker 49135).
        return any
          ? { status: 'missing', detail: 'set, and on Ceph RGW 16 a public access block makes every upload fail with 403 (Ceph tracker 49135)', fix: `aws s3api delete-public-access-block --bucket ${Bucket}` }
          : { status: 'unknown', detail: 'not set, and not to be set here: on Ceph RGW 16 it makes every upload fail with 403 (Ceph tracker 49135); keep the bucket private (no public ACL or bucket policy)' };
      }
      return all ? { status: 'ok', detail: 'all four settings on' } : { status: 'missing', detail: 'not all four settings are on', fix: pabFix };
    },
    rgw
      ? { error: 'NoSuchPublicAccessBlockConfiguration', status: 'unknown', detail: 'not set, and not to be set here: on Ceph RGW 16 it makes every upload fail with 403 (Ceph tracker 49135)' }
      : { error: 'NoSuchPublicAccessBlockConfiguration', status: 'missing', detail: 'none set', fix: pabFix },
  );
  await probe(
    'TLS-only policy',
    async () => {
      const p = (await client.send(new GetBucketPolicyCommand({ Bucket }), { abortSignal: ctx.signal })).Policy ?? '';
      const ok = /aws:SecureTransport/.test(p) && /"Deny"/.test(p);
      // Ceph RGW stores the statement but does not enforce it.
      if (rgw) return { status: 'unknown', detail: `${ok ? 'a Deny on aws:SecureTransport=false is stored' : 'no statement denying aws:SecureTransport=false'}, but Ceph RGW does not enforce it: serve RGW over TLS only (an https endpoint)` };
      return ok ? { status: 'ok', detail: 'denies requests without TLS' } : { status: 'recommended', detail: 'no statement denying aws:SecureTransport=false', fix: tlsFix };
    },
    rgw
      ? { error: 'NoSuchBucketPolicy', status: 'unknown', detail: 'no bucket policy; Ceph RGW would not enforce a TLS-only one anyway: serve RGW over TLS only (an https endpoint)' }
      : { error: 'NoSuchBucketPolicy', status: 'recommended', detail: 'no bucket policy', fix: tlsFix },
  );
  await probe(
    'object lock',
    async () => {
      const r = await client.send(new GetObjectLockConfigurationCommand({ Bucket }), { abortSignal: ctx.signal });
      const rule = r.ObjectLockConfiguration?.Rule?.DefaultRetention;
      return { status: 'ok', detail: rule ? `${rule.Mode} ${rule.Days ?? rule.Years} ${rule.Days ? 'days' : 'years'}` : 'enabled, no default retention' };
    },
    { error: 'ObjectLockConfigurationNotFoundError', status: 'recommended', detail: 'off (optional: protects backups from deletion, even by an admin)' },
  );
  await probe(
    'lifecycle rules',
    async () => {
      const r = await client.send(new GetBucketLifecycleConfigurationCommand({ Bucket }), { abortSignal: ctx.signal });
      // Only this prefix's rules are judged; other prefixes' and foreign rules are theirs.
      const diffs = ruleDifferences((r.Rules ?? []) as unknown as Array<Record<string, unknown>>, wanted);
      const legacy = (r.Rules ?? []).filter((x) => isLegacyRuleFor(x, cfg.target.prefix)).map((x) => x.ID);
      if (legacy.length) diffs.push(`rule(s) ${legacy.join(', ')} for this prefix use the old IDs without the prefix (--apply replaces them)`);
      return diffs.length
        ? { status: 'missing', detail: diffs.join('; '), fix: lifecycleFix }
        : { status: 'ok', detail: `the ${wanted.length} pgbackup rules of ${cfg.target.prefix || 'the whole bucket'} match the retention settings` };
    },
    { error: 'NoSuchLifecycleConfiguration', status: 'missing', detail: 'no lifecycle rules: nothing expires, and incomplete uploads are never cleaned up', fix: lifecycleFix },
  );

  // What was verified comes first; what this server does not let us verify is listed apart.
  const verified = findings.filter((f) => f.status !== 'unknown');
  const unverified = findings.filter((f) => f.status === 'unknown');
  if (cfg.json) ctx.out(JSON.stringify({ bucket: Bucket, prefix: cfg.target.prefix, server, findings, notVerified: unverified.map((f) => f.check) }, null, 2) + '\n');
  else {
    const mark: Record<Status, string> = { ok: 'ok     ', missing: 'MISSING', recommended: 'advice ', unknown: 'unknown' };
    const line = (f: Finding) => ctx.out(`${mark[f.status]}  ${f.check}: ${f.detail}${f.fix ? `\n         fix: ${f.fix}` : ''}\n`);
    verified.forEach(line);
    if (unverified.length) {
      ctx.out(`not verified on this server (${server}):\n`);
      unverified.forEach(line);
    }
  }
  const missing = findings.filter((f) => f.status === 'missing');
  if (missing.length) throw new VerifyError('BUCKET', `s3://${Bucket} lacks what a backup bucket needs: ${missing.map((m) => m.check).join(', ')}`);
}
