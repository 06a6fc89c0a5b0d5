/**
 * `pgbackup rekey`: rewrite backups' age headers for new recipients (key rotation) without
 * decrypting or re-encrypting the payload. The file key is unwrapped with the old identity and
 * wrapped for the new recipients; the header MAC is recomputed from it. The payload (a STREAM
 * under that same file key) is copied as it is: server-side on S3.
 *
 * The sequence for one backup KEY (manifest KEY.json), each step durable before the next;
 * docs/rekey.md says what an interruption after each leaves:
 *   1. staged:   KEY.rekey = new header + KEY's payload (S3: UploadPartCopy; folder: a new file)
 *   2. verified: KEY.rekey read back: its header is the new one, every payload chunk
 *                authenticates under the file key; its size and sha256 measured
 *   3. pending:  KEY.json gets `rekey` {sha256, stored, headerSha256, recipients}: readers
 *                accept either object (the old one or the re-keyed one)
 *   4. replaced: KEY.rekey replaces KEY (folder: rename; S3: server-side copy, KEY.rekey deleted)
 *   5. final:    KEY.json says the new recipients, sha256 and size; `rekey` gone
 * A re-run finds where it stopped: the old identity still opens KEY (before 4: start again), or
 * KEY's header is the pending one (after 4: finish 5), or the manifest already names the new
 * recipients (done).
 */
import { createHash } from 'node:crypto';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RekeyConfig } from '../config/config.js';
import type { Context } from '../support/context.js';
import { formatBytes as humanBytes } from '../support/units.js';
import { CryptoError, StorageError, UsageError, InterruptedError, VerifyError, classify, messageOf, type PgBackupError } from '../support/errors.js';
import { AgeDecryptStream, findHeaderEnd, openHeader, rewrapHeader } from '../crypto/age.js';
import { readRecipientsFile } from '../crypto/secretfiles.js';
import { recipientProblems } from '../config/config.js';
import { openStorage, type Storage } from '../storage/index.js';
import { dbPrefix, manifestKey } from '../model/keys.js';
import { parseManifest, type Manifest } from '../model/manifest.js';
import { Measure } from '../pipeline/measure.js';
import { listBackups } from './catalog.js';
import { decryptSecrets, loadSecrets } from './restore.js';
import { displayKey } from './open.js';

export const REKEY_SUFFIX = '.rekey';
export type RekeyStep = 'staged' | 'pending' | 'replaced' | 'final';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');

/** The age header at the start of `key` (read in growing ranges, up to 1 MiB). */
async function readHeader(storage: Storage, key: string, size: number, signal: AbortSignal): Promise<Buffer> {
  for (let want = 64 * 1024; ; want *= 4) {
    const end = Math.min(size, want) - 1;
    const chunks: Buffer[] = [];
    for await (const c of await storage.get(key, { signal, start: 0, end })) chunks.push(c as Buffer);
    const head = Buffer.concat(chunks);
    const n = findHeaderEnd(head);
    if (n >= 0) return head.subarray(0, n);
    if (end + 1 >= size) throw new CryptoError('BAD_HEADER', `${key}: not an age file (no header end)`);
  }
}

/** Checks that a stream starts with `header` and passes on what follows. */
class ExpectHeader extends Transform {
  private seen = 0;
  constructor(private readonly header: Buffer) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.seen >= this.header.length) return cb(null, chunk);
    const n = Math.min(chunk.length, this.header.length - this.seen);
    if (!chunk.subarray(0, n).equals(this.header.subarray(this.seen, this.seen + n))) {
      return cb(new VerifyError('REKEY_HEADER', 'the staged copy does not start with the new header'));
    }
    this.seen += n;
    cb(null, n < chunk.length ? chunk.subarray(n) : undefined);
  }
  override _flush(cb: TransformCallback): void {
    cb(this.seen < this.header.length ? new VerifyError('REKEY_HEADER', 'the staged copy is shorter than its header') : null);
  }
}

interface OneOptions {
  recipients: string[];
  secrets: ReturnType<typeof decryptSecrets>;
  /** Tests only: SIGKILL this process right after a step (interruption tests). */
  killAfter?: string | undefined;
  progress?: (done: number, total: number) => void;
}

type Outcome = 'rekeyed' | 'finished' | 'already';

async function putManifest(storage: Storage, key: string, m: Manifest, signal: AbortSignal): Promise<void> {
  await storage.putBytes(manifestKey(key), Buffer.from(JSON.stringify(m, null, 2) + '\n'), { signal, contentType: 'application/json', tags: { tier: m.tier } });
}

function finalManifest(m: Manifest, pending: NonNullable<Manifest['rekey']>): Manifest {
  const { rekey: _r, ...rest } = m;
  return {
    ...rest,
    encryption: { type: 'age', recipients: pending.recipients, passphrase: false },
    sizes: { ...m.sizes, stored: pending.stored },
    sha256: pending.sha256,
    rekeyedAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
}

export async function rekeyOne(ctx: Context, storage: Storage, key: string, o: OneOptions): Promise<Outcome> {
  const { signal } = ctx;
  const staging = key + REKEY_SUFFIX;
  const step = (s: RekeyStep) => {
    if (o.killAfter === s) process.kill(process.pid, 'SIGKILL');
  };
  if (!storage.spliceCopy || !storage.replace || !storage.remove) throw new StorageError('UNSUPPORTED', `${storage.description}: this target cannot rewrite objects`);
  const mBytes = await storage.getBytes(manifestKey(key), signal);
  if (!mBytes) throw new StorageError('NO_MANIFEST', `${key}: no manifest: an incomplete backup is not re-keyed`);
  const parsed = parseManifest(mBytes);
  if ('error' in parsed) throw new StorageError('BAD_MANIFEST', `${key}: ${parsed.error}`);
  const m = parsed.manifest;
  if (m.encryption.type !== 'age') throw new UsageError(`${key}: not encrypted: nothing to re-key`, { code: 'NOT_ENCRYPTED' });
  const info = await storage.head(key, signal);
  if (!info) throw new StorageError('NOT_FOUND', `${key}: the object is gone`);
  const oldHeader = await readHeader(storage, key, info.size, signal);

  // An interrupted run replaced the object already (step 4 done): only the manifest is left.
  if (m.rekey && sha256(oldHeader) === m.rekey.headerSha256) {
    if (!sameSet(m.rekey.recipients, o.recipients)) {
      throw new UsageError(`${key}: an interrupted key rotation to other recipients (${m.rekey.recipients.join(', ')}) is pending: finish it with those`, { code: 'REKEY_PENDING' });
    }
    if (info.size !== m.rekey.stored) throw new StorageError('SIZE_MISMATCH', `${key}: ${info.size} bytes, the pending key rotation says ${m.rekey.stored}`);
    await putManifest(storage, key, finalManifest(m, m.rekey), signal);
    step('final');
    await storage.remove(staging, signal).catch(() => undefined);
    return 'finished';
  }
  let fileKey: Buffer;
  try {
    fileKey = await openHeader(oldHeader, o.secrets);
  } catch (e) {
    if (!(e instanceof CryptoError) || e.code !== 'NO_IDENTITY') throw e;
    if (!m.rekey && !m.encryption.passphrase && sameSet(m.encryption.recipients, o.recipients)) {
      await storage.remove(staging, signal).catch(() => undefined);
      return 'already';
    }
    throw e;
  }
  if (!m.rekey && !m.encryption.passphrase && sameSet(m.encryption.recipients, o.recipients)) {
    await storage.remove(staging, signal).catch(() => undefined);
    return 'already';
  }

  // 1. Stage the re-keyed copy: the new header, then the old object's bytes after its header.
  const newHeader = await rewrapHeader(fileKey, o.recipients);
  const payload = info.size - oldHeader.length;
  const newSize = newHeader.length + payload;
  await storage.spliceCopy(key, oldHeader.length, newHeader, staging, {
    signal,
    contentType: 'application/octet-stream',
    tags: { tier: m.tier },
    onProgress: (n) => o.progress?.(n, payload * 2),
  });
  step('staged');

  // 2. Read it back: the new header, every chunk authenticated, its size and sha256.
  const measure = new Measure();
  let read = 0;
  const sink = new Writable({ highWaterMark: 1 << 20, write: (_c, _e, cb) => cb() });
  const counter = new Transform({
    transform(c: Buffer, _e, cb) {
      read += c.length;
      o.progress?.(payload + Math.min(read, payload), payload * 2);
      cb(null, c);
    },
  });
  try {
    await pipeline([await storage.get(staging, { signal }), measure, counter, new ExpectHeader(newHeader), new AgeDecryptStream(fileKey), sink], { signal });
  } catch (e) {
    if (signal.aborted) throw e;
    throw new VerifyError('REKEY_VERIFY', `${key}: the re-keyed copy ${staging} does not check out (${messageOf(e)}); the backup is unchanged`, { cause: e });
  }
  if (measure.bytes !== newSize) throw new VerifyError('REKEY_VERIFY', `${key}: the re-keyed copy has ${measure.bytes} bytes, expected ${newSize}; the backup is unchanged`);
  const pending = { sha256: measure.digest(), stored: newSize, headerSha256: sha256(newHeader), recipients: [...o.recipients] };

  // 3. The manifest accepts either object from here on.
  await putManifest(storage, key, { ...m, rekey: pending }, signal);
  step('pending');
  // 4. The re-keyed copy takes the key.
  await storage.replace(staging, key, { signal, tags: { tier: m.tier } });
  step('replaced');
  // 5. The manifest describes it alone.
  await putManifest(storage, key, finalManifest(m, pending), signal);
  step('final');
  return 'rekeyed';
}

/** `rekey`: every selected backup re-keyed; one failing does not stop the others, the run then fails. */
export async function rekey(ctx: Context, cfg: Readonly<RekeyConfig>): Promise<void> {
  const recipients = [...cfg.recipients];
  if (cfg.recipientsFile) {
    const fromFile = await readRecipientsFile(cfg.recipientsFile);
    if (fromFile.length === 0) throw new UsageError(`recipients file ${cfg.recipientsFile}: holds no recipient`);
    recipients.push(...fromFile);
    const probs = recipientProblems(recipients, (i) => (i < cfg.recipients.length ? `--recipient #${i + 1}` : `recipients file ${cfg.recipientsFile} entry #${i + 1 - cfg.recipients.length}`));
    if (probs.length) throw new UsageError(probs);
  }
  const secrets = decryptSecrets(await loadSecrets(cfg));
  const storage = openStorage(cfg.target);
  let keys: Array<{ key: string; size: number }>;
  if (cfg.key !== undefined) {
    let key = cfg.key;
    if (cfg.target.kind === 's3' && cfg.target.prefix && key.startsWith(cfg.target.prefix)) key = key.slice(cfg.target.prefix.length);
    const h = await storage.head(key, ctx.signal);
    if (!h) throw new StorageError('NOT_FOUND', `no such backup: ${cfg.key} in ${storage.description}`);
    keys = [{ key, size: h.size }];
  } else {
    const all = await listBackups(storage, cfg.database !== undefined ? dbPrefix('', cfg.database) : '', ctx.signal, cfg.database);
    keys = all.filter((b) => b.complete && b.key.endsWith('.age')).map((b) => ({ key: b.key, size: b.size }));
    if (keys.length === 0) {
      throw new StorageError('NOT_FOUND', `no complete encrypted backups in ${storage.description}${cfg.database !== undefined ? ` for database "${cfg.database}"` : ''}`);
    }
  }
  const failures: Array<{ key: string; error: PgBackupError }> = [];
  let done = 0;
  for (const { key, size } of keys) {
    const shown = displayKey(cfg.target, key);
    // Progress: bytes copied, then read back (twice the payload in all).
    const state = { done: 0, total: 0 };
    const stopProgress = ctx.progress?.('rekey', () => ({ done: state.done, total: state.total || size * 2 }));
    try {
      const outcome = await rekeyOne(ctx, storage, key, {
        recipients,
        secrets,
        killAfter: ctx.env.PGBACKUP_TEST_REKEY_KILL_AFTER || undefined,
        progress: (d, t) => {
          state.done = d;
          state.total = t;
        },
      });
      stopProgress?.();
      done++;
      ctx.log.info({ key: shown, outcome, size: humanBytes(size) }, outcome === 'already' ? 'already encrypted to these recipients' : outcome === 'finished' ? 'finished an interrupted key rotation' : 'rekeyed');
      ctx.out(`${outcome === 'already' ? 'unchanged' : 'rekeyed'} ${shown}\n`);
    } catch (e) {
      stopProgress?.();
      if (e instanceof InterruptedError || ctx.signal.aborted) throw e;
      const c = classify(e);
      if (c instanceof UsageError && keys.length === 1) throw c;
      ctx.log.error({ key: shown, err: c.message }, 'rekey failed; this backup is unchanged or readable as before');
      failures.push({ key: shown, error: c });
    }
  }
  if (failures.length) {
    const first = failures[0]!.error;
    if (keys.length === 1) throw first;
    const Cls = first.constructor as new (code: string, message: string, o?: { cause?: unknown }) => PgBackupError;
    const msg = `rekey failed for ${failures.length} of ${keys.length} backup(s):\n  ${failures.map((f) => `${f.key}: ${f.error.message}`).join('\n  ')}`;
    throw first instanceof UsageError ? new UsageError(msg) : new Cls(first.code, msg, { cause: first });
  }
  ctx.log.info({ rekeyed: done }, `${done} backup(s) done`);
}
