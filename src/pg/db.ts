/** Metadata queries through node-postgres. Errors come back as plain Errors with a readable message. */
import pg from 'pg';
import { type ConnInfo, describeConn } from './conn.js';
import { connectPg } from './connect.js';
import { messageOf } from '../support/errors.js';
import type { DatabaseProperties } from '../model/dbprops.js';
import { decodeName, decodesToUnicode } from '../pipeline/pgencoding.js';

export class DbError extends Error {
  constructor(message: string, readonly pgCode?: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A node-postgres error as a DbError with a readable message naming the connection (no password). */
export function explainPg(e: unknown, ci: ConnInfo): DbError {
  const err = e as { code?: string; message?: string };
  const where = describeConn(ci);
  if (err.code === 'ECONNREFUSED') return new DbError(`cannot connect to ${where}: connection refused`, err.code, { cause: e });
  if (err.code === 'ENOTFOUND') return new DbError(`cannot connect to ${where}: host not found`, err.code, { cause: e });
  if (err.code === '28P01' || err.code === '28000') return new DbError(`cannot connect to ${where}: authentication failed (${messageOf(e)})`, err.code, { cause: e });
  if (err.code === '3D000') return new DbError(`database does not exist: ${where}`, err.code, { cause: e });
  return new DbError(`${where}: ${messageOf(e)}`, err.code, { cause: e });
}

/**
 * `fn` on a connection to `ci`, closed afterwards. `ready`: a connection opened ahead
 * (openAhead), used when it is still open; else a new one is opened.
 */
export async function withClient<T>(ci: ConnInfo, signal: AbortSignal, fn: (c: pg.Client) => Promise<T>, ready?: Promise<pg.Client | null>): Promise<T> {
  signal.throwIfAborted();
  let c: pg.Client;
  try {
    c = await aheadOrConnect(ci, signal, ready);
  } catch (e) {
    if (signal.aborted) throw e;
    throw explainPg(e, ci);
  }
  const onAbort = () => void c.end().catch(() => undefined);
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();
  try {
    try {
      return await fn(c);
    } catch (e) {
      if (e instanceof DbError) throw e;
      throw explainPg(e, ci);
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    await c.end().catch(() => undefined);
  }
}

/** Connections opened ahead (openAhead) that have since closed or failed. */
const closedAhead = new WeakSet<pg.Client>();

/** The connection opened ahead when it is still open, else a new one (an unusable one is closed). */
async function aheadOrConnect(ci: ConnInfo, signal: AbortSignal, ready: Promise<pg.Client | null> | undefined): Promise<pg.Client> {
  const c = ready ? await ready : null;
  if (c && !closedAhead.has(c)) return c;
  void c?.end().catch(() => undefined);
  return connectPg(ci, signal);
}

/** Connections opened ahead of the queries that will use them (countRows after a load). */
export interface Ahead {
  /** The next connection opened ahead, handed over (its taker closes it); undefined when none is left. */
  take(): Promise<pg.Client | null> | undefined;
  /** Close those nobody took; resolved once they are closed (their sessions gone). */
  close(): Promise<void>;
}

/**
 * Open `n` connections to `ci` now, for queries that come later (while a load finishes, for the
 * row counts after its commit). One that fails to open, or closes meanwhile, is replaced by a
 * new connection when it is needed (withClient); a failure to open one is no error here.
 */
export function openAhead(ci: ConnInfo, signal: AbortSignal, n: number): Ahead {
  const waiting = Array.from({ length: n }, () =>
    connectPg(ci, signal).then(
      (c) => {
        const gone = () => closedAhead.add(c);
        c.on('end', gone);
        c.on('error', gone);
        return c;
      },
      () => null,
    ),
  );
  return {
    take: () => waiting.shift(),
    close: async () => {
      await Promise.all(waiting.splice(0).map((p) => p.then((c) => c?.end().catch(() => undefined))));
    },
  };
}

export interface ServerInfo {
  version: string; // "15.18"
  versionNum: number; // 150018
  major: number;
  database: string;
  sizeBytes: number;
}

/** What a restore needs to know of the server: its version. */
export type ServerVersion = Pick<ServerInfo, 'version' | 'versionNum' | 'major'>;

/** The server's version, on a connection the caller holds. */
export async function queryServerVersion(c: pg.Client): Promise<ServerVersion> {
  const r = await c.query(`SELECT current_setting('server_version') AS v, current_setting('server_version_num')::int AS n`);
  return versionOf(r.rows[0]);
}

/** server_version ("15.18 (Debian ...)") and server_version_num as a ServerVersion. */
function versionOf(row: { v: unknown; n: number }): ServerVersion {
  return { version: String(row.v).split(' ')[0]!, versionNum: row.n, major: Math.floor(row.n / 10000) };
}

/** serverInfo on a connection the caller holds. */
export async function queryServerInfo(c: pg.Client): Promise<ServerInfo> {
  const r = await c.query(
    `SELECT current_setting('server_version') AS v, current_setting('server_version_num')::int AS n,
            current_database() AS db, pg_database_size(current_database())::bigint AS size`,
  );
  const row = r.rows[0];
  return { ...versionOf(row), database: row.db, sizeBytes: Number(row.size) };
}

export async function serverInfo(ci: ConnInfo, signal: AbortSignal): Promise<ServerInfo> {
  return withClient(ci, signal, queryServerInfo);
}

/**
 * The name prefix of the staging databases a parallel restore over an existing database loads
 * into (ops/restore-parallel.ts): transient partial copies, never backed up by --all-databases.
 */
export const STAGING_PREFIX = 'pgbackup_staging_';

export async function listDatabases(ci: ConnInfo, signal: AbortSignal): Promise<string[]> {
  return withClient(ci, signal, async (c) => {
    const r = await c.query(`SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY datname`);
    return r.rows.map((x) => x.datname as string);
  });
}

export function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

async function queryUserTables(c: pg.Client): Promise<Array<{ schema: string; name: string }>> {
  // Names as bytes: a SQL_ASCII database's names need not be valid UTF8 (the server refuses to send them so).
  const r = await c.query(
    `SELECT getdatabaseencoding() AS enc, encode(convert_to(n.nspname::text, getdatabaseencoding()), 'hex') AS s,
            encode(convert_to(c.relname::text, getdatabaseencoding()), 'hex') AS t
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%'
       AND n.nspname NOT LIKE 'pg_temp%' ORDER BY n.nspname, c.relname`,
  );
  return r.rows.map((x) => ({ schema: decodeName(Buffer.from(x.s, 'hex'), x.enc), name: decodeName(Buffer.from(x.t, 'hex'), x.enc) }));
}

/** Tables in user schemas (ordinary and partitioned), as schema.name. */
export async function userTables(ci: ConnInfo, signal: AbortSignal): Promise<Array<{ schema: string; name: string }>> {
  return withClient(ci, signal, queryUserTables);
}

/** userTables and the server's version, over one connection. */
export async function userTablesAndServer(ci: ConnInfo, signal: AbortSignal): Promise<{ tables: Array<{ schema: string; name: string }>; server: ServerVersion }> {
  return withClient(ci, signal, async (c) => ({ tables: await queryUserTables(c), server: await queryServerVersion(c) }));
}

/** The key countRows gives a table (schema and name as the manifest spells them). */
export function tableKey(schema: string, name: string): string {
  return JSON.stringify([schema, name]);
}

/**
 * Row counts of `tables` (named as the manifest names them: pgencoding.decodeName of the bytes
 * in the database's encoding, so SQL_ASCII names are escaped bytes), keyed by tableKey; null for
 * a table that is missing or cannot be read. Tables are found by the raw bytes of their names
 * and counted by oid on the server, never by sending a name back: a SQL_ASCII name need not be
 * valid in the connection's UTF8.
 *
 * The counts run over up to `sessions` connections at once, largest tables first (by pg_class's
 * page count), each taking the next table when it is done: a second session counts the small
 * tables while the first counts the big one. A second connection that cannot be opened is not
 * an error: the first counts everything, as with one session.
 */
export async function countRows(
  ci: ConnInfo,
  tables: Array<{ schema: string; name: string }>,
  signal: AbortSignal,
  sessions = 2,
  ahead?: Ahead,
): Promise<Map<string, number | null>> {
  const first = ahead?.take();
  return withClient(ci, signal, async (c) => {
    // Opened (unless opened ahead) while the first session reads the catalog; only worth it with two tables or more.
    const endAll: Array<() => void> = [];
    const more = Array.from({ length: Math.max(0, Math.min(sessions, tables.length) - 1) }, () =>
      aheadOrConnect(ci, signal, ahead?.take()).then(
        (cl) => {
          const end = () => void cl.end().catch(() => undefined);
          endAll.push(end);
          signal.addEventListener('abort', end, { once: true });
          if (signal.aborted) end();
          return cl;
        },
        () => null,
      ),
    );
    try {
      const cat = await c.query(
        `SELECT c.oid::int8::text AS oid, c.relpages::int8 AS pages, getdatabaseencoding() AS enc,
                encode(convert_to(n.nspname::text, getdatabaseencoding()), 'hex') AS s,
                encode(convert_to(c.relname::text, getdatabaseencoding()), 'hex') AS t
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'f', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`,
      );
      const oids = new Map<string, { oid: string; pages: number }>();
      for (const r of cat.rows) {
        oids.set(tableKey(decodeName(Buffer.from(r.s, 'hex'), r.enc), decodeName(Buffer.from(r.t, 'hex'), r.enc)), { oid: r.oid, pages: Number(r.pages) });
      }
      const out = new Map<string, number | null>();
      const queue: Array<{ key: string; schema: string; name: string; oid: string; pages: number }> = [];
      for (const t of tables) {
        const key = tableKey(t.schema, t.name);
        const found = oids.get(key);
        if (found === undefined) out.set(key, null);
        else queue.push({ key, schema: t.schema, name: t.name, ...found });
      }
      // Largest first (a stable sort: tables without statistics keep their order).
      queue.sort((a, b) => b.pages - a.pages);
      const work = async (cl: pg.Client) => {
        for (let t = queue.shift(); t && !signal.aborted; t = queue.shift()) out.set(t.key, await countOne(cl, t.schema, t.name, t.oid));
      };
      await Promise.all([work(c), ...more.map(async (m) => {
        const cl = await m;
        if (cl) await work(cl);
      })]);
      return out;
    } finally {
      for (const end of endAll) signal.removeEventListener('abort', end);
      await Promise.all(more.map(async (m) => (await m)?.end().catch(() => undefined)));
    }
  }, first);
}

/** One table's row count (see countRows), or null when it cannot be read. */
async function countOne(c: pg.Client, schema: string, name: string, oid: string): Promise<number | null> {
  try {
    const r = await c.query(`SELECT query_to_xml(format('SELECT count(*) AS n FROM ONLY %s', $1::oid::regclass), false, true, '')::text AS x`, [oid]);
    const m = /<n>(\d+)<\/n>/.exec(String(r.rows[0].x));
    return m ? Number(m[1]) : null;
  } catch {
    // A server without query_to_xml: by name, which is exact for every encoding but SQL_ASCII.
    try {
      const r = await c.query(`SELECT count(*)::bigint AS n FROM ONLY ${quoteIdent(schema)}.${quoteIdent(name)}`);
      return Number(r.rows[0].n);
    } catch {
      return null;
    }
  }
}

/** How long a clean-up or bookkeeping statement outside the restore (drop a scratch database, create a tablespace) may take. */
export const ADMIN_TIMEOUT_MS = 30_000;

export async function databaseExists(ci: ConnInfo, name: string, signal: AbortSignal): Promise<boolean> {
  return withClient(ci, signal, async (c) => {
    const r = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    return r.rowCount === 1;
  });
}

export async function dropDatabase(ci: ConnInfo, name: string, signal: AbortSignal): Promise<void> {
  await withClient(ci, signal, async (c) => {
    const v = await c.query(`SELECT current_setting('server_version_num')::int AS n`);
    const force = v.rows[0].n >= 130000 ? ' WITH (FORCE)' : '';
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}${force}`);
  });
}

/** Statements that empty a database inside the restore's transaction (for --clean). */
export async function cleanStatements(ci: ConnInfo, signal: AbortSignal): Promise<string[]> {
  return withClient(ci, signal, async (c) => {
    // Names as bytes (see userTables). One psql cannot spell in its UTF8 (a SQL_ASCII database's
    // high bytes) is dropped by oid on the server.
    const hex = (col: string) => `oid::int8::text AS oid, getdatabaseencoding() AS enc, encode(convert_to(${col}::text, getdatabaseencoding()), 'hex') AS h`;
    const ext = await c.query(`SELECT ${hex('extname')} FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY extname`);
    const sch = await c.query(
      `SELECT ${hex('nspname')} FROM pg_namespace WHERE nspname NOT IN ('pg_catalog','information_schema')
         AND nspname NOT LIKE 'pg_toast%' AND nspname NOT LIKE 'pg_temp%' ORDER BY nspname`,
    );
    const drop = (kind: 'EXTENSION' | 'SCHEMA', catalog: string, col: string, r: { oid: string; enc: string; h: string }) => {
      const bytes = Buffer.from(r.h, 'hex');
      if (decodesToUnicode(r.enc) || bytes.every((b) => b < 0x80)) return `DROP ${kind} IF EXISTS ${quoteIdent(decodeName(bytes, r.enc))} CASCADE;`;
      return (
        `DO $pgbackup$ DECLARE n name := (SELECT ${col} FROM pg_catalog.${catalog} WHERE oid = ${Number(r.oid)}); ` +
        `BEGIN IF n IS NOT NULL THEN EXECUTE format('DROP ${kind} IF EXISTS %I CASCADE', n); END IF; END $pgbackup$;`
      );
    };
    // Large objects live outside every schema: the dump's lo_create(oid) would collide with them.
    const out: string[] = ['SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata;'];
    for (const r of ext.rows) out.push(drop('EXTENSION', 'pg_extension', 'extname', r));
    for (const r of sch.rows) out.push(drop('SCHEMA', 'pg_namespace', 'nspname', r));
    // Recreate "public" as initdb makes it (pg_dump does not emit it unless it was changed).
    const v = await c.query(`SELECT current_setting('server_version_num')::int AS n`);
    if (v.rows[0].n >= 150000) {
      out.push('CREATE SCHEMA IF NOT EXISTS public AUTHORIZATION pg_database_owner;', 'GRANT USAGE ON SCHEMA public TO PUBLIC;');
    } else {
      out.push('CREATE SCHEMA IF NOT EXISTS public;', 'GRANT ALL ON SCHEMA public TO PUBLIC;');
    }
    out.push("COMMENT ON SCHEMA public IS 'standard public schema';");
    return out;
  });
}

/**
 * The connected database's own properties (dbprops.ts), for servers 14 to 18: the locale
 * columns are looked up in pg_attribute (datlocprovider and daticulocale from 15, daticurules
 * from 16, datlocale replacing daticulocale in 17).
 */
export async function databaseProperties(ci: ConnInfo, signal: AbortSignal): Promise<DatabaseProperties> {
  return withClient(ci, signal, queryDatabaseProperties);
}

/** databaseProperties on a connection the caller holds. */
export async function queryDatabaseProperties(c: pg.Client): Promise<DatabaseProperties> {
  const cols = new Set(
    (
      await c.query(
        `SELECT attname FROM pg_attribute WHERE attrelid = 'pg_catalog.pg_database'::regclass AND attnum > 0 AND NOT attisdropped
           AND attname IN ('datlocprovider', 'daticulocale', 'datlocale', 'daticurules')`,
      )
    ).rows.map((r) => r.attname as string),
  );
  const provider = cols.has('datlocprovider') ? 'd.datlocprovider::text' : `'c'`;
  const locale = cols.has('datlocale') ? 'd.datlocale' : cols.has('daticulocale') ? 'd.daticulocale' : 'NULL::text';
  const rules = cols.has('daticurules') ? 'd.daticurules' : 'NULL::text';
  const r = await c.query(
    `SELECT d.oid::int8 AS oid, pg_encoding_to_char(d.encoding) AS encoding, d.datcollate::text AS collate, d.datctype::text AS ctype,
            ${provider} AS provider, ${locale} AS locale, ${rules} AS rules,
            pg_get_userbyid(d.datdba) AS owner, d.datacl::text AS acl, d.datconnlimit AS connlimit,
            d.datistemplate AS istemplate, d.datallowconn AS allowconn,
            CASE WHEN t.spcname = 'pg_default' THEN NULL ELSE t.spcname END AS tablespace,
            shobj_description(d.oid, 'pg_database') AS comment
       FROM pg_database d LEFT JOIN pg_tablespace t ON t.oid = d.dattablespace
      WHERE d.datname = current_database()`,
  );
  const d = r.rows[0];
  const acl = await c.query(
    `SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee, pg_get_userbyid(a.grantor) AS grantor,
            a.privilege_type AS privilege, a.is_grantable AS grantable
       FROM pg_database d, aclexplode(d.datacl) a WHERE d.oid = $1 ORDER BY 1 NULLS FIRST, 2, 3`,
    [d.oid],
  );
  const settings = await c.query(
    `SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END AS role, s.setconfig AS config
       FROM pg_db_role_setting s WHERE s.setdatabase = $1 ORDER BY 1 NULLS FIRST`,
    [d.oid],
  );
  const labels = await c.query(
    `SELECT provider, label FROM pg_shseclabel WHERE objoid = $1 AND classoid = 'pg_catalog.pg_database'::regclass ORDER BY provider`,
    [d.oid],
  );
  const providers: Record<string, DatabaseProperties['localeProvider']> = { c: 'libc', i: 'icu', b: 'builtin' };
  return {
    encoding: d.encoding,
    collate: d.collate,
    ctype: d.ctype,
    localeProvider: providers[d.provider] ?? 'libc',
    locale: d.locale ?? null,
    icuRules: d.rules ?? null,
    owner: d.owner,
    acl: d.acl ?? null,
    privileges: d.acl === null ? null : acl.rows.map((a) => ({ grantee: a.grantee, grantor: a.grantor, privilege: a.privilege, grantable: a.grantable })),
    settings: settings.rows.flatMap((s) =>
      (s.config as string[]).map((kv) => {
        const eq = kv.indexOf('=');
        return { role: s.role as string | null, name: eq < 0 ? kv : kv.slice(0, eq), value: eq < 0 ? '' : kv.slice(eq + 1) };
      }),
    ),
    comment: d.comment ?? null,
    securityLabels: labels.rows.map((l) => ({ provider: l.provider, label: l.label })),
    connectionLimit: d.connlimit,
    isTemplate: d.istemplate,
    allowConnections: d.allowconn,
    tablespace: d.tablespace ?? null,
  };
}

/** Role and tablespace names of the cluster `ci` connects to. */
export async function clusterNames(ci: ConnInfo, signal: AbortSignal): Promise<{ roles: Set<string>; tablespaces: Set<string> }> {
  return withClient(ci, signal, queryClusterNames);
}

/** clusterNames on a connection the caller holds. */
export async function queryClusterNames(c: pg.Client): Promise<{ roles: Set<string>; tablespaces: Set<string> }> {
  const roles = await c.query(`SELECT rolname FROM pg_roles`);
  const spc = await c.query(`SELECT spcname FROM pg_tablespace`);
  return { roles: new Set(roles.rows.map((r) => r.rolname as string)), tablespaces: new Set(spc.rows.map((r) => r.spcname as string)) };
}

/** CREATE DATABASE with the given clauses (dbprops.createClauses). Errors keep PostgreSQL's code. */
export async function createDatabaseWith(ci: ConnInfo, name: string, clauses: string[], signal: AbortSignal): Promise<void> {
  await withClient(ci, signal, async (c) => {
    await c.query(`CREATE DATABASE ${quoteIdent(name)} ${clauses.join(' ')}`);
  });
}
