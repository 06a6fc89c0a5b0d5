/**
 * Flags + environment -> frozen, typed configuration (zod). A flag wins over its variable.
 * No I/O here: files named by flags are read by the commands. Every bad field is named;
 * no value that may be a secret is ever echoed.
 */
import { z } from 'zod';
import { UsageError } from '../support/errors.js';
import { DEFAULT_QUEUE, MAX_PART, S3_MAX_PARTS } from '../model/plan.js';
import { connFromEnv, connFromUrl, namesDatabase, type ConnInfo } from '../pg/conn.js';
import { TIERS, type Tier } from '../model/keys.js';
import { DEFAULT_RETENTION, type RetentionDays } from '../model/lifecycle.js';
import { parseTarget, parseEnvTargets, targetId, type Target } from '../storage/target.js';

export { parseTarget };
import type { Parsed } from '../cli/args.js';
import { recipientKind, recipientProblem } from '../crypto/age.js';
import { parseQualifiedPattern, parseSchemaPattern, type Selection } from '../model/selection.js';

export type Env = NodeJS.ProcessEnv;

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tib: 1024 ** 4 };
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export const sizeSchema = z.string().transform((s, ctx) => {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(s);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a size: "${s}" (e.g. 16MiB, 64M, 1GiB)` });
    return z.NEVER;
  }
  return Math.round(Number(m[1]) * unit);
});

export const durationSchema = z.string().transform((s, ctx) => {
  const parts = s.trim().match(/^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/) ? [...s.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)] : null;
  if (!parts || parts.length === 0) {
    ctx.addIssue({ code: 'custom', message: `not a duration: "${s}" (e.g. 90s, 10m, 2h, 1h30m)` });
    return z.NEVER;
  }
  const ms = parts.reduce((t, p) => t + Number(p[1]) * DURATION_UNITS[p[2]!]!, 0);
  if (ms <= 0) {
    ctx.addIssue({ code: 'custom', message: 'must be longer than zero' });
    return z.NEVER;
  }
  return ms;
});

const intIn = (lo: number, hi: number) =>
  z.string().transform((s, ctx) => {
    const n = Number(s);
    if (!/^\d+$/.test(s.trim()) || n < lo || n > hi) {
      ctx.addIssue({ code: 'custom', message: `must be a whole number from ${lo} to ${hi}, not "${s}"` });
      return z.NEVER;
    }
    return n;
  });

const httpUrl = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}, 'not an http(s) URL');

/** Collects problems across fields so that one run names them all. */
class Problems {
  list: string[] = [];
  try<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (e) {
      if (e instanceof UsageError) this.list.push(...e.problems);
      else throw e;
      return undefined;
    }
  }
  zod<T>(field: string, schema: z.ZodType<T>, value: unknown): T | undefined {
    if (value === undefined) return undefined;
    const r = schema.safeParse(value);
    if (r.success) return r.data;
    for (const i of r.error.issues) this.list.push(`${field}: ${i.message}`);
    return undefined;
  }
  add(p: string): void {
    this.list.push(p);
  }
  done(): void {
    if (this.list.length) throw new UsageError(this.list);
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []);
const bool = (v: unknown): boolean => v === true;

export interface CommonConfig {
  logFormat: 'json' | 'pretty' | undefined;
  logLevel: string;
  quiet: boolean;
}

export function commonConfig(p: Parsed, env: Env): CommonConfig {
  const probs = new Problems();
  const fmt = probs.zod('--log-format', z.enum(['json', 'pretty']), str(p.values['log-format']));
  const level = probs.zod('--log-level', z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']), str(p.values['log-level']) ?? env.PGBACKUP_LOG_LEVEL);
  probs.done();
  const quiet = bool(p.values.quiet);
  return Object.freeze({ logFormat: fmt, logLevel: level ?? (quiet ? 'warn' : 'info'), quiet });
}

function source(p: Problems, flag: string, value: string | undefined, env: Env): ConnInfo | undefined {
  if (value !== undefined) return p.try(() => connFromUrl(value, flag, env));
  if (env.DATABASE_URL) return p.try(() => connFromUrl(env.DATABASE_URL!, 'DATABASE_URL', env));
  return p.try(() => connFromEnv(env));
}


export function retentionConfig(env: Env): RetentionDays {
  const probs = new Problems();
  const out: Record<string, number> = {};
  for (const t of TIERS) {
    const v = env[`PGBACKUP_KEEP_${t.toUpperCase()}_DAYS`];
    out[t] = v === undefined ? DEFAULT_RETENTION[t] : probs.zod(`PGBACKUP_KEEP_${t.toUpperCase()}_DAYS`, intIn(1, 36500), v) ?? 0;
  }
  probs.done();
  return Object.freeze(out as unknown as RetentionDays);
}

/** Checks a set of recipients: each valid, and no mix of post-quantum and classic keys. */
export function recipientProblems(recipients: readonly string[], where: (i: number) => string): string[] {
  const out: string[] = [];
  recipients.forEach((r, i) => {
    const prob = recipientProblem(r);
    // Show only the start of what was given: enough to find it, and a recipient is public anyway.
    if (prob) out.push(`${where(i)}: ${prob}: "${r.length > 16 ? r.slice(0, 12) + '...' : r}"`);
  });
  const kinds = new Set(recipients.filter((r) => !recipientProblem(r)).map(recipientKind));
  if (kinds.size > 1) {
    out.push('recipients: post-quantum (age1pq1...) and classic (age1...) recipients cannot be mixed in one backup: the classic ones would void the post-quantum protection');
  }
  return out;
}

/**
 * The multipart limits to plan for (S3's unless set): PGBACKUP_S3_MAX_PARTS and
 * PGBACKUP_S3_MAX_PART_SIZE, for S3-compatible services with other limits.
 */
export function partLimits(env: Env): { maxParts: number; maxPart: number } {
  const probs = new Problems();
  const maxParts = probs.zod('PGBACKUP_S3_MAX_PARTS', intIn(1, S3_MAX_PARTS), env.PGBACKUP_S3_MAX_PARTS || undefined) ?? S3_MAX_PARTS;
  const maxPart = probs.zod('PGBACKUP_S3_MAX_PART_SIZE', sizeSchema, env.PGBACKUP_S3_MAX_PART_SIZE || undefined) ?? MAX_PART;
  probs.done();
  return { maxParts, maxPart };
}

export interface BackupConfig {
  source: ConnInfo;
  /** The first of `targets`. */
  target: Target;
  /** Every target the backup goes to (--to repeated, or a list in PGBACKUP_TARGET): the same bytes, the same key. */
  targets: Target[];
  /** Neither --to nor PGBACKUP_TARGET: the default folder (the summary names its absolute path). */
  targetIsDefault: boolean;
  recipients: string[];
  recipientsFile: string | undefined;
  passphraseFile: string | undefined;
  noEncryption: boolean;
  compressLevel: number;
  tier: 'auto' | Tier;
  dumpOptions: string[];
  allDatabases: boolean;
  globals: boolean;
  partSize: number | undefined;
  queueSize: number;
  timeoutMs: number | undefined;
  stallMs: number;
  healthcheckUrl: string | undefined;
  webhookUrl: string | undefined;
  /** --prometheus FILE: the node_exporter textfile to update when the run ends. */
  prometheus: string | undefined;
  scryptLogN: number;
}

export function backupConfig(p: Parsed, env: Env): Readonly<BackupConfig> {
  const v = p.values;
  const probs = new Problems();
  const src = source(probs, '--database', str(v.database), env);
  const toFlags = strs(v.to);
  const targets =
    (toFlags.length
      ? toFlags.map((t, i) => probs.try(() => parseTarget(t, env, toFlags.length > 1 ? `--to #${i + 1}` : '--to')))
      : probs.try(() => parseEnvTargets(env.PGBACKUP_TARGET ?? './backups', env)) ?? []
    ).filter((t): t is Target => t !== undefined);
  const seenTargets = new Set<string>();
  for (const t of targets) {
    const id = targetId(t);
    if (seenTargets.has(id)) probs.add(`${toFlags.length ? '--to' : 'PGBACKUP_TARGET'}: ${id.replace(/^folder:/, '')} is named twice`);
    seenTargets.add(id);
  }
  const flagRecipients = strs(v.recipient);
  const envRecipients = (env.PGBACKUP_RECIPIENTS ?? '').split(/[\s,]+/).filter(Boolean);
  const recipients = flagRecipients.length ? flagRecipients : envRecipients;
  probs.list.push(...recipientProblems(recipients, (i) => (flagRecipients.length ? `--recipient #${i + 1}` : `PGBACKUP_RECIPIENTS #${i + 1}`)));
  const recipientsFile = str(v['recipients-file']) ?? (flagRecipients.length ? undefined : env.PGBACKUP_RECIPIENTS_FILE || undefined);
  const passphraseFile = str(v['passphrase-file']) ?? env.PGBACKUP_PASSPHRASE_FILE ?? undefined;
  const noEncryption = bool(v['no-encryption']);
  if (!noEncryption && recipients.length === 0 && !recipientsFile && !passphraseFile) {
    probs.add('encryption: no age recipient or passphrase given: use --recipient, --recipients-file or --passphrase-file (or PGBACKUP_RECIPIENTS), or --no-encryption to store the dump unencrypted');
  }
  if (noEncryption && (recipients.length || str(v['recipients-file']) || str(v['passphrase-file']))) {
    probs.add('--no-encryption: conflicts with --recipient / --recipients-file / --passphrase-file');
  }
  if (passphraseFile && (recipients.length || recipientsFile) && !noEncryption) {
    probs.add('--passphrase-file: age cannot encrypt to a passphrase and to recipients at once; give one or the other');
  }
  const compressLevel = probs.zod('--compress-level', intIn(0, 9), str(v['compress-level'])) ?? 6;
  const tier = probs.zod('--tier', z.enum(['auto', ...TIERS] as [string, ...string[]]), str(v.tier)) ?? 'auto';
  const partSize = probs.zod(str(v['part-size']) !== undefined ? '--part-size' : 'PGBACKUP_S3_PART_SIZE', sizeSchema, str(v['part-size']) ?? env.PGBACKUP_S3_PART_SIZE);
  if (partSize !== undefined && (partSize < 5 * 1024 ** 2 || partSize > 5 * 1024 ** 3)) probs.add('--part-size: S3 parts must be from 5MiB to 5GiB');
  const queueSize = probs.zod(str(v['queue-size']) !== undefined ? '--queue-size' : 'PGBACKUP_S3_QUEUE_SIZE', intIn(1, 64), str(v['queue-size']) ?? env.PGBACKUP_S3_QUEUE_SIZE) ?? DEFAULT_QUEUE;
  const timeoutMs = probs.zod('--timeout', durationSchema, str(v.timeout));
  const stallMs = probs.zod('--stall-timeout', durationSchema, str(v['stall-timeout'])) ?? 10 * 60_000;
  const healthcheckUrl = probs.zod('--healthcheck-url', httpUrl, str(v['healthcheck-url']));
  const webhookUrl = probs.zod('--webhook-url', httpUrl, str(v['webhook-url']));
  const prometheus = promFile(probs, v);
  const scryptLogN = probs.zod('PGBACKUP_SCRYPT_WORK_FACTOR', intIn(10, 22), env.PGBACKUP_SCRYPT_WORK_FACTOR) ?? 18;
  const dumpOptions: string[] = [];
  for (const [flag, pgFlag] of [
    ['schema', '--schema'],
    ['exclude-schema', '--exclude-schema'],
    ['table', '--table'],
    ['exclude-table', '--exclude-table'],
    ['exclude-table-data', '--exclude-table-data'],
  ] as const) {
    for (const pat of strs(v[flag])) {
      if (pat === '') probs.add(`--${flag}: empty pattern`);
      dumpOptions.push(`${pgFlag}=${pat}`);
    }
  }
  for (const f of ['column-inserts', 'no-owner', 'no-privileges'] as const) if (bool(v[f])) dumpOptions.push(`--${f}`);
  const allDatabases = bool(v['all-databases']);
  if (allDatabases && (strs(v.table).length || strs(v.schema).length)) probs.add('--all-databases: cannot be combined with --table or --schema');
  probs.done();
  return Object.freeze({
    source: src!,
    target: targets[0]!,
    targets,
    targetIsDefault: toFlags.length === 0 && env.PGBACKUP_TARGET === undefined,
    recipients,
    recipientsFile,
    passphraseFile,
    noEncryption,
    compressLevel,
    tier: tier as 'auto' | Tier,
    dumpOptions,
    allDatabases,
    globals: bool(v.globals),
    partSize,
    queueSize,
    timeoutMs,
    stallMs,
    healthcheckUrl,
    webhookUrl,
    prometheus,
    scryptLogN,
  });
}

export interface SecretsConfig {
  identityFiles: string[];
  passphraseFile: string | undefined;
}

function secretsConfig(v: Parsed['values'], env: Env): SecretsConfig {
  const ids = strs(v.identity);
  return {
    identityFiles: ids.length ? ids : env.PGBACKUP_IDENTITY_FILE ? env.PGBACKUP_IDENTITY_FILE.split(',').filter(Boolean) : [],
    passphraseFile: str(v['passphrase-file']) ?? (env.PGBACKUP_PASSPHRASE_FILE || undefined),
  };
}

function fromTarget(probs: Problems, v: Parsed['values'], env: Env): Target | undefined {
  const from = str(v.from);
  // A list in PGBACKUP_TARGET (made for backup): the commands that read take its first target.
  return probs.try(() => (from !== undefined ? parseTarget(from, env, '--from') : parseEnvTargets(env.PGBACKUP_TARGET ?? './backups', env)[0]!));
}

/**
 * A point in time for --at. Without a zone it is UTC (never the machine's local time): a date
 * alone is the end of that UTC day; `2026-11-29T07:00`, `2026-11-29 07:00:00` and the keys'
 * `20261129T070000Z` are UTC. Anything else must be ISO 8601 with Z or an offset.
 */
export function parseAt(raw: string): Date {
  const s = raw.trim();
  let iso: string | null = null;
  let m: RegExpExecArray | null;
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) iso = `${s}T23:59:59Z`;
  else if ((m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}(?::?\d{2})?)?$/i.exec(s))) {
    iso = `${m[1]}T${m[2]}${m[3] ? m[3].toUpperCase() : 'Z'}`;
  } else if ((m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z?$/i.exec(s))) iso = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`;
  return iso ? new Date(iso) : new Date(NaN);
}

const atSchema = z.string().transform((s, ctx) => {
  const d = parseAt(s);
  if (Number.isNaN(d.getTime())) {
    ctx.addIssue({ code: 'custom', message: `not a time: "${s}" (ISO 8601, UTC unless it names a zone: 2025-11-08T19:00:00, 2025-11-08T19:00:00+01:00 or 2025-11-08)` });
    return z.NEVER;
  }
  return d;
});

export interface ListConfig {
  target: Target;
  database: string | undefined;
  json: boolean;
}

export function listConfig(p: Parsed, env: Env): Readonly<ListConfig> {
  const probs = new Problems();
  const target = fromTarget(probs, p.values, env);
  probs.done();
  return Object.freeze({ target: target!, database: str(p.values.database), json: bool(p.values.json) });
}

export interface RestoreConfig extends SecretsConfig {
  key: string | undefined;
  latest: boolean;
  at: Date | undefined;
  /** --latest / --at may pick safety and partial backups too. */
  anyKind: boolean;
  target: Target;
  database: string | undefined;
  dest: ConnInfo;
  create: boolean;
  clean: boolean;
  yes: boolean;
  safetyBackup: boolean;
  noOwner: boolean;
  /** lock_timeout for the restore's statements (and pg_dump --lock-wait-timeout for its safety backup); default 1m. */
  lockTimeoutMs: number;
  /** --create: how to make the database (else like the source: encoding, locale). */
  createWith: { encoding?: string | undefined; locale?: string | undefined; defaults: boolean };
  /** --clean into an existing database: apply the source's properties too. */
  applyDatabaseProperties: boolean;
  recipients: string[];
  json: boolean;
  /** psql sessions: 1 = one transaction; more = parallel, atomic per database. */
  jobs: number;
  /** End other sessions on the target before replacing it. */
  terminateConnections: boolean;
  /** Print the backup's entries; restore nothing. */
  list: boolean;
  /** --table / --schema / --exclude-table: a selective restore. */
  selection: Selection | undefined;
}

/** Sessions of a restore unless --jobs says otherwise (see docs: why this default). */
export const DEFAULT_RESTORE_JOBS = 1;

export function restoreConfig(p: Parsed, env: Env): Readonly<RestoreConfig> {
  const v = p.values;
  const probs = new Problems();
  const key = p.positionals[0];
  const latest = bool(v.latest);
  const at = probs.zod('--at', atSchema, str(v.at));
  const chosen = [key !== undefined, latest, str(v.at) !== undefined].filter(Boolean).length;
  if (chosen === 0) probs.add('which backup: give a KEY (or file), --latest or --at TIME');
  if (chosen > 1) probs.add('which backup: give only one of KEY, --latest, --at');
  const target = fromTarget(probs, v, env);
  // The target is always explicit: never DATABASE_URL or PG* alone (on a backup host that may be production).
  const toRaw = str(v.to);
  const list = bool(v.list);
  if (list) {
    for (const f of ['to', 'clean', 'create', 'jobs', 'yes'] as const) if (v[f] !== undefined && v[f] !== false) probs.add(`--list: prints the backup's entries and restores nothing; --${f} does not go with it`);
    if (!key && str(v.database) === undefined) probs.add('--list with --latest or --at: name the database with --database');
  } else if (toRaw === undefined) {
    probs.add('--to: required: the database to restore into (postgres://user@host:port/DBNAME); restore never takes its target from DATABASE_URL or PG* variables');
  }
  const dest = toRaw !== undefined ? probs.try(() => connFromUrl(toRaw, '--to', env)) : undefined;
  if (dest && !namesDatabase(toRaw!, '--to')) probs.add('--to: names no database (postgres://user@host:port/DBNAME)');
  for (const f of ['db-encoding', 'db-locale', 'create-with-defaults'] as const) {
    if (v[f] !== undefined && v[f] !== false && !bool(v.create)) probs.add(`--${f}: only with --create (it chooses how the database is created)`);
  }
  if (bool(v['create-with-defaults']) && str(v['db-locale']) !== undefined) probs.add('--create-with-defaults and --db-locale: give one of them');
  const envRecipients = (env.PGBACKUP_RECIPIENTS ?? '').split(/[\s,]+/).filter(Boolean);
  const lockTimeoutMs = probs.zod('--lock-timeout', durationSchema, str(v['lock-timeout']));
  const selection = selectionConfig(probs, v);
  if (selection && list) probs.add("--list prints every entry of the backup; --table, --schema and --exclude-table do not go with it");
  if (selection && str(v.jobs) !== undefined && str(v.jobs) !== '1') probs.add('--table, --schema, --exclude-table: a selective restore runs in one session, one transaction; --jobs does not go with it');
  const jobsRaw = str(v.jobs);
  const jobs = jobsRaw === undefined ? DEFAULT_RESTORE_JOBS : /^\d+$/.test(jobsRaw) && Number(jobsRaw) >= 1 && Number(jobsRaw) <= 64 ? Number(jobsRaw) : (probs.add('--jobs: a whole number from 1 to 64'), 1);
  probs.done();
  return Object.freeze({
    ...secretsConfig(v, env),
    key,
    jobs,
    terminateConnections: bool(v['terminate-connections']),
    list,
    selection,
    latest,
    at,
    anyKind: bool(v['any-kind']),
    target: target!,
    database: str(v.database),
    dest: dest!,
    create: bool(v.create),
    clean: bool(v.clean),
    yes: bool(v.yes),
    safetyBackup: !bool(v['no-safety-backup']),
    noOwner: bool(v['no-owner']),
    lockTimeoutMs: lockTimeoutMs ?? 60_000,
    createWith: { encoding: str(v['db-encoding']), locale: str(v['db-locale']), defaults: bool(v['create-with-defaults']) },
    applyDatabaseProperties: bool(v['apply-database-properties']),
    recipients: envRecipients,
    json: bool(v.json),
  });
}

/** The selective-restore options (model/selection.ts), or undefined when none is given. */
function selectionConfig(probs: Problems, v: Parsed['values']): Selection | undefined {
  const list = (x: unknown) => (Array.isArray(x) ? (x as string[]) : []);
  const sel: Selection = { tables: [], schemas: [], excludeTables: [] };
  for (const t of list(v.table)) {
    const p = parseQualifiedPattern('--table', t);
    if (typeof p === 'string') probs.add(p);
    else sel.tables.push(p);
  }
  for (const t of list(v.schema)) {
    const p = parseSchemaPattern(t);
    if (typeof p === 'string') probs.add(p);
    else sel.schemas.push(p);
  }
  for (const t of list(v['exclude-table'])) {
    const p = parseQualifiedPattern('--exclude-table', t);
    if (typeof p === 'string') probs.add(p);
    else sel.excludeTables.push(p);
  }
  if (!list(v.table).length && !list(v.schema).length && !list(v['exclude-table']).length) return undefined;
  if (!list(v.table).length && !list(v.schema).length) probs.add('--exclude-table narrows what --table or --schema select: give one of them');
  return sel;
}

/** --prometheus FILE (a path; the folder must exist when the file is written). */
function promFile(probs: Problems, v: Parsed['values']): string | undefined {
  const f = str(v.prometheus);
  if (f === undefined) return undefined;
  if (f.trim() === '') probs.add('--prometheus: empty path');
  else if (!f.endsWith('.prom')) probs.add(`--prometheus: "${f}" does not end in .prom (node_exporter's textfile collector reads only *.prom files)`);
  return f;
}

export interface VerifyConfig extends SecretsConfig {
  key: string | undefined;
  latest: boolean;
  all: boolean;
  anyKind: boolean;
  target: Target;
  database: string | undefined;
  restoreInto: ConnInfo | undefined;
  json: boolean;
  prometheus: string | undefined;
}

export function verifyConfig(p: Parsed, env: Env): Readonly<VerifyConfig> {
  const v = p.values;
  const probs = new Problems();
  const key = p.positionals[0];
  const latest = bool(v.latest);
  const all = bool(v.all);
  const chosen = [key !== undefined, latest, all].filter(Boolean).length;
  if (chosen === 0) probs.add('which backup: give a KEY, --latest or --all');
  if (chosen > 1) probs.add('which backup: give only one of KEY, --latest, --all');
  if (latest && !str(v.database)) probs.add('--latest: needs --database NAME');
  const target = fromTarget(probs, v, env);
  const ri = str(v['restore-into']);
  const restoreInto = ri !== undefined ? probs.try(() => connFromUrl(ri, '--restore-into', env)) : undefined;
  const prometheus = promFile(probs, v);
  probs.done();
  return Object.freeze({ ...secretsConfig(v, env), key, latest, all, anyKind: bool(v['any-kind']), target: target!, database: str(v.database), restoreInto, json: bool(v.json), prometheus });
}

export interface FetchConfig extends SecretsConfig {
  key: string;
  target: Target;
  output: string;
  /** Replace an existing -o FILE. */
  force: boolean;
}

export function fetchConfig(p: Parsed, env: Env): Readonly<FetchConfig> {
  const probs = new Problems();
  const key = p.positionals[0];
  if (!key) probs.add('KEY: which backup to fetch');
  const target = fromTarget(probs, p.values, env);
  probs.done();
  return Object.freeze({ ...secretsConfig(p.values, env), key: key!, target: target!, output: str(p.values.output) ?? '-', force: bool(p.values.force) });
}

export interface KeygenConfig {
  pq: boolean;
  output: string | undefined;
}

export function keygenConfig(p: Parsed): Readonly<KeygenConfig> {
  return Object.freeze({ pq: bool(p.values.pq), output: str(p.values.output) });
}

export interface BucketConfig {
  action: 'check' | 'lifecycle';
  target: Target & { kind: 's3' };
  apply: boolean;
  json: boolean;
  retention: RetentionDays;
}

export function bucketConfig(p: Parsed, env: Env): Readonly<BucketConfig> {
  const probs = new Problems();
  const action = p.positionals[0];
  if (action !== 'check' && action !== 'lifecycle') probs.add(`bucket: expected "check" or "lifecycle"${action ? `, not "${action}"` : ''}`);
  const raw = str(p.values.to) ?? str(p.values.from) ?? env.PGBACKUP_TARGET;
  let target: Target | undefined;
  if (!raw) probs.add('--to: the bucket to use (s3://bucket/prefix/, or PGBACKUP_TARGET)');
  else {
    const flag = str(p.values.to) ?? str(p.values.from);
    target = probs.try(() => (flag !== undefined ? parseTarget(flag, env, '--to') : parseEnvTargets(raw, env)[0]!));
    if (target && target.kind !== 's3') probs.add('--to: bucket commands need an s3:// target');
  }
  if (p.values.apply && action !== 'lifecycle') probs.add('--apply: only with "bucket lifecycle"');
  if (target?.kind === 's3' && target.prefix.length > 200) probs.add('--to: a prefix over 200 characters leaves no room for lifecycle rule IDs (S3 allows 255)');
  const retention = probs.try(() => retentionConfig(env));
  probs.done();
  return Object.freeze({ action: action as 'check' | 'lifecycle', target: target as Target & { kind: 's3' }, apply: bool(p.values.apply), json: bool(p.values.json), retention: retention! });
}

export interface PruneConfig {
  /** The folder target. */
  path: string;
  database: string | undefined;
  apply: boolean;
  json: boolean;
  retention: RetentionDays;
}

export function pruneConfig(p: Parsed, env: Env): Readonly<PruneConfig> {
  const probs = new Problems();
  const target = fromTarget(probs, p.values, env);
  if (target?.kind === 's3') {
    probs.add(
      `--from: prune works on folder targets; an S3 bucket expires backups with its lifecycle rules, which apply the same retention: ` +
        `pgbackup bucket lifecycle --to s3://${target.bucket}/${target.prefix} --apply (then pgbackup bucket check)`,
    );
  }
  const retention = probs.try(() => retentionConfig(env));
  probs.done();
  return Object.freeze({ path: (target as Target & { kind: 'folder' }).path, database: str(p.values.database), apply: bool(p.values.apply), json: bool(p.values.json), retention: retention! });
}

export interface StatusConfig {
  target: Target;
  /** --database, repeatable; empty: every database in the target. */
  databases: string[];
  maxAgeMs: number | undefined;
  json: boolean;
  prometheus: string | undefined;
}

export function statusConfig(p: Parsed, env: Env): Readonly<StatusConfig> {
  const probs = new Problems();
  const target = fromTarget(probs, p.values, env);
  const maxAgeMs = probs.zod('--max-age', durationSchema, str(p.values['max-age']));
  const databases = strs(p.values.database);
  if (databases.some((d) => d === '')) probs.add('--database: empty name');
  const prometheus = promFile(probs, p.values);
  probs.done();
  return Object.freeze({ target: target!, databases: [...new Set(databases)], maxAgeMs, json: bool(p.values.json), prometheus });
}
