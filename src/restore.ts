/** `pgbackup restore`: a stored backup -> age -> gunzip -> psql, in one transaction, safely. */
import { pipeline } from 'node:stream/promises';
import { createInterface } from 'node:readline/promises';
import type { Parsed } from './cli.js';
import { restoreConfig, type RestoreConfig } from './config.js';
import { type Context, humanBytes, humanDuration } from './context.js';
import { childEnv, withDatabase, type ConnInfo } from './conn.js';
import { cleanStatements, countRows, createDatabase, DbError, serverInfo, userTables, type ServerInfo } from './db.js';
import { CryptoError, RestoreError, StorageError, UsageError, VerifyError, firstError, isPgBackupError, messageOf } from './errors.js';
import { findBinaries, pickBinary, psqlKnowsRestrict, type PgBinary } from './pgbin.js';
import { PsqlSink } from './pipeline/psql.js';
import { SqlScan, type LineFilter, type TableCount } from './pipeline/sqlscan.js';
import { isZlibError } from './pipeline/compress.js';
import { locate, openBackup, readManifest, type Located } from './reader.js';
import { openStorage, type Storage, type Target } from './storage/index.js';
import { readIdentities, readPassphrase } from './secretfiles.js';
import { Secret } from './secret.js';
import { dbPrefix, parseKey, GLOBALS_DB } from './keys.js';
import { listBackups, selectBackup } from './catalog.js';
import { encryptionForIdentities, runOneBackup } from './backup.js';
import { manifestKind, rowCountDifferences, type Manifest } from './manifest.js';
import { DEFAULT_QUEUE } from './plan.js';

export interface LoadedSecrets {
  identities: Secret<string[]>;
  passphrase: Secret | undefined;
}

export async function loadSecrets(cfg: { identityFiles: string[]; passphraseFile: string | undefined }): Promise<LoadedSecrets> {
  const identities = cfg.identityFiles.length ? await readIdentities(cfg.identityFiles) : new Secret<string[]>([]);
  const passphrase = cfg.passphraseFile ? await readPassphrase(cfg.passphraseFile) : undefined;
  return { identities, passphrase };
}

export function decryptSecrets(s: LoadedSecrets) {
  return { identities: s.identities.reveal(), passphrases: s.passphrase ? [s.passphrase.reveal()] : [] };
}

/**
 * The newest complete full backup of `database` (at or before `at`); any kind with `anyKind`.
 * Manifests are read newest first; unreadable ones and backups dated in the future are
 * skipped with a warning.
 */
export async function resolveLatest(ctx: Context, target: Target, database: string, at?: Date, anyKind = false): Promise<string> {
  const storage = openStorage(target);
  const all = await listBackups(storage, dbPrefix('', database), ctx.signal, database);
  const { pick, skipped } = await selectBackup(storage, all, { at, anyKind, signal: ctx.signal, warn: (m) => ctx.log.warn(m) });
  if (!pick) {
    const incomplete = all.filter((b) => !b.complete && (!at || b.time.getTime() <= at.getTime())).length;
    if (incomplete) skipped.push(`${incomplete} incomplete backup(s)`);
    throw new StorageError(
      'NOT_FOUND',
      `no complete backup${anyKind ? '' : ' (full)'} of database "${database}"${at ? ` at or before ${at.toISOString()}` : ''} in ${storage.description}` +
        (skipped.length ? `; skipped: ${skipped.join(', ')}` : ''),
    );
  }
  if (manifestKind(pick.manifest) !== 'full') ctx.log.warn({ key: pick.entry.key, kind: manifestKind(pick.manifest) }, `--any-kind: chose a ${manifestKind(pick.manifest)} backup`);
  return pick.entry.key;
}

/** Errors of gunzip and of the stream plumbing mean damaged data (exit 5). */
export function classifyReadError(e: unknown): unknown {
  if (isPgBackupError(e)) return e;
  if (isZlibError(e) || /invalid/i.test(messageOf(e))) {
    return new CryptoError('CORRUPT', `the backup's data is truncated or damaged (${messageOf(e)})`, { cause: e });
  }
  return e;
}

const CREATE_ROLE = /^CREATE ROLE ("(?:[^"]|"")*"|[^\s;]+);$/;

export function compatFilter(server: ServerInfo, psql: PgBinary, noOwner: boolean, log: Context['log'], globals = false): LineFilter | undefined {
  const dropTimeout = server.major < 17;
  const dropRestrict = !psqlKnowsRestrict(psql);
  if (!dropTimeout && !dropRestrict && !noOwner && !globals) return undefined;
  let noted = false;
  return (line) => {
    if (globals) {
      // Roles that exist already stay (their attributes are set by the ALTER ROLE that follows).
      const m = CREATE_ROLE.exec(line);
      if (m) return `DO $pgbackup$ BEGIN CREATE ROLE ${m[1]}; EXCEPTION WHEN duplicate_object THEN NULL; END $pgbackup$;`;
      if (line.startsWith('DROP ROLE ')) return null;
    }
    if (dropTimeout && line.startsWith('SET transaction_timeout')) {
      if (!noted) log.info(`dropping "SET transaction_timeout" (server ${server.version} predates it)`);
      noted = true;
      return null;
    }
    if (dropRestrict && (line.startsWith('\\restrict ') || line.startsWith('\\unrestrict '))) return null;
    if (noOwner && /^ALTER [A-Z ]+ .* OWNER TO .*;$/.test(line)) return null;
    return line;
  };
}

export async function choosePsql(server: ServerInfo, env: NodeJS.ProcessEnv, log: Context['log']): Promise<PgBinary> {
  const found = await findBinaries('psql', env);
  const pick = pickBinary(found, server.major) ?? found.sort((a, b) => b.major - a.major)[0];
  if (!pick) throw new RestoreError('NO_PSQL', 'no psql found: install the PostgreSQL client or set PGBACKUP_PG_BINDIR');
  if (pick.major < server.major) log.warn({ psql: pick.version, server: server.version }, 'no psql as new as the server; using an older one');
  return pick;
}

function quietNotices(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, PGOPTIONS: `${env.PGOPTIONS ? env.PGOPTIONS + ' ' : ''}-c client_min_messages=warning` };
}

export interface LoadResult {
  tables: TableCount[];
  sqlBytes: number;
  storedBytes: number;
  sha256: string;
  complete: boolean;
  durationMs: number;
}

/** Stream an opened backup into psql against `dest`. Nothing is committed unless all of it arrived. */
export async function loadInto(
  ctx: Context,
  located: Located,
  secrets: LoadedSecrets,
  dest: ConnInfo,
  opts: { preamble?: string[]; noOwner?: boolean; globals?: boolean; opened?: Awaited<ReturnType<typeof openBackup>> },
): Promise<LoadResult> {
  const t0 = Date.now();
  const server = await serverInfo(dest, ctx.signal).catch((e) => {
    if (e instanceof DbError) throw new RestoreError('CONNECT', e.message, { cause: e });
    throw e;
  });
  const psql = await choosePsql(server, ctx.env, ctx.log);
  const opened = opts.opened ?? (await openBackup(ctx, located, decryptSecrets(secrets)));
  const scan = new SqlScan(compatFilter(server, psql, Boolean(opts.noOwner), ctx.log, Boolean(opts.globals)));
  const sink = new PsqlSink({
    bin: psql.path,
    env: quietNotices(childEnv(dest, ctx.env)),
    secrets: [dest.password?.reveal()],
    onStderr: (l) => ctx.log.warn({ psql: l }, 'psql says'),
  });
  if (opts.preamble?.length) sink.write(opts.preamble.join('\n') + '\n');
  try {
    await pipeline([...opened.stages, scan, sink], { signal: ctx.signal });
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    throw firstError([classifyReadError(e)]);
  }
  return { tables: scan.tables, sqlBytes: scan.bytes, storedBytes: opened.measure.bytes, sha256: opened.measure.digest(), complete: scan.complete, durationMs: Date.now() - t0 };
}

/** Row counts in `dest` against what the dump held; differences as readable lines. */
export async function compareCounts(ctx: Context, dest: ConnInfo, expected: Array<{ schema: string; name: string; rows: number }>): Promise<string[]> {
  const actual = await countRows(dest, expected, ctx.signal);
  const out: string[] = [];
  for (const t of expected) {
    const got = actual.get(`${t.schema}.${t.name}`);
    if (got === null || got === undefined) out.push(`${t.schema}.${t.name}: table missing after restore (expected ${t.rows} rows)`);
    else if (got !== t.rows) out.push(`${t.schema}.${t.name}: ${got} rows, expected ${t.rows}`);
  }
  return out;
}

async function confirm(ctx: Context, question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const a = await rl.question(question);
    return /^y(es)?$/i.test(a.trim());
  } finally {
    rl.close();
  }
}

async function prepareTarget(ctx: Context, cfg: RestoreConfig): Promise<{ hasTables: boolean; created: boolean }> {
  const name = cfg.dest.database!;
  try {
    const tables = await userTables(cfg.dest, ctx.signal);
    if (tables.length && !cfg.clean) {
      throw new UsageError(`target database "${name}" already has ${tables.length} table(s): give --clean to replace its contents (a safety backup is taken first)`);
    }
    return { hasTables: tables.length > 0, created: false };
  } catch (e) {
    if (!(e instanceof DbError)) throw e;
    if (e.pgCode !== '3D000') throw new RestoreError('CONNECT', e.message, { cause: e });
    if (!cfg.create) throw new UsageError(`target database "${name}" does not exist: give --create to create it`);
    const maint = withDatabase(cfg.dest, 'postgres');
    await createDatabase(maint, name, ctx.signal).catch((err) => {
      throw new RestoreError('CREATE', `cannot create database "${name}": ${messageOf(err)}`, { cause: err });
    });
    ctx.log.info({ database: name }, 'created the target database');
    return { hasTables: false, created: true };
  }
}

export async function restoreCommand(ctx: Context, parsed: Parsed): Promise<number> {
  const cfg = restoreConfig(parsed, ctx.env);
  const secrets = await loadSecrets(cfg);
  const database = cfg.database ?? cfg.dest.database!;
  const ref = cfg.key ?? (await resolveLatest(ctx, cfg.target, database, cfg.at, cfg.anyKind));
  const located = await locate(ctx, cfg.target, ref);
  const { manifest, problem } = await readManifest(ctx, located.storage, located.key).catch(() => ({ manifest: null as Manifest | null, problem: 'unreadable' }));
  if (!manifest && cfg.key === undefined) throw new StorageError('INCOMPLETE', `${located.display}: ${problem}`);
  if (!manifest) ctx.log.warn({ key: located.display }, `restoring without a manifest: ${problem}; row counts are checked against the dump itself`);

  // The age header is checked before the target is touched.
  const opened = await openBackup(ctx, located, decryptSecrets(secrets));

  if (cfg.clean && !cfg.yes) {
    if (!process.stdin.isTTY || !process.stderr.isTTY) throw new UsageError('--clean replaces the target\'s contents: confirm with --yes when not on a terminal');
  }
  // Cluster globals (roles) are not a database's contents: no table check, no safety backup.
  const globals = (manifest?.database ?? parseKey(located.key)?.database) === GLOBALS_DB;
  const state = globals ? { hasTables: false, created: false } : await prepareTarget(ctx, cfg);
  const kind = manifest ? manifestKind(manifest) : 'full';
  if (state.hasTables && kind === 'partial') {
    throw new UsageError(
      `${located.display} is a partial backup (${(manifest?.filters ?? []).join(' ') || 'made with pg_dump filters'}): ` +
        `--clean would drop everything else in "${cfg.dest.database}". Nothing was changed. ` +
        'Restore it into a new database (--to .../NEWDB --create) and copy what you need from there.',
    );
  }
  if (state.hasTables && cfg.clean && !cfg.yes) {
    if (!(await confirm(ctx, `Replace the contents of database "${cfg.dest.database}" with ${located.display}? [y/N] `))) {
      throw new UsageError('not confirmed; nothing was changed');
    }
  }
  let safetyKey: string | undefined;
  let preamble: string[] = [];
  if (state.hasTables) {
    if (cfg.safetyBackup) {
      const storage: Storage = openStorage(cfg.target);
      const encryption =
        secrets.identities.reveal().length || secrets.passphrase
          ? await encryptionForIdentities(secrets.identities, secrets.passphrase)
          : cfg.recipients.length
            ? { recipients: cfg.recipients, scryptLogN: 18 }
            : null;
      if (!encryption) throw new UsageError('safety backup: no key to encrypt it with; give --identity or --passphrase-file (or PGBACKUP_RECIPIENTS), or --no-safety-backup');
      ctx.log.info({ database: cfg.dest.database }, 'taking a safety backup of the target before replacing it');
      const r = await runOneBackup(ctx, {
        storage,
        keyPrefix: cfg.target.kind === 's3' ? cfg.target.prefix : '',
        conn: cfg.dest,
        database: cfg.dest.database!,
        encryption,
        level: 6,
        tier: 'daily',
        dumpOptions: [],
        queueSize: DEFAULT_QUEUE,
        reason: `safety backup before restoring ${located.display}`,
        kind: 'safety',
        safetyFor: { restoring: located.display, database: cfg.dest.database!, host: cfg.dest.host ?? 'localhost', ...(cfg.dest.port ? { port: cfg.dest.port } : {}) },
      }).catch((e) => {
        throw isPgBackupError(e) && e.exitCode !== 2 ? new RestoreError('SAFETY_BACKUP', `the safety backup of the target failed, so nothing was restored: ${e.message}`, { cause: e }) : e;
      });
      safetyKey = r.key;
      ctx.log.info({ safetyBackup: safetyKey }, 'safety backup stored');
      process.stderr.write(`safety backup: ${storage.kind === 'folder' ? `${storage.description}/` : storage.description}${r.key}\n`);
    }
    preamble = await cleanStatements(cfg.dest, ctx.signal);
  }

  const res = await loadInto(ctx, located, secrets, cfg.dest, { preamble, noOwner: cfg.noOwner, globals, opened });
  if (manifest && manifest.sha256 !== res.sha256) {
    // Every age chunk was authenticated, so this means the manifest and object disagree.
    throw new VerifyError('CHECKSUM', `restored, but the object's sha256 ${res.sha256} differs from its manifest's ${manifest.sha256}`);
  }
  const expected = manifest ? manifest.tables : res.tables;
  const diffs = await compareCounts(ctx, cfg.dest, expected);
  if (manifest) {
    diffs.push(...rowCountDifferences(manifest, res.tables).differ);
  }
  const total = expected.reduce((s, t) => s + t.rows, 0);
  const summary = {
    restored: located.display,
    into: cfg.dest.database,
    tables: expected.length,
    rows: total,
    sql: humanBytes(res.sqlBytes),
    duration: humanDuration(res.durationMs),
    safetyBackup: safetyKey,
    mismatches: diffs.length,
  };
  if (cfg.json) ctx.out(JSON.stringify({ ...summary, differences: diffs }) + '\n');
  else ctx.out(`restored ${located.display} into "${cfg.dest.database}": ${expected.length} tables, ${total} rows, ${humanBytes(res.sqlBytes)} of SQL in ${humanDuration(res.durationMs)}${diffs.length ? `; ${diffs.length} row-count mismatch(es)` : '; row counts match'}\n`);
  if (diffs.length) throw new VerifyError('ROW_COUNTS', `row counts after restore differ:\n  ${diffs.join('\n  ')}`);
  ctx.log.info(summary, 'restore complete');
  return 0;
}
