/** Targets: where backups live, parsed from a string and the environment (no I/O). */
import { resolve } from 'node:path';
import { UsageError } from '../support/errors.js';
import { normalisePrefix } from '../model/keys.js';
import { parseDuration } from '../support/units.js';
import type { Target } from './index.js';

export type { Target };

/** Where backups go and come from when neither a flag nor PGBACKUP_TARGET says. */
export const DEFAULT_TARGET = './backups';

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * The only parser of a target (flag or PGBACKUP_TARGET, or the bucket of an s3:// key):
 * `s3://bucket/prefix/` with the S3 settings of the environment, or a folder path.
 */
export function parseTarget(raw: string, env: NodeJS.ProcessEnv, field: string): Target {
  if (raw.startsWith('s3://') || raw.startsWith('S3://')) {
    const rest = raw.slice(5);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = slash < 0 ? '' : rest.slice(slash + 1);
    if (bucket === '') throw new UsageError(`${field}: "${raw}" names no bucket (expected s3://bucket/prefix/)`);
    if (!BUCKET_RE.test(bucket)) throw new UsageError(`${field}: "${bucket}" is not a valid S3 bucket name`);
    const sse = env.PGBACKUP_S3_SSE;
    if (sse !== undefined && sse !== '' && sse !== 'AES256' && sse !== 'aws:kms') throw new UsageError(`PGBACKUP_S3_SSE: must be AES256 or aws:kms, not "${sse}"`);
    const fps = env.PGBACKUP_S3_FORCE_PATH_STYLE;
    const attempts = env.AWS_MAX_ATTEMPTS;
    if (attempts !== undefined && attempts !== '' && !(/^\d+$/.test(attempts) && Number(attempts) >= 1)) {
      throw new UsageError(`AWS_MAX_ATTEMPTS: must be a whole number of at least 1, not "${attempts}"`);
    }
    const timeout = env.PGBACKUP_S3_TIMEOUT;
    let idleTimeoutMs: number | undefined;
    if (timeout !== undefined && timeout !== '') {
      idleTimeoutMs = parseDuration(timeout);
      if (idleTimeoutMs === undefined || idleTimeoutMs < 1000) {
        throw new UsageError(`PGBACKUP_S3_TIMEOUT: must be a duration of at least 1s such as 30s or 5m, not "${timeout}"`);
      }
    }
    return {
      kind: 's3',
      bucket,
      prefix: normalisePrefix(prefix),
      region: env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
      endpoint: env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined,
      forcePathStyle: fps ? /^(1|true|yes)$/i.test(fps) : undefined,
      sse: (sse || undefined),
      kmsKeyId: env.PGBACKUP_S3_KMS_KEY_ID || undefined,
      storageClass: env.PGBACKUP_S3_STORAGE_CLASS || undefined,
      maxAttempts: attempts ? Number(attempts) : undefined,
      idleTimeoutMs,
    };
  }
  if (raw.trim() === '') throw new UsageError(`${field}: empty`);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) throw new UsageError(`${field}: unsupported target "${raw.split('://')[0]}://" (expected s3://bucket/prefix/ or a folder path)`);
  return { kind: 'folder', path: raw };
}

/**
 * PGBACKUP_TARGET (and the default of --from): one target, or several separated by whitespace
 * for `backup` (every one gets the backup). In a list, each entry must be an s3:// URL or an
 * absolute folder path: a folder path holding a space, set before lists existed, is refused
 * rather than split into two relative folders.
 */
export function parseEnvTargets(raw: string, env: NodeJS.ProcessEnv, field = 'PGBACKUP_TARGET'): Target[] {
  const parts = raw.trim().split(/\s+/).filter(Boolean);
  if (parts.length <= 1) return [parseTarget(raw.trim() === '' ? raw : raw.trim(), env, field)];
  return parts.map((p, i) => {
    if (!/^s3:\/\//i.test(p) && !p.startsWith('/')) {
      throw new UsageError(`${field}: entry #${i + 1} "${p}" of a list of targets must be an s3:// URL or an absolute folder path (a folder whose path holds whitespace can only be given with --to)`);
    }
    return parseTarget(p, env, `${field} #${i + 1}`);
  });
}

/** The same target twice would race itself for the key: refused. */
export function targetId(t: Target): string {
  return t.kind === 's3' ? `s3://${t.bucket}/${t.prefix}` : `folder:${resolve(t.path)}`;
}
