/** `pgbackup restore`: a stored backup -> age -> gunzip -> psql, in one transaction, safely. */
import { pipeline } from 'node:stream/promises';
import { createInterface } from 'node:readline/promises';
import type { RestoreConfig } from '../config/config.js';
import type { Context } from '../support/context.js';
import { formatBytes, formatDuration } from '../support/units.js';
import { childEnv, withDatabase, type ConnInfo } from '../pg/conn.js';
import { cleanStatements, countRows, DbError, openAhead, serverInfo, userTablesAndServer, type Ahead, type ServerVersion, databaseProperties } from '../pg/db.js';
import { DumpError, RestoreError, StorageError, UsageError, VerifyError, classifyData, firstError, isPgBackupError } from '../support/errors.js';
import { findBinaries, pickBinary, psqlKnowsRestrict, type PgBinary } from '../pg/binaries.js';
import { PsqlSink } from '../pipeline/psql.js';
import { DumpReader, type Rewrite, type TableCount } from '../pipeline/dumpreader.js';
import { locate, openBackup, readManifest, type Located } from './open.js';
import { openStorage, type Storage, type Target } from '../storage/index.js';
import { DEFAULT_SCRYPT_LOG_N } from '../crypto/age.js';
import { DEFAULT_LEVEL } from '../pipeline/compress.js';
import { readIdentities, readPassphrase } from '../crypto/secretfiles.js';
import { Secret } from '../support/secret.js';
import { dbPrefix, parseKey, GLOBALS_DB } from '../model/keys.js';
import { listBackups, selectBackup } from './catalog.js';
import { encryptionForIdentities, runOneBackup } from './backup.js';
import { expectOf, manifestKind, rowCountDifferences, storedMismatch, type Manifest, type StoredExpect } from '../model/manifest.js';
import { DEFAULT_QUEUE } from '../model/plan.js';
import { createStaging, loadParallel, lookForStaleStagings, swapIn, warnStaleStagings } from './restore-parallel.js';
import { formatEntries, listEntries } from './restore-list.js';
import { InterruptedError } from '../support/errors.js';
import { checkLockCapacity, describeSession, lockTimeoutError, namingLockHolders, targetFacts, terminateOthers } from './safety.js';
import { createTargetDatabase, dropCreated, propertiesPostamble, type CreatedDb } from './restore-props.js';
import type { DatabaseProperties } from '../model/dbprops.js';
import { tableKey } from '../pg/db.js';
import { prepareTablespaces } from './tablespaces.js';
import { restoreSelective } from './restore-selective.js';
import { isSelective } from '../model/selection.js';

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

const CREATE_ROLE = /^CREATE ROLE ("(?:[^"]|"")*"|[^\s;]+);$/;
const OWNER_TO = /^ALTER [A-Z ]+ [\s\S]* OWNER TO [^;]+;$/;

/**
 * What the restore changes in a dump, statement by statement (never inside a literal, a body
 * or COPY data): settings the server predates, psql meta-commands this psql lacks, ownership
 * under --no-owner, and, for cluster globals, roles that may exist already.
 */
export function compatRewrite(server: ServerVersion, psql: PgBinary, noOwner: boolean, log: Context['log'], globals = false): Rewrite {
  const dropTimeout = server.major < 17;
  const dropRestrict = !psqlKnowsRestrict(psql);
  let noted = false;
  return (st) => {
    if (st.meta) {
      if (/^\\(c|connect)\s/.test(st.text)) {
        throw new RestoreError(
          'CONNECT_IN_DUMP',
          'the dump switches databases (\\connect): it was made by pg_dumpall or pg_dump --create, which one transaction cannot restore; restore one database\'s plain dump',
        );
      }
      if (dropRestrict && /^\\(un)?restrict\s/.test(st.text)) return null;
      return undefined;
    }
    if (globals) {
      // Roles that exist already stay (their attributes are set by the ALTER ROLE that follows).
      const m = CREATE_ROLE.exec(st.text);
      if (m) return `DO $pgbackup$ BEGIN CREATE ROLE ${m[1]}; EXCEPTION WHEN duplicate_object THEN NULL; END $pgbackup$;`;
      if (st.text.startsWith('DROP ROLE ')) return null;
    }
    if (dropTimeout && st.section !== 'body' && /^SET\s+transaction_timeout\s*=/i.test(st.text)) {
      if (!noted) log.info(`dropping "SET transaction_timeout" (server ${server.version} predates it)`);
      noted = true;
      return null;
    }
    if (noOwner && OWNER_TO.test(st.text)) return null;
    return undefined;
  };
}

export async function choosePsql(server: ServerVersion, env: NodeJS.ProcessEnv, log: Context['log']): Promise<PgBinary> {
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
  opts: {
    /** Statements sent before the dump, inside its transaction (the --clean drops, settings). */
    preamble?: string[];
    /**
     * Statements sent after the dump, inside its transaction (database properties). A promise is
     * awaited before psql's end of input (it is made while the dump loads); its failure stops the
     * load, nothing committed.
     */
    postamble?: string[] | Promise<string[]>;
    /** The server `dest` is on, when the caller has asked it already (else it is asked here). */
    server?: ServerVersion | undefined;
    noOwner?: boolean;
    globals?: boolean;
    opened?: Awaited<ReturnType<typeof openBackup>>;
    /** The manifest's stored size and sha256: psql gets its end of input only when both match. */
    expect?: StoredExpect | undefined;
    /** Extra rewrites, tried after the compatibility ones. */
    rewrite?: Rewrite | undefined;
    /** Called once the whole input arrived and checks out, before psql's end of input (countsAhead). */
    onInputEnd?: (() => void) | undefined;
  },
): Promise<LoadResult> {
  const t0 = Date.now();
  const postamble = started(Promise.resolve(opts.postamble ?? []));
  try {
    return await loadStream(ctx, located, secrets, dest, opts, postamble, t0);
  } catch (e) {
    // No connection of the postamble's outlives the failed load (the caller may drop the database).
    await postamble.catch(() => undefined);
    throw e;
  }
}

/** Sessions that count rows after a load (countRows). */
const COUNT_SESSIONS = 2;

/**
 * The connections compareCounts will use, opened when the load's input has ended (psql still
 * runs its last statements and commits meanwhile): `open` is for loadInto's onInputEnd; close()
 * them when the load fails.
 */
export function countsAhead(ctx: Context, dest: ConnInfo, tables: number | undefined): { open: () => void; ahead: () => Ahead | undefined; close: () => Promise<void> } {
  let ahead: Ahead | undefined;
  return {
    open: () => {
      ahead ??= openAhead(dest, ctx.signal, Math.max(1, Math.min(COUNT_SESSIONS, tables ?? COUNT_SESSIONS)));
    },
    ahead: () => ahead,
    // Awaited before a failed load's database is dropped: no session of ours may still be on it.
    close: async () => ahead?.close(),
  };
}

/** A promise whose rejection is handled later (awaited) but must not count as unhandled meanwhile. */
export function started<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

async function loadStream(
  ctx: Context,
  located: Located,
  secrets: LoadedSecrets,
  dest: ConnInfo,
  opts: Parameters<typeof loadInto>[4],
  postamble: Promise<string[]>,
  t0: number,
): Promise<LoadResult> {
  const server =
    opts.server ??
    (await serverInfo(dest, ctx.signal).catch((e) => {
      if (e instanceof DbError) throw new RestoreError('CONNECT', e.message, { cause: e });
      throw e;
    }));
  const psql = await choosePsql(server, ctx.env, ctx.log);
  const opened = opts.opened ?? (await openBackup(ctx, located, decryptSecrets(secrets), 'restore'));
  const compat = compatRewrite(server, psql, Boolean(opts.noOwner), ctx.log, Boolean(opts.globals));
  const extra = opts.rewrite;
  const scan = new DumpReader({
    rewrite: extra ? (st) => { const r = compat(st); return r !== undefined ? r : extra(st); } : compat,
    // Nothing incomplete commits: no end of input for psql without pg_dump's completion marker.
    requireComplete: true,
    // A `pg_dump --clean` file: its drops cannot run into an empty database; ours run in the transaction.
    skipClean: true,
    // pg_dump's BEGIN/COMMIT around large objects would commit the restore's transaction halfway.
    dropBlobTransaction: true,
  });
  const measure = opened.measure;
  const sink = new PsqlSink({
    bin: psql.path,
    env: quietNotices(childEnv(dest, ctx.env)),
    secrets: [dest.password?.reveal()],
    onStderr: (l) => ctx.log.warn({ psql: l }, 'psql says'),
    // Runs after every upstream stage has flushed (every age chunk authenticated, every gzip
    // member checked, the completion marker seen): the last chance to withhold the commit.
    beforeEnd: async () => {
      const statements = await postamble;
      // Our own statements are Unicode text: psql speaks UTF8 for them (the dump set its own encoding).
      if (statements.length) return ["SET client_encoding = 'UTF8';", ...statements].join('\n') + '\n';
      return undefined;
    },
    check: () => {
      if (opts.expect) {
        const bad = storedMismatch(opts.expect, measure.bytes, measure.digest());
        if (bad) throw new VerifyError(bad.code, `${bad.message}: nothing was restored`);
        // Rows as the dump held them, counted as they went by, against the manifest: before the commit.
        const cmp = rowCountDifferences({ tables: opts.expect.tables }, scan.tables);
        const differ = [...cmp.differ, ...cmp.extra];
        if (differ.length) throw new VerifyError('ROW_COUNTS', `the dump's row counts differ from its manifest's, so nothing was restored:\n  ${differ.join('\n  ')}`);
      }
      opts.onInputEnd?.();
    },
  });
  if (opts.preamble?.length) sink.write(["SET client_encoding = 'UTF8';", ...opts.preamble].join('\n') + '\n');
  // A postamble that cannot be made stops the load now rather than at its end.
  postamble.catch((e) => sink.destroy(e as Error));
  try {
    await pipeline([...opened.stages, scan, sink], { signal: ctx.signal });
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (e instanceof DumpError && e.code === 'INCOMPLETE_DUMP') {
      throw new VerifyError('INCOMPLETE', `${located.display} does not end with pg_dump's completion marker: it is cut short (or not a pg_dump file); nothing was restored`, { cause: e });
    }
    throw firstError([classifyData(e)]);
  }
  if (scan.skippedClean) ctx.log.info({ statements: scan.skippedClean }, "skipped the dump's own --clean drop statements (the restore's clean runs inside its transaction)");
  return { tables: scan.tables, sqlBytes: scan.bytes, storedBytes: opened.measure.bytes, sha256: opened.measure.digest(), complete: scan.complete, durationMs: Date.now() - t0 };
}

/**
 * Row counts in `dest` against what the dump held; differences as readable lines. `ahead`:
 * connections opened while the load finished (countsAhead), used when still open, then closed.
 */
export async function compareCounts(ctx: Context, dest: ConnInfo, expected: Array<{ schema: string; name: string; rows: number }>, ahead?: Ahead): Promise<string[]> {
  let actual: Map<string, number | null>;
  try {
    actual = await countRows(dest, expected, ctx.signal, COUNT_SESSIONS, ahead);
  } finally {
    await ahead?.close();
  }
  const out: string[] = [];
  for (const t of expected) {
    const got = actual.get(tableKey(t.schema, t.name));
    if (got === null || got === undefined) out.push(`${t.schema}.${t.name}: table missing after restore (expected ${t.rows} rows)`);
    else if (got !== t.rows) out.push(`${t.schema}.${t.name}: ${got} rows, expected ${t.rows}`);
  }
  return out;
}

/** The safety backup of the target before a restore replaces (some of) its contents: its key. */
export async function takeSafetyBackup(ctx: Context, cfg: Readonly<RestoreConfig>, secrets: LoadedSecrets, located: Located): Promise<string> {
  const storage: Storage = openStorage(cfg.target);
  const encryption =
    secrets.identities.reveal().length || secrets.passphrase
      ? await encryptionForIdentities(secrets.identities, secrets.passphrase)
      : cfg.recipients.length
        ? { recipients: cfg.recipients, scryptLogN: DEFAULT_SCRYPT_LOG_N }
        : null;
  if (!encryption) throw new UsageError('safety backup: no key to encrypt it with; give --identity or --passphrase-file (or PGBACKUP_RECIPIENTS), or --no-safety-backup');
  ctx.log.info({ database: cfg.dest.database }, 'taking a safety backup of the target before replacing it');
  const r = await runOneBackup(ctx, {
    storage,
    keyPrefix: cfg.target.kind === 's3' ? cfg.target.prefix : '',
    conn: cfg.dest,
    database: cfg.dest.database!,
    encryption,
    level: DEFAULT_LEVEL,
    tier: 'daily',
    dumpOptions: [`--lock-wait-timeout=${cfg.lockTimeoutMs}`],
    queueSize: DEFAULT_QUEUE,
    reason: `safety backup before restoring ${located.display}`,
    kind: 'safety',
    safetyFor: { restoring: located.display, database: cfg.dest.database!, host: cfg.dest.host ?? 'localhost', ...(cfg.dest.port ? { port: cfg.dest.port } : {}) },
  }).catch(async (e) => {
    const locked = await lockTimeoutError(cfg.dest, e, cfg.lockTimeoutMs);
    if (locked) throw locked;
    throw isPgBackupError(e) && !(e instanceof UsageError) ? new RestoreError('SAFETY_BACKUP', `the safety backup of the target failed, so nothing was restored: ${e.message}`, { cause: e }) : e;
  });
  ctx.log.info({ safetyBackup: r.key }, 'safety backup stored');
  process.stderr.write(`safety backup: ${storage.kind === 'folder' ? `${storage.description}/` : storage.description}${r.key}\n`);
  return r.key;
}

/** Ask on the terminal. Ctrl-C, end of input (Ctrl-D) or a signal there: exit 130, nothing changed. */
export async function confirm(ctx: Context, question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  return new Promise<boolean>((resolve, reject) => {
    let settled = false;
    const stop = (how: string) => {
      if (settled) return;
      settled = true;
      ctx.signal.removeEventListener('abort', onAbort);
      rl.close();
      process.stderr.write('\n');
      reject(new InterruptedError('SIGINT', `${how} at the confirmation prompt; nothing was changed`));
    };
    const onAbort = () => stop('interrupted');
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    rl.on('SIGINT', () => stop('interrupted (Ctrl-C)'));
    rl.on('close', () => stop('end of input (Ctrl-D)'));
    if (ctx.signal.aborted) onAbort();
    rl.question(question).then(
      (a) => {
        if (settled) return;
        settled = true;
        ctx.signal.removeEventListener('abort', onAbort);
        rl.close();
        resolve(/^y(es)?$/i.test(a.trim()));
      },
      () => stop('interrupted'),
    );
  });
}

export function ago(ms: number): string {
  const m = Math.round(ms / 60000);
  if (m < 0) return 'in the future';
  if (m < 120) return `${m} minute(s) ago`;
  const h = Math.round(m / 60);
  return h < 48 ? `${h} hour(s) ago` : `${Math.round(h / 24)} day(s) ago`;
}

async function prepareTarget(
  ctx: Context,
  cfg: RestoreConfig,
  made: CreatedDb = {},
  props?: DatabaseProperties,
): Promise<{ hasTables: boolean; created: boolean; server: ServerVersion }> {
  const name = cfg.dest.database!;
  try {
    const { tables, server } = await userTablesAndServer(cfg.dest, ctx.signal);
    if (tables.length && !cfg.clean) {
      throw new UsageError(`target database "${name}" already has ${tables.length} table(s): give --clean to replace its contents (a safety backup is taken first)`);
    }
    return { hasTables: tables.length > 0, created: false, server };
  } catch (e) {
    if (!(e instanceof DbError)) throw e;
    if (e.pgCode !== '3D000') throw new RestoreError('CONNECT', e.message, { cause: e });
    if (!cfg.create) throw new UsageError(`target database "${name}" does not exist: give --create to create it`);
    const maint = withDatabase(cfg.dest, 'postgres');
    // Like the source (encoding, locale), or exit 2 naming what this cluster lacks.
    const server = await createTargetDatabase(ctx, maint, name, props, cfg.createWith, made);
    return { hasTables: false, created: true, server };
  }
}

/** `restore`: one backup into one target database (or `--list`). */
export async function restore(ctx: Context, cfg: Readonly<RestoreConfig>): Promise<void> {
  // A database the restore creates is dropped again on any failure before its load commits
  // (psql error, damaged data, SIGINT/SIGTERM): the error propagates after the drop.
  const made: CreatedDb = {};
  try {
    await restoreOnce(ctx, cfg, made);
  } catch (e) {
    await dropCreated(ctx, made, e);
    throw e;
  }
}

async function restoreOnce(ctx: Context, cfg: Readonly<RestoreConfig>, made: CreatedDb): Promise<void> {
  const secrets = await loadSecrets(cfg);
  const database = cfg.database ?? cfg.dest?.database ?? '';
  const ref = cfg.key ?? (await resolveLatest(ctx, cfg.target, database, cfg.at, cfg.anyKind));
  const located = await locate(ctx, cfg.target, ref);
  const { manifest, problem } = await readManifest(ctx, located.storage, located.key).catch(() => ({ manifest: null as Manifest | null, problem: 'unreadable' }));
  if (!manifest && cfg.key === undefined) throw new StorageError('INCOMPLETE', `${located.display}: ${problem}`);
  if (!manifest) ctx.log.warn({ key: located.display }, `restoring without a manifest: ${problem}; row counts are checked against the dump itself`);
  if (manifest && manifest.sizes.stored !== located.size) {
    // Known before anything starts: do not touch the target for an object that is not what its manifest describes.
    throw new VerifyError('SIZE', `${located.display} has ${located.size} bytes, its manifest says ${manifest.sizes.stored}: it is truncated or was replaced; nothing was changed`);
  }

  // The age header is checked before the target is touched.
  const opened = await openBackup(ctx, located, decryptSecrets(secrets), 'restore');

  if (cfg.list) {
    const { entries, complete } = await listEntries(ctx, opened, located.display);
    if (cfg.json) ctx.out(JSON.stringify({ key: located.display, complete, entries }) + '\n');
    else ctx.out(formatEntries(entries));
    if (!complete) throw new VerifyError('INCOMPLETE', `${located.display} does not end with pg_dump's completion marker: it is cut short`);
    return;
  }

  // psql's version is looked up (once per run) while the target is prepared.
  void findBinaries('psql', ctx.env).catch(() => undefined);
  if (isSelective(cfg.selection)) {
    if ((manifest?.database ?? parseKey(located.key)?.database) === GLOBALS_DB) throw new UsageError('--table, --schema and --exclude-table select from a database\'s backup; this is the cluster globals backup');
    return restoreSelective(ctx, cfg, cfg.selection, { located, manifest, opened, secrets, made });
  }
  if (cfg.clean && !cfg.yes) {
    if (!process.stdin.isTTY || !process.stderr.isTTY) throw new UsageError('--clean replaces the target\'s contents: confirm with --yes when not on a terminal');
  }
  // Cluster globals (roles) are not a database's contents: no table check, no safety backup.
  const globals = (manifest?.database ?? parseKey(located.key)?.database) === GLOBALS_DB;
  // Staging databases of parallel restores that were killed: named, never dropped (see
  // warnStaleStagings); looked for beside the target's preparation, reported after it.
  const stale = globals ? undefined : lookForStaleStagings(ctx, cfg.dest);
  const state = globals ? { hasTables: false, created: false, server: undefined } : await prepareTarget(ctx, cfg, made, manifest?.databaseProperties);
  if (stale) await warnStaleStagings(ctx, cfg.dest, stale);
  const kind = manifest ? manifestKind(manifest) : 'full';
  if (state.hasTables && kind === 'partial') {
    throw new UsageError(
      `${located.display} is a partial backup (${(manifest?.filters ?? []).join(' ') || 'made with pg_dump filters'}): ` +
        `--clean would drop everything else in "${cfg.dest.database}". Nothing was changed. ` +
        'Restore it into a new database (--to .../NEWDB --create) and copy what you need from there.',
    );
  }
  // What the target holds now: read once, for the lock-table check and the prompt.
  const facts = state.hasTables && cfg.clean ? await targetFacts(cfg.dest, ctx.signal) : undefined;
  if (facts && !globals && cfg.jobs <= 1) {
    // One transaction locks every relation it drops and creates: stop now, before the safety backup, when that cannot fit.
    await checkLockCapacity(cfg.dest, ctx.signal, facts.relations, manifest ? manifest.tables.length : facts.relations);
  }
  if (facts && !cfg.yes) {
    // Everything the operator needs to be sure: which server, what is there now, what replaces it.
    const where = `${cfg.dest.host ?? 'localhost (socket)'}:${cfg.dest.port ?? 5432}`;
    const taken = manifest ? new Date(manifest.createdAt) : (parseKey(located.key)?.time ?? null);
    process.stderr.write(
      `\nTarget:  database "${cfg.dest.database}" on ${where}: ${facts.tables} table(s), ${formatBytes(facts.sizeBytes)}\n` +
        `Backup:  ${located.display}\n` +
        `         ${manifest ? `${kind} backup` : 'no manifest (kind unknown)'}${taken ? `, taken ${taken.toISOString().replace(/\.\d{3}Z$/, 'Z')} (${ago(Date.now() - taken.getTime())})` : ''}` +
        `${manifest ? `, ${manifest.tables.length} table(s)` : ''}\n` +
        `${cfg.jobs > 1 ? 'The restore loads into a staging database; the current one is kept under a new name (printed at the end).' : cfg.safetyBackup ? 'A safety backup of the target is stored first.' : 'NO safety backup (--no-safety-backup).'}\n`,
    );
    if (!(await confirm(ctx, `Replace the contents of database "${cfg.dest.database}" on ${where}? [y/N] `))) {
      throw new UsageError('not confirmed; nothing was changed');
    }
  }
  if (cfg.jobs > 1 && !globals) return restoreInParallel(ctx, cfg, { located, manifest, opened, created: state.created, made });
  let safetyKey: string | undefined;
  // Every statement of the restore gives up after --lock-timeout rather than wait silently.
  const preamble: string[] = [`SET lock_timeout = '${cfg.lockTimeoutMs}ms';`];
  if (cfg.terminateConnections && !state.created && !globals) {
    const ended = await terminateOthers(cfg.dest, ctx.signal);
    if (ended.length) ctx.log.warn({ sessions: ended.map(describeSession) }, `ended ${ended.length} other session(s) on the target (--terminate-connections)`);
  }
  if (state.hasTables) {
    if (cfg.safetyBackup) safetyKey = await takeSafetyBackup(ctx, cfg, secrets, located);
    preamble.push(...(await cleanStatements(cfg.dest, ctx.signal)));
  }

  // Owner, ACL, settings, comment, labels: inside the transaction, after the dump; read from
  // the target while the dump loads.
  const postamble = started(propertiesPostamble(ctx, cfg.dest, { created: state.created, apply: cfg.applyDatabaseProperties, props: manifest?.databaseProperties, globals }));
  const counts = countsAhead(ctx, cfg.dest, manifest?.tables.length);
  const res = await namingLockHolders(cfg.dest, cfg.lockTimeoutMs, loadInto(ctx, located, secrets, cfg.dest, {
    preamble,
    postamble,
    server: state.server,
    noOwner: cfg.noOwner,
    globals,
    opened,
    // _globals: missing tablespaces are created before the transaction; in it their CREATE becomes an owner change.
    rewrite: globals ? await prepareTablespaces(ctx, located, decryptSecrets(secrets), cfg.dest, made) : undefined,
    expect: manifest ? expectOf(manifest) : undefined,
    onInputEnd: counts.open,
  })).catch(async (e: unknown) => {
    await counts.close();
    throw e;
  });
  made.loaded = true; // committed: the database stays, whatever the checks below find
  // The sha256 and the dump's own row counts were checked against the manifest before psql's
  // end of input (loadInto's `expect`); what remains is what the target holds.
  const expected = manifest ? manifest.tables : res.tables;
  const diffs = await compareCounts(ctx, cfg.dest, expected, counts.ahead());
  const total = expected.reduce((s, t) => s + t.rows, 0);
  const summary = {
    restored: located.display,
    into: cfg.dest.database,
    tables: expected.length,
    rows: total,
    sql: formatBytes(res.sqlBytes),
    duration: formatDuration(res.durationMs),
    safetyBackup: safetyKey,
    mismatches: diffs.length,
  };
  if (cfg.json) ctx.out(JSON.stringify({ ...summary, differences: diffs }) + '\n');
  else ctx.out(`restored ${located.display} into "${cfg.dest.database}": ${expected.length} tables, ${total} rows, ${formatBytes(res.sqlBytes)} of SQL in ${formatDuration(res.durationMs)}${diffs.length ? `; ${diffs.length} row-count mismatch(es)` : '; row counts match'}\n`);
  if (diffs.length) throw new VerifyError('ROW_COUNTS', `row counts after restore differ:\n  ${diffs.join('\n  ')}`);
  ctx.log.info(summary, 'restore complete');
}

/**
 * --jobs N > 1: into the database --create just made, or into a staging database that replaces
 * the existing target at the end (the old one is kept, renamed, in place of a safety backup).
 */
async function restoreInParallel(
  ctx: Context,
  cfg: RestoreConfig,
  o: { located: Located; manifest: Manifest | null; opened: Awaited<ReturnType<typeof openBackup>>; created: boolean; made: CreatedDb },
): Promise<void> {
  const { located, manifest, made } = o;
  const target = cfg.dest.database!;
  let into = cfg.dest;
  let staging: { name: string; admin: ConnInfo } | undefined;
  let props = manifest?.databaseProperties;
  if (!o.created) {
    // The target's own properties go to the staging database unless the source's are asked for.
    if (!cfg.applyDatabaseProperties) props = await databaseProperties(cfg.dest, ctx.signal);
    staging = await createStaging(ctx, cfg.dest);
    made.admin = staging.admin;
    made.name = staging.name; // dropped again unless the cut-over happens
    into = withDatabase(cfg.dest, staging.name);
    ctx.log.info({ staging: staging.name, target }, 'loading into a staging database that replaces the target at the end');
  }
  const postamble = await propertiesPostamble(ctx, into, { created: true, apply: Boolean(props), props });
  const res = await loadParallel(ctx, into, {
    jobs: cfg.jobs,
    noOwner: cfg.noOwner,
    opened: o.opened,
    display: located.display,
    expect: manifest ? expectOf(manifest) : undefined,
    postamble,
  });
  // Row counts in the loaded copy before it replaces anything: a mismatch leaves the target as it was.
  const expected = manifest ? manifest.tables : res.tables;
  const diffs = await compareCounts(ctx, into, expected);
  if (ctx.signal.aborted) throw ctx.signal.reason;
  if (diffs.length) {
    throw new VerifyError('ROW_COUNTS', `the loaded copy's row counts differ, so it replaced nothing and was dropped:\n  ${diffs.join('\n  ')}`);
  }
  let old: string | undefined;
  if (staging) {
    old = await swapIn(ctx, staging.admin, target, staging.name, cfg.terminateConnections);
    made.loaded = true; // from here on the target is the new copy, whatever happens next
    process.stderr.write(`the previous database "${target}" is kept as "${old}" (drop it when you no longer need it)\n`);
  }
  made.loaded = true;
  const total = expected.reduce((s, t) => s + t.rows, 0);
  const summary = {
    restored: located.display,
    into: target,
    jobs: cfg.jobs,
    tables: expected.length,
    rows: total,
    sql: formatBytes(res.sqlBytes),
    duration: formatDuration(res.durationMs),
    previousDatabase: old,
    copyChunks: res.copyChunks,
    postDataTasks: res.postTasks,
    mismatches: diffs.length,
  };
  if (cfg.json) ctx.out(JSON.stringify({ ...summary, differences: diffs }) + '\n');
  else ctx.out(`restored ${located.display} into "${target}" over ${cfg.jobs} sessions: ${expected.length} tables, ${total} rows, ${formatBytes(res.sqlBytes)} of SQL in ${formatDuration(res.durationMs)}${diffs.length ? `; ${diffs.length} row-count mismatch(es)` : '; row counts match'}\n`);
  if (diffs.length) throw new VerifyError('ROW_COUNTS', `row counts after restore differ:\n  ${diffs.join('\n  ')}`);
  ctx.log.info(summary, 'restore complete');
}
