/**
 * PostgreSQL connection settings: from a postgres:// URL or the libpq PG* variables.
 * Pure: the password stays in a Secret and reaches children only through their environment.
 */
import { UsageError } from './errors.js';
import { Secret } from './secret.js';

export interface ConnInfo {
  host?: string | undefined;
  port?: number | undefined;
  user?: string | undefined;
  database?: string | undefined;
  password?: Secret | undefined;
  /** Other libpq settings, as PG* environment variable name -> value. */
  extra: Record<string, string>;
}

const PARAM_ENV: Record<string, string> = {
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  sslcrl: 'PGSSLCRL',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  application_name: 'PGAPPNAME',
  options: 'PGOPTIONS',
  target_session_attrs: 'PGTARGETSESSIONATTRS',
  passfile: 'PGPASSFILE',
  service: 'PGSERVICE',
  gssencmode: 'PGGSSENCMODE',
  channel_binding: 'PGCHANNELBINDING',
};

const ENV_PASSTHROUGH = [...Object.values(PARAM_ENV), 'PGSERVICEFILE', 'PGREQUIRESSL', 'PGSSLNEGOTIATION', 'PGSYSCONFDIR'];

/** Parse a postgres:// URL. The message of a bad one never repeats the URL (it may hold a password). */
export function connFromUrl(url: string, field = '--database'): ConnInfo {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`${field}: not a valid URL (expected postgres://user:password@host:port/dbname)`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new UsageError(`${field}: unsupported scheme "${u.protocol.replace(/:$/, '')}" (expected postgres:// or postgresql://)`);
  }
  const dec = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new UsageError(`${field}: bad percent-encoding in the URL`);
    }
  };
  const ci: ConnInfo = { extra: {} };
  if (u.hostname) ci.host = dec(u.hostname.replace(/^\[(.*)\]$/, '$1'));
  if (u.port) {
    const p = Number(u.port);
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new UsageError(`${field}: bad port`);
    ci.port = p;
  }
  if (u.username) ci.user = dec(u.username);
  if (u.password) ci.password = new Secret(dec(u.password));
  const path = u.pathname.replace(/^\//, '');
  if (path) ci.database = dec(path);
  const bad: string[] = [];
  for (const [k, v] of u.searchParams) {
    if (k === 'host') ci.host = v;
    else if (k === 'port') ci.port = Number(v);
    else if (k === 'user') ci.user = v;
    else if (k === 'dbname') ci.database = v;
    else if (k === 'password') ci.password = new Secret(v);
    else if (PARAM_ENV[k]) ci.extra[PARAM_ENV[k]!] = v;
    else bad.push(k);
  }
  if (bad.length) throw new UsageError(`${field}: unknown connection parameter(s): ${bad.join(', ')}`);
  if (ci.port !== undefined && (!Number.isInteger(ci.port) || ci.port < 1 || ci.port > 65535)) throw new UsageError(`${field}: bad port`);
  return ci;
}

/** Settings from the libpq environment variables. */
export function connFromEnv(env: NodeJS.ProcessEnv): ConnInfo {
  const ci: ConnInfo = { extra: {} };
  if (env.PGHOST) ci.host = env.PGHOST;
  if (env.PGPORT) {
    const p = Number(env.PGPORT);
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new UsageError('PGPORT: not a port number');
    ci.port = p;
  }
  if (env.PGUSER) ci.user = env.PGUSER;
  if (env.PGDATABASE) ci.database = env.PGDATABASE;
  if (env.PGPASSWORD) ci.password = new Secret(env.PGPASSWORD);
  for (const k of ENV_PASSTHROUGH) if (env[k]) ci.extra[k] = env[k]!;
  return ci;
}

export function withDatabase(ci: ConnInfo, database: string): ConnInfo {
  return { ...ci, database };
}

/** Environment for pg_dump / psql: PG* variables only; the password never becomes an argument. */
export function childEnv(ci: ConnInfo, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (k.startsWith('PG') || k === 'DATABASE_URL' || k.startsWith('AWS_') || k.startsWith('PGBACKUP_')) continue;
    env[k] = v;
  }
  if (ci.host) env.PGHOST = ci.host;
  if (ci.port) env.PGPORT = String(ci.port);
  if (ci.user) env.PGUSER = ci.user;
  if (ci.database) env.PGDATABASE = ci.database;
  if (ci.password) env.PGPASSWORD = ci.password.reveal();
  if (base.PGPASSFILE && !ci.extra.PGPASSFILE) env.PGPASSFILE = base.PGPASSFILE;
  Object.assign(env, ci.extra);
  env.PGCONNECT_TIMEOUT ??= '10';
  return env;
}

/** Options for node-postgres (metadata queries: version, size, table list, row counts). */
export function pgConfig(ci: ConnInfo, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const sslmode = ci.extra.PGSSLMODE;
  let ssl: unknown = undefined;
  if (sslmode === 'require' || sslmode === 'prefer') ssl = sslmode === 'require' ? { rejectUnauthorized: false } : undefined;
  if (sslmode === 'verify-ca' || sslmode === 'verify-full') ssl = { rejectUnauthorized: true };
  const host = ci.host ?? (env.PGHOST ? env.PGHOST : undefined);
  return {
    host: host ?? '/var/run/postgresql',
    port: ci.port ?? 5432,
    user: ci.user ?? env.USER ?? 'postgres',
    database: ci.database ?? ci.user ?? env.USER ?? 'postgres',
    password: ci.password?.reveal(),
    ssl,
    connectionTimeoutMillis: Number(ci.extra.PGCONNECT_TIMEOUT ?? 10) * 1000,
    application_name: 'pgbackup',
  };
}

/** For messages: user@host:port/db, no password. */
export function describeConn(ci: ConnInfo): string {
  return `${ci.user ? `${ci.user}@` : ''}${ci.host ?? 'localhost'}${ci.port ? `:${ci.port}` : ''}/${ci.database ?? ''}`;
}
