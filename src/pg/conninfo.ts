/**
 * libpq connection strings, as libpq reads them: a postgres:// URL or a key=value string, then
 * the service file (PGSERVICE / service=), then the PG* environment, then defaults.
 * The result is one set of settings that pg_dump, psql (through their environment) and
 * node-postgres (conn.ts pgAttempts) all get. Errors never repeat a value that may be a password.
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../support/errors.js';

/** libpq's connection keywords and the environment variable each one falls back to (null: none). */
export const KEYWORDS: Record<string, string | null> = {
  host: 'PGHOST',
  hostaddr: 'PGHOSTADDR',
  port: 'PGPORT',
  dbname: 'PGDATABASE',
  user: 'PGUSER',
  password: 'PGPASSWORD',
  passfile: 'PGPASSFILE',
  require_auth: 'PGREQUIREAUTH',
  channel_binding: 'PGCHANNELBINDING',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  client_encoding: 'PGCLIENTENCODING',
  options: 'PGOPTIONS',
  application_name: 'PGAPPNAME',
  fallback_application_name: null,
  keepalives: null,
  keepalives_idle: null,
  keepalives_interval: null,
  keepalives_count: null,
  tcp_user_timeout: null,
  replication: null,
  gssencmode: 'PGGSSENCMODE',
  sslmode: 'PGSSLMODE',
  requiressl: 'PGREQUIRESSL',
  sslnegotiation: 'PGSSLNEGOTIATION',
  sslcompression: 'PGSSLCOMPRESSION',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  sslpassword: null,
  sslcertmode: 'PGSSLCERTMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcrl: 'PGSSLCRL',
  sslcrldir: 'PGSSLCRLDIR',
  sslsni: 'PGSSLSNI',
  sslkeylogfile: null,
  requirepeer: 'PGREQUIREPEER',
  ssl_min_protocol_version: 'PGSSLMINPROTOCOLVERSION',
  ssl_max_protocol_version: 'PGSSLMAXPROTOCOLVERSION',
  min_protocol_version: 'PGMINPROTOCOLVERSION',
  max_protocol_version: 'PGMAXPROTOCOLVERSION',
  krbsrvname: 'PGKRBSRVNAME',
  gsslib: 'PGGSSLIB',
  gssdelegation: 'PGGSSDELEGATION',
  service: 'PGSERVICE',
  servicefile: 'PGSERVICEFILE',
  target_session_attrs: 'PGTARGETSESSIONATTRS',
  load_balance_hosts: 'PGLOADBALANCEHOSTS',
  scram_client_key: null,
  scram_server_key: null,
  oauth_issuer: null,
  oauth_client_id: null,
  oauth_client_secret: null,
  oauth_scope: null,
};

/** Variables libpq reads that are no connection keyword: passed to pg_dump / psql as they are. */
export const ENV_ONLY = ['PGDATESTYLE', 'PGTZ', 'PGGEQO', 'PGLOCALEDIR'];

/**
 * Keywords pgbackup refuses: node-postgres cannot honour them, or pg_dump / psql could only get
 * them on their command line (libpq has no environment variable for them).
 */
const REFUSED: Record<string, string> = {
  replication: 'a replication connection cannot run pg_dump or metadata queries',
  sslpassword: 'libpq takes it only from the connection string, which would put it on pg_dump\'s command line; decrypt the key file instead (openssl pkey -in key -out key.plain)',
  keepalives: 'libpq has no environment variable for it, so pg_dump and psql could not get it; set the TCP keepalive defaults of the system instead',
  keepalives_idle: 'libpq has no environment variable for it, so pg_dump and psql could not get it',
  keepalives_interval: 'libpq has no environment variable for it, so pg_dump and psql could not get it',
  keepalives_count: 'libpq has no environment variable for it, so pg_dump and psql could not get it',
  tcp_user_timeout: 'libpq has no environment variable for it, so pg_dump and psql could not get it',
  sslkeylogfile: 'not supported by pgbackup',
  require_auth: 'node-postgres (used for the metadata connection) cannot restrict the authentication methods it accepts',
  requirepeer: 'node-postgres (used for the metadata connection) cannot check the peer of a Unix socket',
  min_protocol_version: 'node-postgres speaks protocol 3.0 only',
  max_protocol_version: 'node-postgres speaks protocol 3.0 only',
  scram_client_key: 'node-postgres cannot authenticate with SCRAM keys',
  scram_server_key: 'node-postgres cannot authenticate with SCRAM keys',
  oauth_issuer: 'node-postgres cannot authenticate with OAuth',
  oauth_client_id: 'node-postgres cannot authenticate with OAuth',
  oauth_client_secret: 'node-postgres cannot authenticate with OAuth',
  oauth_scope: 'node-postgres cannot authenticate with OAuth',
};

const SECRET_KEYWORDS = new Set(['password', 'sslpassword', 'oauth_client_secret', 'scram_client_key', 'scram_server_key']);

export type Settings = Map<string, string>;

export function isUri(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s);
}

function bad(field: string, what: string): UsageError {
  return new UsageError(`${field}: ${what}`);
}

/** Parse a connection string (URL or key=value) into the settings it gives explicitly. */
export function parseConnString(s: string, field = '--database'): Settings {
  return isUri(s) ? parseUri(s, field) : parseKeyValue(s, field);
}

/** libpq's key=value form: `host=db dbname='my db' password='it\'s'` (quotes, backslash escapes). */
export function parseKeyValue(s: string, field = '--database'): Settings {
  const out: Settings = new Map();
  let i = 0;
  const n = s.length;
  const ws = (c: string | undefined) => c !== undefined && /\s/.test(c);
  while (i < n) {
    while (ws(s[i])) i++;
    if (i >= n) break;
    let key = '';
    while (i < n && s[i] !== '=' && !ws(s[i])) key += s[i++];
    while (ws(s[i])) i++;
    if (s[i] !== '=') {
      // Never repeat any of it: a malformed string may hold a password anywhere.
      throw bad(field, /^[a-z]+:\/\//i.test(s) ? 'not a postgres:// URL or key=value connection string' : `setting #${out.size + 1} of the connection string has no "=" (expected key=value pairs, or a postgres:// URL)`);
    }
    i++;
    while (ws(s[i])) i++;
    let val = '';
    if (s[i] === "'") {
      i++;
      let closed = false;
      while (i < n) {
        const c = s[i]!;
        if (c === '\\' && i + 1 < n) {
          val += s[i + 1];
          i += 2;
        } else if (c === "'") {
          i++;
          closed = true;
          break;
        } else {
          val += c;
          i++;
        }
      }
      if (!closed) throw bad(field, `unterminated quoted value for "${key}" in the connection string`);
    } else {
      while (i < n && !ws(s[i])) {
        if (s[i] === '\\' && i + 1 < n) {
          val += s[i + 1];
          i += 2;
        } else val += s[i++];
      }
    }
    if (!(key in KEYWORDS)) throw bad(field, `setting #${out.size + 1} of the connection string is not a libpq connection option${/^[a-z_]{1,32}$/.test(key) && /_|mode|ssl|host|port|db|user|name|file|timeout/.test(key) ? ` ("${key}")` : ''}`);
    out.set(key, val);
  }
  return out;
}

function pctDecode(s: string, field: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw bad(field, 'bad percent-encoding in the URL');
  }
}

/** libpq's URI form, including several hosts (`postgres://h1:5432,h2:5433/db`) and `[::1]`. */
export function parseUri(s: string, field = '--database'): Settings {
  const out: Settings = new Map();
  let rest = s.replace(/^postgres(ql)?:\/\//i, '');
  // user info: up to the first '@' before the first '/' or '?'
  const endAuthority = rest.search(/[/?]/);
  const authority = endAuthority < 0 ? rest : rest.slice(0, endAuthority);
  rest = endAuthority < 0 ? '' : rest.slice(endAuthority);
  let hostspec = authority;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    hostspec = authority.slice(at + 1);
    const colon = userinfo.indexOf(':');
    const user = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
    if (user) out.set('user', pctDecode(user, field));
    if (colon >= 0) out.set('password', pctDecode(userinfo.slice(colon + 1), field));
  }
  if (hostspec) {
    const hosts: string[] = [];
    const ports: string[] = [];
    for (const h of hostspec.split(',')) {
      let host = h;
      let port = '';
      const v6 = /^\[([^\]]*)\](?::(.*))?$/.exec(h);
      if (v6) {
        host = v6[1]!;
        port = v6[2] ?? '';
      } else if (h.includes('[') || h.includes(']')) {
        throw bad(field, 'bad IPv6 address in the URL');
      } else {
        const c = h.lastIndexOf(':');
        if (c >= 0) {
          host = h.slice(0, c);
          port = h.slice(c + 1);
        }
      }
      hosts.push(pctDecode(host, field));
      ports.push(pctDecode(port, field));
    }
    if (hosts.some((h) => h !== '')) out.set('host', hosts.join(','));
    if (ports.some((p) => p !== '')) out.set('port', ports.join(','));
  }
  if (rest.startsWith('/')) {
    const q = rest.indexOf('?');
    const db = q < 0 ? rest.slice(1) : rest.slice(1, q);
    if (db) out.set('dbname', pctDecode(db, field));
    rest = q < 0 ? '' : rest.slice(q);
  }
  if (rest.startsWith('?')) {
    const unknown: string[] = [];
    for (const part of rest.slice(1).split('&')) {
      if (!part) continue;
      const eq = part.indexOf('=');
      if (eq < 0) throw bad(field, 'a URL query parameter has no "=" (expected ?key=value&key=value)');
      let k = pctDecode(part.slice(0, eq), field);
      let v = pctDecode(part.slice(eq + 1), field);
      if (k === 'ssl' && v === 'true') {
        k = 'sslmode';
        v = 'require';
      }
      if (!(k in KEYWORDS)) unknown.push(k);
      else out.set(k, v);
    }
    if (unknown.length) throw bad(field, `unknown connection parameter(s): ${unknown.join(', ')}`);
  }
  return out;
}

/** Whether a connection string gives a password itself (for the command-line warning). */
export function givesPassword(s: string): boolean {
  try {
    const v = parseConnString(s);
    return Boolean(v.get('password'));
  } catch {
    return /^postgres(ql)?:\/\/[^/?@]*:[^/?@]*@/i.test(s) || /(^|\s)password\s*=/.test(s);
  }
}

/** The home directory libpq uses (HOME, else the account's). */
export function homeDir(env: NodeJS.ProcessEnv): string {
  if (env.HOME) return env.HOME;
  try {
    return userInfo().homedir;
  } catch {
    return homedir();
  }
}

/** Parse a pg_service.conf text: [name] sections of key=value lines; # comments. */
export function parseServiceFile(text: string, file: string): Map<string, Settings> {
  const out = new Map<string, Settings>();
  let cur: Settings | null = null;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const sec = /^\[(.*)\]$/.exec(line);
    if (sec) {
      const name = sec[1]!.trim();
      cur = out.get(name) ?? new Map();
      out.set(name, cur);
      return;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new UsageError(`${file}: syntax error on line ${i + 1} (expected key=value)`);
    const k = line.slice(0, eq).trim();
    const v = line.slice(eq + 1).trim();
    if (!cur) return; // libpq ignores settings outside a section
    if (k === 'service') throw new UsageError(`${file}: line ${i + 1}: nested service specifications are not supported`);
    if (!(k in KEYWORDS)) throw new UsageError(`${file}: line ${i + 1}: invalid connection option "${k}"`);
    (cur).set(k, v);
  });
  return out;
}

function readIfExists(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw new UsageError(`service file ${path}: cannot read it (${(e as NodeJS.ErrnoException).code})`);
  }
}

/** The system-wide service file folder: PGSYSCONFDIR, else where distributions' libpq looks. */
function sysconfDirs(env: NodeJS.ProcessEnv): string[] {
  if (env.PGSYSCONFDIR) return [env.PGSYSCONFDIR];
  return ['/etc/postgresql-common', '/etc/sysconfig/pgsql', '/usr/local/pgsql/etc', '/etc'];
}

/**
 * Settings of service `name`: the user's file (servicefile / PGSERVICEFILE, else
 * ~/.pg_service.conf) first, then the system's pg_service.conf, as libpq searches.
 */
export function lookupService(name: string, servicefile: string | undefined, env: NodeJS.ProcessEnv): Settings {
  const files = [servicefile ?? join(homeDir(env), '.pg_service.conf'), ...sysconfDirs(env).map((d) => join(d, 'pg_service.conf'))];
  for (const f of files) {
    const text = readIfExists(f);
    if (text === null) {
      if (f === servicefile) throw new UsageError(`service file "${f}" not found`);
      continue;
    }
    const svc = parseServiceFile(text, f).get(name);
    if (svc) return svc;
  }
  throw new UsageError(`definition of service "${name}" not found (looked in ${files.join(', ')})`);
}

const CHOICES: Record<string, string[]> = {
  sslmode: ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'],
  gssencmode: ['disable', 'prefer', 'require'],
  channel_binding: ['disable', 'prefer', 'require'],
  sslnegotiation: ['postgres', 'direct'],
  sslcertmode: ['disable', 'allow', 'require'],
  target_session_attrs: ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby'],
  load_balance_hosts: ['disable', 'random'],
  ssl_min_protocol_version: ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'],
  ssl_max_protocol_version: ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'],
};

/**
 * Everything libpq would use: explicit settings, then the service file, then the environment
 * (libpq's precedence). `service` and `servicefile` are consumed here: the children get the
 * resolved values, never the service name (a service file would otherwise override the
 * environment we give them). Checks values and refuses what a client cannot honour.
 */
export function resolveSettings(explicit: Settings, env: NodeJS.ProcessEnv | undefined, field = '--database'): Settings {
  const s: Settings = new Map(explicit);
  const problems: string[] = [];
  if (env) {
    const service = s.get('service') ?? (env.PGSERVICE || undefined);
    if (service) {
      const svc = lookupService(service, s.get('servicefile') ?? (env.PGSERVICEFILE || undefined), env);
      for (const [k, v] of svc) if (!s.has(k)) s.set(k, v);
    }
    for (const [k, envVar] of Object.entries(KEYWORDS)) {
      if (envVar && !s.has(k) && env[envVar]) s.set(k, env[envVar]);
    }
  }
  s.delete('service');
  s.delete('servicefile');
  for (const [k, why] of Object.entries(REFUSED)) if (s.has(k)) problems.push(`${field}: "${k}" is not supported: ${why}`);
  if (s.has('requiressl')) {
    const v = s.get('requiressl')!;
    if (v !== '0' && v !== '1') problems.push(`${field}: requiressl must be 0 or 1`);
    if (v === '1' && !s.has('sslmode')) s.set('sslmode', 'require');
    s.delete('requiressl');
  }
  if (s.get('sslrootcert') === 'system') {
    // libpq 16: the system's roots only make sense with host name checks.
    if (!s.has('sslmode')) s.set('sslmode', 'verify-full');
    else if (s.get('sslmode') !== 'verify-full') problems.push(`${field}: sslrootcert=system needs sslmode=verify-full (weak sslmode "${s.get('sslmode')}" may not be used with it)`);
  }
  for (const [k, allowed] of Object.entries(CHOICES)) {
    const v = s.get(k);
    if (v !== undefined && v !== '' && !allowed.includes(v)) problems.push(`${field}: invalid ${k} value "${v}" (one of ${allowed.join(', ')})`);
  }
  if (s.get('gssencmode') === 'require') problems.push(`${field}: gssencmode=require is not supported: node-postgres (used for the metadata connection) has no GSSAPI encryption`);
  if (s.get('sslcertmode') === 'require') problems.push(`${field}: sslcertmode=require is not supported: node-postgres cannot tell whether the server asked for the certificate`);
  if (s.get('sslnegotiation') === 'direct' && !['require', 'verify-ca', 'verify-full'].includes(s.get('sslmode') ?? '')) {
    problems.push(`${field}: sslnegotiation=direct needs sslmode require, verify-ca or verify-full`);
  }
  const hosts = (s.get('host') ?? '').split(',');
  const addrs = (s.get('hostaddr') ?? '').split(',');
  const ports = (s.get('port') ?? '').split(',');
  if (hosts.length > 1 || addrs.length > 1 || ports.length > 1) {
    problems.push(`${field}: several hosts are not supported: node-postgres (used for the metadata connection) connects to one host, and pg_dump could pick another; give one host`);
  }
  const port = s.get('port');
  if (port !== undefined && port !== '' && !(/^\d+$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) problems.push(`${field}: bad port`);
  const ct = s.get('connect_timeout');
  if (ct !== undefined && ct !== '' && !/^-?\d+$/.test(ct)) problems.push(`${field}: connect_timeout must be a whole number of seconds`);
  if (problems.length) throw new UsageError(problems);
  for (const [k, v] of s) if (v === '' && !SECRET_KEYWORDS.has(k)) s.delete(k);
  return s;
}

/** The default user libpq uses: the operating system's. */
export function osUser(env: NodeJS.ProcessEnv): string {
  try {
    return userInfo().username;
  } catch {
    return env.USER ?? 'postgres';
  }
}

/** Unescape a .pgpass field: `\:` and `\\`. Returns the fields of one line. */
function pgpassFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
    } else if (c === ':' && out.length < 4) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

export const DEFAULT_SOCKET_DIR = '/var/run/postgresql';

/**
 * The password libpq would take from the password file (passfile / PGPASSFILE, else ~/.pgpass):
 * host:port:database:user:password lines, `*` matches anything, `\:` and `\\` escape. A file
 * readable by group or others is ignored with a warning, as libpq does.
 */
export function passwordFromFile(
  opts: { passfile?: string | undefined; host?: string | undefined; port?: string | number | undefined; database?: string | undefined; user: string },
  env: NodeJS.ProcessEnv,
  warn: (msg: string) => void = () => undefined,
): string | undefined {
  const file = opts.passfile ?? join(homeDir(env), '.pgpass');
  let st;
  try {
    st = statSync(file);
  } catch {
    return undefined;
  }
  if (!st.isFile()) {
    warn(`password file "${file}" is not a plain file`);
    return undefined;
  }
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    warn(`password file "${file}" has group or world access; permissions should be u=rw (0600) or less`);
    return undefined;
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let host = opts.host ?? '';
  if (host === '' || host === DEFAULT_SOCKET_DIR) host = 'localhost';
  const port = String(opts.port ?? '5432');
  const db = opts.database ?? opts.user;
  for (const raw of text.split(/\r?\n/)) {
    if (!raw || raw.startsWith('#')) continue;
    const f = pgpassFields(raw);
    if (f.length < 5) continue;
    const [h, p, d, u, pw] = f as [string, string, string, string, string];
    const ok = (pat: string, v: string) => pat === '*' || pat === v;
    if (ok(h, host) && ok(p, port) && ok(d, db) && ok(u, opts.user)) return pw;
  }
  return undefined;
}

/** Flags whose value is a connection string. */
const CONN_FLAGS = ['--database', '--to', '--restore-into'];

/** `s` with its password replaced by `***` (URL or key=value). */
export function maskPassword(s: string): string {
  if (isUri(s)) return s.replace(/^(postgres(?:ql)?:\/\/[^/?@:]*:)[^/?@]*@/i, '$1***@').replace(/([?&]password=)[^&]*/gi, '$1***');
  return s.replace(/(^|\s)(password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)/g, '$1$2***');
}

/**
 * Connection strings on the command line that hold a password: the flags that gave them, and
 * the command line with the passwords masked (for process.title).
 */
export function commandLinePasswords(argv: readonly string[]): { flags: string[]; masked: string[] } {
  const flags: string[] = [];
  const masked = [...argv];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    if (!CONN_FLAGS.includes(name)) continue;
    const inline = name !== a;
    const idx = inline ? i : i + 1;
    const value = inline ? a.slice(eq + 1) : argv[idx];
    if (value === undefined || !givesPassword(value)) continue;
    flags.push(name);
    masked[idx] = inline ? `${name}=${maskPassword(value)}` : maskPassword(value);
  }
  return { flags, masked };
}
