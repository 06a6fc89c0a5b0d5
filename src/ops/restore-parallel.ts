/**
 * `restore --jobs N` (N > 1): the backup streams once through the dump reader (object mode)
 * into N psql sessions (pipeline/parallel.ts). Statements commit one by one, so the restore is
 * atomic at database level instead: it loads into a database it created (dropped on any
 * failure) or, over an existing database, into a staging database that replaces the target by
 * rename at the end (the old one is kept under a printed name).
 */
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import type { Context } from '../support/context.js';
import { childEnv, withDatabase, type ConnInfo } from '../pg/conn.js';
import { DbError, STAGING_PREFIX, databaseProperties, quoteIdent, serverInfo, withClient } from '../pg/db.js';
import { DumpError, RestoreError, UsageError, VerifyError, classifyData, firstError, messageOf } from '../support/errors.js';
import { DumpReader } from '../pipeline/dumpreader.js';
import { ParallelLoad } from '../pipeline/parallel.js';
import { PsqlSession } from '../pipeline/psqlsession.js';
import { rowCountDifferences, storedMismatch, type StoredExpect } from '../model/manifest.js';
import type { openBackup } from './open.js';
import { choosePsql, compatRewrite, type LoadResult } from './restore.js';
import { createClauses } from '../model/dbprops.js';
import { createDatabaseWith } from '../pg/db.js';

export interface ParallelOptions {
  jobs: number;
  noOwner: boolean;
  opened: Awaited<ReturnType<typeof openBackup>>;
  display: string;
  expect?: StoredExpect | undefined;
  /** Statements run last, in one session (database properties). */
  postamble?: string[] | undefined;
}

/** Load an opened backup into `dest` (a database nobody else uses) over `jobs` sessions. */
export async function loadParallel(ctx: Context, dest: ConnInfo, o: ParallelOptions): Promise<LoadResult & { copyChunks: number; postTasks: number; maxConcurrentPost: number }> {
  const t0 = Date.now();
  const server = await serverInfo(dest, ctx.signal).catch((e) => {
    if (e instanceof DbError) throw new RestoreError('CONNECT', e.message, { cause: e });
    throw e;
  });
  const psql = await choosePsql(server, ctx.env, ctx.log);
  const compat = compatRewrite(server, psql, o.noOwner, ctx.log, false);
  const env = childEnv(dest, ctx.env);
  env.PGOPTIONS = `${env.PGOPTIONS ? env.PGOPTIONS + ' ' : ''}-c client_min_messages=warning`;
  const sessions = Array.from(
    { length: o.jobs },
    (_, k) => new PsqlSession({ bin: psql.path, env, secrets: [dest.password?.reveal()], name: `session ${k + 1}`, onStderr: (l) => ctx.log.warn({ psql: l, session: k + 1 }, 'psql says') }),
  );
  const reader = new DumpReader({
    objects: true,
    requireComplete: true,
    skipClean: true,
    // Large-object data needs pg_dump's own transaction here (its descriptors live in one).
    dropBlobTransaction: false,
    rewrite: (st) => {
      const r = compat(st);
      if (r !== undefined) return r;
      // \restrict would stop our sessions' own \echo; the reader already keeps each statement whole.
      if (st.meta && /^\\(un)?restrict\s/.test(st.text)) return null;
      return undefined;
    },
  });
  const measure = o.opened.measure;
  const load = new ParallelLoad(sessions, {
    // Before any index is built: the whole object arrived and checks out.
    check: () => {
      if (!o.expect) return;
      const bad = storedMismatch(o.expect, measure.bytes, measure.digest());
      if (bad) throw new VerifyError(bad.code, bad.message);
      const cmp = rowCountDifferences({ tables: o.expect.tables }, reader.tables);
      const differ = [...cmp.differ, ...cmp.extra];
      if (differ.length) throw new VerifyError('ROW_COUNTS', `the dump's row counts differ from its manifest's:\n  ${differ.join('\n  ')}`);
    },
    postamble: o.postamble ?? [],
  });
  try {
    await pipeline([...o.opened.stages, reader, load], { signal: ctx.signal });
  } catch (e) {
    await Promise.all(sessions.map((s) => s.kill()));
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (e instanceof DumpError && e.code === 'INCOMPLETE_DUMP') {
      throw new VerifyError('INCOMPLETE', `${o.display} does not end with pg_dump's completion marker: it is cut short (or not a pg_dump file)`, { cause: e });
    }
    throw firstError([classifyData(e)]);
  }
  if (reader.skippedClean) ctx.log.info({ statements: reader.skippedClean }, "skipped the dump's own --clean drop statements");
  return {
    tables: reader.tables,
    sqlBytes: reader.bytes,
    storedBytes: measure.bytes,
    sha256: measure.digest(),
    complete: reader.complete,
    durationMs: Date.now() - t0,
    ...load.stats,
  };
}

/**
 * Staging databases left by a parallel restore that never finished (SIGKILL, a crash, a lost
 * server): names, with the sessions on each. They are only reported, never dropped here: a
 * staging database with sessions may belong to a restore still running, and one without may
 * be what an operator wants to look at.
 */
export async function staleStagings(admin: ConnInfo, signal: AbortSignal): Promise<Array<{ name: string; sessions: number }>> {
  return withClient(admin, signal, async (c) => {
    const r = await c.query(
      `SELECT d.datname AS name, (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname)::int AS sessions
         FROM pg_database d WHERE d.datname LIKE 'pgbackup\\_staging\\_%' ORDER BY d.datname`,
    );
    return r.rows as Array<{ name: string; sessions: number }>;
  });
}

/**
 * Warn about staging databases left behind (see staleStagings); a failure to look is only
 * logged. `lookup`: the look, started earlier (lookForStaleStagings) to run beside other work.
 */
export async function warnStaleStagings(ctx: Context, dest: ConnInfo, lookup?: Promise<Array<{ name: string; sessions: number }>>): Promise<void> {
  const found = await (lookup ?? lookForStaleStagings(ctx, dest));
  if (!found.length) return;
  const names = found.map((f) => `"${f.name}"${f.sessions ? ` (${f.sessions} session(s) on it: a restore may still be running)` : ''}`);
  ctx.log.warn(
    { stagingDatabases: found.map((f) => f.name) },
    `staging database(s) left by parallel restores that did not finish: ${names.join(', ')}. ` +
      `They hold partial copies and take disk space; nothing uses them once their restore has ended. ` +
      `Drop each with: DROP DATABASE ${quoteIdent(found[0]!.name)}; (psql -d postgres), after checking no restore is running. pgbackup does not drop them itself.`,
  );
}

/** staleStagings on the cluster of `dest`; never rejects (a failure to look is logged at debug level, and finds none). */
export function lookForStaleStagings(ctx: Context, dest: ConnInfo): Promise<Array<{ name: string; sessions: number }>> {
  return staleStagings(withDatabase(dest, 'postgres'), ctx.signal).catch((e) => {
    ctx.log.debug({ error: messageOf(e) }, 'could not look for staging databases left by interrupted parallel restores');
    return [];
  });
}

/** A staging database made like `dest` (encoding, locale), for a parallel restore over an existing database. */
export async function createStaging(ctx: Context, dest: ConnInfo): Promise<{ name: string; admin: ConnInfo; ownStatements: string[] }> {
  const admin = withDatabase(dest, 'postgres');
  const props = await databaseProperties(dest, ctx.signal);
  const server = await serverInfo(admin, ctx.signal);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const name = `${STAGING_PREFIX}${stamp}_${randomBytes(2).toString('hex')}`;
  const plan = createClauses(props, server.versionNum, { encoding: undefined, locale: undefined, defaults: false });
  if ('problem' in plan) throw new UsageError(`cannot make a staging database like "${dest.database}": ${plan.problem}`);
  await createDatabaseWith(admin, name, plan.clauses, ctx.signal).catch((e) => {
    throw new RestoreError('CREATE', `cannot create the staging database: ${messageOf(e)}`, { cause: e });
  });
  return { name, admin, ownStatements: [] };
}

/** Sessions other than ours on database `db`: pid, user, application, state. */
export async function otherSessions(admin: ConnInfo, db: string, signal: AbortSignal): Promise<string[]> {
  return withClient(admin, signal, async (c) => {
    const r = await c.query(
      `SELECT pid, usename, application_name, state FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() ORDER BY pid`,
      [db],
    );
    return r.rows.map((x) => `pid ${x.pid} (user ${x.usename ?? '?'}, application "${x.application_name ?? ''}", ${x.state ?? 'unknown'})`);
  });
}

/**
 * The cut-over: `dest` becomes `old`, the staging database becomes `dest`, in one transaction.
 * Sessions on the target must have ended (`terminate` ends them first).
 */
export async function swapIn(ctx: Context, admin: ConnInfo, target: string, staging: string, terminate: boolean): Promise<string> {
  const old = `${target.slice(0, 30)}_pgbackup_old_${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
  // Errors leave withClient as values: it would take any other error for a connection problem.
  const r = await withClient(admin, ctx.signal, async (c): Promise<{ ok: true } | { ok: false; error: unknown }> => {
    if (terminate) {
      const r = await c.query(`SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [target]);
      if (r.rows[0].n) ctx.log.warn({ database: target, sessions: r.rows[0].n }, 'ended the sessions on the target (--terminate-connections)');
    }
    try {
      await c.query('BEGIN');
      await c.query(`ALTER DATABASE ${quoteIdent(target)} RENAME TO ${quoteIdent(old)}`);
      await c.query(`ALTER DATABASE ${quoteIdent(staging)} RENAME TO ${quoteIdent(target)}`);
      await c.query('COMMIT');
      return { ok: true };
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      return { ok: false, error: e };
    }
  });
  if (!r.ok) {
    const users = await otherSessions(admin, target, ctx.signal).catch(() => []);
    throw new RestoreError(
      'CUTOVER',
      `the restored copy was complete, but "${target}" cannot be replaced: ${messageOf(r.error)}` +
        (users.length ? `; sessions on it: ${users.join('; ')}. End them, or give --terminate-connections` : '') +
        `; "${target}" is unchanged and the copy was dropped`,
      { cause: r.error },
    );
  }
  return old;
}
