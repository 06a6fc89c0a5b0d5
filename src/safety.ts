/**
 * What an operator must know before a restore replaces a database, and what may stop it:
 * the target's size, the lock table's capacity, the sessions in the way. Queries through
 * node-postgres (db.ts withClient); no other I/O.
 */
import type { ConnInfo } from './conn.js';
import { withClient } from './db.js';

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
        WHERE n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'`,
    );
    const row = r.rows[0];
    return { tables: Number(row.tables), relations: Number(row.relations), sizeBytes: Number(row.size) };
  });
}

export interface LockCapacity {
  maxLocksPerTransaction: number;
  maxConnections: number;
  maxPreparedTransactions: number;
  /** Lock slots in the shared lock table: max_locks_per_transaction x (max_connections + max_prepared_transactions). */
  slots: number;
}

export async function lockCapacity(ci: ConnInfo, signal: AbortSignal): Promise<LockCapacity> {
  return withClient(ci, signal, async (c) => {
    const r = await c.query(
      `SELECT current_setting('max_locks_per_transaction')::int AS l, current_setting('max_connections')::int AS c,
              current_setting('max_prepared_transactions')::int AS p`,
    );
    const { l, c: conns, p } = r.rows[0];
    return { maxLocksPerTransaction: l, maxConnections: conns, maxPreparedTransactions: p, slots: l * (conns + p) };
  });
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
