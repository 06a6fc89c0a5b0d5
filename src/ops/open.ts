/**
 * Opening a stored backup for reading: find it, check its magic against its suffix, check the
 * age header against the identities (before anything else is touched), and build its decode
 * chain. Shared by restore, fetch and verify.
 */
import { realpath, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { basename, dirname } from 'node:path';
import { Readable, finished, type Transform } from 'node:stream';
import type { Context } from '../support/context.js';
import { MiB } from '../support/units.js';
import { CryptoError, StorageError, UsageError } from '../support/errors.js';
import { chainOf, keyProblem, manifestKey, sniff, type Chain } from '../model/keys.js';
import { FolderStorage, S3Storage, openStorage, type Storage, type Target } from '../storage/index.js';
import { parseTarget } from '../storage/target.js';
import { AgeDecryptStream, findHeaderEnd, openHeader, type DecryptSecrets } from '../crypto/age.js';
import { createDecompressor } from '../pipeline/compress.js';
import { Measure } from '../pipeline/measure.js';
import { parseManifest, type Manifest } from '../model/manifest.js';
import { MAX_MANIFEST_BYTES } from './catalog.js';

export interface Located {
  storage: Storage;
  key: string;
  /** How to show it: s3://bucket/key or a path. */
  display: string;
  size: number;
}

/** How a key under a target is shown: s3://bucket/prefix/key or folder/key. */
export function displayKey(target: Target, key: string): string {
  return target.kind === 's3' ? `s3://${target.bucket}/${target.prefix}${key}` : `${target.path}/${key}`;
}

/**
 * Find `ref` (a key under the target, an s3:// URL, or a local file asked for as one: see
 * localFileRef) and stat it. A key that is not found is never looked for on the local disk.
 */
export async function locate(ctx: Context, target: Target, ref: string): Promise<Located> {
  if (ref.startsWith('s3://')) {
    const rest = ref.slice(5);
    const slash = rest.indexOf('/');
    if (slash <= 0) throw new UsageError(`KEY: "${ref}" names no object`);
    // The bucket named in the URL, with the same S3 settings as any s3:// target.
    const t = parseTarget(`s3://${rest.slice(0, slash)}/`, ctx.env, 'KEY');
    if (t.kind !== 's3') throw new UsageError(`KEY: "${ref}" names no object`);
    const storage = new S3Storage(t);
    const key = rest.slice(slash + 1);
    const h = await storage.head(key, ctx.signal);
    if (!h) throw new StorageError('NOT_FOUND', `no such backup: ${ref}`);
    return { storage, key, display: ref, size: h.size };
  }
  // A local file, e.g. from the old `pg_dump > backups/x.sql` routine: only when asked for as one.
  const file = localFileRef(ref);
  if (file !== null) {
    const st = await stat(file).catch(() => null);
    if (!st) throw new StorageError('NOT_FOUND', `no such file: ${file}`);
    if (!st.isFile()) throw new StorageError('NOT_A_FILE', `not a regular file: ${file}`);
    // The real path: its folder is where its manifest (FILE.json) is looked for.
    const real = await realpath(file);
    return { storage: new FolderStorage(dirname(real)), key: basename(real), display: file, size: st.size };
  }
  const storage = openStorage(target);
  let key = ref;
  if (target.kind === 's3' && target.prefix && key.startsWith(target.prefix)) key = key.slice(target.prefix.length);
  const problem = keyProblem(key);
  if (problem) throw new UsageError(`KEY "${ref}": ${problem}`, { code: 'BAD_KEY' });
  const h = await storage.head(key, ctx.signal);
  if (h) return { storage, key, display: displayKey(target, key), size: h.size };
  throw new StorageError('NOT_FOUND', `no such backup: ${ref} in ${storage.description} (a local file is read only when given as a path starting with /, ./ or ../ that ends in .sql, .sql.gz, .sql.age or .sql.gz.age, or as file:PATH)`);
}

/**
 * The path of `ref` when it asks for a local file: `file:PATH` (or a file:// URL), or a path
 * starting with `/`, `./` or `../` that ends in a backup suffix. Anything else is a key.
 */
export function localFileRef(ref: string): string | null {
  if (ref.startsWith('file://')) {
    try {
      return fileURLToPath(ref);
    } catch (e) {
      throw new UsageError(`KEY "${ref}": not a usable file URL (${(e as Error).message})`);
    }
  }
  if (ref.startsWith('file:')) return ref.slice(5);
  if (/^(\/|\.\/|\.\.\/)/.test(ref) && chainOf(ref)) return ref;
  return null;
}

export async function readManifest(ctx: Context, storage: Storage, key: string): Promise<{ manifest: Manifest | null; problem?: string }> {
  // A manifest is a few KiB: one over MAX_MANIFEST_BYTES is refused before it is read whole.
  const h = await storage.head(manifestKey(key), ctx.signal);
  if (h && h.size > MAX_MANIFEST_BYTES) return { manifest: null, problem: `the manifest is ${h.size} bytes, over the ${MAX_MANIFEST_BYTES / 1024 / 1024} MiB a manifest may have; not read` };
  const bytes = await storage.getBytes(manifestKey(key), ctx.signal);
  if (!bytes) return { manifest: null, problem: 'no manifest (the backup is incomplete, or its manifest was deleted)' };
  const r = parseManifest(bytes);
  if ('error' in r) return { manifest: null, problem: r.error };
  return { manifest: r.manifest };
}

/** Ranged reads of a stored object: parts of this size, this many in flight. */
export const RANGE_PART = 4 * MiB;
export const RANGE_CONCURRENCY = 4;

/**
 * Ranged GETs, several in flight, yielded in order: memory is about part x concurrency.
 * Each part is read whole (so a short read is caught) and handed on chunk by chunk, uncopied.
 */
export function rangedStream(storage: Storage, key: string, size: number, signal: AbortSignal, part = RANGE_PART, concurrency = RANGE_CONCURRENCY): Readable {
  if (storage.kind === 'folder' || size <= part) {
    return Readable.from(
      (async function* () {
        const s = await storage.get(key, { signal });
        for await (const c of s) yield c as Buffer;
      })(),
      { objectMode: false },
    );
  }
  async function fetchPart(start: number, end: number): Promise<Buffer[]> {
    const s = await storage.get(key, { signal, start, end });
    const parts: Buffer[] = [];
    let n = 0;
    for await (const c of s) {
      parts.push(c as Buffer);
      n += (c as Buffer).length;
    }
    if (n !== end - start + 1) throw new StorageError('SHORT_READ', `short read of ${key} at bytes ${start}-${end}: got ${n} bytes`);
    return parts;
  }
  return Readable.from(
    (async function* () {
      const queue: Promise<Buffer[]>[] = [];
      let next = 0;
      while (next < size || queue.length) {
        while (queue.length < concurrency && next < size) {
          const end = Math.min(size, next + part) - 1;
          const p = fetchPart(next, end);
          p.catch(() => undefined);
          queue.push(p);
          next = end + 1;
        }
        for (const c of await queue.shift()!) yield c;
      }
    })(),
    { objectMode: false },
  );
}

export interface Opened {
  located: Located;
  chain: Chain;
  /** Raw stored bytes, counted and hashed as they pass. */
  measure: Measure;
  /** Stored bytes -> SQL text. */
  stages: Array<Readable | Transform>;
}

/** Read the first bytes of a stream without losing them: returns them and a stream of everything. */
async function peek(src: Readable, enough: (head: Buffer) => boolean, onFlow?: () => void): Promise<{ head: Buffer; stream: Readable }> {
  const it = src[Symbol.asyncIterator]();
  const got: Buffer[] = [];
  let head = Buffer.alloc(0);
  let ended = false;
  while (!enough(head)) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    got.push(r.value as Buffer);
    head = Buffer.concat(got);
  }
  const stream = Readable.from(
    (async function* () {
      onFlow?.();
      if (head.length) yield head;
      if (ended) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value as Buffer;
      }
    })(),
    { objectMode: false },
  );
  return { head, stream };
}

/**
 * Open a backup: the decode chain follows the suffix and must agree with the magic bytes.
 * For age files, the header is decrypted here: no matching identity -> CryptoError (exit 5),
 * before the caller touches anything.
 */
export async function openBackup(ctx: Context, located: Located, secrets: DecryptSecrets, step = 'read'): Promise<Opened> {
  const raw = rangedStream(located.storage, located.key, located.size, ctx.signal);
  const measure = new Measure();
  // Progress: stored bytes read of the object's size, from when the caller starts reading (not
  // while a prompt or a safety backup holds the opened stream) until the stream ends or fails.
  let stopProgress: (() => void) | undefined;
  let over = false;
  const onFlow = () => {
    if (!over && !stopProgress) stopProgress = ctx.progress?.(step, () => ({ done: measure.bytes, total: located.size }));
  };
  finished(measure, () => {
    over = true;
    stopProgress?.();
  });
  try {
    return await openChain(located, secrets, raw, measure, onFlow);
  } catch (e) {
    over = true;
    measure.destroy();
    throw e;
  }
}

async function openChain(located: Located, secrets: DecryptSecrets, raw: Readable, measure: Measure, onFlow: () => void): Promise<Opened> {
  const measured = raw.pipe(measure);
  raw.on('error', (e) => measure.destroy(e));
  const { head, stream } = await peek(measured, (h) => h.length >= 64 && (sniff(h) !== 'age' || findHeaderEnd(h) >= 0), onFlow);
  const magic = sniff(head);
  const bySuffix = chainOf(located.key);
  const byMagic: Chain = magic === 'age' || magic === 'age-armor' ? { age: true, gzip: bySuffix?.gzip ?? true } : { age: false, gzip: magic === 'gzip' };
  if (magic === 'age-armor') throw new UsageError(`${located.display}: ASCII-armored age files are not supported; decrypt it with "age -d" first`);
  if (bySuffix && (bySuffix.age !== byMagic.age || (!bySuffix.age && bySuffix.gzip !== byMagic.gzip))) {
    throw new CryptoError(
      'MAGIC_MISMATCH',
      `${located.display}: its name says ${bySuffix.age ? 'age-encrypted' : bySuffix.gzip ? 'gzip' : 'plain SQL'} but its first bytes are ${magic === 'age' ? 'age' : magic === 'gzip' ? 'gzip' : 'not age or gzip'}: the object is damaged or misnamed`,
    );
  }
  const chain = bySuffix ?? byMagic;
  const stages: Array<Readable | Transform> = [];
  if (chain.age) {
    const end = findHeaderEnd(head);
    if (end < 0) throw new CryptoError('TRUNCATED', `${located.display}: the age header is truncated`);
    const fileKey = await openHeader(head.subarray(0, end), secrets);
    const payload = Readable.from(
      (async function* () {
        let first = true;
        for await (const c of stream) {
          if (first) {
            first = false;
            const rest = (c as Buffer).subarray(end);
            if (rest.length) yield rest;
          } else yield c as Buffer;
        }
      })(),
      { objectMode: false },
    );
    stages.push(payload, new AgeDecryptStream(fileKey));
  } else {
    stages.push(stream);
  }
  if (chain.gzip) stages.push(createDecompressor());
  return { located, chain, measure, stages };
}
