/**
 * What an operator must know before a restore replaces a database, and what may stop it:
 * the target's size, the lock table's capacity, the sessions in the way. Queries through
 * node-postgres (db.ts withClient); no other I/O.
 */
import type { ConnInfo } from '../pg/conn.js';
import { withClient } from '../pg/db.js';
import { RestoreError, anyCause, messageOf } from '../support/errors.js';
import { SECOND } from '../support/units.js';

export interface TargetFacts {
  tables: number;
  /** Relations a --clean restore locks when it drops everything (tables, indexes, sequences, views, TOAST...). */
  relations: number;
  sizeBytes: number;
}

export async function targetFacts(ci: ConnInfo, signal: AbortSignal): Promise<TargetFacts> {
  return withClient(ci, signal, async (c) => {
    const r = await c.query(
      `SELECT count(*) FILTER (WHERE c.relkind IN ('r','p') AND n.nspname NOT LIKE 'pg_toast%')::int AS tables,
              count(*)::int AS relations,
              pg_database_size(current_database())::bigint AS size
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid >= 16384 AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'`,
    );
    const row = r.rows[0];
    return { tables: Number(row.tables), relations: Number(row.relations), sizeBytes: Number(row.size) };
  });
}

export interface LockCapacity {
  maxLocksPerTransaction: number;
  maxConnections: number;
  maxPreparedTransactions: number;
  /** Server processes that get lock-table room: max_connections + autovacuum workers + 1 + max_worker_processes + max_wal_senders. */
  backends: number;
  /** Slots in the shared lock table: max_locks_per_transaction x (backends + max_prepared_transactions). */
  slots: number;
}

export async function lockCapacity(ci: ConnInfo, signal: AbortSignal): Promise<LockCapacity> {
  return withClient(ci, signal, async (c) => {
    const r = await c.query(
      `SELECT current_setting('max_locks_per_transaction')::int AS l, current_setting('max_connections')::int AS c,
              current_setting('max_prepared_transactions')::int AS p,
              coalesce(current_setting('autovacuum_worker_slots', true), current_setting('autovacuum_max_workers'))::int AS av,
              current_setting('max_worker_processes')::int AS w, current_setting('max_wal_senders')::int AS s`,
    );
    const { l, c: conns, p, av, w, s } = r.rows[0];
    const backends = conns + av + 1 + w + s;
    return { maxLocksPerTransaction: l, maxConnections: conns, maxPreparedTransactions: p, backends, slots: l * (backends + p) };
  });
}

/**
 * A --clean restore drops and recreates everything in one transaction, holding a lock on every
 * relation until it commits. When that cannot fit in the server's lock table, stop now (before
 * the safety backup) with the fix, rather than fail with "out of shared memory" at the end.
 */
export async function checkLockCapacity(ci: ConnInfo, signal: AbortSignal, inTarget: number, inBackup: number): Promise<void> {
  const cap = await lockCapacity(ci, signal);
  const needed = inTarget + inBackup;
  if (needed <= cap.slots) return;
  const perTx = Math.ceil((needed * 1.2) / (cap.backends + cap.maxPreparedTransactions));
  throw new RestoreError(
    'LOCK_CAPACITY',
    `this restore would hold locks on about ${needed} relations in one transaction (${inTarget} in the target now, ${inBackup} tables in the backup), ` +
      `but the server's lock table has room for ${cap.slots}: max_locks_per_transaction (${cap.maxLocksPerTransaction}) x ` +
      `(${cap.backends} server processes, from max_connections ${cap.maxConnections}, + max_prepared_transactions ${cap.maxPreparedTransactions}). ` +
      `It would fail with "out of shared memory". Nothing was changed (no safety backup was taken). ` +
      `Fix: set max_locks_per_transaction = ${perTx} or more on the target server and restart it; or restore into a new database in parallel sessions (--jobs) where this version offers it.`,
  );
}

export function isLockTimeout(e: unknown): boolean {
  return anyCause(e, (x) => /lock timeout|could not obtain lock on relation/i.test(messageOf(x)));
}

/** Naming the lock holders is best effort: a query that hangs itself must not hide the timeout. */
const LOCK_HOLDERS_TIMEOUT_MS = 15 * SECOND;

/** When `e` is a lock timeout: a RestoreError naming the sessions holding locks on the target's relations. */
export async function lockTimeoutError(ci: ConnInfo, e: unknown, timeoutMs: number): Promise<RestoreError | null> {
  if (!isLockTimeout(e)) return null;
  const holders = await lockHolders(ci, AbortSignal.timeout(LOCK_HOLDERS_TIMEOUT_MS)).catch(() => [] as Session[]);
  return new RestoreError(
    'LOCK_TIMEOUT',
    `gave up after waiting ${Math.round(timeoutMs / 1000)}s (--lock-timeout) for locks on database "${ci.database}" held by other sessions; nothing was changed:\n  ` +
      (holders.length ? holders.map(describeSession).join('\n  ') : '(those sessions have ended meanwhile)') +
      `\nEnd them or wait for them, or give --terminate-connections to end the target's other sessions after the confirmation.`,
    { cause: e },
  );
}

export interface Session {
  pid: number;
  user: string | null;
  application: string | null;
  state: string | null;
  client: string | null;
  since: string | null;
  query: string | null;
}

export function describeSession(s: Session): string {
  const q = s.query ? s.query.replace(/\s+/g, ' ').slice(0, 80) : '';
  return `pid ${s.pid} (user ${s.user ?? '?'}, application "${s.application ?? ''}", ${s.state ?? 'unknown state'}${s.client ? `, from ${s.client}` : ''}${s.since ? `, since ${s.since}` : ''}${q ? `, last query: ${q}` : ''})`;
}

const SESSION_COLUMNS = `a.pid, a.usename AS user, a.application_name AS application, a.state,
  host(a.client_addr) AS client, to_char(a.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS since, a.query`;

/** Other sessions holding locks on relations of the target database: what a restore would wait for. */
export async function lockHolders(ci: ConnInfo, signal: AbortSignal): Promise<Session[]> {
  return withClient(ci, signal, async (c) => {
    const r = await c.query(
      `SELECT DISTINCT ${SESSION_COLUMNS}
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.granted AND l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND a.pid <> pg_backend_pid()
        ORDER BY a.pid`,
    );
    return r.rows as Session[];
  });
}

/** End every other client session connected to the target database; the pids ended. */
export async function terminateOthers(ci: ConnInfo, signal: AbortSignal): Promise<Session[]> {
  return withClient(ci, signal, async (c) => {
    const r = await c.query(
      `SELECT ${SESSION_COLUMNS}, pg_terminate_backend(a.pid) AS ended
         FROM pg_stat_activity a
        WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
        ORDER BY a.pid`,
    );
    return r.rows.filter((x) => x.ended) as Session[];
  });
}

/** `p`, with a lock timeout turned into an error naming the sessions in the way. */
export async function namingLockHolders<T>(ci: ConnInfo, timeoutMs: number, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw (await lockTimeoutError(ci, e, timeoutMs)) ?? e;
  }
}
