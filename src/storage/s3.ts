import type { S3Client, S3ClientConfig, StorageClass } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { StorageError, UsageError, isPgBackupError, messageOf } from '../support/errors.js';
import { claimKey, keyProblem, prefixProblem } from '../model/keys.js';
import { DEFAULT_PART, DEFAULT_QUEUE } from '../model/plan.js';
import { counted, type GetOptions, type PutResult, type PutStreamOptions, type SpliceOptions, type Storage, type StoredObject } from './types.js';

/** S3's smallest part (all but the last), the largest UploadPartCopy range we ask for, CopyObject's limit. */
const MIN_PART = 5 * 1024 * 1024;
const COPY_PART = 1024 * 1024 * 1024;
const MAX_COPY = 5 * 1024 * 1024 * 1024;

/**
 * How long a request may go without a byte either way (PGBACKUP_S3_TIMEOUT's default), and how
 * long a TCP connection may take to open. S3 sends CompleteMultipartUpload's and UploadPartCopy's
 * keep-alive whitespace well within this.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 2 * 60_000;
const CONNECT_TIMEOUT_MS = 10_000;

export interface S3Options {
  bucket: string;
  prefix: string;
  region?: string | undefined;
  endpoint?: string | undefined;
  forcePathStyle?: boolean | undefined;
  sse?: 'AES256' | 'aws:kms' | undefined;
  kmsKeyId?: string | undefined;
  storageClass?: string | undefined;
  maxAttempts?: number | undefined;
  /**
   * Milliseconds a connection may sit idle (nothing sent, nothing received) before the request
   * fails as a timeout and is retried (PGBACKUP_S3_TIMEOUT). Without it a server that stops
   * answering mid-upload would hold the run, and pg_dump's snapshot, forever.
   */
  idleTimeoutMs?: number | undefined;
  /** Keys per ListObjectsV2 page (the server's default, 1000, when unset); tests page with a few. */
  listPageSize?: number | undefined;
}

/** Turn an SDK error into a StorageError whose message says what happened, where. */
export function wrapS3Error(e: unknown, what: string): StorageError {
  if (e instanceof StorageError) return e;
  const err = e as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number }; code?: string; message?: string };
  const name = err?.name ?? 'Error';
  const status = err?.$metadata?.httpStatusCode;
  let hint = '';
  if (name === 'NoSuchBucket') hint = ' (the bucket does not exist)';
  else if (name === 'AccessDenied' || status === 403) hint = ' (access denied: check the credentials and the IAM policy)';
  else if (name === 'CredentialsProviderError') hint = ' (no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)';
  else if (err?.code === 'ECONNREFUSED' || err?.code === 'ENOTFOUND' || err?.code === 'ECONNRESET' || name === 'TimeoutError' || err?.code === 'ETIMEDOUT') hint = ' (network error: the server did not answer in time; PGBACKUP_S3_TIMEOUT sets how long to wait)';
  const msg = messageOf(e);
  const shown = msg && msg !== 'UnknownError' && msg !== name ? `${name}: ${msg}` : `${name}${status ? ` (HTTP ${status})` : ''}`;
  return new StorageError(name, `${what}: ${shown}${hint}`, { cause: e });
}

/** x-amz-tagging header value. */
export function tagging(tags: Record<string, string>): string {
  return Object.entries(tags)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

// The SDK is loaded on first use: commands on folders never pay for it.
/**
 * The exports of a CommonJS package loaded with import(): Node gives them as named exports and as
 * `default`; the bundle (scripts/bundle.mjs) only as `default`. Both are the package's module.exports.
 */
function cjsExports<T extends object>(m: T): T {
  const d = (m as { default?: unknown }).default;
  return d && typeof d === 'object' ? (d as T) : m;
}
/** An S3 error that says the upload or object is not there (NoSuchUpload, or a bare 404). */
function isNotFound(e: unknown): boolean {
  const x = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return x?.name === 'NoSuchUpload' || x?.$metadata?.httpStatusCode === 404;
}

let sdkP: Promise<typeof import('@aws-sdk/client-s3')> | undefined;
export function sdk(): Promise<typeof import('@aws-sdk/client-s3')> {
  return (sdkP ??= import('@aws-sdk/client-s3').then(cjsExports));
}

/**
 * The signing region for an S3-compatible endpoint (MinIO, Ceph RGW, s3rver...) when none is
 * set: such servers accept any region, and SigV4 needs one.
 */
export const COMPATIBLE_DEFAULT_REGION = 'us-east-1';

export async function makeS3Client(o: S3Options): Promise<S3Client> {
  const { S3Client } = await sdk();
  const cfg: S3ClientConfig = {
    forcePathStyle: o.forcePathStyle ?? false,
    // Standard retry mode: throttling (503 SlowDown), 500s and dropped connections are retried
    // with exponential backoff and full jitter, a bounded number of times (AWS_MAX_ATTEMPTS).
    retryMode: 'standard',
    maxAttempts: o.maxAttempts ?? 5,
    // The SDK's default is to wait forever on a connection or a silent server (both timeouts 0).
    requestHandler: {
      connectionTimeout: Math.min(CONNECT_TIMEOUT_MS, o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS),
      socketTimeout: o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    },
  };
  // AWS_REGION / AWS_DEFAULT_REGION (target.ts) when set; else the SDK's own chain decides
  // (AWS_REGION, then the region of the AWS_PROFILE profile in the shared config files).
  if (o.region) cfg.region = o.region;
  if (o.endpoint) {
    cfg.endpoint = o.endpoint;
    // S3-compatible servers often lack the newer flexible checksums; ask for them only when
    // an operation requires them. On AWS itself the SDK default (CRC32 on every upload) stays.
    cfg.requestChecksumCalculation = 'WHEN_REQUIRED';
    cfg.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  const client = new S3Client(cfg);
  if (o.region) return client;
  try {
    await client.config.region();
    return client;
  } catch {
    // No region anywhere. A custom endpoint signs with a fixed one; AWS itself needs the right one.
    if (o.endpoint) return new S3Client({ ...cfg, region: COMPATIBLE_DEFAULT_REGION });
    throw new UsageError(
      `s3://${o.bucket}/: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or a region in the AWS_PROFILE profile of the AWS config file`,
      { code: 'NO_REGION' },
    );
  }
}

export class S3Storage implements Storage {
  readonly kind = 's3' as const;
  readonly description: string;
  private clientP: Promise<S3Client> | undefined;
  constructor(readonly opts: S3Options, client?: S3Client) {
    if (client) this.clientP = Promise.resolve(client);
    this.description = `s3://${opts.bucket}/${opts.prefix}`;
  }

  client(): Promise<S3Client> {
    return (this.clientP ??= makeS3Client(this.opts));
  }

  /** prefix + key, refused (exit 2) when it has "..", ".", empty segments or a backslash. */
  private full(key: string, listing = false): string {
    const k = this.opts.prefix + key;
    const problem = listing ? prefixProblem(k) : keyProblem(k);
    if (problem) throw new UsageError(`key "${k}": ${problem}`, { code: 'BAD_KEY' });
    return k;
  }

  private encryptionParams(): Record<string, unknown> {
    const p: Record<string, unknown> = {};
    if (this.opts.sse) p.ServerSideEncryption = this.opts.sse;
    if (this.opts.kmsKeyId) p.SSEKMSKeyId = this.opts.kmsKeyId;
    return p;
  }

  private static taken(e: unknown): boolean {
    return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412 || (e as { name?: string }).name === 'PreconditionFailed';
  }

  /**
   * Claim `key` just before a multipart upload completes: a conditional PutObject of
   * `{key}.claim` (tagged like the dump, so it expires with it). Ceph RGW 16 ignores
   * If-None-Match on CompleteMultipartUpload but honours it on PutObject: of two uploads to one
   * key, only the first to claim completes; the other stops with nothing stored and the first
   * intact. A dump already under the key (stored without a claim) counts as taken too.
   */
  /** Another run stored `Key` first: this run stored nothing (exit 4). */
  private lostRace(Key: string, how: string, cause?: unknown): StorageError {
    return new StorageError(
      'KEY_TAKEN',
      `another backup stored s3://${this.opts.bucket}/${Key} at the same moment (${how}); this run stored nothing and the other backup is intact: run it again`,
      cause ? { cause } : undefined,
    );
  }

  private async claim(Key: string, opts: PutStreamOptions): Promise<void> {
    const client = await this.client();
    const { PutObjectCommand } = await sdk();
    const taken = (how: string, cause?: unknown) => this.lostRace(Key, how, cause);
    try {
      await client.send(
        new PutObjectCommand({
          Bucket: this.opts.bucket,
          Key: claimKey(Key),
          Body: Buffer.from(JSON.stringify({ claimed: Key, at: new Date().toISOString() }) + '\n'),
          ContentType: 'application/json',
          IfNoneMatch: '*',
          Tagging: opts.tags ? tagging(opts.tags) : undefined,
          StorageClass: this.opts.storageClass as StorageClass | undefined,
          ...this.encryptionParams(),
        }),
        { abortSignal: opts.signal },
      );
    } catch (e) {
      if (S3Storage.taken(e)) throw taken(`its claim ${claimKey(Key)} came first`, e);
      throw wrapS3Error(e, `cannot claim s3://${this.opts.bucket}/${Key} (writing ${claimKey(Key)})`);
    }
    if (await this.head(Key.slice(this.opts.prefix.length), opts.signal)) throw taken('the key already holds a dump');
  }

  async putStream(key: string, body: Readable, opts: PutStreamOptions): Promise<PutResult> {
    const Key = this.full(key);
    const client = await this.client();
    const { AbortMultipartUploadCommand, CompleteMultipartUploadCommand } = await sdk();
    const { Upload } = cjsExports(await import('@aws-sdk/lib-storage'));
    // Aborted during the awaits above (an interrupt right at the start): stop here, before
    // anything listens to the body. Neither a listener added later nor upload.abort() before
    // done() would ever fire (lib-storage listens with onabort from done() on), so the upload
    // would wait forever for a body that is gone; and the counting stage made below would get
    // the body's abort error with nobody listening (an uncaught 'error', exit 1).
    opts.signal.throwIfAborted();
    const c = counted(body);
    // The upload's client claims the key right before CompleteMultipartUpload (see claim()).
    let claimed = false;
    const claiming = new Proxy(client, {
      get: (t, prop, r) =>
        prop === 'send'
          ? async (cmd: Parameters<S3Client['send']>[0], o?: Parameters<S3Client['send']>[1]) => {
              if (cmd instanceof CompleteMultipartUploadCommand) {
                await this.claim(Key, opts);
                claimed = true;
              }
              return t.send(cmd, o);
            }
          : (Reflect.get(t, prop, r) as unknown),
    });
    const upload = new Upload({
      client: claiming,
      queueSize: opts.queueSize ?? DEFAULT_QUEUE,
      partSize: opts.partSize ?? DEFAULT_PART,
      // We abort ourselves, so that a failing abort never hides the error that caused it.
      leavePartsOnError: true,
      params: {
        Bucket: this.opts.bucket,
        Key,
        Body: c.stream,
        ContentType: opts.contentType ?? 'application/octet-stream',
        Metadata: opts.metadata,
        // Tags go with the object's creation (x-amz-tagging): no window without its tier.
        Tagging: opts.tags ? tagging(opts.tags) : undefined,
        StorageClass: this.opts.storageClass as StorageClass | undefined,
        // Conditional create (PutObject and CompleteMultipartUpload): never replace a backup.
        IfNoneMatch: '*',
        ...this.encryptionParams(),
      },
    });
    const onAbort = () => void upload.abort();
    opts.signal.addEventListener('abort', onAbort, { once: true });
    let etag: string | undefined;
    try {
      etag = (await upload.done()).ETag?.replace(/"/g, '');
    } catch (e) {
      // lib-storage keeps the id of the upload it created; abort it so no parts linger. When
      // the upload was stopped while CreateMultipartUpload was on its way, the id arrives later:
      // wait for it (an abort at that moment left an upload behind on RGW).
      const pending = upload as unknown as { uploadId?: string; createMultiPartPromise?: Promise<{ UploadId?: string }> };
      const uploadId = pending.uploadId ?? (await pending.createMultiPartPromise?.then((r) => r.UploadId, () => undefined));
      if (uploadId) {
        try {
          await client.send(new AbortMultipartUploadCommand({ Bucket: this.opts.bucket, Key, UploadId: uploadId }));
        } catch (ae) {
          // 404: already gone (ended by the run that completed the key first, see below).
          if (!isNotFound(ae)) opts.warn?.(`could not abort multipart upload ${uploadId} of ${Key}; the bucket's lifecycle rule removes it after 1 day`, ae);
        }
      }
      // A claim whose upload did not complete is released (best effort: a writer without
      // s3:DeleteObject leaves it, and it expires with its tier's lifecycle rule).
      if (claimed) {
        const { DeleteObjectCommand } = await sdk();
        await client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: claimKey(Key) })).catch(() => undefined);
      }
      if (opts.signal.aborted) throw opts.signal.reason ?? e;
      // An error of the body stream (pg_dump, gzip, age) is the real cause: keep it as it is.
      if (isPgBackupError(e)) throw e;
      // This run's upload is gone while another run's dump is under the key: that run completed
      // the key first and then ended the other uploads of it (sweepStrayUploads). A lost race.
      if (isNotFound(e) && (await this.head(key, opts.signal).catch(() => null))) {
        throw this.lostRace(Key, "it completed first and ended this run's upload", e);
      }
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 412 || (e as { name?: string }).name === 'PreconditionFailed') {
        throw new StorageError('KEY_TAKEN', `another backup stored s3://${this.opts.bucket}/${Key} at the same moment; this run's copy was not stored (run it again)`, { cause: e });
      }
      throw wrapS3Error(e, `upload to s3://${this.opts.bucket}/${Key} failed`);
    } finally {
      opts.signal.removeEventListener('abort', onAbort);
    }
    // What the key holds now must be what this run completed: on a server that honours no
    // conditional write at all, another writer may have replaced it (detected, not prevented).
    const now = await this.head(key, opts.signal);
    if (!now || (etag && now.etag && now.etag !== etag)) {
      throw new StorageError(
        'KEY_TAKEN',
        `s3://${this.opts.bucket}/${Key} was replaced by another writer right after this run stored it (the server honours no conditional write); this run's backup is not valid: run it again`,
      );
    }
    if (opts.tags) await this.keepTags(key, opts.tags, opts);
    const ours = (upload as unknown as { uploadId?: string }).uploadId;
    if (ours) await this.sweepStrayUploads(key, ours, opts);
    return { size: c.bytes(), key };
  }

  /**
   * After this run completed `Key`, abort the other multipart uploads of that exact key. A
   * CreateMultipartUpload that timed out and was retried may still have been carried out by a
   * server that woke up late: the upload exists, under an id this run never heard of (seen on
   * RGW: three of them after a 15 s stall). Only the run that completed the key sweeps it, so
   * no upload that could still win is touched. Best effort: a writer without
   * s3:ListBucketMultipartUploads, or a server without the call, leaves them to the lifecycle
   * rule that aborts incomplete uploads after a day.
   */
  private async sweepStrayUploads(key: string, ours: string, opts: { signal: AbortSignal; warn?: ((msg: string, err?: unknown) => void) | undefined }): Promise<void> {
    const S = await sdk();
    const client = await this.client();
    const Key = this.full(key);
    let stray: string[];
    try {
      stray = (await this.listUploads(key, opts.signal)).filter((u) => u.key === key && u.uploadId !== ours).map((u) => u.uploadId);
    } catch {
      return;
    }
    let aborted = 0;
    for (const UploadId of stray) {
      try {
        await client.send(new S.AbortMultipartUploadCommand({ Bucket: this.opts.bucket, Key, UploadId }), { abortSignal: opts.signal });
        aborted++;
      } catch {
        // left to the lifecycle rule
      }
    }
    if (stray.length) {
      opts.warn?.(`aborted ${aborted} of ${stray.length} stray multipart upload(s) of s3://${this.opts.bucket}/${Key} (requests that timed out and were carried out late by the server)`);
    }
  }

  /**
   * Tags that stick: read the object's tags back and set them when the server dropped them
   * (Ceph RGW 16 loses those sent with CreateMultipartUpload, tracker 53016; s3rver ignores
   * x-amz-tagging). Lifecycle rules expire by tag: an untagged dump would never expire.
   */
  private async keepTags(key: string, tags: Record<string, string>, opts: { signal: AbortSignal; warn?: ((msg: string, err?: unknown) => void) | undefined }): Promise<void> {
    let got: Record<string, string> | null;
    try {
      got = await this.getTags(key, opts.signal);
    } catch (e) {
      // A writer that may not read tags (no s3:GetObjectTagging) sets them again, unseen.
      if ((e as StorageError).cause && (((e as StorageError).cause as { name?: string }).name === 'AccessDenied' || ((e as StorageError).cause as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 403)) {
        return this.putTags(key, tags, opts.signal);
      }
      throw e;
    }
    const missing = Object.entries(tags).filter(([k, v]) => got?.[k] !== v);
    if (missing.length === 0) return;
    await this.putTags(key, { ...(got ?? {}), ...tags }, opts.signal);
    const check = await this.getTags(key, opts.signal);
    if (Object.entries(tags).some(([k, v]) => check?.[k] !== v)) {
      throw new StorageError('TAGS_LOST', `s3://${this.opts.bucket}/${this.opts.prefix}${key} keeps no tags (${tagging(tags)}), even set with PutObjectTagging: lifecycle rules could never expire it`);
    }
    opts.warn?.(`the server dropped the tags sent with s3://${this.opts.bucket}/${this.opts.prefix}${key} (${missing.map(([k, v]) => `${k}=${v}`).join(', ')}); set them again with PutObjectTagging`);
  }

  async putBytes(key: string, body: Buffer, opts: { signal: AbortSignal; contentType?: string; ifAbsent?: boolean; metadata?: Record<string, string>; tags?: Record<string, string>; warn?: (msg: string, err?: unknown) => void }): Promise<void> {
    const Key = this.full(key);
    try {
      await (await this.client()).send(
        new (await sdk()).PutObjectCommand({
          Bucket: this.opts.bucket,
          Key,
          Body: body,
          ContentType: opts.contentType ?? 'application/json',
          Metadata: opts.metadata,
          IfNoneMatch: opts.ifAbsent ? '*' : undefined,
          Tagging: opts.tags ? tagging(opts.tags) : undefined,
          StorageClass: this.opts.storageClass as StorageClass | undefined,
          ...this.encryptionParams(),
        }),
        { abortSignal: opts.signal },
      );
    } catch (e) {
      if (opts.ifAbsent && S3Storage.taken(e)) {
        throw new StorageError('KEY_TAKEN', `s3://${this.opts.bucket}/${Key} already exists: another run wrote it first; nothing was replaced`, { cause: e });
      }
      throw wrapS3Error(e, `cannot write s3://${this.opts.bucket}/${Key}`);
    }
    if (opts.tags) await this.keepTags(key, opts.tags, opts);
  }

  async get(key: string, opts: GetOptions): Promise<Readable> {
    const Key = this.full(key);
    const Range = opts.suffix !== undefined ? `bytes=-${opts.suffix}` : opts.start !== undefined ? `bytes=${opts.start}-${opts.end ?? ''}` : undefined;
    try {
      const r = await (await this.client()).send(new (await sdk()).GetObjectCommand({ Bucket: this.opts.bucket, Key, Range }), { abortSignal: opts.signal });
      return r.Body as Readable;
    } catch (e) {
      throw wrapS3Error(e, `cannot read s3://${this.opts.bucket}/${Key}`);
    }
  }

  async getBytes(key: string, signal: AbortSignal): Promise<Buffer | null> {
    const Key = this.full(key);
    try {
      const r = await (await this.client()).send(new (await sdk()).GetObjectCommand({ Bucket: this.opts.bucket, Key }), { abortSignal: signal });
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (name === 'NoSuchKey' || (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
      throw wrapS3Error(e, `cannot read s3://${this.opts.bucket}/${Key}`);
    }
  }

  async head(key: string, signal: AbortSignal): Promise<StoredObject | null> {
    const Key = this.full(key);
    try {
      const r = await (await this.client()).send(new (await sdk()).HeadObjectCommand({ Bucket: this.opts.bucket, Key }), { abortSignal: signal });
      return { key, size: r.ContentLength ?? 0, lastModified: r.LastModified ?? new Date(0), etag: r.ETag?.replace(/"/g, ''), metadata: r.Metadata ?? {} };
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (name === 'NotFound' || name === 'NoSuchKey') return null;
      // HeadObject needs s3:GetObject on the object. The backup job's least-privilege policy
      // (infra/terraform/iam.tf) lets it read manifests only, never dumps; it can list. So a 403
      // on a dump is answered from the listing (size, ETag, time; no metadata).
      if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 403) {
        const listed = await this.listedObject(key, signal).catch(() => undefined);
        if (listed !== undefined) return listed;
      }
      throw wrapS3Error(e, `cannot stat s3://${this.opts.bucket}/${Key}`);
    }
  }

  /** One object's facts from the listing (s3:ListBucket only); null when it is not there. */
  private async listedObject(key: string, signal: AbortSignal): Promise<StoredObject | null> {
    // The key itself sorts before every longer key it prefixes: the first listed is it or nothing.
    for await (const o of this.list(key, signal)) return o.key === key ? { ...o, metadata: {} } : null;
    return null;
  }

  async *list(prefix: string, signal: AbortSignal): AsyncIterable<StoredObject> {
    // Paged with StartAfter (the last key seen) rather than continuation tokens: S3 supports
    // both, and some S3-compatible servers cannot decode their own tokens.
    let after: string | undefined;
    let more = true;
    const Prefix = this.full(prefix, true);
    while (more) {
      let r;
      try {
        r = await (await this.client()).send(
          new (await sdk()).ListObjectsV2Command({ Bucket: this.opts.bucket, Prefix, StartAfter: after, MaxKeys: this.opts.listPageSize }),
          { abortSignal: signal },
        );
      } catch (e) {
        throw wrapS3Error(e, `cannot list s3://${this.opts.bucket}/${Prefix}`);
      }
      for (const o of r.Contents ?? []) {
        if (!o.Key) continue;
        after = o.Key;
        yield { key: o.Key.slice(this.opts.prefix.length), size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0), etag: o.ETag?.replace(/"/g, '') };
      }
      more = Boolean(r.IsTruncated) && (r.Contents?.length ?? 0) > 0;
    }
  }

  async getTags(key: string, signal: AbortSignal): Promise<Record<string, string> | null> {
    const Key = this.full(key);
    try {
      const r = await (await this.client()).send(new (await sdk()).GetObjectTaggingCommand({ Bucket: this.opts.bucket, Key }), { abortSignal: signal });
      return Object.fromEntries((r.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (name === 'NoSuchKey' || (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
      throw wrapS3Error(e, `cannot read the tags of s3://${this.opts.bucket}/${Key}`);
    }
  }

  async putTags(key: string, tags: Record<string, string>, signal: AbortSignal): Promise<void> {
    const Key = this.full(key);
    try {
      await (await this.client()).send(
        new (await sdk()).PutObjectTaggingCommand({ Bucket: this.opts.bucket, Key, Tagging: { TagSet: Object.entries(tags).map(([k, v]) => ({ Key: k, Value: v })) } }),
        { abortSignal: signal },
      );
    } catch (e) {
      throw wrapS3Error(e, `cannot set the tags of s3://${this.opts.bucket}/${Key}`);
    }
  }

  /** Multipart uploads begun under `prefix` and neither completed nor aborted. */
  async listUploads(prefix: string, signal: AbortSignal): Promise<Array<{ key: string; uploadId: string; initiated: Date }>> {
    const Prefix = this.full(prefix, true);
    const out: Array<{ key: string; uploadId: string; initiated: Date }> = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (;;) {
      let r;
      try {
        r = await (await this.client()).send(new (await sdk()).ListMultipartUploadsCommand({ Bucket: this.opts.bucket, Prefix, KeyMarker, UploadIdMarker }), { abortSignal: signal });
      } catch (e) {
        throw wrapS3Error(e, `cannot list the multipart uploads of s3://${this.opts.bucket}/${Prefix}`);
      }
      for (const u of r.Uploads ?? []) {
        if (u.Key && u.UploadId) out.push({ key: u.Key.slice(this.opts.prefix.length), uploadId: u.UploadId, initiated: u.Initiated ?? new Date(0) });
      }
      if (!r.IsTruncated) return out;
      KeyMarker = r.NextKeyMarker;
      UploadIdMarker = r.NextUploadIdMarker;
    }
  }

  /** Delete the object at `key`; S3 does not say whether it existed (true). */
  async remove(key: string, signal: AbortSignal): Promise<boolean> {
    const Key = this.full(key);
    try {
      await (await this.client()).send(new (await sdk()).DeleteObjectCommand({ Bucket: this.opts.bucket, Key }), { abortSignal: signal });
      return true;
    } catch (e) {
      throw wrapS3Error(e, `cannot delete s3://${this.opts.bucket}/${Key}`);
    }
  }

  /**
   * Write `dest` = `head` followed by the bytes of `src` from offset `from` on, replacing `dest`.
   * Server-side wherever S3 allows: a multipart upload whose first part is `head` plus as much of
   * `src` as makes the 5 MiB a part needs, and whose other parts are UploadPartCopy ranges of
   * `src` (guarded by its ETag: a `src` replaced meanwhile fails the copy). Short objects: one
   * PutObject. Only `head` and at most the first 5 MiB of `src` cross the network.
   */
  async spliceCopy(src: string, from: number, head: Buffer, dest: string, opts: SpliceOptions): Promise<void> {
    const SrcKey = this.full(src);
    const Key = this.full(dest);
    const client = await this.client();
    const S = await sdk();
    const info = await this.head(src, opts.signal);
    if (!info) throw new StorageError('NOT_FOUND', `s3://${this.opts.bucket}/${SrcKey} does not exist`);
    const size = info.size;
    const common = {
      Bucket: this.opts.bucket,
      Key,
      ContentType: opts.contentType ?? 'application/octet-stream',
      Metadata: opts.metadata ?? info.metadata,
      Tagging: opts.tags ? tagging(opts.tags) : undefined,
      StorageClass: this.opts.storageClass as StorageClass | undefined,
      ...this.encryptionParams(),
    };
    const readRange = async (a: number, b: number): Promise<Buffer> => {
      if (b < a) return Buffer.alloc(0);
      const body = await this.get(src, { signal: opts.signal, start: a, end: b });
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c as Buffer);
      const got = Buffer.concat(chunks);
      if (got.length !== b - a + 1) throw new StorageError('SHORT_READ', `s3://${this.opts.bucket}/${SrcKey}: read ${got.length} bytes of range ${a}-${b}`);
      return got;
    };
    const minPart = opts.minPartSize ?? MIN_PART;
    if (size - from <= minPart) {
      const body = Buffer.concat([head, await readRange(from, size - 1)]);
      try {
        await client.send(new S.PutObjectCommand({ ...common, Body: body }), { abortSignal: opts.signal });
      } catch (e) {
        throw wrapS3Error(e, `cannot write s3://${this.opts.bucket}/${Key}`);
      }
      return;
    }
    let uploadId: string | undefined;
    try {
      // Not cancelled by the signal: stopped on its way, the upload would be created on the
      // server with an id this run never learns, so it could not abort it (seen on RGW after a
      // Ctrl-C). The request is short; the signal is checked right after it.
      uploadId = (await client.send(new S.CreateMultipartUploadCommand(common))).UploadId;
      if (!uploadId) throw new StorageError('NO_UPLOAD_ID', `s3://${this.opts.bucket}/${Key}: CreateMultipartUpload returned no upload id`);
      opts.signal.throwIfAborted();
      const parts: Array<{ PartNumber: number; ETag: string | undefined }> = [];
      // Part 1: the head and the first bytes of src, 5 MiB in all (no head: a copy part like the rest).
      let pos = from;
      if (head.length > 0) {
        const firstEnd = Math.min(size, from + Math.max(0, minPart - head.length));
        const body = Buffer.concat([head, await readRange(from, firstEnd - 1)]);
        const r = await client.send(new S.UploadPartCommand({ Bucket: this.opts.bucket, Key, UploadId: uploadId, PartNumber: 1, Body: body }), { abortSignal: opts.signal });
        parts.push({ PartNumber: 1, ETag: r.ETag });
        pos = firstEnd;
      }
      const copyPart = opts.copyPartSize ?? COPY_PART;
      const CopySource = `${this.opts.bucket}/${SrcKey.split('/').map(encodeURIComponent).join('/')}`;
      while (pos < size) {
        const end = Math.min(size, pos + copyPart);
        const PartNumber = parts.length + 1;
        const r = await client.send(
          new S.UploadPartCopyCommand({
            Bucket: this.opts.bucket,
            Key,
            UploadId: uploadId,
            PartNumber,
            CopySource,
            CopySourceRange: `bytes=${pos}-${end - 1}`,
            CopySourceIfMatch: info.etag ? `"${info.etag}"` : undefined,
          }),
          { abortSignal: opts.signal },
        );
        parts.push({ PartNumber, ETag: r.CopyPartResult?.ETag });
        pos = end;
        opts.onProgress?.(pos - from);
      }
      await client.send(new S.CompleteMultipartUploadCommand({ Bucket: this.opts.bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), { abortSignal: opts.signal });
      const done = uploadId;
      uploadId = undefined;
      await this.sweepStrayUploads(dest, done, opts);
    } catch (e) {
      if (uploadId) {
        await client.send(new S.AbortMultipartUploadCommand({ Bucket: this.opts.bucket, Key, UploadId: uploadId })).catch(() => undefined);
      }
      if (opts.signal.aborted) throw opts.signal.reason ?? e;
      throw wrapS3Error(e, `cannot write s3://${this.opts.bucket}/${Key} from s3://${this.opts.bucket}/${SrcKey}`);
    }
  }

  /** Replace `dest` with a server-side copy of `src` (tags given anew), then delete `src`. */
  async replace(src: string, dest: string, opts: { signal: AbortSignal; tags?: Record<string, string> }): Promise<void> {
    const SrcKey = this.full(src);
    const Key = this.full(dest);
    const info = await this.head(src, opts.signal);
    if (!info) throw new StorageError('NOT_FOUND', `s3://${this.opts.bucket}/${SrcKey} does not exist`);
    if (info.size > MAX_COPY) {
      // CopyObject stops at 5 GiB: a multipart copy of the whole object.
      await this.spliceCopy(src, 0, Buffer.alloc(0), dest, { signal: opts.signal, tags: opts.tags, metadata: info.metadata });
    } else {
      try {
        const S = await sdk();
        await (await this.client()).send(
          new S.CopyObjectCommand({
            Bucket: this.opts.bucket,
            Key,
            CopySource: `${this.opts.bucket}/${SrcKey.split('/').map(encodeURIComponent).join('/')}`,
            CopySourceIfMatch: info.etag ? `"${info.etag}"` : undefined,
            MetadataDirective: 'COPY',
            TaggingDirective: opts.tags ? 'REPLACE' : 'COPY',
            Tagging: opts.tags ? tagging(opts.tags) : undefined,
            StorageClass: this.opts.storageClass as StorageClass | undefined,
            ...this.encryptionParams(),
          }),
          { abortSignal: opts.signal },
        );
      } catch (e) {
        throw wrapS3Error(e, `cannot copy s3://${this.opts.bucket}/${SrcKey} to ${Key}`);
      }
    }
    const now = await this.head(dest, opts.signal);
    if (!now || now.size !== info.size) throw new StorageError('SIZE_MISMATCH', `s3://${this.opts.bucket}/${Key} has ${now ? now.size : 'no'} bytes after the copy, not ${info.size}`);
    await this.remove(src, opts.signal);
  }
}
