/**
 * PostgreSQL connection settings: one description from a postgres:// URL or key=value string,
 * the service file and the libpq PG* variables (conninfo.ts), given alike to pg_dump / psql
 * (childEnv) and node-postgres (pgAttempts). The password stays in a Secret and reaches
 * children only through their environment.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { Secret } from '../support/secret.js';
import { DEFAULT_SOCKET_DIR, ENV_ONLY, KEYWORDS, homeDir, osUser, parseConnString, passwordFromFile, resolveSettings, type Settings } from './conninfo.js';

export interface ConnInfo {
  host?: string | undefined;
  port?: number | undefined;
  user?: string | undefined;
  database?: string | undefined;
  password?: Secret | undefined;
  /** Other libpq settings, as PG* environment variable name -> value. */
  extra: Record<string, string>;
}

/** Settings -> ConnInfo: the five basic ones as fields, the rest by their PG* variable. */
function toConnInfo(s: Settings, env: NodeJS.ProcessEnv | undefined): ConnInfo {
  const ci: ConnInfo = { extra: {} };
  for (const [k, v] of s) {
    if (k === 'host') ci.host = v;
    else if (k === 'port') ci.port = Number(v);
    else if (k === 'user') ci.user = v;
    else if (k === 'dbname') ci.database = v;
    else if (k === 'password') ci.password = new Secret(v);
    else if (KEYWORDS[k]) ci.extra[KEYWORDS[k]] = v;
  }
  if (env) for (const k of ENV_ONLY) if (env[k]) ci.extra[k] = env[k]!;
  return ci;
}

/**
 * The connection a URL or key=value string describes, completed as libpq completes it: the
 * service file, then the PG* environment (when `env` is given), for what the string leaves
 * unset. The message of a bad one never repeats the string (it may hold a password).
 */
export function connFromUrl(url: string, field = '--database', env?: NodeJS.ProcessEnv): ConnInfo {
  return toConnInfo(resolveSettings(parseConnString(url, field), env, field), env);
}

/** Whether a connection string names a database itself (not through PGDATABASE). */
export function namesDatabase(url: string, field = '--database'): boolean {
  return Boolean(parseConnString(url, field).get('dbname'));
}

/** Settings from the libpq environment variables (and PGSERVICE's service file). */
export function connFromEnv(env: NodeJS.ProcessEnv): ConnInfo {
  return toConnInfo(resolveSettings(new Map(), env, 'environment'), env);
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

/** One way node-postgres tries to connect (libpq's sslmode may give two, tried in order). */
export interface PgAttempt {
  /** "TLS" or "without TLS", for messages. */
  label: string;
  config: Record<string, unknown>;
}

/** Checks made on a connection once it is open (what libpq checks before handing it over). */
export interface SessionChecks {
  targetSessionAttrs: string;
  channelBinding: string;
}

export function sessionChecks(ci: ConnInfo): SessionChecks {
  return { targetSessionAttrs: ci.extra.PGTARGETSESSIONATTRS ?? 'any', channelBinding: ci.extra.PGCHANNELBINDING ?? 'prefer' };
}

function fileOrNull(path: string): Buffer | null {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new Error(`cannot read ${path}: ${code}`, { cause: e });
  }
}

/**
 * TLS options with libpq's meaning. `verify`: 'chain' checks the certificate chain against the
 * root certificate (sslrootcert, default ~/.postgresql/root.crt; "system": Node's trusted roots),
 * 'full' also the host name (the `host` setting, also when `hostaddr` is where we connect),
 * 'auto' (require, prefer, allow) checks the chain when a root certificate file exists, as libpq
 * does, else nothing. Client certificate: sslcert / sslkey, default ~/.postgresql/postgresql.crt
 * and .key when present. CRL: sslcrl (file) and sslcrldir.
 */
function tlsOptions(ci: ConnInfo, env: NodeJS.ProcessEnv, verify: 'auto' | 'chain' | 'full', host: string): Record<string, unknown> {
  const x = ci.extra;
  const pgdir = join(homeDir(env), '.postgresql');
  const o: Record<string, unknown> = { minVersion: x.PGSSLMINPROTOCOLVERSION ?? 'TLSv1.2' };
  if (x.PGSSLMAXPROTOCOLVERSION) o.maxVersion = x.PGSSLMAXPROTOCOLVERSION;
  const rootPath = x.PGSSLROOTCERT ?? join(pgdir, 'root.crt');
  let haveRoot = false;
  if (rootPath === 'system') {
    haveRoot = true; // Node's default trusted roots: no `ca`
  } else {
    const ca = fileOrNull(rootPath);
    if (ca) {
      o.ca = ca;
      haveRoot = true;
    } else if (verify !== 'auto') {
      throw new Error(
        `root certificate file "${rootPath}" does not exist: give it (sslrootcert / PGSSLROOTCERT), use sslrootcert=system for the system's trusted roots, or change sslmode to disable server certificate verification`,
      );
    }
  }
  if (haveRoot) {
    o.rejectUnauthorized = true;
    if (verify === 'full') {
      o.checkServerIdentity = (_h: string, cert: PeerCertificate) => checkServerIdentity(host, cert);
    } else {
      o.checkServerIdentity = () => undefined;
    }
    const crls: Buffer[] = [];
    const crl = fileOrNull(x.PGSSLCRL ?? join(pgdir, 'root.crl'));
    if (crl) crls.push(crl);
    if (x.PGSSLCRLDIR) {
      let names: string[] = [];
      try {
        names = readdirSync(x.PGSSLCRLDIR);
      } catch {
        /* libpq ignores a missing folder */
      }
      for (const n of names) {
        const b = fileOrNull(join(x.PGSSLCRLDIR, n));
        if (b) crls.push(b);
      }
    }
    if (crls.length) o.crl = crls;
  } else {
    o.rejectUnauthorized = false;
  }
  if (isIP(host) === 0 && host) o.servername = host;
  if (x.PGSSLCERTMODE !== 'disable') {
    const certPath = x.PGSSLCERT ?? join(pgdir, 'postgresql.crt');
    const cert = fileOrNull(certPath);
    if (cert) {
      const keyPath = x.PGSSLKEY ?? join(pgdir, 'postgresql.key');
      let st;
      try {
        st = statSync(keyPath);
      } catch {
        throw new Error(`certificate present, but not private key file "${keyPath}"`);
      }
      if (!st.isFile()) throw new Error(`private key file "${keyPath}" is not a regular file`);
      const limit = st.uid === 0 && process.getuid?.() !== 0 ? 0o037 : 0o077;
      if ((st.mode & limit) !== 0) {
        throw new Error(`private key file "${keyPath}" has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root`);
      }
      o.cert = cert;
      o.key = readFileSync(keyPath);
    }
  }
  return o;
}

/**
 * How node-postgres connects for `ci`, in the order to try: libpq's sslmode semantics.
 * disable: plain. allow: plain, then TLS. prefer (the default): TLS, then plain (node-postgres
 * cannot fall back inside one connection, so a failed TLS attempt is followed by a plain one,
 * as libpq does). require: TLS (chain checked when a root certificate file exists).
 * verify-ca: TLS, chain. verify-full: TLS, chain and host name. A Unix socket never uses TLS.
 */
export function pgAttempts(ci: ConnInfo, env: NodeJS.ProcessEnv = process.env): PgAttempt[] {
  const x = ci.extra;
  const host = ci.host ?? DEFAULT_SOCKET_DIR;
  const connectTo = x.PGHOSTADDR ?? host;
  const user = ci.user ?? osUser(env);
  const database = ci.database ?? user;
  const timeout = Number(x.PGCONNECT_TIMEOUT ?? 10);
  const options = [x.PGOPTIONS, x.PGDATESTYLE && `-c datestyle=${x.PGDATESTYLE}`, x.PGTZ && `-c timezone=${x.PGTZ}`, x.PGGEQO && `-c geqo=${x.PGGEQO}`].filter(Boolean).join(' ');
  const password = ci.password
    ? ci.password.reveal()
    : passwordFromFile({ passfile: x.PGPASSFILE, host: ci.host, port: ci.port, database, user }, env);
  const base: Record<string, unknown> = {
    host: connectTo,
    port: ci.port ?? 5432,
    user,
    database,
    // A function: node-postgres then never reads ~/.pgpass on its own (we did, as libpq does).
    password: () => Promise.resolve(password),
    connectionTimeoutMillis: timeout > 0 ? Math.max(timeout, 2) * 1000 : 0,
    application_name: x.PGAPPNAME ?? 'pgbackup',
    options: options || undefined,
    enableChannelBinding: x.PGCHANNELBINDING !== 'disable',
    sslnegotiation: x.PGSSLNEGOTIATION ?? 'postgres',
    keepAlive: true,
  };
  const isSocket = connectTo.startsWith('/') || connectTo.startsWith('@');
  const mode = x.PGSSLMODE ?? 'prefer';
  const plain: PgAttempt = { label: 'without TLS', config: { ...base, ssl: false, sslnegotiation: 'postgres' } };
  if (isSocket || mode === 'disable') return [plain];
  const verify = mode === 'verify-full' ? 'full' : mode === 'verify-ca' ? 'chain' : 'auto';
  const tls: PgAttempt = { label: 'TLS', config: { ...base, ssl: tlsOptions(ci, env, verify, host) } };
  if (mode === 'allow') return [plain, tls];
  if (mode === 'prefer') return [tls, plain];
  return [tls];
}

/** For messages: user@host:port/db, no password. */
export function describeConn(ci: ConnInfo): string {
  return `${ci.user ? `${ci.user}@` : ''}${ci.host ?? 'localhost'}${ci.port ? `:${ci.port}` : ''}/${ci.database ?? ''}`;
}
