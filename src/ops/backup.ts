/** `pgbackup backup`: pg_dump -> scan -> gzip -> age -> storage, then the manifest. */
import { pipeline } from 'node:stream/promises';
import { resolve as resolvePath } from 'node:path';
import type { Readable, Transform, Writable } from 'node:stream';
import type { BackupConfig } from '../config/config.js';
import { type Context, toolVersion } from '../support/context.js';
import { formatBytes, formatDuration } from '../support/units.js';
import { childEnv, withDatabase, type ConnInfo } from '../pg/conn.js';
import { serverInfo, listDatabases, databaseProperties, DbError, STAGING_PREFIX } from '../pg/db.js';
import { DumpError, StorageError, UsageError, PgBackupError, anyCause, firstError, messageOf } from '../support/errors.js';
import { findBinaries, pickBinary, type PgBinary } from '../pg/binaries.js';
import { startDump } from '../pipeline/dump.js';
import { DumpReader } from '../pipeline/dumpreader.js';
import { ParallelGzip } from '../pipeline/compress.js';
import { Measure } from '../pipeline/measure.js';
import { Tee } from '../pipeline/tee.js';
import { AgeEncryptStream, DEFAULT_SCRYPT_LOG_N, makeHeader, recipientOf } from '../crypto/age.js';
import { openStorage, type Storage } from '../storage/index.js';
import { backupKey, isoSeconds, manifestKey, tierListPrefixes, tierPeriods, GLOBALS_DB, type Tier, type TierMark, type Chain } from '../model/keys.js';
import { entryManifest, listBackups, type BackupEntry } from './catalog.js';
import { computeTier, dbPrefix } from '../model/keys.js';

/** Partial files of a folder target older than this are left by a killed backup: removed by the next backup of the database. */
export const STALE_PARTIAL_MS = 24 * 3600_000;
import { buildManifest, filterOptions, manifestKind, type SafetyFor } from '../model/manifest.js';
import { planParts } from '../model/plan.js';
import { readPassphrase, readRecipientsFile } from '../crypto/secretfiles.js';
import { partLimits, recipientProblems } from '../config/config.js';
import { Secret } from '../support/secret.js';
import { notify } from '../support/notify.js';
import { MetricsRun, targetLabel } from './metrics.js';

export interface Encryption {
  recipients: string[];
  passphrase?: Secret | undefined;
  scryptLogN: number;
}

export interface BackupTarget {
  storage: Storage;
  /** Prefix of the target inside the bucket, for the manifest's full key. */
  keyPrefix: string;
}

export interface OneBackup extends BackupTarget {
  /** More targets: the same bytes go to each, under the same key, each with its own manifest. */
  also?: BackupTarget[];
  conn: ConnInfo;
  database: string;
  globals?: boolean;
  encryption: Encryption | null;
  level: number;
  tier: 'auto' | Tier;
  dumpOptions: string[];
  partSize?: number | undefined;
  queueSize: number;
  stallMs?: number | undefined;
  /** The absolute path of ./backups when neither --to nor PGBACKUP_TARGET named a target: the summary says so. */
  defaultFolder?: string | undefined;
  reason?: string;
  /** 'safety': taken before a --clean restore (safetyFor says which). Otherwise full or partial, from dumpOptions. */
  kind?: 'safety';
  safetyFor?: SafetyFor;
}

export interface BackupResult {
  key: string;
  manifestKey: string;
  database: string;
  tier: Tier;
  sqlBytes: number;
  storedBytes: number;
  durationMs: number;
  sha256: string;
  /** The targets holding the backup (their descriptions), and the full key in each. */
  stored: Array<{ target: string; key: string }>;
  /** Several targets: those that failed (their uploads aborted, nothing complete left there). */
  failedTargets: Array<{ target: string; error: unknown }>;
}

async function chooseBinary(name: 'pg_dump' | 'pg_dumpall', serverMajor: number, serverVersion: string, env: NodeJS.ProcessEnv): Promise<PgBinary> {
  const found = await findBinaries(name, env);
  const pick = pickBinary(found, serverMajor);
  if (!pick) {
    const seen = found.length ? found.map((b) => `${b.version} (${b.path})`).join(', ') : 'none';
    throw new DumpError(
      'NO_PG_DUMP',
      `no ${name} of major version ${serverMajor} or newer found for server ${serverVersion}; found: ${seen}. ` +
        `Install the PostgreSQL ${serverMajor} client or set PGBACKUP_PG_BINDIR.`,
    );
  }
  return pick;
}

function dbFail(e: unknown): never {
  if (e instanceof DbError) throw new DumpError('CONNECT', e.message, { cause: e });
  throw e;
}

/**
 * The tier of a full backup started at `start`: a period's representative is its first full
 * backup whose tier covers the period (keys.ts computeTier). Manifests are read oldest first
 * and only as far as needed (usually one per period); safety and partial backups, and
 * backups whose manifest cannot be read, take no slot.
 */
async function pickTier(storage: Storage, database: string, start: Date, signal: AbortSignal, warnBlind?: (msg: string) => void): Promise<Tier> {
  const entries: BackupEntry[] = [];
  for (const p of tierListPrefixes('', database, start)) {
    for (const b of await listBackups(storage, p, signal, database)) if (b.complete) entries.push(b);
  }
  entries.sort((a, b) => a.time.getTime() - b.time.getTime() || a.seq - b.seq);
  const marks = new Map<string, TierMark | null>();
  const markOf = async (e: BackupEntry): Promise<TierMark | null> => {
    if (!marks.has(e.key)) {
      const r = await entryManifest(storage, e, signal);
      if ('error' in r && r.error.startsWith('cannot read')) throw Object.assign(new Error(r.error), { blind: true });
      marks.set(e.key, 'manifest' in r && manifestKind(r.manifest) === 'full' ? { time: e.time, tier: r.manifest.tier } : null);
    }
    return marks.get(e.key)!;
  };
  try {
    return await tierFromManifests(entries, start, markOf);
  } catch (e) {
    if (!(e as { blind?: boolean }).blind) throw e;
    // Manifests cannot be read (no s3:GetObject on *.json): every complete backup counts, as before kinds existed.
    warnBlind?.(`cannot read manifests to pick the tier (${messageOf(e)}); counting every complete backup as full`);
    return computeTier(start, entries.map((x) => x.time));
  }
}

async function tierFromManifests(entries: BackupEntry[], start: Date, markOf: (e: BackupEntry) => Promise<TierMark | null>): Promise<Tier> {
  for (const p of tierPeriods(start)) {
    let covered = false;
    for (const e of entries) {
      if (!p.contains(e.time)) continue;
      const m = await markOf(e);
      if (m && p.coveredBy.includes(m.tier)) {
        covered = true;
        break;
      }
    }
    if (!covered) return p.tier;
  }
  return 'daily';
}

/** Back up one database (or the cluster globals) to `storage`. */
export async function runOneBackup(ctx: Context, o: OneBackup): Promise<BackupResult> {
  const { log } = ctx;
  const t0 = Date.now();
  const start = new Date(Math.floor(t0 / 1000) * 1000);
  const conn = withDatabase(o.conn, o.globals ? (o.conn.database ?? 'postgres') : o.database);
  const server = await serverInfo(conn, ctx.signal).catch(dbFail);
  // pg_dump without --create leaves the database's own properties out; the manifest keeps them.
  const dbProps = o.globals
    ? undefined
    : await databaseProperties(conn, ctx.signal).catch((e) => {
        if (ctx.signal.aborted) throw e;
        log.warn({ err: messageOf(e) }, 'cannot read the database\'s properties (encoding, locale, owner, ACL, settings); the manifest goes without them');
        return undefined;
      });
  const bin = await chooseBinary(o.globals ? 'pg_dumpall' : 'pg_dump', server.major, server.version, ctx.env);
  const dbName = o.globals ? GLOBALS_DB : o.database;
  const chain: Chain = { gzip: o.level > 0, age: o.encryption !== null };

  // A second backup in the same second gets "-2", "-3", ...: never overwrite one.
  let seq = 1;
  let key = backupKey('', dbName, start, chain);
  const nextKey = () => backupKey('', dbName, start, chain, ++seq);
  const targets: BackupTarget[] = [{ storage: o.storage, keyPrefix: o.keyPrefix }, ...(o.also ?? [])];
  const taken = async (k: string) => {
    for (const t of targets) if ((await t.storage.head(k, ctx.signal)) || (await t.storage.head(manifestKey(k), ctx.signal))) return true;
    return false;
  };
  while (await taken(key)) key = nextKey();
  // Safety and partial backups never take a tier's slot; tagged daily, lifecycle expires them early.
  // Each target has its own history, so its own tier.
  const full = o.kind !== 'safety' && filterOptions(o.dumpOptions).length === 0;
  const tiers: Tier[] = [];
  for (const t of targets) tiers.push(o.tier !== 'auto' ? o.tier : full ? await pickTier(t.storage, dbName, start, ctx.signal, (m) => log.warn({ target: t.storage.description }, m)) : 'daily');
  const tier = tiers[0]!;
  // Folders: what killed backups of this database left (hidden .partial files) goes after a day.
  for (const { storage } of targets) {
    if (!storage.removeStalePartials) continue;
    await storage.removeStalePartials(dbPrefix('', dbName), STALE_PARTIAL_MS, ctx.signal).then(
      (gone) => gone.length && log.info({ removed: gone }, `removed ${gone.length} partial file(s) left by interrupted backups over a day ago`),
      (e) => {
        if (ctx.signal.aborted) throw e;
        log.warn({ err: messageOf(e) }, 'could not remove old partial files');
      },
    );
  }

  // No --clean: its drop section cannot run into an empty database (ALTER DOMAIN ... DROP
  // CONSTRAINT has no IF EXISTS; view placeholders need their schema), and the restore's own
  // clean runs inside its transaction anyway. Globals go without it too: dropping every role
  // (the restoring one included) cannot work on a live cluster.
  const args = o.globals ? ['--globals-only', '--no-password'] : ['--format=plain', '--no-password', ...o.dumpOptions];
  const env = childEnv(conn, ctx.env);
  const secrets = [conn.password?.reveal()];
  log.info(
    { database: dbName, key, server: server.version, pgDump: `${bin.version} (${bin.path})`, tier, ...(targets.length > 1 ? { targets: targets.map((t) => t.storage.description) } : {}) },
    'backup started',
  );

  const ac = new AbortController();
  const onRoot = () => ac.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onRoot, { once: true });
  // An interrupt that came during the checks above would never fire the listener.
  if (ctx.signal.aborted) onRoot();
  const signal = ac.signal;

  const { maxParts, maxPart } = partLimits(ctx.env);
  const plan = planParts(server.sizeBytes, o.partSize, maxParts, maxPart);
  // Everything that can fail is settled before pg_dump starts.
  const ageHeader = o.encryption
    ? await makeHeader({ recipients: o.encryption.recipients, passphrase: o.encryption.passphrase?.reveal(), scryptLogN: o.encryption.scryptLogN })
    : null;
  const dump = startDump({
    bin: bin.path,
    args,
    env,
    signal,
    secrets,
    stallMs: o.stallMs,
    onStderr: (l) => log.warn({ pgDump: l }, 'pg_dump says'),
  });
  const scan = new DumpReader({ requireComplete: true });
  const stages: Array<Readable | Transform | Writable> = [dump.stream, scan];
  if (chain.gzip) stages.push(new ParallelGzip({ level: o.level }));
  if (ageHeader) stages.push(new AgeEncryptStream(ageHeader.header, ageHeader.fileKey));
  const recipients = o.encryption?.recipients ?? [];
  const measure = new Measure(
    targets.some((t) => t.storage.kind === 's3')
      ? {
          bytes: plan.capacity,
          error: () =>
            new StorageError(
              'PLAN_EXCEEDED',
              `the backup outgrew its upload plan (${plan.maxParts} parts of ${formatBytes(plan.partSize)} = ${formatBytes(plan.capacity)}); ` +
                `set a larger --part-size`,
            ),
        }
      : undefined,
  );
  stages.push(measure);

  // Progress in SQL bytes dumped against the database's size on disk (pg_database_size): the
  // dump is usually smaller (no index data), sometimes larger (text for binary types); once it
  // outgrows the estimate, the estimate follows it.
  const stopProgress = ctx.progress?.(o.kind === 'safety' ? 'safety' : 'backup', () => ({
    done: scan.bytes,
    total: Math.max(server.sizeBytes, scan.bytes / 0.95),
    extra: { stored: measure.bytes },
  }));

  const errors: unknown[] = [];
  let chainFailed = false;
  // One target: the chain's end is its body. Several: a tee feeds each at the slowest one's pace.
  const tee = targets.length > 1 ? new Tee(targets.length) : null;
  if (tee) stages.push(tee);
  const chainDone = pipeline(stages, { signal }).catch((e) => {
    chainFailed = true;
    errors.push(e);
    ac.abort(e);
  });
  const targetErrors: unknown[] = targets.map(() => undefined);
  const uploads = targets.map(async (t, i) => {
    // Each target aborts alone: the chain and the other targets go on without it.
    const tac = new AbortController();
    const onChain = () => tac.abort(signal.reason);
    signal.addEventListener('abort', onChain, { once: true });
    if (signal.aborted) onChain();
    try {
      return await t.storage.putStream(key, tee ? tee.branches[i]! : measure, {
        signal: tac.signal,
        contentType: chain.age ? 'application/octet-stream' : chain.gzip ? 'application/gzip' : 'application/sql',
        metadata: { 'pgbackup-format': '1', database: encodeURIComponent(dbName), 'server-version': server.version },
        tags: { tier: tiers[i]! },
        partSize: plan.partSize,
        queueSize: o.queueSize,
        warn: (msg, err) => log.warn({ target: t.storage.description, err: err ? messageOf(err) : undefined }, msg),
        // With several targets the key must be the same everywhere: a taken key fails that target.
        nextKey: tee ? undefined : nextKey,
      });
    } catch (e) {
      if (!tee) {
        errors.push(e);
        ac.abort(e);
        return null;
      }
      targetErrors[i] = e;
      tee.drop(i);
      tac.abort(e);
      // A failing chain destroys every branch too: let its own error land first.
      await new Promise((r) => setImmediate(r));
      if (!signal.aborted && !chainFailed) {
        log.error({ target: t.storage.description, err: messageOf(e) }, 'this target failed: its upload was aborted; the other targets go on');
        // Nobody left to write to: stop pg_dump.
        if (targetErrors.every((x) => x !== undefined)) ac.abort(e);
      }
      return null;
    } finally {
      signal.removeEventListener('abort', onChain);
    }
  });
  const [, puts] = await Promise.all([chainDone, Promise.all(uploads)]);
  stopProgress?.();
  ctx.signal.removeEventListener('abort', onRoot);
  if (ctx.signal.aborted) throw ctx.signal.reason;
  if (chainFailed || errors.length) throw firstError(errors);
  if (puts.every((p) => p === null)) throw firstError(targetErrors.filter((e) => e !== undefined));
  if (puts[0] && puts[0].key !== key) {
    log.warn({ wanted: key, stored: puts[0].key }, 'another backup took the key at the same moment; stored under the next one');
    key = puts[0].key;
  }

  const finished = new Date();
  const stored: Array<{ target: string; key: string }> = [];
  let manifest: ReturnType<typeof buildManifest> | undefined;
  for (const [i, t] of targets.entries()) {
    if (!puts[i]) continue;
    try {
      // The stored object must be exactly what we sent before it counts.
      const head = await t.storage.head(key, ctx.signal);
      if (!head || head.size !== measure.bytes) {
        throw new StorageError('SIZE_MISMATCH', `stored object ${key} has ${head ? head.size : 'no'} bytes, but ${measure.bytes} were sent`);
      }
      const m = buildManifest({
        database: dbName,
        key: t.keyPrefix + key,
        createdAt: isoSeconds(start),
        finishedAt: isoSeconds(finished),
        durationMs: finished.getTime() - t0,
        toolVersion: toolVersion(),
        serverVersion: server.version,
        pgDumpVersion: bin.version,
        pgDumpOptions: args,
        level: o.level,
        recipients,
        passphrase: Boolean(o.encryption?.passphrase),
        encrypted: chain.age,
        sqlBytes: scan.bytes,
        storedBytes: measure.bytes,
        sha256: measure.digest(),
        tier: tiers[i]!,
        tables: scan.tables,
        reason: o.reason,
        databaseProperties: dbProps,
        kind: o.kind,
        safetyFor: o.safetyFor,
      });
      await t.storage.putBytes(manifestKey(key), Buffer.from(JSON.stringify(m, null, 2) + '\n'), {
        signal: ctx.signal,
        contentType: 'application/json',
        ifAbsent: true,
        tags: { tier: tiers[i]! }, // the manifest expires with its dump
      });
      manifest ??= m;
      stored.push({ target: t.storage.description, key: t.keyPrefix + key });
    } catch (e) {
      if (ctx.signal.aborted || !tee) throw e;
      targetErrors[i] = e;
      log.error({ target: t.storage.description, err: messageOf(e) }, 'this target failed after its upload: the backup there is incomplete (no manifest)');
    }
  }
  if (!manifest) throw firstError(targetErrors.filter((e) => e !== undefined));
  // As the manifest records it: from the start to the stored, checked dump.
  const durationMs = finished.getTime() - t0;
  log.info(
    {
      database: dbName,
      key: stored.length === 1 ? stored[0]!.key : key,
      tier,
      ...(targets.length > 1 ? { targets: stored.map((x) => x.target) } : {}),
      sql: formatBytes(scan.bytes),
      stored: formatBytes(measure.bytes),
      duration: formatDuration(durationMs),
      throughput: `${formatBytes((scan.bytes / Math.max(1, durationMs)) * 1000)}/s`,
      tables: scan.tables.length,
      ...(o.defaultFolder ? { folder: o.defaultFolder } : {}),
    },
    o.defaultFolder
      ? `backup complete, stored in the default folder ${o.defaultFolder} (no --to or PGBACKUP_TARGET given)`
      : stored.length < targets.length
        ? `backup stored in ${stored.length} of ${targets.length} targets`
        : 'backup complete',
  );
  const failedTargets = targets.flatMap((t, i) => (targetErrors[i] === undefined ? [] : [{ target: t.storage.description, error: targetErrors[i] }]));
  return { key, manifestKey: manifestKey(key), database: dbName, tier, sqlBytes: scan.bytes, storedBytes: measure.bytes, durationMs, sha256: manifest.sha256, stored, failedTargets };
}

export async function loadEncryption(cfg: Pick<BackupConfig, 'noEncryption' | 'recipients' | 'recipientsFile' | 'passphraseFile' | 'scryptLogN'>): Promise<Encryption | null> {
  if (cfg.noEncryption) return null;
  const recipients = [...cfg.recipients];
  if (cfg.recipientsFile) {
    const fromFile = await readRecipientsFile(cfg.recipientsFile);
    if (fromFile.length === 0) throw new UsageError(`recipients file ${cfg.recipientsFile}: holds no recipient`);
    recipients.push(...fromFile);
    const probs = recipientProblems(recipients, (i) => (i < cfg.recipients.length ? `recipient #${i + 1}` : `recipients file ${cfg.recipientsFile} entry #${i + 1 - cfg.recipients.length}`));
    if (probs.length) throw new UsageError(probs);
  }
  const passphrase = cfg.passphraseFile ? await readPassphrase(cfg.passphraseFile) : undefined;
  return { recipients: passphrase ? [] : recipients, passphrase, scryptLogN: cfg.scryptLogN };
}

/** Recipients for a safety backup when only identities are at hand. */
export async function encryptionForIdentities(ids: Secret<string[]>, passphrase: Secret | undefined): Promise<Encryption> {
  if (passphrase) return { recipients: [], passphrase, scryptLogN: DEFAULT_SCRYPT_LOG_N };
  const recipients: string[] = [];
  for (const id of ids.reveal()) recipients.push(await recipientOf(id));
  const kinds = new Set(recipients.map((r) => (r.startsWith('age1pq1') ? 'pq' : 'c')));
  return { recipients: kinds.size > 1 ? recipients.filter((r) => r.startsWith('age1pq1')) : recipients, scryptLogN: DEFAULT_SCRYPT_LOG_N };
}

/** `backup`: every database the configuration names, with timeouts and notifications. */
export async function backup(ctx: Context, cfg: Readonly<BackupConfig>): Promise<void> {
  const encryption = await loadEncryption(cfg);
  if (!encryption) ctx.log.warn('--no-encryption: this backup is stored unencrypted');
  const [first, ...more] = cfg.targets.map((t) => ({ storage: openStorage(t), keyPrefix: t.kind === 's3' ? t.prefix : '' }));
  const defaultFolder = cfg.targetIsDefault && cfg.target.kind === 'folder' ? resolvePath(cfg.target.path) : undefined;

  const timeoutAc = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const signals = [ctx.signal];
  if (cfg.timeoutMs) {
    timer = setTimeout(() => timeoutAc.abort(new DumpError('TIMEOUT', `the backup did not finish within --timeout ${formatDuration(cfg.timeoutMs!)}; nothing was stored`)), cfg.timeoutMs);
    signals.push(timeoutAc.signal);
  }
  const runCtx: Context = { ...ctx, signal: AbortSignal.any(signals) };

  // --prometheus: successes and failures per database and target, written when the run ends.
  const metrics = new MetricsRun(cfg.prometheus, 'backup');
  const labels = cfg.targets.map(targetLabel);
  const descriptions = [first!, ...more].map((t) => t.storage.description);
  const labelOf = (description: string) => labels[descriptions.indexOf(description)] ?? description;
  let attempted = false;

  const started = Date.now();
  await notify(ctx, cfg.healthcheckUrl, cfg.webhookUrl, { status: 'start' });
  const results: BackupResult[] = [];
  let failure: { error: unknown } | null = null;
  try {
    let databases: string[];
    if (cfg.allDatabases) {
      const all = await listDatabases(cfg.source, runCtx.signal).catch(dbFail);
      // A parallel restore's staging databases are partial copies it is still loading (or one an
      // interrupted restore left); they vanish when it ends. Not backed up: named, then skipped.
      const staging = all.filter((d) => d.startsWith(STAGING_PREFIX));
      if (staging.length) {
        ctx.log.info({ databases: staging }, `skipped ${staging.length} staging database(s) of parallel restores (${STAGING_PREFIX}*, transient partial copies): ${staging.join(', ')}`);
      }
      databases = all.filter((d) => !d.startsWith(STAGING_PREFIX));
    } else {
      const db = cfg.source.database ?? cfg.source.user ?? ctx.env.USER;
      if (!db) throw new UsageError('--database: names no database (postgres://.../DBNAME, DATABASE_URL or PGDATABASE)');
      databases = [db];
    }
    const jobs: Array<{ database: string; globals: boolean }> = databases.map((d) => ({ database: d, globals: false }));
    if (cfg.globals) jobs.push({ database: GLOBALS_DB, globals: true });
    for (const job of jobs) {
      attempted = true;
      try {
        const r = await runOneBackup(runCtx, {
          ...first!,
          also: more,
          conn: cfg.source,
          database: job.database,
          globals: job.globals,
          encryption,
          level: cfg.compressLevel,
          tier: cfg.tier,
          dumpOptions: cfg.dumpOptions,
          partSize: cfg.partSize,
          queueSize: cfg.queueSize,
          stallMs: cfg.stallMs,
          defaultFolder,
        });
        results.push(r);
        for (const x of r.stored) metrics.backup(r.database, labelOf(x.target), { at: new Date(), sizeBytes: r.storedBytes, durationMs: r.durationMs });
        for (const f of r.failedTargets) metrics.failure(r.database, labelOf(f.target));
        for (const k of new Set(r.stored.map((x) => x.key))) ctx.out(k + '\n');
        if (r.failedTargets.length) {
          // The backup is in the other targets, complete; the run still fails (exit 4), naming where it is missing.
          const names = r.failedTargets.map((f) => `${f.target} (${messageOf(f.error)})`).join('; ');
          throw new StorageError(
            'TARGET_FAILED',
            `backup of ${r.database} failed in ${r.failedTargets.length} of ${r.stored.length + r.failedTargets.length} targets: ${names}; ` +
              `it is complete in ${r.stored.map((x) => x.target).join(', ')}`,
          );
        }
      } catch (e) {
        if (!results.some((x) => x.database === job.database)) for (const l of labels) metrics.failure(job.database, l);
        if (timeoutAc.signal.aborted && !ctx.signal.aborted) throw timeoutAc.signal.reason;
        if (ctx.signal.aborted || jobs.length === 1) throw e;
        // --all-databases: a database dropped between the listing and its turn (SQLSTATE 3D000)
        // holds nothing to back up any more; say so and go on, the run does not fail for it.
        if (cfg.allDatabases && !job.globals && droppedMeanwhile(e)) {
          ctx.log.warn({ database: job.database }, 'skipped: the database was dropped after the list of databases was taken');
          continue;
        }
        // With several databases, one failure does not stop the others; the run still fails.
        ctx.log.error({ database: job.database, err: messageOf(e) }, 'backup failed');
        failure ??= { error: e };
      }
    }
    if (failure) throw failure.error;
  } catch (e) {
    clearTimeout(timer);
    const err = timeoutAc.signal.aborted && !ctx.signal.aborted ? timeoutAc.signal.reason : e;
    // A failure before any database was tried (listing the databases, a recipients file): "*" for --all-databases.
    if (!attempted) for (const l of labels) metrics.failure(cfg.allDatabases ? '*' : (cfg.source.database ?? cfg.source.user ?? ''), l);
    await metrics.write(ctx);
    await notify(ctx, cfg.healthcheckUrl, cfg.webhookUrl, {
      status: 'fail',
      database: results.map((r) => r.database).join(','),
      error: err instanceof PgBackupError ? err.message : messageOf(err),
      durationMs: Date.now() - started,
      backups: results,
    });
    throw err;
  }
  clearTimeout(timer);
  await metrics.write(ctx);
  await notify(ctx, cfg.healthcheckUrl, cfg.webhookUrl, { status: 'success', durationMs: Date.now() - started, backups: results });
}

/** A DbError "database does not exist" (SQLSTATE 3D000) anywhere in the cause chain. */
function droppedMeanwhile(e: unknown): boolean {
  return anyCause(e, (x) => x instanceof DbError && x.pgCode === '3D000');
}
